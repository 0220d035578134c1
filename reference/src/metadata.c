/* SPDX-License-Identifier: MIT */
#include "metadata.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "compact.h"

/* Field ids of RpcMetadata.thrift. */
enum {
	FD_SEQ_NUM = 1,
	FD_NUM_FDS = 2,

	REQUEST_PROTOCOL = 1,
	REQUEST_NAME = 2,
	REQUEST_KIND = 3,
	REQUEST_CLIENT_TIMEOUT_MS = 5,
	REQUEST_COMPRESSION = 14,
	REQUEST_INTERACTION_ID = 16,
	REQUEST_INTERACTION_CREATE = 17,
	REQUEST_FD_METADATA = 22,
	REQUEST_CHECKSUM = 25,

	PAYLOAD_RESPONSE_METADATA = 1,
	PAYLOAD_EXCEPTION_METADATA = 2,

	EXCEPTION_NAME = 1,
	EXCEPTION_WHAT = 2,
	EXCEPTION_METADATA = 3,

	EXCEPTION_DECLARED = 1,
	EXCEPTION_APP_UNKNOWN = 6,

	ERROR_NAME = 1,
	ERROR_WHAT = 2,
	ERROR_CATEGORY = 3,
	ERROR_CODE = 4,

	SETUP_MIN_VERSION = 3,
	SETUP_MAX_VERSION = 4,
	SETUP_CLIENT_METADATA = 9,
	SETUP_ENCODE_METADATA_USING_BINARY = 13,
	SETUP_COMPRESSION_SETUP_REQUEST = 14,

	CLIENT_METADATA_AGENT = 1,
	CLIENT_METADATA_OTHER = 3,

	PUSH_SETUP_RESPONSE = 1,
	PUSH_STREAM_HEADERS = 2,
	PUSH_DRAIN_COMPLETE = 3,

	SETUP_RESPONSE_VERSION = 1,
};

/*
 * ResponseRpcMetadata and StreamPayloadMetadata carry the same fields under
 * different ids; 0 where one has no such field.
 */
struct payload_layout {
	int16_t other_metadata; /* read and written for the extension answer only */
	int16_t payload_metadata;
	int16_t compression;
	int16_t fd_metadata;
	int16_t checksum;
	int16_t stream_id;
	/* The ids of the other struct's payloadMetadata and fdMetadata. */
	int16_t item_payload_metadata;
	int16_t item_fd_metadata;
};

static const struct payload_layout response_layout = {
    .other_metadata = 3,
    .payload_metadata = 7,
    .compression = 6,
    .fd_metadata = 12,
    .checksum = 14,
    .stream_id = 9,
    .item_payload_metadata = 3,
    .item_fd_metadata = 5,
};

static const struct payload_layout stream_payload_layout = {
    .payload_metadata = 3,
    .compression = 1,
    .fd_metadata = 5,
    .checksum = 6,
};

/* Encoding */

static void
put_empty_struct_field(struct rfd_cw *w, int16_t id)
{
	rfd_cw_field(w, RFD_CT_STRUCT, id);
	rfd_cw_struct_begin(w);
	rfd_cw_struct_end(w);
}

static void
put_fd_metadata_struct(struct rfd_cw *w, const struct rfd_fd_metadata *m)
{
	rfd_cw_struct_begin(w);
	if (m->has_seq)
		rfd_cw_field_i64(w, FD_SEQ_NUM, m->fd_seq);
	if (m->has_num)
		rfd_cw_field_i32(w, FD_NUM_FDS, m->num_fds);
	rfd_cw_struct_end(w);
}

static void
put_fd_metadata_field(struct rfd_cw *w, int16_t id, const struct rfd_fd_metadata *m)
{
	if (!m->present)
		return;
	rfd_cw_field(w, RFD_CT_STRUCT, id);
	put_fd_metadata_struct(w, m);
}

static void
put_slice_field(struct rfd_cw *w, int16_t id, bool has, struct rfd_slice value)
{
	if (has)
		rfd_cw_field_binary(w, id, value.ptr, value.len);
}

static void
put_i32_field(struct rfd_cw *w, int16_t id, bool has, int32_t value)
{
	if (has)
		rfd_cw_field_i32(w, id, value);
}

