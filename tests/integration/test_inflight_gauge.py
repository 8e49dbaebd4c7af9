"""The in-flight gauge (issue 10): `sticky_route_member_inflight{server,
balancer,route}` in the Prometheus output, `inflight` in each JSON member.

It counts the requests a member is serving now, across every proxy child
process, and returns to 0 after every way a request can end: a normal
answer, a 5xx from the member, a member refusing the connection (failover
to another), a client that closes its socket while the member still works
on the answer, a request retried on another member (or on the same one
after a stale pooled connection).  A gauge that stays above 0 is a leak:
every scenario ends by waiting (at most ~1.5 s) for all members to read 0.

These balancers configure no setting that reads the counts, so the gauge
is asked for explicitly (`StickyRouteInflight On`, issue 18 item 5: by
default nothing is counted then); test_inflight_directive.py tests the
default and the directive.
"""

import socket
import time

import pytest

from harness import (STATUS_CONF, HeldRequests, PyBackend, SlowBackend, balancer, free_port,
                     get, member_values, status_json_members, wait_until)

METRIC = "sticky_route_member_inflight"


def inflight(p, name="app", validate=False):
    return member_values(p.port, METRIC, name, validate=validate)


def assert_drains(p, routes, name="app", timeout=1.5):
    """Every member of the balancer reads 0 within `timeout` seconds."""
    last = {}

    def zero():
        last["v"] = inflight(p, name)
        return set(last["v"]) == set(routes) and all(v == 0 for v in last["v"].values())
    try:
        wait_until(zero, timeout, interval=0.1, what="in-flight gauges back to 0")
    except TimeoutError:
        pass
    assert set(last["v"]) == set(routes), "gauge rows %s, expected routes %s" % (last["v"], routes)
    assert all(v == 0 for v in last["v"].values()), \
        "in-flight gauge still above 0 %.1f s after the requests ended: %s" % (timeout, last["v"])


@pytest.fixture
def pair():
    return SlowBackend("A", slow=1.2), SlowBackend("B", slow=1.2)


def body(members, proxyset="lbmethod=sticky", name="app", mount="/"):
    return STATUS_CONF + balancer(name, members, proxyset=proxyset, mount=mount,
                                  inner="StickyRouteInflight On")


def test_gauge_is_a_valid_gauge_in_prometheus_and_json(pair, make_proxy):
    a, b = pair
    p = make_proxy(body([(a.url, "a"), (b.url, "b")]))
    r = get(p.port, "/sticky-status")
    assert "# TYPE %s gauge" % METRIC in r.body.decode(), r.body.decode()
    assert inflight(p, validate=True) == {"a": 0, "b": 0}
    members = status_json_members(p.port)
    assert [(m["route"], m["inflight"]) for m in members] == [("a", 0), ("b", 0)], members


def test_normal_requests_leave_the_gauge_at_zero(pair, make_proxy):
    a, b = pair
    p = make_proxy(body([(a.url, "a"), (b.url, "b")]))
    for i in range(20):
        r = get(p.port, cookie="ROUTEID=a" if i % 3 == 0 else None)
        assert r.status == 200, r
    results = HeldRequests(p.port, 16, "/").join()
    assert all(getattr(r, "status", None) == 200 for r in results), results
    assert_drains(p, ["a", "b"])


def test_gauge_counts_requests_held_across_processes(pair, make_proxy):
    a, b = pair
    p = make_proxy(body([(a.url, "a"), (b.url, "b")]))
    held = HeldRequests(p.port, 3, "/slow", cookie="ROUTEID=a")
    held_b = HeldRequests(p.port, 1, "/slow", cookie="ROUTEID=b")
    a.wait_held(3)
    b.wait_held(1)
    seen = [inflight(p) for _ in range(6)]       # fresh connections: both children answer
    assert (a.held, b.held) == (3, 1), "the slow requests ended before the gauge was read"
    assert all(v == {"a": 3, "b": 1} for v in seen), seen
    json_seen = {m["route"]: m["inflight"] for m in status_json_members(p.port)}
    assert json_seen == {"a": 3, "b": 1}, json_seen
    for r in held.join() + held_b.join():
        assert getattr(r, "status", None) == 200, r
    assert_drains(p, ["a", "b"])


def test_member_answering_5xx_leaves_the_gauge_at_zero(pair, make_proxy):
    a, b = pair
    p = make_proxy(body([(a.url, "a"), (b.url, "b")]))
    for i in range(10):
        r = get(p.port, "/err", cookie="ROUTEID=a" if i % 2 else None)
        assert r.status == 500 and r.served_by in ("A", "B"), r
    assert_drains(p, ["a", "b"])


def test_member_refusing_connections_leaves_the_gauge_at_zero(pair, make_proxy):
    a, b = pair
    dead = free_port()
    p = make_proxy(body([(a.url, "a"), (b.url, "b"), (dead, "c")]))
    for i in range(4):
        r = get(p.port, cookie="ROUTEID=c")
        assert (r.status, r.sticky_status) == (200, "failover"), r
        assert r.served_by in ("A", "B"), r
    for i in range(9):
        assert get(p.port).status == 200
    assert_drains(p, ["a", "b", "c"])


def test_client_closing_its_socket_while_the_member_works_leaves_no_count(pair, make_proxy):
    a, b = pair
    p = make_proxy(body([(a.url, "a"), (b.url, "b")]))
    socks = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ROUTEID=a\r\n\r\n")
        socks.append(s)
    a.wait_held(3)
    assert inflight(p) == {"a": 3, "b": 0}
    for s in socks:                  # abort: RST, nothing read
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    # the member answers after its 1.2 s; the proxy then finds the client gone
    wait_until(lambda: a.held == 0, 5, what="the member to finish")
    assert_drains(p, ["a", "b"], timeout=2.0)


def test_requests_retried_on_another_member_leave_no_count(pair, make_proxy):
    a, b = pair
    closes = PyBackend("closes", respond=lambda conn_no, req_no, head: None)
    p = make_proxy(body([(a.url, "a"), (b.url, "b"), (closes.url, "c")]))
    for i in range(5):
        r = get(p.port, cookie="ROUTEID=c")
        assert (r.status, r.sticky_status) == (200, "failover"), (i, r)
        assert r.served_by in ("A", "B"), r
    assert closes.requests >= 1, "the member that closes was never tried"
    assert_drains(p, ["a", "b", "c"])


def test_requests_retried_on_the_same_member_after_a_stale_connection_leave_no_count(
        pair, make_proxy):
    a, b = pair
    stale = PyBackend("stale")
    stale.respond = lambda conn_no, req_no, head: stale.ok() if req_no == 1 else None
    p = make_proxy(body([(a.url, "a"), (stale.url, "s")]))
    for i in range(8):
        r = get(p.port, cookie="ROUTEID=s")
        assert (r.status, r.served_by, r.sticky_status) == (200, "stale", "hit"), (i, r)
    assert stale.closed_on_reuse >= 1, "no pooled connection was reused"
    assert_drains(p, ["a", "s"])


def test_roundrobin_balancer_leaves_no_count(pair, make_proxy):
    a, b = pair
    closes = PyBackend("closes", respond=lambda conn_no, req_no, head: None)
    p = make_proxy(body([(a.url, "a"), (b.url, "b"), (closes.url, "c")],
                        proxyset="lbmethod=roundrobin"))
    for i in range(9):
        r = get(p.port, "/err" if i % 3 == 0 else "/")
        assert r.status in (200, 500) and r.served_by in ("A", "B"), (i, r)
    time.sleep(0.1)
    assert_drains(p, ["a", "b", "c"])
