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
 * address (at most max=), and the balancer's growth raised so that the
 * discovered members have exactly max= worker slots. Then a mod_watchdog
 * callback, in one child process (a singleton watchdog, as
 * mod_proxy_hcheck runs its checks), resolves the name every interval and
 * applies sr_discover_plan (sr_policy.c) the way balancer-manager applies
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
 *     a pooled connection whose host or port differs from the URL's;
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
 *     elects it afterwards resolves the new one. The rewritten member is
 *     enabled at once;
 *  4. health checks: mod_proxy_hcheck keeps, per proxy_worker pointer, a
 *     check worker with the host copied once and skips stopped workers. A
 *     per-child watchdog (not a singleton: it runs in every child process,
 *     every 100 ms) gives a rewritten member that has health checks a
 *     fresh proxy_worker in its child's balancer (a copy of the old one
 *     sharing its connection pool, with no cached address), so the check
 *     worker mod_proxy_hcheck makes for it has the new host; a member
 *     with health checks stays stopped (mod_proxy_hcheck skips stopped
 *     workers) for SR_SETTLE_HC (1 s, 10 watchdog periods) after the
 *     rewrite, so that step is done before its first check. Cost: the
 *     fresh proxy_worker, and mod_proxy_hcheck's check worker for it
 *     (about 26 KB, kept by mod_proxy_hcheck, which never drops one), per
 *     reuse in the child that runs the checks;
 *  5. state of ours: the member's shared entry (counters, in-flight,
 *     slow start) is renamed to the route derived from the new address
 *     and starts afresh (sr_shm_member_renew); a cookie for the old
 *     address names the old route, which no member has any more.
 *
 * Locks: the singleton takes the balancer's thread mutex, then its global
 * mutex (the order mod_proxy_balancer's own paths allow: balancer-manager
 * takes the global one alone), for sync, plan and edits; the per-child
 * watchdog takes the thread mutex alone. An address beyond max= gets no
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
#include "apr_atomic.h"
#include "apr_network_io.h"
#include "apr_strings.h"
#include "apr_optional.h"
#include "apr_uri.h"
#include "mod_watchdog.h"

#include "mod_sticky_route_private.h"
#include "sr_dns.h"

#define SR_DISCOVER_WATCHDOG     "_sticky_route_discover_"
#define SR_DISCOVER_INTERVAL_DEF 5          /* seconds */
#define SR_DISCOVER_MAX_DEF      16
#define SR_DISCOVER_MAX_MAX      1024
#define SR_DISCOVER_ADDRS_MAX    1024       /* addresses read per answer */
#define SR_DISCOVER_HOLD_DEF     10         /* seconds */
#define SR_REUSE_MIN_GONE        apr_time_from_msec(2000)
#define SR_SETTLE_HC             apr_time_from_sec(1)
#define SR_WARN_PERIOD           apr_time_from_sec(60)

typedef struct {
    server_rec *s;
    proxy_balancer *b;
    const sr_discover_conf_t *dc;
    const sr_key_t *route_key;
    apr_hash_t *configured; /* names of the configured BalancerMembers */
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
    apr_pool_t *child_pool; /* for those and the fresh workers */
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
            /* checked by mod_proxy_hcheck at startup (sr_discover_check) */
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
    return NULL;
}

/* ---- members --------------------------------------------------------------------- */

/* ---- looking the name up ------------------------------------------------------ */

/* One address + port the name leads to. */
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

static void sr_found_add(apr_pool_t *p, const sr_discover_conf_t *dc,
                         sr_lookup_t *L, const char *ip, int v6,
                         apr_port_t port, int lbset, int lbfactor)
{
    const char *key = apr_psprintf(p, "%s %u", ip, (unsigned)port);
    sr_found_t *f;
    int i;

    if (L->found->nelts >= SR_DISCOVER_ADDRS_MAX) {
        return;
    }
    for (i = 0; i < L->found->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(L->found, i, sr_found_t).key, key)) {
            return;
        }
    }
    f = apr_array_push(L->found);
    f->key = key;
    f->addr = apr_pstrdup(p, ip);
    f->port = port;
    f->lbset = lbset;
    f->lbfactor = lbfactor;
    f->url = v6 ? apr_psprintf(p, "%s://[%s]:%u", dc->scheme, ip, (unsigned)port)
                : apr_psprintf(p, "%s://%s:%u", dc->scheme, ip, (unsigned)port);
}

/* The addresses of name through getaddrinfo; *rv its status. */
static void sr_found_getaddrinfo(apr_pool_t *p, const sr_discover_conf_t *dc,
                                 sr_lookup_t *L, const char *name,
                                 apr_port_t port, int lbset, int lbfactor,
                                 apr_status_t *rv)
{
    apr_sockaddr_t *sa = NULL, *a;

    *rv = apr_sockaddr_info_get(&sa, name, APR_UNSPEC, port, 0, p);
    for (a = *rv == APR_SUCCESS ? sa : NULL; a; a = a->next) {
        char *ip = NULL;
        apr_sockaddr_ip_get(&ip, a);
        sr_found_add(p, dc, L, ip, a->family != APR_INET, port, lbset, lbfactor);
    }
}

