/*
 * metrics: the daemon's counters over HTTP/1.1, for Prometheus.
 *
 *   GET /metrics, HEAD /metrics    200, the Prometheus text format 0.0.4
 *                                  (ks_metrics_text); 503 if it fails
 *   another method on /metrics     405, with "Allow: GET, HEAD"
 *   any other path                 404
 * A query string ("/metrics?x=1") is ignored.  Requests are answered in
 * order, pipelined ones too.  HTTP/1.1 connections stay open unless the
 * client sends "Connection: close"; HTTP/1.0 ones close unless it sends
 * "Connection: keep-alive".
 *
 * Bounds: the listener's max_line_length limits the request line (414)
 * and each header line (431); at most HTTP_MAX_HEADERS header lines
 * (431); a body (Content-Length) of up to HTTP_MAX_BODY bytes is read and
 * dropped, a larger one gets 413; a Transfer-Encoding gets 501; malformed
 * input 400, a version other than HTTP/1.0 and 1.1 505.  Each of those
 * answers closes the connection.  End of input, timeouts and errors end
 * the connection without an answer.
 *
 * Stream listeners only (no datagram hook): the loader refuses it on a
 * udp listener.  Who may read the metrics is the listener's business:
 * `allow`/`deny`, a unix socket's `mode`, TLS with client certificates.
 *
 * Options:
 *   path  string  the path served (default "/metrics"); starts with "/"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ksockd/plugin.h>

#include "http_req.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_DATE_LEN 40        /* "Sun, 06 Nov 1994 08:49:37 GMT" + room */
#define METRICS_MAX_BLANK 8        /* empty lines tolerated before a request */

struct metrics {
	const char *path; /* owned by the options; valid until fini */
	size_t path_len;
};

/* How one request is to be answered. */
struct answer {
	int status;
	int head;  /* a HEAD request: headers only */
	int keep;  /* the connection stays open afterwards */
	int minor; /* the request's HTTP/1.minor (1 when unknown) */
};

static const char *const metrics_keys[] = {"path", NULL};
static const char metrics_days[7][4] = {"Sun", "Mon", "Tue", "Wed",
					"Thu", "Fri", "Sat"};
static const char metrics_months[12][4] = {"Jan", "Feb", "Mar", "Apr",
					   "May", "Jun", "Jul", "Aug",
					   "Sep", "Oct", "Nov", "Dec"};

/* The path is compared byte for byte with the request's: characters a
 * request target cannot hold would never match, so they are refused here
 * rather than silently serving nothing. */
static int
metrics_path_ok(const char *path)
{
	const unsigned char *p = (const unsigned char *)path;

	if (p[0] != '/')
		return 0;
	for (; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '?' || *p == '#')
			return 0;
	return 1;
}

static int
metrics_init(const ks_options *opts, void **state, char *err, size_t errlen)
{
	const char *path = "/metrics";
	struct metrics *m;

	*state = NULL;
	if (opts != NULL) {
		if (ks_opt_check_keys(opts, metrics_keys, err, errlen) != KS_OK)
			return -1;
		if (ks_opt_string(opts, "path", path, &path, err, errlen) !=
		    KS_OK)
			return -1;
	}
	if (!metrics_path_ok(path)) {
		snprintf(err, errlen,
			 "option path: \"%s\" must start with \"/\" and hold "
			 "no spaces, control characters, '?' or '#'",
			 path);
		return -1;
	}
	m = malloc(sizeof(*m));
	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	m->path = path;
	m->path_len = strlen(path);
	*state = m;
	return 0;
}

static void
metrics_fini(void *state)
{
	free(state);
}

static const struct {
	int status;
	const char *reason;
} metrics_reasons[] = {
	{200, "OK"},
	{400, "Bad Request"},
	{404, "Not Found"},
	{405, "Method Not Allowed"},
	{413, "Content Too Large"},
	{414, "URI Too Long"},
	{431, "Request Header Fields Too Large"},
	{501, "Not Implemented"},
	{503, "Service Unavailable"},
	{505, "HTTP Version Not Supported"},
};

static const char *
metrics_reason(int status)
{
	size_t i;

	for (i = 0; i < sizeof(metrics_reasons) / sizeof(metrics_reasons[0]);
	     i++)
		if (metrics_reasons[i].status == status)
			return metrics_reasons[i].reason;
	return "Error";
}

/* The IMF-fixdate of RFC 9110 5.6.7, fixed English names whatever the
 * locale: an origin server with a clock sends Date. */
static void
metrics_date(char *buf, size_t size)
{
	time_t now = time(NULL);
	struct tm tm;

	if (gmtime_r(&now, &tm) == NULL) {
		snprintf(buf, size, "Thu, 01 Jan 1970 00:00:00 GMT");
		return;
	}
	snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d GMT",
		 metrics_days[tm.tm_wday % 7], tm.tm_mday,
		 metrics_months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour,
		 tm.tm_min, tm.tm_sec);
}

/* The status line and headers of an answer with a body of clen bytes.  A
 * closing answer says so; an HTTP/1.0 one that keeps the connection says
 * that (1.0 closes by default). */
static int
metrics_head(ks_wchan *out, const struct answer *a, const char *ctype,
	     size_t clen)
{
	char date[METRICS_DATE_LEN];

	metrics_date(date, sizeof(date));
	return ks_printf(out,
			 "HTTP/1.1 %d %s\r\n"
			 "Date: %s\r\n"
			 "Content-Type: %s\r\n"
			 "Content-Length: %zu\r\n"
			 "%s%s\r\n",
			 a->status, metrics_reason(a->status), date, ctype,
			 clen, a->status == 405 ? "Allow: GET, HEAD\r\n" : "",
			 !a->keep        ? "Connection: close\r\n"
			 : a->minor == 0 ? "Connection: keep-alive\r\n"
					 : "");
}

