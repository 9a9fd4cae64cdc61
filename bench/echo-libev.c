/*
 * echo-libev: the floor every benchmark scenario is compared with.
 *
 *   echo-libev [-H HOST] -p PORT [-u]
 *   echo-libev -U PATH
 *
 * The thinnest echo server libev allows: one loop, one process, no
 * coroutines, no allocation per request.  Per connection a fixed 16 KiB
 * buffer; on readiness it reads once and writes what it read straight
 * back.  EV_WRITE is armed only when the kernel took part of it, and
 * reading stops while output is pending (so a slow reader holds back its
 * writer and memory stays bounded).  Accepted sockets get TCP_NODELAY.
 *
 * It prints "listening on tcp HOST:PORT" (or "listening on unix PATH";
 * with -u also "listening on udp HOST:PORT", the same port) once it is
 * ready; port 0 picks an ephemeral port and the real one is printed.
 * SIGTERM and SIGINT end it with status 0.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <ev.h>

#define BUF_SIZE 16384
#define UDP_SIZE 65536

struct conn {
	ev_io io;	/* EV_READ while idle, EV_WRITE while output is pending */
	size_t off;	/* pending output: buf[off, len) */
	size_t len;
	char buf[BUF_SIZE];
};

static ev_io accept_w;
static ev_io udp_w;
static ev_timer retry_w;
static ev_signal term_w;
static ev_signal int_w;
static const char *unix_path;

static void
usage(FILE *f)
{
	fprintf(f, "usage: echo-libev [-H HOST] -p PORT [-u]\n"
		   "       echo-libev -U PATH\n"
		   "  -H HOST  address to listen on (default 127.0.0.1)\n"
		   "  -p PORT  TCP port (0: ephemeral, the real one is printed)\n"
		   "  -U PATH  Unix stream socket instead of TCP\n"
		   "  -u       echo UDP datagrams on the same port as well\n");
}

static void
conn_close(struct ev_loop *loop, struct conn *c)
{
	ev_io_stop(loop, &c->io);
	close(c->io.fd);
	free(c);
}

/* Switches the one watcher between reading and writing. */
static void
conn_want(struct ev_loop *loop, struct conn *c, int events)
{
	ev_io_stop(loop, &c->io);
	ev_io_set(&c->io, c->io.fd, events);
	ev_io_start(loop, &c->io);
}

