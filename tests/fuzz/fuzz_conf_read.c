/*
 * Differential libFuzzer target for the configuration reader: each input is
 * written to a file and read with ks_conf_read; when it holds no @include
 * and no NUL byte, libconfig 1.5's config_read_string parses it too, and the
 * two must agree:
 *   - what ks_conf_read accepts, libconfig accepts;
 *   - what libconfig accepts, ks_conf_read accepts, unless every message it
 *     gave is one of its deliberate limits (integers libconfig would
 *     truncate, long strings, deep nesting, huge groups);
 *   - what both reject, ks_conf_read rejects for a reason of libconfig's
 *     (not only for the value limits, which never stop the parse).
 * Whatever it accepts, with includes or not, libconfig must parse the
 * combined text without opening a file (an include_dir that does not exist
 * makes any @include it would act on fail); without includes the text and
 * the line map must be the input's own; with includes, libconfig reading
 * the file itself (following them) must build the same tree.
 *
 * Includes: INC_DIR (a fixed name, so that seeds can name its files) holds
 * small files with the awkward endings (no newline, an open comment, an
 * open string, an open group), one that includes itself, a directory and a
 * FIFO.  Seeds in tests/fuzz/corpus/fuzz_conf_read use them.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_read.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libconfig's own leak on a syntax error is suppressed by
 * tests/fuzz/lsan.supp (LSAN_OPTIONS, from scripts/ci.sh and make fuzz):
 * one list of the known leaks. */

#define INC_DIR "/tmp/ks_fuzz_conf_read.inc"

static const struct {
	const char *name, *text;
} inc_files[] = {
	{"ok.conf", "x = 1;\n"},
	{"dup.conf", "x = 2;\n"},
	{"nonl.conf", "y = [1, 2]"},
	{"tail.conf", "t = \"x\""},
	{"nested.conf", "@include \"" INC_DIR "/ok.conf\"\nz = 2;\n"},
	{"self.conf", "@include \"" INC_DIR "/self.conf\"\n"},
	{"open.conf", "g = {\n"},
	{"close.conf", "};\n"},
	{"str.conf", "s = \"abc"},
	{"comment.conf", "/* open"},
	{"hash.conf", "a = 1; # no newline"},
	{"empty.conf", ""},
	{"big.conf", "b = 4294967297;\n"},
};

static char path[64];
static int fd = -1;

/* Creates INC_DIR and its files, unless something else holds the name. */
static void
make_inc_dir(void)
{
	char p[128];
	struct stat st;
	size_t i;
	FILE *fp;

	if (mkdir(INC_DIR, 0700) != 0 && errno != EEXIST)
		return;
	if (lstat(INC_DIR, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != geteuid())
		return;
	for (i = 0; i < sizeof(inc_files) / sizeof(inc_files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", INC_DIR, inc_files[i].name);
		fp = fopen(p, "w");
		if (fp == NULL)
			continue;
		fputs(inc_files[i].text, fp);
		fclose(fp);
	}
	mkdir(INC_DIR "/dir", 0700);
	mkfifo(INC_DIR "/fifo", 0600);
}

/* What ks_conf_read said, by kind. */
static int n_value, n_nesting, n_cap, n_other;

static int
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Messages are "PATH:LINE: message" (no include is followed here but the
 * input's own file, and its name holds no ':'), or "PATH: message". */
static void
sink(int level, const char *msg, void *ud)
{
	const char *m = msg;

	(void)level;
	(void)ud;
	if (starts(m, path) && m[strlen(path)] == ':') {
		m += strlen(path) + 1;
		m += strspn(m, "0123456789");
		if (*m == ':')
			m++;
		m += *m == ' ';
	}
	if ((starts(m, "integer ") && strstr(m, " does not fit in ")) ||
	    starts(m, "string longer than ") ||
	    starts(m, "too many settings in groups for libconfig"))
		n_value++;
	else if (starts(m, "groups, lists and arrays nested deeper than "))
		n_nesting++;
	else if (starts(m, "100 errors, giving up"))
		n_cap++;
	else
		n_other++;
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

/* libconfig on s, never following an @include. */
static int
libconfig_accepts(const char *s)
{
	config_t cfg;
	int ok;

	config_init(&cfg);
	config_set_include_dir(&cfg, "/nonexistent/ks-fuzz");
	ok = config_read_string(&cfg, s);
	config_destroy(&cfg);
	return ok;
}

/* The tree libconfig builds, as config_write prints it (malloc'd), or NULL
 * when it rejects.  file: config_read_file, else config_read_string(s). */
static char *
libconfig_tree(const char *file, const char *s)
{
	config_t cfg;
	char *out = NULL;
	size_t len;
	FILE *fp;
	int ok;

	config_init(&cfg);
	ok = file != NULL ? config_read_file(&cfg, file)
			  : config_read_string(&cfg, s);
	if (ok) {
		fp = open_memstream(&out, &len);
		if (fp == NULL)
			abort();
		config_write(&cfg, fp);
		fclose(fp);
	}
	config_destroy(&cfg);
	return out;
}

static void
check_same_tree(const struct ks_conf_text *t)
{
	char *a = libconfig_tree(NULL, ks_conf_text_str(t));
	char *b = libconfig_tree(path, NULL);

	if (a == NULL || b == NULL || strcmp(a, b) != 0)
		abort();
	free(a);
	free(b);
}

static void
check_identity(const struct ks_conf_text *t, const char *in)
{
	const char *file;
	int line = 1, l;
	const char *p;

	if (strcmp(ks_conf_text_str(t), in) != 0)
		abort();
	for (p = in;; p++) {
		ks_conf_text_where(t, line, &file, &l);
		if (strcmp(file, path) != 0 || l != line)
			abort();
		if (*p == '\0')
			break;
		line += *p == '\n';
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ks_conf_text *t = NULL;
	int ours, theirs, plain;
	char *in;

	if (fd < 0) {
		snprintf(path, sizeof(path), "/tmp/ks_fuzz_conf_read_XXXXXX");
		fd = mkstemp(path);
		if (fd < 0)
			abort();
		atexit(remove_file);
		ks_log_set_sink(sink, NULL);
		make_inc_dir();
	}
	if (rewrite(data, size) != 0)
		abort();
	n_value = n_nesting = n_cap = n_other = 0;
	ours = ks_conf_read(path, &t) == 0;
	if (ours != (t != NULL) ||
	    (!ours && n_value + n_nesting + n_other == 0))
		abort(); /* a rejection always says why */
	if (ours && !libconfig_accepts(ks_conf_text_str(t)))
		abort();
	plain = memmem(data, size, "@include", 8) == NULL &&
		memchr(data, '\0', size) == NULL;
	/* every file it read was a regular file: libconfig may open them */
	if (ours && !plain)
		check_same_tree(t);
	if (plain) {
		in = malloc(size + 1);
		if (in == NULL)
			abort();
		memcpy(in, data, size);
		in[size] = '\0';
		theirs = libconfig_accepts(in);
		if (ours)
			check_identity(t, in);
		if (!ours && theirs && n_other > 0)
			abort(); /* rejected what libconfig reads as written */
		if (!ours && !theirs && n_other + n_nesting + n_cap == 0)
			abort(); /* missed what libconfig rejects */
		free(in);
	}
	ks_conf_text_free(t);
	return 0;
}
