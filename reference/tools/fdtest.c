/* SPDX-License-Identifier: MIT */
/* The FdTest service's argument and result structs in the Compact protocol, and FD descriptions. */
#include "fdtest.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "buf.h"
#include "compact.h"

/* Field ids of the IDL. */
enum {
	ARGS_TEXT = 1,
	ARGS_COUNT = 1,
	ARGS_FDS_PER_ITEM = 2,
	RESULT_SUCCESS = 0,
	RESULT_ERROR = 1,
	INFO_DEV = 1,
	INFO_INO = 2,
	INFO_TYPE = 3,
	INFO_CLOEXEC = 4,
	INFO_FLAGS = 5,
	REPORT_TAG = 1,
	REPORT_FDS = 2,
	ERROR_MESSAGE = 1,
	ERROR_ERRNUM = 2,
	PEER_PID = 1,
	PEER_UID = 2,
	PEER_GID = 3,
	PEER_PID_PINNED = 4,
};

void
fdt_bytes_free(struct fdt_bytes *bytes)
{
	assert(bytes);
	rfd_free(bytes->data);
	bytes->data = NULL;
	bytes->len = 0;
}

void
fdt_report_free(struct fdt_report *report)
{
	assert(report);
	rfd_free(report->tag);
	rfd_free(report->fds);
	memset(report, 0, sizeof(*report));
}

void
fdt_open_result_free(struct fdt_open_result *result)
{
	assert(result);
	rfd_free(result->path);
	rfd_free(result->error.message);
	memset(result, 0, sizeof(*result));
}

/* @len bytes of @text, NUL-terminated. */
static char *
copy_bytes(const char *text, size_t len)
{
	char *copy = rfd_malloc(len + 1);

	if (!copy)
		return NULL;
	if (len > 0)
		memcpy(copy, text, len);
	copy[len] = '\0';
	return copy;
}

static char *
copy_string(const char *text)
{
	return copy_bytes(text, strlen(text));
}

static size_t
tag_length(const struct fdt_report *report)
{
	if (!report->tag)
		return 0;
	return report->tag_len ? report->tag_len : strlen(report->tag);
}

int
fdt_report_copy(struct fdt_report *dst, const struct fdt_report *src)
{
	assert(dst);
	assert(src);
	memset(dst, 0, sizeof(*dst));
	dst->tag_len = tag_length(src);
	dst->tag = copy_bytes(src->tag ? src->tag : "", dst->tag_len);
	if (!dst->tag)
		return -ENOMEM;
	if (src->n_fds > 0) {
		dst->fds = rfd_calloc(src->n_fds, sizeof(*dst->fds));
		if (!dst->fds) {
			fdt_report_free(dst);
			return -ENOMEM;
		}
		memcpy(dst->fds, src->fds, src->n_fds * sizeof(*dst->fds));
	}
	dst->n_fds = src->n_fds;
	return 0;
}

/* ---- Encoding ---- */

/* Hand the writer's buffer to @out, or free it when the writer failed. */
static int
finish(struct rfd_cw *w, struct rfd_buf *buf, struct fdt_bytes *out)
{
	int r = rfd_cw_finish(w);

	if (r < 0) {
		rfd_buf_free(buf);
		return r;
	}
	out->data = buf->data;
	out->len = buf->len;
	return 0;
}

static void
write_string(struct rfd_cw *w, int16_t id, const char *text)
{
	rfd_cw_field_string(w, id, text ? text : "");
}

int
fdt_encode_args(const char *text, struct fdt_bytes *out)
{
	struct rfd_buf buf;
	struct rfd_cw w;

	assert(out);
	memset(out, 0, sizeof(*out));
	rfd_buf_init(&buf);
	rfd_cw_init(&w, &buf);
	rfd_cw_struct_begin(&w);
	write_string(&w, ARGS_TEXT, text);
	rfd_cw_struct_end(&w);
	return finish(&w, &buf, out);
}

int
fdt_encode_empty_args(struct fdt_bytes *out)
{
	struct rfd_buf buf;
	struct rfd_cw w;

	assert(out);
	memset(out, 0, sizeof(*out));
	rfd_buf_init(&buf);
	rfd_cw_init(&w, &buf);
	rfd_cw_struct_begin(&w);
	rfd_cw_struct_end(&w);
	return finish(&w, &buf, out);
}

