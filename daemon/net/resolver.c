/*
 * The per-worker pool of lookup threads (see resolver.h for the contract).
 *
 * Shared state, `struct ks_resolver`, is reference-counted: the worker
 * holds one reference and every thread one, and the last to let go frees
 * it.  So a thread still blocked in getaddrinfo when the worker is
 * destroyed finds the mutex, the flag that says "closed" and its own
 * lookup still there when it returns; it then frees the lookup and never
 * touches the loop again (it only calls ev_async_send under the lock while
 * the pool is open).
 *
 * A lookup moves QUEUED -> RUNNING -> DONE -> DELIVERED; whoever owns it in
 * a state frees it when its waiter gives up:
 *   QUEUED     on r->queue; ks_lookup_abandon unlinks and frees it;
 *   RUNNING    a thread holds it; abandoning sets `abandoned` and the
 *              thread frees it, result included, when getaddrinfo returns;
 *   DONE       on r->done for the async callback; abandon unlinks, frees;
 *   DELIVERED  the waiter's, freed by ks_lookup_result or _abandon.
 * Every field shared with the threads is read and written under r->lock.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "coro.h"
#include "log.h"
#include "resolver.h"
#include "util.h"
#include "worker.h"

#define FULL_LOG_EVERY 5.0 /* seconds between "queue full" messages */

struct ks_resolver_fns ks_resolver_fns = {
	.lookup = getaddrinfo,
	.release = freeaddrinfo,
};

enum lookup_state {
	LOOKUP_QUEUED,    /* waiting for a thread */
	LOOKUP_RUNNING,   /* a thread is in getaddrinfo for it */
	LOOKUP_DONE,      /* result in, on r->done */
	LOOKUP_DELIVERED, /* taken off r->done, its waiter woken */
};

struct ks_lookup {
	struct ks_resolver *r;
	enum lookup_state state;
	bool abandoned; /* RUNNING and nobody waits: the thread frees it */
	struct ks_coro *co;
	struct ks_resolver_fns fns;
	int socktype;
	int gai; /* getaddrinfo's return value */
	int err; /* errno after it, for EAI_SYSTEM */
	struct addrinfo *res;
	struct ks_lookup *prev, *next; /* r->queue or r->done */
	const char *port;              /* points into names */
	char host[];                   /* host, NUL, port, NUL */
};

struct lookup_list {
	struct ks_lookup *head, *tail;
};

struct pool_thread {
	struct ks_resolver *r;
	pthread_t tid;
	struct ks_lookup *job; /* the lookup it runs; NULL while idle */
};

struct ks_resolver {
	pthread_mutex_t lock;
	pthread_cond_t work;      /* queued lookups, or closing */
	struct lookup_list queue; /* QUEUED, oldest first */
	struct lookup_list done;  /* DONE */
	unsigned nqueued;
	unsigned nthreads; /* started; they run until closed */
	unsigned nidle;    /* waiting on `work` */
	unsigned refs;     /* the worker's and each thread's */
	bool closed;
	struct pool_thread threads[KS_RESOLVER_THREADS];
	/* main context only */
	struct ev_loop *loop;
	ev_async async;
	ev_tstamp full_logged;
	unsigned long rejected; /* lookups refused because the queue was full */
};

/* ---- lists and lookups ----------------------------------------------- */

static void
list_push(struct lookup_list *l, struct ks_lookup *lk)
{
	lk->next = NULL;
	lk->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = lk;
	else
		l->head = lk;
	l->tail = lk;
}

static void
list_unlink(struct lookup_list *l, struct ks_lookup *lk)
{
	if (lk->prev != NULL)
		lk->prev->next = lk->next;
	else
		l->head = lk->next;
	if (lk->next != NULL)
		lk->next->prev = lk->prev;
	else
		l->tail = lk->prev;
	lk->prev = lk->next = NULL;
}

static struct ks_lookup *
list_pop(struct lookup_list *l)
{
	struct ks_lookup *lk = l->head;

	if (lk != NULL)
		list_unlink(l, lk);
	return lk;
}

/* Frees lk and a result nobody will use. */
static void
lookup_free(struct ks_lookup *lk)
{
	if (lk->gai == 0 && lk->res != NULL)
		lk->fns.release(lk->res);
	free(lk);
}

static void
list_free(struct lookup_list *l)
{
	struct ks_lookup *lk;

	while ((lk = list_pop(l)) != NULL)
		lookup_free(lk);
}

