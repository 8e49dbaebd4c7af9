#!/usr/bin/python3
"""bench/balance/report.py RAWDIR OUTDIR: the balance bench's raw data
(RAWDIR/meta.json, SCENARIO-CONTENDER-rREP.json and .tsv, written by
balance.py) -> OUTDIR/results.md and one gnuplot PNG per scenario (imbalance
over time, one line per contender). Every figure is reported as the median
over the repetitions and their range (min-max); a target is met when it is
met in every repetition. Exit status 1 when a run failed."""
import json
import os
import subprocess
import sys

SCEN_ORDER = ["scaleout", "down", "skew"]
SCEN_TITLE = {"scaleout": "(a) scale-out", "down": "(b) member down, then back", "skew": "(c) skewed load"}


def load(raw):
    """meta, {(scenario, contender): [result of each repetition, in order]}"""
    meta = json.load(open(os.path.join(raw, "meta.json")))
    runs = {}
    for fn in sorted(os.listdir(raw)):
        if fn.endswith(".json") and fn != "meta.json":
            r = json.load(open(os.path.join(raw, fn)))
            r.setdefault("rep", 1)
            runs.setdefault((r["scenario"], r["contender"]), []).append(r)
    for v in runs.values():
        v.sort(key=lambda r: r["rep"])
    return meta, runs


def good(r):
    return r is not None and r.get("available", True) and not r.get("failed")


def goods(rs):
    return [r for r in (rs or []) if good(r)]


def first(rs):
    """The first repetition that ran (charts, notes), else the first."""
    g = goods(rs)
    return g[0] if g else ((rs or [None])[0])


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2.0


def agg(vals, nd=2, never=None):
    """"median (min-max)" over the repetitions; one value, or all equal: that
    value. None is dropped, or with never= counts as larger than any value
    and is written as never."""
    inf = float("inf")
    if never is None:
        vals = [v for v in vals if v is not None]
    else:
        vals = [inf if v is None else v for v in vals]
    if not vals:
        return "-"
    ints = all(isinstance(v, int) or v == inf for v in vals)

    def one(v):
        if v == inf:
            return never
        if ints and float(v).is_integer():
            return "{:,}".format(int(v))
        return ("%." + str(nd) + "f") % v
    lo, hi, md = min(vals), max(vals), median(vals)
    if lo == hi:
        return one(md)
    return "%s (%s%s%s)" % (one(md), one(lo), " to " if hi == inf else "-", one(hi))


def rep_of(runs, scen, name, rep):
    for r in runs.get((scen, name)) or []:
        if r["rep"] == rep:
            return r
    return None


def field(rs, key, **kw):
    return agg([r.get(key) for r in goods(rs)], **kw)


def f(v, nd=2, none="-"):
    if v is None:
        return none
    if isinstance(v, float):
        return ("%." + str(nd) + "f") % v
    return str(v)


def num(n):
    return "{:,}".format(n) if isinstance(n, int) else f(n)


def ramp_check(dn):
    """The slow-start target for new sessions in one run: no 5 s window (of at
    least 20 new sessions) during the ramp above the ramp + 0.05, at least half
    the new sessions the ramp gives, and the share of requests at most 1.1 x
    the weight share. (ok, its numbers)"""
    ws = dn.get("weight_share")
    ok = (dn.get("ramp_windows_over") == 0 and dn.get("ramp_new_got", 0) >= 0.5 * (dn.get("ramp_new_expected") or 0)
          and (dn.get("req_share_max") or 0) <= (ws or 0) * 1.1)
    ramping = [x for x in (dn.get("return_series") or []) if x["ramp"] < (ws or 0) - 1e-9]
    return ok, dict(windows_over=dn.get("ramp_windows_over"), new_over=max_over(ramping, "new_share"),
                    req_over=max_over(ramping, "req_share"), got=dn.get("ramp_new_got"),
                    expected=dn.get("ramp_new_expected"), req_share_max=dn.get("req_share_max"),
                    new_share_max=dn.get("new_share_max_ramp"), anchor=dn.get("ramp_anchor_s"))


