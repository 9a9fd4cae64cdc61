/*
 * Configuration parsing: every error kind with its exact "FILE:LINE:
 * message", defaults, and the resolution of plugin_dir and handlers.  Each
 * test writes its configuration into a fresh temporary directory; the word
 * DIR in the text stands for that directory.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "fixture.h"
#include "log.h"
#include "suites.h"

static void
setup(void)
{
	fx_setup_dir("conf");
}

static void
teardown(void)
{
	fx_teardown_dir();
}

/* A handler file for plugin_dir "."; only its existence is checked. */
#define DAEMON_DOT "daemon = { plugin_dir = \".\"; };\n"
#define DAEMON_DOT_OPEN "daemon = { plugin_dir = \".\";\n"

START_TEST(test_defaults)
{
	struct ks_conf *conf;
	struct ks_lconf *lc;

	fx_write_file("hello.so", "");
	conf = fx_load_ok(
		"listeners = (\n"
		"  { name = \"a\"; address = \"127.0.0.1\"; port = 9002;\n"
		"    handler = \"DIR/hello.so\"; }\n"
		");\n");
	ck_assert_int_eq(conf->refs, 1);
	ck_assert_str_eq(conf->path, fx_path);
	ck_assert_str_eq(conf->plugin_dir, KS_PLUGIN_DIR);
	ck_assert_int_eq(conf->log_level, KS_LOG_INFO);
	ck_assert_double_eq(conf->shutdown_timeout, 30);
	ck_assert_uint_eq(conf->coroutine_stack, 65536);
	ck_assert(!conf->plugins_loaded);
	ck_assert_uint_eq(conf->nlisteners, 1);
	lc = &conf->listeners[0];
	ck_assert_ptr_eq(lc->conf, conf);
	ck_assert_str_eq(lc->name, "a");
	ck_assert_int_eq(lc->protocol, KS_PROTO_TCP);
	ck_assert_str_eq(lc->address, "127.0.0.1");
	ck_assert_int_eq(lc->port, 9002);
	ck_assert_str_eq(lc->handler_path, lc->handler);
	ck_assert_int_eq(lc->backlog, 511);
	ck_assert(lc->reuse_address);
	ck_assert(!lc->reuse_port);
	ck_assert(lc->no_delay);
	ck_assert(!lc->keep_alive);
	ck_assert_int_eq(lc->type_of_service, 0);
	ck_assert_int_eq(lc->linger, -1);
	ck_assert_int_eq(lc->send_buffer, 0);
	ck_assert_int_eq(lc->receive_buffer, 0);
	ck_assert_uint_eq(lc->max_line_length, 8192);
	ck_assert_double_eq(lc->idle_timeout, 300);
	ck_assert_double_eq(lc->handshake_timeout, 10);
	ck_assert_double_eq(lc->write_timeout, 60);
	ck_assert_double_eq(lc->session_timeout, 0);
	/* a plain listener: only the handler phase */
	ck_assert_ptr_nonnull(lc->phases[0]);
	ck_assert_str_eq(lc->phases[0]->name, "handler");
	ck_assert_ptr_null(lc->phases[1]);
	ck_assert_ptr_null(lc->options);
	ck_assert_str_eq(lc->file, fx_path);
	ck_assert_int_eq(lc->line, 2);
	ck_assert_ptr_null(lc->plugin.dl);
	ks_conf_unref(conf);
}
END_TEST

START_TEST(test_all_keys)
{
	struct ks_conf *conf;
	struct ks_lconf *lc;

	fx_write_file("hello.so", "");
	fx_write_file("echo.so", "");
	conf = fx_load_ok("daemon: {\n"
		       "  plugin_dir = \"DIR\";\n"
		       "  log_level = \"debug\";\n"
		       "  shutdown_timeout = 2.5;\n"
		       "  coroutine_stack = 131072;\n"
		       "};\n"
		       "listeners = (\n"
		       "  { name = \"u\"; protocol = \"unix\";\n"
		       "    address = \"DIR/s.sock\"; handler = \"hello.so\";\n"
		       "    backlog = 16; reuse_address = false;\n"
		       "    reuse_port = true; no_delay = false;\n"
		       "    keep_alive = true; type_of_service = 16;\n"
		       "    linger = 5; send_buffer = 65536L;\n"
		       "    receive_buffer = 32768; max_line_length = 100;\n"
		       "    idle_timeout = 1;\n"
		       "    options = { greeting = \"hi\"; };\n"
		       "  },\n"
		       "  { name = \"v6\"; address = \"::1\"; port = 0;\n"
		       "    handler = \"echo\"; idle_timeout = 0.25; }\n"
		       ");\n");
	ck_assert_str_eq(conf->plugin_dir, fx_dir);
	ck_assert_int_eq(conf->log_level, KS_LOG_DEBUG);
	ck_assert_double_eq(conf->shutdown_timeout, 2.5);
	ck_assert_uint_eq(conf->coroutine_stack, 131072);
	ck_assert_uint_eq(conf->nlisteners, 2);
	lc = &conf->listeners[0];
	ck_assert_int_eq(lc->protocol, KS_PROTO_UNIX);
	ck_assert_str_eq(lc->handler, "hello.so");
	ck_assert_str_eq(lc->handler_path + strlen(fx_dir), "/hello.so");
	ck_assert_int_eq(lc->backlog, 16);
	ck_assert(!lc->reuse_address);
	ck_assert(lc->reuse_port);
	ck_assert(!lc->no_delay);
	ck_assert(lc->keep_alive);
	ck_assert_int_eq(lc->type_of_service, 16);
	ck_assert_int_eq(lc->linger, 5);
	ck_assert_int_eq(lc->send_buffer, 65536);
	ck_assert_int_eq(lc->receive_buffer, 32768);
	ck_assert_uint_eq(lc->max_line_length, 100);
	ck_assert_double_eq(lc->idle_timeout, 1);
	ck_assert_ptr_nonnull(lc->options);
	ck_assert_str_eq(config_setting_get_string(config_setting_get_member(
				 lc->options, "greeting")),
			 "hi");
	ck_assert_int_eq(lc->line, 8);
	lc = &conf->listeners[1];
	ck_assert_int_eq(lc->protocol, KS_PROTO_TCP);
	ck_assert_str_eq(lc->address, "::1");
	ck_assert_int_eq(lc->port, 0);
	ck_assert_str_eq(lc->handler_path + strlen(fx_dir), "/echo.so");
	ck_assert_double_eq(lc->idle_timeout, 0.25);
	ck_assert_int_eq(lc->line, 18);
	ks_conf_unref(conf);
}
END_TEST

