/*
 * The configuration reader: valid texts, the line map across includes,
 * every error class with its exact "FILE:LINE: message", the file hazards
 * (directory, FIFO, device, include bomb), and a differential table against
 * libconfig's own config_read_string.  Each test runs in a fresh temporary
 * directory, which is also the current directory (includes are relative to
 * it); FILE in an expected message stands for that directory's
 * ksockd.conf, DIR for the directory.
 */
#include "config.h"

#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_read.h"
#include "fixture.h"
#include "log.h"
#include "suites.h"
#include "util.h"

static char cwd[512];

static void
setup(void)
{
	fx_setup_dir("confread");
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(fx_dir), 0);
}

static void
teardown(void)
{
	ck_assert_int_eq(chdir(cwd), 0);
	fx_teardown_dir();
}

/* Writes len bytes as fx_dir/name, unexpanded. */
static void
write_raw(const char *name, const char *data, size_t len)
{
	FILE *fp = fopen(name, "w");

	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(data, 1, len, fp), len);
	ck_assert_int_eq(fclose(fp), 0);
}

static void
show_msgs(void)
{
	int i;

	for (i = 0; i < fx_nmsgs && i < FX_MAX_MSGS; i++)
		fprintf(stderr, "message: %s\n", fx_msgs[i]);
}

/* Reads `path`: it must succeed without a message. */
static struct ks_conf_text *
read_ok(const char *path)
{
	struct ks_conf_text *t = NULL;

	fx_nmsgs = 0;
	if (ks_conf_read(path, &t) != 0) {
		show_msgs();
		ck_abort_msg("ks_conf_read %s failed", path);
	}
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(fx_nmsgs, 0);
	return t;
}

/* Checks the messages logged against the NULL-terminated list in ap
 * (FILE and DIR expanded), exactly and in order. */
static void
expect_msgs(va_list ap)
{
	char want[2048];
	const char *m;
	int i = 0;

	while ((m = va_arg(ap, const char *)) != NULL) {
		fx_expand(m, want, sizeof(want));
		if (i >= fx_nmsgs)
			show_msgs();
		ck_assert_msg(i < fx_nmsgs, "missing message: %s", want);
		ck_assert_str_eq(fx_msgs[i], want);
		i++;
	}
	for (; i < fx_nmsgs && i < FX_MAX_MSGS; i++)
		ck_abort_msg("unexpected message: %s", fx_msgs[i]);
	ck_assert_int_eq(fx_nmsgs, i);
}

/* Reads `path`, expects failure and exactly the messages given. */
static void
path_fails(const char *path, ...)
{
	struct ks_conf_text *t = (struct ks_conf_text *)1;
	va_list ap;

	fx_nmsgs = 0;
	ck_assert_int_eq(ks_conf_read(path, &t), -1);
	ck_assert_ptr_null(t);
	va_start(ap, path);
	expect_msgs(ap);
	va_end(ap);
}

/* Writes text as fx_path and expects it to fail with the messages given. */
static void
text_fails(const char *text, ...)
{
	struct ks_conf_text *t = (struct ks_conf_text *)1;
	va_list ap;

	fx_write_file("ksockd.conf", text);
	fx_nmsgs = 0;
	ck_assert_int_eq(ks_conf_read(fx_path, &t), -1);
	ck_assert_ptr_null(t);
	va_start(ap, text);
	expect_msgs(ap);
	va_end(ap);
}

static void
expect_where(const struct ks_conf_text *t, int line, const char *file,
	     int file_line)
{
	const char *f;
	int l;

	ks_conf_text_where(t, line, &f, &l);
	ck_assert_msg(strcmp(f, file) == 0 && l == file_line,
		      "line %d: %s:%d, want %s:%d", line, f, l, file,
		      file_line);
}

/* The setting at `key` in the combined text, parsed by libconfig: where
 * the line map says it came from. */
static void
expect_setting_at(const struct ks_conf_text *t, const config_t *cfg,
		  const char *key, const char *file, int file_line)
{
	const config_setting_t *s = config_lookup(cfg, key);

	ck_assert_msg(s != NULL, "no setting %s", key);
	expect_where(t, (int)config_setting_source_line(s), file, file_line);
}

static void
parse_text(const struct ks_conf_text *t, config_t *cfg)
{
	config_init(cfg);
	if (!config_read_string(cfg, ks_conf_text_str(t)))
		ck_abort_msg("libconfig: %d: %s", config_error_line(cfg),
			     config_error_text(cfg));
}

/* ---- valid configurations ---- */

