/* One Check runner for every unit suite.  CK_FORK=no (used under valgrind)
 * runs them in-process. */
#include "config.h"

#include <stdlib.h>

#include "log.h"
#include "suites.h"

int
main(void)
{
	SRunner *sr;
	int failed;

	ks_log_init(KS_LOG_PLAIN, KS_LOG_WARN);
	sr = srunner_create(ks_suite_buf());
	srunner_add_suite(sr, ks_suite_stream());
	srunner_add_suite(sr, ks_suite_coro());
	srunner_add_suite(sr, ks_suite_conf());
	srunner_add_suite(sr, ks_suite_loader());
	srunner_add_suite(sr, ks_suite_guard());
	srunner_add_suite(sr, ks_suite_dgram());
	srunner_add_suite(sr, ks_suite_conf_udp());
	srunner_add_suite(sr, ks_suite_resolver());
	srunner_add_suite(sr, ks_suite_proc());
	srunner_add_suite(sr, ks_suite_conf_read());
	srunner_add_suite(sr, ks_suite_zone());
	srunner_add_suite(sr, ks_suite_proxy());
	srunner_add_suite(sr, ks_suite_acl());
	srunner_add_suite(sr, ks_suite_observe());
	srunner_add_suite(sr, ks_suite_conf_limits());
	srunner_add_suite(sr, ks_suite_http_req());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
