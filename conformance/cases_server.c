/* SPDX-License-Identifier: MIT */
/*
 * Cases for a server under test: the harness is the client.  Each case
 * names the requirements it checks; spec/fd-passing.md has their text.
 * Frames are built here byte by byte, so that a case can send what no
 * correct client would.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cases.h"
#include "compact.h"
#include "fdsock.h"
#include "target.h"

#define PROTOCOL_KEY  0xf09f9a80u
#define METADATA_MIME "application/x-rocket-metadata+compact"
#define DATA_MIME     "application/x-rocket-payload"

#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

enum {
	KIND_RR = RFD_RPC_SINGLE_REQUEST_SINGLE_RESPONSE,
	KIND_FNF = RFD_RPC_SINGLE_REQUEST_NO_RESPONSE,
	KIND_STREAM = RFD_RPC_SINGLE_REQUEST_STREAMING_RESPONSE,
	KIND_BIDI = 7,
	ANSWER_FLAGS = RFD_FLAG_METADATA | RFD_FLAG_NEXT | RFD_FLAG_COMPLETE,
	RESPOND = RFD_FLAG_FOLLOWS, /* the KEEPALIVE flag with the same bit */
	MIB = 1024 * 1024,
	FRAGMENT_PAYLOAD = 0xFFFFFF - 512, /* metadata + data bytes per fragment, as fbthrift */
	START_TIMEOUT_MS = 10000,          /* CONTRACT-3 */
	STOP_TIMEOUT_MS = 5000,            /* CONTRACT-6 */
	GAP_MS = 15,                       /* between writes meant to be read separately */
	BIG_WAIT_MS = 8000,                /* reading or writing tens of MiB */
};

/* ---- Small things ---- */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
pause_ms(int ms)
{
	poll(NULL, 0, ms);
}

/* Put "@prefix: " before the reason already recorded. */
static enum conf_result __attribute__((format(printf, 2, 3)))
reason_prefix(struct conf_ctx *ctx, const char *fmt, ...)
{
	char prefix[256], reason[sizeof(ctx->reason)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(reason, sizeof(reason), "%s", ctx->reason);
	snprintf(ctx->reason, sizeof(ctx->reason), "%.200s: %.300s", prefix, reason);
	return CONF_FAIL;
}

static int
dev_null(void)
{
	return open("/dev/null", O_RDWR | O_CLOEXEC);
}

static ino_t
ino_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

/* Make room in @pid (0: this process) for @want FDs, when its hard limit allows. */
static int
raise_nofile(pid_t pid, rlim_t want, struct rlimit *saved)
{
	struct rlimit limit;

	if (prlimit(pid, RLIMIT_NOFILE, NULL, saved) < 0)
		return -errno;
	limit = *saved;
	if (limit.rlim_cur >= want)
		return 0;
	if (limit.rlim_max < want)
		return -EPERM;
	limit.rlim_cur = want;
	return prlimit(pid, RLIMIT_NOFILE, &limit, NULL) < 0 ? -errno : 0;
}

static struct rfd_fd_metadata
fd_claim(int64_t seq, int32_t num)
{
	return (struct rfd_fd_metadata){
	    .present = true, .has_seq = true, .fd_seq = seq, .has_num = true, .num_fds = num};
}

/* ---- Building frames ---- */

/* Extra RequestRpcMetadata content a case asks for. */
enum {
	MD_NO_PROTOCOL = 1 << 0,
	MD_NO_KIND = 1 << 1,
	MD_COMPRESSION = 1 << 2,        /* 14 compression = ZLIB */
	MD_INTERACTION_ID = 1 << 3,     /* 16 interactionId */
	MD_INTERACTION_CREATE = 1 << 4, /* 17 interactionCreate */
	MD_CHECKSUM = 1 << 5,           /* 25 checksum with algorithm 1 */
	MD_UNKNOWN = 1 << 6,            /* unknown fields of every type, also inside fdMetadata */
	MD_COMPRESSION_NONE = 1 << 7,   /* 14 compression = NONE (0) */
	MD_CHECKSUM_NONE = 1 << 8,      /* 25 checksum with algorithm NONE (0) */
};

struct request_md {
	int32_t protocol;
	const char *name; /* NULL: no name field */
	int32_t kind;
	unsigned extras;
	struct rfd_fd_metadata fd; /* written when present */
};

static struct request_md
call_md(const char *method, int32_t kind, const struct rfd_fd_metadata *fd)
{
	struct request_md md = {.protocol = RFD_PROTOCOL_COMPACT, .name = method, .kind = kind};

	if (fd)
		md.fd = *fd;
	return md;
}

/* Fields no receiver knows, one of every Compact type, structs nested three deep. */
static void
put_unknown_fields(struct rfd_cw *w, int16_t id)
{
	static const char *const names[] = {"a", "b"};
	uint8_t filler[200];

	memset(filler, 'u', sizeof(filler));
	rfd_cw_field_bool(w, id++, true);
	rfd_cw_field_bool(w, id++, false);
	rfd_cw_field(w, RFD_CT_BYTE, id++);
	rfd_cw_byte(w, -7);
	rfd_cw_field(w, RFD_CT_I16, id++);
	rfd_cw_i16(w, -300);
	rfd_cw_field_i32(w, id++, 123456);
	rfd_cw_field_i64(w, id++, -((int64_t)1 << 40));
	rfd_cw_field(w, RFD_CT_DOUBLE, id++);
	rfd_cw_double(w, 1.5);
	rfd_cw_field_binary(w, id++, filler, sizeof(filler));
	rfd_cw_field(w, RFD_CT_LIST, id++);
	rfd_cw_list_begin(w, RFD_CT_I32, 3);
	for (int32_t i = 1; i <= 3; i++)
		rfd_cw_i32(w, i);
	rfd_cw_field(w, RFD_CT_LIST, id++);
	rfd_cw_list_begin(w, RFD_CT_I64, 20);
	for (int64_t i = 0; i < 20; i++)
		rfd_cw_i64(w, i << 33);
	rfd_cw_field(w, RFD_CT_LIST, id++);
	rfd_cw_list_begin(w, RFD_CT_BOOL, 2);
	rfd_cw_bool(w, true);
	rfd_cw_bool(w, false);
	rfd_cw_field(w, RFD_CT_SET, id++);
	rfd_cw_set_begin(w, RFD_CT_BINARY, 2);
	for (size_t i = 0; i < 2; i++)
		rfd_cw_string(w, names[i]);
	rfd_cw_field(w, RFD_CT_MAP, id++);
	rfd_cw_map_begin(w, RFD_CT_BINARY, RFD_CT_I64, 1);
	rfd_cw_string(w, "k");
	rfd_cw_i64(w, 1);
	rfd_cw_field(w, RFD_CT_MAP, id++);
	rfd_cw_map_begin(w, RFD_CT_I32, RFD_CT_I32, 0);
	rfd_cw_field(w, RFD_CT_STRUCT, id++);
	rfd_cw_struct_begin(w);
	rfd_cw_field_i32(w, 1, 7);
	rfd_cw_field(w, RFD_CT_STRUCT, 2);
	rfd_cw_struct_begin(w);
	rfd_cw_field(w, RFD_CT_LIST, 3);
	rfd_cw_list_begin(w, RFD_CT_STRUCT, 1);
	rfd_cw_struct_begin(w);
	rfd_cw_field_string(w, 1, "deep");
	rfd_cw_field_bool(w, 2, true);
	rfd_cw_struct_end(w);
	rfd_cw_struct_end(w);
	rfd_cw_struct_end(w);
}

static void
put_fd_md(struct rfd_cw *w, const struct rfd_fd_metadata *fd, bool unknown)
{
	rfd_cw_field(w, RFD_CT_STRUCT, 22);
	rfd_cw_struct_begin(w);
	if (fd->has_seq)
		rfd_cw_field_i64(w, 1, fd->fd_seq);
	if (fd->has_num)
		rfd_cw_field_i32(w, 2, fd->num_fds);
	if (unknown) {
		rfd_cw_field(w, RFD_CT_STRUCT, 3);
		rfd_cw_struct_begin(w);
		rfd_cw_field_string(w, 1, "x");
		rfd_cw_struct_end(w);
		rfd_cw_field(w, RFD_CT_LIST, 9);
		rfd_cw_list_begin(w, RFD_CT_I32, 1);
		rfd_cw_i32(w, 5);
	}
	rfd_cw_struct_end(w);
}

/* A Compact RequestRpcMetadata, appended to @out. */
static void
put_request_md(struct rfd_buf *out, const struct request_md *m)
{
	struct rfd_cw w;

	rfd_cw_init(&w, out);
	rfd_cw_struct_begin(&w);
	if (!(m->extras & MD_NO_PROTOCOL))
		rfd_cw_field_i32(&w, 1, m->protocol);
	if (m->name)
		rfd_cw_field_string(&w, 2, m->name);
	if (!(m->extras & MD_NO_KIND))
		rfd_cw_field_i32(&w, 3, m->kind);
	if (m->extras & MD_UNKNOWN) {
		rfd_cw_field_i32(&w, 5, 30000);
		rfd_cw_field(&w, RFD_CT_MAP, 8);
		rfd_cw_map_begin(&w, RFD_CT_BINARY, RFD_CT_BINARY, 1);
		rfd_cw_string(&w, "x-harness");
		rfd_cw_string(&w, "rfd-conform");
	}
	if (m->extras & MD_COMPRESSION)
		rfd_cw_field_i32(&w, 14, 1);
	if (m->extras & MD_COMPRESSION_NONE)
		rfd_cw_field_i32(&w, 14, 0);
	if (m->extras & MD_INTERACTION_ID)
		rfd_cw_field_i64(&w, 16, 1);
	if (m->extras & MD_INTERACTION_CREATE) {
		rfd_cw_field(&w, RFD_CT_STRUCT, 17);
		rfd_cw_struct_begin(&w);
		rfd_cw_field_i64(&w, 1, 1);
		rfd_cw_field_string(&w, 2, "Interaction");
		rfd_cw_struct_end(&w);
	}
	if (m->fd.present)
		put_fd_md(&w, &m->fd, m->extras & MD_UNKNOWN);
	if (m->extras & (MD_CHECKSUM | MD_CHECKSUM_NONE)) {
		rfd_cw_field(&w, RFD_CT_STRUCT, 25);
		rfd_cw_struct_begin(&w);
		rfd_cw_field_i32(&w, 1, (m->extras & MD_CHECKSUM) ? 1 : 0);
		rfd_cw_field_i64(&w, 2, 0x1234);
		rfd_cw_struct_end(&w);
	}
	if (m->extras & MD_UNKNOWN)
		put_unknown_fields(&w, 100);
	rfd_cw_struct_end(&w);
	rfd_cw_finish(&w);
}

/* A frame whose length field counts the 6 header bytes and @body. */
static void
put_frame(struct rfd_buf *out, uint32_t stream_id, uint8_t type, uint16_t flags, const void *body,
          size_t len)
{
	rfd_buf_put_u24(out, (uint32_t)(6 + len));
	rfd_buf_put_u32(out, stream_id);
	rfd_buf_put_u16(out, (uint16_t)(type << 10 | flags));
	rfd_buf_append(out, body, len);
}

/*
 * A payload-carrying frame: the u32 initial N of REQUEST_STREAM and
 * REQUEST_CHANNEL, then metadata (when @md is not NULL) and data.
 */
static void
put_payload_frame(struct rfd_buf *out, uint8_t type, uint32_t stream_id, uint16_t flags,
                  const struct rfd_buf *md, const void *data, size_t data_len)
{
	size_t start = out->len;

	rfd_buf_put_u24(out, 0);
	rfd_buf_put_u32(out, stream_id);
	rfd_buf_put_u16(out, (uint16_t)(type << 10 | flags | (md ? RFD_FLAG_METADATA : 0)));
	if (type == RFD_FRAME_REQUEST_STREAM || type == RFD_FRAME_REQUEST_CHANNEL)
		rfd_buf_put_u32(out, 1);
	if (md) {
		rfd_buf_put_u24(out, (uint32_t)md->len);
		rfd_buf_append(out, md->data, md->len);
	}
	rfd_buf_append(out, data, data_len);
	rfd_buf_patch_u24(out, start, (uint32_t)(out->len - start - 3));
}

/* A request frame with metadata @m and data @args. */
static void
put_request(struct rfd_buf *out, uint8_t type, uint32_t stream_id, uint16_t flags,
            const struct request_md *m, const void *args, size_t args_len)
{
	struct rfd_buf md;

	rfd_buf_init(&md);
	put_request_md(&md, m);
	put_payload_frame(out, type, stream_id, flags, &md, args, args_len);
	rfd_buf_free(&md);
}

/* FdTest's {1: string} arguments for @text, which may hold any byte. */
static void
put_text_args(struct rfd_buf *out, const void *text, size_t len)
{
	size_t n = len;

	rfd_buf_put_u8(out, 0x18);
	do {
		rfd_buf_put_u8(out, (uint8_t)((n & 0x7F) | (n > 0x7F ? 0x80 : 0)));
		n >>= 7;
	} while (n);
	rfd_buf_append(out, text, len);
	rfd_buf_put_u8(out, 0);
}

/* A whole call of @method(@text) as one frame: REQUEST_RESPONSE, REQUEST_FNF, ... */
static void
put_call(struct rfd_buf *out, uint8_t type, uint32_t stream_id, const char *method,
         const char *text, const struct request_md *m)
{
	struct request_md plain =
	    call_md(method, type == RFD_FRAME_REQUEST_FNF ? KIND_FNF : KIND_RR, NULL);
	struct rfd_buf args;

	rfd_buf_init(&args);
	if (text)
		put_text_args(&args, text, strlen(text));
	else
		rfd_buf_put_u8(&args, 0);
	put_request(out, type, stream_id, 0, m ? m : &plain, args.data, args.len);
	rfd_buf_free(&args);
}

/*
 * A message split into fragments (4.5) of at most @piece bytes of metadata
 * and data each; @ends receives where each fragment ends in @out (at most
 * @max_frames of them).  Returns the number of fragments.
 */
static size_t
put_fragments(struct rfd_buf *out, uint8_t type, uint32_t stream_id, const struct rfd_buf *md,
              const uint8_t *data, size_t data_len, size_t piece, size_t *ends, size_t max_frames)
{
	size_t total = md->len + data_len, done = 0, n = 0;

	while (done < total || n == 0) {
		size_t take = total - done < piece ? total - done : piece;
		size_t md_take =
		    done < md->len ? (md->len - done < take ? md->len - done : take) : 0;
		bool last = done + take == total;
		uint8_t frame_type = n == 0 ? type : RFD_FRAME_PAYLOAD;
		uint16_t flags = (last ? 0 : RFD_FLAG_FOLLOWS) | (n > 0 ? RFD_FLAG_NEXT : 0);
		struct rfd_buf slice = {(uint8_t *)md->data + done, md_take, md_take};
		size_t data_from = done + md_take - md->len;

		if (n == 0 && type == RFD_FRAME_PAYLOAD)
			flags |= RFD_FLAG_NEXT;
		put_payload_frame(out, frame_type, stream_id, flags, md_take ? &slice : NULL,
		                  data + (md_take == take ? 0 : data_from), take - md_take);
		done += take;
		if (n < max_frames)
			ends[n] = out->len;
		n++;
	}
	return n;
}

/* ---- SETUP ---- */

struct setup_spec {
	const char *what;
	uint32_t stream_id;
	uint16_t major, minor;
	const char *metadata_mime, *data_mime;
	bool no_metadata;
	const char *raw_metadata; /* the whole metadata, key included, when not NULL */
	size_t raw_len;
	uint32_t key;
	int32_t min_version, max_version; /* -1: absent */
	bool binary;                      /* encodeMetadataUsingBinary = true */
	bool unknown;                     /* unknown fields everywhere */
	uint16_t extra_flags;             /* RESUME_ENABLE (with the token below), LEASE */
	const char *resume_token;
	size_t token_len;
	const char *data; /* the SETUP's data */
	size_t data_len;
	bool own_timers; /* keepalive and lifetime below instead of 0x7FFFFFFF */
	uint32_t keepalive_ms, lifetime_ms;
};

static struct setup_spec
setup_spec(const char *what)
{
	return (struct setup_spec){
	    .what = what,
	    .major = 1,
	    .metadata_mime = METADATA_MIME,
	    .data_mime = DATA_MIME,
	    .key = PROTOCOL_KEY,
	    .min_version = 8,
	    .max_version = 10,
	};
}

static void
put_setup_md(struct rfd_buf *md, const struct setup_spec *s)
{
	struct rfd_cw w;

	rfd_buf_put_u32(md, s->key);
	rfd_cw_init(&w, md);
	rfd_cw_struct_begin(&w);
	if (s->min_version >= 0)
		rfd_cw_field_i32(&w, 3, s->min_version);
	if (s->max_version >= 0)
		rfd_cw_field_i32(&w, 4, s->max_version);
	if (s->unknown) {
		rfd_cw_field(&w, RFD_CT_STRUCT, 9);
		rfd_cw_struct_begin(&w);
		rfd_cw_field_string(&w, 1, "rfd-conform");
		rfd_cw_field_string(&w, 2, "harness-host");
		rfd_cw_field(&w, RFD_CT_MAP, 3);
		rfd_cw_map_begin(&w, RFD_CT_BINARY, RFD_CT_BINARY, 1);
		rfd_cw_string(&w, "a");
		rfd_cw_string(&w, "b");
		put_unknown_fields(&w, 50);
		rfd_cw_struct_end(&w);
	}
	if (s->binary)
		rfd_cw_field_bool(&w, 13, true);
	if (s->unknown)
		put_unknown_fields(&w, 100);
	rfd_cw_struct_end(&w);
	rfd_cw_finish(&w);
}

static void
put_setup(struct rfd_buf *out, const struct setup_spec *s)
{
	struct rfd_buf body, md;
	size_t md_len = 0;

	rfd_buf_init(&body);
	rfd_buf_init(&md);
	rfd_buf_put_u16(&body, s->major);
	rfd_buf_put_u16(&body, s->minor);
	rfd_buf_put_u32(&body, s->own_timers ? s->keepalive_ms : 0x7FFFFFFF);
	rfd_buf_put_u32(&body, s->own_timers ? s->lifetime_ms : 0x7FFFFFFF);
	if (s->extra_flags & RFD_FLAG_FOLLOWS) {
		rfd_buf_put_u16(&body, (uint16_t)s->token_len);
		rfd_buf_append(&body, s->resume_token, s->token_len);
	}
	rfd_buf_put_u8(&body, (uint8_t)strlen(s->metadata_mime));
	rfd_buf_append(&body, s->metadata_mime, strlen(s->metadata_mime));
	rfd_buf_put_u8(&body, (uint8_t)strlen(s->data_mime));
	rfd_buf_append(&body, s->data_mime, strlen(s->data_mime));
	if (s->raw_metadata)
		rfd_buf_append(&md, s->raw_metadata, s->raw_len);
	else if (!s->no_metadata)
		put_setup_md(&md, s);
	md_len = md.len;
	if (!s->no_metadata) {
		rfd_buf_put_u24(&body, (uint32_t)md_len);
		rfd_buf_append(&body, md.data, md_len);
	}
	if (s->data_len)
		rfd_buf_append(&body, s->data, s->data_len);
	put_frame(out, s->stream_id, RFD_FRAME_SETUP,
	          (uint16_t)((s->no_metadata ? 0 : RFD_FLAG_METADATA) | s->extra_flags), body.data,
	          body.len);
	rfd_buf_free(&md);
	rfd_buf_free(&body);
}

/* ---- Connections and calls ---- */

/* Write @bytes with @fds in one sendmsg (and its continuations). */
static enum conf_result
send_bytes(struct conf_ctx *ctx, struct wire *w, const struct rfd_buf *bytes, const int *fds,
           size_t n_fds, const char *what)
{
	int r = wire_send(w, bytes->data, bytes->len, fds, n_fds);

	if (r < 0)
		return conf_fail(ctx, "cannot send %s: %s", what, strerror(-r));
	return CONF_PASS;
}

/* Send @method(@text) with @fds, claimed by @claim (NULL: correctly); returns the stream or 0. */
static uint32_t
send_call(struct conf_ctx *ctx, struct wire *w, uint8_t type, const char *method, const char *text,
          const int *fds, size_t n_fds, const struct rfd_fd_metadata *claim)
{
	return case_send_call(ctx, w, type, method, text, fds, n_fds, claim);
}

/* A REQUEST_RESPONSE call and its answer, which must be the next one the server sends. */
static enum conf_result
call(struct conf_ctx *ctx, struct wire *w, const char *method, const char *text, const int *fds,
     size_t n_fds, const struct rfd_fd_metadata *claim, struct case_answer *answer)
{
	uint32_t stream =
	    send_call(ctx, w, RFD_FRAME_REQUEST_RESPONSE, method, text, fds, n_fds, claim);

	if (!stream)
		return CONF_FAIL;
	return case_read_answer(ctx, w, stream, true, conf_wait_ms(ctx), answer);
}

/* The answer is a success PAYLOAD whose result is the string @expected. */
static enum conf_result
expect_string(struct conf_ctx *ctx, const struct case_answer *a, const char *expected,
              const char *what)
{
	const struct wire_reply *reply = &a->reply;
	enum conf_result result = CONF_PASS;
	const char *why = "";
	char *text = NULL;

	if (reply->type != RFD_FRAME_PAYLOAD) {
		bool has_what = reply->error_decoded && reply->error.has_what;

		return conf_fail(ctx, "%s: expected a result, got ERROR 0x%x: %.*s", what,
		                 reply->error_code, has_what ? (int)reply->error.what.len : 0,
		                 has_what ? (const char *)reply->error.what.ptr : "");
	}
	if (reply->md.payload_kind != RFD_PAYLOAD_RESPONSE)
		return conf_fail(ctx, "%s: expected a result, got an exception", what);
	if (fdt_decode_string_result(reply->data.data, reply->data.len, &text, &why) < 0)
		return conf_fail(ctx, "%s: the result struct does not decode: %s", what, why);
	if (strlen(text) != strlen(expected) || strcmp(text, expected) != 0)
		result =
		    conf_fail(ctx, "%s: answered \"%.40s\"%s (%zu bytes), expected \"%.40s\"%s",
		              what, text, strlen(text) > 40 ? "..." : "", strlen(text), expected,
		              strlen(expected) > 40 ? "..." : "");
	free(text);
	return result;
}

/* The answer is an FdReport tagged @tag listing @n_fds FDs. */
static enum conf_result
expect_report(struct conf_ctx *ctx, struct case_answer *a, const char *tag, size_t n_fds,
              struct fdt_report *report, const char *what)
{
	enum conf_result result = case_expect_report(ctx, &a->reply, report);

	if (result != CONF_PASS)
		return reason_prefix(ctx, "%s", what);
	if (strcmp(report->tag, tag) != 0)
		return conf_fail(ctx, "%s: the report's tag is \"%.60s\", expected \"%s\"", what,
		                 report->tag, tag);
	if (report->n_fds != n_fds)
		return conf_fail(ctx, "%s: the report lists %zu FDs, expected %zu", what,
		                 report->n_fds, n_fds);
	return CONF_PASS;
}

/* inspect(@tag) with @fds claimed by @claim, expecting a report of @n_expected FDs. */
static enum conf_result
inspect(struct conf_ctx *ctx, struct wire *w, const char *tag, const int *fds, size_t n_fds,
        const struct rfd_fd_metadata *claim, size_t n_expected, struct fdt_report *report)
{
	struct case_answer a;
	enum conf_result result;

	result = call(ctx, w, FDT_METHOD_INSPECT, tag, fds, n_fds, claim, &a);
	if (result != CONF_PASS)
		return reason_prefix(ctx, "inspect(\"%s\")", tag);
	result = expect_report(ctx, &a, tag, n_expected, report, "inspect");
	case_answer_free(&a);
	return result;
}

/* echo("probe") without FDs: the connection still serves, and nothing else was answered first. */
static enum conf_result
probe(struct conf_ctx *ctx, struct wire *w)
{
	struct case_answer a;
	enum conf_result result = call(ctx, w, FDT_METHOD_ECHO, "probe", NULL, 0, NULL, &a);

	if (result != CONF_PASS)
		return reason_prefix(ctx, "the probe echo(\"probe\")");
	result = expect_string(ctx, &a, "probe", "the probe echo(\"probe\")");
	case_answer_free(&a);
	return result;
}

/* inspect with a /dev/null FD, claimed correctly: the connection is still fully usable. */
static enum conf_result
usable(struct conf_ctx *ctx, struct wire *w, const char *tag)
{
	struct fdt_report report = {0};
	enum conf_result result;
	int fd = dev_null();

	result = inspect(ctx, w, tag, &fd, 1, NULL, 1, &report);
	if (result == CONF_PASS && report.fds[0].type != S_IFCHR)
		result = conf_fail(
		    ctx, "inspect(\"%s\") was given another FD than its own /dev/null", tag);
	fdt_report_free(&report);
	close(fd);
	return result;
}

/* A connection made after a failure elsewhere, and @bystander, both still served (ERR-5). */
static enum conf_result
others_unaffected(struct conf_ctx *ctx, struct wire *bystander)
{
	enum conf_result result = usable(ctx, bystander, "bystander");
	struct wire w;

	if (result != CONF_PASS)
		return reason_prefix(ctx, "a connection open next to the failed one was affected");
	result = case_connect(ctx, &w);
	if (result != CONF_PASS)
		return reason_prefix(ctx, "no new connection is accepted after the failure");
	result = probe(ctx, &w);
	wire_close(&w);
	return result == CONF_PASS ? result : reason_prefix(ctx, "a new connection");
}

/* inspect claiming @seq without sending FDs: it takes the pipe @reader's write end still queued. */
static enum conf_result
take_queued(struct conf_ctx *ctx, struct wire *w, int64_t seq, int reader, const char *what)
{
	struct rfd_fd_metadata claim = fd_claim(seq, 1);
	struct fdt_report report = {0};
	enum conf_result result;

	result = inspect(ctx, w, "take-queued", NULL, 0, &claim, 1, &report);
	if (result != CONF_PASS)
		result = reason_prefix(ctx,
		                       "%s: a claim of the group at %lld, which must still be "
		                       "queued",
		                       what, (long long)seq);
	else if (report.fds[0].type != S_IFIFO || (ino_t)report.fds[0].ino != ino_of(reader))
		result = conf_fail(ctx, "%s: the claim at %lld got another FD than the queued pipe",
		                   what, (long long)seq);
	else if (!case_closed_now(reader))
		result = conf_fail(ctx, "inspect did not close the FD it took before answering");
	fdt_report_free(&report);
	return result;
}

/* Wait for the end of the connection, reading and dropping whatever comes before it. */
static bool
closed_by_server(struct conf_ctx *ctx, struct wire *w)
{
	return wire_wait_eof(w, conf_wait_ms(ctx)) == 1;
}

/* ---- Starting a server of our own ---- */

static pid_t
start_target(struct conf_ctx *ctx, const char *const extra[])
{
	char log_path[256];

	snprintf(log_path, sizeof(log_path), "%s/target.log", ctx->work_dir);
	return target_start(ctx->command, extra, log_path);
}

/* Start the server at ctx->socket_path (with --root when @with_root) and wait until it accepts. */
static enum conf_result
start_server(struct conf_ctx *ctx, bool with_root, pid_t *pid, long long *ready_ms)
{
	const char *extra[] = {"--socket", ctx->socket_path, with_root ? "--root" : NULL,
	                       ctx->root_dir, NULL};
	long long started = now_ms();
	int r;

	*pid = start_target(ctx, extra);
	if (*pid < 0)
		return conf_fail(ctx, "cannot start the server: %s", strerror((int)-*pid));
	r = target_wait_listening(ctx->socket_path, *pid, START_TIMEOUT_MS);
	if (r < 0) {
		target_stop(*pid, 1000);
		*pid = -1;
		return conf_fail(
		    ctx, "the server did not accept connections at %s within %d ms (%s)",
		    ctx->socket_path, START_TIMEOUT_MS, r == -ECHILD ? "it exited" : "timed out");
	}
	if (ready_ms)
		*ready_ms = now_ms() - started;
	return CONF_PASS;
}

/* Stop the launched target from reading, so that several writes queue up for one read. */
static bool
freeze(const struct conf_ctx *ctx)
{
	return ctx->target_pid > 0 && kill(ctx->target_pid, SIGSTOP) == 0;
}

static void
thaw(const struct conf_ctx *ctx, bool frozen)
{
	if (frozen)
		kill(ctx->target_pid, SIGCONT);
}

/* ---- Snapshots of a directory tree (CONTRACT-7, TRANSPORT-2) ---- */

struct snapshot {
	char **lines;
	size_t n, cap;
};

static void
snapshot_add(struct snapshot *s, const char *line)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 32;
		char **lines = realloc(s->lines, cap * sizeof(*lines));

		if (!lines)
			return;
		s->lines = lines;
		s->cap = cap;
	}
	s->lines[s->n] = strdup(line);
	if (s->lines[s->n])
		s->n++;
}

/* Every entry under @dir except @skip (names at the top level): type, mode, size, mtime, target. */
static void
snapshot_walk(struct snapshot *s, const char *dir, const char *rel, const char *const skip[])
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[512], name[512], line[1200], target[256] = "";
		bool skipped = false;
		struct stat st;
		ssize_t n;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		for (size_t i = 0; !rel[0] && skip[i]; i++)
			skipped |= strcmp(e->d_name, skip[i]) == 0;
		if (skipped)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		snprintf(name, sizeof(name), "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
		if (lstat(path, &st) < 0)
			continue;
		n = S_ISLNK(st.st_mode) ? readlink(path, target, sizeof(target) - 1) : 0;
		target[n > 0 ? n : 0] = '\0';
		snprintf(line, sizeof(line), "%s: mode 0%o, %lld bytes, modified %lld.%09ld%s%s",
		         name, (unsigned)st.st_mode, (long long)st.st_size,
		         (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, n > 0 ? " -> " : "",
		         target);
		snapshot_add(s, line);
		if (S_ISDIR(st.st_mode))
			snapshot_walk(s, path, name, skip);
	}
	closedir(d);
}

static int
compare_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
snapshot_take(struct snapshot *s, const char *dir, const char *const skip[])
{
	memset(s, 0, sizeof(*s));
	snapshot_walk(s, dir, "", skip);
	if (s->n)
		qsort(s->lines, s->n, sizeof(*s->lines), compare_lines);
}

static void
snapshot_free(struct snapshot *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->lines[i]);
	free(s->lines);
	memset(s, 0, sizeof(*s));
}

/* The first difference between two snapshots, in @out; false when they are equal. */
static bool
snapshot_differs(const struct snapshot *before, const struct snapshot *after, char *out,
                 size_t size)
{
	size_t i = 0, j = 0;

	while (i < before->n || j < after->n) {
		int c = i == before->n  ? 1
		        : j == after->n ? -1
		                        : strcmp(before->lines[i], after->lines[j]);

		if (c < 0) {
			snprintf(out, size, "before: \"%s\", now gone or changed",
			         before->lines[i]);
			return true;
		}
		if (c > 0) {
			snprintf(out, size, "now: \"%s\", which was not there before",
			         after->lines[j]);
			return true;
		}
		i++;
		j++;
	}
	return false;
}

/* ==== 3. Transport and socket options ==== */

static enum conf_result
transport_stream_only(struct conf_ctx *ctx)
{
	static const struct {
		int type;
		const char *name;
	} others[] = {{SOCK_SEQPACKET, "SOCK_SEQPACKET"}, {SOCK_DGRAM, "SOCK_DGRAM"}};
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	enum conf_result result;
	struct stat st;
	struct wire w;

	if (lstat(ctx->socket_path, &st) < 0)
		return conf_fail(ctx, "%s: %s", ctx->socket_path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return conf_fail(ctx, "%s is not a socket file (mode 0%o)", ctx->socket_path,
		                 (unsigned)st.st_mode);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", ctx->socket_path);
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		int sock = socket(AF_UNIX, others[i].type | SOCK_CLOEXEC, 0);
		int r;

		if (sock < 0)
			return conf_skip(ctx, "cannot make a %s socket: %s", others[i].name,
			                 strerror(errno));
		r = connect(sock, (struct sockaddr *)&addr, sizeof(addr));
		close(sock);
		if (r == 0)
			return conf_fail(ctx,
			                 "a %s socket connected to %s: the server listens on a "
			                 "socket that is not SOCK_STREAM",
			                 others[i].name, ctx->socket_path);
	}
	result = case_connect(ctx, &w);
	if (result != CONF_PASS)
		return result;
	result = probe(ctx, &w);
	wire_close(&w);
	return result;
}

static enum conf_result
transport_long_path(struct conf_ctx *ctx)
{
	static const char *const skip[] = {"target.log", NULL};
	const char *extra[] = {"--socket", NULL, "--root", ctx->root_dir, NULL};
	struct snapshot before, after;
	enum conf_result result = CONF_PASS;
	char path[128], difference[600];
	size_t dir_len = strlen(ctx->work_dir);
	int status;
	pid_t pid;

	if (dir_len + 10 > 120)
		return conf_skip(ctx, "the work directory's path is too long for this case");
	memset(path, 's', 120);
	memcpy(path, ctx->work_dir, dir_len);
	path[dir_len] = '/';
	memcpy(path + 115, ".sock", 6);
	extra[1] = path;
	snapshot_take(&before, ctx->work_dir, skip);
	pid = start_target(ctx, extra);
	if (pid < 0) {
		snapshot_free(&before);
		return conf_fail(ctx, "cannot start the server: %s", strerror((int)-pid));
	}
	status = target_wait(pid, START_TIMEOUT_MS);
	if (status == -1) {
		target_stop(pid, 1000);
		result = conf_fail(ctx,
		                   "given a socket path of 120 bytes, the server was still running "
		                   "after %d ms: it must refuse a path that does not fit sun_path",
		                   START_TIMEOUT_MS);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		result = conf_fail(ctx, "given a socket path of 120 bytes, the server exited with "
		                        "status 0: a refused path is an error");
	} else if (WIFSIGNALED(status)) {
		result = conf_fail(ctx,
		                   "given a socket path of 120 bytes, the server was killed by "
		                   "signal %d instead of exiting with an error",
		                   WTERMSIG(status));
	}
	snapshot_take(&after, ctx->work_dir, skip);
	if (result == CONF_PASS &&
	    snapshot_differs(&before, &after, difference, sizeof(difference)))
		result = conf_fail(
		    ctx, "the server refused the 120-byte path but left a file behind: %s",
		    difference);
	snapshot_free(&before);
	snapshot_free(&after);
	unlink(path);
	path[107] = '\0';
	unlink(path);
	return result;
}

/*
 * A big request, then the harness closes at once: the server's answer is
 * written to a socket whose peer is gone.  It must live on.
 */
