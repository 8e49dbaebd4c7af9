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
 * backend connections it needs (pre_connection), and the scheme handler
 * hook that lets an HTTP/2 stream's broken pooled connection come back as
 * a 502 to retry (issue 19).
 *
 * The decision is the policy's (sr_retry_allowed, sr_retry_unreached_allowed,
 * sr_retry_member, sr_retry_stream_break_as_502); this file gathers its inputs and redirects.
 */
#include <stdlib.h>
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

/* The inputs of the retry decision for request r, decided by rq on the
 * balancer whose state is st. No lock: the request's own fields and the
 * balancer's configuration. */
static void retry_inputs(request_rec *r, const sr_req_t *rq,
                         const sr_balancer_state_t *st, sr_retry_in_t *in)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");

    in->enabled = st->eff.retry;
    in->idempotent = r->method_number == M_GET;    /* HEAD is M_GET too */
    in->has_body = apr_table_get(r->headers_in, "Transfer-Encoding") != NULL
                   || (cl && strcmp(cl, "0"));
    in->response_started = r->sent_bodyct || r->connection->aborted;
    /* with ProxyErrorOverride, a 502 may be the member's own answer */
    in->member_answered = apr_table_get(r->notes, "proxy-error-override") != NULL;
    in->retries = rq->retries - rq->unreached;  /* after a broken member */
    in->last_same = rq->last_same;
}

/* The note that keeps an HTTP/2 stream's keepalives count while the scheme
 * handler runs with 0 (sr_scheme_handler). */
#define SR_NOTE_KEEPALIVES "sticky-route-keepalives"
/* ... and the proxy-initial-not-pooled variable it hides meanwhile */
#define SR_ENV_NOT_POOLED  "proxy-initial-not-pooled"
#define SR_NOTE_NOT_POOLED "sticky-route-initial-not-pooled"

/*
 * Runs first among the proxy scheme handlers, after the finder decided,
 * once per attempt, and declines. mod_proxy_http answers a pooled backend
 * connection that broke before the status line (AH01102) according to the
 * client connection's keepalives count (ap_proxy_http_process_response):
 *
 *     if (r->proxyreq == PROXYREQ_REVERSE && c->keepalives &&
 *         !APR_STATUS_IS_TIMEUP(rc)) {
 *         ap_proxy_fill_error_brigade(r, HTTP_BAD_GATEWAY, bb, 1);
 *         ap_pass_brigade(r->output_filters, bb);
 *         backend->close = 1;
 *         if (origin->keepalives) return OK;
 *         return HTTP_INTERNAL_SERVER_ERROR;
 *     }
 *     return ap_proxyerror(r, HTTP_BAD_GATEWAY, "Error reading from ...");
 *
 * The first branch closes an HTTP/1.1 client's connection (EOC) for the
 * client to send the request again; the request ends OK (or 500, putting
 * the member in error), so request_status never sees a 502. mod_http2 sets
 * keepalives to 1 on every stream's secondary connection (h2_c2.c, "Simulate
 * that we had already a request on this connection"), so an HTTP/2 stream
 * takes that branch too, and its client, which has no connection to retry
 * on, gets the 502. When sr_retry_stream_break_as_502 says so, the count is
 * 0 while mod_proxy_http runs: the break comes back as the 502 of the second
 * branch, with nothing sent, and sr_request_status retries it (on a new
 * connection to the same member first). proxy-initial-not-pooled, which
 * mod_proxy_http reads with the same count (no pooled connection for a
 * client's first request) and which never applied to a stream, is hidden
 * meanwhile. The count (and the variable) are kept in notes and
 * restored by sr_request_status, which mod_proxy runs after every scheme
 * handler (its cleanup); mod_http2 also gives a secondary connection whose
 * count is 0 the count 1 again before its next stream.
 *
 * No lock: the request's own fields, its connection (an HTTP/2 stream's
 * secondary connection belongs to the thread that runs the stream) and the
 * balancer's configuration.
 */
