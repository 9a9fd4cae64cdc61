/*
 * libFuzzer target for the configuration parser: each input is written to
 * one temporary file and loaded with ks_conf_load (no plugins are loaded).
 * Run with LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp: libconfig 1.5
 * leaks on some syntax errors (scripts/ci.sh and `make fuzz` do that).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static int fd = -1;

static void
quiet(int level, const char *msg, void *ud)
{
}

static void
remove_file(void)
{
	if (fd >= 0)
		unlink(path);
}

static int
rewrite(const uint8_t *data, size_t size)
{
	ssize_t n;

	if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
		return -1;
	while (size > 0) {
		n = write(fd, data, size);
		if (n <= 0)
			return -1;
		data += n;
		size -= (size_t)n;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ks_conf *conf;

	if (fd < 0) {
		snprintf(path, sizeof(path), "/tmp/ks_fuzz_conf_XXXXXX");
		fd = mkstemp(path);
		if (fd < 0)
			abort();
		atexit(remove_file);
		ks_log_set_sink(quiet, NULL);
	}
	/* @include could read any file (/dev/zero never ends): not what this
	 * target is about. */
	if (memmem(data, size, "@include", 8) != NULL)
		return 0;
	if (rewrite(data, size) != 0)
		abort();
	if (ks_conf_load(path, &conf) == 0)
		ks_conf_unref(conf);
	return 0;
}
