/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/* Unit tests of the DNS answer reader (sr_dns.c): answers built byte by
 * byte, well formed and hostile. */
#include <check.h>
#include <string.h>

#include "sr_dns.h"
#include "unit_util.h"

Suite *dns_suite(void);

typedef struct {
    unsigned char b[4096];
    size_t n;
} pkt_t;

static void put8(pkt_t *p, unsigned v) { p->b[p->n++] = (unsigned char)v; }
static void put16(pkt_t *p, unsigned v) { put8(p, v >> 8); put8(p, v & 0xff); }
static void put32(pkt_t *p, uint32_t v) { put16(p, v >> 16); put16(p, v & 0xffff); }

static void putname(pkt_t *p, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        put8(p, (unsigned)l);
        memcpy(p->b + p->n, name, l);
        p->n += l;
        name += l + (dot ? 1 : 0);
    }
    put8(p, 0);
}

/* header + question; flags 0x8180 = response, RD, RA, rcode in low bits */
static void header(pkt_t *p, unsigned id, unsigned flags, unsigned an,
                   unsigned ns, unsigned ar, const char *q, unsigned qtype)
{
    p->n = 0;
    put16(p, id);
    put16(p, flags);
    put16(p, 1);
    put16(p, an);
    put16(p, ns);
    put16(p, ar);
    putname(p, q);
    put16(p, qtype);
    put16(p, 1);
}

static void srv(pkt_t *p, unsigned owner_ptr, uint32_t ttl, unsigned prio,
                unsigned weight, unsigned port, const char *target)
{
    size_t rdlen_at;
    put16(p, 0xC000 | owner_ptr);
    put16(p, SR_DNS_T_SRV);
    put16(p, 1);
    put32(p, ttl);
    rdlen_at = p->n;
    put16(p, 0);
    put16(p, prio);
    put16(p, weight);
    put16(p, port);
    putname(p, target);
    p->b[rdlen_at] = (unsigned char)((p->n - rdlen_at - 2) >> 8);
    p->b[rdlen_at + 1] = (unsigned char)((p->n - rdlen_at - 2) & 0xff);
}

static void a_rec(pkt_t *p, const char *owner, uint32_t ttl, unsigned a,
                  unsigned b, unsigned c, unsigned d)
{
    putname(p, owner);
    put16(p, SR_DNS_T_A);
    put16(p, 1);
    put32(p, ttl);
    put16(p, 4);
    put8(p, a); put8(p, b); put8(p, c); put8(p, d);
}

static sr_dns_srv_t srvs[8];
static sr_dns_addr_t addrs[8];

static sr_dns_outcome_t parse(const pkt_t *p, unsigned id, unsigned qtype,
                              sr_dns_answer_t *out)
{
    memset(out, 0, sizeof(*out));
    out->srv = srvs;
    out->max_srv = 8;
    out->addr = addrs;
    out->max_addr = 8;
    return sr_dns_parse(p->b, p->n, (uint16_t)id, (uint16_t)qtype, out);
}

START_TEST(dns_srv_answer_with_additional_addresses)
{
    pkt_t p;
    sr_dns_answer_t a;

    header(&p, 0x1234, 0x8180, 2, 0, 2, "_http._tcp.web.consul", SR_DNS_T_SRV);
    srv(&p, 12, 30, 10, 5, 8080, "n1.web.consul");
    srv(&p, 12, 20, 20, 1, 9090, "N2.Web.consul");
    a_rec(&p, "n1.web.consul", 40, 10, 0, 0, 1);
    a_rec(&p, "n2.web.consul", 10, 10, 0, 0, 2);
    ck_assert_int_eq(parse(&p, 0x1234, SR_DNS_T_SRV, &a), SR_DNS_OK);
    ck_assert_uint_eq(a.nsrv, 2);
    ck_assert_uint_eq(a.srv[0].port, 8080);
    ck_assert_uint_eq(a.srv[0].priority, 10);
    ck_assert_uint_eq(a.srv[0].weight, 5);
    ck_assert_str_eq(a.srv[0].target, "n1.web.consul");
    ck_assert_str_eq(a.srv[1].target, "n2.web.consul");     /* lower case */
    ck_assert_uint_eq(a.naddr, 2);
    ck_assert_str_eq(a.addr[1].owner, "n2.web.consul");
    ck_assert_uint_eq(a.addr[1].addr[3], 2);
    ck_assert_uint_eq(a.min_ttl, 20);       /* of the SRV records */
}
END_TEST

/* Answers of a header and question only (id 7): the flags, the question,
 * the id the parser expects and the outcome. */
