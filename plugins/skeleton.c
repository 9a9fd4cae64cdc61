/*
 * skeleton: a plugin to copy.  It shows every hook and descriptor field,
 * option validation, per-listener state, a read/write loop that handles
 * every status code, and a datagram loop for UDP listeners.  What it does:
 * over TCP (or a Unix socket) answers each line with "<prefix><line>", up
 * to max_lines lines per connection; over UDP answers each datagram with
 * "<prefix><payload>".
 *
 * Building it out of the source tree (ksockd installed, with its ksockd.pc):
 *
 *	cc -shared -fPIC $(pkg-config --cflags ksockd) -o myplugin.so myplugin.c
 *
 * then either copy myplugin.so into the plugin directory
 *
 *	install -m 644 myplugin.so "$(pkg-config --variable=plugindir ksockd)"
 *
 * and write `handler = "myplugin";`, or give the absolute path:
 * `handler = "/path/to/myplugin.so";`.  `ksockd -t` loads the plugin and
 * runs its init, so option errors show up before a (re)start.
 *
 * Rules (see ksockd-plugin(3)):
 *  - Include <ksockd/plugin.h> and libc only.  No mutable globals: one
 *    listener's state is what init() builds; one connection's state lives
 *    on the handler's stack (or in memory the handler allocates and frees).
 *  - Never block in handle(): no sleep(), no blocking read()/connect()/DNS.
 *    The ks_* calls that wait suspend this coroutine instead, and everyone
 *    else's connections run meanwhile.  A blocking call stops them all.
 *  - Every loop must suspend (a read, a flush, ks_sleep) or end on error.
 *  - Pointers from ks_read_line/ks_read_peek are valid until the next read
 *    call on the same channel, a datagram's payload until the next
 *    ks_dgram_recv on the same socket: copy what you keep.
 *  - ksockd forks worker processes after init(): each worker has its own
 *    copy of the state, and a crash in a handler takes its worker (and that
 *    worker's connections) down; the master starts another.  What each
 *    process needs for itself (a connection, a thread) goes in
 *    init_worker().
 */
#include <stdlib.h>
#include <string.h>

#include <ksockd/plugin.h>

/* Per-listener state, built by init() from the listener's options. */
struct skeleton {
	const char *prefix; /* points into the options: valid until fini() */
	size_t prefix_len;
	long long max_lines; /* 0 = unlimited; connections only */
	int log_lines;       /* log each line or datagram */
	double idle;         /* per-connection idle timeout; < 0 = listener's */
};

/* Every option key this plugin knows; anything else is a config error. */
static const char *const skeleton_keys[] = {"prefix", "max_lines", "log_lines",
					    "idle_timeout", NULL};

static void
skeleton_err(char *err, size_t errlen, const char *msg)
{
	size_t n = strlen(msg);

	if (errlen == 0)
		return;
	if (n >= errlen)
		n = errlen - 1;
	memcpy(err, msg, n);
	err[n] = '\0';
}

/*
 * init: once per listener that names this plugin, at start-up, on every
 * reload and under `ksockd -t`.  Runs in the main context: it must not call
 * any SUSPENDS function.  opts may be NULL when the listener has no
 * `options` group.  On failure write a message into err and return
 * non-zero: ksockd prefixes it with the listener's FILE:LINE and rejects
 * the configuration (a reload keeps the old one).
 */
static int
skeleton_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	struct skeleton *s;

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		skeleton_err(err, errlen, "out of memory");
		return -1;
	}
	s->prefix = "> ";
	s->idle = -1;
	if (opts != NULL) {
		/* The getters store the default when a key is absent and fill
		 * err themselves ("option NAME: expected TYPE") on a wrong
		 * type. */
		if (ks_opt_check_keys(opts, skeleton_keys, err, errlen) ||
		    ks_opt_string(opts, "prefix", "> ", &s->prefix, err,
				  errlen) ||
		    ks_opt_int(opts, "max_lines", 0, &s->max_lines, err,
			       errlen) ||
		    ks_opt_bool(opts, "log_lines", 0, &s->log_lines, err,
				errlen) ||
		    ks_opt_double(opts, "idle_timeout", -1, &s->idle, err,
				  errlen))
			goto fail;
		/* Range checks are the plugin's business. */
		if (s->max_lines < 0) {
			skeleton_err(err, errlen,
				     "option max_lines: must be >= 0");
			goto fail;
		}
	}
	s->prefix_len = strlen(s->prefix);
	ks_log(KS_LOG_DEBUG, "skeleton: prefix \"%s\", max_lines %lld",
	       s->prefix, s->max_lines);
	*state = s;
	return 0;

fail:
	free(s);
	return -1;
}

/*
 * fini: once per listener when its configuration generation is released,
 * after the last connection that used it has ended.  Free what init built.
 */
