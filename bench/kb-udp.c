/*
 * udp mode: CONNECTIONS flows, each a connected UDP socket with one
 * datagram in flight.  A datagram is printable text: its sequence number in
 * hex (up to 16 digits, as many as fit), pattern bytes, and '\n' as last
 * byte.  An echo of an older datagram (one already counted as lost) is
 * ignored; an echo of the current one with other contents is a mismatch.
 * A datagram not echoed within KB_UDP_TIMEOUT is counted as lost and the
 * next one is sent.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kb.h"

#define KB_UDP_TIMEOUT 0.2

struct flow {
	ev_io rio;
	ev_timer tm; /* echo timeout */
	int fd;
	unsigned id;
	bool echoed; /* at least one echo seen */
	uint64_t seq;
	uint64_t tsent;
};

static struct flow *flows;
static unsigned nflows;
static char *dgram; /* the datagram being sent or expected back */
static size_t hdr;  /* hex digits of the sequence number */

static void
dgram_build(uint64_t seq)
{
	static const char hex[] = "0123456789abcdef";
	size_t size = kb.o->size, i;
	uint64_t v = seq;

	for (i = hdr; i > 0; i--, v >>= 4)
		dgram[i - 1] = hex[v & 15];
	if (size > hdr)
		memcpy(dgram + hdr, kb.line_pat + seq % KB_LINE_PERIOD,
		       size - hdr);
	if (size > 1)
		dgram[size - 1] = '\n';
}

static void
flow_send(struct flow *f)
{
	size_t size = kb.o->size;

	dgram_build(f->seq);
	f->tsent = kb_now_ns();
	if (send(f->fd, dgram, size, 0) < 0 && errno != EAGAIN &&
	    errno != EINTR) {
		if (errno == ECONNREFUSED)
			kb_error(KB_ERR_CONNECT, "flow %u: send: %s", f->id,
				 strerror(errno));
		else
			kb_error(KB_ERR_OTHER, "flow %u: send: %s", f->id,
				 strerror(errno));
	}
	/* Whatever happened, the timeout sends the next one. */
	ev_timer_again(kb.loop, &f->tm);
}

static void
flow_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct flow *f = KB_CONTAINER_OF(w, struct flow, rio);
	size_t size = kb.o->size;
	ssize_t n;

	n = recv(f->fd, kb.scratch, sizeof(kb.scratch), 0);
	if (n < 0) {
		if (errno == ECONNREFUSED)
			kb_error(KB_ERR_CONNECT, "flow %u: %s", f->id,
				 strerror(errno));
		else if (errno != EAGAIN && errno != EINTR)
			kb_error(KB_ERR_OTHER, "flow %u: recv: %s", f->id,
				 strerror(errno));
		return;
	}
	dgram_build(f->seq);
	if ((size_t)n < hdr || memcmp(kb.scratch, dgram, hdr) != 0)
		return; /* late echo of a datagram counted as lost */
	if ((size_t)n != size || memcmp(kb.scratch, dgram, size) != 0) {
		kb_error(KB_ERR_MISMATCH,
			 "flow %u: echo of datagram %llu differs (%zd bytes)",
			 f->id, (unsigned long long)f->seq, n);
		return; /* the timeout moves on */
	}
	if (!f->echoed) {
		f->echoed = true;
		kb_connected();
	}
	kb_hist_add(&kb.hist, kb_now_ns() - f->tsent);
	kb.c.ops++;
	f->seq++;
	flow_send(f);
}

static void
flow_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct flow *f = KB_CONTAINER_OF(w, struct flow, tm);

	kb.c.lost++;
	f->seq++;
	flow_send(f);
}

int
kb_udp_start(void)
{
	unsigned i;

	nflows = kb.o->conns;
	hdr = kb.o->size > 16 ? 16 : kb.o->size > 1 ? kb.o->size - 1 : 0;
	flows = calloc(nflows, sizeof(*flows));
	dgram = malloc(kb.o->size);
	if (flows == NULL || dgram == NULL)
		return -1;
	for (i = 0; i < nflows; i++)
		flows[i].fd = -1;
	for (i = 0; i < nflows && !kb.stopping; i++) {
		struct flow *f = &flows[i];
		int fd;

		f->id = i;
		ev_timer_init(&f->tm, flow_timeout, 0., KB_UDP_TIMEOUT);
		fd = socket(kb.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    0);
		if (fd < 0) {
			kb_error(KB_ERR_OTHER, "flow %u: socket: %s", i,
				 strerror(errno));
			return -1;
		}
		f->fd = fd;
		if (connect(fd, (struct sockaddr *)&kb.addr, kb.addrlen) < 0) {
			kb_error(KB_ERR_CONNECT, "flow %u: connect: %s", i,
				 strerror(errno));
			continue;
		}
		ev_io_init(&f->rio, flow_read, fd, EV_READ);
		ev_io_start(kb.loop, &f->rio);
		flow_send(f);
	}
	return 0;
}

void
kb_udp_stop(void)
{
	unsigned i;

	if (flows == NULL)
		return;
	for (i = 0; i < nflows; i++) {
		ev_io_stop(kb.loop, &flows[i].rio);
		ev_timer_stop(kb.loop, &flows[i].tm);
		if (flows[i].fd >= 0)
			close(flows[i].fd);
	}
	free(flows);
	free(dgram);
	flows = NULL;
	dgram = NULL;
}
