"""Fault tests: the reference stack under load while members die, restart
and the proxy reloads; who may reach the admin endpoints.

Run: /usr/bin/python3 -m pytest -q tests/faults   (make fault-test)
Env: FAULT_TEST_PORT_BASE (default 24100; the tests use base..base+19, all
     inside 24000-24999), STICKY_ROUTE_MODULE (default .libs/mod_sticky_route.so),
     SR_KEEP=1 keeps the run directory (/tmp/sr-faults-*; kept anyway when a
     test fails: configs, logs of every member).
The per-phase table of the load test is printed at the end of the run and
written to /tmp/sr-fault-test-report.txt (nothing is written in the checkout).
"""

import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import faultstack  # noqa: E402

REPORT_FILE = Path("/tmp/sr-fault-test-report.txt")
_STATE = {"dir": None, "reports": []}


def add_report(title, text):
    """A block for the end-of-run summary (and REPORT_FILE)."""
    _STATE["reports"].append((title, text))
    with open(REPORT_FILE, "a" if len(_STATE["reports"]) > 1 else "w") as f:
        f.write("== %s\n%s\n" % (title, text))


@pytest.fixture(scope="session")
def run_dir():
    if not faultstack.MODULE.is_file():
        pytest.fail("%s not built: run make" % faultstack.MODULE, pytrace=False)
    d = Path(tempfile.mkdtemp(prefix="sr-faults-", dir="/tmp"))
    os.chmod(d, 0o755)
    _STATE["dir"] = d
    return d


@pytest.fixture
def report():
    return add_report


def pytest_sessionfinish(session, exitstatus):
    d = _STATE["dir"]
    if d is None:
        return
    if exitstatus == 0 and not os.environ.get("SR_KEEP"):
        import shutil
        shutil.rmtree(d, ignore_errors=True)
    else:
        sys.stderr.write("\nfault test run directory kept: %s\n" % d)


def pytest_terminal_summary(terminalreporter):
    for title, text in _STATE["reports"]:
        terminalreporter.write_sep("-", title)
        terminalreporter.write_line(text)
    if _STATE["reports"]:
        terminalreporter.write_line("(also in %s)" % REPORT_FILE)
