/*
 * Configuration: parsing /etc/ksockd.conf (libconfig syntax) into a
 * reference-counted generation.  Listener sockets outlive a generation (a
 * reload swaps the generation a listener points at); every connection holds
 * a reference to the generation it started with, so its plugin state and
 * limits stay valid until it ends.
 */
#ifndef KS_CONF_H
#define KS_CONF_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "loader.h"
#include "phase.h"
#include "tls.h"

struct ks_tls_client_cache;
struct ks_lsock;
struct ks_conf_text;
struct ks_acl;

/* daemon.workers: at most this many worker processes per generation. */
#define KS_MAX_WORKERS 128

enum ks_proto {
	KS_PROTO_TCP = 0,
	KS_PROTO_UNIX = 1,
	KS_PROTO_UDP = 2,
};

/* A multicast group a udp listener joins. */
struct ks_mcast {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	const char *text; /* as written */
};

struct ks_conf;

#define KS_STAT_NONE (~0u)

/* One `listeners` entry.  Values are already validated and defaulted; the
 * keys, their ranges and defaults are the rows of conf_keys.c. */
struct ks_lconf {
	struct ks_conf *conf; /* the generation this belongs to */
	unsigned index;       /* its place in conf->listeners */
	/* Its row in the scoreboard's per-listener counters, given by name
	 * by the master (the same name keeps its counters over reloads and
	 * upgrades); KS_STAT_NONE: not counted per listener. */
	unsigned stat_id;
	const char *name;     /* strings point into conf->cfg */
	enum ks_proto protocol;
	const char *address; /* IP literal, or a filesystem path for unix */
	int port;            /* tcp and udp; 0 = ephemeral */
	const char *handler; /* as written in the file */
	char *handler_path;  /* resolved: plugin_dir/NAME.so or absolute */
	int backlog;         /* default 511 */
	bool reuse_address;  /* default true */
	bool reuse_port;     /* default false */
	bool no_delay;       /* default true */
	bool keep_alive;     /* default false */
	int type_of_service; /* default 0 = leave alone */
	int linger;          /* seconds; -1 = system default */
	int send_buffer;     /* bytes; 0 = system default */
	int receive_buffer;  /* bytes; 0 = system default */
	size_t max_line_length; /* default 8192 */
	double idle_timeout;    /* seconds; 0 = none; default 300 */
	double handshake_timeout; /* PROXY + TLS, a hard cap; default 10 */
	double write_timeout;   /* output not read for this long; default 60 */
	double session_timeout; /* a cap on the whole connection; 0 = none */
	bool proxy_protocol;    /* a PROXY header first (phase.h) */
	struct ks_acl *proxy_from; /* who may send it (allow rules only) */
	struct ks_acl *acl;     /* allow and deny, NULL: everyone (acl.h) */
	/* Limits (admit.h); -1: the daemon's value */
	int max_connections;    /* this listener's; 0 = none */
	bool fd_reserve;        /* accepts from the descriptor reserve (up to
				 * its max_connections) while others pause */
	int max_connections_per_source; /* 0 = none; -1 (daemon's -1): derived */
	int connection_rate;    /* per source and second; 0 = none */
	int max_datagram_rate;  /* udp: per source and second; 0 = none */
	/* What runs on a connection, NULL-terminated (phase.h) */
	const struct ks_phase *phases[KS_PHASES_MAX + 1];
	config_setting_t *options; /* the `options` group, or NULL */
	const char *file;          /* where the entry starts, for messages */
	int line;
	struct ks_plugin_inst plugin; /* filled by ks_conf_load_plugins */
	struct ks_tls_conf *tls;      /* the `tls` group, NULL: plain */
	struct ks_tls_ctx *tls_ctx;   /* built from it by ks_conf_load */
	/* udp only */
	bool broadcast;             /* SO_BROADCAST; default false */
	size_t max_datagram;        /* receive buffer; default KS_DGRAM_MAX */
	const char *mcast_if;       /* interface name, NULL: the kernel's pick */
	struct ks_mcast *mcast;     /* multicast_groups */
	size_t nmcast;
	/* unix only: the socket file's mode and owner */
	int mode;                   /* -1: what the umask leaves */
	uid_t sock_uid;             /* (uid_t)-1: unchanged */
	gid_t sock_gid;             /* (gid_t)-1: unchanged */
	/* The bound socket this listener accepts on: set by the master when
	 * the generation is committed (workers inherit it). */
	struct ks_lsock *lsock;
};

struct ks_conf {
	int refs;
	config_t cfg;
	struct ks_conf_text *text; /* what libconfig parsed (conf_read.h) */
	char *path;
	const char *plugin_dir; /* default: the compiled-in KS_PLUGIN_DIR */
	int log_level;          /* KS_LOG_*; default KS_LOG_INFO */
	double shutdown_timeout; /* seconds; default 30 */
	size_t coroutine_stack;  /* bytes; default 65536 */
	int workers;             /* worker processes; 0: one per CPU */
	/* Limits: every listener together (max_connections), else each
	 * listener's default */
	int max_connections;     /* 0 = none */
	int max_connections_per_source; /* -1 = derived from RLIMIT_NOFILE */
	int connection_rate;
	int max_datagram_rate;
	size_t max_buffer_memory; /* per worker; 0 = no cap */
	/* daemon.access_log: a line per connection (net/alog.h); NULL:
	 * none.  Absolute (relative paths are the config file's). */
	const char *access_log;
	bool access_log_json;    /* access_log_format = "json" */
	/* daemon.user / daemon.group: what workers run as; NULL: unchanged */
	const char *user, *group;
	uid_t uid;               /* the user's, when user is set */
	gid_t gid;               /* group's, else the user's primary group */
	unsigned generation;     /* numbered by the master, 1 upwards */
	size_t nlisteners;
	struct ks_lconf *listeners;
	bool plugins_loaded;
	bool stats_assigned; /* the listeners' stat_id given (scoreboard.h) */
	char **owned; /* strings made for this generation (absolute paths) */
	struct ks_tls_client_cache *tls_clients; /* tls.c: outbound credentials */
	size_t nowned;
};

/*
 * Parses and validates `path`.  Every problem is logged at error level as
 * "FILE:LINE: message" (all of them, not just the first); returns 0 and
 * stores a generation with one reference in *out, or -1 with *out NULL.
 * Checks: syntax, unknown keys, wrong types, out-of-range values, duplicate
 * names, two listeners on one address, handler files that do not exist.
 * Plugins are not loaded here (see ks_conf_load_plugins).
 */
int ks_conf_load(const char *path, struct ks_conf **out);

/*
 * dlopens every listener's handler and calls its init() with the listener's
 * options.  Logs "FILE:LINE: listener NAME: ..." for each failure (unloadable
 * file, wrong ABI, rejected options) and returns -1 if any failed; plugins
 * loaded so far are released again in that case.
 */
int ks_conf_load_plugins(struct ks_conf *conf);

void ks_conf_ref(struct ks_conf *conf);
/* Drops a reference; the last one calls every plugin's fini, dlcloses them
 * and frees the generation. */
void ks_conf_unref(struct ks_conf *conf);

/* Where setting s was written: its file and line (through the included
 * files).  *file is owned by conf. */
void ks_conf_where(const struct ks_conf *conf, const config_setting_t *s,
		   const char **file, int *line);

/* Parses "error" | "warn" | "info" | "debug"; -1 if none of them. */
int ks_log_level_parse(const char *s);

#endif
