/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_key.c - keys and what they sign (see sr_key.h).
 */
#include <string.h>
#include <stdlib.h>

#include "apr_strings.h"
#include "apr_file_io.h"
#include "apr_siphash.h"
#include "apr_crypto.h"

#include "sr_key.h"

/* ---- keys ---------------------------------------------------------- */

/* Fixed, public SipHash keys: the KDF's two halves and the key used to
 * derive routes when no secret is configured. Changing them changes every
 * derived route and tag, so they are part of the cookie format. */
static const unsigned char kdf_key_a[16] = "sticky-route-kdA";
static const unsigned char kdf_key_b[16] = "sticky-route-kdB";
static const sr_key_t public_route_key = { "sticky-route-pub" };

#define SR_SECRET_FILE_MAX 4096

void sr_memzero(void *buf, size_t len)
{
    apr_crypto_memzero(buf, len);
}

static void put_le64(unsigned char *out, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++) {
        out[i] = (unsigned char)(v >> (8 * i));
    }
}

void sr_key_derive(sr_key_t *out, const void *secret, size_t len,
                   const char *purpose)
{
    unsigned char buf[64 + SR_SECRET_FILE_MAX + 1];
    size_t plen = strlen(purpose);

    if (plen > 64) {
        plen = 64;
    }
    if (len > SR_SECRET_FILE_MAX) {
        len = SR_SECRET_FILE_MAX;
    }
    memcpy(buf, purpose, plen);
    buf[plen] = 0;
    memcpy(buf + plen + 1, secret, len);
    put_le64(out->bytes, apr_siphash24(buf, plen + 1 + len, kdf_key_a));
    put_le64(out->bytes + 8, apr_siphash24(buf, plen + 1 + len, kdf_key_b));
    sr_memzero(buf, sizeof(buf));
}

const char *sr_secret_load(apr_pool_t *p, const char *arg,
                           const char **out, size_t *out_len)
{
    const char *val = arg;
    size_t len;

    if (arg == NULL) {
        return "no value given";
    }
    if (strncmp(arg, "file:", 5) == 0) {
        const char *path = arg + 5;
        apr_file_t *f;
        apr_status_t rv;
        char *buf;
        apr_size_t got = 0;

        if (!*path) {
            return "file: needs a path";
        }
        rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY,
                           APR_OS_DEFAULT, p);
        if (rv != APR_SUCCESS) {
            char err[120];
            return apr_psprintf(p, "cannot read secret file %s: %s", path,
                                apr_strerror(rv, err, sizeof(err)));
        }
        buf = apr_palloc(p, SR_SECRET_FILE_MAX + 2);
        for (;;) {
            apr_size_t n = SR_SECRET_FILE_MAX + 1 - got;
            rv = apr_file_read(f, buf + got, &n);
            got += n;
            if (rv != APR_SUCCESS || got > SR_SECRET_FILE_MAX) {
                break;
            }
        }
        apr_file_close(f);
        if (got > SR_SECRET_FILE_MAX) {
            return apr_psprintf(p, "secret file %s is larger than %d bytes",
                                path, SR_SECRET_FILE_MAX);
        }
        while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r')) {
            got--;
        }
        buf[got] = '\0';
        val = buf;
        len = got;
        if (len < SR_SECRET_MIN) {
            return apr_psprintf(p, "the secret in %s is %lu bytes long; at "
                                "least %d are required", path,
                                (unsigned long)len, SR_SECRET_MIN);
        }
    }
    else {
        len = strlen(val);
        if (len > SR_SECRET_FILE_MAX) {
            return apr_psprintf(p, "the secret is longer than %d bytes",
                                SR_SECRET_FILE_MAX);
        }
        if (len < SR_SECRET_MIN) {
            return apr_psprintf(p, "the secret is %lu bytes long; at least "
                                "%d are required", (unsigned long)len,
                                SR_SECRET_MIN);
        }
    }
    *out = val;
    *out_len = len;
    return NULL;
}


/* ---- routes and tags ----------------------------------------------- */

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 64 bits -> 11 base64url characters (the last one carries 4 bits). */
static void encode_u64(char *out, uint64_t v)
{
    unsigned char b[8];
    int i, o = 0;
    uint32_t acc = 0;
    int bits = 0;

    put_le64(b, v);
    for (i = 0; i < 8; i++) {
        acc = (acc << 8) | b[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = b64url[(acc >> bits) & 0x3f];
        }
    }
    if (bits > 0) {
        out[o++] = b64url[(acc << (6 - bits)) & 0x3f];
    }
    out[o] = '\0';
}

void sr_route_derive(char *out, const char *member_url, const sr_key_t *key)
{
    if (key == NULL) {
        key = &public_route_key;
    }
    out[0] = 'r';
    encode_u64(out + 1, apr_siphash24(member_url, strlen(member_url),
                                      key->bytes));
}

void sr_tag_compute(char *out, const sr_key_t *key, const char *balancer,
                    const char *route, size_t route_len)
{
    char buf[512];
    size_t blen = strlen(balancer);

    if (blen > sizeof(buf) - SR_ROUTE_MAX - 2) {
        blen = sizeof(buf) - SR_ROUTE_MAX - 2;
    }
    if (route_len > SR_ROUTE_MAX) {
        route_len = SR_ROUTE_MAX;
    }
    memcpy(buf, balancer, blen);
    buf[blen] = '\0';
    memcpy(buf + blen + 1, route, route_len);
    encode_u64(out, apr_siphash24(buf, blen + 1 + route_len, key->bytes));
}

int sr_tag_equal(const char *a, const char *b, size_t len)
{
    unsigned char diff = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        diff |= (unsigned char)(a[i] ^ b[i]);
    }
    return diff == 0;
}
