/*
 * Connection limits that hold across every worker process, in shared
 * memory, in the manner of nginx's limit_conn and limit_req zones:
 *
 *   max_connections             all listeners together, and per listener
 *   max_connections_per_source  per listener and source
 *   connection_rate             per listener and source (connections/s)
 *   max_datagram_rate           per udp listener and source (datagrams/s)
 *
 * A source is an IPv4 address or an IPv6 /64 (what one customer of a
 * provider gets).  The zone is a memfd the master makes before it forks a
 * worker (an upgrade hands it to the new image with the scoreboard):
 *
 *  - counts: an 8-way set-associative table of 64-bit words, a 32-bit
 *    fingerprint of the key and a 32-bit count, changed with one CAS, so
 *    no lock is ever held and a worker that dies mid-update leaves every
 *    word consistent.  A word whose count is 0 is free.
 *  - rates: the same geometry; each word holds a fingerprint and the
 *    "theoretical arrival time" of the generic cell rate algorithm, the
 *    token bucket as one number (burst: one second's worth).
 *  - journals: one per scoreboard slot, what that worker added to each
 *    count.  A worker that dies has its journal subtracted by the master,
 *    so a crash leaks no connection of any source.
 *
 * Keys are hashed with SipHash and a random key of the zone: a client
 * cannot aim its sources at one bucket.  A bucket whose eight ways are all
 * in use (2^15 sources with connections, per table) lets the connection
 * through uncounted, counted as an overflow: a full table must not lock
 * out everyone.  Two workers racing on a source's first connection may
 * each insert it; the limit is then loose for that source until its count
 * drains.
 */
#ifndef KS_LIMITS_H
#define KS_LIMITS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct ks_zone {
	int fd;     /* the memfd; -1 when closed */
	char *base; /* the mapping (shared) */
};

/* Master: a new zone with a fresh random key.  -1 after logging. */
int ks_zone_create(struct ks_zone *z);
/* The new image after an upgrade: maps the memfd it inherited. */
int ks_zone_attach(struct ks_zone *z, int fd);
void ks_zone_destroy(struct ks_zone *z);
/* Master: the worker of scoreboard slot `slot` is gone: takes back what it
 * still counted (its journal) and clears the journal. */
void ks_zone_release_slot(struct ks_zone *z, unsigned slot);

/* Where a worker counts: the zone and its slot (0: the zone is not used,
 * e.g. the client tool). */
struct ks_zone_user {
	struct ks_zone *zone;
	unsigned slot;
};

/* A key's fingerprint in a table, and which word it holds (for the
 * release); idx < 0: nothing to release. */
struct ks_zclaim {
	int32_t idx;
};

/* The hashed identity of a listener (its name) and of a source. */
uint64_t ks_zone_name_key(const struct ks_zone *z, const char *name);
/* A source's key for address sa; false for addresses without a source
 * (unix sockets). */
bool ks_zone_source(const struct sockaddr *sa, uint64_t *src);

enum ks_zone_result {
	KS_ZONE_OK = 0,
	KS_ZONE_OVER = 1,    /* over the limit: refuse */
	KS_ZONE_FULL = 2,    /* no room to count it: let it through */
};

/* Domains of keys, so that one table serves every kind of count. */
enum ks_zone_domain {
	KS_ZD_LISTENER = 1, /* a listener's connections */
	KS_ZD_SOURCE = 2,   /* a source's connections to a listener */
	KS_ZD_CONN_RATE = 3,
	KS_ZD_DGRAM_RATE = 4,
};

/* All connections, every listener: +1 unless that would pass `limit`
 * (0: counted, no limit). */
enum ks_zone_result ks_zone_total_acquire(struct ks_zone_user *u,
					  uint64_t limit);
void ks_zone_total_release(struct ks_zone_user *u);
int64_t ks_zone_total(const struct ks_zone *z);

/* A count: +1 on key (domain, listener, source) unless it is at `limit`
 * already.  KS_ZONE_OK fills *cl (release it once). */
enum ks_zone_result ks_zone_count_acquire(struct ks_zone_user *u,
					  enum ks_zone_domain d, uint64_t lkey,
					  uint64_t src, uint32_t limit,
					  struct ks_zclaim *cl);
void ks_zone_count_release(struct ks_zone_user *u, struct ks_zclaim *cl);

/* A rate: one event of key (domain, listener, source) at most `rate` per
 * second, bursts of one second's worth.  KS_ZONE_OVER: refused (and not
 * counted against later events). */
enum ks_zone_result ks_zone_rate(struct ks_zone_user *u, enum ks_zone_domain d,
				 uint64_t lkey, uint64_t src, uint32_t rate);

#endif
