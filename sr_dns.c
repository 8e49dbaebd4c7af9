/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_dns.c - reading a DNS answer for StickyRouteDiscover (see sr_dns.h).
 *
 * The message is untrusted bytes: every read is bounds-checked against the
 * message, a compression pointer must point strictly backwards (so a chain
 * of them ends; RFC 1035 4.1.4 only ever needs backward pointers) and at
 * most 64 are followed, labels are at most 63 bytes and names 255 (RFC 1035
 * 2.3.4), an SRV's target must end inside its RDATA, A and AAAA RDATA must
 * be exactly 4 and 16 bytes. Anything else is SR_DNS_MALFORMED, which the
 * discovery treats as a DNS failure (the last good set is kept).
 */
#include <string.h>

#include "sr_dns.h"

#define SR_DNS_HEADER   12
#define SR_DNS_JUMPS    64

static uint16_t sr_u16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t sr_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16)
           | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

int sr_dns_name(const unsigned char *msg, size_t len, size_t *off,
                char out[SR_DNS_NAME_MAX])
{
    size_t pos = *off, after = 0, olen = 0, wire = 0;
    int jumped = 0, jumps = 0, odd = 0;

    for (;;) {
        unsigned int c;
        if (pos >= len) {
            return 0;
        }
        c = msg[pos];
        if ((c & 0xC0) == 0xC0) {
            size_t ptr;
            if (pos + 1 >= len || ++jumps > SR_DNS_JUMPS) {
                return 0;
            }
            ptr = ((size_t)(c & 0x3F) << 8) | msg[pos + 1];
            if (ptr >= pos) {
                return 0;           /* forwards or onto itself: a loop */
            }
            if (!jumped) {
                after = pos + 2;
                jumped = 1;
            }
            pos = ptr;
            continue;
        }
        if (c & 0xC0) {
            return 0;               /* 0x40, 0x80: reserved label types */
        }
        if (c == 0) {
            pos++;
            break;
        }
        wire += 1 + c;
        if (pos + 1 + c > len || wire + 1 > 255) {
            return 0;
        }
        if (olen) {
            out[olen++] = '.';
        }
        for (size_t k = 0; k < c; k++) {
            unsigned char b = msg[pos + 1 + k];
            if (b >= 'A' && b <= 'Z') {
                b = (unsigned char)(b - 'A' + 'a');
            }
            else if (!((b >= 'a' && b <= 'z') || (b >= '0' && b <= '9')
                       || b == '-' || b == '_')) {
                odd = 1;
                b = '?';
            }
            out[olen++] = (char)b;
        }
        pos += 1 + c;
    }
    out[olen] = '\0';
    *off = jumped ? after : pos;
    return odd ? -1 : 1;
}

static void sr_dns_ttl(sr_dns_answer_t *out, uint32_t ttl)
{
    if (ttl < out->min_ttl) {
        out->min_ttl = ttl;
    }
}

