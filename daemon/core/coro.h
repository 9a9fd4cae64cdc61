/*
 * Coroutines: one per handler (plus those it spawns), each on its own
 * mmap'd stack with a PROT_NONE guard page below it.  Switching saves and
 * restores the callee-saved registers in a few instructions (assembly on
 * x86-64 and AArch64); it makes no system call.  Other architectures fall
 * back to ucontext, whose swapcontext() costs a sigprocmask per switch.
 *
 * Only the scheduler (the worker's main context, i.e. libev callbacks)
 * resumes coroutines; a coroutine gives control back with ks_coro_suspend().
 * ASan and valgrind are told about every stack and every switch.
 */
#ifndef KS_CORO_H
#define KS_CORO_H

#include <stdbool.h>
#include <stddef.h>

struct ks_sched;

enum ks_coro_state {
	KS_CORO_NEW,       /* created, not yet run */
	KS_CORO_RUNNING,   /* currently executing */
	KS_CORO_SUSPENDED, /* waiting for ks_coro_wake */
	KS_CORO_QUEUED,    /* woken, waiting in the run queue */
	KS_CORO_DONE,      /* fn returned; freed by the scheduler */
};

typedef void (*ks_coro_fn)(void *arg);
/* Called in the main context after a coroutine's fn returned, just before
 * its stack is recycled. */
typedef void (*ks_coro_done_fn)(void *udata);

struct ks_coro {
	void *sp; /* saved stack pointer while not running */
	struct ks_sched *sched;
	ks_coro_fn fn;
	void *arg;
	ks_coro_done_fn done;
	void *udata;           /* owner (a connection), for done */
	enum ks_coro_state state;
	int wake_status;       /* what ks_coro_suspend returns */
	struct ks_coro *next;  /* run queue / free list link */
	char *map;             /* the whole mapping: guard page + stack */
	size_t map_size;
	unsigned vg_stack_id;  /* valgrind stack registration */
	void *saved;           /* hibernating: the live stack bytes */
	size_t saved_len;
	void *asan_fake;       /* ASan fake stack while switched out */
	int tag;               /* what it runs, for the crash record (the
				* listener's index); -1: unknown */
#ifndef KS_CORO_ASM
	void *uctx; /* ucontext fallback */
#endif
};

struct ks_sched {
	struct ks_coro *current; /* NULL in the main context */
	void *main_sp;
	void *main_uctx;
	struct ks_coro *runq_head, *runq_tail;
	struct ks_coro *yieldq_head, *yieldq_tail; /* yielded this round */
	struct ks_coro *free_list; /* finished coroutines kept with their stacks */
	size_t nfree, max_free;
	size_t stack_size;         /* usable bytes per coroutine */
	size_t live;               /* coroutines not yet DONE */
	const void *main_stack_bottom; /* for ASan, learnt on first switch */
	size_t main_stack_size;
	/* The crash record (proc/scoreboard.h): while a coroutine runs, its
	 * tag is stored here, -1 while the main context runs.  NULL: none. */
	volatile int *running;
};

/* stack_size is rounded up to whole pages (minimum 16 KiB). */
void ks_sched_init(struct ks_sched *s, size_t stack_size);
/* New coroutines get stacks of this size (rounded as above); cached
 * stacks of the old size are dropped. */
void ks_sched_set_stack_size(struct ks_sched *s, size_t stack_size);
/* Frees cached stacks.  No coroutine may be alive. */
void ks_sched_destroy(struct ks_sched *s);

/* Creates a coroutine that will run fn(arg); it does not run until resumed
 * or woken.  NULL if the stack cannot be mapped. */
struct ks_coro *ks_coro_new(struct ks_sched *s, ks_coro_fn fn, void *arg,
			    ks_coro_done_fn done, void *udata);

/*
 * Pages out a suspended coroutine's stack: its live part (from the saved
 * stack pointer to the top, at most max_live bytes) is copied to a
 * right-sized heap block and the stack's pages are given back to the
 * kernel; ks_coro_resume copies it back first.  The addresses stay the
 * same, so pointers into the stack remain valid, but nothing may read
 * them while the coroutine hibernates.  Returns 1 if it hibernated.
 * Costs one madvise(); meant for coroutines idle for a while.
 */
int ks_coro_hibernate(struct ks_coro *co, size_t max_live);

/* The coroutine a signal handler was interrupted in, if its address is in
 * that coroutine's guard page: a stack overflow.  Async-signal-safe. */
bool ks_coro_guard_hit(const struct ks_sched *s, const void *addr);

/* Main context only: runs co until it suspends or finishes.  A finished
 * coroutine's done hook is called and its stack recycled before this
 * returns. */
void ks_coro_resume(struct ks_coro *co, int status);

/* Coroutine context only: switches back to the scheduler until someone
 * wakes this coroutine; returns the status passed to the waker. */
int ks_coro_suspend(struct ks_sched *s);

/* Coroutine context only: lets the loop run other callbacks and
 * coroutines, and continues at the ks_sched_run_queue after the current
 * one, i.e. after the loop has polled once more.  For fairness when a
 * coroutine would otherwise never wait. */
void ks_coro_yield(struct ks_sched *s);

/* Any context: makes a suspended coroutine runnable with `status`.  From
 * the main context it runs at once (like ks_coro_resume); from a coroutine
 * it is queued and runs at the next ks_sched_run_queue. */
void ks_coro_wake(struct ks_coro *co, int status);

/* Main context: runs queued coroutines until the queue is empty (those
 * they wake included), then queues the ones that yielded meanwhile for the
 * next call.  Returns true if any did: the caller must not block in its
 * next poll. */
bool ks_sched_run_queue(struct ks_sched *s);

static inline struct ks_coro *
ks_coro_self(const struct ks_sched *s)
{
	return s->current;
}

#endif
