#ifndef KS_UTIL_H
#define KS_UTIL_H

#include <stddef.h>

#define KS_CONTAINER_OF(ptr, type, member)                                     \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define KS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define KS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define KS_MAX(a, b) ((a) > (b) ? (a) : (b))

/* An intrusive doubly-linked list with a head node (a circle: an empty
 * list's head points at itself), for lists whose members leave in any
 * order. */
struct ks_list {
	struct ks_list *prev, *next;
};

static inline void
ks_list_init(struct ks_list *head)
{
	head->prev = head->next = head;
}

static inline int
ks_list_empty(const struct ks_list *head)
{
	return head->next == head;
}

/* Adds n at the front of the list. */
static inline void
ks_list_push(struct ks_list *head, struct ks_list *n)
{
	n->next = head->next;
	n->prev = head;
	head->next->prev = n;
	head->next = n;
}

static inline void
ks_list_remove(struct ks_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

#define ks_list_entry(ptr, type, member) KS_CONTAINER_OF(ptr, type, member)
/* pos: a struct ks_list *; it may not be removed inside the loop. */
#define ks_list_for_each(pos, head) \
	for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KS_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(KS_ASAN)
#define KS_ASAN 1
#endif

#endif
