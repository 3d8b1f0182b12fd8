/*
 * The scanner's database, STATE_DIR/scanner/scan.db (SQLite, WAL):
 *
 *   detections  one row per infected file found: when, VM, export, path,
 *               signature, action taken, state (logged, blocked,
 *               quarantined, released, restored, cleaned, deleted), the
 *               file's
 *               identity and, when quarantined, where it went
 *   verdicts    the verdict cache: the last result per (dev, ino), valid
 *               while size and ctime match (a write changes ctime)
 *   stats       counters and engine facts for `xenfs-scan status`
 *   fullscan    checkpoints of `xenfs-scan full` (resume)
 *
 * Writers: the scanner plugin and the xenfs-scan CLI, in separate
 * processes; SQLite's locking with a busy timeout serialises them.  Each
 * process uses its connection from one thread.
 *
 * Trust: paths and signature names stored here are untrusted text; they
 * are bound as parameters, never spliced into SQL.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "scan_i.h"

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	/* no fsync: the export's disk is the guests' (a journal commit per
	 * checkpoint competes with their writes).  A machine crash may
	 * lose the last verdicts (files are scanned again) or detections
	 * (a quarantined file keeps its .meta next to it); an application
	 * crash loses nothing (WAL). */
	"PRAGMA synchronous=OFF;"
	"CREATE TABLE IF NOT EXISTS detections("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL,"
	" vm TEXT NOT NULL, export TEXT NOT NULL, path TEXT NOT NULL,"
	" signature TEXT NOT NULL, action TEXT NOT NULL,"
	" state TEXT NOT NULL, source TEXT NOT NULL DEFAULT '',"
	" dev INTEGER, ino INTEGER, size INTEGER, ctime_sec INTEGER,"
	" ctime_nsec INTEGER, mode INTEGER, uid INTEGER, gid INTEGER,"
	" qfile TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX IF NOT EXISTS det_ino ON detections(ino, dev);"
	"CREATE INDEX IF NOT EXISTS det_time ON detections(time);"
	"CREATE INDEX IF NOT EXISTS det_path ON detections(path, export);"
	"CREATE TABLE IF NOT EXISTS verdicts("
	" dev INTEGER NOT NULL, ino INTEGER NOT NULL, size INTEGER,"
	" ctime_sec INTEGER, ctime_nsec INTEGER, result INTEGER,"
	" signature TEXT, time INTEGER, PRIMARY KEY(dev, ino));"
	"CREATE TABLE IF NOT EXISTS stats(key TEXT PRIMARY KEY, value);"
	"CREATE TABLE IF NOT EXISTS fullscan(vm TEXT PRIMARY KEY,"
	" started INTEGER, updated INTEGER, last TEXT, files INTEGER,"
	" bytes INTEGER, found INTEGER, done INTEGER);";

/*
 * Prepared statements are kept per (connection, SQL text): a full scan
 * runs the same few statements for every file.  sql must be a string
 * literal (its address is the key).  unprep() resets a statement for the
 * next use; scan_db_close() finalizes them.
 */
#define STMT_CACHE	32
static struct {
	sqlite3 *db;
	const char *sql;
	sqlite3_stmt *st;
} stmts[STMT_CACHE];

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int i, free_slot = -1;

	for (i = 0; i < STMT_CACHE; i++) {
		if (stmts[i].db == db && stmts[i].sql == sql)
			return stmts[i].st;
		if (stmts[i].db == NULL && free_slot < 0)
			free_slot = i;
	}
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
			       NULL) != SQLITE_OK) {
		scan_log(SCAN_LOG_ERR, "scan.db: %s", sqlite3_errmsg(db));
		return NULL;
	}
	if (free_slot >= 0) {
		stmts[free_slot].db = db;
		stmts[free_slot].sql = sql;
		stmts[free_slot].st = st;
	}
	return st;
}

static void unprep(sqlite3_stmt *st)
{
	for (int i = 0; i < STMT_CACHE; i++)
		if (stmts[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	sqlite3_finalize(st);	/* the cache was full */
}

int scan_db_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		scan_log(SCAN_LOG_ERR, "scan.db: %s", msg ? msg : "error");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

int scan_db_open(const char *state, int readonly, sqlite3 **out)
{
	char path[4200];
	sqlite3 *db = NULL;
	int fl;

	*out = NULL;
	if (!readonly && mkdir(state, 0750) < 0 && errno != EEXIST) {
		/* STATE_DIR itself may not exist yet (no xenfsd ran) */
		char parent[4096], *sl;

		snprintf(parent, sizeof(parent), "%s", state);
		if (errno != ENOENT || (sl = strrchr(parent, '/')) == NULL ||
		    sl == parent)
			return -errno;
		*sl = '\0';
		if ((mkdir(parent, 0750) < 0 && errno != EEXIST) ||
		    (mkdir(state, 0750) < 0 && errno != EEXIST)) {
			scan_log(SCAN_LOG_ERR, "mkdir %s: %s", state,
				 strerror(errno));
			return -errno;
		}
	}
	snprintf(path, sizeof(path), "%s/scan.db", state);
	fl = readonly ? SQLITE_OPEN_READONLY :
			SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &db, fl, NULL) != SQLITE_OK) {
		scan_log(SCAN_LOG_ERR, "%s: %s", path,
			 db ? sqlite3_errmsg(db) : "cannot open");
		sqlite3_close(db);
		return -ENOENT;
	}
	sqlite3_busy_timeout(db, 10000);
	if (!readonly && scan_db_exec(db, schema) < 0) {
		sqlite3_close(db);
		return -EIO;
	}
	*out = db;
	return 0;
}

