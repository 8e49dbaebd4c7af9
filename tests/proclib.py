"""Small helpers shared by the test suites (tests/integration, tests/faults)."""

import os
import time


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Calls pred until it returns something true (returned) or timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def proc_stats():
    """(pid, fields) for every process: fields of /proc/PID/stat after the
    command name (state, ppid, pgrp, ...); the name may hold spaces and
    parentheses, so the split starts after its last ')'."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        yield int(entry), stat[stat.rfind(")") + 2:].split()
