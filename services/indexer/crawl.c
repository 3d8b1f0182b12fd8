/*
 * Crawler: walks an export's host directory one queued directory at a
 * time (the queue is the crawlq table, so a crawl resumes after a crash
 * or restart where it stopped), and the content pass that hands pending
 * regular files to the extraction helper.
 *
 * Concurrency: called with idx->lock held (the worker thread, or the
 * event thread for files an event just touched).
 * Trust: the tree is written by guests.  Every open goes through
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) from the export's root
 * descriptor, every stat is AT_SYMLINK_NOFOLLOW, and file contents are
 * only read by the unprivileged helper (extract.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "index_i.h"

#define PATH_BUF	8192
#define TXN_ENTRIES	4000	/* entries per crawl transaction */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const struct idx_export *idx_export_find(const struct idx *idx,
					 const char *tag)
{
	for (size_t i = 0; i < idx->nexports; i++)
		if (!strcmp(idx->exports[i].tag, tag))
			return &idx->exports[i];
	return NULL;
}

int idx_open_beneath(int rootfd, const char *path, int flags)
{
	struct open_how how;
	long fd;

	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW);
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
		      RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
	fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

char idx_type_of_mode(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return 'f';
	case S_IFDIR: return 'd';
	case S_IFLNK: return 'l';
	case S_IFIFO: return 'p';
	case S_IFSOCK: return 's';
	case S_IFCHR: return 'c';
	case S_IFBLK: return 'b';
	default: return 'f';
	}
}

void idx_meta_from_stat(struct idx_meta *m, const void *stp)
{
	const struct stat *st = stp;

	m->type = idx_type_of_mode(st->st_mode);
	m->size = (uint64_t)st->st_size;
	m->mode = st->st_mode;
	m->uid = st->st_uid;
	m->gid = st->st_gid;
	m->mtime = st->st_mtim.tv_sec;
	m->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
	m->dev = st->st_dev;
	m->ino = st->st_ino;
}