/* An answer other than 200: its reason phrase as a short text body. */
static int
metrics_error(ks_wchan *out, const struct answer *a)
{
	char body[64];
	int n, rc;

	n = snprintf(body, sizeof(body), "%s\n", metrics_reason(a->status));
	if ((rc = metrics_head(out, a, "text/plain; charset=utf-8",
			       (size_t)n)) != KS_OK)
		return rc;
	return a->head ? KS_OK : ks_write(out, body, (size_t)n);
}

static int
metrics_serve(ks_conn *conn, ks_wchan *out, struct answer *a)
{
	size_t len = 0;
	char *text;
	int rc;

	text = ks_metrics_text(conn, &len);
	if (text == NULL) {
		ks_conn_log(conn, KS_LOG_WARN,
			    "no metrics text (out of "
			    "memory?): answering 503");
		a->status = 503;
		return metrics_error(out, a);
	}
	a->status = 200;
	rc = metrics_head(out, a, METRICS_CONTENT_TYPE, len);
	if (rc == KS_OK && !a->head)
		rc = ks_write(out, text, len);
	free(text);
	return rc;
}

/* The request line, after at most METRICS_MAX_BLANK empty lines (RFC 9112
 * 2.2: a server should ignore one at least, such as the CRLF some clients
 * send after a body).  KS_OK with *status 0 and *rl filled, KS_OK with the
 * status to answer with, or the read error. */
static int
metrics_read_request_line(ks_rchan *in, struct http_reqline *rl, int *status)
{
	char *line;
	size_t len;
	int rc, blank;

	for (blank = 0;; blank++) {
		rc = ks_read_line(in, &line, &len);
		if (rc == KS_ETOOLONG) {
			*status = 414;
			return KS_OK;
		}
		if (rc != KS_OK)
			return rc;
		if (len > 0)
			break;
		if (blank == METRICS_MAX_BLANK) {
			*status = 400;
			return KS_OK;
		}
	}
	*status = http_parse_request_line(line, len, rl);
	return KS_OK;
}

/* The header lines, up to the empty one, then the body if there is one.
 * KS_OK with *status 0 and *req filled, KS_OK with the status to answer
 * with, or the read error. */
static int
metrics_read_headers(ks_rchan *in, struct http_req *req, int *status)
{
	char *line;
	size_t len;
	int rc;

	http_req_init(req);
	for (;;) {
		rc = ks_read_line(in, &line, &len);
		if (rc == KS_ETOOLONG) {
			*status = 431;
			return KS_OK;
		}
		if (rc != KS_OK)
			return rc;
		if (len == 0)
			break;
		if ((*status = http_req_header(req, line, len)) != 0)
			return KS_OK;
	}
	if ((*status = http_req_finish(req)) != 0)
		return KS_OK;
	/* Bounded by http_req_finish: the body is dropped, not answered. */
	if (req->has_length && req->length > 0)
		return ks_read_skip(in, (size_t)req->length);
	return KS_OK;
}

/* Reads and answers one request.  KS_OK with a->keep telling whether
 * another may follow, or the read/write error that ends the connection. */
static int
metrics_one(ks_conn *conn, ks_rchan *in, ks_wchan *out, const struct metrics *m,
	    struct answer *a)
{
	struct http_reqline rl;
	struct http_req req;
	int rc, status, route;

	a->head = 0;
	a->keep = 0;
	a->minor = 1;
	if ((rc = metrics_read_request_line(in, &rl, &status)) != KS_OK)
		return rc;
	if (status != 0)
		goto refuse;
	/* rl points into the line buffer, which the next read reuses:
	 * decide now what the request line selects. */
	a->minor = rl.minor;
	a->head = rl.method == HTTP_M_HEAD;
	if (rl.path_len != m->path_len ||
	    memcmp(rl.path, m->path, m->path_len) != 0)
		route = 404;
	else
		route = rl.method == HTTP_M_OTHER ? 405 : 200;
	if ((rc = metrics_read_headers(in, &req, &status)) != KS_OK)
		return rc;
	if (status != 0)
		goto refuse;
	a->keep = http_req_keep_alive(&req, a->minor);
	if (route == 200)
		return metrics_serve(conn, out, a);
	a->status = route;
	return metrics_error(out, a);

refuse:
	ks_conn_log(conn, KS_LOG_DEBUG, "refusing the request: %d %s", status,
		    metrics_reason(status));
	a->status = status;
	a->keep = 0;
	return metrics_error(out, a);
}

static int
metrics_handle(ks_conn *conn, ks_rchan *in, ks_wchan *out, void *state)
{
	const struct metrics *m = state;
	struct answer a;
	int rc;

	do {
		rc = metrics_one(conn, in, out, m, &a);
	} while (rc == KS_OK && a.keep);
	if (rc != KS_OK) {
		ks_conn_log(conn, KS_LOG_DEBUG, "connection ends: %s",
			    ks_strerror(rc));
		return rc == KS_EOF ? 0 : rc;
	}
	/* An answer that closes: the core's lingering close (at most 2 s and
	 * 1 MiB, whatever the client does) keeps a reset from destroying it
	 * while the client still sends. */
	return 0;
}

KS_PLUGIN_DEFINE(.name = "metrics", .version = "1.0", .init = metrics_init,
		 .handle = metrics_handle, .fini = metrics_fini);