/* One DNS question through the C library's resolver (the servers of
 * /etc/resolv.conf; each try waits at most SR_DNS_TIMEOUT seconds, at most
 * SR_DNS_TRIES rounds over the servers; a truncated UDP answer is asked
 * again over TCP by res_nsend). Returns the outcome; the records in *out. */
#define SR_DNS_TIMEOUT 2
#define SR_DNS_TRIES   2
static sr_dns_outcome_t sr_dns_ask(apr_pool_t *p, const char *name,
                                   uint16_t qtype, sr_dns_answer_t *out,
                                   const char **why)
{
    struct __res_state st;
    unsigned char query[NS_PACKETSZ];
    unsigned char *answer = apr_palloc(p, NS_MAXMSG);
    sr_dns_outcome_t o;
    int qlen, alen;

    memset(&st, 0, sizeof(st));
    out->max_srv = out->max_addr = SR_DISCOVER_ADDRS_MAX;
    out->srv = apr_palloc(p, SR_DISCOVER_ADDRS_MAX * sizeof(sr_dns_srv_t));
    out->addr = apr_palloc(p, SR_DISCOVER_ADDRS_MAX * sizeof(sr_dns_addr_t));
    out->nsrv = out->naddr = 0;
    if (res_ninit(&st) != 0) {
        *why = "the resolver could not be set up (resolv.conf)";
        return SR_DNS_SERVFAIL;
    }
    st.retrans = SR_DNS_TIMEOUT;
    st.retry = SR_DNS_TRIES;
    qlen = res_nmkquery(&st, ns_o_query, name, ns_c_in, qtype, NULL, 0, NULL,
                        query, sizeof(query));
    if (qlen < 12) {
        res_nclose(&st);
        *why = "the name cannot be asked (too long?)";
        return SR_DNS_MALFORMED;
    }
    alen = res_nsend(&st, query, qlen, answer, NS_MAXMSG);
    res_nclose(&st);
    if (alen < 0) {
        *why = "no usable answer (timeout, SERVFAIL or REFUSED from every "
               "server)";
        return SR_DNS_SERVFAIL;
    }
    o = sr_dns_parse(answer, (size_t)alen, (uint16_t)((query[0] << 8) | query[1]),
                     qtype, out);
    *why = sr_dns_outcome_name(o);
    return o;
}

static char *sr_dns_ip(apr_pool_t *p, const sr_dns_addr_t *a)
{
    char buf[INET6_ADDRSTRLEN];

    if (!inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->addr, buf,
                   sizeof(buf))) {
        return NULL;
    }
    return apr_pstrdup(p, buf);
}

/* Whether getaddrinfo's status says the name is gone (no such name, or no
 * address for it) rather than that the lookup failed; *why: its text. */
static int sr_eai_gone(apr_status_t rv, const char **why)
{
    int eai = rv > APR_OS_START_EAIERR
              && rv < APR_OS_START_EAIERR + APR_OS_ERRSPACE_SIZE
              ? (int)(rv - APR_OS_START_EAIERR) : 0;

    if (eai > 0 && EAI_NONAME < 0) {
        eai = -eai;             /* APR folds glibc's negative codes */
    }
    *why = eai ? gai_strerror(eai) : "no address";
    return eai == EAI_NONAME || eai == EAI_NODATA;
}

static sr_lookup_outcome_t sr_outcome_of(sr_dns_outcome_t o)
{
    return o == SR_DNS_OK ? SR_LOOKUP_OK
           : (o == SR_DNS_NXDOMAIN || o == SR_DNS_NODATA) ? SR_LOOKUP_EMPTY
           : SR_LOOKUP_FAIL;
}

