/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_policy_sticky.h - what the cookies say, the sticky decision, the
 * response's Set-Cookie and what the end of a request counts; part of
 * sr_policy.h (include that one; the decision table of a request is its
 * opening comment).
 */
#ifndef SR_POLICY_STICKY_H
#define SR_POLICY_STICKY_H

#include "sr_policy_member.h"

/* ---- what the cookies say --------------------------------------------------- */

typedef enum {
    SR_FORM_NATIVE = 0,     /* "route" or "route.TAG": ours            */
    SR_FORM_STOCK,          /* ".route": the stock recipe's, migrated   */
    SR_FORM_FOREIGN         /* "session.route": somebody's session id   */
} sr_cookie_form_t;

typedef struct {
    int32_t member;         /* the member named, -1: none */
    sr_cookie_form_t form;  /* how the value naming it was written */
    sr_status_t absent;     /* when member < 0: NEW, UNKNOWN or FORGED */
    int foreign;            /* a "session.route" value was present: the
                               cookie is not ours to (re)write */
    int seen;               /* values of the name looked at */
    int dated;              /* the value naming the member carries dates */
    int64_t first, last;    /* its dates (unix seconds) */
    int32_t app_member;     /* member an application session id names
                               (StickyRouteSession), -1: none */
} sr_cookie_read_t;

typedef struct {
    const char *name;               /* cookie name */
    const sr_key_t *tag_key;        /* NULL: unsigned cookies */
    int legacy_ok;                  /* stock recipe values accepted */
    const char *balancer;           /* full balancer name (tags cover it) */
    const sr_route_index_t *index;  /* route -> member */
    const char *const *routes;
    int32_t nmembers;               /* members the index may return */
} sr_cookie_ctx_t;

static inline void sr_cookie_read_init(sr_cookie_read_t *out)
{
    out->member = -1;
    out->form = SR_FORM_NATIVE;
    out->absent = SR_STATUS_NEW;
    out->foreign = 0;
    out->seen = 0;
    out->dated = 0;
    out->first = out->last = 0;
    out->app_member = -1;
}

/* One Cookie header: the first value of the name that verifies and names
 * a member wins; otherwise the strongest complaint stays (forged over
 * unknown over new). At most SR_COOKIES_MAX values per request are looked
 * at. Returns 1 once a member was found (later headers need not be read). */
int sr_cookie_read_header(sr_cookie_read_t *out, const sr_cookie_ctx_t *ctx,
                          const char *header);

/* ---- the application's session id (StickyRouteSession) -------------------
 * An application's own session cookie or URL parameter "ID.route" (Tomcat's
 * jvmRoute style) pins the client too: its route, the part after the last
 * '.' (sr_session_route), names a member through ctx's route index. A value
 * longer than SR_VALUE_MAX, without a valid route or naming no member of the
 * first ctx->nmembers is passed over. The cookie comes first: in each
 * Cookie header, the first of at most SR_COOKIES_MAX values of the cookie
 * `name` that names a member; the URL parameter (path ";param=" first, then
 * the query) only when no cookie did. Each sets out->app_member (left as it
 * is otherwise) and returns 1 when it names a member (the reader stops). */
int sr_session_read_header(sr_cookie_read_t *out, const sr_cookie_ctx_t *ctx,
                           const char *name, const char *header);
int sr_session_read_url(sr_cookie_read_t *out, const sr_cookie_ctx_t *ctx,
                        const char *param, const char *path, const char *args);

/* ---- lifetimes ----------------------------------------------------------------
 * With MaxIdle=, MaxLife= or StickyRouteRebalance the cookie carries two
 * dates, FIRST (pinned) and LAST (refreshed), in unix seconds. LAST is
 * refreshed only when it is at least the refresh step R old, R = a quarter
 * of the shortest idle window (at least 1 s), so a client's LAST lags its
 * last request by less than R: a cookie idle for more than MaxIdle + R
 * belongs to a client certainly idle for more than MaxIdle, and a client
 * active more often than every MaxIdle seconds never expires. Dates more
 * than SR_CLOCK_SKEW seconds in the future (another proxy's clock, or a
 * made-up cookie) count as expired. */
#define SR_CLOCK_SKEW 60

typedef struct {
    long max_idle;          /* MaxIdle=, 0: none */
    long max_life;          /* MaxLife=, 0: none */
    long rebalance_idle;    /* StickyRouteRebalance IDLE_SECONDS, 0: off */
    uint32_t rebalance_factor;  /* FACTOR x 100 (125 = 1.25) */
    long refresh;           /* R, from sr_refresh_step */
} sr_lifetime_t;

/* Do cookies carry dates? */
static inline int sr_lifetime_dated(const sr_lifetime_t *lt)
{
    return lt && (lt->max_idle > 0 || lt->max_life > 0
                  || lt->rebalance_idle > 0);
}

/* R: a quarter of the shortest of MaxIdle and the rebalance idle time that
 * are set, at least 1 s; 0 when neither is (dates never refreshed). */
long sr_refresh_step(long max_idle, long rebalance_idle);

typedef enum {
    SR_AGE_FRESH = 0,       /* as it is */
    SR_AGE_REFRESH,         /* valid; give it a new LAST (or dates) */
    SR_AGE_EXPIRED          /* past MaxIdle/MaxLife, or dates from the
                               future */
} sr_age_t;

sr_age_t sr_cookie_age(const sr_lifetime_t *lt, int dated, int64_t first,
                       int64_t last, int64_t now);

