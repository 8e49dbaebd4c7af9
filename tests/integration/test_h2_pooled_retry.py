"""h2 GETs survive a pooled backend connection that breaks (issue 19).

The member answers the first request of every TCP connection keep-alive and
closes the connection without a byte when the next request arrives on it: a
member whose keep-alive timeout races the proxy's reuse of a pooled
connection (or a member restarting gracefully).  mod_proxy_http logs AH01102.
On an HTTP/1.1 client connection that was used before, it closes the client
connection without an answer, for the client to retry (RFC 9112 9.3.1); an
HTTP/2 stream runs on a secondary connection whose keepalives count is 1, so
mod_proxy_http takes that same path there, and the client gets a 502 it
cannot retry.  The module sends such a GET again on a new backend connection
(to the same member: the client stays on it).
"""

import http.client
import re
import shutil
import subprocess

import pytest

from harness import ClosesAlways, StaleOnReuse, balancer

H2LOAD = shutil.which("h2load")
pytestmark = pytest.mark.skipif(H2LOAD is None or shutil.which("nghttp") is None,
                                reason="h2load, nghttp (nghttp2-client) not installed")

H2C = 'Protocols h2c http/1.1\n'


def h2_proxy(make_proxy, members):
    return make_proxy(H2C + balancer("app", members), extra_modules=("http2",))


NGHTTP = shutil.which("nghttp")


def nghttp_streams(port, n, cookie=None, method="GET"):
    """n requests, one after the other, each a stream of its own h2c
    connection (nghttp, prior knowledge); returns [(status, X-Served-By,
    X-Sticky-Status, [Set-Cookie])]."""
    rows = []
    for _ in range(n):
        cmd = [NGHTTP, "-nv", "-t", "30"]
        if method != "GET":
            cmd += ["-H", ":method: " + method]
        if cookie:
            cmd += ["-H", "cookie: " + cookie]
        cmd.append("http://127.0.0.1:%d/" % port)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        head = {}
        for m in re.finditer(r"recv \(stream_id=\d+\) ([^:\s][^:]*|:status): (.*)",
                             done.stdout):
            head.setdefault(m.group(1), []).append(m.group(2))
        status = int(head.get(":status", ["0"])[0])
        rows.append((status, head.get("x-served-by", [None])[0],
                     head.get("x-sticky-status", [None])[0],
                     head.get("set-cookie", [])))
    return rows


def h2load(port, n, clients=1, streams=1, path="/", headers=()):
    """h2load over h2c (prior knowledge); returns (status counts, output)."""
    cmd = [H2LOAD, "-n", str(n), "-c", str(clients), "-m", str(streams)]
    for h in headers:
        cmd += ["-H", h]
    cmd.append("http://127.0.0.1:%d%s" % (port, path))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    assert m and s, out
    counts = dict(zip(("total", "started", "done", "succeeded", "failed",
                       "errored", "timeout"), map(int, m.groups())))
    counts.update(zip(("2xx", "3xx", "4xx", "5xx"), map(int, s.groups())))
    return counts, out


@pytest.mark.parametrize("env", ["", "SetEnv proxy-initial-not-pooled 1\n"],
                         ids=["pooled", "initial-not-pooled"])
def test_h2_gets_on_pooled_connections_that_break_get_no_502(make_proxy, env):
    """Also with proxy-initial-not-pooled (the reference stack sets it): it
    never applied to h2 streams, which keep using pooled connections (the
    member still sees them reused and closes them)."""
    stale = StaleOnReuse("stale")
    p = make_proxy(H2C + env + balancer("app", [(stale.url, "s1")]),
                   extra_modules=("http2", "env") if env else ("http2",))
    n = 60
    counts, out = h2load(p.port, n, headers=("Cookie: ROUTEID=s1",))
    assert stale.closed_on_reuse >= 1, \
        "the situation was not built: the proxy never reused a pooled connection\n" + out
    assert (counts["succeeded"], counts["2xx"], counts["5xx"]) == (n, n, 0), \
        "%s (member closed %d reused connections)\n%s" % (counts, stale.closed_on_reuse, out)


def test_h2_sticky_client_stays_on_its_member_over_broken_pooled_connections(
        backends, make_proxy):
    stale = StaleOnReuse("stale")
    p = h2_proxy(make_proxy, [(stale.url, "s1"), (backends["bravo"], "s2")])
    n = 20
    rows = nghttp_streams(p.port, n, cookie="ROUTEID=s1")
    assert stale.closed_on_reuse >= 1, \
        "the situation was not built: the proxy never reused a pooled connection"
    assert rows == [(200, "stale", "hit", [])] * n, \
        "streams failed or moved off their member after a broken pooled " \
        "connection (it closed %d): %s" % (stale.closed_on_reuse, rows)


def test_h2_member_failing_on_fresh_connections_is_failed_over_for_get(
        backends, make_proxy):
    broken = ClosesAlways("broken")
    p = h2_proxy(make_proxy, [(broken.url, "s1"), (backends["bravo"], "s2")])
    rows = nghttp_streams(p.port, 6, cookie="ROUTEID=s1")
    assert broken.requests >= 1, "the failing member was never tried"
    assert [r[:3] for r in rows] == [(200, "bravo", "failover")] * 6, rows


def test_h2_post_is_never_sent_twice(make_proxy):
    """A POST (no body) that meets a broken pooled connection is not sent
    again: the member reads each POST once, and the one that broke fails."""
    stale = StaleOnReuse("stale")
    p = h2_proxy(make_proxy, [(stale.url, "s1")])
    n = 6
    rows = nghttp_streams(p.port, n, cookie="ROUTEID=s1", method="POST")
    assert stale.closed_on_reuse >= 1, "no pooled connection was reused"
    assert stale.requests == n, \
        "%d POSTs reached the member for %d sent: %s" % (stale.requests, n, rows)
    assert sum(1 for r in rows if r[0] >= 500) == stale.closed_on_reuse, rows


def test_http11_client_on_a_reused_connection_keeps_httpds_close(make_proxy):
    """An HTTP/1.1 client keeps RFC 9112's way: on a client connection used
    before, mod_proxy_http closes it without an answer (the client may send
    the request again on a new one); the module does not retry for it."""
    stale = StaleOnReuse("stale")
    p = h2_proxy(make_proxy, [(stale.url, "s1")])
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
    try:
        conn.request("GET", "/", headers={"Cookie": "ROUTEID=s1"})
        first = conn.getresponse()
        first.read()
        assert (first.status, first.getheader("X-Served-By")) == (200, "stale")
        conn.request("GET", "/", headers={"Cookie": "ROUTEID=s1"})
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            conn.getresponse().read()
    finally:
        conn.close()
    assert (stale.requests, stale.closed_on_reuse) == (2, 1), \
        "the request on the broken pooled connection was sent again " \
        "(%d requests, %d closed on reuse)" % (stale.requests, stale.closed_on_reuse)
