/* SPDX-License-Identifier: MIT */
/* rfd-conform: command line, case selection and exit status. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "target.h"

#ifndef RFD_DEFAULT_SERVER
#define RFD_DEFAULT_SERVER "rfd-server"
#endif
#ifndef RFD_DEFAULT_CLIENT
#define RFD_DEFAULT_CLIENT "rfd-client"
#endif

enum { DEFAULT_TIMEOUT_S = 10, EXIT_HARNESS = 2 };

static void
usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: rfd-conform server [--socket PATH | --cmd COMMAND] [OPTIONS]\n"
	    "       rfd-conform client [--cmd COMMAND] [OPTIONS]\n"
	    "\n"
	    "Checks an implementation of spec/fd-passing.md (version %s) case by case.\n"
	    "server: the harness plays the client against a server under test, either one\n"
	    "        already listening at --socket PATH, or one it starts for every case as\n"
	    "        COMMAND --socket PATH --root DIR (no shell; quotes group words).\n"
	    "client: the harness plays the server and starts COMMAND --socket PATH\n"
	    "        --scenario NAME for every case.\n"
	    "Without a target the reference implementation is tested:\n"
	    "        server: %s\n"
	    "        client: %s\n"
	    "\n"
	    "options:\n"
	    "  --list             list the cases (id, section, level, requirements) and exit\n"
	    "  --case ID[,ID...]  run only these cases\n"
	    "  --section N        run only the cases of spec section N (and its subsections)\n"
	    "  --skip ID[,ID...]  leave these cases out\n"
	    "  --timeout SECONDS  per case (default %d); multiplied by the environment variable\n"
	    "                     RFD_CONFORM_TIMEOUT_SCALE when set (e.g. 10 under valgrind)\n"
	    "  --strict           SHOULD failures fail the run too\n"
	    "  --json FILE        write the report as JSON (spec/report-schema.md)\n"
	    "  --junit FILE       write the report as JUnit XML\n"
	    "  -v, --verbose      show each case's notes\n"
	    "  --no-color         plain text even on a terminal\n"
	    "  -h, --help         this text\n"
	    "\n"
	    "exit status: 0 every MUST passed (and every SHOULD with --strict), 1 a case failed,\n"
	    "2 the harness could not run.\n",
	    CONF_SPEC_VERSION, RFD_DEFAULT_SERVER, RFD_DEFAULT_CLIENT, DEFAULT_TIMEOUT_S);
}

static bool
in_list(const char *list, const char *id)
{
	size_t len = strlen(id);

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n == len && strncmp(p, id, len) == 0)
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static bool
in_section(const char *case_section, const char *wanted)
{
	size_t len = strlen(wanted);

	return strncmp(case_section, wanted, len) == 0 &&
	       (case_section[len] == '\0' || case_section[len] == '.');
}

/* Where section @number comes in the specification (conf_sections), unknown ones last. */
static size_t
section_rank(const char *number)
{
	for (size_t i = 0; i < conf_n_sections; i++)
		if (strcmp(conf_sections[i].number, number) == 0)
			return i;
	return conf_n_sections;
}

/* Order @cases by section as the specification does, keeping the order within a section. */
static void
sort_by_section(struct conf_case *cases, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct conf_case moving = cases[i];
		size_t rank = section_rank(moving.section), j = i;

		for (; j > 0 && section_rank(cases[j - 1].section) > rank; j--)
			cases[j] = cases[j - 1];
		cases[j] = moving;
	}
}

/*
 * Every case of @role, from the core table and the stream and sink table,
 * in the order of the specification's sections.  Free with free().
 */
static struct conf_case *
role_cases(enum conf_role role, size_t *n)
{
	const struct conf_case *core = role == CONF_SERVER ? conf_server_cases : conf_client_cases;
	const struct conf_case *streams =
	    role == CONF_SERVER ? conf_stream_server_cases : conf_stream_client_cases;
	size_t n_core = role == CONF_SERVER ? conf_n_server_cases : conf_n_client_cases;
	size_t n_streams =
	    role == CONF_SERVER ? conf_n_stream_server_cases : conf_n_stream_client_cases;
	struct conf_case *all = calloc(n_core + n_streams, sizeof(*all));

	if (!all)
		return NULL;
	memcpy(all, core, n_core * sizeof(*all));
	memcpy(all + n_core, streams, n_streams * sizeof(*all));
	*n = n_core + n_streams;
	sort_by_section(all, *n);
	return all;
}

static void
list_cases(const struct conf_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%-40s %-6s %-6s %s\n    %s\n", cases[i].id, cases[i].section,
		       cases[i].level == CONF_MUST ? "MUST" : "SHOULD", cases[i].requirements,
		       cases[i].sends);
}

