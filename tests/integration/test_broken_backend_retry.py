"""A member that accepts the connection and closes it without answering (a
backend stopping, or resetting connections still in its accept queue).
mod_proxy answers 502 for that; the module retries a GET or HEAD once, as an
internal redirect that avoids the member that failed. Exactly one
Set-Cookie, naming the member that answered; a POST is not retried."""

import http.client
import json

import harness
from harness import STATUS_CONF, PyBackend, balancer, get, raw_request


def SilentBackend():
    """Accepts connections, reads the request, closes without a byte."""
    return PyBackend("silent", respond=lambda conn_no, req_no, head: None)


# (every PyBackend is stopped by the per-test fixture, also when a test fails)


def test_get_on_a_member_that_closes_without_answer_is_retried_with_one_cookie(backends, make_proxy):
    silent = SilentBackend()
    p = make_proxy(balancer("app", [(silent.port, "s1", "retry=0"), (backends["bravo"], "s2")]))
    for i in range(30):
        r = get(p.port)
        assert r.status == 200, (i, r)
        assert r.served_by == "bravo", (i, r)
        assert r.set_cookies == ["ROUTEID=s2; Path=/; HttpOnly; SameSite=Lax"], (i, r.headers)
    for i in range(10):
        r = get(p.port, cookie="ROUTEID=s1")
        assert r.status == 200 and r.served_by == "bravo", (i, r)
        assert r.set_cookies == ["ROUTEID=s2; Path=/; HttpOnly; SameSite=Lax"], (i, r.headers)
        assert r.sticky_status == "failover", (i, r)
    assert silent.connections >= 10, "the silent member was never tried"


def test_post_on_a_member_that_closes_without_answer_is_not_retried(backends, make_proxy):
    silent = SilentBackend()
    p = make_proxy(balancer("app", [(silent.port, "s1"), (backends["bravo"], "s2")]))
    r = raw_request(
        p.port,
        b"POST / HTTP/1.1\r\nHost: x\r\nCookie: ROUTEID=s1\r\nContent-Length: 3\r\n"
        b"Connection: close\r\n\r\nabc")
    assert r is not None and r.status == 502, r
    assert r.set_cookies == [], r.headers   # httpd's own error: no cookie
    assert silent.connections >= 1


def test_retry_can_be_turned_off(backends, make_proxy):
    silent = SilentBackend()
    p = make_proxy(balancer("app", [(silent.port, "s1"), (backends["bravo"], "s2")],
                            inner="StickyRouteRetry Off"))
    r = get(p.port, cookie="ROUTEID=s1")
    assert r.status == 502, r
    assert r.set_cookies == [], r.headers
    assert silent.connections >= 1


def sends_and_closes(name, data):
    """A member that sends `data` for every request, then closes."""
    return PyBackend(name, close_after=True, respond=lambda conn_no, req_no, head: data)


def Answers502():
    """A member that answers every request with its own 502 (and closes)."""
    return sends_and_closes("answers502", b"HTTP/1.1 502 Bad Gateway\r\nX-Served-By: answers502"
                            b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def test_a_members_own_502_is_not_retried_even_with_proxy_error_override(backends, make_proxy):
    bad = Answers502()
    p = make_proxy("ProxyErrorOverride On\n" +
                   balancer("app", [(bad.port, "s1"), (backends["bravo"], "s2")]))
    r = get(p.port, cookie="ROUTEID=s1")
    assert r.status == 502, r
    assert r.served_by != "bravo", r
    assert bad.connections == 1, bad.connections


def CutsOff():
    """Starts a 200 response and closes after a few bytes of its body."""
    return sends_and_closes("cutsoff", b"HTTP/1.1 200 OK\r\nX-Served-By: cutsoff\r\n"
                            b"Content-Length: 1000\r\n\r\n0123456789")


def test_a_response_cut_off_by_its_member_is_not_counted(backends, make_proxy):
    bad = CutsOff()
    p = make_proxy(STATUS_CONF
                   + balancer("app", [(bad.port, "s1"), (backends["bravo"], "s2")]))

    def counted():
        doc = json.loads(get(p.port, "/sticky-status?json").body.decode())
        return {m["route"]: sum(m["requests"].values()) for m in doc["members"]}

    for _ in range(3):
        conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
        conn.request("GET", "/", headers={"Cookie": "ROUTEID=s1"})
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("X-Served-By") == "cutsoff"
        try:
            body = resp.read()
        except http.client.IncompleteRead as e:
            body = e.partial
        assert len(body) < 1000, len(body)
        conn.close()
    assert get(p.port, cookie="ROUTEID=s2").status == 200
    got = harness.wait_until(lambda: counted().get("s2") == 1 and counted(), 5,
                             what="the s2 request counted")
    assert got.get("s1", 0) == 0, got
    assert bad.connections == 3
