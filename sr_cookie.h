/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_cookie.h - the route cookie as it comes in (sr_cookie.c): Cookie header
 * scanning, cookie values (parse, verdict, write), an application's session
 * id; and as it goes out (sr_cookie_spec.c): the StickyRouteCookie
 * attribute grammar, Set-Cookie formatting and matching.
 */
#ifndef SR_COOKIE_H
#define SR_COOKIE_H

#include <stddef.h>
#include <stdint.h>
#include "apr_pools.h"
#include "sr_key.h"

/* Longest cookie value we look at; longer ones are ignored (`unknown`). */
#define SR_VALUE_MAX        256
/* How many cookies of our name one request may carry that we consider. */
#define SR_COOKIES_MAX      8

/* ---- Cookie header ------------------------------------------------- */

typedef struct {
    const char *ptr;
    size_t len;
} sr_span_t;

/* Finds the values of every cookie called `name` in one Cookie header
 * (RFC 6265 "name=value; name=value", tolerant of ',' separators and
 * blanks). Surrounding double quotes are removed from a value. Fills at
 * most `max` spans, in header order; returns how many were found. */
size_t sr_cookie_find(const char *header, const char *name, sr_span_t *out,
                      size_t max);

/* ---- cookie values ------------------------------------------------- */

typedef enum {
    SR_VALUE_MALFORMED = 0, /* empty, too long, bad bytes              */
    SR_VALUE_PLAIN,         /* "route"                                 */
    SR_VALUE_SIGNED,        /* "route.TAG"                             */
    SR_VALUE_LEGACY         /* stock recipe ".route" / "session.route" */
} sr_value_kind_t;

/* Dates in a cookie: decimal unix seconds, at most this many digits. */
#define SR_DATE_DIGITS 12

typedef struct {
    sr_value_kind_t kind;
    size_t session_len;     /* LEGACY: bytes before the '.' (0: ".route",
                               the stock recipe's own form) */
    size_t route_len;
    char route[SR_ROUTE_MAX + 1];
    char tag[SR_TAG_LEN + 1];
    int dated;              /* "ROUTE:FIRST:LAST": the session's dates */
    int bad_dates;          /* "ROUTE:..." whose dates do not parse */
    int64_t first;          /* unix seconds: when the session was pinned */
    int64_t last;           /* unix seconds: when the cookie was refreshed */
    size_t signed_len;      /* bytes the tag covers: the route, or
                               "ROUTE:FIRST:LAST" */
    char signed_part[SR_ROUTE_MAX + 1 + 2 * (SR_DATE_DIGITS + 1)];
} sr_value_t;

/* Parses one cookie value. `signed_format` says whether the balancer signs
 * (a secret is configured): only then is "route.TAG" read as signed. */
sr_value_kind_t sr_value_parse(const char *v, size_t len, int signed_format,
                               sr_value_t *out);

typedef enum {
    SR_VERDICT_ROUTE = 0,   /* trust value->route                       */
    SR_VERDICT_FORGED,      /* secret configured, tag missing or wrong  */
    SR_VERDICT_MALFORMED    /* not a value of ours                      */
} sr_verdict_t;

/* Decides whether a parsed value may be trusted. key NULL: no secret.
 * Legacy values are trusted without a secret; with one only when
 * legacy_ok. */
sr_verdict_t sr_value_verdict(const sr_value_t *value, const sr_key_t *key,
                              int legacy_ok, const char *balancer);

/* Room for the value we issue: route, dates, '.', tag, NUL. */
#define SR_VALUE_BUF (SR_ROUTE_MAX + 2 * (SR_DATE_DIGITS + 1) + 1 \
                      + SR_TAG_LEN + 1)

/* Writes the value we issue, "route" or "route.TAG", into out
 * (SR_VALUE_BUF bytes). */
void sr_value_write(char *out, const char *route, const sr_key_t *key,
                    const char *balancer);

/* The same with the session's dates: "route:FIRST:LAST" or
 * "route:FIRST:LAST.TAG", the tag covering the dates too. */
void sr_value_write_dated(char *out, const char *route, int64_t first,
                          int64_t last, const sr_key_t *key,
                          const char *balancer);

/* The same, allocated from p. */
char *sr_value_format(apr_pool_t *p, const char *route, const sr_key_t *key,
                      const char *balancer);

/* ---- application session ids ---------------------------------------- */

/* The route in an application's session id "ID.route": the part after the
 * last '.', when it is a valid route. Returns 1 and sets *route. */
int sr_session_route(const char *value, size_t len, sr_span_t *route);

/* The value of URL parameter `name` of a request: the path parameter
 * ";name=VALUE" (up to the next ';', '/' or '?') of path, else the query
 * parameter "name=VALUE" of args (up to the next '&'). Returns 1 and sets
 * *value when found. */
int sr_url_param(const char *path, const char *args, const char *name,
                 sr_span_t *value);

/* ---- StickyRouteCookie --------------------------------------------- */

typedef enum {
    SR_SAMESITE_UNSET = 0,
    SR_SAMESITE_LAX,
    SR_SAMESITE_STRICT,
    SR_SAMESITE_NONE
} sr_samesite_t;

typedef struct {
    const char *name;
    const char *path;      /* never NULL after parse/default */
    const char *domain;    /* NULL: host-only */
    long max_age;          /* -1: session cookie */
    long max_idle;         /* MaxIdle= seconds, 0: unset (not sent) */
    long max_life;         /* MaxLife= seconds, 0: unset (not sent) */
    int http_only;
    int secure;
    sr_samesite_t same_site;
    const char *attrs;     /* preformatted "; Path=/; HttpOnly; ..." */
} sr_cookie_spec_t;

/* RFC 6265 / RFC 7230 token. */
int sr_token_is_valid(const char *s);

/* The default: ROUTEID; Path=/; HttpOnly; SameSite=Lax. */
void sr_cookie_spec_default(apr_pool_t *p, sr_cookie_spec_t *spec);

/* Parses NAME [Path=..] [Domain=..] [Max-Age=N] [HttpOnly] [Secure]
 * [SameSite=Lax|Strict|None] [MaxIdle=N] [MaxLife=N] (the last two are
 * enforced by the proxy, never sent to the browser). NAME alone keeps the default attributes;
 * any attribute replaces them (Path stays "/" unless given). Returns NULL
 * on success or an error message. */
const char *sr_cookie_spec_parse(apr_pool_t *p, int argc,
                                 char *const argv[], sr_cookie_spec_t *spec);

/* "NAME=VALUE; attrs" plus "; Secure" when https and not already there. */
char *sr_cookie_format(apr_pool_t *p, const sr_cookie_spec_t *spec,
                       const char *value, int https);

/* Does one Set-Cookie header of a response set the cookie `name` for
 * `path`? The cookie's path is its Path attribute, or, without one, the
 * default path of the request (RFC 6265 5.1.4) whose path is req_path.
 * Names compare exactly, paths too (RFC 6265 cookies are distinct per
 * name, domain and path). */
int sr_set_cookie_sets(const char *set_cookie, const char *name,
                       const char *path, const char *req_path);

#endif /* SR_COOKIE_H */
