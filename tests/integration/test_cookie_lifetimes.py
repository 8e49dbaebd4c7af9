"""Cookie lifetimes (issue 10): `StickyRouteCookie NAME ... MaxIdle=S
MaxLife=S`.

With either set, the cookie value carries dates: `ROUTE:FIRST:LAST`
(`ROUTE:FIRST:LAST.TAG` with StickyRouteSecret, the tag covering the
balancer name and "ROUTE:FIRST:LAST"), FIRST the unix second the session was
pinned, LAST the second it was last refreshed.  R = max(1, W/4) with W the
smallest of MaxIdle and the StickyRouteRebalance idle time that are set;
with MaxLife alone the cookie is never refreshed (LAST stays FIRST).

- LAST older than R: `hit` with a Set-Cookie (same route, same FIRST,
  LAST = now); otherwise `hit` without one.
- now - LAST > MaxIdle + R, or now - FIRST > MaxLife, or a date more than
  60 s in the future: `expired`, elected again, new cookie (new FIRST).
- Dates that do not parse: `unknown` (`forged` with a secret); cookies
  without dates (`s1`, `s1.TAG`) are honoured and get dates at once.
- With a secret, a date changed by one second is `forged`; two proxies
  sharing the secret accept each other's dated cookies.
- sticky_route_requests_total{status="expired"} counts the expired ones.

Most boundaries are checked with unsigned cookies whose dates the test
makes up (no waiting); the real-time tests run clients for a few seconds.
"""

import re
import time

import pytest

from harness import (STATUS_CONF, KeepAliveClient, balancer, get, parse_dated,
                     request_counts, status_json_members, wait_until)

ROUTES = {"s1": "alpha", "s2": "bravo"}
SECRET = "lifetime-secret-0123456789abcdef"
DEFAULT_ATTRS_RE = re.compile(r"^ROUTEID=([^;]+); Path=/; HttpOnly; SameSite=Lax$")


def members(backends):
    return [(backends[name], route) for route, name in ROUTES.items()]


def body(backends, attrs, secret=None, name="app"):
    """A sticky balancer whose StickyRouteCookie carries `attrs`."""
    lines = STATUS_CONF
    if secret:
        lines += 'StickyRouteSecret "%s"\n' % secret
    inner = "StickyRouteCookie ROUTEID %s" % attrs if attrs else ""
    return lines + balancer(name, members(backends), inner=inner)


def now():
    return int(time.time())


def dated_cookie(r, signed=False):
    """(route, first, last, tag) of the response's one Set-Cookie: a dated
    value naming the member that served."""
    assert r.status == 200, r
    value = r.cookie_value()
    assert value is not None, "no Set-Cookie: %r" % r
    parsed = parse_dated(value)
    assert parsed, "Set-Cookie value %r is not ROUTE:FIRST:LAST[.TAG]: %r" % (value, r)
    route, first, last, tag = parsed
    assert (tag is not None) == signed, "signed=%s expected: %r" % (signed, value)
    assert ROUTES.get(route) == r.served_by, "cookie names %s, served by %s" % (route, r.served_by)
    assert r.sticky_route == route, r
    assert first <= last, value
    return parsed


def assert_hit(r, route, set_cookie=False):
    assert r.status == 200, r
    assert (r.served_by, r.sticky_status, r.sticky_route) == (ROUTES[route], "hit", route), r
    if not set_cookie:
        assert r.set_cookies == [], r


def assert_expired(r, t_before):
    """`expired`: elected again, a new cookie with a new FIRST."""
    assert r.sticky_status == "expired", r
    route, first, last, _ = dated_cookie(r)
    assert t_before - 1 <= first <= now() + 1, "FIRST %d is not now (%d)" % (first, t_before)
    return route, first, last


@pytest.fixture
def idle8(backends, make_proxy):
    """MaxIdle=8: R = 2, expired when now - LAST > 10."""
    return make_proxy(body(backends, "MaxIdle=8"))


# ---------------------------------------------------------------- issuing


@pytest.mark.parametrize("attrs", ["MaxIdle=8", "MaxLife=30", "MaxIdle=8 MaxLife=30"])
def test_new_session_gets_a_dated_cookie_that_is_then_a_hit(backends, make_proxy, attrs):
    p = make_proxy(body(backends, attrs))
    for _ in range(4):
        t = now()
        r = get(p.port)
        assert r.sticky_status == "new", r
        route, first, last, tag = dated_cookie(r)
        assert first == last, "a new session's FIRST and LAST differ: %r" % r.set_cookies
        assert t - 1 <= first <= now() + 1, (t, first)
        value = r.cookie_value()
        for _ in range(3):
            assert_hit(get(p.port, cookie="ROUTEID=" + value), route)


