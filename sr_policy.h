/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_policy.h - the decisions of mod_sticky_route as pure functions.
 *
 * The glue (mod_sticky_route*.c) builds a plain view of a balancer's
 * members - one sr_member_t per BalancerMember, filled from the worker's
 * shared status - gathers the request's inputs into the structures below,
 * asks these functions once per question, and applies the answer. Nothing
 * here needs an httpd header; everything is unit-tested with check
 * (tests/unit). Definitions: sr_policy.c, sr_policy_request.c (the
 * questions that came out of the glue, issue 18), sr_discover_policy.c.
 *
 * The decision table of one request, in the order a request meets it
 * (docs/DESIGN.md "One request" draws the same path through the glue):
 *
 *   question                                   decided by
 *   no usable member: wait, or 503?            sr_wait_decide
 *   a retry sent back to the member that       sr_decide_retry_same
 *     broke: served there, before any other
 *     rule of the finder?
 *   what the application's session id says    sr_session_read_header,
 *     (StickyRouteSession)                       sr_session_read_url
 *   what the cookies say                       sr_cookie_read_header
 *     (inside: lifetimes, overload)              (sr_cookie_age,
 *                                                 sr_member_overloaded)
 *   lbmethod=sticky: serve, elect or refuse    sr_decide_sticky
 *   how the election goes: by the key, by      sr_elect_way
 *     load, by the schedule's turn (a
 *     rebalanced client goes by load)
 *   may the schedule's member serve            sr_elect_check,
 *                                              sr_elect_leastbusy
 *   after that verdict: serve, next ticket,    sr_elect_then
 *     rescan, or give up
 *   the Set-Cookie before the member answers   sr_cookie_early
 *     (an upgrade)?
 *   an HTTP/2 stream: does a broken pooled     sr_retry_stream_break_as_502
 *     connection come back as a 502 to
 *     retry?
 *   the response leaves: is our cookie due;    sr_cookie_due,
 *     does it go out, or does the member's     sr_cookie_issue
 *     own cookie stand (warned once)?
 *   the member broke or was not reached:       sr_retry_allowed,
 *     retry, and on which member                 sr_retry_unreached_allowed,
 *                                                sr_retry_member
 *   the request ends: is its decision counted  sr_count_decision
 *
 * Beside requests, at each scan of a balancer:
 *   sr_route_choose      the route a member is known by
 *   sr_policy_takers     the members that take new sessions (and requests
 *                        of lbmethod=roundrobin)
 *   sr_slowstart_note    slow start: a member noted down, or back up
 *   sr_slowstart_member  its weight while it ramps up, and when to look
 *                        again (over sr_slowstart_weight, _ramping,
 *                        _rescan)
 * lbmethod=hash's key -> member map: sr_hash.h. Discovery's decisions:
 * sr_discover_policy.c (declared further down).
 */
#ifndef SR_POLICY_H
#define SR_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include "apr_pools.h"
#include "sr_core.h"

/* ---- the view of one member ------------------------------------------ */

typedef struct {
    const char *route;      /* the route the member is known by */
    int32_t redirect;       /* member that redirect= names, -1: none */
    int lbset;              /* lbset= */
    uint32_t weight;        /* loadfactor= (times SR_WEIGHT_SCALE and
                               ramped while in slow start), at least 1 */
    const volatile uint32_t *inflight;  /* requests it serves now, across
                               every process (shared memory); NULL: 0 */
    unsigned char usable;   /* up: not in error, not disabled, not stopped
                               (after its ap_proxy_retry_worker chance) */
    unsigned char draining; /* status +N */
    unsigned char standby;  /* hot standby, status +H */
    unsigned char spare;    /* hot spare, status +R */
    unsigned char ramping;  /* in slow start: weight is still below its
                               full value (sr_slowstart_ramping) */
} sr_member_t;

/* A member that may take a new session: usable and not draining. */
static inline int sr_member_takes_new(const sr_member_t *m)
{
    return m->usable && !m->draining;
}

/* ---- the members already tried in one request --------------------------
 * A set of member numbers of any size (a bitmap), allocated from the
 * request's pool by the first sr_tried_add (most requests never need it).
 * Members that failed in this request are in it. */
