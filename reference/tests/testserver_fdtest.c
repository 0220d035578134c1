/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fdtest_service.h"
#include "log.h"
#include "testserver.h"

void
rfd_test_fdtest_server(const char *path)
{
	struct rfd_server_options options;
	struct rfd_server *server;
	struct fdt_service *service;
	int r = fdt_service_new(-1, &service);

	/* The refusals the tests provoke are logged at info level: quietly. */
	log_init("fdtest-server", LOG_LEVEL_WARN);
	rfd_server_options_init(&options);
	options.closed = fdt_service_closed;
	if (r == 0)
		r = rfd_server_listen(path, &options, fdt_service_handle, service, &server);
	if (r < 0) {
		fprintf(stderr, "fdtest server: %s\n", strerror(-r));
		_exit(3);
	}
	r = rfd_test_serve(server);
	fdt_service_free(service);
	_exit(r < 0 ? 4 : 0);
}
