/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_state.c - the per-process state of a balancer
 * (sr_balancer_state_t) and the scan that keeps it: the members' routes,
 * the route index, the policy's view of each member, its weight (slow
 * start), the round-robin schedule. Also which balancers are ours
 * (sr_is_ours, sr_for_each_balancer) and the status handler's routes
 * (sr_balancer_routes).
 *
 * Lock: everything here that reads or writes an sr_balancer_state_t needs
 * the balancer's thread mutex (PROXY_THREAD_LOCK(b)), the rule of
 * mod_sticky_route_private.h; each function says so.
 */
#include <string.h>

#include "apr_strings.h"
#include "apr_optional.h"

#include "mod_sticky_route_private.h"

/* How often a process refreshes its view of a balancer's members (routes,
 * recoveries, balancer-manager edits) when nothing forces it sooner. */
#define SR_SCAN_INTERVAL apr_time_from_sec(1)
/* A hash of nothing: the route= of a member never seen before. */
#define SR_RAW_SIG_NONE 0xffffffffu

server_rec *sr_main_server = NULL;
APR_OPTIONAL_FN_TYPE(ap_proxy_retry_worker) *sr_retry_worker = NULL;
static apr_pool_t *sr_child_pool = NULL;
#if APR_HAS_THREADS
static apr_thread_mutex_t *sr_child_mutex = NULL;
#endif

/* ====================================================================
 * Our balancers
 * ==================================================================== */

/* No lock: reads the balancer's lbmethod pointer only. */
int sr_is_ours(const proxy_balancer *b)
{
    return b->lbmethod == &sr_sticky_method
        || b->lbmethod == &sr_roundrobin_method
        || b->lbmethod == &sr_hash_method;
}

/* No lock: walks the configuration (fixed after startup). */
int sr_for_each_balancer(server_rec *main_s, sr_balancer_fn *fn, void *baton)
{
    server_rec *s;

    for (s = main_s; s; s = s->next) {
        proxy_server_conf *pc = ap_get_module_config(s->module_config,
                                                     &proxy_module);
        proxy_balancer *bal;
        int i, rc;

        if (!pc || !pc->balancers) {
            continue;
        }
        bal = (proxy_balancer *)pc->balancers->elts;
        for (i = 0; i < pc->balancers->nelts; i++) {
            if (sr_is_ours(&bal[i]) && (rc = fn(s, &bal[i], baton)) != 0) {
                return rc;
            }
        }
    }
    return 0;
}

/* ====================================================================
 * Per-process balancer state: routes, route index, view, schedule
 * ==================================================================== */

/* A new state for balancer b, from pool p. Lock: none of its own: the
 * caller serialises the use of p (child_init runs alone; sr_state_make
 * holds sr_child_mutex). */