static void sr_lookup_srv(apr_pool_t *p, const sr_discover_conf_t *dc,
                          sr_lookup_t *L)
{
    sr_dns_answer_t ans;
    sr_dns_outcome_t o = sr_dns_ask(p, dc->host, SR_DNS_T_SRV, &ans, &L->why);
    uint16_t *prio, *weight;
    int *lbset, *lbf;
    uint32_t i, k;
    const char *failed = NULL;

    L->outcome = sr_outcome_of(o);
    if (o != SR_DNS_OK) {
        return;
    }
    prio = apr_palloc(p, (ans.nsrv + 1) * sizeof(*prio));
    weight = apr_palloc(p, (ans.nsrv + 1) * sizeof(*weight));
    lbset = apr_palloc(p, (ans.nsrv + 1) * sizeof(*lbset));
    lbf = apr_palloc(p, (ans.nsrv + 1) * sizeof(*lbf));
    for (i = 0; i < ans.nsrv; i++) {
        prio[i] = ans.srv[i].priority;
        weight[i] = ans.srv[i].weight;
    }
    sr_srv_shape(prio, weight, ans.nsrv, lbset, lbf);
    for (i = 0; i < ans.nsrv; i++) {
        const sr_dns_srv_t *r = &ans.srv[i];
        int from_additional = 0;
        if (!r->port) {
            continue;
        }
        if (r->ttl < L->min_ttl) {
            L->min_ttl = r->ttl;
        }
        for (k = 0; k < ans.naddr; k++) {
            char *ip;
            if (strcmp(ans.addr[k].owner, r->target)
                || !(ip = sr_dns_ip(p, &ans.addr[k]))) {
                continue;
            }
            sr_found_add(p, dc, L, ip, ans.addr[k].family == 6, r->port,
                         lbset[i], lbf[i]);
            if (ans.addr[k].ttl < L->min_ttl) {
                L->min_ttl = ans.addr[k].ttl;
            }
            from_additional = 1;
        }
        if (!from_additional) {
            apr_status_t rv;
            const char *why;
            sr_found_getaddrinfo(p, dc, L, r->target, r->port, lbset[i],
                                 lbf[i], &rv);
            if (rv != APR_SUCCESS && !sr_eai_gone(rv, &why) && !failed) {
                /* a DNS failure for one target is no answer for its
                 * members: nothing is changed this time (as when the SRV
                 * query itself fails) */
                failed = apr_psprintf(p, "the address lookup of SRV target "
                                      "%s failed: %s", r->target, why);
            }
        }
    }
    if (failed) {
        L->outcome = SR_LOOKUP_FAIL;
        L->why = failed;
    }
    else if (L->found->nelts == 0) {
        L->outcome = SR_LOOKUP_FAIL;    /* records, but no target resolves */
        L->why = "no SRV target resolves to an address";
    }
}

/* A and AAAA asked of the DNS servers directly (interval=ttl: their TTLs). */
static void sr_lookup_ttl(apr_pool_t *p, const sr_discover_conf_t *dc,
                          sr_lookup_t *L)
{
    static const uint16_t types[2] = { SR_DNS_T_A, SR_DNS_T_AAAA };
    sr_lookup_outcome_t got[2];
    const char *why[2];
    int t;
    uint32_t k;

    for (t = 0; t < 2; t++) {
        sr_dns_answer_t ans;
        sr_dns_outcome_t o = sr_dns_ask(p, dc->host, types[t], &ans, &why[t]);
        got[t] = sr_outcome_of(o);
        for (k = 0; o == SR_DNS_OK && k < ans.naddr; k++) {
            char *ip = sr_dns_ip(p, &ans.addr[k]);
            if (ip && ans.addr[k].family == (t ? 6 : 4)) {
                sr_found_add(p, dc, L, ip, t == 1, dc->port, -1, -1);
            }
        }
        if (o == SR_DNS_OK && ans.min_ttl < L->min_ttl) {
            L->min_ttl = ans.min_ttl;
        }
    }
    if (L->found->nelts) {
        L->outcome = SR_LOOKUP_OK;
        L->why = "ok";
    }
    else if (got[0] == SR_LOOKUP_EMPTY && got[1] == SR_LOOKUP_EMPTY) {
        L->outcome = SR_LOOKUP_EMPTY;
        L->why = why[0];
    }
    else {
        L->outcome = SR_LOOKUP_FAIL;
        L->why = got[0] == SR_LOOKUP_FAIL ? why[0] : why[1];
    }
}

/* What the name leads to now: distinct members, sorted by URL (so that
 * every proxy replica makes its members in the same order). */
static void sr_lookup(apr_pool_t *p, const sr_discover_conf_t *dc,
                      sr_lookup_t *L)
{
    int i;

    L->found = apr_array_make(p, 16, sizeof(sr_found_t));
    L->min_ttl = UINT32_MAX;
    L->why = "ok";
    if (dc->srv) {
        sr_lookup_srv(p, dc, L);
    }
    else if (dc->ttl_mode) {
        sr_lookup_ttl(p, dc, L);
    }
    else {
        apr_status_t rv;
        sr_found_getaddrinfo(p, dc, L, dc->host, dc->port, -1, -1, &rv);
        if (L->found->nelts) {
            L->outcome = SR_LOOKUP_OK;
        }
        else {
            /* getaddrinfo's "no such name" and "no address": gone */
            L->outcome = sr_eai_gone(rv, &L->why) ? SR_LOOKUP_EMPTY
                                                  : SR_LOOKUP_FAIL;
        }
    }
    if (L->outcome != SR_LOOKUP_OK) {
        apr_array_clear(L->found);
    }
    /* sort by URL (insertion sort: small) */
    for (i = 1; i < L->found->nelts; i++) {
        int j = i;
        sr_found_t *f = (sr_found_t *)L->found->elts;
        while (j > 0 && strcmp(f[j - 1].url, f[j].url) > 0) {
            sr_found_t t = f[j];
            f[j] = f[j - 1];
            f[j - 1] = t;
            j--;
        }
    }
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
        w->s->lbfactor = dc->lbfactor * 100;    /* httpd keeps it x 100 */
    }
    /* a child's cached address lives one second (see the header) */
    w->s->address_ttl = 1;
    w->s->address_ttl_set = 1;
}

