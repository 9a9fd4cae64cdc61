/*
 * The tables of configuration keys (see conf_keys.h) and the one parser
 * that reads a group with them.  To add a key: a field in struct ks_lconf
 * or ks_conf, a row here, a line in conf/ksockd.conf and ksockd.conf(5).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ksockd/plugin.h>

#include "conf.h"
#include "conf_int.h"
#include "conf_keys.h"
#include "loader.h"
#include "log.h"
#include "util.h"

#define LKEY(n, t, sc, w, field) \
	.name = (n), .type = (t), .scope = (sc), .when = (w), \
	.off = offsetof(struct ks_lconf, field)
#define DKEY(n, t, field) \
	.name = (n), .type = (t), .scope = KS_SCOPE_ANY, .when = KS_AT_CONN, \
	.off = offsetof(struct ks_conf, field)
#define BOOLV(d) .def = (d), .def_udp = (d)
#define INTV(lo, hi, d) .min = (lo), .max = (hi), .def = (d), .def_udp = (d)

/* clang-format off */
const struct ks_key ks_listener_keys[] = {
	{ LKEY("name", KS_KEY_CUSTOM, KS_SCOPE_ANY, KS_AT_BIND, name),
	  .parse = ks_conf_key_name, .flags = KS_KEYF_EARLY },
	{ LKEY("protocol", KS_KEY_CUSTOM, KS_SCOPE_ANY, KS_AT_BIND, protocol),
	  .parse = ks_conf_key_protocol, .flags = KS_KEYF_EARLY },
	{ LKEY("address", KS_KEY_CUSTOM, KS_SCOPE_ANY, KS_AT_BIND, address),
	  .parse = ks_conf_key_address },
	{ LKEY("port", KS_KEY_CUSTOM, KS_SCOPE_INET, KS_AT_BIND, port),
	  .parse = ks_conf_key_port,
	  .misplaced = "port is not allowed for unix sockets" },
	{ LKEY("handler", KS_KEY_CUSTOM, KS_SCOPE_ANY, KS_AT_CONN, handler),
	  .parse = ks_conf_key_handler },
	{ LKEY("backlog", KS_KEY_INT, KS_SCOPE_STREAM, KS_AT_LISTEN, backlog),
	  INTV(1, 65535, 511) },
	/* SO_REUSEADDR on a UDP socket lets any other socket that sets it
	 * bind the same address and port and take datagrams away: off unless
	 * asked for there (there is no TIME_WAIT to work around). */
	{ LKEY("reuse_address", KS_KEY_BOOL, KS_SCOPE_ANY, KS_AT_BIND,
	       reuse_address), .def = 1, .def_udp = 0 },
	{ LKEY("reuse_port", KS_KEY_BOOL, KS_SCOPE_ANY, KS_AT_BIND, reuse_port),
	  BOOLV(0) },
	{ LKEY("no_delay", KS_KEY_BOOL, KS_SCOPE_STREAM, KS_AT_CONN, no_delay),
	  BOOLV(1) },
	{ LKEY("keep_alive", KS_KEY_BOOL, KS_SCOPE_STREAM, KS_AT_ACCEPT,
	       keep_alive), BOOLV(0) },
	{ LKEY("type_of_service", KS_KEY_INT, KS_SCOPE_ANY, KS_AT_ACCEPT,
	       type_of_service), INTV(0, 255, 0) },
	{ LKEY("linger", KS_KEY_INT, KS_SCOPE_STREAM, KS_AT_ACCEPT, linger),
	  INTV(-1, 65535, -1) },
	{ LKEY("send_buffer", KS_KEY_INT, KS_SCOPE_ANY, KS_AT_ACCEPT,
	       send_buffer), INTV(0, INT_MAX, 0) },
	{ LKEY("receive_buffer", KS_KEY_INT, KS_SCOPE_ANY, KS_AT_ACCEPT,
	       receive_buffer), INTV(0, INT_MAX, 0) },
	{ LKEY("max_line_length", KS_KEY_SIZE, KS_SCOPE_STREAM, KS_AT_CONN,
	       max_line_length), INTV(1, 16777216, 8192) },
	{ LKEY("idle_timeout", KS_KEY_SECONDS, KS_SCOPE_STREAM, KS_AT_CONN,
	       idle_timeout), .def_seconds = 300 },
	{ LKEY("handshake_timeout", KS_KEY_SECONDS, KS_SCOPE_STREAM, KS_AT_CONN,
	       handshake_timeout), .min = 1, .def_seconds = 10 },
	{ LKEY("write_timeout", KS_KEY_SECONDS, KS_SCOPE_STREAM, KS_AT_CONN,
	       write_timeout), .def_seconds = 60 },
	{ LKEY("session_timeout", KS_KEY_SECONDS, KS_SCOPE_STREAM, KS_AT_CONN,
	       session_timeout), .def_seconds = 0 },
	{ LKEY("proxy_protocol", KS_KEY_BOOL, KS_SCOPE_TCP, KS_AT_CONN,
	       proxy_protocol), BOOLV(0) },
	{ LKEY("proxy_protocol_from", KS_KEY_CUSTOM, KS_SCOPE_TCP, KS_AT_CONN,
	       proxy_from), .parse = ks_conf_key_proxy_from },
	{ LKEY("allow", KS_KEY_CUSTOM, KS_SCOPE_INET, KS_AT_CONN, acl),
	  .parse = ks_conf_key_allow,
	  .misplaced = "allow does not apply to unix listeners: use the "
		       "socket file's mode, user and group" },
	{ LKEY("deny", KS_KEY_CUSTOM, KS_SCOPE_INET, KS_AT_CONN, acl),
	  .parse = ks_conf_key_deny,
	  .misplaced = "deny does not apply to unix listeners: use the "
		       "socket file's mode, user and group" },
	{ LKEY("max_connections", KS_KEY_INT, KS_SCOPE_STREAM, KS_AT_CONN,
	       max_connections), INTV(0, INT_MAX, 0) },
	/* read after max_connections, which it needs */
	{ LKEY("fd_reserve", KS_KEY_CUSTOM, KS_SCOPE_STREAM, KS_AT_CONN,
	       fd_reserve), .parse = ks_conf_key_fd_reserve },
	/* -1 (not a value one can write): the daemon's */
	{ LKEY("max_connections_per_source", KS_KEY_INT, KS_SCOPE_TCP,
	       KS_AT_CONN, max_connections_per_source), INTV(0, INT_MAX, -1) },
	{ LKEY("connection_rate", KS_KEY_INT, KS_SCOPE_TCP, KS_AT_CONN,
	       connection_rate), INTV(0, 1000000, -1) },
	{ LKEY("max_datagram_rate", KS_KEY_INT, KS_SCOPE_UDP, KS_AT_CONN,
	       max_datagram_rate), INTV(0, 1000000, -1) },
	{ LKEY("options", KS_KEY_CUSTOM, KS_SCOPE_ANY, KS_AT_CONN, options),
	  .parse = ks_conf_key_options },
	{ LKEY("tls", KS_KEY_CUSTOM, KS_SCOPE_STREAM, KS_AT_CONN, tls),
	  .parse = ks_conf_key_tls,
	  .misplaced = "tls on a udp listener would need DTLS, which ksockd "
		       "does not support yet" },
	{ LKEY("mode", KS_KEY_CUSTOM, KS_SCOPE_UNIX, KS_AT_ACCEPT, mode),
	  .parse = ks_conf_key_mode },
	{ LKEY("user", KS_KEY_CUSTOM, KS_SCOPE_UNIX, KS_AT_ACCEPT, sock_uid),
	  .parse = ks_conf_key_sock_user },
	{ LKEY("group", KS_KEY_CUSTOM, KS_SCOPE_UNIX, KS_AT_ACCEPT, sock_gid),
	  .parse = ks_conf_key_sock_group },
	{ LKEY("broadcast", KS_KEY_BOOL, KS_SCOPE_UDP, KS_AT_ACCEPT, broadcast),
	  BOOLV(0) },
	{ LKEY("multicast_groups", KS_KEY_CUSTOM, KS_SCOPE_UDP, KS_AT_ACCEPT,
	       mcast), .parse = ks_conf_key_mcast_groups },
	{ LKEY("multicast_interface", KS_KEY_CUSTOM, KS_SCOPE_UDP, KS_AT_ACCEPT,
	       mcast_if), .parse = ks_conf_key_mcast_if },
	{ LKEY("max_datagram_size", KS_KEY_SIZE, KS_SCOPE_UDP, KS_AT_CONN,
	       max_datagram), INTV(1, KS_DGRAM_MAX, KS_DGRAM_MAX) },
};
const size_t ks_nlistener_keys = KS_ARRAY_SIZE(ks_listener_keys);

