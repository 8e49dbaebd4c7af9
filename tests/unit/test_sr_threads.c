/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * test_sr_threads.c - the shared-memory and in-flight code under many
 * threads, built with ThreadSanitizer (make unit-tsan): the real
 * mod_sticky_route_shm.c (slot claim and publish, member renewal) and the
 * in-flight accounting of the private header (sr_inflight_move and
 * sr_inflight_release, inline over sr_atomic.h), linked with
 * tests/unit/tsan_stubs.c only.
 *
 * Threads stand for the processes and threads of httpd: the segment is one
 * mapping in every child, so what must hold between processes must hold
 * between threads. Every scenario checks exact results after the join, and
 * TSan (halt_on_error) fails the run on any data race.
 *
 *   1. claims: 16 threads look up and create the same balancer keys (server
 *      id, name) in different orders: one entry per key, the same for all.
 *   2. members: the same for member entries of two balancer entries, with
 *      up_since written before the entry is published.
 *   3. counters and in-flight: 16 threads move a request's in-flight count
 *      between members, release it, and count answers as log_transaction
 *      does: totals exact, in-flight never above the threads (no wrap below
 *      zero), never zero under a request that holds it, zero at the end.
 *   4. renewal: a discovery watchdog renews one entry (counters and
 *      in-flight start afresh) again and again while readers look entries
 *      up, count on them and hold in-flight counts on the renewed one: the
 *      other entries are always found and exact; the renewed one is found
 *      by one of its routes or not at all, and its in-flight count ends at
 *      zero (floored, never wrapped).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_general.h"
#include "apr_pools.h"
#include "apr_strings.h"

#include "mod_sticky_route_private.h"

#define NT          16          /* threads */
#define CLAIM_ROUNDS 16
#define CLAIM_KEYS  24          /* 16 x 24 = 384 of 512 balancer slots */
#define MEMBER_ROUNDS 8
#define MEMBER_KEYS 32          /* 8 x 32 x 2 = 512 of 4096 member slots */
#define NMEMBERS    8
#define ITERATIONS  20000
#define RENEWALS    3000
#define NSTABLE     4

static int failures = 0;

#define CHECK(cond, ...)                                                 \
    do {                                                                 \
        if (!(cond)) {                                                   \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__,       \
                    __LINE__, #cond);                                    \
            fprintf(stderr, __VA_ARGS__);                                \
            fputc('\n', stderr);                                         \
            __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);          \
        }                                                                \
    } while (0)

static apr_pool_t *pool;
static pthread_barrier_t start;

/* Two virtual hosts: sr_server_id reads the proxy id of each. */
static server_rec servers[2];
static proxy_server_conf proxy_confs[2];
static void *module_configs[2][2];

static void servers_init(void)
{
    int i;

    proxy_module.module_index = 0;
    sticky_route_module.module_index = 1;
    for (i = 0; i < 2; i++) {
        proxy_confs[i].id = i ? "p-vhost-b" : "p-vhost-a";
        module_configs[i][0] = &proxy_confs[i];
        servers[i].module_config = (ap_conf_vector_t *)module_configs[i];
    }
}

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static void run_threads(void *(*fn)(void *), void *args, size_t argsize,
                        int n)
{
    pthread_t t[NT + 1];
    int i;

    pthread_barrier_init(&start, NULL, (unsigned)n);
    for (i = 0; i < n; i++) {
        pthread_create(&t[i], NULL, fn, (char *)args + (size_t)i * argsize);
    }
    for (i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
    }
    pthread_barrier_destroy(&start);
}

/* ---- 1. balancer entries claimed at once ----------------------------- */

typedef struct {
    int tid;
    proxy_balancer *bal;                    /* CLAIM_KEYS of them */
    sr_shm_balancer_t *got[CLAIM_KEYS];
} claim_arg_t;

static void *claim_thread(void *p)
{
    claim_arg_t *a = p;
    int k;

    pthread_barrier_wait(&start);
    for (k = 0; k < CLAIM_KEYS; k++) {
        /* each thread starts at another key: creations meet in every order */
        int key = (k + a->tid * 7) % CLAIM_KEYS;
        a->got[key] = sr_shm_balancer(&servers[key % 2], &a->bal[key], 1);
    }
    return NULL;
}

