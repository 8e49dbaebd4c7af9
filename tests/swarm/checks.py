#!/usr/bin/python3
"""Judges the Swarm test (tests/swarm/run.sh), on the host.

  checks.py probe PROBE_JSON                    every replica serves page, assets, API
  checks.py cross CROSS_JSON LOGS TASKS_JSON    cookies of one replica are `hit` on the
                                                other (headers, and the access log of
                                                `docker logs` of each proxy task)
  checks.py load LOAD_JSON EVENTS TASKS_JSON[,TASKS_JSON...] DNS_LOG INTERVAL REPORT [PROFILE]
                                                the load run over every phase of PROFILE
                                                (PROFILES: main, the default; tls)
  checks.py tls TLS_JSON                        TLS=files: ALPN h2 on every replica, the
                                                plain port redirects to HTTPS (not the
                                                ACME challenge path)

Exit 1 with the list of failed expectations; prints what it saw.

How a request's fate is read (the stack does not expose X-Sticky-Status to
clients): from the response headers. A request that carried a cookie and got
no Set-Cookie was a `hit` on the member that served it (a `new`, `failover`,
`unknown`, `forged` or `expired` decision always re-issues the cookie; the
module's access log, read in the `cross` check, says `hit` for them). A
response with a Set-Cookie to a request that carried one is a move.

Load rules (tests/swarm/client.py records every request; the load starts as
`docker stack deploy` returns):
  * zero failed requests in every phase; retries on a reused connection the
    server closed first (RFC 9112 9.3.1, once: tests/httpretry.py) and connect
    fallbacks to the next replica address (nothing sent) are counted and
    reported, not failures; so are the attempts of the fresh deploy before
    any proxy task was in DNS (nothing sent) - from the first answer on, a
    name without an address is a failure;
  * stickiness: within a client session every response without Set-Cookie
    comes from the session's member;
  * moves only away from a static task that was removed (scale-down, rolling
    update), at most once per session and removed task: so none in the
    steady, scale-up and proxy-update phases ("clients keep their member and
    cookie"). Reported apart, not failed: a session begun on a brand-new task
    through one replica that hops to the other replica before that one
    discovered the task (within two intervals of the task's address
    appearing) gets a new cookie there - the replicas discover independently;
  * every static task that appears after the deploy is given new sessions,
    through every proxy replica, within two discovery intervals of its address
    appearing in DNS (seen from a proxy task), + the 2 s a reused slot settles
    before it is enabled, + 1 s for the sampling of both;
  * no request waits on a dead address more than one connect timeout: every
    request of the changing phases answers within CONNECT_TIMEOUT + 2 s; in
    the deploy phase a request may wait for the pool's first member
    (DISCOVER_WAIT, 10 s) on top.
"""
import collections
import json
import re
import sys

CONNECT_TIMEOUT = 3.0
LATENCY_LIMIT = CONNECT_TIMEOUT + 2.0
DISCOVER_WAIT = 10.0        # the stack's default (StickyRouteWait)
DEPLOY_LATENCY_LIMIT = DISCOVER_WAIT + LATENCY_LIMIT
SETTLE = 2.0                # a reused slot is enabled 2 s after it is rewritten
SAMPLING_SLACK = 1.0
UPDATES = ["update-%d" % i for i in range(1, 6)]
PHASES = ["steady"] + UPDATES + ["scale-up", "scale-down", "scale-up-again", "proxy-update"]
CHANGING = UPDATES + ["scale-up", "scale-down", "scale-up-again", "proxy-update"]
NEW_TASKS_MIN = 9           # 5 updates, 2 + 2 from the two scale-ups
# The phases of a load run, by the events run.sh writes: its first phase
# (from the load's start), the phase from which new static tasks are
# counted, the changing ones (the tighter latency limit), the end of the
# window in which the proxy replicas' addresses are those of the static
# changes (every new task must get sessions through each), the groups of
# phases that must each have moved a client, the new static tasks expected.
PROFILES = {
    # the main scenario (plain HTTP): the fresh deploy, then ten changes
    "main": {"first": "deploy", "steady": "steady", "phases": PHASES, "changing": CHANGING,
             "window_end": "proxy-update", "moves_in": [UPDATES, ["scale-down"]],
             "new_tasks_min": NEW_TASKS_MIN,
             "new_tasks_why": "5 from the updates, 2 from each scale-up"},
    # the TLS phase (TLS=files, HTTPS): the load starts on the converged
    # stack; one rolling update of a static service
    "tls": {"first": "tls-start", "steady": "tls-steady", "phases": ["tls-steady", "tls-update"],
            "changing": ["tls-update"], "window_end": None, "moves_in": [["tls-update"]],
            "new_tasks_min": 1, "new_tasks_why": "the update's"},
}
OK_STATUS = (200,)

