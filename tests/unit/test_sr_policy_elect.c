/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests of the election (check): the schedule's turn with tried and
 * stale members (sr_elect_check), the tried set, election by load and slow
 * start (sr_elect_leastbusy), the key's stale map (sr_hash_then), waiting
 * for a usable member (sr_wait_decide).
 * Added to the sr_policy suite (policy_elect_cases).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>

#include "apr_general.h"
#include "apr_strings.h"
#include "sr_policy.h"
#include "policy_fixture.h"

void policy_elect_cases(Suite *s);

/* ---- election ------------------------------------------------------------------ */

START_TEST(elect_follows_the_schedule)
{
    int32_t m;
    uint64_t t;
    members(3);
    no_tried();
    schedule_takers(3);
    for (t = 0; t < 6; t++) {
        ck_assert_int_eq(sr_elect_check(&sched, t, view, 3, &tried, &m), SR_ELECT_OK);
        ck_assert_int_eq(m, (int32_t)(t % 3));
    }
}
END_TEST

START_TEST(elect_stale_when_member_changed_since_the_scan)
{
    int32_t m;
    members(3);
    no_tried();
    schedule_takers(3);
    view[1].usable = 0;
    ck_assert_int_eq(sr_elect_check(&sched, 1, view, 3, &tried, &m), SR_ELECT_STALE);
    view[1].usable = 1;
    view[1].draining = 1;
    ck_assert_int_eq(sr_elect_check(&sched, 1, view, 3, &tried, &m), SR_ELECT_STALE);
    /* a member number past the list (members removed) */
    ck_assert_int_eq(sr_elect_check(&sched, 2, view, 2, &tried, &m), SR_ELECT_STALE);
}
END_TEST

START_TEST(elect_tried_members_cost_a_ticket_until_all_tried)
{
    int32_t m;
    members(12);
    sr_tried_init(&tried, 12);
    schedule_takers(12);
    sr_tried_add(pool, &tried, 0);
    ck_assert_int_eq(sr_elect_check(&sched, 0, view, 12, &tried, &m), SR_ELECT_TRIED);
    ck_assert_int_eq(sr_elect_check(&sched, 1, view, 12, &tried, &m), SR_ELECT_OK);
    /* more than 8 tried: no fixed cap, the bound counts distinct members */
    for (m = 0; m < 11; m++) {
        sr_tried_add(pool, &tried, (uint32_t)m);
    }
    ck_assert_uint_eq(tried.count, 11);
    ck_assert_int_eq(sr_elect_check(&sched, 5, view, 12, &tried, &m), SR_ELECT_TRIED);
    ck_assert_int_eq(sr_elect_check(&sched, 11, view, 12, &tried, &m), SR_ELECT_OK);
    ck_assert_int_eq(m, 11);
    sr_tried_add(pool, &tried, 11);
    ck_assert_int_eq(sr_elect_check(&sched, 11, view, 12, &tried, &m), SR_ELECT_NONE);
    ck_assert(sr_schedule_exhausted(&sched, &tried));
}
END_TEST

START_TEST(elect_none_without_takers)
{
    int32_t m;
    members(2);
    view[0].usable = 0;
    view[1].usable = 0;
    no_tried();
    schedule_takers(2);
    ck_assert_int_eq(sr_elect_check(&sched, 0, view, 2, &tried, &m), SR_ELECT_NONE);
}
END_TEST

START_TEST(tried_set_of_any_size)
{
    sr_tried_t t;
    sr_tried_init(&t, 1000);
    sr_tried_add(pool, &t, 999);
    sr_tried_add(pool, &t, 999);
    sr_tried_add(pool, &t, 1000);     /* out of range: ignored */
    ck_assert(sr_tried_has(&t, 999));
    ck_assert(!sr_tried_has(&t, 998));
    ck_assert(!sr_tried_has(&t, 1000));
    ck_assert_uint_eq(t.count, 1);
    ck_assert(!sr_tried_has(NULL, 1));
}
END_TEST