static const struct {
    unsigned flags;
    const char *q;
    unsigned qtype;
    unsigned expect_id;
    sr_dns_outcome_t outcome;
} header_cases[] = {
    {0x8183, "_x._tcp.gone", SR_DNS_T_SRV, 7, SR_DNS_NXDOMAIN},
    {0x8180, "_x._tcp.empty", SR_DNS_T_SRV, 7, SR_DNS_NODATA},
    {0x8182, "_x._tcp.broken", SR_DNS_T_SRV, 7, SR_DNS_SERVFAIL},
    {0x8185, "_x._tcp.refused", SR_DNS_T_SRV, 7, SR_DNS_SERVFAIL},
    {0x8380, "_x._tcp.big", SR_DNS_T_SRV, 7, SR_DNS_TRUNCATED},
    {0x8180, "web", SR_DNS_T_A, 8, SR_DNS_MALFORMED},          /* wrong id */
    {0x0100, "web", SR_DNS_T_A, 7, SR_DNS_MALFORMED},          /* a query, not an answer */
};

START_TEST(dns_header_only_outcomes)
{
    pkt_t p;
    sr_dns_answer_t a;

    header(&p, 7, header_cases[_i].flags, 0, 0, 0, header_cases[_i].q, header_cases[_i].qtype);
    ck_assert_int_eq(parse(&p, header_cases[_i].expect_id, header_cases[_i].qtype, &a),
                     header_cases[_i].outcome);
}
END_TEST

START_TEST(dns_outcomes_no_target_and_a_answer)
{
    pkt_t p;
    sr_dns_answer_t a;

    /* only a "." target: the service is decidedly not available */
    header(&p, 7, 0x8180, 1, 0, 0, "_x._tcp.none", SR_DNS_T_SRV);
    srv(&p, 12, 30, 0, 0, 0, "");
    ck_assert_int_eq(parse(&p, 7, SR_DNS_T_SRV, &a), SR_DNS_NODATA);
    /* A answer: records of the answer section count */
    header(&p, 9, 0x8180, 1, 0, 0, "web", SR_DNS_T_A);
    a_rec(&p, "web", 5, 127, 0, 0, 9);
    ck_assert_int_eq(parse(&p, 9, SR_DNS_T_A, &a), SR_DNS_OK);
    ck_assert_uint_eq(a.naddr, 1);
    ck_assert_uint_eq(a.min_ttl, 5);
}
END_TEST

START_TEST(dns_hostile_answers_are_malformed_never_read_out_of_bounds)
{
    pkt_t p, q;
    sr_dns_answer_t a;
    size_t cut;

    /* too short (wrong id and a query: dns_header_only_outcomes) */
    header(&p, 7, 0x0100, 0, 0, 0, "web", SR_DNS_T_A);
    p.n = 11;
    ck_assert_int_eq(parse(&p, 7, SR_DNS_T_A, &a), SR_DNS_MALFORMED);
    /* counts larger than the records */
    header(&p, 7, 0x8180, 3, 0, 0, "web", SR_DNS_T_A);
    a_rec(&p, "web", 5, 127, 0, 0, 9);
    ck_assert_int_eq(parse(&p, 7, SR_DNS_T_A, &a), SR_DNS_MALFORMED);
    /* every truncation of a good answer: malformed, never a crash */
    header(&q, 1, 0x8180, 2, 0, 1, "_h._tcp.s", SR_DNS_T_SRV);
    srv(&q, 12, 30, 1, 1, 80, "t.s");
    srv(&q, 12, 30, 1, 1, 81, "u.s");
    a_rec(&q, "t.s", 30, 1, 2, 3, 4);
    for (cut = 0; cut < q.n; cut++) {
        p = q;
        p.n = cut;
        ck_assert_int_eq(parse(&p, 1, SR_DNS_T_SRV, &a), SR_DNS_MALFORMED);
    }
    /* a compression pointer loop (onto itself, and forwards) */
    header(&p, 1, 0x8180, 1, 0, 0, "_h._tcp.s", SR_DNS_T_SRV);
    put16(&p, 0xC000 | (unsigned)p.n);
    ck_assert_int_eq(parse(&p, 1, SR_DNS_T_SRV, &a), SR_DNS_MALFORMED);
    header(&p, 1, 0x8180, 1, 0, 0, "_h._tcp.s", SR_DNS_T_SRV);
    put16(&p, 0xC000 | (unsigned)(p.n + 2));
    put16(&p, 0xC000 | 12);
    ck_assert_int_eq(parse(&p, 1, SR_DNS_T_SRV, &a), SR_DNS_MALFORMED);
    /* SRV RDATA too short, and a target running past its RDATA */
    header(&p, 1, 0x8180, 1, 0, 0, "_h._tcp.s", SR_DNS_T_SRV);
    put16(&p, 0xC00C); put16(&p, SR_DNS_T_SRV); put16(&p, 1); put32(&p, 1);
    put16(&p, 5); put16(&p, 1); put16(&p, 1); put8(&p, 0);
    ck_assert_int_eq(parse(&p, 1, SR_DNS_T_SRV, &a), SR_DNS_MALFORMED);
    header(&p, 1, 0x8180, 1, 0, 0, "_h._tcp.s", SR_DNS_T_SRV);
    put16(&p, 0xC00C); put16(&p, SR_DNS_T_SRV); put16(&p, 1); put32(&p, 1);
    put16(&p, 8); put16(&p, 1); put16(&p, 1); put16(&p, 80);
    putname(&p, "longer.than.its.rdata");
    ck_assert_int_eq(parse(&p, 1, SR_DNS_T_SRV, &a), SR_DNS_MALFORMED);
    /* an A record of 5 bytes */
    header(&p, 1, 0x8180, 1, 0, 0, "web", SR_DNS_T_A);
    put16(&p, 0xC00C); put16(&p, SR_DNS_T_A); put16(&p, 1); put32(&p, 1);
    put16(&p, 5); put32(&p, 0x7f000001); put8(&p, 0);
    ck_assert_int_eq(parse(&p, 1, SR_DNS_T_A, &a), SR_DNS_MALFORMED);
}
END_TEST