int
fdt_encode_stream_args(int32_t count, int32_t fds_per_item, struct fdt_bytes *out)
{
	struct rfd_buf buf;
	struct rfd_cw w;

	assert(out);
	memset(out, 0, sizeof(*out));
	rfd_buf_init(&buf);
	rfd_cw_init(&w, &buf);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_i32(&w, ARGS_COUNT, count);
	rfd_cw_field_i32(&w, ARGS_FDS_PER_ITEM, fds_per_item);
	rfd_cw_struct_end(&w);
	return finish(&w, &buf, out);
}

static void
write_fdinfo(struct rfd_cw *w, const struct fdt_fdinfo *info)
{
	rfd_cw_struct_begin(w);
	rfd_cw_field_i64(w, INFO_DEV, info->dev);
	rfd_cw_field_i64(w, INFO_INO, info->ino);
	rfd_cw_field_i32(w, INFO_TYPE, info->type);
	rfd_cw_field_bool(w, INFO_CLOEXEC, info->cloexec);
	rfd_cw_field_i32(w, INFO_FLAGS, info->flags);
	rfd_cw_struct_end(w);
}

static void
write_report(struct rfd_cw *w, const struct fdt_report *report)
{
	rfd_cw_struct_begin(w);
	rfd_cw_field_binary(w, REPORT_TAG, report->tag ? report->tag : "", tag_length(report));
	rfd_cw_field(w, RFD_CT_LIST, REPORT_FDS);
	rfd_cw_list_begin(w, RFD_CT_STRUCT, (uint32_t)report->n_fds);
	for (size_t i = 0; i < report->n_fds; i++)
		write_fdinfo(w, &report->fds[i]);
	rfd_cw_struct_end(w);
}

int
fdt_encode_report_result(const struct fdt_report *report, struct fdt_bytes *out)
{
	struct rfd_buf buf;
	struct rfd_cw w;

	assert(report);
	assert(out);
	memset(out, 0, sizeof(*out));
	if (report->n_fds > FDT_MAX_FDS || (report->n_fds > 0 && !report->fds))
		return -EINVAL;
	rfd_buf_init(&buf);
	rfd_cw_init(&w, &buf);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_STRUCT, RESULT_SUCCESS);
	write_report(&w, report);
	rfd_cw_struct_end(&w);
	return finish(&w, &buf, out);
}

int
fdt_encode_bytes_result(const char *text, size_t len, struct fdt_bytes *out)
{
	struct rfd_buf buf;
	struct rfd_cw w;

	assert(text || len == 0);
	assert(out);
	memset(out, 0, sizeof(*out));
	rfd_buf_init(&buf);
	rfd_cw_init(&w, &buf);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_binary(&w, RESULT_SUCCESS, text ? text : "", len);
	rfd_cw_struct_end(&w);
	return finish(&w, &buf, out);
}

int
fdt_encode_string_result(const char *text, struct fdt_bytes *out)
{
	assert(text);
	return fdt_encode_bytes_result(text, strlen(text), out);
}

int
fdt_encode_error_result(const char *message, int32_t errnum, struct fdt_bytes *out)
{
	struct rfd_buf buf;
	struct rfd_cw w;

	assert(out);
	memset(out, 0, sizeof(*out));
	rfd_buf_init(&buf);
	rfd_cw_init(&w, &buf);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_STRUCT, RESULT_ERROR);
	rfd_cw_struct_begin(&w);
	write_string(&w, ERROR_MESSAGE, message);
	rfd_cw_field_i32(&w, ERROR_ERRNUM, errnum);
	rfd_cw_struct_end(&w);
	rfd_cw_struct_end(&w);
	return finish(&w, &buf, out);
}

int
fdt_encode_peer_info_result(const struct fdt_peer_info *info, struct fdt_bytes *out)
{
	struct rfd_buf buf;
	struct rfd_cw w;

	assert(info);
	assert(out);
	memset(out, 0, sizeof(*out));
	rfd_buf_init(&buf);
	rfd_cw_init(&w, &buf);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_STRUCT, RESULT_SUCCESS);
	rfd_cw_struct_begin(&w);
	rfd_cw_field_i32(&w, PEER_PID, info->pid);
	rfd_cw_field_i32(&w, PEER_UID, info->uid);
	rfd_cw_field_i32(&w, PEER_GID, info->gid);
	rfd_cw_field_bool(&w, PEER_PID_PINNED, info->pid_pinned);
	rfd_cw_struct_end(&w);
	rfd_cw_struct_end(&w);
	return finish(&w, &buf, out);
}

