/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * libFuzzer target: a Cookie header through the scanner, every value found
 * through the parser and the tag verifier, with and without a secret; the
 * same bytes through the policy's cookie reader, the application session
 * id and URL parameter parsers, a response's Set-Cookie matcher and both
 * output escapers (whose results must stay within their formats).
 * Links the httpd-free core alone (make fuzz).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apr_general.h"
#include "sr_core.h"
#include "sr_policy.h"

static apr_pool_t *pool;
static sr_key_t key;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    sr_key_derive(&key, "fuzzing-secret-0123456789", 25, "tag");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *hdr = malloc(size + 1);
    sr_span_t spans[SR_COOKIES_MAX];
    size_t n, i;

    if (!hdr) {
        return 0;
    }
    memcpy(hdr, data, size);
    hdr[size] = '\0';
    n = sr_cookie_find(hdr, "ROUTEID", spans, SR_COOKIES_MAX);
    for (i = 0; i < n; i++) {
        sr_value_t v;
        int s;
        for (s = 0; s < 2; s++) {
            sr_value_parse(spans[i].ptr, spans[i].len, s, &v);
            if (v.kind != SR_VALUE_MALFORMED) {
                /* whatever we accept must be a well-formed route */
                if (!sr_route_is_valid(v.route, v.route_len)
                    || strlen(v.route) != v.route_len) {
                    abort();
                }
            }
            (void)sr_value_verdict(&v, s ? &key : NULL, s, "balancer://fuzz");
        }
    }
    /* the policy's reader over a three-member index */
    {
        static const char *routes[] = { "s1", "s2", "s3" };
        sr_route_index_t ix;
        sr_cookie_ctx_t ctx;
        sr_cookie_read_t c;
        int32_t m;

        sr_index_init(pool, &ix, 3);
        for (m = 0; m < 3; m++) {
            sr_index_insert(&ix, routes, m);
        }
        ctx.name = "ROUTEID";
        ctx.tag_key = size % 2 ? &key : NULL;
        ctx.legacy_ok = 1;
        ctx.balancer = "balancer://fuzz";
        ctx.index = &ix;
        ctx.routes = routes;
        ctx.nmembers = 3;
        sr_cookie_read_init(&c);
        sr_cookie_read_header(&c, &ctx, hdr);
        if (c.member >= 3 || c.seen > SR_COOKIES_MAX) {
            abort();
        }
    }
    /* application session ids, URL parameters, Set-Cookie matching */
    {
        sr_span_t r, v;
        if (sr_session_route(hdr, size, &r)
            && (!sr_route_is_valid(r.ptr, r.len) || r.ptr < hdr
                || r.ptr + r.len > hdr + size)) {
            abort();
        }
        if (sr_url_param(hdr, hdr, "jsessionid", &v)
            && (v.ptr < hdr || v.ptr + v.len > hdr + size)) {
            abort();
        }
        (void)sr_set_cookie_sets(hdr, "ROUTEID", "/", hdr);
    }
    /* escaping: JSON without raw control bytes or bare quotes; Prometheus
     * without raw newlines */
    {
        const char *j = sr_json_escape(pool, hdr), *l = sr_label_escape(pool, hdr);
        const unsigned char *q;
        for (q = (const unsigned char *)j; *q; q++) {
            if (*q < 0x20 || (*q == '"' && (q == (const unsigned char *)j || q[-1] != '\\'))) {
                abort();
            }
        }
        if (strchr(l, '\n')) {
            abort();
        }
        apr_pool_clear(pool);
        sr_key_derive(&key, "fuzzing-secret-0123456789", 25, "tag");
    }
    /* the whole input as one value, too */
    {
        sr_value_t v;
        sr_value_parse((const char *)data, size, 1, &v);
        (void)sr_value_verdict(&v, &key, 0, "balancer://fuzz");
    }
    free(hdr);
    return 0;
}