START_TEST(test_valid)
{
	static const char text[] =
		"# every scalar kind\n"
		"i = -17; i64 = 5000000000L; h = 0x7fffffff; h64 = 0xffL;\n"
		"f = 1.5e3; f2 = .5; f3 = -.; b = TRUE; b2 = false;\n"
		"s = \"a\\tb\\x41\\\"\\q\" /* comment */ \"c\"\n"
		"  \"d\";\n"
		"min = -2147483648; max64 = 9223372036854775807L;\n"
		"// nested\n"
		"g : { h = { k = [1, 0x2, 3]; e = []; }, l = (); },\n"
		"l = ( 1, \"x\", [true, false], { m = 1; }, ( 2.0 ) );\n"
		"*star-name_1 = 1 after = 2\n"
		"/* a block\n   comment */\n";
	struct ks_conf_text *t;
	config_t cfg;
	long long v;
	int iv;

	fx_write_file("ksockd.conf", text);
	t = read_ok(fx_path);
	ck_assert_str_eq(ks_conf_text_str(t), text);
	parse_text(t, &cfg);
	ck_assert(config_lookup_int(&cfg, "i", &iv) && iv == -17);
	ck_assert(config_lookup_int64(&cfg, "i64", &v) && v == 5000000000LL);
	ck_assert(config_lookup_int(&cfg, "h", &iv) && iv == 0x7fffffff);
	ck_assert(config_lookup_int(&cfg, "min", &iv) && iv == -2147483647 - 1);
	ck_assert_str_eq(config_setting_get_string(config_lookup(&cfg, "s")),
			 "a\tbA\"\\qcd");
	ck_assert_int_eq(config_setting_length(config_lookup(&cfg, "l")), 5);
	ck_assert(config_lookup_int(&cfg, "g.h.k.[1]", &iv) && iv == 2);
	expect_setting_at(t, &cfg, "g.h", fx_path, 8);
	expect_setting_at(t, &cfg, "after", fx_path, 10);
	expect_where(t, 12, fx_path, 12);
	config_destroy(&cfg);
	ks_conf_text_free(t);
}
END_TEST

START_TEST(test_empty)
{
	struct ks_conf_text *t;

	fx_write_file("ksockd.conf", "");
	t = read_ok(fx_path);
	ck_assert_str_eq(ks_conf_text_str(t), "");
	expect_where(t, 1, fx_path, 1);
	ks_conf_text_free(t);
}
END_TEST

/* Includes relative to the current directory, one inside a group, one
 * followed by more on its line, one nested; every combined line maps back
 * to its file and line. */
START_TEST(test_includes)
{
	struct ks_conf_text *t;
	config_t cfg;
	int iv;

	ck_assert_int_eq(mkdir("sub", 0700), 0);
	fx_write_file("sub/a.conf", "a = 1;\n"
				    "@include \"sub/b.conf\"\n"
				    "c = 3;\n");
	fx_write_file("sub/b.conf", "b = 2;"); /* no newline */
	fx_write_file("sub/members.conf", "  x = 1;\n  y = 2;\n");
	fx_write_file("sub/tail.conf", "z = \"z\"");
	fx_write_file("ksockd.conf",
		      "top = 0;\n"
		      "@include \"sub/a.conf\"\n"
		      "g = {\n"
		      "  @include \"sub/members.conf\"\n"
		      "};\n"
		      "\t@include \"sub/tail.conf\" \"more\"; w = 4;\n"
		      "end = 5;\n");
	t = read_ok(fx_path);
	ck_assert_str_eq(ks_conf_text_str(t), "top = 0;\n"
					      "a = 1;\n"
					      "b = 2;\n"
					      "\n"
					      "c = 3;\n"
					      "\n"
					      "g = {\n"
					      "  x = 1;\n"
					      "  y = 2;\n"
					      "\n"
					      "};\n"
					      "z = \"z\"\n"
					      " \"more\"; w = 4;\n"
					      "end = 5;\n");
	expect_where(t, 1, fx_path, 1);
	expect_where(t, 2, "sub/a.conf", 1);
	expect_where(t, 3, "sub/b.conf", 1);
	expect_where(t, 4, "sub/a.conf", 2);
	expect_where(t, 5, "sub/a.conf", 3);
	expect_where(t, 6, fx_path, 2);
	expect_where(t, 7, fx_path, 3);
	expect_where(t, 8, "sub/members.conf", 1);
	expect_where(t, 9, "sub/members.conf", 2);
	expect_where(t, 10, fx_path, 4);
	expect_where(t, 11, fx_path, 5);
	expect_where(t, 12, "sub/tail.conf", 1);
	expect_where(t, 13, fx_path, 6);
	expect_where(t, 14, fx_path, 7);
	expect_where(t, 15, fx_path, 8); /* the end of the file */
	parse_text(t, &cfg);
	expect_setting_at(t, &cfg, "b", "sub/b.conf", 1);
	expect_setting_at(t, &cfg, "c", "sub/a.conf", 3);
	expect_setting_at(t, &cfg, "g.y", "sub/members.conf", 2);
	expect_setting_at(t, &cfg, "w", fx_path, 6);
	expect_setting_at(t, &cfg, "end", fx_path, 7);
	ck_assert_str_eq(config_setting_get_string(config_lookup(&cfg, "z")),
			 "zmore");
	ck_assert(config_lookup_int(&cfg, "g.x", &iv) && iv == 1);
	config_destroy(&cfg);
	ks_conf_text_free(t);
}
END_TEST

