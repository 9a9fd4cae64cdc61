/*
 * ksockd plugin API: the one header a handler plugin includes.
 *
 * A plugin is a shared object that exports one symbol, KS_PLUGIN_SYMBOL, a
 * const ks_plugin descriptor (use KS_PLUGIN_DEFINE).  For every listener that
 * names the plugin, ksockd calls init() once with that listener's options
 * (in the master process, before it forks the workers), init_worker() in
 * each worker process, then runs handle() in a coroutine of its own for
 * every accepted connection, and calls fini() when the listener's
 * configuration goes away.
 *
 * handle() is straight-line code.  The functions marked SUSPENDS below look
 * like blocking calls, but when no data (or no buffer room) is there they
 * suspend the calling coroutine and let the worker's event loop run other
 * connections; they return when the operation completed, failed, timed out
 * or the daemon is shutting down.  Functions not marked SUSPENDS never
 * suspend.  Suspending functions may only be called from a handler coroutine
 * (handle() or a coroutine started with ks_spawn()), never from init/fini.
 *
 * Status codes: every function that can fail returns KS_OK (0) or one of the
 * negative KS_E* codes below; ks_strerror() names them.
 *
 * Pointers handed out by ksockd (lines, peeked bytes, addresses, names) stay
 * valid until the next call on the same channel or until the connection ends,
 * as stated per function; copy what you keep.  A coroutine's stack belongs to
 * it alone: never hand a pointer to your stack to another coroutine.  (A
 * handler that has waited for input for a second or more has its stack
 * paged out to a small save area until data arrives: that is what keeps
 * idle connections cheap, and what such a pointer would not survive.)
 */
#ifndef KSOCKD_PLUGIN_H
#define KSOCKD_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on every incompatible change of this header.  Compatible additions
 * append fields to ks_plugin and are detected through its size field. */
#define KS_PLUGIN_ABI 1
#define KS_PLUGIN_SYMBOL "ks_plugin_descriptor"

#if defined(__GNUC__)
#define KS_API __attribute__((visibility("default")))
#define KS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define KS_API
#define KS_PRINTF(f, a)
#endif

/* Status codes. */
enum ks_status {
	KS_OK = 0,
	KS_EOF = -1,       /* the peer closed its write side (read channel) */
	KS_ETOOLONG = -2,  /* a line exceeded the listener's max_line_length,
			    * or a datagram its max_datagram_size */
	KS_ETIMEDOUT = -3, /* no read or write progress for idle_timeout */
	KS_EIO = -4,       /* a socket error; ks_conn_errno() tells which */
	KS_ECLOSED = -5,   /* the channel was shut down or closed locally */
	KS_ECANCELED = -6, /* the daemon is shutting down: return soon */
	KS_ENOMEM = -7,    /* out of memory */
	KS_EINVAL = -8,    /* bad argument (e.g. a peek larger than the buffer) */
	KS_EBUSY = -9,     /* another coroutine is already waiting on this channel */
	KS_ERESOLVE = -10, /* ks_connect: the host name did not resolve */
	KS_ETLS = -11,     /* TLS handshake or certificate verification failed */
};

/* Log levels, most severe first. */
enum ks_log_level {
	KS_LOG_ERR = 0,
	KS_LOG_WARN = 1,
	KS_LOG_INFO = 2,
	KS_LOG_DEBUG = 3,
};

typedef struct ks_conn ks_conn;       /* one accepted connection */
typedef struct ks_rchan ks_rchan;     /* the read channel of a connection */
typedef struct ks_wchan ks_wchan;     /* the write channel of a connection */
typedef struct ks_options ks_options; /* a listener's `options` group */
typedef struct ks_peer ks_peer;       /* an outbound connection */
typedef struct ks_dsock ks_dsock;     /* a datagram (UDP) socket */

/* The descriptor.  Designated initialisers, please; a NULL hook means "not
 * interested".  abi must be KS_PLUGIN_ABI and size sizeof(ks_plugin): the
 * loader refuses a plugin built for another ABI. */
