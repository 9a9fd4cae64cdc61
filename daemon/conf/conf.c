/*
 * Configuration loading.  Validation runs to the end of the file even after
 * an error so that `ksockd -t` shows every problem at once; a generation is
 * only handed out when there were none.
 *
 * Includes (@include) are resolved the libconfig way, relative to the
 * current directory: libconfig 1.5 prefixes its include_dir even to absolute
 * include paths, so setting it to the file's directory would break those.
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
#include "log.h"
#include "util.h"

#ifndef KS_PLUGIN_DIR
#define KS_PLUGIN_DIR "/usr/local/lib/ksockd"
#endif

/* What the duplicate checks need beyond struct ks_lconf. */
struct lcheck {
	char ctx[CTX_MAX]; /* 'listener "NAME"' or 'listener #N' */
	const config_setting_t *name_s;
	const config_setting_t *addr_s;
	int name_ok;
	int addr_ok; /* protocol, address and port all valid */
	int family;
	unsigned char ip[16];
};

static void
conf_verr(struct ks_conf_parse *p, const char *file, int line, const char *fmt,
	  va_list ap)
{
	char msg[1536];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	ks_log(KS_LOG_ERR, "%s:%d: %s", file != NULL ? file : p->conf->path,
	       line, msg);
	p->errors++;
}

void
ks_conf_err_at(struct ks_conf_parse *p, const char *file, int line,
	       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_verr(p, file, line, fmt, ap);
	va_end(ap);
}

void
ks_conf_err(struct ks_conf_parse *p, const config_setting_t *s, const char *fmt,
	    ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_verr(p, config_setting_source_file(s),
		  (int)config_setting_source_line(s), fmt, ap);
	va_end(ap);
}

void
ks_conf_check_keys(struct ks_conf_parse *p, const config_setting_t *g,
		   const char *const *known, const char *ctx)
{
	const config_setting_t *s;
	const char *const *k;
	int i, n = config_setting_length(g);

	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(g, (unsigned)i);
		for (k = known; *k != NULL; k++)
			if (strcmp(*k, config_setting_name(s)) == 0)
				break;
		if (*k == NULL)
			ks_conf_err(p, s, "unknown key \"%s\" in %s",
				    config_setting_name(s), ctx);
	}
}

/*
 * Typed getters: 0 when the key is absent (*out untouched), 1 when it was
 * stored, -1 after logging a type or range error.
 */

int
ks_conf_get_int(struct ks_conf_parse *p, const config_setting_t *g, const char *ctx,
	const char *key, long long min, long long max, long long *out)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	long long v;

	if (s == NULL)
		return 0;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		v = config_setting_get_int(s);
		break;
	case CONFIG_TYPE_INT64:
		v = config_setting_get_int64(s);
		break;
	default:
		ks_conf_err(p, s, "%s: %s must be an integer", ctx, key);
		return -1;
	}
	if (v < min || v > max) {
		ks_conf_err(p, s, "%s: %s %lld out of range (%lld..%lld)", ctx,
			    key, v, min, max);
		return -1;
	}
	*out = v;
	return 1;
}

/* Seconds, int or float: >= 0, or > 0 when `positive`. */
int
ks_conf_get_seconds(struct ks_conf_parse *p, const config_setting_t *g,
		    const char *ctx, const char *key, int positive, double *out)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	double v;

	if (s == NULL)
		return 0;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		v = config_setting_get_int(s);
		break;
	case CONFIG_TYPE_INT64:
		v = (double)config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_FLOAT:
		v = config_setting_get_float(s);
		break;
	default:
		ks_conf_err(p, s, "%s: %s must be a number", ctx, key);
		return -1;
	}
	if (!isfinite(v)) {
		ks_conf_err(p, s, "%s: %s must be a finite number", ctx, key);
		return -1;
	}
	if (v < 0 || (positive && v == 0)) {
		ks_conf_err(p, s, "%s: %s %g out of range (%s 0)", ctx, key, v,
			    positive ? ">" : ">=");
		return -1;
	}
	*out = v;
	return 1;
}

int
ks_conf_get_bool(struct ks_conf_parse *p, const config_setting_t *g,
		 const char *ctx, const char *key, bool *out)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		ks_conf_err(p, s, "%s: %s must be a boolean", ctx, key);
		return -1;
	}
	*out = config_setting_get_bool(s) != 0;
	return 1;
}

