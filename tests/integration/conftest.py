"""Fixtures for the integration suite: real apache2 backends and proxies.

Run: /usr/bin/python3 -m pytest -q tests/integration
Env: SR_MODULE=/abs/mod_sticky_route.so (default: <repo>/.libs/...),
     SR_KEEP=1 keeps the run directory (/tmp/sr-itest-*) even on success.
"""

import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import Backend, Httpd, Proxy  # noqa: E402

harness.become_subreaper()

_RUN = {"dir": None}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: runs for minutes (still run by default; -m 'not slow' leaves it out)")


def _run_dir():
    if _RUN["dir"] is None:
        d = tempfile.mkdtemp(prefix="sr-itest-", dir="/tmp")
        os.chmod(d, 0o755)
        _RUN["dir"] = Path(d)
    return _RUN["dir"]


def pytest_sessionfinish(session, exitstatus):
    harness.reap_all()
    d = _RUN["dir"]
    if d is None:
        return
    if exitstatus == 0 and not os.environ.get("SR_KEEP"):
        harness.cleanup_dir(d)
    else:
        sys.stderr.write("\nintegration run directory kept: %s\n" % d)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        # Attach the logs of every proxy (and backend) this test started.
        for srv in list(Httpd.registry):
            if srv.kind == "proxy":
                rep.sections.append(("%s %s error_log (tail)" % (srv.kind, srv.name),
                                     srv.error_log[-4000:]))
                rep.sections.append(("%s %s access_log (tail)" % (srv.kind, srv.name),
                                     srv.access_log[-2500:]))
            elif srv.error_log.strip():
                rep.sections.append(("%s %s error_log (tail)" % (srv.kind, srv.name),
                                     srv.error_log[-1500:]))


def require_module():
    if not harness.MODULE_SO.exists():
        pytest.fail("module not built: %s is missing (run `make` in the repository)"
                    % harness.MODULE_SO, pytrace=False)


@pytest.fixture(scope="session")
def run_dir():
    return _run_dir()


@pytest.fixture(scope="session")
def backends(run_dir):
    """Four long-lived backends shared by the tests that never stop them."""
    started = []
    try:
        for name in ("alpha", "bravo", "charlie", "delta"):
            b = Backend(run_dir / "shared", name)
            Httpd.registry.remove(b)
            b.start()
            started.append(b)
        yield {b.name: b for b in started}
    finally:
        for b in started:
            b.stop()


@pytest.fixture(autouse=True)
def _per_test_servers():
    """Stops every server a test started, also when the test fails."""
    Httpd.registry.clear()
    yield
    crashed = [srv for srv in Httpd.registry if srv.kind == "proxy" and harness.crash_lines(srv)]
    for srv in reversed(list(Httpd.registry)):
        try:
            srv.stop()
        except Exception as e:   # keep stopping the others
            sys.stderr.write("stopping %s %s failed: %s\n" % (srv.kind, srv.name, e))
    if crashed:
        pytest.fail("proxy child process crashed:\n" + "\n".join(
            "%s: %s" % (srv.name, "\n".join(harness.crash_lines(srv))) for srv in crashed),
            pytrace=False)


_test_counter = {"n": 0}


@pytest.fixture
def test_dir(run_dir, request):
    # Named after the test function only (never its parameters, which may
    # contain directive names that error-message assertions look for).
    _test_counter["n"] += 1
    d = run_dir / ("%03d-%s" % (_test_counter["n"], request.node.originalname[:60]))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def make_backend(test_dir):
    """Backends owned by one test (e.g. to be killed)."""
    def make(name):
        return Backend(test_dir, name).start()
    return make


@pytest.fixture
def make_proxy(test_dir):
    """make_proxy(body, **kw) -> a started Proxy with mod_sticky_route."""
    def make(body, name="proxy", start=True, load_module=True, **kw):
        if load_module:
            require_module()
        p = Proxy(test_dir, name, body, load_module=load_module, **kw)
        if start:
            p.start()
        return p
    return make


@pytest.fixture
def configtest(test_dir):
    counter = {"n": 0}

    def run(body, load_module=True, **kw):
        if load_module:
            require_module()
        counter["n"] += 1
        return harness.configtest(test_dir, "t%d" % counter["n"], body,
                                  load_module=load_module, **kw)
    return run
