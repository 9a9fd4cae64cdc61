/*
 * The shared limits zone: see zone.h.
 */
#include "config.h"

#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "zone.h"
#include "log.h"
#include "scoreboard.h"

#define ZONE_MAGIC 0x6b737a6f6e653031ULL /* "kszone01" */
#define WAYS 8
#define BUCKETS 4096 /* per table: 32768 words */
#define WORDS (BUCKETS * WAYS)

struct zone_hdr {
	uint64_t magic;
	uint64_t key[2];  /* SipHash key */
	int64_t total;    /* connections open, every worker (atomic) */
	uint64_t overflows; /* keys that found no room (atomic) */
};

/* One worker's share of the counts, so that its death can be undone. */
struct journal {
	int64_t total;
	uint32_t counts[WORDS];
};

#define HDR_SIZE 4096
#define TABLE_SIZE ((size_t)WORDS * sizeof(uint64_t))
#define JOURNAL_SIZE \
	(((sizeof(struct journal) + 4095) / 4096) * 4096)
#define OFF_COUNTS HDR_SIZE
#define OFF_RATES (OFF_COUNTS + TABLE_SIZE)
#define OFF_JOURNALS (OFF_RATES + TABLE_SIZE)
#define ZONE_SIZE (OFF_JOURNALS + (size_t)KS_SB_SLOTS * JOURNAL_SIZE)

_Static_assert(sizeof(struct zone_hdr) <= HDR_SIZE, "zone header");

static struct zone_hdr *
hdr(const struct ks_zone *z)
{
	return (struct zone_hdr *)(void *)z->base;
}

static uint64_t *
table(const struct ks_zone *z, size_t off)
{
	return (uint64_t *)(void *)(z->base + off);
}

static struct journal *
journal(const struct ks_zone *z, unsigned slot)
{
	return (struct journal *)(void *)(z->base + OFF_JOURNALS +
					  (size_t)slot * JOURNAL_SIZE);
}

/* ---- SipHash-2-4 (Aumasson and Bernstein) ------------------------------ */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                     \
	do {                                                         \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;               \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;               \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
	} while (0)

static uint64_t
siphash(const uint64_t key[2], const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t v0 = 0x736f6d6570736575ULL ^ key[0];
	uint64_t v1 = 0x646f72616e646f6dULL ^ key[1];
	uint64_t v2 = 0x6c7967656e657261ULL ^ key[0];
	uint64_t v3 = 0x7465646279746573ULL ^ key[1];
	uint64_t m, b = (uint64_t)len << 56;
	size_t i, left = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, p + i, 8); /* little-endian hosts; any order works
				       * for a hash that stays in the host */
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (i = 0; i < left; i++)
		b |= (uint64_t)p[len - left + i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the zone ---------------------------------------------------------- */

static int
zone_map(struct ks_zone *z, int fd)
{
	void *p = mmap(NULL, ZONE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED) {
		ks_log_errno(KS_LOG_ERR, "limits zone: mmap");
		return -1;
	}
	z->fd = fd;
	z->base = p;
	return 0;
}

int
ks_zone_create(struct ks_zone *z)
{
	struct zone_hdr *h;
	int fd;

	z->fd = -1;
	z->base = NULL;
	/* Sparse: only the buckets and journals in use take memory. */
	if ((fd = memfd_create("ksockd-limits", MFD_CLOEXEC)) < 0 ||
	    ftruncate(fd, (off_t)ZONE_SIZE) != 0) {
		ks_log_errno(KS_LOG_ERR, "limits zone: memfd");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (zone_map(z, fd) != 0) {
		close(fd);
		return -1;
	}
	h = hdr(z);
	if (getrandom(h->key, sizeof(h->key), 0) != (ssize_t)sizeof(h->key)) {
		ks_log_errno(KS_LOG_ERR, "limits zone: getrandom");
		ks_zone_destroy(z);
		return -1;
	}
	h->magic = ZONE_MAGIC;
	return 0;
}

int
ks_zone_attach(struct ks_zone *z, int fd)
{
	z->fd = -1;
	z->base = NULL;
	if (zone_map(z, fd) != 0)
		return -1;
	if (hdr(z)->magic != ZONE_MAGIC) {
		ks_log(KS_LOG_ERR, "limits zone: not a zone of this version");
		munmap(z->base, ZONE_SIZE);
		z->base = NULL;
		return -1;
	}
	return 0;
}

void
ks_zone_destroy(struct ks_zone *z)
{
	if (z->base != NULL)
		munmap(z->base, ZONE_SIZE);
	if (z->fd >= 0)
		close(z->fd);
	z->base = NULL;
	z->fd = -1;
}

/* ---- keys ---------------------------------------------------------------- */

uint64_t
ks_zone_name_key(const struct ks_zone *z, const char *name)
{
	static const uint64_t nokey[2];

	return siphash(z != NULL && z->base != NULL ? hdr(z)->key : nokey,
		       name, strlen(name));
}

bool
ks_zone_source(const struct sockaddr *sa, uint64_t *src)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		uint32_t a;

		memcpy(&a, &in->sin_addr, 4);
		*src = 0xffffffff00000000ULL | a; /* apart from any /64 */
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		uint32_t a;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			memcpy(&a, &in6->sin6_addr.s6_addr[12], 4);
			*src = 0xffffffff00000000ULL | a;
		} else {
			memcpy(src, &in6->sin6_addr, 8); /* the /64 */
		}
		return true;
	}
	return false;
}

