/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_config.h - the settings: sr_conf_t (a directive's
 * configuration section), sr_effective_t (what applies to one balancer),
 * and the functions of mod_sticky_route_config.c (the directives) and
 * mod_sticky_route_effective.c (the merged settings and their checks).
 * A part of mod_sticky_route_private.h, reached through it (the lock
 * contract is there).
 */
#ifndef MOD_STICKY_ROUTE_CONFIG_H
#define MOD_STICKY_ROUTE_CONFIG_H

#ifndef MOD_STICKY_ROUTE_PRIVATE_H
#error "a part of mod_sticky_route_private.h: include that header"
#endif

/* ---- configuration (mod_sticky_route_config.c, _effective.c) ------------ */

/* StickyRouteElect: sr_elect_mode_t (sr_policy.h, sr_elect_way). */

/* StickyRouteRebalance's default FACTOR, x 100. */
#define SR_REBALANCE_FACTOR_DEFAULT 125

/* StickyRouteDiscover URL [interval=S] [max=N] [member parameters] */
typedef struct {
    const char *url;                 /* as given */
    const char *scheme;              /* http, https, ... */
    const char *host;                /* the name resolved */
    apr_port_t port;                 /* 0: from the SRV records */
    int srv;                         /* the host is an SRV name ("_...") */
    int ttl_mode;                    /* interval=ttl */
    apr_interval_time_t interval;
    apr_interval_time_t hold;        /* a gone address keeps its slot this
                                        long before another may take it */
    int max;                         /* discovered members at most */
    apr_array_header_t *hc;          /* mod_proxy_hcheck parameters of the
                                        members: key, value, key, value... */
    /* parameters of the members it makes (-1: mod_proxy's default) */
    int keepalive;
    long ttl, conn_timeout, retry, timeout;
    int lbfactor;
} sr_discover_conf_t;

typedef struct {
    const sr_cookie_spec_t *cookie;  /* NULL: not set here */
    const sr_key_t *tag_key;         /* NULL: no secret set here */
    const sr_key_t *route_key;
    int legacy;                      /* -1: not set here */
    int retry;                       /* -1: not set here */
    int elect;                       /* sr_elect_mode_t, -1: not set here */
    long slowstart;                  /* seconds, -1: not set here */
    long rebalance_idle;             /* seconds, 0: off, -1: not set here */
    uint32_t rebalance_factor;       /* x 100 */
    const char *session_cookie;      /* StickyRouteSession NAME, NULL: unset */
    const char *session_param;       /* its URL parameter, NULL: none */
    const sr_discover_conf_t *discover; /* NULL: no discovery */
    apr_interval_time_t wait;        /* StickyRouteWait, 0: off, -1: not
                                        set here */
    int wait_max;                    /* its max=, 0: the default */
    const ap_expr_info_t *hash_key;  /* StickyRouteHashKey, NULL: unset */
    int hash_balance;                /* StickyRouteHashBalance x 100, 0:
                                        off, -1: not set here */
    int inflight;                    /* StickyRouteInflight On|Off, -1:
                                        not set here */
} sr_conf_t;

/* What applies to one balancer in one server (innermost wins). */
typedef struct {
    const sr_cookie_spec_t *cookie;
    const sr_key_t *tag_key;         /* NULL: cookies are not signed */
    const sr_key_t *route_key;       /* key for derived routes */
    int legacy;                      /* accept stock ".route" cookies */
    int retry;                       /* retry GET/HEAD on a broken member */
    sr_elect_mode_t elect;           /* StickyRouteElect */
    long slowstart;                  /* StickyRouteSlowStart seconds, 0: off */
    long rebalance_idle;             /* StickyRouteRebalance, 0: off */
    uint32_t rebalance_factor;       /* x 100 */
    const char *session_cookie;      /* StickyRouteSession, NULL: off */
    const char *session_param;
    apr_interval_time_t wait;        /* StickyRouteWait, 0: off */
    int wait_max;                    /* its max=, 0: the default */
    const ap_expr_info_t *hash_key;  /* StickyRouteHashKey, NULL: the
                                        client address */
    uint32_t hash_balance;           /* StickyRouteHashBalance x 100, 0: off */
    int inflight_set;                /* StickyRouteInflight: 1 On, 0 Off,
                                        -1 not set */
    int inflight;                    /* in-flight accounting is kept
                                        (sr_inflight_accounting; a refused
                                        Off reads as on: apache2 -t stops
                                        the start) */
} sr_effective_t;

/* The directives (mod_sticky_route_config.c). No lock: configuration. */
extern const command_rec sr_cmds[];
void *sr_create_dir_conf(apr_pool_t *p, char *dummy);
void *sr_create_server_conf(apr_pool_t *p, server_rec *s);
void *sr_merge_conf(apr_pool_t *p, void *basev, void *addv);

/* The settings of one balancer (mod_sticky_route_effective.c). No lock:
 * configuration, fixed after startup. */
void sr_config_init(apr_pool_t *pconf);
const sr_conf_t *sr_section_conf(apr_pool_t *p, server_rec *s,
                                 proxy_balancer *b);
void sr_effective(server_rec *s, const sr_conf_t *dir, sr_effective_t *e);
/* check_config (also apache2 -t): StickyRouteInflight Off on a balancer
 * of ours whose settings read the in-flight counts is an error naming the
 * setting (sr_inflight_accounting). Called by sr_check_config (mod_sticky_route.c).
 * No lock: startup. */
int sr_config_check(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                    server_rec *main_s);

#endif /* MOD_STICKY_ROUTE_CONFIG_H */
