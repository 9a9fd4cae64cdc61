/*
 * dgram: a test plugin for the datagram API, driven by
 * tests/integration/test_udp.py through the real daemon.
 *
 * On a udp listener every datagram is a command; the reply goes back with
 * ks_dgram_reply:
 *   echo TEXT            -> TEXT
 *   tag                  -> the listener's `tag` option (which generation
 *                           answers, across reloads)
 *   info                 -> "peer=ADDR local=ADDR reply_from=ADDR if=N
 *                           flags=F"
 *   big N                -> N bytes of 'x', or "send: STATUS errno=E"
 *   later SECONDS TEXT   -> TEXT, SECONDS later, from a spawned coroutine
 *                           (the session keeps receiving meanwhile)
 *   ask HOST PORT TEXT   -> sends TEXT from a connected outbound socket
 *                           and relays the answer: "answer TEXT", or
 *                           "error STATUS errno=E"
 *   askany HOST PORT TEXT-> the same from an unconnected outbound socket
 *   return               -> the handler returns (the daemon restarts it)
 * A datagram larger than max_datagram_size gets "truncated SIZE LEN".
 *
 * On a stream listener each line "udp HOST PORT TEXT" sends TEXT from a
 * connected outbound socket and writes the answer line back (or
 * "error STATUS"), so outbound UDP from a TCP handler is covered too,
 * including its idle timeout.  "peerclose HOST PORT" and "dgramclose"
 * close an outbound TCP peer / UDP socket while a spawned coroutine waits
 * on it, and report what that coroutine got: "reader: STATUS".
 *
 * Options: tag (string, default "-"), wait (double: the outbound receive
 * timeout in seconds, default 2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ksockd/plugin.h>

struct dg_conf {
	const char *tag;
	double wait;
};

struct later {
	ks_dsock *sock;
	ks_dgram d; /* on the heap: the request's sender, for the reply */
	double seconds;
	char text[512];
};

