/*
 * mod_sticky_route.c - httpd glue: directives, hooks, the two lbmethod
 * providers (sticky, roundrobin) and the status handler.
 *
 * Pure logic (cookie grammar, signing, schedule, route index) is in
 * sr_core.c; this file only connects it to mod_proxy_balancer.
 */
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_provider.h"
#include "ap_mpm.h"
#include "util_filter.h"
#include "apr_atomic.h"
#include "apr_shm.h"
#include "apr_strings.h"
#include "apr_hash.h"
#include "apr_optional.h"
#include "apr_fnmatch.h"
#include "apr_optional_hooks.h"

#include "mod_proxy.h"
#include "mod_sticky_route.h"

module AP_MODULE_DECLARE_DATA sticky_route_module;


static APR_OPTIONAL_FN_TYPE(ap_proxy_retry_worker) *sr_retry_worker = NULL;
static ap_filter_rec_t *sr_cookie_filter_handle = NULL;
static sr_shm_t *sr_shm = NULL;
static apr_pool_t *sr_child_pool = NULL;
#if APR_HAS_THREADS
static apr_thread_mutex_t *sr_child_mutex = NULL;
#endif
static sr_cookie_spec_t sr_default_cookie;
static server_rec *sr_main_server = NULL;

static const proxy_balancer_method sr_sticky_method;
static const proxy_balancer_method sr_roundrobin_method;

#define SR_SCAN_INTERVAL apr_time_from_sec(1)
#define SR_SHM_USERDATA  "mod_sticky_route_shm"
#define SR_TRIED_MAX     8

/* ====================================================================
 * Configuration
 * ==================================================================== */

static void *sr_create_conf(apr_pool_t *p, char *dummy)
{
    sr_conf_t *c = apr_pcalloc(p, sizeof(*c));
    (void)dummy;
    c->legacy = -1;
    c->retry = -1;
    return c;
}

static void *sr_create_server_conf(apr_pool_t *p, server_rec *s)
{
    (void)s;
    return sr_create_conf(p, NULL);
}

static void *sr_merge_conf(apr_pool_t *p, void *basev, void *addv)
{
    const sr_conf_t *base = basev, *add = addv;
    sr_conf_t *c = apr_pcalloc(p, sizeof(*c));

    c->cookie = add->cookie ? add->cookie : base->cookie;
    c->tag_key = add->tag_key ? add->tag_key : base->tag_key;
    c->route_key = add->route_key ? add->route_key : base->route_key;
    c->legacy = add->legacy >= 0 ? add->legacy : base->legacy;
    c->retry = add->retry >= 0 ? add->retry : base->retry;
    return c;
}

/* The directives belong in the server config, a <VirtualHost> or a
 * <Proxy balancer://...> section; returns the config to write to. */
static const char *sr_conf_for_cmd(cmd_parms *cmd, void *mconfig,
                                   sr_conf_t **out)
{
    if (cmd->path == NULL) {
        *out = ap_get_module_config(cmd->server->module_config,
                                    &sticky_route_module);
        return NULL;
    }
    if (cmd->directive && cmd->directive->parent
        && (!strcasecmp(cmd->directive->parent->directive, "<Proxy")
            || !strcasecmp(cmd->directive->parent->directive, "<ProxyMatch"))) {
        *out = mconfig;
        return NULL;
    }
    return apr_pstrcat(cmd->pool, cmd->cmd->name, " is only valid in the "
                       "server config, <VirtualHost> or <Proxy balancer://...>",
                       NULL);
}

static const char *sr_cmd_cookie(cmd_parms *cmd, void *mconfig, int argc,
                                 char *const argv[])
{
    sr_conf_t *c;
    sr_cookie_spec_t *spec;
    const char *err = sr_conf_for_cmd(cmd, mconfig, &c);

    if (err) {
        return err;
    }
    spec = apr_pcalloc(cmd->pool, sizeof(*spec));
    err = sr_cookie_spec_parse(cmd->pool, argc, argv, spec);
    if (err) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ", err, NULL);
    }
    c->cookie = spec;
    return NULL;
}

static const char *sr_cmd_secret(cmd_parms *cmd, void *mconfig,
                                 const char *arg)
{
    sr_conf_t *c;
    const char *secret;
    size_t len;
    sr_key_t *tag_key, *route_key;
    const char *err = sr_conf_for_cmd(cmd, mconfig, &c);

    if (err) {
        return err;
    }
    if (!strncmp(arg, "file:", 5)) {
        arg = apr_pstrcat(cmd->temp_pool, "file:",
                          ap_server_root_relative(cmd->temp_pool, arg + 5),
                          NULL);
    }
    err = sr_secret_load(cmd->temp_pool, arg, &secret, &len);
    if (err) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ", err, NULL);
    }
    tag_key = apr_palloc(cmd->pool, sizeof(*tag_key));
    route_key = apr_palloc(cmd->pool, sizeof(*route_key));
    sr_key_derive(tag_key, secret, len, "tag");
    sr_key_derive(route_key, secret, len, "route");
    c->tag_key = tag_key;
    c->route_key = route_key;
    return NULL;
}

/* On|Off directives: cmd->info is the offset of the int in sr_conf_t. */
static const char *sr_cmd_flag(cmd_parms *cmd, void *mconfig, int flag)
{
    sr_conf_t *c;
    const char *err = sr_conf_for_cmd(cmd, mconfig, &c);

    if (err) {
        return err;
    }
    *(int *)((char *)c + (apr_size_t)cmd->info) = flag ? 1 : 0;
    return NULL;
}

static const command_rec sr_cmds[] = {
    AP_INIT_TAKE_ARGV("StickyRouteCookie", sr_cmd_cookie, NULL,
        RSRC_CONF | ACCESS_CONF,
        "NAME [Path=/] [Domain=..] [Max-Age=N] [HttpOnly] [Secure] "
        "[SameSite=Lax|Strict|None] - the cookie lbmethod=sticky issues"),
    AP_INIT_TAKE1("StickyRouteSecret", sr_cmd_secret, NULL,
        RSRC_CONF | ACCESS_CONF,
        "a secret of at least 16 bytes, or file:/path - signs route cookies"),
    AP_INIT_FLAG("StickyRouteLegacyCookie", sr_cmd_flag,
        (void *)APR_OFFSETOF(sr_conf_t, legacy),
        RSRC_CONF | ACCESS_CONF,
        "On|Off - honour stock recipe cookies (.route) when a secret is set"),
    AP_INIT_FLAG("StickyRouteRetry", sr_cmd_flag,
        (void *)APR_OFFSETOF(sr_conf_t, retry),
        RSRC_CONF | ACCESS_CONF,
        "On|Off - retry a GET/HEAD once on another member when a member "
        "breaks before answering (default On)"),
    { NULL }
};