typedef struct {
    uint32_t capacity;      /* member numbers 0 .. capacity-1 */
    uint32_t count;         /* distinct members in the set */
    unsigned char *bits;    /* NULL while empty */
} sr_tried_t;

static inline void sr_tried_init(sr_tried_t *t, uint32_t capacity)
{
    t->capacity = capacity;
    t->count = 0;
    t->bits = NULL;
}

static inline int sr_tried_has(const sr_tried_t *t, uint32_t member)
{
    return t && t->bits && member < t->capacity
        && (t->bits[member / 8] & (1u << (member % 8)));
}

/* Adds member (ignored when out of range or already there). */
void sr_tried_add(apr_pool_t *p, sr_tried_t *t, uint32_t member);

/* ---- routes --------------------------------------------------------------- */

typedef enum {
    SR_ROUTE_CONFIGURED = 0,    /* route= as given */
    SR_ROUTE_DERIVED,           /* no route=: derived from the member URL */
    SR_ROUTE_DERIVED_INVALID,   /* route= a cookie cannot carry: derived */
    SR_ROUTE_DERIVED_DUPLICATE  /* route= of an earlier member: derived */
} sr_route_origin_t;

const char *sr_route_origin_name(sr_route_origin_t origin);

/* The route member `member` is known by, written to out (SR_ROUTE_MAX + 1
 * bytes): its configured route when that is a valid cookie route that no
 * earlier member (already in ix) uses, else the route derived from its URL
 * with key (a derived route an earlier member uses is kept: the URLs
 * differ, so only a hash collision could do it, and the index then finds
 * the earlier member). The caller inserts the member into ix afterwards.
 * The same members in the same order give the same routes in every
 * process and on every proxy with the same key. */
sr_route_origin_t sr_route_choose(char *out, const char *configured,
                                  const char *member_url, const sr_key_t *key,
                                  const sr_route_index_t *ix,
                                  const char *const *routes);

/* ---- who takes new sessions ------------------------------------------------
 * mod_proxy_balancer's own rule (ap_proxy_balancer_get_best_worker): lbsets
 * in ascending order; in the first lbset that yields anybody, its usable
 * members that are neither hot spare nor hot standby nor draining, plus as
 * many usable hot spares (in member order) as it has regular members that
 * are unusable or draining; when that is nobody, its usable hot standbys.
 * Writes member numbers and weights (capacity n each); *from_standby is
 * set when the takers are hot standbys. Returns how many there are. */
uint32_t sr_policy_takers(const sr_member_t *m, uint32_t n, uint16_t *out,
                          uint32_t *weights, int *from_standby);

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

/* ---- election ------------------------------------------------------------------ */

typedef enum {
    SR_ELECT_OK = 0,        /* the slot's member serves */
    SR_ELECT_TRIED,         /* it failed in this request: next ticket */
    SR_ELECT_STALE,         /* it no longer takes new sessions: the
                               schedule is out of date, rebuild it */
    SR_ELECT_NONE           /* every scheduled member failed already */
} sr_elect_t;

/* Election by load (StickyRouteElect leastbusy): among the schedule's
 * members that take new sessions and were not tried, the least loaded
 * ((in-flight requests + 1) per weight: the load with this request); ties
 * go to the first of them in the schedule from slot ticket on, so idle
 * members split new sessions exactly like the round robin.
 *
 * A member in slow start (ramping) is elected on its own turns of the
 * schedule only - the schedule carries its ramped weight - and never for
 * its load: a member that comes back has no sessions, so its in-flight
 * count stays far below its ramped weight's part, and going by load would
 * hand it a multiple of the ramp's share of new sessions (measured: 0.31
 * of them against a ramp of 0.21-0.23, 68 where the ramp gives 48). Its
 * share of new sessions is thus at most the ramp's; the other tickets go
 * by load among the members at full weight (the ramping ones only when no
 * other member is left). Example: a b c at full weight, d ramped to a
 * quarter (schedule a b c d a b c a b c a b c): d takes 1 ticket in 13, the
 * 12 others go to the least busy of a b c. O(members + schedule length). */
sr_elect_t sr_elect_leastbusy(const sr_schedule_t *s, uint64_t ticket,
                              const sr_member_t *m, uint32_t n,
                              const sr_tried_t *tried, int32_t *member);

