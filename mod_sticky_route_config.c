/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_config.c - the directives: the per-section
 * configuration (sr_conf_t) made and merged, and each directive's
 * handler. What applies to one balancer, read from these:
 * mod_sticky_route_effective.c.
 */
#include <stdlib.h>
#include <string.h>

#include "http_core.h"
#include "apr_strings.h"

#include "mod_sticky_route_private.h"

void *sr_create_dir_conf(apr_pool_t *p, char *dummy)
{
    sr_conf_t *c = apr_pcalloc(p, sizeof(*c));
    (void)dummy;
    c->legacy = -1;
    c->retry = -1;
    c->elect = -1;
    c->slowstart = -1;
    c->rebalance_idle = -1;
    c->wait = -1;
    c->hash_balance = -1;
    c->inflight = -1;
    return c;
}

void *sr_create_server_conf(apr_pool_t *p, server_rec *s)
{
    (void)s;
    return sr_create_dir_conf(p, NULL);
}

void *sr_merge_conf(apr_pool_t *p, void *basev, void *addv)
{
    const sr_conf_t *base = basev, *add = addv;
    sr_conf_t *c = apr_pcalloc(p, sizeof(*c));

    c->cookie = add->cookie ? add->cookie : base->cookie;
    c->tag_key = add->tag_key ? add->tag_key : base->tag_key;
    c->route_key = add->route_key ? add->route_key : base->route_key;
    c->legacy = add->legacy >= 0 ? add->legacy : base->legacy;
    c->retry = add->retry >= 0 ? add->retry : base->retry;
    c->elect = add->elect >= 0 ? add->elect : base->elect;
    c->slowstart = add->slowstart >= 0 ? add->slowstart : base->slowstart;
    if (add->rebalance_idle >= 0) {
        c->rebalance_idle = add->rebalance_idle;
        c->rebalance_factor = add->rebalance_factor;
    }
    else {
        c->rebalance_idle = base->rebalance_idle;
        c->rebalance_factor = base->rebalance_factor;
    }
    c->discover = add->discover ? add->discover : base->discover;
    c->hash_key = add->hash_key ? add->hash_key : base->hash_key;
    c->hash_balance = add->hash_balance >= 0 ? add->hash_balance
                                             : base->hash_balance;
    c->inflight = add->inflight >= 0 ? add->inflight : base->inflight;
    if (add->wait >= 0) {
        c->wait = add->wait;
        c->wait_max = add->wait_max;
    }
    else {
        c->wait = base->wait;
        c->wait_max = base->wait_max;
    }
    if (add->session_cookie) {
        c->session_cookie = add->session_cookie;
        c->session_param = add->session_param;
    }
    else {
        c->session_cookie = base->session_cookie;
        c->session_param = base->session_param;
    }
    return c;
}

/* The directives belong in the server config, a <VirtualHost> or a
 * <Proxy balancer://...> section; returns the config to write to. */
static const char *sr_conf_for_cmd(cmd_parms *cmd, void *mconfig,
                                   sr_conf_t **out)
{
    if (cmd->path == NULL) {
        *out = ap_get_module_config(cmd->server->module_config,
                                    &sticky_route_module);
        return NULL;
    }
    if (cmd->directive && cmd->directive->parent
        && (!strcasecmp(cmd->directive->parent->directive, "<Proxy")
            || !strcasecmp(cmd->directive->parent->directive, "<ProxyMatch"))) {
        *out = mconfig;
        return NULL;
    }
    return apr_pstrcat(cmd->pool, cmd->cmd->name, " is only valid in the "
                       "server config, <VirtualHost> or <Proxy balancer://...>",
                       NULL);
}

/* A directive valid in a <Proxy balancer://...> section only; returns
 * the config to write to. */
