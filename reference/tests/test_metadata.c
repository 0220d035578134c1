/* SPDX-License-Identifier: MIT */
/*
 * The RPC metadata codec.  Field ids and types are those of fbthrift's
 * thrift/lib/thrift/RpcMetadata.thrift; the byte vectors were worked out by
 * hand and checked against Apache Thrift 0.17's Python TCompactProtocol
 * writing the same field ids.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "buf.h"
#include "compact.h"
#include "metadata.h"
#include "testutil.h"

enum { HEX_MAX = 512 };

#define CHECK_HEX(bytes, len, hex) check_hex(__FILE__, __LINE__, (bytes), (len), (hex))
#define CHECK_SLICE(slice, text)   check_slice(__FILE__, __LINE__, (slice), (text))

static void
check_hex(const char *file, int line, const uint8_t *got, size_t len, const char *hex)
{
	uint8_t want[HEX_MAX];
	char text[3 * HEX_MAX + 1] = "";
	size_t n = rfd_test_hex(hex, want, sizeof(want));

	if (n == len && (n == 0 || memcmp(got, want, n) == 0))
		return;
	for (size_t i = 0; i < len && i < HEX_MAX; i++)
		snprintf(text + 3 * i, 4, "%02x ", got[i]);
	rfd_test_fail(file, line, "got %zu bytes [%s], want [%s]", len, text, hex);
}

static void
check_slice(const char *file, int line, struct rfd_slice slice, const char *text)
{
	size_t len = strlen(text);

	if (slice.len != len || (len > 0 && memcmp(slice.ptr, text, len) != 0))
		rfd_test_fail(file, line, "slice \"%.*s\", want \"%s\"", (int)slice.len,
		              slice.ptr ? (const char *)slice.ptr : "", text);
}

static struct rfd_slice
slice_of(const char *text)
{
	return (struct rfd_slice){(const uint8_t *)text, strlen(text)};
}

enum decoder { REQUEST, RESPONSE, STREAM_PAYLOAD, RESPONSE_ERROR, SETUP, SERVER_PUSH };

static int
decode_as(enum decoder decoder, const uint8_t *bytes, size_t len, const char **why)
{
	union {
		struct rfd_request_metadata request;
		struct rfd_response_metadata response;
		struct rfd_response_error error;
		struct rfd_setup_metadata setup;
		struct rfd_server_push push;
	} m;

	switch (decoder) {
	case REQUEST:
		return rfd_request_metadata_decode(bytes, len, &m.request, why);
	case RESPONSE:
		return rfd_response_metadata_decode(bytes, len, &m.response, why);
	case STREAM_PAYLOAD:
		return rfd_stream_payload_metadata_decode(bytes, len, &m.response, why);
	case RESPONSE_ERROR:
		return rfd_response_error_decode(bytes, len, &m.error, why);
	case SETUP:
		return rfd_setup_metadata_decode(bytes, len, &m.setup, why);
	case SERVER_PUSH:
		return rfd_server_push_decode(bytes, len, &m.push, why);
	}
	return -EINVAL;
}

/* Every proper prefix of a valid encoding fails; each copy is exactly as long as its prefix. */
static void
check_every_prefix_fails(enum decoder decoder, const uint8_t *bytes, size_t len)
{
	const char *why = "unset";

	CHECK_EQ(decode_as(decoder, bytes, len, &why), 0);
	CHECK(why == NULL);
	for (size_t n = 0; n < len; n++) {
		uint8_t *prefix = n ? malloc(n) : NULL;

		if (n) {
			REQUIRE(prefix);
			memcpy(prefix, bytes, n);
		}
		why = NULL;
		if (decode_as(decoder, prefix, n, &why) != -EBADMSG || !why)
			rfd_test_fail(__FILE__, __LINE__,
			              "decoder %d accepted a prefix of %zu of %zu", decoder, n,
			              len);
		free(prefix);
	}
}

/* Request metadata */

static const char worked_example_hex[] = "15 04 18 04 64 65 6d 6f 15 00  0c 2c 16 00 15 02 00  00";

static void
test_worked_example_request(void)
{
	struct rfd_request_metadata m = {
	    .has_protocol = true,
	    .protocol = RFD_PROTOCOL_COMPACT,
	    .has_name = true,
	    .name = slice_of("demo"),
	    .has_kind = true,
	    .kind = RFD_RPC_SINGLE_REQUEST_SINGLE_RESPONSE,
	    .fd = {.present = true, .has_seq = true, .fd_seq = 0, .has_num = true, .num_fds = 1},
	};
	struct rfd_request_metadata d;
	struct rfd_buf b;
	const char *why = "unset";

	rfd_buf_init(&b);
	REQUIRE(rfd_request_metadata_encode(&m, &b) == 0);
	CHECK_EQ(b.len, 18);
	CHECK_HEX(b.data, b.len, worked_example_hex);

	CHECK_EQ(rfd_request_metadata_decode(b.data, b.len, &d, &why), 0);
	CHECK(why == NULL);
	CHECK(d.has_protocol && d.protocol == RFD_PROTOCOL_COMPACT);
	CHECK(d.has_name);
	CHECK_SLICE(d.name, "demo");
	CHECK(d.name.ptr == b.data + 4);
	CHECK(d.has_kind && d.kind == 0);
	CHECK(!d.has_client_timeout);
	CHECK(!d.uses_compression && !d.uses_interaction && !d.uses_checksum);
	CHECK(d.fd.present && d.fd.has_seq && d.fd.has_num);
	CHECK_EQ(d.fd.fd_seq, 0);
	CHECK_EQ(d.fd.num_fds, 1);

	check_every_prefix_fails(REQUEST, b.data, b.len);
	rfd_buf_free(&b);
}

/* The request data of the same worked example: the args struct {1: {1: "kthx"}}. */
static void
test_worked_example_data(void)
{
	static const char data_hex[] = "1c 18 04 6b 74 68 78 00 00";
	uint8_t bytes[16];
	size_t len = rfd_test_hex(data_hex, bytes, sizeof(bytes));
	struct rfd_buf b;
	struct rfd_cw w;
	struct rfd_cr r;
	struct rfd_cr_field f;
	struct rfd_slice s;

	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_STRUCT, 1);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_string(&w, 1, "kthx");
	rfd_cw_struct_end(&w);
	rfd_cw_struct_end(&w);
	CHECK_EQ(rfd_cw_finish(&w), 0);
	CHECK_HEX(b.data, b.len, data_hex);
	rfd_buf_free(&b);

	rfd_cr_init(&r, bytes, len);
	CHECK_EQ(rfd_cr_struct_begin(&r), 0);
	CHECK_EQ(rfd_cr_field(&r, &f), 1);
	CHECK(f.id == 1 && f.type == RFD_CT_STRUCT);
	CHECK_EQ(rfd_cr_struct_begin(&r), 0);
	CHECK_EQ(rfd_cr_field(&r, &f), 1);
	CHECK(f.id == 1 && f.type == RFD_CT_BINARY);
	CHECK_EQ(rfd_cr_binary(&r, &s), 0);
	CHECK_SLICE(s, "kthx");
	CHECK_EQ(rfd_cr_field(&r, &f), 0);
	CHECK_EQ(rfd_cr_field(&r, &f), 0);
	CHECK_EQ(rfd_cr_finish(&r), 0);
}