/* An include path with its two escapes; an absolute path; an empty file;
 * a relative top path. */
START_TEST(test_include_names)
{
	struct ks_conf_text *t;
	char text[512];

	fx_write_file("q\"b\\s.conf", "q = 1;\n");
	fx_write_file("empty.conf", "");
	snprintf(text, sizeof(text),
		 "@include \"q\\\"b\\\\s.conf\"\n"
		 "@include \"%s/empty.conf\"\n"
		 "r = 2;\n",
		 fx_dir);
	write_raw("ksockd.conf", text, strlen(text));
	t = read_ok("ksockd.conf");
	ck_assert_str_eq(ks_conf_text_str(t), "q = 1;\n\n\nr = 2;\n");
	expect_where(t, 1, "q\"b\\s.conf", 1);
	expect_where(t, 2, "ksockd.conf", 1);
	expect_where(t, 3, "ksockd.conf", 2);
	expect_where(t, 4, "ksockd.conf", 3);
	ks_conf_text_free(t);
}
END_TEST

/* ---- syntax ---- */

START_TEST(test_syntax_errors)
{
	text_fails("a = 1;\nb 2;\n",
		   "FILE:2: syntax error near '2' (expected '=' or ':' after "
		   "the name)",
		   NULL);
	text_fails("a = [1, 2,];\n",
		   "FILE:1: syntax error near ']' (expected a scalar value)",
		   NULL);
	text_fails("a = (1,\n);\n",
		   "FILE:2: syntax error near ')' (expected a value)", NULL);
	text_fails("a = [1, (2)];\n",
		   "FILE:1: syntax error near '(' (an array holds scalar "
		   "values only; a list ( ) holds any)",
		   NULL);
	text_fails("a = {\n  b = 1;\n",
		   "FILE:3: syntax error at end of file (the '{' at FILE:1 is "
		   "not closed)",
		   NULL);
	text_fails("a = 1;\n}\n",
		   "FILE:2: syntax error near '}' (expected a setting name)",
		   NULL);
	text_fails("a = ( 1 ];\n",
		   "FILE:1: syntax error near ']' (expected ',' or ')')", NULL);
	text_fails("a = \"x\"; \"y\";\n",
		   "FILE:1: syntax error near '\"y\"' (expected a setting "
		   "name)",
		   NULL);
	text_fails("a = 1;\n b = \xc3\xa9;\n",
		   "FILE:2: syntax error near '\\xc3' (expected a value)",
		   NULL);
	text_fails("a = 1; @include \"x\"\n",
		   "FILE:1: syntax error near '@' (@include must start a line "
		   "and be followed by blanks and a quoted file name)",
		   NULL);
	/* libconfig's comment rule needs a newline after the comment */
	text_fails("a = 1; # no newline",
		   "FILE:1: syntax error near '#' (expected a setting name)",
		   NULL);
	text_fails("a = 1;\nb =",
		   "FILE:2: syntax error at end of file (expected a value)",
		   NULL);
	text_fails("a = 0x;\n",
		   "FILE:1: syntax error near ';' (expected '=' or ':' after "
		   "the name)",
		   NULL);
	text_fails("a = 1.2.3;\n",
		   "FILE:1: syntax error near '.3' (expected a setting name)",
		   NULL);
}
END_TEST

START_TEST(test_duplicates)
{
	text_fails("a = 1;\n"
		   "g = { a = 2; b = 1; h = { b = 3; }; b = 4; };\n"
		   "l = ( { a = 1; }, { a = 2; a = 3; } );\n"
		   "a = 5;\n",
		   "FILE:2: duplicate setting \"b\" (first set at FILE:2)",
		   "FILE:3: duplicate setting \"a\" (first set at FILE:3)",
		   "FILE:4: duplicate setting \"a\" (first set at FILE:1)",
		   NULL);
	/* names are case-sensitive */
	fx_write_file("ok.conf", "a = 1; A = 2;\n");
	ks_conf_text_free(read_ok("ok.conf"));
}
END_TEST

START_TEST(test_array_types)
{
	text_fails("a = [1, 0x2, 3L];\n"
		   "b = [1L, 0x2L, 3];\n"
		   "c = [1.0, 1];\n"
		   "d = [\"x\" \"y\", true];\n"
		   "e = [true, \"x\"];\n"
		   "f = ( 1, 1L, \"x\", [1] );\n",
		   "FILE:1: mismatched element type in array (a 64-bit integer "
		   "after an integer; an array holds one type, a list ( ) any)",
		   "FILE:2: mismatched element type in array (an integer after "
		   "a 64-bit integer; an array holds one type, a list ( ) "
		   "any)",
		   "FILE:3: mismatched element type in array (an integer after "
		   "a float; an array holds one type, a list ( ) any)",
		   "FILE:4: mismatched element type in array (a boolean after "
		   "a string; an array holds one type, a list ( ) any)",
		   "FILE:5: mismatched element type in array (a string after "
		   "a boolean; an array holds one type, a list ( ) any)",
		   NULL);
}
END_TEST

