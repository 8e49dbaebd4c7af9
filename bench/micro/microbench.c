/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * microbench.c - cost of one selection through the real provider structs.
 *
 * The module's glue (mod_sticky_route*.c) and core (sr_*.c) are compiled
 * in unchanged; the few httpd
 * core functions they reference are defined below (hook registration
 * captures the module's hook functions, ap_register_provider captures the
 * two proxy_balancer_method structs). A proxy_balancer with N members is
 * built in memory the way mod_proxy builds it, the module's check_config,
 * post_config (shared memory) and child_init run, and then the providers'
 * finder is called in a loop with a request_rec that is reset between calls
 * as httpd would give a fresh one:
 *
 *   sticky-hit   a request carrying a valid ROUTEID cookie
 *   sticky-new   a request without cookie (election + Set-Cookie built)
 *   roundrobin   lbmethod=roundrobin
 *
 * Usage: microbench [--iterations N] [--scenario NAME --members N]
 * Without --scenario: every scenario at 2, 16 and 256 members, ns/selection
 * (best of 5 runs). With one scenario: runs exactly N selections (for
 * callgrind: instructions per selection = Ir inside the finder / N).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_provider.h"
#include "util_filter.h"
#include "ap_regex.h"
#include "apr_strings.h"
#include "apr_optional.h"
#include "apr_hooks.h"
#include "mod_proxy.h"
#include "mod_sticky_route_private.h"

module PROXY_DECLARE_DATA proxy_module;
static module proxy_balancer_stub = { STANDARD20_MODULE_STUFF, NULL, NULL,
                                      NULL, NULL, NULL, NULL, 0 };

/* ---- the httpd core functions the module references ------------------ */

static const proxy_balancer_method *cap_sticky, *cap_rr;
static ap_HOOK_check_config_t *cap_check_config;
static ap_HOOK_post_config_t *cap_post_config;
static ap_HOOK_child_init_t *cap_child_init;

AP_DECLARE(apr_status_t) ap_register_provider(apr_pool_t *pool,
        const char *group, const char *name, const char *version,
        const void *provider)
{
    (void)pool; (void)group; (void)version;
    if (!strcmp(name, "sticky")) cap_sticky = provider;
    if (!strcmp(name, "roundrobin")) cap_rr = provider;
    return APR_SUCCESS;
}
AP_DECLARE(void) ap_hook_check_config(ap_HOOK_check_config_t *pf,
        const char *const *a, const char *const *b, int o)
{ (void)a; (void)b; (void)o; cap_check_config = pf; }
AP_DECLARE(void) ap_hook_post_config(ap_HOOK_post_config_t *pf,
        const char *const *a, const char *const *b, int o)
{ (void)a; (void)b; (void)o; cap_post_config = pf; }
AP_DECLARE(void) ap_hook_child_init(ap_HOOK_child_init_t *pf,
        const char *const *a, const char *const *b, int o)
{ (void)a; (void)b; (void)o; if (!cap_child_init) cap_child_init = pf; }  /* the module's
   first child_init hook (sr_child_init); the second only gates discovery */
/* A hook registration the bench ignores. */
#define IGNORED_HOOK(declare, name, type) \
    declare(void) name(type *pf, const char *const *a, const char *const *b, int o) \
    { (void)pf; (void)a; (void)b; (void)o; }
IGNORED_HOOK(AP_DECLARE, ap_hook_handler, ap_HOOK_handler_t)
IGNORED_HOOK(AP_DECLARE, ap_hook_insert_error_filter, ap_HOOK_insert_error_filter_t)
IGNORED_HOOK(AP_DECLARE, ap_hook_log_transaction, ap_HOOK_log_transaction_t)

static ap_filter_rec_t cookie_filter_rec;
AP_DECLARE(ap_filter_rec_t *) ap_register_output_filter(const char *name,
        ap_out_filter_func f, ap_init_filter_func init, ap_filter_type t)
{
    (void)f; (void)init;
    cookie_filter_rec.name = name;
    cookie_filter_rec.ftype = t;
    return &cookie_filter_rec;
}
/* Adding a filter in httpd allocates one ap_filter_t from the request pool
 * and links it; do the same amount of work. */
