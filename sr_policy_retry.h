/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_policy_retry.h - retrying a request its member broke or never got; part
 * of sr_policy.h (include that one; the decision table of a request is its
 * opening comment).
 */
#ifndef SR_POLICY_RETRY_H
#define SR_POLICY_RETRY_H

#include "sr_policy_sticky.h"

/* ---- retrying a request a member broke ------------------------------------
 * A member can break under a request before any byte of its answer: a
 * pooled connection it closed as the request went out (its keep-alive
 * timeout racing the proxy's reuse), a reset in the accept queue of a
 * stopping member, a crash. mod_proxy then answers 502. */
typedef struct {
    int enabled;            /* StickyRouteRetry */
    int idempotent;         /* GET or HEAD */
    int has_body;           /* the request carries a body */
    int response_started;   /* a byte went out, or the client went away */
    int member_answered;    /* the 502 is the member's own answer
                               (ProxyErrorOverride) */
    int retries;            /* retries of this request so far */
    int last_same;          /* the last one went to the same member */
} sr_retry_in_t;

/* May the request be sent again? Once; twice when the first retry went to
 * the same member on a fresh connection (so that a member failing there
 * too still leaves a retry on another one). */
int sr_retry_allowed(const sr_retry_in_t *in);

/* Where the retry goes first: the member that broke, on a fresh
 * connection, when the failure came on a reused (pooled) connection - a
 * keep-alive race, not a sign of a bad member (RFC 9112 9.3.1 is the rule
 * browsers follow for the same case) - and it was not a timeout, the
 * member is still usable and this is the first retry. Returns that member,
 * or -1: the failure counts against the member (the caller adds it to the
 * tried set) and the request is decided again without it. */
int32_t sr_retry_member(const sr_member_t *m, uint32_t n, int32_t failed,
                        int fresh_connection, int timed_out, int retries,
                        const sr_tried_t *tried);

/* The retry of a request sent back to the member that broke (`same`, from
 * sr_retry_member; -1: none) is the finder's first question, before the
 * cookie, the key or the schedule: that member serves it (SR_ACT_SERVE)
 * when it is one of the n members, usable now (after its retry chance) and
 * has not failed in this request, with the decision of the attempt it
 * retries (status, issue, first: a new session keeps its Set-Cookie);
 * otherwise the finder decides as for any request (SR_ACT_ELECT, member
 * -1). */
void sr_decide_retry_same(const sr_member_t *m, uint32_t n, int32_t same,
                          const sr_tried_t *tried, sr_status_t status,
                          int issue, int64_t first, sr_decision_t *d);

/* ---- retrying a request its member never got ------------------------------
 * mod_proxy answers 503 when the elected member cannot be reached: the
 * connect is refused or times out (its server stopped, its container is
 * gone, before discovery disabled it), or the member stopped being usable
 * between the election and the connect (disabled by StickyRouteDiscover or
 * balancer-manager, put in error by another request:
 * ap_proxy_acquire_connection, AH00940). Nothing was sent to the member.
 * httpd itself fails over only `maxattempts` times, and unless configured
 * that is the number of members a child process saw at its start, minus
 * one: 0 for a discovered pool that started empty or with one address (a
 * fresh deploy: tasks enter DNS once healthy), and members discovered later
 * never raise it. So the module sends such a request again itself, to
 * another member (the unreached one is added to the tried set), whatever
 * maxattempts says. Each unreached member costs one retry and is in error
 * or disabled afterwards, so SR_RETRY_UNREACHED_MAX bounds what a rolling
 * update can throw at one request (and keeps the internal redirects far
 * below LimitInternalRecursion). */
#define SR_RETRY_UNREACHED_MAX 4

/* May a request whose member was never reached go to another member? The
 * same rules as sr_retry_allowed for the request (StickyRouteRetry on, GET
 * or HEAD without a body, nothing sent to the client, not the member's own
 * 503 under ProxyErrorOverride); in->retries and in->last_same are not
 * looked at: `unreached` is the number of retries of this request that
 * followed an unreached member, at most SR_RETRY_UNREACHED_MAX. */
int sr_retry_unreached_allowed(const sr_retry_in_t *in, int unreached);

/* ---- a pooled connection that breaks under an HTTP/2 stream (issue 19) ----
 * When a member closes a reused (pooled) connection as a request goes out,
 * mod_proxy_http reads no status line (AH01102) and, on a client connection
 * that served a request before (c->keepalives > 0), closes the client
 * connection without an answer, for the client to send the request again
 * (RFC 9112 9.3.1): it passes an error bucket and an EOC and returns OK
 * (500 after a fresh backend connection, which also puts the member in
 * error), so no 502 ever reaches mod_proxy's request_status and the
 * module's retry never sees it. An HTTP/2 stream runs on a secondary
 * connection that mod_http2 gives keepalives 1 ("simulate that we had
 * already a request"), yet its client cannot send the request again: the
 * stream gets the 502. With keepalives 0 for the scheme handler,
 * mod_proxy_http answers such a break as on a client's first request:
 * ap_proxyerror, 502, nothing sent, and sr_retry_allowed takes it (a new
 * connection to the same member first, sr_retry_member). */
