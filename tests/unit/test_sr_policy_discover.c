/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests of discovery's decisions (check): the plan of a DNS answer
 * (sr_discover_plan), its rate-limited warning, SRV records' shape and the
 * next resolution (sr_discover_policy.c). Added to the sr_policy suite
 * (policy_discover_cases).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>

#include "apr_general.h"
#include "apr_strings.h"
#include "sr_policy.h"
#include "policy_fixture.h"

void policy_discover_cases(Suite *s);

#define SEC 1000000LL

START_TEST(discover_plan_adds_enables_disables_and_respects_slots)
{
    /* 10.0.0.3 was disabled 5 s ago: within its 10 s hold */
    sr_disc_member_t have[3] = { { "10.0.0.1", 1, 0, 0 }, { "10.0.0.2", 1, 0, 0 },
                                 { "10.0.0.3", 0, 95 * SEC, 0 } };
    const char *want[] = { "10.0.0.1", "10.0.0.3", "10.0.0.4", "10.0.0.5" };
    sr_disc_action_t ha[3], wa[4];
    uint32_t tg[3];
    sr_disc_counts_t c;

    sr_discover_plan(have, 3, want, 4, 1, 100 * SEC, 10 * SEC, ha, tg, wa, &c);
    ck_assert_int_eq(ha[0], SR_DISC_KEEP);       /* still there */
    ck_assert_int_eq(ha[1], SR_DISC_DISABLE);    /* gone: held from now on */
    ck_assert_int_eq(ha[2], SR_DISC_ENABLE);     /* back: same slot */
    ck_assert_int_eq(wa[0], SR_DISC_KEEP);
    ck_assert_int_eq(wa[1], SR_DISC_KEEP);
    ck_assert_int_eq(wa[2], SR_DISC_ADD);        /* one free slot */
    ck_assert_int_eq(wa[3], SR_DISC_NO_SLOT);    /* none left: 10.0.0.2 is held */
    ck_assert(c.add == 1 && c.enable == 1 && c.disable == 1 && c.no_slot == 1);
    ck_assert(c.held == 1 && c.reuse == 0 && c.members == 3);
    /* no answer (a DNS failure) changes nothing */
    sr_discover_plan(have, 3, NULL, 0, 5, 100 * SEC, 10 * SEC, ha, tg, wa, &c);
    ck_assert(ha[0] == SR_DISC_KEEP && ha[1] == SR_DISC_KEEP && ha[2] == SR_DISC_KEEP);
    ck_assert(c.add == 0 && c.disable == 0 && c.reuse == 0);
    ck_assert(c.members == 2 && c.held == 1);
    /* an empty answer (the name is gone): every member is disabled */
    sr_discover_plan(have, 3, want, 0, 5, 100 * SEC, 10 * SEC, ha, tg, wa, &c);
    ck_assert(ha[0] == SR_DISC_DISABLE && ha[1] == SR_DISC_DISABLE);
    ck_assert(ha[2] == SR_DISC_KEEP && c.disable == 2 && c.members == 0);
    /* nothing known yet: every address is added while slots last */
    sr_discover_plan(NULL, 0, want, 4, 16, 100 * SEC, 10 * SEC, ha, tg, wa, &c);
    ck_assert_uint_eq(c.add, 4);
}
END_TEST

START_TEST(discover_plan_reuses_the_slot_gone_longest_past_its_hold)
{
    /* slots: .1 present, .2 gone 15 s, .3 gone 30 s, .4 gone 5 s (held) */
    sr_disc_member_t have[4] = { { "10.0.0.1", 1, 0, 0 }, { "10.0.0.2", 0, 85 * SEC, 0 },
                                 { "10.0.0.3", 0, 70 * SEC, 0 },
                                 { "10.0.0.4", 0, 95 * SEC, 0 } };
    const char *want[] = { "10.0.0.1", "10.0.0.7", "10.0.0.8", "10.0.0.9" };
    sr_disc_action_t ha[4], wa[4];
    uint32_t tg[4];
    sr_disc_counts_t c;

    sr_discover_plan(have, 4, want, 4, 0, 100 * SEC, 10 * SEC, ha, tg, wa, &c);
    ck_assert_int_eq(ha[2], SR_DISC_REUSE);      /* gone longest: first */
    ck_assert_uint_eq(tg[2], 1);
    ck_assert_int_eq(wa[1], SR_DISC_REUSE);
    ck_assert_int_eq(ha[1], SR_DISC_REUSE);
    ck_assert_uint_eq(tg[1], 2);
    ck_assert_int_eq(ha[3], SR_DISC_KEEP);       /* within its hold */
    ck_assert_int_eq(wa[3], SR_DISC_NO_SLOT);
    ck_assert(c.reuse == 2 && c.no_slot == 1 && c.held == 1 && c.members == 3);
    /* never-used slots go first */
    sr_discover_plan(have, 4, want, 4, 1, 100 * SEC, 10 * SEC, ha, tg, wa, &c);
    ck_assert_int_eq(wa[1], SR_DISC_ADD);
    ck_assert_int_eq(wa[2], SR_DISC_REUSE);
    ck_assert_uint_eq(tg[2], 2);
    ck_assert_int_eq(wa[3], SR_DISC_REUSE);
    ck_assert_uint_eq(tg[1], 3);
    ck_assert(c.add == 1 && c.reuse == 2 && c.no_slot == 0);
    /* hold 0: reusable as soon as it was seen gone */
    sr_discover_plan(have, 4, want, 4, 0, 100 * SEC, 0, ha, tg, wa, &c);
    ck_assert(c.reuse == 3 && c.no_slot == 0 && c.held == 0);
    /* a member gone but never seen leaving (gone_since 0) is never reused */
    have[1].gone_since = have[2].gone_since = have[3].gone_since = 0;
    sr_discover_plan(have, 4, want, 4, 0, 100 * SEC, 0, ha, tg, wa, &c);
    ck_assert(c.reuse == 0 && c.no_slot == 3);
}
END_TEST