AP_DECLARE(ap_filter_t *) ap_add_output_filter_handle(ap_filter_rec_t *f,
        void *ctx, request_rec *r, conn_rec *c)
{
    ap_filter_t *nf = apr_palloc(r->pool, sizeof(*nf));
    (void)c;
    nf->frec = f;
    nf->ctx = ctx;
    nf->r = r;
    nf->next = r->output_filters;
    r->output_filters = nf;
    return nf;
}
AP_DECLARE(void) ap_remove_output_filter(ap_filter_t *f) { (void)f; }
AP_DECLARE(apr_status_t) ap_pass_brigade(ap_filter_t *f, apr_bucket_brigade *bb)
{ (void)f; (void)bb; return APR_SUCCESS; }
AP_DECLARE(const char *) ap_run_http_scheme(const request_rec *r)
{ (void)r; return "http"; }
AP_DECLARE(void) ap_add_version_component(apr_pool_t *p, const char *c)
{ (void)p; (void)c; }
AP_DECLARE(int) ap_state_query(int q) { (void)q; return AP_SQ_MS_CREATE_CONFIG; }
AP_DECLARE(char *) ap_server_root_relative(apr_pool_t *p, const char *f)
{ return apr_pstrdup(p, f); }
AP_DECLARE(void) ap_set_content_type(request_rec *r, const char *ct)
{ r->content_type = ct; }
AP_DECLARE(int) ap_rwrite(const void *b, int n, request_rec *r)
{ (void)b; (void)r; return n; }
AP_DECLARE_NONSTD(int) ap_rprintf(request_rec *r, const char *fmt, ...)
{ (void)r; (void)fmt; return 0; }
AP_DECLARE(void) ap_log_error_(const char *file, int line, int mi, int level,
        apr_status_t st, const server_rec *s, const char *fmt, ...)
{ (void)file; (void)line; (void)mi; (void)level; (void)st; (void)s;
  fprintf(stderr, "log: %s\n", fmt); }
AP_DECLARE(void) ap_log_rerror_(const char *file, int line, int mi, int level,
        apr_status_t st, const request_rec *r, const char *fmt, ...)
{ (void)file; (void)line; (void)mi; (void)level; (void)st; (void)r;
  fprintf(stderr, "log: %s\n", fmt); }

AP_DECLARE(int) ap_regexec(const ap_regex_t *preg, const char *string,
        apr_size_t nmatch, ap_regmatch_t *pmatch, int eflags)
{ (void)preg; (void)string; (void)nmatch; (void)pmatch; (void)eflags;
  return AP_REG_NOMATCH; }

AP_DECLARE(module *) ap_find_linked_module(const char *name)
{ return !strcmp(name, "mod_proxy_balancer.c") ? &proxy_balancer_stub : NULL; }
IGNORED_HOOK(AP_DECLARE, ap_hook_pre_connection, ap_HOOK_pre_connection_t)

/* StickyRouteDiscover's calls into mod_proxy (not used by the bench) */
PROXY_DECLARE(proxy_worker *) ap_proxy_get_worker(apr_pool_t *p,
        proxy_balancer *b, proxy_server_conf *c, const char *url)
{ (void)p; (void)b; (void)c; (void)url; return NULL; }
PROXY_DECLARE(char *) ap_proxy_define_worker(apr_pool_t *p, proxy_worker **w,
        proxy_balancer *b, proxy_server_conf *c, const char *url, int m)
{ (void)p; (void)w; (void)b; (void)c; (void)url; (void)m; return "not here"; }
PROXY_DECLARE(apr_status_t) ap_proxy_share_worker(proxy_worker *w,
        proxy_worker_shared *shm, int i)
{ (void)w; (void)shm; (void)i; return APR_ENOTIMPL; }
PROXY_DECLARE(apr_status_t) ap_proxy_initialize_worker(proxy_worker *w,
        server_rec *s, apr_pool_t *p)
{ (void)w; (void)s; (void)p; return APR_ENOTIMPL; }
PROXY_DECLARE(apr_status_t) ap_proxy_set_wstatus(char c, int set, proxy_worker *w)
{ (void)c; (void)set; (void)w; return APR_ENOTIMPL; }
PROXY_DECLARE(apr_status_t) ap_proxy_sync_balancer(proxy_balancer *b,
        server_rec *s, proxy_server_conf *c)
{ (void)b; (void)s; (void)c; return APR_SUCCESS; }
AP_DECLARE(void) ap_str_tolower(char *s)
{ for (; *s; s++) if (*s >= 'A' && *s <= 'Z') *s = (char)(*s - 'A' + 'a'); }

AP_DECLARE(void) ap_internal_redirect(const char *uri, request_rec *r)
{ (void)uri; (void)r; }

