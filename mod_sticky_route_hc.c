/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_hc.c - the health checks of discovered members: the
 * hc* parameters of StickyRouteDiscover (issue 15, design R of
 * docs/notes/hcheck-reuse.md).
 *
 * mod_proxy_hcheck keeps a check worker per proxy_worker pointer, with the
 * host copied once, and never drops one: it cannot follow a slot that
 * discovery rewrites in place without a new proxy_worker (and 26 KB) per
 * reuse. So discovered members keep method NONE (mod_proxy_hcheck never
 * looks at them) and are checked here instead:
 *
 *  - a singleton watchdog of its own (one child process, every 100 ms)
 *    walks each discovering balancer's members under the balancer's thread
 *    mutex and, for each discovered member that is not stopped and whose
 *    check is due (sr_hc_due) and not in flight, notes what it is checking
 *    (the slot's name, address, port and update stamp) and hands the check
 *    to a thread pool (SR_HC_THREADS_MAX threads): a member that never
 *    answers holds one thread for at most connectiontimeout= + timeout=,
 *    never the resolution (another watchdog) nor the other checks;
 *  - a check is a TCP connection (hcmethod=TCP), or an HTTP/1.x request
 *    (GET, HEAD, OPTIONS; HTTP/1.1 for the ...11 forms, "Connection:
 *    close") whose response's status passes when 2xx or 3xx; its head is
 *    read, and a body of known length (at most 64 KB), then the connection
 *    closed - plain sockets and buffers on the stack, no pool: a check
 *    allocates nothing that lives on;
 *  - its outcome is applied under the balancer's global mutex, the one
 *    discovery holds while it rewrites a slot, and only when the slot is
 *    still what the check was made for (same name, port and update stamp):
 *    a check on the wire while its slot is given to another address never
 *    touches the new member. Passes and fails are counted in the slot's
 *    shared pcount/fcount (proxy_worker_shared: per slot, in shared memory,
 *    zeroed by a slot's rewrite) and sr_hc_count decides; the flag is set
 *    and cleared with ap_proxy_set_wstatus as mod_proxy_hcheck does (a
 *    pass also clears the in-error flag, as there).
 *
 * Memory: per discovery, one sr_hc_slot_t per worker slot (in the child's
 * pconf), the thread pool and its threads: fixed, whatever the churn.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "http_core.h"
#include "apr_strings.h"
#include "apr_optional.h"
#include "apr_thread_pool.h"
#include "mod_watchdog.h"

#include "mod_sticky_route_discover.h"

#define SR_HC_READ_MAX  65536   /* response bytes read at most */

/* The check state of a worker slot, in the child that runs the checks. The
 * watchdog's thread writes it while no check is in flight (busy 0); the
 * check's thread reads it and clears busy when done. */
typedef struct sr_hc_slot_t {
    sr_discovery_t *d;
    proxy_worker *w;
    apr_time_t last;                /* its last check started then, 0: never */
    uint32_t sig;                   /* of the name then */
    volatile apr_uint32_t busy;     /* a check in flight */
    /* what the check in flight was made for */
    char name[PROXY_WORKER_MAX_NAME_SIZE];
    char host[PROXY_RFC1035_HOSTNAME_SIZE];
    apr_port_t port;
    apr_time_t updated;
} sr_hc_slot_t;

/* The checks' threads of this process (the child that runs the singleton)
 * and the pool of the slots' state (the global allocator's, which has a
 * mutex: the pool's threads make and destroy subpools of it), made at its
 * first call after the balancers are; used by the watchdog's thread only. */
static apr_thread_pool_t *sr_hc_tp;
static apr_pool_t *sr_hc_pool;
static apr_array_header_t *sr_hc_discoveries;

/* ---- configuration ------------------------------------------------------ */

const char *sr_hc_parse(apr_pool_t *p, const sr_discover_conf_t *dc,
                        sr_hc_conf_t *hc)
{
    static const struct {
        const char *name, *method;
        int http11;
    } methods[] = {
        {"TCP", NULL, 0}, {"GET", "GET", 0}, {"HEAD", "HEAD", 0},
        {"OPTIONS", "OPTIONS", 0}, {"GET11", "GET", 1}, {"HEAD11", "HEAD", 1},
        {"OPTIONS11", "OPTIONS", 1}
    };
    int k, given = 0;
    long n;

    memset(hc, 0, sizeof(*hc));
    hc->uri = "";
    hc->interval = SR_HC_INTERVAL_DEF;
    hc->passes = hc->fails = 1;
    hc->conn_timeout = dc->conn_timeout > 0 ? apr_time_from_sec(dc->conn_timeout)
                                            : SR_HC_CONN_TIMEOUT_DEF;
    hc->timeout = dc->timeout > 0 ? apr_time_from_sec(dc->timeout)
                                  : SR_HC_TIMEOUT_DEF;
    for (k = 0; dc->hc && k + 1 < dc->hc->nelts; k += 2) {
        const char *key = APR_ARRAY_IDX(dc->hc, k, const char *);
        const char *val = APR_ARRAY_IDX(dc->hc, k + 1, const char *);
        given = 1;
        if (!strcasecmp(key, "hcexpr") || !strcasecmp(key, "hctemplate")) {
            return apr_psprintf(p, "%s=%s is not supported: discovered members "
                                "are health-checked by mod_sticky_route itself "
                                "(mod_proxy_hcheck's check workers cannot "
                                "follow a slot given to another address), "
                                "which has no %s; a check passes on a 2xx or "
                                "3xx status (use hcuri= for a check page)",
                                key, val, !strcasecmp(key, "hcexpr")
                                ? "ProxyHCExpr conditions"
                                : "ProxyHCTemplate templates");
        }
        if (!strcasecmp(key, "hcmethod")) {
            apr_size_t m;
            for (m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
                if (!strcasecmp(val, methods[m].name)) {
                    break;
                }
            }
            if (m == sizeof(methods) / sizeof(methods[0])) {
                return apr_psprintf(p, "hcmethod=%s: discovered members are "
                                    "checked with TCP, GET, HEAD, OPTIONS, "
                                    "GET11, HEAD11 or OPTIONS11", val);
            }
            hc->on = 1;
            hc->tcp = methods[m].method == NULL;
            hc->method = methods[m].method;
            hc->http11 = methods[m].http11;
        }
        else if (!strcasecmp(key, "hcuri")) {
            if (strlen(val) >= sizeof(((proxy_worker_shared *)0)->hcuri)
                || strpbrk(val, " \t\r\n") || (*val != '/' && *val != '*')) {
                return apr_psprintf(p, "hcuri=%s: a path starting with / "
                                    "without spaces, shorter than %d "
                                    "characters", val,
                                    (int)sizeof(((proxy_worker_shared *)0)->hcuri));
            }
            hc->uri = apr_pstrdup(p, val);
        }
        else if (!strcasecmp(key, "hcinterval")) {
            apr_interval_time_t t;
            if (ap_timeout_parameter_parse(val, &t, "s") != APR_SUCCESS
                || t < AP_WD_TM_SLICE) {
                return apr_psprintf(p, "hcinterval=%s: a time of at least "
                                    "%" APR_TIME_T_FMT " ms (seconds, or with "
                                    "ms, s, mi, h)", val,
                                    apr_time_as_msec(AP_WD_TM_SLICE));
            }
            hc->interval = t;
        }
        else if (!strcasecmp(key, "hcpasses") || !strcasecmp(key, "hcfails")) {
            if (!sr_parse_number(val, 1000, &n)) {
                return apr_psprintf(p, "%s=%s: a number from 0 to 1000", key,
                                    val);
            }
            if (!strcasecmp(key, "hcpasses")) {
                hc->passes = (int)n;
            }
            else {
                hc->fails = (int)n;
            }
        }
        else {
            return apr_psprintf(p, "%s=%s: unknown health check parameter",
                                key, val);
        }
    }
    if (given && !hc->on) {
        return "health check parameters without hcmethod= (TCP, GET, HEAD, "
               "OPTIONS, GET11, HEAD11 or OPTIONS11)";
    }
    if (hc->on && !hc->tcp && strcasecmp(dc->scheme, "http")
        && strcasecmp(dc->scheme, "ws")) {
        return apr_psprintf(p, "hcmethod=%s on %s members is not supported: "
                            "discovered members are health-checked by "
                            "mod_sticky_route itself, which speaks plain "
                            "HTTP/1.x only (no TLS); use hcmethod=TCP",
                            hc->method, dc->scheme);
    }
    return NULL;
}

/* ---- one check (a check thread; no lock, no pool) --------------------------- */

static int sr_hc_ms(apr_time_t deadline)
{
    apr_time_t left = deadline - apr_time_now();
    return left <= 0 ? 0 : (int)((left + 999) / 1000);
}

/* Waits until fd is ready for events or the deadline; 1 ready, 0 not. */
static int sr_hc_wait(int fd, short events, apr_time_t deadline)
{
    for (;;) {
        struct pollfd pfd;
        int ms = sr_hc_ms(deadline), rc;
        if (ms <= 0) {
            return 0;
        }
        pfd.fd = fd;
        pfd.events = events;
        pfd.revents = 0;
        rc = poll(&pfd, 1, ms);
        if (rc > 0) {
            return 1;
        }
        if (rc == 0 || errno != EINTR) {
            return 0;
        }
    }
}

/* Checks host:port as hc says. Returns 1 passed, 0 failed; why[] says
 * what happened (for the log). */
static int sr_hc_probe(const sr_hc_conf_t *hc, const char *host,
                       apr_port_t port, char *why, apr_size_t whylen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    char req[PROXY_WORKER_MAX_ROUTE_SIZE + PROXY_RFC1035_HOSTNAME_SIZE + 128];
    char buf[4096], body[1024];
    apr_size_t reqlen, sent = 0, have = 0, total = 0;
    long left = -1;             /* body bytes to read, -1: the head first */
    apr_time_t deadline;
    int fd, err = 0, status = 0, passed = 0;
    socklen_t errlen = sizeof(err);

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);
        sslen = sizeof(struct sockaddr_in);
    }
    else if (inet_pton(AF_INET6, host,
                       &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
        sslen = sizeof(struct sockaddr_in6);
    }
    else {
        apr_snprintf(why, whylen, "%s is not an address", host);
        return 0;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        apr_snprintf(why, whylen, "no socket (%s)", strerror(errno));
        return 0;
    }
    deadline = apr_time_now() + hc->conn_timeout;
    if (connect(fd, (struct sockaddr *)&ss, sslen) != 0) {
        if (errno != EINPROGRESS) {
            apr_snprintf(why, whylen, "connect: %s", strerror(errno));
            goto done;
        }
        if (!sr_hc_wait(fd, POLLOUT, deadline)) {
            apr_snprintf(why, whylen, "connect: no answer within %"
                         APR_TIME_T_FMT " ms", apr_time_as_msec(hc->conn_timeout));
            goto done;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0 || err) {
            apr_snprintf(why, whylen, "connect: %s", strerror(err ? err : errno));
            goto done;
        }
    }
    if (hc->tcp) {
        apr_snprintf(why, whylen, "connected");
        passed = 1;
        goto done;
    }
    reqlen = sr_hc_request(req, sizeof(req), hc->method, hc->uri, hc->http11,
                           host, port);
    if (!reqlen) {
        apr_snprintf(why, whylen, "request too long");
        goto done;
    }
    deadline = apr_time_now() + hc->timeout;
    while (sent < reqlen) {
        ssize_t n = send(fd, req + sent, reqlen - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (apr_size_t)n;
        }
        else if (n < 0 && errno == EINTR) {
            continue;
        }
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
                 && sr_hc_wait(fd, POLLOUT, deadline)) {
            continue;
        }
        else {
            apr_snprintf(why, whylen, "sending the request: %s",
                         n < 0 ? strerror(errno) : "timed out");
            goto done;
        }
    }
    /* the status line and the head, then a body of known length (at most
     * SR_HC_READ_MAX bytes): a body without one is not waited for */
    for (;;) {
        ssize_t n;
        if (status > 0 && left < 0 && have == sizeof(buf)) {
            left = 0;               /* a long head: the status will do */
        }
        if (left == 0 || total >= SR_HC_READ_MAX) {
            break;
        }
        if (status == 0 && have == sizeof(buf)) {
            apr_snprintf(why, whylen, "status line longer than %d bytes",
                         (int)sizeof(buf));
            goto done;
        }
        if (!sr_hc_wait(fd, POLLIN, deadline)) {
            if (status > 0) {
                break;              /* the status is known: good enough */
            }
            apr_snprintf(why, whylen, "no response within %" APR_TIME_T_FMT
                         " ms", apr_time_as_msec(hc->timeout));
            goto done;
        }
        if (left > 0) {
            n = recv(fd, body, (apr_size_t)left < sizeof(body)
                               ? (apr_size_t)left : sizeof(body), 0);
        }
        else {
            n = recv(fd, buf + have, sizeof(buf) - have, 0);
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
            continue;
        }
        if (n <= 0) {
            if (status > 0) {
                break;              /* the end of the response */
            }
            apr_snprintf(why, whylen, "%s before a status line",
                         n < 0 ? strerror(errno) : "connection closed");
            goto done;
        }
        total += (apr_size_t)n;
        if (left > 0) {
            left -= n;
            continue;
        }
        have += (apr_size_t)n;
        if (status == 0 && (status = sr_hc_status(buf, have)) < 0) {
            apr_snprintf(why, whylen, "not an HTTP/1.x response");
            goto done;
        }
        if (status > 0) {
            left = sr_hc_body_left(buf, have, !strcmp(hc->method, "HEAD"),
                                   status);
        }
    }
    passed = sr_hc_status_passes(status);
    apr_snprintf(why, whylen, "status %d", status);
done:
    close(fd);
    return passed;
}

/* ---- the check threads ------------------------------------------------------ */

/* One check (a thread of the pool): probes, then applies the outcome to
 * the slot if it is still what the check was made for. Lock: the
 * balancer's global mutex alone (as balancer-manager), around the compare
 * and the status edit; discovery rewrites a slot under it. */
static void *APR_THREAD_FUNC sr_hc_task(apr_thread_t *thread, void *data)
{
    sr_hc_slot_t *slot = data;
    sr_discovery_t *d = slot->d;
    proxy_balancer *b = d->b;
    proxy_worker *w = slot->w;
    char why[160];
    int passed, stale = 1, down = 0;
    sr_hc_verdict_t verdict = SR_HC_KEEP;

    (void)thread;
    why[0] = '\0';
    passed = sr_hc_probe(&d->hc, slot->host, slot->port, why, sizeof(why));
    if (PROXY_GLOBAL_LOCK(b) == APR_SUCCESS) {
        if (!strcmp(sr_worker_name(w), slot->name) && w->s->port == slot->port
            && w->s->updated == slot->updated
            && !(w->s->status & PROXY_WORKER_STOPPED)) {
            stale = 0;
            down = PROXY_WORKER_IS_HCFAILED(w) || PROXY_WORKER_IS_ERROR(w);
            verdict = sr_hc_count(down, passed, &w->s->pcount, &w->s->fcount,
                                  d->hc.passes, d->hc.fails);
            if (!passed) {
                w->s->error_time = apr_time_now();
            }
            if (verdict == SR_HC_SET) {
                ap_proxy_set_wstatus(PROXY_WORKER_HC_FAIL_FLAG, 1, w);
            }
            else if (verdict == SR_HC_CLEAR) {
                ap_proxy_set_wstatus(PROXY_WORKER_HC_FAIL_FLAG, 0, w);
                ap_proxy_set_wstatus(PROXY_WORKER_IN_ERROR_FLAG, 0, w);
            }
        }
        PROXY_GLOBAL_UNLOCK(b);
    }
    if (stale) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, d->s, "StickyRouteDiscover %s "
                     "in %s: health check of %s (%s) not applied: its slot "
                     "changed meanwhile", d->dc->url, b->s->name, slot->name,
                     why);
    }
    else if (verdict != SR_HC_KEEP) {
        int set = verdict == SR_HC_SET;
        int n = set ? d->hc.fails : d->hc.passes;
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s, "StickyRouteDiscover %s "
                     "in %s: health check %s member %s (%s port %u): "
                     "%d %s check(s) in a row, the last: %s", d->dc->url,
                     b->s->name, set ? "DISABLING" : "ENABLING", slot->name,
                     slot->host, (unsigned)slot->port, n > 0 ? n : 1,
                     set ? "failed" : "passed", why);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, d->s, "StickyRouteDiscover %s "
                     "in %s: health check of %s (%s port %u) %s: %s%s",
                     d->dc->url, b->s->name, slot->name, slot->host,
                     (unsigned)slot->port, passed ? "passed" : "failed", why,
                     down ? " (member down)" : "");
    }
    /* release: this thread's reads of the slot are over before the
     * watchdog's thread (acquire load) writes it for the next check */
    sr_atomic_store32_release(&slot->busy, 0);
    return NULL;
}

