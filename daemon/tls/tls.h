/*
 * Server-side TLS with GnuTLS: a listener's `tls` group becomes a
 * ks_tls_ctx (credentials, priorities, ALPN list, session-ticket key), built
 * when the configuration is loaded so `ksockd -t` reports every problem.
 * Each accepted connection gets a GnuTLS session that replaces the stream's
 * plain transport; the handshake runs before the handler starts.
 */
#ifndef KS_TLS_H
#define KS_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <ksockd/plugin.h>

struct ks_stream;

enum ks_tls_verify {
	KS_TLS_VERIFY_NONE = 0,     /* no client certificate asked for */
	KS_TLS_VERIFY_OPTIONAL = 1, /* asked for; verified if sent */
	KS_TLS_VERIFY_REQUIRE = 2,  /* a valid one is required */
};

struct ks_tls_keypair {
	const char *certificate; /* PEM chain */
	const char *key;         /* PEM private key */
	const char *name;        /* sni entries: the server name, else NULL */
	const char *ocsp;        /* DER OCSP response to staple, or NULL */
};

/* A listener's `tls` group, validated by conf.c (strings point into the
 * config).  keypairs[0..ncerts) come from certificate/key (a string or a
 * list of strings each, paired by position: e.g. an RSA and an ECDSA
 * certificate), then the `sni` entries.  GnuTLS picks among them by the
 * client's server name and the key types it supports. */
struct ks_tls_conf {
	struct ks_tls_keypair *keypairs;
	size_t nkeypairs;
	const char *priority;  /* GnuTLS priority string */
	const char *client_ca; /* PEM file of CAs for client certificates */
	enum ks_tls_verify verify_client;
	const char **alpn;     /* protocol names, server preference order */
	size_t nalpn;
	double handshake_timeout; /* seconds; 0: unset (the listener's) */
	bool session_tickets;
};

/* The default `priority`, after Mozilla's "intermediate" profile: TLS 1.3
 * and 1.2 only; AEAD ciphers only, AES-256-GCM, ChaCha20-Poly1305 and
 * AES-128-GCM (no CBC suites with their HMAC record MACs, no AES-CCM);
 * TLS 1.2 key exchange by ECDHE only (no RSA key transport, no DHE), and
 * no finite-field groups for TLS 1.3 either; the server's order wins.  The
 * rest (signature algorithms, elliptic curves) is NORMAL's. */
#define KS_TLS_DEFAULT_PRIORITY                                         \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"                   \
	"-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM:"     \
	"-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-GROUP-DH-ALL:" \
	"%SERVER_PRECEDENCE"

struct ks_tls_ctx;

/* A served certificate, for the metrics and the expiry warnings. */
struct ks_tls_certinfo {
	char name[128];      /* the sni entry's name, else the certificate's
			      * first DNS name, else its CN, else "-" */
	const char *file;    /* the PEM file */
	long long not_after; /* epoch seconds */
};

/* The certificates ctx serves (ks_tls_ctx_new read them): *n of them. */
const struct ks_tls_certinfo *ks_tls_ctx_certs(const struct ks_tls_ctx *ctx,
					       size_t *n);

/* Builds the credentials: loads every certificate and key (a key that does
 * not match its certificate is an error) and the OCSP response to staple
 * with each (one that is not for that certificate, or expired, is an
 * error), the client CA file, checks the priority string.  On failure
 * returns -1 with a message naming the file or setting in err. */
int ks_tls_ctx_new(const struct ks_tls_conf *tc, struct ks_tls_ctx **out,
		   char *err, size_t errlen);
void ks_tls_ctx_free(struct ks_tls_ctx *ctx);

/* Coroutine context: puts a server session on the stream and runs the
 * handshake, bounded by the handshake timeout.  0 on success (the stream
 * now reads and writes through TLS); -1 after logging why (peer, GnuTLS
 * reason), the caller closes the connection. */
int ks_tls_accept(struct ks_tls_ctx *ctx, struct ks_stream *st);

/* Coroutine context: the client side, on an outbound stream (see
 * ks_tls_upgrade).  On KS_OK *info holds the session and the stream reads
 * and writes through it; otherwise a KS_E* status after logging why. */
struct ks_tls_info;
int ks_tls_connect(struct ks_stream *st, const ks_tls_client_opts *o,
		   struct ks_tls_info **info);
const char *ks_tls_info_alpn(const struct ks_tls_info *info);
/* "TLS1.3 AES-256-GCM alpn=x peer=CN=..." for logs and the client tool. */
void ks_tls_info_describe(const struct ks_tls_info *info, char *buf,
			  size_t len);

/* Outbound credentials (trust store, client certificate) are loaded once
 * per configuration generation and set of files, not per connection; a
 * reload starts afresh, so renewed files are picked up.  Freed with the
 * generation. */
struct ks_tls_client_cache;
void ks_tls_client_cache_free(struct ks_tls_client_cache *cache);

/* Frees a connection's TLS details (see ks_conn_tls_*). */
struct ks_tls_info;
void ks_tls_info_free(struct ks_tls_info *info);

#endif