sr_dns_outcome_t sr_dns_parse(const unsigned char *msg, size_t len,
                              uint16_t id, uint16_t qtype,
                              sr_dns_answer_t *out)
{
    char name[SR_DNS_NAME_MAX];
    uint16_t counts[3];
    uint32_t seen = 0;
    size_t off;
    int s, ok;

    out->rcode = -1;
    out->nsrv = out->naddr = out->skipped = 0;
    out->min_ttl = UINT32_MAX;
    if (!msg || len < SR_DNS_HEADER || sr_u16(msg) != id
        || !(msg[2] & 0x80) || ((msg[2] >> 3) & 0x0F) != 0) {
        return SR_DNS_MALFORMED;    /* not the answer to our query */
    }
    out->rcode = msg[3] & 0x0F;
    if (msg[2] & 0x02) {
        return SR_DNS_TRUNCATED;
    }
    if (out->rcode == 3) {
        return SR_DNS_NXDOMAIN;
    }
    if (out->rcode != 0) {
        return SR_DNS_SERVFAIL;
    }
    if (sr_u16(msg + 4) != 1) {
        return SR_DNS_MALFORMED;
    }
    counts[0] = sr_u16(msg + 6);
    counts[1] = sr_u16(msg + 8);
    counts[2] = sr_u16(msg + 10);
    off = SR_DNS_HEADER;
    if (!sr_dns_name(msg, len, &off, name) || off + 4 > len
        || sr_u16(msg + off) != qtype || sr_u16(msg + off + 2) != 1) {
        return SR_DNS_MALFORMED;
    }
    off += 4;
    for (s = 0; s < 3; s++) {
        for (uint32_t i = 0; i < counts[s]; i++) {
            uint16_t type, klass, rdlen;
            uint32_t ttl;
            size_t rd;

            ok = sr_dns_name(msg, len, &off, name);
            if (!ok || off + 10 > len) {
                return SR_DNS_MALFORMED;
            }
            type = sr_u16(msg + off);
            klass = sr_u16(msg + off + 2);
            ttl = sr_u32(msg + off + 4);
            rdlen = sr_u16(msg + off + 8);
            if (ttl & 0x80000000u) {
                ttl = 0;            /* RFC 2181 8 */
            }
            rd = off + 10;
            if (rd + rdlen > len) {
                return SR_DNS_MALFORMED;
            }
            off = rd + rdlen;
            if (klass != 1 || s == 1) {
                continue;           /* not IN, or the authority section */
            }
            if (type == SR_DNS_T_SRV && s == 0 && qtype == SR_DNS_T_SRV) {
                sr_dns_srv_t *r;
                size_t t = rd + 6;
                char target[SR_DNS_NAME_MAX];
                int tok;
                if (rdlen < 7) {
                    return SR_DNS_MALFORMED;
                }
                tok = sr_dns_name(msg, len, &t, target);
                if (!tok || t != rd + rdlen) {
                    return SR_DNS_MALFORMED;
                }
                if (!target[0]) {
                    continue;       /* "." : decidedly not available here */
                }
                seen++;
                if (ok < 0 || tok < 0 || out->nsrv >= out->max_srv) {
                    out->skipped++;
                    continue;
                }
                r = &out->srv[out->nsrv++];
                r->priority = sr_u16(msg + rd);
                r->weight = sr_u16(msg + rd + 2);
                r->port = sr_u16(msg + rd + 4);
                r->ttl = ttl;
                memcpy(r->target, target, sizeof(r->target));
                sr_dns_ttl(out, ttl);
            }
            else if (type == SR_DNS_T_A || type == SR_DNS_T_AAAA) {
                sr_dns_addr_t *a;
                size_t want = type == SR_DNS_T_A ? 4 : 16;
                if (rdlen != want) {
                    return SR_DNS_MALFORMED;
                }
                if (s == 0 && type == qtype) {
                    seen++;
                }
                if (ok < 0 || out->naddr >= out->max_addr) {
                    out->skipped++;
                    continue;
                }
                a = &out->addr[out->naddr++];
                a->family = type == SR_DNS_T_A ? 4 : 6;
                memset(a->addr, 0, sizeof(a->addr));
                memcpy(a->addr, msg + rd, want);
                a->ttl = ttl;
                memcpy(a->owner, name, sizeof(a->owner));
                if (s == 0 && type == qtype) {
                    sr_dns_ttl(out, ttl);
                }
            }
        }
    }
    return seen ? SR_DNS_OK : SR_DNS_NODATA;
}

const char *sr_dns_outcome_name(sr_dns_outcome_t o)
{
    switch (o) {
    case SR_DNS_OK:         return "ok";
    case SR_DNS_NXDOMAIN:   return "NXDOMAIN";
    case SR_DNS_NODATA:     return "NODATA";
    case SR_DNS_SERVFAIL:   return "SERVFAIL or REFUSED";
    case SR_DNS_TRUNCATED:  return "truncated";
    case SR_DNS_MALFORMED:  return "malformed answer";
    }
    return "?";
}
