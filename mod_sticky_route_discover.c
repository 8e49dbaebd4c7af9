/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_discover.c - StickyRouteDiscover: the members of a
 * balancer are the addresses a name resolves to, followed at run time.
 * This file: the directive's parameters and the startup (the first answer,
 * room for the rest, each discovery registered); the watchdogs that follow
 * the name: mod_sticky_route_discover_watchdog.c; what they apply:
 * mod_sticky_route_discover_apply.c. Below, the design of the whole.
 *
 * At startup (check_config, before mod_proxy_balancer copies the workers
 * to shared memory) the name is resolved once and a member defined per
 * address (at most max=), and the balancer's growth raised so that the
 * discovered members have exactly max= worker slots. Then a mod_watchdog
 * callback, in one child process (a singleton watchdog, as
 * mod_proxy_hcheck runs its checks), resolves the name every interval and
 * applies sr_discover_plan (sr_discover_policy.c) the way balancer-manager applies
 * its edits: a new member in a never-used worker slot (ap_proxy_define_
 * worker, ap_proxy_share_worker, ap_proxy_initialize_worker, then the
 * balancer's update stamp, which makes every child's ap_proxy_sync_balancer
 * pick the member up), the disabled status bit of a member whose address
 * left the answer, and - once that address has been gone longer than
 * hold= - the slot given to a new address.
 *
 * Reusing a slot. A slot is a worker's proxy_worker_shared; each child
 * process holds its own proxy_worker for it, with its own pooled
 * connections and its own cached address (worker->address since httpd
 * 2.4.59). ap_proxy_sync_balancer never refreshes an existing proxy_worker
 * and nothing tells another child to drop what it holds, so the slot is
 * rewritten in place (same worker hash, so no child makes a second
 * proxy_worker for it) and each per-child copy is made to follow:
 *
 *  1. the request URL: mod_proxy_balancer builds it from the slot's
 *     name_ex at every request, and ap_proxy_determine_connection closes
 *     a pooled connection whose host or port differs from the URL's.
 *     It does so with proxy_util.c's conn_cleanup, which forgets the
 *     connection's reference to its old address without dropping it: the
 *     address (one 8 KB pool of the worker's DNS pool) then lives as long
 *     as the connection, one more per reuse for a connection that lives
 *     on. So each child's per-child step (point 4's watchdog) destroys
 *     the idle pooled connections of a discovered member when it sees it
 *     disabled (its address left; no request elects it from then on), and
 *     again right after its slot was rewritten those made for another host
 *     (sr_drop_conns): destroying a connection drops every reference it
 *     holds (the slot takes no request before that step: point 3). What
 *     is left: a connection in use from before the disable until after
 *     the rewrite (a long response) leaks its one reference when it is
 *     next taken, until a later disable or rewrite of the slot destroys
 *     it;
 *  2. the cached address: every discovered member has addressttl=1, so a
 *     child's cached address expires at the latest one second after it
 *     was resolved, and is then resolved again from the URL's host (an
 *     address literal: no DNS query); a pooled connection to another
 *     address is closed when it is next taken (ap_proxy_determine_address);
 *  3. timing: a slot is rewritten only after its member has been out of
 *     election (disabled) for hold=, and at least SR_REUSE_MIN_GONE (2 s,
 *     twice the address TTL): no child resolves the old address for it
 *     after it was disabled (a request elected before that resolves it
 *     within moments, not seconds), so by the rewrite every address a
 *     child cached for the slot has expired, and the first request that
 *     elects it afterwards resolves the new one. The rewritten member
 *     stays stopped for SR_SETTLE (1 s, 10 periods of the per-child
 *     watchdog) after the rewrite, so that every child's per-child step
 *     has seen it (points 1 and 5) before it takes a request or a check;
 *  4. health checks: the hc* parameters of StickyRouteDiscover are not
 *     given to mod_proxy_hcheck (its check workers are keyed by
 *     proxy_worker pointer, copy the host once and are never dropped: they
 *     cannot follow a rewritten slot, docs/notes/hcheck-reuse.md).
 *     Discovered members keep method NONE and are checked by a singleton
 *     watchdog of ours (mod_sticky_route_hc.c) at the slot's current
 *     address: it reads the address when a check starts, skips stopped
 *     members (a rewritten one during SR_SETTLE), and applies a check's
 *     outcome under the balancer's global mutex only if the slot still has
 *     the name, port and update stamp the check was made for - a check on
 *     the wire while its slot is rewritten (under that mutex) never sets or
 *     clears the new member's flag. The pass and fail counts are the slot's
 *     shared pcount and fcount, zeroed by the rewrite with its
 *     health-check failure flag. No per-reuse cost in any child;
 * *  5. state of ours: the member's shared entry (counters, in-flight,
 *     slow start) is renamed to the route derived from the new address
 *     and starts afresh (sr_shm_member_renew); a cookie for the old
 *     address names the old route, which no member has any more. Each
 *     child's routes (its sr_balancer_state_t, rescanned every second)
 *     are rescanned at its next request once its per-child step has seen
 *     the rewrite, within the settle time: no child takes the new route's
 *     cookie, issued once the member is enabled, for an unknown one.
 *
 * Locks: the singleton takes the balancer's thread mutex, then its global
 * mutex (the order mod_proxy_balancer's own paths allow: balancer-manager
 * takes the global one alone), for sync, plan and edits; the per-child
 * watchdog takes the thread mutex alone; the health checks' singleton
 * (mod_sticky_route_hc.c) takes the thread mutex alone to pick the due
 * checks, and the global mutex alone to apply an outcome. An address beyond max= gets no
 * slot; it is counted (sticky_route_discover_unplaced) and logged at every
 * interval in which it persists, at most once a minute.
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


