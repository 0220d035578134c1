/* SPDX-License-Identifier: MIT */
/*
 * The FdTest service's types (spec/fdtest.thrift) in the Compact protocol,
 * as fbthrift lays out a call: the arguments of a method are one struct (its
 * parameters by id, no envelope) and its result is a struct whose field 0
 * holds the return value and whose field 1 holds a declared FdTestError.
 *
 *	struct FdInfo { 1: i64 dev; 2: i64 ino; 3: i32 type; 4: bool cloexec; 5: i32 flags; }
 *	struct FdReport { 1: string tag; 2: list<FdInfo> fds; }
 *	exception FdTestError { 1: string message; 2: i32 errnum; }
 *	struct PeerInfo { 1: i32 pid; 2: i32 uid; 3: i32 gid; 4: bool pidPinned; }
 *
 *	method        args struct          result struct
 *	inspect       {1: string tag}      {0: FdReport}
 *	echo          {1: string tag}      {0: string}
 *	record        {1: string tag}      none (one-way)
 *	lastRecorded  {}                   {0: FdReport}
 *	open          {1: string path}     {0: string} or {1: FdTestError}
 *	streamFds     {1: i32 count,       first response {} (fdt_encode_empty_args()),
 *	               2: i32 fdsPerItem}  then items {0: FdReport} (the report codec)
 *	sinkFds       {1: string tag}      first response {} (fdt_encode_empty_args());
 *	                                   sink items {0: string} (the string result
 *	                                   codec); final response {0: FdReport}
 *	whoami        {}                   {0: PeerInfo}
 *
 * Encoders fill a struct fdt_bytes the caller releases with fdt_bytes_free().
 * Decoders accept any field order, skip fields they do not know, take an
 * absent string as "" and an absent i64/i32/bool as 0/false (Thrift
 * defaults), and return 0 or -EBADMSG with *why (when @why is not NULL) set
 * to a static string naming the problem; -ENOMEM when out of memory.  They
 * refuse strings holding a NUL byte (except where a length is returned with
 * them: arguments with @text_len, a report's tag), reports of more than
 * FDT_MAX_FDS FDs, a field of a known id with the wrong type, and any byte
 * after the struct.  Strings have no length limit of their own: the message
 * size bounds them.  On failure their outputs are left empty.
 *
 * Decoded strings are NUL-terminated copies, allocated with malloc() and
 * owned by the output struct (a string from fdt_decode_args() by the caller,
 * who free()s it).
 */
#ifndef RFD_FDTEST_H
#define RFD_FDTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FDT_SERVICE_NAME   "FdTest"
#define FDT_METHOD_INSPECT "inspect"
#define FDT_METHOD_ECHO    "echo"
#define FDT_METHOD_RECORD  "record"
#define FDT_METHOD_LAST    "lastRecorded"
#define FDT_METHOD_OPEN    "open"
#define FDT_METHOD_WHOAMI  "whoami"
/* The stream method: its request is REQUEST_STREAM. */
#define FDT_METHOD_STREAM_FDS "streamFds"
/* The sink method: its request is REQUEST_CHANNEL of kind 6. */
#define FDT_METHOD_SINK_FDS "sinkFds"
/* The name a declared FdTestError travels under (exception metadata name_utf8). */
#define FDT_ERROR_NAME "FdTestError"

enum {
	FDT_MAX_FDS = 253,            /* one message carries at most this many FDs */
	FDT_MAX_STREAM_ITEMS = 10000, /* streamFds refuses a larger count */
};

/* One FD as its receiver found it. */
struct fdt_fdinfo {
	int64_t dev;   /* st_dev */
	int64_t ino;   /* st_ino */
	int32_t type;  /* st_mode & S_IFMT */
	bool cloexec;  /* FD_CLOEXEC was set on the FD as received */
	int32_t flags; /* F_GETFL: access mode and file status flags */
};

struct fdt_report {
	char *tag;      /* NUL-terminated; may hold NUL bytes before tag_len */
	size_t tag_len; /* bytes of tag; 0 with a non-empty tag means strlen(tag) */
	size_t n_fds;
	struct fdt_fdinfo *fds; /* NULL when n_fds is 0 */
};

struct fdt_error {
	char *message;
	int32_t errnum; /* an errno value */
};

/* What open answered: a path, or an FdTestError. */
struct fdt_open_result {
	bool failed;
	char *path;             /* when !failed */
	struct fdt_error error; /* when failed */
};

