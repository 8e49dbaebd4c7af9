#!/usr/bin/python3
"""Turn the raw wrk outputs of one bench/run.sh invocation into
results.md, results.csv (every run) and throughput.png (gnuplot).

usage: report.py RAWDIR OUTDIR
Exit status 1 when any run failed (errors, no result) or a case could not run.
Nothing here judges speed as a failure: targets are reported, not asserted.
"""
import csv
import os
import re
import statistics
import subprocess
import sys

RAW, OUT = sys.argv[1], sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not m:
        return None
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(path):
    """Return dict with rps, p50, p99 (ms), requests, non2xx, sockerr, problems."""
    r = {"rps": None, "p50": None, "p75": None, "p90": None, "p99": None, "requests": None,
         "non2xx": 0, "sock_connect": 0, "sock_read": 0, "sock_write": 0, "sock_timeout": 0,
         "problems": []}
    try:
        text = open(path).read()
    except OSError as e:
        r["problems"].append("no output: %s" % e)
        return r
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    if m:
        r["rps"] = float(m.group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M)
        if m:
            r["p" + pct] = to_ms(m.group(1))
    m = re.search(r"^\s+(\d+) requests in", text, re.M)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        (r["sock_connect"], r["sock_read"], r["sock_write"], r["sock_timeout"]) = map(int, m.groups())
    if "WRK_EXIT_NONZERO" in text:
        r["problems"].append("wrk exited non-zero")
    if r["rps"] is None or not r["requests"]:
        r["problems"].append("no requests/sec in wrk output")
    if r["p50"] is None or r["p99"] is None:
        r["problems"].append("no latency distribution in wrk output")
    if r["non2xx"]:
        r["problems"].append("%d non-2xx responses" % r["non2xx"])
    sock = r["sock_connect"] + r["sock_read"] + r["sock_write"] + r["sock_timeout"]
    r["sockerr"] = sock
    if sock:
        r["problems"].append("socket errors: connect %d, read %d, write %d, timeout %d" % (
            r["sock_connect"], r["sock_read"], r["sock_write"], r["sock_timeout"]))
    return r


def read_meta():
    meta = {}
    for line in open(os.path.join(RAW, "meta.txt")):
        k, _, v = line.rstrip("\n").partition("=")
        meta[k] = v
    return meta


meta = read_meta()
cases = []          # ordered: name, desc, cookie, broken
for line in open(os.path.join(RAW, "cases.tsv")):
    name, desc, cookie, broken = (line.rstrip("\n").split("\t") + ["", "", ""])[:4]
    cases.append({"name": name, "desc": desc, "cookie": cookie, "broken": broken, "runs": []})
by_name = {c["name"]: c for c in cases}

runs = []
with open(os.path.join(RAW, "index.tsv")) as f:
    for row in csv.DictReader(f, delimiter="\t"):
        res = parse_wrk(os.path.join(RAW, row["rawfile"]))
        res.update(row)
        res["round"] = int(row["round"])
        # CPU accounting (ticks over the measured run; see run.sh).
        try:
            clk, secs, ncpu = float(row["clk_tck"]), float(row["seconds"]), int(row["ncpu"])
            cp, cb, cw, cm = (float(row[k]) for k in ("cpu_proxy", "cpu_backend", "cpu_wrk", "cpu_machine"))
            n = res["requests"] or 0
            res["us_proxy"] = cp / clk / n * 1e6 if n else None
            res["us_backend"] = cb / clk / n * 1e6 if n else None
            res["us_wrk"] = cw / clk / n * 1e6 if n else None
            cap = ncpu * secs * clk
            res["busy_pct"] = 100.0 * cm / cap
            res["other_pct"] = 100.0 * max(0.0, cm - cp - cb - cw) / cap
            res["proxy_cores"] = cp / clk / secs
        except (KeyError, ValueError, TypeError):
            for k in ("us_proxy", "us_backend", "us_wrk", "busy_pct", "other_pct", "proxy_cores"):
                res[k] = None
        res["ok"] = not res["problems"]
        runs.append(res)
        by_name[row["case"]]["runs"].append(res)

