/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_policy_elect.h - election (schedule, load, key) and waiting for a
 * member; part of sr_policy.h (include that one; the decision table of a
 * request is its opening comment).
 */
#ifndef SR_POLICY_ELECT_H
#define SR_POLICY_ELECT_H

#include "sr_policy_sticky.h"

/* ---- election ------------------------------------------------------------------ */

typedef enum {
    SR_ELECT_OK = 0,        /* the slot's member serves */
    SR_ELECT_TRIED,         /* it failed in this request: next ticket */
    SR_ELECT_STALE,         /* it no longer takes new sessions: the
                               schedule is out of date, rebuild it */
    SR_ELECT_NONE           /* every scheduled member failed already */
} sr_elect_t;

/* Election by load (StickyRouteElect leastbusy): among the schedule's
 * members that take new sessions and were not tried, the least loaded
 * ((in-flight requests + 1) per weight: the load with this request); ties
 * go to the first of them in the schedule from slot ticket on, so idle
 * members split new sessions exactly like the round robin.
 *
 * A member in slow start (ramping) is elected on its own turns of the
 * schedule only - the schedule carries its ramped weight - and never for
 * its load: a member that comes back has no sessions, so its in-flight
 * count stays far below its ramped weight's part, and going by load would
 * hand it a multiple of the ramp's share of new sessions (measured: 0.31
 * of them against a ramp of 0.21-0.23, 68 where the ramp gives 48). Its
 * share of new sessions is thus at most the ramp's; the other tickets go
 * by load among the members at full weight (the ramping ones only when no
 * other member is left). Example: a b c at full weight, d ramped to a
 * quarter (schedule a b c d a b c a b c a b c): d takes 1 ticket in 13, the
 * 12 others go to the least busy of a b c. O(members + schedule length). */
sr_elect_t sr_elect_leastbusy(const sr_schedule_t *s, uint64_t ticket,
                              const sr_member_t *m, uint32_t n,
                              const sr_tried_t *tried, int32_t *member);
/* Has every member of the schedule been tried? */
int sr_schedule_exhausted(const sr_schedule_t *s, const sr_tried_t *tried);

/* Election walks the shared ticket over the schedule (sr_schedule_t): the
 * member at schedule[ticket % len] serves when it still takes new sessions
 * and has not failed in this request. The retry bound counts distinct
 * members: NONE once every member of the schedule was tried. (inline: it
 * runs for every election, in the finder's fast path) */
static inline sr_elect_t sr_elect_check(const sr_schedule_t *s,
                                        uint64_t ticket,
                                        const sr_member_t *m, uint32_t n,
                                        const sr_tried_t *tried,
                                        int32_t *member)
{
    uint16_t k;

    *member = -1;
    if (s->len == 0) {
        return SR_ELECT_NONE;
    }
    k = sr_schedule_at(s, ticket);
    if (k >= n || !sr_member_takes_new(&m[k])) {
        return SR_ELECT_STALE;
    }
    if (sr_tried_has(tried, k)) {
        return sr_schedule_exhausted(s, tried) ? SR_ELECT_NONE
                                               : SR_ELECT_TRIED;
    }
    *member = k;
    return SR_ELECT_OK;
}

/* How a finder elects (StickyRouteElect roundrobin|leastbusy|hash, the
 * lbmethod, the sticky decision's status):
 *
 *   lbmethod    StickyRouteElect  status      key first  key's none:   schedule
 *                                                        schedule?     by load?
 *   sticky      roundrobin        any         no         -             no
 *   sticky      leastbusy         any         no         -             yes
 *   sticky      hash              not rebal.  yes        yes           no
 *   sticky      any               rebalanced  no         -             yes
 *   roundrobin  leastbusy         -           no         -             yes
 *   roundrobin  roundrobin, hash  -           no         -             no
 *   hash        leastbusy         -           yes        no (503)      yes
 *   hash        roundrobin, hash  -           yes        no (503)      no
 *
 * A rebalanced client (StickyRouteRebalance) goes by load whatever the
 * election, never by its key: its key would name the overloaded member it
 * is moved from. An empty key is always placed by the schedule (decision
 * roundrobin under lbmethod=hash). "By load" is sr_elect_leastbusy, else
 * the schedule's turn, sr_elect_check. (inline: every election asks it) */
