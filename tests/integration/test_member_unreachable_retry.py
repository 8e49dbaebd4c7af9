"""A member that stops accepting connections while it is still a member (its
server stopped before discovery disabled it, or it was disabled between the
election and the connect): the request goes to another member, never 503.

mod_proxy answers 503 when the connection to the elected member cannot be
made (ap_proxy_connect_backend fails, or ap_proxy_acquire_connection finds
the member no longer usable: AH00940), and fails over to another member only
`maxattempts` times. Unless configured, mod_proxy_balancer sets that to the
number of members a child process saw at its start, minus one: 0 for a
discovered pool that started empty or with one address (a fresh `docker
stack deploy`: the tasks enter DNS only once healthy), 1 with two. Members
discovered later do not raise it. The module retries such a request on
another member itself (sr_retry_unreached_allowed in sr_policy_retry.c).

The members are Python backends on 127.0.0.11.. sharing one port, resolved
through a hosts file of the test bind-mounted over /etc/hosts (as in
test_discovery.py); a member "stops" by closing its listening socket, so a
connect to it is refused while its address is still in the answer.
"""

import time

import pytest

from harness import HostsFile, PyBackend, free_port, get, prometheus_samples, wait_until
from harness import STATUS_CONF as STATUS

NAME = "unreach.test"
LOG_LEVEL = __import__("os").environ.get("SR_TEST_LOGLEVEL", "warn")


def addr(i):
    return "127.0.0.%d" % (10 + i)


class Members:
    def __init__(self, test_dir):
        self.port = free_port()
        self.hosts = HostsFile(test_dir / "hosts")
        self.backends = {}

    def resolve_to(self, *ids):
        for i in ids:
            if i not in self.backends:
                self.backends[i] = PyBackend("u%d" % i, respond=lambda c, n, h, name="u%d" % i:
                                             self.ok(name), port=self.port, host=addr(i))
        self.hosts.set({NAME: [addr(i) for i in ids]} if ids else {})

    @staticmethod
    def ok(name):
        body = ("served by %s\n" % name).encode()
        return ("HTTP/1.1 200 OK\r\nX-Served-By: %s\r\nContent-Length: %d\r\n"
                "Connection: keep-alive\r\n\r\n" % (name, len(body))).encode() + body

    def stop_accepting(self, i):
        """Closes member i's listening socket: a connect is refused from now
        on; its address stays in the answer."""
        self.backends[i].stop()


def discovering_proxy(make_proxy, members, lbmethod):
    body = (STATUS +
            '<Proxy "balancer://app">\n'
            '    StickyRouteDiscover http://%s:%d interval=1 max=8\n'
            '    ProxySet lbmethod=%s\n'
            '</Proxy>\n'
            'ProxyPass "/" "balancer://app/"\n' % (NAME, members.port, lbmethod))
    p = make_proxy(body, start=False, log_level=LOG_LEVEL)
    p.wrapper = members.hosts.wrapper()
    p.start()
    return p


def members_up(p):
    r = get(p.port, "/sticky-status")
    assert r.status == 200, r
    return sum(v for n, lab, v in prometheus_samples(r.body.decode())
               if n == "sticky_route_member_up" and lab["balancer"] == "app")


def wait_members_up(p, n):
    wait_until(lambda: members_up(p) == n, timeout=15, what="%d members up" % n)
    time.sleep(1.2)     # every child process has scanned them (once a second)


@pytest.fixture
def members(test_dir):
    return Members(test_dir)


@pytest.mark.parametrize("at_start", [(), (1,)], ids=["started-empty", "started-with-one"])
def test_new_clients_of_a_member_that_refuses_connections_are_served_by_another(
        members, make_proxy, at_start):
    members.resolve_to(*at_start)
    p = discovering_proxy(make_proxy, members, "sticky")
    members.resolve_to(1, 2)
    wait_members_up(p, 2)
    members.stop_accepting(1)
    # every new client, on a new connection: round robin elects member 1 for
    # one of the first two, and its connect is refused
    rs = [get(p.port, "/") for _ in range(6)]
    assert [(r.status, r.served_by) for r in rs] == [(200, "u2")] * 6, rs
    assert all(r.sticky_status == "new" and len(r.set_cookies) == 1 for r in rs), rs
    assert "AH01114" in p.error_log or "AH00957" in p.error_log, \
        "no connect to the stopped member was tried"


def test_client_pinned_to_a_member_that_refuses_connections_moves_within_the_request(
        members, make_proxy):
    p = discovering_proxy(make_proxy, members, "sticky")    # started empty
    members.resolve_to(1, 2)
    wait_members_up(p, 2)
    cookie = None
    for _ in range(4):
        r = get(p.port, "/")
        if r.served_by == "u1":
            cookie = r.cookie_value()
            break
    assert cookie, "no new client was given member u1"
    members.stop_accepting(1)
    r = get(p.port, "/", cookie="ROUTEID=" + cookie)
    assert (r.status, r.served_by, r.sticky_status) == (200, "u2", "failover"), r
    assert len(r.set_cookies) == 1, r
    again = get(p.port, "/", cookie="ROUTEID=" + r.cookie_value())
    assert (again.status, again.served_by, again.sticky_status, again.set_cookies) == \
        (200, "u2", "hit", []), again


@pytest.mark.parametrize("at_start", [(), (1, 2)], ids=["started-empty", "started-with-two"])
def test_two_unreachable_members_of_four_cost_no_request(members, make_proxy, at_start):
    # grown to four, then two stop: a request may meet both before it finds
    # a live one (started with two, httpd's maxattempts is 1)
    members.resolve_to(*at_start)
    p = discovering_proxy(make_proxy, members, "sticky")
    members.resolve_to(1, 2, 3, 4)
    wait_members_up(p, 4)
    pinned = {}
    for _ in range(40):
        r = get(p.port, "/")
        assert r.status == 200, r
        pinned.setdefault(r.served_by, r.cookie_value())
        if len(pinned) == 4:
            break
    assert sorted(pinned) == ["u1", "u2", "u3", "u4"], pinned
    members.stop_accepting(3)
    members.stop_accepting(4)
    rs = [get(p.port, "/", cookie="ROUTEID=" + pinned["u3"]), get(p.port, "/", cookie="ROUTEID=" + pinned["u4"])]
    rs += [get(p.port, "/") for _ in range(8)]
    assert all(r.status == 200 and r.served_by in ("u1", "u2") for r in rs), rs


def test_roundrobin_request_to_a_member_that_refuses_connections_goes_to_the_next(
        members, make_proxy):
    p = discovering_proxy(make_proxy, members, "roundrobin")  # started empty
    members.resolve_to(1, 2)
    wait_members_up(p, 2)
    members.stop_accepting(1)
    rs = [get(p.port, "/") for _ in range(4)]
    assert [(r.status, r.served_by) for r in rs] == [(200, "u2")] * 4, rs