static const char *sr_conf_for_balancer_cmd(cmd_parms *cmd, void *mconfig,
                                            sr_conf_t **out)
{
    const char *err = sr_conf_for_cmd(cmd, mconfig, out);

    if (err) {
        return err;
    }
    if (cmd->path == NULL
        || strncasecmp(cmd->path, BALANCER_PREFIX, sizeof(BALANCER_PREFIX) - 1)) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, " is only valid in a "
                           "<Proxy balancer://...> section", NULL);
    }
    return NULL;
}

/* A parser's error, prefixed with the directive's name. */
static const char *sr_cmd_error(cmd_parms *cmd, const char *err)
{
    return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ", err, NULL);
}

/* FACTOR of StickyRouteHashBalance and StickyRouteRebalance: a number
 * above 1 and at most 100, into *x100 (x 100, at least 101); 0 when it is
 * not one. */
static int sr_parse_factor(const char *arg, uint32_t *x100)
{
    char *end;
    double f = strtod(arg, &end);

    if (end == arg || *end || !(f > 1.0) || f > 100.0) {
        return 0;
    }
    *x100 = (uint32_t)(f * 100.0 + 0.5);
    if (*x100 <= 100) {
        *x100 = 101;
    }
    return 1;
}

static const char *sr_cmd_cookie(cmd_parms *cmd, void *mconfig, int argc,
                                 char *const argv[])
{
    sr_conf_t *c;
    sr_cookie_spec_t *spec;
    const char *err = sr_conf_for_cmd(cmd, mconfig, &c);

    if (err) {
        return err;
    }
    spec = apr_pcalloc(cmd->pool, sizeof(*spec));
    err = sr_cookie_spec_parse(cmd->pool, argc, argv, spec);
    if (err) {
        return sr_cmd_error(cmd, err);
    }
    c->cookie = spec;
    return NULL;
}

static const char *sr_cmd_secret(cmd_parms *cmd, void *mconfig,
                                 const char *arg)
{
    sr_conf_t *c;
    const char *secret;
    size_t len;
    sr_key_t *tag_key, *route_key;
    const char *err = sr_conf_for_cmd(cmd, mconfig, &c);

    if (err) {
        return err;
    }
    if (!strncmp(arg, "file:", 5)) {
        arg = apr_pstrcat(cmd->temp_pool, "file:",
                          ap_server_root_relative(cmd->temp_pool, arg + 5),
                          NULL);
    }
    err = sr_secret_load(cmd->temp_pool, arg, &secret, &len);
    if (err) {
        return sr_cmd_error(cmd, err);
    }
    tag_key = apr_palloc(cmd->pool, sizeof(*tag_key));
    route_key = apr_palloc(cmd->pool, sizeof(*route_key));
    sr_key_derive(tag_key, secret, len, "tag");
    sr_key_derive(route_key, secret, len, "route");
    if (secret != arg) {
        /* the copy read from a file: no longer needed */
        sr_memzero((void *)secret, len);
    }
    c->tag_key = tag_key;
    c->route_key = route_key;
    return NULL;
}

/* On|Off directives: cmd->info is the offset of the int in sr_conf_t. */
static const char *sr_cmd_flag(cmd_parms *cmd, void *mconfig, int flag)
{
    sr_conf_t *c;
    const char *err = sr_conf_for_cmd(cmd, mconfig, &c);

    if (err) {
        return err;
    }
    *(int *)((char *)c + (apr_size_t)cmd->info) = flag ? 1 : 0;
    return NULL;
}

#define SR_SECONDS_MAX 31536000L    /* a year */

/* StickyRouteHashKey EXPR: an ap_expr string, evaluated per request */
static const char *sr_cmd_hash_key(cmd_parms *cmd, void *mconfig,
                                   const char *arg)
{
    sr_conf_t *c;
    const char *err = sr_conf_for_cmd(cmd, mconfig, &c);
    const char *perr = NULL;
    ap_expr_info_t *expr;

    if (err) {
        return err;
    }
    expr = ap_expr_parse_cmd(cmd, arg, AP_EXPR_FLAG_STRING_RESULT, &perr,
                             NULL);
    if (perr) {
        return apr_psprintf(cmd->pool, "%s \"%s\": cannot parse the "
                            "expression: %s", cmd->cmd->name, arg, perr);
    }
    c->hash_key = expr;
    return NULL;
}