/* Is member k's load (in-flight requests per weight) more than factor/100
 * times the mean load of the usable members? */
int sr_member_overloaded(const sr_member_t *m, uint32_t n, uint32_t k,
                         uint32_t factor_x100);

/* ---- the sticky decision ------------------------------------------------------ */

typedef enum {
    SR_ACT_SERVE = 0,       /* serve on decision->member */
    SR_ACT_ELECT,           /* elect a member (sr_elect_check) */
    SR_ACT_REFUSE           /* no member: 503 (nofailover) */
} sr_action_t;

typedef struct {
    sr_action_t action;
    int32_t member;         /* SR_ACT_SERVE: who serves */
    sr_status_t status;     /* hit, new, failover, unknown, forged,
                               expired, rebalanced */
    int issue;              /* a Set-Cookie names the member that serves */
    int64_t first;          /* when the cookie carries dates: its FIRST
                               (the session's, or now for a new one) */
    const char *why;        /* one phrase for the debug log */
} sr_decision_t;

/* What the sticky decision needs besides the members and the cookie. */
typedef struct {
    int from_standby;       /* the takers are hot standbys */
    int nofailover;         /* nofailover=On */
    int64_t now;            /* unix seconds */
    const sr_lifetime_t *lifetime;  /* NULL: no dates */
} sr_sticky_in_t;

/* The decision table of lbmethod=sticky (README "What lbmethod=sticky
 * decides"):
 *
 *   cookie names a usable member          serve there       hit
 *     (a hot standby only while the takers are hot standbys; a stock
 *      recipe ".route" value is re-issued in the native format)
 *   it names a member that is unusable,
 *   or that failed in this request        its redirect= member when that
 *                                         is usable and untried: failover;
 *                                         nofailover: refuse; else elect,
 *                                         failover
 *   it names a hot standby while regular
 *   members take new sessions             elect             failover
 *   it names no member / malformed        elect             unknown
 *   tag missing or wrong (secret set)     elect             forged
 *   no cookie                             elect             new
 *   the cookie's dates are past MaxIdle/
 *   MaxLife (or in the future)            elect             expired
 *   idle at least the rebalance time and
 *   its member overloaded (StickyRoute-
 *   Rebalance)                            elect             rebalanced
 *   an application session id (Sticky-
 *   RouteSession) names a usable member   serve there       hit, no cookie
 *   it names an unusable one              the member our own cookie names
 *                                         if usable, else elect: failover
 *
 * A cookie is issued whenever the member that serves is not the one the
 * cookie names (and for stock recipe values), never when the request
 * carries a "session.route" value (somebody else's session id).
 * m[c->member] must describe the member as it is now (the caller gives
 * an unusable member its retry chance first). */
void sr_decide_sticky(const sr_member_t *m, uint32_t n,
                      const sr_cookie_read_t *c, const sr_tried_t *tried,
                      const sr_sticky_in_t *in, sr_decision_t *d);

/* ---- when the Set-Cookie goes out ---------------------------------------- */

/* Does the cookie go into the response headers before the request is sent
 * to the member (1), or from the output filter once the response is known
 * (0)? Early for a protocol upgrade (a Connection field naming the token
 * "upgrade", case-insensitive, among others, and a non-empty Upgrade field:
 * WebSocket): mod_proxy_http sends the member's 101 as an interim response,
 * which passes no output filter, with the headers the request had before
 * plus the member's (it keeps Set-Cookie fields set before the member
 * answered). The filter takes an early cookie back when the member answers
 * with a final response instead, and applies its usual rules. */
int sr_cookie_early(const char *connection, const char *upgrade);

/* The output filter, as the response leaves: is our Set-Cookie due? Yes
 * when the last decision issues one (issue), its value was prepared, a
 * member serves (decided: not undone by a later decision that found none),
 * and the response is not httpd's own error page (error_response: an error
 * httpd made itself, e.g. the 503 of no member, pins nobody). */
int sr_cookie_due(int issue, int prepared, int decided, int error_response);

/* A due cookie goes out (ADD) unless the member's response sets a cookie
 * of the same name and path itself (member_sets: sr_set_cookie_sets over
 * its Set-Cookie fields): an application's cookie is never replaced, the
 * member's stands (MEMBERS), and the configuration mistake is logged once
 * per balancer across processes and restarts (MEMBERS_WARN while not yet
 * warned; the caller's compare-and-swap picks the one process that
 * logs). */
typedef enum {
    SR_ISSUE_ADD = 0,
    SR_ISSUE_MEMBERS,
    SR_ISSUE_MEMBERS_WARN
} sr_issue_t;

sr_issue_t sr_cookie_issue(int member_sets, int warned);

/* ---- what the end of a request counts (log_transaction) -------------------
 * The decision of the request that produced the response (the last of an
 * internal redirect chain) counts once for its member, under its status,
 * when: a member was decided and has a counter (decided), httpd did not
 * answer with its own error page, the response was not cut off (broken:
 * the member broke off in the middle, or the client went away), a response
 * left (sent_body: r->sent_bodyct; mod_proxy_http closes a reused client
 * connection without one when a pooled backend connection breaks, for the
 * client to retry) and the status is a known one. */
typedef struct {
    int decided;
    int error_response;
    int broken;
    int sent_body;
    sr_status_t status;
} sr_count_in_t;

int sr_count_decision(const sr_count_in_t *in);

#endif /* SR_POLICY_STICKY_H */
