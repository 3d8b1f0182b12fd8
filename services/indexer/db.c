/*
 * Index database: schema, open/check/rebuild, and the write operations the
 * plugin applies for crawled entries and stream events.  Schema and why
 * it looks like this: docs/index.md.
 *
 * Concurrency: every function here is called with idx->lock held (the
 * plugin's event thread and its worker thread share one connection).
 * Trust: paths are guest-chosen bytes, bound as BLOBs, never spliced into
 * SQL text.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "index_i.h"

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value)"
	" WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS exports("
	" tag TEXT PRIMARY KEY, hostpath TEXT, access TEXT, vms TEXT,"
	" gen INTEGER NOT NULL DEFAULT 0,"
	" state TEXT NOT NULL DEFAULT 'new',"
	" crawl_start INTEGER, crawl_end INTEGER,"
	" crawled INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS files("
	" id INTEGER PRIMARY KEY, export TEXT NOT NULL, path BLOB NOT NULL,"
	" type TEXT NOT NULL, size INTEGER, mode INTEGER, uid INTEGER,"
	" gid INTEGER, mtime INTEGER, mtime_ns INTEGER, dev INTEGER,"
	" ino INTEGER, hash TEXT, text_state INTEGER NOT NULL DEFAULT 0,"
	" seen INTEGER NOT NULL DEFAULT 0, UNIQUE(export, path));"
	"CREATE INDEX IF NOT EXISTS files_pending ON files(text_state)"
	" WHERE text_state = 1;"
	"CREATE TABLE IF NOT EXISTS crawlq(export TEXT NOT NULL,"
	" path BLOB NOT NULL, PRIMARY KEY(export, path)) WITHOUT ROWID;"
	"CREATE VIRTUAL TABLE IF NOT EXISTS fnames USING"
	" fts5(path, tokenize='trigram');"
	"CREATE VIRTUAL TABLE IF NOT EXISTS ftext USING"
	" fts5(body, tokenize='unicode61 remove_diacritics 2');"
	"INSERT OR IGNORE INTO meta VALUES('schema', 1);";

int idx_err(struct idx *idx, int rc, const char *what)
{
	int prim = rc & 0xff;

	if (prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB) {
		if (!idx->corrupt)
			idx->log(3, "index database corrupt (%s): %s", what,
				 sqlite3_errstr(rc));
		idx->corrupt = 1;
		return -EIO;
	}
	idx->log(3, "index: %s: %s", what,
		 idx->db ? sqlite3_errmsg(idx->db) : sqlite3_errstr(rc));
	switch (prim) {
	case SQLITE_NOMEM: return -ENOMEM;
	case SQLITE_FULL: return -ENOSPC;
	case SQLITE_BUSY: case SQLITE_LOCKED: return -EAGAIN;
	case SQLITE_READONLY: case SQLITE_PERM: return -EACCES;
	default: return -EIO;
	}
}

static void finalize_all(struct idx *idx)
{
	sqlite3_stmt **s[] = {
		&idx->st_find, &idx->st_insert, &idx->st_update,
		&idx->st_fts_ins, &idx->st_fts_upd, &idx->st_del,
		&idx->st_fts_del, &idx->st_txt_del, &idx->st_q_add,
		&idx->st_q_pop, &idx->st_q_del, &idx->st_pending,
		&idx->st_txt_ins, &idx->st_text_set,
	};

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		sqlite3_finalize(*s[i]);
		*s[i] = NULL;
	}
}

static int prepare(struct idx *idx)
{
	struct { sqlite3_stmt **st; const char *sql; } t[] = {
		{ &idx->st_find, "SELECT id, size, mtime, mtime_ns, type,"
		  " text_state FROM files WHERE export = ?1 AND path = ?2" },
		{ &idx->st_insert, "INSERT INTO files(export, path, type,"
		  " size, mode, uid, gid, mtime, mtime_ns, dev, ino,"
		  " text_state, seen) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
		  " ?9, ?10, ?11, ?12, ?13)" },
		{ &idx->st_update, "UPDATE files SET type = ?2, size = ?3,"
		  " mode = ?4, uid = ?5, gid = ?6, mtime = ?7, mtime_ns = ?8,"
		  " dev = ?9, ino = ?10, text_state = ?11, seen = ?12,"
		  " hash = CASE WHEN ?11 IN (2, 3) THEN hash END"
		  " WHERE id = ?1" },
		{ &idx->st_fts_ins, "INSERT INTO fnames(rowid, path)"
		  " VALUES(?1, ?2)" },
		{ &idx->st_fts_upd, "UPDATE fnames SET path = ?2"
		  " WHERE rowid = ?1" },
		{ &idx->st_del, "DELETE FROM files WHERE id = ?1" },
		{ &idx->st_fts_del, "DELETE FROM fnames WHERE rowid = ?1" },
		{ &idx->st_txt_del, "DELETE FROM ftext WHERE rowid = ?1" },
		{ &idx->st_q_add, "INSERT OR IGNORE INTO crawlq(export, path)"
		  " VALUES(?1, ?2)" },
		{ &idx->st_q_pop, "SELECT export, path FROM crawlq"
		  " WHERE ?1 = '' OR export = ?1 LIMIT 1" },
		{ &idx->st_q_del, "DELETE FROM crawlq WHERE export = ?1"
		  " AND path = ?2" },
		{ &idx->st_pending, "SELECT id, export, path, size FROM files"
		  " WHERE text_state = 1 LIMIT ?1" },
		{ &idx->st_txt_ins, "INSERT INTO ftext(rowid, body)"
		  " VALUES(?1, ?2)" },
		{ &idx->st_text_set, "UPDATE files SET text_state = ?2,"
		  " hash = ?3 WHERE id = ?1" },
	};
	int rc;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		rc = sqlite3_prepare_v3(idx->db, t[i].sql, -1,
					SQLITE_PREPARE_PERSISTENT, t[i].st,
					NULL);
		if (rc != SQLITE_OK)
			return idx_err(idx, rc, "prepare");
	}
	return 0;
}

/* Open, configure and check; 0, -EIO for a damaged database, -errno. */
static int try_open(struct idx *idx, const char *path)
{
	sqlite3_stmt *st = NULL;
	char *msg = NULL;
	int rc, ok = 0;

	rc = sqlite3_open_v2(path, &idx->db, SQLITE_OPEN_READWRITE |
			     SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		goto bad;
	sqlite3_busy_timeout(idx->db, 5000);
	rc = sqlite3_exec(idx->db, "PRAGMA journal_mode = WAL;"
			  "PRAGMA synchronous = NORMAL;"
			  "PRAGMA cache_size = -32768;"
			  "PRAGMA temp_store = MEMORY;", NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		goto bad;
	rc = sqlite3_prepare_v2(idx->db, "PRAGMA quick_check", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto bad;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(st, 0);
		if (r && !strcmp(r, "ok"))
			ok = 1;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE || !ok) {
		rc = SQLITE_CORRUPT;
		goto bad;
	}
	rc = sqlite3_exec(idx->db, schema, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		goto bad;
	if ((rc = prepare(idx)) < 0) {
		finalize_all(idx);
		sqlite3_close(idx->db);
		idx->db = NULL;
		return rc;
	}
	return 0;
bad:
	idx->log(4, "index database %s: %s", path,
		 msg ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
	sqlite3_finalize(st);
	finalize_all(idx);
	sqlite3_close(idx->db);
	idx->db = NULL;
	rc &= 0xff;
	if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB || rc == SQLITE_IOERR)
		return -EIO;
	return rc == SQLITE_CANTOPEN ? -ENOENT : -EIO;
}

/* Move path (and its -wal/-shm) aside as path.corrupt. */
static void move_aside(const char *path)
{
	char a[4096], b[4096];
	const char *sfx[] = { "", "-wal", "-shm" };

	for (size_t i = 0; i < 3; i++) {
		snprintf(a, sizeof(a), "%s%s", path, sfx[i]);
		snprintf(b, sizeof(b), "%s.corrupt%s", path, sfx[i]);
		if (rename(a, b) < 0 && errno != ENOENT)
			(void)unlink(a);	/* best effort: start clean */
	}
}

int idx_open(struct idx *idx, const char *path, int *rebuilt)
{
	int r;

	*rebuilt = 0;
	if (!(idx->dbpath = strdup(path)))
		return -ENOMEM;
	r = try_open(idx, path);
	if (r == -EIO) {
		idx->log(4, "index database %s is damaged: moved to "
			 "%s.corrupt, rebuilding it by a full crawl", path,
			 path);
		move_aside(path);
		*rebuilt = 1;
		r = try_open(idx, path);
	}
	return r;
}

void idx_close(struct idx *idx)
{
	finalize_all(idx);
	if (idx->db)
		sqlite3_close(idx->db);
	idx->db = NULL;
	free(idx->dbpath);
	idx->dbpath = NULL;
}

int idx_rebuild(struct idx *idx)
{
	char *p = idx->dbpath;
	int rb, r;

	if (!p)
		return -ENOMEM;	/* idx_open could not even keep the path */
	idx->dbpath = NULL;
	finalize_all(idx);
	sqlite3_close(idx->db);
	idx->db = NULL;
	move_aside(p);
	idx->corrupt = 0;
	r = idx_open(idx, p, &rb);
	free(p);
	return r;
}

static int exec(struct idx *idx, const char *sql)
{
	int rc = sqlite3_exec(idx->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : idx_err(idx, rc, sql);
}

int idx_begin(struct idx *idx) { return exec(idx, "BEGIN IMMEDIATE"); }
int idx_commit(struct idx *idx) { return exec(idx, "COMMIT"); }

void idx_rollback(struct idx *idx)
{
	if (!sqlite3_get_autocommit(idx->db))
		(void)sqlite3_exec(idx->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Run a one-shot statement with text binds (NULL ends the list). */
static int run(struct idx *idx, const char *sql, int64_t *out, ...)
	__attribute__((sentinel));
static int run(struct idx *idx, const char *sql, int64_t *out, ...)
{
	sqlite3_stmt *st;
	const char *a;
	va_list ap;
	int rc, i = 1;

	rc = sqlite3_prepare_v2(idx->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return idx_err(idx, rc, sql);
	va_start(ap, out);
	while ((a = va_arg(ap, const char *)) != NULL)
		sqlite3_bind_text(st, i++, a, -1, SQLITE_STATIC);
	va_end(ap);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && out)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : idx_err(idx, rc, sql);
}

int idx_export_put(struct idx *idx, const char *tag, const char *path,
		   const char *access, const char *vms)
{
	int r;

	r = run(idx, "INSERT INTO exports(tag, hostpath, access, vms)"
		" VALUES(?1, ?2, ?3, ?4) ON CONFLICT(tag) DO UPDATE SET"
		" hostpath = ?2, access = ?3, vms = ?4", NULL, tag, path,
		access, vms, (char *)NULL);
	return r < 0 ? r : 0;
}

int idx_export_state(struct idx *idx, const char *tag, char *buf,
		     size_t len)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(idx->db, "SELECT state FROM exports"
				" WHERE tag = ?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return idx_err(idx, rc, "export state");
	sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(buf, len, "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : idx_err(idx, rc, "export state");
}

int64_t idx_export_gen(struct idx *idx, const char *tag)
{
	int64_t g = 0;

	if (run(idx, "SELECT gen FROM exports WHERE tag = ?1", &g, tag,
		(char *)NULL) <= 0)
		return 0;
	return g;
}

int idx_crawl_start(struct idx *idx, const char *tag)
{
	char now[32];
	int r;

	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	r = run(idx, "INSERT INTO exports(tag) VALUES(?1)"
		" ON CONFLICT(tag) DO NOTHING", NULL, tag, (char *)NULL);
	if (r >= 0)
		r = run(idx, "UPDATE exports SET gen = gen + 1,"
			" state = 'crawling', crawl_start = ?2, crawled = 0"
			" WHERE tag = ?1", NULL, tag, now, (char *)NULL);
	if (r >= 0)
		r = run(idx, "DELETE FROM crawlq WHERE export = ?1", NULL,
			tag, (char *)NULL);
	if (r >= 0)
		r = idx_queue_add(idx, tag, "/", 1);
	return r < 0 ? r : 0;
}

int idx_crawl_finish(struct idx *idx, const char *tag, uint64_t *removed)
{
	char now[32];
	int64_t gen = idx_export_gen(idx, tag);
	int r;

	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	*removed = 0;
	/* rows neither listed by this crawl nor touched by an event since
	 * it started no longer exist */
	{
		sqlite3_stmt *st;
		const char *sql[] = {
			"DELETE FROM fnames WHERE rowid IN (SELECT id FROM"
			" files WHERE export = ?1 AND seen < ?2)",
			"DELETE FROM ftext WHERE rowid IN (SELECT id FROM"
			" files WHERE export = ?1 AND seen < ?2)",
			"DELETE FROM files WHERE export = ?1 AND seen < ?2",
		};
		for (size_t i = 0; i < 3; i++) {
			int rc = sqlite3_prepare_v2(idx->db, sql[i], -1, &st,
						    NULL);
			if (rc != SQLITE_OK)
				return idx_err(idx, rc, "crawl finish");
			sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, gen);
			rc = sqlite3_step(st);
			sqlite3_finalize(st);
			if (rc != SQLITE_DONE)
				return idx_err(idx, rc, "crawl finish");
			if (i == 2)
				*removed = (uint64_t)sqlite3_changes(idx->db);
		}
	}
	r = run(idx, "UPDATE exports SET state = 'done', crawl_end = ?2"
		" WHERE tag = ?1", NULL, tag, now, (char *)NULL);
	return r < 0 ? r : 0;
}

int idx_export_add_crawled(struct idx *idx, const char *tag, uint64_t n)
{
	char v[32];
	int r;

	snprintf(v, sizeof(v), "%llu", (unsigned long long)n);
	r = run(idx, "UPDATE exports SET crawled = crawled + ?2"
		" WHERE tag = ?1", NULL, tag, v, (char *)NULL);
	return r < 0 ? r : 0;
}

int idx_meta_set(struct idx *idx, const char *key, const char *val)
{
	int r = run(idx, "INSERT OR REPLACE INTO meta VALUES(?1, ?2)", NULL,
		    key, val, (char *)NULL);

	return r < 0 ? r : 0;
}

static int step_done(struct idx *idx, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : idx_err(idx, rc, what);
}

int idx_put(struct idx *idx, const char *tag, const char *path, size_t plen,
	    const struct idx_meta *m, int64_t gen, int content_changed)
{
	sqlite3_stmt *st = idx->st_find;
	char type[2] = { m->type, 0 };
	int64_t id = -1, osize = 0, omtime = 0, omns = 0;
	int ostate = 0, state = IDX_TEXT_NONE, rc, r;
	char otype = 0;

	sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, path, (int)plen, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		osize = sqlite3_column_int64(st, 1);
		omtime = sqlite3_column_int64(st, 2);
		omns = sqlite3_column_int64(st, 3);
		otype = (char)*(const char *)sqlite3_column_blob(st, 4);
		ostate = sqlite3_column_int(st, 5);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return idx_err(idx, rc, "find");
	if (m->type == 'f' && m->size > 0 && m->size <= idx->max_text) {
		state = IDX_TEXT_PENDING;
		/* unchanged since it was extracted: keep the text */
		if (id >= 0 && !content_changed && otype == 'f' &&
		    (ostate == IDX_TEXT_DONE || ostate == IDX_TEXT_BINARY) &&
		    osize == (int64_t)m->size && omtime == m->mtime &&
		    omns == (int64_t)m->mtime_nsec)
			state = ostate;
	}
	if (id >= 0 && ostate == IDX_TEXT_DONE && state != IDX_TEXT_DONE) {
		sqlite3_bind_int64(idx->st_txt_del, 1, id);
		if ((r = step_done(idx, idx->st_txt_del, "text del")) < 0)
			return r;
	}
	if (id < 0) {
		st = idx->st_insert;
		sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, path, (int)plen, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, type, 1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (int64_t)m->size);
		sqlite3_bind_int64(st, 5, m->mode);
		sqlite3_bind_int64(st, 6, m->uid);
		sqlite3_bind_int64(st, 7, m->gid);
		sqlite3_bind_int64(st, 8, m->mtime);
		sqlite3_bind_int64(st, 9, m->mtime_nsec);
		sqlite3_bind_int64(st, 10, (int64_t)m->dev);
		sqlite3_bind_int64(st, 11, (int64_t)m->ino);
		sqlite3_bind_int(st, 12, state);
		sqlite3_bind_int64(st, 13, gen);
		if ((r = step_done(idx, st, "insert")) < 0)
			return r;
		id = sqlite3_last_insert_rowid(idx->db);
		st = idx->st_fts_ins;
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, path, (int)plen, SQLITE_STATIC);
		return step_done(idx, st, "fts insert");
	}
	st = idx->st_update;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, type, 1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)m->size);
	sqlite3_bind_int64(st, 4, m->mode);
	sqlite3_bind_int64(st, 5, m->uid);
	sqlite3_bind_int64(st, 6, m->gid);
	sqlite3_bind_int64(st, 7, m->mtime);
	sqlite3_bind_int64(st, 8, m->mtime_nsec);
	sqlite3_bind_int64(st, 9, (int64_t)m->dev);
	sqlite3_bind_int64(st, 10, (int64_t)m->ino);
	sqlite3_bind_int(st, 11, state);
	sqlite3_bind_int64(st, 12, gen);
	return step_done(idx, st, "update");
}

/* Bounds of the subtree below p: lo = "p/", hi = "p0" ('0' follows '/'),
 * as BLOBs; for p = "/" everything: lo = "/", hi = "0". */
static int subtree_bounds(const char *p, char **lo, char **hi, size_t *n)
{
	size_t l = strlen(p);

	if (l == 1 && p[0] == '/')
		l = 0;
	if (!(*lo = malloc(l + 2)) || !(*hi = malloc(l + 2))) {
		free(*lo);
		*lo = NULL;
		return -ENOMEM;
	}
	memcpy(*lo, p, l);
	memcpy(*hi, p, l);
	(*lo)[l] = '/';
	(*hi)[l] = '0';
	*n = l + 1;
	return 0;
}

/* Run sql with ?1 = tag, ?2 = lo, ?3 = hi (BLOBs), more text binds. */
static int run_sub(struct idx *idx, const char *sql, const char *tag,
		   const char *lo, const char *hi, size_t n, const char *a4,
		   size_t a4len, int64_t a5)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(idx->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return idx_err(idx, rc, sql);
	sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, lo, (int)n, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, hi, (int)n, SQLITE_STATIC);
	if (a4)
		sqlite3_bind_blob(st, 4, a4, (int)a4len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, a5);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return idx_err(idx, rc, sql);
	return sqlite3_changes(idx->db);
}

/* Delete one row by path; 1 if it existed. */
static int del_one(struct idx *idx, const char *tag, const char *path,
		   size_t plen)
{
	sqlite3_stmt *st = idx->st_find;
	int64_t id;
	int rc, r;

	sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, path, (int)plen, SQLITE_STATIC);
	rc = sqlite3_step(st);
	id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? 0 : idx_err(idx, rc, "find");
	sqlite3_bind_int64(idx->st_fts_del, 1, id);
	if ((r = step_done(idx, idx->st_fts_del, "fts del")) < 0)
		return r;
	sqlite3_bind_int64(idx->st_txt_del, 1, id);
	if ((r = step_done(idx, idx->st_txt_del, "text del")) < 0)
		return r;
	sqlite3_bind_int64(idx->st_del, 1, id);
	if ((r = step_done(idx, idx->st_del, "del")) < 0)
		return r;
	return 1;
}

