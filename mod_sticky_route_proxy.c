/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_proxy.c - the two lbmethod providers, the Set-Cookie
 * filter, the counters and the retry of a request a member broke.
 *
 * This file gathers inputs (the members' state, the Cookie headers, what
 * happened to the backend connection) into the plain structures of
 * sr_policy.h, asks the policy, and applies the answer (environment,
 * counters, cookie, internal redirect). It decides nothing itself.
 */
#include <string.h>

#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_connection.h"
#include "apr_strings.h"
#include "apr_optional.h"
#include "apr_optional_hooks.h"

#include "mod_sticky_route_private.h"

/* How often a process refreshes its view of a balancer's members (routes,
 * recoveries, balancer-manager edits) when nothing forces it sooner. */
#define SR_SCAN_INTERVAL apr_time_from_sec(1)
/* Rebuilds of the schedule one election may ask for (a member changed
 * state between the scan and the election). */
#define SR_ELECT_RESCANS 2
/* A hash of nothing: the route= of a member never seen before. */
#define SR_RAW_SIG_NONE 0xffffffffu

static APR_OPTIONAL_FN_TYPE(ap_proxy_retry_worker) *sr_retry_worker = NULL;
static ap_filter_rec_t *sr_cookie_filter_handle = NULL;
static apr_pool_t *sr_child_pool = NULL;
#if APR_HAS_THREADS
static apr_thread_mutex_t *sr_child_mutex = NULL;
#endif

/* ====================================================================
 * Per-process balancer state: routes, route index, view, schedule
 * ==================================================================== */

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

