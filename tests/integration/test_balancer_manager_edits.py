"""Members added and edited at run time through balancer-manager
(mod_proxy_balancer's `SetHandler balancer-manager`, edits POSTed with the
balancer's nonce).  The module rescans its members once a second, so every
check starts after 1.5 s.

- A member added without a route gets a derived route: its new sessions get a
  cookie naming it, the cookie is a hit on it, the status endpoint shows the
  same route.
- A route edited to a value a cookie cannot carry, or to a value another
  member already has, is replaced by the member's derived route (with a
  warning in the error log); cookies keep sticking.
- A route edited to a valid new value is used as is.
"""

import json
import re
import time

import pytest

from harness import (DERIVED_ROUTE_RE, MANAGER_CONF, STATUS_CONF, BalancerManager,
                     assert_valid_exposition, balancer, get, wait_until)
from harness import STATUS_PATH as STATUS
RESCAN = 1.5          # the module rescans at most once a second
VALID_ROUTE_RE = re.compile(r"^[A-Za-z0-9_~-]{1,63}$")


def config(backends, lbmethod="sticky"):
    return (MANAGER_CONF + STATUS_CONF
            + balancer("app", [(backends["alpha"], "s1"), (backends["bravo"], "s2")],
                       proxyset="lbmethod=%s growth=4" % lbmethod))


@pytest.fixture
def proxy(backends, make_proxy):
    p = make_proxy(config(backends))
    p.manager = BalancerManager(p.port)
    return p


def new_session_on(p, name, timeout=3.0):
    """Sends requests without a cookie until one is served by backend `name`
    (bounded in count and time); returns that response."""
    deadline = time.monotonic() + timeout
    seen = []
    for _ in range(60):
        r = get(p.port)
        assert r.status == 200, r
        assert r.sticky_status == "new", r
        if r.served_by == name:
            return r
        seen.append(r.served_by)
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    pytest.fail("no new session reached %s within %.1fs; served by %s" % (name, timeout, seen))


def assert_hits(p, value, name, n=6):
    """The cookie value is a hit on backend `name` (fresh connections, both
    proxy children), nothing re-issued."""
    for i in range(n):
        r = get(p.port, cookie="ROUTEID=" + value)
        assert (r.status, r.served_by, r.sticky_status, r.set_cookies) == \
            (200, name, "hit", []), "request %d with ROUTEID=%s: %r" % (i, value, r)


def status_routes(p):
    r = get(p.port, STATUS + "?json")
    assert r.status == 200, r
    return [m["route"] for m in json.loads(r.body.decode("utf-8"))["members"]]


def wait_status_route(p, route, timeout=3.0):
    """Polls the status endpoint until it lists `route`; returns the routes
    last seen (the caller asserts)."""
    last = {"routes": None}

    def shown():
        last["routes"] = status_routes(p)
        return route in last["routes"]
    try:
        wait_until(shown, timeout, interval=0.1, what="route %s in the status" % route)
    except TimeoutError:
        pass
    return last["routes"]


def test_member_added_without_route_gets_a_derived_route_shown_in_status(backends, proxy):
    url = backends["charlie"].url
    proxy.manager.add_worker("app", url)
    time.sleep(RESCAN)
    r = new_session_on(proxy, "charlie")
    value = r.cookie_value()
    assert value is not None and DERIVED_ROUTE_RE.match(value), \
        "cookie of the added member is not a derived route: %r" % r.set_cookies
    assert r.sticky_route == value, r
    assert_hits(proxy, value, "charlie")
    routes = wait_status_route(proxy, value)
    assert value in routes, \
        "status endpoint does not show the added member's route %r: routes %r" % (value, routes)
    assert all(VALID_ROUTE_RE.match(x) for x in routes), routes
    assert sorted(routes) == sorted(["s1", "s2", value]), routes
    # the Prometheus text names it too
    wait_exposition_routes(proxy, ["s1", "s2", value])


def test_two_members_added_without_route_give_no_duplicate_series(backends, proxy):
    for name in ("charlie", "delta"):
        proxy.manager.add_worker("app", backends[name].url)
    time.sleep(RESCAN)
    # both take new sessions, with two different derived routes
    values = {}
    for name in ("charlie", "delta"):
        values[name] = new_session_on(proxy, name).cookie_value()
        assert values[name] and DERIVED_ROUTE_RE.match(values[name]), values
    assert values["charlie"] != values["delta"], values

    wait_exposition_routes(proxy, ["s1", "s2", values["charlie"], values["delta"]])


def wait_exposition_routes(p, routes, timeout=3.0):
    """Polls the Prometheus text until its member_up routes are `routes`
    (both proxy children may answer); returns the last text, checked."""
    last = {}

    def shown():
        last["text"] = get(p.port, STATUS).body.decode("utf-8")
        samples = assert_valid_exposition(last["text"])
        last["routes"] = sorted(l.get("route") for n, l, _ in samples
                                if n == "sticky_route_member_up")
        return last["routes"] == sorted(routes)
    try:
        wait_until(shown, timeout, interval=0.1, what="routes %s in the status" % routes)
    except TimeoutError:
        pass
    assert last["routes"] == sorted(routes), \
        "status routes %s, expected %s\n%s" % (last["routes"], sorted(routes), last["text"])
    return last["text"]