const struct ks_key ks_daemon_keys[] = {
	{ DKEY("plugin_dir", KS_KEY_CUSTOM, plugin_dir),
	  .parse = ks_conf_key_plugin_dir },
	{ DKEY("log_level", KS_KEY_CUSTOM, log_level),
	  .parse = ks_conf_key_log_level },
	{ DKEY("shutdown_timeout", KS_KEY_SECONDS, shutdown_timeout),
	  .def_seconds = 30 },
	{ DKEY("coroutine_stack", KS_KEY_SIZE, coroutine_stack),
	  INTV(16384, 67108864, 65536) },
	{ DKEY("workers", KS_KEY_INT, workers), INTV(0, KS_MAX_WORKERS, 0) },
	{ DKEY("max_connections", KS_KEY_INT, max_connections),
	  INTV(0, INT_MAX, 0) },
	/* -1: derived from the workers' descriptor limit (admit.c) */
	{ DKEY("max_connections_per_source", KS_KEY_INT,
	       max_connections_per_source), INTV(0, INT_MAX, -1) },
	{ DKEY("connection_rate", KS_KEY_INT, connection_rate),
	  INTV(0, 1000000, 0) },
	{ DKEY("max_datagram_rate", KS_KEY_INT, max_datagram_rate),
	  INTV(0, 1000000, 0) },
	{ DKEY("max_buffer_memory", KS_KEY_SIZE, max_buffer_memory),
	  INTV(0, 1LL << 40, 256LL << 20) },
	{ DKEY("access_log", KS_KEY_CUSTOM, access_log),
	  .parse = ks_conf_key_access_log },
	{ DKEY("access_log_format", KS_KEY_CUSTOM, access_log_json),
	  .parse = ks_conf_key_access_log_format },
	{ DKEY("user", KS_KEY_CUSTOM, user), .parse = ks_conf_key_user },
	{ DKEY("group", KS_KEY_CUSTOM, group), .parse = ks_conf_key_group },
};
const size_t ks_ndaemon_keys = KS_ARRAY_SIZE(ks_daemon_keys);
/* clang-format on */

