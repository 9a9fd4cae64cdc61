/* libFuzzer target for the PROXY header parser: every prefix of the input
 * is parsed and the results checked against the contract: 0 only while a
 * header may still come, -1 stays -1, a header once whole keeps its length
 * as more bytes arrive, what it reports is well formed, and it reads no
 * byte past the length it was given. */
#include "config.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_addr(const struct sockaddr_storage *ss, socklen_t len)
{
	if (ss->ss_family == AF_INET && len == sizeof(struct sockaddr_in))
		return;
	if (ss->ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6))
		return;
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ks_proxy_hdr h, first;
	const char *why;
	int rc, prev = 0;
	size_t n;

	if (size > KS_PROXY_V2_MAX + 64)
		size = KS_PROXY_V2_MAX + 64;
	memset(&first, 0, sizeof(first));
	for (n = 0; n <= size; n++) {
		why = NULL;
		rc = ks_proxy_parse(data, n, &h, &why);
		/* The short prefixes (every v1 header, most v2 ones) again at
		 * the end of a buffer of their own, so that ASan sees a read
		 * past len (inside `data` it would go unseen). */
		if (n <= 256 || n == size) {
			struct ks_proxy_hdr h2;
			uint8_t *own = malloc(n ? n : 1);
			int rc2;

			if (own == NULL)
				return 0;
			memcpy(own, data, n);
			rc2 = ks_proxy_parse(own, n, &h2, NULL);
			free(own);
			if (rc2 != rc)
				abort();
		}
		if (rc < -1 || (size_t)(rc > 0 ? rc : 0) > n)
			abort();
		if (rc == -1 && why == NULL)
			abort();
		if (prev == -1 && rc != -1)
			abort(); /* refused stays refused */
		if (prev > 0 && (rc != prev || h.len != first.len))
			abort(); /* a whole header does not change */
		if (rc > 0 && prev == 0) {
			if (h.len != (size_t)rc || (h.version != 1 && h.version != 2))
				abort();
			if (h.version == 1 && h.len > KS_PROXY_V1_MAX)
				abort();
			if (h.len > KS_PROXY_V2_MAX)
				abort();
			if (h.has_addr) {
				check_addr(&h.src, h.src_len);
				check_addr(&h.dst, h.dst_len);
				if (h.src.ss_family != h.dst.ss_family)
					abort();
			}
			first = h;
		}
		prev = rc;
		if (rc == -1)
			break; /* later prefixes: checked by the rule above */
	}
	return 0;
}
