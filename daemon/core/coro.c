#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "coro.h"
#include "log.h"
#include "util.h"

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define VALGRIND_STACK_REGISTER(lo, hi) 0
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#endif

#ifdef KS_ASAN
#include <sanitizer/common_interface_defs.h>
#define ASAN_START(fake, bottom, size)                                         \
	__sanitizer_start_switch_fiber((fake), (bottom), (size))
#define ASAN_FINISH(fake, bottom, size)                                        \
	__sanitizer_finish_switch_fiber((fake), (bottom), (size))
#else
#define ASAN_START(fake, bottom, size) ((void)(fake))
#define ASAN_FINISH(fake, bottom, size) ((void)(fake))
#endif

#define MIN_STACK (16 * 1024)

static void coro_entry(struct ks_coro *co) __attribute__((noreturn, used));

#if defined(__x86_64__)
#define KS_CORO_ASM 1
/*
 * ks_coro_switch(&save_sp, new_sp): pushes the callee-saved registers and
 * the SSE/x87 control words on the current stack, stores the stack pointer
 * in *save_sp, loads new_sp and pops the same frame from there.  A new
 * coroutine's stack is prepared with such a frame whose return address is
 * the trampoline below (r12 = the coroutine, r13 = coro_entry).
 */
void ks_coro_switch(void **save_sp, void *new_sp);
__asm__(".text\n"
	".globl ks_coro_switch\n"
	".hidden ks_coro_switch\n"
	".type ks_coro_switch,@function\n"
	"ks_coro_switch:\n"
	"	pushq %rbp\n"
	"	pushq %rbx\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	subq $8, %rsp\n"
	"	stmxcsr (%rsp)\n"
	"	fnstcw 4(%rsp)\n"
	"	movq %rsp, (%rdi)\n"
	"	movq %rsi, %rsp\n"
	"	ldmxcsr (%rsp)\n"
	"	fldcw 4(%rsp)\n"
	"	addq $8, %rsp\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbx\n"
	"	popq %rbp\n"
	"	ret\n"
	".size ks_coro_switch, .-ks_coro_switch\n"
	".globl ks_coro_trampoline\n"
	".hidden ks_coro_trampoline\n"
	".type ks_coro_trampoline,@function\n"
	"ks_coro_trampoline:\n"
	"	movq %r12, %rdi\n"
	"	callq *%r13\n"
	"	ud2\n"
	".size ks_coro_trampoline, .-ks_coro_trampoline\n");
void ks_coro_trampoline(void);

static void
prepare_stack(struct ks_coro *co, char *top)
{
	uint64_t *sp;

	/* After the 8 popped words the trampoline runs with rsp = top - 16,
	 * 16-byte aligned as the ABI wants before a call. */
	top = (char *)((uintptr_t)top & ~(uintptr_t)15);
	sp = (uint64_t *)(void *)(top - 80);
	sp[0] = 0x1F80 | ((uint64_t)0x037F << 32); /* mxcsr, x87 cw */
	sp[1] = 0;                                 /* r15 */
	sp[2] = 0;                                 /* r14 */
	sp[3] = (uint64_t)(uintptr_t)coro_entry;   /* r13 */
	sp[4] = (uint64_t)(uintptr_t)co;           /* r12 */
	sp[5] = 0;                                 /* rbx */
	sp[6] = 0;                                 /* rbp */
	sp[7] = (uint64_t)(uintptr_t)ks_coro_trampoline;
	sp[8] = 0;
	sp[9] = 0;
	co->sp = sp;
}

static inline void
switch_to(void **save, void *to)
{
	ks_coro_switch(save, to);
}

#elif defined(__aarch64__)
#define KS_CORO_ASM 1
/* Same protocol as on x86-64: x19-x30, d8-d15 and fpcr saved on the stack;
 * a new coroutine starts in the trampoline with x19 = coroutine and
 * x20 = coro_entry. */
