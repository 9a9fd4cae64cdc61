/*
 * The scoreboard: a shared memory region with one slot per worker process,
 * in the manner of Apache's.  The master makes it (a memfd, so that it
 * survives the master re-executing itself for an upgrade) before it forks
 * any worker; a worker writes into its own slot without locks, the master
 * reads every slot:
 *  - the worker's state (starting, ready, draining),
 *  - which listener's handler runs right now, stored at every coroutine
 *    switch, and what a fatal signal hit (address, stack overflow), so
 *    that the master can say what a crashed worker was doing,
 *  - the worker's counters (struct ks_stats), which the master adds to
 *    slot 0's when the worker exits, crashes included, so that they
 *    survive the worker and, the region being a memfd, an upgrade too;
 *  - the worker's row of per-listener counters: one struct ks_stats per
 *    listener name, at the index the header's directory gives the name
 *    (row 0 holds the totals of the workers gone, like slot 0);
 *  - in a header before the slots, what the master counts (reloads,
 *    worker crashes), the listener directory and a sequence number that
 *    lets a reader (the metrics, in any worker) add everything up while
 *    the master moves a dead worker's counts into the totals.
 *
 * [header][slot 0 .. slot KS_SB_SLOTS-1][row 0 .. row KS_SB_SLOTS-1]
 */
#ifndef KS_SCOREBOARD_H
#define KS_SCOREBOARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "worker.h"

#define KS_SB_SLOTS 1024     /* workers alive at once, draining included */
#define KS_SB_SLOT_SIZE 4096 /* one page each: no false sharing */
#define KS_SB_LISTENERS 256  /* listener names counted on their own */
#define KS_SB_NAME 64        /* the longest name counted, with its NUL */
#define KS_SB_SIGNALS 65     /* worker crashes by signal number */

struct ks_sb_dirent {
	char name[KS_SB_NAME];
	uint32_t used;
	uint32_t generation; /* the newest generation with this listener */
};

/* Written by the master, read by anyone. */
struct ks_sb_header {
	uint64_t magic;        /* the layout (an upgrade checks it) */
	uint32_t hiwater;      /* slots above this were never used */
	uint32_t seq;          /* odd while a release moves counts */
	uint32_t generation;   /* the configuration serving now */
	uint32_t pad;
	double started;        /* when the daemon started (epoch seconds) */
	uint64_t reloads_ok, reloads_failed;
	uint64_t worker_starts; /* workers forked */
	/* workers that died unasked: by signal; [0]: a non-zero status */
	uint64_t worker_crashes[KS_SB_SIGNALS];
	struct ks_sb_dirent dir[KS_SB_LISTENERS];
};

enum ks_slot_state {
	KS_SLOT_FREE = 0,
	KS_SLOT_STARTING, /* forked, setting up (master) */
	KS_SLOT_READY,    /* accepting (worker) */
	KS_SLOT_DRAINING, /* stopped accepting, listeners closed (worker) */
	KS_SLOT_TOTALS,   /* slot 0: the counters of every worker gone */
};

/* fault_flags */
#define KS_FAULT_STACK 1u /* in a coroutine's guard page: a stack overflow */

struct ks_slot {
	uint32_t state;           /* enum ks_slot_state, atomic */
	int32_t pid;
	uint32_t generation;      /* of its configuration */
	uint32_t number;          /* worker #N of that generation */
	volatile int running;     /* index of the listener whose handler or
				   * hook runs now; -1: none (the loop) */
	volatile int fault_sig;   /* set by the fatal-signal handler */
	volatile uint32_t fault_flags;
	volatile uint64_t fault_addr;
	struct ks_stats stats;
};

struct ks_scoreboard {
	int fd;         /* the memfd; -1 when closed */
	char *base;     /* the region, shared */
	struct ks_sb_header *hdr; /* at base */
	char *slots;    /* slot 0 */
	struct ks_stats *rows; /* row 0 */
};

/* Master: a new, empty scoreboard.  -1 after logging. */
int ks_sb_create(struct ks_scoreboard *sb);
/* The new image after an upgrade: maps the memfd it inherited. */
int ks_sb_attach(struct ks_scoreboard *sb, int fd);
/* Unmaps and closes. */
void ks_sb_destroy(struct ks_scoreboard *sb);

struct ks_slot;
static inline struct ks_slot *
ks_sb_slot(const struct ks_scoreboard *sb, unsigned i)
{
	return (struct ks_slot *)(void *)(sb->slots + (size_t)i * KS_SB_SLOT_SIZE);
}

/* Slot i's per-listener counters: KS_SB_LISTENERS of them. */
static inline struct ks_stats *
ks_sb_row(const struct ks_scoreboard *sb, unsigned i)
{
	return sb->rows + (size_t)i * KS_SB_LISTENERS;
}

/* Master: gives every listener of conf its stat_id, by name (a name seen
 * before keeps its index and counters; a new one takes a free index or
 * one no generation since oldest_live has used, whose counters start
 * again from zero); a listener left without one (more names than
 * KS_SB_LISTENERS, or a longer name) is logged and counted in the totals
 * only. */
struct ks_conf;
void ks_sb_assign(struct ks_scoreboard *sb, struct ks_conf *conf,
		  unsigned oldest_live);

/* A consistent sum, for a reader in any process: the totals and every
 * slot's counters, into *daemon (when not NULL), and the counters of
 * listener ids[k] into out[k] for k < n; retried while the master moves
 * a dead worker's counts. */
void ks_sb_sum(const struct ks_scoreboard *sb, struct ks_stats *daemon,
	       const unsigned *ids, size_t n, struct ks_stats *out);

/* Master: a free slot (the lowest: the region stays as small as the
 * number of workers) for a worker about to be forked (state STARTING,
 * everything else zero, running -1), or -1 when all are taken. */
int ks_sb_take(struct ks_scoreboard *sb, unsigned generation,
	       unsigned number);
/* Master: the worker in slot i is gone; adds its counters to the totals
 * (the gauges excepted) and frees the slot. */
void ks_sb_release(struct ks_scoreboard *sb, unsigned i);

/* The counters of every worker gone (slot 0). */
static inline struct ks_stats *
ks_sb_totals(const struct ks_scoreboard *sb)
{
	return &ks_sb_slot(sb, 0)->stats;
}
static inline enum ks_slot_state
ks_slot_state(const struct ks_slot *s)
{
	return (enum ks_slot_state)__atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
}

static inline void
ks_slot_set_state(struct ks_slot *s, enum ks_slot_state st)
{
	__atomic_store_n(&s->state, (uint32_t)st, __ATOMIC_RELEASE);
}

#endif