/* The settings given in the <Proxy>/<ProxyMatch> sections that match the
 * balancer's name, merged in configuration order. mod_proxy links a
 * section to its balancer (section_config) only when the <Proxy> line
 * carries parameters, so the sections are matched here by name, the way
 * mod_proxy matches them against URLs: regex, wildcard, or the name. */
static const sr_conf_t *sr_section_conf(apr_pool_t *p, server_rec *s,
                                        proxy_balancer *b)
{
    proxy_server_conf *pc = ap_get_module_config(s->module_config,
                                                 &proxy_module);
    const char *name = b->s->name;
    const sr_conf_t *merged = NULL;
    ap_conf_vector_t **secs;
    int i;

    if (!pc || !pc->sec_proxy) {
        return NULL;
    }
    secs = (ap_conf_vector_t **)pc->sec_proxy->elts;
    for (i = 0; i < pc->sec_proxy->nelts; i++) {
        proxy_dir_conf *pd = ap_get_module_config(secs[i], &proxy_module);
        const sr_conf_t *sc = ap_get_module_config(secs[i],
                                                   &sticky_route_module);
        int match;
        size_t plen;

        if (!pd || !pd->p || !sc) {
            continue;
        }
        plen = strlen(pd->p);
        if (pd->r) {
            match = !ap_regexec(pd->r, name, 0, NULL, 0);
        }
        else if (pd->p_is_fnmatch) {
            match = apr_fnmatch(pd->p, name, APR_FNM_CASE_BLIND) == APR_SUCCESS;
        }
        else {
            match = !strcasecmp(pd->p, name)
                || (plen > 1 && pd->p[plen - 1] == '/'
                    && strlen(name) == plen - 1
                    && !strncasecmp(pd->p, name, plen - 1));
        }
        if (match) {
            merged = merged ? sr_merge_conf(p, (void *)merged, (void *)sc) : sc;
        }
    }
    return merged;
}

/* Resolves the settings for balancer b in server s: the balancer's
 * <Proxy> sections, then the (virtual) server, then the defaults. */
static void sr_effective(server_rec *s, const sr_conf_t *dir,
                         sr_effective_t *e)
{
    const sr_conf_t *srv = ap_get_module_config(s->module_config,
                                                &sticky_route_module);

    e->cookie = (dir && dir->cookie) ? dir->cookie
              : (srv && srv->cookie) ? srv->cookie : &sr_default_cookie;
    e->tag_key = (dir && dir->tag_key) ? dir->tag_key
               : srv ? srv->tag_key : NULL;
    e->route_key = (dir && dir->route_key) ? dir->route_key
                 : (srv && srv->route_key) ? srv->route_key : NULL;
    e->legacy = (dir && dir->legacy >= 0) ? dir->legacy
              : (srv && srv->legacy >= 0) ? srv->legacy : -1;
    e->retry = (dir && dir->retry >= 0) ? dir->retry
             : (srv && srv->retry >= 0) ? srv->retry : 1;
    if (e->legacy < 0) {
        /* Default: honour the stock recipe's unsigned cookies only when
         * cookies are not signed; with a secret they would be forgeable. */
        e->legacy = e->tag_key ? 0 : 1;
    }
}

static int sr_is_ours(const proxy_balancer *b)
{
    return b->lbmethod == &sr_sticky_method
        || b->lbmethod == &sr_roundrobin_method;
}

/* ====================================================================
 * Shared memory
 * ==================================================================== */

static sr_shm_balancer_t *sr_shm_balancer(const char *name, int create)
{
    int i, free_slot = -1;

    if (!sr_shm) {
        return NULL;
    }
    for (i = 0; i < SR_SHM_BALANCERS; i++) {
        sr_shm_balancer_t *e = &sr_shm->balancers[i];
        apr_uint32_t st = apr_atomic_read32(&e->state);
        if (st == SR_SLOT_READY && !strcmp(e->name, name)) {
            return e;
        }
        if (st == SR_SLOT_FREE && free_slot < 0) {
            free_slot = i;
        }
    }
    for (i = free_slot; create && i >= 0 && i < SR_SHM_BALANCERS; i++) {
        sr_shm_balancer_t *e = &sr_shm->balancers[i];
        if (apr_atomic_cas32(&e->state, SR_SLOT_FILLING, SR_SLOT_FREE)
            == SR_SLOT_FREE) {
            apr_cpystrn(e->name, name, sizeof(e->name));
            apr_atomic_xchg32(&e->state, SR_SLOT_READY);
            return e;
        }
    }
    return NULL;
}

static sr_shm_member_t *sr_shm_member(const char *balancer, const char *route,
                                      int create)
{
    int i, free_slot = -1;

    if (!sr_shm || !route || !*route) {
        return NULL;
    }
    for (i = 0; i < SR_SHM_MEMBERS; i++) {
        sr_shm_member_t *e = &sr_shm->members[i];
        apr_uint32_t st = apr_atomic_read32(&e->state);
        if (st == SR_SLOT_READY && !strcmp(e->route, route)
            && !strcmp(e->balancer, balancer)) {
            return e;
        }
        if (st == SR_SLOT_FREE && free_slot < 0) {
            free_slot = i;
        }
    }
    for (i = free_slot; create && i >= 0 && i < SR_SHM_MEMBERS; i++) {
        sr_shm_member_t *e = &sr_shm->members[i];
        if (apr_atomic_cas32(&e->state, SR_SLOT_FILLING, SR_SLOT_FREE)
            == SR_SLOT_FREE) {
            apr_cpystrn(e->balancer, balancer, sizeof(e->balancer));
            apr_cpystrn(e->route, route, sizeof(e->route));
            apr_atomic_xchg32(&e->state, SR_SLOT_READY);
            return e;
        }
    }
    return NULL;
}

/* ====================================================================
 * Per-process balancer state: routes, route index, schedule
 * ==================================================================== */

static sr_balancer_state_t *sr_state_create(apr_pool_t *p, server_rec *s,
                                            proxy_balancer *b)
{
    sr_balancer_state_t *st = apr_pcalloc(p, sizeof(*st));
    uint32_t max = (uint32_t)b->max_workers;

    if (max < (uint32_t)b->workers->nelts) {
        max = (uint32_t)b->workers->nelts;
    }
    if (max < 1) {
        max = 1;
    }
    if (max > 65535) {
        max = 65535;
    }
    st->balancer = b;
    st->dirconf = sr_section_conf(p, s, b);
    st->max = max;
    st->nworkers = -1;
    st->routes_buf = apr_pcalloc(p, (apr_size_t)max * PROXY_WORKER_MAX_ROUTE_SIZE);
    st->routes = apr_pcalloc(p, max * sizeof(char *));
    st->values_buf = apr_pcalloc(p, (apr_size_t)max * SR_VALUE_BUF);
    st->value_key = apr_pcalloc(p, max * sizeof(sr_key_t *));
    st->value_ok = apr_pcalloc(p, max);
    st->counters = apr_pcalloc(p, max * sizeof(sr_shm_member_t *));
    st->cand = apr_pcalloc(p, max * sizeof(uint16_t));
    st->weights = apr_pcalloc(p, max * sizeof(uint32_t));
    sr_index_init(p, &st->index, max);
    sr_schedule_init(p, &st->schedule, max);
    st->shared = sr_shm_balancer(b->s->name, 1);
    return st;
}

