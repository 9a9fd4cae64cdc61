/* ksockd: command line.  Everything else is in the core library. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "proc.h"

#define DEFAULT_CONF KS_SYSCONF_DIR "/ksockd.conf"

static void
usage(FILE *f)
{
	fprintf(f,
		"Usage: ksockd [-c FILE] [-f] [-t] [-V] [-h]\n"
		"  -c FILE  configuration file (default " DEFAULT_CONF ")\n"
		"  -f       run in the foreground (ksockd never puts itself in\n"
		"           the background; accepted for init scripts)\n"
		"  -t       test the configuration (and plugin options), then exit\n"
		"  -V       print the version and exit\n"
		"  -h       print this help and exit\n"
		"Signals: TERM/INT/QUIT stop gracefully (twice: at once), HUP\n"
		"reloads the configuration.\n");
}

int
main(int argc, char **argv)
{
	const char *conf = DEFAULT_CONF;
	int test = 0, opt;

	while ((opt = getopt(argc, argv, "c:ftVh")) != -1) {
		switch (opt) {
		case 'c':
			conf = optarg;
			break;
		case 'f':
			break;
		case 't':
			test = 1;
			break;
		case 'V':
			printf("ksockd %s (plugin ABI %d)\n", PACKAGE_VERSION,
			       KS_PLUGIN_ABI);
			return EXIT_SUCCESS;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_FAILURE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ksockd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_FAILURE;
	}
	if (test) {
		ks_log_init(KS_LOG_PLAIN, KS_LOG_INFO);
		return ks_master_check(conf);
	}
	ks_log_init(KS_LOG_TEXT, KS_LOG_INFO);
	return ks_master_run(conf, argv);
}