static void
test_request_round_trip(void)
{
	struct rfd_request_metadata m = {
	    .has_protocol = true,
	    .protocol = RFD_PROTOCOL_BINARY,
	    .has_name = true,
	    .name = slice_of("getFds"),
	    .has_kind = true,
	    .kind = RFD_RPC_SINGLE_REQUEST_STREAMING_RESPONSE,
	    .has_client_timeout = true,
	    .client_timeout_ms = 5000,
	    .fd = {.present = true,
	           .has_seq = true,
	           .fd_seq = INT64_MAX,
	           .has_num = true,
	           .num_fds = 253},
	};
	struct rfd_request_metadata d;
	struct rfd_buf b;
	const char *why;

	rfd_buf_init(&b);
	REQUIRE(rfd_request_metadata_encode(&m, &b) == 0);
	CHECK_HEX(b.data, b.len,
	          "15 00 18 06 67 65 74 46 64 73 15 08 25 90 4e"
	          "  0c 2c 16 fe ff ff ff ff ff ff ff ff 01 15 fa 03 00  00");
	REQUIRE(rfd_request_metadata_decode(b.data, b.len, &d, &why) == 0);
	CHECK(d.has_protocol && d.protocol == RFD_PROTOCOL_BINARY);
	CHECK_SLICE(d.name, "getFds");
	CHECK(d.has_kind && d.kind == RFD_RPC_SINGLE_REQUEST_STREAMING_RESPONSE);
	CHECK(d.has_client_timeout && d.client_timeout_ms == 5000);
	CHECK(d.fd.present && d.fd.has_seq && d.fd.fd_seq == INT64_MAX);
	CHECK(d.fd.has_num && d.fd.num_fds == 253);
	check_every_prefix_fails(REQUEST, b.data, b.len);
	rfd_buf_free(&b);

	/* An empty FdMetadata is present with neither field; no FdMetadata is absent. */
	m = (struct rfd_request_metadata){.fd = {.present = true}};
	REQUIRE(rfd_request_metadata_encode(&m, &b) == 0);
	CHECK_HEX(b.data, b.len, "0c 2c 00 00");
	REQUIRE(rfd_request_metadata_decode(b.data, b.len, &d, &why) == 0);
	CHECK(d.fd.present && !d.fd.has_seq && !d.fd.has_num);
	CHECK(!d.has_protocol && !d.has_name && !d.has_kind);
	rfd_buf_free(&b);

	m = (struct rfd_request_metadata){0};
	REQUIRE(rfd_request_metadata_encode(&m, &b) == 0);
	CHECK_HEX(b.data, b.len, "00");
	REQUIRE(rfd_request_metadata_decode(b.data, b.len, &d, &why) == 0);
	CHECK(!d.fd.present);
	rfd_buf_free(&b);
}

static void
test_request_declined_features_are_flagged(void)
{
	/* 14 compression = ZSTD, 15 compressionConfig {}, 16 interactionId 7,
	 * 17 interactionCreate {1: 7}, 25 checksum {1: 1}. */
	static const char hex[] = "05 1c 04  0c 1e 00  16 0e  1c 16 0e 00  0c 32 15 02 00  00";
	uint8_t bytes[64];
	size_t len = rfd_test_hex(hex, bytes, sizeof(bytes));
	struct rfd_request_metadata d;
	const char *why;

	REQUIRE(rfd_request_metadata_decode(bytes, len, &d, &why) == 0);
	CHECK(d.uses_compression);
	CHECK(d.uses_interaction);
	CHECK(d.uses_checksum);
	CHECK(!d.fd.present);
}

static void
test_checksum_none_asks_nothing(void)
{
	/* 25 checksum {1: algorithm NONE (0), 2: checksum 0}: no checksum requested. */
	static const char hex[] = "0c 32 15 00 16 00 00  00";
	uint8_t bytes[16];
	size_t len = rfd_test_hex(hex, bytes, sizeof(bytes));
	struct rfd_request_metadata d;
	const char *why;

	REQUIRE(rfd_request_metadata_decode(bytes, len, &d, &why) == 0);
	CHECK(!d.uses_checksum);
}

static void
test_compression_config_alone_asks_nothing(void)
{
	/* 15 compressionConfig {} without 14 compression: skipped, not declined. */
	static const char hex[] = "fc 00  00";
	uint8_t bytes[8];
	size_t len = rfd_test_hex(hex, bytes, sizeof(bytes));
	struct rfd_request_metadata d;
	const char *why;

	REQUIRE(rfd_request_metadata_decode(bytes, len, &d, &why) == 0);
	CHECK(!d.uses_compression);
}

static void
test_repeated_fd_metadata_replaces_the_first(void)
{
	/* 22: {1: fdSeqNum 5}, then 22: {2: numFds 1}. */
	static const char hex[] = "0c 2c 16 0a 00  0c 2c 25 02 00  00";
	uint8_t bytes[16];
	size_t len = rfd_test_hex(hex, bytes, sizeof(bytes));
	struct rfd_request_metadata d;
	const char *why;

	REQUIRE(rfd_request_metadata_decode(bytes, len, &d, &why) == 0);
	CHECK(d.fd.present);
	CHECK(!d.fd.has_seq);
	CHECK(d.fd.has_num && d.fd.num_fds == 1);
}

/* Response and stream payload metadata */

static const struct {
	enum rfd_payload_kind kind;
	const char *name, *what;
	bool with_fd;
	const char *hex;
} response_vectors[] = {
    {RFD_PAYLOAD_NONE, NULL, NULL, false, "00"},
    {RFD_PAYLOAD_RESPONSE, NULL, NULL, true, "7c 1c 00 00  5c 16 0a 15 04 00  00"},
    {RFD_PAYLOAD_DECLARED_EXCEPTION, "E", "w", false,
     "7c 2c 18 01 45 18 01 77 1c 1c 00 00 00 00  00"},
    {RFD_PAYLOAD_APP_UNKNOWN_EXCEPTION, NULL, "boom", false,
     "7c 2c 28 04 62 6f 6f 6d 1c 6c 00 00 00 00  00"},
    {RFD_PAYLOAD_OTHER_EXCEPTION, "X", NULL, true, "7c 2c 18 01 58 00 00  5c 16 0a 15 04 00  00"},
};

static void
test_response_metadata_round_trips(void)
{
	for (size_t i = 0; i < sizeof(response_vectors) / sizeof(response_vectors[0]); i++) {
		struct rfd_response_metadata m = {.payload_kind = response_vectors[i].kind};
		struct rfd_response_metadata d;
		struct rfd_buf b;
		const char *why;

		if (response_vectors[i].name) {
			m.has_ex_name = true;
			m.ex_name = slice_of(response_vectors[i].name);
		}
		if (response_vectors[i].what) {
			m.has_ex_what = true;
			m.ex_what = slice_of(response_vectors[i].what);
		}
		if (response_vectors[i].with_fd)
			m.fd = (struct rfd_fd_metadata){.present = true,
			                                .has_seq = true,
			                                .fd_seq = 5,
			                                .has_num = true,
			                                .num_fds = 2};

		rfd_buf_init(&b);
		REQUIRE(rfd_response_metadata_encode(&m, &b) == 0);
		CHECK_HEX(b.data, b.len, response_vectors[i].hex);
		REQUIRE(rfd_response_metadata_decode(b.data, b.len, &d, &why) == 0);
		CHECK_EQ(d.payload_kind, m.payload_kind);
		CHECK_EQ(d.has_ex_name, m.has_ex_name);
		CHECK_EQ(d.has_ex_what, m.has_ex_what);
		if (m.has_ex_name)
			CHECK_SLICE(d.ex_name, response_vectors[i].name);
		if (m.has_ex_what)
			CHECK_SLICE(d.ex_what, response_vectors[i].what);
		CHECK_EQ(d.fd.present, m.fd.present);
		CHECK_EQ(d.fd.fd_seq, m.fd.fd_seq);
		CHECK_EQ(d.fd.num_fds, m.fd.num_fds);
		CHECK(!d.uses_compression && !d.uses_checksum);
		check_every_prefix_fails(RESPONSE, b.data, b.len);
		rfd_buf_free(&b);
	}
}

