/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests of the policy (check), the sticky side: every row of the
 * decision table (sr_decide_sticky), every member state, lifetimes and
 * rebalancing, reading cookies, route choice, overload. The rest of the
 * policy's tests, by concern: test_sr_policy_scan.c (takers, slow start,
 * in-flight accounting), test_sr_policy_elect.c (election, waiting),
 * test_sr_policy_retry.c, test_sr_policy_cookie.c (values, Set-Cookie,
 * escaping), test_sr_policy_discover.c; test_sr_policy_request.c (the
 * questions that came out of the glue). policy_suite adds them all but
 * the request's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>

#include "apr_general.h"
#include "apr_strings.h"
#include "sr_policy.h"
#include "policy_fixture.h"

Suite *policy_suite(void);
void policy_elect_cases(Suite *s);      /* test_sr_policy_elect.c */
void policy_cookie_cases(Suite *s);     /* test_sr_policy_cookie.c */
void policy_discover_cases(Suite *s);   /* test_sr_policy_discover.c */

/* ---- the decision's inputs -------------------------------------------- */

static sr_sticky_in_t sticky_in;

/* the decision's other inputs: no dates, now = 1000000 */
static const sr_sticky_in_t *in(int from_standby, int nofailover)
{
    sticky_in.from_standby = from_standby;
    sticky_in.nofailover = nofailover;
    sticky_in.now = 1000000;
    sticky_in.lifetime = NULL;
    return &sticky_in;
}

static sr_cookie_read_t cookie_naming(int32_t member, sr_cookie_form_t form)
{
    sr_cookie_read_t c;
    sr_cookie_read_init(&c);
    c.member = member;
    c.form = form;
    c.foreign = form == SR_FORM_FOREIGN;
    return c;
}

static sr_cookie_read_t cookie_absent(sr_status_t why)
{
    sr_cookie_read_t c;
    sr_cookie_read_init(&c);
    c.absent = why;
    return c;
}

/* ---- the sticky decision table, row by row ------------------------------ */

/* One step of a decision test: sr_decide_sticky over the first n members of
 * the view, the tried set, the cookie *c and the inputs *sin, into *d; then
 * decision_is (policy_fixture.h) of the fields expected. */
static void decide_step(int line, sr_decision_t *d, uint32_t n, const sr_cookie_read_t *c,
                        const sr_sticky_in_t *sin, int action, int member, int status,
                        int issue)
{
    sr_decide_sticky(view, n, c, &tried, sin, d);
    decision_is("line", line, d, action, member, status, issue);
}

/* The step of the test's decision d of its cookie c. */
#define DECIDE(n, sin, action, member, status, issue) \
    decide_step(__LINE__, &d, (n), &c, (sin), (action), (member), (status), (issue))

/* The decisions of one step, one row each, named after the test it came
 * from: n fresh members, the cookie names member (form) or, member -1, is
 * absent (why), member flagged has flag; then the fields wanted (ANY: not
 * checked). */
enum { FLAG_NONE, FLAG_DRAINING, FLAG_SPARE, FLAG_UNUSABLE };
static const struct {
    const char *why;
    uint32_t n;
    int32_t member;
    sr_cookie_form_t form;
    sr_status_t absent;
    int flagged, flag;
    int action, d_member, status, issue;
} decide_cases[] = {
    {"hit on usable member", 3, 1, SR_FORM_NATIVE, 0, 0, FLAG_NONE,
     SR_ACT_SERVE, 1, SR_STATUS_HIT, 0},
    {"stock cookie is hit and reissued", 2, 0, SR_FORM_STOCK, 0, 0, FLAG_NONE,
     SR_ACT_SERVE, ANY, SR_STATUS_HIT, 1},
    {"draining member keeps its clients", 2, 1, SR_FORM_NATIVE, 0, 1, FLAG_DRAINING,
     SR_ACT_SERVE, 1, SR_STATUS_HIT, ANY},
    {"hot spare keeps its clients", 3, 2, SR_FORM_NATIVE, 0, 2, FLAG_SPARE,
     SR_ACT_SERVE, ANY, SR_STATUS_HIT, ANY},
    {"unusable member fails over by election", 2, 0, SR_FORM_NATIVE, 0, 0, FLAG_UNUSABLE,
     SR_ACT_ELECT, ANY, SR_STATUS_FAILOVER, 1},
    {"no cookie is new", 2, -1, SR_FORM_NATIVE, SR_STATUS_NEW, 0, FLAG_NONE,
     SR_ACT_ELECT, ANY, SR_STATUS_NEW, 1},
    {"bad tag is forged", 2, -1, SR_FORM_NATIVE, SR_STATUS_FORGED, 0, FLAG_NONE,
     SR_ACT_ELECT, ANY, SR_STATUS_FORGED, 1},
};

