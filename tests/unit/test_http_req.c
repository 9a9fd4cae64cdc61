/* The metrics plugin's HTTP request parser (plugins/http_req.c): request
 * lines, header lines, Connection tokens, Content-Length and the
 * per-request accumulation.  Inputs are given with their length, as
 * ks_read_line hands them out (terminator removed, NUL bytes possible). */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <string.h>

#include "../../plugins/http_req.h"
#include "suites.h"

/* A string literal with its length, embedded NULs included. */
#define L(s) (s), (sizeof(s) - 1)

static int
reqline(const char *line, size_t len, struct http_reqline *rl)
{
	memset(rl, 0xa5, sizeof(*rl));
	return http_parse_request_line(line, len, rl);
}

static void
assert_path(const struct http_reqline *rl, const char *want)
{
	ck_assert_uint_eq(rl->path_len, strlen(want));
	ck_assert(memcmp(rl->path, want, rl->path_len) == 0);
}

START_TEST(test_methods)
{
	struct http_reqline rl;

	ck_assert_int_eq(reqline(L("GET /metrics HTTP/1.1"), &rl), 0);
	ck_assert_int_eq(rl.method, HTTP_M_GET);
	ck_assert_int_eq(rl.minor, 1);
	ck_assert_uint_eq(rl.method_len, 3);
	assert_path(&rl, "/metrics");
	ck_assert_int_eq(reqline(L("HEAD /metrics HTTP/1.0"), &rl), 0);
	ck_assert_int_eq(rl.method, HTTP_M_HEAD);
	ck_assert_int_eq(rl.minor, 0);
	ck_assert_int_eq(reqline(L("POST /metrics HTTP/1.1"), &rl), 0);
	ck_assert_int_eq(rl.method, HTTP_M_OTHER);
	ck_assert_uint_eq(rl.method_len, 4);
	/* Methods are case-sensitive: "get" is some other method. */
	ck_assert_int_eq(reqline(L("get /metrics HTTP/1.1"), &rl), 0);
	ck_assert_int_eq(rl.method, HTTP_M_OTHER);
	ck_assert_int_eq(reqline(L("GETX /metrics HTTP/1.1"), &rl), 0);
	ck_assert_int_eq(rl.method, HTTP_M_OTHER);
	ck_assert_int_eq(reqline(L("M-SEARCH * HTTP/1.1"), &rl), 0);
	assert_path(&rl, "*");
	/* Not a token. */
	ck_assert_int_eq(reqline(L("G(T /metrics HTTP/1.1"), &rl), 400);
	ck_assert_int_eq(reqline(L("G\0T /metrics HTTP/1.1"), &rl), 400);
}
END_TEST

START_TEST(test_paths_and_queries)
{
	struct http_reqline rl;

	ck_assert_int_eq(reqline(L("GET /metrics?a=1&b HTTP/1.1"), &rl), 0);
	assert_path(&rl, "/metrics");
	ck_assert_uint_eq(rl.target_len, strlen("/metrics?a=1&b"));
	ck_assert_int_eq(reqline(L("GET /metrics? HTTP/1.1"), &rl), 0);
	assert_path(&rl, "/metrics");
	ck_assert_int_eq(reqline(L("GET /?x=/metrics HTTP/1.1"), &rl), 0);
	assert_path(&rl, "/");
	ck_assert_int_eq(reqline(L("GET ?q HTTP/1.1"), &rl), 0);
	assert_path(&rl, "");
	ck_assert_int_eq(reqline(L("GET /a/b/%41 HTTP/1.1"), &rl), 0);
	assert_path(&rl, "/a/b/%41");
	/* The absolute form: the authority is not part of the path. */
	ck_assert_int_eq(
		reqline(L("GET http://h:9100/metrics?x HTTP/1.1"), &rl), 0);
	assert_path(&rl, "/metrics");
	ck_assert_int_eq(reqline(L("GET http://h HTTP/1.1"), &rl), 0);
	assert_path(&rl, "");
	ck_assert_int_eq(reqline(L("GET http://h?/metrics HTTP/1.1"), &rl), 0);
	assert_path(&rl, "");
	ck_assert_int_eq(reqline(L("GET ://x HTTP/1.1"), &rl), 0);
	assert_path(&rl, "://x");
}
END_TEST

