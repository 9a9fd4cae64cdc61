/*
 * Server-side TLS (GnuTLS).  The handshake runs in the connection's
 * coroutine before the handler: GnuTLS does its own non-blocking I/O on the
 * fd and the coroutine waits for the readiness it asks for.  Afterwards the
 * session becomes the stream's transport, so handlers, ks_copy and the
 * auto-flush work unchanged.
 *
 * Session tickets: each configuration generation gets a random master key;
 * GnuTLS derives the ticket encryption keys from it and rotates them on its
 * own schedule (accepting the previous key), and a reload brings a new
 * master key.  Renegotiation is refused.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "conf.h"
#include "conn.h"
#include "log.h"
#include "stream.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

struct ks_tls_ctx {
	gnutls_certificate_credentials_t creds;
	gnutls_priority_t prio;
	gnutls_datum_t ticket_key;
	gnutls_datum_t *alpn;
	unsigned nalpn;
	enum ks_tls_verify verify;
	double handshake_timeout;
	bool tickets;
	struct ks_tls_certinfo *certs;
	size_t ncerts;
};

/* Per connection: the session and what the handler may ask about it. */
struct ks_tls_info {
	gnutls_session_t sess;
	gnutls_certificate_credentials_t client_creds; /* outbound, owned */
	bool send_again; /* last record_send said EAGAIN: resend (NULL, 0) */
	bool bye_sent;   /* our close_notify is out */
	bool peer_gone;  /* TCP closed or broken without close_notify */
	int fd;
	/* Read-ahead: GnuTLS asks for a record's 5-byte header and then its
	 * body; one read() into this buffer usually serves both. */
	size_t roff, rlen;
	unsigned char rbuf[2048];
	/* What an earlier phase (the PROXY header's) read past its own
	 * bytes: the start of the ClientHello, served before the socket. */
	unsigned char *pre;
	size_t pre_off, pre_len;
	const char *version, *cipher;
	char *sni, *alpn, *subject;
	int verified;
};

/* Reads the leaf certificate of chain idx: its expiry and a name for it
 * (the sni entry's, else the first DNS name, else the CN). */
