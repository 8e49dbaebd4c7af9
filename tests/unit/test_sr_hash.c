/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/* Unit tests of the key -> member mapping (sr_hash.c): the shares of the
 * hash space are exact (read from the table), so the acceptance numbers of
 * issue 17 are asserted on them directly. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "apr_general.h"
#include "sr_hash.h"

Suite *hash_suite(void);

#define MAXM 1024

static apr_pool_t *pool;

static void setup(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
    apr_terminate();
}

static void members(sr_hash_member_t *m, uint32_t n, const uint32_t *weights)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        char route[32];
        int len = snprintf(route, sizeof(route), "s%u", i + 1);
        m[i].id = sr_hash_id(route, (size_t)len);
        m[i].weight = weights ? weights[i] : 1;
        m[i].member = (uint16_t)i;
    }
}

/* the member of bucket b (the top bits of the key hash pick the bucket) */
static int32_t at(const sr_hash_map_t *map, uint32_t b)
{
    uint32_t nb = sr_hash_map_buckets(map), bits = 0;

    while ((1u << bits) < nb) {
        bits++;
    }
    return sr_hash_lookup(map, (uint64_t)b << (64 - bits));
}

/* fraction of buckets whose member differs between a and b (members
 * compared by id through the member arrays) */
static double moved(const sr_hash_map_t *a, const sr_hash_member_t *ma,
                    const sr_hash_map_t *b, const sr_hash_member_t *mb,
                    uint32_t nmb)
{
    uint32_t nb = sr_hash_map_buckets(a), i, diff = 0;

    for (i = 0; i < nb; i++) {
        int32_t x = at(a, i), y = at(b, i);
        uint32_t k;
        uint64_t idx = ma[x].id, idy = 0;
        for (k = 0; k < nmb; k++) {
            if (mb[k].member == (uint16_t)y) {
                idy = mb[k].id;
            }
        }
        if (idx != idy) {
            diff++;
        }
    }
    return (double)diff / nb;
}

static double max_over_mean(const sr_hash_map_t *map, uint32_t n)
{
    double max = 0;
    uint32_t i;

    for (i = 0; i < n; i++) {
        double s = sr_hash_share(map, i);
        if (s > max) {
            max = s;
        }
    }
    return max * n;
}

START_TEST(hash_equal_members_balance_within_5_percent)
{
    static const uint32_t sizes[] = { 10, 100 };
    sr_hash_member_t m[MAXM];
    size_t t;

    for (t = 0; t < 2; t++) {
        uint32_t n = sizes[t];
        sr_hash_map_t *map = sr_hash_map_create(pool, n, 0);
        double r;

        members(m, n, NULL);
        sr_hash_map_update(map, m, n);
        r = max_over_mean(map, n);
        printf("hash: %u equal members over %u buckets: max/mean %.4f\n",
               n, sr_hash_map_buckets(map), r);
        ck_assert(r <= 1.05);
    }
}
END_TEST

START_TEST(hash_weights_1_to_4_honoured_within_3_percent)
{
    static const uint32_t sizes[] = { 10, 100 };
    sr_hash_member_t m[MAXM];
    uint32_t w[MAXM];
    size_t t;

    for (t = 0; t < 2; t++) {
        uint32_t n = sizes[t], i, total = 0;
        sr_hash_map_t *map = sr_hash_map_create(pool, n, 0);
        double worst = 0;

        for (i = 0; i < n; i++) {
            w[i] = 1 + i % 4;
            total += w[i];
        }
        members(m, n, w);
        sr_hash_map_update(map, m, n);
        for (i = 0; i < n; i++) {
            double want = (double)w[i] / total;
            double dev = sr_hash_share(map, i) / want - 1;
            if (dev < 0) {
                dev = -dev;
            }
            if (dev > worst) {
                worst = dev;
            }
        }
        printf("hash: %u members of weights 1..4: worst deviation %.2f %%\n",
               n, worst * 100);
        fflush(stdout);
        ck_assert(worst <= 0.03);
    }
}
END_TEST

/* Removing any one member moves its share plus at most 1 %; adding one
 * moves at most 1/(N+1) + 1 %. */
START_TEST(hash_removal_and_addition_move_the_minimum_plus_1_percent)
{
    static const uint32_t sizes[] = { 10, 100 };
    sr_hash_member_t m[MAXM], less[MAXM];
    size_t t;

    for (t = 0; t < 2; t++) {
        uint32_t n = sizes[t], gone, step = n / 10, k;
        sr_hash_map_t *full = sr_hash_map_create(pool, n + 1, 0);
        sr_hash_map_t *var = sr_hash_map_create(pool, n + 1, 0);
        double worst_rm = 0, worst_add = 0;

        members(m, n + 1, NULL);
        sr_hash_map_update(full, m, n);
        for (gone = 0; gone < n; gone += step) {
            double share = sr_hash_share(full, gone), mv;
            uint32_t j = 0;
            for (k = 0; k < n; k++) {
                if (k != gone) {
                    less[j++] = m[k];
                }
            }
            sr_hash_map_update(var, m, n);
            sr_hash_map_update(var, less, n - 1);       /* incremental */
            mv = moved(full, m, var, less, n - 1);
            if (mv - share > worst_rm) {
                worst_rm = mv - share;
            }
            ck_assert_msg(mv <= share + 0.01, "removing %u of %u moved %.4f "
                          "(its share %.4f)", gone, n, mv, share);
        }
        /* add member n */
        sr_hash_map_update(var, m, n);
        sr_hash_map_update(var, m, n + 1);
        {
            double mv = moved(full, m, var, m, n + 1);
            worst_add = mv - 1.0 / (n + 1);
            ck_assert_msg(mv <= 1.0 / (n + 1) + 0.01, "adding to %u moved "
                          "%.4f", n, mv);
        }
        printf("hash: %u members: removal moves its share + %.3f %% at "
               "worst, addition moves 1/(N+1) %+.3f %%\n", n,
               worst_rm * 100, worst_add * 100);
    }
}
END_TEST

