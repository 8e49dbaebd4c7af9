"""Rebalancing idle clients (issue 10): `StickyRouteRebalance IDLE_SECONDS
[FACTOR]` (FACTOR default 1.25).

A client whose cookie says it has been idle at least IDLE_SECONDS (now -
LAST >= IDLE_SECONDS + R, R = max(1, IDLE_SECONDS/4) here) and whose member's
load (in-flight requests per loadfactor) is more than FACTOR x the mean load
of the usable members is elected again: decision `rebalanced`, a new cookie
naming the other member.  Active clients never move; nobody moves when the
loads are balanced.  Counted as sticky_route_requests_total{status=
"rebalanced"}.

With IDLE_SECONDS=1 (R=1) a client is idle enough after 2 whole seconds.
Member A is made busy with requests to its slow path (sent with A's cookie);
idle clients are a real one (pinned, then silent for 2.1 s) and made-up
unsigned cookies `a:FIRST:LAST` with old LAST (no waiting).
"""

import time

import pytest

from harness import (STATUS_CONF, HeldRequests, KeepAliveClient, SlowBackend, balancer, get,
                     parse_dated, request_counts, wait_until)

NAMES = {"a": "A", "b": "B"}


def body(a, b, rebalance="1", elect=None):
    inner = "StickyRouteRebalance %s" % rebalance
    if elect:
        inner += "\nStickyRouteElect %s" % elect
    return STATUS_CONF + balancer("app", [(a.url, "a"), (b.url, "b")], inner=inner)


def now():
    return int(time.time())


def idle_cookie(route, idle=50):
    t = now()
    return "ROUTEID=%s:%d:%d" % (route, t - 100, t - idle)


def assert_stays(r, route):
    """hit on its member (a Set-Cookie may refresh LAST, never move it)."""
    assert r.status == 200, r
    assert (r.served_by, r.sticky_status, r.sticky_route) == (NAMES[route], "hit", route), r
    if r.set_cookies:
        parsed = parse_dated(r.cookie_value())
        assert parsed and parsed[0] == route, r


def assert_moved_to(r, route, t_before):
    assert r.status == 200, r
    assert (r.served_by, r.sticky_status) == (NAMES[route], "rebalanced"), r
    parsed = parse_dated(r.cookie_value())
    assert parsed, "no dated cookie with the rebalanced answer: %r" % r
    assert parsed[0] == route and t_before - 1 <= parsed[1] <= now() + 1, \
        "new cookie %r: route %s, FIRST now expected" % (r.set_cookies, route)


def pinned_client(p, route, limit=10):
    """A keep-alive client whose new session landed on `route`."""
    for _ in range(limit):
        c = KeepAliveClient(p.port)
        r = c.request()
        assert r.sticky_status == "new", r
        if r.sticky_route == route:
            assert parse_dated(c.cookie), "rebalancing needs dated cookies: %r" % r.set_cookies
            return c
        c.close()
    pytest.fail("no new session reached %s" % route)


@pytest.mark.parametrize("elect", [None, "leastbusy"], ids=["default-election", "leastbusy"])
def test_idle_client_of_a_busy_member_moves_and_an_active_one_stays(make_proxy, elect):
    """The client moves to the other member whatever the election method:
    re-electing the overloaded member would move nobody."""
    a, b = SlowBackend("A", slow=2.8), SlowBackend("B", slow=2.8)
    p = make_proxy(body(a, b, elect=elect))
    idle = pinned_client(p, "a")
    idle.close()
    t_idle = time.monotonic()
    active = pinned_client(p, "a")
    held = HeldRequests(p.port, 3, "/slow", cookie="ROUTEID=a")
    a.wait_held(3)

    # made-up idle clients of A move to B; made-up active ones stay
    for _ in range(4):
        t = now()
        assert_moved_to(get(p.port, cookie=idle_cookie("a")), "b", t)
        assert_stays(get(p.port, cookie="ROUTEID=a:%d:%d" % (t - 100, t)), "a")
    # the active client, every 0.3 s, stays on A
    n = 0
    while time.monotonic() - t_idle < 2.1 and n < 20:
        n += 1
        assert_stays(active.request(), "a")
        time.sleep(0.3)
    # the real client, silent for 2.1 s, moves to B with a new cookie
    t = now()
    r = idle.request()
    assert_moved_to(r, "b", t)
    assert a.held == 3, "A's slow requests ended before the decisions"
    assert_stays(idle.request(), "b")
    assert_stays(active.request(), "a")
    for r in held.join():
        assert getattr(r, "status", None) == 200 and r.served_by == "A", r
    active.close()
    idle.close()

    def rebalanced():
        return sum(v for (_, s), v in request_counts(p.port, "app").items() if s == "rebalanced")
    try:
        wait_until(lambda: rebalanced() >= 5, 2, what="5 rebalanced counted")
    except TimeoutError:
        pass
    assert rebalanced() == 5, request_counts(p.port, "app")


def test_idle_clients_stay_when_no_member_is_busy(make_proxy):
    a, b = SlowBackend("A"), SlowBackend("B")
    p = make_proxy(body(a, b))
    for route in ("a", "b", "a", "b"):
        assert_stays(get(p.port, cookie=idle_cookie(route)), route)


def test_idle_clients_stay_when_the_loads_are_balanced(make_proxy):
    a, b = SlowBackend("A", slow=1.2), SlowBackend("B", slow=1.2)
    p = make_proxy(body(a, b))
    held = [HeldRequests(p.port, 2, "/slow", cookie="ROUTEID=%s" % x) for x in ("a", "b")]
    a.wait_held(2)
    b.wait_held(2)
    for route in ("a", "b", "a", "b"):
        assert_stays(get(p.port, cookie=idle_cookie(route)), route)
    assert (a.held, b.held) == (2, 2)
    for h in held:
        h.join()


def test_factor_sets_how_much_busier_a_member_must_be(make_proxy):
    """A holds 3, B none: the mean is 1.5; with FACTOR 3 (threshold 4.5) A
    is not overloaded and its idle clients stay."""
    a, b = SlowBackend("A", slow=1.2), SlowBackend("B", slow=1.2)
    p = make_proxy(body(a, b, rebalance="1 3"))
    held = HeldRequests(p.port, 3, "/slow", cookie="ROUTEID=a")
    a.wait_held(3)
    for _ in range(4):
        assert_stays(get(p.port, cookie=idle_cookie("a")), "a")
    assert a.held == 3
    held.join()


def test_rebalance_alone_makes_cookies_dated(make_proxy):
    a, b = SlowBackend("A"), SlowBackend("B")
    p = make_proxy(body(a, b, rebalance="8"))
    r = get(p.port)
    parsed = parse_dated(r.cookie_value())
    assert parsed and parsed[1] == parsed[2], r
    # R = 2 for IDLE_SECONDS=8: a cookie 5 s old is refreshed
    t = now()
    r = get(p.port, cookie="ROUTEID=a:%d:%d" % (t - 100, t - 5))
    assert_stays(r, "a")
    assert r.set_cookies and parse_dated(r.cookie_value())[1:3][0] == t - 100, r
