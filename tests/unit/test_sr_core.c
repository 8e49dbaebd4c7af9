/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * Unit tests of sr_core.c (check). Pure functions only: no httpd.
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include <fcntl.h>
#include <check.h>

#include "apr_general.h"
#include "apr_strings.h"
#include "sr_core.h"
#include "unit_util.h"

Suite *policy_suite(void);     /* test_sr_policy.c */
Suite *policy_request_suite(void);  /* test_sr_policy_request.c */
Suite *dns_suite(void);        /* test_sr_dns.c */
Suite *hash_suite(void);       /* test_sr_hash.c */
Suite *hc_suite(void);         /* test_sr_hc.c */
Suite *retry_stream_suite(void);    /* test_sr_retry_stream.c */

#define setup unit_setup
#define teardown unit_teardown

/* ---- cookie header ------------------------------------------------- */

static size_t find(const char *hdr, const char *name, sr_span_t *out, size_t max)
{
    return sr_cookie_find(hdr, name, out, max);
}

static int span_is(const sr_span_t *s, const char *v)
{
    return s->len == strlen(v) && memcmp(s->ptr, v, s->len) == 0;
}

/* One Cookie header, the spans found (at most max) and their values. */
static const struct {
    const char *hdr;
    size_t max;
    size_t n;
    const char *want[2];
} find_cases[] = {
    {"a=1; ROUTEID=s1; b=2", 4, 1, {"s1"}},                     /* among others */
    {"XROUTEID=s1; ROUTEIDX=s2; routeid=s3", 4, 0, {NULL}},     /* exact on name */
    {"ROUTEID=a;ROUTEID=b;ROUTEID=c", 2, 2, {"a", "b"}},        /* in order, bounded */
    {"  ROUTEID = \"s1\" ;x=y", 2, 1, {"s1"}},                  /* quotes and blanks */
    {"", 2, 0, {NULL}},                                         /* empty and garbage */
    {";;;,,, ", 2, 0, {NULL}},
    {"ROUTEID", 2, 0, {NULL}},
    {"ROUTEID=", 2, 1, {""}},
    {NULL, 2, 0, {NULL}},
    {"=x; ROUTEID=\"", 2, 1, {"\""}},
    {"a=1, ROUTEID=s2", 2, 1, {"s2"}},                          /* comma separated */
};

START_TEST(cookie_find_cases)
{
    sr_span_t s[4];
    size_t i;

    ck_assert_uint_le(find_cases[_i].max, 4);
    ck_assert_uint_eq(find(find_cases[_i].hdr, "ROUTEID", s, find_cases[_i].max),
                      find_cases[_i].n);
    for (i = 0; i < find_cases[_i].n; i++)
        ck_assert_msg(span_is(&s[i], find_cases[_i].want[i]), "case %d: span %zu is \"%.*s\"",
                      _i, i, (int)s[i].len, s[i].ptr);
}
END_TEST

/* ---- values -------------------------------------------------------- */

/* Unsigned values (no secret): the kind parsed, the route read, and the
 * verdict with legacy values allowed. */
static const struct {
    const char *val;
    size_t len;
    sr_value_kind_t kind;
    const char *route;          /* NULL: malformed */
} value_cases[] = {
    {"s1", 2, SR_VALUE_PLAIN, "s1"},
    {".s1", 3, SR_VALUE_LEGACY, "s1"},                  /* the stock recipe */
    {"abc123.s2", 9, SR_VALUE_LEGACY, "s2"},
    {"", 0, SR_VALUE_MALFORMED, NULL},
    {"s 1", 3, SR_VALUE_MALFORMED, NULL},
    {"s\r\n1", 4, SR_VALUE_MALFORMED, NULL},
    {"s\0001", 3, SR_VALUE_MALFORMED, NULL},
    {"s\xc3\xa9", 3, SR_VALUE_MALFORMED, NULL},
    {"s1.", 3, SR_VALUE_MALFORMED, NULL},
    {"a.b.c", 5, SR_VALUE_MALFORMED, NULL},
    {"s%0d%0a", 7, SR_VALUE_MALFORMED, NULL},
};