static enum conf_result
transport_peer_gone(struct conf_ctx *ctx)
{
	enum { TAG = MIB };
	enum conf_result result;
	char *tag = malloc(TAG + 1);
	struct wire w;
	int fd = dev_null();

	if (!tag || fd < 0) {
		free(tag);
		if (fd >= 0)
			close(fd);
		return conf_skip(ctx, "out of memory or no /dev/null");
	}
	memset(tag, 'p', TAG);
	tag[TAG] = '\0';
	result = case_connect(ctx, &w);
	if (result == CONF_PASS) {
		if (!send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_ECHO, tag, &fd, 1,
		               NULL))
			result = CONF_FAIL;
		wire_close(&w);
	}
	close(fd);
	free(tag);
	if (result != CONF_PASS)
		return result;
	pause_ms(200);
	result = case_connect(ctx, &w);
	if (result != CONF_PASS)
		return reason_prefix(ctx,
		                     "after a client left before its echo was answered, the "
		                     "server no longer accepts connections (killed by SIGPIPE?)");
	result = probe(ctx, &w);
	wire_close(&w);
	return result;
}

/* ==== 4.4 Frames that fail the connection ==== */

struct bad_frame {
	const char *what;
	const char *bytes; /* the frame(s), when build is NULL */
	size_t len;
	void (*build)(struct rfd_buf *out);
	bool may_be_setup_error; /* answered as a second SETUP: not checked under ERR-3 */
};

#define RAW(what, bytes)                                                                           \
	{                                                                                          \
		what, bytes, sizeof(bytes) - 1, NULL, false                                        \
	}
#define BUILT(what, fn)                                                                            \
	{                                                                                          \
		what, NULL, 0, fn, false                                                           \
	}

static void
bad_reserved_request(struct rfd_buf *out)
{
	struct request_md md = call_md(FDT_METHOD_ECHO, KIND_RR, NULL);
	struct rfd_buf args;

	rfd_buf_init(&args);
	put_text_args(&args, "reserved", 8);
	put_request(out, RFD_FRAME_REQUEST_RESPONSE, 1, 0x001, &md, args.data, args.len);
	rfd_buf_free(&args);
}

static void
bad_setup_stream_1(struct rfd_buf *out)
{
	struct setup_spec s = setup_spec("SETUP on stream 1");

	s.stream_id = 1;
	put_setup(out, &s);
}

static void
bad_request_stream_0(struct rfd_buf *out)
{
	put_call(out, RFD_FRAME_REQUEST_RESPONSE, 0, FDT_METHOD_ECHO, "zero", NULL);
}

static void
bad_oneway_stream_0(struct rfd_buf *out)
{
	put_call(out, RFD_FRAME_REQUEST_FNF, 0, FDT_METHOD_RECORD, "zero", NULL);
}

static void
bad_stream_request_stream_0(struct rfd_buf *out)
{
	struct request_md md =
	    call_md(FDT_METHOD_ECHO, RFD_RPC_SINGLE_REQUEST_STREAMING_RESPONSE, NULL);
	struct rfd_buf args;

	rfd_buf_init(&args);
	put_text_args(&args, "zero", 4);
	put_request(out, RFD_FRAME_REQUEST_STREAM, 0, 0, &md, args.data, args.len);
	rfd_buf_free(&args);
}

/* The first fragment of echo("interrupted") on stream 1: metadata and half the arguments. */
static void
put_first_fragment(struct rfd_buf *out)
{
	struct request_md md = call_md(FDT_METHOD_ECHO, KIND_RR, NULL);
	struct rfd_buf args;

	rfd_buf_init(&args);
	put_text_args(&args, "interrupted", 11);
	put_request(out, RFD_FRAME_REQUEST_RESPONSE, 1, RFD_FLAG_FOLLOWS, &md, args.data, 6);
	rfd_buf_free(&args);
}

static void
bad_interrupted_by_request(struct rfd_buf *out)
{
	put_first_fragment(out);
	put_call(out, RFD_FRAME_REQUEST_RESPONSE, 1, FDT_METHOD_ECHO, "again", NULL);
}

static void
bad_interrupted_by_oneway(struct rfd_buf *out)
{
	put_first_fragment(out);
	put_call(out, RFD_FRAME_REQUEST_FNF, 1, FDT_METHOD_RECORD, "again", NULL);
}

/* The first fragment on stream 1, then @frame (a frame that is ignored elsewhere) on stream 1. */
static void
put_interrupted_by(struct rfd_buf *out, const char *frame, size_t len)
{
	put_first_fragment(out);
	rfd_buf_append(out, frame, len);
}

static void
bad_interrupted_by_request_n(struct rfd_buf *out)
{
	static const char frame[] = "\x00\x00\x0a\x00\x00\x00\x01\x20\x00\x00\x00\x00\x05";

	put_interrupted_by(out, frame, sizeof(frame) - 1);
}

static void
bad_interrupted_by_cancel(struct rfd_buf *out)
{
	static const char frame[] = "\x00\x00\x06\x00\x00\x00\x01\x24\x00";

	put_interrupted_by(out, frame, sizeof(frame) - 1);
}

static void
bad_interrupted_by_error(struct rfd_buf *out)
{
	static const char frame[] =
	    "\x00\x00\x0d\x00\x00\x00\x01\x2c\x00\x00\x00\x02\x03\x62\x61\x64";

	put_interrupted_by(out, frame, sizeof(frame) - 1);
}

static void
bad_interrupted_by_ext(struct rfd_buf *out)
{
	static const char frame[] = "\x00\x00\x0b\x00\x00\x00\x01\xfe\x00\x00\x00\x00\x2a\x78";

	put_interrupted_by(out, frame, sizeof(frame) - 1);
}

static void
bad_even_request(struct rfd_buf *out)
{
	put_call(out, RFD_FRAME_REQUEST_RESPONSE, 2, FDT_METHOD_ECHO, "even", NULL);
}

static void
bad_even_oneway(struct rfd_buf *out)
{
	put_call(out, RFD_FRAME_REQUEST_FNF, 4, FDT_METHOD_RECORD, "even", NULL);
}

static const struct bad_frame bad_lengths[] = {
    RAW("a frame whose length field is 5", "\x00\x00\x05\x00\x00\x00\x00\x0c"),
    RAW("a REQUEST_N of length 6, without its N", "\x00\x00\x06\x00\x00\x00\x01\x20\x00"),
    RAW("a KEEPALIVE of length 10, 4 bytes short of its position",
        "\x00\x00\x0a\x00\x00\x00\x00\x0c\x00\x00\x00\x00\x00"),
    RAW("an ERROR of length 8, 2 bytes short of its code",
        "\x00\x00\x08\x00\x00\x00\x01\x2c\x00\x00\x00"),
    RAW("a REQUEST_STREAM of length 8, 2 bytes short of its initial N",
        "\x00\x00\x08\x00\x00\x00\x01\x18\x00\x00\x00"),
    RAW("an EXT with IGNORE of length 8, 2 bytes short of its extended type",
        "\x00\x00\x08\x00\x00\x00\x01\xfe\x00\x00\x00"),
    RAW("a REQUEST_RESPONSE whose metadata length 256 exceeds the 4 bytes that follow",
        "\x00\x00\x0d\x00\x00\x00\x01\x11\x00\x00\x01\x00\x15\x04\x00\x00"),
    RAW("a REQUEST_RESPONSE with METADATA and 1 byte of its metadata length",
        "\x00\x00\x07\x00\x00\x00\x01\x11\x00\x00"),
};

static const struct bad_frame bad_flags[] = {
    BUILT("an echo REQUEST_RESPONSE with reserved flag 0x001", bad_reserved_request),
    RAW("a KEEPALIVE with reserved flag 0x010",
        "\x00\x00\x0e\x00\x00\x00\x00\x0c\x10\x00\x00\x00\x00\x00\x00\x00\x00"),
    RAW("a CANCEL on stream 1 with reserved flag 0x002", "\x00\x00\x06\x00\x00\x00\x01\x24\x02"),
};

static const struct bad_frame bad_types[] = {
    RAW("a frame of type 0x00", "\x00\x00\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
    RAW("a LEASE frame (type 0x02)",
        "\x00\x00\x0e\x00\x00\x00\x00\x08\x00\x00\x00\x03\xe8\x00\x00\x00\x01"),
    RAW("a RESUME frame (type 0x0D)", "\x00\x00\x0a\x00\x00\x00\x00\x34\x00\x00\x01\x00\x00"),
    RAW("a RESUME_OK frame (type 0x0E)",
        "\x00\x00\x0e\x00\x00\x00\x00\x38\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
    RAW("a frame of type 0x10", "\x00\x00\x0a\x00\x00\x00\x01\x40\x00\x00\x00\x00\x00"),
    RAW("a frame of type 0x3E", "\x00\x00\x0a\x00\x00\x00\x01\xf8\x00\x00\x00\x00\x00"),
};

static const struct bad_frame bad_metadata_flags[] = {
    RAW("a KEEPALIVE with METADATA",
        "\x00\x00\x0e\x00\x00\x00\x00\x0d\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
    RAW("a REQUEST_N with METADATA", "\x00\x00\x0a\x00\x00\x00\x01\x21\x00\x00\x00\x00\x05"),
    RAW("a CANCEL with METADATA", "\x00\x00\x06\x00\x00\x00\x01\x25\x00"),
    RAW("an ERROR on stream 1 with METADATA",
        "\x00\x00\x0a\x00\x00\x00\x01\x2d\x00\x00\x00\x02\x03"),
};

static const struct bad_frame bad_streams[] = {
    RAW("a KEEPALIVE on stream 1",
        "\x00\x00\x0e\x00\x00\x00\x01\x0c\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
    RAW("a METADATA_PUSH on stream 1", "\x00\x00\x07\x00\x00\x00\x01\x31\x00\x00"),
    {"a SETUP on stream 1", NULL, 0, bad_setup_stream_1, true},
    BUILT("an echo REQUEST_RESPONSE on stream 0", bad_request_stream_0),
    BUILT("a record REQUEST_FNF on stream 0", bad_oneway_stream_0),
    BUILT("a REQUEST_STREAM on stream 0", bad_stream_request_stream_0),
    RAW("a REQUEST_N on stream 0", "\x00\x00\x0a\x00\x00\x00\x00\x20\x00\x00\x00\x00\x05"),
    RAW("a CANCEL on stream 0", "\x00\x00\x06\x00\x00\x00\x00\x24\x00"),
    RAW("a PAYLOAD with NEXT and COMPLETE on stream 0", "\x00\x00\x07\x00\x00\x00\x00\x28\x60\x78"),
};

static void
bad_continuation_without_flags(struct rfd_buf *out)
{
	static const char payload[] = "\x00\x00\x07\x00\x00\x00\x01\x28\x00\x72";

	put_first_fragment(out);
	rfd_buf_append(out, payload, sizeof(payload) - 1);
}

static const struct bad_frame bad_payloads[] = {
    RAW("a PAYLOAD on stream 1 with none of NEXT, COMPLETE and FOLLOWS",
        "\x00\x00\x07\x00\x00\x00\x01\x28\x00\x78"),
    RAW("a PAYLOAD on stream 3 with METADATA only",
        "\x00\x00\x0b\x00\x00\x00\x03\x29\x00\x00\x00\x01\x00\x78"),
    BUILT("the first fragment of echo on stream 1, then a PAYLOAD on stream 1 with none of "
          "NEXT, COMPLETE and FOLLOWS",
          bad_continuation_without_flags),
};

static const struct bad_frame bad_interruptions[] = {
    BUILT("the first fragment of echo on stream 1, then a REQUEST_RESPONSE on stream 1",
          bad_interrupted_by_request),
    BUILT("the first fragment of echo on stream 1, then a REQUEST_FNF on stream 1",
          bad_interrupted_by_oneway),
    BUILT("the first fragment of echo on stream 1, then a REQUEST_N on stream 1",
          bad_interrupted_by_request_n),
    BUILT("the first fragment of echo on stream 1, then a CANCEL on stream 1",
          bad_interrupted_by_cancel),
    BUILT("the first fragment of echo on stream 1, then an ERROR on stream 1",
          bad_interrupted_by_error),
    BUILT("the first fragment of echo on stream 1, then an EXT with IGNORE on stream 1",
          bad_interrupted_by_ext),
};

static const struct bad_frame bad_even_streams[] = {
    BUILT("an echo REQUEST_RESPONSE on stream 2", bad_even_request),
    BUILT("a record REQUEST_FNF on stream 4", bad_even_oneway),
};

static const struct bad_frame bad_exts[] = {
    RAW("an EXT on stream 0 without IGNORE",
        "\x00\x00\x0a\x00\x00\x00\x00\xfc\x00\x00\x00\x00\x01"),
    RAW("an EXT on stream 1 without IGNORE",
        "\x00\x00\x0b\x00\x00\x00\x01\xfc\x00\x00\x00\x00\x02\x78"),
};

static const struct bad_frame bad_errors[] = {
    RAW("an ERROR CONNECTION_ERROR on stream 0",
        "\x00\x00\x0d\x00\x00\x00\x00\x2c\x00\x00\x00\x01\x01\x62\x79\x65"),
    RAW("an ERROR CONNECTION_CLOSE on stream 0 without text",
        "\x00\x00\x0a\x00\x00\x00\x00\x2c\x00\x00\x00\x01\x02"),
};

/* The ERROR frame a failing server should send before it closes (ERR-3). */
static enum conf_result
expect_connection_error(struct conf_ctx *ctx, struct wire *w, const char *what)
{
	struct rfd_frame frame;
	int r = wire_read_frame(w, &frame, conf_wait_ms(ctx));

	if (r == 0)
		return conf_fail(ctx,
		                 "after %s the server closed the connection without sending "
		                 "ERROR CONNECTION_ERROR first",
		                 what);
	if (r < 0)
		return conf_fail(ctx, "after %s no ERROR frame arrived (%s)", what, strerror(-r));
	if (frame.type != RFD_FRAME_ERROR || frame.stream_id != 0)
		return conf_fail(ctx,
		                 "after %s the server sent %s on stream %u, not ERROR on stream 0",
		                 what, rfd_frame_type_name(frame.type), frame.stream_id);
	if (frame.u32 != RFD_ERROR_CONNECTION_ERROR)
		return conf_fail(ctx,
		                 "after %s the ERROR's code is 0x%x, not CONNECTION_ERROR (0x101)",
		                 what, frame.u32);
	if (!case_utf8_text(frame.data.ptr, frame.data.len))
		return conf_fail(
		    ctx, "after %s the ERROR's data is not a UTF-8 text naming the cause", what);
	if (w->recv_seq != 0)
		return conf_fail(ctx, "after %s FDs arrived with the ERROR frame", what);
	return closed_by_server(ctx, w) ? CONF_PASS
	                                : conf_fail(ctx,
	                                            "after %s and its ERROR frame the server did "
	                                            "not close the connection",
	                                            what);
}

/*
 * On a fresh connection: a KEEPALIVE with a pipe write end (left queued),
 * then @bad with another.  The connection must end and both FDs be closed.
 */
static enum conf_result
bad_frame_fails(struct conf_ctx *ctx, const struct bad_frame *bad, bool want_error_frame)
{
	struct rfd_frame keepalive = {.type = RFD_FRAME_KEEPALIVE};
	int readers[2], writers[2], open_reader;
	enum conf_result result;
	struct rfd_buf bytes;
	struct wire w;

	if (case_pipes(readers, writers, 2) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = case_connect(ctx, &w);
	if (result != CONF_PASS) {
		case_close_all(readers, 2);
		case_close_all(writers, 2);
		return result;
	}
	rfd_buf_init(&bytes);
	if (bad->build)
		bad->build(&bytes);
	else
		rfd_buf_append(&bytes, bad->bytes, bad->len);
	if (wire_send_frame(&w, &keepalive, &writers[0], 1) < 0 ||
	    wire_send(&w, bytes.data, bytes.len, &writers[1], 1) < 0)
		conf_note(ctx, "the server closed the connection while %s was being sent",
		          bad->what);
	rfd_buf_free(&bytes);
	case_close_all(writers, 2);
	if (want_error_frame)
		result = expect_connection_error(ctx, &w, bad->what);
	else if (!closed_by_server(ctx, &w))
		result = conf_fail(
		    ctx, "after %s the connection stayed open: the server must fail it", bad->what);
	wire_close(&w);
	if (result == CONF_PASS && !want_error_frame) {
		open_reader = case_all_eof(ctx, readers, 2);
		if (open_reader >= 0)
			result =
			    conf_fail(ctx,
			              "after %s failed the connection, the FD %s is still "
			              "open",
			              bad->what,
			              open_reader == 0 ? "queued before it (sent with a KEEPALIVE)"
			                               : "sent with it");
	}
	case_close_all(readers, 2);
	return result;
}

static enum conf_result
bad_frames_fail_connection(struct conf_ctx *ctx, const struct bad_frame *list, size_t n)
{
	enum conf_result result;
	struct wire bystander;

	result = case_connect(ctx, &bystander);
	if (result != CONF_PASS)
		return result;
	for (size_t i = 0; result == CONF_PASS && i < n; i++)
		result = bad_frame_fails(ctx, &list[i], false);
	if (result == CONF_PASS)
		result = others_unaffected(ctx, &bystander);
	wire_close(&bystander);
	return result;
}

#define BAD_FRAMES_CASE(name, list)                                                                \
	static enum conf_result name(struct conf_ctx *ctx)                                         \
	{                                                                                          \
		return bad_frames_fail_connection(ctx, list, sizeof(list) / sizeof(list[0]));      \
	}

BAD_FRAMES_CASE(frame_bad_length, bad_lengths)
BAD_FRAMES_CASE(frame_reserved_flags, bad_flags)
BAD_FRAMES_CASE(frame_unknown_type, bad_types)
BAD_FRAMES_CASE(frame_metadata_on_control, bad_metadata_flags)
BAD_FRAMES_CASE(frame_wrong_stream, bad_streams)
BAD_FRAMES_CASE(frame_payload_without_next, bad_payloads)
BAD_FRAMES_CASE(frame_interrupted_fragments, bad_interruptions)
BAD_FRAMES_CASE(frame_even_stream, bad_even_streams)
BAD_FRAMES_CASE(frame_ext_without_ignore, bad_exts)
BAD_FRAMES_CASE(frame_error_on_stream_0, bad_errors)

/* ERR-3: every failure above is announced with ERROR CONNECTION_ERROR before the close. */
static enum conf_result
err_connection_error_frame(struct conf_ctx *ctx)
{
	static const struct {
		const struct bad_frame *list;
		size_t n;
	} lists[] = {
	    {bad_lengths, sizeof(bad_lengths) / sizeof(bad_lengths[0])},
	    {bad_flags, sizeof(bad_flags) / sizeof(bad_flags[0])},
	    {bad_types, sizeof(bad_types) / sizeof(bad_types[0])},
	    {bad_metadata_flags, sizeof(bad_metadata_flags) / sizeof(bad_metadata_flags[0])},
	    {bad_streams, sizeof(bad_streams) / sizeof(bad_streams[0])},
	    {bad_payloads, sizeof(bad_payloads) / sizeof(bad_payloads[0])},
	    {bad_interruptions, sizeof(bad_interruptions) / sizeof(bad_interruptions[0])},
	    {bad_even_streams, sizeof(bad_even_streams) / sizeof(bad_even_streams[0])},
	    {bad_exts, sizeof(bad_exts) / sizeof(bad_exts[0])},
	    {bad_errors, sizeof(bad_errors) / sizeof(bad_errors[0])},
	};
	enum conf_result result = CONF_PASS;

	for (size_t l = 0; result == CONF_PASS && l < sizeof(lists) / sizeof(lists[0]); l++)
		for (size_t i = 0; result == CONF_PASS && i < lists[l].n; i++)
			if (!lists[l].list[i].may_be_setup_error)
				result = bad_frame_fails(ctx, &lists[l].list[i], true);
	return result;
}

/* The reserved flag bits of the frame last read (FRAME-2), from its raw bytes. */
static unsigned
reserved_bits(const struct wire *w)
{
	return w->frame_bytes.len >= 9 ? rfd_get_u16(w->frame_bytes.data + 7) & 0x1F : 0;
}

/* The flag bits of the frame last read that its type does not define (FRAME-22). */
static unsigned
undefined_bits(const struct wire *w)
{
	uint16_t type_and_flags;

	if (w->frame_bytes.len < 9)
		return 0;
	type_and_flags = rfd_get_u16(w->frame_bytes.data + 7);
	return wire_undefined_flags((uint8_t)(type_and_flags >> 10), type_and_flags & 0x3FF);
}

/* Read @n frames, or until EOF when @n is 0, checking each one's reserved and undefined flag bits.
 */
static enum conf_result
frames_have_no_reserved_bits(struct conf_ctx *ctx, struct wire *w, size_t n, const char *after)
{
	for (size_t i = 0; n == 0 || i < n; i++) {
		struct rfd_frame frame;
		int r = wire_read_frame(w, &frame, conf_wait_ms(ctx));

		if (r == 0 && n == 0)
			return CONF_PASS;
		if (w->frame_bytes.len >= 9 && reserved_bits(w))
			return conf_fail(ctx,
			                 "after %s the server sent a frame (type 0x%02x, stream "
			                 "%u) with reserved flag bits 0x%02x set",
			                 after, rfd_get_u16(w->frame_bytes.data + 7) >> 10,
			                 rfd_get_u32(w->frame_bytes.data + 3), reserved_bits(w));
		if (w->frame_bytes.len >= 9 && undefined_bits(w))
			return conf_fail(
			    ctx,
			    "FRAME-22: after %s the server sent a frame (type 0x%02x, "
			    "stream %u) with flag bits 0x%03x its type does not define",
			    after, rfd_get_u16(w->frame_bytes.data + 7) >> 10,
			    rfd_get_u32(w->frame_bytes.data + 3), undefined_bits(w));
		if (r <= 0)
			return conf_fail(ctx, "after %s: %s", after,
			                 r == 0          ? "the connection closed early"
			                 : r == -EBADMSG ? "a malformed frame arrived"
			                                 : strerror(-r));
		w->frame_bytes.len = 0;
	}
	return CONF_PASS;
}

static enum conf_result
frame_server_flags(struct conf_ctx *ctx)
{
	struct setup_spec setup = setup_spec("SETUP");
	struct rfd_frame keepalive = {.type = RFD_FRAME_KEEPALIVE, .flags = RESPOND};
	struct rfd_buf bytes;
	enum conf_result result;
	struct wire w;
	int fds[2] = {dev_null(), dev_null()};

	if (wire_connect(&w, ctx, ctx->socket_path) < 0) {
		case_close_all(fds, 2);
		return conf_fail(ctx, "cannot connect to %s", ctx->socket_path);
	}
	rfd_buf_init(&bytes);
	put_setup(&bytes, &setup);
	result = send_bytes(ctx, &w, &bytes, NULL, 0, "SETUP");
	if (result == CONF_PASS)
		result = frames_have_no_reserved_bits(ctx, &w, 1, "SETUP");
	if (result == CONF_PASS && wire_send_frame(&w, &keepalive, NULL, 0) < 0)
		result = conf_fail(ctx, "cannot send a KEEPALIVE");
	if (result == CONF_PASS && (!send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_ECHO,
	                                       "flags", fds, 2, NULL) ||
	                            !send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE, "noSuchMethod",
	                                       "flags", NULL, 0, NULL) ||
	                            !send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_OPEN,
	                                       "missing.txt", NULL, 0, NULL) ||
	                            !send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE,
	                                       FDT_METHOD_INSPECT, "flags", NULL, 0, NULL)))
		result = CONF_FAIL;
	if (result == CONF_PASS)
		result = frames_have_no_reserved_bits(ctx, &w, 5, "a KEEPALIVE and four calls");
	rfd_buf_free(&bytes);
	if (result == CONF_PASS) {
		static const char ext[] = "\x00\x00\x0a\x00\x00\x00\x00\xfc\x00\x00\x00\x00\x01";

		if (wire_send(&w, ext, sizeof(ext) - 1, NULL, 0) < 0)
			result = conf_fail(ctx, "cannot send an EXT frame");
		else
			result = frames_have_no_reserved_bits(ctx, &w, 0, "an EXT without IGNORE");
	}
	wire_close(&w);
	case_close_all(fds, 2);
	return result;
}

/* ==== 4.5 Fragmentation ==== */

/*
 * echo("fragmented") in fragments of 7 bytes of metadata and data, each
 * written on its own; a pipe write end goes with the first or the last.
 */
static enum conf_result
fragmented_request(struct conf_ctx *ctx, bool fd_with_last)
{
	enum { MAX_FRAGMENTS = 32 };
	struct rfd_fd_metadata claim = fd_claim(0, 1);
	struct request_md md = call_md(FDT_METHOD_ECHO, KIND_RR, &claim);
	size_t ends[MAX_FRAGMENTS], n, start = 0;
	struct rfd_buf meta, args, bytes;
	enum conf_result result;
	struct case_answer a;
	struct wire w;
	int reader, writer;

	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	result = case_connect(ctx, &w);
	if (result != CONF_PASS) {
		close(reader);
		close(writer);
		return result;
	}
	rfd_buf_init(&meta);
	rfd_buf_init(&args);
	rfd_buf_init(&bytes);
	put_request_md(&meta, &md);
	put_text_args(&args, "fragmented", 10);
	n = put_fragments(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, &meta, args.data, args.len, 7,
	                  ends, MAX_FRAGMENTS);
	for (size_t i = 0; result == CONF_PASS && i < n && i < MAX_FRAGMENTS; i++) {
		bool fds_here = fd_with_last ? i + 1 == n : i == 0;

		if (wire_send(&w, bytes.data + start, ends[i] - start, fds_here ? &writer : NULL,
		              fds_here ? 1 : 0) < 0)
			result = conf_fail(ctx, "cannot write fragment %zu", i + 1);
		start = ends[i];
		pause_ms(GAP_MS);
	}
	close(writer);
	w.next_stream = 3;
	if (result == CONF_PASS)
		result = case_read_answer(ctx, &w, 1, true, conf_wait_ms(ctx), &a);
	if (result == CONF_PASS) {
		result = expect_string(ctx, &a, "fragmented", "the fragmented echo");
		if (result == CONF_PASS && (a.reply.fds.n != 1 || !a.reply.fds_matched))
			result = conf_fail(ctx, "the fragmented echo's FD did not come back");
		else if (result == CONF_PASS && ino_of(a.reply.fds.fds[0]) != ino_of(reader))
			result = conf_fail(ctx,
			                   "the fragmented echo came back with another FD than "
			                   "the pipe sent with its %s fragment",
			                   fd_with_last ? "last" : "first");
		case_answer_free(&a);
	}
	if (result != CONF_PASS)
		reason_prefix(ctx, "echo in %zu fragments of 7 bytes, its FD written with the %s",
		              n, fd_with_last ? "last" : "first");
	rfd_buf_free(&meta);
	rfd_buf_free(&args);
	rfd_buf_free(&bytes);
	wire_close(&w);
	close(reader);
	return result;
}

static enum conf_result
fragments_fd_last(struct conf_ctx *ctx)
{
	return fragmented_request(ctx, true);
}

static enum conf_result
fragments_fd_first(struct conf_ctx *ctx)
{
	return fragmented_request(ctx, false);
}

/* ==== 4.6 Stream ids ==== */

static enum conf_result
frame_answer_streams(struct conf_ctx *ctx)
{
	static const uint32_t streams[] = {0x7FFFFFFF, 5, 101, 3};
	bool answered[4] = {false};
	enum conf_result result;
	struct wire w;
	int fd = dev_null();

	result = case_connect(ctx, &w);
	for (size_t i = 0; result == CONF_PASS && i < 4; i++) {
		static const char *const methods[] = {FDT_METHOD_INSPECT, FDT_METHOD_ECHO,
		                                      "noSuchMethod", FDT_METHOD_OPEN};

		w.next_stream = streams[i];
		if (!send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE, methods[i],
		               i == 3 ? "missing.txt" : "streams", i == 1 ? &fd : NULL, i == 1,
		               NULL))
			result = CONF_FAIL;
	}
	for (size_t k = 0; result == CONF_PASS && k < 4; k++) {
		struct rfd_frame frame;
		size_t i = 4;
		int r = wire_read_frame(&w, &frame, conf_wait_ms(ctx));

		if (r <= 0) {
			result = conf_fail(ctx, "only %zu of 4 calls were answered", k);
			break;
		}
		for (size_t j = 0; j < 4; j++)
			if (frame.stream_id == streams[j])
				i = j;
		if (i == 4 || answered[i] ||
		    (frame.type != RFD_FRAME_PAYLOAD && frame.type != RFD_FRAME_ERROR))
			result = conf_fail(ctx,
			                   "%s arrived on stream %u: requests were sent on "
			                   "streams 2147483647, 5, 101 and 3, each answered once",
			                   rfd_frame_type_name(frame.type), frame.stream_id);
		else
			answered[i] = true;
	}
	wire_close(&w);
	close(fd);
	return result;
}

/* ==== 4.8 Control frames ==== */

static enum conf_result
keepalive_echoed(struct conf_ctx *ctx, struct wire *w, const char *data)
{
	struct rfd_frame keepalive = {.type = RFD_FRAME_KEEPALIVE,
	                              .flags = RESPOND,
	                              .data = {(const uint8_t *)data, strlen(data)}};
	struct rfd_frame frame;
	int r;

	if (wire_send_frame(w, &keepalive, NULL, 0) < 0)
		return conf_fail(ctx, "cannot send a KEEPALIVE");
	r = wire_read_frame(w, &frame, conf_wait_ms(ctx));
	if (r <= 0)
		return conf_fail(
		    ctx, "a KEEPALIVE with RESPOND and %zu bytes of data got no answer (%s)",
		    strlen(data), r == 0 ? "EOF" : strerror(-r));
	if (frame.type != RFD_FRAME_KEEPALIVE || frame.stream_id != 0)
		return conf_fail(ctx, "a KEEPALIVE with RESPOND was answered with %s on stream %u",
		                 rfd_frame_type_name(frame.type), frame.stream_id);
	if (frame.flags & RESPOND)
		return conf_fail(ctx, "the KEEPALIVE answer has RESPOND set");
	if (frame.last_position != 0)
		return conf_fail(ctx,
		                 "FRAME-27: the KEEPALIVE answer's last received position is "
		                 "%llu, not 0",
		                 (unsigned long long)frame.last_position);
	if (frame.data.len != strlen(data) || memcmp(frame.data.ptr, data, frame.data.len) != 0)
		return conf_fail(ctx,
		                 "the KEEPALIVE answer carries %zu bytes of data, not the %zu "
		                 "received",
		                 frame.data.len, strlen(data));
	return CONF_PASS;
}

static enum conf_result
frame_keepalive_respond(struct conf_ctx *ctx)
{
	enum conf_result result;
	struct wire w;

	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = keepalive_echoed(ctx, &w, "rfd-conform keepalive data \x01\xff");
	if (result == CONF_PASS)
		result = keepalive_echoed(ctx, &w, "");
	if (result == CONF_PASS)
		result = probe(ctx, &w);
	wire_close(&w);
	return result;
}

struct ignored_frame {
	const char *what;
	const char *bytes;
	size_t len;
};

#define IGNORED(what, bytes)                                                                       \
	{                                                                                          \
		what, bytes, sizeof(bytes) - 1                                                     \
	}

/*
 * Each frame with a pipe write end: nothing answers them, the connection
 * serves on, their FDs stay queued until a claim past them closes them.
 */
