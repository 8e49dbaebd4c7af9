/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_state.h - which balancers are ours, and a balancer's
 * per-process state (sr_balancer_state_t) with its scan and view: the
 * functions of mod_sticky_route_state.c. A part of
 * mod_sticky_route_private.h, reached through it (the lock contract is
 * there).
 */
#ifndef MOD_STICKY_ROUTE_STATE_H
#define MOD_STICKY_ROUTE_STATE_H

#ifndef MOD_STICKY_ROUTE_PRIVATE_H
#error "a part of mod_sticky_route_private.h: include that header"
#endif

/* ---- our balancers (mod_sticky_route_state.c) ---------------------------- */

/* b uses lbmethod=sticky, roundrobin or hash. No lock. */
int sr_is_ours(const proxy_balancer *b);

/* Calls fn for every balancer of every server that uses lbmethod=sticky,
 * roundrobin or hash; stops when fn returns non-zero and returns that. No
 * lock: the configuration is fixed (fn says what it needs). */
typedef int sr_balancer_fn(server_rec *s, proxy_balancer *b, void *baton);
int sr_for_each_balancer(server_rec *main_s, sr_balancer_fn *fn, void *baton);

extern server_rec *sr_main_server;     /* set by post_config; no lock */

/* ---- per-process balancer state (mod_sticky_route_state.c) ----------------
 * Lives in proxy_balancer->context of our balancers only. Its lock rule
 * (the balancer's thread mutex) and who takes it: the lock contract in
 * mod_sticky_route_private.h ("per-process balancer state"). */
typedef struct {
    proxy_balancer *balancer;
    server_rec *server;
    const sr_conf_t *dirconf;       /* from the matching <Proxy> sections */
    sr_effective_t eff;             /* the settings that apply (fixed for
                                       the life of the configuration) */
    sr_cookie_ctx_t cookie_ctx;     /* what reading a cookie needs */
    sr_lifetime_t lifetime;         /* MaxIdle, MaxLife, rebalance */
    int dated;                      /* cookies carry dates */
    uint32_t max;                   /* capacity in members */
    int nworkers;                   /* balancer->workers->nelts at scan */
    apr_time_t next_scan;           /* periodic rescan (recoveries, edits) */
    uint64_t signature;             /* of the takers and their weights */
    int from_standby;               /* takers are hot standbys */
    sr_member_t *view;              /* per member: the policy's view */
    char *routes_buf;               /* max * PROXY_WORKER_MAX_ROUTE_SIZE */
    const char **routes;            /* per member: route used in cookies;
                                       a published string is never
                                       rewritten, unless route_copy (see
                                       sr_scan) */
    int route_copy;                 /* StickyRouteDiscover: the scan
                                       rewrites a changed route in its
                                       routes_buf slot, and each decision
                                       copies its route (sr_apply); fixed */
    apr_pool_t *route_pool;         /* fresh strings for changed routes
                                       (not route_copy); the balancer's
                                       thread mutex */
    uint32_t *raw_sig;              /* per member: hash of its route= as last
                                       seen (a change is logged once) */
    char *values_buf;               /* max * SR_VALUE_BUF: cookie values */
    const sr_key_t **value_key;     /* per member: key its value was made
                                       with; stale when value_ok[i] is 0 */
    unsigned char *value_ok;
    sr_route_index_t index;         /* route -> member */
    sr_schedule_t schedule;
    uint16_t *cand;                 /* scratch for scan */
    uint32_t *weights;              /* scratch for scan */
    sr_shm_balancer_t *shared;      /* ticket; NULL: process-local */
    apr_uint64_t local_ticket;
    sr_shm_member_t **counters;     /* per member, may be NULL */
    volatile apr_uint32_t waiters;  /* StickyRouteWait: requests of this
                                       process waiting now (atomic) */
    struct sr_hash_state_t *hash;   /* lbmethod=hash, StickyRouteElect hash
                                       (mod_sticky_route_hash.c); NULL: none */
} sr_balancer_state_t;

/* The state of b, made on first use when child_init did not see b (its
 * lbmethod switched to ours at run time); NULL when it cannot be made.
 * Lock: the balancer's thread mutex for what the caller then does with
 * it; making it takes the process's child-pool mutex (sr_state_make). */
sr_balancer_state_t *sr_state_make(proxy_balancer *b, server_rec *s);
static inline sr_balancer_state_t *sr_state(proxy_balancer *b, server_rec *s)
{
    return b->context ? (sr_balancer_state_t *)b->context
                      : sr_state_make(b, s);
}
/* st gets its lbmethod=hash map (lbmethod switched to hash at run time).
 * Lock: the balancer's thread mutex. */
void sr_state_hash_ensure(sr_balancer_state_t *st);

/* The scan (see mod_sticky_route_state.c); returns how soon the next is
 * due. Lock: the balancer's thread mutex. */
apr_interval_time_t sr_scan(sr_balancer_state_t *st, server_rec *s);

/* Member i's status flags in st->view[i] as they are now (O(1): one read
 * of its shared status word; lbset, weight, route and redirect come with
 * the scan). Lock: the balancer's thread mutex (st->view, b->workers). */
static inline void sr_view_refresh(sr_balancer_state_t *st, int i)
{
    proxy_worker *w = ((proxy_worker **)st->balancer->workers->elts)[i];
    sr_member_t *m = &st->view[i];
    unsigned int status = w->s->status;

    m->usable = (status & (PROXY_WORKER_NOT_USABLE_BITMAP
                           | PROXY_WORKER_INITIALIZED))
                == PROXY_WORKER_INITIALIZED;
    m->draining = (status & PROXY_WORKER_DRAIN) != 0;
    m->standby = (status & PROXY_WORKER_HOT_STANDBY) != 0;
    m->spare = (status & PROXY_WORKER_HOT_SPARE) != 0;
}

/* mod_proxy's ap_proxy_retry_worker (sr_state_post_config). */
extern APR_OPTIONAL_FN_TYPE(ap_proxy_retry_worker) *sr_retry_worker;

/* A member that is not usable gets its ap_proxy_retry_worker chance (as
 * mod_proxy_balancer gives it), then its view is refreshed. Lock: the
 * balancer's thread mutex. */
static inline void sr_view_member(sr_balancer_state_t *st, int i,
                                  server_rec *s)
{
    proxy_worker *w = ((proxy_worker **)st->balancer->workers->elts)[i];

    if (!PROXY_WORKER_IS_USABLE(w) && sr_retry_worker) {
        sr_retry_worker("BALANCER", w, s);
    }
    sr_view_refresh(st, i);
}

/* FNV-1a of s, never 0 nor 0xffffffff (either may mean "none" to the
 * caller): the scan's raw routes, discovery's worker names. No lock. */
uint32_t sr_str_sig(const char *s);
/* The member's URL (name_ex, else name). No lock. */
const char *sr_worker_url(const proxy_worker *w);

/* The route each member of b is known by, computed the way the finder
 * does (sr_route_choose in member order), for the status handler and
 * startup. Lock: the balancer's thread mutex once request threads run
 * (b->workers may grow); none at startup. */
const char **sr_balancer_routes(apr_pool_t *p, server_rec *s,
                                proxy_balancer *b);

void sr_state_post_config(void);
void sr_state_child_init(apr_pool_t *pchild, server_rec *main_s);

#endif /* MOD_STICKY_ROUTE_STATE_H */