typedef enum {
    SR_ELECT_ROUNDROBIN = 0,
    SR_ELECT_LEASTBUSY,
    SR_ELECT_HASH                   /* by the request key (sr_hash.h) */
} sr_elect_mode_t;

typedef enum {
    SR_LB_STICKY = 0,
    SR_LB_ROUNDROBIN,
    SR_LB_HASH
} sr_lbmethod_t;

typedef struct {
    unsigned char by_key;           /* the key's member first */
    unsigned char key_none_schedule;/* the key's member is none: the
                                       schedule (else no member) */
    unsigned char by_load;          /* the schedule's election by load */
} sr_elect_way_t;

static inline sr_elect_way_t sr_elect_way(sr_lbmethod_t lb,
                                          sr_elect_mode_t mode,
                                          sr_status_t status)
{
    sr_elect_way_t w;
    int rebalanced = lb == SR_LB_STICKY && status == SR_STATUS_REBALANCED;

    w.by_key = lb == SR_LB_HASH
               || (lb == SR_LB_STICKY && mode == SR_ELECT_HASH && !rebalanced);
    w.key_none_schedule = lb == SR_LB_STICKY;
    w.by_load = mode == SR_ELECT_LEASTBUSY || rebalanced;
    return w;
}

/* What an election does after a verdict (sr_elect_check or
 * sr_elect_leastbusy), having taken `tickets` tickets and rescanned
 * `rescans` times so far:
 *
 *   OK                                          SERVE
 *   TRIED: at most len + 1 tickets taken        NEXT (another ticket)
 *          more                                 GIVE_UP
 *   STALE: fewer than SR_ELECT_RESCANS rescans  RESCAN (same ticket)
 *          as many                              GIVE_UP
 *   NONE:  an empty schedule, no rescan yet     RESCAN (nobody took new
 *                                               sessions at the last scan:
 *                                               look again once)
 *          otherwise                            GIVE_UP
 *
 * len: the schedule's length now. The caller counts a RESCAN in rescans.
 * (inline: every election asks it) */
#define SR_ELECT_RESCANS 2

typedef enum {
    SR_ELECT_GO_SERVE = 0,
    SR_ELECT_GO_NEXT,
    SR_ELECT_GO_RESCAN,
    SR_ELECT_GO_GIVE_UP
} sr_elect_go_t;

static inline sr_elect_go_t sr_elect_then(sr_elect_t verdict, uint32_t len,
                                          uint32_t tickets, uint32_t rescans)
{
    switch (verdict) {
    case SR_ELECT_OK:
        return SR_ELECT_GO_SERVE;
    case SR_ELECT_TRIED:
        return tickets > len + 1 ? SR_ELECT_GO_GIVE_UP : SR_ELECT_GO_NEXT;
    case SR_ELECT_STALE:
        return rescans >= SR_ELECT_RESCANS ? SR_ELECT_GO_GIVE_UP
                                           : SR_ELECT_GO_RESCAN;
    case SR_ELECT_NONE:
    default:
        return len == 0 && rescans < 1 ? SR_ELECT_GO_RESCAN
                                       : SR_ELECT_GO_GIVE_UP;
    }
}

/* ---- the election's loop ---------------------------------------------------
 * One election, as the finders run it: take a ticket, get the verdict for
 * it (step), then sr_elect_then's next step - serve, another ticket, a
 * rescan with the same ticket (rescan), or give up. step(ctx, fresh, &len,
 * &member): takes a new ticket when fresh (else asks the same ticket again,
 * after a rescan), returns the verdict (sr_elect_check or
 * sr_elect_leastbusy) with the schedule's length now and the member;
 * rescan(ctx) rebuilds the schedule. Returns the member, -1: none. The
 * glue (sr_elect, mod_sticky_route_find.c) and the unit tests run this
 * same loop. (inline: with the callbacks known where it is called, the
 * compiler inlines them too - the finder's fast path) */
typedef sr_elect_t (*sr_elect_step_fn)(void *ctx, int fresh, uint32_t *len,
                                       int32_t *member);
typedef void (*sr_elect_rescan_fn)(void *ctx);

