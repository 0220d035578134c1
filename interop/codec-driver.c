/* SPDX-License-Identifier: MIT */
/*
 * rfd-codec-driver: the library's Compact metadata codec and Rocket frame
 * codec behind a line protocol, so that scripts can hold them against
 * third-party codecs (Apache Thrift, rsocket-js).
 *
 * One command per input line, one answer per output line, in order:
 *
 *	encode KIND FIELD...           ok HEX             (KIND: fd request response
 *	decode KIND HEX                ok FIELD...         stream error setup push)
 *	frame-encode FIELD...          ok HEX             (length field included)
 *	frame-decode HEX               ok FIELD...
 *	frame-fragment MAX FIELD...    ok HEX             (every fragment, back to back)
 *	frame-reassemble HEX           ok fragments=N FIELD...
 *
 * A FIELD is key=value: a decimal integer, a word, or bytes in hexadecimal
 * (possibly empty).  A failure answers "error REASON".  An unknown key is an
 * error, so a misspelt field cannot pass unnoticed.  The keys of each KIND
 * are listed in interop/README.md.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "frame.h"
#include "metadata.h"

enum {
	MAX_FIELDS = 32,
	/* Reassembly bound, as the library's default maximum message size. */
	REASSEMBLY_MAX = 64 * 1024 * 1024,
};

struct field {
	const char *key;
	char *value;
	bool used;
};

/* The fields of one command line; byte values are decoded in place. */
struct fields {
	struct field list[MAX_FIELDS];
	size_t n;
	const char *error;
};

static const char hex_digits[] = "0123456789abcdef";

/* Parsing */

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode @text in place; returns the byte count or -EINVAL. */
static ssize_t
unhex_in_place(char *text)
{
	uint8_t *out = (uint8_t *)text;
	size_t len;

	assert(text);
	len = strlen(text);
	if (len % 2)
		return -EINVAL;
	for (size_t i = 0; i < len; i += 2) {
		int high = hex_value(text[i]), low = hex_value(text[i + 1]);

		if (high < 0 || low < 0)
			return -EINVAL;
		out[i / 2] = (uint8_t)(high << 4 | low);
	}
	return (ssize_t)(len / 2);
}

static int
fields_parse(struct fields *f, char *words)
{
	char *save = NULL;

	assert(f);
	assert(words);
	memset(f, 0, sizeof(*f));
	for (char *word = strtok_r(words, " ", &save); word; word = strtok_r(NULL, " ", &save)) {
		char *equals = strchr(word, '=');

		if (!equals || f->n == MAX_FIELDS) {
			f->error = equals ? "too many fields" : "a field without '='";
			return -EINVAL;
		}
		*equals = '\0';
		f->list[f->n++] = (struct field){.key = word, .value = equals + 1};
	}
	return 0;
}

static struct field *
field_find(struct fields *f, const char *key)
{
	assert(f);
	assert(key);
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->list[i].key, key) == 0) {
			f->list[i].used = true;
			return &f->list[i];
		}
	}
	return NULL;
}

static void
fields_fail(struct fields *f, const char *why)
{
	assert(f);
	if (!f->error)
		f->error = why;
}

/* A signed integer field within [min, max]; *has tells whether it was given. */
static void
get_int(struct fields *f, const char *key, long long min, long long max, bool *has,
        long long *value)
{
	struct field *field = field_find(f, key);
	char *end;

	*has = false;
	*value = 0;
	if (!field)
		return;
	errno = 0;
	*value = strtoll(field->value, &end, 10);
	if (errno || end == field->value || *end || *value < min || *value > max) {
		fields_fail(f, "integer field out of range or malformed");
		return;
	}
	*has = true;
}

static void
get_u64(struct fields *f, const char *key, uint64_t *value)
{
	struct field *field = field_find(f, key);
	char *end;

	*value = 0;
	if (!field)
		return;
	errno = 0;
	*value = strtoull(field->value, &end, 10);
	if (errno || end == field->value || *end || field->value[0] == '-')
		fields_fail(f, "unsigned field out of range or malformed");
}

