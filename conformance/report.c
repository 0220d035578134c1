/* SPDX-License-Identifier: MIT */
/* The report in three forms: text like h2spec's, JSON (spec/report-schema.md), JUnit XML. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "runner.h"

const char *
conf_section_title(const char *number)
{
	for (size_t i = 0; i < conf_n_sections; i++)
		if (strcmp(conf_sections[i].number, number) == 0)
			return conf_sections[i].title;
	return "";
}

static const char *
level_name(enum conf_level level)
{
	return level == CONF_MUST ? "MUST" : "SHOULD";
}

static const char *
result_name(enum conf_result result)
{
	switch (result) {
	case CONF_PASS:
		return "pass";
	case CONF_FAIL:
		return "fail";
	default:
		return "skip";
	}
}

/* ---- Text ---- */

static void
print_indented(FILE *out, const char *prefix, const char *text)
{
	const char *line = text;

	while (*line) {
		const char *end = strchr(line, '\n');
		int len = end ? (int)(end - line) : (int)strlen(line);

		if (len)
			fprintf(out, "%s%.*s\n", prefix, len, line);
		line += len + (end ? 1 : 0);
	}
}

void
report_text(const struct run *run, FILE *out, bool color)
{
	const char *green = color ? "\033[32m" : "", *red = color ? "\033[31m" : "";
	const char *yellow = color ? "\033[33m" : "", *reset = color ? "\033[0m" : "";
	const char *last_section = NULL;

	fprintf(out, "rfd-conform %s: spec version %s, %s role, target %s\n\n",
	        CONF_HARNESS_VERSION, CONF_SPEC_VERSION,
	        run->options.role == CONF_SERVER ? "server" : "client",
	        run->options.command_text ? run->options.command_text : run->options.socket_path);

	for (size_t i = 0; i < run->n; i++) {
		const struct case_outcome *o = &run->outcomes[i];
		const char *mark = o->result == CONF_PASS   ? "✔"
		                   : o->result == CONF_SKIP ? "-"
		                                            : "✖";
		const char *tint = o->result == CONF_PASS   ? green
		                   : o->result == CONF_SKIP ? yellow
		                                            : red;

		if (!last_section || strcmp(last_section, o->c->section) != 0) {
			last_section = o->c->section;
			fprintf(out, "%s. %s\n", o->c->section, conf_section_title(o->c->section));
		}
		fprintf(out, "  %s%s %s%s  [%s %s]\n", tint, mark, o->c->id, reset,
		        level_name(o->c->level), o->c->requirements);
		fprintf(out, "      sends: %s\n", o->c->sends);
		if (o->result != CONF_PASS)
			fprintf(out, "      %s: %s\n",
			        o->result == CONF_SKIP ? "skipped" : "failed", o->reason);
		if (o->result == CONF_FAIL || (run->options.verbose && o->notes[0]))
			print_indented(out, "      | ", o->notes);
	}
	fprintf(out, "\nFinished in %.2f seconds\n", run->duration_ms / 1000.0);
	fprintf(out, "%zu cases: %d passed, %d failed (%d MUST, %d SHOULD), %d skipped\n", run->n,
	        run->passed, run->failed, run->must_failed, run->should_failed, run->skipped);
}

/* ---- JSON ---- */

static void
json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void
json_requirements(FILE *f, const char *list)
{
	char copy[256];
	char *save = NULL;
	bool first = true;

	snprintf(copy, sizeof(copy), "%s", list);
	fputc('[', f);
	for (char *id = strtok_r(copy, ", ", &save); id; id = strtok_r(NULL, ", ", &save)) {
		if (!first)
			fputs(", ", f);
		json_string(f, id);
		first = false;
	}
	fputc(']', f);
}