/* An otherMetadata map<string, string> holding the one key RFD_EXTENSIONS_KEY. */
static void
put_extensions_field(struct rfd_cw *w, int16_t id, bool has, struct rfd_slice value)
{
	if (!has)
		return;
	rfd_cw_field(w, RFD_CT_MAP, id);
	rfd_cw_map_begin(w, RFD_CT_BINARY, RFD_CT_BINARY, 1);
	rfd_cw_string(w, RFD_EXTENSIONS_KEY);
	rfd_cw_binary(w, value.ptr, value.len);
}

/* PayloadExceptionMetadataBase */
static void
put_exception_metadata(struct rfd_cw *w, const struct rfd_response_metadata *m)
{
	rfd_cw_struct_begin(w);
	put_slice_field(w, EXCEPTION_NAME, m->has_ex_name, m->ex_name);
	put_slice_field(w, EXCEPTION_WHAT, m->has_ex_what, m->ex_what);
	if (m->payload_kind != RFD_PAYLOAD_OTHER_EXCEPTION) {
		rfd_cw_field(w, RFD_CT_STRUCT, EXCEPTION_METADATA);
		rfd_cw_struct_begin(w);
		put_empty_struct_field(w, m->payload_kind == RFD_PAYLOAD_DECLARED_EXCEPTION
		                              ? EXCEPTION_DECLARED
		                              : EXCEPTION_APP_UNKNOWN);
		rfd_cw_struct_end(w);
	}
	rfd_cw_struct_end(w);
}

static int
put_payload_metadata_field(struct rfd_cw *w, int16_t id, const struct rfd_response_metadata *m)
{
	switch (m->payload_kind) {
	case RFD_PAYLOAD_NONE:
		return 0;
	case RFD_PAYLOAD_EMPTY:
		rfd_cw_field(w, RFD_CT_STRUCT, id);
		rfd_cw_struct_begin(w);
		rfd_cw_struct_end(w);
		return 0;
	case RFD_PAYLOAD_RESPONSE:
		rfd_cw_field(w, RFD_CT_STRUCT, id);
		rfd_cw_struct_begin(w);
		put_empty_struct_field(w, PAYLOAD_RESPONSE_METADATA);
		rfd_cw_struct_end(w);
		return 0;
	case RFD_PAYLOAD_DECLARED_EXCEPTION:
	case RFD_PAYLOAD_APP_UNKNOWN_EXCEPTION:
	case RFD_PAYLOAD_OTHER_EXCEPTION:
		rfd_cw_field(w, RFD_CT_STRUCT, id);
		rfd_cw_struct_begin(w);
		rfd_cw_field(w, RFD_CT_STRUCT, PAYLOAD_EXCEPTION_METADATA);
		put_exception_metadata(w, m);
		rfd_cw_struct_end(w);
		return 0;
	default:
		return -EINVAL;
	}
}

static int
encode_payload_metadata(const struct rfd_response_metadata *m, const struct payload_layout *layout,
                        struct rfd_buf *out)
{
	struct rfd_cw w;
	int r;

	if (!m || !out)
		return -EINVAL;
	rfd_cw_init(&w, out);
	rfd_cw_struct_begin(&w);
	if (layout->other_metadata)
		put_extensions_field(&w, layout->other_metadata, m->has_extensions, m->extensions);
	r = put_payload_metadata_field(&w, layout->payload_metadata, m);
	if (r < 0)
		return r;
	if (layout->stream_id)
		put_i32_field(&w, layout->stream_id, m->has_stream_id, m->stream_id);
	put_fd_metadata_field(&w, layout->fd_metadata, &m->fd);
	rfd_cw_struct_end(&w);
	return rfd_cw_finish(&w);
}

int
rfd_fd_metadata_encode(const struct rfd_fd_metadata *m, struct rfd_buf *out)
{
	struct rfd_cw w;

	if (!m || !out)
		return -EINVAL;
	rfd_cw_init(&w, out);
	put_fd_metadata_struct(&w, m);
	return rfd_cw_finish(&w);
}

int
rfd_request_metadata_encode(const struct rfd_request_metadata *m, struct rfd_buf *out)
{
	struct rfd_cw w;

	if (!m || !out)
		return -EINVAL;
	rfd_cw_init(&w, out);
	rfd_cw_struct_begin(&w);
	put_i32_field(&w, REQUEST_PROTOCOL, m->has_protocol, m->protocol);
	put_slice_field(&w, REQUEST_NAME, m->has_name, m->name);
	put_i32_field(&w, REQUEST_KIND, m->has_kind, m->kind);
	put_i32_field(&w, REQUEST_CLIENT_TIMEOUT_MS, m->has_client_timeout, m->client_timeout_ms);
	put_fd_metadata_field(&w, REQUEST_FD_METADATA, &m->fd);
	rfd_cw_struct_end(&w);
	return rfd_cw_finish(&w);
}