struct zkey {
	uint64_t bucket; /* index of the bucket's first word */
	uint32_t fp;     /* fingerprint, the word's high half */
};

static struct zkey
key_of(const struct ks_zone *z, enum ks_zone_domain d, uint64_t lkey,
       uint64_t src)
{
	uint64_t in[3] = {(uint64_t)d, lkey, src};
	uint64_t h = siphash(hdr(z)->key, in, sizeof(in));
	struct zkey k = {.bucket = (h & (BUCKETS - 1)) * WAYS,
			 .fp = (uint32_t)(h >> 32)};

	return k;
}

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define CAS(p, oldp, new)                                            \
	__atomic_compare_exchange_n((p), (oldp), (new), false,         \
				    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

static void
overflow(struct ks_zone *z)
{
	__atomic_add_fetch(&hdr(z)->overflows, 1, __ATOMIC_RELAXED);
}

/* ---- the total ------------------------------------------------------------ */

enum ks_zone_result
ks_zone_total_acquire(struct ks_zone_user *u, uint64_t limit)
{
	struct zone_hdr *h;
	int64_t cur;

	if (u->zone == NULL)
		return KS_ZONE_OK;
	h = hdr(u->zone);
	cur = LOAD(&h->total);
	do {
		if (limit > 0 && cur >= (int64_t)limit)
			return KS_ZONE_OVER;
	} while (!CAS(&h->total, &cur, cur + 1));
	journal(u->zone, u->slot)->total++;
	return KS_ZONE_OK;
}

void
ks_zone_total_release(struct ks_zone_user *u)
{
	if (u->zone == NULL)
		return;
	__atomic_sub_fetch(&hdr(u->zone)->total, 1, __ATOMIC_ACQ_REL);
	journal(u->zone, u->slot)->total--;
}

int64_t
ks_zone_total(const struct ks_zone *z)
{
	return LOAD(&hdr(z)->total);
}

/* ---- counts ---------------------------------------------------------------
 * A word: fingerprint << 32 | count.  Count 0: free, whatever the
 * fingerprint.  A word is only ever taken over while free, so a count
 * above 0 keeps its key. */

#define W_FP(w) ((uint32_t)((w) >> 32))
#define W_COUNT(w) ((uint32_t)(w))

enum ks_zone_result
ks_zone_count_acquire(struct ks_zone_user *u, enum ks_zone_domain d,
		      uint64_t lkey, uint64_t src, uint32_t limit,
		      struct ks_zclaim *cl)
{
	uint64_t *t, w, want;
	struct zkey k;
	int i, freew;

	cl->idx = -1;
	if (u->zone == NULL)
		return KS_ZONE_OK;
	t = table(u->zone, OFF_COUNTS);
	k = key_of(u->zone, d, lkey, src);
retry:
	freew = -1;
	for (i = 0; i < WAYS; i++) {
		w = LOAD(&t[k.bucket + i]);
		if (W_COUNT(w) == 0) {
			if (freew < 0)
				freew = i;
			continue;
		}
		if (W_FP(w) != k.fp)
			continue;
		if (limit > 0 && W_COUNT(w) >= limit)
			return KS_ZONE_OVER;
		if (!CAS(&t[k.bucket + i], &w, w + 1))
			goto retry;
		cl->idx = (int32_t)(k.bucket + i);
		goto counted;
	}
	if (freew < 0) {
		overflow(u->zone);
		return KS_ZONE_FULL;
	}
	w = LOAD(&t[k.bucket + freew]);
	want = (uint64_t)k.fp << 32 | 1;
	if (W_COUNT(w) != 0 || !CAS(&t[k.bucket + freew], &w, want))
		goto retry;
	cl->idx = (int32_t)(k.bucket + freew);
counted:
	journal(u->zone, u->slot)->counts[cl->idx]++;
	return KS_ZONE_OK;
}

void
ks_zone_count_release(struct ks_zone_user *u, struct ks_zclaim *cl)
{
	if (u->zone == NULL || cl->idx < 0)
		return;
	/* The count is above 0 (ours is in it): no borrow from the key. */
	__atomic_sub_fetch(&table(u->zone, OFF_COUNTS)[cl->idx], 1,
			   __ATOMIC_ACQ_REL);
	journal(u->zone, u->slot)->counts[cl->idx]--;
	cl->idx = -1;
}

void
ks_zone_release_slot(struct ks_zone *z, unsigned slot)
{
	struct journal *j = journal(z, slot);
	uint64_t *t = table(z, OFF_COUNTS);
	size_t i;

	if (j->total != 0)
		__atomic_sub_fetch(&hdr(z)->total, j->total, __ATOMIC_ACQ_REL);
	for (i = 0; i < WORDS; i++)
		if (j->counts[i] != 0)
			__atomic_sub_fetch(&t[i], j->counts[i], __ATOMIC_ACQ_REL);
	/* Zeroes it and gives its pages back. */
	if (fallocate(z->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(OFF_JOURNALS + (size_t)slot * JOURNAL_SIZE),
		      (off_t)JOURNAL_SIZE) != 0)
		memset(j, 0, sizeof(*j));
}

/* ---- rates ------------------------------------------------------------------
 * The generic cell rate algorithm: a word holds a 20-bit fingerprint and
 * the source's theoretical arrival time, 44 bits of microseconds of the
 * monotonic clock (wrapping every 203 days: times are compared as
 * differences).  An event at `now` is allowed when tat - now <= tau, the
 * burst tolerance, and moves tat to max(tat, now) + T, T = 1/rate.  A word
 * whose tat has passed is a full bucket: free for any key. */

#define R_BITS 44
#define R_MASK ((1ULL << R_BITS) - 1)
#define R_FP(w) ((uint32_t)((w) >> R_BITS))
#define R_TAT(w) ((w) & R_MASK)
#define R_AHEAD_MAX 3600000000LL /* an hour ahead: a stale word */

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000) &
	       R_MASK;
}

