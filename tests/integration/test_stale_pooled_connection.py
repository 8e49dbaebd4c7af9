"""A stale pooled connection is not a failed member.

The member here answers the first request of every TCP connection and closes
the connection, without sending a byte, when a second request arrives on it:
what a backend whose keep-alive timeout races with the proxy's reuse of a
pooled connection looks like.  mod_proxy_http then logs AH01102 and answers
502 (on the first request of a client connection).  That says nothing about
the member, which answers at once on a fresh connection: its sticky clients
stay on it (hit, no Set-Cookie), a sole member never turns into a 503 and
round robin keeps its share.  A member that fails on fresh connections too
is a failed member: a GET goes to another member.

Every client request goes on a new client connection, so that the proxy
answers (on a reused client connection mod_proxy_http closes it instead).
"""

import collections
import threading
import time

import pytest

from harness import ClosesAlways, StaleOnReuse, balancer, get

ROUTE_COOKIE = "ROUTEID=s1"


@pytest.fixture
def stale():
    return StaleOnReuse("stale")


def pinned_to(p, name):
    """A first request (no cookie) served by `name`; returns its cookie."""
    seen = []
    for _ in range(10):
        r = get(p.port)
        assert r.status == 200, r
        if r.served_by == name:
            assert r.sticky_status == "new", r
            value = r.cookie_value()
            assert value == "s1", r
            return "ROUTEID=" + value
        seen.append(r.served_by)
    pytest.fail("no new session reached %s: %s" % (name, seen))


def test_sticky_client_stays_on_member_whose_pooled_connection_was_stale(
        backends, make_proxy, stale):
    p = make_proxy(balancer("app", [(stale.url, "s1"), (backends["bravo"], "s2")]))
    cookie = pinned_to(p, "stale")
    for i in range(20):
        r = get(p.port, cookie=cookie)
        assert r.status == 200, (i, r)
        assert (r.served_by, r.sticky_status, r.set_cookies) == ("stale", "hit", []), \
            "request %d moved off its member after a stale pooled connection: %r" % (i, r)
    assert stale.closed_on_reuse >= 1, \
        "the situation was not built: the proxy never reused a pooled connection"


def test_sole_member_with_stale_pooled_connection_never_answers_503(make_proxy, stale):
    p = make_proxy(balancer("app", [(stale.url, "s1")]))
    statuses = collections.Counter()
    for i in range(20):
        r = get(p.port, cookie=ROUTE_COOKIE if i % 2 else None)
        statuses[(r.status, r.served_by)] += 1
    assert statuses == {(200, "stale"): 20}, statuses
    assert stale.closed_on_reuse >= 1, stale.closed_on_reuse


def test_roundrobin_member_with_stale_pooled_connection_keeps_its_share(
        backends, make_proxy, stale):
    p = make_proxy(balancer("app", [(stale.url, None), (backends["bravo"], None)],
                            proxyset="lbmethod=roundrobin"))
    n = 40
    served = collections.Counter()
    for i in range(n):
        r = get(p.port)
        assert r.status == 200, (i, r)
        served[r.served_by] += 1
    assert served["stale"] >= 0.45 * n and served["bravo"] >= 0.45 * n, \
        "round robin over %d requests: %s" % (n, dict(served))
    assert stale.closed_on_reuse >= 1, stale.closed_on_reuse


def test_under_load_sticky_clients_stay_on_member_with_stale_pooled_connections(
        backends, make_proxy, stale):
    p = make_proxy(balancer("app", [(stale.url, "s1"), (backends["bravo"], "s2")]))
    threads, per_thread = 8, 50
    lock = threading.Lock()
    outcome = collections.Counter()
    bad = []
    deadline = time.monotonic() + 60

    def client():
        for _ in range(per_thread):
            if time.monotonic() > deadline:
                with lock:
                    outcome["timed-out"] += 1
                return
            try:
                r = get(p.port, cookie=ROUTE_COOKIE)
                key = (r.status, r.served_by, r.sticky_status, bool(r.set_cookies))
            except OSError as e:
                key = ("error", type(e).__name__)
                r = e
            with lock:
                outcome[key] += 1
                if key != (200, "stale", "hit", False) and len(bad) < 5:
                    bad.append(r)

    workers = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(max(1.0, deadline + 5 - time.monotonic()))
    assert not any(t.is_alive() for t in workers), "clients still running"
    assert outcome == {(200, "stale", "hit", False): threads * per_thread}, \
        "%s; first bad: %s" % (dict(outcome), bad)
    assert stale.closed_on_reuse >= 1, stale.closed_on_reuse


def test_member_failing_on_fresh_connections_is_failed_over_for_get(backends, make_proxy):
    broken = ClosesAlways("broken")
    p = make_proxy(balancer("app", [(broken.url, "s1"), (backends["bravo"], "s2")]))
    for i in range(10):
        r = get(p.port, cookie=ROUTE_COOKIE)
        assert (r.status, r.served_by, r.sticky_status) == (200, "bravo", "failover"), (i, r)
        assert r.set_cookies == ["ROUTEID=s2; Path=/; HttpOnly; SameSite=Lax"], (i, r)
    for i in range(10):
        r = get(p.port)
        assert (r.status, r.served_by) == (200, "bravo"), (i, r)
    assert broken.requests >= 1, "the failing member was never tried"