/* ---- slow start -------------------------------------------------------------------
 * A member that joined or came back `elapsed` ago takes new sessions with
 * weight * elapsed / ramp (at least 1), the full weight after ramp. Weights
 * are scaled by SR_WEIGHT_SCALE while slow start is configured so that the
 * ramp has steps finer than the loadfactors. */
#define SR_WEIGHT_SCALE 1000

uint32_t sr_slowstart_weight(uint32_t weight, int64_t elapsed, int64_t ramp);
/* The share of its weight a member has now, 0.0 .. 1.0. */
double sr_slowstart_share(int64_t elapsed, int64_t ramp);
/* Is a member `elapsed` into a ramp of `ramp` still below its full weight? */
int sr_slowstart_ramping(int64_t elapsed, int64_t ramp);

/* When the weights must be computed again (the schedule rebuilt), for a
 * member `elapsed` into its ramp, a process that otherwise looks every
 * `interval`: a weight is as old as the last look, and a ramp followed
 * once a second lags it by a whole second (the first second of a member
 * that comes back at weight ~0). While a member ramps, every
 * ramp / SR_SLOWSTART_STEPS (the weight then lags the ramp by at most
 * 1/SR_SLOWSTART_STEPS of the full weight; never ahead of it), at the
 * ramp's end, but not more often than interval / SR_SLOWSTART_STEPS.
 * Example, interval 1 s: ramp 10 s: every 0.5 s, the last look at 10 s;
 * ramp 60 s: every 1 s (the interval). Not ramping: interval. All times
 * in one unit. */
#define SR_SLOWSTART_STEPS 20
int64_t sr_slowstart_rescan(int64_t elapsed, int64_t ramp, int64_t interval);

/* What a scan notes in a member's shared entry (one per member, seen by
 * every process), so that every process ramps it from the same moment:
 *
 *   it takes no new sessions (unusable, draining), not noted down    DOWN
 *   it takes new sessions again, noted down                          UP
 *   otherwise                                                        KEEP
 *
 * DOWN: set the entry's down flag. UP: clear it; the one process whose
 * compare-and-swap clears it notes up_since = now (the ramp starts). */
typedef enum {
    SR_SLOWSTART_KEEP = 0,
    SR_SLOWSTART_DOWN,
    SR_SLOWSTART_UP
} sr_slowstart_note_t;

sr_slowstart_note_t sr_slowstart_note(int takes_new, int noted_down);

typedef struct {
    uint32_t weight;        /* loadfactor=; 0 counts as 1 */
    int64_t ramp;           /* StickyRouteSlowStart; 0: off */
    int takes_new;          /* usable and not draining (sr_member_takes_new) */
    int64_t up_since;       /* when it joined or came back; 0: long ago */
    int64_t now;
    int64_t interval;       /* how often the process looks otherwise */
} sr_slowstart_in_t;

typedef struct {
    uint32_t weight;        /* for the schedule */
    int ramping;            /* still below its full weight (sr_member_t) */
    int64_t rescan;         /* look again within this (sr_slowstart_rescan) */
} sr_slowstart_out_t;

/* A member's weight at a scan. Slow start off: its loadfactor as it is
 * (unscaled), not ramping, rescan = interval. On: sr_slowstart_weight of
 * the time since up_since (0: long ago, the full weight); a member that
 * takes new sessions is ramping while below its full weight and asks for
 * the rescan its ramp needs; one that takes none is never ramping and asks
 * for nothing sooner than the interval (it is in no schedule). All times
 * in one unit. */
void sr_slowstart_member(const sr_slowstart_in_t *in, sr_slowstart_out_t *out);

/* Has every member of the schedule been tried? */
int sr_schedule_exhausted(const sr_schedule_t *s, const sr_tried_t *tried);

/* Election walks the shared ticket over the schedule (sr_schedule_t): the
 * member at schedule[ticket % len] serves when it still takes new sessions
 * and has not failed in this request. The retry bound counts distinct
 * members: NONE once every member of the schedule was tried. (inline: it
 * runs for every election, in the finder's fast path) */