/* Strings must not be empty either: every string key names something. */
int
ks_conf_get_string(struct ks_conf_parse *p, const config_setting_t *g,
		   const char *ctx, const char *key, const char **out)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	const char *v;

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		ks_conf_err(p, s, "%s: %s must be a string", ctx, key);
		return -1;
	}
	v = config_setting_get_string(s);
	if (v[0] == '\0') {
		ks_conf_err(p, s, "%s: %s must not be empty", ctx, key);
		return -1;
	}
	*out = v;
	return 1;
}

int
ks_log_level_parse(const char *s)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 0; i < KS_ARRAY_SIZE(names); i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

/* The absolute directory holding `path`, malloc'd. */
static char *
conf_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *cwd, *dir;
	size_t n;

	if (slash == path)
		return strdup("/");
	if (path[0] == '/')
		return strndup(path, (size_t)(slash - path));
	cwd = getcwd(NULL, 0);
	if (cwd == NULL)
		return NULL;
	if (slash == NULL)
		return cwd;
	n = strlen(cwd) + 1 + (size_t)(slash - path) + 1;
	dir = malloc(n);
	if (dir != NULL)
		snprintf(dir, n, "%s/%.*s", cwd, (int)(slash - path), path);
	free(cwd);
	return dir;
}

/* A path as written (plugin_dir, TLS files), made absolute relative to the
 * config file's directory (a later chdir must not change its meaning);
 * malloc'd. */
static char *
plugin_dir_path(const char *conf_path, const char *pdir)
{
	char *dir, *joined;
	size_t n;

	if (pdir[0] == '/')
		return strdup(pdir);
	dir = conf_dir(conf_path);
	if (dir == NULL)
		return NULL;
	n = strlen(dir) + 1 + strlen(pdir) + 1;
	joined = malloc(n);
	if (joined != NULL)
		snprintf(joined, n, "%s%s%s", dir,
			 strcmp(dir, "/") == 0 ? "" : "/", pdir);
	free(dir);
	return joined;
}

const char *
ks_conf_abspath(struct ks_conf_parse *p, const config_setting_t *s,
		const char *v)
{
	struct ks_conf *conf = p->conf;
	char **owned;
	char *abs;

	if (v[0] == '/')
		return v;
	owned = realloc(conf->owned, (conf->nowned + 1) * sizeof(*owned));
	if (owned == NULL ||
	    (abs = plugin_dir_path(conf->path, v)) == NULL) {
		if (owned != NULL)
			conf->owned = owned;
		ks_conf_err(p, s, "out of memory");
		return NULL;
	}
	conf->owned = owned;
	conf->owned[conf->nowned++] = abs;
	return abs;
}

static void
parse_daemon(struct ks_conf_parse *p, const config_setting_t *g)
{
	static const char *const known[] = {"plugin_dir", "log_level",
					    "shutdown_timeout",
					    "coroutine_stack", NULL};
	struct ks_conf *conf = p->conf;
	const char *str;
	char *dir;
	long long v;
	int r;

	ks_conf_check_keys(p, g, known, "daemon");

	r = ks_conf_get_string(p, g, "daemon", "plugin_dir", &str);
	if (r > 0) {
		dir = plugin_dir_path(conf->path, str);
		if (dir == NULL) {
			ks_conf_err(p,
				    config_setting_get_member(g, "plugin_dir"),
				    "daemon: plugin_dir %s: %s", str,
				    strerror(errno));
			r = -1;
		} else {
			free((void *)conf->plugin_dir);
			conf->plugin_dir = dir;
		}
	}
	if (r < 0)
		p->plugin_dir_ok = 0;

	if (ks_conf_get_string(p, g, "daemon", "log_level", &str) > 0) {
		r = ks_log_level_parse(str);
		if (r < 0)
			ks_conf_err(
				p, config_setting_get_member(g, "log_level"),
				"daemon: unknown log_level \"%s\" (expected "
				"error, warn, info or debug)",
				str);
		else
			conf->log_level = r;
	}
	ks_conf_get_seconds(p, g, "daemon", "shutdown_timeout", 0,
			    &conf->shutdown_timeout);
	if (ks_conf_get_int(p, g, "daemon", "coroutine_stack", 16384, 67108864, &v) > 0)
		conf->coroutine_stack = (size_t)v;
}

