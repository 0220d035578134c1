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
 * (EACCES when the service has no root).  Unknown methods and arguments that
 * do not decode are answered with a Rocket ERROR 0x204 (INVALID); internal
 * failures (out of memory) with 0x203 (CANCELED).  Requests are answered at
 * once, from the handler.  Events are logged with log.h at debug level.
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
 * Open the regular file @path read-only beneath the directory @root_fd, as
 * open does: relative paths only, no "..", symlink or magic link on the
 * way, and never blocking on a FIFO or device.  Returns a new FD (blocking
 * mode, FD_CLOEXEC) or a negative errno: -EXDEV for a path leading outside
 * the root (absolute or through ".."), -ELOOP for a symlink on the way,
 * -EINVAL for anything but a regular file, or what openat2() answered.
 */
int fdt_open_beneath(int root_fd, const char *path);

/*
 * The same by a walk of one component at a time with openat(O_NOFOLLOW),
 * which fdt_open_beneath() falls back to where openat2() is missing.  It
 * refuses every ".." component (openat2() allows those that stay beneath).
 */
int fdt_open_beneath_walk(int root_fd, const char *path);

#endif
