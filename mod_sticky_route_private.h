/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_private.h - what the glue files share: the lock
 * contract (below, the one place it is written), then by concern its
 * parts mod_sticky_route_config.h (settings), _shm.h (shared memory),
 * _state.h (our balancers, per-process state), _request.h (a request's
 * own state), reached only through this header.
 *
 *   mod_sticky_route.c         module record, hooks, startup checks and
 *                              preparation (derived routes, shared slots);
 *                              nothing calls into it
 *   mod_sticky_route_config.c  the directives (sr_conf_t made, merged)
 *   mod_sticky_route_effective.c  the settings of a balancer
 *                              (sr_effective), their startup checks
 *   mod_sticky_route_shm.c     shared memory: tickets and counters
 *   mod_sticky_route_state.c   per-balancer state and its scan: routes,
 *                              view, member weight (slow start), schedule;
 *                              which balancers are ours
 *   mod_sticky_route_find.c    the three providers: finders, election,
 *                              a decision applied
 *   mod_sticky_route_request.c what a request brings: its sr_req_t, its
 *                              cookies and session id
 *   mod_sticky_route_filter.c  the Set-Cookie filter, log_transaction:
 *                              in-flight released, decisions counted
 *   mod_sticky_route_retry.c   request_status: the retry of a request a
 *                              member broke; pre_connection
 *   mod_sticky_route_status.c  the status handler
 *   mod_sticky_route_wait.c    StickyRouteWait: requests wait for a member
 *   mod_sticky_route_hash.c    lbmethod=hash: the request key, the map
 *   mod_sticky_route_discover.c, _discover_watchdog.c,
 *   _discover_apply.c, _lookup.c, _hc.c
 *                              StickyRouteDiscover (their own header:
 *                              mod_sticky_route_discover.h)
 *
 * The decisions themselves are in sr_policy.c, sr_policy_request.c and
 * sr_discover_policy.c, pure and unit-tested (sr_policy.h has the whole
 * decision table of a request); the httpd-free helpers under sr_core.h. Atomics:
 * sr_atomic.h only. docs/DESIGN.md draws the request path through these
 * files.
 *
 * The lock contract (each function's comment says which it needs):
 *   - the balancer's thread mutex (PROXY_THREAD_LOCK(b), one per balancer
 *     and process): guards the per-process state - sr_balancer_state_t in
 *     b->context, b->workers, the lbmethod=hash map; see "per-process
 *     balancer state" below for who takes it;
 *   - the balancer's global mutex (PROXY_GLOBAL_LOCK(b), across
 *     processes): taken by the discovery watchdog, after the thread mutex,
 *     around its edits of the balancer's shared worker slots and of our
 *     member entries (sr_shm_member_renew);
 *   - a worker's thread mutex (PROXY_THREAD_LOCK(w)): discovery's
 *     per-child step, inside the balancer's thread mutex, while it takes a
 *     rewritten slot's connection address away (as mod_proxy does);
 *   - sr_child_mutex (mod_sticky_route_state.c, per process): the child
 *     pool, when a balancer's state or map is made after child_init;
 *   - no lock: the shared-memory entries (sr_shm_*_t,
 *     mod_sticky_route_shm.h) are read and written only through
 *     sr_atomic.h, and claimed with the lock-free protocol of
 *     mod_sticky_route_shm.c; a request's own sr_req_t belongs to its
 *     thread; configuration is fixed after startup.
 *
 * Per-process balancer state: sr_balancer_state_t (mod_sticky_route_state.h)
 * lives in proxy_balancer->context of our balancers only. The lock rule:
 * whoever reads or writes it, or b->workers, holds the balancer's thread
 * mutex (PROXY_THREAD_LOCK(b)), so one thread at a time per process touches
 * it; processes share only the shm entries (sr_atomic.h only). Fields
 * fixed when the state is made (balancer, server, eff, max, shared, the
 * buffers' addresses) may be read without it.
 *   - the finders (mod_sticky_route_find.c): mod_proxy_balancer calls them
 *     with the mutex held;
 *   - sr_request_status (mod_sticky_route_retry.c, the retry decision):
 *     takes it around its read of the view;
 *   - the discovery watchdog (mod_sticky_route_discover.c,
 *     _discover_apply.c): takes it, then the balancer's global mutex,
 *     around ap_proxy_sync_balancer and its edits; its per-child step
 *     takes it alone;
 *   - StickyRouteWait (mod_sticky_route_wait.c): takes it to sync, never
 *     while it sleeps; st->waiters is atomic (no lock);
 *   - the status handler (mod_sticky_route_status.c): takes it while it
 *     reads b->workers and computes the routes (sr_balancer_routes); the
 *     rest is shared memory;
 *   - the cookie filter and log_transaction (mod_sticky_route_filter.c):
 *     no lock - they touch the request's own sr_req_t, fixed fields of st
 *     and shared memory only.
 */
#ifndef MOD_STICKY_ROUTE_PRIVATE_H
#define MOD_STICKY_ROUTE_PRIVATE_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "ap_mmn.h"
#include "util_filter.h"
#include "ap_expr.h"
#include "mod_proxy.h"

#include "mod_sticky_route.h"
#include "sr_core.h"
#include "sr_policy.h"
#include "sr_hash.h"
#include "sr_atomic.h"

/* name_ex in proxy_worker_shared came with httpd 2.4.51, a worker's
 * address TTL (address_ttl, what lets discovery reuse a slot) with 2.4.59. */
#define SR_MMN_MAJOR 20120211
#define SR_MMN_MINOR 130
#if !AP_MODULE_MAGIC_AT_LEAST(SR_MMN_MAJOR, SR_MMN_MINOR)
#error "mod_sticky_route needs httpd 2.4.59 or later (module magic 20120211.130)"
#endif

/* Internal to the module: called directly, not through the PLT (as when
 * they were static in one file); a thread-local reached without the
 * global-dynamic TLS model's GOT indirection. */
#define SR_HIDDEN __attribute__((visibility("hidden")))

/* AP_DECLARE_MODULE in mod_sticky_route.c does what APLOG_USE_MODULE does */
#ifndef SR_MODULE_RECORD
APLOG_USE_MODULE(sticky_route);
#endif
extern module AP_MODULE_DECLARE_DATA sticky_route_module;

/* A cleanup of pool p that sets the pointer at slot to NULL when p is
 * cleared: a file's pointer to something of one configuration generation
 * (pconf) is forgotten with it (as APR's own (void **) arguments, slot is
 * the address of any object pointer). No lock: the parent, at startup. */
static inline apr_status_t sr_forget_cleanup(void *slot)
{
    *(void **)slot = NULL;
    return APR_SUCCESS;
}
static inline void sr_forget_with_pool(apr_pool_t *p, void **slot)
{
    apr_pool_cleanup_register(p, slot, sr_forget_cleanup,
                              apr_pool_cleanup_null);
}

/* The glue's shared declarations, by concern (each part is reached only
 * through this header; their order is their dependency order). */
#include "mod_sticky_route_config.h"     /* settings (_config.c, _effective.c) */
#include "mod_sticky_route_shm.h"        /* shared memory (_shm.c) */
#include "mod_sticky_route_state.h"      /* our balancers, per-process state */
#include "mod_sticky_route_request.h"    /* a request: _request.c, _filter.c, _retry.c */

/* ---- the providers (mod_sticky_route_find.c) ------------------------------ */

extern const proxy_balancer_method sr_sticky_method;
extern const proxy_balancer_method sr_roundrobin_method;
extern const proxy_balancer_method sr_hash_method;

void sr_find_register_hooks(apr_pool_t *p);

/* ---- lbmethod=hash (mod_sticky_route_hash.c) --------------------------------
 * The per-process key -> member map of a balancer (sr_hash.h), kept in
 * st->hash. Every function here needs the balancer's thread mutex
 * (PROXY_THREAD_LOCK(b)), like the rest of the per-process state. */
typedef struct sr_hash_state_t sr_hash_state_t;

/* Does balancer b (settings eff) map keys: lbmethod=hash or
 * StickyRouteElect hash? (no lock) */
int sr_hash_wanted(const proxy_balancer *b, const sr_effective_t *eff);
/* post_config, in the parent: the maps of every balancer that maps keys,
 * built once from the configured members and inherited by every child. */
void sr_hash_post_config(apr_pool_t *pconf, server_rec *main_s);
/* The map for st, from pool p (st->max members): the parent's when there
 * is one; the caller serialises the use of p. */
sr_hash_state_t *sr_hash_state_create(apr_pool_t *p,
                                      const sr_balancer_state_t *st);
/* From the scan: the map follows the members that take new requests now
 * (st->cand, st->weights: ncand of them) and their routes; notes each
 * member's share of the hash space in shared memory. O(members) when
 * nothing changed. Lock: the balancer's thread mutex. */
void sr_hash_scan(sr_balancer_state_t *st, uint32_t ncand);
/* The request's key hash (StickyRouteHashKey, else the client address);
 * 0 when the key is empty. No lock. */
int sr_hash_request_key(const sr_balancer_state_t *st, request_rec *r,
                        uint64_t *h);
/* The member for key hash h: the key's first choice that takes new
 * requests now (its view refreshed), is not in tried and, with
 * StickyRouteHashBalance, is within its bounded load. *spilled: a choice
 * was passed over for its load; *stale: a choice had become unusable
 * since the scan (rescan, then ask again). -1: none. n: members in the
 * view. Lock: the balancer's thread mutex. */
int32_t sr_hash_choose(sr_balancer_state_t *st, uint64_t h, uint32_t n,
                       const sr_tried_t *tried, int *spilled, int *stale);

/* ---- discovery (mod_sticky_route_discover.c, _discover_watchdog.c) ---------- */

const char *sr_discover_parse(apr_pool_t *p, int argc, char *const argv[],
                              sr_discover_conf_t *dc);
/* check_config: makes room (growth) and the members of the first answer. */
int sr_discover_check(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s,
                      proxy_balancer *b, const sr_discover_conf_t *dc,
                      const sr_key_t *route_key);
/* post_config: the watchdog callbacks; needs mod_watchdog
 * (mod_sticky_route_discover_watchdog.c, like sr_discover_child_ready). */
int sr_discover_post_config(apr_pool_t *pconf, server_rec *main_s);
/* child_init, after mod_proxy_balancer's: this process's balancers are
 * made; the discovery watchdogs act only from then on. No lock. */
void sr_discover_child_ready(apr_pool_t *pchild, server_rec *s);

/* ---- StickyRouteWait (mod_sticky_route_wait.c) ------------------------------ */

void sr_wait_register_hooks(apr_pool_t *p);
void sr_wait_child_init(apr_pool_t *pchild, server_rec *main_s);
/* The requests of one process that may wait for a member of a balancer
 * with these settings at once: max=, else half the process's threads. */
uint32_t sr_wait_max(const sr_effective_t *eff);

/* ---- status (mod_sticky_route_status.c) ----------------------------------- */

int sr_status_handler(request_rec *r);

#endif /* MOD_STICKY_ROUTE_PRIVATE_H */
