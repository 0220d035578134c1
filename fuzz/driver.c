/* SPDX-License-Identifier: MIT */
/*
 * main() for the replay and AFL++ builds of a fuzz target (libFuzzer brings
 * its own).  With arguments it runs every file named, and every file of every
 * directory named, once each.  Without arguments, in an AFL++ build, it is
 * the persistent-mode loop reading AFL++'s shared-memory test cases.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#ifdef __AFL_FUZZ_TESTCASE_LEN
__AFL_FUZZ_INIT();
#endif

enum {
	AFL_LOOP_COUNT = 10000,
	PATH_SIZE = 4096,
};

__attribute__((weak)) int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

/* One test case in a buffer of exactly its size, so ASan sees reads past the end. */
static void
run_one(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);

	if (!copy) {
		perror("malloc");
		exit(2);
	}
	if (size)
		memcpy(copy, data, size);
	LLVMFuzzerTestOneInput(copy, size);
	free(copy);
}

static int
run_file(const char *path)
{
	uint8_t *data = NULL;
	size_t size = 0, cap = 0;
	FILE *f = fopen(path, "rb");

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t n;

		if (size == cap) {
			uint8_t *grown;

			cap = cap ? cap * 2 : 4096;
			grown = realloc(data, cap);
			if (!grown) {
				perror("realloc");
				exit(2);
			}
			data = grown;
		}
		n = fread(data + size, 1, cap - size, f);
		if (n == 0)
			break;
		size += n;
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: read error\n", path);
		fclose(f);
		free(data);
		return -1;
	}
	fclose(f);
	run_one(data, size);
	free(data);
	return 0;
}

static int
compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of @dir, in name order (so runs repeat exactly); returns how many ran. */
static long
run_dir(const char *dir)
{
	char path[PATH_SIZE];
	char **names = NULL;
	size_t n = 0, cap = 0;
	long ran = 0;
	struct dirent *entry;
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((entry = readdir(d))) {
		if (entry->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **grown;

			cap = cap ? cap * 2 : 64;
			grown = realloc(names, cap * sizeof(*names));
			if (!grown) {
				perror("realloc");
				exit(2);
			}
			names = grown;
		}
		names[n] = strdup(entry->d_name);
		if (!names[n]) {
			perror("strdup");
			exit(2);
		}
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), compare_names);

	for (size_t i = 0; i < n; i++) {
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && run_file(path) == 0)
			ran++;
		free(names[i]);
	}
	free(names);
	return ran;
}

static int
replay(int argc, char **argv)
{
	long ran = 0;
	int failed = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			failed = 1;
		} else if (S_ISDIR(st.st_mode)) {
			long n = run_dir(argv[i]);

			if (n < 0)
				failed = 1;
			else
				ran += n;
		} else if (run_file(argv[i]) == 0) {
			ran++;
		} else {
			failed = 1;
		}
	}
	fprintf(stderr, "%s: %ld inputs ran without a failure\n", argv[0], ran);
	return failed;
}

#ifdef __AFL_FUZZ_TESTCASE_LEN
static int
afl_loop(void)
{
	const uint8_t *buf;

	__AFL_INIT();
	buf = __AFL_FUZZ_TESTCASE_BUF;
	while (__AFL_LOOP(AFL_LOOP_COUNT))
		run_one(buf, (size_t)__AFL_FUZZ_TESTCASE_LEN);
	return 0;
}
#endif

int
main(int argc, char **argv)
{
	LLVMFuzzerInitialize(&argc, &argv);
	if (argc > 1)
		return replay(argc, argv);
#ifdef __AFL_FUZZ_TESTCASE_LEN
	return afl_loop();
#else
	fprintf(stderr, "usage: %s FILE|DIR...   (runs each input once)\n", argv[0]);
	return 2;
#endif
}