/* The server's view of its caller: SO_PEERCRED at accept, and whether it holds a pinned pidfd. */
struct fdt_peer_info {
	int32_t pid;
	int32_t uid; /* uid_t and gid_t with the same bits: (uid_t)-1 is -1 */
	int32_t gid;
	bool pid_pinned;
};

struct fdt_bytes {
	uint8_t *data;
	size_t len;
};

void fdt_bytes_free(struct fdt_bytes *bytes);
void fdt_report_free(struct fdt_report *report);
void fdt_open_result_free(struct fdt_open_result *result);

/* A deep copy of @src into @dst; 0 or -ENOMEM (then @dst is empty). */
int fdt_report_copy(struct fdt_report *dst, const struct fdt_report *src);

/* ---- Arguments ---- */

/*
 * {1: string} for inspect, echo, record (the tag) and open (the path).
 * Decoding: with @text_len NULL a string holding a NUL byte is refused;
 * otherwise NUL bytes are kept and *text_len is the string's length.
 */
int fdt_encode_args(const char *text, struct fdt_bytes *out);
int fdt_decode_args(const uint8_t *data, size_t len, char **text, size_t *text_len,
                    const char **why);

/* {} for lastRecorded: one stop byte.  Decoding skips whatever fields it holds. */
int fdt_encode_empty_args(struct fdt_bytes *out);
int fdt_decode_empty_args(const uint8_t *data, size_t len, const char **why);

/* {1: i32 count, 2: i32 fdsPerItem} for streamFds; an absent field reads as 0. */
int fdt_encode_stream_args(int32_t count, int32_t fds_per_item, struct fdt_bytes *out);
int fdt_decode_stream_args(const uint8_t *data, size_t len, int32_t *count, int32_t *fds_per_item,
                           const char **why);

/* ---- Results ---- */

/*
 * {0: FdReport} for inspect, lastRecorded, the items of streamFds and the
 * final response of sinkFds.  A result without field 0 is refused.
 */
int fdt_encode_report_result(const struct fdt_report *report, struct fdt_bytes *out);
int fdt_decode_report_result(const uint8_t *data, size_t len, struct fdt_report *report,
                             const char **why);

/*
 * {0: string} for echo, a successful open and a sink item of sinkFds; the
 * _bytes form takes @len bytes, NULs too.
 */
int fdt_encode_string_result(const char *text, struct fdt_bytes *out);
int fdt_encode_bytes_result(const char *text, size_t len, struct fdt_bytes *out);
int fdt_decode_string_result(const uint8_t *data, size_t len, char **text, const char **why);

/*
 * A sink item of sinkFds, {0: string}: encoded with fdt_encode_bytes_result();
 * decoded whole, NUL bytes too, into *tag (the caller's, free()d) and
 * *tag_len.  An item without field 0 is refused.
 */
int fdt_decode_sink_item(const uint8_t *data, size_t len, char **tag, size_t *tag_len,
                         const char **why);

/* {1: FdTestError} for a failed open. */
int fdt_encode_error_result(const char *message, int32_t errnum, struct fdt_bytes *out);
/* Either shape of open's result; one holding both fields or neither is refused. */
int fdt_decode_open_result(const uint8_t *data, size_t len, struct fdt_open_result *result,
                           const char **why);

/* {0: PeerInfo} for whoami.  A result without field 0 is refused. */
int fdt_encode_peer_info_result(const struct fdt_peer_info *info, struct fdt_bytes *out);
int fdt_decode_peer_info_result(const uint8_t *data, size_t len, struct fdt_peer_info *info,
                                const char **why);

/* ---- Describing FDs ---- */

/*
 * Fill @out for @fd: dev and ino from fstat(), type = st_mode & S_IFMT,
 * cloexec from F_GETFD, flags from F_GETFL.  0 or a negative errno.
 */
int fdt_describe_fd(int fd, struct fdt_fdinfo *out);

/* "regular", "dir", "fifo", "socket", "chr", "blk", "symlink", or "unknown". */
const char *fdt_type_name(int32_t type);

/*
 * The access mode and status flags of @flags in words, e.g.
 * "O_WRONLY|O_NONBLOCK|O_APPEND", bits without a name in hex at the end.
 * Returns @buf (always NUL-terminated, cut short if @size is too small).
 */
char *fdt_flags_string(int32_t flags, char *buf, size_t size);

/* One line for a report row: "regular 66306:1234 cloexec yes O_RDONLY". */
char *fdt_fdinfo_string(const struct fdt_fdinfo *info, char *buf, size_t size);

#endif
