"""The reference stack, one process at a time, for the fault tests.

Same configuration as `make run` (scripts/run-stack.sh): the proxy config
rendered by templates/render-proxy-conf.sh (--main-conf/--module/--run-dir/
--log-dir), two static servers from templates/static-httpd.conf, two dynamic
servers from dynamic/server.js.  Unlike run-stack.sh, every member is
started here, in its own session (process group), so that a test can
SIGKILL one member with all its processes, `-k graceful` the proxy or
`-k graceful-stop` a static server while the others keep running.

Everything listens on 127.0.0.1, on ports in 24000-24999 only.
"""

import http.client
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
# re-exported: the tests use these names as fs.NAME
from httpretry import connection_dropped, may_retry  # noqa: E402,F401
from srtest import apache  # noqa: E402
from srtest.metrics import sample_map  # noqa: E402
from srtest.procs import pids_in_group, port_quiet  # noqa: E402,F401
from srtest.wait import wait_until  # noqa: E402,F401

REPO = pathlib.Path(__file__).resolve().parents[2]
RENDERER = REPO / "templates" / "render-proxy-conf.sh"
STATIC_CONF = REPO / "templates" / "static-httpd.conf"
DYNAMIC_JS = REPO / "dynamic" / "server.js"
MODULE = pathlib.Path(os.environ.get("STICKY_ROUTE_MODULE",
                                     REPO / ".libs" / "mod_sticky_route.so"))
PORT_MIN, PORT_MAX = 24000, 24999

ROUTES = {"static-1": "s1", "static-2": "s2", "dynamic-1": "d1", "dynamic-2": "d2"}
NAME_OF_ROUTE = {v: k for k, v in ROUTES.items()}
START_TIMEOUT = 20


def port_base():
    """FAULT_TEST_PORT_BASE (default 24100); the tests use base..base+19."""
    base = int(os.environ.get("FAULT_TEST_PORT_BASE", "24100"))
    check_port_range(base, base + 19)
    return base


def check_port_range(*ports):
    bad = [p for p in ports if not PORT_MIN <= p <= PORT_MAX]
    if bad:
        raise ValueError("ports %s outside %d-%d" % (bad, PORT_MIN, PORT_MAX))