START_TEST(discover_plan_settles_a_rewritten_slot_before_enabling_it)
{
    sr_disc_member_t have[1] = { { "10.0.0.7", 0, 0, 102 * SEC } };
    const char *want[] = { "10.0.0.7" };
    sr_disc_action_t ha[1], wa[1];
    uint32_t tg[1];
    sr_disc_counts_t c;

    sr_discover_plan(have, 1, want, 1, 0, 101 * SEC, 10 * SEC, ha, tg, wa, &c);
    ck_assert_int_eq(ha[0], SR_DISC_SETTLE);
    ck_assert(c.settling == 1 && c.members == 1 && c.enable == 0);
    sr_discover_plan(have, 1, want, 1, 0, 102 * SEC, 10 * SEC, ha, tg, wa, &c);
    ck_assert_int_eq(ha[0], SR_DISC_ENABLE);
    /* its address left while it settled: disabled, held */
    sr_discover_plan(have, 1, NULL, 0, 0, 101 * SEC, 10 * SEC, ha, tg, wa, &c);
    ck_assert_int_eq(ha[0], SR_DISC_KEEP);       /* no answer: nothing moves */
    {
        const char *other[] = { "10.0.0.8" };
        sr_discover_plan(have, 1, other, 1, 0, 101 * SEC, 10 * SEC, ha, tg, wa, &c);
        ck_assert_int_eq(ha[0], SR_DISC_DISABLE);
        ck_assert_int_eq(wa[0], SR_DISC_NO_SLOT);
    }
}
END_TEST

START_TEST(discover_warning_is_rate_limited)
{
    ck_assert(!sr_discover_warn_due(0, 100 * SEC, 0, 60 * SEC));
    ck_assert(sr_discover_warn_due(2, 100 * SEC, 0, 60 * SEC));
    ck_assert(!sr_discover_warn_due(2, 130 * SEC, 100 * SEC, 60 * SEC));
    ck_assert(sr_discover_warn_due(2, 160 * SEC, 100 * SEC, 60 * SEC));
}
END_TEST

START_TEST(srv_priorities_become_lbsets_and_weights_load_factors)
{
    const uint16_t prio[] = { 10, 10, 20, 5 }, weight[] = { 5, 0, 300, 60 };
    int lbset[4], lbf[4];
    const uint16_t p2[] = { 0, 0 }, w2[] = { 1, 3 };

    sr_srv_shape(prio, weight, 4, lbset, lbf);
    ck_assert(lbset[3] == 0 && lbset[0] == 1 && lbset[1] == 1 && lbset[2] == 2);
    ck_assert_int_eq(lbf[0], 2);        /* 5 * 100 / 300 */
    ck_assert_int_eq(lbf[1], 1);        /* 0 counts as 1 */
    ck_assert_int_eq(lbf[2], 100);
    ck_assert_int_eq(lbf[3], 20);
    sr_srv_shape(p2, w2, 2, lbset, lbf);
    ck_assert(lbset[0] == 0 && lbset[1] == 0 && lbf[0] == 1 && lbf[1] == 3);
}
END_TEST

START_TEST(next_resolution_follows_the_ttl_within_bounds)
{
    ck_assert(sr_discover_next(0, 5 * SEC, 2, 1) == 5 * SEC);
    ck_assert(sr_discover_next(1, 5 * SEC, 2, 1) == 2 * SEC);
    ck_assert(sr_discover_next(1, 5 * SEC, 0, 1) == SR_TTL_MIN * SEC);
    ck_assert(sr_discover_next(1, 5 * SEC, 0x7fffffff, 1) == SR_TTL_MAX * SEC);
    ck_assert(sr_discover_next(1, 5 * SEC, UINT32_MAX, 1) == SR_TTL_RETRY * SEC);
    ck_assert(sr_discover_next(1, 5 * SEC, 30, 0) == SR_TTL_RETRY * SEC);
}
END_TEST

void policy_discover_cases(Suite *s)
{
    const TTest *tests[] = {
        discover_plan_adds_enables_disables_and_respects_slots,
        discover_plan_reuses_the_slot_gone_longest_past_its_hold,
        discover_plan_settles_a_rewritten_slot_before_enabling_it,
        discover_warning_is_rate_limited,
        srv_priorities_become_lbsets_and_weights_load_factors,
        next_resolution_follows_the_ttl_within_bounds,
    };

    suite_add_tcase(s, UNIT_TCASE("discover", 1, tests));
}
