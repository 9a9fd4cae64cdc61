/*
 * The access-list keys of a listener: `allow` and `deny` (lc->acl) and
 * `proxy_protocol_from` (lc->proxy_from), lists of CIDRs ("10.0.0.0/8",
 * "2001:db8::/32", "192.0.2.7").  Each entry that does not parse is an
 * error at its own line.  The lists are built here, once, and read-only
 * afterwards: forked workers share them.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "conf.h"
#include "conf_int.h"

static void
parse_list(struct ks_conf_parse *p, const config_setting_t *g,
	   const char *ctx, const char *key, struct ks_acl **acl,
	   enum ks_acl_verdict v)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	const config_setting_t *e;
	struct ks_cidr c;
	char err[160];
	int i, n;

	if (s == NULL)
		return;
	if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
		ks_conf_err(p, s, "%s: %s must be a list of addresses or "
			    "networks, such as [ \"10.0.0.0/8\", \"::1\" ]",
			    ctx, key);
		return;
	}
	n = config_setting_length(s);
	if (*acl == NULL && n > 0 && (*acl = ks_acl_new()) == NULL) {
		ks_conf_err(p, s, "%s: out of memory", ctx);
		return;
	}
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			ks_conf_err(p, e, "%s: %s: entry #%d must be a string",
				    ctx, key, i + 1);
			continue;
		}
		if (ks_cidr_parse(config_setting_get_string(e), &c, err,
				  sizeof(err)) != 0) {
			ks_conf_err(p, e, "%s: %s: \"%s\": %s", ctx, key,
				    config_setting_get_string(e), err);
			continue;
		}
		if (ks_acl_add(*acl, &c, v) != 0)
			ks_conf_err(p, e, "%s: out of memory", ctx);
	}
}

void
ks_conf_key_allow(struct ks_conf_parse *p, const config_setting_t *g,
		  const char *ctx, void *obj)
{
	parse_list(p, g, ctx, "allow", &((struct ks_lconf *)obj)->acl,
		   KS_ACL_ALLOW);
}

void
ks_conf_key_deny(struct ks_conf_parse *p, const config_setting_t *g,
		 const char *ctx, void *obj)
{
	parse_list(p, g, ctx, "deny", &((struct ks_lconf *)obj)->acl,
		   KS_ACL_DENY);
}

/* Read after proxy_protocol: each needs the other. */
void
ks_conf_key_proxy_from(struct ks_conf_parse *p, const config_setting_t *g,
		       const char *ctx, void *obj)
{
	struct ks_lconf *lc = obj;
	const config_setting_t *s =
		config_setting_get_member(g, "proxy_protocol_from");

	parse_list(p, g, ctx, "proxy_protocol_from", &lc->proxy_from,
		   KS_ACL_ALLOW);
	if (lc->proxy_protocol && s == NULL)
		ks_conf_err(p, config_setting_get_member(g, "proxy_protocol"),
			    "%s: proxy_protocol needs proxy_protocol_from, the "
			    "addresses of the proxies that may send the header "
			    "(anyone else could claim any address)", ctx);
	else if (!lc->proxy_protocol && s != NULL)
		ks_conf_err(p, s, "%s: proxy_protocol_from without "
			    "proxy_protocol = true", ctx);
	else if (s != NULL && lc->proxy_from == NULL)
		ks_conf_err(p, s, "%s: proxy_protocol_from is empty: no proxy "
			    "could connect", ctx);
}

void
ks_conf_acl_free(struct ks_lconf *lc)
{
	ks_acl_free(lc->acl);
	ks_acl_free(lc->proxy_from);
	lc->acl = NULL;
	lc->proxy_from = NULL;
}
