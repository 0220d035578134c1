/* SPDX-License-Identifier: MIT */
/* The results: rows with their baselines and targets, as a table, as JSON and as a plot. */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

enum {
	MAX_ROWS = 512,
	MAX_META = 32,
	MAX_POINTS = 512,
	PANELS = 5,
};

struct meta {
	char key[32];
	char value[160];
};

struct plot_entry {
	int panel;
	char group[32];
	char series[48];
	double value;
};

static struct row rows[MAX_ROWS];
static size_t n_rows;
static size_t n_failed;
static struct meta metas[MAX_META];
static size_t n_metas;
static struct plot_entry points[MAX_POINTS];
static size_t n_points;

/* ---- Rows ---- */

struct row *
report_row(const char *section, const char *label, const char *mode)
{
	static struct row overflow;
	struct row *row = n_rows < MAX_ROWS ? &rows[n_rows++] : &overflow;

	assert(section);
	assert(label);

	memset(row, 0, sizeof(*row));
	snprintf(row->section, sizeof(row->section), "%s", section);
	snprintf(row->label, sizeof(row->label), "%s", label);
	row->mode = mode ? mode : "";
	row->value = row->p99 = row->extra = row->baseline_value = row->ratio = NAN;
	row->unit = "";
	row->met = -1;
	return row;
}

static void
row_judge(struct row *row)
{
	double x = row->target == TARGET_VALUE_AT_MOST ? row->value : row->ratio;

	if (row->target == TARGET_NONE || isnan(x)) {
		row->met = -1;
		return;
	}
	if (row->target == TARGET_RATIO_AT_LEAST)
		row->met = x >= row->threshold;
	else
		row->met = x <= row->threshold;
}

void
row_set_baseline(struct row *row, const char *label, double value)
{
	assert(row);
	assert(label);

	snprintf(row->baseline, sizeof(row->baseline), "%s", label);
	row->baseline_value = value;
	row->ratio = value > 0 && !isnan(row->value) ? row->value / value : NAN;
	row_judge(row);
}

void
row_set_target(struct row *row, enum target_kind kind, double threshold)
{
	assert(row);

	row->target = kind;
	row->threshold = threshold;
	row_judge(row);
}

void
row_fail(struct row *row, const struct measure *m)
{
	assert(row);
	assert(m);

	snprintf(row->note, sizeof(row->note), "%s", m->why);
	if (m->error != -ENOTSUP)
		n_failed++;
	row->value = NAN;
	row->ratio = NAN;
	row->met = -1;
}

void
report_meta(const char *key, const char *fmt, ...)
{
	va_list ap;

	assert(key);
	assert(fmt);

	if (n_metas >= MAX_META)
		return;
	snprintf(metas[n_metas].key, sizeof(metas[n_metas].key), "%s", key);
	va_start(ap, fmt);
	vsnprintf(metas[n_metas].value, sizeof(metas[n_metas].value), fmt, ap);
	va_end(ap);
	n_metas++;
}

size_t
report_failures(void)
{
	return n_failed;
}

void
report_free(void)
{
	n_rows = n_metas = n_points = n_failed = 0;
}

/* ---- The table ---- */

static const char *
format_number(char *out, size_t size, double v, const char *unit)
{
	if (isnan(v))
		snprintf(out, size, "-");
	else if (fabs(v) >= 1e6)
		snprintf(out, size, "%.2fM %s", v / 1e6, unit);
	else if (fabs(v) >= 1e4)
		snprintf(out, size, "%.1fk %s", v / 1e3, unit);
	else if (fabs(v) >= 100)
		snprintf(out, size, "%.0f %s", v, unit);
	else if (fabs(v) >= 1)
		snprintf(out, size, "%.2f %s", v, unit);
	else
		snprintf(out, size, "%.3f %s", v, unit);
	return out;
}

static const char *
target_text(char *out, size_t size, const struct row *row)
{
	const char *verdict = row->met == 1 ? "met" : row->met == 0 ? "MISSED" : "n/a";

	switch (row->target) {
	case TARGET_RATIO_AT_MOST:
		snprintf(out, size, "<= %.2fx %s", row->threshold, verdict);
		break;
	case TARGET_RATIO_AT_LEAST:
		snprintf(out, size, ">= %.2fx %s", row->threshold, verdict);
		break;
	case TARGET_VALUE_AT_MOST:
		snprintf(out, size, "<= %g %s", row->threshold, verdict);
		break;
	default:
		snprintf(out, size, "%s", "");
		break;
	}
	return out;
}