START_TEST(test_relative_plugin_dir)
{
	struct ks_conf *conf;
	char want[256];

	ck_assert_int_eq(mkdir(strcat(strcpy(want, fx_dir), "/lib"), 0700), 0);
	fx_write_file("lib/hello.so", "");
	conf = fx_load_ok("daemon = { plugin_dir = \"lib\"; };\n"
		       "listeners = ({ name = \"a\"; address = \"0.0.0.0\";\n"
		       "  port = 1; handler = \"hello\"; });\n");
	snprintf(want, sizeof(want), "%s/lib", fx_dir);
	ck_assert_str_eq(conf->plugin_dir, want);
	snprintf(want, sizeof(want), "%s/lib/hello.so", fx_dir);
	ck_assert_str_eq(conf->listeners[0].handler_path, want);
	ks_conf_unref(conf);
}
END_TEST

/* A config path without a directory part is relative to the cwd; the
 * stored plugin_dir must still be absolute. */
START_TEST(test_relative_conf_path)
{
	struct ks_conf *conf = NULL;
	char cwd[256], want[256];

	fx_write_file("hello.so", "");
	fx_write_file("ksockd.conf",
		   DAEMON_DOT "listeners = ({ name = \"a\"; address = \"::\";\n"
			      "  port = 1; handler = \"hello\"; });\n");
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(fx_dir), 0);
	ck_assert_int_eq(ks_conf_load("ksockd.conf", &conf), 0);
	ck_assert_int_eq(chdir(cwd), 0);
	snprintf(want, sizeof(want), "%s/.", fx_dir);
	ck_assert_str_eq(conf->plugin_dir, want);
	snprintf(want, sizeof(want), "%s/./hello.so", fx_dir);
	ck_assert_str_eq(conf->listeners[0].handler_path, want);
	ks_conf_unref(conf);
}
END_TEST

START_TEST(test_refcount)
{
	struct ks_conf *conf;

	fx_write_file("hello.so", "");
	conf = fx_load_ok(DAEMON_DOT "listeners = ({ name = \"a\";\n"
				  "  address = \"::1\"; port = 7;\n"
				  "  handler = \"hello\"; });\n");
	ks_conf_ref(conf);
	ck_assert_int_eq(conf->refs, 2);
	ks_conf_unref(conf);
	ck_assert_int_eq(conf->refs, 1);
	ks_conf_unref(conf);
}
END_TEST

START_TEST(test_syntax_error)
{
	fx_load_fails("daemon = {\n"
		   "  log_level = ;\n"
		   "};\n",
		   "FILE:2: syntax error near ';' (expected a value)", NULL);
}
END_TEST

/* The data files live in the source tree (read-only under distcheck). */
START_TEST(test_data_syntax)
{
	struct ks_conf *conf = NULL;

	ck_assert_int_eq(ks_conf_load(KS_TEST_DATA "/syntax.conf", &conf), -1);
	ck_assert_int_eq(fx_nmsgs, 1);
	ck_assert_str_eq(fx_msgs[0], KS_TEST_DATA "/syntax.conf:7: syntax error near ';' "
			 "(expected a value)");
}
END_TEST

START_TEST(test_data_include)
{
	struct ks_conf *conf = NULL;
	char cwd[256];

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(KS_TEST_DATA), 0);
	ck_assert_int_eq(ks_conf_load("include.conf", &conf), -1);
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_int_eq(fx_nmsgs, 2);
	ck_assert_str_eq(fx_msgs[0],
			 "included.conf:3: unknown key \"colour\" in daemon");
	ck_assert_str_eq(fx_msgs[1], "include.conf:1: no listeners defined");
}
END_TEST

START_TEST(test_missing_file)
{
	struct ks_conf *conf = (struct ks_conf *)1;
	char want[256];

	ck_assert_int_eq(ks_conf_load(fx_path, &conf), -1);
	ck_assert_ptr_null(conf);
	ck_assert_int_eq(fx_nmsgs, 1);
	snprintf(want, sizeof(want), "%s: No such file or directory", fx_path);
	ck_assert_str_eq(fx_msgs[0], want);
}
END_TEST