static void
test_stream_payload_round_trip(void)
{
	struct rfd_response_metadata m = {
	    .payload_kind = RFD_PAYLOAD_RESPONSE,
	    .fd = {.present = true, .has_num = true, .num_fds = 3},
	};
	struct rfd_response_metadata d;
	struct rfd_buf b;
	const char *why;

	rfd_buf_init(&b);
	REQUIRE(rfd_stream_payload_metadata_encode(&m, &b) == 0);
	CHECK_HEX(b.data, b.len, "3c 1c 00 00  2c 25 06 00  00");
	REQUIRE(rfd_stream_payload_metadata_decode(b.data, b.len, &d, &why) == 0);
	CHECK_EQ(d.payload_kind, RFD_PAYLOAD_RESPONSE);
	CHECK(d.fd.present && !d.fd.has_seq && d.fd.has_num && d.fd.num_fds == 3);
	check_every_prefix_fails(STREAM_PAYLOAD, b.data, b.len);

	/* Under ResponseRpcMetadata's ids both fields are ones this library skips. */
	CHECK_EQ(rfd_response_metadata_decode(b.data, b.len, &d, &why), 0);
	CHECK_EQ(d.payload_kind, RFD_PAYLOAD_NONE);
	CHECK(!d.fd.present);
	rfd_buf_free(&b);

	/* compression (1) and checksum (6) are flagged. */
	{
		static const char hex[] = "15 04  5c 15 02 00  00";
		uint8_t bytes[16];
		size_t len = rfd_test_hex(hex, bytes, sizeof(bytes));

		REQUIRE(rfd_stream_payload_metadata_decode(bytes, len, &d, &why) == 0);
		CHECK(d.uses_compression && d.uses_checksum);
	}
}

/* ResponseRpcError, setup, server push */

static void
test_response_error(void)
{
	struct rfd_response_error m = {
	    .has_what = true,
	    .what = slice_of("bad fds"),
	    .has_category = true,
	    .category = RFD_ERROR_CATEGORY_INVALID_REQUEST,
	    .has_code = true,
	    .code = RFD_ERROR_CODE_REQUEST_PARSING_FAILURE,
	};
	struct rfd_response_error d;
	struct rfd_buf b;
	const char *why;

	rfd_buf_init(&b);
	REQUIRE(rfd_response_error_encode(&m, &b) == 0);
	CHECK_HEX(b.data, b.len, "28 07 62 61 64 20 66 64 73 15 02 15 0c 00");
	REQUIRE(rfd_response_error_decode(b.data, b.len, &d, &why) == 0);
	CHECK(!d.has_name);
	CHECK(d.has_what);
	CHECK_SLICE(d.what, "bad fds");
	CHECK(d.has_category && d.category == 1);
	CHECK(d.has_code && d.code == 6);
	check_every_prefix_fails(RESPONSE_ERROR, b.data, b.len);
	rfd_buf_free(&b);

	m.has_name = true;
	m.name = slice_of("apache::thrift::TApplicationException");
	REQUIRE(rfd_response_error_encode(&m, &b) == 0);
	REQUIRE(rfd_response_error_decode(b.data, b.len, &d, &why) == 0);
	CHECK(d.has_name);
	CHECK_SLICE(d.name, "apache::thrift::TApplicationException");
	CHECK_SLICE(d.what, "bad fds");
	rfd_buf_free(&b);
}

static void
test_setup_metadata(void)
{
	struct rfd_setup_metadata m = {
	    .has_min_version = true,
	    .min_version = 8,
	    .has_max_version = true,
	    .max_version = 10,
	    .has_agent = true,
	    .agent = slice_of("RocketClientChannel.cpp"),
	};
	struct rfd_setup_metadata d;
	struct rfd_buf b;
	const char *why;

	rfd_buf_init(&b);
	REQUIRE(rfd_setup_metadata_encode(&m, &b) == 0);
	CHECK_HEX(b.data, b.len,
	          "35 10 15 14 5c 18 17 52 6f 63 6b 65 74 43 6c 69 65 6e 74 43 68 61 6e 6e 65 6c"
	          " 2e 63 70 70 00 00");
	REQUIRE(rfd_setup_metadata_decode(b.data, b.len, &d, &why) == 0);
	CHECK(d.has_min_version && d.min_version == 8);
	CHECK(d.has_max_version && d.max_version == 10);
	CHECK(d.has_agent);
	CHECK_SLICE(d.agent, "RocketClientChannel.cpp");
	CHECK(!d.encode_metadata_using_binary);
	CHECK(!d.uses_compression_setup);
	check_every_prefix_fails(SETUP, b.data, b.len);
	rfd_buf_free(&b);

	m = (struct rfd_setup_metadata){.has_min_version = true,
	                                .min_version = 8,
	                                .has_max_version = true,
	                                .max_version = 10,
	                                .encode_metadata_using_binary = true};
	REQUIRE(rfd_setup_metadata_encode(&m, &b) == 0);
	CHECK_HEX(b.data, b.len, "35 10 15 14 91 00");
	REQUIRE(rfd_setup_metadata_decode(b.data, b.len, &d, &why) == 0);
	CHECK(d.encode_metadata_using_binary);
	CHECK(!d.has_agent);
	rfd_buf_free(&b);

	/* encodeMetadataUsingBinary = false on the wire, compressionSetupRequest {1: {}}. */
	{
		static const char hex[] = "d2  1c 1c 00 00  00";
		uint8_t bytes[16];
		size_t len = rfd_test_hex(hex, bytes, sizeof(bytes));

		REQUIRE(rfd_setup_metadata_decode(bytes, len, &d, &why) == 0);
		CHECK(!d.encode_metadata_using_binary);
		CHECK(d.uses_compression_setup);
	}
}

static const struct {
	enum rfd_server_push_kind kind;
	bool has_version;
	const char *hex;
} push_vectors[] = {
    {RFD_PUSH_SETUP_RESPONSE, true, "1c 15 14 00 00"},
    {RFD_PUSH_SETUP_RESPONSE, false, "1c 00 00"},
    {RFD_PUSH_STREAM_HEADERS, false, "2c 00 00"},
    {RFD_PUSH_DRAIN_COMPLETE, false, "3c 00 00"},
    {RFD_PUSH_NONE, false, "00"},
};