/* lbmethod=hash, StickyRouteWait and the retry's calls into httpd (the
 * bench's scenarios configure none of them) */
AP_DECLARE(int) ap_cstr_casecmpn(const char *a, const char *b, apr_size_t n)
{ return strncasecmp(a, b, n); }
AP_DECLARE(ap_expr_info_t *) ap_expr_parse_cmd_mi(const cmd_parms *cmd,
        const char *expr, unsigned int flags, const char **err,
        ap_expr_lookup_fn_t *lookup_fn, int module_index)
{ (void)cmd; (void)expr; (void)flags; (void)lookup_fn; (void)module_index;
  *err = "not here"; return NULL; }
AP_DECLARE(const char *) ap_expr_str_exec(request_rec *r,
        const ap_expr_info_t *expr, const char **err)
{ (void)r; (void)expr; *err = "not here"; return NULL; }
AP_DECLARE(apr_status_t) ap_mpm_query(int q, int *result)
{ (void)q; *result = 0; return APR_ENOTIMPL; }
PROXY_DECLARE(proxy_balancer *) ap_proxy_get_balancer(apr_pool_t *p,
        proxy_server_conf *c, const char *url, int care)
{ (void)p; (void)c; (void)url; (void)care; return NULL; }
IGNORED_HOOK(PROXY_DECLARE, proxy_hook_pre_request, proxy_HOOK_pre_request_t)

IGNORED_HOOK(PROXY_DECLARE, proxy_hook_scheme_handler, proxy_HOOK_scheme_handler_t)

/* StickyRouteDiscover's hc timeouts (not used by the bench) */
AP_DECLARE(apr_status_t) ap_timeout_parameter_parse(const char *arg,
        apr_interval_time_t *timeout, const char *unit)
{ (void)arg; (void)unit; *timeout = 0; return APR_ENOTIMPL; }

static int ap_proxy_retry_worker(const char *fn, proxy_worker *w, server_rec *s)
{ (void)fn; (void)w; (void)s; return DECLINED; }

/* ---- a server with balancers, as mod_proxy builds them ------------------ */

static const int sizes[] = { 2, 16, 256 };
#define NSIZES 3

typedef struct {
    apr_pool_t *pconf;
    server_rec *s;
    proxy_balancer *sticky[NSIZES];
    proxy_balancer *rr[NSIZES];
} bed_t;

static void make_balancer(apr_pool_t *p, proxy_balancer *b, const char *name,
                          int n, int with_routes)
{
    int i;
    memset(b, 0, sizeof(*b));
    b->s = apr_pcalloc(p, sizeof(proxy_balancer_shared));
    apr_cpystrn(b->s->name, name, sizeof(b->s->name));
    b->workers = apr_array_make(p, n, sizeof(proxy_worker *));
    b->max_workers = n;
    for (i = 0; i < n; i++) {
        proxy_worker *w = apr_pcalloc(p, sizeof(*w));
        w->s = apr_pcalloc(p, sizeof(proxy_worker_shared));
        apr_snprintf(w->s->name, sizeof(w->s->name), "http://10.0.%d.%d:80",
                     i / 250, i % 250 + 1);
        apr_cpystrn(w->s->name_ex, w->s->name, sizeof(w->s->name_ex));
        if (with_routes) {
            apr_snprintf(w->s->route, sizeof(w->s->route), "s%d", i + 1);
        }
        w->s->status = PROXY_WORKER_INITIALIZED;
        w->s->lbfactor = 100;
        w->balancer = b;
        APR_ARRAY_PUSH(b->workers, proxy_worker *) = w;
    }
}

