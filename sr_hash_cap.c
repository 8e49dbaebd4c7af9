/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_hash_cap.c - the lbmethod=hash map's cap and floor: each member's
 * share of the buckets kept within its bounds (steps 3-4 of the
 * algorithm in sr_hash.c): owner[] made from the rendezvous winners
 * (first[], sr_hash_build.c). Layout: sr_hash_map.h.
 */
#include <math.h>
#include <string.h>

#include "sr_hash_map.h"

/* The rendezvous winner of bucket b over the members under their cap:
 * per group of equal weight the largest u wins (the key is monotone in
 * u), then one logarithm per group. (The evicted buckets of sr_hash_map_cap;
 * bucket winners over all members: first_of_block, the same order.) */
static uint16_t best_under_cap(const sr_hash_map_t *map, uint32_t b)
{
    uint64_t seed = bucket_seed(b);
    double best_k = 0, best_u = 0;
    uint64_t best_id = 0;
    uint16_t best = SR_HASH_NONE;
    uint32_t g;

    for (g = 0; g < map->ngroups; g++) {
        uint32_t i = map->group_start[g], end = map->group_start[g + 1];
        uint64_t gx = 0, gid = 0;
        uint32_t gi = end;
        double u, k;

        for (; i < end; i++) {
            uint64_t x;
            if (map->count[map->m[i].member] >= map->cap[map->m[i].member]) {
                continue;
            }
            x = pair_hash(seed, map->m[i].id);
            /* equal u: the smaller id (ids ascend within a group) */
            if (gi == end || (x >> 11) > (gx >> 11)) {
                gx = x;
                gi = i;
                gid = map->m[i].id;
            }
        }
        if (gi == end) {
            continue;
        }
        u = to_unit(gx);
        k = rank_key(u, map->m[gi].weight);
        if (best == SR_HASH_NONE || before(k, u, gid, best_k, best_u, best_id)) {
            best = map->m[gi].member;
            best_k = k;
            best_u = u;
            best_id = gid;
        }
    }
    return best;
}

/* The heap's order: (key, bucket), smallest first. */
static inline int evict_less(const sr_hash_evict_t *a, const sr_hash_evict_t *b)
{
    return a->key < b->key || (a->key == b->key && a->bucket < b->bucket);
}

/* A bounded heap that keeps the `want` items of smallest (v, bucket);
 * its root is the largest of those kept. Not full: the item goes in at
 * the bottom and moves up past smaller parents; full: an item smaller
 * than the root replaces it and moves down past larger children. Both
 * end with the item in the hole they leave. */
static uint32_t heap_offer(sr_hash_evict_t *heap, uint32_t h, uint32_t want,
                           double v, uint32_t bucket)
{
    sr_hash_evict_t e;
    uint32_t c;

    e.key = v;
    e.bucket = bucket;
    if (h < want) {
        for (c = h++; c > 0 && evict_less(&heap[(c - 1) / 2], &e);
             c = (c - 1) / 2) {
            heap[c] = heap[(c - 1) / 2];
        }
    }
    else if (h > 0 && evict_less(&e, &heap[0])) {
        for (c = 0;;) {
            uint32_t s = 2 * c + 1;
            if (s + 1 < h && evict_less(&heap[s], &heap[s + 1])) {
                s++;                    /* the larger child */
            }
            if (s >= h || !evict_less(&e, &heap[s])) {
                break;
            }
            heap[c] = heap[s];
            c = s;
        }
    }
    else {
        return h;
    }
    heap[c] = e;
    return h;
}

/* A member's quota of buckets, (1000 + permille)/1000 x its fair share,
 * rounded up (round_up) or down. */
static uint64_t quota(const sr_hash_map_t *map, uint32_t weight,
                      uint64_t total_w, int permille, int round_up)
{
    uint64_t num = (uint64_t)(1000 + permille) * map->nb * weight;
    uint64_t den = 1000 * total_w;

    return round_up ? (num + den - 1) / den : num / den;
}

/*
 * The cap and the floor: owner[] from first[] (sr_hash.c's opening
 * comment). One member's own order over buckets is its u (the key is monotone
 * in u for one weight), so no logarithm is needed to pick its worst or
 * best buckets. Every step goes in a fixed order (members by weight and
 * id, buckets by number): the result depends on the member set only.
 */