unsigned
ks_key_scope_of(int protocol)
{
	switch (protocol) {
	case KS_PROTO_UNIX:
		return KS_SCOPE_UNIX;
	case KS_PROTO_UDP:
		return KS_SCOPE_UDP;
	default:
		return KS_SCOPE_TCP;
	}
}

#define FIELD(obj, k, type) ((type *)(void *)((char *)(obj) + (k)->off))
#define CFIELD(obj, k, type) \
	((const type *)(const void *)((const char *)(obj) + (k)->off))

void
ks_keys_defaults(const struct ks_key *keys, size_t nkeys, unsigned scope,
		 void *obj)
{
	const struct ks_key *k;
	long long v;

	for (k = keys; k < keys + nkeys; k++) {
		v = scope == KS_SCOPE_UDP ? k->def_udp : k->def;
		switch (k->type) {
		case KS_KEY_BOOL:
			*FIELD(obj, k, bool) = v != 0;
			break;
		case KS_KEY_INT:
			*FIELD(obj, k, int) = (int)v;
			break;
		case KS_KEY_SIZE:
			*FIELD(obj, k, size_t) = (size_t)v;
			break;
		case KS_KEY_SECONDS:
			*FIELD(obj, k, double) = k->def_seconds;
			break;
		case KS_KEY_CUSTOM:
			break; /* the parse hook sets its own default */
		}
	}
}

