"""Slow start (issue 10): `StickyRouteSlowStart SECONDS` (default 0).

A member that joins (added through balancer-manager, enabled again after
being disabled there, new at a graceful restart) or comes back from an
error takes a share of new sessions growing linearly from 0 to its weight
over SECONDS; its sticky clients are served as usual.  The gauge
`sticky_route_member_slowstart_share{server,balancer,route}` is in [0, 1],
1 when the member is not ramping.  Members present at the first start do
not ramp.

The module notices a member's change at its next scan (at most a second
later), so the checks "right after" a change are made 1.1-2 s after it,
with new sessions sent meanwhile (they drive the scans).
"""

import time
from collections import Counter

import pytest

from harness import (MANAGER_CONF, STATUS_CONF, BalancerManager, SlowBackend, balancer,
                     get, graceful_restart, member_values, status_json_members, wait_until)

METRIC = "sticky_route_member_slowstart_share"
RAMP = 6


def body(members, ramp=RAMP):
    return (STATUS_CONF + MANAGER_CONF
            + balancer("app", members, proxyset="lbmethod=sticky growth=4",
                       inner="StickyRouteSlowStart %d" % ramp))


def shares(p):
    return member_values(p.port, METRIC, "app")


def new_session(p):
    r = get(p.port)
    assert r.status == 200, r
    assert r.sticky_status == "new", r
    return r


def new_sessions_split(p, n):
    served = [new_session(p).served_by for _ in range(n)]
    return served


