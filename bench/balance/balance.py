#!/usr/bin/python3
"""Balance-quality benchmark (`make bench-balance`, bench/balance/run.sh).

Real proxies (Debian apache2, HAProxy 2.6) in front of four real members
(bench/balance/backend.py) on 127.0.0.1; a client model of a few hundred
sticky clients, each with its own cookie jar, heavy-tailed session lengths and
think times and a few heavy clients, from a fixed seed; three scenarios
(scale-out, a member down and back, skewed load); per 1-second window:
requests, in-flight and new sessions per member, imbalance, sessions moved and
why, errors. Standard library only; see docs/benchmarks/balance/README.md.

    balance.py main                 # everything (settings from BALANCE_* env)
    balance.py run-one JSONFILE     # one (scenario, contender) run (internal)
    balance.py reanalyse RAWDIR NOTE  # the down scenario's ramp again from raw/
"""
import asyncio
import bisect
import gzip
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.parse
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests"))
from srtest import apache  # noqa: E402  (apache2 started, stopped, checked as the tests do)
from srtest.metrics import prometheus_samples  # noqa: E402  (the tests' one parser)
from srtest.procs import pid_alive, port_quiet  # noqa: E402  (reaps our own children)
from srtest.wait import wait_until  # noqa: E402
PY = "/usr/bin/python3"
MEMBERS = ["m1", "m2", "m3", "m4"]


def die(msg):
    """Bad settings or a missing tool: exit status 2."""
    sys.stderr.write(msg + "\n")
    sys.exit(2)


