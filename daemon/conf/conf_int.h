/*
 * Internal to the configuration parser (conf.c and conf_tls.c): the parse
 * state and the helpers that report FILE:LINE errors while reading typed
 * values.  Each getter returns 1 when it stored a value, 0 when the key is
 * absent, -1 after logging an error (the parse then fails at the end).
 */
#ifndef KS_CONF_INT_H
#define KS_CONF_INT_H

#include <libconfig.h>
#include <stdbool.h>

#include "conf.h"
#include "log.h"
#include "util.h"

#define CTX_MAX 320 /* 'listener "NAME"', long names get cut */

struct ks_conf_parse {
	struct ks_conf *conf;
	int errors;
	int plugin_dir_ok; /* else handler files are not looked up */
};

void ks_conf_err_at(struct ks_conf_parse *p, const char *file, int line,
		    const char *fmt, ...) KS_PRINTF(4, 5);
/* An error at the setting's own file and line. */
void ks_conf_err(struct ks_conf_parse *p, const config_setting_t *s,
		 const char *fmt, ...) KS_PRINTF(3, 4);
/* Every member of group g must be in the NULL-terminated `known`. */
void ks_conf_check_keys(struct ks_conf_parse *p, const config_setting_t *g,
			const char *const *known, const char *where);
/* An integer in [min, max]. */
int ks_conf_get_int(struct ks_conf_parse *p, const config_setting_t *g,
		    const char *ctx, const char *key, long long min,
		    long long max, long long *out);
int ks_conf_get_string(struct ks_conf_parse *p, const config_setting_t *g,
		       const char *ctx, const char *key, const char **out);
int ks_conf_get_bool(struct ks_conf_parse *p, const config_setting_t *g,
		     const char *ctx, const char *key, bool *out);
int ks_conf_get_seconds(struct ks_conf_parse *p, const config_setting_t *g,
			const char *ctx, const char *key, int positive,
			double *out);
/* The file named by v (for key) must exist and be readable. */
int ks_conf_check_file(struct ks_conf_parse *p, const config_setting_t *s,
		       const char *ctx, const char *key, const char *v);

/* A file name from the config: absolute as is, else relative to the
 * config file's directory (made absolute, owned by the generation).
 * NULL (after an error) when out of memory. */
const char *ks_conf_abspath(struct ks_conf_parse *p, const config_setting_t *s,
			    const char *v);

/* conf_tls.c: the listener's `tls` group into lc->tls and lc->tls_ctx. */
void ks_conf_parse_tls(struct ks_conf_parse *p, const config_setting_t *g,
		       const char *lctx, struct ks_lconf *lc);
/* conf_udp.c: for a udp listener its own keys (broadcast, multicast_*,
 * max_datagram_size) and errors for the stream-only ones; for the others,
 * errors for the udp-only keys.  family/ip: the parsed address (family 0
 * when it did not parse). */
void ks_conf_parse_udp(struct ks_conf_parse *p, const config_setting_t *g,
		       const char *ctx, struct ks_lconf *lc, int family,
		       const unsigned char *ip);
/* Frees lc->tls and lc->tls_ctx. */
void ks_conf_tls_free(struct ks_lconf *lc);

#endif
