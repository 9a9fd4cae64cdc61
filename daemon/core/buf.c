#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

void
ks_bufpool_init(struct ks_bufpool *p, size_t max_cached)
{
	memset(p, 0, sizeof(*p));
	p->max = max_cached;
	p->blocks = max_cached ? calloc(max_cached, sizeof(void *)) : NULL;
	if (p->blocks == NULL)
		p->max = 0;
}

void
ks_bufpool_destroy(struct ks_bufpool *p)
{
	while (p->n > 0)
		free(p->blocks[--p->n]);
	free(p->blocks);
	p->blocks = NULL;
	p->max = 0;
}

void
ks_bufpool_set_cap(struct ks_bufpool *p, size_t bytes)
{
	p->cap = bytes;
}

/* May the pool's buffers hold `more` bytes more? */
static bool
pool_allows(const struct ks_bufpool *p, size_t more)
{
	return p == NULL || p->cap == 0 || p->used + more <= p->cap;
}

static void
pool_account(struct ks_bufpool *p, size_t add, size_t sub)
{
	if (p == NULL)
		return;
	p->used = p->used + add - sub;
	if (p->used > p->peak)
		p->peak = p->used;
}

static char *
pool_get(struct ks_bufpool *p)
{
	char *b;

	if (!pool_allows(p, KS_BUF_BLOCK))
		return NULL;
	b = p != NULL && p->n > 0 ? p->blocks[--p->n] : malloc(KS_BUF_BLOCK);
	if (b != NULL)
		pool_account(p, KS_BUF_BLOCK, 0);
	return b;
}

static void
buf_drop_memory(struct ks_buf *b, struct ks_bufpool *p)
{
	if (b->data == NULL)
		return;
	pool_account(p, 0, b->cap);
	if (b->cap == KS_BUF_BLOCK && p != NULL && p->n < p->max)
		p->blocks[p->n++] = b->data;
	else
		free(b->data);
	b->data = NULL;
	b->cap = 0;
}

int
ks_buf_reserve(struct ks_buf *b, struct ks_bufpool *p, size_t need,
	       size_t limit, bool nomove)
{
	size_t want, cap;
	char *n;

	if (ks_buf_tailroom(b) >= need)
		return 0;
	if (b->len == 0) {
		b->off = 0;
		if (b->cap >= need)
			return 0;
	}
	if (nomove && b->len > 0)
		return -1;
	/* (need near SIZE_MAX must not wrap around to a small want) */
	if (need > limit || b->len > limit - need)
		return -1;
	want = b->len + need;
	if (want <= b->cap) {
		/* Enough room once the data moves to the front. */
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
		return 0;
	}
	if (b->data == NULL && want <= KS_BUF_BLOCK) {
		if ((b->data = pool_get(p)) == NULL)
			return KS_BUF_NOMEM;
		b->cap = KS_BUF_BLOCK;
		b->off = 0;
		return 0;
	}
	cap = b->cap ? b->cap : KS_BUF_BLOCK;
	/* Doubling stops at the limit: a limit near SIZE_MAX must not make
	 * cap wrap to 0 and loop for ever. */
	while (cap < want && cap <= limit / 2)
		cap *= 2;
	if (cap < want)
		cap = want;
	if (cap > limit)
		cap = limit;
	/* The old memory goes when the new is there: both count. */
	if (!pool_allows(p, cap) || (n = malloc(cap)) == NULL)
		return KS_BUF_NOMEM;
	if (b->len > 0)
		memcpy(n, b->data + b->off, b->len);
	buf_drop_memory(b, p);
	b->data = n;
	b->cap = cap;
	b->off = 0;
	pool_account(p, cap, 0);
	return 0;
}

int
ks_buf_append(struct ks_buf *b, struct ks_bufpool *p, const void *src,
	      size_t n, size_t limit)
{
	int rc;

	if (n == 0)
		return 0;
	if ((rc = ks_buf_reserve(b, p, n, limit, false)) != 0)
		return rc;
	memcpy(ks_buf_tail(b), src, n);
	b->len += n;
	return 0;
}

void
ks_buf_consume(struct ks_buf *b, size_t n)
{
	if (n >= b->len) {
		b->off = 0;
		b->len = 0;
		return;
	}
	b->off += n;
	b->len -= n;
}

void
ks_buf_release(struct ks_buf *b, struct ks_bufpool *p)
{
	if (b->len == 0)
		buf_drop_memory(b, p);
}

void
ks_buf_free(struct ks_buf *b, struct ks_bufpool *p)
{
	buf_drop_memory(b, p);
	b->off = 0;
	b->len = 0;
}

enum ks_line_result
ks_line_find(const char *data, size_t len, size_t max, size_t *scanned,
	     size_t *line_len, size_t *consumed)
{
	size_t from = *scanned < len ? *scanned : len;
	const char *lf = memchr(data + from, '\n', len - from);
	size_t content;

	if (lf == NULL) {
		*scanned = len;
		/* Even a CR arriving next could not make it fit. */
		if (len > max + 1 || (len == max + 1 && data[len - 1] != '\r'))
			return KS_LINE_TOO_LONG;
		return KS_LINE_MORE;
	}
	content = (size_t)(lf - data);
	*consumed = content + 1;
	if (content > 0 && data[content - 1] == '\r')
		content--;
	*scanned = 0;
	if (content > max)
		return KS_LINE_TOO_LONG;
	*line_len = content;
	return KS_LINE_FOUND;
}
