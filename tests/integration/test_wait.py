"""StickyRouteWait SECONDS [max=N]: a request that finds no usable member
waits for one instead of failing; beyond max= waiting requests per child
process, after SECONDS, and when the process stops, it is answered 503 with
Retry-After at once. The status endpoint shows the requests waiting now.

Empty pools are made two ways: a discovered name that resolves to nothing
yet (the proxy in its own mount namespace with the test's hosts file, as in
test_discovery.py), and configured members disabled (status=+D, or through
balancer-manager)."""

import json
import re
import subprocess
import time

import pytest

from harness import (MANAGER_CONF, STATUS_CONF, STATUS_PATH, HeldRequests,
                     HostsFile, PyBackend, balancer, free_port, get, pid_alive,
                     status_samples, wait_until)
from srtest.apache import ctl

NAME = "wait.test"


def ok(name):
    body = ("served by %s\n" % name).encode()
    return ("HTTP/1.1 200 OK\r\nX-Served-By: %s\r\nContent-Length: %d\r\n"
            "Connection: keep-alive\r\n\r\n" % (name, len(body))).encode() + body


def wait_values(port, balancer_name="app", validate=False):
    """{metric: value} of the sticky_route_wait_* series of one balancer."""
    return {name: value for name, labels, value in status_samples(port, validate=validate)
            if name.startswith("sticky_route_wait_") and labels.get("balancer") == balancer_name}


def waiting(port):
    return wait_values(port).get("sticky_route_wait_waiting")


def timed_get(port, path="/", timeout=30):
    t0 = time.monotonic()
    r = get(port, path, timeout=timeout)
    return r, time.monotonic() - t0


def discovering_proxy(make_proxy, test_dir, wait="StickyRouteWait 10", lbmethod="sticky",
                      **kw):
    """A proxy whose balancer app discovers NAME (which resolves to nothing
    yet); returns (proxy, hosts file, member port)."""
    hosts = HostsFile(test_dir / "hosts")
    port = free_port()
    body = (STATUS_CONF + MANAGER_CONF +
            '<Proxy "balancer://app">\n'
            '    StickyRouteDiscover http://%s:%d interval=1 max=4\n'
            '    %s\n'
            '    ProxySet lbmethod=%s\n'
            '</Proxy>\n'
            'ProxyPass "/" "balancer://app/"\n' % (NAME, port, wait, lbmethod))
    p = make_proxy(body, start=False, **kw)
    p.wrapper = hosts.wrapper()
    p.start()
    return p, hosts, port


def disabled_proxy(make_proxy, backend, wait="StickyRouteWait 10", lbmethod="sticky",
                   **kw):
    """A proxy whose balancer app has one configured member, disabled."""
    inner = wait
    body = (STATUS_CONF + MANAGER_CONF +
            balancer("app", [(backend, "m1", "status=+D")], proxyset="lbmethod=" + lbmethod,
                     inner=inner))
    return make_proxy(body, **kw)


@pytest.mark.parametrize("lbmethod", ["sticky", "roundrobin"])
def test_empty_discovered_pool_waits_and_serves_when_the_first_member_appears(
        make_proxy, test_dir, lbmethod):
    p, hosts, port = discovering_proxy(make_proxy, test_dir, lbmethod=lbmethod)
    member = PyBackend("m1", respond=lambda c, n, h: ok("m1"), port=port, host="127.0.0.21")
    t0 = time.monotonic()
    held = HeldRequests(p.port, 6, path="/", timeout=30)
    wait_until(lambda: waiting(p.port) == 6, 5, 0.1, "six requests waiting")
    time.sleep(max(0.0, 3.0 - (time.monotonic() - t0)))
    hosts.set({NAME: ["127.0.0.21"]})          # the first task is up: 3 s later
    results = held.join(timeout=20)
    elapsed = time.monotonic() - t0
    assert [getattr(r, "status", r) for r in results] == [200] * 6, results
    assert all(r.served_by == "m1" for r in results), results
    assert elapsed >= 3.0, elapsed
    assert elapsed < 10.0, "served %.1f s after the start: not when the member came" % elapsed
    assert member.answered == 6
    v = wait_values(p.port, validate=True)
    assert v["sticky_route_wait_waiting"] == 0, v
    assert v["sticky_route_wait_served_total"] == 6, v
    assert v["sticky_route_wait_timeouts_total"] == 0, v
    assert v["sticky_route_wait_refused_total"] == 0, v
    assert v["sticky_route_wait_limit_seconds"] == 10, v
    # the member is there now: a request no longer waits
    r, took = timed_get(p.port)
    assert r.status == 200 and took < 1.0, (r, took)