static void
test_server_push(void)
{
	struct rfd_server_push d;
	const char *why;
	uint8_t bytes[16];
	size_t len;

	for (size_t i = 0; i < sizeof(push_vectors) / sizeof(push_vectors[0]); i++) {
		struct rfd_server_push m = {.kind = push_vectors[i].kind,
		                            .has_version = push_vectors[i].has_version,
		                            .version = 10};
		struct rfd_buf b;

		rfd_buf_init(&b);
		REQUIRE(rfd_server_push_encode(&m, &b) == 0);
		CHECK_HEX(b.data, b.len, push_vectors[i].hex);
		REQUIRE(rfd_server_push_decode(b.data, b.len, &d, &why) == 0);
		/* Only setupResponse is a known arm (6.1); the others read as no arm. */
		CHECK_EQ(d.kind, m.kind == RFD_PUSH_SETUP_RESPONSE ? m.kind : RFD_PUSH_NONE);
		CHECK_EQ(d.has_version, m.has_version);
		if (m.has_version)
			CHECK_EQ(d.version, 10);
		check_every_prefix_fails(SERVER_PUSH, b.data, b.len);
		rfd_buf_free(&b);
	}

	/* An arm this library does not know (4) reads as no push it handles. */
	len = rfd_test_hex("4c 15 02 00 00", bytes, sizeof(bytes));
	REQUIRE(rfd_server_push_decode(bytes, len, &d, &why) == 0);
	CHECK_EQ(d.kind, RFD_PUSH_NONE);

	/* SetupResponse {1: version 10, 2: zstdSupported true, 5: lz4Supported false}. */
	len = rfd_test_hex("1c 15 14 11 32 00 00", bytes, sizeof(bytes));
	REQUIRE(rfd_server_push_decode(bytes, len, &d, &why) == 0);
	CHECK_EQ(d.kind, RFD_PUSH_SETUP_RESPONSE);
	CHECK(d.has_version && d.version == 10);
}

/* Unknown fields */

/* Writes fields of every type with ids first_id, first_id + 1, ... (13 fields). */
static void
put_unknown_fields(struct rfd_cw *w, int16_t first_id)
{
	int16_t id = first_id;

	rfd_cw_field_bool(w, id++, true);
	rfd_cw_field(w, RFD_CT_BYTE, id++);
	rfd_cw_byte(w, 7);
	rfd_cw_field(w, RFD_CT_I16, id++);
	rfd_cw_i16(w, -2);
	rfd_cw_field_i32(w, id++, 1000);
	rfd_cw_field_i64(w, id++, -1);
	rfd_cw_field(w, RFD_CT_DOUBLE, id++);
	rfd_cw_double(w, 0.25);
	rfd_cw_field_string(w, id++, "unknown");
	rfd_cw_field(w, RFD_CT_LIST, id++);
	rfd_cw_list_begin(w, RFD_CT_STRUCT, 1);
	rfd_cw_struct_begin(w);
	rfd_cw_field_bool(w, 1, false);
	rfd_cw_field_i32(w, 2, 3);
	rfd_cw_struct_end(w);
	rfd_cw_field(w, RFD_CT_SET, id++);
	rfd_cw_set_begin(w, RFD_CT_BOOL, 2);
	rfd_cw_bool(w, true);
	rfd_cw_bool(w, false);
	rfd_cw_field(w, RFD_CT_MAP, id++);
	rfd_cw_map_begin(w, RFD_CT_BINARY, RFD_CT_MAP, 1);
	rfd_cw_string(w, "k");
	rfd_cw_map_begin(w, RFD_CT_BOOL, RFD_CT_BOOL, 1);
	rfd_cw_bool(w, false);
	rfd_cw_bool(w, true);
	rfd_cw_field(w, RFD_CT_STRUCT, id++);
	rfd_cw_struct_begin(w);
	rfd_cw_field(w, RFD_CT_MAP, 1);
	rfd_cw_map_begin(w, RFD_CT_BINARY, RFD_CT_BINARY, 0);
	rfd_cw_struct_end(w);
	rfd_cw_field(w, RFD_CT_FLOAT, id++);
	rfd_cw_float(w, 2.0f);
	rfd_cw_field(w, RFD_CT_LIST, id++);
	rfd_cw_list_begin(w, RFD_CT_BOOL, 1);
	rfd_cw_bool(w, true);
}

static void
test_unknown_fields_in_request(void)
{
	struct rfd_request_metadata d;
	struct rfd_buf b;
	struct rfd_cw w;
	const char *why;

	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_i32(&w, 1, RFD_PROTOCOL_COMPACT);
	rfd_cw_field_string(&w, 2, "demo");
	rfd_cw_field_i32(&w, 3, 0);
	rfd_cw_field_i32(&w, 6, 100);    /* queueTimeoutMs */
	rfd_cw_field(&w, RFD_CT_MAP, 8); /* otherMetadata */
	rfd_cw_map_begin(&w, RFD_CT_BINARY, RFD_CT_BINARY, 1);
	rfd_cw_string(&w, "k");
	rfd_cw_string(&w, "v");
	put_unknown_fields(&w, 30);
	rfd_cw_field(&w, RFD_CT_STRUCT, 22);
	rfd_cw_struct_begin(&w);
	put_unknown_fields(&w, 3);
	rfd_cw_field_i64(&w, 1, 9);
	rfd_cw_field_i32(&w, 2, 4);
	put_unknown_fields(&w, -20);
	rfd_cw_struct_end(&w);
	put_unknown_fields(&w, 100);
	rfd_cw_struct_end(&w);
	REQUIRE(rfd_cw_finish(&w) == 0);

	REQUIRE(rfd_request_metadata_decode(b.data, b.len, &d, &why) == 0);
	CHECK(d.has_protocol && d.protocol == RFD_PROTOCOL_COMPACT);
	CHECK_SLICE(d.name, "demo");
	CHECK(d.has_kind && d.kind == 0);
	CHECK(!d.has_client_timeout);
	CHECK(d.fd.present && d.fd.fd_seq == 9 && d.fd.num_fds == 4);
	CHECK(!d.uses_compression && !d.uses_interaction && !d.uses_checksum);
	rfd_buf_free(&b);
}

static void
write_exception_response(struct rfd_cw *w, int16_t payload_id, int16_t fd_id)
{
	rfd_cw_struct_begin(w);
	put_unknown_fields(w, 20);
	rfd_cw_field(w, RFD_CT_STRUCT, payload_id);
	rfd_cw_struct_begin(w); /* PayloadMetadata */
	rfd_cw_field(w, RFD_CT_STRUCT, 2);
	rfd_cw_struct_begin(w); /* PayloadExceptionMetadataBase */
	rfd_cw_field_string(w, 2, "what");
	rfd_cw_field_string(w, 1, "Name");
	put_unknown_fields(w, 4);
	rfd_cw_field(w, RFD_CT_STRUCT, 3);
	rfd_cw_struct_begin(w); /* PayloadExceptionMetadata */
	rfd_cw_field(w, RFD_CT_STRUCT, 6);
	rfd_cw_struct_begin(w); /* appUnknownException: errorClassification {2: blame} */
	rfd_cw_field(w, RFD_CT_STRUCT, 1);
	rfd_cw_struct_begin(w);
	rfd_cw_field_i32(w, 2, 2);
	rfd_cw_struct_end(w);
	put_unknown_fields(w, 40);
	rfd_cw_struct_end(w);
	rfd_cw_struct_end(w);
	rfd_cw_struct_end(w);
	rfd_cw_struct_end(w);
	rfd_cw_field(w, RFD_CT_STRUCT, fd_id);
	rfd_cw_struct_begin(w);
	rfd_cw_field_i32(w, 2, 1);
	put_unknown_fields(w, 50);
	rfd_cw_struct_end(w);
	put_unknown_fields(w, 200);
	rfd_cw_struct_end(w);
}

