/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_find.c - the three lbmethod providers (sticky,
 * roundrobin, hash): their finders, the election, and how a decision is
 * applied (environment, in-flight count, the Set-Cookie to add).
 *
 * A finder gathers inputs (the members' state, the Cookie headers) into
 * the plain structures of sr_policy.h, asks the policy (sr_decide_sticky,
 * sr_elect_check, sr_elect_leastbusy, sr_hash_choose), and applies the
 * answer. mod_proxy_balancer calls every finder with the balancer's thread
 * mutex held (PROXY_THREAD_LOCK(b)): everything here that touches st
 * relies on it; the shm entries are touched through sr_atomic.h only.
 */
#include <string.h>

#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"

#include "mod_sticky_route_private.h"

/* Members in the view: the balancer's, at most st->max. Lock: the
 * balancer's thread mutex (b->workers). */
static inline uint32_t sr_members(const sr_balancer_state_t *st)
{
    uint32_t n = (uint32_t)st->balancer->workers->nelts;

    return n < st->max ? n : st->max;
}

/* Scans when the policy says a scan is due (sr_scan_due: the member list
 * changed, or the interval passed). Lock: the balancer's thread mutex. */
static inline void sr_scan_when_due(sr_balancer_state_t *st, request_rec *r)
{
    sr_scan_due_in_t in = { st->nworkers, st->balancer->workers->nelts,
                            r->request_time, st->next_scan };

    if (sr_scan_due(&in)) {
        st->next_scan = r->request_time + sr_scan(st, r->server);
    }
}

/* One election's state for its step and rescan (sr_elect_run). */
typedef struct {
    sr_balancer_state_t *st;
    request_rec *r;
    sr_req_t *rq;
    int by_load;
    apr_uint64_t ticket;
} sr_elect_ctx_t;

/* A step of the election (sr_elect_run): a new atomic ticket when fresh,
 * the slot's member as it is now (by load: every scheduled member), the
 * policy's verdict (sr_elect_check, or sr_elect_leastbusy by load). Lock:
 * the balancer's thread mutex (the finder's, held by mod_proxy_balancer).
 * The ticket is lock-free: one relaxed fetch-and-add in shared memory. */
static inline sr_elect_t sr_elect_step(void *ctx, int fresh, uint32_t *len,
                                       int32_t *m)
{
    sr_elect_ctx_t *c = ctx;
    sr_balancer_state_t *st = c->st;
    uint32_t n = sr_members(st);
    sr_elect_t verdict;

    if (fresh) {
        c->ticket = st->shared ? sr_atomic_add64(&st->shared->ticket, 1)
                               : st->local_ticket++;
    }
    if (st->schedule.len) {
        /* the slot's member as it is now, not as at the last scan */
        uint16_t k = sr_schedule_at(&st->schedule, c->ticket);
        if (k < n) {
            sr_view_refresh(st, k);
        }
    }
    if (c->by_load) {
        uint32_t j;
        for (j = 0; j < st->schedule.nmembers; j++) {
            if (st->schedule.members[j] < n) {
                sr_view_refresh(st, st->schedule.members[j]);
            }
        }
        verdict = sr_elect_leastbusy(&st->schedule, c->ticket, st->view, n,
                                     &c->rq->tried, m);
    }
    else {
        verdict = sr_elect_check(&st->schedule, c->ticket, st->view, n,
                                 &c->rq->tried, m);
    }
    *len = st->schedule.len;
    return verdict;
}

/* The election's rescan (sr_elect_run): the same ticket is then mapped
 * onto the new schedule. Lock: the balancer's thread mutex. */
static void sr_elect_rescan(void *ctx)
{
    sr_elect_ctx_t *c = ctx;

    c->st->next_scan = c->r->request_time + sr_scan(c->st, c->r->server);
}

/* Election: the policy's loop (sr_elect_run) over one atomic ticket, one
 * table lookup and the policy's verdict (sr_elect_step), then the policy's
 * next step (sr_elect_then): serve, another ticket (a member that failed
 * in this request), a rescan with the same ticket mapped onto the new
 * schedule (stale), or give up. Returns the member number or -1. Lock:
 * the balancer's thread mutex (the finder's, held by mod_proxy_balancer). */
static int sr_elect(sr_balancer_state_t *st, request_rec *r, sr_req_t *rq,
                    int by_load)
{
    sr_elect_ctx_t c = { st, r, rq, by_load, 0 };

    return sr_elect_run(sr_elect_step, sr_elect_rescan, &c);
}

/* The cookie value naming member m: the route, signed with key when there
 * is one. Made once per member and key (and again after a scan), not per
 * request; like the routes, the slots live as long as the state. Lock: the
 * balancer's thread mutex (st->values_buf; the finder's, held by
 * mod_proxy_balancer). */
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

/* The Set-Cookie of a decision that issues one (sr_apply): the value
 * naming member m (dated: carrying rq->first), prepared for the output
 * filter, or put in the headers now for an upgrade. Out of line: most
 * decisions issue none. Lock: the balancer's thread mutex (the finder's,
 * held by mod_proxy_balancer). */
static void sr_apply_cookie(request_rec *r, sr_balancer_state_t *st,
                            sr_req_t *rq, int m, const char *route)
{
    const sr_effective_t *eff = &st->eff;
    const char *value, *upgrade;
    int https;

    if (st->dated) {
        char *buf = apr_palloc(r->pool, SR_VALUE_BUF);
        sr_value_write_dated(buf, route, rq->first,
                             (int64_t)apr_time_sec(r->request_time),
                             eff->tag_key, st->balancer->s->name);
        value = buf;
    }
    else {
        value = sr_member_value(st, m, eff->tag_key);
    }
    https = !strcmp(ap_http_scheme(r), "https");
    rq->set_cookie = sr_cookie_format(r->pool, eff->cookie, value, https);
    apr_table_setn(r->subprocess_env, SR_ENV_ROUTE_CHANGED, "1");
    upgrade = apr_table_get(r->headers_in, "Upgrade");
    if (rq->early_cookie) {
        sr_early_cookie_take_back(r, rq);   /* an earlier decision's */
    }
    if (upgrade && sr_cookie_early(apr_table_get(r->headers_in,
                                                 "Connection"), upgrade)) {
        /* the member's 101 passes no output filter (sr_policy.h) */
        apr_table_addn(r->headers_out, "Set-Cookie", rq->set_cookie);
        rq->early_cookie = rq->set_cookie;
    }
    if (!rq->filter_added) {
        ap_add_output_filter_handle(sr_cookie_filter_handle, NULL, r,
                                    r->connection);
        rq->filter_added = 1;
    }
}

/* The debug log line of a decision; out of line, called only at LogLevel
 * debug. No lock of its own (the finder's, for st->balancer). */
static void __attribute__((noinline))
sr_apply_log(request_rec *r, sr_balancer_state_t *st, const char *route,
             proxy_worker *w, sr_status_t status, const char *why)
{
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "%s: route %s (%s) decision %s: %s",
                  st->balancer->s->name, route, sr_worker_url(w),
                  sr_status_name(status), why);
}