int idx_del(struct idx *idx, const char *tag, const char *path,
	    size_t plen, uint64_t *n)
{
	char *lo, *hi;
	size_t bn;
	int r;

	*n = 0;
	if (plen != 1 || path[0] != '/') {
		if ((r = del_one(idx, tag, path, plen)) < 0)
			return r;
		*n += (uint64_t)r;
	}
	if ((r = subtree_bounds(path, &lo, &hi, &bn)) < 0)
		return r;
	r = run_sub(idx, "DELETE FROM fnames WHERE rowid IN (SELECT id FROM"
		    " files WHERE export = ?1 AND path >= ?2 AND path < ?3)",
		    tag, lo, hi, bn, NULL, 0, 0);
	if (r >= 0)
		r = run_sub(idx, "DELETE FROM ftext WHERE rowid IN (SELECT id"
			    " FROM files WHERE export = ?1 AND path >= ?2 AND"
			    " path < ?3)", tag, lo, hi, bn, NULL, 0, 0);
	if (r >= 0) {
		r = run_sub(idx, "DELETE FROM files WHERE export = ?1 AND"
			    " path >= ?2 AND path < ?3", tag, lo, hi, bn,
			    NULL, 0, 0);
		if (r > 0)
			*n += (uint64_t)r;
	}
	if (r >= 0)
		r = run_sub(idx, "DELETE FROM crawlq WHERE export = ?1 AND"
			    " path >= ?2 AND path < ?3", tag, lo, hi, bn,
			    NULL, 0, 0);
	free(lo);
	free(hi);
	return r < 0 ? r : 0;
}