def targets_one(meta, c, so, dn):
    """[(key, target text, verdict, numbers)] of one repetition; verdicts are
    met / MISSED / n/a (mechanism absent) / not run."""
    S = meta["settings"]
    feats = c["features"]
    out = []
    if "rebalance" in feats:
        deadline, why = S["idle"] + 10, "rebalance on: <= IDLE_SECONDS + 10 = %d s" % (S["idle"] + 10)
    elif "lifetimes" in feats:
        deadline, why = S["maxidle"] + 10, "lifetimes: <= MaxIdle + 10 = %d s" % (S["maxidle"] + 10)
    else:
        deadline, why = None, None
    if good(so):
        st = so.get("settle_s")
        if deadline is None:
            out.append(("scale-out imbalance", "scale-out: imbalance <= %.1f" % S["imbalance_target"], "n/a",
                        "no mechanism moves established sessions; %s" %
                        (("reached after %s s" % st) if st is not None else "not reached within %s s" % so.get("observed_s"))))
        else:
            ok = st is not None and st <= deadline
            out.append(("scale-out imbalance", "scale-out: imbalance <= %.1f within %s" % (S["imbalance_target"], why),
                        "met" if ok else "MISSED",
                        ("after %s s" % st) if st is not None else "never within %s s (last 10 s: %s)"
                        % (so.get("observed_s"), f(so.get("imb5_last10")))))
        out.append(("moved while active", "scale-out: zero sessions moved while active", "met" if so["moved_active"] == 0 else "MISSED",
                    "%d moved while active" % so["moved_active"]))
        out.append(("errors", "scale-out: zero errors", "met" if so["errors"] == 0 else "MISSED",
                    "%d errors in %s requests" % (so["errors"], num(so["requests"]))))
    else:
        out.append(("scale-out", "scale-out targets", "not run", (so or {}).get("reason") or (so or {}).get("failed", "")))
    if good(dn):
        ws = dn.get("weight_share")
        if "slowstart" in feats:
            ok, x = ramp_check(dn)
            out.append(("slow-start ramp", "return: new sessions follow the slow-start ramp, no spike above the weight share (%s)" % f(ws),
                        "met" if ok else "MISSED",
                        "5 s windows (>= 20 new sessions) above ramp + 0.05: %s; its share of new sessions at most %s "
                        "above the ramp; new sessions during the ramp %s (ramp: %s); its share of requests %s, "
                        "at most %s in all" % (
                            x["windows_over"], f(x["new_over"]), x["got"], x["expected"],
                            ("under the ramp throughout" if x["req_over"] is not None and x["req_over"] <= 0
                             else "at most %s above the ramp" % f(x["req_over"])), f(x["req_share_max"]))))
        else:
            out.append(("slow-start ramp", "return: slow-start ramp", "n/a",
                        "no slow start; max 5 s share of new sessions %s in the first %d s (weight share %s)" %
                        (f(dn.get("new_share_max_ramp")), S["slowstart"], f(ws))))
    return out


def targets_for(meta, c, runs):
    """[(key, target text, verdict, numbers)] over the repetitions: met when met
    in every repetition that ran, MISSED when missed in any (the numbers say
    in how many and give each repetition's)."""
    so_l = runs.get(("scaleout", c["name"])) or []
    dn_l = runs.get(("down", c["name"])) or []
    R = max(len(so_l), len(dn_l), 1)
    per = [targets_one(meta, c, so_l[i] if i < len(so_l) else None, dn_l[i] if i < len(dn_l) else None)
           for i in range(R)]
    order, by = [], {}
    for i, tg in enumerate(per):
        for key, text, verdict, numbers in tg:
            if key not in by:
                order.append(key)
                by[key] = dict(text=text, v=[], n=[])
            by[key]["v"].append(verdict)
            by[key]["n"].append("r%d: %s" % (i + 1, numbers) if R > 1 else numbers)
    out = []
    for key in order:
        v = by[key]["v"]
        judged = [x for x in v if x in ("met", "MISSED")]
        if judged:
            verdict = "met" if all(x == "met" for x in judged) and len(judged) == R else "MISSED"
            head = ("met in %d of %d repetitions; " % (judged.count("met"), R)) if R > 1 else ""
        else:
            verdict, head = v[0], ""
        out.append((key, by[key]["text"], verdict, head + "; ".join(by[key]["n"])))
    return out


CONTENDER_FEATURES = {}
# One colour per contender, the same in every chart and panel (HAProxy dashed).
PALETTE = ["#000000", "#1f78b4", "#33a02c", "#e31a1c", "#ff7f00", "#6a3d9a", "#b15928", "#e7298a", "#17becf", "#999999"]


