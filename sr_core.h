/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_core.h - the httpd-free core of mod_sticky_route.
 *
 * Everything here needs APR and apr-util only, never an httpd header, so the
 * unit tests (check) and the fuzzer link it alone: cookie header scanning,
 * cookie value parsing, signing and verification (keyed SipHash-2-4),
 * derived routes, the Set-Cookie attribute grammar of StickyRouteCookie,
 * the smooth weighted round-robin schedule and the route index.
 */
#ifndef SR_CORE_H
#define SR_CORE_H

#include <stddef.h>
#include <stdint.h>
#include "apr_pools.h"

/* A route fits mod_proxy's proxy_worker_shared.route (64 bytes with NUL). */
#define SR_ROUTE_MAX        63
/* Base64url of a 64-bit SipHash tag, no padding. */
#define SR_TAG_LEN          11
/* Derived routes: 'r' + base64url(64-bit keyed hash of the member URL). */
#define SR_DERIVED_ROUTE_LEN (1 + SR_TAG_LEN)
/* Longest cookie value we look at; longer ones are ignored (`unknown`). */
#define SR_VALUE_MAX        256
/* How many cookies of our name one request may carry that we consider. */
#define SR_COOKIES_MAX      8
/* Upper bound of a schedule: weights are scaled down to fit. */
#define SR_SCHEDULE_MAX     8192
/* Minimum secret length in bytes. */
#define SR_SECRET_MIN       16

typedef enum {
    SR_STATUS_HIT = 0,
    SR_STATUS_NEW,
    SR_STATUS_FAILOVER,
    SR_STATUS_UNKNOWN,
    SR_STATUS_FORGED,
    SR_STATUS_ROUNDROBIN,
    SR_STATUS_EXPIRED,      /* cookie past MaxIdle or MaxLife: elected again */
    SR_STATUS_REBALANCED,   /* idle client of an overloaded member: moved */
    SR_STATUS_HASHED,       /* lbmethod=hash: the key's member (or its next
                               choice when that one is unusable) */
    SR_STATUS_HASH_SPILL,   /* lbmethod=hash: the key's member was over its
                               bounded load, a next choice served */
    SR_STATUS_COUNT
} sr_status_t;

extern const char *const sr_status_names[SR_STATUS_COUNT];

static inline const char *sr_status_name(sr_status_t status)
{
    return (unsigned)status < SR_STATUS_COUNT ? sr_status_names[status]
                                              : "none";
}

/* ---- keys ---------------------------------------------------------- */

typedef struct {
    unsigned char bytes[16];
} sr_key_t;

/* Derives a 128-bit SipHash key for one purpose ("tag", "route") from a
 * secret of any length: two keyed SipHash-2-4 passes over purpose||secret. */
void sr_key_derive(sr_key_t *out, const void *secret, size_t len,
                   const char *purpose);

/* Clears key material so that the compiler cannot drop the stores
 * (apr-util's apr_crypto_memzero: APR 1.7 has no apr_memzero_explicit). */
void sr_memzero(void *buf, size_t len);

/* Loads a secret: "file:/path" reads the file (trailing CR/LF removed),
 * anything else is the secret itself. Returns NULL and sets out and out_len,
 * or returns an error message (never containing the secret). */
const char *sr_secret_load(apr_pool_t *p, const char *arg,
                           const char **out, size_t *out_len);

/* A whole decimal number 0..max (no sign, no blanks). Returns 1 and sets
 * *out, or 0. Every numeric directive argument goes through it. */
int sr_parse_number(const char *s, long max, long *out);

/* ---- routes and tags ----------------------------------------------- */

/* A route usable in a cookie: 1..SR_ROUTE_MAX of [A-Za-z0-9_~-]. */
int sr_route_is_valid(const char *route, size_t len);

/* out receives SR_DERIVED_ROUTE_LEN chars + NUL. */
void sr_route_derive(char *out, const char *member_url, const sr_key_t *key);

/* out receives SR_TAG_LEN chars + NUL: base64url(SipHash-2-4(key,
 * balancer || 0x00 || route)). */
void sr_tag_compute(char *out, const sr_key_t *key, const char *balancer,
                    const char *route, size_t route_len);

/* Constant-time comparison of a presented tag with the expected one. */
int sr_tag_equal(const char *a, const char *b, size_t len);

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

/* ---- output escaping ------------------------------------------------ */

/* A JSON string body (RFC 8259) for any bytes: '"' and '\\' escaped,
 * control characters as \u00XX, bytes that are not UTF-8 as \ufffd.
 * Returns s itself when nothing needs escaping. */
const char *sr_json_escape(apr_pool_t *p, const char *s);

/* A Prometheus label value (text exposition format 0.0.4): '\\\\', '"' and
 * newline escaped, every other character as it is (the format allows any
 * UTF-8); bytes that are not UTF-8 become U+FFFD. Returns s itself when
 * nothing needs changing. */
const char *sr_label_escape(apr_pool_t *p, const char *s);

/* ---- smooth weighted round robin ------------------------------------ */

typedef struct {
    uint16_t *slots;   /* member numbers, in serving order */
    uint32_t len;      /* schedule length (sum of reduced weights) */
    uint32_t cap;      /* allocated slots */
    uint32_t max_members;
    uint16_t *members; /* the distinct members in it, nmembers entries */
    uint32_t nmembers;
    uint32_t *weight;  /* scratch, max_members entries */
    int64_t *score;    /* scratch, max_members entries */
} sr_schedule_t;

/* Allocates a schedule for up to max_members members. */
void sr_schedule_init(apr_pool_t *p, sr_schedule_t *s, uint32_t max_members);

/* Builds the schedule for n <= max_members members (member numbers
 * `members`, weights `weights` > 0). Weights are divided by their gcd and, when their sum
 * exceeds cap, scaled down proportionally (each at least 1). Returns the
 * length (0 when n == 0). */
uint32_t sr_schedule_build(sr_schedule_t *s, const uint16_t *members,
                           const uint32_t *weights, size_t n);

static inline uint16_t sr_schedule_at(const sr_schedule_t *s, uint64_t ticket)
{
    return s->slots[ticket % s->len];
}

/* ---- route index: route string -> member number, open addressing ---- */

typedef struct {
    int32_t *slots;     /* -1 empty, else member number */
    uint32_t mask;      /* capacity - 1, capacity a power of two */
} sr_route_index_t;

/* capacity >= 2 * max members, rounded up to a power of two. */
void sr_index_init(apr_pool_t *p, sr_route_index_t *ix, uint32_t max_members);
void sr_index_clear(sr_route_index_t *ix);
void sr_index_insert(sr_route_index_t *ix, const char *const *routes,
                     int32_t member);
/* Returns the member whose route equals route[0..len), or -1. */
int32_t sr_index_find(const sr_route_index_t *ix, const char *const *routes,
                      const char *route, size_t len);

#endif /* SR_CORE_H */
