/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests (check) of the decisions that moved from the glue into the
 * policy (issue 18, item 1): how a finder elects (sr_elect_way), what an
 * election does after a verdict (sr_elect_then) and its loop
 * (sr_elect_run), the application's session id
 * (sr_session_read_header, sr_session_read_url), the Set-Cookie of the
 * output filter (sr_cookie_due, sr_cookie_issue), what log_transaction
 * counts (sr_count_decision). One test per row of each table in the
 * sr_policy headers, and the edges. The retry's questions:
 * test_sr_policy_retry.c; a scan's: test_sr_policy_scan.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>

#include "apr_general.h"
#include "apr_strings.h"
#include "sr_policy.h"
#include "unit_util.h"

Suite *policy_request_suite(void);
void policy_retry_cases(Suite *s);   /* test_sr_policy_retry.c */
void policy_scan_cases(Suite *s);    /* test_sr_policy_scan.c */

#define MAXM 8

static sr_member_t view[MAXM];
static sr_tried_t tried;

/* n regular usable members of weight 1, routes s1 s2 ... */
static void members(uint32_t n)
{
    unit_members(view, MAXM, n, "s", 1);
    sr_tried_init(&tried, MAXM);
}

/* ---- how a finder elects (sr_elect_way) ------------------------------------ */

/* One row a case of the way, named after the test it came from: the
 * lbmethod, StickyRouteElect and the status, then the way wanted: by_key,
 * key_none_schedule (read only when by_key), by_load. */
static const struct {
    const char *why;
    sr_lbmethod_t lb;
    sr_elect_mode_t elect;
    sr_status_t status;
    int by_key, key_none_schedule, by_load;
} way_cases[] = {
    /* sticky, roundrobin: the schedule's turn, whatever the status */
    {"sticky roundrobin new", SR_LB_STICKY, SR_ELECT_ROUNDROBIN, SR_STATUS_NEW, 0, 0, 0},
    {"sticky roundrobin failover", SR_LB_STICKY, SR_ELECT_ROUNDROBIN, SR_STATUS_FAILOVER, 0, 0, 0},
    {"sticky roundrobin unknown", SR_LB_STICKY, SR_ELECT_ROUNDROBIN, SR_STATUS_UNKNOWN, 0, 0, 0},
    {"sticky roundrobin forged", SR_LB_STICKY, SR_ELECT_ROUNDROBIN, SR_STATUS_FORGED, 0, 0, 0},
    {"sticky roundrobin expired", SR_LB_STICKY, SR_ELECT_ROUNDROBIN, SR_STATUS_EXPIRED, 0, 0, 0},
    /* sticky, leastbusy: by load */
    {"sticky leastbusy new", SR_LB_STICKY, SR_ELECT_LEASTBUSY, SR_STATUS_NEW, 0, 0, 1},
    {"sticky leastbusy failover", SR_LB_STICKY, SR_ELECT_LEASTBUSY, SR_STATUS_FAILOVER, 0, 0, 1},
    /* sticky, hash: the key first, then the schedule */
    {"sticky hash new", SR_LB_STICKY, SR_ELECT_HASH, SR_STATUS_NEW, 1, 1, 0},
    {"sticky hash failover", SR_LB_STICKY, SR_ELECT_HASH, SR_STATUS_FAILOVER, 1, 1, 0},
    /* a rebalanced client, whatever StickyRouteElect says: by load, never
     * back to the member it is moved from (its key would name it) */
    {"rebalanced, roundrobin", SR_LB_STICKY, SR_ELECT_ROUNDROBIN, SR_STATUS_REBALANCED, 0, 0, 1},
    {"rebalanced, leastbusy", SR_LB_STICKY, SR_ELECT_LEASTBUSY, SR_STATUS_REBALANCED, 0, 0, 1},
    {"rebalanced, hash", SR_LB_STICKY, SR_ELECT_HASH, SR_STATUS_REBALANCED, 0, 0, 1},
    /* the roundrobin lbmethod: never by key */
    {"lbmethod roundrobin, roundrobin", SR_LB_ROUNDROBIN, SR_ELECT_ROUNDROBIN,
     SR_STATUS_ROUNDROBIN, 0, 0, 0},
    {"lbmethod roundrobin, leastbusy", SR_LB_ROUNDROBIN, SR_ELECT_LEASTBUSY,
     SR_STATUS_ROUNDROBIN, 0, 0, 1},
    {"lbmethod roundrobin, hash", SR_LB_ROUNDROBIN, SR_ELECT_HASH, SR_STATUS_ROUNDROBIN, 0, 0, 0},
    /* REBALANCED is a sticky status only: no load for it here */
    {"lbmethod roundrobin, rebalanced", SR_LB_ROUNDROBIN, SR_ELECT_ROUNDROBIN,
     SR_STATUS_REBALANCED, 0, 0, 0},
    /* the hash lbmethod: the key first, none is no member */
    {"lbmethod hash, roundrobin", SR_LB_HASH, SR_ELECT_ROUNDROBIN, SR_STATUS_HASHED, 1, 0, 0},
    {"lbmethod hash, hash", SR_LB_HASH, SR_ELECT_HASH, SR_STATUS_HASHED, 1, 0, 0},
    /* the empty key's schedule goes by load with leastbusy */
    {"lbmethod hash, leastbusy", SR_LB_HASH, SR_ELECT_LEASTBUSY, SR_STATUS_HASHED, 1, 0, 1},
};