/* ---- values ---- */

START_TEST(test_integers)
{
	struct ks_conf_text *t;

	text_fails("port = 4294967297;\n"
		   "a = 0x100000000;\n"
		   "b = 2147483648;\n"
		   "c = -2147483649;\n"
		   "d = 9223372036854775808L;\n"
		   "e = 0xffffffff;\n"
		   "f = -9223372036854775809LL;\n"
		   "g = 0x8000000000000000L;\n"
		   "h = 99999999999999999999;\n"
		   "i = [1, 0x80000000];\n",
		   "FILE:1: integer 4294967297 does not fit in 32 bits "
		   "(libconfig would read it as 1); write 4294967297L for a "
		   "64-bit value",
		   "FILE:2: integer 0x100000000 does not fit in 32 bits "
		   "(libconfig would read it as 0); write 0x100000000L for a "
		   "64-bit value",
		   "FILE:3: integer 2147483648 does not fit in 32 bits "
		   "(libconfig would read it as -2147483648); write "
		   "2147483648L for a 64-bit value",
		   "FILE:4: integer -2147483649 does not fit in 32 bits "
		   "(libconfig would read it as 2147483647); write "
		   "-2147483649L for a 64-bit value",
		   "FILE:5: integer 9223372036854775808L does not fit in 64 "
		   "bits (libconfig would read it as 9223372036854775807)",
		   "FILE:6: integer 0xffffffff does not fit in 32 bits "
		   "(libconfig would read it as -1); write 0xffffffffL for a "
		   "64-bit value",
		   "FILE:7: integer -9223372036854775809LL does not fit in 64 "
		   "bits (libconfig would read it as -9223372036854775808)",
		   "FILE:8: integer 0x8000000000000000L does not fit in 64 "
		   "bits (libconfig would read it as -9223372036854775808)",
		   "FILE:9: integer 99999999999999999999 does not fit in 32 "
		   "bits (libconfig would read it as -1), nor in 64 bits",
		   "FILE:10: integer 0x80000000 does not fit in 32 bits "
		   "(libconfig would read it as -2147483648); write "
		   "0x80000000L for a 64-bit value",
		   NULL);
	/* the limits themselves are fine */
	fx_write_file("ok.conf", "a = 2147483647; b = -2147483648;\n"
				 "c = 0x7fffffff; d = 0x0000000000001;\n"
				 "e = 9223372036854775807L;\n"
				 "f = -9223372036854775808L;\n"
				 "g = 0x7fffffffffffffffL; h = 4294967297L;\n");
	t = read_ok("ok.conf");
	ks_conf_text_free(t);
}
END_TEST

START_TEST(test_long_strings)
{
	size_t n = 100 << 10, i;
	char *text = malloc(n + 64);
	struct ks_conf_text *t;

	ck_assert_ptr_nonnull(text);
	/* exactly 64 KiB, in two adjacent parts: fine */
	i = (size_t)sprintf(text, "a = \"");
	memset(text + i, 'x', 32 << 10);
	i += 32 << 10;
	i += (size_t)sprintf(text + i, "\"\n\"");
	memset(text + i, 'y', 32 << 10);
	i += 32 << 10;
	i += (size_t)sprintf(text + i, "\";\n");
	write_raw("ok.conf", text, i);
	t = read_ok("ok.conf");
	ks_conf_text_free(t);
	/* 100 KiB on line 2, then one byte over 64 KiB in two parts */
	i = (size_t)sprintf(text, "a = 1;\nb = \"");
	memset(text + i, 'x', n);
	i += n;
	i += (size_t)sprintf(text + i, "\";\n");
	write_raw("ksockd.conf", text, i);
	path_fails(fx_path, "FILE:2: string longer than 64 KiB (102400 bytes)",
		   NULL);
	i = (size_t)sprintf(text, "c = [\"");
	memset(text + i, 'x', 32 << 10);
	i += 32 << 10;
	i += (size_t)sprintf(text + i, "\" \"\\x41");
	memset(text + i, 'y', (32 << 10) - 1);
	i += (32 << 10) - 1;
	i += (size_t)sprintf(text + i, "\\n\"];\n");
	write_raw("ksockd.conf", text, i);
	path_fails(fx_path, "FILE:1: string longer than 64 KiB (65537 bytes)",
		   NULL);
	free(text);
}
END_TEST

