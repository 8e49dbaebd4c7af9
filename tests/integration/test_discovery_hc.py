"""Health checks of discovered members (issue 15, design R): the hc*
parameters of StickyRouteDiscover are run by mod_sticky_route itself (not by
mod_proxy_hcheck), at each member's current address.

- a member whose check page answers 500 gets the health-check failure flag
  (HcFl) after hcfails= checks in a row and takes no request; it comes back
  after hcpasses= passing checks in a row;
- hcmethod=TCP against an address where nothing listens marks it down;
- a member that accepts the check's connection and never answers does not
  delay the resolution of a new address, nor the other members' checks;
- hcexpr= and hctemplate= (and HTTP checks of https members) are refused by
  apache2 -t with a message naming StickyRouteDiscover and the parameter.

The resolver is the test's hosts file (see test_discovery_reuse.py)."""

import socket
import time

from harness import BalancerManager, get, request_target, wait_until
from test_discovery_reuse import (NAME, Fleet, RecordingBackend,
                                  discovering_proxy, log_lines, log_time)

HC_FAST = "hcinterval=300ms"


class FlakyBackend(RecordingBackend):
    """A RecordingBackend whose check page (/hc) answers hc_status."""

    hc_status = 200

    def respond(self, conn_no, req_no, head):
        reply = super().respond(conn_no, req_no, head)
        if request_target(head).startswith("/hc") and self.hc_status != 200:
            return ("HTTP/1.1 %d Failing\r\nContent-Length: 4\r\n"
                    "Connection: keep-alive\r\n\r\nbad\n" % self.hc_status).encode()
        return reply


def member_flags(port, url):
    """The balancer-manager table row of member url (its status cell says
    "Init Ok HcFl" when the health-check failure flag is set)."""
    page = BalancerManager(port).page()
    rows = [row for row in page.split("<tr")[1:] if ">%s<" % url in row]
    assert len(rows) == 1, (url, rows, page[:2000])
    assert "Init" in rows[0], rows[0]
    return rows[0]


def check_answers(proxy, backend, url, status, change):
    """Makes backend's check page answer `status`, then waits (6 s) until the
    proxy logs "health check CHANGE member URL" (DISABLING, ENABLING).
    Returns that log line and the times of the checks the backend received
    from the change up to that line."""
    t0 = time.time()
    backend.hc_status = status
    lines = wait_until(lambda: log_lines(proxy, "health check %s member %s" % (change, url)),
                       6, 0.1, "health check %s member %s" % (change, url))
    t_line = log_time(lines[0])
    return lines[0], [t for t in backend.received(since=t0, hc=True) if t <= t_line]


def served_by(port, n):
    out = []
    for _ in range(n):
        r = get(port)
        out.append(r.served_by if r.status == 200 else "status %d" % r.status)
    return out


def test_member_failing_its_check_page_is_marked_down_then_back(test_dir, make_proxy):
    fleet = Fleet(test_dir)
    good, bad = "127.0.0.61", "127.0.0.62"
    fleet.backends[bad] = FlakyBackend(bad, fleet.port)
    fleet.resolve_to(good, bad)
    params = "hcmethod=GET hcuri=/hc %s hcfails=2 hcpasses=3" % HC_FAST
    p = discovering_proxy(make_proxy, fleet, 4, 10, "sticky", params)
    bad_url = "http://%s:%d" % (bad, fleet.port)

    wait_until(lambda: fleet.backends[bad].received(hc=True), 5, 0.1, "a check of %s" % bad)
    assert "HcFl" not in member_flags(p.port, bad_url)
    assert bad in served_by(p.port, 20)

    down, checks = check_answers(p, fleet.backends[bad], bad_url, 500, "DISABLING")
    assert len(checks) >= 2, ("marked down after %d failing check(s), hcfails=2"
                              % len(checks))
    assert "(%s port %d)" % (bad, fleet.port) in down and "status 500" in down, down
    assert "HcFl" in member_flags(p.port, bad_url)
    t_req = time.time()
    answers = served_by(p.port, 30)
    assert set(answers) == {good}, answers
    assert fleet.backends[bad].received(since=t_req, hc=False) == []

    _, passes = check_answers(p, fleet.backends[bad], bad_url, 200, "ENABLING")
    assert len(passes) >= 3, "back after %d passing check(s), hcpasses=3" % len(passes)
    assert "HcFl" not in member_flags(p.port, bad_url)
    wait_until(lambda: bad in served_by(p.port, 20), 5, 0.2, "requests to %s again" % bad)
    assert len(log_lines(p, "health check DISABLING")) == 1, log_lines(p, "health check")


