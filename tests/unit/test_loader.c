/*
 * Plugin loading (real .so files: bundled plugins in KS_BUILD_PLUGIN_DIR,
 * broken ones from tests/plugins in KS_TEST_PLUGIN_DIR), the option getters
 * plugins use, and ks_conf_load_plugins' error messages.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "fixture.h"
#include "loader.h"
#include "log.h"
#include "suites.h"

static char err[1024];

static void
setup(void)
{
	fx_setup_dir("loader");
	err[0] = '\0';
}

static void
teardown(void)
{
	fx_teardown_dir();
}

static void
assert_resolve(const char *pdir, const char *handler, const char *want)
{
	char *p = ks_loader_resolve(pdir, handler);

	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, want);
	free(p);
}

START_TEST(test_resolve)
{
	assert_resolve("/usr/lib/ksockd", "hello", "/usr/lib/ksockd/hello.so");
	assert_resolve("/usr/lib/ksockd", "hello.so",
		       "/usr/lib/ksockd/hello.so");
	assert_resolve("/usr/lib/ksockd", "/opt/x/my.so", "/opt/x/my.so");
	assert_resolve("/usr/lib/ksockd", "/opt/x/noext", "/opt/x/noext");
	assert_resolve("/usr/lib/ksockd/", "echo", "/usr/lib/ksockd/echo.so");
	assert_resolve("/", "echo", "/echo.so");
	assert_resolve("/p", "sub/x", "/p/sub/x.so");
	assert_resolve("/p", "x.sox", "/p/x.sox.so");
}
END_TEST

START_TEST(test_open_good)
{
	struct ks_plugin_inst pi;

	ck_assert_int_eq(ks_loader_open(KS_BUILD_PLUGIN_DIR "/hello.so", &pi,
					err, sizeof(err)),
			 0);
	ck_assert_ptr_nonnull(pi.dl);
	ck_assert_ptr_nonnull(pi.desc);
	ck_assert_uint_eq(pi.desc->abi, KS_PLUGIN_ABI);
	ck_assert_ptr_nonnull(pi.desc->handle);
	ck_assert(!pi.initialised);
	ck_assert_int_eq(ks_loader_init(&pi, NULL, err, sizeof(err)), 0);
	ck_assert(pi.initialised);
	ks_loader_close(&pi);
	ck_assert_ptr_null(pi.dl);
	ck_assert_ptr_null(pi.desc);
	ck_assert(!pi.initialised);
	/* closing twice is harmless */
	ks_loader_close(&pi);
}
END_TEST

