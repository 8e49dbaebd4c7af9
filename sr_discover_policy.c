/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_discover_policy.c - the decisions of StickyRouteDiscover (declared in
 * sr_policy.h, with their worked examples): the plan of a resolution (which
 * member stays, goes, comes back or gives its slot to which address), when
 * the "beyond max=" warning is due, SRV priorities and weights as lbsets and
 * load factors, and when the next resolution is due; and those of the
 * health checks of discovered members (due or not, passes and fails
 * counted, the response's status, the request).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sr_policy.h"

/* ---- discovery ---------------------------------------------------------------- */

void sr_discover_plan(const sr_disc_member_t *have, uint32_t nhave,
                      const char *const *want, uint32_t nwant,
                      uint32_t free_slots, int64_t now, int64_t hold,
                      sr_disc_action_t *have_action, uint32_t *have_target,
                      sr_disc_action_t *want_action, sr_disc_counts_t *counts)
{
    uint32_t i, j;

    memset(counts, 0, sizeof(*counts));
    for (i = 0; i < nhave; i++) {
        have_action[i] = SR_DISC_KEEP;
        have_target[i] = UINT32_MAX;
    }
    for (j = 0; j < nwant; j++) {
        want_action[j] = SR_DISC_KEEP;
    }
    if (!want) {                        /* no answer: keep the last good set */
        for (i = 0; i < nhave; i++) {
            if (have[i].enabled || have[i].settle_until) {
                counts->members++;
            }
            else if (!have[i].gone_since || now - have[i].gone_since <= hold) {
                counts->held++;
            }
        }
        return;
    }
    for (i = 0; i < nhave; i++) {
        int wanted = 0;
        for (j = 0; j < nwant && !wanted; j++) {
            wanted = !strcmp(have[i].addr, want[j]);
        }
        if (wanted) {
            if (have[i].settle_until && now < have[i].settle_until) {
                have_action[i] = SR_DISC_SETTLE;
                counts->settling++;
            }
            else if (!have[i].enabled || have[i].settle_until) {
                have_action[i] = SR_DISC_ENABLE;
                counts->enable++;
            }
            counts->members++;
        }
        else if (have[i].enabled || have[i].settle_until) {
            have_action[i] = SR_DISC_DISABLE;
            counts->disable++;
            counts->held++;
        }
        else if (!have[i].gone_since || now - have[i].gone_since <= hold) {
            counts->held++;             /* gone, its hold not over */
        }
    }
    for (j = 0; j < nwant; j++) {
        int known = 0;
        for (i = 0; i < nhave && !known; i++) {
            known = !strcmp(have[i].addr, want[j]);
        }
        if (known) {
            continue;
        }
        if (free_slots > 0) {
            want_action[j] = SR_DISC_ADD;
            free_slots--;
            counts->add++;
            counts->members++;
            continue;
        }
        /* the slot of the member gone longest, past its hold */
        {
            uint32_t best = UINT32_MAX;
            for (i = 0; i < nhave; i++) {
                if (have_action[i] != SR_DISC_KEEP || have[i].enabled
                    || !have[i].gone_since || now - have[i].gone_since <= hold) {
                    continue;
                }
                if (best == UINT32_MAX
                    || have[i].gone_since < have[best].gone_since) {
                    best = i;
                }
            }
            if (best != UINT32_MAX) {
                have_action[best] = SR_DISC_REUSE;
                have_target[best] = j;
                want_action[j] = SR_DISC_REUSE;
                counts->reuse++;
                counts->members++;
            }
            else {
                want_action[j] = SR_DISC_NO_SLOT;
                counts->no_slot++;
            }
        }
    }
}

int sr_discover_warn_due(uint32_t unplaced, int64_t now, int64_t last,
                         int64_t period)
{
    return unplaced > 0 && (last == 0 || now - last >= period);
}

void sr_srv_shape(const uint16_t *priority, const uint16_t *weight,
                  uint32_t n, int *lbset, int *lbfactor)
{
    uint32_t i, j, maxw = 0;

    for (i = 0; i < n; i++) {
        int rank = 0;
        /* the number of distinct priorities below this one */
        for (j = 0; j < n; j++) {
            uint32_t k;
            int first = 1;
            if (priority[j] >= priority[i]) {
                continue;
            }
            for (k = 0; k < j && first; k++) {
                first = priority[k] != priority[j];
            }
            rank += first;
        }
        lbset[i] = rank;
        if (weight[i] > maxw) {
            maxw = weight[i];
        }
    }
    for (i = 0; i < n; i++) {
        uint32_t w = weight[i];
        if (maxw > 100) {
            w = (w * 100 + maxw / 2) / maxw;
        }
        lbfactor[i] = w ? (int)w : 1;
    }
}

int64_t sr_discover_next(int ttl_mode, int64_t interval, uint32_t min_ttl,
                         int answered)
{
    uint32_t s;

    if (!ttl_mode) {
        return interval;
    }
    if (!answered || min_ttl == UINT32_MAX) {
        s = SR_TTL_RETRY;
    }
    else {
        s = min_ttl < SR_TTL_MIN ? SR_TTL_MIN
            : min_ttl > SR_TTL_MAX ? SR_TTL_MAX : min_ttl;
    }
    return (int64_t)s * 1000000;
}

/* ---- health checks of discovered members -------------------------------------- */

int sr_hc_due(int64_t now, int64_t last, int64_t interval, int in_flight)
{
    return !in_flight && (last == 0 || now - last >= interval);
}

sr_hc_verdict_t sr_hc_count(int down, int passed, int *pcount, int *fcount,
                            int passes, int fails)
{
    if (down) {
        *fcount = 0;
        if (!passed) {
            *pcount = 0;
            return SR_HC_KEEP;
        }
        if (++*pcount >= (passes > 0 ? passes : 1)) {
            *pcount = 0;
            return SR_HC_CLEAR;
        }
        return SR_HC_KEEP;
    }
    *pcount = 0;
    if (passed) {
        *fcount = 0;
        return SR_HC_KEEP;
    }
    if (++*fcount >= (fails > 0 ? fails : 1)) {
        *fcount = 0;
        return SR_HC_SET;
    }
    return SR_HC_KEEP;
}

int sr_hc_status(const char *buf, size_t len)
{
    static const char prefix[] = "HTTP/1.";
    size_t n = sizeof(prefix) - 1, i;
    int status = 0;

    for (i = 0; i < len && i < n; i++) {
        if (buf[i] != prefix[i]) {
            return -1;
        }
    }
    if (len < n + 5) {                  /* "HTTP/1.x NNN" not all there */
        return memchr(buf, '\n', len) ? -1 : 0;
    }
    if (buf[n] < '0' || buf[n] > '9' || buf[n + 1] != ' ') {
        return -1;
    }
    for (i = n + 2; i < n + 5; i++) {
        if (buf[i] < '0' || buf[i] > '9') {
            return -1;
        }
        status = status * 10 + (buf[i] - '0');
    }
    if (status < 100) {
        return -1;
    }
    if (len > n + 5 && buf[n + 5] != ' ' && buf[n + 5] != '\r'
        && buf[n + 5] != '\n') {
        return -1;                      /* "HTTP/1.1 2000" */
    }
    return memchr(buf, '\n', len) ? status : 0;
}

long sr_hc_body_left(const char *buf, size_t len, int head, int status)
{
    size_t i, end = 0, line;
    long clen = -1;

    for (i = 0; i + 1 < len; i++) {
        if (buf[i] == '\n' && (buf[i + 1] == '\n'
                               || (buf[i + 1] == '\r' && i + 2 < len
                                   && buf[i + 2] == '\n'))) {
            end = i + (buf[i + 1] == '\n' ? 2 : 3);
            break;
        }
    }
    if (!end) {
        return -1;
    }
    if (head || status < 200 || status == 204 || status == 304) {
        return 0;
    }
    /* Content-Length: at the start of a header line */
    for (line = 0; line < end; ) {
        static const char name[] = "content-length:";
        size_t n = sizeof(name) - 1, k;
        if (end - line > n && !strncasecmp(buf + line, name, n)) {
            long v = 0;
            int digits = 0;
            for (k = line + n; k < end && (buf[k] == ' ' || buf[k] == '\t'); k++) {
            }
            for (; k < end && buf[k] >= '0' && buf[k] <= '9' && v < 100000000; k++) {
                v = v * 10 + (buf[k] - '0');
                digits++;
            }
            if (digits) {
                clen = v;
            }
        }
        while (line < end && buf[line] != '\n') {
            line++;
        }
        line++;
    }
    if (clen < 0) {
        return 0;
    }
    return clen > (long)(len - end) ? clen - (long)(len - end) : 0;
}

int sr_hc_status_passes(int status)
{
    return status >= 200 && status <= 399;
}

size_t sr_hc_request(char *out, size_t cap, const char *method,
                     const char *uri, int http11, const char *host,
                     unsigned port)
{
    int options = !strcmp(method, "OPTIONS");
    int v6 = strchr(host, ':') != NULL;
    int n;

    if (!uri || !*uri) {
        uri = "/";
    }
    n = snprintf(out, cap, "%s %s HTTP/1.%d\r\nHost: %s%s%s:%u\r\n"
                 "Connection: close\r\n\r\n", method, options ? "*" : uri,
                 http11 ? 1 : 0, v6 ? "[" : "", host, v6 ? "]" : "", port);
    if (n < 0 || (size_t)n >= cap) {
        return 0;
    }
    return (size_t)n;
}