static inline sr_elect_t sr_elect_check(const sr_schedule_t *s,
                                        uint64_t ticket,
                                        const sr_member_t *m, uint32_t n,
                                        const sr_tried_t *tried,
                                        int32_t *member)
{
    uint16_t k;

    *member = -1;
    if (s->len == 0) {
        return SR_ELECT_NONE;
    }
    k = sr_schedule_at(s, ticket);
    if (k >= n || !sr_member_takes_new(&m[k])) {
        return SR_ELECT_STALE;
    }
    if (sr_tried_has(tried, k)) {
        return sr_schedule_exhausted(s, tried) ? SR_ELECT_NONE
                                               : SR_ELECT_TRIED;
    }
    *member = k;
    return SR_ELECT_OK;
}

/* How a finder elects (StickyRouteElect roundrobin|leastbusy|hash, the
 * lbmethod, the sticky decision's status):
 *
 *   lbmethod    StickyRouteElect  status      key first  key's none:   schedule
 *                                                        schedule?     by load?
 *   sticky      roundrobin        any         no         -             no
 *   sticky      leastbusy         any         no         -             yes
 *   sticky      hash              not rebal.  yes        yes           no
 *   sticky      any               rebalanced  no         -             yes
 *   roundrobin  leastbusy         -           no         -             yes
 *   roundrobin  roundrobin, hash  -           no         -             no
 *   hash        leastbusy         -           yes        no (503)      yes
 *   hash        roundrobin, hash  -           yes        no (503)      no
 *
 * A rebalanced client (StickyRouteRebalance) goes by load whatever the
 * election, never by its key: its key would name the overloaded member it
 * is moved from. An empty key is always placed by the schedule (decision
 * roundrobin under lbmethod=hash). "By load" is sr_elect_leastbusy, else
 * the schedule's turn, sr_elect_check. (inline: every election asks it) */
typedef enum {
    SR_ELECT_ROUNDROBIN = 0,
    SR_ELECT_LEASTBUSY,
    SR_ELECT_HASH                   /* by the request key (sr_hash.h) */
} sr_elect_mode_t;

typedef enum {
    SR_LB_STICKY = 0,
    SR_LB_ROUNDROBIN,
    SR_LB_HASH
} sr_lbmethod_t;

typedef struct {
    unsigned char by_key;           /* the key's member first */
    unsigned char key_none_schedule;/* the key's member is none: the
                                       schedule (else no member) */
    unsigned char by_load;          /* the schedule's election by load */
} sr_elect_way_t;

static inline sr_elect_way_t sr_elect_way(sr_lbmethod_t lb,
                                          sr_elect_mode_t mode,
                                          sr_status_t status)
{
    sr_elect_way_t w;
    int rebalanced = lb == SR_LB_STICKY && status == SR_STATUS_REBALANCED;

    w.by_key = lb == SR_LB_HASH
               || (lb == SR_LB_STICKY && mode == SR_ELECT_HASH && !rebalanced);
    w.key_none_schedule = lb == SR_LB_STICKY;
    w.by_load = mode == SR_ELECT_LEASTBUSY || rebalanced;
    return w;
}

/* What an election does after a verdict (sr_elect_check or
 * sr_elect_leastbusy), having taken `tickets` tickets and rescanned
 * `rescans` times so far:
 *
 *   OK                                          SERVE
 *   TRIED: at most len + 1 tickets taken        NEXT (another ticket)
 *          more                                 GIVE_UP
 *   STALE: fewer than SR_ELECT_RESCANS rescans  RESCAN (same ticket)
 *          as many                              GIVE_UP
 *   NONE:  an empty schedule, no rescan yet     RESCAN (nobody took new
 *                                               sessions at the last scan:
 *                                               look again once)
 *          otherwise                            GIVE_UP
 *
 * len: the schedule's length now. The caller counts a RESCAN in rescans.
 * (inline: every election asks it) */
#define SR_ELECT_RESCANS 2

typedef enum {
    SR_ELECT_GO_SERVE = 0,
    SR_ELECT_GO_NEXT,
    SR_ELECT_GO_RESCAN,
    SR_ELECT_GO_GIVE_UP
} sr_elect_go_t;

static inline sr_elect_go_t sr_elect_then(sr_elect_t verdict, uint32_t len,
                                          uint32_t tickets, uint32_t rescans)
{
    switch (verdict) {
    case SR_ELECT_OK:
        return SR_ELECT_GO_SERVE;
    case SR_ELECT_TRIED:
        return tickets > len + 1 ? SR_ELECT_GO_GIVE_UP : SR_ELECT_GO_NEXT;
    case SR_ELECT_STALE:
        return rescans >= SR_ELECT_RESCANS ? SR_ELECT_GO_GIVE_UP
                                           : SR_ELECT_GO_RESCAN;
    case SR_ELECT_NONE:
    default:
        return len == 0 && rescans < 1 ? SR_ELECT_GO_RESCAN
                                       : SR_ELECT_GO_GIVE_UP;
    }
}

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

