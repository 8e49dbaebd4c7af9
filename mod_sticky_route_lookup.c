/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_lookup.c - what a StickyRouteDiscover name leads to now:
 * the addresses of an A/AAAA name through getaddrinfo (or, with
 * interval=ttl, through DNS queries of our own for their TTLs), or the
 * members of an SRV name (RFC 2782) through res_nsend and sr_dns.c. A DNS
 * failure is told apart from a name that is gone (NXDOMAIN, NODATA).
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
void sr_lookup(apr_pool_t *p, const sr_discover_conf_t *dc, sr_lookup_t *L)
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

