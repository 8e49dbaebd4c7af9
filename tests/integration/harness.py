"""Integration harness: real Debian apache2 instances on 127.0.0.1.

Backends are apache2 (event MPM) serving static files that name them
(`X-Served-By` header and body).  The proxy is apache2 (event MPM, two child
processes) with mod_proxy_balancer and mod_sticky_route.  Every instance
lives in its own directory (ServerRoot, PidFile, ErrorLog, Mutex,
DefaultRuntimeDir) and is stopped with `-k stop` at teardown.
"""

import http.client
import os
import random
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
from proclib import proc_stats, wait_until  # noqa: E402,F401  (wait_until is re-exported)
TEMPLATES = HERE / "templates"
MODULE_SO = Path(os.environ.get("SR_MODULE", REPO / ".libs" / "mod_sticky_route.so"))
APACHE2 = os.environ.get("SR_APACHE2", "/usr/sbin/apache2")
MODULES_DIR = "/usr/lib/apache2/modules"

PORT_MIN, PORT_MAX = 20000, 20999   # this suite's port range, nothing else

# The cookie exactly as the contract says it is issued over plain HTTP.
SET_COOKIE_RE = re.compile(r"^ROUTEID=([A-Za-z0-9._-]+); Path=/; HttpOnly; SameSite=Lax$")
DERIVED_ROUTE_RE = re.compile(r"^r[A-Za-z0-9_-]{11}$")
TAG_RE = r"[A-Za-z0-9_-]{11}"

HTTP_TIMEOUT = 10


# --------------------------------------------------------------------------
# small utilities

_ports_lock = threading.Lock()
_ports_taken = set()


def _port_is_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _port_is_quiet(port):
    """Nothing accepts connections on the port (it is a usable dead port)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1)
    try:
        s.connect(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def free_port():
    """A port in 20000-20999 that is free now and not handed out before in
    this run.  Also used for 'dead' members: a port nobody listens on."""
    with _ports_lock:
        candidates = list(range(PORT_MIN, PORT_MAX + 1))
        random.shuffle(candidates)
        for port in candidates:
            if port in _ports_taken:
                continue
            if _port_is_free(port) and _port_is_quiet(port):
                _ports_taken.add(port)
                return port
    raise RuntimeError("no free port in %d-%d" % (PORT_MIN, PORT_MAX))


def children_of(pid):
    """PIDs whose parent is pid (from /proc)."""
    return [p for p, rest in proc_stats() if len(rest) > 1 and int(rest[1]) == pid]


def _reap(pid):
    """Collect the exit status of pid if it is our (possibly adopted) child."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def reap_all():
    """Collect every exited child (call only when no subprocess.run is busy)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def become_subreaper():
    """Orphaned apache2 processes (e.g. the children of a SIGKILLed parent)
    are reparented to us instead of to a pid 1 that may never reap them."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_CHILD_SUBREAPER = 36
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except Exception:
        pass


def pid_alive(pid):
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        state = stat[stat.rfind(")") + 2:].split()[0]
        if state != "Z":
            return True
        # A zombie thread-group leader whose other threads are still exiting
        # still holds the process's sockets.
        return len(os.listdir("/proc/%d/task" % pid)) > 1
    except OSError:
        return False


def user_lines():
    if os.geteuid() == 0:
        return "User www-data\nGroup www-data"
    return ""


# --------------------------------------------------------------------------
# httpd instances

