/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests of sr_policy.c (check): every row of the README's decision
 * table, every member state, lbsets, hot spares and hot standbys,
 * election with tried members, the retry rules, route choice, cookie
 * reading; and the output escaping and Set-Cookie matching of sr_core.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>

#include "apr_general.h"
#include "apr_strings.h"
#include "sr_policy.h"
#include "unit_util.h"

Suite *policy_suite(void);

#define setup unit_setup
#define teardown unit_teardown

/* ---- building views ---------------------------------------------------- */

#define MAXM 16

static sr_member_t view[MAXM];

/* n regular usable members of weight 1, lbset 0, routes m0 m1 ... */
static void members(uint32_t n)
{
    unit_members(view, MAXM, n, "m", 0);
}

static uint16_t takers[MAXM];
static uint32_t weights[MAXM];

/* the takers as a string of member numbers, e.g. "013" */
static const char *takers_of(uint32_t n, int *from_standby)
{
    static char out[MAXM + 1];
    uint32_t k, count = sr_policy_takers(view, n, takers, weights, from_standby);

    for (k = 0; k < count; k++) {
        out[k] = (char)('0' + takers[k]);
    }
    out[count] = '\0';
    return out;
}

static sr_tried_t tried;

static void no_tried(void)
{
    sr_tried_init(&tried, MAXM);
}

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

/* ---- takers: member states -------------------------------------------- */

START_TEST(takers_all_usable_members)
{
    int fs;
    members(3);
    ck_assert_str_eq(takers_of(3, &fs), "012");
    ck_assert_int_eq(fs, 0);
}
END_TEST

START_TEST(takers_skip_unusable_member)
{
    int fs;
    members(3);
    view[1].usable = 0;
    ck_assert_str_eq(takers_of(3, &fs), "02");
}
END_TEST

START_TEST(takers_skip_draining_member)
{
    int fs;
    members(3);
    view[2].draining = 1;
    ck_assert_str_eq(takers_of(3, &fs), "01");
}
END_TEST

START_TEST(takers_weights_are_loadfactors)
{
    int fs;
    members(2);
    view[0].weight = 5;
    view[1].weight = 0;     /* treated as 1 */
    ck_assert_str_eq(takers_of(2, &fs), "01");
    ck_assert_uint_eq(weights[0], 5);
    ck_assert_uint_eq(weights[1], 1);
}
END_TEST

START_TEST(takers_hot_standby_only_when_nobody_else)
{
    int fs;
    members(3);
    view[2].standby = 1;
    ck_assert_str_eq(takers_of(3, &fs), "01");
    ck_assert_int_eq(fs, 0);
    view[0].usable = 0;
    view[1].usable = 0;
    ck_assert_str_eq(takers_of(3, &fs), "2");
    ck_assert_int_eq(fs, 1);
}
END_TEST

START_TEST(takers_draining_standby_is_not_used)
{
    int fs;
    members(2);
    view[0].usable = 0;
    view[1].standby = 1;
    view[1].draining = 1;
    ck_assert_str_eq(takers_of(2, &fs), "");
}
END_TEST

START_TEST(takers_hot_spares_replace_unusable_one_for_one)
{
    int fs;
    members(5);
    view[3].spare = 1;
    view[4].spare = 1;
    ck_assert_str_eq(takers_of(5, &fs), "012");     /* nobody to replace */
    view[1].usable = 0;
    ck_assert_str_eq(takers_of(5, &fs), "023");     /* one spare for one */
    view[2].draining = 1;                           /* draining counts */
    ck_assert_str_eq(takers_of(5, &fs), "034");
    view[3].usable = 0;                             /* a spare down */
    ck_assert_str_eq(takers_of(5, &fs), "04");
}
END_TEST

START_TEST(takers_lowest_lbset_with_a_usable_member)
{
    int fs;
    members(4);
    view[0].lbset = 1;
    view[1].lbset = 1;
    view[2].lbset = 2;
    view[3].lbset = 2;
    ck_assert_str_eq(takers_of(4, &fs), "01");
    view[0].usable = 0;
    ck_assert_str_eq(takers_of(4, &fs), "1");
    view[1].draining = 1;
    ck_assert_str_eq(takers_of(4, &fs), "23");
}
END_TEST

START_TEST(takers_standbys_of_an_lbset_before_the_next_lbset)
{
    int fs;
    /* as mod_proxy_balancer: lbset 0's standby before lbset 1's members */
    members(3);
    view[0].lbset = 0;
    view[1].lbset = 0;
    view[1].standby = 1;
    view[2].lbset = 1;
    view[0].usable = 0;
    ck_assert_str_eq(takers_of(3, &fs), "1");
    ck_assert_int_eq(fs, 1);
    view[1].usable = 0;
    ck_assert_str_eq(takers_of(3, &fs), "2");
    ck_assert_int_eq(fs, 0);
}
END_TEST

