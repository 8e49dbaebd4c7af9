/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests (check) of a retry's decisions that came out of the glue
 * (issue 18): which failures enter the retry decision at all
 * (sr_retry_candidate), what a retried request inherits from its failed
 * attempt (sr_retry_inherit) and a retry sent back to the member that broke
 * (sr_decide_retry_same); and the retry itself (sr_retry_allowed,
 * sr_retry_member, sr_retry_unreached_allowed). Added to the sr_policy_request suite
 * (policy_retry_cases).
 */
#include <stdint.h>
#include <string.h>
#include <check.h>

#include "sr_policy.h"
#include "policy_fixture.h"

void policy_retry_cases(Suite *s);

/* ---- which failures enter the retry decision (sr_retry_candidate) --------- */

#define DONE_STATUS (-2)        /* httpd's DONE */

/* A 502 or 503 of a request ours, decided, not retried, not a subrequest,
 * on a balancer with state. */
static sr_retry_status_in_t candidate(int status)
{
    sr_retry_status_in_t in;

    memset(&in, 0, sizeof(in));
    in.status = status;
    in.ours = 1;
    in.decided = 1;
    in.state = 1;
    return in;
}

START_TEST(retry_candidate_table)
{
    /* status, done, ours, decided, retried, subrequest, state */
    static const struct {
        sr_retry_status_in_t in;
        sr_retry_candidate_t want;
        const char *why;
    } t[] = {
        { { 502, 0, 1, 1, 0, 0, 1 }, SR_RETRY_BROKE, "a member broke: 502" },
        { { 503, 0, 1, 1, 0, 0, 1 }, SR_RETRY_UNREACHED, "never reached: 503" },
        { { 200, 0, 1, 1, 0, 0, 1 }, SR_RETRY_NOT, "served" },
        { { 500, 0, 1, 1, 0, 0, 1 }, SR_RETRY_NOT, "500: not ours to retry" },
        { { 504, 0, 1, 1, 0, 0, 1 }, SR_RETRY_NOT, "504: timed out, no retry" },
        { { 404, 0, 1, 1, 0, 0, 1 }, SR_RETRY_NOT, "the member's answer" },
        { { 502, 0, 0, 0, 0, 0, 0 }, SR_RETRY_NOT, "not our balancer" },
        { { 502, 0, 1, 0, 0, 0, 1 }, SR_RETRY_NOT, "502 without a member" },
        { { 503, 0, 1, 0, 0, 0, 1 }, SR_RETRY_NOT, "503: the finder found none" },
        { { 502, 0, 1, 1, 1, 0, 1 }, SR_RETRY_NOT, "retried once already" },
        { { 503, 0, 1, 1, 1, 0, 1 }, SR_RETRY_NOT, "503 retried already" },
        { { 502, 0, 1, 1, 0, 1, 1 }, SR_RETRY_NOT, "a subrequest" },
        { { 503, 0, 1, 1, 0, 1, 1 }, SR_RETRY_NOT, "a 503 subrequest" },
        { { 502, 0, 1, 1, 0, 0, 0 }, SR_RETRY_NOT, "no balancer state" },
        { { DONE_STATUS, 1, 1, 1, 0, 0, 1 }, SR_RETRY_BROKEN_RESPONSE,
          "DONE: the response was cut off" },
        { { DONE_STATUS, 1, 1, 0, 1, 1, 0 }, SR_RETRY_BROKEN_RESPONSE,
          "DONE marks ours broken whatever else" },
        { { DONE_STATUS, 1, 0, 0, 0, 0, 0 }, SR_RETRY_NOT, "DONE, not ours" },
    };
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        ck_assert_msg(sr_retry_candidate(&t[i].in) == t[i].want, "row %u: %s",
                      (unsigned)i, t[i].why);
    }
}
END_TEST

