/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_private.h - what the glue files share.
 *
 *   mod_sticky_route.c         module record, hooks, startup checks and
 *                              preparation (derived routes, shared slots);
 *                              nothing calls into it
 *   mod_sticky_route_config.c  directives and the settings of a balancer
 *   mod_sticky_route_shm.c     shared memory: tickets and counters
 *   mod_sticky_route_state.c   per-balancer state and its scan: routes,
 *                              view, member weight (slow start), schedule;
 *                              which balancers are ours
 *   mod_sticky_route_find.c    the three providers: finders, election,
 *                              a decision applied
 *   mod_sticky_route_request.c what a request brings: its sr_req_t, its
 *                              cookies and session id
 *   mod_sticky_route_filter.c  the Set-Cookie filter, log_transaction:
 *                              in-flight released, decisions counted
 *   mod_sticky_route_retry.c   request_status: the retry of a request a
 *                              member broke; pre_connection
 *   mod_sticky_route_status.c  the status handler
 *   mod_sticky_route_wait.c    StickyRouteWait: requests wait for a member
 *   mod_sticky_route_hash.c    lbmethod=hash: the request key, the map
 *   mod_sticky_route_discover.c, _discover_apply.c, _lookup.c
 *                              StickyRouteDiscover (their own header:
 *                              mod_sticky_route_discover.h)
 *
 * The decisions themselves are in sr_policy.c, sr_policy_request.c and
 * sr_discover_policy.c, pure and unit-tested (sr_policy.h has the whole
 * decision table of a request); the httpd-free helpers under sr_core.h. Atomics:
 * sr_atomic.h only. docs/DESIGN.md draws the request path through these
 * files.
 *
 * The lock contract (each function's comment says which it needs):
 *   - the balancer's thread mutex (PROXY_THREAD_LOCK(b), one per balancer
 *     and process): guards the per-process state - sr_balancer_state_t in
 *     b->context, b->workers, the lbmethod=hash map; see "per-process
 *     balancer state" below for who takes it;
 *   - the balancer's global mutex (PROXY_GLOBAL_LOCK(b), across
 *     processes): taken by the discovery watchdog, after the thread mutex,
 *     around its edits of the balancer's shared worker slots and of our
 *     member entries (sr_shm_member_renew);
 *   - a worker's thread mutex (PROXY_THREAD_LOCK(w)): discovery's
 *     per-child step, inside the balancer's thread mutex, while it takes a
 *     rewritten slot's connection address away (as mod_proxy does);
 *   - sr_child_mutex (mod_sticky_route_state.c, per process): the child
 *     pool, when a balancer's state or map is made after child_init;
 *   - no lock: the shared-memory entries below (sr_shm_*_t) are read and
 *     written only through sr_atomic.h, and claimed with the lock-free
 *     protocol of mod_sticky_route_shm.c; a request's own sr_req_t belongs
 *     to its thread; configuration is fixed after startup.
 */
#ifndef MOD_STICKY_ROUTE_PRIVATE_H
#define MOD_STICKY_ROUTE_PRIVATE_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "ap_mmn.h"
#include "util_filter.h"
#include "ap_expr.h"
#include "mod_proxy.h"

#include "mod_sticky_route.h"
#include "sr_core.h"
#include "sr_policy.h"
#include "sr_hash.h"
#include "sr_atomic.h"

/* name_ex in proxy_worker_shared came with httpd 2.4.51, a worker's
 * address TTL (address_ttl, what lets discovery reuse a slot) with 2.4.59. */
#define SR_MMN_MAJOR 20120211
#define SR_MMN_MINOR 130
#if !AP_MODULE_MAGIC_AT_LEAST(SR_MMN_MAJOR, SR_MMN_MINOR)
#error "mod_sticky_route needs httpd 2.4.59 or later (module magic 20120211.130)"
#endif

/* Internal to the module: called directly, not through the PLT (as when
 * they were static in one file); a thread-local reached without the
 * global-dynamic TLS model's GOT indirection. */
#define SR_HIDDEN __attribute__((visibility("hidden")))

/* AP_DECLARE_MODULE in mod_sticky_route.c does what APLOG_USE_MODULE does */
#ifndef SR_MODULE_RECORD
APLOG_USE_MODULE(sticky_route);
#endif
extern module AP_MODULE_DECLARE_DATA sticky_route_module;

