/*
 * Query engine of xenfs-search (and of the unit tests and the bench):
 * turns a struct idx_query into a candidate SELECT (an FTS5 trigram
 * MATCH on paths when a pattern has a literal run of 3+ characters, an
 * FTS5 unicode61 MATCH on text for --content, else a scan of files) and
 * checks every candidate exactly in C (substring, glob, regex, basename,
 * filters), then expands each file to the VMs that see its export.
 *
 * Concurrency: pure function of a read-only connection; no globals.
 * Trust: patterns come from the admin, paths from guests; neither is
 * spliced into SQL text (FTS queries are bound as parameters, with every
 * pattern quoted as an FTS5 string).
 */
#include <errno.h>
#include <fnmatch.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index_i.h"

struct qexport {
	char *tag;
	char **vms;		/* VMs to report it under (after --vm) */
	size_t nvms;
};

struct qctx {
	const struct idx_query *q;
	struct qexport *ex;
	size_t nex;
	regex_t *re;
};

static void qerr(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void qerr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static int is_glob(const char *p)
{
	return strpbrk(p, "*?[") != NULL;
}

/* Characters (not bytes) in s[0..n). */
static size_t u8chars(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			c++;
	return c;
}

/* Longest literal run of a pattern (a glob's text between wildcards,
 * without backslash escapes); *len = 0 if none. */
static const char *literal_run(const char *p, size_t *len)
{
	const char *best = NULL, *s = p;
	size_t bl = 0;

	if (!is_glob(p)) {
		*len = strlen(p);
		return p;
	}
	while (*s) {
		size_t n = strcspn(s, "*?[]\\");

		if (u8chars(s, n) > u8chars(best ? best : "", bl)) {
			best = s;
			bl = n;
		}
		s += n;
		if (*s == '[') {
			const char *e = strchr(s + 1, ']');
			s = e ? e + 1 : s + 1;
		} else if (*s) {
			s++;
			if (s[-1] == '\\' && *s)
				s++;
		}
	}
	*len = bl;
	return best;
}

/* Append an FTS5 string "..." with quotes doubled. */
static int fts_quote(char **buf, size_t *len, size_t *cap, const char *s,
		     size_t n, const char *sep)
{
	size_t need = *len + strlen(sep) + 2 * n + 3;
	char *b;

	if (need > *cap) {
		if (!(b = realloc(*buf, need * 2)))
			return -ENOMEM;
		*buf = b;
		*cap = need * 2;
	}
	b = *buf + *len;
	if (*len) {
		memcpy(b, sep, strlen(sep));
		b += strlen(sep);
	}
	*b++ = '"';
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"')
			*b++ = '"';
		*b++ = s[i];
	}
	*b++ = '"';
	*b = '\0';
	*len = (size_t)(b - *buf);
	return 0;
}

/* Build the FTS query for names: NULL (with *ok 1) if a scan is needed. */
static int name_fts(const struct idx_query *q, char **out)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int r;

	*out = NULL;
	if (q->regex || q->npats == 0)
		return 0;
	for (size_t i = 0; i < q->npats; i++) {
		size_t n;
		const char *run = literal_run(q->pats[i], &n);

		if (!run || u8chars(run, n) < 3) {
			if (q->all)
				continue;	/* the others still narrow */
			free(buf);
			return 0;	/* OR: this one needs a scan */
		}
		if ((r = fts_quote(&buf, &len, &cap, run, n,
				   q->all ? " AND " : " OR ")) < 0) {
			free(buf);
			return r;
		}
	}
	*out = buf;
	return 0;
}

static int content_fts(const struct idx_query *q, char **out)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int r;

	for (size_t i = 0; i < q->npats; i++)
		if ((r = fts_quote(&buf, &len, &cap, q->pats[i],
				   strlen(q->pats[i]), " AND ")) < 0) {
			free(buf);
			return r;
		}
	*out = buf;
	return buf ? 0 : -EINVAL;
}

static void exports_free(struct qctx *c)
{
	for (size_t i = 0; i < c->nex; i++) {
		for (size_t j = 0; j < c->ex[i].nvms; j++)
			free(c->ex[i].vms[j]);
		free(c->ex[i].vms);
		free(c->ex[i].tag);
	}
	free(c->ex);
}

