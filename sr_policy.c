/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_policy.c - the decisions of mod_sticky_route (see sr_policy.h).
 */
#include <string.h>
#include <strings.h>

#include "sr_policy.h"
#include "sr_atomic.h"

/* ---- tried set ------------------------------------------------------------ */

void sr_tried_add(apr_pool_t *p, sr_tried_t *t, uint32_t member)
{
    if (member >= t->capacity || sr_tried_has(t, member)) {
        return;
    }
    if (!t->bits) {
        t->bits = apr_pcalloc(p, (t->capacity + 7) / 8);
    }
    t->bits[member / 8] |= (unsigned char)(1u << (member % 8));
    t->count++;
}

/* ---- routes ---------------------------------------------------------------- */

const char *sr_route_origin_name(sr_route_origin_t origin)
{
    switch (origin) {
    case SR_ROUTE_CONFIGURED:
        return "configured";
    case SR_ROUTE_DERIVED:
        return "derived (no route set)";
    case SR_ROUTE_DERIVED_INVALID:
        return "derived (the route set is not a valid cookie route: 1-63 "
               "characters A-Z a-z 0-9 - _ ~)";
    case SR_ROUTE_DERIVED_DUPLICATE:
        return "derived (the route set is already used by another member "
               "of the balancer)";
    }
    return "derived";
}

sr_route_origin_t sr_route_choose(char *out, const char *configured,
                                  const char *member_url, const sr_key_t *key,
                                  const sr_route_index_t *ix,
                                  const char *const *routes)
{
    sr_route_origin_t origin;
    size_t len = configured ? strlen(configured) : 0;

    if (len == 0) {
        origin = SR_ROUTE_DERIVED;
    }
    else if (!sr_route_is_valid(configured, len)) {
        origin = SR_ROUTE_DERIVED_INVALID;
    }
    else if (ix && sr_index_find(ix, routes, configured, len) >= 0) {
        origin = SR_ROUTE_DERIVED_DUPLICATE;
    }
    else {
        memcpy(out, configured, len + 1);
        return SR_ROUTE_CONFIGURED;
    }
    sr_route_derive(out, member_url ? member_url : "", key);
    return origin;
}

/* ---- takers ----------------------------------------------------------------- */

uint32_t sr_policy_takers(const sr_member_t *m, uint32_t n, uint16_t *out,
                          uint32_t *weights, int *from_standby)
{
    uint32_t i, count = 0;
    int lbset, max_lbset = 0;

    *from_standby = 0;
    for (i = 0; i < n; i++) {
        if (m[i].lbset > max_lbset) {
            max_lbset = m[i].lbset;
        }
    }
    for (lbset = 0; lbset <= max_lbset && count == 0; lbset++) {
        uint32_t unusable = 0;

        for (i = 0; i < n; i++) {
            if (m[i].lbset != lbset || m[i].spare || m[i].standby) {
                continue;
            }
            if (sr_member_takes_new(&m[i])) {
                out[count] = (uint16_t)i;
                weights[count++] = m[i].weight ? m[i].weight : 1;
            }
            else {
                unusable++;
            }
        }
        /* hot spares replace unusable (or draining) members one for one */
        for (i = 0; i < n && unusable > 0; i++) {
            if (m[i].lbset == lbset && m[i].spare && sr_member_takes_new(&m[i])) {
                out[count] = (uint16_t)i;
                weights[count++] = m[i].weight ? m[i].weight : 1;
                unusable--;
            }
        }
        if (count > 0) {
            break;
        }
        /* nobody regular or spare in this lbset: its hot standbys, before
         * the next lbset is looked at (as mod_proxy_balancer does) */
        for (i = 0; i < n; i++) {
            if (m[i].lbset == lbset && m[i].standby && !m[i].spare
                && sr_member_takes_new(&m[i])) {
                out[count] = (uint16_t)i;
                weights[count++] = m[i].weight ? m[i].weight : 1;
                *from_standby = 1;
            }
        }
    }
    return count;
}

/* ---- cookies ----------------------------------------------------------------- */

static void complain(sr_cookie_read_t *out, sr_status_t status)
{
    /* forged outranks unknown, which outranks new */
    if (status == SR_STATUS_FORGED || out->absent == SR_STATUS_NEW) {
        out->absent = status;
    }
}

