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

/* What the duplicate checks and the udp keys need to know about the
 * listener being read, beyond struct ks_lconf. */
struct ks_lcheck {
	char ctx[CTX_MAX]; /* 'listener "NAME"' or 'listener #N' */
	const config_setting_t *name_s;
	const config_setting_t *addr_s;
	int name_ok;
	int addr_ok; /* protocol, address and port all valid */
	int proto_ok;
	int family;  /* of a valid IP address, else 0 */
	unsigned char ip[16];
};

struct ks_conf_parse {
	struct ks_conf *conf;
	int errors;
	int plugin_dir_ok;     /* else handler files are not looked up */
	struct ks_lcheck *ck;  /* the listener being read */
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

/* rel made absolute relative to the directory of the file conf_path
 * (absolute as is); malloc'd, NULL when out of memory. */
char *ks_conf_path_from(const char *conf_path, const char *rel);

/* A file name from the config: absolute as is, else relative to the
 * config file's directory (made absolute, owned by the generation).
 * NULL (after an error) when out of memory. */
const char *ks_conf_abspath(struct ks_conf_parse *p, const config_setting_t *s,
			    const char *v);

/* Names a user or group of the system: 0 and the id, or -1 after an
 * error at s ("no such user"). */
int ks_conf_lookup_user(struct ks_conf_parse *p, const config_setting_t *s,
			const char *ctx, const char *name, uid_t *uid,
			gid_t *gid);
int ks_conf_lookup_group(struct ks_conf_parse *p, const config_setting_t *s,
			 const char *ctx, const char *name, gid_t *gid);

/*
 * The parse hooks of the KS_KEY_CUSTOM rows (conf_keys.c).  Each reads its
 * key from group g, absent or not, into obj: a struct ks_lconf for
 * listener keys, struct ks_conf for daemon keys.
 */
/* conf.c */
void ks_conf_key_name(struct ks_conf_parse *, const config_setting_t *,
		      const char *, void *);
void ks_conf_key_protocol(struct ks_conf_parse *, const config_setting_t *,
			  const char *, void *);
void ks_conf_key_address(struct ks_conf_parse *, const config_setting_t *,
			 const char *, void *);
void ks_conf_key_port(struct ks_conf_parse *, const config_setting_t *,
		      const char *, void *);
void ks_conf_key_handler(struct ks_conf_parse *, const config_setting_t *,
			 const char *, void *);
void ks_conf_key_options(struct ks_conf_parse *, const config_setting_t *,
			 const char *, void *);
void ks_conf_key_mode(struct ks_conf_parse *, const config_setting_t *,
		      const char *, void *);
void ks_conf_key_sock_user(struct ks_conf_parse *, const config_setting_t *,
			   const char *, void *);
void ks_conf_key_sock_group(struct ks_conf_parse *, const config_setting_t *,
			    const char *, void *);
void ks_conf_key_plugin_dir(struct ks_conf_parse *, const config_setting_t *,
			    const char *, void *);
void ks_conf_key_log_level(struct ks_conf_parse *, const config_setting_t *,
			   const char *, void *);
void ks_conf_key_fd_reserve(struct ks_conf_parse *, const config_setting_t *,
			    const char *, void *);
void ks_conf_key_access_log(struct ks_conf_parse *, const config_setting_t *,
			    const char *, void *);
void ks_conf_key_access_log_format(struct ks_conf_parse *,
				   const config_setting_t *, const char *,
				   void *);
void ks_conf_key_user(struct ks_conf_parse *, const config_setting_t *,
		      const char *, void *);
void ks_conf_key_group(struct ks_conf_parse *, const config_setting_t *,
		       const char *, void *);
/* conf_tls.c: the `tls` group into lc->tls and lc->tls_ctx. */
void ks_conf_key_tls(struct ks_conf_parse *, const config_setting_t *,
		     const char *, void *);
/* conf_udp.c */
void ks_conf_key_mcast_groups(struct ks_conf_parse *, const config_setting_t *,
			      const char *, void *);
void ks_conf_key_mcast_if(struct ks_conf_parse *, const config_setting_t *,
			  const char *, void *);
/* conf_udp.c: checks across the udp keys, once they are all read. */
void ks_conf_udp_finish(struct ks_conf_parse *p, const config_setting_t *g,
			const char *ctx, struct ks_lconf *lc);

/* conf_acl.c: allow, deny (lc->acl), proxy_protocol_from. */
void ks_conf_key_allow(struct ks_conf_parse *, const config_setting_t *,
		       const char *, void *);
void ks_conf_key_deny(struct ks_conf_parse *, const config_setting_t *,
		      const char *, void *);
void ks_conf_key_proxy_from(struct ks_conf_parse *, const config_setting_t *,
			    const char *, void *);
void ks_conf_acl_free(struct ks_lconf *lc);

/* Frees lc->tls and lc->tls_ctx. */
void ks_conf_tls_free(struct ks_lconf *lc);

#endif
