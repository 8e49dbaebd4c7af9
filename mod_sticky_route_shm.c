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
#include <stddef.h>
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
    /* the mapping stays (pglobal); this generation's use of it ends */
    sr_forget_with_pool(pconf, (void **)&sr_shm);
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

/* A key's entry in one table, found or (create) claimed: the claim
 * protocol's walk, the same for both tables. An entry starts with its
 * state word; match compares a ready entry's key with key, fill writes
 * key into a claimed one (before it is published). NULL: not there and
 * not created, or the table is full. No lock: lock-free claim protocol
 * (sr_slot_visit); safe from any thread or process. */
typedef int sr_slot_match_fn(const void *entry, const void *key);
typedef void sr_slot_fill_fn(void *entry, const void *key);

static void *sr_slot_find(void *table, apr_size_t size, int n, int create,
                          sr_slot_match_fn *match, sr_slot_fill_fn *fill,
                          const void *key)
{
    int i;

    for (i = 0; i < n; i++) {
        void *e = (char *)table + (apr_size_t)i * size;
        volatile apr_uint32_t *state = e;

        switch (sr_slot_visit(state, create)) {
        case SR_VISIT_CLAIMED:
            fill(e, key);
            sr_slot_publish(state);
            return e;
        case SR_VISIT_READY:
            if (match(e, key)) {
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

_Static_assert(offsetof(sr_shm_balancer_t, state) == 0
               && offsetof(sr_shm_member_t, state) == 0,
               "sr_slot_find: an entry starts with its state word");

/* A balancer entry's key: its server's proxy id and its name. */
typedef struct {
    const char *id, *name;
} sr_balancer_key_t;

static int sr_balancer_match(const void *entry, const void *key)
{
    const sr_shm_balancer_t *e = entry;
    const sr_balancer_key_t *k = key;

    return !strcmp(e->server_id, k->id) && !strcmp(e->name, k->name);
}

static void sr_balancer_fill(void *entry, const void *key)
{
    sr_shm_balancer_t *e = entry;
    const sr_balancer_key_t *k = key;

    apr_cpystrn(e->server_id, k->id, sizeof(e->server_id));
    apr_cpystrn(e->name, k->name, sizeof(e->name));
}

/* No lock: lock-free claim protocol (sr_slot_find); safe from any thread
 * or process. */
sr_shm_balancer_t *sr_shm_balancer(server_rec *s, const proxy_balancer *b,
                                   int create)
{
    sr_balancer_key_t k;

    if (!sr_shm) {
        return NULL;
    }
    k.id = sr_server_id(s);
    k.name = b->s->name;
    return sr_slot_find(sr_shm->balancers, sizeof(sr_shm_balancer_t),
                        SR_SHM_BALANCERS, create, sr_balancer_match,
                        sr_balancer_fill, &k);
}

/* A member entry's key: its balancer entry and its route; up_since: what
 * a claimed one starts with. */
typedef struct {
    apr_uint32_t balancer;
    const char *route;
    apr_time_t up_since;
} sr_member_key_t;

static int sr_member_match(const void *entry, const void *key)
{
    const sr_shm_member_t *e = entry;
    const sr_member_key_t *k = key;

    return e->balancer == k->balancer && !strcmp(e->route, k->route);
}

static void sr_member_fill(void *entry, const void *key)
{
    sr_shm_member_t *e = entry;
    const sr_member_key_t *k = key;

    e->balancer = k->balancer;
    apr_cpystrn(e->route, k->route, sizeof(e->route));
    sr_atomic_store64(&e->up_since, (apr_uint64_t)k->up_since);
}

/* No lock: lock-free claim protocol (sr_slot_find); safe from any thread
 * or process. */
sr_shm_member_t *sr_shm_member(const sr_shm_balancer_t *sb, const char *route,
                               int create, apr_time_t up_since_if_new)
{
    sr_member_key_t k;

    if (!sr_shm || !sb || !route || !*route) {
        return NULL;
    }
    k.balancer = (apr_uint32_t)(sb - sr_shm->balancers);
    k.route = route;
    k.up_since = up_since_if_new;
    return sr_slot_find(sr_shm->members, sizeof(sr_shm_member_t),
                        SR_SHM_MEMBERS, create, sr_member_match,
                        sr_member_fill, &k);
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
