/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_hash_map.h - inside the lbmethod=hash map: its layout and the
 * rendezvous ranking that its build (sr_hash_build.c, sr_hash_cap.c) and
 * its lookups (sr_hash.c) use. Not for anyone else: sr_hash.h is the
 * interface.
 */
#ifndef SR_HASH_MAP_H
#define SR_HASH_MAP_H

#include <math.h>
#include <stdint.h>

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
    uint64_t *ids;              /* ... their ids, in that order */
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

/* (0, 1), never 0 nor 1, from the top 53 bits of a hash (x >> 11) */
static inline double unit_of(uint64_t top53)
{
    /* through int64_t: top53 < 2^53, the same value, one instruction */
    return ((double)(int64_t)top53 + 0.5) * (1.0 / 9007199254740992.0);
}

/* the same from the whole hash */
static inline double to_unit(uint64_t x)
{
    return unit_of(x >> 11);
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

/* ---- the build's steps ----------------------------------------------------- */

/* The cap and the floor: owner[] from first[] (sr_hash_cap.c); the last
 * step of sr_hash_map_update. */
void sr_hash_map_cap(sr_hash_map_t *map);

#endif /* SR_HASH_MAP_H */