int
rfd_response_metadata_encode(const struct rfd_response_metadata *m, struct rfd_buf *out)
{
	return encode_payload_metadata(m, &response_layout, out);
}

int
rfd_stream_payload_metadata_encode(const struct rfd_response_metadata *m, struct rfd_buf *out)
{
	return encode_payload_metadata(m, &stream_payload_layout, out);
}

int
rfd_response_error_encode(const struct rfd_response_error *m, struct rfd_buf *out)
{
	struct rfd_cw w;

	if (!m || !out)
		return -EINVAL;
	rfd_cw_init(&w, out);
	rfd_cw_struct_begin(&w);
	put_slice_field(&w, ERROR_NAME, m->has_name, m->name);
	put_slice_field(&w, ERROR_WHAT, m->has_what, m->what);
	put_i32_field(&w, ERROR_CATEGORY, m->has_category, m->category);
	put_i32_field(&w, ERROR_CODE, m->has_code, m->code);
	rfd_cw_struct_end(&w);
	return rfd_cw_finish(&w);
}

int
rfd_setup_metadata_encode(const struct rfd_setup_metadata *m, struct rfd_buf *out)
{
	struct rfd_cw w;

	if (!m || !out)
		return -EINVAL;
	rfd_cw_init(&w, out);
	rfd_cw_struct_begin(&w);
	put_i32_field(&w, SETUP_MIN_VERSION, m->has_min_version, m->min_version);
	put_i32_field(&w, SETUP_MAX_VERSION, m->has_max_version, m->max_version);
	if (m->has_agent || m->has_extensions) {
		rfd_cw_field(&w, RFD_CT_STRUCT, SETUP_CLIENT_METADATA);
		rfd_cw_struct_begin(&w);
		put_slice_field(&w, CLIENT_METADATA_AGENT, m->has_agent, m->agent);
		put_extensions_field(&w, CLIENT_METADATA_OTHER, m->has_extensions, m->extensions);
		rfd_cw_struct_end(&w);
	}
	if (m->encode_metadata_using_binary)
		rfd_cw_field_bool(&w, SETUP_ENCODE_METADATA_USING_BINARY, true);
	rfd_cw_struct_end(&w);
	return rfd_cw_finish(&w);
}

int
rfd_server_push_encode(const struct rfd_server_push *m, struct rfd_buf *out)
{
	struct rfd_cw w;

	if (!m || !out)
		return -EINVAL;
	rfd_cw_init(&w, out);
	rfd_cw_struct_begin(&w);
	switch (m->kind) {
	case RFD_PUSH_NONE:
		break;
	case RFD_PUSH_SETUP_RESPONSE:
		rfd_cw_field(&w, RFD_CT_STRUCT, PUSH_SETUP_RESPONSE);
		rfd_cw_struct_begin(&w);
		put_i32_field(&w, SETUP_RESPONSE_VERSION, m->has_version, m->version);
		rfd_cw_struct_end(&w);
		break;
	case RFD_PUSH_STREAM_HEADERS:
		put_empty_struct_field(&w, PUSH_STREAM_HEADERS);
		break;
	case RFD_PUSH_DRAIN_COMPLETE:
		put_empty_struct_field(&w, PUSH_DRAIN_COMPLETE);
		break;
	default:
		return -EINVAL;
	}
	rfd_cw_struct_end(&w);
	return rfd_cw_finish(&w);
}

/* Decoding */

static int
expect_type(struct rfd_cr *r, const struct rfd_cr_field *f, uint8_t type, const char *why)
{
	return f->type == type ? 0 : rfd_cr_fail(r, why);
}

static int
read_i32_field(struct rfd_cr *r, const struct rfd_cr_field *f, const char *why, bool *has,
               int32_t *value)
{
	int ret = expect_type(r, f, RFD_CT_I32, why);

	if (ret < 0)
		return ret;
	*has = true;
	return rfd_cr_i32(r, value);
}

static int
read_i64_field(struct rfd_cr *r, const struct rfd_cr_field *f, const char *why, bool *has,
               int64_t *value)
{
	int ret = expect_type(r, f, RFD_CT_I64, why);

	if (ret < 0)
		return ret;
	*has = true;
	return rfd_cr_i64(r, value);
}