START_TEST(test_nesting)
{
	char text[512];
	size_t i, n;
	struct ks_conf_text *t;

	/* 100 levels are fine */
	n = (size_t)sprintf(text, "a =\n");
	for (i = 0; i < KS_CONF_MAX_NESTING; i++)
		text[n++] = '(';
	for (i = 0; i < KS_CONF_MAX_NESTING; i++)
		text[n++] = ')';
	text[n] = '\0';
	write_raw("ok.conf", text, n);
	t = read_ok("ok.conf");
	ks_conf_text_free(t);
	/* the 101st opener is one too many */
	n = (size_t)sprintf(text, "a =\n");
	for (i = 0; i < KS_CONF_MAX_NESTING; i++)
		text[n++] = '(';
	n += (size_t)sprintf(text + n, "[1]");
	for (i = 0; i < KS_CONF_MAX_NESTING; i++)
		text[n++] = ')';
	write_raw("ksockd.conf", text, n);
	path_fails(fx_path,
		   "FILE:2: groups, lists and arrays nested deeper than 100 "
		   "levels",
		   NULL);
}
END_TEST

/* libconfig's duplicate check is quadratic: 8192 settings in one group
 * are the most it may be given. */
START_TEST(test_group_size)
{
	size_t n = KS_CONF_MAX_GROUP + 1, len = 0, i;
	char *text = malloc(n * 16);
	struct ks_conf_text *t;

	ck_assert_ptr_nonnull(text);
	for (i = 0; i < n - 1; i++)
		len += (size_t)sprintf(text + len, "a%zu = 1;\n", i);
	write_raw("ok.conf", text, len);
	t = read_ok("ok.conf");
	ks_conf_text_free(t);
	len += (size_t)sprintf(text + len, "b = 1;\nl = (1, 2, 3);\n");
	write_raw("ksockd.conf", text, len);
	free(text);
	path_fails(fx_path,
		   "FILE:8193: too many settings in groups for libconfig, "
		   "which compares each name with every earlier one in its "
		   "group (at most 33554432 comparisons in all: one group of "
		   "8192 settings; lists cost nothing)",
		   NULL);
}
END_TEST

/* ---- files ---- */

START_TEST(test_nul_byte)
{
	write_raw("ksockd.conf", "a = 1;\nb = \"x\0y\";\n", 18);
	path_fails(fx_path, "FILE:2: NUL byte (a configuration file is text)",
		   NULL);
	write_raw("inc.conf", "\n\n\0", 3);
	text_fails("@include \"inc.conf\"\n",
		   "inc.conf:3: NUL byte (a configuration file is text)", NULL);
}
END_TEST

START_TEST(test_top_file)
{
	path_fails("missing.conf", "missing.conf: No such file or directory",
		   NULL);
	path_fails(fx_dir, "DIR: is a directory, not a regular file", NULL);
	ck_assert_int_eq(mkfifo("fifo", 0600), 0);
	path_fails("fifo", "fifo: is a FIFO, not a regular file", NULL);
	path_fails("/dev/zero",
		   "/dev/zero: is a character device, not a regular file",
		   NULL);
}
END_TEST

START_TEST(test_include_hazards)
{
	ck_assert_int_eq(mkdir("dir", 0700), 0);
	ck_assert_int_eq(mkfifo("fifo", 0600), 0);
	text_fails("a = 1;\n"
		   "@include \"dir\"\n"
		   "@include \"fifo\"\n"
		   "@include \"/dev/zero\"\n"
		   "@include \"missing.conf\"\n"
		   "@include \"\"\n"
		   "b = 2;\n"
		   "c = 4294967296;\n",
		   "FILE:2: cannot include \"dir\": is a directory, not a "
		   "regular file",
		   "FILE:3: cannot include \"fifo\": is a FIFO, not a regular "
		   "file",
		   "FILE:4: cannot include \"/dev/zero\": is a character "
		   "device, not a regular file",
		   "FILE:5: cannot include \"missing.conf\": No such file or "
		   "directory",
		   "FILE:6: cannot include \"\": No such file or directory",
		   "FILE:8: integer 4294967296 does not fit in 32 bits "
		   "(libconfig would read it as 0); write 4294967296L for a "
		   "64-bit value",
		   NULL);
}
END_TEST

START_TEST(test_include_unreadable)
{
	if (geteuid() == 0)
		return; /* root reads anything */
	fx_write_file("secret.conf", "a = 1;\n");
	ck_assert_int_eq(chmod("secret.conf", 0), 0);
	text_fails("@include \"secret.conf\"\n",
		   "FILE:1: cannot include \"secret.conf\": Permission denied",
		   NULL);
}
END_TEST

START_TEST(test_include_depth)
{
	char name[32], text[64];
	int i;

	/* d0 includes d1 ... includes d11: d10 is the 10th level */
	for (i = 0; i <= 11; i++) {
		snprintf(name, sizeof(name), "d%d.conf", i);
		snprintf(text, sizeof(text), "@include \"d%d.conf\"\n", i + 1);
		fx_write_file(name, i < 11 ? text : "x = 1;\n");
	}
	path_fails("d0.conf",
		   "d10.conf:1: cannot include \"d11.conf\": includes nested "
		   "more than 10 deep",
		   NULL);
	fx_write_file("d10.conf", "y = 1;\n");
	ks_conf_text_free(read_ok("d0.conf"));
	/* a cycle is found on the first repetition */
	fx_write_file("c1.conf", "@include \"c2.conf\"\n");
	fx_write_file("c2.conf", "\n@include \"./c1.conf\"\n");
	path_fails("c1.conf",
		   "c2.conf:2: cannot include \"./c1.conf\": it is already "
		   "being read (an include cycle)",
		   NULL);
}
END_TEST