rounds = int(meta.get("rounds", "0"))
any_failure = False
for c in cases:
    clean = [r for r in c["runs"] if r["ok"]]
    c["clean"] = clean
    c["failed_runs"] = [r for r in c["runs"] if not r["ok"]]
    if c["broken"]:
        c["status"] = "NOT RUN: " + c["broken"]
        any_failure = True
    elif c["failed_runs"]:
        c["status"] = "FAILED (%d of %d runs had errors)" % (len(c["failed_runs"]), len(c["runs"]))
        any_failure = True
    elif len(c["runs"]) < rounds:
        c["status"] = "FAILED (only %d of %d runs)" % (len(c["runs"]), rounds)
        any_failure = True
    else:
        c["status"] = "ok"
    if clean:
        c["rps"] = statistics.median(r["rps"] for r in clean)
        c["rps_min"] = min(r["rps"] for r in clean)
        c["rps_max"] = max(r["rps"] for r in clean)
        c["p50"] = statistics.median(r["p50"] for r in clean)
        c["p99"] = statistics.median(r["p99"] for r in clean)
    else:
        c["rps"] = c["rps_min"] = c["rps_max"] = c["p50"] = c["p99"] = None
    for k in ("us_proxy", "us_backend", "us_wrk", "busy_pct", "other_pct", "proxy_cores"):
        vals = [r[k] for r in clean if r.get(k) is not None]
        c[k] = statistics.median(vals) if vals else None
    c["non2xx"] = sum(r["non2xx"] for r in c["runs"])
    c["sockerr"] = sum(r["sockerr"] for r in c["runs"])


def fmt_rps(v):
    return "-" if v is None else "{:,.0f}".format(v)


def fmt_ms(v):
    return "-" if v is None else ("%.2f" % v if v < 10 else "%.1f" % v)


# ---- ratios --------------------------------------------------------------------------
# (numerator, denominator, target or None, what it answers)
RATIOS = [
    ("sticky-cookie", "stock-cookie", 1.00, "lbmethod=sticky vs the stock recipe (cookie sent)"),
    ("sticky-cookie", "proxypass", 0.98, "lbmethod=sticky vs the plain ProxyPass ceiling (within 2%)"),
    ("sticky-cookie", "haproxy-cookie", 0.80, "lbmethod=sticky vs HAProxy cookie insert (cookie sent)"),
    ("sticky-nocookie", "stock-nocookie", 1.00, "lbmethod=sticky vs the stock recipe (new session per request)"),
    ("sticky-nocookie", "haproxy-nocookie", 0.80, "lbmethod=sticky vs HAProxy (new session per request)"),
    ("dyn-roundrobin", "dyn-byrequests", None, "lbmethod=roundrobin vs byrequests (dynamic pool)"),
    ("dyn-roundrobin", "haproxy-dyn", 0.80, "lbmethod=roundrobin vs HAProxy balance roundrobin (dynamic pool)"),
    ("static-roundrobin", "static-byrequests", None, "lbmethod=roundrobin vs byrequests (static pool: balancer cost visible)"),
    ("static-roundrobin", "haproxy-static-rr", 0.80, "lbmethod=roundrobin vs HAProxy balance roundrobin (static pool)"),
    ("stock-cookie", "haproxy-cookie", None, "stock recipe vs HAProxy (issue: about 0.65x)"),
    ("proxypass", "haproxy-cookie", None, "httpd's own ceiling vs HAProxy cookie insert"),
    ("proxypass", "direct", None, "httpd plain ProxyPass vs no proxy at all"),
    ("haproxy-cookie", "direct", None, "HAProxy vs no proxy at all"),
]


def ratio_rows():
    rows = []
    for num, den, target, what in RATIOS:
        a, b = by_name.get(num), by_name.get(den)
        if not a or not b:
            continue
        if a["rps"] is None or b["rps"] is None:
            rows.append((num, den, what, None, None, None, None, target, "NOT MEASURED"))
            continue
        cpu = (a["us_proxy"] / b["us_proxy"]) if a.get("us_proxy") and b.get("us_proxy") \
            and num != "direct" and den != "direct" else None
        # What the CPU cost alone predicts on a saturated machine: throughput ~ 1 / (CPU per
        # request of proxy + backends + wrk). Insensitive to how much CPU other work took.
        def total(c):
            parts = [c.get("us_proxy") or 0.0, c.get("us_backend"), c.get("us_wrk")]
            return None if None in parts else sum(parts)
        ta, tb = total(a), total(b)
        pred = tb / ta if ta and tb else None
        ratio = a["rps"] / b["rps"]
        # Paired per-round ratios (both clean in the same round): shows the spread.
        pa = {r["round"]: r["rps"] for r in a["clean"]}
        pb = {r["round"]: r["rps"] for r in b["clean"]}
        paired = [pa[k] / pb[k] for k in sorted(pa) if k in pb]
        spread = (min(paired), max(paired)) if paired else None
        if a["status"] != "ok" or b["status"] != "ok":
            verdict = "FAILED RUNS"
        elif target is None:
            verdict = "info"
        else:
            verdict = "meets" if ratio >= target else "MISSES"
            if spread and spread[0] < target <= spread[1]:
                verdict += " (inconclusive: the rounds fall on both sides of the target)"
        rows.append((num, den, what, ratio, spread, cpu, pred, target, verdict))
    return rows


