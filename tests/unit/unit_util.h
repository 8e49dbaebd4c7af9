/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * unit_util.h - what the check unit tests of the core share: the pool of a
 * test (made by unit_setup, destroyed by unit_teardown: the fixtures of
 * every test case) and a view of plain members.
 */
#ifndef UNIT_UTIL_H
#define UNIT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <check.h>

#include "apr_pools.h"
#include "sr_policy.h"

/* The current test's pool. */
extern apr_pool_t *pool;

void unit_setup(void);
void unit_teardown(void);

/* view[0..cap-1] cleared, then n regular usable members of weight 1, lbset
 * 0, no redirect, routes named prefix + number, numbered from first. */
void unit_members(sr_member_t *view, uint32_t cap, uint32_t n,
                  const char *prefix, uint32_t first);

/* A test case `name` holding the n tests (START_TEST names); with_pool:
 * unit_setup/unit_teardown are its checked fixture. */
TCase *unit_tcase(const char *name, int with_pool, const TTest *const *tests, size_t n);
#define UNIT_TCASE(name, with_pool, tests) \
    unit_tcase((name), (with_pool), (tests), sizeof(tests) / sizeof((tests)[0]))

/* A suite `suite` of that one test case. */
#define UNIT_SUITE(suite, name, with_pool, tests) \
    unit_suite((suite), UNIT_TCASE((name), (with_pool), (tests)))
Suite *unit_suite(const char *suite, TCase *tc);

/* Adds `test` to tc as a loop test, one run per row of the array `table`
 * (the row is _i in the test). */
#define UNIT_TABLE_TEST(tc, test, table) \
    tcase_add_loop_test((tc), (test), 0, (int)(sizeof(table) / sizeof((table)[0])))

#endif
