/*
 * Connection phases: see phase.h.
 */
#include "config.h"

#include <stddef.h>

#include "conf.h"
#include "conn.h"
#include "log.h"
#include "phase.h"
#include "tls.h"
#include "worker.h"

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

	if (rc != 0) {
		c->wk->stats->handler_errors++;
		ks_conn_log(c, KS_LOG_DEBUG, "handler returned %d", rc);
	}
	return 0;
}

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
		c->phase = *ph;
		if ((*ph)->handshake)
			ks_conn_handshake_begin(c);
		else
			ks_conn_handshake_end(c);
		if ((*ph)->run(c) != 0)
			break;
	}
	c->phase = NULL;
}