START_TEST(elect_way_cases)
{
    sr_elect_way_t w = sr_elect_way(way_cases[_i].lb, way_cases[_i].elect,
                                    way_cases[_i].status);

    ck_assert_msg(w.by_key == way_cases[_i].by_key, "%s: by_key %d", way_cases[_i].why,
                  w.by_key);
    ck_assert_msg(w.by_load == way_cases[_i].by_load, "%s: by_load %d", way_cases[_i].why,
                  w.by_load);
    if (way_cases[_i].by_key)
        ck_assert_msg(w.key_none_schedule == way_cases[_i].key_none_schedule,
                      "%s: key_none_schedule %d", way_cases[_i].why, w.key_none_schedule);
}
END_TEST

/* ---- after a verdict (sr_elect_then) --------------------------------------- */

START_TEST(elect_then_ok_serves)
{
    ck_assert_int_eq(sr_elect_then(SR_ELECT_OK, 3, 1, 0), SR_ELECT_GO_SERVE);
    /* whatever was spent getting there */
    ck_assert_int_eq(sr_elect_then(SR_ELECT_OK, 3, 99, 2), SR_ELECT_GO_SERVE);
}
END_TEST

START_TEST(elect_then_tried_takes_tickets_up_to_len_plus_one)
{
    ck_assert_int_eq(sr_elect_then(SR_ELECT_TRIED, 3, 1, 0), SR_ELECT_GO_NEXT);
    ck_assert_int_eq(sr_elect_then(SR_ELECT_TRIED, 3, 4, 0), SR_ELECT_GO_NEXT);
    ck_assert_int_eq(sr_elect_then(SR_ELECT_TRIED, 3, 5, 0),
                     SR_ELECT_GO_GIVE_UP);
    /* rescans do not count here */
    ck_assert_int_eq(sr_elect_then(SR_ELECT_TRIED, 3, 2, 2), SR_ELECT_GO_NEXT);
}
END_TEST

START_TEST(elect_then_stale_rescans_twice_then_gives_up)
{
    ck_assert_int_eq(sr_elect_then(SR_ELECT_STALE, 3, 1, 0),
                     SR_ELECT_GO_RESCAN);
    ck_assert_int_eq(sr_elect_then(SR_ELECT_STALE, 3, 1, 1),
                     SR_ELECT_GO_RESCAN);
    ck_assert_int_eq(sr_elect_then(SR_ELECT_STALE, 3, 1, SR_ELECT_RESCANS),
                     SR_ELECT_GO_GIVE_UP);
    ck_assert_int_eq(SR_ELECT_RESCANS, 2);
}
END_TEST

