/*
 * Plugin loader: dlopen(RTLD_NOW | RTLD_LOCAL) a handler .so, check its
 * descriptor's ABI and size, run its per-listener init and fini.
 */
#ifndef KS_LOADER_H
#define KS_LOADER_H

#include <stddef.h>

#include <ksockd/plugin.h>

struct ks_plugin_inst {
	void *dl;               /* dlopen handle, NULL when not loaded */
	const ks_plugin *desc;  /* the plugin's descriptor */
	void *state;            /* what init() returned */
	/* desc->handle_dgram, or NULL when the descriptor predates it */
	int (*handle_dgram)(ks_conn *, ks_dsock *, void *);
	/* desc->init_worker, or NULL (absent, or older descriptor) */
	int (*init_worker)(void *state, char *err, size_t errlen);
	int initialised;        /* init() succeeded: fini() is due */
};

/* Builds the path of a handler: an absolute `handler` is kept as is,
 * anything else becomes PLUGIN_DIR/HANDLER.so (".so" not doubled).
 * Returns a malloc'd string or NULL on OOM. */
char *ks_loader_resolve(const char *plugin_dir, const char *handler);

/* Loads `path` and checks the descriptor.  On failure returns -1, leaves *pi
 * unloaded and writes a message into err: the file cannot be loaded (with
 * dlerror()), it has no KS_PLUGIN_SYMBOL, its ABI differs (naming both
 * numbers), its size is too small, or it has neither handle nor
 * handle_dgram. */
int ks_loader_open(const char *path, struct ks_plugin_inst *pi, char *err,
		   size_t errlen);

/* Calls the plugin's init (if any) with `opts` (may be NULL: no options).
 * On rejection returns -1 with the plugin's message in err. */
int ks_loader_init(struct ks_plugin_inst *pi, const ks_options *opts, char *err,
		   size_t errlen);

/* A worker process: calls the plugin's init_worker (if any) with the state
 * init made.  On failure returns -1 with the plugin's message in err. */
int ks_loader_init_worker(struct ks_plugin_inst *pi, char *err, size_t errlen);

/* Calls fini if init succeeded, then dlcloses.  Safe on an unloaded pi. */
void ks_loader_close(struct ks_plugin_inst *pi);

#endif
