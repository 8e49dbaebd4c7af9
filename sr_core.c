/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_core.c - the httpd-free core of mod_sticky_route (see sr_core.h).
 */
#include <string.h>
#include <stdlib.h>

#include "apr_strings.h"
#include "apr_file_io.h"
#include "apr_siphash.h"
#include "apr_crypto.h"

#include "sr_core.h"

const char *const sr_status_names[SR_STATUS_COUNT] = {
    "hit", "new", "failover", "unknown", "forged", "roundrobin", "expired",
    "rebalanced", "hashed", "hash-spill"
};

/* ---- keys ---------------------------------------------------------- */

/* Fixed, public SipHash keys: the KDF's two halves and the key used to
 * derive routes when no secret is configured. Changing them changes every
 * derived route and tag, so they are part of the cookie format. */
static const unsigned char kdf_key_a[16] = "sticky-route-kdA";
static const unsigned char kdf_key_b[16] = "sticky-route-kdB";
static const sr_key_t public_route_key = { "sticky-route-pub" };

#define SR_SECRET_FILE_MAX 4096

int sr_parse_number(const char *s, long max, long *out)
{
    long n = 0;

    if (!s || !*s) {
        return 0;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || n > (max - (*s - '0')) / 10) {
            return 0;
        }
        n = n * 10 + (*s - '0');
    }
    *out = n;
    return 1;
}

void sr_memzero(void *buf, size_t len)
{
    apr_crypto_memzero(buf, len);
}

static void put_le64(unsigned char *out, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++) {
        out[i] = (unsigned char)(v >> (8 * i));
    }
}

void sr_key_derive(sr_key_t *out, const void *secret, size_t len,
                   const char *purpose)
{
    unsigned char buf[64 + SR_SECRET_FILE_MAX + 1];
    size_t plen = strlen(purpose);

    if (plen > 64) {
        plen = 64;
    }
    if (len > SR_SECRET_FILE_MAX) {
        len = SR_SECRET_FILE_MAX;
    }
    memcpy(buf, purpose, plen);
    buf[plen] = 0;
    memcpy(buf + plen + 1, secret, len);
    put_le64(out->bytes, apr_siphash24(buf, plen + 1 + len, kdf_key_a));
    put_le64(out->bytes + 8, apr_siphash24(buf, plen + 1 + len, kdf_key_b));
    sr_memzero(buf, sizeof(buf));
}

const char *sr_secret_load(apr_pool_t *p, const char *arg,
                           const char **out, size_t *out_len)
{
    const char *val = arg;
    size_t len;

    if (arg == NULL) {
        return "no value given";
    }
    if (strncmp(arg, "file:", 5) == 0) {
        const char *path = arg + 5;
        apr_file_t *f;
        apr_status_t rv;
        char *buf;
        apr_size_t got = 0;

        if (!*path) {
            return "file: needs a path";
        }
        rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY,
                           APR_OS_DEFAULT, p);
        if (rv != APR_SUCCESS) {
            char err[120];
            return apr_psprintf(p, "cannot read secret file %s: %s", path,
                                apr_strerror(rv, err, sizeof(err)));
        }
        buf = apr_palloc(p, SR_SECRET_FILE_MAX + 2);
        for (;;) {
            apr_size_t n = SR_SECRET_FILE_MAX + 1 - got;
            rv = apr_file_read(f, buf + got, &n);
            got += n;
            if (rv != APR_SUCCESS || got > SR_SECRET_FILE_MAX) {
                break;
            }
        }
        apr_file_close(f);
        if (got > SR_SECRET_FILE_MAX) {
            return apr_psprintf(p, "secret file %s is larger than %d bytes",
                                path, SR_SECRET_FILE_MAX);
        }
        while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r')) {
            got--;
        }
        buf[got] = '\0';
        val = buf;
        len = got;
        if (len < SR_SECRET_MIN) {
            return apr_psprintf(p, "the secret in %s is %lu bytes long; at "
                                "least %d are required", path,
                                (unsigned long)len, SR_SECRET_MIN);
        }
    }
    else {
        len = strlen(val);
        if (len > SR_SECRET_FILE_MAX) {
            return apr_psprintf(p, "the secret is longer than %d bytes",
                                SR_SECRET_FILE_MAX);
        }
        if (len < SR_SECRET_MIN) {
            return apr_psprintf(p, "the secret is %lu bytes long; at least "
                                "%d are required", (unsigned long)len,
                                SR_SECRET_MIN);
        }
    }
    *out = val;
    *out_len = len;
    return NULL;
}