START_TEST(test_unknown_keys)
{
	fx_write_file("hello.so", "");
	fx_load_fails("daemon = { plugin_dir = \".\"; foo = 1; };\n"
		   "listeners = ({\n"
		   "  name = \"hello\"; address = \"127.0.0.1\"; port = 1;\n"
		   "  handler = \"hello\";\n"
		   "  foo = true;\n"
		   "});\n"
		   "extra = \"x\";\n",
		   "FILE:7: unknown top-level key \"extra\"",
		   "FILE:1: unknown key \"foo\" in daemon",
		   "FILE:5: unknown key \"foo\" in listener \"hello\"", NULL);
}
END_TEST

START_TEST(test_wrong_types)
{
	fx_write_file("hello.so", "");
	fx_load_fails(
		"daemon = {\n"
		"  plugin_dir = \".\";\n"
		"  log_level = 2;\n"
		"  shutdown_timeout = \"30\";\n"
		"  coroutine_stack = 1.5;\n"
		"};\n"
		"listeners = ({\n"
		"  name = \"hello\"; address = \"127.0.0.1\";\n"
		"  port = \"9002\";\n"
		"  handler = \"hello\";\n"
		"  backlog = 1.0; reuse_address = 1; no_delay = \"yes\";\n"
		"  idle_timeout = true;\n"
		"  options = 3;\n"
		"}, {\n"
		"  name = 5; address = [1]; port = 2; handler = \"hello\";\n"
		"  protocol = 1;\n"
		"});\n",
		"FILE:3: daemon: log_level must be a string",
		"FILE:4: daemon: shutdown_timeout must be a number",
		"FILE:5: daemon: coroutine_stack must be an integer",
		"FILE:9: listener \"hello\": port must be an integer",
		"FILE:11: listener \"hello\": backlog must be an integer",
		"FILE:11: listener \"hello\": reuse_address must be a boolean",
		"FILE:11: listener \"hello\": no_delay must be a boolean",
		"FILE:12: listener \"hello\": idle_timeout must be a number",
		"FILE:13: listener \"hello\": options must be a group",
		"FILE:15: listener #2: name must be a string",
		"FILE:16: listener #2: protocol must be a string",
		"FILE:15: listener #2: address must be a string", NULL);
}
END_TEST

START_TEST(test_out_of_range)
{
	fx_write_file("hello.so", "");
	fx_load_fails(
		"daemon = {\n"
		"  plugin_dir = \".\";\n"
		"  log_level = \"verbose\";\n"
		"  shutdown_timeout = -0.5;\n"
		"  coroutine_stack = 1024;\n"
		"};\n"
		"listeners = ({\n"
		"  name = \"hello\"; address = \"127.0.0.1\";\n"
		"  port = 70000;\n"
		"  handler = \"hello\";\n"
		"  backlog = 0;\n"
		"  type_of_service = 256;\n"
		"  linger = -2;\n"
		"  send_buffer = -1;\n"
		"  receive_buffer = 4294967296L;\n"
		"  max_line_length = 16777217;\n"
		"  idle_timeout = -1;\n"
		"}, {\n"
		"  name = \"b\"; address = \"::\"; port = -1; handler = \"hello\";\n"
		"  max_line_length = 0; backlog = 65536; idle_timeout = 1e999;\n"
		"});\n",
		"FILE:3: daemon: unknown log_level \"verbose\" (expected error, "
		"warn, info or debug)",
		"FILE:4: daemon: shutdown_timeout -0.5 out of range (>= 0)",
		"FILE:5: daemon: coroutine_stack 1024 out of range "
		"(16384..67108864)",
		"FILE:9: listener \"hello\": port 70000 out of range (0..65535)",
		"FILE:11: listener \"hello\": backlog 0 out of range (1..65535)",
		"FILE:12: listener \"hello\": type_of_service 256 out of range "
		"(0..255)",
		"FILE:13: listener \"hello\": linger -2 out of range (-1..65535)",
		"FILE:14: listener \"hello\": send_buffer -1 out of range "
		"(0..2147483647)",
		"FILE:15: listener \"hello\": receive_buffer 4294967296 out of "
		"range (0..2147483647)",
		"FILE:16: listener \"hello\": max_line_length 16777217 out of "
		"range (1..16777216)",
		"FILE:17: listener \"hello\": idle_timeout -1 out of range (>= 0)",
		"FILE:19: listener \"b\": port -1 out of range (0..65535)",
		"FILE:20: listener \"b\": backlog 65536 out of range (1..65535)",
		"FILE:20: listener \"b\": max_line_length 0 out of range "
		"(1..16777216)",
		"FILE:20: listener \"b\": idle_timeout must be a finite number",
		NULL);
}
END_TEST

START_TEST(test_duplicate_name)
{
	fx_write_file("hello.so", "");
	fx_load_fails(
		DAEMON_DOT
		"listeners = (\n"
		"  { name = \"x\"; address = \"127.0.0.1\"; port = 1;\n"
		"    handler = \"hello\"; },\n"
		"  { name = \"y\"; address = \"127.0.0.1\"; port = 2;\n"
		"    handler = \"hello\"; },\n"
		"  { address = \"127.0.0.1\"; port = 3; handler = \"hello\";\n"
		"    name = \"x\"; }\n"
		");\n",
		"FILE:8: duplicate listener name \"x\" (first defined at "
		"FILE:3)",
		NULL);
}
END_TEST

