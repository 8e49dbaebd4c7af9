/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */


/*
 * sr_policy_retry.c - the decisions of a retry: which failures enter it,
 * whether it is allowed, on which member, what the retried request
 * inherits, and an HTTP/2 stream's broken pooled connection (see
 * sr_policy_retry.h).
 */
#include "sr_policy.h"

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

/* ---- retries after an unreached member --------------------------------------- */

int sr_retry_unreached_allowed(const sr_retry_in_t *in, int unreached)
{
    if (!in->enabled || !in->idempotent || in->has_body
        || in->response_started || in->member_answered) {
        return 0;
    }
    return unreached >= 0 && unreached < SR_RETRY_UNREACHED_MAX;
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

/* ---- a pooled connection that breaks under an HTTP/2 stream ---------------- */

int sr_retry_stream_break_possible(const sr_stream_break_in_t *in)
{
    return in->reverse && in->secondary && in->keepalives > 0;
}

int sr_retry_stream_break_as_502(const sr_stream_break_in_t *in)
{
    return sr_retry_stream_break_possible(in) && sr_retry_allowed(&in->retry);
}

/* ---- which failures enter the retry decision ------------------------------ */

sr_retry_candidate_t sr_retry_candidate(const sr_retry_status_in_t *in)
{
    if (in->done) {
        return in->ours ? SR_RETRY_BROKEN_RESPONSE : SR_RETRY_NOT;
    }
    if ((in->status != 502 && in->status != 503) || !in->ours
        || !in->decided || in->retried || in->subrequest || !in->state) {
        return SR_RETRY_NOT;
    }
    return in->status == 503 ? SR_RETRY_UNREACHED : SR_RETRY_BROKE;
}

/* ---- what a retried request inherits ----------------------------------------- */

int sr_retry_inherit(const sr_attempt_t *prev, int retry_issued,
                     int same_balancer, sr_attempt_t *out)
{
    if (!prev || !retry_issued || !same_balancer) {
        return 0;
    }
    *out = *prev;
    out->retries = prev->retries + 1;
    out->last_same = prev->retry_same >= 0;
    return 1;
}
