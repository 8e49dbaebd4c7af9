"""StickyRouteDiscover for the life of a deployment (issue 15, points 1 and 2):
a member slot whose address has left the DNS answer for longer than hold=
is given to a new address, in every child process, with no restart; no
request or health check reaches the slot's old address after that; at most
max= discovered members exist at once, the addresses beyond it are counted
(sticky_route_discover_unplaced) and logged once a minute while it lasts.

The resolver is the test's: the proxy runs in its own mount namespace with
a hosts file of the test bind-mounted over /etc/hosts (harness.HostsFile).
Members are Python backends on distinct 127.0.0.x addresses sharing one
port; every backend records when it received which request, and stays up
after its address left DNS, so a request that still reaches an old address
is answered - and seen."""

import json
import os
import re
import socket
import struct
import threading
import time

import pytest

from harness import (HTTP_TIMEOUT, MANAGER_CONF, STATUS_CONF, STATUS_PATH, HostsFile,
                     PyBackend, duplicate_series, free_port, get,
                     request_target, status_samples, wait_until)

NAME = "reuse.test"
HC_PARAMS = "hcmethod=GET hcuri=/hc hcinterval=1 hcpasses=1 hcfails=1"
REUSE_LOG = "reused for"


class RecordingBackend(PyBackend):
    """A member on one loopback address (its X-Served-By is the address) that
    records (time.time(), request target) of every request it receives."""

    def __init__(self, address, port, idle_timeout=None):
        self.seen = []
        if idle_timeout is not None:
            self.IDLE_TIMEOUT = idle_timeout     # keep-alive longer than the proxy's ttl=
        super().__init__(address, port=port, host=address)

    def respond(self, conn_no, req_no, head):
        target = request_target(head)
        with self.lock:
            self.seen.append((time.time(), target))
        if target.startswith(WARM_PATH):
            time.sleep(WARM_HOLD)       # held: the requests of a burst overlap
        return self.ok()

    def received(self, since=0.0, hc=None):
        """Times of the requests received after `since`; hc=True: health
        checks only, hc=False: everything else."""
        with self.lock:
            seen = list(self.seen)
        return [t for t, target in seen if t > since
                and (hc is None or target.startswith("/hc") == hc)]


class Fleet:
    """The test's hosts file and one RecordingBackend per address (started
    when first resolved to, never stopped before the end of the test)."""

    def __init__(self, test_dir, idle_timeout=None):
        self.port = free_port()
        self.hosts = HostsFile(test_dir / "hosts")
        self.idle_timeout = idle_timeout
        self.backends = {}

    def resolve_to(self, *addresses):
        for a in addresses:
            if a not in self.backends:
                self.backends[a] = RecordingBackend(a, self.port, self.idle_timeout)
        self.hosts.set({NAME: list(addresses)} if addresses else {})


def discovering_proxy(make_proxy, fleet, max_, hold, lbmethod="sticky", params="",
                      **proxy_kw):
    body = (STATUS_CONF + MANAGER_CONF +
            '<Proxy "balancer://app">\n'
            '    StickyRouteDiscover http://%s:%d interval=1 max=%d hold=%d %s\n'
            '    ProxySet lbmethod=%s\n'
            '</Proxy>\n'
            'ProxyPass "/" "balancer://app/"\n'
            % (NAME, fleet.port, max_, hold, params, lbmethod))
    proxy_kw.setdefault("log_level", "notice")      # the reuse and max= lines
    p = make_proxy(body, start=False, **proxy_kw)  # mod_watchdog is built in (Debian)
    p.wrapper = fleet.hosts.wrapper()
    p.start()
    return p


class AppStatus:
    """One scrape of the status endpoint, balancer "app" only."""

    def __init__(self, port, validate=False):
        self.all = status_samples(port, validate=validate)
        self.when = time.time()        # the state shown is at most this recent
        self.samples = [s for s in self.all if s[1].get("balancer") == "app"]

    def disc(self, metric):
        vals = [v for n, _, v in self.samples if n == "sticky_route_discover_" + metric]
        assert len(vals) == 1, ("sticky_route_discover_" + metric, vals)
        return vals[0]

    @property
    def rows(self):
        """{route: up} of the balancer's member rows (held members: up 0)."""
        return {lab["route"]: v for n, lab, v in self.samples if n == "sticky_route_member_up"}

    def up_routes(self):
        return {r for r, v in self.rows.items() if v == 1}

    def __repr__(self):
        return "<status rows=%r discover=%r>" % (self.rows, {
            n: v for n, _, v in self.samples if n.startswith("sticky_route_discover_")})


