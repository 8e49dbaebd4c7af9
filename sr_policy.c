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

#include "sr_policy.h"

/* ---- tried set ------------------------------------------------------------ */

void sr_tried_init(sr_tried_t *t, uint32_t capacity)
{
    t->capacity = capacity;
    t->count = 0;
    t->bits = NULL;
}

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
        out->form = v.kind != SR_VALUE_LEGACY ? SR_FORM_NATIVE
                  : v.session_len > 0 ? SR_FORM_FOREIGN : SR_FORM_STOCK;
        return 1;
    }
    return 0;
}

/* ---- the sticky decision ---------------------------------------------------- */

static void decide(sr_decision_t *d, sr_action_t action, int32_t member,
                   sr_status_t status, int issue, const char *why)
{
    d->action = action;
    d->member = member;
    d->status = status;
    d->issue = issue;
    d->why = why;
}

void sr_decide_sticky(const sr_member_t *m, uint32_t n,
                      const sr_cookie_read_t *c, const sr_tried_t *tried,
                      int from_standby, int nofailover, sr_decision_t *d)
{
    const sr_member_t *w;
    int may_write = !c->foreign;
    int failed_here;

    if (c->member < 0 || (uint32_t)c->member >= n) {
        decide(d, SR_ACT_ELECT, -1, c->absent, may_write,
               c->absent == SR_STATUS_NEW ? "no cookie"
               : c->absent == SR_STATUS_FORGED ? "cookie tag missing or wrong"
               : "cookie names no member or is malformed");
        return;
    }
    w = &m[c->member];
    failed_here = sr_tried_has(tried, (uint32_t)c->member);
    if (!failed_here && w->usable) {
        if (!w->standby || from_standby) {
            decide(d, SR_ACT_SERVE, c->member, SR_STATUS_HIT,
                   may_write && c->form == SR_FORM_STOCK,
                   c->form == SR_FORM_STOCK
                   ? "stock recipe cookie names a usable member"
                   : "cookie names a usable member");
            return;
        }
        decide(d, SR_ACT_ELECT, -1, SR_STATUS_FAILOVER, may_write,
               "cookie names a hot standby while regular members are up");
        return;
    }
    if (w->redirect >= 0 && (uint32_t)w->redirect < n
        && m[w->redirect].usable
        && !sr_tried_has(tried, (uint32_t)w->redirect)) {
        decide(d, SR_ACT_SERVE, w->redirect, SR_STATUS_FAILOVER, may_write,
               failed_here ? "member failed in this request, its redirect= "
                             "member is usable"
                           : "member unusable, its redirect= member is usable");
        return;
    }
    if (nofailover) {
        decide(d, SR_ACT_REFUSE, -1, SR_STATUS_FAILOVER, 0,
               failed_here ? "member failed in this request and nofailover "
                             "is on"
                           : "member unusable and nofailover is on");
        return;
    }
    decide(d, SR_ACT_ELECT, -1, SR_STATUS_FAILOVER, may_write,
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

/* ---- retries ------------------------------------------------------------------ */

int sr_retry_allowed(const sr_retry_in_t *in)
{
    if (!in->enabled || !in->idempotent || in->has_body
        || in->response_started || in->member_answered) {
        return 0;
    }
    return in->retries == 0 || (in->retries == 1 && in->last_same);
}

int32_t sr_retry_member(const sr_member_t *m, uint32_t n, int32_t failed,
                        int fresh_connection, int timed_out, int retries,
                        const sr_tried_t *tried)
{
    if (failed < 0 || (uint32_t)failed >= n || fresh_connection || timed_out
        || retries > 0 || !m[failed].usable
        || sr_tried_has(tried, (uint32_t)failed)) {
        return -1;
    }
    return failed;
}
