/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_policy_scan.h - the decisions of a scan: slow start, in-flight
 * accounting, when a scan is due; part of sr_policy.h (include that one; the
 * decision table of a request is its opening comment).
 */
#ifndef SR_POLICY_SCAN_H
#define SR_POLICY_SCAN_H

#include "sr_policy_elect.h"

/* ---- when a scan is due ----------------------------------------------------
 * A finder scans its balancer before it decides when the member list
 * changed since the last scan (members_seen: the count the scan saw,
 * members_now: the balancer's now) or when the time of the next scan came
 * (now >= next_scan; times in one unit). (inline: every request asks it) */
typedef struct {
    int members_seen;
    int members_now;
    int64_t now;
    int64_t next_scan;
} sr_scan_due_in_t;

static inline int sr_scan_due(const sr_scan_due_in_t *in)
{
    return in->members_seen != in->members_now || in->now >= in->next_scan;
}

/* ---- slow start -------------------------------------------------------------------
 * A member that joined or came back `elapsed` ago takes new sessions with
 * weight * elapsed / ramp (at least 1), the full weight after ramp. Weights
 * are scaled by SR_WEIGHT_SCALE while slow start is configured so that the
 * ramp has steps finer than the loadfactors. */
#define SR_WEIGHT_SCALE 1000

uint32_t sr_slowstart_weight(uint32_t weight, int64_t elapsed, int64_t ramp);
/* The share of its weight a member has now, 0.0 .. 1.0. */
double sr_slowstart_share(int64_t elapsed, int64_t ramp);
/* Is a member `elapsed` into a ramp of `ramp` still below its full weight? */
int sr_slowstart_ramping(int64_t elapsed, int64_t ramp);

/* When the weights must be computed again (the schedule rebuilt), for a
 * member `elapsed` into its ramp, a process that otherwise looks every
 * `interval`: a weight is as old as the last look, and a ramp followed
 * once a second lags it by a whole second (the first second of a member
 * that comes back at weight ~0). While a member ramps, every
 * ramp / SR_SLOWSTART_STEPS (the weight then lags the ramp by at most
 * 1/SR_SLOWSTART_STEPS of the full weight; never ahead of it), at the
 * ramp's end, but not more often than interval / SR_SLOWSTART_STEPS.
 * Example, interval 1 s: ramp 10 s: every 0.5 s, the last look at 10 s;
 * ramp 60 s: every 1 s (the interval). Not ramping: interval. All times
 * in one unit. */
#define SR_SLOWSTART_STEPS 20
int64_t sr_slowstart_rescan(int64_t elapsed, int64_t ramp, int64_t interval);

/* What a scan notes in a member's shared entry (one per member, seen by
 * every process), so that every process ramps it from the same moment:
 *
 *   it takes no new sessions (unusable, draining), not noted down    DOWN
 *   it takes new sessions again, noted down                          UP
 *   otherwise                                                        KEEP
 *
 * DOWN: set the entry's down flag. UP: clear it; the one process whose
 * compare-and-swap clears it notes up_since = now (the ramp starts). */
typedef enum {
    SR_SLOWSTART_KEEP = 0,
    SR_SLOWSTART_DOWN,
    SR_SLOWSTART_UP
} sr_slowstart_note_t;

sr_slowstart_note_t sr_slowstart_note(int takes_new, int noted_down);

typedef struct {
    uint32_t weight;        /* loadfactor=; 0 counts as 1 */
    int64_t ramp;           /* StickyRouteSlowStart; 0: off */
    int takes_new;          /* usable and not draining (sr_member_takes_new) */
    int64_t up_since;       /* when it joined or came back; 0: long ago */
    int64_t now;
    int64_t interval;       /* how often the process looks otherwise */
} sr_slowstart_in_t;

typedef struct {
    uint32_t weight;        /* for the schedule */
    int ramping;            /* still below its full weight (sr_member_t) */
    int64_t rescan;         /* look again within this (sr_slowstart_rescan) */
} sr_slowstart_out_t;

/* A member's weight at a scan. Slow start off: its loadfactor as it is
 * (unscaled), not ramping, rescan = interval. On: sr_slowstart_weight of
 * the time since up_since (0: long ago, the full weight); a member that
 * takes new sessions is ramping while below its full weight and asks for
 * the rescan its ramp needs; one that takes none is never ramping and asks
 * for nothing sooner than the interval (it is in no schedule). All times
 * in one unit. */
void sr_slowstart_member(const sr_slowstart_in_t *in, sr_slowstart_out_t *out);

/* ---- in-flight accounting: kept only when something reads it ----------------
 * Each member's in-flight count (shared memory, from the decision to the
 * end of the request, sr_inflight_move) costs every request an atomic add
 * and its release. It is kept for a balancer only when one of its
 * settings reads the counts, or when the gauge is asked for:
 *
 *   StickyRouteElect leastbusy     election by load (sr_elect_leastbusy)
 *   StickyRouteRebalance IDLE      a member's load against the mean
 *                                  (sr_member_overloaded); a rebalanced
 *                                  client is elected by load
 *   StickyRouteHashBalance FACTOR  bounded loads (sr_hash_within_bound)
 *
 *   StickyRouteInflight  a setting reads the counts   accounting
 *   not set              no                           off
 *   not set              yes                          on
 *   On                   either                       on
 *   Off                  no                           off
 *   Off                  yes                          refused (apache2 -t
 *                                                     names that setting)
 *
 * The settings, not the lbmethod, decide: balancer-manager may switch a
 * balancer's lbmethod at run time, the settings stay. Decided once per
 * balancer (sr_effective), never per request. */
typedef struct {
    sr_elect_mode_t elect;          /* StickyRouteElect */
    long rebalance_idle;            /* StickyRouteRebalance, 0: off */
    uint32_t hash_balance;          /* StickyRouteHashBalance x 100, 0: off */
    int inflight;                   /* StickyRouteInflight: 1 On, 0 Off,
                                       -1 not set */
} sr_inflight_in_t;

typedef enum {
    SR_INFLIGHT_OFF = 0,
    SR_INFLIGHT_ON = 1,
    SR_INFLIGHT_REFUSED = -1        /* Off, while *needed_by reads it */
} sr_inflight_t;

/* *needed_by (when not NULL): the first setting above that reads the
 * counts ("StickyRouteElect leastbusy", ...), NULL: none. */
sr_inflight_t sr_inflight_accounting(const sr_inflight_in_t *in,
                                     const char **needed_by);

#endif /* SR_POLICY_SCAN_H */
