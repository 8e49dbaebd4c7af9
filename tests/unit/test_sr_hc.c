/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/* Unit tests of the health-check decisions of discovered members
 * (sr_discover_policy.c: sr_hc_due, sr_hc_count, sr_hc_status,
 * sr_hc_status_passes, sr_hc_request). */
#include <check.h>
#include <string.h>

#include "sr_policy.h"
#include "unit_util.h"

Suite *hc_suite(void);

#define S(x) ((int64_t)(x) * 1000000)

START_TEST(hc_due_after_the_interval_never_while_in_flight)
{
    ck_assert_int_eq(sr_hc_due(S(100), 0, S(5), 0), 1);         /* never checked */
    ck_assert_int_eq(sr_hc_due(S(100), 0, S(5), 1), 0);         /* in flight */
    ck_assert_int_eq(sr_hc_due(S(15) - 1, S(10), S(5), 0), 0);
    ck_assert_int_eq(sr_hc_due(S(15), S(10), S(5), 0), 1);
    ck_assert_int_eq(sr_hc_due(S(16), S(10), S(5), 0), 1);
    ck_assert_int_eq(sr_hc_due(S(16), S(10), S(5), 1), 0);
    /* hcinterval=100ms */
    ck_assert_int_eq(sr_hc_due(S(10) + 99999, S(10), 100000, 0), 0);
    ck_assert_int_eq(sr_hc_due(S(10) + 100000, S(10), 100000, 0), 1);
}
END_TEST

START_TEST(hc_fails_in_a_row_set_the_flag)
{
    int pc = 0, fc = 0;

    /* fails=2: fail, pass (resets), fail, fail -> set */
    ck_assert_int_eq(sr_hc_count(0, 0, &pc, &fc, 1, 2), SR_HC_KEEP);
    ck_assert_int_eq(fc, 1);
    ck_assert_int_eq(sr_hc_count(0, 1, &pc, &fc, 1, 2), SR_HC_KEEP);
    ck_assert_int_eq(fc, 0);
    ck_assert_int_eq(sr_hc_count(0, 0, &pc, &fc, 1, 2), SR_HC_KEEP);
    ck_assert_int_eq(sr_hc_count(0, 0, &pc, &fc, 1, 2), SR_HC_SET);
    ck_assert_int_eq(fc, 0);
    ck_assert_int_eq(pc, 0);
    /* fails=1: the first fail sets it; passes on an up member keep it up */
    ck_assert_int_eq(sr_hc_count(0, 1, &pc, &fc, 1, 1), SR_HC_KEEP);
    ck_assert_int_eq(sr_hc_count(0, 1, &pc, &fc, 1, 1), SR_HC_KEEP);
    ck_assert_int_eq(sr_hc_count(0, 0, &pc, &fc, 1, 1), SR_HC_SET);
    /* fails=0 acts as 1 */
    ck_assert_int_eq(sr_hc_count(0, 0, &pc, &fc, 1, 0), SR_HC_SET);
}
END_TEST

START_TEST(hc_passes_in_a_row_clear_the_flag)
{
    int pc = 0, fc = 0;

    /* passes=3, down: pass, pass, fail (resets), pass, pass, pass -> clear */
    ck_assert_int_eq(sr_hc_count(1, 1, &pc, &fc, 3, 1), SR_HC_KEEP);
    ck_assert_int_eq(sr_hc_count(1, 1, &pc, &fc, 3, 1), SR_HC_KEEP);
    ck_assert_int_eq(pc, 2);
    ck_assert_int_eq(sr_hc_count(1, 0, &pc, &fc, 3, 1), SR_HC_KEEP);
    ck_assert_int_eq(pc, 0);
    ck_assert_int_eq(fc, 0);        /* fails are not counted while down */
    ck_assert_int_eq(sr_hc_count(1, 1, &pc, &fc, 3, 1), SR_HC_KEEP);
    ck_assert_int_eq(sr_hc_count(1, 1, &pc, &fc, 3, 1), SR_HC_KEEP);
    ck_assert_int_eq(sr_hc_count(1, 1, &pc, &fc, 3, 1), SR_HC_CLEAR);
    ck_assert_int_eq(pc, 0);
    /* passes=0 acts as 1 */
    ck_assert_int_eq(sr_hc_count(1, 1, &pc, &fc, 0, 1), SR_HC_CLEAR);
    /* a stale fail count does not carry over a down period */
    fc = 5;
    ck_assert_int_eq(sr_hc_count(1, 1, &pc, &fc, 1, 1), SR_HC_CLEAR);
    ck_assert_int_eq(fc, 0);
    ck_assert_int_eq(sr_hc_count(0, 1, &pc, &fc, 1, 2), SR_HC_KEEP);
    ck_assert_int_eq(sr_hc_count(0, 0, &pc, &fc, 1, 2), SR_HC_KEEP);
}
END_TEST

