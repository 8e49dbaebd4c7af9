/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_wait.c - StickyRouteWait SECONDS [max=N]: a request to
 * a balancer of ours that finds no usable member waits up to SECONDS for
 * one instead of failing at once (a discovered pool still empty after a
 * fresh deploy, a single replica between its old and new task, every
 * member disabled).
 *
 * Where it waits. mod_proxy_balancer's proxy_pre_request hook calls the
 * lbmethod's finder with the balancer's thread mutex held: a finder that
 * slept would stop every request of the balancer in the process. httpd's
 * own balancer timeout= sleeps outside that mutex but sets the shared
 * balancer->s->timeout to 0 while it does (so that its retries do not
 * wait again): a second request meanwhile does not wait at all, and the
 * value written back races with balancer-manager. So the wait is a
 * proxy_pre_request hook of its own, run before mod_proxy_balancer's: it
 * looks at the members (under the thread mutex, briefly), and when none
 * is usable sleeps SR_WAIT_STEP at a time with no lock held, looking
 * again after each step, until sr_wait_decide (sr_policy.c) says go -
 * then mod_proxy_balancer proceeds as usual - or answers 503 with
 * Retry-After.
 *
 * What "usable" means is what mod_proxy_balancer and the finder use:
 * PROXY_WORKER_IS_USABLE after the member's ap_proxy_retry_worker chance.
 * A member discovered at run time is in this process's b->workers only
 * after ap_proxy_sync_balancer, which each look calls (under the thread
 * mutex, as mod_proxy_balancer does). When every member is in error and
 * the balancer has forcerecovery (mod_proxy_balancer's default),
 * mod_proxy_balancer retries them all at once: the request goes on
 * without waiting, as it would without this module.
 *
 * Counting. Per child process and balancer, the places taken (at most
 * max=) are an atomic counter in the balancer's per-process state; across
 * processes a gauge and three counters in the balancer's shared entry
 * (sr_shm_balancer_t) feed the status handler. A place is given back when
 * the request stops waiting, or - for a process that exits while requests
 * wait - by a cleanup of the child's pool; a process killed outright
 * (SIGKILL, a crash) leaves its places counted in the gauge.
 *
 * Stopping. A graceful stop or restart sets the child's MPM state to
 * AP_MPMQ_STOPPING (the event MPM does it when the parent's message
 * arrives); a waiting request sees it at its next step and answers 503
 * with Retry-After: 1 at once instead of holding the old process up.
 */
#include <string.h>

#include "http_core.h"
#include "http_protocol.h"
#include "ap_mpm.h"
#include "apr_strings.h"
#include "apr_optional.h"

#include "mod_sticky_route_private.h"

/* r->pool userdata: how long the request has waited already, so that a
 * request that comes back to the hook unplaced through an internal redirect
 * (same pool: an ErrorDocument for the 503 on the same balancer) does not
 * wait a second time */
#define SR_WAIT_KEY "sticky_route_wait"

static APR_OPTIONAL_FN_TYPE(ap_proxy_retry_worker) *sr_wait_retry = NULL;
/* set in child_init, read-only afterwards */
static int sr_wait_on = 0;              /* a balancer of ours waits */
static server_rec *sr_wait_main = NULL;

/* Lock-free (the settings are fixed for the configuration's life; the
 * MPM's thread count too). */
uint32_t sr_wait_max(const sr_effective_t *eff)
{
    int threads = 0;

    if (eff->wait_max > 0) {
        return (uint32_t)eff->wait_max;
    }
    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) == APR_SUCCESS
        && threads > 1) {
        return (uint32_t)threads / 2;
    }
    return 1;
}

/* Lock-free: the MPM state is this process's own. */
static int sr_wait_stopping(void)
{
    int state = AP_MPMQ_RUNNING;

    if (ap_mpm_query(AP_MPMQ_MPM_STATE, &state) != APR_SUCCESS) {
        return 0;
    }
    return state == AP_MPMQ_STOPPING;
}

/* The members of b usable now. Needs the balancer's thread mutex
 * (PROXY_THREAD_LOCK): b->workers grows under ap_proxy_sync_balancer, and
 * ap_proxy_retry_worker edits the members' status as mod_proxy_balancer
 * does under that mutex. full = 0: the first usable member is enough (the
 * common case, no sync); full = 1: sync the member list first, give every
 * unusable member its retry chance, count them all, and say in *forced
 * whether mod_proxy_balancer's forced recovery (every member in error,
 * forcerecovery on) would make one usable. */
