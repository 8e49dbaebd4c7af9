/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests (check) of sr_retry_stream_break_as_502 and its first half,
 * sr_retry_stream_break_possible (issue 19): does an
 * HTTP/2 stream's scheme handler run with the client connection's
 * keepalives count at 0, so that a pooled backend connection that breaks
 * before the status line comes back as a 502 the module retries? One row
 * per condition of the rule, each flipping it from a case that says yes.
 */
#include <check.h>
#include <string.h>

#include "sr_policy.h"
#include "unit_util.h"

Suite *retry_stream_suite(void);

/* One row a condition of the rule, each but the first flipping it from the
 * case that says yes: a GET on an HTTP/2 stream (mod_http2 gives its
 * secondary connection keepalives 1), StickyRouteRetry on, no retry yet.
 * Columns: reverse, secondary, keepalives, then the retry inputs: enabled,
 * idempotent, has_body, response_started, member_answered, retries,
 * last_same. */
static const struct {
    const char *why;
    sr_stream_break_in_t in;
    int breaks_as_502;
    int possible;           /* sr_retry_stream_break_possible */
} stream_cases[] = {
    {"a GET on an h2 stream", {1, 1, 1, {1, 1, 0, 0, 0, 0, 0}}, 1, 1},
    {"any keepalives count but 0", {1, 1, 7, {1, 1, 0, 0, 0, 0, 0}}, 1, 1},
    /* HTTP/1.x: the client may retry itself; httpd's close is kept */
    {"an HTTP/1.x connection", {1, 0, 1, {1, 1, 0, 0, 0, 0, 0}}, 0, 0},
    {"an HTTP/1.x connection, count 0", {1, 0, 0, {1, 1, 0, 0, 0, 0, 0}}, 0, 0},
    /* a second attempt of the same request: mod_proxy_http answers 502 */
    {"count already 0", {1, 1, 0, {1, 1, 0, 0, 0, 0, 0}}, 0, 0},
    {"a forward proxy request", {0, 1, 1, {1, 1, 0, 0, 0, 0, 0}}, 0, 0},
    {"no StickyRouteRetry", {1, 1, 1, {0, 1, 0, 0, 0, 0, 0}}, 0, 1},
    {"not idempotent (POST, PUT, ...)", {1, 1, 1, {1, 0, 0, 0, 0, 0, 0}}, 0, 1},
    {"a request body", {1, 1, 1, {1, 1, 1, 0, 0, 0, 0}}, 0, 1},
    {"a byte of the response went out", {1, 1, 1, {1, 1, 0, 1, 0, 0, 0}}, 0, 1},
    {"the member answered", {1, 1, 1, {1, 1, 0, 0, 1, 0, 0}}, 0, 1},
    /* sr_retry_allowed: the retry on the same member (fresh connection)
     * may still break: one more retry, on another member */
    {"1 retry, to the same member", {1, 1, 1, {1, 1, 0, 0, 0, 1, 1}}, 1, 1},
    {"1 retry, to another member", {1, 1, 1, {1, 1, 0, 0, 0, 1, 0}}, 0, 1},
    {"2 retries", {1, 1, 1, {1, 1, 0, 0, 0, 2, 1}}, 0, 1},
};

START_TEST(stream_break_as_502_cases)
{
    ck_assert_msg(sr_retry_stream_break_as_502(&stream_cases[_i].in)
                  == stream_cases[_i].breaks_as_502, "%s: not %d", stream_cases[_i].why,
                  stream_cases[_i].breaks_as_502);
}
END_TEST

/* The first half alone: the retry inputs never matter to it, so the glue
 * may leave them ungathered when it says no. */
START_TEST(stream_break_possible_cases)
{
    sr_stream_break_in_t in = stream_cases[_i].in;

    ck_assert_msg(sr_retry_stream_break_possible(&in) == stream_cases[_i].possible,
                  "%s: possible not %d", stream_cases[_i].why, stream_cases[_i].possible);
    memset(&in.retry, 0xff, sizeof(in.retry));
    ck_assert_msg(sr_retry_stream_break_possible(&in) == stream_cases[_i].possible,
                  "%s: depends on the retry inputs", stream_cases[_i].why);
    ck_assert_msg(!stream_cases[_i].breaks_as_502 || stream_cases[_i].possible,
                  "%s: a 502 where none is possible", stream_cases[_i].why);
}
END_TEST

Suite *retry_stream_suite(void)
{
    TCase *tc = tcase_create("stream_break_as_502");

    UNIT_TABLE_TEST(tc, stream_break_as_502_cases, stream_cases);
    UNIT_TABLE_TEST(tc, stream_break_possible_cases, stream_cases);
    return unit_suite("sr_retry_stream", tc);
}
