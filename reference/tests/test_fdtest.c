/* SPDX-License-Identifier: MIT */
/*
 * The FdTest codec, FD descriptions, opening beneath a root, and the service
 * answering a real client (the server in a child process).
 *
 * Byte vectors were worked out by hand from the Compact protocol rules
 * (field header = id delta << 4 | type, long form type then zigzag i16 id;
 * zigzag varints; list header = size << 4 | element type; bool value in the
 * field header, 1 true and 2 false).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rocketfd/rocketfd.h>

#include "alloc.h"
#include "buf.h"
#include "compact.h"
#include "fdtest.h"
#include "fdtest_service.h"
#include "log.h"
#include "testutil.h"

enum { HEX_MAX = 512 };

#define CHECK_HEX(bytes, len, hex) check_hex(__FILE__, __LINE__, (bytes), (len), (hex))
#define CHECK_WHY(why, want)       check_why(__FILE__, __LINE__, (why), (want))

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

/* @why must contain @want. */
static void
check_why(const char *file, int line, const char *why, const char *want)
{
	if (!why || !strstr(why, want))
		rfd_test_fail(file, line, "reason \"%s\", want \"%s\"", why ? why : "(none)", want);
}

/* ---- Vectors ---- */

/* {1: string "ab"} */
static const char args_ab[] = "18 02 61 62 00";

/*
 * {0: FdReport {1: "t", 2: [
 *	{dev 5, ino 300, type S_IFREG, cloexec true, flags O_RDWR},
 *	{dev -1, ino 1, type S_IFIFO, cloexec false, flags O_WRONLY|O_NONBLOCK}]}}
 *
 * 0c 00          field 0, struct (long form: type, zigzag id 0)
 * 18 01 74       field 1 (delta 1), binary, "t"
 * 19 2c          field 2, list; 2 elements of struct
 * 16 0a          dev: i64 zigzag(5) = 10
 * 16 d8 04       ino: zigzag(300) = 600 = 0x58 | 0x80, 4
 * 15 80 80 04    type: i32 zigzag(0x8000) = 0x10000
 * 11             cloexec: bool true in the header
 * 15 04          flags: zigzag(2) = 4
 * 00
 * 16 01          dev: zigzag(-1) = 1
 * 16 02          ino: zigzag(1) = 2
 * 15 80 40       type: zigzag(0x1000) = 0x2000
 * 12             cloexec: bool false
 * 15 82 20       flags: zigzag(0x801) = 0x1002
 * 00 00 00       end of FdInfo's list element, FdReport, the result
 */
static const char report_two[] = "0c 00 18 01 74 19 2c"
                                 " 16 0a 16 d8 04 15 80 80 04 11 15 04 00"
                                 " 16 01 16 02 15 80 40 12 15 82 20 00"
                                 " 00 00";

/* {0: "hi"} */
static const char string_hi[] = "08 00 02 68 69 00";

/* {1: FdTestError {1: "no", 2: 13}} */
static const char error_no[] = "1c 18 02 6e 6f 15 1a 00 00";

static const struct fdt_fdinfo two_infos[2] = {
    {.dev = 5, .ino = 300, .type = S_IFREG, .cloexec = true, .flags = O_RDWR},
    {.dev = -1, .ino = 1, .type = S_IFIFO, .cloexec = false, .flags = O_WRONLY | O_NONBLOCK},
};

static size_t
hex(const char *text, uint8_t *out)
{
	return rfd_test_hex(text, out, HEX_MAX);
}

/* ---- Arguments ---- */

static void
test_args_vector(void)
{
	struct fdt_bytes bytes;
	uint8_t in[HEX_MAX];
	const char *why = "unset";
	char *text = NULL;

	CHECK_EQ(fdt_encode_args("ab", &bytes), 0);
	CHECK_HEX(bytes.data, bytes.len, args_ab);
	fdt_bytes_free(&bytes);

	CHECK_EQ(fdt_decode_args(in, hex(args_ab, in), &text, NULL, &why), 0);
	CHECK(text && strcmp(text, "ab") == 0);
	CHECK(why == NULL);
	free(text);

	CHECK_EQ(fdt_encode_empty_args(&bytes), 0);
	CHECK_HEX(bytes.data, bytes.len, "00");
	fdt_bytes_free(&bytes);
}

static void
test_args_skip_and_defaults(void)
{
	uint8_t in[HEX_MAX];
	const char *why;
	char *text = NULL;

	/* {2: i64 1, 1: "x"}: field 1 after field 2 needs the long form (08, zigzag 1 = 02). */
	CHECK_EQ(fdt_decode_args(in, hex("26 02 08 02 01 78 00", in), &text, NULL, &why), 0);
	CHECK(text && strcmp(text, "x") == 0);
	free(text);

	/* No field 1: the Thrift default "". */
	CHECK_EQ(fdt_decode_args(in, hex("00", in), &text, NULL, &why), 0);
	CHECK(text && strcmp(text, "") == 0);
	free(text);

	/* {3: i32 7, 4: list<i32> [1]} for lastRecorded: both skipped. */
	CHECK_EQ(fdt_decode_empty_args(in, hex("35 0e 19 15 02 00", in), &why), 0);

	/* A repeated field: the last one counts. */
	CHECK_EQ(fdt_decode_args(in, hex("18 01 61 08 02 01 62 00", in), &text, NULL, &why), 0);
	CHECK(text && strcmp(text, "b") == 0);
	free(text);
}

static void
test_args_rejected(void)
{
	uint8_t in[HEX_MAX];
	const char *why;
	char *text = (char *)"untouched";

	CHECK_EQ(fdt_decode_args(in, hex("15 02 00", in), &text, NULL, &why), -EBADMSG);
	CHECK_WHY(why, "argument 1 is not a string");
	CHECK(text == NULL);

	CHECK_EQ(fdt_decode_args(in, hex("18 02 61 00 00", in), &text, NULL, &why), -EBADMSG);
	CHECK_WHY(why, "NUL");

	CHECK_EQ(fdt_decode_args(in, hex("00 00", in), &text, NULL, &why), -EBADMSG);
	CHECK_WHY(why, "trailing bytes");

	CHECK_EQ(fdt_decode_args(in, 0, &text, NULL, &why), -EBADMSG);
	CHECK(why != NULL);

	/* Length 5 with 2 bytes left. */
	CHECK_EQ(fdt_decode_args(in, hex("18 05 61 62 00", in), &text, NULL, &why), -EBADMSG);
	CHECK(why != NULL);
	CHECK(text == NULL);
}

