/*
 * The datagram side of a listener's configuration: the keys only udp
 * listeners take (broadcast, multicast_groups, multicast_interface,
 * max_datagram_size), and clear errors for keys that make no sense on the
 * other kind (a backlog on udp, multicast on tcp).
 */
#include "config.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <ksockd/plugin.h>

#include "conf.h"
#include "conf_int.h"

/* Stream-only keys: an error on a udp listener rather than silently
 * ignored, so that nobody believes a udp listener has an idle timeout. */
static const char *const stream_only[] = {
	"backlog",         "no_delay",     "keep_alive", "linger",
	"max_line_length", "idle_timeout", NULL,
};

static const char *const udp_only[] = {
	"broadcast", "multicast_groups", "multicast_interface",
	"max_datagram_size", NULL,
};

static int
is_multicast(int family, const unsigned char *a)
{
	if (family == AF_INET)
		return (a[0] & 0xf0) == 0xe0; /* 224.0.0.0/4 */
	return a[0] == 0xff;                  /* ff00::/8 */
}

static int
is_wildcard(int family, const unsigned char *a)
{
	static const unsigned char zero[16];

	return memcmp(a, zero, family == AF_INET ? 4 : 16) == 0;
}

static void
parse_groups(struct ks_conf_parse *p, const config_setting_t *s,
	     const char *ctx, struct ks_lconf *lc, int family,
	     const unsigned char *ip)
{
	const config_setting_t *e;
	struct ks_mcast *m;
	int i, n, bound_group = 0;

	if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
		ks_conf_err(p, s, "%s: multicast_groups must be a list of "
			    "addresses", ctx);
		return;
	}
	n = config_setting_length(s);
	if (n == 0)
		return;
	if ((lc->mcast = calloc((size_t)n, sizeof(*lc->mcast))) == NULL) {
		ks_conf_err(p, s, "%s: out of memory", ctx);
		return;
	}
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		m = &lc->mcast[lc->nmcast];
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			ks_conf_err(p, e, "%s: multicast_groups: entry #%d "
				    "must be a string", ctx, i + 1);
			continue;
		}
		m->text = config_setting_get_string(e);
		if (inet_pton(AF_INET, m->text, m->addr) == 1) {
			m->family = AF_INET;
		} else if (inet_pton(AF_INET6, m->text, m->addr) == 1) {
			m->family = AF_INET6;
		} else {
			ks_conf_err(p, e, "%s: multicast_groups: \"%s\" is not "
				    "an IPv4 or IPv6 address", ctx, m->text);
			continue;
		}
		if (!is_multicast(m->family, m->addr)) {
			ks_conf_err(p, e, "%s: multicast_groups: %s is not a "
				    "multicast address (224.0.0.0/4, "
				    "ff00::/8)", ctx, m->text);
			continue;
		}
		if (family != 0 && m->family != family) {
			ks_conf_err(p, e, "%s: multicast_groups: %s and address "
				    "%s are of different families", ctx,
				    m->text, lc->address);
			continue;
		}
		if (family != 0 &&
		    memcmp(m->addr, ip, family == AF_INET ? 4 : 16) == 0)
			bound_group = 1;
		lc->nmcast++;
	}
	/* The kernel hands group traffic only to sockets bound to the
	 * wildcard or to the group itself: a listener on 127.0.0.1 that
	 * joined 239.1.2.3 would never see a datagram of it. */
	if (family != 0 && lc->nmcast > 0 && !is_wildcard(family, ip) &&
	    !(bound_group && lc->nmcast == 1))
		ks_conf_err(p, s, "%s: with multicast_groups the address must "
			    "be %s or the one group itself (a socket bound to "
			    "%s never receives group traffic)", ctx,
			    family == AF_INET ? "0.0.0.0" : "::", lc->address);
}

void
ks_conf_parse_udp(struct ks_conf_parse *p, const config_setting_t *g,
		  const char *ctx, struct ks_lconf *lc, int family,
		  const unsigned char *ip)
{
	const char *const *k;
	const config_setting_t *s;
	long long v;

	lc->max_datagram = KS_DGRAM_MAX;
	if (lc->protocol != KS_PROTO_UDP) {
		for (k = udp_only; *k != NULL; k++)
			if ((s = config_setting_get_member(g, *k)) != NULL)
				ks_conf_err(p, s, "%s: %s applies to udp "
					    "listeners only", ctx, *k);
		return;
	}
	for (k = stream_only; *k != NULL; k++)
		if ((s = config_setting_get_member(g, *k)) != NULL)
			ks_conf_err(p, s, "%s: %s does not apply to udp "
				    "listeners", ctx, *k);
	if ((s = config_setting_get_member(g, "tls")) != NULL)
		ks_conf_err(p, s, "%s: tls on a udp listener would need DTLS, "
			    "which ksockd does not support yet", ctx);

	/* SO_REUSEADDR on a UDP socket lets any other socket that sets it
	 * bind the same address and port and take datagrams away: off unless
	 * asked for (there is no TIME_WAIT to work around). */
	if (config_setting_get_member(g, "reuse_address") == NULL)
		lc->reuse_address = false;
	ks_conf_get_bool(p, g, ctx, "broadcast", &lc->broadcast);
	if (ks_conf_get_int(p, g, ctx, "max_datagram_size", 1, KS_DGRAM_MAX,
			    &v) > 0)
		lc->max_datagram = (size_t)v;
	if (ks_conf_get_string(p, g, ctx, "multicast_interface",
			       &lc->mcast_if) > 0 &&
	    if_nametoindex(lc->mcast_if) == 0)
		ks_conf_err(p, config_setting_get_member(g, "multicast_interface"),
			    "%s: multicast_interface %s: no such network "
			    "interface", ctx, lc->mcast_if);
	if ((s = config_setting_get_member(g, "multicast_groups")) != NULL)
		parse_groups(p, s, ctx, lc, family, ip);
	if (lc->mcast_if != NULL && s == NULL)
		ks_conf_err(p, config_setting_get_member(g, "multicast_interface"),
			    "%s: multicast_interface without multicast_groups",
			    ctx);
}