static int
cert_info(struct ks_tls_ctx *ctx, unsigned idx, const struct ks_tls_keypair *kp)
{
	struct ks_tls_certinfo *ci, *grown;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t der;
	size_t len;

	grown = realloc(ctx->certs, (ctx->ncerts + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	ctx->certs = grown;
	ci = &ctx->certs[ctx->ncerts++];
	memset(ci, 0, sizeof(*ci));
	ci->file = kp->certificate;
	if (gnutls_certificate_get_crt_raw(ctx->creds, idx, 0, &der) < 0 ||
	    gnutls_x509_crt_init(&crt) < 0)
		goto name;
	if (gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER) == 0) {
		ci->not_after = (long long)gnutls_x509_crt_get_expiration_time(crt);
		len = sizeof(ci->name) - 1;
		if (kp->name == NULL &&
		    gnutls_x509_crt_get_subject_alt_name(crt, 0, ci->name, &len,
							 NULL) == GNUTLS_SAN_DNSNAME) {
			ci->name[len] = '\0';
		} else {
			len = sizeof(ci->name);
			if (kp->name != NULL ||
			    gnutls_x509_crt_get_dn_by_oid(
				    crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0,
				    ci->name, &len) != 0)
				ci->name[0] = '\0';
		}
	}
	gnutls_x509_crt_deinit(crt);
name:
	if (kp->name != NULL)
		snprintf(ci->name, sizeof(ci->name), "%s", kp->name);
	else if (ci->name[0] == '\0')
		snprintf(ci->name, sizeof(ci->name), "-");
	return 0;
}

const struct ks_tls_certinfo *
ks_tls_ctx_certs(const struct ks_tls_ctx *ctx, size_t *n)
{
	*n = ctx != NULL ? ctx->ncerts : 0;
	return ctx != NULL ? ctx->certs : NULL;
}

void
ks_tls_ctx_free(struct ks_tls_ctx *ctx)
{
	unsigned i;

	if (ctx == NULL)
		return;
	if (ctx->creds != NULL)
		gnutls_certificate_free_credentials(ctx->creds);
	if (ctx->prio != NULL)
		gnutls_priority_deinit(ctx->prio);
	if (ctx->ticket_key.data != NULL) {
		gnutls_memset(ctx->ticket_key.data, 0, ctx->ticket_key.size);
		gnutls_free(ctx->ticket_key.data);
	}
	for (i = 0; i < ctx->nalpn; i++)
		free(ctx->alpn[i].data);
	free(ctx->alpn);
	free(ctx->certs);
	free(ctx);
}

/* Staples kp->ocsp for the certificate chain idx.  GnuTLS takes a DER
 * response only for a certificate of that chain (it compares issuer and
 * serial number; the signature is left to the client) and only while it is
 * current: an expired one, or one saying revoked, is refused here; one
 * that expires later is no longer sent from then on.  0, or -1 with the
 * reason in err. */
static int
load_ocsp(gnutls_certificate_credentials_t creds, unsigned idx,
	  const struct ks_tls_keypair *kp, char *err, size_t errlen)
{
	const char *why;
	int rc;

	rc = gnutls_certificate_set_ocsp_status_request_file2(
		creds, kp->ocsp, idx, GNUTLS_X509_FMT_DER);
	/* Position 0 of the chain is the server certificate: the one whose
	 * response TLS 1.2 staples. */
	if (rc >= 0 &&
	    gnutls_certificate_get_ocsp_expiration(creds, idx, 0, 0) >= 0)
		return 0;
	if (rc >= 0)
		why = "GnuTLS kept no response for the server certificate (is it "
		      "one for a CA of the chain, or one without nextUpdate "
		      "older than 15 days?)";
	else if (rc == GNUTLS_E_OCSP_MISMATCH_WITH_CERTS)
		why = "it is not for this certificate (issuer or serial number "
		      "differ)";
	else if (rc == GNUTLS_E_EXPIRED)
		why = "it has expired (nextUpdate is past) or says the "
		      "certificate is revoked";
	else
		why = gnutls_strerror(rc);
	snprintf(err, errlen, "ocsp_response %s for certificate %s: %s",
		 kp->ocsp, kp->certificate, why);
	return -1;
}

int
ks_tls_ctx_new(const struct ks_tls_conf *tc, struct ks_tls_ctx **out, char *err,
	       size_t errlen)
{
	struct ks_tls_ctx *ctx;
	const char *errpos = NULL;
	size_t i;
	int rc;

	*out = NULL;
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ctx->verify = tc->verify_client;
	ctx->handshake_timeout = tc->handshake_timeout;
	ctx->tickets = tc->session_tickets;
	if ((rc = gnutls_certificate_allocate_credentials(&ctx->creds)) < 0) {
		snprintf(err, errlen, "credentials: %s", gnutls_strerror(rc));
		goto fail;
	}
	/* Key loading returns the index of the chain, for its OCSP response. */
	gnutls_certificate_set_flags(ctx->creds, GNUTLS_CERTIFICATE_API_V2);
	for (i = 0; i < tc->nkeypairs; i++) {
		const struct ks_tls_keypair *kp = &tc->keypairs[i];

		rc = gnutls_certificate_set_x509_key_file(
			ctx->creds, kp->certificate, kp->key, GNUTLS_X509_FMT_PEM);
		if (rc < 0) {
			snprintf(err, errlen, "certificate %s with key %s: %s",
				 kp->certificate, kp->key, gnutls_strerror(rc));
			goto fail;
		}
		if (kp->ocsp != NULL &&
		    load_ocsp(ctx->creds, (unsigned)rc, kp, err, errlen) != 0)
			goto fail;
		if (cert_info(ctx, (unsigned)rc, kp) != 0)
			goto oom;
	}
	if (tc->client_ca != NULL) {
		rc = gnutls_certificate_set_x509_trust_file(
			ctx->creds, tc->client_ca, GNUTLS_X509_FMT_PEM);
		if (rc <= 0) {
			snprintf(err, errlen, "client_ca %s: %s", tc->client_ca,
				 rc < 0 ? gnutls_strerror(rc)
					: "no certificate in the file");
			goto fail;
		}
	}
	rc = gnutls_priority_init(&ctx->prio,
				  tc->priority ? tc->priority
					       : KS_TLS_DEFAULT_PRIORITY,
				  &errpos);
	if (rc < 0) {
		ctx->prio = NULL;
		snprintf(err, errlen, "priority \"%s\": %s at \"%s\"",
			 tc->priority ? tc->priority : KS_TLS_DEFAULT_PRIORITY,
			 gnutls_strerror(rc), errpos ? errpos : "?");
		goto fail;
	}
	if (ctx->tickets &&
	    (rc = gnutls_session_ticket_key_generate(&ctx->ticket_key)) < 0) {
		snprintf(err, errlen, "session ticket key: %s", gnutls_strerror(rc));
		goto fail;
	}
	if (tc->nalpn > 0) {
		ctx->alpn = calloc(tc->nalpn, sizeof(*ctx->alpn));
		if (ctx->alpn == NULL)
			goto oom;
		for (i = 0; i < tc->nalpn; i++) {
			ctx->alpn[i].data = (unsigned char *)strdup(tc->alpn[i]);
			if (ctx->alpn[i].data == NULL)
				goto oom;
			ctx->alpn[i].size = (unsigned)strlen(tc->alpn[i]);
			ctx->nalpn++;
		}
	}
	*out = ctx;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	ks_tls_ctx_free(ctx);
	return -1;
}

void
ks_tls_info_free(struct ks_tls_info *t)
{
	if (t == NULL)
		return;
	if (t->sess != NULL)
		gnutls_deinit(t->sess);
	if (t->client_creds != NULL)
		gnutls_certificate_free_credentials(t->client_creds);
	free(t->sni);
	free(t->alpn);
	free(t->subject);
	free(t->pre);
	free(t);
}

/* ---- the transport ------------------------------------------------------- */

static struct ks_tls_info *
info_of(struct ks_stream *st)
{
	return st->tp_ctx;
}

static ssize_t
map_error(struct ks_tls_info *t, ssize_t rc)
{
	switch (rc) {
	case GNUTLS_E_AGAIN:
	case GNUTLS_E_INTERRUPTED:
		errno = EAGAIN;
		return -1;
	case GNUTLS_E_PREMATURE_TERMINATION:
		/* The peer closed TCP without close_notify: many clients do;
		 * treat it as the end of input. */
		t->peer_gone = true;
		return 0;
	default:
		t->peer_gone = true;
		errno = rc == GNUTLS_E_PUSH_ERROR || rc == GNUTLS_E_PULL_ERROR
				? ECONNRESET
				: EPROTO;
		return -1;
	}
}

static ssize_t
tls_read(struct ks_stream *st, void *buf, size_t n)
{
	struct ks_tls_info *t = info_of(st);
	ssize_t rc = gnutls_record_recv(t->sess, buf, n);

	if (rc >= 0)
		return rc;
	if (rc == GNUTLS_E_REHANDSHAKE) {
		/* Renegotiation is off: say no and carry on. */
		gnutls_alert_send(t->sess, GNUTLS_AL_WARNING,
				  GNUTLS_A_NO_RENEGOTIATION);
		errno = EAGAIN;
		return -1;
	}
	return map_error(t, rc);
}

static ssize_t
tls_write(struct ks_stream *st, const void *buf, size_t n)
{
	struct ks_tls_info *t = info_of(st);
	ssize_t rc;

	/* After EAGAIN GnuTLS wants the same call again; (NULL, 0) resends
	 * the record it already built and returns the original count. */
	rc = t->send_again ? gnutls_record_send(t->sess, NULL, 0)
			   : gnutls_record_send(t->sess, buf, n);
	t->send_again = rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED;
	if (rc >= 0)
		return rc;
	rc = map_error(t, rc);
	return rc == 0 ? (errno = EPIPE, -1) : rc;
}

static int
tls_shutdown_write(struct ks_stream *st)
{
	struct ks_tls_info *t = info_of(st);

	/* Best effort close_notify; the TCP half-close is what counts. */
	t->bye_sent = true;
	(void)gnutls_bye(t->sess, GNUTLS_SHUT_WR);
	return shutdown(st->fd, SHUT_WR);
}

static void
tls_close(struct ks_stream *st)
{
	struct ks_tls_info *t = info_of(st);

	/* A strict peer must not take our end for a truncation attack (one
	 * whose socket is gone gets nothing: it would only fail).  The
	 * session itself lives until the connection is freed. */
	if (!t->bye_sent && !t->peer_gone && st->in.err == 0) {
		t->bye_sent = true;
		(void)gnutls_bye(t->sess, GNUTLS_SHUT_WR);
	}
}

static size_t
tls_pending(struct ks_stream *st)
{
	struct ks_tls_info *t = info_of(st);

	return gnutls_record_check_pending(t->sess) + t->rlen + t->pre_len;
}

static const struct ks_transport tls_transport = {
	.name = "tls",
	.read = tls_read,
	.write = tls_write,
	.shutdown_write = tls_shutdown_write,
	.close = tls_close,
	.pending = tls_pending,
};

/* ---- the handshake ----------------------------------------------------- */

/* Anyone who reaches the port can make a handshake fail: those messages
 * are rate-limited (the counters count every one). */
static struct ks_lograte fail_log = KS_LOGRATE_INIT("failed TLS handshakes");

static bool
fail_log_ok(struct ks_conn *c)
{
	return ks_lograte_allow(&fail_log, KS_LOG_INFO,
				&c->wk->stats->log_suppressed) != 0;
}

/* A failed handshake: counted in all and by reason (idx, worker.h's
 * KS_STAT of a tls_fail_ member). */
static void
tls_failed(struct ks_conn *c, size_t idx)
{
	KS_CCOUNT(c, tls_failures);
	ks_stats_bump(c->wk->stats, idx);
	ks_stats_bump(c->ls, idx);
}

/* Which tls_fail_ counter a fatal GnuTLS error belongs to. */
static size_t
fail_reason(int rc)
{
	switch (rc) {
	case GNUTLS_E_FATAL_ALERT_RECEIVED:
		return KS_STAT(tls_fail_alert);
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PULL_ERROR:
	case GNUTLS_E_PUSH_ERROR:
		return KS_STAT(tls_fail_eof);
	case GNUTLS_E_CERTIFICATE_ERROR:
	case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
	case GNUTLS_E_NO_CERTIFICATE_FOUND:
		return KS_STAT(tls_fail_cert);
	default:
		return KS_STAT(tls_fail_protocol);
	}
}

static char *
datum_str(const unsigned char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s != NULL) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* The subject DN of a DER certificate, malloc'd, or NULL. */
static char *
peer_subject(const gnutls_datum_t *der)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn;
	char *s = NULL;

	if (gnutls_x509_crt_init(&crt) != 0)
		return NULL;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) == 0 &&
	    gnutls_x509_crt_get_dn2(crt, &dn) == 0) {
		s = datum_str(dn.data, dn.size);
		gnutls_free(dn.data);
	}
	gnutls_x509_crt_deinit(crt);
	return s;
}