START_TEST(elect_then_none_rescans_an_empty_schedule_once)
{
    /* nobody took new sessions at the last scan: look again, once */
    ck_assert_int_eq(sr_elect_then(SR_ELECT_NONE, 0, 1, 0),
                     SR_ELECT_GO_RESCAN);
    ck_assert_int_eq(sr_elect_then(SR_ELECT_NONE, 0, 1, 1),
                     SR_ELECT_GO_GIVE_UP);
    /* every scheduled member tried: no rescan helps */
    ck_assert_int_eq(sr_elect_then(SR_ELECT_NONE, 3, 3, 0),
                     SR_ELECT_GO_GIVE_UP);
}
END_TEST

/* The election's loop, the glue's own (sr_elect_run, which sr_elect in
 * mod_sticky_route_find.c runs), over a real schedule with the verdicts of
 * sr_elect_check: the test's step takes tickets from `ticket` on and counts
 * them; its rescan counts rescans and runs `rebuild` when set. */
typedef struct {
    sr_schedule_t *s;
    uint32_t n;
    uint64_t ticket;
    uint32_t tickets;
    uint32_t rescans;
    void (*rebuild)(sr_schedule_t *s);
} loop_t;

static sr_elect_t loop_step(void *ctx, int fresh, uint32_t *len, int32_t *m)
{
    loop_t *l = ctx;
    sr_elect_t v;

    if (fresh) {
        l->ticket++;
        l->tickets++;
    }
    v = sr_elect_check(l->s, l->ticket, view, l->n, &tried, m);
    *len = l->s->len;
    return v;
}

static void loop_rescan(void *ctx)
{
    loop_t *l = ctx;

    l->rescans++;
    if (l->rebuild) {
        l->rebuild(l->s);
    }
}

static int32_t elect_loop(loop_t *l, sr_schedule_t *s, uint32_t n,
                          uint64_t ticket)
{
    memset(l, 0, sizeof(*l));
    l->s = s;
    l->n = n;
    l->ticket = ticket;
    return sr_elect_run(loop_step, loop_rescan, l);
}

/* the takers of the view now, as a scan would schedule them */
static void rebuild_from_view(sr_schedule_t *s)
{
    uint16_t cand[MAXM];
    uint32_t w[MAXM];
    int from_standby;
    uint32_t k = sr_policy_takers(view, 3, cand, w, &from_standby);

    sr_schedule_build(s, cand, w, k);
}

START_TEST(elect_loop_skips_tried_members_and_ends)
{
    sr_schedule_t s;
    uint16_t cand[3] = { 0, 1, 2 };
    uint32_t w[3] = { 1, 1, 1 };
    loop_t l;
    int32_t m;

    members(3);
    sr_schedule_init(pool, &s, MAXM);
    sr_schedule_build(&s, cand, w, 3);
    sr_tried_add(pool, &tried, 0);
    sr_tried_add(pool, &tried, 1);
    m = elect_loop(&l, &s, 3, 0);
    ck_assert_int_eq(m, 2);
    ck_assert_uint_le(l.tickets, 3);
    ck_assert_uint_eq(l.rescans, 0);
    sr_tried_add(pool, &tried, 2);
    ck_assert_int_eq(elect_loop(&l, &s, 3, 0), -1);
    ck_assert_uint_eq(l.rescans, 0);
    /* a member gone unusable since the scan: stale, two rescans of the
     * same ticket, then nobody */
    members(3);
    view[1].usable = 0;
    ck_assert_int_eq(elect_loop(&l, &s, 3, 0), -1);
    ck_assert_uint_eq(l.tickets, 1);
    ck_assert_uint_eq(l.rescans, SR_ELECT_RESCANS);
}
END_TEST

