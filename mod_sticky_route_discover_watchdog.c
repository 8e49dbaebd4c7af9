/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_discover_watchdog.c - StickyRouteDiscover at run time:
 * the watchdogs. A singleton one resolves each discovered name every
 * interval and applies the answer (sr_discover_run,
 * mod_sticky_route_discover_apply.c); one in every child process follows
 * what it did there (the per-child step: idle connections to a gone
 * address closed, routes rescanned). Also the gate that keeps both away
 * until mod_proxy_balancer's child_init has made the balancers. The design
 * and its per-child invariants (the points 1-5 named below): the opening
 * comment of mod_sticky_route_discover.c; the lock order: there too.
 */
#include <string.h>

#include "http_core.h"
#include "apr_optional.h"
#include "apr_reslist.h"
#include "mod_watchdog.h"

#include "mod_sticky_route_discover.h"

/* Set by sr_discover_child_ready once mod_proxy_balancer's child_init has
 * made this process's balancer mutexes and workers; read by both watchdog
 * callbacks, which act only after it. mod_watchdog starts its threads from
 * its own child_init, which may run before mod_proxy_balancer's (seen by
 * make test-threads: the STARTING call ran while child_init was still
 * going): without this gate a callback could find b->tmutex not made yet,
 * and PROXY_THREAD_LOCK(b) would lock nothing. Lock: sr_ready_mutex (made
 * in post_config, before any child: a thread mutex, so that thread
 * checkers see the order too; taken at most every 100 ms). */
static int sr_child_ready;
static apr_thread_mutex_t *sr_ready_mutex;

/* child_init, after mod_proxy_balancer's (sr_register_hooks). Lock:
 * sr_ready_mutex; child_init runs in the main thread. */
void sr_discover_child_ready(apr_pool_t *pchild, server_rec *s)
{
    (void)pchild;
    (void)s;
    if (sr_ready_mutex && apr_thread_mutex_lock(sr_ready_mutex) == APR_SUCCESS) {
        sr_child_ready = 1;
        apr_thread_mutex_unlock(sr_ready_mutex);
    }
}

/* Lock: sr_ready_mutex (taken here). */
int sr_discover_ready(void)
{
    int ready = 0;

    if (sr_ready_mutex && apr_thread_mutex_lock(sr_ready_mutex) == APR_SUCCESS) {
        ready = sr_child_ready;
        apr_thread_mutex_unlock(sr_ready_mutex);
    }
    return ready;
}

typedef struct {
    sr_discovery_t *d;
    apr_time_t next;
} sr_discover_tick_t;

static apr_status_t sr_discover_callback(int state, void *data, apr_pool_t *pool)
{
    sr_discover_tick_t *t = data;
    apr_pool_t *p;
    apr_time_t now;

    if (state != AP_WATCHDOG_STATE_RUNNING && state != AP_WATCHDOG_STATE_STARTING) {
        return APR_SUCCESS;
    }
    if (state == AP_WATCHDOG_STATE_STARTING) {
        /* the first resolution as soon as the process's balancers are
         * made (the main thread is in child_init, microseconds away);
         * the status output's discovery gauges come from it */
        int waits;
        for (waits = 0; waits < 200 && !sr_discover_ready(); waits++) {
            apr_sleep(apr_time_from_msec(10));
        }
    }
    if (!sr_discover_ready()) {
        return APR_SUCCESS;     /* not yet: the next tick (100 ms) */
    }
    now = apr_time_now();
    if (now < t->next) {
        return APR_SUCCESS;
    }
    if (apr_pool_create(&p, pool) != APR_SUCCESS) {
        return APR_SUCCESS;
    }
    sr_discover_run(t->d, p);
    apr_pool_destroy(p);
    t->next = now + sr_discover_next(t->d->dc->ttl_mode, t->d->dc->interval,
                                     t->d->last_ttl, t->d->answered);
    if (t->d->settle_next && t->d->settle_next < t->next) {
        t->next = t->d->settle_next;    /* enable a settled slot on time */
    }
    {
        sr_shm_balancer_t *sb = sr_shm_balancer(t->d->s, t->d->b, 0);
        if (sb) {
            sr_atomic_store64(&sb->disc_next, (apr_uint64_t)t->next);
        }
    }
    return APR_SUCCESS;
}