/* After the handshake: what the handler can ask, and the client
 * certificate check.  Returns -1 if the connection must be refused. */
static int
collect_info(struct ks_tls_ctx *ctx, struct ks_tls_info *t, struct ks_conn *c)
{
	gnutls_session_t sess = t->sess;
	const gnutls_datum_t *certs;
	gnutls_datum_t proto;
	char name[256];
	size_t len = sizeof(name);
	unsigned type, ncerts = 0, status = 0;

	t->version = gnutls_protocol_get_name(gnutls_protocol_get_version(sess));
	t->cipher = gnutls_cipher_get_name(gnutls_cipher_get(sess));
	if (gnutls_server_name_get(sess, name, &len, &type, 0) == 0 &&
	    type == GNUTLS_NAME_DNS)
		t->sni = datum_str((unsigned char *)name, strnlen(name, len));
	if (gnutls_alpn_get_selected_protocol(sess, &proto) == 0)
		t->alpn = datum_str(proto.data, proto.size);
	if (ctx->verify == KS_TLS_VERIFY_NONE)
		return 0;
	certs = gnutls_certificate_get_peers(sess, &ncerts);
	if (certs == NULL || ncerts == 0) {
		t->verified = 0;
		if (ctx->verify == KS_TLS_VERIFY_REQUIRE) {
			if (fail_log_ok(c))
				ks_conn_log(c, KS_LOG_INFO, "TLS: no client "
					    "certificate (required)");
			/* Tell the client why (TLS 1.3 clients have finished
			 * their handshake by now and would only see EOF). */
			gnutls_alert_send(sess, GNUTLS_AL_FATAL,
					  gnutls_protocol_get_version(sess) ==
							  GNUTLS_TLS1_3
						  ? GNUTLS_A_CERTIFICATE_REQUIRED
						  : GNUTLS_A_HANDSHAKE_FAILURE);
			return -1;
		}
		return 0;
	}
	t->subject = peer_subject(&certs[0]);
	if (gnutls_certificate_verify_peers2(sess, &status) == 0 && status == 0) {
		t->verified = 1;
		return 0;
	}
	t->verified = -1;
	if (ctx->verify == KS_TLS_VERIFY_REQUIRE) {
		gnutls_datum_t why = {NULL, 0};

		gnutls_certificate_verification_status_print(
			status, GNUTLS_CRT_X509, &why, 0);
		if (fail_log_ok(c))
			ks_conn_log(c, KS_LOG_INFO,
				    "TLS: client certificate %s rejected: %s",
				    t->subject ? t->subject : "?",
				    why.data ? (char *)why.data
					     : "verification failed");
		gnutls_free(why.data);
		gnutls_alert_send(sess, GNUTLS_AL_FATAL, GNUTLS_A_BAD_CERTIFICATE);
		return -1;
	}
	return 0;
}

