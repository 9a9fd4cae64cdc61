/*
 * Datagram sockets (UDP): a udp listener's socket as seen by one session
 * (the handle_dgram coroutine of one configuration generation), and
 * outbound sockets a plugin opens with ks_dgram_open.
 *
 * Receiving reads up to a batch of datagrams with one recvmmsg() into a
 * ring of buffers and hands them out one by one; a batch that comes back
 * short means the socket is drained, so an idle request/response costs
 * one poll, one recvmmsg and one sendmsg.  After DGRAM_BURST batches in a
 * row the receiver waits for the next loop iteration even though more is
 * queued: a flood is served in bounded slices and TCP connections on the
 * same worker keep their turn.
 */
#ifndef KS_DGRAM_H
#define KS_DGRAM_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ksockd/plugin.h>

struct ks_conn;
struct ks_coro;
struct ks_listener;

/* One received datagram waiting in the ring. */
struct ks_dslot {
	uint8_t *data;
	struct sockaddr_storage peer;
	char control[64]; /* IP_PKTINFO / IPV6_PKTINFO */
	struct iovec iov;
};

struct ks_dsock {
	struct ks_conn *conn;   /* owner: timeouts, shutdown, logs */
	struct ks_listener *l;  /* a listener's socket (fd borrowed), or NULL */
	int fd;                 /* -1 once closed or detached */
	int family;
	bool session;  /* a listener's socket (or a copy kept for replies):
			* the daemon's, never closed by a plugin */
	bool connected;
	bool dual;     /* AF_INET6 socket that also carries IPv4 (mapped) */
	bool pktinfo;  /* datagrams carry their destination address */
	bool retired;  /* a newer generation receives on this socket now */
	bool canceled;
	bool readable; /* polled readable and not drained since */
	unsigned burst; /* batches read since the receiver last waited */
	int err;
	ev_io rio, wio;
	struct ks_coro *rwaiter, *wwaiter;
	/* the receive ring */
	struct ks_dslot *slots;
	struct mmsghdr *msgs;
	unsigned nslots, head, count;
	size_t bufsize;
	ev_tstamp trunc_logged; /* last "truncated" message (rate limit) */
	unsigned long long truncated; /* datagrams cut on this socket */
	struct sockaddr_storage local, peer;
	socklen_t local_len, peer_len;
	struct ks_dsock *next;  /* the owner connection's list */
	struct ks_dsock *lnext; /* the listener's list of sessions */
};

/* conn.c, for a listener session: a socket on the listener's fd owned by
 * the session connection c (linked into c->dsocks and l->dsocks).  NULL
 * when out of memory. */
struct ks_dsock *ks_dsock_attach(struct ks_conn *c, struct ks_listener *l);

/* The worker is done with the listener.  When the daemon stops every
 * session socket on it is closed (waiters get KS_ECLOSED); when the worker
 * retires, sessions still running keep a duplicate of the socket for
 * their replies (receives return KS_ECLOSED once their ring is empty).
 * Either way they forget the listener. */
void ks_dsock_detach_all(struct ks_listener *l);

/* The connection's idle timeout or shutdown: wake waiters with status;
 * cancel also makes later waits fail with KS_ECANCELED. */
void ks_dsocks_wake(struct ks_conn *c, int status, bool cancel);
/* The connection closes: outbound sockets close, session sockets leave
 * their listener (which then starts a new session, see listener.c). */
void ks_dsocks_close(struct ks_conn *c);
/* The connection is freed. */
void ks_dsocks_free(struct ks_conn *c);

#endif
