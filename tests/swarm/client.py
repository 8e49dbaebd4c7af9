#!/usr/bin/python3
"""Clients of the Swarm test (tests/swarm/run.sh), run INSIDE a client
container attached to the stack's frontend network. Python's standard
library only (the client image has Debian's python3 and nothing else).

The proxies are reached by their tasks' own addresses: `tasks.reverse-proxy`
(the Swarm routing mesh and the service VIP do not work on these machines,
and a test must see which replica it talks to anyway).

  client.py [--https CAFILE] probe OUT  every proxy replica: page, assets, API, admin 403
  client.py [--https CAFILE] cross OUT N MARK
                                       N clients: a cookie from one replica, then the
                                       other replica with it (MARK tags the requests)
  client.py [--https CAFILE] load OUT STOP_FILE MAX_S [--sticky N] [--fresh N] [--api N] [--seed S]
        sticky clients: keep-alive, cookie jar, sessions of random length
          (then a new session without a cookie), a new connection to the next
          replica every few requests (so every client hops between replicas);
        fresh clients: every request a new session (no cookie);
        api clients: /api/ round robin.
        Runs until STOP_FILE exists or MAX_S seconds; writes every request.
  client.py --https CAFILE tls OUT PUBLIC_PORT
        TLS=files: every replica negotiates h2 by ALPN; its plain port (80)
        answers a redirect to https://localhost:PUBLIC_PORT/PATH, except the
        ACME challenge path.

--https CAFILE: HTTPS on port 443 (TLS=files), trusting only CAFILE (the
test's CA, not the system's), the certificate verified for SERVER_NAME
(localhost: the proxies are reached by address, the name is the SNI and
Host); the cookie must then carry `Secure`, and without it a Set-Cookie
is a failed request (on plain HTTP it must not).

Failures are recorded, not raised. What counts as what: the retry rule of
tests/faults, the same code (tests/httpretry.py, copied into the image next
to this file): an idempotent request whose REUSED connection was closed
before any byte of a response is retried once on a new connection and
counted as a retry (RFC 9112 9.3.1); a connection the server closed while
idle is noticed before sending and re-opened (counted as stale). A connect
that fails (the replica's address is gone: refused, unreachable, timeout)
sends nothing; the client tries the next address of tasks.reverse-proxy, as
a browser tries the next address of a name, and counts it as a connect
fallback. A name that resolves to nothing (a fresh deploy: no proxy task is
healthy yet) sends nothing either: recorded with nodns, judged by checks.py.
Anything else - an error after the request was sent on a new connection, a
second failure, a status other than 2xx/3xx/404 - is a failed request.
"""
import http.client
import json
import os
import random
import re
import socket
import ssl
import sys
import threading
import time

from httpretry import connection_dropped, may_retry

PROXIES = "tasks.reverse-proxy"
SERVER_NAME = "localhost"   # the stack's SERVER_NAME: Host, SNI, the certificate's name
PORT = 80
TLS = None                  # --https: the client's SSLContext (http/1.1 by ALPN)
CONNECT_TIMEOUT = 3.0       # as the proxy's connectiontimeout=3
READ_TIMEOUT = 20.0
STATIC_PATHS = ["/", "/css/style.css", "/js/app.js", "/img/logo.svg", "/img/dots.png"]
COOKIE_RE = re.compile(r"^ROUTEID=([A-Za-z0-9._~-]+); Path=/; HttpOnly; SameSite=Lax$")
# Over HTTPS the module adds Secure to the cookie by itself.
COOKIE_RE_TLS = re.compile(r"^ROUTEID=([A-Za-z0-9._~-]+); Path=/; HttpOnly; SameSite=Lax; Secure$")
CONNECT_ERRORS = (ConnectionRefusedError, socket.timeout, TimeoutError, OSError)


def use_https(cafile):
    """--https: port 443, and a context that trusts only the test's CA."""
    global PORT, TLS, COOKIE_RE
    PORT, COOKIE_RE = 443, COOKIE_RE_TLS
    TLS = tls_context(cafile, ["http/1.1"])


def tls_context(cafile, alpn):
    # cafile given: create_default_context loads it and not the system's roots
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(alpn)
    return ctx


