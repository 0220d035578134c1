/* SPDX-License-Identifier: MIT */
/* Timing, samples, child processes, pinning and memory readings. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

enum { MIN_CALLS_PER_POINT = 20 };

/* ---- Pinning ---- */

const char *
pin_mode_name(enum pin_mode mode)
{
	return mode == PIN_ONE_CORE ? "pinned" : "unpinned";
}

/* Children forked after this inherit the affinity.  PIN_NONE restores the mask the run began with.
 */
int
pin_apply(const struct bench_config *config, enum pin_mode mode)
{
	static cpu_set_t original;
	static bool saved;
	cpu_set_t set;

	assert(config);

	if (!saved) {
		if (sched_getaffinity(0, sizeof(original), &original) < 0)
			return -errno;
		saved = true;
	}
	set = original;
	if (mode == PIN_ONE_CORE) {
		CPU_ZERO(&set);
		CPU_SET(config->core, &set);
	}
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	return 0;
}

/* ---- Timing ---- */

uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
run_budget_start(struct run_budget *budget, const struct bench_config *config, double scale)
{
	assert(budget);
	assert(config);

	budget->deadline_ns = now_ns() + (uint64_t)(config->duration_s * scale * 1e9);
	budget->min_calls = MIN_CALLS_PER_POINT;
	budget->exact_calls = config->iterations;
}

bool
run_budget_more(const struct run_budget *budget, long done)
{
	assert(budget);

	if (budget->exact_calls > 0)
		return done < budget->exact_calls;
	return done < budget->min_calls || now_ns() < budget->deadline_ns;
}

/* ---- Samples ---- */

int
samples_init(struct samples *s, size_t cap)
{
	assert(s);

	s->ns = calloc(cap, sizeof(*s->ns));
	s->n = 0;
	s->cap = s->ns ? cap : 0;
	return s->ns ? 0 : -ENOMEM;
}

void
samples_free(struct samples *s)
{
	assert(s);

	free(s->ns);
	s->ns = NULL;
	s->n = s->cap = 0;
}

void
samples_reset(struct samples *s)
{
	assert(s);

	s->n = 0;
}

/* Past the capacity, the newest sample replaces a pseudo-random older one: a fair subsample. */
void
samples_add(struct samples *s, uint64_t ns)
{
	static uint64_t state = 88172645463325252ull;

	assert(s);

	if (s->n < s->cap) {
		s->ns[s->n++] = ns;
		return;
	}
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	s->ns[state % s->cap] = ns;
}

static int
compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

double
samples_quantile_us(struct samples *s, double q)
{
	size_t index;

	assert(s);

	if (s->n == 0)
		return NAN;
	qsort(s->ns, s->n, sizeof(*s->ns), compare_u64);
	index = (size_t)(q * (double)(s->n - 1) + 0.5);
	return (double)s->ns[index] / 1000.0;
}

void
measure_from(struct measure *m, struct samples *s, long calls, uint64_t elapsed_ns)
{
	assert(m);

	memset(m, 0, sizeof(*m));
	m->calls = calls;
	m->seconds = (double)elapsed_ns / 1e9;
	m->calls_per_s = m->seconds > 0 ? (double)calls / m->seconds : NAN;
	m->p50_us = s ? samples_quantile_us(s, 0.50) : NAN;
	m->p99_us = s ? samples_quantile_us(s, 0.99) : NAN;
}

void
measure_fail(struct measure *m, int err, const char *what)
{
	assert(m);
	assert(what);

	memset(m, 0, sizeof(*m));
	m->p50_us = m->p99_us = m->calls_per_s = NAN;
	m->error = err < 0 ? err : -EIO;
	snprintf(m->why, sizeof(m->why), "%s: %s", what, strerror(-m->error));
}