failures = []


def expect(cond, what):
    if not cond:
        failures.append(what)
    return bool(cond)


def say(msg):
    print("  " + msg, flush=True)


def load_json(path):
    with open(path) as f:
        return json.load(f)


def task_key(served):
    """static1.2.TASKID -> TASKID (the served name ends with the task id)."""
    return served.rsplit(".", 1)[-1] if served else None


# ---- probe --------------------------------------------------------------------------

def cmd_probe(path):
    res = load_json(path)
    reps = res["replicas"]
    expect(len(reps) == 2, f"probe: {len(reps)} proxy replicas answer, expected 2: {res['proxies']}")
    for addr, r in reps.items():
        served = [p["served"] for p in r["pages"]]
        expect(all(p["status"] == 200 and p["cookie"] for p in r["pages"]),
               f"probe {addr}: pages {[(p['status'], p['cookie']) for p in r['pages']]}")
        expect(len({s.split('.')[0] for s in served if s}) == 2,
               f"probe {addr}: {len(served)} new clients served by {served}: expected both "
               "static services")
        for p in r["pages"]:
            for st, s, n_set in p["assets"]:
                expect(st == 200 and s == p["served"] and n_set == 0,
                       f"probe {addr}: asset of a {p['served']} client: {st} from {s}, {n_set} Set-Cookie")
        api = [s for _, s in r["api"]]
        expect(all(st == 200 for st, _ in r["api"]), f"probe {addr}: API statuses {r['api']}")
        # The load runs meanwhile (from the deploy on) and takes turns of the
        # replica's round robin between the probe's requests: both tasks, not
        # strict alternation (tests/integration and make test-compose check that).
        expect(len(set(api)) == 2, f"probe {addr}: API not served by both dynamic tasks: {api}")
        expect(all(v == 403 for v in r["admin"].values()),
               f"probe {addr}: admin pages from the network: {r['admin']} (expected 403)")
        say(f"replica {addr}: new clients on {sorted(set(served))}; API {api[:4]}...; admin {r['admin']}")


# ---- TLS=files: h2, the plain port ----------------------------------------------------

def cmd_tls(path):
    res = load_json(path)
    reps = res["replicas"]
    port = res["public_port"]
    expect(len(reps) == 2, f"tls: {len(reps)} proxy replicas answer, expected 2: {res['proxies']}")
    for addr, r in reps.items():
        expect(r["alpn"] == "h2", f"tls {addr}: ALPN {r['alpn']!r} offered h2 and http/1.1, expected h2")
        expect(r["tls_version"] in ("TLSv1.2", "TLSv1.3"), f"tls {addr}: {r['tls_version']}")
        for p, (status, location, n_set) in r["plain"].items():
            if p.startswith("/.well-known/acme-challenge/"):
                # the config leaves ACME http-01 challenges on the plain port
                expect(status != 301 and status < 500 and not location,
                       f"tls {addr}: plain {p}: {status} {location}: expected no redirect")
            else:
                want = f"https://localhost:{port}{p}"
                expect(status == 301 and location == want and n_set == 0,
                       f"tls {addr}: plain {p}: {status} {location} ({n_set} Set-Cookie), "
                       f"expected 301 to {want} without a cookie")
        say(f"replica {addr}: {r['tls_version']}, ALPN {r['alpn']}; plain port: " +
            ", ".join(f"{p} {st}" for p, (st, _, _) in r["plain"].items()))


# ---- cross-replica cookies ------------------------------------------------------------