/* ---- routes and tags ----------------------------------------------- */

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 64 bits -> 11 base64url characters (the last one carries 4 bits). */
static void encode_u64(char *out, uint64_t v)
{
    unsigned char b[8];
    int i, o = 0;
    uint32_t acc = 0;
    int bits = 0;

    put_le64(b, v);
    for (i = 0; i < 8; i++) {
        acc = (acc << 8) | b[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = b64url[(acc >> bits) & 0x3f];
        }
    }
    if (bits > 0) {
        out[o++] = b64url[(acc << (6 - bits)) & 0x3f];
    }
    out[o] = '\0';
}

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

void sr_route_derive(char *out, const char *member_url, const sr_key_t *key)
{
    if (key == NULL) {
        key = &public_route_key;
    }
    out[0] = 'r';
    encode_u64(out + 1, apr_siphash24(member_url, strlen(member_url),
                                      key->bytes));
}

void sr_tag_compute(char *out, const sr_key_t *key, const char *balancer,
                    const char *route, size_t route_len)
{
    char buf[512];
    size_t blen = strlen(balancer);

    if (blen > sizeof(buf) - SR_ROUTE_MAX - 2) {
        blen = sizeof(buf) - SR_ROUTE_MAX - 2;
    }
    if (route_len > SR_ROUTE_MAX) {
        route_len = SR_ROUTE_MAX;
    }
    memcpy(buf, balancer, blen);
    buf[blen] = '\0';
    memcpy(buf + blen + 1, route, route_len);
    encode_u64(out, apr_siphash24(buf, blen + 1 + route_len, key->bytes));
}

int sr_tag_equal(const char *a, const char *b, size_t len)
{
    unsigned char diff = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        diff |= (unsigned char)(a[i] ^ b[i]);
    }
    return diff == 0;
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
        if (*p < '0' || *p > '9') {
            return 0;
        }
        x = x * 10 + (*p - '0');
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
    dot = NULL;
    colon = NULL;
    all_route = 1;
    for (i = 0; i < len; i++) {
        unsigned char cc = sr_cclass[(unsigned char)v[i]];
        if (!(cc & SR_CC_COOKIE)) {
            return out->kind;
        }
        if (!(cc & SR_CC_ROUTE)) {
            all_route = 0;
            if (v[i] == '.' && !dot) {
                dot = v + i;
            }
            else if (v[i] == ':' && !colon) {
                colon = v + i;
            }
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

/* ---- StickyRouteCookie --------------------------------------------- */

int sr_token_is_valid(const char *s)
{
    static const char separators[] = "()<>@,;:\\\"/[]?={} \t";

    if (s == NULL || !*s) {
        return 0;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || strchr(separators, c)) {
            return 0;
        }
    }
    return 1;
}

static void spec_format_attrs(apr_pool_t *p, sr_cookie_spec_t *spec)
{
    static const char *const samesite[] = { NULL, "Lax", "Strict", "None" };

    spec->attrs = apr_pstrcat(p,
        "; Path=", spec->path,
        spec->domain ? "; Domain=" : "", spec->domain ? spec->domain : "",
        spec->max_age >= 0
            ? apr_psprintf(p, "; Max-Age=%ld", spec->max_age) : "",
        spec->http_only ? "; HttpOnly" : "",
        spec->secure ? "; Secure" : "",
        spec->same_site ? "; SameSite=" : "",
        spec->same_site ? samesite[spec->same_site] : "",
        NULL);
}

void sr_cookie_spec_default(apr_pool_t *p, sr_cookie_spec_t *spec)
{
    memset(spec, 0, sizeof(*spec));
    spec->name = "ROUTEID";
    spec->path = "/";
    spec->max_age = -1;
    spec->http_only = 1;
    spec->same_site = SR_SAMESITE_LAX;
    spec_format_attrs(p, spec);
}

static int path_is_valid(const char *s)
{
    if (*s != '/') {
        return 0;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || c == ';' || c == ',' || c == '"'
            || c == '\\') {
            return 0;
        }
    }
    return 1;
}