/* StickyRouteHashBalance FACTOR|off: bounded loads, FACTOR > 1 */
static const char *sr_cmd_hash_balance(cmd_parms *cmd, void *mconfig,
                                       const char *arg)
{
    sr_conf_t *c;
    const char *err = sr_conf_for_cmd(cmd, mconfig, &c);
    uint32_t factor;

    if (err) {
        return err;
    }
    if (!strcasecmp(arg, "off")) {
        c->hash_balance = 0;
        return NULL;
    }
    if (!sr_parse_factor(arg, &factor)) {
        return apr_psprintf(cmd->pool, "%s %s: FACTOR must be a number "
                            "above 1 and at most 100 (e.g. 1.25), or off",
                            cmd->cmd->name, arg);
    }
    c->hash_balance = (int)factor;
    return NULL;
}

static const char *sr_cmd_elect(cmd_parms *cmd, void *mconfig, const char *arg)
{
    sr_conf_t *c;
    const char *err = sr_conf_for_cmd(cmd, mconfig, &c);

    if (err) {
        return err;
    }
    if (!strcasecmp(arg, "roundrobin")) {
        c->elect = SR_ELECT_ROUNDROBIN;
    }
    else if (!strcasecmp(arg, "leastbusy")) {
        c->elect = SR_ELECT_LEASTBUSY;
    }
    else if (!strcasecmp(arg, "hash")) {
        c->elect = SR_ELECT_HASH;
    }
    else {
        return apr_psprintf(cmd->pool, "%s %s: use roundrobin, leastbusy or "
                            "hash", cmd->cmd->name, arg);
    }
    return NULL;
}

static const char *sr_cmd_slowstart(cmd_parms *cmd, void *mconfig,
                                    const char *arg)
{
    sr_conf_t *c;
    long n;
    const char *err = sr_conf_for_cmd(cmd, mconfig, &c);

    if (err) {
        return err;
    }
    if (!sr_parse_number(arg, SR_SECONDS_MAX, &n)) {
        return apr_psprintf(cmd->pool, "%s %s: needs a whole number of "
                            "seconds, 0 (off) to %ld", cmd->cmd->name, arg,
                            SR_SECONDS_MAX);
    }
    c->slowstart = n;
    return NULL;
}

static const char *sr_cmd_rebalance(cmd_parms *cmd, void *mconfig,
                                    const char *idle, const char *factor)
{
    sr_conf_t *c;
    long n;
    const char *err = sr_conf_for_cmd(cmd, mconfig, &c);

    if (err) {
        return err;
    }
    if (!strcasecmp(idle, "off")) {
        if (factor) {
            return apr_psprintf(cmd->pool, "%s off takes no FACTOR",
                                cmd->cmd->name);
        }
        c->rebalance_idle = 0;
        c->rebalance_factor = SR_REBALANCE_FACTOR_DEFAULT;
        return NULL;
    }
    if (!sr_parse_number(idle, SR_SECONDS_MAX, &n) || n == 0) {
        return apr_psprintf(cmd->pool, "%s %s: IDLE_SECONDS must be a whole "
                            "number of seconds, 1 to %ld (or off)",
                            cmd->cmd->name, idle, SR_SECONDS_MAX);
    }
    c->rebalance_idle = n;
    c->rebalance_factor = SR_REBALANCE_FACTOR_DEFAULT;
    if (factor && !sr_parse_factor(factor, &c->rebalance_factor)) {
        return apr_psprintf(cmd->pool, "%s %s %s: FACTOR must be a number "
                            "above 1 (e.g. 1.25) and at most 100",
                            cmd->cmd->name, idle, factor);
    }
    return NULL;
}

