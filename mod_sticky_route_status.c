/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_status.c - SetHandler sticky-route-status: Prometheus
 * text exposition, or JSON with ?json. One row per member of every
 * balancer of ours in every (virtual) server, labelled with the server
 * ("host:port"), the balancer and the route the module really uses; every
 * value escaped for its format, whatever bytes it holds.
 */
#include <string.h>

#include "http_core.h"
#include "http_protocol.h"
#include "apr_hash.h"
#include "apr_strings.h"

#include "mod_sticky_route_private.h"

typedef struct {
    const char *server;     /* label of the (virtual) server */
    const char *balancer;   /* without balancer:// */
    const char *route;
    const char *method;
    int up;
    int inflight;           /* the balancer keeps in-flight accounting
                               (StickyRouteInflight): the gauge is shown */
    double share;           /* slow-start share of its weight, 0..1 */
    sr_shm_member_t *counter;
} sr_status_row_t;

/* A balancer that discovers its members (StickyRouteDiscover). */
typedef struct {
    const char *server;
    const char *balancer;
    const char *target;     /* the URL it resolves */
    sr_shm_balancer_t *sb;
} sr_discover_row_t;

/* A balancer whose requests wait for a member (StickyRouteWait). */
typedef struct {
    const char *server;
    const char *balancer;
    apr_interval_time_t limit;
    uint32_t max;           /* per child process */
    sr_shm_balancer_t *sb;
} sr_wait_row_t;

typedef struct {
    request_rec *r;
    apr_hash_t *seen_shared;    /* proxy_balancer_shared already listed */
    apr_hash_t *seen_label;     /* server label + balancer already used */
    apr_array_header_t *rows;
    apr_array_header_t *discover_rows;
    apr_array_header_t *wait_rows;
} sr_status_ctx_t;

/* "host:port" of a (virtual) server: its ServerName, and the port of its
 * ServerName or of its first address; when neither has one (a ServerName
 * without a port in a server listening on any port), the port the status
 * request came in on, rather than ":0". */
static const char *sr_server_label(request_rec *r, server_rec *s)
{
    apr_pool_t *p = r->pool;
    apr_port_t port = s->port;

    if (!port && s->addrs) {
        port = s->addrs->host_port;
    }
    if (!port && r->connection->local_addr) {
        port = r->connection->local_addr->port;
    }
    return apr_psprintf(p, "%s:%u", s->server_hostname ? s->server_hostname
                                                       : "", (unsigned)port);
}

/* The share of its weight a member takes new sessions with: 1 without slow
 * start, 0 while it is down, the ramp since it joined or came back. No
 * lock: shared memory read lock-free (sr_atomic.h). */
static double sr_member_share(const sr_status_row_t *row,
                              const sr_effective_t *eff, apr_time_t now)
{
    apr_time_t since;

    if (eff->slowstart <= 0) {
        return 1.0;
    }
    if (!row->up || (row->counter && sr_atomic_load32(&row->counter->down))) {
        return 0.0;
    }
    since = row->counter ? (apr_time_t)sr_atomic_load64(&row->counter->up_since)
                         : 0;
    if (!since) {
        return 1.0;
    }
    return sr_slowstart_share(now - since, apr_time_from_sec(eff->slowstart));
}

/* Lock: takes the balancer's thread mutex while it syncs and reads
 * b->workers and the routes (sr_balancer_routes); shared memory is read
 * lock-free. */
