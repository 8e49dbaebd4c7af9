"""Integration harness: real Debian apache2 instances on 127.0.0.1.

Backends are apache2 (event MPM) serving static files that name them
(`X-Served-By` header and body).  The proxy is apache2 (event MPM, two child
processes) with mod_proxy_balancer and mod_sticky_route.  Every instance
lives in its own directory (ServerRoot, PidFile, ErrorLog, Mutex,
DefaultRuntimeDir) and is stopped with `-k stop` at teardown.

The process handling, the Python backend and the Prometheus parser are the
test toolkit's (tests/srtest); this module gives them this suite's port
range and templates, and re-exports the names the tests use.
"""

import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
# re-exported: the tests import these names from harness
from srtest import apache, backend  # noqa: E402
from srtest.apache import APACHE2, MODULES_DIR, user_lines  # noqa: E402,F401
from srtest.metrics import (assert_valid_exposition, duplicate_series,  # noqa: E402,F401
                            prometheus_samples, promtool_check)
from srtest.procs import (PortPool, become_subreaper, children_of, pid_alive,  # noqa: E402,F401
                          proc_stats, reap_all)
from srtest.procs import port_bindable as _port_is_free  # noqa: E402,F401
from srtest.procs import port_quiet as _port_is_quiet  # noqa: E402,F401
from srtest.wait import wait_until  # noqa: E402,F401
TEMPLATES = HERE / "templates"
MODULE_SO = Path(os.environ.get("SR_MODULE", REPO / ".libs" / "mod_sticky_route.so"))

PORT_MIN, PORT_MAX = 20000, 20999   # this suite's port range, nothing else

# The cookie exactly as the contract says it is issued over plain HTTP.
SET_COOKIE_RE = re.compile(r"^ROUTEID=([A-Za-z0-9._-]+); Path=/; HttpOnly; SameSite=Lax$")
DERIVED_ROUTE_RE = re.compile(r"^r[A-Za-z0-9_-]{11}$")
TAG_RE = r"[A-Za-z0-9_-]{11}"

HTTP_TIMEOUT = 10

PORTS = PortPool(PORT_MIN, PORT_MAX)


# --------------------------------------------------------------------------
# small utilities

def free_port():
    """A port in 20000-20999 that is free now and not handed out before in
    this run.  Also used for 'dead' members: a port nobody listens on."""
    return PORTS.take()


# --------------------------------------------------------------------------
# httpd instances

class Httpd(apache.Httpd):
    """One apache2 instance with its own directory (srtest.apache.Httpd),
    configured from this suite's templates, on this suite's ports."""

    templates = TEMPLATES
    ports = PORTS


class Backend(Httpd):
    kind = "backend"

    def __init__(self, base_dir, name, port=None):
        super().__init__(base_dir, name, port)
        self.expected_children = 4
        docs = self.root / "htdocs"
        (docs / "index.html").write_text(
            "<!doctype html><title>%s</title><h1>served by %s</h1>\n" % (name, name))
        (docs / "app.js").write_text("window.servedBy = %r;\n" % name)
        (docs / "style.css").write_text("/* served by %s */ body { color: #333; }\n" % name)
        (docs / "logo.svg").write_text(
            '<svg xmlns="http://www.w3.org/2000/svg"><text>%s</text></svg>\n' % name)
        for f in docs.iterdir():
            os.chmod(f, 0o644)
        self.write_conf(self.render("backend.conf.tmpl", name=name))


# The modules every test proxy loads before mod_sticky_route, in this order.
PROXY_MODULES = ("slotmem_shm", "proxy", "proxy_http", "proxy_balancer")


class Proxy(Httpd):
    kind = "proxy"

    def __init__(self, base_dir, name, body, port=None, load_module=True,
                 extra_modules=(), start_servers=2, server_limit=2,
                 threads_per_child=25, log_level="warn", proxy_modules=PROXY_MODULES):
        super().__init__(base_dir, name, port)
        self.expected_children = start_servers
        proxy_lines = ["LoadModule %s_module %s/mod_%s.so" % (mod, MODULES_DIR, mod)
                       for mod in proxy_modules]
        lines = []
        for mod in extra_modules:
            lines.append("LoadModule %s_module %s/mod_%s.so" % (mod, MODULES_DIR, mod))
        if load_module:
            lines.append("LoadModule sticky_route_module %s" % MODULE_SO)
        self.write_conf(self.render(
            "proxy.conf.tmpl",
            proxy_module_lines="\n".join(proxy_lines),
            module_lines="\n".join(lines),
            start_servers=start_servers, server_limit=server_limit,
            threads_per_child=threads_per_child,
            max_request_workers=server_limit * threads_per_child,
            max_spare_threads=(server_limit + 1) * threads_per_child,
            log_level=log_level,
            body=body.replace("@ROOT@", str(self.root)).replace("@PORT@", str(self.port))))