static bool
get_i32(struct fields *f, const char *key, int32_t *value)
{
	long long v;
	bool has;

	get_int(f, key, INT32_MIN, INT32_MAX, &has, &v);
	*value = (int32_t)v;
	return has;
}

static bool
get_i64(struct fields *f, const char *key, int64_t *value)
{
	long long v;
	bool has;

	get_int(f, key, INT64_MIN, INT64_MAX, &has, &v);
	*value = (int64_t)v;
	return has;
}

static uint32_t
get_uint(struct fields *f, const char *key, uint32_t max)
{
	long long v;
	bool has;

	assert(f);
	get_int(f, key, 0, max, &has, &v);
	return (uint32_t)v;
}

static bool
get_flag(struct fields *f, const char *key)
{
	long long v;
	bool has;

	assert(f);
	get_int(f, key, 0, 1, &has, &v);
	return v == 1;
}

static bool
get_bytes(struct fields *f, const char *key, struct rfd_slice *value)
{
	struct field *field = field_find(f, key);
	ssize_t n;

	*value = (struct rfd_slice){0};
	if (!field)
		return false;
	n = unhex_in_place(field->value);
	if (n < 0) {
		fields_fail(f, "byte field is not hexadecimal");
		return false;
	}
	*value = (struct rfd_slice){(const uint8_t *)field->value, (size_t)n};
	return true;
}

/* The index of the field's word in @words, or -1 when it is absent or not one of them. */
static int
get_word(struct fields *f, const char *key, const char *const *words, size_t n_words)
{
	struct field *field = field_find(f, key);

	if (!field)
		return -1;
	for (size_t i = 0; i < n_words; i++) {
		if (words[i] && strcmp(field->value, words[i]) == 0)
			return (int)i;
	}
	fields_fail(f, "unknown word in a field");
	return -1;
}

/* 0, or -EINVAL with f->error set: a bad value earlier, or a key nobody asked for. */
static int
fields_finish(struct fields *f)
{
	assert(f);
	for (size_t i = 0; i < f->n && !f->error; i++) {
		if (!f->list[i].used)
			f->error = "unknown field";
	}
	return f->error ? -EINVAL : 0;
}

/* Output */

static void
put_hex(const uint8_t *bytes, size_t len)
{
	char chunk[4096];
	size_t n = 0;

	assert(bytes || len == 0);
	for (size_t i = 0; i < len; i++) {
		chunk[n++] = hex_digits[bytes[i] >> 4];
		chunk[n++] = hex_digits[bytes[i] & 0xF];
		if (n == sizeof(chunk)) {
			fwrite(chunk, 1, n, stdout);
			n = 0;
		}
	}
	fwrite(chunk, 1, n, stdout);
}

static void
out_int(const char *key, long long value)
{
	printf(" %s=%lld", key, value);
}

static void
out_opt_int(const char *key, bool has, long long value)
{
	if (has)
		out_int(key, value);
}

static void
out_bytes(const char *key, struct rfd_slice value)
{
	printf(" %s=", key);
	put_hex(value.ptr, value.len);
}

static void
out_opt_bytes(const char *key, bool has, struct rfd_slice value)
{
	if (has)
		out_bytes(key, value);
}

static void
answer_error(const char *why)
{
	printf("error %s\n", why ? why : "unknown");
}

static void
answer_buf(const struct rfd_buf *b)
{
	assert(b);
	fputs("ok ", stdout);
	put_hex(b->data, b->len);
	putchar('\n');
}

/* Metadata */

static const char *const payload_words[] = {
    [RFD_PAYLOAD_NONE] = "none",
    [RFD_PAYLOAD_RESPONSE] = "response",
    [RFD_PAYLOAD_DECLARED_EXCEPTION] = "declared",
    [RFD_PAYLOAD_APP_UNKNOWN_EXCEPTION] = "app_unknown",
    [RFD_PAYLOAD_OTHER_EXCEPTION] = "other",
    [RFD_PAYLOAD_EMPTY] = "empty",
};