START_TEST(hc_status_line_whole_partial_and_foreign)
{
#define ST(str) sr_hc_status(str, strlen(str))
    ck_assert_int_eq(ST("HTTP/1.1 200 OK\r\n"), 200);
    ck_assert_int_eq(ST("HTTP/1.0 500 Internal Server Error\r\nServer: x\r\n"), 500);
    ck_assert_int_eq(ST("HTTP/1.1 302\r\n"), 302);
    ck_assert_int_eq(ST("HTTP/1.1 204\n"), 204);
    /* more bytes needed */
    ck_assert_int_eq(ST(""), 0);
    ck_assert_int_eq(ST("HTT"), 0);
    ck_assert_int_eq(ST("HTTP/1.1 20"), 0);
    ck_assert_int_eq(ST("HTTP/1.1 200 OK"), 0);
    /* not an HTTP/1.x response */
    ck_assert_int_eq(ST("SSH-2.0-OpenSSH\r\n"), -1);
    ck_assert_int_eq(ST("HTTP/2 200\r\n"), -1);
    ck_assert_int_eq(ST("HTTP/1.1 20\r\n"), -1);
    ck_assert_int_eq(ST("HTTP/1.1 2x0 OK\r\n"), -1);
    ck_assert_int_eq(ST("HTTP/1.1 099 x\r\n"), -1);
    ck_assert_int_eq(ST("HTTP/1.1 2000\r\n"), -1);
    ck_assert_int_eq(ST("HTTP/1.1200 OK\r\n"), -1);
    ck_assert_int_eq(ST("HTTP/1.\n"), -1);
#undef ST
    /* 2xx and 3xx pass */
    ck_assert_int_eq(sr_hc_status_passes(200), 1);
    ck_assert_int_eq(sr_hc_status_passes(299), 1);
    ck_assert_int_eq(sr_hc_status_passes(301), 1);
    ck_assert_int_eq(sr_hc_status_passes(399), 1);
    ck_assert_int_eq(sr_hc_status_passes(199), 0);
    ck_assert_int_eq(sr_hc_status_passes(404), 0);
    ck_assert_int_eq(sr_hc_status_passes(500), 0);
    ck_assert_int_eq(sr_hc_status_passes(-1), 0);
    ck_assert_int_eq(sr_hc_status_passes(0), 0);
}
END_TEST

START_TEST(hc_body_left_after_the_head)
{
#define BL(str, head, status) sr_hc_body_left(str, strlen(str), head, status)
    /* the head not over yet */
    ck_assert_int_eq(BL("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", 0, 200), -1);
    ck_assert_int_eq(BL("HTTP/1.1 200 OK\r\n", 0, 200), -1);
    /* Content-Length, some body already read */
    ck_assert_int_eq(BL("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0, 200), 5);
    ck_assert_int_eq(BL("HTTP/1.1 200 OK\r\ncontent-length:5\r\n\r\nab", 0, 200), 3);
    ck_assert_int_eq(BL("HTTP/1.1 500 x\r\nX: 1\r\nContent-Length: 2\r\n\r\nabcd", 0, 500), 0);
    ck_assert_int_eq(BL("HTTP/1.0 200 OK\nContent-Length: 7\n\nabc", 0, 200), 4);
    /* a header merely containing the name does not count */
    ck_assert_int_eq(BL("HTTP/1.1 200 OK\r\nX-Content-Length: 9\r\n\r\n", 0, 200), 0);
    /* no body to wait for */
    ck_assert_int_eq(BL("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 1, 200), 0);
    ck_assert_int_eq(BL("HTTP/1.1 204 No\r\n\r\n", 0, 204), 0);
    ck_assert_int_eq(BL("HTTP/1.1 304 No\r\nContent-Length: 5\r\n\r\n", 0, 304), 0);
    ck_assert_int_eq(BL("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 200), 0);
    ck_assert_int_eq(BL("HTTP/1.0 200 OK\r\n\r\nbody to the end", 0, 200), 0);
#undef BL
}
END_TEST

START_TEST(hc_request_forms)
{
    char out[256];
    size_t n;

    n = sr_hc_request(out, sizeof(out), "GET", "/hc", 0, "127.0.0.5", 8080);
    ck_assert_str_eq(out, "GET /hc HTTP/1.0\r\nHost: 127.0.0.5:8080\r\n"
                          "Connection: close\r\n\r\n");
    ck_assert_uint_eq(n, strlen(out));
    sr_hc_request(out, sizeof(out), "HEAD", "", 1, "127.0.0.5", 80);
    ck_assert_str_eq(out, "HEAD / HTTP/1.1\r\nHost: 127.0.0.5:80\r\n"
                          "Connection: close\r\n\r\n");
    sr_hc_request(out, sizeof(out), "OPTIONS", "/ignored", 1, "fd00::1", 81);
    ck_assert_str_eq(out, "OPTIONS * HTTP/1.1\r\nHost: [fd00::1]:81\r\n"
                          "Connection: close\r\n\r\n");
    sr_hc_request(out, sizeof(out), "GET", NULL, 0, "10.0.0.1", 80);
    ck_assert_str_eq(out, "GET / HTTP/1.0\r\nHost: 10.0.0.1:80\r\n"
                          "Connection: close\r\n\r\n");
    /* too small: nothing */
    ck_assert_uint_eq(sr_hc_request(out, 20, "GET", "/hc", 0, "127.0.0.5", 80), 0);
    n = strlen("GET /hc HTTP/1.0\r\nHost: 1.2.3.4:80\r\nConnection: close\r\n\r\n");
    ck_assert_uint_eq(sr_hc_request(out, n, "GET", "/hc", 0, "1.2.3.4", 80), 0);
    ck_assert_uint_eq(sr_hc_request(out, n + 1, "GET", "/hc", 0, "1.2.3.4", 80), n);
}
END_TEST

Suite *hc_suite(void)
{
    const TTest *tests[] = {
        hc_due_after_the_interval_never_while_in_flight, hc_fails_in_a_row_set_the_flag,
        hc_passes_in_a_row_clear_the_flag, hc_status_line_whole_partial_and_foreign,
        hc_body_left_after_the_head, hc_request_forms,
    };

    return UNIT_SUITE("hc", "hc", 0, tests);
}
