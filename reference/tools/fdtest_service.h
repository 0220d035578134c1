/* SPDX-License-Identifier: MIT */
/*
 * The server side of the FdTest service (spec/fdtest.thrift) on an
 * rfd_server: pass fdt_service_handle() as the handler and
 * fdt_service_closed() as rfd_server_options.closed, both with the service
 * as their user pointer:
 *
 *	struct rfd_server_options options;
 *	struct fdt_service *service;
 *
 *	r = fdt_service_new(root_fd, &service);
 *	rfd_server_options_init(&options);
 *	options.closed = fdt_service_closed;
 *	r = rfd_server_listen(path, &options, fdt_service_handle, service, &server);
 *	...
 *	rfd_server_free(server);
 *	fdt_service_free(service);
 *
 * Methods: inspect describes every FD received, closes them all, then
 * answers an FdReport; echo answers the tag with the very FDs received;
 * record (one-way) does what inspect does and keeps the report for
 * lastRecorded, per connection; open opens a regular file read-only beneath
 * the root directory and answers the path with its FD, or an FdTestError
 * (EACCES when the service has no root, EINVAL for a path holding a NUL
 * byte); whoami answers the caller's credentials as the library took them
 * at accept (rfd_msg_peer()) and whether its pidfd is pinned; streamFds
 * sends count items of fdsPerItem fresh pipe read ends, each with their
 * report; sinkFds describes and closes the FDs of each sink item as it
 * comes, and reports them all in its final response.  lastRecorded, open,
 * whoami, streamFds and sinkFds close the FDs sent with them before they
 * answer.  Errors
 * (spec/fd-passing.md section 6.8): an unknown method is
 * RFD_FAIL_UNKNOWN_METHOD, a method sent one-way when it is not (or record
 * sent expecting an answer) RFD_FAIL_WRONG_KIND, arguments that do not decode
 * RFD_FAIL_BAD_REQUEST, a failure inside the server (out of memory)
 * RFD_FAIL_INTERNAL; the request's FDs are closed first, and a one-way gets
 * no answer.  Requests are answered at once, from the handler.  Events are
 * logged with log.h: calls at debug level, refused requests at info.
 * Tags may hold any bytes, NUL included: echo answers them unchanged and
 * reports carry them whole.
 *
 * Free the server before the service: closing connections calls
 * fdt_service_closed().
 */
#ifndef RFD_FDTEST_SERVICE_H
#define RFD_FDTEST_SERVICE_H

#include <stdint.h>

#include <rocketfd/rocketfd.h>

struct fdt_service;

/*
 * Create a service serving files beneath the directory @root_fd, or no
 * files when @root_fd is -1.  The service owns @root_fd from this call on,
 * whatever it returns.  0 or -ENOMEM.
 */
int fdt_service_new(int root_fd, struct fdt_service **out);

/* Close the root directory and forget every recorded report.  NULL is accepted. */
void fdt_service_free(struct fdt_service *service);

/* An rfd_handler_fn; @user is the service. */
void fdt_service_handle(void *user, struct rfd_msg *request);

/* An rfd_closed_fn; @user is the service.  Drops the connection's recorded report. */
void fdt_service_closed(void *user, uint64_t connection);

/*
 * Open the regular file @path read-only beneath the directory @root_fd, by
 * the rules of spec/fd-passing.md section 17.4: "" is -ENOENT; an absolute
 * path, a ".." above the root, or a symlink whose target is absolute or
 * leads above the root is -EXDEV; symlinks that stay beneath the root are
 * followed (at most 40, else -ELOOP); magic links are refused; anything but
 * a regular file is -EINVAL, found out from an O_PATH FD, so that a FIFO or
 * device is never opened.  Other failures are the errno of the step that
 * failed (-ENOENT, -ENOTDIR, -ENAMETOOLONG, -EACCES...).  Returns a new FD
 * (O_RDONLY, blocking, FD_CLOEXEC, offset 0) or a negative errno.  Uses
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), or the walk below where
 * the kernel (or valgrind) has no openat2.
 */
int fdt_open_beneath(int root_fd, const char *path);

/*
 * The same by a lookup of one component at a time with openat(O_PATH |
 * O_NOFOLLOW), reading each symlink met and resolving its target the same
 * way.
 */
int fdt_open_beneath_walk(int root_fd, const char *path);

#endif