static const char *const push_words[] = {
    [RFD_PUSH_NONE] = "none",
    [RFD_PUSH_SETUP_RESPONSE] = "setup_response",
    [RFD_PUSH_STREAM_HEADERS] = "stream_headers",
    [RFD_PUSH_DRAIN_COMPLETE] = "drain_complete",
};

#define N_WORDS(words) (sizeof(words) / sizeof(words[0]))

/* The word for an enum value; "unknown" for one this program has no word for. */
static const char *
word_of(const char *const *words, size_t n_words, unsigned value)
{
	assert(words);
	return value < n_words && words[value] ? words[value] : "unknown";
}

/* fd=1 asks for the struct; fd.seq and fd.num for its fields. */
static void
get_fd_metadata(struct fields *f, struct rfd_fd_metadata *m)
{
	assert(f);
	assert(m);
	m->present = get_flag(f, "fd");
	m->has_seq = get_i64(f, "fd.seq", &m->fd_seq);
	m->has_num = get_i32(f, "fd.num", &m->num_fds);
}

static void
out_fd_metadata(const struct rfd_fd_metadata *m)
{
	assert(m);
	if (!m->present)
		return;
	out_int("fd", 1);
	out_opt_int("fd.seq", m->has_seq, m->fd_seq);
	out_opt_int("fd.num", m->has_num, m->num_fds);
}

static int
encode_request(struct fields *f, struct rfd_buf *out)
{
	struct rfd_request_metadata m = {0};

	assert(f);
	assert(out);
	m.has_protocol = get_i32(f, "protocol", &m.protocol);
	m.has_name = get_bytes(f, "name", &m.name);
	m.has_kind = get_i32(f, "kind", &m.kind);
	m.has_client_timeout = get_i32(f, "timeout", &m.client_timeout_ms);
	get_fd_metadata(f, &m.fd);
	return fields_finish(f) < 0 ? -EINVAL : rfd_request_metadata_encode(&m, out);
}

static void
get_response_fields(struct fields *f, struct rfd_response_metadata *m)
{
	int kind = get_word(f, "payload", payload_words, N_WORDS(payload_words));

	assert(f);
	assert(m);
	m->payload_kind = kind < 0 ? RFD_PAYLOAD_NONE : (enum rfd_payload_kind)kind;
	m->has_ex_name = get_bytes(f, "ex_name", &m->ex_name);
	m->has_ex_what = get_bytes(f, "ex_what", &m->ex_what);
	get_fd_metadata(f, &m->fd);
}

static int
encode_response(struct fields *f, struct rfd_buf *out)
{
	struct rfd_response_metadata m = {0};

	assert(f);
	assert(out);
	get_response_fields(f, &m);
	return fields_finish(f) < 0 ? -EINVAL : rfd_response_metadata_encode(&m, out);
}

static int
encode_stream(struct fields *f, struct rfd_buf *out)
{
	struct rfd_response_metadata m = {0};

	assert(f);
	assert(out);
	get_response_fields(f, &m);
	return fields_finish(f) < 0 ? -EINVAL : rfd_stream_payload_metadata_encode(&m, out);
}

static int
encode_error(struct fields *f, struct rfd_buf *out)
{
	struct rfd_response_error m = {0};

	assert(f);
	assert(out);
	m.has_name = get_bytes(f, "name", &m.name);
	m.has_what = get_bytes(f, "what", &m.what);
	m.has_category = get_i32(f, "category", &m.category);
	m.has_code = get_i32(f, "code", &m.code);
	return fields_finish(f) < 0 ? -EINVAL : rfd_response_error_encode(&m, out);
}

static int
encode_setup(struct fields *f, struct rfd_buf *out)
{
	struct rfd_setup_metadata m = {0};

	assert(f);
	assert(out);
	m.has_min_version = get_i32(f, "min", &m.min_version);
	m.has_max_version = get_i32(f, "max", &m.max_version);
	m.has_agent = get_bytes(f, "agent", &m.agent);
	m.encode_metadata_using_binary = get_flag(f, "binary");
	return fields_finish(f) < 0 ? -EINVAL : rfd_setup_metadata_encode(&m, out);
}

