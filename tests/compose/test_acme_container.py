"""TLS=acme in the reverse-proxy image: the certificate goes into use by itself.

mod_md obtains and renews certificates inside httpd's workers, and a new one
is used only after a graceful restart, which those workers cannot send. The
image makes mod_md's `renewed` event (MDMessageCmd) a mark that a watcher of
the entry point turns into a graceful restart (docker/reverse-proxy/
entrypoint.sh). This test runs the image built by tests/compose/run.sh
(SR_PROXY_IMAGE) against a real ACME server (Debian's pebble, on loopback
ports, issuing 60 s certificates; ACME_RENEW_WINDOW=90% makes each due 6 s
after its issue), in the host's network namespace (`--network host`: pebble
validates http-01 on the container's own port), and checks, with nobody
sending the container anything:
  1. the first certificate: mod_md's fallback certificate at first, then
     pebble's, served over HTTPS (h2) - put in use by the image itself;
  2. a renewal (mod_md looks at renewals at each start and then twice a day:
     a `docker kill -s USR1`, the graceful restart an operator's schedule
     sends, stands in for that timer): a new certificate in use by itself,
     with clients on new connections all the while and no request failing.
Ports: COMPOSE_TEST_ACME_PORT_BASE (default 21600) + 0..3 (pebble),
+10 (HTTP), +15 (HTTPS), +20, +21 (members).
"""
import http.server
import os
import pathlib
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from acmelib import NAME, NewConnectionClients, Pebble, client_context, https_get  # noqa: E402
from srtest.wait import wait_until  # noqa: E402

BASE = int(os.environ.get("COMPOSE_TEST_ACME_PORT_BASE", "21600"))
HTTP_PORT, TLS_PORT = BASE + 10, BASE + 15
STATIC_PORT, DYNAMIC_PORT = BASE + 20, BASE + 21
IMAGE = os.environ.get("SR_PROXY_IMAGE", "")
CONTAINER = "sr-acme-container-test"
DOCKER = "/usr/bin/docker"


def docker(*args, check=True, timeout=60):
    r = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("docker %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


def logs():
    return docker("logs", CONTAINER, check=False).stderr + docker("logs", CONTAINER,
                                                                  check=False).stdout


class Member(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def member(port, name):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = ('{"served_by": "%s"}' % name).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Served-By", name)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    srv = Member(("127.0.0.1", port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def workdir():
    d = pathlib.Path(tempfile.mkdtemp(prefix="sticky-route-acme-container-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_image_puts_obtained_and_renewed_certificates_in_use_by_itself(workdir):
    assert IMAGE, "SR_PROXY_IMAGE: the reverse-proxy image to test (tests/compose/run.sh sets it)"
    docker("rm", "-f", CONTAINER, check=False)
    pebble = Pebble(workdir, HTTP_PORT, TLS_PORT, validity=60, port_base=BASE)
    # the CA's HTTPS certificate, for mod_md (www-data) in the container
    ca = workdir / "pebble-listener.crt"
    ca.chmod(0o644)
    members = [member(STATIC_PORT, "s1"), member(DYNAMIC_PORT, "d1")]
    try:
        docker("run", "-d", "--name", CONTAINER, "--network", "host",
               "-v", "%s:/run/pebble-ca.crt:ro" % ca,
               "-e", "TLS=acme", "-e", "SERVER_NAME=" + NAME,
               "-e", "ACME_EMAIL=ops@sticky-route.test",
               "-e", "ACME_DIRECTORY=" + pebble.directory,
               "-e", "ACME_CA_FILE=/run/pebble-ca.crt",
               "-e", "ACME_RENEW_WINDOW=90%", "-e", "ACME_RELOAD_POLL=1",
               "-e", "LISTEN_PORT=%d" % HTTP_PORT, "-e", "LISTEN_TLS_PORT=%d" % TLS_PORT,
               "-e", "STATIC_APP=127.0.0.1:%d=s1" % STATIC_PORT,
               "-e", "DYNAMIC_APP=127.0.0.1:%d=d1" % DYNAMIC_PORT,
               IMAGE)
        ctx = client_context(pebble.root)

        def pebble_cert():
            try:
                status, _, _, der, _ = https_get(TLS_PORT, "/api/healthz", ctx=ctx)
                return der if status == 200 else None
            except (OSError, ssl.SSLError):
                return None     # the fallback certificate: not pebble's
        # 1. the first certificate, in use without anyone's graceful restart
        first = wait_until(pebble_cert, 90, 0.5, "pebble's certificate served")
        out = logs()
        assert "TLS=acme: a new certificate from mod_md is put in use" in out, out
        assert "mod_md has a new certificate" in out, out
        r = subprocess.run(["curl", "-sS", "--http2", "--cacert", str(pebble.root),
                            "--resolve", "%s:%d:127.0.0.1" % (NAME, TLS_PORT),
                            "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                            "https://%s:%d/api/healthz" % (NAME, TLS_PORT)],
                           capture_output=True, text=True, timeout=30)
        assert r.stdout == "2 200", (r.stdout, r.stderr)

        # 2. a renewal, in use by itself; clients all the while
        with NewConnectionClients(TLS_PORT, ctx, certs={first}) as clients:
            time.sleep(7)           # the certificate is due 6 s after its issue
            graceful_before = out.count("mod_md has a new certificate")
            docker("kill", "-s", "USR1", CONTAINER)     # stands in for mod_md's timer
            wait_until(lambda: len(clients.certs) >= 2, 60, 0.5, "a renewed certificate in use")
            wait_until(lambda: logs().count("mod_md has a new certificate") > graceful_before,
                       10, 0.5, "the watcher's graceful restart in the log")
            time.sleep(1)
        failed = clients.failed()
        assert failed == [], "%d of %d failed: %s" % (len(failed), len(clients.results), failed[:5])
        assert len(clients.results) > 50, len(clients.results)
        assert docker("inspect", "--format", "{{.State.Running}} {{.RestartCount}}",
                      CONTAINER).stdout.split() == ["true", "0"]
    except BaseException:
        print("---- container log\n" + logs()[-6000:])
        print("---- pebble log\n" + pebble.log.read_text()[-3000:])
        raise
    finally:
        docker("rm", "-f", CONTAINER, check=False)
        pebble.stop()
        for m in members:
            m.shutdown()
            m.server_close()
