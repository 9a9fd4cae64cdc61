/*
 * The scoreboard: see scoreboard.h.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "scoreboard.h"

#define PAGE 4096
#define HDR_SIZE ((sizeof(struct ks_sb_header) + PAGE - 1) / PAGE * PAGE)
#define SLOTS_SIZE ((size_t)KS_SB_SLOTS * KS_SB_SLOT_SIZE)
#define ROW_SIZE ((size_t)KS_SB_LISTENERS * sizeof(struct ks_stats))
#define SB_SIZE (HDR_SIZE + SLOTS_SIZE + (size_t)KS_SB_SLOTS * ROW_SIZE)
/* "ksksb" and the layout's version: bump it with any change above */
#define SB_MAGIC (0x6b736b7362000000ull | 2u)

_Static_assert(sizeof(struct ks_slot) <= KS_SB_SLOT_SIZE,
	       "a slot must fit its page");

static int
sb_map(struct ks_scoreboard *sb, int fd)
{
	void *p = mmap(NULL, SB_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED) {
		ks_log_errno(KS_LOG_ERR, "scoreboard: mmap");
		return -1;
	}
	sb->fd = fd;
	sb->base = p;
	sb->hdr = p;
	sb->slots = sb->base + HDR_SIZE;
	sb->rows = (struct ks_stats *)(void *)(sb->slots + SLOTS_SIZE);
	return 0;
}