static const struct ks_key *
find_key(const struct ks_key *keys, size_t nkeys, const char *name)
{
	const struct ks_key *k;

	for (k = keys; k < keys + nkeys; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

static void
check_names(struct ks_conf_parse *p, const struct ks_key *keys, size_t nkeys,
	    const config_setting_t *g, const char *ctx)
{
	const config_setting_t *s;
	int i, n = config_setting_length(g);

	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(g, (unsigned)i);
		if (find_key(keys, nkeys, config_setting_name(s)) == NULL)
			ks_conf_err(p, s, "unknown key \"%s\" in %s",
				    config_setting_name(s), ctx);
	}
}

/* A key that this kind of listener does not take; 1 after the error. */
static int
misplaced(struct ks_conf_parse *p, const struct ks_key *k,
	  const config_setting_t *s, const char *ctx, unsigned scope)
{
	if (scope == 0 || (k->scope & scope) != 0)
		return 0;
	if (k->misplaced != NULL)
		ks_conf_err(p, s, "%s: %s", ctx, k->misplaced);
	else if (k->scope == KS_SCOPE_UDP)
		ks_conf_err(p, s, "%s: %s applies to udp listeners only", ctx,
			    k->name);
	else if (k->scope == KS_SCOPE_UNIX)
		ks_conf_err(p, s, "%s: %s applies to unix listeners only", ctx,
			    k->name);
	else
		ks_conf_err(p, s, "%s: %s does not apply to %s listeners", ctx,
			    k->name,
			    scope == KS_SCOPE_UDP    ? "udp"
			    : scope == KS_SCOPE_UNIX ? "unix"
						     : "tcp");
	return 1;
}

static void
parse_row(struct ks_conf_parse *p, const struct ks_key *k,
	  const config_setting_t *g, const char *ctx, void *obj)
{
	long long v;
	double d;

	switch (k->type) {
	case KS_KEY_BOOL:
		ks_conf_get_bool(p, g, ctx, k->name, FIELD(obj, k, bool));
		break;
	case KS_KEY_INT:
		if (ks_conf_get_int(p, g, ctx, k->name, k->min, k->max, &v) > 0)
			*FIELD(obj, k, int) = (int)v;
		break;
	case KS_KEY_SIZE:
		if (ks_conf_get_int(p, g, ctx, k->name, k->min, k->max, &v) > 0)
			*FIELD(obj, k, size_t) = (size_t)v;
		break;
	case KS_KEY_SECONDS:
		if (ks_conf_get_seconds(p, g, ctx, k->name, k->min > 0, &d) > 0)
			*FIELD(obj, k, double) = d;
		break;
	case KS_KEY_CUSTOM:
		k->parse(p, g, ctx, obj);
		break;
	}
}

void
ks_keys_parse(struct ks_conf_parse *p, const struct ks_key *keys,
	      size_t nkeys, const config_setting_t *g, const char *ctx,
	      unsigned scope, void *obj)
{
	const struct ks_key *k;
	const config_setting_t *s;

	ks_keys_defaults(keys, nkeys, scope, obj);
	check_names(p, keys, nkeys, g, ctx);
	for (k = keys; k < keys + nkeys; k++) {
		if (k->flags & KS_KEYF_EARLY)
			continue;
		s = config_setting_get_member(g, k->name);
		if (s != NULL ? misplaced(p, k, s, ctx, scope)
			      : scope != 0 && (k->scope & scope) == 0)
			continue;
		parse_row(p, k, g, ctx, obj);
	}
}

bool
ks_key_same(const struct ks_key *k, const void *a, const void *b)
{
	switch (k->type) {
	case KS_KEY_BOOL:
		return *CFIELD(a, k, bool) == *CFIELD(b, k, bool);
	case KS_KEY_INT:
		return *CFIELD(a, k, int) == *CFIELD(b, k, int);
	case KS_KEY_SIZE:
		return *CFIELD(a, k, size_t) == *CFIELD(b, k, size_t);
	case KS_KEY_SECONDS:
		return *CFIELD(a, k, double) == *CFIELD(b, k, double);
	default:
		return false;
	}
}

void
ks_key_format(const struct ks_key *k, const void *obj, char *buf, size_t len)
{
	switch (k->type) {
	case KS_KEY_BOOL:
		snprintf(buf, len, "%s", *CFIELD(obj, k, bool) ? "true" : "false");
		break;
	case KS_KEY_INT:
		snprintf(buf, len, "%d", *CFIELD(obj, k, int));
		break;
	case KS_KEY_SIZE:
		snprintf(buf, len, "%zu", *CFIELD(obj, k, size_t));
		break;
	case KS_KEY_SECONDS:
		snprintf(buf, len, "%g", *CFIELD(obj, k, double));
		break;
	default:
		snprintf(buf, len, "(see the file)");
	}
}

/* ---- the hooks of the custom rows: identity of a listener ---------------- */

void
ks_conf_key_name(struct ks_conf_parse *p, const config_setting_t *g,
		 const char *ctx, void *obj)
{
	struct ks_lconf *lc = obj;
	struct ks_lcheck *ck = p->ck;

	/* Every later message is about 'listener "NAME"'. */
	(void)ctx;
	ck->name_s = config_setting_get_member(g, "name");
	if (ks_conf_get_string(p, g, ck->ctx, "name", &lc->name) > 0) {
		ck->name_ok = 1;
		snprintf(ck->ctx, sizeof(ck->ctx), "listener \"%s\"", lc->name);
	} else if (ck->name_s == NULL) {
		ks_conf_err(p, g, "%s: name is required", ck->ctx);
	}
}

void
ks_conf_key_protocol(struct ks_conf_parse *p, const config_setting_t *g,
		     const char *ctx, void *obj)
{
	static const char *const names[] = {"tcp", "unix", "udp"};
	struct ks_lconf *lc = obj;
	const char *proto = "tcp";
	size_t i;

	lc->protocol = KS_PROTO_TCP;
	p->ck->proto_ok = 0;
	if (ks_conf_get_string(p, g, ctx, "protocol", &proto) < 0)
		return;
	for (i = 0; i < KS_ARRAY_SIZE(names); i++)
		if (strcmp(proto, names[i]) == 0)
			break;
	if (i == KS_ARRAY_SIZE(names)) {
		ks_conf_err(p, config_setting_get_member(g, "protocol"),
			    "%s: unknown protocol \"%s\" (expected tcp, udp "
			    "or unix)", ctx, proto);
		return;
	}
	/* enum ks_proto follows the order of names[] */
	lc->protocol = (enum ks_proto)i;
	p->ck->proto_ok = 1;
}

void
ks_conf_key_address(struct ks_conf_parse *p, const config_setting_t *g,
		    const char *ctx, void *obj)
{
	struct ks_lconf *lc = obj;
	struct ks_lcheck *ck = p->ck;
	struct sockaddr_un sun;
	int r;

	ck->addr_s = config_setting_get_member(g, "address");
	r = ks_conf_get_string(p, g, ctx, "address", &lc->address);
	if (r == 0)
		ks_conf_err(p, g, "%s: address is required", ctx);
	if (r <= 0 || !ck->proto_ok)
		return;
	if (lc->protocol == KS_PROTO_UNIX) {
		if (strlen(lc->address) >= sizeof(sun.sun_path)) {
			ks_conf_err(p, ck->addr_s,
				    "%s: unix socket path too long (%zu bytes, "
				    "at most %zu)", ctx, strlen(lc->address),
				    sizeof(sun.sun_path) - 1);
			return;
		}
		ck->addr_ok = 1;
		return;
	}
	if (inet_pton(AF_INET, lc->address, ck->ip) == 1) {
		ck->family = AF_INET;
	} else if (inet_pton(AF_INET6, lc->address, ck->ip) == 1) {
		ck->family = AF_INET6;
	} else {
		ks_conf_err(p, ck->addr_s,
			    "%s: address \"%s\" is not an IPv4 or IPv6 literal",
			    ctx, lc->address);
		return;
	}
	ck->addr_ok = 1; /* valid once the port is too */
}

void
ks_conf_key_port(struct ks_conf_parse *p, const config_setting_t *g,
		 const char *ctx, void *obj)
{
	struct ks_lconf *lc = obj;
	struct ks_lcheck *ck = p->ck;
	long long v;
	int r;

	r = ks_conf_get_int(p, g, ctx, "port", 0, 65535, &v);
	if (!ck->proto_ok)
		return;
	if (r == 0)
		ks_conf_err(p, g, "%s: port is required for %s", ctx,
			    lc->protocol == KS_PROTO_UDP ? "udp" : "tcp");
	if (r > 0)
		lc->port = (int)v;
	else
		ck->addr_ok = 0;
}

void
ks_conf_key_handler(struct ks_conf_parse *p, const config_setting_t *g,
		    const char *ctx, void *obj)
{
	const config_setting_t *s = config_setting_get_member(g, "handler");
	struct ks_lconf *lc = obj;
	int r;

	r = ks_conf_get_string(p, g, ctx, "handler", &lc->handler);
	if (r == 0)
		ks_conf_err(p, g, "%s: handler is required", ctx);
	if (r <= 0 || !p->plugin_dir_ok)
		return;
	lc->handler_path = ks_loader_resolve(p->conf->plugin_dir, lc->handler);
	if (lc->handler_path == NULL) {
		ks_conf_err(p, s, "%s: handler: out of memory", ctx);
		return;
	}
	ks_conf_check_file(p, s, ctx, "handler file", lc->handler_path);
}

void
ks_conf_key_options(struct ks_conf_parse *p, const config_setting_t *g,
		    const char *ctx, void *obj)
{
	const config_setting_t *s = config_setting_get_member(g, "options");
	struct ks_lconf *lc = obj;

	if (s != NULL && !config_setting_is_group(s))
		ks_conf_err(p, s, "%s: options must be a group", ctx);
	else
		lc->options = (config_setting_t *)s;
}

/* ---- unix socket files ---------------------------------------------------- */

/* An octal string ("0660"): libconfig has no octal integers, so 0660 as a
 * number would silently mean 660. */
void
ks_conf_key_mode(struct ks_conf_parse *p, const config_setting_t *g,
		 const char *ctx, void *obj)
{
	const config_setting_t *s = config_setting_get_member(g, "mode");
	struct ks_lconf *lc = obj;
	const char *v, *c;
	long m;

	if (s == NULL)
		return;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		ks_conf_err(p, s, "%s: mode must be a string of octal digits, "
			    "such as \"0660\"", ctx);
		return;
	}
	v = config_setting_get_string(s);
	for (c = v; *c >= '0' && *c <= '7'; c++)
		;
	m = strtol(v, NULL, 8);
	if (*v == '\0' || *c != '\0' || c - v > 4 || m > 0777) {
		ks_conf_err(p, s, "%s: mode \"%s\" is not an octal file mode "
			    "from \"0000\" to \"0777\"", ctx, v);
		return;
	}
	lc->mode = (int)m;
}