START_TEST(leastbusy_picks_the_least_loaded_ties_by_schedule)
{
    static const uint32_t idle[] = { 0, 0, 0 };
    static const uint32_t busy0[] = { 5, 0, 1 };
    int32_t m;
    uint64_t t;
    members(3);
    no_tried();
    with_loads(3, idle);
    schedule_takers(3);
    /* all idle: exactly the round robin */
    for (t = 0; t < 6; t++) {
        ck_assert_int_eq(sr_elect_leastbusy(&sched, t, view, 3, &tried, &m), SR_ELECT_OK);
        ck_assert_int_eq(m, (int32_t)(t % 3));
    }
    with_loads(3, busy0);
    for (t = 0; t < 6; t++) {
        sr_elect_leastbusy(&sched, t, view, 3, &tried, &m);
        ck_assert_int_eq(m, 1);
    }
    /* relative to the weight: 5 over 10 beats 1 over 1 */
    view[0].weight = 10;
    load[1] = 1;
    sr_elect_leastbusy(&sched, 0, view, 3, &tried, &m);
    ck_assert_int_eq(m, 0);
    /* an idle member of small weight (slow start) does not win against
     * busier members of full weight: (0+1)/1 > (2+1)/1000 */
    view[0].weight = 1000;
    view[1].weight = 1;
    view[2].weight = 1000;
    load[0] = 2;
    load[1] = 0;
    load[2] = 3;
    sr_elect_leastbusy(&sched, 0, view, 3, &tried, &m);
    ck_assert_int_eq(m, 0);
    view[0].weight = 10;
    view[1].weight = view[2].weight = 1;
    load[0] = 5;
    load[1] = 1;
    load[2] = 1;
    /* tried members are skipped; all tried: none */
    sr_tried_add(pool, &tried, 0);
    sr_elect_leastbusy(&sched, 0, view, 3, &tried, &m);
    ck_assert(m == 1 || m == 2);
    sr_tried_add(pool, &tried, 1);
    sr_tried_add(pool, &tried, 2);
    ck_assert_int_eq(sr_elect_leastbusy(&sched, 0, view, 3, &tried, &m), SR_ELECT_NONE);
}
END_TEST

/* How many slots of the schedule member k has. */
static uint32_t slots_of(uint16_t k)
{
    uint32_t i, c = 0;
    for (i = 0; i < sched.len; i++) {
        c += sched.slots[i] == k;
    }
    return c;
}

START_TEST(leastbusy_member_in_slow_start_takes_only_its_turns)
{
    /* m3 came back with no sessions: idle, while m0..m2 serve theirs */
    static const uint32_t busy[] = { 8, 6, 8, 0 };
    uint32_t got[4] = { 0, 0, 0, 0 }, mine;
    int32_t m;
    uint64_t t;
    members(4);
    no_tried();
    with_loads(4, busy);
    view[0].weight = view[1].weight = view[2].weight = 1000;
    view[3].weight = 250;                       /* a quarter of its ramp */
    view[3].ramping = 1;
    schedule_takers(4);
    ck_assert_uint_eq(sched.len, 13);
    mine = slots_of(3);
    ck_assert_uint_eq(mine, 1);
    /* its turns only, though it is the least busy (1/250 < 7/1000); the
     * other tickets go by load among the members at full weight */
    for (t = 0; t < 10 * sched.len; t++) {
        ck_assert_int_eq(sr_elect_leastbusy(&sched, t, view, 4, &tried, &m), SR_ELECT_OK);
        got[m]++;
    }
    ck_assert_uint_eq(got[3], 10 * mine);
    ck_assert_uint_eq(got[1], 10 * (sched.len - mine));
    /* the same member not ramping: its load decides (every ticket) */
    view[3].ramping = 0;
    got[3] = 0;
    for (t = 0; t < sched.len; t++) {
        sr_elect_leastbusy(&sched, t, view, 4, &tried, &m);
        got[3] += m == 3;
    }
    ck_assert_uint_eq(got[3], sched.len);
    view[3].ramping = 1;
    /* on its turn even when busy: the ramp, not the load, is its limit */
    load[3] = 50;
    for (t = 0; t < sched.len; t++) {
        if (sched.slots[t] == 3) {
            sr_elect_leastbusy(&sched, t, view, 4, &tried, &m);
            ck_assert_int_eq(m, 3);
        }
    }
    /* its turn while it failed in this request: by load among the others */
    sr_tried_add(pool, &tried, 3);
    for (t = 0; t < sched.len; t++) {
        sr_elect_leastbusy(&sched, t, view, 4, &tried, &m);
        ck_assert_int_eq(m, 1);
    }
    /* every member at full weight tried: the ramping one by load */
    no_tried();
    sr_tried_add(pool, &tried, 0);
    sr_tried_add(pool, &tried, 1);
    sr_tried_add(pool, &tried, 2);
    for (t = 0; t < sched.len; t++) {
        ck_assert_int_eq(sr_elect_leastbusy(&sched, t, view, 4, &tried, &m), SR_ELECT_OK);
        ck_assert_int_eq(m, 3);
    }
    sr_tried_add(pool, &tried, 3);
    ck_assert_int_eq(sr_elect_leastbusy(&sched, 0, view, 4, &tried, &m), SR_ELECT_NONE);
}
END_TEST

