/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Unit tests (check) of sr_retry_stream_break_as_502 (issue 19): does an
 * HTTP/2 stream's scheme handler run with the client connection's
 * keepalives count at 0, so that a pooled backend connection that breaks
 * before the status line comes back as a 502 the module retries? One test
 * per condition of the rule, each flipping it from a case that says yes.
 */
#include <check.h>

#include "sr_policy.h"
#include "unit_util.h"

Suite *retry_stream_suite(void);

/* A GET on an HTTP/2 stream (mod_http2 gives its secondary connection
 * keepalives 1), StickyRouteRetry on, no retry yet: yes. */
static sr_stream_break_in_t stream_get(void)
{
    sr_stream_break_in_t in = {0};

    in.reverse = 1;
    in.secondary = 1;
    in.keepalives = 1;
    in.retry.enabled = 1;
    in.retry.idempotent = 1;
    return in;
}

START_TEST(stream_get_breaks_as_502)
{
    sr_stream_break_in_t in = stream_get();

    ck_assert_int_eq(sr_retry_stream_break_as_502(&in), 1);
    in.keepalives = 7;          /* any count but 0 */
    ck_assert_int_eq(sr_retry_stream_break_as_502(&in), 1);
}
END_TEST

START_TEST(http1_connection_keeps_httpds_close)
{
    sr_stream_break_in_t in = stream_get();

    in.secondary = 0;           /* HTTP/1.x: the client may retry itself */
    ck_assert_int_eq(sr_retry_stream_break_as_502(&in), 0);
    in.keepalives = 0;
    ck_assert_int_eq(sr_retry_stream_break_as_502(&in), 0);
}
END_TEST

START_TEST(count_already_zero_is_left_alone)
{
    sr_stream_break_in_t in = stream_get();

    /* a second attempt of the same request: mod_proxy_http answers 502 */
    in.keepalives = 0;
    ck_assert_int_eq(sr_retry_stream_break_as_502(&in), 0);
}
END_TEST

START_TEST(forward_proxy_request_is_left_alone)
{
    sr_stream_break_in_t in = stream_get();

    in.reverse = 0;
    ck_assert_int_eq(sr_retry_stream_break_as_502(&in), 0);
}
END_TEST

START_TEST(no_retry_without_StickyRouteRetry)
{
    sr_stream_break_in_t in = stream_get();

    in.retry.enabled = 0;
    ck_assert_int_eq(sr_retry_stream_break_as_502(&in), 0);
}
END_TEST

START_TEST(not_idempotent_or_with_a_body_is_left_alone)
{
    sr_stream_break_in_t in = stream_get();

    in.retry.idempotent = 0;    /* POST, PUT, ... */
    ck_assert_int_eq(sr_retry_stream_break_as_502(&in), 0);
    in = stream_get();
    in.retry.has_body = 1;
    ck_assert_int_eq(sr_retry_stream_break_as_502(&in), 0);
}
END_TEST

START_TEST(nothing_to_retry_once_a_byte_went_out)
{
    sr_stream_break_in_t in = stream_get();

    in.retry.response_started = 1;
    ck_assert_int_eq(sr_retry_stream_break_as_502(&in), 0);
    in = stream_get();
    in.retry.member_answered = 1;
    ck_assert_int_eq(sr_retry_stream_break_as_502(&in), 0);
}
END_TEST

START_TEST(retries_follow_sr_retry_allowed)
{
    sr_stream_break_in_t in = stream_get();

    /* the retry on the same member (fresh connection) may still break:
     * one more retry, on another member */
    in.retry.retries = 1;
    in.retry.last_same = 1;
    ck_assert_int_eq(sr_retry_stream_break_as_502(&in), 1);
    in.retry.last_same = 0;
    ck_assert_int_eq(sr_retry_stream_break_as_502(&in), 0);
    in.retry.retries = 2;
    in.retry.last_same = 1;
    ck_assert_int_eq(sr_retry_stream_break_as_502(&in), 0);
}
END_TEST

Suite *retry_stream_suite(void)
{
    const TTest *tests[] = {
        stream_get_breaks_as_502, http1_connection_keeps_httpds_close,
        count_already_zero_is_left_alone, forward_proxy_request_is_left_alone,
        no_retry_without_StickyRouteRetry, not_idempotent_or_with_a_body_is_left_alone,
        nothing_to_retry_once_a_byte_went_out, retries_follow_sr_retry_allowed,
    };

    return UNIT_SUITE("sr_retry_stream", "stream_break_as_502", 1, tests);
}
