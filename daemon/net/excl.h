/*
 * One worker woken per connection.  All workers watch the same listening
 * socket; with plain epoll every idle worker wakes for every connection and
 * all but one find nothing to accept (a thundering herd: more workers, more
 * CPU per connection).  EPOLLEXCLUSIVE makes the kernel wake one waiting
 * worker instead, and a worker that is busy or blocked in a plugin is not
 * waiting, so it is passed over.
 *
 * libev registers descriptors without that flag and offers no way to ask
 * for it.  So once libev has added a listening socket to its epoll set, the
 * worker re-adds it itself with the flag and with exactly the registration
 * libev made (read back from /proc/self/fdinfo), just before the loop's
 * next poll (libev's release hook).  Where that fails (no /proc, an old
 * kernel) the socket stays as libev added it: every connection is still
 * accepted, only more workers wake for it.  If libev ever rebuilds its
 * epoll set (it does after spurious events, e.g. from a descriptor a
 * forked child still holds open) the flag is lost until the listener next
 * pauses and resumes; again only the efficiency changes.
 */
#ifndef KS_EXCL_H
#define KS_EXCL_H

struct ks_worker;

/* After ev_io_start on the listening socket fd: make its registration
 * exclusive before the loop next polls. */
void ks_excl_want(struct ks_worker *wk, int fd);
/* Before the worker stops accepting on fd: take it out of the epoll set
 * now (libev would only do that lazily, and meanwhile the kernel could
 * keep waking this worker, and only this one, for new connections). */
void ks_excl_drop(struct ks_worker *wk, int fd);
/* The loop's hook, installed by ks_worker_init. */
void ks_excl_hook(struct ks_worker *wk);

#endif