def style(meta, n):
    names = [c["name"] for c in meta["contenders"]]
    i = names.index(n) if n in names else len(names)
    return 'lw 2 lc rgb "%s"%s' % (PALETTE[i % len(PALETTE)], " dt 2" if n.startswith("haproxy") else "")
DISTURBED_PCT = 15.0   # other work on the machine above this share of all CPUs: the batch is flagged


def max_over(rows, key):
    """Largest amount by which a 5 s share exceeds the ramp (negative: always under)."""
    v = [x[key] - x["ramp"] for x in rows if x.get(key) is not None]
    return round(max(v), 3) if v else None


def chart(meta, runs, scen, raw, out):
    S = meta["settings"]
    CONTENDER_FEATURES.update({c["name"]: c["features"] for c in meta["contenders"]})
    names = [c["name"] for c in meta["contenders"] if good(first(runs.get((scen, c["name"]))))]
    if not names:
        return None
    plan = meta["scenarios"][scen]
    png = os.path.join(out, "%s.png" % scen)
    gp = []
    gp.append('set terminal pngcairo size 1100,%d font "sans,10"' % (820 if scen == "down" else 520))
    gp.append('set output "%s"' % png)
    gp.append('set datafile separator "\\t"')
    gp.append('set datafile missing ""')
    gp.append('set key outside right top')
    gp.append('set grid')
    gp.append('set xrange [0:%d]' % int(plan["duration"]))
    evs = "; ".join("%s %s at %gs" % (e["kind"], ",".join(e.get("members", [])) or e.get("count", ""), e["t"])
                    for e in plan["events"])
    if scen == "down":
        gp.append("set multiplot layout 2,1")
    gp.append('set title "%s - imbalance (max/mean requests over usable members, 5 s window; first repetition)\\n%s"'
              % (SCEN_TITLE[scen], evs))
    gp.append('set ylabel "imbalance"')
    gp.append('set xlabel "seconds"')
    gp.append('set yrange [1:*]')
    for e in plan["events"]:
        gp.append('set arrow from %g, graph 0 to %g, graph 1 nohead dt 2 lc rgb "#888888"' % (e["t"], e["t"]))
    plots = ['%f title "target %.1f" with lines dt 3 lc rgb "black"' % (S["imbalance_target"], S["imbalance_target"])]
    for n in names:
        tsv = os.path.join(raw, "%s-%s-r%d.tsv" % (scen, n, first(runs[(scen, n)])["rep"]))
        plots.append('"%s" using "t":"imb5" with lines %s title "%s"' % (tsv, style(meta, n), n))
    gp.append("plot " + ", ".join(plots))
    if scen == "down":
        gp.append("unset arrow")
        gp.append('set title "returning member: share of new sessions (5 s window) vs the slow-start ramp\\n'
                  '(contenders with slow start: every repetition; the others: the first)"')
        gp.append('set ylabel "share of new sessions"')
        gp.append('set yrange [0:1]')
        plots = []
        series = []
        for n in names:
            ss = "slowstart" in CONTENDER_FEATURES.get(n, [])
            for r in (goods(runs[(scen, n)]) if ss else [first(runs[(scen, n)])]):
                series.append((n, r, ss))
        for n, r, ss in series:
            rows = r.get("return_series") or []
            if not rows:
                continue
            dat = os.path.join(raw, "return-%s-r%d.tsv" % (n, r["rep"]))
            with open(dat, "w") as fh:
                fh.write("t\tnew_share\treq_share\tramp\n")
                for x in rows:
                    fh.write("%d\t%s\t%s\t%s\n" % (x["t"] + 1, "" if x["new_share"] is None else "%.4f" % x["new_share"],
                                                   "" if x["req_share"] is None else "%.4f" % x["req_share"],
                                                   "%.4f" % x["ramp"]))
            if ss:
                plots.append('"%s" using "t":"ramp" with lines dt %d lw 1 lc rgb "black" title "slow-start ramp of %s r%d (%d s)"'
                             % (dat, r["rep"], n, r["rep"], S["slowstart"]))
            plots.append('"%s" using "t":"new_share" with lines %s title "%s%s"'
                         % (dat, style(meta, n) + (" dt %d" % r["rep"] if ss else ""), n,
                            (" r%d" % r["rep"]) if ss else ""))
        if plots:
            gp.append("plot " + ", ".join(plots))
        gp.append("unset multiplot")
    script = os.path.join(raw, "chart-%s.gp" % scen)
    with open(script, "w") as fh:
        fh.write("\n".join(gp) + "\n")
    r = subprocess.run(["gnuplot", script], capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write("report: gnuplot %s: %s\n" % (scen, r.stderr[-500:]))
        return None
    # paths in the committed script: relative to the raw dir
    with open(script, "w") as fh:
        fh.write("\n".join(gp).replace(raw + "/", "").replace(out + "/", "../") + "\n")
    return os.path.basename(png)


def main():
    raw, out = sys.argv[1], sys.argv[2]
    meta, runs = load(raw)
    S = meta["settings"]
    cs = meta["contenders"]
    scen = [s for s in SCEN_ORDER if s in meta["scenarios"]]
    L = []
    L.append("# Balance quality: results")
    L.append("")
    L.append("Generated by `bench/balance/run.sh` (`make bench-balance`) at %s UTC in %d s; do not edit by hand. "
             "How it works and how to read it: [README.md](README.md)." % (meta["stamp"], meta.get("elapsed_s", 0)))
    L.append("")
    if S["smoke"]:
        L.append("**Smoke run (BALANCE_SMOKE=1): shortened timeline and fewer clients; the numbers are not to be "
                 "quoted.**")
        L.append("")
    g = meta.get("git", {})
    L.append("Tree at commit `%s`; module built from the C sources of `%s` (%s)%s, `.so` sha256 %s. Machine: %s, "
             "%s cores, %s; %s; %s. Load average at start: %s; other suites running at start: %s." % (
                 g.get("commit"), g.get("c_commit", "?"), g.get("c_subject", ""),
                 ", with uncommitted C changes" if g.get("dirty_c") else "", g.get("module_sha256", "?"),
                 meta["machine"].get("cpu"), meta["machine"].get("cores"), meta["machine"].get("kernel"),
                 meta["machine"].get("apache2"), meta["machine"].get("haproxy"), " ".join(meta.get("load_start", [])),
                 meta.get("busy_at_start") or "none"))
    L.append("")
    for x in meta.get("reanalysed", []):
        L.append("Analysis redone from the stored windows at %s UTC (`balance.py reanalyse`, %d runs, no new load): %s"
                 % (x["stamp"], x["runs"], x["note"]))
        L.append("")
    unavailable = [c for c in cs if not c["available"]]
    if unavailable:
        L.append("Not available in this build (config refused; reported, not run):")
        L.append("")
        for c in unavailable:
            L.append("- `%s` (%s): %s" % (c["name"], c["label"], c["reason"]))
        L.append("")

    # ---- headline
    R = S.get("repeat", 1)
    L.append("## Headline")
    L.append("")
    if R > 1:
        L.append("Every scenario ran %d times (`BALANCE_REPEAT`); each figure is the median over the repetitions, "
                 "with the range (min-max) in brackets when they differ. A target is met when it is met in every "
                 "repetition." % R)
        L.append("")
    dist = []
    for (s_, n), rl in sorted(runs.items()):
        for r in rl:
            cpu = r.get("cpu") or {}
            if not cpu:
                continue
            grp = [rep_of(runs, s_, x, r["rep"]) or {} for x in [n] + r.get("parallel_with", [])]
            other = max(x.get("cpu", {}).get("machine_busy_pct", 0) for x in grp) - sum(
                x.get("cpu", {}).get("own_pct", 0) for x in grp)
            if other > DISTURBED_PCT:
                dist.append("%s/%s r%d (%.0f %% other)" % (s_, n, r["rep"], other))
    if dist:
        L.append("**Disturbed runs** (other work on the machine took more than %.0f %% of its CPU during the run; "
                 "see the table at the end): %s." % (DISTURBED_PCT, ", ".join(dist)))
        L.append("")
    L.append("| contender | scale-out: imbalance <= %.1f after (target) | moved while active (a/b/c) | errors (a/b/c) "
             "| return: max share of new sessions, first %d s (weight %s) | skew: mean imbalance | targets |"
             % (S["imbalance_target"], S["slowstart"], "0.25"))
    L.append("|---|---:|---:|---:|---:|---:|---|")
    for c in cs:
        n = c["name"]
        if not c["available"]:
            L.append("| `%s` | not available in this build | | | | | |" % n)
            continue
        so, dn, sk = runs.get(("scaleout", n)), runs.get(("down", n)), runs.get(("skew", n))
        tg = targets_for(meta, c, runs)
        met = sum(1 for t in tg if t[2] == "met")
        missed = [t for t in tg if t[2] == "MISSED"]
        appl = sum(1 for t in tg if t[2] in ("met", "MISSED"))
        if "rebalance" in c["features"]:
            dl = " (<= %d s)" % (S["idle"] + 10)
        elif "lifetimes" in c["features"]:
            dl = " (<= %d s)" % (S["maxidle"] + 10)
        else:
            dl = ""
        settle = "-"
        if goods(so):
            settle = field(so, "settle_s", never=">%s" % first(so).get("observed_s"))
            settle += " s"
        L.append("| `%s` | %s%s | %s | %s | %s | %s | %s |" % (
            n, settle, dl,
            " / ".join(field(x, "moved_active") for x in (so, dn, sk)),
            " / ".join(field(x, "errors") for x in (so, dn, sk)),
            field(dn, "new_share_max_ramp"),
            field(sk, "imb5_mean_after"),
            ("%d/%d met" % (met, appl)) + ("; **MISSED**: " + ", ".join(t[0] for t in missed) if missed else "")))
    L.append("")
    L.append("Imbalance: requests per member in a 5 s window, max/mean over the members usable at that time; "
             "\"after\" is the time from the event until it stays <= %.1f to the end of the run. Moved while "
             "active: a client's next request landed on another member although its previous one ended less than "
             "IDLE_SECONDS (%d s) before, for any reason but failover. Errors: non-2xx answers, timeouts and "
             "broken connections seen by the clients." % (S["imbalance_target"], S["idle"]))
    L.append("")

    # ---- targets
    L.append("## Targets, per contender")
    L.append("")
    L.append("| contender | target | verdict | numbers |")
    L.append("|---|---|---|---|")
    for c in cs:
        if not c["available"]:
            L.append("| `%s` | all | not available in this build | %s |" % (c["name"], c["reason"]))
            continue
        for t in targets_for(meta, c, runs):
            L.append("| `%s` | %s | %s | %s |" % (c["name"], t[1], "**%s**" % t[2] if t[2] == "MISSED" else t[2], t[3]))
    L.append("")

    # ---- the slow-start ramp, per repetition
    ramp_rows = []
    for c in cs:
        if not c["available"] or "slowstart" not in c["features"]:
            continue
        for r in runs.get(("down", c["name"])) or []:
            if not good(r):
                ramp_rows.append("| `%s` | r%d | %s | | | | | | |" % (c["name"], r["rep"], r.get("failed") or "not run"))
                continue
            ok, x = ramp_check(r)
            ramp_rows.append("| `%s` | r%d | %s | %s | %s | %s | %s / %s | %s | %s |" % (
                c["name"], r["rep"], f(r.get("back_seen_s")), f(x["anchor"]), x["windows_over"],
                f(x["new_share_max"]), x["got"], x["expected"], f(x["req_share_max"]),
                "met" if ok else "**MISSED**"))
    if ramp_rows:
        L.append("## The slow-start ramp for new sessions, per repetition")
        L.append("")
        L.append("Scenario (b), the returning member m2, `StickyRouteSlowStart %d`: per 5 s window of the ramp its "
                 "share of new sessions against the ramp's share f / (f + 3) (f: the part of the ramp elapsed at the "
                 "window's end, from where the module's slow-start gauge puts the start of the ramp that ran to completion: a ramp cut short because the member, still down, failed a request and went back into error does not count; the notes under (b) name such runs). Target: no window "
                 "(of >= 20 new sessions) above the ramp + 0.05, at least half the new sessions the ramp gives, "
                 "its share of requests at most 1.1 x the weight share." % S["slowstart"])
        L.append("")
        L.append("| contender | repetition | m2 answers again after restart (s) | its ramp starts at (s) "
                 "| windows above ramp + 0.05 | max share of new sessions during the ramp "
                 "| new sessions during the ramp: got / ramp | max share of requests | verdict |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
        L.extend(ramp_rows)
        L.append("")

    # ---- per scenario
    failed = False
    for s in scen:
        plan = meta["scenarios"][s]
        L.append("## %s" % SCEN_TITLE[s])
        L.append("")
        L.append("%s; %g s in all%s." % (plan["title"], plan["duration"],
                                         "; median (min-max) over %d repetitions" % R if R > 1 else ""))
        L.append("")
        png = chart(meta, runs, s, raw, out)
        if png:
            L.append("![%s](%s)" % (SCEN_TITLE[s], png))
            L.append("")
        if s == "scaleout":
            L.append("| contender | requests | errors | p50 / p99 ms | first answer of m3/m4 after enable (s) "
                     "| imbalance before | max after | last 10 s | reached <= %.1f after (s) | share m1/m2/m3/m4, last 10 s "
                     "| moved: failover / expired / rebalanced / other | moved while active |" % S["imbalance_target"])
            L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|")
        elif s == "down":
            L.append("| contender | requests | errors | errors in flight at the kill or in the 5 s after | p50 / p99 ms "
                     "| m2 answers again after restart (s) | its ramp starts at (s) | max share of new sessions, "
                     "ramp / after | new sessions during the ramp: got / ramp | max share of requests "
                     "| imbalance last 10 s | moved: failover / expired / rebalanced / other | moved while active |")
            L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        else:
            L.append("| contender | requests | errors | p50 / p99 ms | imbalance before | mean after (from +5 s) | max after "
                     "| last 10 s | in-flight imbalance last 10 s | surge clients per member | moved: failover / expired / "
                     "rebalanced / other | moved while active |")
            L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|")
        for c in cs:
            rl = runs.get((s, c["name"]))
            if rl is None:
                continue
            if not c["available"] or not any(r.get("available", True) for r in rl):
                L.append("| `%s` | not available in this build |" % c["name"] + " |" * 11)
                continue
            bad = [r for r in rl if r.get("failed")]
            if bad:
                failed = True
                L.append("| `%s` | FAILED: %s |" % (c["name"], "; ".join("r%d: %s" % (r["rep"], r["failed"]) for r in bad))
                         + " |" * 10)
            rs = goods(rl)
            if not rs:
                continue

            def F(key, nd=2, **kw):
                return field(rs, key, nd=nd, **kw)

            def sub(key, k2, nd=2):
                return agg([(r.get(key) or {}).get(k2) for r in rs], nd=nd)
            moves = " / ".join(sub("moved", k) for k in ("failover", "expired", "rebalanced", "other"))
            lat = "%s / %s" % (F("p50_ms", 1), F("p99_ms", 1))
            name = "`%s`%s" % (c["name"], " (%d of %d ran)" % (len(rs), len(rl)) if len(rs) < len(rl) else "")
            if s == "scaleout":
                L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    name, F("requests"), F("errors"), lat, F("first_new_member_s"),
                    F("imb5_before"), F("imb5_max_after"), F("imb5_last10"),
                    F("settle_s", never=">%s" % rs[0].get("observed_s")),
                    " / ".join(sub("share_last10", m) for m in ("m1", "m2", "m3", "m4")), moves, F("moved_active")))
            elif s == "down":
                L.append("| %s | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s | %s | %s | %s | %s |" % (
                    name, F("requests"), F("errors"), F("errors_down_window"), lat, F("back_seen_s"),
                    F("ramp_anchor_s"), F("new_share_max_ramp"), F("new_share_max_after"), F("ramp_new_got"),
                    F("ramp_new_expected", 1), F("req_share_max"), F("imb5_last10"), moves, F("moved_active")))
            else:
                L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    name, F("requests"), F("errors"), lat, F("imb5_before"), F("imb5_mean_after"),
                    F("imb5_max_after"), F("imb5_last10"), F("inflight_imb_last10"),
                    " / ".join(sub("heavy_placement", m) for m in ("m1", "m2", "m3", "m4")), moves, F("moved_active")))
        L.append("")
        notes = []
        for c in cs:
            for r in goods(runs.get((s, c["name"]))):
                tag = "`%s`%s" % (c["name"], " r%d" % r["rep"] if R > 1 else "")
                if r.get("moved_active_examples"):
                    ex = r["moved_active_examples"][:3]
                    notes.append("%s: moved while active, e.g. %s" % (tag, "; ".join(
                        "t=%.1fs %s #%d %s->%s after %.2f s idle (%s s since its previous request left; status %s)" % (
                            e["t"], e["session"], e["i"], e["frm"], e["to"], e["gap"],
                            ("%.2f" % e["gap_start"]) if "gap_start" in e else "?", e["status"]) for e in ex)))
                if r.get("error_kinds"):
                    notes.append("%s: errors by kind %s" % (tag, r["error_kinds"]))
                if r.get("decisions") and r is first(runs.get((s, c["name"]))):
                    notes.append("%s: decisions (X-Sticky-Status) %s" % (tag, dict(sorted(r["decisions"].items()))))
                if s == "down" and r.get("back_seen_s") is not None:
                    notes.append("%s: after the restart, m2's first answer at +%s s, its first new session at +%s s%s"
                                 % (tag, r["back_seen_s"], r.get("back_first_new_s"),
                                    "; the module's slow-start gauge puts the start of its ramp at +%s s"
                                    % r["gauge_ramp_start_s"] if r.get("gauge_ramp_start_s") is not None else "")
                                 + ("; an earlier ramp, from +%s s, was cut short (the gauge back at 0: a request "
                                    "failed on the member, still down, and put it in error again)"
                                    % r["gauge_first_ramp_start_s"] if r.get("gauge_ramp_restarts") else ""))
                bad_ev = [e for e in r.get("events", []) if e.get("note")]
                if bad_ev:
                    notes.append("%s: event notes %s" % (tag, "; ".join("%s: %s" % (e["kind"], e["note"]) for e in bad_ev)))
        if notes:
            L.append("Notes:")
            L.append("")
            for n in notes:
                L.append("- " + n)
            L.append("")

    # ---- settings
    L.append("## Settings of this run")
    L.append("")
    L.append("| setting | value |")
    L.append("|---|---|")
    for k in ("seed", "clients", "heavy", "skew_heavy", "idle", "factor", "maxidle", "maxlife", "slowstart",
              "ramp", "warm", "parallel", "repeat", "port_base"):
        L.append("| %s | %s |" % (k, S.get(k, 1 if k == "repeat" else "-")))
    L.append("")
    L.append("Runs, in order (contenders of a row ran side by side, each with its own members, proxy and "
             "client process, on the same timeline). CPU during the run, in %% of all %s cores: the machine's busy "
             "time (/proc/stat), the bench's own processes (clients, members, proxies), and the rest: other work "
             "on the machine plus kernel time not charged to a process; above %.0f %% the batch is flagged "
             "disturbed. Load average (1 min) before and after; other test, bench or container processes seen "
             "before and after:" % (meta["machine"].get("cores"), DISTURBED_PCT))
    L.append("")
    L.append("| repetition | scenario | contenders | machine busy % | this bench % | other % | load before / after | other suites running |")
    L.append("|---|---|---|---:|---:|---:|---:|---|")
    seen_b = set()
    for rep in range(1, R + 1):
        for s_ in scen:
            for c in cs:
                r = rep_of(runs, s_, c["name"], rep)
                if not r or not r.get("available", True) or "load_before" not in r:
                    continue
                key = (rep, s_, tuple(sorted([c["name"]] + r.get("parallel_with", []))))
                if key in seen_b:
                    continue
                seen_b.add(key)
                oth = "; ".join(x for x in (r.get("others_before", ""), r.get("others_after", "")) if x)
                oth = "none" if not oth else ", ".join(sorted({w.split(" ", 1)[1][:70] for w in oth.split("; ") if " " in w}))
                rs = [rep_of(runs, s_, n, rep) or {} for n in key[2]]
                busy = max([x.get("cpu", {}).get("machine_busy_pct", 0) for x in rs] or [0])
                own = sum(x.get("cpu", {}).get("own_pct", 0) for x in rs)
                other = max(0.0, busy - own)
                flag = " **(disturbed)**" if other > DISTURBED_PCT else ""
                L.append("| r%d | %s | %s | %.0f | %.0f | %.0f%s | %s / %s | %s |" % (
                    rep, s_, " + ".join(key[2]), busy, own, other, flag, r["load_before"], r.get("load_after", "-"), oth))
    L.append("")
    L.append("Raw data: `raw/SCENARIO-CONTENDER-rREP.tsv` (per 1-second window: requests, new sessions and mean "
             "in-flight per member, the module's status gauges when it has them, moves by reason, moves while "
             "active, errors, imbalance of the window and of the 5 s window), `raw/SCENARIO-CONTENDER-rREP.json` "
             "(the run's summary and events as executed), `raw/meta.json` (settings, machine, commit).")
    L.append("")
    with open(os.path.join(out, "results.md"), "w") as fh:
        fh.write("\n".join(L))
    # The headline table alone, for the top-level README.
    start = next(i for i in range(L.index("## Headline"), len(L)) if L[i].startswith("| contender"))
    end = L.index("", start)
    with open(os.path.join(raw, "headline.md"), "w") as fh:
        fh.write("\n".join(L[start:end]) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