START_TEST(test_versions)
{
	struct http_reqline rl;

	ck_assert_int_eq(reqline(L("GET / HTTP/1.0"), &rl), 0);
	ck_assert_int_eq(reqline(L("GET / HTTP/1.1"), &rl), 0);
	ck_assert_int_eq(reqline(L("GET / HTTP/2.0"), &rl), 505);
	ck_assert_int_eq(reqline(L("GET / HTTP/1.2"), &rl), 505);
	ck_assert_int_eq(reqline(L("GET / HTTP/0.9"), &rl), 505);
	ck_assert_int_eq(reqline(L("GET / HTTP/1.10"), &rl), 400);
	ck_assert_int_eq(reqline(L("GET / HTTP/1"), &rl), 400);
	ck_assert_int_eq(reqline(L("GET / http/1.1"), &rl), 400);
	ck_assert_int_eq(reqline(L("GET / HTTP/1.x"), &rl), 400);
	ck_assert_int_eq(reqline(L("GET / HTTP/1.1 "), &rl), 400);
	ck_assert_int_eq(reqline(L("GET / HTTP/1.1\r"), &rl), 400);
	ck_assert_int_eq(reqline(L("GET / HTTP/1.1\0"), &rl), 400);
}
END_TEST

START_TEST(test_bad_lines)
{
	struct http_reqline rl;

	ck_assert_int_eq(reqline(L(""), &rl), 400);
	ck_assert_int_eq(reqline(L("GET"), &rl), 400);
	ck_assert_int_eq(reqline(L("GET /"), &rl), 400); /* HTTP/0.9 */
	ck_assert_int_eq(reqline(L("GET / "), &rl), 400);
	ck_assert_int_eq(reqline(L(" GET / HTTP/1.1"), &rl), 400);
	ck_assert_int_eq(reqline(L("GET  / HTTP/1.1"), &rl), 400);
	ck_assert_int_eq(reqline(L("GET /  HTTP/1.1"), &rl), 400);
	ck_assert_int_eq(reqline(L("GET\t/ HTTP/1.1"), &rl), 400);
	ck_assert_int_eq(reqline(L("GET /a b HTTP/1.1"), &rl), 400);
	ck_assert_int_eq(reqline(L("GET /\x7f HTTP/1.1"), &rl), 400);
	ck_assert_int_eq(reqline(L("GET /\xc3\xa9 HTTP/1.1"), &rl), 400);
	ck_assert_int_eq(reqline(L("GET /\0 HTTP/1.1"), &rl), 400);
	ck_assert_int_eq(reqline(L("\x16\x03\x01\x02\x00\x01"), &rl), 400);
	/* A prefix of a good line, cut at every length: never accepted. */
	{
		const char good[] = "GET /metrics HTTP/1.1";
		size_t n;

		for (n = 0; n < sizeof(good) - 1; n++)
			ck_assert_int_ne(reqline(good, n, &rl), 0);
	}
}
END_TEST