def member_line(target, route=None, params=""):
    """A BalancerMember line. target: a Backend, a port number (dead port) or
    a URL.  A short pool ttl keeps idle pooled connections younger than the
    backends' KeepAliveTimeout."""
    if isinstance(target, Httpd):
        url = target.url
    elif isinstance(target, int):
        url = "http://127.0.0.1:%d" % target
    else:
        url = target
    parts = ["BalancerMember", '"%s"' % url]
    if route is not None:
        parts.append("route=%s" % route)
    if "ttl=" not in params:
        parts.append("ttl=5")
    if params:
        parts.append(params)
    return "    " + " ".join(parts)


def balancer(name, members, proxyset="lbmethod=sticky", inner="", mount="/"):
    """A <Proxy balancer://name> block plus its ProxyPass.
    members: list of (target, route, params) tuples."""
    lines = ['<Proxy "balancer://%s">' % name]
    for m in members:
        target, route, params = (tuple(m) + (None, ""))[:3]
        lines.append(member_line(target, route, params or ""))
    if proxyset:
        lines.append("    ProxySet %s" % proxyset)
    if inner:
        lines.append("    " + inner.strip().replace("\n", "\n    "))
    lines.append("</Proxy>")
    if mount:
        lines.append('ProxyPass "/__local/" "!"')
        lines.append('ProxyPass "%s" "balancer://%s/"' % (mount, name))
        lines.append('ProxyPassReverse "%s" "balancer://%s/"' % (mount, name))
    return "\n".join(lines) + "\n"


def configtest(base_dir, name, body, load_module=True, extra_modules=(), wrapper=(), **kw):
    """Write a proxy config and run `apache2 -t -f` on it (behind the
    command prefix `wrapper`, e.g. private_files_wrapper(...)).
    Returns (returncode, combined stdout+stderr).  kw: more Proxy arguments
    (e.g. proxy_modules)."""
    p = Proxy(base_dir, name, body, load_module=load_module, extra_modules=extra_modules, **kw)
    Httpd.registry.remove(p)
    return apache.configtest(p.conf, wrapper=wrapper)


# --------------------------------------------------------------------------
# HTTP clients

class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value), duplicates kept
        self.body = body

    def all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def get(self, name):
        vals = self.all(name)
        return vals[0] if vals else None

    # the headers the tests read, by name
    served_by = property(lambda self: self.get("X-Served-By"))
    sticky_status = property(lambda self: self.get("X-Sticky-Status"))
    sticky_route = property(lambda self: self.get("X-Sticky-Route"))
    route_changed = property(lambda self: self.get("X-Route-Changed"))
    set_cookies = property(lambda self: self.all("Set-Cookie"))

    def cookie_value(self, name="ROUTEID"):
        """Value of the single Set-Cookie for `name`, or None."""
        vals = [sc for sc in self.set_cookies if sc.startswith(name + "=")]
        assert len(vals) <= 1, "more than one Set-Cookie for %s: %r" % (name, vals)
        if not vals:
            return None
        return vals[0].split(";", 1)[0].split("=", 1)[1]

    def __repr__(self):
        return "<Response %d served_by=%r status=%r route=%r set_cookie=%r>" % (
            self.status, self.served_by, self.sticky_status, self.sticky_route, self.set_cookies)


def _from_httpclient(resp):
    body = resp.read()
    return Response(resp.status, resp.reason, resp.getheaders(), body)


def _get_on(conn, path, cookie=None, headers=None, host=None):
    """One GET on the new connection conn, closed after."""
    try:
        h = dict(headers or {})
        if cookie is not None:
            h["Cookie"] = cookie
        if host is not None:
            h["Host"] = host
        conn.request("GET", path, headers=h)
        return _from_httpclient(conn.getresponse())
    finally:
        conn.close()


def get(port, path="/", cookie=None, headers=None, host=None, timeout=HTTP_TIMEOUT):
    """One GET on a fresh connection (http.client keeps duplicate headers)."""
    return _get_on(http.client.HTTPConnection("127.0.0.1", port, timeout=timeout),
                   path, cookie, headers, host)


