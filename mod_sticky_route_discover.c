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
 *
 * At startup (check_config, before mod_proxy_balancer copies the workers
 * to shared memory) the name is resolved once and a member defined per
 * address, and the balancer's growth raised by max= so that slots are
 * there for the addresses that come later. Then a mod_watchdog callback,
 * in one child process (a singleton watchdog, as mod_proxy_hcheck runs its
 * checks), resolves the name every interval and applies sr_discover_plan
 * the way balancer-manager applies its edits: a new member in a free
 * worker slot (ap_proxy_define_worker, ap_proxy_share_worker,
 * ap_proxy_initialize_worker under the balancer's global lock, then the
 * balancer's update stamp, which makes every child's
 * ap_proxy_sync_balancer pick the member up at its next request), or the
 * disabled status bit in the member's shared slot.
 *
 * Why a slot is never given to another address: a slot is a worker's
 * proxy_worker_shared; each child holds its own proxy_worker for it, with
 * its own connection pool (worker->cp, pooled connections to the old
 * address) and its resolved address (worker->cp->addr). Nothing in
 * mod_proxy tells another child to drop them: ap_proxy_sync_balancer only
 * adds workers for slots whose name hash it has not seen (it would make a
 * second proxy_worker for the same slot and keep the first one, pooled
 * connections included), and a worker is never re-initialized in place.
 * A reused slot could thus carry a request to the old address. So an
 * address that goes keeps its slot, disabled, and gets it back - same
 * member, same route - when it returns; a new address takes a free slot;
 * when none is left the address is logged and counted (status endpoint:
 * sticky_route_discover_unplaced) until a graceful restart with a larger
 * max= gives the balancer a new, larger slot table (no request is lost:
 * old children finish theirs with the old one).
 */
#include <stdlib.h>
#include <string.h>

#include "http_core.h"
#include "apr_atomic.h"
#include "apr_network_io.h"
#include "apr_strings.h"
#include "apr_optional.h"
#include "apr_uri.h"
#include "mod_watchdog.h"

#include "mod_sticky_route_private.h"

#define SR_DISCOVER_WATCHDOG     "_sticky_route_discover_"
#define SR_DISCOVER_INTERVAL_DEF 5          /* seconds */
#define SR_DISCOVER_MAX_DEF      16
#define SR_DISCOVER_MAX_MAX      1024
#define SR_DISCOVER_ADDRS_MAX    1024       /* addresses read per answer */

typedef struct {
    server_rec *s;
    proxy_balancer *b;
    const sr_discover_conf_t *dc;
    const sr_key_t *route_key;
    apr_hash_t *configured; /* names of the configured BalancerMembers */
    int failing;            /* the last resolution failed (logged once) */
    int short_logged;       /* "no free slot" said for this shortage */
} sr_discovery_t;

/* The discoveries of this configuration generation (pconf). */
static apr_array_header_t *sr_discoveries;

static apr_status_t sr_discoveries_reset(void *data)
{
    (void)data;
    sr_discoveries = NULL;
    return APR_SUCCESS;
}

/* ---- configuration ----------------------------------------------------------- */

