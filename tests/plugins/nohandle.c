/* A descriptor with the right ABI but no handle hook: nothing to run for a
 * connection, so the loader must refuse it. */
#include <ksockd/plugin.h>

KS_PLUGIN_DEFINE(.name = "nohandle", .version = "0", .handle = NULL);
