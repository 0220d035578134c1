/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the control-message parser, rfd_cmsg_parse().
 *
 * The input describes a control buffer (see cmsg-script.h).  The target
 * builds it with one of its own FDs in every slot the parser could read as an
 * FD, never a number from the input, and checks after the call that every
 * such FD was either handed back (success) or closed exactly once (failure),
 * that nothing else was closed, that FDs outside the control data were left
 * alone, and that the result and error agree with a model of the rules.
 */
#include <sys/socket.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cmsg-script.h"
#include "cmsg.h"
#include "fdtrack.h"
#include "fuzz.h"

#ifndef SCM_SECURITY
#define SCM_SECURITY 0x03
#endif

enum {
	CONTROL_CAP = 4096,
	MAX_CMSGS = 64,
	HEADER_SIZE = sizeof(struct cmsghdr),
	SLOT_SIZE = sizeof(int),
	CREDENTIALS_SIZE = sizeof(struct ucred),
	MAX_SLOTS = CONTROL_CAP / SLOT_SIZE,
};

enum {
	ERR_NOBUFS = 1 << 0,
	ERR_PROTO = 1 << 1,
	ERR_BADMSG = 1 << 2,
	ERR_2BIG = 1 << 3,
};

/* One cmsg as built: where it is and what the parser should make of it. */
struct built_cmsg {
	size_t offset;
	uint64_t cmsg_len;
	int level;
	int type;
	size_t first_slot; /* in struct control's slots[] */
	size_t n_slots;
};

/* An FD slot: a 4-byte payload position holding a planted FD or a negative number. */
struct slot {
	size_t offset;
	int value;
};

struct control {
	uint8_t bytes[CONTROL_CAP + 16];
	size_t len;   /* bytes built (the last cmsg's padding included) */
	bool stopped; /* a cmsg_len below the header ended the walk */
	struct built_cmsg cmsgs[MAX_CMSGS];
	size_t n_cmsgs;
	struct slot slots[MAX_SLOTS];
	size_t n_slots;
};

static bool
fd_slot_type(int level, int type)
{
	return level == SOL_SOCKET && (type == SCM_RIGHTS || type == SCM_PIDFD);
}

static int
read_level(struct fuzz_input *in, unsigned code)
{
	switch (code) {
	case CMSG_LEVEL_SOCKET:
	case CMSG_LEVEL_SOCKET_TOO:
		return SOL_SOCKET;
	case CMSG_LEVEL_IP:
		return SOL_IP;
	default:
		return (int)fuzz_u32(in);
	}
}

static int
read_type(struct fuzz_input *in, unsigned code)
{
	switch (code) {
	case CMSG_TYPE_RIGHTS:
	case CMSG_TYPE_RIGHTS_TOO:
		return SCM_RIGHTS;
	case CMSG_TYPE_CREDENTIALS:
		return SCM_CREDENTIALS;
	case CMSG_TYPE_PIDFD:
		return SCM_PIDFD;
	case CMSG_TYPE_TIMESTAMP:
		return SCM_TIMESTAMP;
	case CMSG_TYPE_SECURITY:
		return SCM_SECURITY;
	case CMSG_TYPE_RAW8:
		return fuzz_u8(in);
	default:
		return (int)fuzz_u32(in);
	}
}

static size_t
read_payload_size(struct fuzz_input *in)
{
	uint8_t p = fuzz_u8(in);

	if (!(p & CMSG_SIZE_LONG))
		return (size_t)p * SLOT_SIZE;
	return (size_t)(p & ~CMSG_SIZE_LONG) << 8 | fuzz_u8(in);
}

static uint64_t
read_cmsg_len(struct fuzz_input *in, unsigned mode, size_t payload_size)
{
	switch (mode) {
	case CMSG_LEN_NATURAL:
		return CMSG_LEN(payload_size);
	case CMSG_LEN_DELTA:
		return (uint64_t)((int64_t)CMSG_LEN(payload_size) + (int8_t)fuzz_u8(in));
	case CMSG_LEN_BYTE:
		return fuzz_u8(in);
	default:
		return fuzz_u64(in);
	}
}

