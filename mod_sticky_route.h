/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * mod_sticky_route.h - the module's names as other configuration sees them.
 *
 * mod_sticky_route registers three mod_proxy_balancer lbmethod providers:
 *   lbmethod=sticky      - the ROUTEID cookie handled by the module alone
 *   lbmethod=roundrobin  - exact round robin through a shared atomic ticket
 *   lbmethod=hash        - a request key's member (weighted rendezvous)
 * The decisions live in sr_policy.c, the cookie grammar, keys and the
 * schedule in the files under sr_core.h (all httpd-free); the httpd glue
 * is split by concern, see mod_sticky_route_private.h and docs/DESIGN.md.
 */
#ifndef MOD_STICKY_ROUTE_H
#define MOD_STICKY_ROUTE_H

#define SR_MODULE_VERSION "1.1.0"

/* Names of the lbmethod providers and of the status handler. */
#define SR_LBMETHOD_STICKY     "sticky"
#define SR_LBMETHOD_ROUNDROBIN "roundrobin"
#define SR_LBMETHOD_HASH       "hash"
#define SR_STATUS_HANDLER      "sticky-route-status"

/* Environment variables set per request. */
#define SR_ENV_ROUTE   "STICKY_ROUTE"
#define SR_ENV_STATUS  "STICKY_ROUTE_STATUS"
/* The stock variable mod_proxy_balancer sets when the route changes. */
#define SR_ENV_ROUTE_CHANGED "BALANCER_ROUTE_CHANGED"

#endif /* MOD_STICKY_ROUTE_H */
