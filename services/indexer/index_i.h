/*
 * Indexer internals shared by the plugin (indexer.c), the database layer
 * (db.c), the crawler (crawl.c), the content extractor (extract.c), the
 * query engine (query.c) and xenfs-search (search.c).  Schema and
 * semantics: docs/index.md.
 *
 * Concurrency: a struct idx is used by the plugin's event thread and its
 * worker thread (crawl, content, reindex requests); every call that takes
 * a struct idx * below must be made with idx->lock held, except
 * idx_open/idx_close.  xenfs-search uses query.c on its own read-only
 * connection (no lock).
 *
 * Trust: paths come from guests (events) or from guest-written trees
 * (crawl): any byte but NUL may appear; they are stored as BLOBs and
 * escaped by util.c whenever printed.
 */
#ifndef XF_INDEX_I_H
#define XF_INDEX_I_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sqlite3.h>

#include <xenfs/event.h>

#define IDX_SCHEMA_VERSION	1

/* files.text_state */
enum idx_text {
	IDX_TEXT_NONE = 0,	/* not a regular file, empty, or too large */
	IDX_TEXT_PENDING = 1,	/* content to be extracted */
	IDX_TEXT_DONE = 2,	/* text indexed in ftext */
	IDX_TEXT_BINARY = 3,	/* sniffed as binary (or unreadable) */
};

/* Content extraction helper (extract.c): an unprivileged child process. */
struct idx_extractor {
	pid_t pid;
	int sock;		/* our end of the socketpair, -1 if down */
	unsigned restarts;
};

/* One export as the indexer knows it (from the config). */
struct idx_export {
	char *tag;
	char *path;		/* host directory */
	int rootfd;		/* O_PATH|O_DIRECTORY of path, or -1 */
};

struct idx {
	pthread_mutex_t lock;	/* every use of db, ext and exports */
	sqlite3 *db;
	char *dbpath;
	struct idx_extractor ext;
	struct idx_export *exports;
	size_t nexports;
	uint64_t max_text;	/* [index] max-text-size */
	int corrupt;		/* SQLITE_CORRUPT seen: rebuild */
	void (*log)(int prio, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));
	/* statements, prepared once by idx_open */
	sqlite3_stmt *st_find, *st_insert, *st_update, *st_fts_ins,
		     *st_fts_upd, *st_del, *st_fts_del, *st_txt_del,
		     *st_q_add, *st_q_pop, *st_q_del, *st_pending,
		     *st_txt_ins, *st_text_set;
};

/* Metadata of one object, from lstat or from an event. */
struct idx_meta {
	char type;		/* 'f' 'd' 'l' 'p' 's' 'c' 'b' */
	uint64_t size;
	uint32_t mode, uid, gid;
	int64_t mtime;
	uint32_t mtime_nsec;
	uint64_t dev, ino;
};

/* ---- db.c ---- */

/* Open or create the database at path (WAL, schema).  A database that
 * fails PRAGMA quick_check or cannot be read is moved aside to
 * PATH.corrupt and recreated; *rebuilt is then 1.  0 or -errno. */
int idx_open(struct idx *idx, const char *path, int *rebuilt);
void idx_close(struct idx *idx);
/* Move the database aside and start empty (runtime corruption). */
int idx_rebuild(struct idx *idx);
int idx_begin(struct idx *idx);
int idx_commit(struct idx *idx);
void idx_rollback(struct idx *idx);
/* Record the export (config view): tag, host path, access text, VMs. */
int idx_export_put(struct idx *idx, const char *tag, const char *path,
		   const char *access, const char *vms);
/* Export crawl state: "new", "crawling", "done"; NULL if unknown. */
int idx_export_state(struct idx *idx, const char *tag, char *buf,
		     size_t len);
/* Start a (re)crawl of tag: gen++, state crawling, queue "/". */
int idx_crawl_start(struct idx *idx, const char *tag);
/* Finish: delete rows not seen in this generation, state done. */
int idx_crawl_finish(struct idx *idx, const char *tag, uint64_t *removed);
int64_t idx_export_gen(struct idx *idx, const char *tag);
int idx_export_add_crawled(struct idx *idx, const char *tag, uint64_t n);

/* Insert or update path; sets seen = gen; text_state from the metadata
 * (pending for a changed regular file <= max_text).  0 or -errno. */
int idx_put(struct idx *idx, const char *tag, const char *path, size_t plen,
	    const struct idx_meta *m, int64_t gen, int content_changed);
/* Delete path and (if dir) everything below it.  *n = rows removed. */
int idx_del(struct idx *idx, const char *tag, const char *path,
	    size_t plen, uint64_t *n);
/* Rename: row old -> new, and every row under old/ to new/ (prefix);
 * crawl queue entries too.  *moved = 1 if old existed. */
int idx_rename(struct idx *idx, const char *tag, const char *old,
	       const char *new, int *moved);
/* Exchange the subtrees of a and b. */
int idx_exchange(struct idx *idx, const char *tag, const char *a,
		 const char *b);
int idx_meta_set(struct idx *idx, const char *key, const char *val);
int idx_queue_add(struct idx *idx, const char *tag, const char *path,
		  size_t plen);
