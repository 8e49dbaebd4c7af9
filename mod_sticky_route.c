/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route.c - the module record, its hooks and the startup checks
 * (check_config: every configuration mistake; post_config: shared memory
 * and the members' shared entries claimed up front).
 *
 * The top of the glue: it calls into the other files, nothing calls into
 * it. Directives: mod_sticky_route_config.c; the settings of a balancer
 * and their checks: mod_sticky_route_effective.c. Shared memory:
 * mod_sticky_route_shm.c. Per-balancer state and its scan:
 * mod_sticky_route_state.c. The providers (finders, election):
 * mod_sticky_route_find.c; what a request brings to them (its record, its
 * cookies): mod_sticky_route_request.c. The Set-Cookie filter and the
 * counters: mod_sticky_route_filter.c. The retry:
 * mod_sticky_route_retry.c. The status handler:
 * mod_sticky_route_status.c. StickyRouteWait:
 * mod_sticky_route_wait.c. lbmethod=hash: mod_sticky_route_hash.c.
 * StickyRouteDiscover: mod_sticky_route_discover*.c (the directive and
 * startup; _watchdog.c; _apply.c), _lookup.c, _hc.c. What they share:
 * mod_sticky_route_private.h and its parts (settings, shared memory,
 * state, a request), mod_sticky_route_discover.h.
 * The decisions: sr_policy.h (its opening comment is a request's whole
 * decision table) over sr_policy*.c, sr_discover_policy.c; the httpd-free
 * helpers (cookie grammar, keys, schedule): sr_core.h. The request path
 * through these files: docs/DESIGN.md.
 */
#include <string.h>

#include "http_core.h"
#include "ap_mpm.h"
#include "apr_strings.h"

#define SR_MODULE_RECORD
#include "mod_sticky_route_private.h"

/* ====================================================================
 * Startup: validation, derived routes, shared memory
 * ==================================================================== */

typedef struct {
    proxy_balancer *b;
    const sr_cookie_spec_t *cookie;
} sr_seen_t;

typedef struct {
    apr_pool_t *pconf;
    apr_pool_t *ptemp;
    server_rec *server;         /* the server `seen` is about */
    apr_array_header_t *seen;   /* sticky balancers of that server */
    int ok;
} sr_check_t;

/* One balancer at startup: members without route= get their derived
 * route (before mod_proxy_balancer copies the workers to shared memory,
 * so balancer-manager shows it); lbmethod=sticky needs routes a cookie
 * can carry, unique in the balancer, and a cookie name+path of its own in
 * its virtual host. */
static int sr_prepare_balancer(server_rec *s, proxy_balancer *b, void *baton)
{
    sr_check_t *ck = baton;
    proxy_worker **w = (proxy_worker **)b->workers->elts;
    int sticky = (b->lbmethod == &sr_sticky_method);
    sr_effective_t eff;
    const sr_conf_t *sec;
    sr_seen_t *added;
    int j, k;

    if (ck->server != s) {
        ck->server = s;
        ck->seen = apr_array_make(ck->ptemp, 4, sizeof(sr_seen_t));
    }
    sec = sr_section_conf(ck->ptemp, s, b);
    sr_effective(s, sec, &eff);
    if (sec && sec->discover
        && !sr_discover_check(ck->pconf, ck->ptemp, s, b, sec->discover,
                              eff.route_key)) {
        ck->ok = 0;
    }
    w = (proxy_worker **)b->workers->elts;     /* discovery may add some */
    for (j = 0; j < b->workers->nelts; j++) {
        const char *url = w[j]->s->name_ex[0] ? w[j]->s->name_ex
                                              : w[j]->s->name;
        int bad = 0;

        if (!w[j]->s->route[0]) {
            char derived[SR_DERIVED_ROUTE_LEN + 1];
            sr_route_derive(derived, url, eff.route_key);
            apr_cpystrn(w[j]->s->route, derived, sizeof(w[j]->s->route));
        }
        if (!sr_route_is_valid(w[j]->s->route, strlen(w[j]->s->route))) {
            ap_log_error(APLOG_MARK, sticky ? APLOG_EMERG : APLOG_WARNING, 0,
                         s, "BalancerMember %s route=%s in %s: %s",
                         url, w[j]->s->route, b->s->name,
                         sticky ? "lbmethod=sticky needs routes of 1-63 "
                                  "characters A-Z a-z 0-9 - _ ~"
                                : "not a valid cookie route (1-63 characters "
                                  "A-Z a-z 0-9 - _ ~); the status endpoint "
                                  "and STICKY_ROUTE show its derived route");
            bad = 1;
        }
        for (k = 0; k < j && !bad; k++) {
            if (!strcmp(w[k]->s->route, w[j]->s->route)) {
                ap_log_error(APLOG_MARK, sticky ? APLOG_EMERG : APLOG_WARNING,
                             0, s, "BalancerMember route=%s is used twice in "
                             "%s (%s and %s): %s", w[j]->s->route, b->s->name,
                             w[k]->s->name_ex, url,
                             sticky ? "lbmethod=sticky needs one route per "
                                      "member"
                                    : "the second member is shown with its "
                                      "derived route");
                bad = 1;
            }
        }
        if (bad && sticky) {
            ck->ok = 0;
        }
    }
    if (!sticky) {
        return 0;
    }
    if (b->s->sticky[0] || b->s->sticky_path[0]) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "ProxySet stickysession=%s on %s is not needed with "
                     "lbmethod=sticky: mod_sticky_route reads and issues the "
                     "route cookie itself (see StickyRouteCookie); with "
                     "stickysession set, mod_proxy_balancer routes by that "
                     "cookie before lbmethod=sticky runs - remove it",
                     b->s->sticky[0] ? b->s->sticky : b->s->sticky_path,
                     b->s->name);
    }
    for (k = 0; k < ck->seen->nelts; k++) {
        sr_seen_t *o = &APR_ARRAY_IDX(ck->seen, k, sr_seen_t);
        if (o->b->s == b->s || !strcmp(o->b->s->name, b->s->name)) {
            continue;
        }
        if (!strcmp(o->cookie->name, eff.cookie->name)
            && !strcmp(o->cookie->path, eff.cookie->path)) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         "StickyRouteCookie: sticky balancers %s and %s in "
                         "virtual host %s:%u both use cookie %s with Path=%s; "
                         "a browser would send one cookie to both - give each "
                         "its own StickyRouteCookie name or path in its "
                         "<Proxy> section", o->b->s->name, b->s->name,
                         s->server_hostname ? s->server_hostname : "*",
                         (unsigned)s->port, eff.cookie->name,
                         eff.cookie->path);
            ck->ok = 0;
        }
    }
    added = apr_array_push(ck->seen);
    added->b = b;
    added->cookie = eff.cookie;
    return 0;
}