int sr_cookie_read_header(sr_cookie_read_t *out, const sr_cookie_ctx_t *ctx,
                          const char *header)
{
    sr_span_t spans[SR_COOKIES_MAX];
    size_t n, i;

    if (out->member >= 0) {
        return 1;
    }
    n = sr_cookie_find(header, ctx->name, spans, SR_COOKIES_MAX);
    for (i = 0; i < n && out->seen < SR_COOKIES_MAX; i++) {
        sr_value_t v;
        sr_verdict_t verdict;
        int32_t member;

        out->seen++;
        sr_value_parse(spans[i].ptr, spans[i].len, ctx->tag_key != NULL, &v);
        if (v.kind == SR_VALUE_LEGACY && v.session_len > 0) {
            out->foreign = 1;
        }
        verdict = sr_value_verdict(&v, ctx->tag_key, ctx->legacy_ok,
                                   ctx->balancer);
        if (verdict == SR_VERDICT_FORGED) {
            complain(out, SR_STATUS_FORGED);
            continue;
        }
        if (verdict != SR_VERDICT_ROUTE) {
            complain(out, SR_STATUS_UNKNOWN);
            continue;
        }
        member = sr_index_find(ctx->index, ctx->routes, v.route, v.route_len);
        if (member < 0 || member >= ctx->nmembers) {
            complain(out, SR_STATUS_UNKNOWN);
            continue;
        }
        out->member = member;
        out->dated = v.dated;
        out->first = v.first;
        out->last = v.last;
        out->form = v.kind != SR_VALUE_LEGACY ? SR_FORM_NATIVE
                  : v.session_len > 0 ? SR_FORM_FOREIGN : SR_FORM_STOCK;
        return 1;
    }
    return 0;
}

/* ---- lifetimes ------------------------------------------------------------- */

long sr_refresh_step(long max_idle, long rebalance_idle)
{
    long w = 0;

    if (max_idle > 0) {
        w = max_idle;
    }
    if (rebalance_idle > 0 && (w == 0 || rebalance_idle < w)) {
        w = rebalance_idle;
    }
    if (w == 0) {
        return 0;
    }
    return w / 4 > 1 ? w / 4 : 1;
}

sr_age_t sr_cookie_age(const sr_lifetime_t *lt, int dated, int64_t first,
                       int64_t last, int64_t now)
{
    if (!sr_lifetime_dated(lt)) {
        return SR_AGE_FRESH;
    }
    if (!dated) {
        return SR_AGE_REFRESH;          /* issued before dates: give some */
    }
    if (first > now + SR_CLOCK_SKEW || last > now + SR_CLOCK_SKEW
        || last < first) {
        return SR_AGE_EXPIRED;
    }
    if (lt->max_life > 0 && now - first > lt->max_life) {
        return SR_AGE_EXPIRED;
    }
    if (lt->max_idle > 0 && now - last > lt->max_idle + lt->refresh) {
        return SR_AGE_EXPIRED;
    }
    if (lt->refresh > 0 && now - last >= lt->refresh) {
        return SR_AGE_REFRESH;
    }
    return SR_AGE_FRESH;
}

static uint32_t inflight_of(const sr_member_t *m)
{
    return m->inflight ? sr_atomic_load32(m->inflight) : 0;
}

int sr_member_overloaded(const sr_member_t *m, uint32_t n, uint32_t k,
                         uint32_t factor_x100)
{
    double sum = 0.0, load_k;
    uint32_t i, count = 0;

    if (k >= n) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (m[i].usable) {
            sum += (double)inflight_of(&m[i]) / (m[i].weight ? m[i].weight : 1);
            count++;
        }
    }
    if (count == 0) {
        return 0;
    }
    load_k = (double)inflight_of(&m[k]) / (m[k].weight ? m[k].weight : 1);
    return load_k * 100.0 > (double)factor_x100 * (sum / count);
}

/* ---- the sticky decision ---------------------------------------------------- */

static void decide(sr_decision_t *d, sr_action_t action, int32_t member,
                   sr_status_t status, int issue, int64_t first,
                   const char *why)
{
    d->action = action;
    d->member = member;
    d->status = status;
    d->issue = issue;
    d->first = first;
    d->why = why;
}

/* May member k serve a client pinned to it? */
static int serves_pinned(const sr_member_t *m, uint32_t k,
                         const sr_tried_t *tried, int from_standby)
{
    return m[k].usable && !sr_tried_has(tried, k)
        && (!m[k].standby || from_standby);
}