def get_https(port, path="/", cookie=None, timeout=HTTP_TIMEOUT):
    """One GET over TLS on a fresh connection (any certificate accepted)."""
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return _get_on(http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ctx),
                   path, cookie)


def self_signed_certificate(d, cn):
    """(certificate, key) paths of a new self-signed EC certificate for cn,
    made by openssl in directory d; skips the test without openssl."""
    if not shutil.which("openssl"):
        import pytest
        pytest.skip("openssl not installed")
    d = Path(d)
    d.mkdir(exist_ok=True)
    crt, key = d / "proxy.crt", d / "proxy.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=%s" % cn, "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=30)
    return crt, key


class KeepAliveClient:
    """A browser-like client: one keep-alive connection, one ROUTEID cookie
    that it replaces whenever the server sets a new one."""

    def __init__(self, port, cookie_name="ROUTEID", timeout=HTTP_TIMEOUT):
        self.port = port
        self.cookie_name = cookie_name
        self.timeout = timeout
        self.cookie = None        # value only
        self.conn = None

    def request(self, path="/"):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        headers = {}
        if self.cookie is not None:
            headers["Cookie"] = "%s=%s" % (self.cookie_name, self.cookie)
        try:
            self.conn.request("GET", path, headers=headers)
            r = _from_httpclient(self.conn.getresponse())
        except Exception:
            self.close()
            raise
        v = r.cookie_value(self.cookie_name)
        if v is not None:
            self.cookie = v
        if (r.get("Connection") or "").lower() == "close":
            self.close()
        return r

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def raw_request(port, data, timeout=HTTP_TIMEOUT):
    """Send raw bytes, read until the server closes (send Connection: close).
    Returns a Response, or None if the server closed without answering."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        s.close()
    raw = b"".join(chunks)
    if not raw:
        return None
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    m = re.match(rb"HTTP/1\.\d (\d{3}) ?(.*)", lines[0])
    assert m, "not an HTTP response: %r" % raw[:200]
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers.append((k.decode("latin-1").strip(), v.decode("latin-1").strip()))
    return Response(int(m.group(1)), m.group(2).decode("latin-1"), headers, body)


def raw_get(port, cookie_header_bytes=None, path=b"/", extra=b""):
    """GET with an arbitrary (raw bytes) Cookie header line."""
    req = b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if cookie_header_bytes is not None:
        req += b"Cookie: " + cookie_header_bytes + b"\r\n"
    req += extra + b"\r\n"
    return raw_request(port, req)


def crash_lines(server):
    """error_log lines that report a child killed by a signal (segfault...)."""
    return [l for l in server.error_log.splitlines()
            if "exit signal" in l]


def access_log_pids(proxy):
    return set(re.findall(r" pid=(\d+) ", proxy.access_log))


def cleanup_dir(path):
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------
# Python backends: raw-socket HTTP/1.1 servers whose every connection is
# handled by `respond` (stale keep-alive connections, members that close
# without answering, ...).  Ports from this suite's range, 127.0.0.1 only,
# one thread per connection, bounded.

class PyBackend(backend.PyBackend):
    """srtest.backend.PyBackend on this suite's ports."""

    ports = PORTS


# --------------------------------------------------------------------------
# balancer-manager (mod_proxy_balancer's handler): edits are POSTs carrying
# the balancer's nonce, with a Referer naming the host of the request.

