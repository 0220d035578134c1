/* SPDX-License-Identifier: MIT */
/*
 * Golden vectors derived from fbthrift's source (interop/vectors/README.md
 * says how): each is decoded with the library's frame and metadata decoders
 * and checked field by field against what fbthrift's code puts there, then
 * encoded again where the library writes the same fields.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "compact.h"
#include "frame.h"
#include "metadata.h"
#include "testutil.h"

#ifndef RFD_INTEROP_VECTORS_DIR
#error "RFD_INTEROP_VECTORS_DIR must name interop/vectors"
#endif

enum {
	VECTOR_MAX = 4096,
	PROTOCOL_KEY_SIZE = 4,
};

/* One vector file, its bytes and its frame decoded in place. */
struct vector {
	uint8_t bytes[VECTOR_MAX];
	size_t len;
	struct rfd_frame frame;
};

#define CHECK_SLICE(slice, text) check_slice(__FILE__, __LINE__, (slice), (text))

static void
check_slice(const char *file, int line, struct rfd_slice slice, const char *text)
{
	size_t len = strlen(text);

	if (slice.len != len || (len > 0 && memcmp(slice.ptr, text, len) != 0))
		rfd_test_fail(file, line, "slice \"%.*s\", want \"%s\"", (int)slice.len,
		              slice.ptr ? (const char *)slice.ptr : "", text);
}

