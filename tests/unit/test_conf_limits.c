/* The limit, access-list and PROXY keys: defaults, what a listener
 * inherits from the daemon group, the phases they build, and the errors. */
#include "config.h"

#include <check.h>

#include "acl.h"
#include "conf.h"
#include "fixture.h"
#include "phase.h"
#include "suites.h"

#define DAEMON_DOT "daemon = { plugin_dir = \".\"; };\n"

static void
setup(void)
{
	fx_setup_dir("conflimits");
	fx_write_file("echo.so", "");
}

static void
teardown(void)
{
	fx_teardown_dir();
}

START_TEST(test_defaults)
{
	struct ks_conf *conf = fx_load_ok(
		DAEMON_DOT
		"listeners = ( { name = \"t\"; address = \"127.0.0.1\"; port = 1;\n"
		"  handler = \"echo\"; },\n"
		"  { name = \"x\"; protocol = \"unix\"; address = \"x.sock\";\n"
		"  handler = \"echo\"; },\n"
		"  { name = \"u\"; protocol = \"udp\"; address = \"127.0.0.1\";\n"
		"  port = 2; handler = \"echo\"; } );\n");
	const struct ks_lconf *t = &conf->listeners[0];

	ck_assert_int_eq(conf->max_connections, 0);
	ck_assert_int_eq(conf->max_connections_per_source, -1);
	ck_assert_int_eq(conf->connection_rate, 0);
	ck_assert_uint_eq(conf->max_buffer_memory, 256u << 20);
	ck_assert_int_eq(t->max_connections, 0);
	ck_assert_int_eq(t->max_connections_per_source, -1); /* derived */
	ck_assert_int_eq(t->connection_rate, 0);
	ck_assert(!t->proxy_protocol);
	ck_assert_ptr_null(t->acl);
	ck_assert_ptr_null(t->proxy_from);
	/* unix: no sources */
	ck_assert_int_eq(conf->listeners[1].max_connections_per_source, 0);
	/* udp: no handshakes, no write timeout */
	ck_assert_double_eq(conf->listeners[2].handshake_timeout, 0);
	ck_assert_double_eq(conf->listeners[2].write_timeout, 0);
	ks_conf_unref(conf);
}
END_TEST

START_TEST(test_inherit_and_phases)
{
	struct ks_conf *conf = fx_load_ok(
		"daemon = { plugin_dir = \".\"; max_connections = 100;\n"
		"  max_connections_per_source = 7; connection_rate = 3;\n"
		"  max_datagram_rate = 9; max_buffer_memory = 1048576; };\n"
		"listeners = ( { name = \"t\"; address = \"127.0.0.1\"; port = 1;\n"
		"  handler = \"echo\"; },\n"
		"  { name = \"own\"; address = \"127.0.0.1\"; port = 2;\n"
		"  handler = \"echo\"; max_connections = 5;\n"
		"  max_connections_per_source = 0; connection_rate = 1;\n"
		"  proxy_protocol = true; proxy_protocol_from = [ \"10.0.0.1\" ];\n"
		"  allow = [ \"192.0.2.0/24\" ]; deny = [ \"192.0.2.1\" ]; },\n"
		"  { name = \"u\"; protocol = \"udp\"; address = \"127.0.0.1\";\n"
		"  port = 3; handler = \"echo\"; } );\n");
	const struct ks_lconf *t = &conf->listeners[0];
	const struct ks_lconf *own = &conf->listeners[1];

	ck_assert_int_eq(conf->max_connections, 100);
	ck_assert_uint_eq(conf->max_buffer_memory, 1048576);
	ck_assert_int_eq(t->max_connections, 0); /* not inherited */
	ck_assert_int_eq(t->max_connections_per_source, 7);
	ck_assert_int_eq(t->connection_rate, 3);
	ck_assert_int_eq(t->max_datagram_rate, 0); /* tcp */
	ck_assert_int_eq(conf->listeners[2].max_datagram_rate, 9);
	ck_assert_int_eq(conf->listeners[2].connection_rate, 0);
	ck_assert_int_eq(own->max_connections, 5);
	ck_assert_int_eq(own->max_connections_per_source, 0);
	ck_assert_int_eq(own->connection_rate, 1);
	ck_assert(own->proxy_protocol);
	ck_assert_uint_eq(ks_acl_count(own->acl), 2);
	ck_assert_uint_eq(ks_acl_count(own->proxy_from), 1);
	ck_assert_str_eq(own->phases[0]->name, "proxy");
	ck_assert_str_eq(own->phases[1]->name, "handler");
	ck_assert_ptr_null(own->phases[2]);
	ks_conf_unref(conf);
}
END_TEST

START_TEST(test_errors)
{
	fx_load_fails(
		DAEMON_DOT
		"listeners = ( { name = \"t\"; address = \"127.0.0.1\"; port = 1;\n"
		"  handler = \"echo\";\n"
		"  proxy_protocol = true; },\n"
		"  { name = \"f\"; address = \"127.0.0.1\"; port = 2;\n"
		"  handler = \"echo\"; proxy_protocol_from = [ \"::1\" ]; },\n"
		"  { name = \"a\"; address = \"127.0.0.1\"; port = 3;\n"
		"  handler = \"echo\";\n"
		"  allow = ( \"10.1.2.3/24\", 7 );\n"
		"  deny = \"10.0.0.0/8\"; },\n"
		"  { name = \"x\"; protocol = \"unix\"; address = \"x.sock\";\n"
		"  handler = \"echo\"; allow = [ \"::1\" ];\n"
		"  connection_rate = 5; },\n"
		"  { name = \"u\"; protocol = \"udp\"; address = \"127.0.0.1\";\n"
		"  port = 4; handler = \"echo\"; max_connections_per_source = 3; } );\n",
		"FILE:4: listener \"t\": proxy_protocol needs proxy_protocol_from, "
		"the addresses of the proxies that may send the header (anyone "
		"else could claim any address)",
		"FILE:6: listener \"f\": proxy_protocol_from without "
		"proxy_protocol = true",
		"FILE:9: listener \"a\": allow: \"10.1.2.3/24\": host bits set "
		"after /24: did you mean 10.1.2.0/24?",
		"FILE:9: listener \"a\": allow: entry #2 must be a string",
		"FILE:10: listener \"a\": deny must be a list of addresses or "
		"networks, such as [ \"10.0.0.0/8\", \"::1\" ]",
		"FILE:12: listener \"x\": allow does not apply to unix listeners: "
		"use the socket file's mode, user and group",
		"FILE:13: listener \"x\": connection_rate does not apply to unix "
		"listeners",
		"FILE:15: listener \"u\": max_connections_per_source does not "
		"apply to udp listeners",
		NULL);
}
END_TEST

Suite *
ks_suite_conf_limits(void)
{
	Suite *s = suite_create("conf_limits");
	TCase *tc = tcase_create("conf_limits");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_inherit_and_phases);
	tcase_add_test(tc, test_errors);
	suite_add_tcase(s, tc);
	return s;
}
