/*
 * Datagram sockets and the public datagram API (ks_dgram_*): see dgram.h
 * for the receive path.  Sends go straight to sendmsg(); only a full send
 * buffer makes the caller wait for the socket to become writable.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acl.h"
#include "conf.h"
#include "conn.h"
#include "coro.h"
#include "dgram.h"
#include "listener.h"
#include "lsock.h"
#include "log.h"
#include "util.h"
#include "worker.h"

#define DGRAM_BATCH 8        /* datagrams per recvmmsg on a listener */
#define DGRAM_BURST 4        /* batches before the receiver yields */
#define DGRAM_OPEN_TIMEOUT 30.0
#define TRUNC_LOG_EVERY 5.0  /* seconds between "truncated" messages */
#define WOULD_BLOCK 1        /* internal: nothing to read now */
#define DROPPED 2            /* internal: a datagram not to hand out */

/* ---- watchers ------------------------------------------------------------ */

static void
rio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ks_dsock *ds = KS_CONTAINER_OF(w, struct ks_dsock, rio);

	(void)revents;
	ds->readable = true;
	if (ds->rwaiter != NULL)
		ks_coro_wake(ds->rwaiter, KS_OK);
	else
		ev_io_stop(loop, w); /* level-triggered: nobody to read */
}

static void
wio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ks_dsock *ds = KS_CONTAINER_OF(w, struct ks_dsock, wio);

	(void)revents;
	ev_io_stop(loop, w);
	if (ds->wwaiter != NULL)
		ks_coro_wake(ds->wwaiter, KS_OK);
}

static struct ks_dsock *
dsock_new(struct ks_conn *c, int fd, int family)
{
	struct ks_dsock *ds = calloc(1, sizeof(*ds));

	if (ds == NULL)
		return NULL;
	ds->conn = c;
	ds->fd = fd;
	ds->family = family;
	ds->readable = true; /* unknown: try a read before the first poll */
	ds->bufsize = KS_DGRAM_MAX;
	ds->nslots = 1;
	ev_io_init(&ds->rio, rio_cb, fd, EV_READ);
	ev_io_init(&ds->wio, wio_cb, fd, EV_WRITE);
	ds->local_len = sizeof(ds->local);
	if (getsockname(fd, (struct sockaddr *)&ds->local, &ds->local_len) != 0)
		ds->local_len = 0;
	ds->next = c->dsocks;
	c->dsocks = ds;
	return ds;
}

static void
ring_free(struct ks_dsock *ds)
{
	if (ds->slots != NULL)
		free(ds->slots[0].data);
	free(ds->slots);
	free(ds->msgs);
	ds->slots = NULL;
	ds->msgs = NULL;
	ds->count = 0;
}

static int
ring_alloc(struct ks_dsock *ds)
{
	uint8_t *data;
	unsigned i;

	ds->slots = calloc(ds->nslots, sizeof(*ds->slots));
	ds->msgs = calloc(ds->nslots, sizeof(*ds->msgs));
	/* One block: pages a small datagram does not touch stay unmapped. */
	data = malloc(ds->nslots * ds->bufsize);
	if (ds->slots == NULL || ds->msgs == NULL || data == NULL) {
		free(data);
		free(ds->slots);
		free(ds->msgs);
		ds->slots = NULL;
		ds->msgs = NULL;
		return -1;
	}
	for (i = 0; i < ds->nslots; i++) {
		ds->slots[i].data = data + i * ds->bufsize;
		ds->slots[i].iov.iov_base = ds->slots[i].data;
		ds->slots[i].iov.iov_len = ds->bufsize;
	}
	return 0;
}

/* Stops the watchers and forgets the fd (closing it when it is ours). */
static void
dsock_shut(struct ks_dsock *ds)
{
	struct ev_loop *loop = ds->conn->wk->loop;

	if (ds->fd < 0)
		return;
	ev_io_stop(loop, &ds->rio);
	ev_io_stop(loop, &ds->wio);
	if (ds->l == NULL)
		close(ds->fd);
	ds->fd = -1;
	ring_free(ds);
}

static void
dsock_wake(struct ks_dsock *ds, int status)
{
	struct ks_coro *r = ds->rwaiter, *w = ds->wwaiter;

	if (r != NULL)
		ks_coro_wake(r, status);
	if (w != NULL && w != r && ds->wwaiter == w)
		ks_coro_wake(w, status);
}

/* ---- sessions and their listener ------------------------------------------ */