/* ---- Decoding ---- */

/*
 * Read a string value into a fresh NUL-terminated copy, replacing *text;
 * with @len, NUL bytes are allowed and *len is the string's length.
 */
static int
read_string_len(struct rfd_cr *r, char **text, size_t *len)
{
	struct rfd_slice value;
	char *copy;
	int ret;

	ret = rfd_cr_binary(r, &value);
	if (ret < 0)
		return ret;
	if (!len && memchr(value.ptr, '\0', value.len))
		return rfd_cr_fail(r, "string holds a NUL byte");
	copy = copy_bytes((const char *)value.ptr, value.len);
	if (!copy)
		return -ENOMEM;
	rfd_free(*text);
	*text = copy;
	if (len)
		*len = value.len;
	return 0;
}

static int
read_string(struct rfd_cr *r, char **text)
{
	return read_string_len(r, text, NULL);
}

/* An absent string reads as "". */
static int
default_string(char **text)
{
	if (*text)
		return 0;
	*text = copy_string("");
	return *text ? 0 : -ENOMEM;
}

static int
expect_type(struct rfd_cr *r, const struct rfd_cr_field *f, uint8_t type, const char *why)
{
	return f->type == type ? 0 : rfd_cr_fail(r, why);
}

/* Finish a decode: 0, or the reader's failure with its reason in *why. */
static int
conclude(struct rfd_cr *r, int ret, const char **why)
{
	if (ret == 0)
		ret = rfd_cr_finish(r);
	if (why)
		*why = ret == -ENOMEM ? "out of memory" : ret < 0 ? rfd_cr_error(r) : NULL;
	return ret;
}

static int
read_i32_field(struct rfd_cr *r, const struct rfd_cr_field *f, int32_t *value, const char *why)
{
	int ret = expect_type(r, f, RFD_CT_I32, why);

	return ret < 0 ? ret : rfd_cr_i32(r, value);
}

static int
read_i64_field(struct rfd_cr *r, const struct rfd_cr_field *f, int64_t *value, const char *why)
{
	int ret = expect_type(r, f, RFD_CT_I64, why);

	return ret < 0 ? ret : rfd_cr_i64(r, value);
}

static int
read_string_field(struct rfd_cr *r, const struct rfd_cr_field *f, char **text, const char *why)
{
	int ret = expect_type(r, f, RFD_CT_BINARY, why);

	return ret < 0 ? ret : read_string(r, text);
}

/* The fields of a struct whose header was read; @read_field handles one field. */
typedef int read_field_fn(struct rfd_cr *r, const struct rfd_cr_field *f, void *out);

static int
read_struct_body(struct rfd_cr *r, read_field_fn *read_field, void *out)
{
	struct rfd_cr_field f;
	int ret;

	while ((ret = rfd_cr_field(r, &f)) > 0) {
		ret = read_field(r, &f, out);
		if (ret < 0)
			return ret;
	}
	return ret;
}

static int
read_struct(struct rfd_cr *r, read_field_fn *read_field, void *out)
{
	int ret = rfd_cr_struct_begin(r);

	return ret < 0 ? ret : read_struct_body(r, read_field, out);
}

static int
fdinfo_field(struct rfd_cr *r, const struct rfd_cr_field *f, void *out)
{
	struct fdt_fdinfo *info = out;

	switch (f->id) {
	case INFO_DEV:
		return read_i64_field(r, f, &info->dev, "FdInfo.dev is not an i64");
	case INFO_INO:
		return read_i64_field(r, f, &info->ino, "FdInfo.ino is not an i64");
	case INFO_TYPE:
		return read_i32_field(r, f, &info->type, "FdInfo.type is not an i32");
	case INFO_CLOEXEC:
		info->cloexec = f->type == RFD_CT_BOOL && f->bool_value;
		return expect_type(r, f, RFD_CT_BOOL, "FdInfo.cloexec is not a bool");
	case INFO_FLAGS:
		return read_i32_field(r, f, &info->flags, "FdInfo.flags is not an i32");
	default:
		return rfd_cr_skip_field(r, f);
	}
}

