/*
 * Configuration loading.  Validation runs to the end of the file even after
 * an error so that `ksockd -t` shows every problem at once; a generation is
 * only handed out when there were none.
 *
 * libconfig never opens a file here: conf_read.c reads the file and its
 * @includes (regular files only, bounded in size and depth, every integer
 * and string checked, the syntax validated) into one text, which libconfig
 * parses from memory.  Nothing a file holds can make libconfig exit the
 * process, block on a FIFO or read a device for ever.  Every setting's
 * line in that text maps back to its file and line (ks_conf_where).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"
#include "conf_int.h"
#include "conf_keys.h"
#include "conf_read.h"
#include "log.h"
#include "util.h"

#ifndef KS_PLUGIN_DIR
#define KS_PLUGIN_DIR "/usr/local/lib/ksockd"
#endif


/* A listener's limits that it does not set are the daemon's (which is
 * read first).  max_connections is not inherited: the daemon's counts
 * every listener together. */
static void
inherit_limits(const struct ks_conf *conf, struct ks_lconf *lc)
{
	if (lc->max_connections_per_source < 0)
		lc->max_connections_per_source = conf->max_connections_per_source;
	if (lc->connection_rate < 0)
		lc->connection_rate = conf->connection_rate;
	if (lc->max_datagram_rate < 0)
		lc->max_datagram_rate = conf->max_datagram_rate;
	/* unix peers have no address, udp has no connections */
	if (lc->protocol != KS_PROTO_TCP) {
		lc->max_connections_per_source = 0;
		lc->connection_rate = 0;
	}
	if (lc->protocol != KS_PROTO_UDP)
		lc->max_datagram_rate = 0;
}

static void
parse_listener(struct ks_conf_parse *p, config_setting_t *g, unsigned idx,
	       struct ks_lconf *lc, struct ks_lcheck *ck)
{
	unsigned scope;

	lc->conf = p->conf;
	lc->index = idx;
	ks_conf_where(p->conf, g, &lc->file, &lc->line);
	lc->mode = -1;
	lc->sock_uid = (uid_t)-1;
	lc->sock_gid = (gid_t)-1;
	p->ck = ck;
	snprintf(ck->ctx, sizeof(ck->ctx), "listener #%u", idx + 1);
	ks_conf_key_name(p, g, ck->ctx, lc);
	ks_conf_key_protocol(p, g, ck->ctx, lc);
	/* With a bad protocol nobody knows which keys it would take. */
	scope = ck->proto_ok ? ks_key_scope_of(lc->protocol) : 0;
	ks_keys_parse(p, ks_listener_keys, ks_nlistener_keys, g, ck->ctx,
		      scope, lc);
	if (scope == KS_SCOPE_UDP)
		ks_conf_udp_finish(p, g, ck->ctx, lc);
	/* The older spelling, inside the tls group, wins when given. */
	if (lc->tls != NULL && lc->tls->handshake_timeout > 0)
		lc->handshake_timeout = lc->tls->handshake_timeout;
	if (scope != KS_SCOPE_UDP) {
		ks_phases_build(lc);
	} else {
		lc->handshake_timeout = 0;
		lc->write_timeout = 0;
	}
	inherit_limits(p->conf, lc);
	p->ck = NULL;
}

static int
is_wildcard(const struct ks_lcheck *ck)
{
	static const unsigned char zero[16];

	return memcmp(ck->ip, zero, ck->family == AF_INET ? 4 : 16) == 0;
}

static int
same_address(const struct ks_lconf *a, const struct ks_lcheck *ca,
	     const struct ks_lconf *b, const struct ks_lcheck *cb)
{
	if (a->protocol != b->protocol)
		return 0;
	if (a->protocol == KS_PROTO_UNIX)
		return strcmp(a->address, b->address) == 0;
	/* Port 0 asks the kernel for a fresh port: never a conflict. */
	if (ca->family != cb->family || a->port == 0 || a->port != b->port)
		return 0;
	return memcmp(ca->ip, cb->ip, ca->family == AF_INET ? 4 : 16) == 0 ||
	       is_wildcard(ca) || is_wildcard(cb);
}