static int sr_status_collect(server_rec *s, proxy_balancer *b, void *baton)
{
    sr_status_ctx_t *ctx = baton;
    apr_pool_t *p = ctx->r->pool;
    proxy_worker **w;
    const char *name = b->s->name, *label, *key;
    const char **routes;
    sr_shm_balancer_t *sb;
    sr_effective_t eff;
    apr_time_t now;
    int k, locked;

    if (apr_hash_get(ctx->seen_shared, &b->s, sizeof(b->s))) {
        return 0;
    }
    apr_hash_set(ctx->seen_shared, apr_pmemdup(p, &b->s, sizeof(b->s)),
                 sizeof(b->s), "");
    if (!strncasecmp(name, BALANCER_PREFIX, sizeof(BALANCER_PREFIX) - 1)) {
        name += sizeof(BALANCER_PREFIX) - 1;
    }
    label = sr_server_label(ctx->r, s);
    key = apr_pstrcat(p, label, "\n", name, NULL);
    if (apr_hash_get(ctx->seen_label, key, APR_HASH_KEY_STRING)) {
        /* two servers with the same name and port (other addresses):
         * mod_proxy_balancer's server id tells them apart */
        label = apr_pstrcat(p, label, "#", sr_server_id(s), NULL);
    }
    apr_hash_set(ctx->seen_label, key, APR_HASH_KEY_STRING, "");
    /* b->workers is per-process state, grown by ap_proxy_sync_balancer and
     * edited by discovery's per-child step under the balancer's thread
     * mutex: read it under that mutex too (brief: no I/O inside). First
     * bring it up to date with the members other processes added
     * (balancer-manager, discovery), as mod_proxy_balancer does before
     * each request and its manager page: a child that has proxied nothing
     * since an add would list the balancer without the new member. */
    locked = PROXY_THREAD_LOCK(b) == APR_SUCCESS;
    if (locked) {
        ap_proxy_sync_balancer(b, s, ap_get_module_config(s->module_config,
                                                          &proxy_module));
    }
    w = (proxy_worker **)b->workers->elts;
    routes = sr_balancer_routes(p, s, b);
    sb = sr_shm_balancer(s, b, 0);
    {
        const sr_conf_t *sec = sr_section_conf(p, s, b);
        sr_effective(s, sec, &eff);
        if (sec && sec->discover) {
            sr_discover_row_t *dr = apr_array_push(ctx->discover_rows);
            dr->server = label;
            dr->balancer = name;
            dr->target = sec->discover->url;
            dr->sb = sb;
        }
        if (eff.wait > 0) {
            sr_wait_row_t *wr = apr_array_push(ctx->wait_rows);
            wr->server = label;
            wr->balancer = name;
            wr->limit = eff.wait;
            wr->max = sr_wait_max(&eff);
            wr->sb = sb;
        }
    }
    now = apr_time_now();
    for (k = 0; k < b->workers->nelts; k++) {
        sr_status_row_t *row = apr_array_push(ctx->rows);
        row->server = label;
        row->balancer = name;
        row->route = routes[k];
        row->method = b->lbmethod->name;
        row->up = PROXY_WORKER_IS_USABLE(w[k]) ? 1 : 0;
        row->inflight = eff.inflight;
        row->counter = sb ? sr_shm_member(sb, routes[k], 0, 0) : NULL;
        row->share = sr_member_share(row, &eff, now);
    }
    if (locked) {
        PROXY_THREAD_UNLOCK(b);
    }
    return 0;
}

/* lbmethod=hash: the member's share of the hash space, 0..1. No lock: a
 * relaxed load of shared memory. */
static double sr_hash_share_of(const sr_status_row_t *row)
{
    return row->counter
           ? sr_atomic_load32(&row->counter->hash_share) / 1e6 : 0.0;
}

/* The decisions a balancer of this lbmethod can make. */
static int sr_status_applies(const char *method, int k)
{
    if (!strcmp(method, SR_LBMETHOD_STICKY)) {
        return k != SR_STATUS_ROUNDROBIN && k != SR_STATUS_HASHED
               && k != SR_STATUS_HASH_SPILL;
    }
    if (!strcmp(method, SR_LBMETHOD_HASH)) {
        return k == SR_STATUS_ROUNDROBIN || k == SR_STATUS_HASHED
               || k == SR_STATUS_HASH_SPILL;
    }
    return k == SR_STATUS_ROUNDROBIN;
}

/* No lock: a relaxed load of shared memory. */
static apr_uint32_t sr_inflight(const sr_status_row_t *row)
{
    return row->counter ? sr_atomic_load32(&row->counter->inflight) : 0;
}

