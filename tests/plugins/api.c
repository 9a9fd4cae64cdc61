/*
 * A test plugin that exposes the whole handler API through a line-based
 * command protocol, so tests/integration/test_api.py can drive every call
 * through the real daemon.  One command per line; replies are lines unless
 * stated.  Outcomes that the client cannot see (writes after a shutdown or
 * close, ks_copy's count) are logged as "api: ..." at info level.
 *
 *   exact N     read N raw bytes          -> "got N SUM" (SUM = byte sum % 256)
 *   peek N      peek N bytes, then read them with ks_read_some
 *                                          -> "peek DATA buffered=B", "some K DATA"
 *   some        ks_read_some              -> "some K DATA"
 *   skip N      skip N bytes, read a line -> "after skip LINE"
 *   buffered    ks_read_buffered          -> "buffered N"
 *   u8|u16|u32|u64   read a big-endian int -> decimal value
 *   w8|w16|w32|w64 V write V big-endian   -> raw bytes
 *   sleep MS    ks_sleep                  -> "slept" (or "sleep STATUS")
 *   spawn       a coroutine sleeps 50 ms and writes "from spawn"; the
 *               handler replies "spawned" at once
 *   info        -> "peer=P local=L listener=NAME"
 *   big N       N bytes of 'x' in one ks_write, then "\nend\n"
 *   flush       "flushing" + ks_flush     -> "flushed"
 *   shutdown    ks_shutdown; then count the lines still coming until EOF
 *   close       spawn a writer, ks_close; both writes log their status
 *   copy        ks_copy(in, out) until EOF, then return
 *   timeout S   ks_conn_set_timeout       -> "timeout set"
 *   readlong    read a line; "toolong" on KS_ETOOLONG, then the next line
 *               -> "next LINE"
 *   tail        read lines until EOF      -> "eof partial=BYTES"
 *   err         "CODE NAME" for 0..-9 and -100, then "end"
 *   opts        -> "opts greeting=G n=N flag=F ratio=R"
 *   tls         -> "tls version=V cipher=C sni=S alpn=A subject=DN verified=N"
 *               (the ks_conn_tls_* values; "-" for NULL; DN may hold spaces)
 *   ret N       return N from handle()
 *   quit        -> "bye", return 0
 * Anything else gets "unknown COMMAND".  A failing read ends the handler
 * with "ERROR status=S" (for the idle timeout, cancellation ...).
 *
 * Options: greeting (string), n (int), flag (bool), ratio (double);
 * reject = true makes init fail with "rejected on request".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ksockd/plugin.h>

struct api_state {
	const char *greeting;
	long long n;
	int flag;
	double ratio;
};

/* Handed to spawned coroutines on the heap: a coroutine must not point
 * into another one's stack. */
struct api_spawn {
	ks_wchan *out;
	double delay;
	const char *what;
};

static int
api_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	static const char *const known[] = {"greeting", "n", "flag", "ratio",
					    "reject", NULL};
	struct api_state *st;
	int reject;

	if (ks_opt_check_keys(opts, known, err, errlen) != KS_OK)
		return -1;
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (ks_opt_string(opts, "greeting", "api ready", &st->greeting, err,
			  errlen) != KS_OK ||
	    ks_opt_int(opts, "n", 7, &st->n, err, errlen) != KS_OK ||
	    ks_opt_bool(opts, "flag", 0, &st->flag, err, errlen) != KS_OK ||
	    ks_opt_double(opts, "ratio", 0.5, &st->ratio, err, errlen) !=
		    KS_OK ||
	    ks_opt_bool(opts, "reject", 0, &reject, err, errlen) != KS_OK)
		goto fail;
	if (reject) {
		snprintf(err, errlen, "rejected on request");
		goto fail;
	}
	*state = st;
	ks_log(KS_LOG_INFO, "api: init");
	return 0;
fail:
	free(st);
	return -1;
}

static void
api_fini(void *state)
{
	ks_log(KS_LOG_INFO, "api: fini");
	free(state);
}

/* Writes bytes with non-printable ones as \xNN, so replies stay lines. */
static int
write_escaped(ks_wchan *out, const unsigned char *p, size_t n)
{
	size_t i;
	int rc = KS_OK;

	for (i = 0; i < n && rc == KS_OK; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			rc = ks_write(out, &p[i], 1);
		else
			rc = ks_printf(out, "\\x%02x", p[i]);
	}
	return rc;
}

static void
spawned_writer(ks_conn *conn, void *arg)
{
	struct api_spawn *sp = arg;
	int rc;

	rc = ks_sleep(conn, sp->delay);
	if (rc == KS_OK)
		rc = ks_printf(sp->out, "from spawn\n");
	if (rc == KS_OK)
		rc = ks_flush(sp->out);
	ks_conn_log(conn, KS_LOG_INFO, "api: %s write status=%d (%s)",
		    sp->what, rc, ks_strerror(rc));
	free(sp);
}