class BalancerManager:
    """balancer-manager's page and edits; each request on a fresh connection,
    or all on `conn` (a kept-alive http.client connection: one child)."""
    def __init__(self, port, path="/balancer-manager", host="127.0.0.1", conn=None):
        self.port = port
        self.path = path
        self.host = host
        self.conn = conn

    def _request(self, method, headers, body=None):
        conn = self.conn or http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=HTTP_TIMEOUT)
        try:
            conn.request(method, self.path, body=body, headers=headers)
            return _from_httpclient(conn.getresponse())
        finally:
            if conn is not self.conn:
                conn.close()

    def _headers(self):
        return {"Host": "%s:%d" % (self.host, self.port),
                "Referer": "http://%s:%d%s" % (self.host, self.port, self.path)}

    def page(self):
        r = self._request("GET", self._headers())
        assert r.status == 200, "balancer-manager page: %r" % r
        return r.body.decode("latin-1")

    def nonce(self, balancer):
        """The nonce of balancer://NAME, scraped from the manager's page."""
        page = self.page()
        m = re.search(r"b=%s&amp;[^\"'<>]*?nonce=([^\"'&<>]+)" % re.escape(balancer), page)
        assert m, "no nonce for %s in the balancer-manager page:\n%s" % (balancer, page[:3000])
        return m.group(1)

    def post(self, balancer, fields):
        """POST the form fields (a list of (name, value); `b` and `nonce` are
        added), each value percent-encoded once."""
        import urllib.parse
        data = [("b", balancer), ("nonce", self.nonce(balancer))] + list(fields)
        body = urllib.parse.urlencode(data, quote_via=urllib.parse.quote, safe="").encode()
        assert len(body) < 1024, "the manager reads at most 1024 bytes of form data"
        h = self._headers()
        h["Content-Type"] = "application/x-www-form-urlencoded"
        r = self._request("POST", h, body)
        assert r.status == 200, "balancer-manager POST %r: %r" % (fields, r)
        return r

    def add_worker(self, balancer, url, enable=True):
        """Adds a member (the manager adds it disabled); enables it."""
        self.post(balancer, [("b_nwrkr", url), ("b_wyes", "1")])
        if enable:
            self.edit_worker(balancer, url, [("w_status_D", "0")])

    def edit_worker(self, balancer, url, fields):
        return self.post(balancer, [("w", url)] + list(fields))


# --------------------------------------------------------------------------
# Load-aware features (cookie lifetimes, leastbusy, in-flight gauge, slow
# start, rebalance): a member with a slow path, requests held in flight,
# the status endpoint's per-member values, dated cookie values, graceful
# restarts with another test body.

STATUS_PATH = "/sticky-status"
STATUS_CONF = ('ProxyPass "%s" "!"\n'
               '<Location "%s">\n    SetHandler sticky-route-status\n</Location>\n'
               % (STATUS_PATH, STATUS_PATH))
MANAGER_CONF = ('ProxyPass "/balancer-manager" "!"\n'
                '<Location "/balancer-manager">\n    SetHandler balancer-manager\n</Location>\n')

# ROUTE:FIRST:LAST, or ROUTE:FIRST:LAST.TAG with a secret
DATED_VALUE_RE = re.compile(r"^([A-Za-z0-9_~-]{1,63}):([0-9]+):([0-9]+)(?:\.(%s))?$" % TAG_RE)


def parse_dated(value):
    """(route, first, last, tag or None) of a dated cookie value, or None."""
    m = DATED_VALUE_RE.match(value or "")
    if not m:
        return None
    return m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)


def request_target(head):
    """The request target of a request head (bytes -> str)."""
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    return parts[1] if len(parts) > 1 else ""


class SlowBackend(PyBackend):
    """A member that answers 200 at once, except `/slow...` (after `slow`
    seconds, cut short when the backend stops) and `/err...` (500).
    `held` is the number of /slow requests it holds now, `slow_seen` the
    number it received; `targets` every request target, in order."""

    def __init__(self, name, slow=3.0, port=None):
        self.slow = slow
        self.held = 0
        self.slow_seen = 0
        self.targets = []
        super().__init__(name, port=port)

    def respond(self, conn_no, req_no, head):
        target = request_target(head)
        with self.lock:
            self.targets.append(target)
        if target.startswith("/slow"):
            with self.lock:
                self.held += 1
                self.slow_seen += 1
            try:
                self._stop.wait(self.slow)
            finally:
                with self.lock:
                    self.held -= 1
            return self.ok(b"slow answer from %s\n" % self.name.encode())
        if target.startswith("/err"):
            body = b"error from %s\n" % self.name.encode()
            return ("HTTP/1.1 500 Internal Server Error\r\nX-Served-By: %s\r\n"
                    "Content-Type: text/plain\r\nContent-Length: %d\r\n"
                    "Connection: keep-alive\r\n\r\n" % (self.name, len(body))).encode() + body
        return self.ok()

    def wait_held(self, n, timeout=5.0):
        """Waits until the backend holds at least n /slow requests."""
        return wait_until(lambda: self.held >= n, timeout, interval=0.02,
                          what="%s holding %d slow requests (holds %d)"
                          % (self.name, n, self.held))


class StaleOnReuse(PyBackend):
    """A member whose keep-alive races the proxy's reuse of a pooled
    connection: 200 for the first request of a connection, close without a
    byte on the second."""

    def respond(self, conn_no, req_no, head):
        return self.ok() if req_no == 1 else None


class ClosesAlways(PyBackend):
    """A failed member: reads every request and closes without answering."""

    def respond(self, conn_no, req_no, head):
        return None