START_TEST(takers_spares_stay_in_their_lbset)
{
    int fs;
    members(3);
    view[0].lbset = 0;
    view[1].lbset = 1;
    view[1].spare = 1;
    view[2].lbset = 1;
    view[0].usable = 0;
    /* lbset 0 has no usable member and no spare: lbset 1 takes over, and
     * its spare has nobody to replace there */
    ck_assert_str_eq(takers_of(3, &fs), "2");
}
END_TEST

START_TEST(takers_none_when_nobody_usable)
{
    int fs;
    members(2);
    view[0].usable = 0;
    view[1].usable = 0;
    ck_assert_str_eq(takers_of(2, &fs), "");
    ck_assert_str_eq(takers_of(0, &fs), "");
}
END_TEST

/* ---- the sticky decision table, row by row ------------------------------ */

START_TEST(decide_hit_on_usable_member)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(1, SR_FORM_NATIVE);
    members(3);
    no_tried();
    sr_decide_sticky(view, 3, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_SERVE);
    ck_assert_int_eq(d.member, 1);
    ck_assert_int_eq(d.status, SR_STATUS_HIT);
    ck_assert_int_eq(d.issue, 0);
}
END_TEST

START_TEST(decide_stock_cookie_is_hit_and_reissued)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(0, SR_FORM_STOCK);
    members(2);
    no_tried();
    sr_decide_sticky(view, 2, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_SERVE);
    ck_assert_int_eq(d.status, SR_STATUS_HIT);
    ck_assert_int_eq(d.issue, 1);
}
END_TEST

START_TEST(decide_foreign_session_is_hit_never_reissued)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(0, SR_FORM_FOREIGN);
    members(2);
    no_tried();
    sr_decide_sticky(view, 2, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.status, SR_STATUS_HIT);
    ck_assert_int_eq(d.issue, 0);
    /* its member down: failover, still no cookie over the session id */
    view[0].usable = 0;
    sr_decide_sticky(view, 2, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_ELECT);
    ck_assert_int_eq(d.status, SR_STATUS_FAILOVER);
    ck_assert_int_eq(d.issue, 0);
}
END_TEST

START_TEST(decide_draining_member_keeps_its_clients)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(1, SR_FORM_NATIVE);
    members(2);
    view[1].draining = 1;
    no_tried();
    sr_decide_sticky(view, 2, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_SERVE);
    ck_assert_int_eq(d.member, 1);
    ck_assert_int_eq(d.status, SR_STATUS_HIT);
}
END_TEST

START_TEST(decide_hot_spare_keeps_its_clients)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(2, SR_FORM_NATIVE);
    members(3);
    view[2].spare = 1;
    no_tried();
    sr_decide_sticky(view, 3, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_SERVE);
    ck_assert_int_eq(d.status, SR_STATUS_HIT);
}
END_TEST

START_TEST(decide_unusable_member_fails_over_by_election)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(0, SR_FORM_NATIVE);
    members(2);
    view[0].usable = 0;
    no_tried();
    sr_decide_sticky(view, 2, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_ELECT);
    ck_assert_int_eq(d.status, SR_STATUS_FAILOVER);
    ck_assert_int_eq(d.issue, 1);
}
END_TEST

START_TEST(decide_unusable_member_fails_over_to_its_redirect)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(0, SR_FORM_NATIVE);
    members(3);
    view[0].usable = 0;
    view[0].redirect = 2;
    no_tried();
    sr_decide_sticky(view, 3, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_SERVE);
    ck_assert_int_eq(d.member, 2);
    ck_assert_int_eq(d.status, SR_STATUS_FAILOVER);
    ck_assert_int_eq(d.issue, 1);
    /* an unusable redirect= member: election */
    view[2].usable = 0;
    sr_decide_sticky(view, 3, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_ELECT);
    ck_assert_int_eq(d.status, SR_STATUS_FAILOVER);
}
END_TEST

START_TEST(decide_member_failed_in_this_request_fails_over)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(1, SR_FORM_NATIVE);
    members(3);
    no_tried();
    sr_tried_add(pool, &tried, 1);
    sr_decide_sticky(view, 3, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_ELECT);
    ck_assert_int_eq(d.status, SR_STATUS_FAILOVER);
    /* its redirect= member, unless that one failed too */
    view[1].redirect = 0;
    sr_decide_sticky(view, 3, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_SERVE);
    ck_assert_int_eq(d.member, 0);
    sr_tried_add(pool, &tried, 0);
    sr_decide_sticky(view, 3, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_ELECT);
}
END_TEST

