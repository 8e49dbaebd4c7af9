/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */


/*
 * sr_policy_scan.c - the decisions of a balancer's scan: slow start (a
 * member's weight while it ramps up, its notes down and up) and whether
 * in-flight requests are counted (see sr_policy_scan.h).
 */
#include <stdint.h>

#include "sr_policy.h"

/* ---- slow start ---------------------------------------------------------------- */

uint32_t sr_slowstart_weight(uint32_t weight, int64_t elapsed, int64_t ramp)
{
    uint64_t full = (uint64_t)(weight ? weight : 1) * SR_WEIGHT_SCALE, w;

    if (ramp <= 0 || elapsed >= ramp) {
        return (uint32_t)full;
    }
    if (elapsed <= 0) {
        return 1;
    }
    w = full * (uint64_t)elapsed / (uint64_t)ramp;
    return w ? (uint32_t)w : 1;
}

double sr_slowstart_share(int64_t elapsed, int64_t ramp)
{
    if (ramp <= 0 || elapsed >= ramp) {
        return 1.0;
    }
    if (elapsed <= 0) {
        return 0.0;
    }
    return (double)elapsed / (double)ramp;
}

int sr_slowstart_ramping(int64_t elapsed, int64_t ramp)
{
    return ramp > 0 && elapsed < ramp;
}

int64_t sr_slowstart_rescan(int64_t elapsed, int64_t ramp, int64_t interval)
{
    int64_t step, floor_step = interval / SR_SLOWSTART_STEPS;

    if (!sr_slowstart_ramping(elapsed, ramp)) {
        return interval;
    }
    step = ramp / SR_SLOWSTART_STEPS;
    if (elapsed >= 0 && ramp - elapsed < step) {
        step = ramp - elapsed;          /* look again as the ramp ends */
    }
    if (step < floor_step) {
        step = floor_step;
    }
    if (step > interval) {
        step = interval;
    }
    return step > 0 ? step : 1;
}

/* ---- in-flight accounting ------------------------------------------------ */

sr_inflight_t sr_inflight_accounting(const sr_inflight_in_t *in,
                                     const char **needed_by)
{
    const char *reader = NULL;

    if (in->elect == SR_ELECT_LEASTBUSY) {
        reader = "StickyRouteElect leastbusy";
    }
    else if (in->rebalance_idle > 0) {
        reader = "StickyRouteRebalance";
    }
    else if (in->hash_balance > 0) {
        reader = "StickyRouteHashBalance";
    }
    if (needed_by) {
        *needed_by = reader;
    }
    if (in->inflight > 0) {
        return SR_INFLIGHT_ON;
    }
    if (in->inflight == 0) {
        return reader ? SR_INFLIGHT_REFUSED : SR_INFLIGHT_OFF;
    }
    return reader ? SR_INFLIGHT_ON : SR_INFLIGHT_OFF;
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
