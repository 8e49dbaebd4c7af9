"""StickyRouteCookie in server config, virtual host and <Proxy balancer://>:
the innermost one names the cookie that is issued and read."""

import pytest

from harness import balancer, get

MEMBERS_ROUTES = (("alpha", "s1"), ("bravo", "s2"))
ROUTES = {"s1": "alpha", "s2": "bravo"}


def vhost(server_name, inner):
    return ("<VirtualHost 127.0.0.1:@PORT@>\n    ServerName %s\n    %s\n</VirtualHost>\n"
            % (server_name, inner.strip().replace("\n", "\n    ")))


@pytest.fixture
def scoped_proxy(backends, make_proxy):
    members = [(backends[n], r) for n, r in MEMBERS_ROUTES]
    body = (
        "StickyRouteCookie SRV\n"
        + vhost("a.test", balancer("a", members))
        + vhost("b.test", "StickyRouteCookie VH\n" + balancer("b", members))
        + vhost("c.test", "StickyRouteCookie VH\n"
                + balancer("c", members, inner="StickyRouteCookie PX"))
        + vhost("d.test", balancer("d", members, inner="StickyRouteCookie PXD"))
        + vhost("e.test", "StickyRouteCookie VH\n" + balancer(
            "e", members,
            inner="StickyRouteCookie SHOP Path=/shop Max-Age=60 HttpOnly SameSite=Strict"))
        + vhost("f.test", "StickyRouteCookie SHOPV Path=/shop Domain=example.test Max-Age=60 "
                "HttpOnly Secure SameSite=None\n" + balancer("f", members))
    )
    return make_proxy(body)


def issued(r):
    assert r.status == 200, r
    assert len(r.set_cookies) == 1, r
    return r.set_cookies[0]


@pytest.mark.parametrize("host,name", [
    ("a.test", "SRV"),     # server config only
    ("b.test", "VH"),      # virtual host overrides server config
    ("c.test", "PX"),      # <Proxy> overrides virtual host
    ("d.test", "PXD"),     # <Proxy> overrides server config
])
def test_innermost_sticky_route_cookie_names_the_cookie(scoped_proxy, host, name):
    r = get(scoped_proxy.port, host=host)
    assert r.sticky_status == "new", r
    sc = issued(r)
    route = r.sticky_route
    assert ROUTES[route] == r.served_by, r
    assert sc == "%s=%s; Path=/; HttpOnly; SameSite=Lax" % (name, route)
    # the same name is read back: a hit, nothing issued
    r2 = get(scoped_proxy.port, host=host, cookie="%s=%s" % (name, route))
    assert (r2.status, r2.served_by, r2.sticky_status, r2.set_cookies) == \
        (200, ROUTES[route], "hit", []), r2
    # the names of the outer scopes are not read in this scope
    others = "; ".join("%s=%s" % (n, route) for n in ("ROUTEID", "SRV", "VH", "PX", "PXD")
                       if n != name)
    r3 = get(scoped_proxy.port, host=host, cookie=others)
    assert r3.sticky_status == "new", r3
    assert issued(r3).startswith(name + "="), r3


@pytest.mark.parametrize("host,name,attrs", [
    ("f.test", "SHOPV",     # attributes given in the virtual host
     ["Path=/shop", "Domain=example.test", "Max-Age=60", "HttpOnly", "Secure", "SameSite=None"]),
    ("e.test", "SHOP",      # attributes given in <Proxy>
     ["Path=/shop", "Max-Age=60", "HttpOnly", "SameSite=Strict"]),
], ids=["vhost", "proxy-section"])
def test_cookie_attributes_come_from_the_directive(scoped_proxy, host, name, attrs):
    r = get(scoped_proxy.port, host=host)
    sc = issued(r)
    parts = [p.strip() for p in sc.split(";")]
    assert parts[0] == "%s=%s" % (name, r.sticky_route), sc
    # Expires may accompany Max-Age; nothing else may be added or left out
    got = [p for p in parts[1:] if not p.lower().startswith("expires=")]
    assert sorted(got) == sorted(attrs), sc