def test_tcp_check_marks_a_closed_port_down(test_dir, make_proxy):
    fleet = Fleet(test_dir)
    up, closed = "127.0.0.71", "127.0.0.72"       # nothing listens on CLOSED
    fleet.resolve_to(up)
    fleet.hosts.set({NAME: [up, closed]})
    p = discovering_proxy(make_proxy, fleet, 4, 10, "sticky",
                          "hcmethod=TCP %s hcfails=1" % HC_FAST)
    closed_url = "http://%s:%d" % (closed, fleet.port)
    up_url = "http://%s:%d" % (up, fleet.port)
    lines = wait_until(lambda: log_lines(p, "health check DISABLING member %s" % closed_url),
                       6, 0.1, "%s marked down" % closed)
    assert "connect:" in lines[0], lines
    assert "HcFl" in member_flags(p.port, closed_url)
    time.sleep(1)               # several more rounds
    assert log_lines(p, "health check DISABLING member %s" % up_url) == []
    assert "HcFl" not in member_flags(p.port, up_url)
    answers = served_by(p.port, 20)
    assert set(answers) == {up}, answers


def test_silent_member_delays_neither_resolution_nor_other_checks(test_dir, make_proxy):
    fleet = Fleet(test_dir)
    good, silent, new = "127.0.0.81", "127.0.0.82", "127.0.0.83"
    # SILENT accepts connections (the kernel's backlog) and never answers
    mute = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    mute.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    mute.bind((silent, fleet.port))
    mute.listen(64)
    try:
        fleet.resolve_to(good)
        fleet.hosts.set({NAME: [good, silent]})
        # the check's response timeout: timeout=4 (the default is 10 s)
        p = discovering_proxy(make_proxy, fleet, 4, 10, "sticky",
                              "hcmethod=GET hcuri=/hc hcinterval=1 hcfails=1 timeout=4")
        silent_url = "http://%s:%d" % (silent, fleet.port)
        wait_until(lambda: fleet.backends[good].received(hc=True), 5, 0.1, "a check of %s" % good)
        time.sleep(0.5)         # SILENT's first check is on the wire now

        t0 = time.time()
        fleet.backends[new] = RecordingBackend(new, fleet.port)
        fleet.hosts.set({NAME: [good, silent, new]})
        wait_until(lambda: log_lines(p, "new member http://%s:%d" % (new, fleet.port)),
                   6, 0.05, "%s added" % new)
        t_added = log_time(log_lines(p, "new member http://%s:%d" % (new, fleet.port))[0])
        # interval=1: a resolution within a second, plus the watchdog's tick
        assert t_added - t0 < 2.5, "new address added %.2f s after it appeared" % (t_added - t0)
        # NEW is checked at once, GOOD every second meanwhile
        wait_until(lambda: fleet.backends[new].received(hc=True), 3, 0.1, "a check of %s" % new)
        t1 = time.time()
        time.sleep(3)
        n_good = len(fleet.backends[good].received(since=t1, hc=True))
        assert n_good >= 2, "%s checked %d time(s) in 3 s (hcinterval=1)" % (good, n_good)
        # SILENT is marked down once its check times out (4 s)
        lines = wait_until(lambda: log_lines(p, "health check DISABLING member %s" % silent_url),
                           8, 0.1, "%s marked down" % silent)
        assert "no response within 4000 ms" in lines[0], lines
        print("new address added %.2f s after it appeared; %s checked %d times in 3 s "
              "while %s was silent" % (t_added - t0, good, n_good, silent))
    finally:
        mute.close()


def _body(param):
    return ('<Proxy "balancer://app">\n'
            '    StickyRouteDiscover http://%s:20999 interval=1 max=4 %s\n'
            '    ProxySet lbmethod=sticky\n'
            '</Proxy>\n'
            'ProxyPass "/" "balancer://app/"\n' % (NAME, param))


def test_hcexpr_and_hctemplate_are_refused_by_configtest(configtest):
    for param, what in (("hcmethod=GET hcexpr=ok200", "hcexpr"),
                        ("hcmethod=GET hctemplate=t1", "hctemplate")):
        rc, out = configtest(_body(param), extra_modules=("proxy_hcheck",))
        assert rc != 0, "%s accepted:\n%s" % (param, out)
        assert "StickyRouteDiscover" in out and what + "=" in out, out
        assert "not supported" in out, out


def test_http_checks_of_https_members_are_refused(configtest):
    body = _body("hcmethod=GET").replace("http://", "https://")
    rc, out = configtest(body)
    assert rc != 0, out
    assert "StickyRouteDiscover" in out and "hcmethod=GET" in out and "https" in out, out


def test_hc_parameters_need_no_mod_proxy_hcheck(configtest):
    rc, out = configtest(_body("hcmethod=HEAD11 hcuri=/hc hcinterval=2 hcpasses=2 hcfails=3"))
    assert rc == 0, out
    rc, out = configtest(_body("hcmethod=CPING"))
    assert rc != 0 and "StickyRouteDiscover" in out and "hcmethod=CPING" in out, out