class TLSConnection(http.client.HTTPSConnection):
    """HTTPS to a replica's address, for the name SERVER_NAME (SNI, the
    certificate's check, Host). connect() is the TCP connect only (a failed
    one is a connect fallback: nothing sent); handshake() then runs TLS, and
    its failure is a failed request, never a fallback."""

    def __init__(self, addr, port, timeout, context):
        super().__init__(addr, port, timeout=timeout, context=context)
        # never a silent re-connect (it would skip the handshake)
        self.auto_open = 0

    def connect(self):
        http.client.HTTPConnection.connect(self)

    def handshake(self):
        self.sock = self._context.wrap_socket(self.sock, server_hostname=SERVER_NAME)


def new_connection(addr, timeout, ctx=None):
    """A connection to addr:PORT (not connected yet): plain, or TLS with ctx
    (default: the --https context)."""
    ctx = ctx or TLS
    if ctx is None:
        return http.client.HTTPConnection(addr, PORT, timeout=timeout)
    return TLSConnection(addr, PORT, timeout, ctx)


def resolve():
    """The replicas' addresses, sorted (empty when the name does not resolve)."""
    try:
        infos = socket.getaddrinfo(PROXIES, PORT, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    return sorted({i[4][0] for i in infos}, key=lambda a: tuple(int(x) for x in a.split(".")))


class Conn:
    """A keep-alive connection to one replica, opened with fallback over the
    replicas' addresses."""

    def __init__(self):
        self.conn = None
        self.addr = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        self.addr = None

    def open(self, start, fallbacks):
        """Connects to the address at index start (mod n) of a fresh DNS
        answer, else the next ones; appends (addr, error, seconds) of every
        failed connect to fallbacks. Returns False when none connected."""
        for attempt in range(4):
            addrs = resolve()
            if not addrs:
                fallbacks.append(("-", "no address for " + PROXIES, 0.0))
                time.sleep(0.2)
                continue
            addr = addrs[(start + attempt) % len(addrs)]
            c = new_connection(addr, CONNECT_TIMEOUT)
            t = time.monotonic()
            try:
                c.connect()
            except CONNECT_ERRORS as e:
                c.close()
                fallbacks.append((addr, "%s: %s" % (type(e).__name__, e), time.monotonic() - t))
                continue
            self.conn, self.addr = c, addr
            if TLS is not None:
                # (outside the fallback: a failed handshake is a failure)
                c.handshake()
            c.sock.settimeout(READ_TIMEOUT)
            return True
        return False


def one_request(conn, path, cookie, rec):
    """Sends path on conn (a Conn that is open); fills rec; raises on errors."""
    headers = {"Host": SERVER_NAME}
    if cookie:
        headers["Cookie"] = "ROUTEID=" + cookie
    conn.conn.request("GET", path, headers=headers)
    resp = conn.conn.getresponse()
    resp.read()
    rec["status"] = resp.status
    rec["served"] = resp.getheader("X-Served-By")
    rec["set"] = [v for k, v in resp.getheaders() if k.lower() == "set-cookie"]
    return resp


class Client(threading.Thread):
    def __init__(self, kind, tid, stop, deadline, seed, hop, think):
        super().__init__(daemon=True, name="%s-%d" % (kind, tid))
        self.kind, self.tid, self.stop, self.deadline = kind, tid, stop, deadline
        self.rng = random.Random(seed * 1000 + tid + {"sticky": 0, "fresh": 300, "api": 600}[kind])
        self.hop, self.think = hop, think
        self.recs = []
        self.crash = None
        self.cookie = None
        self.session = 0
        self.session_left = 0

    def run(self):
        try:
            self.loop()
        except BaseException as e:      # noqa: BLE001 - reported
            self.crash = repr(e)

    def next_path(self, n):
        if self.kind == "api":
            return "/api/?count=1"
        return STATIC_PATHS[(n + self.tid) % len(STATIC_PATHS)]

    def loop(self):
        conn = Conn()
        start = self.tid
        n = 0
        since_hop = 0
        retry = None
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            if self.kind == "sticky" and self.session_left <= 0 and retry is None:
                # A new session: a new user, no cookie.
                self.cookie = None
                self.session += 1
                self.session_left = self.rng.randint(60, 240)
            if retry is not None:
                path, retried = retry, True
            else:
                path, retried = self.next_path(n), False
            retry = None
            rec = {"k": self.kind, "c": self.tid, "s": self.session, "p": path,
                   "sent": self.cookie if self.kind == "sticky" else None,
                   "retried": retried, "stale": False, "fb": [], "reused": False}
            if conn.conn is not None and self.hop and since_hop >= self.hop:
                conn.close()            # hop: the next replica
                start += 1
                since_hop = 0
            if conn.conn is not None and connection_dropped(conn.conn):
                conn.close()
                rec["stale"] = True
            rec["reused"] = conn.conn is not None
            t0 = time.time()
            rec["t0"] = t0
            try:
                opened = conn.conn is not None or conn.open(start, rec["fb"])
            except Exception as e:      # noqa: BLE001 - the TLS handshake: a failure
                rec.update(t1=time.time(), err="handshake: %s: %s" % (type(e).__name__, e),
                           addr=conn.addr)
                conn.close()
                self.recs.append(rec)
                time.sleep(0.05)
                continue
            if not opened:
                rec.update(t1=time.time(), err="connect: no replica answered", addr=None,
                           nodns=all(a == "-" for a, _, _ in rec["fb"]))
                self.recs.append(rec)
                time.sleep(0.2)
                continue
            rec["addr"] = conn.addr
            try:
                resp = one_request(conn, path, rec["sent"], rec)
            except Exception as e:      # noqa: BLE001 - every failure counts
                reused = rec["reused"]
                conn.close()
                if may_retry(e, reused, retried):
                    # RFC 9112 9.3.1: retried once on a new connection.
                    rec.update(t1=time.time(), err="retried: %s: %s" % (type(e).__name__, e),
                               retry=True)
                    self.recs.append(rec)
                    retry = path
                    continue
                rec.update(t1=time.time(), err="%s: %s" % (type(e).__name__, e))
                self.recs.append(rec)
                time.sleep(0.05)
                continue
            rec["t1"] = time.time()
            self.recs.append(rec)
            n += 1
            since_hop += 1
            bad = [sc for sc in rec["set"] if not COOKIE_RE.match(sc)]
            if bad:
                # (Secure missing over HTTPS, or there over HTTP): a failure
                rec["err"] = "Set-Cookie %r" % bad[0]
            if self.kind == "sticky":
                self.session_left -= 1
                for sc in rec["set"]:
                    m = COOKIE_RE.match(sc)
                    if m:
                        self.cookie = m.group(1)
            if resp.will_close:
                conn.close()
            if self.kind == "fresh":
                conn.close()
                start += 1
            time.sleep(self.think)
        conn.close()


def cmd_load(out, stop_file, max_s, args):
    opts = {"--sticky": 24, "--fresh": 3, "--api": 2, "--seed": 1, "--hop": 25, "--think": 0.04}
    it = iter(args)
    for a in it:
        if a not in opts:
            raise SystemExit("unknown option %s" % a)
        opts[a] = type(opts[a])(next(it))
    stop = threading.Event()
    deadline = time.monotonic() + float(max_s)
    clients = []
    for kind, n in (("sticky", opts["--sticky"]), ("fresh", opts["--fresh"]), ("api", opts["--api"])):
        for tid in range(n):
            clients.append(Client(kind, tid, stop, deadline, opts["--seed"],
                                  opts["--hop"] if kind == "sticky" else 0, opts["--think"]))
    t_start = time.time()
    for c in clients:
        c.start()
    print("load: %d clients on %s" % (len(clients), resolve()), flush=True)
    while time.monotonic() < deadline and not os.path.exists(stop_file):
        time.sleep(0.2)
    stop.set()
    for c in clients:
        c.join(READ_TIMEOUT + 2 * CONNECT_TIMEOUT + 5)
    recs = [r for c in clients for r in c.recs]
    crashes = [c.crash for c in clients if c.crash] + \
        ["%s still running" % c.name for c in clients if c.is_alive()]
    with open(out + ".tmp", "w") as f:
        json.dump({"start": t_start, "end": time.time(), "records": recs, "crashes": crashes}, f)
    os.rename(out + ".tmp", out)
    print("load: %d requests, %d errors, %d crashes" %
          (len(recs), sum(1 for r in recs if r.get("err")), len(crashes)), flush=True)


def simple_get(addr, path, cookie=None, marker=None, plain=False):
    """One request on a new connection (plain: HTTP on port 80 whatever
    --https says)."""
    if plain:
        c = http.client.HTTPConnection(addr, 80, timeout=10)
    else:
        c = new_connection(addr, 10)
    headers = {"Host": SERVER_NAME}
    if cookie:
        headers["Cookie"] = "ROUTEID=" + cookie
    if marker:
        path += ("&" if "?" in path else "?") + "sr-mark=" + marker
    try:
        c.connect()
        if isinstance(c, TLSConnection):
            c.handshake()
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        body = r.read()
        return {"status": r.status, "served": r.getheader("X-Served-By"),
                "set": [v for k, v in r.getheaders() if k.lower() == "set-cookie"],
                "location": r.getheader("Location"),
                "body": body.decode("utf-8", "replace")}
    finally:
        c.close()


def cookie_of(res):
    for sc in res["set"]:
        m = COOKIE_RE.match(sc)
        if m:
            return m.group(1)
    return None


def cmd_probe(out):
    addrs = resolve()
    res = {"proxies": addrs, "replicas": {}}
    for a in addrs:
        r = {"pages": [], "api": [], "admin": {}}
        # (12: the load runs meanwhile and takes its turns of the schedules)
        for _ in range(12):
            page = simple_get(a, "/")
            cookie = cookie_of(page)
            assets = [simple_get(a, p, cookie) for p in STATIC_PATHS[1:]]
            r["pages"].append({"status": page["status"], "served": page["served"], "cookie": cookie,
                               "assets": [(x["status"], x["served"], len(x["set"])) for x in assets]})
        for _ in range(12):
            x = simple_get(a, "/api/?count=1")
            r["api"].append((x["status"], x["served"]))
        for p in ("/sticky-route-status", "/balancer-manager"):
            r["admin"][p] = simple_get(a, p)["status"]
        res["replicas"][a] = r
    with open(out, "w") as f:
        json.dump(res, f)
    print(json.dumps({a: [p["served"] for p in r["pages"]] for a, r in res["replicas"].items()}))


def cmd_cross(out, n, mark):
    addrs = resolve()
    res = {"proxies": addrs, "clients": []}
    if len(addrs) < 2:
        res["error"] = "fewer than two replicas: %s" % addrs
    else:
        for i in range(int(n)):
            a, b = addrs[i % len(addrs)], addrs[(i + 1) % len(addrs)]
            first = simple_get(a, "/", marker="%s-%d-a" % (mark, i))
            cookie = cookie_of(first)
            second = simple_get(b, "/", cookie, marker="%s-%d-b" % (mark, i))
            third = simple_get(a, "/css/style.css", cookie, marker="%s-%d-c" % (mark, i))
            res["clients"].append({
                "i": i, "a": a, "b": b, "cookie": cookie,
                "first": [first["status"], first["served"], len(first["set"])],
                "second": [second["status"], second["served"], len(second["set"])],
                "third": [third["status"], third["served"], len(third["set"])]})
    with open(out, "w") as f:
        json.dump(res, f)


def cmd_tls(out, cafile, public_port):
    """ALPN h2 on every replica; the plain port redirects (not the ACME path)."""
    addrs = resolve()
    res = {"proxies": addrs, "replicas": {}}
    h2 = tls_context(cafile, ["h2", "http/1.1"])
    for a in addrs:
        c = TLSConnection(a, PORT, 10, h2)
        try:
            c.connect()
            c.handshake()
            alpn = c.sock.selected_alpn_protocol()
            version = c.sock.version()
        finally:
            c.close()
        redirects = {}
        for p in ("/", "/css/style.css", "/api/?count=1", "/.well-known/acme-challenge/sr-test"):
            x = simple_get(a, p, plain=True)
            redirects[p] = [x["status"], x["location"], len(x["set"])]
        res["replicas"][a] = {"alpn": alpn, "tls_version": version, "plain": redirects}
    res["public_port"] = int(public_port)
    with open(out, "w") as f:
        json.dump(res, f)
    print(json.dumps(res))


def main(argv):
    if len(argv) >= 3 and argv[1] == "--https":
        cafile = argv[2]
        use_https(cafile)
        argv = argv[:1] + argv[3:]
        if len(argv) == 4 and argv[1] == "tls":
            cmd_tls(argv[2], cafile, argv[3])
            return 0
    if len(argv) >= 3 and argv[1] == "probe":
        cmd_probe(argv[2])
    elif len(argv) == 5 and argv[1] == "cross":
        cmd_cross(argv[2], argv[3], argv[4])
    elif len(argv) >= 5 and argv[1] == "load":
        cmd_load(argv[2], argv[3], argv[4], argv[5:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