static void
put_header(struct control *c, size_t offset, uint64_t cmsg_len, int level, int type)
{
	struct cmsghdr hdr;

	memset(&hdr, 0, sizeof(hdr));
	hdr.cmsg_len = (size_t)cmsg_len;
	hdr.cmsg_level = level;
	hdr.cmsg_type = type;
	memcpy(c->bytes + offset, &hdr, sizeof(hdr));
}

/* Fill [start, end) with FD slots, the odd bytes at the end from the input. */
static void
put_fd_slots(struct control *c, struct built_cmsg *m, size_t start, size_t end, uint8_t negative,
             struct fuzz_input *in)
{
	size_t at = start;
	const uint8_t *tail;
	size_t n;

	m->first_slot = c->n_slots;
	for (; end - at >= SLOT_SIZE; at += SLOT_SIZE) {
		size_t index = (at - start) / SLOT_SIZE;
		int value;

		if (negative & (1u << (index % 8)))
			value = index % 2 ? -1 : (int)0x80000000u;
		else
			value = fdtrack_issue();
		FUZZ_CHECK(value != -1 || (negative & (1u << (index % 8))), "FD pool used up");
		memcpy(c->bytes + at, &value, sizeof(value));
		c->slots[c->n_slots++] = (struct slot){.offset = at, .value = value};
	}
	m->n_slots = c->n_slots - m->first_slot;
	n = fuzz_take(in, end - at, &tail);
	memcpy(c->bytes + at, tail, n);
}

static void
put_input_bytes(struct control *c, size_t start, size_t end, struct fuzz_input *in)
{
	const uint8_t *bytes;
	size_t n = fuzz_take(in, end - start, &bytes);

	memcpy(c->bytes + start, bytes, n);
}

/* Build one cmsg at c->len; false when nothing more can follow it. */
static bool
build_cmsg(struct control *c, struct fuzz_input *in)
{
	struct built_cmsg *m = &c->cmsgs[c->n_cmsgs++];
	uint8_t head = fuzz_u8(in);
	size_t payload_size = read_payload_size(in);
	size_t offset = c->len, end, next;
	uint8_t negative;

	m->offset = offset;
	m->level = read_level(in, head & CMSG_LEVEL_MASK);
	m->type = read_type(in, head >> CMSG_TYPE_SHIFT & CMSG_TYPE_MASK);
	m->cmsg_len = read_cmsg_len(in, head >> CMSG_LEN_SHIFT & CMSG_LEN_MASK, payload_size);
	negative = head & CMSG_HEAD_NEGATIVE ? fuzz_u8(in) : 0;
	m->first_slot = c->n_slots;
	m->n_slots = 0;
	put_header(c, offset, m->cmsg_len, m->level, m->type);

	if (m->cmsg_len < HEADER_SIZE) {
		/* The walk stops here; what follows is never read. */
		c->len = offset + HEADER_SIZE;
		c->stopped = true;
		return false;
	}
	end = m->cmsg_len > CONTROL_CAP - offset ? CONTROL_CAP : offset + (size_t)m->cmsg_len;
	if (fd_slot_type(m->level, m->type))
		put_fd_slots(c, m, offset + HEADER_SIZE, end, negative, in);
	else
		put_input_bytes(c, offset + HEADER_SIZE, end, in);

	next = end == CONTROL_CAP ? CONTROL_CAP : offset + CMSG_ALIGN((size_t)m->cmsg_len);
	if (next > CONTROL_CAP)
		next = CONTROL_CAP;
	c->len = next;
	return next + HEADER_SIZE <= CONTROL_CAP && c->n_cmsgs < MAX_CMSGS;
}

/* ---- The model ---- */

struct expectation {
	unsigned errors; /* ERR_* */
	bool slot_read[MAX_SLOTS];
	int fds[MAX_SLOTS]; /* SCM_RIGHTS FDs in order, on success */
	size_t n_fds;
	int pidfd;
	bool has_creds;
	struct ucred creds;
};

static void
expect_rights(struct expectation *e, const struct control *c, const struct built_cmsg *m,
              size_t payload_len)
{
	if (payload_len % SLOT_SIZE)
		e->errors |= ERR_BADMSG;
	for (size_t i = 0; i < m->n_slots; i++) {
		const struct slot *s = &c->slots[m->first_slot + i];

		if (s->offset + SLOT_SIZE > m->offset + HEADER_SIZE + payload_len)
			break;
		if (s->value < 0) {
			e->errors |= ERR_BADMSG;
			continue;
		}
		e->slot_read[m->first_slot + i] = true;
		if (e->n_fds == RFD_MAX_FDS)
			e->errors |= ERR_2BIG;
		e->fds[e->n_fds++] = s->value;
	}
}