static ssize_t
tls_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	struct ks_tls_info *t = ptr;
	ssize_t n;
	size_t take;

	if (t->pre_len > 0) {
		take = KS_MIN(len, t->pre_len);
		memcpy(data, t->pre + t->pre_off, take);
		t->pre_off += take;
		t->pre_len -= take;
		return (ssize_t)take;
	}
	if (t->rlen == 0) {
		/* A big request (the body of a large record) goes straight
		 * into GnuTLS's buffer. */
		if (len >= sizeof(t->rbuf))
			n = read(t->fd, data, len);
		else
			n = read(t->fd, t->rbuf, sizeof(t->rbuf));
		if (n < 0)
			gnutls_transport_set_errno(t->sess, errno);
		if (n <= 0 || len >= sizeof(t->rbuf))
			return n;
		t->roff = 0;
		t->rlen = (size_t)n;
	}
	take = KS_MIN(len, t->rlen);
	memcpy(data, t->rbuf + t->roff, take);
	t->roff += take;
	t->rlen -= take;
	return (ssize_t)take;
}

static ssize_t
tls_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
	struct ks_tls_info *t = ptr;
	struct msghdr msg = {.msg_iov = (struct iovec *)(void *)iov,
			     .msg_iovlen = (size_t)iovcnt};
	ssize_t n = sendmsg(t->fd, &msg, MSG_NOSIGNAL);

	if (n < 0)
		gnutls_transport_set_errno(t->sess, errno);
	return n;
}

