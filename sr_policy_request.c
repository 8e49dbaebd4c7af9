/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_policy_request.c - the questions of a request that the glue used to
 * answer itself (issue 18): the application's session id, a retry on the
 * same member, the Set-Cookie of the output filter, what log_transaction
 * counts, and slow start's notes at a scan. Declared, with the rest of the
 * decision table, in sr_policy.h; sr_elect_way and sr_elect_then are
 * inline there (every election asks them).
 */
#include <string.h>

#include "sr_policy.h"

/* ---- the application's session id ---------------------------------------- */

/* The member the session id value[0..len) names, -1: none. */
static int32_t session_member(const sr_cookie_ctx_t *ctx, const char *value,
                              size_t len)
{
    sr_span_t route;
    int32_t m;

    if (len > SR_VALUE_MAX || !sr_session_route(value, len, &route)) {
        return -1;
    }
    m = sr_index_find(ctx->index, ctx->routes, route.ptr, route.len);
    return m >= 0 && m < ctx->nmembers ? m : -1;
}

int sr_session_read_header(sr_cookie_read_t *out, const sr_cookie_ctx_t *ctx,
                           const char *name, const char *header)
{
    sr_span_t spans[SR_COOKIES_MAX];
    size_t k, found;

    if (!header || !name) {
        return 0;
    }
    found = sr_cookie_find(header, name, spans, SR_COOKIES_MAX);
    for (k = 0; k < found; k++) {
        int32_t m = session_member(ctx, spans[k].ptr, spans[k].len);
        if (m >= 0) {
            out->app_member = m;
            return 1;
        }
    }
    return 0;
}

int sr_session_read_url(sr_cookie_read_t *out, const sr_cookie_ctx_t *ctx,
                        const char *param, const char *path, const char *args)
{
    sr_span_t value;
    int32_t m;

    if (!param || !sr_url_param(path, args, param, &value)) {
        return 0;
    }
    m = session_member(ctx, value.ptr, value.len);
    if (m < 0) {
        return 0;
    }
    out->app_member = m;
    return 1;
}

/* ---- a retry on the same member -------------------------------------------- */

void sr_decide_retry_same(const sr_member_t *m, uint32_t n, int32_t same,
                          const sr_tried_t *tried, sr_status_t status,
                          int issue, int64_t first, sr_decision_t *d)
{
    d->first = first;
    if (same < 0 || (uint32_t)same >= n || !m[same].usable
        || sr_tried_has(tried, (uint32_t)same)) {
        d->action = SR_ACT_ELECT;
        d->member = -1;
        d->status = status;
        d->issue = 0;
        d->why = same < 0 ? "no retry on the same member"
                          : "the member that broke cannot take the retry";
        return;
    }
    d->action = SR_ACT_SERVE;
    d->member = same;
    d->status = status;
    d->issue = issue;
    d->why = "retry after a reused connection broke: the same member, on a "
             "fresh connection";
}

/* ---- the response's Set-Cookie ----------------------------------------------- */

int sr_cookie_due(int issue, int prepared, int decided, int error_response)
{
    return issue && prepared && decided && !error_response;
}

sr_issue_t sr_cookie_issue(int member_sets, int warned)
{
    if (!member_sets) {
        return SR_ISSUE_ADD;
    }
    return warned ? SR_ISSUE_MEMBERS : SR_ISSUE_MEMBERS_WARN;
}

/* ---- what log_transaction counts ---------------------------------------------- */

int sr_count_decision(const sr_count_in_t *in)
{
    return in->decided && !in->error_response && !in->broken && in->sent_body
        && (unsigned)in->status < SR_STATUS_COUNT;
}

/* ---- slow start at a scan ------------------------------------------------------ */

sr_slowstart_note_t sr_slowstart_note(int takes_new, int noted_down)
{
    if (!takes_new) {
        return noted_down ? SR_SLOWSTART_KEEP : SR_SLOWSTART_DOWN;
    }
    return noted_down ? SR_SLOWSTART_UP : SR_SLOWSTART_KEEP;
}

void sr_slowstart_member(const sr_slowstart_in_t *in, sr_slowstart_out_t *out)
{
    int64_t elapsed;

    out->ramping = 0;
    out->rescan = in->interval;
    if (in->ramp <= 0) {
        out->weight = in->weight ? in->weight : 1;
        return;
    }
    elapsed = in->up_since ? in->now - in->up_since : INT64_MAX;
    if (in->takes_new) {
        out->ramping = sr_slowstart_ramping(elapsed, in->ramp);
        out->rescan = sr_slowstart_rescan(elapsed, in->ramp, in->interval);
    }
    out->weight = sr_slowstart_weight(in->weight, elapsed, in->ramp);
}

/* ---- a pooled connection that breaks under an HTTP/2 stream ---------------- */

int sr_retry_stream_break_as_502(const sr_stream_break_in_t *in)
{
    return in->reverse && in->secondary && in->keepalives > 0
           && sr_retry_allowed(&in->retry);
}