/* ---- waiting for a usable member (StickyRouteWait) -------------------------
 * A request to a balancer none of whose members is usable (a discovered
 * pool still empty, a single replica between its old and new task, every
 * member disabled) waits for one, looking again every SR_WAIT_STEP, instead
 * of failing at once. It asks sr_wait_decide before it waits and after each
 * step:
 *
 *   a member is usable, or waiting is off        GO (proceed as usual)
 *   mod_proxy_balancer will force the recovery   GO (its forcerecovery: every
 *     of members that are merely in error           member in error is retried
 *                                                   at once, as without us)
 *   the process is stopping                      STOPPING (503 now)
 *   not waiting yet, max= others wait already    REFUSE (503 now)
 *   waited the limit                             TIMEOUT (503 now)
 *   otherwise                                    SLEEP (the rest of the limit,
 *                                                   at most SR_WAIT_STEP)
 *
 * Example, StickyRouteWait 2 max=1, no member usable: request A is alone
 * -> SLEEP 50 ms, ... ; request B meanwhile (others 1 >= max 1) -> REFUSE;
 * a member becomes usable at 0.8 s -> A's next look: GO; had none come,
 * A's look at 2 s -> TIMEOUT. A 503 carries Retry-After: the limit in whole
 * seconds (at least 1), or 1 when the process is stopping (another process
 * or replica takes over). Times in microseconds. */
#define SR_WAIT_STEP 50000          /* 50 ms */

typedef enum {
    SR_WAIT_GO = 0,
    SR_WAIT_SLEEP,
    SR_WAIT_REFUSE,         /* no place left to wait (max=) */
    SR_WAIT_TIMEOUT,        /* waited the limit */
    SR_WAIT_STOPPING        /* the process is stopping */
} sr_wait_verdict_t;

typedef struct {
    int64_t limit;          /* StickyRouteWait; 0: off */
    uint32_t max;           /* requests of the process that may wait at once */
    uint32_t usable;        /* members usable now */
    int forced_recovery;    /* mod_proxy_balancer will force the recovery of
                               members in error, and that makes one usable */
    int waiting;            /* this request holds a place already */
    uint32_t others;        /* places other requests of the process hold */
    int64_t waited;         /* how long this request has waited so far */
    int stopping;           /* the process is stopping (graceful stop or
                               restart) */
} sr_wait_in_t;

/* The verdict; *sleep (SLEEP: how long) and *retry_after (REFUSE, TIMEOUT,
 * STOPPING: seconds for the Retry-After header) are set with it. */
sr_wait_verdict_t sr_wait_decide(const sr_wait_in_t *in, int64_t *sleep,
                                 uint32_t *retry_after);

/* ---- discovery (StickyRouteDiscover) ------------------------------------------
 * Every interval the name is resolved again and the discovered members (the
 * slots discovery owns) are compared with the addresses it resolves to now:
 *
 *   a member whose address is in the answer        stays, or is ENABLEd again
 *                                                  (its address came back);
 *   a member whose address left the answer         is DISABLEd at once (its
 *                                                  clients fail over once) and
 *                                                  held: its slot stays its
 *                                                  own for hold microseconds;
 *   a member being rewritten for a new address     SETTLEs (stopped, so that
 *                                                  every child process sees
 *                                                  its new address first), then
 *                                                  is ENABLEd;
 *   an address without a member                    takes a never-used slot
 *                                                  (ADD), else the slot of the
 *                                                  member gone longest past its
 *                                                  hold (REUSE), else gets
 *                                                  none (NO_SLOT: counted).
 *
 * Example, hold 10 s, slots A B free, now t=100 s: have A=10.0.0.1 (in the
 * answer) B=10.0.0.2 (gone since t=85); want 10.0.0.1, 10.0.0.3 -> A KEEP,
 * B REUSE for 10.0.0.3 (gone 15 s > 10 s). Had B gone at t=95, 10.0.0.3
 * would be NO_SLOT until t=105.
 *
 * No answer (want NULL: a DNS failure) changes nothing: a DNS outage never
 * empties the pool; an empty answer (want not NULL, nwant 0: the name is
 * gone) disables every member. Addresses are assumed distinct; the plan is
 * a pure function of its inputs (times in microseconds). */