static sr_balancer_state_t *sr_state(proxy_balancer *b, server_rec *s)
{
    sr_balancer_state_t *st = b->context;

    if (st) {
        return st;
    }
    /* A balancer child_init did not see: create it once, under a lock. */
#if APR_HAS_THREADS
    if (sr_child_mutex) {
        apr_thread_mutex_lock(sr_child_mutex);
    }
#endif
    if (!b->context && sr_child_pool) {
        b->context = sr_state_create(sr_child_pool, s, b);
    }
#if APR_HAS_THREADS
    if (sr_child_mutex) {
        apr_thread_mutex_unlock(sr_child_mutex);
    }
#endif
    return b->context;
}

/* The route a member is known by: its route= or the derived one that
 * check_config wrote into it (members added at run time get theirs here). */
static void sr_member_route(char *out, proxy_worker *w, const sr_key_t *key)
{
    if (w->s->route[0]) {
        apr_cpystrn(out, w->s->route, PROXY_WORKER_MAX_ROUTE_SIZE);
    }
    else {
        sr_route_derive(out, w->s->name_ex[0] ? w->s->name_ex : w->s->name,
                        key);
    }
}

static uint64_t sr_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

/*
 * Scan: the O(n) part, done at most once a second per process and when
 * the member list changes or a scheduled member turns out unusable.
 *
 * It refreshes the routes and the route index, gives members in error a
 * chance to recover (ap_proxy_retry_worker, as mod_proxy_balancer does) and
 * chooses who takes new sessions, like mod_proxy_balancer does for its own
 * methods: the lowest lbset with a usable member; in it the usable members
 * that are neither draining, hot standby nor hot spare, plus as many hot
 * spares as there are unusable members; when no such member exists in any
 * lbset, the usable hot standbys. The schedule is rebuilt only when that
 * set or a weight changed.
 */
static void sr_scan(sr_balancer_state_t *st, server_rec *s,
                    const sr_key_t *route_key)
{
    proxy_balancer *b = st->balancer;
    proxy_worker **workers = (proxy_worker **)b->workers->elts;
    int n = b->workers->nelts;
    int i, lbset, max_lbset = 0;
    uint32_t ncand = 0;
    uint64_t sig = 1469598103934665603ull;
    int from_standby = 0;

    if ((uint32_t)n > st->max) {
        n = (int)st->max;
    }
    sr_index_clear(&st->index);
    for (i = 0; i < n; i++) {
        proxy_worker *w = workers[i];
        char *slot = st->routes_buf + (apr_size_t)i * PROXY_WORKER_MAX_ROUTE_SIZE;

        sr_member_route(slot, w, route_key);
        st->routes[i] = slot;
        st->value_ok[i] = 0;        /* the route may have changed */
        sr_index_insert(&st->index, st->routes, i);
        if (!st->counters[i] || strcmp(st->counters[i]->route, slot)
            || strcmp(st->counters[i]->balancer, b->s->name)) {
            st->counters[i] = sr_shm_member(b->s->name, slot, 1);
        }
        if (!PROXY_WORKER_IS_USABLE(w) && sr_retry_worker) {
            sr_retry_worker("BALANCER", w, s);
        }
        if (w->s->lbset > max_lbset) {
            max_lbset = w->s->lbset;
        }
    }
    for (lbset = 0; lbset <= max_lbset && ncand == 0; lbset++) {
        int unusable = 0;
        for (i = 0; i < n; i++) {
            proxy_worker *w = workers[i];
            if (w->s->lbset != lbset || PROXY_WORKER_IS_STANDBY(w)
                || PROXY_WORKER_IS_SPARE(w)) {
                continue;
            }
            if (PROXY_WORKER_IS_USABLE(w) && !PROXY_WORKER_IS_DRAINING(w)) {
                st->cand[ncand] = (uint16_t)i;
                st->weights[ncand++] = (uint32_t)(w->s->lbfactor > 0
                                                  ? w->s->lbfactor : 1);
            }
            else {
                unusable++;
            }
        }
        for (i = 0; i < n && unusable > 0; i++) {
            proxy_worker *w = workers[i];
            if (w->s->lbset == lbset && PROXY_WORKER_IS_SPARE(w)
                && !PROXY_WORKER_IS_STANDBY(w) && PROXY_WORKER_IS_USABLE(w)
                && !PROXY_WORKER_IS_DRAINING(w)) {
                st->cand[ncand] = (uint16_t)i;
                st->weights[ncand++] = (uint32_t)(w->s->lbfactor > 0
                                                  ? w->s->lbfactor : 1);
                unusable--;
            }
        }
    }
    for (lbset = 0; lbset <= max_lbset && ncand == 0; lbset++) {
        for (i = 0; i < n; i++) {
            proxy_worker *w = workers[i];
            if (w->s->lbset == lbset && PROXY_WORKER_IS_STANDBY(w)
                && PROXY_WORKER_IS_USABLE(w) && !PROXY_WORKER_IS_DRAINING(w)) {
                st->cand[ncand] = (uint16_t)i;
                st->weights[ncand++] = (uint32_t)(w->s->lbfactor > 0
                                                  ? w->s->lbfactor : 1);
                from_standby = 1;
            }
        }
    }
    for (i = 0; i < (int)ncand; i++) {
        sig = sr_mix(sig, ((uint64_t)st->cand[i] << 32) | st->weights[i]);
    }
    sig = sr_mix(sig, (uint64_t)ncand);
    if (sig != st->signature || st->schedule.len == 0) {
        sr_schedule_build(&st->schedule, st->cand, st->weights, ncand);
        st->signature = sig;
    }
    st->from_standby = from_standby;
    st->nworkers = b->workers->nelts;
}

static void sr_scan_if_due(sr_balancer_state_t *st, request_rec *r,
                           const sr_key_t *route_key)
{
    if (st->nworkers != st->balancer->workers->nelts
        || r->request_time >= st->next_scan) {
        sr_scan(st, r->server, route_key);
        st->next_scan = r->request_time + SR_SCAN_INTERVAL;
    }
}

static int sr_takes_new(const proxy_worker *w)
{
    return PROXY_WORKER_IS_USABLE(w) && !PROXY_WORKER_IS_DRAINING(w);
}

/* ====================================================================
 * Per-request decision
 * ==================================================================== */

