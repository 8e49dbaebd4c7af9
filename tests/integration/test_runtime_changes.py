"""What an operator changes while the proxy runs: graceful restarts with other
members or another secret, the lbmethod switched through balancer-manager;
and the decision log an operator reads to see why a request went where."""

import re

from srtest.wait import wait_until

from harness import (BalancerManager, balancer, crash_lines, get, graceful_restart,
                     prometheus_samples)
from harness import MANAGER_CONF as MANAGER
from harness import STATUS_CONF as STATUS


def graceful(proxy, body):
    """Rewrites the proxy's configuration with another body and restarts it
    gracefully; waits until a new generation answers."""
    before = set(proxy.child_pids())
    graceful_restart(proxy, body)

    def new_generation_only():
        now = set(proxy.child_pids())
        return now and not (now & before) and get(proxy.port).status == 200
    wait_until(new_generation_only, 15, 0.1, "only a new generation, answering 200")


def counters(proxy, name):
    r = get(proxy.port, "/sticky-status")
    assert r.status == 200, r
    return {(lab["route"], lab["status"]): v
            for n, lab, v in prometheus_samples(r.body.decode())
            if n == "sticky_route_requests_total" and lab["balancer"] == name}


def test_debug_log_says_why_each_request_went_where(backends, make_proxy):
    p = make_proxy(balancer("app", [(backends["alpha"], "s1"), (backends["bravo"], "s2")]),
                   log_level="warn sticky_route:debug")
    r = get(p.port)
    assert r.sticky_status == "new", r
    route = r.sticky_route
    r = get(p.port, cookie="ROUTEID=" + route)
    assert r.sticky_status == "hit", r
    log = p.error_log
    assert re.search(r"\[sticky_route:debug\].*balancer://app: route %s \(http://127\.0\.0\.1:\d+\) "
                     r"decision new: no cookie" % route, log), log[-2000:]
    assert re.search(r"\[sticky_route:debug\].*balancer://app: route %s .*decision hit: "
                     r"cookie names a usable member" % route, log), log[-2000:]


def test_debug_log_is_silent_at_the_default_level(backends, make_proxy):
    p = make_proxy(balancer("app", [(backends["alpha"], "s1")]))
    for _ in range(3):
        assert get(p.port).status == 200
    assert "decision" not in p.error_log


def test_graceful_restart_with_a_member_added_and_one_removed(backends, make_proxy):
    first = balancer("app", [(backends["alpha"], "s1"), (backends["bravo"], "s2")])
    p = make_proxy(STATUS + first)
    c1 = c2 = None
    for _ in range(4):
        r = get(p.port)
        if r.sticky_route == "s1":
            c1 = r.cookie_value()
        else:
            c2 = r.cookie_value()
    assert c1 and c2
    for _ in range(3):
        assert get(p.port, cookie="ROUTEID=" + c1).sticky_status == "hit"
    # counted in log_transaction, after the client has its response
    wait_until(lambda: counters(p, "app").get(("s1", "hit")) == 3, 5, what="3 hits counted")
    hits_before = 3

    graceful(p, STATUS + balancer("app", [(backends["alpha"], "s1"),
                                          (backends["charlie"], "s3")]))
    # the member that stayed keeps its clients and its counters
    r = get(p.port, cookie="ROUTEID=" + c1)
    assert (r.served_by, r.sticky_status, r.set_cookies) == ("alpha", "hit", []), r
    # clients of the member that went are moved once, with a new cookie
    r = get(p.port, cookie="ROUTEID=" + c2)
    assert r.sticky_status == "unknown" and r.served_by in ("alpha", "charlie"), r
    assert len(r.set_cookies) == 1, r
    # the new member takes new sessions
    served = {get(p.port).served_by for _ in range(6)}
    assert served == {"alpha", "charlie"}, served
    c = wait_until(lambda: (lambda c: c if c.get(("s1", "hit")) == hits_before + 1 and ("s3", "new") in c
                   else None)(
        counters(p, "app")), 5, what="the hit after the restart counted")
    assert ("s3", "new") in c and ("s2", "hit") not in c, c
    assert crash_lines(p) == []


def test_graceful_restart_with_another_secret_reissues_cookies(backends, make_proxy):
    members = [(backends["alpha"], "s1"), (backends["bravo"], "s2")]
    p = make_proxy('StickyRouteSecret "first-secret-0123456789"\n' + balancer("app", members))
    old = get(p.port).cookie_value()
    assert get(p.port, cookie="ROUTEID=" + old).sticky_status == "hit"
    graceful(p, 'StickyRouteSecret "second-secret-0123456789"\n' + balancer("app", members))
    r = get(p.port, cookie="ROUTEID=" + old)
    assert r.sticky_status == "forged", r
    new = r.cookie_value()
    assert new and new != old
    assert get(p.port, cookie="ROUTEID=" + new).sticky_status == "hit"
    assert crash_lines(p) == []


def test_lbmethod_switched_through_balancer_manager(backends, make_proxy):
    body = MANAGER + balancer("app", [(backends["alpha"], "s1"), (backends["bravo"], "s2")],
                              proxyset="lbmethod=byrequests")
    p = make_proxy(body, extra_modules=("lbmethod_byrequests",))
    bm = BalancerManager(p.port)
    assert get(p.port).status == 200
    # byrequests -> sticky: the module takes over, cookies and all
    bm.post("app", [("b_lbm", "sticky")])
    seen = set()
    for _ in range(4):
        r = get(p.port)
        assert r.status == 200, r
        if r.sticky_status == "new":
            seen.add(r.served_by)
            assert r.cookie_value(), r
    assert seen == {"alpha", "bravo"}, seen
    cookie = r.cookie_value()
    r2 = get(p.port, cookie="ROUTEID=" + cookie)
    assert r2.sticky_status == "hit" and r2.served_by == r.served_by, r2
    # sticky -> roundrobin -> byrequests: still served, nothing crashes
    bm.post("app", [("b_lbm", "roundrobin")])
    assert {get(p.port).served_by for _ in range(4)} == {"alpha", "bravo"}
    bm.post("app", [("b_lbm", "byrequests")])
    for _ in range(4):
        assert get(p.port).status == 200
    assert crash_lines(p) == []
