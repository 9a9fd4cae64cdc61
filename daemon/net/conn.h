/*
 * Connections: an accepted socket, its stream, the handler coroutine(s),
 * the idle timer, and the reference to the config generation it started
 * with.
 */
#ifndef KS_CONN_H
#define KS_CONN_H

#include <ev.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "admit.h"
#include "stream.h"

struct ks_lconf;
struct ks_worker;
struct ks_coro;
struct ks_tls_info;
struct ks_dsock;
struct ks_listener;
struct ks_stats;
struct addrinfo;

/* A coroutine in ks_sleep: lives on that coroutine's stack. */
struct ks_sleeper {
	ev_timer timer;
	struct ks_coro *co;
	int status; /* what the coroutine is woken with when the time is up */
	struct ks_sleeper *next;
};

enum ks_conn_state {
	KS_CONN_RUNNING,  /* handler (or a coroutine it spawned) is alive */
	KS_CONN_DRAINING, /* all coroutines done, sending what is buffered */
	KS_CONN_LINGERING, /* write side shut, discarding input until EOF */
	KS_CONN_CLOSED,   /* socket closed; memory freed at the next reap */
};

/* Why a connection ended, for the counters and the access log. */
enum ks_close_reason {
	KS_CLOSE_EOF = 0,  /* the handler returned (the peer closed, usually) */
	KS_CLOSE_TIMEOUT,  /* a handshake, write, session or idle timeout */
	KS_CLOSE_LIMIT,    /* refused by a limit or the access list */
	KS_CLOSE_ERROR,    /* a socket, protocol or TLS error */
	KS_CLOSE_SHUTDOWN, /* the worker stopped */
};

#define KS_ADDRSTRLEN (sizeof(struct sockaddr_un) + 16)

struct ks_conn {
	struct ks_worker *wk;
	struct ks_lconf *lc; /* holds a reference on lc->conf */
	struct ks_coro *main; /* the handler's coroutine while it runs */
	struct ks_tls_info *tls; /* TLS session and details, NULL: plain */
	struct ks_stream st;
	enum ks_conn_state state;
	enum ks_close_reason close_reason;
	struct ks_admit admit;     /* its counts in the limits zone */
	struct ks_stats *ls;       /* its listener's counters (worker.h) */
	unsigned ncoro;            /* live coroutines of this connection */
	/*
	 * One timer for every deadline (see conn.c): progress only stores a
	 * time, and the timer, when it fires early, re-arms for the nearest
	 * deadline that applies then.
	 */
	ev_timer timer;
	double idle_timeout;       /* 0 = none */
	ev_tstamp last_progress;   /* read or write progress */
	ev_tstamp last_write;      /* write progress, or output queued */
	ev_tstamp started;         /* accepted: session_timeout counts from it */
	ev_tstamp ended;           /* closed (the access log's duration) */
	ev_tstamp handshake_deadline; /* PROXY and TLS phases; 0: none */
	ev_tstamp linger_deadline; /* the lingering close ends then */
	int err;                   /* errno behind the last KS_EIO */
	bool canceled;
	bool idle_fired;           /* an idle timeout since the last progress */
	struct sockaddr_storage peer, local;
	socklen_t peer_len, local_len;
	char peer_str[KS_ADDRSTRLEN];
	char local_str[KS_ADDRSTRLEN];
	struct ks_sleeper *sleepers; /* coroutines in ks_sleep */
	struct ks_peer *peers;       /* outbound connections (outbound.c) */
	unsigned peers_walking;      /* peers being walked: no frees */
	/* A udp listener's session: the listener's socket as handed to
	 * handle_dgram (there is no stream then: st is closed). */
	struct ks_dsock *session;
	struct ks_dsock *dsocks;     /* datagram sockets (dgram.c) */
	unsigned dsocks_walking;     /* dsocks being walked: no frees */
	bool local_known;          /* local address fetched (lazily) */
	struct ks_conn *prev, *next; /* the worker's list */
};