static int
read_fd_list(struct rfd_cr *r, struct fdt_report *report)
{
	struct fdt_fdinfo *fds = NULL;
	uint8_t elem_type;
	uint32_t n;
	int ret;

	ret = rfd_cr_list_begin(r, &elem_type, &n);
	if (ret < 0)
		return ret;
	if (elem_type != RFD_CT_STRUCT && n > 0)
		return rfd_cr_fail(r, "FdReport.fds is not a list of structs");
	if (n > FDT_MAX_FDS)
		return rfd_cr_fail(r, "FdReport.fds lists more FDs than one message can carry");
	if (n > 0) {
		fds = rfd_calloc(n, sizeof(*fds));
		if (!fds)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < n && ret == 0; i++)
		ret = read_struct(r, fdinfo_field, &fds[i]);
	if (ret == 0)
		ret = rfd_cr_list_end(r);
	if (ret < 0) {
		rfd_free(fds);
		return ret;
	}
	rfd_free(report->fds);
	report->fds = fds;
	report->n_fds = n;
	return 0;
}

static int
report_field(struct rfd_cr *r, const struct rfd_cr_field *f, void *out)
{
	struct fdt_report *report = out;

	switch (f->id) {
	case REPORT_TAG: {
		int ret = expect_type(r, f, RFD_CT_BINARY, "FdReport.tag is not a string");

		return ret < 0 ? ret : read_string_len(r, &report->tag, &report->tag_len);
	}
	case REPORT_FDS: {
		int ret = expect_type(r, f, RFD_CT_LIST, "FdReport.fds is not a list");

		return ret < 0 ? ret : read_fd_list(r, report);
	}
	default:
		return rfd_cr_skip_field(r, f);
	}
}

static int
error_field(struct rfd_cr *r, const struct rfd_cr_field *f, void *out)
{
	struct fdt_error *error = out;

	switch (f->id) {
	case ERROR_MESSAGE:
		return read_string_field(r, f, &error->message,
		                         "FdTestError.message is not a string");
	case ERROR_ERRNUM:
		return read_i32_field(r, f, &error->errnum, "FdTestError.errnum is not an i32");
	default:
		return rfd_cr_skip_field(r, f);
	}
}

struct args {
	char *text;
	size_t len;
	bool nul_allowed;
};

static int
args_field(struct rfd_cr *r, const struct rfd_cr_field *f, void *out)
{
	struct args *args = out;
	int ret;

	if (f->id != ARGS_TEXT)
		return rfd_cr_skip_field(r, f);
	ret = expect_type(r, f, RFD_CT_BINARY, "argument 1 is not a string");
	if (ret < 0)
		return ret;
	return read_string_len(r, &args->text, args->nul_allowed ? &args->len : NULL);
}

int
fdt_decode_args(const uint8_t *data, size_t len, char **text, size_t *text_len, const char **why)
{
	struct args args = {.nul_allowed = text_len != NULL};
	struct rfd_cr r;
	int ret;

	assert(data || len == 0);
	assert(text);
	*text = NULL;
	if (text_len)
		*text_len = 0;
	rfd_cr_init(&r, data, len);
	ret = read_struct(&r, args_field, &args);
	if (ret == 0)
		ret = default_string(&args.text);
	ret = conclude(&r, ret, why);
	if (ret < 0) {
		rfd_free(args.text);
		return ret;
	}
	*text = args.text;
	if (text_len)
		*text_len = args.len;
	return 0;
}

static int
skip_field(struct rfd_cr *r, const struct rfd_cr_field *f, void *out)
{
	return rfd_cr_skip_field(r, f);
}

int
fdt_decode_empty_args(const uint8_t *data, size_t len, const char **why)
{
	struct rfd_cr r;

	assert(data || len == 0);
	rfd_cr_init(&r, data, len);
	return conclude(&r, read_struct(&r, skip_field, NULL), why);
}

struct stream_args {
	int32_t count;
	int32_t fds_per_item;
};

