"""Hostile Cookie headers, sent as raw bytes: every answer comes from a
member (200 + X-Served-By) or, for bytes that httpd's own request parser
refuses before any module runs (NUL, bare CR, other control bytes, a header
line over LimitRequestFieldSize), a 400; never a 500; every Set-Cookie is
well formed; the proxy keeps answering and no child crashes."""

import pytest

from harness import SET_COOKIE_RE, balancer, get, raw_get

SECRET = "itest-hostile-secret-0123456789"
ROUTES = {"s1": "alpha", "s2": "bravo", "s3": "charlie"}

# (id, raw Cookie header value or None for no header at all, 400 acceptable)
CORPUS = [
    ("no-header", None, False),
    ("empty", b"", False),
    ("spaces", b"   ", False),
    ("only-separators", b";;;; ;", False),
    ("bare-equals", b"=", False),
    ("name-only", b"ROUTEID", False),
    ("empty-value", b"ROUTEID=", False),
    ("double-equals", b"ROUTEID==s1", False),
    ("value-with-equals", b"ROUTEID=s1=s2", False),
    ("dot", b"ROUTEID=.", False),
    ("dots", b"ROUTEID=...", False),
    ("legacy-two-dots", b"ROUTEID=.s1.s2", False),
    ("several-routeids", b"ROUTEID=s1; ROUTEID=s2; ROUTEID=s3", False),
    ("several-first-bad", b"ROUTEID=zz; ROUTEID=s2", False),
    ("several-first-empty", b"ROUTEID=; ROUTEID=s2", False),
    ("quoted", b'ROUTEID="s1"', False),
    ("quoted-unbalanced", b'ROUTEID="s1', False),
    ("quoted-empty", b'ROUTEID=""', False),
    ("encoded-crlf", b"ROUTEID=s1%0d%0aSet-Cookie:%20evil=1", False),
    ("encoded-crlf-route", b"ROUTEID=%0d%0a", False),
    ("encoded-nul", b"ROUTEID=s1%00", False),
    ("header-injection-text", b"ROUTEID=s1; Path=/evil; Domain=evil.example", False),
    ("non-ascii-utf8", "ROUTEID=s\u00e91".encode("utf-8"), False),
    ("non-ascii-latin1", b"ROUTEID=s1\xe9", False),
    ("non-ascii-ff", b"ROUTEID=\xff\xfe\xfd", False),
    ("non-ascii-name", b"\xc3\xa9=1; ROUTEID=s2", False),
    ("tab", b"ROUTEID=s1\tx", False),
    ("route-65", b"ROUTEID=" + b"a" * 65, False),
    ("route-64-plus-dot", b"ROUTEID=" + b"b" * 64 + b".s1", False),
    ("route-1000", b"ROUTEID=" + b"s" * 1000, False),
    ("cookie-8000", b"ROUTEID=" + b"x" * 8000, False),          # just under 8190
    ("other-cookie-8000", b"junk=" + b"y" * 7900 + b"; ROUTEID=s1", False),
    ("many-cookies", b"; ".join(b"c%d=v" % i for i in range(600)) + b"; ROUTEID=s2", False),
    ("too-big-9000", b"ROUTEID=" + b"x" * 9000, True),            # over the line limit
    ("nul", b"ROUTEID=s1\x00x", True),
    ("nul-only", b"ROUTEID=\x00", True),
    ("control-bytes", b"ROUTEID=s1\x01\x02\x1b[0m", True),
    ("del", b"ROUTEID=s1\x7f", True),
    ("bare-cr", b"ROUTEID=s1\rSet-Cookie: evil=1", True),
]

# Values in the "session.route" form with a non-empty session part are
# somebody else's session id: the module routes on the suffix but never
# writes the cookie (it would replace the application's session id).
FOREIGN_SESSION = {"route-64-plus-dot"}


@pytest.fixture(params=[False, True], ids=["no-secret", "secret"])
def proxy(request, backends, make_proxy):
    extra = 'StickyRouteSecret "%s"\n' % SECRET if request.param else ""
    return make_proxy(extra + balancer("app", [(backends[n], r) for r, n in ROUTES.items()]))


def check_answer(case_id, r, may_be_400):
    assert r is not None, "%s: connection closed without an answer" % case_id
    assert r.status != 500, "%s: 500" % case_id
    if may_be_400 and r.status == 400:
        assert not r.set_cookies, (case_id, r)
        return
    assert r.status == 200, (case_id, r)
    assert r.served_by in ROUTES.values(), (case_id, r)
    assert r.sticky_status in ("new", "hit", "unknown", "forged", "failover"), (case_id, r)
    for sc in r.set_cookies:
        assert SET_COOKIE_RE.match(sc), "%s: malformed Set-Cookie %r" % (case_id, sc)
        assert "evil" not in sc
    assert not any(k.lower() == "evil" for k, _ in r.headers), (case_id, r.headers)
    route_cookies = [sc for sc in r.set_cookies if sc.startswith("ROUTEID=")]
    assert len(route_cookies) <= 1, (case_id, r.set_cookies)
    # STICKY_ROUTE is the route of the member that served
    assert ROUTES.get(r.sticky_route) == r.served_by, (case_id, r)
    if route_cookies:
        value = SET_COOKIE_RE.match(route_cookies[0]).group(1)
        assert value.split(".")[0] == r.sticky_route, (case_id, r)
    elif case_id in FOREIGN_SESSION:
        assert r.sticky_status in ("hit", "forged"), (case_id, r)
    else:
        assert r.sticky_status == "hit", "%s: status %s without a cookie" % (case_id, r.sticky_status)
    if case_id in FOREIGN_SESSION:
        assert not route_cookies, "%s: a session id was overwritten: %r" % (case_id, r.set_cookies)


def test_hostile_cookie_corpus_never_breaks_the_proxy(proxy):
    failures = []
    for case_id, cookie, may_be_400 in CORPUS:
        try:
            r = raw_get(proxy.port, cookie)
            check_answer(case_id, r, may_be_400)
        except AssertionError as e:
            failures.append("%s: %s" % (case_id, e))
        # the proxy still answers normally after each case
        ok = get(proxy.port)
        assert ok.status == 200, "proxy no longer answers after %s: %r" % (case_id, ok)
    assert failures == [], "\n".join(failures)
    assert proxy.running() and len(proxy.child_pids()) == 2


def test_repeated_cookie_header_lines(proxy):
    """Two Cookie header lines (HTTP/1.1 clients must not, some do)."""
    r = raw_get(proxy.port, b"a=1", extra=b"Cookie: ROUTEID=s2\r\n")
    check_answer("two-cookie-lines", r, False)
    r = raw_get(proxy.port, b"ROUTEID=s1", extra=b"Cookie: ROUTEID=s3\r\n")
    check_answer("two-cookie-lines-both-routeid", r, False)


def test_cookie_with_crlf_is_never_reflected_into_response_headers(backends, make_proxy):
    """Without a secret an unknown value is replaced, never echoed."""
    p = make_proxy(balancer("app", [(backends[n], r) for r, n in ROUTES.items()]))
    r = raw_get(p.port, b"ROUTEID=s1%0d%0aX-Evil:%20yes")
    assert r.status == 200, r
    assert r.get("X-Evil") is None
    for k, v in r.headers:
        assert "%0d" not in v.lower() and "x-evil" not in v.lower(), (k, v)