typedef struct ks_plugin {
	uint32_t abi;
	uint32_t size;
	const char *name;    /* short name used in logs */
	const char *version; /* free-form, logged at load */

	/* Called once per listener, at start-up and by `ksockd -t`, in the
	 * main context (must not suspend).  Validate `opts` and build the
	 * listener's state (*state, passed to handle and fini).  On a bad
	 * option write a message into err (errlen bytes, NUL-terminated) and
	 * return non-zero: the configuration is rejected with that message,
	 * prefixed by the listener's file and line. */
	int (*init)(const ks_options *opts, void **state, char *err, size_t errlen);

	/* Runs in its own coroutine for each connection.  `in` and `out` are
	 * the connection's read and write channels.  When it returns, ksockd
	 * flushes what is still buffered in `out` and closes the connection
	 * (once every coroutine spawned for it has returned too).  The return
	 * value is logged at debug level when non-zero; it has no other
	 * effect. */
	int (*handle)(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state);

	/* Called once per listener when its configuration is released (after
	 * the last connection that used it has ended). */
	void (*fini)(void *state);

	/* Datagram listeners (`protocol = "udp"`).  Runs in a coroutine of its
	 * own, once per listener and configuration generation, with the
	 * listener's socket: typically a loop of ks_dgram_recv and
	 * ks_dgram_reply.  `conn` is the listener's session: ks_spawn,
	 * ks_sleep, ks_connect, ks_dgram_open and ks_conn_log work on it; it
	 * has no peer of its own (every datagram carries its sender).  After a
	 * reload ks_dgram_recv returns KS_ECLOSED in the old generation's
	 * handler (it may still send, e.g. replies it was working on) while
	 * the new generation's handler takes the socket over; at shutdown it
	 * returns KS_ECLOSED too.  A handler that returns while its listener
	 * is still current is logged and started again a second later.
	 * A plugin may have handle, handle_dgram or both; the loader refuses
	 * a listener whose protocol needs the hook the plugin lacks. */
	int (*handle_dgram)(ks_conn *conn, ks_dsock *sock, void *state);

	/* Called once per listener in every worker process, after the fork
	 * and before the worker serves anything, with the state init made.
	 * init runs once, in the master, before the workers are forked: what
	 * it builds (memory, files it opened, parsed options) every worker
	 * inherits as a copy, and a change one worker makes to it the others
	 * never see.  Anything that must not be shared between processes (a
	 * connection to a database, a thread, a random generator's state, a
	 * file opened for appending by one process) belongs here instead.
	 * Runs in the main context (must not suspend), as the worker's user
	 * (daemon.user).  Return 0, or non-zero with a message in err: the
	 * worker exits and the master logs it and starts another after a
	 * back-off (a worker that cannot run is treated like one that
	 * crashed).  Workers never call fini: the master does, once. */
	int (*init_worker)(void *state, char *err, size_t errlen);
} ks_plugin;

#define KS_PLUGIN_DEFINE(...)                                                  \
	KS_API extern const ks_plugin ks_plugin_descriptor;                    \
	const ks_plugin ks_plugin_descriptor = {.abi = KS_PLUGIN_ABI,          \
						.size = sizeof(ks_plugin),     \
						__VA_ARGS__}

/* ---- Options (init only) ------------------------------------------------ */

/* Each getter returns KS_OK and stores the value, stores `def` when the key
 * is absent, or returns KS_EINVAL when the key has the wrong type (and writes
 * "option NAME: expected TYPE" into err when err is not NULL).  Strings stay
 * valid until fini(): keep the pointer, no need to copy. */
KS_API int ks_opt_string(const ks_options *o, const char *name, const char *def,
			 const char **out, char *err, size_t errlen);
KS_API int ks_opt_int(const ks_options *o, const char *name, long long def,
		      long long *out, char *err, size_t errlen);
KS_API int ks_opt_bool(const ks_options *o, const char *name, int def, int *out,
		       char *err, size_t errlen);
KS_API int ks_opt_double(const ks_options *o, const char *name, double def,
			 double *out, char *err, size_t errlen);
/* KS_OK if every key in `o` is in the NULL-terminated list `known`; otherwise
 * KS_EINVAL with "unknown option NAME" in err. */
KS_API int ks_opt_check_keys(const ks_options *o, const char *const *known,
			     char *err, size_t errlen);
/* An array or list of integers (`ports = [ 7, 9 ]`): stores up to cap values
 * in vals and the count in *n (0 when the key is absent).  KS_EINVAL, with
 * a message, when it is not a list of integers or has more than cap. */
KS_API int ks_opt_int_list(const ks_options *o, const char *name,
			   long long *vals, size_t cap, size_t *n, char *err,
			   size_t errlen);