static int
read_binary_field(struct rfd_cr *r, const struct rfd_cr_field *f, const char *why, bool *has,
                  struct rfd_slice *value)
{
	int ret = expect_type(r, f, RFD_CT_BINARY, why);

	if (ret < 0)
		return ret;
	*has = true;
	return rfd_cr_binary(r, value);
}

/* An i32 enum whose value other than 0 asks for a declined feature; a repeat replaces it. */
static int
read_nonzero_field(struct rfd_cr *r, const struct rfd_cr_field *f, const char *why, bool *nonzero)
{
	bool has = false;
	int32_t value = 0;
	int ret = read_i32_field(r, f, why, &has, &value);

	if (ret < 0)
		return ret;
	*nonzero = value != 0;
	return ret;
}

/* A field whose presence is all this library records. */
static int
note_field(struct rfd_cr *r, const struct rfd_cr_field *f, uint8_t type, const char *why,
           bool *present)
{
	int ret = expect_type(r, f, type, why);

	if (ret < 0)
		return ret;
	*present = true;
	return rfd_cr_skip_field(r, f);
}

/*
 * An otherMetadata field: the value of its key RFD_EXTENSIONS_KEY, the last
 * one when it repeats.  A field that is not a map of strings is skipped and
 * holds no value; a repeated field replaces the earlier one.
 */
static int
read_extensions_field(struct rfd_cr *r, const struct rfd_cr_field *f, bool *has,
                      struct rfd_slice *value)
{
	static const struct rfd_slice key_name = {(const uint8_t *)RFD_EXTENSIONS_KEY,
	                                          sizeof(RFD_EXTENSIONS_KEY) - 1};
	uint8_t key_type, value_type;
	uint32_t n;
	int ret;

	*has = false;
	*value = (struct rfd_slice){NULL, 0};
	if (f->type != RFD_CT_MAP)
		return rfd_cr_skip_field(r, f);
	ret = rfd_cr_map_begin(r, &key_type, &value_type, &n);
	if (ret < 0)
		return ret;
	if (n > 0 && (key_type != RFD_CT_BINARY || value_type != RFD_CT_BINARY)) {
		for (uint32_t i = 0; ret >= 0 && i < n; i++) {
			ret = rfd_cr_skip(r, key_type);
			if (ret >= 0)
				ret = rfd_cr_skip(r, value_type);
		}
		return ret < 0 ? ret : rfd_cr_map_end(r);
	}
	for (uint32_t i = 0; ret >= 0 && i < n; i++) {
		struct rfd_slice key, entry;

		ret = rfd_cr_binary(r, &key);
		if (ret >= 0)
			ret = rfd_cr_binary(r, &entry);
		if (ret >= 0 && key.len == key_name.len &&
		    memcmp(key.ptr, key_name.ptr, key.len) == 0) {
			*has = true;
			*value = entry;
		}
	}
	return ret < 0 ? ret : rfd_cr_map_end(r);
}

static int
decode_fd_metadata(struct rfd_cr *r, const struct rfd_cr_field *field, struct rfd_fd_metadata *m)
{
	struct rfd_cr_field f;
	int ret;

	ret = expect_type(r, field, RFD_CT_STRUCT, "fdMetadata is not a struct");
	if (ret >= 0)
		ret = rfd_cr_struct_begin(r);
	/* A repeated fdMetadata replaces the earlier one whole, never merges with it. */
	*m = (struct rfd_fd_metadata){.present = true};
	while (ret >= 0 && (ret = rfd_cr_field(r, &f)) > 0) {
		switch (f.id) {
		case FD_SEQ_NUM:
			ret = read_i64_field(r, &f, "FdMetadata.fdSeqNum is not an i64",
			                     &m->has_seq, &m->fd_seq);
			break;
		case FD_NUM_FDS:
			ret = read_i32_field(r, &f, "FdMetadata.numFds is not an i32", &m->has_num,
			                     &m->num_fds);
			break;
		default:
			ret = rfd_cr_skip_field(r, &f);
		}
	}
	return ret;
}

/*
 * Checksum { 1: ChecksumAlgorithm algorithm; ... }: asks for one unless the
 * algorithm is NONE (0) or absent.  A repeated checksum replaces the earlier one.
 */