typedef struct {
    int reverse;            /* a reverse proxy request (mod_proxy_http's
                               close-the-client path is only for those) */
    int secondary;          /* a stream of a multiplexed client connection
                               (HTTP/2): its conn_rec has a master */
    int keepalives;         /* the client connection's keepalives count, as
                               mod_proxy_http would read it */
    sr_retry_in_t retry;    /* the retry inputs, before the attempt (nothing
                               sent, no member answer yet) */
} sr_stream_break_in_t;

/* Does the scheme handler run with the client connection's keepalives count
 * at 0 (restored when mod_proxy is done)? Yes for a reverse proxy request
 * on a secondary connection whose count is not 0 already, when a 502 would
 * be retried (sr_retry_allowed on in->retry). A request on an HTTP/1.x
 * connection keeps httpd's behaviour: its client may send it again itself,
 * on a new connection. (The glue also hides proxy-initial-not-pooled from
 * mod_proxy_http meanwhile: with keepalives 0 it would take the stream for
 * a client's first request and give it no pooled connection; mod_http2's
 * count 1 never let it apply to a stream.) */
int sr_retry_stream_break_as_502(const sr_stream_break_in_t *in);

/* Can a break come back as a 502 at all, whatever the retry inputs (the
 * first half of sr_retry_stream_break_as_502: a reverse proxy request on a
 * secondary connection whose count is not 0)? The scheme handler asks it
 * first, and gathers the retry inputs (request headers and notes) only
 * when it says yes: an HTTP/1.x request pays nothing for the rule. */
int sr_retry_stream_break_possible(const sr_stream_break_in_t *in);

/* ---- which failures enter the retry decision ------------------------------
 * mod_proxy reports every attempt's status (its request_status hook). The
 * glue gathers:
 *   status      the attempt's HTTP status (502, 503, any other)
 *   done        mod_proxy_http returned DONE: the member broke off in the
 *               middle of the response, or the client went away
 *   ours        the request has our decision state (a finder of ours ran)
 *   decided     ... and it decided a member (a 503 without one is the
 *               finder finding none: left alone)
 *   retried     this request already went to a retry (internal redirect)
 *   subrequest  a subrequest (never retried)
 *   state       its balancer has our state
 * and the verdict is:
 *   done and ours                                   BROKEN_RESPONSE (not a
 *                                                   served request; no retry)
 *   502 / 503, ours, decided, not retried, not a    BROKE / UNREACHED: ask
 *     subrequest, with state                        sr_retry_allowed /
 *                                                   sr_retry_unreached_allowed
 *   anything else                                   NOT
 * (ProxyErrorOverride's own 502 and the request's method and body are the
 * next question's: sr_retry_in_t.) */
typedef enum {
    SR_RETRY_NOT = 0,
    SR_RETRY_BROKEN_RESPONSE,
    SR_RETRY_BROKE,             /* 502: the member broke before answering */
    SR_RETRY_UNREACHED          /* 503: the member was never reached */
} sr_retry_candidate_t;

typedef struct {
    int status;
    unsigned char done;
    unsigned char ours;
    unsigned char decided;
    unsigned char retried;
    unsigned char subrequest;
    unsigned char state;
} sr_retry_status_in_t;

sr_retry_candidate_t sr_retry_candidate(const sr_retry_status_in_t *in);

/* ---- what a retried request inherits from its failed attempt --------------
 * A retry runs as an internal redirect of the failed attempt (same pool).
 * When the attempt went to a retry (retry_issued) on the same balancer
 * (same_balancer), the retry inherits its tried set (the members that
 * failed stay excluded), its retries + 1, its retries after an unreached
 * member, the member it goes to first (retry_same) and the decision it
 * retries (status, issue, first); last_same: it is a retry on the member
 * that broke (retry_same >= 0). Returns 1 when it inherits (out filled;
 * the retry then takes a fresh connection to whichever member serves it),
 * 0 when it starts afresh (out untouched). */
typedef struct {
    int retries;                /* retries before this request */
    int unreached;              /* ... of them after an unreached member */
    int32_t retry_same;         /* the retry goes first to this member */
    int last_same;              /* this request is a retry on the member
                                   that broke */
    sr_status_t status;         /* the decision retried */
    int issue;
    int64_t first;
    sr_tried_t tried;           /* members that failed in this request */
} sr_attempt_t;

int sr_retry_inherit(const sr_attempt_t *prev, int retry_issued,
                     int same_balancer, sr_attempt_t *out);

#endif /* SR_POLICY_RETRY_H */
