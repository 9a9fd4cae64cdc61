/*
 * hello: the seed dialogue.  Sends a greeting, then answers every line with
 * "Hello, <line>!" until the peer closes its side.
 *
 * Options:
 *   greeting  string  sent first, followed by "\n"
 *                     (default "Please enter your name")
 *
 * Unlike the original, end of input ends the session: an unterminated last
 * line is still answered, then the connection closes.  An over-long line
 * gets "ERROR line too long" and the connection closes (the listener's
 * max_line_length is the limit).
 */
#include <stdlib.h>
#include <string.h>

#include <ksockd/plugin.h>

struct hello {
	const char *greeting; /* owned by the options; valid until fini */
	size_t greeting_len;
};

static const char *const hello_keys[] = {"greeting", NULL};

static int
hello_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	const char *greeting = "Please enter your name";
	struct hello *h;

	if (opts != NULL) {
		if (ks_opt_check_keys(opts, hello_keys, err, errlen) != KS_OK)
			return -1;
		if (ks_opt_string(opts, "greeting", greeting, &greeting, err,
				  errlen) != KS_OK)
			return -1;
	}
	h = malloc(sizeof(*h));
	if (h == NULL) {
		strncpy(err, "out of memory", errlen);
		if (errlen > 0)
			err[errlen - 1] = '\0';
		return -1;
	}
	h->greeting = greeting;
	h->greeting_len = strlen(greeting);
	*state = h;
	return 0;
}

static void
hello_fini(void *state)
{
	free(state);
}

/* The line may hold NUL bytes, so it goes out with its length rather than
 * through a %s conversion. */
static int
hello_answer(ks_wchan *out, const char *line, size_t len)
{
	int rc;

	if ((rc = ks_write(out, "Hello, ", 7)) != KS_OK)
		return rc;
	if ((rc = ks_write(out, line, len)) != KS_OK)
		return rc;
	return ks_write(out, "!\n", 2);
}

static int
hello_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	const struct hello *h = state;
	char *line;
	size_t len;
	int rc;

	if ((rc = ks_write(out, h->greeting, h->greeting_len)) != KS_OK ||
	    (rc = ks_write(out, "\n", 1)) != KS_OK)
		return rc;

	for (;;) {
		rc = ks_read_line(in, &line, &len);
		switch (rc) {
		case KS_OK:
			if ((rc = hello_answer(out, line, len)) != KS_OK)
				return rc;
			break;
		case KS_EOF:
			/* A last line without a terminator still counts. */
			if (len > 0 &&
			    (rc = hello_answer(out, line, len)) != KS_OK)
				return rc;
			ks_conn_log(conn, KS_LOG_DEBUG, "end of input");
			return 0;
		case KS_ETOOLONG:
			ks_conn_log(conn, KS_LOG_DEBUG, "line too long");
			ks_write_str(out, "ERROR line too long\n");
			return 0;
		case KS_ETIMEDOUT:
			ks_conn_log(conn, KS_LOG_DEBUG, "idle timeout");
			ks_write_str(out, "ERROR idle timeout\n");
			return 0;
		default:
			/* Peer gone, shutting down, no memory: say nothing. */
			return rc;
		}
	}
}

KS_PLUGIN_DEFINE(.name = "hello", .version = "1.0", .init = hello_init,
		 .handle = hello_handle, .fini = hello_fini);