def http_get(port, path="/", headers=None, source=None, timeout=10):
    """One GET on a fresh connection; source: local address to bind first.
    Returns (status, headers list, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# Prometheus text of the status endpoint

def parse_metrics(text):
    """{(metric, balancer, route, status-or-None): value} (srtest.metrics)"""
    return sample_map(text)


def requests_by_route_status(metrics, balancer):
    return {(route, status): v for (name, b, route, status), v in metrics.items()
            if name == "sticky_route_requests_total" and b == balancer}


def member_up(metrics, balancer):
    return {route: v for (name, b, route, _), v in metrics.items()
            if name == "sticky_route_member_up" and b == balancer}


# ---------------------------------------------------------------------------
# processes

class Service:
    """One member of the stack: a process started in its own session."""

    def __init__(self, name, port, argv, env, log):
        self.name = name
        self.port = port
        self.argv = argv
        self.env = env
        self.log = log
        self.proc = None

    def start(self):
        check_port_range(self.port)
        if not port_quiet(self.port):
            raise RuntimeError("%s: port %d already in use" % (self.name, self.port))
        self.proc = self._spawn()
        return self

    def _spawn(self):
        with open(self.log, "ab") as out:
            return subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, path, timeout=START_TIMEOUT):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited (rc %s) while starting:\n%s" % (
                    self.name, self.proc.returncode, self.log_tail()))
            try:
                status, _, _ = http_get(self.port, path, timeout=2)
                return status == 200
            except OSError:
                return False
        wait_until(ready, timeout, 0.1, "%s to answer %s" % (self.name, path))
        return self

    def log_tail(self, n=3000):
        try:
            return pathlib.Path(self.log).read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def kill(self):
        """SIGKILL the whole process group (parent and every child) at once."""
        if self.proc is None:
            return []
        pgid = self.proc.pid
        victims = pids_in_group(pgid)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        wait_until(lambda: not pids_in_group(pgid), 10, what="%s: all processes gone" % self.name)
        return victims

    def terminate(self, timeout=15):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)   # leftovers of the group
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


class Apache(Service):
    """apache2 started as every suite starts it (srtest.apache.spawn: -k start
    -D NO_DETACH, the parent our child), in its own session; -k commands run
    with the same environment."""

    def __init__(self, name, port, conf, env, log, error_log):
        super().__init__(name, port, apache.command(conf), env, log)
        self.conf = conf
        self.error_log = error_log

    def _spawn(self):
        return apache.spawn(self.conf, self.log, env=self.env, new_session=True)

    def signal_k(self, what):
        try:
            apache.ctl(self.conf, what, env=self.env)
        except RuntimeError as e:
            raise RuntimeError("%s: %s" % (self.name, e)) from None

    def log_tail(self, n=3000):
        text = ""
        for p in (self.log, self.error_log):
            try:
                text += "== %s\n%s\n" % (p, pathlib.Path(p).read_text(errors="replace")[-n:])
            except OSError:
                pass
        return text

    def error_log_text(self):
        try:
            return pathlib.Path(self.error_log).read_text(errors="replace")
        except OSError:
            return ""


def render_proxy(run_dir, port, static_ports, dynamic_ports, extra_env=None):
    """templates/render-proxy-conf.sh exactly as run-stack.sh calls it.
    Returns (main conf path, log dir)."""
    proxy_dir = run_dir / "proxy"
    log_dir = run_dir / "logs"
    proxy_dir.mkdir(exist_ok=True)
    log_dir.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not re.match(r"^(STATIC|DYNAMIC)_APP(_[0-9]+)?$|^STICKY_ROUTE_SECRET|^ADMIN_ALLOW$"
                           r"|^SERVER_NAME$|^API_PREFIX$|^LISTEN_PORT$", k)}
    env.update({
        "STATIC_APP": ",".join("127.0.0.1:%d=%s" % (p, r) for p, r in static_ports),
        "DYNAMIC_APP": ",".join("127.0.0.1:%d=%s" % (p, r) for p, r in dynamic_ports),
        "LISTEN_PORT": str(port), "API_PREFIX": "/api/",
    })
    env.update(extra_env or {})
    res = subprocess.run(["bash", str(RENDERER), "--main-conf", str(proxy_dir / "httpd.conf"),
                          "--module", str(MODULE), "--run-dir", str(proxy_dir),
                          "--log-dir", str(log_dir), str(proxy_dir / "vhost.conf")],
                         env=env, capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise RuntimeError("render-proxy-conf.sh failed (%d): %s" % (res.returncode, res.stderr))
    rc, out = apache.configtest(proxy_dir / "httpd.conf")
    if rc != 0:
        raise RuntimeError("apache2 -t failed: %s" % out)
    return proxy_dir / "httpd.conf", log_dir


def make_proxy(run_dir, port, static_ports, dynamic_ports, extra_env=None):
    conf, log_dir = render_proxy(run_dir, port, static_ports, dynamic_ports, extra_env)
    return Apache("proxy", port, conf, dict(os.environ), str(log_dir / "proxy.out"),
                  str(log_dir / "proxy-error.log"))


def site_root(run_dir):
    """site/, or a world-readable copy when www-data cannot read the checkout."""
    site = REPO / "site"
    if os.geteuid() == 0:
        ok = subprocess.run(["runuser", "-u", "www-data", "--", "test", "-r",
                             str(site / "index.html")], capture_output=True).returncode == 0
        if not ok:
            copy = run_dir / "site"
            if not copy.exists():
                shutil.copytree(site, copy)
                subprocess.run(["chmod", "-R", "a+rX", str(copy)], check=True)
            return copy
    return site


def make_static(run_dir, name, port):
    d = run_dir / name
    d.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(d, "www-data", "www-data")
    log_dir = run_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    env = dict(os.environ, INSTANCE_NAME=name, STATIC_LISTEN="127.0.0.1:%d" % port,
               SITE_ROOT=str(site_root(run_dir)), STATIC_RUN_DIR=str(d),
               STATIC_ERROR_LOG=str(log_dir / ("%s-error.log" % name)),
               STATIC_ACCESS_LOG=str(log_dir / ("%s-access.log" % name)))
    return Apache(name, port, STATIC_CONF, env, str(log_dir / ("%s.out" % name)),
                  str(log_dir / ("%s-error.log" % name)))


def make_dynamic(run_dir, name, port):
    log_dir = run_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    env = dict(os.environ, INSTANCE_NAME=name, PORT=str(port), HOST="127.0.0.1",
               NODE_PATH="/usr/share/nodejs", NODE_ENV="production")
    return Service(name, port, ["node", str(DYNAMIC_JS)], env, str(log_dir / ("%s.log" % name)))
