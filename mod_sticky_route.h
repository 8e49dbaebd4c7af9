/*
 * mod_sticky_route.h - shared declarations of the httpd glue.
 *
 * mod_sticky_route registers two mod_proxy_balancer lbmethod providers:
 *   lbmethod=sticky      - the ROUTEID cookie handled by the module alone
 *   lbmethod=roundrobin  - exact round robin through a shared atomic ticket
 * The pure logic lives in sr_core.c; this header describes the shared-memory
 * layout and the per-process state the glue keeps per balancer.
 */
#ifndef MOD_STICKY_ROUTE_H
#define MOD_STICKY_ROUTE_H

#include "httpd.h"
#include "http_config.h"
#include "mod_proxy.h"
#include "sr_core.h"

#define SR_MODULE_VERSION "1.0.0"

/* Names of the lbmethod providers and of the status handler. */
#define SR_LBMETHOD_STICKY     "sticky"
#define SR_LBMETHOD_ROUNDROBIN "roundrobin"
#define SR_STATUS_HANDLER      "sticky-route-status"

/* Environment variables set per request. */
#define SR_ENV_ROUTE   "STICKY_ROUTE"
#define SR_ENV_STATUS  "STICKY_ROUTE_STATUS"

/* ---- shared memory ----------------------------------------------------
 * One anonymous segment, created once by the parent in the process pool,
 * so it outlives graceful restarts: balancers own a ticket, members own a
 * counter per decision status. Entries are keyed by names and claimed with
 * a compare-and-swap (state 0 free, 1 being filled, 2 ready), so children
 * can add members that appear at run time (balancer-manager). */
#define SR_SHM_BALANCERS 512
#define SR_SHM_MEMBERS   4096
#define SR_SHM_MAGIC     0x53524d31u    /* "SRM1" */

enum { SR_SLOT_FREE = 0, SR_SLOT_FILLING = 1, SR_SLOT_READY = 2 };

typedef struct {
    volatile apr_uint32_t state;
    apr_uint32_t pad;
    volatile apr_uint64_t ticket;
    char name[PROXY_BALANCER_MAX_NAME_SIZE];
} sr_shm_balancer_t;

typedef struct {
    volatile apr_uint32_t state;
    apr_uint32_t pad;
    volatile apr_uint64_t count[SR_STATUS_COUNT];
    char balancer[PROXY_BALANCER_MAX_NAME_SIZE];
    char route[PROXY_WORKER_MAX_ROUTE_SIZE];
} sr_shm_member_t;

typedef struct {
    apr_uint32_t magic;
    apr_uint32_t pad;
    sr_shm_balancer_t balancers[SR_SHM_BALANCERS];
    sr_shm_member_t members[SR_SHM_MEMBERS];
} sr_shm_t;

/* ---- configuration -------------------------------------------------- */

typedef struct {
    const sr_cookie_spec_t *cookie;  /* NULL: not set here */
    const sr_key_t *tag_key;         /* NULL: no secret set here */
    const sr_key_t *route_key;
    int legacy;                      /* -1: not set here */
    int retry;                       /* -1: not set here */
} sr_conf_t;

/* What applies to one balancer in one server (innermost wins). */
typedef struct {
    const sr_cookie_spec_t *cookie;
    const sr_key_t *tag_key;         /* NULL: cookies are not signed */
    const sr_key_t *route_key;       /* key for derived routes */
    int legacy;                      /* accept stock ".route" cookies */
    int retry;                       /* retry GET/HEAD on a broken member */
} sr_effective_t;

/* ---- per-process balancer state -------------------------------------
 * Lives in proxy_balancer->context. mod_proxy_balancer calls the finder
 * with the balancer's thread mutex held, so one thread at a time per
 * process touches it; other processes share only the sr_shm_t entries. */
typedef struct {
    proxy_balancer *balancer;
    const sr_conf_t *dirconf;       /* from the matching <Proxy> sections */
    uint32_t max;                   /* capacity in members */
    int nworkers;                   /* balancer->workers->nelts at scan */
    apr_time_t next_scan;           /* periodic rescan (recoveries, edits) */
    uint64_t signature;             /* of the scheduled set and weights */
    int from_standby;               /* schedule made of hot standbys */
    char *routes_buf;               /* max * PROXY_WORKER_MAX_ROUTE_SIZE */
    const char **routes;            /* per member: route used in cookies */
    char *values_buf;               /* max * SR_VALUE_BUF: cookie values */
    const sr_key_t **value_key;     /* per member: key its value was made
                                       with (NULL: unsigned); stale when
                                       value_ok[i] is 0 */
    unsigned char *value_ok;
    sr_route_index_t index;         /* route -> member */
    sr_schedule_t schedule;
    uint16_t *cand;                 /* scratch for scan */
    uint32_t *weights;              /* scratch for scan */
    sr_shm_balancer_t *shared;      /* ticket; NULL: process-local */
    apr_uint64_t local_ticket;
    sr_shm_member_t **counters;     /* per member, may be NULL */
} sr_balancer_state_t;

#endif /* MOD_STICKY_ROUTE_H */