def rss_of(pids):
    """{pid: resident set size in bytes}: VmRSS of /proc/PID/status, the
    exact count (as smaps_rollup's Rss). /proc/PID/stat's field 24 is the
    kernel's quick read of per-CPU counters, which reach the total in steps
    of 32 pages (128 KB) per CPU: on these 2-CPU machines it read 180-290 KB
    below VmRSS for children of about 7 MB, more than half the 5 % budget,
    and moved in 128 KB steps (2026-12-04)."""
    out = {}
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        out[pid] = int(line.split()[1]) * 1024
        except OSError:
            pass
    return out


LOG_TIME_RE = re.compile(r"^\[\w{3} (\w{3} \d{2} \d{2}:\d{2}:\d{2})\.(\d{6}) (\d{4})\]")


def log_time(line):
    """The time.time() of an error-log line ([Fri Dec 04 01:05:03.123456 2026])."""
    m = LOG_TIME_RE.match(line)
    assert m, "no timestamp in error-log line %r" % line
    t = time.mktime(time.strptime("%s %s" % (m.group(1), m.group(3)), "%b %d %H:%M:%S %Y"))
    return t + int(m.group(2)) / 1e6


def log_lines(proxy, needle):
    return [l for l in proxy.error_log.splitlines() if needle in l]


def parallel_gets(port, n, cookie=None, path="/"):
    """n GETs at once, each on its own connection: responses or exceptions."""
    results = [None] * n

    def one(i):
        try:
            results[i] = get(port, path, cookie=cookie)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            results[i] = e
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HTTP_TIMEOUT + 5)
    return results


# --------------------------------------------------------------------------
# 1. 200 redeploys: every address replaced each time, max=4, 2 addresses

POOL = ["127.0.0.%d" % i for i in range(20, 220)]      # 200 addresses
DEPLOYS = 200
# Open defects of the memory criterion, by (lbmethod, hcheck): measured, not
# hidden (an entry makes a failing run XFAIL with its numbers). None is open:
# with the held warm-up before deploy 20 and health checks run by the module
# itself (mod_sticky_route_hc.c), every variant passes (docs/notes/).
KNOWN_GROWTH = {}
RSS_BASELINE_DEPLOY = 20
REDEPLOY_MAX = 4
NEW_SESSIONS = 4           # requests without a cookie per deploy
STICKY_REQUESTS = 3        # requests of the sticky client per deploy
BURST_EVERY, BURST = 10, 50    # concurrent requests every 10th deploy (both children)
WARMUP_ROUNDS = 10
# Before the baseline every deploy takes a held burst (the members answer
# WARM_PATH after WARM_HOLD): more requests at once than both children have
# threads, so each child reaches all its threads busy - the event MPM's
# recycled connection pools and every slot's connection pool at their
# working size - on every slot, before deploy 20 is measured. What grows
# after that grows with the redeploys (docs/notes/reuse-memory.md, cause 2).
WARM_PATH, WARM_HOLD, WARM_BURST = "/warm", 0.3, 60
GRACE = 0.05               # a health check already on the wire when its slot is reused


def deploy_addresses(k):
    """Deploy k's two addresses (k = 0 at start): new ones every deploy;
    from deploy 100 on, the addresses of deploy k - 100 return."""
    return [POOL[(2 * k) % len(POOL)], POOL[(2 * k + 1) % len(POOL)]]


REDEPLOY_VARIANTS = [
    pytest.param("sticky", 1, False, id="sticky-hold1"),
    pytest.param("roundrobin", 0, False, id="roundrobin-hold0"),
    pytest.param("sticky", 0, True, id="sticky-hcheck-hold0"),
]


