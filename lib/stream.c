/*
 * The operation stream's journal: segmented append-only files with a
 * per-record length and CRC32C, a writer that recovers a torn tail at
 * open, readers with per-consumer cursors, and trimming.  See stream.h
 * for the API contract and docs/stream.md for the format and guarantees.
 *
 * Concurrency: the writer serialises appends with one mutex (encode +
 * write(2) under it, so records hit the file in seq order); readers are
 * single-threaded objects and only ever read files, so they may run in
 * any number of processes beside the writer.  Cursor files are replaced
 * by rename(2), so a reader never sees half a cursor.
 *
 * Trust: nothing here trusts file contents: every length is bounded
 * before it is used and every payload is CRC-checked before decoding.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "stream.h"
#include "util.h"

/* ---- CRC32C (Castagnoli, reflected polynomial 0x82f63b78) ---- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t xf_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

int xf_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	if (s == NULL || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: return -EINVAL;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0' || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

/* ---- segment directory helpers ---- */

struct seg {
	uint64_t first;
	uint64_t size;
};

static int seg_cmp(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

static int seg_name_parse(const char *name, uint64_t *first)
{
	char *end;

	if (strlen(name) != 20 || strcmp(name + 16, ".seg") != 0)
		return -1;
	errno = 0;
	*first = strtoull(name, &end, 16);
	if (errno || end != name + 16)
		return -1;
	return 0;
}

/* List segments sorted by first seq; *out malloc'ed.  0 or -errno. */
static int seg_list(const char *dir, struct seg **out, size_t *n)
{
	DIR *d;
	struct dirent *de;
	struct seg *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	int dfd;

	*out = NULL;
	*n = 0;
	if ((d = opendir(dir)) == NULL)
		return -errno;
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		uint64_t first;
		struct stat st;

		if (seg_name_parse(de->d_name, &first) < 0)
			continue;
		if (fstatat(dfd, de->d_name, &st, 0) < 0)
			continue;	/* trimmed meanwhile */
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[cnt].first = first;
		v[cnt].size = (uint64_t)st.st_size;
		cnt++;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), seg_cmp);
	*out = v;
	*n = cnt;
	return 0;
}

static void seg_path(char *buf, size_t len, const char *dir, uint64_t first)
{
	snprintf(buf, len, "%s/%016" PRIx64 ".seg", dir, first);
}

static int hdr_check(const struct xenfs_seg_header *h, uint64_t first)
{
	if (h->magic != XENFS_SEG_MAGIC || h->version != XENFS_SEG_VERSION ||
	    h->header_len != sizeof(*h) || h->first_seq != first)
		return -1;
	return 0;
}

/*
 * Read the record at off.  Returns 1 with the payload in buf (*len set),
 * 0 at a clean end of file, -EAGAIN for an incomplete record (torn tail or
 * a write in progress), -EBADMSG for a bad length or CRC, other -errno.
 */
static int rec_read(int fd, off_t off, unsigned char *buf, size_t cap,
		    uint32_t *len)
{
	struct xenfs_rec_header rh;
	int r;

	r = (int)xf_pread_full(fd, &rh, sizeof(rh), off);
	if (r < 0)
		return r;
	if (r == 0)
		return 0;
	if ((size_t)r < sizeof(rh))
		return -EAGAIN;
	if (rh.len < sizeof(struct xenfs_ev_disk) || rh.len > cap)
		return rh.len == 0 ? -EAGAIN : -EBADMSG;
	r = (int)xf_pread_full(fd, buf, rh.len, off + (off_t)sizeof(rh));
	if (r < 0)
		return r;
	if ((uint32_t)r < rh.len)
		return -EAGAIN;
	if (xf_crc32c(0, buf, rh.len) != rh.crc)
		return -EBADMSG;
	*len = rh.len;
	return 1;
}

static uint64_t payload_seq(const unsigned char *buf)
{
	uint64_t seq;

	memcpy(&seq, buf, sizeof(seq));	/* first field of xenfs_ev_disk */
	return seq;
}

int xf_stream_decode(const void *payload, size_t len,
		     struct xenfs_event **evp)
{
	struct xenfs_ev_disk d;
	struct xenfs_event *ev;
	const char *src;
	char *p;
	size_t fixed, slen;

