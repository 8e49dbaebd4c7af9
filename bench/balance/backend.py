#!/usr/bin/python3
"""A balance-bench member: a threaded HTTP/1.1 server on 127.0.0.1 whose
service time the client chooses (GET /anything?ms=N sleeps N ms, at most 2 s),
so that every contender sees exactly the same work, in flight for exactly as
long. Every answer carries `X-Served-By: NAME` (the member's route) and a
small body with Content-Length; connections are kept alive for IDLE seconds
(90 by default: longer than the proxies' pool ttl=60, so a proxy never sends
a request on a connection the member is closing).

    backend.py --port 23101 --name m1 [--idle 90]

SIGTERM stops it at once (the listener closes, threads are daemons); the bench
kills it with SIGKILL for "member down". Standard library only.
"""
import argparse
import http.server
import signal
import socketserver
import sys
import time
import urllib.parse

MAX_MS = 2000


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per answer (headers and body buffered, flushed by
    # handle_one_request) and no Nagle: otherwise the body waits for the
    # proxy's delayed ACK of the headers (~40 ms per request).
    wbufsize = 65536
    disable_nagle_algorithm = True
    server_version = "balance-member"
    sys_version = ""

    def log_message(self, fmt, *args):  # no per-request log: the client has it
        pass

    def do_GET(self):
        q = urllib.parse.urlsplit(self.path).query
        ms = 0
        for k, v in urllib.parse.parse_qsl(q):
            if k == "ms":
                try:
                    ms = max(0, min(MAX_MS, int(v)))
                except ValueError:
                    ms = 0
        if ms:
            time.sleep(ms / 1000.0)
        body = b"member %s ms=%d\n" % (self.server.member_name.encode(), ms)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Served-By", self.server.member_name)
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--idle", type=float, default=90.0)
    a = ap.parse_args()
    Handler.timeout = a.idle          # idle keep-alive connections end after this
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.member_name = a.name
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        srv.serve_forever(poll_interval=0.5)
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
