/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_request.h - what one request knows of its decisions
 * (sr_req_t) and its in-flight count, and the functions of the files that
 * follow a request: mod_sticky_route_request.c (what it brings),
 * mod_sticky_route_filter.c (its end), mod_sticky_route_retry.c (its
 * retry). A part of mod_sticky_route_private.h, reached through it (the
 * lock contract is there).
 */
#ifndef MOD_STICKY_ROUTE_REQUEST_H
#define MOD_STICKY_ROUTE_REQUEST_H

#ifndef MOD_STICKY_ROUTE_PRIVATE_H
#error "a part of mod_sticky_route_private.h: include that header"
#endif

/* ---- a request's own state (sr_req_t, its in-flight count) -------------- */

/* What one request knows of its decisions, in r->request_config: made by
 * the finder (sr_req), read by the cookie filter, log_transaction and the
 * retry. Belongs to the request's thread: no lock. */
typedef struct sr_req_t sr_req_t;
struct sr_req_t {
    proxy_balancer *balancer;       /* the balancer the cookie was read for */
    int parsed;                     /* cookie below is read */
    const sr_cookie_spec_t *spec;   /* the cookie we would set */
    int member;                     /* last decided, -1: none */
    proxy_worker *worker;           /* its worker */
    sr_shm_member_t *counter;
    sr_status_t status;
    int issue;                      /* a Set-Cookie goes out */
    const char *set_cookie;
    const char *early_cookie;       /* set_cookie, put in r->headers_out
                                       before the member answered (an
                                       upgrade: sr_cookie_early) */
    int filter_added;
    int error_response;             /* httpd answers with its own error */
    int decisions;                  /* finder calls that chose a member */
    int retries;                    /* retries before this request */
    int unreached;                  /* ... of them after an unreached
                                       member (sr_retry_unreached_allowed) */
    int retry_issued;               /* sr_request_status redirected it */
    int retry_same;                 /* the retry goes first to this member */
    int last_same;                  /* this request is a retry on the member
                                       that broke */
    int broken;                     /* the response was cut off */
    int keepalives_hidden;          /* sr_scheme_handler set the client
                                       connection's keepalives to 0 (and
                                       noted them) for this attempt */
    apr_uint32_t conns_mark;        /* sr_conns_opened at the decision */
    int64_t first;                  /* FIRST of the cookie to write */
    sr_shm_member_t *inflight;      /* the member counted in flight */
    int inflight_cleanup;           /* its release is registered */
    /* From here on not zeroed when the sr_req_t is made (sr_req): each is
     * written before it is read. */
    sr_tried_t tried;               /* members that failed in this request
                                       (sr_req: inherited, or emptied for
                                       a new balancer) */
    sr_cookie_read_t cookie;        /* sr_read_cookie, when !parsed */
    char route[PROXY_WORKER_MAX_ROUTE_SIZE];   /* its route, the request's
                                       own copy when the balancer's route
                                       slots are rewritten in place
                                       (st->route_copy: discovery); the
                                       environment points here, read after
                                       the finder's lock is gone */
};

/* In-flight requests per member, in shared memory: counted from the
 * decision until the request ends, however it ends (answered, failed,
 * aborted by the client); a request decided again (in-request failover,
 * retry) moves its count to the new member (sr_inflight_move, below).
 * Only for balancers that keep in-flight accounting (eff.inflight,
 * decided once by sr_inflight_accounting: a setting reads the counts, or
 * StickyRouteInflight On); sr_apply moves nothing otherwise.
 * A main request is released in
 * log_transaction: httpd runs it from the EOR bucket's destruction, right
 * before it destroys the request's pool, on every way a request ends (the
 * same moment as a pool cleanup, without registering one per request). A
 * subrequest (never logged) registers this as a pool cleanup. Lock-free:
 * a relaxed count (sr_atomic.h), never below zero - a discovery slot given
 * to another address starts its count afresh while older requests may
 * still end. */
static inline apr_status_t sr_inflight_release(void *data)
{
    sr_req_t *rq = data;

    if (rq->inflight) {
        sr_atomic_dec32_floor0(&rq->inflight->inflight);
        rq->inflight = NULL;
    }
    return APR_SUCCESS;
}

/* A decision moves the request's in-flight count to member entry `to`
 * (NULL: none); a subrequest registers its release as a pool cleanup.
 * Lock-free (sr_atomic.h). Here beside the release, and inline like it,
 * so that tests/unit/test_sr_threads.c (make unit-tsan) runs both. */
static inline void sr_inflight_move(request_rec *r, sr_req_t *rq,
                                    sr_shm_member_t *to)
{
    if (rq->inflight == to) {
        return;
    }
    sr_inflight_release(rq);
    if (to) {
        sr_atomic_add32(&to->inflight, 1);
        rq->inflight = to;
        if (r->main && !rq->inflight_cleanup) {
            apr_pool_cleanup_register(r->pool, rq, sr_inflight_release,
                                      apr_pool_cleanup_null);
            rq->inflight_cleanup = 1;
        }
    }
}

/* ---- what a request brings (mod_sticky_route_request.c) ------------------- */

/* The request's sr_req_t for balancer b: made at its first decision, a
 * retry's inheriting what its failed attempt knew; a member decided before
 * in this request is added to the tried set (mod_proxy asks again only
 * when it could not connect). Lock: the finder's (the balancer's thread
 * mutex). */
sr_req_t *sr_req(request_rec *r, proxy_balancer *b, sr_balancer_state_t *st)
    SR_HIDDEN;
/* What the request's Cookie headers (and StickyRouteSession id) say, in
 * rq->cookie. Lock: the balancer's thread mutex (the route index of st). */
void sr_read_cookie(sr_balancer_state_t *st, request_rec *r, sr_req_t *rq)
    SR_HIDDEN;

/* ---- the end of a request (mod_sticky_route_filter.c) --------------------- */

/* The STICKY_ROUTE_COOKIE output filter; sr_apply adds it. */
extern ap_filter_rec_t *sr_cookie_filter_handle;
/* Takes the early Set-Cookie (rq->early_cookie) back out of r->headers_out,
 * leaving every other field. No lock: the request's own state. */
void sr_early_cookie_take_back(request_rec *r, sr_req_t *rq) SR_HIDDEN;
void sr_filter_register_hooks(apr_pool_t *p);

/* ---- the retry (mod_sticky_route_retry.c) --------------------------------- */

/* New connections this thread opened (pre_connection); see
 * mod_sticky_route_retry.c. The thread's own: no lock. */
extern _Thread_local apr_uint32_t sr_conns_opened SR_HIDDEN;
void sr_retry_register_hooks(apr_pool_t *p);

#endif /* MOD_STICKY_ROUTE_REQUEST_H */