/* Our own transport callbacks: the read-ahead above, and sendmsg with
 * MSG_NOSIGNAL for the writes. */
static void
set_transport(struct ks_tls_info *t, int fd)
{
	t->fd = fd;
	gnutls_transport_set_ptr(t->sess, t);
	gnutls_transport_set_pull_function(t->sess, tls_pull);
	gnutls_transport_set_vec_push_function(t->sess, tls_push);
}

static int
new_session(struct ks_tls_ctx *ctx, struct ks_tls_info *t, int fd)
{
	gnutls_session_t sess;
	static const gnutls_certificate_request_t req[] = {
		[KS_TLS_VERIFY_NONE] = GNUTLS_CERT_IGNORE,
		[KS_TLS_VERIFY_OPTIONAL] = GNUTLS_CERT_REQUEST,
		[KS_TLS_VERIFY_REQUIRE] = GNUTLS_CERT_REQUIRE,
	};
	int rc;

	rc = gnutls_init(&sess, GNUTLS_SERVER | GNUTLS_NONBLOCK |
					GNUTLS_NO_SIGNAL |
					(ctx->tickets ? 0 : GNUTLS_NO_TICKETS));
	if (rc < 0)
		return rc;
	t->sess = sess;
	if ((rc = gnutls_priority_set(sess, ctx->prio)) < 0 ||
	    (rc = gnutls_credentials_set(sess, GNUTLS_CRD_CERTIFICATE,
					 ctx->creds)) < 0)
		return rc;
	gnutls_certificate_server_set_request(sess, req[ctx->verify]);
	if (ctx->tickets &&
	    (rc = gnutls_session_ticket_enable_server(sess, &ctx->ticket_key)) < 0)
		return rc;
	if (ctx->nalpn > 0 &&
	    (rc = gnutls_alpn_set_protocols(sess, ctx->alpn, ctx->nalpn,
					    GNUTLS_ALPN_SERVER_PRECEDENCE)) < 0)
		return rc;
	set_transport(t, fd);
	return 0;
}