/* mod_proxy_hcheck's parameters on member w; NULL or the error. */
static const char *sr_member_hc(apr_pool_t *p, server_rec *s, proxy_worker *w,
                                const sr_discover_conf_t *dc)
{
    APR_OPTIONAL_FN_TYPE(set_worker_hc_param) *set_hc;
    int k;

    if (dc->hc->nelts == 0) {
        return NULL;
    }
    set_hc = APR_RETRIEVE_OPTIONAL_FN(set_worker_hc_param);
    if (!set_hc) {
        return "health check parameters need mod_proxy_hcheck (a2enmod "
               "proxy_hcheck)";
    }
    for (k = 0; k + 1 < dc->hc->nelts; k += 2) {
        const char *err = set_hc(p, s, w, APR_ARRAY_IDX(dc->hc, k, const char *),
                                 APR_ARRAY_IDX(dc->hc, k + 1, const char *), NULL);
        if (err) {
            return apr_psprintf(p, "%s=%s: %s", APR_ARRAY_IDX(dc->hc, k, const char *),
                                APR_ARRAY_IDX(dc->hc, k + 1, const char *), err);
        }
    }
    return NULL;
}

static const char *sr_worker_name(const proxy_worker *w)
{
    return w->s->name_ex[0] ? w->s->name_ex : w->s->name;
}

static uint32_t sr_name_sig(const char *s)
{
    uint32_t h = 2166136261u;

    while (*s) {
        h = (h ^ (unsigned char)*s++) * 16777619u;
    }
    return h ? h : 1;
}

/* "ADDRESS PORT" when w is a member a discovery makes - the scheme's, an
 * address literal (not a name) as its host, and (A/AAAA names) the port of
 * the URL - else NULL. Read from the worker's host and port fields, not its
 * name (httpd leaves the scheme's default port out of a worker's name). The
 * caller leaves out the configured members. */
static const char *sr_discovered_key(apr_pool_t *p,
                                     const sr_discover_conf_t *dc,
                                     const proxy_worker *w)
{
    const char *host = w->s->hostname_ex[0] ? w->s->hostname_ex : w->s->hostname;
    unsigned char buf[16];

    if (w->s->is_name_matchable || strcasecmp(w->s->scheme, dc->scheme)
        || (!dc->srv && w->s->port != dc->port)
        || (inet_pton(AF_INET, host, buf) != 1
            && inet_pton(AF_INET6, host, buf) != 1)) {
        return NULL;
    }
    return apr_psprintf(p, "%s %u", host, (unsigned)w->s->port);
}

/* An SRV member's lbset and load factor as its records say (loadfactor=
 * on the directive wins). */