static void test_balancer_claims(void)
{
    int round, t, k, j;

    for (round = 0; round < CLAIM_ROUNDS; round++) {
        proxy_balancer *bal = apr_pcalloc(pool, CLAIM_KEYS * sizeof(*bal));
        claim_arg_t args[NT];

        for (k = 0; k < CLAIM_KEYS; k++) {
            bal[k].s = apr_pcalloc(pool, sizeof(*bal[k].s));
            /* a name repeated under both servers: the id is part of the key */
            apr_snprintf(bal[k].s->name, sizeof(bal[k].s->name),
                         "balancer://r%d-b%d", round, k / 2);
        }
        for (t = 0; t < NT; t++) {
            memset(&args[t], 0, sizeof(args[t]));
            args[t].tid = t;
            args[t].bal = bal;
        }
        run_threads(claim_thread, args, sizeof(args[0]), NT);
        for (k = 0; k < CLAIM_KEYS; k++) {
            sr_shm_balancer_t *e = args[0].got[k];
            CHECK(e != NULL, "round %d key %d: no entry", round, k);
            if (!e) {
                continue;
            }
            for (t = 1; t < NT; t++) {
                CHECK(args[t].got[k] == e, "round %d key %d: thread %d got "
                      "another entry", round, k, t);
            }
            CHECK(!strcmp(e->name, bal[k].s->name)
                  && !strcmp(e->server_id, proxy_confs[k % 2].id),
                  "round %d key %d: entry holds %s/%s", round, k,
                  e->server_id, e->name);
            CHECK(sr_shm_balancer(&servers[k % 2], &bal[k], 0) == e,
                  "round %d key %d: a lookup finds another entry", round, k);
            for (j = 0; j < k; j++) {
                CHECK(args[0].got[j] != e, "round %d: keys %d and %d share "
                      "an entry", round, j, k);
            }
        }
    }
}

/* ---- 2. member entries claimed at once ------------------------------- */

typedef struct {
    int tid;
    sr_shm_balancer_t *sb[2];
    const char **routes;                    /* MEMBER_KEYS of them */
    sr_shm_member_t *got[2][MEMBER_KEYS];
} member_arg_t;

static void *member_thread(void *p)
{
    member_arg_t *a = p;
    int k, b;

    pthread_barrier_wait(&start);
    for (k = 0; k < 2 * MEMBER_KEYS; k++) {
        int i = (k + a->tid * 5) % (2 * MEMBER_KEYS);
        int key = i / 2;
        b = (i + a->tid) % 2;
        a->got[b][key] = sr_shm_member(a->sb[b], a->routes[key], 1,
                                       (apr_time_t)(1000 + key));
    }
    return NULL;
}

static sr_shm_balancer_t *balancer_entry(const char *name)
{
    proxy_balancer *b = apr_pcalloc(pool, sizeof(*b));

    b->s = apr_pcalloc(pool, sizeof(*b->s));
    apr_cpystrn(b->s->name, name, sizeof(b->s->name));
    return sr_shm_balancer(&servers[0], b, 1);
}

static void test_member_claims(void)
{
    sr_shm_balancer_t *sb[2] = { balancer_entry("balancer://members-a"),
                                 balancer_entry("balancer://members-b") };
    int round, t, k, b, j;

    CHECK(sb[0] && sb[1] && sb[0] != sb[1], "balancer entries");
    for (round = 0; round < MEMBER_ROUNDS; round++) {
        const char **routes = apr_pcalloc(pool, MEMBER_KEYS * sizeof(char *));
        member_arg_t args[NT];

        for (k = 0; k < MEMBER_KEYS; k++) {
            routes[k] = apr_psprintf(pool, "m%d-%d", round, k);
        }
        for (t = 0; t < NT; t++) {
            memset(&args[t], 0, sizeof(args[t]));
            args[t].tid = t;
            args[t].sb[0] = sb[0];
            args[t].sb[1] = sb[1];
            args[t].routes = routes;
        }
        run_threads(member_thread, args, sizeof(args[0]), NT);
        for (b = 0; b < 2; b++) {
            for (k = 0; k < MEMBER_KEYS; k++) {
                sr_shm_member_t *e = args[0].got[b][k];
                CHECK(e != NULL, "round %d: no entry for %s", round, routes[k]);
                if (!e) {
                    continue;
                }
                for (t = 1; t < NT; t++) {
                    CHECK(args[t].got[b][k] == e, "round %d route %s: thread "
                          "%d got another entry", round, routes[k], t);
                }
                CHECK(!strcmp(e->route, routes[k]), "route %s, wanted %s",
                      e->route, routes[k]);
                CHECK(sr_atomic_load64(&e->up_since)
                      == (apr_uint64_t)(1000 + k), "up_since of %s: %llu",
                      routes[k],
                      (unsigned long long)sr_atomic_load64(&e->up_since));
                CHECK(args[0].got[!b][k] != e, "route %s: both balancers "
                      "share an entry", routes[k]);
                CHECK(sr_shm_member(sb[b], routes[k], 0, 0) == e,
                      "route %s: a lookup finds another entry", routes[k]);
                for (j = 0; j < k; j++) {
                    CHECK(args[0].got[b][j] != e, "routes %s and %s share an "
                          "entry", routes[j], routes[k]);
                }
            }
        }
    }
}