START_TEST(test_duplicate_address)
{
	fx_write_file("hello.so", "");
	fx_load_fails(
		DAEMON_DOT
		"listeners = (\n"
		"  { name = \"a\"; address = \"127.0.0.1\"; port = 9002;\n"
		"    handler = \"hello\"; },\n"
		"  { name = \"b\"; address = \"127.0.0.1\"; port = 9002;\n"
		"    handler = \"hello\"; },\n"
		/* a different port, port 0 twice, another family: fine */
		"  { name = \"c\"; address = \"127.0.0.1\"; port = 9003;\n"
		"    handler = \"hello\"; },\n"
		"  { name = \"z1\"; address = \"127.0.0.1\"; port = 0;\n"
		"    handler = \"hello\"; },\n"
		"  { name = \"z2\"; address = \"127.0.0.1\"; port = 0;\n"
		"    handler = \"hello\"; },\n"
		"  { name = \"v6\"; address = \"::\"; port = 9003;\n"
		"    handler = \"hello\"; },\n"
		/* the wildcard covers every specific address */
		"  { name = \"any\"; address = \"0.0.0.0\"; port = 9003;\n"
		"    handler = \"hello\"; },\n"
		/* the same IPv6 address spelled differently */
		"  { name = \"l6\"; address = \"0:0::1\"; port = 9003;\n"
		"    handler = \"hello\"; },\n"
		"  { name = \"u1\"; protocol = \"unix\"; address = \"DIR/s\";\n"
		"    handler = \"hello\"; },\n"
		"  { name = \"u2\"; protocol = \"unix\"; address = \"DIR/s\";\n"
		"    handler = \"hello\"; }\n"
		");\n",
		"FILE:5: listener \"b\": address 127.0.0.1:9002 already used by "
		"listener \"a\" (FILE:3)",
		"FILE:15: listener \"any\": address 0.0.0.0:9003 already used by "
		"listener \"c\" (FILE:7)",
		"FILE:17: listener \"l6\": address [0:0::1]:9003 already used by "
		"listener \"v6\" (FILE:13)",
		"FILE:21: listener \"u2\": address DIR/s already used by "
		"listener \"u1\" (FILE:19)",
		NULL);
}
END_TEST

START_TEST(test_missing_required)
{
	fx_load_fails(DAEMON_DOT
		   "listeners = (\n"
		   "  { name = \"x\"; address = \"127.0.0.1\"; port = 1;\n"
		   "    handler = \"nothere\"; },\n"
		   "  { port = 1; },\n"
		   "  { name = \"\"; address = \"\"; handler = \"\"; }\n"
		   ");\n",
		   "FILE:4: listener \"x\": handler file DIR/./nothere.so: No "
		   "such file or directory",
		   "FILE:5: listener #2: name is required",
		   "FILE:5: listener #2: address is required",
		   "FILE:5: listener #2: handler is required",
		   "FILE:6: listener #3: name must not be empty",
		   "FILE:6: listener #3: address must not be empty",
		   "FILE:6: listener #3: port is required for tcp",
		   "FILE:6: listener #3: handler must not be empty", NULL);
}
END_TEST

START_TEST(test_handler_is_directory)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/sub.so", fx_dir);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	fx_load_fails(DAEMON_DOT
		   "listeners = ({ name = \"x\"; address = \"::1\"; port = 1;\n"
		   "  handler = \"sub\"; });\n",
		   "FILE:3: listener \"x\": handler file DIR/./sub.so: Is a "
		   "directory",
		   NULL);
}
END_TEST

START_TEST(test_protocol_errors)
{
	fx_write_file("hello.so", "");
	fx_load_fails(
		DAEMON_DOT
		"listeners = (\n"
		"  { name = \"x\"; protocol = \"sctp\"; address = \"::1\";\n"
		"    port = 1; handler = \"hello\"; },\n"
		"  { name = \"u\"; protocol = \"unix\"; address = \"DIR/u\";\n"
		"    port = 1; handler = \"hello\"; },\n"
		"  { name = \"long\"; protocol = \"unix\"; handler = \"hello\";\n"
		"    address = \"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"; },\n"
		"  { name = \"h\"; address = \"localhost\"; port = 1;\n"
		"    handler = \"hello\"; },\n"
		"  { name = \"h4\"; address = \"127.0.0.1:80\"; port = 1;\n"
		"    handler = \"hello\"; }\n"
		");\n",
		"FILE:3: listener \"x\": unknown protocol \"sctp\" (expected tcp, "
		"udp or unix)",
		"FILE:6: listener \"u\": port is not allowed for unix sockets",
		"FILE:8: listener \"long\": unix socket path too long (108 "
		"bytes, at most 107)",
		"FILE:9: listener \"h\": address \"localhost\" is not an IPv4 or "
		"IPv6 literal",
		"FILE:11: listener \"h4\": address \"127.0.0.1:80\" is not an "
		"IPv4 or IPv6 literal",
		NULL);
}
END_TEST

START_TEST(test_no_listeners)
{
	fx_load_fails("daemon = { log_level = \"info\"; };\n",
		   "FILE:1: no listeners defined", NULL);
	fx_nmsgs = 0;
	fx_load_fails("\n\nlisteners = ();\n", "FILE:3: no listeners defined",
		   NULL);
	fx_nmsgs = 0;
	fx_load_fails("listeners = [];\n", "FILE:1: no listeners defined", NULL);
}
END_TEST

START_TEST(test_bad_structure)
{
	fx_load_fails("daemon = 1;\n"
		   "listeners = { name = \"x\"; };\n",
		   "FILE:1: daemon must be a group",
		   "FILE:2: listeners must be a list of groups", NULL);
	fx_nmsgs = 0;
	fx_load_fails("listeners = ( 1, \"x\" );\n",
		   "FILE:1: listeners: entry #1 must be a group",
		   "FILE:1: listeners: entry #2 must be a group", NULL);
	fx_nmsgs = 0;
	fx_load_fails("daemon = { plugin_dir = 1; };\n"
		   "listeners = ({ name = \"x\"; address = \"::1\"; port = 1;\n"
		   "  handler = \"x\"; });\n",
		   /* no handler lookup in an unknown directory */
		   "FILE:1: daemon: plugin_dir must be a string", NULL);
}
END_TEST