def warn_lines_naming(p, backend):
    needle = "127.0.0.1:%d" % backend.port
    return [l for l in p.error_log.splitlines() if ":warn]" in l and needle in l]


@pytest.mark.parametrize("bad", ["bad.route", "with space", 'q"uote'],
                         ids=["dot", "space", "quote"])
def test_route_edited_to_a_value_no_cookie_can_carry_falls_back_to_the_derived_route(
        backends, proxy, bad):
    bravo = backends["bravo"]
    proxy.manager.edit_worker("app", bravo.url, [("w_wr", bad)])
    assert bad.replace('"', "&quot;") in proxy.manager.page(), "the manager did not take the edit"
    time.sleep(RESCAN)
    r = new_session_on(proxy, "bravo")
    value = r.cookie_value()
    assert value is not None and DERIVED_ROUTE_RE.match(value), \
        "after route=%r the member's cookie is %r, not its derived route" % (bad, r.set_cookies)
    assert_hits(proxy, value, "bravo")
    assert_hits(proxy, "s1", "alpha", n=2)
    routes = wait_status_route(proxy, value)
    assert value in routes and bad not in routes, \
        "status shows %r, not the route used (%r)" % (routes, value)
    lines = wait_until(lambda: warn_lines_naming(proxy, bravo), 3,
                       what="a warning naming %s" % bravo.url)
    assert lines


def test_route_edited_to_a_valid_new_value_is_used(backends, proxy):
    proxy.manager.edit_worker("app", backends["bravo"].url, [("w_wr", "s9")])
    time.sleep(RESCAN)
    r = new_session_on(proxy, "bravo")
    assert r.set_cookies == ["ROUTEID=s9; Path=/; HttpOnly; SameSite=Lax"], r
    assert_hits(proxy, "s9", "bravo")
    assert_hits(proxy, "s1", "alpha", n=2)
    routes = wait_status_route(proxy, "s9")
    assert sorted(routes) == ["s1", "s9"], routes


def test_route_edited_to_another_members_route_falls_back_to_the_derived_route(backends, proxy):
    bravo = backends["bravo"]
    proxy.manager.edit_worker("app", bravo.url, [("w_wr", "s1")])
    time.sleep(RESCAN)
    a = new_session_on(proxy, "alpha")
    assert a.cookie_value() == "s1", a
    b = new_session_on(proxy, "bravo")
    value = b.cookie_value()
    assert value is not None and value != "s1" and DERIVED_ROUTE_RE.match(value), \
        "the later member with the duplicate route s1 got cookie %r, not its derived " \
        "route" % b.set_cookies
    assert_hits(proxy, "s1", "alpha")
    assert_hits(proxy, value, "bravo")
    routes = wait_status_route(proxy, value)
    assert sorted(routes) == sorted(["s1", value]), routes
    wait_exposition_routes(proxy, ["s1", value])




def test_status_in_a_child_that_saw_no_request_since_the_add_lists_the_member(
        backends, proxy):
    """The status endpoint brings its child's member list up to date before
    it reads it, as mod_proxy_balancer does before each proxied request.
    Kept-alive connections stay in the child that accepted them: the add
    is made on one pinned to child X, the status read on one pinned to
    child Y, which has seen no request since the add."""
    import http.client
    pinned, spare = {}, []          # pid -> a kept-alive connection in it
    for k in range(60):
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.request("GET", "/?pin=%d" % k)
        conn.getresponse().read()
        line = re.compile(r"pin=%d HTTP.* pid=(\d+) " % k)
        wait_until(lambda: line.search(proxy.access_log), 5,
                   what="the access log line of pin=%d" % k)
        pid = line.search(proxy.access_log).group(1)
        if pid in pinned:
            spare.append(conn)
        else:
            pinned[pid] = conn
        if len(pinned) == 2:
            break
    try:
        assert len(pinned) == 2, "60 connections, all accepted by one child"
        (x_pid, x), (y_pid, y) = pinned.items()
        BalancerManager(proxy.port, conn=x).add_worker("app", backends["charlie"].url)
        y.request("GET", STATUS + "?json")
        routes = [m["route"] for m in json.loads(y.getresponse().read())["members"]]
        assert len(routes) == 3 and {"s1", "s2"} <= set(routes), \
            "status from child %s, no request there since the add in %s: routes %r" \
            % (y_pid, x_pid, routes)
        y.request("GET", STATUS)
        samples = assert_valid_exposition(y.getresponse().read().decode("utf-8"))
        up = sorted(l.get("route") for n, l, _ in samples if n == "sticky_route_member_up")
        assert up == sorted(routes), up
    finally:
        for conn in list(pinned.values()) + spare:
            conn.close()
    # the setting held: every manager request went to X, the reads to Y
    lines = proxy.access_log.splitlines()
    assert all(" pid=%s " % x_pid in l for l in lines if "/balancer-manager" in l), lines
    assert all(" pid=%s " % y_pid in l for l in lines if STATUS in l), lines
