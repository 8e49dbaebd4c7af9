"""PyBackend: the one scriptable backend of the test suites, a threaded
raw-socket HTTP/1.1 server whose every connection is handled by `respond`
(stale keep-alive connections, members that close without answering or cut
a response short, slow answers, ...). 127.0.0.1 by default, one thread per
connection, bounded."""

import re
import socket
import threading
import time

from .apache import Httpd


class InProcessServer:
    """What every server run by threads of the test process shares: a stop
    event, running(), and stop() that acts once (then _shutdown(timeout))."""

    def running(self):
        return not self._stop.is_set()

    def stop(self, timeout=5):
        if self._stop.is_set():
            return
        self._stop.set()
        self._shutdown(timeout)

    def _shutdown(self, timeout):
        raise NotImplementedError


class PyBackend(InProcessServer):
    """A threaded raw-socket HTTP/1.1 server on 127.0.0.1.

    `respond(conn_no, req_no, head)` gets the connection's number, the
    request's number on that connection (1 for the first) and the request
    head (bytes up to the blank line); it returns the bytes to send, or None
    to close the connection without sending anything.  close_after: close
    the connection once a response is sent (a member that closes, or cuts a
    response short).  Registered in Httpd.registry, so the per-test fixture
    stops it.  `ports`, a PortPool, gives the port when none is given."""

    kind = "pybackend"
    MAX_CONNECTIONS = 256      # handler threads at once
    IDLE_TIMEOUT = 20          # seconds an idle keep-alive connection is kept
    ports = None               # a PortPool (a suite's subclass sets it)

    def __init__(self, name, respond=None, port=None, host="127.0.0.1", close_after=False):
        self.name = name
        if respond is not None:
            self.respond = respond
        self.close_after = close_after
        self.host = host
        self.port = port or self.ports.take()
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

    def handle(self, conn, conn_no):
        """Serves one accepted connection until it is to be closed: HTTP/1.1
        requests answered by respond(). A backend speaking something else
        on the connection (a WebSocket after an upgrade) overrides it."""
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
            if self.close_after:
                return

    def _serve(self, conn, conn_no):
        try:
            self.handle(conn, conn_no)
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

    def _shutdown(self, timeout):
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