static void sr_member_shape(proxy_worker *w, const sr_discover_conf_t *dc,
                            const sr_found_t *f)
{
    if (f->lbset >= 0 && w->s->lbset != f->lbset) {
        w->s->lbset = f->lbset;
    }
    /* httpd keeps a load factor x 100 (loadfactor=2.5 is 250) */
    if (f->lbfactor > 0 && dc->lbfactor <= 0
        && w->s->lbfactor != f->lbfactor * 100) {
        w->s->lbfactor = f->lbfactor * 100;
    }
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
    if (dc->hc->nelts) {
        /* the health check parameters, checked once on a scratch worker */
        proxy_worker scratch;
        proxy_worker_shared scratch_s;
        const char *err;
        memset(&scratch, 0, sizeof(scratch));
        memset(&scratch_s, 0, sizeof(scratch_s));
        scratch.s = &scratch_s;
        if ((err = sr_member_hc(ptemp, s, &scratch, dc)) != NULL) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         "StickyRouteDiscover %s in %s: %s", dc->url,
                         b->s->name, err);
            return 0;
        }
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
        sr_member_shape(w, dc, f);
        if ((err = sr_member_hc(pconf, s, w, dc)) != NULL) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         "StickyRouteDiscover %s in %s: %s", dc->url,
                         b->s->name, err);
            return 0;
        }
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
                                   const sr_found_t *f)
{
    const char *url = f->url;
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
    sr_member_shape(w, d->dc, f);
    sr_member_hc(conf->pool, d->s, w, d->dc);      /* checked at startup */
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

/* Gives the slot of member w (whose address is gone) to url: rewritten in
 * place, stopped and disabled until it has settled (see the header).
 * Needs the balancer's thread and global mutexes (the singleton's run). */
static void sr_reuse_slot(sr_discovery_t *d, proxy_worker *w,
                          sr_shm_member_t *e, const sr_found_t *f,
                          apr_time_t now)
{
    const char *url = f->url, *addr = f->addr;
    proxy_balancer *b = d->b;
    proxy_worker_shared *s = w->s;
    char route[SR_DERIVED_ROUTE_LEN + 1];
    char old[PROXY_WORKER_MAX_NAME_SIZE];
    apr_int64_t gone = e ? (apr_int64_t)apr_atomic_read64(&e->gone_since) : 0;

    apr_cpystrn(old, sr_worker_name(w), sizeof(old));
    /* out of every election and health check until it has settled */
    ap_proxy_set_wstatus(PROXY_WORKER_STOPPED_FLAG, 1, w);
    ap_proxy_set_wstatus(PROXY_WORKER_DISABLED_FLAG, 1, w);
    sr_discovered_route(route, b, url, d->route_key);
    apr_cpystrn(s->name, url, sizeof(s->name));
    apr_cpystrn(s->name_ex, url, sizeof(s->name_ex));
    apr_cpystrn(s->hostname, addr, sizeof(s->hostname));
    apr_cpystrn(s->hostname_ex, addr, sizeof(s->hostname_ex));
    apr_cpystrn(s->route, route, sizeof(s->route));
    s->port = f->port;
    /* its status and counters start afresh */
    ap_proxy_set_wstatus(PROXY_WORKER_IN_ERROR_FLAG, 0, w);
    ap_proxy_set_wstatus(PROXY_WORKER_HC_FAIL_FLAG, 0, w);
    s->error_time = 0;
    s->retries = 0;
    s->lbstatus = 0;
    s->elected = 0;
    s->transferred = 0;
    s->read = 0;
    s->pcount = 0;
    s->fcount = 0;
    sr_member_params(w, d->dc);
    sr_member_shape(w, d->dc, f);
    s->updated = now;
    if (e) {
        sr_shm_member_renew(e, route, now);
    }
    else {
        e = sr_shm_member(sr_shm_balancer(d->s, b, 0), route, 1, now);
    }
    if (s->method != NONE) {
        /* health checks: stopped until every child's per-child step has
         * given it a fresh worker (see the header, point 4) */
        if (e) {
            apr_atomic_set64(&e->settle_until, (apr_uint64_t)(now + SR_SETTLE_HC));
        }
        if (!d->settle_next || now + SR_SETTLE_HC < d->settle_next) {
            d->settle_next = now + SR_SETTLE_HC;
        }
    }
    else {
        /* every address a child cached for the slot has expired (the
         * member has been out of election for SR_REUSE_MIN_GONE, twice the
         * address TTL): it can take requests at once, once its new
         * identity is written */
        __atomic_thread_fence(__ATOMIC_RELEASE);
        ap_proxy_set_wstatus(PROXY_WORKER_STOPPED_FLAG, 0, w);
        ap_proxy_set_wstatus(PROXY_WORKER_DISABLED_FLAG, 0, w);
    }
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s,
                 "StickyRouteDiscover %s in %s: the slot of %s (gone %"
                 APR_TIME_T_FMT " s) reused for %s (route %s)%s", d->dc->url,
                 b->s->name, old, gone ? apr_time_sec(now - gone) : (apr_time_t)0,
                 url, route, s->method != NONE
                 ? "; enabled in 1 s (health checks)" : "");
}

/* One resolution and its plan, applied. Runs in the singleton watchdog;
 * takes the balancer's thread mutex, then its global mutex. */
