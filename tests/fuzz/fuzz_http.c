/* libFuzzer target for the metrics plugin's HTTP request parser
 * (plugins/http_req.c).  The input is split into lines the way
 * ks_read_line hands them out (LF or CRLF removed, NUL bytes kept): the
 * first is parsed as a request line, the following ones, up to an empty
 * line, as header lines of that request.  Every line is parsed from a
 * buffer of its exact size, so that ASan sees a read past its end, and
 * every result is checked against the contract in http_req.h, the Connection
 * tokens and Content-Length against simple reference implementations. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/http_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
ows(char c)
{
	return c == ' ' || c == '\t';
}

/* The reference: one list element, trimmed, compared with a lower-case
 * literal. */
static int
element_is(const char *s, size_t len, const char *lit)
{
	size_t i;

	while (len > 0 && ows(s[0])) {
		s++;
		len--;
	}
	while (len > 0 && ows(s[len - 1]))
		len--;
	if (len != strlen(lit))
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];

		if (c != lit[i])
			return 0;
	}
	return 1;
}

static unsigned
ref_connection(const char *v, size_t len)
{
	unsigned flags = 0;
	size_t start = 0, i;

	for (i = 0; i <= len; i++) {
		if (i < len && v[i] != ',')
			continue;
		if (element_is(v + start, i - start, "close"))
			flags |= HTTP_CONN_CLOSE;
		if (element_is(v + start, i - start, "keep-alive"))
			flags |= HTTP_CONN_KEEP_ALIVE;
		start = i + 1;
	}
	return flags;
}

/* Content-Length against strtoull, given digits only. */
static void
check_length(const char *v, size_t len)
{
	unsigned long long ref;
	uint64_t got = 0;
	char tmp[64];
	size_t i, zeros = 0;
	int rc = http_content_length(v, len, &got), digits = len > 0;

	for (i = 0; i < len; i++)
		if (v[i] < '0' || v[i] > '9')
			digits = 0;
	if (!digits) {
		if (rc != 400)
			abort();
		return;
	}
	while (zeros + 1 < len && v[zeros] == '0')
		zeros++;
	if (len - zeros >= sizeof(tmp)) {
		if (rc != 400) /* 64 significant digits: far over UINT64_MAX */
			abort();
		return;
	}
	memcpy(tmp, v + zeros, len - zeros);
	tmp[len - zeros] = '\0';
	errno = 0;
	ref = strtoull(tmp, NULL, 10);
	if (errno == ERANGE ? rc != 400 : (rc != 0 || got != ref))
		abort();
}

static void
check_reqline(const char *line, size_t len)
{
	struct http_reqline rl, again;
	const char *end = line + len, *tend;
	int rc = http_parse_request_line(line, len, &rl);

	if (rc != 0 && rc != 400 && rc != 505)
		abort();
	if (http_parse_request_line(line, len, &again) != rc)
		abort();
	if (rc == 505 && (len < 8 || memcmp(end - 8, "HTTP/", 5) != 0))
		abort();
	if (rc != 0)
		return;
	tend = rl.target + rl.target_len;
	if (rl.method_str != line || rl.method_len == 0 ||
	    line[rl.method_len] != ' ' ||
	    rl.target != line + rl.method_len + 1 || rl.target_len == 0 ||
	    len != rl.method_len + rl.target_len + 10 ||
	    memcmp(end - 8, "HTTP/1.", 7) != 0 || rl.minor != end[-1] - '0' ||
	    (rl.minor != 0 && rl.minor != 1))
		abort();
	if (memchr(rl.target, ' ', rl.target_len) != NULL)
		abort();
	if (rl.path < rl.target || rl.path + rl.path_len > tend ||
	    memchr(rl.path, '?', rl.path_len) != NULL)
		abort();
	if (rl.target[0] == '/' && rl.path != rl.target)
		abort();
	if ((rl.method == HTTP_M_GET) !=
		    (rl.method_len == 3 && memcmp(line, "GET", 3) == 0) ||
	    (rl.method == HTTP_M_HEAD) !=
		    (rl.method_len == 4 && memcmp(line, "HEAD", 4) == 0))
		abort();
}

/* One header line into *r; the status http_req_header returned. */
static int
check_header(struct http_req *r, const char *line, size_t len)
{
	struct http_header h;
	unsigned before = r->nheaders;
	int rc, hrc;

	if (http_connection_tokens(line, len) != ref_connection(line, len))
		abort();
	check_length(line, len);
	hrc = http_parse_header(line, len, &h);
	if (hrc != 0 && hrc != 400)
		abort();
	if (hrc == 0) {
		if (h.name != line || h.name_len == 0 || h.name_len >= len ||
		    line[h.name_len] != ':' ||
		    memchr(h.name, ':', h.name_len) != NULL ||
		    h.value < line + h.name_len + 1 ||
		    h.value + h.value_len > line + len ||
		    (h.value_len > 0 &&
		     (ows(h.value[0]) || ows(h.value[h.value_len - 1]))))
			abort();
		if (http_connection_tokens(h.value, h.value_len) !=
		    ref_connection(h.value, h.value_len))
			abort();
		check_length(h.value, h.value_len);
	}
	rc = http_req_header(r, line, len);
	if (rc != 0 && rc != 400 && rc != 431 && rc != 501)
		abort();
	if (rc == 431 ? before != HTTP_MAX_HEADERS
		      : (r->nheaders != before + 1 || (hrc != 0 && rc != 400)))
		abort();
	if (r->nheaders > HTTP_MAX_HEADERS || (rc == 501 && !r->has_te))
		abort();
	return rc;
}

/* A copy of data[0..n) in a buffer of exactly n bytes (1 when n is 0, the
 * line then given with length 0). */
static char *
own_copy(const uint8_t *data, size_t n)
{
	char *p = malloc(n ? n : 1);

	if (p != NULL && n > 0)
		memcpy(p, data, n);
	return p;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_req r;
	size_t pos = 0, nl, len;
	int first = 1, rc = 0, fin;
	char *line;

	http_req_init(&r);
	while (pos < size) {
		const uint8_t *lf = memchr(data + pos, '\n', size - pos);

		nl = lf != NULL ? (size_t)(lf - data) : size;
		len = nl - pos;
		if (len > 0 && lf != NULL && data[nl - 1] == '\r')
			len--;
		if ((line = own_copy(data + pos, len)) == NULL)
			return 0;
		if (first) {
			check_reqline(line, len);
			first = 0;
		} else if (len == 0) {
			free(line);
			break;
		} else {
			rc = check_header(&r, line, len);
		}
		free(line);
		if (rc != 0)
			break;
		pos = nl + 1;
	}
	fin = http_req_finish(&r);
	if (fin != 0 && fin != 413 && fin != 501)
		abort();
	if (fin == 413 && (!r.has_length || r.length <= HTTP_MAX_BODY))
		abort();
	if ((r.conn & ~(HTTP_CONN_CLOSE | HTTP_CONN_KEEP_ALIVE)) != 0)
		abort();
	if ((r.conn & HTTP_CONN_CLOSE) &&
	    (http_req_keep_alive(&r, 0) || http_req_keep_alive(&r, 1)))
		abort();
	if (http_req_keep_alive(&r, 0) && !(r.conn & HTTP_CONN_KEEP_ALIVE))
		abort();
	return 0;
}