class Httpd:
    """One apache2 instance with its own directory."""

    kind = "httpd"
    registry = []          # every instance started during the current test

    def __init__(self, base_dir, name, port=None):
        self.name = name
        self.port = port or free_port()
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
        text = (TEMPLATES / template).read_text()
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
        with open(out, "wb") as f:
            self.proc = subprocess.Popen(
                self.wrapper + [APACHE2, "-f", str(self.conf), "-k", "start", "-D", "NO_DETACH"],
                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)

        def started():
            if self.proc.poll() is not None:
                raise RuntimeError("%s %s failed to start (rc=%d):\n%s\n%s" % (
                    self.kind, self.name, self.proc.returncode,
                    out.read_text(errors="replace"), self.error_log[-3000:]))
            return self._read_pid()
        try:
            self.pid = wait_until(started, timeout, what="%s pid file" % self.name)
            wait_until(lambda: not _port_is_quiet(self.port), timeout,
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
            subprocess.run([APACHE2, "-f", str(self.conf), "-k", "stop"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=timeout)
        try:
            wait_until(lambda: not any(pid_alive(p) for p in pids), timeout,
                       what="%s to stop" % self.name)
        except TimeoutError:
            self.kill()
        self._wait_proc()
        self.pid = None

    def _wait_proc(self):
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

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
        wait_until(lambda: _port_is_quiet(self.port), 10,
                   what="%s port %d to close" % (self.name, self.port))
        self._wait_proc()
        self.pid = None


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
    res = subprocess.run(list(wrapper) + [APACHE2, "-t", "-f", str(p.conf)],
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    return res.returncode, (res.stdout + res.stderr).decode(errors="replace")


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

    @property
    def served_by(self):
        return self.get("X-Served-By")

    @property
    def sticky_status(self):
        return self.get("X-Sticky-Status")

    @property
    def sticky_route(self):
        return self.get("X-Sticky-Route")

    @property
    def route_changed(self):
        return self.get("X-Route-Changed")

    @property
    def set_cookies(self):
        return self.all("Set-Cookie")

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


def get(port, path="/", cookie=None, headers=None, host=None, timeout=HTTP_TIMEOUT):
    """One GET on a fresh connection (http.client keeps duplicate headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
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


def get_https(port, path="/", cookie=None, timeout=HTTP_TIMEOUT):
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ctx)
    try:
        h = {}
        if cookie is not None:
            h["Cookie"] = cookie
        conn.request("GET", path, headers=h)
        return _from_httpclient(conn.getresponse())
    finally:
        conn.close()


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

class PyBackend:
    """A threaded raw-socket HTTP/1.1 server on 127.0.0.1.

    `respond(conn_no, req_no, head)` gets the connection's number, the
    request's number on that connection (1 for the first) and the request
    head (bytes up to the blank line); it returns the bytes to send, or None
    to close the connection without sending anything.  Registered in
    Httpd.registry, so the per-test fixture stops it."""

    kind = "pybackend"
    MAX_CONNECTIONS = 256      # handler threads at once
    IDLE_TIMEOUT = 20          # seconds an idle keep-alive connection is kept

    def __init__(self, name, respond=None, port=None, host="127.0.0.1"):
        self.name = name
        if respond is not None:
            self.respond = respond
        self.host = host
        self.port = port or free_port()
        self.lock = threading.Lock()
        self.connections = 0            # accepted
        self.requests = 0               # requests read
        self.answered = 0               # responses sent (counted as the send begins)
        self.closed_unanswered = 0      # requests closed without a byte
        self.closed_on_reuse = 0        # ... of which on a reused connection
        self._open = set()
        self._threads = []
        self._slots = threading.BoundedSemaphore(self.MAX_CONNECTIONS)
        self._stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.host, self.port))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()
        Httpd.registry.append(self)

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    error_log = ""
    access_log = ""

    def respond(self, conn_no, req_no, head):
        raise NotImplementedError

    def ok(self, body=None, extra_headers=()):
        """A 200 keep-alive response naming this backend."""
        body = body if body is not None else ("served by %s\n" % self.name).encode()
        lines = ["HTTP/1.1 200 OK", "X-Served-By: %s" % self.name,
                 "Content-Type: text/plain", "Content-Length: %d" % len(body),
                 "Connection: keep-alive"] + list(extra_headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def _accept_loop(self):
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.2):
                continue
            try:
                conn, _ = self.sock.accept()
            except OSError:
                self._slots.release()
                continue
            with self.lock:
                self.connections += 1
                conn_no = self.connections
                self._open.add(conn)
            t = threading.Thread(target=self._serve, args=(conn, conn_no), daemon=True)
            self._threads.append(t)
            t.start()

    def _read_head(self, conn, buf):
        """Returns (head, rest) or (None, buf) when the peer closed/idle."""
        deadline = time.monotonic() + self.IDLE_TIMEOUT
        while b"\r\n\r\n" not in buf:
            if self._stop.is_set() or time.monotonic() > deadline:
                return None, buf
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return None, buf
            if not chunk:
                return None, buf
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        return head, rest

    def _serve(self, conn, conn_no):
        try:
            conn.settimeout(0.5)
            buf = b""
            req_no = 0
            while not self._stop.is_set():
                head, buf = self._read_head(conn, buf)
                if head is None:
                    return
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                need = int(m.group(1)) if m else 0
                deadline = time.monotonic() + 5
                while len(buf) < need and time.monotonic() < deadline:
                    try:
                        chunk = conn.recv(65536)
                    except socket.timeout:
                        continue
                    if not chunk:
                        return
                    buf += chunk
                buf = buf[need:]
                req_no += 1
                with self.lock:
                    self.requests += 1
                out = self.respond(conn_no, req_no, head)
                if out is None:
                    with self.lock:
                        self.closed_unanswered += 1
                        if req_no > 1:
                            self.closed_on_reuse += 1
                    return
                # counted before the send: a client that has read the
                # response must find it counted (it was counted after the
                # send, and a test read 5 of 6 answered)
                with self.lock:
                    self.answered += 1
                try:
                    conn.sendall(out)
                except OSError:
                    with self.lock:
                        self.answered -= 1
                    raise
        except OSError:
            pass
        finally:
            with self.lock:
                self._open.discard(conn)
            try:
                conn.close()
            except OSError:
                pass
            self._slots.release()

    def running(self):
        return not self._stop.is_set()

    def stop(self, timeout=5):
        if self._stop.is_set():
            return
        self._stop.set()
        self._acceptor.join(timeout)
        with self.lock:
            conns = list(self._open)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.sock.close()


# --------------------------------------------------------------------------
# balancer-manager (mod_proxy_balancer's handler): edits are POSTs carrying
# the balancer's nonce, with a Referer naming the host of the request.

class BalancerManager:
    def __init__(self, port, path="/balancer-manager", host="127.0.0.1"):
        self.port = port
        self.path = path
        self.host = host

    def _headers(self):
        return {"Host": "%s:%d" % (self.host, self.port),
                "Referer": "http://%s:%d%s" % (self.host, self.port, self.path)}

    def page(self):
        r = get(self.port, self.path, headers=self._headers())
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
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
        try:
            h = self._headers()
            h["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request("POST", self.path, body=body, headers=h)
            r = _from_httpclient(conn.getresponse())
        finally:
            conn.close()
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
# status endpoint output checks

PROMTOOL = os.environ.get("SR_PROMTOOL", "/usr/bin/promtool")


def promtool_check(text):
    """`promtool check metrics` on the exposition: (returncode, output)."""
    data = text if isinstance(text, bytes) else text.encode()
    res = subprocess.run([PROMTOOL, "check", "metrics"], input=data,
                         capture_output=True, timeout=30)
    return res.returncode, (res.stdout + res.stderr).decode(errors="replace")


def prometheus_samples(text):
    """Every sample of the exposition as (name, labels dict, value), parsed by
    python3-prometheus-client's text parser."""
    from prometheus_client.parser import text_string_to_metric_families
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.append((s.name, dict(s.labels), s.value))
    return out


def duplicate_series(samples):
    """Samples whose metric name and label set occur more than once."""
    seen, dups = set(), []
    for name, labels, _ in samples:
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            dups.append(key)
        seen.add(key)
    return dups


def assert_valid_exposition(text):
    """promtool accepts it, the strict parser parses it, no series twice.
    Returns the parsed samples."""
    rc, out = promtool_check(text)
    assert rc == 0, "promtool check metrics: rc=%d\n%s\n---\n%s" % (rc, out, text)
    samples = prometheus_samples(text)
    dups = duplicate_series(samples)
    assert dups == [], "series given twice: %s\n---\n%s" % (dups, text)
    return samples


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
    subprocess.run([APACHE2, "-f", str(proxy.conf), "-k", "graceful"], check=True,
                   timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if set(proxy.child_pids()) - before:
            try:
                get(proxy.port, STATUS_PATH)    # any answer
                return
            except OSError:
                pass
        time.sleep(0.1)
    raise AssertionError("no new generation after graceful restart")


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
