/*
 * ksock --udp: a connected UDP socket.  Each stdin line (without its LF or
 * CRLF) goes out as one datagram, an empty line as an empty datagram; each
 * datagram received is printed as one line (its bytes, NULs included, and
 * a newline).  After stdin ends, replies are still printed until --wait
 * seconds pass without one.
 *
 * Two coroutines on ksock's loop, as in TCP mode: ksock_udp_main opens the
 * socket and prints datagrams; stdin_main reads lines from ksock's stdin
 * stream (the reader thread's pipe) and sends them.  A datagram is one
 * send() or recv(), so the socket needs neither ks_stream's byte buffers
 * nor the daemon's ks_dgram API (which belongs to connections): two ev_io
 * watchers, each started only while its coroutine waits, are enough.
 *
 * ECONNREFUSED means an ICMP port unreachable came back for an earlier
 * datagram: nobody listens there.  Whichever of send() and recv() reports
 * it, ksock stops with exit status 2: that is what the user needs to know.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ksock.h"

/* The largest UDP payload over IPv4 (65535 - 20 - 8).  IPv6 would allow a
 * few more bytes; one limit for both keeps scripts portable. */
#define UDP_MAX_PAYLOAD 65507
/* More than any UDP payload (IPv6 jumbograms aside): MSG_TRUNC should
 * never fire, but a cut datagram would still be reported. */
#define RECV_BUF 65536
/* Datagrams printed before the stdin coroutine gets a turn. */
#define RECV_BATCH 64

static void
readable_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ksock *k = w->data;

	(void)loop;
	(void)revents;
	if (k->waiter != NULL)
		ks_coro_wake(k->waiter, KS_OK);
}

static void
writable_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ksock *k = w->data;

	(void)loop;
	(void)revents;
	if (k->u.sender != NULL)
		ks_coro_wake(k->u.sender, KS_OK);
}

static void
linger_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ksock *k = w->data;

	(void)loop;
	(void)revents;
	/* The flag covers a receiver that yielded instead of waiting. */
	k->u.expired = true;
	if (k->waiter != NULL)
		ks_coro_wake(k->waiter, KS_ETIMEDOUT);
}

/* (Re)starts the --wait period: at stdin EOF and after each reply. */
static void
restart_linger(struct ksock *k)
{
	ev_timer_stop(k->loop, &k->u.linger);
	ev_timer_set(&k->u.linger, k->wait, 0.);
	ev_timer_start(k->loop, &k->u.linger);
}

/* Coroutine context: makes the receiver end (after an error of the
 * stdin side; the exit status is set by then). */
static void
udp_stop(struct ksock *k)
{
	k->u.stop = true;
	if (k->waiter != NULL)
		ks_coro_wake(k->waiter, KS_ECANCELED);
}

static void
net_error(struct ksock *k, int err)
{
	ksock_msg("%s (UDP): %s%s", k->peer, strerror(err),
		  err == ECONNREFUSED ? ": nothing listens on that port" : "");
	ksock_set_status(k, EXIT_NET);
}

/* Never suspends: a non-blocking UDP socket connected to the first
 * address that takes it (connecting a UDP socket sends nothing, so a
 * refusal only shows later).  0, or -1 with the message printed. */
static int
open_socket(struct ksock *k)
{
	struct addrinfo *ai;
	int fd, err = 0;

	for (ai = k->ai; ai != NULL; ai = ai->ai_next) {
		ksock_describe_addr(ai->ai_addr, ai->ai_addrlen, k->peer,
				    sizeof(k->peer));
		fd = socket(ai->ai_family,
			    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			k->u.fd = fd;
			if (k->verbose)
				ksock_msg("sending datagrams to %s", k->peer);
			return 0;
		}
		err = errno;
		if (fd >= 0)
			close(fd);
		if (k->verbose)
			ksock_msg("UDP socket for %s: %s", k->peer,
				  strerror(err));
	}
	ksock_msg("UDP socket for %s: %s",
		  k->ai != NULL && k->ai->ai_next != NULL ? k->host : k->peer,
		  strerror(err));
	ksock_set_status(k, EXIT_NET);
	return -1;
}

/* stdin coroutine: sends one datagram, waiting while the socket's send
 * buffer is full.  0: sent, or skipped with a message (too large); -1:
 * ksock is ending (a network error was reported, or it was stopped). */
static int
send_datagram(struct ksock *k, const char *p, size_t len)
{
	struct ksock_udp *u = &k->u;
	int rc;

	for (;;) {
		if (u->stop || u->fd < 0)
			return -1;
		if (send(u->fd, p, len, 0) >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EMSGSIZE) {
			/* e.g. an interface MTU with fragmentation off */
			ksock_msg("line too long for a datagram (%zu bytes): %s",
				  len, strerror(errno));
			u->skipped = true;
			return 0;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			net_error(k, errno);
			udp_stop(k);
			return -1;
		}
		ev_io_start(k->loop, &u->wio);
		u->sender = ks_coro_self(&k->wk.sched);
		rc = ks_coro_suspend(&k->wk.sched);
		u->sender = NULL;
		ev_io_stop(k->loop, &u->wio);
		if (rc != KS_OK)
			return -1;
	}
	if (k->verbose)
		ksock_msg("sent %zu bytes", len);
	return 0;
}