static void
parse_address(struct ks_conf_parse *p, const config_setting_t *g,
	      const char *ctx, struct ks_lconf *lc, struct lcheck *ck,
	      int proto_ok)
{
	const config_setting_t *port_s = config_setting_get_member(g, "port");
	struct sockaddr_un sun;
	long long v;
	int addr_r, port_r;

	ck->addr_s = config_setting_get_member(g, "address");
	addr_r = ks_conf_get_string(p, g, ctx, "address", &lc->address);
	if (addr_r == 0)
		ks_conf_err(p, g, "%s: address is required", ctx);
	if (!proto_ok) {
		ks_conf_get_int(p, g, ctx, "port", 0, 65535, &v);
		return;
	}
	if (lc->protocol == KS_PROTO_UNIX) {
		if (port_s != NULL)
			ks_conf_err(p, port_s,
				    "%s: port is not allowed for unix sockets",
				    ctx);
		if (addr_r > 0 && strlen(lc->address) >= sizeof(sun.sun_path)) {
			ks_conf_err(p, ck->addr_s,
				    "%s: unix socket path too long (%zu bytes, "
				    "at most %zu)",
				    ctx, strlen(lc->address),
				    sizeof(sun.sun_path) - 1);
			addr_r = -1;
		}
		ck->addr_ok = addr_r > 0 && port_s == NULL;
		return;
	}

	if (addr_r > 0) {
		if (inet_pton(AF_INET, lc->address, ck->ip) == 1) {
			ck->family = AF_INET;
		} else if (inet_pton(AF_INET6, lc->address, ck->ip) == 1) {
			ck->family = AF_INET6;
		} else {
			ks_conf_err(p, ck->addr_s,
				    "%s: address \"%s\" is not an IPv4 or IPv6 "
				    "literal",
				    ctx, lc->address);
			addr_r = -1;
		}
	}
	port_r = ks_conf_get_int(p, g, ctx, "port", 0, 65535, &v);
	if (port_r == 0)
		ks_conf_err(p, g, "%s: port is required for %s", ctx,
			    lc->protocol == KS_PROTO_UDP ? "udp" : "tcp");
	else if (port_r > 0)
		lc->port = (int)v;
	ck->addr_ok = addr_r > 0 && port_r > 0;
}

/* A file named by `what` must be there and readable now, not when the
 * first connection needs it. */
int
ks_conf_check_file(struct ks_conf_parse *p, const config_setting_t *s,
		   const char *ctx, const char *what, const char *file)
{
	struct stat st;
	int e = 0;

	if (access(file, R_OK) != 0)
		e = errno;
	else if (stat(file, &st) == 0 && S_ISDIR(st.st_mode))
		e = EISDIR;
	if (e != 0)
		ks_conf_err(p, s, "%s: %s %s: %s", ctx, what, file,
			    strerror(e));
	return e != 0 ? -1 : 0;
}