ratios = ratio_rows()

# ---- results.csv (every run) ------------------------------------------------------------
os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "results.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["stamp", "round", "case", "started_utc", "rps", "p50_ms", "p75_ms", "p90_ms", "p99_ms",
                "requests", "non2xx", "sock_connect", "sock_read", "sock_write", "sock_timeout",
                "loadavg_before", "loadavg_after", "proxy_cpu_us_per_req", "backend_cpu_us_per_req",
                "wrk_cpu_us_per_req", "machine_busy_pct", "other_cpu_pct", "status"])
    for r in runs:
        w.writerow([meta.get("stamp"), r["round"], r["case"], r["started"], r["rps"], r["p50"], r["p75"],
                    r["p90"], r["p99"], r["requests"], r["non2xx"], r["sock_connect"], r["sock_read"],
                    r["sock_write"], r["sock_timeout"], r["loadavg_before"], r["loadavg_after"],
                    r["us_proxy"], r["us_backend"], r["us_wrk"], r["busy_pct"], r["other_pct"],
                    "ok" if r["ok"] else "FAILED: " + "; ".join(r["problems"])])

# ---- chart -----------------------------------------------------------------------------
GROUP_COLOR = {"direct": 0x808080, "proxypass": 0x808080, "stock": 0x4477aa, "sticky": 0x228833,
               "dyn": 0x66ccee, "haproxy": 0xee6677}


def color(name):
    if name.endswith("-roundrobin"):
        return 0x228833
    if name.endswith("-byrequests"):
        return 0x4477aa
    for k, v in GROUP_COLOR.items():
        if name.startswith(k):
            return v
    return 0x000000


chart_dat = os.path.join(RAW, "chart.dat")
with open(chart_dat, "w") as f:
    f.write("# idx label rps_median rps_min rps_max p50_ms p99_ms color bartext proxy_us_per_req\n")
    for i, c in enumerate(cases):
        label = c["name"] + ("" if c["status"] == "ok" else " (FAILED)" if c["runs"] else " (NOT RUN)")
        if c["rps"] is None:
            f.write('%d "%s" 0 0 0 NaN NaN %d "%s" NaN\n' % (i, label, color(c["name"]),
                                                            "FAILED" if c["runs"] else "not run"))
            continue
        us = c.get("us_proxy") if c["name"] != "direct" else None
        f.write('%d "%s" %.1f %.1f %.1f %.4f %.4f %d "%.0f" %s\n' % (
            i, label, c["rps"], c["rps_min"], c["rps_max"], c["p50"], c["p99"], color(c["name"]), c["rps"],
            "NaN" if us is None else "%.2f" % us))
png = os.path.join(OUT, "throughput.png")
title = "mod_sticky_route bench %s: wrk -t%s -c%s, %ss x %s rounds (median, min-max bars), %s" % (
    meta.get("stamp"), meta.get("threads"), meta.get("conns"), meta.get("duration"), meta.get("rounds"),
    meta.get("host_cores") + " cores")
chart_ok = True
try:
    subprocess.run(["gnuplot", "-e", 'datafile="%s"; outfile="%s"; charttitle="%s"; ncases=%d' % (
                        chart_dat, png, title, len(cases)),
                    os.path.join(HERE, "chart.gp")], check=True, capture_output=True, text=True)
except subprocess.CalledProcessError as e:
    chart_ok = False
    sys.stderr.write("report: gnuplot failed: %s\n" % e.stderr)

# ---- results.md --------------------------------------------------------------------------
smoke = rounds < 3 or int(meta.get("duration", "0")) < 10
L = []
L.append("# Benchmark results")
L.append("")
readme = os.path.relpath(os.path.join(HERE, "..", "docs", "benchmarks", "README.md"), OUT)
L.append("Generated by `bench/run.sh` (`make bench`) at %s UTC; do not edit by hand. "
         "How to run and read it: [README.md](%s)." % (meta.get("stamp"), readme))
