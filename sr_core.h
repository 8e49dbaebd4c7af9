/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_core.h - the httpd-free core of mod_sticky_route.
 *
 * Everything here needs APR and apr-util only, never an httpd header, so the
 * unit tests (check) and the fuzzer link it alone. One header per concern,
 * this one includes them all:
 *
 *   sr_text.h      sr_text.c         decision names, numbers, escaping
 *   sr_key.h       sr_key.c          keys, secret files, derived routes, tags
 *   sr_cookie.h    sr_cookie.c       Cookie header, cookie values, session ids
 *                  sr_cookie_spec.c  StickyRouteCookie grammar, Set-Cookie
 *   sr_schedule.h  sr_schedule.c     smooth weighted round-robin schedule
 *                  sr_route_index.c  route -> member index
 *
 * The decisions built on them: sr_policy.h; lbmethod=hash: sr_hash.h.
 */
#ifndef SR_CORE_H
#define SR_CORE_H

#include "sr_text.h"
#include "sr_key.h"
#include "sr_cookie.h"
#include "sr_schedule.h"

#endif /* SR_CORE_H */
