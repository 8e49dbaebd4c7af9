/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_text.h - text in and out: the decisions' names (sr_status_t), numbers in
 * directive arguments, escaping for JSON and Prometheus labels (sr_text.c).
 */
#ifndef SR_TEXT_H
#define SR_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include "apr_pools.h"

typedef enum {
    SR_STATUS_HIT = 0,
    SR_STATUS_NEW,
    SR_STATUS_FAILOVER,
    SR_STATUS_UNKNOWN,
    SR_STATUS_FORGED,
    SR_STATUS_ROUNDROBIN,
    SR_STATUS_EXPIRED,      /* cookie past MaxIdle or MaxLife: elected again */
    SR_STATUS_REBALANCED,   /* idle client of an overloaded member: moved */
    SR_STATUS_HASHED,       /* lbmethod=hash: the key's member (or its next
                               choice when that one is unusable) */
    SR_STATUS_HASH_SPILL,   /* lbmethod=hash: the key's member was over its
                               bounded load, a next choice served */
    SR_STATUS_COUNT
} sr_status_t;

extern const char *const sr_status_names[SR_STATUS_COUNT];

static inline const char *sr_status_name(sr_status_t status)
{
    return (unsigned)status < SR_STATUS_COUNT ? sr_status_names[status]
                                              : "none";
}

/* ---- numbers ------------------------------------------------------- */

/* A whole decimal number 0..max (no sign, no blanks). Returns 1 and sets
 * *out, or 0. Every numeric directive argument goes through it. */
int sr_parse_number(const char *s, long max, long *out);

/* ---- output escaping ------------------------------------------------ */

/* A JSON string body (RFC 8259) for any bytes: '"' and '\\' escaped,
 * control characters as \u00XX, bytes that are not UTF-8 as \ufffd.
 * Returns s itself when nothing needs escaping. */
const char *sr_json_escape(apr_pool_t *p, const char *s);

/* A Prometheus label value (text exposition format 0.0.4): '\\\\', '"' and
 * newline escaped, every other character as it is (the format allows any
 * UTF-8); bytes that are not UTF-8 become U+FFFD. Returns s itself when
 * nothing needs changing. */
const char *sr_label_escape(apr_pool_t *p, const char *s);

#endif /* SR_TEXT_H */