static sr_balancer_state_t *sr_state_create(apr_pool_t *p, server_rec *s,
                                            proxy_balancer *b)
{
    sr_balancer_state_t *st = apr_pcalloc(p, sizeof(*st));
    uint32_t max = (uint32_t)b->max_workers, i;

    if (max < (uint32_t)b->workers->nelts) {
        max = (uint32_t)b->workers->nelts;
    }
    if (max < 1) {
        max = 1;
    }
    if (max > UINT16_MAX) {
        max = UINT16_MAX;
    }
    st->balancer = b;
    st->server = s;
    st->dirconf = sr_section_conf(p, s, b);
    sr_effective(s, st->dirconf, &st->eff);
    st->route_copy = st->dirconf && st->dirconf->discover;
    if (!st->route_copy && apr_pool_create(&st->route_pool, p) != APR_SUCCESS) {
        st->route_copy = 1;         /* no pool: rewrite in place and copy */
    }
    st->max = max;
    st->nworkers = -1;
    st->view = apr_pcalloc(p, max * sizeof(sr_member_t));
    st->routes_buf = apr_pcalloc(p, (apr_size_t)max * PROXY_WORKER_MAX_ROUTE_SIZE);
    st->routes = apr_pcalloc(p, max * sizeof(char *));
    st->raw_sig = apr_palloc(p, max * sizeof(uint32_t));
    for (i = 0; i < max; i++) {
        st->raw_sig[i] = SR_RAW_SIG_NONE;
    }
    st->values_buf = apr_pcalloc(p, (apr_size_t)max * SR_VALUE_BUF);
    st->value_key = apr_pcalloc(p, max * sizeof(sr_key_t *));
    st->value_ok = apr_pcalloc(p, max);
    st->counters = apr_pcalloc(p, max * sizeof(sr_shm_member_t *));
    st->cand = apr_pcalloc(p, max * sizeof(uint16_t));
    st->weights = apr_pcalloc(p, max * sizeof(uint32_t));
    sr_index_init(p, &st->index, max);
    sr_schedule_init(p, &st->schedule, max);
    st->cookie_ctx.name = st->eff.cookie->name;
    st->cookie_ctx.tag_key = st->eff.tag_key;
    st->cookie_ctx.legacy_ok = st->eff.legacy;
    st->cookie_ctx.balancer = b->s->name;
    st->cookie_ctx.index = &st->index;
    st->cookie_ctx.routes = st->routes;
    st->cookie_ctx.nmembers = 0;        /* until the first scan */
    st->lifetime.max_idle = st->eff.cookie->max_idle;
    st->lifetime.max_life = st->eff.cookie->max_life;
    st->lifetime.rebalance_idle = st->eff.rebalance_idle;
    st->lifetime.rebalance_factor = st->eff.rebalance_factor;
    st->lifetime.refresh = sr_refresh_step(st->lifetime.max_idle,
                                           st->lifetime.rebalance_idle);
    st->dated = sr_lifetime_dated(&st->lifetime);
    st->shared = sr_shm_balancer(s, b, 1);
    if (sr_hash_wanted(b, &st->eff)) {
        st->hash = sr_hash_state_create(p, st);
    }
    return st;
}


/* The state of a balancer child_init did not see (its lbmethod was
 * switched to ours through balancer-manager): created once, under
 * sr_child_mutex (the process's lock of the child pool). Callers use
 * sr_state(), whose fast path is inline. */
sr_balancer_state_t *sr_state_make(proxy_balancer *b, server_rec *s)
{
#if APR_HAS_THREADS
    if (sr_child_mutex) {
        apr_thread_mutex_lock(sr_child_mutex);
    }
#endif
    if (!b->context && sr_child_pool) {
        b->context = sr_state_create(sr_child_pool, s, b);
    }
#if APR_HAS_THREADS
    if (sr_child_mutex) {
        apr_thread_mutex_unlock(sr_child_mutex);
    }
#endif
    return b->context;
}

/* lbmethod switched to hash at run time (balancer-manager): st gets its
 * map, from the child pool under sr_child_mutex; the next scan fills it.
 * Lock: the balancer's thread mutex (st->nworkers). */
void sr_state_hash_ensure(sr_balancer_state_t *st)
{
#if APR_HAS_THREADS
    if (sr_child_mutex) {
        apr_thread_mutex_lock(sr_child_mutex);
    }
#endif
    if (!st->hash && sr_child_pool) {
        st->hash = sr_hash_state_create(sr_child_pool, st);
    }
#if APR_HAS_THREADS
    if (sr_child_mutex) {
        apr_thread_mutex_unlock(sr_child_mutex);
    }
#endif
    st->nworkers = -1;          /* scan now: fills the map */
}

/* A 32-bit signature of a string (FNV-1a), never 0 and never
 * 0xffffffff, so that either can mean "none" to the caller: the scan's
 * raw routes, discovery's worker names. No lock: pure. */
