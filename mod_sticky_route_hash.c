/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_hash.c - lbmethod=hash and StickyRouteElect hash: the
 * request key (StickyRouteHashKey), the per-process map of a balancer
 * (sr_hash.h: the algorithm and its numbers are written down there), the
 * choice among a key's members (failover, bounded loads).
 *
 * The finder itself (sr_find_hash) is in mod_sticky_route_find.c with
 * the other two, because it applies its answer the way they do.
 *
 *   key            the ap_expr of StickyRouteHashKey, else the client
 *                  address (r->useragent_ip: mod_remoteip's real client)
 *   map            follows the members that take new requests
 *                  (sr_policy_takers, from the scan): drained, disabled,
 *                  stopped, failed members and hot standbys (while a
 *                  regular member is up) are not in it; slow start ramps
 *                  a member's weight in it
 *   choice         the key's member; when it became unusable since the
 *                  scan or failed in this request, the key's next choice;
 *                  with StickyRouteHashBalance, a member over its bounded
 *                  load is passed over too (decision hash-spill)
 */
#include <string.h>

#include "apr_hash.h"
#include "apr_siphash.h"
#include "apr_strings.h"

#include "mod_sticky_route_private.h"

struct sr_hash_state_t {
    sr_hash_map_t *map;
    sr_hash_member_t *members;      /* scratch: the takers as map members */
    sr_key_t key;                   /* keys are hashed with it */
    uint32_t *share_ppm;            /* per member: last written share */
    sr_shm_member_t **share_at;     /* ... and where it was written */
};

/* Public key for request keys when no StickyRouteSecret is set (every
 * proxy then maps a key the same way; with a secret, every proxy with the
 * same secret does, and nobody else can aim keys at one member). */
static const sr_key_t sr_hash_public_key = { "sticky-route-hky" };

int sr_hash_wanted(const proxy_balancer *b, const sr_effective_t *eff)
{
    return b->lbmethod == &sr_hash_method || eff->elect == SR_ELECT_HASH;
}

/*
 * Maps built by the parent at post_config, in pconf, one per balancer that
 * maps keys, from the members as configured (status flags, lbset,
 * loadfactor): every child starts with its own copy-on-write copy (fork),
 * so no request waits for a first build (16-18 ms at 100 members,
 * 0.22 s at 1,000 on a quiet machine); the child's first scan brings the map up to date
 * with what changed since (a member found down, a ramp), member by
 * member. Keyed by the balancer (pconf memory of the same generation).
 * Parent only, before any child exists: no lock.
 */
typedef struct {
    sr_hash_map_t *map;
    uint32_t max;
} sr_hash_prebuilt_t;

static apr_hash_t *sr_hash_prebuilt;

/* No lock: configuration. */
static uint32_t sr_hash_capacity(const proxy_balancer *b)
{
    /* as sr_state_create sizes the per-process state */
    uint32_t max = (uint32_t)b->max_workers;

    if (max < (uint32_t)b->workers->nelts) {
        max = (uint32_t)b->workers->nelts;
    }
    if (max < 1) {
        max = 1;
    }
    return max > UINT16_MAX ? UINT16_MAX : max;
}

/* The parent's map of one balancer, at post_config. No lock: startup,
 * single-threaded. */
static int sr_hash_prebuild_one(server_rec *s, proxy_balancer *b, void *baton)
{
    apr_pool_t *pconf = baton;
    proxy_worker **w = (proxy_worker **)b->workers->elts;
    sr_effective_t eff;
    sr_hash_prebuilt_t *pb;
    sr_member_t *view;
    sr_hash_member_t *hm;
    const char **routes;
    uint16_t *cand;
    uint32_t *weights, max, n, ncand, i;
    int from_standby;
    apr_time_t t0;

    sr_effective(s, sr_section_conf(pconf, s, b), &eff);
    if (!sr_hash_wanted(b, &eff)) {
        return 0;
    }
    max = sr_hash_capacity(b);
    n = (uint32_t)b->workers->nelts < max ? (uint32_t)b->workers->nelts : max;
    routes = sr_balancer_routes(pconf, s, b);
    view = apr_pcalloc(pconf, (n ? n : 1) * sizeof(*view));
    cand = apr_pcalloc(pconf, (n ? n : 1) * sizeof(*cand));
    weights = apr_pcalloc(pconf, (n ? n : 1) * sizeof(*weights));
    hm = apr_pcalloc(pconf, (n ? n : 1) * sizeof(*hm));
    for (i = 0; i < n; i++) {
        unsigned int status = w[i]->s->status;
        uint32_t lf = (uint32_t)(w[i]->s->lbfactor > 0 ? w[i]->s->lbfactor : 1);

        view[i].route = routes[i];
        view[i].redirect = -1;
        view[i].lbset = w[i]->s->lbset;
        view[i].weight = eff.slowstart > 0
                         ? sr_slowstart_weight(lf, INT64_MAX, 1) : lf;
        view[i].usable = !(status & (PROXY_WORKER_DISABLED
                                     | PROXY_WORKER_STOPPED
                                     | PROXY_WORKER_IN_ERROR));
        view[i].draining = (status & PROXY_WORKER_DRAIN) != 0;
        view[i].standby = (status & PROXY_WORKER_HOT_STANDBY) != 0;
        view[i].spare = (status & PROXY_WORKER_HOT_SPARE) != 0;
    }
    ncand = sr_policy_takers(view, n, cand, weights, &from_standby);
    for (i = 0; i < ncand; i++) {
        hm[i].id = sr_hash_id(routes[cand[i]], strlen(routes[cand[i]]));
        hm[i].weight = weights[i];
        hm[i].member = cand[i];
    }
    pb = apr_pcalloc(pconf, sizeof(*pb));
    pb->max = max;
    pb->map = sr_hash_map_create(pconf, max, 0);
    t0 = apr_time_now();
    sr_hash_map_update(pb->map, hm, ncand);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "%s: hash map of %u members "
                 "(%u buckets) built in %" APR_TIME_T_FMT " ms", b->s->name,
                 ncand, sr_hash_map_buckets(pb->map),
                 apr_time_as_msec(apr_time_now() - t0));
    apr_hash_set(sr_hash_prebuilt, apr_pmemdup(pconf, &b, sizeof(b)),
                 sizeof(b), pb);
    return 0;
}

