/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests (check) of a scan's decisions: when a scan is due
 * (sr_scan_due, issue 18: the finders' rule before every decision), who
 * takes new sessions (sr_policy_takers: member states, lbsets, hot spares
 * and standbys), slow start (sr_slowstart_*) and in-flight accounting
 * (sr_inflight_accounting). Added to the sr_policy_request suite
 * (policy_scan_cases).
 */
#include <stdint.h>
#include <string.h>
#include <check.h>

#include "sr_policy.h"
#include "policy_fixture.h"

void policy_scan_cases(Suite *s);

/* ---- when a scan is due (sr_scan_due) -------------------------------------- */

START_TEST(scan_due_table)
{
    /* members seen at the last scan, members now, now, next scan */
    static const struct {
        sr_scan_due_in_t in;
        int due;
        const char *why;
    } t[] = {
        { { 3, 3, 100, 200 }, 0, "same members, before the next scan" },
        { { 3, 3, 199, 200 }, 0, "same members, just before the next scan" },
        { { 3, 3, 200, 200 }, 1, "the next scan's time came" },
        { { 3, 3, 500, 200 }, 1, "the next scan's time passed" },
        { { 3, 4, 100, 200 }, 1, "a member was added" },
        { { 3, 2, 100, 200 }, 1, "a member was removed" },
        { { 0, 3, 100, 200 }, 1, "never scanned members" },
        { { 0, 0, 100, 0 }, 1, "no scan yet (next scan 0)" },
        { { 0, 0, -1, 0 }, 0, "same (empty) list, before the next scan" },
    };
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        ck_assert_msg(sr_scan_due(&t[i].in) == t[i].due, "row %u: %s",
                      (unsigned)i, t[i].why);
    }
}
END_TEST

/* ---- slow start at a scan (sr_slowstart_note, sr_slowstart_member) -------- */

/* sr_slowstart_note(takes new sessions, noted down already): down once when
 * it takes no new sessions, up when back after down. */
static const struct {
    const char *why;
    int takes_new, noted_down;
    int want;
} note_cases[] = {
    {"takes none: down", 0, 0, SR_SLOWSTART_DOWN},
    {"takes none, noted down already: kept (down once)", 0, 1, SR_SLOWSTART_KEEP},
    {"back after down: up", 1, 1, SR_SLOWSTART_UP},
    {"takes new, never down: kept", 1, 0, SR_SLOWSTART_KEEP},
};