const char *sr_discover_parse(apr_pool_t *p, int argc, char *const argv[],
                              sr_discover_conf_t *dc)
{
    apr_uri_t uri;
    long n;
    int i;

    if (argc < 1) {
        return "needs a URL such as http://service:80";
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
    dc->port = uri.port ? uri.port : apr_uri_port_of_scheme(dc->scheme);
    if (!dc->port) {
        return apr_psprintf(p, "'%s': no port and no default port for %s",
                            argv[0], dc->scheme);
    }
    dc->interval = apr_time_from_sec(SR_DISCOVER_INTERVAL_DEF);
    dc->max = SR_DISCOVER_MAX_DEF;
    dc->keepalive = -1;
    dc->ttl = dc->conn_timeout = dc->retry = dc->timeout = -1;
    dc->lbfactor = -1;
    for (i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        const char *key = eq ? apr_pstrmemdup(p, argv[i], (apr_size_t)(eq - argv[i]))
                             : argv[i];
        const char *val = eq ? eq + 1 : "";

        if (!strcasecmp(key, "interval") && sr_parse_number(val, 86400, &n) && n > 0) {
            dc->interval = apr_time_from_sec(n);
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
            return apr_psprintf(p, "'%s': expected interval=SECONDS (1-86400), "
                                "max=N (1-%d), keepalive=On|Off, ttl=, "
                                "connectiontimeout=, retry=, timeout= "
                                "(seconds) or loadfactor=1-100", argv[i],
                                SR_DISCOVER_MAX_MAX);
        }
    }
    return NULL;
}

/* ---- members --------------------------------------------------------------------- */

/* "scheme://ADDRESS:port" of one resolved address. */
static const char *sr_member_url(apr_pool_t *p, const sr_discover_conf_t *dc,
                                 apr_sockaddr_t *sa, char **addr_out)
{
    char *ip = NULL;

    apr_sockaddr_ip_get(&ip, sa);
    *addr_out = ip;
#if APR_HAVE_IPV6
    if (sa->family == APR_INET6) {
        return apr_psprintf(p, "%s://[%s]:%u", dc->scheme, ip, (unsigned)dc->port);
    }
#endif
    return apr_psprintf(p, "%s://%s:%u", dc->scheme, ip, (unsigned)dc->port);
}

/* The distinct addresses of the name, sorted (so that every proxy replica
 * makes its members in the same order); 0 when it does not resolve. */
static int sr_resolve(apr_pool_t *p, const sr_discover_conf_t *dc,
                      apr_array_header_t *urls, apr_array_header_t *addrs,
                      apr_status_t *rv)
{
    apr_sockaddr_t *sa = NULL, *a;
    int i, n = 0;

    *rv = apr_sockaddr_info_get(&sa, dc->host, APR_UNSPEC, dc->port, 0, p);
    if (*rv != APR_SUCCESS) {
        return 0;
    }
    for (a = sa; a && n < SR_DISCOVER_ADDRS_MAX; a = a->next) {
        char *ip;
        const char *url = sr_member_url(p, dc, a, &ip);
        int dup = 0;
        for (i = 0; i < urls->nelts && !dup; i++) {
            dup = !strcmp(APR_ARRAY_IDX(urls, i, const char *), url);
        }
        if (!dup) {
            APR_ARRAY_PUSH(urls, const char *) = url;
            APR_ARRAY_PUSH(addrs, const char *) = ip;
            n++;
        }
    }
    /* sort both arrays by URL (insertion sort: small) */
    for (i = 1; i < urls->nelts; i++) {
        int j = i;
        while (j > 0 && strcmp(APR_ARRAY_IDX(urls, j - 1, const char *),
                               APR_ARRAY_IDX(urls, j, const char *)) > 0) {
            const char *t = APR_ARRAY_IDX(urls, j, const char *);
            APR_ARRAY_IDX(urls, j, const char *) = APR_ARRAY_IDX(urls, j - 1, const char *);
            APR_ARRAY_IDX(urls, j - 1, const char *) = t;
            t = APR_ARRAY_IDX(addrs, j, const char *);
            APR_ARRAY_IDX(addrs, j, const char *) = APR_ARRAY_IDX(addrs, j - 1, const char *);
            APR_ARRAY_IDX(addrs, j - 1, const char *) = t;
            j--;
        }
    }
    return n;
}

/* A discovered member's route: derived from the balancer and its URL, keyed
 * with the secret when there is one - every replica gives it the same. */
static void sr_discovered_route(char *out, const proxy_balancer *b,
                                const char *url, const sr_key_t *key)
{
    char input[PROXY_BALANCER_MAX_NAME_SIZE + PROXY_WORKER_MAX_NAME_SIZE + 2];

    apr_snprintf(input, sizeof(input), "%s %s", b->s->name, url);
    sr_route_derive(out, input, key);
}

static void sr_member_params(proxy_worker *w, const sr_discover_conf_t *dc)
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
        w->s->lbfactor = dc->lbfactor;
    }
}