void ks_coro_switch(void **save_sp, void *new_sp);
__asm__(".text\n"
	".globl ks_coro_switch\n"
	".hidden ks_coro_switch\n"
	".type ks_coro_switch,%function\n"
	"ks_coro_switch:\n"
	"	sub sp, sp, #176\n"
	"	stp x19, x20, [sp, #0]\n"
	"	stp x21, x22, [sp, #16]\n"
	"	stp x23, x24, [sp, #32]\n"
	"	stp x25, x26, [sp, #48]\n"
	"	stp x27, x28, [sp, #64]\n"
	"	stp x29, x30, [sp, #80]\n"
	"	stp d8, d9, [sp, #96]\n"
	"	stp d10, d11, [sp, #112]\n"
	"	stp d12, d13, [sp, #128]\n"
	"	stp d14, d15, [sp, #144]\n"
	"	mrs x9, fpcr\n"
	"	str x9, [sp, #160]\n"
	"	mov x9, sp\n"
	"	str x9, [x0]\n"
	"	mov sp, x1\n"
	"	ldp x19, x20, [sp, #0]\n"
	"	ldp x21, x22, [sp, #16]\n"
	"	ldp x23, x24, [sp, #32]\n"
	"	ldp x25, x26, [sp, #48]\n"
	"	ldp x27, x28, [sp, #64]\n"
	"	ldp x29, x30, [sp, #80]\n"
	"	ldp d8, d9, [sp, #96]\n"
	"	ldp d10, d11, [sp, #112]\n"
	"	ldp d12, d13, [sp, #128]\n"
	"	ldp d14, d15, [sp, #144]\n"
	"	ldr x9, [sp, #160]\n"
	"	msr fpcr, x9\n"
	"	add sp, sp, #176\n"
	"	ret\n"
	".size ks_coro_switch, .-ks_coro_switch\n"
	".globl ks_coro_trampoline\n"
	".hidden ks_coro_trampoline\n"
	".type ks_coro_trampoline,%function\n"
	"ks_coro_trampoline:\n"
	"	mov x0, x19\n"
	"	blr x20\n"
	"	brk #0\n"
	".size ks_coro_trampoline, .-ks_coro_trampoline\n");
void ks_coro_trampoline(void);

static void
prepare_stack(struct ks_coro *co, char *top)
{
	uint64_t *sp;

	top = (char *)((uintptr_t)top & ~(uintptr_t)15);
	sp = (uint64_t *)(void *)(top - 176);
	memset(sp, 0, 176);
	sp[0] = (uint64_t)(uintptr_t)co;         /* x19 */
	sp[1] = (uint64_t)(uintptr_t)coro_entry; /* x20 */
	sp[11] = (uint64_t)(uintptr_t)ks_coro_trampoline; /* x30 */
	co->sp = sp;
}

static inline void
switch_to(void **save, void *to)
{
	ks_coro_switch(save, to);
}

#else
/* Portable fallback: correct, but swapcontext costs a system call (the
 * signal mask) on every switch. */
#include <ucontext.h>

/* makecontext passes ints: the pointer travels in two halves. */
static void
uctx_entry(unsigned hi, unsigned lo)
{
	coro_entry((struct ks_coro *)(uintptr_t)(((uint64_t)hi << 32) | lo));
}

static void
prepare_stack(struct ks_coro *co, char *top)
{
	ucontext_t *uc = co->uctx;

	getcontext(uc);
	uc->uc_stack.ss_sp = co->map + (size_t)sysconf(_SC_PAGESIZE);
	uc->uc_stack.ss_size = (size_t)(top - (char *)uc->uc_stack.ss_sp);
	uc->uc_link = NULL;
	makecontext(uc, (void (*)(void))uctx_entry, 2,
		    (unsigned)((uint64_t)(uintptr_t)co >> 32),
		    (unsigned)(uintptr_t)co);
	co->sp = uc;
}

static inline void
switch_to(void **save, void *to)
{
	swapcontext((ucontext_t *)*save, (ucontext_t *)to);
}
#endif

static size_t
page_size(void)
{
	static size_t ps;

	if (ps == 0)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}

void
ks_sched_init(struct ks_sched *s, size_t stack_size)
{
	size_t ps = page_size();

	memset(s, 0, sizeof(*s));
	if (stack_size < MIN_STACK)
		stack_size = MIN_STACK;
	s->stack_size = (stack_size + ps - 1) / ps * ps;
	s->max_free = 256;
#ifndef KS_CORO_ASM
	s->main_uctx = calloc(1, sizeof(ucontext_t));
	s->main_sp = s->main_uctx;
#endif
}

/* The guard page is the lowest page of the mapping; the stack is the
 * rest.  The coroutine struct itself lives on the heap, so that the whole
 * stack can be paged out while the coroutine hibernates. */
static int
stack_map(struct ks_coro *co, size_t stack_size)
{
	size_t ps = page_size();
	char *map;

	co->map_size = stack_size + ps;
	map = mmap(NULL, co->map_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1,
		   0);
	if (map == MAP_FAILED)
		return -1;
	if (mprotect(map, ps, PROT_NONE) != 0) {
		munmap(map, co->map_size);
		return -1;
	}
	co->map = map;
	co->vg_stack_id = VALGRIND_STACK_REGISTER(map + ps, map + co->map_size);
	return 0;
}