/* ---- 3. counters and in-flight counts -------------------------------- */

typedef struct {
    int tid;
    sr_shm_member_t **members;              /* NMEMBERS */
    apr_uint64_t counted[NMEMBERS][SR_STATUS_COUNT];
} count_arg_t;

static volatile int counting_done;

/* a status page reading the gauges meanwhile */
static void *gauge_reader(void *p)
{
    sr_shm_member_t **members = p;
    int i;

    pthread_barrier_wait(&start);
    while (!__atomic_load_n(&counting_done, __ATOMIC_ACQUIRE)) {
        for (i = 0; i < NMEMBERS; i++) {
            apr_uint32_t n = __atomic_load_n(&members[i]->inflight,
                                             __ATOMIC_RELAXED);
            CHECK(n <= NT, "member %d: in-flight %u with %d threads "
                  "(below zero?)", i, n, NT);
            (void)sr_atomic_load64(&members[i]->count[0]);
        }
    }
    return NULL;
}

static void *count_thread(void *p)
{
    count_arg_t *a = p;
    request_rec req;                /* a main request: no pool cleanup */
    sr_req_t rq;
    uint32_t seed = 0x9e3779b9u ^ (uint32_t)(a->tid * 7919 + 1);
    int i;

    memset(&req, 0, sizeof(req));
    memset(&rq, 0, sizeof(rq));
    pthread_barrier_wait(&start);
    for (i = 0; i < ITERATIONS; i++) {
        uint32_t r = xorshift(&seed);
        int m = (int)(r % NMEMBERS);
        sr_shm_member_t *to = a->members[m];

        switch ((r >> 8) % 8) {
        case 0:     /* the request ends (log_transaction) */
            sr_inflight_release(&rq);
            CHECK(rq.inflight == NULL, "release leaves the request counted");
            break;
        case 1:     /* decided on no member */
            sr_inflight_move(&req, &rq, NULL);
            CHECK(rq.inflight == NULL, "moved to none, still counted");
            break;
        default:    /* a decision (first one, failover or retry) */
            sr_inflight_move(&req, &rq, to);
            CHECK(rq.inflight == to, "not counted on its member");
            {
                apr_uint32_t n = __atomic_load_n(&to->inflight,
                                                 __ATOMIC_RELAXED);
                CHECK(n >= 1 && n <= NT, "member %d: in-flight %u while "
                      "this request is counted on it", m, n);
            }
            /* answered: counted as log_transaction counts it */
            if ((r >> 16) % 2) {
                int s = (int)((r >> 20) % SR_STATUS_COUNT);
                sr_atomic_add64(&to->count[s], 1);
                a->counted[m][s]++;
            }
            break;
        }
    }
    sr_inflight_release(&rq);
    return NULL;
}

static void *count_or_gauge(void *p)
{
    count_arg_t *a = p;

    return a->tid < NT ? count_thread(a) : gauge_reader(a->members);
}