/* Destroys the idle pooled connections of member w (in this child): all
 * of them (all), or those made for another host or port than w's - its
 * slot's previous address (mod_sticky_route_discover.c's opening
 * comment, point 1). Returns how many.
 * Connections are taken from the pool with apr_reslist_acquire, which
 * hands out idle connections before it makes a new one: the walk ends at
 * the first never used connection, and leaves at least one connection to
 * the request threads so that it never waits. Lock: none (the connection
 * pool has its own); never called with the balancer's thread mutex held. */
static int sr_drop_conns(proxy_worker *w, int all, apr_pool_t *p)
{
    apr_reslist_t *res = w->cp ? w->cp->res : NULL;
    const char *host = w->s->hostname_ex[0] ? w->s->hostname_ex
                                            : w->s->hostname;
    proxy_conn_rec **keep;
    int hmax = w->s->hmax, kept = 0, dropped = 0, tries;

    if (!res || hmax < 2) {
        return 0;       /* no connection pool (prefork: one connection) */
    }
    keep = apr_palloc(p, (apr_size_t)hmax * sizeof(*keep));
    for (tries = 0; tries < 2 * hmax; tries++) {
        proxy_conn_rec *c = NULL;
        if (apr_reslist_acquired_count(res) + 1 >= (apr_uint32_t)hmax
            || apr_reslist_acquire(res, (void **)&c) != APR_SUCCESS || !c) {
            break;
        }
        if (c->hostname && (all || c->port != w->s->port
                            || strcasecmp(c->hostname, host))) {
            apr_reslist_invalidate(res, c);     /* its pool destroyed */
            dropped++;
            continue;
        }
        keep[kept++] = c;
        if (!c->hostname) {
            break;      /* never used: no idle connection is left */
        }
    }
    while (kept > 0) {
        apr_reslist_release(res, keep[--kept]);
    }
    return dropped;
}

/* The per-child step (a watchdog that runs in every child process, every
 * 100 ms): after a member was disabled or a slot rewritten (the shared
 * disc_gen moved), the idle connections of every disabled discovered
 * member, and those of every rewritten one to its old address, are
 * destroyed (sr_drop_conns; mod_sticky_route_discover.c's opening comment,
 * point 1), and a rewrite makes
 * this child's next request rescan the routes (point 5). A rewritten
 * member keeps its proxy_worker: health checks of discovered members are
 * ours and follow the slot's current address (point 4). Takes the balancer's
 * thread mutex (the one mod_proxy_balancer's finder holds) for the
 * workers and this child's balancer state (its next scan), and drops the
 * connections after releasing it; p: the watchdog's scratch pool
 * (cleared after the call). */
static void sr_discover_child_step(sr_discovery_t *d, apr_pool_t *p)
{
    proxy_balancer *b = d->b;
    sr_shm_balancer_t *sb = sr_shm_balancer(d->s, b, 0);
    proxy_server_conf *conf;
    apr_uint32_t gen;
    proxy_worker **drop;
    char *drop_all;
    int i, first, ndrop = 0;

    if (!sb) {
        return;
    }
    gen = sr_atomic_load32(&sb->disc_gen);
    first = d->child_sig == NULL;
    if (!first && gen == d->child_gen) {
        return;
    }
    if (first) {
        /* the watchdog clears its pool after every call: this child's
         * memory of the slots lives in a pool of its own, used by this
         * (the per-child watchdog's) thread only */
        if (apr_pool_create(&d->child_pool, NULL) != APR_SUCCESS) {
            return;
        }
        d->child_sig = apr_pcalloc(d->child_pool, (apr_size_t)b->max_workers
                                                  * sizeof(uint32_t));
    }
    conf = ap_get_module_config(d->s->module_config, &proxy_module);
    drop = apr_palloc(p, (apr_size_t)b->max_workers * sizeof(*drop));
    drop_all = apr_palloc(p, (apr_size_t)b->max_workers);
    if (PROXY_THREAD_LOCK(b) != APR_SUCCESS) {
        return;
    }
    ap_proxy_sync_balancer(b, d->s, conf);
    for (i = 0; i < b->workers->nelts && i < b->max_workers; i++) {
        proxy_worker *w = ((proxy_worker **)b->workers->elts)[i];
        uint32_t sig = sr_str_sig(sr_worker_name(w));
        int rewritten = !first && d->child_sig[i] && d->child_sig[i] != sig;

        if (!apr_hash_get(d->configured, sr_worker_name(w), APR_HASH_KEY_STRING)
            && (rewritten || (w->s->status & PROXY_WORKER_DISABLED))) {
            drop_all[ndrop] = !rewritten;
            drop[ndrop++] = w;
        }
        if (rewritten && sr_is_ours(b) && b->context) {
            /* its route changed: this child's next request rescans */
            ((sr_balancer_state_t *)b->context)->next_scan = 0;
        }
        d->child_sig[i] = sig;
    }
    d->child_gen = gen;
    PROXY_THREAD_UNLOCK(b);
    for (i = 0; i < ndrop; i++) {
        int n = sr_drop_conns(drop[i], drop_all[i], p);
        if (n) {
            ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, d->s,
                         "StickyRouteDiscover %s in %s: member %s (%s): %d "
                         "idle connection(s) closed in this child",
                         d->dc->url, b->s->name, sr_worker_name(drop[i]),
                         drop_all[i] ? "disabled" : "slot rewritten", n);
        }
    }
}