typedef struct {
    proxy_balancer *balancer;       /* the balancer the cookie was read for */
    int parsed;
    int cookie_member;              /* member the cookie names, or -1 */
    int cookie_legacy;              /* named in the stock recipe's format */
    sr_status_t cookie_status;      /* when cookie_member < 0: NEW/UNKNOWN/FORGED */
    proxy_worker *worker;           /* last elected */
    sr_shm_member_t *counter;
    sr_status_t status;
    int issue;                      /* a Set-Cookie goes out */
    const char *set_cookie;
    int filter_added;
    int error_response;             /* httpd answers with its own error */
    int decisions;                  /* finder calls that chose a member */
    int retry_issued;               /* sr_request_status redirected it */
    int is_retry;                   /* this request is that retry */
    int broken;                     /* the response was cut off */
    int ntried;                     /* members elected so far */
    proxy_worker *tried[SR_TRIED_MAX];
} sr_req_t;

/* A member elected earlier in this request failed (mod_proxy calls the
 * finder again only then): never hand it out twice in one request, even
 * when retry=0 would clear its error state at once. */
static int sr_tried(const sr_req_t *rq, const proxy_worker *w)
{
    int i;

    for (i = 0; i < rq->ntried; i++) {
        if (rq->tried[i] == w) {
            return 1;
        }
    }
    return 0;
}

static sr_req_t *sr_req(request_rec *r, proxy_balancer *b)
{
    sr_req_t *rq = ap_get_module_config(r->request_config, &sticky_route_module);

    if (!rq) {
        const sr_req_t *prev = r->prev
            ? ap_get_module_config(r->prev->request_config, &sticky_route_module)
            : NULL;
        rq = apr_pcalloc(r->pool, sizeof(*rq));
        ap_set_module_config(r->request_config, &sticky_route_module, rq);
        if (prev && prev->retry_issued) {
            /* sr_request_status retries here: the members that failed in
             * the first attempt are not elected again */
            memcpy(rq->tried, prev->tried, sizeof(rq->tried));
            rq->ntried = prev->ntried;
            rq->is_retry = 1;
        }
    }
    if (rq->balancer != b) {
        rq->balancer = b;
        rq->parsed = 0;
    }
    return rq;
}

typedef struct {
    sr_balancer_state_t *st;
    const sr_effective_t *eff;
    const char *balancer_name;
    sr_req_t *rq;
    int seen;                       /* cookies of our name looked at */
} sr_cookie_ctx_t;

/* One Cookie header: the first value that verifies and names a member
 * wins; otherwise the strongest complaint (forged over unknown) stays.
 * Returns 1 when a member was found. */
static int sr_scan_cookie_header(sr_cookie_ctx_t *ctx, const char *val)
{
    sr_span_t spans[SR_COOKIES_MAX];
    size_t n, i;

    n = sr_cookie_find(val, ctx->eff->cookie->name, spans, SR_COOKIES_MAX);
    for (i = 0; i < n && ctx->seen < SR_COOKIES_MAX; i++) {
        sr_value_t v;
        sr_verdict_t verdict;
        int32_t m;

        ctx->seen++;
        sr_value_parse(spans[i].ptr, spans[i].len, ctx->eff->tag_key != NULL,
                       &v);
        verdict = sr_value_verdict(&v, ctx->eff->tag_key, ctx->eff->legacy,
                                   ctx->balancer_name);
        if (verdict == SR_VERDICT_FORGED) {
            ctx->rq->cookie_status = SR_STATUS_FORGED;
            continue;
        }
        if (verdict != SR_VERDICT_ROUTE) {
            if (ctx->rq->cookie_status == SR_STATUS_NEW) {
                ctx->rq->cookie_status = SR_STATUS_UNKNOWN;
            }
            continue;
        }
        m = sr_index_find(&ctx->st->index, ctx->st->routes, v.route,
                          v.route_len);
        if (m < 0) {
            if (ctx->rq->cookie_status == SR_STATUS_NEW) {
                ctx->rq->cookie_status = SR_STATUS_UNKNOWN;
            }
            continue;
        }
        ctx->rq->cookie_member = m;
        ctx->rq->cookie_legacy = (v.kind == SR_VALUE_LEGACY);
        return 1;
    }
    return 0;
}

/* Every Cookie header counts (HTTP/1.1 clients may send several). */
static void sr_read_cookie(sr_balancer_state_t *st, request_rec *r,
                           const sr_effective_t *eff, sr_req_t *rq)
{
    const apr_array_header_t *h = apr_table_elts(r->headers_in);
    const apr_table_entry_t *e = (const apr_table_entry_t *)h->elts;
    sr_cookie_ctx_t ctx;
    int i;

    rq->parsed = 1;
    rq->cookie_member = -1;
    rq->cookie_legacy = 0;
    rq->cookie_status = SR_STATUS_NEW;
    ctx.st = st;
    ctx.eff = eff;
    ctx.balancer_name = st->balancer->s->name;
    ctx.rq = rq;
    ctx.seen = 0;
    for (i = 0; i < h->nelts; i++) {
        if (e[i].key && (e[i].key[0] == 'C' || e[i].key[0] == 'c')
            && !strcasecmp(e[i].key, "Cookie") && e[i].val
            && sr_scan_cookie_header(&ctx, e[i].val)) {
            return;
        }
    }
}

/* O(1): one atomic ticket, one table lookup (the finder has already done
 * sr_scan_if_due). A rescan happens only when the
 * scheduled member is no longer usable (then the same ticket is mapped onto
 * the new schedule); a member that already failed in this request costs
 * another ticket. Returns the member number or -1. */
static int sr_elect(sr_balancer_state_t *st, request_rec *r, sr_req_t *rq,
                    const sr_key_t *route_key)
{
    proxy_worker **workers = (proxy_worker **)st->balancer->workers->elts;
    apr_uint64_t ticket = 0;
    int attempt, fresh = 1;

    for (attempt = 0; attempt < 2 * SR_TRIED_MAX; attempt++) {
        int m;
        if (st->schedule.len == 0) {
            return -1;
        }
        if (fresh) {
            ticket = st->shared ? apr_atomic_add64(&st->shared->ticket, 1)
                                : st->local_ticket++;
        }
        m = sr_schedule_at(&st->schedule, ticket);
        if (m < st->balancer->workers->nelts && sr_takes_new(workers[m])) {
            if (!sr_tried(rq, workers[m])) {
                return m;
            }
            fresh = 1;
            if (rq->ntried >= (int)st->schedule.len) {
                return -1;      /* every scheduled member failed already */
            }
            continue;
        }
        sr_scan(st, r->server, route_key);
        st->next_scan = r->request_time + SR_SCAN_INTERVAL;
        fresh = 0;
    }
    return -1;
}

/* The cookie value naming member m: the route, signed with key when there
 * is one. Made once per member and key (and again after a scan), not per
 * request; like the routes, the slots live as long as the state. */