void sr_decide_sticky(const sr_member_t *m, uint32_t n,
                      const sr_cookie_read_t *c, const sr_tried_t *tried,
                      const sr_sticky_in_t *in, sr_decision_t *d)
{
    const sr_lifetime_t *lt = in->lifetime;
    const sr_member_t *w;
    int may_write;
    int64_t now = in->now;
    int failed_here;

    /* the common case first: a native cookie naming a member that serves,
     * no dates, no application session id (the same answer as below) */
    if (c->member >= 0 && (uint32_t)c->member < n && c->app_member < 0
        && c->form == SR_FORM_NATIVE && !lt) {
        w = &m[c->member];
        if (w->usable && (!w->standby || in->from_standby)
            && !sr_tried_has(tried, (uint32_t)c->member)) {
            decide(d, SR_ACT_SERVE, c->member, SR_STATUS_HIT, 0, now,
                   "cookie names a usable member");
            return;
        }
    }
    may_write = !c->foreign;

    /* an application's session id names the member (StickyRouteSession) */
    if (c->app_member >= 0 && (uint32_t)c->app_member < n) {
        if (serves_pinned(m, (uint32_t)c->app_member, tried, in->from_standby)) {
            decide(d, SR_ACT_SERVE, c->app_member, SR_STATUS_HIT, 0, now,
                   "application session id names a usable member");
            return;
        }
        if (c->member >= 0 && (uint32_t)c->member < n
            && serves_pinned(m, (uint32_t)c->member, tried, in->from_standby)) {
            decide(d, SR_ACT_SERVE, c->member, SR_STATUS_FAILOVER, 0, now,
                   "application session id names an unusable member; the "
                   "route cookie names a usable one");
            return;
        }
        decide(d, SR_ACT_ELECT, -1, SR_STATUS_FAILOVER, may_write, now,
               "application session id names an unusable member");
        return;
    }
    if (c->member < 0 || (uint32_t)c->member >= n) {
        decide(d, SR_ACT_ELECT, -1, c->absent, may_write, now,
               c->absent == SR_STATUS_NEW ? "no cookie"
               : c->absent == SR_STATUS_FORGED ? "cookie tag missing or wrong"
               : "cookie names no member or is malformed");
        return;
    }
    w = &m[c->member];
    failed_here = sr_tried_has(tried, (uint32_t)c->member);
    if (!failed_here && w->usable) {
        if (!w->standby || in->from_standby) {
            sr_age_t age = c->form == SR_FORM_NATIVE
                ? sr_cookie_age(lt, c->dated, c->first, c->last, now)
                : SR_AGE_FRESH;
            int dated = c->dated && age != SR_AGE_EXPIRED;

            if (age == SR_AGE_EXPIRED) {
                decide(d, SR_ACT_ELECT, -1, SR_STATUS_EXPIRED, may_write, now,
                       "cookie past MaxIdle or MaxLife");
                return;
            }
            if (lt && lt->rebalance_idle > 0 && dated
                && now - c->last >= lt->rebalance_idle + lt->refresh
                && sr_member_overloaded(m, n, (uint32_t)c->member,
                                        lt->rebalance_factor)) {
                decide(d, SR_ACT_ELECT, -1, SR_STATUS_REBALANCED, may_write,
                       now, "client idle and its member overloaded");
                return;
            }
            decide(d, SR_ACT_SERVE, c->member, SR_STATUS_HIT,
                   may_write && (c->form == SR_FORM_STOCK
                                 || age == SR_AGE_REFRESH),
                   dated ? c->first : now,
                   c->form == SR_FORM_STOCK
                   ? "stock recipe cookie names a usable member"
                   : age == SR_AGE_REFRESH
                   ? "cookie names a usable member; its dates refreshed"
                   : "cookie names a usable member");
            return;
        }
        decide(d, SR_ACT_ELECT, -1, SR_STATUS_FAILOVER, may_write, now,
               "cookie names a hot standby while regular members are up");
        return;
    }
    if (w->redirect >= 0 && (uint32_t)w->redirect < n
        && m[w->redirect].usable
        && !sr_tried_has(tried, (uint32_t)w->redirect)) {
        decide(d, SR_ACT_SERVE, w->redirect, SR_STATUS_FAILOVER, may_write,
               now,
               failed_here ? "member failed in this request, its redirect= "
                             "member is usable"
                           : "member unusable, its redirect= member is usable");
        return;
    }
    if (in->nofailover) {
        decide(d, SR_ACT_REFUSE, -1, SR_STATUS_FAILOVER, 0, now,
               failed_here ? "member failed in this request and nofailover "
                             "is on"
                           : "member unusable and nofailover is on");
        return;
    }
    decide(d, SR_ACT_ELECT, -1, SR_STATUS_FAILOVER, may_write, now,
           failed_here ? "member failed in this request"
                       : "member unusable");
}

/* ---- election ---------------------------------------------------------------- */