static int
decode_checksum(struct rfd_cr *r, const struct rfd_cr_field *field, const char *not_struct,
                bool *uses)
{
	struct rfd_cr_field f;
	bool has_algorithm = false;
	int32_t algorithm = 0;
	int ret;

	ret = expect_type(r, field, RFD_CT_STRUCT, not_struct);
	if (ret >= 0)
		ret = rfd_cr_struct_begin(r);
	while (ret >= 0 && (ret = rfd_cr_field(r, &f)) > 0) {
		if (f.id == 1)
			ret = read_i32_field(r, &f, "Checksum.algorithm is not an i32",
			                     &has_algorithm, &algorithm);
		else
			ret = rfd_cr_skip_field(r, &f);
	}
	if (ret >= 0)
		*uses = algorithm != 0;
	return ret;
}

static int
decode_request(struct rfd_cr *r, struct rfd_request_metadata *m)
{
	struct rfd_cr_field f;
	int ret;

	ret = rfd_cr_struct_begin(r);
	while (ret >= 0 && (ret = rfd_cr_field(r, &f)) > 0) {
		switch (f.id) {
		case REQUEST_PROTOCOL:
			ret = read_i32_field(r, &f, "RequestRpcMetadata.protocol is not an i32",
			                     &m->has_protocol, &m->protocol);
			break;
		case REQUEST_NAME:
			ret = read_binary_field(r, &f, "RequestRpcMetadata.name is not a string",
			                        &m->has_name, &m->name);
			break;
		case REQUEST_KIND:
			ret = read_i32_field(r, &f, "RequestRpcMetadata.kind is not an i32",
			                     &m->has_kind, &m->kind);
			break;
		case REQUEST_CLIENT_TIMEOUT_MS:
			ret = read_i32_field(r, &f,
			                     "RequestRpcMetadata.clientTimeoutMs is not an i32",
			                     &m->has_client_timeout, &m->client_timeout_ms);
			break;
		case REQUEST_COMPRESSION:
			ret = read_nonzero_field(r, &f,
			                         "RequestRpcMetadata.compression is not an i32",
			                         &m->uses_compression);
			break;
		case REQUEST_INTERACTION_ID:
			ret = note_field(r, &f, RFD_CT_I64,
			                 "RequestRpcMetadata.interactionId is not an i64",
			                 &m->uses_interaction);
			break;
		case REQUEST_INTERACTION_CREATE:
			ret = note_field(r, &f, RFD_CT_STRUCT,
			                 "RequestRpcMetadata.interactionCreate is not a struct",
			                 &m->uses_interaction);
			break;
		case REQUEST_FD_METADATA:
			ret = decode_fd_metadata(r, &f, &m->fd);
			break;
		case REQUEST_CHECKSUM:
			ret = decode_checksum(r, &f, "RequestRpcMetadata.checksum is not a struct",
			                      &m->uses_checksum);
			break;
		default:
			ret = rfd_cr_skip_field(r, &f);
		}
	}
	return ret;
}

/*
 * The union PayloadExceptionMetadata: declaredException and
 * appUnknownException are told apart, any other arm (or none) is "other".
 */
static int
decode_exception_kind(struct rfd_cr *r, struct rfd_response_metadata *m)
{
	struct rfd_cr_field f;
	unsigned n_fields = 0;
	int ret;

	m->payload_kind = RFD_PAYLOAD_OTHER_EXCEPTION;
	ret = rfd_cr_struct_begin(r);
	while (ret >= 0 && (ret = rfd_cr_field(r, &f)) > 0) {
		if (++n_fields > 1)
			return rfd_cr_fail(r, "PayloadExceptionMetadata union has several fields");
		if (f.id == EXCEPTION_DECLARED || f.id == EXCEPTION_APP_UNKNOWN) {
			ret = expect_type(r, &f, RFD_CT_STRUCT,
			                  "PayloadExceptionMetadata arm is not a struct");
			if (ret < 0)
				return ret;
			m->payload_kind = f.id == EXCEPTION_DECLARED
			                      ? RFD_PAYLOAD_DECLARED_EXCEPTION
			                      : RFD_PAYLOAD_APP_UNKNOWN_EXCEPTION;
		}
		ret = rfd_cr_skip_field(r, &f);
	}
	return ret;
}