/* Move the row at old to new (no subtree); 1 moved, 0 absent. */
static int move_one(struct idx *idx, const char *tag, const char *old,
		    const char *new)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(idx->db, "UPDATE files SET path = ?3"
				" WHERE export = ?1 AND path = ?2"
				" RETURNING id", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return idx_err(idx, rc, "move");
	sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, old, (int)strlen(old), SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, new, (int)strlen(new), SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		int r;

		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return idx_err(idx, rc, "move");
		sqlite3_bind_int64(idx->st_fts_upd, 1, id);
		sqlite3_bind_text(idx->st_fts_upd, 2, new, -1, SQLITE_STATIC);
		if ((r = step_done(idx, idx->st_fts_upd, "fts move")) < 0)
			return r;
		return 1;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : idx_err(idx, rc, "move");
}

/* Re-prefix every row (and queued dir) under old/ to new/. */
static int move_sub(struct idx *idx, const char *tag, const char *old,
		    const char *new)
{
	char *lo, *hi, *nlo, *nhi;
	size_t n, nn;
	int r;

	if ((r = subtree_bounds(old, &lo, &hi, &n)) < 0)
		return r;
	if ((r = subtree_bounds(new, &nlo, &nhi, &nn)) < 0) {
		free(lo);
		free(hi);
		return r;
	}
	/* ?4 = new prefix with its '/', ?5 = bytes of the old prefix */
	r = run_sub(idx, "UPDATE files SET path = CAST(?4 || substr(path,"
		    " ?5 + 1) AS BLOB) WHERE export = ?1 AND path >= ?2 AND"
		    " path < ?3", tag, lo, hi, n, nlo, nn, (int64_t)n);
	if (r > 0)
		r = run_sub(idx, "UPDATE fnames SET path = (SELECT f.path FROM"
			    " files f WHERE f.id = fnames.rowid) WHERE rowid"
			    " IN (SELECT id FROM files WHERE export = ?1 AND"
			    " path >= ?2 AND path < ?3)", tag, nlo, nhi, nn,
			    NULL, 0, 0);
	if (r >= 0)
		r = run_sub(idx, "UPDATE OR REPLACE crawlq SET path ="
			    " CAST(?4 || substr(path, ?5 + 1) AS BLOB) WHERE"
			    " export = ?1 AND path >= ?2 AND path < ?3", tag,
			    lo, hi, n, nlo, nn, (int64_t)n);
	free(lo);
	free(hi);
	free(nlo);
	free(nhi);
	return r < 0 ? r : 0;
}