static int
encode_push(struct fields *f, struct rfd_buf *out)
{
	struct rfd_server_push m = {0};
	int kind = get_word(f, "push", push_words, N_WORDS(push_words));

	assert(f);
	assert(out);
	m.kind = kind < 0 ? RFD_PUSH_NONE : (enum rfd_server_push_kind)kind;
	m.has_version = get_i32(f, "version", &m.version);
	return fields_finish(f) < 0 ? -EINVAL : rfd_server_push_encode(&m, out);
}

static int
encode_fd(struct fields *f, struct rfd_buf *out)
{
	struct rfd_fd_metadata m = {.present = true};

	assert(f);
	assert(out);
	m.has_seq = get_i64(f, "fd.seq", &m.fd_seq);
	m.has_num = get_i32(f, "fd.num", &m.num_fds);
	return fields_finish(f) < 0 ? -EINVAL : rfd_fd_metadata_encode(&m, out);
}

static int
decode_request(const uint8_t *bytes, size_t len, const char **why)
{
	struct rfd_request_metadata m;
	int r = rfd_request_metadata_decode(bytes, len, &m, why);

	if (r < 0)
		return r;
	fputs("ok", stdout);
	out_opt_int("protocol", m.has_protocol, m.protocol);
	out_opt_bytes("name", m.has_name, m.name);
	out_opt_int("kind", m.has_kind, m.kind);
	out_opt_int("timeout", m.has_client_timeout, m.client_timeout_ms);
	out_fd_metadata(&m.fd);
	out_int("uses_compression", m.uses_compression);
	out_int("uses_interaction", m.uses_interaction);
	out_int("uses_checksum", m.uses_checksum);
	putchar('\n');
	return 0;
}

static void
out_response(const struct rfd_response_metadata *m)
{
	assert(m);
	fputs("ok", stdout);
	printf(" payload=%s", word_of(payload_words, N_WORDS(payload_words), m->payload_kind));
	out_opt_bytes("ex_name", m->has_ex_name, m->ex_name);
	out_opt_bytes("ex_what", m->has_ex_what, m->ex_what);
	out_fd_metadata(&m->fd);
	out_int("uses_compression", m->uses_compression);
	out_int("uses_checksum", m->uses_checksum);
	putchar('\n');
}

static int
decode_response(const uint8_t *bytes, size_t len, const char **why)
{
	struct rfd_response_metadata m;
	int r = rfd_response_metadata_decode(bytes, len, &m, why);

	if (r >= 0)
		out_response(&m);
	return r;
}

static int
decode_stream(const uint8_t *bytes, size_t len, const char **why)
{
	struct rfd_response_metadata m;
	int r = rfd_stream_payload_metadata_decode(bytes, len, &m, why);

	if (r >= 0)
		out_response(&m);
	return r;
}

static int
decode_error(const uint8_t *bytes, size_t len, const char **why)
{
	struct rfd_response_error m;
	int r = rfd_response_error_decode(bytes, len, &m, why);

	if (r < 0)
		return r;
	fputs("ok", stdout);
	out_opt_bytes("name", m.has_name, m.name);
	out_opt_bytes("what", m.has_what, m.what);
	out_opt_int("category", m.has_category, m.category);
	out_opt_int("code", m.has_code, m.code);
	putchar('\n');
	return 0;
}

static int
decode_setup(const uint8_t *bytes, size_t len, const char **why)
{
	struct rfd_setup_metadata m;
	int r = rfd_setup_metadata_decode(bytes, len, &m, why);

	if (r < 0)
		return r;
	fputs("ok", stdout);
	out_opt_int("min", m.has_min_version, m.min_version);
	out_opt_int("max", m.has_max_version, m.max_version);
	out_opt_bytes("agent", m.has_agent, m.agent);
	out_int("binary", m.encode_metadata_using_binary);
	out_int("uses_compression_setup", m.uses_compression_setup);
	putchar('\n');
	return 0;
}