/* The PEM fixtures in the source tree; see data/tls/README. */
#define TLSD KS_TEST_DATA "/tls/"

START_TEST(test_tls)
{
	const struct ks_tls_conf *tc;
	struct ks_conf *conf;

	fx_write_file("hello.so", "");
	conf = fx_load_ok(
		DAEMON_DOT
		"listeners = (\n"
		"  { name = \"t\"; address = \"::1\"; port = 1; handler = \"hello\";\n"
		"    tls = {\n"
		"      certificate = [\"" TLSD "rsa.crt\",\n"
		"                     \"" TLSD "ecdsa.crt\"];\n"
		"      key = (\"" TLSD "rsa.key\", \"" TLSD "ecdsa.key\");\n"
		"      sni = ( { name = \"b.example\"; certificate = \"" TLSD
		"b.crt\";\n"
		"                key = \"" TLSD "b.key\"; } );\n"
		"      priority = \"NORMAL:-VERS-TLS1.2\";\n"
		"      client_ca = \"" TLSD "ca.crt\";\n"
		"      verify_client = \"require\";\n"
		"      alpn = [ \"myproto/1\", \"http/1.1\" ];\n"
		"      handshake_timeout = 2.5;\n"
		"      session_tickets = false;\n"
		"    }; },\n"
		"  { name = \"d\"; address = \"::1\"; port = 2; handler = \"hello\";\n"
		"    tls = { certificate = \"" TLSD "ecdsa.crt\";\n"
		"            key = \"" TLSD "ecdsa.key\";\n"
		"            verify_client = \"none\";\n"
		"            handshake_timeout = 1; }; },\n"
		"  { name = \"plain\"; address = \"::1\"; port = 3;\n"
		"    handler = \"hello\"; }\n"
		");\n");
	ck_assert_uint_eq(conf->nlisteners, 3);
	tc = conf->listeners[0].tls;
	ck_assert_ptr_nonnull(tc);
	ck_assert_ptr_nonnull(conf->listeners[0].tls_ctx);
	ck_assert_uint_eq(tc->nkeypairs, 3);
	ck_assert_str_eq(tc->keypairs[0].certificate, TLSD "rsa.crt");
	ck_assert_str_eq(tc->keypairs[0].key, TLSD "rsa.key");
	ck_assert_ptr_null(tc->keypairs[0].name);
	ck_assert_str_eq(tc->keypairs[1].certificate, TLSD "ecdsa.crt");
	ck_assert_str_eq(tc->keypairs[1].key, TLSD "ecdsa.key");
	ck_assert_ptr_null(tc->keypairs[1].name);
	ck_assert_str_eq(tc->keypairs[2].certificate, TLSD "b.crt");
	ck_assert_str_eq(tc->keypairs[2].key, TLSD "b.key");
	ck_assert_str_eq(tc->keypairs[2].name, "b.example");
	ck_assert_str_eq(tc->priority, "NORMAL:-VERS-TLS1.2");
	ck_assert_str_eq(tc->client_ca, TLSD "ca.crt");
	ck_assert_int_eq(tc->verify_client, KS_TLS_VERIFY_REQUIRE);
	ck_assert_uint_eq(tc->nalpn, 2);
	ck_assert_str_eq(tc->alpn[0], "myproto/1");
	ck_assert_str_eq(tc->alpn[1], "http/1.1");
	ck_assert_double_eq(tc->handshake_timeout, 2.5);
	/* the older spelling inside tls wins */
	ck_assert_double_eq(conf->listeners[0].handshake_timeout, 2.5);
	ck_assert(!tc->session_tickets);

	/* defaults */
	tc = conf->listeners[1].tls;
	ck_assert_ptr_nonnull(tc);
	ck_assert_ptr_nonnull(conf->listeners[1].tls_ctx);
	ck_assert_uint_eq(tc->nkeypairs, 1);
	ck_assert_str_eq(tc->keypairs[0].certificate, TLSD "ecdsa.crt");
	ck_assert_str_eq(tc->keypairs[0].key, TLSD "ecdsa.key");
	ck_assert_ptr_null(tc->keypairs[0].name);
	ck_assert_str_eq(tc->priority, KS_TLS_DEFAULT_PRIORITY);
	ck_assert_ptr_null(tc->client_ca);
	ck_assert_int_eq(tc->verify_client, KS_TLS_VERIFY_NONE);
	ck_assert_uint_eq(tc->nalpn, 0);
	ck_assert_double_eq(tc->handshake_timeout, 1);
	ck_assert(tc->session_tickets);

	ck_assert_ptr_null(conf->listeners[2].tls);
	ck_assert_ptr_null(conf->listeners[2].tls_ctx);
	ks_conf_unref(conf);

	conf = fx_load_ok(
		DAEMON_DOT
		"listeners = ({ name = \"t\"; address = \"::1\"; port = 1;\n"
		"  handler = \"hello\";\n"
		"  tls = { certificate = \"" TLSD "rsa.crt\";\n"
		"          key = \"" TLSD "rsa.key\";\n"
		"          client_ca = \"" TLSD "ca.crt\";\n"
		"          verify_client = \"optional\"; }; });\n");
	tc = conf->listeners[0].tls;
	/* Unset in the group: the listener's handshake_timeout applies. */
	ck_assert_double_eq(tc->handshake_timeout, 0);
	ck_assert_double_eq(conf->listeners[0].handshake_timeout, 10);
	ck_assert_int_eq(tc->verify_client, KS_TLS_VERIFY_OPTIONAL);
	ck_assert_uint_eq(tc->nkeypairs, 1);
	ks_conf_unref(conf);
}
END_TEST