/* Starts the due checks of discovery d. Lock: takes the balancer's thread
 * mutex (this process's b->workers and ap_proxy_sync_balancer); the checks
 * run in the pool's threads after it is released. Runs in the watchdog's
 * thread only (the slots' state outside a check is its own). */
static void sr_hc_round(sr_discovery_t *d, apr_pool_t *p)
{
    proxy_balancer *b = d->b;
    proxy_server_conf *conf = ap_get_module_config(d->s->module_config,
                                                   &proxy_module);
    sr_hc_slot_t **start;
    apr_time_t now = apr_time_now();
    int i, n = 0;

    if (!d->hc_slots) {
        /* in this thread's own pool (pconf is not for threads) */
        d->hc_slots = apr_pcalloc(sr_hc_pool, (apr_size_t)b->max_workers
                                              * sizeof(sr_hc_slot_t));
    }
    start = apr_palloc(p, (apr_size_t)b->max_workers * sizeof(*start));
    if (PROXY_THREAD_LOCK(b) != APR_SUCCESS) {
        return;
    }
    ap_proxy_sync_balancer(b, d->s, conf);
    for (i = 0; i < b->workers->nelts && i < b->max_workers; i++) {
        proxy_worker *w = ((proxy_worker **)b->workers->elts)[i];
        sr_hc_slot_t *slot = &d->hc_slots[i];
        const char *name = sr_worker_name(w);
        uint32_t sig;

        if (sr_atomic_load32_acquire(&slot->busy)
            || apr_hash_get(d->configured, name, APR_HASH_KEY_STRING)
            || (w->s->status & PROXY_WORKER_STOPPED)
            || !sr_discovered_key(p, d->dc, w)) {
            continue;
        }
        sig = sr_str_sig(name);
        if (slot->w != w || slot->sig != sig) {
            slot->last = 0;         /* another member: checked at once */
            slot->sig = sig;
        }
        if (!sr_hc_due(now, slot->last, d->hc.interval, 0)) {
            continue;
        }
        slot->d = d;
        slot->w = w;
        slot->last = now;
        apr_cpystrn(slot->name, name, sizeof(slot->name));
        apr_cpystrn(slot->host, w->s->hostname_ex[0] ? w->s->hostname_ex
                                                     : w->s->hostname,
                    sizeof(slot->host));
        slot->port = w->s->port;
        slot->updated = w->s->updated;
        sr_atomic_store32(&slot->busy, 1);
        start[n++] = slot;
    }
    PROXY_THREAD_UNLOCK(b);
    for (i = 0; i < n; i++) {
        if (apr_thread_pool_push(sr_hc_tp, sr_hc_task, start[i],
                                 APR_THREAD_TASK_PRIORITY_NORMAL, NULL)
            != APR_SUCCESS) {
            sr_atomic_store32(&start[i]->busy, 0);  /* the next round */
        }
    }
}

