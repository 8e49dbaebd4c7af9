"""ACME and TLS test tooling shared by the stack's TLS tests
(tests/stack/test_tls_stack.py) and the container's (tests/compose/
test_acme_container.py): a real ACME server (Debian's pebble, with
pebble-challtestsrv as its DNS: every name is 127.0.0.1) on loopback ports,
openssl-made certificates, HTTPS requests with another name's SNI, and the
clients that keep opening new HTTPS connections across a certificate change."""
import http.client
import json
import os
import socket
import ssl
import subprocess
import threading

from srtest.wait import wait_until

NAME = "shop.sticky-route.test"
REFUSED = "refused.sticky-route.test"   # in pebble's domain block list


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def self_signed(d, stem, names):
    crt, key = d / f"{stem}.crt", d / f"{stem}.key"
    san = ",".join(("IP:" if n[0].isdigit() else "DNS:") + n for n in names)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", "2", "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={san}",
            "-keyout", str(key), "-out", str(crt))
    key.chmod(0o600)
    return crt, key


class Pebble:
    """pebble + pebble-challtestsrv on loopback ports; validates on the
    given proxy's HTTP and HTTPS ports."""

    def __init__(self, d, http_port, tls_port, validity=0, port_base=None,
                 refused=REFUSED):
        """Its own ports: port_base (ACME directory), +1 (management:
        /roots/0), +2 (challtestsrv's DNS), +3 (challtestsrv's management)."""
        PEBBLE_PORT, PEBBLE_MGMT_PORT, DNS_PORT, CTS_MGMT_PORT = (
            port_base + i for i in range(4))
        self.dir = d
        self.listener_crt, key = self_signed(d, "pebble-listener", ["localhost", "127.0.0.1"])
        cfg = {"pebble": {
            "listenAddress": f"127.0.0.1:{PEBBLE_PORT}",
            "managementListenAddress": f"127.0.0.1:{PEBBLE_MGMT_PORT}",
            "certificate": str(self.listener_crt), "privateKey": str(key),
            "httpPort": http_port, "tlsPort": tls_port, "ocspResponderURL": "",
            "externalAccountBindingRequired": False, "domainBlocklist": [refused],
            "certificateValidityPeriod": validity}}
        (d / "pebble.json").write_text(json.dumps(cfg))
        self.procs = []
        self.log = d / "pebble.log"
        with open(d / "challtestsrv.log", "w") as out:
            self.procs.append(subprocess.Popen(
                ["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                 "-dns01", f"127.0.0.1:{DNS_PORT}", "-http01", "", "-https01", "",
                 "-tlsalpn01", "", "-management", f"127.0.0.1:{CTS_MGMT_PORT}"],
                stdout=out, stderr=subprocess.STDOUT))
        with open(self.log, "w") as out:
            self.procs.append(subprocess.Popen(
                ["pebble", "-config", str(d / "pebble.json"), "-dnsserver",
                 f"127.0.0.1:{DNS_PORT}"], stdout=out, stderr=subprocess.STDOUT,
                env=dict(os.environ, PEBBLE_VA_NOSLEEP="1")))
        ctx = ssl.create_default_context(cafile=str(self.listener_crt))
        self.directory = f"https://127.0.0.1:{PEBBLE_PORT}/dir"

        def root():
            try:
                c = http.client.HTTPSConnection("127.0.0.1", PEBBLE_MGMT_PORT, context=ctx,
                                                timeout=2)
                c.request("GET", "/roots/0")
                r = c.getresponse()
                return r.read() if r.status == 200 else None
            except OSError:
                return None
        wait_until(lambda: root() is not None, 15, what="pebble's issuing root (%s)" % self.log)
        self.root = d / "pebble-root.pem"
        self.root.write_bytes(root())

    def stop(self):
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


class SNIConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with the SNI and Host of another name (no DNS)."""

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def client_context(cafile):
    """An HTTP/1.1 client context trusting cafile only."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def https_get(port, path="/", cafile=None, name=NAME, cookie=None, ctx=None):
    """(status, headers, body, DER certificate, ALPN protocol) of one request
    on a new connection."""
    if ctx is None:
        ctx = client_context(cafile)
    c = SNIConnection(name, port, context=ctx, timeout=10)
    try:
        c.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        der, alpn = c.sock.getpeercert(binary_form=True), c.sock.selected_alpn_protocol()
        r = c.getresponse()
        return r.status, r.headers, r.read(), der, alpn
    finally:
        c.close()




class NewConnectionClients:
    """Clients that keep sending, each request on a new connection (so each
    sees the certificate in use at that moment), one thread a path, from
    start() (or `with`) until stop(): `results` has every request's status
    or the error's repr, `certs` every certificate seen (DER), plus the
    ones given."""

    def __init__(self, port, ctx, paths=("/", "/api/healthz"), certs=()):
        self.results, self.certs = [], set(certs)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(port, ctx, p), daemon=True)
                         for p in paths]

    def _run(self, port, ctx, path):
        while not self._stop.is_set():
            try:
                status, _, _, der, _ = https_get(port, path, ctx=ctx)
                self.results.append(status)
                self.certs.add(der)
            except (OSError, http.client.HTTPException) as e:   # ssl.SSLError too
                self.results.append(repr(e))

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def failed(self):
        return [x for x in self.results if x != 200]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