static void
expect_pidfd(struct expectation *e, const struct control *c, const struct built_cmsg *m,
             size_t payload_len, unsigned allow)
{
	if (!(allow & RFD_CMSG_ALLOW_PIDFD))
		e->errors |= ERR_PROTO;
	if (payload_len != SLOT_SIZE)
		e->errors |= ERR_BADMSG;
	for (size_t i = 0; i < m->n_slots; i++) {
		const struct slot *s = &c->slots[m->first_slot + i];

		if (s->offset + SLOT_SIZE > m->offset + HEADER_SIZE + payload_len)
			break;
		if (s->value < 0) {
			e->errors |= ERR_BADMSG;
			continue;
		}
		e->slot_read[m->first_slot + i] = true;
		if (e->pidfd >= 0)
			e->errors |= ERR_BADMSG;
		else
			e->pidfd = s->value;
	}
}

static void
expect_credentials(struct expectation *e, const struct control *c, const struct built_cmsg *m,
                   size_t payload_len, unsigned allow)
{
	if (!(allow & RFD_CMSG_ALLOW_CREDENTIALS)) {
		e->errors |= ERR_PROTO;
	} else if (payload_len != CREDENTIALS_SIZE) {
		e->errors |= ERR_BADMSG;
	} else if (e->has_creds) {
		e->errors |= ERR_BADMSG;
	} else {
		e->has_creds = true;
		memcpy(&e->creds, c->bytes + m->offset + HEADER_SIZE, sizeof(e->creds));
	}
}

/* What the parser should find in the first @controllen bytes of @c. */
static void
expect(const struct control *c, size_t controllen, int msg_flags, unsigned allow,
       struct expectation *e)
{
	size_t offset = 0, k = 0;

	memset(e, 0, sizeof(*e));
	e->pidfd = -1;
	if (msg_flags & MSG_CTRUNC)
		e->errors |= ERR_NOBUFS;

	while (controllen - offset >= HEADER_SIZE) {
		const struct built_cmsg *m = &c->cmsgs[k++];
		size_t room = controllen - offset, len;

		FUZZ_CHECK(k <= c->n_cmsgs && m->offset == offset, "model lost its place");
		if (m->cmsg_len < HEADER_SIZE) {
			e->errors |= ERR_BADMSG;
			return;
		}
		len = m->cmsg_len > room ? room : (size_t)m->cmsg_len;
		if (m->cmsg_len > room)
			e->errors |= ERR_BADMSG;
		if (m->level != SOL_SOCKET)
			e->errors |= ERR_PROTO;
		else if (m->type == SCM_RIGHTS)
			expect_rights(e, c, m, len - HEADER_SIZE);
		else if (m->type == SCM_PIDFD)
			expect_pidfd(e, c, m, len - HEADER_SIZE, allow);
		else if (m->type == SCM_CREDENTIALS)
			expect_credentials(e, c, m, len - HEADER_SIZE, allow);
		else
			e->errors |= ERR_PROTO;
		if (CMSG_ALIGN(len) >= room)
			return;
		offset += CMSG_ALIGN(len);
	}
	if (offset < controllen)
		e->errors |= ERR_BADMSG;
}

static unsigned
error_bit(int r)
{
	switch (r) {
	case -ENOBUFS:
		return ERR_NOBUFS;
	case -EPROTO:
		return ERR_PROTO;
	case -EBADMSG:
		return ERR_BADMSG;
	case -E2BIG:
		return ERR_2BIG;
	default:
		return 0;
	}
}

static bool
returned(const struct rfd_cmsg_result *out, int fd)
{
	if (out->pidfd == fd)
		return true;
	for (size_t i = 0; i < out->n_fds; i++)
		if (out->fds[i] == fd)
			return true;
	return false;
}

