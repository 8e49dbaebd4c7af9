#!/usr/bin/python3
"""make test-threads: the real Debian apache2 with the built module, in one
process (`apache2 -X`, event MPM, several worker threads), under valgrind's
helgrind (or drd: --tool drd), with traffic that runs the module's threaded
paths at the same time (issue 18):

- lbmethod=sticky and lbmethod=roundrobin balancers, each with a member
  that closes every connection without answering: mod_proxy answers 502 and
  runs its request_status hook (sr_request_status, the retry) in one
  thread while other threads are inside the finders of the same balancer;
- a StickyRouteDiscover balancer (interval=1) whose name's answer changes
  every ~1.5 s (a hosts file of the test bind-mounted over /etc/hosts in a
  private mount namespace, as tests/integration/test_discovery.py does):
  the singleton watchdog thread adds members (ap_proxy_define_worker,
  ap_proxy_sync_balancer), disables and re-enables them while request
  threads run the finder over b->workers, and the per-child watchdog runs
  its step.

Verdict (classify): the run fails when a report has a frame of the module
(mod_sticky_route*.c, sr_*.c, the .so) in every one of its access stacks
- two of the module's own accesses race, or a lock report in the module -
when the tool or apache2 did not finish properly, or when the traffic did
not exercise the paths (too few retries, discovery changes or answered
requests). Reports with the module on one side only are counted and
listed by frame; reports wholly inside httpd/APR/glibc that are known
benign are suppressed by tests/threads/helgrind.supp (each one justified
there). APR's atomics are made visible to helgrind by hg_apr_atomic.c
(LD_PRELOAD). tests/threads/README.md has the evidence. --tool drd is
untested.

Run it under the machine's load lock: flock /tmp/sr-load.lock make
test-threads. Exit 0: pass.
"""

import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
from srtest.apache import APACHE2, MODULES_DIR, user_lines  # noqa: E402
from srtest.backend import PyBackend  # noqa: E402
from srtest.procs import PortPool, port_quiet  # noqa: E402
from srtest.wait import wait_until  # noqa: E402

PORTS = PortPool(23000, 23499)       # this suite's port range, nothing else
DISC_NAME = "threads-disco.test"
DISC_ADDRS = ["127.0.0.%d" % (40 + i) for i in range(1, 9)]   # 8 members max
# The answers of DISC_NAME, one per step (indexes into DISC_ADDRS): new
# addresses appear (new members: ap_proxy_define_worker into b->workers),
# others leave (disabled) and come back (enabled).
DISC_STEPS = [(0, 1), (0, 1, 2), (1, 2, 3), (1, 2, 3, 4), (2, 4, 5), (0, 2, 5, 6),
              (0, 6, 7), (0, 1, 2, 3, 4, 5, 6, 7), (3, 4), (0, 1, 2, 3, 4, 5, 6, 7)]
HOSTS_SIZE = 1024                    # the hosts file is rewritten in place at this size

# What one run must have exercised (else the verdict would mean nothing).
MIN_RETRIES = 20           # sr_request_status retries (both balancers)
MIN_DISC_EVENTS = 6        # discovery: members added, disabled or enabled
MIN_OK = 150               # answered requests

OURS_RE = re.compile(r"\((?:mod_sticky_route\w*|sr_\w+)\.[ch]:\d+\)|mod_sticky_route\.so")