/* The discoveries of this configuration generation (pconf). No lock: made
 * at check_config, in the parent; fixed after. */
static apr_array_header_t *sr_discoveries;

apr_array_header_t *sr_discover_all(void)
{
    return sr_discoveries;
}

/* ---- configuration ----------------------------------------------------------- */

const char *sr_discover_parse(apr_pool_t *p, int argc, char *const argv[],
                              sr_discover_conf_t *dc)
{
    apr_uri_t uri;
    long n;
    int i;

    if (argc < 1) {
        return "needs a URL such as http://service:80 or, for SRV records, "
               "http://_http._tcp.service";
    }
    if (apr_uri_parse(p, argv[0], &uri) != APR_SUCCESS || !uri.scheme
        || !uri.hostname || !*uri.hostname
        || (uri.path && *uri.path && strcmp(uri.path, "/"))
        || uri.query || uri.fragment || uri.user) {
        return apr_psprintf(p, "'%s' is not a URL of the form "
                            "scheme://name[:port]", argv[0]);
    }
    dc->url = apr_pstrdup(p, argv[0]);
    dc->scheme = apr_pstrdup(p, uri.scheme);
    ap_str_tolower((char *)dc->scheme);
    dc->host = apr_pstrdup(p, uri.hostname);
    dc->srv = dc->host[0] == '_';
    if (dc->srv) {
        if (uri.port_str) {
            return apr_psprintf(p, "'%s': an SRV name (%s) takes no port: the "
                                "records give each member's", argv[0],
                                dc->host);
        }
        dc->port = 0;
    }
    else {
        dc->port = uri.port ? uri.port : apr_uri_port_of_scheme(dc->scheme);
        if (!dc->port) {
            return apr_psprintf(p, "'%s': no port and no default port for %s",
                                argv[0], dc->scheme);
        }
    }
    dc->interval = apr_time_from_sec(SR_DISCOVER_INTERVAL_DEF);
    dc->hold = apr_time_from_sec(SR_DISCOVER_HOLD_DEF);
    dc->hc = apr_array_make(p, 4, sizeof(const char *));
    dc->max = SR_DISCOVER_MAX_DEF;
    dc->keepalive = -1;
    dc->ttl = dc->conn_timeout = dc->retry = dc->timeout = -1;
    dc->lbfactor = -1;
    for (i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        const char *key = eq ? apr_pstrmemdup(p, argv[i], (apr_size_t)(eq - argv[i]))
                             : argv[i];
        const char *val = eq ? eq + 1 : "";

        if (!strcasecmp(key, "interval") && !strcasecmp(val, "ttl")) {
            dc->ttl_mode = 1;
            dc->interval = apr_time_from_sec(SR_TTL_RETRY);
        }
        else if (!strcasecmp(key, "interval") && sr_parse_number(val, 86400, &n) && n > 0) {
            dc->interval = apr_time_from_sec(n);
            dc->ttl_mode = 0;
        }
        else if (!strcasecmp(key, "hold") && sr_parse_number(val, 86400, &n)) {
            dc->hold = apr_time_from_sec(n);
        }
        else if ((!strcasecmp(key, "hcmethod") || !strcasecmp(key, "hcuri")
                  || !strcasecmp(key, "hcinterval") || !strcasecmp(key, "hcpasses")
                  || !strcasecmp(key, "hcfails") || !strcasecmp(key, "hcexpr")
                  || !strcasecmp(key, "hctemplate")) && eq && *val) {
            /* our own health checks (mod_sticky_route_hc.c), read below */
            APR_ARRAY_PUSH(dc->hc, const char *) = key;
            APR_ARRAY_PUSH(dc->hc, const char *) = apr_pstrdup(p, val);
        }
        else if (!strcasecmp(key, "max") && sr_parse_number(val, SR_DISCOVER_MAX_MAX, &n)
                 && n > 0) {
            dc->max = (int)n;
        }
        else if (!strcasecmp(key, "keepalive")
                 && (!strcasecmp(val, "On") || !strcasecmp(val, "Off"))) {
            dc->keepalive = !strcasecmp(val, "On");
        }
        else if (!strcasecmp(key, "ttl") && sr_parse_number(val, 86400, &n) && n > 0) {
            dc->ttl = n;
        }
        else if (!strcasecmp(key, "connectiontimeout")
                 && sr_parse_number(val, 3600, &n) && n > 0) {
            dc->conn_timeout = n;
        }
        else if (!strcasecmp(key, "retry") && sr_parse_number(val, 86400, &n)) {
            dc->retry = n;
        }
        else if (!strcasecmp(key, "timeout") && sr_parse_number(val, 86400, &n) && n > 0) {
            dc->timeout = n;
        }
        else if (!strcasecmp(key, "loadfactor") && sr_parse_number(val, 100, &n)
                 && n > 0) {
            dc->lbfactor = (int)n;
        }
        else {
            return apr_psprintf(p, "'%s': expected interval=SECONDS (1-86400) "
                                "or interval=ttl, "
                                "hold=SECONDS (0-86400), "
                                "max=N (1-%d), keepalive=On|Off, ttl=, "
                                "connectiontimeout=, retry=, timeout= "
                                "(seconds), loadfactor=1-100 or a health "
                                "check parameter (hcmethod=, hcuri=, "
                                "hcinterval=, hcpasses=, hcfails=, hcexpr=, "
                                "hctemplate=)", argv[i],
                                SR_DISCOVER_MAX_MAX);
        }
    }
    {
        sr_hc_conf_t hc;
        const char *err = sr_hc_parse(p, dc, &hc);
        if (err) {
            return err;
        }
    }
    return NULL;
}