static int
stream_args_field(struct rfd_cr *r, const struct rfd_cr_field *f, void *out)
{
	struct stream_args *args = out;

	switch (f->id) {
	case ARGS_COUNT:
		return read_i32_field(r, f, &args->count, "argument 1 (count) is not an i32");
	case ARGS_FDS_PER_ITEM:
		return read_i32_field(r, f, &args->fds_per_item,
		                      "argument 2 (fdsPerItem) is not an i32");
	default:
		return rfd_cr_skip_field(r, f);
	}
}

int
fdt_decode_stream_args(const uint8_t *data, size_t len, int32_t *count, int32_t *fds_per_item,
                       const char **why)
{
	struct stream_args args = {0};
	struct rfd_cr r;
	int ret;

	assert(data || len == 0);
	assert(count);
	assert(fds_per_item);
	*count = 0;
	*fds_per_item = 0;
	rfd_cr_init(&r, data, len);
	ret = conclude(&r, read_struct(&r, stream_args_field, &args), why);
	if (ret < 0)
		return ret;
	*count = args.count;
	*fds_per_item = args.fds_per_item;
	return 0;
}

struct report_result {
	struct fdt_report *report;
	bool present;
};

static int
report_result_field(struct rfd_cr *r, const struct rfd_cr_field *f, void *out)
{
	struct report_result *result = out;
	int ret;

	if (f->id != RESULT_SUCCESS)
		return rfd_cr_skip_field(r, f);
	ret = expect_type(r, f, RFD_CT_STRUCT, "result field 0 is not a struct");
	if (ret < 0)
		return ret;
	/* A repeated field replaces the earlier value. */
	fdt_report_free(result->report);
	result->present = true;
	return read_struct(r, report_field, result->report);
}

int
fdt_decode_report_result(const uint8_t *data, size_t len, struct fdt_report *report,
                         const char **why)
{
	struct report_result result = {.report = report};
	struct rfd_cr r;
	int ret;

	assert(data || len == 0);
	assert(report);
	memset(report, 0, sizeof(*report));
	rfd_cr_init(&r, data, len);
	ret = read_struct(&r, report_result_field, &result);
	if (ret == 0 && !result.present)
		ret = rfd_cr_fail(&r, "the result holds no return value (field 0)");
	if (ret == 0)
		ret = default_string(&report->tag);
	ret = conclude(&r, ret, why);
	if (ret < 0)
		fdt_report_free(report);
	return ret;
}

struct open_result {
	struct fdt_open_result *result;
	bool success;
	bool error;
};

static int
open_result_field(struct rfd_cr *r, const struct rfd_cr_field *f, void *out)
{
	struct open_result *state = out;
	int ret;

	switch (f->id) {
	case RESULT_SUCCESS:
		state->success = true;
		return read_string_field(r, f, &state->result->path,
		                         "result field 0 is not a string");
	case RESULT_ERROR:
		ret = expect_type(r, f, RFD_CT_STRUCT, "result field 1 is not a struct");
		if (ret < 0)
			return ret;
		state->error = true;
		rfd_free(state->result->error.message);
		memset(&state->result->error, 0, sizeof(state->result->error));
		return read_struct(r, error_field, &state->result->error);
	default:
		return rfd_cr_skip_field(r, f);
	}
}

static int
decode_string_or_error(const uint8_t *data, size_t len, struct fdt_open_result *result,
                       bool error_allowed, const char **why)
{
	struct open_result state = {.result = result};
	struct rfd_cr r;
	int ret;

	memset(result, 0, sizeof(*result));
	rfd_cr_init(&r, data, len);
	ret = read_struct(&r, open_result_field, &state);
	if (ret == 0 && state.success && state.error)
		ret = rfd_cr_fail(&r, "the result holds both a return value and an exception");
	else if (ret == 0 && state.error && !error_allowed)
		ret = rfd_cr_fail(&r, "the result holds an exception this method does not declare");
	else if (ret == 0 && !state.success && !state.error)
		ret = rfd_cr_fail(&r, "the result holds no return value (field 0)");
	if (ret == 0) {
		result->failed = state.error;
		ret = default_string(state.error ? &result->error.message : &result->path);
	}
	ret = conclude(&r, ret, why);
	if (ret < 0)
		fdt_open_result_free(result);
	return ret;
}

