/*
 * Configuration: a listener's `tls` group (see ksockd.conf(5)).  The
 * credentials are built here, at load time, so that a missing file, a key
 * that does not match or a bad priority string fails `ksockd -t` and a
 * reload rather than the first handshake.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"
#include "tls.h"

/* A string key naming a file that must be readable: 1 when stored, 0 when
 * absent, -1 after an error. */
static int
get_file(struct ks_conf_parse *p, const config_setting_t *g, const char *ctx,
	 const char *key, const char **out)
{
	const char *v;
	int r = ks_conf_get_string(p, g, ctx, key, &v);

	if (r <= 0)
		return r;
	if ((v = ks_conf_abspath(p, config_setting_get_member(g, key), v)) ==
		    NULL ||
	    ks_conf_check_file(p, config_setting_get_member(g, key), ctx, key,
			       v) < 0)
		return -1;
	*out = v;
	return 1;
}

/* Element i of the list `key`: a non-empty string, or NULL after an error. */
static const char *
get_elem(struct ks_conf_parse *p, const config_setting_t *s, const char *ctx,
	 const char *key, int i)
{
	const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
	const char *v = config_setting_get_string(e);

	if (v == NULL)
		ks_conf_err(p, e, "%s: %s #%d must be a string", ctx, key,
			    i + 1);
	else if (v[0] == '\0')
		ks_conf_err(p, e, "%s: %s #%d must not be empty", ctx, key,
			    i + 1);
	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* certificate or key: a file, or a non-empty list of files.  Returns how
 * many (a string counts 1), 0 when absent, -1 after an error. */
static int
tls_files(struct ks_conf_parse *p, const config_setting_t *g, const char *ctx,
	  const char *key)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	const char *v;
	int i, n, bad = 0;

	if (s == NULL || config_setting_type(s) == CONFIG_TYPE_STRING)
		return get_file(p, g, ctx, key, &v);
	if (!config_setting_is_list(s) && !config_setting_is_array(s)) {
		ks_conf_err(p, s,
			    "%s: %s must be a string or a list of strings", ctx,
			    key);
		return -1;
	}
	n = config_setting_length(s);
	if (n == 0)
		ks_conf_err(p, s, "%s: %s must not be empty", ctx, key);
	for (i = 0; i < n; i++) {
		v = get_elem(p, s, ctx, key, i);
		if (v != NULL)
			v = ks_conf_abspath(
				p, config_setting_get_elem(s, (unsigned)i), v);
		if (v == NULL ||
		    ks_conf_check_file(p,
				       config_setting_get_elem(s, (unsigned)i),
				       ctx, key, v) < 0)
			bad = 1;
	}
	return bad || n == 0 ? -1 : n;
}

/* The n-th string of a string-or-list setting. */
static const char *
str_elem(const config_setting_t *s, int i)
{
	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		return config_setting_get_string(s);
	return config_setting_get_string_elem(s, i);
}

static void
parse_sni(struct ks_conf_parse *p, const config_setting_t *e, unsigned idx,
	  const char *lctx, const char *tctx, struct ks_tls_conf *tc)
{
	static const char *const known[] = {"name", "certificate", "key",
					    "ocsp_response", NULL};
	struct ks_tls_keypair kp = {NULL, NULL, NULL, NULL};
	const char **out[] = {&kp.name, &kp.certificate, &kp.key};
	char ctx[CTX_MAX + 32];
	int i, r, bad = 0;

	snprintf(ctx, sizeof(ctx), "%s: sni #%u", tctx, idx + 1);
	if (!config_setting_is_group(e)) {
		ks_conf_err(p, e, "%s must be a group", ctx);
		return;
	}
	snprintf(ctx, sizeof(ctx), "tls sni #%u of %s", idx + 1, lctx);
	ks_conf_check_keys(p, e, known, ctx);
	snprintf(ctx, sizeof(ctx), "%s: sni #%u", tctx, idx + 1);
	for (i = 0; i < 3; i++) {
		r = i == 0 ? ks_conf_get_string(p, e, ctx, known[i], out[i])
			   : get_file(p, e, ctx, known[i], out[i]);
		if (r == 0)
			ks_conf_err(p, e, "%s: %s is required", ctx, known[i]);
		bad |= r <= 0;
	}
	bad |= get_file(p, e, ctx, "ocsp_response", &kp.ocsp) < 0;
	if (!bad)
		tc->keypairs[tc->nkeypairs++] = kp;
}