/* ---- startup ------------------------------------------------------------------------ */

int sr_discover_check(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s,
                      proxy_balancer *b, const sr_discover_conf_t *dc,
                      const sr_key_t *route_key)
{
    proxy_server_conf *conf = ap_get_module_config(s->module_config,
                                                   &proxy_module);
    apr_hash_t *configured = apr_hash_make(pconf);
    proxy_worker **ws = (proxy_worker **)b->workers->elts;
    sr_lookup_t L;
    sr_hc_conf_t hc;
    const char *err;
    int i, n, made = 0;

    for (i = 0; i < b->workers->nelts; i++) {
        const char *name = apr_pstrdup(pconf, sr_worker_name(ws[i]));
        apr_hash_set(configured, name, APR_HASH_KEY_STRING, name);
    }
    if (!APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance)
        || !APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback)) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "StickyRouteDiscover %s in %s needs mod_watchdog "
                     "(LoadModule watchdog_module modules/mod_watchdog.so, or "
                     "a2enmod watchdog)", dc->url, b->s->name);
        return 0;
    }
    if ((err = sr_hc_parse(pconf, dc, &hc)) != NULL) {
        /* (the directive's parser refused it already: kept for safety) */
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "StickyRouteDiscover %s in %s: %s", dc->url, b->s->name,
                     err);
        return 0;
    }
    sr_lookup(ptemp, dc, &L);
    n = L.found->nelts;
    if (n == 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "StickyRouteDiscover %s in %s: %s does not resolve (yet: "
                     "%s); members are added when it does", dc->url,
                     b->s->name, dc->host, L.why);
    }
    for (i = 0; i < n && made < dc->max; i++) {
        const sr_found_t *f = &APR_ARRAY_IDX(L.found, i, sr_found_t);
        const char *url = f->url;
        proxy_worker *w = ap_proxy_get_worker(ptemp, b, conf, url);
        char route[SR_DERIVED_ROUTE_LEN + 1];

        if (w) {
            continue;           /* a configured member has this address */
        }
        err = ap_proxy_define_worker(pconf, &w, b, conf, url, 0);
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         "StickyRouteDiscover %s in %s: cannot make member %s: "
                         "%s", dc->url, b->s->name, url, err);
            continue;
        }
        sr_member_params(w, dc);
        sr_member_shape(w, dc, f);
        sr_discovered_route(route, b, url, route_key);
        apr_cpystrn(w->s->route, route, sizeof(w->s->route));
        made++;
    }
    /* slots for the members discovery adds while the server runs: max=
     * discovered members in all */
    b->growth += dc->max - made;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 "StickyRouteDiscover %s in %s: %d member(s) at start, room "
                 "for %d", dc->url, b->s->name, made, dc->max);
    {
        sr_discovery_t *d = apr_pcalloc(pconf, sizeof(*d));
        d->s = s;
        d->b = b;
        d->dc = dc;
        d->route_key = route_key;
        d->configured = configured;
        d->at_start = made;
        d->hc = hc;
        if (!sr_discoveries) {
            sr_discoveries = apr_array_make(pconf, 4, sizeof(sr_discovery_t *));
            sr_forget_with_pool(pconf, (void **)&sr_discoveries);
        }
        APR_ARRAY_PUSH(sr_discoveries, sr_discovery_t *) = d;
    }
    return 1;
}

