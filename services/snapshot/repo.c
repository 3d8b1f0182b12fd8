/*
 * xenfs-snapshot repository: content-defined chunking (gear rolling
 * hash), SHA-256 (libcrypto), zstd-compressed chunk files and the SQLite
 * catalog.  Layout and guarantees: docs/snapshot.md.
 *
 *   REPO/lock               flock: one writer at a time
 *   REPO/catalog.db         SQLite catalog (schema below)
 *   REPO/packs/N.pack       chunk records (hash, length, kind 0 raw or
 *                           1 zstd, bytes), append-only, one per run
 *   REPO/staging/           reflink clones taken while a domain is frozen
 *
 * The catalog transaction of a snapshot commits only after the run's pack
 * is fdatasync'ed, so a crash leaves at worst an orphan pack (removed by
 * the next prune).
 *
 * Single-threaded.  Trust: chunk contents are guest data (opaque); every
 * chunk read is checked against its hash.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "log.h"
#include "util.h"
#include "snap_i.h"

/* ---- chunking ---- */

static uint64_t gear[256];

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void snap_chunker_init(struct snap_chunker *c, uint32_t avg)
{
	uint64_t seed = 0x58656e4653ull;	/* fixed: chunk cuts must be
						 * stable across runs */
	unsigned bits = 0;
	int i;

	if (!gear[0])
		for (i = 0; i < 256; i++)
			gear[i] = splitmix(&seed);
	if (avg < 4096)
		avg = 4096;
	if (avg > (64u << 20))
		avg = 64u << 20;
	while ((2u << bits) <= avg)
		bits++;
	c->avg = 1u << bits;
	c->min = c->avg / 4;
	c->max = c->avg * 4;
	/* the top bits of h depend on the last 64 bytes */
	c->mask = ~0ull << (64 - (bits - 1));
}

/*
 * Cut at the first position past min where the top bits of the rolling
 * hash are zero; with log2(avg)-1 mask bits the expected distance past
 * min (avg/4) is avg/2, so chunks average about 3/4 avg (test_snap).
 */
size_t snap_chunk_cut(const struct snap_chunker *c, const uint8_t *buf,
		      size_t len)
{
	uint64_t h = 0;
	size_t i, end = len < c->max ? len : c->max;

	if (len <= c->min)
		return len;
	for (i = c->min - 64; i < c->min; i++)
		h = (h << 1) + gear[buf[i]];
	for (i = c->min; i < end; i++) {
		h = (h << 1) + gear[buf[i]];
		if (!(h & c->mask))
			return i + 1;
	}
	return end;
}

void snap_sha256(const void *buf, size_t len, uint8_t out[SNAP_HASH_LEN])
{
	unsigned int olen = SNAP_HASH_LEN;

	if (!EVP_Digest(buf, len, out, &olen, EVP_sha256(), NULL))
		fatalx("EVP_Digest(sha256) failed");
}

void snap_hex(const uint8_t *h, char out[2 * SNAP_HASH_LEN + 1])
{
	static const char x[] = "0123456789abcdef";
	int i;

	for (i = 0; i < SNAP_HASH_LEN; i++) {
		out[2 * i] = x[h[i] >> 4];
		out[2 * i + 1] = x[h[i] & 15];
	}
	out[2 * SNAP_HASH_LEN] = '\0';
}

/* ---- catalog ---- */

static const char schema[] =
"PRAGMA page_size=2048;"		/* new catalogs: an incremental
					 * dirties a few random pages per
					 * change; smaller ones, less I/O */
"PRAGMA journal_mode=WAL;"
"PRAGMA synchronous=NORMAL;"
"PRAGMA cache_size=-131072;"
"PRAGMA wal_autocheckpoint=16384;"
"PRAGMA mmap_size=1073741824;"
"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
"INSERT OR IGNORE INTO meta VALUES('format', '1');"
/* one row per snapshot; base_seq: journal seq the capture reflects */
"CREATE TABLE IF NOT EXISTS snapshots(id INTEGER PRIMARY KEY,"
" vm TEXT NOT NULL, label TEXT, time_ns INTEGER, base_seq INTEGER,"
" kind TEXT, freeze_ms INTEGER, files INTEGER, bytes INTEGER,"
" added_bytes INTEGER);"
"CREATE TABLE IF NOT EXISTS snap_exports(snap INTEGER, export TEXT,"
" files INTEGER, bytes INTEGER, PRIMARY KEY(snap, export)) WITHOUT ROWID;"
/* an entry is valid in the snapshots s of (vm, export) with
 * from_snap <= s < to_snap (to_snap NULL: still current) */
