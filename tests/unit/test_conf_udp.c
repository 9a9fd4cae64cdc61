/*
 * Configuration of udp listeners: their own keys and defaults, every error
 * with its exact "FILE:LINE: message", and the loader's check that the
 * plugin has the hook the listener's protocol needs.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "fixture.h"
#include "suites.h"

#define DAEMON_DOT "daemon = { plugin_dir = \".\"; };\n"

static void
setup(void)
{
	fx_setup_dir("confudp");
	fx_write_file("echo.so", "");
}

static void
teardown(void)
{
	fx_teardown_dir();
}

START_TEST(test_udp_defaults)
{
	struct ks_conf *conf = fx_load_ok(
		DAEMON_DOT
		"listeners = ( { name = \"u\"; protocol = \"udp\";\n"
		"  address = \"127.0.0.1\"; port = 7; handler = \"echo\"; } );\n");
	const struct ks_lconf *lc = &conf->listeners[0];

	ck_assert_int_eq(lc->protocol, KS_PROTO_UDP);
	ck_assert_int_eq(lc->port, 7);
	ck_assert(!lc->broadcast);
	ck_assert(!lc->reuse_address); /* unlike tcp: see conf_udp.c */
	ck_assert_uint_eq(lc->max_datagram, KS_DGRAM_MAX);
	ck_assert_ptr_null(lc->mcast_if);
	ck_assert_uint_eq(lc->nmcast, 0);
	ck_assert_ptr_null(lc->tls);
	ks_conf_unref(conf);
}
END_TEST

START_TEST(test_udp_all_keys)
{
	struct ks_conf *conf = fx_load_ok(
		DAEMON_DOT
		"listeners = ( { name = \"u\"; protocol = \"udp\";\n"
		"  address = \"0.0.0.0\"; port = 0; handler = \"echo\";\n"
		"  reuse_address = true; reuse_port = true;\n"
		"  type_of_service = 16; send_buffer = 65536;\n"
		"  receive_buffer = 131072; broadcast = true;\n"
		"  max_datagram_size = 512;\n"
		"  multicast_groups = [ \"239.1.2.3\", \"224.0.0.251\" ];\n"
		"  multicast_interface = \"lo\"; options = { x = 1; }; },\n"
		"  { name = \"u6\"; protocol = \"udp\"; address = \"::\";\n"
		"    port = 9; handler = \"echo\";\n"
		"    multicast_groups = ( \"ff15::1:2\" ); },\n"
		"  { name = \"g\"; protocol = \"udp\"; address = \"239.9.9.9\";\n"
		"    port = 9; handler = \"echo\";\n"
		"    multicast_groups = [ \"239.9.9.9\" ]; } );\n");
	const struct ks_lconf *lc = &conf->listeners[0];
	unsigned char want[16];

	ck_assert(lc->reuse_address);
	ck_assert(lc->reuse_port);
	ck_assert_int_eq(lc->type_of_service, 16);
	ck_assert_int_eq(lc->send_buffer, 65536);
	ck_assert_int_eq(lc->receive_buffer, 131072);
	ck_assert(lc->broadcast);
	ck_assert_uint_eq(lc->max_datagram, 512);
	ck_assert_str_eq(lc->mcast_if, "lo");
	ck_assert_uint_eq(lc->nmcast, 2);
	ck_assert_int_eq(lc->mcast[0].family, AF_INET);
	inet_pton(AF_INET, "239.1.2.3", want);
	ck_assert_mem_eq(lc->mcast[0].addr, want, 4);
	ck_assert_str_eq(lc->mcast[1].text, "224.0.0.251");
	ck_assert_ptr_nonnull(lc->options);
	lc = &conf->listeners[1];
	ck_assert_uint_eq(lc->nmcast, 1);
	ck_assert_int_eq(lc->mcast[0].family, AF_INET6);
	inet_pton(AF_INET6, "ff15::1:2", want);
	ck_assert_mem_eq(lc->mcast[0].addr, want, 16);
	ck_assert_uint_eq(conf->listeners[2].nmcast, 1);
	ks_conf_unref(conf);
}
END_TEST

