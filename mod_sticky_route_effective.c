/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_effective.c - the settings that apply to one balancer:
 * its <Proxy> sections merged (sr_section_conf), then its (virtual)
 * server, then the defaults (sr_effective); and the check_config checks of
 * those settings (sr_config_check). The directives that write them:
 * mod_sticky_route_config.c.
 */
#include <string.h>

#include "http_core.h"
#include "apr_strings.h"
#include "apr_fnmatch.h"
#include "ap_regex.h"

#include "mod_sticky_route_private.h"

/* The cookie when no StickyRouteCookie applies (sr_config_init). No lock:
 * set at startup, read-only after. */
static sr_cookie_spec_t sr_default_cookie;

void sr_config_init(apr_pool_t *pconf)
{
    sr_cookie_spec_default(pconf, &sr_default_cookie);
}

/* The settings given in the <Proxy>/<ProxyMatch> sections that match the
 * balancer's name, merged in configuration order. mod_proxy links a
 * section to its balancer (section_config) only when the <Proxy> line
 * carries parameters, so the sections are matched here by name, the way
 * mod_proxy matches them against URLs: regex, wildcard, or the name. */
const sr_conf_t *sr_section_conf(apr_pool_t *p, server_rec *s,
                                 proxy_balancer *b)
{
    proxy_server_conf *pc = ap_get_module_config(s->module_config,
                                                 &proxy_module);
    const char *name = b->s->name;
    const sr_conf_t *merged = NULL;
    ap_conf_vector_t **secs;
    int i;

    if (!pc || !pc->sec_proxy) {
        return NULL;
    }
    secs = (ap_conf_vector_t **)pc->sec_proxy->elts;
    for (i = 0; i < pc->sec_proxy->nelts; i++) {
        proxy_dir_conf *pd = ap_get_module_config(secs[i], &proxy_module);
        const sr_conf_t *sc = ap_get_module_config(secs[i],
                                                   &sticky_route_module);
        int match;
        size_t plen;

        if (!pd || !pd->p || !sc) {
            continue;
        }
        plen = strlen(pd->p);
        if (pd->r) {
            match = !ap_regexec(pd->r, name, 0, NULL, 0);
        }
        else if (pd->p_is_fnmatch) {
            match = apr_fnmatch(pd->p, name, APR_FNM_CASE_BLIND) == APR_SUCCESS;
        }
        else {
            match = !strcasecmp(pd->p, name)
                || (plen > 1 && pd->p[plen - 1] == '/'
                    && strlen(name) == plen - 1
                    && !strncasecmp(pd->p, name, plen - 1));
        }
        if (match) {
            merged = merged ? sr_merge_conf(p, (void *)merged, (void *)sc) : sc;
        }
    }
    return merged;
}

/* What sr_inflight_accounting reads of settings e. No lock. */
static void sr_inflight_in(const sr_effective_t *e, sr_inflight_in_t *in)
{
    in->elect = e->elect;
    in->rebalance_idle = e->rebalance_idle;
    in->hash_balance = e->hash_balance;
    in->inflight = e->inflight_set;
}

void sr_effective(server_rec *s, const sr_conf_t *dir, sr_effective_t *e)
{
    const sr_conf_t *srv = ap_get_module_config(s->module_config,
                                                &sticky_route_module);

    e->cookie = (dir && dir->cookie) ? dir->cookie
              : (srv && srv->cookie) ? srv->cookie : &sr_default_cookie;
    e->tag_key = (dir && dir->tag_key) ? dir->tag_key
               : srv ? srv->tag_key : NULL;
    e->route_key = (dir && dir->route_key) ? dir->route_key
                 : (srv && srv->route_key) ? srv->route_key : NULL;
    e->legacy = (dir && dir->legacy >= 0) ? dir->legacy
              : (srv && srv->legacy >= 0) ? srv->legacy : -1;
    e->retry = (dir && dir->retry >= 0) ? dir->retry
             : (srv && srv->retry >= 0) ? srv->retry : 1;
    e->elect = (dir && dir->elect >= 0) ? (sr_elect_mode_t)dir->elect
             : (srv && srv->elect >= 0) ? (sr_elect_mode_t)srv->elect
             : SR_ELECT_ROUNDROBIN;
    e->slowstart = (dir && dir->slowstart >= 0) ? dir->slowstart
                 : (srv && srv->slowstart >= 0) ? srv->slowstart : 0;
    if (dir && dir->rebalance_idle >= 0) {
        e->rebalance_idle = dir->rebalance_idle;
        e->rebalance_factor = dir->rebalance_factor;
    }
    else if (srv && srv->rebalance_idle >= 0) {
        e->rebalance_idle = srv->rebalance_idle;
        e->rebalance_factor = srv->rebalance_factor;
    }
    else {
        e->rebalance_idle = 0;
        e->rebalance_factor = SR_REBALANCE_FACTOR_DEFAULT;
    }
    if (dir && dir->session_cookie) {
        e->session_cookie = dir->session_cookie;
        e->session_param = dir->session_param;
    }
    else if (srv && srv->session_cookie) {
        e->session_cookie = srv->session_cookie;
        e->session_param = srv->session_param;
    }
    else {
        e->session_cookie = e->session_param = NULL;
    }
    e->hash_key = (dir && dir->hash_key) ? dir->hash_key
                : srv ? srv->hash_key : NULL;
    e->hash_balance = (dir && dir->hash_balance >= 0)
                      ? (uint32_t)dir->hash_balance
                      : (srv && srv->hash_balance >= 0)
                      ? (uint32_t)srv->hash_balance : 0;
    e->inflight_set = (dir && dir->inflight >= 0) ? dir->inflight
                    : (srv && srv->inflight >= 0) ? srv->inflight : -1;
    {
        sr_inflight_in_t in;
        sr_inflight_in(e, &in);
        e->inflight = sr_inflight_accounting(&in, NULL) != SR_INFLIGHT_OFF;
    }
    /* StickyRouteWait is a <Proxy balancer://> directive only */
    e->wait = (dir && dir->wait >= 0) ? dir->wait : 0;
    e->wait_max = (dir && dir->wait >= 0) ? dir->wait_max : 0;
    if (e->legacy < 0) {
        /* Default: honour the stock recipe's unsigned cookies only when
         * cookies are not signed; with a secret they would be forgeable. */
        e->legacy = e->tag_key ? 0 : 1;
    }
}

/* One balancer of ours at check_config: StickyRouteInflight Off refused
 * when a setting of the balancer reads the in-flight counts. No lock:
 * startup. */
static int sr_check_inflight(server_rec *s, proxy_balancer *b, void *baton)
{
    apr_pool_t *ptemp = baton;
    sr_effective_t eff;
    sr_inflight_in_t in;
    const char *reader;

    sr_effective(s, sr_section_conf(ptemp, s, b), &eff);
    sr_inflight_in(&eff, &in);
    if (sr_inflight_accounting(&in, &reader) == SR_INFLIGHT_REFUSED) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "StickyRouteInflight Off in %s: %s reads the members' "
                     "in-flight counts - remove StickyRouteInflight Off, or "
                     "%s", b->s->name, reader,
                     !strncmp(reader, "StickyRouteElect ", 17)
                     ? "elect by roundrobin or hash" : "turn it off");
        return 1;
    }
    return 0;
}

int sr_config_check(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                    server_rec *main_s)
{
    (void)pconf;
    (void)plog;
    return sr_for_each_balancer(main_s, sr_check_inflight, ptemp)
           ? HTTP_INTERNAL_SERVER_ERROR : OK;
}
