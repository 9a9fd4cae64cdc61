/*
 * PROXY protocol (v1 text, v2 binary) header parser.  Pure: no I/O.
 *
 * The specification is HAProxy's doc/proxy-protocol.txt (2020/03/05).  A
 * listener that expects the header requires it: the parser never guesses
 * whether one is there, anything else is refused.  It is called on the
 * bytes a client sent so far, each time more arrive; it keeps no state
 * between calls, and says as soon as it can that the bytes cannot become
 * a valid header, so a connection is dropped at the first wrong byte.
 *
 * What it does not do: verify a v2 PP2_TYPE_CRC32C checksum (the TLV is
 * skipped like any other; the spec leaves checking to receivers that
 * support it), or look inside TLVs (the SSL TLV's sub-TLVs included).
 */
#ifndef KS_PROXY_H
#define KS_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define KS_PROXY_V1_MAX 107 /* the longest v1 header, CRLF included */
/* The longest v2 header ksockd accepts (16-byte fixed part + addresses +
 * TLVs); longer ones are refused as oversized. */
#define KS_PROXY_V2_MAX 4096
#define KS_PROXY_V2_FIXED 16 /* signature, version/command, family, length */

struct ks_proxy_hdr {
	int version;   /* 1 or 2 */
	bool has_addr; /* false: v2 LOCAL, v1 UNKNOWN, v2 AF_UNSPEC or
			* AF_UNIX: keep the connection's own addresses */
	int transport; /* SOCK_STREAM or SOCK_DGRAM when known (v2),
			* SOCK_STREAM for v1 TCP4/TCP6, 0 otherwise */
	struct sockaddr_storage src, dst; /* AF_INET or AF_INET6 sockaddrs with
					   * ports, network order, when
					   * has_addr */
	socklen_t src_len, dst_len;
	size_t len; /* bytes of the whole header */
};

/* Looks at buf[0..len), the first bytes a client sent.
 *  > 0: a complete valid header of that many bytes (also h->len); the bytes
 *       after it belong to the application (a TLS ClientHello, say).
 *  0:   what is there is a valid prefix of a header: read more.  -1 comes
 *       as early as possible: as soon as the bytes cannot start a v1 or v2
 *       header, a v1 line cannot end in CRLF within KS_PROXY_V1_MAX bytes,
 *       a v1 field has a character no valid field has there, or the v2
 *       length field announces more than KS_PROXY_V2_MAX.  So 0 means
 *       that some continuation of the bytes is a valid header.
 *  -1:  not a valid header; *why (when why is not NULL) is a short static
 *       English reason for the logs ("v1: bad source address", ...).
 * *h is written only when the result is > 0; *why only when it is -1.
 * Never reads buf beyond len, and not beyond the header once it is whole. */
int ks_proxy_parse(const void *buf, size_t len, struct ks_proxy_hdr *h,
		   const char **why);

#endif
