/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * libFuzzer target of the lbmethod=hash mapping (sr_hash.c), linked alone
 * with APR (make fuzz):
 *   - request keys: any bytes (what StickyRouteHashKey evaluates to) are
 *     hashed and looked up; the member is one of the map's, and the walk
 *     of the key's choices returns each member once;
 *   - rebuilds: the input is also a script of member changes (join, leave,
 *     reweight, a route reused by another member number) applied to one
 *     map incrementally; after each step the map must equal a map built
 *     from scratch from the same set given in reverse order, and its
 *     shares must add up to the whole space.
 * Maps are small (2^10 buckets, at most 24 members) so that it runs fast.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_general.h"
#include "sr_hash.h"

#define FZ_MAX 24
#define FZ_BITS 10

static int initialized;

static void check_map(const sr_hash_map_t *map, const sr_hash_member_t *set,
                      uint32_t n, const uint8_t *key, size_t klen)
{
    static const sr_key_t k = { "fuzz-key-0123456" };
    uint64_t h = sr_hash_key((const char *)key, klen, &k);
    int32_t m = sr_hash_lookup(map, h), x;
    sr_hash_cursor_t cur;
    uint32_t seen = 0, i;
    unsigned char hit[FZ_MAX] = { 0 };
    double total = 0;

    if (n == 0) {
        if (m != -1) {
            abort();
        }
        return;
    }
    if (m < 0 || m >= FZ_MAX) {
        abort();
    }
    memset(&cur, 0, sizeof(cur));
    while ((x = sr_hash_walk(map, h, &cur)) >= 0) {
        if (x >= FZ_MAX || hit[x] || (seen == 0 && x != m)) {
            abort();
        }
        hit[x] = 1;
        seen++;
    }
    if (seen != n) {
        abort();
    }
    for (i = 0; i < n; i++) {
        if (!hit[set[i].member]) {
            abort();
        }
        total += sr_hash_share(map, set[i].member);
    }
    if (total < 0.999999 || total > 1.000001) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    sr_hash_map_t *map;
    sr_hash_member_t set[FZ_MAX], rev[FZ_MAX];
    uint32_t n = 0, i, b;
    size_t pos = 0, klen;
    const uint8_t *key;

    if (!initialized) {
        apr_initialize();
        initialized = 1;
    }
    if (size < 1) {
        return 0;
    }
    /* the first byte says how long the request key is */
    klen = data[0] % 64;
    if (klen > size - 1) {
        klen = size - 1;
    }
    key = data + 1;
    pos = 1 + klen;
    apr_pool_create(&p, NULL);
    map = sr_hash_map_create(p, FZ_MAX, FZ_BITS);
    check_map(map, set, 0, key, klen);
    /* then 3 bytes per step: op|member, route, weight */
    while (pos + 3 <= size) {
        uint8_t op = data[pos] >> 6, mm = (uint8_t)(data[pos] % FZ_MAX);
        char route[8];
        int len = snprintf(route, sizeof(route), "r%u", data[pos + 1]);
        uint32_t w = 1 + data[pos + 2] % 8, j;
        int found = -1;

        pos += 3;
        for (j = 0; j < n; j++) {
            if (set[j].member == mm) {
                found = (int)j;
            }
        }
        if (op == 0 || op == 3) {               /* join or change route */
            uint64_t id = sr_hash_id(route, (size_t)len);
            int dup = 0;
            for (j = 0; j < n; j++) {
                dup |= set[j].id == id && (int)j != found;
            }
            if (dup) {
                continue;                       /* ids are distinct */
            }
            if (found < 0) {
                found = (int)n++;
            }
            set[found].id = id;
            set[found].weight = w;
            set[found].member = mm;
        }
        else if (op == 1 && found >= 0) {       /* leave */
            set[found] = set[--n];
        }
        else if (op == 2 && found >= 0) {       /* reweight */
            set[found].weight = w;
        }
        sr_hash_map_update(map, set, n);
        {
            sr_hash_map_t *fresh = sr_hash_map_create(p, FZ_MAX, FZ_BITS);
            uint32_t bits = FZ_BITS;
            for (i = 0; i < n; i++) {
                rev[i] = set[n - 1 - i];
            }
            sr_hash_map_update(fresh, rev, n);
            for (b = 0; b < (1u << bits); b++) {
                uint64_t h = (uint64_t)b << (64 - bits);
                if (sr_hash_lookup(map, h) != sr_hash_lookup(fresh, h)) {
                    abort();
                }
            }
        }
        check_map(map, set, n, key, klen);
    }
    apr_pool_destroy(p);
    return 0;
}
