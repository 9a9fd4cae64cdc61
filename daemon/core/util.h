#ifndef KS_UTIL_H
#define KS_UTIL_H

#include <stddef.h>

#define KS_CONTAINER_OF(ptr, type, member)                                     \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define KS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define KS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define KS_MAX(a, b) ((a) > (b) ? (a) : (b))

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KS_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(KS_ASAN)
#define KS_ASAN 1
#endif

#endif
