/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route_shm.h - the shared segment's entries (sr_shm_*_t) and
 * the functions of mod_sticky_route_shm.c. A part of
 * mod_sticky_route_private.h, reached through it (the lock contract is
 * there: these entries take no lock, only sr_atomic.h).
 */
#ifndef MOD_STICKY_ROUTE_SHM_H
#define MOD_STICKY_ROUTE_SHM_H

#ifndef MOD_STICKY_ROUTE_PRIVATE_H
#error "a part of mod_sticky_route_private.h: include that header"
#endif

/* ---- shared memory (mod_sticky_route_shm.c) ------------------------------
 * One anonymous segment, created by the parent in the process pool, so it
 * outlives graceful restarts when its recorded layout still matches (else
 * it is made anew). A balancer's entry is keyed like mod_proxy_balancer
 * keys its own slots: the server's proxy id (one per virtual host) and the
 * balancer's name; a member's entry by its balancer entry and route.
 * Entries are claimed in slot order with a compare-and-swap (free ->
 * filling -> ready) and never freed, so two children claiming the same key
 * at once end up with one entry. */
#define SR_SHM_MAGIC       0x53524d32u  /* "SRM2" */
#define SR_SHM_VERSION     6u
#define SR_SHM_BALANCERS   512
#define SR_SHM_MEMBERS     4096
#define SR_SERVER_ID_SIZE  24

enum { SR_SLOT_FREE = 0, SR_SLOT_FILLING = 1, SR_SLOT_READY = 2 };

typedef struct {
    volatile apr_uint32_t state;
    volatile apr_uint32_t warned;       /* SR_WARNED_* bits */
    volatile apr_uint64_t ticket;
    /* discovery (written by the watchdog, read by the status handler) */
    volatile apr_uint32_t disc_on;      /* the balancer discovers members */
    volatile apr_uint32_t disc_members; /* addresses with an enabled member */
    volatile apr_uint32_t disc_free;    /* free member slots */
    volatile apr_uint32_t disc_unplaced;/* addresses without a slot */
    volatile apr_uint64_t disc_errors;  /* failed or empty resolutions */
    volatile apr_uint64_t disc_runs;    /* resolutions */
    /* StickyRouteWait (mod_sticky_route_wait.c), across child processes */
    volatile apr_uint64_t wait_served;  /* served after waiting */
    volatile apr_uint64_t wait_timeouts;/* 503: waited the limit */
    volatile apr_uint64_t wait_refused; /* 503: beyond max=, or stopping */
    volatile apr_uint32_t wait_now;     /* requests waiting now */
    volatile apr_uint32_t disc_max;     /* max= */
    volatile apr_uint32_t disc_held;    /* gone addresses within their hold */
    volatile apr_uint64_t disc_reused;  /* slots given to another address */
    volatile apr_uint32_t disc_gen;     /* bumped at every slot rewrite and
                                           member disabled */
    volatile apr_uint64_t disc_next;    /* apr_time_t of the next resolution */
    volatile apr_uint32_t disc_failing; /* the last resolution was a DNS
                                           failure (the set is kept) */
    char server_id[SR_SERVER_ID_SIZE];
    char name[PROXY_BALANCER_MAX_NAME_SIZE];
} sr_shm_balancer_t;

/* warnings given once per balancer, across children and restarts */
#define SR_WARNED_APP_COOKIE 0x1u

typedef struct {
    volatile apr_uint32_t state;
    apr_uint32_t balancer;              /* index of its sr_shm_balancer_t */
    volatile apr_uint64_t count[SR_STATUS_COUNT];
    volatile apr_uint32_t inflight;     /* requests it serves now */
    volatile apr_uint32_t down;         /* seen unusable since it was up */
    volatile apr_uint64_t up_since;     /* apr_time_t it joined or came
                                           back (slow start); 0: long ago */
    /* discovery's per-slot state (mod_sticky_route_discover.c) */
    volatile apr_uint64_t gone_since;   /* its address left the answer */
    volatile apr_uint64_t settle_until; /* rewritten: enabled from then on */
    volatile apr_uint32_t hash_share;   /* lbmethod=hash: its share of the
                                           hash space, parts per million
                                           (every process writes the same) */
    char route[PROXY_WORKER_MAX_ROUTE_SIZE];
} sr_shm_member_t;

/* The segment, made or kept. No lock: the parent at post_config. */
apr_status_t sr_shm_setup(apr_pool_t *pglobal, apr_pool_t *pconf,
                          server_rec *s);
/* The entry of balancer b of server s (create: claim it when missing).
 * No lock: the lock-free claim protocol above. */
sr_shm_balancer_t *sr_shm_balancer(server_rec *s, const proxy_balancer *b,
                                   int create);
/* create: claim the entry when missing, with up_since (slow start) set to
 * up_since_if_new. No lock: the lock-free claim protocol above. */
sr_shm_member_t *sr_shm_member(const sr_shm_balancer_t *sb, const char *route,
                               int create, apr_time_t up_since_if_new);
/* Gives member entry e to another route (a discovery slot reused): its
 * counters, in-flight count and discovery state start afresh, up_since is
 * set (slow start). Readers looking the entry up meanwhile wait (the entry
 * is "filling" while it changes). Caller: the discovery watchdog, under the
 * balancer's global lock (one renamer at a time). */
void sr_shm_member_renew(sr_shm_member_t *e, const char *route,
                         apr_time_t up_since);
/* The segment was made by this generation (first start, or a layout
 * change): members found at startup are not joining. */
int sr_shm_is_new(void);
/* The proxy id of server s (mod_proxy_balancer's per-vhost identity). */
const char *sr_server_id(server_rec *s);

#endif /* MOD_STICKY_ROUTE_SHM_H */