START_TEST(test_tls_structure)
{
	fx_write_file("hello.so", "");
	fx_load_fails(
		DAEMON_DOT
		"listeners = (\n"
		"  { name = \"a\"; address = \"::1\"; port = 1; handler = \"hello\";\n"
		"    tls = 1; },\n"
		"  { name = \"b\"; address = \"::1\"; port = 2; handler = \"hello\";\n"
		"    tls = {\n"
		"      cert = \"x\";\n"
		"      sni = ( { name = \"b.example\"; certificate = \"" TLSD
		"b.crt\";\n"
		"              key = \"" TLSD "b.key\"; colour = 1; },\n"
		"              3,\n"
		"              { certificate = \"\"; } );\n"
		"    }; },\n"
		"  { name = \"c\"; address = \"::1\"; port = 3; handler = \"hello\";\n"
		"    tls = { certificate = \"" TLSD "rsa.crt\";\n"
		"      key = [ \"" TLSD "rsa.key\" ];\n"
		"      sni = { name = \"x\"; }; }; },\n"
		"  { name = \"d\"; address = \"::1\"; port = 4; handler = \"hello\";\n"
		"    tls = { certificate = [ \"" TLSD "rsa.crt\", \"" TLSD
		"ecdsa.crt\" ];\n"
		"      key = [ \"" TLSD "rsa.key\" ]; }; },\n"
		"  { name = \"e\"; address = \"::1\"; port = 5; handler = \"hello\";\n"
		"    tls = { certificate = ( \"" TLSD "rsa.crt\", 1, \"\" );\n"
		"      key = 7; }; },\n"
		"  { name = \"f\"; address = \"::1\"; port = 6; handler = \"hello\";\n"
		"    tls = { certificate = []; key = \"\"; }; }\n"
		");\n",
		"FILE:4: listener \"a\": tls must be a group",
		"FILE:7: unknown key \"cert\" in tls of listener \"b\"",
		"FILE:6: listener \"b\": tls: certificate is required",
		"FILE:6: listener \"b\": tls: key is required",
		"FILE:9: unknown key \"colour\" in tls sni #1 of listener \"b\"",
		"FILE:10: listener \"b\": tls: sni #2 must be a group",
		"FILE:11: listener \"b\": tls: sni #3: name is required",
		"FILE:11: listener \"b\": tls: sni #3: certificate must not be "
		"empty",
		"FILE:11: listener \"b\": tls: sni #3: key is required",
		"FILE:15: listener \"c\": tls: certificate and key must be both "
		"strings or lists of the same length",
		"FILE:16: listener \"c\": tls: sni must be a list of groups",
		"FILE:19: listener \"d\": tls: certificate and key must be both "
		"strings or lists of the same length",
		"FILE:21: listener \"e\": tls: certificate #2 must be a string",
		"FILE:21: listener \"e\": tls: certificate #3 must not be empty",
		"FILE:22: listener \"e\": tls: key must be a string or a list of "
		"strings",
		"FILE:24: listener \"f\": tls: certificate must not be empty",
		"FILE:24: listener \"f\": tls: key must not be empty", NULL);
}
END_TEST

START_TEST(test_tls_values)
{
	fx_write_file("hello.so", "");
	fx_load_fails(
		DAEMON_DOT
		"listeners = (\n"
		"  { name = \"a\"; address = \"::1\"; port = 1; handler = \"hello\";\n"
		"    tls = { certificate = \"DIR/none.crt\";\n"
		"      key = [ \"DIR\" ];\n"
		"      sni = ( { name = \"b\";\n"
		"                certificate = \"" TLSD "b.crt\";\n"
		"                key = \"DIR/none.key\"; } );\n"
		"      client_ca = \"DIR/ca.crt\";\n"
		"      verify_client = \"require\";\n"
		"    }; },\n"
		"  { name = \"b\"; address = \"::1\"; port = 2; handler = \"hello\";\n"
		"    tls = { certificate = \"" TLSD "rsa.crt\";\n"
		"      key = \"" TLSD "rsa.key\";\n"
		"      verify_client = \"optional\";\n"
		"      alpn = \"h2\";\n"
		"      handshake_timeout = 0;\n"
		"      session_tickets = \"yes\";\n"
		"      priority = 1;\n"
		"    }; },\n"
		"  { name = \"c\"; address = \"::1\"; port = 3; handler = \"hello\";\n"
		"    tls = { certificate = \"" TLSD "rsa.crt\";\n"
		"      key = \"" TLSD "rsa.key\";\n"
		"      client_ca = \"" TLSD "ca.crt\";\n"
		"      verify_client = \"always\";\n"
		"      alpn = ( \"h2\", 2, \"\" );\n"
		"      handshake_timeout = -1;\n"
		"    }; },\n"
		"  { name = \"d\"; address = \"::1\"; port = 4; handler = \"hello\";\n"
		"    tls = { certificate = \"" TLSD "rsa.crt\";\n"
		"      key = \"" TLSD "rsa.key\";\n"
		"      verify_client = 2;\n"
		"      alpn = [ \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaa\" ];\n"
		"      handshake_timeout = 1e999;\n"
		"    }; }\n"
		");\n",
		"FILE:4: listener \"a\": tls: certificate DIR/none.crt: No such "
		"file or directory",
		"FILE:5: listener \"a\": tls: key DIR: Is a directory",
		"FILE:8: listener \"a\": tls: sni #1: key DIR/none.key: No such "
		"file or directory",
		"FILE:9: listener \"a\": tls: client_ca DIR/ca.crt: No such file "
		"or directory",
		"FILE:19: listener \"b\": tls: priority must be a string",
		"FILE:15: listener \"b\": tls: verify_client \"optional\" needs "
		"client_ca",
		"FILE:16: listener \"b\": tls: alpn must be a list of strings",
		"FILE:17: listener \"b\": tls: handshake_timeout 0 out of range "
		"(> 0)",
		"FILE:18: listener \"b\": tls: session_tickets must be a boolean",
		"FILE:25: listener \"c\": tls: unknown verify_client \"always\" "
		"(expected none, optional or require)",
		"FILE:26: listener \"c\": tls: alpn #2 must be a string",
		"FILE:26: listener \"c\": tls: alpn #3 must not be empty",
		"FILE:27: listener \"c\": tls: handshake_timeout -1 out of range "
		"(> 0)",
		"FILE:32: listener \"d\": tls: verify_client must be a string",
		"FILE:33: listener \"d\": tls: alpn #1 longer than 255 bytes",
		"FILE:34: listener \"d\": tls: handshake_timeout must be a finite "
		"number",
		NULL);
}
END_TEST

