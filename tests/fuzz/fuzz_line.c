/* libFuzzer target for the line splitter: the first two bytes pick the
 * line limit and a chunk size; the rest is fed in chunks the way reads
 * would deliver it, and every result is checked against the contract. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t max, chunk, have = 0, pos = 0, scanned = 0;
	const char *p;

	if (size < 2)
		return 0;
	max = (size_t)data[0] + 1;
	chunk = (size_t)data[1] % 17 + 1;
	p = (const char *)data + 2;
	size -= 2;
	while (pos < size) {
		size_t len = 0, consumed = 0, avail;
		enum ks_line_result r;

		have = have + chunk > size - pos ? size - pos : have + chunk;
		avail = have;
		r = ks_line_find(p + pos, avail, max, &scanned, &len, &consumed);
		switch (r) {
		case KS_LINE_FOUND:
			if (len > max || consumed > avail || consumed < len + 1 ||
			    p[pos + consumed - 1] != '\n' ||
			    memchr(p + pos, '\n', consumed - 1) != NULL)
				abort();
			pos += consumed;
			have -= consumed;
			break;
		case KS_LINE_TOO_LONG:
			if (consumed > avail)
				abort();
			if (consumed == 0) {
				if (memchr(p + pos, '\n', avail) != NULL || avail <= max)
					abort();
				consumed = avail;
			}
			pos += consumed;
			have -= consumed;
			scanned = 0;
			break;
		case KS_LINE_MORE:
			if (memchr(p + pos, '\n', avail) != NULL || scanned != avail)
				abort();
			if (have == size - pos)
				return 0; /* unterminated tail */
			break;
		}
	}
	return 0;
}
