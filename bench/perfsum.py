#!/usr/bin/python3
"""Summarise a system-wide `perf record -a -g` of one bench case.

usage: perf script -F comm,tid,ip,sym,dso -i perf.data | perfsum.py TIDS.txt > profile.json

TIDS.txt: lines "ROLE TID" (ROLE = proxy | backend). Threads not listed count as
"wrk" when their command is wrk, "idle" for the idle task, else "other" (work on
the machine that is not part of the bench).

The JSON gives: samples per role (where the machine's CPU went), and for the
proxy: samples per shared object (user space) / kernel, kernel samples per
system call (or interrupt, page fault), and the top symbols.
"""
import collections
import json
import re
import sys

roles = {}
with open(sys.argv[1]) as f:
    for line in f:
        parts = line.split()
        if len(parts) == 2:
            roles[parts[1]] = parts[0]

FRAME = re.compile(r"^\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")
KERNEL = "[kernel.kallsyms]"

role_n = collections.Counter()
dso_n = collections.Counter()
sym_n = collections.Counter()
sys_n = collections.Counter()
total = 0
proxy_total = 0


def short_dso(d):
    return d.rsplit("/", 1)[-1]


def clean(sym):
    """libc's internal names to the call a reader knows (__GI___writev -> writev)."""
    sym = re.sub(r"^(__GI_|__libc_|__)+", "", sym)
    return re.sub(r"@@?GLIBC.*$", "", sym)


def kernel_reason(frames):
    """Name what brought a kernel-mode sample: the system call (by the user-space
    function that made it, else the kernel function under do_syscall_64), an
    interrupt, a page fault."""
    syms = [s for _, s, _ in frames]
    if "entry_SYSCALL_64_after_hwframe" in syms:
        i = syms.index("entry_SYSCALL_64_after_hwframe")
        user = None
        if i + 1 < len(frames) and frames[i + 1][2] != KERNEL and frames[i + 1][1] != "[unknown]":
            user = clean(frames[i + 1][1])
        kfn = syms[i - 2] if i >= 2 and syms[i - 1] == "do_syscall_64" else None
        label = "syscall " + (user or kfn or "?")
        if "exit_to_user_mode_loop" in syms:
            label += ", rescheduled on return"
        return label
    if any("page_fault" in s for s in syms):
        return "page fault"
    if any(s.startswith("asm_") for s in syms):
        return "interrupt"
    return "kernel, other"


def flush(comm, tid, frames):
    global total, proxy_total
    if comm is None:
        return
    total += 1
    role = roles.get(tid)
    if role is None:
        role = "wrk" if comm == "wrk" else ("idle" if comm == "swapper" or tid == "0" else "other")
    role_n[role] += 1
    if role != "proxy" or not frames:
        return
    proxy_total += 1
    _, sym, dso = frames[0]
    if dso == KERNEL:
        dso_n["kernel"] += 1
        sys_n[kernel_reason(frames)] += 1
        sym_n["[k] " + sym] += 1
    else:
        d = short_dso(dso)
        dso_n[d] += 1
        sym_n["%s: %s" % (d, sym)] += 1


comm = tid = None
frames = []
for line in sys.stdin:
    if not line.strip():
        continue
    if not line[0].isspace():
        flush(comm, tid, frames)
        parts = line.split()
        # "comm tid" (comm may contain spaces: tid is the last field)
        tid = parts[-1] if parts else None
        comm = " ".join(parts[:-1]) if len(parts) > 1 else (parts[0] if parts else None)
        frames = []
        continue
    m = FRAME.match(line)
    if m:
        frames.append((m.group(1), m.group(2), m.group(3)))
flush(comm, tid, frames)

json.dump({
    "samples": total,
    "roles": role_n.most_common(),
    "proxy_samples": proxy_total,
    "proxy_dso": dso_n.most_common(),
    "proxy_kernel_by_entry": sys_n.most_common(20),
    "proxy_symbols": sym_n.most_common(40),
}, sys.stdout, indent=1)
sys.stdout.write("\n")