/* Applies a decision: environment, counters, and the Set-Cookie that the
 * output filter adds once the response is known to come from a member
 * (sr_apply_cookie; a dated value carries rq->first, set by the caller).
 * Inlined into every finder (the cost of a selection, bench/micro): its
 * rare branches are out of line. Lock: the balancer's thread mutex (the
 * finder's, held by mod_proxy_balancer). The in-flight count moves
 * lock-free (sr_atomic.h). */
static inline __attribute__((always_inline))
void sr_apply(request_rec *r, sr_balancer_state_t *st, sr_req_t *rq, int m,
              sr_status_t status, int issue, const char *why)
{
    proxy_worker *w = ((proxy_worker **)st->balancer->workers->elts)[m];
    /* The environment is read after the finder's lock is released (the
     * access log, mod_headers, sr_request_status' log line). A route
     * string the scan published is never rewritten (sr_scan: a changed
     * route gets a fresh string) - except under StickyRouteDiscover,
     * whose slots are rewritten in place (st->route_copy): there the
     * request gets its own copy. A routes_buf slot is
     * PROXY_WORKER_MAX_ROUTE_SIZE bytes ending in NUL (its last byte is
     * never written): one fixed-size copy. */
    const char *route = st->routes[m];

    if (st->route_copy) {
        route = memcpy(rq->route, route, sizeof(rq->route));
    }
    rq->member = m;
    rq->worker = w;
    rq->status = status;
    rq->counter = st->counters[m];
    rq->spec = st->eff.cookie;
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
    /* counted only when the balancer keeps in-flight accounting (decided
     * once, sr_effective); otherwise an earlier decision's count, if any,
     * is released */
    if (st->eff.inflight || rq->inflight) {
        sr_inflight_move(r, rq, st->eff.inflight ? st->counters[m] : NULL);
    }
    if (issue) {
        sr_apply_cookie(r, st, rq, m, route);
    }
    else if (rq->set_cookie) {
        rq->set_cookie = NULL;
        sr_early_cookie_take_back(r, rq);
        apr_table_unset(r->subprocess_env, SR_ENV_ROUTE_CHANGED);
    }
    rq->issue = issue;
    if (APLOG_R_IS_LEVEL(r, APLOG_DEBUG)) {
        sr_apply_log(r, st, route, w, status, why);
    }
}

/* Lock: the balancer's thread mutex (the finder's, held by
 * mod_proxy_balancer). */