/* tat - now as a signed number of microseconds. */
static int64_t
ahead(uint64_t tat, uint64_t now)
{
	uint64_t d = (tat - now) & R_MASK;

	return d >= (1ULL << (R_BITS - 1)) ? (int64_t)d - (1LL << R_BITS)
					   : (int64_t)d;
}

static bool
rate_free(uint64_t w, uint64_t now)
{
	int64_t a = ahead(R_TAT(w), now);

	return w == 0 || a <= 0 || a > R_AHEAD_MAX;
}

enum ks_zone_result
ks_zone_rate(struct ks_zone_user *u, enum ks_zone_domain d, uint64_t lkey,
	     uint64_t src, uint32_t rate)
{
	uint64_t *t, w, now, tat, interval, tau, fp;
	struct zkey k;
	int i, freew;

	if (u->zone == NULL || rate == 0)
		return KS_ZONE_OK;
	t = table(u->zone, OFF_RATES);
	k = key_of(u->zone, d, lkey, src);
	fp = k.fp >> (32 - (64 - R_BITS));
	interval = KS_MAX(1000000 / rate, 1u);
	tau = interval * (rate - 1); /* a burst of `rate` events */
retry:
	now = now_us();
	freew = -1;
	for (i = 0; i < WAYS; i++) {
		w = LOAD(&t[k.bucket + i]);
		if (rate_free(w, now)) {
			if (freew < 0)
				freew = i;
			if (R_FP(w) != fp)
				continue;
		}
		if (R_FP(w) != fp)
			continue;
		tat = rate_free(w, now) ? now : R_TAT(w);
		if (ahead(tat, now) > (int64_t)tau)
			return KS_ZONE_OVER;
		if (!CAS(&t[k.bucket + i], &w,
			 fp << R_BITS | ((tat + interval) & R_MASK)))
			goto retry;
		return KS_ZONE_OK;
	}
	if (freew < 0) {
		overflow(u->zone);
		return KS_ZONE_FULL;
	}
	w = LOAD(&t[k.bucket + freew]);
	if (!rate_free(w, now) ||
	    !CAS(&t[k.bucket + freew], &w,
		 fp << R_BITS | ((now + interval) & R_MASK)))
		goto retry;
	return KS_ZONE_OK;
}
