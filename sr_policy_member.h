/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_policy_member.h - the view of a member, the tried set, routes, takers:
 * part of sr_policy.h (include that one; the decision table of a request is
 * its opening comment).
 */
#ifndef SR_POLICY_MEMBER_H
#define SR_POLICY_MEMBER_H

#include <stddef.h>
#include <stdint.h>
#include "apr_pools.h"
#include "sr_core.h"

/* ---- the view of one member ------------------------------------------ */

typedef struct {
    const char *route;      /* the route the member is known by */
    int32_t redirect;       /* member that redirect= names, -1: none */
    int lbset;              /* lbset= */
    uint32_t weight;        /* loadfactor= (times SR_WEIGHT_SCALE and
                               ramped while in slow start), at least 1 */
    const volatile uint32_t *inflight;  /* requests it serves now, across
                               every process (shared memory); NULL: 0 */
    unsigned char usable;   /* up: not in error, not disabled, not stopped
                               (after its ap_proxy_retry_worker chance) */
    unsigned char draining; /* status +N */
    unsigned char standby;  /* hot standby, status +H */
    unsigned char spare;    /* hot spare, status +R */
    unsigned char ramping;  /* in slow start: weight is still below its
                               full value (sr_slowstart_ramping) */
} sr_member_t;

/* A member that may take a new session: usable and not draining. */
static inline int sr_member_takes_new(const sr_member_t *m)
{
    return m->usable && !m->draining;
}

/* ---- the members already tried in one request --------------------------
 * A set of member numbers of any size (a bitmap), allocated from the
 * request's pool by the first sr_tried_add (most requests never need it).
 * Members that failed in this request are in it. */
typedef struct {
    uint32_t capacity;      /* member numbers 0 .. capacity-1 */
    uint32_t count;         /* distinct members in the set */
    unsigned char *bits;    /* NULL while empty */
} sr_tried_t;

static inline void sr_tried_init(sr_tried_t *t, uint32_t capacity)
{
    t->capacity = capacity;
    t->count = 0;
    t->bits = NULL;
}

static inline int sr_tried_has(const sr_tried_t *t, uint32_t member)
{
    return t && t->bits && member < t->capacity
        && (t->bits[member / 8] & (1u << (member % 8)));
}

/* Adds member (ignored when out of range or already there). */
void sr_tried_add(apr_pool_t *p, sr_tried_t *t, uint32_t member);

/* ---- routes --------------------------------------------------------------- */

typedef enum {
    SR_ROUTE_CONFIGURED = 0,    /* route= as given */
    SR_ROUTE_DERIVED,           /* no route=: derived from the member URL */
    SR_ROUTE_DERIVED_INVALID,   /* route= a cookie cannot carry: derived */
    SR_ROUTE_DERIVED_DUPLICATE  /* route= of an earlier member: derived */
} sr_route_origin_t;

const char *sr_route_origin_name(sr_route_origin_t origin);

/* The route member `member` is known by, written to out (SR_ROUTE_MAX + 1
 * bytes): its configured route when that is a valid cookie route that no
 * earlier member (already in ix) uses, else the route derived from its URL
 * with key (a derived route an earlier member uses is kept: the URLs
 * differ, so only a hash collision could do it, and the index then finds
 * the earlier member). The caller inserts the member into ix afterwards.
 * The same members in the same order give the same routes in every
 * process and on every proxy with the same key. */
sr_route_origin_t sr_route_choose(char *out, const char *configured,
                                  const char *member_url, const sr_key_t *key,
                                  const sr_route_index_t *ix,
                                  const char *const *routes);

/* ---- who takes new sessions ------------------------------------------------
 * mod_proxy_balancer's own rule (ap_proxy_balancer_get_best_worker): lbsets
 * in ascending order; in the first lbset that yields anybody, its usable
 * members that are neither hot spare nor hot standby nor draining, plus as
 * many usable hot spares (in member order) as it has regular members that
 * are unusable or draining; when that is nobody, its usable hot standbys.
 * Writes member numbers and weights (capacity n each); *from_standby is
 * set when the takers are hot standbys. Returns how many there are. */
uint32_t sr_policy_takers(const sr_member_t *m, uint32_t n, uint16_t *out,
                          uint32_t *weights, int *from_standby);

#endif /* SR_POLICY_MEMBER_H */
