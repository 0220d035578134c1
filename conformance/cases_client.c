/* SPDX-License-Identifier: MIT */
/*
 * Cases for a client under test: the harness is the server, and starts the
 * client with the scenario each case names.
 */
#include "cases.h"

const struct conf_case conf_client_cases[] = {
	{NULL, CONF_CLIENT, NULL, NULL, CONF_MUST, NULL, 0, NULL, NULL},
};

const size_t conf_n_client_cases = 0;