static int domain_is_valid(const char *s)
{
    size_t n = 0;

    for (; *s; s++, n++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '.')) {
            return 0;
        }
    }
    return n > 0 && n <= 253;
}

const char *sr_cookie_spec_parse(apr_pool_t *p, int argc,
                                 char *const argv[], sr_cookie_spec_t *spec)
{
    int i;

    if (argc < 1) {
        return "needs a cookie name";
    }
    sr_cookie_spec_default(p, spec);
    if (!sr_token_is_valid(argv[0])) {
        return apr_psprintf(p, "'%s' is not a valid cookie name (an RFC 6265 "
                            "token: visible ASCII without separators)",
                            argv[0]);
    }
    spec->name = apr_pstrdup(p, argv[0]);
    /* Cookie attributes replace the defaults; MaxIdle= and MaxLife= are
     * the proxy's, not the browser's, and leave them alone. */
    for (i = 1; i < argc; i++) {
        if (strncasecmp(argv[i], "MaxIdle=", 8)
            && strncasecmp(argv[i], "MaxLife=", 8)) {
            spec->http_only = 0;
            spec->same_site = SR_SAMESITE_UNSET;
            break;
        }
    }
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);
        const char *val = eq ? eq + 1 : NULL;

#define KEY_IS(k) (klen == sizeof(k) - 1 && strncasecmp(arg, k, klen) == 0)
        if (KEY_IS("Path") && val) {
            if (!path_is_valid(val)) {
                return apr_psprintf(p, "Path=%s: a path starts with '/' and "
                                    "has no blanks, ';', ',', '\"' or control "
                                    "characters", val);
            }
            spec->path = apr_pstrdup(p, val);
        }
        else if (KEY_IS("Domain") && val) {
            if (!domain_is_valid(val)) {
                return apr_psprintf(p, "Domain=%s is not a domain name", val);
            }
            spec->domain = apr_pstrdup(p, val);
        }
        else if (KEY_IS("Max-Age") && val) {
            char *end;
            long n;
            size_t j;

            for (j = 0; val[j]; j++) {
                if (val[j] < '0' || val[j] > '9') {
                    break;
                }
            }
            if (!*val || val[j] || j > 10) {
                return apr_psprintf(p, "Max-Age=%s: needs a non-negative "
                                    "integer number of seconds", val);
            }
            n = strtol(val, &end, 10);
            spec->max_age = n;
        }
        else if ((KEY_IS("MaxIdle") || KEY_IS("MaxLife")) && val) {
            long n;

            if (!sr_parse_number(val, 999999999L, &n) || n <= 0) {
                return apr_psprintf(p, "%.*s=%s: needs a positive integer "
                                    "number of seconds", (int)klen, arg, val);
            }
            if (KEY_IS("MaxIdle")) {
                spec->max_idle = n;
            }
            else {
                spec->max_life = n;
            }
        }
        else if (KEY_IS("HttpOnly") && !val) {
            spec->http_only = 1;
        }
        else if (KEY_IS("Secure") && !val) {
            spec->secure = 1;
        }
        else if (KEY_IS("SameSite") && val) {
            if (!strcasecmp(val, "Lax")) {
                spec->same_site = SR_SAMESITE_LAX;
            }
            else if (!strcasecmp(val, "Strict")) {
                spec->same_site = SR_SAMESITE_STRICT;
            }
            else if (!strcasecmp(val, "None")) {
                spec->same_site = SR_SAMESITE_NONE;
            }
            else {
                return apr_psprintf(p, "SameSite=%s: use Lax, Strict or None",
                                    val);
            }
        }
        else {
            return apr_psprintf(p, "unknown cookie attribute '%s' (known: "
                                "Path=, Domain=, Max-Age=, HttpOnly, Secure, "
                                "SameSite=, MaxIdle=, MaxLife=)", arg);
        }