static sr_balancer_state_t *sr_state(proxy_balancer *b, server_rec *s)
{
    sr_balancer_state_t *st = b->context;

    if (st) {
        return st;
    }
    /* A balancer child_init did not see (its lbmethod was switched to ours
     * through balancer-manager): create it once, under a lock. */
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

static uint32_t sr_str_sig(const char *s)
{
    uint32_t h = 2166136261u;

    while (*s) {
        h = (h ^ (unsigned char)*s++) * 16777619u;
    }
    return h == SR_RAW_SIG_NONE ? 0 : h;
}

static const char *sr_worker_url(const proxy_worker *w)
{
    return w->s->name_ex[0] ? w->s->name_ex : w->s->name;
}

/* The member's status flags as they are now (O(1): one read of the
 * shared status word; lbset, weight, route and redirect come with the
 * scan). */
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

void sr_view_refresh_member(sr_balancer_state_t *st, int i)
{
    sr_view_refresh(st, i);
}

/* A member that is not usable gets its ap_proxy_retry_worker chance (as
 * mod_proxy_balancer gives it), then its view is refreshed. */
static inline void sr_view_member(sr_balancer_state_t *st, int i,
                                  server_rec *s)
{
    proxy_worker *w = ((proxy_worker **)st->balancer->workers->elts)[i];

    if (!PROXY_WORKER_IS_USABLE(w) && sr_retry_worker) {
        sr_retry_worker("BALANCER", w, s);
    }
    sr_view_refresh(st, i);
}

/* A route as given (any bytes) made fit for one log line: bytes outside
 * printable ASCII, quotes and backslashes as \xHH. */
#define SR_LOG_SAFE_SIZE (4 * PROXY_WORKER_MAX_ROUTE_SIZE + 1)
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

static uint64_t sr_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
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
 */
/* The member's weight for the schedule: its loadfactor, and with
 * StickyRouteSlowStart its ramp since it joined or came back (and whether
 * it still ramps, in the view; *rescan: how soon the ramp wants the
 * weight again, sr_slowstart_rescan). Notes in shared memory when a member
 * goes down and when it is back, so that every process ramps from the
 * same moment. */
static uint32_t sr_member_weight(sr_balancer_state_t *st, int i,
                                 const proxy_worker *w, apr_time_t now,
                                 apr_interval_time_t *rescan)
{
    uint32_t weight = (uint32_t)(w->s->lbfactor > 0 ? w->s->lbfactor : 1);
    sr_shm_member_t *c = st->counters[i];
    apr_time_t since;
    apr_interval_time_t ramp = apr_time_from_sec(st->eff.slowstart), next;
    int64_t elapsed;

    st->view[i].ramping = 0;
    if (st->eff.slowstart <= 0) {
        return weight;
    }
    if (c) {
        if (!st->view[i].usable || st->view[i].draining) {
            if (!sr_atomic_load32(&c->down)) {
                sr_atomic_store32(&c->down, 1);
            }
        }
        else if (sr_atomic_load32(&c->down)
                 && sr_atomic_cas32(&c->down, 1, 0) == 1) {
            sr_atomic_store64(&c->up_since, (apr_uint64_t)now);
        }
    }
    since = c ? (apr_time_t)sr_atomic_load64(&c->up_since) : 0;
    elapsed = since ? now - since : INT64_MAX;
    if (st->view[i].usable && !st->view[i].draining) {
        st->view[i].ramping = (unsigned char)sr_slowstart_ramping(elapsed,
                                                                  ramp);
        next = sr_slowstart_rescan(elapsed, ramp, SR_SCAN_INTERVAL);
        if (next < *rescan) {
            *rescan = next;
        }
    }
    return sr_slowstart_weight(weight, elapsed, ramp);
}

/* Returns how soon the next scan is due (SR_SCAN_INTERVAL, sooner while a
 * member ramps up). */
static apr_interval_time_t sr_scan(sr_balancer_state_t *st, server_rec *s)
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
        char raw[PROXY_WORKER_MAX_ROUTE_SIZE];
        char safe[SR_LOG_SAFE_SIZE];
        sr_route_origin_t origin;
        uint32_t raw_sig;

        /* balancer-manager may write the route while we read it */
        apr_cpystrn(raw, w->s->route, sizeof(raw));
        origin = sr_route_choose(slot, raw, sr_worker_url(w), eff->route_key,
                                 &st->index, st->routes);
        st->routes[i] = slot;
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
        st->value_ok[i] = 0;        /* the route may have changed */
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
        st->view[i].inflight = st->counters[i]
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

static void sr_scan_if_due(sr_balancer_state_t *st, request_rec *r)
{
    if (st->nworkers != st->balancer->workers->nelts
        || r->request_time >= st->next_scan) {
        st->next_scan = r->request_time + sr_scan(st, r->server);
    }
}

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

/* ====================================================================
 * Per-request state
 * ==================================================================== */

typedef struct sr_req_t sr_req_t;
struct sr_req_t {
    proxy_balancer *balancer;       /* the balancer the cookie was read for */
    int parsed;
    sr_cookie_read_t cookie;
    const sr_cookie_spec_t *spec;   /* the cookie we would set */
    sr_tried_t tried;               /* members that failed in this request */
    int member;                     /* last decided, -1: none */
    proxy_worker *worker;           /* its worker */
    sr_shm_member_t *counter;
    sr_status_t status;
    int issue;                      /* a Set-Cookie goes out */
    const char *set_cookie;
    int filter_added;
    int error_response;             /* httpd answers with its own error */
    int decisions;                  /* finder calls that chose a member */
    int retries;                    /* retries before this request */
    int unreached;                  /* ... of them after an unreached
                                       member (sr_retry_unreached_allowed) */
    int retry_issued;               /* sr_request_status redirected it */
    int retry_same;                 /* the retry goes first to this member */
    int last_same;                  /* this request is a retry on the member
                                       that broke */
    int broken;                     /* the response was cut off */
    apr_uint32_t conns_mark;        /* sr_conns_opened at the decision */
    int64_t first;                  /* FIRST of the cookie to write */
    sr_shm_member_t *inflight;      /* the member counted in flight */
    int inflight_cleanup;           /* its release is registered */
};

/* New connections this thread opened (pre_connection). mod_proxy runs
 * pre_connection exactly when it opens a new connection to a member, in the
 * thread that handles the request; a request remembers the count at its
 * decision, so a different count when the member broke means the
 * connection that broke was a fresh one. */
static _Thread_local apr_uint32_t sr_conns_opened;

static sr_req_t *sr_req(request_rec *r, proxy_balancer *b,
                        sr_balancer_state_t *st)
{
    sr_req_t *rq = ap_get_module_config(r->request_config, &sticky_route_module);

    if (!rq) {
        const sr_req_t *prev = r->prev
            ? ap_get_module_config(r->prev->request_config, &sticky_route_module)
            : NULL;
        rq = apr_pcalloc(r->pool, sizeof(*rq));
        rq->member = -1;
        rq->retry_same = -1;
        ap_set_module_config(r->request_config, &sticky_route_module, rq);
        if (prev && prev->retry_issued && prev->balancer == b) {
            /* sr_request_status retries here (same pool): the members
             * that failed so far stay excluded */
            rq->balancer = b;
            rq->tried = prev->tried;
            rq->retries = prev->retries + 1;
            rq->unreached = prev->unreached;
            rq->retry_same = prev->retry_same;
            rq->last_same = prev->retry_same >= 0;
            rq->status = prev->status;
            rq->issue = prev->issue;
            rq->first = prev->first;
            /* a fresh connection to whichever member serves the retry:
             * mod_proxy_http drops the pooled one it acquired */
            apr_table_setn(r->subprocess_env, "proxy-initial-not-pooled", "1");
        }
    }
    if (rq->balancer != b) {
        rq->balancer = b;
        rq->parsed = 0;
        sr_tried_init(&rq->tried, st->max);
        rq->member = -1;
    }
    if (rq->member >= 0) {
        /* mod_proxy calls the finder again in one request only when the
         * member decided last could not be connected to */
        sr_tried_add(r->pool, &rq->tried, (uint32_t)rq->member);
    }
    return rq;
}

/* Reads every Cookie header (HTTP/1.1 clients may send several). */
/* StickyRouteSession: the member an application's session id names, from
 * its cookie (the first value of the name with a route that names a
 * member), else from the URL parameter. */
static void sr_read_app_session(sr_balancer_state_t *st, request_rec *r,
                                sr_req_t *rq)
{
    const apr_array_header_t *h = apr_table_elts(r->headers_in);
    const apr_table_entry_t *e = (const apr_table_entry_t *)h->elts;
    int32_t n = st->cookie_ctx.nmembers;
    sr_span_t value, route;
    int i;

    for (i = 0; i < h->nelts; i++) {
        sr_span_t spans[SR_COOKIES_MAX];
        size_t k, found;

        if (!e[i].key || strcasecmp(e[i].key, "Cookie") || !e[i].val) {
            continue;
        }
        found = sr_cookie_find(e[i].val, st->eff.session_cookie, spans,
                               SR_COOKIES_MAX);
        for (k = 0; k < found; k++) {
            int32_t m;
            if (spans[k].len > SR_VALUE_MAX
                || !sr_session_route(spans[k].ptr, spans[k].len, &route)) {
                continue;
            }
            m = sr_index_find(&st->index, st->routes, route.ptr, route.len);
            if (m >= 0 && m < n) {
                rq->cookie.app_member = m;
                return;
            }
        }
    }
    if (st->eff.session_param
        && sr_url_param(r->parsed_uri.path ? r->parsed_uri.path : r->uri,
                        r->args, st->eff.session_param, &value)
        && value.len <= SR_VALUE_MAX
        && sr_session_route(value.ptr, value.len, &route)) {
        int32_t m = sr_index_find(&st->index, st->routes, route.ptr,
                                  route.len);
        if (m >= 0 && m < n) {
            rq->cookie.app_member = m;
        }
    }
}

static void sr_read_cookie(sr_balancer_state_t *st, request_rec *r,
                           sr_req_t *rq)
{
    const apr_array_header_t *h = apr_table_elts(r->headers_in);
    const apr_table_entry_t *e = (const apr_table_entry_t *)h->elts;
    int i;

    rq->parsed = 1;
    sr_cookie_read_init(&rq->cookie);
    if (st->eff.session_cookie) {
        sr_read_app_session(st, r, rq);
    }
    for (i = 0; i < h->nelts; i++) {
        if (e[i].key && (e[i].key[0] == 'C' || e[i].key[0] == 'c')
            && !strcasecmp(e[i].key, "Cookie") && e[i].val
            && sr_cookie_read_header(&rq->cookie, &st->cookie_ctx, e[i].val)) {
            return;
        }
    }
}

/* Election: one atomic ticket, one table lookup, the policy's verdict
 * (sr_elect_check). A stale schedule is rebuilt and the same ticket
 * mapped onto the new one; a member that failed in this request costs
 * another ticket, until every scheduled member was tried. Returns the
 * member number or -1. */
static int sr_elect(sr_balancer_state_t *st, request_rec *r, sr_req_t *rq,
                    int by_load)
{
    apr_uint64_t ticket = 0;
    int rescans = 0, fresh = 1;
    uint32_t tickets = 0;

    for (;;) {
        int32_t m;
        sr_elect_t verdict;
        uint32_t n = (uint32_t)st->balancer->workers->nelts;

        if (n > st->max) {
            n = st->max;
        }
        if (fresh) {
            ticket = st->shared ? sr_atomic_add64(&st->shared->ticket, 1)
                                : st->local_ticket++;
            tickets++;
        }
        if (st->schedule.len) {
            /* the slot's member as it is now, not as at the last scan */
            uint16_t k = sr_schedule_at(&st->schedule, ticket);
            if (k < n) {
                sr_view_refresh(st, k);
            }
        }
        if (by_load) {
            uint32_t j;
            for (j = 0; j < st->schedule.nmembers; j++) {
                if (st->schedule.members[j] < n) {
                    sr_view_refresh(st, st->schedule.members[j]);
                }
            }
            verdict = sr_elect_leastbusy(&st->schedule, ticket, st->view, n,
                                         &rq->tried, &m);
        }
        else {
            verdict = sr_elect_check(&st->schedule, ticket, st->view, n,
                                     &rq->tried, &m);
        }
        switch (verdict) {
        case SR_ELECT_OK:
            return m;
        case SR_ELECT_TRIED:
            fresh = 1;
            if (tickets > st->schedule.len + 1) {
                return -1;
            }
            continue;
        case SR_ELECT_STALE:
            if (rescans++ >= SR_ELECT_RESCANS) {
                return -1;
            }
            st->next_scan = r->request_time + sr_scan(st, r->server);
            fresh = 0;
            continue;
        case SR_ELECT_NONE:
        default:
            if (st->schedule.len == 0 && rescans++ < 1) {
                /* nobody took new sessions at the last scan: look again */
                st->next_scan = r->request_time + sr_scan(st, r->server);
                fresh = 0;
                continue;
            }
            return -1;
        }
    }
}

/* The cookie value naming member m: the route, signed with key when there
 * is one. Made once per member and key (and again after a scan), not per
 * request; like the routes, the slots live as long as the state. */
static const char *sr_member_value(sr_balancer_state_t *st, int m,
                                   const sr_key_t *key)
{
    char *slot = st->values_buf + (apr_size_t)m * SR_VALUE_BUF;

    if (!st->value_ok[m] || st->value_key[m] != key) {
        sr_value_write(slot, st->routes[m], key, st->balancer->s->name);
        st->value_key[m] = key;
        st->value_ok[m] = 1;
    }
    return slot;
}

/* In-flight requests per member, in shared memory: counted from the
 * decision until the request ends, however it ends (answered, failed,
 * aborted by the client); a request decided again (in-request failover,
 * retry) moves its count to the new member. A main request is released in
 * log_transaction: httpd runs it from the EOR bucket's destruction, right
 * before it destroys the request's pool, on every way a request ends (the
 * same moment as a pool cleanup, without registering one per request). A
 * subrequest (never logged) registers a pool cleanup. (sr_atomic.h:
 * inline, relaxed: a count only.) */
static apr_status_t sr_inflight_release(void *data)
{
    sr_req_t *rq = data;

    if (rq->inflight) {
        /* never below zero: a discovery slot given to another address
         * starts its count afresh while older requests may still end */
        sr_atomic_dec32_floor0(&rq->inflight->inflight);
        rq->inflight = NULL;
    }
    return APR_SUCCESS;
}

static void sr_inflight_move(request_rec *r, sr_req_t *rq,
                             sr_shm_member_t *to)
{
    if (rq->inflight == to) {
        return;
    }
    sr_inflight_release(rq);
    if (to) {
        sr_atomic_add32(&to->inflight, 1);
        rq->inflight = to;
        if (r->main && !rq->inflight_cleanup) {
            apr_pool_cleanup_register(r->pool, rq, sr_inflight_release,
                                      apr_pool_cleanup_null);
            rq->inflight_cleanup = 1;
        }
    }
}

/* Applies a decision: environment, counters, and the Set-Cookie that the
 * output filter adds once the response is known to come from a member. */
static void sr_apply(request_rec *r, sr_balancer_state_t *st, sr_req_t *rq,
                     int m, sr_status_t status, int issue, int64_t first,
                     const sr_effective_t *eff, const char *why)
{
    proxy_worker *w = ((proxy_worker **)st->balancer->workers->elts)[m];
    /* routes_buf slots are never freed and always end in NUL (the last
     * byte is never written), so the environment can point at them. */
    const char *route = st->routes[m];

    rq->member = m;
    rq->worker = w;
    rq->status = status;
    rq->counter = st->counters[m];
    rq->spec = eff->cookie;
    rq->conns_mark = sr_conns_opened;
    if (rq->decisions++ == 0) {
        /* first decision of the request: nothing to replace */
        apr_table_addn(r->subprocess_env, SR_ENV_ROUTE, route);
        apr_table_addn(r->subprocess_env, SR_ENV_STATUS, sr_status_name(status));
    }
    else {
        apr_table_setn(r->subprocess_env, SR_ENV_ROUTE, route);
        apr_table_setn(r->subprocess_env, SR_ENV_STATUS, sr_status_name(status));
    }
    sr_inflight_move(r, rq, st->counters[m]);
    if (issue) {
        const char *value;
        if (st->dated) {
            char *buf = apr_palloc(r->pool, SR_VALUE_BUF);
            sr_value_write_dated(buf, route, first,
                                 (int64_t)apr_time_sec(r->request_time),
                                 eff->tag_key, st->balancer->s->name);
            value = buf;
        }
        else {
            value = sr_member_value(st, m, eff->tag_key);
        }
        int https = !strcmp(ap_http_scheme(r), "https");
        rq->set_cookie = sr_cookie_format(r->pool, eff->cookie, value, https);
        apr_table_setn(r->subprocess_env, SR_ENV_ROUTE_CHANGED, "1");
        if (!rq->filter_added) {
            ap_add_output_filter_handle(sr_cookie_filter_handle, NULL, r,
                                        r->connection);
            rq->filter_added = 1;
        }
    }
    else if (rq->set_cookie) {
        rq->set_cookie = NULL;
        apr_table_unset(r->subprocess_env, SR_ENV_ROUTE_CHANGED);
    }
    rq->issue = issue;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "%s: route %s (%s) decision %s: %s",
                  st->balancer->s->name, route, sr_worker_url(w),
                  sr_status_name(status), why);
}