static void
check_duplicates(struct ks_conf_parse *p, const struct ks_conf *conf,
		 const struct ks_lcheck *ck)
{
	const struct ks_lconf *a, *b;
	size_t i, j;

	for (i = 0; i < conf->nlisteners; i++) {
		b = &conf->listeners[i];
		for (j = 0; ck[i].name_ok && j < i; j++) {
			a = &conf->listeners[j];
			if (!ck[j].name_ok || strcmp(a->name, b->name) != 0)
				continue;
			ks_conf_err(p, ck[i].name_s,
				    "duplicate listener name \"%s\" (first "
				    "defined at %s:%d)",
				    b->name, a->file, a->line);
			break;
		}
		for (j = 0; ck[i].addr_ok && j < i; j++) {
			a = &conf->listeners[j];
			if (!ck[j].addr_ok ||
			    !same_address(a, &ck[j], b, &ck[i]))
				continue;
			if (b->protocol == KS_PROTO_UNIX)
				ks_conf_err(p, ck[i].addr_s,
					    "%s: address %s already used by %s "
					    "(%s:%d)",
					    ck[i].ctx, b->address, ck[j].ctx,
					    a->file, a->line);
			else
				ks_conf_err(
					p, ck[i].addr_s,
					"%s: address %s%s%s:%d already used "
					"by %s (%s:%d)",
					ck[i].ctx,
					ck[i].family == AF_INET6 ? "[" : "",
					b->address,
					ck[i].family == AF_INET6 ? "]" : "",
					b->port, ck[j].ctx, a->file, a->line);
			break;
		}
	}
}

static void
parse_listeners(struct ks_conf_parse *p, const config_setting_t *ls)
{
	struct ks_conf *conf = p->conf;
	config_setting_t *g;
	struct ks_lcheck *ck;
	unsigned i, n;

	if (ls == NULL) {
		ks_conf_err_at(p, conf->path, 1, "no listeners defined");
		return;
	}
	if (!config_setting_is_list(ls) && !config_setting_is_array(ls)) {
		ks_conf_err(p, ls, "listeners must be a list of groups");
		return;
	}
	n = (unsigned)config_setting_length(ls);
	if (n == 0) {
		ks_conf_err(p, ls, "no listeners defined");
		return;
	}
	conf->listeners = calloc(n, sizeof(*conf->listeners));
	ck = calloc(n, sizeof(*ck));
	if (conf->listeners == NULL || ck == NULL) {
		ks_conf_err(p, ls, "out of memory");
		free(ck);
		return;
	}
	conf->nlisteners = n; /* all zeroed: unref can free any of them */
	for (i = 0; i < n; i++) {
		g = config_setting_get_elem(ls, i);
		if (!config_setting_is_group(g)) {
			ks_conf_err(p, g,
				    "listeners: entry #%u must be a group",
				    i + 1);
			continue;
		}
		parse_listener(p, g, i, &conf->listeners[i], &ck[i]);
	}
	check_duplicates(p, conf, ck);
	free(ck);
}

int
ks_conf_load(const char *path, struct ks_conf **out)
{
	struct ks_conf_parse p = {.errors = 0, .plugin_dir_ok = 1};
	struct ks_conf *conf;
	const config_setting_t *root, *s;
	const char *name;
	int i, n;

	*out = NULL;
	conf = calloc(1, sizeof(*conf));
	if (conf == NULL) {
		ks_log(KS_LOG_ERR, "%s: out of memory", path);
		return -1;
	}
	conf->refs = 1;
	config_init(&conf->cfg);
	conf->path = strdup(path);
	/* always malloc'd, so unref can free it whatever its origin */
	conf->plugin_dir = strdup(KS_PLUGIN_DIR);
	conf->log_level = KS_LOG_INFO;
	/* the other daemon keys' defaults are rows of conf_keys.c */
	ks_keys_defaults(ks_daemon_keys, ks_ndaemon_keys, 0, conf);
	if (conf->path == NULL || conf->plugin_dir == NULL) {
		ks_log(KS_LOG_ERR, "%s: out of memory", path);
		goto fail;
	}
	p.conf = conf;

	if (ks_conf_read(path, &conf->text) != 0)
		goto fail; /* every problem logged */
	if (!config_read_string(&conf->cfg, ks_conf_text_str(conf->text))) {
		/* The reader validated the syntax: only memory is left. */
		const char *file;
		int line;

		ks_conf_text_where(conf->text, config_error_line(&conf->cfg),
				   &file, &line);
		ks_log(KS_LOG_ERR, "%s:%d: %s", file, line,
		       config_error_text(&conf->cfg));
		goto fail;
	}

	root = config_root_setting(&conf->cfg);
	n = config_setting_length(root);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(root, (unsigned)i);
		name = config_setting_name(s);
		if (strcmp(name, "daemon") != 0 &&
		    strcmp(name, "listeners") != 0)
			ks_conf_err(&p, s, "unknown top-level key \"%s\"",
				    name);
	}
	s = config_setting_get_member(root, "daemon");
	if (s != NULL && !config_setting_is_group(s))
		ks_conf_err(&p, s, "daemon must be a group");
	else if (s != NULL)
		ks_keys_parse(&p, ks_daemon_keys, ks_ndaemon_keys, s,
			      "daemon", 0, conf);
	parse_listeners(&p, config_setting_get_member(root, "listeners"));
	if (p.errors > 0)
		goto fail;
	*out = conf;
	return 0;