/* No lock: a relaxed load of shared memory. */
static apr_uint64_t sr_count(const sr_status_row_t *row, int k)
{
    return row->counter ? sr_atomic_load64(&row->counter->count[k])
                        : (apr_uint64_t)0;
}

/* No lock: relaxed loads of shared memory (figures the discovery watchdog
 * writes). */
static apr_uint64_t sr_disc(const sr_discover_row_t *d, int what)
{
    if (!d->sb) {
        return 0;
    }
    switch (what) {
    case 0: return sr_atomic_load32(&d->sb->disc_members);
    case 1: return sr_atomic_load32(&d->sb->disc_free);
    case 2: return sr_atomic_load32(&d->sb->disc_unplaced);
    case 3: return sr_atomic_load64(&d->sb->disc_errors);
    case 4: return sr_atomic_load64(&d->sb->disc_runs);
    case 5: return sr_atomic_load32(&d->sb->disc_max);
    case 6: return sr_atomic_load32(&d->sb->disc_held);
    case 7: return sr_atomic_load64(&d->sb->disc_reused);
    case 9: return sr_atomic_load32(&d->sb->disc_failing);
    default: {
        /* seconds to the next resolution (0: due or unknown) */
        apr_time_t next = (apr_time_t)sr_atomic_load64(&d->sb->disc_next);
        apr_time_t now = apr_time_now();
        return next > now ? (apr_uint64_t)apr_time_sec(next - now + 999999) : 0;
    }
    }
}

static const struct {
    const char *name, *type, *help;
} sr_disc_metrics[] = {
    { "sticky_route_discover_members", "gauge",
      "Addresses of the discovered name with an enabled member." },
    { "sticky_route_discover_slots_free", "gauge",
      "Never-used member slots left for addresses that appear." },
    { "sticky_route_discover_unplaced", "gauge",
      "Addresses beyond max= without a member slot (they get no traffic)." },
    { "sticky_route_discover_errors_total", "counter",
      "Resolutions that failed or gave no address (the members stay)." },
    { "sticky_route_discover_resolutions_total", "counter",
      "Resolutions of the discovered name." },
    { "sticky_route_discover_slots", "gauge",
      "Discovered members at most (max=)." },
    { "sticky_route_discover_held", "gauge",
      "Members whose address left the answer, their slot held (hold=)." },
    { "sticky_route_discover_reused_total", "counter",
      "Member slots given to another address." },
    { "sticky_route_discover_next_seconds", "gauge",
      "Seconds to the next resolution." },
    { "sticky_route_discover_failing", "gauge",
      "1 while the last resolution was a DNS failure (the members are kept)." },
};
#define SR_DISC_METRICS (int)(sizeof(sr_disc_metrics) / sizeof(sr_disc_metrics[0]))

static void sr_status_prometheus_discover(request_rec *r,
                                          const apr_array_header_t *drows)
{
    int i, k;

    if (drows->nelts == 0) {
        return;
    }
    for (k = 0; k < SR_DISC_METRICS; k++) {
        ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n", sr_disc_metrics[k].name,
                   sr_disc_metrics[k].help, sr_disc_metrics[k].name,
                   sr_disc_metrics[k].type);
        for (i = 0; i < drows->nelts; i++) {
            const sr_discover_row_t *d = &APR_ARRAY_IDX(drows, i,
                                                        sr_discover_row_t);
            ap_rprintf(r, "%s{server=\"%s\",balancer=\"%s\",target=\"%s\"} %"
                       APR_UINT64_T_FMT "\n", sr_disc_metrics[k].name,
                       sr_label_escape(r->pool, d->server),
                       sr_label_escape(r->pool, d->balancer),
                       sr_label_escape(r->pool, d->target), sr_disc(d, k));
        }
    }
}

/* StickyRouteWait: waiting now (across child processes), served after
 * waiting, timed out, refused (beyond max=, or stopping), the settings. No
 * lock: relaxed loads of shared memory. */