static int
dg_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	static const char *const known[] = {"tag", "wait", NULL};
	struct dg_conf *c;

	if (ks_opt_check_keys(opts, known, err, errlen) != KS_OK)
		return -1;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (ks_opt_string(opts, "tag", "-", &c->tag, err, errlen) ||
	    ks_opt_double(opts, "wait", 2.0, &c->wait, err, errlen)) {
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static void
dg_fini(void *state)
{
	free(state);
}

/* Sends text to host:port from a new outbound socket and waits for one
 * answer; writes the outcome into out. */
static void
ask(ks_conn *conn, const char *host, const char *port, const char *text,
    int connected, double wait, char *out, size_t outlen)
{
	ks_dsock *s = NULL;
	ks_dgram a;
	int rc;

	if (connected) {
		rc = ks_dgram_open(conn, host, port, 2.0, &s);
		if (rc == KS_OK)
			rc = ks_dgram_send(s, text, strlen(text), NULL, 0);
	} else {
		ks_dsock *probe = NULL;

		/* The address comes from a connected socket's peer: the
		 * plugin API has no resolver of its own. */
		rc = ks_dgram_open(conn, host, port, 2.0, &probe);
		if (rc == KS_OK)
			rc = ks_dgram_open(conn, NULL, NULL, 0, &s);
		if (rc == KS_OK) {
			socklen_t len;
			const struct sockaddr *to = ks_dgram_peer(probe, &len);

			rc = ks_dgram_send(s, text, strlen(text), to, len);
		}
		if (probe != NULL)
			ks_dgram_close(probe);
	}
	if (rc == KS_OK)
		rc = ks_dgram_recv(s, &a, wait);
	if (rc == KS_OK)
		snprintf(out, outlen, "answer %.*s", (int)a.len,
			 (const char *)a.data);
	else
		snprintf(out, outlen, "error %s errno=%d", ks_strerror(rc),
			 s != NULL ? ks_dgram_errno(s) : 0);
	if (s != NULL)
		ks_dgram_close(s);
}

static void
later_main(ks_conn *conn, void *arg)
{
	struct later *l = arg;

	if (ks_sleep(conn, l->seconds) == KS_OK)
		(void)ks_dgram_reply(l->sock, &l->d, l->text, strlen(l->text));
	free(l);
}

static int
command(ks_conn *conn, ks_dsock *sock, const ks_dgram *d, struct dg_conf *c)
{
	char cmd[1024], reply[2048], host[256], port[32], text[512];
	char a1[KS_ADDR_STRLEN], a2[KS_ADDR_STRLEN], a3[KS_ADDR_STRLEN];
	size_t n = d->len < sizeof(cmd) - 1 ? d->len : sizeof(cmd) - 1;
	unsigned long big;
	double secs;
	int rc;

	memcpy(cmd, d->data, n);
	cmd[n] = '\0';
	if (strncmp(cmd, "echo ", 5) == 0) {
		snprintf(reply, sizeof(reply), "%s", cmd + 5);
	} else if (strcmp(cmd, "tag") == 0) {
		snprintf(reply, sizeof(reply), "%s", c->tag);
	} else if (strcmp(cmd, "info") == 0) {
		snprintf(reply, sizeof(reply),
			 "peer=%s local=%s reply_from=%s if=%u flags=%u",
			 ks_addr_str((const struct sockaddr *)&d->peer,
				     d->peer_len, a1, sizeof(a1)),
			 ks_addr_str((const struct sockaddr *)&d->local,
				     d->local_len, a2, sizeof(a2)),
			 d->reply_from_len > 0
				 ? ks_addr_str((const struct sockaddr *)&d->reply_from,
					       d->reply_from_len, a3, sizeof(a3))
				 : "-",
			 d->ifindex, d->flags);
	} else if (sscanf(cmd, "big %lu", &big) == 1) {
		char *buf = malloc(big + 1);

		if (buf == NULL)
			return 0;
		memset(buf, 'x', big);
		rc = ks_dgram_reply(sock, d, buf, big);
		free(buf);
		if (rc == KS_OK)
			return 0;
		snprintf(reply, sizeof(reply), "send: %s errno=%d",
			 ks_strerror(rc), ks_dgram_errno(sock));
	} else if (sscanf(cmd, "later %lf %511[^\n]", &secs, text) == 2) {
		struct later *l = calloc(1, sizeof(*l));

		if (l == NULL)
			return 0;
		l->sock = sock;
		l->d = *d;
		l->seconds = secs;
		snprintf(l->text, sizeof(l->text), "%s", text);
		if (ks_spawn(conn, later_main, l) != KS_OK)
			free(l);
		return 0;
	} else if (sscanf(cmd, "askany %255s %31s %511[^\n]", host, port, text) == 3) {
		ask(conn, host, port, text, 0, c->wait, reply, sizeof(reply));
	} else if (sscanf(cmd, "ask %255s %31s %511[^\n]", host, port, text) == 3) {
		ask(conn, host, port, text, 1, c->wait, reply, sizeof(reply));
	} else if (strcmp(cmd, "return") == 0) {
		return 1;
	} else {
		snprintf(reply, sizeof(reply), "unknown command");
	}
	(void)ks_dgram_reply(sock, d, reply, strlen(reply));
	return 0;
}

static int
dg_handle_dgram(ks_conn *conn, ks_dsock *sock, void *state)
{
	struct dg_conf *c = state;
	char msg[64];
	ks_dgram d;
	int rc;

	for (;;) {
		rc = ks_dgram_recv(sock, &d, 0);
		if (rc == KS_ETOOLONG) {
			snprintf(msg, sizeof(msg), "truncated %zu %zu", d.size,
				 d.len);
			(void)ks_dgram_reply(sock, &d, msg, strlen(msg));
			continue;
		}
		if (rc != KS_OK)
			break;
		if (command(conn, sock, &d, c) != 0) {
			ks_conn_log(conn, KS_LOG_INFO, "returning on request");
			return 0;
		}
	}
	ks_conn_log(conn, KS_LOG_INFO, "receive: %s", ks_strerror(rc));
	return rc == KS_ECLOSED || rc == KS_ECANCELED ? 0 : rc;
}

/* A coroutine blocked on a socket that another coroutine closes. */
struct closer {
	ks_peer *peer;
	ks_dsock *sock;
	int rc;
	int done;
};

static void
blocked_reader(ks_conn *conn, void *arg)
{
	struct closer *cl = arg;
	char *line;
	size_t len;
	ks_dgram d;

	(void)conn;
	if (cl->peer != NULL)
		cl->rc = ks_read_line(ks_peer_in(cl->peer), &line, &len);
	else
		cl->rc = ks_dgram_recv(cl->sock, &d, 0);
	cl->done = 1;
}

/* "peerclose HOST PORT" / "dgramclose": close what a spawned coroutine is
 * waiting on; it must get KS_ECLOSED and nothing may touch freed memory
 * (the sanitizer build runs this too). */
static void
close_under_reader(ks_conn *conn, ks_wchan *out, const char *host,
		   const char *port)
{
	struct closer *cl = calloc(1, sizeof(*cl));
	int rc;

	if (cl == NULL)
		return;
	rc = host != NULL ? ks_connect(conn, host, port, 2.0, &cl->peer)
			  : ks_dgram_open(conn, NULL, NULL, 0, &cl->sock);
	if (rc != KS_OK || ks_spawn(conn, blocked_reader, cl) != KS_OK) {
		ks_printf(out, "error %s\n", ks_strerror(rc));
		free(cl);
		return;
	}
	ks_sleep(conn, 0); /* the reader runs and blocks */
	if (cl->peer != NULL)
		ks_peer_close(cl->peer);
	else
		ks_dgram_close(cl->sock);
	while (!cl->done)
		ks_sleep(conn, 0.01);
	ks_printf(out, "reader: %s\n", ks_strerror(cl->rc));
	free(cl);
}

static int
dg_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	struct dg_conf *c = state;
	char host[256], port[32], text[512], reply[2048];
	char *line;
	size_t len;
	int rc;

	while ((rc = ks_read_line(in, &line, &len)) == KS_OK) {
		if (sscanf(line, "peerclose %255s %31s", host, port) == 2) {
			close_under_reader(conn, out, host, port);
			continue;
		}
		if (strcmp(line, "dgramclose") == 0) {
			close_under_reader(conn, out, NULL, NULL);
			continue;
		}
		if (sscanf(line, "udp %255s %31s %511[^\n]", host, port, text) != 3) {
			ks_write_str(out, "error usage\n");
			continue;
		}
		ask(conn, host, port, text, 1, c->wait, reply, sizeof(reply));
		ks_printf(out, "%s\n", reply);
	}
	return rc == KS_EOF ? 0 : rc;
}

KS_PLUGIN_DEFINE(.name = "dgram", .version = "1.0", .init = dg_init,
		 .fini = dg_fini, .handle = dg_handle,
		 .handle_dgram = dg_handle_dgram);