static apr_status_t sr_hash_prebuilt_gone(void *data)
{
    (void)data;
    sr_hash_prebuilt = NULL;        /* pconf of this generation is cleared */
    return APR_SUCCESS;
}

/* No lock: startup. */
void sr_hash_post_config(apr_pool_t *pconf, server_rec *main_s)
{
    sr_hash_prebuilt = apr_hash_make(pconf);
    apr_pool_cleanup_register(pconf, NULL, sr_hash_prebuilt_gone,
                              apr_pool_cleanup_null);
    sr_for_each_balancer(main_s, sr_hash_prebuild_one, pconf);
}

sr_hash_state_t *sr_hash_state_create(apr_pool_t *p,
                                      const sr_balancer_state_t *st)
{
    sr_hash_state_t *hs = apr_pcalloc(p, sizeof(*hs));
    const sr_hash_prebuilt_t *pb = NULL;
    uint32_t i;

    if (sr_hash_prebuilt) {
        const proxy_balancer *b = st->balancer;
        pb = apr_hash_get(sr_hash_prebuilt, &b, sizeof(b));
    }
    /* the parent's map (this process's own copy since the fork), else one
     * built at the first scan */
    hs->map = pb && pb->max == st->max ? pb->map
                                       : sr_hash_map_create(p, st->max, 0);
    hs->members = apr_pcalloc(p, st->max * sizeof(sr_hash_member_t));
    hs->share_ppm = apr_palloc(p, st->max * sizeof(uint32_t));
    hs->share_at = apr_pcalloc(p, st->max * sizeof(sr_shm_member_t *));
    for (i = 0; i < st->max; i++) {
        hs->share_ppm[i] = UINT32_MAX;
    }
    if (st->eff.route_key) {
        /* a key of its own, derived from the secret's route key */
        uint64_t a = apr_siphash24("sr-hash-key-a", 13,
                                   st->eff.route_key->bytes);
        uint64_t b = apr_siphash24("sr-hash-key-b", 13,
                                   st->eff.route_key->bytes);
        memcpy(hs->key.bytes, &a, sizeof(a));
        memcpy(hs->key.bytes + sizeof(a), &b, sizeof(b));
    }
    else {
        hs->key = sr_hash_public_key;
    }
    return hs;
}