static void sr_unapplied(request_rec *r, sr_balancer_state_t *st,
                         sr_req_t *rq, sr_status_t status, const char *why)
{
    sr_inflight_release(rq);
    rq->worker = NULL;
    rq->counter = NULL;
    rq->issue = 0;
    rq->set_cookie = NULL;
    rq->status = status;
    apr_table_unset(r->subprocess_env, SR_ENV_ROUTE);
    apr_table_unset(r->subprocess_env, SR_ENV_ROUTE_CHANGED);
    apr_table_setn(r->subprocess_env, SR_ENV_STATUS, sr_status_name(status));
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "%s: no member (decision %s): %s", st->balancer->s->name,
                  sr_status_name(status), why);
}

/* A retry after a member broke on a reused connection goes to that member
 * again (sr_retry_member decided it); returns 1 when it does. */
static int sr_retry_same(request_rec *r, sr_balancer_state_t *st,
                         sr_req_t *rq, const sr_effective_t *eff)
{
    int m = rq->retry_same;

    rq->retry_same = -1;
    if (m < 0 || m >= st->balancer->workers->nelts || (uint32_t)m >= st->max) {
        return 0;
    }
    sr_view_member(st, m, r->server);
    if (!st->view[m].usable || sr_tried_has(&rq->tried, (uint32_t)m)) {
        return 0;
    }
    sr_apply(r, st, rq, m, rq->status, rq->issue, rq->first, eff,
             "retry after a reused connection broke: the same member, on a "
             "fresh connection");
    return 1;
}

