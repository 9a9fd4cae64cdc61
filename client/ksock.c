/*
 * ksock: a line-oriented client for TCP and Unix sockets, with optional
 * TLS, built on ksockd's own core (worker loop, coroutines, streams, the
 * GnuTLS client).  It is the seed's sockets-client: every line the server
 * sends goes to stdout, every stdin line goes to the server; at stdin EOF
 * the write side is shut down (half-close) and the server's output is
 * still printed until it closes.
 *
 * Three coroutines' worth of work runs on one ks_worker loop: the main
 * coroutine connects, runs the TLS handshake and then copies server lines
 * to stdout; a second one copies stdin lines to the server.
 *
 * With --udp, ksock_udp_main (ksock_udp.c) runs in place of net_main: one
 * datagram per stdin line, one stdout line per datagram.  The state and
 * the helpers both modes share are declared in ksock.h.
 *
 * Standard input is read by a small helper thread with plain blocking
 * read()s and handed to the loop through a pipe.  That one path works for
 * every kind of stdin: epoll refuses regular files and /dev/null, and
 * putting a terminal into O_NONBLOCK mode would also affect stdout and
 * stderr (a shell usually opens all three on one file description) and
 * the shell itself after an abnormal exit.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "coro.h"
#include "log.h"
#include "stream.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#include "ksock.h"

#define STACK_SIZE (256 * 1024) /* GnuTLS handshakes run on it */
#define DEFAULT_TIMEOUT 10.0
#define DEFAULT_WAIT 1.0

void
ksock_set_status(struct ksock *k, int status)
{
	if (k->status < 0)
		k->status = status;
}

void
ksock_msg(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("ksock: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The core logs through this: warnings always reach stderr, info only with
 * -v; the last message is kept because tls.c logs why a handshake failed
 * (at info level) just before returning KS_ETLS. */
static void
log_sink(int level, const char *text, void *ud)
{
	struct ksock *k = ud;

	size_t n;

	/* GnuTLS's verification text ends in a space */
	snprintf(k->lastlog, sizeof(k->lastlog), "%s", text);
	n = strlen(k->lastlog);
	while (n > 0 && k->lastlog[n - 1] == ' ')
		k->lastlog[--n] = '\0';
	text = k->lastlog;
	if (level <= KS_LOG_WARN || (k->verbose && level <= KS_LOG_INFO))
		ksock_msg("%s%s", level == KS_LOG_WARN ? "warning: " : "",
			  text);
}

/* ---- command line ----------------------------------------------------- */

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: ksock [options] HOST PORT\n"
		"       ksock [options] unix:PATH\n"
		"       ksock --udp [-w SEC] [-v] HOST PORT\n"
		"Prints what the server sends, sends standard input line by line.\n"
		"  --udp              one datagram per line, one line per datagram\n"
		"  -w, --wait SEC     --udp: wait for replies after the end of\n"
		"                     input until SEC s pass without one (default 1)\n"
		"  --tls              use TLS\n"
		"  --ca FILE          trusted CAs (PEM; default: system store)\n"
		"  --sni NAME         server name to send and verify (default: HOST)\n"
		"  --cert FILE        client certificate (PEM), with --key\n"
		"  --key FILE         client private key (PEM)\n"
		"  --alpn LIST        ALPN protocols, comma-separated\n"
		"  --priority STR     GnuTLS priority string\n"
		"  --insecure         do not verify the server certificate\n"
		"  -t, --timeout SEC  connect + handshake timeout (default 10, 0: none)\n"
		"  -v, --verbose      connection and TLS details on stderr\n"
		"  -h, --help         this help\n"
		"  -V, --version      print the version\n"
		"Exit status: 0 ok, 1 usage, 2 network error, 3 TLS failure, "
		"4 timeout.\n");
}

enum {
	OPT_TLS = 256,
	OPT_CA,
	OPT_SNI,
	OPT_CERT,
	OPT_KEY,
	OPT_ALPN,
	OPT_PRIORITY,
	OPT_INSECURE,
	OPT_UDP,
};

