/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_route_index.c - route string -> member number, open addressing (see
 * sr_schedule.h).
 */
#include <string.h>
#include <stdlib.h>

#include "apr_strings.h"

#include "sr_schedule.h"

/* ---- route index ----------------------------------------------------- */

static uint32_t route_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

void sr_index_init(apr_pool_t *p, sr_route_index_t *ix, uint32_t max_members)
{
    uint32_t cap = 8;

    while (cap < 2 * max_members) {
        cap <<= 1;
    }
    ix->slots = apr_palloc(p, cap * sizeof(int32_t));
    ix->mask = cap - 1;
    sr_index_clear(ix);
}

void sr_index_clear(sr_route_index_t *ix)
{
    uint32_t i;

    for (i = 0; i <= ix->mask; i++) {
        ix->slots[i] = -1;
    }
}

void sr_index_insert(sr_route_index_t *ix, const char *const *routes,
                     int32_t member)
{
    const char *r = routes[member];
    uint32_t h;

    if (!r || !*r) {
        return;
    }
    h = route_hash(r, strlen(r)) & ix->mask;
    while (ix->slots[h] >= 0) {
        if (strcmp(routes[ix->slots[h]], r) == 0) {
            return;     /* duplicate route: the first member keeps it */
        }
        h = (h + 1) & ix->mask;
    }
    ix->slots[h] = member;
}

int32_t sr_index_find(const sr_route_index_t *ix, const char *const *routes,
                      const char *route, size_t len)
{
    uint32_t h = route_hash(route, len) & ix->mask;
    uint32_t probes;

    for (probes = 0; probes <= ix->mask; probes++) {
        int32_t m = ix->slots[h];
        if (m < 0) {
            return -1;
        }
        if (strncmp(routes[m], route, len) == 0 && routes[m][len] == '\0') {
            return m;
        }
        h = (h + 1) & ix->mask;
    }
    return -1;
}