START_TEST(decide_nofailover_refuses)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(0, SR_FORM_NATIVE);
    members(2);
    view[0].usable = 0;
    no_tried();
    sr_decide_sticky(view, 2, &c, &tried, in(0, 1), &d);
    ck_assert_int_eq(d.action, SR_ACT_REFUSE);
    ck_assert_int_eq(d.status, SR_STATUS_FAILOVER);
    ck_assert_int_eq(d.issue, 0);
    /* nofailover does not stop a redirect= member */
    view[0].redirect = 1;
    sr_decide_sticky(view, 2, &c, &tried, in(0, 1), &d);
    ck_assert_int_eq(d.action, SR_ACT_SERVE);
    ck_assert_int_eq(d.member, 1);
    /* and a usable member is served with nofailover on */
    c = cookie_naming(1, SR_FORM_NATIVE);
    sr_decide_sticky(view, 2, &c, &tried, in(0, 1), &d);
    ck_assert_int_eq(d.status, SR_STATUS_HIT);
}
END_TEST

START_TEST(decide_hot_standby_while_regular_members_take_new)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(1, SR_FORM_NATIVE);
    members(2);
    view[1].standby = 1;
    no_tried();
    sr_decide_sticky(view, 2, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_ELECT);
    ck_assert_int_eq(d.status, SR_STATUS_FAILOVER);
    ck_assert_int_eq(d.issue, 1);
    /* when the takers are the standbys, its clients stay */
    sr_decide_sticky(view, 2, &c, &tried, in(1, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_SERVE);
    ck_assert_int_eq(d.status, SR_STATUS_HIT);
}
END_TEST

START_TEST(decide_no_cookie_is_new)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_absent(SR_STATUS_NEW);
    members(2);
    no_tried();
    sr_decide_sticky(view, 2, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_ELECT);
    ck_assert_int_eq(d.status, SR_STATUS_NEW);
    ck_assert_int_eq(d.issue, 1);
}
END_TEST

START_TEST(decide_unknown_route_is_unknown)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_absent(SR_STATUS_UNKNOWN);
    members(2);
    no_tried();
    sr_decide_sticky(view, 2, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_ELECT);
    ck_assert_int_eq(d.status, SR_STATUS_UNKNOWN);
    ck_assert_int_eq(d.issue, 1);
    /* an unknown route in somebody's session id: never written over */
    c.foreign = 1;
    sr_decide_sticky(view, 2, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.issue, 0);
}
END_TEST

START_TEST(decide_bad_tag_is_forged)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_absent(SR_STATUS_FORGED);
    members(2);
    no_tried();
    sr_decide_sticky(view, 2, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_ELECT);
    ck_assert_int_eq(d.status, SR_STATUS_FORGED);
    ck_assert_int_eq(d.issue, 1);
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

/* ---- election ------------------------------------------------------------------ */

static sr_schedule_t sched;

static void schedule_takers(uint32_t n)
{
    int fs;
    uint32_t count = sr_policy_takers(view, n, takers, weights, &fs);
    sr_schedule_init(pool, &sched, MAXM);
    sr_schedule_build(&sched, takers, weights, count);
}

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

/* ---- retries ---------------------------------------------------------------------- */

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
    members(2);
    no_tried();
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

/* ---- escaping and Set-Cookie matching (sr_core.c) ------------------------------ */

START_TEST(json_escape_any_bytes)
{
    ck_assert_str_eq(sr_json_escape(pool, "plain"), "plain");
    ck_assert_str_eq(sr_json_escape(pool, "a\"b\\c"), "a\\\"b\\\\c");
    ck_assert_str_eq(sr_json_escape(pool, "x\ny\tz\x01"), "x\\ny\\u0009z\\u0001");
    ck_assert_str_eq(sr_json_escape(pool, "\x1f\x7f"), "\\u001f\x7f");
    ck_assert_str_eq(sr_json_escape(pool, "caf\xc3\xa9"), "caf\xc3\xa9");
    ck_assert_str_eq(sr_json_escape(pool, "bad\xff\xc3"), "bad\\ufffd\\ufffd");
    ck_assert_str_eq(sr_json_escape(pool, "\xed\xa0\x80"), "\\ufffd\\ufffd\\ufffd");
}
END_TEST