/* Takes ownership of the accepted non-blocking fd and of what *adm holds
 * in the limits zone (released when the connection closes), applies the
 * listener's socket options, starts the handler coroutine.  On failure
 * closes fd, releases *adm and returns NULL (logged). */
struct ks_conn *ks_conn_start(struct ks_worker *wk, struct ks_lconf *lc,
			      int fd, const struct sockaddr *peer,
			      socklen_t peer_len, struct ks_admit *adm);

/* A udp listener's session: runs the plugin's handle_dgram on the
 * listener's socket and makes it l->session.  NULL (logged) when out of
 * memory. */
struct ks_conn *ks_conn_start_session(struct ks_worker *wk, struct ks_lconf *lc,
				      struct ks_listener *l);

/* The handshake phases (PROXY header, TLS) begin: the first call sets the
 * connection's handshake deadline, handshake_timeout from now, which
 * nothing the peer does extends; when it passes, the waits of the
 * connection's stream return KS_ETIMEDOUT.  _end clears it. */
void ks_conn_handshake_begin(struct ks_conn *c);
void ks_conn_handshake_end(struct ks_conn *c);

/* Abortive close for fd (SO_LINGER 0): its close() sends a RST instead
 * of a FIN, and the kernel drops what the peer did not read, so neither
 * side keeps state for a refused connection or a peer that reads nothing.
 * ks_conn_reset: the same for a connection's socket (refused in a
 * phase). */
void ks_sock_set_reset(int fd);
void ks_conn_reset(struct ks_conn *c);

/* Shutdown: wakes every waiting coroutine with KS_ECANCELED; from then on
 * suspending calls fail at once with KS_ECANCELED. */
void ks_conn_cancel(struct ks_conn *c);

/* Closes the socket now (after shutdown_timeout); coroutines still alive
 * are abandoned (their stacks freed). */
void ks_conn_abort(struct ks_conn *c);
/* After a round of ks_conn_abort: how many warnings were left out. */
void ks_conn_abort_done(void);

/* Worker's periodic sweep: hibernates the handler's stack if it has been
 * waiting for input for a while. */
void ks_conn_hibernate_idle(struct ks_conn *c, ev_tstamp now);

/* Coroutine context: a deadline for the calling coroutine; when it passes
 * the coroutine is woken with `status` from whatever it waits in.  Disarm
 * before `sl` (on the caller's stack) goes out of scope.  Shutdown wakes
 * armed coroutines with KS_ECANCELED. */
void ks_conn_timer_arm(struct ks_conn *c, struct ks_sleeper *sl,
		       double seconds, int status);
void ks_conn_timer_disarm(struct ks_conn *c, struct ks_sleeper *sl);

/* outbound.c: wake the peers' waiters (timeouts, shutdown), close them
 * (connection closing), free them (connection freed). */
void ks_peers_wake(struct ks_conn *c, int status, bool cancel);
void ks_peers_close(struct ks_conn *c);
void ks_peers_free(struct ks_conn *c);

/* outbound.c, coroutine context: resolves host:port for `socktype`
 * (numeric addresses at once, names on the worker's pool of lookup
 * threads, resolver.h) until the absolute ev time `deadline`.  KS_OK with
 * *res to freeaddrinfo, or KS_ERESOLVE (no such name, or the pool's queue
 * is full), KS_ENOMEM, KS_EINVAL (not in a coroutine), or the wait's
 * status (KS_ETIMEDOUT at the deadline, KS_ECANCELED at shutdown). */
int ks_resolve(struct ks_conn *c, const char *host, const char *port,
	       int socktype, double deadline, struct addrinfo **res);

/* Frees a closed connection (called by the worker's reaper). */
void ks_conn_free(struct ks_conn *c);

/* An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4
 * peer) becomes the IPv4 address, in place; returns the new length. */
socklen_t ks_addr_unmap(struct sockaddr_storage *ss, socklen_t len);

/* Formats an address as "1.2.3.4:5", "[::1]:5" or "unix:/path". */
void ks_addr_format(const struct sockaddr *sa, socklen_t len, char *buf,
		    size_t size);

#endif