START_TEST(value_unsigned_cases)
{
    sr_value_t v;

    ck_assert_int_eq(sr_value_parse(value_cases[_i].val, value_cases[_i].len, 0, &v),
                     value_cases[_i].kind);
    if (value_cases[_i].route == NULL) {
        ck_assert_int_eq(sr_value_verdict(&v, NULL, 1, "b"), SR_VERDICT_MALFORMED);
        return;
    }
    ck_assert_str_eq(v.route, value_cases[_i].route);
    ck_assert_int_eq(sr_value_verdict(&v, NULL, 1, "balancer://x"), SR_VERDICT_ROUTE);
}
END_TEST

START_TEST(value_route_length_bound)
{
    sr_value_t v;
    char big[SR_VALUE_MAX + 2];
    memset(big, 'a', sizeof(big));
    ck_assert_int_eq(sr_value_parse(big, SR_ROUTE_MAX + 1, 0, &v), SR_VALUE_MALFORMED);
    ck_assert_int_eq(sr_value_parse(big, SR_ROUTE_MAX, 0, &v), SR_VALUE_PLAIN);
    ck_assert_int_eq(sr_value_parse(big, sizeof(big), 0, &v), SR_VALUE_MALFORMED);
    ck_assert_int_eq(sr_value_verdict(&v, NULL, 1, "b"), SR_VERDICT_MALFORMED);
}
END_TEST

START_TEST(value_signed_roundtrip_and_forgeries)
{
    sr_key_t key, other;
    sr_value_t v;
    char *val;
    char tampered[64];

    sr_key_derive(&key, "0123456789abcdef", 16, "tag");
    sr_key_derive(&other, "0123456789abcdeX", 16, "tag");
    val = sr_value_format(pool, "s1", &key, "balancer://static");
    ck_assert_uint_eq(strlen(val), 2 + 1 + SR_TAG_LEN);
    ck_assert_int_eq(sr_value_parse(val, strlen(val), 1, &v), SR_VALUE_SIGNED);
    ck_assert_int_eq(sr_value_verdict(&v, &key, 0, "balancer://static"), SR_VERDICT_ROUTE);
    /* another balancer name, another key: forged */
    ck_assert_int_eq(sr_value_verdict(&v, &key, 0, "balancer://other"), SR_VERDICT_FORGED);
    ck_assert_int_eq(sr_value_verdict(&v, &other, 0, "balancer://static"), SR_VERDICT_FORGED);
    /* a route swapped under a valid tag: forged */
    strcpy(tampered, val);
    tampered[1] = '2';
    ck_assert_int_eq(sr_value_parse(tampered, strlen(tampered), 1, &v), SR_VALUE_SIGNED);
    ck_assert_int_eq(sr_value_verdict(&v, &key, 0, "balancer://static"), SR_VERDICT_FORGED);
    /* a tag bit flipped */
    strcpy(tampered, val);
    tampered[strlen(tampered) - 1] ^= 1;
    ck_assert_int_eq(sr_value_parse(tampered, strlen(tampered), 1, &v), SR_VALUE_SIGNED);
    ck_assert_int_eq(sr_value_verdict(&v, &key, 0, "balancer://static"), SR_VERDICT_FORGED);
    /* no tag at all with a secret: forged */
    ck_assert_int_eq(sr_value_parse("s1", 2, 1, &v), SR_VALUE_PLAIN);
    ck_assert_int_eq(sr_value_verdict(&v, &key, 0, "balancer://static"), SR_VERDICT_FORGED);
    /* legacy with a secret: refused unless allowed */
    ck_assert_int_eq(sr_value_parse(".s1", 3, 1, &v), SR_VALUE_LEGACY);
    ck_assert_int_eq(sr_value_verdict(&v, &key, 0, "balancer://static"), SR_VERDICT_FORGED);
    ck_assert_int_eq(sr_value_verdict(&v, &key, 1, "balancer://static"), SR_VERDICT_ROUTE);
}
END_TEST