static int
decode_push(const uint8_t *bytes, size_t len, const char **why)
{
	struct rfd_server_push m;
	int r = rfd_server_push_decode(bytes, len, &m, why);

	if (r < 0)
		return r;
	printf("ok push=%s", word_of(push_words, N_WORDS(push_words), m.kind));
	out_opt_int("version", m.has_version, m.version);
	putchar('\n');
	return 0;
}

struct metadata_kind {
	const char *name;
	int (*encode)(struct fields *f, struct rfd_buf *out);
	/* Writes the "ok ..." line itself. */
	int (*decode)(const uint8_t *bytes, size_t len, const char **why);
};

static const struct metadata_kind metadata_kinds[] = {
    {"fd", encode_fd, NULL},
    {"request", encode_request, decode_request},
    {"response", encode_response, decode_response},
    {"stream", encode_stream, decode_stream},
    {"error", encode_error, decode_error},
    {"setup", encode_setup, decode_setup},
    {"push", encode_push, decode_push},
};

static const struct metadata_kind *
find_kind(const char *name)
{
	assert(name);
	for (size_t i = 0; i < N_WORDS(metadata_kinds); i++) {
		if (strcmp(metadata_kinds[i].name, name) == 0)
			return &metadata_kinds[i];
	}
	return NULL;
}

/* Splits "WORD REST" in place: returns WORD, *rest points past the space (or at ""). */
static char *
next_word(char *line, char **rest)
{
	char *space = strchr(line, ' ');

	assert(line);
	assert(rest);
	if (space) {
		*space = '\0';
		*rest = space + 1;
	} else {
		*rest = line + strlen(line);
	}
	return line;
}

static void
command_encode(char *args)
{
	const struct metadata_kind *kind = find_kind(next_word(args, &args));
	struct rfd_buf out;
	struct fields f;
	int r;

	if (!kind) {
		answer_error("unknown metadata kind");
		return;
	}
	rfd_buf_init(&out);
	r = fields_parse(&f, args);
	if (r >= 0)
		r = kind->encode(&f, &out);
	if (r < 0)
		answer_error(f.error ? f.error : strerror(-r));
	else
		answer_buf(&out);
	rfd_buf_free(&out);
}

static void
command_decode(char *args)
{
	const struct metadata_kind *kind = find_kind(next_word(args, &args));
	const char *why = NULL;
	ssize_t len;

	if (!kind || !kind->decode) {
		answer_error(kind ? "no standalone decoder for this kind"
		                  : "unknown metadata kind");
		return;
	}
	len = unhex_in_place(args);
	if (len < 0) {
		answer_error("argument is not hexadecimal");
		return;
	}
	if (kind->decode((const uint8_t *)args, (size_t)len, &why) < 0)
		answer_error(why);
}

/* Frames */

static bool
has_u32(uint8_t type)
{
	return type == RFD_FRAME_REQUEST_STREAM || type == RFD_FRAME_REQUEST_CHANNEL ||
	       type == RFD_FRAME_REQUEST_N || type == RFD_FRAME_ERROR || type == RFD_FRAME_EXT;
}

static bool
has_payload(uint8_t type)
{
	switch (type) {
	case RFD_FRAME_SETUP:
	case RFD_FRAME_REQUEST_RESPONSE:
	case RFD_FRAME_REQUEST_FNF:
	case RFD_FRAME_REQUEST_STREAM:
	case RFD_FRAME_REQUEST_CHANNEL:
	case RFD_FRAME_PAYLOAD:
	case RFD_FRAME_EXT:
		return true;
	default:
		return false;
	}
}