START_TEST(test_header_lines)
{
	struct http_header h;

	ck_assert_int_eq(http_parse_header(L("Host: example"), &h), 0);
	ck_assert_uint_eq(h.name_len, 4);
	ck_assert(memcmp(h.name, "Host", 4) == 0);
	ck_assert_uint_eq(h.value_len, 7);
	ck_assert(memcmp(h.value, "example", 7) == 0);
	ck_assert_int_eq(http_parse_header(L("X:  \t a b \t "), &h), 0);
	ck_assert_uint_eq(h.value_len, 3);
	ck_assert(memcmp(h.value, "a b", 3) == 0);
	ck_assert_int_eq(http_parse_header(L("X:"), &h), 0);
	ck_assert_uint_eq(h.value_len, 0);
	ck_assert_int_eq(http_parse_header(L("X::y"), &h), 0);
	ck_assert(memcmp(h.value, ":y", 2) == 0);
	ck_assert_int_eq(http_parse_header(L("X: caf\xc3\xa9"), &h), 0);

	ck_assert_int_eq(http_parse_header(L("no colon"), &h), 400);
	ck_assert_int_eq(http_parse_header(L(": empty name"), &h), 400);
	ck_assert_int_eq(http_parse_header(L("Host : x"), &h), 400);
	ck_assert_int_eq(http_parse_header(L("Ho st: x"), &h), 400);
	ck_assert_int_eq(http_parse_header(L(" folded: x"), &h), 400);
	ck_assert_int_eq(http_parse_header(L("\tfolded"), &h), 400);
	ck_assert_int_eq(http_parse_header(L("X: a\rb"), &h), 400);
	ck_assert_int_eq(http_parse_header(L("X: a\0b"), &h), 400);
	ck_assert_int_eq(http_parse_header(L("X\0: a"), &h), 400);
}
END_TEST

START_TEST(test_connection_tokens)
{
	ck_assert_uint_eq(http_connection_tokens(L("close")), HTTP_CONN_CLOSE);
	ck_assert_uint_eq(http_connection_tokens(L("Close")), HTTP_CONN_CLOSE);
	ck_assert_uint_eq(http_connection_tokens(L("KEEP-ALIVE")),
			  HTTP_CONN_KEEP_ALIVE);
	ck_assert_uint_eq(http_connection_tokens(L("Upgrade, close")),
			  HTTP_CONN_CLOSE);
	ck_assert_uint_eq(http_connection_tokens(L(" ,, keep-alive ,\tTE")),
			  HTTP_CONN_KEEP_ALIVE);
	ck_assert_uint_eq(http_connection_tokens(L("keep-alive,close")),
			  HTTP_CONN_CLOSE | HTTP_CONN_KEEP_ALIVE);
	ck_assert_uint_eq(http_connection_tokens(L("")), 0);
	ck_assert_uint_eq(http_connection_tokens(L("closed")), 0);
	ck_assert_uint_eq(http_connection_tokens(L("clos")), 0);
	ck_assert_uint_eq(http_connection_tokens(L("close-ish, keep")), 0);
	ck_assert_uint_eq(http_connection_tokens(L("c lose")), 0);
	/* Only the first 5 bytes are given: "close", whatever follows. */
	ck_assert_uint_eq(http_connection_tokens("closed", 5), HTTP_CONN_CLOSE);
}
END_TEST