START_TEST(retry_candidate_any_one_condition_missing_is_no_candidate)
{
    static const int statuses[] = { 502, 503 };
    size_t i, k;

    for (i = 0; i < 2; i++) {
        for (k = 0; k < 4; k++) {
            sr_retry_status_in_t in = candidate(statuses[i]);
            ck_assert_int_ne(sr_retry_candidate(&in), SR_RETRY_NOT);
            switch (k) {
            case 0: in.ours = 0; break;
            case 1: in.decided = 0; break;
            case 2: in.state = 0; break;
            default: in.retried = 1; in.subrequest = 1; break;
            }
            ck_assert_int_eq(sr_retry_candidate(&in), SR_RETRY_NOT);
        }
    }
}
END_TEST

/* ---- what a retried request inherits (sr_retry_inherit) -------------------- */

static sr_attempt_t attempt(int32_t retry_same)
{
    sr_attempt_t a;

    memset(&a, 0, sizeof(a));
    a.retries = 1;
    a.unreached = 1;
    a.retry_same = retry_same;
    a.last_same = 0;
    a.status = SR_STATUS_NEW;
    a.issue = 1;
    a.first = 4321;
    sr_tried_init(&a.tried, MAXM);
    sr_tried_add(pool, &a.tried, 2);
    return a;
}

START_TEST(retry_inherit_what_the_failed_attempt_knew)
{
    sr_attempt_t prev = attempt(-1), out;

    memset(&out, 0x5a, sizeof(out));
    ck_assert_int_eq(sr_retry_inherit(&prev, 1, 1, &out), 1);
    ck_assert_int_eq(out.retries, 2);           /* one more */
    ck_assert_int_eq(out.unreached, 1);
    ck_assert_int_eq(out.retry_same, -1);
    ck_assert_int_eq(out.last_same, 0);         /* not on the same member */
    ck_assert_int_eq(out.status, SR_STATUS_NEW);
    ck_assert_int_eq(out.issue, 1);
    ck_assert_int_eq(out.first, 4321);
    ck_assert(sr_tried_has(&out.tried, 2));     /* failed members stay out */
    ck_assert(!sr_tried_has(&out.tried, 1));
    ck_assert_uint_eq(out.tried.count, 1);
    ck_assert_uint_eq(out.tried.capacity, MAXM);
}
END_TEST

START_TEST(retry_inherit_a_retry_on_the_same_member_is_last_same)
{
    sr_attempt_t prev = attempt(3), out;

    prev.last_same = 0;
    ck_assert_int_eq(sr_retry_inherit(&prev, 1, 1, &out), 1);
    ck_assert_int_eq(out.retry_same, 3);
    ck_assert_int_eq(out.last_same, 1);
    /* the attempt's own last_same is not what counts */
    prev = attempt(-1);
    prev.last_same = 1;
    ck_assert_int_eq(sr_retry_inherit(&prev, 1, 1, &out), 1);
    ck_assert_int_eq(out.last_same, 0);
}
END_TEST

START_TEST(retry_inherit_nothing_unless_a_retry_on_the_same_balancer)
{
    static const struct { int has_prev, retry_issued, same_balancer; } t[] = {
        { 0, 1, 1 },            /* no earlier attempt */
        { 1, 0, 1 },            /* an internal redirect, not our retry */
        { 1, 1, 0 },            /* a retry, to another balancer */
        { 1, 0, 0 },
    };
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        sr_attempt_t prev = attempt(1), out, untouched;
        memset(&out, 0x5a, sizeof(out));
        memcpy(&untouched, &out, sizeof(out));
        ck_assert_int_eq(sr_retry_inherit(t[i].has_prev ? &prev : NULL,
                                          t[i].retry_issued,
                                          t[i].same_balancer, &out), 0);
        ck_assert_msg(!memcmp(&out, &untouched, sizeof(out)), "row %u",
                      (unsigned)i);
    }
}
END_TEST

/* ---- a retry on the member that broke (sr_decide_retry_same) --------------- */

/* One step of a retry_same test: sr_decide_retry_same over the first n
 * members, the member that broke, the tried set, the retried status, issue
 * and first, into d; then decision_is of the fields expected. */