def test_maxidle_and_maxlife_are_not_sent_and_keep_the_default_attributes(idle8):
    """MaxIdle=/MaxLife= are the proxy's limits, not cookie attributes: the
    Set-Cookie keeps `Path=/; HttpOnly; SameSite=Lax` and says nothing of
    them (no Max-Age, no Expires)."""
    r = get(idle8.port)
    assert len(r.set_cookies) == 1, r
    m = DEFAULT_ATTRS_RE.match(r.set_cookies[0])
    assert m, "Set-Cookie %r: expected the default attributes only" % r.set_cookies[0]
    assert parse_dated(m.group(1)), r.set_cookies[0]


def test_lifetimes_in_server_config_apply_to_the_balancer(backends, make_proxy):
    p = make_proxy("StickyRouteCookie ROUTEID MaxIdle=8\n" + balancer("app", members(backends)))
    r = get(p.port)
    assert r.sticky_status == "new", r
    route, _, _, _ = dated_cookie(r)
    assert_hit(get(p.port, cookie="ROUTEID=" + r.cookie_value()), route)


def test_without_lifetimes_cookies_carry_no_dates(backends, make_proxy):
    p = make_proxy(body(backends, ""))
    r = get(p.port)
    assert r.cookie_value() in ROUTES, r


# ------------------------------------------------------ refresh and expiry


def test_recent_cookie_is_a_hit_without_set_cookie(idle8):
    """LAST within the last second: younger than R = 2 s."""
    for route in ROUTES:
        for _ in range(3):
            t = now()
            assert_hit(get(idle8.port, cookie="ROUTEID=%s:%d:%d" % (route, t - 100, t)), route)


@pytest.mark.parametrize("idle", [5, 9], ids=["idle-5s", "idle-9s-past-maxidle-within-r"])
def test_cookie_older_than_r_is_refreshed_with_same_route_and_first(idle8, idle):
    t = now()
    first = t - 100
    r = get(idle8.port, cookie="ROUTEID=s2:%d:%d" % (first, t - idle))
    assert_hit(r, "s2", set_cookie=True)
    route, first2, last2, _ = dated_cookie(r)
    assert (route, first2) == ("s2", first), r.set_cookies
    assert t <= last2 <= now() + 1, "LAST %d is not now (%d)" % (last2, t)
    # the refreshed cookie is a plain hit
    assert_hit(get(idle8.port, cookie="ROUTEID=" + r.cookie_value()), "s2")


def test_cookie_idle_past_maxidle_plus_r_is_expired_and_counted(idle8):
    t = now()
    n = 6
    for i in range(n):
        route = "s1" if i % 2 else "s2"
        r = get(idle8.port, cookie="ROUTEID=%s:%d:%d" % (route, t - 100, t - 15))
        assert r.status == 200, r
        new_route, first, _ = assert_expired(r, t)
        # the new cookie is honoured
        assert_hit(get(idle8.port, cookie="ROUTEID=" + r.cookie_value()), new_route)
    def expired_count():
        counts = request_counts(idle8.port, "app")
        return sum(v for (_, status), v in counts.items() if status == "expired")
    try:        # counted when the request is logged, just after it answered
        wait_until(lambda: expired_count() >= n, 2, what="%d expired counted" % n)
    except TimeoutError:
        pass
    time.sleep(0.2)
    assert expired_count() == n, request_counts(idle8.port, "app")
    for m in status_json_members(idle8.port):
        assert "expired" in m["requests"], m


@pytest.mark.parametrize("first_off,last_off,expired", [
    (-10, 120, True),       # LAST 2 minutes ahead
    (120, 120, True),       # both ahead
    (-10, 30, False),       # within the 60 s clock skew
], ids=["last-ahead-120s", "both-ahead-120s", "last-ahead-30s"])
def test_dates_more_than_60s_in_the_future_are_expired(idle8, first_off, last_off, expired):
    t = now()
    r = get(idle8.port, cookie="ROUTEID=s1:%d:%d" % (t + first_off, t + last_off))
    if expired:
        assert_expired(r, t)
    else:
        assert_hit(r, "s1", set_cookie=True)


@pytest.mark.parametrize("value", [
    "s1:abc:def", "s1:123", "s1::", "s1:12x:34", "s1:1:2:3", "s1:%d:" % int(time.time()),
], ids=["letters", "one-date", "empty-dates", "junk-digit", "three-dates", "no-last"])
def test_dates_that_do_not_parse_are_unknown(idle8, value):
    r = get(idle8.port, cookie="ROUTEID=" + value)
    assert r.sticky_status == "unknown", r
    dated_cookie(r)


