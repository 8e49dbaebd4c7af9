/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain a
 * copy of the License at http://www.apache.org/licenses/LICENSE-2.0
 */

/*
 * sr_discover_policy.h - discovery's and its health checks' decisions
 * (sr_discover_policy.c); part of sr_policy.h (include that one; the
 * decision table of a request is its opening comment).
 */
#ifndef SR_DISCOVER_POLICY_H
#define SR_DISCOVER_POLICY_H

#include "sr_policy_member.h"

/* ---- discovery (StickyRouteDiscover) ------------------------------------------
 * Every interval the name is resolved again and the discovered members (the
 * slots discovery owns) are compared with the addresses it resolves to now:
 *
 *   a member whose address is in the answer        stays, or is ENABLEd again
 *                                                  (its address came back);
 *   a member whose address left the answer         is DISABLEd at once (its
 *                                                  clients fail over once) and
 *                                                  held: its slot stays its
 *                                                  own for hold microseconds;
 *   a member being rewritten for a new address     SETTLEs (stopped, so that
 *                                                  every child process sees
 *                                                  its new address first), then
 *                                                  is ENABLEd;
 *   an address without a member                    takes a never-used slot
 *                                                  (ADD), else the slot of the
 *                                                  member gone longest past its
 *                                                  hold (REUSE), else gets
 *                                                  none (NO_SLOT: counted).
 *
 * Example, hold 10 s, slots A B free, now t=100 s: have A=10.0.0.1 (in the
 * answer) B=10.0.0.2 (gone since t=85); want 10.0.0.1, 10.0.0.3 -> A KEEP,
 * B REUSE for 10.0.0.3 (gone 15 s > 10 s). Had B gone at t=95, 10.0.0.3
 * would be NO_SLOT until t=105.
 *
 * No answer (want NULL: a DNS failure) changes nothing: a DNS outage never
 * empties the pool; an empty answer (want not NULL, nwant 0: the name is
 * gone) disables every member. Addresses are assumed distinct; the plan is
 * a pure function of its inputs (times in microseconds). */
typedef enum {
    SR_DISC_KEEP = 0,
    SR_DISC_ADD,            /* want[j]: a new member in a never-used slot */
    SR_DISC_ENABLE,         /* have[i]: its address is back, or it settled */
    SR_DISC_DISABLE,        /* have[i]: its address left the answer */
    SR_DISC_NO_SLOT,        /* want[j]: no slot for it now */
    SR_DISC_REUSE,          /* have[i]: its slot goes to want[target[i]];
                               want[j]: it takes a reused slot */
    SR_DISC_SETTLE          /* have[i]: rewritten, not yet enabled */
} sr_disc_action_t;

typedef struct {
    const char *addr;       /* the member's address, as the resolver gives it */
    int enabled;            /* not disabled by discovery */
    int64_t gone_since;     /* when its address left the answer; 0: it is in
                               the answer (or was never seen to leave) */
    int64_t settle_until;   /* rewritten for a new address: enabled from this
                               time on; 0: not settling */
} sr_disc_member_t;

typedef struct {
    uint32_t add, enable, disable, no_slot, reuse, held, settling;
    uint32_t members;       /* members with an address in the answer after
                               the plan (enabled, or settling) */
} sr_disc_counts_t;

/* have_action[i] (and have_target[i] for REUSE) for each member,
 * want_action[j] for each address. free_slots: never-used slots. */
void sr_discover_plan(const sr_disc_member_t *have, uint32_t nhave,
                      const char *const *want, uint32_t nwant,
                      uint32_t free_slots, int64_t now, int64_t hold,
                      sr_disc_action_t *have_action, uint32_t *have_target,
                      sr_disc_action_t *want_action, sr_disc_counts_t *counts);

/* Whether a "beyond max=" warning is due: at every interval in which
 * addresses are left without a slot, at most once per period (the first
 * at once). last: when it was last given, 0: never. */
int sr_discover_warn_due(uint32_t unplaced, int64_t now, int64_t last,
                         int64_t period);