/* Each level includes the next twice, the last level 64 KiB: 2^10 times
 * that would be 64 MiB.  It stops once at 16 MiB, the 256th leaf. */
START_TEST(test_include_bomb)
{
	char name[32], text[128];
	char *leaf = malloc(64 << 10);
	int i;

	ck_assert_ptr_nonnull(leaf);
	memset(leaf, '#', 64 << 10);
	leaf[(64 << 10) - 1] = '\n';
	write_raw("leaf.conf", leaf, 64 << 10);
	free(leaf);
	for (i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "l%d.conf", i);
		if (i < 9)
			snprintf(
				text, sizeof(text),
				"@include \"l%d.conf\"\n@include \"l%d.conf\"\n",
				i + 1, i + 1);
		else
			snprintf(text, sizeof(text),
				 "@include \"leaf.conf\"\n@include "
				 "\"leaf.conf\"\n");
		fx_write_file(name, text);
	}
	path_fails("l0.conf",
		   "l9.conf:2: cannot include \"leaf.conf\": the configuration "
		   "exceeds 16 MiB with its includes",
		   NULL);
}
END_TEST

START_TEST(test_include_count)
{
	size_t n = KS_CONF_MAX_INCLUDES + 1, len = 0, i;
	char *text = malloc(n * 24);

	ck_assert_ptr_nonnull(text);
	fx_write_file("empty.conf", "");
	for (i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "@include \"empty.conf\"\n");
	write_raw("ksockd.conf", text, len);
	free(text);
	path_fails(fx_path,
		   "FILE:1025: cannot include \"empty.conf\": more than 1024 "
		   "includes",
		   NULL);
}
END_TEST

START_TEST(test_file_size)
{
	size_t n = KS_CONF_MAX_FILE_SIZE + 1;
	char *big = malloc(n);

	ck_assert_ptr_nonnull(big);
	memset(big, '\n', n);
	write_raw("big.conf", big, n);
	write_raw("max.conf", big, n - 1);
	free(big);
	path_fails("big.conf", "big.conf: larger than 4 MiB", NULL);
	text_fails("@include \"max.conf\"\n@include \"big.conf\"\n",
		   "FILE:2: cannot include \"big.conf\": larger than 4 MiB",
		   NULL);
}
END_TEST

/* What libconfig would carry from an included file into the including
 * one is an error; so are the directive's own mistakes. */
START_TEST(test_include_syntax)
{
	fx_write_file("str.conf", "s = \"open\n");
	fx_write_file("comment.conf", "\n/* open\n");
	fx_write_file("hash.conf", "h = 1; # no newline");
	text_fails("@include \"comment.conf\"\n"
		   "@include \"ok\\n.conf\"\n"
		   "a = 1;\n"
		   "@include \"str.conf\"\n"
		   "b = 4294967296;\n"
		   "@include \"unterminated\n",
		   "comment.conf:2: unterminated comment (an included file "
		   "must end outside comments)",
		   "FILE:2: @include: a backslash escapes only \\ or \" in a "
		   "file name",
		   "str.conf:1: unterminated string (an included file must "
		   "end outside strings)",
		   "FILE:5: integer 4294967296 does not fit in 32 bits "
		   "(libconfig would read it as 0); write 4294967296L for a "
		   "64-bit value",
		   "FILE:6: unterminated @include", NULL);
	text_fails("@include \"hash.conf\"\n",
		   "hash.conf:1: syntax error near '#' (expected a setting "
		   "name)",
		   NULL);
}
END_TEST

/* A file of '#' without a newline is a syntax error at its first byte and
 * then only lexed, in linear time (the tcase timeout would catch
 * quadratic: minutes). */
START_TEST(test_no_newline)
{
	size_t n = KS_CONF_MAX_FILE_SIZE;
	char *text = malloc(n);

	ck_assert_ptr_nonnull(text);
	memset(text, '#', n);
	memcpy(text, "a = 1;", 6);
	write_raw("ksockd.conf", text, n);
	path_fails(fx_path,
		   "FILE:1: syntax error near '#' (expected a setting name)",
		   NULL);
	memset(text, '/', n);
	write_raw("ksockd.conf", text, n);
	path_fails(fx_path,
		   "FILE:1: syntax error near '/' (expected a setting name)",
		   NULL);
	free(text);
}
END_TEST