void
ks_conf_key_sock_user(struct ks_conf_parse *p, const config_setting_t *g,
		      const char *ctx, void *obj)
{
	struct ks_lconf *lc = obj;
	const char *name;

	if (ks_conf_get_string(p, g, ctx, "user", &name) > 0)
		(void)ks_conf_lookup_user(p, config_setting_get_member(g, "user"),
					  ctx, name, &lc->sock_uid, NULL);
}

void
ks_conf_key_sock_group(struct ks_conf_parse *p, const config_setting_t *g,
		       const char *ctx, void *obj)
{
	struct ks_lconf *lc = obj;
	const char *name;

	if (ks_conf_get_string(p, g, ctx, "group", &name) > 0)
		(void)ks_conf_lookup_group(p,
					   config_setting_get_member(g, "group"),
					   ctx, name, &lc->sock_gid);
}

/* ---- the daemon group ------------------------------------------------------- */

void
ks_conf_key_plugin_dir(struct ks_conf_parse *p, const config_setting_t *g,
		       const char *ctx, void *obj)
{
	struct ks_conf *conf = obj;
	const char *str;
	char *dir;
	int r;

	r = ks_conf_get_string(p, g, ctx, "plugin_dir", &str);
	if (r > 0) {
		if ((dir = ks_conf_path_from(conf->path, str)) == NULL) {
			ks_conf_err(p, config_setting_get_member(g, "plugin_dir"),
				    "%s: plugin_dir %s: %s", ctx, str,
				    strerror(errno));
			r = -1;
		} else {
			free((void *)conf->plugin_dir);
			conf->plugin_dir = dir;
		}
	}
	if (r < 0)
		p->plugin_dir_ok = 0;
}

