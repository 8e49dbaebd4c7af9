/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_text.c - decision names, numbers, escaping (see sr_text.h).
 */
#include <string.h>
#include <stdlib.h>

#include "apr_strings.h"

#include "sr_text.h"

const char *const sr_status_names[SR_STATUS_COUNT] = {
    "hit", "new", "failover", "unknown", "forged", "roundrobin", "expired",
    "rebalanced", "hashed", "hash-spill"
};

/* ---- numbers ------------------------------------------------------- */

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
