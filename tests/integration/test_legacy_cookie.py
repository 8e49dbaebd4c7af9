"""Cookies of the stock recipe (`ROUTEID=.s1`, mod_headers + stickysession)
are honoured and upgraded to the native format; with a secret only when
`StickyRouteLegacyCookie On`."""

import re

import pytest

from harness import TAG_RE, balancer, get

SECRET = "itest-legacy-secret-0123456789"
ROUTES = {"s1": "alpha", "s2": "bravo"}


def body(backends, extra=""):
    members = [(backends[n], route) for route, n in ROUTES.items()]
    return extra + "\n" + balancer("app", members)


def test_legacy_cookie_is_a_hit_and_is_upgraded(backends, make_proxy):
    p = make_proxy(body(backends))
    for _ in range(3):
        r = get(p.port, cookie="ROUTEID=.s2")
        assert r.status == 200, r
        assert (r.served_by, r.sticky_status, r.sticky_route) == ("bravo", "hit", "s2"), r
        assert r.set_cookies == ["ROUTEID=s2; Path=/; HttpOnly; SameSite=Lax"], r
        assert r.route_changed == "1", r
    # the upgraded cookie is a plain hit, nothing re-issued
    r = get(p.port, cookie="ROUTEID=s2")
    assert (r.served_by, r.sticky_status, r.set_cookies) == ("bravo", "hit", []), r


@pytest.mark.parametrize("session", ["anything.s2", "ab12cd34.s2"])
def test_session_route_cookie_is_a_hit_and_never_rewritten(backends, make_proxy, session):
    """A value with a session part before the route is somebody else's
    session id (an application's): routed on its suffix, never replaced."""
    p = make_proxy(body(backends))
    for _ in range(3):
        r = get(p.port, cookie="ROUTEID=" + session)
        assert r.status == 200, r
        assert (r.served_by, r.sticky_status, r.sticky_route) == ("bravo", "hit", "s2"), r
        assert r.set_cookies == [], r


def test_legacy_cookie_with_secret_is_forged_by_default(backends, make_proxy):
    p = make_proxy(body(backends, 'StickyRouteSecret "%s"' % SECRET))
    for legacy in (".s1", ".s2"):
        r = get(p.port, cookie="ROUTEID=" + legacy)
        assert r.status == 200, r
        assert r.sticky_status == "forged", r
        assert len(r.set_cookies) == 1, r
        m = re.match(r"^ROUTEID=(s1|s2)\.%s; Path=/; HttpOnly; SameSite=Lax$" % TAG_RE,
                     r.set_cookies[0])
        assert m and ROUTES[m.group(1)] == r.served_by, r
    # "x.s2" is somebody else's session id: refused, never rewritten
    r = get(p.port, cookie="ROUTEID=x.s2")
    assert r.status == 200, r
    assert r.sticky_status == "forged", r
    assert r.set_cookies == [], r


def test_legacy_cookie_with_secret_and_legacy_on_is_a_hit_upgraded_to_signed(backends, make_proxy):
    p = make_proxy(body(backends, 'StickyRouteSecret "%s"\nStickyRouteLegacyCookie On' % SECRET))
    r = get(p.port, cookie="ROUTEID=.s2")
    assert r.status == 200, r
    assert (r.served_by, r.sticky_status, r.sticky_route) == ("bravo", "hit", "s2"), r
    assert len(r.set_cookies) == 1, r
    m = re.match(r"^ROUTEID=(s2\.%s); Path=/; HttpOnly; SameSite=Lax$" % TAG_RE, r.set_cookies[0])
    assert m, r
    signed = m.group(1)
    r = get(p.port, cookie="ROUTEID=" + signed)
    assert (r.served_by, r.sticky_status, r.set_cookies) == ("bravo", "hit", []), r
    # the unsigned native form is still refused: only the legacy form is let in
    r = get(p.port, cookie="ROUTEID=s2")
    assert r.sticky_status == "forged", r