void sr_hash_scan(sr_balancer_state_t *st, uint32_t ncand)
{
    sr_hash_state_t *hs = st->hash;
    uint32_t k, i, n, changes;
    apr_time_t t0;

    if (!hs) {
        return;
    }
    for (k = 0; k < ncand; k++) {
        uint16_t m = st->cand[k];
        hs->members[k].id = sr_hash_id(st->routes[m], strlen(st->routes[m]));
        hs->members[k].weight = st->weights[k];
        hs->members[k].member = m;
    }
    t0 = apr_time_now();
    changes = sr_hash_map_update(hs->map, hs->members, ncand);
    if (changes) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, st->server, "%s: hash map "
                     "updated, %u member(s) changed, %u in it, in %"
                     APR_TIME_T_FMT " us", st->balancer->s->name, changes,
                     ncand, apr_time_now() - t0);
    }
    /* every process computes the same shares; write only changes */
    n = (uint32_t)st->balancer->workers->nelts;
    if (n > st->max) {
        n = st->max;
    }
    for (i = 0; i < n; i++) {
        uint32_t ppm = (uint32_t)(sr_hash_share(hs->map, i) * 1e6 + 0.5);
        if (st->counters[i] && (ppm != hs->share_ppm[i]
                                || st->counters[i] != hs->share_at[i])) {
            sr_atomic_store32(&st->counters[i]->hash_share, ppm);
            hs->share_ppm[i] = ppm;
            hs->share_at[i] = st->counters[i];
        }
    }
}

int sr_hash_request_key(const sr_balancer_state_t *st, request_rec *r,
                        uint64_t *h)
{
    const char *key;
    const char *err = NULL;

    if (st->eff.hash_key) {
        key = ap_expr_str_exec(r, st->eff.hash_key, &err);
        if (err) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "%s: StickyRouteHashKey cannot be evaluated: %s",
                          st->balancer->s->name, err);
            key = NULL;
        }
    }
    else {
        key = r->useragent_ip;
    }
    if (!key || !*key) {
        return 0;
    }
    *h = sr_hash_key(key, strlen(key), &st->hash->key);
    return 1;
}

int32_t sr_hash_choose(sr_balancer_state_t *st, uint64_t h, uint32_t n,
                       const sr_tried_t *tried, int *spilled, int *stale)
{
    sr_hash_state_t *hs = st->hash;
    sr_hash_cursor_t cur;
    uint64_t total = 0, total_w = 0;
    uint32_t factor = st->eff.hash_balance, k, seen = 0;
    int32_t m, over = -1;

    *spilled = 0;
    *stale = 0;
    if (!hs) {
        return -1;
    }
    if (factor) {
        /* the mean: requests in flight over the members in the map */
        for (k = 0; k < n; k++) {
            if (sr_hash_share(hs->map, k) > 0) {
                total += st->view[k].inflight
                         ? sr_atomic_load32(st->view[k].inflight) : 0;
                total_w += st->view[k].weight ? st->view[k].weight : 1;
            }
        }
    }
    memset(&cur, 0, sizeof(cur));
    while ((m = sr_hash_walk(hs->map, h, &cur)) >= 0) {
        if (++seen > n + 1) {
            break;
        }
        if ((uint32_t)m >= n) {
            continue;
        }
        sr_view_refresh(st, m);
        if (!sr_member_takes_new(&st->view[m])) {
            *stale = 1;
            continue;
        }
        if (sr_tried_has(tried, (uint32_t)m)) {
            continue;
        }
        if (factor) {
            uint32_t inflight = st->view[m].inflight
                ? sr_atomic_load32(st->view[m].inflight) : 0;
            if (!sr_hash_within_bound(inflight, st->view[m].weight, total,
                                      total_w, factor)) {
                if (over < 0) {
                    over = m;
                }
                *spilled = 1;
                continue;
            }
        }
        return m;
    }
    /* every choice over its bound (counts read at different moments can
     * say so): the first of them */
    return over;
}