/* ---- configuration (mod_sticky_route_config.c) ------------------------- */

/* StickyRouteElect: sr_elect_mode_t (sr_policy.h, sr_elect_way). */

/* StickyRouteDiscover URL [interval=S] [max=N] [member parameters] */
typedef struct {
    const char *url;                 /* as given */
    const char *scheme;              /* http, https, ... */
    const char *host;                /* the name resolved */
    apr_port_t port;                 /* 0: from the SRV records */
    int srv;                         /* the host is an SRV name ("_...") */
    int ttl_mode;                    /* interval=ttl */
    apr_interval_time_t interval;
    apr_interval_time_t hold;        /* a gone address keeps its slot this
                                        long before another may take it */
    int max;                         /* discovered members at most */
    apr_array_header_t *hc;          /* mod_proxy_hcheck parameters of the
                                        members: key, value, key, value... */
    /* parameters of the members it makes (-1: mod_proxy's default) */
    int keepalive;
    long ttl, conn_timeout, retry, timeout;
    int lbfactor;
} sr_discover_conf_t;

typedef struct {
    const sr_cookie_spec_t *cookie;  /* NULL: not set here */
    const sr_key_t *tag_key;         /* NULL: no secret set here */
    const sr_key_t *route_key;
    int legacy;                      /* -1: not set here */
    int retry;                       /* -1: not set here */
    int elect;                       /* sr_elect_mode_t, -1: not set here */
    long slowstart;                  /* seconds, -1: not set here */
    long rebalance_idle;             /* seconds, 0: off, -1: not set here */
    uint32_t rebalance_factor;       /* x 100 */
    const char *session_cookie;      /* StickyRouteSession NAME, NULL: unset */
    const char *session_param;       /* its URL parameter, NULL: none */
    const sr_discover_conf_t *discover; /* NULL: no discovery */
    apr_interval_time_t wait;        /* StickyRouteWait, 0: off, -1: not
                                        set here */
    int wait_max;                    /* its max=, 0: the default */
    const ap_expr_info_t *hash_key;  /* StickyRouteHashKey, NULL: unset */
    int hash_balance;                /* StickyRouteHashBalance x 100, 0:
                                        off, -1: not set here */
    int inflight;                    /* StickyRouteInflight On|Off, -1:
                                        not set here */
} sr_conf_t;

/* What applies to one balancer in one server (innermost wins). */
typedef struct {
    const sr_cookie_spec_t *cookie;
    const sr_key_t *tag_key;         /* NULL: cookies are not signed */
    const sr_key_t *route_key;       /* key for derived routes */
    int legacy;                      /* accept stock ".route" cookies */
    int retry;                       /* retry GET/HEAD on a broken member */
    sr_elect_mode_t elect;           /* StickyRouteElect */
    long slowstart;                  /* StickyRouteSlowStart seconds, 0: off */
    long rebalance_idle;             /* StickyRouteRebalance, 0: off */
    uint32_t rebalance_factor;       /* x 100 */
    const char *session_cookie;      /* StickyRouteSession, NULL: off */
    const char *session_param;
    apr_interval_time_t wait;        /* StickyRouteWait, 0: off */
    int wait_max;                    /* its max=, 0: the default */
    const ap_expr_info_t *hash_key;  /* StickyRouteHashKey, NULL: the
                                        client address */
    uint32_t hash_balance;           /* StickyRouteHashBalance x 100, 0: off */
    int inflight_set;                /* StickyRouteInflight: 1 On, 0 Off,
                                        -1 not set */
    int inflight;                    /* in-flight accounting is kept
                                        (sr_inflight_accounting; a refused
                                        Off reads as on: apache2 -t stops
                                        the start) */
} sr_effective_t;

extern const command_rec sr_cmds[];
void *sr_create_dir_conf(apr_pool_t *p, char *dummy);
void *sr_create_server_conf(apr_pool_t *p, server_rec *s);
void *sr_merge_conf(apr_pool_t *p, void *basev, void *addv);
void sr_config_init(apr_pool_t *pconf);
const sr_conf_t *sr_section_conf(apr_pool_t *p, server_rec *s,
                                 proxy_balancer *b);
void sr_effective(server_rec *s, const sr_conf_t *dir, sr_effective_t *e);
/* check_config (also apache2 -t): StickyRouteInflight Off on a balancer
 * of ours whose settings read the in-flight counts is an error naming the
 * setting (sr_inflight_accounting). Called by sr_check_config (mod_sticky_route.c).
 * No lock: startup. */