/* ---- Read channel ------------------------------------------------------- */

/* SUSPENDS.  Reads one line terminated by LF or CRLF.  On KS_OK, *line points
 * at the line without its terminator, NUL-terminated, *len is its length;
 * both stay valid until the next read call on `in`.  The line may contain
 * NUL bytes (binary garbage is passed through; use *len).
 *  KS_EOF: end of input.  If the peer closed after an unterminated final
 *          line, *line and *len hold those bytes (*len > 0); at a clean EOF
 *          *len is 0.
 *  KS_ETOOLONG: the line is longer than max_line_length.  Its bytes are
 *          discarded, and the next read_line continues after its end.
 *  KS_ETIMEDOUT, KS_EIO, KS_ECANCELED: see enum ks_status.
 * Pending output on the connection is flushed before it waits. */
KS_API int ks_read_line(ks_rchan *in, char **line, size_t *len);

/* SUSPENDS.  Reads exactly n bytes into buf.  KS_EOF if the input ended
 * before n bytes arrived (those that did are consumed). */
KS_API int ks_read_exact(ks_rchan *in, void *buf, size_t n);

/* SUSPENDS.  Waits until at least one byte is there, then copies up to cap
 * bytes into buf and stores the count in *got.  KS_EOF at end of input. */
KS_API int ks_read_some(ks_rchan *in, void *buf, size_t cap, size_t *got);

/* SUSPENDS.  Waits until n bytes are buffered and points *p at them without
 * consuming them (valid until the next read call on `in`).  KS_EINVAL if n is
 * larger than the channel's buffer (max(16 KiB, max_line_length + 2)). */
KS_API int ks_read_peek(ks_rchan *in, size_t n, const void **p);

/* SUSPENDS.  Consumes and drops n bytes. */
KS_API int ks_read_skip(ks_rchan *in, size_t n);

/* SUSPENDS.  Big-endian (network order) integers. */
KS_API int ks_read_u8(ks_rchan *in, uint8_t *v);
KS_API int ks_read_u16(ks_rchan *in, uint16_t *v);
KS_API int ks_read_u32(ks_rchan *in, uint32_t *v);
KS_API int ks_read_u64(ks_rchan *in, uint64_t *v);

/* Bytes buffered and readable without suspending.  Never suspends. */
KS_API size_t ks_read_buffered(const ks_rchan *in);

/* ---- Write channel ------------------------------------------------------ */

/* Writes are buffered and sent when the handler next waits for input, calls
 * ks_flush, sleeps, or returns; large writes go to the socket directly.
 * SUSPENDS only when the output buffer would grow past its high-water mark
 * (1 MiB), until the peer has drained it.  KS_EIO once the peer is gone
 * (never SIGPIPE), KS_ECLOSED after ks_shutdown/ks_close. */
KS_API int ks_write(ks_wchan *out, const void *buf, size_t n);
KS_API int ks_write_str(ks_wchan *out, const char *s);
KS_API int ks_printf(ks_wchan *out, const char *fmt, ...) KS_PRINTF(2, 3);
KS_API int ks_vprintf(ks_wchan *out, const char *fmt, va_list ap);
KS_API int ks_write_u8(ks_wchan *out, uint8_t v);
KS_API int ks_write_u16(ks_wchan *out, uint16_t v);
KS_API int ks_write_u32(ks_wchan *out, uint32_t v);
KS_API int ks_write_u64(ks_wchan *out, uint64_t v);

/* SUSPENDS until everything buffered has been handed to the kernel. */
KS_API int ks_flush(ks_wchan *out);

/* SUSPENDS.  Flushes, then shuts down the write side (TCP half-close: the
 * peer reads EOF, the read channel keeps working).  Later writes return
 * KS_ECLOSED. */
KS_API int ks_shutdown(ks_wchan *out);

/* SUSPENDS.  Flushes (bounded by idle_timeout) and closes the connection:
 * both channels return KS_ECLOSED from then on.  Returning from handle()
 * does the same; use this to close early while spawned coroutines go on. */
KS_API int ks_close(ks_conn *conn);

/* SUSPENDS.  Copies everything from `from` to `to` until `from` reaches EOF,
 * then flushes `to` (it does not shut `to` down).  The core moves the data
 * without waking the coroutine per chunk.  *copied (may be NULL) receives
 * the byte count.  KS_OK at EOF, or the first error of either side. */
