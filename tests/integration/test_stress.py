"""Concurrency stress (issue 18): the proxy's threads and processes under
load while everything that changes shared or per-process state happens at
once, for LOAD_S (65 s) of load.

- apache2 (event MPM), 2 child processes (ServerLimit 3: room for a new
  generation while the old one finishes) x ThreadsPerChild 64;
- balancer://static, lbmethod=sticky, three apache2 members s1-s3 and s4, a
  Python member (disablereuse=On) that closes every FLAKY_EVERY-th connection
  without answering, so the module's retry decision (sr_request_status, the
  request_status hook) runs all along beside the finders of the other
  threads; cookie clients (keep-alive, a cookie jar) and cookie-less clients
  on "/";
  balancer-manager edits all along: s1's loadfactor, s2 drained and back,
  s3 disabled and back;
- balancer://disc, lbmethod=roundrobin, StickyRouteDiscover on a name of the
  test's hosts file (harness.HostsFile: apache2 in its own mount namespace):
  two addresses at a time, one replaced by a new one every CHURN_S seconds,
  max=3 hold=1, so every replacement gives a slot of a gone address to the
  new one (sr_shm_member_renew); its members are Python backends on
  127.0.0.x (test_discovery_reuse.Fleet); clients on "/disc/";
- three graceful restarts (`apache2 -k graceful`) during the load.

What must hold:
- zero failed requests: every request answered 200, counting one retry on a
  new connection exactly where RFC 9112 9.3.1 allows it (tests/httpretry.py:
  an idempotent request on a reused connection that the server closed before
  any byte of a response; a graceful restart closes idle keep-alive
  connections);
- exact counters: sticky_route_requests_total, summed per member of
  balancer://static, is what that member's access log answered, and summed
  over the balancer what the clients received; the counters survive the
  graceful restarts (the segment lives in the process pool; checked: no
  member's count goes down across a restart). For balancer://disc, a slot
  given to a new address starts its counters afresh, so each route's count
  is read when it is final (its address gone for a whole CHURN_S, before the
  next replacement can take its slot, and before each restart): the sum of
  those equals what the discovered backends answered, and what the clients
  received;
- no crash: no "exit signal" / AH00052 in the error log, no core file.
"""

import collections
import json
import random
import threading
import time

from harness import (BalancerManager, KeepAliveClient, MANAGER_CONF, STATUS_CONF,
                     STATUS_PATH, PyBackend, balancer, crash_lines, get, graceful_restart)
from httpretry import connection_dropped, may_retry
from test_discovery_reuse import NAME, Fleet

LOAD_S = 65.0
CHURN_S = 3.0             # one discovered address replaced every CHURN_S (at least
                          # 2.5 s apart: more than 2 discovery intervals + hold=1)
RESTARTS_AT = (19.0, 39.0, 59.0)   # each at least CHURN_S - 0.5 after a replacement:
# the address that left at it is final by then (after the restart the new
# generation has no row for it, its count is read before)
N_STICKY, N_FRESH, N_DISC = 48, 16, 32     # 96 client threads
THREADS_PER_CHILD = 64
FLAKY_EVERY = 3


class FlakyBackend(PyBackend):
    """Answers 200, except that it closes every FLAKY_EVERY-th connection on
    its first request without a byte (the module retries the GET on another
    member: the client never sees it)."""

    def respond(self, conn_no, req_no, head):
        if req_no == 1 and conn_no % FLAKY_EVERY == 0:
            return None
        return self.ok()


def proxy_body(port):
    return (STATUS_CONF + MANAGER_CONF +
            '<Proxy "balancer://disc">\n'
            '    StickyRouteDiscover http://%s:%d interval=1 max=3 hold=1 ttl=5\n'
            '    ProxySet lbmethod=roundrobin\n'
            '</Proxy>\n'
            'ProxyPass "/disc/" "balancer://disc/"\n' % (NAME, port))


class LoadClient(threading.Thread):
    """One client: KeepAliveClient (a keep-alive connection, a ROUTEID cookie
    jar), the retry rule of tests/httpretry.py."""

    def __init__(self, port, path, keep_cookie, stop):
        super().__init__(daemon=True)
        self.client = KeepAliveClient(port)
        self.path, self.keep_cookie, self.stop = path, keep_cookie, stop
        self.ok = 0
        self.failures = []          # (time, what)
        self.retries = 0

    def one(self):
        retrying = False
        while True:
            c = self.client
            if c.conn is not None and connection_dropped(c.conn):
                c.close()           # closed while idle: a new connection, no retry
            reused = c.conn is not None
            try:
                return c.request(self.path)
            except Exception as e:  # noqa: BLE001 - judged by may_retry
                if may_retry(e, reused, retrying):
                    retrying = True
                    self.retries += 1
                    continue
                raise

    def run(self):
        while not self.stop.is_set():
            if not self.keep_cookie:
                self.client.cookie = None
            try:
                r = self.one()
            except Exception as e:  # noqa: BLE001 - every failure counts
                self.failures.append((time.monotonic(), "%s: %s" % (type(e).__name__, e)))
                time.sleep(0.01)
                continue
            if r.status == 200:
                self.ok += 1
            else:
                self.failures.append((time.monotonic(), "HTTP %d %r" % (r.status, r)))
        self.client.close()


