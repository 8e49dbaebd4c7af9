/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * tsan_stubs.c - what test_sr_threads.c links instead of httpd (make
 * unit-tsan): the two module records and ap_log_error_ that
 * mod_sticky_route_shm.c refers to. Every atomic of the code under test is
 * an inline sr_atomic.h wrapper, compiled with -fsanitize=thread, so TSan
 * sees them all. Nothing of mod_sticky_route is copied here.
 */
#include <stdarg.h>
#include <stdio.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

module AP_MODULE_DECLARE_DATA sticky_route_module;
module AP_MODULE_DECLARE_DATA proxy_module;

AP_DECLARE(void) ap_log_error_(const char *file, int line, int module_index,
                               int level, apr_status_t status,
                               const server_rec *s, const char *fmt, ...)
{
    va_list ap;

    (void)module_index;
    (void)status;
    (void)s;
    fprintf(stderr, "log %s:%d level %d: ", file, line, level);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- apr_cpystrn, instrumented: make unit-tsan TSAN_ROUTE_COPY=1 ---------
 * Left to libapr (not seen by TSan) by default: with it instrumented, TSan
 * reports a known race of the design - sr_shm_member_renew rewrites an
 * entry's route in place (state FILLING) while a lock-free reader that read
 * READY just before compares the same bytes (strcmp in sr_shm_member). The
 * reader then sees the old route, the new one or a mix; every outcome is
 * one the callers already handle (the entry was renamed just before or just
 * after the lookup), as long as no live route is a mix of two others, which
 * derived routes (a hash) never are. A seqlock with atomic byte reads would
 * make it race-free in the C11 sense (issue 18, open). */
#ifdef SR_TSAN_ROUTE_COPY
#include "apr_strings.h"

APR_DECLARE(char *) apr_cpystrn(char *dst, const char *src, apr_size_t dst_size)
{
    char *d = dst, *end;

    if (dst_size == 0) {
        return dst;
    }
    end = dst + dst_size - 1;
    for (; d < end; ++d, ++src) {
        if (!(*d = *src)) {
            return d;
        }
    }
    *d = '\0';
    return d;
}
#endif