struct ks_dsock *
ks_dsock_attach(struct ks_conn *c, struct ks_listener *l)
{
	struct ks_dsock *ds;
	int on = 0;
	socklen_t len = sizeof(on);

	if ((ds = dsock_new(c, l->fd, l->family)) == NULL)
		return NULL;
	ds->l = l;
	ds->session = true;
	ds->bufsize = c->lc->max_datagram;
	ds->nslots = DGRAM_BATCH;
	ds->pktinfo = getsockopt(l->fd, l->family == AF_INET ? IPPROTO_IP
							      : IPPROTO_IPV6,
				 l->family == AF_INET ? IP_PKTINFO
						      : IPV6_RECVPKTINFO,
				 &on, &len) == 0 &&
		      on != 0;
	ds->lnext = l->dsocks;
	l->dsocks = ds;
	/* Watch from the start: the session's first receive finds the
	 * socket's state known. */
	ev_io_start(c->wk->loop, &ds->rio);
	return ds;
}

/* The worker retires (a newer generation's workers took over) while a
 * session still works on requests it read: it keeps a duplicate of the
 * socket, so its replies still leave from the listener's address, until
 * it ends; its receives hand out what is in its ring, then KS_ECLOSED. */
static bool
keep_for_replies(struct ks_dsock *ds, int lfd)
{
	struct ev_loop *loop = ds->conn->wk->loop;
	int fd;

	if (ds->conn->wk->stopping ||
	    (fd = fcntl(lfd, F_DUPFD_CLOEXEC, 0)) < 0)
		return false;
	ev_io_stop(loop, &ds->rio);
	ev_io_stop(loop, &ds->wio);
	ev_io_set(&ds->rio, fd, EV_READ);
	ev_io_set(&ds->wio, fd, EV_WRITE);
	ds->fd = fd;
	ds->l = NULL; /* the fd is its own now */
	ds->retired = true;
	if (ds->wwaiter != NULL)
		ev_io_start(loop, &ds->wio);
	if (ds->rwaiter != NULL && ds->count == 0)
		ks_coro_wake(ds->rwaiter, KS_ECLOSED);
	return true;
}

void
ks_dsock_detach_all(struct ks_listener *l)
{
	struct ks_dsock *ds, *next;

	ds = l->dsocks;
	l->dsocks = NULL;
	for (; ds != NULL; ds = next) {
		next = ds->lnext;
		ds->lnext = NULL;
		if (keep_for_replies(ds, l->fd))
			continue;
		dsock_shut(ds);
		ds->l = NULL;
		dsock_wake(ds, KS_ECLOSED);
	}
}

void
ks_dsocks_wake(struct ks_conn *c, int status, bool cancel)
{
	struct ks_dsock *ds;

	/* A woken coroutine runs at once and may close sockets of this list:
	 * while walking it, closing only marks them (ks_dgram_close). */
	c->dsocks_walking++;
	for (ds = c->dsocks; ds != NULL; ds = ds->next) {
		if (cancel)
			ds->canceled = true;
		dsock_wake(ds, status);
	}
	c->dsocks_walking--;
}

static void
listener_unlink(struct ks_dsock *ds)
{
	struct ks_dsock **pp;

	for (pp = &ds->l->dsocks; *pp != NULL; pp = &(*pp)->lnext) {
		if (*pp == ds) {
			*pp = ds->lnext;
			break;
		}
	}
}

void
ks_dsocks_close(struct ks_conn *c)
{
	struct ks_dsock *ds;
	struct ks_listener *l;

	for (ds = c->dsocks; ds != NULL; ds = ds->next) {
		l = ds->l;
		dsock_shut(ds);
		if (l == NULL)
			continue;
		listener_unlink(ds);
		ds->l = NULL;
		if (l->session == c)
			ks_listener_session_ended(l);
	}
}

void
ks_dsocks_free(struct ks_conn *c)
{
	struct ks_dsock *ds;

	while ((ds = c->dsocks) != NULL) {
		c->dsocks = ds->next;
		ring_free(ds);
		free(ds);
	}
}

/* ---- receiving --------------------------------------------------------- */