static int
get_frame(struct fields *f, struct rfd_frame *frame)
{
	assert(f);
	assert(frame);
	memset(frame, 0, sizeof(*frame));
	if (!field_find(f, "type"))
		fields_fail(f, "type is required");
	frame->type = (uint8_t)get_uint(f, "type", 0x3F);
	frame->stream_id = get_uint(f, "stream", UINT32_MAX);
	frame->flags = (uint16_t)get_uint(f, "flags", UINT16_MAX);
	frame->u32 = get_uint(f, "u32", UINT32_MAX);
	frame->version_major = (uint16_t)get_uint(f, "major", UINT16_MAX);
	frame->version_minor = (uint16_t)get_uint(f, "minor", UINT16_MAX);
	frame->keepalive_ms = get_uint(f, "keepalive", UINT32_MAX);
	frame->max_lifetime_ms = get_uint(f, "lifetime", UINT32_MAX);
	get_u64(f, "position", &frame->last_position);
	get_bytes(f, "token", &frame->resume_token);
	get_bytes(f, "mdmime", &frame->metadata_mime);
	get_bytes(f, "datamime", &frame->data_mime);
	frame->has_metadata = get_bytes(f, "metadata", &frame->metadata);
	get_bytes(f, "data", &frame->data);
	return fields_finish(f);
}

/* The fields a frame of its type carries, after "ok". */
static void
out_frame(const struct rfd_frame *frame)
{
	assert(frame);
	out_int("type", frame->type);
	out_int("stream", frame->stream_id);
	out_int("flags", frame->flags);
	if (has_u32(frame->type))
		out_int("u32", frame->u32);
	if (frame->type == RFD_FRAME_SETUP) {
		out_int("major", frame->version_major);
		out_int("minor", frame->version_minor);
		out_int("keepalive", frame->keepalive_ms);
		out_int("lifetime", frame->max_lifetime_ms);
		if (frame->flags & RFD_FLAG_FOLLOWS)
			out_bytes("token", frame->resume_token);
		out_bytes("mdmime", frame->metadata_mime);
		out_bytes("datamime", frame->data_mime);
	}
	if (frame->type == RFD_FRAME_KEEPALIVE)
		printf(" position=%" PRIu64, frame->last_position);
	out_opt_bytes("metadata", frame->has_metadata, frame->metadata);
	if (has_payload(frame->type) || frame->type == RFD_FRAME_KEEPALIVE ||
	    frame->type == RFD_FRAME_ERROR)
		out_bytes("data", frame->data);
}

static void
command_frame_encode(char *args)
{
	struct rfd_frame frame;
	struct rfd_buf out;
	struct fields f;
	int r;

	rfd_buf_init(&out);
	r = fields_parse(&f, args);
	if (r >= 0)
		r = get_frame(&f, &frame);
	if (r >= 0)
		r = rfd_frame_encode(&frame, &out);
	if (r < 0)
		answer_error(f.error ? f.error : strerror(-r));
	else
		answer_buf(&out);
	rfd_buf_free(&out);
}

static void
command_frame_fragment(char *args)
{
	char *max_text = next_word(args, &args), *end;
	unsigned long max_frame;
	struct rfd_frame frame;
	struct rfd_buf out;
	struct fields f = {0};
	int r;

	errno = 0;
	max_frame = strtoul(max_text, &end, 10);
	if (errno || end == max_text || *end) {
		answer_error("MAX is not a number");
		return;
	}
	rfd_buf_init(&out);
	r = fields_parse(&f, args);
	if (r >= 0)
		r = get_frame(&f, &frame);
	if (r >= 0)
		r = rfd_frame_encode_fragmented(&frame, max_frame, &out);
	if (r < 0)
		answer_error(f.error ? f.error : strerror(-r));
	else
		answer_buf(&out);
	rfd_buf_free(&out);
}

/* The next whole frame of @bytes: 0 with *frame and *frame_len, or -EBADMSG with *why. */
static int
take_frame(const uint8_t *bytes, size_t len, struct rfd_frame *frame, size_t *frame_len,
           const char **why)
{
	int r = rfd_frame_split(bytes, len, RFD_FRAME_LENGTH_MAX + RFD_FRAME_LENGTH_SIZE, frame_len,
	                        why);

	if (r == 0) {
		*why = "truncated frame";
		return -EBADMSG;
	}
	if (r < 0)
		return r;
	return rfd_frame_decode(bytes + RFD_FRAME_LENGTH_SIZE, *frame_len - RFD_FRAME_LENGTH_SIZE,
	                        frame, why);
}

