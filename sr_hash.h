/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_hash.h - the key -> member mapping of lbmethod=hash and
 * StickyRouteElect hash: weighted rendezvous hashing over a table of
 * buckets, with the members' shares capped (see sr_hash.c for the
 * algorithm, its sources and its measured numbers). APR only.
 *
 *   sr_hash_map_create   a map for up to max members (memory fixed here)
 *   sr_hash_map_update   the members that take keys now (incremental)
 *   sr_hash_key          a request key's 64-bit hash
 *   sr_hash_lookup       the member a key hash maps to (O(1))
 *   sr_hash_walk         the key's choices, in order (failover, spill)
 *   sr_hash_share        a member's share of the hash space
 *   sr_hash_within_bound bounded loads: may a member take one more?
 *
 * A map is not thread-safe: its owner serialises every call (the glue
 * holds the balancer's thread mutex).
 */
#ifndef SR_HASH_H
#define SR_HASH_H

#include <stddef.h>
#include <stdint.h>
#include "apr_pools.h"
#include "sr_core.h"

/* One member that takes keys: its identity (sr_hash_id of its route, never
 * its position in the configuration), its weight (> 0) and the caller's
 * number for it (returned by lookups). */
typedef struct {
    uint64_t id;
    uint32_t weight;
    uint16_t member;
} sr_hash_member_t;

typedef struct sr_hash_map_t sr_hash_map_t;

/* Buckets: 2^bits, bits = log2(max members) + 12 clamped to
 * [SR_HASH_BITS_MIN, SR_HASH_BITS_MAX] (about 4096 buckets per member). */
#define SR_HASH_BITS_MIN 16
#define SR_HASH_BITS_MAX 20
/* A member's share is capped at (1 + SR_HASH_CAP / 1000) times its
 * weight's share of the space; in maps without a floor (below), at 2
 * binomial sigmas above it when that is more (2 / sqrt(buckets per
 * member): 6.2 % at 1000 members). */
#define SR_HASH_CAP 20
/* ... and raised to at least (1 - SR_HASH_FLOOR / 1000) times it, when the
 * table has SR_HASH_FLOOR_MIN buckets per member or more (up to 256
 * members: beyond, the floor's work would exceed the update budget). */
#define SR_HASH_FLOOR 25
#define SR_HASH_FLOOR_MIN 4096

/* A map for member numbers 0 .. max-1 (max <= 65535). bits 0: from max
 * (as above); else 2^bits buckets, 4 <= bits <= SR_HASH_BITS_MAX (small
 * maps for tests and the fuzzer).
 * Memory: 2 * 2 bytes per bucket, 256 KiB of eviction heap and 90 bytes
 * per member number. */
sr_hash_map_t *sr_hash_map_create(apr_pool_t *p, uint32_t max, uint32_t bits);

/* The identity of a member: a hash of its route. */
uint64_t sr_hash_id(const char *route, size_t len);

/* Makes the map that of members m[0..n-1] (any order; member numbers
 * distinct and < max; ids distinct). Work: O(buckets) per member added,
 * removed or reweighted since the last update (plus a few passes over the
 * buckets for the cap); a full build (the first update, or more than a
 * quarter of the members changed) is O(buckets x members) hash steps,
 * done 16 buckets at a time in vector lanes (plus a logarithm per
 * distinct weight).
 * The result depends only on the set {(id, weight)}, never on the order
 * of m nor on the history of updates. Returns how many members changed. */
uint32_t sr_hash_map_update(sr_hash_map_t *map, const sr_hash_member_t *m,
                            uint32_t n);

/* Members in the map now. */
uint32_t sr_hash_map_count(const sr_hash_map_t *map);
uint32_t sr_hash_map_buckets(const sr_hash_map_t *map);

/* The 64-bit hash of a request key (keyed SipHash-2-4: every proxy with
 * the same key maps a key the same way). */
uint64_t sr_hash_key(const char *key, size_t len, const sr_key_t *k);

/* The member key hash h maps to, -1 when the map is empty. */
int32_t sr_hash_lookup(const sr_hash_map_t *map, uint64_t h);

/* The key's choices in order, one per call: first sr_hash_lookup's
 * member, then the others in the rendezvous order of the key's bucket;
 * -1 after the last. The cursor starts zeroed. O(members) per call, no
 * allocation (failover and bounded loads only: lookups never walk). */
typedef struct {
    uint32_t rank;
    double key;             /* the last rendezvous key returned */
    double u;
    uint64_t id;
    int started;
} sr_hash_cursor_t;
int32_t sr_hash_walk(const sr_hash_map_t *map, uint64_t h,
                     sr_hash_cursor_t *cursor);

/* The share of the hash space member `member` owns, 0 .. 1. */
double sr_hash_share(const sr_hash_map_t *map, uint32_t member);

/* Bounded loads (Mirrokni, Thorup, Zadimoghaddam 2016): with `total`
 * requests in flight over members of total weight `total_weight`, may a
 * member of weight `weight` with `inflight` requests take one more?
 * Yes when inflight + 1 <= ceil(factor/100 x (total + 1) x weight /
 * total_weight). factor: FACTOR x 100 (125 = 1.25), 0: always. */
int sr_hash_within_bound(uint32_t inflight, uint32_t weight, uint64_t total,
                         uint64_t total_weight, uint32_t factor);

#endif /* SR_HASH_H */