#define SAME(n, member, status, issue, first, d_action, d_member, d_status, d_issue) \
    do { \
        sr_decide_retry_same(view, (n), (member), &tried, (status), (issue), (first), &d); \
        decision_is("line", __LINE__, &d, (d_action), (d_member), (d_status), (d_issue)); \
    } while (0)

START_TEST(retry_same_serves_there_with_the_retried_decision)
{
    sr_decision_t d;
    fresh(3);
    /* issue 1: the new session's cookie */
    SAME(3, 1, SR_STATUS_NEW, 1, 1234, SR_ACT_SERVE, 1, SR_STATUS_NEW, 1);
    ck_assert_int_eq(d.first, 1234);
    ck_assert_ptr_nonnull(d.why);
    SAME(3, 0, SR_STATUS_ROUNDROBIN, 0, 0, SR_ACT_SERVE, 0, SR_STATUS_ROUNDROBIN, 0);
}
END_TEST

START_TEST(retry_same_none_decides_as_usual)
{
    sr_decision_t d;
    fresh(3);
    SAME(3, -1, SR_STATUS_HIT, 0, 0, SR_ACT_ELECT, -1, ANY, ANY);
}
END_TEST

START_TEST(retry_same_member_no_longer_in_the_list)
{
    sr_decision_t d;
    fresh(3);
    SAME(2, 2, SR_STATUS_HIT, 0, 0, SR_ACT_ELECT, ANY, ANY, ANY);
    SAME(3, 7, SR_STATUS_HIT, 0, 0, SR_ACT_ELECT, -1, ANY, ANY);
}
END_TEST

START_TEST(retry_same_member_unusable_now)
{
    sr_decision_t d;
    fresh(3);
    view[2].usable = 0;
    SAME(3, 2, SR_STATUS_HIT, 1, 5, SR_ACT_ELECT, -1, ANY, 0);
}
END_TEST

START_TEST(retry_same_member_failed_in_this_request)
{
    sr_decision_t d;
    fresh(3);
    sr_tried_add(pool, &tried, 2);
    SAME(3, 2, SR_STATUS_HIT, 0, 0, SR_ACT_ELECT, ANY, ANY, ANY);
}
END_TEST

START_TEST(retry_same_draining_member_still_takes_its_retry)
{
    /* usable is the rule: a draining member keeps the requests of its
     * sessions, this one's retry included */
    sr_decision_t d;
    fresh(3);
    view[1].draining = 1;
    SAME(3, 1, SR_STATUS_HIT, 0, 0, SR_ACT_SERVE, 1, ANY, ANY);
}
END_TEST

/* ---- retry, and on which member (sr_retry_allowed, sr_retry_member,
 * sr_retry_unreached_allowed) ------------------------------------------------ */

START_TEST(retry_allowed_rules)
{
    sr_retry_in_t in = { 1, 1, 0, 0, 0, 0, 0 };
    ck_assert(sr_retry_allowed(&in));
    in.enabled = 0;
    ck_assert(!sr_retry_allowed(&in));
    in.enabled = 1;
    in.idempotent = 0;                  /* POST */
    ck_assert(!sr_retry_allowed(&in));
    in.idempotent = 1;
    in.has_body = 1;
    ck_assert(!sr_retry_allowed(&in));
    in.has_body = 0;
    in.response_started = 1;
    ck_assert(!sr_retry_allowed(&in));
    in.response_started = 0;
    in.member_answered = 1;             /* ProxyErrorOverride: its own 502 */
    ck_assert(!sr_retry_allowed(&in));
    in.member_answered = 0;
    in.retries = 1;                     /* a retry on another member */
    ck_assert(!sr_retry_allowed(&in));
    in.last_same = 1;                   /* a retry on the same member */
    ck_assert(sr_retry_allowed(&in));
    in.retries = 2;
    ck_assert(!sr_retry_allowed(&in));
}
END_TEST