static void
test_unknown_fields_in_response(void)
{
	struct rfd_response_metadata d;
	struct rfd_buf b;
	struct rfd_cw w;
	const char *why;

	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	write_exception_response(&w, 7, 12);
	REQUIRE(rfd_cw_finish(&w) == 0);
	REQUIRE(rfd_response_metadata_decode(b.data, b.len, &d, &why) == 0);
	CHECK_EQ(d.payload_kind, RFD_PAYLOAD_APP_UNKNOWN_EXCEPTION);
	CHECK_SLICE(d.ex_name, "Name");
	CHECK_SLICE(d.ex_what, "what");
	CHECK(d.fd.present && !d.fd.has_seq && d.fd.num_fds == 1);
	rfd_buf_free(&b);

	rfd_cw_init(&w, &b);
	write_exception_response(&w, 3, 5);
	REQUIRE(rfd_cw_finish(&w) == 0);
	REQUIRE(rfd_stream_payload_metadata_decode(b.data, b.len, &d, &why) == 0);
	CHECK_EQ(d.payload_kind, RFD_PAYLOAD_APP_UNKNOWN_EXCEPTION);
	CHECK_SLICE(d.ex_name, "Name");
	CHECK(d.fd.present && d.fd.num_fds == 1);
	rfd_buf_free(&b);

	/* The ResponseRpcMetadata fields this library does not read: 3 otherMetadata,
	 * 4 load, 9 streamId, 10 queueMetadata. */
	{
		static const char hex[] = "3b 01 88 01 61 01 62  16 02  55 02  1c 15 02 15 04 00"
		                          "  0c 0e 1c 00 00  00";
		uint8_t bytes[64];
		size_t len = rfd_test_hex(hex, bytes, sizeof(bytes));

		REQUIRE(rfd_response_metadata_decode(bytes, len, &d, &why) == 0);
		CHECK_EQ(d.payload_kind, RFD_PAYLOAD_RESPONSE);
	}
}

static void
test_unknown_fields_in_error_setup_and_push(void)
{
	struct rfd_response_error e;
	struct rfd_setup_metadata s;
	struct rfd_server_push p;
	struct rfd_buf b;
	struct rfd_cw w;
	const char *why;

	rfd_buf_init(&b);
	rfd_cw_init(&w, &b);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_string(&w, 2, "oops");
	rfd_cw_field_i32(&w, 4, 6);
	rfd_cw_field_i64(&w, 5, 77); /* load */
	put_unknown_fields(&w, 6);
	rfd_cw_struct_end(&w);
	REQUIRE(rfd_cw_finish(&w) == 0);
	REQUIRE(rfd_response_error_decode(b.data, b.len, &e, &why) == 0);
	CHECK_SLICE(e.what, "oops");
	CHECK(e.has_code && e.code == 6 && !e.has_category && !e.has_name);
	rfd_buf_free(&b);

	rfd_cw_init(&w, &b);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_MAP, 1); /* opaque */
	rfd_cw_map_begin(&w, RFD_CT_BINARY, RFD_CT_BINARY, 1);
	rfd_cw_string(&w, "k");
	rfd_cw_binary(&w, "\x00\x01", 2);
	rfd_cw_field_i32(&w, 2, 0); /* interfaceKind */
	rfd_cw_field_i32(&w, 3, 8);
	rfd_cw_field_i32(&w, 4, 10);
	rfd_cw_field(&w, RFD_CT_STRUCT, 9);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_string(&w, 2, "host"); /* hostname before agent */
	rfd_cw_field_string(&w, 1, "agent");
	rfd_cw_field(&w, RFD_CT_MAP, 3);
	rfd_cw_map_begin(&w, RFD_CT_BINARY, RFD_CT_BINARY, 0);
	put_unknown_fields(&w, 10);
	rfd_cw_struct_end(&w);
	rfd_cw_field_i32(&w, 12, 60000); /* keepAliveTimeoutMs */
	put_unknown_fields(&w, 15);
	rfd_cw_struct_end(&w);
	REQUIRE(rfd_cw_finish(&w) == 0);
	REQUIRE(rfd_setup_metadata_decode(b.data, b.len, &s, &why) == 0);
	CHECK(s.has_min_version && s.min_version == 8);
	CHECK(s.has_max_version && s.max_version == 10);
	CHECK_SLICE(s.agent, "agent");
	CHECK(!s.encode_metadata_using_binary && !s.uses_compression_setup);
	rfd_buf_free(&b);

	rfd_cw_init(&w, &b);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_STRUCT, 1);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_i32(&w, 1, 10);
	rfd_cw_field_bool(&w, 2, true);
	put_unknown_fields(&w, 6);
	rfd_cw_struct_end(&w);
	rfd_cw_struct_end(&w);
	REQUIRE(rfd_cw_finish(&w) == 0);
	REQUIRE(rfd_server_push_decode(b.data, b.len, &p, &why) == 0);
	CHECK_EQ(p.kind, RFD_PUSH_SETUP_RESPONSE);
	CHECK(p.has_version && p.version == 10);
	rfd_buf_free(&b);
}

/* Rejections */

static const struct {
	enum decoder decoder;
	const char *hex;
	const char *why;
} bad_cases[] = {
    {REQUEST, "18 01 41 00", "RequestRpcMetadata.protocol is not an i32"},
    {REQUEST, "25 02 00", "RequestRpcMetadata.name is not a string"},
    {REQUEST, "38 00 00", "RequestRpcMetadata.kind is not an i32"},
    {REQUEST, "56 02 00", "RequestRpcMetadata.clientTimeoutMs is not an i32"},
    {REQUEST, "08 1c 00 00", "RequestRpcMetadata.compression is not an i32"},
    {REQUEST, "05 20 02 00", "RequestRpcMetadata.interactionId is not an i64"},
    {REQUEST, "05 22 02 00", "RequestRpcMetadata.interactionCreate is not a struct"},
    {REQUEST, "05 2c 02 00", "fdMetadata is not a struct"},
    {REQUEST, "01 2c 00", "fdMetadata is not a struct"},
    {REQUEST, "05 32 02 00", "RequestRpcMetadata.checksum is not a struct"},
    {REQUEST, "0c 2c 15 00 00 00", "FdMetadata.fdSeqNum is not an i64"},
    {REQUEST, "0c 2c 11 00 00", "FdMetadata.fdSeqNum is not an i64"},
    {REQUEST, "0c 2c 26 00 00 00", "FdMetadata.numFds is not an i32"},
    {REQUEST, "0c 2c 16 00 15 02 00", "truncated struct: no stop byte"},
    {REQUEST, "00 00", "trailing bytes after the struct"},
    {REQUEST, "", "truncated struct: no stop byte"},
    {REQUEST, "28 06 64 65 6d 6f 00", "binary length larger than the bytes left"},
    {RESPONSE, "75 00 00", "payloadMetadata is not a struct"},
    {RESPONSE, "68 00 00", "compression is not an i32"},
    {RESPONSE, "05 1c 00 00", "checksum is not a struct"},
    {RESPONSE, "05 18 02 00", "fdMetadata is not a struct"},
    {RESPONSE, "7c 15 00 00 00", "PayloadMetadata.responseMetadata is not a struct"},
    {RESPONSE, "7c 25 00 00 00", "PayloadMetadata.exceptionMetadata is not a struct"},
    {RESPONSE, "7c 2c 15 00 00 00 00", "exception name_utf8 is not a string"},
    {RESPONSE, "7c 2c 25 00 00 00 00", "exception what_utf8 is not a string"},
    {RESPONSE, "7c 2c 35 00 00 00 00", "exception metadata is not a struct"},
    {RESPONSE, "7c 2c 3c 15 00 00 00 00 00", "PayloadExceptionMetadata arm is not a struct"},
    {RESPONSE, "7c 2c 3c 65 00 00 00 00 00", "PayloadExceptionMetadata arm is not a struct"},
    {RESPONSE, "7c 2c 3c 1c 00 5c 00 00 00 00 00",
     "PayloadExceptionMetadata union has several fields"},
    {RESPONSE, "7c 1c 00 1c 00 00 00", "PayloadMetadata union has several fields"},
    {RESPONSE, "7c 35 00 1c 00 00 00", "PayloadMetadata union has several fields"},
    {RESPONSE, "7c 1c 00 00 00 00", "trailing bytes after the struct"},
    {STREAM_PAYLOAD, "35 00 00", "payloadMetadata is not a struct"},
    {STREAM_PAYLOAD, "18 00 00", "compression is not an i32"},
    {STREAM_PAYLOAD, "55 00 00", "fdMetadata is not a struct"},
    {STREAM_PAYLOAD, "65 00 00", "checksum is not a struct"},
    {RESPONSE_ERROR, "15 00 00", "ResponseRpcError.name_utf8 is not a string"},
    {RESPONSE_ERROR, "25 00 00", "ResponseRpcError.what_utf8 is not a string"},
    {RESPONSE_ERROR, "38 00 00", "ResponseRpcError.category is not an i32"},
    {RESPONSE_ERROR, "46 00 00", "ResponseRpcError.code is not an i32"},
    {SETUP, "38 00 00", "RequestSetupMetadata.minVersion is not an i32"},
    {SETUP, "41 00", "RequestSetupMetadata.maxVersion is not an i32"},
    {SETUP, "95 00 00", "RequestSetupMetadata.clientMetadata is not a struct"},
    {SETUP, "9c 15 00 00 00", "ClientMetadata.agent is not a string"},
    {SETUP, "d5 02 00", "RequestSetupMetadata.encodeMetadataUsingBinary is not a bool"},
    {SETUP, "e5 00 00", "RequestSetupMetadata.compressionSetupRequest is not a struct"},
    {SERVER_PUSH, "15 00 00", "ServerPushMetadata.setupResponse is not a struct"},
    {SERVER_PUSH, "1c 18 00 00 00", "SetupResponse.version is not an i32"},
    {SERVER_PUSH, "1c 00 3c 00 00", "ServerPushMetadata union has several fields"},
    {SERVER_PUSH, "1c 00 00 01", "trailing bytes after the struct"},
};