static void
test_args_with_nul(void)
{
	uint8_t in[HEX_MAX];
	const char *why;
	char *text = NULL;
	size_t len = 0;

	/* {1: "a\0b"}: kept whole when the caller takes the length. */
	CHECK_EQ(fdt_decode_args(in, hex("18 03 61 00 62 00", in), &text, &len, &why), 0);
	CHECK_EQ(len, 3);
	CHECK(text && memcmp(text, "a\0b", 4) == 0);
	free(text);
	CHECK_EQ(fdt_decode_args(in, hex("18 03 61 00 62 00", in), &text, NULL, &why), -EBADMSG);
	CHECK_WHY(why, "string holds a NUL byte");
	CHECK(text == NULL);
}

/* 6.1: a string has no length limit of its own; 32 MiB + 1 bytes decode whole. */
static void
test_string_limit(void)
{
	size_t len = (32u << 20) + 1;
	char *big = malloc(len + 1);
	struct fdt_bytes bytes;
	const char *why = NULL;
	char *text = NULL;

	REQUIRE(big);
	memset(big, 'a', len);
	big[len] = '\0';
	CHECK_EQ(fdt_encode_args(big, &bytes), 0);
	CHECK_EQ(fdt_decode_args(bytes.data, bytes.len, &text, NULL, &why), 0);
	CHECK(text && strlen(text) == len);
	free(text);
	fdt_bytes_free(&bytes);
	free(big);
}

/* 17.1: a report's tag and echo's result carry NUL bytes unchanged. */
static void
test_tags_with_nul(void)
{
	struct fdt_report report = {.tag = (char *)"a\0b", .tag_len = 3};
	struct fdt_report back, copy;
	struct fdt_bytes bytes;
	const char *why = NULL;

	CHECK_EQ(fdt_encode_report_result(&report, &bytes), 0);
	CHECK_HEX(bytes.data, bytes.len, "0c 00 18 03 61 00 62 19 0c 00 00");
	CHECK_EQ(fdt_decode_report_result(bytes.data, bytes.len, &back, &why), 0);
	CHECK_EQ(back.tag_len, 3);
	CHECK(back.tag && memcmp(back.tag, "a\0b", 4) == 0);
	CHECK_EQ(fdt_report_copy(&copy, &back), 0);
	CHECK_EQ(copy.tag_len, 3);
	CHECK(copy.tag && memcmp(copy.tag, "a\0b", 4) == 0);
	fdt_report_free(&copy);
	fdt_report_free(&back);
	fdt_bytes_free(&bytes);

	CHECK_EQ(fdt_encode_bytes_result("x\0y", 3, &bytes), 0);
	CHECK_HEX(bytes.data, bytes.len, "08 00 03 78 00 79 00");
	fdt_bytes_free(&bytes);

	/* A tag without tag_len is a C string. */
	report = (struct fdt_report){.tag = (char *)"kt"};
	CHECK_EQ(fdt_encode_report_result(&report, &bytes), 0);
	CHECK_EQ(fdt_decode_report_result(bytes.data, bytes.len, &back, &why), 0);
	CHECK(back.tag && strcmp(back.tag, "kt") == 0 && back.tag_len == 2);
	fdt_report_free(&back);
	fdt_bytes_free(&bytes);
}

/* ---- Reports ---- */

static void
test_report_vector(void)
{
	struct fdt_fdinfo infos[2];
	struct fdt_report report = {.tag = (char *)"t", .n_fds = 2, .fds = infos};
	struct fdt_report back;
	struct fdt_bytes bytes;
	uint8_t in[HEX_MAX];
	const char *why;

	memcpy(infos, two_infos, sizeof(infos));
	CHECK_EQ(fdt_encode_report_result(&report, &bytes), 0);
	CHECK_HEX(bytes.data, bytes.len, report_two);
	fdt_bytes_free(&bytes);

	CHECK_EQ(fdt_decode_report_result(in, hex(report_two, in), &back, &why), 0);
	REQUIRE(back.tag && back.n_fds == 2);
	CHECK(strcmp(back.tag, "t") == 0);
	CHECK_EQ(back.fds[0].dev, 5);
	CHECK_EQ(back.fds[0].ino, 300);
	CHECK_EQ(back.fds[0].type, S_IFREG);
	CHECK_EQ(back.fds[0].cloexec, true);
	CHECK_EQ(back.fds[0].flags, O_RDWR);
	CHECK_EQ(back.fds[1].dev, -1);
	CHECK_EQ(back.fds[1].ino, 1);
	CHECK_EQ(back.fds[1].type, S_IFIFO);
	CHECK_EQ(back.fds[1].cloexec, false);
	CHECK_EQ(back.fds[1].flags, O_WRONLY | O_NONBLOCK);
	fdt_report_free(&back);
}

/* The vectors of spec/fd-passing.md appendix A.6 and A.7, from the spec's text. */
static void
test_spec_vectors(void)
{
	static const char a6[] = "0c 00 18 04 6b 74 68 78 19 1c 16 0a 16 08 15 80 80 01 11"
	                         " 15 84 80 04 00 00 00";
	static const char a7[] = "1c 18 26 6d 69 73 73 69 6e 67 2e 74 78 74 3a 20 4e 6f 20 73"
	                         " 75 63 68 20 66 69 6c 65 20 6f 72 20 64 69 72 65 63 74 6f 72"
	                         " 79 15 04 00 00";
	struct fdt_fdinfo info = {
	    .dev = 5, .ino = 4, .type = 0x2000, .cloexec = true, .flags = 0x8002};
	struct fdt_report report = {.tag = (char *)"kthx", .n_fds = 1, .fds = &info};
	struct fdt_open_result result;
	struct fdt_bytes bytes;
	uint8_t in[HEX_MAX];
	const char *why;

	CHECK_EQ(fdt_encode_report_result(&report, &bytes), 0);
	CHECK_HEX(bytes.data, bytes.len, a6);
	fdt_bytes_free(&bytes);
	CHECK_EQ(fdt_encode_error_result("missing.txt: No such file or directory", ENOENT, &bytes),
	         0);
	CHECK_HEX(bytes.data, bytes.len, a7);
	fdt_bytes_free(&bytes);
	CHECK_EQ(fdt_decode_open_result(in, hex(a7, in), &result, &why), 0);
	CHECK(result.failed && result.error.errnum == 2);
	fdt_open_result_free(&result);
	CHECK_EQ(fdt_encode_report_result(&(struct fdt_report){.tag = (char *)""}, &bytes), 0);
	CHECK_HEX(bytes.data, bytes.len, "0c 00 18 00 19 0c 00 00");
	fdt_bytes_free(&bytes);
}

