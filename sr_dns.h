/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_dns.h - reading a DNS answer (RFC 1035 messages, RFC 2782 SRV, RFC
 * 3596 AAAA) for StickyRouteDiscover. Pure: bytes in, records out, no
 * httpd or resolver headers, so the fuzzer and the unit tests link it alone.
 * The query itself is sent by the C library's resolver (res_nsend, in the
 * discovery glue), which also retries a truncated UDP answer over TCP.
 */
#ifndef SR_DNS_H
#define SR_DNS_H

#include <stddef.h>
#include <stdint.h>

#define SR_DNS_T_A      1
#define SR_DNS_T_AAAA   28
#define SR_DNS_T_SRV    33
#define SR_DNS_NAME_MAX 256     /* presentation form, NUL included */

typedef enum {
    SR_DNS_OK = 0,          /* records of the asked type */
    SR_DNS_NXDOMAIN,        /* the name does not exist: the service is gone */
    SR_DNS_NODATA,          /* it exists, without records of the type: gone */
    SR_DNS_SERVFAIL,        /* SERVFAIL, REFUSED or another error code */
    SR_DNS_TRUNCATED,       /* TC set (the TCP retry failed too) */
    SR_DNS_MALFORMED        /* not a well-formed answer to our query */
} sr_dns_outcome_t;

typedef struct {
    uint16_t priority, weight, port;
    uint32_t ttl;
    char target[SR_DNS_NAME_MAX];   /* lower case, no final dot */
} sr_dns_srv_t;

typedef struct {
    int family;                     /* 4 or 6 */
    unsigned char addr[16];
    uint32_t ttl;
    char owner[SR_DNS_NAME_MAX];    /* the record's name, lower case */
} sr_dns_addr_t;

typedef struct {
    int rcode;
    sr_dns_srv_t *srv;              /* the caller's arrays */
    uint32_t nsrv, max_srv;
    sr_dns_addr_t *addr;            /* A/AAAA of the answer and additional */
    uint32_t naddr, max_addr;
    uint32_t min_ttl;               /* of the records kept; UINT32_MAX: none */
    uint32_t skipped;               /* records left out (odd names, full) */
} sr_dns_answer_t;

/* Reads msg (len bytes) as the answer to query id for type qtype (SRV, A
 * or AAAA): SRV records of the answer section, A/AAAA records of the answer
 * and additional sections, at most max_srv/max_addr of each (the rest are
 * counted in skipped). TTLs with the high bit set count as 0 (RFC 2181).
 * A record whose name has bytes other than letters, digits, '-' and '_' is
 * left out (skipped), never the whole answer. */
sr_dns_outcome_t sr_dns_parse(const unsigned char *msg, size_t len,
                              uint16_t id, uint16_t qtype,
                              sr_dns_answer_t *out);

const char *sr_dns_outcome_name(sr_dns_outcome_t o);

/* Reads the (possibly compressed) name at *off into out (lower case, no
 * final dot; "" for the root); *off moves past it. 0 on a malformed name
 * (out of bounds, a pointer loop, a label over 63 or a name over 255
 * bytes); -1 when well formed but with bytes a host name cannot have. */
int sr_dns_name(const unsigned char *msg, size_t len, size_t *off,
                char out[SR_DNS_NAME_MAX]);

#endif /* SR_DNS_H */