def test_maxlife_expires_by_first_and_never_refreshes(backends, make_proxy):
    p = make_proxy(body(backends, "MaxLife=3"))
    t = now()
    # young session, LAST far behind FIRST's refresh: no refresh without MaxIdle
    assert_hit(get(p.port, cookie="ROUTEID=s1:%d:%d" % (t - 1, t - 1)), "s1")
    assert_hit(get(p.port, cookie="ROUTEID=s2:%d:%d" % (t - 2, t - 2)), "s2")
    # older than MaxLife, however recent LAST
    assert_expired(get(p.port, cookie="ROUTEID=s1:%d:%d" % (t - 10, t - 10)), t)
    assert_expired(get(p.port, cookie="ROUTEID=s1:%d:%d" % (t - 10, t)), t)


# ----------------------------------------------- cookies from before dates


def test_undated_cookies_are_honoured_and_get_dates_at_once(idle8):
    for value, route in (("s1", "s1"), ("s2", "s2"), (".s1", "s1")):
        t = now()
        r = get(idle8.port, cookie="ROUTEID=" + value)
        assert_hit(r, route, set_cookie=True)
        route2, first, last, _ = dated_cookie(r)
        assert route2 == route and first == last and t - 1 <= first <= now() + 1, r.set_cookies
        assert_hit(get(idle8.port, cookie="ROUTEID=" + r.cookie_value()), route)


def test_application_session_dot_route_value_is_still_never_rewritten(idle8):
    for _ in range(3):
        r = get(idle8.port, cookie="ROUTEID=ABC123.s1")
        assert_hit(r, "s1")


# ------------------------------------------------------------- real time


def test_polling_client_gets_a_refresh_at_most_every_r_seconds(idle8):
    """MaxIdle=8 (R=2), a request every 0.3 s for 4 s: a few refreshes,
    each moving LAST by at least R, never on consecutive requests."""
    c = KeepAliveClient(idle8.port)
    r = c.request()
    assert r.sticky_status == "new", r
    route, first, last, _ = dated_cookie(r)
    refreshes = []
    start = time.monotonic()
    n = 0
    prev_refreshed = False
    while time.monotonic() - start < 4.0 and n < 30:
        time.sleep(0.3)
        n += 1
        r = c.request()
        assert_hit(r, route, set_cookie=True)
        if r.set_cookies:
            assert not prev_refreshed, "Set-Cookie on two consecutive requests"
            route2, first2, last2, _ = dated_cookie(r)
            assert (route2, first2) == (route, first), r.set_cookies
            assert last2 - last >= 2, "LAST moved by %d s < R=2 s" % (last2 - last)
            refreshes.append(round(time.monotonic() - start, 2))
            last = last2
        prev_refreshed = bool(r.set_cookies)
    c.close()
    assert n >= 9, "only %d requests in 4 s" % n
    assert 1 <= len(refreshes) <= 3, "refreshes at %s over %d requests" % (refreshes, n)


def test_idle_client_expires_while_active_client_never_does(backends, make_proxy):
    """MaxIdle=2 (R=1): a client idle 4.2 s is expired; a client requesting
    every 0.5 s for 5 s stays on its member throughout."""
    p = make_proxy(body(backends, "MaxIdle=2"))
    idle = get(p.port)
    assert idle.sticky_status == "new", idle
    idle_value = idle.cookie_value()
    idle_first = dated_cookie(idle)[1]
    active = KeepAliveClient(p.port)
    r = active.request()
    route, first, _, _ = dated_cookie(r)
    start = time.monotonic()
    idle_done = False
    n = 0
    while time.monotonic() - start < 5.0 and n < 20:
        time.sleep(0.5)
        n += 1
        r = active.request()
        assert_hit(r, route, set_cookie=True)
        if r.set_cookies:       # a refresh: same route, same FIRST
            assert dated_cookie(r)[:2] == (route, first), r.set_cookies
        if not idle_done and time.monotonic() - start >= 4.2:
            t = now()
            r2 = get(p.port, cookie="ROUTEID=" + idle_value)
            _, first2, _ = assert_expired(r2, t)
            assert first2 >= idle_first + 4, (idle_first, first2)
            idle_done = True
    active.close()
    assert idle_done and n >= 8, (idle_done, n)