static const char *sr_cmd_session(cmd_parms *cmd, void *mconfig,
                                  const char *name, const char *param)
{
    sr_conf_t *c;
    const char *err = sr_conf_for_cmd(cmd, mconfig, &c);

    if (err) {
        return err;
    }
    if (!sr_token_is_valid(name)) {
        return apr_psprintf(cmd->pool, "%s %s: not a valid cookie name (an "
                            "RFC 6265 token)", cmd->cmd->name, name);
    }
    if (param && (!sr_token_is_valid(param) || strchr(param, '='))) {
        return apr_psprintf(cmd->pool, "%s %s %s: not a valid URL parameter "
                            "name", cmd->cmd->name, name, param);
    }
    c->session_cookie = apr_pstrdup(cmd->pool, name);
    c->session_param = param ? apr_pstrdup(cmd->pool, param) : NULL;
    return NULL;
}

static const char *sr_cmd_discover(cmd_parms *cmd, void *mconfig, int argc,
                                   char *const argv[])
{
    sr_conf_t *c;
    sr_discover_conf_t *dc;
    const char *err = sr_conf_for_balancer_cmd(cmd, mconfig, &c);

    if (err) {
        return err;
    }
    if (c->discover) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": one per balancer "
                           "(this one already discovers ", c->discover->url,
                           ")", NULL);
    }
    dc = apr_pcalloc(cmd->pool, sizeof(*dc));
    err = sr_discover_parse(cmd->pool, argc, argv, dc);
    if (err) {
        return sr_cmd_error(cmd, err);
    }
    c->discover = dc;
    return NULL;
}

/* StickyRouteWait SECONDS [max=N] */
#define SR_WAIT_SECONDS_MAX 3600L
#define SR_WAIT_MAX_MAX     100000L

static const char *sr_cmd_wait(cmd_parms *cmd, void *mconfig, int argc,
                               char *const argv[])
{
    sr_conf_t *c;
    long secs, max = 0;
    int i;
    const char *err = sr_conf_for_balancer_cmd(cmd, mconfig, &c);

    if (err) {
        return err;
    }
    if (argc < 1) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, " needs SECONDS "
                           "[max=N]", NULL);
    }
    if (!sr_parse_number(argv[0], SR_WAIT_SECONDS_MAX, &secs)) {
        return apr_psprintf(cmd->pool, "%s %s: SECONDS must be a whole number "
                            "of seconds, 0 (off) to %ld", cmd->cmd->name,
                            argv[0], SR_WAIT_SECONDS_MAX);
    }
    for (i = 1; i < argc; i++) {
        if (strncasecmp(argv[i], "max=", 4)) {
            return apr_psprintf(cmd->pool, "%s: unknown parameter %s (use "
                                "SECONDS [max=N])", cmd->cmd->name, argv[i]);
        }
        if (i > 1) {
            return apr_psprintf(cmd->pool, "%s: max= given twice",
                                cmd->cmd->name);
        }
        if (!sr_parse_number(argv[i] + 4, SR_WAIT_MAX_MAX, &max) || max == 0) {
            return apr_psprintf(cmd->pool, "%s %s: max= must be a whole number "
                                "of requests per child process, 1 to %ld",
                                cmd->cmd->name, argv[i], SR_WAIT_MAX_MAX);
        }
    }
    if (secs == 0 && max) {
        return apr_psprintf(cmd->pool, "%s 0 is off: it takes no max=",
                            cmd->cmd->name);
    }
    c->wait = apr_time_from_sec(secs);
    c->wait_max = (int)max;
    return NULL;
}