int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
	    {"socket", required_argument, NULL, 's'},  {"cmd", required_argument, NULL, 'c'},
	    {"list", no_argument, NULL, 'l'},          {"case", required_argument, NULL, 'C'},
	    {"section", required_argument, NULL, 'S'}, {"timeout", required_argument, NULL, 't'},
	    {"strict", no_argument, NULL, 'x'},        {"skip", required_argument, NULL, 'K'},
	    {"json", required_argument, NULL, 'j'},    {"junit", required_argument, NULL, 'u'},
	    {"verbose", no_argument, NULL, 'v'},       {"no-color", no_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	const char *socket_path = NULL, *command = NULL, *case_list = NULL, *section = NULL;
	const char *skip_list = NULL;
	const char *json_path = NULL, *junit_path = NULL, *scale_text;
	bool list = false, no_color = false;
	double timeout_s = DEFAULT_TIMEOUT_S, scale = 1.0;
	const struct conf_case **selected;
	struct conf_case *all;
	struct run run = {0};
	size_t n_all, n = 0;
	int opt, status;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc < 2 || (strcmp(argv[1], "server") != 0 && strcmp(argv[1], "client") != 0)) {
		usage(stderr);
		return EXIT_HARNESS;
	}
	run.options.role = strcmp(argv[1], "server") == 0 ? CONF_SERVER : CONF_CLIENT;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "vh", long_options, NULL)) != -1) {
		switch (opt) {
		case 's':
			socket_path = optarg;
			break;
		case 'c':
			command = optarg;
			break;
		case 'l':
			list = true;
			break;
		case 'C':
			case_list = optarg;
			break;
		case 'S':
			section = optarg;
			break;
		case 'K':
			skip_list = optarg;
			break;
		case 't':
			timeout_s = strtod(optarg, NULL);
			if (timeout_s <= 0) {
				fprintf(stderr, "rfd-conform: error: bad --timeout %s\n", optarg);
				return EXIT_HARNESS;
			}
			break;
		case 'x':
			run.options.strict = true;
			break;
		case 'j':
			json_path = optarg;
			break;
		case 'u':
			junit_path = optarg;
			break;
		case 'v':
			run.options.verbose = true;
			break;
		case 'n':
			no_color = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_HARNESS;
		}
	}
	if (optind < argc || (socket_path && command) ||
	    (socket_path && run.options.role == CONF_CLIENT)) {
		usage(stderr);
		return EXIT_HARNESS;
	}

	all = role_cases(run.options.role, &n_all);
	if (!all)
		return EXIT_HARNESS;
	if (list) {
		list_cases(all, n_all);
		free(all);
		return 0;
	}

	if (!socket_path && !command)
		command = run.options.role == CONF_SERVER ? RFD_DEFAULT_SERVER : RFD_DEFAULT_CLIENT;
	if (command) {
		run.options.command = target_split_command(command);
		run.options.command_text = command;
		if (!run.options.command) {
			fprintf(stderr, "rfd-conform: error: cannot parse --cmd '%s'\n", command);
			free(all);
			return EXIT_HARNESS;
		}
	}
	run.options.socket_path = socket_path;
	scale_text = getenv("RFD_CONFORM_TIMEOUT_SCALE");
	if (scale_text && strtod(scale_text, NULL) > 0)
		scale = strtod(scale_text, NULL);
	run.options.timeout_ms = (int)(timeout_s * scale * 1000);
	run.options.progress = isatty(STDERR_FILENO) && !run.options.verbose;

	selected = calloc(n_all ? n_all : 1, sizeof(*selected));
	if (!selected) {
		free(all);
		return EXIT_HARNESS;
	}
	for (size_t i = 0; i < n_all; i++)
		if ((!case_list || in_list(case_list, all[i].id)) &&
		    (!skip_list || !in_list(skip_list, all[i].id)) &&
		    (!section || in_section(all[i].section, section)))
			selected[n++] = &all[i];
	if (n == 0) {
		fprintf(stderr, "rfd-conform: error: no case matches the selection\n");
		free(selected);
		free(all);
		target_free_argv(run.options.command);
		return EXIT_HARNESS;
	}

	if (run_cases(&run, selected, n) < 0) {
		fprintf(stderr, "rfd-conform: error: cannot run the cases\n");
		free(selected);
		free(all);
		target_free_argv(run.options.command);
		return EXIT_HARNESS;
	}
	report_text(&run, stdout, isatty(STDOUT_FILENO) && !no_color);
	status = (run.must_failed || (run.options.strict && run.should_failed)) ? 1 : 0;
	if (json_path && report_json(&run, json_path) < 0) {
		fprintf(stderr, "rfd-conform: error: cannot write %s: %s\n", json_path,
		        strerror(errno));
		status = EXIT_HARNESS;
	}
	if (junit_path && report_junit(&run, junit_path) < 0) {
		fprintf(stderr, "rfd-conform: error: cannot write %s: %s\n", junit_path,
		        strerror(errno));
		status = EXIT_HARNESS;
	}
	run_free(&run);
	free(selected);
	free(all);
	target_free_argv(run.options.command);
	return status;
}
