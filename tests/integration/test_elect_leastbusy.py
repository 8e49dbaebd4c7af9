"""Election by load (issue 10): `StickyRouteElect roundrobin|leastbusy`.

With leastbusy a new session goes to the member with the fewest in-flight
requests per loadfactor, counted across every proxy child process; ties
follow the round-robin schedule, so idle members split new sessions exactly
as roundrobin does.  The default (and `roundrobin`) ignores the load.

Members here are Python backends that answer `/slow` after a few seconds:
requests held there (sent with the member's cookie, on fresh connections,
so both proxy children carry some) are the load; new sessions are GET /
without a cookie, answered at once.
"""

from collections import Counter

import pytest

from harness import (STATUS_CONF, HeldRequests, SlowBackend, balancer, get, member_values,
                     wait_until)

NAMES = {"a": "A", "b": "B"}


def body(a, b, elect="leastbusy", a_params="", b_params=""):
    inner = "StickyRouteElect %s" % elect if elect else ""
    return STATUS_CONF + balancer("app", [(a.url, "a", a_params), (b.url, "b", b_params)],
                                  inner=inner)


@pytest.fixture
def pair():
    return SlowBackend("A", slow=1.2), SlowBackend("B", slow=1.2)


def new_sessions(p, n):
    """n requests without a cookie, one after the other; the names of the
    members that served them (each a `new` with a cookie naming it)."""
    served = []
    for i in range(n):
        r = get(p.port)
        assert r.status == 200, (i, r)
        assert r.sticky_status == "new", (i, r)
        assert r.cookie_value() in NAMES and NAMES[r.cookie_value()] == r.served_by, (i, r)
        served.append(r.served_by)
    return served


def assert_alternating(served):
    assert all(x != y for x, y in zip(served, served[1:])), \
        "new sessions on idle members do not alternate: %s" % served
    counts = Counter(served)
    assert abs(counts["A"] - counts["B"]) <= 1 and set(counts) == {"A", "B"}, counts


def assert_held_on(results, name):
    for r in results:
        assert not isinstance(r, Exception), results
        assert (r.status, r.served_by, r.sticky_status) == (200, name, "hit"), r


def test_idle_members_split_new_sessions_exactly(pair, make_proxy):
    a, b = pair
    p = make_proxy(body(a, b))
    assert_alternating(new_sessions(p, 12))


def test_new_sessions_avoid_the_member_holding_slow_requests(pair, make_proxy):
    a, b = pair
    p = make_proxy(body(a, b))
    held = HeldRequests(p.port, 3, "/slow", cookie="ROUTEID=a")
    a.wait_held(3)
    served = new_sessions(p, 10)
    still_held = a.held
    assert served == ["B"] * 10, "new sessions while A holds 3 requests: %s" % served
    assert still_held == 3, "the slow requests ended before the new sessions did"
    assert_held_on(held.join(), "A")
    # idle again (the gauge back to 0: ~1 s allowed for the cleanups): exact alternation
    wait_until(lambda: set(member_values(p.port, "sticky_route_member_inflight", "app").values())
               == {0}, 1.5, interval=0.1, what="in-flight back to 0")
    assert_alternating(new_sessions(p, 8))


def test_load_is_inflight_per_loadfactor(pair, make_proxy):
    """A (loadfactor 4) holding 2 requests is less busy (0.5) than B
    (loadfactor 1) holding 1 (1.0): new sessions go to A."""
    a, b = pair
    p = make_proxy(body(a, b, a_params="loadfactor=4", b_params="loadfactor=1"))
    held_a = HeldRequests(p.port, 2, "/slow", cookie="ROUTEID=a")
    held_b = HeldRequests(p.port, 1, "/slow", cookie="ROUTEID=b")
    a.wait_held(2)
    b.wait_held(1)
    served = new_sessions(p, 6)
    assert (a.held, b.held) == (2, 1)
    assert served == ["A"] * 6, "new sessions with A 2/4 and B 1/1 in flight: %s" % served
    assert_held_on(held_a.join(), "A")
    assert_held_on(held_b.join(), "B")


@pytest.mark.parametrize("elect", [None, "roundrobin"], ids=["default", "roundrobin"])
def test_roundrobin_election_ignores_the_load(make_proxy, elect):
    a, b = SlowBackend("A", slow=1.2), SlowBackend("B", slow=1.2)
    p = make_proxy(body(a, b, elect=elect))
    held = HeldRequests(p.port, 3, "/slow", cookie="ROUTEID=a")
    a.wait_held(3)
    served = new_sessions(p, 10)
    assert a.held == 3
    assert_alternating(served)
    assert_held_on(held.join(), "A")