/* stdin -> datagrams; at EOF the --wait period starts. */
static void
stdin_main(void *arg)
{
	struct ksock *k = arg;
	struct ksock_udp *u = &k->u;
	char *line;
	size_t len;
	int rc;

	for (;;) {
		rc = ks_read_line(&k->in.in, &line, &len);
		if (rc == KS_ETOOLONG) {
			ksock_msg("line too long for a datagram (more than %u "
				  "bytes) not sent", MAX_LINE);
			u->skipped = true;
			continue;
		}
		if (rc != KS_OK && !(rc == KS_EOF && len > 0))
			break;
		if (len > UDP_MAX_PAYLOAD) {
			ksock_msg("line too long for a datagram (%zu bytes) "
				  "not sent", len);
			u->skipped = true;
		} else if (send_datagram(k, line, len) != 0) {
			return;
		}
		if (rc == KS_EOF)
			break;
	}
	if (rc == KS_EIO) {
		/* reported, then handled like the end of input */
		ksock_msg("reading standard input: %s", strerror(k->in.in.err));
		ksock_set_status(k, EXIT_USAGE);
	} else if (rc != KS_EOF) {
		return; /* KS_ECLOSED: the receiver ended */
	}
	if (u->stop || u->fd < 0)
		return;
	u->in_eof = true;
	if (k->verbose)
		ksock_msg("end of input: waiting %g s for replies", k->wait);
	restart_linger(k);
}

/* Receiver: prints the datagrams waiting in the socket, at most
 * RECV_BATCH.  1: the socket is drained; 0: more may wait; -1: stop
 * (the message is printed and the exit status set). */
static int
print_datagrams(struct ksock *k)
{
	struct ksock_udp *u = &k->u;
	struct sockaddr_storage from;
	socklen_t from_len;
	char buf[RECV_BUF], addr[300];
	ssize_t n;
	int i = 0;

	while (i < RECV_BATCH) {
		from_len = sizeof(from);
		n = recvfrom(u->fd, buf, sizeof(buf), MSG_TRUNC,
			     (struct sockaddr *)&from, &from_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		if (n < 0) {
			net_error(k, errno);
			return -1;
		}
		i++;
		if (k->verbose) {
			ksock_describe_addr((struct sockaddr *)&from, from_len,
					    addr, sizeof(addr));
			ksock_msg("received %zd bytes from %s", n, addr);
		}
		if ((size_t)n > sizeof(buf)) {
			ksock_msg("datagram of %zd bytes cut to %zu", n,
				  sizeof(buf));
			u->skipped = true;
			n = (ssize_t)sizeof(buf);
		}
		if (ksock_print_line(k, buf, (size_t)n) != 0)
			return -1;
		if (u->in_eof)
			restart_linger(k);
	}
	return 0;
}

void
ksock_udp_main(void *arg)
{
	struct ksock *k = arg;
	struct ksock_udp *u = &k->u;
	int rc;

	ev_io_init(&u->rio, readable_cb, -1, EV_READ);
	ev_io_init(&u->wio, writable_cb, -1, EV_WRITE);
	ev_timer_init(&u->linger, linger_cb, 0., 0.);
	u->rio.data = u->wio.data = u->linger.data = k;
	if (open_socket(k) != 0)
		return;
	ev_io_set(&u->rio, u->fd, EV_READ);
	ev_io_set(&u->wio, u->fd, EV_WRITE);
	if (ksock_open_stdin(k) != 0 || ksock_spawn(k, stdin_main) != 0) {
		ksock_set_status(k, EXIT_USAGE);
		goto out;
	}
	while (!u->stop) {
		rc = print_datagrams(k);
		if (rc < 0)
			goto out;
		if (rc == 0) {
			ks_coro_yield(&k->wk.sched);
			continue;
		}
		if (u->expired)
			break;
		ev_io_start(k->loop, &u->rio);
		k->waiter = ks_coro_self(&k->wk.sched);
		rc = ks_coro_suspend(&k->wk.sched);
		k->waiter = NULL;
		ev_io_stop(k->loop, &u->rio);
		/* KS_ETIMEDOUT: the --wait period passed; KS_ECANCELED: a
		 * signal, or the stdin side failed */
		if (rc != KS_OK)
			break;
	}
	if (u->skipped)
		ksock_set_status(k, EXIT_USAGE);
out:
	u->stop = true;
	ev_timer_stop(k->loop, &u->linger);
	ev_io_stop(k->loop, &u->wio);
	if (u->sender != NULL)
		ks_coro_wake(u->sender, KS_ECANCELED);
	/* ends the stdin coroutine's read with KS_ECLOSED */
	ksock_close_streams(k);
	close(u->fd);
	u->fd = -1;
}
