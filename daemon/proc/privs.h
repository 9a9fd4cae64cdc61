/*
 * Process limits and privileges.
 */
#ifndef KS_PRIVS_H
#define KS_PRIVS_H

struct ks_conf;

/* Raises RLIMIT_NOFILE's soft limit to the hard limit (every connection is
 * a descriptor); warns when the result is small.  Workers inherit it. */
void ks_privs_raise_nofile(void);

/* A worker, before it runs any plugin code: becomes daemon.user and
 * daemon.group, supplementary groups included (the user's, or only the
 * group when no user is set), when running as root.  Not root: nothing to
 * do (the configuration check refused a user it cannot switch to).  0, or
 * -1 after logging. */
int ks_privs_drop(const struct ks_conf *conf);

#endif