/* Errors go on being reported after the first, in every file. */
START_TEST(test_all_errors)
{
	fx_write_file("inc.conf", "x = 0x100000000;\n"
				  "x = 2;\n");
	text_fails("a = 1;\n"
		   "@include \"inc.conf\"\n"
		   "b = 4294967297;\n"
		   "a = 3;\n"
		   "c = [1, 1L];\n"
		   "d = ;\n"
		   "e = 2147483648;\n"
		   "@include \"missing\"\n",
		   "inc.conf:1: integer 0x100000000 does not fit in 32 bits "
		   "(libconfig would read it as 0); write 0x100000000L for a "
		   "64-bit value",
		   "inc.conf:2: duplicate setting \"x\" (first set at "
		   "inc.conf:1)",
		   "FILE:3: integer 4294967297 does not fit in 32 bits "
		   "(libconfig would read it as 1); write 4294967297L for a "
		   "64-bit value",
		   "FILE:4: duplicate setting \"a\" (first set at FILE:1)",
		   "FILE:5: mismatched element type in array (a 64-bit integer "
		   "after an integer; an array holds one type, a list ( ) any)",
		   "FILE:6: syntax error near ';' (expected a value)",
		   "FILE:7: integer 2147483648 does not fit in 32 bits "
		   "(libconfig would read it as -2147483648); write "
		   "2147483648L for a 64-bit value",
		   "FILE:8: cannot include \"missing\": No such file or "
		   "directory",
		   NULL);
}
END_TEST

/* More messages than the fixture keeps: count them, keep the last. */
static int cap_n;
static char cap_last[1024];

static void
cap_sink(int level, const char *msg, void *ud)
{
	(void)level;
	(void)ud;
	cap_n++;
	snprintf(cap_last, sizeof(cap_last), "%s", msg);
}

START_TEST(test_error_cap)
{
	struct ks_conf_text *t = NULL;
	char *text = malloc(200 * 32), want[256];
	size_t len = 0;
	int i;

	ck_assert_ptr_nonnull(text);
	for (i = 0; i < 200; i++)
		len += (size_t)sprintf(text + len, "a%d = 4294967296;\n", i);
	write_raw("ksockd.conf", text, len);
	free(text);
	ks_log_set_sink(cap_sink, NULL);
	ck_assert_int_eq(ks_conf_read(fx_path, &t), -1);
	ck_assert_int_eq(cap_n, KS_CONF_MAX_ERRORS + 1);
	snprintf(want, sizeof(want), "%s: 100 errors, giving up", fx_path);
	ck_assert_str_eq(cap_last, want);
}
END_TEST

/* ---- against libconfig ---- */

/* Inputs without includes: ks_conf_read accepts exactly what
 * config_read_string accepts, but for `strict` ones (libconfig accepts and
 * reads them other than written). */
static const struct {
	const char *text;
	int libconfig_ok;
	int strict;
} table[] = {
	{"", 1, 0},
	{"\n\r\f \t", 1, 0},
	{"a=1", 1, 0},
	{"a=1;", 1, 0},
	{"a=1,", 1, 0},
	{"a=1;;", 0, 0},
	{"a:1 b=2", 1, 0},
	{"a=1; # c\n", 1, 0},
	{"a=1; # c", 0, 0},
	{"a=1; // c", 0, 0},
	{"a=1; /", 0, 0},
	{"a=1; /* open", 1, 0},
	{"a=1; /**/", 1, 0},
	{"a=1; /*/", 1, 0},
	{"a=1; \"open", 1, 0},
	{"a=\"open", 0, 0},
	{"a=\"x\" \"open", 1, 0},
	{"a=.;b=-.;c=+.e5;d=1.;e=1e5;f=1E-5;g=.5e+1;", 1, 0},
	{"a=1e;", 0, 0},
	{"a=e5;", 0, 0},
	{"a=-;", 0, 0},
	{"a=--1;", 0, 0},
	{"a=+1;", 1, 0},
	{"a=-0x10;", 0, 0},
	{"a=0x;", 0, 0},
	{"a=0x1g;", 0, 0},
	{"a=1L;b=1LL;c=0x1L;d=0x1LL;", 1, 0},
	{"a=1LLL;", 0, 0},
	{"a=1l;", 0, 0},
	{"a=1.5L;", 0, 0},
	{"a=007;", 1, 0},
	{"a=True;b=FALSE;c=tRuE;", 1, 0},
	{"true=1;", 0, 0},
	{"truex=1;", 1, 0},
	{"a-b=1;*=2;a*_-9=3;", 1, 0},
	{"-a=1;", 0, 0},
	{"_a=1;", 0, 0},
	{"9a=1;", 0, 0},
	{"a=[];b=();c={};", 1, 0},
	{"a=[1,];", 0, 0},
	{"a=(1,);", 0, 0},
	{"a=[,1];", 0, 0},
	{"a=[1 2];", 0, 0},
	{"a=[1,0x2];", 1, 0},
	{"a=[1,2L];", 0, 0},
	{"a=[1L,0x2L];", 1, 0},
	{"a=[1.0,2];", 0, 0},
	{"a=[\"a\" \"b\",\"c\"];", 1, 0},
	{"a=[[1]];", 0, 0},
	{"a=[{}];", 0, 0},
	{"a=(1,\"x\",[1],(),{b=1;});", 1, 0},
	{"a=({b=1,c=2},{b=1});", 1, 0},
	{"a=({b=1;b=2;});", 0, 0},
	{"a=1;a=2;", 0, 0},
	{"a=1;A=2;", 1, 0},
	{"g={a=1;};a=1;", 1, 0},
	{"g={a=1;a=1;};", 0, 0},
	{"a=1 ; }", 0, 0},
	{"a={", 0, 0},
	{"a=(", 0, 0},
	{"a=", 0, 0},
	{"a", 0, 0},
	{"=1", 0, 0},
	{"a=\"\\x41\\x4\\q\\\\\\\"\";", 1, 0},
	{"a=\"\\x00\";", 1, 0},
	{"a=\"x\"\n\"y\" /*c*/ \"z\";", 1, 0},
	{"a=1;\n@", 0, 0},
	{"a=\x01;", 0, 0},
	{"a=\v1;", 0, 0},
	{"a=\x80;", 0, 0},
	{"a = 2147483647; b = -2147483648; c = 0x7fffffff;", 1, 0},
	{"a = 4294967297;", 1, 1},
	{"a = 0x100000000;", 1, 1},
	{"a = 2147483648;", 1, 1},
	{"a = -2147483649;", 1, 1},
	{"a = 0x80000000;", 1, 1},
	{"a = 9223372036854775808L;", 1, 1},
	{"a = 0xffffffffffffffffL;", 1, 1},
	{"a = 4294967297; b", 0, 0},
};

