/*
 * Bound sockets: see lsock.h.  Creating, configuring and binding a
 * listener's socket, taking one from systemd, setting again on a kept
 * socket what a reload changed, and closing for good.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include "conf_keys.h"
#include "conn.h"
#include "log.h"
#include "lsock.h"
#include "util.h"

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

/*
 * The options a listening socket hands to the sockets it accepts (or, on
 * udp, its own).  fresh: a new socket, where the kernel's defaults need no
 * setting; otherwise (a kept socket after a reload) options back at their
 * default are set too, so that turning keep_alive off turns it off.
 */
static const char *
sockopts(int fd, const struct ks_lconf *lc, int family, int socktype,
	 bool fresh)
{
	bool tcp = family != AF_UNIX && socktype == SOCK_STREAM;

	if (family != AF_UNIX) {
		if (tcp && (lc->no_delay || !fresh) &&
		    setopt(fd, IPPROTO_TCP, TCP_NODELAY, lc->no_delay) != 0)
			return "TCP_NODELAY";
		if (tcp && (lc->keep_alive || !fresh) &&
		    setopt(fd, SOL_SOCKET, SO_KEEPALIVE, lc->keep_alive) != 0)
			return "SO_KEEPALIVE";
		if (lc->type_of_service > 0 || !fresh) {
			if (family == AF_INET &&
			    setopt(fd, IPPROTO_IP, IP_TOS, lc->type_of_service) != 0)
				return "IP_TOS";
			if (family == AF_INET6 &&
			    setopt(fd, IPPROTO_IPV6, IPV6_TCLASS,
				   lc->type_of_service) != 0)
				return "IPV6_TCLASS";
		}
		if (tcp && (lc->linger >= 0 || !fresh)) {
			struct linger lg = {.l_onoff = lc->linger >= 0,
					    .l_linger = KS_MAX(lc->linger, 0)};

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

const char *
ks_sockopts_apply(int fd, const struct ks_lconf *lc, int family, int socktype)
{
	return sockopts(fd, lc, family, socktype, true);
}

static int
socktype_of(const struct ks_lconf *lc)
{
	return lc->protocol == KS_PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
}

/* Options that must be set before bind(). */
static const char *
bind_options(int fd, const struct ks_lconf *lc, int family)
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
	return sockopts(fd, lc, family, socktype_of(lc), true);
}

/* A unix socket file's mode and owner, as the listener asks.  -1 (logged)
 * if it could not be set. */
static int
file_owner(const char *path, const struct ks_lconf *lc)
{
	if (lc->mode >= 0 && chmod(path, (mode_t)lc->mode) != 0) {
		ks_log_errno(KS_LOG_ERR, "listener %s: chmod %04o %s", lc->name,
			     lc->mode, path);
		return -1;
	}
	if ((lc->sock_uid != (uid_t)-1 || lc->sock_gid != (gid_t)-1) &&
	    chown(path, lc->sock_uid, lc->sock_gid) != 0) {
		ks_log_errno(KS_LOG_ERR, "listener %s: chown %s", lc->name,
			     path);
		return -1;
	}
	return 0;
}

static const char *
proto_name(int protocol)
{
	return protocol == KS_PROTO_UNIX  ? "unix"
	       : protocol == KS_PROTO_UDP ? "udp"
					  : "tcp";
}

static struct ks_lsock *
lsock_new(int fd, int family, int protocol, const struct sockaddr *sa,
	  socklen_t len)
{
	struct ks_lsock *ls = calloc(1, sizeof(*ls));

	if (ls == NULL)
		return NULL;
	ls->fd = fd;
	ls->family = family;
	ls->protocol = protocol;
	if (family == AF_UNIX) {
		const struct sockaddr_un *un = (const void *)sa;
		size_t off = offsetof(struct sockaddr_un, sun_path);

		ls->path = strndup(un->sun_path, len > off ? len - off : 0);
		if (ls->path == NULL) {
			free(ls);
			return NULL;
		}
		snprintf(ls->bound, sizeof(ls->bound), "%s", ls->path);
	} else {
		ks_addr_format(sa, len, ls->bound, sizeof(ls->bound));
	}
	return ls;
}

struct ks_lsock *
ks_lsock_bind(struct ks_lconf *lc)
{
	struct sockaddr_storage ss, bound;
	socklen_t len, blen = sizeof(bound);
	struct ks_lsock *ls = NULL;
	const char *what = "socket";
	mode_t mask = 0;
	int fd = -1, rc;

	if (build_addr(lc, &ss, &len) != 0) {
		ks_log(KS_LOG_ERR, "listener %s: bad address %s", lc->name,
		       lc->address);
		return NULL;
	}
	if (lc->protocol == KS_PROTO_UNIX && clear_stale_unix(lc, &ss, len) != 0) {
		what = "unix socket path";
		goto fail;
	}
	fd = socket(ss.ss_family, socktype_of(lc) | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		goto fail;
	if ((what = bind_options(fd, lc, ss.ss_family)) != NULL)
		goto fail;
	what = "bind";
	/* A unix socket file is born with the mode it should have: no window
	 * in which the umask's is the one that counts. */
	if (lc->protocol == KS_PROTO_UNIX && lc->mode >= 0)
		mask = umask(0777 & ~(mode_t)lc->mode);
	rc = bind(fd, (struct sockaddr *)&ss, len);
	if (lc->protocol == KS_PROTO_UNIX && lc->mode >= 0)
		umask(mask);
	if (rc != 0)
		goto fail;
	what = "listen";
	if (lc->protocol != KS_PROTO_UDP && listen(fd, lc->backlog) != 0)
		goto fail;
	what = "getsockname";
	if (getsockname(fd, (struct sockaddr *)&bound, &blen) != 0)
		goto fail;
	what = "memory";
	if ((ls = lsock_new(fd, ss.ss_family, lc->protocol,
			    lc->protocol == KS_PROTO_UNIX
				    ? (struct sockaddr *)&ss
				    : (struct sockaddr *)&bound,
			    lc->protocol == KS_PROTO_UNIX ? len : blen)) == NULL)
		goto fail;
	ls->origin = KS_LSOCK_BOUND;
	ls->unlink_path = lc->protocol == KS_PROTO_UNIX;
	if (lc->protocol == KS_PROTO_UNIX && file_owner(ls->path, lc) != 0) {
		ks_lsock_close(ls);
		return NULL;
	}
	if (ks_lsock_configure(ls, lc) != 0) {
		ks_lsock_close(ls);
		return NULL;
	}
	ks_log(KS_LOG_INFO, "listener %s listening on %s %s", lc->name,
	       proto_name(lc->protocol), ls->bound);
	return ls;

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

struct ks_lsock *
ks_lsock_adopt(int fd, const char *name, enum ks_lsock_origin origin)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss), ilen = sizeof(int);
	struct ks_lsock *ls;
	int type = 0, listening = 0, protocol, fl;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ilen) != 0) {
		ks_log_errno(KS_LOG_ERR, "passed descriptor %d%s%s%s: not a "
			     "socket", fd, name ? " (" : "", name ? name : "",
			     name ? ")" : "");
		close(fd);
		return NULL;
	}
	ilen = sizeof(int);
	if (type == SOCK_STREAM)
		(void)getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
				 &ilen);
	if (ss.ss_family == AF_UNIX && type == SOCK_STREAM)
		protocol = KS_PROTO_UNIX;
	else if ((ss.ss_family == AF_INET || ss.ss_family == AF_INET6) &&
		 type == SOCK_STREAM)
		protocol = KS_PROTO_TCP;
	else if ((ss.ss_family == AF_INET || ss.ss_family == AF_INET6) &&
		 type == SOCK_DGRAM)
		protocol = KS_PROTO_UDP;
	else
		protocol = -1;
	if (protocol < 0 || (type == SOCK_STREAM && !listening)) {
		ks_log(KS_LOG_ERR, "passed descriptor %d%s%s%s: %s", fd,
		       name ? " (" : "", name ? name : "", name ? ")" : "",
		       protocol < 0 ? "neither a tcp, udp nor unix stream socket"
				    : "not a listening socket (Accept=yes?)");
		close(fd);
		return NULL;
	}
	/* Never blocking the loop.  (Close-on-exec is the caller's call: a
	 * socket an upgrade handed on must survive one more exec should the
	 * new image go back to the old one.) */
	if ((fl = fcntl(fd, F_GETFL)) >= 0)
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if ((ls = lsock_new(fd, ss.ss_family, protocol, (struct sockaddr *)&ss,
			    len)) == NULL ||
	    (name != NULL && (ls->name = strdup(name)) == NULL)) {
		ks_log(KS_LOG_ERR, "passed descriptor %d: out of memory", fd);
		if (ls != NULL)
			free(ls->path);
		free(ls);
		close(fd);
		return NULL;
	}
	ls->origin = origin;
	/* systemd's socket unit owns its path; one bound by an earlier image
	 * of this daemon is ours. */
	ls->unlink_path = origin == KS_LSOCK_BOUND && protocol == KS_PROTO_UNIX;
	return ls;
}