int
ks_tls_accept(struct ks_tls_ctx *ctx, struct ks_stream *st)
{
	struct ks_conn *c = st->conn;
	struct ks_tls_info *t;
	int rc, wait;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		ks_conn_log(c, KS_LOG_ERR, "TLS: out of memory");
		return -1;
	}
	c->tls = t;
	if ((rc = new_session(ctx, t, st->fd)) < 0) {
		ks_conn_log(c, KS_LOG_ERR, "TLS: session setup: %s",
			    gnutls_strerror(rc));
		return -1;
	}
	/* Bytes already in the input buffer (read with a PROXY header) are
	 * the handshake's: GnuTLS reads them first.  The buffer itself is
	 * for plain text from now on. */
	if (st->in.buf.len > 0) {
		if ((t->pre = malloc(st->in.buf.len)) == NULL) {
			ks_conn_log(c, KS_LOG_ERR, "TLS: out of memory");
			return -1;
		}
		memcpy(t->pre, ks_buf_head(&st->in.buf), st->in.buf.len);
		t->pre_len = st->in.buf.len;
		ks_buf_consume(&st->in.buf, st->in.buf.len);
		ks_buf_release(&st->in.buf, &st->wk->pool);
	}
	/* The connection's handshake deadline (phase.h) bounds it all. */
	for (;;) {
		rc = gnutls_handshake(t->sess);
		if (rc == 0)
			break;
		if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
			wait = ks_stream_wait_ready(
				st, gnutls_record_get_direction(t->sess) ? EV_WRITE
									 : EV_READ);
			if (wait == KS_ETIMEDOUT) {
				tls_failed(c, KS_STAT(tls_fail_timeout));
				if (fail_log_ok(c))
					ks_conn_log(c, KS_LOG_INFO,
						    "TLS handshake timed out after %gs",
						    c->lc->handshake_timeout);
				return -1;
			}
			if (wait == KS_EOF || wait == KS_EIO)
				tls_failed(c, KS_STAT(tls_fail_eof));
			if (wait != KS_OK)
				return -1;
			continue;
		}
		if (!gnutls_error_is_fatal(rc))
			continue; /* a warning alert */
		tls_failed(c, fail_reason(rc));
		if (fail_log_ok(c))
			ks_conn_log(c, KS_LOG_INFO, "TLS handshake failed: %s",
				    gnutls_strerror(rc));
		/* Best effort: the client learns the reason from an alert. */
		(void)gnutls_alert_send_appropriate(t->sess, rc);
		return -1;
	}
	if (collect_info(ctx, t, c) != 0) {
		tls_failed(c, KS_STAT(tls_fail_cert));
		return -1;
	}
	KS_CCOUNT(c, tls_handshakes);
	st->tp = &tls_transport;
	st->tp_ctx = t;
	ks_conn_log(c, KS_LOG_DEBUG, "TLS %s %s%s%s%s%s", t->version, t->cipher,
		    t->sni ? " sni=" : "", t->sni ? t->sni : "",
		    t->alpn ? " alpn=" : "", t->alpn ? t->alpn : "");
	/* The client may have sent data with its Finished message. */
	ks_stream_want_input(st);
	return 0;
}

/* ---- the client side (ks_tls_upgrade) ------------------------------------ */

/* Runs a handshake whose session is already set up on st's fd: KS_OK,
 * KS_ETLS with GnuTLS's error in *grc, or why the wait ended. */
static int
handshake(gnutls_session_t sess, struct ks_stream *st, int *grc)
{
	int rc, wait;

	for (;;) {
		rc = gnutls_handshake(sess);
		if (rc == 0)
			return KS_OK;
		if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
			wait = ks_stream_wait_ready(
				st, gnutls_record_get_direction(sess) ? EV_WRITE
								      : EV_READ);
			if (wait != KS_OK)
				return wait;
			continue;
		}
		if (!gnutls_error_is_fatal(rc))
			continue;
		*grc = rc;
		return KS_ETLS;
	}
}

static int
client_alpn(gnutls_session_t sess, const char *list)
{
	gnutls_datum_t protos[16];
	char *copy, *tok, *save = NULL;
	unsigned n = 0;
	int rc;

	if ((copy = strdup(list)) == NULL)
		return GNUTLS_E_MEMORY_ERROR;
	for (tok = strtok_r(copy, ",", &save); tok != NULL && n < 16;
	     tok = strtok_r(NULL, ",", &save)) {
		protos[n].data = (unsigned char *)tok;
		protos[n].size = (unsigned)strlen(tok);
		n++;
	}
	rc = n > 0 ? gnutls_alpn_set_protocols(sess, protos, n, 0) : 0;
	free(copy);
	return rc;
}

