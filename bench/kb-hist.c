/*
 * Log-linear latency histogram (the HdrHistogram layout): recording is an
 * index computation and an increment, percentiles walk the buckets.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "kb.h"

void
kb_hist_reset(struct kb_hist *h)
{
	memset(h, 0, sizeof(*h));
}

/* Lowest value of bucket i and its width, both in ns. */
static void
bucket_range(unsigned i, uint64_t *lo, uint64_t *width)
{
	const unsigned half = 1u << (KB_HIST_SUB_BITS - 1);
	unsigned e;

	if (i < (1u << KB_HIST_SUB_BITS)) {
		*lo = i;
		*width = 1;
		return;
	}
	e = i / half - 1;
	*lo = (uint64_t)(i - e * half) << e;
	*width = (uint64_t)1 << e;
}

double
kb_hist_percentile_us(const struct kb_hist *h, double p)
{
	uint64_t want, seen = 0, lo, width;
	unsigned i;

	if (h->count == 0)
		return 0;
	want = (uint64_t)ceil(p * (double)h->count);
	if (want < 1)
		want = 1;
	for (i = 0; i < KB_HIST_BUCKETS; i++) {
		seen += h->n[i];
		if (seen >= want)
			break;
	}
	if (i == KB_HIST_BUCKETS)
		i--;
	bucket_range(i, &lo, &width);
	return ((double)lo + (double)(width - 1) / 2) / 1000.0;
}