START_TEST(elect_loop_rescan_maps_the_same_ticket_onto_the_new_schedule)
{
    sr_schedule_t s;
    uint16_t cand[3] = { 0, 1, 2 };
    uint32_t w[3] = { 1, 1, 1 };
    loop_t l;
    uint16_t k;
    int32_t m;

    members(3);
    sr_schedule_init(pool, &s, MAXM);
    sr_schedule_build(&s, cand, w, 3);
    k = sr_schedule_at(&s, 1);          /* the first ticket's member */
    view[k].usable = 0;
    memset(&l, 0, sizeof(l));
    l.s = &s;
    l.n = 3;
    l.rebuild = rebuild_from_view;
    m = sr_elect_run(loop_step, loop_rescan, &l);
    ck_assert_uint_eq(l.rescans, 1);
    ck_assert_uint_eq(l.tickets, 1);    /* no new ticket for a rescan */
    ck_assert_int_eq(m, sr_schedule_at(&s, 1));
    ck_assert_int_ne(m, k);
}
END_TEST

START_TEST(elect_loop_empty_schedule_rescans_once)
{
    sr_schedule_t s;
    loop_t l;

    /* nobody took new sessions at the last scan: one rescan; still nobody */
    members(3);
    sr_schedule_init(pool, &s, MAXM);
    ck_assert_int_eq(elect_loop(&l, &s, 3, 0), -1);
    ck_assert_uint_eq(l.rescans, 1);
    ck_assert_uint_eq(l.tickets, 1);
    /* the rescan finds takers: the same ticket serves */
    memset(&l, 0, sizeof(l));
    l.s = &s;
    l.n = 3;
    l.rebuild = rebuild_from_view;
    ck_assert_int_eq(sr_elect_run(loop_step, loop_rescan, &l),
                     sr_schedule_at(&s, 1));
    ck_assert_uint_eq(l.rescans, 1);
    ck_assert_uint_eq(l.tickets, 1);
}
END_TEST

/* ---- the application's session id ------------------------------------------ */

static const char *routes3[] = { "s1", "s2", "s3" };
static sr_route_index_t ix3;
static sr_cookie_ctx_t ctx3;

static void session_ctx(int32_t nmembers)
{
    int32_t i;
    sr_index_init(pool, &ix3, 3);
    for (i = 0; i < 3; i++) {
        sr_index_insert(&ix3, routes3, i);
    }
    memset(&ctx3, 0, sizeof(ctx3));
    ctx3.name = "ROUTEID";
    ctx3.index = &ix3;
    ctx3.routes = routes3;
    ctx3.nmembers = nmembers;
}

static int32_t session_of(const char *header)
{
    sr_cookie_read_t c;
    sr_cookie_read_init(&c);
    if (!sr_session_read_header(&c, &ctx3, "JSESSIONID", header)) {
        ck_assert_int_eq(c.app_member, -1);
    }
    return c.app_member;
}

START_TEST(session_cookie_names_its_member)
{
    session_ctx(3);
    ck_assert_int_eq(session_of("JSESSIONID=ABC123.s2"), 1);
    ck_assert_int_eq(session_of("a=1; JSESSIONID=Q.R.s3; b=2"), 2);
}
END_TEST

START_TEST(session_first_value_naming_a_member_wins)
{
    session_ctx(3);
    ck_assert_int_eq(session_of("JSESSIONID=X.zz; JSESSIONID=Y.s1; "
                                "JSESSIONID=Z.s3"), 0);
}
END_TEST

START_TEST(session_value_without_a_member_is_passed_over)
{
    session_ctx(3);
    ck_assert_int_eq(session_of("JSESSIONID=ABC123"), -1);   /* no route */
    ck_assert_int_eq(session_of("JSESSIONID=ABC."), -1);     /* empty */
    ck_assert_int_eq(session_of("JSESSIONID=ABC.s9"), -1);   /* unknown */
    ck_assert_int_eq(session_of("OTHER=ABC.s1"), -1);        /* other name */
    ck_assert_int_eq(session_of(""), -1);
    ck_assert_int_eq(session_of(NULL), -1);
}
END_TEST

START_TEST(session_route_beyond_the_members_is_passed_over)
{
    session_ctx(2);             /* s3 is in the index, not in the view */
    ck_assert_int_eq(session_of("JSESSIONID=A.s3"), -1);
    ck_assert_int_eq(session_of("JSESSIONID=A.s3; JSESSIONID=B.s2"), 1);
}
END_TEST