/* PayloadExceptionMetadataBase */
static int
decode_exception_metadata(struct rfd_cr *r, struct rfd_response_metadata *m)
{
	struct rfd_cr_field f;
	int ret;

	m->payload_kind = RFD_PAYLOAD_OTHER_EXCEPTION;
	ret = rfd_cr_struct_begin(r);
	while (ret >= 0 && (ret = rfd_cr_field(r, &f)) > 0) {
		switch (f.id) {
		case EXCEPTION_NAME:
			ret = read_binary_field(r, &f, "exception name_utf8 is not a string",
			                        &m->has_ex_name, &m->ex_name);
			break;
		case EXCEPTION_WHAT:
			ret = read_binary_field(r, &f, "exception what_utf8 is not a string",
			                        &m->has_ex_what, &m->ex_what);
			break;
		case EXCEPTION_METADATA:
			ret =
			    expect_type(r, &f, RFD_CT_STRUCT, "exception metadata is not a struct");
			if (ret >= 0)
				ret = decode_exception_kind(r, m);
			break;
		default:
			ret = rfd_cr_skip_field(r, &f);
		}
	}
	return ret;
}

/*
 * The union PayloadMetadata.  One with no arm this library knows is empty,
 * not malformed: the caller claims the message's FDs and fails the call.
 * A repeated payloadMetadata replaces the earlier one whole.
 */
static int
decode_payload_metadata(struct rfd_cr *r, struct rfd_response_metadata *m)
{
	struct rfd_cr_field f;
	unsigned n_fields = 0;
	int ret;

	m->payload_kind = RFD_PAYLOAD_EMPTY;
	m->has_ex_name = false;
	m->ex_name = (struct rfd_slice){NULL, 0};
	m->has_ex_what = false;
	m->ex_what = (struct rfd_slice){NULL, 0};
	ret = rfd_cr_struct_begin(r);
	while (ret >= 0 && (ret = rfd_cr_field(r, &f)) > 0) {
		if (++n_fields > 1)
			return rfd_cr_fail(r, "PayloadMetadata union has several fields");
		switch (f.id) {
		case PAYLOAD_RESPONSE_METADATA:
			ret = expect_type(r, &f, RFD_CT_STRUCT,
			                  "PayloadMetadata.responseMetadata is not a struct");
			if (ret >= 0)
				ret = rfd_cr_skip_field(r, &f);
			m->payload_kind = RFD_PAYLOAD_RESPONSE;
			break;
		case PAYLOAD_EXCEPTION_METADATA:
			ret = expect_type(r, &f, RFD_CT_STRUCT,
			                  "PayloadMetadata.exceptionMetadata is not a struct");
			if (ret >= 0)
				ret = decode_exception_metadata(r, m);
			break;
		default:
			ret = rfd_cr_skip_field(r, &f);
		}
	}
	return ret;
}

static int
decode_payload_fields(struct rfd_cr *r, const struct payload_layout *layout,
                      struct rfd_response_metadata *m)
{
	struct rfd_cr_field f;
	int ret;

	ret = rfd_cr_struct_begin(r);
	while (ret >= 0 && (ret = rfd_cr_field(r, &f)) > 0) {
		if (layout->other_metadata && f.id == layout->other_metadata &&
		    f.type != RFD_CT_STRUCT) {
			ret = read_extensions_field(r, &f, &m->has_extensions, &m->extensions);
		} else if (f.id == layout->payload_metadata) {
			ret = expect_type(r, &f, RFD_CT_STRUCT, "payloadMetadata is not a struct");
			if (ret >= 0)
				ret = decode_payload_metadata(r, m);
		} else if (f.id == layout->compression) {
			ret = read_nonzero_field(r, &f, "compression is not an i32",
			                         &m->uses_compression);
		} else if (f.id == layout->checksum) {
			ret = decode_checksum(r, &f, "checksum is not a struct", &m->uses_checksum);
		} else if (f.id == layout->fd_metadata) {
			ret = decode_fd_metadata(r, &f, &m->fd);
		} else {
			if (f.type == RFD_CT_STRUCT && layout->item_payload_metadata &&
			    (f.id == layout->item_payload_metadata ||
			     f.id == layout->item_fd_metadata))
				m->item_fields = true;
			ret = rfd_cr_skip_field(r, &f);
		}
	}
	return ret;
}