static const char *sr_member_value(sr_balancer_state_t *st, int m,
                                   const sr_key_t *key)
{
    char *slot = st->values_buf + (apr_size_t)m * SR_VALUE_BUF;

    if (!st->value_ok[m] || st->value_key[m] != key) {
        sr_value_write(slot, st->routes[m], key, st->balancer->s->name);
        st->value_key[m] = key;
        st->value_ok[m] = 1;
    }
    return slot;
}

/* Records the decision: environment, counters, and the Set-Cookie that the
 * output filter adds once the response is known to come from a member. */
static void sr_decide(request_rec *r, sr_balancer_state_t *st, sr_req_t *rq,
                      int m, sr_status_t status, int issue,
                      const sr_effective_t *eff)
{
    proxy_worker *w = ((proxy_worker **)st->balancer->workers->elts)[m];
    /* routes_buf slots are never freed and always end in NUL (the last
     * byte is never written), so the environment can point at them. */
    const char *route = st->routes[m];

    rq->worker = w;
    if (!sr_tried(rq, w) && rq->ntried < SR_TRIED_MAX) {
        rq->tried[rq->ntried++] = w;
    }
    rq->status = status;
    rq->counter = st->counters[m];
    if (rq->decisions++ == 0) {
        /* first decision of the request: nothing to replace */
        apr_table_addn(r->subprocess_env, SR_ENV_ROUTE, route);
        apr_table_addn(r->subprocess_env, SR_ENV_STATUS, sr_status_name(status));
    }
    else {
        apr_table_setn(r->subprocess_env, SR_ENV_ROUTE, route);
        apr_table_setn(r->subprocess_env, SR_ENV_STATUS, sr_status_name(status));
    }
    if (issue) {
        const char *value = sr_member_value(st, m, eff->tag_key);
        int https = !strcmp(ap_http_scheme(r), "https");
        rq->set_cookie = sr_cookie_format(r->pool, eff->cookie, value, https);
        apr_table_setn(r->subprocess_env, "BALANCER_ROUTE_CHANGED", "1");
        if (!rq->filter_added) {
            ap_add_output_filter_handle(sr_cookie_filter_handle, NULL, r,
                                        r->connection);
            rq->filter_added = 1;
        }
    }
    else if (rq->issue) {
        rq->set_cookie = NULL;
        apr_table_unset(r->subprocess_env, "BALANCER_ROUTE_CHANGED");
    }
    rq->issue = issue;
}

static void sr_undecided(request_rec *r, sr_req_t *rq)
{
    rq->worker = NULL;
    rq->counter = NULL;
    rq->issue = 0;
    rq->set_cookie = NULL;
    apr_table_unset(r->subprocess_env, SR_ENV_ROUTE);
    apr_table_unset(r->subprocess_env, "BALANCER_ROUTE_CHANGED");
}

/*
 * lbmethod=sticky: the decision.
 *
 *   cookie names a usable member       -> serve there        hit (no cookie;
 *                                          a stock-format cookie is upgraded)
 *   cookie names a hot standby while a
 *   regular member is usable           -> elect another      failover
 *   cookie names an unusable member    -> its redirect= member if usable,
 *                                         else elect another failover
 *                                         (nofailover=On: 503)
 *   cookie names no member, malformed  -> elect              unknown
 *   signed cookies, tag missing/wrong  -> elect              forged
 *   no cookie                          -> elect              new
 *
 * "Elect" is the round-robin schedule below (lbmethod=roundrobin), so new
 * sessions spread exactly like stateless requests. mod_proxy calls the
 * finder again in the same request when the elected member refuses the
 * connection; the cookie is parsed once, the member now in error no longer
 * qualifies, and the last decision is the one the response carries.
 */
static proxy_worker *sr_find_sticky(proxy_balancer *b, request_rec *r)
{
    sr_balancer_state_t *st = sr_state(b, r->server);
    proxy_worker **workers = (proxy_worker **)b->workers->elts;
    sr_effective_t eff;
    sr_req_t *rq;
    sr_status_t status;
    int m;

    if (!st) {
        return NULL;
    }
    sr_effective(r->server, st->dirconf, &eff);
    rq = sr_req(r, b);
    sr_scan_if_due(st, r, eff.route_key);
    if (!rq->parsed) {
        sr_read_cookie(st, r, &eff, rq);
    }
    m = rq->cookie_member;
    if (m >= 0 && m < b->workers->nelts) {
        proxy_worker *w = workers[m];

        int failed_here = sr_tried(rq, w);

        if (!failed_here && !PROXY_WORKER_IS_USABLE(w) && sr_retry_worker) {
            sr_retry_worker("BALANCER", w, r->server);
        }
        if (!failed_here && PROXY_WORKER_IS_USABLE(w)) {
            if (!PROXY_WORKER_IS_STANDBY(w) || st->from_standby) {
                sr_decide(r, st, rq, m, SR_STATUS_HIT, rq->cookie_legacy,
                          &eff);
                return w;
            }
        }
        else if (w->s->redirect[0]) {
            int32_t rm = sr_index_find(&st->index, st->routes, w->s->redirect,
                                       strlen(w->s->redirect));
            if (rm >= 0 && rm < b->workers->nelts
                && PROXY_WORKER_IS_USABLE(workers[rm])
                && !sr_tried(rq, workers[rm])) {
                sr_decide(r, st, rq, rm, SR_STATUS_FAILOVER, 1, &eff);
                return workers[rm];
            }
        }
        if ((failed_here || !PROXY_WORKER_IS_USABLE(w))
            && b->s->sticky_force) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "%s: member %s of route %s is unusable and "
                          "nofailover is on: 503", b->s->name,
                          w->s->name_ex, st->routes[m]);
            rq->status = SR_STATUS_FAILOVER;
            apr_table_setn(r->subprocess_env, SR_ENV_STATUS, "failover");
            sr_undecided(r, rq);
            return NULL;
        }
        status = SR_STATUS_FAILOVER;
    }
    else {
        status = rq->cookie_status;
    }
    m = sr_elect(st, r, rq, eff.route_key);
    if (m < 0) {
        sr_undecided(r, rq);
        return NULL;
    }
    sr_decide(r, st, rq, m, status, 1, &eff);
    return workers[m];
}

/*
 * lbmethod=roundrobin: exact and shared.
 *
 * Every process holds the same schedule table (see sr_schedule_build in
 * sr_core.c); a single 64-bit ticket in shared memory, taken with an atomic
 * fetch-and-add, says which slot serves. With equal weights and k usable
 * members, any N consecutive tickets give each member floor(N/k) or
 * ceil(N/k) requests, whatever the number of processes and threads.
 *
 *   members a b c d, equal weights, b disabled:   a c d a c d a c d ...
 *   loadfactor a=5 b=1 c=1:                       a a b a c a a ...
 */