static apr_uint64_t sr_wait_value(const sr_wait_row_t *w, int what)
{
    apr_uint32_t now;

    switch (what) {
    case 0:
        now = w->sb ? sr_atomic_load32(&w->sb->wait_now) : 0;
        /* a child's exit cleanup may run ahead of a waiter's own count
         * for a moment: never show a wrapped value */
        return now > 0x7fffffffu ? 0 : now;
    case 1: return w->sb ? sr_atomic_load64(&w->sb->wait_served) : 0;
    case 2: return w->sb ? sr_atomic_load64(&w->sb->wait_timeouts) : 0;
    case 3: return w->sb ? sr_atomic_load64(&w->sb->wait_refused) : 0;
    case 4: return (apr_uint64_t)apr_time_sec(w->limit);
    default: return w->max;
    }
}

static const struct {
    const char *name, *type, *help;
} sr_wait_metrics[] = {
    { "sticky_route_wait_waiting", "gauge",
      "Requests waiting now for a usable member (StickyRouteWait), across "
      "child processes." },
    { "sticky_route_wait_served_total", "counter",
      "Requests that waited and then found a usable member." },
    { "sticky_route_wait_timeouts_total", "counter",
      "Requests answered 503 after waiting the limit." },
    { "sticky_route_wait_refused_total", "counter",
      "Requests answered 503 without waiting: max= requests of their child "
      "process waited already, or the process was stopping." },
    { "sticky_route_wait_limit_seconds", "gauge",
      "How long a request waits at most (StickyRouteWait SECONDS)." },
    { "sticky_route_wait_max", "gauge",
      "Requests of one child process that may wait at once (max=)." },
};
#define SR_WAIT_METRICS (int)(sizeof(sr_wait_metrics) / sizeof(sr_wait_metrics[0]))

static void sr_status_prometheus_wait(request_rec *r,
                                      const apr_array_header_t *wrows)
{
    int i, k;

    if (wrows->nelts == 0) {
        return;
    }
    for (k = 0; k < SR_WAIT_METRICS; k++) {
        ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n", sr_wait_metrics[k].name,
                   sr_wait_metrics[k].help, sr_wait_metrics[k].name,
                   sr_wait_metrics[k].type);
        for (i = 0; i < wrows->nelts; i++) {
            const sr_wait_row_t *w = &APR_ARRAY_IDX(wrows, i, sr_wait_row_t);
            ap_rprintf(r, "%s{server=\"%s\",balancer=\"%s\"} %"
                       APR_UINT64_T_FMT "\n", sr_wait_metrics[k].name,
                       sr_label_escape(r->pool, w->server),
                       sr_label_escape(r->pool, w->balancer),
                       sr_wait_value(w, k));
        }
    }
}

static void sr_status_json_wait(request_rec *r,
                                const apr_array_header_t *wrows)
{
    int i;

    ap_rputs(",\"wait\":[", r);
    for (i = 0; i < wrows->nelts; i++) {
        const sr_wait_row_t *w = &APR_ARRAY_IDX(wrows, i, sr_wait_row_t);
        ap_rprintf(r, "%s{\"server\":\"%s\",\"balancer\":\"%s\","
                   "\"waiting\":%" APR_UINT64_T_FMT ",\"served\":%"
                   APR_UINT64_T_FMT ",\"timeouts\":%" APR_UINT64_T_FMT
                   ",\"refused\":%" APR_UINT64_T_FMT ",\"seconds\":%"
                   APR_UINT64_T_FMT ",\"max\":%" APR_UINT64_T_FMT "}",
                   i ? "," : "", sr_json_escape(r->pool, w->server),
                   sr_json_escape(r->pool, w->balancer), sr_wait_value(w, 0),
                   sr_wait_value(w, 1), sr_wait_value(w, 2),
                   sr_wait_value(w, 3), sr_wait_value(w, 4),
                   sr_wait_value(w, 5));
    }
    ap_rputs("]", r);
}

