#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"
#include "conn.h"
#include "dgram.h"
#include "listener.h"
#include "log.h"
#include "util.h"
#include "worker.h"

#define ACCEPT_BATCH 64       /* accepts per wake-up, so others get a turn */
#define EMFILE_RETRY 0.1      /* seconds before accepting again */
#define EMFILE_LOG_EVERY 5.0  /* seconds between fd-exhaustion messages */
#define SESSION_RESTART 1.0   /* seconds before a udp handler runs again */

static int
build_addr(const struct ks_lconf *lc, struct sockaddr_storage *ss,
	   socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (lc->protocol == KS_PROTO_UNIX) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;

		if (strlen(lc->address) >= sizeof(un->sun_path))
			return -1;
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, lc->address);
		*len = (socklen_t)sizeof(*un);
		return 0;
	}
	{
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET, lc->address, &in->sin_addr) == 1) {
			in->sin_family = AF_INET;
			in->sin_port = htons((uint16_t)lc->port);
			*len = sizeof(*in);
			return 0;
		}
		if (inet_pton(AF_INET6, lc->address, &in6->sin6_addr) == 1) {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons((uint16_t)lc->port);
			*len = sizeof(*in6);
			return 0;
		}
	}
	return -1;
}

/* A unix socket file left by a previous run blocks bind(); remove it only
 * if it is a socket nobody accepts on. */
static int
clear_stale_unix(const struct ks_lconf *lc, const struct sockaddr_storage *ss,
		 socklen_t len)
{
	struct stat sb;
	int fd, rc;

	if (lstat(lc->address, &sb) != 0)
		return 0;
	if (!S_ISSOCK(sb.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	rc = connect(fd, (const struct sockaddr *)ss, len);
	close(fd);
	if (rc == 0) {
		errno = EADDRINUSE;
		return -1;
	}
	if (errno != ECONNREFUSED)
		return 0; /* let bind() report what is wrong */
	return unlink(lc->address);
}

static int
setopt(int fd, int level, int name, int value)
{
	return setsockopt(fd, level, name, &value, sizeof(value));
}

/* Joins (or leaves) one multicast group on the configured interface. */
static int
mcast_member(int fd, const struct ks_lconf *lc, const struct ks_mcast *m,
	     bool join)
{
	unsigned ifindex = lc->mcast_if != NULL ? if_nametoindex(lc->mcast_if) : 0;

	if (lc->mcast_if != NULL && ifindex == 0)
		return -1;
	if (m->family == AF_INET) {
		struct ip_mreqn mr;

		memset(&mr, 0, sizeof(mr));
		memcpy(&mr.imr_multiaddr, m->addr, 4);
		mr.imr_ifindex = (int)ifindex;
		return setsockopt(fd, IPPROTO_IP,
				  join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP,
				  &mr, sizeof(mr));
	}
	{
		struct ipv6_mreq mr;

		memcpy(&mr.ipv6mr_multiaddr, m->addr, 16);
		mr.ipv6mr_interface = ifindex;
		return setsockopt(fd, IPPROTO_IPV6,
				  join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP,
				  &mr, sizeof(mr));
	}
}

static bool
same_interface(const struct ks_lconf *a, const struct ks_lconf *b)
{
	if (a->mcast_if == NULL || b->mcast_if == NULL)
		return a->mcast_if == b->mcast_if;
	return strcmp(a->mcast_if, b->mcast_if) == 0;
}

/* The group is joined by lc's socket (same group, same interface). */
static bool
joined(const struct ks_lconf *lc, const struct ks_lconf *other,
       const struct ks_mcast *m)
{
	size_t i;

	if (lc == NULL || !same_interface(lc, other))
		return false;
	for (i = 0; i < lc->nmcast; i++)
		if (lc->mcast[i].family == m->family &&
		    memcmp(lc->mcast[i].addr, m->addr, 16) == 0)
			return true;
	return false;
}

/* The udp-only options; `old` (a reload) says which groups are joined
 * already.  Logs what failed; -1 if anything did. */
static int
apply_udp_options(int fd, const struct ks_lconf *lc, int family,
		  const struct ks_lconf *old)
{
	int rc = 0;
	size_t i;

	if (setopt(fd, SOL_SOCKET, SO_BROADCAST, lc->broadcast) != 0) {
		ks_log_errno(KS_LOG_ERR, "listener %s: SO_BROADCAST", lc->name);
		rc = -1;
	}
	/* Every datagram carries the address it was sent to, so replies
	 * leave from that address on a multi-homed host. */
	if ((family == AF_INET && setopt(fd, IPPROTO_IP, IP_PKTINFO, 1) != 0) ||
	    (family == AF_INET6 &&
	     setopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1) != 0)) {
		ks_log_errno(KS_LOG_ERR, "listener %s: PKTINFO", lc->name);
		rc = -1;
	}
	if (lc->mcast_if != NULL) {
		unsigned ifindex = if_nametoindex(lc->mcast_if);
		struct ip_mreqn mr;

		memset(&mr, 0, sizeof(mr));
		mr.imr_ifindex = (int)ifindex;
		if (ifindex == 0 ||
		    (family == AF_INET &&
		     setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr,
				sizeof(mr)) != 0) ||
		    (family == AF_INET6 &&
		     setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex,
				sizeof(ifindex)) != 0)) {
			ks_log_errno(KS_LOG_ERR, "listener %s: multicast_interface %s",
				     lc->name, lc->mcast_if);
			rc = -1;
		}
	}
	for (i = 0; old != NULL && i < old->nmcast; i++)
		if (!joined(lc, old, &old->mcast[i]))
			(void)mcast_member(fd, old, &old->mcast[i], false);
	for (i = 0; i < lc->nmcast; i++) {
		if (joined(old, lc, &lc->mcast[i]))
			continue;
		if (mcast_member(fd, lc, &lc->mcast[i], true) != 0) {
			ks_log_errno(KS_LOG_ERR, "listener %s: joining multicast "
				     "group %s%s%s", lc->name, lc->mcast[i].text,
				     lc->mcast_if != NULL ? " on " : "",
				     lc->mcast_if != NULL ? lc->mcast_if : "");
			rc = -1;
		} else {
			ks_log(KS_LOG_INFO, "listener %s joined multicast group %s%s%s",
			       lc->name, lc->mcast[i].text,
			       lc->mcast_if != NULL ? " on " : "",
			       lc->mcast_if != NULL ? lc->mcast_if : "");
		}
	}
	return rc;
}