def log(msg):
    sys.stderr.write("[balance %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---------------------------------------------------------------------------
# Settings (environment). BALANCE_SMOKE=1 changes the defaults to a < 2 minute
# run whose numbers are too short to quote (the report says so).

def env_num(name, default, kind=float):
    v = os.environ.get(name, "")
    if v == "":
        return default
    try:
        return kind(v)
    except ValueError:
        die("bench-balance: %s must be a number, got %r" % (name, v))


def settings():
    smoke = os.environ.get("BALANCE_SMOKE", "0") not in ("", "0")
    d = dict(
        smoke=smoke,
        seed=env_num("BALANCE_SEED", 20261130, int),
        clients=env_num("BALANCE_CLIENTS", 100 if smoke else 400, int),
        heavy=env_num("BALANCE_HEAVY", 2 if smoke else 4, int),
        skew_heavy=env_num("BALANCE_SKEW_HEAVY", 6 if smoke else 8, int),
        idle=env_num("BALANCE_IDLE", 2 if smoke else 5, int),            # StickyRouteRebalance IDLE_SECONDS
        factor=env_num("BALANCE_FACTOR", 1.25),                          # StickyRouteRebalance FACTOR
        maxidle=env_num("BALANCE_MAXIDLE", 4 if smoke else 10, int),     # MaxIdle= / haproxy maxidle
        maxlife=env_num("BALANCE_MAXLIFE", 300, int),                    # MaxLife= / haproxy maxlife
        slowstart=env_num("BALANCE_SLOWSTART", 4 if smoke else 10, int),  # StickyRouteSlowStart
        parallel=env_num("BALANCE_PARALLEL", 8 if smoke else 2, int),
        repeat=env_num("BALANCE_REPEAT", 1 if smoke else 3, int),       # repetitions of every run
        port_base=env_num("BALANCE_PORT_BASE", 23100, int),
        ramp=env_num("BALANCE_RAMP", 3 if smoke else 5, float),         # clients start spread over this
        warm=env_num("BALANCE_WARM", 6 if smoke else 15, float),        # seconds before the scenario's event
        imbalance_target=1.2,
        contenders=os.environ.get("BALANCE_CONTENDERS", "all"),
        scenarios=os.environ.get("BALANCE_SCENARIOS", "scaleout,down,skew"),
        out=os.environ.get("BALANCE_OUT", "/tmp/balance-smoke" if smoke else os.path.join(REPO, "docs/benchmarks/balance")),
        module=os.environ.get("BALANCE_MODULE", os.path.join(REPO, ".libs/mod_sticky_route.so")),
        keep=os.environ.get("BALANCE_KEEP", "0") == "1",
    )
    if not (23000 <= d["port_base"] and d["port_base"] + 20 * len(CONTENDERS) + 20 <= 23999):
        die("bench-balance: BALANCE_PORT_BASE must keep every port in 23000-23999")
    if d["parallel"] < 1 or d["clients"] < 10 or d["repeat"] < 1:
        die("bench-balance: need BALANCE_PARALLEL >= 1, BALANCE_REPEAT >= 1 and BALANCE_CLIENTS >= 10")
    return d


# ---------------------------------------------------------------------------
# Contenders. `features` says which mechanisms a contender has (the targets
# that apply to it); `directives` are the StickyRoute* lines of the module's
# variants. Every contender sees the same members, client model and events.

def sticky_cookie(S):
    return ("StickyRouteCookie ROUTEID Path=/ HttpOnly SameSite=Lax MaxIdle=%d MaxLife=%d"
            % (S["maxidle"], S["maxlife"]))


CONTENDERS = [
    dict(name="stock", kind="httpd", tmpl="httpd-stock.conf.in", features=[],
         label="stock recipe (byrequests + stickysession + mod_headers)"),
    dict(name="haproxy-rr", kind="haproxy", balance="roundrobin", lifetimes=False, features=[],
         label="HAProxy 2.6 cookie insert, balance roundrobin"),
    dict(name="haproxy-lc", kind="haproxy", balance="leastconn", lifetimes=True, features=["lifetimes"],
         label="HAProxy 2.6 cookie insert maxidle, balance leastconn"),
    dict(name="sticky", kind="httpd", tmpl="httpd-sticky.conf.in", features=[], module=True,
         directives=lambda S: [],
         label="lbmethod=sticky (roundrobin election)"),
    dict(name="sticky-leastbusy", kind="httpd", tmpl="httpd-sticky.conf.in", features=["leastbusy"], module=True,
         directives=lambda S: ["StickyRouteElect leastbusy"],
         label="lbmethod=sticky, StickyRouteElect leastbusy"),
    dict(name="sticky-lifetimes", kind="httpd", tmpl="httpd-sticky.conf.in", features=["lifetimes"], module=True,
         directives=lambda S: [sticky_cookie(S)],
         label="lbmethod=sticky, MaxIdle/MaxLife (roundrobin election)"),
    dict(name="sticky-leastbusy-lifetimes", kind="httpd", tmpl="httpd-sticky.conf.in",
         features=["leastbusy", "lifetimes"], module=True,
         directives=lambda S: ["StickyRouteElect leastbusy", sticky_cookie(S)],
         label="lbmethod=sticky, leastbusy + MaxIdle/MaxLife (as haproxy-lc)"),
    dict(name="sticky-full", kind="httpd", tmpl="httpd-sticky.conf.in",
         features=["leastbusy", "lifetimes", "slowstart", "rebalance"], module=True,
         directives=lambda S: ["StickyRouteElect leastbusy", sticky_cookie(S),
                               "StickyRouteSlowStart %d" % S["slowstart"],
                               "StickyRouteRebalance %d %s" % (S["idle"], S["factor"])],
         label="lbmethod=sticky, leastbusy + MaxIdle/MaxLife + SlowStart + Rebalance"),
]
CONTENDER_BY_NAME = {c["name"]: c for c in CONTENDERS}


def ports_of(S, name):
    k = [c["name"] for c in CONTENDERS].index(name)
    base = S["port_base"] + 20 * k
    return dict(members=[base + 1 + i for i in range(4)], proxy=base + 10)


# ---------------------------------------------------------------------------
# Scenarios: the timeline (seconds after the clients start) and which members
# are usable when. Durations follow from the module parameters so that every
# target's deadline falls inside the run with a margin to see it hold.

def scenario_plan(S, name):
    W = S["warm"]
    margin = 5 if S["smoke"] else 10
    if name == "scaleout":
        t_add = W
        dur = t_add + max(S["idle"], S["maxidle"]) + (4 if S["smoke"] else 10) + margin
        return dict(name=name, duration=dur, initial_disabled=["m3", "m4"],
                    events=[dict(t=t_add, kind="enable", members=["m3", "m4"])],
                    title="scale-out: 2 members with established sessions, 2 more enabled at t=%gs" % t_add)
    if name == "down":
        t_down = W
        t_back = W + (4 if S["smoke"] else 10)
        dur = t_back + S["slowstart"] + margin + (0 if S["smoke"] else 5)
        return dict(name=name, duration=dur, initial_disabled=[],
                    events=[dict(t=t_down, kind="kill", members=["m2"]),
                            dict(t=t_back, kind="start", members=["m2"])],
                    title="member down: m2 killed (SIGKILL) at t=%gs, restarted at t=%gs" % (t_down, t_back))
    if name == "skew":
        t_skew = W
        dur = t_skew + (10 if S["smoke"] else 30)
        return dict(name=name, duration=dur, initial_disabled=[],
                    events=[dict(t=t_skew, kind="heavy", count=S["skew_heavy"])],
                    title="skewed load: %d heavy clients arrive from t=%gs" % (S["skew_heavy"], t_skew))
    raise ValueError(name)


def usable_at(plan, t):
    """Members usable at time t per the harness's own timeline."""
    u = [m for m in MEMBERS if m not in plan["initial_disabled"]]
    for ev in plan["events"]:
        if ev["t"] > t:
            break
        if ev["kind"] == "enable":
            u = [m for m in MEMBERS if m in u or m in ev["members"]]
        elif ev["kind"] == "kill":
            u = [m for m in u if m not in ev["members"]]
        elif ev["kind"] == "start":
            u = [m for m in MEMBERS if m in u or m in ev["members"]]
    return u


# ---------------------------------------------------------------------------
# Configs

def render(template_text, vals):
    """${NAME} placeholders: Python's string.Template, as every test template."""
    try:
        return string.Template(template_text).substitute(vals)
    except (KeyError, ValueError) as e:
        raise RuntimeError("unrendered placeholder: %s" % e) from None


def httpd_user():
    try:
        import pwd
        pwd.getpwnam("www-data")
        return "www-data", "www-data"
    except KeyError:
        return "#%d" % os.getuid(), "#%d" % os.getgid()


def render_contender(S, c, rundir, module_path, disabled):
    """Writes the contender's config into rundir; returns its path."""
    p = ports_of(S, c["name"])
    name = c["name"]
    if c["kind"] == "httpd":
        lines = []
        for i, m in enumerate(MEMBERS):
            st = " status=+D" if m in disabled else ""
            lines.append('    BalancerMember "http://127.0.0.1:%d" route=%s ttl=60 retry=2%s'
                         % (p["members"][i], m, st))
        user, group = httpd_user()
        vals = dict(RUN=rundir, NAME=name, PORT=p["proxy"], USER=user, GROUP=group,
                    MODULE=module_path, MEMBERS="\n".join(lines),
                    STICKY_DIRECTIVES="\n".join("    " + d for d in c.get("directives", lambda S: [])(S)))
        text = render(open(os.path.join(HERE, "conf/httpd-common.conf.in")).read() +
                      "\n" + open(os.path.join(HERE, "conf", c["tmpl"])).read(), vals)
        os.makedirs(os.path.join(rundir, "rt-" + name), exist_ok=True)
        os.makedirs(os.path.join(rundir, "logs"), exist_ok=True)
        try:
            shutil.chown(os.path.join(rundir, "rt-" + name), user, group)
        except (LookupError, PermissionError, OSError):
            pass
        path = os.path.join(rundir, name + ".conf")
    else:
        extra = (" maxidle %ds maxlife %ds" % (S["maxidle"], S["maxlife"])) if c["lifetimes"] else ""
        vals = dict(RUN=rundir, NAME=name, PORT=p["proxy"], BALANCE=c["balance"], COOKIE_EXTRA=extra,
                    M1_PORT=p["members"][0], M2_PORT=p["members"][1],
                    M3_PORT=p["members"][2], M4_PORT=p["members"][3],
                    M3_STATE=" disabled" if "m3" in disabled else "",
                    M4_STATE=" disabled" if "m4" in disabled else "")
        text = render(open(os.path.join(HERE, "conf/haproxy.cfg.in")).read(), vals)
        path = os.path.join(rundir, name + ".cfg")
    with open(path, "w") as f:
        f.write(text)
    return path


def config_test(c, path):
    """(ok, reason). A config the installed httpd/module refuses makes the
    contender `not available in this build` (the new directives of the
    module's next version are refused by older builds: Invalid command)."""
    if c["kind"] == "httpd":
        rc, out = apache.configtest(path, timeout=60)
    else:
        r = subprocess.run(["haproxy", "-c", "-f", path], capture_output=True, text=True, timeout=60)
        rc, out = r.returncode, r.stderr + r.stdout
    if rc == 0:
        return True, ""
    msg = " ".join(out.split())
    m = re.search(r"Invalid command '([^']+)'", msg)
    if m:
        return False, "not available in this build (apache2 -t: Invalid command '%s')" % m.group(1)
    return False, "not available in this build (config test failed: %s)" % msg[-300:]


# ---------------------------------------------------------------------------
# Process control: only what we started, by pid.

def port_open(port):
    return not port_quiet(port)


def wait_port(port, seconds, want=True):
    """True once port_open(port) == want, False after `seconds`."""
    try:
        return wait_until(lambda: port_open(port) == want, seconds, interval=0.05,
                          what="port %d %s" % (port, "open" if want else "closed"))
    except TimeoutError:
        return False


def read_pids(pidfile):
    try:
        return [int(x) for x in open(pidfile).read().split()]
    except (OSError, ValueError):
        return []


class Member:
    def __init__(self, name, port, logdir):
        self.name, self.port, self.logdir = name, port, logdir
        self.proc = None

    def start(self):
        logf = open(os.path.join(self.logdir, "member-%s-%d.log" % (self.name, self.port)), "a")
        self.proc = subprocess.Popen([PY, os.path.join(HERE, "backend.py"), "--port", str(self.port),
                                      "--name", self.name], stdout=logf, stderr=logf,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


class Proxy:
    """A contender's proxy. httpd runs as every test runs it (srtest.apache:
    `-k start -D NO_DETACH`, our child, stopped with `-k stop`); HAProxy
    daemonizes (-D) and is stopped with SIGTERM. Both write the pid file."""

    def __init__(self, c, conf, rundir, port):
        self.c, self.conf, self.rundir, self.port = c, conf, rundir, port
        self.pidfile = os.path.join(rundir, c["name"] + ".pid")
        self.started = False
        self.proc = None            # apache2's parent (httpd only)

    def start(self):
        logf = os.path.join(self.rundir, "logs", self.c["name"] + ".start")
        os.makedirs(os.path.dirname(logf), exist_ok=True)
        self.started = True
        if self.c["kind"] == "httpd":
            self.proc = apache.spawn(self.conf, logf, append=False)
            up = lambda: port_open(self.port) or self.proc.poll() is not None  # noqa: E731
            try:
                wait_until(up, 15, interval=0.05, what="%s listening" % self.c["name"])
            except TimeoutError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("%s failed to start (rc %d): %s" % (
                    self.c["name"], self.proc.returncode, open(logf).read()[-300:]))
        else:
            with open(logf, "w") as f:
                r = subprocess.run(["haproxy", "-D", "-f", self.conf], stdout=f, stderr=f,
                                   stdin=subprocess.DEVNULL, timeout=30)
            if r.returncode != 0:
                raise RuntimeError("%s failed to start: %s" % (self.c["name"], open(logf).read()[-300:]))
        if not wait_port(self.port, 15):
            raise RuntimeError("%s not listening on %d" % (self.c["name"], self.port))

    def stop(self):
        if not self.started:
            return
        pids = read_pids(self.pidfile)
        if self.c["kind"] == "httpd":
            apache.ctl(self.conf, "stop", timeout=30, check=False)
        else:
            for p in pids:
                try:
                    os.kill(p, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
            time.sleep(0.1)
        for p in pids:
            if pid_alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.proc is not None:
            apache.wait_parent(self.proc)
        wait_port(self.port, 10, want=False)


# ---------------------------------------------------------------------------
# The client model. Every random number comes from a per-slot generator seeded
# from (seed, slot), drawn in a fixed order that does not depend on answers:
# every contender gets exactly the same sessions, requests, service times and
# think times, only the timing of answers differs.
#
# A slot is one concurrent user after another: a session (a new user, empty
# cookie jar, own keep-alive connection) of L requests, then a pause, then the
# next session. Light sessions:
#   L      ~ Pareto(alpha 1.5, min 4 requests), at most 400   (mean ~11)
#   think  ~ 85 %: exponential, mean 0.5 s (page assets, clicks)
#            15 %: Pareto(alpha 1.5, min 2 s), at most 60 s (reading; ~1.3 %
#                  of gaps exceed 10 s, ~3.8 % exceed 5 s)
#   pause  ~ exponential, mean 1 s between two sessions of a slot
# Heavy clients (API clients, crawlers): one session for the whole run,
#   think ~ exponential, mean 0.06 s (scale-out, down) / 0.02 s (skew surge).
# Service time of every request (the member sleeps it): lognormal, median
#   40 ms, sigma 0.5, at most 1 s.

def draw_session_len(rng):
    return min(400, int(4 * (1.0 - rng.random()) ** (-1 / 1.5)))


def draw_think(rng):
    a, b = rng.random(), rng.random()
    if a < 0.85:
        return -0.5 * math.log(1.0 - b)
    return min(60.0, 2.0 * (1.0 - b) ** (-1 / 1.5))


def draw_service_ms(rng):
    return int(min(1000.0, 40.0 * math.exp(0.5 * rng.gauss(0.0, 1.0))))


REQ_TIMEOUT = 10.0


class HttpError(Exception):
    pass


class Conn:
    def __init__(self, port):
        self.port = port
        self.r = self.w = None
        self.uses = 0

    async def open(self):
        self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)
        self.uses = 0

    def close(self):
        if self.w is not None:
            try:
                self.w.close()
            except Exception:
                pass
        self.r = self.w = None


async def _read_response(conn):
    head = await conn.r.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    hdrs = {}
    for ln in lines[1:]:
        if not ln:
            continue
        k, _, v = ln.partition(":")
        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    te = ",".join(hdrs.get("transfer-encoding", [])).lower()
    if "chunked" in te:
        while True:
            size_line = await conn.r.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await conn.r.readuntil(b"\r\n")   # (no trailers expected)
                break
            await conn.r.readexactly(size + 2)
    elif "content-length" in hdrs:
        n = int(hdrs["content-length"][0])
        if n:
            await conn.r.readexactly(n)
    else:
        await conn.r.read()
        conn.close()
        return status, hdrs
    if "close" in ",".join(hdrs.get("connection", [])).lower():
        conn.close()
    return status, hdrs


async def http_get(conn, path, cookie_header):
    """One GET on conn (opened if needed). A request on a reused connection
    that the server closed before any byte of an answer is repeated once on a
    new connection, as HTTP allows for an idempotent request (browsers do
    it); returns (status, headers, retried)."""
    retried = False
    for attempt in (0, 1):
        fresh = conn.w is None
        if fresh:
            await conn.open()
        req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: balance-bench\r\n" % (path, conn.port)
        if cookie_header:
            req += "Cookie: %s\r\n" % cookie_header
        req += "\r\n"
        try:
            conn.w.write(req.encode("latin-1"))
            await conn.w.drain()
            status, hdrs = await _read_response(conn)
            conn.uses += 1
            return status, hdrs, retried
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as e:
            partial = getattr(e, "partial", b"")
            conn.close()
            if fresh or partial or attempt == 1:
                raise HttpError("connection closed" if not partial else "truncated answer")
            retried = True
    raise HttpError("unreachable")


def update_jar(jar, set_cookies):
    for sc in set_cookies:
        first, _, attrs = sc.partition(";")
        name, _, value = first.partition("=")
        name = name.strip()
        if not name:
            continue
        if re.search(r"(?i)max-age\s*=\s*0\b", attrs):
            jar.pop(name, None)
        else:
            jar[name] = value.strip()


class ClientModel:
    def __init__(self, S, plan, port, mono0):
        self.S, self.plan, self.port, self.mono0 = S, plan, port, mono0
        self.records = []     # per request, see Record fields in run_slot
        self.stop_at = plan["duration"]
        self.sessions = 0

    def now(self):
        return time.monotonic() - self.mono0

    async def sleep_until(self, t):
        d = t - self.now()
        if d > 0:
            await asyncio.sleep(d)

    async def run_slot(self, slot, heavy, start_at, think_mean):
        rng = random.Random("%d:%s:%d" % (self.S["seed"], heavy or "light", slot))
        start_at += rng.uniform(0.0, self.S["ramp"] if not heavy else 2.0)
        await self.sleep_until(start_at)
        sess_no = 0
        while self.now() < self.stop_at:
            n = 10 ** 9 if heavy else draw_session_len(rng)
            uid = "%s%d.%d" % ({"heavy": "H", "surge": "S"}.get(heavy, "c"), slot, sess_no)
            jar = {}
            conn = Conn(self.port)
            prev_member, prev_end, prev_start = None, None, None
            i = 0
            try:
                while i < n and self.now() < self.stop_at:
                    ms = draw_service_ms(rng)
                    think = (-think_mean * math.log(1.0 - rng.random())) if heavy else draw_think(rng)
                    cookie = "; ".join("%s=%s" % kv for kv in jar.items())
                    t0 = self.now()
                    status, member, sticky, err, retried = 0, "", "", "", False
                    try:
                        status, hdrs, retried = await asyncio.wait_for(
                            http_get(conn, "/p?ms=%d&u=%s&i=%d" % (ms, uid, i), cookie), REQ_TIMEOUT)
                        member = (hdrs.get("x-served-by") or [""])[0]
                        sticky = (hdrs.get("x-sticky-status") or [""])[0]
                        update_jar(jar, hdrs.get("set-cookie", []))
                        if not 200 <= status < 300:
                            err = "http %d" % status
                            member = member if member in MEMBERS else ""
                    except asyncio.TimeoutError:
                        err = "timeout"
                        conn.close()
                    except (HttpError, OSError) as e:
                        err = "socket: %s" % (e.__class__.__name__ if not str(e) else str(e))
                        conn.close()
                    t1 = self.now()
                    # gap: since the end of the previous answer (the client's idle
                    # time); gap_start: since the previous request left (what a
                    # proxy can know at most)
                    moved_from, gap, gap_start = "", -1.0, -1.0
                    if prev_end is not None:
                        gap, gap_start = t0 - prev_end, t0 - prev_start
                    if not err and member:
                        if prev_member is not None and member != prev_member:
                            moved_from = prev_member
                        prev_member, prev_end, prev_start = member, t1, t0
                    self.records.append((round(t0, 4), round(t1, 4), uid, i, 1 if heavy else 0,
                                         1 if not cookie else 0, status, member, sticky,
                                         err, 1 if retried else 0, moved_from, round(gap, 3), round(gap_start, 3)))
                    i += 1
                    wake = min(self.now() + think, self.stop_at)
                    await self.sleep_until(wake)
            finally:
                conn.close()
            self.sessions += 1
            sess_no += 1
            if heavy:
                break
            pause = -1.0 * math.log(1.0 - rng.random())
            await self.sleep_until(min(self.now() + pause, self.stop_at))


RECORD_FIELDS = ["t0", "t1", "session", "i", "heavy", "nocookie", "status", "member", "sticky",
                 "err", "retried", "moved_from", "gap", "gap_start"]


# ---------------------------------------------------------------------------
# One run: a contender in a scenario.

def parse_status_metrics(text):
    """Gauges of the module's status endpoint: {metric: {route: value}}
    (parsed by prometheus_client, srtest.metrics)."""
    out = {}
    for metric, labels, value in prometheus_samples(text):
        if not metric.startswith("sticky_route_") or not labels:
            continue
        if labels.get("balancer") not in (None, "pool", "balancer://pool"):
            continue
        key = labels.get("route", "")
        if metric == "sticky_route_requests_total":
            key = "%s/%s" % (labels.get("route", ""), labels.get("status", ""))
        out.setdefault(metric, {})
        out[metric][key] = out[metric].get(key, 0.0) + float(value)
    return out


def fetch_text(port, path, timeout=2.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode("latin-1")
    finally:
        conn.close()


def manager_enable(port, member_port):
    """Enable a member through mod_proxy_balancer's balancer-manager: a POST
    with the balancer's nonce and a Referer naming the host."""
    hdr = {"Host": "127.0.0.1:%d" % port, "Referer": "http://127.0.0.1:%d/balancer-manager" % port}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/balancer-manager", headers=hdr)
    page = conn.getresponse().read().decode("latin-1")
    conn.close()
    m = re.search(r"b=pool&amp;[^\"'<>]*?nonce=([^\"'&<>]+)", page)
    if not m:
        raise RuntimeError("no nonce in the balancer-manager page")
    body = urllib.parse.urlencode([("b", "pool"), ("nonce", m.group(1)),
                                   ("w", "http://127.0.0.1:%d" % member_port), ("w_status_D", "0")])
    h = dict(hdr)
    h["Content-Type"] = "application/x-www-form-urlencoded"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", "/balancer-manager", body=body, headers=h)
    r = conn.getresponse()
    r.read()
    conn.close()
    if r.status != 200:
        raise RuntimeError("balancer-manager POST: %d" % r.status)


def haproxy_cmd(sock_path, cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock_path)
    s.sendall((cmd + "\n").encode())
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    return out.decode("latin-1")


async def run_timeline(job, plan, client, members, proxy_port, rundir, events_done):
    c = CONTENDER_BY_NAME[job["contender"]]
    loop = asyncio.get_running_loop()
    for ev in plan["events"]:
        await client.sleep_until(ev["t"])
        t_begin = client.now()
        note = ""
        try:
            if ev["kind"] == "enable":
                for m in ev["members"]:
                    mp = members[m].port
                    if c["kind"] == "httpd":
                        await loop.run_in_executor(None, manager_enable, proxy_port, mp)
                    else:
                        out = await loop.run_in_executor(None, haproxy_cmd,
                                                         os.path.join(rundir, c["name"] + ".sock"),
                                                         "enable server pool/%s" % m)
                        if out.strip():
                            note += out.strip() + " "
            elif ev["kind"] == "kill":
                for m in ev["members"]:
                    members[m].kill()
            elif ev["kind"] == "start":
                for m in ev["members"]:
                    members[m].start()
                for m in ev["members"]:
                    ok = await loop.run_in_executor(None, wait_port, members[m].port, 10)
                    if not ok:
                        note += "%s did not come back " % m
            elif ev["kind"] == "heavy":
                pass  # the surge's slots were scheduled at start (run_job)
        except Exception as e:  # recorded, the run goes on
            note += "ERROR %s" % e
        events_done.append(dict(ev, t_begin=round(t_begin, 3), t_done=round(client.now(), 3), note=note.strip()))


async def sample_status(job, client, proxy_port, samples):
    """Once a second: the module's status gauges (in-flight, slow-start share)."""
    loop = asyncio.get_running_loop()
    while client.now() < client.stop_at:
        t = client.now()
        try:
            st, text = await loop.run_in_executor(None, fetch_text, proxy_port, "/sticky-route-status")
            if st == 200:
                samples.append((round(t, 3), parse_status_metrics(text)))
        except Exception:
            pass
        await client.sleep_until(math.floor(t) + 1.0)


def machine_ticks():
    """(busy, total) CPU ticks of the whole machine, all cores (/proc/stat)."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)   # user nice system irq softirq steal
    return busy, sum(v[:8])


def proc_ticks(pids):
    """utime+stime ticks of pids and of all their descendants."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as fh:
                    st = fh.read()
                parent[int(d)] = (int(st[st.rindex(")") + 2:].split()[1]), st)
            except (OSError, ValueError):
                pass
    want = set(p for p in pids if p)
    grew = True
    while grew:
        grew = False
        for p, (pp, _) in parent.items():
            if pp in want and p not in want:
                want.add(p)
                grew = True
    tot = 0
    for p in want:
        if p in parent:
            f = parent[p][1][parent[p][1].rindex(")") + 2:].split()
            tot += int(f[11]) + int(f[12])
    return tot


def own_ticks(members, proxy):
    """CPU ticks of everything this run started: the client (this process),
    its members and the proxy's processes."""
    pids = [os.getpid()] + [m.proc.pid for m in members.values() if m.proc and m.proc.poll() is None]
    if proxy is not None:
        pids += read_pids(proxy.pidfile)
    return proc_ticks(pids)


async def drive(job, plan, members, proxy_port, rundir, proxy=None):
    S = job["settings"]
    c = CONTENDER_BY_NAME[job["contender"]]
    # Common start: parallel runs of one batch share the wall-clock t0.
    while time.time() < job["t0_wall"]:
        await asyncio.sleep(min(0.05, job["t0_wall"] - time.time()))
    mono0 = time.monotonic()
    cpu0 = machine_ticks() + (own_ticks(members, proxy),)
    client = ClientModel(S, plan, proxy_port, mono0)
    tasks = []
    for s in range(S["clients"]):
        tasks.append(asyncio.ensure_future(client.run_slot(s, None, 0.0, 0.0)))
    for h in range(S["heavy"]):
        tasks.append(asyncio.ensure_future(client.run_slot(h, "heavy", 0.0, 0.06)))
    for ev in plan["events"]:
        if ev["kind"] == "heavy":
            for h in range(ev["count"]):
                tasks.append(asyncio.ensure_future(client.run_slot(h, "surge", ev["t"], 0.02)))
    events_done, samples = [], []
    side = [asyncio.ensure_future(run_timeline(job, plan, client, members, proxy_port, rundir, events_done))]
    if c.get("module"):
        side.append(asyncio.ensure_future(sample_status(job, client, proxy_port, samples)))
    await asyncio.wait(tasks + side, timeout=plan["duration"] + REQ_TIMEOUT + 5)
    cpu1 = machine_ticks() + (own_ticks(members, proxy),)
    dt = max(1, cpu1[1] - cpu0[1])
    client.cpu = dict(machine_busy_pct=round(100.0 * (cpu1[0] - cpu0[0]) / dt, 1),
                      own_pct=round(100.0 * (cpu1[2] - cpu0[2]) / dt, 1))
    for t in tasks + side:
        if not t.done():
            t.cancel()
    await asyncio.sleep(0.1)
    final = {}
    if c.get("module"):
        try:
            st, text = fetch_text(proxy_port, "/sticky-route-status")
            if st == 200:
                final = parse_status_metrics(text)
        except Exception:
            pass
    return client, events_done, samples, final


def run_job(jobfile):
    job = json.load(open(jobfile))
    S = job["settings"]
    c = CONTENDER_BY_NAME[job["contender"]]
    plan = scenario_plan(S, job["scenario"])
    rundir = job["rundir"]
    os.makedirs(os.path.join(rundir, "logs"), exist_ok=True)
    p = ports_of(S, c["name"])
    members = {m: Member(m, p["members"][i], os.path.join(rundir, "logs")) for i, m in enumerate(MEMBERS)}
    proxy = None
    stopping = []

    def on_term(*_):
        stopping.append(1)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    result = dict(scenario=job["scenario"], contender=c["name"], label=c["label"], features=c["features"],
                  available=True, reason="")
    try:
        for m in members.values():
            m.start()
        for m in members.values():
            if not wait_port(m.port, 10):
                raise RuntimeError("member %s not listening on %d" % (m.name, m.port))
        conf = render_contender(S, c, rundir, job["module"], plan["initial_disabled"])
        proxy = Proxy(c, conf, rundir, p["proxy"])
        proxy.start()
        # Sanity: an answer from a usable member through the proxy.
        st, _ = fetch_text(p["proxy"], "/p?ms=0&u=sanity&i=0", timeout=5)
        if st != 200:
            raise RuntimeError("sanity request through the proxy: status %d" % st)
        if time.time() > job["t0_wall"]:
            log("%s/%s: set-up ended %.1fs after the common start" % (job["scenario"], c["name"], time.time() - job["t0_wall"]))
        client, events_done, samples, final = asyncio.run(drive(job, plan, members, p["proxy"], rundir, proxy))
        result.update(analyse(S, plan, c, client.records, events_done, samples, final))
        result["sessions"] = client.sessions
        result["cpu"] = getattr(client, "cpu", {})
        with gzip.open(os.path.join(rundir, "requests.tsv.gz"), "wt") as f:
            f.write("\t".join(RECORD_FIELDS) + "\n")
            for r in client.records:
                f.write("\t".join(str(x) for x in r) + "\n")
    except KeyboardInterrupt:
        result.update(available=True, failed="interrupted")
    except Exception as e:
        result.update(failed="%s: %s" % (e.__class__.__name__, e))
        log("%s/%s: FAILED: %s" % (job["scenario"], c["name"], e))
    finally:
        if proxy:
            proxy.stop()
        for m in members.values():
            m.stop()
        try:
            logtxt = ""
            for fn in sorted(os.listdir(os.path.join(rundir, "logs"))):
                if fn.endswith(".error.log"):
                    logtxt += "== %s\n" % fn + "".join(open(os.path.join(rundir, "logs", fn)).readlines()[-30:])
            result["error_log_tail"] = logtxt[-4000:]
        except OSError:
            pass
        with open(job["result"], "w") as f:
            json.dump(result, f)
    return 0 if not result.get("failed") else 1


# ---------------------------------------------------------------------------
# Analysis: per-1-second windows and the run's summary.

def rolling_imbalance(counts_by_window, usable_by_window, change_windows, k=5):
    """max/mean over usable members of the requests of the last k windows
    (never reaching back past the last change of the usable set)."""
    out = []
    for w in range(len(counts_by_window)):
        last_change = max([x for x in change_windows if x <= w] or [0])
        lo = max(last_change, w - k + 1)
        U = usable_by_window[w]
        tot = {m: sum(counts_by_window[j].get(m, 0) for j in range(lo, w + 1)) for m in U}
        out.append(imbalance(tot, U))
    return out


def imbalance(counts, U):
    if not U:
        return None
    vals = [counts.get(m, 0) for m in U]
    mean = sum(vals) / len(vals)
    if mean <= 0:
        return None
    return max(vals) / mean


def settle_time(series, t_event, end_w, target):
    """First window w >= t_event from which every window up to the end is
    <= target; None if the last window is above it."""
    first = int(math.floor(t_event))
    ok_from = None
    for w in range(first, end_w):
        v = series[w]
        if v is None or v > target:
            ok_from = None
        elif ok_from is None:
            ok_from = w
    return ok_from


def analyse(S, plan, c, records, events_done, samples, final):
    dur = int(math.ceil(plan["duration"]))
    nW = dur
    req = [dict() for _ in range(nW)]
    new = [dict() for _ in range(nW)]
    infl = [dict.fromkeys(MEMBERS, 0.0) for _ in range(nW)]
    errors = [0] * nW
    moved = [dict(failover=0, expired=0, rebalanced=0, other=0) for _ in range(nW)]
    active_moves = [0] * nW
    decisions = {}
    err_kinds = {}
    lat = []
    usable = [usable_at(plan, w + 0.5) for w in range(nW)]
    change_ws = sorted(set(int(math.floor(ev["t"])) for ev in plan["events"] if ev["kind"] != "heavy"))
    kill = [ev for ev in plan["events"] if ev["kind"] == "kill"]
    start = [ev for ev in plan["events"] if ev["kind"] == "start"]
    t_down = kill[0]["t"] if kill else None
    t_back = start[0]["t"] if start else None
    down_m = kill[0]["members"][0] if kill else None
    active_list = []
    retries = 0
    for r in records:
        t0, t1, uid, i, heavy, nocookie, status, member, sticky, err, retried, moved_from, gap, gap_start = r
        w = int(t0)
        if w >= nW or w < 0:
            continue
        retries += retried
        if err:
            errors[w] += 1
            k = err.split(":")[0]
            err_kinds[k] = err_kinds.get(k, 0) + 1
            continue
        lat.append(t1 - t0)
        req[w][member] = req[w].get(member, 0) + 1
        if sticky:
            decisions[sticky] = decisions.get(sticky, 0) + 1
        if nocookie:
            new[w][member] = new[w].get(member, 0) + 1
        # in flight: time-weighted, split over the windows the request spans
        a = t0
        while a < t1 and int(a) < nW:
            b = min(t1, math.floor(a) + 1.0)
            infl[int(a)][member] += b - a
            a = b
        if moved_from:
            if sticky in ("failover", "expired", "rebalanced"):
                reason = sticky
            elif sticky:                       # hit/new/unknown/forged: not a planned move
                reason = "other"
            elif down_m and moved_from == down_m and t1 >= t_down and (t0 - gap) < t_back + 5:
                reason = "failover"
            elif "lifetimes" in c["features"]:
                reason = "expired"             # inferred: HAProxy says nothing
            else:
                reason = "other"
            moved[w][reason] += 1
            if reason != "failover" and gap < S["idle"]:
                active_moves[w] += 1
                if len(active_list) < 20:
                    active_list.append(dict(t=t0, session=uid, i=i, frm=moved_from, to=member,
                                            gap=gap, gap_start=gap_start, status=sticky or "-", reason=reason))
    imb1 = [imbalance(req[w], usable[w]) for w in range(nW)]
    imb5 = rolling_imbalance(req, usable, change_ws)
    # Status gauges per window (module contenders).
    gauge = [dict() for _ in range(nW)]
    for t, mets in samples:
        w = int(t)
        if 0 <= w < nW:
            gauge[w] = mets
    windows = []
    for w in range(nW):
        row = dict(t=w, usable=",".join(usable[w]), errors=errors[w],
                   imb1=imb1[w], imb5=imb5[w], active_moves=active_moves[w])
        for m in MEMBERS:
            row["req_" + m] = req[w].get(m, 0)
            row["new_" + m] = new[w].get(m, 0)
            row["inflight_" + m] = round(infl[w][m], 3)
            g = gauge[w]
            row["gauge_inflight_" + m] = g.get("sticky_route_member_inflight", {}).get(m, "")
            row["gauge_slowstart_" + m] = g.get("sticky_route_member_slowstart_share", {}).get(m, "")
        for k in ("failover", "expired", "rebalanced", "other"):
            row["moved_" + k] = moved[w][k]
        windows.append(row)
    lat.sort()

    def pct(p):
        return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else None
    summ = dict(duration=plan["duration"], plan_title=plan["title"], events=events_done,
                requests=sum(sum(x.values()) for x in req), errors=sum(errors), error_kinds=err_kinds,
                client_retries=retries, p50_ms=pct(0.50), p99_ms=pct(0.99),
                moved={k: sum(m[k] for m in moved) for k in ("failover", "expired", "rebalanced", "other")},
                moved_active=sum(active_moves), moved_active_examples=active_list,
                decisions=decisions, status_final=final.get("sticky_route_requests_total", {}),
                windows=windows)
    summ.update(scenario_metrics(S, plan, c, windows, records, usable))
    return summ


def scenario_metrics(S, plan, c, W, records, usable):
    nW = len(W)
    tgt = S["imbalance_target"]
    out = {}
    imb5 = [w["imb5"] for w in W]
    if plan["name"] == "scaleout":
        t_add = plan["events"][0]["t"]
        first_new = None
        for r in records:
            if r[0] >= t_add and r[7] in ("m3", "m4") and not r[9]:
                first_new = r[0] if first_new is None else min(first_new, r[0])
        s = settle_time(imb5, t_add, nW, tgt)
        out["settle_s"] = (s - t_add) if s is not None else None
        out["first_new_member_s"] = round(first_new - t_add, 2) if first_new is not None else None
        out["imb5_before"] = mean_of(imb5[int(t_add) - 5:int(t_add)])
        out["imb5_last10"] = mean_of(imb5[nW - 10:])
        out["imb5_max_after"] = max_of(imb5[int(t_add):])
        out["observed_s"] = round(plan["duration"] - t_add, 1)
        last = W[nW - 10:]
        tot = sum(sum(w["req_" + m] for m in MEMBERS) for w in last) or 1
        out["share_last10"] = {m: round(sum(w["req_" + m] for w in last) / tot, 3) for m in MEMBERS}
    elif plan["name"] == "down":
        kill = plan["events"][0]
        back = plan["events"][1]
        m = kill["members"][0]
        seen = None
        for r in records:
            if r[0] >= back["t"] and r[7] == m and not r[9]:
                seen = r[0] if seen is None else min(seen, r[0])
        first_new = None
        for r in records:
            if r[0] >= back["t"] and r[7] == m and r[5] and not r[9]:
                first_new = r[0] if first_new is None else min(first_new, r[0])
        out["down_member"] = m
        out["back_seen_s"] = round(seen - back["t"], 2) if seen is not None else None
        out["back_first_new_s"] = round(first_new - back["t"], 2) if first_new is not None else None
        out["errors_down_window"] = sum(1 for r in records if r[9] and r[1] >= kill["t"] and r[0] < kill["t"] + 5)
        return_ramp(S, W, usable, back["t"], m, seen, out)
        out["imb5_last10"] = mean_of(imb5[nW - 10:])
    elif plan["name"] == "skew":
        t = plan["events"][0]["t"]
        out["imb5_before"] = mean_of(imb5[int(t) - 5:int(t)])
        out["imb5_mean_after"] = mean_of(imb5[int(t) + 5:])
        out["imb5_max_after"] = max_of(imb5[int(t) + 5:])
        out["imb5_last10"] = mean_of(imb5[nW - 10:])
        out["inflight_imb_last10"] = mean_of([imbalance({m: w["inflight_" + m] for m in MEMBERS}, MEMBERS)
                                              for w in W[nW - 10:]])
        # where the surge's heavy clients ended up (their last member)
        where = {}
        heavy_member = {}
        for r in records:
            if r[2].startswith("S") and not r[9]:
                heavy_member[r[2]] = r[7]
        for uid, mm in heavy_member.items():
            where[mm] = where.get(mm, 0) + 1
        out["heavy_placement"] = where
    return out


def return_ramp(S, W, usable, t_back, m, seen, out):
    """The returning member m's share of new sessions against the slow-start
    ramp, from the 1-second windows W: out gets the ramp's anchor, the series
    of 5 s shares and the target's figures. seen: its first answer after the
    restart (the anchor for a proxy without the module's gauge)."""
    nW = len(W)
    # The module's own view of the ramp: its slow-start gauge, sampled once a
    # second. The ramp that counts is the one that runs to completion: a retry
    # may make the member electable again while it is still down (the gauge
    # starts), a request then fails on it and puts it in error (the gauge goes
    # back to 0), and its ramp starts again once it is usable.
    ss = S["slowstart"]
    gauge_start, first_start, restarts = None, None, 0
    for w in W:
        g = w.get("gauge_slowstart_" + m)
        if not isinstance(g, (int, float)) or isinstance(g, bool) or w["t"] < t_back or ss <= 0:
            continue
        if g <= 0.0:
            if gauge_start is not None:
                restarts += 1
            gauge_start = None
        elif g < 1.0:
            if gauge_start is None:
                gauge_start = w["t"] - g * ss
                if first_start is None:
                    first_start = gauge_start
        elif gauge_start is not None:
            break
    if gauge_start is not None:
        out["gauge_ramp_start_s"] = round(gauge_start - t_back, 2)
        out["gauge_ramp_restarts"] = restarts
        if restarts:
            out["gauge_first_ramp_start_s"] = round(first_start - t_back, 2)
    # The ramp starts where the module's gauge says it did (the member was
    # usable again from then on, even if a slowly ramping share gave it its
    # first new session only later); for a proxy without the gauge, at the
    # member's first answer after the restart.
    anchor = gauge_start if gauge_start is not None else seen
    ws = int(math.floor(anchor)) if anchor is not None else None
    if ws is not None:
        out["ramp_anchor_s"] = round(anchor - t_back, 2)
        # members usable once it is back (the ramp may start before the
        # restart, when a retry made it electable again while it was down)
        n_usable = len(usable[min(nW - 1, max(ws, int(math.floor(t_back))))])
        wshare = 1.0 / n_usable
        rows = []
        for w in range(ws, nW):
            lo = max(ws, w - 4)
            new_m = sum(W[j]["new_" + m] for j in range(lo, w + 1))
            new_all = sum(W[j]["new_" + x] for j in range(lo, w + 1) for x in MEMBERS)
            req_m = sum(W[j]["req_" + m] for j in range(lo, w + 1))
            req_all = sum(W[j]["req_" + x] for j in range(lo, w + 1) for x in MEMBERS)
            # its weight scaled by the elapsed fraction against the others'
            # full weights: f / (f + n - 1) (at least weight share x f)
            f = min(1.0, max(0.0, (w + 1 - anchor) / ss)) if ss > 0 else 1.0
            ramp = f / (f + n_usable - 1)
            rows.append(dict(t=w, new_n=new_all, new_share=(new_m / new_all) if new_all else None,
                             req_share=(req_m / req_all) if req_all else None, ramp=ramp))
        out["return_series"] = rows
        in_ramp = [x for x in rows if x["t"] + 1 - anchor <= ss]
        out["weight_share"] = round(wshare, 3)
        out["new_share_max_ramp"] = max_of([x["new_share"] for x in in_ramp])
        out["new_share_first5"] = rows[min(4, len(rows) - 1)]["new_share"] if rows else None
        out["new_share_max_after"] = max_of([x["new_share"] for x in rows])
        out["req_share_max"] = max_of([x["req_share"] for x in rows])
        # The ramp: every 5 s window during the ramp at most the ramp's value
        # (+0.05 for the noise of ~100 elections) and over the ramp at least
        # half of what the ramp promises.
        over = [x for x in in_ramp if x["new_share"] is not None and x["new_n"] >= 20
                and x["new_share"] > x["ramp"] + 0.05]
        exp_new = sum(((W[x["t"]]["new_" + m] + sum(W[x["t"]]["new_" + y] for y in MEMBERS if y != m))
                       * x["ramp"]) for x in in_ramp)
        got_new = sum(W[x["t"]]["new_" + m] for x in in_ramp)
        out["ramp_windows_over"] = len(over)
        out["ramp_new_expected"] = round(exp_new, 1)
        out["ramp_new_got"] = got_new


def mean_of(xs):
    xs = [x for x in xs if x is not None]
    return round(sum(xs) / len(xs), 3) if xs else None


def max_of(xs):
    xs = [x for x in xs if x is not None]
    return round(max(xs), 3) if xs else None


# ---------------------------------------------------------------------------
# Orchestration

def busy_others():
    """Other heavy suites running on the machine now (a note in the report)."""
    try:
        out = subprocess.run(["pgrep", "-af", "pytest|wrk |bench/run.sh|valgrind|sr-swarm|docker-compose|podman|dockerd"],
                             capture_output=True, text=True).stdout
    except OSError:
        return ""
    mine = str(os.getpid())
    return "; ".join(l for l in out.splitlines() if not l.startswith(mine + " ") and "pgrep" not in l)[:500]


def main():
    S = settings()
    for tool in ("apache2", "haproxy", "gnuplot"):
        if not shutil.which(tool):
            die("bench-balance: %s not found (run: make deps)" % tool)
    names = [c["name"] for c in CONTENDERS]
    sel = names if S["contenders"] == "all" else [x for x in S["contenders"].split(",") if x]
    bad = [x for x in sel if x not in names]
    if bad:
        die("bench-balance: unknown contender(s) %s (known: %s)" % (bad, ", ".join(names)))
    scen = [x for x in S["scenarios"].split(",") if x]
    if any(x not in ("scaleout", "down", "skew") for x in scen):
        die("bench-balance: BALANCE_SCENARIOS is a list of scaleout, down, skew")
    sel = [x for x in names if x in sel]
    for x in sel:
        p = ports_of(S, x)
        for port in p["members"] + [p["proxy"]]:
            if port_open(port):
                die("bench-balance: port %d already in use; set BALANCE_PORT_BASE" % port)
    run = tempfile.mkdtemp(prefix="sr-balance.")
    os.chmod(run, 0o755)
    started = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    module = os.path.join(run, "mod_sticky_route.so")
    mod_ok = os.path.isfile(S["module"])
    if mod_ok:
        shutil.copy(S["module"], module)     # a private copy: the tree's may be rebuilt meanwhile
        import hashlib
        mod_sha = hashlib.sha256(open(module, "rb").read()).hexdigest()[:16]
    else:
        mod_sha = "missing"
    # Which contenders this build can run: apache2 -t / haproxy -c on each config.
    avail = {}
    for x in sel:
        c = CONTENDER_BY_NAME[x]
        d = os.path.join(run, "check-" + x)
        os.makedirs(d)
        os.chmod(d, 0o755)
        if c.get("module") and not mod_ok:
            avail[x] = (False, "module not built (%s)" % S["module"])
            continue
        conf = render_contender(S, c, d, module, ["m3", "m4"])
        avail[x] = config_test(c, conf)
        log("contender %-17s %s" % (x, "available" if avail[x][0] else avail[x][1]))
    meta = dict(stamp=stamp, settings=S, contenders=[dict(name=c["name"], label=c["label"], features=c["features"],
                                                          available=avail[c["name"]][0], reason=avail[c["name"]][1])
                                                     for c in CONTENDERS if c["name"] in sel],
                scenarios={s: scenario_plan(S, s) for s in scen}, machine=machine_info(),
                git=dict(git_info(), module_sha256=mod_sha), busy_at_start=busy_others(), load_start=open("/proc/loadavg").read().split()[:3])
    results = []
    runnable = [x for x in sel if avail[x][0]]
    procs = []

    def stop_all(*_):
        for pr in procs:
            if pr.poll() is None:
                pr.terminate()
        raise SystemExit(130)
    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    status = 0
    # Every scenario is run BALANCE_REPEAT times, the repetitions outermost
    # (a drift of the machine spreads over all contenders alike); the order of
    # the contenders turns by one per repetition, so each runs beside
    # different partners.
    for rep in range(1, S["repeat"] + 1):
        k = (rep - 1) % max(1, len(runnable))
        order = runnable[k:] + runnable[:k]
        for sname in scen:
            plan = scenario_plan(S, sname)
            batches = [order[i:i + S["parallel"]] for i in range(0, len(order), S["parallel"])]
            for batch in batches:
                t0 = time.time() + 3.0 + 0.5 * len(batch)
                procs = []
                jobs = []
                for x in batch:
                    rd = os.path.join(run, "%s-%s-r%d" % (sname, x, rep))
                    os.makedirs(rd)
                    os.chmod(rd, 0o755)
                    job = dict(settings=S, scenario=sname, contender=x, rundir=rd, module=module, t0_wall=t0,
                               result=os.path.join(rd, "result.json"))
                    jf = os.path.join(rd, "job.json")
                    json.dump(job, open(jf, "w"))
                    jobs.append(job)
                    procs.append(subprocess.Popen([PY, os.path.abspath(__file__), "run-one", jf], stdin=subprocess.DEVNULL))
                log("repetition %d/%d, %s: %s (%.0f s)" % (rep, S["repeat"], sname, ", ".join(batch), plan["duration"]))
                la0 = open("/proc/loadavg").read().split()[0]
                others0 = busy_others()
                deadline = time.time() + plan["duration"] + 90
                for pr in procs:
                    try:
                        pr.wait(timeout=max(1, deadline - time.time()))
                    except subprocess.TimeoutExpired:
                        pr.terminate()
                        pr.wait(timeout=30)
                others1 = busy_others()
                for job in jobs:
                    try:
                        res = json.load(open(job["result"]))
                    except (OSError, ValueError):
                        res = dict(scenario=sname, contender=job["contender"], failed="no result")
                    res["rep"] = rep
                    res["load_before"] = la0
                    res["load_after"] = open("/proc/loadavg").read().split()[0]
                    res["others_before"] = others0
                    res["others_after"] = others1
                    res["parallel_with"] = [x for x in batch if x != job["contender"]]
                    results.append(res)
                    if res.get("failed"):
                        status = 1
                    log("  %-17s %s" % (job["contender"], short(res)))
    for x in sel:
        if not avail[x][0]:
            for sname in scen:
                results.append(dict(scenario=sname, contender=x, available=False, reason=avail[x][1], rep=1,
                                    label=CONTENDER_BY_NAME[x]["label"], features=CONTENDER_BY_NAME[x]["features"]))
    meta["elapsed_s"] = round(time.time() - started)
    meta["load_end"] = open("/proc/loadavg").read().split()[:3]
    # Raw data: per run, the 1-second windows (TSV) and the summary (JSON).
    out = S["out"]
    raw = os.path.join(out, "raw")
    if os.path.isdir(raw):
        shutil.rmtree(raw)
    os.makedirs(raw)
    for res in results:
        base = os.path.join(raw, "%s-%s-r%d" % (res["scenario"], res["contender"], res.get("rep", 1)))
        wins = res.pop("windows", None)
        if wins:
            cols = list(wins[0].keys())
            with open(base + ".tsv", "w") as f:
                f.write("\t".join(cols) + "\n")
                for w in wins:
                    f.write("\t".join(fmt(w[k]) for k in cols) + "\n")
        with open(base + ".json", "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
    with open(os.path.join(raw, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    r = subprocess.run([PY, os.path.join(HERE, "report.py"), raw, out])
    if r.returncode != 0:
        status = 1
    if S["keep"]:
        log("BALANCE_KEEP=1: run dir kept: %s" % run)
    else:
        shutil.rmtree(run, ignore_errors=True)
    log("done in %d s: %s/results.md" % (meta["elapsed_s"], out))
    return status


def fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return "%.4g" % v
    return str(v)


def short(res):
    if res.get("failed"):
        return "FAILED: %s" % res["failed"]
    s = "%d req, %d errors, moved %s, active moves %d" % (res.get("requests", 0), res.get("errors", 0),
                                                           res.get("moved"), res.get("moved_active", 0))
    if "settle_s" in res:
        s += ", settle %s s" % res["settle_s"]
    if "new_share_max_ramp" in res:
        s += ", back after %s s, new-session share max %s (ramp)" % (res.get("back_seen_s"), res["new_share_max_ramp"])
    if "imb5_mean_after" in res:
        s += ", imbalance after %s" % res["imb5_mean_after"]
    return s


def machine_info():
    def cmd(*a):
        try:
            return subprocess.run(a, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return ""
    cpu = ""
    for ln in open("/proc/cpuinfo"):
        if ln.startswith("model name"):
            cpu = ln.split(":", 1)[1].strip()
            break
    return dict(cpu=cpu, cores=os.cpu_count(), kernel=cmd("uname", "-sr"),
                apache2=cmd("apache2", "-v").splitlines()[0].split(":", 1)[-1].strip() if cmd("apache2", "-v") else "",
                haproxy=cmd("haproxy", "-v").splitlines()[0] if cmd("haproxy", "-v") else "",
                python=sys.version.split()[0])


def git_info():
    def g(*a):
        try:
            return subprocess.run(["git", "-C", REPO] + list(a), capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return ""
    return dict(commit=g("rev-parse", "--short", "HEAD"),
                subject=g("log", "-1", "--format=%s")[:120],
                c_commit=g("log", "-1", "--format=%h", "--", "*.c", "*.h"),
                c_subject=g("log", "-1", "--format=%s", "--", "*.c", "*.h")[:100],
                dirty_c=len([l for l in g("status", "--porcelain", "--", "*.c", "*.h").splitlines() if l]))


def reanalyse(raw, note):
    """Recomputes the return ramp (return_ramp) of every run of the down
    scenario in RAWDIR whose module gauge shows a slow-start ramp, from its
    stored 1-second windows (the TSV), after a
    change to that analysis, without running the load again; meta.json
    records it. The report is then made again (report.py RAWDIR OUTDIR)."""
    meta = json.load(open(os.path.join(raw, "meta.json")))
    S = meta["settings"]
    plan = scenario_plan(S, "down")
    back = plan["events"][1]
    m = plan["events"][0]["members"][0]
    nW = int(math.ceil(plan["duration"]))
    usable = [usable_at(plan, w + 0.5) for w in range(nW)]

    def value(x):
        for kind in (int, float):
            try:
                return kind(x)
            except ValueError:
                pass
        return x
    done = 0
    for fn in sorted(os.listdir(raw)):
        if not (fn.startswith("down-") and fn.endswith(".json")):
            continue
        res = json.load(open(os.path.join(raw, fn)))
        tsv = os.path.join(raw, fn[:-5] + ".tsv")
        if not os.path.isfile(tsv) or res.get("failed"):
            continue
        with open(tsv) as fh:
            cols = fh.readline().rstrip("\n").split("\t")
            W = [{k: value(v) for k, v in zip(cols, ln.rstrip("\n").split("\t"))} for ln in fh]
        g = [w.get("gauge_slowstart_" + m) for w in W if w["t"] >= back["t"]]
        if not any(isinstance(x, (int, float)) and 0.0 < x < 1.0 for x in g):
            continue                    # no ramp in the gauge: the anchor is its first answer, as before
        for k in ("gauge_ramp_start_s", "gauge_ramp_restarts", "gauge_first_ramp_start_s", "ramp_anchor_s",
                  "return_series", "weight_share", "new_share_max_ramp", "new_share_first5", "new_share_max_after",
                  "req_share_max", "ramp_windows_over", "ramp_new_expected", "ramp_new_got"):
            res.pop(k, None)
        seen = back["t"] + res["back_seen_s"] if res.get("back_seen_s") is not None else None
        return_ramp(S, W, usable, back["t"], m, seen, res)
        with open(os.path.join(raw, fn), "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
        done += 1
    meta.setdefault("reanalysed", []).append(dict(stamp=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
                                                  runs=done, note=note))
    with open(os.path.join(raw, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    log("reanalysed %d runs of the down scenario in %s" % (done, raw))
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "run-one":
        sys.exit(run_job(sys.argv[2]))
    if len(sys.argv) >= 4 and sys.argv[1] == "reanalyse":
        sys.exit(reanalyse(sys.argv[2], sys.argv[3]))
    if len(sys.argv) >= 2 and sys.argv[1] == "main":
        sys.exit(main())
    sys.exit(__doc__)