static void
coro_destroy(struct ks_coro *co)
{
	VALGRIND_STACK_DEREGISTER(co->vg_stack_id);
	munmap(co->map, co->map_size);
#ifndef KS_CORO_ASM
	free(co->uctx);
#endif
	free(co->saved);
	free(co);
}

static void
free_cache(struct ks_sched *s)
{
	struct ks_coro *co;

	while ((co = s->free_list) != NULL) {
		s->free_list = co->next;
		coro_destroy(co);
	}
	s->nfree = 0;
}

void
ks_sched_destroy(struct ks_sched *s)
{
	free_cache(s);
#ifndef KS_CORO_ASM
	free(s->main_uctx);
#endif
}

void
ks_sched_set_stack_size(struct ks_sched *s, size_t stack_size)
{
	size_t ps = page_size();

	if (stack_size < MIN_STACK)
		stack_size = MIN_STACK;
	stack_size = (stack_size + ps - 1) / ps * ps;
	if (stack_size == s->stack_size)
		return;
	s->stack_size = stack_size;
	free_cache(s);
}

static char *
stack_top(const struct ks_coro *co)
{
	return co->map + co->map_size;
}

struct ks_coro *
ks_coro_new(struct ks_sched *s, ks_coro_fn fn, void *arg, ks_coro_done_fn done,
	    void *udata)
{
	struct ks_coro *co = s->free_list;

	if (co != NULL && co->map_size != s->stack_size + page_size()) {
		free_cache(s); /* stack_size changed since they were cached */
		co = NULL;
	}
	if (co != NULL) {
		s->free_list = co->next;
		s->nfree--;
	} else {
		if ((co = calloc(1, sizeof(*co))) == NULL)
			return NULL;
#ifndef KS_CORO_ASM
		if ((co->uctx = calloc(1, sizeof(ucontext_t))) == NULL) {
			free(co);
			return NULL;
		}
#endif
		if (stack_map(co, s->stack_size) != 0) {
			ks_log_errno(KS_LOG_ERR,
				     "cannot map a %zu-byte coroutine stack",
				     s->stack_size);
#ifndef KS_CORO_ASM
			free(co->uctx);
#endif
			free(co);
			return NULL;
		}
	}
	co->sched = s;
	co->fn = fn;
	co->arg = arg;
	co->done = done;
	co->udata = udata;
	co->state = KS_CORO_NEW;
	co->wake_status = 0;
	co->next = NULL;
	co->asan_fake = NULL;
	co->tag = -1;
	prepare_stack(co, stack_top(co));
	s->live++;
	return co;
}

static void
coro_recycle(struct ks_sched *s, struct ks_coro *co)
{
	free(co->saved);
	co->saved = NULL;
	co->saved_len = 0;
	if (s->nfree >= s->max_free) {
		coro_destroy(co);
		return;
	}
	co->next = s->free_list;
	s->free_list = co;
	s->nfree++;
}

/* Copies stack bytes without ASan's interceptors: the live part of a
 * suspended stack contains poisoned redzones between frames, which is
 * fine to move around but would be reported by an instrumented memcpy.
 * The volatile accesses keep the compiler from turning this into one. */
#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize_address))
#endif
static void
stack_copy(void *dst, const void *src, size_t n)
{
	volatile uint64_t *d = dst;
	const volatile uint64_t *sp = src;
	size_t i;

	for (i = 0; i < n / 8; i++)
		d[i] = sp[i];
}

int
ks_coro_hibernate(struct ks_coro *co, size_t max_live)
{
#ifndef KS_CORO_ASM
	(void)co;
	(void)max_live;
	return 0; /* the ucontext fallback keeps no plain stack pointer */
#else
	size_t ps = page_size();
	char *top = stack_top(co), *sp = co->sp;
	size_t live = (size_t)(top - sp);

	if (co->state != KS_CORO_SUSPENDED || co->saved != NULL ||
	    live > max_live || ((uintptr_t)sp & 7) != 0)
		return 0;
	if ((co->saved = malloc(live)) == NULL)
		return 0;
	stack_copy(co->saved, sp, live);
	/* Below sp everything is dead: the whole stack can go. */
	if (madvise(co->map + ps, co->map_size - ps, MADV_DONTNEED) != 0) {
		free(co->saved);
		co->saved = NULL;
		return 0;
	}
	co->saved_len = live;
	return 1;
#endif
}