START_TEST(label_escape_any_bytes)
{
    ck_assert_str_eq(sr_label_escape(pool, "plain"), "plain");
    ck_assert_str_eq(sr_label_escape(pool, "a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    ck_assert_str_eq(sr_label_escape(pool, "t\tab\x01"), "t\tab\x01");
    ck_assert_str_eq(sr_label_escape(pool, "x\xff"), "x\xef\xbf\xbd");
}
END_TEST

START_TEST(set_cookie_same_name_and_path)
{
    ck_assert(sr_set_cookie_sets("JSESSIONID=abc; Path=/", "JSESSIONID", "/", "/x/y"));
    ck_assert(sr_set_cookie_sets("JSESSIONID=abc;path=/ ;HttpOnly", "JSESSIONID", "/", "/"));
    ck_assert(!sr_set_cookie_sets("JSESSIONID=abc; Path=/app", "JSESSIONID", "/", "/"));
    ck_assert(!sr_set_cookie_sets("JSESSIONIDX=abc; Path=/", "JSESSIONID", "/", "/"));
    ck_assert(!sr_set_cookie_sets("jsessionid=abc; Path=/", "JSESSIONID", "/", "/"));
    ck_assert(!sr_set_cookie_sets("OTHER=JSESSIONID=1", "JSESSIONID", "/", "/"));
    /* no Path: the request's default path */
    ck_assert(sr_set_cookie_sets("ROUTEID=v", "ROUTEID", "/", "/index.html"));
    ck_assert(!sr_set_cookie_sets("ROUTEID=v", "ROUTEID", "/", "/app/page"));
    ck_assert(sr_set_cookie_sets("ROUTEID=v", "ROUTEID", "/app", "/app/page"));
    /* an invalid Path means the default path */
    ck_assert(sr_set_cookie_sets("ROUTEID=v; Path=x", "ROUTEID", "/", "/a"));
    ck_assert(!sr_set_cookie_sets(NULL, "ROUTEID", "/", "/"));
}
END_TEST


/* ---- issue 10: lifetimes, load, slow start, application sessions --------- */

START_TEST(dated_value_roundtrip_and_tag_covers_dates)
{
    sr_key_t key;
    char out[SR_VALUE_BUF];
    sr_value_t v;

    sr_value_write_dated(out, "s1", 1700000000, 1700000100, NULL, "b");
    ck_assert_str_eq(out, "s1:1700000000:1700000100");
    ck_assert_int_eq(sr_value_parse(out, strlen(out), 0, &v), SR_VALUE_PLAIN);
    ck_assert(v.dated);
    ck_assert_str_eq(v.route, "s1");
    ck_assert(v.first == 1700000000 && v.last == 1700000100);
    ck_assert_int_eq(sr_value_verdict(&v, NULL, 1, "b"), SR_VERDICT_ROUTE);

    sr_key_derive(&key, "0123456789abcdef", 16, "tag");
    sr_value_write_dated(out, "s1", 1700000000, 1700000100, &key, "b");
    ck_assert_int_eq(sr_value_parse(out, strlen(out), 1, &v), SR_VALUE_SIGNED);
    ck_assert_int_eq(sr_value_verdict(&v, &key, 0, "b"), SR_VERDICT_ROUTE);
    /* one second changed: forged */
    out[strlen("s1:1700000000:170000010")] = '1';
    sr_value_parse(out, strlen(out), 1, &v);
    ck_assert_int_eq(sr_value_verdict(&v, &key, 0, "b"), SR_VERDICT_FORGED);
    /* the undated form of the same route has another tag */
    {
        char plain[SR_VALUE_BUF];
        sr_value_write(plain, "s1", &key, "b");
        ck_assert_str_ne(strchr(plain, '.'), strrchr(out, '.'));
    }
    /* unsigned dates with a secret set: forged */
    sr_value_parse("s1:1:2", 6, 1, &v);
    ck_assert_int_eq(sr_value_verdict(&v, &key, 0, "b"), SR_VERDICT_FORGED);
    /* malformed dates */
    /* dates that do not parse: malformed without a secret, forged with one */
    {
        static const char *const bad[] = { "s1:1", "s1:a:2", "s1:1:2:3", "s1::2",
                                           "s1:1234567890123:2" };
        size_t k;
        for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            sr_value_parse(bad[k], strlen(bad[k]), 0, &v);
            ck_assert_int_eq(sr_value_verdict(&v, NULL, 1, "b"), SR_VERDICT_MALFORMED);
            sr_value_parse(bad[k], strlen(bad[k]), 1, &v);
            ck_assert_int_eq(sr_value_verdict(&v, &key, 0, "b"), SR_VERDICT_FORGED);
        }
    }
    ck_assert_int_eq(sr_value_parse(":1:2", 4, 0, &v), SR_VALUE_MALFORMED);
    ck_assert_int_eq(sr_value_parse("s1:1:2.short", 12, 1, &v), SR_VALUE_MALFORMED);
}
END_TEST

START_TEST(cookie_spec_lifetimes_keep_the_default_attributes)
{
    sr_cookie_spec_t spec;
    char *a1[] = { "ROUTEID", "MaxIdle=300", "MaxLife=3600" };
    char *a2[] = { "ROUTEID", "MaxIdle=0" };
    char *a3[] = { "ROUTEID", "MaxLife=x" };
    ck_assert_ptr_null(sr_cookie_spec_parse(pool, 3, a1, &spec));
    ck_assert_int_eq(spec.max_idle, 300);
    ck_assert_int_eq(spec.max_life, 3600);
    ck_assert_str_eq(spec.attrs, "; Path=/; HttpOnly; SameSite=Lax");
    ck_assert_ptr_nonnull(sr_cookie_spec_parse(pool, 2, a2, &spec));
    ck_assert_ptr_nonnull(sr_cookie_spec_parse(pool, 2, a3, &spec));
}
END_TEST

START_TEST(refresh_step_and_cookie_age)
{
    sr_lifetime_t lt = { 8, 0, 0, 125, 0 };
    int64_t now = 1000000;

    ck_assert_int_eq(sr_refresh_step(8, 0), 2);
    ck_assert_int_eq(sr_refresh_step(2, 0), 1);
    ck_assert_int_eq(sr_refresh_step(100, 20), 5);
    ck_assert_int_eq(sr_refresh_step(0, 0), 0);
    lt.refresh = sr_refresh_step(lt.max_idle, 0);
    ck_assert_int_eq(sr_cookie_age(NULL, 1, now, now, now), SR_AGE_FRESH);
    ck_assert_int_eq(sr_cookie_age(&lt, 0, 0, 0, now), SR_AGE_REFRESH);
    ck_assert_int_eq(sr_cookie_age(&lt, 1, now - 50, now - 1, now), SR_AGE_FRESH);
    ck_assert_int_eq(sr_cookie_age(&lt, 1, now - 50, now - 2, now), SR_AGE_REFRESH);
    ck_assert_int_eq(sr_cookie_age(&lt, 1, now - 50, now - 10, now), SR_AGE_REFRESH);
    ck_assert_int_eq(sr_cookie_age(&lt, 1, now - 50, now - 11, now), SR_AGE_EXPIRED);
    /* MaxLife counts from FIRST */
    lt.max_life = 30;
    ck_assert_int_eq(sr_cookie_age(&lt, 1, now - 30, now, now), SR_AGE_FRESH);
    ck_assert_int_eq(sr_cookie_age(&lt, 1, now - 31, now, now), SR_AGE_EXPIRED);
    /* clock skew: up to SR_CLOCK_SKEW in the future is fine */
    ck_assert_int_eq(sr_cookie_age(&lt, 1, now, now + SR_CLOCK_SKEW, now), SR_AGE_FRESH);
    ck_assert_int_eq(sr_cookie_age(&lt, 1, now, now + SR_CLOCK_SKEW + 1, now),
                     SR_AGE_EXPIRED);
    ck_assert_int_eq(sr_cookie_age(&lt, 1, now, now - 1, now), SR_AGE_EXPIRED);
}
END_TEST

static uint32_t load[MAXM];

static void with_loads(uint32_t n, const uint32_t *values)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        load[i] = values[i];
        view[i].inflight = &load[i];
    }
}

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
    members(2);
    no_tried();
    c.dated = 1;
    c.first = 1000000 - 100;
    c.last = 1000000 - 20;
    sr_decide_sticky(view, 2, &c, &tried, in_dated(10, 0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_ELECT);
    ck_assert_int_eq(d.status, SR_STATUS_EXPIRED);
    ck_assert_int_eq(d.issue, 1);
    ck_assert(d.first == 1000000);
    /* MaxLife */
    c.last = 1000000;
    sr_decide_sticky(view, 2, &c, &tried, in_dated(0, 50, 0), &d);
    ck_assert_int_eq(d.status, SR_STATUS_EXPIRED);
}
END_TEST