int sr_config_check(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                    server_rec *main_s);

/* ---- our balancers (mod_sticky_route_state.c) ---------------------------- */

/* b uses lbmethod=sticky, roundrobin or hash. No lock. */
int sr_is_ours(const proxy_balancer *b);

/* Calls fn for every balancer of every server that uses lbmethod=sticky,
 * roundrobin or hash; stops when fn returns non-zero and returns that. No
 * lock: the configuration is fixed (fn says what it needs). */
typedef int sr_balancer_fn(server_rec *s, proxy_balancer *b, void *baton);
int sr_for_each_balancer(server_rec *main_s, sr_balancer_fn *fn, void *baton);

extern server_rec *sr_main_server;     /* set by post_config; no lock */

/* ---- shared memory (mod_sticky_route_shm.c) ------------------------------
 * One anonymous segment, created by the parent in the process pool, so it
 * outlives graceful restarts when its recorded layout still matches (else
 * it is made anew). A balancer's entry is keyed like mod_proxy_balancer
 * keys its own slots: the server's proxy id (one per virtual host) and the
 * balancer's name; a member's entry by its balancer entry and route.
 * Entries are claimed in slot order with a compare-and-swap (free ->
 * filling -> ready) and never freed, so two children claiming the same key
 * at once end up with one entry. */
#define SR_SHM_MAGIC       0x53524d32u  /* "SRM2" */
#define SR_SHM_VERSION     6u
#define SR_SHM_BALANCERS   512
#define SR_SHM_MEMBERS     4096
#define SR_SERVER_ID_SIZE  24

enum { SR_SLOT_FREE = 0, SR_SLOT_FILLING = 1, SR_SLOT_READY = 2 };

typedef struct {
    volatile apr_uint32_t state;
    volatile apr_uint32_t warned;       /* SR_WARNED_* bits */
    volatile apr_uint64_t ticket;
    /* discovery (written by the watchdog, read by the status handler) */
    volatile apr_uint32_t disc_on;      /* the balancer discovers members */
    volatile apr_uint32_t disc_members; /* addresses with an enabled member */
    volatile apr_uint32_t disc_free;    /* free member slots */
    volatile apr_uint32_t disc_unplaced;/* addresses without a slot */
    volatile apr_uint64_t disc_errors;  /* failed or empty resolutions */
    volatile apr_uint64_t disc_runs;    /* resolutions */
    /* StickyRouteWait (mod_sticky_route_wait.c), across child processes */
    volatile apr_uint64_t wait_served;  /* served after waiting */
    volatile apr_uint64_t wait_timeouts;/* 503: waited the limit */
    volatile apr_uint64_t wait_refused; /* 503: beyond max=, or stopping */
    volatile apr_uint32_t wait_now;     /* requests waiting now */
    volatile apr_uint32_t disc_max;     /* max= */
    volatile apr_uint32_t disc_held;    /* gone addresses within their hold */
    volatile apr_uint64_t disc_reused;  /* slots given to another address */
    volatile apr_uint32_t disc_gen;     /* bumped at every slot rewrite and
                                           member disabled */
    volatile apr_uint64_t disc_next;    /* apr_time_t of the next resolution */
    volatile apr_uint32_t disc_failing; /* the last resolution was a DNS
                                           failure (the set is kept) */
    char server_id[SR_SERVER_ID_SIZE];
    char name[PROXY_BALANCER_MAX_NAME_SIZE];
} sr_shm_balancer_t;

/* warnings given once per balancer, across children and restarts */
#define SR_WARNED_APP_COOKIE 0x1u

typedef struct {
    volatile apr_uint32_t state;
    apr_uint32_t balancer;              /* index of its sr_shm_balancer_t */
    volatile apr_uint64_t count[SR_STATUS_COUNT];
    volatile apr_uint32_t inflight;     /* requests it serves now */
    volatile apr_uint32_t down;         /* seen unusable since it was up */
    volatile apr_uint64_t up_since;     /* apr_time_t it joined or came
                                           back (slow start); 0: long ago */
    /* discovery's per-slot state (mod_sticky_route_discover.c) */
    volatile apr_uint64_t gone_since;   /* its address left the answer */
    volatile apr_uint64_t settle_until; /* rewritten: enabled from then on */
    volatile apr_uint32_t hash_share;   /* lbmethod=hash: its share of the
                                           hash space, parts per million
                                           (every process writes the same) */
    char route[PROXY_WORKER_MAX_ROUTE_SIZE];
} sr_shm_member_t;

