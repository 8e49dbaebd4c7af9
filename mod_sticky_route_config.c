/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_config.c - the directives, and the settings that apply
 * to one balancer: its <Proxy> sections, then its (virtual) server, then
 * the defaults.
 */
#include <string.h>

#include "http_core.h"
#include "apr_strings.h"
#include "apr_fnmatch.h"
#include "ap_regex.h"

#include "mod_sticky_route_private.h"

static sr_cookie_spec_t sr_default_cookie;

void sr_config_init(apr_pool_t *pconf)
{
    sr_cookie_spec_default(pconf, &sr_default_cookie);
}

void *sr_create_dir_conf(apr_pool_t *p, char *dummy)
{
    sr_conf_t *c = apr_pcalloc(p, sizeof(*c));
    (void)dummy;
    c->legacy = -1;
    c->retry = -1;
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
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ", err, NULL);
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
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ", err, NULL);
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

const command_rec sr_cmds[] = {
    AP_INIT_TAKE_ARGV("StickyRouteCookie", sr_cmd_cookie, NULL,
        RSRC_CONF | ACCESS_CONF,
        "NAME [Path=/] [Domain=..] [Max-Age=N] [HttpOnly] [Secure] "
        "[SameSite=Lax|Strict|None] - the cookie lbmethod=sticky issues"),
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
    { NULL }
};

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
    if (e->legacy < 0) {
        /* Default: honour the stock recipe's unsigned cookies only when
         * cookies are not signed; with a secret they would be forgeable. */
        e->legacy = e->tag_key ? 0 : 1;
    }
}
