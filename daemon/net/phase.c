/*
 * Connection phases: see phase.h.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "admit.h"
#include "conf.h"
#include "conn.h"
#include "log.h"
#include "phase.h"
#include "proxy.h"
#include "tls.h"
#include "worker.h"

/* ---- proxy: the PROXY protocol header --------------------------------- */

static struct ks_lograte proxy_log = KS_LOGRATE_INIT("bad PROXY headers");

static int
proxy_fail(struct ks_conn *c, const char *fmt, const char *why)
{
	KS_CCOUNT(c, proxy_errors);
	c->close_reason = KS_CLOSE_ERROR;
	if (ks_lograte_allow(&proxy_log, KS_LOG_INFO,
			     &c->wk->stats->log_suppressed))
		ks_conn_log(c, KS_LOG_INFO, fmt, why);
	ks_conn_reset(c);
	return -1;
}

/* The addresses the header carries become the connection's. */
static void
proxy_adopt(struct ks_conn *c, const struct ks_proxy_hdr *h)
{
	memcpy(&c->peer, &h->src, h->src_len);
	c->peer_len = h->src_len;
	ks_addr_format((struct sockaddr *)&c->peer, c->peer_len, c->peer_str,
		       sizeof(c->peer_str));
	memcpy(&c->local, &h->dst, h->dst_len);
	c->local_len = h->dst_len;
	ks_addr_format((struct sockaddr *)&c->local, c->local_len,
		       c->local_str, sizeof(c->local_str));
	c->local_known = true;
}

/*
 * Reads the header through the stream's input buffer (so that what
 * follows it, a TLS ClientHello say, stays there for the next phase), at
 * most KS_PROXY_V2_MAX bytes, within the handshake deadline.  Then the
 * admission checks run again on the address it carries: the access list
 * and the per-source limits are about the client, not the proxy.
 */
static int
proxy_run(struct ks_conn *c)
{
	struct ks_stream *st = &c->st;
	struct ks_proxy_hdr h;
	const char *why = NULL;
	char was[KS_ADDRSTRLEN];
	int rc;

	for (;;) {
		/* (an empty buffer may have no memory at all) */
		rc = st->in.buf.len == 0
			     ? 0
			     : ks_proxy_parse(ks_buf_head(&st->in.buf),
					      st->in.buf.len, &h, &why);
		if (rc > 0)
			break;
		if (rc < 0)
			return proxy_fail(c, "PROXY header refused: %s", why);
		rc = ks_stream_wait_input(st);
		if (rc == KS_OK)
			continue;
		if (rc == KS_ETIMEDOUT)
			return proxy_fail(c, "PROXY header %s", "timed out");
		if (rc == KS_EOF)
			return proxy_fail(c, "PROXY header: %s",
					  "closed before it was complete");
		return -1; /* closed, cancelled, a socket error */
	}
	ks_buf_consume(&st->in.buf, h.len);
	st->in.scanned = 0;
	if (!h.has_addr) {
		ks_conn_log(c, KS_LOG_DEBUG, "PROXY v%d header without an "
			    "address (LOCAL or UNKNOWN)", h.version);
	} else {
		snprintf(was, sizeof(was), "%s", c->peer_str);
		proxy_adopt(c, &h);
		ks_conn_log(c, KS_LOG_DEBUG, "PROXY v%d header: client %s via %s",
			    h.version, c->peer_str, was);
	}
	if (ks_admit_check(c->wk, c->lc, &c->admit,
			   (struct sockaddr *)&c->peer) != 0) {
		c->close_reason = KS_CLOSE_LIMIT;
		ks_conn_reset(c);
		return -1;
	}
	return 0;
}

/* ---- tls and the handler -------------------------------------------------- */

static int
tls_run(struct ks_conn *c)
{
	return ks_tls_accept(c->lc->tls_ctx, &c->st) == 0 ? 0 : -1;
}

static int
handler_run(struct ks_conn *c)
{
	const struct ks_plugin_inst *pi = &c->lc->plugin;
	int rc = pi->desc->handle(c, &c->st.in, &c->st.out, pi->state);

	KS_CCOUNT(c, handler_returns);
	if (rc != 0) {
		KS_CCOUNT(c, handler_errors);
		ks_conn_log(c, KS_LOG_DEBUG, "handler returned %d", rc);
	}
	return 0;
}

static const struct ks_phase phase_proxy = {
	.name = "proxy", .handshake = true, .run = proxy_run,
};
static const struct ks_phase phase_tls = {
	.name = "tls", .handshake = true, .run = tls_run,
};
static const struct ks_phase phase_handler = {
	.name = "handler", .run = handler_run,
};

void
ks_phases_build(struct ks_lconf *lc)
{
	size_t n = 0;

	if (lc->proxy_protocol)
		lc->phases[n++] = &phase_proxy;
	if (lc->tls_ctx != NULL)
		lc->phases[n++] = &phase_tls;
	lc->phases[n++] = &phase_handler;
	lc->phases[n] = NULL;
}

void
ks_phases_run(struct ks_conn *c)
{
	const struct ks_phase *const *ph;

	for (ph = c->lc->phases; *ph != NULL; ph++) {
		if ((*ph)->handshake)
			ks_conn_handshake_begin(c);
		else
			ks_conn_handshake_end(c);
		if ((*ph)->run(c) != 0) {
			if (c->close_reason == KS_CLOSE_EOF)
				c->close_reason = KS_CLOSE_ERROR;
			break;
		}
	}
}