/* The segment, made or kept. No lock: the parent at post_config. */
apr_status_t sr_shm_setup(apr_pool_t *pglobal, apr_pool_t *pconf,
                          server_rec *s);
/* The entry of balancer b of server s (create: claim it when missing).
 * No lock: the lock-free claim protocol above. */
sr_shm_balancer_t *sr_shm_balancer(server_rec *s, const proxy_balancer *b,
                                   int create);
/* create: claim the entry when missing, with up_since (slow start) set to
 * up_since_if_new. No lock: the lock-free claim protocol above. */
sr_shm_member_t *sr_shm_member(const sr_shm_balancer_t *sb, const char *route,
                               int create, apr_time_t up_since_if_new);
/* Gives member entry e to another route (a discovery slot reused): its
 * counters, in-flight count and discovery state start afresh, up_since is
 * set (slow start). Readers looking the entry up meanwhile wait (the entry
 * is "filling" while it changes). Caller: the discovery watchdog, under the
 * balancer's global lock (one renamer at a time). */
void sr_shm_member_renew(sr_shm_member_t *e, const char *route,
                         apr_time_t up_since);
/* The segment was made by this generation (first start, or a layout
 * change): members found at startup are not joining. */
int sr_shm_is_new(void);
/* The proxy id of server s (mod_proxy_balancer's per-vhost identity). */
const char *sr_server_id(server_rec *s);

/* ---- per-process balancer state (mod_sticky_route_state.c) ----------------
 * Lives in proxy_balancer->context of our balancers only. The lock rule:
 * whoever reads or writes it, or b->workers, holds the balancer's thread
 * mutex (PROXY_THREAD_LOCK(b)), so one thread at a time per process touches
 * it; processes share only the shm entries (sr_atomic.h only). Fields
 * fixed when the state is made (balancer, server, eff, max, shared, the
 * buffers' addresses) may be read without it.
 *   - the finders (mod_sticky_route_find.c): mod_proxy_balancer calls them
 *     with the mutex held;
 *   - sr_request_status (mod_sticky_route_retry.c, the retry decision):
 *     takes it around its read of the view;
 *   - the discovery watchdog (mod_sticky_route_discover.c,
 *     _discover_apply.c): takes it, then the balancer's global mutex,
 *     around ap_proxy_sync_balancer and its edits; its per-child step
 *     takes it alone;
 *   - StickyRouteWait (mod_sticky_route_wait.c): takes it to sync, never
 *     while it sleeps; st->waiters is atomic (no lock);
 *   - the status handler (mod_sticky_route_status.c): takes it while it
 *     reads b->workers and computes the routes (sr_balancer_routes); the
 *     rest is shared memory;
 *   - the cookie filter and log_transaction (mod_sticky_route_filter.c):
 *     no lock - they touch the request's own sr_req_t, fixed fields of st
 *     and shared memory only. */
typedef struct {
    proxy_balancer *balancer;
    server_rec *server;
    const sr_conf_t *dirconf;       /* from the matching <Proxy> sections */
    sr_effective_t eff;             /* the settings that apply (fixed for
                                       the life of the configuration) */
    sr_cookie_ctx_t cookie_ctx;     /* what reading a cookie needs */
    sr_lifetime_t lifetime;         /* MaxIdle, MaxLife, rebalance */
    int dated;                      /* cookies carry dates */
    uint32_t max;                   /* capacity in members */
    int nworkers;                   /* balancer->workers->nelts at scan */
    apr_time_t next_scan;           /* periodic rescan (recoveries, edits) */
    uint64_t signature;             /* of the takers and their weights */
    int from_standby;               /* takers are hot standbys */
    sr_member_t *view;              /* per member: the policy's view */
    char *routes_buf;               /* max * PROXY_WORKER_MAX_ROUTE_SIZE */
    const char **routes;            /* per member: route used in cookies;
                                       a published string is never
                                       rewritten, unless route_copy (see
                                       sr_scan) */
    int route_copy;                 /* StickyRouteDiscover: the scan
                                       rewrites a changed route in its
                                       routes_buf slot, and each decision
                                       copies its route (sr_apply); fixed */
    apr_pool_t *route_pool;         /* fresh strings for changed routes
                                       (not route_copy); the balancer's
                                       thread mutex */
    uint32_t *raw_sig;              /* per member: hash of its route= as last
                                       seen (a change is logged once) */
    char *values_buf;               /* max * SR_VALUE_BUF: cookie values */
    const sr_key_t **value_key;     /* per member: key its value was made
                                       with; stale when value_ok[i] is 0 */
    unsigned char *value_ok;
    sr_route_index_t index;         /* route -> member */
    sr_schedule_t schedule;
    uint16_t *cand;                 /* scratch for scan */
    uint32_t *weights;              /* scratch for scan */
    sr_shm_balancer_t *shared;      /* ticket; NULL: process-local */
    apr_uint64_t local_ticket;
    sr_shm_member_t **counters;     /* per member, may be NULL */
    volatile apr_uint32_t waiters;  /* StickyRouteWait: requests of this
                                       process waiting now (atomic) */
    struct sr_hash_state_t *hash;   /* lbmethod=hash, StickyRouteElect hash
                                       (mod_sticky_route_hash.c); NULL: none */
} sr_balancer_state_t;

