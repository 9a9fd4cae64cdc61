#ifndef KS_TEST_SUITES_H
#define KS_TEST_SUITES_H

#include <check.h>

Suite *ks_suite_buf(void);
Suite *ks_suite_stream(void);
Suite *ks_suite_coro(void);
Suite *ks_suite_conf(void);
Suite *ks_suite_loader(void);
Suite *ks_suite_guard(void);
Suite *ks_suite_dgram(void);
Suite *ks_suite_conf_udp(void);
Suite *ks_suite_resolver(void);
Suite *ks_suite_proc(void);
Suite *ks_suite_conf_read(void);
Suite *ks_suite_zone(void);
Suite *ks_suite_proxy(void);
Suite *ks_suite_acl(void);
Suite *ks_suite_conf_limits(void);
Suite *ks_suite_observe(void);
Suite *ks_suite_http_req(void);

#endif