class HeldRequests:
    """n concurrent GETs of `path` on fresh connections, each in its own
    thread (bounded by HTTP_TIMEOUT); join() returns their responses (or
    the exceptions raised)."""

    def __init__(self, port, n, path="/slow", cookie=None, timeout=HTTP_TIMEOUT):
        self.results = [None] * n
        self.threads = []
        for i in range(n):
            t = threading.Thread(target=self._one, args=(i, port, path, cookie, timeout),
                                 daemon=True)
            self.threads.append(t)
            t.start()

    def _one(self, i, port, path, cookie, timeout):
        try:
            self.results[i] = get(port, path, cookie=cookie, timeout=timeout)
        except Exception as e:   # noqa: BLE001 - reported by join()
            self.results[i] = e

    def join(self, timeout=HTTP_TIMEOUT + 5):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "held requests still running"
        return self.results


def status_samples(port, path=STATUS_PATH, validate=False):
    """The status endpoint's samples (name, labels, value); validate=True
    also runs assert_valid_exposition (promtool, strict parser)."""
    r = get(port, path)
    assert r.status == 200, r
    text = r.body.decode("utf-8")
    return assert_valid_exposition(text) if validate else prometheus_samples(text)


def member_values(port, metric, balancer_name, path=STATUS_PATH, validate=False):
    """{route: value} of a per-member metric of one balancer."""
    return {labels.get("route"): value
            for name, labels, value in status_samples(port, path, validate)
            if name == metric and labels.get("balancer") == balancer_name}


def request_counts(port, balancer_name, path=STATUS_PATH):
    """{(route, status): value} of sticky_route_requests_total."""
    return {(labels.get("route"), labels.get("status")): value
            for name, labels, value in status_samples(port, path)
            if name == "sticky_route_requests_total"
            and labels.get("balancer") == balancer_name}


def status_json_members(port, path=STATUS_PATH):
    import json
    r = get(port, path + "?json")
    assert r.status == 200, r
    return json.loads(r.body.decode("utf-8"))["members"]


def graceful_restart(proxy, body, timeout=15):
    """Rewrites the proxy's test body and restarts it gracefully; returns
    as soon as a child of the new generation runs and the proxy answers
    (old children may still be finishing: they no longer accept)."""
    text = proxy.conf.read_text()
    start = text.index("# ---- test body")
    proxy.conf.write_text(text[:start] + "# ---- test body\n"
                          + body.replace("@ROOT@", str(proxy.root))
                                .replace("@PORT@", str(proxy.port)) + "\n")
    before = set(proxy.child_pids())
    apache.ctl(proxy.conf, "graceful", timeout=timeout)

    def new_generation_answers():
        if not set(proxy.child_pids()) - before:
            return False
        try:
            get(proxy.port, STATUS_PATH)    # any answer
        except OSError:
            return False
        return True
    try:
        wait_until(new_generation_answers, timeout, 0.1, "a new generation answering")
    except TimeoutError as e:
        raise AssertionError("no new generation after graceful restart: %s" % e) from None


# --------------------------------------------------------------------------
# A resolver the test controls: apache2 in its own mount namespace, where a
# file of the test is bind-mounted over /etc/hosts (the machine's /etc is
# never touched). glibc reads the hosts file at every lookup; rewrite it in
# place (same inode), never by rename.

class HostsFile:
    def __init__(self, path):
        self.path = Path(path)
        self.set({})

    def set(self, names):
        """names: {name: [address, ...]}."""
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost"]
        for name, addrs in names.items():
            lines += ["%s %s" % (a, name) for a in addrs]
        with open(self.path, "r+" if self.path.exists() else "w") as f:
            f.seek(0)
            f.write("\n".join(lines) + "\n")
            f.truncate()

    def wrapper(self):
        return private_files_wrapper({"/etc/hosts": self.path})


def private_files_wrapper(files):
    """A command prefix running a process in a mount namespace of its own
    where each file of the test is bind-mounted over a system file
    ({"/etc/hosts": path, "/etc/resolv.conf": path}); the machine's files
    are never touched."""
    script, args = [], []
    for i, (target, source) in enumerate(sorted(files.items())):
        script.append('mount --bind "${%d}" "${%d}"' % (2 * i + 1, 2 * i + 2))
        args += [str(source), str(target)]
    n = len(args)
    return (["unshare", "--mount", "--propagation", "private", "sh", "-c",
             " && ".join(script) + ' && shift %d && exec "$@"' % n, "sh"] + args)
