"""scripts/run-stack.sh (make run): start, stop on SIGINT/SIGTERM, rerun, port taken."""
import os
import shutil
import signal
import socket
import subprocess

import pytest
import requests

from conftest import PORT_BASE, RUN_STACK, REPO, Stack, listening, run_dir_of, stack_ports

LIFECYCLE_PORT = PORT_BASE + 10
TAKEN_PORT = PORT_BASE + 20


def pids_of_run(stack):
    """Every pid file of the running stack -> pid (httpd parents and node servers)."""
    files = sorted(stack.run_dir.rglob("*.pid"))
    return {str(f.relative_to(stack.run_dir)): int(f.read_text().strip()) for f in files}


def process_groups_alive(pgids):
    alive = []
    for pgid in pgids:
        try:
            os.killpg(pgid, 0)
            alive.append(pgid)
        except ProcessLookupError:
            pass
    return alive


def assert_nothing_left(stack, pids):
    for name, port in stack.ports.items():
        assert not listening(port), f"{name} still listens on {port}"
    assert list(stack.run_dir.rglob("*.pid")) == [], "stale pid file"
    # Each service ran in its own process group (setsid): none of them, nor
    # any child (httpd workers), is left.
    assert process_groups_alive(pids.values()) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_every_process_and_an_immediate_rerun_works(module_so, sig):
    for port in stack_ports(LIFECYCLE_PORT).values():
        assert not listening(port), f"port {port} busy before the test"
    first = Stack(LIFECYCLE_PORT)
    try:
        first.wait_ready()
        pids = pids_of_run(first)
        assert sorted(pids) == ["dynamic-1.pid", "dynamic-2.pid", "proxy/proxy.pid",
                                "static-1/httpd.pid", "static-2/httpd.pid"]
        assert requests.get(first.url, timeout=5).status_code == 200
        out = first.output
        assert f"http://127.0.0.1:{LIFECYCLE_PORT}/" in out
        for name, port in first.ports.items():
            assert f"127.0.0.1:{port}" in out, f"{name} not listed"
    finally:
        rc = first.stop(sig)
    assert rc == 0, first.output
    assert "stopping" in first.output
    assert_nothing_left(first, pids)

    again = Stack(LIFECYCLE_PORT)
    try:
        again.wait_ready(timeout=30)
        r = requests.get(again.url + "api/healthz", timeout=5)
        assert r.status_code == 200
        pids = pids_of_run(again)
    finally:
        rc = again.stop(signal.SIGINT)
    assert rc == 0, again.output
    assert_nothing_left(again, pids)


def test_taken_port_is_named_and_nothing_starts(module_so):
    ports = stack_ports(TAKEN_PORT)
    run_dir = run_dir_of(TAKEN_PORT)
    shutil.rmtree(run_dir, ignore_errors=True)
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", ports["static-2"]))
    blocker.listen()
    try:
        r = subprocess.run(["bash", str(RUN_STACK)], cwd=REPO, capture_output=True, text=True,
                           env=dict(os.environ, PORT=str(TAKEN_PORT)), timeout=30)
        others = [p for n, p in ports.items() if n != "static-2"]
        listening_after = [p for p in others if listening(p)]
    finally:
        blocker.close()
    assert r.returncode != 0
    assert f"port {ports['static-2']} (for static-2) is already in use" in r.stderr, r.stderr
    assert "nothing started" in r.stderr
    assert listening_after == []
    assert not run_dir.exists(), "the run directory was created: something half-started"


def test_bad_port_value_is_refused():
    r = subprocess.run(["bash", str(RUN_STACK)], cwd=REPO, capture_output=True, text=True,
                       env=dict(os.environ, PORT="80a"), timeout=30)
    assert r.returncode != 0
    assert "PORT='80a' is invalid" in r.stderr, r.stderr


def test_a_service_that_dies_takes_the_stack_down_cleanly(module_so):
    s = Stack(LIFECYCLE_PORT)
    try:
        s.wait_ready()
        pids = pids_of_run(s)
        os.kill(pids["dynamic-1.pid"], signal.SIGKILL)
        rc = s.proc.wait(30)
    finally:
        s.stop()
    assert rc == 1, s.output
    assert f"dynamic-1 (pid {pids['dynamic-1.pid']}) exited on its own" in s.output
    assert_nothing_left(s, pids)
