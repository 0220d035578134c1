/* SPDX-License-Identifier: MIT */

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cmsg.h"
#include "testutil.h"

enum {
	CONTROL_CAP = 4096,
	CLOSE_TRACK_MAX = 4096,
};

/*
 * Every close() in this program, the parser's included, lands here, so a
 * test can tell an FD closed once from one closed twice (the second close
 * of a number would otherwise go unseen).
 */
static int close_calls[CLOSE_TRACK_MAX];
static int bad_closes;

int
close(int fd)
{
	if (fd < 0 || fd >= CLOSE_TRACK_MAX)
		bad_closes++;
	else
		close_calls[fd]++;
	return (int)syscall(SYS_close, fd);
}

static void
reset_close_calls(void)
{
	memset(close_calls, 0, sizeof(close_calls));
	bad_closes = 0;
}

struct control {
	size_t len;
	union {
		struct cmsghdr align;
		uint8_t bytes[CONTROL_CAP];
	} u;
};

static void
control_init(struct control *c)
{
	memset(c, 0, sizeof(*c));
}

/* Append one cmsg the way the kernel lays it out; returns its offset. */
static size_t
add_cmsg(struct control *c, int level, int type, const void *payload, size_t payload_len)
{
	struct cmsghdr hdr = {
	    .cmsg_len = CMSG_LEN(payload_len), .cmsg_level = level, .cmsg_type = type};
	size_t at = c->len;

	if (at + CMSG_SPACE(payload_len) > CONTROL_CAP)
		abort();
	memcpy(c->u.bytes + at, &hdr, sizeof(hdr));
	if (payload_len)
		memcpy(c->u.bytes + at + CMSG_LEN(0), payload, payload_len);
	c->len += CMSG_SPACE(payload_len);
	return at;
}

static size_t
add_rights(struct control *c, const int *fds, size_t n)
{
	return add_cmsg(c, SOL_SOCKET, SCM_RIGHTS, fds, n * sizeof(int));
}

static void
set_cmsg_len(struct control *c, size_t at, size_t cmsg_len)
{
	struct cmsghdr hdr;

	memcpy(&hdr, c->u.bytes + at, sizeof(hdr));
	hdr.cmsg_len = cmsg_len;
	memcpy(c->u.bytes + at, &hdr, sizeof(hdr));
}

/* @n distinct FDs, all naming the read end of one pipe. */
static void
open_fds(int *fds, size_t n)
{
	int pipe_fds[2];

	if (pipe(pipe_fds) < 0)
		abort();
	for (size_t i = 0; i < n; i++) {
		fds[i] = fcntl(pipe_fds[0], F_DUPFD_CLOEXEC, 0);
		if (fds[i] < 0 || fds[i] >= CLOSE_TRACK_MAX)
			abort();
	}
	close(pipe_fds[0]);
	close(pipe_fds[1]);
}