/* Reads a batch into the ring: KS_OK, WOULD_BLOCK or KS_EIO. */
static int
fill(struct ks_dsock *ds)
{
	struct msghdr *h;
	unsigned i;
	int n;

	for (i = 0; i < ds->nslots; i++) {
		h = &ds->msgs[i].msg_hdr;
		memset(h, 0, sizeof(*h));
		h->msg_name = &ds->slots[i].peer;
		h->msg_namelen = sizeof(ds->slots[i].peer);
		h->msg_iov = &ds->slots[i].iov;
		h->msg_iovlen = 1;
		if (ds->pktinfo) {
			h->msg_control = ds->slots[i].control;
			h->msg_controllen = sizeof(ds->slots[i].control);
		}
	}
	do
		n = recvmmsg(ds->fd, ds->msgs, ds->nslots,
			     MSG_DONTWAIT | MSG_TRUNC, NULL);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			ds->readable = false;
			return WOULD_BLOCK;
		}
		ds->err = ds->conn->err = errno;
		KS_CCOUNT(ds->conn, datagram_errors);
		return KS_EIO;
	}
	/* A short batch: the socket is drained. */
	if ((unsigned)n < ds->nslots)
		ds->readable = false;
	ds->head = 0;
	ds->count = (unsigned)n;
	ds->burst++;
	return KS_OK;
}

/* d->local, d->reply_from and d->ifindex from the packet's IP_PKTINFO or
 * IPV6_PKTINFO; without one, the socket's own address. */
static void
dest_info(struct ks_dsock *ds, struct msghdr *h, ks_dgram *d)
{
	struct cmsghdr *cm;

	memcpy(&d->local, &ds->local, ds->local_len);
	d->local_len = ds->local_len;
	d->reply_from_len = 0;
	d->ifindex = 0;
	d->flags = 0;
	if (!ds->pktinfo)
		return;
	for (cm = CMSG_FIRSTHDR(h); cm != NULL; cm = CMSG_NXTHDR(h, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			struct sockaddr_in *lo = (struct sockaddr_in *)&d->local;
			struct sockaddr_in *rf = (struct sockaddr_in *)&d->reply_from;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			lo->sin_addr = pi.ipi_addr;
			memset(rf, 0, sizeof(*rf));
			rf->sin_family = AF_INET;
			rf->sin_addr = pi.ipi_spec_dst;
			d->reply_from_len = sizeof(*rf);
			d->ifindex = (unsigned)pi.ipi_ifindex;
			/* The kernel reports the header's destination as the
			 * local address only for unicast to this host; for a
			 * group or a broadcast it picks an interface address. */
			if (IN_MULTICAST(ntohl(pi.ipi_addr.s_addr)))
				d->flags |= KS_DGRAM_MULTICAST;
			else if (pi.ipi_addr.s_addr != pi.ipi_spec_dst.s_addr ||
				 pi.ipi_addr.s_addr == htonl(INADDR_BROADCAST))
				d->flags |= KS_DGRAM_BROADCAST;
		} else if (cm->cmsg_level == IPPROTO_IPV6 &&
			   cm->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			struct sockaddr_in6 *lo = (struct sockaddr_in6 *)&d->local;
			struct sockaddr_in6 *rf = (struct sockaddr_in6 *)&d->reply_from;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			lo->sin6_addr = pi.ipi6_addr;
			memset(rf, 0, sizeof(*rf));
			rf->sin6_family = AF_INET6;
			/* Never answer from a group address: leave the
			 * source to the kernel (the interface's address). */
			if (!IN6_IS_ADDR_MULTICAST(&pi.ipi6_addr))
				rf->sin6_addr = pi.ipi6_addr;
			else
				d->flags |= KS_DGRAM_MULTICAST;
			d->reply_from_len = sizeof(*rf);
			d->ifindex = pi.ipi6_ifindex;
		}
	}
}

static struct ks_lograte rate_log =
	KS_LOGRATE_INIT("datagrams over max_datagram_rate");

/* max_datagram_rate: the source's budget across every worker (zone.h);
 * what is over it is dropped unseen, counted and logged rate-limited. */
static bool
over_rate(struct ks_conn *c, const ks_dgram *d)
{
	struct ks_worker *wk = c->wk;
	char who[KS_ADDRSTRLEN];
	uint64_t src;

	if (!ks_zone_source((const struct sockaddr *)&d->peer, &src) ||
	    ks_zone_rate(&wk->zu, KS_ZD_DGRAM_RATE, c->admit.lkey, src,
			 (uint32_t)c->lc->max_datagram_rate) != KS_ZONE_OVER)
		return false;
	if (ks_lograte_allow(&rate_log, KS_LOG_INFO,
			     &wk->stats->log_suppressed)) {
		ks_addr_format((const struct sockaddr *)&d->peer, d->peer_len,
			       who, sizeof(who));
		ks_conn_log(c, KS_LOG_INFO, "dropped a datagram from %s: over "
			    "max_datagram_rate %d", who,
			    c->lc->max_datagram_rate);
	}
	return true;
}