/* SRV records as members (RFC 2782): the lowest priority takes traffic
 * (lbset 0), each higher distinct priority is the next lbset (used only
 * when every member of the lower ones is unusable); weights become load
 * factors: as they are when none is over 100 (0 counts as 1), else scaled
 * so that the largest is 100 (at least 1 each).
 * Example: priorities 10 10 20, weights 5 0 300 -> lbsets 0 0 1, load
 * factors 2 1 100 (scaled: 5*100/300 rounds to 2, 0 -> 1). */
void sr_srv_shape(const uint16_t *priority, const uint16_t *weight,
                  uint32_t n, int *lbset, int *lbfactor);

/* When the next resolution is due, in microseconds from now: with a fixed
 * interval, that interval; with interval=ttl, the answer's shortest TTL
 * (seconds) clamped to [SR_TTL_MIN, SR_TTL_MAX] (and SR_TTL_RETRY after a
 * failure or an answer without records). */
#define SR_TTL_MIN   1
#define SR_TTL_MAX   300
#define SR_TTL_RETRY 5
int64_t sr_discover_next(int ttl_mode, int64_t interval, uint32_t min_ttl,
                         int answered);

/* ---- health checks of discovered members (issue 15, design R) -------------
 * StickyRouteDiscover's hc* parameters are checked by the module itself
 * (mod_sticky_route_hc.c), at each member's current address, instead of by
 * mod_proxy_hcheck. The decisions, as mod_proxy_hcheck makes them except
 * that passes and fails are counted consecutively: */

/* Whether a member's next check is due: none of its checks is in flight and
 * the last one started at least interval ago (last 0: never checked, or its
 * slot was given to another address since).
 * Example: last 10 s, interval 5 s: due from 15 s on, not at 14.9 s; never
 * while one is in flight. */
int sr_hc_due(int64_t now, int64_t last, int64_t interval, int in_flight);

typedef enum {
    SR_HC_KEEP = 0,         /* the flags stay as they are */
    SR_HC_SET,              /* down: set the health-check failure flag */
    SR_HC_CLEAR             /* up: clear it (and the in-error flag) */
} sr_hc_verdict_t;

/* One check's outcome counted. down: the member has the health-check
 * failure flag or is in error now; passed: this check passed. *pcount and
 * *fcount are the member's consecutive passes (while down) and fails (while
 * up); passes / fails the thresholds (hcpasses=, hcfails=; 0 acts as 1).
 * A member up: a fail counts (a pass resets the count), the fails-th in a
 * row sets the flag. A member down: a pass counts (a fail resets it), the
 * passes-th in a row clears the flag. Both counts restart at every verdict.
 * Example: fails=2, up: fail (1), pass (0), fail (1), fail -> SR_HC_SET. */
sr_hc_verdict_t sr_hc_count(int down, int passed, int *pcount, int *fcount,
                            int passes, int fails);

/* The status of an HTTP response that starts with buf[0..len): 100-999
 * when buf holds a whole status line "HTTP/1.x NNN ..." (ended by LF), 0
 * when more bytes are needed, -1 when it is not an HTTP/1.x response. */
int sr_hc_status(const char *buf, size_t len);

/* After a response's head (buf[0..len) holds it from its status line on):
 * -1 while its end (an empty line) is not in buf; else the number of body
 * bytes still to read after buf: 0 for a HEAD request, a 1xx, 204 or 304
 * status, or a body that is not delimited by a Content-Length (chunked, or
 * read to the connection's end: the check does not wait for it), else
 * Content-Length minus the body bytes already in buf (at least 0). */
long sr_hc_body_left(const char *buf, size_t len, int head, int status);

/* A check passes on a 2xx or 3xx status (mod_proxy_hcheck's default). */
int sr_hc_status_passes(int status);

/* The check request: "METHOD URI HTTP/1.x" (OPTIONS: "OPTIONS *"; uri
 * NULL or empty: "/"), Host (an IPv6 address in brackets), and
 * "Connection: close" (the check reads to the end of the response). Into
 * out[cap]; returns its length, or 0 when it does not fit. */
size_t sr_hc_request(char *out, size_t cap, const char *method,
                     const char *uri, int http11, const char *host,
                     unsigned port);

#endif /* SR_DISCOVER_POLICY_H */