@pytest.mark.parametrize("lbmethod", ["sticky", "roundrobin"])
def test_beyond_max_requests_get_503_at_once_with_retry_after(make_proxy, backends,
                                                               lbmethod):
    p = disabled_proxy(make_proxy, backends["alpha"], wait="StickyRouteWait 8 max=2",
                       lbmethod=lbmethod, start_servers=1, server_limit=1)
    held = HeldRequests(p.port, 2, path="/", timeout=30)
    wait_until(lambda: waiting(p.port) == 2, 5, 0.1, "two requests waiting")
    for _ in range(3):
        r, took = timed_get(p.port)
        assert r.status == 503, r
        assert r.get("Retry-After") == "8", r.headers
        assert took < 0.5, "refused after %.2f s, not at once" % took
    assert waiting(p.port) == 2
    v = wait_values(p.port)
    assert v["sticky_route_wait_refused_total"] == 3, v
    assert v["sticky_route_wait_max"] == 2, v
    # the two that wait are served once the member is enabled
    from harness import BalancerManager
    BalancerManager(p.port).edit_worker("app", backends["alpha"].url, [("w_status_D", "0")])
    results = held.join(timeout=20)
    assert [getattr(r, "status", r) for r in results] == [200, 200], results
    assert "max=2" in p.error_log


def test_no_member_within_the_limit_is_503_with_retry_after_after_about_the_limit(
        make_proxy, backends):
    p = disabled_proxy(make_proxy, backends["alpha"], wait="StickyRouteWait 2")
    r, took = timed_get(p.port)
    assert r.status == 503, r
    assert r.get("Retry-After") == "2", r.headers
    assert 1.9 <= took < 3.5, "answered after %.2f s; the limit is 2 s" % took
    v = wait_values(p.port)
    assert v["sticky_route_wait_timeouts_total"] == 1, v
    assert v["sticky_route_wait_waiting"] == 0, v
    assert "no usable member after waiting 2 s" in p.error_log


def test_without_stickyroutewait_a_request_fails_at_once_as_before(make_proxy, backends):
    body = STATUS_CONF + balancer("app", [(backends["alpha"], "m1", "status=+D")])
    p = make_proxy(body)
    r, took = timed_get(p.port)
    assert r.status == 503 and took < 0.5, (r, took)
    assert r.get("Retry-After") is None, r.headers
    assert not [n for n, _, _ in status_samples(p.port) if n.startswith("sticky_route_wait_")]


@pytest.mark.parametrize("lbmethod", ["sticky", "roundrobin"])
def test_member_disabled_through_balancer_manager_then_enabled_serves_the_waiting_requests(
        make_proxy, backends, lbmethod):
    from harness import BalancerManager
    body = (STATUS_CONF + MANAGER_CONF +
            balancer("app", [(backends["alpha"], "m1"), (backends["bravo"], "m2")],
                     proxyset="lbmethod=" + lbmethod, inner="StickyRouteWait 15"))
    p = make_proxy(body)
    bm = BalancerManager(p.port)
    assert get(p.port).status == 200
    for b in ("alpha", "bravo"):
        bm.edit_worker("app", backends[b].url, [("w_status_D", "1")])
    held = HeldRequests(p.port, 4, path="/", timeout=30)
    wait_until(lambda: waiting(p.port) == 4, 5, 0.1, "four requests waiting")
    time.sleep(1.0)
    assert all(r is None for r in held.results), held.results   # still waiting
    t_enable = time.monotonic()
    bm.edit_worker("app", backends["bravo"].url, [("w_status_D", "0")])
    results = held.join(timeout=20)
    assert time.monotonic() - t_enable < 2.0
    assert [getattr(r, "status", r) for r in results] == [200] * 4, results
    assert all(r.served_by == "bravo" for r in results), results
    assert wait_values(p.port)["sticky_route_wait_served_total"] == 4