def assert_even_alternation(served, names):
    assert all(x != y for x, y in zip(served, served[1:])), served
    assert Counter(served) == {n: len(served) // len(names) for n in names}, Counter(served)


def pinned_to(p, name, limit=10):
    for _ in range(limit):
        r = new_session(p)
        if r.served_by == name:
            return r.cookie_value()
    pytest.fail("no new session reached %s" % name)


def ramp_window(p, watched, start, seconds=2.0, pinned=None, pinned_name=None,
                sample_after=1.1):
    """New sessions until `seconds` after `start` (the change, a monotonic
    time; one every ~50 ms); from `sample_after` s after it on, samples the
    watched member's gauge.  Every 5th round, the pinned client's
    request must be a hit on its member without Set-Cookie.
    Returns (Counter of members serving new sessions, gauge samples)."""
    served, samples = Counter(), []
    i = 0
    while time.monotonic() - start < seconds and i < 200:
        i += 1
        served[new_session(p).served_by] += 1
        if time.monotonic() - start >= sample_after and len(samples) < 4:
            samples.append(shares(p).get(watched))
        if pinned and i % 5 == 0:
            r = get(p.port, cookie="ROUTEID=" + pinned)
            assert (r.status, r.served_by, r.sticky_status, r.set_cookies) == \
                (200, pinned_name, "hit", []), "pinned client during the ramp: %r" % r
        time.sleep(0.05)
    return served, samples


def assert_small_minority(served, name, samples):
    total = sum(served.values())
    assert total >= 10, served
    assert served[name] <= 0.3 * total, \
        "%s got %d of %d new sessions in the first 2 s of its ramp" % (name, served[name], total)
    assert samples and all(s is not None and 0.0 <= s < 0.5 for s in samples), \
        "%s's %s right after joining: %s" % (name, METRIC, samples)


def test_members_present_at_start_do_not_ramp(backends, make_proxy):
    p = make_proxy(body([(backends["alpha"], "s1"), (backends["bravo"], "s2")]))
    assert member_values(p.port, METRIC, "app", validate=True) == {"s1": 1.0, "s2": 1.0}
    json_shares = {m["route"]: m.get("slowstart_share") for m in status_json_members(p.port)}
    assert_even_alternation(new_sessions_split(p, 10), ["alpha", "bravo"])
    assert shares(p) == {"s1": 1.0, "s2": 1.0}
    assert json_shares == {"s1": 1, "s2": 1} or json_shares == {"s1": None, "s2": None}, \
        json_shares


def test_default_is_no_slow_start(backends, make_proxy):
    p = make_proxy(STATUS_CONF + MANAGER_CONF
                   + balancer("app", [(backends["alpha"], "s1"), (backends["bravo"], "s2")]))
    bm = BalancerManager(p.port)
    bm.edit_worker("app", backends["bravo"].url, [("w_status_D", "1")])
    for _ in range(6):
        assert new_session(p).served_by == "alpha"
    time.sleep(1.2)
    bm.edit_worker("app", backends["bravo"].url, [("w_status_D", "0")])
    time.sleep(1.2)
    assert shares(p) == {"s1": 1.0, "s2": 1.0}
    assert_even_alternation(new_sessions_split(p, 10), ["alpha", "bravo"])


def test_member_enabled_again_ramps_up_and_keeps_its_sticky_clients(backends, make_proxy):
    alpha, bravo = backends["alpha"], backends["bravo"]
    p = make_proxy(body([(alpha, "s1"), (bravo, "s2")]))
    bm = BalancerManager(p.port)
    pinned = pinned_to(p, "bravo")
    assert pinned == "s2"

    bm.edit_worker("app", bravo.url, [("w_status_D", "1")])
    t = time.monotonic()
    while time.monotonic() - t < 1.2:           # the module sees it disabled
        assert new_session(p).served_by == "alpha"
        time.sleep(0.1)

    bm.edit_worker("app", bravo.url, [("w_status_D", "0")])
    t_on = time.monotonic()
    served, samples = ramp_window(p, "s2", t_on, pinned=pinned, pinned_name="bravo")
    assert_small_minority(served, "bravo", samples)
    assert shares(p)["s1"] == 1.0

    # the share grows linearly to 1 over the ramp (6 s)
    ramp = []

    def full():
        new_session(p)
        s = shares(p)["s2"]
        ramp.append((time.monotonic() - t_on, s))
        return s >= 1.0
    wait_until(full, t_on + RAMP + 3.0 - time.monotonic(), interval=0.25,
               what="s2's slow-start share to reach 1")
    for (e1, s1), (e2, s2) in zip(ramp, ramp[1:]):
        assert s2 >= s1, "the share went down: %s" % ramp
    for e, s in ramp[:-1]:
        assert 0.0 <= s <= (e + 1.1) / RAMP, "share %.3f at %.1f s: faster than linear" % (s, e)
        assert s >= (e - 2.5) / RAMP, "share %.3f at %.1f s: not growing" % (s, e)
    assert ramp[-1][0] >= RAMP - 1.1, "full share after %.1f s only: %s" % (ramp[-1][0], ramp)

    time.sleep(1.1)     # the schedule follows at the next scan
    assert_even_alternation(new_sessions_split(p, 10), ["alpha", "bravo"])
    r = get(p.port, cookie="ROUTEID=" + pinned)
    assert (r.served_by, r.sticky_status, r.set_cookies) == ("bravo", "hit", []), r


def test_member_added_through_balancer_manager_ramps(backends, make_proxy):
    p = make_proxy(body([(backends["alpha"], "s1"), (backends["bravo"], "s2")]))
    BalancerManager(p.port).add_worker("app", backends["charlie"].url)
    served, samples = Counter(), []
    route = None
    start = time.monotonic()
    while time.monotonic() - start < 2.0:
        served[new_session(p).served_by] += 1
        if route is None:
            routes = [m["route"] for m in status_json_members(p.port)]
            added = [x for x in routes if x not in ("s1", "s2")]
            route = added[0] if added else None
        if route and time.monotonic() - start >= 1.1 and len(samples) < 4:
            samples.append(shares(p).get(route))
        time.sleep(0.05)
    assert route, "the added member is not in the status output"
    assert_small_minority(served, "charlie", samples)
    s = shares(p)
    assert (s["s1"], s["s2"]) == (1.0, 1.0), s


def test_member_new_at_a_graceful_restart_ramps_and_the_others_do_not(backends, make_proxy):
    """The new generation's children start once the old ones have left
    their slots (0-2 s here): a 10 s ramp keeps the share under 0.5 for the
    1.5 s observed after that, wherever the ramp is counted from."""
    two = [(backends["alpha"], "s1"), (backends["bravo"], "s2")]
    p = make_proxy(body(two, ramp=10))
    assert_even_alternation(new_sessions_split(p, 4), ["alpha", "bravo"])
    t_signal = time.monotonic()
    graceful_restart(p, body(two + [(backends["charlie"], "s3")], ramp=10))
    t_on = time.monotonic()
    assert t_on - t_signal < 3.0, "the graceful restart took %.1f s" % (t_on - t_signal)
    served, samples = ramp_window(p, "s3", t_on, seconds=1.5, sample_after=0.3)
    assert_small_minority(served, "charlie", samples)
    s = shares(p)
    assert (s["s1"], s["s2"]) == (1.0, 1.0), s


def test_member_back_from_an_error_ramps_and_serves_its_sticky_clients(backends, make_proxy):
    b = SlowBackend("B")
    port = b.port
    p = make_proxy(body([(backends["alpha"], "s1"), (b.url, "s2", "retry=1")]))
    pinned = pinned_to(p, "B")
    b.stop()
    r = get(p.port, cookie="ROUTEID=" + pinned)
    assert (r.served_by, r.sticky_status) == ("alpha", "failover"), r
    t = time.monotonic()
    while time.monotonic() - t < 1.2:           # the module sees it in error
        assert new_session(p).served_by == "alpha"
        time.sleep(0.1)
    b2 = SlowBackend("B", port=port)

    def back():
        new_session(p)
        r = get(p.port, cookie="ROUTEID=" + pinned)
        return r if r.served_by == "B" else None
    r = wait_until(back, 4, interval=0.1, what="s2 serving its sticky client again")
    t_on = time.monotonic()
    assert (r.status, r.sticky_status, r.set_cookies) == (200, "hit", []), r
    served, samples = ramp_window(p, "s2", t_on, pinned=pinned, pinned_name="B")
    assert_small_minority(served, "B", samples)
    assert b2.requests >= 1