static void test_counters_and_inflight(void)
{
    sr_shm_balancer_t *sb = balancer_entry("balancer://counting");
    sr_shm_member_t *members[NMEMBERS];
    count_arg_t args[NT + 1];
    int i, t, s;

    for (i = 0; i < NMEMBERS; i++) {
        members[i] = sr_shm_member(sb, apr_psprintf(pool, "c%d", i), 1, 0);
        CHECK(members[i] != NULL, "member %d", i);
        if (!members[i]) {
            return;
        }
    }
    /* moving to the member a request is already counted on changes nothing */
    {
        request_rec req;
        sr_req_t rq;
        memset(&req, 0, sizeof(req));
        memset(&rq, 0, sizeof(rq));
        sr_inflight_move(&req, &rq, members[0]);
        sr_inflight_move(&req, &rq, members[0]);
        CHECK(members[0]->inflight == 1, "in-flight %u", members[0]->inflight);
        sr_inflight_move(&req, &rq, members[1]);
        CHECK(members[0]->inflight == 0 && members[1]->inflight == 1,
              "moved: %u %u", members[0]->inflight, members[1]->inflight);
        sr_inflight_release(&rq);
        sr_inflight_release(&rq);
        CHECK(members[1]->inflight == 0, "in-flight %u", members[1]->inflight);
        rq.inflight = members[0];           /* released on a renewed entry */
        sr_inflight_release(&rq);
        CHECK(members[0]->inflight == 0, "floored at zero: %u",
              members[0]->inflight);
    }
    memset(args, 0, sizeof(args));
    for (t = 0; t <= NT; t++) {
        args[t].tid = t;
        args[t].members = members;
    }
    counting_done = 0;
    {
        pthread_t th[NT + 1];
        pthread_barrier_init(&start, NULL, NT + 1);
        for (t = 0; t <= NT; t++) {
            pthread_create(&th[t], NULL, count_or_gauge, &args[t]);
        }
        for (t = 0; t < NT; t++) {
            pthread_join(th[t], NULL);
        }
        __atomic_store_n(&counting_done, 1, __ATOMIC_RELEASE);
        pthread_join(th[NT], NULL);
        pthread_barrier_destroy(&start);
    }
    for (i = 0; i < NMEMBERS; i++) {
        CHECK(members[i]->inflight == 0, "member %d: in-flight %u after "
              "every request ended", i, members[i]->inflight);
        for (s = 0; s < SR_STATUS_COUNT; s++) {
            apr_uint64_t want = 0;
            for (t = 0; t < NT; t++) {
                want += args[t].counted[i][s];
            }
            CHECK(members[i]->count[s] == want, "member %d status %d: "
                  "counted %llu, answered %llu", i, s,
                  (unsigned long long)members[i]->count[s],
                  (unsigned long long)want);
        }
    }
}

/* ---- 4. an entry renewed while readers use it ------------------------ */

typedef struct {
    int tid;
    sr_shm_balancer_t *sb;
    sr_shm_member_t *stable[NSTABLE];
    sr_shm_member_t *renewed;
    apr_uint64_t counted[NSTABLE];
    unsigned long found_renewed, missed_renewed;
} renew_arg_t;

static const char *const renew_routes[2] = { "x-old", "x-new" };
static const char *const stable_routes[NSTABLE] = { "s0", "s1", "s2", "s3" };

static void *renew_thread(void *p)
{
    renew_arg_t *a = p;
    int i;

    if (a->tid == 0) {          /* the discovery watchdog */
        pthread_barrier_wait(&start);
        for (i = 0; i < RENEWALS; i++) {
            sr_shm_member_renew(a->renewed, renew_routes[(i + 1) % 2],
                                (apr_time_t)(i + 1));
        }
        return NULL;
    }
    {
        request_rec req;
        sr_req_t rq;
        uint32_t seed = 0x51ed270bu ^ (uint32_t)(a->tid * 104729);

        memset(&req, 0, sizeof(req));
        memset(&rq, 0, sizeof(rq));
        pthread_barrier_wait(&start);
        for (i = 0; i < ITERATIONS / 4; i++) {
            uint32_t r = xorshift(&seed);
            int k = (int)(r % NSTABLE);
            sr_shm_member_t *e = sr_shm_member(a->sb, stable_routes[k], 0, 0);
            sr_shm_member_t *x;

            CHECK(e == a->stable[k], "route %s: found %p, not its entry %p",
                  stable_routes[k], (void *)e, (void *)a->stable[k]);
            if (e) {
                sr_atomic_add64(&e->count[SR_STATUS_HIT], 1);
                a->counted[k]++;
                sr_inflight_move(&req, &rq, e);
            }
            x = sr_shm_member(a->sb, renew_routes[(r >> 8) % 2], 0, 0);
            CHECK(x == NULL || x == a->renewed, "a route of the renewed "
                  "entry found at another entry");
            if (x) {
                a->found_renewed++;
                sr_atomic_add64(&x->count[SR_STATUS_NEW], 1);
                /* a request counted on it across renewals */
                sr_inflight_move(&req, &rq, x);
                {
                    apr_uint32_t n = __atomic_load_n(&x->inflight,
                                                     __ATOMIC_RELAXED);
                    CHECK(n <= NT, "renewed entry: in-flight %u (below "
                          "zero?)", n);
                }
                (void)sr_atomic_load64(&x->up_since);
            }
            else {
                a->missed_renewed++;
            }
            if ((r >> 16) % 3 == 0) {
                sr_inflight_release(&rq);
            }
        }
        sr_inflight_release(&rq);
    }
    return NULL;
}