START_TEST(test_open_missing)
{
	struct ks_plugin_inst pi;
	const char *p = KS_TEST_PLUGIN_DIR "/nonexistent.so";

	ck_assert_int_eq(ks_loader_open(p, &pi, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "cannot load " KS_TEST_PLUGIN_DIR
			      "/nonexistent.so: cannot open shared object "
			      "file: No such file or directory");
	ck_assert_ptr_null(pi.dl);
	ck_assert_ptr_null(pi.desc);
}
END_TEST

START_TEST(test_open_not_elf)
{
	struct ks_plugin_inst pi;
	char want[300];
	const char *p = fx_write_file("bad.so", "this is not a shared object\n");

	ck_assert_int_eq(ks_loader_open(p, &pi, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "cannot load %s: ", p);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got: %s", err);
	ck_assert_uint_gt(strlen(err), strlen(want));
	ck_assert_ptr_null(pi.dl);
}
END_TEST

/* A real library without a descriptor: libm, found via the search path. */
START_TEST(test_open_no_symbol)
{
	struct ks_plugin_inst pi;

	ck_assert_int_eq(ks_loader_open("libm.so.6", &pi, err, sizeof(err)),
			 -1);
	ck_assert_str_eq(err, "libm.so.6: no ks_plugin_descriptor symbol (not "
			      "a ksockd plugin)");
	ck_assert_ptr_null(pi.dl);
}
END_TEST

START_TEST(test_open_wrong_abi)
{
	struct ks_plugin_inst pi;
	char want[512];
	const char *p = KS_TEST_PLUGIN_DIR "/wrongabi.so";

	ck_assert_int_eq(ks_loader_open(p, &pi, err, sizeof(err)), -1);
	snprintf(want, sizeof(want),
		 "%s: plugin ABI %d, ksockd expects %d (rebuild the plugin "
		 "against this ksockd)",
		 p, KS_PLUGIN_ABI + 100, KS_PLUGIN_ABI);
	ck_assert_str_eq(err, want);
	ck_assert_ptr_null(pi.dl);
}
END_TEST

START_TEST(test_open_no_handle)
{
	struct ks_plugin_inst pi;

	ck_assert_int_eq(ks_loader_open(KS_TEST_PLUGIN_DIR "/nohandle.so", &pi,
					err, sizeof(err)),
			 -1);
	ck_assert_str_eq(err, KS_TEST_PLUGIN_DIR
			 "/nohandle.so: plugin has neither a handle nor a handle_dgram hook");
	ck_assert_ptr_null(pi.dl);
}
END_TEST

START_TEST(test_failinit)
{
	struct ks_plugin_inst pi;
	config_t cfg;
	const ks_options *o;

	config_init(&cfg);
	ck_assert_int_eq(ks_loader_open(KS_TEST_PLUGIN_DIR "/failinit.so", &pi,
					err, sizeof(err)),
			 0);
	ck_assert_int_eq(ks_loader_init(&pi, NULL, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "plugin failinit rejected its options: option "
			      "accept must be true");
	ck_assert(!pi.initialised);

	ck_assert(config_read_string(&cfg, "o = { accept = \"yes\"; };\n"
					   "p = { accept = true; x = 1; };\n"
					   "q = { accept = true; };\n"));
	o = (const ks_options *)config_lookup(&cfg, "o");
	ck_assert_int_eq(ks_loader_init(&pi, o, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "plugin failinit rejected its options: option "
			      "accept: expected boolean");
	o = (const ks_options *)config_lookup(&cfg, "p");
	ck_assert_int_eq(ks_loader_init(&pi, o, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "plugin failinit rejected its options: unknown "
			      "option x");
	o = (const ks_options *)config_lookup(&cfg, "q");
	ck_assert_int_eq(ks_loader_init(&pi, o, err, sizeof(err)), 0);
	ck_assert(pi.initialised);
	ks_loader_close(&pi);
	config_destroy(&cfg);
}
END_TEST

/* Descriptors built right here exercise init/fini without dlopen. */
static int fini_calls;
static void *fini_state;

static int
quiet_reject(const ks_options *o, void **state, char *e, size_t elen)
{
	return 1;
}

static int
accept_init(const ks_options *o, void **state, char *e, size_t elen)
{
	*state = &fini_calls;
	return 0;
}

static void
count_fini(void *state)
{
	fini_calls++;
	fini_state = state;
}

static int
dummy_handle(ks_conn *c, ks_rchan *in, ks_wchan *out, void *state)
{
	return 0;
}

START_TEST(test_init_hooks)
{
	const ks_plugin noinit = {.abi = KS_PLUGIN_ABI,
				  .size = sizeof(ks_plugin),
				  .name = "noinit",
				  .handle = dummy_handle,
				  .fini = count_fini};
	const ks_plugin quiet = {.abi = KS_PLUGIN_ABI,
				 .size = sizeof(ks_plugin),
				 .name = "quiet",
				 .init = quiet_reject,
				 .handle = dummy_handle,
				 .fini = count_fini};
	const ks_plugin good = {.abi = KS_PLUGIN_ABI,
				.size = sizeof(ks_plugin),
				.name = "good",
				.init = accept_init,
				.handle = dummy_handle,
				.fini = count_fini};
	struct ks_plugin_inst pi;

	fini_calls = 0;
	memset(&pi, 0, sizeof(pi));
	ck_assert_int_eq(ks_loader_init(&pi, NULL, err, sizeof(err)), -1);

	pi.desc = &noinit;
	ck_assert_int_eq(ks_loader_init(&pi, NULL, err, sizeof(err)), 0);
	ck_assert(pi.initialised);
	ck_assert_ptr_null(pi.state);
	ks_loader_close(&pi);
	ck_assert_int_eq(fini_calls, 1);
	ck_assert_ptr_null(fini_state);

	pi.desc = &quiet;
	ck_assert_int_eq(ks_loader_init(&pi, NULL, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "plugin quiet rejected its options");
	ks_loader_close(&pi);
	ck_assert_int_eq(fini_calls, 1); /* no fini after a failed init */

	pi.desc = &good;
	ck_assert_int_eq(ks_loader_init(&pi, NULL, err, sizeof(err)), 0);
	ck_assert_ptr_eq(pi.state, &fini_calls);
	ks_loader_close(&pi);
	ck_assert_int_eq(fini_calls, 2);
	ck_assert_ptr_eq(fini_state, &fini_calls);
}
END_TEST

START_TEST(test_conf_plugins_fail)
{
	struct ks_conf *conf = NULL;
	char want[3][1024];
	const char *p;
	size_t i;

	p = fx_write_file(
		"ksockd.conf",
		"daemon = { plugin_dir = \"" KS_TEST_PLUGIN_DIR "\"; };\n"
		"listeners = (\n"
		"  { name = \"x\"; address = \"127.0.0.1\"; port = 0;\n"
		"    handler = \"failinit\";\n"
		"    options = {\n"
		"      accept = false;\n"
		"    };\n"
		"  },\n"
		"  { name = \"y\"; address = \"127.0.0.1\"; port = 0;\n"
		"    handler = \"failinit.so\"; },\n"
		"  { name = \"good\"; address = \"127.0.0.1\"; port = 0;\n"
		"    handler = \"" KS_BUILD_PLUGIN_DIR "/hello.so\"; },\n"
		"  { name = \"z\"; address = \"127.0.0.1\"; port = 0;\n"
		"    handler = \"wrongabi\"; }\n"
		");\n");
	ck_assert_int_eq(ks_conf_load(p, &conf), 0);
	ck_assert_int_eq(ks_conf_load_plugins(conf), -1);
	ck_assert(!conf->plugins_loaded);
	snprintf(want[0], sizeof(want[0]),
		 "%s:5: listener \"x\": plugin failinit rejected its options: "
		 "option accept must be true",
		 p);
	snprintf(want[1], sizeof(want[1]),
		 "%s:9: listener \"y\": plugin failinit rejected its options: "
		 "option accept must be true",
		 p);
	snprintf(want[2], sizeof(want[2]),
		 "%s:13: listener \"z\": %s/wrongabi.so: plugin ABI %d, ksockd "
		 "expects %d (rebuild the plugin against this ksockd)",
		 p, KS_TEST_PLUGIN_DIR, KS_PLUGIN_ABI + 100, KS_PLUGIN_ABI);
	ck_assert_int_eq(fx_nmsgs, 3);
	for (i = 0; i < 3; i++)
		ck_assert_str_eq(fx_msgs[i], want[i]);
	/* everything loaded on the way was released again */
	for (i = 0; i < conf->nlisteners; i++)
		ck_assert_ptr_null(conf->listeners[i].plugin.dl);
	ks_conf_unref(conf);
}
END_TEST

START_TEST(test_conf_plugins_ok)
{
	struct ks_conf *conf = NULL;
	const char *p;

	p = fx_write_file(
		"ksockd.conf",
		"daemon = { plugin_dir = \"" KS_BUILD_PLUGIN_DIR "\"; };\n"
		"listeners = (\n"
		"  { name = \"f\"; address = \"127.0.0.1\"; port = 0;\n"
		"    handler = \"" KS_TEST_PLUGIN_DIR "/failinit.so\";\n"
		"    options = { accept = true; }; },\n"
		"  { name = \"h\"; protocol = \"unix\"; address = \"/tmp/x.sock\";\n"
		"    handler = \"hello\"; options = { greeting = \"hi\"; }; }\n"
		");\n");
	ck_assert_int_eq(ks_conf_load(p, &conf), 0);
	ck_assert_int_eq(ks_conf_load_plugins(conf), 0);
	ck_assert_int_eq(fx_nmsgs, 0);
	ck_assert(conf->plugins_loaded);
	ck_assert(conf->listeners[0].plugin.initialised);
	ck_assert(conf->listeners[1].plugin.initialised);
	ck_assert_str_eq(conf->listeners[1].plugin.desc->name, "hello");
	/* a second call is a no-op */
	ck_assert_int_eq(ks_conf_load_plugins(conf), 0);
	ks_conf_unref(conf);
}
END_TEST

/* ---- option getters ---- */

static config_t opt_cfg;
static const ks_options *opts;

static void
opt_setup(void)
{
	config_init(&opt_cfg);
	ck_assert(config_read_string(
		&opt_cfg, "o = { s = \"str\"; i = 42; big = 5000000000L;"
			  " neg = -3; f = 1.5; b = true; n = false;"
			  " g = { x = 1; }; };\n"));
	opts = (const ks_options *)config_lookup(&opt_cfg, "o");
	ck_assert_ptr_nonnull(opts);
	err[0] = '\0';
}

static void
opt_teardown(void)
{
	config_destroy(&opt_cfg);
}

START_TEST(test_opt_string)
{
	const char *v = NULL;

	ck_assert_int_eq(ks_opt_string(opts, "s", "d", &v, err, sizeof(err)),
			 KS_OK);
	ck_assert_str_eq(v, "str");
	ck_assert_int_eq(
		ks_opt_string(opts, "absent", "d", &v, err, sizeof(err)),
		KS_OK);
	ck_assert_str_eq(v, "d");
	ck_assert_int_eq(ks_opt_string(NULL, "s", "d", &v, err, sizeof(err)),
			 KS_OK);
	ck_assert_str_eq(v, "d");
	ck_assert_int_eq(ks_opt_string(opts, "i", "d", &v, err, sizeof(err)),
			 KS_EINVAL);
	ck_assert_str_eq(err, "option i: expected string");
	/* err may be NULL */
	ck_assert_int_eq(ks_opt_string(opts, "g", "d", &v, NULL, 0), KS_EINVAL);
}
END_TEST

START_TEST(test_opt_int)
{
	long long v = 0;

	ck_assert_int_eq(ks_opt_int(opts, "i", 7, &v, err, sizeof(err)), KS_OK);
	ck_assert_int_eq(v, 42);
	ck_assert_int_eq(ks_opt_int(opts, "big", 7, &v, err, sizeof(err)),
			 KS_OK);
	ck_assert_int_eq(v, 5000000000LL);
	ck_assert_int_eq(ks_opt_int(opts, "neg", 7, &v, err, sizeof(err)),
			 KS_OK);
	ck_assert_int_eq(v, -3);
	ck_assert_int_eq(ks_opt_int(opts, "absent", 7, &v, err, sizeof(err)),
			 KS_OK);
	ck_assert_int_eq(v, 7);
	ck_assert_int_eq(ks_opt_int(NULL, "i", 8, &v, err, sizeof(err)), KS_OK);
	ck_assert_int_eq(v, 8);
	ck_assert_int_eq(ks_opt_int(opts, "f", 7, &v, err, sizeof(err)),
			 KS_EINVAL);
	ck_assert_str_eq(err, "option f: expected integer");
	ck_assert_int_eq(v, 7);
}
END_TEST

START_TEST(test_opt_bool)
{
	int v = -1;

	ck_assert_int_eq(ks_opt_bool(opts, "b", 0, &v, err, sizeof(err)),
			 KS_OK);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(ks_opt_bool(opts, "n", 1, &v, err, sizeof(err)),
			 KS_OK);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(ks_opt_bool(opts, "absent", 1, &v, err, sizeof(err)),
			 KS_OK);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(ks_opt_bool(NULL, "b", 0, &v, err, sizeof(err)),
			 KS_OK);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(ks_opt_bool(opts, "s", 0, &v, err, sizeof(err)),
			 KS_EINVAL);
	ck_assert_str_eq(err, "option s: expected boolean");
}
END_TEST

START_TEST(test_opt_double)
{
	double v = 0;

	ck_assert_int_eq(ks_opt_double(opts, "f", 0, &v, err, sizeof(err)),
			 KS_OK);
	ck_assert_double_eq(v, 1.5);
	ck_assert_int_eq(ks_opt_double(opts, "i", 0, &v, err, sizeof(err)),
			 KS_OK);
	ck_assert_double_eq(v, 42);
	ck_assert_int_eq(ks_opt_double(opts, "big", 0, &v, err, sizeof(err)),
			 KS_OK);
	ck_assert_double_eq(v, 5e9);
	ck_assert_int_eq(
		ks_opt_double(opts, "absent", 2.5, &v, err, sizeof(err)),
		KS_OK);
	ck_assert_double_eq(v, 2.5);
	ck_assert_int_eq(ks_opt_double(NULL, "f", 3.5, &v, err, sizeof(err)),
			 KS_OK);
	ck_assert_double_eq(v, 3.5);
	ck_assert_int_eq(ks_opt_double(opts, "b", 0, &v, err, sizeof(err)),
			 KS_EINVAL);
	ck_assert_str_eq(err, "option b: expected number");
}
END_TEST

START_TEST(test_opt_check_keys)
{
	static const char *const all[] = {"s", "i", "big", "neg", "f",
					  "b", "n", "g",   NULL};
	static const char *const some[] = {"s", "i", NULL};
	static const char *const none[] = {NULL};

	ck_assert_int_eq(ks_opt_check_keys(opts, all, err, sizeof(err)), KS_OK);
	ck_assert_int_eq(ks_opt_check_keys(opts, some, err, sizeof(err)),
			 KS_EINVAL);
	ck_assert_str_eq(err, "unknown option big");
	ck_assert_int_eq(ks_opt_check_keys(opts, none, err, sizeof(err)),
			 KS_EINVAL);
	ck_assert_str_eq(err, "unknown option s");
	ck_assert_int_eq(ks_opt_check_keys(NULL, none, err, sizeof(err)),
			 KS_OK);
	ck_assert_int_eq(ks_opt_check_keys(opts, some, NULL, 0), KS_EINVAL);
}
END_TEST

Suite *
ks_suite_loader(void)
{
	Suite *s = suite_create("loader");
	TCase *tc = tcase_create("load");
	TCase *to = tcase_create("options");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_resolve);
	tcase_add_test(tc, test_open_good);
	tcase_add_test(tc, test_open_missing);
	tcase_add_test(tc, test_open_not_elf);
	tcase_add_test(tc, test_open_no_symbol);
	tcase_add_test(tc, test_open_wrong_abi);
	tcase_add_test(tc, test_open_no_handle);
	tcase_add_test(tc, test_failinit);
	tcase_add_test(tc, test_init_hooks);
	tcase_add_test(tc, test_conf_plugins_fail);
	tcase_add_test(tc, test_conf_plugins_ok);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(to, opt_setup, opt_teardown);
	tcase_add_test(to, test_opt_string);
	tcase_add_test(to, test_opt_int);
	tcase_add_test(to, test_opt_bool);
	tcase_add_test(to, test_opt_double);
	tcase_add_test(to, test_opt_check_keys);
	suite_add_tcase(s, to);
	return s;
}
