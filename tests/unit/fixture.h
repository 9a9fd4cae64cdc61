/*
 * Shared by the configuration and loader suites: a fresh temporary
 * directory per test, and a log sink that keeps every message so tests can
 * compare them exactly.
 */
#ifndef KS_TEST_FIXTURE_H
#define KS_TEST_FIXTURE_H

#include <stddef.h>

#include "conf.h"

#define FX_MAX_MSGS 64

extern char fx_dir[64];   /* the test's directory */
extern char fx_path[128]; /* fx_dir/ksockd.conf */
extern char fx_msgs[FX_MAX_MSGS][1024];
extern int fx_nmsgs;

/* Checked fixture: creates the directory (named after `tag`) and installs
 * the sink; fx_teardown removes both. */
void fx_setup_dir(const char *tag);
void fx_teardown_dir(void);

/* Writes text to fx_dir/name, with every "DIR" replaced by fx_dir and
 * every "FILE" by fx_path; returns the file's path (static buffer). */
const char *fx_write_file(const char *name, const char *text);
/* The same expansion into out. */
void fx_expand(const char *in, char *out, size_t cap);

/* Writes text as fx_path and loads it: it must load without a message. */
struct ks_conf *fx_load_ok(const char *text);
/* Loads text, expects failure and exactly the messages given (FILE and
 * DIR expanded), in order; the list ends with NULL. */
void fx_load_fails(const char *text, ...);

#endif