START_TEST(decide_hit_refreshes_only_when_due)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(1, SR_FORM_NATIVE);
    members(2);
    no_tried();
    c.dated = 1;
    c.first = 1000000 - 100;
    c.last = 1000000 - 1;
    sr_decide_sticky(view, 2, &c, &tried, in_dated(8, 0, 0), &d);
    ck_assert_int_eq(d.status, SR_STATUS_HIT);
    ck_assert_int_eq(d.issue, 0);
    c.last = 1000000 - 2;
    sr_decide_sticky(view, 2, &c, &tried, in_dated(8, 0, 0), &d);
    ck_assert_int_eq(d.status, SR_STATUS_HIT);
    ck_assert_int_eq(d.issue, 1);
    ck_assert(d.first == 1000000 - 100);       /* FIRST kept */
    /* a cookie from before dates: a hit, dated now */
    c.dated = 0;
    sr_decide_sticky(view, 2, &c, &tried, in_dated(8, 0, 0), &d);
    ck_assert_int_eq(d.status, SR_STATUS_HIT);
    ck_assert_int_eq(d.issue, 1);
    ck_assert(d.first == 1000000);
    /* without lifetimes: never */
    sr_decide_sticky(view, 2, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.issue, 0);
}
END_TEST

START_TEST(decide_rebalances_only_idle_clients_of_overloaded_members)
{
    static const uint32_t busy[] = { 9, 1 };
    static const uint32_t even[] = { 3, 3 };
    sr_decision_t d;
    sr_cookie_read_t c = cookie_naming(0, SR_FORM_NATIVE);
    members(2);
    no_tried();
    with_loads(2, busy);
    c.dated = 1;
    c.first = 1000000 - 100;
    /* idle 10 s + R (R = 10/4 = 2): moved */
    c.last = 1000000 - 12;
    sr_decide_sticky(view, 2, &c, &tried, in_dated(0, 0, 10), &d);
    ck_assert_int_eq(d.action, SR_ACT_ELECT);
    ck_assert_int_eq(d.status, SR_STATUS_REBALANCED);
    ck_assert_int_eq(d.issue, 1);
    /* active: stays */
    c.last = 1000000 - 11;
    sr_decide_sticky(view, 2, &c, &tried, in_dated(0, 0, 10), &d);
    ck_assert_int_eq(d.status, SR_STATUS_HIT);
    /* idle, balanced: stays */
    c.last = 1000000 - 60;
    with_loads(2, even);
    sr_decide_sticky(view, 2, &c, &tried, in_dated(0, 0, 10), &d);
    ck_assert_int_eq(d.status, SR_STATUS_HIT);
}
END_TEST