START_TEST(test_content_length)
{
	uint64_t v = 7;

	ck_assert_int_eq(http_content_length(L("0"), &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(http_content_length(L("00042"), &v), 0);
	ck_assert_uint_eq(v, 42);
	ck_assert_int_eq(http_content_length(L("18446744073709551615"), &v), 0);
	ck_assert(v == UINT64_MAX);
	v = 7;
	ck_assert_int_eq(http_content_length(L("18446744073709551616"), &v),
			 400);
	ck_assert_int_eq(http_content_length(L("18446744073709551620"), &v),
			 400);
	ck_assert_int_eq(http_content_length(L("99999999999999999999999"), &v),
			 400);
	ck_assert_uint_eq(v, 7); /* untouched on failure */
	ck_assert_int_eq(http_content_length(L(""), &v), 400);
	ck_assert_int_eq(http_content_length(L("-1"), &v), 400);
	ck_assert_int_eq(http_content_length(L("+1"), &v), 400);
	ck_assert_int_eq(http_content_length(L("1 2"), &v), 400);
	ck_assert_int_eq(http_content_length(L("5, 5"), &v), 400);
	ck_assert_int_eq(http_content_length(L("0x10"), &v), 400);
	ck_assert_int_eq(http_content_length(L("1\0"), &v), 400);
}
END_TEST

/* Feeds header lines (NUL-terminated strings) into a fresh request; the
 * status of the first refused one, or of http_req_finish. */
static int
headers(struct http_req *r, const char *const *lines)
{
	int rc;

	http_req_init(r);
	for (; *lines != NULL; lines++)
		if ((rc = http_req_header(r, *lines, strlen(*lines))) != 0)
			return rc;
	return http_req_finish(r);
}

START_TEST(test_request_headers)
{
	static const char *const plain[] = {"Host: x", "Accept: */*", NULL};
	static const char *const close11[] = {"connection: Close", NULL};
	static const char *const ka10[] = {"Connection: keep-alive", NULL};
	static const char *const both[] = {"Connection: keep-alive",
					   "CONNECTION: close", NULL};
	static const char *const body[] = {"Content-Length: 65536", NULL};
	static const char *const big[] = {"Content-Length: 65537", NULL};
	static const char *const same[] = {"Content-Length: 3",
					   "content-length: 3", NULL};
	static const char *const differ[] = {"Content-Length: 3",
					     "Content-Length: 4", NULL};
	static const char *const badlen[] = {"Content-Length: 3x", NULL};
	static const char *const wrap[] = {
		"Content-Length: 184467440737095516160", NULL};
	static const char *const te[] = {"Transfer-Encoding: chunked", NULL};
	static const char *const nocolon[] = {"Host: x", "garbage", NULL};
	struct http_req r;

	ck_assert_int_eq(headers(&r, plain), 0);
	ck_assert_uint_eq(r.nheaders, 2);
	ck_assert(http_req_keep_alive(&r, 1));
	ck_assert(!http_req_keep_alive(&r, 0));
	ck_assert_int_eq(headers(&r, close11), 0);
	ck_assert(!http_req_keep_alive(&r, 1));
	ck_assert_int_eq(headers(&r, ka10), 0);
	ck_assert(http_req_keep_alive(&r, 0));
	ck_assert(http_req_keep_alive(&r, 1));
	ck_assert_int_eq(headers(&r, both), 0);
	ck_assert(!http_req_keep_alive(&r, 0));
	ck_assert(!http_req_keep_alive(&r, 1));

	ck_assert_int_eq(headers(&r, body), 0);
	ck_assert(r.has_length && r.length == HTTP_MAX_BODY);
	ck_assert_int_eq(headers(&r, big), 413);
	ck_assert_int_eq(headers(&r, same), 0);
	ck_assert_uint_eq(r.length, 3);
	ck_assert_int_eq(headers(&r, differ), 400);
	ck_assert_int_eq(headers(&r, badlen), 400);
	ck_assert_int_eq(headers(&r, wrap), 400);
	ck_assert_int_eq(headers(&r, te), 501);
	ck_assert_int_eq(headers(&r, nocolon), 400);
}
END_TEST

START_TEST(test_header_count)
{
	struct http_req r;
	unsigned i;

	http_req_init(&r);
	for (i = 0; i < HTTP_MAX_HEADERS; i++)
		ck_assert_int_eq(http_req_header(&r, L("X-A: b")), 0);
	ck_assert_int_eq(http_req_header(&r, L("X-A: b")), 431);
	ck_assert_int_eq(http_req_finish(&r), 0);
}
END_TEST

Suite *
ks_suite_http_req(void)
{
	Suite *s = suite_create("http_req");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_methods);
	tcase_add_test(tc, test_paths_and_queries);
	tcase_add_test(tc, test_versions);
	tcase_add_test(tc, test_bad_lines);
	tcase_add_test(tc, test_header_lines);
	tcase_add_test(tc, test_connection_tokens);
	tcase_add_test(tc, test_content_length);
	tcase_add_test(tc, test_request_headers);
	tcase_add_test(tc, test_header_count);
	suite_add_tcase(s, tc);
	return s;
}