static void sr_status_json(request_rec *r, const apr_array_header_t *rows,
                           const apr_array_header_t *drows,
                           const apr_array_header_t *wrows)
{
    int i, k;

    ap_rputs("{\"members\":[", r);
    for (i = 0; i < rows->nelts; i++) {
        const sr_status_row_t *row = &APR_ARRAY_IDX(rows, i, sr_status_row_t);
        ap_rprintf(r, "%s{\"server\":\"%s\",\"balancer\":\"%s\","
                   "\"route\":\"%s\",\"lbmethod\":\"%s\",\"up\":%d,",
                   i ? "," : "",
                   sr_json_escape(r->pool, row->server),
                   sr_json_escape(r->pool, row->balancer),
                   sr_json_escape(r->pool, row->route),
                   sr_json_escape(r->pool, row->method), row->up);
        if (row->inflight) {
            /* only where in-flight requests are counted */
            ap_rprintf(r, "\"inflight\":%u,", (unsigned)sr_inflight(row));
        }
        ap_rprintf(r, "\"slowstart_share\":%.3f,\"hash_share\":%.6f,"
                   "\"requests\":{", row->share, sr_hash_share_of(row));
        for (k = 0; k < SR_STATUS_COUNT; k++) {
            ap_rprintf(r, "%s\"%s\":%" APR_UINT64_T_FMT, k ? "," : "",
                       sr_status_name((sr_status_t)k), sr_count(row, k));
        }
        ap_rputs("}}", r);
    }
    ap_rputs("],\"discovery\":[", r);
    for (i = 0; i < drows->nelts; i++) {
        const sr_discover_row_t *d = &APR_ARRAY_IDX(drows, i, sr_discover_row_t);
        ap_rprintf(r, "%s{\"server\":\"%s\",\"balancer\":\"%s\","
                   "\"target\":\"%s\",\"members\":%" APR_UINT64_T_FMT
                   ",\"slots_free\":%" APR_UINT64_T_FMT ",\"unplaced\":%"
                   APR_UINT64_T_FMT ",\"errors\":%" APR_UINT64_T_FMT
                   ",\"resolutions\":%" APR_UINT64_T_FMT ",\"max\":%"
                   APR_UINT64_T_FMT ",\"held\":%" APR_UINT64_T_FMT
                   ",\"reused\":%" APR_UINT64_T_FMT ",\"next_seconds\":%"
                   APR_UINT64_T_FMT ",\"failing\":%" APR_UINT64_T_FMT "}",
                   i ? "," : "",
                   sr_json_escape(r->pool, d->server),
                   sr_json_escape(r->pool, d->balancer),
                   sr_json_escape(r->pool, d->target), sr_disc(d, 0),
                   sr_disc(d, 1), sr_disc(d, 2), sr_disc(d, 3), sr_disc(d, 4),
                   sr_disc(d, 5), sr_disc(d, 6), sr_disc(d, 7), sr_disc(d, 8),
                   sr_disc(d, 9));
    }
    ap_rputs("]", r);
    sr_status_json_wait(r, wrows);
    ap_rputs("}\n", r);
}

static const char *sr_row_labels(apr_pool_t *p, const sr_status_row_t *row)
{
    return apr_psprintf(p, "server=\"%s\",balancer=\"%s\",route=\"%s\"",
                        sr_label_escape(p, row->server),
                        sr_label_escape(p, row->balancer),
                        sr_label_escape(p, row->route));
}