static void
test_report_skips_unknown_fields(void)
{
	/*
	 * {0: {3: i32 1, 2: [ {9: binary "z", 1: i64 5, 4: true} ], 1: "t"}, 5: i32 0}
	 * Unknown fields in the result, the report and the FdInfo; fields out of order.
	 */
	static const char vector[] = "0c 00 35 02 09 04 1c 98 01 7a 06 02 0a 31 00"
	                             " 08 02 01 74 00 55 00 00";
	struct fdt_report report;
	uint8_t in[HEX_MAX];
	const char *why;

	CHECK_EQ(fdt_decode_report_result(in, hex(vector, in), &report, &why), 0);
	REQUIRE(report.tag && report.n_fds == 1);
	CHECK(strcmp(report.tag, "t") == 0);
	CHECK_EQ(report.fds[0].dev, 5);
	CHECK_EQ(report.fds[0].ino, 0);
	CHECK_EQ(report.fds[0].cloexec, true);
	fdt_report_free(&report);
}

static void
test_report_rejected(void)
{
	static const struct {
		const char *hex;
		const char *why;
	} cases[] = {
	    {"00", "no return value"},
	    {"08 00 00 00", "result field 0 is not a struct"},
	    {"0c 00 15 02 00 00", "FdReport.tag is not a string"},
	    {"0c 00 28 00 00 00", "FdReport.fds is not a list"},
	    {"0c 00 29 15 02 00 00", "not a list of structs"},
	    {"0c 00 29 1c 15 02 00 00 00", "FdInfo.dev is not an i64"},
	    {"0c 00 29 1c 36 02 00 00 00", "FdInfo.type is not an i32"},
	    {"0c 00 29 1c 45 02 00 00 00", "FdInfo.cloexec is not a bool"},
	    {"0c 00 00 00 00", "trailing bytes"},
	};
	struct fdt_report report;
	uint8_t in[HEX_MAX];
	const char *why;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_EQ(fdt_decode_report_result(in, hex(cases[i].hex, in), &report, &why),
		         -EBADMSG);
		CHECK_WHY(why, cases[i].why);
		CHECK(report.tag == NULL && report.fds == NULL && report.n_fds == 0);
	}
}

static void
fill_infos(struct fdt_fdinfo *infos, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		infos[i].dev = (int64_t)(i * 0x100000001ull) - 7;
		infos[i].ino = INT64_MAX - (int64_t)i;
		infos[i].type = (int32_t)(i % 2 ? S_IFSOCK : S_IFCHR);
		infos[i].cloexec = i % 3 == 0;
		infos[i].flags = (int32_t)i * 0x1001 - 1;
	}
}

static void
test_report_round_trips(void)
{
	static const size_t sizes[] = {0, 1, 14, 15, FDT_MAX_FDS};
	struct fdt_fdinfo *infos = calloc(FDT_MAX_FDS + 1, sizeof(*infos));

	REQUIRE(infos);
	fill_infos(infos, FDT_MAX_FDS + 1);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct fdt_report report = {
		    .tag = (char *)"round trip", .n_fds = sizes[s], .fds = infos};
		struct fdt_report back;
		struct fdt_bytes bytes;
		const char *why;

		CHECK_EQ(fdt_encode_report_result(&report, &bytes), 0);
		CHECK_EQ(fdt_decode_report_result(bytes.data, bytes.len, &back, &why), 0);
		CHECK_EQ(back.n_fds, sizes[s]);
		CHECK(back.tag && strcmp(back.tag, "round trip") == 0);
		if (back.n_fds == sizes[s] && sizes[s] > 0)
			CHECK_MEM(back.fds, infos, sizes[s] * sizeof(*infos));
		fdt_report_free(&back);
		fdt_bytes_free(&bytes);
	}
	free(infos);
}

/* A report of 254 FDs, written with the Compact writer directly: refused. */
static void
test_report_too_many_fds(void)
{
	struct fdt_fdinfo infos[FDT_MAX_FDS + 1];
	struct fdt_report report = {.tag = (char *)"", .n_fds = FDT_MAX_FDS + 1, .fds = infos};
	struct fdt_report back;
	struct fdt_bytes bytes;
	struct rfd_buf buf;
	struct rfd_cw w;
	const char *why;

	fill_infos(infos, FDT_MAX_FDS + 1);
	CHECK_EQ(fdt_encode_report_result(&report, &bytes), -EINVAL);
	CHECK(bytes.data == NULL);

	rfd_buf_init(&buf);
	rfd_cw_init(&w, &buf);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_STRUCT, 0);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_LIST, 2);
	rfd_cw_list_begin(&w, RFD_CT_STRUCT, FDT_MAX_FDS + 1);
	for (size_t i = 0; i < FDT_MAX_FDS + 1; i++) {
		rfd_cw_struct_begin(&w);
		rfd_cw_struct_end(&w);
	}
	rfd_cw_struct_end(&w);
	rfd_cw_struct_end(&w);
	REQUIRE(rfd_cw_finish(&w) == 0);
	CHECK_EQ(fdt_decode_report_result(buf.data, buf.len, &back, &why), -EBADMSG);
	CHECK_WHY(why, "more FDs than one message can carry");
	rfd_buf_free(&buf);
}

/* ---- Other results ---- */

