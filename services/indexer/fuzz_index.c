/*
 * Fuzz target "index": the indexer code that handles guest-chosen bytes
 * without a database: the text sniffer and sanitizer that the extraction
 * helper runs on file contents (ext_sniff), the escaping of names for
 * terminals and JSON (idx_print_escaped/json), and the parsers of the
 * CLI's arguments and access lists (sizes, dates, VM lists).
 *
 * Invariants checked (abort on violation): text that ext_sniff accepts
 * has no byte a terminal interprets (C0 controls but newline, DEL, C1
 * controls) and is valid UTF-8; the escaped form of any name contains no
 * control byte at all.
 * Single-threaded; built by tests/fuzz/module.mk's rules (make fuzz
 * TARGET=index, make fuzz-replay), corpus in tests/fuzz/corpus/index/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index_i.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Valid UTF-8 without C0 (but \n), DEL or C1 controls? */
static int clean_text(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		size_t l = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

		if ((c < 0x20 && c != '\n') || c == 0x7f)
			return 0;
		if (c >= 0x80 && (c < 0xc2 || c > 0xf4 || i + l > n))
			return 0;
		for (size_t j = 1; j < l; j++)
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
		if (c == 0xc2 && p[i + 1] < 0xa0)
			return 0;
		i += l;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *out = NULL, *s;
	size_t outlen = 0;
	FILE *f;
	uint64_t b;
	int64_t t;
	char op, vms[512];
	const char *doms[] = { "vm1", "vm2" };

	/* contents: sniff and sanitize a private copy */
	if (!(buf = malloc(size + 1)))
		return 0;
	memcpy(buf, data, size);
	if (ext_sniff(buf, size) == IDX_TEXT_DONE &&
	    !clean_text((unsigned char *)buf, size))
		abort();
	(void)ext_hash(EXT_HASH_INIT, data, size);

	/* names: neither escaped form has a control byte */
	for (int json = 0; json < 2; json++) {
		if ((f = open_memstream(&out, &outlen)) == NULL)
			break;
		if (json)
			idx_print_json(f, (const char *)data, size);
		else
			idx_print_escaped(f, (const char *)data, size);
		fclose(f);
		for (size_t i = 0; i < outlen; i++)
			if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
				abort();
		if (!clean_text((unsigned char *)out, outlen))
			abort();
		free(out);
		out = NULL;
	}

	/* arguments: NUL-terminated copies */
	memcpy(buf, data, size);
	buf[size] = '\0';
	s = buf;
	(void)idx_parse_size(s, &op, &b);
	(void)idx_parse_date(s, 1700000000, &t);
	(void)idx_valid_name(s);
	idx_vms_of(s, doms, 2, vms, sizeof(vms));
	(void)idx_vm_sees(s, "vm1");
	free(buf);
	return 0;
}