/* Election by the request's key (lbmethod=hash, StickyRouteElect hash):
 * the key's member in the map, or its next choice (sr_hash_choose). A
 * member found unusable since the scan makes the map stale: one rescan,
 * then the key is asked again. Returns the member, -1: none, -2: the key
 * is empty. Lock: the balancer's thread mutex (the finder's). */
static int sr_elect_by_key(sr_balancer_state_t *st, request_rec *r,
                           sr_req_t *rq, int *spilled)
{
    uint64_t h;
    uint32_t n;
    int32_t m;
    int stale;

    *spilled = 0;
    if (!st->hash || !sr_hash_request_key(st, r, &h)) {
        return -2;
    }
    n = (uint32_t)st->balancer->workers->nelts < st->max
        ? (uint32_t)st->balancer->workers->nelts : st->max;
    m = sr_hash_choose(st, h, n, &rq->tried, spilled, &stale);
    if (stale) {
        st->next_scan = r->request_time + sr_scan(st, r->server);
        m = sr_hash_choose(st, h, n, &rq->tried, spilled, &stale);
    }
    return m;
}

/* lbmethod=sticky: gathers the cookie and the named member's state, asks
 * sr_decide_sticky (the table in sr_policy.h), applies the answer. */
static proxy_worker *sr_find_sticky(proxy_balancer *b, request_rec *r)
{
    sr_balancer_state_t *st = sr_state(b, r->server);
    proxy_worker **workers = (proxy_worker **)b->workers->elts;
    const sr_effective_t *eff;
    sr_sticky_in_t in;
    sr_decision_t d;
    sr_req_t *rq;
    uint32_t n;
    int m;

    if (!st) {
        return NULL;
    }
    eff = &st->eff;
    sr_scan_if_due(st, r);
    rq = sr_req(r, b, st);
    if (rq->retry_same >= 0 && sr_retry_same(r, st, rq, eff)) {
        return rq->worker;
    }
    if (!rq->parsed) {
        sr_read_cookie(st, r, rq);
    }
    n = (uint32_t)b->workers->nelts < st->max ? (uint32_t)b->workers->nelts
                                               : st->max;
    if (rq->cookie.app_member >= 0 && (uint32_t)rq->cookie.app_member < n
        && !sr_tried_has(&rq->tried, (uint32_t)rq->cookie.app_member)) {
        sr_view_member(st, rq->cookie.app_member, r->server);
    }
    if (rq->cookie.member >= 0 && (uint32_t)rq->cookie.member < n) {
        int cm = rq->cookie.member;
        if (!sr_tried_has(&rq->tried, (uint32_t)cm)) {
            sr_view_member(st, cm, r->server);
        }
        if (st->view[cm].redirect >= 0 && (uint32_t)st->view[cm].redirect < n) {
            sr_view_refresh(st, st->view[cm].redirect);
        }
    }
    in.from_standby = st->from_standby;
    in.nofailover = b->s->sticky_force;
    in.now = (int64_t)apr_time_sec(r->request_time);
    in.lifetime = st->dated ? &st->lifetime : NULL;
    sr_decide_sticky(st->view, n, &rq->cookie, &rq->tried, &in, &d);
    switch (d.action) {
    case SR_ACT_SERVE:
        rq->first = d.first;
        sr_apply(r, st, rq, d.member, d.status, d.issue, d.first, eff, d.why);
        return workers[d.member];
    case SR_ACT_REFUSE:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "%s: member of route %s is unusable and nofailover is "
                      "on: 503", b->s->name, st->routes[rq->cookie.member]);
        sr_unapplied(r, st, rq, d.status, d.why);
        return NULL;
    case SR_ACT_ELECT:
    default:
        break;
    }
    /* a rebalanced client goes by load whatever the election: never back
     * to the member it is moved from */
    m = -1;
    if (st->eff.elect == SR_ELECT_HASH && d.status != SR_STATUS_REBALANCED) {
        int spilled;
        m = sr_elect_by_key(st, r, rq, &spilled);
    }
    if (m < 0) {
        m = sr_elect(st, r, rq, st->eff.elect == SR_ELECT_LEASTBUSY
                                || d.status == SR_STATUS_REBALANCED);
    }
    if (m < 0) {
        sr_unapplied(r, st, rq, d.status, "no member takes new sessions");
        return NULL;
    }
    rq->first = d.first;
    sr_apply(r, st, rq, m, d.status, d.issue, d.first, eff, d.why);
    return workers[m];
}