static void
test_string_and_error_results(void)
{
	struct fdt_open_result result;
	struct fdt_bytes bytes;
	uint8_t in[HEX_MAX];
	const char *why;
	char *text = NULL;

	CHECK_EQ(fdt_encode_string_result("hi", &bytes), 0);
	CHECK_HEX(bytes.data, bytes.len, string_hi);
	fdt_bytes_free(&bytes);
	CHECK_EQ(fdt_encode_error_result("no", 13, &bytes), 0);
	CHECK_HEX(bytes.data, bytes.len, error_no);
	fdt_bytes_free(&bytes);

	CHECK_EQ(fdt_decode_string_result(in, hex(string_hi, in), &text, &why), 0);
	CHECK(text && strcmp(text, "hi") == 0);
	free(text);

	CHECK_EQ(fdt_decode_open_result(in, hex(string_hi, in), &result, &why), 0);
	CHECK(!result.failed);
	CHECK(result.path && strcmp(result.path, "hi") == 0);
	fdt_open_result_free(&result);

	CHECK_EQ(fdt_decode_open_result(in, hex(error_no, in), &result, &why), 0);
	CHECK(result.failed);
	CHECK(result.path == NULL);
	CHECK(result.error.message && strcmp(result.error.message, "no") == 0);
	CHECK_EQ(result.error.errnum, 13);
	fdt_open_result_free(&result);

	/* echo declares no exception. */
	CHECK_EQ(fdt_decode_string_result(in, hex(error_no, in), &text, &why), -EBADMSG);
	CHECK_WHY(why, "does not declare");
	CHECK(text == NULL);

	/* Both a value and an exception; neither. */
	CHECK_EQ(fdt_decode_open_result(in, hex("08 00 02 68 69 1c 00 00", in), &result, &why),
	         -EBADMSG);
	CHECK_WHY(why, "both");
	CHECK(result.path == NULL && result.error.message == NULL);
	CHECK_EQ(fdt_decode_open_result(in, hex("00", in), &result, &why), -EBADMSG);
	CHECK_WHY(why, "no return value");

	/* An FdTestError with no fields: message "" and errnum 0. */
	CHECK_EQ(fdt_decode_open_result(in, hex("1c 00 00", in), &result, &why), 0);
	CHECK(result.failed && result.error.message && result.error.message[0] == '\0');
	CHECK_EQ(result.error.errnum, 0);
	fdt_open_result_free(&result);
}

/* ---- Truncation and allocation failures ---- */

/* Decode @len bytes from a heap copy of exactly that size, so overreads are caught. */
static int
decode_prefix(const uint8_t *full, size_t len, int which, const char **why)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct fdt_report report;
	struct fdt_open_result result;
	char *text = NULL;
	int r;

	if (!copy)
		abort();
	memcpy(copy, full, len);
	switch (which) {
	case 0:
		r = fdt_decode_args(copy, len, &text, NULL, why);
		if (r < 0 && text)
			r = 1;
		free(text);
		break;
	case 1:
		r = fdt_decode_report_result(copy, len, &report, why);
		if (r < 0 && (report.tag || report.fds || report.n_fds))
			r = 1;
		fdt_report_free(&report);
		break;
	default:
		r = fdt_decode_open_result(copy, len, &result, why);
		if (r < 0 && (result.path || result.error.message))
			r = 1;
		fdt_open_result_free(&result);
		break;
	}
	free(copy);
	return r;
}

static void
test_truncation_everywhere(void)
{
	static const struct {
		const char *hex;
		int which;
	} vectors[] = {
	    {args_ab, 0},
	    {report_two, 1},
	    {string_hi, 2},
	    {error_no, 2},
	};
	uint8_t in[HEX_MAX];

	for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
		size_t len = hex(vectors[v].hex, in);
		const char *why;

		CHECK_EQ(decode_prefix(in, len, vectors[v].which, &why), 0);
		for (size_t cut = 0; cut < len; cut++) {
			why = NULL;
			int r = decode_prefix(in, cut, vectors[v].which, &why);

			if (r != -EBADMSG || !why)
				rfd_test_fail(__FILE__, __LINE__,
				              "vector %zu cut at %zu: %d, reason %s", v, cut, r,
				              why ? why : "(none)");
		}
	}
}

static void
test_allocation_failures(void)
{
	struct fdt_report report;
	struct fdt_bytes bytes;
	uint8_t in[HEX_MAX];
	size_t len = hex(report_two, in);
	const char *why;
	long n;
	int r;

	for (n = 0; n < 20; n++) {
		rfd_alloc_fail_at(n);
		r = fdt_decode_report_result(in, len, &report, &why);
		rfd_alloc_fail_at(-1);
		if (r == 0) {
			fdt_report_free(&report);
			break;
		}
		CHECK_EQ(r, -ENOMEM);
		CHECK(why && strcmp(why, "out of memory") == 0);
		CHECK(report.tag == NULL && report.fds == NULL);
	}
	CHECK(n > 0 && n < 20);

	for (n = 0; n < 20; n++) {
		struct fdt_report two = {
		    .tag = (char *)"t", .n_fds = 2, .fds = (struct fdt_fdinfo *)two_infos};

		rfd_alloc_fail_at(n);
		r = fdt_encode_report_result(&two, &bytes);
		rfd_alloc_fail_at(-1);
		if (r == 0) {
			fdt_bytes_free(&bytes);
			break;
		}
		CHECK_EQ(r, -ENOMEM);
		CHECK(bytes.data == NULL);
	}
	CHECK(n > 0 && n < 20);
}

/* ---- Describing FDs ---- */

static void
test_describe_fd(void)
{
	struct fdt_fdinfo info;
	struct stat st;
	char text[128];
	int ends[2];
	int fd;

	REQUIRE(pipe2(ends, O_CLOEXEC | O_NONBLOCK) == 0);
	CHECK_EQ(fdt_describe_fd(ends[1], &info), 0);
	REQUIRE(fstat(ends[1], &st) == 0);
	CHECK_EQ(info.dev, (int64_t)st.st_dev);
	CHECK_EQ(info.ino, (int64_t)st.st_ino);
	CHECK_EQ(info.type, S_IFIFO);
	CHECK_EQ(info.cloexec, true);
	CHECK_EQ(info.flags & O_ACCMODE, O_WRONLY);
	CHECK(info.flags & O_NONBLOCK);
	CHECK(strcmp(fdt_flags_string(info.flags, text, sizeof(text)), "O_WRONLY|O_NONBLOCK") == 0);
	close(ends[0]);
	close(ends[1]);

	fd = open("/dev/null", O_RDWR | O_APPEND);
	REQUIRE(fd >= 0);
	CHECK_EQ(fdt_describe_fd(fd, &info), 0);
	CHECK_EQ(info.type, S_IFCHR);
	CHECK_EQ(info.cloexec, false);
	CHECK_EQ(info.flags & O_ACCMODE, O_RDWR);
	CHECK(info.flags & O_APPEND);
	close(fd);
	CHECK_EQ(fdt_describe_fd(fd, &info), -EBADF);
}

