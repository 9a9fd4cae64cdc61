/*
 * The name resolver: a small pool of threads per worker that run the
 * blocking getaddrinfo() for names, so the event loop never waits on DNS.
 *
 * Bounded on purpose: getaddrinfo cannot be interrupted, so a lookup whose
 * caller gave up still holds its thread until the name server answers.
 * At most KS_RESOLVER_THREADS threads per worker, started one by one at
 * the first lookups that find no idle thread (a worker that never resolves
 * a name has none), and at most KS_RESOLVER_QUEUE lookups waiting for a
 * thread; beyond that a lookup fails at once.  Results come back through
 * an ev_async and the waiting coroutine is woken in the main context.
 *
 * The pool is per process: it is created after a fork, in the process that
 * uses it (a master process never resolves), and a forked child must not
 * use a pool inherited from its parent (its threads are not there).
 */
#ifndef KS_RESOLVER_H
#define KS_RESOLVER_H

struct addrinfo;
struct ks_coro;
struct ks_worker;
struct ks_lookup;

#define KS_RESOLVER_THREADS 4 /* threads per worker, at most */
#define KS_RESOLVER_QUEUE 256 /* lookups waiting for a thread, at most */

/*
 * The blocking calls the pool makes: getaddrinfo and freeaddrinfo unless a
 * test replaces them (to block lookups deterministically).  `lookup` runs
 * on a pool thread and must return results that freeaddrinfo can free
 * (they reach callers of ks_resolve); `release` frees the results of
 * lookups nobody waits for any more.  Each lookup copies the pair when it
 * is queued, so changing it affects later lookups only.
 */
struct ks_resolver_fns {
	int (*lookup)(const char *host, const char *port,
		      const struct addrinfo *hints, struct addrinfo **res);
	void (*release)(struct addrinfo *res);
};
extern struct ks_resolver_fns ks_resolver_fns;

/*
 * Main context: queues the lookup of host:port (hints: socktype and
 * AI_ADDRCONFIG) on wk's pool, creating the pool or another thread if no
 * thread is idle and fewer than KS_RESOLVER_THREADS run.  When the result
 * is in, `co` (which must be suspended by then, waiting for it) is woken
 * with KS_OK; then call ks_lookup_result.  If it is woken for another
 * reason, call ks_lookup_abandon instead.  Returns KS_OK with *out set,
 * KS_ENOMEM (no memory, or no thread could be started), or KS_ERESOLVE
 * when KS_RESOLVER_QUEUE lookups are already waiting (logged, at most
 * every few seconds).
 */
int ks_resolver_submit(struct ks_worker *wk, const char *host, const char *port,
		       int socktype, struct ks_coro *co,
		       struct ks_lookup **out);

/* After the waiter was woken with KS_OK: getaddrinfo's return value (0, or
 * an EAI_* code; with EAI_SYSTEM errno is set to the thread's errno) and on
 * 0 *res, the caller's to freeaddrinfo.  Frees lk. */
int ks_lookup_result(struct ks_lookup *lk, struct addrinfo **res);

/* The waiter gives up (deadline, cancel): its coroutine is never woken for
 * lk.  A lookup no thread has started is dropped from the queue; one whose
 * getaddrinfo is running is freed, result and all, when that returns. */
void ks_lookup_abandon(struct ks_lookup *lk);

/*
 * Stops wk's pool (no-op without one); ks_worker_destroy calls it.  Lookups
 * still queued or whose results are not yet delivered are freed, idle
 * threads are woken and joined.  A thread still blocked in getaddrinfo is
 * detached: it owns its lookup and a reference on the pool's shared state,
 * frees both when getaddrinfo returns, and never touches the worker or its
 * loop again.  Waiters are not woken (the worker is going away).
 */
void ks_resolver_destroy(struct ks_worker *wk);

#endif