/* Pop one queued directory of tag ("" any): 1 found, 0 none, -errno. */
int idx_queue_pop(struct idx *idx, char *tag, size_t taglen, char *path,
		  size_t pathlen);
int idx_queue_done(struct idx *idx, const char *tag, const char *path);
/* Store extracted text (or mark binary/none) for file id. */
int idx_text_set(struct idx *idx, int64_t id, int state, const char *text,
		 size_t len, uint64_t hash);
/* Map an sqlite result code to -errno, noting corruption. */
int idx_err(struct idx *idx, int rc, const char *what);

/* ---- crawl.c ---- */

/* Crawl queued directories for about budget_ms.  Returns 1 if it did
 * work, 0 if nothing was queued, -errno.  *files += entries indexed. */
int idx_crawl_step(struct idx *idx, int budget_ms, uint64_t *files);
/* Extract content of up to max pending files; 1 did work, 0 none. */
int idx_content_step(struct idx *idx, int max, int budget_ms);
/* Open an export-relative path beneath the export root without following
 * any symlink; flags as for open(2).  fd or -errno. */
int idx_open_beneath(int rootfd, const char *path, int flags);
/* lstat of an export-relative path, never following a symlink. */
int idx_lstat(int rootfd, const char *path, struct idx_meta *m);
void idx_meta_from_stat(struct idx_meta *m, const void *st);
const struct idx_export *idx_export_find(const struct idx *idx,
					 const char *tag);

/* ---- extract.c ---- */

/* Fork the helper (call before starting threads). 0 or -errno. */
int ext_start(struct idx_extractor *x);
void ext_stop(struct idx_extractor *x);
/*
 * Have the helper read fd (read-only, regular file) up to max bytes.
 * Returns IDX_TEXT_DONE with *text (malloc'ed, *len bytes, NUL added)
 * and *hash, IDX_TEXT_BINARY, or -errno (helper died or timed out: it
 * is restarted).
 */
int ext_extract(struct idx_extractor *x, int fd, uint64_t max, char **text,
		size_t *len, uint64_t *hash);
/* The helper's classification and sanitizing, exposed for unit tests:
 * IDX_TEXT_DONE or IDX_TEXT_BINARY; on DONE buf is rewritten in place
 * (controls become spaces, invalid UTF-8 becomes '?'). */
int ext_sniff(char *buf, size_t len);
uint64_t ext_hash(uint64_t h, const void *buf, size_t len);
#define EXT_HASH_INIT	0xcbf29ce484222325ull

/* ---- util.c ---- */
/* Length of the valid UTF-8 sequence at p (1..4, n > 0 bytes left), 0 if
 * invalid (overlong, surrogate, beyond U+10FFFF, truncated). */
size_t idx_utf8_len(const unsigned char *p, size_t n);

/* Escape bytes that are unsafe on a terminal: controls, DEL, C1,
 * backslash and invalid UTF-8 become \n \t \\ \xNN.  Writes to f. */
void idx_print_escaped(FILE *f, const char *s, size_t len);
/* JSON string body (no quotes) with the same escaping of bad bytes. */
void idx_print_json(FILE *f, const char *s, size_t len);
/* "+10M" "-1k" "100" -> op '+', '-', '=' and bytes.  0 or -EINVAL. */
int idx_parse_size(const char *s, char *op, uint64_t *bytes);
/* "2024-01-31", "2024-01-31 12:00[:00]", "@EPOCH", "3d" "2h" "10m"
 * "30s" (ago) -> epoch seconds.  0 or -EINVAL. */
int idx_parse_date(const char *s, int64_t now, int64_t *out);
char idx_type_of_mode(uint32_t mode);
/* VMs that may see an export: access text "vm1:rw vm2:ro *:ro" and the
 * configured domain names -> space separated list into buf. */
void idx_vms_of(const char *access, const char *const *domains,
		size_t ndomains, char *buf, size_t len);
/* Does vm see an export with this access text? */
int idx_vm_sees(const char *access, const char *vm);
int idx_valid_name(const char *s);

/* ---- query.c ---- */

struct idx_query {
	char **pats;		/* patterns (borrowed) */
	size_t npats;
	int icase, regex, basename, content, all;
	char **vms;		/* --vm (borrowed) */
	size_t nvms;
	const char *path_glob;
	char type;		/* 0 or f d l */
	char size_op;		/* 0, '+', '-', '=' */
	uint64_t size;
	int has_newer;
	int64_t newer;
	uint64_t limit;		/* 0 = none */
};

struct idx_hit {
	const char *vm;		/* borrowed for the callback */
	const char *export_tag;
	const char *path;
	size_t plen;
	char type;
	uint64_t size;
	int64_t mtime;
	const char *snippet;	/* --content: with \x01 \x02 around matches */
};

/* Run q on db; cb is called once per (vm, file) hit until limit; returns
 * the number of hits, or -errno with a message in err. */
long idx_query_run(sqlite3 *db, const struct idx_query *q,
		   int (*cb)(const struct idx_hit *h, void *arg), void *arg,
		   char *err, size_t errlen);

#endif /* XF_INDEX_I_H */