/* check_config runs for `apache2 -t` too: every configuration mistake,
 * and a missing module this one needs, is reported here. */
static int sr_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *main_s)
{
    sr_check_t ck;

    (void)plog;
    sr_config_init(pconf);
    if (!ap_find_linked_module("mod_proxy_balancer.c")) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, main_s,
                     "mod_sticky_route needs mod_proxy_balancer: its lbmethod "
                     "providers plug into it (LoadModule proxy_balancer_module "
                     "modules/mod_proxy_balancer.so, or a2enmod "
                     "proxy_balancer)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* StickyRouteDiscover and StickyRouteWait need a balancer of ours */
    {
        server_rec *s;
        for (s = main_s; s; s = s->next) {
            proxy_server_conf *pc = ap_get_module_config(s->module_config,
                                                         &proxy_module);
            proxy_balancer *bal;
            int i;
            if (!pc || !pc->balancers) {
                continue;
            }
            bal = (proxy_balancer *)pc->balancers->elts;
            for (i = 0; i < pc->balancers->nelts; i++) {
                const sr_conf_t *sec = sr_section_conf(ptemp, s, &bal[i]);
                if (sec && sec->discover && !sr_is_ours(&bal[i])) {
                    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                                 "StickyRouteDiscover %s in %s needs "
                                 "lbmethod=sticky, roundrobin or hash "
                                 "(ProxySet lbmethod=...)", sec->discover->url,
                                 bal[i].s->name);
                    return HTTP_INTERNAL_SERVER_ERROR;
                }
                if (sec && sec->wait > 0 && !sr_is_ours(&bal[i])) {
                    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                                 "StickyRouteWait in %s needs lbmethod=sticky, "
                                 "roundrobin or hash (ProxySet "
                                 "lbmethod=...)", bal[i].s->name);
                    return HTTP_INTERNAL_SERVER_ERROR;
                }
            }
        }
    }
    ck.pconf = pconf;
    ck.ptemp = ptemp;
    ck.server = NULL;
    ck.seen = NULL;
    ck.ok = 1;
    sr_for_each_balancer(main_s, sr_prepare_balancer, &ck);
    if (!ck.ok) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* StickyRouteInflight Off refused where a setting reads the counts */
    return sr_config_check(pconf, plog, ptemp, main_s);
}