/* The singleton watchdog's callback (every 100 ms). Lock: see sr_hc_round;
 * the thread pool is made and destroyed by this thread. */
static apr_status_t sr_hc_callback(int state, void *data, apr_pool_t *pool)
{
    int i;

    (void)data;
    if (state == AP_WATCHDOG_STATE_STOPPING) {
        if (sr_hc_tp) {
            apr_thread_pool_destroy(sr_hc_tp);  /* waits for the checks */
            sr_hc_tp = NULL;
        }
        for (i = 0; sr_hc_discoveries && i < sr_hc_discoveries->nelts; i++) {
            APR_ARRAY_IDX(sr_hc_discoveries, i, sr_discovery_t *)->hc_slots = NULL;
        }
        if (sr_hc_pool) {
            apr_pool_destroy(sr_hc_pool);
            sr_hc_pool = NULL;
        }
        return APR_SUCCESS;
    }
    if (!sr_hc_discoveries || !sr_discover_ready()) {
        return APR_SUCCESS;
    }
    if (!sr_hc_tp) {
        if (!sr_hc_pool && apr_pool_create(&sr_hc_pool, NULL) != APR_SUCCESS) {
            return APR_SUCCESS;
        }
        if (apr_thread_pool_create(&sr_hc_tp, 0, SR_HC_THREADS_MAX, sr_hc_pool)
            != APR_SUCCESS) {
            sr_hc_tp = NULL;
            return APR_SUCCESS;
        }
        /* idle threads stay (no thread made and ended per check) */
        apr_thread_pool_idle_max_set(sr_hc_tp, SR_HC_THREADS_MAX);
    }
    for (i = 0; i < sr_hc_discoveries->nelts; i++) {
        sr_discovery_t *d = APR_ARRAY_IDX(sr_hc_discoveries, i, sr_discovery_t *);
        if (d->hc.on) {
            sr_hc_round(d, pool);
        }
    }
    return APR_SUCCESS;
}

int sr_hc_post_config(apr_pool_t *pconf, server_rec *main_s,
                      apr_array_header_t *discoveries)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *get_instance;
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *register_callback;
    ap_watchdog_t *wd = NULL;
    apr_status_t rv;
    int i, any = 0;

    for (i = 0; discoveries && i < discoveries->nelts; i++) {
        any |= APR_ARRAY_IDX(discoveries, i, sr_discovery_t *)->hc.on;
    }
    if (!any) {
        return OK;
    }
    sr_hc_discoveries = discoveries;
    sr_forget_with_pool(pconf, (void **)&sr_hc_discoveries);
    get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    register_callback = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (!get_instance || !register_callback
        || (rv = get_instance(&wd, SR_HC_WATCHDOG, 0, 1, pconf)) != APR_SUCCESS
        || (rv = register_callback(wd, AP_WD_TM_SLICE, NULL, sr_hc_callback))
           != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, main_s,
                     "StickyRouteDiscover: cannot create the health-check "
                     "watchdog");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}
