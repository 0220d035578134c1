/* SPDX-License-Identifier: MIT */
/* The public face of received messages, and the default limits. */
#include <errno.h>

#include "alloc.h"
#include "conn.h"
#include "frame.h"

void
rfd_limits_init(struct rfd_limits *limits)
{
	limits->max_frame = RFD_FRAME_LENGTH_SIZE + RFD_FRAME_LENGTH_MAX;
	limits->max_message = 64u << 20;
	limits->max_fds_per_msg = RFD_MAX_FDS;
	limits->fd_budget = 1024;
	limits->max_in_flight = 256;
}

enum rfd_msg_kind
rfd_msg_kind(const struct rfd_msg *msg)
{
	return msg->kind;
}

const char *
rfd_msg_method(const struct rfd_msg *msg)
{
	return msg->method;
}

const uint8_t *
rfd_msg_data(const struct rfd_msg *msg, size_t *len)
{
	if (len)
		*len = msg->data_len;
	return msg->data;
}

size_t
rfd_msg_fd_count(const struct rfd_msg *msg)
{
	return msg->fds ? msg->fds->n : 0;
}

int
rfd_msg_fd(const struct rfd_msg *msg, size_t index)
{
	if (index >= rfd_msg_fd_count(msg))
		return -1;
	return msg->fds->fds[index];
}

int
rfd_msg_take_fd(struct rfd_msg *msg, size_t index)
{
	int fd = rfd_msg_fd(msg, index);

	if (fd >= 0)
		msg->fds->fds[index] = -1;
	return fd;
}

uint32_t
rfd_msg_error_code(const struct rfd_msg *msg)
{
	return msg->error_code;
}

const char *
rfd_msg_error_text(const struct rfd_msg *msg)
{
	return msg->error_text;
}

bool
rfd_msg_streaming(const struct rfd_msg *msg)
{
	return msg->call_kind == RFD_CALL_STREAM;
}

enum rfd_call_kind
rfd_msg_call_kind(const struct rfd_msg *msg)
{
	return (enum rfd_call_kind)msg->call_kind;
}

unsigned
rfd_msg_extensions(const struct rfd_msg *msg)
{
	return msg->kind == RFD_MSG_REQUEST || msg->kind == RFD_MSG_ONEWAY ? msg->extensions : 0;
}

uint64_t
rfd_msg_connection(const struct rfd_msg *msg)
{
	return msg->connection;
}

void
rfd_msg_free(struct rfd_msg *msg)
{
	if (!msg)
		return;
	if (msg->release)
		msg->release(msg);
	rfd_fdgroup_free(msg->fds);
	rfd_free(msg);
}