def test_maxlife_client_is_expired_once_then_pinned_again(backends, make_proxy):
    """MaxLife=2: a client requesting every 0.5 s for 3.9 s is expired
    exactly once, 2-3.5 s after it was pinned (now - FIRST > 2 in whole
    seconds, then the next request), and is a plain hit before and after
    (never refreshed).  The next expiry is 2 s or more later: out of the
    window."""
    p = make_proxy(body(backends, "MaxLife=2"))
    c = KeepAliveClient(p.port)
    r = c.request()
    assert r.sticky_status == "new", r
    route, first, _, _ = dated_cookie(r)
    start = time.monotonic()
    expired_at = []
    n = 0
    while time.monotonic() - start < 3.9 and n < 20:
        time.sleep(0.5)
        n += 1
        r = c.request()
        assert r.status == 200, r
        if r.sticky_status == "expired":
            route, first2, last2, _ = dated_cookie(r)
            assert first2 > first and first2 == last2, r.set_cookies
            first = first2
            expired_at.append(round(time.monotonic() - start, 2))
        else:
            assert_hit(r, route)
    c.close()
    assert len(expired_at) == 1, "expired at %s (s after pinning)" % expired_at
    assert 1.9 <= expired_at[0] <= 3.7, expired_at


# ------------------------------------------------------------ with a secret


def test_signed_dated_cookie_is_a_hit_and_a_date_changed_by_one_second_is_forged(
        backends, make_proxy):
    p = make_proxy(body(backends, "MaxIdle=8", secret=SECRET))
    r = get(p.port)
    assert r.sticky_status == "new", r
    route, first, last, tag = dated_cookie(r, signed=True)
    value = r.cookie_value()
    assert value == "%s:%d:%d.%s" % (route, first, last, tag)
    for _ in range(3):
        assert_hit(get(p.port, cookie="ROUTEID=" + value), route)
    other = "s2" if route == "s1" else "s1"
    for bad in ("%s:%d:%d.%s" % (route, first - 1, last, tag),
                "%s:%d:%d.%s" % (route, first, last + 1, tag),
                "%s:%d:%d.%s" % (other, first, last, tag),
                "%s:%d:%d" % (route, first, last)):                # tag missing
        r2 = get(p.port, cookie="ROUTEID=" + bad)
        assert r2.sticky_status == "forged", (bad, r2)
        dated_cookie(r2, signed=True)


@pytest.mark.parametrize("dates", ["abc:def", "12x:34", ":"], ids=["letters", "junk-digit", "empty"])
def test_signed_value_with_dates_that_do_not_parse_is_forged(backends, make_proxy, dates):
    """With a secret, a value with unparseable dates is `forged` (the spec:
    `unknown`, or `forged` with a secret), even with a real tag after it."""
    p = make_proxy(body(backends, "MaxIdle=8", secret=SECRET))
    r = get(p.port)
    route, _, _, tag = dated_cookie(r, signed=True)
    r2 = get(p.port, cookie="ROUTEID=%s:%s.%s" % (route, dates, tag))
    assert r2.sticky_status == "forged", r2
    dated_cookie(r2, signed=True)


def test_signed_cookie_without_dates_is_honoured_and_gets_signed_dates(backends, make_proxy):
    plain = make_proxy(body(backends, "", secret=SECRET), name="plain")
    dated = make_proxy(body(backends, "MaxIdle=8", secret=SECRET), name="dated")
    r = get(plain.port)
    old = r.cookie_value()
    route = r.sticky_route
    assert old and old.startswith(route + ".") and parse_dated(old) is None, r
    t = now()
    r = get(dated.port, cookie="ROUTEID=" + old)
    assert_hit(r, route, set_cookie=True)
    route2, first, last, _ = dated_cookie(r, signed=True)
    assert route2 == route and first == last and t - 1 <= first <= now() + 1, r.set_cookies
    assert_hit(get(dated.port, cookie="ROUTEID=" + r.cookie_value()), route)


def test_two_proxies_sharing_the_secret_accept_each_others_dated_cookies(backends, make_proxy):
    one = make_proxy(body(backends, "MaxIdle=8", secret=SECRET), name="one")
    two = make_proxy(body(backends, "MaxIdle=8", secret=SECRET), name="two")
    for issuer, other in ((one, two), (two, one)):
        seen = set()
        for _ in range(4):
            r = get(issuer.port)
            route = dated_cookie(r, signed=True)[0]
            seen.add(route)
            for _ in range(2):
                assert_hit(get(other.port, cookie="ROUTEID=" + r.cookie_value()), route)
        assert seen == set(ROUTES), seen