typedef enum {
    SR_DISC_KEEP = 0,
    SR_DISC_ADD,            /* want[j]: a new member in a never-used slot */
    SR_DISC_ENABLE,         /* have[i]: its address is back, or it settled */
    SR_DISC_DISABLE,        /* have[i]: its address left the answer */
    SR_DISC_NO_SLOT,        /* want[j]: no slot for it now */
    SR_DISC_REUSE,          /* have[i]: its slot goes to want[target[i]];
                               want[j]: it takes a reused slot */
    SR_DISC_SETTLE          /* have[i]: rewritten, not yet enabled */
} sr_disc_action_t;

typedef struct {
    const char *addr;       /* the member's address, as the resolver gives it */
    int enabled;            /* not disabled by discovery */
    int64_t gone_since;     /* when its address left the answer; 0: it is in
                               the answer (or was never seen to leave) */
    int64_t settle_until;   /* rewritten for a new address: enabled from this
                               time on; 0: not settling */
} sr_disc_member_t;

typedef struct {
    uint32_t add, enable, disable, no_slot, reuse, held, settling;
    uint32_t members;       /* members with an address in the answer after
                               the plan (enabled, or settling) */
} sr_disc_counts_t;

/* have_action[i] (and have_target[i] for REUSE) for each member,
 * want_action[j] for each address. free_slots: never-used slots. */
void sr_discover_plan(const sr_disc_member_t *have, uint32_t nhave,
                      const char *const *want, uint32_t nwant,
                      uint32_t free_slots, int64_t now, int64_t hold,
                      sr_disc_action_t *have_action, uint32_t *have_target,
                      sr_disc_action_t *want_action, sr_disc_counts_t *counts);

/* Whether a "beyond max=" warning is due: at every interval in which
 * addresses are left without a slot, at most once per period (the first
 * at once). last: when it was last given, 0: never. */
int sr_discover_warn_due(uint32_t unplaced, int64_t now, int64_t last,
                         int64_t period);

/* SRV records as members (RFC 2782): the lowest priority takes traffic
 * (lbset 0), each higher distinct priority is the next lbset (used only
 * when every member of the lower ones is unusable); weights become load
 * factors: as they are when none is over 100 (0 counts as 1), else scaled
 * so that the largest is 100 (at least 1 each).
 * Example: priorities 10 10 20, weights 5 0 300 -> lbsets 0 0 1, load
 * factors 2 1 100 (scaled: 5*100/300 rounds to 2, 0 -> 1). */
void sr_srv_shape(const uint16_t *priority, const uint16_t *weight,
                  uint32_t n, int *lbset, int *lbfactor);

/* When the next resolution is due, in microseconds from now: with a fixed
 * interval, that interval; with interval=ttl, the answer's shortest TTL
 * (seconds) clamped to [SR_TTL_MIN, SR_TTL_MAX] (and SR_TTL_RETRY after a
 * failure or an answer without records). */
#define SR_TTL_MIN   1
#define SR_TTL_MAX   300
#define SR_TTL_RETRY 5
int64_t sr_discover_next(int ttl_mode, int64_t interval, uint32_t min_ttl,
                         int answered);

/* ---- in-flight accounting: kept only when something reads it ----------------
 * Each member's in-flight count (shared memory, from the decision to the
 * end of the request, sr_inflight_move) costs every request an atomic add
 * and its release. It is kept for a balancer only when one of its
 * settings reads the counts, or when the gauge is asked for:
 *
 *   StickyRouteElect leastbusy     election by load (sr_elect_leastbusy)
 *   StickyRouteRebalance IDLE      a member's load against the mean
 *                                  (sr_member_overloaded); a rebalanced
 *                                  client is elected by load
 *   StickyRouteHashBalance FACTOR  bounded loads (sr_hash_within_bound)
 *
 *   StickyRouteInflight  a setting reads the counts   accounting
 *   not set              no                           off
 *   not set              yes                          on
 *   On                   either                       on
 *   Off                  no                           off
 *   Off                  yes                          refused (apache2 -t
 *                                                     names that setting)
 *
 * The settings, not the lbmethod, decide: balancer-manager may switch a
 * balancer's lbmethod at run time, the settings stay. Decided once per
 * balancer (sr_effective), never per request. */
