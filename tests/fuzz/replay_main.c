/*
 * Replay driver: links with a fuzz target instead of libFuzzer so that
 * every target builds with any compiler and CI replays the checked-in
 * corpora (seeds and past crashes) deterministically in seconds.
 *
 *   fuzz_NAME [-q] FILE|DIR...
 *
 * Each file is read whole and passed once to LLVMFuzzerTestOneInput;
 * directories are read one level deep, in name order.  A missing argument
 * path is skipped (a target may have no crash corpus).  A crash is the
 * sanitizer's abort; otherwise prints "NAME: N inputs, OK" and exits 0.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int quiet;

static int run_file(const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	FILE *f = fopen(path, "rb");

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t n;

		if (len == cap) {
			uint8_t *nb;

			cap = cap ? cap * 2 : 4096;
			if (!(nb = realloc(buf, cap))) {
				fprintf(stderr, "out of memory\n");
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: read error\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	if (!quiet)
		fprintf(stderr, "  %s (%zu bytes)\n", path, len);
	/* copy to an exact-size block so overreads are caught */
	{
		uint8_t *exact = malloc(len ? len : 1);

		if (!exact) {
			free(buf);
			return -1;
		}
		if (len)
			memcpy(exact, buf, len);
		free(buf);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path, unsigned *count)
{
	struct dirent *de;
	struct stat st;
	char **names = NULL;
	size_t n = 0, i;
	int r = 0;
	DIR *d;

	if (stat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	if (!(d = opendir(path)))
		return -1;
	while ((de = readdir(d))) {
		char **nn;

		if (de->d_name[0] == '.')
			continue;
		if (!(nn = realloc(names, (n + 1) * sizeof(*names)))) {
			r = -1;
			break;
		}
		names = nn;
		if (asprintf(&names[n], "%s/%s", path, de->d_name) < 0) {
			r = -1;
			break;
		}
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp);
	for (i = 0; i < n; i++) {
		if (r == 0 && stat(names[i], &st) == 0 &&
		    S_ISREG(st.st_mode)) {
			(*count)++;
			if (run_file(names[i]) < 0)
				r = -1;
		}
		free(names[i]);
	}
	free(names);
	return r;
}

int main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/');
	unsigned count = 0;
	int i, r = 0;

	name = name ? name + 1 : argv[0];
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-q")) {
			quiet = 1;
			continue;
		}
		if (run_path(argv[i], &count) < 0)
			r = 1;
	}
	printf("%s: %u inputs, %s\n", name, count, r ? "ERRORS" : "OK");
	return r;
}
