"""apache2 for tests: the one way to start it, signal it and check a config.

Every suite starts apache2 as `apache2 -f CONF -k start -D NO_DETACH`
(spawn): NO_DETACH keeps the parent our child (no fork: it is reaped, its
pid is the Popen's) while it still calls setsid, so it leads a process
group of its own; its output goes to a log file that is kept. `-k` commands
(graceful, stop, ...) and `-t` go through ctl and configtest.

Httpd is one instance in its own directory (ServerRoot, PidFile, ErrorLog,
Mutex, DefaultRuntimeDir): start waits for the pid file, the port and the
child processes; stop is `-k stop` then a wait; kill is SIGKILL to all.
"""

import os
import signal
import string
import subprocess
from pathlib import Path

from .procs import children_of, pid_alive, port_quiet
from .wait import wait_until

APACHE2 = os.environ.get("SR_APACHE2", "/usr/sbin/apache2")
MODULES_DIR = "/usr/lib/apache2/modules"


def command(conf, *args):
    """apache2 -f CONF ARGS..."""
    return [APACHE2, "-f", str(conf)] + [str(a) for a in args]


def spawn(conf, out, env=None, wrapper=(), new_session=False, append=True):
    """Starts `apache2 -f CONF -k start -D NO_DETACH` (behind the command
    prefix `wrapper`, e.g. unshare), its stdout and stderr written to the
    file `out` (appended, or from its start when append is false); returns
    the Popen. new_session: setsid before exec (the group can then be killed
    at once even before apache2's own setsid)."""
    with open(out, "ab" if append else "wb") as f:
        return subprocess.Popen(list(wrapper) + command(conf, "-k", "start", "-D", "NO_DETACH"),
                                env=env, stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=new_session)


def ctl(conf, what, env=None, timeout=30, check=True):
    """`apache2 -f CONF -k WHAT` (graceful, graceful-stop, restart, stop).
    check: a non-zero exit raises RuntimeError with its output.
    Returns the CompletedProcess."""
    res = subprocess.run(command(conf, "-k", what), env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise RuntimeError("apache2 -f %s -k %s failed (rc %d): %s%s" % (
            conf, what, res.returncode, res.stdout, res.stderr))
    return res


def wait_parent(proc, timeout=10):
    """Reaps the Popen of spawn once the parent has stopped: waits `timeout`
    seconds, then SIGKILL and waits again."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def configtest(conf, wrapper=(), env=None, timeout=30):
    """`apache2 -t -f CONF` (behind `wrapper`): (returncode, stdout+stderr)."""
    res = subprocess.run(list(wrapper) + [APACHE2, "-t", "-f", str(conf)], env=env,
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return res.returncode, (res.stdout + res.stderr).decode(errors="replace")


def user_lines():
    if os.geteuid() == 0:
        return "User www-data\nGroup www-data"
    return ""


class Httpd:
    """One apache2 instance with its own directory."""

    kind = "httpd"
    registry = []          # every server started during the current test (PyBackend too)
    templates = None       # the directory render() reads (a suite's subclass sets it)
    ports = None           # a PortPool when port is not given (a suite's subclass sets it)

    def __init__(self, base_dir, name, port=None):
        self.name = name
        self.port = port or self.ports.take()
        self.root = Path(base_dir) / ("%s-%s-%d" % (self.kind, name, self.port))
        self.root.mkdir(parents=True)
        for sub in ("htdocs", "run", "mutex"):
            (self.root / sub).mkdir()
        os.chmod(self.root, 0o755)
        os.chmod(self.root / "htdocs", 0o755)
        os.chmod(self.root / "run", 0o777)
        os.chmod(self.root / "mutex", 0o777)
        self.conf = self.root / "httpd.conf"
        self.pid = None
        self.proc = None
        self.wrapper = []       # a command prefix for apache2 (e.g. unshare)
        self.expected_children = 1
        Httpd.registry.append(self)

    # -- configuration --------------------------------------------------
    def render(self, template, **values):
        text = (Path(self.templates) / template).read_text()
        values.setdefault("root", str(self.root))
        values.setdefault("port", str(self.port))
        values.setdefault("user_lines", user_lines())
        return string.Template(text).substitute(values)

    def write_conf(self, text):
        self.conf.write_text(text)

    # -- lifecycle ------------------------------------------------------
    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def error_log(self):
        p = self.root / "error.log"
        return p.read_text(errors="replace") if p.exists() else ""

    @property
    def access_log(self):
        p = self.root / "access.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def _read_pid(self):
        try:
            return int((self.root / "httpd.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def start(self, timeout=15):
        """`apache2 -f conf -k start`; NO_DETACH keeps the parent our child so
        that it is reaped (it still gets its own session/process group)."""
        out = self.root / "start.out"
        self.proc = spawn(self.conf, out, wrapper=self.wrapper, append=False)

        def started():
            if self.proc.poll() is not None:
                raise RuntimeError("%s %s failed to start (rc=%d):\n%s\n%s" % (
                    self.kind, self.name, self.proc.returncode,
                    out.read_text(errors="replace"), self.error_log[-3000:]))
            return self._read_pid()
        try:
            self.pid = wait_until(started, timeout, what="%s pid file" % self.name)
            wait_until(lambda: not port_quiet(self.port), timeout,
                       what="%s listening on %d" % (self.name, self.port))
            wait_until(lambda: len(children_of(self.pid)) >= self.expected_children, timeout,
                       what="%s: %d child processes" % (self.name, self.expected_children))
        except TimeoutError as e:
            self.stop()
            raise RuntimeError("%s: %s\nstart output: %s\nerror_log:\n%s" % (
                self.name, e, out.read_text(errors="replace"), self.error_log[-3000:]))
        return self

    def child_pids(self):
        return children_of(self.pid) if self.pid else []

    def all_pids(self):
        if not self.pid:
            return []
        return [self.pid] + self.child_pids()

    def running(self):
        return bool(self.pid) and pid_alive(self.pid)

    def stop(self, timeout=15):
        """`-k stop`, then wait until the parent and its children are gone;
        SIGKILL whatever is left after the timeout."""
        pid = self.pid or self._read_pid()
        if not pid:
            return
        pids = [pid] + children_of(pid)
        if pid_alive(pid):
            ctl(self.conf, "stop", timeout=timeout, check=False)
        try:
            wait_until(lambda: not any(pid_alive(p) for p in pids), timeout,
                       what="%s to stop" % self.name)
        except TimeoutError:
            self.kill()
        self._wait_proc()
        self.pid = None

    def _wait_proc(self):
        if self.proc is not None:
            wait_parent(self.proc)

    def kill(self):
        """SIGKILL the parent and every child at once."""
        pid = self.pid or self._read_pid()
        if not pid:
            return
        pids = [pid] + children_of(pid)
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            pgid = None
        if pgid == pid:           # apache2 -k start detaches: own process group
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not any(pid_alive(p) for p in pids), 10,
                   what="%s to die" % self.name)
        wait_until(lambda: port_quiet(self.port), 10,
                   what="%s port %d to close" % (self.name, self.port))
        self._wait_proc()
        self.pid = None