/* Two instances, members given in different orders and reached through
 * different histories (additions, removals, weight changes, one rebuilt
 * from scratch): the same table. */
START_TEST(hash_same_mapping_whatever_the_order_and_history)
{
    sr_hash_member_t m[64], rev[64], part[64];
    uint32_t n = 40, i, nb;
    sr_hash_map_t *a = sr_hash_map_create(pool, 64, 0);
    sr_hash_map_t *b = sr_hash_map_create(pool, 64, 0);
    sr_hash_map_t *c = sr_hash_map_create(pool, 64, 0);

    members(m, 48, NULL);
    for (i = 0; i < n; i++) {
        rev[i] = m[n - 1 - i];
    }
    /* a: all at once */
    sr_hash_map_update(a, m, n);
    /* b: reversed, through history: 48 members, drop 8, reweight 3 and back,
     * drop 5 and bring them back one by one */
    sr_hash_map_update(b, m, 48);
    sr_hash_map_update(b, rev, n);
    for (i = 0; i < n; i++) {
        part[i] = rev[i];
    }
    part[3].weight = 3;
    part[7].weight = 2;
    part[11].weight = 5;
    sr_hash_map_update(b, part, n);
    for (i = 0; i < 5; i++) {
        sr_hash_map_update(b, rev + 5 - i, n - 5 + i);
    }
    sr_hash_map_update(b, rev, n);
    /* c: every member at weight 1 but one at 2, then the real set */
    for (i = 0; i < n; i++) {
        part[i] = m[i];
    }
    part[0].weight = 2;
    sr_hash_map_update(c, part, n);
    sr_hash_map_update(c, m, n);
    nb = sr_hash_map_buckets(a);
    ck_assert_uint_eq(nb, sr_hash_map_buckets(b));
    for (i = 0; i < nb; i++) {
        int32_t x = at(a, i);
        ck_assert_int_eq(x, at(b, i));
        ck_assert_int_eq(x, at(c, i));
    }
}
END_TEST

/* Many members of many weights (weight groups, the newcomer's check
 * without a logarithm, blocks of buckets): after each single change, the
 * incrementally updated map equals one built from scratch from the same
 * set in reverse order. */
static void same_as_fresh(const sr_hash_map_t *inc, const sr_hash_member_t *set,
                          uint32_t n, uint32_t max, uint32_t bits)
{
    sr_hash_member_t rev[MAXM];
    sr_hash_map_t *fresh = sr_hash_map_create(pool, max, bits);
    uint32_t i, nb = sr_hash_map_buckets(inc);

    for (i = 0; i < n; i++) {
        rev[i] = set[n - 1 - i];
    }
    sr_hash_map_update(fresh, rev, n);
    ck_assert_uint_eq(nb, sr_hash_map_buckets(fresh));
    for (i = 0; i < nb; i++) {
        ck_assert_int_eq(at(inc, i), at(fresh, i));
    }
}

START_TEST(hash_incremental_equals_fresh_with_many_weights)
{
    sr_hash_member_t m[MAXM], cur[MAXM];
    uint32_t w[MAXM], n = 300, max = 320, bits = 14, i, r;
    sr_hash_map_t *map = sr_hash_map_create(pool, max, bits);

    for (i = 0; i < n + 1; i++) {
        w[i] = 1 + (i * 7919u) % 100;
    }
    members(m, n + 1, w);
    sr_hash_map_update(map, m, n);
    same_as_fresh(map, m, n, max, bits);
    for (r = 0; r < 3; r++) {
        uint32_t v = (r * 97u) % n, j = 0;

        for (i = 0; i < n; i++) {
            if (i != v) {
                cur[j++] = m[i];
            }
        }
        sr_hash_map_update(map, cur, n - 1);            /* v leaves */
        same_as_fresh(map, cur, n - 1, max, bits);
        memcpy(cur, m, (n + 1) * sizeof(*m));
        sr_hash_map_update(map, cur, n + 1);            /* n joins */
        same_as_fresh(map, cur, n + 1, max, bits);
        cur[v].weight = 1000;                           /* v heavier */
        sr_hash_map_update(map, cur, n + 1);
        same_as_fresh(map, cur, n + 1, max, bits);
        cur[v].weight = 1;                              /* v lighter */
        sr_hash_map_update(map, cur, n + 1);
        same_as_fresh(map, cur, n + 1, max, bits);
        sr_hash_map_update(map, m, n);                  /* back */
        same_as_fresh(map, m, n, max, bits);
    }
}
END_TEST