static void sr_unapplied(request_rec *r, sr_balancer_state_t *st,
                         sr_req_t *rq, sr_status_t status, const char *why)
{
    sr_inflight_release(rq);
    rq->worker = NULL;
    rq->counter = NULL;
    rq->issue = 0;
    rq->set_cookie = NULL;
    sr_early_cookie_take_back(r, rq);
    rq->status = status;
    apr_table_unset(r->subprocess_env, SR_ENV_ROUTE);
    apr_table_unset(r->subprocess_env, SR_ENV_ROUTE_CHANGED);
    apr_table_setn(r->subprocess_env, SR_ENV_STATUS, sr_status_name(status));
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "%s: no member (decision %s): %s", st->balancer->s->name,
                  sr_status_name(status), why);
}

/* A retry the retry decision sent back to the member that broke
 * (rq->retry_same): gives that member its retry chance, asks
 * sr_decide_retry_same with the decision of the attempt it retries
 * (status, issue), applies the answer; returns 1 when the member serves.
 * Lock: the balancer's thread mutex (the finder's, held by
 * mod_proxy_balancer). */
static int sr_retry_same(request_rec *r, sr_balancer_state_t *st,
                         sr_req_t *rq, sr_status_t status, int issue)
{
    int m = rq->retry_same;
    uint32_t n = sr_members(st);
    sr_decision_t d;

    rq->retry_same = -1;
    if (m >= 0 && (uint32_t)m < n) {
        sr_view_member(st, m, r->server);
    }
    sr_decide_retry_same(st->view, n, m, &rq->tried, status, issue,
                         rq->first, &d);
    if (d.action != SR_ACT_SERVE) {
        return 0;
    }
    sr_apply(r, st, rq, d.member, d.status, d.issue, d.why);
    return 1;
}

/* Election by the request's key (lbmethod=hash, StickyRouteElect hash):
 * the key's member in the map, or its next choice (sr_hash_choose). A
 * member found unusable since the scan makes the map stale: the policy
 * says whether to rescan and ask the key again (sr_hash_then: once). Returns the member, -1: none, -2: the key
 * is empty. Lock: the balancer's thread mutex (the finder's). */
static int sr_elect_by_key(sr_balancer_state_t *st, request_rec *r,
                           sr_req_t *rq, int *spilled)
{
    uint64_t h;
    uint32_t n;
    int32_t m;
    int stale;
    uint32_t rescans = 0;

    *spilled = 0;
    if (!st->hash || !sr_hash_request_key(st, r, &h)) {
        return -2;
    }
    n = sr_members(st);
    m = sr_hash_choose(st, h, n, &rq->tried, spilled, &stale);
    while (sr_hash_then(stale, rescans) == SR_HASH_GO_RESCAN) {
        rescans++;
        st->next_scan = r->request_time + sr_scan(st, r->server);
        m = sr_hash_choose(st, h, n, &rq->tried, spilled, &stale);
    }
    return m;
}

/* lbmethod=sticky: gathers the cookie and the named member's state, asks
 * sr_decide_sticky (the table in sr_policy.h), applies the answer. Lock:
 * the balancer's thread mutex (the finder's, held by mod_proxy_balancer). */
static proxy_worker *sr_find_sticky(proxy_balancer *b, request_rec *r)
{
    sr_balancer_state_t *st = sr_state(b, r->server);
    proxy_worker **workers = (proxy_worker **)b->workers->elts;
    sr_sticky_in_t in;
    sr_decision_t d;
    sr_elect_way_t way;
    sr_req_t *rq;
    uint32_t n;
    int m;

    if (!st) {
        return NULL;
    }
    sr_scan_when_due(st, r);
    rq = sr_req(r, b, st);
    if (rq->retry_same >= 0
        && sr_retry_same(r, st, rq, rq->status, rq->issue)) {
        return rq->worker;
    }
    if (!rq->parsed) {
        sr_read_cookie(st, r, rq);
    }
    n = sr_members(st);
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
        sr_apply(r, st, rq, d.member, d.status, d.issue, d.why);
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
    /* by key, by load or by the schedule's turn (a rebalanced client goes
     * by load: sr_elect_way) */
    way = sr_elect_way(SR_LB_STICKY, st->eff.elect, d.status);
    m = -1;
    if (way.by_key) {
        int spilled;
        m = sr_elect_by_key(st, r, rq, &spilled);
    }
    if (m < 0 && (m == -2 || !way.by_key || way.key_none_schedule)) {
        m = sr_elect(st, r, rq, way.by_load);
    }
    if (m < 0) {
        sr_unapplied(r, st, rq, d.status, "no member takes new sessions");
        return NULL;
    }
    rq->first = d.first;
    sr_apply(r, st, rq, m, d.status, d.issue, d.why);
    return workers[m];
}