bool
ks_coro_guard_hit(const struct ks_sched *s, const void *addr)
{
	const struct ks_coro *co = s->current;
	uintptr_t a = (uintptr_t)addr, lo;

	if (co == NULL)
		return false;
	lo = (uintptr_t)co->map;

	/* A large frame can land a little below the guard page too. */
	return a < lo + page_size() && a + 65536 >= lo;
}

static void
coro_thaw(struct ks_coro *co)
{
	stack_copy(co->sp, co->saved, co->saved_len);
	free(co->saved);
	co->saved = NULL;
	co->saved_len = 0;
}

static void
coro_entry(struct ks_coro *co)
{
	struct ks_sched *s = co->sched;

	/* First arrival on this stack: learn the main stack's bounds. */
	ASAN_FINISH(NULL, &s->main_stack_bottom, &s->main_stack_size);
	co->fn(co->arg);
	co->state = KS_CORO_DONE;
	/* NULL: this fiber's fake stack can go, it never comes back. */
	ASAN_START(NULL, s->main_stack_bottom, s->main_stack_size);
	switch_to(&co->sp, s->main_sp);
	abort(); /* unreachable: a DONE coroutine is never resumed */
}

void
ks_coro_resume(struct ks_coro *co, int status)
{
	struct ks_sched *s = co->sched;
	void *fake = NULL;
	size_t ps = page_size();

	(void)ps; /* used by the ASan annotation only */
	if (s->current != NULL || co->state == KS_CORO_DONE ||
	    co->state == KS_CORO_RUNNING)
		abort(); /* a scheduler invariant is broken: fail loudly */
	if (co->saved != NULL)
		coro_thaw(co);
	co->wake_status = status;
	co->state = KS_CORO_RUNNING;
	s->current = co;
	if (s->running != NULL)
		*s->running = co->tag;
	ASAN_START(&fake, co->map + ps, co->map_size - ps);
	switch_to(&s->main_sp, co->sp);
	ASAN_FINISH(fake, NULL, NULL);
	if (s->running != NULL)
		*s->running = -1;
	s->current = NULL;
	if (co->state == KS_CORO_DONE) {
		s->live--;
		if (co->done != NULL)
			co->done(co->udata);
		coro_recycle(s, co);
	}
}

static int
switch_out(struct ks_sched *s, struct ks_coro *co)
{
	ASAN_START(&co->asan_fake, s->main_stack_bottom, s->main_stack_size);
	switch_to(&co->sp, s->main_sp);
	ASAN_FINISH(co->asan_fake, &s->main_stack_bottom, &s->main_stack_size);
	return co->wake_status;
}

int
ks_coro_suspend(struct ks_sched *s)
{
	struct ks_coro *co = s->current;

	if (co == NULL)
		abort(); /* suspending outside a coroutine */
	co->state = KS_CORO_SUSPENDED;
	return switch_out(s, co);
}

static void
queue_push(struct ks_coro **head, struct ks_coro **tail, struct ks_coro *co)
{
	co->state = KS_CORO_QUEUED;
	co->next = NULL;
	if (*tail != NULL)
		(*tail)->next = co;
	else
		*head = co;
	*tail = co;
}

static void
runq_push(struct ks_sched *s, struct ks_coro *co)
{
	queue_push(&s->runq_head, &s->runq_tail, co);
}

void
ks_coro_yield(struct ks_sched *s)
{
	struct ks_coro *co = s->current;

	if (co == NULL)
		abort();
	co->wake_status = 0;
	/* Not the run queue: that is drained until empty, and a coroutine
	 * that keeps yielding would keep the loop from ever polling. */
	queue_push(&s->yieldq_head, &s->yieldq_tail, co);
	(void)switch_out(s, co);
}

void
ks_coro_wake(struct ks_coro *co, int status)
{
	struct ks_sched *s = co->sched;

	if (co->state != KS_CORO_SUSPENDED && co->state != KS_CORO_NEW)
		return; /* already running or queued: the first wake wins */
	if (s->current == NULL) {
		ks_coro_resume(co, status);
		return;
	}
	co->wake_status = status;
	runq_push(s, co);
}

bool
ks_sched_run_queue(struct ks_sched *s)
{
	struct ks_coro *co;

	while ((co = s->runq_head) != NULL) {
		s->runq_head = co->next;
		if (s->runq_head == NULL)
			s->runq_tail = NULL;
		co->state = KS_CORO_SUSPENDED;
		ks_coro_resume(co, co->wake_status);
	}
	/* Those that yielded run next time, after a poll. */
	s->runq_head = s->yieldq_head;
	s->runq_tail = s->yieldq_tail;
	s->yieldq_head = s->yieldq_tail = NULL;
	return s->runq_head != NULL;
}
