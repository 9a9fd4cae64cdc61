/*
 * chargen: RFC 864.  Sends lines of 72 printable ASCII characters, each
 * line starting one character further along the 95-character ring
 * (' ' .. '~') and ended with CRLF, until the peer goes away.  Input is
 * ignored (never read).  No options.
 *
 * Output goes out in batches of about 16 KiB (one pool block): after each
 * batch the handler flushes, which suspends while the peer is slow (a
 * reader that stops altogether runs into idle_timeout) and keeps the
 * output buffer at one block.  A reader fast enough that no flush ever
 * waits cannot hog the loop: the core lets other connections run after
 * every megabyte sent without waiting.
 */
#include <string.h>

#include <ksockd/plugin.h>

#define CHARGEN_FIRST 32
#define CHARGEN_COUNT 95 /* printable characters 32 .. 126 */
#define CHARGEN_WIDTH 72

/* Lines per batch: 221 * 74 bytes fit one 16 KiB buffer block. */
#define CHARGEN_BATCH 221

static const char *const chargen_keys[] = {NULL};

static int
chargen_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	*state = NULL;
	if (opts != NULL && ks_opt_check_keys(opts, chargen_keys, err, errlen))
		return -1;
	return 0;
}

static int
chargen_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	/* The ring plus its first 72 characters again: every line is one
	 * contiguous slice. */
	char ring[CHARGEN_COUNT + CHARGEN_WIDTH];
	char line[CHARGEN_WIDTH + 2];
	unsigned long long lines = 0;
	unsigned start = 0;
	size_t i;
	int rc;

	(void)in; /* input is ignored: never read */
	(void)state;
	for (i = 0; i < sizeof(ring); i++)
		ring[i] = (char)(CHARGEN_FIRST + i % CHARGEN_COUNT);
	line[CHARGEN_WIDTH] = '\r';
	line[CHARGEN_WIDTH + 1] = '\n';

	for (;;) {
		memcpy(line, ring + start, CHARGEN_WIDTH);
		if ((rc = ks_write(out, line, sizeof(line))) != KS_OK)
			break;
		start = (start + 1) % CHARGEN_COUNT;
		if (++lines % CHARGEN_BATCH != 0)
			continue;
		if ((rc = ks_flush(out)) != KS_OK)
			break;
	}
	ks_conn_log(conn, KS_LOG_DEBUG, "sent %llu lines: %s", lines,
		    ks_strerror(rc));
	return rc == KS_EIO ? 0 : rc; /* the peer leaving is the normal end */
}

KS_PLUGIN_DEFINE(.name = "chargen", .version = "1.0", .init = chargen_init,
		 .handle = chargen_handle);