START_TEST(leastbusy_new_sessions_follow_the_ramp_step_by_step)
{
    /* a 10 s ramp looked at every 0.5 s (sr_slowstart_rescan): at every
     * step the returning member (idle) takes exactly its schedule share,
     * its weight's share, never more than the ramp's f / (f + 3) (at 0 s
     * the weight floor: 1 in 3001) */
    static const uint32_t busy[] = { 6, 7, 5, 0 };
    int64_t ramp = 10000000, e;
    int32_t m;
    uint64_t t;
    for (e = 0; e < ramp; e += sr_slowstart_rescan(e, ramp, 1000000)) {
        uint32_t got = 0, w3 = sr_slowstart_weight(1, e, ramp);
        double f = sr_slowstart_share(e, ramp);
        members(4);
        no_tried();
        with_loads(4, busy);
        view[0].weight = view[1].weight = view[2].weight
            = sr_slowstart_weight(1, INT64_MAX, ramp);
        view[3].weight = w3;
        view[3].ramping = (unsigned char)sr_slowstart_ramping(e, ramp);
        ck_assert(view[3].ramping);
        schedule_takers(4);
        for (t = 0; t < sched.len; t++) {
            sr_elect_leastbusy(&sched, t + 7 * (uint64_t)e, view, 4, &tried, &m);
            got += m == 3;
        }
        ck_assert_uint_eq(got, slots_of(3));
        ck_assert_msg((double)got <= (double)sched.len * w3 / (w3 + 3000.0) + 1e-9
                      && (e == 0 || (double)got <= (double)sched.len * f / (f + 3) + 1e-9),
                      "at %lld us: %u of %u", (long long)e, got, sched.len);
    }
}
END_TEST

/* ---- the key's map stale (sr_hash_then) ----------------------------------- */

START_TEST(hash_then_one_rescan_when_stale)
{
    static const struct {
        int stale;
        uint32_t rescans;
        sr_hash_go_t want;
    } t[] = {
        { 0, 0, SR_HASH_GO_SERVE },     /* the map is current */
        { 0, 1, SR_HASH_GO_SERVE },
        { 1, 0, SR_HASH_GO_RESCAN },    /* stale: rescan, ask again */
        { 1, 1, SR_HASH_GO_SERVE },     /* stale again: its answer stands */
        { 1, 7, SR_HASH_GO_SERVE },
    };
    size_t i;

    ck_assert_int_eq(SR_HASH_RESCANS, 1);
    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        ck_assert_msg(sr_hash_then(t[i].stale, t[i].rescans) == t[i].want,
                      "row %u", (unsigned)i);
    }
}
END_TEST

/* ---- waiting for a usable member (sr_wait_decide) -------------------------- */

/* One row: the inputs (sr_wait_in_t), the verdict, and *sleep and
 * *retry_after where the row checks them (NA: not checked). */
#define NA (-1)

typedef struct {
    sr_wait_in_t in;
    sr_wait_verdict_t want;
    int64_t sleep;
    int64_t retry_after;
    const char *why;
} wait_row_t;

static void wait_rows(const wait_row_t *t, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        int64_t sleep = -7;
        uint32_t ra = 77;

        ck_assert_msg(sr_wait_decide(&t[i].in, &sleep, &ra) == t[i].want,
                      "row %u (%s): verdict", (unsigned)i, t[i].why);
        ck_assert_msg(t[i].sleep == NA || sleep == t[i].sleep,
                      "row %u (%s): sleep %lld", (unsigned)i, t[i].why,
                      (long long)sleep);
        ck_assert_msg(t[i].retry_after == NA || ra == t[i].retry_after,
                      "row %u (%s): Retry-After %u", (unsigned)i, t[i].why,
                      ra);
    }
}

#define WAIT_ROWS(t) wait_rows(t, sizeof(t) / sizeof(t[0]))

/*        limit    max usable forced waiting others waited stopping
 *        -> verdict, sleep, retry_after */