	if (len < sizeof(d))
		return -EBADMSG;
	memcpy(&d, payload, sizeof(d));
	fixed = d.fixed_len;
	if (fixed < sizeof(d))
		return -EBADMSG;
	slen = (size_t)d.domain_len + d.export_len + d.path_len + d.path2_len;
	if (fixed + slen != len)
		return -EBADMSG;
	ev = malloc(sizeof(*ev) + slen + 4);
	if (ev == NULL)
		return -ENOMEM;
	memset(ev, 0, sizeof(*ev));
	ev->seq = d.seq;
	ev->time_ns = d.time_ns;
	ev->op = d.op;
	ev->flags = d.flags;
	ev->origin = d.origin;
	ev->mode = d.mode;
	ev->dev = d.dev;
	ev->ino = d.ino;
	ev->generation = d.generation;
	ev->size = d.size;
	ev->mtime_sec = d.mtime_sec;
	ev->mtime_nsec = d.mtime_nsec;
	src = (const char *)payload + fixed;
	p = (char *)(ev + 1);
#define TAKE(field, n) do {				\
		memcpy(p, src, (n));			\
		p[(n)] = '\0';				\
		/* a NUL inside cuts the string: harmless */	\
		ev->field = p;				\
		p += (n) + 1;				\
		src += (n);				\
	} while (0)
	TAKE(domain, d.domain_len);
	TAKE(export_tag, d.export_len);
	TAKE(path, d.path_len);
	TAKE(path2, d.path2_len);
#undef TAKE
	*evp = ev;
	return 0;
}

static size_t cut_len(const char *s, size_t max)
{
	return s ? strnlen(s, max) : 0;
}

/* Encode ev into buf (XENFS_REC_MAX + header bytes); returns total length. */
static size_t rec_encode(const struct xenfs_event *ev, unsigned char *buf)
{
	struct xenfs_rec_header rh;
	struct xenfs_ev_disk d;
	unsigned char *p = buf + sizeof(rh);
	size_t dl, el, pl, p2l;

	dl = cut_len(ev->domain, XENFS_EV_NAME_MAX);
	el = cut_len(ev->export_tag, XENFS_EV_NAME_MAX);
	pl = cut_len(ev->path, XENFS_EV_PATH_MAX);
	p2l = cut_len(ev->path2, XENFS_EV_PATH_MAX);
	memset(&d, 0, sizeof(d));
	d.seq = ev->seq;
	d.time_ns = ev->time_ns;
	d.dev = ev->dev;
	d.ino = ev->ino;
	d.size = ev->size;
	d.mtime_sec = ev->mtime_sec;
	d.mtime_nsec = ev->mtime_nsec;
	d.generation = ev->generation;
	d.mode = ev->mode;
	d.flags = ev->flags;
	d.op = (uint16_t)ev->op;
	d.origin = (uint8_t)ev->origin;
	d.fixed_len = sizeof(d);
	d.domain_len = (uint16_t)dl;
	d.export_len = (uint16_t)el;
	d.path_len = (uint16_t)pl;
	d.path2_len = (uint16_t)p2l;
	memcpy(p, &d, sizeof(d));
	p += sizeof(d);
	if (dl) memcpy(p, ev->domain, dl);
	p += dl;
	if (el) memcpy(p, ev->export_tag, el);
	p += el;
	if (pl) memcpy(p, ev->path, pl);
	p += pl;
	if (p2l) memcpy(p, ev->path2, p2l);
	p += p2l;
	rh.len = (uint32_t)(p - buf - sizeof(rh));
	rh.crc = xf_crc32c(0, buf + sizeof(rh), rh.len);
	memcpy(buf, &rh, sizeof(rh));
	return (size_t)(p - buf);
}

