/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_shm.c - the shared segment: a round-robin ticket per
 * balancer, decision counters per member (layout in
 * mod_sticky_route_private.h).
 */
#include <string.h>

#include "apr_shm.h"
#include "apr_strings.h"
#include "apr_thread_proc.h"
#include "apr_time.h"

#include "mod_sticky_route_private.h"

#define SR_SHM_USERDATA "mod_sticky_route_shm"
/* A slot being filled by another child is ready within microseconds; one
 * whose filler died mid-way is skipped after this many 1 ms waits. */
#define SR_SHM_FILL_WAITS 50

typedef struct {
    apr_uint32_t magic;
    apr_uint32_t version;
    apr_uint32_t balancer_size;     /* sizeof(sr_shm_balancer_t) */
    apr_uint32_t member_size;       /* sizeof(sr_shm_member_t) */
    apr_uint32_t nbalancers;
    apr_uint32_t nmembers;
    apr_uint32_t nstatus;           /* SR_STATUS_COUNT */
    apr_uint32_t pad;
} sr_shm_header_t;

typedef struct {
    sr_shm_header_t header;
    sr_shm_balancer_t balancers[SR_SHM_BALANCERS];
    sr_shm_member_t members[SR_SHM_MEMBERS];
} sr_shm_t;

static sr_shm_t *sr_shm = NULL;
static int sr_shm_new = 0;

/* No lock: set at startup. */
int sr_shm_is_new(void)
{
    return sr_shm_new;
}

/* No lock: the parent, at startup. */
static void sr_shm_layout(sr_shm_header_t *h)
{
    memset(h, 0, sizeof(*h));
    h->magic = SR_SHM_MAGIC;
    h->version = SR_SHM_VERSION;
    h->balancer_size = (apr_uint32_t)sizeof(sr_shm_balancer_t);
    h->member_size = (apr_uint32_t)sizeof(sr_shm_member_t);
    h->nbalancers = SR_SHM_BALANCERS;
    h->nmembers = SR_SHM_MEMBERS;
    h->nstatus = SR_STATUS_COUNT;
}

/* No lock: the parent, at the end of the process pool. */
static apr_status_t sr_shm_cleanup(void *data)
{
    (void)data;
    sr_shm = NULL;
    return APR_SUCCESS;
}

/* Makes or reuses the segment. No lock: the parent at post_config, before
 * any child. */
apr_status_t sr_shm_setup(apr_pool_t *pglobal, apr_pool_t *pconf,
                          server_rec *s)
{
    apr_shm_t *shm = NULL;
    sr_shm_header_t want;
    apr_status_t rv;

    sr_shm_layout(&want);
    sr_shm_new = 0;
    /* The segment lives in the process pool: created once, it keeps the
     * tickets and counters across graceful restarts - as long as the
     * module that made it had the same layout (a new build of the module
     * loaded by a restart may not). */
    apr_pool_userdata_get((void **)&shm, SR_SHM_USERDATA, pglobal);
    if (shm) {
        const sr_shm_header_t *have = apr_shm_baseaddr_get(shm);
        if (apr_shm_size_get(shm) != sizeof(sr_shm_t)
            || memcmp(have, &want, sizeof(want))) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                         "mod_sticky_route: the shared memory of the previous "
                         "generation has another layout; counters and tickets "
                         "start again");
            apr_pool_userdata_set(NULL, SR_SHM_USERDATA, apr_pool_cleanup_null,
                                  pglobal);
            /* anonymous memory: children of the previous generation keep
             * their own mapping, the parent's goes */
            apr_shm_destroy(shm);
            shm = NULL;
        }
    }
    if (!shm) {
        rv = apr_shm_create(&shm, sizeof(sr_shm_t), NULL, pglobal);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         "mod_sticky_route: cannot create shared memory of "
                         "%lu bytes", (unsigned long)sizeof(sr_shm_t));
            return rv;
        }
        memset(apr_shm_baseaddr_get(shm), 0, sizeof(sr_shm_t));
        memcpy(apr_shm_baseaddr_get(shm), &want, sizeof(want));
        sr_shm_new = 1;
        apr_pool_userdata_set(shm, SR_SHM_USERDATA, apr_pool_cleanup_null,
                              pglobal);
    }
    sr_shm = apr_shm_baseaddr_get(shm);
    apr_pool_cleanup_register(pconf, NULL, sr_shm_cleanup,
                              apr_pool_cleanup_null);
    return APR_SUCCESS;
}

/* No lock: configuration. */
const char *sr_server_id(server_rec *s)
{
    proxy_server_conf *pc = ap_get_module_config(s->module_config,
                                                 &proxy_module);
    return (pc && pc->id) ? pc->id : "";
}

/* Waits until a slot another child is filling is ready; 0 if it never gets
 * there (its filler died), then the slot is skipped. Lock-free: acquire
 * loads of the slot state (what its filler wrote before publishing is
 * visible once it reads READY). */
