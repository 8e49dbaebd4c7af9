/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_discover.h - what the StickyRouteDiscover files share:
 *
 *   mod_sticky_route_discover.c        the directive, startup (the design
 *                                      and its per-child invariants: at
 *                                      its top)
 *   mod_sticky_route_discover_watchdog.c  the watchdogs: the singleton's
 *                                      resolutions, the per-child step,
 *                                      the child_init gate
 *   mod_sticky_route_discover_apply.c  members made, disabled, enabled and
 *                                      slots reused: a resolution applied
 *   mod_sticky_route_lookup.c          what a name leads to (getaddrinfo,
 *                                      or DNS through res_nsend: SRV, TTLs)
 *   mod_sticky_route_hc.c              the health checks of discovered
 *                                      members (hc* on StickyRouteDiscover)
 */
#ifndef MOD_STICKY_ROUTE_DISCOVER_H
#define MOD_STICKY_ROUTE_DISCOVER_H

#include "mod_sticky_route_private.h"
#include "sr_dns.h"

#define SR_DISCOVER_WATCHDOG     "_sticky_route_discover_"
#define SR_DISCOVER_INTERVAL_DEF 5          /* seconds */
#define SR_DISCOVER_MAX_DEF      16
#define SR_DISCOVER_MAX_MAX      1024
#define SR_DISCOVER_ADDRS_MAX    1024       /* addresses read per answer */
#define SR_DISCOVER_HOLD_DEF     10         /* seconds */
#define SR_REUSE_MIN_GONE        apr_time_from_msec(2000)
#define SR_SETTLE                apr_time_from_sec(1)  /* a rewritten slot stopped */
#define SR_WARN_PERIOD           apr_time_from_sec(60)
#define SR_HC_WATCHDOG           "_sticky_route_hc_"
#define SR_HC_CONN_TIMEOUT_DEF   apr_time_from_sec(5)   /* no connectiontimeout= */
#define SR_HC_TIMEOUT_DEF        apr_time_from_sec(10)  /* no timeout= */
#define SR_HC_INTERVAL_DEF       apr_time_from_sec(30)  /* mod_proxy_hcheck's */
#define SR_HC_THREADS_MAX        16     /* checks in flight per process */

/* The health checks of a discovery's members (hc* parameters). */
typedef struct {
    int on;                 /* hcmethod= given */
    int tcp;                /* TCP: a connection is the check */
    const char *method;     /* GET, HEAD, OPTIONS */
    int http11;             /* the ...11 forms: HTTP/1.1 */
    const char *uri;        /* hcuri=, "" : "/" */
    apr_interval_time_t interval, conn_timeout, timeout;
    int passes, fails;
} sr_hc_conf_t;

struct sr_hc_slot_t;

typedef struct {
    server_rec *s;
    proxy_balancer *b;
    const sr_discover_conf_t *dc;
    const sr_key_t *route_key;
    apr_hash_t *configured; /* names of the configured BalancerMembers */
    int at_start;           /* members the startup answer made */
    int failing;            /* the last resolution was a DNS failure */
    apr_time_t fail_warned; /* when that was last logged */
    apr_time_t empty_since; /* NXDOMAIN/NODATA since then, 0: not */
    uint32_t last_ttl;      /* shortest TTL of the last answer */
    int answered;           /* the last lookup gave addresses */
    apr_time_t warned;      /* "beyond max=" last said (0: never) */
    apr_time_t settle_next; /* earliest end of a settle time, 0: none */
    /* per child process (the per-child watchdog; this struct is copied
     * into every child by fork): what this child saw of each slot */
    apr_uint32_t child_gen;
    uint32_t *child_sig;    /* b->max_workers signatures of name_ex */
    apr_pool_t *child_pool; /* for those */
    /* health checks (mod_sticky_route_hc.c): the parameters, and in the
     * child that runs them the state of each worker slot */
    sr_hc_conf_t hc;
    struct sr_hc_slot_t *hc_slots;  /* b->max_workers */
} sr_discovery_t;

/* ---- looking the name up (mod_sticky_route_lookup.c) ---------------------- */

typedef struct {
    const char *url;        /* scheme://ADDRESS:PORT (IPv6 in brackets) */
    const char *key;        /* "ADDRESS PORT": what a member is known by */
    const char *addr;       /* ADDRESS */
    apr_port_t port;
    int lbset, lbfactor;    /* from SRV priority and weight; -1: none */
} sr_found_t;

typedef enum {
    SR_LOOKUP_OK = 0,       /* addresses */
    SR_LOOKUP_EMPTY,        /* NXDOMAIN or NODATA: the service is gone */
    SR_LOOKUP_FAIL          /* a DNS failure: nothing is known */
} sr_lookup_outcome_t;

typedef struct {
    apr_array_header_t *found;  /* sr_found_t, distinct, sorted by url */
    sr_lookup_outcome_t outcome;
    const char *why;            /* for the log */
    uint32_t min_ttl;           /* shortest TTL used; UINT32_MAX: none */
} sr_lookup_t;

/* What the name leads to now: distinct members, sorted by URL (so that
 * every proxy replica makes its members in the same order). Blocking (DNS):
 * called by check_config and the singleton watchdog only. */
void sr_lookup(apr_pool_t *p, const sr_discover_conf_t *dc, sr_lookup_t *L);

/* ---- members (mod_sticky_route_discover_apply.c) -------------------------- */

const char *sr_worker_name(const proxy_worker *w);
void sr_discovered_route(char *out, const proxy_balancer *b, const char *url,
                         const sr_key_t *key);
void sr_member_params(proxy_worker *w, const sr_discover_conf_t *dc);
/* "ADDRESS PORT" when w is a member discovery d's kind makes, else NULL
 * (the caller leaves out the configured members). No lock: reads w->s. */
const char *sr_discovered_key(apr_pool_t *p, const sr_discover_conf_t *dc,
                              const proxy_worker *w);
void sr_member_shape(proxy_worker *w, const sr_discover_conf_t *dc,
                     const sr_found_t *f);
/* One resolution and its plan, applied. Runs in the singleton watchdog;
 * takes the balancer's thread mutex, then its global mutex. */
void sr_discover_run(sr_discovery_t *d, apr_pool_t *p);

/* ---- the discoveries (mod_sticky_route_discover.c) ------------------------ */

/* The discoveries of this configuration generation (sr_discovery_t *);
 * NULL: none. No lock: made at check_config, fixed after. */
apr_array_header_t *sr_discover_all(void);

/* ---- the watchdogs (mod_sticky_route_discover_watchdog.c) ------------------ */

/* This child's balancers are made (mod_proxy_balancer's child_init has
 * run). Lock: takes sr_ready_mutex. */
int sr_discover_ready(void);

/* ---- health checks (mod_sticky_route_hc.c) --------------------------------- */

/* The hc* parameters of dc (dc->hc) read into hc; NULL or the error (the
 * caller names the directive). hcexpr=, hctemplate=, methods other than
 * TCP, GET, HEAD, OPTIONS (and their ...11 forms), and HTTP checks of
 * members whose scheme speaks TLS are refused. No lock (configuration). */
const char *sr_hc_parse(apr_pool_t *p, const sr_discover_conf_t *dc,
                        sr_hc_conf_t *hc);
/* Registers the singleton watchdog that runs the checks of discoveries
 * (sr_discovery_t *) that have them; OK or an HTTP error. No lock
 * (post_config, in the parent). */
int sr_hc_post_config(apr_pool_t *pconf, server_rec *main_s,
                      apr_array_header_t *discoveries);

#endif /* MOD_STICKY_ROUTE_DISCOVER_H */
