/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests (check) of a scan's decisions: when a scan is due
 * (sr_scan_due, issue 18: the finders' rule before every decision) and slow
 * start's notes and weight at a scan (sr_slowstart_note,
 * sr_slowstart_member). Added to the sr_policy_request suite
 * (policy_scan_cases).
 */
#include <stdint.h>
#include <check.h>

#include "sr_policy.h"
#include "unit_util.h"

void policy_scan_cases(Suite *s);

/* ---- when a scan is due (sr_scan_due) -------------------------------------- */

START_TEST(scan_due_table)
{
    static const struct {
        int seen, now_members;
        int64_t now, next;
        int due;
        const char *why;
    } t[] = {
        { 3, 3, 100, 200, 0, "same members, before the next scan" },
        { 3, 3, 199, 200, 0, "same members, just before the next scan" },
        { 3, 3, 200, 200, 1, "the next scan's time came" },
        { 3, 3, 500, 200, 1, "the next scan's time passed" },
        { 3, 4, 100, 200, 1, "a member was added" },
        { 3, 2, 100, 200, 1, "a member was removed" },
        { 0, 3, 100, 200, 1, "never scanned members" },
        { 0, 0, 100, 0, 1, "no scan yet (next scan 0)" },
        { 0, 0, -1, 0, 0, "same (empty) list, before the next scan" },
    };
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        sr_scan_due_in_t in;
        in.members_seen = t[i].seen;
        in.members_now = t[i].now_members;
        in.now = t[i].now;
        in.next_scan = t[i].next;
        ck_assert_msg(sr_scan_due(&in) == t[i].due, "row %u: %s",
                      (unsigned)i, t[i].why);
    }
}
END_TEST

/* ---- slow start at a scan (sr_slowstart_note, sr_slowstart_member) -------- */

START_TEST(slowstart_note_down_once_when_it_takes_no_new_sessions)
{
    ck_assert_int_eq(sr_slowstart_note(0, 0), SR_SLOWSTART_DOWN);
    ck_assert_int_eq(sr_slowstart_note(0, 1), SR_SLOWSTART_KEEP);
}
END_TEST

START_TEST(slowstart_note_up_when_back_after_down)
{
    ck_assert_int_eq(sr_slowstart_note(1, 1), SR_SLOWSTART_UP);
    ck_assert_int_eq(sr_slowstart_note(1, 0), SR_SLOWSTART_KEEP);
}
END_TEST

static const int64_t sec = 1000000;

static sr_slowstart_in_t ss_in(uint32_t weight, int64_t ramp, int takes_new,
                               int64_t up_since)
{
    sr_slowstart_in_t in;
    in.weight = weight;
    in.ramp = ramp;
    in.takes_new = takes_new;
    in.up_since = up_since;
    in.now = 1000 * sec;
    in.interval = sec;
    return in;
}

START_TEST(slowstart_off_keeps_the_loadfactor_unscaled)
{
    sr_slowstart_in_t in = ss_in(3, 0, 1, 999 * sec);
    sr_slowstart_out_t out;
    sr_slowstart_member(&in, &out);
    ck_assert_uint_eq(out.weight, 3);
    ck_assert_int_eq(out.ramping, 0);
    ck_assert_int_eq(out.rescan, sec);
    in.weight = 0;                      /* 0 counts as 1 */
    sr_slowstart_member(&in, &out);
    ck_assert_uint_eq(out.weight, 1);
}
END_TEST

START_TEST(slowstart_ramps_from_up_since)
{
    sr_slowstart_in_t in = ss_in(2, 10 * sec, 1, 995 * sec);  /* 5 s in */
    sr_slowstart_out_t out;
    sr_slowstart_member(&in, &out);
    ck_assert_uint_eq(out.weight, 2 * SR_WEIGHT_SCALE / 2);
    ck_assert_int_eq(out.ramping, 1);
    ck_assert_int_eq(out.rescan, sec / 2);
    /* at the ramp's end: full weight, no longer ramping */
    in.up_since = 990 * sec;
    sr_slowstart_member(&in, &out);
    ck_assert_uint_eq(out.weight, 2 * SR_WEIGHT_SCALE);
    ck_assert_int_eq(out.ramping, 0);
    ck_assert_int_eq(out.rescan, sec);
}
END_TEST

START_TEST(slowstart_up_since_unknown_is_long_ago)
{
    sr_slowstart_in_t in = ss_in(2, 10 * sec, 1, 0);
    sr_slowstart_out_t out;
    sr_slowstart_member(&in, &out);
    ck_assert_uint_eq(out.weight, 2 * SR_WEIGHT_SCALE);
    ck_assert_int_eq(out.ramping, 0);
    ck_assert_int_eq(out.rescan, sec);
}
END_TEST

START_TEST(slowstart_member_taking_no_new_sessions_never_ramps)
{
    sr_slowstart_in_t in = ss_in(2, 10 * sec, 0, 995 * sec);
    sr_slowstart_out_t out;
    sr_slowstart_member(&in, &out);
    ck_assert_int_eq(out.ramping, 0);
    ck_assert_int_eq(out.rescan, sec);
    ck_assert_uint_eq(out.weight, SR_WEIGHT_SCALE);     /* as ramped */
}
END_TEST

START_TEST(slowstart_up_since_in_the_future_starts_at_the_bottom)
{
    /* another process's clock ahead: the ramp has not begun */
    sr_slowstart_in_t in = ss_in(2, 10 * sec, 1, 1001 * sec);
    sr_slowstart_out_t out;
    sr_slowstart_member(&in, &out);
    ck_assert_uint_eq(out.weight, 1);
    ck_assert_int_eq(out.ramping, 1);
    ck_assert_int_eq(out.rescan, sec / 2);
}
END_TEST

void policy_scan_cases(Suite *s)
{
    TCase *tc = tcase_create("scan");

    tcase_add_checked_fixture(tc, unit_setup, unit_teardown);
    tcase_add_test(tc, scan_due_table);
    tcase_add_test(tc, slowstart_note_down_once_when_it_takes_no_new_sessions);
    tcase_add_test(tc, slowstart_note_up_when_back_after_down);
    tcase_add_test(tc, slowstart_off_keeps_the_loadfactor_unscaled);
    tcase_add_test(tc, slowstart_ramps_from_up_since);
    tcase_add_test(tc, slowstart_up_since_unknown_is_long_ago);
    tcase_add_test(tc, slowstart_member_taking_no_new_sessions_never_ramps);
    tcase_add_test(tc, slowstart_up_since_in_the_future_starts_at_the_bottom);
    suite_add_tcase(s, tc);
}