/*
 * ocsp_response: shaped like certificate, a file for a single certificate
 * or a list paired with its list by position, where "" stands for a
 * certificate without one.  Stored in keypairs[0..nc) (nc: how many
 * certificates were read, 0 after an error there).
 */
static void
parse_ocsp(struct ks_conf_parse *p, const config_setting_t *g, const char *ctx,
	   int nc, struct ks_tls_conf *tc)
{
	const config_setting_t *s =
		config_setting_get_member(g, "ocsp_response");
	const config_setting_t *cs =
		config_setting_get_member(g, "certificate");
	const config_setting_t *e;
	const char *v;
	int i, n, list;

	if (s == NULL)
		return;
	list = config_setting_type(s) != CONFIG_TYPE_STRING;
	if (list && !config_setting_is_list(s) && !config_setting_is_array(s)) {
		ks_conf_err(p, s,
			    "%s: ocsp_response must be a string or a list of "
			    "strings",
			    ctx);
		return;
	}
	n = list ? config_setting_length(s) : 1;
	if (nc > 0 && (n != nc ||
		       list != (config_setting_type(cs) != CONFIG_TYPE_STRING)))
		ks_conf_err(p, s,
			    "%s: ocsp_response and certificate must be both "
			    "strings or lists of the same length",
			    ctx);
	if (!list) {
		if (get_file(p, g, ctx, "ocsp_response", &v) > 0 && nc == 1)
			tc->keypairs[0].ocsp = v;
		return;
	}
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		if ((v = config_setting_get_string(e)) == NULL) {
			ks_conf_err(p, e,
				    "%s: ocsp_response #%d must be a string",
				    ctx, i + 1);
			continue;
		}
		if (v[0] == '\0')
			continue;
		if ((v = ks_conf_abspath(p, e, v)) == NULL ||
		    ks_conf_check_file(p, e, ctx, "ocsp_response", v) < 0)
			continue;
		if (i < nc)
			tc->keypairs[i].ocsp = v;
	}
}

static void
parse_alpn(struct ks_conf_parse *p, const config_setting_t *s, const char *ctx,
	   struct ks_tls_conf *tc)
{
	const char *v;
	int i, n = config_setting_length(s);

	if (!config_setting_is_list(s) && !config_setting_is_array(s)) {
		ks_conf_err(p, s, "%s: alpn must be a list of strings", ctx);
		return;
	}
	tc->alpn = calloc((size_t)n + 1, sizeof(*tc->alpn));
	if (tc->alpn == NULL) {
		ks_conf_err(p, s, "%s: out of memory", ctx);
		return;
	}
	for (i = 0; i < n; i++) {
		v = get_elem(p, s, ctx, "alpn", i);
		if (v != NULL && strlen(v) > 255) /* RFC 7301: a length byte */
			ks_conf_err(p, config_setting_get_elem(s, (unsigned)i),
				    "%s: alpn #%d longer than 255 bytes", ctx,
				    i + 1);
		else if (v != NULL)
			tc->alpn[tc->nalpn++] = v;
	}
}

static enum ks_tls_verify
parse_verify(struct ks_conf_parse *p, const config_setting_t *g,
	     const char *ctx, int have_ca)
{
	static const char *const names[] = {"none", "optional", "require"};
	const config_setting_t *s =
		config_setting_get_member(g, "verify_client");
	const char *v;
	int i;

	if (ks_conf_get_string(p, g, ctx, "verify_client", &v) <= 0)
		return KS_TLS_VERIFY_NONE;
	for (i = 0; i < (int)KS_ARRAY_SIZE(names); i++)
		if (strcmp(v, names[i]) == 0)
			break;
	if (i == (int)KS_ARRAY_SIZE(names))
		ks_conf_err(p, s,
			    "%s: unknown verify_client \"%s\" (expected none, "
			    "optional or require)",
			    ctx, v);
	else if (i != KS_TLS_VERIFY_NONE && have_ca == 0)
		ks_conf_err(p, s, "%s: verify_client \"%s\" needs client_ca",
			    ctx, v);
	else
		return (enum ks_tls_verify)i;
	return KS_TLS_VERIFY_NONE;
}

/*
 * The `tls` group.  The credentials are built here as well, so that a key
 * that does not match or a bad priority string fails `ksockd -t` and a
 * reload rather than the first handshake.
 */