static void
test_wrong_types_and_malformed_input_rejected(void)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		uint8_t bytes[64];
		size_t len = rfd_test_hex(bad_cases[i].hex, bytes, sizeof(bytes));
		const char *why = NULL;
		int ret = decode_as(bad_cases[i].decoder, bytes, len, &why);

		if (ret != -EBADMSG || !why || strcmp(why, bad_cases[i].why) != 0)
			rfd_test_fail(__FILE__, __LINE__, "case %zu [%s]: %d \"%s\", want \"%s\"",
			              i, bad_cases[i].hex, ret, why ? why : "(none)",
			              bad_cases[i].why);
	}
}

static void
test_invalid_arguments(void)
{
	struct rfd_request_metadata request = {0};
	struct rfd_response_metadata response = {.payload_kind = 99};
	struct rfd_server_push push = {.kind = 99};
	struct rfd_buf b;
	const char *why;

	rfd_buf_init(&b);
	CHECK_EQ(rfd_request_metadata_encode(NULL, &b), -EINVAL);
	CHECK_EQ(rfd_request_metadata_encode(&request, NULL), -EINVAL);
	CHECK_EQ(rfd_response_metadata_encode(&response, &b), -EINVAL);
	CHECK_EQ(rfd_stream_payload_metadata_encode(&response, &b), -EINVAL);
	CHECK_EQ(rfd_server_push_encode(&push, &b), -EINVAL);
	CHECK_EQ(rfd_fd_metadata_encode(NULL, &b), -EINVAL);
	CHECK_EQ(rfd_response_error_encode(NULL, &b), -EINVAL);
	CHECK_EQ(rfd_setup_metadata_encode(NULL, &b), -EINVAL);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(rfd_request_metadata_decode(NULL, 1, &request, &why), -EINVAL);
	CHECK_EQ(rfd_request_metadata_decode((const uint8_t *)"", 1, NULL, &why), -EINVAL);
	/* @why may be NULL. */
	CHECK_EQ(rfd_request_metadata_decode((const uint8_t *)"", 1, &request, NULL), 0);
	CHECK_EQ(rfd_request_metadata_decode((const uint8_t *)"\x01", 1, &request, NULL), -EBADMSG);
	rfd_buf_free(&b);
}

static void
test_fd_metadata_alone(void)
{
	struct rfd_fd_metadata m = {.has_seq = true, .fd_seq = -1, .has_num = true, .num_fds = 0};
	struct rfd_buf b;

	rfd_buf_init(&b);
	REQUIRE(rfd_fd_metadata_encode(&m, &b) == 0);
	CHECK_HEX(b.data, b.len, "16 01 15 00 00");
	rfd_buf_free(&b);
}

static void
test_allocation_failure(void)
{
	struct rfd_request_metadata request = {.has_name = true, .name = slice_of("demo")};
	struct rfd_response_metadata response = {.payload_kind = RFD_PAYLOAD_RESPONSE};
	struct rfd_response_error error = {.has_code = true, .code = 1};
	struct rfd_setup_metadata setup = {.has_min_version = true, .min_version = 8};
	struct rfd_server_push push = {.kind = RFD_PUSH_SETUP_RESPONSE};
	struct rfd_fd_metadata fd = {.has_num = true, .num_fds = 1};
	struct rfd_buf b;

	rfd_buf_init(&b);
	rfd_alloc_fail_at(0);
	CHECK_EQ(rfd_request_metadata_encode(&request, &b), -ENOMEM);
	rfd_alloc_fail_at(0);
	CHECK_EQ(rfd_response_metadata_encode(&response, &b), -ENOMEM);
	rfd_alloc_fail_at(0);
	CHECK_EQ(rfd_stream_payload_metadata_encode(&response, &b), -ENOMEM);
	rfd_alloc_fail_at(0);
	CHECK_EQ(rfd_response_error_encode(&error, &b), -ENOMEM);
	rfd_alloc_fail_at(0);
	CHECK_EQ(rfd_setup_metadata_encode(&setup, &b), -ENOMEM);
	rfd_alloc_fail_at(0);
	CHECK_EQ(rfd_server_push_encode(&push, &b), -ENOMEM);
	rfd_alloc_fail_at(0);
	CHECK_EQ(rfd_fd_metadata_encode(&fd, &b), -ENOMEM);
	rfd_alloc_fail_at(-1);
	CHECK_EQ(b.len, 0);
	rfd_buf_free(&b);
}

/* 6.1: fields that are not in the known-field table are skipped whatever their type. */
static void
test_server_push_other_arms_are_unknown(void)
{
	static const char *const hexes[] = {"25 00 00", "3b 00 00", "2c 00 00", "38 02 61 62 00"};

	for (size_t i = 0; i < sizeof(hexes) / sizeof(hexes[0]); i++) {
		uint8_t bytes[16];
		size_t len = rfd_test_hex(hexes[i], bytes, sizeof(bytes));
		struct rfd_server_push d;
		const char *why = NULL;

		if (rfd_server_push_decode(bytes, len, &d, &why) != 0 || d.kind != RFD_PUSH_NONE)
			rfd_test_fail(__FILE__, __LINE__, "[%s]: %s, kind %d", hexes[i],
			              why ? why : "decoded", d.kind);
	}
}

