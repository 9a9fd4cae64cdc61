/*
 * Byte buffers and the line splitter.
 *
 * A ks_buf is a linear buffer: bytes [off, off + len) of data[0, cap).
 * Standard-size blocks (KS_BUF_BLOCK) come from a per-worker pool and go
 * back to it when the buffer is empty, so idle connections hold none.
 */
#ifndef KS_BUF_H
#define KS_BUF_H

#include <stdbool.h>
#include <stddef.h>

#define KS_BUF_BLOCK 16384

/* A worker's pool: a cache of free standard blocks, and the account of
 * every byte its buffers hold, with an optional cap (max_buffer_memory):
 * a buffer that would grow past it is refused. */
struct ks_bufpool {
	void **blocks; /* free standard-size blocks */
	size_t n, max;
	size_t used;   /* bytes held by buffers (not the cached blocks) */
	size_t cap;    /* 0: no cap */
	size_t peak;   /* the most `used` has been */
};

struct ks_buf {
	char *data;
	size_t off, len, cap;
};

void ks_bufpool_init(struct ks_bufpool *p, size_t max_cached);
/* At most `bytes` in buffers (0: no cap). */
void ks_bufpool_set_cap(struct ks_bufpool *p, size_t bytes);
void ks_bufpool_destroy(struct ks_bufpool *p);

static inline char *
ks_buf_head(const struct ks_buf *b)
{
	return b->data + b->off;
}

static inline char *
ks_buf_tail(const struct ks_buf *b)
{
	return b->data + b->off + b->len;
}

static inline size_t
ks_buf_tailroom(const struct ks_buf *b)
{
	return b->cap - b->off - b->len;
}

/* Makes room for `need` more bytes after the data: allocates a block,
 * moves the data to the front, or grows (never beyond `limit` bytes of
 * capacity).  With `nomove` set the data must stay where it is (pointers
 * into it are held), so only an empty buffer may be (re)allocated.
 * Returns 0; -1 if the room cannot be made within `limit` (or `nomove`);
 * KS_BUF_NOMEM if the memory is not there: the pool's cap, or malloc. */
#define KS_BUF_NOMEM (-2)
int ks_buf_reserve(struct ks_buf *b, struct ks_bufpool *p, size_t need,
		   size_t limit, bool nomove);
/* Appends n bytes (growing up to `limit`); -1 if they do not fit,
 * KS_BUF_NOMEM as for ks_buf_reserve. */
int ks_buf_append(struct ks_buf *b, struct ks_bufpool *p, const void *src,
		  size_t n, size_t limit);
/* Drops n bytes from the front; an emptied buffer restarts at offset 0. */
void ks_buf_consume(struct ks_buf *b, size_t n);
/* Returns an empty buffer's memory to the pool (or frees it). */
void ks_buf_release(struct ks_buf *b, struct ks_bufpool *p);
/* Frees the memory regardless of content. */
void ks_buf_free(struct ks_buf *b, struct ks_bufpool *p);

enum ks_line_result {
	KS_LINE_FOUND,     /* a whole line is there */
	KS_LINE_MORE,      /* no LF yet, and the line may still fit */
	KS_LINE_TOO_LONG,  /* no LF within max + terminator */
};

/*
 * Looks for a line in data[0, len).  *scanned is how far a previous call
 * already searched (start with 0, keep it while the data only grows).
 * On KS_LINE_FOUND: *line_len is the length without LF or CRLF and
 * *consumed the length including the terminator.  A line whose content is
 * longer than max is KS_LINE_TOO_LONG even if its LF is there.
 */
enum ks_line_result ks_line_find(const char *data, size_t len, size_t max,
				 size_t *scanned, size_t *line_len,
				 size_t *consumed);

#endif