static void bed_init(bed_t *bed, apr_pool_t *pglobal)
{
    process_rec *proc = apr_pcalloc(pglobal, sizeof(*proc));
    proxy_server_conf *pc;
    apr_pool_t *ptemp;
    void **vec;
    int i;

    apr_pool_create(&bed->pconf, pglobal);
    apr_pool_create(&ptemp, pglobal);
    proc->pool = pglobal;
    proc->pconf = bed->pconf;
    bed->s = apr_pcalloc(bed->pconf, sizeof(server_rec));
    bed->s->process = proc;
    bed->s->server_hostname = "bench";
    sticky_route_module.module_index = 0;
    proxy_module.module_index = 1;
    vec = apr_pcalloc(bed->pconf, 2 * sizeof(void *));
    bed->s->module_config = (ap_conf_vector_t *)vec;
    vec[0] = sticky_route_module.create_server_config(bed->pconf, bed->s);
    pc = apr_pcalloc(bed->pconf, sizeof(*pc));
    vec[1] = pc;
    pc->id = "pbench";     /* mod_proxy_balancer's per-server id */
    pc->balancers = apr_array_make(bed->pconf, 2 * NSIZES, sizeof(proxy_balancer));
    pc->sec_proxy = apr_array_make(bed->pconf, NSIZES, sizeof(ap_conf_vector_t *));

    apr_hook_global_pool = pglobal;     /* optional hooks and functions */
    sticky_route_module.register_hooks(bed->pconf);
    APR_REGISTER_OPTIONAL_FN(ap_proxy_retry_worker);
    for (i = 0; i < NSIZES; i++) {
        proxy_balancer *b = apr_array_push(pc->balancers);
        make_balancer(bed->pconf, b, apr_psprintf(bed->pconf,
                      "balancer://sticky%d", sizes[i]), sizes[i], 1);
        b->lbmethod = (proxy_balancer_method *)cap_sticky;
        {
            /* its own cookie, as a <Proxy> section would give it */
            sr_conf_t *dc = sticky_route_module.create_dir_config(bed->pconf, NULL);
            sr_cookie_spec_t *spec = apr_pcalloc(bed->pconf, sizeof(*spec));
            char *cargv[1];
            void **dvec = apr_pcalloc(bed->pconf, 2 * sizeof(void *));
            proxy_dir_conf *pd = apr_pcalloc(bed->pconf, sizeof(*pd));
            cargv[0] = apr_psprintf(bed->pconf, "ROUTE%d", sizes[i]);
            sr_cookie_spec_parse(bed->pconf, 1, cargv, spec);
            dc->cookie = spec;
            pd->p = b->s->name;
            dvec[0] = dc;
            dvec[1] = pd;
            APR_ARRAY_PUSH(pc->sec_proxy, ap_conf_vector_t *) = (ap_conf_vector_t *)dvec;
        }
        b = apr_array_push(pc->balancers);
        make_balancer(bed->pconf, b, apr_psprintf(bed->pconf,
                      "balancer://rr%d", sizes[i]), sizes[i], 0);
        b->lbmethod = (proxy_balancer_method *)cap_rr;
    }
    for (i = 0; i < NSIZES; i++) {
        bed->sticky[i] = &APR_ARRAY_IDX(pc->balancers, 2 * i, proxy_balancer);
        bed->rr[i] = &APR_ARRAY_IDX(pc->balancers, 2 * i + 1, proxy_balancer);
    }
    if (cap_check_config(bed->pconf, bed->pconf, ptemp, bed->s) != OK
        || cap_post_config(bed->pconf, bed->pconf, ptemp, bed->s) != OK) {
        fprintf(stderr, "module startup hooks failed\n");
        exit(1);
    }
    cap_child_init(bed->pconf, bed->s);
}

/* ---- the loop ----------------------------------------------------------- */

typedef enum { SC_STICKY_HIT, SC_STICKY_NEW, SC_ROUNDROBIN } scenario_t;
static const char *const scenario_names[] = { "sticky-hit", "sticky-new", "roundrobin" };

typedef struct {
    apr_pool_t *rpool;
    request_rec r;
    conn_rec c;
    void *reqconf[2];
} fake_req_t;

