/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_hash_build.c - the lbmethod=hash map built and updated: its memory,
 * the bucket winners (step 2 of the algorithm in sr_hash.c), then each
 * member's share capped (steps 3-4: sr_hash_cap.c). Layout:
 * sr_hash_map.h.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apr_strings.h"

#include "sr_hash_map.h"

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
    map->ids = apr_pcalloc(p, max * sizeof(uint64_t));
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

/*
 * Without a logarithm: can key(ua, wa) = -ln(ua)/wa come before
 * key(uf, wf)? No when (1 - ua)/wa > (1 - uf)/(uf wf), because
 * -ln(u) >= 1 - u and -ln(u) <= (1 - u)/u: then key(ua, wa) > key(uf, wf).
 * The margin (1e-9 relative, far above the rounding of these few
 * operations and of log()) keeps "no" exact; "maybe" goes to the full
 * comparison. A bucket's winner has 1 - uf of about 1/members while a
 * newcomer's 1 - ua is uniform: nearly every bucket is settled here.
 */
static inline int may_precede(double ua, uint32_t wa, double uf, uint32_t wf)
{
    return (1.0 - ua) * uf * (double)wf
           <= (1.0 - uf) * (double)wa * (1.0 + 1e-9);
}

/*
 * The bulk of a build: for SR_BLOCK buckets at once (their seeds given),
 * the member of ids[0..n-1] (one group: equal weights, ascending ids)
 * with the largest u in each bucket, as its index and its hash >> 11
 * (equal u: the first, the smaller id). Lanes of GCC vector types, so the
 * compiler uses the CPU's vector unit: 64-bit multiplies in hardware with
 * AVX-512DQ, emulated with AVX2 and SSE2 (x86-64: one version of this
 * function per instruction set, picked at load time; elsewhere the
 * target's own vectors or plain code). Integer work only: every version
 * gives the same answer, on every machine.
 */
#define SR_LANES 8
#define SR_BLOCK (2 * SR_LANES)
typedef uint64_t sr_lanes_t __attribute__((vector_size(8 * SR_LANES)));

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) \
    && defined(__has_attribute)
#if __has_attribute(target_clones)
#define SR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#endif
#ifndef SR_CLONES
#define SR_CLONES
#endif

/* mix64 (sr_hash_map.h) in every lane of x (a macro: vector arguments
 * would tie the ABI to the instruction set) */
#define SR_MIX_LANES(x) do {                \
        (x) ^= (x) >> 33;                   \
        (x) *= 0xff51afd7ed558ccdull;       \
        (x) ^= (x) >> 33;                   \
        (x) *= 0xc4ceb9fe1a85ec53ull;       \
        (x) ^= (x) >> 33;                   \
    } while (0)

SR_CLONES
static void block_best(const uint64_t *ids, uint32_t n, const uint64_t *seed,
                       uint64_t *best_h, uint64_t *best_i)
{
    sr_lanes_t s0, s1, h0, h1, i0, i1;
    uint32_t i;

    memcpy(&s0, seed, sizeof(s0));
    memcpy(&s1, seed + SR_LANES, sizeof(s1));
    h0 = s0 ^ ids[0];
    h1 = s1 ^ ids[0];
    SR_MIX_LANES(h0);
    SR_MIX_LANES(h1);
    h0 >>= 11;
    h1 >>= 11;
    i0 = i1 = (sr_lanes_t){ 0 };
    for (i = 1; i < n; i++) {
        sr_lanes_t x0 = s0 ^ ids[i], x1 = s1 ^ ids[i], w0, w1, iv;

        SR_MIX_LANES(x0);
        SR_MIX_LANES(x1);
        x0 >>= 11;
        x1 >>= 11;
        /* where it is larger: this one (strictly: equal keeps the first) */
        w0 = (sr_lanes_t)(x0 > h0);
        w1 = (sr_lanes_t)(x1 > h1);
        iv = (sr_lanes_t){ 0 } + i;
        h0 = (x0 & w0) | (h0 & ~w0);
        h1 = (x1 & w1) | (h1 & ~w1);
        i0 = (iv & w0) | (i0 & ~w0);
        i1 = (iv & w1) | (i1 & ~w1);
    }
    memcpy(best_h, &h0, sizeof(h0));
    memcpy(best_h + SR_LANES, &h1, sizeof(h1));
    memcpy(best_i, &i0, sizeof(i0));
    memcpy(best_i + SR_LANES, &i1, sizeof(i1));
}

/* first[] of buckets bk[0..cnt-1] (cnt <= SR_BLOCK): the rendezvous
 * winner over all members. Per group the largest u (block_best), then
 * across groups the rendezvous order (one logarithm per group). */
static void first_of_block(sr_hash_map_t *map, const uint32_t *bk,
                           uint32_t cnt)
{
    uint64_t seed[SR_BLOCK], gh[SR_BLOCK], gi[SR_BLOCK];
    double best_k[SR_BLOCK], best_u[SR_BLOCK];
    uint64_t best_id[SR_BLOCK];
    uint32_t j, g;

    for (j = 0; j < SR_BLOCK; j++) {
        seed[j] = bucket_seed(bk[j < cnt ? j : 0]);
    }
    for (g = 0; g < map->ngroups; g++) {
        uint32_t start = map->group_start[g];

        block_best(map->ids + start, map->group_start[g + 1] - start, seed,
                   gh, gi);
        for (j = 0; j < cnt; j++) {
            const sr_hash_member_t *w = &map->m[start + gi[j]];
            double u = unit_of(gh[j]), k;

            if (map->ngroups == 1) {
                map->first[bk[j]] = w->member;
                continue;
            }
            k = rank_key(u, w->weight);
            if (g == 0 || before(k, u, w->id, best_k[j], best_u[j],
                                 best_id[j])) {
                map->first[bk[j]] = w->member;
                best_k[j] = k;
                best_u[j] = u;
                best_id[j] = w->id;
            }
        }
    }
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
        map->ids[i] = map->m[i].id;
        if (i == 0 || map->m[i].weight != map->m[i - 1].weight) {
            map->group_start[map->ngroups++] = i;
        }
    }
    map->group_start[map->ngroups] = n;
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
        uint32_t bk[SR_BLOCK];

        for (b = 0; b < map->nb; b += SR_BLOCK) {
            for (k = 0; k < SR_BLOCK; k++) {
                bk[k] = b + k;      /* nb is a multiple of SR_BLOCK */
            }
            first_of_block(map, bk, SR_BLOCK);
        }
    }
    else {
        /* buckets whose winner left (or changed weight): the best of the
         * new set, SR_BLOCK at a time */
        uint32_t bk[SR_BLOCK], cnt = 0;

        for (b = 0; b < map->nb; b++) {
            uint16_t f = map->first[b];
            if (f == SR_HASH_NONE || (map->changed[f] & 1)) {
                bk[cnt++] = b;
                if (cnt == SR_BLOCK) {
                    first_of_block(map, bk, cnt);
                    cnt = 0;
                }
            }
        }
        if (cnt > 0) {
            first_of_block(map, bk, cnt);
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
                else if (may_precede(ua, aw, uf, map->weight[f])
                         && before(rank_key(ua, aw), ua, aid,
                                   rank_key(uf, map->weight[f]), uf,
                                   map->id[f])) {
                    map->first[b] = a;
                }
            }
        }
    }
    sr_hash_map_cap(map);
    return changes;
}