"CREATE TABLE IF NOT EXISTS entries(id INTEGER PRIMARY KEY,"
" vm TEXT NOT NULL, export TEXT NOT NULL, path TEXT NOT NULL,"
" from_snap INTEGER NOT NULL, to_snap INTEGER,"
" type INTEGER, mode INTEGER, uid INTEGER, gid INTEGER, size INTEGER,"
" atime_ns INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, dev INTEGER,"
" ino INTEGER, nlink INTEGER, rdev INTEGER, target BLOB, xattrs BLOB,"
" content INTEGER);"
"CREATE INDEX IF NOT EXISTS entries_open ON entries(vm, export, path)"
" WHERE to_snap IS NULL;"
"CREATE INDEX IF NOT EXISTS entries_inode ON entries(vm, export, ino);"
"CREATE INDEX IF NOT EXISTS entries_range ON entries(vm, export,"
" from_snap);"
"CREATE INDEX IF NOT EXISTS entries_content ON entries(content);"
/* content: extents blob = repeated (u64 off, u32 len, hash[32]) */
"CREATE TABLE IF NOT EXISTS contents(id INTEGER PRIMARY KEY,"
" hash BLOB UNIQUE NOT NULL, size INTEGER, extents BLOB);"
"CREATE TABLE IF NOT EXISTS chunks(hash BLOB PRIMARY KEY, size INTEGER,"
" csize INTEGER, pack INTEGER, off INTEGER) WITHOUT ROWID;"
"CREATE INDEX IF NOT EXISTS chunks_pack ON chunks(pack);";