static void
check_result(const struct control *c, const struct expectation *e, int r, const char *why,
             const struct rfd_cmsg_result *out)
{
	FUZZ_CHECK(r == 0 || error_bit(r), "parser returned %d", r);
	if (e->errors & ERR_NOBUFS)
		FUZZ_CHECK(r == -ENOBUFS, "MSG_CTRUNC set, parser returned %d", r);
	else
		FUZZ_CHECK((r == 0) == (e->errors == 0) && (r == 0 || (e->errors & error_bit(r))),
		           "parser returned %d (%s), model expects errors 0x%x", r,
		           why ? why : "no reason", e->errors);
	FUZZ_CHECK((r == 0) == (why == NULL), "reason %s with return %d", why ? why : "NULL", r);

	if (r < 0) {
		FUZZ_CHECK(out->n_fds == 0 && out->pidfd == -1 && !out->has_creds,
		           "parser failed and still handed out FDs or credentials");
	} else {
		FUZZ_CHECK(
		    out->n_fds == e->n_fds && memcmp(out->fds, e->fds, e->n_fds * sizeof(int)) == 0,
		    "parser handed out %zu FDs, expected %zu in order", out->n_fds, e->n_fds);
		FUZZ_CHECK(out->pidfd == e->pidfd, "pidfd %d, expected %d", out->pidfd, e->pidfd);
		FUZZ_CHECK(
		    out->has_creds == e->has_creds &&
		        (!e->has_creds || (out->pid == e->creds.pid && out->uid == e->creds.uid &&
		                           out->gid == e->creds.gid)),
		    "credentials differ from the SCM_CREDENTIALS payload");
	}

	for (size_t i = 0; i < c->n_slots; i++) {
		int fd = c->slots[i].value;
		unsigned closes;

		if (fd < 0)
			continue;
		closes = fdtrack_closes(fd);
		if (!e->slot_read[i])
			FUZZ_CHECK(closes == 0 && !returned(out, fd),
			           "FD %d outside the control data was %s", fd,
			           closes ? "closed" : "handed out");
		else if (r == 0)
			FUZZ_CHECK(closes == 0, "FD %d handed out and closed", fd);
		else
			FUZZ_CHECK(closes == 1, "FD %d neither handed out nor closed: leaked", fd);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fdtrack_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct control c;
	static struct expectation e;
	struct rfd_cmsg_result out;
	struct fuzz_input in;
	const char *why = "unset";
	size_t controllen, misalign;
	int8_t adjust = 0;
	uint8_t options;
	int msg_flags = 0, r;
	unsigned allow = 0;
	uint8_t *buffer;

	fdtrack_begin();
	fuzz_input_init(&in, data, size);
	options = fuzz_u8(&in);
	if (options & CMSG_OPT_ADJUST)
		adjust = (int8_t)fuzz_u8(&in);
	if (options & CMSG_OPT_CTRUNC)
		msg_flags |= MSG_CTRUNC;
	if (options & CMSG_OPT_OTHER_FLAGS)
		msg_flags |= MSG_EOR | MSG_TRUNC | MSG_OOB;
	if (options & CMSG_OPT_ALLOW_CREDENTIALS)
		allow |= RFD_CMSG_ALLOW_CREDENTIALS;
	if (options & CMSG_OPT_ALLOW_PIDFD)
		allow |= RFD_CMSG_ALLOW_PIDFD;
	misalign = options >> CMSG_OPT_ALIGN_SHIFT & CMSG_OPT_ALIGN_MASK;

	memset(&c, 0, sizeof(c));
	while (!fuzz_input_empty(&in) && build_cmsg(&c, &in))
		;
	controllen = c.len;
	if (adjust < 0)
		controllen -= (size_t)-adjust < controllen ? (size_t)-adjust : controllen;
	else if (adjust > 0 && !c.stopped && c.len + (adjust & 15) <= CONTROL_CAP) {
		put_input_bytes(&c, c.len, c.len + (adjust & 15), &in);
		controllen += adjust & 15;
	}
	expect(&c, controllen, msg_flags, allow, &e);

	/* Exactly controllen bytes, so that ASan sees any read past them. */
	buffer = malloc(misalign + controllen ? misalign + controllen : 1);
	FUZZ_CHECK(buffer, "out of memory");
	memcpy(buffer + misalign, c.bytes, controllen);
	r = rfd_cmsg_parse(buffer + misalign, controllen, msg_flags, allow, &out, &why);
	free(buffer);

	check_result(&c, &e, r, why, &out);
	fdtrack_end();
	return 0;
}
