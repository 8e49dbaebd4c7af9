"""Members without route=: the module derives `r` + 11 base64url chars,
revealing nothing of the backend address, identical across separately
started proxies with the same member list."""

import re

import pytest

from harness import DERIVED_ROUTE_RE, TAG_RE, balancer, get

SECRET = "itest-derived-secret-0123456789"
NAMES = ("alpha", "bravo", "charlie")


def body(backends, secret):
    lines = 'StickyRouteSecret "%s"\n' % SECRET if secret else ""
    return lines + balancer("app", [(backends[n], None) for n in NAMES])


def learn(proxy, secret, limit=90):
    """backend name -> cookie value, from new clients."""
    values = {}
    for _ in range(limit):
        r = get(proxy.port)
        assert r.status == 200 and r.sticky_status == "new", r
        assert len(r.set_cookies) == 1, r
        m = re.match(r"^ROUTEID=([^;]+); Path=/; HttpOnly; SameSite=Lax$", r.set_cookies[0])
        assert m, r
        value = m.group(1)
        route = value.split(".")[0] if secret else value
        assert DERIVED_ROUTE_RE.match(route), "not a derived route: %r" % value
        if secret:
            assert re.match(r"^r[A-Za-z0-9_-]{11}\.%s$" % TAG_RE, value), value
        else:
            assert "." not in value, value
        assert r.sticky_route == route, r
        assert values.setdefault(r.served_by, value) == value, "route of %s changed" % r.served_by
        if len(values) == len(NAMES):
            return values
    pytest.fail("new clients reached only %s in %d requests" % (sorted(values), limit))


@pytest.mark.parametrize("secret", [False, True], ids=["no-secret", "secret"])
def test_derived_routes_hide_the_backend_and_agree_across_proxies(backends, make_proxy, secret):
    p1 = make_proxy(body(backends, secret), name="first")
    v1 = learn(p1, secret)
    p2 = make_proxy(body(backends, secret), name="second")
    v2 = learn(p2, secret)

    assert v1 == v2, "separately started proxies derived different routes"
    routes = [v.split(".")[0] for v in v1.values()]
    assert len(set(routes)) == len(NAMES), "two members share a derived route: %s" % v1
    for name, value in v1.items():
        port = str(backends[name].port)
        for part in (port, port[-3:], "127", "0.0.1", "http", "localhost"):
            assert part not in value, "route %r reveals %r of the backend" % (value, part)

    # each proxy honours the other's cookies
    for src, dst in ((v1, p2), (v2, p1)):
        for name, value in src.items():
            for _ in range(3):
                r = get(dst.port, cookie="ROUTEID=" + value)
                assert (r.status, r.served_by, r.sticky_status, r.set_cookies) == \
                    (200, name, "hit", []), r
