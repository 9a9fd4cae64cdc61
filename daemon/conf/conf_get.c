/*
 * The helpers of the configuration parser (conf_int.h): errors reported as
 * FILE:LINE, typed getters with range checks, file names made absolute and
 * checked, users and groups looked up.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "conf_int.h"
#include "conf_read.h"
#include "log.h"
#include "util.h"

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
ks_conf_where(const struct ks_conf *conf, const config_setting_t *s,
	      const char **file, int *line)
{
	*line = (int)config_setting_source_line(s);
	if (conf->text != NULL) {
		ks_conf_text_where(conf->text, *line, file, line);
		return;
	}
	*file = config_setting_source_file(s) != NULL
			? config_setting_source_file(s)
			: conf->path;
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
	const char *file;
	va_list ap;
	int line;

	ks_conf_where(p->conf, s, &file, &line);
	va_start(ap, fmt);
	conf_verr(p, file, line, fmt, ap);
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
char *
ks_conf_path_from(const char *conf_path, const char *pdir)
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
	    (abs = ks_conf_path_from(conf->path, v)) == NULL) {
		if (owned != NULL)
			conf->owned = owned;
		ks_conf_err(p, s, "out of memory");
		return NULL;
	}
	conf->owned = owned;
	conf->owned[conf->nowned++] = abs;
	return abs;
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

/* getpwnam_r/getgrnam_r want a buffer; this is plenty for one entry. */
#define NSS_BUF 16384

int
ks_conf_lookup_user(struct ks_conf_parse *p, const config_setting_t *s,
		    const char *ctx, const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd pw, *res = NULL;
	char buf[NSS_BUF];
	int e;

	e = getpwnam_r(name, &pw, buf, sizeof(buf), &res);
	if (res == NULL) {
		ks_conf_err(p, s, "%s: user \"%s\": %s", ctx, name,
			    e != 0 ? strerror(e) : "no such user");
		return -1;
	}
	*uid = pw.pw_uid;
	if (gid != NULL)
		*gid = pw.pw_gid;
	return 0;
}

int
ks_conf_lookup_group(struct ks_conf_parse *p, const config_setting_t *s,
		     const char *ctx, const char *name, gid_t *gid)
{
	struct group gr, *res = NULL;
	char buf[NSS_BUF];
	int e;

	e = getgrnam_r(name, &gr, buf, sizeof(buf), &res);
	if (res == NULL) {
		ks_conf_err(p, s, "%s: group \"%s\": %s", ctx, name,
			    e != 0 ? strerror(e) : "no such group");
		return -1;
	}
	*gid = gr.gr_gid;
	return 0;
}