/*
 * init_worker: in every worker process, after the fork, with the state
 * init() made (a copy per worker).  The place for what each process needs
 * of its own: a connection to a server, a thread, a random seed.  This
 * plugin needs nothing; it only shows the hook.  Return non-zero (with a
 * message in err) only for what a restart of the worker cannot fix: the
 * worker exits and the master starts another after a back-off.
 */
static int
skeleton_init_worker(void *state, char *err, size_t errlen)
{
	(void)state;
	(void)err;
	(void)errlen;
	return 0;
}

/* fini: in the master, when the listener's configuration is released
 * (its last worker has exited).  Workers never call it. */
static void
skeleton_fini(void *state)
{
	free(state);
}

/*
 * handle: runs in a coroutine of its own for every accepted connection.
 * `in` and `out` are the connection's channels.  Returning closes the
 * connection after what is buffered in `out` has been sent; the return
 * value is only logged (at debug level, when non-zero).
 */
static int
skeleton_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	const struct skeleton *s = state;
	long long n = 0;
	int eof = 0;
	char *line;
	size_t len;
	int rc;

	if (s->idle >= 0)
		ks_conn_set_timeout(conn, s->idle);
	ks_conn_log(conn, KS_LOG_DEBUG, "connected from %s to %s",
		    ks_conn_peer_str(conn), ks_conn_local_str(conn));

	/* Writes only buffer; the output goes out when this coroutine next
	 * waits for input (ks_read_line below), so one reply costs one
	 * write(2) however many ks_write calls built it. */
	if ((rc = ks_write_str(out, "skeleton ready\n")) != KS_OK)
		goto out;

	while (s->max_lines == 0 || n < s->max_lines) {
		/* SUSPENDS until a whole line is there (or an error). */
		rc = ks_read_line(in, &line, &len);
		switch (rc) {
		case KS_OK:
			break;
		case KS_EOF:
			/* Peer closed its side.  len > 0: an unterminated
			 * last line, which is still valid input. */
			if (len == 0)
				goto out;
			eof = 1;
			break;
		case KS_ETOOLONG:
			/* Longer than the listener's max_line_length; the
			 * line was dropped and reading could go on.  Here:
			 * tell the peer and keep going. */
			rc = ks_write_str(out, "ERROR line too long\n");
			if (rc != KS_OK)
				goto out;
			continue;
		case KS_ETIMEDOUT:
			/* No read or write progress for the idle timeout. */
			ks_write_str(out, "ERROR idle timeout\n");
			goto out;
		case KS_EIO:
			/* Socket error (connection reset, ...). */
			ks_conn_log(conn, KS_LOG_DEBUG, "read: errno %d",
				    ks_conn_errno(conn));
			goto out;
		case KS_ECANCELED:
			/* The daemon is stopping: return soon.  Every
			 * further wait fails at once with KS_ECANCELED. */
			goto out;
		case KS_ECLOSED: /* closed locally (ks_close elsewhere) */
		case KS_EBUSY:   /* another coroutine waits on `in` */
		case KS_ENOMEM:
		case KS_EINVAL:
		default:
			goto out;
		}

		/* `line` points into ksockd's buffer until the next read on
		 * `in`; it may contain NUL bytes, so use len, not %s. */
		if (s->log_lines)
			ks_conn_log(conn, KS_LOG_INFO, "line of %zu bytes",
				    len);
		if ((rc = ks_write(out, s->prefix, s->prefix_len)) != KS_OK ||
		    (rc = ks_write(out, line, len)) != KS_OK ||
		    (rc = ks_write(out, "\n", 1)) != KS_OK)
			goto out; /* KS_EIO: peer gone; KS_ECLOSED; ... */
		n++;
		if (eof)
			goto out;
	}
	/* The line limit was reached. */
	rc = ks_write_str(out, "bye\n");

out:
	ks_conn_log(conn, KS_LOG_DEBUG, "%lld lines, ending: %s", n,
		    ks_strerror(rc));
	/* KS_EOF and a timeout are normal ends; report the rest. */
	return rc == KS_OK || rc == KS_EOF || rc == KS_ETIMEDOUT ? 0 : rc;
}