int sr_schedule_exhausted(const sr_schedule_t *s, const sr_tried_t *tried)
{
    uint32_t i;

    for (i = 0; i < s->nmembers; i++) {
        if (!sr_tried_has(tried, s->members[i])) {
            return 0;
        }
    }
    return 1;
}

/* May member k be elected in this request (a number in range, taking new
 * sessions, not failed in this request)? */
static int electable(const sr_member_t *m, uint32_t n, uint16_t k,
                     const sr_tried_t *tried)
{
    return k < n && sr_member_takes_new(&m[k]) && !sr_tried_has(tried, k);
}

sr_elect_t sr_elect_leastbusy(const sr_schedule_t *s, uint64_t ticket,
                              const sr_member_t *m, uint32_t n,
                              const sr_tried_t *tried, int32_t *member)
{
    uint32_t i, best_in = 0, best_w = 1;
    int any = 0, ramping, best_ramping = 0;
    int32_t best = -1;
    uint16_t k;

    *member = -1;
    if (s->len == 0) {
        return SR_ELECT_NONE;
    }
    /* the ticket's slot is the turn of a member in slow start: it serves,
     * whatever its load (the schedule gives it the ramp's share) */
    k = sr_schedule_at(s, ticket);
    if (electable(m, n, k, tried) && m[k].ramping) {
        *member = k;
        return SR_ELECT_OK;
    }
    /* the least load among the eligible at full weight (else among those
     * in slow start), counting the request being placed:
     * (inflight + 1) / weight, compared as
     * (in_a + 1) * weight_b < (in_b + 1) * weight_a. The "+ 1" keeps a
     * member with a small weight from taking every new session just
     * because it is idle. */
    for (ramping = 0; ramping < 2 && !any; ramping++) {
        for (i = 0; i < s->nmembers; i++) {
            uint32_t in, w;
            k = s->members[i];
            if (!electable(m, n, k, tried) || (m[k].ramping != 0) != ramping) {
                continue;
            }
            in = inflight_of(&m[k]) + 1;
            w = m[k].weight ? m[k].weight : 1;
            if (!any || (uint64_t)in * best_w < (uint64_t)best_in * w) {
                best_in = in;
                best_w = w;
                best = k;
                best_ramping = ramping;
                any = 1;
            }
        }
    }
    if (!any) {
        for (i = 0; i < s->nmembers; i++) {
            k = s->members[i];
            if (k >= n || !sr_member_takes_new(&m[k])) {
                return SR_ELECT_STALE;
            }
        }
        return SR_ELECT_NONE;
    }
    /* the first member of that class with that load from the ticket's
     * slot on */
    for (i = 0; i < s->len; i++) {
        uint32_t w;
        k = s->slots[(ticket + i) % s->len];
        if (!electable(m, n, k, tried)
            || (m[k].ramping != 0) != best_ramping) {
            continue;
        }
        w = m[k].weight ? m[k].weight : 1;
        if ((uint64_t)(inflight_of(&m[k]) + 1) * best_w == (uint64_t)best_in * w) {
            *member = k;
            return SR_ELECT_OK;
        }
    }
    /* the loads moved meanwhile (other processes): the least seen */
    *member = best;
    return SR_ELECT_OK;
}

/* ---- waiting for a usable member ------------------------------------------- */

sr_wait_verdict_t sr_wait_decide(const sr_wait_in_t *in, int64_t *sleep,
                                 uint32_t *retry_after)
{
    int64_t secs = (in->limit + 999999) / 1000000;

    *sleep = 0;
    *retry_after = secs < 1 ? 1 : secs > UINT32_MAX ? UINT32_MAX
                                                    : (uint32_t)secs;
    if (in->limit <= 0 || in->usable > 0 || in->forced_recovery) {
        return SR_WAIT_GO;
    }
    if (in->stopping) {
        *retry_after = 1;
        return SR_WAIT_STOPPING;
    }
    if (!in->waiting && in->others >= in->max) {
        return SR_WAIT_REFUSE;
    }
    if (in->waited >= in->limit) {
        return SR_WAIT_TIMEOUT;
    }
    *sleep = in->limit - in->waited;
    if (*sleep > SR_WAIT_STEP) {
        *sleep = SR_WAIT_STEP;
    }
    return SR_WAIT_SLEEP;
}

int sr_cookie_early(const char *connection, const char *upgrade)
{
    const char *p = connection;

    if (!p || !upgrade || !*upgrade) {
        return 0;
    }
    while (*p) {
        const char *start, *end;

        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        start = p;
        while (*p && *p != ',') {
            p++;
        }
        end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }
        if (end - start == 7 && !strncasecmp(start, "upgrade", 7)) {
            return 1;
        }
    }
    return 0;
}
