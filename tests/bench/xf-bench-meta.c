/*
 * xf-bench-meta: metadata benchmark for tests/bench/run.  In DIR/meta it
 * creates N empty files, stats each, then unlinks each, and prints the
 * rate of each phase:
 *
 *	create <ops/s> stat <ops/s> unlink <ops/s>
 *
 * A C program rather than a shell loop so that the numbers measure the
 * filesystem, not fork/exec.  Single-threaded; trusts its arguments (it is
 * a test tool, never installed).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int name(char *buf, size_t len, const char *dir, long i)
{
	int n = snprintf(buf, len, "%s/f%07ld", dir, i);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int main(int argc, char **argv)
{
	char dir[PATH_MAX], path[PATH_MAX];
	double t0, t[3];
	struct stat st;
	long i, n;
	char *end;
	int fd, n2;

	if (argc != 3) {
		fprintf(stderr, "usage: xf-bench-meta DIR N\n");
		return 2;
	}
	n = strtol(argv[2], &end, 10);
	if (*end != '\0' || n <= 0) {
		fprintf(stderr, "xf-bench-meta: bad count %s\n", argv[2]);
		return 2;
	}
	n2 = snprintf(dir, sizeof(dir), "%s/meta", argv[1]);
	if (n2 < 0 || (size_t)n2 >= sizeof(dir) ||
	    (mkdir(dir, 0755) == -1 && errno != EEXIST)) {
		perror(dir);
		return 1;
	}

	t0 = now();
	for (i = 0; i < n; i++) {
		if (name(path, sizeof(path), dir, i) == -1)
			return 1;
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd == -1 || close(fd) == -1) {
			perror(path);
			return 1;
		}
	}
	t[0] = now() - t0;

	t0 = now();
	for (i = 0; i < n; i++) {
		if (name(path, sizeof(path), dir, i) == -1)
			return 1;
		if (stat(path, &st) == -1) {
			perror(path);
			return 1;
		}
	}
	t[1] = now() - t0;

	t0 = now();
	for (i = 0; i < n; i++) {
		if (name(path, sizeof(path), dir, i) == -1)
			return 1;
		if (unlink(path) == -1) {
			perror(path);
			return 1;
		}
	}
	t[2] = now() - t0;
	if (rmdir(dir) == -1) {
		perror(dir);
		return 1;
	}

	printf("create %.0f stat %.0f unlink %.0f\n", (double)n / t[0],
	       (double)n / t[1], (double)n / t[2]);
	return 0;
}
