"""Member states: draining (+N), hot standby (+H), nofailover=On."""

from harness import SET_COOKIE_RE, balancer, free_port, get

ROUTES = {"s1": "alpha", "s2": "bravo", "s3": "charlie"}


def members(backends, params):
    return [(backends[n], route, params.get(route, "")) for route, n in ROUTES.items()]


def issued_route(r):
    assert len(r.set_cookies) == 1, r
    m = SET_COOKIE_RE.match(r.set_cookies[0])
    assert m, r
    return m.group(1)


def test_draining_member_keeps_its_clients_and_gets_no_new_ones(backends, make_proxy):
    p = make_proxy(balancer("app", members(backends, {"s1": "status=+N"})))
    for _ in range(20):
        r = get(p.port, cookie="ROUTEID=s1")
        assert (r.status, r.served_by, r.sticky_status, r.set_cookies) == (200, "alpha", "hit", []), r
    for _ in range(100):
        r = get(p.port)
        assert r.status == 200 and r.sticky_status == "new", r
        assert r.served_by != "alpha", r
        route = issued_route(r)
        assert route != "s1" and ROUTES[route] == r.served_by, r
    # existing clients still stay after the new ones arrived
    r = get(p.port, cookie="ROUTEID=s1")
    assert (r.served_by, r.sticky_status) == ("alpha", "hit"), r


def test_hot_standby_is_never_elected_while_a_regular_member_is_usable(backends, make_proxy):
    p = make_proxy(balancer("app", members(backends, {"s1": "status=+H"})))
    for _ in range(100):
        r = get(p.port)
        assert r.status == 200 and r.sticky_status == "new", r
        assert r.served_by != "alpha", r
        assert issued_route(r) != "s1"
    # a cookie naming the standby moves to a regular member
    r = get(p.port, cookie="ROUTEID=s1")
    assert r.status == 200 and r.sticky_status == "failover", r
    assert r.served_by in ("bravo", "charlie") and ROUTES[issued_route(r)] == r.served_by, r


def test_hot_standby_is_elected_when_all_regular_members_are_disabled(backends, make_proxy):
    p = make_proxy(balancer("app", members(backends, {
        "s1": "status=+H", "s2": "status=+D", "s3": "status=+D"})))
    for _ in range(20):
        r = get(p.port)
        assert (r.status, r.served_by, r.sticky_status) == (200, "alpha", "new"), r
        assert issued_route(r) == "s1"
    r = get(p.port, cookie="ROUTEID=s1")
    assert (r.status, r.served_by, r.sticky_status, r.set_cookies) == (200, "alpha", "hit", []), r
    # a client of a disabled regular member fails over to the standby
    r = get(p.port, cookie="ROUTEID=s2")
    assert (r.status, r.served_by, r.sticky_status) == (200, "alpha", "failover"), r
    assert issued_route(r) == "s1"


def test_hot_standby_is_elected_when_all_regular_members_are_unreachable(backends, make_proxy):
    dead2, dead3 = free_port(), free_port()
    p = make_proxy(balancer("app", [(backends["alpha"], "s1", "status=+H"),
                                    (dead2, "s2"), (dead3, "s3")]))
    for _ in range(20):
        r = get(p.port)
        assert (r.status, r.served_by) == (200, "alpha"), r
        assert r.set_cookies == ["ROUTEID=s1; Path=/; HttpOnly; SameSite=Lax"], r
    r = get(p.port, cookie="ROUTEID=s1")
    assert (r.status, r.served_by, r.sticky_status, r.set_cookies) == (200, "alpha", "hit", []), r


def test_nofailover_answers_503_for_a_cookie_naming_a_disabled_member(backends, make_proxy):
    p = make_proxy(balancer("app", members(backends, {"s1": "status=+D"}),
                            proxyset="lbmethod=sticky nofailover=On"))
    for _ in range(3):
        r = get(p.port, cookie="ROUTEID=s1")
        assert r.status == 503, r
        assert r.served_by is None, r
        assert not any(sc.startswith("ROUTEID=") for sc in r.set_cookies), r
    # usable members and new clients are served normally
    r = get(p.port, cookie="ROUTEID=s2")
    assert (r.status, r.served_by, r.sticky_status) == (200, "bravo", "hit"), r
    r = get(p.port)
    assert r.status == 200 and r.sticky_status == "new" and r.served_by != "alpha", r


def test_nofailover_answers_503_for_a_cookie_naming_an_unreachable_member(backends, make_proxy):
    dead = free_port()
    p = make_proxy(balancer("app", [(dead, "s1"), (backends["bravo"], "s2")],
                            proxyset="lbmethod=sticky nofailover=On"))
    for _ in range(3):
        r = get(p.port, cookie="ROUTEID=s1")
        assert r.status == 503, r
        assert r.served_by is None, r
    r = get(p.port, cookie="ROUTEID=s2")
    assert (r.status, r.served_by, r.sticky_status) == (200, "bravo", "hit"), r
