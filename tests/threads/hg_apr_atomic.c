/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * hg_apr_atomic.c - test-only LD_PRELOAD library for make test-threads
 * (tests/threads/run.py): APR's atomic operations (libapr-1's
 * apr_atomic_*), with helgrind told that each one is a synchronisation.
 *
 * Why: the event MPM hands a finished connection's pool (and the request
 * pools made from it) to the next worker thread through a lock-free list
 * (ap_queue_info_push_pool / ap_queue_info_pop_pool, apr_atomic_casptr).
 * Helgrind does not see a happens-before edge in an atomic instruction, so
 * every use of recycled pool memory in the next thread is reported as a
 * race with the previous thread's use - the module's own per-request
 * state (sr_req_t, in r->pool) included. Here each apr_atomic_* call is a
 * sequentially consistent operation that helgrind knows as one:
 * ANNOTATE_HAPPENS_BEFORE on the address before it, ANNOTATE_HAPPENS_AFTER
 * after it. A race on data handed over by such an atomic then disappears,
 * as it does for data handed over under a mutex; nothing else changes.
 * The module itself never uses apr_atomic_* (sr_atomic.h), so its own
 * lock-free accesses are not annotated by this file.
 *
 * Not part of the module; built by run.py with the system compiler.
 */
#include <stdint.h>
#include <valgrind/helgrind.h>

typedef uint32_t u32;
typedef uint64_t u64;

#define HB(p) ANNOTATE_HAPPENS_BEFORE((void *)(p))
#define HA(p) ANNOTATE_HAPPENS_AFTER((void *)(p))
#define SC __ATOMIC_SEQ_CST

/* The prototypes of apr_atomic.h (APR 1.7), written out: this file must
 * not include APR's header, whose declarations it replaces. */
u32 apr_atomic_read32(volatile u32 *mem);
void apr_atomic_set32(volatile u32 *mem, u32 val);
u32 apr_atomic_add32(volatile u32 *mem, u32 val);
void apr_atomic_sub32(volatile u32 *mem, u32 val);
u32 apr_atomic_inc32(volatile u32 *mem);
int apr_atomic_dec32(volatile u32 *mem);
u32 apr_atomic_cas32(volatile u32 *mem, u32 with, u32 cmp);
u32 apr_atomic_xchg32(volatile u32 *mem, u32 val);
u64 apr_atomic_read64(volatile u64 *mem);
void apr_atomic_set64(volatile u64 *mem, u64 val);
u64 apr_atomic_add64(volatile u64 *mem, u64 val);
void apr_atomic_sub64(volatile u64 *mem, u64 val);
u64 apr_atomic_inc64(volatile u64 *mem);
int apr_atomic_dec64(volatile u64 *mem);
u64 apr_atomic_cas64(volatile u64 *mem, u64 with, u64 cmp);
u64 apr_atomic_xchg64(volatile u64 *mem, u64 val);
void *apr_atomic_casptr(void *volatile *mem, void *with, const void *cmp);
void *apr_atomic_xchgptr(void *volatile *mem, void *with);

u32 apr_atomic_read32(volatile u32 *mem)
{
    u32 v;
    HB(mem); v = __atomic_load_n(mem, SC); HA(mem);
    return v;
}

void apr_atomic_set32(volatile u32 *mem, u32 val)
{
    HB(mem); __atomic_store_n(mem, val, SC); HA(mem);
}

u32 apr_atomic_add32(volatile u32 *mem, u32 val)
{
    u32 v;
    HB(mem); v = __atomic_fetch_add(mem, val, SC); HA(mem);
    return v;
}

void apr_atomic_sub32(volatile u32 *mem, u32 val)
{
    HB(mem); __atomic_fetch_sub(mem, val, SC); HA(mem);
}

u32 apr_atomic_inc32(volatile u32 *mem)
{
    return apr_atomic_add32(mem, 1);
}

int apr_atomic_dec32(volatile u32 *mem)
{
    u32 v;
    HB(mem); v = __atomic_sub_fetch(mem, 1, SC); HA(mem);
    return v != 0;
}

u32 apr_atomic_cas32(volatile u32 *mem, u32 with, u32 cmp)
{
    HB(mem);
    __atomic_compare_exchange_n(mem, &cmp, with, 0, SC, SC);
    HA(mem);
    return cmp;     /* the old value, as APR returns it */
}

u32 apr_atomic_xchg32(volatile u32 *mem, u32 val)
{
    u32 v;
    HB(mem); v = __atomic_exchange_n(mem, val, SC); HA(mem);
    return v;
}

u64 apr_atomic_read64(volatile u64 *mem)
{
    u64 v;
    HB(mem); v = __atomic_load_n(mem, SC); HA(mem);
    return v;
}

void apr_atomic_set64(volatile u64 *mem, u64 val)
{
    HB(mem); __atomic_store_n(mem, val, SC); HA(mem);
}

u64 apr_atomic_add64(volatile u64 *mem, u64 val)
{
    u64 v;
    HB(mem); v = __atomic_fetch_add(mem, val, SC); HA(mem);
    return v;
}

void apr_atomic_sub64(volatile u64 *mem, u64 val)
{
    HB(mem); __atomic_fetch_sub(mem, val, SC); HA(mem);
}

u64 apr_atomic_inc64(volatile u64 *mem)
{
    return apr_atomic_add64(mem, 1);
}

int apr_atomic_dec64(volatile u64 *mem)
{
    u64 v;
    HB(mem); v = __atomic_sub_fetch(mem, 1, SC); HA(mem);
    return v != 0;
}

u64 apr_atomic_cas64(volatile u64 *mem, u64 with, u64 cmp)
{
    HB(mem);
    __atomic_compare_exchange_n(mem, &cmp, with, 0, SC, SC);
    HA(mem);
    return cmp;
}

u64 apr_atomic_xchg64(volatile u64 *mem, u64 val)
{
    u64 v;
    HB(mem); v = __atomic_exchange_n(mem, val, SC); HA(mem);
    return v;
}

void *apr_atomic_casptr(void *volatile *mem, void *with, const void *cmp)
{
    void *old = (void *)cmp;
    HB(mem);
    __atomic_compare_exchange_n(mem, &old, with, 0, SC, SC);
    HA(mem);
    return old;
}

void *apr_atomic_xchgptr(void *volatile *mem, void *with)
{
    void *v;
    HB(mem); v = __atomic_exchange_n(mem, with, SC); HA(mem);
    return v;
}