static void
test_names(void)
{
	struct fdt_fdinfo info = {
	    .dev = 3, .ino = 42, .type = S_IFSOCK, .cloexec = true, .flags = O_RDWR | 0x40000000};
	char text[128];

	CHECK(strcmp(fdt_type_name(S_IFREG), "regular") == 0);
	CHECK(strcmp(fdt_type_name(S_IFDIR), "dir") == 0);
	CHECK(strcmp(fdt_type_name(S_IFCHR), "chr") == 0);
	CHECK(strcmp(fdt_type_name(0), "unknown") == 0);
	CHECK(strcmp(fdt_flags_string(O_RDONLY, text, sizeof(text)), "O_RDONLY") == 0);
	CHECK(strcmp(fdt_flags_string(O_WRONLY | O_APPEND | O_NONBLOCK, text, sizeof(text)),
	             "O_WRONLY|O_NONBLOCK|O_APPEND") == 0);
	CHECK(strcmp(fdt_flags_string(O_RDONLY | 0100000, text, sizeof(text)),
	             "O_RDONLY|O_LARGEFILE") == 0);
	CHECK(strcmp(fdt_fdinfo_string(&info, text, sizeof(text)),
	             "socket  3:42 cloexec yes O_RDWR|0x40000000") == 0);
	/* Cut short, still terminated. */
	CHECK(strcmp(fdt_flags_string(O_WRONLY | O_APPEND, text, 6), "O_WRO") == 0);
}

/* ---- Opening beneath a root ---- */

static char root_path[64];

struct root_link {
	const char *name;
	const char *target;
};

/* Symlinks in the root: two escapes, three that stay inside, a loop and a dangling one. */
static const struct root_link root_links[] = {
    {"escape", "/etc/hostname"}, {"uplink", "../outside"}, {"inlink", "file"},
    {"subdir-link", "sub"},      {"sub/back", "../file"},  {"loop", "loop"},
    {"dangling", "nothing"},
};

static void
write_file(const char *name, const char *content)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root_path, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t)strlen(content))
		abort();
	close(fd);
}

