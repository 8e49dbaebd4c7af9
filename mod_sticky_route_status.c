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
#include "apr_atomic.h"
#include "apr_hash.h"
#include "apr_strings.h"

#include "mod_sticky_route_private.h"

typedef struct {
    const char *server;     /* label of the (virtual) server */
    const char *balancer;   /* without balancer:// */
    const char *route;
    const char *method;
    int up;
    sr_shm_member_t *counter;
} sr_status_row_t;

typedef struct {
    request_rec *r;
    apr_hash_t *seen_shared;    /* proxy_balancer_shared already listed */
    apr_hash_t *seen_label;     /* server label + balancer already used */
    apr_array_header_t *rows;
} sr_status_ctx_t;

/* "host:port" of a (virtual) server: its ServerName, and the port of its
 * ServerName or of its first address. */
static const char *sr_server_label(apr_pool_t *p, server_rec *s)
{
    apr_port_t port = s->port;

    if (!port && s->addrs) {
        port = s->addrs->host_port;
    }
    return apr_psprintf(p, "%s:%u", s->server_hostname ? s->server_hostname
                                                       : "", (unsigned)port);
}

static int sr_status_collect(server_rec *s, proxy_balancer *b, void *baton)
{
    sr_status_ctx_t *ctx = baton;
    apr_pool_t *p = ctx->r->pool;
    proxy_worker **w = (proxy_worker **)b->workers->elts;
    const char *name = b->s->name, *label, *key;
    const char **routes;
    sr_shm_balancer_t *sb;
    int k;

    if (apr_hash_get(ctx->seen_shared, &b->s, sizeof(b->s))) {
        return 0;
    }
    apr_hash_set(ctx->seen_shared, apr_pmemdup(p, &b->s, sizeof(b->s)),
                 sizeof(b->s), "");
    if (!strncasecmp(name, BALANCER_PREFIX, sizeof(BALANCER_PREFIX) - 1)) {
        name += sizeof(BALANCER_PREFIX) - 1;
    }
    label = sr_server_label(p, s);
    key = apr_pstrcat(p, label, "\n", name, NULL);
    if (apr_hash_get(ctx->seen_label, key, APR_HASH_KEY_STRING)) {
        /* two servers with the same name and port (other addresses):
         * mod_proxy_balancer's server id tells them apart */
        label = apr_pstrcat(p, label, "#", sr_server_id(s), NULL);
    }
    apr_hash_set(ctx->seen_label, key, APR_HASH_KEY_STRING, "");
    routes = sr_balancer_routes(p, s, b);
    sb = sr_shm_balancer(s, b, 0);
    for (k = 0; k < b->workers->nelts; k++) {
        sr_status_row_t *row = apr_array_push(ctx->rows);
        row->server = label;
        row->balancer = name;
        row->route = routes[k];
        row->method = b->lbmethod->name;
        row->up = PROXY_WORKER_IS_USABLE(w[k]) ? 1 : 0;
        row->counter = sb ? sr_shm_member(sb, routes[k], 0) : NULL;
    }
    return 0;
}

static apr_uint64_t sr_count(const sr_status_row_t *row, int k)
{
    return row->counter ? apr_atomic_read64(&row->counter->count[k])
                        : (apr_uint64_t)0;
}

static void sr_status_json(request_rec *r, const apr_array_header_t *rows)
{
    int i, k;

    ap_rputs("{\"members\":[", r);
    for (i = 0; i < rows->nelts; i++) {
        const sr_status_row_t *row = &APR_ARRAY_IDX(rows, i, sr_status_row_t);
        ap_rprintf(r, "%s{\"server\":\"%s\",\"balancer\":\"%s\","
                   "\"route\":\"%s\",\"lbmethod\":\"%s\",\"up\":%d,"
                   "\"requests\":{", i ? "," : "",
                   sr_json_escape(r->pool, row->server),
                   sr_json_escape(r->pool, row->balancer),
                   sr_json_escape(r->pool, row->route),
                   sr_json_escape(r->pool, row->method), row->up);
        for (k = 0; k < SR_STATUS_COUNT; k++) {
            ap_rprintf(r, "%s\"%s\":%" APR_UINT64_T_FMT, k ? "," : "",
                       sr_status_name((sr_status_t)k), sr_count(row, k));
        }
        ap_rputs("}}", r);
    }
    ap_rputs("]}\n", r);
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
        int sticky = !strcmp(row->method, SR_LBMETHOD_STICKY);
        const char *labels = apr_psprintf(r->pool,
            "server=\"%s\",balancer=\"%s\",route=\"%s\"",
            sr_label_escape(r->pool, row->server),
            sr_label_escape(r->pool, row->balancer),
            sr_label_escape(r->pool, row->route));
        for (k = 0; k < SR_STATUS_COUNT; k++) {
            if ((k == SR_STATUS_ROUNDROBIN) == sticky) {
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
        ap_rprintf(r, "sticky_route_member_up{server=\"%s\",balancer=\"%s\","
                   "route=\"%s\"} %d\n",
                   sr_label_escape(r->pool, row->server),
                   sr_label_escape(r->pool, row->balancer),
                   sr_label_escape(r->pool, row->route), row->up);
    }
}

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
    sr_for_each_balancer(sr_main_server ? sr_main_server : r->server,
                         sr_status_collect, &ctx);

    ap_set_content_type(r, json ? "application/json"
                                : "text/plain; version=0.0.4");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only) {
        return OK;
    }
    if (json) {
        sr_status_json(r, ctx.rows);
    }
    else {
        sr_status_prometheus(r, ctx.rows);
    }
    return OK;
}
