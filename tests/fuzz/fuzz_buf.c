/* libFuzzer target for the channel buffer (ks_buf and its pool): the input
 * is a list of operations with sizes, run against a ks_buf and against a
 * model (a plain byte array); the content, the invariants (off + len <=
 * cap, tailroom after a successful reserve) and the pool's account must
 * agree after every step. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LIMIT_MAX (4 * KS_BUF_BLOCK)

static unsigned char model[LIMIT_MAX + 16];
static unsigned char src[LIMIT_MAX];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ks_bufpool pool;
	struct ks_buf b = {0};
	size_t mlen = 0, i = 0, n, limit;
	int rc;

	ks_bufpool_init(&pool, 2);
	if (size > 0)
		ks_bufpool_set_cap(&pool, data[0] % 4 == 0
						  ? 0
						  : (size_t)(data[0] % 4) * 2 *
							    KS_BUF_BLOCK);
	for (i = 1; i + 3 <= size; i += 3) {
		n = ((size_t)data[i + 1] << 8 | data[i + 2]) % (LIMIT_MAX + 1);
		limit = KS_BUF_BLOCK * (1 + data[i] % 4);
		switch (data[i] >> 5) {
		case 0:
		case 1: /* append */
			memset(src, (int)(i & 0xff), n);
			rc = ks_buf_append(&b, &pool, src, n, limit);
			if (rc == 0) {
				if (mlen + n > LIMIT_MAX)
					abort();
				memcpy(model + mlen, src, n);
				mlen += n;
			} else if (rc != -1 && rc != KS_BUF_NOMEM) {
				abort();
			} else if (rc == -1 && n > 0 && b.len + n <= limit &&
				   (pool.cap == 0)) {
				abort(); /* it fit and memory was not capped */
			}
			break;
		case 2: /* reserve */
		case 3:
			rc = ks_buf_reserve(&b, &pool, n, limit, data[i] & 1);
			if (rc == 0 && ks_buf_tailroom(&b) < n)
				abort();
			if (rc == -1 && !(data[i] & 1) && b.len + n <= limit &&
			    pool.cap == 0)
				abort();
			break;
		case 4:
		case 5: /* consume */
			n = n % (mlen + 1);
			ks_buf_consume(&b, n);
			memmove(model, model + n, mlen - n);
			mlen -= n;
			break;
		case 6:
			ks_buf_release(&b, &pool);
			if (mlen == 0 && b.data != NULL)
				abort();
			break;
		default:
			ks_buf_free(&b, &pool);
			mlen = 0;
		}
		if (b.len != mlen || b.off + b.len > b.cap ||
		    (b.len > 0 && memcmp(ks_buf_head(&b), model, mlen) != 0))
			abort();
		if (pool.used != (b.data != NULL ? b.cap : 0))
			abort(); /* one buffer: the account is its capacity */
		if (pool.cap != 0 && pool.used > pool.cap)
			abort();
	}
	ks_buf_free(&b, &pool);
	if (pool.used != 0)
		abort();
	ks_bufpool_destroy(&pool);
	return 0;
}