START_TEST(value_signed_is_deterministic_and_keyed)
{
    sr_key_t k1, k2;
    sr_key_derive(&k1, "a secret of some length", 23, "tag");
    sr_key_derive(&k2, "a secret of some length", 23, "tag");
    ck_assert_str_eq(sr_value_format(pool, "s1", &k1, "b"),
                     sr_value_format(pool, "s1", &k2, "b"));
    sr_key_derive(&k2, "a secret of some length", 23, "route");
    ck_assert_str_ne(sr_value_format(pool, "s1", &k1, "b"),
                     sr_value_format(pool, "s1", &k2, "b"));
    ck_assert_str_eq(sr_value_format(pool, "s1", NULL, "b"), "s1");
}
END_TEST

/* ---- routes ---------------------------------------------------------- */

START_TEST(route_validity)
{
    ck_assert(sr_route_is_valid("s1", 2));
    ck_assert(sr_route_is_valid("node-1_a~", 9));
    ck_assert(!sr_route_is_valid("", 0));
    ck_assert(!sr_route_is_valid("a.b", 3));
    ck_assert(!sr_route_is_valid("a b", 3));
    ck_assert(!sr_route_is_valid("a;b", 3));
}
END_TEST

START_TEST(route_derived_is_stable_opaque_and_keyed)
{
    char a[SR_DERIVED_ROUTE_LEN + 1], b[SR_DERIVED_ROUTE_LEN + 1];
    char c[SR_DERIVED_ROUTE_LEN + 1];
    sr_key_t key;

    sr_route_derive(a, "http://10.0.0.2:80", NULL);
    sr_route_derive(b, "http://10.0.0.2:80", NULL);
    ck_assert_str_eq(a, b);
    ck_assert_uint_eq(strlen(a), SR_DERIVED_ROUTE_LEN);
    ck_assert(sr_route_is_valid(a, strlen(a)));
    ck_assert_ptr_null(strstr(a, "10"));
    sr_route_derive(c, "http://10.0.0.3:80", NULL);
    ck_assert_str_ne(a, c);
    sr_key_derive(&key, "0123456789abcdef", 16, "route");
    sr_route_derive(c, "http://10.0.0.2:80", &key);
    ck_assert_str_ne(a, c);
}
END_TEST

/* ---- secrets --------------------------------------------------------- */

START_TEST(secret_load_inline_and_file)
{
    const char *s;
    size_t len;
    char path[] = "/tmp/sr_unit_secretXXXXXX";
    int fd;

    ck_assert_ptr_null(sr_secret_load(pool, "0123456789abcdef", &s, &len));
    ck_assert_uint_eq(len, 16);
    ck_assert_ptr_nonnull(sr_secret_load(pool, "0123456789abcde", &s, &len));
    ck_assert_ptr_nonnull(sr_secret_load(pool, "file:", &s, &len));
    ck_assert_ptr_nonnull(sr_secret_load(pool, "file:/nonexistent/x", &s, &len));
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "0123456789abcdefXY\r\n", 20), 20);
    close(fd);
    ck_assert_ptr_null(sr_secret_load(pool, apr_pstrcat(pool, "file:", path, NULL), &s, &len));
    ck_assert_uint_eq(len, 18);
    ck_assert(memcmp(s, "0123456789abcdefXY", 18) == 0);
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_eq(write(fd, "short\n", 6), 6);
    close(fd);
    {
        const char *err = sr_secret_load(pool, apr_pstrcat(pool, "file:", path, NULL), &s, &len);
        ck_assert_ptr_nonnull(err);
        ck_assert_ptr_null(strstr(err, "short"));   /* never echoes the secret */
    }
    unlink(path);
}
END_TEST

/* ---- cookie spec ----------------------------------------------------- */

static const char *parse_spec(sr_cookie_spec_t *spec, const char *line)
{
    char *argv[16];
    int argc = 0;
    char *copy = apr_pstrdup(pool, line), *tok, *last;
    for (tok = apr_strtok(copy, " ", &last); tok && argc < 16;
         tok = apr_strtok(NULL, " ", &last)) {
        argv[argc++] = tok;
    }
    return sr_cookie_spec_parse(pool, argc, argv, spec);
}

/* A StickyRouteCookie argument line (NULL: the default spec) and the
 * Set-Cookie value it gives for a route, on http or https. */
