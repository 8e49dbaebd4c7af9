/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * policy_fixture.h - what the policy's unit tests (test_sr_policy*.c)
 * share: a view of members, the takers of a view, a tried set, in-flight
 * counts and a schedule, one each (a test sets up what it reads).
 */
#ifndef POLICY_FIXTURE_H
#define POLICY_FIXTURE_H

#include <limits.h>
#include <stdint.h>

#include "sr_policy.h"
#include "unit_util.h"

#define MAXM 16

/* An expected value a test step does not check. */
#define ANY INT_MIN

extern sr_member_t view[MAXM];
extern uint16_t takers[MAXM];
extern uint32_t weights[MAXM];
extern sr_tried_t tried;
extern uint32_t load[MAXM];
extern sr_schedule_t sched;

/* n regular usable members of weight 1, lbset 0, routes m0 m1 ... */
void members(uint32_t n);
/* the takers as a string of member numbers, e.g. "013" */
const char *takers_of(uint32_t n, int *from_standby);
/* an empty tried set */
void no_tried(void);
/* n regular usable members (routes m0 m1 ...), nobody tried */
void fresh(uint32_t n);
/* each expected field of the decision *d but those given as ANY checked; a
 * failure names the step (where and line: "line", __LINE__ or a table row's
 * why and number) and the field */
void decision_is(const char *where, int line, const sr_decision_t *d, int action,
                 int member, int status, int issue);
/* members 0..n-1 carry the in-flight counts values[0..n-1] */
void with_loads(uint32_t n, const uint32_t *values);
/* sched: the takers of the first n members (sr_policy_takers) */
void schedule_takers(uint32_t n);

#endif