START_TEST(test_udp_stream_keys)
{
	fx_load_fails(
		DAEMON_DOT
		"listeners = ( { name = \"u\"; protocol = \"udp\";\n"
		"  address = \"127.0.0.1\"; port = 7; handler = \"echo\";\n"
		"  backlog = 5;\n"
		"  no_delay = true;\n"
		"  keep_alive = true;\n"
		"  linger = 1;\n"
		"  max_line_length = 10;\n"
		"  idle_timeout = 5;\n"
		"  tls = { certificate = \"c\"; key = \"k\"; }; } );\n",
		"FILE:4: listener \"u\": backlog does not apply to udp listeners",
		"FILE:5: listener \"u\": no_delay does not apply to udp listeners",
		"FILE:6: listener \"u\": keep_alive does not apply to udp "
		"listeners",
		"FILE:7: listener \"u\": linger does not apply to udp listeners",
		"FILE:8: listener \"u\": max_line_length does not apply to udp "
		"listeners",
		"FILE:9: listener \"u\": idle_timeout does not apply to udp "
		"listeners",
		"FILE:10: listener \"u\": tls on a udp listener would need DTLS, "
		"which ksockd does not support yet",
		NULL);
}
END_TEST

START_TEST(test_udp_keys_on_tcp)
{
	fx_load_fails(
		DAEMON_DOT
		"listeners = ( { name = \"t\"; address = \"127.0.0.1\";\n"
		"  port = 7; handler = \"echo\";\n"
		"  broadcast = true;\n"
		"  multicast_groups = [ \"239.1.2.3\" ];\n"
		"  multicast_interface = \"lo\";\n"
		"  max_datagram_size = 100; } );\n",
		"FILE:4: listener \"t\": broadcast applies to udp listeners only",
		"FILE:5: listener \"t\": multicast_groups applies to udp "
		"listeners only",
		"FILE:6: listener \"t\": multicast_interface applies to udp "
		"listeners only",
		"FILE:7: listener \"t\": max_datagram_size applies to udp "
		"listeners only",
		NULL);
}
END_TEST

START_TEST(test_udp_multicast_errors)
{
	fx_load_fails(
		DAEMON_DOT
		"listeners = (\n"
		"  { name = \"a\"; protocol = \"udp\"; address = \"0.0.0.0\";\n"
		"    port = 1; handler = \"echo\";\n"
		"    multicast_groups = [ \"10.0.0.1\" ]; },\n"
		"  { name = \"b\"; protocol = \"udp\"; address = \"0.0.0.0\";\n"
		"    port = 2; handler = \"echo\";\n"
		"    multicast_groups = ( \"ff02::1\", 5, \"nope\" ); },\n"
		"  { name = \"c\"; protocol = \"udp\"; address = \"127.0.0.1\";\n"
		"    port = 3; handler = \"echo\";\n"
		"    multicast_groups = [ \"239.1.1.1\" ]; },\n"
		"  { name = \"d\"; protocol = \"udp\"; address = \"239.1.1.1\";\n"
		"    port = 4; handler = \"echo\";\n"
		"    multicast_groups = [ \"239.1.1.1\", \"239.1.1.2\" ]; },\n"
		"  { name = \"e\"; protocol = \"udp\"; address = \"0.0.0.0\";\n"
		"    port = 5; handler = \"echo\"; multicast_groups = \"x\";\n"
		"    multicast_interface = \"no-such-if0\"; },\n"
		"  { name = \"f\"; protocol = \"udp\"; address = \"0.0.0.0\";\n"
		"    port = 6; handler = \"echo\";\n"
		"    multicast_interface = \"lo\"; }\n"
		");\n",
		"FILE:5: listener \"a\": multicast_groups: 10.0.0.1 is not a "
		"multicast address (224.0.0.0/4, ff00::/8)",
		"FILE:8: listener \"b\": multicast_groups: ff02::1 and address "
		"0.0.0.0 are of different families",
		"FILE:8: listener \"b\": multicast_groups: entry #2 must be a "
		"string",
		"FILE:8: listener \"b\": multicast_groups: \"nope\" is not an "
		"IPv4 or IPv6 address",
		"FILE:11: listener \"c\": with multicast_groups the address must "
		"be 0.0.0.0 or the one group itself (a socket bound to 127.0.0.1 "
		"never receives group traffic)",
		"FILE:14: listener \"d\": with multicast_groups the address must "
		"be 0.0.0.0 or the one group itself (a socket bound to 239.1.1.1 "
		"never receives group traffic)",
		"FILE:16: listener \"e\": multicast_groups must be a list of "
		"addresses",
		"FILE:17: listener \"e\": multicast_interface no-such-if0: no "
		"such network interface",
		"FILE:20: listener \"f\": multicast_interface without "
		"multicast_groups",
		NULL);
}
END_TEST