uint32_t sr_str_sig(const char *s)
{
    uint32_t h = 2166136261u;

    while (*s) {
        h = (h ^ (unsigned char)*s++) * 16777619u;
    }
    return (h == SR_RAW_SIG_NONE || h == 0) ? 1 : h;
}

/* No lock: reads the worker's fixed name. */
const char *sr_worker_url(const proxy_worker *w)
{
    return w->s->name_ex[0] ? w->s->name_ex : w->s->name;
}

/* A route as given (any bytes) made fit for one log line: bytes outside
 * printable ASCII, quotes and backslashes as \xHH. */
#define SR_LOG_SAFE_SIZE (4 * PROXY_WORKER_MAX_ROUTE_SIZE + 1)
/* No lock: pure. */
static const char *sr_log_safe(char *out, const char *in)
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;

    for (; *in && o + 4 < out + SR_LOG_SAFE_SIZE; in++) {
        unsigned char c = (unsigned char)*in;
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 0xf];
        }
        else {
            *o++ = (char)c;
        }
    }
    *o = '\0';
    return out;
}

/* Folds v into the signature h of the takers and their weights (the
 * boost hash_combine step, 64-bit golden ratio); a new signature is what
 * makes the scan rebuild the schedule. */
static uint64_t sr_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

/* The member's weight for the schedule: its loadfactor, and with
 * StickyRouteSlowStart its ramp since it joined or came back (and whether
 * it still ramps, in the view; *rescan: how soon the ramp wants the weight
 * again). The policy decides: sr_slowstart_note (note the member down, or
 * back up, in shared memory, so that every process ramps from the same
 * moment) and sr_slowstart_member (weight, ramping, rescan). Lock: the
 * balancer's thread mutex (st->view); down and up_since in shared memory
 * lock-free (a compare-and-swap decides which process notes the return). */
static uint32_t sr_member_weight(sr_balancer_state_t *st, int i,
                                 const proxy_worker *w, apr_time_t now,
                                 apr_interval_time_t *rescan)
{
    sr_shm_member_t *c = st->counters[i];
    sr_slowstart_in_t in;
    sr_slowstart_out_t out;

    in.weight = w->s->lbfactor > 0 ? (uint32_t)w->s->lbfactor : 0;
    in.ramp = st->eff.slowstart > 0 ? apr_time_from_sec(st->eff.slowstart)
                                    : 0;
    in.takes_new = sr_member_takes_new(&st->view[i]);
    in.now = now;
    in.interval = SR_SCAN_INTERVAL;
    in.up_since = 0;
    if (in.ramp > 0 && c) {
        switch (sr_slowstart_note(in.takes_new,
                                  sr_atomic_load32(&c->down) != 0)) {
        case SR_SLOWSTART_DOWN:
            sr_atomic_store32(&c->down, 1);
            break;
        case SR_SLOWSTART_UP:
            if (sr_atomic_cas32(&c->down, 1, 0) == 1) {
                sr_atomic_store64(&c->up_since, (apr_uint64_t)now);
            }
            break;
        case SR_SLOWSTART_KEEP:
        default:
            break;
        }
        in.up_since = (int64_t)sr_atomic_load64(&c->up_since);
    }
    sr_slowstart_member(&in, &out);
    st->view[i].ramping = (unsigned char)out.ramping;
    if (out.rescan < *rescan) {
        *rescan = out.rescan;
    }
    return out.weight;
}

/*
 * Scan: the O(n) part, done at most once a second per process (while a
 * member ramps up in slow start, as often as its ramp needs:
 * sr_slowstart_rescan), when the member list grows, or when a scheduled
 * member turns out unusable.
 * Refreshes the routes (sr_route_choose, in member order, so every process
 * agrees), the route index, the view, and the schedule of the members
 * that take new sessions (sr_policy_takers); the schedule is rebuilt only
 * when that set or a weight changed. A route= the cookie cannot carry
 * (balancer-manager edits are not checked like the configuration) is
 * replaced by the derived route, and said once in the error log.
 *
 * Returns how soon the next scan is due (SR_SCAN_INTERVAL, sooner while a
 * member ramps up). Lock: the balancer's thread mutex (st, b->workers);
 * the shm entries it touches (down, up_since, a member's entry claimed)
 * lock-free through sr_atomic.h and the claim protocol of
 * mod_sticky_route_shm.c.
 */