static int
decode_response_error(struct rfd_cr *r, struct rfd_response_error *m)
{
	struct rfd_cr_field f;
	int ret;

	ret = rfd_cr_struct_begin(r);
	while (ret >= 0 && (ret = rfd_cr_field(r, &f)) > 0) {
		switch (f.id) {
		case ERROR_NAME:
			ret = read_binary_field(r, &f, "ResponseRpcError.name_utf8 is not a string",
			                        &m->has_name, &m->name);
			break;
		case ERROR_WHAT:
			ret = read_binary_field(r, &f, "ResponseRpcError.what_utf8 is not a string",
			                        &m->has_what, &m->what);
			break;
		case ERROR_CATEGORY:
			ret = read_i32_field(r, &f, "ResponseRpcError.category is not an i32",
			                     &m->has_category, &m->category);
			break;
		case ERROR_CODE:
			ret = read_i32_field(r, &f, "ResponseRpcError.code is not an i32",
			                     &m->has_code, &m->code);
			break;
		default:
			ret = rfd_cr_skip_field(r, &f);
		}
	}
	return ret;
}

static int
decode_client_metadata(struct rfd_cr *r, struct rfd_setup_metadata *m)
{
	struct rfd_cr_field f;
	int ret;

	ret = rfd_cr_struct_begin(r);
	while (ret >= 0 && (ret = rfd_cr_field(r, &f)) > 0) {
		if (f.id == CLIENT_METADATA_AGENT)
			ret = read_binary_field(r, &f, "ClientMetadata.agent is not a string",
			                        &m->has_agent, &m->agent);
		else if (f.id == CLIENT_METADATA_OTHER)
			ret = read_extensions_field(r, &f, &m->has_extensions, &m->extensions);
		else
			ret = rfd_cr_skip_field(r, &f);
	}
	return ret;
}

static int
decode_setup(struct rfd_cr *r, struct rfd_setup_metadata *m)
{
	struct rfd_cr_field f;
	int ret;

	ret = rfd_cr_struct_begin(r);
	while (ret >= 0 && (ret = rfd_cr_field(r, &f)) > 0) {
		switch (f.id) {
		case SETUP_MIN_VERSION:
			ret = read_i32_field(r, &f, "RequestSetupMetadata.minVersion is not an i32",
			                     &m->has_min_version, &m->min_version);
			break;
		case SETUP_MAX_VERSION:
			ret = read_i32_field(r, &f, "RequestSetupMetadata.maxVersion is not an i32",
			                     &m->has_max_version, &m->max_version);
			break;
		case SETUP_CLIENT_METADATA:
			ret = expect_type(r, &f, RFD_CT_STRUCT,
			                  "RequestSetupMetadata.clientMetadata is not a struct");
			m->has_agent = false;
			m->agent = (struct rfd_slice){NULL, 0};
			m->has_extensions = false;
			m->extensions = (struct rfd_slice){NULL, 0};
			if (ret >= 0)
				ret = decode_client_metadata(r, m);
			break;
		case SETUP_ENCODE_METADATA_USING_BINARY:
			ret = expect_type(
			    r, &f, RFD_CT_BOOL,
			    "RequestSetupMetadata.encodeMetadataUsingBinary is not a bool");
			m->encode_metadata_using_binary = f.bool_value;
			break;
		case SETUP_COMPRESSION_SETUP_REQUEST:
			ret = note_field(
			    r, &f, RFD_CT_STRUCT,
			    "RequestSetupMetadata.compressionSetupRequest is not a struct",
			    &m->uses_compression_setup);
			break;
		default:
			ret = rfd_cr_skip_field(r, &f);
		}
	}
	return ret;
}

static int
decode_setup_response(struct rfd_cr *r, struct rfd_server_push *m)
{
	struct rfd_cr_field f;
	int ret;

	ret = rfd_cr_struct_begin(r);
	while (ret >= 0 && (ret = rfd_cr_field(r, &f)) > 0) {
		if (f.id == SETUP_RESPONSE_VERSION)
			ret = read_i32_field(r, &f, "SetupResponse.version is not an i32",
			                     &m->has_version, &m->version);
		else
			ret = rfd_cr_skip_field(r, &f);
	}
	return ret;
}

/* The union ServerPushMetadata; an arm this library does not know reads as RFD_PUSH_NONE. */
static int
decode_server_push(struct rfd_cr *r, struct rfd_server_push *m)
{
	struct rfd_cr_field f;
	unsigned n_fields = 0;
	int ret;

	ret = rfd_cr_struct_begin(r);
	while (ret >= 0 && (ret = rfd_cr_field(r, &f)) > 0) {
		if (++n_fields > 1)
			return rfd_cr_fail(r, "ServerPushMetadata union has several fields");
		switch (f.id) {
		case PUSH_SETUP_RESPONSE:
			ret = expect_type(r, &f, RFD_CT_STRUCT,
			                  "ServerPushMetadata.setupResponse is not a struct");
			if (ret >= 0)
				ret = decode_setup_response(r, m);
			m->kind = RFD_PUSH_SETUP_RESPONSE;
			break;
		default:
			ret = rfd_cr_skip_field(r, &f);
		}
	}
	return ret;
}

