/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_key.h - keys and what they sign (sr_key.c): secrets and their files,
 * the key derivation, derived routes, cookie tags (keyed SipHash-2-4).
 */
#ifndef SR_KEY_H
#define SR_KEY_H

#include <stddef.h>
#include <stdint.h>
#include "apr_pools.h"

/* A route fits mod_proxy's proxy_worker_shared.route (64 bytes with NUL). */
#define SR_ROUTE_MAX        63
/* Base64url of a 64-bit SipHash tag, no padding. */
#define SR_TAG_LEN          11
/* Derived routes: 'r' + base64url(64-bit keyed hash of the member URL). */
#define SR_DERIVED_ROUTE_LEN (1 + SR_TAG_LEN)
/* Minimum secret length in bytes. */
#define SR_SECRET_MIN       16

/* ---- keys ---------------------------------------------------------- */

typedef struct {
    unsigned char bytes[16];
} sr_key_t;

/* Derives a 128-bit SipHash key for one purpose ("tag", "route") from a
 * secret of any length: two keyed SipHash-2-4 passes over purpose||secret. */
void sr_key_derive(sr_key_t *out, const void *secret, size_t len,
                   const char *purpose);

/* Clears key material so that the compiler cannot drop the stores
 * (apr-util's apr_crypto_memzero: APR 1.7 has no apr_memzero_explicit). */
void sr_memzero(void *buf, size_t len);

/* Loads a secret: "file:/path" reads the file (trailing CR/LF removed),
 * anything else is the secret itself. Returns NULL and sets out and out_len,
 * or returns an error message (never containing the secret). */
const char *sr_secret_load(apr_pool_t *p, const char *arg,
                           const char **out, size_t *out_len);

/* ---- routes and tags ----------------------------------------------- */

/* A route usable in a cookie: 1..SR_ROUTE_MAX of [A-Za-z0-9_~-]. */
int sr_route_is_valid(const char *route, size_t len);

/* out receives SR_DERIVED_ROUTE_LEN chars + NUL. */
void sr_route_derive(char *out, const char *member_url, const sr_key_t *key);

/* out receives SR_TAG_LEN chars + NUL: base64url(SipHash-2-4(key,
 * balancer || 0x00 || route)). */
void sr_tag_compute(char *out, const sr_key_t *key, const char *balancer,
                    const char *route, size_t route_len);

/* Constant-time comparison of a presented tag with the expected one. */
int sr_tag_equal(const char *a, const char *b, size_t len);

#endif /* SR_KEY_H */