/*
 * lbmethod=roundrobin: exact and shared.
 *
 * Every process holds the same schedule table (see sr_schedule_build in
 * sr_core.c); a single 64-bit ticket in shared memory, taken with an atomic
 * fetch-and-add, says which slot serves. With equal weights and k usable
 * members, any N consecutive tickets give each member floor(N/k) or
 * ceil(N/k) requests, whatever the number of processes and threads.
 *
 *   members a b c d, equal weights, b disabled:   a c d a c d a c d ...
 *   loadfactor a=5 b=1 c=1:                       a a b a c a a ...
 */
static proxy_worker *sr_find_roundrobin(proxy_balancer *b, request_rec *r)
{
    sr_balancer_state_t *st = sr_state(b, r->server);
    sr_req_t *rq;
    int m;

    if (!st) {
        return NULL;
    }
    sr_scan_if_due(st, r);
    rq = sr_req(r, b, st);
    if (rq->retry_same >= 0) {
        rq->status = SR_STATUS_ROUNDROBIN;
        rq->issue = 0;
        if (sr_retry_same(r, st, rq, &st->eff)) {
            return rq->worker;
        }
    }
    m = sr_elect(st, r, rq, st->eff.elect == SR_ELECT_LEASTBUSY);
    if (m < 0) {
        sr_unapplied(r, st, rq, SR_STATUS_ROUNDROBIN,
                     "no member takes requests");
        return NULL;
    }
    sr_apply(r, st, rq, m, SR_STATUS_ROUNDROBIN, 0, 0, &st->eff,
             "the round-robin schedule's turn");
    return ((proxy_worker **)b->workers->elts)[m];
}