typedef struct {
    sr_elect_mode_t elect;          /* StickyRouteElect */
    long rebalance_idle;            /* StickyRouteRebalance, 0: off */
    uint32_t hash_balance;          /* StickyRouteHashBalance x 100, 0: off */
    int inflight;                   /* StickyRouteInflight: 1 On, 0 Off,
                                       -1 not set */
} sr_inflight_in_t;

typedef enum {
    SR_INFLIGHT_OFF = 0,
    SR_INFLIGHT_ON = 1,
    SR_INFLIGHT_REFUSED = -1        /* Off, while *needed_by reads it */
} sr_inflight_t;

/* *needed_by (when not NULL): the first setting above that reads the
 * counts ("StickyRouteElect leastbusy", ...), NULL: none. */
sr_inflight_t sr_inflight_accounting(const sr_inflight_in_t *in,
                                     const char **needed_by);

/* ---- health checks of discovered members (issue 15, design R) -------------
 * StickyRouteDiscover's hc* parameters are checked by the module itself
 * (mod_sticky_route_hc.c), at each member's current address, instead of by
 * mod_proxy_hcheck. The decisions, as mod_proxy_hcheck makes them except
 * that passes and fails are counted consecutively: */

/* Whether a member's next check is due: none of its checks is in flight and
 * the last one started at least interval ago (last 0: never checked, or its
 * slot was given to another address since).
 * Example: last 10 s, interval 5 s: due from 15 s on, not at 14.9 s; never
 * while one is in flight. */
int sr_hc_due(int64_t now, int64_t last, int64_t interval, int in_flight);

typedef enum {
    SR_HC_KEEP = 0,         /* the flags stay as they are */
    SR_HC_SET,              /* down: set the health-check failure flag */
    SR_HC_CLEAR             /* up: clear it (and the in-error flag) */
} sr_hc_verdict_t;

/* One check's outcome counted. down: the member has the health-check
 * failure flag or is in error now; passed: this check passed. *pcount and
 * *fcount are the member's consecutive passes (while down) and fails (while
 * up); passes / fails the thresholds (hcpasses=, hcfails=; 0 acts as 1).
 * A member up: a fail counts (a pass resets the count), the fails-th in a
 * row sets the flag. A member down: a pass counts (a fail resets it), the
 * passes-th in a row clears the flag. Both counts restart at every verdict.
 * Example: fails=2, up: fail (1), pass (0), fail (1), fail -> SR_HC_SET. */
sr_hc_verdict_t sr_hc_count(int down, int passed, int *pcount, int *fcount,
                            int passes, int fails);

/* The status of an HTTP response that starts with buf[0..len): 100-999
 * when buf holds a whole status line "HTTP/1.x NNN ..." (ended by LF), 0
 * when more bytes are needed, -1 when it is not an HTTP/1.x response. */
int sr_hc_status(const char *buf, size_t len);

/* After a response's head (buf[0..len) holds it from its status line on):
 * -1 while its end (an empty line) is not in buf; else the number of body
 * bytes still to read after buf: 0 for a HEAD request, a 1xx, 204 or 304
 * status, or a body that is not delimited by a Content-Length (chunked, or
 * read to the connection's end: the check does not wait for it), else
 * Content-Length minus the body bytes already in buf (at least 0). */
long sr_hc_body_left(const char *buf, size_t len, int head, int status);

/* A check passes on a 2xx or 3xx status (mod_proxy_hcheck's default). */
int sr_hc_status_passes(int status);

/* The check request: "METHOD URI HTTP/1.x" (OPTIONS: "OPTIONS *"; uri
 * NULL or empty: "/"), Host (an IPv6 address in brackets), and
 * "Connection: close" (the check reads to the end of the response). Into
 * out[cap]; returns its length, or 0 when it does not fit. */
size_t sr_hc_request(char *out, size_t cap, const char *method,
                     const char *uri, int http11, const char *host,
                     unsigned port);

#endif /* SR_POLICY_H */
