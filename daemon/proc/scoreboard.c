/*
 * The scoreboard: see scoreboard.h.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "scoreboard.h"

#define SB_SIZE ((size_t)KS_SB_SLOTS * KS_SB_SLOT_SIZE)

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
	ks_slot_set_state(ks_sb_slot(sb, 0), KS_SLOT_TOTALS);
	return 0;
}

int
ks_sb_attach(struct ks_scoreboard *sb, int fd)
{
	sb->fd = -1;
	sb->base = NULL;
	return sb_map(sb, fd);
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
		return (int)i;
	}
	return -1;
}

/* Every counter of struct ks_stats (all uint64_t), the gauges only when
 * with_gauges. */
static void
add_stats(struct ks_stats *sum, const struct ks_stats *s, int with_gauges)
{
	const uint64_t *src = (const uint64_t *)(const void *)s;
	uint64_t *dst = (uint64_t *)(void *)sum;
	size_t i, n = sizeof(*s) / sizeof(uint64_t);

	for (i = 0; i < n; i++) {
		if (!with_gauges &&
		    i == offsetof(struct ks_stats, active) / sizeof(uint64_t))
			continue;
		dst[i] += src[i];
	}
}

void
ks_sb_release(struct ks_scoreboard *sb, unsigned i)
{
	struct ks_slot *s = ks_sb_slot(sb, i);

	add_stats(ks_sb_totals(sb), &s->stats, 0);
	memset(&s->stats, 0, sizeof(s->stats));
	ks_slot_set_state(s, KS_SLOT_FREE);
}

void
ks_sb_add(const struct ks_slot *s, struct ks_stats *sum)
{
	add_stats(sum, &s->stats, 1);
}