def held_per_child(proxy):
    """{child pid: client connections it holds open} (ss)."""
    out = subprocess.run(["ss", "-Htnp", "state", "established",
                          "( sport = :%d )" % proxy.port],
                         capture_output=True, text=True, timeout=10).stdout
    count = {}
    for pid in re.findall(r"pid=(\d+)", out):
        count[int(pid)] = count.get(int(pid), 0) + 1
    return count


def test_status_shows_the_requests_waiting_now_across_child_processes(make_proxy, backends):
    p = disabled_proxy(make_proxy, backends["alpha"], wait="StickyRouteWait 15 max=20")
    helds, n = [], 0
    # waiting requests until both child processes hold some (which child
    # accepts a connection is up to the kernel)
    while n < 4 or len(held_per_child(p)) < 2:
        assert n < 30, "30 requests and still one child holds them all: %r" % held_per_child(p)
        helds.append(HeldRequests(p.port, 2, path="/", timeout=30))
        n += 2
        wait_until(lambda: waiting(p.port) == n, 5, 0.05, "%d requests waiting" % n)
    per_child = held_per_child(p)
    assert sum(per_child.values()) == n and len(per_child) == 2, per_child
    v = wait_values(p.port, validate=True)       # promtool accepts the exposition
    assert v["sticky_route_wait_waiting"] == n, (v, per_child)
    assert v["sticky_route_wait_max"] == 20, v
    r = get(p.port, STATUS_PATH + "?json")
    doc = json.loads(r.body)
    rows = [w for w in doc["wait"] if w["balancer"] == "app"]
    assert len(rows) == 1, doc["wait"]
    member_servers = {m["server"] for m in doc["members"] if m["balancer"] == "app"}
    assert (rows[0]["server"], rows[0]["waiting"], rows[0]["seconds"], rows[0]["max"]) == (
        member_servers.pop(), n, 15, 20), (rows, doc["members"])
    from harness import BalancerManager
    BalancerManager(p.port).edit_worker("app", backends["alpha"].url, [("w_status_D", "0")])
    results = [r for h in helds for r in h.join(timeout=20)]
    assert [getattr(r, "status", r) for r in results] == [200] * n, results
    v = wait_values(p.port)
    assert (v["sticky_route_wait_waiting"], v["sticky_route_wait_served_total"]) == (0, n), v


def answered_at_once_on(p, what, n):
    """n requests waiting on proxy p, then `apache2 -k WHAT`: each is
    answered 503 with Retry-After: 1 within 5 s. Returns the proxy's pids
    from before the signal."""
    held = HeldRequests(p.port, n, path="/", timeout=70)
    wait_until(lambda: waiting(p.port) == n, 5, 0.1, "%d requests waiting" % n)
    pids = p.all_pids()
    t0 = time.monotonic()
    ctl(p.conf, what, timeout=15)
    results = held.join(timeout=15)
    took = time.monotonic() - t0
    assert took < 5.0, "waiting requests answered %.1f s after -k %s" % (took, what)
    assert [getattr(r, "status", r) for r in results] == [503] * n, results
    assert all(r.get("Retry-After") == "1" for r in results), [r.headers for r in results]
    return pids


def test_graceful_stop_answers_the_waiting_requests_at_once(make_proxy, backends):
    p = disabled_proxy(make_proxy, backends["alpha"], wait="StickyRouteWait 60")
    pids = answered_at_once_on(p, "graceful-stop", 4)
    wait_until(lambda: not any(pid_alive(x) for x in pids), 10, 0.1, "the proxy to exit")


def test_graceful_restart_answers_the_waiting_requests_and_the_new_generation_waits_again(
        make_proxy, backends):
    p = disabled_proxy(make_proxy, backends["alpha"], wait="StickyRouteWait 60")
    old = set(answered_at_once_on(p, "graceful", 3))   # the parent stays; never a child
    wait_until(lambda: not (set(p.child_pids()) & old), 10, 0.1, "old children gone")
    # the gauge did not keep the released requests; the new generation waits
    assert waiting(p.port) == 0
    held = HeldRequests(p.port, 1, path="/", timeout=30)
    wait_until(lambda: waiting(p.port) == 1, 5, 0.1, "a request waiting in the new generation")
    from harness import BalancerManager
    BalancerManager(p.port).edit_worker("app", backends["alpha"].url, [("w_status_D", "0")])
    (r,) = held.join(timeout=15)
    assert getattr(r, "status", r) == 200, r


