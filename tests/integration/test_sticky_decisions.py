"""lbmethod=sticky without a secret: new, hit, unknown and failover, as a
client sees them (X-Served-By from the backends, the module's decision in
X-Sticky-Status / X-Sticky-Route / X-Route-Changed, Set-Cookie)."""

import re

import pytest

from harness import SET_COOKIE_RE, KeepAliveClient, balancer, free_port, get, wait_until

ROUTES = {"s1": "alpha", "s2": "bravo", "s3": "charlie"}


def three_members(backends, params=None):
    params = params or {}
    return [(backends[name], route, params.get(route, "")) for route, name in ROUTES.items()]


@pytest.fixture
def proxy(backends, make_proxy):
    return make_proxy(balancer("app", three_members(backends)))


def assert_issued_for_server(r, expected_status):
    """One well-formed Set-Cookie that names the member that served."""
    assert r.status == 200, r
    assert r.sticky_status == expected_status, r
    assert len(r.set_cookies) == 1, r
    m = SET_COOKIE_RE.match(r.set_cookies[0])
    assert m, "malformed Set-Cookie %r" % r.set_cookies[0]
    route = m.group(1)
    assert route in ROUTES, "cookie names no member: %r" % route
    assert ROUTES[route] == r.served_by, r
    assert r.sticky_route == route, r
    assert r.route_changed == "1", r
    return route


def assert_hit(r, route):
    assert r.status == 200, r
    assert r.served_by == ROUTES[route], r
    assert r.sticky_status == "hit", r
    assert r.sticky_route == route, r
    assert r.set_cookies == [], r
    assert r.route_changed != "1", r


def test_request_without_cookie_is_new_and_gets_cookie_naming_the_member_that_served(proxy):
    for _ in range(30):
        r = get(proxy.port)
        route = assert_issued_for_server(r, "new")
        assert r.set_cookies[0] == "ROUTEID=%s; Path=/; HttpOnly; SameSite=Lax" % route
    # logged too: every one of these requests says changed=1 and status=new
    def logged():
        lines = [l for l in proxy.access_log.splitlines() if '"GET / ' in l]
        return lines if len(lines) >= 30 else None
    lines = wait_until(logged, 5, what="30 access log lines")
    assert len(lines) == 30
    assert all(" status=new " in l and " changed=1 " in l for l in lines), lines[:3]


def test_200_requests_with_issued_cookie_stay_on_one_backend_as_hits(proxy):
    first = get(proxy.port)
    route = assert_issued_for_server(first, "new")
    cookie = "ROUTEID=%s" % route
    # fresh connections, so that both proxy child processes answer
    for i in range(200):
        path = ["/", "/app.js", "/style.css", "/logo.svg"][i % 4]
        assert_hit(get(proxy.port, path, cookie=cookie), route)
    pids = set(re.findall(r"pid=(\d+) status=hit", proxy.access_log))
    assert len(pids) == 2, "hits were served by proxy processes %s" % pids


def test_keepalive_client_keeps_its_member_for_200_requests(proxy):
    c = KeepAliveClient(proxy.port)
    r = c.request()
    route = assert_issued_for_server(r, "new")
    for _ in range(200):
        assert_hit(c.request(), route)
    assert c.cookie == route
    c.close()


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_cookie_naming_a_member_is_a_hit_on_that_member(proxy, route):
    for _ in range(5):
        assert_hit(get(proxy.port, cookie="ROUTEID=%s" % route), route)


def test_route_cookie_among_other_cookies_is_found(proxy):
    r = get(proxy.port, cookie="session=abc; ROUTEID=s2; theme=dark")
    assert_hit(r, "s2")
    r = get(proxy.port, cookie="XROUTEID=s1; ROUTEIDX=s1; ROUTEID=s3")
    assert_hit(r, "s3")


@pytest.mark.parametrize("value", [
    "zz",                  # names no member
    "s9",                  # names no member
    "%%%",                 # malformed
    "<s1>",                # malformed
    "a/b",                 # malformed
    "a" * 65,              # too long (route > 64 bytes)
    "s1" * 40,             # too long
    "x" * 3000,            # far too long
], ids=["zz", "s9", "percent", "angle", "slash", "len65", "len80", "len3000"])
def test_cookie_naming_no_member_or_malformed_or_too_long_is_unknown(proxy, value):
    r = get(proxy.port, cookie="ROUTEID=" + value)
    route = assert_issued_for_server(r, "unknown")
    # the re-issued cookie is honoured afterwards
    assert_hit(get(proxy.port, cookie="ROUTEID=%s" % route), route)


def test_cookie_naming_disabled_member_fails_over(backends, make_proxy):
    p = make_proxy(balancer("app", three_members(backends, {"s1": "status=+D"})))
    for _ in range(5):
        r = get(p.port, cookie="ROUTEID=s1")
        route = assert_issued_for_server(r, "failover")
        assert route != "s1" and r.served_by != "alpha"
        assert_hit(get(p.port, cookie="ROUTEID=%s" % route), route)


def test_disabled_member_gets_no_new_clients(backends, make_proxy):
    p = make_proxy(balancer("app", three_members(backends, {"s1": "status=+D"})))
    for _ in range(40):
        r = get(p.port)
        assert assert_issued_for_server(r, "new") != "s1"


def test_cookie_naming_member_without_listener_fails_over_within_the_request(backends, make_proxy):
    dead = free_port()
    members = [(dead, "s1"), (backends["bravo"], "s2"), (backends["charlie"], "s3")]
    p = make_proxy(balancer("app", members))
    # first request: the member is tried, the connect fails, the proxy retries
    # another member; later requests: the member is in error state.
    for _ in range(4):
        r = get(p.port, cookie="ROUTEID=s1")
        route = assert_issued_for_server(r, "failover")
        assert route in ("s2", "s3")
        assert_hit(get(p.port, cookie="ROUTEID=%s" % route), route)
    assert "Connection refused" in p.error_log


def test_cookie_naming_stopped_backend_fails_over(backends, make_backend, make_proxy):
    victim = make_backend("victim")
    routes = {"s1": "victim", "s2": "bravo"}
    p = make_proxy(balancer("app", [(victim, "s1"), (backends["bravo"], "s2")]))
    c = KeepAliveClient(p.port)
    c.cookie = "s1"
    for _ in range(10):
        r = c.request()
        assert (r.status, r.served_by, r.sticky_status) == (200, "victim", "hit"), r
    victim.stop()
    r = c.request()
    assert r.status == 200, r
    assert r.served_by == "bravo" and r.sticky_status == "failover", r
    assert r.set_cookies == ["ROUTEID=s2; Path=/; HttpOnly; SameSite=Lax"], r
    assert routes[c.cookie] == "bravo"
    for _ in range(10):
        r = c.request()
        assert (r.status, r.served_by, r.sticky_status, r.set_cookies) == (200, "bravo", "hit", []), r
    c.close()