size_t xf_stream_encode(const struct xenfs_event *ev, void *buf)
{
	unsigned char tmp[sizeof(struct xenfs_rec_header) + XENFS_REC_MAX];
	size_t len = rec_encode(ev, tmp) - sizeof(struct xenfs_rec_header);

	memcpy(buf, tmp + sizeof(struct xenfs_rec_header), len);
	return len;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int valid_consumer(const char *name)
{
	size_t n = 0;

	if (name == NULL || *name == '\0' || *name == '.')
		return 0;
	for (; name[n]; n++) {
		char c = name[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return n <= 64;
}

int xf_stream_read_cursor(const char *dir, const char *consumer,
			  uint64_t *seq)
{
	char path[PATH_MAX], buf[32], *end;
	ssize_t n;
	int fd;

	if (!valid_consumer(consumer))
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/cursors/%s", dir, consumer);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EBADMSG;
	buf[n] = '\0';
	errno = 0;
	*seq = strtoull(buf, &end, 10);
	if (errno || end == buf || (*end != '\n' && *end != '\0'))
		return -EBADMSG;
	return 0;
}

/* Calls fn for every consumer cursor in dir/cursors. */
static void cursors_each(const char *dir,
			 void (*fn)(const char *name, uint64_t seq, void *arg),
			 void *arg)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/cursors", dir);
	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		uint64_t seq;

		if (!valid_consumer(de->d_name) ||
		    strstr(de->d_name, ".tmp") != NULL)
			continue;
		if (xf_stream_read_cursor(dir, de->d_name, &seq) == 0)
			fn(de->d_name, seq, arg);
	}
	closedir(d);
}

/* ---- writer ---- */

struct xf_stream_writer {
	pthread_mutex_t lock;
	char *dir;
	int lockfd;
	int fd;			/* current segment, O_APPEND */
	uint64_t seg_first;	/* its first seq */
	uint64_t seg_size;
	uint64_t next_seq;
	uint64_t dirty;		/* appended since the last sync */
	struct xf_stream_wopts o;
	unsigned char buf[sizeof(struct xenfs_rec_header) + XENFS_REC_MAX];
};

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	(void)fsync(fd);	/* best effort: only machine crashes care */
	close(fd);
	return 0;
}

/* Create a new segment whose first record will be `first`. */
static int seg_create(struct xf_stream_writer *w, uint64_t first)
{
	struct xenfs_seg_header h;
	char path[PATH_MAX];
	int fd;

	seg_path(path, sizeof(path), w->dir, first);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
		  0640);
	if (fd < 0)
		return -errno;
	memset(&h, 0, sizeof(h));
	h.magic = XENFS_SEG_MAGIC;
	h.version = XENFS_SEG_VERSION;
	h.header_len = sizeof(h);
	h.first_seq = first;
	h.created_ns = now_ns();
	if (write(fd, &h, sizeof(h)) != (ssize_t)sizeof(h)) {
		int e = errno ? errno : EIO;
		close(fd);
		unlink(path);
		return -e;
	}
	if (w->fd >= 0) {
		(void)fdatasync(w->fd);	/* sealed segment: make it durable */
		close(w->fd);
	}
	w->fd = fd;
	w->seg_first = first;
	w->seg_size = sizeof(h);
	(void)fsync_dir(w->dir);
	return 0;
}

/*
 * Scan segment `first` (the newest), truncating after the last good
 * record.  Sets *last to the last good seq (first - 1 if none) and leaves
 * the segment open for appending in w.  -EBADMSG: the header itself is bad.
 */
static int seg_recover(struct xf_stream_writer *w, uint64_t first,
		       uint64_t *last)
{
	struct xenfs_seg_header h;
	char path[PATH_MAX];
	off_t off = sizeof(h);
	uint64_t expect = first;
	uint32_t len;
	int fd, r;

	seg_path(path, sizeof(path), w->dir, first);
	if ((fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC)) < 0)
		return -errno;
	r = (int)xf_pread_full(fd, &h, sizeof(h), 0);
	if (r != (int)sizeof(h) || hdr_check(&h, first) < 0) {
		close(fd);
		return -EBADMSG;
	}
	for (;;) {
		r = rec_read(fd, off, w->buf, XENFS_REC_MAX, &len);
		if (r == 1 && payload_seq(w->buf) < expect)
			r = -EBADMSG;
		if (r != 1)
			break;
		expect = payload_seq(w->buf) + 1;
		off += (off_t)(sizeof(struct xenfs_rec_header) + len);
	}
	if (r < 0 && r != -EAGAIN && r != -EBADMSG) {
		close(fd);
		return r;
	}
	if (r != 0) {
		struct stat st;
		if (fstat(fd, &st) == 0)
			log_warnx("journal: torn tail in %s: %lld bytes after "
				  "offset %lld truncated", path,
				  (long long)(st.st_size - off), (long long)off);
		if (ftruncate(fd, off) < 0) {
			r = -errno;
			close(fd);
			return r;
		}
	}
	w->fd = fd;
	w->seg_first = first;
	w->seg_size = (uint64_t)off;
	*last = expect - 1;
	return 0;
}

