/*
 * The master's sockets: a generation's listeners get the sockets handed on
 * (by systemd's socket activation, or by the image before an upgrade) or
 * bind their own; the master closes them for good.
 */
#include "config.h"

#include <fcntl.h>
#include <stdlib.h>

#include "conf.h"
#include "log.h"
#include "lsock.h"
#include "master.h"
#include "sd.h"

/* Takes the sockets handed on (passed: by the image before an upgrade;
 * and those systemd passed), then binds what no passed socket serves.
 * Passed sockets no listener takes are left in *left.  -1 after logging. */
static int
open_sockets(struct ks_master *m, struct ks_conf *conf, struct ks_lsock *passed,
	     struct ks_lsock **left)
{
	struct ks_lsock *ls, **pp;
	struct ks_lconf *lc;
	char **names;
	int i, n, rc = 0;
	size_t j;

	if (ks_sd_listen_fds(&n, &names) == 0) {
		for (i = n - 1; i >= 0; i--) {
			ls = ks_lsock_adopt(KS_SD_LISTEN_FDS_START + i,
					    names[i], KS_LSOCK_SYSTEMD);
			if (ls == NULL)
				continue;
			/* not for what a plugin might exec */
			(void)fcntl(ls->fd, F_SETFD, FD_CLOEXEC);
			ls->next = passed;
			passed = ls;
		}
		ks_sd_free_names(names, n);
	}
	for (j = 0; rc == 0 && j < conf->nlisteners; j++) {
		lc = &conf->listeners[j];
		/* By name (FileDescriptorName=) first, else by address. */
		for (pp = &passed; *pp != NULL && !ks_lsock_named(*pp, lc);
		     pp = &(*pp)->next)
			;
		if (*pp == NULL)
			for (pp = &passed;
			     *pp != NULL && !ks_lsock_matches(*pp, lc);
			     pp = &(*pp)->next)
				;
		if ((ls = *pp) == NULL) {
			if ((ls = ks_lsock_bind(lc)) == NULL) {
				rc = -1;
				break;
			}
			ls->next = m->lsocks;
			m->lsocks = ls;
			continue;
		}
		*pp = ls->next;
		ls->next = m->lsocks;
		m->lsocks = ls;
		if (ls->protocol != (int)lc->protocol) {
			ks_log(KS_LOG_ERR, "listener %s: the socket handed on for "
			       "it (%s) is of another kind", lc->name, ls->bound);
			rc = -1;
			break;
		}
		if (ks_lsock_configure(ls, lc) != 0) {
			rc = -1;
			break;
		}
		ks_log(KS_LOG_INFO, "listener %s listening on %s %s", lc->name,
		       lc->protocol == KS_PROTO_UNIX  ? "unix"
		       : lc->protocol == KS_PROTO_UDP ? "udp"
						      : "tcp",
		       ls->bound);
		if (ls->origin == KS_LSOCK_SYSTEMD)
			ks_log(KS_LOG_INFO, "listener %s: the socket is from "
			       "systemd%s%s", lc->name, ls->name ? " as " : "",
			       ls->name ? ls->name : "");
	}
	*left = passed;
	return rc;
}

/* Handed-on sockets nobody took: closed (the workers of before still have
 * theirs until they retire). */
static void
close_left(struct ks_lsock **left)
{
	struct ks_lsock *ls;

	while ((ls = *left) != NULL) {
		*left = ls->next;
		ks_log(KS_LOG_WARN, "%s socket%s%s (%s) that no listener takes: "
		       "closing it", ls->origin == KS_LSOCK_SYSTEMD
					     ? "systemd passed a"
					     : "the previous image handed on a",
		       ls->name ? " named " : "", ls->name ? ls->name : "",
		       ls->bound);
		ks_lsock_close(ls);
	}
}

void
ks_master_close_left(struct ks_master *m)
{
	close_left(&m->left);
}

void
ks_master_close_lsocks(struct ks_master *m)
{
	struct ks_lsock *ls;

	while ((ls = m->lsocks) != NULL) {
		m->lsocks = ls->next;
		ks_lsock_close(ls);
	}
}

/* Loads the configuration, takes or binds its sockets.  0; -1 after
 * logging, m->conf NULL.  Handed-on sockets nobody took end in m->left:
 * an upgrade closes them only once it cannot go back any more (the
 * previous binary would take them again). */
int
ks_master_start_generation(struct ks_master *m, struct ks_lsock *passed)
{
	struct ks_conf *conf = NULL;
	int rc = -1;

	if (ks_conf_load(m->path, &conf) != 0)
		goto out;
	ks_log_set_threshold(conf->log_level);
	if (ks_conf_load_plugins(conf) != 0)
		goto out;
	conf->generation = ++m->last_generation;
	m->conf = conf;
	conf = NULL;
	rc = open_sockets(m, m->conf, passed, &passed);
	if (rc == 0 && ks_alsink_prepare(&m->alsink, m->conf) != 0)
		rc = -1;
out:
	if (rc != 0 && m->conf != NULL) {
		ks_conf_unref(m->conf);
		m->conf = NULL;
	}
	if (conf != NULL)
		ks_conf_unref(conf);
	m->left = passed;
	if (!m->upgrading)
		close_left(&m->left);
	return rc;
}

