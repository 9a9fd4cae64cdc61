#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "util.h"

#ifdef KS_ASAN
#define KS_DLCLOSE 0
#else
#define KS_DLCLOSE 1
#endif

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

char *
ks_loader_resolve(const char *plugin_dir, const char *handler)
{
	const char *ext;
	size_t dlen, n;
	char *p;

	if (handler[0] == '/')
		return strdup(handler);
	dlen = strlen(plugin_dir);
	/* "/usr/lib/ksockd/" + "x" must not give a double slash */
	while (dlen > 1 && plugin_dir[dlen - 1] == '/')
		dlen--;
	ext = ends_with(handler, ".so") ? "" : ".so";
	n = dlen + 1 + strlen(handler) + strlen(ext) + 1;
	p = malloc(n);
	if (p == NULL)
		return NULL;
	snprintf(p, n, "%.*s%s%s%s", (int)dlen, plugin_dir,
		 dlen == 1 && plugin_dir[0] == '/' ? "" : "/", handler, ext);
	return p;
}

/* dlerror() usually starts with the path again ("/p/x.so: cannot open
 * shared object file: ..."); the message already names it once. */
static const char *
strip_path(const char *msg, const char *path)
{
	size_t n = strlen(path);

	if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
		return msg + n + 2;
	return msg;
}

int
ks_loader_open(const char *path, struct ks_plugin_inst *pi, char *err,
	       size_t errlen)
{
	const ks_plugin *desc;
	const char *why;
	void *dl;

	memset(pi, 0, sizeof(*pi));
	dlerror();
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL) {
		why = dlerror();
		snprintf(err, errlen, "cannot load %s: %s", path,
			 why != NULL ? strip_path(why, path) : "unknown error");
		return -1;
	}
	desc = dlsym(dl, KS_PLUGIN_SYMBOL);
	if (desc == NULL) {
		snprintf(err, errlen,
			 "%s: no " KS_PLUGIN_SYMBOL
			 " symbol (not a ksockd plugin)",
			 path);
		goto fail;
	}
	if (desc->abi != KS_PLUGIN_ABI) {
		snprintf(err, errlen,
			 "%s: plugin ABI %u, ksockd expects %d (rebuild the "
			 "plugin against this ksockd)",
			 path, (unsigned)desc->abi, KS_PLUGIN_ABI);
		goto fail;
	}
	/* Fields appended in ABI-compatible versions may be missing from
	 * a plugin built against an older header: handle_dgram is the first
	 * of them. */
	if (desc->size < offsetof(ks_plugin, handle_dgram)) {
		snprintf(err, errlen, "%s: descriptor size %u too small", path,
			 (unsigned)desc->size);
		goto fail;
	}
	if (desc->size >= offsetof(ks_plugin, handle_dgram) +
				  sizeof(desc->handle_dgram))
		pi->handle_dgram = desc->handle_dgram;
	if (desc->size >= offsetof(ks_plugin, init_worker) +
				  sizeof(desc->init_worker))
		pi->init_worker = desc->init_worker;
	if (desc->handle == NULL && pi->handle_dgram == NULL) {
		snprintf(err, errlen, "%s: plugin has neither a handle nor a "
			 "handle_dgram hook", path);
		goto fail;
	}
	pi->dl = dl;
	pi->desc = desc;
	return 0;

fail:
	dlclose(dl);
	return -1;
}

int
ks_loader_init(struct ks_plugin_inst *pi, const ks_options *opts, char *err,
	       size_t errlen)
{
	char perr[512];
	const char *name;
	void *state = NULL;

	if (pi->desc == NULL) {
		snprintf(err, errlen, "plugin not loaded");
		return -1;
	}
	pi->state = NULL;
	pi->initialised = 0;
	if (pi->desc->init == NULL) {
		pi->initialised = 1; /* a fini without init still runs */
		return 0;
	}
	perr[0] = '\0';
	if (pi->desc->init(opts, &state, perr, sizeof(perr)) != 0) {
		perr[sizeof(perr) - 1] = '\0'; /* in case the plugin forgot */
		name = pi->desc->name != NULL ? pi->desc->name : "(unnamed)";
		if (perr[0] != '\0')
			snprintf(err, errlen,
				 "plugin %s rejected its options: %s", name,
				 perr);
		else
			snprintf(err, errlen, "plugin %s rejected its options",
				 name);
		return -1;
	}
	pi->state = state;
	pi->initialised = 1;
	return 0;
}

int
ks_loader_init_worker(struct ks_plugin_inst *pi, char *err, size_t errlen)
{
	char perr[512];
	const char *name;

	if (pi->init_worker == NULL)
		return 0;
	perr[0] = '\0';
	if (pi->init_worker(pi->state, perr, sizeof(perr)) == 0)
		return 0;
	perr[sizeof(perr) - 1] = '\0';
	name = pi->desc->name != NULL ? pi->desc->name : "(unnamed)";
	snprintf(err, errlen, "plugin %s: init_worker failed%s%s", name,
		 perr[0] != '\0' ? ": " : "", perr);
	return -1;
}

void
ks_loader_close(struct ks_plugin_inst *pi)
{
	if (pi->initialised && pi->desc->fini != NULL)
		pi->desc->fini(pi->state);
	/* Under ASan an unloaded module turns leak reports into "<unknown
	 * module>" frames; keeping it mapped keeps them readable. */
	if (KS_DLCLOSE && pi->dl != NULL)
		dlclose(pi->dl);
	memset(pi, 0, sizeof(*pi));
}
