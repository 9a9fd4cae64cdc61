/*
 * Option getters for plugins.  A `const ks_options *` is the listener's
 * `options` group (a libconfig setting) or NULL when there is none; the type
 * stays opaque so plugins do not depend on libconfig.
 */
#include "config.h"

#include <ksockd/plugin.h>
#include <libconfig.h>
#include <stdio.h>
#include <string.h>

static const config_setting_t *
opt_lookup(const ks_options *o, const char *name)
{
	const config_setting_t *g = (const config_setting_t *)o;

	if (g == NULL || name == NULL || !config_setting_is_group(g))
		return NULL;
	return config_setting_get_member(g, name);
}

static int
opt_type_error(const char *name, const char *type, char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "option %s: expected %s", name, type);
	return KS_EINVAL;
}

/* On a type error the default is stored too, so a plugin that ignores the
 * status still sees a sane value. */

int
ks_opt_string(const ks_options *o, const char *name, const char *def,
	      const char **out, char *err, size_t errlen)
{
	const config_setting_t *s = opt_lookup(o, name);

	*out = def;
	if (s == NULL)
		return KS_OK;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return opt_type_error(name, "string", err, errlen);
	*out = config_setting_get_string(s);
	return KS_OK;
}

/* An integer setting (either width) into *out; -1 if it is no integer. */
static int
setting_int(const config_setting_t *s, long long *out)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		*out = config_setting_get_int(s);
		return 0;
	case CONFIG_TYPE_INT64:
		*out = config_setting_get_int64(s);
		return 0;
	default:
		return -1;
	}
}

int
ks_opt_int(const ks_options *o, const char *name, long long def, long long *out,
	   char *err, size_t errlen)
{
	const config_setting_t *s = opt_lookup(o, name);

	*out = def;
	if (s != NULL && setting_int(s, out) != 0) {
		*out = def;
		return opt_type_error(name, "integer", err, errlen);
	}
	return KS_OK;
}

int
ks_opt_int_list(const ks_options *o, const char *name, long long *vals,
		size_t cap, size_t *n, char *err, size_t errlen)
{
	const config_setting_t *s = opt_lookup(o, name), *e;
	int i, len;

	*n = 0;
	if (s == NULL)
		return KS_OK;
	if (!config_setting_is_array(s) && !config_setting_is_list(s))
		return opt_type_error(name, "a list of integers", err, errlen);
	len = config_setting_length(s);
	if ((size_t)len > cap) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "option %s: at most %zu values",
				 name, cap);
		return KS_EINVAL;
	}
	for (i = 0; i < len; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		if (setting_int(e, &vals[i]) != 0)
			return opt_type_error(name, "a list of integers", err,
					      errlen);
	}
	*n = (size_t)len;
	return KS_OK;
}

int
ks_opt_bool(const ks_options *o, const char *name, int def, int *out, char *err,
	    size_t errlen)
{
	const config_setting_t *s = opt_lookup(o, name);

	*out = def;
	if (s == NULL)
		return KS_OK;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return opt_type_error(name, "boolean", err, errlen);
	*out = config_setting_get_bool(s) != 0;
	return KS_OK;
}

int
ks_opt_double(const ks_options *o, const char *name, double def, double *out,
	      char *err, size_t errlen)
{
	const config_setting_t *s = opt_lookup(o, name);

	*out = def;
	if (s == NULL)
		return KS_OK;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		*out = config_setting_get_int(s);
		return KS_OK;
	case CONFIG_TYPE_INT64:
		*out = (double)config_setting_get_int64(s);
		return KS_OK;
	case CONFIG_TYPE_FLOAT:
		*out = config_setting_get_float(s);
		return KS_OK;
	default:
		return opt_type_error(name, "number", err, errlen);
	}
}

int
ks_opt_check_keys(const ks_options *o, const char *const *known, char *err,
		  size_t errlen)
{
	const config_setting_t *g = (const config_setting_t *)o;
	const config_setting_t *s;
	const char *const *k;
	int i, n;

	if (g == NULL || !config_setting_is_group(g))
		return KS_OK;
	n = config_setting_length(g);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(g, (unsigned)i);
		for (k = known; k != NULL && *k != NULL; k++)
			if (strcmp(*k, config_setting_name(s)) == 0)
				break;
		if (k == NULL || *k == NULL) {
			if (err != NULL && errlen > 0)
				snprintf(err, errlen, "unknown option %s",
					 config_setting_name(s));
			return KS_EINVAL;
		}
	}
	return KS_OK;
}
