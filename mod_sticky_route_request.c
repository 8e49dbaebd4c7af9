/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_request.c - what a request brings to the finders: its
 * sr_req_t (made at its first decision, inherited by a retry), and what
 * its Cookie headers and StickyRouteSession id say.
 *
 * Lock: the finders call these with the balancer's thread mutex held (the
 * route index and routes of st); the sr_req_t is the request's own.
 */
#include <stddef.h>
#include <string.h>

#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"

#include "mod_sticky_route_private.h"

/* What the failed attempt prev carries into its retry, in *a, for the
 * policy (sr_retry_inherit). No lock: the request's own state. */
static const sr_attempt_t *sr_attempt_of(const sr_req_t *prev, sr_attempt_t *a)
{
    a->retries = prev->retries;
    a->unreached = prev->unreached;
    a->retry_same = prev->retry_same;
    a->last_same = prev->last_same;
    a->status = prev->status;
    a->issue = prev->issue;
    a->first = prev->first;
    a->tried = prev->tried;
    return a;
}

/* The request's sr_req_t for balancer b (made at its first decision; a
 * retry's inherits what its failed attempt knew, as sr_retry_inherit
 * says). No lock beyond the finder's: the request is its thread's own;
 * st->max only is read. */
sr_req_t *sr_req(request_rec *r, proxy_balancer *b, sr_balancer_state_t *st)
{
    sr_req_t *rq = ap_get_module_config(r->request_config, &sticky_route_module);

    if (!rq) {
        const sr_req_t *prev = r->prev
            ? ap_get_module_config(r->prev->request_config, &sticky_route_module)
            : NULL;
        sr_attempt_t was, now;
        /* zeroed up to its tried set (see sr_req_t): tried, cookie and
         * route are written before anything reads them */
        rq = apr_palloc(r->pool, sizeof(*rq));
        memset(rq, 0, offsetof(sr_req_t, tried));
        rq->member = -1;
        rq->retry_same = -1;
        ap_set_module_config(r->request_config, &sticky_route_module, rq);
        if (prev && sr_retry_inherit(sr_attempt_of(prev, &was),
                                     prev->retry_issued, prev->balancer == b,
                                     &now)) {
            /* sr_request_status retries here (same pool): the members
             * that failed so far stay excluded */
            rq->balancer = b;
            rq->tried = now.tried;
            rq->retries = now.retries;
            rq->unreached = now.unreached;
            rq->retry_same = now.retry_same;
            rq->last_same = now.last_same;
            rq->status = now.status;
            rq->issue = now.issue;
            rq->first = now.first;
            /* a fresh connection to whichever member serves the retry:
             * mod_proxy_http drops the pooled one it acquired */
            apr_table_setn(r->subprocess_env, "proxy-initial-not-pooled", "1");
        }
    }
    if (rq->balancer != b) {
        rq->balancer = b;
        rq->parsed = 0;
        sr_tried_init(&rq->tried, st->max);
        rq->member = -1;
    }
    if (rq->member >= 0) {
        /* mod_proxy calls the finder again in one request only when the
         * member decided last could not be connected to */
        sr_tried_add(r->pool, &rq->tried, (uint32_t)rq->member);
    }
    return rq;
}

/* A header named Cookie, in any case: the letters compared one by one,
 * each folded to lower case (| 0x20 folds only A-Z onto a-z among the
 * bytes that can match), the first mismatch or the end of the name ends
 * it. Every request's Cookie headers are looked for among all its
 * headers: inline, where a strcasecmp call cost several times more (and
 * varied with the strings' alignment). No lock: pure. */
static inline int sr_is_cookie_header(const char *k)
{
    return k && (k[0] | 0x20) == 'c' && (k[1] | 0x20) == 'o'
           && (k[2] | 0x20) == 'o' && (k[3] | 0x20) == 'k'
           && (k[4] | 0x20) == 'i' && (k[5] | 0x20) == 'e' && k[6] == '\0';
}

/* StickyRouteSession: gathers the application's session id for the
 * policy - every Cookie header (sr_session_read_header), then the URL
 * parameter (sr_session_read_url) - which sets rq->cookie.app_member when
 * one names a member. Lock: the balancer's thread mutex (the route index
 * of st, through st->cookie_ctx). */
static void sr_read_app_session(sr_balancer_state_t *st, request_rec *r,
                                sr_req_t *rq)
{
    const apr_array_header_t *h = apr_table_elts(r->headers_in);
    const apr_table_entry_t *e = (const apr_table_entry_t *)h->elts;
    int i;

    for (i = 0; i < h->nelts; i++) {
        if (sr_is_cookie_header(e[i].key)
            && sr_session_read_header(&rq->cookie, &st->cookie_ctx,
                                      st->eff.session_cookie, e[i].val)) {
            return;
        }
    }
    sr_session_read_url(&rq->cookie, &st->cookie_ctx, st->eff.session_param,
                        r->parsed_uri.path ? r->parsed_uri.path : r->uri,
                        r->args);
}

/* Reads every Cookie header (HTTP/1.1 clients may send several). Lock: the
 * balancer's thread mutex (the route index of st). */
void sr_read_cookie(sr_balancer_state_t *st, request_rec *r, sr_req_t *rq)
{
    const apr_array_header_t *h = apr_table_elts(r->headers_in);
    const apr_table_entry_t *e = (const apr_table_entry_t *)h->elts;
    int i;

    rq->parsed = 1;
    sr_cookie_read_init(&rq->cookie);
    if (st->eff.session_cookie) {
        sr_read_app_session(st, r, rq);
    }
    for (i = 0; i < h->nelts; i++) {
        if (sr_is_cookie_header(e[i].key) && e[i].val
            && sr_cookie_read_header(&rq->cookie, &st->cookie_ctx, e[i].val)) {
            return;
        }
    }
}
