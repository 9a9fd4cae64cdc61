/*
 * The daemon proper: loads a config generation, opens its listeners, runs
 * the worker loop, handles SIGTERM/SIGINT (graceful stop bounded by
 * shutdown_timeout) and SIGHUP (reload).  main() only parses arguments.
 */
#ifndef KS_SERVER_H
#define KS_SERVER_H

/* Returns the process exit status. */
int ks_server_run(const char *conf_path);

/* `ksockd -t`: 0 if the file and every plugin's options are valid, 1 with
 * each error logged as "FILE:LINE: message". */
int ks_server_check(const char *conf_path);

#endif