L.append("")
if smoke:
    L.append("> **SMOKE RUN** (%s rounds x %s s): too short to quote; the issue asks for >= 3 rounds." % (
        meta.get("rounds"), meta.get("duration")))
    L.append("")
if any_failure:
    L.append("> **Some runs FAILED** (errors or a case that could not run): see the Status column "
             "and the failed-runs list. Failed runs are excluded from the medians.")
    L.append("")
L.append("![throughput and p99 latency](throughput.png)" if chart_ok else "(chart: gnuplot failed)")
L.append("")
L.append("## Results (median of clean runs)")
L.append("")
L.append("| # | case | req/s | req/s min-max | p50 ms | p99 ms | non-2xx | socket errors | clean runs | status |")
L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
for c in cases:
    num = c["desc"].split(" ", 1)[0].rstrip(".")
    desc = c["desc"].split(" ", 1)[1] if " " in c["desc"] else c["desc"]
    rng = "-" if c["rps"] is None else "%s - %s" % (fmt_rps(c["rps_min"]), fmt_rps(c["rps_max"]))
    L.append("| %s | `%s`: %s | %s | %s | %s | %s | %d | %d | %d/%d | %s |" % (
        num, c["name"], desc, fmt_rps(c["rps"]), rng, fmt_ms(c["p50"]), fmt_ms(c["p99"]),
        c["non2xx"], c["sockerr"], len(c["clean"]), len(c["runs"]), c["status"]))
L.append("")
L.append("## Ratios (throughput, medians of this run)")
L.append("")
L.append("| ratio | what | throughput ratio | per-round range | proxy CPU/req ratio | throughput predicted from CPU/req | target (throughput) | verdict |")
L.append("|---|---|---:|---:|---:|---:|---:|---|")
for num, den, what, ratio, spread, cpu, pred, target, verdict in ratios:
    L.append("| `%s` / `%s` | %s | %s | %s | %s | %s | %s | %s |" % (
        num, den, what, "-" if ratio is None else "%.3fx" % ratio,
        "-" if not spread else "%.3f - %.3f" % spread, "-" if cpu is None else "%.2f" % cpu,
        "-" if pred is None else "%.3fx" % pred,
        "-" if target is None else ">= %.2fx" % target, verdict))
L.append("")
L.append("Per-round range: the same ratio computed within each round (both runs minutes apart "
         "at most), min and max over rounds: how much of the difference is noise. Proxy CPU/req "
         "ratio: CPU time per request of the numerator's proxy over the denominator's (lower is "
         "cheaper; less sensitive to other load on the machine than requests/s). Throughput "
         "predicted from CPU/req: the inverse ratio of the CPU per request of everything in the bed "
         "(proxy + backends + wrk), what the throughput ratio would be on a machine saturated by "
         "the bench alone (kernel softirq time not charged to a process is left out). The verdict "
         "is on the measured throughput ratio.")
L.append("")
L.append("## Where the CPU went (median of clean runs)")
L.append("")
L.append("CPU time (user+system, from /proc) spent per request by the proxy's processes, the "
         "backends and wrk during the measured run; `proxy cores` = CPU the proxy used (1.0 = one "
         "full core of %s); `machine busy` = all CPUs (100%% = all %s cores busy); `other` = busy "
         "time not in those processes: other work on the machine plus kernel softirq (loopback "
         "TCP) time not charged to a process. A large `other` means the run was disturbed." % (
             meta.get("host_cores"), meta.get("host_cores")))
L.append("")
L.append("| case | req/s | proxy CPU us/req | proxy cores | backend CPU us/req | wrk CPU us/req | machine busy % | other % |")
L.append("|---|---:|---:|---:|---:|---:|---:|---:|")


def f1(v, fmt="%.1f"):
    return "-" if v is None else fmt % v


for c in cases:
    if c["rps"] is None:
        continue
    L.append("| `%s` | %s | %s | %s | %s | %s | %s | %s |" % (
        c["name"], fmt_rps(c["rps"]), f1(c["us_proxy"]) if c["name"] != "direct" else "(none)",
        f1(c["proxy_cores"], "%.2f") if c["name"] != "direct" else "-",
        f1(c["us_backend"]), f1(c["us_wrk"]), f1(c["busy_pct"], "%.0f"), f1(c["other_pct"], "%.0f")))
