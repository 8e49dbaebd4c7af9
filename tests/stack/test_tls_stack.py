"""HTTPS at the front (issue 19), end to end through scripts/run-stack.sh:
TLS=acme against a real ACME server (Debian's pebble, with pebble-challtestsrv
as its DNS: every name is 127.0.0.1), TLS=files with openssl-made
certificates, HTTP/2 (h2load, split Cookie fields) and stickiness over TLS.

pebble and its issuing root live in the test's temporary directory; only the
test's clients trust that root (ssl contexts, curl --cacert), nothing of the
machine's. Ports: STACK_TEST_PORT_BASE+50..59 (pebble, challtestsrv),
+60..65 and +70..75 (stacks: PORT..PORT+4 and TLS_PORT=PORT+5).
Run time: about 80 s.
"""
import json
import os
import pathlib
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import PORT_BASE, Stack, run_dir_of, wait_until
from acmelib import NAME, REFUSED, NewConnectionClients, Pebble, client_context, https_get, \
    self_signed

PEBBLE_BASE = PORT_BASE + 50          # pebble's and challtestsrv's four ports
STACK_A = PORT_BASE + 60
STACK_B = PORT_BASE + 70

pytestmark = pytest.mark.skipif(
    not (shutil.which("pebble") and shutil.which("pebble-challtestsrv") and shutil.which("openssl")),
    reason="needs pebble, pebble-challtestsrv (package pebble) and openssl: make deps")


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True,
                          text=True, timeout=30)


def issuer_of(port, name=NAME):
    r = subprocess.run(f"openssl s_client -connect 127.0.0.1:{port} -servername {name} "
                       "</dev/null 2>/dev/null | openssl x509 -noout -issuer -serial",
                       shell=True, capture_output=True, text=True, timeout=30)
    return r.stdout


def acme_env(pebble, **extra):
    """run-stack.sh keeps mod_md's store in RUN_DIR/md (www-data must reach
    it: pytest's temporary directories are private to root)."""
    return {"TLS": "acme", "SERVER_NAME": NAME, "ACME_EMAIL": "ops@sticky-route.test",
            "ACME_DIRECTORY": pebble.directory, "ACME_CA_FILE": str(pebble.listener_crt),
            **extra}


def fresh_store(port):
    """An empty mod_md store: each test's pebble knows no earlier account."""
    store = run_dir_of(port) / "md"
    shutil.rmtree(store, ignore_errors=True)
    return store


def start_stack(port, env):
    s = Stack(port, {"TLS_PORT": str(port + 5), **env})
    try:
        s.wait_ready(90)
    except BaseException:
        s.stop()
        raise
    return s


def stop_stack(s):
    rc = s.stop()
    assert rc == 0, f"run-stack.sh exit {rc} on SIGINT:\n{s.output}"