static enum conf_result
frames_ignored(struct conf_ctx *ctx, const struct ignored_frame *frames, size_t n)
{
	int readers[4], writers[4], open_reader;
	struct fdt_report report = {0};
	enum conf_result result;
	struct wire w;
	int fd;

	if (n > 4 || case_pipes(readers, writers, n) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = case_connect(ctx, &w);
	for (size_t i = 0; result == CONF_PASS && i < n; i++)
		if (wire_send(&w, frames[i].bytes, frames[i].len, &writers[i], 1) < 0)
			result = conf_fail(ctx, "cannot send %s", frames[i].what);
	case_close_all(writers, n);
	if (result == CONF_PASS) {
		result = probe(ctx, &w);
		if (result != CONF_PASS)
			reason_prefix(ctx, "after %s", frames[0].what);
	}
	for (size_t i = 0; result == CONF_PASS && i < n; i++)
		if (case_closed_now(readers[i]))
			result = conf_fail(ctx,
			                   "the FD sent with %s was closed while no claim had "
			                   "passed it: FDs that come with frames that carry "
			                   "none stay queued",
			                   frames[i].what);
	fd = dev_null();
	if (result == CONF_PASS)
		result = inspect(ctx, &w, "after", &fd, 1, NULL, 1, &report);
	if (result == CONF_PASS && report.fds[0].type != S_IFCHR)
		result =
		    conf_fail(ctx, "inspect claiming fdSeqNum %zu was given an FD sent with %s", n,
		              frames[0].what);
	if (result == CONF_PASS) {
		open_reader = -1;
		for (size_t i = 0; i < n && open_reader < 0; i++)
			if (!case_closed_now(readers[i]))
				open_reader = (int)i;
		if (open_reader >= 0)
			result = conf_fail(ctx,
			                   "the FD sent with %s, older than a claim at fdSeqNum "
			                   "%zu, was not closed before that claim was answered",
			                   frames[open_reader].what, n);
	}
	fdt_report_free(&report);
	close(fd);
	wire_close(&w);
	case_close_all(readers, n);
	return result;
}

static enum conf_result
frame_ext_ignored(struct conf_ctx *ctx)
{
	static const struct ignored_frame frames[] = {
	    IGNORED("an EXT with IGNORE on stream 0",
	            "\x00\x00\x0b\x00\x00\x00\x00\xfe\x00\x00\x00\x00\x2a\x78"),
	    IGNORED("an EXT with IGNORE on stream 7",
	            "\x00\x00\x0c\x00\x00\x00\x07\xfe\x00\x7f\xff\xff\xff\x78\x79"),
	};

	return frames_ignored(ctx, frames, 2);
}

static enum conf_result
frame_unused_ignored(struct conf_ctx *ctx)
{
	static const struct ignored_frame frames[] = {
	    IGNORED("a REQUEST_N on stream 1",
	            "\x00\x00\x0a\x00\x00\x00\x01\x20\x00\x00\x00\x00\x05"),
	    IGNORED("a CANCEL on stream 5, which is not in flight",
	            "\x00\x00\x06\x00\x00\x00\x05\x24\x00"),
	    IGNORED("an ERROR on stream 1",
	            "\x00\x00\x0d\x00\x00\x00\x01\x2c\x00\x00\x00\x02\x03\x62"
	            "\x61\x64"),
	    IGNORED("a PAYLOAD with NEXT and COMPLETE on stream 9, which is not in flight",
	            "\x00\x00\x07\x00\x00\x00\x09\x28\x60\x78"),
	};

	return frames_ignored(ctx, frames, 4);
}

static enum conf_result
frame_metadata_push_ignored(struct conf_ctx *ctx)
{
	static const struct ignored_frame frames[] = {
	    IGNORED("a METADATA_PUSH holding ff ff ff",
	            "\x00\x00\x09\x00\x00\x00\x00\x31\x00\xff\xff"
	            "\xff"),
	    IGNORED("a METADATA_PUSH holding a setup response",
	            "\x00\x00\x0b\x00\x00\x00\x00\x31\x00\x1c\x15\x14\x00\x00"),
	};

	return frames_ignored(ctx, frames, 2);
}

/* ==== 5.4 Server validation of SETUP ==== */

/* @bytes (with @fds) as the first thing on a connection: ERROR @code on 0, then EOF, FDs closed. */
static enum conf_result
expect_setup_refused(struct conf_ctx *ctx, const struct rfd_buf *bytes, uint32_t code,
                     const char *what, bool with_fd)
{
	struct rfd_frame frame;
	enum conf_result result = CONF_PASS;
	struct wire w;
	int reader = -1, writer = -1, r;

	if (with_fd && wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	if (wire_connect(&w, ctx, ctx->socket_path) < 0) {
		if (with_fd) {
			close(reader);
			close(writer);
		}
		return conf_fail(ctx, "cannot connect to %s", ctx->socket_path);
	}
	r = wire_send(&w, bytes->data, bytes->len, with_fd ? &writer : NULL, with_fd);
	if (with_fd)
		close(writer);
	if (r == 0)
		r = wire_read_frame(&w, &frame, conf_wait_ms(ctx));
	if (r <= 0)
		result = conf_fail(ctx, "%s: no ERROR frame before %s", what,
		                   r == 0 ? "the connection closed" : "the deadline");
	else if (frame.type != RFD_FRAME_ERROR || frame.stream_id != 0)
		result = conf_fail(ctx, "%s: expected ERROR on stream 0, got %s on stream %u", what,
		                   rfd_frame_type_name(frame.type), frame.stream_id);
	else if (frame.u32 != code)
		result = conf_fail(ctx, "%s: the ERROR's code is 0x%x, expected 0x%x", what,
		                   frame.u32, code);
	else if (!case_utf8_text(frame.data.ptr, frame.data.len))
		result =
		    conf_fail(ctx, "%s: the ERROR's data is not a UTF-8 text saying why", what);
	else if (!closed_by_server(ctx, &w))
		result = conf_fail(
		    ctx, "%s: the server did not close the connection after its ERROR", what);
	wire_close(&w);
	if (result == CONF_PASS && with_fd && !wire_expect_eof(reader, conf_wait_ms(ctx)))
		result = conf_fail(
		    ctx, "%s: the FD sent with it was not closed with the connection", what);
	if (with_fd)
		close(reader);
	return result;
}

/* Each SETUP of @specs on a fresh connection is refused with @code. */
static enum conf_result
setups_refused(struct conf_ctx *ctx, const struct setup_spec *specs, size_t n, uint32_t code)
{
	enum conf_result result = CONF_PASS;

	for (size_t i = 0; result == CONF_PASS && i < n; i++) {
		struct rfd_buf bytes;

		rfd_buf_init(&bytes);
		put_setup(&bytes, &specs[i]);
		result = expect_setup_refused(ctx, &bytes, code, specs[i].what, false);
		rfd_buf_free(&bytes);
	}
	return result;
}

/* SETUP @s accepted: a setup response, then the connection serves. */
static enum conf_result
setup_accepted_as(struct conf_ctx *ctx, const struct setup_spec *s, int32_t *version)
{
	struct rfd_server_push push;
	struct rfd_frame frame;
	enum conf_result result;
	struct rfd_buf bytes;
	const char *why = "";
	struct wire w;
	int r;

	if (wire_connect(&w, ctx, ctx->socket_path) < 0)
		return conf_fail(ctx, "cannot connect to %s", ctx->socket_path);
	rfd_buf_init(&bytes);
	put_setup(&bytes, s);
	result = send_bytes(ctx, &w, &bytes, NULL, 0, s->what);
	rfd_buf_free(&bytes);
	r = result == CONF_PASS ? wire_read_frame(&w, &frame, conf_wait_ms(ctx)) : 1;
	if (result != CONF_PASS) {
	} else if (r <= 0) {
		result = conf_fail(ctx, "%s: no frame came back (%s)", s->what,
		                   r == 0 ? "EOF" : strerror(-r));
	} else if (frame.type == RFD_FRAME_ERROR) {
		result = conf_fail(ctx, "%s was refused with ERROR 0x%x: %.*s", s->what, frame.u32,
		                   (int)(frame.data.len > 200 ? 200 : frame.data.len),
		                   (const char *)frame.data.ptr);
	} else if (frame.type != RFD_FRAME_METADATA_PUSH || frame.stream_id != 0) {
		result = conf_fail(ctx,
		                   "%s: the first frame is %s on stream %u, not the setup "
		                   "response",
		                   s->what, rfd_frame_type_name(frame.type), frame.stream_id);
	} else if (rfd_server_push_decode(frame.metadata.ptr, frame.metadata.len, &push, &why) <
	               0 ||
	           push.kind != RFD_PUSH_SETUP_RESPONSE || !push.has_version) {
		result = conf_fail(ctx,
		                   "%s: the METADATA_PUSH is not a setupResponse with a version "
		                   "(%s)",
		                   s->what, why);
	} else {
		if (version)
			*version = push.version;
		result = probe(ctx, &w);
	}
	wire_close(&w);
	return result;
}

static enum conf_result
setup_not_first(struct conf_ctx *ctx)
{
	static const char keepalive[] =
	    "\x00\x00\x0e\x00\x00\x00\x00\x0c\x80\x00\x00\x00\x00\x00\x00\x00\x00";
	struct rfd_fd_metadata claim = fd_claim(0, 1);
	struct request_md md = call_md(FDT_METHOD_INSPECT, KIND_RR, &claim);
	enum conf_result result;
	struct rfd_buf bytes;

	rfd_buf_init(&bytes);
	put_call(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, FDT_METHOD_INSPECT, "first", &md);
	result = expect_setup_refused(ctx, &bytes, RFD_ERROR_CONNECTION_ERROR,
	                              "inspect with 1 FD as the first frame", true);
	bytes.len = 0;
	rfd_buf_append(&bytes, keepalive, sizeof(keepalive) - 1);
	if (result == CONF_PASS)
		result = expect_setup_refused(ctx, &bytes, RFD_ERROR_CONNECTION_ERROR,
		                              "KEEPALIVE as the first frame", false);
	rfd_buf_free(&bytes);
	return result;
}

static enum conf_result
setup_bad_version(struct conf_ctx *ctx)
{
	struct setup_spec s[3] = {setup_spec("SETUP version 2.0"), setup_spec("SETUP version 1.1"),
	                          setup_spec("SETUP version 0.1")};

	s[0].major = 2;
	s[1].minor = 1;
	s[2].major = 0;
	s[2].minor = 1;
	return setups_refused(ctx, s, 3, RFD_ERROR_INVALID_SETUP);
}

static enum conf_result
setup_bad_mime(struct conf_ctx *ctx)
{
	struct setup_spec s[4] = {
	    setup_spec("SETUP with metadata MIME type application/x-rocket-metadata+binary"),
	    setup_spec("SETUP with data MIME type text/plain"),
	    setup_spec("SETUP with metadata MIME type text/plain"),
	    setup_spec("SETUP with the two MIME types swapped"),
	};

	s[0].metadata_mime = "application/x-rocket-metadata+binary";
	s[1].data_mime = "text/plain";
	s[2].metadata_mime = "text/plain";
	s[3].metadata_mime = DATA_MIME;
	s[3].data_mime = METADATA_MIME;
	return setups_refused(ctx, s, 4, RFD_ERROR_UNSUPPORTED_SETUP);
}

static enum conf_result
setup_bad_key(struct conf_ctx *ctx)
{
	struct setup_spec s[4] = {setup_spec("SETUP whose metadata starts with 00 00 00 01"),
	                          setup_spec("SETUP whose metadata starts with f0 9f 9a 81"),
	                          setup_spec("SETUP without metadata"),
	                          setup_spec("SETUP with 3 bytes of metadata f0 9f 9a")};

	s[0].key = 1;
	s[1].key = PROTOCOL_KEY + 1;
	s[2].no_metadata = true;
	s[3].raw_metadata = "\xf0\x9f\x9a";
	s[3].raw_len = 3;
	return setups_refused(ctx, s, 4, RFD_ERROR_INVALID_SETUP);
}

static enum conf_result
setup_bad_metadata(struct conf_ctx *ctx)
{
	struct setup_spec s[4] = {setup_spec("SETUP with the key and nothing after it"),
	                          setup_spec("SETUP with a truncated RequestSetupMetadata"),
	                          setup_spec("SETUP with a byte after the RequestSetupMetadata"),
	                          setup_spec("SETUP whose minVersion is a string")};

	s[0].raw_metadata = "\xf0\x9f\x9a\x80";
	s[0].raw_len = 4;
	s[1].raw_metadata = "\xf0\x9f\x9a\x80\x35\x10\x15";
	s[1].raw_len = 7;
	s[2].raw_metadata = "\xf0\x9f\x9a\x80\x35\x10\x15\x14\x00\x00";
	s[2].raw_len = 10;
	s[3].raw_metadata = "\xf0\x9f\x9a\x80\x38\x01\x38\x15\x14\x00";
	s[3].raw_len = 10;
	return setups_refused(ctx, s, 4, RFD_ERROR_INVALID_SETUP);
}

static enum conf_result
setup_binary_metadata(struct conf_ctx *ctx)
{
	struct setup_spec s = setup_spec("SETUP with encodeMetadataUsingBinary = true");

	s.binary = true;
	return setups_refused(ctx, &s, 1, RFD_ERROR_UNSUPPORTED_SETUP);
}

static enum conf_result
setup_version_range(struct conf_ctx *ctx)
{
	struct setup_spec s[4] = {setup_spec("SETUP with versions 11..12"),
	                          setup_spec("SETUP with versions 1..7"),
	                          setup_spec("SETUP without minVersion and maxVersion"),
	                          setup_spec("SETUP with minVersion 8 and no maxVersion")};
	struct setup_spec no_min = setup_spec("SETUP with maxVersion 10 and no minVersion");
	enum conf_result result;
	int32_t version = 0;

	s[0].min_version = 11;
	s[0].max_version = 12;
	s[1].min_version = 1;
	s[1].max_version = 7;
	s[2].min_version = -1;
	s[2].max_version = -1;
	s[3].max_version = -1;
	no_min.min_version = -1;
	result = setups_refused(ctx, s, 4, RFD_ERROR_INVALID_SETUP);
	if (result == CONF_PASS)
		result = setup_accepted_as(ctx, &no_min, &version);
	if (result == CONF_PASS && version != 10)
		result =
		    conf_fail(ctx, "%s: setupResponse.version is %d, not 10", no_min.what, version);
	return result;
}

static enum conf_result
setup_second(struct conf_ctx *ctx)
{
	struct setup_spec s = setup_spec("a second SETUP after the setup response");
	enum conf_result result;
	struct rfd_frame frame;
	struct rfd_buf bytes;
	struct wire w;
	int r;

	result = case_connect(ctx, &w);
	if (result != CONF_PASS)
		return result;
	rfd_buf_init(&bytes);
	put_setup(&bytes, &s);
	result = send_bytes(ctx, &w, &bytes, NULL, 0, s.what);
	rfd_buf_free(&bytes);
	r = result == CONF_PASS ? wire_read_frame(&w, &frame, conf_wait_ms(ctx)) : 1;
	if (result != CONF_PASS) {
	} else if (r <= 0) {
		result = conf_fail(ctx, "%s: no ERROR INVALID_SETUP before %s", s.what,
		                   r == 0 ? "the connection closed" : "the deadline");
	} else if (frame.type != RFD_FRAME_ERROR || frame.stream_id != 0 ||
	           frame.u32 != RFD_ERROR_INVALID_SETUP) {
		result =
		    conf_fail(ctx,
		              "%s: expected ERROR INVALID_SETUP (0x1) on stream 0, got %s "
		              "0x%x on stream %u",
		              s.what, rfd_frame_type_name(frame.type), frame.u32, frame.stream_id);
	} else if (!closed_by_server(ctx, &w)) {
		result = conf_fail(ctx, "%s: the connection stayed open after the ERROR", s.what);
	}
	wire_close(&w);
	return result;
}

/* SETUP and requests in one write: every request is served, after the setup response. */
static enum conf_result
setup_requests_in_same_write(struct conf_ctx *ctx)
{
	struct setup_spec s = setup_spec("SETUP");
	struct fdt_report report = {0};
	enum conf_result result;
	struct case_answer a;
	struct rfd_frame frame;
	struct rfd_buf bytes;
	struct wire w;
	int r;

	if (wire_connect(&w, ctx, ctx->socket_path) < 0)
		return conf_fail(ctx, "cannot connect to %s", ctx->socket_path);
	rfd_buf_init(&bytes);
	put_setup(&bytes, &s);
	put_call(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, FDT_METHOD_ECHO, "early", NULL);
	put_call(&bytes, RFD_FRAME_REQUEST_RESPONSE, 3, FDT_METHOD_INSPECT, "early", NULL);
	put_call(&bytes, RFD_FRAME_REQUEST_FNF, 5, FDT_METHOD_RECORD, "early", NULL);
	put_call(&bytes, RFD_FRAME_REQUEST_RESPONSE, 7, FDT_METHOD_LAST, NULL, NULL);
	result = send_bytes(ctx, &w, &bytes, NULL, 0, "SETUP and four requests");
	rfd_buf_free(&bytes);
	w.next_stream = 9;
	r = result == CONF_PASS ? wire_read_frame(&w, &frame, conf_wait_ms(ctx)) : 1;
	if (result == CONF_PASS && (r <= 0 || frame.type != RFD_FRAME_METADATA_PUSH))
		result = conf_fail(ctx, "the first frame is %s, not the setup response",
		                   r <= 0 ? "missing" : rfd_frame_type_name(frame.type));
	if (result == CONF_PASS &&
	    (result = case_read_answer(ctx, &w, 1, true, conf_wait_ms(ctx), &a)) == CONF_PASS) {
		result = expect_string(ctx, &a, "early", "echo written with SETUP");
		case_answer_free(&a);
	}
	if (result == CONF_PASS &&
	    (result = case_read_answer(ctx, &w, 3, true, conf_wait_ms(ctx), &a)) == CONF_PASS) {
		result = expect_report(ctx, &a, "early", 0, &report, "inspect written with SETUP");
		case_answer_free(&a);
		fdt_report_free(&report);
	}
	if (result == CONF_PASS &&
	    (result = case_read_answer(ctx, &w, 7, true, conf_wait_ms(ctx), &a)) == CONF_PASS) {
		result = expect_report(ctx, &a, "early", 0, &report,
		                       "lastRecorded after a record, both written with SETUP");
		case_answer_free(&a);
		fdt_report_free(&report);
	}
	wire_close(&w);
	return result;
}

/* ==== 5.5 Setup response ==== */

static enum conf_result
setup_response_first(struct conf_ctx *ctx)
{
	struct setup_spec s = setup_spec("SETUP");
	struct rfd_frame keepalive = {.type = RFD_FRAME_KEEPALIVE, .flags = RESPOND};
	enum conf_result result;
	struct rfd_frame frame;
	struct rfd_buf bytes;
	struct wire w;
	int r;

	if (wire_connect(&w, ctx, ctx->socket_path) < 0)
		return conf_fail(ctx, "cannot connect to %s", ctx->socket_path);
	rfd_buf_init(&bytes);
	put_setup(&bytes, &s);
	rfd_frame_encode(&keepalive, &bytes);
	put_call(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, FDT_METHOD_ECHO, "second", NULL);
	put_call(&bytes, RFD_FRAME_REQUEST_RESPONSE, 3, "noSuchMethod", "third", NULL);
	result = send_bytes(ctx, &w, &bytes, NULL, 0, "SETUP, KEEPALIVE and two requests");
	rfd_buf_free(&bytes);
	r = result == CONF_PASS ? wire_read_frame(&w, &frame, conf_wait_ms(ctx)) : 1;
	if (result == CONF_PASS && r <= 0)
		result = conf_fail(ctx, "nothing came back (%s)", r == 0 ? "EOF" : strerror(-r));
	else if (result == CONF_PASS && (frame.type != RFD_FRAME_METADATA_PUSH || frame.stream_id))
		result =
		    conf_fail(ctx, "the first frame is %s on stream %u, not the setup response",
		              rfd_frame_type_name(frame.type), frame.stream_id);
	wire_close(&w);
	return result;
}

static enum conf_result
setup_response_version(struct conf_ctx *ctx)
{
	static const int32_t max_versions[] = {8, 9, 10, 11, 50};
	enum conf_result result = CONF_PASS;

	for (size_t i = 0; result == CONF_PASS && i < 5; i++) {
		struct setup_spec s = setup_spec("SETUP");
		char what[64];
		int32_t version = 0;

		snprintf(what, sizeof(what), "SETUP with versions 8..%d", max_versions[i]);
		s.what = what;
		s.max_version = max_versions[i];
		result = setup_accepted_as(ctx, &s, &version);
		if (result == CONF_PASS && version != (max_versions[i] < 10 ? max_versions[i] : 10))
			result =
			    conf_fail(ctx, "%s: setupResponse.version is %d, expected %d", what,
			              version, max_versions[i] < 10 ? max_versions[i] : 10);
	}
	return result;
}

/* SetupResponse.zstdSupported (2) and lz4Supported (5), read from the raw ServerPushMetadata. */
static int
setup_response_compression(const struct rfd_frame *frame, bool *zstd, bool *lz4, const char **why)
{
	struct rfd_cr_field f, g;
	struct rfd_cr r;
	int ret;

	*zstd = *lz4 = false;
	rfd_cr_init(&r, frame->metadata.ptr, frame->metadata.len);
	ret = rfd_cr_struct_begin(&r);
	while (ret >= 0 && (ret = rfd_cr_field(&r, &f)) > 0) {
		if (f.id != 1 || f.type != RFD_CT_STRUCT) {
			ret = rfd_cr_skip_field(&r, &f);
			continue;
		}
		ret = rfd_cr_struct_begin(&r);
		while (ret >= 0 && (ret = rfd_cr_field(&r, &g)) > 0) {
			if (g.type == RFD_CT_BOOL && g.id == 2)
				*zstd = g.bool_value;
			else if (g.type == RFD_CT_BOOL && g.id == 5)
				*lz4 = g.bool_value;
			else
				ret = rfd_cr_skip_field(&r, &g);
		}
	}
	if (ret == 0)
		ret = rfd_cr_finish(&r);
	*why = rfd_cr_error(&r);
	return ret;
}

static enum conf_result
setup_no_compression(struct conf_ctx *ctx)
{
	struct setup_spec s = setup_spec("SETUP");
	enum conf_result result;
	struct rfd_frame frame;
	struct rfd_buf bytes;
	const char *why = "";
	bool zstd, lz4;
	struct wire w;
	int r;

	if (wire_connect(&w, ctx, ctx->socket_path) < 0)
		return conf_fail(ctx, "cannot connect to %s", ctx->socket_path);
	rfd_buf_init(&bytes);
	put_setup(&bytes, &s);
	result = send_bytes(ctx, &w, &bytes, NULL, 0, "SETUP");
	rfd_buf_free(&bytes);
	r = result == CONF_PASS ? wire_read_frame(&w, &frame, conf_wait_ms(ctx)) : 1;
	if (result == CONF_PASS && (r <= 0 || frame.type != RFD_FRAME_METADATA_PUSH))
		result = conf_fail(ctx, "no setup response");
	else if (result == CONF_PASS && setup_response_compression(&frame, &zstd, &lz4, &why) < 0)
		result = conf_fail(ctx, "the ServerPushMetadata is not one Compact struct: %s",
		                   why ? why : "");
	else if (result == CONF_PASS && (zstd || lz4))
		result = conf_fail(ctx,
		                   "the setup response claims %s support: this specification "
		                   "has no compression",
		                   zstd ? "zstd" : "lz4");
	wire_close(&w);
	return result;
}

/* ==== 6.1 Compact metadata ==== */

static enum conf_result
meta_unknown_fields(struct conf_ctx *ctx)
{
	struct setup_spec s = setup_spec("SETUP with unknown fields of every type");
	struct rfd_fd_metadata claim = fd_claim(0, 1);
	struct request_md md = call_md(FDT_METHOD_INSPECT, KIND_RR, &claim);
	struct fdt_report report = {0};
	enum conf_result result;
	struct case_answer a;
	struct rfd_frame frame;
	struct rfd_buf bytes;
	struct wire w;
	int reader, writer, r;

	s.unknown = true;
	md.extras = MD_UNKNOWN;
	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	if (wire_connect(&w, ctx, ctx->socket_path) < 0) {
		close(reader);
		close(writer);
		return conf_fail(ctx, "cannot connect to %s", ctx->socket_path);
	}
	rfd_buf_init(&bytes);
	put_setup(&bytes, &s);
	result = send_bytes(ctx, &w, &bytes, NULL, 0, s.what);
	r = result == CONF_PASS ? wire_read_frame(&w, &frame, conf_wait_ms(ctx)) : 1;
	if (result == CONF_PASS && (r <= 0 || frame.type != RFD_FRAME_METADATA_PUSH))
		result = conf_fail(ctx, "%s was not answered with a setup response (%s)", s.what,
		                   r <= 0 ? "nothing came" : rfd_frame_type_name(frame.type));
	bytes.len = 0;
	put_call(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, FDT_METHOD_INSPECT, "unknown", &md);
	if (result == CONF_PASS)
		result = send_bytes(ctx, &w, &bytes, &writer, 1, "inspect");
	rfd_buf_free(&bytes);
	close(writer);
	if (result == CONF_PASS)
		result = case_read_answer(ctx, &w, 1, true, conf_wait_ms(ctx), &a);
	if (result == CONF_PASS) {
		result =
		    expect_report(ctx, &a, "unknown", 1, &report,
		                  "inspect whose RequestRpcMetadata and FdMetadata hold unknown "
		                  "fields of every type");
		if (result == CONF_PASS && (ino_t)report.fds[0].ino != ino_of(reader))
			result = conf_fail(ctx, "inspect was given another FD than its own");
		case_answer_free(&a);
	}
	fdt_report_free(&report);
	wire_close(&w);
	close(reader);
	return result;
}

struct raw_request {
	const char *what;
	const char *md; /* the RequestRpcMetadata bytes, however wrong */
	size_t md_len;
};

#define RAW_MD(what, md)                                                                           \
	{                                                                                          \
		what, md, sizeof(md) - 1                                                           \
	}

/*
 * Requests whose metadata is not one Compact struct, each with a pipe
 * write end: answered with ERROR 0x204 (1, 6); their FDs cannot be claimed
 * and stay queued until a later claim passes them.
 */
static enum conf_result
meta_malformed(struct conf_ctx *ctx)
{
	static const struct raw_request requests[] = {
	    RAW_MD("metadata cut short inside the method name", "\x15\x04\x18\x04\x65\x63"),
	    RAW_MD("metadata without its stop byte", "\x15\x04\x18\x04\x65\x63\x68\x6f\x15\x00"),
	    RAW_MD("metadata whose name (field 2) is an i32", "\x15\x04\x15\x08\x15\x00\x00"),
	    RAW_MD("metadata with a byte after its stop byte",
	           "\x15\x04\x18\x04\x65\x63\x68\x6f\x15\x00\x00\x00"),
	    RAW_MD("metadata whose fdMetadata (field 22) is an i32",
	           "\x15\x04\x18\x04\x65\x63\x68\x6f\x15\x00\x05\x2c\x02\x00"),
	    RAW_MD("metadata whose clientTimeoutMs (field 5) is a string",
	           "\x15\x04\x18\x04\x65\x63\x68\x6f\x15\x00\x28\x01\x78\x00"),
	    RAW_MD("metadata with a field of type code 14, which is not a type",
	           "\x15\x04\x18\x04\x65\x63\x68\x6f\x15\x00\x5e\x00\x00"),
	    {"no metadata (no METADATA flag)", NULL, 0},
	};
	enum { N = sizeof(requests) / sizeof(requests[0]) };
	int readers[N], writers[N];
	struct fdt_report report = {0};
	enum conf_result result;
	struct rfd_buf bytes, args, md;
	struct wire w;
	int fd;

	if (case_pipes(readers, writers, N) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = case_connect(ctx, &w);
	rfd_buf_init(&bytes);
	rfd_buf_init(&args);
	put_text_args(&args, "malformed", 9);
	for (size_t i = 0; result == CONF_PASS && i < N; i++) {
		struct case_answer a;
		uint32_t stream = wire_stream_id(&w);

		md = (struct rfd_buf){(uint8_t *)requests[i].md, requests[i].md_len,
		                      requests[i].md_len};
		bytes.len = 0;
		put_payload_frame(&bytes, RFD_FRAME_REQUEST_RESPONSE, stream, 0,
		                  requests[i].md ? &md : NULL, args.data, args.len);
		result = send_bytes(ctx, &w, &bytes, &writers[i], 1, requests[i].what);
		close(writers[i]);
		writers[i] = -1;
		if (result == CONF_PASS)
			result = case_read_answer(ctx, &w, stream, true, conf_wait_ms(ctx), &a);
		if (result == CONF_PASS) {
			result = case_expect_rpc_error(ctx, &a, requests[i].what, RFD_ERROR_INVALID,
			                               RFD_ERROR_CATEGORY_INVALID_REQUEST,
			                               RFD_ERROR_CODE_REQUEST_PARSING_FAILURE);
			case_answer_free(&a);
		} else {
			reason_prefix(ctx, "a request with %s", requests[i].what);
		}
		if (result == CONF_PASS && case_closed_now(readers[i]))
			result = conf_fail(ctx,
			                   "the FD sent with a request with %s was closed: its "
			                   "metadata cannot be decoded, so nothing claimed it "
			                   "and it stays queued until a later claim passes it",
			                   requests[i].what);
	}
	rfd_buf_free(&bytes);
	rfd_buf_free(&args);
	fd = dev_null();
	if (result == CONF_PASS)
		result = inspect(ctx, &w, "after", &fd, 1, NULL, 1, &report);
	if (result == CONF_PASS && report.fds[0].type != S_IFCHR)
		result = conf_fail(ctx,
		                   "inspect claiming fdSeqNum %d was given an FD of a malformed "
		                   "request",
		                   N);
	for (size_t i = 0; result == CONF_PASS && i < N; i++)
		if (!case_closed_now(readers[i]))
			result = conf_fail(ctx,
			                   "the FD of the request with %s was still open after a "
			                   "claim at fdSeqNum %d passed it",
			                   requests[i].what, N);
	fdt_report_free(&report);
	close(fd);
	wire_close(&w);
	case_close_all(readers, N);
	case_close_all(writers, N);
	return result;
}

/* ==== 6.3 Responses ==== */

/* A success answer as META-6 and META-8 describe it. */
static enum conf_result
expect_success_shape(struct conf_ctx *ctx, const struct case_answer *a, const char *what)
{
	const struct wire_reply *reply = &a->reply;

	if (reply->type != RFD_FRAME_PAYLOAD)
		return conf_fail(ctx, "%s: answered with ERROR 0x%x", what, reply->error_code);
	if (a->n_frames != 1 || (a->flags & ~RFD_FLAG_FOLLOWS) != ANSWER_FLAGS)
		return conf_fail(ctx,
		                 "%s: the answer's flags are 0x%03x (%zu frames), expected "
		                 "NEXT|COMPLETE|METADATA (0x160) in one frame",
		                 what, a->flags, a->n_frames);
	if (reply->md.payload_kind != RFD_PAYLOAD_RESPONSE)
		return conf_fail(ctx, "%s: payloadMetadata is not responseMetadata", what);
	if (reply->md.uses_compression || reply->md.uses_checksum)
		return conf_fail(ctx, "%s: ResponseRpcMetadata sets %s", what,
		                 reply->md.uses_compression ? "compression (6)" : "checksum (14)");
	return CONF_PASS;
}

static enum conf_result
meta_success_answers(struct conf_ctx *ctx)
{
	static const char *const methods[] = {FDT_METHOD_ECHO, FDT_METHOD_INSPECT, FDT_METHOD_LAST};
	enum conf_result result;
	struct wire w;

	result = case_connect(ctx, &w);
	for (size_t i = 0; result == CONF_PASS && i < 3; i++) {
		struct fdt_report report = {0};
		struct case_answer a;
		const char *tag = i == 2 ? "" : "shape";

		result = call(ctx, &w, methods[i], i == 2 ? NULL : tag, NULL, 0, NULL, &a);
		if (result != CONF_PASS)
			break;
		result = expect_success_shape(ctx, &a, methods[i]);
		if (result == CONF_PASS && i == 0)
			result = expect_string(ctx, &a, tag, methods[i]);
		else if (result == CONF_PASS)
			result = expect_report(ctx, &a, tag, 0, &report, methods[i]);
		fdt_report_free(&report);
		case_answer_free(&a);
	}
	wire_close(&w);
	return result;
}

static enum conf_result
meta_declared_exception(struct conf_ctx *ctx)
{
	struct fdt_open_result opened = {0};
	enum conf_result result;
	struct case_answer a;
	const char *why = "";
	struct wire w;

	result = case_connect(ctx, &w);
	if (result != CONF_PASS)
		return result;
	result = call(ctx, &w, FDT_METHOD_OPEN, "missing.txt", NULL, 0, NULL, &a);
	if (result != CONF_PASS) {
		wire_close(&w);
		return result;
	}
	if (a.reply.type != RFD_FRAME_PAYLOAD)
		result = conf_fail(ctx,
		                   "open(\"missing.txt\") was answered with ERROR 0x%x, not a "
		                   "declared exception",
		                   a.reply.error_code);
	else if (a.n_frames != 1 || (a.flags & ~RFD_FLAG_FOLLOWS) != ANSWER_FLAGS)
		result = conf_fail(ctx,
		                   "the exception's flags are 0x%03x, expected "
		                   "NEXT|COMPLETE|METADATA (0x160)",
		                   a.flags);
	else if (a.reply.md.payload_kind != RFD_PAYLOAD_DECLARED_EXCEPTION)
		result = conf_fail(ctx, "payloadMetadata is not exceptionMetadata with "
		                        "declaredException");
	else if (!a.reply.md.has_ex_name || a.reply.md.ex_name.len != strlen(FDT_ERROR_NAME) ||
	         memcmp(a.reply.md.ex_name.ptr, FDT_ERROR_NAME, a.reply.md.ex_name.len) != 0)
		result = conf_fail(ctx, "exceptionMetadata.name_utf8 is not \"FdTestError\"");
	else if (fdt_decode_open_result(a.reply.data.data, a.reply.data.len, &opened, &why) < 0 ||
	         !opened.failed)
		result = conf_fail(ctx,
		                   "the data is not the result struct with FdTestError in field "
		                   "1 (%s)",
		                   why);
	else if (!a.reply.md.has_ex_what ||
	         a.reply.md.ex_what.len != strlen(opened.error.message) ||
	         memcmp(a.reply.md.ex_what.ptr, opened.error.message, a.reply.md.ex_what.len) != 0)
		result = conf_fail(ctx,
		                   "exceptionMetadata.what_utf8 is not FdTestError.message "
		                   "(\"%s\")",
		                   opened.error.message);
	else if (a.reply.md.uses_compression || a.reply.md.uses_checksum)
		result = conf_fail(ctx, "ResponseRpcMetadata sets compression or checksum");
	else if (opened.error.errnum != ENOENT)
		result = conf_fail(ctx, "FdTestError.errnum is %d, expected ENOENT (2)",
		                   opened.error.errnum);
	case_answer_free(&a);
	fdt_open_result_free(&opened);
	wire_close(&w);
	return result;
}

/* ==== 6.8 Error responses ==== */

/* One request a server must refuse, and what it must answer. */
struct refused {
	const char *what;
	uint8_t type;
	const char *method;
	int32_t protocol, kind;
	unsigned extras;
	uint32_t code; /* 0: a REQUEST_FNF, no answer at all */
	int32_t category, rpc_code;
	const char *args; /* NULL: the {1: "refused"} arguments */
	size_t args_len;
};

/* @r with a pipe write end: the expected ERROR (or nothing), and the FD closed by then. */
static enum conf_result
request_refused(struct conf_ctx *ctx, struct wire *w, const struct refused *r)
{
	int reader, writer;
	struct rfd_fd_metadata claim = fd_claim(w->send_seq, 1);
	struct request_md md = {.protocol = r->protocol,
	                        .name = r->method,
	                        .kind = r->kind,
	                        .extras = r->extras,
	                        .fd = claim};
	enum conf_result result;
	struct rfd_buf bytes, args;
	struct case_answer a;
	uint32_t stream = wire_stream_id(w);

	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	rfd_buf_init(&bytes);
	rfd_buf_init(&args);
	if (r->args)
		rfd_buf_append(&args, r->args, r->args_len);
	else
		put_text_args(&args, "refused", 7);
	put_request(&bytes, r->type, stream, 0, &md, args.data, args.len);
	result = send_bytes(ctx, w, &bytes, &writer, 1, r->what);
	rfd_buf_free(&bytes);
	rfd_buf_free(&args);
	close(writer);
	if (result == CONF_PASS && r->code) {
		result = case_read_answer(ctx, w, stream, true, conf_wait_ms(ctx), &a);
		if (result == CONF_PASS) {
			result = case_expect_rpc_error(ctx, &a, r->what, r->code, r->category,
			                               r->rpc_code);
			case_answer_free(&a);
		} else {
			reason_prefix(ctx, "%s", r->what);
		}
		if (result == CONF_PASS && !case_closed_now(reader))
			result = conf_fail(ctx,
			                   "%s: its FD was still open when the ERROR arrived: "
			                   "the claim comes before any validation and a "
			                   "refused request's FDs are closed before the error "
			                   "is sent",
			                   r->what);
	} else if (result == CONF_PASS) {
		result = probe(ctx, w);
		if (result != CONF_PASS)
			reason_prefix(ctx, "after %s, which must get no answer", r->what);
		else if (!wire_expect_eof(reader, conf_wait_ms(ctx)))
			result = conf_fail(ctx,
			                   "%s: its FD was never closed: a refused one-way "
			                   "request's FDs are claimed and closed",
			                   r->what);
	}
	close(reader);
	return result;
}

static enum conf_result
requests_refused(struct conf_ctx *ctx, const struct refused *list, size_t n)
{
	enum conf_result result;
	struct wire w;

	result = case_connect(ctx, &w);
	for (size_t i = 0; result == CONF_PASS && i < n; i++)
		result = request_refused(ctx, &w, &list[i]);
	if (result == CONF_PASS)
		result = usable(ctx, &w, "after");
	wire_close(&w);
	return result;
}

/* A refused REQUEST_RESPONSE, its ERROR 0x204 (1, @rpc_code); a refused one-way: no answer. */
#define REFUSED(what_, type_, method_, protocol_, kind_, extras_, rpc_code_)                       \
	{                                                                                          \
		.what = what_, .type = type_, .method = method_, .protocol = protocol_,            \
		.kind = kind_, .extras = extras_, .code = RFD_ERROR_INVALID,                       \
		.category = RFD_ERROR_CATEGORY_INVALID_REQUEST, .rpc_code = rpc_code_              \
	}
#define REFUSED_ONEWAY(what_, method_, protocol_, kind_, extras_)                                  \
	{                                                                                          \
		.what = what_, .type = RFD_FRAME_REQUEST_FNF, .method = method_,                   \
		.protocol = protocol_, .kind = kind_, .extras = extras_                            \
	}
#define REFUSED_ARGS(what_, method_, args_)                                                        \
	{                                                                                          \
		.what = what_, .type = RFD_FRAME_REQUEST_RESPONSE, .method = method_,              \
		.protocol = RFD_PROTOCOL_COMPACT, .kind = KIND_RR, .code = RFD_ERROR_INVALID,      \
		.category = RFD_ERROR_CATEGORY_INVALID_REQUEST,                                    \
		.rpc_code = RFD_ERROR_CODE_REQUEST_PARSING_FAILURE, .args = args_,                 \
		.args_len = sizeof(args_) - 1                                                      \
	}
#define PARSING    RFD_ERROR_CODE_REQUEST_PARSING_FAILURE
#define WRONG_KIND RFD_ERROR_CODE_WRONG_RPC_KIND
#define RR         RFD_FRAME_REQUEST_RESPONSE
#define COMPACT    RFD_PROTOCOL_COMPACT

static enum conf_result
meta_bad_requests(struct conf_ctx *ctx)
{
	static const struct refused list[] = {
	    REFUSED("inspect with protocol 0 (BINARY)", RR, FDT_METHOD_INSPECT, RFD_PROTOCOL_BINARY,
	            KIND_RR, 0, PARSING),
	    REFUSED("inspect without protocol", RR, FDT_METHOD_INSPECT, 0, KIND_RR, MD_NO_PROTOCOL,
	            PARSING),
	    REFUSED("a request without a method name", RR, NULL, COMPACT, KIND_RR, 0, PARSING),
	    REFUSED_ARGS("inspect whose arguments are cut short", FDT_METHOD_INSPECT,
	                 "\x18\x09\x72\x65"),
	    REFUSED_ARGS("echo whose tag (field 1) is an i32", FDT_METHOD_ECHO, "\x15\x02\x00"),
	    REFUSED_ARGS("open whose arguments have a byte after their end", FDT_METHOD_OPEN,
	                 "\x18\x01\x61\x00\x00"),
	};

	return requests_refused(ctx, list, sizeof(list) / sizeof(list[0]));
}

static enum conf_result
meta_wrong_kind(struct conf_ctx *ctx)
{
	static const struct refused list[] = {
	    REFUSED("inspect without kind", RR, FDT_METHOD_INSPECT, COMPACT, 0, MD_NO_KIND,
	            WRONG_KIND),
	    REFUSED("inspect as REQUEST_RESPONSE with kind 1", RR, FDT_METHOD_INSPECT, COMPACT,
	            KIND_FNF, 0, WRONG_KIND),
	    REFUSED("echo as REQUEST_RESPONSE with kind 4", RR, FDT_METHOD_ECHO, COMPACT,
	            KIND_STREAM, 0, WRONG_KIND),
	    REFUSED("record as REQUEST_RESPONSE with kind 0", RR, FDT_METHOD_RECORD, COMPACT,
	            KIND_RR, 0, WRONG_KIND),
	    REFUSED("echo as REQUEST_STREAM with kind 4", RFD_FRAME_REQUEST_STREAM, FDT_METHOD_ECHO,
	            COMPACT, KIND_STREAM, 0, WRONG_KIND),
	    REFUSED_ONEWAY("inspect as REQUEST_FNF with kind 1", FDT_METHOD_INSPECT, COMPACT,
	                   KIND_FNF, 0),
	    REFUSED_ONEWAY("record as REQUEST_FNF with kind 0", FDT_METHOD_RECORD, COMPACT, KIND_RR,
	                   0),
	};

	return requests_refused(ctx, list, sizeof(list) / sizeof(list[0]));
}

static enum conf_result
meta_unknown_method(struct conf_ctx *ctx)
{
	static const struct refused list[] = {
	    REFUSED("noSuchMethod as REQUEST_RESPONSE", RR, "noSuchMethod", COMPACT, KIND_RR, 0,
	            RFD_ERROR_CODE_UNKNOWN_METHOD),
	    REFUSED("FdTest.echo (a qualified name) as REQUEST_RESPONSE", RR, "FdTest.echo",
	            COMPACT, KIND_RR, 0, RFD_ERROR_CODE_UNKNOWN_METHOD),
	    REFUSED_ONEWAY("noSuchMethod as REQUEST_FNF", "noSuchMethod", COMPACT, KIND_FNF, 0),
	};

	return requests_refused(ctx, list, sizeof(list) / sizeof(list[0]));
}

static enum conf_result
meta_declined_features(struct conf_ctx *ctx)
{
	static const struct refused list[] = {
	    REFUSED("echo with compression (field 14)", RR, FDT_METHOD_ECHO, COMPACT, KIND_RR,
	            MD_COMPRESSION, PARSING),
	    REFUSED("echo with interactionId (field 16)", RR, FDT_METHOD_ECHO, COMPACT, KIND_RR,
	            MD_INTERACTION_ID, PARSING),
	    REFUSED("echo with interactionCreate (field 17)", RR, FDT_METHOD_ECHO, COMPACT, KIND_RR,
	            MD_INTERACTION_CREATE, PARSING),
	    REFUSED("echo with a checksum of algorithm 1 (field 25)", RR, FDT_METHOD_ECHO, COMPACT,
	            KIND_RR, MD_CHECKSUM, PARSING),
	    REFUSED("echo as REQUEST_CHANNEL with kind 7", RFD_FRAME_REQUEST_CHANNEL,
	            FDT_METHOD_ECHO, COMPACT, KIND_BIDI, 0, PARSING),
	    REFUSED_ONEWAY("record as REQUEST_FNF with compression (field 14)", FDT_METHOD_RECORD,
	                   COMPACT, KIND_FNF, MD_COMPRESSION),
	};

	return requests_refused(ctx, list, sizeof(list) / sizeof(list[0]));
}

/* lastRecorded on @w answers the report tagged @tag with @n_fds FDs ("" and 0: none recorded). */
static enum conf_result
last_recorded_is(struct conf_ctx *ctx, struct wire *w, const char *tag, size_t n_fds,
                 const char *what)
{
	struct fdt_report report = {0};
	enum conf_result result;
	struct case_answer a;

	result = call(ctx, w, FDT_METHOD_LAST, NULL, NULL, 0, NULL, &a);
	if (result != CONF_PASS)
		return reason_prefix(ctx, "lastRecorded %s", what);
	result = case_expect_report(ctx, &a.reply, &report);
	if (result == CONF_PASS && (strcmp(report.tag, tag) != 0 || report.n_fds != n_fds))
		result = conf_fail(ctx,
		                   "lastRecorded %s answered tag \"%.60s\" with %zu FDs, expected "
		                   "\"%s\" with %zu",
		                   what, report.tag, report.n_fds, tag, n_fds);
	case_answer_free(&a);
	fdt_report_free(&report);
	return result;
}

/* Refused requests execute nothing: record refused in every way leaves lastRecorded empty. */
static enum conf_result
meta_refused_not_executed(struct conf_ctx *ctx)
{
	static const struct refused list[] = {
	    REFUSED("record as REQUEST_RESPONSE with kind 0", RR, FDT_METHOD_RECORD, COMPACT,
	            KIND_RR, 0, WRONG_KIND),
	    REFUSED_ONEWAY("record as REQUEST_FNF with protocol 0", FDT_METHOD_RECORD,
	                   RFD_PROTOCOL_BINARY, KIND_FNF, 0),
	    REFUSED_ONEWAY("record as REQUEST_FNF without kind", FDT_METHOD_RECORD, COMPACT, 0,
	                   MD_NO_KIND),
	    REFUSED_ONEWAY("record as REQUEST_FNF with compression", FDT_METHOD_RECORD, COMPACT,
	                   KIND_FNF, MD_COMPRESSION),
	    REFUSED_ONEWAY("record as REQUEST_FNF with a checksum", FDT_METHOD_RECORD, COMPACT,
	                   KIND_FNF, MD_CHECKSUM),
	    REFUSED_ONEWAY("record as REQUEST_FNF with interactionCreate", FDT_METHOD_RECORD,
	                   COMPACT, KIND_FNF, MD_INTERACTION_CREATE),
	};
	enum conf_result result;
	struct wire w;

	result = case_connect(ctx, &w);
	for (size_t i = 0; result == CONF_PASS && i < sizeof(list) / sizeof(list[0]); i++) {
		result = request_refused(ctx, &w, &list[i]);
		if (result == CONF_PASS)
			result = last_recorded_is(ctx, &w, "", 0, list[i].what);
		if (result != CONF_PASS)
			reason_prefix(ctx, "after %s", list[i].what);
	}
	wire_close(&w);
	return result;
}

/* One-way requests, served or refused, are never answered. */
static enum conf_result
meta_oneway_silent(struct conf_ctx *ctx)
{
	struct rfd_fd_metadata wrong = fd_claim(0, 2);
	enum conf_result result;
	struct rfd_buf bytes;
	struct wire w;
	int fd = dev_null();

	result = case_connect(ctx, &w);
	rfd_buf_init(&bytes);
	if (result == CONF_PASS &&
	    (!send_call(ctx, &w, RFD_FRAME_REQUEST_FNF, FDT_METHOD_RECORD, "served", &fd, 1,
	                NULL) ||
	     !send_call(ctx, &w, RFD_FRAME_REQUEST_FNF, FDT_METHOD_RECORD, "bad-claim", &fd, 1,
	                &wrong) ||
	     !send_call(ctx, &w, RFD_FRAME_REQUEST_FNF, "noSuchMethod", "unknown", NULL, 0, NULL) ||
	     !send_call(ctx, &w, RFD_FRAME_REQUEST_FNF, FDT_METHOD_ECHO, "echo-as-oneway", NULL, 0,
	                NULL)))
		result = CONF_FAIL;
	if (result == CONF_PASS) {
		struct request_md md = call_md(FDT_METHOD_RECORD, KIND_FNF, NULL);
		uint32_t stream = wire_stream_id(&w);

		put_payload_frame(&bytes, RFD_FRAME_REQUEST_FNF, stream, 0, NULL, "\x00", 1);
		md.protocol = RFD_PROTOCOL_BINARY;
		put_call(&bytes, RFD_FRAME_REQUEST_FNF, wire_stream_id(&w), FDT_METHOD_RECORD,
		         "binary", &md);
		result = send_bytes(ctx, &w, &bytes, NULL, 0, "two malformed one-way requests");
	}
	if (result == CONF_PASS) {
		result = probe(ctx, &w);
		if (result != CONF_PASS)
			reason_prefix(ctx, "after six one-way requests (served, bad claim, unknown "
			                   "method, wrong method kind, no metadata, protocol 0)");
	}
	rfd_buf_free(&bytes);
	close(fd);
	wire_close(&w);
	return result;
}

/* ==== 7.3 The server as a sender ==== */

enum { BACKLOG_CALLS = 8, BACKLOG_TAG = 60000, MIXED_ANSWERS = BACKLOG_CALLS + 8, MIXED_FDS = 4 };

/*
 * Echo calls whose large answers back up in the server, then calls whose
 * answers mix FD-less ones and ones with FDs (echo with 2, 1 and 1): the
 * server has to write those while earlier bytes still wait to be sent.
 */
static enum conf_result
send_mixed_requests(struct conf_ctx *ctx, struct wire *w)
{
	int fds[4] = {dev_null(), dev_null(), dev_null(), dev_null()};
	enum conf_result result = CONF_PASS;
	char *tag = malloc(BACKLOG_TAG + 1);
	bool frozen;

	if (!tag) {
		case_close_all(fds, 4);
		return conf_skip(ctx, "out of memory");
	}
	memset(tag, 'b', BACKLOG_TAG);
	tag[BACKLOG_TAG] = '\0';
	for (int i = 0; result == CONF_PASS && i < BACKLOG_CALLS; i++)
		if (!send_call(ctx, w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_ECHO, tag, NULL, 0,
		               NULL))
			result = CONF_FAIL;
	free(tag);
	pause_ms(50);
	frozen = result == CONF_PASS && freeze(ctx);
	if (result == CONF_PASS &&
	    (!send_call(ctx, w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_ECHO, "a", NULL, 0, NULL) ||
	     !send_call(ctx, w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_ECHO, "b", fds, 2, NULL) ||
	     !send_call(ctx, w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_ECHO, "c", NULL, 0, NULL) ||
	     !send_call(ctx, w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_INSPECT, "d", NULL, 0,
	                NULL) ||
	     !send_call(ctx, w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_ECHO, "e", &fds[2], 1,
	                NULL) ||
	     !send_call(ctx, w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_ECHO, "g", &fds[3], 1,
	                NULL) ||
	     !send_call(ctx, w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_ECHO, "f", NULL, 0, NULL) ||
	     !send_call(ctx, w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_LAST, NULL, NULL, 0, NULL)))
		result = CONF_FAIL;
	thaw(ctx, frozen);
	case_close_all(fds, 4);
	pause_ms(50);
	return result;
}

/* One read of the raw stream: its bytes' range and how many FDs came with it. */
struct raw_read {
	size_t start, end, n_fds;
};

/* Read once into @bytes (whatever the kernel gives, up to @cap), noting FDs and closing them. */
static int
raw_read(struct conf_ctx *ctx, struct wire *w, struct rfd_buf *bytes, size_t cap,
         struct raw_read *out)
{
	struct pollfd pfd = {.fd = w->sock, .events = POLLIN};
	struct rfd_cmsg_result control;
	const char *why = "";
	ssize_t n;

	if (rfd_buf_reserve(bytes, cap) < 0)
		return -ENOMEM;
	for (;;) {
		n = rfd_sock_recv(w->sock, bytes->data + bytes->len, cap, 0, &control, &why);
		if (n != -EAGAIN)
			break;
		if (poll(&pfd, 1, conf_wait_ms(ctx)) <= 0)
			return -ETIMEDOUT;
	}
	if (n < 0)
		return (int)n;
	out->start = bytes->len;
	out->end = bytes->len + (size_t)n;
	out->n_fds = control.n_fds;
	case_close_all(control.fds, control.n_fds);
	if (control.pidfd >= 0)
		close(control.pidfd);
	bytes->len += (size_t)n;
	return (int)n;
}

/* The frame at @offset of @bytes, if whole; its decoded metadata's claim in @claim. */
static bool
parse_answer(const struct rfd_buf *bytes, size_t offset, size_t *frame_len, struct rfd_frame *frame,
             struct rfd_fd_metadata *claim)
{
	struct rfd_response_metadata md = {0};
	const char *why = "";

	if (bytes->len - offset < 3)
		return false;
	*frame_len = 3 + rfd_get_u24(bytes->data + offset);
	if (bytes->len - offset < *frame_len ||
	    rfd_frame_decode(bytes->data + offset + 3, *frame_len - 3, frame, &why) < 0)
		return false;
	*claim = (struct rfd_fd_metadata){0};
	if (frame->type == RFD_FRAME_PAYLOAD && frame->has_metadata &&
	    rfd_response_metadata_decode(frame->metadata.ptr, frame->metadata.len, &md, &why) == 0)
		*claim = md.fd;
	return true;
}

static int32_t
claimed(const struct rfd_fd_metadata *claim)
{
	return claim->present && claim->has_num ? claim->num_fds : 0;
}

/*
 * Unbounded reads: a read that returns FDs stops right after the chunk of
 * the sendmsg that carried them, so it must end where the message ends.
 * Limitation: this assumes the server's small writes are never partial.
 */
static enum conf_result
check_fd_writes_end(struct conf_ctx *ctx, struct wire *w)
{
	struct rfd_buf bytes;
	enum conf_result result = CONF_PASS;
	size_t n_reads = 0, answers = 0, offset = 0;
	int64_t fds_seen = 0;

	rfd_buf_init(&bytes);
	for (; result == CONF_PASS && answers < MIXED_ANSWERS && n_reads < 64; n_reads++) {
		size_t frame_len;
		struct rfd_frame frame;
		struct rfd_fd_metadata claim;
		struct raw_read chunk;
		int r = raw_read(ctx, w, &bytes, MIB, &chunk);

		if (r <= 0) {
			result = conf_fail(ctx, "only %zu of %d answers arrived (%s)", answers,
			                   MIXED_ANSWERS, r == 0 ? "EOF" : strerror(-r));
			break;
		}
		if (chunk.n_fds) {
			size_t end = chunk.end, pos = 0;
			bool at_end = false;

			while (parse_answer(&bytes, pos, &frame_len, &frame, &claim)) {
				pos += frame_len;
				if (pos == end) {
					at_end = true;
					break;
				}
			}
			if (!at_end || claimed(&claim) == 0 ||
			    !(frame.type == RFD_FRAME_PAYLOAD && (frame.flags & RFD_FLAG_NEXT)))
				result =
				    conf_fail(ctx,
				              "a read that returned %zu FDs ended at byte %zu, "
				              "which is not the end of a response that "
				              "claims FDs: the sendmsg carrying FDs must "
				              "hold the bytes of their message only, to its "
				              "last byte",
				              chunk.n_fds, end);
			else if ((size_t)claimed(&claim) != chunk.n_fds || claim.fd_seq != fds_seen)
				result = conf_fail(ctx,
				                   "the answer on stream %u claims %d FDs at "
				                   "fdSeqNum %lld, but %zu arrived, %lld before "
				                   "them",
				                   frame.stream_id, claimed(&claim),
				                   (long long)claim.fd_seq, chunk.n_fds,
				                   (long long)fds_seen);
			fds_seen += (int64_t)chunk.n_fds;
		}
		while (parse_answer(&bytes, offset, &frame_len, &frame, &claim)) {
			offset += frame_len;
			answers++;
		}
	}
	if (result == CONF_PASS && answers < MIXED_ANSWERS)
		result = conf_fail(ctx, "%zu reads brought only %zu of %d answers", n_reads,
		                   answers, MIXED_ANSWERS);
	else if (result == CONF_PASS && fds_seen != MIXED_FDS)
		result = conf_fail(ctx, "%lld FDs arrived with the answers, %d were expected",
		                   (long long)fds_seen, MIXED_FDS);
	rfd_buf_free(&bytes);
	return result;
}

/* Read exactly one frame, never past its end; *n_fds counts the FDs its reads returned. */
static int
read_one_frame(struct conf_ctx *ctx, struct wire *w, struct rfd_buf *bytes, size_t *n_fds)
{
	size_t want = 3;
	struct raw_read chunk;

	bytes->len = 0;
	*n_fds = 0;
	while (bytes->len < want) {
		int r = raw_read(ctx, w, bytes, want - bytes->len, &chunk);

		if (r <= 0)
			return r;
		*n_fds += chunk.n_fds;
		if (want == 3 && bytes->len == 3)
			want = 3 + rfd_get_u24(bytes->data);
	}
	return 1;
}

/*
 * Reads that stop at the end of each frame: FDs arrive with the read that
 * holds the first byte of the sendmsg that carried them, which must be a
 * byte of the response that claims them.
 */
static enum conf_result
check_fd_writes_start(struct conf_ctx *ctx, struct wire *w)
{
	struct rfd_buf bytes;
	enum conf_result result = CONF_PASS;

	rfd_buf_init(&bytes);
	for (size_t i = 0; result == CONF_PASS && i < MIXED_ANSWERS; i++) {
		struct rfd_fd_metadata claim;
		struct rfd_frame frame;
		size_t n_fds, frame_len;
		int r = read_one_frame(ctx, w, &bytes, &n_fds);

		if (r <= 0)
			result = conf_fail(ctx, "only %zu of %d answers arrived", i, MIXED_ANSWERS);
		else if (!parse_answer(&bytes, 0, &frame_len, &frame, &claim))
			result = conf_fail(ctx, "answer %zu is not a valid frame", i + 1);
		else if (n_fds != (size_t)(claimed(&claim) > 0 ? claimed(&claim) : 0))
			result = conf_fail(
			    ctx,
			    "%zu FDs arrived with the bytes of the %s on stream %u, "
			    "which claims %d: FDs must be sent with bytes of "
			    "their own message only%s",
			    n_fds, rfd_frame_type_name(frame.type), frame.stream_id,
			    claimed(&claim),
			    claimed(&claim) > 0 ? "" : ", and only with carrier messages");
	}
	rfd_buf_free(&bytes);
	return result;
}

static enum conf_result
fd_answer_writes(struct conf_ctx *ctx)
{
	enum conf_result result;
	struct wire w;

	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = send_mixed_requests(ctx, &w);
	if (result == CONF_PASS)
		result = check_fd_writes_end(ctx, &w);
	wire_close(&w);
	if (result != CONF_PASS)
		return result;
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = send_mixed_requests(ctx, &w);
	if (result == CONF_PASS)
		result = check_fd_writes_start(ctx, &w);
	wire_close(&w);
	return result;
}

/*
 * Many large echo answers with FDs, read only once all are sent, so that the
 * server's writes come back partial or with EAGAIN: each answer's FDs must
 * arrive once.
 */
static enum conf_result
fds_sent_once(struct conf_ctx *ctx)
{
	enum { CALLS = 24, TAG_SIZE = 60000 };
	uint32_t streams[CALLS];
	char *tag = malloc(TAG_SIZE + 1);
	enum conf_result result;
	struct wire w;
	int small = 4096;

	if (!tag)
		return conf_skip(ctx, "out of memory");
	memset(tag, 'x', TAG_SIZE);
	tag[TAG_SIZE] = '\0';
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		setsockopt(w.sock, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	for (int i = 0; result == CONF_PASS && i < CALLS; i++) {
		int fd = dev_null();

		streams[i] = send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_ECHO, tag,
		                       &fd, 1, NULL);
		close(fd);
		if (!streams[i])
			result = CONF_FAIL;
	}
	for (int i = 0; result == CONF_PASS && i < CALLS; i++) {
		struct case_answer a;

		result = case_read_answer(ctx, &w, streams[i], true, conf_wait_ms(ctx), &a);
		if (result != CONF_PASS)
			break;
		if (a.reply.type != RFD_FRAME_PAYLOAD)
			result = conf_fail(ctx, "echo %d got ERROR 0x%x", i, a.reply.error_code);
		else if (!a.reply.fds_matched || a.reply.fds.n != 1)
			result = conf_fail(ctx,
			                   "echo %d: its FD did not arrive exactly once as "
			                   "claimed",
			                   i);
		case_answer_free(&a);
	}
	if (result == CONF_PASS && w.n_groups != 0)
		result = conf_fail(ctx,
		                   "%zu more FD groups arrived than the answers claimed: FDs "
		                   "were sent twice",
		                   w.n_groups);
	wire_close(&w);
	free(tag);
	return result;
}

/* ==== 7.4 The server as a receiver: reading and queuing ==== */

/* inspect with @n pipe write ends: the report describes them and the server closes them all. */
static enum conf_result
inspect_n(struct conf_ctx *ctx, size_t n)
{
	int *readers = calloc(n + 1, sizeof(int)), *writers = calloc(n + 1, sizeof(int));
	struct fdt_report report = {0};
	enum conf_result result;
	struct wire w;
	int baseline = case_fd_baseline(ctx), open_reader = -1;

	if (!readers || !writers || case_pipes(readers, writers, n) < 0) {
		free(readers);
		free(writers);
		return conf_skip(ctx, "the harness cannot make %zu pipes", n);
	}
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = inspect(ctx, &w, "inspect", writers, n, NULL, n, &report);
	case_close_all(writers, n);
	for (size_t i = 0; result == CONF_PASS && i < n; i++) {
		if (report.fds[i].type != S_IFIFO)
			result = conf_fail(ctx, "FD %zu: type 0%o, not a FIFO", i,
			                   (unsigned)report.fds[i].type);
		else if ((report.fds[i].flags & O_ACCMODE) != O_WRONLY)
			result = conf_fail(ctx, "FD %zu: not write-only: flags 0x%x", i,
			                   (unsigned)report.fds[i].flags);
		else if (!report.fds[i].cloexec)
			result = conf_fail(ctx,
			                   "FD %zu arrived without FD_CLOEXEC: recvmsg must use "
			                   "MSG_CMSG_CLOEXEC",
			                   i);
		else if ((ino_t)report.fds[i].ino != ino_of(readers[i]))
			result = conf_fail(ctx, "FD %zu names another pipe (ino %lld)", i,
			                   (long long)report.fds[i].ino);
	}
	for (size_t i = 0; result == CONF_PASS && i < n && open_reader < 0; i++)
		if (!case_closed_now(readers[i]))
			open_reader = (int)i;
	if (open_reader >= 0)
		result = conf_fail(ctx,
		                   "the write end of pipe %d was still open when the report "
		                   "arrived: inspect closes every FD before it answers",
		                   open_reader);
	wire_close(&w);
	if (result == CONF_PASS && !case_fd_settled(ctx, baseline, NULL))
		result = conf_fail(ctx, "the server's open FD count did not return to before");
	fdt_report_free(&report);
	case_close_all(readers, n);
	case_close_all(writers, n);
	free(readers);
	free(writers);
	return result;
}

static enum conf_result
inspect_one(struct conf_ctx *ctx)
{
	return inspect_n(ctx, 1);
}

static enum conf_result
inspect_max(struct conf_ctx *ctx)
{
	return inspect_n(ctx, 253);
}

/* The request written in @pieces writes, its FD with the piece @fd_piece (0-based). */
static enum conf_result
split_request(struct conf_ctx *ctx, size_t pieces, size_t fd_piece, bool with_setup)
{
	struct rfd_fd_metadata claim = fd_claim(0, 1);
	struct request_md md = call_md(FDT_METHOD_INSPECT, KIND_RR, &claim);
	struct setup_spec s = setup_spec("SETUP");
	struct fdt_report report = {0};
	enum conf_result result = CONF_PASS;
	size_t setup_len, step, pos = 0;
	struct rfd_frame frame;
	struct case_answer a;
	struct rfd_buf bytes;
	struct wire w;
	int reader, writer;

	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	if (!with_setup)
		result = case_connect(ctx, &w);
	else if (wire_connect(&w, ctx, ctx->socket_path) < 0)
		result = conf_fail(ctx, "cannot connect to %s", ctx->socket_path);
	if (result != CONF_PASS) {
		close(reader);
		close(writer);
		return result;
	}
	rfd_buf_init(&bytes);
	if (with_setup)
		put_setup(&bytes, &s);
	setup_len = bytes.len;
	put_call(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, FDT_METHOD_INSPECT, "split", &md);
	w.next_stream = 3;
	step = (bytes.len - setup_len) / pieces;
	for (size_t i = 0; i < pieces && result == CONF_PASS; i++) {
		size_t end = i + 1 == pieces ? bytes.len : setup_len + step * (i + 1);
		bool fds_here = i == fd_piece;

		if (wire_send(&w, bytes.data + pos, end - pos, fds_here ? &writer : NULL,
		              fds_here ? 1 : 0) < 0)
			result = conf_fail(ctx, "cannot write piece %zu", i + 1);
		pos = end;
		pause_ms(GAP_MS);
	}
	rfd_buf_free(&bytes);
	close(writer);
	if (result == CONF_PASS && with_setup &&
	    (wire_read_frame(&w, &frame, conf_wait_ms(ctx)) != 1 ||
	     frame.type != RFD_FRAME_METADATA_PUSH))
		result = conf_fail(ctx, "no setup response");
	if (result == CONF_PASS)
		result = case_read_answer(ctx, &w, 1, true, conf_wait_ms(ctx), &a);
	if (result == CONF_PASS) {
		result =
		    expect_report(ctx, &a, "split", 1, &report, "the inspect written in pieces");
		if (result == CONF_PASS && (ino_t)report.fds[0].ino != ino_of(reader))
			result =
			    conf_fail(ctx, "the inspect written in pieces got another FD than its "
			                   "own");
		case_answer_free(&a);
	}
	if (result == CONF_PASS && !case_closed_now(reader))
		result = conf_fail(ctx, "the FD was still open when the report arrived");
	fdt_report_free(&report);
	wire_close(&w);
	close(reader);
	return result;
}

static enum conf_result
fds_with_first_piece(struct conf_ctx *ctx)
{
	return split_request(ctx, 4, 0, false);
}

static enum conf_result
fds_with_last_piece(struct conf_ctx *ctx)
{
	return split_request(ctx, 4, 3, false);
}

static enum conf_result
fds_batched_with_setup(struct conf_ctx *ctx)
{
	return split_request(ctx, 1, 0, true);
}

/* Read @n answers in whatever order they come: answers[i] answers streams[i]. */
static enum conf_result
read_answers(struct conf_ctx *ctx, struct wire *w, const uint32_t *streams, size_t n,
             struct case_answer *answers, bool *got)
{
	for (size_t k = 0; k < n; k++) {
		enum conf_result result;
		struct case_answer a;
		size_t i = n;

		result = case_read_answer(ctx, w, CASE_ANY_STREAM, true, conf_wait_ms(ctx), &a);
		if (result != CONF_PASS)
			return reason_prefix(ctx, "after %zu of %zu answers", k, n);
		for (size_t j = 0; j < n; j++)
			if (streams[j] == a.stream_id)
				i = j;
		if (i == n || got[i]) {
			case_answer_free(&a);
			return conf_fail(ctx,
			                 "an answer arrived on stream %u, which had no request "
			                 "waiting",
			                 a.stream_id);
		}
		answers[i] = a;
		got[i] = true;
	}
	return CONF_PASS;
}

static void
free_answers(struct case_answer *answers, const bool *got, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (got[i])
			case_answer_free(&answers[i]);
}

/*
 * inspect calls with @fds[i] (or none when -1), each in a write of its own,
 * queued before the server reads when the harness launched it: each report
 * lists exactly the FD written with its call.
 */
static enum conf_result
inspects_each_get_their_own(struct conf_ctx *ctx, const int *fds, const int *readers, size_t n,
                            const char *what)
{
	uint32_t *streams = calloc(n, sizeof(*streams));
	struct case_answer *answers = calloc(n, sizeof(*answers));
	bool *got = calloc(n, sizeof(*got)), frozen;
	enum conf_result result;
	struct wire w;

	if (!streams || !answers || !got) {
		free(streams);
		free(answers);
		free(got);
		return conf_skip(ctx, "out of memory");
	}
	result = case_connect(ctx, &w);
	frozen = result == CONF_PASS && freeze(ctx);
	for (size_t i = 0; result == CONF_PASS && i < n; i++) {
		char tag[32];

		snprintf(tag, sizeof(tag), "call-%zu", i);
		streams[i] = send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_INSPECT, tag,
		                       fds[i] >= 0 ? &fds[i] : NULL, fds[i] >= 0, NULL);
		if (!streams[i])
			result = CONF_FAIL;
	}
	thaw(ctx, frozen);
	if (result == CONF_PASS)
		result = read_answers(ctx, &w, streams, n, answers, got);
	for (size_t i = 0; result == CONF_PASS && i < n; i++) {
		struct fdt_report report = {0};
		char tag[32];

		snprintf(tag, sizeof(tag), "call-%zu", i);
		result = expect_report(ctx, &answers[i], tag, fds[i] >= 0, &report, tag);
		if (result == CONF_PASS && fds[i] >= 0 &&
		    (ino_t)report.fds[0].ino != ino_of(readers[i]))
			result =
			    conf_fail(ctx, "%s got another FD than the one written with it", tag);
		fdt_report_free(&report);
	}
	if (result != CONF_PASS)
		reason_prefix(ctx, "%s%s", what,
		              frozen ? ", written while the server was stopped" : "");
	free_answers(answers, got, n);
	wire_close(&w);
	free(streams);
	free(answers);
	free(got);
	return result;
}

/*
 * Section 7.6's example: writes A, B + FD, C, D + FD queued before the
 * server reads, so that its reads return A and B with B's FD, then C and D
 * with D's FD.  Each request must get exactly its own FD.
 */
static enum conf_result
fd_merged_reads(struct conf_ctx *ctx)
{
	int readers[4] = {-1, -1, -1, -1}, writers[2], fds[4] = {-1, -1, -1, -1};
	enum conf_result result;

	if (case_pipes(&readers[1], writers, 1) < 0 ||
	    case_pipes(&readers[3], &writers[1], 1) < 0) {
		case_close_all(readers, 4);
		return conf_skip(ctx, "the harness cannot make pipes");
	}
	fds[1] = writers[0];
	fds[3] = writers[1];
	result = inspects_each_get_their_own(ctx, fds, readers, 4,
	                                     "four writes: A, B with an FD, C, D with an FD");
	case_close_all(writers, 2);
	case_close_all(readers, 4);
	return result;
}

/* 64 inspect calls in flight, each with its own pipe write end. */
static enum conf_result
fd_pipelined(struct conf_ctx *ctx)
{
	enum { CALLS = 64 };
	int readers[CALLS], writers[CALLS];
	enum conf_result result;

	if (case_pipes(readers, writers, CALLS) < 0)
		return conf_skip(ctx, "the harness cannot make %d pipes", CALLS);
	result = inspects_each_get_their_own(ctx, writers, readers, CALLS,
	                                     "64 pipelined inspect calls with one FD each");
	case_close_all(readers, CALLS);
	case_close_all(writers, CALLS);
	return result;
}

/* ==== 7.5 Claims ==== */

/* inspect with @sent pipe write ends and @claim: ERROR 0x204 (1, 6), the connection goes on. */
static enum conf_result
claim_fails(struct conf_ctx *ctx, struct wire *w, const int *fds, size_t sent,
            const struct rfd_fd_metadata *claim, const char *what)
{
	struct case_answer a;
	enum conf_result result;

	result = call(ctx, w, FDT_METHOD_INSPECT, "wrong", fds, sent, claim, &a);
	if (result != CONF_PASS)
		return reason_prefix(ctx, "%s", what);
	result = case_expect_rpc_error(ctx, &a, what, RFD_ERROR_INVALID,
	                               RFD_ERROR_CATEGORY_INVALID_REQUEST,
	                               RFD_ERROR_CODE_REQUEST_PARSING_FAILURE);
	case_answer_free(&a);
	return result;
}

/* The first of @readers still open, or -1. */
static int
first_open(const int *readers, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!case_closed_now(readers[i]))
			return (int)i;
	return -1;
}

/*
 * A claim that fails with the group it names removed and closed: @sent
 * pipe write ends claimed as @num at @seq_offset from the right sequence
 * number.  They are closed when the ERROR arrives; the connection serves on.
 */
static enum conf_result
claim_fails_closing(struct conf_ctx *ctx, size_t sent, int32_t num, int64_t seq_offset,
                    const char *what)
{
	int readers[4], writers[4], open_reader;
	struct rfd_fd_metadata claim;
	enum conf_result result;
	struct wire w;
	int baseline = case_fd_baseline(ctx);

	if (case_pipes(readers, writers, sent) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = case_connect(ctx, &w);
	claim = fd_claim(w.send_seq + seq_offset, num);
	if (result == CONF_PASS)
		result = claim_fails(ctx, &w, writers, sent, &claim, what);
	case_close_all(writers, sent);
	open_reader = first_open(readers, sent);
	if (result == CONF_PASS && open_reader >= 0)
		result = conf_fail(ctx,
		                   "%s: FD %d of that request was still open when the ERROR "
		                   "arrived",
		                   what, open_reader);
	if (result == CONF_PASS)
		result = usable(ctx, &w, "after");
	if (result != CONF_PASS && strncmp(ctx->reason, what, strlen(what)) != 0)
		reason_prefix(ctx, "after %s", what);
	wire_close(&w);
	if (result == CONF_PASS && !case_fd_settled(ctx, baseline, NULL))
		result = conf_fail(ctx, "the server's open FD count did not return to before");
	case_close_all(readers, sent);
	return result;
}

static enum conf_result
claim_more_than_claimed(struct conf_ctx *ctx)
{
	return claim_fails_closing(ctx, 2, 1, 0, "inspect with 2 FDs claiming numFds 1");
}

static enum conf_result
claim_fewer_than_claimed(struct conf_ctx *ctx)
{
	return claim_fails_closing(ctx, 1, 2, 0, "inspect with 1 FD claiming numFds 2");
}

static enum conf_result
claim_none_arrived(struct conf_ctx *ctx)
{
	return claim_fails_closing(ctx, 0, 1, 0, "inspect claiming 1 FD with none sent");
}

static enum conf_result
claim_seq_ahead(struct conf_ctx *ctx)
{
	return claim_fails_closing(ctx, 1, 1, 5, "inspect with 1 FD claiming fdSeqNum 5");
}

/*
 * A claim that fails without touching the queue: the pipe sent with it
 * stays queued, and a claim of its group takes it afterwards.
 */
static enum conf_result
claim_fails_keeping(struct conf_ctx *ctx, const struct rfd_fd_metadata *claim, const char *what)
{
	enum conf_result result;
	struct wire w;
	int reader, writer;

	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = claim_fails(ctx, &w, &writer, 1, claim, what);
	close(writer);
	if (result == CONF_PASS && case_closed_now(reader))
		result = conf_fail(ctx,
		                   "%s: the FD sent with it was closed, but such a claim leaves "
		                   "the FD queue untouched",
		                   what);
	if (result == CONF_PASS)
		result = take_queued(ctx, &w, 0, reader, what);
	if (result == CONF_PASS)
		result = usable(ctx, &w, "after");
	wire_close(&w);
	close(reader);
	return result;
}

static enum conf_result
claim_no_seq(struct conf_ctx *ctx)
{
	struct rfd_fd_metadata claim = fd_claim(0, 1);

	claim.has_seq = false;
	return claim_fails_keeping(ctx, &claim, "inspect with 1 FD, numFds 1 and no fdSeqNum");
}

static enum conf_result
claim_negative_seq(struct conf_ctx *ctx)
{
	struct rfd_fd_metadata claim = fd_claim(-1, 1);

	return claim_fails_keeping(ctx, &claim, "inspect with 1 FD claiming fdSeqNum -1");
}

static enum conf_result
claim_negative_count(struct conf_ctx *ctx)
{
	struct rfd_fd_metadata claim = fd_claim(0, -1);

	return claim_fails_keeping(ctx, &claim, "inspect with 1 FD claiming numFds -1");
}

static enum conf_result
claim_over_253(struct conf_ctx *ctx)
{
	struct rfd_fd_metadata claim = fd_claim(0, 254);

	return claim_fails_keeping(ctx, &claim, "inspect with 1 FD claiming numFds 254");
}

/* Queue {1: 1} after a first claim; a claim at 0 fails and leaves it; a claim at 1 takes it. */
static enum conf_result
claim_head_newer(struct conf_ctx *ctx)
{
	struct rfd_frame keepalive = {.type = RFD_FRAME_KEEPALIVE};
	struct rfd_fd_metadata stale = fd_claim(0, 1);
	enum conf_result result;
	struct wire w;
	int reader, writer;

	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = usable(ctx, &w, "first");
	if (result == CONF_PASS && wire_send_frame(&w, &keepalive, &writer, 1) < 0)
		result = conf_fail(ctx, "cannot send a KEEPALIVE");
	close(writer);
	if (result == CONF_PASS)
		result = claim_fails(ctx, &w, NULL, 0, &stale,
		                     "inspect claiming fdSeqNum 0, already taken, with {1: 1} "
		                     "queued");
	if (result == CONF_PASS && case_closed_now(reader))
		result =
		    conf_fail(ctx, "a claim at fdSeqNum 0 closed the group at 1, which is newer: "
		                   "a failed claim leaves newer groups queued");
	if (result == CONF_PASS)
		result = take_queued(ctx, &w, 1, reader, "after a claim of fdSeqNum 0 failed");
	wire_close(&w);
	close(reader);
	return result;
}

/* Queue {0: 3}; a claim of 1 FD at 1 fails and closes the group, which starts before 1. */
static enum conf_result
claim_group_starts_before(struct conf_ctx *ctx)
{
	struct rfd_frame keepalive = {.type = RFD_FRAME_KEEPALIVE};
	struct rfd_fd_metadata claim = fd_claim(1, 1);
	int readers[3], writers[3], open_reader;
	enum conf_result result;
	struct wire w;

	if (case_pipes(readers, writers, 3) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = case_connect(ctx, &w);
	if (result == CONF_PASS && wire_send_frame(&w, &keepalive, writers, 3) < 0)
		result = conf_fail(ctx, "cannot send a KEEPALIVE");
	case_close_all(writers, 3);
	if (result == CONF_PASS)
		result = claim_fails(ctx, &w, NULL, 0, &claim,
		                     "inspect claiming 1 FD at fdSeqNum 1 with {0: 3} queued");
	open_reader = first_open(readers, 3);
	if (result == CONF_PASS && open_reader >= 0)
		result = conf_fail(ctx,
		                   "FD %d of the group at 0 was still open when the claim at 1 "
		                   "was answered: a group that starts before the claim is "
		                   "older than it, whatever its size",
		                   open_reader);
	if (result == CONF_PASS)
		result = usable(ctx, &w, "after");
	wire_close(&w);
	case_close_all(readers, 3);
	return result;
}

/* Queue {0: 1}; numFds 0 or absent takes nothing, whatever fdSeqNum says. */
static enum conf_result
claim_zero_takes_nothing(struct conf_ctx *ctx)
{
	struct rfd_frame keepalive = {.type = RFD_FRAME_KEEPALIVE};
	struct rfd_fd_metadata zero = fd_claim(7, 0), absent = fd_claim(0, 0);
	struct fdt_report report = {0};
	enum conf_result result;
	struct wire w;
	int reader, writer;

	absent.has_num = false;
	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	result = case_connect(ctx, &w);
	if (result == CONF_PASS && wire_send_frame(&w, &keepalive, &writer, 1) < 0)
		result = conf_fail(ctx, "cannot send a KEEPALIVE");
	close(writer);
	if (result == CONF_PASS)
		result = inspect(ctx, &w, "zero", NULL, 0, &zero, 0, &report);
	fdt_report_free(&report);
	if (result == CONF_PASS && case_closed_now(reader))
		result =
		    conf_fail(ctx, "inspect with numFds 0 and fdSeqNum 7 closed the queued FD");
	if (result == CONF_PASS)
		result = inspect(ctx, &w, "absent", NULL, 0, &absent, 0, &report);
	fdt_report_free(&report);
	if (result == CONF_PASS && case_closed_now(reader))
		result =
		    conf_fail(ctx, "inspect with fdSeqNum 0 and no numFds closed the queued FD");
	if (result == CONF_PASS)
		result = inspect(ctx, &w, "none", NULL, 0, NULL, 0, &report);
	fdt_report_free(&report);
	if (result == CONF_PASS)
		result = take_queued(ctx, &w, 0, reader, "after three claims of no FD");
	wire_close(&w);
	close(reader);
	return result;
}

/* Queue {0: 2}, {2: 1}: a claim of 1 at 2 takes the second group and closes the first. */
static enum conf_result
claim_takes_its_group(struct conf_ctx *ctx)
{
	struct rfd_frame keepalive = {.type = RFD_FRAME_KEEPALIVE};
	int readers[3], writers[3], open_reader;
	struct fdt_report report = {0};
	enum conf_result result;
	struct wire w;

	if (case_pipes(readers, writers, 3) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = case_connect(ctx, &w);
	if (result == CONF_PASS && wire_send_frame(&w, &keepalive, writers, 2) < 0)
		result = conf_fail(ctx, "cannot send a KEEPALIVE");
	if (result == CONF_PASS)
		result = inspect(ctx, &w, "third", &writers[2], 1, NULL, 1, &report);
	case_close_all(writers, 3);
	if (result == CONF_PASS && (ino_t)report.fds[0].ino != ino_of(readers[2]))
		result = conf_fail(ctx, "inspect claiming 1 FD at fdSeqNum 2 was not given the FD "
		                        "written with it");
	open_reader = first_open(readers, 3);
	if (result == CONF_PASS && open_reader >= 0)
		result =
		    conf_fail(ctx, "FD %d was still open when the report arrived (%s)", open_reader,
		              open_reader < 2 ? "an orphan of the group at 0" : "inspect's own FD");
	fdt_report_free(&report);
	wire_close(&w);
	case_close_all(readers, 3);
	return result;
}

/* ==== 8. Which frames carry FDs, 9. Orphans ==== */

/* FDs sent with a frame that carries none, then a request claiming the next sequence number. */
static enum conf_result
orphans_closed_at_next_claim(struct conf_ctx *ctx)
{
	static const struct ignored_frame keepalive[] = {
	    IGNORED("a KEEPALIVE", "\x00\x00\x0e\x00\x00\x00\x00\x0c\x00\x00\x00\x00\x00\x00\x00"
	                           "\x00\x00"),
	};

	return frames_ignored(ctx, keepalive, 1);
}

/* FDs then a partial frame, then the harness goes away: every FD is closed, the server lives on. */
static enum conf_result
peer_vanishes(struct conf_ctx *ctx, bool mid_frame)
{
	struct rfd_frame keepalive = {.type = RFD_FRAME_KEEPALIVE};
	struct rfd_fd_metadata claim = fd_claim(0, 3);
	struct request_md md = call_md(FDT_METHOD_INSPECT, KIND_RR, &claim);
	int readers[3], writers[3], open_reader;
	int baseline = case_fd_baseline(ctx);
	enum conf_result result;
	struct rfd_buf bytes;
	struct wire w;

	if (case_pipes(readers, writers, 3) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = case_connect(ctx, &w);
	rfd_buf_init(&bytes);
	put_call(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, FDT_METHOD_INSPECT, "gone", &md);
	if (result == CONF_PASS && mid_frame)
		wire_send(&w, bytes.data, bytes.len / 2, writers, 3);
	else if (result == CONF_PASS)
		wire_send_frame(&w, &keepalive, writers, 3);
	rfd_buf_free(&bytes);
	case_close_all(writers, 3);
	wire_close(&w);
	open_reader = result == CONF_PASS ? case_all_eof(ctx, readers, 3) : -1;
	if (open_reader >= 0)
		result = conf_fail(ctx, "FD %d, sent with %s, was still open after the client left",
		                   open_reader, mid_frame ? "half a request" : "a KEEPALIVE");
	case_close_all(readers, 3);
	if (result == CONF_PASS) {
		result = case_connect(ctx, &w);
		if (result == CONF_PASS)
			wire_close(&w);
		else
			reason_prefix(ctx, "the server no longer accepts connections");
	}
	if (result == CONF_PASS && !case_fd_settled(ctx, baseline, NULL))
		result = conf_fail(ctx, "the server's open FD count did not return to before");
	return result;
}

static enum conf_result
peer_vanishes_mid_frame(struct conf_ctx *ctx)
{
	return peer_vanishes(ctx, true);
}

static enum conf_result
peer_vanishes_after_fds(struct conf_ctx *ctx)
{
	return peer_vanishes(ctx, false);
}

/* ==== 10. Limits ==== */

/* Raise the target's RLIMIT_NOFILE to @want when the harness launched it. */
static enum conf_result
make_room(struct conf_ctx *ctx, rlim_t want, struct rlimit *saved, bool *raised)
{
	struct rlimit mine;
	int r;

	*raised = false;
	if (raise_nofile(0, want, &mine) < 0)
		conf_note(ctx, "the harness cannot raise its own RLIMIT_NOFILE to %llu",
		          (unsigned long long)want);
	if (ctx->target_pid <= 0)
		return CONF_PASS;
	r = raise_nofile(ctx->target_pid, want, saved);
	if (r == -EPERM)
		return conf_skip(ctx, "the server's hard RLIMIT_NOFILE is below %llu",
		                 (unsigned long long)want);
	if (r < 0)
		return conf_skip(ctx, "cannot raise the server's RLIMIT_NOFILE: %s", strerror(-r));
	*raised = true;
	return CONF_PASS;
}

/* @rounds KEEPALIVEs with 253 copies of a pipe write end each; false once the server closed. */
static bool
send_unclaimed(struct wire *w, int writer, int rounds)
{
	struct rfd_frame keepalive = {.type = RFD_FRAME_KEEPALIVE};
	int copies[253];

	for (size_t i = 0; i < 253; i++)
		copies[i] = writer;
	for (int round = 0; round < rounds; round++)
		if (wire_send_frame(w, &keepalive, copies, 253) < 0 || wire_wait_eof(w, 1))
			return false;
	return true;
}

static enum conf_result
limit_budget_at_least_2c(struct conf_ctx *ctx)
{
	struct fdt_report report = {0};
	enum conf_result result;
	struct rlimit saved;
	bool raised;
	struct wire w;
	int reader, writer, fd;

	result = make_room(ctx, 640, &saved, &raised);
	if (result != CONF_PASS)
		return result;
	if (wire_pipe(&reader, &writer) < 0) {
		result = conf_skip(ctx, "the harness cannot make a pipe");
		goto out;
	}
	result = case_connect(ctx, &w);
	if (result == CONF_PASS && !send_unclaimed(&w, writer, 2))
		result = conf_fail(ctx, "the server closed the connection while 506 FDs (2 x 253) "
		                        "were queued: its budget must be at least twice its cap");
	close(writer);
	if (result == CONF_PASS) {
		result = probe(ctx, &w);
		if (result != CONF_PASS)
			reason_prefix(ctx, "with 506 FDs queued");
	}
	if (result == CONF_PASS && case_closed_now(reader))
		result = conf_fail(ctx, "506 queued FDs were closed with no claim past them");
	fd = dev_null();
	if (result == CONF_PASS)
		result = inspect(ctx, &w, "after", &fd, 1, NULL, 1, &report);
	close(fd);
	if (result == CONF_PASS && !case_closed_now(reader))
		result =
		    conf_fail(ctx, "the 506 queued FDs were not closed when a claim at fdSeqNum "
		                   "506 passed them");
	fdt_report_free(&report);
	wire_close(&w);
	close(reader);
out:
	if (raised)
		prlimit(ctx->target_pid, RLIMIT_NOFILE, &saved, NULL);
	return result;
}

/*
 * FDs that no message claims, 253 at a time, 17 times (4301 > 4096): the
 * server bounds how many it holds and fails the connection.
 */
static enum conf_result
unclaimed_fds_are_bounded(struct conf_ctx *ctx)
{
	enum conf_result result;
	struct rlimit saved;
	bool raised, closed;
	struct wire w;
	int reader, writer, baseline;

	result = make_room(ctx, 4608, &saved, &raised);
	if (result != CONF_PASS)
		return result;
	baseline = case_fd_baseline(ctx);
	if (wire_pipe(&reader, &writer) < 0) {
		result = conf_skip(ctx, "the harness cannot make a pipe");
		goto out;
	}
	result = case_connect(ctx, &w);
	closed = result == CONF_PASS && !send_unclaimed(&w, writer, 17);
	close(writer);
	if (result == CONF_PASS && !closed && !closed_by_server(ctx, &w))
		result = conf_fail(ctx, "with 4301 unclaimed FDs (17 x 253) queued the connection "
		                        "is still open: the budget must not exceed 4096");
	wire_close(&w);
	if (result == CONF_PASS && !wire_expect_eof(reader, conf_wait_ms(ctx)))
		result =
		    conf_fail(ctx, "the unclaimed FDs were not all closed with the connection");
	if (result == CONF_PASS && !case_fd_settled(ctx, baseline, NULL))
		result = conf_fail(ctx, "the server's open FD count did not return to before");
	close(reader);
out:
	if (raised)
		prlimit(ctx->target_pid, RLIMIT_NOFILE, &saved, NULL);
	return result;
}

/* echo(@tag_len bytes of 'x') with one /dev/null FD, written as @type frames; the answer matches.
 */
static enum conf_result
big_echo(struct conf_ctx *ctx, struct wire *w, size_t tag_len, const struct rfd_buf *bytes,
         uint32_t stream, const char *what)
{
	struct case_answer a;
	enum conf_result result;
	const char *why = "";
	char *text = NULL;
	int fd = dev_null();

	if (wire_send(w, bytes->data, bytes->len, &fd, 1) < 0)
		result = conf_fail(ctx, "cannot send %s", what);
	else
		result = case_read_answer(ctx, w, stream, true, BIG_WAIT_MS, &a);
	if (result != CONF_PASS) {
		close(fd);
		return reason_prefix(ctx, "%s", what);
	}
	if (a.reply.type != RFD_FRAME_PAYLOAD)
		result =
		    conf_fail(ctx, "%s was answered with ERROR 0x%x", what, a.reply.error_code);
	else if (fdt_decode_string_result(a.reply.data.data, a.reply.data.len, &text, &why) < 0)
		result = conf_fail(ctx, "%s: the result does not decode: %s", what, why);
	else if (strlen(text) != tag_len || strspn(text, "x") != tag_len)
		result = conf_fail(ctx, "%s: the answer's %zu bytes are not the tag sent", what,
		                   strlen(text));
	else if (a.reply.fds.n != 1 || !a.reply.fds_matched ||
	         ino_of(a.reply.fds.fds[0]) != ino_of(fd))
		result = conf_fail(ctx, "%s: the FD sent with it did not come back", what);
	free(text);
	case_answer_free(&a);
	close(fd);
	return result;
}

/* The arguments {1: @tag_len bytes of 'x'} that make metadata and data @total bytes. */
static size_t
tag_for_total(size_t md_len, size_t total)
{
	return total - md_len - 6;
}

static enum conf_result
limit_max_frame(struct conf_ctx *ctx)
{
	struct rfd_fd_metadata claim = fd_claim(0, 1);
	struct request_md md = call_md(FDT_METHOD_ECHO, KIND_RR, &claim);
	struct rfd_buf meta, args, bytes;
	enum conf_result result;
	size_t tag_len;
	struct wire w;
	char *tag;

	rfd_buf_init(&meta);
	put_request_md(&meta, &md);
	tag_len = tag_for_total(meta.len, 0xFFFFFF - 9);
	tag = malloc(tag_len);
	if (!tag) {
		rfd_buf_free(&meta);
		return conf_skip(ctx, "out of memory");
	}
	memset(tag, 'x', tag_len);
	rfd_buf_init(&args);
	rfd_buf_init(&bytes);
	put_text_args(&args, tag, tag_len);
	free(tag);
	put_payload_frame(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, 0, &meta, args.data, args.len);
	rfd_buf_free(&args);
	rfd_buf_free(&meta);
	result = case_connect(ctx, &w);
	if (result == CONF_PASS && rfd_get_u24(bytes.data) != 0xFFFFFF)
		result = conf_fail(ctx, "the harness built a frame of length 0x%x",
		                   rfd_get_u24(bytes.data));
	if (result == CONF_PASS)
		result =
		    big_echo(ctx, &w, tag_len, &bytes, 1, "echo as one frame of length 16777215");
	rfd_buf_free(&bytes);
	wire_close(&w);
	return result;
}

/* The fragments of a message over several frames, as FRAME-8 describes them. */
static enum conf_result
check_fragments(struct conf_ctx *ctx, const struct case_answer *a, const char *what)
{
	if (a->n_frames < 2)
		return conf_fail(ctx, "%s: the answer of over 32 MiB came in one frame", what);
	if (!(a->first_flags & RFD_FLAG_FOLLOWS))
		return conf_fail(ctx, "%s: the first fragment lacks FOLLOWS", what);
	if ((a->flags & (RFD_FLAG_NEXT | RFD_FLAG_COMPLETE)) != (RFD_FLAG_NEXT | RFD_FLAG_COMPLETE))
		return conf_fail(ctx, "%s: the last fragment lacks NEXT or COMPLETE (flags 0x%03x)",
		                 what, a->flags);
	if (a->interleaved)
		return conf_fail(ctx,
		                 "%s: a frame of another stream came between the answer's "
		                 "fragments",
		                 what);
	return CONF_PASS;
}

/*
 * echo with a 32 MiB message (metadata + data) in fragments and 1 FD, and a
 * small echo right behind it: the answer comes back in fragments, written
 * back to back.
 */
static enum conf_result
limit_32mib_message(struct conf_ctx *ctx)
{
	enum { MAX_FRAGMENTS = 4 };
	struct rfd_fd_metadata claim = fd_claim(0, 1);
	struct request_md md = call_md(FDT_METHOD_ECHO, KIND_RR, &claim);
	struct rfd_buf meta, args, bytes;
	struct case_answer big, small;
	bool got[2] = {false, false};
	size_t tag_len, ends[MAX_FRAGMENTS];
	enum conf_result result;
	uint32_t after;
	struct wire w;
	int fd = dev_null();
	char *tag;

	rfd_buf_init(&meta);
	put_request_md(&meta, &md);
	tag_len = tag_for_total(meta.len, 32 * MIB);
	tag = malloc(tag_len + 1);
	if (!tag || fd < 0) {
		free(tag);
		rfd_buf_free(&meta);
		if (fd >= 0)
			close(fd);
		return conf_skip(ctx, "out of memory or no /dev/null");
	}
	memset(tag, 'x', tag_len);
	tag[tag_len] = '\0';
	rfd_buf_init(&args);
	rfd_buf_init(&bytes);
	put_text_args(&args, tag, tag_len);
	put_fragments(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, &meta, args.data, args.len,
	              FRAGMENT_PAYLOAD, ends, MAX_FRAGMENTS);
	rfd_buf_free(&args);
	rfd_buf_free(&meta);
	result = case_connect(ctx, &w);
	w.next_stream = 3;
	if (result == CONF_PASS)
		result = send_bytes(ctx, &w, &bytes, &fd, 1, "echo of a 32 MiB message");
	rfd_buf_free(&bytes);
	after = result == CONF_PASS ? send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE,
	                                        FDT_METHOD_ECHO, "after", NULL, 0, NULL)
	                            : 0;
	if (result == CONF_PASS && !after)
		result = CONF_FAIL;
	for (int k = 0; result == CONF_PASS && k < 2; k++) {
		struct case_answer a;

		result = case_read_answer(ctx, &w, CASE_ANY_STREAM, false, BIG_WAIT_MS, &a);
		if (result != CONF_PASS) {
			reason_prefix(ctx, "echo of a 32 MiB message in 2 fragments, then "
			                   "echo(\"after\")");
		} else if ((a.stream_id != 1 && a.stream_id != after) ||
		           got[a.stream_id == after]) {
			result = conf_fail(ctx, "an unexpected answer arrived on stream %u",
			                   a.stream_id);
			case_answer_free(&a);
		} else {
			got[a.stream_id == after] = true;
			*(a.stream_id == after ? &small : &big) = a;
		}
	}
	if (result == CONF_PASS)
		result = expect_string(ctx, &big, tag, "echo of a 32 MiB message");
	if (result == CONF_PASS)
		result = check_fragments(ctx, &big, "echo of a 32 MiB message");
	if (result == CONF_PASS && (big.reply.fds.n != 1 || !big.reply.fds_matched ||
	                            ino_of(big.reply.fds.fds[0]) != ino_of(fd)))
		result = conf_fail(ctx, "the FD of the 32 MiB echo did not come back with it");
	if (result == CONF_PASS)
		result = expect_string(ctx, &small, "after", "the echo sent after the 32 MiB one");
	if (got[0])
		case_answer_free(&big);
	if (got[1])
		case_answer_free(&small);
	wire_close(&w);
	free(tag);
	close(fd);
	return result;
}

/* A message growing past 64 MiB, never finished: the connection must fail. */
static enum conf_result
limit_message_over_64mib(struct conf_ctx *ctx)
{
	struct request_md md = call_md(FDT_METHOD_ECHO, KIND_RR, NULL);
	struct rfd_buf meta, bytes;
	enum conf_result result;
	size_t sent = 0, piece = 16 * MIB;
	uint8_t *data = calloc(1, piece);
	bool gone = false;
	struct wire w;

	if (!data)
		return conf_skip(ctx, "out of memory");
	memset(data, 'x', piece);
	rfd_buf_init(&meta);
	rfd_buf_init(&bytes);
	put_request_md(&meta, &md);
	result = case_connect(ctx, &w);
	for (int i = 0; result == CONF_PASS && !gone && sent <= 65 * (size_t)MIB; i++) {
		size_t take = i == 4 ? MIB : piece;

		bytes.len = 0;
		put_payload_frame(&bytes, i == 0 ? RFD_FRAME_REQUEST_RESPONSE : RFD_FRAME_PAYLOAD,
		                  1, RFD_FLAG_FOLLOWS | (i ? RFD_FLAG_NEXT : 0),
		                  i == 0 ? &meta : NULL, data, take);
		gone = wire_send(&w, bytes.data, bytes.len, NULL, 0) < 0 || wire_wait_eof(&w, 1);
		sent += take + (i == 0 ? meta.len : 0);
	}
	if (result == CONF_PASS && !gone && !closed_by_server(ctx, &w))
		result = conf_fail(ctx,
		                   "a message of %zu bytes is still being accepted: it must be "
		                   "refused beyond the maximum message size, which should be at "
		                   "most 64 MiB",
		                   sent);
	wire_close(&w);
	rfd_buf_free(&meta);
	rfd_buf_free(&bytes);
	free(data);
	return result;
}

/* ==== 11. Errors ==== */

/*
 * The server at its FD limit: of 5 FDs only 2 can be installed and the
 * kernel reports MSG_CTRUNC.  The server closes what arrived and the
 * connection; another connection is unaffected.
 */
static enum conf_result
ctrunc_fails_connection(struct conf_ctx *ctx)
{
	int readers[5], writers[5], open_reader;
	enum conf_result result;
	struct wire victim, bystander;
	struct rlimit saved;
	uint32_t stream;
	int r;

	if (case_pipes(readers, writers, 5) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = case_connect(ctx, &bystander);
	if (result != CONF_PASS)
		goto out;
	result = case_connect(ctx, &victim);
	if (result != CONF_PASS) {
		wire_close(&bystander);
		goto out;
	}
	r = target_limit_fds(ctx->target_pid, 2, &saved);
	if (r < 0) {
		result =
		    conf_skip(ctx, "cannot lower the target's RLIMIT_NOFILE: %s", strerror(-r));
		goto out_wires;
	}
	stream = send_call(ctx, &victim, RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_INSPECT,
	                   "truncated", writers, 5, NULL);
	case_close_all(writers, 5);
	if (!stream)
		result = CONF_FAIL;
	if (result == CONF_PASS && !closed_by_server(ctx, &victim))
		result = conf_fail(ctx, "the connection that lost FDs (MSG_CTRUNC) was not closed");
	target_restore_fds(ctx->target_pid, &saved);
	open_reader = result == CONF_PASS ? case_all_eof(ctx, readers, 5) : -1;
	if (open_reader >= 0)
		result = conf_fail(ctx, "FD %d, which arrived before the truncation, was kept",
		                   open_reader);
	if (result == CONF_PASS)
		result = others_unaffected(ctx, &bystander);
out_wires:
	wire_close(&victim);
	wire_close(&bystander);
out:
	case_close_all(readers, 5);
	case_close_all(writers, 5);
	return result;
}

/*
 * The harness refuses FDs (SO_PASSRIGHTS = 0) and calls echo with one: the
 * answer cannot be sent.  The server must fail the connection, not send the
 * answer without its FD, and close its copy.
 */
static enum conf_result
passrights_refused(struct conf_ctx *ctx)
{
	enum conf_result result;
	struct wire w, bystander;
	struct rfd_frame frame;
	int reader, writer, off = 0;
	uint32_t stream;

	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	result = case_connect(ctx, &bystander);
	if (result != CONF_PASS) {
		close(reader);
		close(writer);
		return result;
	}
	result = case_connect(ctx, &w);
	if (result == CONF_PASS &&
	    setsockopt(w.sock, SOL_SOCKET, SO_PASSRIGHTS, &off, sizeof(off)) < 0)
		result =
		    conf_skip(ctx, "this kernel has no SO_PASSRIGHTS (Linux 6.16 and later): %s",
		              strerror(errno));
	stream = result == CONF_PASS ? send_call(ctx, &w, RFD_FRAME_REQUEST_RESPONSE,
	                                         FDT_METHOD_ECHO, "refused", &writer, 1, NULL)
	                             : 0;
	close(writer);
	if (result == CONF_PASS && !stream)
		result = CONF_FAIL;
	while (result == CONF_PASS) {
		int r = wire_read_frame(&w, &frame, conf_wait_ms(ctx));

		if (r == 0)
			break;
		if (r < 0)
			result = conf_fail(ctx,
			                   "the connection whose peer refuses FDs was neither "
			                   "answered nor closed (%s)",
			                   strerror(-r));
		else if (frame.stream_id == stream)
			result = conf_fail(ctx,
			                   "the echo whose FD the peer refuses was answered with "
			                   "%s: it must not be sent again without its FD",
			                   rfd_frame_type_name(frame.type));
	}
	wire_close(&w);
	if (result == CONF_PASS && !wire_expect_eof(reader, conf_wait_ms(ctx)))
		result = conf_fail(ctx, "the server kept the FD it could not send back");
	if (result == CONF_PASS)
		result = others_unaffected(ctx, &bystander);
	wire_close(&bystander);
	close(reader);
	return result;
}

/* record with a claim that fails: no answer, its FD closed, the connection kept. */
static enum conf_result
oneway_mismatch_silent(struct conf_ctx *ctx)
{
	struct rfd_fd_metadata claim = fd_claim(0, 3);
	enum conf_result result;
	struct wire w;
	int reader, writer;

	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	result = case_connect(ctx, &w);
	if (result == CONF_PASS && !send_call(ctx, &w, RFD_FRAME_REQUEST_FNF, FDT_METHOD_RECORD,
	                                      "wrong", &writer, 1, &claim))
		result = CONF_FAIL;
	close(writer);
	if (result == CONF_PASS && !wire_expect_eof(reader, conf_wait_ms(ctx)))
		result = conf_fail(ctx, "the FD of a record with 1 FD claiming 3 was never closed");
	if (result == CONF_PASS) {
		result = probe(ctx, &w);
		if (result != CONF_PASS)
			reason_prefix(ctx,
			              "after a record with 1 FD claiming 3, which gets no answer");
	}
	wire_close(&w);
	close(reader);
	return result;
}

/* A message cut short by EOF (SHUT_WR): never executed, its FDs closed, the connection closed. */
static enum conf_result
eof_mid_message(struct conf_ctx *ctx, bool in_frame)
{
	struct rfd_fd_metadata claim = fd_claim(0, 1);
	struct request_md md = call_md(FDT_METHOD_ECHO, KIND_RR, &claim);
	const char *what = in_frame ? "half of an echo frame" : "the first fragment of an echo";
	enum conf_result result;
	struct rfd_buf bytes, args;
	struct rfd_frame frame;
	struct wire w;
	int reader, writer;

	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	result = case_connect(ctx, &w);
	rfd_buf_init(&bytes);
	rfd_buf_init(&args);
	put_text_args(&args, "truncated", 9);
	put_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, 1, in_frame ? 0 : RFD_FLAG_FOLLOWS, &md,
	            args.data, args.len);
	if (in_frame)
		bytes.len /= 2;
	if (result == CONF_PASS)
		result = send_bytes(ctx, &w, &bytes, &writer, 1, what);
	rfd_buf_free(&bytes);
	rfd_buf_free(&args);
	close(writer);
	if (result == CONF_PASS)
		shutdown(w.sock, SHUT_WR);
	while (result == CONF_PASS) {
		int r = wire_read_frame(&w, &frame, conf_wait_ms(ctx));

		if (r == 0)
			break;
		if (r < 0)
			result =
			    conf_fail(ctx, "after %s and EOF the connection was not closed (%s)",
			              what, strerror(-r));
		else if (frame.stream_id == 1)
			result = conf_fail(ctx,
			                   "after %s and EOF the server answered the partial "
			                   "message with %s: it must be discarded",
			                   what, rfd_frame_type_name(frame.type));
	}
	wire_close(&w);
	if (result == CONF_PASS && !wire_expect_eof(reader, conf_wait_ms(ctx)))
		result = conf_fail(ctx, "the FD sent with %s was not closed at EOF", what);
	close(reader);
	return result;
}

static enum conf_result
eof_mid_frame(struct conf_ctx *ctx)
{
	return eof_mid_message(ctx, true);
}

static enum conf_result
eof_mid_fragments(struct conf_ctx *ctx)
{
	return eof_mid_message(ctx, false);
}

/* ==== 12. Ownership ==== */

/* echo with a pipe write end: once the harness closes the copy it got back, the pipe is closed. */
static enum conf_result
own_echo_keeps_no_copy(struct conf_ctx *ctx)
{
	enum conf_result result;
	struct case_answer a;
	struct wire w;
	int reader, writer;

	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = call(ctx, &w, FDT_METHOD_ECHO, "own", &writer, 1, NULL, &a);
	close(writer);
	if (result == CONF_PASS) {
		result = expect_string(ctx, &a, "own", "echo(\"own\") with a pipe write end");
		if (result == CONF_PASS && (a.reply.fds.n != 1 || !a.reply.fds_matched))
			result = conf_fail(ctx, "the echo did not send its FD back");
		case_answer_free(&a);
	}
	if (result == CONF_PASS && !wire_expect_eof(reader, conf_wait_ms(ctx)))
		result = conf_fail(ctx, "the harness closed the FD echo sent back, yet the pipe's "
		                        "write end is still open: the server kept a copy");
	wire_close(&w);
	close(reader);
	return result;
}

/* ==== 13. Close-on-exec ==== */

static enum conf_result
exec_server_fds_cloexec(struct conf_ctx *ctx)
{
	enum conf_result result;
	struct wire w1, w2;
	char path[64];
	struct dirent *e;
	int checked = 0;
	DIR *dir;

	result = case_connect(ctx, &w1);
	if (result != CONF_PASS)
		return result;
	result = case_connect(ctx, &w2);
	if (result != CONF_PASS) {
		wire_close(&w1);
		return result;
	}
	result = usable(ctx, &w1, "cloexec");
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)ctx->target_pid);
	dir = result == CONF_PASS ? opendir(path) : NULL;
	if (result == CONF_PASS && !dir)
		result = conf_skip(ctx, "cannot read %s: %s", path, strerror(errno));
	while (dir && result == CONF_PASS && (e = readdir(dir))) {
		char info[512], line[256], target[256] = "";
		unsigned long flags = 0;
		int fd = atoi(e->d_name);
		bool found = false;
		ssize_t n;
		FILE *f;

		if (e->d_name[0] == '.' || fd <= 2)
			continue;
		snprintf(info, sizeof(info), "%s/%s", path, e->d_name);
		f = fopen(info, "re");
		if (!f)
			continue;
		while (!found && fgets(line, sizeof(line), f))
			found = sscanf(line, "flags: %lo", &flags) == 1;
		fclose(f);
		snprintf(info, sizeof(info), "/proc/%d/fd/%d", (int)ctx->target_pid, fd);
		n = readlink(info, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		checked += found;
		if (found && !(flags & O_CLOEXEC))
			result = conf_fail(ctx,
			                   "the server's FD %d (%s) does not have close-on-exec "
			                   "(flags 0%lo)",
			                   fd, target, flags);
	}
	if (dir)
		closedir(dir);
	if (result == CONF_PASS && checked == 0)
		result = conf_fail(ctx, "no FD above 2 of the server could be checked in %s", path);
	else if (result == CONF_PASS)
		conf_note(ctx, "%d FDs of the server checked", checked);
	wire_close(&w1);
	wire_close(&w2);
	return result;
}

/* ==== 15. Peer credentials ==== */

static enum conf_result
cred_connections_released(struct conf_ctx *ctx)
{
	enum { CONNECTIONS = 8 };
	struct wire w[CONNECTIONS];
	enum conf_result result = CONF_PASS;
	int baseline = case_fd_baseline(ctx), now = 0;
	size_t n = 0;

	for (; result == CONF_PASS && n < CONNECTIONS; n++) {
		result = case_connect(ctx, &w[n]);
		if (result != CONF_PASS)
			break;
		result = usable(ctx, &w[n], "cred");
	}
	for (size_t i = 0; i < n; i++)
		wire_close(&w[i]);
	if (result == CONF_PASS && !case_fd_settled(ctx, baseline, &now))
		result = conf_fail(ctx,
		                   "after 8 connections closed the server holds %d FDs, %d before: "
		                   "something of each connection (its pidfd?) stays open",
		                   now, baseline);
	return result;
}

/* Whether this kernel has SO_PEERPIDFD (Linux 6.5), tried on a socket pair of the harness's own. */
static bool
kernel_has_peer_pidfd(void)
{
	int pair[2], fd = -1;
	socklen_t len = sizeof(fd);
	bool has;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
		return false;
	has = getsockopt(pair[0], SOL_SOCKET, SO_PEERPIDFD, &fd, &len) == 0;
	if (fd >= 0)
		close(fd);
	close(pair[0]);
	close(pair[1]);
	return has;
}

/* whoami on @w with @fds: the PeerInfo it answered, which carries no FD (CRED-14). */
static enum conf_result
whoami(struct conf_ctx *ctx, struct wire *w, const int *fds, size_t n_fds,
       struct fdt_peer_info *info)
{
	enum conf_result result;
	struct case_answer a;
	const char *why = "";

	result = call(ctx, w, FDT_METHOD_WHOAMI, NULL, fds, n_fds, NULL, &a);
	if (result != CONF_PASS)
		return reason_prefix(ctx, "whoami()");
	result = expect_success_shape(ctx, &a, "whoami()");
	if (result == CONF_PASS &&
	    (a.stray_fds ||
	     (a.reply.md.fd.present && a.reply.md.fd.has_num && a.reply.md.fd.num_fds != 0)))
		result = conf_fail(ctx, "whoami's answer carries FDs");
	if (result == CONF_PASS &&
	    fdt_decode_peer_info_result(a.reply.data.data, a.reply.data.len, info, &why) < 0)
		result = conf_fail(ctx, "whoami's result is not {0: PeerInfo}: %s", why);
	case_answer_free(&a);
	return result;
}

/* @info names the process @pid with this process's uid and gid. */
static enum conf_result
expect_peer(struct conf_ctx *ctx, const struct fdt_peer_info *info, pid_t pid, const char *who)
{
	if (info->pid != pid || info->uid != (int32_t)getuid() || info->gid != (int32_t)getgid())
		return conf_fail(ctx,
		                 "whoami answered pid %d uid %d gid %d, expected %s: pid %d uid %d "
		                 "gid %d",
		                 (int)info->pid, (int)info->uid, (int)info->gid, who, (int)pid,
		                 (int)getuid(), (int)getgid());
	return CONF_PASS;
}

/* whoami, twice, with a pipe's write end the first time: the harness's own credentials. */
static enum conf_result
cred_whoami(struct conf_ctx *ctx)
{
	struct fdt_peer_info info;
	enum conf_result result;
	int reader = -1, writer = -1;
	struct wire w;

	if (wire_pipe(&reader, &writer) < 0)
		return conf_skip(ctx, "the harness cannot make a pipe");
	result = case_connect(ctx, &w);
	if (result != CONF_PASS) {
		close(reader);
		close(writer);
		return result;
	}
	result = whoami(ctx, &w, &writer, 1, &info);
	close(writer);
	if (result == CONF_PASS)
		result = expect_peer(ctx, &info, getpid(), "the harness");
	if (result == CONF_PASS && !case_closed_now(reader))
		result =
		    conf_fail(ctx, "whoami did not close the FD sent with it before answering");
	if (result == CONF_PASS)
		result = whoami(ctx, &w, NULL, 0, &info);
	if (result == CONF_PASS)
		result = expect_peer(ctx, &info, getpid(), "the harness, again");
	close(reader);
	wire_close(&w);
	return result;
}

/* A socket a child process connects to the server and hands over before it exits; -1 on failure. */
static int
connect_in_child(struct conf_ctx *ctx, pid_t *child)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct rfd_cmsg_result control;
	int pair[2], status = 0, sock = -1;
	const char *why = NULL;
	uint8_t byte;
	ssize_t n;

	if (strlen(ctx->socket_path) >= sizeof(addr.sun_path) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
		return -1;
	memcpy(addr.sun_path, ctx->socket_path, strlen(ctx->socket_path));
	*child = fork();
	if (*child == 0) {
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		close(pair[0]);
		if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0)
			_exit(1);
		_exit(rfd_sock_send(pair[1], (const uint8_t *)"s", 1, &s, 1) == 1 ? 0 : 2);
	}
	close(pair[1]);
	if (*child < 0) {
		close(pair[0]);
		return -1;
	}
	/* The socket waits in the pair once the child has exited. */
	if (waitpid(*child, &status, 0) != *child || !WIFEXITED(status) || WEXITSTATUS(status)) {
		close(pair[0]);
		return -1;
	}
	n = rfd_sock_recv(pair[0], &byte, 1, 0, &control, &why);
	close(pair[0]);
	if (n == 1 && control.n_fds == 1)
		sock = control.fds[0];
	else if (n >= 0)
		for (size_t i = 0; i < control.n_fds; i++)
			close(control.fds[i]);
	return sock;
}

/*
 * A connection made by a child that exited at once, and one of the
 * harness's own, whoami on each in turn: each answers its connecting
 * process, not the harness that writes the requests.
 */
static enum conf_result
cred_snapshot_of_connector(struct conf_ctx *ctx)
{
	struct fdt_peer_info info;
	enum conf_result result;
	struct wire theirs, ours;
	pid_t child = -1;
	int sock, r;

	sock = connect_in_child(ctx, &child);
	if (sock < 0)
		return conf_skip(
		    ctx, "a child of the harness could not connect and hand over its socket");
	wire_adopt(&theirs, ctx, sock);
	r = wire_handshake(&theirs);
	if (r < 0) {
		wire_close(&theirs);
		return conf_fail(ctx, "SETUP was not answered with a setup response (%s)",
		                 strerror(-r));
	}
	result = case_connect(ctx, &ours);
	if (result != CONF_PASS) {
		wire_close(&theirs);
		return result;
	}
	result = whoami(ctx, &theirs, NULL, 0, &info);
	if (result == CONF_PASS)
		result = expect_peer(ctx, &info, child, "the child that connected");
	if (result == CONF_PASS)
		result = whoami(ctx, &ours, NULL, 0, &info);
	if (result == CONF_PASS)
		result = expect_peer(ctx, &info, getpid(), "the harness, on its own connection");
	if (result == CONF_PASS)
		result = whoami(ctx, &theirs, NULL, 0, &info);
	if (result == CONF_PASS)
		result = expect_peer(ctx, &info, child, "the child that connected, again");
	wire_close(&theirs);
	wire_close(&ours);
	return result;
}

/* Where the kernel has SO_PEERPIDFD, the server takes the pidfd with it: pidPinned. */
static enum conf_result
cred_pid_pinned(struct conf_ctx *ctx)
{
	struct fdt_peer_info info;
	enum conf_result result;
	struct wire w;

	if (!kernel_has_peer_pidfd())
		return conf_skip(ctx, "this kernel has no SO_PEERPIDFD (Linux 6.5)");
	result = case_connect(ctx, &w);
	if (result != CONF_PASS)
		return result;
	result = whoami(ctx, &w, NULL, 0, &info);
	if (result == CONF_PASS && !info.pid_pinned)
		result = conf_fail(ctx, "whoami says pidPinned false although the kernel has "
		                        "SO_PEERPIDFD");
	wire_close(&w);
	return result;
}

/* An FD of the server's that is a pidfd of @pid (its fdinfo's "Pid:" line); the FD, or -1. */
static int
find_pidfd_of(pid_t target, pid_t pid)
{
	char path[64], line[128], want[32];
	struct dirent *e;
	int found = -1;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)target);
	snprintf(want, sizeof(want), "Pid:\t%d\n", (int)pid);
	dir = opendir(path);
	while (dir && found < 0 && (e = readdir(dir))) {
		char info[320];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(info, sizeof(info), "%s/%s", path, e->d_name);
		f = fopen(info, "re");
		while (f && found < 0 && fgets(line, sizeof(line), f))
			if (strcmp(line, want) == 0)
				found = atoi(e->d_name);
		if (f)
			fclose(f);
	}
	if (dir)
		closedir(dir);
	return found;
}