/* The state of b, made on first use when child_init did not see b (its
 * lbmethod switched to ours at run time); NULL when it cannot be made.
 * Lock: the balancer's thread mutex for what the caller then does with
 * it; making it takes the process's child-pool mutex (sr_state_make). */
sr_balancer_state_t *sr_state_make(proxy_balancer *b, server_rec *s);
static inline sr_balancer_state_t *sr_state(proxy_balancer *b, server_rec *s)
{
    return b->context ? (sr_balancer_state_t *)b->context
                      : sr_state_make(b, s);
}
/* st gets its lbmethod=hash map (lbmethod switched to hash at run time).
 * Lock: the balancer's thread mutex. */
void sr_state_hash_ensure(sr_balancer_state_t *st);

/* The scan (see mod_sticky_route_state.c); returns how soon the next is
 * due. Lock: the balancer's thread mutex. */
apr_interval_time_t sr_scan(sr_balancer_state_t *st, server_rec *s);
/* Scans when the member list changed or the scan is due. Lock: the
 * balancer's thread mutex. */
static inline void sr_scan_if_due(sr_balancer_state_t *st, request_rec *r)
{
    if (st->nworkers != st->balancer->workers->nelts
        || r->request_time >= st->next_scan) {
        st->next_scan = r->request_time + sr_scan(st, r->server);
    }
}

/* Member i's status flags in st->view[i] as they are now (O(1): one read
 * of its shared status word; lbset, weight, route and redirect come with
 * the scan). Lock: the balancer's thread mutex (st->view, b->workers). */
static inline void sr_view_refresh(sr_balancer_state_t *st, int i)
{
    proxy_worker *w = ((proxy_worker **)st->balancer->workers->elts)[i];
    sr_member_t *m = &st->view[i];
    unsigned int status = w->s->status;

    m->usable = (status & (PROXY_WORKER_NOT_USABLE_BITMAP
                           | PROXY_WORKER_INITIALIZED))
                == PROXY_WORKER_INITIALIZED;
    m->draining = (status & PROXY_WORKER_DRAIN) != 0;
    m->standby = (status & PROXY_WORKER_HOT_STANDBY) != 0;
    m->spare = (status & PROXY_WORKER_HOT_SPARE) != 0;
}

/* mod_proxy's ap_proxy_retry_worker (sr_state_post_config). */
extern APR_OPTIONAL_FN_TYPE(ap_proxy_retry_worker) *sr_retry_worker;

/* A member that is not usable gets its ap_proxy_retry_worker chance (as
 * mod_proxy_balancer gives it), then its view is refreshed. Lock: the
 * balancer's thread mutex. */
static inline void sr_view_member(sr_balancer_state_t *st, int i,
                                  server_rec *s)
{
    proxy_worker *w = ((proxy_worker **)st->balancer->workers->elts)[i];

    if (!PROXY_WORKER_IS_USABLE(w) && sr_retry_worker) {
        sr_retry_worker("BALANCER", w, s);
    }
    sr_view_refresh(st, i);
}

/* FNV-1a of s, never 0 nor 0xffffffff (either may mean "none" to the
 * caller): the scan's raw routes, discovery's worker names. No lock. */