static void
make_root(void)
{
	char path[128];

	snprintf(root_path, sizeof(root_path), "/tmp/rfd-fdtest-%d", (int)getpid());
	mkdir(root_path, 0700);
	write_file("file", "hello\n");
	snprintf(path, sizeof(path), "%s/sub", root_path);
	mkdir(path, 0700);
	write_file("sub/inner", "inner\n");
	snprintf(path, sizeof(path), "%s/fifo", root_path);
	mkfifo(path, 0600);
	for (size_t i = 0; i < sizeof(root_links) / sizeof(root_links[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", root_path, root_links[i].name);
		if (symlink(root_links[i].target, path) < 0 && errno != EEXIST)
			abort();
	}
}

static void
remove_root(void)
{
	static const char *const names[] = {"sub/inner", "sub/back", "sub", "file", "fifo"};
	char path[128];

	for (size_t i = 0; i < sizeof(root_links) / sizeof(root_links[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", root_path, root_links[i].name);
		unlink(path);
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", root_path, names[i]);
		if (unlink(path) < 0)
			rmdir(path);
	}
	rmdir(root_path);
}

/* The result of opening @path: the first bytes as text, or the errno's negative. */
static void
check_open(int (*open_fn)(int, const char *), int root_fd, const char *path, int want_errno,
           const char *want_text, int line)
{
	struct fdt_fdinfo info;
	char text[16] = "";
	int fd = open_fn(root_fd, path);

	if (want_errno) {
		if (fd != -want_errno)
			rfd_test_fail(__FILE__, line, "open \"%s\": %d, want %d", path, fd,
			              -want_errno);
		if (fd >= 0)
			close(fd);
		return;
	}
	if (fd < 0) {
		rfd_test_fail(__FILE__, line, "open \"%s\": %s", path, strerror(-fd));
		return;
	}
	if (read(fd, text, sizeof(text) - 1) < 0 || strcmp(text, want_text) != 0)
		rfd_test_fail(__FILE__, line, "open \"%s\" read \"%s\"", path, text);
	if (fdt_describe_fd(fd, &info) < 0 || !info.cloexec || (info.flags & O_NONBLOCK) ||
	    (info.flags & O_ACCMODE) != O_RDONLY)
		rfd_test_fail(__FILE__, line, "open \"%s\": flags 0x%x", path, info.flags);
	close(fd);
}

/* The rules of spec/fd-passing.md section 17.4, for either way of resolving. */
static void
check_open_rules(int (*open_fn)(int, const char *), int root_fd)
{
	char long_name[NAME_MAX + 2];

	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	check_open(open_fn, root_fd, "file", 0, "hello\n", __LINE__);
	check_open(open_fn, root_fd, "./file", 0, "hello\n", __LINE__);
	check_open(open_fn, root_fd, "sub/inner", 0, "inner\n", __LINE__);
	check_open(open_fn, root_fd, "sub//inner", 0, "inner\n", __LINE__);
	check_open(open_fn, root_fd, "sub/../file", 0, "hello\n", __LINE__);
	check_open(open_fn, root_fd, "inlink", 0, "hello\n", __LINE__);
	check_open(open_fn, root_fd, "subdir-link/inner", 0, "inner\n", __LINE__);
	check_open(open_fn, root_fd, "sub/back", 0, "hello\n", __LINE__);
	check_open(open_fn, root_fd, "", ENOENT, NULL, __LINE__);
	check_open(open_fn, root_fd, "/etc/hostname", EXDEV, NULL, __LINE__);
	check_open(open_fn, root_fd, "../file", EXDEV, NULL, __LINE__);
	check_open(open_fn, root_fd, "sub/../../file", EXDEV, NULL, __LINE__);
	check_open(open_fn, root_fd, "escape", EXDEV, NULL, __LINE__);
	check_open(open_fn, root_fd, "uplink", EXDEV, NULL, __LINE__);
	check_open(open_fn, root_fd, "missing", ENOENT, NULL, __LINE__);
	check_open(open_fn, root_fd, "dangling", ENOENT, NULL, __LINE__);
	check_open(open_fn, root_fd, "sub/missing/x", ENOENT, NULL, __LINE__);
	check_open(open_fn, root_fd, "file/", ENOTDIR, NULL, __LINE__);
	check_open(open_fn, root_fd, "file/x", ENOTDIR, NULL, __LINE__);
	check_open(open_fn, root_fd, "inlink/", ENOTDIR, NULL, __LINE__);
	check_open(open_fn, root_fd, "loop", ELOOP, NULL, __LINE__);
	check_open(open_fn, root_fd, long_name, ENAMETOOLONG, NULL, __LINE__);
	check_open(open_fn, root_fd, "sub", EINVAL, NULL, __LINE__);
	check_open(open_fn, root_fd, "sub/", EINVAL, NULL, __LINE__);
	check_open(open_fn, root_fd, "subdir-link", EINVAL, NULL, __LINE__);
	check_open(open_fn, root_fd, ".", EINVAL, NULL, __LINE__);
	check_open(open_fn, root_fd, "sub/..", EINVAL, NULL, __LINE__);
	check_open(open_fn, root_fd, "fifo", EINVAL, NULL, __LINE__);
}

static void
test_open_beneath(void)
{
	int root_fd = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);

	REQUIRE(root_fd >= 0);
	check_open_rules(fdt_open_beneath, root_fd);
	close(root_fd);
}

static void
test_open_beneath_walk(void)
{
	int root_fd = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);

	REQUIRE(root_fd >= 0);
	check_open_rules(fdt_open_beneath_walk, root_fd);
	close(root_fd);
}

/* "./" @times times followed by @tail, in a fresh string the caller frees. */
static char *
dotted_path(size_t times, const char *tail)
{
	size_t tail_len = strlen(tail);
	char *path = malloc(2 * times + tail_len + 1);

	if (!path)
		return NULL;
	for (size_t i = 0; i < times; i++)
		memcpy(path + 2 * i, "./", 2);
	memcpy(path + 2 * times, tail, tail_len + 1);
	return path;
}

/*
 * 17.4 rule 5: a path of 4096 bytes or more is too long; a symlink's target
 * joined to the rest of the path is not a path, whatever its length.
 */
static void
test_open_path_lengths(void)
{
	int (*const open_fns[])(int, const char *) = {fdt_open_beneath, fdt_open_beneath_walk};
	int root_fd = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	char *longest = dotted_path(2045, "file");   /* 4094 bytes */
	char *too_long = dotted_path(2046, "file");  /* 4096 bytes */
	char *target = dotted_path(1500, "sub");     /* 3003 bytes */
	char *via_link = dotted_path(1000, "inner"); /* 2005 bytes after "longlink/" */
	char link_path[160], *joined = NULL;

	REQUIRE(root_fd >= 0);
	REQUIRE(longest && too_long && target && via_link);
	CHECK_EQ(strlen(too_long), 4096);
	snprintf(link_path, sizeof(link_path), "%s/longlink", root_path);
	REQUIRE(symlink(target, link_path) == 0);
	joined = malloc(strlen(via_link) + 10);
	REQUIRE(joined);
	snprintf(joined, strlen(via_link) + 10, "longlink/%s", via_link);
	for (size_t i = 0; i < 2; i++) {
		check_open(open_fns[i], root_fd, longest, 0, "hello\n", __LINE__);
		check_open(open_fns[i], root_fd, too_long, ENAMETOOLONG, NULL, __LINE__);
		check_open(open_fns[i], root_fd, joined, 0, "inner\n", __LINE__);
	}
	unlink(link_path);
	free(joined);
	free(longest);
	free(too_long);
	free(target);
	free(via_link);
	close(root_fd);
}

/* ---- The service over a real socket ---- */

static char socket_path[108];
static pid_t server_pid = -1;
static struct rfd_server *child_server;

static void
on_term(int sig)
{
	rfd_server_stop(child_server);
}

static void
run_server(int ready_fd, int root_fd)
{
	/* What is open once the ready pipe and the root (which the service owns) are closed. */
	int expected_fds = rfd_test_count_fds() - 2;
	struct rfd_server_options options;
	struct fdt_service *service;

	log_init("test_fdtest server", LOG_LEVEL_WARN);
	if (fdt_service_new(root_fd, &service) < 0)
		_exit(3);
	rfd_server_options_init(&options);
	options.closed = fdt_service_closed;
	if (rfd_server_listen(socket_path, &options, fdt_service_handle, service, &child_server) <
	    0)
		_exit(3);
	signal(SIGTERM, on_term);
	if (write(ready_fd, "r", 1) != 1)
		_exit(3);
	close(ready_fd);
	rfd_server_run(child_server, -1);
	rfd_server_free(child_server);
	fdt_service_free(service);
	/* The server and the service closed every FD they had. */
	_exit(rfd_test_count_fds() == expected_fds ? 0 : 5);
}

static void
start_server(void)
{
	int ready[2];
	char c;

	snprintf(socket_path, sizeof(socket_path), "/tmp/rfd-fdtest-%d.sock", (int)getpid());
	if (pipe2(ready, O_CLOEXEC) < 0)
		abort();
	server_pid = fork();
	if (server_pid == 0) {
		int root_fd = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);

		close(ready[0]);
		run_server(ready[1], root_fd);
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1) {
		fprintf(stderr, "server did not start\n");
		exit(1);
	}
	close(ready[0]);
}

static void
stop_server(void)
{
	int status;

	kill(server_pid, SIGTERM);
	waitpid(server_pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static struct rfd_client *
connect_client(void)
{
	struct rfd_client *client = NULL;
	int r = rfd_client_connect(socket_path, NULL, &client);

	if (r < 0)
		rfd_test_fail(__FILE__, __LINE__, "connect: %s", strerror(-r));
	return client;
}

/* Call @method with raw args; the reply's kind, with *reply kept when @reply is not NULL. */
static int
call_raw(struct rfd_client *client, const char *method, const char *args_hex, const int *fds,
         size_t n_fds, struct rfd_msg **reply)
{
	uint8_t args[HEX_MAX];
	struct rfd_msg *msg = NULL;
	int r;

	r = rfd_client_call(client, method, args, hex(args_hex, args), fds, n_fds, RFD_FDS_DUP,
	                    5000, &msg);
	if (r < 0) {
		rfd_test_fail(__FILE__, __LINE__, "%s: %s", method, rfd_client_error(client));
		return -1;
	}
	r = (int)rfd_msg_kind(msg);
	if (reply)
		*reply = msg;
	else
		rfd_msg_free(msg);
	return r;
}

static void
test_service_inspect_and_record(void)
{
	struct rfd_client *client = connect_client();
	struct fdt_report report;
	struct rfd_msg *reply = NULL;
	struct fdt_fdinfo local;
	const uint8_t *data;
	const char *why;
	int ends[2];
	size_t len;
	char c;

	REQUIRE(client);
	/* Non-blocking, so that a server keeping the write end fails the EOF check below. */
	REQUIRE(pipe2(ends, O_CLOEXEC | O_NONBLOCK) == 0);
	CHECK_EQ(fdt_describe_fd(ends[1], &local), 0);

	/* lastRecorded before any record: tag "" and no FDs. */
	CHECK_EQ(call_raw(client, FDT_METHOD_LAST, "00", NULL, 0, &reply), RFD_MSG_REPLY);
	data = rfd_msg_data(reply, &len);
	CHECK_HEX(data, len, "0c 00 18 00 19 0c 00 00");
	rfd_msg_free(reply);

	CHECK_EQ(call_raw(client, FDT_METHOD_INSPECT, args_ab, &ends[1], 1, &reply), RFD_MSG_REPLY);
	data = rfd_msg_data(reply, &len);
	CHECK_EQ(fdt_decode_report_result(data, len, &report, &why), 0);
	rfd_msg_free(reply);
	CHECK(report.tag && strcmp(report.tag, "ab") == 0);
	CHECK_EQ(report.n_fds, 1);
	if (report.n_fds == 1) {
		CHECK_EQ(report.fds[0].ino, local.ino);
		CHECK_EQ(report.fds[0].type, S_IFIFO);
		CHECK_EQ(report.fds[0].cloexec, true);
		CHECK_EQ(report.fds[0].flags, local.flags);
	}
	fdt_report_free(&report);

	/* One-way record, then lastRecorded on the same connection. */
	CHECK_EQ(rfd_client_oneway(client, FDT_METHOD_RECORD, "\x18\x01r\x00", 4, &ends[1], 1,
	                           RFD_FDS_TAKE, 5000),
	         0);
	CHECK_EQ(call_raw(client, FDT_METHOD_LAST, "00", NULL, 0, &reply), RFD_MSG_REPLY);
	data = rfd_msg_data(reply, &len);
	CHECK_EQ(fdt_decode_report_result(data, len, &report, &why), 0);
	rfd_msg_free(reply);
	CHECK(report.tag && strcmp(report.tag, "r") == 0);
	CHECK_EQ(report.n_fds, 1);
	CHECK(report.n_fds == 1 && report.fds[0].ino == local.ino);
	fdt_report_free(&report);
	/* Both inspect and record closed their copies: the pipe reads EOF. */
	CHECK_EQ(read(ends[0], &c, 1), 0);
	close(ends[0]);
	rfd_client_free(client);

	/* A new connection starts with an empty record. */
	client = connect_client();
	REQUIRE(client);
	CHECK_EQ(call_raw(client, FDT_METHOD_LAST, "00", NULL, 0, &reply), RFD_MSG_REPLY);
	data = rfd_msg_data(reply, &len);
	CHECK_HEX(data, len, "0c 00 18 00 19 0c 00 00");
	rfd_msg_free(reply);
	rfd_client_free(client);
}

static void
test_service_echo(void)
{
	struct rfd_client *client = connect_client();
	struct rfd_msg *reply = NULL;
	struct stat a, b;
	const uint8_t *data;
	int fds[2];
	size_t len;

	REQUIRE(client);
	fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fds[1] = open(root_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK_EQ(call_raw(client, FDT_METHOD_ECHO, args_ab, fds, 2, &reply), RFD_MSG_REPLY);
	REQUIRE(reply);
	data = rfd_msg_data(reply, &len);
	CHECK_HEX(data, len, "08 00 02 61 62 00");
	CHECK_EQ(rfd_msg_fd_count(reply), 2);
	for (size_t i = 0; i < 2 && i < rfd_msg_fd_count(reply); i++) {
		CHECK(fstat(rfd_msg_fd(reply, i), &a) == 0 && fstat(fds[i], &b) == 0);
		CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	}
	rfd_msg_free(reply);
	close(fds[0]);
	close(fds[1]);
	rfd_client_free(client);
}

static void
test_service_open(void)
{
	struct rfd_client *client = connect_client();
	struct fdt_open_result result;
	struct rfd_msg *reply = NULL;
	const uint8_t *data;
	const char *why;
	char text[8] = "";
	size_t len;

	REQUIRE(client);
	/* {1: "file"} */
	CHECK_EQ(call_raw(client, FDT_METHOD_OPEN, "18 04 66 69 6c 65 00", NULL, 0, &reply),
	         RFD_MSG_REPLY);
	REQUIRE(reply);
	data = rfd_msg_data(reply, &len);
	CHECK_HEX(data, len, "08 00 04 66 69 6c 65 00");
	CHECK_EQ(rfd_msg_fd_count(reply), 1);
	CHECK(rfd_msg_fd_count(reply) == 1 && read(rfd_msg_fd(reply, 0), text, 6) == 6);
	CHECK(strcmp(text, "hello\n") == 0);
	rfd_msg_free(reply);

	/* FDs sent with open and lastRecorded are closed before the answer. */
	for (int i = 0; i < 2; i++) {
		const char *method = i ? FDT_METHOD_LAST : FDT_METHOD_OPEN;
		const char *args = i ? "\x00"
		                     : "\x18\x04"
		                       "fifo\x00";
		int ends[2];
		char c;

		REQUIRE(pipe2(ends, O_CLOEXEC | O_NONBLOCK) == 0);
		CHECK_EQ(rfd_client_call(client, method, args, i ? 1 : 7, &ends[1], 1, RFD_FDS_TAKE,
		                         5000, &reply),
		         0);
		CHECK_EQ(read(ends[0], &c, 1), 0);
		close(ends[0]);
		rfd_msg_free(reply);
	}

	/* {1: "fifo"}: a declared FdTestError with errnum EINVAL, at once. */
	CHECK_EQ(call_raw(client, FDT_METHOD_OPEN, "18 04 66 69 66 6f 00", NULL, 0, &reply),
	         RFD_MSG_EXCEPTION);
	REQUIRE(reply);
	CHECK_EQ(rfd_msg_fd_count(reply), 0);
	CHECK(strstr(rfd_msg_error_text(reply), "not a regular file") != NULL);
	data = rfd_msg_data(reply, &len);
	CHECK_EQ(fdt_decode_open_result(data, len, &result, &why), 0);
	CHECK(result.failed);
	CHECK_EQ(result.error.errnum, EINVAL);
	fdt_open_result_free(&result);
	rfd_msg_free(reply);

	/* {1: "a\0b"}: a path holding a NUL byte is EINVAL. */
	CHECK_EQ(call_raw(client, FDT_METHOD_OPEN, "18 03 61 00 62 00", NULL, 0, &reply),
	         RFD_MSG_EXCEPTION);
	REQUIRE(reply);
	data = rfd_msg_data(reply, &len);
	CHECK_EQ(fdt_decode_open_result(data, len, &result, &why), 0);
	CHECK_EQ(result.error.errnum, EINVAL);
	fdt_open_result_free(&result);
	rfd_msg_free(reply);

	/* {1: "../x"} */
	CHECK_EQ(call_raw(client, FDT_METHOD_OPEN, "18 04 2e 2e 2f 78 00", NULL, 0, &reply),
	         RFD_MSG_EXCEPTION);
	REQUIRE(reply);
	data = rfd_msg_data(reply, &len);
	CHECK_EQ(fdt_decode_open_result(data, len, &result, &why), 0);
	CHECK_EQ(result.error.errnum, EXDEV);
	fdt_open_result_free(&result);
	rfd_msg_free(reply);
	rfd_client_free(client);
}

static void
test_service_errors(void)
{
	struct rfd_client *client = connect_client();
	struct rfd_msg *reply = NULL;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	const uint8_t *data;
	size_t len;

	REQUIRE(client);
	CHECK_EQ(call_raw(client, "nosuch", "00", NULL, 0, &reply), RFD_MSG_ERROR);
	CHECK(reply && rfd_msg_error_code(reply) == 0x204);
	CHECK(reply && strstr(rfd_msg_error_text(reply), "nosuch") != NULL);
	rfd_msg_free(reply);

	/* Arguments that do not decode, with an FD the server must close. */
	CHECK_EQ(call_raw(client, FDT_METHOD_INSPECT, "15 02 00", &fd, 1, &reply), RFD_MSG_ERROR);
	CHECK(reply && rfd_msg_error_code(reply) == 0x204);
	CHECK(reply && strstr(rfd_msg_error_text(reply), "argument 1 is not a string") != NULL);
	rfd_msg_free(reply);

	CHECK_EQ(call_raw(client, FDT_METHOD_LAST, "", NULL, 0, &reply), RFD_MSG_ERROR);
	CHECK(reply && rfd_msg_error_code(reply) == 0x204);
	rfd_msg_free(reply);

	/* record expecting an answer: the wrong kind, and nothing is recorded. */
	CHECK_EQ(call_raw(client, FDT_METHOD_RECORD, args_ab, &fd, 1, &reply), RFD_MSG_ERROR);
	CHECK(reply && rfd_msg_error_code(reply) == 0x204);
	CHECK(reply && strstr(rfd_msg_error_text(reply), "one-way") != NULL);
	rfd_msg_free(reply);
	CHECK_EQ(call_raw(client, FDT_METHOD_LAST, "00", NULL, 0, &reply), RFD_MSG_REPLY);
	data = rfd_msg_data(reply, &len);
	CHECK_HEX(data, len, "0c 00 18 00 19 0c 00 00");
	rfd_msg_free(reply);

	/* SVC-4, 17.1: a tag holding a NUL byte comes back unchanged, in echo and in reports. */
	CHECK_EQ(call_raw(client, FDT_METHOD_ECHO, "18 03 61 00 62 00", NULL, 0, &reply),
	         RFD_MSG_REPLY);
	data = rfd_msg_data(reply, &len);
	CHECK_HEX(data, len, "08 00 03 61 00 62 00");
	rfd_msg_free(reply);
	CHECK_EQ(call_raw(client, FDT_METHOD_INSPECT, "18 03 61 00 62 00", NULL, 0, &reply),
	         RFD_MSG_REPLY);
	data = rfd_msg_data(reply, &len);
	CHECK_HEX(data, len, "0c 00 18 03 61 00 62 19 0c 00 00");
	rfd_msg_free(reply);

	/* inspect sent one-way is dropped; the connection goes on. */
	CHECK_EQ(
	    rfd_client_oneway(client, FDT_METHOD_INSPECT, "\x00", 1, &fd, 1, RFD_FDS_DUP, 5000), 0);
	CHECK_EQ(call_raw(client, FDT_METHOD_ECHO, args_ab, NULL, 0, NULL), RFD_MSG_REPLY);
	close(fd);
	rfd_client_free(client);
}

static const struct rfd_test tests[] = {
    {"args_vector", test_args_vector},
    {"args_skip_and_defaults", test_args_skip_and_defaults},
    {"args_rejected", test_args_rejected},
    {"args_with_nul", test_args_with_nul},
    {"string_limit", test_string_limit},
    {"tags_with_nul", test_tags_with_nul},
    {"report_vector", test_report_vector},
    {"spec_vectors", test_spec_vectors},
    {"report_skips_unknown_fields", test_report_skips_unknown_fields},
    {"report_rejected", test_report_rejected},
    {"report_round_trips", test_report_round_trips},
    {"report_too_many_fds", test_report_too_many_fds},
    {"string_and_error_results", test_string_and_error_results},
    {"truncation_everywhere", test_truncation_everywhere},
    {"allocation_failures", test_allocation_failures},
    {"describe_fd", test_describe_fd},
    {"names", test_names},
    {"open_beneath", test_open_beneath},
    {"open_beneath_walk", test_open_beneath_walk},
    {"open_path_lengths", test_open_path_lengths},
    {"service_inspect_and_record", test_service_inspect_and_record},
    {"service_echo", test_service_echo},
    {"service_open", test_service_open},
    {"service_errors", test_service_errors},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	int status;

	signal(SIGPIPE, SIG_IGN);
	make_root();
	start_server();
	status = rfd_test_main(argc, argv, tests);
	stop_server();
	unlink(socket_path);
	remove_root();
	return rfd_test_failures ? EXIT_FAILURE : status;
}