typedef struct {
    int balancers_short;
    int members_short;
} sr_claim_t;

/* Claims the shared entries of a balancer and its members up front, so
 * that a shortage shows at startup. */
static int sr_claim_shared(server_rec *s, proxy_balancer *b, void *baton)
{
    sr_claim_t *cl = baton;
    sr_shm_balancer_t *sb = sr_shm_balancer(s, b, 1);
    const char **routes;
    int j;

    if (!sb) {
        if (!cl->balancers_short++) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "mod_sticky_route: no shared slot left for %s (of "
                         "%d); its round robin is per process and it has no "
                         "counters", b->s->name, SR_SHM_BALANCERS);
        }
        return 0;
    }
    routes = sr_balancer_routes(s->process->pconf, s, b);
    for (j = 0; j < b->workers->nelts; j++) {
        /* a member new at a graceful restart joins (slow start); at the
         * first start nobody does */
        if (!sr_shm_member(sb, routes[j], 1,
                           sr_shm_is_new() ? 0 : apr_time_now())
            && !cl->members_short++) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "mod_sticky_route: no shared slot left for the "
                         "counters of %s route %s (of %d)", b->s->name,
                         routes[j], SR_SHM_MEMBERS);
        }
    }
    return 0;
}

static int sr_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                          apr_pool_t *ptemp, server_rec *main_s)
{
    sr_claim_t claim = { 0, 0 };

    (void)plog;
    (void)ptemp;
    sr_main_server = main_s;
    sr_state_post_config();
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    if (sr_shm_setup(main_s->process->pool, pconf, main_s) != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* after mod_proxy_balancer's post_config: the servers' proxy ids are
     * set, and they key our entries */
    sr_for_each_balancer(main_s, sr_claim_shared, &claim);
    if (sr_discover_post_config(pconf, main_s) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    sr_hash_post_config(pconf, main_s);
    ap_add_version_component(pconf, "mod_sticky_route/" SR_MODULE_VERSION);
    return OK;
}

static void sr_child_init(apr_pool_t *pchild, server_rec *main_s)
{
    sr_state_child_init(pchild, main_s);
    sr_wait_child_init(pchild, main_s);
}

static void sr_register_hooks(apr_pool_t *p)
{
    static const char *const after_balancer[] = { "mod_proxy_balancer.c",
                                                  NULL };
    static const char *const before_watchdog[] = { "mod_watchdog.c", NULL };

    ap_hook_check_config(sr_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* mod_watchdog starts the watchdogs registered before its post_config */
    ap_hook_post_config(sr_post_config, after_balancer, before_watchdog,
                        APR_HOOK_MIDDLE);
    ap_hook_child_init(sr_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* mod_watchdog may start its threads before mod_proxy_balancer's
     * child_init made the balancers' mutexes: the discovery callbacks wait
     * for this one */
    ap_hook_child_init(sr_discover_child_ready, after_balancer, NULL,
                       APR_HOOK_MIDDLE);
    ap_hook_handler(sr_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    sr_find_register_hooks(p);
    sr_filter_register_hooks(p);
    sr_retry_register_hooks(p);
    sr_wait_register_hooks(p);
}

AP_DECLARE_MODULE(sticky_route) = {
    STANDARD20_MODULE_STUFF,
    sr_create_dir_conf,     /* per-directory (<Proxy>) config */
    /* no per-directory merge: the <Proxy> sections of a balancer are
     * merged once, by sr_section_conf; nothing reads r->per_dir_config, so
     * httpd merging them again for every proxied request (its <Proxy>
     * walk) would be pure cost (~130 instructions a request) */
    NULL,
    sr_create_server_conf,
    sr_merge_conf,
    sr_cmds,
    sr_register_hooks,
#ifdef AP_MODULE_FLAG_NONE
    AP_MODULE_FLAG_NONE
#endif
};
