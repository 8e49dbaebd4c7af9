/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_policy.h - the decisions of mod_sticky_route as pure functions.
 *
 * The glue (mod_sticky_route*.c) builds a plain view of a balancer's
 * members - one sr_member_t per BalancerMember, filled from the worker's
 * shared status - gathers the request's inputs into the structures below,
 * asks these functions once per question, and applies the answer. Nothing
 * here needs an httpd header; everything is unit-tested with check
 * (tests/unit). Declared by concern in the headers this one includes
 * (below); defined in sr_policy.c (routes, takers, cookies, the sticky
 * decision, election, waiting), sr_policy_request.c (the session id, the
 * Set-Cookie, the count), sr_policy_scan.c (slow start, in-flight
 * accounting), sr_policy_retry.c (retries) and sr_discover_policy.c;
 * the small per-request rules are inline in their headers.
 *
 * The decision table of one request, in the order a request meets it
 * (docs/DESIGN.md "One request" draws the same path through the glue):
 *
 *   question                                   decided by
 *   no usable member: wait, or 503?            sr_wait_decide
 *   is a scan of the balancer due first        sr_scan_due
 *     (member list changed, interval passed)?
 *   a retry: what it inherits from its         sr_retry_inherit
 *     failed attempt (tried set, retries + 1,
 *     the member it goes to first)?
 *   a retry sent back to the member that       sr_decide_retry_same
 *     broke: served there, before any other
 *     rule of the finder?
 *   what the application's session id says    sr_session_read_header,
 *     (StickyRouteSession)                       sr_session_read_url
 *   what the cookies say                       sr_cookie_read_header
 *     (inside: lifetimes, overload)              (sr_cookie_age,
 *                                                 sr_member_overloaded)
 *   lbmethod=sticky: serve, elect or refuse    sr_decide_sticky
 *   how the election goes: by the key, by      sr_elect_way
 *     load, by the schedule's turn (a
 *     rebalanced client goes by load)
 *   may the schedule's member serve            sr_elect_check,
 *                                              sr_elect_leastbusy
 *   after that verdict: serve, next ticket,    sr_elect_then (the loop
 *     rescan, or give up                         itself: sr_elect_run)
 *   by key: the map found stale - rescan and   sr_hash_then
 *     ask again (once), or take its answer?
 *   the Set-Cookie before the member answers   sr_cookie_early
 *     (an upgrade)?
 *   an HTTP/2 stream: does a broken pooled     sr_retry_stream_break_possible,
 *     connection come back as a 502 to         sr_retry_stream_break_as_502
 *     retry?
 *   the response leaves: is our cookie due;    sr_cookie_due,
 *     does it go out, or does the member's     sr_cookie_issue
 *     own cookie stand (warned once)?
 *   an attempt's status: does it enter the     sr_retry_candidate
 *     retry decision at all (502 / 503 with a
 *     member, not retried, not a subrequest;
 *     DONE: the response was cut off)?
 *   the member broke or was not reached:       sr_retry_allowed,
 *     retry, and on which member                 sr_retry_unreached_allowed,
 *                                                sr_retry_member
 *   the request ends: is its decision counted  sr_count_decision
 *
 * Beside requests, at each scan of a balancer:
 *   sr_route_choose      the route a member is known by
 *   sr_policy_takers     the members that take new sessions (and requests
 *                        of lbmethod=roundrobin)
 *   sr_slowstart_note    slow start: a member noted down, or back up
 *   sr_slowstart_member  its weight while it ramps up, and when to look
 *                        again (over sr_slowstart_weight, _ramping,
 *                        _rescan)
 * lbmethod=hash's key -> member map: sr_hash.h. Discovery's decisions:
 * sr_discover_policy.h.
 */
#ifndef SR_POLICY_H
#define SR_POLICY_H

#include "sr_policy_member.h"   /* the member view, tried set, routes, takers */
#include "sr_policy_sticky.h"   /* cookies, the sticky decision, Set-Cookie */
#include "sr_policy_elect.h"    /* election, waiting */
#include "sr_policy_scan.h"     /* a scan's decisions, slow start, in-flight */
#include "sr_policy_retry.h"    /* retries */
#include "sr_discover_policy.h" /* discovery, its health checks */

#endif /* SR_POLICY_H */