static int
decode_end(struct rfd_cr *r, int ret, const char **why)
{
	if (ret >= 0)
		ret = rfd_cr_finish(r);
	if (why)
		*why = ret < 0 ? rfd_cr_error(r) : NULL;
	return ret < 0 ? ret : 0;
}

int
rfd_request_metadata_decode(const uint8_t *bytes, size_t len, struct rfd_request_metadata *m,
                            const char **why)
{
	struct rfd_cr r;

	if (!m || (!bytes && len > 0))
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	rfd_cr_init(&r, bytes, len);
	return decode_end(&r, decode_request(&r, m), why);
}

int
rfd_response_metadata_decode(const uint8_t *bytes, size_t len, struct rfd_response_metadata *m,
                             const char **why)
{
	struct rfd_cr r;

	if (!m || (!bytes && len > 0))
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	rfd_cr_init(&r, bytes, len);
	return decode_end(&r, decode_payload_fields(&r, &response_layout, m), why);
}

int
rfd_stream_payload_metadata_decode(const uint8_t *bytes, size_t len,
                                   struct rfd_response_metadata *m, const char **why)
{
	struct rfd_cr r;

	if (!m || (!bytes && len > 0))
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	rfd_cr_init(&r, bytes, len);
	return decode_end(&r, decode_payload_fields(&r, &stream_payload_layout, m), why);
}

int
rfd_response_error_decode(const uint8_t *bytes, size_t len, struct rfd_response_error *m,
                          const char **why)
{
	struct rfd_cr r;

	if (!m || (!bytes && len > 0))
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	rfd_cr_init(&r, bytes, len);
	return decode_end(&r, decode_response_error(&r, m), why);
}

int
rfd_setup_metadata_decode(const uint8_t *bytes, size_t len, struct rfd_setup_metadata *m,
                          const char **why)
{
	struct rfd_cr r;

	if (!m || (!bytes && len > 0))
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	rfd_cr_init(&r, bytes, len);
	return decode_end(&r, decode_setup(&r, m), why);
}

int
rfd_server_push_decode(const uint8_t *bytes, size_t len, struct rfd_server_push *m,
                       const char **why)
{
	struct rfd_cr r;

	if (!m || (!bytes && len > 0))
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	rfd_cr_init(&r, bytes, len);
	return decode_end(&r, decode_server_push(&r, m), why);
}

/* ---- Extension names ---- */

static const struct {
	const char *name;
	unsigned bit;
} extension_names[] = {
    {"sink", RFD_EXT_SINK},
    {"exception", RFD_EXT_EXCEPTION},
};

static bool
is_blank(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static unsigned
extension_named(const uint8_t *name, size_t len)
{
	for (size_t i = 0; i < sizeof(extension_names) / sizeof(extension_names[0]); i++)
		if (strlen(extension_names[i].name) == len &&
		    memcmp(extension_names[i].name, name, len) == 0)
			return extension_names[i].bit;
	return 0;
}

unsigned
rfd_extensions_parse(struct rfd_slice value)
{
	const uint8_t *p = value.ptr, *end = value.ptr + value.len;
	unsigned found = 0;

	if (!value.ptr)
		return 0;
	while (p <= end) {
		const uint8_t *comma = memchr(p, ',', (size_t)(end - p));
		const uint8_t *stop = comma ? comma : end;
		const uint8_t *start = p;

		while (start < stop && is_blank(*start))
			start++;
		while (stop > start && is_blank(stop[-1]))
			stop--;
		found |= extension_named(start, (size_t)(stop - start));
		if (!comma)
			break;
		p = comma + 1;
	}
	return found;
}

size_t
rfd_extensions_format(unsigned extensions, char *buf, size_t size)
{
	size_t len = 0;

	assert(buf);
	assert(size > 0);
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(extension_names) / sizeof(extension_names[0]); i++) {
		int n;

		if (!(extensions & extension_names[i].bit))
			continue;
		n = snprintf(buf + len, size - len, "%s%s", len ? "," : "",
		             extension_names[i].name);
		if (n < 0 || (size_t)n >= size - len) {
			buf[len] = '\0';
			break;
		}
		len += (size_t)n;
	}
	return len;
}