START_TEST(decide_application_session_id)
{
    sr_decision_t d;
    sr_cookie_read_t c = cookie_absent(SR_STATUS_NEW);
    members(3);
    no_tried();
    c.app_member = 2;
    sr_decide_sticky(view, 3, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_SERVE);
    ck_assert_int_eq(d.member, 2);
    ck_assert_int_eq(d.status, SR_STATUS_HIT);
    ck_assert_int_eq(d.issue, 0);
    /* its member down: failover, elected, our cookie issued */
    view[2].usable = 0;
    sr_decide_sticky(view, 3, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_ELECT);
    ck_assert_int_eq(d.status, SR_STATUS_FAILOVER);
    ck_assert_int_eq(d.issue, 1);
    /* ... unless our own cookie already names a usable member */
    c.member = 0;
    sr_decide_sticky(view, 3, &c, &tried, in(0, 0), &d);
    ck_assert_int_eq(d.action, SR_ACT_SERVE);
    ck_assert_int_eq(d.member, 0);
    ck_assert_int_eq(d.status, SR_STATUS_FAILOVER);
    ck_assert_int_eq(d.issue, 0);
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

START_TEST(session_route_and_url_parameters)
{
    sr_span_t r;
    ck_assert(sr_session_route("ABC123.node1", 12, &r));
    ck_assert(r.len == 5 && !strncmp(r.ptr, "node1", 5));
    ck_assert(sr_session_route("A.B.s2", 6, &r));
    ck_assert(r.len == 2 && !strncmp(r.ptr, "s2", 2));
    ck_assert(!sr_session_route("ABC123", 6, &r));
    ck_assert(!sr_session_route("ABC.", 4, &r));
    ck_assert(!sr_session_route("ABC.a b", 7, &r));
    ck_assert(sr_url_param("/app;jsessionid=ABC.s2", NULL, "jsessionid", &r));
    ck_assert(r.len == 6 && !strncmp(r.ptr, "ABC.s2", 6));
    ck_assert(sr_url_param("/app;x=1;jsessionid=ABC.s2/more", "q=1", "jsessionid", &r));
    ck_assert(r.len == 6);
    ck_assert(sr_url_param("/app", "a=1&jsessionid=Z.s3&b=2", "jsessionid", &r));
    ck_assert(r.len == 4 && !strncmp(r.ptr, "Z.s3", 4));
    ck_assert(sr_url_param("/app", "jsessionid=Q.s1", "jsessionid", &r));
    ck_assert(!sr_url_param("/app", "xjsessionid=Q.s1", "jsessionid", &r));
    ck_assert(!sr_url_param("/app;jsessionidx=1", NULL, "jsessionid", &r));
    ck_assert(!sr_url_param(NULL, NULL, "jsessionid", &r));
}
END_TEST

START_TEST(wait_goes_when_a_member_is_usable_or_waiting_is_off)
{
    sr_wait_in_t in = { 0 };
    int64_t sleep;
    uint32_t ra;

    in.limit = 2000000;
    in.max = 4;
    in.usable = 1;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_GO);
    /* even past the limit, stopping or over max: a usable member serves */
    in.waited = 5000000;
    in.stopping = 1;
    in.others = 9;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_GO);
    ck_assert_int_eq(sleep, 0);
    /* off: mod_proxy_balancer answers as it always did */
    memset(&in, 0, sizeof(in));
    in.max = 4;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_GO);
    /* every member in error and forcerecovery: retried at once, no wait */
    in.limit = 2000000;
    in.forced_recovery = 1;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_GO);
}
END_TEST

