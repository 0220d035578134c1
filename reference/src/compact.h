/* SPDX-License-Identifier: MIT */
/*
 * The Thrift Compact protocol as fbthrift speaks it, without message
 * envelopes: a writer that appends to a struct rfd_buf and a reader over a
 * byte range that never allocates and never reads outside the range.
 *
 * Wire summary.  A field header is one byte (id delta << 4 | type) when the
 * id is 1..15 above the previous field id of the same struct, otherwise the
 * type byte followed by the id as a zigzag varint.  A bool field carries its
 * value in the header type (1 true, 2 false) and has no value bytes.  i16,
 * i32 and i64 are zigzag varints; double and float are 8 and 4 bytes
 * big-endian (fbthrift; Apache Thrift writes doubles little-endian); binary
 * is a varint length and the bytes.  A list or set header is one byte
 * (size << 4 | element type) for sizes up to 14, else (0xF0 | element type)
 * and a varint size; bool elements are one byte each (1 true, 2 false).  A
 * map header is a single 0 byte when empty, else a varint size and a
 * (key << 4 | value) type byte.  A struct ends with a 0 byte.
 *
 * Writing FdInfo { 1: i64 dev; 2: i64 ino; 3: i32 type; 4: bool cloexec;
 * 5: i32 flags } inside FdReport { 1: string tag; 2: list<FdInfo> fds }:
 *
 *	struct rfd_cw w;
 *
 *	rfd_cw_init(&w, out);
 *	rfd_cw_struct_begin(&w);
 *	rfd_cw_field_string(&w, 1, tag);
 *	rfd_cw_field(&w, RFD_CT_LIST, 2);
 *	rfd_cw_list_begin(&w, RFD_CT_STRUCT, n_fds);
 *	for (i = 0; i < n_fds; i++) {
 *		rfd_cw_struct_begin(&w);
 *		rfd_cw_field_i64(&w, 1, fds[i].dev);
 *		rfd_cw_field_i64(&w, 2, fds[i].ino);
 *		rfd_cw_field_i32(&w, 3, fds[i].type);
 *		rfd_cw_field_bool(&w, 4, fds[i].cloexec);
 *		rfd_cw_field_i32(&w, 5, fds[i].flags);
 *		rfd_cw_struct_end(&w);
 *	}
 *	rfd_cw_struct_end(&w);
 *	return rfd_cw_finish(&w);
 *
 * A result struct puts the return value in field 0 (rfd_cw_field(&w,
 * RFD_CT_BINARY, 0) then rfd_cw_binary()) or a declared exception in its
 * field id (rfd_cw_field(&w, RFD_CT_STRUCT, 1), rfd_cw_struct_begin(), ...).
 *
 * Reading it back; every call returns 0 (rfd_cr_field: 1) or -EBADMSG, and
 * rfd_cr_error() names the problem:
 *
 *	struct rfd_cr r;
 *	struct rfd_cr_field f;
 *	uint8_t elem_type;
 *	uint32_t n;
 *	int ret;
 *
 *	rfd_cr_init(&r, bytes, len);
 *	ret = rfd_cr_struct_begin(&r);
 *	while (ret >= 0 && (ret = rfd_cr_field(&r, &f)) > 0) {
 *		if (f.id == 1 && f.type == RFD_CT_BINARY)
 *			ret = rfd_cr_binary(&r, &report->tag);
 *		else if (f.id == 2 && f.type == RFD_CT_LIST)
 *			ret = read_fd_list(&r, report);
 *		else
 *			ret = rfd_cr_skip_field(&r, &f);
 *	}
 *	if (ret == 0)
 *		ret = rfd_cr_finish(&r);
 *
 * where read_fd_list() calls rfd_cr_list_begin(&r, &elem_type, &n), checks
 * elem_type == RFD_CT_STRUCT, reads n structs the same way (a bool field
 * arrives with f.type == RFD_CT_BOOL and its value in f.bool_value), and
 * ends with rfd_cr_list_end(&r).
 */
