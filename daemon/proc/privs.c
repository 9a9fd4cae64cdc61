/*
 * Process limits and privileges: see privs.h.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "privs.h"

/* Below this, a worker runs out of descriptors at a modest load. */
#define NOFILE_WARN 4096

void
ks_privs_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		ks_log_errno(KS_LOG_WARN, "getrlimit(RLIMIT_NOFILE)");
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			ks_log_errno(KS_LOG_WARN, "setrlimit(RLIMIT_NOFILE, %llu)",
				     (unsigned long long)rl.rlim_max);
			(void)getrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < NOFILE_WARN)
		ks_log(KS_LOG_WARN, "the file descriptor limit is %llu (hard "
		       "limit %llu): each worker can hold fewer connections than "
		       "that; raise it (LimitNOFILE= under systemd, ulimit -n)",
		       (unsigned long long)rl.rlim_cur,
		       (unsigned long long)rl.rlim_max);
	else
		ks_log(KS_LOG_DEBUG, "file descriptor limit %llu",
		       (unsigned long long)rl.rlim_cur);
}

int
ks_privs_drop(const struct ks_conf *conf)
{
	gid_t gid = conf->gid;

	if ((conf->user == NULL && conf->group == NULL) || geteuid() != 0)
		return 0;
	if (conf->user != NULL ? initgroups(conf->user, gid) != 0
			       : setgroups(1, &gid) != 0) {
		ks_log_errno(KS_LOG_ERR, "supplementary groups of %s",
			     conf->user != NULL ? conf->user : conf->group);
		return -1;
	}
	if (setgid(gid) != 0) {
		ks_log_errno(KS_LOG_ERR, "setgid(%u)", (unsigned)gid);
		return -1;
	}
	if (conf->user != NULL && setuid(conf->uid) != 0) {
		ks_log_errno(KS_LOG_ERR, "setuid(%s, %u)", conf->user,
			     (unsigned)conf->uid);
		return -1;
	}
	/* No way back: a worker that could become root again has not
	 * dropped anything. */
	if (conf->user != NULL && conf->uid != 0 && setuid(0) == 0) {
		ks_log(KS_LOG_ERR, "setuid(0) still works after dropping to %s",
		       conf->user);
		return -1;
	}
	return 0;
}