static void
close_fds(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

static int
parse(const struct control *c, int flags, unsigned allow, struct rfd_cmsg_result *out,
      const char **why)
{
	reset_close_calls();
	return rfd_cmsg_parse(c->u.bytes, c->len, flags, allow, out, why);
}

static size_t
count_closed_once(const int *fds, size_t n)
{
	size_t ok = 0;

	for (size_t i = 0; i < n; i++)
		if (!rfd_test_fd_is_open(fds[i]) && close_calls[fds[i]] == 1)
			ok++;
	return ok;
}

static size_t
count_untouched(const int *fds, size_t n)
{
	size_t ok = 0;

	for (size_t i = 0; i < n; i++)
		if (rfd_test_fd_is_open(fds[i]) && close_calls[fds[i]] == 0)
			ok++;
	return ok;
}

static bool
result_is_empty(const struct rfd_cmsg_result *out)
{
	return out->n_fds == 0 && out->pidfd == -1 && !out->has_creds;
}

static void
test_one_cmsg_one_fd(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	const char *why = "unset";
	int fd;

	open_fds(&fd, 1);
	control_init(&c);
	add_rights(&c, &fd, 1);
	CHECK_EQ(c.len, 24);

	CHECK_EQ(parse(&c, 0, 0, &out, &why), 0);
	CHECK(why == NULL);
	CHECK_EQ(out.n_fds, 1);
	CHECK_EQ(out.fds[0], fd);
	CHECK_EQ(out.pidfd, -1);
	CHECK(!out.has_creds);
	CHECK_EQ(count_untouched(&fd, 1), 1);
	close(fd);
}

static void
test_one_cmsg_253_fds(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	int fds[253];

	open_fds(fds, 253);
	control_init(&c);
	add_rights(&c, fds, 253);
	CHECK_EQ(c.len, 16 + 1016);

	CHECK_EQ(parse(&c, 0, 0, &out, NULL), 0);
	REQUIRE(out.n_fds == 253);
	CHECK_MEM(out.fds, fds, sizeof(fds));
	CHECK_EQ(count_untouched(fds, 253), 253);
	close_fds(fds, 253);
}

/* FD-RECV-3: the FDs of every SCM_RIGHTS cmsg of a read form one group, in order. */
static void
test_two_rights_cmsgs_concatenated(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	int fds[5];

	open_fds(fds, 5);
	control_init(&c);
	add_rights(&c, fds, 2);
	add_rights(&c, fds + 2, 3);

	CHECK_EQ(parse(&c, 0, 0, &out, NULL), 0);
	REQUIRE(out.n_fds == 5);
	CHECK_MEM(out.fds, fds, sizeof(fds));
	CHECK_EQ(count_untouched(fds, 5), 5);
	close_fds(fds, 5);
}

static void
test_254_fds_in_two_cmsgs(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	const char *why = NULL;
	int fds[254];

	open_fds(fds, 254);
	control_init(&c);
	add_rights(&c, fds, 200);
	add_rights(&c, fds + 200, 54);

	CHECK_EQ(parse(&c, 0, 0, &out, &why), -E2BIG);
	CHECK(why != NULL);
	CHECK(result_is_empty(&out));
	CHECK_EQ(count_closed_once(fds, 254), 254);
	CHECK_EQ(bad_closes, 0);
}

static void
test_254_fds_in_one_cmsg(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	int fds[254];

	open_fds(fds, 254);
	control_init(&c);
	add_rights(&c, fds, 254);

	CHECK_EQ(parse(&c, 0, 0, &out, NULL), -E2BIG);
	CHECK(result_is_empty(&out));
	CHECK_EQ(count_closed_once(fds, 254), 254);
}

/* ERR-8: control data parsed within msg_controllen, malformed cmsgs are errors, FDs closed. */
static void
test_cmsg_len_overstating_buffer(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	int fds[2];
	size_t at;

	open_fds(fds, 2);
	control_init(&c);
	at = add_rights(&c, fds, 2);
	set_cmsg_len(&c, at, CMSG_LEN(100 * sizeof(int)));
	/* Bytes past controllen that a parser trusting cmsg_len would read. */
	memset(c.u.bytes + c.len, 0xff, 200);

	CHECK_EQ(parse(&c, 0, 0, &out, NULL), -EBADMSG);
	CHECK(result_is_empty(&out));
	CHECK_EQ(count_closed_once(fds, 2), 2);
	CHECK_EQ(bad_closes, 0);
}

/* macOS and illumos leave cmsg_len untruncated when they set MSG_CTRUNC. */
static void
test_cmsg_len_overstating_with_ctrunc(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	int fds[4];
	size_t at;

	open_fds(fds, 4);
	control_init(&c);
	add_rights(&c, fds, 1);
	at = add_rights(&c, fds + 1, 3);
	set_cmsg_len(&c, at, CMSG_LEN(10 * sizeof(int)));
	c.len -= 6; /* the last FD slot is cut in half */

	CHECK_EQ(parse(&c, MSG_CTRUNC, 0, &out, NULL), -ENOBUFS);
	CHECK(result_is_empty(&out));
	CHECK_EQ(count_closed_once(fds, 3), 3);
	CHECK_EQ(count_untouched(fds + 3, 1), 1);
	close(fds[3]);
}

static void
test_cmsg_len_below_header_stops_walk(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	const char *why = NULL;
	int fds[3];
	size_t at;

	open_fds(fds, 3);
	control_init(&c);
	add_rights(&c, fds, 2);
	at = add_cmsg(&c, SOL_SOCKET, SCM_RIGHTS, NULL, 0);
	set_cmsg_len(&c, at, sizeof(struct cmsghdr) - 8);
	add_rights(&c, fds + 2, 1);

	CHECK_EQ(parse(&c, 0, 0, &out, &why), -EBADMSG);
	CHECK(why && strstr(why, "shorter"));
	CHECK(result_is_empty(&out));
	CHECK_EQ(count_closed_once(fds, 2), 2);
	/* Past a header with no usable length nothing is read as an FD. */
	CHECK_EQ(count_untouched(fds + 2, 1), 1);
	close(fds[2]);
}

static void
test_cmsg_len_zero_first(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	int fd;
	size_t at;

	open_fds(&fd, 1);
	control_init(&c);
	at = add_rights(&c, &fd, 1);
	set_cmsg_len(&c, at, 0);

	CHECK_EQ(parse(&c, 0, 0, &out, NULL), -EBADMSG);
	CHECK(result_is_empty(&out));
	CHECK_EQ(count_untouched(&fd, 1), 1);
	close(fd);
}

/* An understated cmsg_len is taken at its word: the cmsg ends where it says. */
static void
test_cmsg_len_understating(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	int fds[4];
	size_t at;

	open_fds(fds, 4);
	control_init(&c);
	at = add_rights(&c, fds, 4);
	set_cmsg_len(&c, at, CMSG_LEN(sizeof(int)));

	/* Next header at offset 24 has only 8 bytes left: a cut header. */
	CHECK_EQ(parse(&c, 0, 0, &out, NULL), -EBADMSG);
	CHECK(result_is_empty(&out));
	CHECK_EQ(count_closed_once(fds, 1), 1);
	CHECK_EQ(count_untouched(fds + 1, 3), 3);
	close_fds(fds + 1, 3);
}

static void
test_payload_not_multiple_of_4(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	uint8_t payload[10] = {0};
	int fds[3];

	open_fds(fds, 3);
	control_init(&c);
	memcpy(payload, fds, 2 * sizeof(int));
	add_cmsg(&c, SOL_SOCKET, SCM_RIGHTS, payload, sizeof(payload));
	CHECK_EQ(c.len, 32);
	add_rights(&c, fds + 2, 1);

	CHECK_EQ(parse(&c, 0, 0, &out, NULL), -EBADMSG);
	CHECK(result_is_empty(&out));
	CHECK_EQ(count_closed_once(fds, 3), 3);
}

static void
test_negative_fd_in_rights(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	int fds[3];

	open_fds(fds, 2);
	fds[2] = fds[1];
	fds[1] = -1;
	control_init(&c);
	add_rights(&c, fds, 3);

	CHECK_EQ(parse(&c, 0, 0, &out, NULL), -EBADMSG);
	CHECK(result_is_empty(&out));
	CHECK_EQ(count_closed_once(&fds[0], 1), 1);
	CHECK_EQ(count_closed_once(&fds[2], 1), 1);
	CHECK_EQ(bad_closes, 0);
}

static void
test_trailing_bytes_after_cmsg(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	int fd;

	open_fds(&fd, 1);
	control_init(&c);
	add_rights(&c, &fd, 1);
	c.len += 8;

	CHECK_EQ(parse(&c, 0, 0, &out, NULL), -EBADMSG);
	CHECK_EQ(count_closed_once(&fd, 1), 1);
}

/* The last cmsg may end without its padding (cmsg_len == controllen). */
static void
test_last_cmsg_without_padding(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	int fds[2];

	open_fds(fds, 2);
	control_init(&c);
	add_rights(&c, fds, 1);
	add_rights(&c, fds + 1, 1);
	c.len -= CMSG_SPACE(sizeof(int)) - CMSG_LEN(sizeof(int));
	CHECK_EQ(c.len, 44);

	CHECK_EQ(parse(&c, 0, 0, &out, NULL), 0);
	REQUIRE(out.n_fds == 2);
	CHECK_MEM(out.fds, fds, sizeof(fds));
	close_fds(fds, 2);
}

static void
test_unaligned_buffer(void)
{
	static uint8_t shifted[CONTROL_CAP + 1];
	struct rfd_cmsg_result out;
	struct control c;
	struct ucred creds = {.pid = 7, .uid = 8, .gid = 9};
	int fds[3];

	open_fds(fds, 3);
	control_init(&c);
	add_cmsg(&c, SOL_SOCKET, SCM_CREDENTIALS, &creds, sizeof(creds));
	add_rights(&c, fds, 3);
	memcpy(shifted + 1, c.u.bytes, c.len);

	reset_close_calls();
	CHECK_EQ(rfd_cmsg_parse(shifted + 1, c.len, 0, RFD_CMSG_ALLOW_CREDENTIALS, &out, NULL), 0);
	REQUIRE(out.n_fds == 3);
	CHECK_MEM(out.fds, fds, sizeof(fds));
	CHECK(out.has_creds);
	CHECK_EQ(out.pid, 7);
	close_fds(fds, 3);
}

static void
test_credentials_allowed(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	struct ucred creds = {.pid = 1234, .uid = 1000, .gid = 100};
	int fd;

	open_fds(&fd, 1);
	control_init(&c);
	add_cmsg(&c, SOL_SOCKET, SCM_CREDENTIALS, &creds, sizeof(creds));
	add_rights(&c, &fd, 1);

	CHECK_EQ(parse(&c, 0, RFD_CMSG_ALLOW_CREDENTIALS, &out, NULL), 0);
	CHECK(out.has_creds);
	CHECK_EQ(out.pid, 1234);
	CHECK_EQ(out.uid, 1000);
	CHECK_EQ(out.gid, 100);
	REQUIRE(out.n_fds == 1);
	CHECK_EQ(out.fds[0], fd);
	CHECK_EQ(out.pidfd, -1);
	close(fd);
}

static void
test_credentials_not_allowed(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	struct ucred creds = {.pid = 1234, .uid = 1000, .gid = 100};
	const char *why = NULL;
	int fds[2];

	open_fds(fds, 2);
	control_init(&c);
	add_rights(&c, fds, 1);
	add_cmsg(&c, SOL_SOCKET, SCM_CREDENTIALS, &creds, sizeof(creds));
	add_rights(&c, fds + 1, 1);

	CHECK_EQ(parse(&c, 0, RFD_CMSG_ALLOW_PIDFD, &out, &why), -EPROTO);
	CHECK(why && strstr(why, "SCM_CREDENTIALS"));
	CHECK(result_is_empty(&out));
	CHECK_EQ(count_closed_once(fds, 2), 2);
}

static void
test_credentials_truncated(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	struct ucred creds = {.pid = 1234, .uid = 1000, .gid = 100};
	int fd;

	open_fds(&fd, 1);
	control_init(&c);
	add_cmsg(&c, SOL_SOCKET, SCM_CREDENTIALS, &creds, sizeof(creds) - 4);
	add_rights(&c, &fd, 1);

	CHECK_EQ(parse(&c, 0, RFD_CMSG_ALLOW_CREDENTIALS, &out, NULL), -EBADMSG);
	CHECK(result_is_empty(&out));
	CHECK_EQ(count_closed_once(&fd, 1), 1);
}

static void
test_pidfd_allowed(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	int fds[3];

	open_fds(fds, 3);
	control_init(&c);
	add_rights(&c, fds, 2);
	add_cmsg(&c, SOL_SOCKET, SCM_PIDFD, &fds[2], sizeof(int));

	CHECK_EQ(parse(&c, 0, RFD_CMSG_ALLOW_PIDFD, &out, NULL), 0);
	REQUIRE(out.n_fds == 2);
	CHECK_MEM(out.fds, fds, 2 * sizeof(int));
	CHECK_EQ(out.pidfd, fds[2]);
	CHECK_EQ(count_untouched(fds, 3), 3);
	close_fds(fds, 3);
}

static void
test_pidfd_closed_on_later_error(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	int ttl = 64;
	int fds[2];

	open_fds(fds, 2);
	control_init(&c);
	add_cmsg(&c, SOL_SOCKET, SCM_PIDFD, &fds[0], sizeof(int));
	add_rights(&c, fds + 1, 1);
	add_cmsg(&c, SOL_IP, IP_TTL, &ttl, sizeof(ttl));

	CHECK_EQ(parse(&c, 0, RFD_CMSG_ALLOW_PIDFD, &out, NULL), -EPROTO);
	CHECK(result_is_empty(&out));
	CHECK_EQ(count_closed_once(fds, 2), 2);
}

static void
test_pidfd_not_allowed(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	const char *why = NULL;
	int fds[2];

	open_fds(fds, 2);
	control_init(&c);
	add_rights(&c, fds, 1);
	add_cmsg(&c, SOL_SOCKET, SCM_PIDFD, &fds[1], sizeof(int));

	CHECK_EQ(parse(&c, 0, RFD_CMSG_ALLOW_CREDENTIALS, &out, &why), -EPROTO);
	CHECK(why && strstr(why, "SCM_PIDFD"));
	CHECK(result_is_empty(&out));
	CHECK_EQ(count_closed_once(fds, 2), 2);
}

static void
test_two_pidfds(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	int fds[2];

	open_fds(fds, 2);
	control_init(&c);
	add_cmsg(&c, SOL_SOCKET, SCM_PIDFD, &fds[0], sizeof(int));
	add_cmsg(&c, SOL_SOCKET, SCM_PIDFD, &fds[1], sizeof(int));

	CHECK_EQ(parse(&c, 0, RFD_CMSG_ALLOW_PIDFD, &out, NULL), -EBADMSG);
	CHECK(result_is_empty(&out));
	CHECK_EQ(count_closed_once(fds, 2), 2);
}

static void
test_unknown_level(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	const char *why = NULL;
	int ttl = 64;
	int fds[3];

	open_fds(fds, 3);
	control_init(&c);
	add_rights(&c, fds, 1);
	add_cmsg(&c, SOL_IP, IP_TTL, &ttl, sizeof(ttl));
	add_rights(&c, fds + 1, 2);

	CHECK_EQ(parse(&c, 0, RFD_CMSG_ALLOW_CREDENTIALS | RFD_CMSG_ALLOW_PIDFD, &out, &why),
	         -EPROTO);
	CHECK(why && strstr(why, "SOL_SOCKET"));
	CHECK(result_is_empty(&out));
	CHECK_EQ(count_closed_once(fds, 3), 3);
}

static void
test_unknown_sol_socket_type(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	uint8_t timestamp[16] = {0};
	int fd;

	open_fds(&fd, 1);
	control_init(&c);
	add_cmsg(&c, SOL_SOCKET, SCM_TIMESTAMP, timestamp, sizeof(timestamp));
	add_rights(&c, &fd, 1);

	CHECK_EQ(parse(&c, 0, RFD_CMSG_ALLOW_CREDENTIALS | RFD_CMSG_ALLOW_PIDFD, &out, NULL),
	         -EPROTO);
	CHECK_EQ(count_closed_once(&fd, 1), 1);
}

static void
test_ctrunc_two_fds(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	const char *why = NULL;
	int fds[2];

	open_fds(fds, 2);
	control_init(&c);
	add_rights(&c, fds, 2);

	CHECK_EQ(parse(&c, MSG_CTRUNC, 0, &out, &why), -ENOBUFS);
	CHECK(why && strstr(why, "MSG_CTRUNC"));
	CHECK(result_is_empty(&out));
	CHECK_EQ(count_closed_once(fds, 2), 2);
}

/* MSG_CTRUNC is reported whatever else is wrong: it says FDs were lost. */
static void
test_ctrunc_wins_over_other_errors(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	int ttl = 64;
	int fd;

	open_fds(&fd, 1);
	control_init(&c);
	add_cmsg(&c, SOL_IP, IP_TTL, &ttl, sizeof(ttl));
	add_rights(&c, &fd, 1);

	CHECK_EQ(parse(&c, MSG_CTRUNC, 0, &out, NULL), -ENOBUFS);
	CHECK_EQ(count_closed_once(&fd, 1), 1);
}

static void
test_controllen_zero(void)
{
	struct rfd_cmsg_result out;
	const char *why = "unset";

	CHECK_EQ(rfd_cmsg_parse(NULL, 0, 0, 0, &out, &why), 0);
	CHECK(why == NULL);
	CHECK(result_is_empty(&out));

	CHECK_EQ(rfd_cmsg_parse(NULL, 0, MSG_CTRUNC, 0, &out, &why), -ENOBUFS);
	CHECK(why != NULL);
	CHECK(result_is_empty(&out));
}

static void
test_controllen_below_header(void)
{
	struct rfd_cmsg_result out;
	struct control c;
	int fd;

	open_fds(&fd, 1);
	control_init(&c);
	add_rights(&c, &fd, 1);
	c.len = sizeof(struct cmsghdr) - 1;

	CHECK_EQ(parse(&c, 0, 0, &out, NULL), -EBADMSG);
	CHECK(result_is_empty(&out));
	CHECK_EQ(parse(&c, MSG_CTRUNC, 0, &out, NULL), -ENOBUFS);
	CHECK(result_is_empty(&out));
	c.len = 8;
	CHECK_EQ(parse(&c, MSG_CTRUNC, 0, &out, NULL), -ENOBUFS);
	/* The FD's slot lies outside controllen: never read, never closed. */
	CHECK_EQ(count_untouched(&fd, 1), 1);
	close(fd);
}

static const struct rfd_test tests[] = {
    {"one_cmsg_one_fd", test_one_cmsg_one_fd},
    {"one_cmsg_253_fds", test_one_cmsg_253_fds},
    {"two_rights_cmsgs_concatenated", test_two_rights_cmsgs_concatenated},
    {"254_fds_in_two_cmsgs", test_254_fds_in_two_cmsgs},
    {"254_fds_in_one_cmsg", test_254_fds_in_one_cmsg},
    {"cmsg_len_overstating_buffer", test_cmsg_len_overstating_buffer},
    {"cmsg_len_overstating_with_ctrunc", test_cmsg_len_overstating_with_ctrunc},
    {"cmsg_len_below_header_stops_walk", test_cmsg_len_below_header_stops_walk},
    {"cmsg_len_zero_first", test_cmsg_len_zero_first},
    {"cmsg_len_understating", test_cmsg_len_understating},
    {"payload_not_multiple_of_4", test_payload_not_multiple_of_4},
    {"negative_fd_in_rights", test_negative_fd_in_rights},
    {"trailing_bytes_after_cmsg", test_trailing_bytes_after_cmsg},
    {"last_cmsg_without_padding", test_last_cmsg_without_padding},
    {"unaligned_buffer", test_unaligned_buffer},
    {"credentials_allowed", test_credentials_allowed},
    {"credentials_not_allowed", test_credentials_not_allowed},
    {"credentials_truncated", test_credentials_truncated},
    {"pidfd_allowed", test_pidfd_allowed},
    {"pidfd_closed_on_later_error", test_pidfd_closed_on_later_error},
    {"pidfd_not_allowed", test_pidfd_not_allowed},
    {"two_pidfds", test_two_pidfds},
    {"unknown_level", test_unknown_level},
    {"unknown_sol_socket_type", test_unknown_sol_socket_type},
    {"ctrunc_two_fds", test_ctrunc_two_fds},
    {"ctrunc_wins_over_other_errors", test_ctrunc_wins_over_other_errors},
    {"controllen_zero", test_controllen_zero},
    {"controllen_below_header", test_controllen_below_header},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	return rfd_test_main(argc, argv, tests);
}