#undef KEY_IS
    }
    if (spec->same_site == SR_SAMESITE_NONE && !spec->secure) {
        return "SameSite=None requires Secure (browsers reject it otherwise)";
    }
    spec_format_attrs(p, spec);
    return NULL;
}

char *sr_cookie_format(apr_pool_t *p, const sr_cookie_spec_t *spec,
                       const char *value, int https)
{
    /* one allocation, four copies: this runs for every cookie issued */
    static const char secure[] = "; Secure";
    size_t nlen = strlen(spec->name), vlen = strlen(value);
    size_t alen = strlen(spec->attrs);
    size_t slen = (https && !spec->secure) ? sizeof(secure) - 1 : 0;
    char *out = apr_palloc(p, nlen + 1 + vlen + alen + slen + 1), *o = out;

    memcpy(o, spec->name, nlen);
    o += nlen;
    *o++ = '=';
    memcpy(o, value, vlen);
    o += vlen;
    memcpy(o, spec->attrs, alen);
    o += alen;
    memcpy(o, secure, slen);
    o[slen] = '\0';
    return out;
}

/* ---- smooth weighted round robin ------------------------------------ */

static uint32_t gcd32(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/*
 * Smooth weighted round robin (the nginx scheduler), unrolled into a table.
 *
 * Each member carries a running score. One step adds every member's weight
 * to its score, picks the member with the highest score (the first one on a
 * tie) and takes the sum of all weights off the winner. After sum(weights)
 * steps every score is back to zero and every member has been picked exactly
 * weight times, spread as evenly as the weights allow.
 *
 *   weights   a=5 b=1 c=1 (sum 7)
 *   step      scores after adding   pick   scores after taking 7 off
 *   1          5  1  1               a      -2  1  1
 *   2          3  2  2               a      -4  2  2
 *   3          1  3  3               b       1 -4  3
 *   4          6 -3  4               a      -1 -3  4
 *   5          4 -2  5               c       4 -2 -2
 *   6          9 -1 -1               a       2 -1 -1
 *   7          7  0  0               a       0  0  0
 *
 *   schedule: a a b a c a a   (never a a a a a b c)
 *
 * The table is built once whenever the set of usable members or a weight
 * changes; serving a request is then schedule[ticket % length], where the
 * ticket comes from one atomic counter shared by every process and thread.
 * Equal weights reduce to 1 each, so k members give a table of k entries
 * and N consecutive tickets give each member floor(N/k) or ceil(N/k).
 */
void sr_schedule_init(apr_pool_t *p, sr_schedule_t *s, uint32_t max_members)
{
    if (max_members == 0) {
        max_members = 1;
    }
    s->max_members = max_members;
    s->cap = SR_SCHEDULE_MAX + max_members;
    s->slots = apr_pcalloc(p, s->cap * sizeof(uint16_t));
    s->members = apr_pcalloc(p, max_members * sizeof(uint16_t));
    s->nmembers = 0;
    s->weight = apr_pcalloc(p, max_members * sizeof(uint32_t));
    s->score = apr_pcalloc(p, max_members * sizeof(int64_t));
    s->len = 0;
}

uint32_t sr_schedule_build(sr_schedule_t *s, const uint16_t *members,
                           const uint32_t *weights, size_t n)
{
    uint32_t *w = s->weight;
    int64_t *score = s->score;
    uint64_t sum = 0;
    uint32_t g = 0, step;
    size_t i;

    s->len = 0;
    s->nmembers = 0;
    if (n > s->max_members) {
        n = s->max_members;
    }
    if (n == 0) {
        return 0;
    }
    memcpy(s->members, members, n * sizeof(uint16_t));
    s->nmembers = (uint32_t)n;
    for (i = 0; i < n; i++) {
        w[i] = weights[i] ? weights[i] : 1;
        g = gcd32(g, w[i]);
    }
    for (i = 0; i < n; i++) {
        w[i] /= g;
        sum += w[i];
    }
    if (sum > s->cap) {
        /* Scale into cap - n so that the at-least-one floor still fits. */
        uint64_t room = s->cap > n ? s->cap - n : 1;
        uint64_t newsum = 0;
        for (i = 0; i < n; i++) {
            uint64_t x = (uint64_t)w[i] * room / sum;
            w[i] = x ? (uint32_t)x : 1;
            newsum += w[i];
        }
        sum = newsum;
    }
    for (i = 0; i < n; i++) {
        score[i] = 0;
    }
    for (step = 0; step < sum; step++) {
        size_t best = 0;
        for (i = 0; i < n; i++) {
            score[i] += w[i];
            if (score[i] > score[best]) {
                best = i;
            }
        }
        score[best] -= (int64_t)sum;
        s->slots[step] = members[best];
    }
    s->len = (uint32_t)sum;
    return s->len;
}

/* ---- route index ----------------------------------------------------- */

static uint32_t route_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

void sr_index_init(apr_pool_t *p, sr_route_index_t *ix, uint32_t max_members)
{
    uint32_t cap = 8;

    while (cap < 2 * max_members) {
        cap <<= 1;
    }
    ix->slots = apr_palloc(p, cap * sizeof(int32_t));
    ix->mask = cap - 1;
    sr_index_clear(ix);
}

void sr_index_clear(sr_route_index_t *ix)
{
    uint32_t i;

    for (i = 0; i <= ix->mask; i++) {
        ix->slots[i] = -1;
    }
}

void sr_index_insert(sr_route_index_t *ix, const char *const *routes,
                     int32_t member)
{
    const char *r = routes[member];
    uint32_t h;

    if (!r || !*r) {
        return;
    }
    h = route_hash(r, strlen(r)) & ix->mask;
    while (ix->slots[h] >= 0) {
        if (strcmp(routes[ix->slots[h]], r) == 0) {
            return;     /* duplicate route: the first member keeps it */
        }
        h = (h + 1) & ix->mask;
    }
    ix->slots[h] = member;
}

int32_t sr_index_find(const sr_route_index_t *ix, const char *const *routes,
                      const char *route, size_t len)
{
    uint32_t h = route_hash(route, len) & ix->mask;
    uint32_t probes;

    for (probes = 0; probes <= ix->mask; probes++) {
        int32_t m = ix->slots[h];
        if (m < 0) {
            return -1;
        }
        if (strncmp(routes[m], route, len) == 0 && routes[m][len] == '\0') {
            return m;
        }
        h = (h + 1) & ix->mask;
    }
    return -1;
}

/* ---- Set-Cookie of a response --------------------------------------- */

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

int sr_set_cookie_sets(const char *sc, const char *name, const char *path,
                       const char *req_path)
{
    size_t nlen = strlen(name);
    const char *a, *cpath = NULL;
    size_t cplen = 0;

    if (!sc) {
        return 0;
    }
    while (is_space(*sc)) {
        sc++;
    }
    if (strncmp(sc, name, nlen)) {
        return 0;
    }
    a = sc + nlen;
    while (is_space(*a)) {
        a++;
    }
    if (*a != '=') {
        return 0;
    }
    /* attributes: "; Path=/x" (the last Path wins, RFC 6265 5.3 step 7) */
    for (a = strchr(a, ';'); a; a = strchr(a + 1, ';')) {
        const char *k = a + 1, *v, *end;
        while (is_space(*k)) {
            k++;
        }
        if (strncasecmp(k, "path", 4)) {
            continue;
        }
        v = k + 4;
        while (is_space(*v)) {
            v++;
        }
        if (*v != '=') {
            continue;
        }
        v++;
        while (is_space(*v)) {
            v++;
        }
        end = strchr(v, ';');
        if (!end) {
            end = v + strlen(v);
        }
        while (end > v && is_space(end[-1])) {
            end--;
        }
        if (end > v && *v == '/') {
            cpath = v;
            cplen = (size_t)(end - v);
        }
        else {
            cpath = NULL;       /* an invalid Path means the default */
            cplen = 0;
        }
    }
    if (!cpath) {
        /* default-path: the request path up to its last '/', or "/" */
        const char *last = req_path && *req_path == '/'
                           ? strrchr(req_path, '/') : NULL;
        cpath = "/";
        cplen = 1;
        if (last && last != req_path) {
            cpath = req_path;
            cplen = (size_t)(last - req_path);
        }
    }
    return strlen(path) == cplen && !strncmp(path, cpath, cplen);
}

/* ---- output escaping --------------------------------------------------- */

/* Length of the UTF-8 sequence at s (1-4), or 0 when s does not start a
 * valid one (overlong forms, surrogates and values past U+10FFFF are not
 * valid). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    }
    if (c >= 0xe0 && c <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80
            || (c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f)) {
            return 0;
        }
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80
            || (s[3] & 0xc0) != 0x80 || (c == 0xf0 && s[1] < 0x90)
            || (c == 0xf4 && s[1] > 0x8f)) {
            return 0;
        }
        return 4;
    }
    return 0;
}

typedef enum { ESC_JSON, ESC_LABEL } esc_kind_t;

static const char *escape(apr_pool_t *p, const char *s, esc_kind_t kind)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *c;
    char *out, *o;
    int clean = 1;

    for (c = (const unsigned char *)s; *c && clean; ) {
        size_t n = utf8_len(c);
        if (n == 0 || *c == '"' || *c == '\\' || *c == '\n'
            || (*c < 0x20 && kind == ESC_JSON)) {
            clean = 0;
        }
        c += n ? n : 1;
    }
    if (clean) {
        return s;
    }
    /* worst case: 6 bytes per input byte (\u00XX, or \ufffd) */
    out = o = apr_palloc(p, strlen(s) * 6 + 1);
    for (c = (const unsigned char *)s; *c; ) {
        size_t n = utf8_len(c);
        if (n == 0) {
            if (kind == ESC_JSON) {
                memcpy(o, "\\ufffd", 6);
                o += 6;
            }
            else {
                memcpy(o, "\xef\xbf\xbd", 3);
                o += 3;
            }
            c++;
            continue;
        }
        if (*c == '"' || *c == '\\') {
            *o++ = '\\';
            *o++ = (char)*c++;
        }
        else if (*c == '\n') {
            *o++ = '\\';
            *o++ = 'n';
            c++;
        }
        else if (*c < 0x20 && kind == ESC_JSON) {
            *o++ = '\\';
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[*c >> 4];
            *o++ = hex[*c & 0xf];
            c++;
        }
        else {
            memcpy(o, c, n);
            o += n;
            c += n;
        }
    }
    *o = '\0';
    return out;
}

const char *sr_json_escape(apr_pool_t *p, const char *s)
{
    return escape(p, s, ESC_JSON);
}

const char *sr_label_escape(apr_pool_t *p, const char *s)
{
    return escape(p, s, ESC_LABEL);
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
