/*
 * time: RFC 868.  Sends the seconds since 1900-01-01 00:00 UTC as a 32-bit
 * big-endian number, then closes.  The count wraps modulo 2^32 (first in
 * 2036), as clients of the protocol expect.  No options.
 */
#include <time.h>

#include <ksockd/plugin.h>

/* Seconds from 1900-01-01 to 1970-01-01: 70 years, 17 of them leap. */
#define TIME_EPOCH_OFFSET 2208988800LL

static const char *const time_keys[] = {NULL};

static int
time_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	*state = NULL;
	if (opts != NULL && ks_opt_check_keys(opts, time_keys, err, errlen))
		return -1;
	return 0;
}

static int
time_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	long long now = (long long)time(NULL);

	(void)conn;
	(void)in;
	(void)state;
	/* Unsigned conversion is modulo 2^32, which is the wrap we want. */
	return ks_write_u32(out, (uint32_t)(now + TIME_EPOCH_OFFSET));
}

KS_PLUGIN_DEFINE(.name = "time", .version = "1.0", .init = time_init,
		 .handle = time_handle);