@pytest.mark.slow
@pytest.mark.parametrize("lbmethod,hold,hcheck", REDEPLOY_VARIANTS)
def test_200_redeploys_reuse_slots_and_serve_only_current_addresses(
        test_dir, make_proxy, lbmethod, hold, hcheck):
    t_begin = time.monotonic()
    fleet = Fleet(test_dir)
    fleet.resolve_to(*deploy_addresses(0))
    params = "keepalive=On ttl=5" + (" " + HC_PARAMS if hcheck else "")
    p = discovering_proxy(make_proxy, fleet, REDEPLOY_MAX, hold, lbmethod, params,
                          extra_modules=("proxy_hcheck",) if hcheck else ())
    parent = p.pid
    # warm-up: every worker thread of both children serves requests before
    # the memory baseline (a thread's allocator keeps what it once needed)
    for _ in range(WARMUP_ROUNDS):
        assert all(not isinstance(r, Exception) and r.status == 200
                   for r in parallel_gets(p.port, BURST)), "warm-up"
    st = AppStatus(p.port, validate=True)
    assert st.disc("slots") == REDEPLOY_MAX, st
    assert st.disc("members") == 2 and len(st.up_routes()) == 2, st
    prev_up = st.up_routes()

    route_of = {}          # address -> route (the same every time it is current)
    for _ in range(NEW_SESSIONS):
        r = get(p.port)
        assert r.status == 200 and r.served_by in deploy_addresses(0), r
        route_of[r.served_by] = r.sticky_route
    assert set(route_of) == set(deploy_addresses(0)), route_of
    opened = {}            # address -> time it (last) became current
    windows = {a: [] for a in POOL}   # address -> [(from, to)] requests may reach it
    now = time.time()
    for a in deploy_addresses(0):
        opened[a] = now - 5            # since before the proxy started
    left = {}              # address -> route, gone from DNS, slot not yet reused
    sticky_cookie, sticky_at, moves = None, None, []
    reused_seen, last_reused = [], 0
    rss20 = children20 = None
    rss_series = []        # (deploy, {child: RSS}) every 10th deploy
    deploy_times = []

    def observe(status):
        """Closes the window of every gone address whose route no longer
        has a row: its slot was reused by then."""
        rows = status.rows
        for a, route in list(left.items()):
            if route not in rows:
                windows[a].append((opened.pop(a), status.when))
                del left[a]

    for k in range(1, DEPLOYS + 1):
        t0 = time.monotonic()
        prev = deploy_addresses(k - 1)
        cur = deploy_addresses(k)
        for a in prev:
            left[a] = route_of[a]
        t_write = time.time()
        fleet.resolve_to(*cur)
        for a in cur:
            opened[a] = t_write

        def placed():
            s = AppStatus(p.port)
            observe(s)
            up = s.up_routes()
            if (len(up) == 2 and not up & prev_up and s.disc("members") == 2
                    and s.disc("unplaced") == 0):
                return s
            return None
        st = wait_until(placed, 10, 0.05, "deploy %d: %s placed (max=%d hold=%d)"
                        % (k, cur, REDEPLOY_MAX, hold))
        up = st.up_routes()
        # never more than max discovered members, nor rows, nor series twice
        assert len(st.rows) <= REDEPLOY_MAX, (k, st)
        assert st.disc("members") + st.disc("held") <= REDEPLOY_MAX, (k, st)
        assert st.disc("slots") == REDEPLOY_MAX, (k, st)
        assert duplicate_series(st.all) == [], (k, duplicate_series(st.all))
        reused = st.disc("reused_total")
        assert reused >= last_reused, (k, reused, last_reused)
        last_reused = reused
        reused_seen.append(reused)

        # new sessions: current addresses only, both of them, each with its route
        served = set()
        for _ in range(NEW_SESSIONS):
            r = get(p.port)
            assert r.status == 200 and r.served_by in cur, (k, cur, r)
            assert r.sticky_route in up, (k, r, up)
            assert route_of.setdefault(r.served_by, r.sticky_route) == r.sticky_route, (
                "deploy %d: %s came back with route %s, had %s"
                % (k, r.served_by, r.sticky_route, route_of[r.served_by]))
            served.add(r.served_by)
        assert served == set(cur), (k, served, cur)

        # a sticky client: moves once (its address is gone), then stays
        seq = []
        for i in range(STICKY_REQUESTS):
            r = get(p.port, cookie="ROUTEID=" + sticky_cookie if sticky_cookie else None)
            assert r.status == 200 and r.served_by in cur, (k, cur, r)
            sticky_cookie = r.cookie_value() or sticky_cookie
            seq.append(r.served_by)
            if lbmethod == "sticky" and i > 0:
                assert (r.sticky_status, r.set_cookies) == ("hit", []), (k, i, r)
        if lbmethod == "sticky":
            moves.append(int(seq[0] != sticky_at) + sum(
                1 for x, y in zip(seq, seq[1:]) if x != y))
            assert moves[-1] <= 1, (k, sticky_at, seq)
            sticky_at = seq[-1]

        if k < RSS_BASELINE_DEPLOY:    # held burst: the warm-up of every slot
            for r in parallel_gets(p.port, WARM_BURST, path=WARM_PATH):
                assert not isinstance(r, Exception), (k, r)
                assert r.status == 200 and r.served_by in cur, (k, cur, r)
        if k % BURST_EVERY == 0:       # both children serve the reused slots
            for r in parallel_gets(p.port, BURST):
                assert not isinstance(r, Exception), (k, r)
                assert r.status == 200 and r.served_by in cur, (k, cur, r)

        if k % BURST_EVERY == 0:
            rss_series.append((k, rss_of(p.child_pids())))
        if k == RSS_BASELINE_DEPLOY:
            children20 = sorted(p.child_pids())
            rss20 = rss_of(children20)
        prev_up = up
        deploy_times.append(time.monotonic() - t0)

    # never restarted: same parent, same children (none recycled)
    assert p.pid == parent and p.running(), (parent, p.pid)
    children200 = sorted(p.child_pids())
    assert children200 == children20, (children20, children200)
    rss200 = rss_of(children200)

    # slots reused: the first deploy takes the two never-used slots, every
    # later placement another address's slot
    st = AppStatus(p.port, validate=True)
    assert st.disc("reused_total") == 2 * (DEPLOYS - 1), (st, reused_seen[:12])
    assert len(log_lines(p, REUSE_LOG)) == 2 * (DEPLOYS - 1), log_lines(p, REUSE_LOG)[:6]
    # every address served twice (deploys k and k + 100) with the same route
    assert set(route_of) == set(POOL), sorted(set(POOL) - set(route_of))[:10]

    # no request (nor health check) reached an address after its slot was reused
    late = []
    for a, b in fleet.backends.items():
        spans = windows[a] + ([(opened[a], float("inf"))] if a in opened else [])
        for t in b.received():
            if not any(lo <= t <= hi + GRACE for lo, hi in spans):
                late.append((a, t, spans))
    assert late == [], "requests after the slot was reused: %d, first: %s" % (
        len(late), late[:5])
    if hcheck:
        hc = {a: len(b.received(hc=True)) for a, b in fleet.backends.items()}
        assert sum(1 for n in hc.values() if n) >= len(POOL) // 2, hc
    if lbmethod == "sticky":
        assert len(moves) == DEPLOYS and all(m == 1 for m in moves[1:]), moves
    elapsed = time.monotonic() - t_begin
    print("redeploys %s hold=%d hcheck=%s: %.0f s, per deploy median %.2f s max %.2f s; "
          "RSS every 10 deploys: %s"
          % (lbmethod, hold, hcheck, elapsed, sorted(deploy_times)[len(deploy_times) // 2],
             max(deploy_times), rss_series))
    # memory: every child within 5 % of its size after deploy 20
    growth = {pid: (rss200[pid] - rss20[pid]) / rss20[pid] for pid in children20}
    report = ("RSS after deploy %d vs after deploy %d: %s (bytes %s -> %s); every 10 deploys: %s"
              % (DEPLOYS, RSS_BASELINE_DEPLOY, growth, rss20, rss200, rss_series))
    if KNOWN_GROWTH.get((lbmethod, hcheck)) and not all(abs(g) <= 0.05 for g in growth.values()):
        # an open defect, not a pass: reported by the run as XFAIL with the numbers
        pytest.xfail("%s: %s" % (KNOWN_GROWTH[(lbmethod, hcheck)], report))
    assert all(abs(g) <= 0.05 for g in growth.values()), report


# --------------------------------------------------------------------------
# 2. No child process keeps using a reused slot's old address

def tcp_peers(pid, address, port):
    """Established TCP connections of process pid to address:port."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return 0
    want = "%08X:%04X" % (struct.unpack("<I", socket.inet_aton(address))[0], port)
    n = 0
    with open("/proc/%d/net/tcp" % pid) as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[2] == want and fields[3] == "01" and fields[9] in inodes:
                n += 1
    return n


ACCESS_RE = re.compile(r" pid=(\d+) .* served=(\S+) ")


def served_by_pid(proxy):
    """[(pid, X-Served-By)] of the proxy's access log, in order."""
    return [(int(m.group(1)), m.group(2)) for m in map(ACCESS_RE.search,
                                                       proxy.access_log.splitlines()) if m]


class Traffic:
    """`clients` threads of GETs without a cookie, each on a fresh connection
    (so the proxy's child processes all take some), until stopped; bounded."""

    def __init__(self, port, clients=16, limit=60):
        self.port = port
        self.results = []          # (time.time() of the answer, served_by or error)
        self.lock = threading.Lock()
        self.stop_at = time.monotonic() + limit
        self._stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _run(self):
        while not self._stop.is_set() and time.monotonic() < self.stop_at:
            try:
                r = get(self.port)
                out = r.served_by if r.status == 200 else "status %d" % r.status
            except Exception as e:  # noqa: BLE001 - every failure counts
                out = "error %r" % e
            with self.lock:
                self.results.append((time.time(), out))

    def stop(self):
        self._stop.set()
        for t in self.threads:
            t.join(HTTP_TIMEOUT + 5)
        return list(self.results)


@pytest.mark.parametrize("hcheck", [False, True], ids=["requests", "health-checks"])
def test_no_child_process_reaches_a_reused_slots_old_address(test_dir, make_proxy, hcheck):
    hold = 1
    fleet = Fleet(test_dir, idle_timeout=600)      # the backends never close first
    keep, old, new = "127.0.0.31", "127.0.0.32", "127.0.0.33"
    fleet.resolve_to(keep, old)
    params = "keepalive=On ttl=300" + (" " + HC_PARAMS if hcheck else "")
    # 4 child processes of 8 threads: concurrent clients spread over all of them
    p = discovering_proxy(make_proxy, fleet, 2, hold, "sticky", params,
                          extra_modules=("proxy_hcheck",) if hcheck else (),
                          start_servers=4, server_limit=4, threads_per_child=8)
    children = set(p.child_pids())
    assert len(children) >= 4, children

    # every child serves requests from OLD and keeps the connection pooled
    traffic = Traffic(p.port)
    try:
        def pooled_to_old():
            """{child: its connections to OLD} of the children that served
            requests from OLD and hold a connection to it."""
            pids = {pid for pid, by in served_by_pid(p) if by == old}
            pooled = {pid: tcp_peers(pid, old, fleet.port) for pid in children & pids}
            return {pid: n for pid, n in pooled.items() if n}
        try:
            wait_until(lambda: len(pooled_to_old()) == len(children), 20, 0.2,
                       "every child serving %s, with a pooled connection" % old)
        except TimeoutError:
            pass                       # at least 3 of them (below) will do
        pooled = pooled_to_old()
        assert len(pooled) >= 3, (pooled, children)
        if hcheck:
            wait_until(lambda: fleet.backends[old].received(hc=True), 5, 0.1,
                       "a health check of %s" % old)

        # OLD leaves DNS (its server keeps running), NEW appears: NEW gets
        # OLD's slot (max=2) once hold has passed
        t_change = time.time()
        fleet.resolve_to(keep, new)
        wait_until(lambda: AppStatus(p.port).disc("reused_total") == 1, hold + 8, 0.1,
                   "the slot of %s reused" % old)
        lines = wait_until(lambda: log_lines(p, REUSE_LOG), 3, 0.1, "the reuse logged")
        assert len(lines) == 1, lines
        t_reuse = log_time(lines[0])
        gone = log_lines(p, "%s:%d is gone" % (old, fleet.port))
        assert len(gone) == 1 and old in lines[0] and new in lines[0], (gone, lines)
        assert t_reuse - log_time(gone[0]) >= hold, (
            "slot reused %.2f s after its member was disabled (hold=%d)"
            % (t_reuse - log_time(gone[0]), hold))

        # traffic goes on until every child has served NEW through the slot
        def new_everywhere():
            n = {}
            for pid, by in served_by_pid(p):
                if by == new:
                    n[pid] = n.get(pid, 0) + 1
            return all(n.get(pid, 0) >= 5 for pid in pooled)
        wait_until(new_everywhere, 20, 0.2, "every child serving %s" % new)
        if hcheck:
            wait_until(lambda: len(fleet.backends[new].received(since=t_reuse, hc=True)) >= 2,
                       8, 0.1, "health checks of %s after the reuse" % new)
        time.sleep(2)
    finally:
        results = traffic.stop()

    after = fleet.backends[old].received(since=t_reuse + GRACE)
    hc_after = fleet.backends[old].received(since=t_reuse + GRACE, hc=True)
    in_hold = [t for t in fleet.backends[old].received(since=t_change) if t <= t_reuse]
    in_grace = [t for t in fleet.backends[old].received(since=t_reuse) if t <= t_reuse + GRACE]
    pooled_after = {pid: tcp_peers(pid, old, fleet.port) for pid in pooled}
    served_after = sum(1 for t, by in results if t > t_reuse + GRACE)
    assert after == [], (
        "%s received %d request(s) (%d health checks) after its slot was reused at %.3f "
        "(first %.3f s after); the proxy served %d meanwhile"
        % (old, len(after), len(hc_after), t_reuse, after[0] - t_reuse, served_after))
    assert served_after >= 100, served_after
    errors = [(t, out) for t, out in results if out not in (keep, old, new)]
    assert errors == [], errors[:10]
    # the clients never got an answer from OLD after the reuse either
    assert [t for t, by in results if by == old and t > t_reuse + GRACE] == []
    print("old address: %d requests between leaving DNS and the reuse (%.2f s later), "
          "%d within %.2f s after it, 0 later; %d requests served after the reuse; pooled "
          "connections to it before: %s, after: %s"
          % (len(in_hold), t_reuse - t_change, len(in_grace), GRACE, served_after, pooled,
             pooled_after))


# --------------------------------------------------------------------------
# 3. max= means what it says

@pytest.mark.slow
def test_addresses_beyond_max_get_no_member_are_counted_logged_each_minute_and_placed_later(
        test_dir, make_proxy):
    hold = 2
    fleet = Fleet(test_dir)
    a1, a2, a3, a4 = "127.0.0.41", "127.0.0.42", "127.0.0.43", "127.0.0.44"
    fleet.resolve_to(a1)
    p = discovering_proxy(make_proxy, fleet, 2, hold, "sticky", "keepalive=On ttl=5")
    st = AppStatus(p.port, validate=True)
    assert (st.disc("slots"), st.disc("members"), st.disc("unplaced"), len(st.rows)) == \
        (2, 1, 0, 1), st

    def served(n=8):
        out = set()
        for _ in range(n):
            r = get(p.port)
            assert r.status == 200, r
            out.add(r.served_by)
        return out

    warning = "address(es) beyond max=2 get no member"
    fleet.resolve_to(a1, a2, a3, a4)
    st = wait_until(lambda: (lambda s: s if s.disc("unplaced") == 2 else None)(
        AppStatus(p.port)), 5, 0.1, "two addresses beyond max=2")
    # (the rows are those of the answering child's view: <= 2)
    assert (st.disc("members"), st.disc("held")) == (2, 0) and len(st.rows) <= 2, st
    members = served(12)
    assert len(members) == 2 and a1 in members, members
    first = wait_until(lambda: log_lines(p, warning), 3, 0.1, "the max= warning")
    assert len(first) == 1, first
    t_first = log_time(first[0])

    # while it lasts: never more than 2 members; the warning again after a minute
    deadline = time.monotonic() + 75
    second = None
    while time.monotonic() < deadline:
        st = AppStatus(p.port)
        assert st.disc("members") <= 2 and len(st.rows) <= 2, st
        assert st.disc("unplaced") == 2, st
        assert served(2) <= members
        lines = log_lines(p, warning)
        if len(lines) >= 2:
            second = lines
            break
        time.sleep(1)
    assert second is not None, "the warning was not logged again within 75 s: %s" % (
        log_lines(p, warning))
    assert len(second) == 2, second
    gap = log_time(second[1]) - t_first
    assert 59.5 <= gap <= 63, "warnings %.1f s apart (once a minute, at every interval)" % gap

    # a placed address leaves: its slot is held, then an unplaced one takes it
    gone = sorted(members - {a1})[0]
    rest = [a for a in (a1, a2, a3, a4) if a != gone]
    fleet.resolve_to(*rest)
    st = wait_until(lambda: (lambda s: s if s.disc("held") == 1 else None)(
        AppStatus(p.port)), 4, 0.1, "%s held" % gone)
    assert (st.disc("members"), st.disc("unplaced"), st.disc("reused_total")) == (1, 2, 0), st
    st = wait_until(lambda: (lambda s: s if s.disc("reused_total") == 1 else None)(
        AppStatus(p.port)), hold + 4, 0.1, "an unplaced address placed after hold")
    assert (st.disc("members"), st.disc("held"), st.disc("unplaced")) == (2, 0, 1), st
    # enabled once it has settled
    st = wait_until(lambda: (lambda s: s if len(s.up_routes()) == 2 else None)(
        AppStatus(p.port)), 6, 0.1, "the reused slot's member enabled")
    assert len(st.rows) == 2, st
    reuse = log_lines(p, REUSE_LOG)
    assert len(reuse) == 1 and gone in reuse[0], reuse
    gone_line = log_lines(p, "%s:%d is gone" % (gone, fleet.port))
    assert len(gone_line) == 1, gone_line
    assert log_time(reuse[0]) - log_time(gone_line[0]) >= hold, (gone_line, reuse)
    now_served = served(12)
    assert len(now_served) == 2 and a1 in now_served and gone not in now_served, now_served
    assert (now_served - {a1}) <= set(rest), now_served
    assert len(fleet.backends[gone].received(since=log_time(reuse[0]) + GRACE)) == 0

    r = get(p.port, STATUS_PATH + "?json")
    assert r.status == 200, r
    rows = [d for d in json.loads(r.body.decode())["discovery"] if d["balancer"] == "app"]
    assert len(rows) == 1, rows
    d = rows[0]
    assert (d["max"], d["members"], d["held"], d["reused"], d["unplaced"]) == (2, 2, 0, 1, 1), d


# --------------------------------------------------------------------------
# 4. hold= is checked by apache2 -t

@pytest.mark.parametrize("hold", ["-1", "abc", "86401", ""],
                         ids=["negative", "not-a-number", "over-a-day", "empty"])
def test_bad_hold_is_a_config_error_naming_the_directive(configtest, test_dir, hold):
    body = ('<Proxy "balancer://app">\n'
            '    StickyRouteDiscover http://%s:20999 interval=1 max=4 hold=%s\n'
            '    ProxySet lbmethod=sticky\n'
            '</Proxy>\n'
            'ProxyPass "/" "balancer://app/"\n' % (NAME, hold))
    rc, out = configtest(body)
    assert rc != 0, "hold=%s accepted:\n%s" % (hold, out)
    assert "StickyRouteDiscover" in out.replace(str(test_dir), "<dir>"), out


@pytest.mark.parametrize("hold", ["0", "86400"])
def test_hold_from_zero_to_a_day_is_accepted(configtest, hold):
    body = ('<Proxy "balancer://app">\n'
            '    StickyRouteDiscover http://%s:20999 interval=1 max=4 hold=%s %s\n'
            '    ProxySet lbmethod=sticky\n'
            '</Proxy>\n'
            'ProxyPass "/" "balancer://app/"\n' % (NAME, hold, HC_PARAMS))
    rc, out = configtest(body, extra_modules=("proxy_hcheck",))
    assert rc == 0, out
