"""Processes and ports of the test suites: /proc, reaping, port probes."""

import os
import random
import socket
import subprocess
import threading


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


def children_of(pid):
    """PIDs whose parent is pid (from /proc)."""
    return [p for p, rest in proc_stats() if len(rest) > 1 and int(rest[1]) == pid]


def pids_in_group(pgid):
    """Live (non-zombie) processes whose process group is pgid."""
    return [p for p, rest in proc_stats()
            if len(rest) > 2 and int(rest[2]) == pgid and rest[0] != "Z"]


def reap(pid):
    """Collect the exit status of pid if it is our (possibly adopted) child."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def reap_all():
    """Collect every exited child (call only when no subprocess.run is busy)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def become_subreaper():
    """Orphaned apache2 processes (e.g. the children of a SIGKILLed parent)
    are reparented to us instead of to a pid 1 that may never reap them."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_CHILD_SUBREAPER = 36
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except Exception:
        pass


def pid_alive(pid):
    reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        state = stat[stat.rfind(")") + 2:].split()[0]
        if state != "Z":
            return True
        # A zombie thread-group leader whose other threads are still exiting
        # still holds the process's sockets.
        return len(os.listdir("/proc/%d/task" % pid)) > 1
    except OSError:
        return False


# --------------------------------------------------------------------------
# ports

def _tcp_socket_does(action):
    """action(a new TCP socket) succeeds (no OSError); the socket is closed."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        action(s)
        return True
    except OSError:
        return False
    finally:
        s.close()


def port_bindable(port, host="127.0.0.1"):
    """host:port can be bound now."""
    return _tcp_socket_does(lambda s: s.bind((host, port)))


def _connect(s, host, port):
    s.settimeout(1)
    s.connect((host, port))


def port_quiet(port, host="127.0.0.1"):
    """Nothing accepts TCP connections on host:port (a usable dead port)."""
    return not _tcp_socket_does(lambda s: _connect(s, host, port))


def listening(port, check=True):
    """Some socket listens on TCP port `port` (any address), says ss."""
    out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True,
                         text=True, check=check).stdout
    return bool(out.strip())


class PortPool:
    """The ports of one suite's range: take() returns one that is free now
    and was not handed out before in this run. Also used for 'dead'
    members: a port nobody listens on."""

    def __init__(self, low, high):
        self.low, self.high = low, high
        self._lock = threading.Lock()
        self._taken = set()

    def take(self):
        with self._lock:
            candidates = list(range(self.low, self.high + 1))
            random.shuffle(candidates)
            for port in candidates:
                if port in self._taken:
                    continue
                if port_bindable(port) and port_quiet(port):
                    self._taken.add(port)
                    return port
        raise RuntimeError("no free port in %d-%d" % (self.low, self.high))
