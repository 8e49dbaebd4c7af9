"""StickyRouteSecret: cookies are ROUTE.TAG; a missing, wrong or foreign
tag is `forged`; a valid signed cookie is a `hit`."""

import os
import re

import pytest

from harness import TAG_RE, balancer, get

SECRET = "itest-secret-0123456789abcdef"          # 29 bytes
OTHER_SECRET = "another-secret-fedcba9876543210"
ROUTES = {"s1": "alpha", "s2": "bravo"}
SIGNED_SET_COOKIE_RE = re.compile(
    r"^ROUTEID=(s1|s2)\.(%s); Path=/; HttpOnly; SameSite=Lax$" % TAG_RE)


def body(backends, name="app", secret_line='StickyRouteSecret "%s"' % SECRET):
    members = [(backends[n], route) for route, n in ROUTES.items()]
    return secret_line + "\n" + balancer(name, members)


def signed_cookie(r):
    """(route, tag) of the one signed Set-Cookie, which names the server."""
    assert r.status == 200, r
    assert len(r.set_cookies) == 1, r
    m = SIGNED_SET_COOKIE_RE.match(r.set_cookies[0])
    assert m, "not a signed route cookie: %r" % r.set_cookies[0]
    assert ROUTES[m.group(1)] == r.served_by, r
    assert r.sticky_route == m.group(1), r
    assert r.route_changed == "1", r
    return m.group(1), m.group(2)


def learn_cookies(proxy, limit=60):
    """route -> full cookie value, from new clients, until every member has
    been seen.  Also checks that the value for one route never changes."""
    values = {}
    for _ in range(limit):
        r = get(proxy.port)
        assert r.sticky_status == "new", r
        route, tag = signed_cookie(r)
        value = "%s.%s" % (route, tag)
        assert values.setdefault(route, value) == value, "tag for %s changed" % route
        if len(values) == len(ROUTES):
            return values
    pytest.fail("new clients reached only %s in %d requests" % (sorted(values), limit))


def assert_forged(r):
    """Refused cookie: served by a member, status forged, a fresh signed
    cookie naming the member that served."""
    assert r.status == 200, r
    assert r.sticky_status == "forged", r
    assert r.served_by in ROUTES.values(), r
    signed_cookie(r)


def assert_signed_hit(r, route):
    assert r.status == 200, r
    assert (r.served_by, r.sticky_status, r.sticky_route) == (ROUTES[route], "hit", route), r
    assert r.set_cookies == [], r


@pytest.fixture
def signed_proxy(backends, make_proxy):
    return make_proxy(body(backends))


def test_new_client_gets_signed_cookie_and_valid_signed_cookie_is_a_hit(signed_proxy):
    values = learn_cookies(signed_proxy)
    for route, value in values.items():
        for _ in range(20):
            assert_signed_hit(get(signed_proxy.port, cookie="ROUTEID=" + value), route)


def test_unsigned_cookie_is_forged_when_a_secret_is_set(signed_proxy):
    for route in ROUTES:
        assert_forged(get(signed_proxy.port, cookie="ROUTEID=" + route))


def test_wrong_tag_is_forged(signed_proxy):
    values = learn_cookies(signed_proxy)
    route, tag = values["s1"].split(".")
    flipped = ("B" if tag[0] != "B" else "C") + tag[1:]
    other_tag = values["s2"].split(".")[1]
    for bad in ["s1." + flipped,            # one character changed
                "s1." + other_tag,          # s2's tag on route s1
                "s1.AAAAAAAAAAA"]:          # well-formed, wrong
        if bad == values["s1"]:
            continue
        assert_forged(get(signed_proxy.port, cookie="ROUTEID=" + bad))
    # A tag of the wrong length makes the value "session.route" in form:
    # somebody else's session id to the module, refused but never rewritten.
    for bad in ["s1." + tag[:-1],           # truncated tag
                "s1." + tag + "A"]:         # tag one char too long
        r = get(signed_proxy.port, cookie="ROUTEID=" + bad)
        assert r.status == 200, r
        assert r.sticky_status == "forged", r
        assert r.served_by in ROUTES.values(), r
        assert r.set_cookies == [], r


def test_tag_from_another_balancer_name_is_forged(backends, make_proxy):
    one = make_proxy(body(backends, name="one"), name="one")
    two = make_proxy(body(backends, name="two"), name="two")
    ones, twos = learn_cookies(one), learn_cookies(two)
    for route in ROUTES:
        assert ones[route] != twos[route], "tag does not depend on the balancer name"
        # each proxy honours its own cookie ...
        assert_signed_hit(get(two.port, cookie="ROUTEID=" + twos[route]), route)
        assert_signed_hit(get(one.port, cookie="ROUTEID=" + ones[route]), route)
        # ... and refuses the other balancer's
        assert_forged(get(two.port, cookie="ROUTEID=" + ones[route]))
        assert_forged(get(one.port, cookie="ROUTEID=" + twos[route]))


def test_tag_from_another_secret_is_forged(backends, make_proxy):
    a = make_proxy(body(backends), name="a")
    b = make_proxy(body(backends, secret_line='StickyRouteSecret "%s"' % OTHER_SECRET), name="b")
    va, vb = learn_cookies(a), learn_cookies(b)
    for route in ROUTES:
        assert va[route] != vb[route]
        assert_forged(get(b.port, cookie="ROUTEID=" + va[route]))


def test_secret_read_from_file_signs_like_the_same_inline_secret(backends, make_proxy):
    inline = make_proxy(body(backends), name="inline")
    from_file = make_proxy(body(backends, secret_line="StickyRouteSecret file:@ROOT@/route.secret"),
                           name="fromfile", start=False)
    secret_file = from_file.root / "route.secret"
    secret_file.write_text(SECRET)          # no trailing newline
    os.chmod(secret_file, 0o600)
    from_file.start()
    vi, vf = learn_cookies(inline), learn_cookies(from_file)
    assert vi == vf
    for route, value in vf.items():
        assert_signed_hit(get(from_file.port, cookie="ROUTEID=" + value), route)
