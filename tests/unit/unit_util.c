/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * unit_util.c - the unit tests' shared fixtures (unit_util.h).
 */
#include <stdio.h>
#include <string.h>

#include "unit_util.h"

#define UNIT_NAMES 64

apr_pool_t *pool;

void unit_setup(void)
{
    apr_pool_create(&pool, NULL);
}

void unit_teardown(void)
{
    apr_pool_destroy(pool);
    pool = NULL;
}

TCase *unit_tcase(const char *name, int with_pool, const TTest *const *tests, size_t n)
{
    TCase *tc = tcase_create(name);
    size_t i;

    if (with_pool)
        tcase_add_checked_fixture(tc, unit_setup, unit_teardown);
    for (i = 0; i < n; i++)
        tcase_add_test(tc, tests[i]);
    return tc;
}

Suite *unit_suite(const char *suite, TCase *tc)
{
    Suite *s = suite_create(suite);

    suite_add_tcase(s, tc);
    return s;
}

void unit_members(sr_member_t *view, uint32_t cap, uint32_t n,
                  const char *prefix, uint32_t first)
{
    static char names[UNIT_NAMES][16];
    uint32_t i;

    memset(view, 0, cap * sizeof(*view));
    for (i = 0; i < n && i < cap && i < UNIT_NAMES; i++) {
        snprintf(names[i], sizeof(names[i]), "%s%u", prefix, first + i);
        view[i].route = names[i];
        view[i].redirect = -1;
        view[i].weight = 1;
        view[i].usable = 1;
    }
}