START_TEST(decide_one_step_cases)
{
    sr_decision_t d;
    sr_cookie_read_t c = decide_cases[_i].member >= 0
        ? cookie_naming(decide_cases[_i].member, decide_cases[_i].form)
        : cookie_absent(decide_cases[_i].absent);
    sr_member_t *m = &view[decide_cases[_i].flagged];

    fresh(decide_cases[_i].n);
    if (decide_cases[_i].flag == FLAG_DRAINING)
        m->draining = 1;
    else if (decide_cases[_i].flag == FLAG_SPARE)
        m->spare = 1;
    else if (decide_cases[_i].flag == FLAG_UNUSABLE)
        m->usable = 0;
    sr_decide_sticky(view, decide_cases[_i].n, &c, &tried, in(0, 0), &d);
    decision_is(decide_cases[_i].why, _i, &d, decide_cases[_i].action,
                decide_cases[_i].d_member, decide_cases[_i].status, decide_cases[_i].issue);
}
END_TEST

START_TEST(decide_foreign_session_is_hit_never_reissued)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(0, SR_FORM_FOREIGN);
    fresh(2);
    DECIDE(2, in(0, 0), ANY, ANY, SR_STATUS_HIT, 0);
    /* its member down: failover, still no cookie over the session id */
    view[0].usable = 0;
    DECIDE(2, in(0, 0), SR_ACT_ELECT, ANY, SR_STATUS_FAILOVER, 0);
}
END_TEST

START_TEST(decide_unusable_member_fails_over_to_its_redirect)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(0, SR_FORM_NATIVE);
    fresh(3);
    view[0].usable = 0;
    view[0].redirect = 2;
    DECIDE(3, in(0, 0), SR_ACT_SERVE, 2, SR_STATUS_FAILOVER, 1);
    /* an unusable redirect= member: election */
    view[2].usable = 0;
    DECIDE(3, in(0, 0), SR_ACT_ELECT, ANY, SR_STATUS_FAILOVER, ANY);
}
END_TEST

START_TEST(decide_member_failed_in_this_request_fails_over)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(1, SR_FORM_NATIVE);
    fresh(3);
    sr_tried_add(pool, &tried, 1);
    DECIDE(3, in(0, 0), SR_ACT_ELECT, ANY, SR_STATUS_FAILOVER, ANY);
    /* its redirect= member, unless that one failed too */
    view[1].redirect = 0;
    DECIDE(3, in(0, 0), SR_ACT_SERVE, 0, ANY, ANY);
    sr_tried_add(pool, &tried, 0);
    DECIDE(3, in(0, 0), SR_ACT_ELECT, ANY, ANY, ANY);
}
END_TEST

START_TEST(decide_nofailover_refuses)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(0, SR_FORM_NATIVE);
    fresh(2);
    view[0].usable = 0;
    DECIDE(2, in(0, 1), SR_ACT_REFUSE, ANY, SR_STATUS_FAILOVER, 0);
    /* nofailover does not stop a redirect= member */
    view[0].redirect = 1;
    DECIDE(2, in(0, 1), SR_ACT_SERVE, 1, ANY, ANY);
    /* and a usable member is served with nofailover on */
    c = cookie_naming(1, SR_FORM_NATIVE);
    DECIDE(2, in(0, 1), ANY, ANY, SR_STATUS_HIT, ANY);
}
END_TEST

START_TEST(decide_hot_standby_while_regular_members_take_new)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(1, SR_FORM_NATIVE);
    fresh(2);
    view[1].standby = 1;
    DECIDE(2, in(0, 0), SR_ACT_ELECT, ANY, SR_STATUS_FAILOVER, 1);
    /* when the takers are the standbys, its clients stay */
    DECIDE(2, in(1, 0), SR_ACT_SERVE, ANY, SR_STATUS_HIT, ANY);
}
END_TEST

