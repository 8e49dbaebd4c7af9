/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_atomic.h - the one atomic API of mod_sticky_route.
 *
 * Every access to a field that another thread or process may change at the
 * same time (the shared-memory entries of mod_sticky_route_private.h, the
 * in-flight count the policy reads, st->waiters) goes through these
 * wrappers, never through apr_atomic_*, a bare __atomic builtin or a plain
 * read of a volatile field. They are static inline over the GCC/Clang
 * __atomic builtins: no call per request, and each states its memory order:
 *
 *   relaxed   counters and gauges (request counts, in-flight, tickets,
 *             discovery figures): only the value itself must be whole;
 *             nothing else is published through it.
 *   acquire   a load that then reads what a release store published (a
 *             slot's state word before its route; see mod_sticky_route_shm.c).
 *   release   a store that publishes what was written before it (a slot
 *             becoming READY after its route and counters were set).
 *   acq_rel   compare-and-swap and exchange: they both take and publish.
 *
 * Needs no httpd header (the core, sr_policy.c, uses the load too).
 */
#ifndef SR_ATOMIC_H
#define SR_ATOMIC_H

#include <stdint.h>

/* ---- 32 bit --------------------------------------------------------- */

/* relaxed load: a counter or gauge */
static inline uint32_t sr_atomic_load32(const volatile uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* acquire load: what the matching release store published is visible */
static inline uint32_t sr_atomic_load32_acquire(const volatile uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* relaxed store: a gauge or flag that publishes nothing else */
static inline void sr_atomic_store32(volatile uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* release store: everything written before it is visible to whoever
 * reads this value with an acquire load */
static inline void sr_atomic_store32_release(volatile uint32_t *p,
                                             uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* relaxed fetch-and-add; returns the value before */
static inline uint32_t sr_atomic_add32(volatile uint32_t *p, uint32_t v)
{
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

/* relaxed fetch-and-subtract; returns the value before */
static inline uint32_t sr_atomic_sub32(volatile uint32_t *p, uint32_t v)
{
    return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED);
}

/* Compare-and-swap (strong, acq_rel; acquire when it fails): *p becomes
 * desired when it was expected. Returns the value before (== expected:
 * it swapped), like apr_atomic_cas32 did. */
static inline uint32_t sr_atomic_cas32(volatile uint32_t *p,
                                       uint32_t expected, uint32_t desired)
{
    __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_ACQ_REL,
                                __ATOMIC_ACQUIRE);
    return expected;
}

/* exchange (acq_rel); returns the value before */
static inline uint32_t sr_atomic_xchg32(volatile uint32_t *p, uint32_t v)
{
    return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL);
}

/* Takes one off a count that must never go below zero (relaxed: a count
 * only). Returns the value before; 0: it was zero and stays zero. */
static inline uint32_t sr_atomic_dec32_floor0(volatile uint32_t *p)
{
    uint32_t n = __atomic_load_n(p, __ATOMIC_RELAXED);

    while (n > 0 && !__atomic_compare_exchange_n(p, &n, n - 1, 1,
                                                 __ATOMIC_RELAXED,
                                                 __ATOMIC_RELAXED))
        ;
    return n;
}

/* ---- 64 bit --------------------------------------------------------- */

/* relaxed load: a counter, a gauge or a date (apr_time_t) */
static inline uint64_t sr_atomic_load64(const volatile uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* relaxed store */
static inline void sr_atomic_store64(volatile uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* relaxed fetch-and-add; returns the value before */
static inline uint64_t sr_atomic_add64(volatile uint64_t *p, uint64_t v)
{
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

/* ---- pointers ------------------------------------------------------- */

/* exchange (acq_rel); returns the pointer before */
static inline void *sr_atomic_xchgptr(void *volatile *p, void *v)
{
    return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL);
}

/* release fence: the stores before it are visible before any store after
 * it (for plain stores that publish, as discovery's worker edits) */
static inline void sr_atomic_fence_release(void)
{
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

#endif /* SR_ATOMIC_H */