/*
 * handle_dgram: for `protocol = "udp"` listeners.  Not a call per datagram:
 * one coroutine per listener and configuration generation (the listener's
 * session), which receives and answers datagram after datagram for as long
 * as the listener runs.  `sock` is the listener's socket; `conn` is the
 * session: ks_conn_log, ks_spawn, ks_sleep, ks_dgram_open work on it, but it
 * has no channels, no peer (each datagram carries its sender) and no idle
 * timeout.  Only this coroutine handles the listener's datagrams, so state
 * needs no locking.
 *
 * Idioms:
 *  - One receive loop.  A datagram that needs time (a lookup, another
 *    server's answer) goes to a coroutine of its own (ks_spawn) with a heap
 *    copy of the ks_dgram *and* of d.data, which points into the socket's
 *    receive ring and is valid only until the next ks_dgram_recv; the loop
 *    goes back to receiving at once.
 *  - KS_ECLOSED ends the session: the configuration was reloaded (the new
 *    generation's handler already receives on the same socket; this one may
 *    still send what it owes, e.g. from spawned coroutines) or the daemon is
 *    stopping.
 *  - Any other return is logged and the daemon starts the handler again a
 *    second later, a fair reaction to an error nobody expected.
 *  - A UDP source address can be forged.  Never answer a truncated datagram
 *    as if it were whole, keep replies small, and do not answer service
 *    ports: another UDP service would answer back, for ever.  The bundled
 *    services (plugins/dgram_guard.c) also rate-limit replies per source.
 */
static int
skeleton_handle_dgram(ks_conn *conn, ks_dsock *sock, void *state)
{
	const struct skeleton *s = state;
	unsigned long long replies = 0;
	char peer[KS_ADDR_STRLEN];
	uint8_t *reply;
	ks_dgram d; /* the caller's struct: on the stack is fine */
	size_t n;
	int rc;

	/* A whole datagram's worth would not fit a coroutine stack (64 KiB by
	 * default): take it from the heap, once per session. */
	if ((reply = malloc(KS_DGRAM_MAX)) == NULL)
		return KS_ENOMEM;
	for (;;) {
		/* SUSPENDS until a datagram is there; 0: no timeout. */
		rc = ks_dgram_recv(sock, &d, 0);
		if (rc == KS_ETOOLONG) {
			/* Larger than the listener's max_datagram_size: only
			 * d.len of its d.size bytes arrived.  It is consumed;
			 * go on with the next one. */
			ks_conn_log(
				conn, KS_LOG_DEBUG,
				"dropped a datagram of %zu bytes (%zu kept)",
				d.size, d.len);
			continue;
		}
		if (rc != KS_OK)
			break; /* KS_ECLOSED: reload or stop; KS_EIO, ... */

		/* Clients send from ephemeral ports.  Port 0 is forged; a
		 * port below 1024 is some service's, likely one that would
		 * answer our answer. */
		if (ks_addr_port((const struct sockaddr *)&d.peer) < 1024)
			continue;
		if (s->log_lines)
			ks_conn_log(
				conn, KS_LOG_INFO,
				"datagram of %zu bytes from %s", d.len,
				ks_addr_str((const struct sockaddr *)&d.peer,
					    d.peer_len, peer, sizeof(peer)));
		n = s->prefix_len + d.len;
		if (n > KS_DGRAM_MAX)
			continue;
		memcpy(reply, s->prefix, s->prefix_len);
		memcpy(reply + s->prefix_len, d.data, d.len);

		/* To the sender, from the address it sent to (what a client
		 * expects on a host with several addresses).  SUSPENDS only
		 * while the send buffer is full. */
		rc = ks_dgram_reply(sock, &d, reply, n);
		if (rc == KS_ECLOSED || rc == KS_ECANCELED)
			break;
		if (rc != KS_OK) {
			/* KS_ETOOLONG: over the largest UDP payload (65507
			 * bytes on IPv4); KS_EIO: ks_dgram_errno says why
			 * (ENETUNREACH, a firewall's EPERM ...).  UDP promises
			 * nothing anyway: go on with the next datagram. */
			ks_conn_log(conn, KS_LOG_DEBUG, "reply: %s",
				    ks_strerror(rc));
			continue;
		}
		replies++;
	}
	free(reply);
	ks_conn_log(conn, KS_LOG_DEBUG, "%llu replies, ending: %s", replies,
		    ks_strerror(rc));
	/* KS_ECLOSED is the normal end; anything else gets us restarted. */
	return rc == KS_ECLOSED ? 0 : rc;
}

/*
 * The descriptor: the one exported symbol.  KS_PLUGIN_DEFINE fills in abi
 * (KS_PLUGIN_ABI) and size (sizeof(ks_plugin)); the loader refuses a plugin
 * built against another ABI.  init, init_worker and fini may be NULL
 * (without init the listener's options are never looked at and state is
 * NULL), and one of
 * handle and handle_dgram: a plugin can only serve the listeners whose hook
 * it has (handle: tcp and unix; handle_dgram: udp).
 */
KS_PLUGIN_DEFINE(.name = "skeleton",        /* short name, used in logs */
		 .version = "1.1",          /* free-form, logged at load */
		 .init = skeleton_init,     /* optional */
		 .handle = skeleton_handle, /* tcp and unix listeners */
		 .fini = skeleton_fini,     /* optional */
		 .handle_dgram = skeleton_handle_dgram, /* udp listeners */
		 .init_worker = skeleton_init_worker); /* optional */