START_TEST(test_differential)
{
	struct ks_conf_text *t;
	config_t cfg;
	size_t i;
	int ours, theirs;

	for (i = 0; i < KS_ARRAY_SIZE(table); i++) {
		config_init(&cfg);
		theirs = config_read_string(&cfg, table[i].text);
		config_destroy(&cfg);
		ck_assert_msg(theirs == table[i].libconfig_ok,
			      "libconfig on \"%s\": %d", table[i].text, theirs);
		write_raw("t.conf", table[i].text, strlen(table[i].text));
		fx_nmsgs = 0;
		ours = ks_conf_read("t.conf", &t) == 0;
		ck_assert_msg(ours == (theirs && !table[i].strict),
			      "ks_conf_read on \"%s\": %d", table[i].text,
			      ours);
		ck_assert_int_eq(ours ? fx_nmsgs == 0 : fx_nmsgs > 0, 1);
		if (ours)
			ck_assert_str_eq(ks_conf_text_str(t), table[i].text);
		ks_conf_text_free(t);
	}
}
END_TEST

/* The sample configuration reads as it is. */
#define SAMPLE KS_TEST_DATA "/../../../conf/ksockd.conf"

/* The line of the sample file that starts (after tabs) with `start`. */
static int
sample_line(const char *start)
{
	char buf[512];
	int n = 0;
	FILE *f = fopen(SAMPLE, "r");

	ck_assert_ptr_nonnull(f);
	while (fgets(buf, sizeof(buf), f) != NULL) {
		n++;
		if (strncmp(buf + strspn(buf, "\t "), start, strlen(start)) == 0) {
			fclose(f);
			return n;
		}
	}
	fclose(f);
	ck_abort_msg("no line \"%s\" in %s", start, SAMPLE);
	return 0;
}

START_TEST(test_sample)
{
	struct ks_conf_text *t = read_ok(SAMPLE);
	config_t cfg;

	parse_text(t, &cfg);
	expect_setting_at(t, &cfg, "daemon.log_level", SAMPLE,
			  sample_line("log_level = "));
	config_destroy(&cfg);
	ks_conf_text_free(t);
}
END_TEST

Suite *
ks_suite_conf_read(void)
{
	Suite *s = suite_create("conf_read");
	TCase *tc = tcase_create("read");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_valid);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_includes);
	tcase_add_test(tc, test_include_names);
	tcase_add_test(tc, test_syntax_errors);
	tcase_add_test(tc, test_duplicates);
	tcase_add_test(tc, test_array_types);
	tcase_add_test(tc, test_integers);
	tcase_add_test(tc, test_long_strings);
	tcase_add_test(tc, test_nesting);
	tcase_add_test(tc, test_group_size);
	tcase_add_test(tc, test_nul_byte);
	tcase_add_test(tc, test_top_file);
	tcase_add_test(tc, test_include_hazards);
	tcase_add_test(tc, test_include_unreadable);
	tcase_add_test(tc, test_include_depth);
	tcase_add_test(tc, test_include_bomb);
	tcase_add_test(tc, test_include_count);
	tcase_add_test(tc, test_file_size);
	tcase_add_test(tc, test_include_syntax);
	tcase_add_test(tc, test_no_newline);
	tcase_add_test(tc, test_all_errors);
	tcase_add_test(tc, test_error_cap);
	tcase_add_test(tc, test_differential);
	tcase_add_test(tc, test_sample);
	suite_add_tcase(s, tc);
	return s;
}
