/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests of the cookie side of the policy and the core (check): dated
 * values and their tags, StickyRouteCookie lifetimes, refresh steps and a
 * cookie's age, session id parameters, the early Set-Cookie of an upgrade,
 * the output escaping and Set-Cookie matching (sr_text.c, sr_cookie*.c),
 * the number parser. Added to the sr_policy suite (policy_cookie_cases).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>

#include "apr_general.h"
#include "apr_strings.h"
#include "sr_policy.h"
#include "policy_fixture.h"

/* The dated value's edges, each read with and without the signed format
 * (sr_value_parse reads the module's own forms in one pass and anything
 * else the general way: both must agree on every edge). Columns: value
 * ("R63"/"R64": a route of 63/64 characters then ":1:2"), signed format,
 * kind, dated, bad_dates, first, last, route ("R63": that route). */
static const struct {
    const char *val;
    int signed_format;
    sr_value_kind_t kind;
    int dated, bad_dates;
    int64_t first, last;
    const char *route;
} dated_edges[] = {
    {"s1:123456789012:123456789012", 0, SR_VALUE_PLAIN, 1, 0, 123456789012, 123456789012, "s1"},
    {"s1:123456789012:123456789012", 1, SR_VALUE_PLAIN, 1, 0, 123456789012, 123456789012, "s1"},
    {"s1:1234567890123:1", 0, SR_VALUE_PLAIN, 0, 1, 0, 0, "s1"},
    {"s1:1:1234567890123", 1, SR_VALUE_PLAIN, 0, 1, 0, 0, "s1"},
    {"s1:1:2.AAAAAAAAAAA", 0, SR_VALUE_MALFORMED, 0, 0, 1, 2, ""},
    {"s1:1:2.AAAAAAAAAAA", 1, SR_VALUE_SIGNED, 1, 0, 1, 2, "s1"},
    {"s1:1:2.AAAAAAAAAA", 1, SR_VALUE_MALFORMED, 0, 0, 1, 2, ""},
    {"s1:1:2.AAAAAAAAAAAA", 1, SR_VALUE_MALFORMED, 0, 0, 1, 2, ""},
    {"s1:1:2.AAAAAAAAAA~", 1, SR_VALUE_MALFORMED, 0, 0, 1, 2, ""},
    {"s1:1:2.", 1, SR_VALUE_MALFORMED, 0, 0, 1, 2, ""},
    {"s1:1:2.AAAAAAAAAAA.", 1, SR_VALUE_MALFORMED, 0, 0, 1, 2, ""},
    {"s1:1:2.AAAAAAA.AAA", 1, SR_VALUE_MALFORMED, 0, 0, 1, 2, ""},
    {"s1:1:", 0, SR_VALUE_PLAIN, 0, 1, 0, 0, "s1"},
    {"s1:1:2:3", 1, SR_VALUE_PLAIN, 0, 1, 0, 0, "s1"},
    {"s1:1:2x", 0, SR_VALUE_PLAIN, 0, 1, 0, 0, "s1"},
    {"s1:01:002", 0, SR_VALUE_PLAIN, 1, 0, 1, 2, "s1"},
    {"s1~-_:1:2", 1, SR_VALUE_PLAIN, 1, 0, 1, 2, "s1~-_"},
    {"R63", 0, SR_VALUE_PLAIN, 1, 0, 1, 2, "R63"},
    {"R64", 1, SR_VALUE_MALFORMED, 0, 0, 0, 0, ""},
};

START_TEST(dated_value_edges)
{
    char val[SR_ROUTE_MAX + 16], r63[SR_ROUTE_MAX + 1];
    const char *route = dated_edges[_i].route;
    sr_value_t v;

    memset(r63, 'r', SR_ROUTE_MAX);
    r63[SR_ROUTE_MAX] = '\0';
    if (!strcmp(dated_edges[_i].val, "R63") || !strcmp(dated_edges[_i].val, "R64")) {
        snprintf(val, sizeof(val), "%s%s:1:2", r63, dated_edges[_i].val[2] == '4' ? "r" : "");
    }
    else {
        snprintf(val, sizeof(val), "%s", dated_edges[_i].val);
    }
    if (!strcmp(route, "R63")) {
        route = r63;
    }
    ck_assert_int_eq(sr_value_parse(val, strlen(val), dated_edges[_i].signed_format, &v),
                     dated_edges[_i].kind);
    ck_assert_msg(v.kind == dated_edges[_i].kind && v.dated == dated_edges[_i].dated
                  && v.bad_dates == dated_edges[_i].bad_dates
                  && v.first == dated_edges[_i].first && v.last == dated_edges[_i].last
                  && !strcmp(v.route, route),
                  "%s (signed format %d): kind %d dated %d bad_dates %d %lld:%lld route %s",
                  dated_edges[_i].val, dated_edges[_i].signed_format, v.kind, v.dated,
                  v.bad_dates, (long long)v.first, (long long)v.last, v.route);
}
END_TEST

void policy_cookie_cases(Suite *s);

/* One row an escaping case: sr_json_escape (json 1) or sr_label_escape
 * (json 0) of in is want. */
static const struct {
    int json;
    const char *in, *want;
} escape_cases[] = {
    {1, "plain", "plain"},
    {1, "a\"b\\c", "a\\\"b\\\\c"},
    {1, "x\ny\tz\x01", "x\\ny\\u0009z\\u0001"},
    {1, "\x1f\x7f", "\\u001f\x7f"},
    {1, "caf\xc3\xa9", "caf\xc3\xa9"},
    {1, "bad\xff\xc3", "bad\\ufffd\\ufffd"},
    {1, "\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"},
    {0, "plain", "plain"},
    {0, "a\"b\\c\nd", "a\\\"b\\\\c\\nd"},
    {0, "t\tab\x01", "t\tab\x01"},
    {0, "x\xff", "x\xef\xbf\xbd"},
};

START_TEST(escape_any_bytes)
{
    const char *got = escape_cases[_i].json ? sr_json_escape(pool, escape_cases[_i].in)
                                            : sr_label_escape(pool, escape_cases[_i].in);

    ck_assert_msg(got && strcmp(got, escape_cases[_i].want) == 0, "row %d (%s escape): \"%s\"",
                  _i,
                  escape_cases[_i].json ? "json" : "label", got ? got : "(null)");
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

void policy_cookie_cases(Suite *s)
{
    const TTest *tests[] = {
        set_cookie_same_name_and_path,
        dated_value_roundtrip_and_tag_covers_dates,
        cookie_spec_lifetimes_keep_the_default_attributes,
        refresh_step_and_cookie_age,
        session_route_and_url_parameters,
        cookie_goes_out_early_only_for_an_upgrade,
        number_parser_bounds,
    };
    TCase *tc = UNIT_TCASE("cookie", 1, tests);

    UNIT_TABLE_TEST(tc, escape_any_bytes, escape_cases);
    UNIT_TABLE_TEST(tc, dated_value_edges, dated_edges);
    suite_add_tcase(s, tc);
}