L.append("")
L.append("## Machine, versions, settings")
L.append("")
L.append("| item | value |")
L.append("|---|---|")
for k, label in [("host_cpu", "CPU"), ("host_cores", "cores"), ("host_mem", "memory"), ("os", "OS"),
                 ("kernel", "kernel"), ("apache2", "httpd (proxy and backends)"), ("haproxy", "HAProxy"),
                 ("wrk", "wrk"), ("node", "node (dynamic pool)"), ("gnuplot", "gnuplot"),
                 ("git_commit", "repository commit"), ("git_dirty", "uncommitted module source files"),
                 ("module_sha256", "module .so sha256 (first 16)"),
                 ("dynamic", "dynamic pool served by"),
                 ("duration", "seconds per run"), ("warmup", "warm-up seconds before each run (discarded)"),
                 ("rounds", "rounds (interleaved, order rotated each round)"),
                 ("threads", "wrk threads"), ("conns", "wrk connections"), ("timeout", "wrk timeout (s)"),
                 ("proxy_procs", "httpd proxy processes"),
                 ("proxy_threads", "httpd proxy ThreadsPerChild"), ("proxy_mpm", "httpd proxy MPM"),
                 ("ttl", "proxy pool ttl= (s)"),
                 ("mutex", "httpd Mutex mechanism"), ("haproxy_threads", "HAProxy nbthread"),
                 ("taskset_wrk", "CPU pinning: wrk"), ("taskset_proxy", "CPU pinning: proxies"),
                 ("taskset_backend", "CPU pinning: backends"), ("command", "command")]:
    L.append("| %s | %s |" % (label, ("`%s`" % meta.get(k, "")) if k == "command" else meta.get(k, "")))
L.append("")
def conf_value(path, key):
    try:
        for line in open(path):
            parts = line.split()
            if len(parts) >= 2 and parts[0] == key:
                return parts[1]
    except OSError:
        pass
    return "?"


s1conf = os.path.join(RAW, "s1.conf")
L.append("Backends: 2 Debian apache2 (event MPM, %s processes x %s threads, KeepAliveTimeout %s, "
         "MaxKeepAliveRequests %s) serving a 1 KiB static file with `X-Served-By`. Every contender "
         % (conf_value(s1conf, "StartServers"), conf_value(s1conf, "ThreadsPerChild"),
            conf_value(s1conf, "KeepAliveTimeout"), conf_value(s1conf, "MaxKeepAliveRequests")) +
         "that sends a cookie names backend `s1`, so cases 1-4 and 6 put the same work on the same "
         "backend. Proxy and backend configs as run: `raw/latest/*.conf`, `raw/latest/haproxy.cfg`.")