static int sr_slot_ready(volatile apr_uint32_t *state)
{
    int i;

    for (i = 0; i < SR_SHM_FILL_WAITS; i++) {
        apr_uint32_t st = sr_atomic_load32_acquire(state);
        if (st == SR_SLOT_READY) {
            return 1;
        }
        if (st != SR_SLOT_FILLING) {
            return 0;
        }
        apr_sleep(apr_time_from_msec(1));
    }
    return 0;
}

/* One step of the claim protocol on a slot, the same for both tables:
 * slots are claimed in order and never freed, so whoever wants a key
 * missing so far meets the others at the first free slot, and the loser
 * of the compare-and-swap reads what the winner wrote. */
typedef enum {
    SR_VISIT_CLAIMED,   /* ours: fill it, then sr_slot_publish */
    SR_VISIT_READY,     /* filled: compare its key */
    SR_VISIT_SKIP,      /* its filler died mid-way */
    SR_VISIT_END        /* free and not creating: the key is nowhere */
} sr_visit_t;

/* Lock-free: a compare-and-swap claims the slot; acquire loads read its
 * state. */
static sr_visit_t sr_slot_visit(volatile apr_uint32_t *state, int create)
{
    apr_uint32_t st = sr_atomic_load32_acquire(state);

    if (st == SR_SLOT_FREE) {
        if (!create) {
            return SR_VISIT_END;
        }
        if (sr_atomic_cas32(state, SR_SLOT_FREE, SR_SLOT_FILLING)
            == SR_SLOT_FREE) {
            return SR_VISIT_CLAIMED;
        }
        st = sr_atomic_load32_acquire(state);
    }
    if (st == SR_SLOT_FILLING && !sr_slot_ready(state)) {
        return SR_VISIT_SKIP;
    }
    return SR_VISIT_READY;
}

/* The slot becomes READY: a release store, so its key (written before) is
 * visible to whoever reads READY. Lock-free. */
static void sr_slot_publish(volatile apr_uint32_t *state)
{
    sr_atomic_store32_release(state, SR_SLOT_READY);
}

/* No lock: lock-free claim protocol (sr_slot_visit); safe from any thread
 * or process. */
sr_shm_balancer_t *sr_shm_balancer(server_rec *s, const proxy_balancer *b,
                                   int create)
{
    const char *id = sr_server_id(s);
    const char *name = b->s->name;
    int i;

    for (i = 0; sr_shm && i < SR_SHM_BALANCERS; i++) {
        sr_shm_balancer_t *e = &sr_shm->balancers[i];

        switch (sr_slot_visit(&e->state, create)) {
        case SR_VISIT_CLAIMED:
            apr_cpystrn(e->server_id, id, sizeof(e->server_id));
            apr_cpystrn(e->name, name, sizeof(e->name));
            sr_slot_publish(&e->state);
            return e;
        case SR_VISIT_READY:
            if (!strcmp(e->server_id, id) && !strcmp(e->name, name)) {
                return e;
            }
            break;
        case SR_VISIT_END:
            return NULL;
        case SR_VISIT_SKIP:
            break;
        }
    }
    return NULL;
}

/* No lock: lock-free claim protocol (sr_slot_visit); safe from any thread
 * or process. */
sr_shm_member_t *sr_shm_member(const sr_shm_balancer_t *sb, const char *route,
                               int create, apr_time_t up_since_if_new)
{
    apr_uint32_t bi;
    int i;

    if (!sr_shm || !sb || !route || !*route) {
        return NULL;
    }
    bi = (apr_uint32_t)(sb - sr_shm->balancers);
    for (i = 0; i < SR_SHM_MEMBERS; i++) {
        sr_shm_member_t *e = &sr_shm->members[i];

        switch (sr_slot_visit(&e->state, create)) {
        case SR_VISIT_CLAIMED:
            e->balancer = bi;
            apr_cpystrn(e->route, route, sizeof(e->route));
            sr_atomic_store64(&e->up_since, (apr_uint64_t)up_since_if_new);
            sr_slot_publish(&e->state);
            return e;
        case SR_VISIT_READY:
            if (e->balancer == bi && !strcmp(e->route, route)) {
                return e;
            }
            break;
        case SR_VISIT_END:
            return NULL;
        case SR_VISIT_SKIP:
            break;
        }
    }
    return NULL;
}

/* Lock: the balancer's global mutex (the discovery watchdog holds it: one
 * renamer at a time); readers are kept out lock-free by the FILLING state. */
void sr_shm_member_renew(sr_shm_member_t *e, const char *route,
                         apr_time_t up_since)
{
    int k;

    if (sr_atomic_cas32(&e->state, SR_SLOT_READY, SR_SLOT_FILLING)
        != SR_SLOT_READY) {
        return;
    }
    for (k = 0; k < SR_STATUS_COUNT; k++) {
        sr_atomic_store64(&e->count[k], 0);
    }
    sr_atomic_store32(&e->inflight, 0);
    sr_atomic_store32(&e->down, 0);
    sr_atomic_store64(&e->up_since, (apr_uint64_t)up_since);
    sr_atomic_store64(&e->gone_since, 0);
    sr_atomic_store64(&e->settle_until, 0);
    apr_cpystrn(e->route, route, sizeof(e->route));
    sr_slot_publish(&e->state);
}
