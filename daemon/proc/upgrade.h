/*
 * In-place binary upgrade (SIGUSR2): see upgrade.c.
 */
#ifndef KS_UPGRADE_H
#define KS_UPGRADE_H

#include <stdbool.h>
#include <sys/types.h>

struct ks_master;
struct ks_lsock;

/* SIGUSR2: checks the binary at the master's path, then re-executes it. */
void ks_upgrade_start(struct ks_master *m);
/* A child exited: 1 if it was the new binary's check. */
int ks_upgrade_child_exited(struct ks_master *m, pid_t pid, int status);
/* The daemon stops: a check under way is abandoned. */
void ks_upgrade_abort(struct ks_master *m);

/* The new image, first thing: takes over the state an upgrade handed on
 * (scoreboard, eventfd, workers, and the listening sockets into *lsocks,
 * to be matched to listeners).  0: not an upgrade; 1: taken over; -1:
 * the state was damaged (logged). */
int ks_upgrade_adopt(struct ks_master *m, struct ks_lsock **lsocks);
/* The new image cannot start (why): goes back to the previous binary.
 * Returns only when that is impossible (this image is that fallback
 * already, or the exec failed): the caller carries on without one. */
void ks_upgrade_fall_back(struct ks_master *m, const char *why);
/* While on: a crash of the starting image goes back to the previous
 * binary too. */
void ks_upgrade_guard(struct ks_master *m, bool on);
/* The new image's workers are all ready: the previous image's workers
 * retire and the fallback is let go. */
void ks_upgrade_done(struct ks_master *m);
/* No going back, but nothing of this image's runs either (it has no
 * configuration): the fallback is let go, the previous image's workers
 * serve on. */
void ks_upgrade_settle(struct ks_master *m);

#endif