static apr_status_t sr_discover_child_callback(int state, void *data,
                                               apr_pool_t *pool)
{
    apr_array_header_t *all = sr_discover_all();
    int i;

    (void)data;
    if (state != AP_WATCHDOG_STATE_RUNNING || !all || !sr_discover_ready()) {
        return APR_SUCCESS;
    }
    for (i = 0; i < all->nelts; i++) {
        sr_discover_child_step(APR_ARRAY_IDX(all, i, sr_discovery_t *), pool);
    }
    return APR_SUCCESS;
}

int sr_discover_post_config(apr_pool_t *pconf, server_rec *main_s)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *get_instance;
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *register_callback;
    apr_array_header_t *all = sr_discover_all();
    ap_watchdog_t *wd = NULL;
    apr_status_t rv;
    int i;

    if (!all || all->nelts == 0) {
        return OK;
    }
    /* the children inherit it unlocked (made before any fork) */
    sr_child_ready = 0;
    rv = apr_thread_mutex_create(&sr_ready_mutex, APR_THREAD_MUTEX_DEFAULT, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, main_s,
                     "StickyRouteDiscover: cannot create a mutex");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    sr_forget_with_pool(pconf, (void **)&sr_ready_mutex);  /* gone with pconf */
    get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    register_callback = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (!get_instance || !register_callback) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, main_s,
                     "StickyRouteDiscover needs mod_watchdog");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* one child process runs it (singleton), in a thread of its own */
    rv = get_instance(&wd, SR_DISCOVER_WATCHDOG, 0, 1, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, main_s,
                     "StickyRouteDiscover: cannot create the watchdog");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* and one in every child process for the per-child step */
    {
        ap_watchdog_t *wd_child = NULL;
        rv = get_instance(&wd_child, SR_DISCOVER_WATCHDOG "child_", 0, 0, pconf);
        if (rv == APR_SUCCESS) {
            rv = register_callback(wd_child, AP_WD_TM_SLICE, NULL,
                                   sr_discover_child_callback);
        }
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, main_s,
                         "StickyRouteDiscover: cannot create the per-child "
                         "watchdog");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    /* the health checks of discovered members: a singleton of their own */
    if ((rv = sr_hc_post_config(pconf, main_s, all)) != OK) {
        return rv;
    }
    for (i = 0; i < all->nelts; i++) {
        sr_discover_tick_t *t = apr_pcalloc(pconf, sizeof(*t));
        sr_shm_balancer_t *sb;
        t->d = APR_ARRAY_IDX(all, i, sr_discovery_t *);
        /* the gauges tell the startup answer's members from the start, not
         * only after the watchdog's first run (a child's first tick, which
         * comes after the server already serves them) */
        sb = sr_shm_balancer(t->d->s, t->d->b, 0);
        if (sb) {
            sr_atomic_store32(&sb->disc_on, 1);
            sr_atomic_store32(&sb->disc_max, (apr_uint32_t)t->d->dc->max);
            sr_atomic_store32(&sb->disc_members, (apr_uint32_t)t->d->at_start);
            sr_atomic_store32(&sb->disc_free, (t->d->b->storage && t->d->b->wslot)
                              ? t->d->b->storage->num_free_slots(t->d->b->wslot) : 0);
        }
        /* the watchdog calls every 100 ms; the callback keeps the interval
         * itself (the first run at once) */
        rv = register_callback(wd, AP_WD_TM_SLICE, t, sr_discover_callback);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, main_s,
                         "StickyRouteDiscover: cannot register the watchdog "
                         "callback");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}