static void max_cursor_cb(const char *name, uint64_t seq, void *arg)
{
	uint64_t *m = arg;

	if (seq > *m)
		*m = seq;
}

int xf_stream_writer_open(const char *dir, const struct xf_stream_wopts *o,
			  struct xf_stream_writer **out)
{
	struct xf_stream_writer *w;
	struct seg *segs = NULL;
	size_t nsegs = 0;
	char path[PATH_MAX];
	uint64_t last = 0, maxcur = 0;
	int r;

	*out = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	w->fd = -1;
	w->lockfd = -1;
	w->o = *o;
	if (w->o.segment_max < 4096)
		w->o.segment_max = 4096;
	if ((w->dir = strdup(dir)) == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		r = -errno;
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/cursors", dir);
	if (mkdir(path, 0750) < 0 && errno != EEXIST) {
		r = -errno;
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/lock", dir);
	if ((w->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		r = -errno;
		goto fail;
	}
	if (flock(w->lockfd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = seg_list(dir, &segs, &nsegs)) < 0)
		goto fail;
	/* newest first; a segment with a bad header (torn creation) goes */
	while (nsegs > 0) {
		r = seg_recover(w, segs[nsegs - 1].first, &last);
		if (r == 0)
			break;
		if (r != -EBADMSG)
			goto fail;
		seg_path(path, sizeof(path), dir, segs[nsegs - 1].first);
		log_warnx("journal: %s has a bad header: removed", path);
		(void)unlink(path);
		last = segs[nsegs - 1].first - 1;
		nsegs--;
	}
	cursors_each(dir, max_cursor_cb, &maxcur);
	w->next_seq = last + 1;
	if (maxcur > last) {
		/* Records a consumer already saw are gone: only a machine
		 * crash does that.  Never reuse their seqs. */
		w->next_seq = maxcur + 1;
	}
	if (w->fd < 0 || w->next_seq != last + 1) {
		if ((r = seg_create(w, w->next_seq)) < 0)
			goto fail;
	}
	free(segs);
	*out = w;
	if (maxcur > last) {
		struct xenfs_event ev;

		log_warnx("journal: records %" PRIu64 "..%" PRIu64 " were lost "
			  "(machine crash?): consumers must re-crawl",
			  last + 1, maxcur);
		memset(&ev, 0, sizeof(ev));
		ev.op = XENFS_EV_RESYNC;
		ev.origin = XENFS_ORIGIN_HOST;
		(void)xf_stream_append(w, &ev);
	}
	return 0;
fail:
	free(segs);
	xf_stream_writer_close(w);
	return r;
}

void xf_stream_writer_close(struct xf_stream_writer *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0) {
		(void)fdatasync(w->fd);
		close(w->fd);
	}
	if (w->lockfd >= 0)
		close(w->lockfd);
	pthread_mutex_destroy(&w->lock);
	free(w->dir);
	free(w);
}

int xf_stream_append(struct xf_stream_writer *w, struct xenfs_event *ev)
{
	size_t len;
	int r;

	if (ev->time_ns == 0)
		ev->time_ns = now_ns();
	pthread_mutex_lock(&w->lock);
	if (w->seg_size >= w->o.segment_max &&
	    w->next_seq != w->seg_first) {
		if ((r = seg_create(w, w->next_seq)) < 0) {
			log_warnx("journal: cannot rotate: %s", strerror(-r));
			/* keep appending to the old one */
		}
	}
	ev->seq = w->next_seq;
	len = rec_encode(ev, w->buf);
	r = xf_write_all(w->fd, w->buf, len);
	if (r < 0) {
		/* do not leave a partial record before the next one */
		if (ftruncate(w->fd, (off_t)w->seg_size) < 0)
			log_warn("journal: cannot truncate after failed write");
		pthread_mutex_unlock(&w->lock);
		ev->seq = 0;
		return r;
	}
	w->seg_size += len;
	w->next_seq++;
	w->dirty++;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

uint64_t xf_stream_head(struct xf_stream_writer *w)
{
	uint64_t h;

	pthread_mutex_lock(&w->lock);
	h = w->next_seq - 1;
	pthread_mutex_unlock(&w->lock);
	return h;
}

int xf_stream_sync(struct xf_stream_writer *w)
{
	int fd, r = 0;

	pthread_mutex_lock(&w->lock);
	if (w->dirty == 0) {
		pthread_mutex_unlock(&w->lock);
		return 0;
	}
	w->dirty = 0;
	fd = dup(w->fd);
	pthread_mutex_unlock(&w->lock);
	/* outside the lock: appends go on while the disk works */
	if (fd < 0)
		return -errno;
	if (fdatasync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

struct trim_ctx {
	uint64_t min;
	int any;
	uint64_t cut;		/* records < cut are being deleted */
	const char *dir;
};

static void min_cursor_cb(const char *name, uint64_t seq, void *arg)
{
	struct trim_ctx *t = arg;

	if (!t->any || seq < t->min)
		t->min = seq;
	t->any = 1;
}

static void behind_cb(const char *name, uint64_t seq, void *arg)
{
	struct trim_ctx *t = arg;

	if (seq + 1 < t->cut)
		log_warnx("journal-max reached: consumer %s fell behind "
			  "(cursor %" PRIu64 ", oldest kept %" PRIu64 "): it "
			  "will need a full re-crawl", name, seq, t->cut);
}

int xf_stream_trim(struct xf_stream_writer *w)
{
	struct seg *segs;
	size_t n, i, del = 0;
	uint64_t total = 0, cur_first;
	struct trim_ctx t = { 0, 0, 0, w->dir };
	char path[PATH_MAX];
	int r;

	pthread_mutex_lock(&w->lock);
	cur_first = w->seg_first;
	pthread_mutex_unlock(&w->lock);
	if ((r = seg_list(w->dir, &segs, &n)) < 0)
		return r;
	cursors_each(w->dir, min_cursor_cb, &t);
	for (i = 0; i < n; i++)
		total += segs[i].size;
	/* segment i holds seqs [first_i, first_{i+1}) */
	for (i = 0; i + 1 < n && segs[i].first < cur_first; i++) {
		int passed = t.any && segs[i + 1].first - 1 <= t.min;
		int over = total > w->o.journal_max;

		if (!passed && !over)
			break;
		if (!passed)
			t.cut = segs[i + 1].first;
		seg_path(path, sizeof(path), w->dir, segs[i].first);
		if (unlink(path) < 0 && errno != ENOENT) {
			r = -errno;
			log_warn("journal: cannot remove %s", path);
			break;
		}
		total -= segs[i].size;
		del++;
	}
	if (t.cut)	/* once per consumer, with the final cut */
		cursors_each(w->dir, behind_cb, &t);
	if (del)
		log_debug("journal: trimmed %zu segment(s)", del);
	free(segs);
	return r < 0 ? r : 0;
}

/* ---- reader ---- */

struct xf_stream_reader {
	char *dir;
	char *consumer;		/* NULL: no cursor */
	uint64_t cursor;	/* committed */
	uint64_t next;		/* next seq wanted */
	int fd;			/* current segment or -1 */
	uint64_t seg_first;
	off_t off;
	int ino_fd;		/* inotify on dir, or -1 */
	unsigned char buf[XENFS_REC_MAX];
};

int xf_stream_reader_open(const char *dir, const char *consumer,
			  struct xf_stream_reader **out)
{
	struct xf_stream_reader *r;
	int e;

	*out = NULL;
	if (consumer && !valid_consumer(consumer))
		return -EINVAL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->fd = -1;
	r->ino_fd = -1;
	r->next = 0;		/* oldest kept */
	if ((r->dir = strdup(dir)) == NULL ||
	    (consumer && (r->consumer = strdup(consumer)) == NULL)) {
		xf_stream_reader_close(r);
		return -ENOMEM;
	}
	if (consumer) {
		e = xf_stream_read_cursor(dir, consumer, &r->cursor);
		if (e < 0 && e != -ENOENT) {
			log_warnx("journal: cursor of %s unreadable (%s): "
				  "starting from the oldest record",
				  consumer, strerror(-e));
			r->cursor = 0;
		}
		r->next = r->cursor + 1;
	}
	*out = r;
	return 0;
}

void xf_stream_reader_close(struct xf_stream_reader *r)
{
	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);
	if (r->ino_fd >= 0)
		close(r->ino_fd);
	free(r->dir);
	free(r->consumer);
	free(r);
}

void xf_stream_seek(struct xf_stream_reader *r, uint64_t next)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->next = next;	/* 0: the oldest kept */
}

uint64_t xf_stream_cursor(const struct xf_stream_reader *r)
{
	return r->cursor;
}

static int reader_open_seg(struct xf_stream_reader *r, uint64_t first)
{
	struct xenfs_seg_header h;
	char path[PATH_MAX];
	int fd, n;

	seg_path(path, sizeof(path), r->dir, first);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	n = (int)xf_pread_full(fd, &h, sizeof(h), 0);
	if (n < 0) {
		close(fd);
		return n;
	}
	if (n < (int)sizeof(h)) {
		close(fd);
		return -EAGAIN;		/* being created */
	}
	if (hdr_check(&h, first) < 0) {
		close(fd);
		return -EBADMSG;
	}
	if (r->fd >= 0)
		close(r->fd);
	r->fd = fd;
	r->seg_first = first;
	r->off = sizeof(h);
	return 0;
}

static int report_gap(struct xf_stream_reader *r, uint64_t upto,
		      uint64_t *gf, uint64_t *gl)
{
	log_warnx("consumer %s fell behind: records %" PRIu64 "..%" PRIu64
		  " are gone: full re-crawl needed",
		  r->consumer ? r->consumer : "(reader)", r->next, upto - 1);
	if (gf)
		*gf = r->next;
	if (gl)
		*gl = upto - 1;
	r->next = upto;
	return XF_STREAM_GAP;
}

/*
 * Make r->fd the segment that holds r->next.  Returns 0, XF_STREAM_EMPTY
 * (as 1 here: nothing yet), XF_STREAM_GAP, or -errno.
 */
static int reader_locate(struct xf_stream_reader *r, uint64_t *gf,
			 uint64_t *gl)
{
	struct seg *segs;
	size_t n, i;
	int e;

	if ((e = seg_list(r->dir, &segs, &n)) < 0)
		return e == -ENOENT ? 1 : e;
	if (n == 0) {
		free(segs);
		return 1;
	}
	if (r->next == 0)
		r->next = segs[0].first;	/* "from the oldest" */
	if (segs[0].first > r->next) {
		uint64_t first = segs[0].first;
		free(segs);
		return report_gap(r, first, gf, gl);
	}
	for (i = n; i-- > 0;)
		if (segs[i].first <= r->next)
			break;
	e = reader_open_seg(r, segs[i].first);
	free(segs);
	if (e == -EAGAIN || e == -ENOENT)
		return 1;	/* being created, or trimmed: look again */
	return e;
}

/* Is there a segment newer than the current one?  Its first seq or 0. */
static uint64_t reader_newer_seg(struct xf_stream_reader *r)
{
	struct seg *segs;
	size_t n, i;
	uint64_t f = 0;

	if (seg_list(r->dir, &segs, &n) < 0)
		return 0;
	for (i = 0; i < n; i++)
		if (segs[i].first > r->seg_first) {
			f = segs[i].first;
			break;
		}
	free(segs);
	return f;
}

int xf_stream_next(struct xf_stream_reader *r, struct xenfs_event **evp,
		   uint64_t *gap_first, uint64_t *gap_last)
{
	uint32_t len;
	int e;

	*evp = NULL;
	for (;;) {
		if (r->fd < 0) {
			e = reader_locate(r, gap_first, gap_last);
			if (e == 1)
				return XF_STREAM_EMPTY;
			if (e != 0)
				return e;
		}
		e = rec_read(r->fd, r->off, r->buf, sizeof(r->buf), &len);
		if (e == 1) {
			uint64_t seq = payload_seq(r->buf);

			r->off += (off_t)(sizeof(struct xenfs_rec_header) + len);
			if (seq < r->next)
				continue;	/* seeking forward */
			e = xf_stream_decode(r->buf, len, evp);
			if (e < 0)
				return e;
			r->next = seq + 1;
			return XF_STREAM_EVENT;
		}
		if (e == -EBADMSG || e == 0 || e == -EAGAIN) {
			uint64_t nf = reader_newer_seg(r);

			if (nf == 0) {
				if (e == -EBADMSG)
					log_warnx("journal: bad record in "
						  "segment %016" PRIx64 " at "
						  "%lld: waiting for repair",
						  r->seg_first,
						  (long long)r->off);
				return XF_STREAM_EMPTY;
			}
			/* the writer moved on: this segment is sealed */
			close(r->fd);
			r->fd = -1;
			if (e == -EBADMSG && nf > r->next)
				return report_gap(r, nf, gap_first, gap_last);
			if (nf > r->next)
				r->next = nf;	/* writer skipped seqs */
			continue;
		}
		return e;
	}
}

int xf_stream_wait(struct xf_stream_reader *r, int timeout_ms)
{
	struct pollfd pfd;
	char buf[4096];

	if (r->ino_fd < 0) {
		r->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (r->ino_fd >= 0 &&
		    inotify_add_watch(r->ino_fd, r->dir,
				      IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0) {
			close(r->ino_fd);
			r->ino_fd = -1;
		}
		if (r->ino_fd >= 0)
			return 0;	/* re-check before sleeping */
	}
	if (r->ino_fd < 0) {
		struct timespec ts = { 0, 50 * 1000000L };
		if (timeout_ms < 50)
			ts.tv_nsec = (long)timeout_ms * 1000000L;
		nanosleep(&ts, NULL);
		return 0;
	}
	pfd.fd = r->ino_fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR)
		return -errno;
	while (read(r->ino_fd, buf, sizeof(buf)) > 0)
		;	/* drain: the journal, not the event, is the truth */
	return 0;
}

int xf_stream_commit(struct xf_stream_reader *r, uint64_t seq)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], buf[32];
	int fd, n, e;

	if (r->consumer == NULL)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/cursors/%s", r->dir, r->consumer);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0 && errno == ENOENT) {
		char d[PATH_MAX];
		snprintf(d, sizeof(d), "%s/cursors", r->dir);
		(void)mkdir(d, 0750);	/* retried by the open below */
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	}
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", seq);
	e = xf_write_all(fd, buf, (size_t)n);
	if (close(fd) < 0 && e == 0)
		e = -errno;
	if (e == 0 && rename(tmp, path) < 0)
		e = -errno;
	if (e < 0) {
		(void)unlink(tmp);
		return e;
	}
	r->cursor = seq;
	return 0;
}

int xf_stream_head_seq(const char *dir, uint64_t *head)
{
	struct seg *segs;
	size_t n;
	struct xf_stream_reader *r;
	struct xenfs_event *ev;
	int e;

	*head = 0;
	if ((e = seg_list(dir, &segs, &n)) < 0)
		return e;
	if (n == 0) {
		free(segs);
		return 0;
	}
	if ((e = xf_stream_reader_open(dir, NULL, &r)) < 0) {
		free(segs);
		return e;
	}
	/* records of the newest segment; if it is empty, the one before */
	xf_stream_seek(r, segs[n - 1].first);
	while ((e = xf_stream_next(r, &ev, NULL, NULL)) == XF_STREAM_EVENT) {
		*head = ev->seq;
		free(ev);
	}
	if (*head == 0)
		*head = segs[n - 1].first - 1;
	xf_stream_reader_close(r);
	free(segs);
	return e < 0 ? e : 0;
}