START_TEST(wait_sleeps_in_steps_until_the_limit_then_times_out)
{
    sr_wait_in_t in = { 0 };
    int64_t sleep;
    uint32_t ra;

    in.limit = 2000000;
    in.max = 1;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_SLEEP);
    ck_assert_int_eq(sleep, SR_WAIT_STEP);
    in.waiting = 1;
    in.waited = 1000000;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_SLEEP);
    ck_assert_int_eq(sleep, SR_WAIT_STEP);
    /* the last step is only what is left of the limit */
    in.waited = 1980000;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_SLEEP);
    ck_assert_int_eq(sleep, 20000);
    in.waited = 2000000;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_TIMEOUT);
    ck_assert_int_eq(sleep, 0);
    ck_assert_uint_eq(ra, 2);
    /* a limit of 1.5 s says Retry-After: 2; a tiny one at least 1 */
    in.limit = 1500000;
    in.waited = 1600000;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_TIMEOUT);
    ck_assert_uint_eq(ra, 2);
    in.limit = 1;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_TIMEOUT);
    ck_assert_uint_eq(ra, 1);
    /* a request that has waited its limit in an earlier attempt (failover)
     * does not wait again */
    in.limit = 2000000;
    in.waiting = 0;
    in.waited = 2000000;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_TIMEOUT);
}
END_TEST

START_TEST(wait_refuses_beyond_max_but_keeps_those_already_waiting)
{
    sr_wait_in_t in = { 0 };
    int64_t sleep;
    uint32_t ra;

    in.limit = 10000000;
    in.max = 2;
    in.others = 1;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_SLEEP);
    in.others = 2;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_REFUSE);
    ck_assert_int_eq(sleep, 0);
    ck_assert_uint_eq(ra, 10);
    /* one that holds a place keeps it however many others wait */
    in.waiting = 1;
    in.others = 7;
    in.waited = 300000;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_SLEEP);
}
END_TEST

START_TEST(wait_ends_at_once_when_the_process_stops)
{
    sr_wait_in_t in = { 0 };
    int64_t sleep;
    uint32_t ra;

    in.limit = 10000000;
    in.max = 2;
    in.stopping = 1;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_STOPPING);
    ck_assert_uint_eq(ra, 1);
    in.waiting = 1;
    in.waited = 400000;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_STOPPING);
    ck_assert_int_eq(sleep, 0);
    /* a member usable at the same moment still serves */
    in.usable = 2;
    ck_assert_int_eq(sr_wait_decide(&in, &sleep, &ra), SR_WAIT_GO);
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

#define SEC 1000000LL
START_TEST(cookie_goes_out_early_only_for_an_upgrade)
{
    /* WebSocket: the 101 passes no output filter */
    ck_assert_int_eq(sr_cookie_early("Upgrade", "websocket"), 1);
    ck_assert_int_eq(sr_cookie_early("keep-alive, Upgrade", "websocket"), 1);
    ck_assert_int_eq(sr_cookie_early("UPGRADE", "h2c"), 1);
    ck_assert_int_eq(sr_cookie_early(" upgrade \t,close", "websocket"), 1);
    ck_assert_int_eq(sr_cookie_early(",,upgrade", "websocket"), 1);
    /* not an upgrade: no Upgrade field, an empty one, no token */
    ck_assert_int_eq(sr_cookie_early("Upgrade", NULL), 0);
    ck_assert_int_eq(sr_cookie_early("Upgrade", ""), 0);
    ck_assert_int_eq(sr_cookie_early(NULL, "websocket"), 0);
    ck_assert_int_eq(sr_cookie_early("keep-alive", "websocket"), 0);
    ck_assert_int_eq(sr_cookie_early("upgraded", "websocket"), 0);
    ck_assert_int_eq(sr_cookie_early("x-upgrade", "websocket"), 0);
    ck_assert_int_eq(sr_cookie_early("up grade", "websocket"), 0);
    ck_assert_int_eq(sr_cookie_early("", "websocket"), 0);
}
END_TEST

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

START_TEST(number_parser_bounds)
{
    long n = -1;
    ck_assert(sr_parse_number("0", 10, &n) && n == 0);
    ck_assert(sr_parse_number("86400", 86400, &n) && n == 86400);
    ck_assert(!sr_parse_number("86401", 86400, &n));
    ck_assert(!sr_parse_number("", 10, &n));
    ck_assert(!sr_parse_number("-1", 10, &n));
    ck_assert(!sr_parse_number("1x", 10, &n));
    ck_assert(!sr_parse_number(" 1", 10, &n));
    ck_assert(!sr_parse_number("99999999999999999999", 2147483647L, &n));
}
END_TEST