apr_interval_time_t sr_scan(sr_balancer_state_t *st, server_rec *s)
{
    apr_time_t now = apr_time_now();
    proxy_balancer *b = st->balancer;
    proxy_worker **workers = (proxy_worker **)b->workers->elts;
    const sr_effective_t *eff = &st->eff;
    int i, n = b->workers->nelts;
    uint32_t ncand, k;
    uint64_t sig = 1469598103934665603ull;
    apr_interval_time_t rescan = SR_SCAN_INTERVAL;

    if ((uint32_t)n > st->max) {
        n = (int)st->max;
    }
    sr_index_clear(&st->index);
    for (i = 0; i < n; i++) {
        proxy_worker *w = workers[i];
        char *slot = st->routes_buf + (apr_size_t)i * PROXY_WORKER_MAX_ROUTE_SIZE;
        char route[PROXY_WORKER_MAX_ROUTE_SIZE];
        char raw[PROXY_WORKER_MAX_ROUTE_SIZE];
        char safe[SR_LOG_SAFE_SIZE];
        sr_route_origin_t origin;
        uint32_t raw_sig;

        /* balancer-manager may write the route while we read it */
        apr_cpystrn(raw, w->s->route, sizeof(raw));
        origin = sr_route_choose(route, raw, sr_worker_url(w), eff->route_key,
                                 &st->index, st->routes);
        /* Requests read a published route string after the lock is gone
         * (their environment): an unchanged route is left unwritten; a
         * changed one is written where no request can be reading it - the
         * member's routes_buf slot while it was never published, else a
         * fresh string from st->route_pool (a route= edited through
         * balancer-manager: memory grows by one string per edit). Under
         * StickyRouteDiscover (slots reused for other addresses, without
         * end) the slot is rewritten in place instead and every decision
         * copies its route (st->route_copy, sr_apply). */
        if (!st->routes[i] || strcmp(st->routes[i], route)) {
            if (st->routes[i] && !st->route_copy) {
                slot = apr_palloc(st->route_pool, PROXY_WORKER_MAX_ROUTE_SIZE);
            }
            memcpy(slot, route, strlen(route) + 1);
            st->routes[i] = slot;
            st->value_ok[i] = 0;    /* its cookie value is made anew */
        }
        else {
            slot = (char *)st->routes[i];
        }
        sr_index_insert(&st->index, st->routes, i);
        raw_sig = sr_str_sig(raw);
        if (raw_sig != st->raw_sig[i]) {
            if (origin == SR_ROUTE_DERIVED_INVALID
                || origin == SR_ROUTE_DERIVED_DUPLICATE) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                             "%s: BalancerMember %s has route \"%s\", which "
                             "is not usable in a cookie: its route is %s, %s",
                             b->s->name, sr_worker_url(w),
                             sr_log_safe(safe, raw), slot,
                             sr_route_origin_name(origin));
            }
            st->raw_sig[i] = raw_sig;
        }
        if (!st->counters[i] || strcmp(st->counters[i]->route, slot)) {
            /* a member this process has not seen yet (added at run time),
             * or a discovery slot given to another address: while such a
             * slot is stopped its entry is being renamed, so it is looked
             * up without claiming one (discovery renames, never claims) */
            int stopped = (w->s->status & PROXY_WORKER_STOPPED) != 0;
            sr_shm_member_t *c = sr_shm_member(st->shared, slot, !stopped, now);
            if (c || !stopped) {
                st->counters[i] = c;
            }
        }
        sr_view_member(st, i, s);
        st->view[i].lbset = w->s->lbset;
        st->view[i].weight = sr_member_weight(st, i, w, now, &rescan);
        /* NULL (read as 0) without in-flight accounting: nothing counts */
        st->view[i].inflight = st->counters[i] && eff->inflight
                               ? &st->counters[i]->inflight : NULL;
        st->view[i].route = slot;
    }
    for (i = 0; i < n; i++) {
        int32_t rm = -1;
        if (workers[i]->s->redirect[0]) {
            rm = sr_index_find(&st->index, st->routes, workers[i]->s->redirect,
                               strlen(workers[i]->s->redirect));
        }
        st->view[i].redirect = rm;
    }
    ncand = sr_policy_takers(st->view, (uint32_t)n, st->cand, st->weights,
                             &st->from_standby);
    for (k = 0; k < ncand; k++) {
        sig = sr_mix(sig, ((uint64_t)st->cand[k] << 32) | st->weights[k]);
    }
    sig = sr_mix(sig, (uint64_t)ncand);
    if (sig != st->signature || st->schedule.len == 0) {
        sr_schedule_build(&st->schedule, st->cand, st->weights, ncand);
        st->signature = sig;
    }
    if (st->hash) {
        sr_hash_scan(st, ncand);    /* lbmethod=hash: the same takers */
    }
    st->nworkers = b->workers->nelts;
    st->cookie_ctx.nmembers = n;
    return rescan;
}