static proxy_worker *sr_find_roundrobin(proxy_balancer *b, request_rec *r)
{
    sr_balancer_state_t *st = sr_state(b, r->server);
    sr_effective_t eff;
    sr_req_t *rq;
    int m;

    if (!st) {
        return NULL;
    }
    sr_effective(r->server, st->dirconf, &eff);
    rq = sr_req(r, b);
    sr_scan_if_due(st, r, eff.route_key);
    m = sr_elect(st, r, rq, eff.route_key);
    if (m < 0) {
        sr_undecided(r, rq);
        return NULL;
    }
    sr_decide(r, st, rq, m, SR_STATUS_ROUNDROBIN, 0, &eff);
    return ((proxy_worker **)b->workers->elts)[m];
}

static apr_status_t sr_reset(proxy_balancer *b, server_rec *s)
{
    (void)b;
    (void)s;
    return APR_SUCCESS;
}

static apr_status_t sr_age(proxy_balancer *b, server_rec *s)
{
    (void)b;
    (void)s;
    return APR_SUCCESS;
}

static const proxy_balancer_method sr_sticky_method = {
    SR_LBMETHOD_STICKY, &sr_find_sticky, NULL, &sr_reset, &sr_age, NULL
};

static const proxy_balancer_method sr_roundrobin_method = {
    SR_LBMETHOD_ROUNDROBIN, &sr_find_roundrobin, NULL, &sr_reset, &sr_age, NULL
};

/* ====================================================================
 * Response: the Set-Cookie, counters
 * ==================================================================== */

/* Adds the one Set-Cookie, naming the member elected last, when the
 * response is on its way; skips errors httpd generates itself. */
static apr_status_t sr_cookie_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    sr_req_t *rq = ap_get_module_config(r->request_config, &sticky_route_module);

    if (rq && rq->issue && rq->set_cookie && rq->worker && !rq->error_response) {
        apr_table_addn(r->headers_out, "Set-Cookie", rq->set_cookie);
    }
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

static void sr_insert_error_filter(request_rec *r)
{
    sr_req_t *rq = ap_get_module_config(r->request_config, &sticky_route_module);

    if (rq) {
        rq->error_response = 1;
    }
}

static int sr_log_transaction(request_rec *r)
{
    sr_req_t *rq;

    while (r->next) {
        r = r->next;    /* the request that produced the response */
    }
    rq = ap_get_module_config(r->request_config, &sticky_route_module);

    /* sent_bodyct: a response left, and (broken) it was not cut off in the
     * middle. mod_proxy_http closes the client
     * connection without one when a pooled backend connection breaks under
     * a request on a reused client connection (the client retries). */
    if (rq && rq->worker && rq->counter && !rq->error_response
        && !rq->broken && r->sent_bodyct
        && (unsigned)rq->status < SR_STATUS_COUNT) {
        apr_atomic_add64(&rq->counter->count[rq->status], 1);
    }
    return DECLINED;
}


/*
 * A pooled backend connection can break under a request before any byte of
 * the response comes back: the member is restarting or stopping and closed
 * it, or reset a connection still in its accept queue. mod_proxy then
 * answers 502 (or, on a reused client connection, closes the client
 * connection so that the client retries). For a request that is safe to
 * repeat - GET or HEAD without a body, nothing sent yet, not a retry itself
 * - the module retries it once, as an internal redirect that avoids the
 * members that failed, like nginx's proxy_next_upstream for idempotent
 * requests. The retry's decision (and Set-Cookie) is the response's.
 */
static int sr_request_status(int *status, request_rec *r)
{
    sr_req_t *rq = ap_get_module_config(r->request_config, &sticky_route_module);

    if (*status == DONE && rq) {
        /* mod_proxy_http returns DONE when the member broke off in the middle
         * of the response (or the client went away): not a served request */
        rq->broken = 1;
        return DECLINED;
    }

    if (*status != HTTP_BAD_GATEWAY || !rq || !rq->worker || rq->is_retry
        || rq->retry_issued || r->prev || r->main
        || r->sent_bodyct || r->connection->aborted
        /* with ProxyErrorOverride, a 502 may be the member's own answer */
        || apr_table_get(r->notes, "proxy-error-override")
        || (r->method_number != M_GET)
        || apr_table_get(r->headers_in, "Transfer-Encoding")
        || (apr_table_get(r->headers_in, "Content-Length")
            && strcmp(apr_table_get(r->headers_in, "Content-Length"), "0"))) {
        return DECLINED;
    }
    {
        sr_balancer_state_t *st = rq->balancer->context;
        sr_effective_t eff;
        sr_effective(r->server, st ? st->dirconf : NULL, &eff);
        if (!eff.retry) {
            return DECLINED;
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  "%s: no response from %s (route %s); retrying the %s "
                  "request once on another member", rq->balancer->s->name,
                  rq->worker->s->name_ex,
                  apr_table_get(r->subprocess_env, SR_ENV_ROUTE),
                  r->method);
    rq->retry_issued = 1;
    rq->issue = 0;              /* the retry issues its own cookie */
    ap_internal_redirect(r->unparsed_uri, r);
    *status = OK;
    return OK;
}

/* ====================================================================
 * Startup: validation, derived routes, shared memory
 * ==================================================================== */

typedef struct {
    proxy_balancer *b;
    const sr_cookie_spec_t *cookie;
} sr_seen_t;

/* check_config runs for `apache2 -t` too: every configuration mistake is
 * reported here, naming the directive. Members without route= get their
 * derived route before mod_proxy_balancer copies workers to shared memory. */
static int sr_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *main_s)
{
    server_rec *s;
    int ok = 1;

    (void)plog;
    sr_cookie_spec_default(pconf, &sr_default_cookie);
    for (s = main_s; s; s = s->next) {
        proxy_server_conf *pc = ap_get_module_config(s->module_config,
                                                     &proxy_module);
        apr_array_header_t *seen;
        proxy_balancer *bal;
        int i, j, k;

        if (!pc || !pc->balancers) {
            continue;
        }
        seen = apr_array_make(ptemp, 4, sizeof(sr_seen_t));
        bal = (proxy_balancer *)pc->balancers->elts;
        for (i = 0; i < pc->balancers->nelts; i++) {
            proxy_balancer *b = &bal[i];
            proxy_worker **w = (proxy_worker **)b->workers->elts;
            sr_effective_t eff;
            int sticky = (b->lbmethod == &sr_sticky_method);

            if (!sr_is_ours(b)) {
                continue;
            }
            sr_effective(s, sr_section_conf(ptemp, s, b), &eff);
            for (j = 0; j < b->workers->nelts; j++) {
                if (!w[j]->s->route[0]) {
                    char derived[SR_DERIVED_ROUTE_LEN + 1];
                    sr_route_derive(derived, w[j]->s->name_ex[0]
                                    ? w[j]->s->name_ex : w[j]->s->name,
                                    eff.route_key);
                    apr_cpystrn(w[j]->s->route, derived,
                                sizeof(w[j]->s->route));
                }
                if (!sticky) {
                    continue;
                }
                if (!sr_route_is_valid(w[j]->s->route,
                                       strlen(w[j]->s->route))) {
                    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                                 "BalancerMember %s route=%s in %s: "
                                 "lbmethod=sticky needs routes of 1-63 "
                                 "characters A-Z a-z 0-9 - _ ~",
                                 w[j]->s->name_ex, w[j]->s->route,
                                 b->s->name);
                    ok = 0;
                }
                for (k = 0; k < j; k++) {
                    if (!strcmp(w[k]->s->route, w[j]->s->route)) {
                        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                                     "BalancerMember route=%s is used twice "
                                     "in %s (%s and %s): lbmethod=sticky "
                                     "needs one route per member",
                                     w[j]->s->route, b->s->name,
                                     w[k]->s->name_ex, w[j]->s->name_ex);
                        ok = 0;
                    }
                }
            }
            if (!sticky) {
                continue;
            }
            if (b->s->sticky[0] || b->s->sticky_path[0]) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                             "ProxySet stickysession=%s on %s is not needed "
                             "with lbmethod=sticky: mod_sticky_route reads "
                             "and issues the route cookie itself (see "
                             "StickyRouteCookie); with stickysession set, "
                             "mod_proxy_balancer routes by that cookie "
                             "before lbmethod=sticky runs - remove it",
                             b->s->sticky[0] ? b->s->sticky : b->s->sticky_path,
                             b->s->name);
            }
            for (k = 0; k < seen->nelts; k++) {
                sr_seen_t *o = &APR_ARRAY_IDX(seen, k, sr_seen_t);
                if (o->b->s == b->s || !strcmp(o->b->s->name, b->s->name)) {
                    continue;
                }
                if (!strcmp(o->cookie->name, eff.cookie->name)
                    && !strcmp(o->cookie->path, eff.cookie->path)) {
                    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                                 "StickyRouteCookie: sticky balancers %s and "
                                 "%s in virtual host %s:%u both use cookie "
                                 "%s with Path=%s; a browser would send one "
                                 "cookie to both - give each its own "
                                 "StickyRouteCookie name or path in its "
                                 "<Proxy> section", o->b->s->name,
                                 b->s->name,
                                 s->server_hostname ? s->server_hostname : "*",
                                 (unsigned)s->port, eff.cookie->name,
                                 eff.cookie->path);
                    ok = 0;
                }
            }
            {
                sr_seen_t *n = apr_array_push(seen);
                n->b = b;
                n->cookie = eff.cookie;
            }
        }
    }
    return ok ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