bool
ks_lsock_named(const struct ks_lsock *ls, const struct ks_lconf *lc)
{
	return ls->name != NULL && strcmp(ls->name, lc->name) == 0;
}

/* The same protocol and address as lc's configuration says (a socket
 * nobody has claimed yet, passed in: compare what it is bound to). */
static bool
same_address(const struct ks_lsock *ls, const struct ks_lconf *lc)
{
	struct sockaddr_storage want, got;
	socklen_t wlen, glen = sizeof(got);

	if (ls->protocol != (int)lc->protocol)
		return false;
	if (lc->protocol == KS_PROTO_UNIX)
		return ls->path != NULL && strcmp(ls->path, lc->address) == 0;
	if (build_addr(lc, &want, &wlen) != 0 ||
	    getsockname(ls->fd, (struct sockaddr *)&got, &glen) != 0 ||
	    want.ss_family != got.ss_family || lc->port == 0)
		return false;
	if (want.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&want,
					 *b = (const void *)&got;

		return a->sin_port == b->sin_port &&
		       a->sin_addr.s_addr == b->sin_addr.s_addr;
	} else {
		const struct sockaddr_in6 *a = (const void *)&want,
					  *b = (const void *)&got;

		return a->sin6_port == b->sin6_port &&
		       memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0;
	}
}