/*
 * pidPinned true only with a pidfd taken by SO_PEERPIDFD: never on a kernel
 * without it, and otherwise only while the server holds a pidfd of the
 * harness.
 */
static enum conf_result
cred_pinned_means_pidfd(struct conf_ctx *ctx)
{
	struct fdt_peer_info info;
	enum conf_result result;
	bool has = kernel_has_peer_pidfd();
	int fd;
	struct wire w;

	result = case_connect(ctx, &w);
	if (result != CONF_PASS)
		return result;
	result = whoami(ctx, &w, NULL, 0, &info);
	if (result == CONF_PASS && info.pid_pinned && !has)
		result = conf_fail(ctx, "whoami says pidPinned true on a kernel without "
		                        "SO_PEERPIDFD");
	if (result == CONF_PASS && info.pid_pinned) {
		fd = find_pidfd_of(ctx->target_pid, getpid());
		if (fd < 0)
			result =
			    conf_fail(ctx, "whoami says pidPinned true, but the server holds no "
			                   "pidfd of the harness (no \"Pid:\" line of its fdinfo "
			                   "names it)");
		else
			conf_note(ctx, "the server's FD %d is a pidfd of the harness", fd);
	} else if (result == CONF_PASS) {
		conf_note(ctx, "pidPinned false%s",
		          has ? " although the kernel has SO_PEERPIDFD" : "");
	}
	wire_close(&w);
	return result;
}

