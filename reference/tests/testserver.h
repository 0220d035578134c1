/* SPDX-License-Identifier: MIT */
/*
 * Servers in a child process, for the integration tests: the child listens
 * on a Unix socket path and serves until the parent sends SIGTERM; its exit
 * status tells the parent how it ended.
 */
#ifndef RFD_TESTSERVER_H
#define RFD_TESTSERVER_H

#include <sys/types.h>

#include <rocketfd/rocketfd.h>

/*
 * Fork a child that runs @body(@path), and return its pid once the child's
 * server listens (once it called rfd_test_serve()).  @body ends with
 * _exit(): 3 when it could not listen, otherwise what the test expects.
 */
pid_t rfd_test_server_fork(const char *path, void (*body)(const char *path));

/*
 * In the child: tell the parent the server listens, serve until SIGTERM,
 * then free @server.  Returns what rfd_server_run() returned.
 */
int rfd_test_serve(struct rfd_server *server);

/* SIGTERM the child @pid, wait for it, and check that it exited with @want_status. */
void rfd_test_server_stop(pid_t pid, int want_status);

/* A @body serving FdTest as rfd-server does (link rfd_fdtest and testserver_fdtest.c). */
void rfd_test_fdtest_server(const char *path);

#endif