int snap_exec(struct snap_repo *r, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(r->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_warnx("catalog: %s", msg ? msg : "error");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

int snap_repo_open(const char *dir, uint32_t chunk_avg, int write,
		   struct snap_repo **out)
{
	struct snap_repo *r;
	char path[PATH_MAX];
	int rc;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->lockfd = -1;
	r->dirfd = -1;
	r->pack_fd = -1;
	r->rpack_fd = -1;
	if ((r->dir = strdup(dir)) == NULL) {
		free(r);
		return -ENOMEM;
	}
	if (write && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		log_warn("mkdir %s", dir);
		goto fail;
	}
	if ((r->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = -errno;
		log_warn("repository %s", dir);
		goto fail;
	}
	if (write) {
		(void)mkdirat(r->dirfd, "packs", 0700);	/* may exist */
		(void)mkdirat(r->dirfd, "staging", 0700);
		r->lockfd = openat(r->dirfd, "lock", O_RDWR | O_CREAT |
				   O_CLOEXEC, 0600);
		if (r->lockfd < 0 || flock(r->lockfd, LOCK_EX | LOCK_NB) < 0) {
			rc = -errno;
			if (rc == -EWOULDBLOCK)
				log_warnx("repository %s is busy (another "
					  "xenfs-snapshot is writing)", dir);
			else
				log_warn("lock %s", dir);
			goto fail;
		}
	} else {
		/* readers wait for a writer only as SQLite needs */
	}
	snprintf(path, sizeof(path), "%s/catalog.db", dir);
	if (!write && access(path, R_OK) < 0) {
		rc = -errno;
		log_warnx("%s: no repository here", dir);
		goto fail;
	}
	if (sqlite3_open_v2(path, &r->db, write ?
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE :
			    SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		log_warnx("%s: %s", path, sqlite3_errmsg(r->db));
		rc = -EIO;
		goto fail;
	}
	sqlite3_busy_timeout(r->db, 10000);
	/* the last close checkpoints what this run wrote and removes the
	 * WAL (keeping it would make every open replay it) */
	if (!write)
		(void)snap_exec(r, "PRAGMA cache_size=-131072;"
				"PRAGMA mmap_size=1073741824");
	if (write && (rc = snap_exec(r, schema)) < 0)
		goto fail;
	snap_chunker_init(&r->ck, chunk_avg);
	*out = r;
	return 0;
fail:
	snap_repo_close(r);
	return rc;
}

void snap_repo_close(struct snap_repo *r)
{
	if (!r)
		return;
	ZSTD_freeCCtx(r->cctx);
	ZSTD_freeDCtx(r->dctx);
	free(r->rbuf);
	sqlite3_finalize(r->q_cget);
	sqlite3_finalize(r->q_cput);
	sqlite3_finalize(r->q_known);
	sqlite3_finalize(r->q_insert);
	sqlite3_finalize(r->q_where);
	if (r->pack_fd >= 0)
		close(r->pack_fd);
	if (r->rpack_fd >= 0)
		close(r->rpack_fd);
	if (r->db)
		sqlite3_close(r->db);
	if (r->lockfd >= 0)
		close(r->lockfd);
	if (r->dirfd >= 0)
		close(r->dirfd);
	free(r->dir);
	free(r);
}

int snap_repo_begin(struct snap_repo *r)
{
	return snap_exec(r, "BEGIN IMMEDIATE");
}

int snap_repo_commit(struct snap_repo *r)
{
	if (r->pack_fd >= 0) {
		int dfd = openat(r->dirfd, "packs", O_RDONLY | O_DIRECTORY |
				 O_CLOEXEC);

		if (fdatasync(r->pack_fd) < 0 || dfd < 0 || fsync(dfd) < 0) {
			log_warn("syncing pack %u", r->pack_id);
			if (dfd >= 0)
				close(dfd);
			snap_repo_rollback(r);
			return -EIO;
		}
		close(dfd);
		close(r->pack_fd);	/* the next writes start a new one */
		r->pack_fd = -1;
	}
	return snap_exec(r, "COMMIT");
}

void snap_repo_rollback(struct snap_repo *r)
{
	(void)snap_exec(r, "ROLLBACK");	/* nothing to do if it fails */
}

/* ---- chunks ---- */

/*
 * Pack files: REPO/packs/%08u.pack, append-only, a new one per run (and
 * every PACK_MAX bytes).  A record is the chunk's hash (32 bytes), the
 * stored length (u32), the kind (1 byte: 0 raw, 1 zstd) and the stored
 * bytes; chunks(pack, off) points at the record.  The hash in the record
 * lets a damaged catalog be told from a damaged pack.
 */
#define PACK_MAX	(256u << 20)
#define REC_HDR		(SNAP_HASH_LEN + 4 + 1)

static sqlite3_stmt *prep_cached(struct snap_repo *r, sqlite3_stmt **st,
				 const char *sql)
{
	if (!*st && sqlite3_prepare_v2(r->db, sql, -1, st, NULL) != SQLITE_OK) {
		log_warnx("catalog: %s", sqlite3_errmsg(r->db));
		*st = NULL;
	}
	return *st;
}

static int chunk_known(struct snap_repo *r, const uint8_t *h)
{
	sqlite3_stmt *st = prep_cached(r, &r->q_known,
				       "SELECT 1 FROM chunks WHERE hash = ?");
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, h, SNAP_HASH_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -EIO;
}

/* Open a fresh pack for appending. */
static int pack_start(struct snap_repo *r)
{
	sqlite3_stmt *st = NULL;
	char rel[64];
	uint32_t id = 1;
	int fd;

	if (sqlite3_prepare_v2(r->db, "SELECT coalesce(max(pack), 0) FROM "
			       "chunks", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		id = (uint32_t)sqlite3_column_int64(st, 0) + 1;
	sqlite3_finalize(st);
	if (id <= r->pack_id)
		id = r->pack_id + 1;
	(void)mkdirat(r->dirfd, "packs", 0700);	/* may exist */
	for (;; id++) {
		snprintf(rel, sizeof(rel), "packs/%08u.pack", id);
		fd = openat(r->dirfd, rel, O_WRONLY | O_CREAT | O_EXCL |
			    O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		if (errno != EEXIST)
			return -errno;
	}
	if (r->pack_fd >= 0) {
		if (fdatasync(r->pack_fd) < 0)
			log_warn("fdatasync pack %u", r->pack_id);
		close(r->pack_fd);
	}
	r->pack_fd = fd;
	r->pack_id = id;
	r->pack_off = 0;
	return 0;
}

int snap_chunk_put(struct snap_repo *r, const uint8_t *data, size_t len,
		   uint8_t out[SNAP_HASH_LEN])
{
	uint8_t *cbuf = NULL;
	size_t bound, clen;
	uint32_t c32;
	sqlite3_stmt *st;
	int rc;

	snap_sha256(data, len, out);
	if ((rc = chunk_known(r, out)) != 0) {
		if (rc > 0)
			r->dedup_chunks++;
		return rc < 0 ? rc : 0;
	}
	if (r->pack_fd < 0 || r->pack_off > PACK_MAX)
		if ((rc = pack_start(r)) < 0)
			return rc;
	bound = ZSTD_compressBound(len);
	if ((cbuf = malloc(REC_HDR + bound)) == NULL)
		return -ENOMEM;
	if (!r->cctx && (r->cctx = ZSTD_createCCtx()) == NULL) {
		free(cbuf);
		return -ENOMEM;
	}
	clen = ZSTD_compressCCtx(r->cctx, cbuf + REC_HDR, bound, data, len, 3);
	if (ZSTD_isError(clen) || clen >= len) {
		cbuf[REC_HDR - 1] = 0;
		memcpy(cbuf + REC_HDR, data, len);
		clen = len;
	} else {
		cbuf[REC_HDR - 1] = 1;
	}
	memcpy(cbuf, out, SNAP_HASH_LEN);
	c32 = (uint32_t)clen;
	memcpy(cbuf + SNAP_HASH_LEN, &c32, 4);
	if ((rc = xf_write_all(r->pack_fd, cbuf, REC_HDR + clen)) < 0) {
		log_warnx("writing pack %u: %s", r->pack_id, strerror(-rc));
		goto out;
	}
	st = prep_cached(r, &r->q_insert, "INSERT INTO chunks(hash, size, "
			 "csize, pack, off) VALUES(?, ?, ?, ?, ?)");
	if (!st) {
		rc = -EIO;
		goto out;
	}
	sqlite3_bind_blob(st, 1, out, SNAP_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)len);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)clen);
	sqlite3_bind_int64(st, 4, r->pack_id);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)r->pack_off);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_reset(st);
	r->pack_off += REC_HDR + clen;
	r->new_chunks++;
	r->new_bytes += len;
	r->new_cbytes += REC_HDR + clen;
out:
	free(cbuf);
	return rc;
}

/* A read descriptor of pack id (one cached). */
static int pack_rfd(struct snap_repo *r, uint32_t id)
{
	char rel[64];

	if (r->rpack_fd >= 0 && r->rpack_id == id)
		return r->rpack_fd;
	if (r->rpack_fd >= 0)
		close(r->rpack_fd);
	r->rpack_fd = -1;
	snprintf(rel, sizeof(rel), "packs/%08u.pack", id);
	if ((r->rpack_fd = openat(r->dirfd, rel, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	r->rpack_id = id;
	return r->rpack_fd;
}

static int pread_exact(int fd, uint8_t *buf, size_t len, off_t off)
{
	size_t n = 0;

	while (n < len) {
		ssize_t g = pread(fd, buf + n, len - n, off + (off_t)n);
		if (g < 0 && errno == EINTR)
			continue;
		if (g < 0)
			return -errno;
		if (g == 0)
			return -EBADMSG;	/* pack shorter than the catalog
						 * says */
		n += (size_t)g;
	}
	return 0;
}

/* The stored record of a chunk (header checked), malloc'ed. */
int snap_chunk_raw(struct snap_repo *r, const uint8_t hash[SNAP_HASH_LEN],
		   uint8_t **rec, size_t *reclen, uint32_t *pack)
{
	sqlite3_stmt *st = prep_cached(r, &r->q_where, "SELECT pack, off, "
				       "csize FROM chunks WHERE hash = ?");
	uint64_t off, clen;
	uint32_t c32;
	uint8_t *c;
	int fd, rc;

	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, hash, SNAP_HASH_LEN, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return -ENOENT;
	}
	*pack = (uint32_t)sqlite3_column_int64(st, 0);
	off = (uint64_t)sqlite3_column_int64(st, 1);
	clen = (uint64_t)sqlite3_column_int64(st, 2);
	sqlite3_reset(st);
	if (clen > (256u << 20))
		return -EBADMSG;
	if ((fd = pack_rfd(r, *pack)) < 0)
		return fd;
	if ((c = malloc(REC_HDR + clen)) == NULL)
		return -ENOMEM;
	rc = pread_exact(fd, c, REC_HDR + clen, (off_t)off);
	if (rc == 0) {
		memcpy(&c32, c + SNAP_HASH_LEN, 4);
		if (memcmp(c, hash, SNAP_HASH_LEN) || c32 != clen)
			rc = -EBADMSG;
	}
	if (rc < 0) {
		free(c);
		return rc;
	}
	*rec = c;
	*reclen = REC_HDR + clen;
	return 0;
}

int snap_chunk_get(struct snap_repo *r, const uint8_t hash[SNAP_HASH_LEN],
		   uint8_t **data, size_t *len)
{
	uint8_t *c = NULL, *d = NULL, h[SNAP_HASH_LEN];
	unsigned long long dl;
	size_t n;
	uint32_t pack;
	int rc;

	if ((rc = snap_chunk_raw(r, hash, &c, &n, &pack)) < 0)
		return rc;
	n -= REC_HDR;
	if (c[REC_HDR - 1] == 0) {
		dl = n;
		if ((d = malloc(dl ? dl : 1)) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(d, c + REC_HDR, dl);
	} else if (c[REC_HDR - 1] == 1) {
		dl = ZSTD_getFrameContentSize(c + REC_HDR, n);
		if (dl == ZSTD_CONTENTSIZE_ERROR ||
		    dl == ZSTD_CONTENTSIZE_UNKNOWN || dl > (256u << 20)) {
			rc = -EBADMSG;
			goto out;
		}
		if ((d = malloc(dl ? dl : 1)) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		if (!r->dctx && (r->dctx = ZSTD_createDCtx()) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		if (ZSTD_decompressDCtx(r->dctx, d, dl, c + REC_HDR, n) != dl) {
			rc = -EBADMSG;
			goto out;
		}
	} else {
		rc = -EBADMSG;
		goto out;
	}
	snap_sha256(d, dl, h);
	if (memcmp(h, hash, SNAP_HASH_LEN)) {
		rc = -EBADMSG;
		goto out;
	}
	*data = d;
	*len = dl;
	d = NULL;
	rc = 0;
out:
	free(c);
	free(d);
	return rc;
}

/*
 * Garbage: chunks whose hash is not in TEMP table live go; packs that
 * held any of them are rewritten with their live chunks only; pack files
 * the catalog does not know (an interrupted run) are removed.  Runs
 * inside the caller's transaction; old packs are unlinked only after
 * the new one is synced (the caller commits right after).
 */
int snap_repo_gc(struct snap_repo *r, uint64_t *freed_chunks,
		 uint64_t *freed_bytes)
{
	sqlite3_stmt *q = NULL, *up = NULL;
	uint32_t *dead = NULL, *np;
	size_t nd = 0, cap = 0, i;
	DIR *d;
	struct dirent *de;
	int rc = 0, fd;

	*freed_chunks = *freed_bytes = 0;
	/* packs with something dead */
	if (sqlite3_prepare_v2(r->db, "SELECT pack, count(*), sum(csize) FROM "
			       "chunks WHERE hash NOT IN (SELECT hash FROM "
			       "live) GROUP BY pack", -1, &q, NULL) !=
	    SQLITE_OK)
		return -EIO;
	while (sqlite3_step(q) == SQLITE_ROW) {
		if (nd == cap) {
			cap = cap ? cap * 2 : 16;
			if ((np = realloc(dead, cap * sizeof(*np))) == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			dead = np;
		}
		dead[nd++] = (uint32_t)sqlite3_column_int64(q, 0);
		*freed_chunks += (uint64_t)sqlite3_column_int64(q, 1);
		*freed_bytes += (uint64_t)sqlite3_column_int64(q, 2);
	}
	sqlite3_finalize(q);
	q = NULL;
	if ((rc = snap_exec(r, "DELETE FROM chunks WHERE hash NOT IN (SELECT "
			    "hash FROM live)")) < 0)
		goto out;
	/* move the live chunks of those packs to a new pack */
	if (sqlite3_prepare_v2(r->db, "SELECT hash FROM chunks WHERE pack = ?",
			       -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "UPDATE chunks SET pack = ?2, off = ?3 "
			       "WHERE hash = ?1", -1, &up, NULL) != SQLITE_OK) {
		rc = -EIO;
		goto out;
	}
	for (i = 0; i < nd && rc == 0; i++) {
		sqlite3_bind_int64(q, 1, dead[i]);
		while (rc == 0 && sqlite3_step(q) == SQLITE_ROW) {
			uint8_t h[SNAP_HASH_LEN], *rec;
			size_t rl;
			uint32_t pk;

			memcpy(h, sqlite3_column_blob(q, 0), SNAP_HASH_LEN);
			if ((rc = snap_chunk_raw(r, h, &rec, &rl, &pk)) < 0) {
				char hex[2 * SNAP_HASH_LEN + 1];

				snap_hex(h, hex);
				log_warnx("gc: chunk %s unreadable (%s): "
					  "keeping pack %u", hex,
					  strerror(-rc), dead[i]);
				dead[i] = 0;
				rc = 0;
				break;
			}
			if (r->pack_fd < 0 || r->pack_off > PACK_MAX)
				rc = pack_start(r);
			if (rc == 0)
				rc = xf_write_all(r->pack_fd, rec, rl);
			free(rec);
			if (rc < 0)
				break;
			sqlite3_bind_blob(up, 1, h, SNAP_HASH_LEN,
					  SQLITE_TRANSIENT);
			sqlite3_bind_int64(up, 2, r->pack_id);
			sqlite3_bind_int64(up, 3, (sqlite3_int64)r->pack_off);
			if (sqlite3_step(up) != SQLITE_DONE)
				rc = -EIO;
			sqlite3_reset(up);
			r->pack_off += rl;
		}
		sqlite3_reset(q);
	}
	if (rc < 0)
		goto out;
	if (r->pack_fd >= 0 && fdatasync(r->pack_fd) < 0) {
		rc = -errno;
		goto out;
	}
	/* unlink packs the catalog no longer names (after the commit a
	 * crash leaves only orphans, which the next gc removes) */
	sqlite3_finalize(q);
	q = NULL;
	if (sqlite3_prepare_v2(r->db, "SELECT 1 FROM chunks WHERE pack = ? "
			       "LIMIT 1", -1, &q, NULL) != SQLITE_OK) {
		rc = -EIO;
		goto out;
	}
	if ((fd = openat(r->dirfd, "packs", O_RDONLY | O_DIRECTORY |
			 O_CLOEXEC)) < 0)
		goto out;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		goto out;
	}
	if (r->rpack_fd >= 0)
		close(r->rpack_fd);
	r->rpack_fd = -1;
	while ((de = readdir(d)) != NULL) {
		unsigned id;
		char tail;

		if (sscanf(de->d_name, "%8u.pac%c", &id, &tail) != 2 ||
		    tail != 'k' || id == r->pack_id)
			continue;
		sqlite3_bind_int64(q, 1, id);
		if (sqlite3_step(q) != SQLITE_ROW)
			(void)unlinkat(dirfd(d), de->d_name, 0);
		sqlite3_reset(q);
	}
	closedir(d);
	/* reflink clones left by a take that crashed (we hold the lock:
	 * no take is running) */
	if ((fd = openat(r->dirfd, "staging", O_RDONLY | O_DIRECTORY |
			 O_CLOEXEC)) >= 0) {
		if ((d = fdopendir(fd)) == NULL) {
			close(fd);
			goto out;
		}
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				(void)unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
out:
	sqlite3_finalize(q);
	sqlite3_finalize(up);
	free(dead);
	return rc;
}

/* ---- contents ---- */

int snap_extents_add(struct snap_extents *e, uint64_t off, uint32_t len,
		     const uint8_t hash[SNAP_HASH_LEN])
{
	uint8_t *p;

	if (e->n == e->cap) {
		size_t nc = e->cap ? e->cap * 2 : 16;
		if ((p = realloc(e->buf, nc * SNAP_EXT_REC)) == NULL)
			return -ENOMEM;
		e->buf = p;
		e->cap = nc;
	}
	p = e->buf + e->n * SNAP_EXT_REC;
	memcpy(p, &off, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, hash, SNAP_HASH_LEN);
	e->n++;
	return 0;
}

int snap_content_id(struct snap_repo *r, const struct snap_extents *e,
		    uint64_t size, int64_t *id)
{
	uint8_t h[SNAP_HASH_LEN], *tmp;
	size_t blen = e->n * SNAP_EXT_REC;
	sqlite3_stmt *st;
	int rc = -EIO;

	if ((tmp = malloc(blen + 8)) == NULL)
		return -ENOMEM;
	memcpy(tmp, &size, 8);
	if (blen)
		memcpy(tmp + 8, e->buf, blen);
	snap_sha256(tmp, blen + 8, h);
	free(tmp);
	st = prep_cached(r, &r->q_cget, "SELECT id FROM contents WHERE "
			 "hash = ?");
	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, h, SNAP_HASH_LEN, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	st = prep_cached(r, &r->q_cput, "INSERT INTO contents(hash, size, "
			 "extents) VALUES(?, ?, ?)");
	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, h, SNAP_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	sqlite3_bind_blob(st, 3, blen ? e->buf : (const void *)"", (int)blen,
			  SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE) {
		*id = sqlite3_last_insert_rowid(r->db);
		rc = 0;
	}
	sqlite3_reset(st);
	return rc;
}

/* Chunk the data region [start, end) into e. */
static int store_region(struct snap_repo *r, int fd, uint8_t *buf,
			uint64_t start, uint64_t end, struct snap_extents *e,
			uint64_t *stored)
{
	uint64_t pos = start;	/* file offset of buf[0] */
	size_t have = 0, cut;
	uint8_t h[SNAP_HASH_LEN];
	int rc;

	while (pos < end) {
		size_t want = r->ck.max - have;
		ssize_t g;

		if (want > end - pos - have)
			want = (size_t)(end - pos - have);
		g = want ? xf_pread_full(fd, buf + have, want,
				      (off_t)(pos + have)) : 0;
		if (g < 0)
			return (int)g;
		have += (size_t)g;
		if (have == 0)
			break;	/* file shrank: stop at what exists */
		cut = snap_chunk_cut(&r->ck, buf, have);
		if ((rc = snap_chunk_put(r, buf, cut, h)) < 0)
			return rc;
		if ((rc = snap_extents_add(e, pos, (uint32_t)cut, h)) < 0)
			return rc;
		*stored += cut;
		memmove(buf, buf + cut, have - cut);
		have -= cut;
		pos += cut;
		if ((size_t)g < want && have == 0)
			break;
	}
	return 0;
}

int snap_store_fd(struct snap_repo *r, int fd, uint64_t size,
		  int64_t *content_id, uint64_t *stored)
{
	struct snap_extents e = { 0 };
	uint8_t *buf;
	off_t d, h;
	int rc = 0;

	if (!r->rbuf && (r->rbuf = malloc(r->ck.max)) == NULL)
		return -ENOMEM;
	buf = r->rbuf;
	*stored = 0;
	d = 0;
	while ((uint64_t)d < size) {
		d = lseek(fd, d, SEEK_DATA);
		if (d < 0) {
			if (errno == ENXIO)
				break;		/* only a hole left */
			d = 0;			/* no SEEK_DATA: one region */
			h = (off_t)size;
		} else if ((h = lseek(fd, d, SEEK_HOLE)) < 0) {
			h = (off_t)size;
		}
		if ((uint64_t)h > size)
			h = (off_t)size;
		if ((rc = store_region(r, fd, buf, (uint64_t)d, (uint64_t)h,
				       &e, stored)) < 0)
			goto out;
		d = h;
	}
	rc = snap_content_id(r, &e, size, content_id);
out:
	free(e.buf);
	return rc;
}

int snap_content_write(struct snap_repo *r, int64_t id, int fd)
{
	sqlite3_stmt *st = NULL;
	const uint8_t *x;
	uint64_t size, off;
	uint32_t len;
	size_t n, i;
	int rc = -EIO;

	if (sqlite3_prepare_v2(r->db, "SELECT size, extents FROM contents "
			       "WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	size = (uint64_t)sqlite3_column_int64(st, 0);
	x = sqlite3_column_blob(st, 1);
	n = (size_t)sqlite3_column_bytes(st, 1) / SNAP_EXT_REC;
	for (i = 0; i < n; i++) {
		const uint8_t *p = x + i * SNAP_EXT_REC;
		uint8_t *d;
		size_t dl, w = 0;

		memcpy(&off, p, 8);
		memcpy(&len, p + 8, 4);
		if ((rc = snap_chunk_get(r, p + 12, &d, &dl)) < 0) {
			char hex[2 * SNAP_HASH_LEN + 1];

			snap_hex(p + 12, hex);
			log_warnx("chunk %s: %s", hex, rc == -EBADMSG ?
				  "corrupt" : strerror(-rc));
			goto out;
		}
		if (dl != len) {
			free(d);
			rc = -EBADMSG;
			goto out;
		}
		while (w < dl) {
			ssize_t g = pwrite(fd, d + w, dl - w,
					   (off_t)(off + w));
			if (g < 0 && errno == EINTR)
				continue;
			if (g < 0) {
				rc = -errno;
				free(d);
				goto out;
			}
			w += (size_t)g;
		}
		free(d);
	}
	rc = ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* ---- xattrs ---- */


static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int xa_fd = -1;

static ssize_t xa_flist(const char *path, char *buf, size_t len)
{
	(void)path;
	return flistxattr(xa_fd, buf, len);
}

static ssize_t xa_fget(const char *path, const char *name, void *buf,
		       size_t len)
{
	(void)path;
	return fgetxattr(xa_fd, name, buf, len);
}

int snap_xattrs_read(const char *path, int follow, uint8_t **blob,
		     size_t *blen)
{
	ssize_t (*list)(const char *, char *, size_t) =
		follow == 2 ? xa_flist : follow ? listxattr : llistxattr;
	ssize_t (*get)(const char *, const char *, void *, size_t) =
		follow == 2 ? xa_fget : follow ? getxattr : lgetxattr;
	char *names = NULL, **v = NULL;
	uint8_t *out = NULL, *p;
	size_t nn = 0, i, olen = 0, cap = 0;
	ssize_t len;
	int rc = 0;

	*blob = NULL;
	*blen = 0;
	len = list(path, NULL, 0);
	if (len < 0)
		return errno == ENOTSUP ? 0 : -errno;
	if (len == 0)
		return 0;
	if ((names = malloc((size_t)len + 1)) == NULL)
		return -ENOMEM;
	len = list(path, names, (size_t)len);
	if (len < 0) {
		rc = -errno;
		goto out;
	}
	names[len] = '\0';
	for (i = 0; i < (size_t)len; i += strlen(names + i) + 1)
		nn++;
	if ((v = calloc(nn ? nn : 1, sizeof(*v))) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	nn = 0;
	for (i = 0; i < (size_t)len; i += strlen(names + i) + 1)
		if (names[i])
			v[nn++] = names + i;
	qsort(v, nn, sizeof(*v), name_cmp);
	for (i = 0; i < nn; i++) {
		size_t nl = strlen(v[i]);
		ssize_t vl = get(path, v[i], NULL, 0);
		uint16_t n16 = (uint16_t)nl;
		uint32_t v32;

		if (vl < 0) {
			if (errno == ENODATA)
				continue;	/* removed meanwhile */
			rc = -errno;
			goto out;
		}
		if (olen + 6 + nl + (size_t)vl > cap) {
			cap = (olen + 6 + nl + (size_t)vl) * 2;
			if ((p = realloc(out, cap)) == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			out = p;
		}
		p = out + olen;
		vl = get(path, v[i], p + 6 + nl, (size_t)vl);
		if (vl < 0) {
			rc = -errno;
			goto out;
		}
		v32 = (uint32_t)vl;
		memcpy(p, &n16, 2);
		memcpy(p + 2, &v32, 4);
		memcpy(p + 6, v[i], nl);
		olen += 6 + nl + (size_t)vl;
	}
	*blob = out;
	*blen = olen;
	out = NULL;
out:
	free(out);
	free(v);
	free(names);
	return rc;
}

int snap_xattrs_read_fd(int fd, uint8_t **blob, size_t *blen)
{
	int rc;

	xa_fd = fd;
	rc = snap_xattrs_read(NULL, 2, blob, blen);
	xa_fd = -1;
	return rc;
}

int snap_xattrs_apply(const char *path, const uint8_t *blob, size_t len)
{
	size_t pos = 0;
	char name[XATTR_NAME_MAX + 1];
	int rc = 0;

	while (pos + 6 <= len) {
		uint16_t nl;
		uint32_t vl;

		memcpy(&nl, blob + pos, 2);
		memcpy(&vl, blob + pos + 2, 4);
		if (nl > XATTR_NAME_MAX || pos + 6 + nl + vl > len)
			return -EBADMSG;
		memcpy(name, blob + pos + 6, nl);
		name[nl] = '\0';
		if (lsetxattr(path, name, blob + pos + 6 + nl, vl, 0) < 0) {
			rc = -errno;
			log_warn("setxattr %s on %s", name, path);
		}
		pos += 6 + nl + vl;
	}
	return rc;
}