static apr_status_t sr_shm_cleanup(void *data)
{
    (void)data;
    sr_shm = NULL;
    return APR_SUCCESS;
}

static int sr_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                          apr_pool_t *ptemp, server_rec *main_s)
{
    apr_pool_t *pglobal = main_s->process->pool;
    apr_shm_t *shm = NULL;
    server_rec *s;

    (void)plog;
    (void)ptemp;
    (void)pconf;
    sr_retry_worker = APR_RETRIEVE_OPTIONAL_FN(ap_proxy_retry_worker);
    sr_main_server = main_s;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    if (!sr_retry_worker) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, main_s,
                     "mod_sticky_route needs mod_proxy and mod_proxy_balancer "
                     "(LoadModule them before sticky_route_module)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* The segment lives in the process pool: created once, it keeps the
     * tickets and counters across graceful restarts. */
    apr_pool_userdata_get((void **)&shm, SR_SHM_USERDATA, pglobal);
    if (!shm) {
        apr_status_t rv = apr_shm_create(&shm, sizeof(sr_shm_t), NULL, pglobal);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, main_s,
                         "mod_sticky_route: cannot create shared memory of "
                         "%lu bytes", (unsigned long)sizeof(sr_shm_t));
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        memset(apr_shm_baseaddr_get(shm), 0, sizeof(sr_shm_t));
        ((sr_shm_t *)apr_shm_baseaddr_get(shm))->magic = SR_SHM_MAGIC;
        apr_pool_userdata_set(shm, SR_SHM_USERDATA, apr_pool_cleanup_null,
                              pglobal);
    }
    sr_shm = apr_shm_baseaddr_get(shm);
    apr_pool_cleanup_register(pconf, NULL, sr_shm_cleanup,
                              apr_pool_cleanup_null);

    for (s = main_s; s; s = s->next) {
        proxy_server_conf *pc = ap_get_module_config(s->module_config,
                                                     &proxy_module);
        proxy_balancer *bal;
        int i, j;

        if (!pc || !pc->balancers) {
            continue;
        }
        bal = (proxy_balancer *)pc->balancers->elts;
        for (i = 0; i < pc->balancers->nelts; i++) {
            proxy_worker **w = (proxy_worker **)bal[i].workers->elts;
            if (!sr_is_ours(&bal[i])) {
                continue;
            }
            if (!sr_shm_balancer(bal[i].s->name, 1)) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                             "mod_sticky_route: no shared slot left for %s; "
                             "its round robin is per process", bal[i].s->name);
            }
            for (j = 0; j < bal[i].workers->nelts; j++) {
                if (!sr_shm_member(bal[i].s->name, w[j]->s->route, 1)) {
                    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                                 "mod_sticky_route: no shared slot left for "
                                 "counters of %s route %s", bal[i].s->name,
                                 w[j]->s->route);
                }
            }
        }
    }
    ap_add_version_component(pconf, "mod_sticky_route/" SR_MODULE_VERSION);
    return OK;
}