static void
print_row(FILE *out, const struct row *row)
{
	char value[32], p99[32], base[32], ratio[16], target[40], extra[32];

	format_number(value, sizeof(value), row->value, row->unit);
	format_number(p99, sizeof(p99), row->p99, isnan(row->p99) ? "" : "us");
	format_number(base, sizeof(base), row->baseline_value, row->unit);
	if (isnan(row->ratio))
		snprintf(ratio, sizeof(ratio), "-");
	else
		snprintf(ratio, sizeof(ratio), "%.2fx", row->ratio);
	if (row->extra_unit)
		format_number(extra, sizeof(extra), row->extra, row->extra_unit);
	else
		snprintf(extra, sizeof(extra), "%s", "");
	fprintf(out, "%-8s %-44s %13s %11s %-34s %13s %7s  %-17s %s", row->mode, row->label, value,
	        p99, row->baseline[0] ? row->baseline : "-", base, ratio,
	        target_text(target, sizeof(target), row), extra);
	if (row->note[0])
		fprintf(out, "  (%s)", row->note);
	fputc('\n', out);
}

void
report_print(const struct bench_config *config, FILE *out)
{
	const char *section = "";

	assert(out);

	for (size_t i = 0; i < n_metas; i++)
		fprintf(out, "%s: %s\n", metas[i].key, metas[i].value);
	for (size_t i = 0; i < n_rows; i++) {
		if (strcmp(rows[i].section, section) != 0) {
			section = rows[i].section;
			fprintf(out, "\n== %s ==\n%-8s %-44s %13s %11s %-34s %13s %7s  %-17s %s\n",
			        section, "mode", "case", "value", "p99", "baseline", "baseline",
			        "ratio", "target", "also");
		}
		print_row(out, &rows[i]);
	}
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
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void
json_number(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

static void
json_row(FILE *f, const struct row *row)
{
	static const char *targets[] = {"none", "ratio_at_most", "ratio_at_least", "value_at_most"};

	fputs("    {\"section\": ", f);
	json_string(f, row->section);
	fputs(", \"case\": ", f);
	json_string(f, row->label);
	fputs(", \"mode\": ", f);
	json_string(f, row->mode);
	fputs(", \"value\": ", f);
	json_number(f, row->value);
	fputs(", \"unit\": ", f);
	json_string(f, row->unit);
	fputs(", \"p99_us\": ", f);
	json_number(f, row->p99);
	fputs(", \"extra\": ", f);
	json_number(f, row->extra_unit ? row->extra : NAN);
	fputs(", \"extra_unit\": ", f);
	json_string(f, row->extra_unit ? row->extra_unit : "");
	fputs(", \"baseline\": ", f);
	json_string(f, row->baseline);
	fputs(", \"baseline_value\": ", f);
	json_number(f, row->baseline_value);
	fputs(", \"ratio\": ", f);
	json_number(f, row->ratio);
	fputs(", \"target\": ", f);
	json_string(f, targets[row->target]);
	fputs(", \"threshold\": ", f);
	json_number(f, row->target == TARGET_NONE ? NAN : row->threshold);
	fprintf(f, ", \"met\": %s", row->met < 0 ? "null" : row->met ? "true" : "false");
	fputs(", \"note\": ", f);
	json_string(f, row->note);
	fputs("}", f);
}

int
report_write_json(const struct bench_config *config, const char *path)
{
	FILE *f = fopen(path, "we");
	int r;

	assert(path);

	if (!f)
		return -errno;
	fputs("{\n  \"program\": \"rfd-bench\",\n  \"meta\": {", f);
	for (size_t i = 0; i < n_metas; i++) {
		fputs(i ? ", " : "", f);
		json_string(f, metas[i].key);
		fputs(": ", f);
		json_string(f, metas[i].value);
	}
	fputs("},\n  \"results\": [\n", f);
	for (size_t i = 0; i < n_rows; i++) {
		json_row(f, &rows[i]);
		fputs(i + 1 < n_rows ? ",\n" : "\n", f);
	}
	fputs("  ]\n}\n", f);
	r = ferror(f) ? -EIO : 0;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	return r;
}

/* ---- The plot ---- */

void
plot_point(int panel, const char *group, const char *series, double value)
{
	struct plot_entry *p;

	assert(group);
	assert(series);

	if (n_points >= MAX_POINTS || isnan(value))
		return;
	p = &points[n_points++];
	p->panel = panel;
	snprintf(p->group, sizeof(p->group), "%s", group);
	snprintf(p->series, sizeof(p->series), "%s", series);
	p->value = value;
}

static int
compare_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Distinct values of one field of a panel's points: groups in order of first
 * appearance, series sorted by name (so raw, rocketfd and sd-bus stay together).
 */
static size_t
distinct(int panel, bool series, const char **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < n_points; i++) {
		const char *name = series ? points[i].series : points[i].group;
		bool seen = false;

		if (points[i].panel != panel)
			continue;
		for (size_t j = 0; j < n && !seen; j++)
			seen = strcmp(out[j], name) == 0;
		if (!seen && n < max)
			out[n++] = name;
	}
	if (series)
		qsort(out, n, sizeof(*out), compare_names);
	return n;
}

/* One hue per implementation (and payload way), a light shade of it for the unpinned runs. */
static const char *
series_color(const char *name)
{
	static const struct {
		const char *prefix;
		const char *pinned;
		const char *unpinned;
	} colors[] = {
	    {"raw", "#5e3c99", "#b2abd2"},
	    {"rocketfd memfd", "#1b7837", "#a6dba0"},
	    {"rocketfd inline", "#b35806", "#fdb863"},
	    {"rocketfd", "#1b7837", "#a6dba0"},
	    {"sd-bus memfd", "#2166ac", "#92c5de"},
	    {"sd-bus inline", "#b2182b", "#f4a582"},
	    {"sd-bus", "#2166ac", "#92c5de"},
	};
	bool unpinned = strstr(name, "unpinned") != NULL;

	for (size_t i = 0; i < sizeof(colors) / sizeof(colors[0]); i++)
		if (strncmp(name, colors[i].prefix, strlen(colors[i].prefix)) == 0)
			return unpinned ? colors[i].unpinned : colors[i].pinned;
	return "#777777";
}

static double
point_value(int panel, const char *group, const char *series)
{
	for (size_t i = 0; i < n_points; i++)
		if (points[i].panel == panel && strcmp(points[i].group, group) == 0 &&
		    strcmp(points[i].series, series) == 0)
			return points[i].value;
	return NAN;
}

/* One tab-separated table per panel: a row per group, a column per series. */
static int
write_panel(const char *dir, int panel)
{
	const char *groups[32], *series[16];
	size_t n_groups = distinct(panel, false, groups, 32);
	size_t n_series = distinct(panel, true, series, 16);
	char path[512];
	FILE *f;

	if (n_groups == 0)
		return 0;
	snprintf(path, sizeof(path), "%s/panel%d.tsv", dir, panel);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fputs("group", f);
	for (size_t s = 0; s < n_series; s++)
		fprintf(f, "\t%s", series[s]);
	fputs("\n#colors", f);
	for (size_t s = 0; s < n_series; s++)
		fprintf(f, "\t%s", series_color(series[s]));
	fputc('\n', f);
	for (size_t g = 0; g < n_groups; g++) {
		fputs(groups[g], f);
		for (size_t s = 0; s < n_series; s++) {
			double v = point_value(panel, groups[g], series[s]);

			if (isnan(v))
				fputs("\t-", f);
			else
				fprintf(f, "\t%.6g", v);
		}
		fputc('\n', f);
	}
	return fclose(f) == 0 ? 1 : -errno;
}

static int
run_gnuplot(const char *script, const char *dir, const char *panels, const char *out_path)
{
	char expr[1024];
	int status;
	pid_t pid;

	snprintf(expr, sizeof(expr), "dir='%s'; out='%s'; panels='%s'", dir, out_path, panels);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execlp("gnuplot", "gnuplot", "-e", expr, script, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return WIFEXITED(status) && WEXITSTATUS(status) == 127 ? -ENOENT : -EIO;
	return 0;
}

static void
remove_panels(const char *dir)
{
	char path[512];

	for (int panel = 1; panel <= PANELS; panel++) {
		snprintf(path, sizeof(path), "%s/panel%d.tsv", dir, panel);
		unlink(path);
	}
	rmdir(dir);
}

int
plot_render(const struct bench_config *config, const char *path)
{
	char dir[] = "/tmp/rfd-bench-plot-XXXXXX"; /* a mkdtemp() template */
	char panels[32] = "";
	int r = 0;

	assert(config);
	assert(path);

	if (strchr(path, '\'') || !mkdtemp(dir))
		return strchr(path, '\'') ? -EINVAL : -errno;
	for (int panel = 1; panel <= PANELS && r >= 0; panel++) {
		r = write_panel(dir, panel);
		if (r > 0)
			snprintf(panels + strlen(panels), sizeof(panels) - strlen(panels), "%s%d",
			         panels[0] ? " " : "", panel);
	}
	if (r >= 0 && !panels[0])
		r = -ENODATA;
	if (r >= 0)
		r = run_gnuplot(config->plot_script, dir, panels, path);
	remove_panels(dir);
	return r < 0 ? r : 0;
}