START_TEST(decide_unknown_route_is_unknown)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_absent(SR_STATUS_UNKNOWN);
    fresh(2);
    DECIDE(2, in(0, 0), SR_ACT_ELECT, ANY, SR_STATUS_UNKNOWN, 1);
    /* an unknown route in somebody's session id: never written over */
    c.foreign = 1;
    DECIDE(2, in(0, 0), ANY, ANY, ANY, 0);
}
END_TEST

/* ---- reading cookies ------------------------------------------------------- */

static const char *routes3[] = { "s1", "s2", "s3" };
static sr_route_index_t ix3;

static void index3(void)
{
    int32_t i;
    sr_index_init(pool, &ix3, 3);
    for (i = 0; i < 3; i++) {
        sr_index_insert(&ix3, routes3, i);
    }
}

static sr_cookie_read_t read_headers(const char *h1, const char *h2,
                                     const sr_key_t *key, int legacy_ok)
{
    sr_cookie_ctx_t ctx;
    sr_cookie_read_t c;

    index3();
    ctx.name = "ROUTEID";
    ctx.tag_key = key;
    ctx.legacy_ok = legacy_ok;
    ctx.balancer = "balancer://app";
    ctx.index = &ix3;
    ctx.routes = routes3;
    ctx.nmembers = 3;
    sr_cookie_read_init(&c);
    if (!sr_cookie_read_header(&c, &ctx, h1) && h2) {
        sr_cookie_read_header(&c, &ctx, h2);
    }
    return c;
}

START_TEST(read_cookie_forms)
{
    sr_cookie_read_t c;

    c = read_headers("a=b", NULL, NULL, 1);
    ck_assert_int_eq(c.member, -1);
    ck_assert_int_eq(c.absent, SR_STATUS_NEW);
    c = read_headers("ROUTEID=s2", NULL, NULL, 1);
    ck_assert_int_eq(c.member, 1);
    ck_assert_int_eq(c.form, SR_FORM_NATIVE);
    c = read_headers("ROUTEID=.s3", NULL, NULL, 1);
    ck_assert_int_eq(c.member, 2);
    ck_assert_int_eq(c.form, SR_FORM_STOCK);
    ck_assert_int_eq(c.foreign, 0);
    c = read_headers("ROUTEID=ABC123.s1", NULL, NULL, 1);
    ck_assert_int_eq(c.member, 0);
    ck_assert_int_eq(c.form, SR_FORM_FOREIGN);
    ck_assert_int_eq(c.foreign, 1);
    c = read_headers("ROUTEID=zz", NULL, NULL, 1);
    ck_assert_int_eq(c.member, -1);
    ck_assert_int_eq(c.absent, SR_STATUS_UNKNOWN);
    c = read_headers("ROUTEID=s%01", NULL, NULL, 1);
    ck_assert_int_eq(c.absent, SR_STATUS_UNKNOWN);
}
END_TEST

START_TEST(read_cookie_signed_and_forged)
{
    sr_key_t key;
    char good[SR_VALUE_BUF], hdr[128];
    sr_cookie_read_t c;

    sr_key_derive(&key, "0123456789abcdef0123", 20, "tag");
    sr_value_write(good, "s2", &key, "balancer://app");
    snprintf(hdr, sizeof(hdr), "ROUTEID=%s", good);
    c = read_headers(hdr, NULL, &key, 0);
    ck_assert_int_eq(c.member, 1);
    c = read_headers("ROUTEID=s2", NULL, &key, 0);
    ck_assert_int_eq(c.member, -1);
    ck_assert_int_eq(c.absent, SR_STATUS_FORGED);
    /* forged outranks unknown, whatever the order */
    c = read_headers("ROUTEID=s2; ROUTEID=~~~", NULL, &key, 0);
    ck_assert_int_eq(c.absent, SR_STATUS_FORGED);
    c = read_headers("ROUTEID=~~~; ROUTEID=s2", NULL, &key, 0);
    ck_assert_int_eq(c.absent, SR_STATUS_FORGED);
    /* a good value in a later Cookie header still wins */
    c = read_headers("ROUTEID=s1", hdr, &key, 0);
    ck_assert_int_eq(c.member, 1);
}
END_TEST