START_TEST(retry_same_member_after_a_reused_connection_broke)
{
    fresh(2);
    /* reused connection, not a timeout, member usable: same member */
    ck_assert_int_eq(sr_retry_member(view, 2, 1, 0, 0, 0, &tried), 1);
    /* a fresh connection broke: the member counts as failed */
    ck_assert_int_eq(sr_retry_member(view, 2, 1, 1, 0, 0, &tried), -1);
    /* a timeout: another member */
    ck_assert_int_eq(sr_retry_member(view, 2, 1, 0, 1, 0, &tried), -1);
    /* the second retry never insists */
    ck_assert_int_eq(sr_retry_member(view, 2, 1, 0, 0, 1, &tried), -1);
    /* an unusable or already failed member: another */
    view[1].usable = 0;
    ck_assert_int_eq(sr_retry_member(view, 2, 1, 0, 0, 0, &tried), -1);
    view[1].usable = 1;
    sr_tried_add(pool, &tried, 1);
    ck_assert_int_eq(sr_retry_member(view, 2, 1, 0, 0, 0, &tried), -1);
    ck_assert_int_eq(sr_retry_member(view, 2, -1, 0, 0, 0, &tried), -1);
    ck_assert_int_eq(sr_retry_member(view, 2, 7, 0, 0, 0, &tried), -1);
}
END_TEST

START_TEST(retry_unreached_member_on_another_whatever_maxattempts)
{
    /* a 503: the member was never reached (connect refused, unusable by
     * the time of the connect); nothing was sent to it */
    sr_retry_in_t in = { 1, 1, 0, 0, 0, 0, 0 };
    int k;
    for (k = 0; k < SR_RETRY_UNREACHED_MAX; k++) {
        ck_assert(sr_retry_unreached_allowed(&in, k));
    }
    ck_assert(!sr_retry_unreached_allowed(&in, SR_RETRY_UNREACHED_MAX));
    ck_assert(!sr_retry_unreached_allowed(&in, -1));
    /* retries after broken members do not count against it */
    in.retries = 2;
    in.last_same = 0;
    ck_assert(sr_retry_unreached_allowed(&in, 0));
    /* the request's own rules are those of sr_retry_allowed */
    in.enabled = 0;
    ck_assert(!sr_retry_unreached_allowed(&in, 0));
    in.enabled = 1;
    in.idempotent = 0;                  /* POST */
    ck_assert(!sr_retry_unreached_allowed(&in, 0));
    in.idempotent = 1;
    in.has_body = 1;
    ck_assert(!sr_retry_unreached_allowed(&in, 0));
    in.has_body = 0;
    in.response_started = 1;
    ck_assert(!sr_retry_unreached_allowed(&in, 0));
    in.response_started = 0;
    in.member_answered = 1;             /* ProxyErrorOverride: its own 503 */
    ck_assert(!sr_retry_unreached_allowed(&in, 0));
    /* the bound keeps every retry of one request (after broken members: at
     * most 2) well below httpd's LimitInternalRecursion default (10) */
    ck_assert_int_lt(SR_RETRY_UNREACHED_MAX + 2, 10);
}
END_TEST

void policy_retry_cases(Suite *s)
{
    const TTest *tests[] = {
        retry_candidate_table,
        retry_candidate_any_one_condition_missing_is_no_candidate,
        retry_inherit_what_the_failed_attempt_knew,
        retry_inherit_a_retry_on_the_same_member_is_last_same,
        retry_inherit_nothing_unless_a_retry_on_the_same_balancer,
        retry_same_serves_there_with_the_retried_decision,
        retry_same_none_decides_as_usual,
        retry_same_member_no_longer_in_the_list,
        retry_same_member_unusable_now,
        retry_same_member_failed_in_this_request,
        retry_same_draining_member_still_takes_its_retry,
        retry_allowed_rules,
        retry_same_member_after_a_reused_connection_broke,
        retry_unreached_member_on_another_whatever_maxattempts,
    };

    suite_add_tcase(s, UNIT_TCASE("retry", 1, tests));
}