/* Failover: a key whose member leaves goes to its walk's next member (the
 * key's next choice), and comes back when the member returns. */
START_TEST(hash_key_goes_to_next_choice_and_comes_back)
{
    sr_hash_member_t m[16];
    sr_hash_map_t *map = sr_hash_map_create(pool, 16, 0);
    uint32_t n = 8, k, agree = 0, keys = 2000;

    members(m, n, NULL);
    sr_hash_map_update(map, m, n);
    for (k = 0; k < keys; k++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "10.0.%u.%u", k / 256, k % 256);
        sr_key_t sk;
        uint64_t h;
        int32_t first, second, seen[16] = { 0 }, x, count = 0;
        sr_hash_cursor_t cur;
        sr_hash_member_t less[16];
        uint32_t i, j = 0;

        memset(&sk, 7, sizeof(sk));
        h = sr_hash_key(key, (size_t)len, &sk);
        first = sr_hash_lookup(map, h);
        memset(&cur, 0, sizeof(cur));
        ck_assert_int_eq(sr_hash_walk(map, h, &cur), first);
        second = sr_hash_walk(map, h, &cur);
        ck_assert_int_ne(second, first);
        /* the walk returns every member once */
        seen[first]++;
        seen[second]++;
        count = 2;
        while ((x = sr_hash_walk(map, h, &cur)) >= 0) {
            seen[x]++;
            count++;
        }
        ck_assert_int_eq(count, (int32_t)n);
        for (i = 0; i < n; i++) {
            ck_assert_int_eq(seen[i], 1);
        }
        if (k % 50 == 0) {
            for (i = 0; i < n; i++) {
                if (m[i].member != (uint16_t)first) {
                    less[j++] = m[i];
                }
            }
            sr_hash_map_update(map, less, n - 1);
            agree += sr_hash_lookup(map, h) == second;
            ck_assert_int_ne(sr_hash_lookup(map, h), first);
            sr_hash_map_update(map, m, n);
            ck_assert_int_eq(sr_hash_lookup(map, h), first);
        }
    }
    /* the cap may give a bucket another next member, rarely */
    ck_assert_uint_ge(agree, keys / 50 - 1);
}
END_TEST

START_TEST(hash_empty_map_and_bounded_load_arithmetic)
{
    sr_hash_map_t *map = sr_hash_map_create(pool, 4, 0);
    sr_hash_cursor_t cur;
    sr_hash_member_t one;

    ck_assert_int_eq(sr_hash_lookup(map, 12345), -1);
    memset(&cur, 0, sizeof(cur));
    ck_assert_int_eq(sr_hash_walk(map, 12345, &cur), -1);
    members(&one, 1, NULL);
    one.member = 3;
    sr_hash_map_update(map, &one, 1);
    ck_assert_int_eq(sr_hash_lookup(map, 0), 3);
    ck_assert_int_eq(sr_hash_lookup(map, ~0ull), 3);
    ck_assert(sr_hash_share(map, 3) == 1.0);
    ck_assert(sr_hash_share(map, 0) == 0.0);
    sr_hash_map_update(map, &one, 0);
    ck_assert_int_eq(sr_hash_lookup(map, 0), -1);
    /* factor 1.25, 4 equal members, 8 in flight: bound ceil(1.25*9/4) = 3 */
    ck_assert(sr_hash_within_bound(2, 1, 8, 4, 125));
    ck_assert(!sr_hash_within_bound(3, 1, 8, 4, 125));
    /* idle balancer: ceil(1.25 * 1 / 4) = 1: the first request passes */
    ck_assert(sr_hash_within_bound(0, 1, 0, 4, 125));
    /* weight 2 of 5 : ceil(1.25 * 11 * 2 / 5) = 6 */
    ck_assert(sr_hash_within_bound(5, 2, 10, 5, 125));
    ck_assert(!sr_hash_within_bound(6, 2, 10, 5, 125));
    ck_assert(sr_hash_within_bound(1000, 1, 0, 4, 0));
}
END_TEST

Suite *hash_suite(void)
{
    Suite *s = suite_create("sr_hash");
    TCase *tc = tcase_create("hash");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, hash_equal_members_balance_within_5_percent);
    tcase_add_test(tc, hash_weights_1_to_4_honoured_within_3_percent);
    tcase_add_test(tc, hash_removal_and_addition_move_the_minimum_plus_1_percent);
    tcase_add_test(tc, hash_same_mapping_whatever_the_order_and_history);
    tcase_add_test(tc, hash_incremental_equals_fresh_with_many_weights);
    tcase_add_test(tc, hash_key_goes_to_next_choice_and_comes_back);
    tcase_add_test(tc, hash_empty_map_and_bounded_load_arithmetic);
    suite_add_tcase(s, tc);
    return s;
}