#ifndef RFD_COMPACT_H
#define RFD_COMPACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Compact type ids (fbthrift CompactProtocol-inl.h, enum Types). */
enum rfd_compact_type {
	RFD_CT_STOP = 0x00,
	RFD_CT_BOOL_TRUE = 0x01,
	RFD_CT_BOOL_FALSE = 0x02,
	RFD_CT_BYTE = 0x03,
	RFD_CT_I16 = 0x04,
	RFD_CT_I32 = 0x05,
	RFD_CT_I64 = 0x06,
	RFD_CT_DOUBLE = 0x07,
	RFD_CT_BINARY = 0x08,
	RFD_CT_LIST = 0x09,
	RFD_CT_SET = 0x0A,
	RFD_CT_MAP = 0x0B,
	RFD_CT_STRUCT = 0x0C,
	RFD_CT_FLOAT = 0x0D,
	/* The bool type as the reader reports it and as container headers carry it. */
	RFD_CT_BOOL = RFD_CT_BOOL_TRUE,
};

/* Structs and containers nested deeper than this are refused by both sides. */
#define RFD_COMPACT_MAX_DEPTH 32

/*
 * Writer.  Calls record the first error (-ENOMEM, or -EINVAL for misuse:
 * nesting over the limit, an unbalanced struct_end, a bool written with
 * rfd_cw_field, a size over INT32_MAX, a type that is not a value type)
 * and do nothing once one is recorded; rfd_cw_finish() returns it.  On error
 * the buffer may hold a partial encoding, which the caller discards.
 * Container headers take the element count; the writer does not check that
 * exactly that many elements follow.  Only structs count toward the depth.
 */
struct rfd_cw {
	struct rfd_buf *out;
	int error;
	unsigned depth;
	int16_t last_id[RFD_COMPACT_MAX_DEPTH + 1];
};

void rfd_cw_init(struct rfd_cw *w, struct rfd_buf *out);

/* 0, the first recorded error, or -EINVAL when a struct is still open. */
int rfd_cw_finish(struct rfd_cw *w);

void rfd_cw_struct_begin(struct rfd_cw *w);
/* Writes the stop byte and returns to the enclosing struct's field ids. */
void rfd_cw_struct_end(struct rfd_cw *w);

/* A field header for a non-bool field; its value follows. */
void rfd_cw_field(struct rfd_cw *w, enum rfd_compact_type type, int16_t id);
/* A complete bool field: the value is in the header. */
void rfd_cw_field_bool(struct rfd_cw *w, int16_t id, bool value);

/* Values: fields (after rfd_cw_field) and container elements alike. */
void rfd_cw_bool(struct rfd_cw *w, bool value); /* container elements only */
void rfd_cw_byte(struct rfd_cw *w, int8_t value);
void rfd_cw_i16(struct rfd_cw *w, int16_t value);
void rfd_cw_i32(struct rfd_cw *w, int32_t value);
void rfd_cw_i64(struct rfd_cw *w, int64_t value);
void rfd_cw_double(struct rfd_cw *w, double value);
void rfd_cw_float(struct rfd_cw *w, float value);
void rfd_cw_binary(struct rfd_cw *w, const void *bytes, size_t len);
void rfd_cw_string(struct rfd_cw *w, const char *text);

/* For bool elements pass RFD_CT_BOOL. */
void rfd_cw_list_begin(struct rfd_cw *w, enum rfd_compact_type elem_type, uint32_t n);
void rfd_cw_set_begin(struct rfd_cw *w, enum rfd_compact_type elem_type, uint32_t n);
void rfd_cw_map_begin(struct rfd_cw *w, enum rfd_compact_type key_type,
                      enum rfd_compact_type value_type, uint32_t n);

/* Header and value in one call. */
void rfd_cw_field_i32(struct rfd_cw *w, int16_t id, int32_t value);
void rfd_cw_field_i64(struct rfd_cw *w, int16_t id, int64_t value);
void rfd_cw_field_binary(struct rfd_cw *w, int16_t id, const void *bytes, size_t len);
void rfd_cw_field_string(struct rfd_cw *w, int16_t id, const char *text);