static int
spawn_writer(ks_conn *conn, ks_wchan *out, double delay, const char *what)
{
	struct api_spawn *sp = malloc(sizeof(*sp));
	int rc;

	if (sp == NULL)
		return KS_ENOMEM;
	sp->out = out;
	sp->delay = delay;
	sp->what = what;
	rc = ks_spawn(conn, spawned_writer, sp);
	if (rc != KS_OK)
		free(sp);
	return rc;
}

static int
cmd_exact(ks_rchan *in, ks_wchan *out, size_t n)
{
	unsigned char *buf = malloc(n ? n : 1);
	unsigned sum = 0;
	size_t i;
	int rc;

	if (buf == NULL)
		return KS_ENOMEM;
	rc = ks_read_exact(in, buf, n);
	if (rc == KS_OK) {
		for (i = 0; i < n; i++)
			sum += buf[i];
		rc = ks_printf(out, "got %zu %u\n", n, sum % 256);
	} else {
		rc = ks_printf(out, "exact status=%d\n", rc);
	}
	free(buf);
	return rc;
}

static int
cmd_some(ks_rchan *in, ks_wchan *out, size_t cap)
{
	unsigned char buf[4096];
	size_t got = 0;
	int rc;

	if (cap > sizeof(buf))
		cap = sizeof(buf);
	rc = ks_read_some(in, buf, cap, &got);
	if (rc != KS_OK)
		return ks_printf(out, "some status=%d\n", rc);
	ks_printf(out, "some %zu ", got);
	write_escaped(out, buf, got);
	return ks_write_str(out, "\n");
}

static int
cmd_peek(ks_rchan *in, ks_wchan *out, size_t n)
{
	const void *p;
	int rc;

	rc = ks_read_peek(in, n, &p);
	if (rc != KS_OK)
		return ks_printf(out, "peek status=%d\n", rc);
	ks_write_str(out, "peek ");
	write_escaped(out, p, n);
	ks_printf(out, " buffered=%zu\n", ks_read_buffered(in));
	/* The peeked bytes must still be there for a real read. */
	return cmd_some(in, out, n);
}

static int
cmd_read_int(ks_rchan *in, ks_wchan *out, int bits)
{
	uint8_t v8;
	uint16_t v16;
	uint32_t v32;
	uint64_t v = 0;
	int rc;

	switch (bits) {
	case 8:
		rc = ks_read_u8(in, &v8);
		v = v8;
		break;
	case 16:
		rc = ks_read_u16(in, &v16);
		v = v16;
		break;
	case 32:
		rc = ks_read_u32(in, &v32);
		v = v32;
		break;
	default:
		rc = ks_read_u64(in, &v);
		break;
	}
	if (rc != KS_OK)
		return ks_printf(out, "u%d status=%d\n", bits, rc);
	return ks_printf(out, "%" PRIu64 "\n", v);
}

/* "u32" -> 32 for prefix 'u'; 0 if name is not PREFIX8/16/32/64. */
static int
int_bits(const char *name, char prefix)
{
	if (name[0] != prefix)
		return 0;
	if (strcmp(name + 1, "8") == 0)
		return 8;
	if (strcmp(name + 1, "16") == 0)
		return 16;
	if (strcmp(name + 1, "32") == 0)
		return 32;
	if (strcmp(name + 1, "64") == 0)
		return 64;
	return 0;
}

static int
cmd_write_int(ks_wchan *out, int bits, uint64_t v)
{
	switch (bits) {
	case 8:
		return ks_write_u8(out, (uint8_t)v);
	case 16:
		return ks_write_u16(out, (uint16_t)v);
	case 32:
		return ks_write_u32(out, (uint32_t)v);
	default:
		return ks_write_u64(out, v);
	}
}

static int
cmd_big(ks_wchan *out, size_t n)
{
	char *buf = malloc(n ? n : 1);
	int rc;

	if (buf == NULL)
		return KS_ENOMEM;
	memset(buf, 'x', n);
	rc = ks_write(out, buf, n);
	free(buf);
	if (rc != KS_OK)
		return rc;
	return ks_write_str(out, "\nend\n");
}

