/*
 * The configuration keys as a table, in the manner of nginx's
 * ngx_command_t: every key of a listener and of the `daemon` group is one
 * row (name, type, range, default, which listeners take it, when it takes
 * effect, where it is stored).  The parser, the unknown-key check, the
 * "does not apply to udp listeners" errors, the defaults and a reload's
 * decision about a kept socket all read the same rows, so a key is written
 * in one place.
 */
#ifndef KS_CONF_KEYS_H
#define KS_CONF_KEYS_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>

struct ks_conf_parse;
struct ks_lconf;

enum ks_key_type {
	KS_KEY_BOOL,    /* bool */
	KS_KEY_INT,     /* int, in [min, max] */
	KS_KEY_SIZE,    /* size_t, in [min, max] */
	KS_KEY_SECONDS, /* double >= 0 (> 0 when min is 1), int or float */
	KS_KEY_CUSTOM,  /* read by the row's parse hook */
};

/* The kinds of listener that take a key. */
#define KS_SCOPE_TCP 1u
#define KS_SCOPE_UNIX 2u
#define KS_SCOPE_UDP 4u
#define KS_SCOPE_STREAM (KS_SCOPE_TCP | KS_SCOPE_UNIX)
#define KS_SCOPE_INET (KS_SCOPE_TCP | KS_SCOPE_UDP)
#define KS_SCOPE_ANY (KS_SCOPE_TCP | KS_SCOPE_UNIX | KS_SCOPE_UDP)

/* When a key takes effect; for a listener whose socket a reload keeps,
 * that says what the reload can do about a changed value. */
enum ks_key_when {
	KS_AT_BIND,   /* when the socket is created and bound: a change on a
		       * kept socket is logged, it needs a new socket */
	KS_AT_LISTEN, /* listen(2): a reload calls listen() again */
	KS_AT_ACCEPT, /* an option of the bound socket (or its file) that
		       * accepted sockets inherit: a reload sets it again */
	KS_AT_CONN,   /* read for every connection or datagram session (and
		       * daemon keys: by the workers of a generation) */
};

/* Reads a KS_KEY_CUSTOM key of group g (present or not: required keys
 * report their absence) into obj (a struct ks_lconf or ks_conf). */
typedef void (*ks_key_fn)(struct ks_conf_parse *p, const config_setting_t *g,
			  const char *ctx, void *obj);

struct ks_key {
	const char *name;
	enum ks_key_type type;
	unsigned scope;        /* listener keys: KS_SCOPE_* */
	enum ks_key_when when;
	size_t off;            /* the field in struct ks_lconf / ks_conf */
	long long min, max;    /* KS_KEY_INT, KS_KEY_SIZE, KS_KEY_SECONDS */
	long long def;         /* KS_KEY_BOOL, KS_KEY_INT, KS_KEY_SIZE */
	long long def_udp;     /* the same, on udp listeners */
	double def_seconds;    /* KS_KEY_SECONDS */
	ks_key_fn parse;       /* KS_KEY_CUSTOM */
	const char *misplaced; /* why a listener of another kind refuses it,
				* instead of the generic message */
	unsigned flags;        /* KS_KEYF_* */
};

/* Read by the caller before the other rows (the listener's name, which
 * every message names, and its protocol, which decides the rest). */
#define KS_KEYF_EARLY 1u

/* The rows, in the order they are read (and errors reported). */
extern const struct ks_key ks_listener_keys[];
extern const size_t ks_nlistener_keys;
extern const struct ks_key ks_daemon_keys[];
extern const size_t ks_ndaemon_keys;

/* The KS_SCOPE_* bit of a protocol (enum ks_proto). */
unsigned ks_key_scope_of(int protocol);

/* Reads group g with the rows of `keys` into obj: defaults first (those of
 * udp listeners when scope is KS_SCOPE_UDP), then unknown keys and keys of
 * the wrong kind of listener are errors, then every row in order.  scope 0:
 * no kind checks (the daemon group, or a listener whose protocol is bad). */
void ks_keys_parse(struct ks_conf_parse *p, const struct ks_key *keys,
		   size_t nkeys, const config_setting_t *g, const char *ctx,
		   unsigned scope, void *obj);
/* Only the defaults. */
void ks_keys_defaults(const struct ks_key *keys, size_t nkeys, unsigned scope,
		      void *obj);

/* A row that is not KS_KEY_CUSTOM: does it hold the same value in a and
 * b?  Custom rows compare as different (their effect is re-applied). */
bool ks_key_same(const struct ks_key *k, const void *a, const void *b);
/* The value of a row as text, for logs ("true", "511", "2.5"). */
void ks_key_format(const struct ks_key *k, const void *obj, char *buf,
		   size_t len);

#endif
