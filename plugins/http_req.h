/*
 * http_req: the HTTP/1.x request parsing of the metrics plugin, as pure
 * functions over (pointer, length) so that the unit tests and a fuzz target
 * can drive them without a daemon.  Compiled into the metrics plugin (and
 * the tests); nothing here is exported from the plugin, hence the http_
 * prefix instead of the public ks_.
 *
 * A line is what ks_read_line hands out: its terminator (LF or CRLF)
 * removed, possibly holding NUL bytes, not necessarily NUL-terminated.  No
 * function reads outside [line, line + len).
 *
 * The parsers return 0 when the input is acceptable, or the HTTP status the
 * server should answer with (and then close the connection): 400 for
 * malformed input, 505 for a version other than 1.0 and 1.1, 431 for too
 * many header lines, 501 for a Transfer-Encoding, 413 for a body that is
 * too large.  Nothing is allocated.
 */
#ifndef KS_HTTP_REQ_H
#define KS_HTTP_REQ_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 100        /* header lines per request */
#define HTTP_MAX_BODY (64u * 1024u) /* request body bytes read and dropped */

enum http_method {
	HTTP_M_OTHER = 0, /* a well-formed method the plugin does not serve */
	HTTP_M_GET,
	HTTP_M_HEAD,
};

/* Connection header tokens (bit set). */
#define HTTP_CONN_CLOSE 1u
#define HTTP_CONN_KEEP_ALIVE 2u

/* A parsed request line.  The pointers point into the line given to
 * http_parse_request_line and live as long as it does. */
struct http_reqline {
	enum http_method method;
	const char *method_str; /* the method token as sent */
	size_t method_len;
	const char *target; /* the request target as sent */
	size_t target_len;
	/* The path: the target's path part without the query (everything
	 * from the first '?' on is ignored).  For an absolute-form target
	 * ("http://host/x?y") the part after the authority ("/x"; an empty
	 * path is reported as length 0).  Inside target. */
	const char *path;
	size_t path_len;
	int minor; /* HTTP/1.minor: 0 or 1 */
};

/* Parses "METHOD SP TARGET SP HTTP/1.x": single spaces, a method of token
 * characters, a target of visible ASCII characters.  0 and *rl filled;
 * 400 for anything malformed (*rl undefined); 505 for a well-formed
 * "HTTP/d.d" other than 1.0 and 1.1. */
int http_parse_request_line(const char *line, size_t len,
			    struct http_reqline *rl);

/* One header line split in name and value.  The value has its leading and
 * trailing spaces and tabs removed.  Pointers into the line. */
struct http_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* Splits "Name: value".  0, or 400: no colon, an empty name, a name that is
 * not a token (whitespace before the colon included, RFC 9112 5.1), a line
 * starting with whitespace (obsolete line folding), or a control character
 * other than tab in the value. */
int http_parse_header(const char *line, size_t len, struct http_header *h);

/* The HTTP_CONN_* tokens in a Connection value: a comma-separated list,
 * tokens compared case-insensitively, spaces around them and empty list
 * elements ignored, unknown tokens ignored. */
unsigned http_connection_tokens(const char *value, size_t len);

/* A Content-Length value: 1*DIGIT.  0 and *out, or 400: empty, a non-digit
 * (a sign, a list "5, 5", spaces inside), or a value above UINT64_MAX. */
int http_content_length(const char *value, size_t len, uint64_t *out);

/* What the headers of one request said, accumulated line by line. */
struct http_req {
	unsigned nheaders; /* header lines seen */
	unsigned conn;     /* HTTP_CONN_* tokens of every Connection line */
	int has_length;    /* a Content-Length was seen */
	uint64_t length;   /* its value */
	int has_te;        /* a Transfer-Encoding was seen */
};

/* Starts a request: zeroes *r. */
void http_req_init(struct http_req *r);

/* Takes one header line (not the empty line ending the headers) into *r.
 * 0, or the status to answer with: 431 for the (HTTP_MAX_HEADERS + 1)th
 * line, 400 for a malformed line or Content-Length (or two that differ),
 * 501 for a Transfer-Encoding (this server reads no chunked bodies). */
int http_req_header(struct http_req *r, const char *line, size_t len);

/* After the last header: 0, or 413 when the body is longer than
 * HTTP_MAX_BODY. */
int http_req_finish(const struct http_req *r);

/* Whether the connection stays open after the response: HTTP/1.1 unless
 * "Connection: close", HTTP/1.0 only with "Connection: keep-alive" (and no
 * "close"). */
int http_req_keep_alive(const struct http_req *r, int minor);

#endif
