/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_cookie_spec.c - the route cookie as it goes out: the StickyRouteCookie
 * attribute grammar, Set-Cookie formatting, and whether a response's own
 * Set-Cookie sets the same cookie (see sr_cookie.h).
 */
#include <string.h>
#include <stdlib.h>

#include "apr_strings.h"

#include "sr_text.h"
#include "sr_cookie.h"

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