LOG_RE = re.compile(r'^(?P<task>\S+)@\S+\s*\|\s*\S+ \[[^]]*\] "GET (?P<path>\S+) HTTP/1\.1" '
                    r'(?P<status>\d+) \S+ \d+ route=(?P<route>\S+) decision=(?P<decision>\S+)')


def cmd_cross(path, logs_path, tasks_path):
    res = load_json(path)
    tasks = load_json(tasks_path)
    # (the running tasks: a replaced task's address may have been given again)
    addr_task = {t["frontend_ip"]: t["id"] for t in tasks["proxy"]
                 if t.get("frontend_ip") and t.get("desired") == "running"}
    expect("error" not in res, f"cross: {res.get('error')}")
    ok = 0
    for c in res["clients"]:
        st1, s1, n1 = c["first"]
        st2, s2, n2 = c["second"]
        st3, s3, n3 = c["third"]
        good = expect(st1 == 200 and n1 == 1 and c["cookie"],
                      f"cross #{c['i']}: first request via {c['a']}: {c['first']}")
        good &= expect(st2 == 200 and s2 == s1 and n2 == 0,
                       f"cross #{c['i']}: cookie from {c['a']} sent to {c['b']}: {st2} from {s2} "
                       f"({n2} Set-Cookie), expected 200 from {s1} without Set-Cookie")
        good &= expect(st3 == 200 and s3 == s1 and n3 == 0,
                       f"cross #{c['i']}: back on {c['a']}: {c['third']}")
        ok += bool(good)
    # The access log: the decision of every marked request and which task logged it.
    seen = {}
    with open(logs_path, errors="replace") as f:
        for line in f:
            m = LOG_RE.match(line.strip())
            if not m:
                continue
            mk = re.search(r"sr-mark=([A-Za-z0-9-]+)", m.group("path"))
            if mk:
                seen[mk.group(1)] = (m.group("task"), m.group("decision"), m.group("status"))
    marks = {}
    for c in res["clients"]:
        mark_base = None
        for k in seen:
            if k.endswith(f"-{c['i']}-b"):
                mark_base = k[:-2]
        if mark_base is None:
            expect(False, f"cross #{c['i']}: its requests are not in the proxies' access log")
            continue
        for step, addr, want in (("a", c["a"], "new"), ("b", c["b"], "hit"), ("c", c["a"], "hit")):
            task, decision, status = seen.get(f"{mark_base}-{step}", ("-", "-", "-"))
            marks.setdefault(decision, 0)
            marks[decision] += 1
            expect(decision == want, f"cross #{c['i']} request {step}: decision={decision}, expected {want}")
            tid = addr_task.get(addr)
            expect(tid is not None and tid in task,
                   f"cross #{c['i']} request {step}: logged by {task}, expected the task of {addr} ({tid})")
    say(f"{ok}/{len(res['clients'])} clients: cookie from one replica served on the other without "
        f"a new cookie; access log decisions of their requests: {marks}")


# ---- load -------------------------------------------------------------------------------

def phase_of(t, starts):
    name = None
    for n, t0 in starts:
        if t >= t0:
            name = n
    return name