START_TEST(wait_goes_when_a_member_is_usable_or_waiting_is_off)
{
    static const wait_row_t t[] = {
        { { 2000000, 4, 1, 0, 0, 0, 0, 0 }, SR_WAIT_GO, NA, NA,
          "a usable member serves" },
        { { 2000000, 4, 1, 0, 0, 9, 5000000, 1 }, SR_WAIT_GO, 0, NA,
          "even past the limit, stopping or over max: a usable member" },
        { { 0, 4, 0, 0, 0, 0, 0, 0 }, SR_WAIT_GO, NA, NA,
          "off: mod_proxy_balancer answers as it always did" },
        { { 2000000, 4, 0, 1, 0, 0, 0, 0 }, SR_WAIT_GO, NA, NA,
          "every member in error and forcerecovery: retried at once" },
    };
    WAIT_ROWS(t);
}
END_TEST

START_TEST(wait_sleeps_in_steps_until_the_limit_then_times_out)
{
    static const wait_row_t t[] = {
        { { 2000000, 1, 0, 0, 0, 0, 0, 0 }, SR_WAIT_SLEEP, SR_WAIT_STEP, NA,
          "the first step" },
        { { 2000000, 1, 0, 0, 1, 0, 1000000, 0 }, SR_WAIT_SLEEP, SR_WAIT_STEP,
          NA, "waiting, a step" },
        { { 2000000, 1, 0, 0, 1, 0, 1980000, 0 }, SR_WAIT_SLEEP, 20000, NA,
          "the last step is only what is left of the limit" },
        { { 2000000, 1, 0, 0, 1, 0, 2000000, 0 }, SR_WAIT_TIMEOUT, 0, 2,
          "the limit: timed out" },
        { { 1500000, 1, 0, 0, 1, 0, 1600000, 0 }, SR_WAIT_TIMEOUT, NA, 2,
          "a limit of 1.5 s says Retry-After: 2" },
        { { 1, 1, 0, 0, 1, 0, 1600000, 0 }, SR_WAIT_TIMEOUT, NA, 1,
          "a tiny limit says at least 1" },
        { { 2000000, 1, 0, 0, 0, 0, 2000000, 0 }, SR_WAIT_TIMEOUT, NA, NA,
          "waited its limit in an earlier attempt (failover): no wait" },
    };
    WAIT_ROWS(t);
}
END_TEST

START_TEST(wait_refuses_beyond_max_but_keeps_those_already_waiting)
{
    static const wait_row_t t[] = {
        { { 10000000, 2, 0, 0, 0, 1, 0, 0 }, SR_WAIT_SLEEP, NA, NA,
          "a place left" },
        { { 10000000, 2, 0, 0, 0, 2, 0, 0 }, SR_WAIT_REFUSE, 0, 10,
          "no place left" },
        { { 10000000, 2, 0, 0, 1, 7, 300000, 0 }, SR_WAIT_SLEEP, NA, NA,
          "one that holds a place keeps it however many others wait" },
    };
    WAIT_ROWS(t);
}
END_TEST

START_TEST(wait_ends_at_once_when_the_process_stops)
{
    static const wait_row_t t[] = {
        { { 10000000, 2, 0, 0, 0, 0, 0, 1 }, SR_WAIT_STOPPING, NA, 1,
          "stopping" },
        { { 10000000, 2, 0, 0, 1, 0, 400000, 1 }, SR_WAIT_STOPPING, 0, NA,
          "stopping while waiting" },
        { { 10000000, 2, 2, 0, 1, 0, 400000, 1 }, SR_WAIT_GO, NA, NA,
          "a member usable at the same moment still serves" },
    };
    WAIT_ROWS(t);
}
END_TEST

void policy_elect_cases(Suite *s)
{
    const TTest *tests[] = {
        elect_follows_the_schedule,
        elect_stale_when_member_changed_since_the_scan,
        elect_tried_members_cost_a_ticket_until_all_tried,
        elect_none_without_takers,
        tried_set_of_any_size,
        hash_then_one_rescan_when_stale,
        leastbusy_picks_the_least_loaded_ties_by_schedule,
        leastbusy_member_in_slow_start_takes_only_its_turns,
        leastbusy_new_sessions_follow_the_ramp_step_by_step,
        wait_goes_when_a_member_is_usable_or_waiting_is_off,
        wait_sleeps_in_steps_until_the_limit_then_times_out,
        wait_refuses_beyond_max_but_keeps_those_already_waiting,
        wait_ends_at_once_when_the_process_stops,
    };

    suite_add_tcase(s, UNIT_TCASE("elect", 1, tests));
}