static const char *sr_worker_name(const proxy_worker *w)
{
    return w->s->name_ex[0] ? w->s->name_ex : w->s->name;
}

/* The address of w when it is a member a discovery makes - same scheme
 * and port, an address (not a name) as its host - else NULL. httpd leaves
 * the scheme's default port out of a worker's name ("http://10.0.0.5"), so
 * ":port" may be missing. (The caller leaves out the configured members.) */
static const char *sr_discovered_addr(apr_pool_t *p,
                                      const sr_discover_conf_t *dc,
                                      const proxy_worker *w)
{
    const char *name = sr_worker_name(w);
    size_t slen = strlen(dc->scheme);
    const char *host, *end, *addr_end, *c;
    char port[8];

    if (w->s->port != dc->port || w->s->is_name_matchable
        || strncasecmp(name, dc->scheme, slen) || strncmp(name + slen, "://", 3)) {
        return NULL;
    }
    host = name + slen + 3;
    if (*host == '[') {
        addr_end = strchr(host, ']');
        if (!addr_end) {
            return NULL;
        }
        end = addr_end + 1;
        host++;
    }
    else {
        for (c = host; (*c >= '0' && *c <= '9') || *c == '.'; c++)
            ;
        if (c == host) {
            return NULL;
        }
        addr_end = end = c;     /* a name would stop here on a letter */
    }
    apr_snprintf(port, sizeof(port), ":%u", (unsigned)dc->port);
    if (*end == ':') {
        if (strncmp(end, port, strlen(port))) {
            return NULL;
        }
        end += strlen(port);
    }
    else if (dc->port != apr_uri_port_of_scheme(dc->scheme)) {
        return NULL;            /* no port: only the default one */
    }
    if (*end == '/') {
        end++;
    }
    if (*end) {
        return NULL;
    }
    return apr_pstrmemdup(p, host, (apr_size_t)(addr_end - host));
}

/* ---- startup ------------------------------------------------------------------------ */

int sr_discover_check(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s,
                      proxy_balancer *b, const sr_discover_conf_t *dc,
                      const sr_key_t *route_key)
{
    proxy_server_conf *conf = ap_get_module_config(s->module_config,
                                                   &proxy_module);
    apr_array_header_t *urls = apr_array_make(ptemp, 8, sizeof(char *));
    apr_array_header_t *addrs = apr_array_make(ptemp, 8, sizeof(char *));
    apr_hash_t *configured = apr_hash_make(pconf);
    proxy_worker **ws = (proxy_worker **)b->workers->elts;
    apr_status_t rv;
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
    /* slots for the members discovery adds while the server runs */
    b->growth += dc->max;
    n = sr_resolve(ptemp, dc, urls, addrs, &rv);
    if (n == 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     "StickyRouteDiscover %s in %s: %s does not resolve (yet); "
                     "members are added when it does", dc->url, b->s->name,
                     dc->host);
    }
    for (i = 0; i < n && made < dc->max; i++) {
        const char *url = APR_ARRAY_IDX(urls, i, const char *);
        proxy_worker *w = ap_proxy_get_worker(ptemp, b, conf, url);
        char route[SR_DERIVED_ROUTE_LEN + 1];
        const char *err;

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
        sr_discovered_route(route, b, url, route_key);
        apr_cpystrn(w->s->route, route, sizeof(w->s->route));
        made++;
    }
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
        if (!sr_discoveries) {
            sr_discoveries = apr_array_make(pconf, 4, sizeof(sr_discovery_t *));
            apr_pool_cleanup_register(pconf, NULL, sr_discoveries_reset,
                                      apr_pool_cleanup_null);
        }
        APR_ARRAY_PUSH(sr_discoveries, sr_discovery_t *) = d;
    }
    return 1;
}

/* ---- run time: the watchdog ------------------------------------------------------ */