L.append("")
L.append("## Every run")
L.append("")
L.append("| round | case | start (UTC) | req/s | p50 ms | p99 ms | non-2xx | socket errors | proxy CPU us/req | other % | load avg before | status |")
L.append("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
for r in sorted(runs, key=lambda r: (r["round"], r["started"])):
    L.append("| %d | `%s` | %s | %s | %s | %s | %d | %d | %s | %s | %s | %s |" % (
        r["round"], r["case"], r["started"], fmt_rps(r["rps"]), fmt_ms(r["p50"]), fmt_ms(r["p99"]),
        r["non2xx"], r["sockerr"], f1(r["us_proxy"]), f1(r["other_pct"], "%.0f"), r["loadavg_before"], "ok" if r["ok"] else "**FAILED**: " + "; ".join(r["problems"])))
L.append("")
failed = [r for r in runs if not r["ok"]]
not_run = [c for c in cases if c["broken"]]
if failed or not_run:
    L.append("## Failed runs")
    L.append("")
    for r in failed:
        L.append("- round %d `%s`: %s (raw: `raw/latest/%s`)" % (r["round"], r["case"], "; ".join(r["problems"]), r["rawfile"]))
    for c in not_run:
        L.append("- `%s` not run: %s" % (c["name"], c["broken"]))
    L.append("")
# ---- profiles (BENCH_PROFILE) ------------------------------------------------------------
def parse_stat(path):
    out = {}
    try:
        for line in open(path):
            m = re.match(r"\s*([0-9.,]+)\s+(?:msec\s+)?([a-z-]+)", line)
            if m:
                out[m.group(2)] = float(m.group(1).replace(",", ""))
    except OSError:
        pass
    return out


def load_json(path):
    import json
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def pct(n, total):
    return "-" if not total else "%.1f%%" % (100.0 * n / total)


BALANCER_OBJECTS = ("mod_sticky_route.so", "mod_proxy_balancer.so", "mod_lbmethod_byrequests.so",
                    "mod_headers.so", "mod_slotmem_shm.so")
profiled = [c for c in cases if load_json(os.path.join(RAW, "profile-%s.json" % c["name"]))]
if profiled:
    L.append("## Profiles (perf; separate runs after the measured rounds)")
    L.append("")
    L.append("For each profiled case: %s s of the same wrk load while `perf record -a -g -e cpu-clock -F 999` "
             "samples the whole machine (hardware counters are not available in this VM) and `perf stat` "
             "counts the proxy processes' CPU time and context switches. Samples are split by thread: the "
             "proxy's threads, the backends' threads, wrk, idle, and `other` (processes that are not part "
             "of the bench: other work on the machine). Kernel samples of the proxy are attributed to the "
             "system call that was running (by the user-space function that made it). Debian's binaries "
             "carry no debug symbols: static functions of apache2 and of modules show as `[unknown]`." %
             meta.get("profile_seconds"))
    L.append("")
    L.append("| case | req/s under perf | proxy CPU us/req | context switches/req | machine: proxy / backends / wrk / other / idle | proxy in kernel | proxy user space by object |")
    L.append("|---|---:|---:|---:|---|---:|---|")
    for c in profiled:
        w = parse_wrk(os.path.join(RAW, "profile-%s-wrk.txt" % c["name"]))
        st = parse_stat(os.path.join(RAW, "profile-%s-stat.txt" % c["name"]))
        pj = load_json(os.path.join(RAW, "profile-%s.json" % c["name"]))
        n = w["requests"] or 0
        us = st["task-clock"] * 1000.0 / n if n and "task-clock" in st else None
        cs = st["context-switches"] / n if n and "context-switches" in st else None
        roles = dict(pj["roles"])
        tot = pj["samples"]
        ptot = pj["proxy_samples"]
        dso = dict(pj["proxy_dso"])
        user = [(d, k) for d, k in pj["proxy_dso"] if d != "kernel"][:6]
        # The objects a balancer comparison is about, wherever they rank.
        for d, k in pj["proxy_dso"]:
            if d in BALANCER_OBJECTS and (d, k) not in user:
                user.append((d, k))
        L.append("| `%s` | %s | %s | %s | %s / %s / %s / %s / %s | %s | %s |" % (
            c["name"], fmt_rps(w["rps"]), f1(us), f1(cs, "%.2f"),
            pct(roles.get("proxy", 0), tot), pct(roles.get("backend", 0), tot), pct(roles.get("wrk", 0), tot),
            pct(roles.get("other", 0), tot), pct(roles.get("idle", 0), tot),
            pct(dso.get("kernel", 0), ptot), ", ".join("%s %s" % (d, pct(k, ptot)) for d, k in user)))
    L.append("")
    for c in profiled:
        pj = load_json(os.path.join(RAW, "profile-%s.json" % c["name"]))
        ptot = pj["proxy_samples"]
        L.append("<details><summary><code>%s</code>: proxy kernel time by system call, top symbols "
                 "(%d proxy samples)</summary>" % (c["name"], ptot))
        L.append("")
        L.append("| % of proxy samples | kernel time entered through |")
        L.append("|---:|---|")
        for k, v in pj["proxy_kernel_by_entry"][:12]:
            L.append("| %s | %s |" % (pct(v, ptot), k))
        L.append("")
        L.append("| % of proxy samples | symbol |")
        L.append("|---:|---|")
        for k, v in pj["proxy_symbols"][:25]:
            L.append("| %s | `%s` |" % (pct(v, ptot), k.replace("|", "/")))
        L.append("")
        L.append("</details>")
        L.append("")

L.append("Raw wrk outputs, the run index (with load averages) and the rendered configs: `raw/latest/`. "
         "All runs as CSV: [results.csv](results.csv).")
L.append("")
with open(os.path.join(OUT, "results.md"), "w") as f:
    f.write("\n".join(L))

# Console summary.
print("\n".join(L[:L.index("## Machine, versions, settings")]))
sys.exit(1 if any_failure else 0)