KS_API int ks_copy(ks_rchan *from, ks_wchan *to, uint64_t *copied);

/* ---- Coroutines and time ------------------------------------------------ */

/* Starts fn(conn, arg) in a new coroutine of the same connection (Ktor's
 * launch).  It first runs when the caller next suspends.  The connection
 * stays open until the handler and all coroutines it spawned have returned.
 * Only one coroutine may wait on a given channel at a time (else KS_EBUSY).
 * Never suspends.  KS_ENOMEM if no stack could be allocated. */
KS_API int ks_spawn(ks_conn *conn, void (*fn)(ks_conn *conn, void *arg),
		    void *arg);

/* SUSPENDS for `seconds` (flushing pending output first).  KS_ECANCELED if
 * the daemon shuts down meanwhile. */
KS_API int ks_sleep(ks_conn *conn, double seconds);

/* Sets this connection's idle timeout (seconds without read or write
 * progress; 0 disables it), overriding the listener's idle_timeout. */
KS_API void ks_conn_set_timeout(ks_conn *conn, double seconds);

/* ---- Connection info ---------------------------------------------------- */

/* Peer and local addresses; *len receives the address length.  For a Unix
 * socket the peer address is usually unnamed (sun_path empty).  On a
 * listener with proxy_protocol they are the addresses the PROXY header
 * carried (the client's, and the one it connected to), when it carried
 * any. */
KS_API const struct sockaddr *ks_conn_peer(const ks_conn *conn, socklen_t *len);
KS_API const struct sockaddr *ks_conn_local(const ks_conn *conn,
					    socklen_t *len);
/* "127.0.0.1:40123", "[::1]:40123" or "unix:/run/x.sock"; valid for the
 * connection's lifetime. */
KS_API const char *ks_conn_peer_str(const ks_conn *conn);
KS_API const char *ks_conn_local_str(const ks_conn *conn);
KS_API const char *ks_conn_listener(const ks_conn *conn);
/* TLS details (NULL on a plain connection, or when not negotiated):
 * protocol version ("TLS1.3"), cipher suite name, the server name the
 * client asked for (SNI), the ALPN protocol, and the client certificate's
 * subject DN.  Valid for the connection's lifetime. */
KS_API const char *ks_conn_tls_version(const ks_conn *conn);
KS_API const char *ks_conn_tls_cipher(const ks_conn *conn);
KS_API const char *ks_conn_tls_sni(const ks_conn *conn);
KS_API const char *ks_conn_tls_alpn(const ks_conn *conn);
KS_API const char *ks_conn_tls_peer_subject(const ks_conn *conn);
/* 1: the client sent a certificate that verified against client_ca;
 * 0: no certificate (or a plain connection); -1: it failed verification
 * (only possible with verify_client = "optional"). */
KS_API int ks_conn_tls_peer_verified(const ks_conn *conn);

/* The errno behind the last KS_EIO on this connection (0 if none). */
KS_API int ks_conn_errno(const ks_conn *conn);

/* ---- Outbound connections ---------------------------------------------- */

/* SUSPENDS.  Connects to host:port over TCP (host: a name or an IPv4/IPv6
 * literal; names are resolved off the event loop), trying each address in
 * turn, within `timeout` seconds in all (0: 30 s).  The socket gets
 * TCP_NODELAY and the socket options of the listener the connection came
 * in on (keep_alive, type_of_service, linger, buffer sizes).  On KS_OK *out is a peer with its own read and write
 * channels, used with the same functions as the connection's; reads and
 * writes on it are bounded by the connection's idle timeout too.
 * KS_ERESOLVE, KS_ETIMEDOUT, or KS_EIO (ks_peer_errno: ECONNREFUSED ...).
 * Every peer still open when the connection ends is closed then. */
KS_API int ks_connect(ks_conn *conn, const char *host, const char *port,
		      double timeout, ks_peer **out);
KS_API ks_rchan *ks_peer_in(ks_peer *peer);
KS_API ks_wchan *ks_peer_out(ks_peer *peer);
/* The errno behind the last KS_EIO on this peer. */
KS_API int ks_peer_errno(const ks_peer *peer);
/* Closes the socket and frees the peer (pending output is dropped; call
 * ks_flush first).  A coroutine waiting on it gets KS_ECLOSED (the peer's
 * memory lasts until that coroutine has seen it); do not use the peer
 * after closing it.  Never suspends. */