/* After ks_shutdown the client sees EOF, but its lines still arrive. */
static int
cmd_shutdown(ks_conn *conn, ks_rchan *in, ks_wchan *out)
{
	char *line;
	size_t len;
	unsigned count = 0;
	int rc;

	rc = ks_shutdown(out);
	ks_conn_log(conn, KS_LOG_INFO, "api: shutdown status=%d", rc);
	for (;;) {
		rc = ks_read_line(in, &line, &len);
		if (rc != KS_OK)
			break;
		count++;
		ks_conn_log(conn, KS_LOG_INFO, "api: after shutdown line %u: %.*s",
			    count, (int)len, line);
	}
	ks_conn_log(conn, KS_LOG_INFO,
		    "api: after shutdown got %u lines, read status=%d (%s)",
		    count, rc, ks_strerror(rc));
	rc = ks_write_str(out, "too late\n");
	ks_conn_log(conn, KS_LOG_INFO,
		    "api: write after shutdown status=%d (%s)", rc,
		    ks_strerror(rc));
	return 0;
}

/* ks_close while a spawned coroutine still wants to write: the socket goes
 * at once, the connection lives until that coroutine returns. */
static int
cmd_close(ks_conn *conn, ks_rchan *in, ks_wchan *out)
{
	char *line;
	size_t len;
	int rc;

	rc = spawn_writer(conn, out, 0.1, "spawn after close");
	if (rc != KS_OK)
		return ks_printf(out, "spawn status=%d\n", rc);
	rc = ks_close(conn);
	ks_conn_log(conn, KS_LOG_INFO, "api: close status=%d", rc);
	rc = ks_write_str(out, "after close\n");
	ks_conn_log(conn, KS_LOG_INFO, "api: write after close status=%d (%s)",
		    rc, ks_strerror(rc));
	rc = ks_read_line(in, &line, &len);
	ks_conn_log(conn, KS_LOG_INFO, "api: read after close status=%d (%s)",
		    rc, ks_strerror(rc));
	return 0;
}

static int
cmd_copy(ks_conn *conn, ks_rchan *in, ks_wchan *out)
{
	uint64_t copied = 0;
	int rc;

	rc = ks_copy(in, out, &copied);
	ks_conn_log(conn, KS_LOG_INFO, "api: copied %" PRIu64 " bytes status=%d",
		    copied, rc);
	return 0;
}

static int
cmd_readlong(ks_rchan *in, ks_wchan *out)
{
	char *line;
	size_t len;
	int rc;

	rc = ks_read_line(in, &line, &len);
	if (rc == KS_ETOOLONG)
		ks_write_str(out, "toolong\n");
	else if (rc == KS_OK)
		ks_printf(out, "short %zu\n", len);
	else
		return ks_printf(out, "readlong status=%d\n", rc);
	rc = ks_read_line(in, &line, &len);
	if (rc != KS_OK)
		return ks_printf(out, "next status=%d\n", rc);
	ks_write_str(out, "next ");
	ks_write(out, line, len);
	return ks_write_str(out, "\n");
}

static int
cmd_tail(ks_rchan *in, ks_wchan *out)
{
	char *line;
	size_t len;
	int rc;

	for (;;) {
		rc = ks_read_line(in, &line, &len);
		if (rc != KS_OK)
			break;
		ks_printf(out, "line %.*s\n", (int)len, line);
	}
	if (rc != KS_EOF)
		return ks_printf(out, "tail status=%d\n", rc);
	ks_write_str(out, "eof partial=");
	write_escaped(out, (const unsigned char *)line, len);
	return ks_write_str(out, "\n");
}

static int
cmd_err(ks_wchan *out)
{
	int code;
	const char *s;

	for (code = 0; code >= -9; code--) {
		s = ks_strerror(code);
		ks_printf(out, "%d %s\n", code, s ? s : "(null)");
	}
	s = ks_strerror(-100);
	ks_printf(out, "%d %s\n", -100, s ? s : "(null)");
	return ks_write_str(out, "end\n");
}

static const char *
or_dash(const char *s)
{
	return s != NULL ? s : "-";
}

static int
cmd_tls(ks_conn *conn, ks_wchan *out)
{
	return ks_printf(out,
			 "tls version=%s cipher=%s sni=%s alpn=%s subject=%s "
			 "verified=%d\n",
			 or_dash(ks_conn_tls_version(conn)),
			 or_dash(ks_conn_tls_cipher(conn)),
			 or_dash(ks_conn_tls_sni(conn)),
			 or_dash(ks_conn_tls_alpn(conn)),
			 or_dash(ks_conn_tls_peer_subject(conn)),
			 ks_conn_tls_peer_verified(conn));
}