static void
conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = (struct conn *)w;
	ssize_t n;

	if (revents & EV_WRITE) {
		n = write(w->fd, c->buf + c->off, c->len - c->off);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_close(loop, c);
			return;
		}
		c->off += (size_t)n;
		if (c->off == c->len) {
			c->off = c->len = 0;
			conn_want(loop, c, EV_READ);
		}
		return;
	}

	n = read(w->fd, c->buf, sizeof(c->buf));
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		conn_close(loop, c);	/* EOF or error: nothing is pending */
		return;
	}
	c->len = (size_t)n;
	n = write(w->fd, c->buf, c->len);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR) {
			conn_close(loop, c);
			return;
		}
		n = 0;
	}
	if ((size_t)n == c->len) {
		c->len = 0;
		return;
	}
	c->off = (size_t)n;
	conn_want(loop, c, EV_WRITE);
}

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_io_start(loop, &accept_w);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c;
	int fd, one = 1;

	(void)revents;
	for (;;) {
		fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: pause, do not spin. */
				ev_io_stop(loop, w);
				ev_timer_set(&retry_w, 0.1, 0.);
				ev_timer_start(loop, &retry_w);
			}
			return;
		}
		if ((c = malloc(sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		/* Fails harmlessly on Unix sockets. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->off = c->len = 0;
		ev_io_init(&c->io, conn_cb, fd, EV_READ);
		ev_io_start(loop, &c->io);
	}
}

static void
udp_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	static char dgram[UDP_SIZE];
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	ssize_t n;

	(void)loop;
	(void)revents;
	n = recvfrom(w->fd, dgram, sizeof(dgram), 0, (struct sockaddr *)&ss,
		     &len);
	if (n >= 0)
		sendto(w->fd, dgram, (size_t)n, 0, (struct sockaddr *)&ss, len);
}

static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static int
fail(const char *what)
{
	fprintf(stderr, "echo-libev: %s: %s\n", what, strerror(errno));
	return -1;
}

static int
listen_inet(const char *host, const char *port, int type, int want_port,
	    char *bound, size_t boundlen, int *bound_port)
{
	struct addrinfo hints, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];
	int fd, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = type;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
		fprintf(stderr, "echo-libev: %s: %s\n", host, gai_strerror(rc));
		return -1;
	}
	if (want_port > 0) {
		if (ai->ai_family == AF_INET6)
			((struct sockaddr_in6 *)ai->ai_addr)->sin6_port =
				htons((uint16_t)want_port);
		else
			((struct sockaddr_in *)ai->ai_addr)->sin_port =
				htons((uint16_t)want_port);
	}
	fd = socket(ai->ai_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return fail("socket");
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		freeaddrinfo(ai);
		close(fd);
		return fail("bind");
	}
	freeaddrinfo(ai);
	if (type == SOCK_STREAM && listen(fd, 4096) != 0) {
		close(fd);
		return fail("listen");
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		close(fd);
		return fail("getsockname");
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
		*bound_port = ntohs(s6->sin6_port);
		snprintf(bound, boundlen, "[%s]:%d", addr, *bound_port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
		*bound_port = ntohs(s4->sin_port);
		snprintf(bound, boundlen, "%s:%d", addr, *bound_port);
	}
	return fd;
}

static int
listen_unix(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "echo-libev: %s: path too long\n", path);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("socket");
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close(fd);
		return fail(path);
	}
	if (listen(fd, 4096) != 0) {
		close(fd);
		return fail("listen");
	}
	return fd;
}

int
main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *port = NULL;
	char bound[INET6_ADDRSTRLEN + 16], ubound[INET6_ADDRSTRLEN + 16];
	struct ev_loop *loop;
	int opt, udp = 0, fd, ufd = -1, tport = 0, uport = 0;

	while ((opt = getopt(argc, argv, "H:p:U:uh")) != -1) {
		switch (opt) {
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = optarg;
			break;
		case 'U':
			unix_path = optarg;
			break;
		case 'u':
			udp = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc || (port == NULL) == (unix_path == NULL) ||
	    (udp && unix_path != NULL)) {
		usage(stderr);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	if (unix_path != NULL) {
		fd = listen_unix(unix_path);
	} else {
		fd = listen_inet(host, port, SOCK_STREAM, 0, bound,
				 sizeof(bound), &tport);
		if (fd >= 0 && udp) {
			ufd = listen_inet(host, port, SOCK_DGRAM, tport, ubound,
					  sizeof(ubound), &uport);
			if (ufd < 0)
				return 1;
		}
	}
	if (fd < 0)
		return 1;

	loop = EV_DEFAULT;
	ev_io_init(&accept_w, accept_cb, fd, EV_READ);
	ev_io_start(loop, &accept_w);
	ev_init(&retry_w, retry_cb);
	if (ufd >= 0) {
		ev_io_init(&udp_w, udp_cb, ufd, EV_READ);
		ev_io_start(loop, &udp_w);
	}
	ev_signal_init(&term_w, stop_cb, SIGTERM);
	ev_signal_start(loop, &term_w);
	ev_signal_init(&int_w, stop_cb, SIGINT);
	ev_signal_start(loop, &int_w);

	if (unix_path != NULL)
		printf("listening on unix %s\n", unix_path);
	else
		printf("listening on tcp %s\n", bound);
	if (ufd >= 0)
		printf("listening on udp %s\n", ubound);
	fflush(stdout);

	ev_run(loop, 0);

	if (unix_path != NULL)
		unlink(unix_path);
	return 0;
}