KS_API void ks_peer_close(ks_peer *peer);

/* Client-side TLS for ks_tls_upgrade.  Zero-initialise, then set what you
 * need.  Certificates are verified by default (against ca_file, or the
 * system trust store) including the host name; insecure = 1 turns that off
 * and is logged at warn level for every connection. */
typedef struct ks_tls_client_opts {
	const char *server_name; /* SNI and the name to verify; NULL: the host
				  * given to ks_connect (no SNI for an
				  * address, checked against IP names) */
	const char *ca_file;     /* PEM trust anchors; NULL: system store */
	const char *priority;    /* GnuTLS priority string; NULL: default */
	const char *cert_file;   /* client certificate (PEM), with key_file */
	const char *key_file;
	const char *alpn;        /* comma-separated protocols, NULL: none */
	int insecure;
} ks_tls_client_opts;

/* SUSPENDS.  Runs a TLS client handshake on the peer (bounded by the
 * connection's idle timeout); afterwards its channels carry TLS.  KS_ETLS
 * (logged with the reason: handshake failure, untrusted certificate, wrong
 * host name, expired ...), KS_ETIMEDOUT, KS_EIO. */
KS_API int ks_tls_upgrade(ks_peer *peer, const ks_tls_client_opts *opts);
/* The ALPN protocol the server chose, or NULL. */
KS_API const char *ks_peer_tls_alpn(const ks_peer *peer);

/* ---- Datagrams (UDP) ---------------------------------------------------- */

/* The largest datagram payload ksockd hands out (an IPv4 UDP datagram
 * carries at most 65507 bytes, IPv6 65527). */
#define KS_DGRAM_MAX 65535

/* One received datagram.  The struct is the caller's (put it on the stack);
 * only `data` points into the socket. */
typedef struct ks_dgram {
	const uint8_t *data; /* the payload; valid until the next
			      * ks_dgram_recv on the same socket */
	size_t len;          /* payload bytes at data */
	size_t size;         /* the datagram's real size: larger than len
			      * only when it was truncated (KS_ETOOLONG) */
	struct sockaddr_storage peer; /* the sender */
	socklen_t peer_len;
	/* The address the datagram was sent to, with the port: on a
	 * listener bound to a wildcard this tells which of the host's
	 * addresses (or which multicast group) the peer used. */
	struct sockaddr_storage local;
	socklen_t local_len;
	/* The source address ks_dgram_reply answers from (port 0): `local`
	 * for unicast, the receiving interface's address when the datagram
	 * went to a multicast group (never reply from a group address). */
	struct sockaddr_storage reply_from;
	socklen_t reply_from_len;
	unsigned ifindex; /* the interface it arrived on; 0: unknown */
	unsigned flags;   /* KS_DGRAM_* below */
} ks_dgram;

/* ks_dgram.flags: where the datagram was sent. */
#define KS_DGRAM_MULTICAST 1u /* to a multicast group */
#define KS_DGRAM_BROADCAST 2u /* to a broadcast address (handed out only by
			       * listeners with broadcast = true; the others
			       * drop such datagrams) */

/* SUSPENDS.  Receives one datagram into *d, waiting at most `timeout`
 * seconds (0: no limit).
 *  KS_OK: d is filled.
 *  KS_ETOOLONG: the datagram was larger than the socket's buffer (the
 *          listener's max_datagram_size): d->size is its real size,
 *          d->data holds the first d->len bytes; it is consumed.
 *  KS_ETIMEDOUT: nothing arrived in time.
 *  KS_ECLOSED: the socket was closed, or (listener sessions) the
 *          configuration was reloaded or the daemon is stopping.
 *  KS_EIO: a socket error (ks_dgram_errno); on a connected socket
 *          typically ECONNREFUSED: the peer's port is closed.
 *  KS_ECANCELED, KS_EBUSY: see enum ks_status. */
KS_API int ks_dgram_recv(ks_dsock *sock, ks_dgram *d, double timeout);