/*
 * Reader.  Every function returns 0 (rfd_cr_field: 1 for a field, 0 at the
 * struct's stop byte) or -EBADMSG; the first failure is sticky and
 * rfd_cr_error() returns its reason, a static string.  Outputs are zeroed
 * on failure.
 *
 * It accepts what fbthrift writes and refuses: varints longer than 3, 5 or
 * 10 bytes (i16, 32-bit, i64), with a redundant trailing zero byte, or with
 * a value over the type's range; negative sizes; sizes that cannot fit in
 * the bytes left (each element needs at least 1 byte, a float 4, a double 8;
 * a map entry its key's plus its value's); type ids over 13 and STOP as an
 * element, key or value type; a STOP header byte with a nonzero delta; field ids outside int16 by
 * delta; bool elements other than 0, 1, 2 (0 as false, as some encoders write it); and nesting over
 * RFD_COMPACT_MAX_DEPTH.
 */
struct rfd_cr {
	const uint8_t *p;
	const uint8_t *end;
	const char *why;
	unsigned depth;
	uint8_t open[RFD_COMPACT_MAX_DEPTH + 1]; /* RFD_CT_STRUCT, _LIST, _SET or _MAP */
	int16_t last_id[RFD_COMPACT_MAX_DEPTH + 1];
};

struct rfd_cr_field {
	uint8_t type; /* an enum rfd_compact_type; both bool wire types read as RFD_CT_BOOL */
	int16_t id;
	bool bool_value; /* the value of a bool field */
};

void rfd_cr_init(struct rfd_cr *r, const uint8_t *bytes, size_t len);

/* The reason for the first failure, or NULL. */
const char *rfd_cr_error(const struct rfd_cr *r);

/* Record @why as the failure (unless one is recorded) and return -EBADMSG. */
int rfd_cr_fail(struct rfd_cr *r, const char *why);

/* 0 when nothing failed, every struct and container was ended and no bytes are left. */
int rfd_cr_finish(struct rfd_cr *r);

size_t rfd_cr_remaining(const struct rfd_cr *r);

int rfd_cr_struct_begin(struct rfd_cr *r);
/*
 * The next field header of the innermost struct: 1 with @f filled in, or 0
 * at the stop byte, which also ends the struct.  A non-bool field's value
 * must then be read or skipped before the next call.
 */
int rfd_cr_field(struct rfd_cr *r, struct rfd_cr_field *f);
/* Skips a field's value (nothing for a bool field). */
int rfd_cr_skip_field(struct rfd_cr *r, const struct rfd_cr_field *f);

/* For an empty map both types read as RFD_CT_STOP. */
int rfd_cr_list_begin(struct rfd_cr *r, uint8_t *elem_type, uint32_t *n);
int rfd_cr_set_begin(struct rfd_cr *r, uint8_t *elem_type, uint32_t *n);
int rfd_cr_map_begin(struct rfd_cr *r, uint8_t *key_type, uint8_t *value_type, uint32_t *n);
/* After the last element of a list, set or map. */
int rfd_cr_list_end(struct rfd_cr *r);
int rfd_cr_set_end(struct rfd_cr *r);
int rfd_cr_map_end(struct rfd_cr *r);

int rfd_cr_bool(struct rfd_cr *r, bool *value); /* container elements only */
int rfd_cr_byte(struct rfd_cr *r, int8_t *value);
int rfd_cr_i16(struct rfd_cr *r, int16_t *value);
int rfd_cr_i32(struct rfd_cr *r, int32_t *value);
int rfd_cr_i64(struct rfd_cr *r, int64_t *value);
int rfd_cr_double(struct rfd_cr *r, double *value);
int rfd_cr_float(struct rfd_cr *r, float *value);
/* A slice into the input. */
int rfd_cr_binary(struct rfd_cr *r, struct rfd_slice *value);

/* Skips one value of @type as a container element (a bool is one byte). */
int rfd_cr_skip(struct rfd_cr *r, uint8_t type);

#endif