/* Adds a member for url in a free slot, as balancer-manager does; the
 * balancer's global lock is held. Returns the worker or NULL. */
static proxy_worker *sr_add_member(sr_discovery_t *d, proxy_server_conf *conf,
                                   const char *url)
{
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

static void sr_discover_run(sr_discovery_t *d, apr_pool_t *p)
{
    proxy_balancer *b = d->b;
    proxy_server_conf *conf = ap_get_module_config(d->s->module_config,
                                                   &proxy_module);
    apr_array_header_t *urls = apr_array_make(p, 16, sizeof(char *));
    apr_array_header_t *addrs = apr_array_make(p, 16, sizeof(char *));
    apr_array_header_t *have = apr_array_make(p, 16, sizeof(sr_disc_member_t));
    apr_array_header_t *have_w = apr_array_make(p, 16, sizeof(proxy_worker *));
    sr_shm_balancer_t *sb = sr_shm_balancer(d->s, b, 0);
    sr_disc_action_t *ha, *wa;
    sr_disc_counts_t counts;
    apr_uint32_t free_slots, members = 0, i;
    proxy_worker **ws;
    apr_status_t rv;
    int n, locked;

    if (sb) {
        apr_atomic_set32(&sb->disc_on, 1);
        apr_atomic_inc64(&sb->disc_runs);
    }
    n = sr_resolve(p, d->dc, urls, addrs, &rv);
    if (n == 0) {
        if (sb) {
            apr_atomic_inc64(&sb->disc_errors);
        }
        if (!d->failing) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, d->s,
                         "StickyRouteDiscover %s in %s: %s does not resolve "
                         "(or to no address); the members stay as they are",
                         d->dc->url, b->s->name, d->dc->host);
            d->failing = 1;
        }
        return;
    }
    if (d->failing) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s,
                     "StickyRouteDiscover %s in %s: %s resolves again",
                     d->dc->url, b->s->name, d->dc->host);
        d->failing = 0;
    }
    locked = PROXY_GLOBAL_LOCK(b) == APR_SUCCESS;
    /* members other processes added (balancer-manager) first */
    ap_proxy_sync_balancer(b, d->s, conf);
    ws = (proxy_worker **)b->workers->elts;
    for (i = 0; i < (apr_uint32_t)b->workers->nelts; i++) {
        sr_disc_member_t *m;
        const char *name = sr_worker_name(ws[i]);
        const char *a;
        if (apr_hash_get(d->configured, name, APR_HASH_KEY_STRING)
            || !(a = sr_discovered_addr(p, d->dc, ws[i]))) {
            continue;
        }
        m = apr_array_push(have);
        m->addr = a;
        m->enabled = !(ws[i]->s->status & PROXY_WORKER_DISABLED);
        APR_ARRAY_PUSH(have_w, proxy_worker *) = ws[i];
    }
    free_slots = (b->storage && b->wslot) ? b->storage->num_free_slots(b->wslot)
                                          : 0;
    ha = apr_pcalloc(p, (have->nelts + 1) * sizeof(*ha));
    wa = apr_pcalloc(p, (addrs->nelts + 1) * sizeof(*wa));
    sr_discover_plan((sr_disc_member_t *)have->elts, (uint32_t)have->nelts,
                     (const char *const *)addrs->elts, (uint32_t)addrs->nelts,
                     free_slots, ha, wa, &counts);
    for (i = 0; i < (apr_uint32_t)have->nelts; i++) {
        proxy_worker *w = APR_ARRAY_IDX(have_w, i, proxy_worker *);
        if (ha[i] == SR_DISC_DISABLE) {
            ap_proxy_set_wstatus(PROXY_WORKER_DISABLED_FLAG, 1, w);
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s,
                         "StickyRouteDiscover %s in %s: %s is gone; member "
                         "disabled (route %s)", d->dc->url, b->s->name,
                         sr_worker_name(w), w->s->route);
        }
        else if (ha[i] == SR_DISC_ENABLE) {
            ap_proxy_set_wstatus(PROXY_WORKER_DISABLED_FLAG, 0, w);
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s,
                         "StickyRouteDiscover %s in %s: %s is back; member "
                         "enabled (route %s)", d->dc->url, b->s->name,
                         sr_worker_name(w), w->s->route);
        }
        if (ha[i] == SR_DISC_ENABLE
            || (ha[i] == SR_DISC_KEEP
                && !(w->s->status & PROXY_WORKER_DISABLED))) {
            members++;
        }
    }
    for (i = 0; i < (apr_uint32_t)addrs->nelts; i++) {
        const char *url = APR_ARRAY_IDX(urls, i, const char *);
        if (wa[i] == SR_DISC_ADD) {
            proxy_worker *w = sr_add_member(d, conf, url);
            if (w) {
                members++;
                ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s,
                             "StickyRouteDiscover %s in %s: new member %s "
                             "(route %s)", d->dc->url, b->s->name, url,
                             w->s->route);
            }
            else {
                counts.no_slot++;
            }
        }
    }
    if (locked) {
        PROXY_GLOBAL_UNLOCK(b);
    }
    if (counts.no_slot && !d->short_logged) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, d->s,
                     "StickyRouteDiscover %s in %s: %u address(es) without a "
                     "free member slot (max=%d): they get no traffic; raise "
                     "max= and restart gracefully (no request is lost)",
                     d->dc->url, b->s->name, counts.no_slot, d->dc->max);
        d->short_logged = 1;
    }
    else if (!counts.no_slot) {
        d->short_logged = 0;
    }
    if (sb) {
        apr_atomic_set32(&sb->disc_members, members);
        apr_atomic_set32(&sb->disc_unplaced, counts.no_slot);
        apr_atomic_set32(&sb->disc_free, (b->storage && b->wslot)
                         ? b->storage->num_free_slots(b->wslot) : 0);
    }
}

