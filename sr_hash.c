/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_hash.c - the key -> member mapping of lbmethod=hash (see sr_hash.h).
 *
 * Algorithm: weighted rendezvous hashing over a table of buckets, with
 * each member's share capped.
 *
 *   1. A key's 64-bit hash (keyed SipHash) picks one of B = 2^bits buckets
 *      by its top bits; the request goes to owner[bucket]: one load.
 *   2. Each bucket b ranks the members by the weighted rendezvous key
 *          key(b, m) = -ln(u(b, m)) / weight(m),
 *          u(b, m)   = a 64-bit mix of (seed(b) xor id(m)) mapped into (0, 1)
 *      smallest first (ties: larger u, then smaller id); id(m) is a hash of
 *      the member's route. -ln(u)/w is an exponential variable of rate w,
 *      so member m ranks first with probability w(m) / sum(w) exactly
 *      (Schindelhauer and Schomaker, "Weighted distributed hash tables",
 *      SPAA 2005; Thaler and Ravishankar's HRW, 1998, for equal weights).
 *      first[b] is the first of that order.
 *   3. Cap: no member keeps more than ceil(1.02 x B x w(m) / sum(w))
 *      buckets; a member over it gives up its buckets with the largest
 *      keys, and those buckets (in bucket order) go to their next member
 *      in their own order that is under its cap: owner[b].
 *   4. Floor (up to 256 members: 4096 buckets per member or more): a
 *      member below floor(0.975 x its fair share) takes the buckets it
 *      ranks best on (largest u) from members above their own floor.
 *
 * Why: rendezvous ranks are a pure function of the set of (route, weight),
 * so every child process and proxy replica builds the same table whatever
 * the configuration order or the history of changes; removing a member
 * moves only its buckets, each to the bucket's next member (the minimum),
 * and adding one moves only the buckets it now ranks first on. Alone,
 * rendezvous over B buckets balances only as well as a binomial does (the
 * max of 100 members about 2.5 sigma above the mean); the cap bounds the
 * largest share at 1.02 x the fair one (the floor the smallest at 0.975)
 * and moves only the few buckets beyond them (at ~4096 buckets per member
 * the cap sits ~1.5 sigma above the fair share: ~0.1 % of the space is
 * not on its first member, and that part barely changes). Against
 * the anchors: ketama rings (nginx `hash consistent`, HAProxy lb_chash
 * with its bounded-load walk, Envoy ring_hash) balance to ~1/sqrt(points
 * per member) and need many points for 5 %; Maglev (Eisenbud et al.,
 * NSDI 2016) balances exactly but moves about twice the minimum on a
 * removal; plain rendezvous (Caddy, Traefik hrw) is exact in disruption
 * but costs O(members) hashes per request. Here the per-request cost is
 * one SipHash and one load; the O(members) rendezvous work is spent when
 * the members change (per bucket: first[] kept up to date incrementally)
 * and on the rare walks to a key's next choices (failover, bounded loads).
 *
 * Worked example (B = 8, members a b c of weights 1 1 2; the ranks are
 * made up for the example, left to right):
 *   bucket 0: c a b   1: a c b   2: c b a   3: b c a
 *   bucket 4: c a b   5: c b a   6: a b c   7: c a b
 *   first: c a c b c c a c -> c owns 5 buckets, cap ceil(1.02*8*2/4) = 5
 *   c down: 0 -> a, 2 -> b, 4 -> a, 5 -> b, 7 -> a; 1 3 6 keep theirs.
 *
 * Measured (2026-12-04, this 2-core VM shared with other jobs, load 3-6;
 * exact shares read from the table by tests/unit/test_sr_hash.c, times by
 * bench/micro/hash_bench.c, gcc -O2):
 *
 *   members  buckets  max/mean  weights 1..4   removal: moved    addition:
 *                     (equal)   worst dev.     beyond its share  beyond 1/(N+1)
 *   10       2^16     1.020     2.5 %          +0.02 %           +0.06 %
 *   100      2^19     1.020     2.5 %          +0.02 %           +0.01 %
 *
 *   members  select (SipHash  next choice  first build  update after one
 *            + one load)      (walk step)  (per process) leave / join / reweight
 *   10       16-50 ns         0.2-0.6 us   3-9 ms       0.4 / 0.6 / 1.5-4 ms
 *   100      21-40 ns         1.3-3.5 us   130-260 ms   8-26 / 8-25 / 14-42 ms
 *   1000     24-52 ns         17-21 us     3.2-5.1 s    8-49 / 23-43 / 36-68 ms
 *
 * The first build of a balancer with hundreds of members is the expensive
 * part (the parent does it at post_config, and the children inherit the
 * map: mod_sticky_route_hash.c); the floor (step 4)
 * applies up to 256 members, and above that the cap widens to 2 sigmas,
 * so the updates of large balancers stay near the 50 ms budget.
 *
 * Memory per balancer and child process: 2 x 2 bytes per bucket (first[],
 * owner[]) plus ~60 bytes per member slot (the balancer's members plus its
 * growth=): 256 KiB up to 16 slots, 512 KiB up to 32, 1 MiB up to 64,
 * 2 MiB up to 128, 4 MiB (2^20 buckets, the most) beyond.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apr_siphash.h"

#include "sr_hash.h"

#define SR_HASH_NONE 0xffffu
/* evictions per round of the cap (a bounded heap; more rounds if needed) */
#define SR_HASH_HEAP 16384

typedef struct {
    double key;
    uint32_t bucket;
} sr_hash_evict_t;

struct sr_hash_map_t {
    uint32_t bits;
    uint32_t nb;                /* buckets: 1 << bits */
    uint32_t max;               /* member numbers 0 .. max-1 */
    uint16_t *first;            /* per bucket: rendezvous winner */
    uint16_t *owner;            /* per bucket: after the cap */
    uint32_t n;                 /* members */
    sr_hash_member_t *m;        /* members by (weight, id): groups */
    uint32_t ngroups;
    uint32_t *group_start;      /* per group: first index in m; [ngroups] = n */
    int present_any;            /* built once */
    /* per member number */
    unsigned char *present;
    unsigned char *changed;     /* scratch of an update */
    uint64_t *id;
    uint32_t *weight;
    uint32_t *count;            /* buckets owned */
    uint64_t *cap;
    uint64_t *floor;
    uint32_t *hoff, *hcap, *hlen;   /* per member: its part of heap[] */
    /* scratch */
    sr_hash_member_t *scratch;
    sr_hash_evict_t *heap;
};

/* ---- hashing -------------------------------------------------------------- */

/* MurmurHash3's 64-bit finaliser (as in splitmix64): full avalanche. */
static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static inline uint64_t bucket_seed(uint32_t b)
{
    return mix64(((uint64_t)b + 1) * 0x9e3779b97f4a7c15ull);
}

static inline uint64_t pair_hash(uint64_t seed, uint64_t id)
{
    return mix64(seed ^ id);
}

/* (0, 1), never 0 nor 1 */
static inline double to_unit(uint64_t x)
{
    return ((double)(x >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static inline double rank_key(double u, uint32_t weight)
{
    return -log(u) / (double)weight;
}

/* The rendezvous order: is (k1, u1, id1) before (k2, u2, id2)? */
static inline int before(double k1, double u1, uint64_t id1,
                         double k2, double u2, uint64_t id2)
{
    if (k1 != k2) {
        return k1 < k2;
    }
    if (u1 != u2) {
        return u1 > u2;
    }
    return id1 < id2;
}

uint64_t sr_hash_id(const char *route, size_t len)
{
    static const unsigned char k[APR_SIPHASH_KSIZE] = "sticky-route-hid";

    return apr_siphash24(route, len, k);
}

uint64_t sr_hash_key(const char *key, size_t len, const sr_key_t *k)
{
    return apr_siphash24(key, len, k->bytes);
}

/* ---- the map ---------------------------------------------------------------- */

sr_hash_map_t *sr_hash_map_create(apr_pool_t *p, uint32_t max, uint32_t bits)
{
    sr_hash_map_t *map = apr_pcalloc(p, sizeof(*map));
    uint32_t i;

    if (max < 1) {
        max = 1;
    }
    if (max > SR_HASH_NONE) {
        max = SR_HASH_NONE;
    }
    if (bits == 0) {
        uint32_t lg = 0;
        while ((1u << lg) < max) {
            lg++;
        }
        bits = lg + 12;
        if (bits < SR_HASH_BITS_MIN) {
            bits = SR_HASH_BITS_MIN;
        }
    }
    if (bits < 4) {
        bits = 4;               /* tests and the fuzzer ask for small maps */
    }
    if (bits > SR_HASH_BITS_MAX) {
        bits = SR_HASH_BITS_MAX;
    }
    map->bits = bits;
    map->nb = 1u << bits;
    map->max = max;
    map->first = apr_palloc(p, map->nb * sizeof(uint16_t));
    map->owner = apr_palloc(p, map->nb * sizeof(uint16_t));
    for (i = 0; i < map->nb; i++) {
        map->first[i] = map->owner[i] = SR_HASH_NONE;
    }
    map->m = apr_pcalloc(p, max * sizeof(sr_hash_member_t));
    map->scratch = apr_pcalloc(p, max * sizeof(sr_hash_member_t));
    map->group_start = apr_pcalloc(p, (max + 1) * sizeof(uint32_t));
    map->present = apr_pcalloc(p, max);
    map->changed = apr_pcalloc(p, max);
    map->id = apr_pcalloc(p, max * sizeof(uint64_t));
    map->weight = apr_pcalloc(p, max * sizeof(uint32_t));
    map->count = apr_pcalloc(p, max * sizeof(uint32_t));
    map->cap = apr_pcalloc(p, max * sizeof(uint64_t));
    map->floor = apr_pcalloc(p, max * sizeof(uint64_t));
    map->hoff = apr_pcalloc(p, max * sizeof(uint32_t));
    map->hcap = apr_pcalloc(p, max * sizeof(uint32_t));
    map->hlen = apr_pcalloc(p, max * sizeof(uint32_t));
    map->heap = apr_palloc(p, SR_HASH_HEAP * sizeof(sr_hash_evict_t));
    return map;
}

uint32_t sr_hash_map_count(const sr_hash_map_t *map)
{
    return map->n;
}

uint32_t sr_hash_map_buckets(const sr_hash_map_t *map)
{
    return map->nb;
}

static int member_cmp(const void *a, const void *b)
{
    const sr_hash_member_t *x = a, *y = b;

    if (x->weight != y->weight) {
        return x->weight < y->weight ? -1 : 1;
    }
    if (x->id != y->id) {
        return x->id < y->id ? -1 : 1;
    }
    return 0;
}

/* The rendezvous winner of bucket b over all members: per group of equal
 * weight the largest u wins (the key is monotone in u), then one
 * logarithm per group. */
static uint16_t best_of(const sr_hash_map_t *map, uint32_t b, int under_cap)
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
            if (under_cap && map->count[map->m[i].member]
                             >= map->cap[map->m[i].member]) {
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

static void set_members(sr_hash_map_t *map, const sr_hash_member_t *m,
                        uint32_t n)
{
    uint32_t i;

    memcpy(map->m, m, n * sizeof(*m));
    qsort(map->m, n, sizeof(*m), member_cmp);
    map->n = n;
    map->ngroups = 0;
    for (i = 0; i < n; i++) {
        if (i == 0 || map->m[i].weight != map->m[i - 1].weight) {
            map->group_start[map->ngroups++] = i;
        }
    }
    map->group_start[map->ngroups] = n;
}

/* A bounded heap that keeps the `want` items of smallest (v, bucket);
 * its root is the largest of those kept. */
static uint32_t heap_offer(sr_hash_evict_t *heap, uint32_t h, uint32_t want,
                           double v, uint32_t bucket)
{
    uint32_t c;

#define SR_HEAP_LESS(a_v, a_b, b_v, b_b) \
    ((a_v) < (b_v) || ((a_v) == (b_v) && (a_b) < (b_b)))
    if (h < want) {
        for (c = h++; c > 0; ) {
            uint32_t parent = (c - 1) / 2;
            if (!SR_HEAP_LESS(heap[parent].key, heap[parent].bucket, v, bucket)) {
                break;
            }
            heap[c] = heap[parent];
            c = parent;
        }
        heap[c].key = v;
        heap[c].bucket = bucket;
        return h;
    }
    if (h == 0 || !SR_HEAP_LESS(v, bucket, heap[0].key, heap[0].bucket)) {
        return h;
    }
    for (c = 0;;) {
        uint32_t l = 2 * c + 1, r = l + 1, s = c;
        double sv = v;
        uint32_t sb = bucket;
        if (l < h && SR_HEAP_LESS(sv, sb, heap[l].key, heap[l].bucket)) {
            s = l;
            sv = heap[l].key;
            sb = heap[l].bucket;
        }
        if (r < h && SR_HEAP_LESS(sv, sb, heap[r].key, heap[r].bucket)) {
            s = r;
        }
        if (s == c) {
            break;
        }
        heap[c] = heap[s];
        c = s;
    }
    heap[c].key = v;
    heap[c].bucket = bucket;
    return h;
#undef SR_HEAP_LESS
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
 * The cap and the floor: owner[] from first[] (see the comment at the
 * top). One member's own order over buckets is its u (the key is monotone
 * in u for one weight), so no logarithm is needed to pick its worst or
 * best buckets. Every step goes in a fixed order (members by weight and
 * id, buckets by number): the result depends on the member set only.
 */
static void apply_cap(sr_hash_map_t *map)
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

    memcpy(map->owner, map->first, map->nb * sizeof(uint16_t));
    for (i = 0; i < map->n; i++) {
        map->count[map->m[i].member] = 0;
        total_w += map->m[i].weight;
    }
    if (map->n == 0) {
        return;
    }
    for (b = 0; b < map->nb; b++) {
        map->count[map->owner[b]]++;
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
        best = best_of(map, b, 1);
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

uint32_t sr_hash_map_update(sr_hash_map_t *map, const sr_hash_member_t *m,
                            uint32_t n)
{
    uint32_t i, k, b, changes = 0, nadded = 0;
    int full;

    memset(map->changed, 0, map->max);
    /* what changed, by member number: 1 removed (or reweighted), 2 added */
    for (i = 0, k = 0; i < n; i++) {
        uint16_t mm = m[i].member;

        if (mm >= map->max || (map->changed[mm] & 4)) {
            continue;                   /* out of range, or twice */
        }
        map->scratch[k] = m[i];
        if (map->scratch[k].weight == 0) {
            map->scratch[k].weight = 1;
        }
        map->changed[mm] |= 4;          /* in the new set */
        if (!map->present[mm] || map->id[mm] != m[i].id) {
            map->changed[mm] |= map->present[mm] ? 3 : 2;
        }
        else if (map->scratch[k].weight > map->weight[mm]) {
            map->changed[mm] |= 2;      /* heavier: it keeps its buckets
                                           and may win more */
        }
        else if (map->scratch[k].weight < map->weight[mm]) {
            map->changed[mm] |= 1;      /* lighter: it may lose some of
                                           its buckets, wins none */
        }
        k++;
    }
    n = k;
    for (i = 0; i < map->max; i++) {
        if (map->present[i] && !(map->changed[i] & 4)) {
            map->changed[i] |= 1;       /* left */
        }
        if (map->changed[i] & 3) {
            changes++;
        }
        if (map->changed[i] & 2) {
            nadded++;
        }
    }
    if (changes == 0 && map->present_any) {
        return 0;
    }
    full = !map->present_any || changes * 4 > map->n + n || map->n == 0;
    set_members(map, map->scratch, n);
    for (i = 0; i < map->max; i++) {
        map->present[i] = 0;
    }
    for (i = 0; i < n; i++) {
        uint16_t mm = map->m[i].member;
        map->present[mm] = 1;
        map->id[mm] = map->m[i].id;
        map->weight[mm] = map->m[i].weight;
    }
    map->present_any = 1;
    if (n == 0) {
        for (b = 0; b < map->nb; b++) {
            map->first[b] = map->owner[b] = SR_HASH_NONE;
        }
        return changes;
    }
    if (full) {
        for (b = 0; b < map->nb; b++) {
            map->first[b] = best_of(map, b, 0);
        }
    }
    else {
        /* buckets whose winner left (or changed weight): the best of the
         * new set */
        for (b = 0; b < map->nb; b++) {
            uint16_t f = map->first[b];
            if (f == SR_HASH_NONE || (map->changed[f] & 1)) {
                map->first[b] = best_of(map, b, 0);
            }
        }
        /* members that joined (or changed weight): the buckets they now
         * rank first on */
        for (i = 0; i < n && nadded > 0; i++) {
            uint16_t a = map->m[i].member;
            uint64_t aid = map->m[i].id;
            uint32_t aw = map->m[i].weight;

            if (!(map->changed[a] & 2)) {
                continue;
            }
            for (b = 0; b < map->nb; b++) {
                uint16_t f = map->first[b];
                uint64_t seed, xa, xf;
                double ua, uf;

                if (f == a) {
                    continue;
                }
                if (f == SR_HASH_NONE) {
                    map->first[b] = a;
                    continue;
                }
                seed = bucket_seed(b);
                xa = pair_hash(seed, aid);
                xf = pair_hash(seed, map->id[f]);
                ua = to_unit(xa);
                uf = to_unit(xf);
                if (aw == map->weight[f]) {
                    /* equal weights: the key is monotone in u */
                    if (ua > uf || (ua == uf && aid < map->id[f])) {
                        map->first[b] = a;
                    }
                }
                else if (before(rank_key(ua, aw), ua, aid,
                                rank_key(uf, map->weight[f]), uf,
                                map->id[f])) {
                    map->first[b] = a;
                }
            }
        }
    }
    apply_cap(map);
    return changes;
}

/* ---- lookups ---------------------------------------------------------------- */

int32_t sr_hash_lookup(const sr_hash_map_t *map, uint64_t h)
{
    uint16_t o = map->owner[h >> (64 - map->bits)];

    return o == SR_HASH_NONE ? -1 : (int32_t)o;
}

int32_t sr_hash_walk(const sr_hash_map_t *map, uint64_t h,
                     sr_hash_cursor_t *cur)
{
    uint32_t b = (uint32_t)(h >> (64 - map->bits)), i;
    uint16_t owner = map->owner[b], best = SR_HASH_NONE;
    uint64_t seed = bucket_seed(b), best_id = 0;
    double best_k = 0, best_u = 0;

    if (owner == SR_HASH_NONE) {
        return -1;
    }
    if (cur->rank++ == 0) {
        return owner;
    }
    for (i = 0; i < map->n; i++) {
        uint64_t id = map->m[i].id;
        double u, k;

        if (map->m[i].member == owner) {
            continue;
        }
        u = to_unit(pair_hash(seed, id));
        k = rank_key(u, map->m[i].weight);
        if (cur->started && !before(cur->key, cur->u, cur->id, k, u, id)) {
            continue;       /* returned already */
        }
        if (best == SR_HASH_NONE || before(k, u, id, best_k, best_u, best_id)) {
            best = map->m[i].member;
            best_k = k;
            best_u = u;
            best_id = id;
        }
    }
    if (best == SR_HASH_NONE) {
        return -1;
    }
    cur->started = 1;
    cur->key = best_k;
    cur->u = best_u;
    cur->id = best_id;
    return best;
}

double sr_hash_share(const sr_hash_map_t *map, uint32_t member)
{
    if (member >= map->max || !map->present[member] || map->nb == 0) {
        return 0.0;
    }
    return (double)map->count[member] / (double)map->nb;
}

int sr_hash_within_bound(uint32_t inflight, uint32_t weight, uint64_t total,
                         uint64_t total_weight, uint32_t factor)
{
    uint64_t num, den, bound;

    if (factor == 0 || total_weight == 0) {
        return 1;
    }
    /* ceil(factor/100 x (total + 1) x weight / total_weight) */
    num = (uint64_t)factor * (total + 1) * (weight ? weight : 1);
    den = 100 * total_weight;
    bound = (num + den - 1) / den;
    return (uint64_t)inflight + 1 <= bound;
}