/* Hands out the next datagram of the ring. */
static int
take(struct ks_dsock *ds, ks_dgram *d)
{
	struct ks_conn *c = ds->conn;
	struct ks_worker *wk = c->wk;
	struct ks_dslot *sl = &ds->slots[ds->head];
	struct mmsghdr *m = &ds->msgs[ds->head];
	char who[KS_ADDRSTRLEN];

	ds->head++;
	ds->count--;
	d->data = sl->data;
	d->size = m->msg_len;
	d->len = KS_MIN(d->size, ds->bufsize);
	/* Dual-stack sockets see IPv4 peers as mapped IPv6 addresses: a
	 * plugin sees the address the peer actually has. */
	memcpy(&d->peer, &sl->peer, m->msg_hdr.msg_namelen);
	d->peer_len = ks_addr_unmap(&d->peer, m->msg_hdr.msg_namelen);
	dest_info(ds, &m->msg_hdr, d);
	/* One forged datagram to a broadcast address would get an answer
	 * from every host on the subnet: only where asked for. */
	if ((d->flags & KS_DGRAM_BROADCAST) && !c->lc->broadcast) {
		KS_CCOUNT(c, datagrams_dropped);
		return DROPPED;
	}
	/* A udp listener's allow and deny: per datagram, unseen. */
	if (ds->session && c->lc->acl != NULL &&
	    ks_acl_check(c->lc->acl, (const struct sockaddr *)&d->peer, NULL) ==
		    KS_ACL_DENY) {
		KS_CCOUNT(c, refused_acl);
		return DROPPED;
	}
	if (ds->session && c->lc->max_datagram_rate > 0 && over_rate(c, d)) {
		KS_CCOUNT(c, datagrams_rate_limited);
		return DROPPED;
	}
	KS_CCOUNT(c, datagrams_in);
	KS_COUNT(wk, c->ls, bytes_in, d->len);
	ks_conn_progress(c);
	if (!(m->msg_hdr.msg_flags & MSG_TRUNC))
		return KS_OK;
	KS_CCOUNT(c, datagrams_truncated);
	ds->truncated++;
	if (ev_now(wk->loop) - ds->trunc_logged >= TRUNC_LOG_EVERY) {
		ds->trunc_logged = ev_now(wk->loop);
		ks_addr_format((struct sockaddr *)&d->peer, d->peer_len, who,
			       sizeof(who));
		ks_conn_log(c, KS_LOG_WARN,
			    "datagram of %zu bytes from %s exceeds "
			    "max_datagram_size %zu: truncated and reported to "
			    "the handler (%llu so far)",
			    d->size, who, ds->bufsize,
			    (unsigned long long)ds->truncated);
	}
	return KS_ETOOLONG;
}

int
ks_dgram_recv(ks_dsock *ds, ks_dgram *d, double timeout)
{
	struct ks_conn *c = ds->conn;
	struct ks_sched *s = &c->wk->sched;
	struct ks_sleeper sl;
	bool armed = false;
	int rc;

	if (ds->rwaiter != NULL)
		return KS_EBUSY;
	for (;;) {
		if (ds->canceled || c->canceled) {
			rc = KS_ECANCELED;
			break;
		}
		/* What was read before a reload is still handed out. */
		if (ds->count > 0) {
			if ((rc = take(ds, d)) == DROPPED)
				continue;
			break;
		}
		if (ds->fd < 0 || ds->retired) {
			rc = KS_ECLOSED;
			break;
		}
		if (ds->slots == NULL && ring_alloc(ds) != 0) {
			rc = KS_ENOMEM;
			break;
		}
		if (ds->readable && ds->burst < DGRAM_BURST) {
			rc = fill(ds);
			if (rc == KS_OK)
				continue;
			if (rc != WOULD_BLOCK)
				break;
		}
		ds->burst = 0;
		if (!armed && timeout > 0) {
			ks_conn_timer_arm(c, &sl, timeout, KS_ETIMEDOUT);
			armed = true;
		}
		ds->rwaiter = ks_coro_self(s);
		ev_io_start(c->wk->loop, &ds->rio);
		rc = ks_coro_suspend(s);
		ds->rwaiter = NULL;
		if (rc != KS_OK)
			break;
	}
	if (armed)
		ks_conn_timer_disarm(c, &sl);
	return rc;
}

