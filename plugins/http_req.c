/*
 * http_req: HTTP/1.x request line and header parsing (see http_req.h).
 * Strict where laxness has been an attack (request smuggling: whitespace
 * before a header's colon, line folding, doubtful Content-Length, any
 * Transfer-Encoding), plain elsewhere: this serves one document.
 */
#include <string.h>

#include "http_req.h"

/* RFC 9110 5.6.2 tchar: the characters of methods, header names and
 * Connection tokens. */
static int
is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static unsigned char
lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Case-insensitive comparison of s[0..len) with the lower-case literal
 * `lit`. */
static int
eq_nocase(const char *s, size_t len, const char *lit)
{
	size_t i;

	if (len != strlen(lit))
		return 0;
	for (i = 0; i < len; i++)
		if (lower((unsigned char)s[i]) != (unsigned char)lit[i])
			return 0;
	return 1;
}

/* The offset of the first c in s[0..len), or len. */
static size_t
find(const char *s, size_t len, char c)
{
	const char *p = memchr(s, c, len);

	return p != NULL ? (size_t)(p - s) : len;
}

/* "HTTP/d.d": 0 for 1.0 and 1.1 (*minor set), 505 for other digits, 400
 * for anything else. */
static int
parse_version(const char *v, size_t len, int *minor)
{
	if (len != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' ||
	    v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9')
		return 400;
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return 505;
	*minor = v[7] - '0';
	return 0;
}

/* Points rl->path at the target's path: past "scheme://authority" in the
 * absolute form (the authority ends at the first '/' or '?'), up to the
 * query. */
static void
split_path(struct http_reqline *rl)
{
	const char *t = rl->target;
	size_t len = rl->target_len, start = 0, sep;

	sep = find(t, len, ':');
	if (t[0] != '/' && sep > 0 && len - sep >= 3 &&
	    memcmp(t + sep, "://", 3) == 0) {
		start = sep + 3;
		while (start < len && t[start] != '/' && t[start] != '?')
			start++;
	}
	rl->path = t + start;
	rl->path_len = find(rl->path, len - start, '?');
}

int
http_parse_request_line(const char *line, size_t len, struct http_reqline *rl)
{
	size_t sp1, sp2, i;

	sp1 = find(line, len, ' ');
	if (sp1 == 0 || sp1 == len)
		return 400;
	for (i = 0; i < sp1; i++)
		if (!is_tchar((unsigned char)line[i]))
			return 400;
	sp2 = sp1 + 1 + find(line + sp1 + 1, len - sp1 - 1, ' ');
	if (sp2 == sp1 + 1 || sp2 >= len)
		return 400;
	for (i = sp1 + 1; i < sp2; i++)
		if ((unsigned char)line[i] <= 0x20 ||
		    (unsigned char)line[i] >= 0x7f)
			return 400;
	rl->method_str = line;
	rl->method_len = sp1;
	rl->target = line + sp1 + 1;
	rl->target_len = sp2 - sp1 - 1;
	/* Methods are case-sensitive (RFC 9110 9.1): "get" is another one. */
	if (sp1 == 3 && memcmp(line, "GET", 3) == 0)
		rl->method = HTTP_M_GET;
	else if (sp1 == 4 && memcmp(line, "HEAD", 4) == 0)
		rl->method = HTTP_M_HEAD;
	else
		rl->method = HTTP_M_OTHER;
	split_path(rl);
	return parse_version(line + sp2 + 1, len - sp2 - 1, &rl->minor);
}

int
http_parse_header(const char *line, size_t len, struct http_header *h)
{
	size_t colon, i, b, e;

	colon = find(line, len, ':');
	if (colon == 0 || colon == len)
		return 400;
	for (i = 0; i < colon; i++)
		if (!is_tchar((unsigned char)line[i]))
			return 400;
	for (i = colon + 1; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 400;
	}
	b = colon + 1;
	e = len;
	while (b < e && is_ows((unsigned char)line[b]))
		b++;
	while (e > b && is_ows((unsigned char)line[e - 1]))
		e--;
	h->name = line;
	h->name_len = colon;
	h->value = line + b;
	h->value_len = e - b;
	return 0;
}

unsigned
http_connection_tokens(const char *value, size_t len)
{
	unsigned flags = 0;
	size_t pos = 0;

	while (pos <= len) {
		size_t n = find(value + pos, len - pos, ','), b = pos,
		       e = pos + n;

		while (b < e && is_ows((unsigned char)value[b]))
			b++;
		while (e > b && is_ows((unsigned char)value[e - 1]))
			e--;
		if (eq_nocase(value + b, e - b, "close"))
			flags |= HTTP_CONN_CLOSE;
		else if (eq_nocase(value + b, e - b, "keep-alive"))
			flags |= HTTP_CONN_KEEP_ALIVE;
		pos += n + 1;
	}
	return flags;
}

int
http_content_length(const char *value, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0)
		return 400;
	for (i = 0; i < len; i++) {
		unsigned d = (unsigned char)value[i] - '0';

		if (d > 9)
			return 400;
		if (v > (UINT64_MAX - d) / 10)
			return 400; /* v * 10 + d would wrap */
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

void
http_req_init(struct http_req *r)
{
	memset(r, 0, sizeof(*r));
}

int
http_req_header(struct http_req *r, const char *line, size_t len)
{
	struct http_header h;
	uint64_t n;
	int rc;

	if (r->nheaders >= HTTP_MAX_HEADERS)
		return 431;
	r->nheaders++;
	if ((rc = http_parse_header(line, len, &h)) != 0)
		return rc;
	if (eq_nocase(h.name, h.name_len, "connection")) {
		r->conn |= http_connection_tokens(h.value, h.value_len);
	} else if (eq_nocase(h.name, h.name_len, "content-length")) {
		if ((rc = http_content_length(h.value, h.value_len, &n)) != 0)
			return rc;
		/* Two lengths that differ: which one frames the body is
		 * what request smuggling plays on (RFC 9112 6.3). */
		if (r->has_length && r->length != n)
			return 400;
		r->has_length = 1;
		r->length = n;
	} else if (eq_nocase(h.name, h.name_len, "transfer-encoding")) {
		r->has_te = 1;
		return 501;
	}
	return 0;
}

int
http_req_finish(const struct http_req *r)
{
	if (r->has_te)
		return 501;
	if (r->has_length && r->length > HTTP_MAX_BODY)
		return 413;
	return 0;
}

int
http_req_keep_alive(const struct http_req *r, int minor)
{
	if (r->conn & HTTP_CONN_CLOSE)
		return 0;
	if (minor == 0)
		return (r->conn & HTTP_CONN_KEEP_ALIVE) != 0;
	return 1;
}
