/* SPDX-License-Identifier: MIT */
/* The sections of spec/fd-passing.md that cases cite, for grouping the report. */
#include "harness.h"

const struct conf_section conf_sections[] = {
	{"3", "SETUP"},
	{"4", "Metadata"},
	{"5", "Tying FDs to messages"},
	{"6", "Limits"},
	{"7", "Errors"},
	{"9", "The FdTest service"},
};

const size_t conf_n_sections = sizeof(conf_sections) / sizeof(conf_sections[0]);