@pytest.fixture
def workdir():
    """pebble's files, ACME_CA_FILE among them: mod_md reads it in the proxy's
    workers (www-data), which cannot enter pytest's private tmp_path."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="sticky-route-tls-test-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("challenge", ["http-01", "tls-alpn-01"])
def test_acme_obtains_a_certificate_and_serves_it_over_h2(workdir, module_so, challenge):
    pebble = Pebble(workdir, STACK_A, STACK_A + 5, port_base=PEBBLE_BASE)
    s = None
    try:
        store = fresh_store(STACK_A)
        s = start_stack(STACK_A, acme_env(pebble, ACME_CHALLENGES=challenge))
        tls = STACK_A + 5
        status, headers, body, _, alpn = https_get(tls, "/", pebble.root)
        assert status == 200 and b"<html" in body.lower(), (status, body[:200])
        assert "Secure" in headers["Set-Cookie"], headers["Set-Cookie"]
        assert "Pebble Intermediate CA" in issuer_of(tls)
        # h2 negotiated, the chain verified by pebble's root only
        r = curl("--http2", "--cacert", str(pebble.root), "--resolve", f"{NAME}:{tls}:127.0.0.1",
                 "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                 f"https://{NAME}:{tls}/api/healthz")
        assert r.stdout == "2 200", r.stderr
        # plain HTTP: a redirect to HTTPS
        r = curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H",
                 f"Host: {NAME}:{STACK_A}", f"http://127.0.0.1:{STACK_A}/a?b=1")
        assert r.stdout == f"301 https://{NAME}:{tls}/a?b=1", r.stdout
        # the CA validated with the challenge asked for: http-01 fetched the
        # token over plain HTTP (the access log), tls-alpn-01 did not
        access = (s.run_dir / "logs" / "proxy-access.log").read_text()
        fetched = re.search(r'"GET /\.well-known/acme-challenge/\S+ HTTP/1.1" 200', access)
        assert bool(fetched) == (challenge == "http-01"), access
        md = json.loads((store / "domains" / NAME / "md.json").read_text())
        assert md["domains"] == [NAME] and md["ca"]["challenges"] == [challenge]
        # mod_md's status: from ADMIN_ALLOW (127.0.0.1) only, never proxied
        status, _, body, _, _ = https_get(tls, "/md-status", pebble.root)
        assert status == 200 and json.loads(body)["managed-domains"][0]["name"] == NAME
        assert "graceful restart of the proxy" in s.output
    finally:
        if s:
            stop_stack(s)
        pebble.stop()


def test_acme_restart_serves_the_stored_certificate_without_ordering(workdir, module_so):
    """The store (ACME_STORE_DIR, here run-stack.sh's RUN_DIR/md) outlives
    the stack: a restart serves the same certificate at once, with no new
    account and no new order at the CA."""
    pebble = Pebble(workdir, STACK_A, STACK_A + 5, port_base=PEBBLE_BASE)
    s = None
    try:
        fresh_store(STACK_A)
        s = start_stack(STACK_A, acme_env(pebble))
        tls = STACK_A + 5
        _, _, _, first, _ = https_get(tls, "/api/healthz", pebble.root)
        stop_stack(s)
        s = None
        log_before = pebble.log.read_text()
        assert "/order-plz" in log_before and "/sign-me-up" in log_before, log_before
        s = start_stack(STACK_A, acme_env(pebble))
        status, _, _, again, _ = https_get(tls, "/api/healthz", pebble.root)
        assert status == 200 and again == first
        new_log = pebble.log.read_text()[len(log_before):]
        assert "/order-plz" not in new_log and "/sign-me-up" not in new_log, new_log
        assert "graceful restart of the proxy" not in s.output
    finally:
        if s:
            stop_stack(s)
        pebble.stop()


def test_acme_renewal_graceful_restarts_fail_no_request(workdir, module_so):
    """A forced renewal: pebble issues 60 s certificates and
    ACME_RENEW_WINDOW=90% makes each due 6 s after its issue. mod_md looks at
    renewals at each start and then twice a day; a reload 7 s after the start
    (the graceful restart an operator sends, here SIGUSR1) stands in for that
    timer. mod_md renews, logs AH10059, run-stack.sh sends
    the graceful restart that puts the new certificate in use (and the next
    start renews again). Clients on new connections all the while: every
    request answered, and they see the certificate change."""
    pebble = Pebble(workdir, STACK_A, STACK_A + 5, validity=60, port_base=PEBBLE_BASE)
    s = None
    try:
        fresh_store(STACK_A)
        s = start_stack(STACK_A, acme_env(pebble, ACME_RENEW_WINDOW="90%"))
        started = time.monotonic()
        tls = STACK_A + 5
        with NewConnectionClients(tls, client_context(pebble.root)) as clients:
            assert wait_until(lambda: len(clients.results) >= 10, 10)
            time.sleep(max(0.0, started + 7 - time.monotonic()))
            first = set(clients.certs)
            os.kill(int((s.run_dir / "proxy" / "proxy.pid").read_text()), signal.SIGUSR1)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not clients.certs - first:
                time.sleep(0.5)
        failed = clients.failed()
        assert failed == [], f"{len(failed)} of {len(clients.results)} failed: {failed[:5]}"
        assert len(clients.results) > 50, len(clients.results)
        assert len(clients.certs - first) >= 1, f"no renewal seen in 30 s:\n{s.output}"
        assert s.output.count("graceful restart of the proxy") >= 2, s.output
    finally:
        if s:
            stop_stack(s)
        pebble.stop()


def test_acme_refused_order_keeps_serving_with_the_fallback_certificate(workdir, module_so):
    pebble = Pebble(workdir, STACK_A, STACK_A + 5, port_base=PEBBLE_BASE)
    s = None
    try:
        fresh_store(STACK_A)
        s = start_stack(STACK_A, acme_env(pebble, SERVER_NAME=REFUSED, ACME_START_TIMEOUT_S="5"))
        tls = STACK_A + 5
        assert "no certificate from the CA within 5s" in s.output, s.output
        log = s.run_dir / "logs" / "proxy-error.log"
        assert wait_until(lambda: re.search(r"AH10056: processing " + re.escape(REFUSED) +
                                            r": .*(block|reject|polic)", log.read_text(), re.I),
                          10), log.read_text()[-3000:]
        assert "Apache Managed Domain Fallback" in issuer_of(tls, REFUSED)
        ctx = ssl._create_unverified_context()
        status, _, _, _, _ = https_get(tls, "/", name=REFUSED, ctx=ctx)
        assert status == 503
        r = curl("-o", "/dev/null", "-w", "%{http_code}", "-H", f"Host: {REFUSED}",
                 f"http://127.0.0.1:{STACK_A}/")
        assert r.stdout == "301"
        assert s.proc.poll() is None, "the stack stopped"
    finally:
        if s:
            stop_stack(s)
        pebble.stop()


@pytest.fixture(scope="module")
def files_stack(tmp_path_factory, module_so):
    d = tmp_path_factory.mktemp("tls-files-stack")
    d.chmod(0o755)
    crt, key = self_signed(d, "proxy", [NAME])
    s = start_stack(STACK_B, {"TLS": "files", "SERVER_NAME": NAME, "TLS_CERT_FILE": str(crt),
                              "TLS_KEY_FILE": str(key)})
    yield s, crt, key
    stop_stack(s)


def access_log_decisions(stack, since):
    lines = (stack.run_dir / "logs" / "proxy-access.log").read_text().splitlines()[since:]
    return [re.search(r"decision=(\S+)", line).group(1) for line in lines]


def access_log_len(stack):
    return len((stack.run_dir / "logs" / "proxy-access.log").read_text().splitlines())


def test_files_stack_is_sticky_over_http11_and_h2_with_split_cookies(files_stack):
    s, crt, _ = files_stack
    tls = STACK_B + 5
    logged = access_log_len(s)
    status, headers, _, _, alpn = https_get(tls, "/", crt)
    assert status == 200 and alpn == "http/1.1"
    # httpd logs a request just after its answer: wait for that line
    assert wait_until(lambda: access_log_len(s) > logged, 5)
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "Secure" in headers["Set-Cookie"]
    route = cookie.split("=", 1)[1]
    if not shutil.which("h2load"):
        pytest.skip("h2load not installed (package nghttp2-client)")
    for protocol in ("h2", "http/1.1"):
        before = access_log_len(s)
        # two Cookie fields: HTTP/2 sends them as separate crumbs (RFC 9113 8.2.3)
        r = subprocess.run(["h2load", "-n", "200", "-c", "4", "-m", "4", "--npn-list", protocol,
                            "-H", "cookie: theme=dark", "-H", f"cookie: {cookie}",
                            f"https://127.0.0.1:{tls}/"],
                           capture_output=True, text=True, timeout=60)
        assert "200 succeeded" in r.stdout and "0 failed" in r.stdout, r.stdout
        assert f"Application protocol: {protocol}" in r.stdout, r.stdout
        assert wait_until(lambda: access_log_len(s) >= before + 200, 5)
        decisions = access_log_decisions(s, before)
        assert decisions == ["hit"] * 200, sorted(set(decisions))
    lines = (s.run_dir / "logs" / "proxy-access.log").read_text().splitlines()[-200:]
    assert all(f"route={route}" in line for line in lines), lines[:3]


def test_files_stack_cookie_less_h2_requests_are_new_then_hit(files_stack, tmp_path):
    s, crt, _ = files_stack
    tls = STACK_B + 5
    jar = tmp_path / "h2-cookies.txt"
    before = access_log_len(s)
    for _ in range(5):
        r = curl("--http2", "--cacert", str(crt), "--resolve", f"{NAME}:{tls}:127.0.0.1",
                 "-b", str(jar), "-c", str(jar), "-o", "/dev/null", "-w", "%{http_version}",
                 f"https://{NAME}:{tls}/")
        assert r.stdout == "2", r.stderr
    assert wait_until(lambda: access_log_len(s) >= before + 5, 5)
    assert access_log_decisions(s, before) == ["new", "hit", "hit", "hit", "hit"]


def test_files_stack_hsts_and_redirect(tmp_path_factory, module_so):
    d = tmp_path_factory.mktemp("tls-hsts")
    d.chmod(0o755)
    crt, key = self_signed(d, "proxy", [NAME])
    s = start_stack(STACK_A, {"TLS": "files", "SERVER_NAME": NAME, "TLS_CERT_FILE": str(crt),
                              "TLS_KEY_FILE": str(key), "HSTS_MAX_AGE": "600"})
    try:
        status, headers, _, _, _ = https_get(STACK_A + 5, "/api/healthz", crt)
        assert status == 200 and headers["Strict-Transport-Security"] == "max-age=600"
        r = curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                 f"http://127.0.0.1:{STACK_A}/.well-known/acme-challenge/x")
        assert not r.stdout.startswith("301"), r.stdout
    finally:
        stop_stack(s)


# Every bad file by name (expired included): test_renderer.py. Here: the
# renderer's message reaches the user of `make run`, and nothing stays up.
@pytest.mark.parametrize("case", ["wrong-key", "unreadable"])
def test_files_stack_refuses_a_bad_certificate_with_a_clear_message(tmp_path, module_so, case):
    tmp_path.chmod(0o755)
    crt, key = self_signed(tmp_path, "proxy", [NAME])
    _, other = self_signed(tmp_path, "other", [NAME])
    env = {"TLS": "files", "SERVER_NAME": NAME, "TLS_CERT_FILE": str(crt), "TLS_KEY_FILE": str(key)}
    expect = {"wrong-key": "not the key of the certificate",
              "unreadable": "not readable"}[case]
    if case == "wrong-key":
        env["TLS_KEY_FILE"] = str(other)
    else:
        key.chmod(0)
    s = Stack(STACK_A, {"TLS_PORT": str(STACK_A + 5), **env})
    rc = s.proc.wait(60)
    s._reader.join(5)
    assert rc != 0
    assert expect in s.output, s.output
    assert "nothing left running" in s.output
    secret = key.read_text() if case != "unreadable" else ""
    for line in secret.splitlines():
        if "-----" not in line:
            assert line not in s.output


def proxy_closed_backend_connections(static_ports):
    """Closed connections between the proxy and the static members: TIME_WAIT
    sockets (they last 60 s) on either end, whichever closed first (a
    connection mod_proxy_http does not pool, e.g. by proxy-initial-not-pooled,
    ends after its one request)."""
    r = subprocess.run(["ss", "-Htan", "state", "time-wait"], capture_output=True, text=True,
                       timeout=10)
    ends = tuple(f":{p}" for p in static_ports)
    return sum(1 for line in r.stdout.splitlines()
               if any(f.endswith(ends) for f in line.split()[-2:]))



def test_files_stack_h2_requests_reuse_pooled_backend_connections(files_stack):
    """Issue 19: does `SetEnv proxy-initial-not-pooled 1` cost a backend
    connection per h2 stream? No: mod_http2 sets keepalives to 1 on each
    stream's secondary connection (h2_c2.c, "Simulate that we had already a
    request on this connection"), so mod_proxy_http's !c->keepalives test
    never holds for h2 and 400 h2 requests open about as many backend
    connections as the proxy has threads. (Measured: the same with and
    without the SetEnv line.)"""
    s, _, _ = files_stack
    if not shutil.which("h2load") or not shutil.which("ss"):
        pytest.skip("needs h2load (nghttp2-client) and ss (iproute2)")
    tls = STACK_B + 5
    statics = (STACK_B + 1, STACK_B + 2)
    before = proxy_closed_backend_connections(statics)
    r = subprocess.run(["h2load", "-n", "400", "-c", "4", "-m", "4", "--npn-list", "h2",
                        f"https://127.0.0.1:{tls}/"], capture_output=True, text=True, timeout=60)
    assert "400 succeeded" in r.stdout and "Application protocol: h2" in r.stdout, r.stdout
    closed = proxy_closed_backend_connections(statics) - before
    print(f"400 h2 requests: {closed} backend connections closed")
    assert closed < 40, f"{closed} backend connections closed for 400 h2 requests"
    # HTTP/1.1, one request per client connection: one backend connection
    # each (proxy-initial-not-pooled): the check that the count sees them
    before = proxy_closed_backend_connections(statics)
    r = subprocess.run(["h2load", "-n", "100", "-c", "100", "--npn-list", "http/1.1",
                        "-H", "connection: close", f"https://127.0.0.1:{tls}/"],
                       capture_output=True, text=True, timeout=60)
    assert "100 succeeded" in r.stdout, r.stdout
    closed = proxy_closed_backend_connections(statics) - before
    print(f"100 HTTP/1.1 requests on new client connections: {closed} backend connections closed")
    assert closed >= 50, closed   # seen: 62 (some end by a reset, no TIME_WAIT)


def test_files_stack_h2_gets_survive_graceful_restarts_of_the_members(files_stack):
    """Graceful restarts of both static servers every 0.4 s while h2
    clients send GETs: no request may fail. Seen: 0, 3 and 12 502s in
    6000-3000 requests (AH01102 in the proxy's error log)."""
    s, _, _ = files_stack
    if not shutil.which("h2load"):
        pytest.skip("needs h2load (nghttp2-client)")
    tls = STACK_B + 5
    errlog = s.run_dir / "logs" / "proxy-error.log"
    err_before = len(errlog.read_text())
    load = subprocess.Popen(["h2load", "-D", "8", "-c", "4", "-m", "4", "--npn-list", "h2",
                             f"https://127.0.0.1:{tls}/"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    restarts = 0
    try:
        time.sleep(0.5)
        deadline = time.monotonic() + 7
        while time.monotonic() < deadline:
            for name in ("static-1", "static-2"):
                os.kill(int((s.run_dir / name / "httpd.pid").read_text()), signal.SIGUSR1)
                restarts += 1
            time.sleep(0.4)
        out, _ = load.communicate(timeout=30)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    broken = errlog.read_text()[err_before:].count("AH01102")
    print(f"h2 GETs across {restarts} graceful restarts: {broken} broken backend connections")
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored", out)
    assert m, out
    _, done, ok, failed, errored = map(int, m.groups())
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    assert codes and int(codes.group(4)) == 0 and int(codes.group(3)) == 0, out
    assert failed == 0 and errored == 0 and ok == done and done > 500, out
    assert s.proc.poll() is None, "the stack stopped"