START_TEST(session_value_longer_than_the_limit_is_passed_over)
{
    char hdr[SR_VALUE_MAX + 64], *p;
    size_t i;

    session_ctx(3);
    p = hdr + sprintf(hdr, "JSESSIONID=");
    for (i = 0; i < SR_VALUE_MAX - 3; i++) {
        *p++ = 'A';
    }
    strcpy(p, ".s1");           /* exactly SR_VALUE_MAX */
    ck_assert_int_eq(session_of(hdr), 0);
    p = hdr + strlen("JSESSIONID=");
    for (i = 0; i < SR_VALUE_MAX - 2; i++) {
        *p++ = 'A';
    }
    strcpy(p, ".s1");           /* one more */
    ck_assert_int_eq(session_of(hdr), -1);
}
END_TEST

START_TEST(session_at_most_the_first_values_of_a_header)
{
    char hdr[512];
    size_t i, len = 0;

    session_ctx(3);
    for (i = 0; i < SR_COOKIES_MAX; i++) {
        len += (size_t)sprintf(hdr + len, "JSESSIONID=x%zu.zz; ", i);
    }
    sprintf(hdr + len, "JSESSIONID=late.s2");
    ck_assert_int_eq(session_of(hdr), -1);
    /* the next Cookie header is read afresh */
    ck_assert_int_eq(session_of("JSESSIONID=late.s2"), 1);
}
END_TEST

START_TEST(session_url_parameter_path_then_query)
{
    sr_cookie_read_t c;

    session_ctx(3);
    sr_cookie_read_init(&c);
    ck_assert(sr_session_read_url(&c, &ctx3, "jsessionid",
                                  "/app;jsessionid=ABC.s3", "jsessionid=Z.s1"));
    ck_assert_int_eq(c.app_member, 2);
    sr_cookie_read_init(&c);
    ck_assert(sr_session_read_url(&c, &ctx3, "jsessionid", "/app",
                                  "a=1&jsessionid=Z.s1"));
    ck_assert_int_eq(c.app_member, 0);
}
END_TEST

START_TEST(session_url_parameter_absent_unknown_or_off)
{
    sr_cookie_read_t c;

    session_ctx(3);
    sr_cookie_read_init(&c);
    ck_assert(!sr_session_read_url(&c, &ctx3, "jsessionid", "/app", "a=1"));
    ck_assert(!sr_session_read_url(&c, &ctx3, "jsessionid", "/app",
                                   "jsessionid=Z.s9"));
    ck_assert(!sr_session_read_url(&c, &ctx3, "jsessionid", "/app",
                                   "jsessionid=Z"));
    /* no parameter configured */
    ck_assert(!sr_session_read_url(&c, &ctx3, NULL, "/app;jsessionid=A.s1",
                                   NULL));
    ck_assert_int_eq(c.app_member, -1);
    /* a member found by the cookie stays when the URL names none */
    c.app_member = 1;
    ck_assert(!sr_session_read_url(&c, &ctx3, "jsessionid", "/app", NULL));
    ck_assert_int_eq(c.app_member, 1);
}
END_TEST

/* ---- the response's Set-Cookie (sr_cookie_due, sr_cookie_issue) ------------ */

START_TEST(cookie_due_when_issued_prepared_and_a_member_serves)
{
    ck_assert(sr_cookie_due(1, 1, 1, 0));
    ck_assert(!sr_cookie_due(0, 1, 1, 0));      /* decision issues none */
    ck_assert(!sr_cookie_due(1, 0, 1, 0));      /* no value prepared */
    ck_assert(!sr_cookie_due(1, 1, 0, 0));      /* last decision: no member */
}
END_TEST

START_TEST(cookie_never_on_httpds_own_error_page)
{
    ck_assert(!sr_cookie_due(1, 1, 1, 1));
}
END_TEST

/* sr_cookie_issue(member sets it, warned already): the cookie goes out
 * unless the member sets it; the member's cookie stands, warned once. */