void sr_hash_map_cap(sr_hash_map_t *map)
{
    uint64_t total_w = 0;
    uint32_t i, b;
    int cap = SR_HASH_CAP;

    /* without a floor (large balancers, few buckets per member) the cap
     * sits at least 2 binomial sigmas above the mean share (sigma/mean =
     * 1/sqrt(buckets per member)), so that few buckets leave their first
     * member and the update stays cheap */
    if (map->n > 0 && map->nb < (uint64_t)SR_HASH_FLOOR_MIN * map->n) {
        double per = (double)map->nb / map->n, c = 2000.0 / sqrt(per);
        if (c > cap) {
            cap = (int)(c + 0.999);
        }
    }

    for (i = 0; i < map->n; i++) {
        map->count[map->m[i].member] = 0;
        total_w += map->m[i].weight;
    }
    if (map->n == 0) {
        memcpy(map->owner, map->first, map->nb * sizeof(uint16_t));
        return;
    }
    for (b = 0; b < map->nb; b++) {
        uint16_t o = map->first[b];     /* a member: n > 0 */
        map->owner[b] = o;
        map->count[o]++;
    }
    for (i = 0; i < map->n; i++) {
        uint16_t mm = map->m[i].member;
        map->cap[mm] = quota(map, map->m[i].weight, total_w, cap, 1);
        map->floor[mm] = map->nb >= (uint64_t)SR_HASH_FLOOR_MIN * map->n
                         ? quota(map, map->m[i].weight, total_w,
                                 -SR_HASH_FLOOR, 0)
                         : 0;
    }
    /* cap: a member over it gives up its worst buckets (smallest u);
     * one pass over the buckets serves every member over its cap whose
     * excess fits the heap space (more passes if not) */
    for (;;) {
        uint32_t used = 0, active = 0, k;

        for (i = 0; i < map->n; i++) {
            uint16_t mm = map->m[i].member;
            uint32_t want;
            map->hcap[mm] = 0;
            if (map->count[mm] <= map->cap[mm]) {
                continue;
            }
            want = map->count[mm] - (uint32_t)map->cap[mm];
            if (used + want > SR_HASH_HEAP) {
                if (used > 0) {
                    continue;
                }
                want = SR_HASH_HEAP;
            }
            map->hoff[mm] = used;
            map->hcap[mm] = want;
            map->hlen[mm] = 0;
            used += want;
            active++;
        }
        if (active == 0) {
            break;
        }
        for (b = 0; b < map->nb; b++) {
            uint16_t o = map->owner[b];
            if (o != SR_HASH_NONE && map->hcap[o]) {
                map->hlen[o] = heap_offer(map->heap + map->hoff[o],
                                          map->hlen[o], map->hcap[o],
                                          to_unit(pair_hash(bucket_seed(b),
                                                            map->id[o])), b);
            }
        }
        for (i = 0; i < map->n; i++) {
            uint16_t mm = map->m[i].member;
            if (!map->hcap[mm]) {
                continue;
            }
            for (k = 0; k < map->hlen[mm]; k++) {
                map->owner[map->heap[map->hoff[mm] + k].bucket] = SR_HASH_NONE;
            }
            map->count[mm] -= map->hlen[mm];
            map->hcap[mm] = 0;
        }
    }
    /* evicted buckets, in bucket order, to their best member under cap */
    for (b = 0; b < map->nb; b++) {
        uint16_t best;

        if (map->owner[b] != SR_HASH_NONE) {
            continue;
        }
        best = best_under_cap(map, b);
        map->owner[b] = best;
        if (best != SR_HASH_NONE) {
            map->count[best]++;
        }
    }
    /* floor: a member under it takes its best buckets (largest u) from
     * members above their own floor */
    for (i = 0; i < map->n; i++) {
        uint16_t mm = map->m[i].member;
        uint64_t id = map->m[i].id;

        while (map->count[mm] < map->floor[mm]) {
            uint32_t want = (uint32_t)map->floor[mm] - map->count[mm], h = 0;
            uint32_t k, took = 0;

            if (want > SR_HASH_HEAP) {
                want = SR_HASH_HEAP;
            }
            for (b = 0; b < map->nb; b++) {
                uint16_t o = map->owner[b];
                if (o != mm && o != SR_HASH_NONE
                    && map->count[o] > map->floor[o]) {
                    h = heap_offer(map->heap, h, want,
                                   -to_unit(pair_hash(bucket_seed(b), id)), b);
                }
            }
            for (k = 0; k < h; k++) {
                uint32_t bk = map->heap[k].bucket;
                uint16_t o = map->owner[bk];
                if (map->count[o] > map->floor[o]) {
                    map->owner[bk] = mm;
                    map->count[o]--;
                    map->count[mm]++;
                    took++;
                }
            }
            if (took == 0) {
                break;
            }
        }
    }
}
