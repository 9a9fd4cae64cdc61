#include "config.h"

#include <check.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fixture.h"
#include "log.h"

char fx_dir[64];
char fx_path[128];
char fx_msgs[FX_MAX_MSGS][1024];
int fx_nmsgs;

static void
sink(int level, const char *msg, void *ud)
{
	(void)level;
	(void)ud;
	if (fx_nmsgs < FX_MAX_MSGS)
		snprintf(fx_msgs[fx_nmsgs], sizeof(fx_msgs[0]), "%s", msg);
	fx_nmsgs++;
}

void
fx_setup_dir(const char *tag)
{
	snprintf(fx_dir, sizeof(fx_dir), "/tmp/ks_%s_XXXXXX", tag);
	ck_assert_ptr_nonnull(mkdtemp(fx_dir));
	snprintf(fx_path, sizeof(fx_path), "%s/ksockd.conf", fx_dir);
	fx_nmsgs = 0;
	ks_log_set_sink(sink, NULL);
}

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void
fx_teardown_dir(void)
{
	ks_log_set_sink(NULL, NULL);
	nftw(fx_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

void
fx_expand(const char *in, char *out, size_t cap)
{
	size_t n = 0;

	while (*in != '\0' && n + 1 < cap) {
		if (strncmp(in, "DIR", 3) == 0) {
			n += (size_t)snprintf(out + n, cap - n, "%s", fx_dir);
			in += 3;
		} else if (strncmp(in, "FILE", 4) == 0) {
			n += (size_t)snprintf(out + n, cap - n, "%s", fx_path);
			in += 4;
		} else {
			out[n++] = *in++;
		}
	}
	out[n < cap ? n : cap - 1] = '\0';
}

const char *
fx_write_file(const char *name, const char *text)
{
	static char p[256];
	char body[8192];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", fx_dir, name);
	fx_expand(text, body, sizeof(body));
	fp = fopen(p, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(body, fp);
	ck_assert_int_eq(fclose(fp), 0);
	return p;
}

struct ks_conf *
fx_load_ok(const char *text)
{
	struct ks_conf *conf = NULL;
	int i;

	fx_write_file("ksockd.conf", text);
	if (ks_conf_load(fx_path, &conf) != 0) {
		for (i = 0; i < fx_nmsgs && i < FX_MAX_MSGS; i++)
			fprintf(stderr, "unexpected: %s\n", fx_msgs[i]);
		ck_abort_msg("ks_conf_load failed");
	}
	ck_assert_ptr_nonnull(conf);
	ck_assert_int_eq(fx_nmsgs, 0);
	return conf;
}

void
fx_load_fails(const char *text, ...)
{
	struct ks_conf *conf = (struct ks_conf *)1;
	char want[2048];
	const char *m;
	va_list ap;
	int i = 0;

	fx_nmsgs = 0; /* each call checks its own messages */
	fx_write_file("ksockd.conf", text);
	ck_assert_int_eq(ks_conf_load(fx_path, &conf), -1);
	ck_assert_ptr_null(conf);
	va_start(ap, text);
	while ((m = va_arg(ap, const char *)) != NULL) {
		fx_expand(m, want, sizeof(want));
		ck_assert_msg(i < fx_nmsgs, "missing message: %s", want);
		ck_assert_str_eq(fx_msgs[i], want);
		i++;
	}
	va_end(ap);
	for (; i < fx_nmsgs && i < FX_MAX_MSGS; i++)
		ck_abort_msg("unexpected message: %s", fx_msgs[i]);
	ck_assert_int_eq(fx_nmsgs, i);
}