/* ---- sending ------------------------------------------------------------- */

static int
dgram_send(struct ks_dsock *ds, const void *buf, size_t n,
	   const struct sockaddr *to, socklen_t tolen, const ks_dgram *rd)
{
	struct ks_conn *c = ds->conn;
	struct ks_worker *wk = c->wk;
	struct sockaddr_in6 mapped;
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	int rc;

	if (ds->fd < 0)
		return KS_ECLOSED;
	if (to == NULL && !ds->connected)
		return KS_EINVAL;
	if (to != NULL && ds->dual && to->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)to;

		memset(&mapped, 0, sizeof(mapped));
		mapped.sin6_family = AF_INET6;
		mapped.sin6_port = in->sin_port;
		mapped.sin6_addr.s6_addr[10] = 0xff;
		mapped.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&mapped.sin6_addr.s6_addr[12], &in->sin_addr, 4);
		to = (const struct sockaddr *)&mapped;
		tolen = sizeof(mapped);
	}
	msg.msg_name = (void *)to;
	msg.msg_namelen = to != NULL ? tolen : 0;
	if (rd != NULL && ds->pktinfo && rd->reply_from_len > 0 &&
	    rd->reply_from.ss_family == ds->family) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		cm = (struct cmsghdr *)control.buf;
		if (ds->family == AF_INET) {
			struct in_pktinfo pi = {0};

			pi.ipi_spec_dst =
				((const struct sockaddr_in *)&rd->reply_from)->sin_addr;
			cm->cmsg_level = IPPROTO_IP;
			cm->cmsg_type = IP_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
			msg.msg_controllen = CMSG_SPACE(sizeof(pi));
		} else {
			struct in6_pktinfo pi;
			const struct sockaddr_in6 *peer = (const void *)&rd->peer;

			memset(&pi, 0, sizeof(pi));
			pi.ipi6_addr =
				((const struct sockaddr_in6 *)&rd->reply_from)->sin6_addr;
			/* The interface only matters where the address alone
			 * does not say: link-local peers and group traffic. */
			if (IN6_IS_ADDR_LINKLOCAL(&peer->sin6_addr) ||
			    IN6_IS_ADDR_UNSPECIFIED(&pi.ipi6_addr))
				pi.ipi6_ifindex = rd->ifindex;
			cm->cmsg_level = IPPROTO_IPV6;
			cm->cmsg_type = IPV6_PKTINFO;
			cm->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
			msg.msg_controllen = CMSG_SPACE(sizeof(pi));
		}
	}
	for (;;) {
		if (sendmsg(ds->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
			KS_CCOUNT(c, datagrams_out);
			KS_COUNT(wk, c->ls, bytes_out, n);
			ks_conn_progress(c);
			return KS_OK;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			ds->err = c->err = errno;
			KS_CCOUNT(c, datagram_errors);
			return errno == EMSGSIZE ? KS_ETOOLONG : KS_EIO;
		}
		/* The send buffer is full: wait until it has room. */
		if (ds->wwaiter != NULL)
			return KS_EBUSY;
		if (ds->canceled || c->canceled)
			return KS_ECANCELED;
		ds->wwaiter = ks_coro_self(&wk->sched);
		ev_io_start(wk->loop, &ds->wio);
		rc = ks_coro_suspend(&wk->sched);
		ds->wwaiter = NULL;
		ev_io_stop(wk->loop, &ds->wio);
		if (rc != KS_OK)
			return rc;
		if (ds->fd < 0)
			return KS_ECLOSED;
	}
}

int
ks_dgram_send(ks_dsock *ds, const void *buf, size_t n,
	      const struct sockaddr *to, socklen_t tolen)
{
	return dgram_send(ds, buf, n, to, tolen, NULL);
}

int
ks_dgram_reply(ks_dsock *ds, const ks_dgram *d, const void *buf, size_t n)
{
	return dgram_send(ds, buf, n, (const struct sockaddr *)&d->peer,
			  d->peer_len, d);
}

/* ---- outbound sockets ------------------------------------------------------ */

static int
dgram_socket(struct ks_conn *c, int family, int *fd)
{
	const char *what;

	*fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return -1;
	if ((what = ks_sockopts_apply(*fd, c->lc, family, SOCK_DGRAM)) != NULL)
		ks_conn_log(c, KS_LOG_DEBUG, "udp socket: %s: %s", what,
			    strerror(errno));
	return 0;
}