def member_counts(port):
    """{(balancer, route): requests counted (every decision status summed)}."""
    r = get(port, STATUS_PATH + "?json")
    assert r.status == 200, r
    out = collections.Counter()
    for m in json.loads(r.body.decode("utf-8"))["members"]:
        out[(m["balancer"], m["route"])] += sum(m["requests"].values())
    return out


def answered_by(backend):
    """Requests an apache2 member answered (its access log)."""
    return sum(1 for line in backend.access_log.splitlines() if '"GET ' in line)


def test_stress_threads_processes_discovery_edits_graceful_restarts(
        test_dir, make_proxy, make_backend):
    members = [make_backend(n) for n in ("alpha", "bravo", "charlie")]
    fleet = Fleet(test_dir, idle_timeout=30)    # longer than the members' ttl=5
    next_addr = [12]

    def addr(i):
        return "127.0.0.%d" % i

    flaky = FlakyBackend("flaky")
    fleet.resolve_to(addr(10), addr(11))
    body = (proxy_body(fleet.port)
            + balancer("static", [(b, "s%d" % (i + 1)) for i, b in enumerate(members)]
                       + [(flaky.url, "s4", "disablereuse=On retry=1")],
                       proxyset="lbmethod=sticky"))
    proxy = make_proxy(body, start=False, start_servers=2, server_limit=3,
                       threads_per_child=THREADS_PER_CHILD)
    proxy.wrapper = fleet.hosts.wrapper()
    proxy.start()
    manager = BalancerManager(proxy.port)

    # discovery has resolved: both first addresses answer
    deadline = time.monotonic() + 10
    while len({get(proxy.port, "/disc/").served_by for _ in range(6)}) < 2:
        assert time.monotonic() < deadline, "discovered members never both answered"
        time.sleep(0.2)
    base_static = {m.name: answered_by(m) for m in members}
    base_static["flaky"] = flaky.answered
    base_broken = flaky.closed_unanswered
    base_disc = sum(b.answered for b in fleet.backends.values())
    # the warm-up's last requests are counted in log_transaction, which runs
    # after the client has its response: at rest the counters catch up with
    # what the backends answered (a count read at once was one short)
    deadline = time.monotonic() + 5
    while True:
        base_counts = member_counts(proxy.port)
        counted = sum(v for (b, _), v in base_counts.items() if b == "disc")
        if counted == base_disc:
            break
        assert time.monotonic() < deadline and counted < base_disc, (
            "at rest: disc counted %d, backends answered %d" % (counted, base_disc))
        time.sleep(0.05)

    stop = threading.Event()
    clients = ([LoadClient(proxy.port, "/", True, stop) for _ in range(N_STICKY)]
               + [LoadClient(proxy.port, "/", False, stop) for _ in range(N_FRESH)]
               + [LoadClient(proxy.port, "/disc/", False, stop) for _ in range(N_DISC)])
    disc_clients = clients[N_STICKY + N_FRESH:]
    final_disc = dict(base_counts)      # (balancer, route) -> count when last read
    restarts, edits, churns, log = [], [], [], []

    def read_counts(why):
        c = member_counts(proxy.port)
        for k, v in c.items():
            final_disc[k] = max(final_disc.get(k, 0), v)
        log.append((round(time.monotonic() - t0, 1), why, dict(c)))
        return c

    edit_plan = [
        ("s1 loadfactor", lambda: manager.edit_worker(
            "static", members[0].url, [("w_lf", str(random.randint(1, 100)))])),
        ("s2 drained", lambda: manager.edit_worker("static", members[1].url,
                                                   [("w_status_N", "1")])),
        ("s3 disabled", lambda: manager.edit_worker("static", members[2].url,
                                                    [("w_status_D", "1")])),
        ("s2 back", lambda: manager.edit_worker("static", members[1].url,
                                                [("w_status_N", "0")])),
        ("s3 back", lambda: manager.edit_worker("static", members[2].url,
                                                [("w_status_D", "0")])),
    ]
    t0 = time.monotonic()
    for c in clients:
        c.start()
    try:
        tick, next_restart, last_churn = 0, list(RESTARTS_AT), 0.0
        while time.monotonic() - t0 < LOAD_S:
            now = time.monotonic() - t0
            if next_restart and now >= next_restart[0] and now - last_churn >= CHURN_S - 0.5:
                next_restart.pop(0)
                before = read_counts("before restart %d" % (len(restarts) + 1))
                t = time.monotonic()
                graceful_restart(proxy, body)
                restarts.append(round(time.monotonic() - t, 2))
                after = read_counts("after restart %d" % len(restarts))
                down = {k: (v, after.get(k)) for k, v in before.items()
                        if k[0] == "static" and after.get(k, 0) < v}
                assert not down, "counters went down across a graceful restart: %r" % down
                continue
            if now >= tick * 1.0:
                # a churn every CHURN_S by the clock, not by the tick count: a
                # restart holds the loop for 3-4 s, and churns caught up at
                # once gave the address that left at the first of them 0.7 s,
                # less than a discovery interval, before its slot was taken
                # (its last requests were counted after its "final" read)
                if tick and now - last_churn >= CHURN_S - 0.5:
                    last_churn = now
                    # the address that left one period ago is final now; the
                    # new address takes its slot
                    read_counts("before churn %d" % tick)
                    fleet.resolve_to(addr(next_addr[0] - 1), addr(next_addr[0]))
                    churns.append(addr(next_addr[0]))
                    next_addr[0] += 1
                else:
                    name, edit = edit_plan[len(edits) % len(edit_plan)]
                    edit()
                    edits.append(name)
                tick += 1
            time.sleep(0.05)
    finally:
        stop.set()
        for c in clients:
            c.join(30)
    load_s = time.monotonic() - t0
    assert not any(c.is_alive() for c in clients), "client threads still running"
    time.sleep(1.0)     # the last answers logged
    final = read_counts("end")

    ok = sum(c.ok for c in clients)
    failures = sorted((round(t - t0, 2), w) for c in clients for t, w in c.failures)
    retries = sum(c.retries for c in clients)
    disc_ok = sum(c.ok for c in disc_clients)
    static_ok = ok - disc_ok
    report = ("load %.1f s, %d requests answered, %d failed, %d retried (RFC 9112 9.3.1), "
              "%d restarts %r, %d churns, %d edits, s4 closed %d connections unanswered"
              % (load_s, ok, len(failures), retries, len(restarts), restarts,
                 len(churns), len(edits), flaky.closed_unanswered - base_broken))
    print("\n" + report)

    # no crash
    assert crash_lines(proxy) == [], crash_lines(proxy)
    assert "AH00052" not in proxy.error_log, proxy.error_log[-3000:]
    assert not list(proxy.root.glob("core*")), list(proxy.root.glob("core*"))

    # zero failed requests
    assert failures == [], "%s\nfirst failures: %r" % (report, failures[:20])
    assert len(restarts) == 3 and len(churns) >= 14 and len(edits) >= 20, report
    assert ok > 10000, report

    # exact counters, balancer://static: per member and in all
    answered = {m.name: answered_by(m) - base_static[m.name] for m in members}
    answered["flaky"] = flaky.answered - base_static["flaky"]
    counted = {m.name: final[("static", "s%d" % (i + 1))]
               - base_counts.get(("static", "s%d" % (i + 1)), 0)
               for i, m in enumerate(members + [flaky])}
    broken = flaky.closed_unanswered - base_broken
    assert broken >= 10, "s4 broke only %d connections: the retry path was not exercised" % broken
    assert counted == answered, "static: counted %r, members answered %r (%s)" % (
        counted, answered, report)
    assert sum(answered.values()) == static_ok, "static: answered %d, clients got %d" % (
        sum(answered.values()), static_ok)

    # exact counters, balancer://disc: each route's count read when final
    disc_answered = sum(b.answered for b in fleet.backends.values()) - base_disc
    disc_counted = (sum(v for (b, _), v in final_disc.items() if b == "disc")
                    - sum(v for (b, _), v in base_counts.items() if b == "disc"))
    assert disc_counted == disc_answered, (
        "disc: counted %d, discovered backends answered %d (%s)\nreads: %s"
        % (disc_counted, disc_answered, report, log[-6:]))
    assert disc_answered == disc_ok, "disc: answered %d, clients got %d" % (
        disc_answered, disc_ok)
    # the replacements did give slots of gone addresses to new ones
    r = get(proxy.port, STATUS_PATH + "?json")
    disc = [d for d in json.loads(r.body.decode("utf-8"))["discovery"] if d["balancer"] == "disc"]
    assert disc and disc[0]["reused"] > 0, disc