static void
parse_handler(struct ks_conf_parse *p, const config_setting_t *g,
	      const char *ctx, struct ks_lconf *lc)
{
	const config_setting_t *s = config_setting_get_member(g, "handler");
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

static void
parse_listener(struct ks_conf_parse *p, config_setting_t *g, unsigned idx,
	       struct ks_lconf *lc, struct lcheck *ck)
{
	/* clang-format off */
	static const char *const known[] = {
		"name",          "protocol",        "address",
		"port",          "handler",         "backlog",
		"reuse_address", "reuse_port",      "no_delay",
		"keep_alive",    "type_of_service", "linger",
		"send_buffer",   "receive_buffer",  "max_line_length",
		"idle_timeout",  "options",         "tls",
		"broadcast",     "multicast_groups", "multicast_interface",
		"max_datagram_size",
		NULL};
	/* clang-format on */
	const config_setting_t *s;
	const char *proto = "tcp";
	char *ctx = ck->ctx;
	long long v;
	int proto_ok = 1;

	lc->conf = p->conf;
	lc->file = config_setting_source_file(g) != NULL
			   ? config_setting_source_file(g)
			   : p->conf->path;
	lc->line = (int)config_setting_source_line(g);
	lc->protocol = KS_PROTO_TCP;
	lc->backlog = 511;
	lc->reuse_address = true;
	lc->no_delay = true;
	lc->linger = -1;
	lc->max_line_length = 8192;
	lc->idle_timeout = 300;

	/* The name comes first: every other message is about "listener X". */
	ck->name_s = config_setting_get_member(g, "name");
	snprintf(ctx, CTX_MAX, "listener #%u", idx + 1);
	if (ks_conf_get_string(p, g, ctx, "name", &lc->name) > 0) {
		ck->name_ok = 1;
		snprintf(ctx, CTX_MAX, "listener \"%s\"", lc->name);
	} else if (ck->name_s == NULL) {
		ks_conf_err(p, g, "%s: name is required", ctx);
	}
	ks_conf_check_keys(p, g, known, ctx);

	s = config_setting_get_member(g, "protocol");
	if (ks_conf_get_string(p, g, ctx, "protocol", &proto) < 0) {
		proto_ok = 0;
	} else if (strcmp(proto, "unix") == 0) {
		lc->protocol = KS_PROTO_UNIX;
	} else if (strcmp(proto, "udp") == 0) {
		lc->protocol = KS_PROTO_UDP;
	} else if (strcmp(proto, "tcp") != 0) {
		ks_conf_err(p, s,
			    "%s: unknown protocol \"%s\" (expected tcp, udp "
			    "or unix)",
			    ctx, proto);
		proto_ok = 0;
	}
	parse_address(p, g, ctx, lc, ck, proto_ok);
	parse_handler(p, g, ctx, lc);

	if (ks_conf_get_int(p, g, ctx, "backlog", 1, 65535, &v) > 0)
		lc->backlog = (int)v;
	ks_conf_get_bool(p, g, ctx, "reuse_address", &lc->reuse_address);
	ks_conf_get_bool(p, g, ctx, "reuse_port", &lc->reuse_port);
	ks_conf_get_bool(p, g, ctx, "no_delay", &lc->no_delay);
	ks_conf_get_bool(p, g, ctx, "keep_alive", &lc->keep_alive);
	if (ks_conf_get_int(p, g, ctx, "type_of_service", 0, 255, &v) > 0)
		lc->type_of_service = (int)v;
	if (ks_conf_get_int(p, g, ctx, "linger", -1, 65535, &v) > 0)
		lc->linger = (int)v;
	if (ks_conf_get_int(p, g, ctx, "send_buffer", 0, INT_MAX, &v) > 0)
		lc->send_buffer = (int)v;
	if (ks_conf_get_int(p, g, ctx, "receive_buffer", 0, INT_MAX, &v) > 0)
		lc->receive_buffer = (int)v;
	if (ks_conf_get_int(p, g, ctx, "max_line_length", 1, 16777216, &v) > 0)
		lc->max_line_length = (size_t)v;
	ks_conf_get_seconds(p, g, ctx, "idle_timeout", 0, &lc->idle_timeout);

	s = config_setting_get_member(g, "options");
	if (s != NULL && !config_setting_is_group(s))
		ks_conf_err(p, s, "%s: options must be a group", ctx);
	else
		lc->options = (config_setting_t *)s;
	/* Stream and datagram listeners take different keys. */
	if (proto_ok)
		ks_conf_parse_udp(p, g, ctx, lc, ck->family, ck->ip);
	s = config_setting_get_member(g, "tls");
	if (s != NULL && lc->protocol != KS_PROTO_UDP)
		ks_conf_parse_tls(p, s, ctx, lc);
}

static int
is_wildcard(const struct lcheck *ck)
{
	static const unsigned char zero[16];

	return memcmp(ck->ip, zero, ck->family == AF_INET ? 4 : 16) == 0;
}

static int
same_address(const struct ks_lconf *a, const struct lcheck *ca,
	     const struct ks_lconf *b, const struct lcheck *cb)
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
		 const struct lcheck *ck)
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
	struct lcheck *ck;
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
	FILE *fp;
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
	conf->shutdown_timeout = 30;
	conf->coroutine_stack = 65536;
	if (conf->path == NULL || conf->plugin_dir == NULL) {
		ks_log(KS_LOG_ERR, "%s: out of memory", path);
		goto fail;
	}
	p.conf = conf;

	/* libconfig only says "file I/O error"; the errno is more useful. */
	fp = fopen(path, "r");
	if (fp == NULL) {
		ks_log(KS_LOG_ERR, "%s: %s", path, strerror(errno));
		goto fail;
	}
	fclose(fp);
	if (!config_read_file(&conf->cfg, path)) {
		ks_log(KS_LOG_ERR, "%s:%d: %s",
		       config_error_file(&conf->cfg) != NULL
			       ? config_error_file(&conf->cfg)
			       : path,
		       config_error_line(&conf->cfg),
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
		parse_daemon(&p, s);
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
	const config_setting_t *s;
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
			s = lc->options;
			ks_log(KS_LOG_ERR, "%s:%d: listener \"%s\": %s",
			       s != NULL && config_setting_source_file(s)
				       ? config_setting_source_file(s)
				       : lc->file,
			       s != NULL ? (int)config_setting_source_line(s)
					 : lc->line,
			       lc->name, err);
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
		ks_conf_tls_free(lc);
	}
	free(conf->listeners);
	ks_tls_client_cache_free(conf->tls_clients);
	for (i = 0; i < conf->nowned; i++)
		free(conf->owned[i]);
	free(conf->owned);
	config_destroy(&conf->cfg);
	free(conf->path);
	free((void *)conf->plugin_dir);
	free(conf);
}
