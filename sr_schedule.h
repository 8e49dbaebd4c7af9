/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_schedule.h - the smooth weighted round-robin schedule (sr_schedule.c) and the
 * route index, route string -> member number (sr_route_index.c): the two
 * tables a finder looks a member up in.
 */
#ifndef SR_SCHEDULE_H
#define SR_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>
#include "apr_pools.h"

/* Upper bound of a schedule: weights are scaled down to fit. */
#define SR_SCHEDULE_MAX     8192

/* ---- smooth weighted round robin ------------------------------------ */

typedef struct {
    uint16_t *slots;   /* member numbers, in serving order */
    uint32_t len;      /* schedule length (sum of reduced weights) */
    uint32_t cap;      /* allocated slots */
    uint32_t max_members;
    uint16_t *members; /* the distinct members in it, nmembers entries */
    uint32_t nmembers;
    uint32_t *weight;  /* scratch, max_members entries */
    int64_t *score;    /* scratch, max_members entries */
} sr_schedule_t;

/* Allocates a schedule for up to max_members members. */
void sr_schedule_init(apr_pool_t *p, sr_schedule_t *s, uint32_t max_members);

/* Builds the schedule for n <= max_members members (member numbers
 * `members`, weights `weights` > 0). Weights are divided by their gcd and, when their sum
 * exceeds cap, scaled down proportionally (each at least 1). Returns the
 * length (0 when n == 0). */
uint32_t sr_schedule_build(sr_schedule_t *s, const uint16_t *members,
                           const uint32_t *weights, size_t n);

static inline uint16_t sr_schedule_at(const sr_schedule_t *s, uint64_t ticket)
{
    return s->slots[ticket % s->len];
}

/* ---- route index: route string -> member number, open addressing ---- */

typedef struct {
    int32_t *slots;     /* -1 empty, else member number */
    uint32_t mask;      /* capacity - 1, capacity a power of two */
} sr_route_index_t;

/* capacity >= 2 * max members, rounded up to a power of two. */
void sr_index_init(apr_pool_t *p, sr_route_index_t *ix, uint32_t max_members);
void sr_index_clear(sr_route_index_t *ix);
void sr_index_insert(sr_route_index_t *ix, const char *const *routes,
                     int32_t member);
/* Returns the member whose route equals route[0..len), or -1. */
int32_t sr_index_find(const sr_route_index_t *ix, const char *const *routes,
                      const char *route, size_t len);

#endif /* SR_SCHEDULE_H */