/* SUSPENDS only while the socket's send buffer is full.  Sends one
 * datagram of n bytes to `to` (NULL: the peer of a connected socket).  An
 * IPv4 address may be given to an outbound socket created without a host
 * (it is dual-stack).  KS_OK once the kernel took it; KS_ETOOLONG if it is
 * larger than a datagram can be (EMSGSIZE); KS_EIO with ks_dgram_errno
 * (EACCES: a broadcast address without `broadcast = true`, ENETUNREACH,
 * ECONNREFUSED on a connected socket ...); KS_EINVAL (no address). */
KS_API int ks_dgram_send(ks_dsock *sock, const void *buf, size_t n,
			 const struct sockaddr *to, socklen_t tolen);

/* SUSPENDS like ks_dgram_send.  Answers the datagram d: sends to its
 * sender from d->reply_from, so that on a multi-homed host the reply
 * leaves from the address the request went to. */
KS_API int ks_dgram_reply(ks_dsock *sock, const ks_dgram *d, const void *buf,
			  size_t n);

/* SUSPENDS (name resolution).  Creates an outbound UDP socket that belongs
 * to `conn` (closed when the connection ends, bounded by its idle timeout
 * and shutdown like its channels).  host and port NULL: an unconnected
 * dual-stack socket on an ephemeral port, for ks_dgram_send to any
 * address.  Otherwise host:port is resolved (off the event loop, within
 * `timeout` seconds, 0: 30 s) and the socket connected to it: it receives
 * only that peer's datagrams and sends with to = NULL.  The socket gets
 * the listener's type_of_service and buffer sizes.  KS_ERESOLVE,
 * KS_ETIMEDOUT, KS_EIO, KS_ENOMEM. */
KS_API int ks_dgram_open(ks_conn *conn, const char *host, const char *port,
			 double timeout, ks_dsock **out);
/* Closes an outbound socket; on a listener's socket it does nothing (that
 * one belongs to the daemon).  A coroutine waiting on it gets KS_ECLOSED,
 * and d->data of what it received is gone.  Never suspends. */
KS_API void ks_dgram_close(ks_dsock *sock);
/* The errno behind the last KS_EIO on this socket (0 if none). */
KS_API int ks_dgram_errno(const ks_dsock *sock);
/* The socket's own address (a listener's bound address), and the peer of
 * a connected socket (NULL when not connected). */
KS_API const struct sockaddr *ks_dgram_local(const ks_dsock *sock,
					     socklen_t *len);
KS_API const struct sockaddr *ks_dgram_peer(const ks_dsock *sock,
					    socklen_t *len);

/* ---- Addresses ---------------------------------------------------------- */

#define KS_ADDR_STRLEN 128
/* Formats "127.0.0.1:7", "[::1]:7" or "unix:/path" into buf (size bytes,
 * KS_ADDR_STRLEN is always enough) and returns buf.  IPv4-mapped IPv6
 * addresses are shown as IPv4. */
KS_API const char *ks_addr_str(const struct sockaddr *sa, socklen_t len,
			       char *buf, size_t size);
/* The port of an IPv4/IPv6 address (host order), -1 for other families. */
KS_API int ks_addr_port(const struct sockaddr *sa);

/* ---- Metrics ------------------------------------------------------------ */

/* The daemon's counters and gauges in the Prometheus text exposition
 * format, version 0.0.4 ("# HELP" and "# TYPE" lines, every name prefixed
 * ksockd_, per-listener series labelled listener="NAME"): summed over
 * every worker process, those that exited or crashed included, as the
 * bundled `metrics` plugin serves them (ksockd.conf(5) lists them).
 * Returns a malloc'd, NUL-terminated text (free() it) and stores its
 * length in *len; NULL when out of memory, or outside the daemon (the
 * ksock client), with *len 0.  Never suspends: it reads shared memory
 * and formats text (about 3 KiB per listener). */
KS_API char *ks_metrics_text(ks_conn *conn, size_t *len);

/* ---- Logging ------------------------------------------------------------ */

/* Logs with the prefix "[plugin listener peer]".  Never suspends. */
KS_API void ks_conn_log(const ks_conn *conn, int level, const char *fmt, ...)
	KS_PRINTF(3, 4);
/* Logs without connection context (usable from init/fini). */
KS_API void ks_log(int level, const char *fmt, ...) KS_PRINTF(2, 3);

/* A static string naming a status code ("end of input", ...). */
KS_API const char *ks_strerror(int status);

#ifdef __cplusplus
}
#endif
#endif /* KSOCKD_PLUGIN_H */