/* META-14: compression 0 (NONE) asks nothing; the last of repeated fields counts (6.1). */
static void
test_request_compression_value_and_repeats(void)
{
	static const struct {
		const char *hex;
		bool compression;
		bool checksum;
	} cases[] = {
	    {"e5 00 00", false, false},
	    {"e5 04 00", true, false},
	    {"e5 04 05 1c 00 00", false, false},
	    {"e5 00 05 1c 04 00", true, false},
	    {"0c 32 15 02 00 0c 32 15 00 00 00", false, false},
	    {"0c 32 15 00 00 0c 32 15 02 00 00", false, true},
	    {"0c 32 15 02 00 0c 32 00 00", false, false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t bytes[32];
		size_t len = rfd_test_hex(cases[i].hex, bytes, sizeof(bytes));
		struct rfd_request_metadata d;
		const char *why = NULL;

		if (rfd_request_metadata_decode(bytes, len, &d, &why) != 0 ||
		    d.uses_compression != cases[i].compression ||
		    d.uses_checksum != cases[i].checksum)
			rfd_test_fail(__FILE__, __LINE__, "[%s]: %s, compression %d checksum %d",
			              cases[i].hex, why ? why : "decoded", d.uses_compression,
			              d.uses_checksum);
	}
}

static void
test_response_compression_and_checksum_values(void)
{
	static const struct {
		const char *hex;
		bool compression;
		bool checksum;
	} cases[] = {
	    {"65 00 00", false, false},       {"65 02 00", true, false},
	    {"ec 15 00 00 00", false, false}, {"ec 00 00", false, false},
	    {"ec 15 02 00 00", false, true},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t bytes[32];
		size_t len = rfd_test_hex(cases[i].hex, bytes, sizeof(bytes));
		struct rfd_response_metadata d;
		const char *why = NULL;

		if (rfd_response_metadata_decode(bytes, len, &d, &why) != 0 ||
		    d.uses_compression != cases[i].compression ||
		    d.uses_checksum != cases[i].checksum)
			rfd_test_fail(__FILE__, __LINE__, "[%s]: %s, compression %d checksum %d",
			              cases[i].hex, why ? why : "decoded", d.uses_compression,
			              d.uses_checksum);
	}
}

/* 6.1, META-21, META-22: an empty payloadMetadata union is not malformed, nor absent. */
static void
test_payload_metadata_empty_absent_and_repeated(void)
{
	static const struct {
		const char *hex;
		enum rfd_payload_kind kind;
		bool has_what;
	} cases[] = {
	    {"00", RFD_PAYLOAD_NONE, false},
	    {"7c 00 00", RFD_PAYLOAD_EMPTY, false},
	    {"7c 3c 00 00 00", RFD_PAYLOAD_EMPTY, false},
	    {"7c 2c 28 01 58 00 00  0c 0e 1c 00 00  00", RFD_PAYLOAD_RESPONSE, false},
	    {"7c 1c 00 00  0c 0e 00  00", RFD_PAYLOAD_EMPTY, false},
	    {"7c 1c 00 00  0c 0e 2c 28 01 58 00 00  00", RFD_PAYLOAD_OTHER_EXCEPTION, true},
	};
	struct rfd_response_metadata m = {.payload_kind = RFD_PAYLOAD_EMPTY};
	struct rfd_buf b;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t bytes[32];
		size_t len = rfd_test_hex(cases[i].hex, bytes, sizeof(bytes));
		struct rfd_response_metadata d;
		const char *why = NULL;

		if (rfd_response_metadata_decode(bytes, len, &d, &why) != 0 ||
		    d.payload_kind != cases[i].kind || d.has_ex_what != cases[i].has_what)
			rfd_test_fail(__FILE__, __LINE__, "[%s]: %s, kind %d", cases[i].hex,
			              why ? why : "decoded", d.payload_kind);
	}

	rfd_buf_init(&b);
	REQUIRE(rfd_response_metadata_encode(&m, &b) == 0);
	CHECK_HEX(b.data, b.len, "7c 00 00");
	rfd_buf_free(&b);
}

/* 6.1: a repeated clientMetadata replaces the earlier one whole. */
static void
test_repeated_client_metadata_replaces_the_first(void)
{
	uint8_t bytes[32];
	size_t len = rfd_test_hex("9c 18 01 61 00  0c 12 00  00", bytes, sizeof(bytes));
	struct rfd_setup_metadata d;
	const char *why = NULL;

	REQUIRE(rfd_setup_metadata_decode(bytes, len, &d, &why) == 0);
	CHECK(!d.has_agent);
}

/* Extensions (spec 21.8) */

#define EXT_KEY_HEX "0c 72 6f 63 6b 65 74 66 64 2e 66 64 73"

/* Appendix A.12: the offer in ClientMetadata.otherMetadata, without an agent. */
static void
test_setup_offer(void)
{
	static const char a12[] = "35 10 15 14 5c 3b 01 88 " EXT_KEY_HEX
	                          " 0e 73 69 6e 6b 2c 65 78 63 65 70 74 69 6f 6e 00 00";
	struct rfd_setup_metadata m = {
	    .has_min_version = true,
	    .min_version = 8,
	    .has_max_version = true,
	    .max_version = 10,
	    .has_extensions = true,
	    .extensions = slice_of("sink,exception"),
	};
	struct rfd_setup_metadata d;
	struct rfd_buf b;
	const char *why;

	rfd_buf_init(&b);
	REQUIRE(rfd_setup_metadata_encode(&m, &b) == 0);
	CHECK_HEX(b.data, b.len, a12);
	REQUIRE(rfd_setup_metadata_decode(b.data, b.len, &d, &why) == 0);
	CHECK(!d.has_agent);
	CHECK(d.has_extensions);
	CHECK_SLICE(d.extensions, "sink,exception");
	check_every_prefix_fails(SETUP, b.data, b.len);

	/* With the agent, field 3 follows field 1 (delta 2). */
	b.len = 0;
	m.has_agent = true;
	m.agent = slice_of("a");
	m.extensions = slice_of("sink");
	REQUIRE(rfd_setup_metadata_encode(&m, &b) == 0);
	CHECK_HEX(b.data, b.len,
	          "35 10 15 14 5c 18 01 61 2b 01 88 " EXT_KEY_HEX " 04 73 69 6e 6b 00 00");
	REQUIRE(rfd_setup_metadata_decode(b.data, b.len, &d, &why) == 0);
	CHECK(d.has_agent && d.has_extensions);
	CHECK_SLICE(d.extensions, "sink");
	rfd_buf_free(&b);
}

/*
 * Appendix A.13: the answer in ResponseRpcMetadata.otherMetadata, before
 * payloadMetadata.  StreamPayloadMetadata has no answer: its otherMetadata
 * (field 2) is skipped.
 */
static void
test_response_answer(void)
{
	static const char a13[] = "3b 01 88 " EXT_KEY_HEX " 04 73 69 6e 6b 4c 1c 00 00 00";
	struct rfd_response_metadata m = {
	    .payload_kind = RFD_PAYLOAD_RESPONSE,
	    .has_extensions = true,
	    .extensions = slice_of("sink"),
	};
	struct rfd_response_metadata d;
	struct rfd_buf b;
	const char *why;
	uint8_t bytes[64];
	size_t len;

	rfd_buf_init(&b);
	REQUIRE(rfd_response_metadata_encode(&m, &b) == 0);
	CHECK_HEX(b.data, b.len, a13);
	REQUIRE(rfd_response_metadata_decode(b.data, b.len, &d, &why) == 0);
	CHECK(d.has_extensions);
	CHECK_SLICE(d.extensions, "sink");
	CHECK_EQ(d.payload_kind, RFD_PAYLOAD_RESPONSE);
	CHECK(!d.item_fields);
	check_every_prefix_fails(RESPONSE, b.data, b.len);

	/* Encoded as StreamPayloadMetadata, the answer is not written. */
	b.len = 0;
	REQUIRE(rfd_stream_payload_metadata_encode(&m, &b) == 0);
	CHECK_HEX(b.data, b.len, "3c 1c 00 00 00");
	rfd_buf_free(&b);

	len = rfd_test_hex("2b 01 88 " EXT_KEY_HEX " 04 73 69 6e 6b 1c 1c 00 00 00", bytes,
	                   sizeof(bytes));
	REQUIRE(rfd_stream_payload_metadata_decode(bytes, len, &d, &why) == 0);
	CHECK(!d.has_extensions);
	CHECK_EQ(d.payload_kind, RFD_PAYLOAD_RESPONSE);
}