/* Errors only GnuTLS finds, reported by ks_tls_ctx_new on the line of the
 * tls group; their wording is GnuTLS's, so only its subject is checked. */
static void
load_fails_tls(const char *tls, const char *subject)
{
	struct ks_conf *conf = (struct ks_conf *)1;
	char text[2048], want[256];

	snprintf(text, sizeof(text),
		 DAEMON_DOT "listeners = ({ name = \"t\"; address = \"::1\";\n"
			    "  port = 1; handler = \"hello\";\n"
			    "  tls = {\n%s\n  };\n});\n",
		 tls);
	fx_write_file("ksockd.conf", text);
	ck_assert_int_eq(ks_conf_load(fx_path, &conf), -1);
	ck_assert_ptr_null(conf);
	ck_assert_int_eq(fx_nmsgs, 1);
	snprintf(want, sizeof(want), "%s:4: listener \"t\": tls: ", fx_path);
	ck_assert_msg(strncmp(fx_msgs[0], want, strlen(want)) == 0 &&
			      strstr(fx_msgs[0] + strlen(want), subject) != NULL,
		      "unexpected message: %s", fx_msgs[0]);
	fx_nmsgs = 0;
}

START_TEST(test_tls_credentials)
{
	fx_write_file("hello.so", "");
	fx_write_file("empty.pem", "");
	load_fails_tls("certificate = \"" TLSD "rsa.crt\";\n"
		       "key = \"" TLSD "other.key\";",
		       TLSD "other.key");
	load_fails_tls("certificate = [\"" TLSD "rsa.crt\", \"" TLSD
		       "ecdsa.crt\"];\n"
		       "key = [\"" TLSD "rsa.key\", \"" TLSD "rsa.key\"];",
		       TLSD "ecdsa.crt");
	load_fails_tls("certificate = \"" TLSD "rsa.crt\";\n"
		       "key = \"" TLSD "rsa.key\";\n"
		       "sni = ({ name = \"b.example\";\n"
		       "  certificate = \"" TLSD "b.crt\";\n"
		       "  key = \"" TLSD "ecdsa.key\"; });",
		       TLSD "b.crt");
	load_fails_tls("certificate = \"" TLSD "rsa.crt\";\n"
		       "key = \"" TLSD "rsa.key\";\n"
		       "priority = \"NORMAL:+NO-SUCH-THING\";",
		       "priority");
	load_fails_tls("certificate = \"" TLSD "rsa.crt\";\n"
		       "key = \"" TLSD "rsa.key\";\n"
		       "client_ca = \"DIR/empty.pem\";\n"
		       "verify_client = \"require\";",
		       "empty.pem");
}
END_TEST

/* The keys of the process model: workers, the user workers run as, and a
 * unix socket file's mode and owner. */
START_TEST(test_process_keys)
{
	struct ks_conf *conf;
	struct ks_lconf *lc;

	if (geteuid() != 0)
		return; /* switching users needs root: see the next test */
	fx_write_file("hello.so", "");
	conf = fx_load_ok(DAEMON_DOT_OPEN
			  "  workers = 3; user = \"nobody\"; group = \"nogroup\";\n"
			  "};\n"
			  "listeners = (\n"
			  "  { name = \"u\"; protocol = \"unix\";\n"
			  "    address = \"DIR/s.sock\"; handler = \"hello\";\n"
			  "    mode = \"0660\"; user = \"nobody\";\n"
			  "    group = \"nogroup\"; },\n"
			  "  { name = \"t\"; address = \"127.0.0.1\"; port = 1;\n"
			  "    handler = \"hello\"; }\n"
			  ");\n");
	ck_assert_int_eq(conf->workers, 3);
	ck_assert_str_eq(conf->user, "nobody");
	ck_assert_uint_eq(conf->uid, 65534);
	ck_assert_uint_eq(conf->gid, 65534);
	lc = &conf->listeners[0];
	ck_assert_int_eq(lc->mode, 0660);
	ck_assert_uint_eq(lc->sock_uid, 65534);
	ck_assert_uint_eq(lc->sock_gid, 65534);
	ck_assert_uint_eq(lc->index, 0);
	lc = &conf->listeners[1];
	ck_assert_int_eq(lc->mode, -1);
	ck_assert_uint_eq(lc->sock_uid, (uid_t)-1);
	ck_assert_uint_eq(lc->sock_gid, (gid_t)-1);
	ck_assert_uint_eq(lc->index, 1);
	ks_conf_unref(conf);
	/* the default: one worker per CPU */
	conf = fx_load_ok("listeners = (\n"
			  "  { name = \"t\"; address = \"127.0.0.1\"; port = 1;\n"
			  "    handler = \"DIR/hello.so\"; }\n"
			  ");\n");
	ck_assert_int_eq(conf->workers, 0);
	ck_assert_ptr_null(conf->user);
	ks_conf_unref(conf);
}
END_TEST

