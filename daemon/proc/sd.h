/*
 * systemd: readiness notifications (Type=notify, through libsystemd when
 * ksockd was built with it) and socket activation (LISTEN_FDS, parsed
 * here, so it works in either build).
 */
#ifndef KS_SD_H
#define KS_SD_H

#include <ksockd/plugin.h>

/* The first descriptor systemd passes. */
#define KS_SD_LISTEN_FDS_START 3

/* sd_notify with a printf format ("READY=1\nSTATUS=..."); nothing when
 * built without libsystemd or not started by systemd. */
void ks_sd_notify(const char *fmt, ...) KS_PRINTF(1, 2);
/* RELOADING=1 with the MONOTONIC_USEC= that systemd 253 and later want. */
void ks_sd_reloading(void);
/* Would a notification go anywhere (NOTIFY_SOCKET set, libsystemd)? */
int ks_sd_watching(void);

/* The sockets systemd passed (LISTEN_PID must be ours): *n descriptors
 * from 3 on, with names from LISTEN_FDNAMES (NULL where none).  Unsets
 * the variables, so that nothing started later takes them for its own.
 * Returns 0, or -1 after logging malformed variables.  *names is an array
 * of *n malloc'd strings (or NULLs); free with ks_sd_free_names. */
int ks_sd_listen_fds(int *n, char ***names);
void ks_sd_free_names(char **names, int n);

#endif