/* An unconnected socket: dual-stack IPv6 when the host has IPv6, else
 * IPv4; bound at once so that it has its port before the first send. */
static int
open_unconnected(struct ks_conn *c, ks_dsock **out)
{
	struct sockaddr_in6 any6 = {.sin6_family = AF_INET6};
	struct sockaddr_in any4 = {.sin_family = AF_INET};
	int fd, off = 0, family = AF_INET6;

	if (dgram_socket(c, AF_INET6, &fd) == 0 &&
	    (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) != 0 ||
	     bind(fd, (struct sockaddr *)&any6, sizeof(any6)) != 0)) {
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		family = AF_INET;
		if (dgram_socket(c, AF_INET, &fd) != 0)
			goto fail;
		if (bind(fd, (struct sockaddr *)&any4, sizeof(any4)) != 0) {
			close(fd);
			goto fail;
		}
	}
	if ((*out = dsock_new(c, fd, family)) == NULL) {
		close(fd);
		return KS_ENOMEM;
	}
	(*out)->dual = family == AF_INET6;
	return KS_OK;
fail:
	c->err = errno;
	ks_conn_log(c, KS_LOG_WARN, "udp socket: %s", strerror(errno));
	return KS_EIO;
}

int
ks_dgram_open(ks_conn *c, const char *host, const char *port, double timeout,
	      ks_dsock **out)
{
	struct addrinfo *res = NULL, *ai;
	struct ks_dsock *ds;
	double deadline;
	int rc, fd, err = 0;

	*out = NULL;
	if (c->canceled)
		return KS_ECANCELED;
	if (host == NULL && port == NULL)
		return open_unconnected(c, out);
	if (host == NULL || port == NULL)
		return KS_EINVAL;
	deadline = ev_now(c->wk->loop) +
		   (timeout > 0 ? timeout : DGRAM_OPEN_TIMEOUT);
	if ((rc = ks_resolve(c, host, port, SOCK_DGRAM, deadline, &res)) != KS_OK)
		return rc;
	rc = KS_EIO;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (dgram_socket(c, ai->ai_family, &fd) != 0) {
			err = errno;
			continue;
		}
		/* connect() on UDP only fixes the peer: no packet is sent,
		 * so it fails at once or not at all (unreachable network). */
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			err = errno;
			close(fd);
			continue;
		}
		if ((ds = dsock_new(c, fd, ai->ai_family)) == NULL) {
			close(fd);
			rc = KS_ENOMEM;
			break;
		}
		ds->connected = true;
		memcpy(&ds->peer, ai->ai_addr, ai->ai_addrlen);
		ds->peer_len = ai->ai_addrlen;
		*out = ds;
		rc = KS_OK;
		break;
	}
	freeaddrinfo(res);
	if (rc == KS_EIO) {
		c->err = err;
		ks_conn_log(c, KS_LOG_INFO, "udp %s:%s: %s", host, port,
			    strerror(err));
	}
	return rc;
}

void
ks_dgram_close(ks_dsock *ds)
{
	struct ks_conn *c = ds->conn;
	struct ks_dsock **pp;

	/* A listener's socket belongs to the daemon (also once a reload left
	 * the session a copy of it). */
	if (ds->session || ds->fd < 0)
		return;
	dsock_shut(ds);
	dsock_wake(ds, KS_ECLOSED);
	/* Freed now unless a coroutine still waits on it (it was just woken
	 * and will look at it once more) or the list is being walked: then
	 * with the connection. */
	if (ds->rwaiter != NULL || ds->wwaiter != NULL || c->dsocks_walking > 0)
		return;
	for (pp = &c->dsocks; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == ds) {
			*pp = ds->next;
			break;
		}
	}
	free(ds);
}

int
ks_dgram_errno(const ks_dsock *ds)
{
	return ds->err;
}

const struct sockaddr *
ks_dgram_local(const ks_dsock *ds, socklen_t *len)
{
	if (len != NULL)
		*len = ds->local_len;
	return (const struct sockaddr *)&ds->local;
}

const struct sockaddr *
ks_dgram_peer(const ks_dsock *ds, socklen_t *len)
{
	if (len != NULL)
		*len = ds->connected ? ds->peer_len : 0;
	return ds->connected ? (const struct sockaddr *)&ds->peer : NULL;
}
