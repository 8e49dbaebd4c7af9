/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_discover_apply.c - a StickyRouteDiscover resolution
 * applied to its balancer: the plan (sr_discover_plan, sr_discover_policy.c) carried
 * out the way balancer-manager edits a balancer - members made in
 * never-used slots, disabled when their address leaves, enabled when it
 * comes back, and slots given to another address (the design and its
 * per-child invariants: mod_sticky_route_discover.c's header).
 */
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <resolv.h>

#include "http_core.h"
#include "apr_network_io.h"
#include "apr_strings.h"
#include "apr_optional.h"
#include "apr_uri.h"
#include "mod_watchdog.h"

#include "mod_sticky_route_discover.h"

/* A discovered member's route: derived from the balancer and its URL, keyed
 * with the secret when there is one - every replica gives it the same. */
void sr_discovered_route(char *out, const proxy_balancer *b, const char *url,
                         const sr_key_t *key)
{
    char input[PROXY_BALANCER_MAX_NAME_SIZE + PROXY_WORKER_MAX_NAME_SIZE + 2];

    apr_snprintf(input, sizeof(input), "%s %s", b->s->name, url);
    sr_route_derive(out, input, key);
}

void sr_member_params(proxy_worker *w, const sr_discover_conf_t *dc)
{
    if (dc->keepalive >= 0) {
        w->s->keepalive = dc->keepalive ? 1 : 0;
        w->s->keepalive_set = 1;
    }
    if (dc->ttl > 0) {
        w->s->ttl = apr_time_from_sec(dc->ttl);
    }
    if (dc->conn_timeout > 0) {
        w->s->conn_timeout = apr_time_from_sec(dc->conn_timeout);
        w->s->conn_timeout_set = 1;
    }
    if (dc->retry >= 0) {
        w->s->retry = apr_time_from_sec(dc->retry);
        w->s->retry_set = 1;
    }
    if (dc->timeout > 0) {
        w->s->timeout = apr_time_from_sec(dc->timeout);
        w->s->timeout_set = 1;
    }
    if (dc->lbfactor > 0) {
        w->s->lbfactor = dc->lbfactor * 100;    /* httpd keeps it x 100 */
    }
    /* a child's cached address lives one second (see the header) */
    w->s->address_ttl = 1;
    w->s->address_ttl_set = 1;
}

const char *sr_worker_name(const proxy_worker *w)
{
    return w->s->name_ex[0] ? w->s->name_ex : w->s->name;
}

/* "ADDRESS PORT" when w is a member a discovery makes - the scheme's, an
 * address literal (not a name) as its host, and (A/AAAA names) the port of
 * the URL - else NULL. Read from the worker's host and port fields, not its
 * name (httpd leaves the scheme's default port out of a worker's name). The
 * caller leaves out the configured members. */
const char *sr_discovered_key(apr_pool_t *p, const sr_discover_conf_t *dc,
                              const proxy_worker *w)
{
    const char *host = w->s->hostname_ex[0] ? w->s->hostname_ex : w->s->hostname;
    unsigned char buf[16];

    if (w->s->is_name_matchable || strcasecmp(w->s->scheme, dc->scheme)
        || (!dc->srv && w->s->port != dc->port)
        || (inet_pton(AF_INET, host, buf) != 1
            && inet_pton(AF_INET6, host, buf) != 1)) {
        return NULL;
    }
    return apr_psprintf(p, "%s %u", host, (unsigned)w->s->port);
}

/* An SRV member's lbset and load factor as its records say (loadfactor=
 * on the directive wins). */
void sr_member_shape(proxy_worker *w, const sr_discover_conf_t *dc,
                     const sr_found_t *f)
{
    if (f->lbset >= 0 && w->s->lbset != f->lbset) {
        w->s->lbset = f->lbset;
    }
    /* httpd keeps a load factor x 100 (loadfactor=2.5 is 250) */
    if (f->lbfactor > 0 && dc->lbfactor <= 0
        && w->s->lbfactor != f->lbfactor * 100) {
        w->s->lbfactor = f->lbfactor * 100;
    }
}

/* ---- run time: the watchdog ------------------------------------------------------ */

/* Adds a member for url in a free slot, as balancer-manager does; the
 * balancer's global lock is held. Returns the worker or NULL. */
static proxy_worker *sr_add_member(sr_discovery_t *d, proxy_server_conf *conf,
                                   const sr_found_t *f)
{
    const char *url = f->url;
    proxy_balancer *b = d->b;
    ap_slotmem_provider_t *storage = b->storage;
    proxy_worker_shared *shm;
    proxy_worker *w = NULL;
    char route[SR_DERIVED_ROUTE_LEN + 1];
    unsigned int index;
    const char *err;
    apr_status_t rv;

    if (!storage || !b->wslot || storage->num_free_slots(b->wslot) == 0) {
        return NULL;
    }
    err = ap_proxy_define_worker(conf->pool, &w, b, conf, url, 0);
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, d->s, "StickyRouteDiscover %s "
                     "in %s: cannot make member %s: %s", d->dc->url,
                     b->s->name, url, err);
        return NULL;
    }
    PROXY_COPY_CONF_PARAMS(w, conf);
    sr_member_params(w, d->dc);
    sr_member_shape(w, d->dc, f);
    /* no hc* parameters: its health checks are ours (mod_sticky_route_hc.c),
     * mod_proxy_hcheck leaves it alone (method NONE) */
    sr_discovered_route(route, b, url, d->route_key);
    apr_cpystrn(w->s->route, route, sizeof(w->s->route));
    if ((rv = storage->grab(b->wslot, &index)) != APR_SUCCESS
        || (rv = storage->dptr(b->wslot, index, (void *)&shm)) != APR_SUCCESS
        || (rv = ap_proxy_share_worker(w, shm, index)) != APR_SUCCESS
        || (rv = ap_proxy_initialize_worker(w, d->s, conf->pool)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, d->s, "StickyRouteDiscover %s "
                     "in %s: cannot share member %s", d->dc->url, b->s->name,
                     url);
        /* ap_proxy_define_worker pushed it into b->workers: leave it
         * disabled so nobody uses a half-made member */
        if (w->s) {
            w->s->status |= PROXY_WORKER_DISABLED;
        }
        return NULL;
    }
    /* every child's ap_proxy_sync_balancer picks it up at its next request */
    b->wupdated = b->s->wupdated = w->s->updated = apr_time_now();
    return w;
}