static const struct option long_opts[] = {
	{"tls", no_argument, NULL, OPT_TLS},
	{"ca", required_argument, NULL, OPT_CA},
	{"sni", required_argument, NULL, OPT_SNI},
	{"cert", required_argument, NULL, OPT_CERT},
	{"key", required_argument, NULL, OPT_KEY},
	{"alpn", required_argument, NULL, OPT_ALPN},
	{"priority", required_argument, NULL, OPT_PRIORITY},
	{"insecure", no_argument, NULL, OPT_INSECURE},
	{"udp", no_argument, NULL, OPT_UDP},
	{"wait", required_argument, NULL, 'w'},
	{"timeout", required_argument, NULL, 't'},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

/* A number of seconds for an option: 0, or -1 with a message. */
static int
parse_seconds(const char *arg, const char *what, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(arg, &end);
	if (errno != 0 || end == arg || *end != '\0' ||
	    !(*out >= 0 && *out < 1e9)) {
		ksock_msg("bad %s '%s' (seconds, 0: none)", what, arg);
		return -1;
	}
	return 0;
}

/* 0 to go on, else an exit status (-h and -V end with 0 via *done). */
static int
parse_args(struct ksock *k, int argc, char **argv, bool *done)
{
	static char hostbuf[256];
	bool wait_set = false;
	int c, n;

	*done = false;
	while ((c = getopt_long(argc, argv, "hVvt:w:", long_opts, NULL)) !=
	       -1) {
		switch (c) {
		case OPT_TLS: k->use_tls = true; break;
		case OPT_CA: k->tls.ca_file = optarg; break;
		case OPT_SNI: k->tls.server_name = optarg; break;
		case OPT_CERT: k->tls.cert_file = optarg; break;
		case OPT_KEY: k->tls.key_file = optarg; break;
		case OPT_ALPN: k->tls.alpn = optarg; break;
		case OPT_PRIORITY: k->tls.priority = optarg; break;
		case OPT_INSECURE: k->tls.insecure = 1; break;
		case OPT_UDP: k->udp = true; break;
		case 'v': k->verbose++; break;
		case 't':
			if (parse_seconds(optarg, "timeout", &k->timeout) != 0)
				return EXIT_USAGE;
			break;
		case 'w':
			if (parse_seconds(optarg, "wait", &k->wait) != 0)
				return EXIT_USAGE;
			wait_set = true;
			break;
		case 'h':
			usage(stdout);
			*done = true;
			return EXIT_OK;
		case 'V':
			printf("ksock %s\n", PACKAGE_VERSION);
			*done = true;
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	n = argc - optind;
	if (n == 1 && strncmp(argv[optind], "unix:", 5) == 0) {
		k->unix_path = argv[optind] + 5;
		if (*k->unix_path == '\0') {
			ksock_msg("empty unix socket path");
			return EXIT_USAGE;
		}
	} else if (n == 2) {
		k->host = argv[optind];
		k->port = argv[optind + 1];
		/* "[::1]" as well as "::1" */
		n = (int)strlen(k->host);
		if (n > 2 && n < (int)sizeof(hostbuf) + 2 && k->host[0] == '[' &&
		    k->host[n - 1] == ']') {
			memcpy(hostbuf, k->host + 1, (size_t)n - 2);
			hostbuf[n - 2] = '\0';
			k->host = hostbuf;
		}
	} else {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (k->udp && k->use_tls) {
		ksock_msg("--tls cannot be used with --udp (no DTLS)");
		return EXIT_USAGE;
	}
	if (k->udp && k->unix_path != NULL) {
		ksock_msg("--udp needs HOST PORT, not unix:PATH");
		return EXIT_USAGE;
	}
	if (wait_set && !k->udp) {
		ksock_msg("--wait needs --udp");
		return EXIT_USAGE;
	}
	if ((k->tls.cert_file != NULL) != (k->tls.key_file != NULL)) {
		ksock_msg("--cert and --key go together");
		return EXIT_USAGE;
	}
	if (!k->use_tls && (k->tls.ca_file || k->tls.server_name ||
			    k->tls.cert_file || k->tls.alpn || k->tls.priority ||
			    k->tls.insecure)) {
		ksock_msg("TLS options need --tls");
		return EXIT_USAGE;
	}
	/* The host is both the SNI and the name verified, unless --sni says
	 * otherwise (tls.c sends no SNI for an address literal). */
	if (k->tls.server_name == NULL && k->host != NULL)
		k->tls.server_name = k->host;
	return 0;
}

/* ---- connecting --------------------------------------------------------- */

static void
deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ksock *k = w->data;

	(void)loop;
	(void)revents;
	if (k->waiter != NULL)
		ks_coro_wake(k->waiter, KS_ETIMEDOUT);
	else if (k->net_ready)
		ks_stream_wake_all(&k->net, KS_ETIMEDOUT);
}

static void
connect_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ksock *k = w->data;

	(void)loop;
	(void)revents;
	if (k->waiter != NULL)
		ks_coro_wake(k->waiter, KS_OK);
}

void
ksock_describe_addr(const struct sockaddr *sa, socklen_t len, char *buf,
		    size_t n)
{
	char h[INET6_ADDRSTRLEN], p[16];

	if (getnameinfo(sa, len, h, sizeof(h), p, sizeof(p),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(buf, n, "?");
	else if (sa->sa_family == AF_INET6)
		snprintf(buf, n, "[%s]:%s", h, p);
	else
		snprintf(buf, n, "%s:%s", h, p);
}

/* Coroutine context: one non-blocking connect, waited for under the
 * deadline.  Returns the fd, or -1 with *rc (KS_EIO with errno set, or
 * KS_ETIMEDOUT / KS_ECANCELED). */
static int
connect_one(struct ksock *k, const struct sockaddr *sa, socklen_t len,
	    int *rc)
{
	ev_io w;
	socklen_t elen = sizeof(int);
	int fd, err = 0, one = 1;

	*rc = KS_EIO;
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, sa, len) == 0)
		goto connected;
	if (errno != EINPROGRESS) {
		err = errno;
		goto fail;
	}
	ev_io_init(&w, connect_io_cb, fd, EV_WRITE);
	w.data = k;
	ev_io_start(k->loop, &w);
	k->waiter = ks_coro_self(&k->wk.sched);
	*rc = ks_coro_suspend(&k->wk.sched);
	k->waiter = NULL;
	ev_io_stop(k->loop, &w);
	if (*rc != KS_OK)
		goto fail;
	*rc = KS_EIO;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
		err = errno;
	if (err != 0)
		goto fail;
connected:
	if (sa->sa_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*rc = KS_OK;
	return fd;
fail:
	close(fd);
	errno = err;
	return -1;
}

/* Coroutine context: tries each address in turn; KS_OK with the stream
 * set up, or the status of the last failure (reported here). */
static int
open_connection(struct ksock *k)
{
	struct sockaddr_un sun;
	struct addrinfo *ai;
	bool multi;
	int fd = -1, rc = KS_EIO, err = 0;

	if (k->unix_path != NULL) {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		memcpy(sun.sun_path, k->unix_path, strlen(k->unix_path));
		snprintf(k->peer, sizeof(k->peer), "unix:%s", k->unix_path);
		fd = connect_one(k, (struct sockaddr *)&sun, sizeof(sun), &rc);
		err = errno;
	} else {
		for (ai = k->ai; ai != NULL && fd < 0; ai = ai->ai_next) {
			ksock_describe_addr(ai->ai_addr, ai->ai_addrlen,
					    k->peer, sizeof(k->peer));
			fd = connect_one(k, ai->ai_addr, ai->ai_addrlen, &rc);
			err = errno;
			if (fd < 0 && rc == KS_EIO && k->verbose)
				ksock_msg("connect to %s: %s", k->peer,
					  strerror(err));
			if (rc == KS_ETIMEDOUT || rc == KS_ECANCELED)
				break;
		}
	}
	if (fd < 0) {
		if (rc == KS_ETIMEDOUT) {
			ksock_msg("connect to %s: timed out after %g s",
				  k->peer, k->timeout);
			ksock_set_status(k, EXIT_TIMEOUT);
		} else if (rc != KS_ECANCELED) {
			/* one address: show it; several: the name */
			multi = k->unix_path == NULL && k->ai != NULL &&
				k->ai->ai_next != NULL;
			ksock_msg("connect to %s: %s",
				  multi ? k->host : k->peer, strerror(err));
			ksock_set_status(k, EXIT_NET);
		}
		return rc;
	}
	ks_stream_init(&k->net, &k->wk, NULL, fd, MAX_LINE);
	k->net_ready = true;
	if (k->verbose)
		ksock_msg("connected to %s", k->peer);
	return KS_OK;
}

static int
start_tls(struct ksock *k)
{
	char desc[512];
	int rc;

	k->lastlog[0] = '\0';
	rc = ks_tls_connect(&k->net, &k->tls, &k->info);
	if (rc == KS_OK) {
		if (k->verbose) {
			ks_tls_info_describe(k->info, desc, sizeof(desc));
			fflush(stdout);
			fprintf(stderr, "TLS: %s\n", desc);
		}
		return KS_OK;
	}
	if (rc == KS_ETIMEDOUT) {
		ksock_msg("TLS handshake with %s: timed out after %g s",
			  k->peer, k->timeout);
		ksock_set_status(k, EXIT_TIMEOUT);
	} else if (rc == KS_ETLS) {
		ksock_msg("TLS handshake with %s failed: %s", k->peer,
			  k->lastlog[0] ? k->lastlog : ks_strerror(rc));
		ksock_set_status(k, EXIT_TLS);
	} else if (rc != KS_ECLOSED && rc != KS_ECANCELED) {
		ksock_msg("TLS handshake with %s: %s", k->peer,
			  ks_strerror(rc));
		ksock_set_status(k, EXIT_NET);
	}
	return rc;
}

/* ---- standard input ------------------------------------------------------ */

static void *
reader_main(void *arg)
{
	struct ksock *k = arg;
	char buf[65536];
	ssize_t n, w;
	size_t off;

	for (;;) {
		/* Wait for input or for the stop request: the thread always
		 * ends by returning (no pthread_cancel, whose unwinding
		 * sanitizers and some libcs handle badly). */
		struct pollfd pf[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
				       {.fd = k->wake_r, .events = POLLIN}};

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents != 0)
			break;
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		for (off = 0; off < (size_t)n; off += (size_t)w) {
			w = write(k->pipe_w, buf + off, (size_t)n - off);
			if (w < 0 && errno == EINTR)
				w = 0;
			else if (w < 0)
				goto out; /* the loop closed its end */
		}
	}
out:
	/* Closing the write end is the EOF the loop sees. */
	close(k->pipe_w);
	k->pipe_w = -1;
	return NULL;
}

/* Starts the reader thread and the stdin stream on the pipe's read end. */
int
ksock_open_stdin(struct ksock *k)
{
	sigset_t all, old;
	int p[2], wake[2], rc;

	if (pipe2(p, O_CLOEXEC) != 0) {
		ksock_msg("pipe: %s", strerror(errno));
		return -1;
	}
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) != 0) {
		ksock_msg("fcntl: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	k->pipe_w = p[1];
	if (pipe2(wake, O_CLOEXEC) != 0) {
		ksock_msg("pipe: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		k->pipe_w = -1;
		return -1;
	}
	k->wake_r = wake[0];
	k->wake_w = wake[1];
	/* Signals are the loop's business, not the reader's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&k->reader, NULL, reader_main, k);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		ksock_msg("pthread_create: %s", strerror(rc));
		close(p[0]);
		close(p[1]);
		close(wake[0]);
		close(wake[1]);
		k->pipe_w = -1;
		return -1;
	}
	k->reader_started = true;
	ks_stream_init(&k->in, &k->wk, NULL, p[0], MAX_LINE);
	k->in_ready = true;
	return 0;
}

static void
stop_reader(struct ksock *k)
{
	if (!k->reader_started)
		return;
	/* A reader waiting for a terminal wakes up and returns; one that
	 * finished already is just joined.  (One blocked writing to the
	 * pipe gets EPIPE: the loop's end is closed before this.) */
	(void)!write(k->wake_w, "", 1);
	pthread_join(k->reader, NULL);
	close(k->wake_r);
	close(k->wake_w);
	k->reader_started = false;
	if (k->pipe_w >= 0) {
		close(k->pipe_w);
		k->pipe_w = -1;
	}
}

/* ---- the coroutines ------------------------------------------------------ */

static void
coro_done(void *ud)
{
	struct ksock *k = ud;

	if (--k->live == 0)
		ev_break(k->loop, EVBREAK_ALL);
}

int
ksock_spawn(struct ksock *k, ks_coro_fn fn)
{
	struct ks_coro *co = ks_coro_new(&k->wk.sched, fn, k, coro_done, k);

	if (co == NULL) {
		ksock_msg("cannot allocate a coroutine stack");
		return -1;
	}
	k->live++;
	ks_coro_wake(co, KS_OK);
	return 0;
}

/* stdin -> server, one line at a time with "\n"; at EOF a half-close. */
static void
stdin_main(void *arg)
{
	struct ksock *k = arg;
	ks_wchan *out = &k->net.out;
	char *line;
	size_t len;
	int rc;

	for (;;) {
		rc = ks_read_line(&k->in.in, &line, &len);
		if (rc == KS_ETOOLONG) {
			ksock_msg("input line longer than %u bytes not sent",
				  MAX_LINE);
			continue;
		}
		if (rc != KS_OK && !(rc == KS_EOF && len > 0))
			break;
		if (ks_write(out, line, len) != KS_OK ||
		    ks_write(out, "\n", 1) != KS_OK)
			return;
		if (rc == KS_EOF)
			break;
		/* Flush once what stdin had ready has been written. */
		if (ks_read_buffered(&k->in.in) == 0 && ks_flush(out) != KS_OK)
			return;
	}
	if (rc == KS_EOF) {
		rc = ks_shutdown(out);
		if (rc == KS_OK && k->verbose)
			ksock_msg("end of input: write side shut down");
	} else if (rc == KS_EIO) {
		ksock_msg("reading standard input: %s", strerror(k->in.in.err));
		ksock_set_status(k, EXIT_USAGE);
	}
}

void
ksock_close_streams(struct ksock *k)
{
	if (k->in_ready)
		ks_stream_close(&k->in);
	if (k->net_ready)
		ks_stream_close(&k->net);
}

int
ksock_print_line(struct ksock *k, const char *line, size_t len)
{
	if ((len > 0 && fwrite(line, 1, len, stdout) != len) ||
	    fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
		ksock_msg("writing standard output: %s", strerror(errno));
		ksock_set_status(k, EXIT_USAGE);
		return -1;
	}
	return 0;
}

/* Connects, then copies server lines to stdout until the server closes. */
static void
net_main(void *arg)
{
	struct ksock *k = arg;
	char *line;
	size_t len;
	int rc;

	if (k->timeout > 0) {
		ev_timer_init(&k->deadline, deadline_cb, k->timeout, 0);
		k->deadline.data = k;
		ev_timer_start(k->loop, &k->deadline);
	}
	rc = open_connection(k);
	if (rc == KS_OK && k->use_tls)
		rc = start_tls(k);
	ev_timer_stop(k->loop, &k->deadline);
	if (rc != KS_OK)
		goto out;
	if (ksock_open_stdin(k) != 0 || ksock_spawn(k, stdin_main) != 0) {
		ksock_set_status(k, EXIT_USAGE);
		goto out;
	}
	for (;;) {
		rc = ks_read_line(&k->net.in, &line, &len);
		if (rc == KS_ETOOLONG) {
			ksock_msg("server line longer than %u bytes skipped",
				  MAX_LINE);
			continue;
		}
		if (rc == KS_EOF && len > 0 &&
		    ksock_print_line(k, line, len) != 0)
			break;
		if (rc == KS_EOF) {
			if (ksock_print_line(k, "Server closed a connection",
					     26) != 0)
				break;
			ksock_set_status(k, EXIT_OK);
			break;
		}
		if (rc != KS_OK) {
			if (rc == KS_EIO) {
				ksock_msg("connection to %s: %s", k->peer,
					  strerror(k->net.in.err));
				ksock_set_status(k, EXIT_NET);
			}
			break;
		}
		if (ksock_print_line(k, line, len) != 0)
			break;
	}
out:
	/* Ends the stdin coroutine too: its waits return KS_ECLOSED. */
	ksock_close_streams(k);
}

/* ---- main ---------------------------------------------------------------- */

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct ksock *k = w->data;

	(void)loop;
	(void)revents;
	ksock_set_status(k, 128 + w->signum);
	if (k->waiter != NULL)
		ks_coro_wake(k->waiter, KS_ECANCELED);
	ksock_close_streams(k);
}

static int
resolve(struct ksock *k)
{
	struct addrinfo hints;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = k->udp ? SOCK_DGRAM : SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	rc = getaddrinfo(k->host, k->port, &hints, &k->ai);
	if (rc == EAI_ADDRFAMILY || rc == EAI_NONAME) {
		/* AI_ADDRCONFIG hides loopback-only setups' addresses */
		hints.ai_flags = 0;
		rc = getaddrinfo(k->host, k->port, &hints, &k->ai);
	}
	if (rc != 0) {
		ksock_msg("%s port %s: %s", k->host, k->port,
			  rc == EAI_SYSTEM ? strerror(errno)
					   : gai_strerror(rc));
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const int signums[] = {SIGINT, SIGTERM, SIGHUP};
	struct ksock k;
	bool done;
	int rc;
	size_t i;

	memset(&k, 0, sizeof(k));
	k.status = -1;
	k.timeout = DEFAULT_TIMEOUT;
	k.wait = DEFAULT_WAIT;
	k.pipe_w = -1;
	k.u.fd = -1;
	if ((rc = parse_args(&k, argc, argv, &done)) != 0 || done)
		return rc;
	if (k.unix_path != NULL &&
	    strlen(k.unix_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		ksock_msg("unix socket path too long: %s", k.unix_path);
		return EXIT_USAGE;
	}
	ks_log_init(KS_LOG_PLAIN, KS_LOG_INFO);
	ks_log_set_sink(log_sink, &k);
	if (k.host != NULL && resolve(&k) != 0)
		return EXIT_NET;

	k.loop = ev_default_loop(EVFLAG_AUTO);
	if (k.loop == NULL) {
		ksock_msg("cannot initialise the event loop");
		freeaddrinfo(k.ai);
		return EXIT_USAGE;
	}
	ks_worker_init(&k.wk, k.loop, STACK_SIZE);
	for (i = 0; i < KS_ARRAY_SIZE(signums); i++) {
		ev_signal_init(&k.sigs[i], signal_cb, signums[i]);
		k.sigs[i].data = &k;
		ev_signal_start(k.loop, &k.sigs[i]);
		ev_unref(k.loop);
	}
	ev_timer_init(&k.deadline, deadline_cb, 0, 0);
	if (ksock_spawn(&k, k.udp ? ksock_udp_main : net_main) != 0)
		ksock_set_status(&k, EXIT_USAGE);
	/* The coroutine may already be done (e.g. an immediate refusal). */
	if (k.live > 0)
		ev_run(k.loop, 0);

	ksock_close_streams(&k);
	stop_reader(&k);
	for (i = 0; i < KS_ARRAY_SIZE(signums); i++) {
		ev_ref(k.loop);
		ev_signal_stop(k.loop, &k.sigs[i]);
	}
	ev_timer_stop(k.loop, &k.deadline);
	ks_worker_destroy(&k.wk);
	ks_tls_info_free(k.info);
	ev_loop_destroy(k.loop);
	freeaddrinfo(k.ai);
	ks_log_set_sink(NULL, NULL);
	return k.status < 0 ? EXIT_OK : k.status;
}