def pct(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


def cmd_load(load_path, events_path, tasks_path, dns_path, interval, report_path, profile="main"):
    interval = float(interval)
    prof = PROFILES[profile]
    first, steady, phases, changing = prof["first"], prof["steady"], prof["phases"], prof["changing"]
    load = load_json(load_path)
    recs = load["records"]
    # Task snapshots, oldest first (comma-separated files): Swarm forgets the
    # tasks of the slots a scale-down removes, so each phase saved its own.
    snaps = [load_json(p) for p in tasks_path.split(",")]
    merged = {}
    for snap in snaps:
        for t in snap["static"]:
            merged[t["id"]] = dict(t)
    final = {t["id"] for t in snaps[-1]["static"]}
    for tid, t in merged.items():
        if tid not in final:
            t["desired"] = "removed"
    tasks = {"static": list(merged.values())}
    events = {}
    with open(events_path) as f:
        for line in f:
            e = json.loads(line)
            events.setdefault(e["event"], e["t"])
    starts = [(first, min(load["start"], events.get(first, load["start"])))] + \
        [(p, events[p]) for p in phases if p in events]
    expect(not load["crashes"], f"load: client crashes: {load['crashes']}")
    expect(all(p in events for p in phases), f"load: phases missing: {[p for p in phases if p not in events]}")

    static_tasks = {t["id"]: t for t in tasks["static"]}
    removed = {tid for tid, t in static_tasks.items() if t["desired"] != "running"}
    # DNS samples of a proxy task's resolver: (t, {addresses}).
    samples = []
    with open(dns_path) as f:
        for line in f:
            parts = line.split()
            try:
                samples.append((float(parts[0]), set(parts[1:])))
            except (ValueError, IndexError):
                continue
    # When each task's address appeared in DNS (the first sample after the
    # task was created that has it: an address can be given to a later task).
    first_dns = {}      # task id -> t
    for tid, t in static_tasks.items():
        ip = t.get("backend_ip")
        for ts, addrs in samples:
            if ts >= t.get("created", 0) - 1 and ip in addrs:
                first_dns[tid] = ts
                break
    # When a removed task's address left DNS (the first sample without it
    # after it was there).
    gone_dns = {}       # task id -> t
    for tid in removed:
        ip, seen = static_tasks[tid].get("backend_ip"), False
        for ts, addrs in samples:
            if ts < first_dns.get(tid, float("inf")):
                continue
            if ip in addrs:
                seen = True
            elif seen:
                gone_dns[tid] = ts
                break

    by_phase = collections.defaultdict(lambda: collections.Counter())
    lat = collections.defaultdict(list)
    errors = collections.defaultdict(list)
    slow = collections.defaultdict(list)
    # The fresh deploy: no proxy task in DNS yet (nothing sent), for the
    # attempts begun before the first answer of the run. (By t0: an attempt
    # is four resolutions, and an empty answer can take seconds to come back
    # from Docker's DNS - one began 8.6 s before the first answer and ended
    # 2.3 s after it, every resolution empty.)
    answered = [r["t1"] for r in recs if not r.get("err") and r.get("status")]
    first_answer = min(answered) if answered else float("inf")
    for r in recs:
        ph = phase_of(r["t0"], starts)
        c = by_phase[ph]
        if r.get("nodns") and r["t0"] < first_answer:
            c["before any proxy was in DNS"] += 1
            continue
        c["requests"] += 1
        c["connect fallbacks"] += len(r["fb"])
        if r.get("stale"):
            c["stale connections re-opened"] += 1
        if r.get("retry"):
            c["retries (RFC 9112 9.3.1)"] += 1
            continue
        dt = r["t1"] - r["t0"]
        if r.get("err"):
            c["failed"] += 1
            errors[ph].append(r)
            continue
        lat[ph].append(dt)
        if r["status"] not in OK_STATUS:
            c["failed"] += 1
            errors[ph].append(r)
        if dt > (LATENCY_LIMIT if ph in changing else DEPLOY_LATENCY_LIMIT):
            slow[ph].append(r)

    # Sessions: stickiness and moves.
    sessions = collections.defaultdict(list)
    for r in recs:
        if r["k"] == "sticky" and not r.get("err") and not r.get("retry") and r["status"] in OK_STATUS:
            sessions[(r["c"], r["s"])].append(r)
    moves = collections.Counter()
    bad_moves = []
    skew_moves = []
    unsticky = []
    reissued = []
    for key, rs in sessions.items():
        rs.sort(key=lambda r: r["t0"])
        member = None
        left = set()
        for r in rs:
            ph = phase_of(r["t0"], starts)
            if r["sent"] is None:
                member = r["served"]
                continue
            if r["set"]:
                prev = member
                member = r["served"]
                if task_key(prev) == task_key(member):
                    reissued.append((ph, key, prev, r))
                    continue
                moves[ph] += 1
                if task_key(prev) not in removed:
                    t_new = first_dns.get(task_key(prev), 0)
                    if t_new >= events.get(steady, float("inf")) and \
                            r["t0"] <= t_new + 2 * interval + SETTLE + SAMPLING_SLACK:
                        # A session begun on a task one replica had just
                        # discovered, carried to the other replica before
                        # that one discovered it too.
                        skew_moves.append((ph, key, prev, member, r))
                    else:
                        bad_moves.append((ph, key, prev, member, "its member was not removed"))
                elif prev in left:
                    bad_moves.append((ph, key, prev, member, "moved away from it twice"))
                left.add(prev)
            elif r["served"] != member:
                unsticky.append((ph, key, member, r))
    # Sessions of removed tasks: after the task's removal they never come back to it.
    # (Implied by the stickiness rule: a response from a removed task after the
    # session left it would be a response without Set-Cookie from another member.)

    # New tasks: first new session they got through each replica.
    new_session_first = collections.defaultdict(dict)   # task -> {proxy addr: t}
    for r in recs:
        if r["k"] in ("sticky", "fresh") and r["sent"] is None and not r.get("err") \
                and r["status"] in OK_STATUS and r.get("served"):
            tid = task_key(r["served"])
            d = new_session_first[tid]
            if r["addr"] not in d or r["t1"] < d[r["addr"]]:
                d[r["addr"]] = r["t1"]
    window_end = events.get(prof["window_end"], 0) if prof["window_end"] else float("inf")
    proxy_addrs_static = sorted({r["addr"] for r in recs if r.get("addr")
                                 and events.get(steady, 0) <= r["t0"] < window_end})
    late = []
    timing = []
    new_tasks = [tid for tid, t in static_tasks.items()
                 # (created: whole seconds)
                 if t.get("created", 0) >= events.get(steady, float("inf")) - 1]
    for tid in new_tasks:
        ip = static_tasks[tid].get("backend_ip")
        t_dns = first_dns.get(tid)
        if t_dns is None:
            late.append((tid, ip, "its address never appeared in DNS"))
            continue
        if tid not in new_session_first:
            late.append((tid, ip, "never given a new session"))
            continue
        for addr in proxy_addrs_static:
            tf = new_session_first[tid].get(addr)
            if tf is None:
                late.append((tid, ip, f"never given a new session through {addr}"))
                continue
            timing.append(tf - t_dns)
            if tf - t_dns > 2 * interval + SETTLE + SAMPLING_SLACK:
                late.append((tid, ip, f"first new session through {addr} {tf - t_dns:.1f}s after "
                                      f"its address appeared in DNS (limit {2 * interval:.0f}s + "
                                      f"{SETTLE:.0f}s + {SAMPLING_SLACK:.0f}s)"))

    # Report.
    lines = []
    lines.append("%-14s %8s %6s %7s %6s %9s %6s %7s %7s %7s" %
                 ("phase", "requests", "failed", "retries", "stale", "fallbacks", "moves",
                  "p50 ms", "p99 ms", "max ms"))
    for ph in [first] + phases:
        c = by_phase.get(ph, collections.Counter())
        lines.append("%-14s %8d %6d %7d %6d %9d %6d %7.0f %7.0f %7.0f" % (
            ph, c["requests"], c["failed"], c["retries (RFC 9112 9.3.1)"],
            c["stale connections re-opened"], c["connect fallbacks"], moves[ph],
            1000 * pct(lat[ph], 50), 1000 * pct(lat[ph], 99), 1000 * max(lat[ph] or [0])))
    lines.append("%s: %d attempts before any proxy task was in DNS (nothing sent); first "
                 "answer %.1fs after the %s began" % (
                     first, by_phase[first]["before any proxy was in DNS"],
                     first_answer - starts[0][1], "deploy" if first == "deploy" else "load"))
    # The slowest answers of the deploy (a request waiting for the pool's
    # first member: DISCOVER_WAIT; or connect fallbacks): what they waited on.
    dep = sorted((r for r in recs if phase_of(r["t0"], starts) == first and not r.get("err")
                  and r.get("status")), key=lambda r: r["t0"] - r["t1"])[:3]
    lines.append("%s: slowest answers: %s" % (first, "; ".join(
        "%.1fs %s %s via %s from %s, %d connect fallbacks, sent %.1fs after the %s began" % (
            r["t1"] - r["t0"], r["p"], r["status"], r.get("addr"), r.get("served"), len(r["fb"]),
            r["t0"] - starts[0][1], "deploy" if first == "deploy" else "load") for r in dep) or "-"))
    lines.append("static tasks: %d seen, %d removed; new tasks' first new session after their "
                 "address appeared in DNS: %s" % (
                     len(static_tasks), len(removed),
                     ", ".join("%.1fs" % x for x in sorted(timing)) or "-"))
    # Removed tasks: their last response after their address left DNS
    # (requests in flight, sessions not moved yet), for the report.
    last_served = {}
    for r in recs:
        if not r.get("err") and r.get("served"):
            tid = task_key(r["served"])
            if tid in gone_dns and r["t1"] > last_served.get(tid, 0):
                last_served[tid] = r["t1"]
    lines.append("removed tasks' last response after their address left DNS: %s" % (
        ", ".join("%.1fs" % (last_served[t] - gone_dns[t]) for t in sorted(last_served)) or "-"))
    with open(report_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    for line in lines:
        say(line)

    for ph, rs in errors.items():
        expect(False, f"{len(rs)} failed requests in phase {ph}, e.g. " +
               "; ".join(f"{r.get('k')}#{r.get('c')} {r.get('p')} via {r.get('addr')}: "
                         f"{r.get('err') or r.get('status')} after {r['t1'] - r['t0']:.2f}s"
                         for r in rs[:5]))
    for ph, rs in slow.items():
        limit = LATENCY_LIMIT if ph in changing else DEPLOY_LATENCY_LIMIT
        expect(False, f"{len(rs)} requests in phase {ph} took more than {limit:.0f}s "
                      f"(one connect timeout + 2s, + DISCOVER_WAIT while deploying), e.g. " +
               "; ".join(f"{r['p']} via {r['addr']} from {r.get('served')} {r['t1'] - r['t0']:.2f}s"
                         for r in rs[:5]))
    expect(not unsticky, f"{len(unsticky)} responses from another member without a new cookie, e.g. " +
           "; ".join(f"[{ph}] session {k} on {m} served by {r['served']} via {r['addr']}"
                     for ph, k, m, r in unsticky[:5]))
    expect(not reissued, f"{len(reissued)} cookies re-issued for the same member (a replica did "
                         f"not accept the other's cookie?), e.g. " +
           "; ".join(f"[{ph}] session {k} {p} via {r['addr']}: {r['set']}"
                     for ph, k, p, r in reissued[:5]))
    expect(not bad_moves, f"{len(bad_moves)} unexpected moves, e.g. " +
           "; ".join(f"[{ph}] session {k} {a} -> {b}: {why}" for ph, k, a, b, why in bad_moves[:5]))
    expect(not late, "new static tasks not given sessions in time: " +
           "; ".join(f"{tid} ({ip}): {why}" for tid, ip, why in late[:6]))
    for group in prof["moves_in"]:
        expect(sum(moves[u] for u in group) > 0,
               f"no client moved in {'/'.join(group)} ({dict(moves)}): did they have "
               "clients on the removed tasks?")
    expect(len(new_tasks) >= prof["new_tasks_min"],
           f"new static tasks seen in DNS during the run: {len(new_tasks)} "
           f"(expected {prof['new_tasks_min']}: {prof['new_tasks_why']})")
    say(f"moves by phase: {dict(moves)}; removed static tasks: {len(removed)}; "
        f"new static tasks: {len(new_tasks)}")
    if skew_moves:
        say(f"{len(skew_moves)} of the moves left a task the other replica had not discovered yet "
            f"(within 2 intervals of its address appearing), e.g. " +
            "; ".join(f"[{ph}] {a} -> {b} via {r['addr']}" for ph, _, a, b, r in skew_moves[:3]))


def main(argv):
    cmds = {"probe": (cmd_probe, 1, 1), "cross": (cmd_cross, 3, 3), "load": (cmd_load, 6, 7),
            "tls": (cmd_tls, 1, 1)}
    if len(argv) < 2 or argv[1] not in cmds or \
            not cmds[argv[1]][1] <= len(argv) - 2 <= cmds[argv[1]][2] or \
            (argv[1] == "load" and len(argv) == 9 and argv[8] not in PROFILES):
        print(__doc__, file=sys.stderr)
        return 2
    cmds[argv[1]][0](*argv[2:])
    if failures:
        for f in failures:
            print(f"CHECK FAILED ({argv[1]}): {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