uint32_t sr_str_sig(const char *s);
/* The member's URL (name_ex, else name). No lock. */
const char *sr_worker_url(const proxy_worker *w);

/* The route each member of b is known by, computed the way the finder
 * does (sr_route_choose in member order), for the status handler and
 * startup. Lock: the balancer's thread mutex once request threads run
 * (b->workers may grow); none at startup. */
const char **sr_balancer_routes(apr_pool_t *p, server_rec *s,
                                proxy_balancer *b);

void sr_state_post_config(void);
void sr_state_child_init(apr_pool_t *pchild, server_rec *main_s);

/* ---- the providers (mod_sticky_route_find.c) ------------------------------ */

extern const proxy_balancer_method sr_sticky_method;
extern const proxy_balancer_method sr_roundrobin_method;
extern const proxy_balancer_method sr_hash_method;

void sr_find_register_hooks(apr_pool_t *p);

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

/* ---- lbmethod=hash (mod_sticky_route_hash.c) --------------------------------
 * The per-process key -> member map of a balancer (sr_hash.h), kept in
 * st->hash. Every function here needs the balancer's thread mutex
 * (PROXY_THREAD_LOCK(b)), like the rest of the per-process state. */
typedef struct sr_hash_state_t sr_hash_state_t;

/* Does balancer b (settings eff) map keys: lbmethod=hash or
 * StickyRouteElect hash? (no lock) */
int sr_hash_wanted(const proxy_balancer *b, const sr_effective_t *eff);
/* post_config, in the parent: the maps of every balancer that maps keys,
 * built once from the configured members and inherited by every child. */
void sr_hash_post_config(apr_pool_t *pconf, server_rec *main_s);
/* The map for st, from pool p (st->max members): the parent's when there
 * is one; the caller serialises the use of p. */
sr_hash_state_t *sr_hash_state_create(apr_pool_t *p,
                                      const sr_balancer_state_t *st);
/* From the scan: the map follows the members that take new requests now
 * (st->cand, st->weights: ncand of them) and their routes; notes each
 * member's share of the hash space in shared memory. O(members) when
 * nothing changed. Lock: the balancer's thread mutex. */
void sr_hash_scan(sr_balancer_state_t *st, uint32_t ncand);
/* The request's key hash (StickyRouteHashKey, else the client address);
 * 0 when the key is empty. No lock. */
int sr_hash_request_key(const sr_balancer_state_t *st, request_rec *r,
                        uint64_t *h);
/* The member for key hash h: the key's first choice that takes new
 * requests now (its view refreshed), is not in tried and, with
 * StickyRouteHashBalance, is within its bounded load. *spilled: a choice
 * was passed over for its load; *stale: a choice had become unusable
 * since the scan (rescan, then ask again). -1: none. n: members in the
 * view. Lock: the balancer's thread mutex. */
int32_t sr_hash_choose(sr_balancer_state_t *st, uint64_t h, uint32_t n,
                       const sr_tried_t *tried, int *spilled, int *stale);

/* ---- discovery (mod_sticky_route_discover.c) --------------------------------- */

const char *sr_discover_parse(apr_pool_t *p, int argc, char *const argv[],
                              sr_discover_conf_t *dc);
/* check_config: makes room (growth) and the members of the first answer. */
int sr_discover_check(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s,
                      proxy_balancer *b, const sr_discover_conf_t *dc,
                      const sr_key_t *route_key);
/* post_config: the watchdog callbacks; needs mod_watchdog. */
int sr_discover_post_config(apr_pool_t *pconf, server_rec *main_s);
/* child_init, after mod_proxy_balancer's: this process's balancers are
 * made; the discovery watchdogs act only from then on. No lock. */
void sr_discover_child_ready(apr_pool_t *pchild, server_rec *s);

/* ---- StickyRouteWait (mod_sticky_route_wait.c) ------------------------------ */

void sr_wait_register_hooks(apr_pool_t *p);
void sr_wait_child_init(apr_pool_t *pchild, server_rec *main_s);
/* The requests of one process that may wait for a member of a balancer
 * with these settings at once: max=, else half the process's threads. */
uint32_t sr_wait_max(const sr_effective_t *eff);

/* ---- status (mod_sticky_route_status.c) ----------------------------------- */

int sr_status_handler(request_rec *r);

#endif /* MOD_STICKY_ROUTE_PRIVATE_H */
