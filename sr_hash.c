/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_hash.c - the key -> member mapping of lbmethod=hash (see sr_hash.h):
 * the algorithm, key hashing and the lookups. The map's build (its table
 * construction and the cap): sr_hash_build.c; its layout: sr_hash_map.h.
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
 * Where the work goes: a first build ranks every member in every bucket,
 * B x N pair hashes (10^9 at 1,000 members), 16 buckets at a time in
 * vector lanes (sr_hash_build.c; on x86-64 one version per instruction
 * set, AVX-512, AVX2 or SSE2, chosen at load time; integer work only, so
 * every version, process and proxy gets the same table); a logarithm only
 * per weight group. After one change: the changed member's buckets are
 * ranked again (B/N buckets x N members, in lanes too), a newcomer is
 * compared with each bucket's winner (2 hashes a bucket; with other
 * weights a bound settles nearly every bucket without a logarithm), then
 * the cap (and up to 256 members the floor, one pass per member below
 * it) is applied again from first[]: a few passes over the table. The
 * same tables as the scalar code of 1.0.x (table digests compared on 1 to
 * 1,000 members, three weight mixes, leaves, joins and reweights).
 *
 * Measured (2026-12-04, this 2-core VM, under the project's load lock,
 * load 1-4; exact shares read from the table by tests/unit/test_sr_hash.c,
 * times by bench/micro/hash_bench.c, gcc -O2, AVX-512; 2-3 runs): a
 * change's wall time, median and worst of 36 changes a run (9 leaves,
 * 9 joins, 18 reweights), and in brackets 1.0.x's in the same session:
 *
 *   members  buckets  max/mean  weights 1..4   removal: moved    addition:
 *                     (equal)   worst dev.     beyond its share  beyond 1/(N+1)
 *   10       2^16     1.020     2.5 %          +0.02 %           +0.06 %
 *   100      2^19     1.020     2.5 %          +0.02 %           +0.01 %
 *
 *   members  select    next choice  first build        one change:
 *                      (walk step)  (per process)      median, worst
 *   10       11-12 ns  0.14 us      0.6 ms (2.2-2.5)   0.5-0.7, 1.4 ms (1.8)
 *   100      11-12 ns  0.85 us      16-18 ms (91-94)   6.6-7.0, 12 ms (14.5-16.5)
 *   1000     11-12 ns  7.5 us       0.22 s (1.6)       6.0-6.4, 6.9 ms (15.5-16.3)
 *
 * Without the lock, while other jobs loaded the VM to 4-25 (and with an
 * intermediate version whose newcomer pass used lanes too, 1-2 ms slower
 * a change): selections 11-50 ns, first builds up to 63 ms and 0.9 s,
 * one change at 1,000 members up to 233 ms of wall time for 10-15 ms of
 * CPU: the load, not the work, sets the wall time there.
 * The parent builds the first map at post_config, and the children
 * inherit it (mod_sticky_route_hash.c); the floor (step 4) applies up to
 * 256 members, and above that the cap widens to 2 sigmas, so few buckets
 * leave their first member.
 *
 * Memory per balancer and child process: 2 x 2 bytes per bucket (first[],
 * owner[]), 256 KiB of eviction heap (the cap's and the floor's) and 90
 * bytes per member slot (the balancer's members plus its growth=):
 * 0.5 MiB up to 16 slots, 0.8 MiB up to 32, 1.3 MiB up to 64, 2.3 MiB up
 * to 128, 4.3 MiB (2^20 buckets, the most; 4.34 MiB at 1,000 slots)
 * beyond.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apr_siphash.h"

#include "sr_hash_map.h"

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

uint32_t sr_hash_map_count(const sr_hash_map_t *map)
{
    return map->n;
}

uint32_t sr_hash_map_buckets(const sr_hash_map_t *map)
{
    return map->nb;
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