static void test_renew_with_readers(void)
{
    sr_shm_balancer_t *sb = balancer_entry("balancer://renewing");
    renew_arg_t args[NT];
    sr_shm_member_t *stable[NSTABLE], *renewed;
    unsigned long found = 0;
    int t, k;

    /* the renewed entry between stable ones: lookups pass it */
    stable[0] = sr_shm_member(sb, stable_routes[0], 1, 0);
    stable[1] = sr_shm_member(sb, stable_routes[1], 1, 0);
    renewed = sr_shm_member(sb, renew_routes[0], 1, 0);
    stable[2] = sr_shm_member(sb, stable_routes[2], 1, 0);
    stable[3] = sr_shm_member(sb, stable_routes[3], 1, 0);
    for (k = 0; k < NSTABLE; k++) {
        CHECK(stable[k] != NULL, "stable entry %d", k);
    }
    CHECK(renewed != NULL, "renewed entry");
    if (!renewed || !stable[0] || !stable[1] || !stable[2] || !stable[3]) {
        return;
    }
    memset(args, 0, sizeof(args));
    for (t = 0; t < NT; t++) {
        args[t].tid = t;
        args[t].sb = sb;
        memcpy(args[t].stable, stable, sizeof(stable));
        args[t].renewed = renewed;
    }
    run_threads(renew_thread, args, sizeof(args[0]), NT);
    for (k = 0; k < NSTABLE; k++) {
        apr_uint64_t want = 0;
        for (t = 1; t < NT; t++) {
            want += args[t].counted[k];
        }
        CHECK(stable[k]->count[SR_STATUS_HIT] == want, "stable %s: counted "
              "%llu, wanted %llu", stable_routes[k],
              (unsigned long long)stable[k]->count[SR_STATUS_HIT],
              (unsigned long long)want);
        CHECK(stable[k]->inflight == 0, "stable %s: in-flight %u at the end",
              stable_routes[k], stable[k]->inflight);
    }
    for (t = 1; t < NT; t++) {
        found += args[t].found_renewed;
    }
    CHECK(renewed->inflight == 0, "renewed entry: in-flight %u at the end "
          "(floored at zero, never wrapped)", renewed->inflight);
    CHECK(renewed->count[SR_STATUS_NEW] <= found, "renewed entry counted "
          "%llu of %lu", (unsigned long long)renewed->count[SR_STATUS_NEW],
          found);
    CHECK(!strcmp(renewed->route, renew_routes[RENEWALS % 2]),
          "renewed entry ends as %s", renewed->route);
    CHECK(renewed->state == SR_SLOT_READY, "renewed entry state %u",
          renewed->state);
    CHECK(sr_atomic_load64(&renewed->up_since) == RENEWALS,
          "renewed up_since %llu",
          (unsigned long long)sr_atomic_load64(&renewed->up_since));
    CHECK(sr_shm_member(sb, renew_routes[RENEWALS % 2], 0, 0) == renewed
          && sr_shm_member(sb, renew_routes[(RENEWALS + 1) % 2], 0, 0) == NULL,
          "lookups after the renewals");
    fprintf(stderr, "renewal: readers found the renewed entry %lu times\n",
            found);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    servers_init();
    if (sr_shm_setup(pool, pool, &servers[0]) != APR_SUCCESS) {
        fprintf(stderr, "sr_shm_setup failed\n");
        return 1;
    }
    CHECK(sr_shm_is_new(), "a new segment");

    test_balancer_claims();
    test_member_claims();
    test_counters_and_inflight();
    test_renew_with_readers();

    apr_pool_destroy(pool);
    apr_terminate();
    if (failures) {
        fprintf(stderr, "test_sr_threads: %d checks failed\n", failures);
        return 1;
    }
    fprintf(stderr, "test_sr_threads: all checks passed (%d threads)\n", NT);
    return 0;
}