static bool
is_ip_literal(const char *name)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, name, buf) == 1 ||
	       inet_pton(AF_INET6, name, buf) == 1;
}

struct ks_tls_client_cache {
	char *key; /* "ca\ncert\nkey\ninsecure" */
	gnutls_certificate_credentials_t creds;
	struct ks_tls_client_cache *next;
};

void
ks_tls_client_cache_free(struct ks_tls_client_cache *cache)
{
	struct ks_tls_client_cache *e;

	while ((e = cache) != NULL) {
		cache = e->next;
		gnutls_certificate_free_credentials(e->creds);
		free(e->key);
		free(e);
	}
}

static int
load_client_creds(const ks_tls_client_opts *o,
		  gnutls_certificate_credentials_t *out, const char **what)
{
	gnutls_certificate_credentials_t creds;
	int rc;

	*what = "credentials";
	if ((rc = gnutls_certificate_allocate_credentials(&creds)) < 0)
		return rc;
	*what = o->ca_file ? o->ca_file : "the system trust store";
	rc = o->ca_file ? gnutls_certificate_set_x509_trust_file(
				  creds, o->ca_file, GNUTLS_X509_FMT_PEM)
			: gnutls_certificate_set_x509_system_trust(creds);
	if (rc < 0 && !o->insecure)
		goto fail;
	if (o->cert_file != NULL || o->key_file != NULL) {
		*what = o->cert_file ? o->cert_file : "client certificate";
		rc = gnutls_certificate_set_x509_key_file(
			creds, o->cert_file ? o->cert_file : "",
			o->key_file ? o->key_file : "", GNUTLS_X509_FMT_PEM);
		if (rc < 0)
			goto fail;
	}
	*out = creds;
	return 0;
fail:
	gnutls_certificate_free_credentials(creds);
	return rc;
}

/* The credentials for o: from the connection's generation cache (loading
 * them the first time), or, without a connection (the client tool), fresh
 * ones handed to *owned. */
static int
client_creds(struct ks_conn *c, const ks_tls_client_opts *o,
	     gnutls_certificate_credentials_t *out, const char **what,
	     gnutls_certificate_credentials_t *owned)
{
	struct ks_conf *conf = c != NULL ? c->lc->conf : NULL;
	struct ks_tls_client_cache *e;
	char *key = NULL;
	int rc;

	if (conf == NULL) {
		rc = load_client_creds(o, owned, what);
		*out = *owned;
		return rc;
	}
	*what = "credentials";
	if (asprintf(&key, "%s\n%s\n%s\n%d", o->ca_file ? o->ca_file : "",
		     o->cert_file ? o->cert_file : "",
		     o->key_file ? o->key_file : "", o->insecure != 0) < 0)
		return GNUTLS_E_MEMORY_ERROR;
	for (e = conf->tls_clients; e != NULL; e = e->next) {
		if (strcmp(e->key, key) == 0) {
			free(key);
			*out = e->creds;
			return 0;
		}
	}
	if ((rc = load_client_creds(o, out, what)) < 0) {
		free(key);
		return rc;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		free(key);
		gnutls_certificate_free_credentials(*out);
		return GNUTLS_E_MEMORY_ERROR;
	}
	e->key = key;
	e->creds = *out;
	e->next = conf->tls_clients;
	conf->tls_clients = e;
	return 0;
}

