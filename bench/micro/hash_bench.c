/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Microbenchmark of the lbmethod=hash mapping (sr_hash.c): selection (a
 * key's SipHash and the table lookup), the walk to a next choice, the
 * work after one member change (9 members in turn leave, 9 times one joins,
 * 9 are reweighted up and back: median and worst), memory. Prints;
 * asserts nothing.
 *   cc -O2 -I. bench/micro/hash_bench.c sr_hash.c sr_hash_build.c sr_hash_cap.c $(APR) -lm
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apr_general.h"
#include "sr_hash.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* this process's CPU time: what a change costs when other jobs share the
 * cores (the wall clock then counts their time too) */
static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double cpu_worst;

/* one update, timed: wall ms returned, CPU time kept in cpu_worst */
static double timed_update(sr_hash_map_t *map, const sr_hash_member_t *m,
                           uint32_t n)
{
    double t0 = now_ns(), c0 = cpu_ns(), c;

    sr_hash_map_update(map, m, n);
    c = (cpu_ns() - c0) / 1e6;
    if (c > cpu_worst) {
        cpu_worst = c;
    }
    return (now_ns() - t0) / 1e6;
}

#define NKEYS 4096
#define ROUNDS 9

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(void)
{
    static const uint32_t sizes[] = { 10, 100, 1000 };
    static char keys[NKEYS][24];
    static size_t lens[NKEYS];
    static sr_hash_member_t m[1001];
    apr_pool_t *p;
    sr_key_t k;
    size_t t;
    int i;

    apr_initialize();
    apr_pool_create(&p, NULL);
    memset(&k, 0x5a, sizeof(k));
    for (i = 0; i < NKEYS; i++) {
        lens[i] = (size_t)snprintf(keys[i], sizeof(keys[i]), "10.%d.%d.%d",
                                   i / 65536, (i / 256) % 256, i % 256);
    }
    printf("members buckets  select_ns  walk1_ns  build_ms  remove_ms    add_ms       reweight_ms  cpu_ms table_KiB\n"
           "                                                (wall: median/worst of %d changes, reweight %d;\n"
           "                                                 cpu_ms: the worst change's CPU time)\n",
           ROUNDS, 2 * ROUNDS);
    for (t = 0; t < 3; t++) {
        uint32_t n = sizes[t], j;
        sr_hash_map_t *map = sr_hash_map_create(p, n + 1, 0);
        double t0, t1, sel, walk, build, rm[ROUNDS], add[ROUNDS],
               rw[2 * ROUNDS];
        int r;
        volatile int64_t sink = 0;
        long iters = 4000000;

        for (j = 0; j <= n; j++) {
            char route[16];
            int len = snprintf(route, sizeof(route), "s%u", j + 1);
            m[j].id = sr_hash_id(route, (size_t)len);
            m[j].weight = 1;
            m[j].member = (uint16_t)j;
        }
        t0 = now_ns();
        sr_hash_map_update(map, m, n);
        build = (now_ns() - t0) / 1e6;
        t0 = now_ns();
        for (long it = 0; it < iters; it++) {
            int x = (int)(it & (NKEYS - 1));
            sink += sr_hash_lookup(map, sr_hash_key(keys[x], lens[x], &k));
        }
        t1 = now_ns();
        sel = (t1 - t0) / iters;
        t0 = now_ns();
        for (long it = 0; it < 20000; it++) {
            int x = (int)(it & (NKEYS - 1));
            sr_hash_cursor_t c;
            uint64_t h = sr_hash_key(keys[x], lens[x], &k);
            memset(&c, 0, sizeof(c));
            sink += sr_hash_walk(map, h, &c);
            sink += sr_hash_walk(map, h, &c);
        }
        walk = (now_ns() - t0) / 20000;
        /* one change at a time, ROUNDS times each (another member each
         * round), the map brought back between: median and worst */
        cpu_worst = 0;
        for (r = 0; r < ROUNDS; r++) {
            uint32_t v = (uint32_t)(r * 7919u) % n;
            sr_hash_member_t keep = m[v];

            m[v] = m[n];                            /* member v leaves */
            rm[r] = timed_update(map, m, n);
            m[n] = m[v];
            m[v] = keep;
            sr_hash_map_update(map, m, n);
            add[r] = timed_update(map, m, n + 1);   /* member n joins */
            sr_hash_map_update(map, m, n);
            m[v].weight = 2 + r % 3;
            rw[r] = timed_update(map, m, n);        /* v heavier */
            m[v].weight = 1;
            rw[ROUNDS + r] = timed_update(map, m, n);   /* and back */
        }
        qsort(rm, ROUNDS, sizeof(double), dcmp);
        qsort(add, ROUNDS, sizeof(double), dcmp);
        qsort(rw, 2 * ROUNDS, sizeof(double), dcmp);
        printf("%7u %8u %9.1f %9.0f %9.1f %5.1f/%-5.1f %5.1f/%-5.1f "
               "%5.1f/%-5.1f %5.1f %10.0f\n", n, sr_hash_map_buckets(map), sel,
               walk, build, rm[ROUNDS / 2], rm[ROUNDS - 1], add[ROUNDS / 2],
               add[ROUNDS - 1], rw[ROUNDS], rw[2 * ROUNDS - 1], cpu_worst,
               sr_hash_map_buckets(map) * 4 / 1024.0);
        (void)sink;
    }
    apr_pool_destroy(p);
    apr_terminate();
    return 0;
}