fail:
	ks_conf_unref(conf);
	return -1;
}

int
ks_conf_load_plugins(struct ks_conf *conf)
{
	struct ks_lconf *lc;
	char err[1024];
	int failed = 0;
	size_t i;

	if (conf->plugins_loaded)
		return 0;
	for (i = 0; i < conf->nlisteners; i++) {
		lc = &conf->listeners[i];
		if (ks_loader_open(lc->handler_path, &lc->plugin, err,
				   sizeof(err)) != 0) {
			ks_log(KS_LOG_ERR, "%s:%d: listener \"%s\": %s",
			       lc->file, lc->line, lc->name, err);
			failed = 1;
			continue;
		}
		/* A udp listener needs the datagram hook, the others the
		 * stream hook. */
		if (lc->protocol == KS_PROTO_UDP
			    ? lc->plugin.handle_dgram == NULL
			    : lc->plugin.desc->handle == NULL) {
			ks_log(KS_LOG_ERR,
			       "%s:%d: listener \"%s\": plugin %s has no %s hook "
			       "(needed for a %s listener)",
			       lc->file, lc->line, lc->name,
			       lc->plugin.desc->name ? lc->plugin.desc->name
						     : lc->handler,
			       lc->protocol == KS_PROTO_UDP ? "handle_dgram"
							    : "handle",
			       lc->protocol == KS_PROTO_UDP ? "udp" : "stream");
			failed = 1;
			continue;
		}
		if (ks_loader_init(&lc->plugin, (const ks_options *)lc->options,
				   err, sizeof(err)) != 0) {
			const char *file = lc->file;
			int line = lc->line;

			if (lc->options != NULL)
				ks_conf_where(conf, lc->options, &file, &line);
			ks_log(KS_LOG_ERR, "%s:%d: listener \"%s\": %s", file,
			       line, lc->name, err);
			failed = 1;
		}
	}
	if (failed) {
		for (i = 0; i < conf->nlisteners; i++)
			ks_loader_close(&conf->listeners[i].plugin);
		return -1;
	}
	conf->plugins_loaded = true;
	return 0;
}

void
ks_conf_ref(struct ks_conf *conf)
{
	conf->refs++;
}

void
ks_conf_unref(struct ks_conf *conf)
{
	struct ks_lconf *lc;
	size_t i;

	if (conf == NULL || --conf->refs > 0)
		return;
	for (i = 0; i < conf->nlisteners; i++) {
		lc = &conf->listeners[i];
		ks_loader_close(&lc->plugin);
		free(lc->handler_path);
		free(lc->mcast);
		ks_conf_acl_free(lc);
		ks_conf_tls_free(lc);
	}
	free(conf->listeners);
	ks_tls_client_cache_free(conf->tls_clients);
	for (i = 0; i < conf->nowned; i++)
		free(conf->owned[i]);
	free(conf->owned);
	config_destroy(&conf->cfg);
	ks_conf_text_free(conf->text);
	free(conf->path);
	free((void *)conf->plugin_dir);
	free(conf);
}