static void sr_status_prometheus(request_rec *r,
                                 const apr_array_header_t *rows)
{
    int i, k;

    ap_rputs("# HELP sticky_route_requests_total Requests served, by server, "
             "balancer, member route and decision.\n"
             "# TYPE sticky_route_requests_total counter\n", r);
    for (i = 0; i < rows->nelts; i++) {
        const sr_status_row_t *row = &APR_ARRAY_IDX(rows, i, sr_status_row_t);
        const char *labels = sr_row_labels(r->pool, row);
        for (k = 0; k < SR_STATUS_COUNT; k++) {
            if (!sr_status_applies(row->method, k)) {
                continue;
            }
            ap_rprintf(r, "sticky_route_requests_total{%s,status=\"%s\"} %"
                       APR_UINT64_T_FMT "\n", labels,
                       sr_status_name((sr_status_t)k), sr_count(row, k));
        }
    }
    ap_rputs("# HELP sticky_route_member_up 1 when the member is usable.\n"
             "# TYPE sticky_route_member_up gauge\n", r);
    for (i = 0; i < rows->nelts; i++) {
        const sr_status_row_t *row = &APR_ARRAY_IDX(rows, i, sr_status_row_t);
        ap_rprintf(r, "sticky_route_member_up{%s} %d\n",
                   sr_row_labels(r->pool, row), row->up);
    }
    /* the in-flight gauge: only for the members of balancers that count
     * in-flight requests (StickyRouteInflight, or a setting that reads
     * them); HELP and TYPE when at least one does */
    for (i = 0, k = 0; i < rows->nelts; i++) {
        const sr_status_row_t *row = &APR_ARRAY_IDX(rows, i, sr_status_row_t);
        if (!row->inflight) {
            continue;
        }
        if (k++ == 0) {
            ap_rputs("# HELP sticky_route_member_inflight Requests the member "
                     "is serving now (balancers that count them: "
                     "StickyRouteInflight).\n"
                     "# TYPE sticky_route_member_inflight gauge\n", r);
        }
        ap_rprintf(r, "sticky_route_member_inflight{%s} %u\n",
                   sr_row_labels(r->pool, row), (unsigned)sr_inflight(row));
    }
    ap_rputs("# HELP sticky_route_member_slowstart_share Share of its weight "
             "the member takes new sessions with (StickyRouteSlowStart).\n"
             "# TYPE sticky_route_member_slowstart_share gauge\n", r);
    for (i = 0; i < rows->nelts; i++) {
        const sr_status_row_t *row = &APR_ARRAY_IDX(rows, i, sr_status_row_t);
        ap_rprintf(r, "sticky_route_member_slowstart_share{%s} %.3f\n",
                   sr_row_labels(r->pool, row), row->share);
    }
    ap_rputs("# HELP sticky_route_member_hash_share Share of the hash space "
             "the member owns (lbmethod=hash, StickyRouteElect hash).\n"
             "# TYPE sticky_route_member_hash_share gauge\n", r);
    for (i = 0; i < rows->nelts; i++) {
        const sr_status_row_t *row = &APR_ARRAY_IDX(rows, i, sr_status_row_t);
        ap_rprintf(r, "sticky_route_member_hash_share{%s} %.6f\n",
                   sr_row_labels(r->pool, row), sr_hash_share_of(row));
    }
}

/* The status endpoint (Prometheus text, ?json). Lock: per balancer, its
 * thread mutex while sr_status_collect reads b->workers; the rest reads
 * shared memory lock-free. */
int sr_status_handler(request_rec *r)
{
    sr_status_ctx_t ctx;
    int json;

    if (strcmp(r->handler, SR_STATUS_HANDLER)) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        r->allowed = (AP_METHOD_BIT << M_GET);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    json = r->args && (!strcmp(r->args, "json")
                       || !strncmp(r->args, "json&", 5));
    ctx.r = r;
    ctx.seen_shared = apr_hash_make(r->pool);
    ctx.seen_label = apr_hash_make(r->pool);
    ctx.rows = apr_array_make(r->pool, 16, sizeof(sr_status_row_t));
    ctx.discover_rows = apr_array_make(r->pool, 2, sizeof(sr_discover_row_t));
    ctx.wait_rows = apr_array_make(r->pool, 2, sizeof(sr_wait_row_t));
    sr_for_each_balancer(sr_main_server ? sr_main_server : r->server,
                         sr_status_collect, &ctx);

    ap_set_content_type(r, json ? "application/json"
                                : "text/plain; version=0.0.4");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only) {
        return OK;
    }
    if (json) {
        sr_status_json(r, ctx.rows, ctx.discover_rows, ctx.wait_rows);
    }
    else {
        sr_status_prometheus(r, ctx.rows);
        sr_status_prometheus_discover(r, ctx.discover_rows);
        sr_status_prometheus_wait(r, ctx.wait_rows);
    }
    return OK;
}