START_TEST(dns_names_limits_odd_bytes_and_ttls)
{
    pkt_t p;
    sr_dns_answer_t a;
    char name[SR_DNS_NAME_MAX];
    size_t off;
    int i;

    /* a name of 255 wire bytes is the limit: 256 is malformed */
    p.n = 0;
    for (i = 0; i < 4; i++) {
        put8(&p, 63);
        memset(p.b + p.n, 'a', 63);
        p.n += 63;
    }
    put8(&p, 0);                        /* 4 * 64 + 1 = 257 bytes */
    off = 0;
    ck_assert_int_eq(sr_dns_name(p.b, p.n, &off, name), 0);
    p.n = 0;
    for (i = 0; i < 3; i++) {
        put8(&p, 63);
        memset(p.b + p.n, 'a', 63);
        p.n += 63;
    }
    put8(&p, 61);
    memset(p.b + p.n, 'b', 61);
    p.n += 61;
    put8(&p, 0);                        /* 3 * 64 + 62 + 1 = 255 */
    off = 0;
    ck_assert_int_eq(sr_dns_name(p.b, p.n, &off, name), 1);
    ck_assert_uint_eq(strlen(name), 253);
    ck_assert_uint_eq(off, p.n);
    /* a label with a NUL and a space: left out, the rest of the answer kept */
    header(&p, 3, 0x8180, 2, 0, 0, "_h._tcp.s", SR_DNS_T_SRV);
    srv(&p, 12, 0x80000005u, 1, 1, 80, "ok.s");      /* TTL high bit: 0 */
    srv(&p, 12, 30, 1, 1, 81, "x");
    p.b[p.n - 2] = 0;                   /* target label "x" becomes "\0" */
    ck_assert_int_eq(parse(&p, 3, SR_DNS_T_SRV, &a), SR_DNS_OK);
    ck_assert_uint_eq(a.nsrv, 1);
    ck_assert_uint_eq(a.skipped, 1);
    ck_assert_uint_eq(a.min_ttl, 0);
    /* more records than room: counted, not stored */
    header(&p, 3, 0x8180, 10, 0, 0, "_h._tcp.s", SR_DNS_T_SRV);
    for (i = 0; i < 10; i++) {
        srv(&p, 12, 30, 1, 1, (unsigned)(80 + i), "t.s");
    }
    ck_assert_int_eq(parse(&p, 3, SR_DNS_T_SRV, &a), SR_DNS_OK);
    ck_assert_uint_eq(a.nsrv, 8);
    ck_assert_uint_eq(a.skipped, 2);
}
END_TEST

Suite *dns_suite(void)
{
    const TTest *tests[] = {
        dns_srv_answer_with_additional_addresses, dns_outcomes_no_target_and_a_answer,
        dns_hostile_answers_are_malformed_never_read_out_of_bounds,
        dns_names_limits_odd_bytes_and_ttls,
    };
    TCase *tc = UNIT_TCASE("dns", 0, tests);

    UNIT_TABLE_TEST(tc, dns_header_only_outcomes, header_cases);
    return unit_suite("sr_dns", tc);
}