static int vm_add(struct qexport *e, const char *vm, size_t n)
{
	char **v = realloc(e->vms, (e->nvms + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	e->vms = v;
	if (!(v[e->nvms] = strndup(vm, n)))
		return -ENOMEM;
	e->nvms++;
	return 0;
}

static int exports_load(sqlite3 *db, struct qctx *c, char *err,
			size_t errlen)
{
	const struct idx_query *q = c->q;
	sqlite3_stmt *st;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(db, "SELECT tag, access, vms FROM exports"
				" ORDER BY tag", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		qerr(err, errlen, "%s", sqlite3_errmsg(db));
		return -EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *tag = (const char *)sqlite3_column_text(st, 0);
		const char *acc = (const char *)sqlite3_column_text(st, 1);
		const char *vms = (const char *)sqlite3_column_text(st, 2);
		struct qexport *e, *ne;

		ne = realloc(c->ex, (c->nex + 1) * sizeof(*ne));
		if (!ne || !tag) {
			r = -ENOMEM;
			break;
		}
		c->ex = ne;
		e = &c->ex[c->nex++];
		memset(e, 0, sizeof(*e));
		if (!(e->tag = strdup(tag))) {
			r = -ENOMEM;
			break;
		}
		if (q->nvms) {
			for (size_t i = 0; i < q->nvms && r == 0; i++)
				if (idx_vm_sees(acc, q->vms[i]))
					r = vm_add(e, q->vms[i],
						   strlen(q->vms[i]));
		} else if (vms && *vms) {
			const char *s = vms;

			while (*s && r == 0) {
				size_t n = strcspn(s, " ");

				if (n)
					r = vm_add(e, s, n);
				s += n;
				s += strspn(s, " ");
			}
		} else {
			r = vm_add(e, tag, strlen(tag));
		}
		if (r < 0)
			break;
	}
	sqlite3_finalize(st);
	if (r == 0 && rc != SQLITE_DONE) {
		qerr(err, errlen, "%s", sqlite3_errstr(rc));
		r = -EIO;
	}
	return r;
}

static const struct qexport *export_of(const struct qctx *c, const char *t)
{
	for (size_t i = 0; i < c->nex; i++)
		if (!strcmp(c->ex[i].tag, t))
			return &c->ex[i];
	return NULL;
}

/* Does one pattern match subject s? */
static int pat_match(const struct qctx *c, size_t i, const char *s)
{
	const struct idx_query *q = c->q;
	const char *p = q->pats[i];

	if (q->regex)
		return regexec(&c->re[i], s, 0, NULL, 0) == 0;
	if (is_glob(p))
		return fnmatch(p, s, q->icase ? FNM_CASEFOLD : 0) == 0;
	return (q->icase ? strcasestr(s, p) : strstr(s, p)) != NULL;
}

/* Exact check of a candidate row (names, filters). */
static int row_match(const struct qctx *c, const char *path, char type,
		     uint64_t size, int64_t mtime)
{
	const struct idx_query *q = c->q;
	const char *subj = path;
	int any = 0, all = 1;

	if (q->type && type != q->type)
		return 0;
	if (q->size_op == '+' && !(size > q->size))
		return 0;
	if (q->size_op == '-' && !(size < q->size))
		return 0;
	if (q->size_op == '=' && size != q->size)
		return 0;
	if (q->has_newer && mtime <= q->newer)
		return 0;
	if (q->path_glob && fnmatch(q->path_glob, path, 0) != 0)
		return 0;
	if (q->content || q->npats == 0)
		return 1;
	if (q->basename) {
		const char *b = strrchr(path, '/');
		subj = b ? b + 1 : path;
	}
	for (size_t i = 0; i < q->npats; i++) {
		if (pat_match(c, i, subj))
			any = 1;
		else
			all = 0;
	}
	return q->all ? all : any;
}

long idx_query_run(sqlite3 *db, const struct idx_query *q,
		   int (*cb)(const struct idx_hit *h, void *arg), void *arg,
		   char *err, size_t errlen)
{
	struct qctx c = { .q = q };
	char *fts = NULL, *path = NULL, sql[512];
	size_t pcap = 0;
	sqlite3_stmt *st = NULL;
	long hits = 0;
	int rc, r = 0;

	if (q->content && q->npats == 0) {
		qerr(err, errlen, "--content needs a pattern");
		return -EINVAL;
	}
	if (q->regex && !q->content) {
		if (!(c.re = calloc(q->npats ? q->npats : 1, sizeof(*c.re))))
			return -ENOMEM;
		for (size_t i = 0; i < q->npats; i++) {
			rc = regcomp(&c.re[i], q->pats[i], REG_EXTENDED |
				     REG_NOSUB | (q->icase ? REG_ICASE : 0));
			if (rc) {
				char m[128];

				regerror(rc, &c.re[i], m, sizeof(m));
				qerr(err, errlen, "bad regex '%s': %s",
				     q->pats[i], m);
				for (size_t j = 0; j < i; j++)
					regfree(&c.re[j]);
				free(c.re);
				return -EINVAL;
			}
		}
	}
	if ((r = exports_load(db, &c, err, errlen)) < 0)
		goto out;
	if (q->content)
		r = content_fts(q, &fts);
	else
		r = name_fts(q, &fts);
	if (r < 0)
		goto out;
	if (q->content)
		snprintf(sql, sizeof(sql), "SELECT f.export, f.path, f.type,"
			 " f.size, f.mtime, snippet(ftext, 0, char(1),"
			 " char(2), '...', 12) FROM ftext JOIN files f ON"
			 " f.id = ftext.rowid WHERE ftext MATCH ?1");
	else if (fts)
		snprintf(sql, sizeof(sql), "SELECT f.export, f.path, f.type,"
			 " f.size, f.mtime, NULL FROM fnames JOIN files f ON"
			 " f.id = fnames.rowid WHERE fnames MATCH ?1");
	else
		snprintf(sql, sizeof(sql), "SELECT f.export, f.path, f.type,"
			 " f.size, f.mtime, NULL FROM files f");
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		qerr(err, errlen, "%s", sqlite3_errmsg(db));
		r = (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) ==
		    SQLITE_NOTADB ? -EUCLEAN : -EIO;
		goto out;
	}
	if (fts)
		sqlite3_bind_text(st, 1, fts, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *tag = (const char *)sqlite3_column_text(st, 0);
		const void *pb = sqlite3_column_blob(st, 1);
		size_t pl = (size_t)sqlite3_column_bytes(st, 1);
		const char *ty = (const char *)sqlite3_column_text(st, 2);
		const struct qexport *e;
		struct idx_hit h;

		if (!tag || !(e = export_of(&c, tag)) || e->nvms == 0)
			continue;
		if (pl + 1 > pcap) {
			char *np = realloc(path, pl + 64);
			if (!np) {
				r = -ENOMEM;
				goto out;
			}
			path = np;
			pcap = pl + 64;
		}
		if (pl)
			memcpy(path, pb, pl);
		path[pl] = '\0';
		if (memchr(path, '\0', pl))
			continue;	/* cannot be a path */
		memset(&h, 0, sizeof(h));
		h.export_tag = tag;
		h.path = path;
		h.plen = pl;
		h.type = ty ? ty[0] : '?';
		h.size = (uint64_t)sqlite3_column_int64(st, 3);
		h.mtime = sqlite3_column_int64(st, 4);
		h.snippet = (const char *)sqlite3_column_text(st, 5);
		if (!row_match(&c, path, h.type, h.size, h.mtime))
			continue;
		for (size_t i = 0; i < e->nvms; i++) {
			h.vm = e->vms[i];
			hits++;
			if (cb && (r = cb(&h, arg)) < 0)
				goto out;
			if (q->limit && (uint64_t)hits >= q->limit)
				goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		int prim = rc & 0xff;

		qerr(err, errlen, "%s", sqlite3_errmsg(db));
		r = prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB ?
		    -EUCLEAN : -EIO;
	}
out:
	sqlite3_finalize(st);
	if (c.re) {
		for (size_t i = 0; i < q->npats; i++)
			regfree(&c.re[i]);
		free(c.re);
	}
	exports_free(&c);
	free(fts);
	free(path);
	return r < 0 ? r : hits;
}