/* Options set on the listening socket are inherited by accepted ones. */
static const char *
apply_options(int fd, const struct ks_lconf *lc, int family)
{
	if (lc->reuse_address && family != AF_UNIX &&
	    setopt(fd, SOL_SOCKET, SO_REUSEADDR, 1) != 0)
		return "SO_REUSEADDR";
	if (lc->reuse_port && setopt(fd, SOL_SOCKET, SO_REUSEPORT, 1) != 0)
		return "SO_REUSEPORT";
	/* One listener per family, as nginx does: [::] does not also take
	 * IPv4, so 0.0.0.0 and [::] can be configured side by side. */
	if (family == AF_INET6 && setopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) != 0)
		return "IPV6_V6ONLY";
	return ks_sockopts_apply(fd, lc, family,
				 lc->protocol == KS_PROTO_UDP ? SOCK_DGRAM
							      : SOCK_STREAM);
}

const char *
ks_sockopts_apply(int fd, const struct ks_lconf *lc, int family, int socktype)
{
	bool tcp = family != AF_UNIX && socktype == SOCK_STREAM;

	if (family != AF_UNIX) {
		if (tcp && lc->no_delay &&
		    setopt(fd, IPPROTO_TCP, TCP_NODELAY, 1) != 0)
			return "TCP_NODELAY";
		if (tcp && lc->keep_alive &&
		    setopt(fd, SOL_SOCKET, SO_KEEPALIVE, 1) != 0)
			return "SO_KEEPALIVE";
		if (lc->type_of_service > 0) {
			if (family == AF_INET &&
			    setopt(fd, IPPROTO_IP, IP_TOS, lc->type_of_service) != 0)
				return "IP_TOS";
			if (family == AF_INET6 &&
			    setopt(fd, IPPROTO_IPV6, IPV6_TCLASS,
				   lc->type_of_service) != 0)
				return "IPV6_TCLASS";
		}
		if (tcp && lc->linger >= 0) {
			struct linger lg = {.l_onoff = 1, .l_linger = lc->linger};

			if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg,
				       sizeof(lg)) != 0)
				return "SO_LINGER";
		}
	}
	if (lc->send_buffer > 0 &&
	    setopt(fd, SOL_SOCKET, SO_SNDBUF, lc->send_buffer) != 0)
		return "SO_SNDBUF";
	if (lc->receive_buffer > 0 &&
	    setopt(fd, SOL_SOCKET, SO_RCVBUF, lc->receive_buffer) != 0)
		return "SO_RCVBUF";
	return NULL;
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ks_listener *l = KS_CONTAINER_OF(w, struct ks_listener, io);
	struct ks_worker *wk = l->wk;
	struct sockaddr_storage peer;
	socklen_t len;
	int i, fd;

	(void)revents;
	for (i = 0; i < ACCEPT_BATCH; i++) {
		len = sizeof(peer);
		fd = accept4(l->fd, (struct sockaddr *)&peer, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			switch (errno) {
			case EAGAIN:
#if EAGAIN != EWOULDBLOCK
			case EWOULDBLOCK:
#endif
				return;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				/* Out of descriptors: the pending connection
				 * stays in the backlog and the socket stays
				 * readable, so pause instead of spinning. */
				wk->stats.accept_errors++;
				if (ev_now(loop) - l->last_emfile_log >=
				    EMFILE_LOG_EVERY) {
					ks_log_errno(KS_LOG_ERR,
						     "listener %s: accept (pausing %gs)",
						     l->lc->name, EMFILE_RETRY);
					l->last_emfile_log = ev_now(loop);
				}
				ev_io_stop(loop, &l->io);
				ev_timer_set(&l->retry, EMFILE_RETRY, 0);
				ev_timer_start(loop, &l->retry);
				return;
			default:
				wk->stats.accept_errors++;
				ks_log_errno(KS_LOG_WARN, "listener %s: accept",
					     l->lc->name);
				return;
			}
		}
		ks_conn_start(wk, l->lc, fd, (struct sockaddr *)&peer, len);
	}
}