/*
 * EXT-2: an otherMetadata that is not a map of strings holds no answer and
 * is skipped, not malformed; other keys are skipped; the last entry of the
 * key counts; a repeated field replaces the earlier one; a field 3 holding
 * a struct still marks a stream item's metadata.
 */
static void
test_extension_maps(void)
{
	static const struct {
		const char *hex;
		bool has;
		const char *value;
	} cases[] = {
	    {"35 05 00", false, ""},
	    {"3b 00 00", false, ""},
	    {"3b 01 85 " EXT_KEY_HEX " 02 00", false, ""},
	    {"3b 01 58 02 04 73 69 6e 6b 00", false, ""},
	    {"39 18 04 73 69 6e 6b 00", false, ""},
	    {"3b 02 88 01 61 01 62 " EXT_KEY_HEX " 01 78 00", true, "x"},
	    {"3b 02 88 " EXT_KEY_HEX " 01 78 " EXT_KEY_HEX " 01 79 00", true, "y"},
	    {"3b 01 88 " EXT_KEY_HEX " 01 78 05 06 00 00", false, ""},
	};
	struct rfd_response_metadata d;
	const char *why;
	uint8_t bytes[96];
	size_t len;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = rfd_test_hex(cases[i].hex, bytes, sizeof(bytes));
		why = NULL;
		if (rfd_response_metadata_decode(bytes, len, &d, &why) != 0 ||
		    d.has_extensions != cases[i].has) {
			rfd_test_fail(__FILE__, __LINE__, "case %zu: %s, has %d", i,
			              why ? why : "decoded", d.has_extensions);
			continue;
		}
		if (cases[i].has)
			CHECK_SLICE(d.extensions, cases[i].value);
	}
	len = rfd_test_hex("3c 00 00", bytes, sizeof(bytes));
	REQUIRE(rfd_response_metadata_decode(bytes, len, &d, &why) == 0);
	CHECK(d.item_fields && !d.has_extensions);
	/* A map that runs past the end, or whose entry is not a string, is malformed. */
	len = rfd_test_hex("3b 01 88 " EXT_KEY_HEX " 05 73 69 6e 6b", bytes, sizeof(bytes));
	CHECK_EQ(rfd_response_metadata_decode(bytes, len, &d, &why), -EBADMSG);
	len = rfd_test_hex("3b 02 88 " EXT_KEY_HEX " 01 78", bytes, sizeof(bytes));
	CHECK_EQ(rfd_response_metadata_decode(bytes, len, &d, &why), -EBADMSG);
}

/* EXT-1, EXT-2: the names of an offer or answer, read and written. */
static void
test_extension_names(void)
{
	static const struct {
		const char *value;
		unsigned set;
	} parsed[] = {
	    {"sink,exception", RFD_EXT_SINK | RFD_EXT_EXCEPTION},
	    {"exception,sink", RFD_EXT_SINK | RFD_EXT_EXCEPTION},
	    {" sink ,,\texception\t, future-name", RFD_EXT_SINK | RFD_EXT_EXCEPTION},
	    {"sink", RFD_EXT_SINK},
	    {"exception", RFD_EXT_EXCEPTION},
	    {"", 0},
	    {",", 0},
	    {"Sink,sinks,exceptions,sink exception", 0},
	    {"future,sink", RFD_EXT_SINK},
	    {"sink,sink", RFD_EXT_SINK},
	};
	static const struct {
		unsigned set;
		const char *text;
	} formatted[] = {
	    {RFD_EXT_SINK | RFD_EXT_EXCEPTION, "sink,exception"},
	    {RFD_EXT_SINK, "sink"},
	    {RFD_EXT_EXCEPTION, "exception"},
	    {0, ""},
	    {1u << 7, ""},
	};
	char buf[RFD_EXTENSIONS_TEXT_SIZE];

	for (size_t i = 0; i < sizeof(parsed) / sizeof(parsed[0]); i++)
		if (rfd_extensions_parse(slice_of(parsed[i].value)) != parsed[i].set)
			rfd_test_fail(
			    __FILE__, __LINE__, "\"%s\" reads as %u, not %u", parsed[i].value,
			    rfd_extensions_parse(slice_of(parsed[i].value)), parsed[i].set);
	CHECK_EQ(rfd_extensions_parse((struct rfd_slice){NULL, 0}), 0);
	for (size_t i = 0; i < sizeof(formatted) / sizeof(formatted[0]); i++) {
		CHECK_EQ(rfd_extensions_format(formatted[i].set, buf, sizeof(buf)),
		         strlen(formatted[i].text));
		CHECK(strcmp(buf, formatted[i].text) == 0);
	}
	/* Cut at a name: never half a name. */
	CHECK_EQ(rfd_extensions_format(RFD_EXT_SINK | RFD_EXT_EXCEPTION, buf, 8), 4);
	CHECK(strcmp(buf, "sink") == 0);
}

static const struct rfd_test tests[] = {
    {"worked_example_request", test_worked_example_request},
    {"worked_example_data", test_worked_example_data},
    {"request_round_trip", test_request_round_trip},
    {"request_declined_features_are_flagged", test_request_declined_features_are_flagged},
    {"compression_config_alone_asks_nothing", test_compression_config_alone_asks_nothing},
    {"checksum_none_asks_nothing", test_checksum_none_asks_nothing},
    {"repeated_fd_metadata_replaces_the_first", test_repeated_fd_metadata_replaces_the_first},
    {"response_metadata_round_trips", test_response_metadata_round_trips},
    {"stream_payload_round_trip", test_stream_payload_round_trip},
    {"response_error", test_response_error},
    {"setup_metadata", test_setup_metadata},
    {"server_push", test_server_push},
    {"unknown_fields_in_request", test_unknown_fields_in_request},
    {"unknown_fields_in_response", test_unknown_fields_in_response},
    {"unknown_fields_in_error_setup_and_push", test_unknown_fields_in_error_setup_and_push},
    {"wrong_types_and_malformed_input_rejected", test_wrong_types_and_malformed_input_rejected},
    {"invalid_arguments", test_invalid_arguments},
    {"fd_metadata_alone", test_fd_metadata_alone},
    {"allocation_failure", test_allocation_failure},
    {"server_push_other_arms_are_unknown", test_server_push_other_arms_are_unknown},
    {"request_compression_value_and_repeats", test_request_compression_value_and_repeats},
    {"response_compression_and_checksum_values", test_response_compression_and_checksum_values},
    {"payload_metadata_empty_absent_and_repeated", test_payload_metadata_empty_absent_and_repeated},
    {"repeated_client_metadata_replaces_the_first",
     test_repeated_client_metadata_replaces_the_first},
    {"setup_offer", test_setup_offer},
    {"response_answer", test_response_answer},
    {"extension_maps", test_extension_maps},
    {"extension_names", test_extension_names},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	return rfd_test_main(argc, argv, tests);
}
