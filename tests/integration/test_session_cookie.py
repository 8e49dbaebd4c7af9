"""Application session ids (issue 10): `StickyRouteSession NAME
[URL_PARAMETER]`, e.g. `StickyRouteSession JSESSIONID jsessionid`.

The route is the part after the last '.' of the cookie NAME's value
(`ABC123.s2`, `A.B.s2`), or of the `;jsessionid=ID.route` path parameter, or
of the `?jsessionid=ID.route` query parameter.  The module never writes
that cookie.  Naming a usable member: `hit` there, no Set-Cookie at all.
Naming an unusable member: `failover`, served elsewhere (the module may set
its own ROUTEID, never JSESSIONID).  Absent, or naming no member: the
module's own cookie and election apply as without the directive.
"""

import pytest

from harness import PyBackend, balancer, get

NAMES = {"s1": "app1", "s2": "app2"}


def app_backends(set_cookie=None):
    out = []
    for name in ("app1", "app2"):
        b = PyBackend(name)
        extra = ["Set-Cookie: " + set_cookie] if set_cookie else []
        b.respond = (lambda b, extra: lambda conn_no, req_no, head: b.ok(extra_headers=extra))(
            b, extra)
        out.append(b)
    return out


def body(backends, directive="StickyRouteSession JSESSIONID jsessionid", s1_params=""):
    app1, app2 = backends
    return balancer("app", [(app1.url, "s1", s1_params), (app2.url, "s2")], inner=directive)


def named(r, name):
    return [sc for sc in r.set_cookies if sc.split("=", 1)[0].strip() == name]


def assert_session_hit(r, route):
    assert r.status == 200, r
    assert (r.served_by, r.sticky_status, r.sticky_route) == (NAMES[route], "hit", route), r
    assert r.set_cookies == [], "a session id naming a usable member: %r" % r.set_cookies


@pytest.fixture
def proxy(make_proxy):
    return make_proxy(body(app_backends()))


def test_session_cookie_routes_on_the_part_after_the_last_dot(proxy):
    for value, route in (("ABC123.s2", "s2"), ("ABC123.s1", "s1"), ("A.B.s2", "s2"),
                         ("x.y.z.s1", "s1")):
        for _ in range(3):
            assert_session_hit(get(proxy.port, cookie="JSESSIONID=" + value), route)


def test_session_cookie_among_others_and_over_the_route_cookie(proxy):
    r = get(proxy.port, cookie="theme=dark; JSESSIONID=ABC.s2; lang=en")
    assert_session_hit(r, "s2")
    # the application's session id wins over our own cookie
    for cookie in ("ROUTEID=s1; JSESSIONID=ABC.s2", "JSESSIONID=ABC.s2; ROUTEID=s1"):
        assert_session_hit(get(proxy.port, cookie=cookie), "s2")


URL_CASES = [
    ("/app;jsessionid=ABC.s2?x=1", "s2"),
    ("/app;jsessionid=ABC.s1", "s1"),
    ("/;jsessionid=A.B.s2", "s2"),
    ("/app?jsessionid=ABC.s2", "s2"),
    ("/app?x=1&jsessionid=ABC.s1&y=2", "s1"),
]


def test_url_parameter_routes_the_request(proxy):
    for path, route in URL_CASES:
        for _ in range(3):
            assert_session_hit(get(proxy.port, path), route)


def test_url_parameter_is_not_read_without_the_second_argument(make_proxy):
    p = make_proxy(body(app_backends(), directive="StickyRouteSession JSESSIONID"))
    assert_session_hit(get(p.port, cookie="JSESSIONID=ABC.s2"), "s2")
    served = set()
    for _ in range(4):
        r = get(p.port, "/app;jsessionid=ABC.s2?jsessionid=ABC.s2")
        assert r.sticky_status == "new", r
        served.add(r.served_by)
    assert served == {"app1", "app2"}, served


def test_session_id_naming_an_unusable_member_fails_over_and_is_never_written(make_proxy):
    p = make_proxy(body(app_backends(), s1_params="status=+D"))
    for i in range(4):
        r = get(p.port, cookie="JSESSIONID=ABC123.s1")
        assert (r.status, r.served_by, r.sticky_status) == (200, "app2", "failover"), (i, r)
        assert named(r, "JSESSIONID") == [], r
        for sc in r.set_cookies:
            assert sc.startswith("ROUTEID="), r
    r = get(p.port, "/x;jsessionid=ABC.s1")
    assert (r.served_by, r.sticky_status, named(r, "JSESSIONID")) == ("app2", "failover", []), r


def check_our_cookie_and_election_apply(proxy, cookie):
    served = set()
    for _ in range(4):
        r = get(proxy.port, cookie=cookie)
        assert r.status == 200, r
        assert r.sticky_status == "new", r
        assert named(r, "JSESSIONID") == [], r
        value = r.cookie_value("ROUTEID")
        assert value == r.sticky_route and NAMES[value] == r.served_by, r
        served.add(r.served_by)
        both = (cookie + "; " if cookie else "") + "ROUTEID=" + value
        r2 = get(proxy.port, cookie=both)
        assert (r2.served_by, r2.sticky_status, r2.set_cookies) == (NAMES[value], "hit", []), r2
    assert served == {"app1", "app2"}, served


def test_without_a_session_id_naming_a_member_our_cookie_and_election_apply(proxy):
    for cookie in (None, "JSESSIONID=ABC123", "JSESSIONID=ABC.zz", "JSESSIONID=",
                   "other=ABC.s2"):
        check_our_cookie_and_election_apply(proxy, cookie)


def test_application_setting_its_session_cookie_passes_through_unchanged(make_proxy):
    app_cookie = "JSESSIONID=NEWSESSION.s1; Path=/; HttpOnly"
    p = make_proxy(body(app_backends(set_cookie=app_cookie)))
    for i in range(4):
        r = get(p.port)
        assert r.sticky_status == "new", r
        assert named(r, "JSESSIONID") == [app_cookie], (i, r)
        assert len(named(r, "ROUTEID")) == 1, (i, r)
    r = get(p.port, cookie="JSESSIONID=OLD.s2")
    assert (r.served_by, r.sticky_status) == ("app2", "hit"), r
    assert named(r, "JSESSIONID") == [app_cookie] and named(r, "ROUTEID") == [], r