START_TEST(test_process_key_errors)
{
	char want[200];

	fx_write_file("hello.so", "");
	fx_load_fails(DAEMON_DOT_OPEN
		      "  workers = 129; user = \"no-such-user-ks\";\n"
		      "  group = \"no-such-group-ks\";\n"
		      "};\n"
		      "listeners = (\n"
		      "  { name = \"u\"; protocol = \"unix\"; address = \"DIR/s\";\n"
		      "    handler = \"hello\"; mode = 0660; user = 7; }\n,"
		      "  { name = \"v\"; protocol = \"unix\"; address = \"DIR/v\";\n"
		      "    handler = \"hello\"; mode = \"0888\"; }\n,"
		      "  { name = \"w\"; protocol = \"unix\"; address = \"DIR/w\";\n"
		      "    handler = \"hello\"; mode = \"07777\"; }\n,"
		      "  { name = \"t\"; address = \"127.0.0.1\"; port = 1;\n"
		      "    handler = \"hello\"; mode = \"0600\"; group = \"x\"; }\n"
		      ");\n",
		      "FILE:2: daemon: workers 129 out of range (0..128)",
		      "FILE:2: daemon: user \"no-such-user-ks\": no such user",
		      "FILE:3: daemon: group \"no-such-group-ks\": no such group",
		      "FILE:7: listener \"u\": mode must be a string of octal "
		      "digits, such as \"0660\"",
		      "FILE:7: listener \"u\": user must be a string",
		      "FILE:9: listener \"v\": mode \"0888\" is not an octal file "
		      "mode from \"0000\" to \"0777\"",
		      "FILE:11: listener \"w\": mode \"07777\" is not an octal "
		      "file mode from \"0000\" to \"0777\"",
		      "FILE:13: listener \"t\": mode applies to unix listeners "
		      "only",
		      "FILE:13: listener \"t\": group applies to unix listeners "
		      "only",
		      NULL);
	if (geteuid() == 0 || geteuid() == 65534)
		return;
	/* Not root: switching to another user is refused up front. */
	snprintf(want, sizeof(want), "FILE:2: daemon: user: switching to it "
		 "needs root, and ksockd runs as uid %u", (unsigned)geteuid());
	fx_load_fails(DAEMON_DOT_OPEN "  user = \"nobody\";\n};\n"
		      "listeners = ( { name = \"t\"; address = \"127.0.0.1\";\n"
		      "  port = 1; handler = \"hello\"; } );\n", want, NULL);
}
END_TEST

START_TEST(test_log_level_parse)
{
	ck_assert_int_eq(ks_log_level_parse("error"), KS_LOG_ERR);
	ck_assert_int_eq(ks_log_level_parse("warn"), KS_LOG_WARN);
	ck_assert_int_eq(ks_log_level_parse("info"), KS_LOG_INFO);
	ck_assert_int_eq(ks_log_level_parse("debug"), KS_LOG_DEBUG);
	ck_assert_int_eq(ks_log_level_parse("INFO"), -1);
	ck_assert_int_eq(ks_log_level_parse(""), -1);
	ck_assert_int_eq(ks_log_level_parse(NULL), -1);
}
END_TEST

Suite *
ks_suite_conf(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("load");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_all_keys);
	tcase_add_test(tc, test_relative_plugin_dir);
	tcase_add_test(tc, test_relative_conf_path);
	tcase_add_test(tc, test_refcount);
	tcase_add_test(tc, test_syntax_error);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_data_syntax);
	tcase_add_test(tc, test_data_include);
	tcase_add_test(tc, test_unknown_keys);
	tcase_add_test(tc, test_wrong_types);
	tcase_add_test(tc, test_out_of_range);
	tcase_add_test(tc, test_duplicate_name);
	tcase_add_test(tc, test_duplicate_address);
	tcase_add_test(tc, test_missing_required);
	tcase_add_test(tc, test_handler_is_directory);
	tcase_add_test(tc, test_protocol_errors);
	tcase_add_test(tc, test_no_listeners);
	tcase_add_test(tc, test_bad_structure);
	tcase_add_test(tc, test_tls);
	tcase_add_test(tc, test_tls_structure);
	tcase_add_test(tc, test_tls_values);
	tcase_add_test(tc, test_tls_credentials);
	tcase_add_test(tc, test_process_keys);
	tcase_add_test(tc, test_process_key_errors);
	tcase_add_test(tc, test_log_level_parse);
	suite_add_tcase(s, tc);
	return s;
}