/*
 * lbmethod=hash: the request's key (StickyRouteHashKey, default the client
 * address) picks the member through the balancer's map (sr_hash.c:
 * weighted rendezvous over a bucket table, the same in every process and
 * on every proxy); no cookie. An empty key is placed as lbmethod=roundrobin
 * places a request (decision roundrobin).
 *
 *   key's member takes requests                 it serves     hashed
 *   it is unusable, or failed in this request   next choice   hashed
 *   StickyRouteHashBalance: it is over its bound  next choice within
 *                                                 its bound    hash-spill
 */
static proxy_worker *sr_find_hash(proxy_balancer *b, request_rec *r)
{
    sr_balancer_state_t *st = sr_state(b, r->server);
    sr_req_t *rq;
    int m, spilled;

    if (!st) {
        return NULL;
    }
    if (!st->hash) {
        /* lbmethod switched to hash at run time (balancer-manager) */
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
    sr_scan_if_due(st, r);
    rq = sr_req(r, b, st);
    if (rq->retry_same >= 0) {
        rq->issue = 0;
        if (sr_retry_same(r, st, rq, &st->eff)) {
            return rq->worker;
        }
    }
    m = sr_elect_by_key(st, r, rq, &spilled);
    if (m == -2) {
        m = sr_elect(st, r, rq, st->eff.elect == SR_ELECT_LEASTBUSY);
        if (m < 0) {
            sr_unapplied(r, st, rq, SR_STATUS_ROUNDROBIN,
                         "empty key, and no member takes requests");
            return NULL;
        }
        sr_apply(r, st, rq, m, SR_STATUS_ROUNDROBIN, 0, 0, &st->eff,
                 "empty key: the round-robin schedule's turn");
        return ((proxy_worker **)b->workers->elts)[m];
    }
    if (m < 0) {
        sr_unapplied(r, st, rq, SR_STATUS_HASHED, "no member takes requests");
        return NULL;
    }
    sr_apply(r, st, rq, m, spilled ? SR_STATUS_HASH_SPILL : SR_STATUS_HASHED,
             0, 0, &st->eff, spilled ? "the key's member is over its bounded "
             "load: its next choice" : "the key's member");
    return ((proxy_worker **)b->workers->elts)[m];
}

static apr_status_t sr_reset(proxy_balancer *b, server_rec *s)
{
    (void)b;
    (void)s;
    return APR_SUCCESS;
}

static apr_status_t sr_age(proxy_balancer *b, server_rec *s)
{
    (void)b;
    (void)s;
    return APR_SUCCESS;
}

const proxy_balancer_method sr_sticky_method = {
    SR_LBMETHOD_STICKY, &sr_find_sticky, NULL, &sr_reset, &sr_age, NULL
};

const proxy_balancer_method sr_roundrobin_method = {
    SR_LBMETHOD_ROUNDROBIN, &sr_find_roundrobin, NULL, &sr_reset, &sr_age, NULL
};

const proxy_balancer_method sr_hash_method = {
    SR_LBMETHOD_HASH, &sr_find_hash, NULL, &sr_reset, &sr_age, NULL
};

/* ====================================================================
 * Response: the Set-Cookie, counters
 * ==================================================================== */

typedef struct {
    const sr_cookie_spec_t *spec;
    const char *req_path;
    const char *found;
} sr_app_cookie_t;

static int sr_app_cookie_cb(void *baton, const char *key, const char *val)
{
    sr_app_cookie_t *ac = baton;

    (void)key;
    if (sr_set_cookie_sets(val, ac->spec->name, ac->spec->path,
                           ac->req_path)) {
        ac->found = val;
        return 0;
    }
    return 1;
}

/* Adds the one Set-Cookie, naming the member elected last, when the
 * response is on its way; skips errors httpd generates itself, and never
 * replaces a cookie of the same name and path the member set itself. */
static apr_status_t sr_cookie_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    sr_req_t *rq = ap_get_module_config(r->request_config, &sticky_route_module);

    if (rq && rq->issue && rq->set_cookie && rq->worker && !rq->error_response) {
        sr_app_cookie_t ac;

        ac.spec = rq->spec;
        ac.req_path = r->parsed_uri.path ? r->parsed_uri.path : r->uri;
        ac.found = NULL;
        apr_table_do(sr_app_cookie_cb, &ac, r->headers_out, "Set-Cookie",
                     NULL);
        if (!ac.found) {
            apr_table_do(sr_app_cookie_cb, &ac, r->err_headers_out,
                         "Set-Cookie", NULL);
        }
        if (!ac.found) {
            apr_table_addn(r->headers_out, "Set-Cookie", rq->set_cookie);
        }
        else {
            sr_balancer_state_t *st = rq->balancer ? rq->balancer->context
                                                   : NULL;
            sr_shm_balancer_t *sb = st ? st->shared : NULL;
            if (!sb || !(sr_atomic_load32(&sb->warned) & SR_WARNED_APP_COOKIE)) {
                int first = 1;
                if (sb) {
                    apr_uint32_t was = sr_atomic_load32(&sb->warned);
                    first = sr_atomic_cas32(&sb->warned, was,
                                            was | SR_WARNED_APP_COOKIE)
                            == was;
                }
                if (first) {
                    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                                  "%s: member %s sets the cookie %s (path %s) "
                                  "itself; mod_sticky_route does not replace "
                                  "an application's cookie, so its responses "
                                  "pin nobody - give StickyRouteCookie another "
                                  "name (said once)", rq->balancer->s->name,
                                  sr_worker_url(rq->worker), rq->spec->name,
                                  rq->spec->path);
                }
            }
        }
    }
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

