"""The module never overwrites a cookie of the application behind it.

- When a member's response sets a cookie of the module's cookie name and
  path itself (`StickyRouteCookie JSESSIONID` in front of a Java app, or an
  app that uses ROUTEID), the module adds no Set-Cookie of its own: the
  response carries the application's only, and the error log says so at
  warn level once (not per request).  An application cookie of that name
  with another explicit Path is no conflict: both go out.
- A request cookie in the `session.route` form with a non-empty session part
  (`ROUTEID=ABC123.s1`: an application's session id carrying the route) is
  honoured (hit) and never replaced by a Set-Cookie, not even when s1 is
  unusable and another member serves.  The stock recipe's own `.s1` form is
  still upgraded (test_legacy_cookie.py).
"""

import time

import pytest

from harness import PyBackend, balancer, free_port, get, wait_until

REQUESTS = 12


def app_backends(set_cookie):
    """Two members that answer 200 with the application's Set-Cookie."""
    out = []
    for name in ("app1", "app2"):
        b = PyBackend(name)
        b.respond = (lambda b: lambda conn_no, req_no, head:
                     b.ok(extra_headers=["Set-Cookie: " + set_cookie]))(b)
        out.append(b)
    return out


def cookies_named(r, name):
    return [sc for sc in r.set_cookies if sc.split("=", 1)[0].strip() == name]


def warn_lines(proxy, name):
    return [l for l in proxy.error_log.splitlines() if ":warn]" in l and name in l]


@pytest.mark.parametrize("name,app_cookie,inner", [
    ("JSESSIONID", "JSESSIONID=APPVALUE; Path=/; HttpOnly", "StickyRouteCookie JSESSIONID"),
    ("ROUTEID", "ROUTEID=APPVALUE; path=/", ""),
], ids=["JSESSIONID", "ROUTEID-lowercase-path"])
def test_application_cookie_of_the_same_name_and_path_is_never_overwritten(
        make_proxy, name, app_cookie, inner):
    app1, app2 = app_backends(app_cookie)
    p = make_proxy(balancer("app", [(app1.url, "s1"), (app2.url, "s2")], inner=inner))
    served = set()
    for i in range(REQUESTS):
        r = get(p.port)                      # a new session every time
        assert r.status == 200, (i, r)
        served.add(r.served_by)
        assert cookies_named(r, name) == [app_cookie], \
            "request %d: Set-Cookie for %s %r, expected only the application's %r" % (
                i, name, cookies_named(r, name), app_cookie)
    assert served == {"app1", "app2"}, served
    lines = wait_until(lambda: warn_lines(p, name), 3,
                       what="a warn-level line about the %s conflict" % name)
    time.sleep(0.3)
    lines = warn_lines(p, name)
    # once: not once per request (at most once per proxy child process)
    assert 1 <= len(lines) <= 2, "%d warn lines for %d requests:\n%s" % (
        len(lines), REQUESTS, "\n".join(lines))


def test_application_cookie_with_another_path_is_no_conflict(make_proxy):
    app_cookie = "JSESSIONID=APPVALUE; Path=/app"
    app1, app2 = app_backends(app_cookie)
    p = make_proxy(balancer("app", [(app1.url, "s1"), (app2.url, "s2")],
                            inner="StickyRouteCookie JSESSIONID"))
    routes = {"app1": "s1", "app2": "s2"}
    for i in range(6):
        r = get(p.port)
        assert r.status == 200, (i, r)
        assert sorted(cookies_named(r, "JSESSIONID")) == sorted([
            app_cookie,
            "JSESSIONID=%s; Path=/; HttpOnly; SameSite=Lax" % routes[r.served_by]]), (i, r)
    assert warn_lines(p, "JSESSIONID") == [], p.error_log


def two_members(backends, s1_params=""):
    return balancer("app", [(backends["alpha"], "s1", s1_params), (backends["bravo"], "s2")])


def test_session_dot_route_cookie_is_a_hit_and_not_replaced(backends, make_proxy):
    p = make_proxy(two_members(backends))
    for value in ("ABC123.s1", "anything.s1", "ab12cd34.s1"):
        for i in range(4):
            r = get(p.port, cookie="ROUTEID=" + value)
            assert (r.status, r.served_by, r.sticky_status) == (200, "alpha", "hit"), (value, r)
            assert cookies_named(r, "ROUTEID") == [], \
                "ROUTEID=%s was replaced by %r" % (value, r.set_cookies)


@pytest.mark.parametrize("state", ["disabled", "no-listener"])
def test_session_dot_route_cookie_of_an_unusable_member_fails_over_without_set_cookie(
        backends, make_proxy, state):
    if state == "disabled":
        body = two_members(backends, s1_params="status=+D")
    else:
        body = balancer("app", [(free_port(), "s1"), (backends["bravo"], "s2")])
    p = make_proxy(body)
    for i in range(4):
        r = get(p.port, cookie="ROUTEID=ABC123.s1")
        assert (r.status, r.served_by, r.sticky_status) == (200, "bravo", "failover"), (i, r)
        assert cookies_named(r, "ROUTEID") == [], \
            "request %d: ROUTEID=ABC123.s1 was replaced by %r" % (i, r.set_cookies)