static int move_q(struct idx *idx, const char *tag, const char *old,
		  const char *new)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(idx->db, "UPDATE OR REPLACE crawlq SET"
				" path = ?3 WHERE export = ?1 AND path = ?2",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return idx_err(idx, rc, "queue move");
	sqlite3_bind_text(st, 1, tag, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, old, (int)strlen(old), SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, new, (int)strlen(new), SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : idx_err(idx, rc, "queue move");
}

int idx_rename(struct idx *idx, const char *tag, const char *old,
	       const char *new, int *moved)
{
	uint64_t n;
	int r;

	*moved = 0;
	if (!strcmp(old, new))
		return 0;
	/* whatever was at the target is replaced */
	if ((r = idx_del(idx, tag, new, strlen(new), &n)) < 0)
		return r;
	if ((r = move_one(idx, tag, old, new)) < 0)
		return r;
	*moved = r;
	if ((r = move_sub(idx, tag, old, new)) < 0)
		return r;
	return move_q(idx, tag, old, new);
}

int idx_exchange(struct idx *idx, const char *tag, const char *a,
		 const char *b)
{
	static const char tmp[] = "/\x01xenfs-index-exchange";
	int m, r;

	if ((r = idx_rename(idx, tag, a, tmp, &m)) < 0 ||
	    (r = idx_rename(idx, tag, b, a, &m)) < 0 ||
	    (r = idx_rename(idx, tag, tmp, b, &m)) < 0)
		return r;
	return 0;
}

int idx_queue_add(struct idx *idx, const char *tag, const char *path,
		  size_t plen)
{
	sqlite3_bind_text(idx->st_q_add, 1, tag, -1, SQLITE_STATIC);
	sqlite3_bind_blob(idx->st_q_add, 2, path, (int)plen, SQLITE_STATIC);
	return step_done(idx, idx->st_q_add, "queue add");
}

int idx_queue_pop(struct idx *idx, char *tag, size_t taglen, char *path,
		  size_t pathlen)
{
	sqlite3_stmt *st = idx->st_q_pop;
	int rc, n;

	sqlite3_bind_text(st, 1, tag, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(tag, taglen, "%s", sqlite3_column_text(st, 0));
		n = sqlite3_column_bytes(st, 1);
		if ((size_t)n >= pathlen)
			n = (int)pathlen - 1;
		memcpy(path, sqlite3_column_blob(st, 1), (size_t)n);
		path[n] = '\0';
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : idx_err(idx, rc, "queue pop");
}

int idx_queue_done(struct idx *idx, const char *tag, const char *path)
{
	sqlite3_bind_text(idx->st_q_del, 1, tag, -1, SQLITE_STATIC);
	sqlite3_bind_blob(idx->st_q_del, 2, path, (int)strlen(path),
			  SQLITE_STATIC);
	return step_done(idx, idx->st_q_del, "queue done");
}

int idx_text_set(struct idx *idx, int64_t id, int state, const char *text,
		 size_t len, uint64_t hash)
{
	char h[20];
	int r;

	sqlite3_bind_int64(idx->st_txt_del, 1, id);
	if ((r = step_done(idx, idx->st_txt_del, "text del")) < 0)
		return r;
	if (state == IDX_TEXT_DONE) {
		sqlite3_bind_int64(idx->st_txt_ins, 1, id);
		sqlite3_bind_text(idx->st_txt_ins, 2, text, (int)len,
				  SQLITE_STATIC);
		if ((r = step_done(idx, idx->st_txt_ins, "text ins")) < 0)
			return r;
	}
	snprintf(h, sizeof(h), "%016llx", (unsigned long long)hash);
	sqlite3_bind_int64(idx->st_text_set, 1, id);
	sqlite3_bind_int(idx->st_text_set, 2, state);
	if (state == IDX_TEXT_DONE || state == IDX_TEXT_BINARY)
		sqlite3_bind_text(idx->st_text_set, 3, h, -1,
				  SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(idx->st_text_set, 3);
	return step_done(idx, idx->st_text_set, "text set");
}
