/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_filter.c - the end of a request: the Set-Cookie output
 * filter (one cookie naming the member decided last, never replacing an
 * application's own), httpd's own errors noted, and log_transaction, which
 * ends the in-flight count and counts the request's decision.
 *
 * Lock: none. These run in the request's thread after the finder, without
 * the balancer's thread mutex, and touch no per-process state but the
 * request's own sr_req_t: shared memory (the counters, the in-flight count,
 * the once-only warning) only through sr_atomic.h.
 */
#include <string.h>

#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"

#include "mod_sticky_route_private.h"

ap_filter_rec_t *sr_cookie_filter_handle = NULL;

/* ====================================================================
 * Response: the Set-Cookie, counters
 * ==================================================================== */

typedef struct {
    const sr_cookie_spec_t *spec;
    const char *req_path;
    const char *found;
} sr_app_cookie_t;

/* No lock: reads the response headers only. */
static int sr_app_cookie_cb(void *baton, const char *key, const char *val)
{
    sr_app_cookie_t *ac = baton;

    (void)key;
    if (sr_set_cookie_sets(val, ac->spec->name, ac->spec->path,
                           ac->req_path)) {
        ac->found = val;
        return 0;
    }
    return 1;
}

void sr_early_cookie_take_back(request_rec *r, sr_req_t *rq)
{
    const apr_array_header_t *arr;
    const apr_table_entry_t *e;
    apr_array_header_t *keep;
    int i, found = 0;

    if (!rq->early_cookie) {
        return;
    }
    arr = apr_table_elts(r->headers_out);
    e = (const apr_table_entry_t *)arr->elts;
    keep = apr_array_make(r->pool, 2, sizeof(const char *));
    for (i = 0; i < arr->nelts; i++) {
        if (!e[i].key || strcasecmp(e[i].key, "Set-Cookie")) {
            continue;
        }
        if (!found && e[i].val && !strcmp(e[i].val, rq->early_cookie)) {
            found = 1;
        }
        else {
            *(const char **)apr_array_push(keep) = e[i].val;
        }
    }
    if (found) {
        apr_table_unset(r->headers_out, "Set-Cookie");
        for (i = 0; i < keep->nelts; i++) {
            apr_table_addn(r->headers_out, "Set-Cookie",
                           ((const char **)keep->elts)[i]);
        }
    }
    rq->early_cookie = NULL;
}

/* Adds the one Set-Cookie, naming the member elected last, when the
 * response is on its way (an early one, of an upgrade that got a final
 * response instead of its 101, is taken back first and judged the same).
 * The policy decides: sr_cookie_due (is it due: not for httpd's own error
 * pages), then, given whether the member set a cookie of the same name and
 * path itself, sr_cookie_issue (add it, or leave the member's and warn
 * once). No lock: the request's own sr_req_t; st->shared is fixed once the
 * state is made; the once-only warning bit is set lock-free
 * (compare-and-swap). */
static apr_status_t sr_cookie_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    sr_req_t *rq = ap_get_module_config(r->request_config, &sticky_route_module);

    if (rq) {
        sr_early_cookie_take_back(r, rq);
    }
    if (rq && sr_cookie_due(rq->issue, rq->set_cookie != NULL,
                            rq->worker != NULL, rq->error_response)) {
        sr_app_cookie_t ac;
        sr_balancer_state_t *st;
        sr_shm_balancer_t *sb;
        int warned;

        ac.spec = rq->spec;
        ac.req_path = r->parsed_uri.path ? r->parsed_uri.path : r->uri;
        ac.found = NULL;
        apr_table_do(sr_app_cookie_cb, &ac, r->headers_out, "Set-Cookie",
                     NULL);
        if (!ac.found) {
            apr_table_do(sr_app_cookie_cb, &ac, r->err_headers_out,
                         "Set-Cookie", NULL);
        }
        st = (ac.found && rq->balancer) ? rq->balancer->context : NULL;
        sb = st ? st->shared : NULL;
        warned = sb && (sr_atomic_load32(&sb->warned) & SR_WARNED_APP_COOKIE);
        switch (sr_cookie_issue(ac.found != NULL, warned)) {
        case SR_ISSUE_ADD:
            apr_table_addn(r->headers_out, "Set-Cookie", rq->set_cookie);
            break;
        case SR_ISSUE_MEMBERS_WARN: {
            int first = 1;
            if (sb) {
                apr_uint32_t was = sr_atomic_load32(&sb->warned);
                first = sr_atomic_cas32(&sb->warned, was,
                                        was | SR_WARNED_APP_COOKIE) == was;
            }
            if (first) {
                ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                              "%s: member %s sets the cookie %s (path %s) "
                              "itself; mod_sticky_route does not replace "
                              "an application's cookie, so its responses "
                              "pin nobody - give StickyRouteCookie another "
                              "name (said once)", rq->balancer->s->name,
                              sr_worker_url(rq->worker), rq->spec->name,
                              rq->spec->path);
            }
            break;
        }
        case SR_ISSUE_MEMBERS:
        default:
            break;
        }
    }
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

/* httpd answers with its own error page: no Set-Cookie, not counted. No
 * lock: the request's own sr_req_t. */
static void sr_insert_error_filter(request_rec *r)
{
    sr_req_t *rq = ap_get_module_config(r->request_config, &sticky_route_module);

    if (rq) {
        rq->error_response = 1;
    }
}

/* The end of every request (and of the requests of its internal
 * redirects): the in-flight count released; the decision of the request
 * that produced the response counted when sr_count_decision says so. No
 * lock: the request's own sr_req_t; the counters are
 * relaxed atomic adds in shared memory. */
static int sr_log_transaction(request_rec *r)
{
    sr_req_t *rq;

    for (;;) {
        /* every request of the chain (internal redirects) ends here */
        rq = ap_get_module_config(r->request_config, &sticky_route_module);
        if (rq) {
            sr_inflight_release(rq);
        }
        if (!r->next) {
            break;
        }
        r = r->next;    /* the request that produced the response */
    }

    /* sent_bodyct: a response left, and (broken) it was not cut off in the
     * middle. mod_proxy_http closes the client connection without one when
     * a pooled backend connection breaks under a request on a reused client
     * connection (the client retries). */
    if (rq) {
        sr_count_in_t in;

        in.decided = rq->worker && rq->counter;
        in.error_response = rq->error_response;
        in.broken = rq->broken;
        in.sent_body = r->sent_bodyct != 0;
        in.status = rq->status;
        if (sr_count_decision(&in)) {
            sr_atomic_add64(&rq->counter->count[rq->status], 1);
        }
    }
    return DECLINED;
}

/* No lock: startup. */
void sr_filter_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_insert_error_filter(sr_insert_error_filter, NULL, NULL,
                                APR_HOOK_MIDDLE);
    ap_hook_log_transaction(sr_log_transaction, NULL, NULL, APR_HOOK_MIDDLE);
    sr_cookie_filter_handle = ap_register_output_filter(
        "STICKY_ROUTE_COOKIE", sr_cookie_filter, NULL, AP_FTYPE_CONTENT_SET);
}