const command_rec sr_cmds[] = {
    AP_INIT_TAKE_ARGV("StickyRouteCookie", sr_cmd_cookie, NULL,
        RSRC_CONF | ACCESS_CONF,
        "NAME [Path=/] [Domain=..] [Max-Age=N] [HttpOnly] [Secure] "
        "[SameSite=Lax|Strict|None] [MaxIdle=N] [MaxLife=N] - the cookie "
        "lbmethod=sticky issues (MaxIdle, MaxLife: seconds idle / in all "
        "before a client is elected again; the proxy enforces them, they are "
        "not sent)"),
    AP_INIT_TAKE1("StickyRouteSecret", sr_cmd_secret, NULL,
        RSRC_CONF | ACCESS_CONF,
        "a secret of at least 16 bytes, or file:/path - signs route cookies"),
    AP_INIT_FLAG("StickyRouteLegacyCookie", sr_cmd_flag,
        (void *)APR_OFFSETOF(sr_conf_t, legacy),
        RSRC_CONF | ACCESS_CONF,
        "On|Off - honour stock recipe cookies (.route) when a secret is set"),
    AP_INIT_FLAG("StickyRouteRetry", sr_cmd_flag,
        (void *)APR_OFFSETOF(sr_conf_t, retry),
        RSRC_CONF | ACCESS_CONF,
        "On|Off - retry a GET/HEAD once when a member breaks before "
        "answering (default On)"),
    AP_INIT_TAKE1("StickyRouteElect", sr_cmd_elect, NULL,
        RSRC_CONF | ACCESS_CONF,
        "roundrobin|leastbusy|hash - how a new session's member is elected"),
    AP_INIT_TAKE1("StickyRouteHashKey", sr_cmd_hash_key, NULL,
        RSRC_CONF | ACCESS_CONF,
        "EXPR - the request key lbmethod=hash and StickyRouteElect hash map "
        "to a member (default: the client address)"),
    AP_INIT_TAKE1("StickyRouteHashBalance", sr_cmd_hash_balance, NULL,
        RSRC_CONF | ACCESS_CONF,
        "FACTOR|off - bounded loads: a key's member with more than FACTOR x "
        "the mean in-flight requests per weight is passed over"),
    AP_INIT_FLAG("StickyRouteInflight", sr_cmd_flag,
        (void *)APR_OFFSETOF(sr_conf_t, inflight),
        RSRC_CONF | ACCESS_CONF,
        "On|Off - count each member's in-flight requests (the status "
        "gauge); default: on only when StickyRouteElect leastbusy, "
        "StickyRouteRebalance or StickyRouteHashBalance reads them"),
    AP_INIT_TAKE1("StickyRouteSlowStart", sr_cmd_slowstart, NULL,
        RSRC_CONF | ACCESS_CONF,
        "SECONDS - a member that joins or comes back takes a share of new "
        "sessions growing to its weight over that time (0: off)"),
    AP_INIT_TAKE12("StickyRouteRebalance", sr_cmd_rebalance, NULL,
        RSRC_CONF | ACCESS_CONF,
        "IDLE_SECONDS [FACTOR] | off - move idle clients of a member loaded "
        "more than FACTOR (1.25) x the mean"),
    AP_INIT_TAKE_ARGV("StickyRouteDiscover", sr_cmd_discover, NULL,
        ACCESS_CONF,
        "URL [interval=SECONDS] [max=N] [keepalive=On|Off] [ttl=S] "
        "[connectiontimeout=S] [retry=S] [timeout=S] [loadfactor=N] - the "
        "balancer's members are the addresses URL's host resolves to"),
    AP_INIT_TAKE_ARGV("StickyRouteWait", sr_cmd_wait, NULL, ACCESS_CONF,
        "SECONDS [max=N] - a request that finds no usable member waits up to "
        "SECONDS for one; at most N per child process (0: off)"),
    AP_INIT_TAKE12("StickyRouteSession", sr_cmd_session, NULL,
        RSRC_CONF | ACCESS_CONF,
        "NAME [URL_PARAMETER] - route on an application's session id "
        "(ID.route), e.g. JSESSIONID jsessionid"),
    { NULL }
};