Suite *policy_suite(void)
{
    Suite *s = suite_create("sr_policy");
    TCase *tc = tcase_create("policy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, takers_all_usable_members);
    tcase_add_test(tc, takers_skip_unusable_member);
    tcase_add_test(tc, takers_skip_draining_member);
    tcase_add_test(tc, takers_weights_are_loadfactors);
    tcase_add_test(tc, takers_hot_standby_only_when_nobody_else);
    tcase_add_test(tc, takers_draining_standby_is_not_used);
    tcase_add_test(tc, takers_hot_spares_replace_unusable_one_for_one);
    tcase_add_test(tc, takers_lowest_lbset_with_a_usable_member);
    tcase_add_test(tc, takers_standbys_of_an_lbset_before_the_next_lbset);
    tcase_add_test(tc, takers_spares_stay_in_their_lbset);
    tcase_add_test(tc, takers_none_when_nobody_usable);
    tcase_add_test(tc, decide_hit_on_usable_member);
    tcase_add_test(tc, decide_stock_cookie_is_hit_and_reissued);
    tcase_add_test(tc, decide_foreign_session_is_hit_never_reissued);
    tcase_add_test(tc, decide_draining_member_keeps_its_clients);
    tcase_add_test(tc, decide_hot_spare_keeps_its_clients);
    tcase_add_test(tc, decide_unusable_member_fails_over_by_election);
    tcase_add_test(tc, decide_unusable_member_fails_over_to_its_redirect);
    tcase_add_test(tc, decide_member_failed_in_this_request_fails_over);
    tcase_add_test(tc, decide_nofailover_refuses);
    tcase_add_test(tc, decide_hot_standby_while_regular_members_take_new);
    tcase_add_test(tc, decide_no_cookie_is_new);
    tcase_add_test(tc, decide_unknown_route_is_unknown);
    tcase_add_test(tc, decide_bad_tag_is_forged);
    tcase_add_test(tc, read_cookie_forms);
    tcase_add_test(tc, read_cookie_signed_and_forged);
    tcase_add_test(tc, read_cookie_bounded);
    tcase_add_test(tc, route_choice_configured_derived_invalid_duplicate);
    tcase_add_test(tc, elect_follows_the_schedule);
    tcase_add_test(tc, elect_stale_when_member_changed_since_the_scan);
    tcase_add_test(tc, elect_tried_members_cost_a_ticket_until_all_tried);
    tcase_add_test(tc, elect_none_without_takers);
    tcase_add_test(tc, tried_set_of_any_size);
    tcase_add_test(tc, retry_allowed_rules);
    tcase_add_test(tc, retry_same_member_after_a_reused_connection_broke);
    tcase_add_test(tc, retry_unreached_member_on_another_whatever_maxattempts);
    tcase_add_test(tc, json_escape_any_bytes);
    tcase_add_test(tc, label_escape_any_bytes);
    tcase_add_test(tc, set_cookie_same_name_and_path);
    tcase_add_test(tc, dated_value_roundtrip_and_tag_covers_dates);
    tcase_add_test(tc, cookie_spec_lifetimes_keep_the_default_attributes);
    tcase_add_test(tc, refresh_step_and_cookie_age);
    tcase_add_test(tc, overload_is_relative_to_the_mean_of_usable_members);
    tcase_add_test(tc, decide_expired_cookie_is_elected_again);
    tcase_add_test(tc, decide_hit_refreshes_only_when_due);
    tcase_add_test(tc, decide_rebalances_only_idle_clients_of_overloaded_members);
    tcase_add_test(tc, decide_application_session_id);
    tcase_add_test(tc, leastbusy_picks_the_least_loaded_ties_by_schedule);
    tcase_add_test(tc, slow_start_ramp);
    tcase_add_test(tc, leastbusy_member_in_slow_start_takes_only_its_turns);
    tcase_add_test(tc, leastbusy_new_sessions_follow_the_ramp_step_by_step);
    tcase_add_test(tc, slow_start_ramping_and_when_to_look_again);
    tcase_add_test(tc, session_route_and_url_parameters);
    tcase_add_test(tc, wait_goes_when_a_member_is_usable_or_waiting_is_off);
    tcase_add_test(tc, wait_sleeps_in_steps_until_the_limit_then_times_out);
    tcase_add_test(tc, wait_refuses_beyond_max_but_keeps_those_already_waiting);
    tcase_add_test(tc, wait_ends_at_once_when_the_process_stops);
    tcase_add_test(tc, discover_plan_adds_enables_disables_and_respects_slots);
    tcase_add_test(tc, discover_plan_reuses_the_slot_gone_longest_past_its_hold);
    tcase_add_test(tc, discover_plan_settles_a_rewritten_slot_before_enabling_it);
    tcase_add_test(tc, discover_warning_is_rate_limited);
    tcase_add_test(tc, srv_priorities_become_lbsets_and_weights_load_factors);
    tcase_add_test(tc, next_resolution_follows_the_ttl_within_bounds);
    tcase_add_test(tc, number_parser_bounds);
    tcase_add_test(tc, cookie_goes_out_early_only_for_an_upgrade);
    tcase_add_test(tc, inflight_accounting_only_when_something_reads_it);
    suite_add_tcase(s, tc);
    return s;
}