void
ks_conf_key_log_level(struct ks_conf_parse *p, const config_setting_t *g,
		      const char *ctx, void *obj)
{
	struct ks_conf *conf = obj;
	const char *str;
	int r;

	if (ks_conf_get_string(p, g, ctx, "log_level", &str) <= 0)
		return;
	if ((r = ks_log_level_parse(str)) < 0)
		ks_conf_err(p, config_setting_get_member(g, "log_level"),
			    "%s: unknown log_level \"%s\" (expected error, "
			    "warn, info or debug)", ctx, str);
	else
		conf->log_level = r;
}

/* A listener the operator needs most when descriptors run short (the
 * metrics, an admin console) may take from the reserve, but only as many
 * as its own max_connections: the reserve stays a reserve. */
void
ks_conf_key_fd_reserve(struct ks_conf_parse *p, const config_setting_t *g,
		       const char *ctx, void *obj)
{
	struct ks_lconf *lc = obj;

	if (ks_conf_get_bool(p, g, ctx, "fd_reserve", &lc->fd_reserve) > 0 &&
	    lc->fd_reserve && lc->max_connections <= 0) {
		ks_conf_err(p, config_setting_get_member(g, "fd_reserve"),
			    "%s: fd_reserve needs max_connections: it bounds "
			    "what the listener takes from the descriptor "
			    "reserve", ctx);
		lc->fd_reserve = false;
	}
}