/* udp: the listener's handler runs as a session, one per generation. */
static void
session_start(struct ks_listener *l)
{
	if (l->session != NULL || l->wk->stopping)
		return;
	if (ks_conn_start_session(l->wk, l->lc, l) == NULL) {
		ev_timer_set(&l->retry, SESSION_RESTART, 0);
		ev_timer_start(l->wk->loop, &l->retry);
	}
}

void
ks_listener_session_ended(struct ks_listener *l)
{
	l->session = NULL;
	if (l->wk->stopping)
		return;
	ks_log(KS_LOG_WARN, "listener %s: datagram handler returned; "
	       "starting it again in %gs", l->lc->name, SESSION_RESTART);
	ev_timer_stop(l->wk->loop, &l->retry);
	ev_timer_set(&l->retry, SESSION_RESTART, 0);
	ev_timer_start(l->wk->loop, &l->retry);
}

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ks_listener *l = KS_CONTAINER_OF(w, struct ks_listener, retry);

	(void)revents;
	if (l->wk->stopping)
		return;
	if (l->lc->protocol == KS_PROTO_UDP)
		session_start(l);
	else
		ev_io_start(loop, &l->io);
}

struct ks_listener *
ks_listener_open(struct ks_worker *wk, struct ks_lconf *lc)
{
	struct sockaddr_storage ss, bound;
	socklen_t len, blen = sizeof(bound);
	struct ks_listener *l = NULL;
	const char *what = "socket";
	int fd = -1;

	if (build_addr(lc, &ss, &len) != 0) {
		ks_log(KS_LOG_ERR, "listener %s: bad address %s", lc->name,
		       lc->address);
		return NULL;
	}
	if (lc->protocol == KS_PROTO_UNIX && clear_stale_unix(lc, &ss, len) != 0) {
		what = "unix socket path";
		goto fail;
	}
	fd = socket(ss.ss_family,
		    (lc->protocol == KS_PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM) |
			    SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		goto fail;
	if ((what = apply_options(fd, lc, ss.ss_family)) != NULL)
		goto fail;
	what = "bind";
	if (bind(fd, (struct sockaddr *)&ss, len) != 0)
		goto fail;
	what = "listen";
	if (lc->protocol != KS_PROTO_UDP && listen(fd, lc->backlog) != 0)
		goto fail;
	if (lc->protocol == KS_PROTO_UDP &&
	    apply_udp_options(fd, lc, ss.ss_family, NULL) != 0) {
		close(fd); /* logged already */
		return NULL;
	}
	what = "getsockname";
	if (getsockname(fd, (struct sockaddr *)&bound, &blen) != 0)
		goto fail;
	what = "memory";
	if ((l = calloc(1, sizeof(*l))) == NULL)
		goto fail;
	l->wk = wk;
	l->lc = lc;
	l->fd = fd;
	l->family = ss.ss_family;
	if (lc->protocol == KS_PROTO_UNIX)
		snprintf(l->bound, sizeof(l->bound), "%s", lc->address);
	else
		ks_addr_format((struct sockaddr *)&bound, blen, l->bound,
			       sizeof(l->bound));
	ks_conf_ref(lc->conf);
	ev_io_init(&l->io, accept_cb, fd, EV_READ);
	ev_init(&l->retry, retry_cb);
	ks_log(KS_LOG_INFO, "listener %s listening on %s %s", lc->name,
	       lc->protocol == KS_PROTO_UNIX  ? "unix"
	       : lc->protocol == KS_PROTO_UDP ? "udp"
					      : "tcp",
	       l->bound);
	return l;

fail:
	if (lc->protocol == KS_PROTO_UNIX)
		ks_log_errno(KS_LOG_ERR, "listener %s: %s: %s", lc->name,
			     lc->address, what);
	else
		ks_log_errno(KS_LOG_ERR, "listener %s: %s port %d: %s",
			     lc->name, lc->address, lc->port, what);
	if (fd >= 0)
		close(fd);
	return NULL;
}

void
ks_listener_start(struct ks_listener *l)
{
	if (l->lc->protocol == KS_PROTO_UDP)
		session_start(l);
	else
		ev_io_start(l->wk->loop, &l->io);
}

void
ks_listener_stop(struct ks_listener *l)
{
	ev_io_stop(l->wk->loop, &l->io);
	ev_timer_stop(l->wk->loop, &l->retry);
}

void
ks_listener_set_conf(struct ks_listener *l, struct ks_lconf *lc)
{
	struct ks_lconf *old = l->lc;

	ks_conf_ref(lc->conf);
	l->lc = lc;
	if (lc->protocol == KS_PROTO_UDP) {
		/* The new generation's handler takes the socket over; the
		 * old one drains what it has read and may still reply. */
		struct ks_conn *prev = l->session;

		(void)ks_sockopts_apply(l->fd, lc, l->family, SOCK_DGRAM);
		(void)apply_udp_options(l->fd, lc, l->family, old);
		/* Forgotten first: the old handler may return inside the
		 * retire, and that must not look like a handler that quit. */
		l->session = NULL;
		if (prev != NULL)
			ks_dsock_retire(prev->session);
		ev_timer_stop(l->wk->loop, &l->retry);
		session_start(l);
	}
	ks_conf_unref(old->conf);
}

void
ks_listener_close(struct ks_listener *l)
{
	ks_listener_stop(l);
	ks_dsock_detach_all(l);
	l->session = NULL;
	close(l->fd);
	if (l->lc->protocol == KS_PROTO_UNIX)
		unlink(l->lc->address);
	ks_conf_unref(l->lc->conf);
	free(l);
}