static void sr_insert_error_filter(request_rec *r)
{
    sr_req_t *rq = ap_get_module_config(r->request_config, &sticky_route_module);

    if (rq) {
        rq->error_response = 1;
    }
}

static int sr_log_transaction(request_rec *r)
{
    sr_req_t *rq;

    for (;;) {
        /* every request of the chain (internal redirects) ends here */
        rq = ap_get_module_config(r->request_config, &sticky_route_module);
        if (rq) {
            sr_inflight_release(rq);
        }
        if (!r->next) {
            break;
        }
        r = r->next;    /* the request that produced the response */
    }

    /* sent_bodyct: a response left, and (broken) it was not cut off in the
     * middle. mod_proxy_http closes the client connection without one when
     * a pooled backend connection breaks under a request on a reused client
     * connection (the client retries). */
    if (rq && rq->worker && rq->counter && !rq->error_response
        && !rq->broken && r->sent_bodyct
        && (unsigned)rq->status < SR_STATUS_COUNT) {
        sr_atomic_add64(&rq->counter->count[rq->status], 1);
    }
    return DECLINED;
}

/* mod_proxy opens a new connection to a member (see sr_conns_opened). */
static int sr_pre_connection(conn_rec *c, void *csd)
{
    (void)c;
    (void)csd;
    sr_conns_opened++;
    return DECLINED;
}

/*
 * A member broke under a request before any byte of its answer and
 * mod_proxy answers 502 (on a reused client connection mod_proxy_http
 * closes the connection instead, for the client to retry). When the
 * policy allows it (sr_retry_allowed: GET or HEAD without a body, nothing
 * sent yet), the request runs again as an internal redirect: first on the
 * same member with a fresh connection when the broken one was a reused
 * pooled connection (sr_retry_member), else on another member.
 *
 * A 503 with a member decided is a member never reached (connect refused
 * or timed out, the member unusable by the time of the connect) after
 * httpd's own failover gave up (maxattempts): the request runs again on
 * another member when sr_retry_unreached_allowed says so. A 503 without a
 * member (the finder found none) is left alone: rq->worker is NULL then.
 */
