"""StickyRouteDiscover: a balancer's members are the addresses a name resolves
to, followed at run time without a reload. The resolver is the test's: the
proxy runs in its own mount namespace with a hosts file of the test bind-
mounted over /etc/hosts (harness.HostsFile); members are Python backends on
127.0.0.11, .12, ... sharing one port."""

import threading
import time

import pytest

from harness import (DERIVED_ROUTE_RE, HostsFile, PyBackend, free_port, get,
                     prometheus_samples, wait_until)
from harness import MANAGER_CONF as MANAGER
from harness import STATUS_CONF as STATUS

NAME = "disco.test"


def addr(i):
    return "127.0.0.%d" % (10 + i)


class Fleet:
    """Backends b1.. on 127.0.0.11.. (one port) and the hosts file."""

    def __init__(self, test_dir, port=None):
        self.port = port or free_port()
        self.hosts = HostsFile(test_dir / "hosts")
        self.backends = {}

    def start(self, i):
        if i not in self.backends:
            self.backends[i] = PyBackend("b%d" % i, respond=lambda c, n, h, name="b%d" % i:
                                         self.ok(name), port=self.port, host=addr(i))
        return self.backends[i]

    def ok(self, name):
        body = ("served by %s\n" % name).encode()
        return ("HTTP/1.1 200 OK\r\nX-Served-By: %s\r\nContent-Length: %d\r\n"
                "Connection: keep-alive\r\n\r\n" % (name, len(body))).encode() + body

    def resolve_to(self, *ids):
        for i in ids:
            self.start(i)
        self.hosts.set({NAME: [addr(i) for i in ids]} if ids else {})


@pytest.fixture
def fleet(test_dir):
    return Fleet(test_dir)


def discovering_proxy(make_proxy, fleet, lbmethod="sticky", extra="", inner="",
                      max_=8, name="proxy", start=True):
    body = (STATUS + MANAGER + extra +
            '<Proxy "balancer://app">\n'
            '    StickyRouteDiscover http://%s:%d interval=1 max=%d\n'
            '    ProxySet lbmethod=%s\n%s'
            '</Proxy>\n'
            'ProxyPass "/" "balancer://app/"\n' % (NAME, fleet.port, max_, lbmethod, inner))
    p = make_proxy(body, name=name, start=False)   # mod_watchdog is built in (Debian)
    p.wrapper = fleet.hosts.wrapper()
    if start:
        p.start()
    return p


def status(p):
    r = get(p.port, "/sticky-status")
    assert r.status == 200, r
    return prometheus_samples(r.body.decode())


def members_up(p):
    return {lab["route"]: v for n, lab, v in status(p)
            if n == "sticky_route_member_up" and lab["balancer"] == "app"}


def discover_gauge(p, metric):
    vals = [v for n, lab, v in status(p) if n == metric and lab["balancer"] == "app"]
    assert len(vals) == 1, vals
    return vals[0]


def new_sessions(p, n):
    """n requests without a cookie: {served_by: count}, {served_by: route}."""
    count, routes = {}, {}
    for _ in range(n):
        r = get(p.port)
        assert r.status == 200, r
        count[r.served_by] = count.get(r.served_by, 0) + 1
        routes[r.served_by] = r.sticky_route
    return count, routes


def test_members_at_start_are_the_addresses_of_the_name(fleet, make_proxy):
    fleet.resolve_to(1, 2)
    p = discovering_proxy(make_proxy, fleet)
    count, routes = new_sessions(p, 8)
    assert count == {"b1": 4, "b2": 4}, count
    assert all(DERIVED_ROUTE_RE.match(r) for r in routes.values()), routes
    up = members_up(p)
    assert sorted(up.values()) == [1, 1] and set(up) == set(routes.values()), up
    assert discover_gauge(p, "sticky_route_discover_members") == 2


