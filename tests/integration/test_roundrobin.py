"""lbmethod=roundrobin: one ticket counter shared by all proxy processes, so
the split is exact under concurrency, and loadfactor is interleaved
smoothly (5,1,1 -> a a b a c a a)."""

import http.client
import re
import threading
import time
import uuid
from collections import Counter

import pytest

from harness import HTTP_TIMEOUT, balancer, wait_until

TOTAL = 6000
CONCURRENCY = 64
TIME_LIMIT = 90       # seconds for one load run


def run_load(port, total, concurrency, time_limit):
    """`total` GETs over `concurrency` keep-alive connections.
    Returns (Counter of X-Served-By, Counter of X-Sticky-Status, errors)."""
    lock = threading.Lock()
    issued = [0]
    served, statuses, errors = Counter(), Counter(), []
    deadline = time.monotonic() + time_limit

    def worker():
        conn = None
        while True:
            with lock:
                if issued[0] >= total or time.monotonic() > deadline:
                    break
                issued[0] += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
                conn.request("GET", "/")
                resp = conn.getresponse()
                resp.read()
                with lock:
                    if resp.status != 200:
                        errors.append(resp.status)
                    served[resp.getheader("X-Served-By")] += 1
                    statuses[resp.getheader("X-Sticky-Status")] += 1
                if (resp.getheader("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:      # noqa: BLE001 - every failure counts
                with lock:
                    errors.append(repr(e))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1, deadline - time.monotonic() + HTTP_TIMEOUT + 5))
    assert not any(t.is_alive() for t in threads), "load did not finish in time"
    assert issued[0] == total, "only %d of %d requests issued within %ds" % (
        issued[0], total, time_limit)
    return served, statuses, errors


@pytest.mark.parametrize("n_backends", [3, 4])
def test_roundrobin_splits_6000_concurrent_requests_exactly(backends, make_proxy, n_backends):
    names = ["alpha", "bravo", "charlie", "delta"][:n_backends]
    # 64 threads per process: a process that accepted most of the 64 client
    # connections must not run out of workers (event MPM then closes idle
    # keep-alive connections, which clients see as RemoteDisconnected).
    p = make_proxy(balancer("rr", [(backends[n], None) for n in names],
                            proxyset="lbmethod=roundrobin"), threads_per_child=CONCURRENCY)
    assert len(p.child_pids()) >= 2
    served, statuses, errors = run_load(p.port, TOTAL, CONCURRENCY, TIME_LIMIT)
    assert errors == [], "errors: %s" % errors[:10]
    assert sum(served.values()) == TOTAL
    expected = {TOTAL // n_backends, -(-TOTAL // n_backends)}
    assert set(served) == set(names), served
    assert all(c in expected for c in served.values()), \
        "split %s, expected each in %s" % (dict(served), sorted(expected))
    assert statuses == Counter({"roundrobin": TOTAL}), statuses
    # the load really went through (at least) two proxy processes
    pids = set(re.findall(r'"GET / HTTP/1.1" 200 pid=(\d+) ', p.access_log))
    assert len(pids) >= 2, "all requests were served by proxy process(es) %s" % pids


def probe_pid(conn, proxy):
    """Which proxy process serves this keep-alive connection: ask for a local
    (not proxied, so no ticket is consumed) URL and find it in the access log."""
    tag = uuid.uuid4().hex
    conn.request("GET", "/__local/probe-" + tag)
    conn.getresponse().read()
    # the access log line is written just after the response is sent
    m = wait_until(lambda: re.search(r'"GET /__local/probe-%s HTTP/1.1" \d+ pid=(\d+) ' % tag,
                                     proxy.access_log), 5, what="probe in the access log")
    return m.group(1)


def connections_on_two_processes(proxy, tries=40):
    by_pid = {}
    spare = []
    for _ in range(tries):
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=HTTP_TIMEOUT)
        pid = probe_pid(conn, proxy)
        if pid in by_pid:
            spare.append(conn)
        else:
            by_pid[pid] = conn
        if len(by_pid) == 2:
            for c in spare:
                c.close()
            return list(by_pid.values())
    pytest.fail("could not get connections on two proxy processes in %d tries" % tries)


def letters_across_two_processes(proxy, n, letter):
    """n GETs alternating between connections on two proxy processes (each
    must answer 200, from a member named in `letter`); returns the letters
    of the members that answered, in order."""
    conns = connections_on_two_processes(proxy)
    seen = []
    for i in range(n):
        conn = conns[i % 2]            # alternate between the two processes
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, (i, resp.status)
        seen.append(letter[resp.getheader("X-Served-By")])
    for c in conns:
        c.close()
    return "".join(seen)


def test_loadfactor_5_1_1_gives_a_a_b_a_c_a_a_shared_across_processes(backends, make_proxy):
    p = make_proxy(balancer("rr", [(backends["alpha"], None, "loadfactor=5"),
                                   (backends["bravo"], None, "loadfactor=1"),
                                   (backends["charlie"], None, "loadfactor=1")],
                            proxyset="lbmethod=roundrobin"))
    got = letters_across_two_processes(p, 70, {"alpha": "a", "bravo": "b", "charlie": "c"})
    assert got[:7] == "aabacaa", got
    assert got == "aabacaa" * 10, got


def test_unusable_members_are_skipped_without_disturbing_the_others(backends, make_proxy):
    """a b c d with b disabled: a c d a c d ..., the others in their order."""
    p = make_proxy(balancer("rr", [(backends["alpha"], None, ""),
                                   (backends["bravo"], None, "status=+D"),
                                   (backends["charlie"], None, ""),
                                   (backends["delta"], None, "")],
                            proxyset="lbmethod=roundrobin"))
    letter = {"alpha": "a", "bravo": "b", "charlie": "c", "delta": "d"}
    got = letters_across_two_processes(p, 30, letter)
    assert got == "acd" * 10, got