START_TEST(read_cookie_bounded)
{
    char hdr[512] = "";
    sr_cookie_read_t c;
    int i;

    for (i = 0; i < SR_COOKIES_MAX; i++) {
        strcat(hdr, "ROUTEID=zz; ");
    }
    strcat(hdr, "ROUTEID=s1");
    c = read_headers(hdr, NULL, NULL, 1);
    ck_assert_int_eq(c.member, -1);
    ck_assert_int_eq(c.seen, SR_COOKIES_MAX);
}
END_TEST

/* ---- routes ------------------------------------------------------------------ */

START_TEST(route_choice_configured_derived_invalid_duplicate)
{
    const char *routes[4];
    char out[4][SR_ROUTE_MAX + 1];
    sr_route_index_t ix;
    sr_key_t key;

    sr_key_derive(&key, "0123456789abcdef", 16, "route");
    sr_index_init(pool, &ix, 4);
    ck_assert_int_eq(sr_route_choose(out[0], "s1", "http://a", &key, &ix, routes),
                     SR_ROUTE_CONFIGURED);
    ck_assert_str_eq(out[0], "s1");
    routes[0] = out[0];
    sr_index_insert(&ix, routes, 0);
    ck_assert_int_eq(sr_route_choose(out[1], "", "http://b", &key, &ix, routes),
                     SR_ROUTE_DERIVED);
    ck_assert_uint_eq(strlen(out[1]), SR_DERIVED_ROUTE_LEN);
    routes[1] = out[1];
    sr_index_insert(&ix, routes, 1);
    ck_assert_int_eq(sr_route_choose(out[2], "bad.route", "http://c", &key, &ix,
                                     routes), SR_ROUTE_DERIVED_INVALID);
    ck_assert_uint_eq(strlen(out[2]), SR_DERIVED_ROUTE_LEN);
    routes[2] = out[2];
    sr_index_insert(&ix, routes, 2);
    ck_assert_int_eq(sr_route_choose(out[3], "s1", "http://d", &key, &ix, routes),
                     SR_ROUTE_DERIVED_DUPLICATE);
    ck_assert_str_ne(out[3], "s1");
    /* derived routes depend on the URL only: same member, same route */
    {
        char again[SR_ROUTE_MAX + 1];
        sr_route_choose(again, "q\"uote", "http://c", &key, NULL, NULL);
        ck_assert_str_eq(again, out[2]);
    }
    ck_assert_ptr_nonnull(sr_route_origin_name(SR_ROUTE_DERIVED_DUPLICATE));
}
END_TEST

/* ---- issue 10: load, lifetimes, rebalancing, application sessions -------- */

START_TEST(overload_is_relative_to_the_mean_of_usable_members)
{
    static const uint32_t l1[] = { 10, 2, 0 };
    members(3);
    with_loads(3, l1);
    /* mean 4: 10 > 1.25 * 4 */
    ck_assert(sr_member_overloaded(view, 3, 0, 125));
    ck_assert(!sr_member_overloaded(view, 3, 1, 125));
    /* weights: 10 in flight over weight 4 is 2.5, mean (2.5+2+0)/3 */
    view[0].weight = 4;
    ck_assert(sr_member_overloaded(view, 3, 0, 125));
    ck_assert(!sr_member_overloaded(view, 3, 0, 200));
    /* nobody busy: nobody overloaded */
    load[0] = load[1] = load[2] = 0;
    ck_assert(!sr_member_overloaded(view, 3, 0, 125));
    /* unusable members are not in the mean */
    load[0] = 2;
    load[1] = 2;
    view[0].weight = 1;
    view[2].usable = 0;
    ck_assert(!sr_member_overloaded(view, 3, 0, 125));
}
END_TEST

static sr_lifetime_t lt10;

static const sr_sticky_in_t *in_dated(long max_idle, long max_life, long reb_idle)
{
    lt10.max_idle = max_idle;
    lt10.max_life = max_life;
    lt10.rebalance_idle = reb_idle;
    lt10.rebalance_factor = 125;
    lt10.refresh = sr_refresh_step(max_idle, reb_idle);
    sticky_in.from_standby = 0;
    sticky_in.nofailover = 0;
    sticky_in.now = 1000000;
    sticky_in.lifetime = &lt10;
    return &sticky_in;
}