int
ks_tls_connect(struct ks_stream *st, const ks_tls_client_opts *o,
	       struct ks_tls_info **out)
{
	struct ks_conn *c = st->conn;
	struct ks_tls_info *t;
	gnutls_datum_t proto;
	const char *what = "setup";
	gnutls_certificate_credentials_t creds = NULL;
	int rc, ks_rc;

	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return KS_ENOMEM;
	rc = client_creds(c, o, &creds, &what,
			  c == NULL ? &t->client_creds : NULL);
	if (rc < 0)
		goto fail;
	what = "session";
	rc = gnutls_init(&t->sess, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
	if (rc < 0)
		goto fail;
	what = o->priority ? o->priority : "priority";
	rc = o->priority ? gnutls_priority_set_direct(t->sess, o->priority, NULL)
			 : gnutls_set_default_priority(t->sess);
	if (rc < 0)
		goto fail;
	what = "credentials";
	if ((rc = gnutls_credentials_set(t->sess, GNUTLS_CRD_CERTIFICATE,
					 creds)) < 0)
		goto fail;
	/* SNI carries names only, never an address. */
	if (o->server_name != NULL && !is_ip_literal(o->server_name) &&
	    (rc = gnutls_server_name_set(t->sess, GNUTLS_NAME_DNS, o->server_name,
					 strlen(o->server_name))) < 0)
		goto fail;
	what = "alpn";
	if (o->alpn != NULL && (rc = client_alpn(t->sess, o->alpn)) < 0)
		goto fail;
	if (o->insecure)
		ks_conn_log(c, KS_LOG_WARN,
			    "TLS to %s: certificate verification disabled",
			    o->server_name ? o->server_name : "peer");
	else
		gnutls_session_set_verify_cert(t->sess, o->server_name, 0);
	set_transport(t, st->fd);

	ks_rc = handshake(t->sess, st, &rc);
	if (ks_rc != KS_OK && ks_rc != KS_ETLS) {
		ks_tls_info_free(t);
		return ks_rc;
	}
	if (ks_rc == KS_ETLS) {
		gnutls_datum_t why = {NULL, 0};
		unsigned status = gnutls_session_get_verify_cert_status(t->sess);

		if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR && status != 0 &&
		    gnutls_certificate_verification_status_print(
			    status, GNUTLS_CRT_X509, &why, 0) == 0)
			ks_conn_log(c, KS_LOG_INFO, "TLS to %s: %s",
				    o->server_name ? o->server_name : "peer",
				    (char *)why.data);
		else
			ks_conn_log(c, KS_LOG_INFO, "TLS to %s: %s",
				    o->server_name ? o->server_name : "peer",
				    gnutls_strerror(rc));
		gnutls_free(why.data);
		ks_tls_info_free(t);
		return KS_ETLS;
	}
	t->version = gnutls_protocol_get_name(gnutls_protocol_get_version(t->sess));
	t->cipher = gnutls_cipher_get_name(gnutls_cipher_get(t->sess));
	if (gnutls_alpn_get_selected_protocol(t->sess, &proto) == 0)
		t->alpn = datum_str(proto.data, proto.size);
	{
		unsigned n = 0;
		const gnutls_datum_t *certs =
			gnutls_certificate_get_peers(t->sess, &n);

		if (certs != NULL && n > 0)
			t->subject = peer_subject(&certs[0]);
	}
	st->tp = &tls_transport;
	st->tp_ctx = t;
	*out = t;
	ks_stream_want_input(st);
	return KS_OK;
fail:
	ks_conn_log(c, KS_LOG_INFO, "TLS client %s: %s", what, gnutls_strerror(rc));
	ks_tls_info_free(t);
	return KS_ETLS;
}

const char *
ks_tls_info_alpn(const struct ks_tls_info *t)
{
	return t != NULL ? t->alpn : NULL;
}

void
ks_tls_info_describe(const struct ks_tls_info *t, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s%s%s%s%s", t->version ? t->version : "?",
		 t->cipher ? t->cipher : "?", t->alpn ? " alpn=" : "",
		 t->alpn ? t->alpn : "", t->subject ? " peer=" : "",
		 t->subject ? t->subject : "");
}

/* ---- plugin API ------------------------------------------------------------ */

const char *
ks_conn_tls_version(const ks_conn *c)
{
	return c->tls && c->tls->version ? c->tls->version : NULL;
}

const char *
ks_conn_tls_cipher(const ks_conn *c)
{
	return c->tls ? c->tls->cipher : NULL;
}

const char *
ks_conn_tls_sni(const ks_conn *c)
{
	return c->tls ? c->tls->sni : NULL;
}

const char *
ks_conn_tls_alpn(const ks_conn *c)
{
	return c->tls ? c->tls->alpn : NULL;
}

const char *
ks_conn_tls_peer_subject(const ks_conn *c)
{
	return c->tls ? c->tls->subject : NULL;
}

int
ks_conn_tls_peer_verified(const ks_conn *c)
{
	return c->tls ? c->tls->verified : 0;
}