bool
ks_lsock_matches(const struct ks_lsock *ls, const struct ks_lconf *lc)
{
	const struct ks_lconf *old = ls->lc;

	if (old == NULL)
		return ks_lsock_named(ls, lc) || same_address(ls, lc);
	if (old->protocol != lc->protocol ||
	    strcmp(old->address, lc->address) != 0)
		return false;
	if (lc->protocol == KS_PROTO_UNIX)
		return true;
	if (old->port != lc->port)
		return false;
	/* An ephemeral port (0) only matches the listener of the same name,
	 * which got that port. */
	return lc->port != 0 || strcmp(old->name, lc->name) == 0;
}

/* A reload changed a key that only a new socket would take. */
static void
log_bind_changes(const struct ks_lconf *old, const struct ks_lconf *lc)
{
	unsigned scope = ks_key_scope_of(lc->protocol);
	const struct ks_key *k;
	char was[64], now[64];
	size_t i;

	for (i = 0; i < ks_nlistener_keys; i++) {
		k = &ks_listener_keys[i];
		if (k->when != KS_AT_BIND || k->type == KS_KEY_CUSTOM ||
		    !(k->scope & scope) || ks_key_same(k, old, lc))
			continue;
		ks_key_format(k, old, was, sizeof(was));
		ks_key_format(k, lc, now, sizeof(now));
		ks_log(KS_LOG_WARN, "listener %s: %s changed from %s to %s, "
		       "but that takes a new socket: the running one keeps %s "
		       "until ksockd restarts (or the listener moves to another "
		       "address)", lc->name, k->name, was, now, was);
	}
	if ((old->send_buffer > 0 && lc->send_buffer == 0) ||
	    (old->receive_buffer > 0 && lc->receive_buffer == 0))
		ks_log(KS_LOG_WARN, "listener %s: a buffer size set back to 0 "
		       "(the system's) takes a new socket: the running one "
		       "keeps the old size until ksockd restarts", lc->name);
}

int
ks_lsock_configure(struct ks_lsock *ls, struct ks_lconf *lc)
{
	struct ks_lconf *old = ls->lc;
	const char *what;
	int rc = 0;

	if (old == lc)
		return 0;
	/* A socket made for lc has its options already; one that stays, or
	 * one passed in, gets them now. */
	if (old != NULL || ls->origin == KS_LSOCK_SYSTEMD) {
		if (old != NULL)
			log_bind_changes(old, lc);
		if ((what = sockopts(ls->fd, lc, ls->family, socktype_of(lc),
				     false)) != NULL) {
			ks_log_errno(KS_LOG_ERR, "listener %s: %s", lc->name,
				     what);
			rc = -1;
		}
		if (lc->protocol != KS_PROTO_UDP &&
		    (old == NULL || old->backlog != lc->backlog) &&
		    listen(ls->fd, lc->backlog) != 0) {
			ks_log_errno(KS_LOG_ERR, "listener %s: listen (backlog "
				     "%d)", lc->name, lc->backlog);
			rc = -1;
		}
		if (lc->protocol == KS_PROTO_UNIX && ls->path != NULL &&
		    file_owner(ls->path, lc) != 0)
			rc = -1;
	}
	if (lc->protocol == KS_PROTO_UDP &&
	    apply_udp_options(ls->fd, lc, ls->family, old) != 0)
		rc = -1;
	ks_conf_ref(lc->conf);
	if (old != NULL)
		ks_conf_unref(old->conf);
	ls->lc = lc;
	lc->lsock = ls;
	return rc;
}

void
ks_lsock_close(struct ks_lsock *ls)
{
	close(ls->fd);
	if (ls->unlink_path && ls->path != NULL)
		unlink(ls->path);
	if (ls->lc != NULL)
		ks_conf_unref(ls->lc->conf);
	free(ls->path);
	free(ls->name);
	free(ls);
}