static void
command_frame_decode(char *args)
{
	ssize_t len = unhex_in_place(args);
	const char *why = "argument is not hexadecimal";
	struct rfd_frame frame;
	size_t frame_len;

	if (len < 0 ||
	    take_frame((const uint8_t *)args, (size_t)len, &frame, &frame_len, &why) < 0) {
		answer_error(why);
		return;
	}
	if (frame_len != (size_t)len) {
		answer_error("bytes after the frame");
		return;
	}
	fputs("ok", stdout);
	out_frame(&frame);
	putchar('\n');
}

static int
reassemble(const uint8_t *bytes, size_t len, struct rfd_reassembly *r, const char **why)
{
	struct rfd_frame frame, message;
	unsigned fragments = 0;
	size_t frame_len;
	int ret;

	assert(r);
	assert(why);
	while (len > 0) {
		ret = take_frame(bytes, len, &frame, &frame_len, why);
		if (ret < 0)
			return ret;
		bytes += frame_len;
		len -= frame_len;
		fragments++;
		ret = rfd_reassembly_add(r, &frame, &message, why);
		if (ret < 0)
			return ret;
		if (ret == 1 && len > 0) {
			*why = "bytes after the message's last fragment";
			return -EBADMSG;
		}
		if (ret == 1) {
			printf("ok fragments=%u", fragments);
			out_frame(&message);
			putchar('\n');
			return 0;
		}
	}
	*why = "the message's last fragment is missing";
	return -EBADMSG;
}

static void
command_frame_reassemble(char *args)
{
	ssize_t len = unhex_in_place(args);
	const char *why = "argument is not hexadecimal";
	struct rfd_reassembly r;

	rfd_reassembly_init(&r, REASSEMBLY_MAX);
	if (len < 0 || reassemble((const uint8_t *)args, (size_t)len, &r, &why) < 0)
		answer_error(why);
	rfd_reassembly_free(&r);
}

static void
usage(FILE *out)
{
	fputs("usage: rfd-codec-driver < COMMANDS\n"
	      "Reads one command per line and answers each with one line:\n"
	      "  encode KIND FIELD...        ok HEX\n"
	      "  decode KIND HEX             ok FIELD...\n"
	      "  frame-encode FIELD...       ok HEX\n"
	      "  frame-decode HEX            ok FIELD...\n"
	      "  frame-fragment MAX FIELD... ok HEX\n"
	      "  frame-reassemble HEX        ok fragments=N FIELD...\n"
	      "KIND: fd request response stream error setup push.  FIELD: key=value.\n"
	      "Failures answer \"error REASON\".  See interop/README.md for the keys.\n",
	      out);
}

static void
dispatch(char *line)
{
	char *args;
	const char *command = next_word(line, &args);

	assert(line);
	if (strcmp(command, "encode") == 0)
		command_encode(args);
	else if (strcmp(command, "decode") == 0)
		command_decode(args);
	else if (strcmp(command, "frame-encode") == 0)
		command_frame_encode(args);
	else if (strcmp(command, "frame-decode") == 0)
		command_frame_decode(args);
	else if (strcmp(command, "frame-fragment") == 0)
		command_frame_fragment(args);
	else if (strcmp(command, "frame-reassemble") == 0)
		command_frame_reassemble(args);
	else
		answer_error("unknown command");
}

int
main(int argc, char **argv)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if (argc > 1) {
		bool help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;

		usage(help ? stdout : stderr);
		return help ? 0 : 2;
	}
	while ((len = getline(&line, &cap, stdin)) >= 0) {
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		dispatch(line);
		fflush(stdout);
	}
	free(line);
	return ferror(stdout) ? 1 : 0;
}