static int sr_scheme_handler(request_rec *r, proxy_worker *worker,
                             proxy_server_conf *conf, char *url,
                             const char *proxyhost, apr_port_t proxyport)
{
    sr_req_t *rq = ap_get_module_config(r->request_config, &sticky_route_module);
    const sr_balancer_state_t *st;
    sr_stream_break_in_t in;
    conn_rec *c = r->connection;
    const char *inp;

    (void)conf;
    (void)url;
    (void)proxyhost;
    (void)proxyport;
    if (!rq || !rq->worker || rq->worker != worker || rq->member < 0
        || r->main || !rq->balancer
        || !(st = rq->balancer->context)) {
        return DECLINED;
    }
    in.reverse = r->proxyreq == PROXYREQ_REVERSE;
    in.secondary = c->master != NULL;
    in.keepalives = c->keepalives;
    if (!sr_retry_stream_break_possible(&in)) {
        return DECLINED;
    }
    retry_inputs(r, rq, st, &in.retry);
    if (sr_retry_stream_break_as_502(&in)) {
        rq->keepalives_hidden = 1;
        apr_table_setn(r->notes, SR_NOTE_KEEPALIVES,
                       apr_itoa(r->pool, c->keepalives));
        c->keepalives = 0;
        /* with keepalives 0, proxy-initial-not-pooled would apply to the
         * stream (mod_proxy_http: no pooled connection for a client's first
         * request); it never did (mod_http2's count 1): hidden meanwhile */
        if ((inp = apr_table_get(r->subprocess_env, SR_ENV_NOT_POOLED))) {
            apr_table_setn(r->notes, SR_NOTE_NOT_POOLED, inp);
            apr_table_unset(r->subprocess_env, SR_ENV_NOT_POOLED);
        }
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                      "%s: HTTP/2 stream to %s: a broken pooled connection "
                      "comes back as a 502 to retry", rq->balancer->s->name,
                      sr_worker_url(rq->worker));
    }
    return DECLINED;
}

/* Gives the connection its keepalives count, and the request its
 * proxy-initial-not-pooled, back after the scheme handler
 * (sr_scheme_handler). No lock: as there. */
static void stream_keepalives_restore(request_rec *r, sr_req_t *rq)
{
    const char *kept;

    if (!rq || !rq->keepalives_hidden) {
        return;     /* sr_scheme_handler hid nothing */
    }
    rq->keepalives_hidden = 0;
    kept = apr_table_get(r->notes, SR_NOTE_KEEPALIVES);

    if (kept) {
        r->connection->keepalives = atoi(kept);
        apr_table_unset(r->notes, SR_NOTE_KEEPALIVES);
    }
    if ((kept = apr_table_get(r->notes, SR_NOTE_NOT_POOLED))) {
        apr_table_setn(r->subprocess_env, SR_ENV_NOT_POOLED, kept);
        apr_table_unset(r->notes, SR_NOTE_NOT_POOLED);
    }
}

/*
 * Which statuses enter the retry decision at all: sr_retry_candidate (a
 * 502 or a 503 with a member decided, not a subrequest, not retried yet;
 * DONE marks the response broken). A member broke under a request before
 * any byte of its answer and mod_proxy answers 502 (on a reused client
 * connection mod_proxy_http closes the connection instead, for the client
 * to retry). When the
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
    sr_balancer_state_t *st = rq && rq->balancer ? rq->balancer->context
                                                 : NULL;
    sr_retry_status_in_t cin;
    sr_retry_candidate_t cand;
    sr_retry_in_t in;
    int fresh, timed_out, same, unreached, locked;

    stream_keepalives_restore(r, rq);
    cin.status = *status;
    cin.done = *status == DONE;
    cin.ours = rq != NULL;
    cin.decided = rq && rq->worker && rq->member >= 0;
    cin.retried = rq && rq->retry_issued;
    cin.subrequest = r->main != NULL;
    cin.state = st != NULL;
    cand = sr_retry_candidate(&cin);
    if (cand == SR_RETRY_BROKEN_RESPONSE) {
        /* mod_proxy_http returns DONE when the member broke off in the middle
         * of the response (or the client went away): not a served request */
        rq->broken = 1;
        return DECLINED;
    }
    if (cand == SR_RETRY_NOT) {
        return DECLINED;
    }
    unreached = cand == SR_RETRY_UNREACHED;
    retry_inputs(r, rq, st, &in);
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
    /* before mod_proxy_http's (APR_HOOK_FIRST) */
    proxy_hook_scheme_handler(sr_scheme_handler, NULL, NULL,
                              APR_HOOK_REALLY_FIRST);
}