static uint32_t sr_wait_usable_locked(proxy_balancer *b, server_rec *s,
                                      proxy_server_conf *conf, int full,
                                      int *forced)
{
    proxy_worker **w;
    uint32_t usable = 0;
    int i, all_in_error = 1, recoverable = 0;

    if (full) {
        ap_proxy_sync_balancer(b, s, conf);
    }
    w = (proxy_worker **)b->workers->elts;
    for (i = 0; i < b->workers->nelts; i++) {
        unsigned int status;

        if (full && !PROXY_WORKER_IS_USABLE(w[i]) && sr_wait_retry) {
            sr_wait_retry("BALANCER", w[i], s);
        }
        if (PROXY_WORKER_IS_USABLE(w[i])) {
            if (!full) {
                return 1;
            }
            usable++;
        }
        status = w[i]->s->status;
        if (!(status & PROXY_WORKER_IN_ERROR)) {
            all_in_error = 0;
        }
        else if ((status & PROXY_WORKER_INITIALIZED)
                 && !(status & PROXY_WORKER_NOT_USABLE_BITMAP
                      & ~PROXY_WORKER_IN_ERROR)) {
            recoverable = 1;
        }
    }
    if (forced) {
        *forced = b->s->forcerecovery && b->workers->nelts > 0
                  && all_in_error && recoverable;
    }
    return usable;
}

/* Takes and gives back the balancer's thread mutex; a mutex that cannot be
 * taken counts as a usable member (the request goes on unchanged). Takes
 * the balancer's thread mutex around sr_wait_usable_locked (never while
 * the request sleeps). */
static uint32_t sr_wait_usable(proxy_balancer *b, request_rec *r,
                               proxy_server_conf *conf, int full, int *forced)
{
    uint32_t n;

    if (forced) {
        *forced = 0;
    }
#if APR_HAS_THREADS
    if (PROXY_THREAD_LOCK(b) != APR_SUCCESS) {
        return 1;
    }
#endif
    n = sr_wait_usable_locked(b, r->server, conf, full, forced);
#if APR_HAS_THREADS
    PROXY_THREAD_UNLOCK(b);
#endif
    return n;
}

/* Gives back one place of st. Lock-free: a compare-and-swap, so that a
 * place the child's exit cleanup already gave back is not given twice. */
static void sr_wait_leave(sr_balancer_state_t *st)
{
    if (sr_atomic_dec32_floor0(&st->waiters) == 0) {
        return;
    }
    if (st->shared) {
        sr_atomic_sub32(&st->shared->wait_now, 1);
    }
}

/* The request waits (or is refused) for balancer b, none of whose members
 * was usable at its first look. Holds no lock while it sleeps; takes the
 * balancer's thread mutex only inside each look (sr_wait_usable). Returns
 * DECLINED (go on to mod_proxy_balancer) or HTTP_SERVICE_UNAVAILABLE. */
static int sr_wait_for_member(proxy_balancer *b, sr_balancer_state_t *st,
                              request_rec *r, proxy_server_conf *conf)
{
    apr_int64_t *before = NULL;     /* waited in earlier attempts */
    apr_time_t start = apr_time_now();
    sr_wait_verdict_t verdict;
    sr_wait_in_t in;
    int64_t sleep;
    uint32_t retry_after;

    apr_pool_userdata_get((void **)&before, SR_WAIT_KEY, r->pool);
    in.limit = st->eff.wait;
    in.max = sr_wait_max(&st->eff);
    in.waiting = 0;
    for (;;) {
        int forced;

        in.usable = sr_wait_usable(b, r, conf, 1, &forced);
        in.forced_recovery = forced;
        in.stopping = sr_wait_stopping();
        in.waited = (before ? *before : 0) + (apr_time_now() - start);
        in.others = sr_atomic_load32(&st->waiters) - (in.waiting ? 1 : 0);
        verdict = sr_wait_decide(&in, &sleep, &retry_after);
        if (verdict == SR_WAIT_SLEEP && !in.waiting) {
            /* take a place; the count of the others is the one the
             * increment saw, so two requests never take the last one */
            in.others = sr_atomic_add32(&st->waiters, 1);
            in.waiting = 1;
            if (st->shared) {
                sr_atomic_add32(&st->shared->wait_now, 1);
            }
            verdict = sr_wait_decide(&in, &sleep, &retry_after);
            if (verdict != SR_WAIT_SLEEP) {
                sr_wait_leave(st);
                in.waiting = 0;
            }
        }
        if (verdict != SR_WAIT_SLEEP) {
            break;
        }
        apr_sleep((apr_interval_time_t)sleep);
    }
    if (in.waiting) {
        sr_wait_leave(st);
    }
    if (!before) {
        before = apr_pcalloc(r->pool, sizeof(*before));
        apr_pool_userdata_setn(before, SR_WAIT_KEY, NULL, r->pool);
    }
    *before = in.waited;

    switch (verdict) {
    case SR_WAIT_GO:
        if (in.waiting) {
            if (st->shared) {
                sr_atomic_add64(&st->shared->wait_served, 1);
            }
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "%s: a member is usable after %" APR_INT64_T_FMT
                          " ms of waiting (StickyRouteWait)", b->s->name,
                          (apr_int64_t)(apr_time_now() - start) / 1000);
        }
        return DECLINED;
    case SR_WAIT_TIMEOUT:
        if (st->shared) {
            sr_atomic_add64(&st->shared->wait_timeouts, 1);
        }
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "%s: no usable member after waiting %" APR_INT64_T_FMT
                      " s (StickyRouteWait): 503", b->s->name,
                      (apr_int64_t)apr_time_sec(in.limit));
        break;
    case SR_WAIT_REFUSE:
        if (st->shared) {
            sr_atomic_add64(&st->shared->wait_refused, 1);
        }
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "%s: no usable member and %u requests of this process "
                      "wait already (StickyRouteWait max=%u): 503",
                      b->s->name, (unsigned)in.others, (unsigned)in.max);
        break;
    case SR_WAIT_STOPPING:
    default:
        if (st->shared) {
            sr_atomic_add64(&st->shared->wait_refused, 1);
        }
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "%s: no usable member and this process is stopping "
                      "(StickyRouteWait): 503", b->s->name);
        break;
    }
    apr_table_setn(r->err_headers_out, "Retry-After",
                   apr_psprintf(r->pool, "%u", (unsigned)retry_after));
    return HTTP_SERVICE_UNAVAILABLE;
}