typedef struct {
    sr_discovery_t *d;
    apr_time_t next;
} sr_discover_tick_t;

static apr_status_t sr_discover_callback(int state, void *data, apr_pool_t *pool)
{
    sr_discover_tick_t *t = data;
    apr_pool_t *p;
    apr_time_t now;

    if (state != AP_WATCHDOG_STATE_RUNNING && state != AP_WATCHDOG_STATE_STARTING) {
        return APR_SUCCESS;
    }
    now = apr_time_now();
    if (now < t->next) {
        return APR_SUCCESS;
    }
    t->next = now + t->d->dc->interval;
    if (apr_pool_create(&p, pool) != APR_SUCCESS) {
        return APR_SUCCESS;
    }
    sr_discover_run(t->d, p);
    apr_pool_destroy(p);
    return APR_SUCCESS;
}

int sr_discover_post_config(apr_pool_t *pconf, server_rec *main_s)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *get_instance;
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *register_callback;
    ap_watchdog_t *wd = NULL;
    apr_status_t rv;
    int i;

    if (!sr_discoveries || sr_discoveries->nelts == 0) {
        return OK;
    }
    get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    register_callback = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (!get_instance || !register_callback) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, main_s,
                     "StickyRouteDiscover needs mod_watchdog");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* one child process runs it (singleton), in a thread of its own */
    rv = get_instance(&wd, SR_DISCOVER_WATCHDOG, 0, 1, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, main_s,
                     "StickyRouteDiscover: cannot create the watchdog");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (i = 0; i < sr_discoveries->nelts; i++) {
        sr_discover_tick_t *t = apr_pcalloc(pconf, sizeof(*t));
        t->d = APR_ARRAY_IDX(sr_discoveries, i, sr_discovery_t *);
        /* the watchdog calls every 100 ms; the callback keeps the interval
         * itself (the first run at once) */
        rv = register_callback(wd, AP_WD_TM_SLICE, t, sr_discover_callback);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, main_s,
                         "StickyRouteDiscover: cannot register the watchdog "
                         "callback");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}