static const struct {
    const char *why;
    int member_sets, warned;
    int want;
} issue_cases[] = {
    {"goes out", 0, 0, SR_ISSUE_ADD},
    {"goes out, warned", 0, 1, SR_ISSUE_ADD},
    {"the member's stands, warned once", 1, 0, SR_ISSUE_MEMBERS_WARN},
    {"the member's stands, warned already", 1, 1, SR_ISSUE_MEMBERS},
};

START_TEST(cookie_issue_cases)
{
    int got = (int)sr_cookie_issue(issue_cases[_i].member_sets, issue_cases[_i].warned);

    ck_assert_msg(got == issue_cases[_i].want, "%s: %d, not %d", issue_cases[_i].why, got,
                  issue_cases[_i].want);
}
END_TEST

/* ---- what log_transaction counts (sr_count_decision) ---------------------- */

static sr_count_in_t served(void)
{
    sr_count_in_t in;
    in.decided = 1;
    in.error_response = 0;
    in.broken = 0;
    in.sent_body = 1;
    in.status = SR_STATUS_HIT;
    return in;
}

START_TEST(count_a_served_response_under_every_status)
{
    sr_count_in_t in = served();
    int s;
    for (s = 0; s < SR_STATUS_COUNT; s++) {
        in.status = (sr_status_t)s;
        ck_assert(sr_count_decision(&in));
    }
}
END_TEST

START_TEST(count_not_without_a_member)
{
    sr_count_in_t in = served();
    in.decided = 0;
    ck_assert(!sr_count_decision(&in));
}
END_TEST

START_TEST(count_not_httpds_own_error)
{
    sr_count_in_t in = served();
    in.error_response = 1;
    ck_assert(!sr_count_decision(&in));
}
END_TEST

START_TEST(count_not_a_response_cut_off)
{
    sr_count_in_t in = served();
    in.broken = 1;
    ck_assert(!sr_count_decision(&in));
}
END_TEST

START_TEST(count_not_when_no_response_left)
{
    sr_count_in_t in = served();
    in.sent_body = 0;
    ck_assert(!sr_count_decision(&in));
}
END_TEST

START_TEST(count_not_an_unknown_status)
{
    sr_count_in_t in = served();
    in.status = SR_STATUS_COUNT;
    ck_assert(!sr_count_decision(&in));
    in.status = (sr_status_t)-1;
    ck_assert(!sr_count_decision(&in));
}
END_TEST

Suite *policy_request_suite(void)
{
    const TTest *tests[] = {
        elect_then_ok_serves,
        elect_then_tried_takes_tickets_up_to_len_plus_one,
        elect_then_stale_rescans_twice_then_gives_up,
        elect_then_none_rescans_an_empty_schedule_once,
        elect_loop_skips_tried_members_and_ends,
        elect_loop_rescan_maps_the_same_ticket_onto_the_new_schedule,
        elect_loop_empty_schedule_rescans_once,
        session_cookie_names_its_member,
        session_first_value_naming_a_member_wins,
        session_value_without_a_member_is_passed_over,
        session_route_beyond_the_members_is_passed_over,
        session_value_longer_than_the_limit_is_passed_over,
        session_at_most_the_first_values_of_a_header,
        session_url_parameter_path_then_query,
        session_url_parameter_absent_unknown_or_off,
        cookie_due_when_issued_prepared_and_a_member_serves,
        cookie_never_on_httpds_own_error_page,
        count_a_served_response_under_every_status,
        count_not_without_a_member,
        count_not_httpds_own_error,
        count_not_a_response_cut_off,
        count_not_when_no_response_left,
        count_not_an_unknown_status,
    };
    TCase *tc = UNIT_TCASE("request", 1, tests);
    Suite *s;

    UNIT_TABLE_TEST(tc, elect_way_cases, way_cases);
    UNIT_TABLE_TEST(tc, cookie_issue_cases, issue_cases);
    s = unit_suite("sr_policy_request", tc);

    policy_retry_cases(s);
    policy_scan_cases(s);
    return s;
}