static void req_reset(fake_req_t *fr, server_rec *s, const char *cookie)
{
    apr_pool_clear(fr->rpool);
    memset(&fr->r, 0, sizeof(fr->r));
    fr->reqconf[0] = fr->reqconf[1] = NULL;
    fr->r.pool = fr->rpool;
    fr->r.server = s;
    fr->r.connection = &fr->c;
    fr->r.request_config = (ap_conf_vector_t *)fr->reqconf;
    fr->r.request_time = 1;     /* fixed: the periodic scan stays out */
    fr->r.headers_in = apr_table_make(fr->rpool, 8);
    fr->r.subprocess_env = apr_table_make(fr->rpool, 8);
    fr->r.headers_out = apr_table_make(fr->rpool, 8);
    fr->r.notes = apr_table_make(fr->rpool, 4);
    apr_table_setn(fr->r.headers_in, "Host", "bench");
    apr_table_setn(fr->r.headers_in, "User-Agent", "microbench");
    if (cookie) {
        apr_table_setn(fr->r.headers_in, "Cookie", cookie);
    }
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Runs `iterations` selections, each on a freshly reset request_rec.
 * Returns the ns per selection: the time of the loop minus the time of the
 * same loop without the finder call (reading the clock per call would cost
 * as much as what it measures). */
static void run(bed_t *bed, scenario_t sc, int size_ix, long iterations,
                apr_pool_t *p, double *with_ns, double *without_ns)
{
    proxy_balancer *b = sc == SC_ROUNDROBIN ? bed->rr[size_ix] : bed->sticky[size_ix];
    const char *cookie = NULL;
    fake_req_t fr;
    double t0, with, without;
    long i;

    if (sc == SC_STICKY_HIT) {
        cookie = apr_psprintf(p, "_ga=GA1.1.12345; ROUTE%d=s%d; theme=dark",
                              sizes[size_ix], sizes[size_ix]); /* last member */
    }
    memset(&fr, 0, sizeof(fr));
    apr_pool_create(&fr.rpool, p);
    t0 = now_ns();
    for (i = 0; i < iterations; i++) {
        req_reset(&fr, bed->s, cookie);
        if (!b->lbmethod->finder(b, &fr.r)) {
            fprintf(stderr, "finder returned no member\n");
            exit(1);
        }
    }
    with = now_ns() - t0;
    if (sc == SC_STICKY_HIT
        && strcmp(apr_table_get(fr.r.subprocess_env, "STICKY_ROUTE_STATUS"), "hit")) {
        fprintf(stderr, "sticky-hit scenario did not hit\n");
        exit(1);
    }
    t0 = now_ns();
    for (i = 0; i < iterations; i++) {
        req_reset(&fr, bed->s, cookie);
        __asm__ __volatile__("" ::: "memory");
    }
    without = now_ns() - t0;
    apr_pool_destroy(fr.rpool);
    *with_ns = with / (double)iterations;
    *without_ns = without / (double)iterations;
}

int main(int argc, char **argv)
{
    apr_pool_t *pglobal;
    bed_t bed;
    long iterations = 200000;
    const char *only = NULL;
    int only_members = 0, a;

    for (a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--iterations") && a + 1 < argc) {
            iterations = atol(argv[++a]);
        }
        else if (!strcmp(argv[a], "--scenario") && a + 1 < argc) {
            only = argv[++a];
        }
        else if (!strcmp(argv[a], "--members") && a + 1 < argc) {
            only_members = atoi(argv[++a]);
        }
        else {
            fprintf(stderr, "usage: %s [--iterations N] [--scenario "
                    "sticky-hit|sticky-new|roundrobin --members 2|16|256]\n",
                    argv[0]);
            return 2;
        }
    }
    apr_initialize();
    apr_pool_create(&pglobal, NULL);
    bed_init(&bed, pglobal);

    if (only) {
        int sc, ix;
        for (sc = 0; sc < 3 && strcmp(scenario_names[sc], only); sc++)
            ;
        for (ix = 0; ix < NSIZES && sizes[ix] != only_members; ix++)
            ;
        if (sc == 3 || ix == NSIZES) {
            fprintf(stderr, "unknown scenario or member count\n");
            return 2;
        }
        {
            double a, b;
            run(&bed, (scenario_t)sc, ix, iterations, pglobal, &a, &b);
        }
        printf("%s members=%d iterations=%ld done\n", only, only_members,
               iterations);
        return 0;
    }

    printf("| selection | 2 members | 16 members | 256 members | 256 vs 2 |\n");
    printf("|---|---|---|---|---|\n");
    {
        int sc, ix, round;
        for (sc = 0; sc < 3; sc++) {
            double best[NSIZES];
            printf("| %s |", scenario_names[sc]);
            for (ix = 0; ix < NSIZES; ix++) {
                double bw = 1e18, bo = 1e18, a, o;
                run(&bed, (scenario_t)sc, ix, iterations / 10, pglobal, &a, &o);
                /* best of 7 for the loop with and without the finder: the
                 * minimum is the run least disturbed by the machine */
                for (round = 0; round < 7; round++) {
                    run(&bed, (scenario_t)sc, ix, iterations, pglobal, &a, &o);
                    if (a < bw) bw = a;
                    if (o < bo) bo = o;
                }
                best[ix] = bw - bo;
                printf(" %.1f ns |", best[ix]);
            }
            printf(" %.2fx |\n", best[2] / best[0]);
        }
    }
    apr_pool_destroy(pglobal);
    apr_terminate();
    return 0;
}