static void
resolver_unref(struct ks_resolver *r)
{
	bool last;

	pthread_mutex_lock(&r->lock);
	last = --r->refs == 0;
	pthread_mutex_unlock(&r->lock);
	if (!last)
		return;
	pthread_cond_destroy(&r->work);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* ---- the threads ------------------------------------------------------ */

/* Runs lookups until the pool closes.  Touches nothing but r and the
 * lookups it takes. */
static void *
pool_thread_main(void *arg)
{
	struct pool_thread *self = arg;
	struct ks_resolver *r = self->r;
	struct ks_lookup *lk;
	struct addrinfo hints;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->closed && r->queue.head == NULL) {
			r->nidle++;
			pthread_cond_wait(&r->work, &r->lock);
			r->nidle--;
		}
		if (r->closed)
			break;
		lk = list_pop(&r->queue);
		r->nqueued--;
		lk->state = LOOKUP_RUNNING;
		self->job = lk;
		pthread_mutex_unlock(&r->lock);

		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = lk->socktype;
		hints.ai_flags = AI_ADDRCONFIG;
		lk->gai = lk->fns.lookup(lk->host, lk->port, &hints, &lk->res);
		lk->err = errno;

		pthread_mutex_lock(&r->lock);
		self->job = NULL;
		if (lk->abandoned) {
			/* Its waiter gave up, or the worker is gone. */
			pthread_mutex_unlock(&r->lock);
			lookup_free(lk);
			pthread_mutex_lock(&r->lock);
			continue;
		}
		lk->state = LOOKUP_DONE;
		list_push(&r->done, lk);
		ev_async_send(r->loop, &r->async);
	}
	pthread_mutex_unlock(&r->lock);
	resolver_unref(r);
	return NULL;
}

/* With r->lock held: starts one more thread, with every signal blocked
 * (they are the loop's business).  0 or an errno value. */
static int
pool_thread_start(struct ks_resolver *r)
{
	struct pool_thread *t = &r->threads[r->nthreads];
	sigset_t all, old;
	int rc;

	t->r = r;
	t->job = NULL;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t->tid, NULL, pool_thread_main, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return rc;
	(void)pthread_setname_np(t->tid, "ks-resolve");
	r->nthreads++;
	r->refs++;
	return 0;
}

/* ---- the main context ------------------------------------------------- */

/* Hands finished lookups to their waiters, one at a time: a waiter runs at
 * once and may abandon or submit other lookups meanwhile. */
static void
resolver_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct ks_resolver *r = KS_CONTAINER_OF(w, struct ks_resolver, async);
	struct ks_lookup *lk;

	(void)loop;
	(void)revents;
	for (;;) {
		pthread_mutex_lock(&r->lock);
		if ((lk = list_pop(&r->done)) != NULL)
			lk->state = LOOKUP_DELIVERED;
		pthread_mutex_unlock(&r->lock);
		if (lk == NULL)
			return;
		/* A waiter already woken for another reason (its deadline,
		 * queued to run) ignores this and abandons lk itself. */
		ks_coro_wake(lk->co, KS_OK);
	}
}

static struct ks_resolver *
resolver_new(struct ks_worker *wk)
{
	struct ks_resolver *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->work, NULL);
	r->refs = 1;
	r->loop = wk->loop;
	ev_async_init(&r->async, resolver_async_cb);
	ev_async_start(r->loop, &r->async);
	ev_unref(r->loop); /* waiters' deadlines keep the loop alive */
	return r;
}

static struct ks_lookup *
lookup_new(const char *host, const char *port, int socktype, struct ks_coro *co)
{
	size_t hlen = strlen(host) + 1, plen = strlen(port) + 1;
	struct ks_lookup *lk = calloc(1, sizeof(*lk) + hlen + plen);

	if (lk == NULL)
		return NULL;
	memcpy(lk->host, host, hlen);
	memcpy(lk->host + hlen, port, plen);
	lk->port = lk->host + hlen;
	lk->socktype = socktype;
	lk->co = co;
	lk->fns = ks_resolver_fns;
	return lk;
}

static void
log_queue_full(struct ks_resolver *r)
{
	r->rejected++;
	if (r->full_logged != 0 &&
	    ev_now(r->loop) - r->full_logged < FULL_LOG_EVERY)
		return;
	r->full_logged = ev_now(r->loop);
	ks_log(KS_LOG_WARN,
	       "resolver: %d lookups already waiting for a thread, name "
	       "lookups fail until they drain (%lu refused so far)",
	       KS_RESOLVER_QUEUE, r->rejected);
}

/* With r->lock held: lk is queued; makes sure a thread will take it.
 * KS_OK, or KS_ENOMEM if there is no thread at all. */