static int sr_request_status(int *status, request_rec *r)
{
    sr_req_t *rq = ap_get_module_config(r->request_config, &sticky_route_module);
    sr_balancer_state_t *st;
    sr_retry_in_t in;
    const char *cl;
    int fresh, timed_out, same, unreached, locked;

    if (*status == DONE && rq) {
        /* mod_proxy_http returns DONE when the member broke off in the middle
         * of the response (or the client went away): not a served request */
        rq->broken = 1;
        return DECLINED;
    }
    unreached = *status == HTTP_SERVICE_UNAVAILABLE;
    if ((*status != HTTP_BAD_GATEWAY && !unreached) || !rq || !rq->worker
        || rq->member < 0 || rq->retry_issued || r->main) {
        return DECLINED;
    }
    st = rq->balancer ? rq->balancer->context : NULL;
    if (!st) {
        return DECLINED;
    }
    cl = apr_table_get(r->headers_in, "Content-Length");
    in.enabled = st->eff.retry;
    in.idempotent = r->method_number == M_GET;     /* HEAD is M_GET too */
    in.has_body = apr_table_get(r->headers_in, "Transfer-Encoding") != NULL
                  || (cl && strcmp(cl, "0"));
    in.response_started = r->sent_bodyct || r->connection->aborted;
    /* with ProxyErrorOverride, a 502 may be the member's own answer */
    in.member_answered = apr_table_get(r->notes, "proxy-error-override") != NULL;
    in.retries = rq->retries - rq->unreached;   /* after a broken member */
    in.last_same = rq->last_same;
    if (unreached ? !sr_retry_unreached_allowed(&in, rq->unreached)
                  : !sr_retry_allowed(&in)) {
        return DECLINED;
    }
    if (unreached) {
        /* never again this member in this request */
        same = -1;
        rq->unreached++;
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "%s: %s (route %s) could not be reached; retrying the "
                      "%s request on another member", rq->balancer->s->name,
                      sr_worker_url(rq->worker),
                      apr_table_get(r->subprocess_env, SR_ENV_ROUTE),
                      r->method);
    }
    else {
        fresh = rq->conns_mark != sr_conns_opened;
        timed_out = apr_table_get(r->notes, "proxy_timedout") != NULL;
        /* st->view is the finders' per-process state: mod_proxy runs this
         * hook without the balancer's thread mutex, so take it (as
         * mod_proxy_balancer does around the finder) */
        locked = PROXY_THREAD_LOCK(rq->balancer) == APR_SUCCESS;
        if ((uint32_t)rq->member < st->max
            && rq->member < st->balancer->workers->nelts) {
            sr_view_refresh(st, rq->member);
        }
        same = sr_retry_member(st->view,
                               st->max < (uint32_t)st->balancer->workers->nelts
                               ? st->max
                               : (uint32_t)st->balancer->workers->nelts,
                               rq->member, fresh, timed_out, rq->retries,
                               &rq->tried);
        if (locked) {
            PROXY_THREAD_UNLOCK(rq->balancer);
        }
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "%s: no response from %s (route %s, %s connection%s); "
                      "retrying the %s request %s", rq->balancer->s->name,
                      sr_worker_url(rq->worker),
                      apr_table_get(r->subprocess_env, SR_ENV_ROUTE),
                      fresh ? "fresh" : "reused", timed_out ? ", timed out" : "",
                      r->method,
                      same >= 0 ? "on the same member with a fresh connection"
                                : "on another member");
    }
    if (same < 0) {
        sr_tried_add(r->pool, &rq->tried, (uint32_t)rq->member);
    }
    rq->retry_issued = 1;
    rq->retry_same = same;
    sr_inflight_release(rq);    /* this attempt is over */
    rq->member = -1;            /* the tried set says all: sr_req must not
                                   add it again as a failed connect */
    ap_internal_redirect(r->unparsed_uri, r);
    *status = OK;
    return OK;
}

/* ==================================================================== */

void sr_proxy_post_config(void)
{
    sr_retry_worker = APR_RETRIEVE_OPTIONAL_FN(ap_proxy_retry_worker);
}

static int sr_init_state(server_rec *s, proxy_balancer *b, void *baton)
{
    if (!b->context) {
        b->context = sr_state_create(baton, s, b);
    }
    return 0;
}

void sr_proxy_child_init(apr_pool_t *pchild, server_rec *main_s)
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

void sr_proxy_register_hooks(apr_pool_t *p)
{
    ap_register_provider(p, PROXY_LBMETHOD, SR_LBMETHOD_STICKY, "0",
                         &sr_sticky_method);
    ap_register_provider(p, PROXY_LBMETHOD, SR_LBMETHOD_ROUNDROBIN, "0",
                         &sr_roundrobin_method);
    ap_register_provider(p, PROXY_LBMETHOD, SR_LBMETHOD_HASH, "0",
                         &sr_hash_method);
    ap_hook_insert_error_filter(sr_insert_error_filter, NULL, NULL,
                                APR_HOOK_MIDDLE);
    ap_hook_log_transaction(sr_log_transaction, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_pre_connection(sr_pre_connection, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(proxy, request_status, sr_request_status, NULL, NULL,
                      APR_HOOK_MIDDLE);
    sr_cookie_filter_handle = ap_register_output_filter(
        "STICKY_ROUTE_COOKIE", sr_cookie_filter, NULL, AP_FTYPE_CONTENT_SET);
}
