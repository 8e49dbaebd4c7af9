"""WebSocket over TLS (wss) is sticky: a page's cookie (Secure on HTTPS)
takes every later upgrade request to the page's member (mod_proxy_http
tunnels the connection: upgrade=websocket on each member). Backends: a
minimal RFC 6455 server of this file (handshake, text frames echoed with the
member's name; a plain GET answered 200 with the member's name)."""

import base64
import hashlib
import os
import socket
import ssl

import pytest

from harness import PyBackend, free_port, get_https, self_signed_certificate

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"   # RFC 6455 section 1.3


def ws_accept(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def read_frame(sock, buffered=b""):
    """(opcode, payload) of one frame; masked or not."""
    data = buffered

    def need(n):
        nonlocal data
        while len(data) < n:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed inside a frame")
            data += chunk
    need(2)
    opcode, masked, length = data[0] & 0x0F, data[1] & 0x80, data[1] & 0x7F
    pos = 2
    if length == 126:
        need(4)
        length, pos = int.from_bytes(data[2:4], "big"), 4
    elif length == 127:
        need(10)
        length, pos = int.from_bytes(data[2:10], "big"), 10
    mask = b""
    if masked:
        need(pos + 4)
        mask, pos = data[pos:pos + 4], pos + 4
    need(pos + length)
    payload = data[pos:pos + length]
    if masked:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return opcode, payload


def frame(payload, masked):
    """A final text frame (payload below 126 bytes)."""
    assert len(payload) < 126
    if not masked:
        return bytes([0x81, len(payload)]) + payload
    mask = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + mask + \
        bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class WsBackend(PyBackend):
    """Answers an upgrade with 101, then each text frame with NAME:payload."""

    kind = "wsbackend"

    def __init__(self, name):
        self.upgrades = 0
        super().__init__(name)

    def handle(self, conn, conn_no):
        conn.settimeout(10)
        try:
            head, rest = read_head(conn)
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (line.partition(":") for line in head.split("\r\n")[1:])}
            if headers.get("upgrade", "").lower() != "websocket":
                body = self.name.encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                             b"Connection: close\r\n\r\n%s" % (len(body), body))
                return
            self.upgrades += 1
            conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                          "X-Served-By: %s\r\n\r\n"
                          % (ws_accept(headers["sec-websocket-key"]), self.name)).encode())
            while True:
                opcode, payload = read_frame(conn, rest)
                rest = b""
                if opcode == 0x8:      # close
                    return
                conn.sendall(frame(self.name.encode() + b":" + payload, masked=False))
        except (OSError, ConnectionError, KeyError):
            return


