/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_cookie.c - the route cookie as it comes in: Cookie header scanning,
 * cookie values, an application's session id (see sr_cookie.h).
 */
#include <string.h>
#include <stdlib.h>

#include "apr_strings.h"

#include "sr_cookie.h"

/* ---- character classes, routes --------------------------------------- */

/* Character classes of a byte, one table lookup: */
#define SR_CC_COOKIE 1      /* RFC 6265 cookie-octet */
#define SR_CC_ROUTE  2      /* A-Z a-z 0-9 - _ ~ */
#define SR_CC_B64URL 4      /* A-Z a-z 0-9 - _ */
static const unsigned char sr_cclass[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 7, 1, 1,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 1, 0, 1, 1, 1, 1,
    1, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 1, 0, 1, 1, 7,
    1, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 1, 1, 1, 3, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

static int is_route_char(unsigned char c)
{
    return sr_cclass[c] & SR_CC_ROUTE;
}

static int is_b64url_char(unsigned char c)
{
    return sr_cclass[c] & SR_CC_B64URL;
}

/* RFC 6265 cookie-octet. */
int sr_route_is_valid(const char *route, size_t len)
{
    size_t i;

    if (len == 0 || len > SR_ROUTE_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (!is_route_char((unsigned char)route[i])) {
            return 0;
        }
    }
    return 1;
}


/* ---- Cookie header ------------------------------------------------- */

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

size_t sr_cookie_find(const char *header, const char *name, sr_span_t *out,
                      size_t max)
{
    size_t found = 0;
    size_t nlen = strlen(name);
    const char *p = header;

    if (header == NULL || max == 0 || nlen == 0) {
        return 0;
    }
    while (*p && found < max) {
        const char *q;

        while (*p == ';' || *p == ',' || is_blank(*p)) {
            p++;
        }
        if (!*p) {
            break;
        }
        /* Compare the name in place (its first byte first: most pairs are
         * not ours); a pair that is not ours is skipped with one strcspn
         * to the next separator. */
        if (*p == *name && strncmp(p, name, nlen) == 0) {
            q = p + nlen;
            while (is_blank(*q)) {
                q++;
            }
            if (*q == '=') {
                const char *v0 = q + 1, *v1;

                while (is_blank(*v0)) {
                    v0++;
                }
                v1 = v0 + strcspn(v0, ";,");
                p = v1;
                while (v1 > v0 && is_blank(v1[-1])) {
                    v1--;
                }
                if (v1 - v0 >= 2 && v0[0] == '"' && v1[-1] == '"') {
                    v0++;
                    v1--;
                }
                out[found].ptr = v0;
                out[found].len = (size_t)(v1 - v0);
                found++;
                continue;
            }
        }
        p += strcspn(p, ";,");
    }
    return found;
}


/* ---- cookie values ------------------------------------------------- */

static sr_value_kind_t value_found(sr_value_t *out, sr_value_kind_t kind,
                                   const char *route, size_t len)
{
    memcpy(out->route, route, len);
    out->route[len] = '\0';
    out->route_len = len;
    return out->kind = kind;
}

/* Parses decimal digits [p, end) into *n: 1..SR_DATE_DIGITS digits. */
static int parse_date(const char *p, const char *end, int64_t *n)
{
    int64_t x = 0;

    if (end <= p || end - p > SR_DATE_DIGITS) {
        return 0;
    }
    for (; p < end; p++) {
        unsigned int d = (unsigned int)(unsigned char)*p - '0';

        if (d > 9) {
            return 0;
        }
        x = x * 10 + d;
    }
    *n = x;
    return 1;
}

/* "ROUTE:FIRST:LAST" or "ROUTE:FIRST:LAST.TAG" (colon before any dot). */
static sr_value_kind_t value_parse_dated(const char *v, size_t len,
                                         const char *colon, const char *dot,
                                         int signed_format, sr_value_t *out)
{
    const char *end = v + len, *c2, *dates_end = dot ? dot : end;
    size_t rlen = (size_t)(colon - v), slen = (size_t)(dates_end - v);

    if (!sr_route_is_valid(v, rlen) || slen >= sizeof(out->signed_part)) {
        return out->kind;
    }
    c2 = memchr(colon + 1, ':', (size_t)(dates_end - colon - 1));
    if (!c2 || !parse_date(colon + 1, c2, &out->first)
        || !parse_date(c2 + 1, dates_end, &out->last)) {
        /* ours in form, with dates that do not parse: with a secret that
         * is a forgery, without one malformed (see sr_value_verdict) */
        out->bad_dates = 1;
        out->first = out->last = 0;
        return value_found(out, SR_VALUE_PLAIN, v, rlen);
    }
    if (dot) {
        size_t i, tail = (size_t)(end - dot - 1);
        if (!signed_format || tail != SR_TAG_LEN) {
            return out->kind;
        }
        for (i = 0; i < tail; i++) {
            if (!is_b64url_char((unsigned char)dot[1 + i])) {
                return out->kind;
            }
        }
        memcpy(out->tag, dot + 1, SR_TAG_LEN);
        out->tag[SR_TAG_LEN] = '\0';
    }
    out->dated = 1;
    memcpy(out->signed_part, v, slen);
    out->signed_part[slen] = '\0';
    out->signed_len = slen;
    return value_found(out, dot ? SR_VALUE_SIGNED : SR_VALUE_PLAIN, v, rlen);
}

/* Digits from v[*i] up to the first non-digit: 1..SR_DATE_DIGITS of them
 * into *n, *i after them; 0 (nothing taken) otherwise. */
static int take_date(const char *v, size_t len, size_t *i, int64_t *n)
{
    size_t k = *i;
    int64_t x = 0;

    for (; k < len && k - *i <= SR_DATE_DIGITS; k++) {
        unsigned int d = (unsigned int)(unsigned char)v[k] - '0';

        if (d > 9) {
            break;
        }
        x = x * 10 + d;
    }
    if (k == *i || k - *i > SR_DATE_DIGITS) {
        return 0;
    }
    *i = k;
    *n = x;
    return 1;
}

/* The dated value as the module writes it, in one pass: "ROUTE:FIRST:LAST"
 * or, with signed_format, "ROUTE:FIRST:LAST.TAG", each part well formed.
 * v[0, rlen) are route characters and v[rlen] is ':'. Returns 0 for
 * anything else, which the general parse below then reads (and for which
 * it gives the same answer as before this shortcut): this only spares the
 * common cookie a second and third pass over its bytes. */
static int value_parse_dated_fast(const char *v, size_t len, size_t rlen,
                                  int signed_format, sr_value_t *out)
{
    size_t i = rlen + 1, slen;
    int64_t first, last;

    if (rlen == 0 || rlen > SR_ROUTE_MAX) {
        return 0;
    }
    if (!take_date(v, len, &i, &first) || i == len || v[i] != ':') {
        return 0;
    }
    i++;
    if (!take_date(v, len, &i, &last)) {
        return 0;
    }
    slen = i;
    if (i < len) {
        size_t k;

        if (!signed_format || v[i] != '.' || len - i - 1 != SR_TAG_LEN) {
            return 0;
        }
        for (k = i + 1; k < len; k++) {
            if (!is_b64url_char((unsigned char)v[k])) {
                return 0;
            }
        }
        memcpy(out->tag, v + i + 1, SR_TAG_LEN);
        out->tag[SR_TAG_LEN] = '\0';
    }
    out->dated = 1;
    out->first = first;
    out->last = last;
    memcpy(out->signed_part, v, slen);
    out->signed_part[slen] = '\0';
    out->signed_len = slen;
    value_found(out, slen < len ? SR_VALUE_SIGNED : SR_VALUE_PLAIN, v, rlen);
    return 1;
}

sr_value_kind_t sr_value_parse(const char *v, size_t len, int signed_format,
                               sr_value_t *out)
{
    const char *dot, *colon;
    int all_route;
    size_t i;

    out->kind = SR_VALUE_MALFORMED;
    out->session_len = 0;
    out->dated = 0;
    out->bad_dates = 0;
    out->first = out->last = 0;
    out->signed_len = 0;
    out->signed_part[0] = '\0';
    out->route_len = 0;
    out->route[0] = '\0';
    out->tag[0] = '\0';
    if (v == NULL || len == 0 || len > SR_VALUE_MAX) {
        return out->kind;
    }
    /* the route characters first: a plain route ends here, a dated value
     * as the module writes it is read in the same pass */
    for (i = 0; i < len && (sr_cclass[(unsigned char)v[i]] & SR_CC_ROUTE); i++)
        ;
    if (i == len) {
        return len > SR_ROUTE_MAX ? out->kind
                                  : value_found(out, SR_VALUE_PLAIN, v, len);
    }
    if (v[i] == ':' && value_parse_dated_fast(v, len, i, signed_format, out)) {
        return out->kind;
    }
    dot = NULL;
    colon = NULL;
    all_route = 1;
    for (; i < len; i++) {
        unsigned char cc = sr_cclass[(unsigned char)v[i]];
        if (cc & SR_CC_ROUTE) {
            continue;       /* the common byte: a route character */
        }
        if (!(cc & SR_CC_COOKIE)) {
            return out->kind;
        }
        all_route = 0;
        if (v[i] == '.') {
            if (!dot) {
                dot = v + i;
            }
        }
        else if (v[i] == ':' && !colon) {
            colon = v + i;
        }
    }
    if (colon && (!dot || colon < dot)) {
        return value_parse_dated(v, len, colon, dot, signed_format, out);
    }
    if (dot == NULL) {
        /* one pass told it: route characters only, and not too long */
        if (!all_route || len > SR_ROUTE_MAX) {
            return out->kind;
        }
        return value_found(out, SR_VALUE_PLAIN, v, len);
    }
    else {
        size_t head = (size_t)(dot - v);
        size_t tail = len - head - 1;
        const char *t = dot + 1;

        if (signed_format && head > 0 && tail == SR_TAG_LEN
            && sr_route_is_valid(v, head)) {
            for (i = 0; i < tail && is_b64url_char((unsigned char)t[i]); i++)
                ;
            if (i == tail) {
                memcpy(out->tag, t, SR_TAG_LEN);
                out->tag[SR_TAG_LEN] = '\0';
                return value_found(out, SR_VALUE_SIGNED, v, head);
            }
        }
        /* The stock recipe: everything after the first '.' is the route. */
        if (!sr_route_is_valid(t, tail)) {
            return out->kind;
        }
        out->session_len = head;
        return value_found(out, SR_VALUE_LEGACY, t, tail);
    }
}

sr_verdict_t sr_value_verdict(const sr_value_t *value, const sr_key_t *key,
                              int legacy_ok, const char *balancer)
{
    char expect[SR_TAG_LEN + 1];

    if (value->bad_dates) {
        return key ? SR_VERDICT_FORGED : SR_VERDICT_MALFORMED;
    }
    switch (value->kind) {
    case SR_VALUE_PLAIN:
        return key ? SR_VERDICT_FORGED : SR_VERDICT_ROUTE;
    case SR_VALUE_LEGACY:
        return (!key || legacy_ok) ? SR_VERDICT_ROUTE : SR_VERDICT_FORGED;
    case SR_VALUE_SIGNED:
        if (!key) {
            return SR_VERDICT_MALFORMED;
        }
        if (value->dated) {
            sr_tag_compute(expect, key, balancer, value->signed_part,
                           value->signed_len);
        }
        else {
            sr_tag_compute(expect, key, balancer, value->route,
                           value->route_len);
        }
        return sr_tag_equal(expect, value->tag, SR_TAG_LEN)
               ? SR_VERDICT_ROUTE : SR_VERDICT_FORGED;
    default:
        return SR_VERDICT_MALFORMED;
    }
}

void sr_value_write(char *out, const char *route, const sr_key_t *key,
                    const char *balancer)
{
    size_t len = strlen(route);

    if (len > SR_ROUTE_MAX) {
        len = SR_ROUTE_MAX;
    }
    memcpy(out, route, len);
    out[len] = '\0';
    if (key) {
        out[len] = '.';
        sr_tag_compute(out + len + 1, key, balancer, route, len);
    }
}

void sr_value_write_dated(char *out, const char *route, int64_t first,
                          int64_t last, const sr_key_t *key,
                          const char *balancer)
{
    size_t len = strlen(route);
    int n;

    if (len > SR_ROUTE_MAX) {
        len = SR_ROUTE_MAX;
    }
    if (first < 0) {
        first = 0;
    }
    if (last < first) {
        last = first;
    }
    n = apr_snprintf(out, SR_VALUE_BUF - SR_TAG_LEN - 1, "%.*s:%" APR_INT64_T_FMT
                     ":%" APR_INT64_T_FMT, (int)len, route, (apr_int64_t)first,
                     (apr_int64_t)last);
    if (key) {
        out[n] = '.';
        sr_tag_compute(out + n + 1, key, balancer, out, (size_t)n);
    }
}

char *sr_value_format(apr_pool_t *p, const char *route, const sr_key_t *key,
                      const char *balancer)
{
    char buf[SR_VALUE_BUF];

    sr_value_write(buf, route, key, balancer);
    return apr_pstrdup(p, buf);
}


/* ---- application session ids ----------------------------------------- */

int sr_session_route(const char *value, size_t len, sr_span_t *route)
{
    const char *dot = NULL, *p;

    for (p = value; p < value + len; p++) {
        if (*p == '.') {
            dot = p;
        }
    }
    if (!dot || !sr_route_is_valid(dot + 1, (size_t)(value + len - dot - 1))) {
        return 0;
    }
    route->ptr = dot + 1;
    route->len = (size_t)(value + len - dot - 1);
    return 1;
}

int sr_url_param(const char *path, const char *args, const char *name,
                 sr_span_t *value)
{
    size_t nlen = strlen(name);
    const char *p;

    if (!nlen) {
        return 0;
    }
    for (p = path ? strchr(path, ';') : NULL; p; p = strchr(p + 1, ';')) {
        if (!strncmp(p + 1, name, nlen) && p[1 + nlen] == '=') {
            const char *v = p + 2 + nlen;
            value->ptr = v;
            value->len = strcspn(v, ";/?");
            return 1;
        }
    }
    for (p = args; p && *p; ) {
        if (!strncmp(p, name, nlen) && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            value->ptr = v;
            value->len = strcspn(v, "&");
            return 1;
        }
        p = strchr(p, '&');
        if (p) {
            p++;
        }
    }
    return 0;
}