static bool
same_bytes(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
	return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

static int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Hex bytes separated by white space; '#' starts a comment that runs to the end of the line. */
static int
parse_hex_file(FILE *in, struct vector *v)
{
	int c, high = -1;

	v->len = 0;
	while ((c = getc(in)) != EOF) {
		if (c == '#') {
			while (c != EOF && c != '\n')
				c = getc(in);
			continue;
		}
		if (isspace(c))
			continue;
		if (hex_digit(c) < 0 || v->len == VECTOR_MAX)
			return -EBADMSG;
		if (high < 0) {
			high = hex_digit(c);
			continue;
		}
		v->bytes[v->len++] = (uint8_t)(high << 4 | hex_digit(c));
		high = -1;
	}
	return high < 0 ? 0 : -EBADMSG;
}

/* Read interop/vectors/NAME.hex and decode it as exactly one frame. */
static int
load_vector(const char *name, struct vector *v)
{
	char path[512];
	const char *why = NULL;
	size_t frame_len;
	FILE *in;
	int r;

	snprintf(path, sizeof(path), "%s/%s.hex", RFD_INTEROP_VECTORS_DIR, name);
	in = fopen(path, "re");
	if (!in) {
		r = -errno;
		rfd_test_fail(__FILE__, __LINE__, "%s: %s", path, strerror(-r));
		return r;
	}
	r = parse_hex_file(in, v);
	fclose(in);
	if (r < 0) {
		rfd_test_fail(__FILE__, __LINE__, "%s: not a hex file", path);
		return r;
	}
	r = rfd_frame_split(v->bytes, v->len, RFD_FRAME_LENGTH_MAX + RFD_FRAME_LENGTH_SIZE,
	                    &frame_len, &why);
	if (r == 1 && frame_len != v->len) {
		why = "bytes after the frame";
		r = -EBADMSG;
	}
	if (r == 1)
		r = rfd_frame_decode(v->bytes + RFD_FRAME_LENGTH_SIZE,
		                     v->len - RFD_FRAME_LENGTH_SIZE, &v->frame, &why);
	if (r < 0)
		rfd_test_fail(__FILE__, __LINE__, "%s: %s", path, why ? why : "truncated");
	return r < 0 ? r : 0;
}

/* The frame encoded again must be the vector, byte for byte. */
static void
check_reencodes(const struct vector *v)
{
	struct rfd_buf out;

	rfd_buf_init(&out);
	CHECK_EQ(rfd_frame_encode(&v->frame, &out), 0);
	CHECK(same_bytes(out.data, out.len, v->bytes, v->len));
	rfd_buf_free(&out);
}

/*
 * The only field of a Compact struct with id @id, which must be a string;
 * other fields are skipped.  Returns 0 with *value, or -ENOENT.
 */
static int
find_string_field(const uint8_t *bytes, size_t len, int16_t id, struct rfd_slice *value)
{
	struct rfd_cr_field f;
	struct rfd_cr r;
	int ret, found = -ENOENT;

	rfd_cr_init(&r, bytes, len);
	ret = rfd_cr_struct_begin(&r);
	while (ret >= 0 && (ret = rfd_cr_field(&r, &f)) > 0) {
		if (f.id == id && f.type == RFD_CT_BINARY) {
			ret = rfd_cr_binary(&r, value);
			found = 0;
		} else {
			ret = rfd_cr_skip_field(&r, &f);
		}
	}
	if (ret == 0)
		ret = rfd_cr_finish(&r);
	return ret < 0 ? ret : found;
}

static void
test_fbthrift_setup(void)
{
	static const uint8_t key[PROTOCOL_KEY_SIZE] = {0xf0, 0x9f, 0x9a, 0x80};
	struct rfd_setup_metadata setup;
	struct rfd_slice client_metadata, hostname;
	const struct rfd_frame *f;
	struct rfd_cr_field field;
	const char *why = NULL;
	struct rfd_cr r;
	struct vector v;

	REQUIRE(load_vector("fbthrift-setup", &v) == 0);
	f = &v.frame;
	CHECK_EQ(f->type, RFD_FRAME_SETUP);
	CHECK_EQ(f->stream_id, 0);
	CHECK_EQ(f->flags, RFD_FLAG_METADATA);
	CHECK_EQ(f->version_major, 1);
	CHECK_EQ(f->version_minor, 0);
	CHECK_EQ(f->keepalive_ms, 0x7FFFFFFF);
	CHECK_EQ(f->max_lifetime_ms, 0x7FFFFFFF);
	CHECK_EQ(f->resume_token.len, 0);
	CHECK_SLICE(f->metadata_mime, "application/x-rocket-metadata+compact");
	CHECK_SLICE(f->data_mime, "application/x-rocket-payload");
	CHECK_EQ(f->data.len, 0);
	REQUIRE(f->has_metadata && f->metadata.len > PROTOCOL_KEY_SIZE);
	CHECK(memcmp(f->metadata.ptr, key, PROTOCOL_KEY_SIZE) == 0);

	REQUIRE(rfd_setup_metadata_decode(f->metadata.ptr + PROTOCOL_KEY_SIZE,
	                                  f->metadata.len - PROTOCOL_KEY_SIZE, &setup, &why) == 0);
	CHECK(setup.has_min_version);
	CHECK_EQ(setup.min_version, 8);
	CHECK(setup.has_max_version);
	CHECK_EQ(setup.max_version, 10);
	CHECK(setup.has_agent);
	CHECK_SLICE(setup.agent, "RocketClientChannel.cpp");
	CHECK(!setup.encode_metadata_using_binary);
	CHECK(!setup.uses_compression_setup);

	/* ClientMetadata.hostname, which the library's decoder skips. */
	rfd_cr_init(&r, f->metadata.ptr + PROTOCOL_KEY_SIZE, f->metadata.len - PROTOCOL_KEY_SIZE);
	client_metadata = (struct rfd_slice){0};
	REQUIRE(rfd_cr_struct_begin(&r) == 0);
	while (rfd_cr_field(&r, &field) > 0) {
		if (field.id != 9) {
			REQUIRE(rfd_cr_skip_field(&r, &field) == 0);
			continue;
		}
		client_metadata.ptr = r.p;
		REQUIRE(rfd_cr_skip_field(&r, &field) == 0);
		client_metadata.len = (size_t)(r.p - client_metadata.ptr);
	}
	REQUIRE(client_metadata.len > 0);
	REQUIRE(find_string_field(client_metadata.ptr, client_metadata.len, 2, &hostname) == 0);
	CHECK_SLICE(hostname, "devbox");

	check_reencodes(&v);
}

static void
test_fbthrift_request_with_fds(void)
{
	struct rfd_request_metadata md;
	struct rfd_slice tag;
	struct rfd_buf again;
	const struct rfd_frame *f;
	const char *why = NULL;
	struct vector v;

	REQUIRE(load_vector("fbthrift-request-fds", &v) == 0);
	f = &v.frame;
	CHECK_EQ(f->type, RFD_FRAME_REQUEST_RESPONSE);
	CHECK_EQ(f->stream_id, 3);
	CHECK_EQ(f->flags, RFD_FLAG_METADATA);
	REQUIRE(f->has_metadata);

	REQUIRE(rfd_request_metadata_decode(f->metadata.ptr, f->metadata.len, &md, &why) == 0);
	CHECK(md.has_protocol);
	CHECK_EQ(md.protocol, RFD_PROTOCOL_COMPACT);
	CHECK(md.has_name);
	CHECK_SLICE(md.name, "echo");
	CHECK(md.has_kind);
	CHECK_EQ(md.kind, RFD_RPC_SINGLE_REQUEST_SINGLE_RESPONSE);
	CHECK(md.has_client_timeout);
	CHECK_EQ(md.client_timeout_ms, 60000);
	CHECK(md.fd.present);
	CHECK(md.fd.has_seq);
	CHECK_EQ(md.fd.fd_seq, 1);
	CHECK(md.fd.has_num);
	CHECK_EQ(md.fd.num_fds, 2);
	CHECK(!md.uses_compression && !md.uses_interaction && !md.uses_checksum);

	/* echo's argument struct {1: tag}. */
	REQUIRE(find_string_field(f->data.ptr, f->data.len, 1, &tag) == 0);
	CHECK_SLICE(tag, "kthx");

	/* The library writes the same fields in the same order. */
	rfd_buf_init(&again);
	CHECK_EQ(rfd_request_metadata_encode(&md, &again), 0);
	CHECK(same_bytes(again.data, again.len, f->metadata.ptr, f->metadata.len));
	rfd_buf_free(&again);

	check_reencodes(&v);
}

/* QueueMetadata {1: queueingTimeMs, 2: queueTimeoutMs}, ResponseRpcMetadata field 10. */
static void
check_queue_metadata(const uint8_t *bytes, size_t len, int32_t queueing, int32_t timeout)
{
	int32_t value, seen = 0;
	struct rfd_cr_field f;
	struct rfd_cr r;

	rfd_cr_init(&r, bytes, len);
	REQUIRE(rfd_cr_struct_begin(&r) == 0);
	while (rfd_cr_field(&r, &f) > 0) {
		if (f.id != 10) {
			REQUIRE(rfd_cr_skip_field(&r, &f) == 0);
			continue;
		}
		REQUIRE(f.type == RFD_CT_STRUCT && rfd_cr_struct_begin(&r) == 0);
		while (rfd_cr_field(&r, &f) > 0) {
			REQUIRE(f.id == 1 || f.id == 2);
			REQUIRE(f.type == RFD_CT_I32 && rfd_cr_i32(&r, &value) == 0);
			CHECK_EQ(value, f.id == 1 ? queueing : timeout);
			seen |= 1 << f.id;
		}
	}
	CHECK_EQ(rfd_cr_finish(&r), 0);
	CHECK_EQ(seen, 1 << 1 | 1 << 2);
}

static void
test_fbthrift_response_with_fds(void)
{
	struct rfd_response_metadata md, md_again;
	struct rfd_buf again;
	struct rfd_cr_field field;
	struct rfd_slice result;
	const struct rfd_frame *f;
	const char *why = NULL;
	struct rfd_cr r;
	struct vector v;

	REQUIRE(load_vector("fbthrift-response-fds", &v) == 0);
	f = &v.frame;
	CHECK_EQ(f->type, RFD_FRAME_PAYLOAD);
	CHECK_EQ(f->stream_id, 3);
	CHECK_EQ(f->flags, RFD_FLAG_METADATA | RFD_FLAG_NEXT | RFD_FLAG_COMPLETE);
	REQUIRE(f->has_metadata);

	REQUIRE(rfd_response_metadata_decode(f->metadata.ptr, f->metadata.len, &md, &why) == 0);
	CHECK_EQ(md.payload_kind, RFD_PAYLOAD_RESPONSE);
	CHECK(!md.has_ex_name && !md.has_ex_what);
	CHECK(md.fd.present);
	CHECK(md.fd.has_seq);
	CHECK_EQ(md.fd.fd_seq, 1);
	CHECK(md.fd.has_num);
	CHECK_EQ(md.fd.num_fds, 2);
	CHECK(!md.uses_compression && !md.uses_checksum);
	check_queue_metadata(f->metadata.ptr, f->metadata.len, 0, 100);

	/* The result struct {0: "kthx"}: field 0 needs the long field header. */
	rfd_cr_init(&r, f->data.ptr, f->data.len);
	REQUIRE(rfd_cr_struct_begin(&r) == 0);
	REQUIRE(rfd_cr_field(&r, &field) == 1);
	CHECK_EQ(field.id, 0);
	REQUIRE(field.type == RFD_CT_BINARY && rfd_cr_binary(&r, &result) == 0);
	CHECK_SLICE(result, "kthx");
	CHECK_EQ(rfd_cr_field(&r, &field), 0);
	CHECK_EQ(rfd_cr_finish(&r), 0);

	/*
	 * The library does not write queueMetadata: its encoding is the vector's
	 * without field 10, so fdMetadata's header counts from field 7.
	 */
	rfd_buf_init(&again);
	CHECK_EQ(rfd_response_metadata_encode(&md, &again), 0);
	CHECK(same_bytes(again.data, again.len,
	                 (const uint8_t *)"\x7c\x1c\x00\x00\x5c\x16\x02\x15\x04\x00\x00", 11));
	REQUIRE(rfd_response_metadata_decode(again.data, again.len, &md_again, &why) == 0);
	CHECK_EQ(md_again.payload_kind, md.payload_kind);
	CHECK(md_again.fd.present && md_again.fd.has_seq && md_again.fd.has_num);
	CHECK_EQ(md_again.fd.fd_seq, md.fd.fd_seq);
	CHECK_EQ(md_again.fd.num_fds, md.fd.num_fds);
	rfd_buf_free(&again);

	check_reencodes(&v);
}

static void
test_fbthrift_fd_mismatch_error(void)
{
	struct rfd_response_error error;
	struct rfd_buf again;
	const struct rfd_frame *f;
	const char *why = NULL;
	struct vector v;

	REQUIRE(load_vector("fbthrift-fd-mismatch-error", &v) == 0);
	f = &v.frame;
	CHECK_EQ(f->type, RFD_FRAME_ERROR);
	CHECK_EQ(f->stream_id, 5);
	CHECK_EQ(f->flags, 0);
	CHECK_EQ(f->u32, RFD_ERROR_INVALID);
	CHECK(!f->has_metadata);

	REQUIRE(rfd_response_error_decode(f->data.ptr, f->data.len, &error, &why) == 0);
	CHECK(error.has_name);
	CHECK_SLICE(error.name, "REQUEST_PARSING_FAILURE");
	/* fbthrift's what_utf8 is its own prose; the vector leaves it out. */
	CHECK(!error.has_what);
	CHECK(error.has_category);
	CHECK_EQ(error.category, RFD_ERROR_CATEGORY_INVALID_REQUEST);
	CHECK(error.has_code);
	CHECK_EQ(error.code, RFD_ERROR_CODE_REQUEST_PARSING_FAILURE);

	rfd_buf_init(&again);
	CHECK_EQ(rfd_response_error_encode(&error, &again), 0);
	CHECK(same_bytes(again.data, again.len, f->data.ptr, f->data.len));
	rfd_buf_free(&again);

	check_reencodes(&v);
}

static const struct rfd_test tests[] = {
    {"fbthrift_setup", test_fbthrift_setup},
    {"fbthrift_request_with_fds", test_fbthrift_request_with_fds},
    {"fbthrift_response_with_fds", test_fbthrift_response_with_fds},
    {"fbthrift_fd_mismatch_error", test_fbthrift_fd_mismatch_error},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	return rfd_test_main(argc, argv, tests);
}