/* ==== 17.3 inspect, echo, record, lastRecorded ==== */

/* Five kinds of FD, each described exactly as the harness sees the same open file. */
static enum conf_result
svc_inspect_report(struct conf_ctx *ctx)
{
	enum { N = 5 };
	int fds[N] = {-1, -1, -1, -1, -1}, pair[2] = {-1, -1}, reader = -1;
	struct fdt_report report = {0};
	enum conf_result result = CONF_PASS;
	char path[256];
	struct wire w;

	snprintf(path, sizeof(path), "%s/hello.txt", ctx->root_dir);
	if (wire_pipe(&reader, &fds[0]) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
		result = conf_skip(ctx, "the harness cannot make a pipe and a socket pair");
	fds[1] = dev_null();
	fds[2] = open(path, O_RDONLY | O_APPEND | O_CLOEXEC);
	fds[3] = open(ctx->root_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fds[4] = pair[0];
	if (result == CONF_PASS && (fds[1] < 0 || fds[2] < 0 || fds[3] < 0))
		result = conf_skip(ctx, "the harness cannot open /dev/null, hello.txt or the root");
	if (result == CONF_PASS)
		result = case_connect(ctx, &w);
	if (result != CONF_PASS) {
		case_close_all(fds, N);
		if (pair[1] >= 0)
			close(pair[1]);
		if (reader >= 0)
			close(reader);
		return result;
	}
	result = inspect(ctx, &w, "five kinds", fds, N, NULL, N, &report);
	for (size_t i = 0; result == CONF_PASS && i < N; i++) {
		const struct fdt_fdinfo *info = &report.fds[i];
		struct stat st;
		int flags = fcntl(fds[i], F_GETFL);

		fstat(fds[i], &st);
		if (info->dev != (int64_t)st.st_dev || info->ino != (int64_t)st.st_ino)
			result = conf_fail(ctx,
			                   "FdInfo %zu: dev %lld ino %lld, but the FD sent has dev "
			                   "%lld ino %lld (FDs must be listed in the order "
			                   "received)",
			                   i, (long long)info->dev, (long long)info->ino,
			                   (long long)st.st_dev, (long long)st.st_ino);
		else if (info->type != (int32_t)(st.st_mode & S_IFMT))
			result = conf_fail(ctx, "FdInfo %zu: type 0x%x, expected 0x%x", i,
			                   (unsigned)info->type, (unsigned)(st.st_mode & S_IFMT));
		else if (info->flags != flags)
			result = conf_fail(ctx,
			                   "FdInfo %zu: flags 0x%x, but F_GETFL of the same open "
			                   "file gives 0x%x",
			                   i, (unsigned)info->flags, (unsigned)flags);
		else if (!info->cloexec)
			result = conf_fail(ctx,
			                   "FdInfo %zu: cloexec is false: received FDs have "
			                   "FD_CLOEXEC",
			                   i);
	}
	case_close_all(fds, N);
	if (result == CONF_PASS && !case_closed_now(reader))
		result = conf_fail(ctx, "the pipe sent to inspect was still open when it answered");
	if (result == CONF_PASS && recv(pair[1], path, 1, MSG_DONTWAIT) != 0)
		result =
		    conf_fail(ctx, "the socket sent to inspect was still open when it answered");
	fdt_report_free(&report);
	wire_close(&w);
	close(pair[1]);
	close(reader);
	return result;
}

/* echo with @n FDs: the same open files come back, in order, numbered by the server's counter. */
static enum conf_result
echo_fds_checked(struct conf_ctx *ctx, struct wire *w, const int *fds, size_t n,
                 int64_t expected_seq)
{
	const struct rfd_fd_metadata *md;
	enum conf_result result;
	struct case_answer a;

	result = call(ctx, w, FDT_METHOD_ECHO, "back", fds, n, NULL, &a);
	if (result != CONF_PASS)
		return result;
	md = &a.reply.md.fd;
	result = expect_string(ctx, &a, "back", "echo with FDs");
	if (result != CONF_PASS) {
	} else if (!md->present || !md->has_num || md->num_fds != (int32_t)n) {
		result = conf_fail(ctx, "the answer's fdMetadata claims %d FDs, not %zu",
		                   md->present && md->has_num ? md->num_fds : -1, n);
	} else if (!md->has_seq || md->fd_seq != expected_seq) {
		result =
		    conf_fail(ctx, "the answer's fdSeqNum is %lld, expected %lld",
		              (long long)(md->has_seq ? md->fd_seq : -1), (long long)expected_seq);
	} else if (!a.reply.fds_matched) {
		result = conf_fail(ctx, "the FDs that arrived are not one group of %zu at %lld", n,
		                   (long long)expected_seq);
	}
	for (size_t i = 0; result == CONF_PASS && i < n; i++) {
		int back = a.reply.fds.fds[i];
		int mine = fcntl(fds[i], F_GETFL);

		if (ino_of(back) != ino_of(fds[i]))
			result = conf_fail(ctx, "FD %zu came back as another file", i);
		else if (fcntl(back, F_SETFL, fcntl(back, F_GETFL) ^ O_NONBLOCK) < 0 ||
		         fcntl(fds[i], F_GETFL) == mine)
			result = conf_fail(ctx,
			                   "FD %zu came back as another open file description of "
			                   "the same file",
			                   i);
		fcntl(fds[i], F_SETFL, mine);
	}
	case_answer_free(&a);
	return result;
}

static enum conf_result
svc_echo_fds(struct conf_ctx *ctx)
{
	int readers[3], writers[3], fds[3] = {-1, -1, -1};
	enum conf_result result;
	struct wire w;

	if (case_pipes(readers, writers, 3) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	fds[0] = dev_null();
	fds[1] = writers[0];
	fds[2] = writers[1];
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = echo_fds_checked(ctx, &w, fds, 2, 0);
	if (result == CONF_PASS)
		result = echo_fds_checked(ctx, &w, &writers[2], 1, 2);
	if (result == CONF_PASS)
		result = echo_fds_checked(ctx, &w, fds, 3, 3);
	wire_close(&w);
	close(fds[0]);
	case_close_all(readers, 3);
	case_close_all(writers, 3);
	return result;
}

/* The success result {0: string} of @a holds exactly @len bytes of @text (NUL bytes included). */
static bool
result_bytes_are(const struct case_answer *a, const void *text, size_t len)
{
	struct rfd_slice got = {NULL, 0};
	struct rfd_cr r;
	struct rfd_cr_field f;
	bool found = false;
	int ret;

	if (a->reply.type != RFD_FRAME_PAYLOAD || a->reply.md.payload_kind != RFD_PAYLOAD_RESPONSE)
		return false;
	rfd_cr_init(&r, a->reply.data.data, a->reply.data.len);
	ret = rfd_cr_struct_begin(&r);
	while (ret >= 0 && (ret = rfd_cr_field(&r, &f)) > 0) {
		if (f.id == 0 && f.type == RFD_CT_BINARY) {
			ret = rfd_cr_binary(&r, &got);
			found = ret >= 0;
		} else {
			ret = rfd_cr_skip_field(&r, &f);
		}
	}
	if (ret == 0)
		ret = rfd_cr_finish(&r);
	return ret == 0 && found && got.len == len && (len == 0 || memcmp(got.ptr, text, len) == 0);
}

/* SVC-4 with a tag that holds NUL bytes and bytes that are not UTF-8 (17.1, 6.1). */
static enum conf_result
echo_binary_tag(struct conf_ctx *ctx, struct wire *w)
{
	static const char tag[] = "nul\x00in\xff\xfe\x00tag";
	struct request_md md = call_md(FDT_METHOD_ECHO, KIND_RR, NULL);
	enum conf_result result;
	struct rfd_buf bytes, args;
	struct case_answer a;
	uint32_t stream = wire_stream_id(w);

	rfd_buf_init(&bytes);
	rfd_buf_init(&args);
	put_text_args(&args, tag, sizeof(tag) - 1);
	put_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, stream, 0, &md, args.data, args.len);
	result = send_bytes(ctx, w, &bytes, NULL, 0, "echo of a tag holding NUL bytes");
	rfd_buf_free(&bytes);
	rfd_buf_free(&args);
	if (result == CONF_PASS)
		result = case_read_answer(ctx, w, stream, true, conf_wait_ms(ctx), &a);
	if (result != CONF_PASS)
		return reason_prefix(ctx, "echo of a 15-byte tag holding NUL bytes and 0xff 0xfe");
	if (a.reply.type == RFD_FRAME_ERROR)
		result =
		    conf_fail(ctx,
		              "echo of a 15-byte tag holding NUL bytes and 0xff 0xfe was "
		              "refused with ERROR 0x%x: FdTest strings may hold any bytes (17.1)",
		              a.reply.error_code);
	else if (!result_bytes_are(&a, tag, sizeof(tag) - 1))
		result = conf_fail(ctx, "echo of a 15-byte tag holding NUL bytes and 0xff 0xfe did "
		                        "not answer those 15 bytes unchanged");
	case_answer_free(&a);
	return result;
}

static enum conf_result
svc_echo_no_fds(struct conf_ctx *ctx)
{
	enum conf_result result;
	struct case_answer a;
	struct wire w;

	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = call(ctx, &w, FDT_METHOD_ECHO, "plain", NULL, 0, NULL, &a);
	if (result == CONF_PASS) {
		result = expect_string(ctx, &a, "plain", "echo(\"plain\")");
		if (result == CONF_PASS && a.reply.md.fd.present && a.reply.md.fd.has_num &&
		    a.reply.md.fd.num_fds != 0)
			result = conf_fail(ctx, "an answer without FDs claims numFds %d",
			                   a.reply.md.fd.num_fds);
		else if (result == CONF_PASS && a.stray_fds)
			result = conf_fail(ctx, "FDs arrived with an echo that received none");
		case_answer_free(&a);
	}
	if (result == CONF_PASS)
		result = echo_binary_tag(ctx, &w);
	wire_close(&w);
	return result;
}

/* No FD with the answers of inspect and lastRecorded, nor with open's failures. */
static enum conf_result
svc_answers_without_fds(struct conf_ctx *ctx)
{
	static const char *const failing[] = {"missing.txt", "fifo", "../outside.txt"};
	enum conf_result result;
	struct case_answer a;
	struct wire w;
	int fd = dev_null();

	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = call(ctx, &w, FDT_METHOD_INSPECT, "no-fds", &fd, 1, NULL, &a);
	if (result == CONF_PASS) {
		if (a.stray_fds ||
		    (a.reply.md.fd.present && a.reply.md.fd.has_num && a.reply.md.fd.num_fds != 0))
			result = conf_fail(ctx, "inspect's answer carries FDs");
		case_answer_free(&a);
	}
	if (result == CONF_PASS)
		result = call(ctx, &w, FDT_METHOD_LAST, NULL, &fd, 1, NULL, &a);
	if (result == CONF_PASS) {
		if (a.stray_fds ||
		    (a.reply.md.fd.present && a.reply.md.fd.has_num && a.reply.md.fd.num_fds != 0))
			result = conf_fail(ctx, "lastRecorded's answer carries FDs");
		case_answer_free(&a);
	}
	for (size_t i = 0; result == CONF_PASS && i < 3; i++) {
		result = call(ctx, &w, FDT_METHOD_OPEN, failing[i], &fd, 1, NULL, &a);
		if (result != CONF_PASS)
			break;
		if (a.stray_fds ||
		    (a.reply.md.fd.present && a.reply.md.fd.has_num && a.reply.md.fd.num_fds != 0))
			result =
			    conf_fail(ctx, "the failure of open(\"%s\") carries FDs", failing[i]);
		case_answer_free(&a);
	}
	close(fd);
	wire_close(&w);
	return result;
}

/* The exception answers of open carry no FD (FD-CARRY-2), even with FDs sent along. */
static enum conf_result
carry_no_fds_with_exceptions(struct conf_ctx *ctx)
{
	static const char *const failing[] = {"missing.txt", "sub", "escape"};
	enum conf_result result;
	struct case_answer a;
	struct wire w;
	int fd = dev_null();

	result = case_connect(ctx, &w);
	for (size_t i = 0; result == CONF_PASS && i < 3; i++) {
		result = call(ctx, &w, FDT_METHOD_OPEN, failing[i], &fd, 1, NULL, &a);
		if (result != CONF_PASS)
			break;
		if (a.reply.md.payload_kind == RFD_PAYLOAD_DECLARED_EXCEPTION &&
		    (a.stray_fds || a.reply.fds.n))
			result = conf_fail(ctx, "the exception answering open(\"%s\") carries FDs",
			                   failing[i]);
		case_answer_free(&a);
	}
	close(fd);
	wire_close(&w);
	return result;
}

/* record's report replaces the last; lastRecorded answers it; nothing answers record. */
static enum conf_result
svc_record(struct conf_ctx *ctx)
{
	int readers[3], writers[3], open_reader;
	enum conf_result result;
	struct wire w;

	if (case_pipes(readers, writers, 3) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = last_recorded_is(ctx, &w, "", 0, "before any record");
	if (result == CONF_PASS && (!send_call(ctx, &w, RFD_FRAME_REQUEST_FNF, FDT_METHOD_RECORD,
	                                       "first", writers, 2, NULL) ||
	                            !send_call(ctx, &w, RFD_FRAME_REQUEST_FNF, FDT_METHOD_RECORD,
	                                       "second", &writers[2], 1, NULL)))
		result = CONF_FAIL;
	case_close_all(writers, 3);
	if (result == CONF_PASS)
		result = last_recorded_is(ctx, &w, "second", 1,
		                          "after record(\"first\", 2 FDs) and "
		                          "record(\"second\", 1 FD)");
	open_reader = result == CONF_PASS ? case_all_eof(ctx, readers, 3) : -1;
	if (open_reader >= 0)
		result = conf_fail(ctx, "FD %d given to record was never closed", open_reader);
	wire_close(&w);
	case_close_all(readers, 3);
	return result;
}

/* A record whose claim failed changes nothing. */
static enum conf_result
svc_record_failed_claim(struct conf_ctx *ctx)
{
	struct rfd_fd_metadata wrong;
	int readers[3], writers[3];
	enum conf_result result;
	struct wire w;

	if (case_pipes(readers, writers, 3) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = case_connect(ctx, &w);
	if (result == CONF_PASS &&
	    !send_call(ctx, &w, RFD_FRAME_REQUEST_FNF, FDT_METHOD_RECORD, "good", writers, 1, NULL))
		result = CONF_FAIL;
	wrong = fd_claim(w.send_seq, 1);
	if (result == CONF_PASS && !send_call(ctx, &w, RFD_FRAME_REQUEST_FNF, FDT_METHOD_RECORD,
	                                      "two-claiming-one", &writers[1], 2, &wrong))
		result = CONF_FAIL;
	wrong = fd_claim(w.send_seq + 4, 1);
	if (result == CONF_PASS && !send_call(ctx, &w, RFD_FRAME_REQUEST_FNF, FDT_METHOD_RECORD,
	                                      "seq-ahead", NULL, 0, &wrong))
		result = CONF_FAIL;
	case_close_all(writers, 3);
	if (result == CONF_PASS)
		result =
		    last_recorded_is(ctx, &w, "good", 1, "after two records whose claims failed");
	if (result == CONF_PASS && !wire_expect_eof(readers[1], conf_wait_ms(ctx)))
		result =
		    conf_fail(ctx, "the FDs of the record whose claim failed were never closed");
	wire_close(&w);
	case_close_all(readers, 3);
	return result;
}

static enum conf_result
svc_record_per_connection(struct conf_ctx *ctx)
{
	enum conf_result result;
	struct wire a, b;

	result = case_connect(ctx, &a);
	if (result != CONF_PASS)
		return result;
	result = case_connect(ctx, &b);
	if (result != CONF_PASS) {
		wire_close(&a);
		return result;
	}
	if (!send_call(ctx, &a, RFD_FRAME_REQUEST_FNF, FDT_METHOD_RECORD, "on-a", NULL, 0, NULL))
		result = CONF_FAIL;
	if (result == CONF_PASS)
		result = last_recorded_is(ctx, &a, "on-a", 0, "on connection A after its record");
	if (result == CONF_PASS)
		result = last_recorded_is(ctx, &b, "", 0, "on connection B after a record on A");
	if (result == CONF_PASS &&
	    !send_call(ctx, &b, RFD_FRAME_REQUEST_FNF, FDT_METHOD_RECORD, "on-b", NULL, 0, NULL))
		result = CONF_FAIL;
	if (result == CONF_PASS)
		result = last_recorded_is(ctx, &b, "on-b", 0, "on connection B after its record");
	if (result == CONF_PASS)
		result =
		    last_recorded_is(ctx, &a, "on-a", 0, "on connection A after a record on B");
	wire_close(&a);
	wire_close(&b);
	return result;
}

/* lastRecorded and open close the FDs sent with them before they answer. */
static enum conf_result
svc_other_methods_close_fds(struct conf_ctx *ctx)
{
	static const char *const paths[] = {"hello.txt", "missing.txt"};
	enum conf_result result;
	struct case_answer a;
	struct wire w;
	int reader, writer;

	result = case_connect(ctx, &w);
	for (size_t i = 0; result == CONF_PASS && i < 3; i++) {
		const char *method = i == 0 ? FDT_METHOD_LAST : FDT_METHOD_OPEN;

		if (wire_pipe(&reader, &writer) < 0) {
			result = conf_skip(ctx, "the harness cannot make a pipe");
			break;
		}
		result = call(ctx, &w, method, i == 0 ? NULL : paths[i - 1], &writer, 1, NULL, &a);
		close(writer);
		if (result == CONF_PASS) {
			if (!case_closed_now(reader))
				result = conf_fail(ctx,
				                   "%s%s%s%s was answered while the FD sent with "
				                   "it was still open",
				                   method, i ? "(\"" : "", i ? paths[i - 1] : "",
				                   i ? "\")" : "");
			case_answer_free(&a);
		}
		close(reader);
	}
	wire_close(&w);
	return result;
}

/* ==== 17.4 open ==== */

/* open(@path, @path_len bytes) on @w: the result, and the FD it brought (or -1). */
static enum conf_result
call_open(struct conf_ctx *ctx, struct wire *w, const char *path, size_t path_len,
          struct fdt_open_result *out, int *fd)
{
	struct request_md md = call_md(FDT_METHOD_OPEN, KIND_RR, NULL);
	struct rfd_buf bytes, args;
	enum conf_result result;
	struct case_answer a;
	const char *why = "";
	uint32_t stream = wire_stream_id(w);

	*fd = -1;
	rfd_buf_init(&bytes);
	rfd_buf_init(&args);
	put_text_args(&args, path, path_len);
	put_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, stream, 0, &md, args.data, args.len);
	result = send_bytes(ctx, w, &bytes, NULL, 0, "open");
	rfd_buf_free(&bytes);
	rfd_buf_free(&args);
	if (result == CONF_PASS)
		result = case_read_answer(ctx, w, stream, true, conf_wait_ms(ctx), &a);
	if (result != CONF_PASS)
		return reason_prefix(ctx, "open(\"%.60s\")", path);
	if (a.reply.type != RFD_FRAME_PAYLOAD)
		result = conf_fail(ctx, "open(\"%.60s\") got ERROR 0x%x, not a result", path,
		                   a.reply.error_code);
	else if (fdt_decode_open_result(a.reply.data.data, a.reply.data.len, out, &why) < 0)
		result = conf_fail(ctx, "open(\"%.60s\"): the result struct does not decode: %s",
		                   path, why);
	else if (!out->failed && a.reply.fds.n == 1 && a.reply.fds_matched)
		*fd = a.reply.fds.fds[0], a.reply.fds.n = 0;
	else if (!out->failed)
		result = conf_fail(ctx, "open(\"%.60s\") succeeded without exactly one FD", path);
	else if (a.reply.md.payload_kind != RFD_PAYLOAD_DECLARED_EXCEPTION)
		result = conf_fail(ctx,
		                   "open(\"%.60s\") failed, but not as the declared exception "
		                   "FdTestError",
		                   path);
	else if (a.reply.fds.n || a.stray_fds)
		result = conf_fail(ctx, "the failure of open(\"%.60s\") carries FDs", path);
	case_answer_free(&a);
	return result;
}

/* open(@path) succeeds with the file at root/@file: the path back, read-only at offset 0. */
static enum conf_result
open_succeeds(struct conf_ctx *ctx, struct wire *w, const char *path, const char *file)
{
	struct fdt_open_result opened = {0};
	enum conf_result result;
	char full[512];
	struct stat st;
	int fd;

	result = call_open(ctx, w, path, strlen(path), &opened, &fd);
	snprintf(full, sizeof(full), "%s/%s", ctx->root_dir, file);
	if (result == CONF_PASS && opened.failed)
		result = conf_fail(ctx, "open(\"%s\") failed: %s (errnum %d)", path,
		                   opened.error.message, opened.error.errnum);
	else if (result == CONF_PASS && strcmp(opened.path, path) != 0)
		result =
		    conf_fail(ctx, "open(\"%s\") answered the path \"%s\", not the one received",
		              path, opened.path);
	else if (result == CONF_PASS && (fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDONLY)
		result = conf_fail(ctx, "open(\"%s\") gave an FD that is not read-only", path);
	else if (result == CONF_PASS && lseek(fd, 0, SEEK_CUR) != 0)
		result = conf_fail(ctx, "open(\"%s\") gave an FD at offset %lld, not 0", path,
		                   (long long)lseek(fd, 0, SEEK_CUR));
	else if (result == CONF_PASS && (stat(full, &st) < 0 || st.st_ino != ino_of(fd)))
		result =
		    conf_fail(ctx, "open(\"%s\") gave an FD of another file than %s", path, file);
	if (fd >= 0)
		close(fd);
	fdt_open_result_free(&opened);
	return result;
}

/* open(@path) fails with FdTestError @errnum and no FD. */
static enum conf_result
open_fails(struct conf_ctx *ctx, struct wire *w, const char *path, size_t path_len, int errnum,
           const char *what)
{
	struct fdt_open_result opened = {0};
	enum conf_result result;
	int fd;

	result = call_open(ctx, w, path, path_len, &opened, &fd);
	if (result == CONF_PASS && !opened.failed)
		result =
		    conf_fail(ctx, "open(%s) succeeded: it must fail with errnum %d", what, errnum);
	else if (result == CONF_PASS && opened.error.errnum != errnum)
		result = conf_fail(ctx, "open(%s) failed with errnum %d (%s), expected %d (%s)",
		                   what, opened.error.errnum, strerror(opened.error.errnum), errnum,
		                   strerror(errnum));
	if (fd >= 0)
		close(fd);
	fdt_open_result_free(&opened);
	return result;
}

/* Extra entries the open cases add to the root, removed again by root_entries_remove(). */
static const char *const extra_entries[] = {"link-hello", "link-sub", "abs-escape",
                                            "loop-a",     "loop-b",   "sock"};

static void
root_entries_remove(const struct conf_ctx *ctx)
{
	for (size_t i = 0; i < sizeof(extra_entries) / sizeof(extra_entries[0]); i++) {
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", ctx->root_dir, extra_entries[i]);
		unlink(path);
	}
}

static enum conf_result
root_entries_create(struct conf_ctx *ctx)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char path[512], target[512];
	int sock, r = 0;

	snprintf(path, sizeof(path), "%s/link-hello", ctx->root_dir);
	r |= symlink("hello.txt", path);
	snprintf(path, sizeof(path), "%s/link-sub", ctx->root_dir);
	r |= symlink("sub/../sub/inner.txt", path);
	snprintf(path, sizeof(path), "%s/abs-escape", ctx->root_dir);
	snprintf(target, sizeof(target), "%s/outside.txt", ctx->work_dir);
	r |= symlink(target, path);
	snprintf(path, sizeof(path), "%s/loop-a", ctx->root_dir);
	r |= symlink("loop-b", path);
	snprintf(path, sizeof(path), "%s/loop-b", ctx->root_dir);
	r |= symlink("loop-a", path);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/sock", ctx->root_dir);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0 || bind(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		r = -1;
	if (sock >= 0)
		close(sock);
	if (r != 0) {
		root_entries_remove(ctx);
		return conf_skip(ctx, "the harness cannot add symbolic links and a socket to the "
		                      "root");
	}
	return CONF_PASS;
}

static enum conf_result
svc_open_regular(struct conf_ctx *ctx)
{
	static const char expected[] = "hello from the conformance harness\n";
	struct fdt_open_result opened = {0};
	enum conf_result result;
	char content[128] = {0};
	struct wire w;
	int fd = -1;

	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = call_open(ctx, &w, "hello.txt", 9, &opened, &fd);
	if (result == CONF_PASS && opened.failed)
		result = conf_fail(ctx, "open(\"hello.txt\") failed: %s (errnum %d)",
		                   opened.error.message, opened.error.errnum);
	if (result == CONF_PASS && read(fd, content, sizeof(content) - 1) < 0)
		result = conf_fail(ctx, "the FD open gave cannot be read: %s", strerror(errno));
	if (result == CONF_PASS && strcmp(content, expected) != 0)
		result = conf_fail(ctx,
		                   "reading the FD from its offset gives \"%s\", not the file's "
		                   "content",
		                   content);
	if (fd >= 0)
		close(fd);
	fdt_open_result_free(&opened);
	if (result == CONF_PASS)
		result = open_succeeds(ctx, &w, "hello.txt", "hello.txt");
	if (result == CONF_PASS)
		result = open_succeeds(ctx, &w, "sub/inner.txt", "sub/inner.txt");
	if (result == CONF_PASS)
		result = open_succeeds(ctx, &w, "./sub//inner.txt", "sub/inner.txt");
	if (result == CONF_PASS)
		result = open_succeeds(ctx, &w, "sub/../hello.txt", "hello.txt");
	wire_close(&w);
	return result;
}

static enum conf_result
svc_open_symlinks_inside(struct conf_ctx *ctx)
{
	enum conf_result result = root_entries_create(ctx);
	struct wire w;

	if (result != CONF_PASS)
		return result;
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = open_succeeds(ctx, &w, "link-hello", "hello.txt");
	if (result == CONF_PASS)
		result = open_succeeds(ctx, &w, "link-sub", "sub/inner.txt");
	wire_close(&w);
	root_entries_remove(ctx);
	return result;
}

static enum conf_result
svc_open_outside(struct conf_ctx *ctx)
{
	enum conf_result result = root_entries_create(ctx);
	char absolute[512];
	struct wire w;

	if (result != CONF_PASS)
		return result;
	snprintf(absolute, sizeof(absolute), "%s/outside.txt", ctx->work_dir);
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = open_fails(ctx, &w, "../outside.txt", 14, EXDEV, "\"../outside.txt\"");
	if (result == CONF_PASS)
		result = open_fails(ctx, &w, "sub/../../outside.txt", 21, EXDEV,
		                    "\"sub/../../outside.txt\"");
	if (result == CONF_PASS)
		result = open_fails(ctx, &w, absolute, strlen(absolute), EXDEV,
		                    "the absolute path of a file outside the root");
	if (result == CONF_PASS)
		result = open_fails(ctx, &w, "/etc/passwd", 11, EXDEV, "\"/etc/passwd\"");
	if (result == CONF_PASS)
		result = open_fails(ctx, &w, "escape", 6, EXDEV,
		                    "\"escape\", a symbolic link to ../outside.txt");
	if (result == CONF_PASS)
		result = open_fails(ctx, &w, "abs-escape", 10, EXDEV,
		                    "\"abs-escape\", a symbolic link to an absolute path");
	wire_close(&w);
	root_entries_remove(ctx);
	return result;
}

static enum conf_result
svc_open_not_regular(struct conf_ctx *ctx)
{
	enum conf_result result = root_entries_create(ctx);
	struct wire w;

	if (result != CONF_PASS)
		return result;
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result =
		    open_fails(ctx, &w, "fifo", 4, EINVAL, "\"fifo\", a FIFO without a writer");
	if (result == CONF_PASS)
		result = open_fails(ctx, &w, "sub", 3, EINVAL, "\"sub\", a directory");
	if (result == CONF_PASS)
		result = open_fails(ctx, &w, "sock", 4, EINVAL, "\"sock\", a socket file");
	if (result == CONF_PASS)
		result = open_fails(ctx, &w, ".", 1, EINVAL, "\".\", the root itself");
	wire_close(&w);
	root_entries_remove(ctx);
	return result;
}

static enum conf_result
svc_open_errnums(struct conf_ctx *ctx)
{
	enum conf_result result = root_entries_create(ctx);
	char long_name[300];
	struct wire w;

	if (result != CONF_PASS)
		return result;
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = open_fails(ctx, &w, "missing.txt", 11, ENOENT, "\"missing.txt\"");
	if (result == CONF_PASS)
		result = open_fails(ctx, &w, "sub/missing/x", 13, ENOENT, "\"sub/missing/x\"");
	if (result == CONF_PASS)
		result = open_fails(ctx, &w, "", 0, ENOENT, "\"\", the empty path");
	if (result == CONF_PASS)
		result = open_fails(ctx, &w, "hello.txt\0x", 11, EINVAL,
		                    "\"hello.txt\\0x\", a path holding a NUL byte");
	if (result == CONF_PASS)
		result = open_fails(ctx, &w, "hello.txt/x", 11, ENOTDIR, "\"hello.txt/x\"");
	if (result == CONF_PASS)
		result = open_fails(ctx, &w, long_name, strlen(long_name), ENAMETOOLONG,
		                    "a name of 299 bytes");
	if (result == CONF_PASS)
		result =
		    open_fails(ctx, &w, "loop-a", 6, ELOOP, "\"loop-a\", a loop of symbolic links");
	wire_close(&w);
	root_entries_remove(ctx);
	return result;
}

/* A server started without --root: every open fails with EACCES. */
static enum conf_result
svc_open_without_root(struct conf_ctx *ctx)
{
	static const char *const paths[] = {"hello.txt", "missing.txt", "../outside.txt", ""};
	enum conf_result result;
	struct wire w;
	pid_t pid;

	result = start_server(ctx, false, &pid, NULL);
	if (result != CONF_PASS)
		return result;
	result = case_connect(ctx, &w);
	for (size_t i = 0; result == CONF_PASS && i < 4; i++) {
		char what[64];

		snprintf(what, sizeof(what), "\"%s\" on a server without --root", paths[i]);
		result = open_fails(ctx, &w, paths[i], strlen(paths[i]), EACCES, what);
	}
	if (result == CONF_PASS)
		result = usable(ctx, &w, "no-root");
	wire_close(&w);
	target_stop(pid, STOP_TIMEOUT_MS);
	return result;
}

/* ==== 18.1 The server under test ==== */

static enum conf_result
contract_startup(struct conf_ctx *ctx)
{
	enum conf_result result;
	long long ready_ms = 0;
	struct wire w;
	pid_t pid;

	clearenv();
	setsid();
	result = start_server(ctx, true, &pid, &ready_ms);
	if (result != CONF_PASS)
		return reason_prefix(ctx, "started with no environment, no terminal and /dev/null "
		                          "as standard input");
	conf_note(ctx, "accepting connections %lld ms after the start", ready_ms);
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = open_succeeds(ctx, &w, "hello.txt", "hello.txt");
	if (result == CONF_PASS)
		result = usable(ctx, &w, "startup");
	wire_close(&w);
	target_stop(pid, STOP_TIMEOUT_MS);
	return result;
}

static enum conf_result
contract_eight_connections(struct conf_ctx *ctx)
{
	enum { CONNECTIONS = 8 };
	uint32_t streams[CONNECTIONS];
	int readers[CONNECTIONS], writers[CONNECTIONS];
	struct wire w[CONNECTIONS];
	enum conf_result result = CONF_PASS;
	size_t n = 0;

	if (case_pipes(readers, writers, CONNECTIONS) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	for (; n < CONNECTIONS; n++) {
		result = case_connect(ctx, &w[n]);
		if (result != CONF_PASS) {
			reason_prefix(ctx, "connection %zu of 8", n + 1);
			break;
		}
	}
	for (size_t i = 0; result == CONF_PASS && i < n; i++) {
		streams[i] = send_call(ctx, &w[i], RFD_FRAME_REQUEST_RESPONSE, FDT_METHOD_ECHO,
		                       "eight", &writers[i], 1, NULL);
		if (!streams[i])
			result = CONF_FAIL;
	}
	case_close_all(writers, CONNECTIONS);
	for (size_t i = n; result == CONF_PASS && i-- > 0;) {
		struct case_answer a;

		result = case_read_answer(ctx, &w[i], streams[i], true, conf_wait_ms(ctx), &a);
		if (result == CONF_PASS) {
			result = expect_string(ctx, &a, "eight", "echo");
			if (result == CONF_PASS &&
			    (a.reply.fds.n != 1 ||
			     ino_of(a.reply.fds.fds[0]) != ino_of(readers[i])))
				result = conf_fail(ctx,
				                   "the echo on connection %zu came back without "
				                   "its FD",
				                   i + 1);
			case_answer_free(&a);
		}
		if (result != CONF_PASS)
			reason_prefix(ctx, "with 8 connections open, connection %zu", i + 1);
	}
	for (size_t i = 0; i < n; i++)
		wire_close(&w[i]);
	case_close_all(readers, CONNECTIONS);
	return result;
}

/* Start a server, hold a connection open, SIGTERM it: its exit status, or -1 after 5 s. */
static enum conf_result
terminate(struct conf_ctx *ctx, int *status)
{
	enum conf_result result;
	struct wire w;
	pid_t pid;

	result = start_server(ctx, true, &pid, NULL);
	if (result != CONF_PASS)
		return result;
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = usable(ctx, &w, "before-sigterm");
	kill(pid, SIGTERM);
	*status = target_wait(pid, STOP_TIMEOUT_MS);
	if (*status == -1)
		target_stop(pid, 100);
	wire_close(&w);
	return result;
}

static enum conf_result
contract_sigterm(struct conf_ctx *ctx)
{
	enum conf_result result;
	int status;

	result = terminate(ctx, &status);
	if (result == CONF_PASS && status == -1)
		result = conf_fail(ctx,
		                   "the server did not exit within %d ms of SIGTERM (with a "
		                   "connection open)",
		                   STOP_TIMEOUT_MS);
	return result;
}

static enum conf_result
contract_clean_exit(struct conf_ctx *ctx)
{
	enum conf_result result;
	struct stat st;
	int status;

	result = terminate(ctx, &status);
	if (result == CONF_PASS && status == -1)
		result = conf_fail(ctx, "the server did not exit within %d ms of SIGTERM",
		                   STOP_TIMEOUT_MS);
	else if (result == CONF_PASS && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		result =
		    conf_fail(ctx, "after SIGTERM the server %s %d, not exit status 0",
		              WIFEXITED(status) ? "exited with status" : "was killed by signal",
		              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	else if (result == CONF_PASS && lstat(ctx->socket_path, &st) == 0)
		result = conf_fail(ctx, "after SIGTERM the socket file %s is still there",
		                   ctx->socket_path);
	return result;
}

static enum conf_result
contract_files_untouched(struct conf_ctx *ctx)
{
	static const char *const skip[] = {"target.log", "s.sock", NULL};
	static const char *const opened[] = {"hello.txt", "sub/inner.txt",  "fifo",
	                                     "escape",    "../outside.txt", "sub"};
	struct snapshot before, after;
	enum conf_result result;
	char difference[600];
	struct case_answer a;
	struct wire w;
	int status = 0, fd = dev_null();
	pid_t pid;

	snapshot_take(&before, ctx->work_dir, skip);
	result = start_server(ctx, true, &pid, NULL);
	if (result == CONF_PASS) {
		result = case_connect(ctx, &w);
		for (size_t i = 0; result == CONF_PASS && i < 6; i++) {
			result = call(ctx, &w, FDT_METHOD_OPEN, opened[i], NULL, 0, NULL, &a);
			if (result == CONF_PASS)
				case_answer_free(&a);
		}
		if (result == CONF_PASS && !send_call(ctx, &w, RFD_FRAME_REQUEST_FNF,
		                                      FDT_METHOD_RECORD, "files", &fd, 1, NULL))
			result = CONF_FAIL;
		if (result == CONF_PASS)
			result = usable(ctx, &w, "files");
		wire_close(&w);
		kill(pid, SIGTERM);
		status = target_wait(pid, STOP_TIMEOUT_MS);
		if (status == -1)
			target_stop(pid, 100);
	}
	close(fd);
	snapshot_take(&after, ctx->work_dir, skip);
	if (result == CONF_PASS &&
	    snapshot_differs(&before, &after, difference, sizeof(difference)))
		result = conf_fail(ctx, "the server changed the files around it: %s", difference);
	snapshot_free(&before);
	snapshot_free(&after);
	return result;
}

/* ==== Version 0.2: flags, fixed fields, stream ids, ignored PAYLOADs ==== */

/* A call as one frame with extra @flags on its header, answered with its tag. */
static enum conf_result
call_with_flags(struct conf_ctx *ctx, struct wire *w, uint32_t stream, uint16_t flags,
                const char *tag, const char *what)
{
	struct request_md md = call_md(FDT_METHOD_ECHO, KIND_RR, NULL);
	enum conf_result result;
	struct rfd_buf bytes, args;
	struct case_answer a;

	rfd_buf_init(&bytes);
	rfd_buf_init(&args);
	put_text_args(&args, tag, strlen(tag));
	put_request(&bytes, RFD_FRAME_REQUEST_RESPONSE, stream, flags, &md, args.data, args.len);
	result = send_bytes(ctx, w, &bytes, NULL, 0, what);
	rfd_buf_free(&bytes);
	rfd_buf_free(&args);
	if (result == CONF_PASS)
		result = case_read_answer(ctx, w, stream, true, conf_wait_ms(ctx), &a);
	if (result != CONF_PASS)
		return reason_prefix(ctx, "%s", what);
	result = expect_string(ctx, &a, tag, what);
	case_answer_free(&a);
	return result;
}

/* A KEEPALIVE with RESPOND, @extra flags and last received position @position is answered. */
static enum conf_result
keepalive_answered(struct conf_ctx *ctx, struct wire *w, uint16_t extra, uint64_t position,
                   const char *what)
{
	static const uint8_t data[] = {'p', 'i', 'n', 'g'};
	struct rfd_frame frame;
	struct rfd_buf bytes;
	int r;

	rfd_buf_init(&bytes);
	rfd_buf_put_u24(&bytes, 6 + 8 + sizeof(data));
	rfd_buf_put_u32(&bytes, 0);
	rfd_buf_put_u16(&bytes, (uint16_t)(RFD_FRAME_KEEPALIVE << 10 | RESPOND | extra));
	rfd_buf_put_u64(&bytes, position);
	rfd_buf_append(&bytes, data, sizeof(data));
	r = wire_send(w, bytes.data, bytes.len, NULL, 0);
	rfd_buf_free(&bytes);
	if (r < 0)
		return conf_fail(ctx, "cannot send %s: %s", what, strerror(-r));
	r = wire_read_frame(w, &frame, conf_wait_ms(ctx));
	if (r <= 0)
		return conf_fail(ctx, "%s got no answer (%s)", what, r == 0 ? "EOF" : strerror(-r));
	if (frame.type != RFD_FRAME_KEEPALIVE || frame.stream_id != 0 || (frame.flags & RESPOND))
		return conf_fail(ctx,
		                 "%s was answered with %s on stream %u, not a KEEPALIVE without "
		                 "RESPOND on stream 0",
		                 what, rfd_frame_type_name(frame.type), frame.stream_id);
	if (frame.data.len != sizeof(data) || memcmp(frame.data.ptr, data, sizeof(data)) != 0)
		return conf_fail(ctx, "the answer to %s does not carry its data", what);
	return CONF_PASS;
}

static enum conf_result
frame_undefined_flags(struct conf_ctx *ctx)
{
	static const struct ignored_frame frames[] = {
	    IGNORED("a REQUEST_N on stream 1 with the undefined bits 0x200 and 0x080",
	            "\x00\x00\x0a\x00\x00\x00\x01\x22\x80\x00\x00\x00\x05"),
	    IGNORED("a CANCEL on stream 5, not in flight, with the undefined bits 0x040 and 0x020",
	            "\x00\x00\x06\x00\x00\x00\x05\x24\x60"),
	    IGNORED("an ERROR on stream 1 with the undefined bits 0x200 and 0x080",
	            "\x00\x00\x0d\x00\x00\x00\x01\x2e\x80\x00\x00\x02\x03\x62\x61\x64"),
	    IGNORED("a METADATA_PUSH without METADATA, with the undefined bit 0x080",
	            "\x00\x00\x09\x00\x00\x00\x00\x30\x80\xff\xff\xff"),
	};
	enum conf_result result = frames_ignored(ctx, frames, 4);
	struct wire w;

	if (result != CONF_PASS)
		return result;
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = call_with_flags(ctx, &w, wire_stream_id(&w),
		                         RFD_FLAG_IGNORE | RFD_FLAG_COMPLETE | RFD_FLAG_NEXT,
		                         "undefined-flags",
		                         "echo as REQUEST_RESPONSE with the undefined bits IGNORE, "
		                         "COMPLETE and NEXT");
	if (result == CONF_PASS)
		result = keepalive_answered(
		    ctx, &w, RFD_FLAG_IGNORE | RFD_FLAG_COMPLETE | RFD_FLAG_NEXT, 0,
		    "a KEEPALIVE with RESPOND and the undefined bits IGNORE, "
		    "COMPLETE and NEXT");
	if (result == CONF_PASS)
		result = probe(ctx, &w);
	wire_close(&w);
	return result;
}

static enum conf_result
frame_unused_values(struct conf_ctx *ctx)
{
	static const struct ignored_frame frames[] = {
	    IGNORED("a KEEPALIVE with last received position 2^64 - 1",
	            "\x00\x00\x0e\x00\x00\x00\x00\x0c\x00\xff\xff\xff\xff\xff\xff\xff\xff"),
	    IGNORED("a REQUEST_N of 0 on stream 1",
	            "\x00\x00\x0a\x00\x00\x00\x01\x20\x00\x00\x00\x00\x00"),
	    IGNORED("a REQUEST_N of 2^32 - 1 on stream 3",
	            "\x00\x00\x0a\x00\x00\x00\x03\x20\x00\xff\xff\xff\xff"),
	    IGNORED("an EXT with IGNORE and extended type 2^32 - 1 on stream 0",
	            "\x00\x00\x0a\x00\x00\x00\x00\xfe\x00\xff\xff\xff\xff"),
	};
	static const struct ignored_frame errors[] = {
	    IGNORED("an ERROR of code 0 on stream 3", "\x00\x00\x0a\x00\x00\x00\x03\x2c\x00\x00\x00"
	                                              "\x00\x00"),
	    IGNORED("an ERROR of code 0xFFFFFFFF on stream 5",
	            "\x00\x00\x0a\x00\x00\x00\x05\x2c\x00\xff\xff\xff\xff"),
	};
	struct setup_spec zero = setup_spec("SETUP with keepalive interval 0 and max lifetime 0");
	struct setup_spec top =
	    setup_spec("SETUP with keepalive interval and max lifetime 2^32 - 1");
	enum conf_result result;
	struct wire w;

	zero.own_timers = true;
	top.own_timers = true;
	top.keepalive_ms = 0xFFFFFFFF;
	top.lifetime_ms = 0xFFFFFFFF;
	result = setup_accepted_as(ctx, &zero, NULL);
	if (result == CONF_PASS)
		result = setup_accepted_as(ctx, &top, NULL);
	if (result == CONF_PASS)
		result = frames_ignored(ctx, frames, 4);
	if (result == CONF_PASS)
		result = frames_ignored(ctx, errors, 2);
	if (result != CONF_PASS)
		return result;
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = keepalive_answered(ctx, &w, 0, UINT64_MAX,
		                            "a KEEPALIVE with RESPOND and last received position "
		                            "2^64 - 1");
	if (result == CONF_PASS)
		result = probe(ctx, &w);
	wire_close(&w);
	return result;
}

static void
bad_even_high_stream(struct rfd_buf *out)
{
	put_call(out, RFD_FRAME_REQUEST_RESPONSE, 0x80000002u, FDT_METHOD_ECHO, "even", NULL);
}

static enum conf_result
frame_high_stream_ids(struct conf_ctx *ctx)
{
	static const struct ignored_frame frames[] = {
	    IGNORED("a REQUEST_N on stream 2^31 + 3",
	            "\x00\x00\x0a\x80\x00\x00\x03\x20\x00\x00\x00\x00\x05"),
	    IGNORED("a CANCEL on stream 2^32 - 1, not in flight",
	            "\x00\x00\x06\xff\xff\xff\xff\x24\x00"),
	};
	static const struct bad_frame even =
	    BUILT("an echo REQUEST_RESPONSE on the even stream 2^31 + 2", bad_even_high_stream);
	enum conf_result result;
	struct wire w;

	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = call_with_flags(ctx, &w, 0x80000001u, 0, "high-stream",
		                         "echo on stream 2^31 + 1");
	if (result == CONF_PASS)
		result = call_with_flags(ctx, &w, 0xFFFFFFFFu, 0, "highest-stream",
		                         "echo on stream 2^32 - 1");
	wire_close(&w);
	if (result == CONF_PASS)
		result = frames_ignored(ctx, frames, 2);
	if (result == CONF_PASS)
		result = bad_frame_fails(ctx, &even, false);
	return result;
}

/* A PAYLOAD on @stream with @flags and one byte of data, appended to @out. */
static void
put_stray_payload(struct rfd_buf *out, uint32_t stream, uint16_t flags)
{
	put_payload_frame(out, RFD_FRAME_PAYLOAD, stream, flags, NULL, "x", 1);
}

static enum conf_result
frame_ignored_payload(struct conf_ctx *ctx)
{
	enum conf_result result;
	struct case_answer a;
	struct rfd_buf bytes;
	uint32_t stream;
	struct wire w;

	result = case_connect(ctx, &w);
	if (result != CONF_PASS)
		return result;
	rfd_buf_init(&bytes);
	stream = wire_stream_id(&w);
	put_stray_payload(&bytes, stream, RFD_FLAG_FOLLOWS | RFD_FLAG_NEXT);
	put_call(&bytes, RFD_FRAME_REQUEST_RESPONSE, stream, FDT_METHOD_ECHO, "after-payload",
	         NULL);
	result = send_bytes(ctx, &w, &bytes, NULL, 0,
	                    "a PAYLOAD with FOLLOWS on a stream with no request, then echo on "
	                    "that stream");
	if (result == CONF_PASS)
		result = case_read_answer(ctx, &w, stream, true, conf_wait_ms(ctx), &a);
	if (result != CONF_PASS) {
		reason_prefix(ctx,
		              "echo on stream %u after an ignored PAYLOAD with FOLLOWS there, "
		              "which starts no reassembly",
		              stream);
	} else {
		result = expect_string(ctx, &a, "after-payload", "echo after an ignored PAYLOAD");
		case_answer_free(&a);
	}
	bytes.len = 0;
	stream = wire_stream_id(&w);
	put_stray_payload(&bytes, stream, RFD_FLAG_FOLLOWS);
	put_stray_payload(&bytes, stream, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE);
	if (result == CONF_PASS)
		result = send_bytes(ctx, &w, &bytes, NULL, 0,
		                    "a PAYLOAD with FOLLOWS only, then one with NEXT and COMPLETE, "
		                    "on a stream with no request");
	rfd_buf_free(&bytes);
	if (result == CONF_PASS)
		result = probe(ctx, &w);
	wire_close(&w);
	return result;
}

/* ==== Version 0.2: SETUP ==== */

static enum conf_result
setup_resume_lease(struct conf_ctx *ctx)
{
	static const char token[] = "rfd-conform-resume-token";
	struct setup_spec resume =
	    setup_spec("SETUP with RESUME_ENABLE and a 24-byte resume token");
	struct setup_spec lease = setup_spec("SETUP with LEASE");
	struct setup_spec both = setup_spec("SETUP with RESUME_ENABLE, a resume token and LEASE");
	enum conf_result result;
	int32_t version = 0;

	resume.extra_flags = RFD_FLAG_FOLLOWS;
	resume.resume_token = token;
	resume.token_len = sizeof(token) - 1;
	lease.extra_flags = RFD_FLAG_COMPLETE;
	both.extra_flags = RFD_FLAG_FOLLOWS | RFD_FLAG_COMPLETE;
	both.resume_token = token;
	both.token_len = sizeof(token) - 1;
	result = setup_accepted_as(ctx, &resume, &version);
	if (result == CONF_PASS && version != 10)
		result =
		    conf_fail(ctx, "%s: setupResponse.version is %d, not 10", resume.what, version);
	if (result == CONF_PASS)
		result = setup_accepted_as(ctx, &lease, NULL);
	if (result == CONF_PASS)
		result = setup_accepted_as(ctx, &both, NULL);
	return result;
}

static enum conf_result
setup_data_ignored(struct conf_ctx *ctx)
{
	static const char data[] = "setup data \x00\xff\x18\x04 not Compact";
	struct setup_spec s = setup_spec("SETUP with 27 bytes of data");

	s.data = data;
	s.data_len = sizeof(data) - 1;
	return setup_accepted_as(ctx, &s, NULL);
}

/* ==== Version 0.2: metadata ==== */

static enum conf_result
meta_check_order(struct conf_ctx *ctx)
{
	static const struct refused list[] = {
	    REFUSED("echo as REQUEST_STREAM with kind 4 (step 8)", RFD_FRAME_REQUEST_STREAM,
	            FDT_METHOD_ECHO, COMPACT, KIND_STREAM, 0, WRONG_KIND),
	    REFUSED("noSuchMethod as REQUEST_STREAM with kind 4 (step 7)", RFD_FRAME_REQUEST_STREAM,
	            "noSuchMethod", COMPACT, KIND_STREAM, 0, RFD_ERROR_CODE_UNKNOWN_METHOD),
	    REFUSED("noSuchMethod as REQUEST_CHANNEL (step 4)", RFD_FRAME_REQUEST_CHANNEL,
	            "noSuchMethod", COMPACT, KIND_BIDI, 0, PARSING),
	    REFUSED("echo with a checksum of algorithm 1 and kind 1 (step 4)", RR, FDT_METHOD_ECHO,
	            COMPACT, KIND_FNF, MD_CHECKSUM, PARSING),
	    REFUSED("echo with compression and no kind (step 4)", RR, FDT_METHOD_ECHO, COMPACT, 0,
	            MD_COMPRESSION | MD_NO_KIND, PARSING),
	    REFUSED("echo with protocol 0 and kind 1 (step 3)", RR, FDT_METHOD_ECHO,
	            RFD_PROTOCOL_BINARY, KIND_FNF, 0, PARSING),
	    REFUSED("noSuchMethod with protocol 0 (step 3)", RR, "noSuchMethod",
	            RFD_PROTOCOL_BINARY, KIND_RR, 0, PARSING),
	    REFUSED("noSuchMethod as REQUEST_RESPONSE with kind 1 (step 5)", RR, "noSuchMethod",
	            COMPACT, KIND_FNF, 0, WRONG_KIND),
	};

	return requests_refused(ctx, list, sizeof(list) / sizeof(list[0]));
}

/* META-14: compression NONE (0) and a checksum of algorithm NONE (0) decline nothing. */
static enum conf_result
meta_not_declined(struct conf_ctx *ctx)
{
	static const struct {
		const char *what;
		unsigned extras;
	} requests[] = {
	    {"echo with compression (field 14) 0, NONE", MD_COMPRESSION_NONE},
	    {"echo with a checksum (field 25) of algorithm 0, NONE", MD_CHECKSUM_NONE},
	};
	enum conf_result result;
	struct wire w;

	result = case_connect(ctx, &w);
	for (size_t i = 0; result == CONF_PASS && i < 2; i++) {
		struct request_md md = call_md(FDT_METHOD_ECHO, KIND_RR, NULL);
		uint32_t stream = wire_stream_id(&w);
		struct case_answer a;
		struct rfd_buf bytes;

		md.extras = requests[i].extras;
		rfd_buf_init(&bytes);
		put_call(&bytes, RFD_FRAME_REQUEST_RESPONSE, stream, FDT_METHOD_ECHO,
		         "not-declined", &md);
		result = send_bytes(ctx, &w, &bytes, NULL, 0, requests[i].what);
		rfd_buf_free(&bytes);
		if (result == CONF_PASS)
			result = case_read_answer(ctx, &w, stream, true, conf_wait_ms(ctx), &a);
		if (result != CONF_PASS) {
			reason_prefix(ctx, "%s", requests[i].what);
			break;
		}
		result = expect_string(ctx, &a, "not-declined", requests[i].what);
		case_answer_free(&a);
	}
	wire_close(&w);
	return result;
}

/*
 * RequestRpcMetadata for echo(@tag) with field 23 holding structs nested
 * @levels deep inside it: the innermost is at depth @levels + 1.
 */
static void
put_nested_md(struct rfd_buf *md, size_t levels)
{
	static const uint8_t head[] = {0x15, 0x04, 0x18, 0x04, 'e', 'c', 'h', 'o', 0x15, 0x00};

	rfd_buf_append(md, head, sizeof(head));
	rfd_buf_put_u8(md, 0x0c); /* field 23, struct, long header */
	rfd_buf_put_u8(md, 0x2e);
	for (size_t i = 1; i < levels; i++)
		rfd_buf_put_u8(md, 0x1c); /* field 1, struct */
	for (size_t i = 0; i < levels; i++)
		rfd_buf_put_u8(md, 0x00);
	rfd_buf_put_u8(md, 0x00);
}

/* echo whose metadata nests @levels deep: served, or with @may_refuse ERROR 0x204 (1, 6). */
static enum conf_result
nested_echo(struct conf_ctx *ctx, struct wire *w, size_t levels, bool may_refuse, const char *what)
{
	enum conf_result result;
	struct rfd_buf bytes, args, md;
	struct case_answer a;
	uint32_t stream = wire_stream_id(w);

	rfd_buf_init(&bytes);
	rfd_buf_init(&args);
	rfd_buf_init(&md);
	put_text_args(&args, "nested", 6);
	put_nested_md(&md, levels);
	put_payload_frame(&bytes, RFD_FRAME_REQUEST_RESPONSE, stream, 0, &md, args.data, args.len);
	result = send_bytes(ctx, w, &bytes, NULL, 0, what);
	rfd_buf_free(&bytes);
	rfd_buf_free(&args);
	rfd_buf_free(&md);
	if (result == CONF_PASS)
		result = case_read_answer(ctx, w, stream, true, conf_wait_ms(ctx), &a);
	if (result != CONF_PASS)
		return reason_prefix(ctx, "%s", what);
	if (may_refuse && a.reply.type == RFD_FRAME_ERROR)
		result = case_expect_rpc_error(ctx, &a, what, RFD_ERROR_INVALID,
		                               RFD_ERROR_CATEGORY_INVALID_REQUEST,
		                               RFD_ERROR_CODE_REQUEST_PARSING_FAILURE);
	else
		result = expect_string(ctx, &a, "nested", what);
	case_answer_free(&a);
	return result;
}

static enum conf_result
meta_deep_nesting(struct conf_ctx *ctx)
{
	enum { DEEP = 200000 };
	enum conf_result result;
	struct wire w;

	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result =
		    nested_echo(ctx, &w, 31, false,
		                "echo whose metadata holds an unknown field nested to depth 32");
	if (result == CONF_PASS)
		result =
		    nested_echo(ctx, &w, 33, true,
		                "echo whose metadata holds an unknown field nested to depth 34");
	if (result == CONF_PASS)
		result =
		    nested_echo(ctx, &w, DEEP, true,
		                "echo whose metadata holds an unknown field nested 200001 deep");
	if (result == CONF_PASS)
		result = probe(ctx, &w);
	wire_close(&w);
	if (result != CONF_PASS)
		return result;
	result = case_connect(ctx, &w);
	if (result == CONF_PASS)
		result = probe(ctx, &w);
	wire_close(&w);
	return result == CONF_PASS ? result : reason_prefix(ctx, "a new connection");
}

/* ERR-10: a REQUEST_CHANNEL whose claim fails is answered as any other, its FDs closed. */
static enum conf_result
claim_channel_mismatch(struct conf_ctx *ctx)
{
	static const char what[] = "echo as REQUEST_CHANNEL with 2 FDs claiming numFds 1";
	int readers[2], writers[2], open_reader;
	struct rfd_fd_metadata claim;
	struct request_md md;
	enum conf_result result;
	struct rfd_buf bytes, args;
	struct case_answer a;
	uint32_t stream;
	struct wire w;

	if (case_pipes(readers, writers, 2) < 0)
		return conf_skip(ctx, "the harness cannot make pipes");
	result = case_connect(ctx, &w);
	claim = fd_claim(w.send_seq, 1);
	md = call_md(FDT_METHOD_ECHO, KIND_BIDI, &claim);
	stream = wire_stream_id(&w);
	rfd_buf_init(&bytes);
	rfd_buf_init(&args);
	put_text_args(&args, "channel", 7);
	put_request(&bytes, RFD_FRAME_REQUEST_CHANNEL, stream, 0, &md, args.data, args.len);
	if (result == CONF_PASS)
		result = send_bytes(ctx, &w, &bytes, writers, 2, what);
	rfd_buf_free(&bytes);
	rfd_buf_free(&args);
	case_close_all(writers, 2);
	if (result == CONF_PASS)
		result = case_read_answer(ctx, &w, stream, true, conf_wait_ms(ctx), &a);
	if (result == CONF_PASS) {
		result = case_expect_rpc_error(ctx, &a, what, RFD_ERROR_INVALID,
		                               RFD_ERROR_CATEGORY_INVALID_REQUEST,
		                               RFD_ERROR_CODE_REQUEST_PARSING_FAILURE);
		case_answer_free(&a);
	}
	open_reader = first_open(readers, 2);
	if (result == CONF_PASS && open_reader >= 0)
		result = conf_fail(ctx,
		                   "%s: FD %d of that request was still open when the ERROR "
		                   "arrived",
		                   what, open_reader);
	if (result == CONF_PASS)
		result = usable(ctx, &w, "after");
	wire_close(&w);
	case_close_all(readers, 2);
	return result;
}

/* ==== The table, in the order of the specification ==== */

#define SERVER(id, section, requirements, level, sends, needs, run)                                \
	{                                                                                          \
		id, CONF_SERVER, section, requirements, level, sends, needs, NULL, run, NULL       \
	}

const struct conf_case conf_server_cases[] = {
    /* 3. Transport and socket options */
    SERVER("transport/stream-socket", "3", "TRANSPORT-1", CONF_MUST,
           "connects to PATH with SOCK_SEQPACKET and SOCK_DGRAM (must fail), then with "
           "SOCK_STREAM; expects a socket file served over SOCK_STREAM only",
           0, transport_stream_only),
    SERVER("transport/long-socket-path", "3", "TRANSPORT-2", CONF_MUST,
           "starts the server with --socket of 120 bytes; expects a non-zero exit and no file "
           "created",
           CONF_SELF_START, transport_long_path),
    SERVER("transport/peer-gone", "3", "TRANSPORT-3", CONF_MUST,
           "echo with a 1 MiB tag and an FD, then closes at once; expects the server alive and "
           "serving a new connection",
           0, transport_peer_gone),

    /* 4.4 Frame layouts */
    SERVER("frame/server-flags", "4.4", "FRAME-2,FRAME-22", CONF_MUST,
           "SETUP, KEEPALIVE with RESPOND, echo with 2 FDs, an unknown method, open of a missing "
           "file, inspect, an EXT without IGNORE; expects no reserved flag bit and no flag bit "
           "its type does not define in any frame back",
           0, frame_server_flags),
    SERVER("frame/bad-length", "4.4", "FRAME-1,ERR-1,ERR-4,ERR-5", CONF_MUST,
           "frames of length 5, too short for their fixed fields, or whose metadata length "
           "overruns, each with an FD after an FD queued by a KEEPALIVE; expects each "
           "connection closed, both FDs closed, another connection unaffected",
           0, frame_bad_length),
    SERVER("frame/reserved-flags", "4.4", "FRAME-3,ERR-1,ERR-4,ERR-5", CONF_MUST,
           "REQUEST_RESPONSE, KEEPALIVE and CANCEL with a reserved flag bit, each with an FD; "
           "expects each connection closed, its FDs closed, another connection unaffected",
           0, frame_reserved_flags),
    SERVER("frame/unknown-type", "4.4", "FRAME-4,ERR-1,ERR-4,ERR-5", CONF_MUST,
           "frames of types 0x00, LEASE, RESUME, RESUME_OK, 0x10, 0x3E, each with an FD; "
           "expects each connection closed, its FDs closed, another connection unaffected",
           0, frame_unknown_type),
    SERVER("frame/undefined-flags", "4.4", "FRAME-21,FD-CARRY-4", CONF_MUST,
           "REQUEST_N, CANCEL, ERROR and METADATA_PUSH with flag bits their type does not "
           "define, each with a pipe write end; echo and KEEPALIVE with RESPOND likewise; "
           "expects them handled as without those bits",
           0, frame_undefined_flags),
    SERVER("frame/unused-values", "4.4", "FRAME-23", CONF_MUST,
           "SETUP with keepalive fields 0 and 2^32 - 1, KEEPALIVE position 2^64 - 1, REQUEST_N "
           "0 and 2^32 - 1, EXT type 2^32 - 1, ERROR codes 0 and 2^32 - 1; expects none to fail "
           "the connection",
           0, frame_unused_values),
    SERVER("frame/metadata-on-control", "4.4", "FRAME-5,ERR-1,ERR-4,ERR-5", CONF_MUST,
           "KEEPALIVE, REQUEST_N, CANCEL and ERROR with the METADATA flag, each with an FD; "
           "expects each connection closed, its FDs closed, another connection unaffected",
           0, frame_metadata_on_control),
    SERVER("frame/wrong-stream", "4.4", "FRAME-6,ERR-1,ERR-4,ERR-5", CONF_MUST,
           "KEEPALIVE, METADATA_PUSH and SETUP on stream 1; requests, REQUEST_N, CANCEL and "
           "PAYLOAD on stream 0; each with an FD; expects each connection closed, its FDs closed",
           0, frame_wrong_stream),
    SERVER("frame/payload-without-next", "4.4", "FRAME-7,ERR-1,ERR-4,ERR-5", CONF_MUST,
           "PAYLOAD frames with none of NEXT, COMPLETE and FOLLOWS, continuing nothing or a "
           "fragmented echo, each with an FD; expects each connection closed, its FDs closed",
           0, frame_payload_without_next),

    /* 4.5 Fragmentation */
    SERVER("frame/interrupted-fragments", "4.5",
           "FRAME-11,FRAME-13,FRAME-16,FRAME-18,ERR-1,ERR-4,ERR-5", CONF_MUST,
           "the first fragment of echo on stream 1, then REQUEST_RESPONSE, REQUEST_FNF, "
           "REQUEST_N, CANCEL, ERROR or EXT with IGNORE on stream 1, with an FD; expects each "
           "connection closed, its FDs closed",
           0, frame_interrupted_fragments),
    SERVER("frame/ignored-payload", "4.5", "FRAME-25,FRAME-18", CONF_MUST,
           "a PAYLOAD with FOLLOWS on a stream with no request, then echo on that stream; a "
           "PAYLOAD with FOLLOWS, then one with COMPLETE, on another; expects echo and the probe "
           "served",
           0, frame_ignored_payload),

    /* 4.6 Stream ids */
    SERVER("frame/even-stream", "4.6", "FRAME-13,ERR-1,ERR-4,ERR-5", CONF_MUST,
           "echo on stream 2 and record on stream 4, each with an FD; expects each connection "
           "closed, its FDs closed, another connection unaffected",
           0, frame_even_stream),
    SERVER("frame/high-stream-ids", "4.6", "FRAME-24", CONF_MUST,
           "echo on streams 2^31 + 1 and 2^32 - 1, REQUEST_N and CANCEL on ids above 2^31, echo "
           "on stream 2^31 + 2; expects the echo calls answered, the others ignored, the even "
           "id failing the connection",
           0, frame_high_stream_ids),
    SERVER("frame/answer-streams", "4.6", "FRAME-14", CONF_MUST,
           "inspect, echo with an FD, an unknown method and open of a missing file on streams "
           "2147483647, 5, 101 and 3; expects each answered once on its own stream",
           0, frame_answer_streams),

    /* 4.8 Control frames */
    SERVER("frame/keepalive-respond", "4.8", "FRAME-15,FRAME-27", CONF_MUST,
           "KEEPALIVE with RESPOND and 29 bytes of data, then with none; expects KEEPALIVE "
           "without RESPOND on stream 0 with the same data and last received position 0",
           0, frame_keepalive_respond),
    SERVER("frame/ext-ignored", "4.8", "FRAME-16,FD-CARRY-4,ORPHAN-4,ORPHAN-1", CONF_MUST,
           "EXT with IGNORE on streams 0 and 7, each with a pipe write end, then echo, then "
           "inspect claiming fdSeqNum 2; expects no answer to them, the pipes open until that "
           "claim, closed by its answer",
           0, frame_ext_ignored),
    SERVER("frame/ext-without-ignore", "4.8", "FRAME-17,ERR-1,ERR-4,ERR-5", CONF_MUST,
           "EXT without IGNORE on streams 0 and 1, each with an FD; expects each connection "
           "closed, its FDs closed, another connection unaffected",
           0, frame_ext_without_ignore),
    SERVER("frame/unused-ignored", "4.8", "FRAME-18,FD-CARRY-4,ORPHAN-4,ORPHAN-1", CONF_MUST,
           "REQUEST_N, CANCEL and ERROR for streams not in flight and a PAYLOAD continuing "
           "nothing, each with a pipe write end, then echo, then inspect claiming fdSeqNum 4; "
           "expects no answer to them, the pipes open until that claim",
           0, frame_unused_ignored),
    SERVER("frame/metadata-push-ignored", "4.8", "FRAME-19,FD-CARRY-4,ORPHAN-4,ORPHAN-1", CONF_MUST,
           "METADATA_PUSH holding ff ff ff, and one holding a setup response, each with a pipe "
           "write end; expects no answer, the pipes open until a claim at fdSeqNum 2",
           0, frame_metadata_push_ignored),
    SERVER("frame/error-on-stream-0", "4.8", "FRAME-20,ERR-1,ERR-4,ERR-5", CONF_MUST,
           "ERROR CONNECTION_ERROR and CONNECTION_CLOSE on stream 0, each with an FD; expects "
           "each connection closed, its FDs closed, another connection unaffected",
           0, frame_error_on_stream_0),

    /* 5.4 Server validation */
    SERVER("setup/not-first", "5.4", "SETUP-9", CONF_MUST,
           "inspect with an FD, or KEEPALIVE, before any SETUP; expects ERROR CONNECTION_ERROR "
           "with a text on stream 0, close, the FD closed",
           0, setup_not_first),
    SERVER("setup/version", "5.4", "SETUP-10", CONF_MUST,
           "SETUP with versions 2.0, 1.1 and 0.1; expects ERROR INVALID_SETUP with a text, then "
           "close",
           0, setup_bad_version),
    SERVER("setup/mime-types", "5.4", "SETUP-11", CONF_MUST,
           "SETUP with metadata MIME type ...+binary or text/plain, data MIME type text/plain, "
           "or the two swapped; expects ERROR UNSUPPORTED_SETUP, then close",
           0, setup_bad_mime),
    SERVER("setup/protocol-key", "5.4", "SETUP-12", CONF_MUST,
           "SETUP with key 00 00 00 01 or f0 9f 9a 81, without metadata, or with 3 metadata "
           "bytes; expects ERROR INVALID_SETUP, then close",
           0, setup_bad_key),
    SERVER("setup/metadata-struct", "5.4", "SETUP-13", CONF_MUST,
           "SETUP whose RequestSetupMetadata is empty, truncated, followed by a byte, or has a "
           "string minVersion; expects ERROR INVALID_SETUP, then close",
           0, setup_bad_metadata),
    SERVER("setup/binary-metadata", "5.4", "SETUP-14", CONF_MUST,
           "SETUP with encodeMetadataUsingBinary = true; expects ERROR UNSUPPORTED_SETUP, then "
           "close",
           0, setup_binary_metadata),
    SERVER("setup/version-range", "5.4", "SETUP-15", CONF_MUST,
           "SETUP with versions 11..12, 1..7, none, or only minVersion 8; expects ERROR "
           "INVALID_SETUP; then only maxVersion 10: accepted with version 10",
           0, setup_version_range),
    SERVER("setup/second-setup", "5.4", "SETUP-16", CONF_MUST,
           "a second SETUP after the setup response; expects ERROR INVALID_SETUP on stream 0, "
           "then close",
           0, setup_second),
    SERVER("setup/requests-in-same-write", "5.4", "SETUP-17", CONF_MUST,
           "SETUP, echo, inspect, record and lastRecorded in one write; expects the setup "
           "response, then every call answered",
           0, setup_requests_in_same_write),

    SERVER("setup/resume-lease", "5.4", "SETUP-21", CONF_MUST,
           "SETUP with RESUME_ENABLE and a resume token, with LEASE, and with both; expects each "
           "accepted with a setup response and the connection serving",
           0, setup_resume_lease),
    SERVER("setup/data-ignored", "5.4", "SETUP-22", CONF_MUST,
           "SETUP carrying 27 bytes of data that are not Compact; expects it accepted and the "
           "connection serving",
           0, setup_data_ignored),

    /* 5.5 Setup response */
    SERVER("setup/response-first", "5.5", "SETUP-18", CONF_MUST,
           "SETUP, KEEPALIVE with RESPOND, echo and an unknown method in one write; expects the "
           "setup response as the first frame",
           0, setup_response_first),
    SERVER("setup/response-version", "5.5", "SETUP-19", CONF_MUST,
           "SETUP with versions 8..8, 8..9, 8..10, 8..11 and 8..50; expects setupResponse.version "
           "8, 9, 10, 10, 10",
           0, setup_response_version),
    SERVER("setup/no-compression", "5.5", "SETUP-20", CONF_MUST,
           "SETUP; expects a setup response without zstdSupported or lz4Supported true", 0,
           setup_no_compression),

    /* 6.1 The Compact protocol */
    SERVER("meta/unknown-fields", "6.1", "META-2", CONF_MUST,
           "SETUP and inspect with an FD whose metadata structs, FdMetadata and ClientMetadata "
           "included, hold unknown fields of every type, nested; expects both served",
           0, meta_unknown_fields),
    SERVER("meta/malformed", "6.1", "META-3,META-11,ORPHAN-4,ORPHAN-1", CONF_MUST,
           "requests with an FD whose metadata is missing, truncated, lacks its stop byte, has "
           "a known field of another type, type code 14 or a byte after its end; expects ERROR "
           "0x204 (1, 6), the FDs queued until a later claim",
           0, meta_malformed),
    SERVER("meta/deep-nesting", "6.1", "META-2,META-23", CONF_MUST,
           "echo whose metadata holds an unknown field nested to depth 32, 34 and 200001; "
           "expects the first served, the others served or ERROR 0x204 (1, 6), the server alive",
           0, meta_deep_nesting),

    /* 6.3 ResponseRpcMetadata */
    SERVER("meta/success-answers", "6.3", "META-6,META-1,META-8,META-10", CONF_MUST,
           "echo, inspect and lastRecorded; expects PAYLOAD NEXT|COMPLETE|METADATA, "
           "responseMetadata, no compression or checksum, the result in field 0",
           0, meta_success_answers),
    SERVER("meta/declared-exception", "6.3", "META-7,META-8,SVC-17", CONF_MUST,
           "open(\"missing.txt\"); expects PAYLOAD NEXT|COMPLETE|METADATA with exceptionMetadata "
           "{FdTestError, its message, declaredException} and FdTestError in field 1",
           0, meta_declared_exception),

    /* 6.8 Error responses */
    SERVER("meta/bad-requests", "6.8", "META-11,FD-CARRY-3,OWN-3", CONF_MUST,
           "requests with an FD: protocol 0, no protocol, no name, arguments truncated, of the "
           "wrong type or followed by a byte; expects ERROR 0x204 (1, 6) each, its FD closed",
           0, meta_bad_requests),
    SERVER("meta/wrong-kind", "6.8", "META-12,META-16,FD-CARRY-3,OWN-3", CONF_MUST,
           "requests with an FD and no kind or one matching neither frame nor method, as "
           "REQUEST_RESPONSE, REQUEST_STREAM, REQUEST_FNF; expects ERROR 0x204 (1, 9) or "
           "silence, FDs closed",
           0, meta_wrong_kind),
    SERVER("meta/unknown-method", "6.8", "META-13,META-16,FD-CARRY-3,OWN-3", CONF_MUST,
           "noSuchMethod and FdTest.echo with an FD, as REQUEST_RESPONSE and REQUEST_FNF; "
           "expects ERROR 0x204 (1, 10) or silence, its FD closed",
           0, meta_unknown_method),
    SERVER("meta/declined-features", "6.8", "META-14,META-16,FD-CARRY-3,OWN-3", CONF_MUST,
           "valid echo with an FD and compression, interactionId, interactionCreate, checksum "
           "1, or as REQUEST_CHANNEL; expects ERROR 0x204 (1, 6) each, its FD closed",
           0, meta_declined_features),
    SERVER("meta/not-declined", "6.8", "META-14", CONF_MUST,
           "echo with compression 0 (NONE), and with a checksum of algorithm 0 (NONE); expects "
           "both served",
           0, meta_not_declined),
    SERVER("meta/check-order", "6.8", "META-20", CONF_MUST,
           "requests with an FD failing several checks of 6.8 (kind and method, channel and "
           "method, checksum and kind, protocol and kind, ...); expects the first failed check's "
           "code",
           0, meta_check_order),
    SERVER("meta/refused-not-executed", "6.8", "META-17,META-16", CONF_MUST,
           "record as REQUEST_RESPONSE, and as REQUEST_FNF with protocol 0, no kind, "
           "compression, checksum or interactionCreate; expects lastRecorded empty after each",
           0, meta_refused_not_executed),
    SERVER("meta/oneway-silent", "6.8", "META-16", CONF_MUST,
           "REQUEST_FNF: record, record with a bad claim, unknown method, echo, no metadata, "
           "protocol 0; then echo; expects only the echo answered",
           0, meta_oneway_silent),

    /* 7.3 Sender rules */
    SERVER("fd/answer-writes", "7.3",
           "FD-SEND-3,FD-SEND-4,FD-SEND-1,FD-SEND-8,FD-SEND-9,FD-SEND-10,FD-CARRY-1", CONF_MUST,
           "8 echo calls with 60 KB answers left unread, then 8 calls, 3 answered with FDs; reads "
           "unbounded, then frame by frame; expects each FD group within its answer, to its end",
           0, fd_answer_writes),
    SERVER("fd/sent-once", "7.3", "FD-SEND-6,FD-SEND-7,FD-SEND-1", CONF_MUST,
           "24 pipelined echo calls with 60 KB tags and 1 FD each, answers read late through a "
           "small buffer; expects each answer's FD exactly once",
           0, fds_sent_once),

    /* 7.4 Receiver rules: reading and queuing */
    SERVER("fd/inspect-253", "7.4", "FD-RECV-1,LIMIT-2", CONF_MUST,
           "inspect with 253 pipe write ends; expects 253 reported, all closed", 0, inspect_max),
    SERVER("fd/first-write", "7.4", "FD-RECV-8,FD-RECV-4", CONF_MUST,
           "inspect written in 4 writes, its FD with the first; expects it served with its FD", 0,
           fds_with_first_piece),
    SERVER("fd/last-write", "7.4", "FD-RECV-5,FD-RECV-4", CONF_MUST,
           "inspect written in 4 writes, its FD with the last; expects it served with its FD", 0,
           fds_with_last_piece),
    SERVER("fd/batched-with-setup", "7.4", "FD-RECV-8", CONF_MUST,
           "SETUP and inspect in one write, the FD on SETUP's first byte (as fbthrift's client); "
           "expects inspect served with its FD",
           0, fds_batched_with_setup),
    SERVER("fd/merged-reads", "7.4", "FD-RECV-2,FD-RECV-9,FD-RECV-5,FD-RECV-4,FD-ASSOC-1",
           CONF_MUST,
           "section 7.6's writes A, B + FD, C, D + FD (inspect), queued while the server is "
           "stopped; expects A and C with no FD, B and D each with its own",
           0, fd_merged_reads),
    SERVER("fd/fragmented-fd-last", "7.4", "FD-RECV-6,FRAME-10", CONF_MUST,
           "echo in fragments of 7 bytes, each written alone, the FD with the last; expects the "
           "tag and the FD back",
           0, fragments_fd_last),
    SERVER("fd/fragmented-fd-first", "7.4", "FD-RECV-8,FRAME-10", CONF_MUST,
           "echo in fragments of 7 bytes, each written alone, the FD with the first; expects the "
           "tag and the FD back",
           0, fragments_fd_first),
    SERVER("fd/pipelined", "7.4", "FD-RECV-7,LIMIT-11", CONF_MUST,
           "64 inspect calls each with its own pipe write end in its own write, queued while the "
           "server is stopped; expects each report naming its own pipe",
           0, fd_pipelined),

    /* 7.5 Binding: the claim procedure */
    SERVER("fd/inspect-1", "7.5", "FD-ASSOC-4,EXEC-1,SVC-2", CONF_MUST,
           "inspect with 1 pipe write end; expects it reported with FD_CLOEXEC and closed by "
           "the time of the answer",
           0, inspect_one),
    SERVER("claim/takes-its-group", "7.5", "FD-ASSOC-4,ORPHAN-1", CONF_MUST,
           "{0: 2} queued by a KEEPALIVE, then inspect with 1 FD claiming it at 2; expects that "
           "FD, the 2 older ones closed by the answer",
           0, claim_takes_its_group),
    SERVER("claim/zero-takes-nothing", "7.5", "FD-ASSOC-1,ORPHAN-4", CONF_MUST,
           "{0: 1} queued; inspect with numFds 0 at 7, with no numFds, with no FdMetadata, then "
           "claiming 1 at 0; expects 0, 0, 0 FDs, then the queued one",
           0, claim_zero_takes_nothing),
    SERVER("claim/negative-count", "7.5", "FD-ASSOC-2,ERR-10,ERR-12", CONF_MUST,
           "inspect with 1 FD claiming numFds -1; expects ERROR 0x204 (1, 6), the FD still "
           "queued for a claim of 1 at 0",
           0, claim_negative_count),
    SERVER("claim/count-over-253", "7.5", "FD-ASSOC-2,ERR-10,ERR-12", CONF_MUST,
           "inspect with 1 FD claiming numFds 254; expects ERROR 0x204 (1, 6), the FD still "
           "queued for a claim of 1 at 0",
           0, claim_over_253),
    SERVER("claim/no-seq", "7.5", "FD-ASSOC-3,ERR-10,ERR-12", CONF_MUST,
           "inspect with 1 FD, numFds 1 and no fdSeqNum; expects ERROR 0x204 (1, 6), the FD "
           "still queued for a claim of 1 at 0",
           0, claim_no_seq),
    SERVER("claim/negative-seq", "7.5", "FD-ASSOC-3,ERR-10,ERR-12", CONF_MUST,
           "inspect with 1 FD claiming fdSeqNum -1; expects ERROR 0x204 (1, 6), the FD still "
           "queued for a claim of 1 at 0",
           0, claim_negative_seq),
    SERVER("err/more-than-claimed", "7.5", "FD-ASSOC-5,ERR-10,ERR-12,OWN-3", CONF_MUST,
           "inspect with 2 FDs claiming 1; expects ERROR 0x204 (1, 6), both FDs closed by then, "
           "the connection kept",
           0, claim_more_than_claimed),
    SERVER("err/fewer-than-claimed", "7.5", "FD-ASSOC-5,ERR-10,ERR-12,OWN-3", CONF_MUST,
           "inspect with 1 FD claiming 2; expects ERROR 0x204 (1, 6), the FD closed by then, the "
           "connection kept",
           0, claim_fewer_than_claimed),
    SERVER("claim/none-arrived", "7.5", "FD-ASSOC-6,ERR-10,ERR-12", CONF_MUST,
           "inspect claiming 1 FD with none sent; expects ERROR 0x204 (1, 6), the connection "
           "kept",
           0, claim_none_arrived),
    SERVER("err/seq-ahead", "7.5", "FD-ASSOC-6,ORPHAN-1,ERR-10,ERR-12", CONF_MUST,
           "inspect with 1 FD claiming fdSeqNum 5; expects ERROR 0x204 (1, 6), the FD closed as "
           "an orphan by then",
           0, claim_seq_ahead),
    SERVER("claim/head-newer", "7.5", "FD-ASSOC-6,ORPHAN-4,ERR-10", CONF_MUST,
           "a claim at 0 served, {1: 1} queued, inspect claiming 1 at 0 again; expects ERROR "
           "0x204, the group at 1 kept for a claim at 1",
           0, claim_head_newer),
    SERVER("claim/group-starts-before", "7.5", "FD-ASSOC-6,ORPHAN-1,ERR-10", CONF_MUST,
           "{0: 3} queued by a KEEPALIVE, inspect claiming 1 at 1; expects ERROR 0x204, the 3 "
           "FDs closed by then",
           0, claim_group_starts_before),
    SERVER("claim/channel-mismatch", "7.5", "ERR-10,OWN-3", CONF_MUST,
           "echo as REQUEST_CHANNEL with 2 FDs claiming 1; expects ERROR 0x204 (1, 6), both "
           "FDs closed by then, the connection kept",
           0, claim_channel_mismatch),
    SERVER("claim/record-failed", "7.5", "FD-ASSOC-7,SVC-8,ERR-11", CONF_MUST,
           "record(\"good\") with 1 FD, then record with 2 FDs claiming 1 and record claiming "
           "fdSeqNum 7; expects lastRecorded \"good\" with 1 FD",
           0, svc_record_failed_claim),

    /* 8. Which frames may carry FDs */
    SERVER("carry/no-fds-with-exceptions", "8", "FD-CARRY-2", CONF_SHOULD,
           "open of a missing file, a directory and an escaping link, each with an FD; expects "
           "the exceptions without FDs",
           0, carry_no_fds_with_exceptions),

    /* 9. Orphan FDs */
    SERVER("fd/orphans", "9", "ORPHAN-1,FD-CARRY-4,FD-RECV-2", CONF_MUST,
           "a pipe write end with KEEPALIVE, echo, then inspect with its own FD claiming "
           "fdSeqNum 1; expects the pipe open until that claim, closed by its answer",
           0, orphans_closed_at_next_claim),
    SERVER("err/vanish-mid-frame", "9", "ORPHAN-2", CONF_MUST,
           "3 FDs with half a request, then close; expects all 3 closed, the server still "
           "serving",
           0, peer_vanishes_mid_frame),
    SERVER("err/vanish-after-fds", "9", "ORPHAN-2", CONF_MUST,
           "3 FDs with KEEPALIVE, then close; expects all 3 closed", 0, peer_vanishes_after_fds),

    /* 10. Limits */
    SERVER("limit/budget-at-least-2c", "10", "LIMIT-4,ORPHAN-4", CONF_MUST,
           "2 KEEPALIVEs with 253 FDs each, never claimed, then echo and inspect claiming 506; "
           "expects the connection kept, the 506 FDs open until that claim",
           0, limit_budget_at_least_2c),
    SERVER("limit/unclaimed-budget", "10", "LIMIT-5,ORPHAN-3,ERR-1,ERR-4", CONF_MUST,
           "17 KEEPALIVEs with 253 FDs each (4301), never claimed; expects the connection closed "
           "and every FD released",
           0, unclaimed_fds_are_bounded),
    SERVER("limit/max-frame", "10", "LIMIT-6", CONF_MUST,
           "echo with an FD as one REQUEST_RESPONSE frame of length 2^24 - 1; expects the tag "
           "and the FD back",
           0, limit_max_frame),
    SERVER("limit/32mib-message", "10", "LIMIT-8,FRAME-8,FRAME-9,FRAME-10", CONF_MUST,
           "echo of a 32 MiB message (2 fragments) with an FD, then echo(\"after\"); expects the "
           "tag back in fragments written back to back, the FD, then \"after\"",
           0, limit_32mib_message),
    SERVER("limit/message-over-64mib", "10", "LIMIT-10,LIMIT-9", CONF_SHOULD,
           "REQUEST_RESPONSE fragments adding up to 65 MiB, never finished; expects the "
           "connection closed",
           0, limit_message_over_64mib),

    /* 11. Errors */
    SERVER("err/connection-error-frame", "11.1", "ERR-3", CONF_SHOULD,
           "each malformed frame of the frame/ cases (second SETUP aside); expects ERROR "
           "CONNECTION_ERROR on stream 0 with a UTF-8 text and no FD, then close",
           0, err_connection_error_frame),
    SERVER("err/ctrunc", "11.2", "ERR-6,ERR-1,ERR-4,ERR-5", CONF_MUST,
           "5 FDs to a server that can install 2 (RLIMIT_NOFILE); expects the connection "
           "closed, every FD closed, another connection unaffected",
           CONF_NEEDS_LAUNCH, ctrunc_fails_connection),
    SERVER("err/oneway-mismatch", "11.3", "ERR-11,ERR-12,META-16", CONF_MUST,
           "record with 1 FD claiming 3; expects no answer, the FD closed, the connection kept", 0,
           oneway_mismatch_silent),
    SERVER("err/eof-mid-frame", "11.4", "ERR-16,ORPHAN-2", CONF_MUST,
           "half of an echo frame with an FD, then SHUT_WR; expects no answer to it, the "
           "connection closed, the FD closed",
           0, eof_mid_frame),
    SERVER("err/eof-mid-fragments", "11.4", "ERR-16,ORPHAN-2", CONF_MUST,
           "the first fragment (FOLLOWS) of echo with an FD, then SHUT_WR; expects no answer to "
           "it, the connection closed, the FD closed",
           0, eof_mid_fragments),

    /* 12. FD lifetime and ownership */
    SERVER("own/echo-keeps-no-copy", "12", "OWN-4,OWN-2", CONF_MUST,
           "echo with a pipe write end, then closes the FD it got back; expects the pipe's "
           "write end closed everywhere",
           0, own_echo_keeps_no_copy),

    /* 13. Close-on-exec */
    SERVER("exec/server-fds", "13", "EXEC-2", CONF_MUST,
           "two connections and an inspect, then reads /proc/PID/fdinfo of the server; expects "
           "O_CLOEXEC on every FD above 2",
           CONF_NEEDS_LAUNCH, exec_server_fds_cloexec),

    /* 15. Peer credentials */
    SERVER("cred/connections-released", "15", "CRED-5", CONF_MUST,
           "8 connections, an inspect on each, then all closed; expects the server's FD count "
           "back where it was",
           CONF_NEEDS_LAUNCH, cred_connections_released),
    SERVER("cred/whoami", "15", "CRED-12,CRED-2,CRED-14", CONF_MUST,
           "whoami with a pipe write end, then whoami alone; expects the harness's pid, uid and "
           "gid both times, no FD with the answers, the pipe closed by the first",
           0, cred_whoami),
    SERVER("cred/snapshot-of-connector", "15", "CRED-1,CRED-2,CRED-12", CONF_MUST,
           "a child connects, hands the socket over and exits; whoami on it, on a connection of "
           "the harness, on it again; expects the child's pid on its connection every time",
           0, cred_snapshot_of_connector),
    SERVER("cred/pid-pinned", "15", "CRED-3", CONF_SHOULD,
           "whoami, on a kernel with SO_PEERPIDFD; expects pidPinned true", 0, cred_pid_pinned),
    SERVER("cred/pinned-means-pidfd", "15", "CRED-13", CONF_MUST,
           "whoami, then reads /proc/PID/fdinfo of the server; expects pidPinned false without "
           "SO_PEERPIDFD, and when true a pidfd of the harness among the server's FDs",
           CONF_NEEDS_LAUNCH, cred_pinned_means_pidfd),

    /* 16. Peers that refuse FDs */
    SERVER("passrights/refused", "16", "PASSRIGHTS-1,PASSRIGHTS-2,ERR-9,OWN-5", CONF_MUST,
           "sets SO_PASSRIGHTS to 0 on its socket, then echo with a pipe write end; expects the "
           "connection closed without an answer, the pipe closed, another connection served",
           0, passrights_refused),

    /* 17.3 inspect, echo, record, lastRecorded */
    SERVER("svc/inspect-report", "17.3", "SVC-1,SVC-2,EXEC-1", CONF_MUST,
           "inspect with a pipe, /dev/null, a regular file with O_APPEND, a directory and a "
           "non-blocking socket; expects their dev, ino, type, flags, cloexec, in order",
           0, svc_inspect_report),
    SERVER("svc/echo-fds", "17.3", "SVC-5,SVC-4,META-9,FD-SEND-8,FD-SEND-9", CONF_MUST,
           "echo with 2, 1 and 3 FDs; expects the tag and the same open file descriptions back, "
           "in order, fdSeqNum 0, 2, 3",
           0, svc_echo_fds),
    SERVER("svc/echo-no-fds", "17.3", "SVC-5,SVC-4,FD-SEND-10", CONF_MUST,
           "echo(\"plain\") with no FD, then echo of a tag holding NUL bytes; expects each tag "
           "unchanged, no FD and no numFds other than 0",
           0, svc_echo_no_fds),
    SERVER("svc/answers-without-fds", "17.3", "SVC-3", CONF_MUST,
           "inspect, lastRecorded and three failing open calls, each with an FD; expects no FD "
           "with any answer",
           0, svc_answers_without_fds),
    SERVER("svc/record", "17.3", "SVC-6,SVC-7", CONF_MUST,
           "lastRecorded, record(\"first\") with 2 FDs, record(\"second\") with 1, lastRecorded; "
           "expects an empty report, then \"second\" with 1 FD, every FD closed",
           0, svc_record),
    SERVER("svc/record-per-connection", "17.3", "SVC-9", CONF_MUST,
           "record on connection A, lastRecorded on B, record on B, lastRecorded on A; expects "
           "each connection to see only its own",
           0, svc_record_per_connection),
    SERVER("svc/other-methods-close-fds", "17.3", "SVC-10,OWN-1", CONF_MUST,
           "lastRecorded, open(\"hello.txt\") and open(\"missing.txt\") each with a pipe write "
           "end; expects the pipe closed by the time of each answer",
           0, svc_other_methods_close_fds),

    /* 17.4 open */
    SERVER("svc/open", "17.4", "SVC-16", CONF_MUST,
           "open of hello.txt, sub/inner.txt, ./sub//inner.txt and sub/../hello.txt; expects "
           "the path back and one read-only FD at offset 0 of that file",
           CONF_NEEDS_LAUNCH, svc_open_regular),
    SERVER("svc/open-symlinks-inside", "17.4", "SVC-16,SVC-15", CONF_MUST,
           "open of symbolic links that stay inside the root; expects them followed",
           CONF_NEEDS_LAUNCH, svc_open_symlinks_inside),
    SERVER("svc/open-outside", "17.4", "SVC-12,SVC-15,SVC-17", CONF_MUST,
           "open of ../outside.txt, sub/../../outside.txt, absolute paths, and links out of the "
           "root; expects FdTestError EXDEV and no FD",
           CONF_NEEDS_LAUNCH, svc_open_outside),
    SERVER("svc/open-not-regular", "17.4", "SVC-14,SVC-13,SVC-15", CONF_MUST,
           "open of a FIFO without a writer, a directory, a socket file and \".\"; expects "
           "FdTestError EINVAL at once and no FD",
           CONF_NEEDS_LAUNCH, svc_open_not_regular),
    SERVER("svc/open-errnums", "17.4", "SVC-15,SVC-17", CONF_MUST,
           "open of missing paths, \"\", a path with a NUL byte, hello.txt/x, a 299-byte name, a "
           "link loop; expects ENOENT, ENOENT, EINVAL, ENOTDIR, ENAMETOOLONG, ELOOP",
           CONF_NEEDS_LAUNCH, svc_open_errnums),
    SERVER("svc/open-without-root", "17.4", "SVC-11,CONTRACT-2", CONF_MUST,
           "starts the server with --socket only, then open of four paths; expects FdTestError "
           "EACCES for each, the service otherwise served",
           CONF_SELF_START, svc_open_without_root),

    /* 18.1 Server under test */
    SERVER("contract/startup", "18.1", "CONTRACT-1,CONTRACT-3,CONTRACT-4", CONF_MUST,
           "starts the server with an empty environment, in a new session, stdin /dev/null; "
           "expects it serving within 10 s, open() served from DIR",
           CONF_SELF_START, contract_startup),
    SERVER("contract/eight-connections", "18.1", "CONTRACT-5", CONF_MUST,
           "8 connections at once, echo with an FD on each before any answer is read; expects "
           "all 8 answered with their FDs",
           0, contract_eight_connections),
    SERVER("contract/sigterm", "18.1", "CONTRACT-6", CONF_MUST,
           "starts the server, holds a connection open, sends SIGTERM; expects it to exit "
           "within 5 s",
           CONF_SELF_START, contract_sigterm),
    SERVER("contract/files-untouched", "18.1", "CONTRACT-7", CONF_MUST,
           "starts the server, opens files, a FIFO, links and paths out of the root, records, "
           "stops it; expects every file but the socket unchanged",
           CONF_SELF_START, contract_files_untouched),
    SERVER("contract/clean-exit", "18.1", "CONTRACT-8", CONF_SHOULD,
           "starts the server, holds a connection open, sends SIGTERM; expects exit status 0 and "
           "the socket file removed",
           CONF_SELF_START, contract_clean_exit),
};

const size_t conf_n_server_cases = sizeof(conf_server_cases) / sizeof(conf_server_cases[0]);