START_TEST(test_udp_ranges_and_duplicates)
{
	fx_load_fails(
		DAEMON_DOT
		"listeners = (\n"
		"  { name = \"a\"; protocol = \"udp\"; address = \"127.0.0.1\";\n"
		"    port = 1; handler = \"echo\"; max_datagram_size = 0; },\n"
		"  { name = \"b\"; protocol = \"udp\"; address = \"127.0.0.1\";\n"
		"    port = 2; handler = \"echo\"; max_datagram_size = 65536; },\n"
		"  { name = \"t\"; address = \"127.0.0.1\"; port = 3;\n"
		"    handler = \"echo\"; },\n"
		"  { name = \"u\"; protocol = \"udp\"; address = \"127.0.0.1\";\n"
		"    port = 3; handler = \"echo\"; },\n"
		"  { name = \"v\"; protocol = \"udp\"; address = \"0.0.0.0\";\n"
		"    port = 3; handler = \"echo\"; },\n"
		"  { name = \"w\"; protocol = \"udp\"; handler = \"echo\";\n"
		"    address = \"::1\"; }\n"
		");\n",
		"FILE:4: listener \"a\": max_datagram_size 0 out of range "
		"(1..65535)",
		"FILE:6: listener \"b\": max_datagram_size 65536 out of range "
		"(1..65535)",
		"FILE:13: listener \"w\": port is required for udp",
		/* tcp and udp on one port do not collide; two udp do */
		"FILE:11: listener \"v\": address 0.0.0.0:3 already used by "
		"listener \"u\" (FILE:9)",
		NULL);
}
END_TEST

/* The plugin must have the hook its listener's protocol needs. */
START_TEST(test_udp_plugin_hooks)
{
	struct ks_conf *conf = NULL;
	char want[1024];

	fx_write_file("ksockd.conf",
		      "daemon = { plugin_dir = \"" KS_TEST_PLUGIN_DIR "\"; };\n"
		      "listeners = (\n"
		      "  { name = \"u1\"; protocol = \"udp\"; port = 0;\n"
		      "    address = \"127.0.0.1\"; handler = \"relay\";\n"
		      "    options = { host = \"h\"; port = \"1\"; }; },\n"
		      "  { name = \"t1\"; address = \"127.0.0.1\"; port = 0;\n"
		      "    handler = \"dgramonly\"; },\n"
		      "  { name = \"u2\"; protocol = \"udp\"; port = 0;\n"
		      "    address = \"127.0.0.1\"; handler = \"dgramonly\"; },\n"
		      "  { name = \"u3\"; protocol = \"udp\"; port = 0;\n"
		      "    address = \"127.0.0.1\"; handler = \"dgram\"; }\n"
		      ");\n");
	ck_assert_int_eq(ks_conf_load(fx_path, &conf), 0);
	ck_assert_int_eq(ks_conf_load_plugins(conf), -1);
	ck_assert_int_eq(fx_nmsgs, 2);
	snprintf(want, sizeof(want), "%s:3: listener \"u1\": plugin relay has "
		 "no handle_dgram hook (needed for a udp listener)", fx_path);
	ck_assert_str_eq(fx_msgs[0], want);
	snprintf(want, sizeof(want), "%s:6: listener \"t1\": plugin dgramonly "
		 "has no handle hook (needed for a stream listener)", fx_path);
	ck_assert_str_eq(fx_msgs[1], want);
	ks_conf_unref(conf);

	fx_nmsgs = 0;
	fx_write_file("ksockd.conf",
		      "daemon = { plugin_dir = \"" KS_TEST_PLUGIN_DIR "\"; };\n"
		      "listeners = (\n"
		      "  { name = \"u2\"; protocol = \"udp\"; port = 0;\n"
		      "    address = \"127.0.0.1\"; handler = \"dgramonly\"; },\n"
		      "  { name = \"t3\"; address = \"127.0.0.1\"; port = 0;\n"
		      "    handler = \"dgram\"; }\n"
		      ");\n");
	ck_assert_int_eq(ks_conf_load(fx_path, &conf), 0);
	ck_assert_int_eq(ks_conf_load_plugins(conf), 0);
	ck_assert_int_eq(fx_nmsgs, 0);
	ck_assert_ptr_nonnull(conf->listeners[0].plugin.handle_dgram);
	ck_assert_ptr_null(conf->listeners[0].plugin.desc->handle);
	ks_conf_unref(conf);
}
END_TEST

Suite *
ks_suite_conf_udp(void)
{
	Suite *s = suite_create("conf_udp");
	TCase *tc = tcase_create("udp");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_udp_defaults);
	tcase_add_test(tc, test_udp_all_keys);
	tcase_add_test(tc, test_udp_stream_keys);
	tcase_add_test(tc, test_udp_keys_on_tcp);
	tcase_add_test(tc, test_udp_multicast_errors);
	tcase_add_test(tc, test_udp_ranges_and_duplicates);
	tcase_add_test(tc, test_udp_plugin_hooks);
	suite_add_tcase(s, tc);
	return s;
}