/* Gives the slot of member w (whose address is gone) to url: rewritten in
 * place, stopped and disabled until it has settled (see the header).
 * Needs the balancer's thread and global mutexes (the singleton's run). */
static void sr_reuse_slot(sr_discovery_t *d, proxy_worker *w,
                          sr_shm_member_t *e, const sr_found_t *f,
                          apr_time_t now)
{
    const char *url = f->url, *addr = f->addr;
    proxy_balancer *b = d->b;
    proxy_worker_shared *s = w->s;
    char route[SR_DERIVED_ROUTE_LEN + 1];
    char old[PROXY_WORKER_MAX_NAME_SIZE];
    apr_int64_t gone = e ? (apr_int64_t)sr_atomic_load64(&e->gone_since) : 0;

    apr_cpystrn(old, sr_worker_name(w), sizeof(old));
    /* out of every election and health check until it has settled */
    ap_proxy_set_wstatus(PROXY_WORKER_STOPPED_FLAG, 1, w);
    ap_proxy_set_wstatus(PROXY_WORKER_DISABLED_FLAG, 1, w);
    sr_discovered_route(route, b, url, d->route_key);
    apr_cpystrn(s->name, url, sizeof(s->name));
    apr_cpystrn(s->name_ex, url, sizeof(s->name_ex));
    apr_cpystrn(s->hostname, addr, sizeof(s->hostname));
    apr_cpystrn(s->hostname_ex, addr, sizeof(s->hostname_ex));
    apr_cpystrn(s->route, route, sizeof(s->route));
    s->port = f->port;
    /* its status and counters start afresh */
    ap_proxy_set_wstatus(PROXY_WORKER_IN_ERROR_FLAG, 0, w);
    ap_proxy_set_wstatus(PROXY_WORKER_HC_FAIL_FLAG, 0, w);
    s->error_time = 0;
    s->retries = 0;
    s->lbstatus = 0;
    s->elected = 0;
    s->transferred = 0;
    s->read = 0;
    s->pcount = 0;
    s->fcount = 0;
    sr_member_params(w, d->dc);
    sr_member_shape(w, d->dc, f);
    s->updated = now;
    if (e) {
        sr_shm_member_renew(e, route, now);
    }
    else {
        e = sr_shm_member(sr_shm_balancer(d->s, b, 0), route, 1, now);
    }
    if (e) {
        /* stopped until every child's per-child step has seen the rewrite
         * (see the header, points 1 and 5): its idle connections to the
         * old address closed, its routes rescanned - before its first
         * request or health check (point 4) */
        sr_atomic_store64(&e->settle_until, (apr_uint64_t)(now + SR_SETTLE));
        if (!d->settle_next || now + SR_SETTLE < d->settle_next) {
            d->settle_next = now + SR_SETTLE;
        }
    }
    else {
        /* no shared entry to keep the settle time in (the segment is
         * full): every address a child cached for the slot has expired
         * (the member has been out of election for SR_REUSE_MIN_GONE,
         * twice the address TTL), so it takes requests at once, once its
         * new identity is written */
        sr_atomic_fence_release();
        ap_proxy_set_wstatus(PROXY_WORKER_STOPPED_FLAG, 0, w);
        ap_proxy_set_wstatus(PROXY_WORKER_DISABLED_FLAG, 0, w);
    }
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s,
                 "StickyRouteDiscover %s in %s: the slot of %s (gone %"
                 APR_TIME_T_FMT " s) reused for %s (route %s)%s", d->dc->url,
                 b->s->name, old, gone ? apr_time_sec(now - gone) : (apr_time_t)0,
                 url, route, e ? "; enabled in 1 s" : "");
}