/* The master opens (and creates) the file when it starts a generation:
 * here only its directory must exist. */
void
ks_conf_key_access_log(struct ks_conf_parse *p, const config_setting_t *g,
		       const char *ctx, void *obj)
{
	const config_setting_t *s = config_setting_get_member(g, "access_log");
	struct ks_conf *conf = obj;
	const char *str, *abs;
	struct stat st;
	char *dir, *slash;

	if (ks_conf_get_string(p, g, ctx, "access_log", &str) <= 0)
		return;
	if ((abs = ks_conf_abspath(p, s, str)) == NULL ||
	    (dir = strdup(abs)) == NULL)
		return;
	slash = strrchr(dir, '/');
	slash[slash == dir ? 1 : 0] = '\0';
	if (stat(dir, &st) != 0)
		ks_conf_err(p, s, "%s: access_log %s: directory %s: %s", ctx,
			    abs, dir, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		ks_conf_err(p, s, "%s: access_log %s: %s is not a directory",
			    ctx, abs, dir);
	else if (stat(abs, &st) == 0 && !S_ISREG(st.st_mode) &&
		 !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
		ks_conf_err(p, s, "%s: access_log %s: not a file", ctx, abs);
	else
		conf->access_log = abs;
	free(dir);
}

void
ks_conf_key_access_log_format(struct ks_conf_parse *p,
			      const config_setting_t *g, const char *ctx,
			      void *obj)
{
	struct ks_conf *conf = obj;
	const char *str;

	if (ks_conf_get_string(p, g, ctx, "access_log_format", &str) <= 0)
		return;
	if (strcmp(str, "json") == 0)
		conf->access_log_json = true;
	else if (strcmp(str, "text") != 0)
		ks_conf_err(p, config_setting_get_member(g, "access_log_format"),
			    "%s: unknown access_log_format \"%s\" (expected "
			    "text or json)", ctx, str);
}

/* Switching to another user takes root; running as that user already is
 * fine (the systemd unit starts ksockd as its user). */
static void
check_switch(struct ks_conf_parse *p, const config_setting_t *s,
	     const char *ctx, const char *what, bool same)
{
	if (geteuid() != 0 && !same)
		ks_conf_err(p, s, "%s: %s: switching to it needs root, and "
			    "ksockd runs as uid %u", ctx, what,
			    (unsigned)geteuid());
}

void
ks_conf_key_user(struct ks_conf_parse *p, const config_setting_t *g,
		 const char *ctx, void *obj)
{
	const config_setting_t *s = config_setting_get_member(g, "user");
	struct ks_conf *conf = obj;

	if (ks_conf_get_string(p, g, ctx, "user", &conf->user) <= 0)
		return;
	if (ks_conf_lookup_user(p, s, ctx, conf->user, &conf->uid,
				&conf->gid) != 0)
		return;
	check_switch(p, s, ctx, "user", conf->uid == geteuid());
}

/* Read after user, whose primary group it replaces. */
void
ks_conf_key_group(struct ks_conf_parse *p, const config_setting_t *g,
		  const char *ctx, void *obj)
{
	const config_setting_t *s = config_setting_get_member(g, "group");
	struct ks_conf *conf = obj;

	if (ks_conf_get_string(p, g, ctx, "group", &conf->group) <= 0)
		return;
	if (ks_conf_lookup_group(p, s, ctx, conf->group, &conf->gid) != 0)
		return;
	check_switch(p, s, ctx, "group", conf->gid == getegid());
}
