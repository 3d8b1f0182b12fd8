/*
 * Small pure helpers of the indexer and xenfs-search: escaping of
 * guest-chosen names for terminals and JSON, size and date arguments, and
 * which VMs see an export.  No I/O besides the FILE * given; no state.
 *
 * Trust: the byte strings printed here are guest-chosen; anything that a
 * terminal could interpret (C0/C1 controls, DEL, invalid UTF-8) is
 * escaped as \xNN, and a backslash as \\, so the output is unambiguous.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "index_i.h"

/* Length of the valid UTF-8 sequence at p (1..4), 0 if invalid. */
size_t idx_utf8_len(const unsigned char *p, size_t n)
{
	uint32_t c;
	size_t l;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		l = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		l = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		l = 4;
	else
		return 0;
	if (n < l)
		return 0;
	c = p[0] & (0xff >> (l + 1));
	for (size_t i = 1; i < l; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((l == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (l == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return l;
}

/* As idx_utf8_len, but C1 controls (U+0080..U+009F, encoded c2 80..c2 9f)
 * count as invalid: a terminal could interpret them. */
static size_t u8len(const unsigned char *p, size_t n)
{
	size_t l = idx_utf8_len(p, n);

	if (l == 2 && p[0] == 0xc2 && p[1] < 0xa0)
		return 0;
	return l;
}

static void escape(FILE *f, const char *s, size_t len, int json)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < len;) {
		size_t l = u8len(p + i, len - i);

		if (l > 1) {
			fwrite(p + i, 1, l, f);
			i += l;
			continue;
		}
		if (l == 1 && p[i] >= 0x20 && p[i] != 0x7f && p[i] != '\\' &&
		    !(json && p[i] == '"')) {
			fputc(p[i], f);
		} else if (p[i] == '\\') {
			fputs(json ? "\\\\\\\\" : "\\\\", f);
		} else if (json && p[i] == '"') {
			fputs("\\\"", f);
		} else if (p[i] == '\n') {
			fputs(json ? "\\\\n" : "\\n", f);
		} else if (p[i] == '\t') {
			fputs(json ? "\\\\t" : "\\t", f);
		} else {
			fprintf(f, json ? "\\\\x%02x" : "\\x%02x", p[i]);
		}
		i++;
	}
}

void idx_print_escaped(FILE *f, const char *s, size_t len)
{
	escape(f, s, len, 0);
}

void idx_print_json(FILE *f, const char *s, size_t len)
{
	escape(f, s, len, 1);
}

int idx_parse_size(const char *s, char *op, uint64_t *bytes)
{
	unsigned long long v;
	uint64_t mul = 1;
	char *end;

	*op = '=';
	if (*s == '+' || *s == '-')
		*op = *s++;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case '\0': break;
	case 'c': case 'b': break;
	case 'k': case 'K': mul = 1ull << 10; break;
	case 'm': case 'M': mul = 1ull << 20; break;
	case 'g': case 'G': mul = 1ull << 30; break;
	case 't': case 'T': mul = 1ull << 40; break;
	default: return -EINVAL;
	}
	if (*end && end[1] && strcmp(end + 1, "B") && strcmp(end + 1, "iB"))
		return -EINVAL;
	if (v > UINT64_MAX / mul)
		return -EINVAL;
	*bytes = v * mul;
	return 0;
}

int idx_parse_date(const char *s, int64_t now, int64_t *out)
{
	static const char *const fmts[] = {
		"%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M",
		"%Y-%m-%dT%H:%M", "%Y-%m-%d",
	};
	long long v;
	char *end;
	struct tm tm;

	if (*s == '@') {
		errno = 0;
		v = strtoll(s + 1, &end, 10);
		if (errno || end == s + 1 || *end)
			return -EINVAL;
		*out = v;
		return 0;
	}
	if (isdigit((unsigned char)*s)) {
		errno = 0;
		v = strtoll(s, &end, 10);
		if (!errno && end != s && end[0] && !end[1] && v >= 0) {
			long long mul = 0;

			switch (*end) {
			case 's': mul = 1; break;
			case 'm': mul = 60; break;
			case 'h': mul = 3600; break;
			case 'd': mul = 86400; break;
			case 'w': mul = 7 * 86400; break;
			}
			if (mul && v < (1ll << 40)) {
				*out = now - v * mul;
				return 0;
			}
		}
	}
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		const char *e;

		memset(&tm, 0, sizeof(tm));
		e = strptime(s, fmts[i], &tm);
		if (e && !*e) {
			tm.tm_isdst = -1;
			*out = (int64_t)mktime(&tm);
			return 0;
		}
	}
	return -EINVAL;
}

int idx_valid_name(const char *s)
{
	size_t n = 0;

	if (!s || !*s || *s == '.')
		return 0;
	for (; s[n]; n++)
		if (!isalnum((unsigned char)s[n]) && !strchr("._-", s[n]))
			return 0;
	return n <= 64;
}

/* Next rule "DOM:MODE" of an access text; 0 at the end. */
static int next_rule(const char **sp, char *dom, size_t dlen)
{
	const char *s = *sp, *e, *c;
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s)
		return 0;
	for (e = s; *e && *e != ' ' && *e != '\t'; e++)
		;
	*sp = e;
	c = memchr(s, ':', (size_t)(e - s));
	n = c ? (size_t)(c - s) : (size_t)(e - s);
	if (n >= dlen)
		n = dlen - 1;
	memcpy(dom, s, n);
	dom[n] = '\0';
	if (n >= 2 && dom[0] == '\'' && dom[n - 1] == '\'') {
		memmove(dom, dom + 1, n - 2);
		dom[n - 2] = '\0';
	}
	return 1;
}

int idx_vm_sees(const char *access, const char *vm)
{
	char dom[128];
	const char *s = access ? access : "";

	while (next_rule(&s, dom, sizeof(dom)))
		if (!strcmp(dom, vm) || !strcmp(dom, "*"))
			return 1;
	return 0;
}

static void add_word(char *buf, size_t len, const char *w)
{
	size_t n = strlen(buf), wl = strlen(w);
	const char *p = buf;

	if (wl == 0)
		return;

	/* already listed? */
	while ((p = strstr(p, w)) != NULL) {
		if ((p == buf || p[-1] == ' ') && (p[wl] == ' ' || !p[wl]))
			return;
		p += wl;
	}
	if (n + wl + 2 > len)
		return;
	if (n)
		buf[n++] = ' ';
	memcpy(buf + n, w, wl + 1);
}

void idx_vms_of(const char *access, const char *const *domains,
		size_t ndomains, char *buf, size_t len)
{
	char dom[128];
	const char *s = access ? access : "";
	int star = 0;

	*buf = '\0';
	while (next_rule(&s, dom, sizeof(dom))) {
		if (!strcmp(dom, "*"))
			star = 1;
		else
			add_word(buf, len, dom);
	}
	if (star) {
		for (size_t i = 0; i < ndomains; i++)
			add_word(buf, len, domains[i]);
		if (!*buf)
			add_word(buf, len, "*");
	}
}