int
fdt_decode_string_result(const uint8_t *data, size_t len, char **text, const char **why)
{
	struct fdt_open_result result;
	int ret;

	assert(data || len == 0);
	assert(text);
	*text = NULL;
	ret = decode_string_or_error(data, len, &result, false, why);
	if (ret < 0)
		return ret;
	*text = result.path;
	result.path = NULL;
	fdt_open_result_free(&result);
	return 0;
}

/* A sink item {0: string}, its tag kept whole. */
struct sink_item {
	char *tag;
	size_t len;
	bool present;
};

static int
sink_item_field(struct rfd_cr *r, const struct rfd_cr_field *f, void *out)
{
	struct sink_item *item = out;
	int ret;

	if (f->id != RESULT_SUCCESS)
		return rfd_cr_skip_field(r, f);
	ret = expect_type(r, f, RFD_CT_BINARY, "the sink item's field 0 is not a string");
	if (ret < 0)
		return ret;
	item->present = true;
	return read_string_len(r, &item->tag, &item->len);
}

int
fdt_decode_sink_item(const uint8_t *data, size_t len, char **tag, size_t *tag_len, const char **why)
{
	struct sink_item item = {0};
	struct rfd_cr r;
	int ret;

	assert(data || len == 0);
	assert(tag && tag_len);
	*tag = NULL;
	*tag_len = 0;
	rfd_cr_init(&r, data, len);
	ret = read_struct(&r, sink_item_field, &item);
	if (ret == 0 && !item.present)
		ret = rfd_cr_fail(&r, "the sink item holds no field 0");
	if (ret == 0)
		ret = default_string(&item.tag);
	ret = conclude(&r, ret, why);
	if (ret < 0) {
		rfd_free(item.tag);
		return ret;
	}
	*tag = item.tag;
	*tag_len = item.len;
	return 0;
}

int
fdt_decode_open_result(const uint8_t *data, size_t len, struct fdt_open_result *result,
                       const char **why)
{
	assert(data || len == 0);
	assert(result);
	return decode_string_or_error(data, len, result, true, why);
}

static int
peer_info_field(struct rfd_cr *r, const struct rfd_cr_field *f, void *out)
{
	struct fdt_peer_info *info = out;

	switch (f->id) {
	case PEER_PID:
		return read_i32_field(r, f, &info->pid, "PeerInfo.pid is not an i32");
	case PEER_UID:
		return read_i32_field(r, f, &info->uid, "PeerInfo.uid is not an i32");
	case PEER_GID:
		return read_i32_field(r, f, &info->gid, "PeerInfo.gid is not an i32");
	case PEER_PID_PINNED:
		info->pid_pinned = f->type == RFD_CT_BOOL && f->bool_value;
		return expect_type(r, f, RFD_CT_BOOL, "PeerInfo.pidPinned is not a bool");
	default:
		return rfd_cr_skip_field(r, f);
	}
}

struct peer_info_result {
	struct fdt_peer_info *info;
	bool present;
};

static int
peer_info_result_field(struct rfd_cr *r, const struct rfd_cr_field *f, void *out)
{
	struct peer_info_result *result = out;
	int ret;

	if (f->id != RESULT_SUCCESS)
		return rfd_cr_skip_field(r, f);
	ret = expect_type(r, f, RFD_CT_STRUCT, "result field 0 is not a struct");
	if (ret < 0)
		return ret;
	/* A repeated field replaces the earlier value. */
	memset(result->info, 0, sizeof(*result->info));
	result->present = true;
	return read_struct(r, peer_info_field, result->info);
}

int
fdt_decode_peer_info_result(const uint8_t *data, size_t len, struct fdt_peer_info *info,
                            const char **why)
{
	struct peer_info_result result = {.info = info};
	struct rfd_cr r;
	int ret;

	assert(data || len == 0);
	assert(info);
	memset(info, 0, sizeof(*info));
	rfd_cr_init(&r, data, len);
	ret = read_struct(&r, peer_info_result_field, &result);
	if (ret == 0 && !result.present)
		ret = rfd_cr_fail(&r, "the result holds no return value (field 0)");
	ret = conclude(&r, ret, why);
	if (ret < 0)
		memset(info, 0, sizeof(*info));
	return ret;
}

/* ---- Describing FDs ---- */

