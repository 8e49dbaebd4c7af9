/*
 * Copyright 2026 The mod_sticky_route authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * policy_fixture.c - the policy tests' shared view, takers, tried set,
 * in-flight counts and schedule (policy_fixture.h).
 */
#include "policy_fixture.h"

sr_member_t view[MAXM];
uint16_t takers[MAXM];
uint32_t weights[MAXM];
sr_tried_t tried;
uint32_t load[MAXM];
sr_schedule_t sched;

void members(uint32_t n)
{
    unit_members(view, MAXM, n, "m", 0);
}

const char *takers_of(uint32_t n, int *from_standby)
{
    static char out[MAXM + 1];
    uint32_t k, count = sr_policy_takers(view, n, takers, weights, from_standby);

    for (k = 0; k < count; k++) {
        out[k] = (char)('0' + takers[k]);
    }
    out[count] = '\0';
    return out;
}

void no_tried(void)
{
    sr_tried_init(&tried, MAXM);
}

void fresh(uint32_t n)
{
    members(n);
    no_tried();
}

void decision_is(const char *where, int line, const sr_decision_t *d, int action,
                 int member, int status, int issue)
{
    if (action != ANY)
        ck_assert_msg((int)d->action == action, "%s %d: action %d, not %d", where, line,
                      (int)d->action, action);
    if (member != ANY)
        ck_assert_msg((int)d->member == member, "%s %d: member %d, not %d", where, line,
                      (int)d->member, member);
    if (status != ANY)
        ck_assert_msg((int)d->status == status, "%s %d: status %d, not %d", where, line,
                      (int)d->status, status);
    if (issue != ANY)
        ck_assert_msg((int)d->issue == issue, "%s %d: issue %d, not %d", where, line,
                      (int)d->issue, issue);
}

void with_loads(uint32_t n, const uint32_t *values)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        load[i] = values[i];
        view[i].inflight = &load[i];
    }
}

void schedule_takers(uint32_t n)
{
    int fs;
    uint32_t count = sr_policy_takers(view, n, takers, weights, &fs);
    sr_schedule_init(pool, &sched, MAXM);
    sr_schedule_build(&sched, takers, weights, count);
}