int
report_json(const struct run *run, const char *path)
{
	FILE *f = fopen(path, "w");
	const char *section = NULL;

	if (!f)
		return -errno;
	fprintf(f, "{\n  \"spec_version\": \"%s\",\n  \"harness_version\": \"%s\",\n",
	        CONF_SPEC_VERSION, CONF_HARNESS_VERSION);
	fprintf(f, "  \"target\": {\"role\": \"%s\", ",
	        run->options.role == CONF_SERVER ? "server" : "client");
	fputs(run->options.command_text ? "\"command\": " : "\"socket\": ", f);
	json_string(f, run->options.command_text ? run->options.command_text
	                                         : run->options.socket_path);
	fprintf(f, "},\n  \"started\": \"%s\",\n  \"duration_ms\": %ld,\n", run->started,
	        run->duration_ms);
	fprintf(f, "  \"strict\": %s,\n", run->options.strict ? "true" : "false");
	fprintf(f,
	        "  \"summary\": {\"passed\": %d, \"failed\": %d, \"skipped\": %d, "
	        "\"must_failed\": %d, \"should_failed\": %d},\n",
	        run->passed, run->failed, run->skipped, run->must_failed, run->should_failed);
	fputs("  \"sections\": [", f);
	for (size_t i = 0; i < run->n; i++) {
		const struct case_outcome *o = &run->outcomes[i];

		if (!section || strcmp(section, o->c->section) != 0) {
			fputs(section ? "\n    ]},\n" : "\n", f);
			section = o->c->section;
			fputs("    {\"number\": ", f);
			json_string(f, section);
			fputs(", \"title\": ", f);
			json_string(f, conf_section_title(section));
			fputs(", \"cases\": [\n", f);
		} else {
			fputs(",\n", f);
		}
		fputs("      {\"id\": ", f);
		json_string(f, o->c->id);
		fputs(", \"requirements\": ", f);
		json_requirements(f, o->c->requirements);
		fprintf(f, ", \"level\": \"%s\", \"description\": ", level_name(o->c->level));
		json_string(f, o->c->sends);
		fprintf(f, ", \"result\": \"%s\", \"reason\": ", result_name(o->result));
		json_string(f, o->reason);
		fprintf(f, ", \"duration_ms\": %ld}", o->duration_ms);
	}
	fputs(section ? "\n    ]}\n  ]\n}\n" : "]\n}\n", f);
	return fclose(f) == 0 ? 0 : -errno;
}

/* ---- JUnit ---- */

static void
xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		default:
			if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t')
				fputc(*s, f);
		}
	}
}

int
report_junit(const struct run *run, const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	fprintf(f,
	        "<testsuites name=\"rfd-conform\" tests=\"%zu\" failures=\"%d\" time=\"%.3f\">\n",
	        run->n, run->failed, run->duration_ms / 1000.0);
	for (size_t i = 0; i < run->n;) {
		const char *section = run->outcomes[i].c->section;
		size_t end = i;
		int failures = 0, skipped = 0;

		while (end < run->n && strcmp(run->outcomes[end].c->section, section) == 0) {
			failures += run->outcomes[end].result == CONF_FAIL;
			skipped += run->outcomes[end].result == CONF_SKIP;
			end++;
		}
		fprintf(f, "  <testsuite name=\"");
		xml_text(f, section);
		fputs(". ", f);
		xml_text(f, conf_section_title(section));
		fprintf(f, "\" tests=\"%zu\" failures=\"%d\" skipped=\"%d\">\n", end - i, failures,
		        skipped);
		for (; i < end; i++) {
			const struct case_outcome *o = &run->outcomes[i];

			fputs("    <testcase classname=\"", f);
			xml_text(f, o->c->requirements);
			fputs("\" name=\"", f);
			xml_text(f, o->c->id);
			fprintf(f, "\" time=\"%.3f\">", o->duration_ms / 1000.0);
			if (o->result == CONF_FAIL) {
				fputs("<failure message=\"", f);
				xml_text(f, o->reason);
				fputs("\">", f);
				xml_text(f, o->notes);
				fputs("</failure>", f);
			} else if (o->result == CONF_SKIP) {
				fputs("<skipped message=\"", f);
				xml_text(f, o->reason);
				fputs("\"/>", f);
			}
			fputs("</testcase>\n", f);
		}
		fputs("  </testsuite>\n", f);
	}
	fputs("</testsuites>\n", f);
	return fclose(f) == 0 ? 0 : -errno;
}