static int
compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *values, size_t n)
{
	qsort(values, n, sizeof(*values), compare_double);
	return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

static void
run_round(const struct bench_config *round_config, struct point *point, double *p50, double *p99,
          double *rate)
{
	struct measure m;

	if (point->result.error)
		return;
	point->fn(round_config, point->params, &m);
	if (m.error) {
		point->result = m;
		return;
	}
	*p50 = m.p50_us;
	*p99 = m.p99_us;
	*rate = m.calls_per_s;
	point->result.calls += m.calls;
	point->result.seconds += m.seconds;
}

void
measure_group(const struct bench_config *config, struct point *points, size_t n)
{
	struct bench_config round_config = *config;
	unsigned rounds = config->rounds ? config->rounds : 1;
	double(*figures)[3] = calloc((size_t)rounds * n, sizeof(*figures));

	assert(config);
	assert(points);

	if (!figures) {
		for (size_t i = 0; i < n; i++)
			measure_fail(&points[i].result, -ENOMEM, "rounds");
		return;
	}
	round_config.duration_s = config->duration_s / rounds;
	for (size_t i = 0; i < n; i++)
		memset(&points[i].result, 0, sizeof(points[i].result));
	for (unsigned r = 0; r < rounds; r++) {
		for (size_t k = 0; k < n; k++) {
			size_t i = r % 2 ? n - 1 - k : k;
			double *f = figures[i * rounds + r];

			run_round(&round_config, &points[i], &f[0], &f[1], &f[2]);
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct measure *m = &points[i].result;
		double column[3][MAX_ROUNDS];

		if (m->error)
			continue;
		for (unsigned r = 0; r < rounds; r++)
			for (int c = 0; c < 3; c++)
				column[c][r] = figures[i * rounds + r][c];
		m->p50_us = median(column[0], rounds);
		m->p99_us = median(column[1], rounds);
		m->calls_per_s = median(column[2], rounds);
	}
	free(figures);
}

/* ---- Processes ---- */

int
child_start(struct child *child, child_main_fn *fn, void *arg)
{
	int ready[2];
	char c;
	ssize_t n;

	assert(child);
	assert(fn);

	child->pid = -1;
	if (pipe2(ready, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	child->pid = fork();
	if (child->pid < 0) {
		int r = -errno;

		close(ready[0]);
		close(ready[1]);
		return r;
	}
	if (child->pid == 0) {
		close(ready[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGPIPE, SIG_IGN);
		fn(arg, ready[1]);
		_exit(0);
	}
	close(ready[1]);
	do
		n = read(ready[0], &c, 1);
	while (n < 0 && errno == EINTR);
	close(ready[0]);
	if (n != 1) {
		child_stop(child);
		return -ECHILD;
	}
	return 0;
}

void
child_ready(int ready_fd)
{
	if (write(ready_fd, "r", 1) != 1)
		_exit(3);
	close(ready_fd);
}

int
child_stop(struct child *child)
{
	int status;
	pid_t r;

	assert(child);

	if (child->pid <= 0)
		return 0;
	kill(child->pid, SIGTERM);
	do
		r = waitpid(child->pid, &status, 0);
	while (r < 0 && errno == EINTR);
	child->pid = -1;
	if (r < 0)
		return -errno;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WTERMSIG(status) == SIGTERM ? 0 : 128 + WTERMSIG(status);
}

int
raise_fd_limit(size_t wanted)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
		return -errno;
	if (limit.rlim_cur >= wanted)
		return 0;
	limit.rlim_cur = wanted < limit.rlim_max ? wanted : limit.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
		return -errno;
	return limit.rlim_cur >= wanted ? 0 : -EMFILE;
}

long
rss_bytes(void)
{
	long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (!f)
		return -errno;
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

long
heap_bytes(void)
{
	struct mallinfo2 info = mallinfo2();

	return (long)(info.uordblks + info.hblkhd);
}

void
socket_path(const struct bench_config *config, char *out, size_t size)
{
	static unsigned serial;

	assert(config);
	assert(out);

	snprintf(out, size, "%s/rfd-bench-%d-%u.sock", config->socket_dir, (int)getpid(), serial++);
}

/* ---- Streams ---- */

const uint8_t stream_item[12] = {0x08, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x00};

unsigned
stream_window(size_t n_fds)
{
	enum { WINDOW_MAX = 100, WINDOW_MIN = 2, FDS_IN_FLIGHT = 4096 };
	size_t window = n_fds ? FDS_IN_FLIGHT / n_fds : WINDOW_MAX;

	if (window > WINDOW_MAX)
		window = WINDOW_MAX;
	return window < WINDOW_MIN ? WINDOW_MIN : (unsigned)window;
}

/* ---- Large payloads ---- */

int
large_warmup(const struct bench_config *config)
{
	assert(config);

	return config->quick ? 0 : 2;
}

int
payload_memfd(const uint8_t *bytes, size_t size)
{
	int fd = memfd_create("rfd-bench-payload", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	size_t done = 0;
	int r;

	assert(bytes);

	if (fd < 0)
		return -errno;
	while (done < size) {
		ssize_t n = write(fd, bytes + done, size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			close(fd);
			return r;
		}
		done += (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

uint8_t
payload_touch(const uint8_t *bytes, size_t size)
{
	uint8_t sum = 0;

	assert(bytes);

	for (size_t i = 0; i < size; i += 4096)
		sum ^= bytes[i];
	if (size)
		sum ^= bytes[size - 1];
	return sum;
}

int
payload_touch_memfd(int fd, size_t *size)
{
	int want = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
	volatile uint8_t sink;
	struct stat st;
	void *map;
	int seals = fcntl(fd, F_GET_SEALS);

	assert(size);

	if (seals < 0)
		return -errno;
	if ((seals & want) != want)
		return -EPERM;
	if (fstat(fd, &st) < 0)
		return -errno;
	*size = (size_t)st.st_size;
	if (st.st_size == 0)
		return 0;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	sink = payload_touch(map, (size_t)st.st_size);
	(void)sink;
	munmap(map, (size_t)st.st_size);
	return 0;
}