/* The route each member of b is known by (see the private header). Lock:
 * the balancer's thread mutex once request threads run (b->workers may
 * grow under ap_proxy_sync_balancer: the status handler takes it); none at
 * startup. */
const char **sr_balancer_routes(apr_pool_t *p, server_rec *s,
                                proxy_balancer *b)
{
    proxy_worker **w = (proxy_worker **)b->workers->elts;
    int i, n = b->workers->nelts;
    const char **routes = apr_pcalloc(p, (n ? n : 1) * sizeof(char *));
    sr_route_index_t ix;
    sr_effective_t eff;

    sr_effective(s, sr_section_conf(p, s, b), &eff);
    sr_index_init(p, &ix, (uint32_t)(n ? n : 1));
    for (i = 0; i < n; i++) {
        char raw[PROXY_WORKER_MAX_ROUTE_SIZE];
        char *slot = apr_palloc(p, PROXY_WORKER_MAX_ROUTE_SIZE);

        apr_cpystrn(raw, w[i]->s->route, sizeof(raw));
        sr_route_choose(slot, raw, sr_worker_url(w[i]), eff.route_key, &ix,
                        routes);
        routes[i] = slot;
        sr_index_insert(&ix, routes, i);
    }
    return routes;
}

/* ==================================================================== */

/* post_config: the optional function sr_view_member uses. No lock:
 * startup. */
void sr_state_post_config(void)
{
    sr_retry_worker = APR_RETRIEVE_OPTIONAL_FN(ap_proxy_retry_worker);
}

/* No lock: child_init, before the threads. */
static int sr_init_state(server_rec *s, proxy_balancer *b, void *baton)
{
    if (!b->context) {
        b->context = sr_state_create(baton, s, b);
    }
    return 0;
}

/* child_init: the state of every balancer of ours, made before any
 * request (so the finders find it), and the lock of sr_state_make. No
 * lock: child_init runs before the process's threads. */
void sr_state_child_init(apr_pool_t *pchild, server_rec *main_s)
{
    apr_status_t rv;

    sr_child_pool = pchild;
#if APR_HAS_THREADS
    rv = apr_thread_mutex_create(&sr_child_mutex, APR_THREAD_MUTEX_DEFAULT,
                                 pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, main_s,
                     "mod_sticky_route: cannot create a thread mutex; "
                     "balancer state is made at startup only");
        sr_child_mutex = NULL;
        sr_child_pool = NULL;
    }
#else
    (void)rv;
#endif
    sr_for_each_balancer(main_s, sr_init_state, pchild);
}