/* Was the request placed on a member of b already? mod_proxy calls the
 * hook again with *balancer set (a failover after the member it got could
 * not be connected to), and the module's retry sends the request again
 * through an internal redirect (same pool, r->prev); either way the finder
 * leaves out the members that failed for the rest of the request, so
 * waiting for them to come back would be waiting for nothing. The marks:
 * mod_proxy_balancer sets BALANCER_NAME in a request it placed. Lock-free
 * (reads the request chain, owned by this thread). */
static int sr_wait_placed_before(request_rec *r, const proxy_balancer *b)
{
    for (; r; r = r->prev) {
        const char *name = apr_table_get(r->subprocess_env, "BALANCER_NAME");
        if (name && !strcmp(name, b->s->name)) {
            return 1;
        }
    }
    return 0;
}

/* proxy_pre_request, before mod_proxy_balancer's. Lock-free but for the
 * looks at the members (sr_wait_usable takes the balancer's thread mutex
 * for each). Zero cost when no balancer waits; otherwise, for a balancer
 * that waits, one short look under the mutex while a member is usable.
 * Only a request's first placement waits (see sr_wait_placed_before). */
static int sr_wait_pre_request(proxy_worker **worker, proxy_balancer **balancer,
                               request_rec *r, proxy_server_conf *conf,
                               char **url)
{
    proxy_balancer *b;
    sr_balancer_state_t *st;

    (void)worker;
    if (!sr_wait_on || *balancer
        || ap_cstr_casecmpn(*url, BALANCER_PREFIX, sizeof(BALANCER_PREFIX) - 1)
        || !(b = ap_proxy_get_balancer(r->pool, conf, *url, 1))) {
        return DECLINED;
    }
    if (!sr_is_ours(b) || !(st = b->context) || st->eff.wait <= 0) {
        return DECLINED;
    }
    if (sr_wait_usable(b, r, conf, 0, NULL) > 0
        || sr_wait_placed_before(r, b)) {
        return DECLINED;
    }
    return sr_wait_for_member(b, st, r, conf);
}

/* Child exit: places still taken (requests cut short with the process)
 * are given back to the shared gauge. Lock-free: an atomic exchange per
 * balancer, paired with sr_wait_leave's compare-and-swap. */
static int sr_wait_release_all(server_rec *s, proxy_balancer *b, void *baton)
{
    sr_balancer_state_t *st = b->context;
    apr_uint32_t n;

    (void)s;
    (void)baton;
    if (st && (n = sr_atomic_xchg32(&st->waiters, 0)) != 0 && st->shared) {
        sr_atomic_sub32(&st->shared->wait_now, n);
    }
    return 0;
}

/* The child ends: every place given back. No lock: st->waiters and
 * wait_now are atomic. */
static apr_status_t sr_wait_child_exit(void *data)
{
    (void)data;
    if (sr_wait_main) {
        sr_for_each_balancer(sr_wait_main, sr_wait_release_all, NULL);
    }
    return APR_SUCCESS;
}

/* No lock: configuration. */
static int sr_wait_find(server_rec *s, proxy_balancer *b, void *baton)
{
    sr_balancer_state_t *st = b->context;

    (void)s;
    (void)baton;
    return st && st->eff.wait > 0;
}

/* After sr_state_child_init (the balancers' states exist). Single-threaded
 * (child_init). No lock: child_init, before the threads. */
void sr_wait_child_init(apr_pool_t *pchild, server_rec *main_s)
{
    sr_wait_retry = APR_RETRIEVE_OPTIONAL_FN(ap_proxy_retry_worker);
    sr_wait_main = main_s;
    sr_wait_on = sr_for_each_balancer(main_s, sr_wait_find, NULL) != 0;
    if (sr_wait_on) {
        apr_pool_pre_cleanup_register(pchild, NULL, sr_wait_child_exit);
    }
}

/* No lock: startup. */
void sr_wait_register_hooks(apr_pool_t *p)
{
    static const char *const before_balancer[] = { "mod_proxy_balancer.c",
                                                   NULL };

    (void)p;
    proxy_hook_pre_request(sr_wait_pre_request, NULL, before_balancer,
                           APR_HOOK_FIRST);
}
