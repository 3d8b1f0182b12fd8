/*
 * The operation stream's journal: writer (xenfsd), readers (services,
 * xenfsctl events) and consumer cursors.  Format in <xenfs/event.h>,
 * semantics in docs/stream.md.
 *
 * Directory layout (dir is normally STATE_DIR/journal):
 *   dir/%016llx.seg        segments, named by the seq of their first record
 *   dir/cursors/NAME       one per consumer: decimal seq of the last record
 *                          the consumer has fully processed, then '\n'
 *
 * Durability: xf_stream_append() returns after write(2) of the whole
 * record to an O_APPEND segment, so the record survives a crash of the
 * writing process.  A machine crash may lose records not yet flushed by
 * xf_stream_sync() (xenfsd calls it every second); the writer detects
 * this at the next open (a cursor ahead of the journal) and appends a
 * RESYNC record instead of reusing sequence numbers.
 *
 * Threading: a writer is safe to share between threads (one mutex
 * serialises appends: the "group" is whatever queued on the mutex).  A
 * reader belongs to one thread.  One writer per directory (xenfsd holds
 * an flock on dir/lock); any number of readers, in any process.
 *
 * Trust: the journal is written by xenfsd only and lives in a root-owned
 * directory, but readers still check every length and CRC, since a
 * machine crash can leave garbage at the tail.
 */
#ifndef XF_STREAM_H
#define XF_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <xenfs/event.h>

uint32_t xf_crc32c(uint32_t crc, const void *buf, size_t len);

/* Parse "123", "64K", "10M", "1G" (binary units); 0 or -EINVAL. */
int xf_parse_size(const char *s, uint64_t *out);

/* ---- writer ---- */

struct xf_stream_writer;

struct xf_stream_wopts {
	uint64_t segment_max;	/* rotate a segment past this size */
	uint64_t journal_max;	/* total bytes kept, even if a consumer lags */
};

/*
 * Open (creating dir if needed) for appending.  Scans the newest segment,
 * truncates a torn or corrupt tail (logged), and continues after the last
 * good record.  Returns 0 or -errno (-EWOULDBLOCK: another writer).
 */
int xf_stream_writer_open(const char *dir, const struct xf_stream_wopts *o,
			  struct xf_stream_writer **out);
void xf_stream_writer_close(struct xf_stream_writer *w);

/*
 * Append one record.  ev->seq is assigned (and written back); ev->time_ns
 * is filled if 0.  Strings longer than the format allows are cut.  Thread
 * safe.  Returns 0 or -errno; on error nothing was appended.
 */
int xf_stream_append(struct xf_stream_writer *w, struct xenfs_event *ev);

/* Seq of the last record appended (0: none yet). */
uint64_t xf_stream_head(struct xf_stream_writer *w);

/* fdatasync the current segment if anything was appended since the last
 * call; 0 or -errno. */
int xf_stream_sync(struct xf_stream_writer *w);

/*
 * Delete segments every consumer has passed, then the oldest ones while
 * the journal exceeds journal_max (logging which consumers lose records:
 * their readers will report a gap).  Never deletes the current segment.
 */
int xf_stream_trim(struct xf_stream_writer *w);

/* ---- reader ---- */

struct xf_stream_reader;

enum xf_stream_status {
	XF_STREAM_EMPTY = 0,	/* nothing new yet: wait and retry */
	XF_STREAM_EVENT = 1,	/* *evp is the next event */
	XF_STREAM_GAP = 2,	/* records were trimmed before we read them:
				 * the consumer must re-crawl; reading goes
				 * on from the oldest record still kept */
};

/*
 * Open a reader on dir.  With a consumer name, its cursor file is read
 * (none: start at the oldest record kept) and xf_stream_commit() updates
 * it; with NULL the reader starts at the oldest record and keeps no
 * cursor (xenfsctl events).  Names: [A-Za-z0-9._-], 1..64 bytes.
 */
int xf_stream_reader_open(const char *dir, const char *consumer,
			  struct xf_stream_reader **out);
void xf_stream_reader_close(struct xf_stream_reader *r);

/* Position so that the next record returned has seq >= next. */
void xf_stream_seek(struct xf_stream_reader *r, uint64_t next);

/*
 * Read the next record.  Returns enum xf_stream_status or -errno.  On
 * EVENT, *evp is a malloc'ed event whose strings live in the same block:
 * free(*evp) releases everything.  On GAP, *gap_first and *gap_last (if
 * non-NULL) are the seqs that were lost (first..last inclusive) and a
 * warning "consumer X fell behind: full re-crawl needed" was logged.
 */
int xf_stream_next(struct xf_stream_reader *r, struct xenfs_event **evp,
		   uint64_t *gap_first, uint64_t *gap_last);

/* Wait up to timeout_ms for the journal to change (inotify; polling if
 * that fails).  0 or -errno. */
int xf_stream_wait(struct xf_stream_reader *r, int timeout_ms);

/* Record that every event with seq <= seq has been processed (atomic
 * rename of the cursor file).  0 or -errno. */
int xf_stream_commit(struct xf_stream_reader *r, uint64_t seq);

/* Committed cursor (last processed seq, 0 = none). */
uint64_t xf_stream_cursor(const struct xf_stream_reader *r);

/* Seq of the newest complete record in dir (0: none); -errno on error. */
int xf_stream_head_seq(const char *dir, uint64_t *head);

/* Read a consumer's cursor without opening a reader; -ENOENT if none. */
int xf_stream_read_cursor(const char *dir, const char *consumer,
			  uint64_t *seq);

/* Encode ev's record payload (no header, no seq assigned yet) into buf,
 * which holds XENFS_REC_MAX bytes; returns its length.  Strings longer
 * than the record allows are cut.  xenfsd's workers ship events to the
 * parent this way; xf_stream_decode() reverses it. */
size_t xf_stream_encode(const struct xenfs_event *ev, void *buf);

/* Decode one record payload (len bytes) into a malloc'ed event. */
int xf_stream_decode(const void *payload, size_t len,
		     struct xenfs_event **evp);

#endif /* XF_STREAM_H */