static const struct {
    const char *args;
    const char *route;
    int secure;
    const char *cookie;
} spec_cases[] = {
    {NULL, "s1", 0, "ROUTEID=s1; Path=/; HttpOnly; SameSite=Lax"},
    {NULL, "s1", 1, "ROUTEID=s1; Path=/; HttpOnly; SameSite=Lax; Secure"},
    {"SRV", "x", 0, "SRV=x; Path=/; HttpOnly; SameSite=Lax"},   /* name only keeps defaults */
    {"SRV Path=/app Domain=example.org Max-Age=3600 HttpOnly Secure SameSite=None", "x", 1,
     "SRV=x; Path=/app; Domain=example.org; Max-Age=3600; HttpOnly; Secure; SameSite=None"},
    {"SRV samesite=strict max-age=0", "x", 0, "SRV=x; Path=/; Max-Age=0; SameSite=Strict"},
};

START_TEST(cookie_spec_formats)
{
    sr_cookie_spec_t spec;

    if (spec_cases[_i].args == NULL)
        sr_cookie_spec_default(pool, &spec);
    else
        ck_assert_ptr_null(parse_spec(&spec, spec_cases[_i].args));
    ck_assert_str_eq(sr_cookie_format(pool, &spec, spec_cases[_i].route, spec_cases[_i].secure),
                     spec_cases[_i].cookie);
}
END_TEST

/* Argument lines StickyRouteCookie refuses. */
static const char *const spec_errors[] = {
    "a;b", "a\"b", "X SameSite=None", "X SameSite=Whatever", "X Max-Age=-1",
    "X Max-Age=abc", "X Max-Age=", "X Max-Age=99999999999", "X Foo=1", "X Path=noslash",
    "X Path=/a;b", "X Domain=a_b", "X HttpOnly=1",
};

START_TEST(cookie_spec_errors)
{
    sr_cookie_spec_t spec;
    size_t i;
    for (i = 0; i < sizeof(spec_errors) / sizeof(spec_errors[0]); i++)
        ck_assert_msg(parse_spec(&spec, spec_errors[i]) != NULL, "accepted: %s", spec_errors[i]);
    ck_assert_ptr_nonnull(sr_cookie_spec_parse(pool, 0, NULL, &spec));
}
END_TEST

START_TEST(token_validity)
{
    ck_assert(sr_token_is_valid("ROUTEID"));
    ck_assert(sr_token_is_valid("a-b_c.d!#$%&'*+^`|~"));
    ck_assert(!sr_token_is_valid(""));
    ck_assert(!sr_token_is_valid("a b"));
    ck_assert(!sr_token_is_valid("a=b"));
    ck_assert(!sr_token_is_valid("a\x7f"));
    ck_assert(!sr_token_is_valid("caf\xc3\xa9"));
}
END_TEST

/* ---- schedule -------------------------------------------------------- */

static char *schedule_string(const uint32_t *weights, size_t n, uint32_t steps)
{
    sr_schedule_t s;
    uint16_t members[26];
    char *out = apr_pcalloc(pool, steps + 1);
    uint32_t i;
    for (i = 0; i < n; i++) {
        members[i] = (uint16_t)i;
    }
    sr_schedule_init(pool, &s, (uint32_t)n);
    sr_schedule_build(&s, members, weights, n);
    for (i = 0; i < steps; i++) {
        out[i] = (char)('a' + sr_schedule_at(&s, i));
    }
    return out;
}

START_TEST(schedule_smooth_5_1_1)
{
    const uint32_t w[] = { 500, 100, 100 };   /* loadfactor 5,1,1 */
    ck_assert_str_eq(schedule_string(w, 3, 14), "aabacaaaabacaa");
}
END_TEST

START_TEST(schedule_equal_weights_exact)
{
    const uint32_t w[] = { 100, 100, 100, 100 };
    sr_schedule_t s;
    uint16_t m[] = { 0, 1, 2, 3 };
    unsigned count[4] = { 0 };
    uint64_t t;
    sr_schedule_init(pool, &s, 4);
    ck_assert_uint_eq(sr_schedule_build(&s, m, w, 4), 4);
    for (t = 1000; t < 1000 + 6001; t++) {
        count[sr_schedule_at(&s, t)]++;
    }
    for (t = 0; t < 4; t++) {
        ck_assert(count[t] == 1500 || count[t] == 1501);
    }
}
END_TEST