def wss_exchange(port, cookie=None, message=b"hello", upgrade="websocket"):
    """One wss connection to the proxy: (status line, Set-Cookie values,
    the echoed message, or the body of a response that is not a 101)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET /chat HTTP/1.1", "Host: localhost:%d" % port, "Upgrade: %s" % upgrade,
                 "Connection: keep-alive, Upgrade", "Sec-WebSocket-Key: %s" % key,
                 "Sec-WebSocket-Version: 13"]
        if cookie:
            lines.append("Cookie: %s" % cookie)
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head, rest = read_head(s)
        status = head.split("\r\n")[0]
        cookies = [line.split(":", 1)[1].strip() for line in head.split("\r\n")[1:]
                   if line.lower().startswith("set-cookie:")]
        accept = [line.split(":", 1)[1].strip() for line in head.split("\r\n")[1:]
                  if line.lower().startswith("sec-websocket-accept:")]
        if " 101 " not in status + " ":
            length = [int(line.split(":", 1)[1]) for line in head.split("\r\n")[1:]
                      if line.lower().startswith("content-length:")]
            body = rest
            while length and len(body) < length[0]:
                chunk = s.recv(4096)
                if not chunk:
                    break
                body += chunk
            return status, cookies, body
        assert accept == [ws_accept(key)], head
        s.sendall(frame(message, masked=True))
        opcode, payload = read_frame(s, rest)
        s.sendall(bytes([0x88, 0x80]) + os.urandom(4))    # close, masked, empty
        return status, cookies, payload


@pytest.fixture(scope="module")
def certificate(run_dir):
    return self_signed_certificate(run_dir / "wss-tls", "localhost")


def wss_proxy(make_proxy, certificate):
    crt, key = certificate
    members = {"s1": WsBackend("alpha"), "s2": WsBackend("bravo")}
    tls_port = free_port()
    lines = ['<Proxy "balancer://ws">']
    for route, b in members.items():
        lines.append('    BalancerMember "%s" route=%s ttl=5 upgrade=websocket' % (b.url, route))
    lines += ["    ProxySet lbmethod=sticky", "</Proxy>"]
    body = ("Listen 127.0.0.1:%d https\n" % tls_port
            + "<VirtualHost 127.0.0.1:%d>\n" % tls_port
            + "SSLEngine on\nSSLCertificateFile %s\nSSLCertificateKeyFile %s\n" % (crt, key)
            + "\n".join(lines) + "\n"
            + 'ProxyPass "/" "balancer://ws/"\n'
            + "</VirtualHost>\n")
    make_proxy(body, extra_modules=["socache_shmcb", "ssl"])
    return members, tls_port


def test_wss_upgrades_follow_the_pages_cookie(make_proxy, certificate):
    members, tls_port = wss_proxy(make_proxy, certificate)
    r = get_https(tls_port, "/")
    assert r.status == 200 and len(r.set_cookies) == 1, r
    attrs = [a.strip() for a in r.set_cookies[0].split(";")]
    assert "Secure" in attrs and "HttpOnly" in attrs, r.set_cookies
    cookie = attrs[0]
    route = cookie.split("=", 1)[1]
    page_member = members[route].name
    assert r.body.decode() == page_member

    for i in range(10):
        status, cookies, echoed = wss_exchange(tls_port, cookie=cookie, message=b"m%d" % i)
        assert "101" in status and cookies == [], (status, cookies)
        assert echoed == page_member.encode() + b":m%d" % i
    other = "s2" if route == "s1" else "s1"
    status, _, echoed = wss_exchange(tls_port, cookie="ROUTEID=%s" % other)
    assert "101" in status and echoed == members[other].name.encode() + b":hello"
    assert members[route].upgrades == 10 and members[other].upgrades == 1


def test_wss_upgrade_without_a_cookie_gets_one_in_its_101(make_proxy, certificate):
    """mod_proxy_http sends the member's 101 as an interim response, which
    passes no output filter: the module puts the cookie of an upgrade in the
    response headers before the member answers (sr_cookie_early)."""
    members, tls_port = wss_proxy(make_proxy, certificate)
    status, cookies, echoed = wss_exchange(tls_port)
    assert "101" in status and echoed is not None, (status, echoed)
    assert len(cookies) == 1, cookies
    attrs = [a.strip() for a in cookies[0].split(";")]
    assert "Secure" in attrs and "HttpOnly" in attrs, cookies
    name = echoed.split(b":")[0].decode()
    route = attrs[0].split("=", 1)[1]
    assert members[route].name == name, (route, name)
    # the cookie pins: every later upgrade and page go to the same member
    for i in range(5):
        status, again, echoed = wss_exchange(tls_port, cookie=attrs[0], message=b"m%d" % i)
        assert "101" in status and again == [], (status, again)
        assert echoed == name.encode() + b":m%d" % i
    r = get_https(tls_port, "/", cookie=attrs[0])
    assert r.status == 200 and r.body.decode() == name and r.set_cookies == [], r
    assert members[route].upgrades == 6


def test_upgrade_answered_with_a_final_response_gets_one_cookie(make_proxy, certificate):
    """An upgrade the member does not take (mod_proxy_http passes no Upgrade
    it was not configured for; the member answers 200): the early cookie is
    taken back and the response filter adds it once, as for any response."""
    members, tls_port = wss_proxy(make_proxy, certificate)
    status, cookies, body = wss_exchange(tls_port, upgrade="h2c")
    assert " 200 " in status + " ", (status, body)
    assert len(cookies) == 1, cookies
    route = cookies[0].split(";")[0].split("=", 1)[1]
    assert members[route].name.encode() == body, (cookies, body)
    # the same with the cookie: a hit, no Set-Cookie at all
    status, again, body2 = wss_exchange(tls_port, cookie=cookies[0].split(";")[0],
                                        upgrade="h2c")
    assert " 200 " in status + " " and again == [] and body2 == body, (status, again, body2)