BAD = [
    ("StickyRouteWait abc", "not a number"),
    ("StickyRouteWait -1", "negative"),
    ("StickyRouteWait 5 max=0", "max=0"),
    ("StickyRouteWait 5 max=x", "max not a number"),
    ("StickyRouteWait 5 max=", "max empty"),
    ("StickyRouteWait 5 max=2 max=3", "max twice"),
    ("StickyRouteWait 5 foo=1", "unknown parameter"),
    ("StickyRouteWait 0 max=3", "max with off"),
    ("StickyRouteWait 99999", "too long"),
    ("StickyRouteWait", "no argument"),
]


@pytest.mark.parametrize("line", [b[0] for b in BAD], ids=[b[1] for b in BAD])
def test_bad_stickyroutewait_fails_configtest_naming_it(configtest, line):
    body = balancer("app", [("http://127.0.0.1:20998", "s1")], inner=line)
    rc, out = configtest(body)
    assert rc != 0, "accepted: %s\n%s" % (line, out)
    assert "StickyRouteWait" in out, out


@pytest.mark.parametrize("where", ["server", "virtualhost", "location", "proxy-http"])
def test_stickyroutewait_outside_a_balancer_section_fails_configtest(configtest, where):
    members = balancer("app", [("http://127.0.0.1:20998", "s1")])
    if where == "server":
        body = "StickyRouteWait 5\n" + members
    elif where == "virtualhost":
        body = ("<VirtualHost 127.0.0.1:@PORT@>\n    StickyRouteWait 5\n</VirtualHost>\n"
                + members)
    elif where == "location":
        body = '<Location "/x">\n    StickyRouteWait 5\n</Location>\n' + members
    else:
        body = ('<Proxy "http://127.0.0.1:20998/">\n    StickyRouteWait 5\n</Proxy>\n'
                + members)
    rc, out = configtest(body)
    assert rc != 0, "accepted in %s:\n%s" % (where, out)
    assert "StickyRouteWait" in out, out


def test_stickyroutewait_on_a_balancer_not_of_ours_fails_configtest(configtest):
    body = balancer("app", [("http://127.0.0.1:20998", "s1")], proxyset="lbmethod=byrequests",
                    inner="StickyRouteWait 5")
    rc, out = configtest(body, extra_modules=["lbmethod_byrequests"])
    assert rc != 0, out
    assert "StickyRouteWait" in out and "lbmethod=sticky" in out, out


@pytest.mark.parametrize("line", ["StickyRouteWait 5", "StickyRouteWait 0",
                                  "StickyRouteWait 3600 max=100000", "StickyRouteWait 1 MAX=1"])
def test_good_stickyroutewait_passes_configtest(configtest, line):
    body = balancer("app", [("http://127.0.0.1:20998", "s1")], inner=line)
    rc, out = configtest(body)
    assert rc == 0, out


@pytest.mark.parametrize("forcerecovery", ["Off", "On"])
def test_member_in_error_is_waited_for_unless_mod_proxy_balancer_forces_its_recovery(
        make_proxy, forcerecovery):
    """A single member that failed (its replica restarting) is in error for
    retry= seconds. forcerecovery=Off: the next request waits until the
    member's retry time has passed, then is served. forcerecovery=On
    (mod_proxy_balancer's default): it does not wait - mod_proxy_balancer
    tries the member again at once, as without StickyRouteWait."""
    port = free_port()
    body = (STATUS_CONF +
            balancer("app", [("http://127.0.0.1:%d" % port, "m1", "retry=2")],
                     proxyset="lbmethod=sticky forcerecovery=%s" % forcerecovery,
                     inner="StickyRouteWait 10"))
    p = make_proxy(body)
    r = get(p.port)                       # nothing listens: the member goes in error
    assert r.status == 503, r
    t_error = time.monotonic()
    PyBackend("m1", respond=lambda c, n, h: ok("m1"), port=port)   # the replica is back
    r, took = timed_get(p.port)
    assert (r.status, r.served_by) == (200, "m1"), r
    v = wait_values(p.port)
    if forcerecovery == "Off":
        assert time.monotonic() - t_error >= 1.9, "served before the member's retry time"
        assert took < 3.0, took
        assert v["sticky_route_wait_served_total"] == 1, v
    else:
        assert took < 0.5, "waited %.2f s although mod_proxy_balancer forces recovery" % took
        assert v["sticky_route_wait_served_total"] == 0, v