def log(msg):
    print("[test-threads %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Hosts:
    """A hosts file rewritten with one pwrite of a fixed size (padded with
    a comment), same inode: a reader never sees it half-written."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.write_bytes(b"#" * (HOSTS_SIZE - 1) + b"\n")
        self.set([])

    def set(self, addrs):
        text = "127.0.0.1 localhost\n" + "".join("%s %s\n" % (a, DISC_NAME) for a in addrs)
        pad = HOSTS_SIZE - len(text) - 2
        data = (text + "#" + "x" * pad + "\n").encode()
        assert len(data) == HOSTS_SIZE
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)


def ok_response(name):
    body = ("served by %s\n" % name).encode()
    return ("HTTP/1.1 200 OK\r\nX-Served-By: %s\r\nContent-Length: %d\r\n"
            "Connection: keep-alive\r\n\r\n" % (name, len(body))).encode() + body


CONF = """# apache2 -X under a thread checker (tests/threads/run.py)
ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{root}/httpd.pid"
ErrorLog "{root}/error.log"
LogLevel warn sticky_route:info
Mutex file:{root}/mutex default
DefaultRuntimeDir "{root}/run"
{user_lines}
LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule slotmem_shm_module {mods}/mod_slotmem_shm.so
LoadModule proxy_module {mods}/mod_proxy.so
LoadModule proxy_http_module {mods}/mod_proxy_http.so
LoadModule proxy_balancer_module {mods}/mod_proxy_balancer.so
LoadModule sticky_route_module {module}
StartServers 1
ServerLimit 1
ThreadsPerChild {threads}
ThreadLimit {threads}
MaxRequestWorkers {threads}
MinSpareThreads 1
MaxSpareThreads {threads}
KeepAlive On
KeepAliveTimeout 30
MaxKeepAliveRequests 0
Timeout 30
ProxyTimeout 30
DocumentRoot "{root}/htdocs"

# sticky: two members that answer, one that closes without answering
<Proxy "balancer://sticky">
    BalancerMember "http://127.0.0.1:{good1}" route=g1 ttl=10
    BalancerMember "http://127.0.0.1:{good2}" route=g2 ttl=10
    BalancerMember "http://127.0.0.1:{silent}" route=x1 retry=0
    ProxySet lbmethod=sticky
    StickyRouteCookie ROUTEID Path=/s/
</Proxy>
# roundrobin: the same members
<Proxy "balancer://rr">
    BalancerMember "http://127.0.0.1:{good1}" route=g1 ttl=10
    BalancerMember "http://127.0.0.1:{good2}" route=g2 ttl=10
    BalancerMember "http://127.0.0.1:{silent}" route=x1 retry=0
    ProxySet lbmethod=roundrobin
</Proxy>
# discovery: the members are the addresses of {disc_name}
<Proxy "balancer://disc">
    StickyRouteDiscover http://{disc_name}:{disc_port} interval=1 max=8 hold=2
    ProxySet lbmethod=sticky
    StickyRouteCookie DISCID Path=/d/
</Proxy>
ProxyPass "/s/" "balancer://sticky/"
ProxyPass "/r/" "balancer://rr/"
ProxyPass "/d/" "balancer://disc/"
"""


def client(port, paths, stop, deadline, budget, stats, lock):
    """One client thread: keep-alive requests over the paths in turn until
    the budget (shared) is spent, stop is set or the deadline passes. A
    sticky client keeps the cookie it was given, half of the time."""
    conn = None
    cookies = {}
    i = 0
    while not stop.is_set() and time.monotonic() < deadline:
        with lock:
            if budget[0] <= 0:
                return
            budget[0] -= 1
        path = paths[i % len(paths)]
        i += 1
        headers = {}
        if path in cookies and i % 3 == 0:
            headers["Cookie"] = cookies[path]
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            r.read()
            sc = r.getheader("Set-Cookie")
            if sc:
                cookies[path] = sc.split(";", 1)[0]
            with lock:
                stats[r.status] = stats.get(r.status, 0) + 1
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            with lock:
                stats["error"] = stats.get("error", 0) + 1
                stats.setdefault("errors", []).append("%s %r" % (path, e))
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


def split_reports(text):
    """The tool's log as (kind, block) pairs: blocks are separated by its
    '----' lines; kind 'announce' for thread announcements, 'error' for
    an error report, 'other' for the rest (the preamble, the summary)."""
    lines = [re.sub(r"^==\d+== ?", "", ln) for ln in text.splitlines()]
    blocks, cur = [], []
    for ln in lines:
        if ln.startswith("----"):
            if cur:
                blocks.append(cur)
            cur = [] if not ln.startswith("---Thread-Announcement") else ["Thread-Announcement"]
            continue
        cur.append(ln)
    if cur:
        blocks.append(cur)
    out = []
    for b in blocks:
        body = "\n".join(b).strip("\n")
        if not body:
            continue
        if b[0] == "Thread-Announcement":
            kind = "announce"
        elif re.search(r"^(Possible data race|Thread #\d+|Lock at|Conflicting|"
                       r"Thread \d+:|Mutex|Destroying|Probably a race|"
                       r"Acquired at|The object at)", body, re.M) and \
                re.search(r"^\s+(at|by) 0x", body, re.M):
            kind = "error"
        else:
            kind = "other"
        out.append((kind, body))
    return out


def stacks(body):
    """The stacks of one report: the access, then (for a race) the
    conflicting earlier access ("This conflicts with a previous ..."); the
    address description (" Address ... alloc'd" and its allocation stack)
    left out: who allocated a block says nothing of who races on it."""
    # helgrind first describes the locks the report names ("Lock at 0x..
    # was first observed", with the stack that made each): not accesses
    m = re.search(r"^(?! ?Lock at 0x)(?!\s+(?:at|by) 0x)(?! ?Address 0x)(?!$)\S.*$",
                  body, re.M)
    body = body[m.start():] if m else body
    out = []
    for part in body.split("This conflicts with"):
        part = re.split(r"^ ?Address 0x", part, flags=re.M)[0]
        # below ap_internal_redirect, httpd processes the redirected
        # request (sr_request_status's retry): frames under it are the
        # context of that request, not an access of the module
        cut = re.search(r"^\s+(?:at|by) 0x[0-9A-Fa-f]+: ap_internal_redirect ", part, re.M)
        out.append(part[:cut.start()] if cut else part)
    return out


# "Locks held: 2, at addresses 0x4FF6CE0 0x50B1B38" (one per access shown)
LOCKS_RE = re.compile(r"Locks held: \d+, at address(?:es)? ((?:0x[0-9A-Fa-f]+ ?)+)")


def classify(reports):
    """Sorts error reports (split_reports' 'error' blocks):

    ours       the module is in every stack: a race between two of its own
               accesses (its per-process state, b->workers, a member's
               shared status), a lock-order or lock-misuse report with its
               frame. These fail the run.
    one_sided  a race with the module in one stack only. Seen here: memory
               of a request pool that the event MPM recycles to another
               thread through APR's lock-free pool list (helgrind sees no
               happens-before there; the other stack is httpd's, e.g.
               ap_send_error_response of an earlier request), mod_proxy's
               lazy ap_proxy_initialize_worker in a request thread (it
               sets the INITIALIZED bit of a member's shared status word
               under the worker's mutex; the finders read that word under
               the balancer's, as mod_proxy_balancer's own do), and
               mod_watchdog starting its thread in child_init before
               mod_proxy_balancer's child_init made the balancer mutex.
               Listed, not failing: the module's side is read under the
               documented lock, the other side is httpd's.
    unshown    the module in every stack, but both accesses shown hold the
               same mutex (a balancer's thread mutex, say): those two cannot
               race each other. Helgrind finds the race on the address's
               happens-before state and then shows, from its conflict
               cache, the latest conflicting access it remembers, which
               need not be the unordered one: here the partner is another
               thread's unlocked access, such as mod_proxy's
               ap_proxy_check_connection reading a member's status word
               (one-sided, above). Listed, not failing.
    outside    no module frame anywhere.
    """
    out = {"ours": [], "one_sided": [], "outside": [], "unshown": [],
           "one_sided_first": {}}
    for body in reports:
        parts = stacks(body)
        hits = [bool(OURS_RE.search(p)) for p in parts]
        held = [set(m.split()) for m in LOCKS_RE.findall(body)]
        if not any(hits):
            out["outside"].append(body)
        elif all(hits) and len(held) == 2 and held[0] & held[1]:
            out["unshown"].append(body)
        elif all(hits):
            out["ours"].append(body)
        else:
            out["one_sided"].append(body)
            frame = next((ln.strip() for ln in body.splitlines() if OURS_RE.search(ln)), "")
            frame = re.sub(r"0x[0-9A-Fa-f]+: ", "", frame)
            out["one_sided_first"][frame] = out["one_sided_first"].get(frame, 0) + 1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tool", default="helgrind", choices=("helgrind", "drd"))
    ap.add_argument("--module", default=str(REPO / ".libs" / "mod_sticky_route.so"))
    ap.add_argument("--requests", type=int, default=3000, help="requests in all")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--threads", type=int, default=8, help="ThreadsPerChild")
    ap.add_argument("--seconds", type=int, default=150, help="bound of the load phase")
    ap.add_argument("--keep", action="store_true", help="keep the run's directory")
    args = ap.parse_args()

    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="sr-threads-"))
    for sub in ("htdocs", "run", "mutex"):
        (root / sub).mkdir()
        os.chmod(root / sub, 0o777)
    os.chmod(root, 0o755)
    supp = HERE / ("%s.supp" % args.tool)
    tool_log = root / ("%s.log" % args.tool)
    servers = []
    proc = None
    failures = []
    try:
        good1 = PyBackend("g1", respond=lambda c, n, h: ok_response("g1"), port=PORTS.take())
        good2 = PyBackend("g2", respond=lambda c, n, h: ok_response("g2"), port=PORTS.take())
        silent = PyBackend("x1", respond=lambda c, n, h: None, port=PORTS.take())
        servers += [good1, good2, silent]
        disc_port = PORTS.take()
        for i, a in enumerate(DISC_ADDRS):
            servers.append(PyBackend("d%d" % i, respond=lambda c, n, h, nm="d%d" % i:
                                     ok_response(nm), port=disc_port, host=a))
        hosts = Hosts(root / "hosts")
        hosts.set([DISC_ADDRS[i] for i in DISC_STEPS[0]])
        port = PORTS.take()
        conf = root / "httpd.conf"
        conf.write_text(CONF.format(root=root, port=port, user_lines=user_lines(),
                                    mods=MODULES_DIR, module=args.module,
                                    threads=args.threads, good1=good1.port,
                                    good2=good2.port, silent=silent.port,
                                    disc_name=DISC_NAME, disc_port=disc_port))
        tool = ["valgrind", "--tool=%s" % args.tool, "--log-file=%s" % tool_log,
                "--num-callers=40", "--error-limit=no"]
        if args.tool == "helgrind":
            tool += ["--history-level=full", "--conflict-cache-size=5000000"]
        if supp.exists():
            tool.append("--suppressions=%s" % supp)
        # APR's atomics as synchronisations the tool knows (hg_apr_atomic.c
        # says why: the event MPM's lock-free pool recycling)
        shim = root / "hg_apr_atomic.so"
        subprocess.run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-g",
                        "-shared", "-fPIC", "-o", str(shim), str(HERE / "hg_apr_atomic.c")],
                       check=True)
        env = dict(os.environ, LD_PRELOAD=str(shim))
        # a private mount namespace with the test's hosts file (the machine's
        # /etc/hosts is never touched)
        wrapper = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   'mount --bind "$1" /etc/hosts && shift && exec "$@"', "sh", str(root / "hosts")]
        cmd = wrapper + tool + [APACHE2, "-X", "-f", str(conf)]
        log("starting: LD_PRELOAD=%s %s" % (shim, " ".join(tool + [APACHE2, "-X", "-f",
                                                                   str(conf)])))
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env,
                                stdout=open(root / "stdout", "wb"), stderr=subprocess.STDOUT)

        def up():
            if proc.poll() is not None:
                raise RuntimeError("apache2 under %s exited (rc %d) at start:\n%s\n%s" % (
                    args.tool, proc.returncode, (root / "stdout").read_text(errors="replace"),
                    (root / "error.log").read_text(errors="replace")[-3000:]
                    if (root / "error.log").exists() else ""))
            return not port_quiet(port)
        wait_until(up, 90, 0.5, "apache2 -X under %s listening on %d" % (args.tool, port))
        log("listening after %.0f s" % (time.monotonic() - started))

        # the load: clients over the three balancers, the answer of the
        # discovered name changing meanwhile
        stop = threading.Event()
        deadline = time.monotonic() + args.seconds
        budget = [args.requests]
        stats, lock = {}, threading.Lock()
        paths = [["/s/", "/r/", "/d/"], ["/r/", "/d/", "/s/"], ["/d/", "/s/", "/r/"]]
        clients = [threading.Thread(target=client, daemon=True,
                                    args=(port, paths[k % 3], stop, deadline, budget, stats,
                                          lock)) for k in range(args.clients)]
        for t in clients:
            t.start()
        step = 1
        while any(t.is_alive() for t in clients) and time.monotonic() < deadline:
            time.sleep(1.5)
            hosts.set([DISC_ADDRS[i] for i in DISC_STEPS[step % len(DISC_STEPS)]])
            step += 1
        stop.set()
        for t in clients:
            t.join(70)
        log("load done after %.0f s: %d answer changes, responses %s" % (
            time.monotonic() - started, step - 1,
            {k: v for k, v in stats.items() if k != "errors"}))
        for e in stats.get("errors", [])[:5]:
            log("  client error: %s" % e)

        # stop: SIGTERM to apache2 -X (valgrind runs in its process), then
        # the tool writes its summary
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            failures.append("apache2 -X did not stop within 90 s of SIGTERM")
            proc.kill()
            proc.wait(30)
        proc = None
        log("stopped after %.0f s" % (time.monotonic() - started))

        # what the run exercised
        elog = (root / "error.log").read_text(errors="replace")
        retries = len(re.findall(r"retrying the GET request", elog))
        retries_s = len(re.findall(r"sticky: no response from .*retrying", elog))
        retries_r = len(re.findall(r"rr: no response from .*retrying", elog))
        disc = len(re.findall(r"StickyRouteDiscover \S+ in balancer://disc: "
                              r"(?:new member|\S+ is gone|\S+ (?:is back|has settled); member enabled)",
                              elog))
        ok = stats.get(200, 0)
        log("exercised: %d retries (sticky %d, roundrobin %d), %d discovery changes, "
            "%d answered 200" % (retries, retries_s, retries_r, disc, ok))
        if retries < MIN_RETRIES or not retries_s or not retries_r:
            failures.append("too few retries (%d: sticky %d, roundrobin %d; need %d, both)"
                            % (retries, retries_s, retries_r, MIN_RETRIES))
        if disc < MIN_DISC_EVENTS:
            failures.append("too few discovery changes applied (%d, need %d)"
                            % (disc, MIN_DISC_EVENTS))
        if ok < MIN_OK:
            failures.append("too few answered requests (%d, need %d)" % (ok, MIN_OK))
        for m in re.finditer(r"^.*\[(?:emerg|alert|crit)\].*$", elog, re.M):
            failures.append("error log: %s" % m.group(0))

        # the tool's verdict
        text = tool_log.read_text(errors="replace")
        if "ERROR SUMMARY" not in text:
            failures.append("%s wrote no summary (apache2 did not exit normally)" % args.tool)
        m = re.search(r"ERROR SUMMARY: (\d+) errors from (\d+) contexts \(suppressed: (\d+) "
                      r"from (\d+)\)", text)
        if m:
            log("%s: %s errors from %s contexts (suppressed: %s from %s)" % ((args.tool,)
                                                                             + m.groups()))
        verdict = classify([body for kind, body in split_reports(text) if kind == "error"])
        log("%s reports: %d between two of the module's accesses, %d with a module frame "
            "on one side only, %d without the module" % (
                args.tool, len(verdict["ours"]), len(verdict["one_sided"]),
                len(verdict["outside"])))
        if verdict["unshown"]:
            log("  both shown accesses under one mutex (partner not shown, not failing): %d"
                % len(verdict["unshown"]))
        for title, n in sorted(verdict["one_sided_first"].items(), key=lambda kv: -kv[1])[:10]:
            log("  one-sided (not failing): %dx %s" % (n, title))
        for body in verdict["ours"]:
            print("=" * 72 + "\n" + body + "\n", flush=True)
        if verdict["ours"]:
            failures.append("%d %s report(s) between two accesses of mod_sticky_route "
                            "(printed above)" % (len(verdict["ours"]), args.tool))
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(30)
        for s in servers:
            s.stop(2)
        if args.keep or failures:
            log("run directory kept: %s" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    log("total %.0f s" % (time.monotonic() - started))
    if failures:
        for f in failures:
            log("FAIL: %s" % f)
        return 1
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
