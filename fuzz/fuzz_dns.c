/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * libFuzzer target: any bytes as a DNS answer through the reader
 * StickyRouteDiscover uses (sr_dns_parse), for SRV, A and AAAA questions,
 * with the id taken from the message (so the fuzzer gets past the id check)
 * and with room for few and for many records; the results must stay within
 * their bounds (names NUL-terminated within their buffers, counts within
 * the room given). Links sr_dns.c alone (make fuzz).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sr_dns.h"

static sr_dns_srv_t srv[64];
static sr_dns_addr_t addr[64];

static void check(const sr_dns_answer_t *a)
{
    uint32_t i;

    if (a->nsrv > a->max_srv || a->naddr > a->max_addr) {
        abort();
    }
    for (i = 0; i < a->nsrv; i++) {
        if (!memchr(a->srv[i].target, 0, sizeof(a->srv[i].target))) {
            abort();
        }
    }
    for (i = 0; i < a->naddr; i++) {
        if (!memchr(a->addr[i].owner, 0, sizeof(a->addr[i].owner))
            || (a->addr[i].family != 4 && a->addr[i].family != 6)) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint16_t types[] = { SR_DNS_T_SRV, SR_DNS_T_A, SR_DNS_T_AAAA };
    uint16_t id = size >= 2 ? (uint16_t)((data[0] << 8) | data[1]) : 0;
    size_t t, room;

    for (t = 0; t < 3; t++) {
        for (room = 1; room <= 64; room += 63) {
            sr_dns_answer_t a;
            memset(&a, 0, sizeof(a));
            a.srv = srv;
            a.max_srv = (uint32_t)room;
            a.addr = addr;
            a.max_addr = (uint32_t)room;
            (void)sr_dns_parse(data, size, id, types[t], &a);
            check(&a);
        }
    }
    {
        char name[SR_DNS_NAME_MAX];
        size_t off = 0;
        if (sr_dns_name(data, size, &off, name) && (off > size
                                                    || !memchr(name, 0, sizeof(name)))) {
            abort();
        }
    }
    return 0;
}