static inline int32_t sr_elect_run(sr_elect_step_fn step,
                                   sr_elect_rescan_fn rescan, void *ctx)
{
    uint32_t tickets = 0, rescans = 0;
    int fresh = 1;

    for (;;) {
        int32_t m;
        uint32_t len;
        sr_elect_t verdict;

        if (fresh) {
            tickets++;
        }
        verdict = step(ctx, fresh, &len, &m);
        switch (sr_elect_then(verdict, len, tickets, rescans)) {
        case SR_ELECT_GO_SERVE:
            return m;
        case SR_ELECT_GO_NEXT:
            fresh = 1;
            continue;
        case SR_ELECT_GO_RESCAN:
            rescans++;
            rescan(ctx);
            fresh = 0;
            continue;
        case SR_ELECT_GO_GIVE_UP:
        default:
            return -1;
        }
    }
}

/* ---- the key's member when the map is stale (lbmethod=hash) ------------------
 * sr_hash_choose says whether the key's map was stale (a member found
 * unusable since the scan); having rescanned `rescans` times so far:
 *
 *   not stale                                   SERVE (its answer)
 *   stale, fewer than SR_HASH_RESCANS rescans   RESCAN, then ask the key again
 *   stale, as many                              SERVE (the answer of the map
 *                                               as the last rescan built it)
 *
 * The caller counts a RESCAN in rescans. (inline: every election by key
 * asks it) */
#define SR_HASH_RESCANS 1

typedef enum {
    SR_HASH_GO_SERVE = 0,
    SR_HASH_GO_RESCAN
} sr_hash_go_t;

static inline sr_hash_go_t sr_hash_then(int stale, uint32_t rescans)
{
    return stale && rescans < SR_HASH_RESCANS ? SR_HASH_GO_RESCAN
                                              : SR_HASH_GO_SERVE;
}

/* ---- waiting for a usable member (StickyRouteWait) -------------------------
 * A request to a balancer none of whose members is usable (a discovered
 * pool still empty, a single replica between its old and new task, every
 * member disabled) waits for one, looking again every SR_WAIT_STEP, instead
 * of failing at once. It asks sr_wait_decide before it waits and after each
 * step:
 *
 *   a member is usable, or waiting is off        GO (proceed as usual)
 *   mod_proxy_balancer will force the recovery   GO (its forcerecovery: every
 *     of members that are merely in error           member in error is retried
 *                                                   at once, as without us)
 *   the process is stopping                      STOPPING (503 now)
 *   not waiting yet, max= others wait already    REFUSE (503 now)
 *   waited the limit                             TIMEOUT (503 now)
 *   otherwise                                    SLEEP (the rest of the limit,
 *                                                   at most SR_WAIT_STEP)
 *
 * Example, StickyRouteWait 2 max=1, no member usable: request A is alone
 * -> SLEEP 50 ms, ... ; request B meanwhile (others 1 >= max 1) -> REFUSE;
 * a member becomes usable at 0.8 s -> A's next look: GO; had none come,
 * A's look at 2 s -> TIMEOUT. A 503 carries Retry-After: the limit in whole
 * seconds (at least 1), or 1 when the process is stopping (another process
 * or replica takes over). Times in microseconds. */
#define SR_WAIT_STEP 50000          /* 50 ms */

typedef enum {
    SR_WAIT_GO = 0,
    SR_WAIT_SLEEP,
    SR_WAIT_REFUSE,         /* no place left to wait (max=) */
    SR_WAIT_TIMEOUT,        /* waited the limit */
    SR_WAIT_STOPPING        /* the process is stopping */
} sr_wait_verdict_t;

typedef struct {
    int64_t limit;          /* StickyRouteWait; 0: off */
    uint32_t max;           /* requests of the process that may wait at once */
    uint32_t usable;        /* members usable now */
    int forced_recovery;    /* mod_proxy_balancer will force the recovery of
                               members in error, and that makes one usable */
    int waiting;            /* this request holds a place already */
    uint32_t others;        /* places other requests of the process hold */
    int64_t waited;         /* how long this request has waited so far */
    int stopping;           /* the process is stopping (graceful stop or
                               restart) */
} sr_wait_in_t;

/* The verdict; *sleep (SLEEP: how long) and *retry_after (REFUSE, TIMEOUT,
 * STOPPING: seconds for the Retry-After header) are set with it. */
sr_wait_verdict_t sr_wait_decide(const sr_wait_in_t *in, int64_t *sleep,
                                 uint32_t *retry_after);

#endif /* SR_POLICY_ELECT_H */