START_TEST(decide_expired_cookie_is_elected_again)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(1, SR_FORM_NATIVE);
    fresh(2);
    c.dated = 1;
    c.first = 1000000 - 100;
    c.last = 1000000 - 20;
    DECIDE(2, in_dated(10, 0, 0), SR_ACT_ELECT, ANY, SR_STATUS_EXPIRED, 1);
    ck_assert(d.first == 1000000);
    /* MaxLife */
    c.last = 1000000;
    DECIDE(2, in_dated(0, 50, 0), ANY, ANY, SR_STATUS_EXPIRED, ANY);
}
END_TEST

START_TEST(decide_hit_refreshes_only_when_due)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(1, SR_FORM_NATIVE);
    fresh(2);
    c.dated = 1;
    c.first = 1000000 - 100;
    c.last = 1000000 - 1;
    DECIDE(2, in_dated(8, 0, 0), ANY, ANY, SR_STATUS_HIT, 0);
    c.last = 1000000 - 2;
    DECIDE(2, in_dated(8, 0, 0), ANY, ANY, SR_STATUS_HIT, 1);
    ck_assert(d.first == 1000000 - 100);       /* FIRST kept */
    /* a cookie from before dates: a hit, dated now */
    c.dated = 0;
    DECIDE(2, in_dated(8, 0, 0), ANY, ANY, SR_STATUS_HIT, 1);
    ck_assert(d.first == 1000000);
    /* without lifetimes: never */
    DECIDE(2, in(0, 0), ANY, ANY, ANY, 0);
}
END_TEST

START_TEST(decide_rebalances_only_idle_clients_of_overloaded_members)
{
    static const uint32_t busy[] = { 9, 1 };
    static const uint32_t even[] = { 3, 3 };
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(0, SR_FORM_NATIVE);
    fresh(2);
    with_loads(2, busy);
    c.dated = 1;
    c.first = 1000000 - 100;
    /* idle 10 s + R (R = 10/4 = 2): moved */
    c.last = 1000000 - 12;
    DECIDE(2, in_dated(0, 0, 10), SR_ACT_ELECT, ANY, SR_STATUS_REBALANCED, 1);
    /* active: stays */
    c.last = 1000000 - 11;
    DECIDE(2, in_dated(0, 0, 10), ANY, ANY, SR_STATUS_HIT, ANY);
    /* idle, balanced: stays */
    c.last = 1000000 - 60;
    with_loads(2, even);
    DECIDE(2, in_dated(0, 0, 10), ANY, ANY, SR_STATUS_HIT, ANY);
}
END_TEST

START_TEST(decide_application_session_id)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_absent(SR_STATUS_NEW);
    fresh(3);
    c.app_member = 2;
    DECIDE(3, in(0, 0), SR_ACT_SERVE, 2, SR_STATUS_HIT, 0);
    /* its member down: failover, elected, our cookie issued */
    view[2].usable = 0;
    DECIDE(3, in(0, 0), SR_ACT_ELECT, ANY, SR_STATUS_FAILOVER, 1);
    /* ... unless our own cookie already names a usable member */
    c.member = 0;
    DECIDE(3, in(0, 0), SR_ACT_SERVE, 0, SR_STATUS_FAILOVER, 0);
}
END_TEST

Suite *policy_suite(void)
{
    const TTest *tests[] = {
        decide_foreign_session_is_hit_never_reissued,
        decide_unusable_member_fails_over_to_its_redirect,
        decide_member_failed_in_this_request_fails_over,
        decide_nofailover_refuses,
        decide_hot_standby_while_regular_members_take_new,
        decide_unknown_route_is_unknown,
        read_cookie_forms,
        read_cookie_signed_and_forged,
        read_cookie_bounded,
        route_choice_configured_derived_invalid_duplicate,
        overload_is_relative_to_the_mean_of_usable_members,
        decide_expired_cookie_is_elected_again,
        decide_hit_refreshes_only_when_due,
        decide_rebalances_only_idle_clients_of_overloaded_members,
        decide_application_session_id,
    };
    TCase *tc = UNIT_TCASE("policy", 1, tests);
    Suite *s;

    UNIT_TABLE_TEST(tc, decide_one_step_cases, decide_cases);
    s = unit_suite("sr_policy", tc);

    policy_elect_cases(s);
    policy_cookie_cases(s);
    policy_discover_cases(s);
    return s;
}