static void sr_child_init(apr_pool_t *pchild, server_rec *main_s)
{
    server_rec *s;

    sr_child_pool = pchild;
#if APR_HAS_THREADS
    apr_thread_mutex_create(&sr_child_mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
#endif
    for (s = main_s; s; s = s->next) {
        proxy_server_conf *pc = ap_get_module_config(s->module_config,
                                                     &proxy_module);
        proxy_balancer *bal;
        int i;

        if (!pc || !pc->balancers) {
            continue;
        }
        bal = (proxy_balancer *)pc->balancers->elts;
        for (i = 0; i < pc->balancers->nelts; i++) {
            if (!bal[i].context) {
                bal[i].context = sr_state_create(pchild, s, &bal[i]);
            }
        }
    }
}

/* ====================================================================
 * Status endpoint: SetHandler sticky-route-status
 * ==================================================================== */

static const char *sr_label(apr_pool_t *p, const char *s)
{
    /* Prometheus label value escaping: backslash, quote, newline. */
    const char *c;
    char *out, *o;

    for (c = s; *c && *c != '\\' && *c != '"' && *c != '\n'; c++)
        ;
    if (!*c) {
        return s;
    }
    out = o = apr_palloc(p, strlen(s) * 2 + 1);
    for (c = s; *c; c++) {
        if (*c == '\\' || *c == '"') {
            *o++ = '\\';
            *o++ = *c;
        }
        else if (*c == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        }
        else {
            *o++ = *c;
        }
    }
    *o = '\0';
    return out;
}

typedef struct {
    const char *balancer;   /* without balancer:// */
    const char *route;
    int up;
    const char *method;
    sr_shm_member_t *counter;
} sr_status_row_t;

static int sr_status_handler(request_rec *r)
{
    server_rec *s;
    apr_hash_t *done;
    apr_array_header_t *rows;
    int json, i, k;

    if (strcmp(r->handler, SR_STATUS_HANDLER)) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        r->allowed = (AP_METHOD_BIT << M_GET);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    json = r->args && (!strcmp(r->args, "json")
                       || !strncmp(r->args, "json&", 5));
    done = apr_hash_make(r->pool);
    rows = apr_array_make(r->pool, 16, sizeof(sr_status_row_t));
    for (s = sr_main_server ? sr_main_server : r->server; s; s = s->next) {
        proxy_server_conf *pc = ap_get_module_config(s->module_config,
                                                     &proxy_module);
        proxy_balancer *bal;

        if (!pc || !pc->balancers) {
            continue;
        }
        bal = (proxy_balancer *)pc->balancers->elts;
        for (i = 0; i < pc->balancers->nelts; i++) {
            proxy_balancer *b = &bal[i];
            proxy_worker **w = (proxy_worker **)b->workers->elts;
            const char *name = b->s->name;

            if (!sr_is_ours(b) || apr_hash_get(done, name, APR_HASH_KEY_STRING)) {
                continue;
            }
            apr_hash_set(done, name, APR_HASH_KEY_STRING, name);
            if (!strncasecmp(name, BALANCER_PREFIX, sizeof(BALANCER_PREFIX) - 1)) {
                name += sizeof(BALANCER_PREFIX) - 1;
            }
            for (k = 0; k < b->workers->nelts; k++) {
                sr_status_row_t *row = apr_array_push(rows);
                char route[PROXY_WORKER_MAX_ROUTE_SIZE];

                apr_cpystrn(route, w[k]->s->route, sizeof(route));
                row->balancer = name;
                row->route = apr_pstrdup(r->pool, route);
                row->up = PROXY_WORKER_IS_USABLE(w[k]) ? 1 : 0;
                row->method = b->lbmethod->name;
                row->counter = sr_shm_member(b->s->name, route, 0);
            }
        }
    }

    if (json) {
        ap_set_content_type(r, "application/json");
        apr_table_setn(r->headers_out, "Cache-Control", "no-store");
        if (r->header_only) {
            return OK;
        }
        ap_rputs("{\"members\":[", r);
        for (i = 0; i < rows->nelts; i++) {
            sr_status_row_t *row = &APR_ARRAY_IDX(rows, i, sr_status_row_t);
            ap_rprintf(r, "%s{\"balancer\":\"%s\",\"route\":\"%s\","
                       "\"lbmethod\":\"%s\",\"up\":%d,\"requests\":{",
                       i ? "," : "", sr_label(r->pool, row->balancer),
                       sr_label(r->pool, row->route), row->method, row->up);
            for (k = 0; k < SR_STATUS_COUNT; k++) {
                ap_rprintf(r, "%s\"%s\":%" APR_UINT64_T_FMT, k ? "," : "",
                           sr_status_name((sr_status_t)k),
                           row->counter ? apr_atomic_read64(&row->counter->count[k])
                                        : (apr_uint64_t)0);
            }
            ap_rputs("}}", r);
        }
        ap_rputs("]}\n", r);
        return OK;
    }

    ap_set_content_type(r, "text/plain; version=0.0.4");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only) {
        return OK;
    }
    ap_rputs("# HELP sticky_route_requests_total Requests served, by balancer, "
             "member route and decision.\n"
             "# TYPE sticky_route_requests_total counter\n", r);
    for (i = 0; i < rows->nelts; i++) {
        sr_status_row_t *row = &APR_ARRAY_IDX(rows, i, sr_status_row_t);
        int sticky = !strcmp(row->method, SR_LBMETHOD_STICKY);
        for (k = 0; k < SR_STATUS_COUNT; k++) {
            if ((k == SR_STATUS_ROUNDROBIN) == sticky) {
                continue;
            }
            ap_rprintf(r, "sticky_route_requests_total{balancer=\"%s\","
                       "route=\"%s\",status=\"%s\"} %" APR_UINT64_T_FMT "\n",
                       sr_label(r->pool, row->balancer),
                       sr_label(r->pool, row->route),
                       sr_status_name((sr_status_t)k),
                       row->counter ? apr_atomic_read64(&row->counter->count[k])
                                    : (apr_uint64_t)0);
        }
    }
    ap_rputs("# HELP sticky_route_member_up 1 when the member is usable.\n"
             "# TYPE sticky_route_member_up gauge\n", r);
    for (i = 0; i < rows->nelts; i++) {
        sr_status_row_t *row = &APR_ARRAY_IDX(rows, i, sr_status_row_t);
        ap_rprintf(r, "sticky_route_member_up{balancer=\"%s\",route=\"%s\"} "
                   "%d\n", sr_label(r->pool, row->balancer),
                   sr_label(r->pool, row->route), row->up);
    }
    return OK;
}

/* ==================================================================== */

static void sr_register_hooks(apr_pool_t *p)
{
    static const char *const succ_balancer[] = { "mod_proxy_balancer.c", NULL };

    ap_register_provider(p, PROXY_LBMETHOD, SR_LBMETHOD_STICKY, "0",
                         &sr_sticky_method);
    ap_register_provider(p, PROXY_LBMETHOD, SR_LBMETHOD_ROUNDROBIN, "0",
                         &sr_roundrobin_method);
    ap_hook_check_config(sr_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(sr_post_config, NULL, succ_balancer, APR_HOOK_MIDDLE);
    ap_hook_child_init(sr_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(sr_insert_error_filter, NULL, NULL,
                                APR_HOOK_MIDDLE);
    ap_hook_log_transaction(sr_log_transaction, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(proxy, request_status, sr_request_status, NULL, NULL,
                      APR_HOOK_MIDDLE);
    ap_hook_handler(sr_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    sr_cookie_filter_handle = ap_register_output_filter(
        "STICKY_ROUTE_COOKIE", sr_cookie_filter, NULL, AP_FTYPE_CONTENT_SET);
}

AP_DECLARE_MODULE(sticky_route) = {
    STANDARD20_MODULE_STUFF,
    sr_create_conf,         /* per-directory (<Proxy>) config */
    sr_merge_conf,
    sr_create_server_conf,
    sr_merge_conf,
    sr_cmds,
    sr_register_hooks,
#ifdef AP_MODULE_FLAG_NONE
    AP_MODULE_FLAG_NONE
#endif
};