/* A request placed as lbmethod=roundrobin places it (decision
 * roundrobin, no cookie): the schedule's election, by load when by_load;
 * why and why_none for the debug log. Returns the worker, NULL: no member
 * (503). Used by the roundrobin finder and by lbmethod=hash for an empty
 * key; inlined into both, as the code was before it became one helper
 * (the round-robin finder's cost, bench/micro). Lock: the balancer's
 * thread mutex (the finder's, held by mod_proxy_balancer). */
static inline __attribute__((always_inline))
proxy_worker *sr_place_by_schedule(request_rec *r, sr_balancer_state_t *st,
                                   sr_req_t *rq, int by_load, const char *why,
                                   const char *why_none)
{
    int m = sr_elect(st, r, rq, by_load);

    if (m < 0) {
        sr_unapplied(r, st, rq, SR_STATUS_ROUNDROBIN, why_none);
        return NULL;
    }
    sr_apply(r, st, rq, m, SR_STATUS_ROUNDROBIN, 0, why);
    return ((proxy_worker **)st->balancer->workers->elts)[m];
}

/*
 * lbmethod=roundrobin: exact and shared.
 *
 * Every process holds the same schedule table (see sr_schedule_build in
 * sr_schedule.c); a single 64-bit ticket in shared memory, taken with an
 * atomic fetch-and-add, says which slot serves. With equal weights and k
 * usable members, any N consecutive tickets give each member floor(N/k) or
 * ceil(N/k) requests, whatever the number of processes and threads.
 *
 *   members a b c d, equal weights, b disabled:   a c d a c d a c d ...
 *   loadfactor a=5 b=1 c=1:                       a a b a c a a ...
 *
 * Lock: the balancer's thread mutex (the finder's, held by
 * mod_proxy_balancer).
 */
static proxy_worker *sr_find_roundrobin(proxy_balancer *b, request_rec *r)
{
    sr_balancer_state_t *st = sr_state(b, r->server);
    sr_req_t *rq;

    if (!st) {
        return NULL;
    }
    sr_scan_when_due(st, r);
    rq = sr_req(r, b, st);
    if (rq->retry_same >= 0
        && sr_retry_same(r, st, rq, SR_STATUS_ROUNDROBIN, 0)) {
        return rq->worker;
    }
    return sr_place_by_schedule(r, st, rq,
                                sr_elect_way(SR_LB_ROUNDROBIN, st->eff.elect,
                                             SR_STATUS_ROUNDROBIN).by_load,
                                "the round-robin schedule's turn",
                                "no member takes requests");
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
 *
 * Lock: the balancer's thread mutex (the finder's, held by
 * mod_proxy_balancer).
 */
static proxy_worker *sr_find_hash(proxy_balancer *b, request_rec *r)
{
    sr_balancer_state_t *st = sr_state(b, r->server);
    sr_elect_way_t way;
    sr_req_t *rq;
    int m, spilled;

    if (!st) {
        return NULL;
    }
    if (!st->hash) {
        /* lbmethod switched to hash at run time (balancer-manager) */
        sr_state_hash_ensure(st);
    }
    sr_scan_when_due(st, r);
    rq = sr_req(r, b, st);
    if (rq->retry_same >= 0 && sr_retry_same(r, st, rq, rq->status, 0)) {
        return rq->worker;
    }
    way = sr_elect_way(SR_LB_HASH, st->eff.elect, SR_STATUS_HASHED);
    m = sr_elect_by_key(st, r, rq, &spilled);
    if (m == -2 || (m < 0 && way.key_none_schedule)) {
        return sr_place_by_schedule(r, st, rq, way.by_load,
                                    "empty key: the round-robin schedule's "
                                    "turn",
                                    "empty key, and no member takes "
                                    "requests");
    }
    if (m < 0) {
        sr_unapplied(r, st, rq, SR_STATUS_HASHED, "no member takes requests");
        return NULL;
    }
    sr_apply(r, st, rq, m, spilled ? SR_STATUS_HASH_SPILL : SR_STATUS_HASHED,
             0, spilled ? "the key's member is over its bounded load: its "
             "next choice" : "the key's member");
    return ((proxy_worker **)b->workers->elts)[m];
}

/* Nothing to reset: the state is rebuilt by the scan. No lock. */
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

/* The three providers. Their registration is in mod_sticky_route.c's
 * register_hooks (sr_find_register_hooks). No lock: startup. */
void sr_find_register_hooks(apr_pool_t *p)
{
    ap_register_provider(p, PROXY_LBMETHOD, SR_LBMETHOD_STICKY, "0",
                         &sr_sticky_method);
    ap_register_provider(p, PROXY_LBMETHOD, SR_LBMETHOD_ROUNDROBIN, "0",
                         &sr_roundrobin_method);
    ap_register_provider(p, PROXY_LBMETHOD, SR_LBMETHOD_HASH, "0",
                         &sr_hash_method);
}