int
fdt_describe_fd(int fd, struct fdt_fdinfo *out)
{
	struct stat st;
	int fd_flags, status_flags;

	assert(out);
	memset(out, 0, sizeof(*out));
	if (fstat(fd, &st) < 0)
		return -errno;
	fd_flags = fcntl(fd, F_GETFD);
	if (fd_flags < 0)
		return -errno;
	status_flags = fcntl(fd, F_GETFL);
	if (status_flags < 0)
		return -errno;
	out->dev = (int64_t)st.st_dev;
	out->ino = (int64_t)st.st_ino;
	out->type = (int32_t)(st.st_mode & S_IFMT);
	out->cloexec = (fd_flags & FD_CLOEXEC) != 0;
	out->flags = status_flags;
	return 0;
}

const char *
fdt_type_name(int32_t type)
{
	switch (type) {
	case S_IFREG:
		return "regular";
	case S_IFDIR:
		return "dir";
	case S_IFIFO:
		return "fifo";
	case S_IFSOCK:
		return "socket";
	case S_IFCHR:
		return "chr";
	case S_IFBLK:
		return "blk";
	case S_IFLNK:
		return "symlink";
	default:
		return "unknown";
	}
}

/*
 * O_LARGEFILE reads as 0 in 64-bit userspace, but the kernel sets its bit
 * on every file it opens there and F_GETFL reports it.
 */
#define KERNEL_O_LARGEFILE 0100000

static const struct {
	int32_t bit;
	const char *name;
} status_flag_names[] = {
    {O_NONBLOCK, "O_NONBLOCK"},
    {O_APPEND, "O_APPEND"},
    {O_SYNC, "O_SYNC"}, /* before O_DSYNC, whose bit it includes */
    {O_DSYNC, "O_DSYNC"},
    {O_ASYNC, "O_ASYNC"},
    {O_DIRECT, "O_DIRECT"},
    {O_TMPFILE, "O_TMPFILE"}, /* before O_DIRECTORY, whose bit it includes */
    {O_DIRECTORY, "O_DIRECTORY"},
    {O_NOFOLLOW, "O_NOFOLLOW"},
    {O_NOATIME, "O_NOATIME"},
    {O_CLOEXEC, "O_CLOEXEC"},
    {KERNEL_O_LARGEFILE, "O_LARGEFILE"},
};

static void
append(char *buf, size_t size, size_t *used, const char *text)
{
	int n = snprintf(buf + *used, size - *used, "%s%s", *used ? "|" : "", text);

	if (n > 0)
		*used += (size_t)n < size - *used ? (size_t)n : size - *used - 1;
}

static const char *
access_mode_name(int32_t flags)
{
	switch (flags & O_ACCMODE) {
	case O_RDONLY:
		return "O_RDONLY";
	case O_WRONLY:
		return "O_WRONLY";
	case O_RDWR:
		return "O_RDWR";
	default:
		return "O_ACCMODE";
	}
}

char *
fdt_flags_string(int32_t flags, char *buf, size_t size)
{
	int32_t rest;
	size_t used = 0;
	char hex[16];

	assert(buf);
	assert(size > 0);
	buf[0] = '\0';
	rest = flags & ~O_ACCMODE;
	if (rest & O_PATH) {
		/* An O_PATH FD has no access mode. */
		rest &= ~O_PATH;
		append(buf, size, &used, "O_PATH");
	} else {
		append(buf, size, &used, access_mode_name(flags));
	}
	for (size_t i = 0; i < sizeof(status_flag_names) / sizeof(status_flag_names[0]); i++) {
		if ((rest & status_flag_names[i].bit) == status_flag_names[i].bit) {
			append(buf, size, &used, status_flag_names[i].name);
			rest &= ~status_flag_names[i].bit;
		}
	}
	if (rest) {
		snprintf(hex, sizeof(hex), "0x%" PRIx32, (uint32_t)rest);
		append(buf, size, &used, hex);
	}
	return buf;
}

char *
fdt_fdinfo_string(const struct fdt_fdinfo *info, char *buf, size_t size)
{
	char flags[128];

	assert(info);
	assert(buf);
	snprintf(buf, size, "%-7s %" PRId64 ":%" PRId64 " cloexec %-3s %s",
	         fdt_type_name(info->type), info->dev, info->ino, info->cloexec ? "yes" : "no",
	         fdt_flags_string(info->flags, flags, sizeof(flags)));
	return buf;
}
