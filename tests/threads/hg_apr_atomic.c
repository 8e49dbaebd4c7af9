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

/* The atomic expression e on *p, between HB(p) and HA(p); its value (a GNU
 * statement expression: gcc builds this file). */
#define SYNCED(p, e) ({ HB(p); __typeof__(e) v_ = (e); HA(p); v_; })

/* The functions of apr_atomic.h (APR 1.7), with its signatures: this file
 * must not include APR's header, whose definitions it replaces. */
void *apr_atomic_casptr(void *volatile *mem, void *with, const void *cmp);
void *apr_atomic_xchgptr(void *volatile *mem, void *with);

/* The eight operations of one width (APR's names end in the width). cas
 * returns the old value, as APR does: __atomic_compare_exchange_n leaves it
 * in cmp when the exchange fails, and cmp is the old value when it is done. */
#define HG_ATOMICS(T, N)                                                                \
T apr_atomic_read##N(volatile T *mem) { return SYNCED(mem, __atomic_load_n(mem, SC)); } \
void apr_atomic_set##N(volatile T *mem, T val)                                          \
{                                                                                       \
    HB(mem); __atomic_store_n(mem, val, SC); HA(mem);                                   \
}                                                                                       \
T apr_atomic_add##N(volatile T *mem, T val)                                             \
{                                                                                       \
    return SYNCED(mem, __atomic_fetch_add(mem, val, SC));                               \
}                                                                                       \
void apr_atomic_sub##N(volatile T *mem, T val)                                          \
{                                                                                       \
    SYNCED(mem, __atomic_fetch_sub(mem, val, SC));                                      \
}                                                                                       \
T apr_atomic_inc##N(volatile T *mem) { return apr_atomic_add##N(mem, 1); }              \
int apr_atomic_dec##N(volatile T *mem)                                                  \
{                                                                                       \
    return SYNCED(mem, __atomic_sub_fetch(mem, 1, SC)) != 0;                            \
}                                                                                       \
T apr_atomic_cas##N(volatile T *mem, T with, T cmp)                                     \
{                                                                                       \
    SYNCED(mem, __atomic_compare_exchange_n(mem, &cmp, with, 0, SC, SC));               \
    return cmp;                                                                         \
}                                                                                       \
T apr_atomic_xchg##N(volatile T *mem, T val)                                            \
{                                                                                       \
    return SYNCED(mem, __atomic_exchange_n(mem, val, SC));                              \
}

HG_ATOMICS(u32, 32)
HG_ATOMICS(u64, 64)

void *apr_atomic_casptr(void *volatile *mem, void *with, const void *cmp)
{
    void *old = (void *)cmp;
    SYNCED(mem, __atomic_compare_exchange_n(mem, &old, with, 0, SC, SC));
    return old;
}

void *apr_atomic_xchgptr(void *volatile *mem, void *with)
{
    return SYNCED(mem, __atomic_exchange_n(mem, with, SC));
}
