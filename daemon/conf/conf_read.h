/*
 * Reading the configuration: every byte of file I/O, so that libconfig
 * only ever parses one string (config_read_string) that is known to parse.
 *
 * Why: libconfig 1.5 (Debian bookworm) must not be given files.  An
 * @include of a directory makes its scanner exit(2) the process, a FIFO
 * blocks it in fopen forever, /dev/zero is read until memory runs out;
 * integers that do not fit in 32 bits are silently truncated
 * (4294967297 reads as 1); some syntax errors leak memory
 * (hyperrealm/libconfig#142).
 *
 * ks_conf_read opens each file itself (regular files only, size-limited,
 * never blocking), expands every @include textually into one text and
 * checks that text against libconfig 1.5's own lexical and grammatical
 * rules (scanner.l, grammar.y: flex longest match, duplicate names, array
 * element types).  The contract: whatever ks_conf_read accepts,
 * config_read_string accepts too and reads as written; what it rejects
 * comes with a "FILE:LINE: message" for every problem found (up to
 * KS_CONF_MAX_ERRORS).
 *
 * Deliberately stricter than libconfig: integer literals that libconfig
 * would truncate, strings over KS_CONF_MAX_STRING, nesting deeper than
 * KS_CONF_MAX_NESTING (libconfig's parser gives up with "memory
 * exhausted" at 2000 nested groups, 4997 lists), groups big enough to keep
 * libconfig busy for seconds (KS_CONF_MAX_COMPARES), and in @include: a
 * backslash escaping anything but \ or ", an unterminated directive, a
 * cycle, and an included file that ends inside a comment or a string
 * (libconfig would carry the comment or string on into the including
 * file).
 *
 * Includes follow libconfig 1.5 without include_dir: `@include "FILE"`
 * counts only at the start of a line (after blanks), outside comments and
 * strings; FILE (escapes \\ and \") is relative to the current directory;
 * the included text replaces the directive, and the rest of its line
 * follows the included text.
 */
#ifndef KS_CONF_READ_H
#define KS_CONF_READ_H

/* Limits.  Bytes: per file, and read in all (each inclusion counted, so an
 * include bomb stops there). */
#define KS_CONF_MAX_FILE_SIZE (4u << 20)
#define KS_CONF_MAX_TOTAL_SIZE (16u << 20)
/* Includes: nesting (libconfig 1.5's own limit), and inclusions in all. */
#define KS_CONF_MAX_INCLUDE_DEPTH 10
#define KS_CONF_MAX_INCLUDES 1024
/* Bytes in one string value, once adjacent strings are joined. */
#define KS_CONF_MAX_STRING (64u << 10)
/* Groups, lists and arrays inside one another. */
#define KS_CONF_MAX_NESTING 100
/* Name comparisons libconfig's duplicate check may make in all (a group of
 * n settings costs n(n-1)/2): about half a second; the largest group that
 * fits is KS_CONF_MAX_GROUP settings. */
#define KS_CONF_MAX_COMPARES (1ull << 25)
#define KS_CONF_MAX_GROUP 8192u
/* Errors reported before it gives up. */
#define KS_CONF_MAX_ERRORS 100

struct ks_conf_text;

/* Reads `path` and every file it @includes into one text for
 * config_read_string.  Returns 0 and *out (freed with ks_conf_text_free),
 * or -1 and *out = NULL after logging every problem (KS_LOG_ERR) as
 * "FILE:LINE: message", or "FILE: message" when the file itself cannot be
 * read; FILE is `path`, or an include's name as written. */
int ks_conf_read(const char *path, struct ks_conf_text **out);

/* The combined text, NUL-terminated, owned by t. */
const char *ks_conf_text_str(const struct ks_conf_text *t);

/* The file and line that line `line` of the combined text (1-based, as
 * config_setting_source_line and config_error_line count) comes from.
 * Lines past the end continue the last file's numbering.  *file is owned
 * by t. */
void ks_conf_text_where(const struct ks_conf_text *t, int line,
			const char **file, int *file_line);

/* NULL is fine. */
void ks_conf_text_free(struct ks_conf_text *t);

#endif
