/*
 * The configuration reader (see conf_read.h for the contract).
 *
 * One pass: a lexer that follows libconfig 1.5's scanner.l rule by rule
 * (flex picks the longest match, the earlier rule on a tie) reads a stack
 * of files, appends every byte it consumes to the combined text (all but
 * the @include directives, which it replaces by the file they name), and
 * hands tokens to a table-free pushdown parser for grammar.y's language.
 *
 * Why the combined text lexes exactly as the files did: every included
 * file starts at the start of a line (the directive does) and the lexer
 * requires it to end outside comments and strings, then adds a newline if
 * it lacks one, so no token runs across a file boundary, as in libconfig,
 * which switches flex buffers there.  The one pattern that depends on
 * where a line starts is @include's, and any '@' left in the text once the
 * directives are gone is a syntax error, so config_read_string never sees
 * an include.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_read.h"
#include "log.h"
#include "util.h"

/* ---- the combined text and its line map ---- */

/* A run of combined lines that are consecutive lines of one file. */
struct seg {
	int comb_line; /* the run's first line in the combined text */
	int file_line; /* ... and in its file */
	unsigned file; /* index in files */
};

struct ks_conf_text {
	char *str;
	size_t len, cap;
	int at_bol; /* str is empty or ends with '\n' */
	int nlines; /* lines begun in str */
	struct seg *segs;
	size_t nsegs, segcap;
	char **files; /* files[0] is the top file */
	size_t nfiles, filecap;
};

/* ptr (with *cap elements of size sz) made room for `need` elements: the
 * new pointer, or NULL (ptr untouched) when out of memory. */
static void *
grow(void *ptr, size_t *cap, size_t need, size_t sz)
{
	size_t ncap = *cap > 0 ? *cap : 16;
	void *np;

	if (need <= *cap)
		return ptr;
	while (ncap < need)
		ncap *= 2;
	np = realloc(ptr, ncap * sz);
	if (np != NULL)
		*cap = ncap;
	return np;
}

/* The combined line t->nlines comes from `line` of file `file`. */
static int
seg_note(struct ks_conf_text *t, unsigned file, int line)
{
	struct seg *last = t->nsegs > 0 ? &t->segs[t->nsegs - 1] : NULL, *segs;

	if (last != NULL && last->file == file &&
	    last->file_line + (t->nlines - last->comb_line) == line)
		return 0;
	segs = grow(t->segs, &t->segcap, t->nsegs + 1, sizeof(*segs));
	if (segs == NULL)
		return -1;
	t->segs = segs;
	t->segs[t->nsegs++] = (struct seg){
		.comb_line = t->nlines, .file_line = line, .file = file};
	return 0;
}

/* Appends n bytes that start on `line` of file `file`. */
static int
text_add(struct ks_conf_text *t, unsigned file, int line, const char *p,
	 size_t n)
{
	const char *nl;
	char *str;
	size_t k;

	str = grow(t->str, &t->cap, t->len + n + 1, 1);
	if (str == NULL)
		return -1;
	t->str = str;
	while (n > 0) {
		if (t->at_bol) {
			t->nlines++;
			if (seg_note(t, file, line) != 0)
				return -1;
		}
		nl = memchr(p, '\n', n);
		k = nl != NULL ? (size_t)(nl - p) + 1 : n;
		memcpy(t->str + t->len, p, k);
		t->len += k;
		p += k;
		n -= k;
		t->at_bol = nl != NULL;
		if (nl != NULL)
			line++;
	}
	t->str[t->len] = '\0';
	return 0;
}

/* The index of `name` in t->files, added if new; -1 when out of memory. */
static long
text_intern(struct ks_conf_text *t, const char *name)
{
	char **files;
	size_t i;

	for (i = 0; i < t->nfiles; i++)
		if (strcmp(t->files[i], name) == 0)
			return (long)i;
	files = grow(t->files, &t->filecap, t->nfiles + 1, sizeof(*files));
	if (files == NULL)
		return -1;
	t->files = files;
	t->files[t->nfiles] = strdup(name);
	if (t->files[t->nfiles] == NULL)
		return -1;
	return (long)t->nfiles++;
}

const char *
ks_conf_text_str(const struct ks_conf_text *t)
{
	return t->str != NULL ? t->str : "";
}

void
ks_conf_text_where(const struct ks_conf_text *t, int line, const char **file,
		   int *file_line)
{
	size_t lo = 0, hi = t->nsegs, mid;
	const struct seg *s;

	if (t->nsegs == 0) {
		*file = t->nfiles > 0 ? t->files[0] : "";
		*file_line = line;
		return;
	}
	/* the last run that begins at or before `line` */
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (t->segs[mid].comb_line <= line)
			lo = mid;
		else
			hi = mid;
	}
	s = &t->segs[lo];
	*file = t->files[s->file];
	*file_line =
		s->file_line + (line > s->comb_line ? line - s->comb_line : 0);
}

void
ks_conf_text_free(struct ks_conf_text *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nfiles; i++)
		free(t->files[i]);
	free(t->files);
	free(t->segs);
	free(t->str);
	free(t);
}

/* ---- reading files ---- */