static void
parse_tls(struct ks_conf_parse *p, const config_setting_t *g,
	  const char *lctx, struct ks_lconf *lc)
{
	/* clang-format off */
	static const char *const known[] = {
		"certificate", "key", "sni", "priority", "client_ca",
		"verify_client", "alpn", "handshake_timeout",
		"session_tickets", "ocsp_response", NULL};
	/* clang-format on */
	const config_setting_t *cs, *ks, *sni, *s;
	struct ks_tls_conf *tc;
	char ctx[CTX_MAX + 8], err[1024];
	int errors = p->errors, nc, nk, nsni = 0, i;

	snprintf(ctx, sizeof(ctx), "%s: tls", lctx);
	if (!config_setting_is_group(g)) {
		ks_conf_err(p, g, "%s must be a group", ctx);
		return;
	}
	snprintf(err, sizeof(err), "tls of %s", lctx);
	ks_conf_check_keys(p, g, known, err);
	tc = lc->tls = calloc(1, sizeof(*tc));
	if (tc == NULL)
		goto oom;
	tc->priority = KS_TLS_DEFAULT_PRIORITY;
	tc->handshake_timeout = 0; /* unset: the listener's handshake_timeout */
	tc->session_tickets = true;

	cs = config_setting_get_member(g, "certificate");
	ks = config_setting_get_member(g, "key");
	nc = tls_files(p, g, ctx, "certificate");
	nk = tls_files(p, g, ctx, "key");
	if (nc == 0)
		ks_conf_err(p, g, "%s: certificate is required", ctx);
	if (nk == 0)
		ks_conf_err(p, g, "%s: key is required", ctx);
	if (nc > 0 && nk > 0 &&
	    (nc != nk ||
	     (config_setting_type(cs) == CONFIG_TYPE_STRING) !=
		     (config_setting_type(ks) == CONFIG_TYPE_STRING))) {
		ks_conf_err(p, ks,
			    "%s: certificate and key must be both strings or "
			    "lists of the same length",
			    ctx);
		nc = -1;
	}
	sni = config_setting_get_member(g, "sni");
	if (sni != NULL && !config_setting_is_list(sni))
		ks_conf_err(p, sni, "%s: sni must be a list of groups", ctx);
	else if (sni != NULL)
		nsni = config_setting_length(sni);
	nc = nc > 0 ? nc : 0;
	tc->keypairs = calloc((size_t)(nc + nsni) + 1, sizeof(*tc->keypairs));
	if (tc->keypairs == NULL)
		goto oom;
	for (i = 0; i < nc; i++) {
		tc->keypairs[i].certificate =
			ks_conf_abspath(p, cs, str_elem(cs, i));
		tc->keypairs[i].key = ks_conf_abspath(p, ks, str_elem(ks, i));
	}
	tc->nkeypairs = (size_t)nc;
	parse_ocsp(p, g, ctx, nc, tc);
	for (i = 0; i < nsni; i++)
		parse_sni(p, config_setting_get_elem(sni, (unsigned)i),
			  (unsigned)i, lctx, ctx, tc);

	ks_conf_get_string(p, g, ctx, "priority", &tc->priority);
	i = get_file(p, g, ctx, "client_ca", &tc->client_ca);
	tc->verify_client = parse_verify(p, g, ctx, i);
	s = config_setting_get_member(g, "alpn");
	if (s != NULL)
		parse_alpn(p, s, ctx, tc);
	ks_conf_get_seconds(p, g, ctx, "handshake_timeout", 1,
			    &tc->handshake_timeout);
	ks_conf_get_bool(p, g, ctx, "session_tickets", &tc->session_tickets);

	if (p->errors == errors &&
	    ks_tls_ctx_new(tc, &lc->tls_ctx, err, sizeof(err)) != 0)
		ks_conf_err(p, g, "%s: %s", ctx, err);
	return;
oom:
	ks_conf_err(p, g, "%s: out of memory", ctx);
}

void
ks_conf_key_tls(struct ks_conf_parse *p, const config_setting_t *g,
		const char *ctx, void *obj)
{
	const config_setting_t *s = config_setting_get_member(g, "tls");

	if (s != NULL)
		parse_tls(p, s, ctx, obj);
}

void
ks_conf_tls_free(struct ks_lconf *lc)
{
	if (lc->tls_ctx != NULL)
		ks_tls_ctx_free(lc->tls_ctx);
	if (lc->tls != NULL) {
		free(lc->tls->keypairs);
		free(lc->tls->alpn);
		free(lc->tls);
	}
	lc->tls_ctx = NULL;
	lc->tls = NULL;
}