def test_address_that_appears_takes_new_sessions_without_a_reload(fleet, make_proxy):
    fleet.resolve_to(1)
    p = discovering_proxy(make_proxy, fleet)
    r = get(p.port)
    pinned = r.cookie_value()
    assert r.served_by == "b1"
    fleet.resolve_to(1, 2, 3)
    wait_until(lambda: len(new_sessions(p, 3)[0]) == 3, 5, 0.3, "b2 and b3 take new sessions")
    count, _ = new_sessions(p, 30)
    assert count == {"b1": 10, "b2": 10, "b3": 10}, count
    # the first client keeps its member and cookie
    r = get(p.port, cookie="ROUTEID=" + pinned)
    assert (r.served_by, r.sticky_status, r.set_cookies) == ("b1", "hit", []), r


def test_address_that_disappears_loses_its_clients_once_and_comes_back_with_its_route(
        fleet, make_proxy):
    fleet.resolve_to(1, 2)
    p = discovering_proxy(make_proxy, fleet)
    cookies = {}
    for _ in range(4):
        r = get(p.port)
        cookies[r.served_by] = (r.cookie_value(), r.sticky_route)
    old_cookie, old_route = cookies["b2"]
    fleet.resolve_to(1)
    wait_until(lambda: members_up(p).get(old_route) == 0, 5, 0.3, "b2 disabled")
    r = get(p.port, cookie="ROUTEID=" + old_cookie)
    assert (r.served_by, r.sticky_status) == ("b1", "failover"), r
    moved = r.cookie_value()
    r = get(p.port, cookie="ROUTEID=" + moved)
    assert (r.served_by, r.sticky_status, r.set_cookies) == ("b1", "hit", []), r
    assert new_sessions(p, 6)[0] == {"b1": 6}
    # back: the same member (slot), the same route
    fleet.resolve_to(1, 2)
    wait_until(lambda: members_up(p).get(old_route) == 1, 5, 0.3, "b2 enabled again")
    # each process sees a member come back at its next scan (<= 1 s)
    seen = {}
    wait_until(lambda: seen.update(new_sessions(p, 4)[1]) or "b2" in seen, 5, 0.3,
               "b2 takes new sessions again")
    assert seen["b2"] == old_route, seen
    r = get(p.port, cookie="ROUTEID=" + old_cookie)
    assert (r.served_by, r.sticky_status) == ("b2", "hit"), r


def test_more_addresses_than_max_are_counted_and_logged(fleet, make_proxy):
    """max= is the number of discovered members at most (the start members
    included): with max=2 and four addresses, two are left out."""
    fleet.resolve_to(1)
    p = discovering_proxy(make_proxy, fleet, max_=2)
    fleet.resolve_to(1, 2, 3, 4)
    wait_until(lambda: discover_gauge(p, "sticky_route_discover_unplaced") == 2, 5, 0.3,
               "two addresses without a slot")
    assert discover_gauge(p, "sticky_route_discover_slots_free") == 0
    assert discover_gauge(p, "sticky_route_discover_members") == 2
    assert discover_gauge(p, "sticky_route_discover_slots") == 2
    count, _ = new_sessions(p, 8)
    assert len(count) == 2 and sum(count.values()) == 8, count
    assert "2 address(es) beyond max=2 get no member" in p.error_log


def test_resolver_failure_and_empty_answers_keep_the_last_good_set(fleet, make_proxy):
    fleet.resolve_to(1, 2)
    p = discovering_proxy(make_proxy, fleet)
    runs0 = discover_gauge(p, "sticky_route_discover_resolutions_total")
    fleet.resolve_to()          # the name no longer resolves
    wait_until(lambda: discover_gauge(p, "sticky_route_discover_errors_total") >= 2, 6, 0.3,
               "failed resolutions counted")
    assert discover_gauge(p, "sticky_route_discover_resolutions_total") > runs0
    count, _ = new_sessions(p, 8)
    assert count == {"b1": 4, "b2": 4}, count
    assert sorted(members_up(p).values()) == [1, 1]
    assert "does not resolve" in p.error_log
    fleet.resolve_to(1, 2)
    wait_until(lambda: "resolves again" in p.error_log, 5, 0.3, "recovery logged")


