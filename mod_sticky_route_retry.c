/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_retry.c - the retry of a request a member broke or
 * never reached (proxy request_status hook), and the count of fresh
 * backend connections it needs (pre_connection).
 *
 * The decision is the policy's (sr_retry_allowed, sr_retry_unreached_allowed,
 * sr_retry_member); this file gathers its inputs and redirects.
 */
#include <string.h>

#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_connection.h"
#include "apr_strings.h"
#include "apr_optional.h"
#include "apr_optional_hooks.h"

#include "mod_sticky_route_private.h"

/* New connections this thread opened (pre_connection). mod_proxy runs
 * pre_connection exactly when it opens a new connection to a member, in the
 * thread that handles the request; a request remembers the count at its
 * decision, so a different count when the member broke means the
 * connection that broke was a fresh one. */
_Thread_local apr_uint32_t sr_conns_opened SR_HIDDEN;

/* mod_proxy opens a new connection to a member (see sr_conns_opened). No
 * lock: a thread-local count. */
static int sr_pre_connection(conn_rec *c, void *csd)
{
    (void)c;
    (void)csd;
    sr_conns_opened++;
    return DECLINED;
}

/*
 * A member broke under a request before any byte of its answer and
 * mod_proxy answers 502 (on a reused client connection mod_proxy_http
 * closes the connection instead, for the client to retry). When the
 * policy allows it (sr_retry_allowed: GET or HEAD without a body, nothing
 * sent yet), the request runs again as an internal redirect: first on the
 * same member with a fresh connection when the broken one was a reused
 * pooled connection (sr_retry_member), else on another member.
 *
 * A 503 with a member decided is a member never reached (connect refused
 * or timed out, the member unusable by the time of the connect) after
 * httpd's own failover gave up (maxattempts): the request runs again on
 * another member when sr_retry_unreached_allowed says so. A 503 without a
 * member (the finder found none) is left alone: rq->worker is NULL then.
 *
 * Lock: mod_proxy runs this hook without the balancer's thread mutex; it
 * takes it around its read of st->view (sr_view_refresh, sr_retry_member).
 * The in-flight count is released lock-free.
 */
static int sr_request_status(int *status, request_rec *r)
{
    sr_req_t *rq = ap_get_module_config(r->request_config, &sticky_route_module);
    sr_balancer_state_t *st;
    sr_retry_in_t in;
    const char *cl;
    int fresh, timed_out, same, unreached, locked;

    if (*status == DONE && rq) {
        /* mod_proxy_http returns DONE when the member broke off in the middle
         * of the response (or the client went away): not a served request */
        rq->broken = 1;
        return DECLINED;
    }
    unreached = *status == HTTP_SERVICE_UNAVAILABLE;
    if ((*status != HTTP_BAD_GATEWAY && !unreached) || !rq || !rq->worker
        || rq->member < 0 || rq->retry_issued || r->main) {
        return DECLINED;
    }
    st = rq->balancer ? rq->balancer->context : NULL;
    if (!st) {
        return DECLINED;
    }
    cl = apr_table_get(r->headers_in, "Content-Length");
    in.enabled = st->eff.retry;
    in.idempotent = r->method_number == M_GET;     /* HEAD is M_GET too */
    in.has_body = apr_table_get(r->headers_in, "Transfer-Encoding") != NULL
                  || (cl && strcmp(cl, "0"));
    in.response_started = r->sent_bodyct || r->connection->aborted;
    /* with ProxyErrorOverride, a 502 may be the member's own answer */
    in.member_answered = apr_table_get(r->notes, "proxy-error-override") != NULL;
    in.retries = rq->retries - rq->unreached;   /* after a broken member */
    in.last_same = rq->last_same;
    if (unreached ? !sr_retry_unreached_allowed(&in, rq->unreached)
                  : !sr_retry_allowed(&in)) {
        return DECLINED;
    }
    if (unreached) {
        /* never again this member in this request */
        same = -1;
        rq->unreached++;
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "%s: %s (route %s) could not be reached; retrying the "
                      "%s request on another member", rq->balancer->s->name,
                      sr_worker_url(rq->worker),
                      apr_table_get(r->subprocess_env, SR_ENV_ROUTE),
                      r->method);
    }
    else {
        fresh = rq->conns_mark != sr_conns_opened;
        timed_out = apr_table_get(r->notes, "proxy_timedout") != NULL;
        /* st->view is the finders' per-process state: mod_proxy runs this
         * hook without the balancer's thread mutex, so take it (as
         * mod_proxy_balancer does around the finder) */
        locked = PROXY_THREAD_LOCK(rq->balancer) == APR_SUCCESS;
        if ((uint32_t)rq->member < st->max
            && rq->member < st->balancer->workers->nelts) {
            sr_view_refresh(st, rq->member);
        }
        same = sr_retry_member(st->view,
                               st->max < (uint32_t)st->balancer->workers->nelts
                               ? st->max
                               : (uint32_t)st->balancer->workers->nelts,
                               rq->member, fresh, timed_out, rq->retries,
                               &rq->tried);
        if (locked) {
            PROXY_THREAD_UNLOCK(rq->balancer);
        }
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "%s: no response from %s (route %s, %s connection%s); "
                      "retrying the %s request %s", rq->balancer->s->name,
                      sr_worker_url(rq->worker),
                      apr_table_get(r->subprocess_env, SR_ENV_ROUTE),
                      fresh ? "fresh" : "reused", timed_out ? ", timed out" : "",
                      r->method,
                      same >= 0 ? "on the same member with a fresh connection"
                                : "on another member");
    }
    if (same < 0) {
        sr_tried_add(r->pool, &rq->tried, (uint32_t)rq->member);
    }
    rq->retry_issued = 1;
    rq->retry_same = same;
    sr_inflight_release(rq);    /* this attempt is over */
    rq->member = -1;            /* the tried set says all: sr_req must not
                                   add it again as a failed connect */
    ap_internal_redirect(r->unparsed_uri, r);
    *status = OK;
    return OK;
}


/* No lock: startup. */
void sr_retry_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_connection(sr_pre_connection, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(proxy, request_status, sr_request_status, NULL, NULL,
                      APR_HOOK_MIDDLE);
}