static void sr_discover_run(sr_discovery_t *d, apr_pool_t *p)
{
    proxy_balancer *b = d->b;
    proxy_server_conf *conf = ap_get_module_config(d->s->module_config,
                                                   &proxy_module);
    apr_array_header_t *keys = apr_array_make(p, 16, sizeof(char *));
    apr_array_header_t *have = apr_array_make(p, 16, sizeof(sr_disc_member_t));
    apr_array_header_t *have_w = apr_array_make(p, 16, sizeof(proxy_worker *));
    apr_array_header_t *have_e = apr_array_make(p, 16, sizeof(sr_shm_member_t *));
    sr_shm_balancer_t *sb = sr_shm_balancer(d->s, b, 0);
    sr_disc_action_t *ha, *wa;
    uint32_t *target;
    sr_disc_counts_t counts;
    apr_uint32_t free_slots, i;
    apr_time_t now = apr_time_now();
    proxy_worker **ws;
    sr_lookup_t L;
    const char *const *want;
    int tlocked, glocked, rewrote = 0, answered;

    if (sb) {
        apr_atomic_set32(&sb->disc_on, 1);
        apr_atomic_set32(&sb->disc_max, (apr_uint32_t)d->dc->max);
        apr_atomic_inc64(&sb->disc_runs);
    }
    sr_lookup(p, d->dc, &L);
    for (i = 0; i < (apr_uint32_t)L.found->nelts; i++) {
        APR_ARRAY_PUSH(keys, const char *) = APR_ARRAY_IDX(L.found, i, sr_found_t).key;
    }
    d->last_ttl = L.min_ttl;
    d->answered = L.outcome == SR_LOOKUP_OK;
    if (L.outcome == SR_LOOKUP_FAIL) {
        if (sb) {
            apr_atomic_inc64(&sb->disc_errors);
            apr_atomic_set32(&sb->disc_failing, 1);
        }
        if (!d->fail_warned || now - d->fail_warned >= SR_WARN_PERIOD) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->s,
                         "StickyRouteDiscover %s in %s: %s does not resolve "
                         "(DNS failure: %s); the members stay as they are",
                         d->dc->url,
                         b->s->name, d->dc->host, L.why);
            d->fail_warned = now;
        }
        d->failing = 1;
    }
    else {
        if (sb) {
            apr_atomic_set32(&sb->disc_failing, 0);
        }
        if (d->failing) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s,
                         "StickyRouteDiscover %s in %s: %s resolves again",
                         d->dc->url, b->s->name, d->dc->host);
            d->failing = 0;
        }
    }
    if (L.outcome == SR_LOOKUP_EMPTY) {
        if (sb) {
            apr_atomic_inc64(&sb->disc_errors);
        }
        if (!d->empty_since) {
            d->empty_since = now;
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->s,
                         "StickyRouteDiscover %s in %s: %s does not resolve "
                         "(%s: the name is gone); its members are disabled "
                         "if it stays so for hold=%"
                         APR_TIME_T_FMT " s", d->dc->url, b->s->name,
                         d->dc->host, L.why, apr_time_sec(d->dc->hold));
        }
    }
    else {
        if (d->empty_since && L.outcome == SR_LOOKUP_OK) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s,
                         "StickyRouteDiscover %s in %s: %s resolves again",
                         d->dc->url, b->s->name, d->dc->host);
        }
        d->empty_since = 0;
    }
    /* the want list: an answer (possibly empty: the service is gone, once
     * that has lasted hold=), or none (NULL: keep everything) */
    answered = L.outcome == SR_LOOKUP_OK
               || (L.outcome == SR_LOOKUP_EMPTY
                   && now - d->empty_since >= d->dc->hold);
    want = answered ? (const char *const *)keys->elts : NULL;
    tlocked = PROXY_THREAD_LOCK(b) == APR_SUCCESS;
    glocked = PROXY_GLOBAL_LOCK(b) == APR_SUCCESS;
    /* members other processes added (balancer-manager) first */
    ap_proxy_sync_balancer(b, d->s, conf);
    ws = (proxy_worker **)b->workers->elts;
    for (i = 0; i < (apr_uint32_t)b->workers->nelts; i++) {
        sr_disc_member_t *m;
        sr_shm_member_t *e;
        const char *name = sr_worker_name(ws[i]);
        const char *a;
        if (apr_hash_get(d->configured, name, APR_HASH_KEY_STRING)
            || !(a = sr_discovered_key(p, d->dc, ws[i]))) {
            continue;
        }
        /* its entry, when a child made it (the scan claims it with the
         * member's slow-start start; not claimed here before it is needed) */
        e = sr_shm_member(sb, ws[i]->s->route, 0, 0);
        m = apr_array_push(have);
        m->addr = a;
        m->enabled = !(ws[i]->s->status & PROXY_WORKER_DISABLED);
        m->gone_since = e ? (int64_t)apr_atomic_read64(&e->gone_since) : 0;
        m->settle_until = e ? (int64_t)apr_atomic_read64(&e->settle_until) : 0;
        if (!m->enabled && !m->gone_since && !m->settle_until
            && (e || (e = sr_shm_member(sb, ws[i]->s->route, 1, 0)))) {
            /* disabled and not seen leaving (an earlier process of ours
             * before a restart, or an operator): held from now on */
            apr_atomic_set64(&e->gone_since, (apr_uint64_t)now);
            m->gone_since = now;
        }
        APR_ARRAY_PUSH(have_w, proxy_worker *) = ws[i];
        APR_ARRAY_PUSH(have_e, sr_shm_member_t *) = e;
    }
    free_slots = (b->storage && b->wslot) ? b->storage->num_free_slots(b->wslot)
                                          : 0;
    ha = apr_pcalloc(p, (have->nelts + 1) * sizeof(*ha));
    target = apr_pcalloc(p, (have->nelts + 1) * sizeof(*target));
    wa = apr_pcalloc(p, (keys->nelts + 1) * sizeof(*wa));
    sr_discover_plan((sr_disc_member_t *)have->elts, (uint32_t)have->nelts,
                     want, answered ? (uint32_t)keys->nelts : 0,
                     free_slots, now,
                     d->dc->hold > SR_REUSE_MIN_GONE ? d->dc->hold
                                                     : SR_REUSE_MIN_GONE,
                     ha, target, wa, &counts);
    d->settle_next = 0;
    for (i = 0; i < (apr_uint32_t)have->nelts; i++) {
        proxy_worker *w = APR_ARRAY_IDX(have_w, i, proxy_worker *);
        sr_shm_member_t *e = APR_ARRAY_IDX(have_e, i, sr_shm_member_t *);
        sr_disc_member_t *m = &APR_ARRAY_IDX(have, i, sr_disc_member_t);
        switch (ha[i]) {
        case SR_DISC_DISABLE:
            if (!e) {
                e = sr_shm_member(sb, w->s->route, 1, 0);
            }
            ap_proxy_set_wstatus(PROXY_WORKER_DISABLED_FLAG, 1, w);
            ap_proxy_set_wstatus(PROXY_WORKER_STOPPED_FLAG, 0, w);
            if (e) {
                apr_atomic_set64(&e->gone_since, (apr_uint64_t)now);
                apr_atomic_set64(&e->settle_until, 0);
            }
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s,
                         "StickyRouteDiscover %s in %s: %s is gone; member "
                         "disabled (route %s), its slot held %" APR_TIME_T_FMT
                         " s", d->dc->url, b->s->name, sr_worker_name(w),
                         w->s->route, apr_time_sec(d->dc->hold));
            break;
        case SR_DISC_ENABLE:
            ap_proxy_set_wstatus(PROXY_WORKER_STOPPED_FLAG, 0, w);
            ap_proxy_set_wstatus(PROXY_WORKER_DISABLED_FLAG, 0, w);
            if (e) {
                apr_atomic_set64(&e->gone_since, 0);
                apr_atomic_set64(&e->settle_until, 0);
            }
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s,
                         "StickyRouteDiscover %s in %s: %s %s; member "
                         "enabled (route %s)", d->dc->url, b->s->name,
                         sr_worker_name(w), m->settle_until ? "has settled"
                         : "is back", w->s->route);
            break;
        case SR_DISC_SETTLE:
            if (!d->settle_next || m->settle_until < d->settle_next) {
                d->settle_next = m->settle_until;
            }
            break;
        case SR_DISC_REUSE:
            sr_reuse_slot(d, w, e, &APR_ARRAY_IDX(L.found, target[i], sr_found_t),
                          now);
            rewrote = 1;
            break;
        default:
            break;
        }
        if (answered && ha[i] != SR_DISC_REUSE && ha[i] != SR_DISC_DISABLE) {
            /* SRV priorities and weights may change: follow them */
            uint32_t j;
            for (j = 0; j < (apr_uint32_t)keys->nelts; j++) {
                if (!strcmp(m->addr, APR_ARRAY_IDX(keys, j, const char *))) {
                    sr_member_shape(w, d->dc, &APR_ARRAY_IDX(L.found, j, sr_found_t));
                    break;
                }
            }
        }
    }
    for (i = 0; answered && i < (apr_uint32_t)keys->nelts; i++) {
        const sr_found_t *f = &APR_ARRAY_IDX(L.found, i, sr_found_t);
        if (wa[i] == SR_DISC_ADD) {
            proxy_worker *w = sr_add_member(d, conf, f);
            if (w) {
                ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s,
                             "StickyRouteDiscover %s in %s: new member %s "
                             "(route %s)", d->dc->url, b->s->name, f->url,
                             w->s->route);
            }
            else {
                counts.no_slot++;
                counts.members--;
            }
        }
    }
    if (rewrote && sb) {
        apr_atomic_inc32(&sb->disc_gen);
    }
    if (glocked) {
        PROXY_GLOBAL_UNLOCK(b);
    }
    if (tlocked) {
        PROXY_THREAD_UNLOCK(b);
    }
    if (sr_discover_warn_due(counts.no_slot, now, d->warned, SR_WARN_PERIOD)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->s,
                     "StickyRouteDiscover %s in %s: %u address(es) beyond "
                     "max=%d get no member (%u held within hold=%" APR_TIME_T_FMT
                     " s); they take the slots of gone members as these "
                     "pass their hold, or raise max=", d->dc->url, b->s->name,
                     counts.no_slot, d->dc->max, counts.held,
                     apr_time_sec(d->dc->hold));
        d->warned = now;
    }
    if (sb) {
        apr_atomic_set32(&sb->disc_members, counts.members);
        apr_atomic_set32(&sb->disc_unplaced, counts.no_slot);
        apr_atomic_set32(&sb->disc_held, counts.held);
        apr_atomic_add64(&sb->disc_reused, counts.reuse);
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
    if (apr_pool_create(&p, pool) != APR_SUCCESS) {
        return APR_SUCCESS;
    }
    sr_discover_run(t->d, p);
    apr_pool_destroy(p);
    t->next = now + sr_discover_next(t->d->dc->ttl_mode, t->d->dc->interval,
                                     t->d->last_ttl, t->d->answered);
    if (t->d->settle_next && t->d->settle_next < t->next) {
        t->next = t->d->settle_next;    /* enable a settled slot on time */
    }
    {
        sr_shm_balancer_t *sb = sr_shm_balancer(t->d->s, t->d->b, 0);
        if (sb) {
            apr_atomic_set64(&sb->disc_next, (apr_uint64_t)t->next);
        }
    }
    return APR_SUCCESS;
}