void scan_db_close(sqlite3 *db)
{
	for (int i = 0; i < STMT_CACHE; i++)
		if (stmts[i].db == db) {
			sqlite3_finalize(stmts[i].st);
			stmts[i].db = NULL;
			stmts[i].sql = NULL;
			stmts[i].st = NULL;
		}
	sqlite3_close(db);
}

void scan_ident_of(struct scan_ident *id, const struct stat *st)
{
	id->dev = (uint64_t)st->st_dev;
	id->ino = (uint64_t)st->st_ino;
	id->size = (uint64_t)st->st_size;
	id->ctime_sec = st->st_ctim.tv_sec;
	id->ctime_nsec = (uint32_t)st->st_ctim.tv_nsec;
}

static void bind_ident(sqlite3_stmt *st, int first,
		       const struct scan_ident *id)
{
	sqlite3_bind_int64(st, first, (int64_t)id->dev);
	sqlite3_bind_int64(st, first + 1, (int64_t)id->ino);
	sqlite3_bind_int64(st, first + 2, (int64_t)id->size);
	sqlite3_bind_int64(st, first + 3, id->ctime_sec);
	sqlite3_bind_int64(st, first + 4, id->ctime_nsec);
}

static int step_done(sqlite3 *db, sqlite3_stmt *st)
{
	int r = sqlite3_step(st);

	unprep(st);
	if (r != SQLITE_DONE && r != SQLITE_ROW) {
		scan_log(SCAN_LOG_ERR, "scan.db: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	return 0;
}

int scan_db_verdict_get(sqlite3 *db, const struct scan_ident *id, char *sig,
			size_t siglen)
{
	sqlite3_stmt *st = prep(db, "SELECT result, signature FROM verdicts "
				"WHERE dev=?1 AND ino=?2 AND size=?3 AND "
				"ctime_sec=?4 AND ctime_nsec=?5");
	int r = -ENOENT;

	if (st == NULL)
		return -EIO;
	bind_ident(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		r = sqlite3_column_int(st, 0);
		if (sig) {
			const unsigned char *s = sqlite3_column_text(st, 1);
			snprintf(sig, siglen, "%s", s ? (const char *)s : "");
		}
	}
	unprep(st);
	return r;
}

int scan_db_verdict_put(sqlite3 *db, const struct scan_ident *id, int result,
			const char *sig)
{
	sqlite3_stmt *st = prep(db, "INSERT OR REPLACE INTO verdicts(dev, "
				"ino, size, ctime_sec, ctime_nsec, result, "
				"signature, time) VALUES(?1,?2,?3,?4,?5,?6,"
				"?7,?8)");

	if (st == NULL)
		return -EIO;
	bind_ident(st, 1, id);
	sqlite3_bind_int(st, 6, result);
	sqlite3_bind_text(st, 7, sig ? sig : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 8, (int64_t)time(NULL));
	return step_done(db, st);
}

int scan_db_blocked(sqlite3 *db, const struct scan_ident *id)
{
	sqlite3_stmt *st = prep(db, "SELECT 1 FROM detections WHERE "
				"dev=?1 AND ino=?2 AND size=?3 AND "
				"ctime_sec=?4 AND ctime_nsec=?5 AND "
				"state='blocked' LIMIT 1");
	int r;

	if (st == NULL)
		return -EIO;
	bind_ident(st, 1, id);
	r = sqlite3_step(st) == SQLITE_ROW;
	unprep(st);
	return r;
}

int scan_db_detection_add(sqlite3 *db, const struct scan_detection *d,
			  int64_t *id_out)
{
	sqlite3_stmt *st = prep(db, "INSERT INTO detections(time, vm, export,"
				" path, signature, action, state, source, dev,"
				" ino, size, ctime_sec, ctime_nsec, mode, uid,"
				" gid) VALUES(?6,?7,?8,?9,?10,?11,?12,?13,?1,"
				"?2,?3,?4,?5,?14,?15,?16)");
	int r;

	if (st == NULL)
		return -EIO;
	bind_ident(st, 1, &d->ident);
	sqlite3_bind_int64(st, 6, d->time);
	sqlite3_bind_text(st, 7, d->vm, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, d->export_tag, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, d->path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, d->signature, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, d->action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, d->state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 13, d->source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 14, d->mode);
	sqlite3_bind_int64(st, 15, d->uid);
	sqlite3_bind_int64(st, 16, d->gid);
	if ((r = step_done(db, st)) < 0)
		return r;
	*id_out = sqlite3_last_insert_rowid(db);
	return 0;
}

static void col_text(sqlite3_stmt *st, int i, char *buf, size_t len)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	snprintf(buf, len, "%s", s ? (const char *)s : "");
}

int scan_db_detection_get(sqlite3 *db, int64_t id, struct scan_detection *d)
{
	sqlite3_stmt *st = prep(db, "SELECT id, time, vm, export, path, "
				"signature, action, state, qfile, dev, ino, "
				"size, ctime_sec, ctime_nsec, mode, uid, gid "
				"FROM detections WHERE id=?1");
	int r = -ENOENT;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		memset(d, 0, sizeof(*d));
		d->id = sqlite3_column_int64(st, 0);
		d->time = sqlite3_column_int64(st, 1);
		col_text(st, 2, d->vm, sizeof(d->vm));
		col_text(st, 3, d->export_tag, sizeof(d->export_tag));
		col_text(st, 4, d->path, sizeof(d->path));
		col_text(st, 5, d->signature, sizeof(d->signature));
		col_text(st, 6, d->action, sizeof(d->action));
		col_text(st, 7, d->state, sizeof(d->state));
		col_text(st, 8, d->qfile, sizeof(d->qfile));
		d->ident.dev = (uint64_t)sqlite3_column_int64(st, 9);
		d->ident.ino = (uint64_t)sqlite3_column_int64(st, 10);
		d->ident.size = (uint64_t)sqlite3_column_int64(st, 11);
		d->ident.ctime_sec = sqlite3_column_int64(st, 12);
		d->ident.ctime_nsec = (uint32_t)sqlite3_column_int64(st, 13);
		d->mode = (uint32_t)sqlite3_column_int64(st, 14);
		d->uid = (uint32_t)sqlite3_column_int64(st, 15);
		d->gid = (uint32_t)sqlite3_column_int64(st, 16);
		r = 0;
	}
	unprep(st);
	return r;
}