static int
pool_grow(struct ks_resolver *r)
{
	int err;

	if (r->nqueued <= r->nidle || r->nthreads == KS_RESOLVER_THREADS) {
		pthread_cond_signal(&r->work);
		return KS_OK;
	}
	if ((err = pool_thread_start(r)) == 0)
		return KS_OK;
	if (r->nthreads > 0) {
		/* The running threads will get to it. */
		pthread_cond_signal(&r->work);
		return KS_OK;
	}
	errno = err;
	ks_log_errno(KS_LOG_ERR, "resolver: cannot start a lookup thread");
	return KS_ENOMEM;
}

int
ks_resolver_submit(struct ks_worker *wk, const char *host, const char *port,
		   int socktype, struct ks_coro *co, struct ks_lookup **out)
{
	struct ks_resolver *r = wk->resolver;
	struct ks_lookup *lk;
	int rc;

	*out = NULL;
	if (r == NULL && (r = wk->resolver = resolver_new(wk)) == NULL)
		return KS_ENOMEM;
	if ((lk = lookup_new(host, port, socktype, co)) == NULL)
		return KS_ENOMEM;
	lk->r = r;
	pthread_mutex_lock(&r->lock);
	if (r->nqueued >= KS_RESOLVER_QUEUE) {
		pthread_mutex_unlock(&r->lock);
		free(lk);
		log_queue_full(r);
		return KS_ERESOLVE;
	}
	lk->state = LOOKUP_QUEUED;
	list_push(&r->queue, lk);
	r->nqueued++;
	if ((rc = pool_grow(r)) != KS_OK) {
		list_unlink(&r->queue, lk);
		r->nqueued--;
	}
	pthread_mutex_unlock(&r->lock);
	if (rc != KS_OK) {
		free(lk);
		return rc;
	}
	*out = lk;
	return KS_OK;
}

int
ks_lookup_result(struct ks_lookup *lk, struct addrinfo **res)
{
	enum lookup_state state;
	int gai;

	*res = NULL;
	pthread_mutex_lock(&lk->r->lock);
	state = lk->state;
	pthread_mutex_unlock(&lk->r->lock);
	if (state != LOOKUP_DELIVERED) {
		/* Woken with KS_OK by something other than the resolver:
		 * treat it as a failed lookup rather than wait again. */
		ks_lookup_abandon(lk);
		return EAI_AGAIN;
	}
	if ((gai = lk->gai) == 0)
		*res = lk->res;
	else if (gai == EAI_SYSTEM)
		errno = lk->err;
	free(lk);
	return gai;
}

void
ks_lookup_abandon(struct ks_lookup *lk)
{
	struct ks_resolver *r = lk->r;
	bool mine = true;

	pthread_mutex_lock(&r->lock);
	switch (lk->state) {
	case LOOKUP_QUEUED:
		list_unlink(&r->queue, lk);
		r->nqueued--;
		break;
	case LOOKUP_RUNNING:
		lk->abandoned = true;
		mine = false;
		break;
	case LOOKUP_DONE:
		list_unlink(&r->done, lk);
		break;
	case LOOKUP_DELIVERED:
		break;
	}
	pthread_mutex_unlock(&r->lock);
	if (mine)
		lookup_free(lk);
}

void
ks_resolver_destroy(struct ks_worker *wk)
{
	struct ks_resolver *r = wk->resolver;
	struct lookup_list drop = {NULL, NULL};
	pthread_t idle[KS_RESOLVER_THREADS];
	unsigned i, nidle = 0;
	struct ks_lookup *lk;

	if (r == NULL)
		return;
	wk->resolver = NULL;
	pthread_mutex_lock(&r->lock);
	r->closed = true;
	while ((lk = list_pop(&r->queue)) != NULL)
		list_push(&drop, lk);
	while ((lk = list_pop(&r->done)) != NULL)
		list_push(&drop, lk);
	r->nqueued = 0;
	for (i = 0; i < r->nthreads; i++) {
		struct pool_thread *t = &r->threads[i];

		if (t->job == NULL) {
			/* Waiting, or about to look at `closed`: it ends
			 * without another getaddrinfo. */
			idle[nidle++] = t->tid;
			continue;
		}
		t->job->abandoned = true;
		pthread_detach(t->tid);
	}
	pthread_cond_broadcast(&r->work);
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < nidle; i++)
		pthread_join(idle[i], NULL);
	list_free(&drop);
	/* No thread sends once `closed` is set. */
	ev_ref(r->loop);
	ev_async_stop(r->loop, &r->async);
	resolver_unref(r);
}