/* One resolution and its plan, applied. Runs in the singleton watchdog;
 * takes the balancer's thread mutex, then its global mutex. */
void sr_discover_run(sr_discovery_t *d, apr_pool_t *p)
{
    proxy_balancer *b = d->b;
    proxy_server_conf *conf = ap_get_module_config(d->s->module_config,
                                                   &proxy_module);
    apr_array_header_t *keys = apr_array_make(p, 16, sizeof(char *));
    apr_array_header_t *have = apr_array_make(p, 16, sizeof(sr_disc_member_t));
    apr_array_header_t *have_w = apr_array_make(p, 16, sizeof(proxy_worker *));
    apr_array_header_t *have_e = apr_array_make(p, 16, sizeof(sr_shm_member_t *));
    sr_shm_balancer_t *sb = sr_shm_balancer(d->s, b, 0);
    sr_disc_action_t *ha, *wa;
    uint32_t *target;
    sr_disc_counts_t counts;
    apr_uint32_t free_slots, i;
    apr_time_t now = apr_time_now();
    proxy_worker **ws;
    sr_lookup_t L;
    const char *const *want;
    int tlocked, glocked, rewrote = 0, disabled = 0, answered;

    if (sb) {
        sr_atomic_store32(&sb->disc_on, 1);
        sr_atomic_store32(&sb->disc_max, (apr_uint32_t)d->dc->max);
        sr_atomic_add64(&sb->disc_runs, 1);
    }
    sr_lookup(p, d->dc, &L);
    for (i = 0; i < (apr_uint32_t)L.found->nelts; i++) {
        APR_ARRAY_PUSH(keys, const char *) = APR_ARRAY_IDX(L.found, i, sr_found_t).key;
    }
    d->last_ttl = L.min_ttl;
    d->answered = L.outcome == SR_LOOKUP_OK;
    if (L.outcome == SR_LOOKUP_FAIL) {
        if (sb) {
            sr_atomic_add64(&sb->disc_errors, 1);
            sr_atomic_store32(&sb->disc_failing, 1);
        }
        if (!d->fail_warned || now - d->fail_warned >= SR_WARN_PERIOD) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->s,
                         "StickyRouteDiscover %s in %s: %s does not resolve "
                         "(DNS failure: %s); the members stay as they are",
                         d->dc->url,
                         b->s->name, d->dc->host, L.why);
            d->fail_warned = now;
        }
        d->failing = 1;
    }
    else {
        if (sb) {
            sr_atomic_store32(&sb->disc_failing, 0);
        }
        if (d->failing) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s,
                         "StickyRouteDiscover %s in %s: %s resolves again",
                         d->dc->url, b->s->name, d->dc->host);
            d->failing = 0;
        }
    }
    if (L.outcome == SR_LOOKUP_EMPTY) {
        if (sb) {
            sr_atomic_add64(&sb->disc_errors, 1);
        }
        if (!d->empty_since) {
            d->empty_since = now;
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->s,
                         "StickyRouteDiscover %s in %s: %s does not resolve "
                         "(%s: the name is gone); its members are disabled "
                         "if it stays so for hold=%"
                         APR_TIME_T_FMT " s", d->dc->url, b->s->name,
                         d->dc->host, L.why, apr_time_sec(d->dc->hold));
        }
    }
    else {
        if (d->empty_since && L.outcome == SR_LOOKUP_OK) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s,
                         "StickyRouteDiscover %s in %s: %s resolves again",
                         d->dc->url, b->s->name, d->dc->host);
        }
        d->empty_since = 0;
    }
    /* the want list: an answer (possibly empty: the service is gone, once
     * that has lasted hold=), or none (NULL: keep everything) */
    answered = L.outcome == SR_LOOKUP_OK
               || (L.outcome == SR_LOOKUP_EMPTY
                   && now - d->empty_since >= d->dc->hold);
    want = answered ? (const char *const *)keys->elts : NULL;
    tlocked = PROXY_THREAD_LOCK(b) == APR_SUCCESS;
    glocked = PROXY_GLOBAL_LOCK(b) == APR_SUCCESS;
    /* members other processes added (balancer-manager) first */
    ap_proxy_sync_balancer(b, d->s, conf);
    ws = (proxy_worker **)b->workers->elts;
    for (i = 0; i < (apr_uint32_t)b->workers->nelts; i++) {
        sr_disc_member_t *m;
        sr_shm_member_t *e;
        const char *name = sr_worker_name(ws[i]);
        const char *a;
        if (apr_hash_get(d->configured, name, APR_HASH_KEY_STRING)
            || !(a = sr_discovered_key(p, d->dc, ws[i]))) {
            continue;
        }
        /* its entry, when a child made it (the scan claims it with the
         * member's slow-start start; not claimed here before it is needed) */
        e = sr_shm_member(sb, ws[i]->s->route, 0, 0);
        m = apr_array_push(have);
        m->addr = a;
        m->enabled = !(ws[i]->s->status & PROXY_WORKER_DISABLED);
        m->gone_since = e ? (int64_t)sr_atomic_load64(&e->gone_since) : 0;
        m->settle_until = e ? (int64_t)sr_atomic_load64(&e->settle_until) : 0;
        if (!m->enabled && !m->gone_since && !m->settle_until
            && (e || (e = sr_shm_member(sb, ws[i]->s->route, 1, 0)))) {
            /* disabled and not seen leaving (an earlier process of ours
             * before a restart, or an operator): held from now on */
            sr_atomic_store64(&e->gone_since, (apr_uint64_t)now);
            m->gone_since = now;
        }
        APR_ARRAY_PUSH(have_w, proxy_worker *) = ws[i];
        APR_ARRAY_PUSH(have_e, sr_shm_member_t *) = e;
    }
    free_slots = (b->storage && b->wslot) ? b->storage->num_free_slots(b->wslot)
                                          : 0;
    ha = apr_pcalloc(p, (have->nelts + 1) * sizeof(*ha));
    target = apr_pcalloc(p, (have->nelts + 1) * sizeof(*target));
    wa = apr_pcalloc(p, (keys->nelts + 1) * sizeof(*wa));
    sr_discover_plan((sr_disc_member_t *)have->elts, (uint32_t)have->nelts,
                     want, answered ? (uint32_t)keys->nelts : 0,
                     free_slots, now,
                     d->dc->hold > SR_REUSE_MIN_GONE ? d->dc->hold
                                                     : SR_REUSE_MIN_GONE,
                     ha, target, wa, &counts);
    d->settle_next = 0;
    for (i = 0; i < (apr_uint32_t)have->nelts; i++) {
        proxy_worker *w = APR_ARRAY_IDX(have_w, i, proxy_worker *);
        sr_shm_member_t *e = APR_ARRAY_IDX(have_e, i, sr_shm_member_t *);
        sr_disc_member_t *m = &APR_ARRAY_IDX(have, i, sr_disc_member_t);
        switch (ha[i]) {
        case SR_DISC_DISABLE:
            if (!e) {
                e = sr_shm_member(sb, w->s->route, 1, 0);
            }
            ap_proxy_set_wstatus(PROXY_WORKER_DISABLED_FLAG, 1, w);
            ap_proxy_set_wstatus(PROXY_WORKER_STOPPED_FLAG, 0, w);
            disabled = 1;
            if (e) {
                sr_atomic_store64(&e->gone_since, (apr_uint64_t)now);
                sr_atomic_store64(&e->settle_until, 0);
            }
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s,
                         "StickyRouteDiscover %s in %s: %s is gone; member "
                         "disabled (route %s), its slot held %" APR_TIME_T_FMT
                         " s", d->dc->url, b->s->name, sr_worker_name(w),
                         w->s->route, apr_time_sec(d->dc->hold));
            break;
        case SR_DISC_ENABLE:
            ap_proxy_set_wstatus(PROXY_WORKER_STOPPED_FLAG, 0, w);
            ap_proxy_set_wstatus(PROXY_WORKER_DISABLED_FLAG, 0, w);
            if (e) {
                sr_atomic_store64(&e->gone_since, 0);
                sr_atomic_store64(&e->settle_until, 0);
            }
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s,
                         "StickyRouteDiscover %s in %s: %s %s; member "
                         "enabled (route %s)", d->dc->url, b->s->name,
                         sr_worker_name(w), m->settle_until ? "has settled"
                         : "is back", w->s->route);
            break;
        case SR_DISC_SETTLE:
            if (!d->settle_next || m->settle_until < d->settle_next) {
                d->settle_next = m->settle_until;
            }
            break;
        case SR_DISC_REUSE:
            sr_reuse_slot(d, w, e, &APR_ARRAY_IDX(L.found, target[i], sr_found_t),
                          now);
            rewrote = 1;
            break;
        default:
            break;
        }
        if (answered && ha[i] != SR_DISC_REUSE && ha[i] != SR_DISC_DISABLE) {
            /* SRV priorities and weights may change: follow them */
            uint32_t j;
            for (j = 0; j < (apr_uint32_t)keys->nelts; j++) {
                if (!strcmp(m->addr, APR_ARRAY_IDX(keys, j, const char *))) {
                    sr_member_shape(w, d->dc, &APR_ARRAY_IDX(L.found, j, sr_found_t));
                    break;
                }
            }
        }
    }
    for (i = 0; answered && i < (apr_uint32_t)keys->nelts; i++) {
        const sr_found_t *f = &APR_ARRAY_IDX(L.found, i, sr_found_t);
        if (wa[i] == SR_DISC_ADD) {
            proxy_worker *w = sr_add_member(d, conf, f);
            if (w) {
                ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s,
                             "StickyRouteDiscover %s in %s: new member %s "
                             "(route %s)", d->dc->url, b->s->name, f->url,
                             w->s->route);
            }
            else {
                counts.no_slot++;
                counts.members--;
            }
        }
    }
    if ((rewrote || disabled) && sb) {
        /* every child's per-child step runs: it closes the pooled
         * connections of the slots disabled or rewritten (see
         * mod_sticky_route_discover.c's header, point 1) */
        sr_atomic_add32(&sb->disc_gen, 1);
    }
    if (glocked) {
        PROXY_GLOBAL_UNLOCK(b);
    }
    if (tlocked) {
        PROXY_THREAD_UNLOCK(b);
    }
    if (sr_discover_warn_due(counts.no_slot, now, d->warned, SR_WARN_PERIOD)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->s,
                     "StickyRouteDiscover %s in %s: %u address(es) beyond "
                     "max=%d get no member (%u held within hold=%" APR_TIME_T_FMT
                     " s); they take the slots of gone members as these "
                     "pass their hold, or raise max=", d->dc->url, b->s->name,
                     counts.no_slot, d->dc->max, counts.held,
                     apr_time_sec(d->dc->hold));
        d->warned = now;
    }
    if (sb) {
        sr_atomic_store32(&sb->disc_members, counts.members);
        sr_atomic_store32(&sb->disc_unplaced, counts.no_slot);
        sr_atomic_store32(&sb->disc_held, counts.held);
        sr_atomic_add64(&sb->disc_reused, counts.reuse);
        sr_atomic_store32(&sb->disc_free, (b->storage && b->wslot)
                         ? b->storage->num_free_slots(b->wslot) : 0);
    }
}

