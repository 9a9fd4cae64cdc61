/*
 * ksock's shared state and helpers: ksock.c (command line, TCP, Unix and
 * TLS, standard input) and ksock_udp.c (the --udp mode) both use them.
 * Everything here runs on the one event loop, except the stdin reader
 * thread, which only touches the pipe and wake fds.
 */
#ifndef KSOCK_H
#define KSOCK_H

#include <ev.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>

#include "coro.h"
#include "stream.h"
#include "tls.h"
#include "worker.h"

/* Exit statuses (documented in ksock(1)). */
enum {
	EXIT_OK = 0,
	EXIT_USAGE = 1, /* also local errors: stdout, memory, threads */
	EXIT_NET = 2,   /* refused, unreachable, reset, name resolution */
	EXIT_TLS = 3,   /* handshake or certificate verification */
	EXIT_TIMEOUT = 4,
};

#define MAX_LINE (1u << 20)

/* The --udp mode's socket and timers (ksock_udp.c). */
struct ksock_udp {
	int fd;                 /* the connected UDP socket; -1 when closed */
	ev_io rio, wio;         /* started only while a coroutine waits */
	ev_timer linger;        /* after stdin EOF: the --wait period */
	struct ks_coro *sender; /* the stdin coroutine waiting in wio */
	bool in_eof;            /* stdin ended: replies are awaited */
	bool expired;           /* the --wait period passed */
	bool stop;              /* ending: neither side sends or waits again */
	bool skipped;           /* a line not sent, a datagram cut: status 1 */
};

struct ksock {
	/* options */
	const char *host, *port, *unix_path;
	bool use_tls, udp;
	int verbose;
	double timeout;
	double wait; /* --udp: seconds of silence after stdin EOF */
	ks_tls_client_opts tls;

	struct ev_loop *loop;
	struct ks_worker wk;
	struct addrinfo *ai;
	char peer[300]; /* "127.0.0.1:9002", "unix:/path" */

	struct ks_stream net, in;
	bool net_ready, in_ready;
	struct ks_tls_info *info;
	struct ksock_udp u;

	/* connect/handshake deadline and the coroutine waiting in connect
	 * (or, with --udp, for a datagram); signals wake it */
	ev_timer deadline;
	struct ks_coro *waiter;
	ev_signal sigs[3];

	/* stdin helper thread: blocking reads of fd 0 into a pipe */
	pthread_t reader;
	bool reader_started;
	int pipe_w;
	int wake_r, wake_w; /* a byte here tells the reader to stop */

	int live;      /* coroutines not yet finished */
	int status;    /* exit status; -1 while undecided */
	char lastlog[1024]; /* last core log message: the TLS failure reason */
};

/* "ksock: " + the message + newline on stderr, after flushing stdout. */
void ksock_msg(const char *fmt, ...) KS_PRINTF(1, 2);
/* Sets the exit status unless one was set already: the first cause wins. */
void ksock_set_status(struct ksock *k, int status);
/* Formats "1.2.3.4:5" or "[::1]:5" (numeric) into buf. */
void ksock_describe_addr(const struct sockaddr *sa, socklen_t len, char *buf,
			 size_t n);
/* Starts the stdin reader thread and k->in on its pipe.  0, or -1 with a
 * message printed. */
int ksock_open_stdin(struct ksock *k);
/* Starts fn(k) as a coroutine counted in k->live (the loop ends when the
 * last one returns).  0, or -1 with a message printed. */
int ksock_spawn(struct ksock *k, ks_coro_fn fn);
/* Writes len bytes and a newline to stdout and flushes.  0, or -1 with a
 * message printed and exit status 1 set. */
int ksock_print_line(struct ksock *k, const char *line, size_t len);
/* Closes k->in and k->net if open: coroutines waiting on them get
 * KS_ECLOSED. */
void ksock_close_streams(struct ksock *k);

/* ksock_udp.c: the --udp mode's main coroutine (spawned with k as arg):
 * opens the socket, starts the stdin coroutine, prints the datagrams
 * received until --wait seconds passed without one after stdin ended. */
void ksock_udp_main(void *arg);

#endif