int idx_lstat(int rootfd, const char *path, struct idx_meta *m)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_BUF];
	struct stat st;
	int dfd, r = 0;

	if (!slash || (size_t)(slash - path) >= sizeof(dir))
		return -EINVAL;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	if (!slash[1]) {
		if (fstat(rootfd, &st) < 0)
			return -errno;
		idx_meta_from_stat(m, &st);
		return 0;
	}
	if ((dfd = idx_open_beneath(rootfd, dir, O_PATH | O_DIRECTORY)) < 0)
		return dfd;
	if (fstatat(dfd, slash + 1, &st, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	else
		idx_meta_from_stat(m, &st);
	close(dfd);
	return r;
}

/* List one directory (export-relative dir) into the index. */
static int crawl_dir(struct idx *idx, const struct idx_export *ex,
		     const char *dir, int64_t gen, uint64_t *files)
{
	char path[PATH_BUF];
	struct dirent *de;
	struct idx_meta m;
	struct stat st;
	size_t dl = strlen(dir);
	DIR *d;
	int fd, r = 0;

	if (dl == 1)
		dl = 0;		/* "/" */
	fd = idx_open_beneath(ex->rootfd, dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return 0;	/* gone or replaced by a symlink: skip */
	if (!(d = fdopendir(fd))) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (dl + 1 + nl >= sizeof(path))
			continue;	/* deeper than we store */
		if (fstatat(dirfd(d), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) < 0)
			continue;	/* raced with a delete */
		memcpy(path, dir, dl);
		path[dl] = '/';
		memcpy(path + dl + 1, de->d_name, nl + 1);
		idx_meta_from_stat(&m, &st);
		r = idx_put(idx, ex->tag, path, dl + 1 + nl, &m, gen, 0);
		if (r == 0 && m.type == 'd')
			r = idx_queue_add(idx, ex->tag, path, dl + 1 + nl);
		if (r < 0)
			break;
		(*files)++;
	}
	closedir(d);
	return r;
}

/* Finish every export whose crawl has nothing queued any more. */
static int crawl_finish_all(struct idx *idx, int *did)
{
	sqlite3_stmt *st;
	char tags[16][256];
	uint64_t removed;
	int n = 0, rc, r;

	rc = sqlite3_prepare_v2(idx->db, "SELECT tag FROM exports WHERE"
				" state = 'crawling' AND NOT EXISTS (SELECT 1"
				" FROM crawlq WHERE export = tag) LIMIT 16",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return idx_err(idx, rc, "crawl finish");
	while (n < 16 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		snprintf(tags[n++], sizeof(tags[0]), "%s",
			 sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	for (int i = 0; i < n; i++) {
		if ((r = idx_crawl_finish(idx, tags[i], &removed)) < 0)
			return r;
		idx->log(6, "indexer: crawl of export %s done (%llu stale "
			 "entries removed)", tags[i],
			 (unsigned long long)removed);
		*did = 1;
	}
	return 0;
}

int idx_crawl_step(struct idx *idx, int budget_ms, uint64_t *files)
{
	int64_t end = now_ms() + budget_ms;
	char tag[256], dir[PATH_BUF];
	uint64_t n = 0;
	int r, did = 0;

	if ((r = idx_begin(idx)) < 0)
		return r;
	for (;;) {
		const struct idx_export *ex;
		uint64_t got = 0;
		int64_t gen;

		*tag = '\0';
		r = idx_queue_pop(idx, tag, sizeof(tag), dir, sizeof(dir));
		if (r < 0)
			goto fail;
		if (r == 0) {
			if ((r = crawl_finish_all(idx, &did)) < 0)
				goto fail;
			break;
		}
		did = 1;
		ex = idx_export_find(idx, tag);
		gen = idx_export_gen(idx, tag);
		if (ex && ex->rootfd >= 0 &&
		    (r = crawl_dir(idx, ex, dir, gen, &got)) < 0)
			goto fail;
		if ((r = idx_queue_done(idx, tag, dir)) < 0)
			goto fail;
		if (got && (r = idx_export_add_crawled(idx, tag, got)) < 0)
			goto fail;
		n += got;
		if (n >= TXN_ENTRIES || now_ms() >= end)
			break;
	}
	if ((r = idx_commit(idx)) < 0)
		goto fail;
	*files += n;
	return did;
fail:
	idx_rollback(idx);
	return r;
}

/*
 * Open a file for reading only if it is a regular file.  The guest can
 * swap the name for a device node or a FIFO between our lstat and the
 * open, and opening a device can have side effects, so the name is
 * resolved to an O_PATH descriptor first, checked, and only that inode
 * is reopened (through /proc/self/fd).  fd or -errno.
 */
static int open_regular(int rootfd, const char *path)
{
	char proc[64];
	struct stat sb;
	int pfd, fd;

	pfd = idx_open_beneath(rootfd, path, O_PATH);
	if (pfd < 0)
		return pfd;
	if (fstat(pfd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(pfd);
		return -EINVAL;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOATIME |
		  O_CLOEXEC);
	if (fd < 0 && errno == EPERM)
		fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	close(pfd);
	return fd;
}

int idx_content_step(struct idx *idx, int max, int budget_ms)
{
	struct job { int64_t id; char tag[256]; char *path; } *jobs;
	int64_t end = now_ms() + budget_ms;
	sqlite3_stmt *st = idx->st_pending;
	int n = 0, r = 0, rc;

	if (!(jobs = calloc((size_t)max, sizeof(*jobs))))
		return -ENOMEM;
	sqlite3_bind_int(st, 1, max);
	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int pl = sqlite3_column_bytes(st, 2);

		jobs[n].id = sqlite3_column_int64(st, 0);
		snprintf(jobs[n].tag, sizeof(jobs[n].tag), "%s",
			 sqlite3_column_text(st, 1));
		if (!(jobs[n].path = malloc((size_t)pl + 1)))
			break;
		memcpy(jobs[n].path, sqlite3_column_blob(st, 2), (size_t)pl);
		jobs[n].path[pl] = '\0';
		n++;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (n == 0)
		goto out;
	if ((r = idx_begin(idx)) < 0)
		goto out;
	for (int i = 0; i < n; i++) {
		const struct idx_export *ex = idx_export_find(idx, jobs[i].tag);
		int state = IDX_TEXT_BINARY, fd = -1;
		char *text = NULL;
		uint64_t hash = 0;
		size_t len = 0;
		struct stat sb;

		if (now_ms() >= end && i > 0)
			break;
		if (ex && ex->rootfd >= 0)
			fd = open_regular(ex->rootfd, jobs[i].path);
		if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    (uint64_t)sb.st_size <= idx->max_text) {
			r = ext_extract(&idx->ext, fd, idx->max_text, &text,
					&len, &hash);
			state = r == IDX_TEXT_DONE ? IDX_TEXT_DONE :
				IDX_TEXT_BINARY;
		} else if (fd >= 0) {
			state = IDX_TEXT_NONE;
		} else {
			/* gone (an unlink event follows) or not ours */
			state = IDX_TEXT_NONE;
		}
		if (fd >= 0)
			close(fd);
		r = idx_text_set(idx, jobs[i].id, state, text, len, hash);
		free(text);
		if (r < 0) {
			idx_rollback(idx);
			goto out;
		}
	}
	if ((r = idx_commit(idx)) < 0)
		idx_rollback(idx);
	else
		r = 1;
out:
	for (int i = 0; i < n; i++)
		free(jobs[i].path);
	free(jobs);
	return r;
}