static int
api_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	struct api_state *st = state;
	char cmd[256], name[32];
	char *line;
	size_t len;
	unsigned long long num;
	double d;
	int rc, nargs;

	for (;;) {
		rc = ks_read_line(in, &line, &len);
		if (rc == KS_EOF) {
			ks_conn_log(conn, KS_LOG_DEBUG, "api: end of input");
			return 0;
		}
		if (rc != KS_OK) {
			ks_conn_log(conn, KS_LOG_INFO,
				    "api: read_line status=%d (%s)", rc,
				    ks_strerror(rc));
			ks_printf(out, "ERROR status=%d\n", rc);
			return 0;
		}
		if (len >= sizeof(cmd))
			len = sizeof(cmd) - 1;
		memcpy(cmd, line, len);
		cmd[len] = '\0';
		name[0] = '\0';
		num = 0;
		nargs = sscanf(cmd, "%31s %llu", name, &num);

		if (nargs == 2 && strcmp(name, "exact") == 0) {
			rc = cmd_exact(in, out, num);
		} else if (nargs == 2 && strcmp(name, "peek") == 0) {
			rc = cmd_peek(in, out, num);
		} else if (strcmp(cmd, "some") == 0) {
			rc = cmd_some(in, out, 4096);
		} else if (nargs == 2 && strcmp(name, "skip") == 0) {
			rc = ks_read_skip(in, num);
			if (rc == KS_OK)
				rc = ks_read_line(in, &line, &len);
			if (rc == KS_OK) {
				ks_write_str(out, "after skip ");
				ks_write(out, line, len);
				rc = ks_write_str(out, "\n");
			} else {
				rc = ks_printf(out, "skip status=%d\n", rc);
			}
		} else if (strcmp(cmd, "buffered") == 0) {
			rc = ks_printf(out, "buffered %zu\n",
				       ks_read_buffered(in));
		} else if (nargs == 1 && int_bits(name, 'u') != 0) {
			rc = cmd_read_int(in, out, int_bits(name, 'u'));
		} else if (nargs == 2 && int_bits(name, 'w') != 0) {
			rc = cmd_write_int(out, int_bits(name, 'w'), num);
		} else if (nargs == 2 && strcmp(name, "sleep") == 0) {
			ks_conn_log(conn, KS_LOG_INFO, "api: sleeping %llu ms",
				    num);
			rc = ks_sleep(conn, num / 1000.0);
			if (rc == KS_OK)
				rc = ks_write_str(out, "slept\n");
			else
				rc = ks_printf(out, "sleep status=%d\n", rc);
		} else if (strcmp(cmd, "spawn") == 0) {
			rc = spawn_writer(conn, out, 0.05, "spawn");
			if (rc == KS_OK)
				rc = ks_write_str(out, "spawned\n");
			else
				rc = ks_printf(out, "spawn status=%d\n", rc);
		} else if (strcmp(cmd, "info") == 0) {
			rc = ks_printf(out, "peer=%s local=%s listener=%s\n",
				       ks_conn_peer_str(conn),
				       ks_conn_local_str(conn),
				       ks_conn_listener(conn));
		} else if (nargs == 2 && strcmp(name, "big") == 0) {
			rc = cmd_big(out, num);
		} else if (strcmp(cmd, "flush") == 0) {
			ks_write_str(out, "flushing\n");
			rc = ks_flush(out);
			if (rc == KS_OK)
				rc = ks_write_str(out, "flushed\n");
		} else if (strcmp(cmd, "shutdown") == 0) {
			return cmd_shutdown(conn, in, out);
		} else if (strcmp(cmd, "close") == 0) {
			return cmd_close(conn, in, out);
		} else if (strcmp(cmd, "copy") == 0) {
			return cmd_copy(conn, in, out);
		} else if (sscanf(cmd, "timeout %lf", &d) == 1) {
			ks_conn_set_timeout(conn, d);
			rc = ks_write_str(out, "timeout set\n");
		} else if (strcmp(cmd, "readlong") == 0) {
			rc = cmd_readlong(in, out);
		} else if (strcmp(cmd, "tail") == 0) {
			return cmd_tail(in, out);
		} else if (strcmp(cmd, "err") == 0) {
			rc = cmd_err(out);
		} else if (strcmp(cmd, "opts") == 0) {
			rc = ks_printf(out, "opts greeting=%s n=%lld flag=%d "
					    "ratio=%g\n",
				       st->greeting, st->n, st->flag,
				       st->ratio);
		} else if (strcmp(cmd, "tls") == 0) {
			rc = cmd_tls(conn, out);
		} else if (nargs == 2 && strcmp(name, "ret") == 0) {
			ks_write_str(out, "returning\n");
			return (int)num;
		} else if (strcmp(cmd, "quit") == 0) {
			ks_write_str(out, "bye\n");
			return 0;
		} else {
			rc = ks_printf(out, "unknown %s\n", cmd);
		}
		if (rc != KS_OK) {
			ks_conn_log(conn, KS_LOG_INFO,
				    "api: command '%s' failed: status=%d (%s)",
				    cmd, rc, ks_strerror(rc));
			return 0;
		}
	}
}

KS_PLUGIN_DEFINE(.name = "api", .version = "1", .init = api_init,
		 .handle = api_handle, .fini = api_fini);
