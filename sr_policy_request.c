/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_policy_request.c - questions of a request that the glue used to
 * answer itself (issue 18): the application's session id, the Set-Cookie
 * of the output filter, what log_transaction counts. Declared in
 * sr_policy_sticky.h; sr_elect_way and sr_elect_then are inline in
 * sr_policy_elect.h (every election asks them); the retry's questions are
 * in sr_policy_retry.c, a scan's in sr_policy_scan.c.
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