def test_two_proxies_give_discovered_members_the_same_routes(fleet, make_proxy):
    fleet.resolve_to(1, 2, 3)
    secret = 'StickyRouteSecret "discovery-shared-secret-0123"\n'
    one = discovering_proxy(make_proxy, fleet, extra=secret, name="one")
    two = discovering_proxy(make_proxy, fleet, extra=secret, name="two")
    assert set(members_up(one)) == set(members_up(two))
    for _ in range(6):
        r = get(one.port)
        r2 = get(two.port, cookie="ROUTEID=" + r.cookie_value())
        assert (r2.served_by, r2.sticky_status) == (r.served_by, "hit"), (r, r2)


def test_roundrobin_with_discovered_and_configured_members(fleet, make_proxy):
    fleet.resolve_to(1, 2)
    fixed = PyBackend("fixed", respond=lambda c, n, h: fleet.ok("fixed"))
    p = discovering_proxy(make_proxy, fleet, lbmethod="roundrobin",
                          inner='    BalancerMember "%s" route=fixed\n' % fixed.url)
    count, _ = new_sessions(p, 30)
    assert count == {"b1": 10, "b2": 10, "fixed": 10}, count
    fleet.resolve_to(1)
    wait_until(lambda: set(new_sessions(p, 4)[0]) == {"b1", "fixed"}, 5, 0.3, "b2 out")
    # every child process rebuilds its schedule within a second of a change
    # (a child that still had b2's turn spends a ticket finding it out);
    # exactness is promised from then on
    time.sleep(1.2)
    count, _ = new_sessions(p, 20)
    assert count == {"b1": 10, "fixed": 10}, count


def test_no_request_lost_while_the_set_changes_under_load(fleet, make_proxy):
    fleet.resolve_to(1, 2)
    p = discovering_proxy(make_proxy, fleet)
    errors, done = [], []
    stop = threading.Event()

    def client():
        cookie = None
        n = 0
        while not stop.is_set() and n < 2000:
            n += 1
            try:
                r = get(p.port, cookie=cookie)
                if r.status != 200:
                    errors.append(r.status)
                cookie = "ROUTEID=" + (r.cookie_value() or cookie.split("=", 1)[1]
                                       if cookie else r.cookie_value())
            except Exception as e:  # noqa: BLE001 - any failure counts
                errors.append(repr(e))
        done.append(n)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        for ids in [(1, 2, 3), (1, 3), (1, 3, 4), (3, 4), (1, 2, 3, 4)]:
            time.sleep(1.5)
            fleet.resolve_to(*ids)
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert sum(done) > 100, done
    assert errors == [], errors[:10]


def test_default_port_members_are_recognised_and_not_added_again(test_dir, make_proxy):
    """httpd leaves the scheme's default port out of a worker's name
    (http://127.0.0.11): the members discovery made must still be its own at
    the next resolutions - no slot used again for the same address."""
    fleet = Fleet(test_dir, port=80)
    fleet.resolve_to(1, 2)
    p = discovering_proxy(make_proxy, fleet, max_=4)
    free0 = discover_gauge(p, "sticky_route_discover_slots_free")
    runs0 = discover_gauge(p, "sticky_route_discover_resolutions_total")
    wait_until(lambda: discover_gauge(p, "sticky_route_discover_resolutions_total") >= runs0 + 3,
               8, 0.3, "three more resolutions")
    # max=4 discovered members in all: two made at start, two slots left
    assert discover_gauge(p, "sticky_route_discover_slots_free") == free0 == 2
    assert discover_gauge(p, "sticky_route_discover_members") == 2
    assert len(members_up(p)) == 2, members_up(p)
    count, _ = new_sessions(p, 8)
    assert count == {"b1": 4, "b2": 4}, count
    # and a member that goes and comes back keeps its slot
    fleet.resolve_to(1)
    wait_until(lambda: discover_gauge(p, "sticky_route_discover_members") == 1, 5, 0.3, "b2 gone")
    fleet.resolve_to(1, 2)
    wait_until(lambda: discover_gauge(p, "sticky_route_discover_members") == 2, 5, 0.3, "b2 back")
    assert discover_gauge(p, "sticky_route_discover_slots_free") == 2
