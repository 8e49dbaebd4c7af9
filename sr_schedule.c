/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_schedule.c - the smooth weighted round-robin schedule (see sr_schedule.h).
 */
#include <string.h>
#include <stdlib.h>

#include "apr_strings.h"

#include "sr_schedule.h"

/* ---- smooth weighted round robin ------------------------------------ */

static uint32_t gcd32(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/*
 * Smooth weighted round robin (the nginx scheduler), unrolled into a table.
 *
 * Each member carries a running score. One step adds every member's weight
 * to its score, picks the member with the highest score (the first one on a
 * tie) and takes the sum of all weights off the winner. After sum(weights)
 * steps every score is back to zero and every member has been picked exactly
 * weight times, spread as evenly as the weights allow.
 *
 *   weights   a=5 b=1 c=1 (sum 7)
 *   step      scores after adding   pick   scores after taking 7 off
 *   1          5  1  1               a      -2  1  1
 *   2          3  2  2               a      -4  2  2
 *   3          1  3  3               b       1 -4  3
 *   4          6 -3  4               a      -1 -3  4
 *   5          4 -2  5               c       4 -2 -2
 *   6          9 -1 -1               a       2 -1 -1
 *   7          7  0  0               a       0  0  0
 *
 *   schedule: a a b a c a a   (never a a a a a b c)
 *
 * The table is built once whenever the set of usable members or a weight
 * changes; serving a request is then schedule[ticket % length], where the
 * ticket comes from one atomic counter shared by every process and thread.
 * Equal weights reduce to 1 each, so k members give a table of k entries
 * and N consecutive tickets give each member floor(N/k) or ceil(N/k).
 */
void sr_schedule_init(apr_pool_t *p, sr_schedule_t *s, uint32_t max_members)
{
    if (max_members == 0) {
        max_members = 1;
    }
    s->max_members = max_members;
    s->cap = SR_SCHEDULE_MAX + max_members;
    s->slots = apr_pcalloc(p, s->cap * sizeof(uint16_t));
    s->members = apr_pcalloc(p, max_members * sizeof(uint16_t));
    s->nmembers = 0;
    s->weight = apr_pcalloc(p, max_members * sizeof(uint32_t));
    s->score = apr_pcalloc(p, max_members * sizeof(int64_t));
    s->len = 0;
}

uint32_t sr_schedule_build(sr_schedule_t *s, const uint16_t *members,
                           const uint32_t *weights, size_t n)
{
    uint32_t *w = s->weight;
    int64_t *score = s->score;
    uint64_t sum = 0;
    uint32_t g = 0, step;
    size_t i;

    s->len = 0;
    s->nmembers = 0;
    if (n > s->max_members) {
        n = s->max_members;
    }
    if (n == 0) {
        return 0;
    }
    memcpy(s->members, members, n * sizeof(uint16_t));
    s->nmembers = (uint32_t)n;
    for (i = 0; i < n; i++) {
        w[i] = weights[i] ? weights[i] : 1;
        g = gcd32(g, w[i]);
    }
    for (i = 0; i < n; i++) {
        w[i] /= g;
        sum += w[i];
    }
    if (sum > s->cap) {
        /* Scale into cap - n so that the at-least-one floor still fits. */
        uint64_t room = s->cap > n ? s->cap - n : 1;
        uint64_t newsum = 0;
        for (i = 0; i < n; i++) {
            uint64_t x = (uint64_t)w[i] * room / sum;
            w[i] = x ? (uint32_t)x : 1;
            newsum += w[i];
        }
        sum = newsum;
    }
    for (i = 0; i < n; i++) {
        score[i] = 0;
    }
    for (step = 0; step < sum; step++) {
        size_t best = 0;
        for (i = 0; i < n; i++) {
            score[i] += w[i];
            if (score[i] > score[best]) {
                best = i;
            }
        }
        score[best] -= (int64_t)sum;
        s->slots[step] = members[best];
    }
    s->len = (uint32_t)sum;
    return s->len;
}
