"""Fixtures of the reference stack tests (HTTP level, real module, 127.0.0.1).

Ports: STACK_TEST_PORT_BASE (default 21100) and up, inside 21000-21999:
  base+0..4    the shared stack (proxy, static-1, static-2, dynamic-1, dynamic-2)
  base+10..14  start/stop tests
  base+20..24  port-taken test
  base+30      a proxy alone (renderer tests)
  base+40..41  dynamic server tests
  base+50..53  pebble and pebble-challtestsrv (test_tls_stack.py)
  base+60..65, base+70..75  HTTPS stacks (PORT..PORT+4, TLS_PORT=PORT+5)
"""
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))     # the shared tooling (srtest, acmelib)
# re-exported: the tests import these names from conftest
from srtest.procs import listening  # noqa: E402,F401
from srtest.wait import wait_until  # noqa: E402,F401
RUN_STACK = REPO / "scripts" / "run-stack.sh"
RENDERER = REPO / "templates" / "render-proxy-conf.sh"
MODULE = pathlib.Path(os.environ.get("STICKY_ROUTE_MODULE",
                                     REPO / ".libs" / "mod_sticky_route.so"))
PORT_BASE = int(os.environ.get("STACK_TEST_PORT_BASE", "21100"))
NAMES = ("proxy", "static-1", "static-2", "dynamic-1", "dynamic-2")
READY_LINE = "Press Ctrl-C to stop."


def stack_ports(base):
    return {name: base + i for i, name in enumerate(NAMES)}


def run_dir_of(port):
    if os.geteuid() == 0:
        return pathlib.Path(f"/tmp/sticky-route-run-{port}")
    return pathlib.Path(os.environ.get("XDG_RUNTIME_DIR", "/tmp")) / f"sticky-route-run-{port}"


def _default_signals():
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)

class Stack:
    """scripts/run-stack.sh as a child process, its output collected."""

    def __init__(self, port, extra_env=None):
        self.port = port
        self.ports = stack_ports(port)
        self.url = f"http://127.0.0.1:{port}/"
        self.run_dir = run_dir_of(port)
        env = dict(os.environ, PORT=str(port))
        env.update(extra_env or {})
        # as from a terminal: SIGINT and SIGQUIT at their defaults (a suite
        # started in the background by a non-interactive shell inherits them
        # ignored, and bash cannot trap a signal ignored at its start)
        self.proc = subprocess.Popen(["bash", str(RUN_STACK)], cwd=REPO, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, preexec_fn=_default_signals)
        self.lines = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            if READY_LINE in line:
                self._ready.set()

    @property
    def output(self):
        return "".join(self.lines)

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready.wait(0.1):
                return
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"run-stack.sh exited ({self.proc.returncode}) before "
                                     f"the stack was up:\n{self.output}")
        raise AssertionError(f"stack not up after {timeout}s:\n{self.output}")

    def stop(self, sig=signal.SIGINT, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(f"run-stack.sh did not stop {timeout}s after {sig!r}:\n"
                                     f"{self.output}")
        self._reader.join(5)
        return self.proc.returncode


@pytest.fixture(scope="session")
def module_so():
    if not MODULE.is_file():
        pytest.fail(f"{MODULE} not built: run make (the stack tests need the real module)")
    return MODULE


@pytest.fixture(scope="session")
def stack(module_so):
    """The reference stack, started once for the tests that only send requests."""
    s = Stack(PORT_BASE)
    try:
        s.wait_ready()
        yield s
    finally:
        rc = s.stop()
        assert rc == 0, f"run-stack.sh exit {rc} on SIGINT:\n{s.output}"


@pytest.fixture
def fresh():
    """A client without cookies."""
    with requests.Session() as session:
        yield session
