/*
 * libFuzzer target: a Cookie header through the scanner, every value found
 * through the parser and the tag verifier, with and without a secret.
 * Links sr_core.c alone (make fuzz).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apr_general.h"
#include "sr_core.h"

static apr_pool_t *pool;
static sr_key_t key;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    sr_key_derive(&key, "fuzzing-secret-0123456789", 25, "tag");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *hdr = malloc(size + 1);
    sr_span_t spans[SR_COOKIES_MAX];
    size_t n, i;

    if (!hdr) {
        return 0;
    }
    memcpy(hdr, data, size);
    hdr[size] = '\0';
    n = sr_cookie_find(hdr, "ROUTEID", spans, SR_COOKIES_MAX);
    for (i = 0; i < n; i++) {
        sr_value_t v;
        int s;
        for (s = 0; s < 2; s++) {
            sr_value_parse(spans[i].ptr, spans[i].len, s, &v);
            if (v.kind != SR_VALUE_MALFORMED) {
                /* whatever we accept must be a well-formed route */
                if (!sr_route_is_valid(v.route, v.route_len)
                    || strlen(v.route) != v.route_len) {
                    abort();
                }
            }
            (void)sr_value_verdict(&v, s ? &key : NULL, s, "balancer://fuzz");
        }
    }
    /* the whole input as one value, too */
    {
        sr_value_t v;
        sr_value_parse((const char *)data, size, 1, &v);
        (void)sr_value_verdict(&v, &key, 0, "balancer://fuzz");
    }
    free(hdr);
    return 0;
}