/* A file being lexed: the top file or an include. */
struct src {
	const char *path; /* as written, owned by the text */
	unsigned file;    /* its index in the text's files */
	char *buf;        /* its bytes, NUL-terminated, no NUL inside */
	size_t len, pos;
	int line; /* at pos */
	/* the first newline at or after where it was last looked for (the
	 * lexer only moves forward), or none to the end: without this a
	 * file of '#' and no newline would take quadratic time */
	const char *nl;
	int no_nl;
	dev_t dev;
	ino_t ino;
};

struct rd {
	struct ks_conf_text *t;
	struct src src[KS_CONF_MAX_INCLUDE_DEPTH + 1];
	int depth;    /* src[depth] is being lexed */
	size_t total; /* bytes read, each inclusion counted */
	unsigned nincludes;
	int errors;
	int fatal;  /* stop now: out of memory or a global limit */
	int desync; /* tokens were lost: grammar errors would be noise */
	/* the run of adjacent strings (libconfig concatenates them) */
	int in_run;
	size_t run_len;
	const char *run_file;
	int run_line;
};

static void rd_err(struct rd *r, const char *file, int line, const char *fmt,
		   ...) KS_PRINTF(4, 5);

/* Logs "FILE:LINE: message" ("FILE: message" when line is 0). */
static void
rd_err(struct rd *r, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (r->errors >= KS_CONF_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		ks_log(KS_LOG_ERR, "%s:%d: %s", file, line, msg);
	else
		ks_log(KS_LOG_ERR, "%s: %s", file, msg);
	if (++r->errors == KS_CONF_MAX_ERRORS) {
		ks_log(KS_LOG_ERR, "%s: %d errors, giving up", r->t->files[0],
		       KS_CONF_MAX_ERRORS);
		r->fatal = 1;
	}
}

static void
rd_oom(struct rd *r, const char *file, int line)
{
	rd_err(r, file, line, "out of memory");
	r->fatal = 1;
}

/* What a file that is not a regular file is, for messages. */
static const char *
file_kind(mode_t m)
{
	if (S_ISDIR(m))
		return "is a directory";
	if (S_ISFIFO(m))
		return "is a FIFO";
	if (S_ISCHR(m))
		return "is a character device";
	if (S_ISBLK(m))
		return "is a block device";
	if (S_ISSOCK(m))
		return "is a socket";
	return "is of an unknown type";
}

/* Where a file problem is reported: the include directive, or the top file
 * itself. */
struct opener {
	const char *file; /* NULL for the top file */
	int line;
};

static void file_err(struct rd *r, const struct opener *o, const char *path,
		     const char *fmt, ...) KS_PRINTF(4, 5);

static void
file_err(struct rd *r, const struct opener *o, const char *path,
	 const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (o->file != NULL)
		rd_err(r, o->file, o->line, "cannot include \"%s\": %s", path,
		       msg);
	else
		rd_err(r, path, 0, "%s", msg);
}

/* Regular files only: checked before opening (a device is never opened)
 * and again on the descriptor (the path may have changed meanwhile). */
static int
check_regular(struct rd *r, const struct opener *o, const char *path,
	      const struct stat *st)
{
	if (S_ISREG(st->st_mode))
		return 0;
	file_err(r, o, path, "%s, not a regular file", file_kind(st->st_mode));
	return -1;
}

/* The most this file may hold: the per-file limit, or what is left of the
 * total, whichever is smaller; *total_bound says which. */
static size_t
read_cap(const struct rd *r, int *total_bound)
{
	size_t left = KS_CONF_MAX_TOTAL_SIZE - r->total;

	*total_bound = left < KS_CONF_MAX_FILE_SIZE;
	return *total_bound ? left : KS_CONF_MAX_FILE_SIZE;
}

static void
too_big(struct rd *r, const struct opener *o, const char *path, int total_bound)
{
	if (total_bound) {
		file_err(r, o, path,
			 "the configuration exceeds %u MiB with its includes",
			 KS_CONF_MAX_TOTAL_SIZE >> 20);
		r->fatal = 1; /* an include bomb: nothing more to learn */
	} else {
		file_err(r, o, path, "larger than %u MiB",
			 KS_CONF_MAX_FILE_SIZE >> 20);
	}
}

/* Reads the whole of fd into s->buf (NUL-terminated); `size` (from fstat)
 * is a hint: the file may grow or shrink while it is read. */
static int
read_all(struct rd *r, const struct opener *o, const char *path, int fd,
	 off_t size, struct src *s)
{
	int total_bound;
	size_t cap = read_cap(r, &total_bound), alloc, len = 0;
	char *buf, *nb;
	ssize_t n;

	if (size < 0 || (uintmax_t)size > cap) {
		too_big(r, o, path, total_bound);
		return -1;
	}
	/* room for one byte more than the limit, to see a file that grew,
	 * and the NUL */
	alloc = (size_t)size + 2;
	buf = malloc(alloc);
	if (buf == NULL)
		goto oom;
	for (;;) {
		if (len + 1 == alloc) {
			alloc = KS_MIN(alloc * 2, cap + 2);
			nb = realloc(buf, alloc);
			if (nb == NULL)
				goto oom;
			buf = nb;
		}
		n = read(fd, buf + len, alloc - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			file_err(r, o, path, "%s", strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > cap) {
			too_big(r, o, path, total_bound);
			goto fail;
		}
	}
	buf[len] = '\0';
	s->buf = buf;
	s->len = len;
	return 0;
oom:
	rd_oom(r, o->file != NULL ? o->file : path, o->line);
fail:
	free(buf);
	return -1;
}

/* Opens, checks and reads `path` into *s.  0, or -1 after an error. */
static int
src_open(struct rd *r, const struct opener *o, const char *path, struct src *s)
{
	struct stat st;
	const char *nul;
	long file;
	int fd, rc = -1, i, line;
	size_t k;

	if (stat(path, &st) != 0) {
		file_err(r, o, path, "%s", strerror(errno));
		return -1;
	}
	if (check_regular(r, o, path, &st) != 0)
		return -1;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		file_err(r, o, path, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		file_err(r, o, path, "%s", strerror(errno));
		goto out;
	}
	if (check_regular(r, o, path, &st) != 0)
		goto out;
	for (i = 0; o->file != NULL && i <= r->depth; i++) {
		if (r->src[i].dev == st.st_dev && r->src[i].ino == st.st_ino) {
			file_err(r, o, path,
				 "it is already being read (an include cycle)");
			goto out;
		}
	}
	if (read_all(r, o, path, fd, st.st_size, s) != 0)
		goto out;
	file = text_intern(r->t, path);
	if (file < 0) {
		rd_oom(r, o->file != NULL ? o->file : path, o->line);
		goto free_buf;
	}
	s->file = (unsigned)file;
	s->path = r->t->files[file];
	s->pos = 0;
	s->line = 1;
	s->nl = NULL;
	s->no_nl = 0;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	nul = memchr(s->buf, '\0', s->len);
	if (nul != NULL) {
		for (line = 1, k = 0; s->buf + k < nul; k++)
			line += s->buf[k] == '\n';
		rd_err(r, s->path, line,
		       "NUL byte (a configuration file is text)");
		goto free_buf;
	}
	r->total += s->len;
	rc = 0;
	goto out;
free_buf:
	free(s->buf);
	s->buf = NULL;
out:
	close(fd);
	return rc;
}

/* ---- the lexer: scanner.l's rules ---- */

enum tok_kind {
	T_EOF,
	T_NAME,
	T_EQUALS, /* = or : */
	T_COMMA,
	T_SEMI,
	T_GROUP_START,
	T_GROUP_END,
	T_ARRAY_START,
	T_ARRAY_END,
	T_LIST_START,
	T_LIST_END,
	T_BOOL,
	T_INT,
	T_INT64,
	T_HEX,
	T_HEX64,
	T_FLOAT,
	T_STRING,
	T_GARBAGE,
	/* consumed by the lexer itself */
	M_SKIP, /* blanks, newlines, line comments */
	M_COMMENT,
	M_QUOTE,
	M_INCLUDE,
};

struct tok {
	enum tok_kind kind;
	const char *p; /* its text in its file, valid until the next token */
	size_t len;
	const char *file;
	int line;      /* where it starts */
	int comb_line; /* ... in the combined text */
	size_t off;    /* where its text is in the combined text */
	size_t slen;   /* T_STRING: bytes once unescaped */
};

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_xdigit(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
xval(int c)
{
	return is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
}

static size_t
span_digits(const char *p)
{
	size_t n = 0;

	while (is_digit(p[n]))
		n++;
	return n;
}

/* [eE][-+]?[0-9]+ */
static size_t
m_exponent(const char *p)
{
	size_t n = 1, d;

	if (p[0] != 'e' && p[0] != 'E')
		return 0;
	if (p[n] == '-' || p[n] == '+')
		n++;
	d = span_digits(p + n);
	return d > 0 ? n + d : 0;
}

/* ([-+]?([0-9]*)?\.[0-9]*([eE][-+]?[0-9]+)?)
 * | ([-+]?([0-9]+)(\.[0-9]*)?[eE][-+]?[0-9]+) */
static size_t
m_float(const char *p)
{
	size_t sign = p[0] == '-' || p[0] == '+', d = span_digits(p + sign);
	size_t a = 0, b = 0, n, e;

	n = sign + d;
	if (p[n] == '.') {
		n++;
		n += span_digits(p + n);
		a = n + m_exponent(p + n);
	}
	if (d > 0) {
		n = sign + d;
		if (p[n] == '.') {
			n++;
			n += span_digits(p + n);
		}
		e = m_exponent(p + n);
		b = e > 0 ? n + e : 0;
	}
	return KS_MAX(a, b);
}

/* [-+]?[0-9]+, then L(L)? for integer64 */
static size_t
m_integer(const char *p, size_t *with_l)
{
	size_t sign = p[0] == '-' || p[0] == '+', d = span_digits(p + sign);
	size_t n = sign + d;

	*with_l = 0;
	if (d == 0)
		return 0;
	if (p[n] == 'L')
		*with_l = p[n + 1] == 'L' ? n + 2 : n + 1;
	return n;
}

/* 0[Xx][0-9A-Fa-f]+, then L(L)? for hex64 */
static size_t
m_hex(const char *p, size_t *with_l)
{
	size_t n = 2;

	*with_l = 0;
	if (p[0] != '0' || (p[1] != 'x' && p[1] != 'X') || !is_xdigit(p[2]))
		return 0;
	while (is_xdigit(p[n]))
		n++;
	if (p[n] == 'L')
		*with_l = p[n + 1] == 'L' ? n + 2 : n + 1;
	return n;
}

/* [A-Za-z\*][-A-Za-z0-9_\*]* */
static size_t
m_name(const char *p)
{
	size_t n = 1;

	if (!is_alpha(p[0]) && p[0] != '*')
		return 0;
	while (is_alpha(p[n]) || is_digit(p[n]) || p[n] == '-' || p[n] == '_' ||
	       p[n] == '*')
		n++;
	return n;
}

static size_t
m_word(const char *p, const char *word)
{
	size_t n;

	for (n = 0; word[n] != '\0'; n++)
		if ((p[n] | 0x20) != word[n])
			return 0;
	return n;
}

/* ^[ \t]*@include[ \t]+\" */
static size_t
m_include(const char *p)
{
	size_t n = 0, b;

	while (p[n] == ' ' || p[n] == '\t')
		n++;
	if (strncmp(p + n, "@include", 8) != 0)
		return 0;
	n += 8;
	for (b = n; p[n] == ' ' || p[n] == '\t'; n++)
		;
	return n > b && p[n] == '"' ? n + 1 : 0;
}

/* The first newline at or after p in s, or NULL. */
static const char *
next_newline(struct src *s, const char *p)
{
	if (s->no_nl)
		return NULL;
	if (s->nl == NULL || s->nl < p) {
		s->nl = strchr(p, '\n');
		s->no_nl = s->nl == NULL;
	}
	return s->nl;
}

/* (#|\/\/).*$ -- `$` needs a newline: not at the end of the file */
static size_t
m_line_comment(struct src *s, const char *p)
{
	const char *nl;

	if (p[0] != '#' && (p[0] != '/' || p[1] != '/'))
		return 0;
	nl = next_newline(s, p);
	return nl != NULL ? (size_t)(nl - p) : 0;
}

/* The rule that matches at the current position of s in the INITIAL
 * state, and its length: the longest match, the earliest rule in scanner.l
 * on a tie (hence the strict > below, rules tried in the file's order). */
static enum tok_kind
match(struct src *s, size_t *len)
{
	const char *p = s->buf + s->pos;
	int bol = s->pos == 0 || p[-1] == '\n';
	enum tok_kind k = T_GARBAGE;
	size_t best = 1, n, l;

#define TRY(kind, length)                                                 \
	do {                                                              \
		n = (length);                                             \
		if (n > best || (n == best && k == T_GARBAGE && n > 0)) { \
			best = n;                                         \
			k = (kind);                                       \
		}                                                         \
	} while (0)

	TRY(M_COMMENT, p[0] == '/' && p[1] == '*' ? 2 : 0);
	TRY(M_QUOTE, p[0] == '"');
	if (bol)
		TRY(M_INCLUDE, m_include(p));
	TRY(M_SKIP, p[0] == '\n' || p[0] == '\r' || p[0] == '\f');
	TRY(M_SKIP, strspn(p, " \t"));
	TRY(T_EQUALS, p[0] == '=' || p[0] == ':');
	TRY(T_COMMA, p[0] == ',');
	TRY(T_GROUP_START, p[0] == '{');
	TRY(T_GROUP_END, p[0] == '}');
	TRY(T_BOOL, m_word(p, "true"));
	TRY(T_BOOL, m_word(p, "false"));
	TRY(T_NAME, m_name(p));
	TRY(T_FLOAT, m_float(p));
	TRY(T_INT, m_integer(p, &l));
	TRY(T_INT64, l);
	TRY(T_HEX, m_hex(p, &l));
	TRY(T_HEX64, l);
	TRY(T_ARRAY_START, p[0] == '[');
	TRY(T_ARRAY_END, p[0] == ']');
	TRY(T_LIST_START, p[0] == '(');
	TRY(T_LIST_END, p[0] == ')');
	TRY(T_SEMI, p[0] == ';');
	TRY(M_SKIP, m_line_comment(s, p));
#undef TRY
	*len = best;
	return k;
}

/* Consumes n bytes of the current file, into the combined text or not. */
static int
consume(struct rd *r, size_t n, int keep)
{
	struct src *s = &r->src[r->depth];
	const char *p = s->buf + s->pos;
	size_t i;

	if (keep && text_add(r->t, s->file, s->line, p, n) != 0) {
		rd_oom(r, s->path, s->line);
		return -1;
	}
	for (i = 0; i < n; i++)
		s->line += p[i] == '\n';
	s->pos += n;
	return 0;
}

/* Renders a token for a message: at most 40 bytes, escaped. */
static const char *
show(const char *p, size_t len, char *out, size_t cap)
{
	size_t i, o = 0;
	unsigned char c;

	for (i = 0; i < len && o + 8 < cap; i++) {
		c = (unsigned char)p[i];
		if (i == 40) {
			o += (size_t)snprintf(out + o, cap - o, "...");
			break;
		}
		if (c == '\n')
			o += (size_t)snprintf(out + o, cap - o, "\\n");
		else if (c == '\t')
			o += (size_t)snprintf(out + o, cap - o, "\\t");
		else if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

/* Value rules for integer literals: what libconfig 1.5 would silently
 * truncate (it reads decimals with atoi, hex with strtoul into an int,
 * L literals with atoll/strtoull) is an error. */
static void
check_integer(struct rd *r, const struct tok *t)
{
	char lit[64];
	long long v;
	unsigned long long u;
	int fits64;

	errno = 0;
	switch (t->kind) {
	case T_INT:
		v = strtoll(t->p, NULL, 10);
		fits64 = errno != ERANGE;
		if (fits64 && v >= INT_MIN && v <= INT_MAX)
			return;
		show(t->p, t->len, lit, sizeof(lit));
		if (fits64)
			rd_err(r, t->file, t->line,
			       "integer %s does not fit in 32 bits (libconfig "
			       "would read it as %d); write %sL for a 64-bit "
			       "value",
			       lit, atoi(t->p), lit);
		else
			rd_err(r, t->file, t->line,
			       "integer %s does not fit in 32 bits (libconfig "
			       "would read it as %d), nor in 64 bits",
			       lit, atoi(t->p));
		return;
	case T_HEX:
		u = strtoull(t->p, NULL, 16);
		fits64 = errno != ERANGE && u <= LLONG_MAX;
		if (errno != ERANGE && u <= INT_MAX)
			return;
		show(t->p, t->len, lit, sizeof(lit));
		if (fits64)
			rd_err(r, t->file, t->line,
			       "integer %s does not fit in 32 bits (libconfig "
			       "would read it as %d); write %sL for a 64-bit "
			       "value",
			       lit, (int)strtoul(t->p, NULL, 16), lit);
		else
			rd_err(r, t->file, t->line,
			       "integer %s does not fit in 32 bits (libconfig "
			       "would read it as %d), nor in 64 bits",
			       lit, (int)strtoul(t->p, NULL, 16));
		return;
	case T_INT64:
		(void)strtoll(t->p, NULL, 10);
		if (errno != ERANGE)
			return;
		show(t->p, t->len, lit, sizeof(lit));
		rd_err(r, t->file, t->line,
		       "integer %s does not fit in 64 bits (libconfig would "
		       "read it as %lld)",
		       lit, atoll(t->p));
		return;
	case T_HEX64:
		u = strtoull(t->p, NULL, 16);
		if (errno != ERANGE && u <= LLONG_MAX)
			return;
		show(t->p, t->len, lit, sizeof(lit));
		rd_err(r, t->file, t->line,
		       "integer %s does not fit in 64 bits (libconfig would "
		       "read it as %lld)",
		       lit, (long long)u);
		return;
	default:
		return;
	}
}

/* Scans a string from its opening quote: 1 and *t when it closes, 0 when
 * the file ends first (an error in an included file; at the very end
 * libconfig drops the string without a word, and so does this). */
static int
lex_string(struct rd *r, struct tok *t)
{
	struct src *s = &r->src[r->depth];
	const char *p = s->buf + s->pos;
	size_t i = 1, slen = 0;

	t->line = s->line;
	while (p[i] != '\0' && p[i] != '"') {
		if (p[i] != '\\') {
			i++; /* [^\"\\]+ */
		} else if (p[i + 1] != '\0' && strchr("nrtf\\\"", p[i + 1])) {
			i += 2;
		} else if ((p[i + 1] == 'x' || p[i + 1] == 'X') &&
			   is_xdigit(p[i + 2]) && is_xdigit(p[i + 3])) {
			/* libconfig appends the byte with strlen: \x00 adds
			 * nothing */
			if (xval(p[i + 2]) * 16 + xval(p[i + 3]) == 0) {
				i += 4;
				continue;
			}
			i += 4;
		} else {
			i++; /* a lone backslash is kept */
		}
		slen++;
	}
	if (p[i] == '\0') {
		if (r->depth > 0) {
			rd_err(r, s->path, t->line,
			       "unterminated string (an included file must "
			       "end outside strings)");
			r->desync = 1;
		}
		consume(r, i, 1);
		return 0;
	}
	t->kind = T_STRING;
	t->p = p;
	t->len = i + 1;
	t->slen = slen;
	return 1;
}

static void
lex_comment(struct rd *r)
{
	struct src *s = &r->src[r->depth];
	const char *p = s->buf + s->pos, *end = strstr(p + 2, "*/");
	int line = s->line;

	if (end == NULL && r->depth > 0)
		rd_err(r, s->path, line,
		       "unterminated comment (an included file must end "
		       "outside comments)");
	consume(r, end != NULL ? (size_t)(end + 2 - p) : s->len - s->pos, 1);
}

static void include_file(struct rd *r, const char *path, int line);

/* The directive from the start of its line through the opening quote is n
 * bytes; reads the name (escapes \\ and \") and includes the file. */
static void
lex_include(struct rd *r, size_t n)
{
	struct src *s = &r->src[r->depth];
	const char *p = s->buf + s->pos;
	int line = s->line, bad = 0;
	size_t i, end, o = 0;
	char *path;

	for (end = n; p[end] != '\0' && p[end] != '"'; end++)
		if (p[end] == '\\' && (p[end + 1] == '\\' || p[end + 1] == '"'))
			end++;
	path = malloc(end - n + 1);
	if (path == NULL) {
		rd_oom(r, s->path, line);
		return;
	}
	for (i = n; i < end; i++) {
		if (p[i] == '\\' && (p[i + 1] == '\\' || p[i + 1] == '"'))
			i++;
		else if (p[i] == '\\')
			bad = 1;
		path[o++] = p[i];
	}
	path[o] = '\0';
	if (p[end] == '\0') {
		rd_err(r, s->path, line, "unterminated @include");
		bad = 1;
	} else {
		end++;
		if (bad)
			rd_err(r, s->path, line,
			       "@include: a backslash escapes only \\ or \" "
			       "in a file name");
	}
	consume(r, end, 0);
	if (!bad)
		include_file(r, path, line);
	free(path);
}

static void
include_file(struct rd *r, const char *path, int line)
{
	struct opener o = {.file = r->src[r->depth].path, .line = line};

	if (r->depth == KS_CONF_MAX_INCLUDE_DEPTH) {
		file_err(r, &o, path, "includes nested more than %d deep",
			 KS_CONF_MAX_INCLUDE_DEPTH);
		return;
	}
	if (r->nincludes == KS_CONF_MAX_INCLUDES) {
		file_err(r, &o, path, "more than %d includes",
			 KS_CONF_MAX_INCLUDES);
		r->fatal = 1;
		return;
	}
	r->nincludes++;
	if (src_open(r, &o, path, &r->src[r->depth + 1]) == 0)
		r->depth++;
}

/* The end of an included file: a newline keeps its last token from
 * running into the rest of the directive's line. */
static void
src_pop(struct rd *r)
{
	struct src *s = &r->src[r->depth];

	if (s->len > 0 && s->buf[s->len - 1] != '\n' &&
	    text_add(r->t, s->file, s->line, "\n", 1) != 0)
		rd_oom(r, s->path, s->line);
	free(s->buf);
	s->buf = NULL;
	r->depth--;
}

/* A run of adjacent strings ends: its length is the value's. */
static void
run_end(struct rd *r)
{
	if (r->in_run && r->run_len > KS_CONF_MAX_STRING)
		rd_err(r, r->run_file, r->run_line,
		       "string longer than %u KiB (%zu bytes)",
		       KS_CONF_MAX_STRING >> 10, r->run_len);
	r->in_run = 0;
}

static void
run_add(struct rd *r, const struct tok *t)
{
	if (!r->in_run) {
		r->in_run = 1;
		r->run_len = 0;
		r->run_file = t->file;
		r->run_line = t->line;
	}
	r->run_len += t->slen;
}

/* The next token for the parser (T_EOF at the end, or once fatal). */
static void
lex(struct rd *r, struct tok *t)
{
	struct src *s;
	enum tok_kind k;
	size_t n;

	for (;;) {
		s = &r->src[r->depth];
		if (!r->fatal && s->pos == s->len && r->depth > 0) {
			src_pop(r);
			continue;
		}
		t->file = s->path;
		t->line = s->line;
		t->comb_line = r->t->nlines + r->t->at_bol;
		t->off = r->t->len;
		if (r->fatal || s->pos == s->len) {
			run_end(r);
			t->kind = T_EOF;
			t->p = "";
			t->len = 0;
			return;
		}
		k = match(s, &n);
		switch (k) {
		case M_SKIP:
			consume(r, n, 1);
			continue;
		case M_COMMENT:
			lex_comment(r);
			continue;
		case M_INCLUDE:
			lex_include(r, n);
			continue;
		case M_QUOTE:
			if (!lex_string(r, t))
				continue;
			n = t->len;
			break;
		default:
			t->kind = k;
			t->p = s->buf + s->pos;
			t->len = n;
			break;
		}
		if (consume(r, n, 1) != 0)
			continue; /* fatal: T_EOF next */
		if (t->kind == T_STRING) {
			run_add(r, t);
			return;
		}
		run_end(r);
		check_integer(r, t);
		return;
	}
}

/* ---- the parser: grammar.y's language ---- */

enum frame_kind { F_ROOT, F_GROUP, F_LIST, F_ARRAY };

struct frame {
	enum frame_kind kind;
	unsigned group;   /* F_ROOT, F_GROUP: its number, for duplicates */
	unsigned members; /* ... and its settings so far */
	int elem;         /* F_ARRAY: the type of its first element, or 0 */
	const char *file;
	int line; /* where it opens */
};

enum expect {
	X_SETTING, /* a name, or the end of the group */
	X_EQUALS,  /* = or : */
	X_VALUE,   /* a value (an array: a scalar) */
	X_OPEN,    /* just after ( or [: a value or the end */
	X_AFTER,   /* after a value */
};

/* A setting seen, for the duplicate check: its name is in the combined
 * text (which only grows, so the offset stays valid). */
struct name_ent {
	uint32_t off, len; /* len 0: a free slot */
	uint32_t group;
	int32_t comb_line;
};

struct ps {
	struct rd *r;
	struct frame fr[KS_CONF_MAX_NESTING + 1];
	int nfr;
	enum expect x;
	int last_string; /* the value just ended was a string */
	int dead;        /* after a syntax error: tokens are only lexed */
	unsigned ngroups;
	unsigned long long
		compares; /* what libconfig's duplicate check costs */
	struct name_ent *names;
	size_t nnames, namecap; /* namecap: a power of two */
};

static uint32_t
name_hash(const char *p, size_t len, uint32_t group)
{
	uint32_t h = 2166136261u ^ group;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

static int
names_grow(struct ps *p)
{
	size_t cap = p->namecap > 0 ? p->namecap * 2 : 64, i, j;
	struct name_ent *nt = calloc(cap, sizeof(*nt)), *e;
	const char *str = p->r->t->str;

	if (nt == NULL)
		return -1;
	for (i = 0; i < p->namecap; i++) {
		e = &p->names[i];
		if (e->len == 0)
			continue;
		j = name_hash(str + e->off, e->len, e->group) & (cap - 1);
		while (nt[j].len != 0)
			j = (j + 1) & (cap - 1);
		nt[j] = *e;
	}
	free(p->names);
	p->names = nt;
	p->namecap = cap;
	return 0;
}

/* libconfig 1.5 adds a setting to a group after comparing its name with
 * every earlier member's: a group of n costs n(n-1)/2 comparisons, 40000
 * settings take it seconds.  Past the budget, an error (once). */
static void
count_compares(struct ps *p, const struct tok *t)
{
	struct frame *f = &p->fr[p->nfr - 1];

	if (p->compares > KS_CONF_MAX_COMPARES)
		return;
	p->compares += f->members++;
	if (p->compares > KS_CONF_MAX_COMPARES)
		rd_err(p->r, t->file, t->line,
		       "too many settings in groups for libconfig, which "
		       "compares each name with every earlier one in its group "
		       "(at most %llu comparisons in all: one group of %u "
		       "settings; lists cost nothing)",
		       (unsigned long long)KS_CONF_MAX_COMPARES,
		       KS_CONF_MAX_GROUP);
}

/* Records the setting name t in the innermost group; libconfig compares
 * names with strcmp up to a path separator, which a name cannot hold.
 * Reports a duplicate. */
static void
name_add(struct ps *p, const struct tok *t)
{
	const struct ks_conf_text *txt = p->r->t;
	uint32_t group = p->fr[p->nfr - 1].group;
	struct name_ent *e;
	const char *file;
	char shown[64];
	size_t j;
	int line;

	if ((p->nnames + 1) * 4 > p->namecap * 3 && names_grow(p) != 0) {
		rd_oom(p->r, t->file, t->line);
		return;
	}
	j = name_hash(t->p, t->len, group) & (p->namecap - 1);
	for (; p->names[j].len != 0; j = (j + 1) & (p->namecap - 1)) {
		e = &p->names[j];
		if (e->group != group || e->len != t->len ||
		    memcmp(txt->str + e->off, t->p, t->len) != 0)
			continue;
		ks_conf_text_where(txt, e->comb_line, &file, &line);
		rd_err(p->r, t->file, t->line,
		       "duplicate setting \"%s\" (first set at %s:%d)",
		       show(t->p, t->len, shown, sizeof(shown)), file, line);
		return;
	}
	p->names[j] = (struct name_ent){.off = (uint32_t)t->off,
					.len = (uint32_t)t->len,
					.group = group,
					.comb_line = t->comb_line};
	p->nnames++;
}

static const char *
elem_name(int elem)
{
	static const char *const names[] = {"",           "a boolean",
					    "an integer", "a 64-bit integer",
					    "a float",    "a string"};

	return names[elem];
}

/* The array element type of scalar token kind k (grammar.y: INT and HEX
 * make CONFIG_TYPE_INT, INT64 and HEX64 CONFIG_TYPE_INT64). */
static int
elem_of(enum tok_kind k)
{
	switch (k) {
	case T_BOOL:
		return 1;
	case T_INT:
	case T_HEX:
		return 2;
	case T_INT64:
	case T_HEX64:
		return 3;
	case T_FLOAT:
		return 4;
	case T_STRING:
		return 5;
	default:
		return 0;
	}
}

static void
syntax(struct ps *p, const struct tok *t, const char *expected)
{
	const struct frame *f = &p->fr[p->nfr - 1];
	char shown[192];

	p->dead = 1;
	if (t->kind != T_EOF) {
		if (t->kind == T_GARBAGE && t->p[0] == '@' &&
		    strncmp(t->p, "@include", 8) == 0)
			expected = "@include must start a line and be followed "
				   "by blanks and a quoted file name";
		rd_err(p->r, t->file, t->line, "syntax error near '%s' (%s)",
		       show(t->p, t->len, shown, sizeof(shown)), expected);
	} else if (p->nfr > 1) {
		rd_err(p->r, t->file, t->line,
		       "syntax error at end of file (the '%c' at %s:%d is not "
		       "closed)",
		       f->kind == F_GROUP  ? '{'
		       : f->kind == F_LIST ? '('
					   : '[',
		       f->file, f->line);
	} else {
		rd_err(p->r, t->file, t->line,
		       "syntax error at end of file (%s)", expected);
	}
}

static void
push(struct ps *p, enum frame_kind kind, const struct tok *t)
{
	struct frame *f;

	if (p->nfr == KS_CONF_MAX_NESTING + 1) {
		rd_err(p->r, t->file, t->line,
		       "groups, lists and arrays nested deeper than %d levels",
		       KS_CONF_MAX_NESTING);
		p->dead = 1;
		return;
	}
	f = &p->fr[p->nfr++];
	*f = (struct frame){.kind = kind, .file = t->file, .line = t->line};
	if (kind == F_GROUP)
		f->group = ++p->ngroups;
	p->x = kind == F_GROUP ? X_SETTING : X_OPEN;
}

static void
value_done(struct ps *p, int string)
{
	p->last_string = string;
	p->x = X_AFTER;
}

static int
closes(enum frame_kind f, enum tok_kind k)
{
	return (f == F_GROUP && k == T_GROUP_END) ||
	       (f == F_LIST && k == T_LIST_END) ||
	       (f == F_ARRAY && k == T_ARRAY_END);
}

static int
is_scalar(enum tok_kind k)
{
	return elem_of(k) != 0;
}

static void
array_elem(struct ps *p, const struct tok *t)
{
	struct frame *f = &p->fr[p->nfr - 1];
	int e = elem_of(t->kind);

	if (f->elem == 0)
		f->elem = e;
	else if (f->elem != e)
		rd_err(p->r, t->file, t->line,
		       "mismatched element type in array (%s after %s; an "
		       "array holds one type, a list ( ) any)",
		       elem_name(e), elem_name(f->elem));
}

/* A value where one is expected (X_VALUE, X_OPEN). */
static void
value(struct ps *p, const struct tok *t)
{
	const struct frame *f = &p->fr[p->nfr - 1];

	if (p->x == X_OPEN && closes(f->kind, t->kind)) {
		p->nfr--;
		value_done(p, 0);
		return;
	}
	if (is_scalar(t->kind)) {
		if (f->kind == F_ARRAY)
			array_elem(p, t);
		value_done(p, t->kind == T_STRING);
		return;
	}
	if (f->kind == F_ARRAY) {
		syntax(p, t,
		       t->kind == T_ARRAY_START || t->kind == T_LIST_START ||
				       t->kind == T_GROUP_START
			       ? "an array holds scalar values only; a list "
				 "( ) holds any"
		       : p->x == X_OPEN ? "expected a scalar value or ']'"
					: "expected a scalar value");
		return;
	}
	switch (t->kind) {
	case T_ARRAY_START:
		push(p, F_ARRAY, t);
		return;
	case T_LIST_START:
		push(p, F_LIST, t);
		return;
	case T_GROUP_START:
		push(p, F_GROUP, t);
		return;
	default:
		syntax(p, t,
		       p->x == X_OPEN ? "expected a value or ')'"
				      : "expected a value");
		return;
	}
}

/* Feeds one token to the parser. */
static void
parse_tok(struct ps *p, const struct tok *t)
{
	const struct frame *f = &p->fr[p->nfr - 1];

	switch (p->x) {
	case X_SETTING:
		if (t->kind == T_NAME) {
			count_compares(p, t);
			name_add(p, t);
			p->x = X_EQUALS;
		} else if (f->kind == F_ROOT && t->kind == T_EOF) {
			return;
		} else if (f->kind == F_GROUP && t->kind == T_GROUP_END) {
			p->nfr--;
			value_done(p, 0);
		} else {
			syntax(p, t,
			       f->kind == F_GROUP
				       ? "expected a setting name or '}'"
				       : "expected a setting name");
		}
		return;
	case X_EQUALS:
		if (t->kind == T_EQUALS)
			p->x = X_VALUE;
		else
			syntax(p, t, "expected '=' or ':' after the name");
		return;
	case X_VALUE:
	case X_OPEN:
		value(p, t);
		return;
	case X_AFTER:
		if (t->kind == T_STRING && p->last_string)
			return; /* adjacent strings concatenate */
		if (f->kind == F_ROOT || f->kind == F_GROUP) {
			/* the terminator is optional */
			p->x = X_SETTING;
			if (t->kind != T_SEMI && t->kind != T_COMMA)
				parse_tok(p, t);
		} else if (t->kind == T_COMMA) {
			p->x = X_VALUE;
		} else if (closes(f->kind, t->kind)) {
			p->nfr--;
			value_done(p, 0);
		} else {
			syntax(p, t,
			       f->kind == F_LIST ? "expected ',' or ')'"
						 : "expected ',' or ']'");
		}
		return;
	}
}

static void
parse(struct rd *r)
{
	struct ps p = {.r = r, .nfr = 1, .x = X_SETTING};
	struct tok t;

	p.fr[0] = (struct frame){
		.kind = F_ROOT, .file = r->src[0].path, .line = 1};
	do {
		lex(r, &t);
		if (r->desync)
			p.dead = 1;
		if (!p.dead && !r->fatal)
			parse_tok(&p, &t);
	} while (t.kind != T_EOF);
	free(p.names);
}

int
ks_conf_read(const char *path, struct ks_conf_text **out)
{
	struct opener top = {.file = NULL, .line = 0};
	struct rd r;
	struct ks_conf_text *t;
	int rc = -1;

	*out = NULL;
	memset(&r, 0, sizeof(r));
	t = calloc(1, sizeof(*t));
	if (t == NULL || text_intern(t, path) < 0 ||
	    (t->str = grow(NULL, &t->cap, 1, 1)) == NULL) {
		ks_log(KS_LOG_ERR, "%s: out of memory", path);
		goto out;
	}
	t->str[0] = '\0';
	t->at_bol = 1;
	r.t = t;
	if (src_open(&r, &top, path, &r.src[0]) != 0)
		goto out;
	parse(&r);
	if (r.errors == 0 && !r.fatal) {
		*out = t;
		t = NULL;
		rc = 0;
	}
out:
	for (; r.depth >= 0; r.depth--)
		free(r.src[r.depth].buf);
	ks_conf_text_free(t);
	return rc;
}