/* The per-child step (a watchdog that runs in every child process, every
 * 100 ms): after a slot rewrite (the shared disc_gen moved), a rewritten
 * member that has health checks gets a fresh proxy_worker in this child's
 * balancer, so that mod_proxy_hcheck, which keys its check workers by
 * proxy_worker pointer and copies the host once, makes a check worker for
 * the new address (see the header, point 4). The copy shares the old one's
 * connection pool and mutex (its connections are closed on the address
 * change), takes over its cached address (one reference, as before), and
 * costs one proxy_worker per rewrite in this child. Takes the balancer's
 * thread mutex (the one mod_proxy_balancer's finder holds). */
static void sr_discover_child_step(sr_discovery_t *d)
{
    proxy_balancer *b = d->b;
    sr_shm_balancer_t *sb = sr_shm_balancer(d->s, b, 0);
    proxy_server_conf *conf;
    apr_uint32_t gen;
    int i, first;

    if (!sb) {
        return;
    }
    gen = apr_atomic_read32(&sb->disc_gen);
    first = d->child_sig == NULL;
    if (!first && gen == d->child_gen) {
        return;
    }
    if (first) {
        /* the watchdog clears its pool after every call: this child's
         * memory of the slots lives in a pool of its own, used by this
         * (the per-child watchdog's) thread only */
        if (apr_pool_create(&d->child_pool, NULL) != APR_SUCCESS) {
            return;
        }
        d->child_sig = apr_pcalloc(d->child_pool, (apr_size_t)b->max_workers
                                                  * sizeof(uint32_t));
    }
    conf = ap_get_module_config(d->s->module_config, &proxy_module);
    if (PROXY_THREAD_LOCK(b) != APR_SUCCESS) {
        return;
    }
    ap_proxy_sync_balancer(b, d->s, conf);
    for (i = 0; i < b->workers->nelts && i < b->max_workers; i++) {
        proxy_worker **slot = &((proxy_worker **)b->workers->elts)[i];
        proxy_worker *w = *slot, *fresh;
        uint32_t sig = sr_name_sig(sr_worker_name(w));

        if (!first && d->child_sig[i] && d->child_sig[i] != sig
            && w->s->method != NONE) {
            fresh = apr_palloc(d->child_pool, sizeof(*fresh));
            PROXY_THREAD_LOCK(w);
            *fresh = *w;
            fresh->address = apr_atomic_xchgptr((void *)&w->address, NULL);
            PROXY_THREAD_UNLOCK(w);
            *slot = fresh;
            ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, d->s,
                         "StickyRouteDiscover %s in %s: member %s has a "
                         "fresh worker in this child (health checks)",
                         d->dc->url, b->s->name, sr_worker_name(w));
        }
        d->child_sig[i] = sig;
    }
    d->child_gen = gen;
    PROXY_THREAD_UNLOCK(b);
}

static apr_status_t sr_discover_child_callback(int state, void *data,
                                               apr_pool_t *pool)
{
    int i;

    (void)data;
    (void)pool;
    if (state != AP_WATCHDOG_STATE_RUNNING || !sr_discoveries) {
        return APR_SUCCESS;
    }
    for (i = 0; i < sr_discoveries->nelts; i++) {
        sr_discover_child_step(APR_ARRAY_IDX(sr_discoveries, i,
                                             sr_discovery_t *));
    }
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
    /* and one in every child process for the per-child step */
    {
        ap_watchdog_t *wd_child = NULL;
        rv = get_instance(&wd_child, SR_DISCOVER_WATCHDOG "child_", 0, 0, pconf);
        if (rv == APR_SUCCESS) {
            rv = register_callback(wd_child, AP_WD_TM_SLICE, NULL,
                                   sr_discover_child_callback);
        }
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, main_s,
                         "StickyRouteDiscover: cannot create the per-child "
                         "watchdog");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
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