START_TEST(slowstart_note_cases)
{
    int got = (int)sr_slowstart_note(note_cases[_i].takes_new, note_cases[_i].noted_down);

    ck_assert_msg(got == note_cases[_i].want, "%s: %d, not %d", note_cases[_i].why, got,
                  note_cases[_i].want);
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

/* One step of a slow start test: sr_slowstart_member of *in, then each
 * expected field but those given as ANY checked; a failure names the test's
 * line of the step and the field. */
static void slowstart_step(int line, const sr_slowstart_in_t *in, int64_t weight,
                           int ramping, int64_t rescan)
{
    sr_slowstart_out_t out;

    sr_slowstart_member(in, &out);
    if (weight != ANY)
        ck_assert_msg((int64_t)out.weight == weight, "line %d: weight %u, not %lld",
                      line, out.weight, (long long)weight);
    if (ramping != ANY)
        ck_assert_msg(out.ramping == ramping, "line %d: ramping %d, not %d", line,
                      out.ramping, ramping);
    if (rescan != ANY)
        ck_assert_msg(out.rescan == rescan, "line %d: rescan %lld, not %lld", line,
                      (long long)out.rescan, (long long)rescan);
}

/* The step of the test's inputs in. */
#define SLOWSTART(weight, ramping, rescan) \
    slowstart_step(__LINE__, &in, (weight), (ramping), (rescan))

START_TEST(slowstart_off_keeps_the_loadfactor_unscaled)
{
    sr_slowstart_in_t in = ss_in(3, 0, 1, 999 * sec);
    SLOWSTART(3, 0, sec);
    in.weight = 0;                      /* 0 counts as 1 */
    SLOWSTART(1, ANY, ANY);
}
END_TEST

START_TEST(slowstart_ramps_from_up_since)
{
    sr_slowstart_in_t in = ss_in(2, 10 * sec, 1, 995 * sec);  /* 5 s in */
    SLOWSTART(2 * SR_WEIGHT_SCALE / 2, 1, sec / 2);
    /* at the ramp's end: full weight, no longer ramping */
    in.up_since = 990 * sec;
    SLOWSTART(2 * SR_WEIGHT_SCALE, 0, sec);
}
END_TEST

START_TEST(slowstart_up_since_unknown_is_long_ago)
{
    sr_slowstart_in_t in = ss_in(2, 10 * sec, 1, 0);
    SLOWSTART(2 * SR_WEIGHT_SCALE, 0, sec);
}
END_TEST

START_TEST(slowstart_member_taking_no_new_sessions_never_ramps)
{
    sr_slowstart_in_t in = ss_in(2, 10 * sec, 0, 995 * sec);
    SLOWSTART(SR_WEIGHT_SCALE, 0, sec);     /* as ramped */
}
END_TEST

START_TEST(slowstart_up_since_in_the_future_starts_at_the_bottom)
{
    /* another process's clock ahead: the ramp has not begun */
    sr_slowstart_in_t in = ss_in(2, 10 * sec, 1, 1001 * sec);
    SLOWSTART(1, 1, sec / 2);
}
END_TEST

/* ---- who takes new sessions, slow start, in-flight accounting ----------- */

/* One step of a takers test: the takers of the first n members are the
 * member numbers want and, unless want_fs is ANY, from_standby is want_fs;
 * a failure names the test's line of the step. */
static void takers_step(int line, uint32_t n, const char *want, int want_fs)
{
    int fs;
    const char *got = takers_of(n, &fs);

    ck_assert_msg(strcmp(got, want) == 0, "line %d: takers \"%s\", not \"%s\"", line, got,
                  want);
    if (want_fs != ANY)
        ck_assert_msg(fs == want_fs, "line %d: from_standby %d, not %d", line, fs, want_fs);
}

#define TAKERS(n, want, want_fs) takers_step(__LINE__, (n), (want), (want_fs))

START_TEST(takers_all_usable_members)
{
    members(3);
    TAKERS(3, "012", 0);
}
END_TEST

START_TEST(takers_skip_unusable_member)
{
    members(3);
    view[1].usable = 0;
    TAKERS(3, "02", ANY);
}
END_TEST

START_TEST(takers_skip_draining_member)
{
    members(3);
    view[2].draining = 1;
    TAKERS(3, "01", ANY);
}
END_TEST

START_TEST(takers_weights_are_loadfactors)
{
    members(2);
    view[0].weight = 5;
    view[1].weight = 0;     /* treated as 1 */
    TAKERS(2, "01", ANY);
    ck_assert_uint_eq(weights[0], 5);
    ck_assert_uint_eq(weights[1], 1);
}
END_TEST

START_TEST(takers_hot_standby_only_when_nobody_else)
{
    members(3);
    view[2].standby = 1;
    TAKERS(3, "01", 0);
    view[0].usable = 0;
    view[1].usable = 0;
    TAKERS(3, "2", 1);
}
END_TEST

START_TEST(takers_draining_standby_is_not_used)
{
    members(2);
    view[0].usable = 0;
    view[1].standby = 1;
    view[1].draining = 1;
    TAKERS(2, "", ANY);
}
END_TEST

START_TEST(takers_hot_spares_replace_unusable_one_for_one)
{
    members(5);
    view[3].spare = 1;
    view[4].spare = 1;
    TAKERS(5, "012", ANY);     /* nobody to replace */
    view[1].usable = 0;
    TAKERS(5, "023", ANY);     /* one spare for one */
    view[2].draining = 1;                           /* draining counts */
    TAKERS(5, "034", ANY);
    view[3].usable = 0;                             /* a spare down */
    TAKERS(5, "04", ANY);
}
END_TEST

START_TEST(takers_lowest_lbset_with_a_usable_member)
{
    members(4);
    view[0].lbset = 1;
    view[1].lbset = 1;
    view[2].lbset = 2;
    view[3].lbset = 2;
    TAKERS(4, "01", ANY);
    view[0].usable = 0;
    TAKERS(4, "1", ANY);
    view[1].draining = 1;
    TAKERS(4, "23", ANY);
}
END_TEST

START_TEST(takers_standbys_of_an_lbset_before_the_next_lbset)
{
    /* as mod_proxy_balancer: lbset 0's standby before lbset 1's members */
    members(3);
    view[0].lbset = 0;
    view[1].lbset = 0;
    view[1].standby = 1;
    view[2].lbset = 1;
    view[0].usable = 0;
    TAKERS(3, "1", 1);
    view[1].usable = 0;
    TAKERS(3, "2", 0);
}
END_TEST

START_TEST(takers_spares_stay_in_their_lbset)
{
    members(3);
    view[0].lbset = 0;
    view[1].lbset = 1;
    view[1].spare = 1;
    view[2].lbset = 1;
    view[0].usable = 0;
    /* lbset 0 has no usable member and no spare: lbset 1 takes over, and
     * its spare has nobody to replace there */
    TAKERS(3, "2", ANY);
}
END_TEST

START_TEST(takers_none_when_nobody_usable)
{
    members(2);
    view[0].usable = 0;
    view[1].usable = 0;
    TAKERS(2, "", ANY);
    TAKERS(0, "", ANY);
}
END_TEST

START_TEST(slow_start_ramp)
{
    ck_assert_uint_eq(sr_slowstart_weight(2, 0, 10), 1);
    ck_assert_uint_eq(sr_slowstart_weight(2, 5, 10), 1000);
    ck_assert_uint_eq(sr_slowstart_weight(2, 10, 10), 2000);
    ck_assert_uint_eq(sr_slowstart_weight(2, 99, 10), 2000);
    ck_assert_uint_eq(sr_slowstart_weight(2, 3, 0), 2000);
    ck_assert(sr_slowstart_share(0, 10) == 0.0);
    ck_assert(sr_slowstart_share(5, 10) == 0.5);
    ck_assert(sr_slowstart_share(11, 10) == 1.0);
    ck_assert(sr_slowstart_share(1, 0) == 1.0);
}
END_TEST

START_TEST(slow_start_ramping_and_when_to_look_again)
{
    const int64_t s = 1000000;                 /* one second, in us */
    ck_assert(sr_slowstart_ramping(0, 10 * s));
    ck_assert(sr_slowstart_ramping(-5, 10 * s));
    ck_assert(sr_slowstart_ramping(10 * s - 1, 10 * s));
    ck_assert(!sr_slowstart_ramping(10 * s, 10 * s));
    ck_assert(!sr_slowstart_ramping(INT64_MAX, 10 * s));
    ck_assert(!sr_slowstart_ramping(0, 0));
    /* a 10 s ramp: every 0.5 s, and at its end */
    ck_assert_int_eq(sr_slowstart_rescan(0, 10 * s, s), s / 2);
    ck_assert_int_eq(sr_slowstart_rescan(-5, 10 * s, s), s / 2);
    ck_assert_int_eq(sr_slowstart_rescan(9 * s + s / 5 * 4, 10 * s, s), s / 5);
    /* never more often than a twentieth of the interval */
    ck_assert_int_eq(sr_slowstart_rescan(10 * s - 10, 10 * s, s), s / 20);
    ck_assert_int_eq(sr_slowstart_rescan(0, s, s), s / 20);
    /* a long ramp: the interval; no ramp, or over: the interval */
    ck_assert_int_eq(sr_slowstart_rescan(0, 60 * s, s), s);
    ck_assert_int_eq(sr_slowstart_rescan(10 * s, 10 * s, s), s);
    ck_assert_int_eq(sr_slowstart_rescan(INT64_MAX, 10 * s, s), s);
    ck_assert_int_eq(sr_slowstart_rescan(0, 0, s), s);
}
END_TEST

/* In-flight accounting: on only when a setting reads the counts or
 * StickyRouteInflight On asks for them; Off with a reader is refused and
 * names the reader. Every combination of the three readers and the three
 * settings of the directive. */
START_TEST(inflight_accounting_only_when_something_reads_it)
{
    static const char *const names[3] = {
        "StickyRouteElect leastbusy", "StickyRouteRebalance",
        "StickyRouteHashBalance"
    };
    unsigned mask;
    int set;

    for (mask = 0; mask < 8; mask++) {
        for (set = -1; set <= 1; set++) {
            sr_inflight_in_t in;
            const char *reader = "unset";
            const char *want_reader = NULL;
            sr_inflight_t got, want;
            int k;

            in.elect = (mask & 1) ? SR_ELECT_LEASTBUSY : SR_ELECT_ROUNDROBIN;
            in.rebalance_idle = (mask & 2) ? 300 : 0;
            in.hash_balance = (mask & 4) ? 125 : 0;
            in.inflight = set;
            for (k = 0; k < 3 && !want_reader; k++) {
                if (mask & (1u << k)) {
                    want_reader = names[k];     /* the first, in that order */
                }
            }
            want = set == 1 ? SR_INFLIGHT_ON
                 : set == 0 ? (want_reader ? SR_INFLIGHT_REFUSED : SR_INFLIGHT_OFF)
                 : (want_reader ? SR_INFLIGHT_ON : SR_INFLIGHT_OFF);
            got = sr_inflight_accounting(&in, &reader);
            ck_assert_msg(got == want, "readers %u, setting %d: %d, wanted %d",
                          mask, set, (int)got, (int)want);
            if (want_reader) {
                ck_assert_ptr_nonnull(reader);
                ck_assert_str_eq(reader, want_reader);
            }
            else {
                ck_assert_ptr_null(reader);
            }
            /* needed_by may be NULL */
            ck_assert_int_eq(sr_inflight_accounting(&in, NULL), want);
        }
    }
    /* the other elections read nothing */
    {
        sr_inflight_in_t in = { SR_ELECT_HASH, 0, 0, -1 };
        ck_assert_int_eq(sr_inflight_accounting(&in, NULL), SR_INFLIGHT_OFF);
        in.inflight = 0;
        ck_assert_int_eq(sr_inflight_accounting(&in, NULL), SR_INFLIGHT_OFF);
    }
}
END_TEST

void policy_scan_cases(Suite *s)
{
    const TTest *tests[] = {
        scan_due_table,
        takers_all_usable_members,
        takers_skip_unusable_member,
        takers_skip_draining_member,
        takers_weights_are_loadfactors,
        takers_hot_standby_only_when_nobody_else,
        takers_draining_standby_is_not_used,
        takers_hot_spares_replace_unusable_one_for_one,
        takers_lowest_lbset_with_a_usable_member,
        takers_standbys_of_an_lbset_before_the_next_lbset,
        takers_spares_stay_in_their_lbset,
        takers_none_when_nobody_usable,
        slow_start_ramp,
        slow_start_ramping_and_when_to_look_again,
        inflight_accounting_only_when_something_reads_it,
        slowstart_off_keeps_the_loadfactor_unscaled,
        slowstart_ramps_from_up_since,
        slowstart_up_since_unknown_is_long_ago,
        slowstart_member_taking_no_new_sessions_never_ramps,
        slowstart_up_since_in_the_future_starts_at_the_bottom,
    };
    TCase *tc = UNIT_TCASE("scan", 1, tests);

    UNIT_TABLE_TEST(tc, slowstart_note_cases, note_cases);
    suite_add_tcase(s, tc);
}