int
ks_sb_create(struct ks_scoreboard *sb)
{
	int fd;

	sb->fd = -1;
	sb->base = NULL;
	/* Sparse: only the pages of slots in use ever take memory. */
	if ((fd = memfd_create("ksockd-scoreboard", MFD_CLOEXEC)) < 0 ||
	    ftruncate(fd, (off_t)SB_SIZE) != 0) {
		ks_log_errno(KS_LOG_ERR, "scoreboard: memfd");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (sb_map(sb, fd) != 0) {
		close(fd);
		return -1;
	}
	sb->hdr->magic = SB_MAGIC;
	sb->hdr->hiwater = 1;
	sb->hdr->started = (double)time(NULL);
	ks_slot_set_state(ks_sb_slot(sb, 0), KS_SLOT_TOTALS);
	return 0;
}

int
ks_sb_attach(struct ks_scoreboard *sb, int fd)
{
	struct stat st;

	sb->fd = -1;
	sb->base = NULL;
	if (fstat(fd, &st) != 0 || (size_t)st.st_size != SB_SIZE) {
		ks_log(KS_LOG_ERR, "scoreboard: the one handed on has another "
		       "layout (an older ksockd?): restart instead of upgrading");
		return -1;
	}
	if (sb_map(sb, fd) != 0)
		return -1;
	if (sb->hdr->magic != SB_MAGIC) {
		ks_log(KS_LOG_ERR, "scoreboard: the one handed on has another "
		       "layout (an older ksockd?): restart instead of upgrading");
		munmap(sb->base, SB_SIZE);
		sb->base = NULL;
		sb->fd = -1;
		return -1;
	}
	return 0;
}

void
ks_sb_destroy(struct ks_scoreboard *sb)
{
	if (sb->base != NULL)
		munmap(sb->base, SB_SIZE);
	if (sb->fd >= 0)
		close(sb->fd);
	sb->base = NULL;
	sb->fd = -1;
}

int
ks_sb_take(struct ks_scoreboard *sb, unsigned generation, unsigned number)
{
	struct ks_slot *s;
	unsigned i;

	for (i = 1; i < KS_SB_SLOTS; i++) {
		s = ks_sb_slot(sb, i);
		if (ks_slot_state(s) != KS_SLOT_FREE)
			continue;
		memset(s, 0, sizeof(*s));
		s->generation = generation;
		s->number = number;
		s->running = -1;
		ks_slot_set_state(s, KS_SLOT_STARTING);
		if (i >= sb->hdr->hiwater)
			__atomic_store_n(&sb->hdr->hiwater, i + 1,
					 __ATOMIC_RELEASE);
		sb->hdr->worker_starts++;
		return (int)i;
	}
	return -1;
}

/* Every counter of struct ks_stats (all uint64_t), the gauges only when
 * with_gauges.  The loads are atomic: the owner writes while we read. */
static void
add_stats(struct ks_stats *sum, const struct ks_stats *s, int with_gauges)
{
	const uint64_t *src = (const uint64_t *)(const void *)s;
	uint64_t *dst = (uint64_t *)(void *)sum;
	size_t i, n = with_gauges ? KS_STATS_N : KS_STATS_GAUGE0;

	for (i = 0; i < n; i++)
		dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void
ks_sb_release(struct ks_scoreboard *sb, unsigned i)
{
	struct ks_slot *s = ks_sb_slot(sb, i);
	struct ks_stats *row = ks_sb_row(sb, i), *totals = ks_sb_row(sb, 0);
	unsigned id;

	/* Readers retry while seq is odd or has moved (ks_sb_sum). */
	__atomic_store_n(&sb->hdr->seq, sb->hdr->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	add_stats(ks_sb_totals(sb), &s->stats, 0);
	memset(&s->stats, 0, sizeof(s->stats));
	for (id = 0; id < KS_SB_LISTENERS; id++)
		if (sb->hdr->dir[id].used) {
			add_stats(&totals[id], &row[id], 0);
			memset(&row[id], 0, sizeof(row[id]));
		}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&sb->hdr->seq, sb->hdr->seq + 1, __ATOMIC_RELEASE);
	ks_slot_set_state(s, KS_SLOT_FREE);
}

void
ks_sb_sum(const struct ks_scoreboard *sb, struct ks_stats *daemon,
	  const unsigned *ids, size_t n, struct ks_stats *out)
{
	const struct ks_sb_header *h = sb->hdr;
	uint32_t seq, top, tries = 0;
	size_t k;
	unsigned i;

	for (;;) {
		while ((seq = __atomic_load_n(&h->seq, __ATOMIC_ACQUIRE)) & 1)
			sched_yield();
		if (daemon != NULL)
			memset(daemon, 0, sizeof(*daemon));
		if (n > 0)
			memset(out, 0, n * sizeof(*out));
		top = __atomic_load_n(&h->hiwater, __ATOMIC_ACQUIRE);
		/* slot 0 and row 0: the totals (slot 0's gauges are 0) */
		for (i = 0; i < top && i < KS_SB_SLOTS; i++) {
			if (daemon != NULL)
				add_stats(daemon, &ks_sb_slot(sb, i)->stats, 1);
			for (k = 0; k < n; k++)
				if (ids[k] < KS_SB_LISTENERS)
					add_stats(&out[k],
						  &ks_sb_row(sb, i)[ids[k]], 1);
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&h->seq, __ATOMIC_RELAXED) == seq ||
		    ++tries > 100)
			return;
	}
}

void
ks_sb_assign(struct ks_scoreboard *sb, struct ks_conf *conf,
	     unsigned oldest_live)
{
	struct ks_sb_header *h = sb->hdr;
	struct ks_lconf *lc;
	unsigned id, free_id, s;
	size_t i;

	for (i = 0; i < conf->nlisteners; i++) {
		lc = &conf->listeners[i];
		lc->stat_id = KS_STAT_NONE;
		if (strlen(lc->name) >= KS_SB_NAME) {
			ks_log(KS_LOG_WARN, "listener %.40s...: a name of %d "
			       "bytes or more has no metrics of its own",
			       lc->name, KS_SB_NAME);
			continue;
		}
		free_id = KS_STAT_NONE;
		for (id = 0; id < KS_SB_LISTENERS; id++) {
			if (h->dir[id].used &&
			    strcmp(h->dir[id].name, lc->name) == 0)
				break;
			if (free_id == KS_STAT_NONE &&
			    (!h->dir[id].used ||
			     h->dir[id].generation < oldest_live))
				free_id = id;
		}
		if (id == KS_SB_LISTENERS) {
			if ((id = free_id) == KS_STAT_NONE) {
				ks_log(KS_LOG_WARN, "listener %s: more than %d "
				       "listener names in use: it has no "
				       "metrics of its own", lc->name,
				       KS_SB_LISTENERS);
				continue;
			}
			/* Nobody alive counts under it: start afresh. */
			for (s = 0; s < h->hiwater; s++)
				memset(&ks_sb_row(sb, s)[id], 0,
				       sizeof(struct ks_stats));
			memset(h->dir[id].name, 0, KS_SB_NAME);
			memcpy(h->dir[id].name, lc->name, strlen(lc->name));
			h->dir[id].used = 1;
		}
		h->dir[id].generation = conf->generation;
		lc->stat_id = id;
	}
}