int scan_db_detection_set(sqlite3 *db, int64_t id, const char *state,
			  const char *qfile)
{
	sqlite3_stmt *st = prep(db, qfile ?
				"UPDATE detections SET state=?2, qfile=?3 "
				"WHERE id=?1" :
				"UPDATE detections SET state=?2 WHERE id=?1");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	if (qfile)
		sqlite3_bind_text(st, 3, qfile, -1, SQLITE_STATIC);
	return step_done(db, st);
}

int scan_db_cleaned(sqlite3 *db, const struct scan_ident *id,
		    const char *export_tag, const char *path)
{
	sqlite3_stmt *st = prep(db, "UPDATE detections SET state='cleaned' "
				"WHERE state IN ('blocked','logged') AND "
				"((dev=?1 AND ino=?2) OR (export=?3 AND "
				"path=?4))");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)id->dev);
	sqlite3_bind_int64(st, 2, (int64_t)id->ino);
	sqlite3_bind_text(st, 3, export_tag, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, path, -1, SQLITE_STATIC);
	if (step_done(db, st) < 0)
		return -EIO;
	return sqlite3_changes(db);
}

int scan_db_gone(sqlite3 *db, const char *export_tag, const char *path)
{
	sqlite3_stmt *st = prep(db, "UPDATE detections SET state='deleted' "
				"WHERE state IN ('blocked','logged') AND "
				"export=?1 AND path=?2");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, export_tag, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
	if (step_done(db, st) < 0)
		return -EIO;
	return sqlite3_changes(db);
}

int scan_db_stat_add(sqlite3 *db, const char *key, int64_t delta)
{
	sqlite3_stmt *st = prep(db, "INSERT INTO stats(key, value) "
				"VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE "
				"SET value = value + ?2");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, delta);
	return step_done(db, st);
}

int scan_db_stat_set(sqlite3 *db, const char *key, const char *val)
{
	sqlite3_stmt *st = prep(db, "INSERT OR REPLACE INTO stats(key, value)"
				" VALUES(?1, ?2)");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, val, -1, SQLITE_STATIC);
	return step_done(db, st);
}

int64_t scan_db_stat_int(sqlite3 *db, const char *key)
{
	sqlite3_stmt *st = prep(db, "SELECT value FROM stats WHERE key=?1");
	int64_t v = 0;

	if (st == NULL)
		return 0;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	unprep(st);
	return v;
}

int scan_db_stat_text(sqlite3 *db, const char *key, char *buf, size_t len)
{
	sqlite3_stmt *st = prep(db, "SELECT value FROM stats WHERE key=?1");
	int r = -ENOENT;

	buf[0] = '\0';
	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		col_text(st, 0, buf, len);
		r = 0;
	}
	unprep(st);
	return r;
}