START_TEST(schedule_skips_members_not_given)
{
    /* a b c d with b unusable: the caller passes a c d */
    const uint32_t w[] = { 1, 1, 1 };
    sr_schedule_t s;
    uint16_t m[] = { 0, 2, 3 };
    char out[10] = { 0 };
    int i;
    sr_schedule_init(pool, &s, 4);
    sr_schedule_build(&s, m, w, 3);
    for (i = 0; i < 9; i++) {
        out[i] = (char)('a' + sr_schedule_at(&s, (uint64_t)i));
    }
    ck_assert_str_eq(out, "acdacdacd");
}
END_TEST

START_TEST(schedule_weights_proportional_and_bounded)
{
    uint32_t w[256];
    uint16_t m[256];
    sr_schedule_t s;
    unsigned count[256] = { 0 };
    uint32_t i, len;
    for (i = 0; i < 256; i++) {
        m[i] = (uint16_t)i;
        w[i] = 100 + i * 37;   /* gcd 1: forces scaling */
    }
    sr_schedule_init(pool, &s, 256);
    len = sr_schedule_build(&s, m, w, 256);
    ck_assert_uint_le(len, s.cap);
    ck_assert_uint_gt(len, 256);
    for (i = 0; i < len; i++) {
        count[sr_schedule_at(&s, i)]++;
    }
    for (i = 0; i < 256; i++) {
        ck_assert_uint_ge(count[i], 1);
    }
    ck_assert_uint_gt(count[255], count[0] * 5);
    ck_assert_uint_eq(sr_schedule_build(&s, m, w, 0), 0);
}
END_TEST

/* ---- route index ------------------------------------------------------ */

START_TEST(index_finds_routes)
{
    sr_route_index_t ix;
    const char *routes[300];
    int i;
    sr_index_init(pool, &ix, 300);
    for (i = 0; i < 300; i++) {
        routes[i] = apr_psprintf(pool, "s%d", i);
        sr_index_insert(&ix, routes, i);
    }
    for (i = 0; i < 300; i++) {
        ck_assert_int_eq(sr_index_find(&ix, routes, routes[i], strlen(routes[i])), i);
    }
    ck_assert_int_eq(sr_index_find(&ix, routes, "s300", 4), -1);
    ck_assert_int_eq(sr_index_find(&ix, routes, "s1", 1), -1);
    ck_assert_int_eq(sr_index_find(&ix, routes, "s10", 2), 1);  /* a prefix span */
    sr_index_clear(&ix);
    ck_assert_int_eq(sr_index_find(&ix, routes, "s1", 2), -1);
}
END_TEST

START_TEST(status_names)
{
    ck_assert_str_eq(sr_status_name(SR_STATUS_HIT), "hit");
    ck_assert_str_eq(sr_status_name(SR_STATUS_FORGED), "forged");
    ck_assert_str_eq(sr_status_name(SR_STATUS_ROUNDROBIN), "roundrobin");
    ck_assert_str_eq(sr_status_name((sr_status_t)99), "none");
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("sr_core");
    const TTest *tests[] = {
        value_route_length_bound, value_signed_roundtrip_and_forgeries,
        value_signed_is_deterministic_and_keyed, route_validity,
        route_derived_is_stable_opaque_and_keyed, secret_load_inline_and_file, cookie_spec_errors,
        token_validity, schedule_smooth_5_1_1, schedule_equal_weights_exact,
        schedule_skips_members_not_given, schedule_weights_proportional_and_bounded,
        index_finds_routes, status_names,
    };
    TCase *tc = UNIT_TCASE("core", 1, tests);

    UNIT_TABLE_TEST(tc, cookie_find_cases, find_cases);
    UNIT_TABLE_TEST(tc, value_unsigned_cases, value_cases);
    UNIT_TABLE_TEST(tc, cookie_spec_formats, spec_cases);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    apr_initialize();
    sr = srunner_create(core_suite());
    srunner_add_suite(sr, policy_suite());
    srunner_add_suite(sr, policy_request_suite());
    srunner_add_suite(sr, dns_suite());
    srunner_add_suite(sr, hash_suite());
    srunner_add_suite(sr, hc_suite());
    srunner_add_suite(sr, retry_stream_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    apr_terminate();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
