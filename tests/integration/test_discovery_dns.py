"""StickyRouteDiscover from DNS as orchestrators publish it (issue 16): SRV
names (`http://_http._tcp.NAME`, a member per target and port, priorities as
lbsets, weights as load factors), `interval=ttl`, and what each kind of DNS
answer does (NXDOMAIN/NODATA: gone after hold=; SERVFAIL, REFUSED, timeouts,
malformed answers: a failure, the last good set kept; truncated: TCP).

The DNS server is real: dnsmasq on a loopback address of its own, its zone
rewritten (and dnsmasq restarted) by the test (dns_fixture.Dnsmasq); the
malformed answers come from a responder of the test's own
(dns_fixture.HostileDNS). The proxy runs in a mount namespace of its own
with a resolv.conf of the test naming that server; the machine's /etc is
never touched. Members are Python backends on 127.0.0.41.. each with a port
of its own."""

import json
import math
import time

import pytest

from dns_fixture import (DEAD_UPSTREAM, HOSTILE_MODES, MODES_THAT_TIME_OUT, TYPE_SRV,
                         Dnsmasq, DnsmasqPair, HostileDNS, ResolvConf, Srv, parse_message,
                         query)
from harness import (MANAGER_CONF, STATUS_CONF, STATUS_PATH, BalancerManager, HostsFile,
                     PyBackend, crash_lines, free_port, get, private_files_wrapper,
                     status_samples, wait_until)

SRV_NAME = "_http._tcp.static.svc.test"
SCALED_NAME = "_http._tcp.scaled.svc.test"
A_NAME = "web.svc.test"


def target(i):
    return "b%d.svc.test" % i


def baddr(i):
    return "127.0.0.%d" % (40 + i)


class OkBackend(PyBackend):
    """Answers every request 200, X-Served-By: its name."""

    def respond(self, conn_no, req_no, head):
        return self.ok()


class Members:
    """Backends b<i> on 127.0.0.(40+i), any number of ports each; the
    served-by name is "b<i>:<port>"."""

    def __init__(self):
        self.backends = {}

    def start(self, i, port=None):
        port = port or free_port()
        if (i, port) not in self.backends:
            self.backends[(i, port)] = OkBackend("b%d:%d" % (i, port), port=port, host=baddr(i))
        return self.backends[(i, port)]


def two_srv_members(members, **dns_kw):
    """Members b1 and b2 (on ports of their own) and a HostileDNS (dns_kw:
    its options) whose SRV_NAME lists both, with their targets' addresses;
    returns (b1, b2, the HostileDNS)."""
    p1, p2 = free_port(), free_port()
    b1, b2 = members.start(1, p1), members.start(2, p2)
    h = HostileDNS(srv={SRV_NAME: [(10, 1, p1, target(1)), (10, 1, p2, target(2))]},
                   hosts={target(1): baddr(1), target(2): baddr(2)}, **dns_kw)
    return b1, b2, h


@pytest.fixture
def members():
    return Members()


@pytest.fixture
def dns(test_dir):
    """Two dnsmasq with one zone (the proxy's resolv.conf names both: a zone
    change never leaves the proxy without an answer), not started yet:
    publish() starts them."""
    return DnsmasqPair(test_dir)


def publish(dns, records, name=SRV_NAME, hosts_ids=range(1, 10), ttl=None, **kw):
    """The zone: SRV records of `name` from (i, port, priority, weight)
    tuples (priority 10, weight 1 if left out), an A record for every
    target b1..b9; dnsmasq restarted."""
    srv = {name: [Srv(target(r[0]), r[1], *(tuple(r[2:]) + (10, 1)[len(r) - 2:]))
                  for r in records]} if records else {}
    srv.update(kw.pop("srv", {}))
    hosts = {target(i): [baddr(i)] for i in hosts_ids}
    hosts.update(kw.pop("hosts", {}))
    dns.set_zone(srv=srv, hosts=hosts, ttl=ttl, **kw)


def block(balancer, url, params, lbmethod="sticky", mount="/"):
    return ('<Proxy "balancer://%s">\n'
            '    StickyRouteDiscover %s %s\n'
            '    ProxySet lbmethod=%s\n'
            '</Proxy>\n'
            'ProxyPass "%s" "balancer://%s/"\n' % (balancer, url, params, lbmethod, mount,
                                                  balancer))


def dns_proxy(make_proxy, test_dir, servers, blocks, hosts=None, name="proxy"):
    """A proxy whose resolvers are `servers` only (an address or a list; and
    whose /etc/hosts is `hosts`, a HostsFile, when given); blocks mounted on
    "/" come last."""
    blocks = sorted(blocks, key=lambda b: '"/" "balancer' in b)
    p = make_proxy(STATUS_CONF + MANAGER_CONF + "".join(blocks), name=name, start=False)
    files = {"/etc/resolv.conf": ResolvConf(test_dir / ("resolv-%s.conf" % name), servers).path}
    if hosts is not None:
        files["/etc/hosts"] = hosts.path
    p.wrapper = private_files_wrapper(files)
    return p.start()


def disc(p, metric, balancer="app"):
    """A sticky_route_discover_* value of one balancer."""
    vals = [v for n, lab, v in status_samples(p.port)
            if n == "sticky_route_discover_" + metric and lab.get("balancer") == balancer]
    assert len(vals) == 1, ("sticky_route_discover_" + metric, balancer, vals)
    return vals[0]


def disc_json(p, balancer="app"):
    r = get(p.port, STATUS_PATH + "?json")
    assert r.status == 200, r
    rows = [d for d in json.loads(r.body.decode())["discovery"] if d["balancer"] == balancer]
    assert len(rows) == 1, rows
    return rows[0]


def members_up(p, balancer="app"):
    return {lab["route"]: v for n, lab, v in status_samples(p.port)
            if n == "sticky_route_member_up" and lab.get("balancer") == balancer}


def workers(p, balancer="app"):
    """{url: (factor, lbset, status)} of the balancer's members (the
    balancer-manager page; never-used slots have no row)."""
    import re
    page = BalancerManager(p.port).page()
    rows = re.findall(r'<td><a href="/balancer-manager\?b=([^&]+)&amp;w=([^&]+)&amp;[^"]*">'
                      r'[^<]*</a></td><td>[^<]*</td><td>[^<]*</td><td>([0-9.]+)</td>'
                      r'<td>(\d+)</td><td>([^<]*)</td>', page)
    return {url: (float(f), int(s), st.strip()) for b, url, f, s, st in rows if b == balancer}


def enabled_workers(p, balancer="app"):
    """{url: (factor, lbset)} of the members that take traffic (status Ok)."""
    return {url: (f, s) for url, (f, s, st) in workers(p, balancer).items()
            if st.endswith("Ok") and "Dis" not in st and "Stop" not in st}


def new_sessions(p, n, path="/"):
    """n requests without a cookie: {served_by: count}, {served_by: route}."""
    count, routes = {}, {}
    for _ in range(n):
        r = get(p.port, path)
        assert r.status == 200, r
        count[r.served_by] = count.get(r.served_by, 0) + 1
        routes[r.served_by] = r.sticky_route
    return count, routes


def url(i, port):
    return "http://%s:%d" % (baddr(i), port)


def dns_failure_lines(p):
    return [line for line in p.error_log.splitlines() if "DNS failure" in line]


# --------------------------------------------------------------------------
# the fixture itself (runs without the module's SRV support)

def test_dns_fixture_answers_as_the_tests_assume(test_dir):
    """What the tests below rely on: dnsmasq's SRV answers carry the targets'
    A records; a name left out of a local zone is NXDOMAIN, one with a TXT
    record only NODATA, one of no local zone REFUSED; forwarding to the
    SERVFAIL responder gives SERVFAIL, to a dead upstream no answer; 45
    records are truncated over 512-byte UDP and whole over TCP; the hostile
    responder's answers are malformed (an independent parser rejects them)."""
    upstream = HostileDNS("servfail")
    upstream.set_mode("servfail")
    d = Dnsmasq(test_dir, edns_max=512)
    srv = {SRV_NAME: [Srv(target(1), 20001, 10, 1), Srv(target(2), 20002, 20, 3)],
           "_http._tcp.mid.svc.test": [Srv("t%d.svc.test" % i, 20000 + i) for i in range(45)]}
    hosts = {target(1): [baddr(1)], target(2): [baddr(2)]}
    hosts.update({"t%d.svc.test" % i: ["127.3.0.%d" % (i + 1)] for i in range(45)})
    d.set_zone(srv=srv, hosts=hosts, txt={"_http._tcp.txt.svc.test": "x"}, ttl=7,
               forward={"fail.svc.test": upstream.address, "dead.svc.test": DEAD_UPSTREAM})
    m = query(d.address, SRV_NAME, TYPE_SRV)
    assert (m["rcode"], m["tc"]) == (0, False), m
    assert sorted(r["data"] for r in m["answers"]) == [
        (10, 1, 20001, target(1)), (20, 3, 20002, target(2))], m
    assert {r["ttl"] for r in m["answers"] + m["additional"]} == {7}, m
    assert sorted((r["name"], r["data"]) for r in m["additional"]) == [
        (target(1), baddr(1)), (target(2), baddr(2))], m
    assert query(d.address, "_http._tcp.none.svc.test", TYPE_SRV)["rcode"] == 3
    m = query(d.address, "_http._tcp.txt.svc.test", TYPE_SRV)
    assert (m["rcode"], m["answers"]) == (0, []), m
    assert query(d.address, "_http._tcp.x.elsewhere.test", TYPE_SRV)["rcode"] == 5
    assert query(d.address, "_http._tcp.fail.svc.test", TYPE_SRV)["rcode"] == 2
    with pytest.raises(OSError):
        query(d.address, "_http._tcp.dead.svc.test", TYPE_SRV, timeout=1.5)
    m = query(d.address, "_http._tcp.mid.svc.test", TYPE_SRV)
    assert m["tc"] and len(m["answers"]) < 45, m
    m = query(d.address, "_http._tcp.mid.svc.test", TYPE_SRV, tcp=True)
    assert (m["tc"], len(m["answers"]), len(m["additional"])) == (False, 45, 45)
    assert len(d.tcp_queries("_http._tcp.mid.svc.test")) == 1, d.queries()
    assert d.count(SRV_NAME) == 1

    h = HostileDNS(srv={SRV_NAME: [(10, 1, 20001, target(1)), (10, 1, 20002, target(2))]},
                   hosts={target(1): baddr(1), target(2): baddr(2)})
    good = parse_message(h.build(7, SRV_NAME, TYPE_SRV, "good"))
    assert len(good["answers"]) == 2 and len(good["additional"]) == 2, good
    for mode in HOSTILE_MODES:
        out = h.build(7, SRV_NAME, TYPE_SRV, mode)
        if mode in MODES_THAT_TIME_OUT or mode.startswith("tc_then_"):
            continue
        with pytest.raises(Exception) as e:
            parse_message(out)
        assert not isinstance(e.value, AssertionError), mode
    for mode in MODES_THAT_TIME_OUT:
        out = h.build(7, SRV_NAME, TYPE_SRV, mode)
        assert len(out) < 12 or parse_message(out)["id"] != 7, mode
    for mode in [m for m in HOSTILE_MODES if m.startswith("tc_then_")]:
        m = parse_message(h.build(7, SRV_NAME, TYPE_SRV, mode))
        assert m["tc"] and m["answers"] == [], mode


# --------------------------------------------------------------------------
# SRV members

def test_srv_members_with_their_own_ports_appear_change_port_leave_and_return(
        dns, members, make_proxy, test_dir):
    p1, p2, p3 = free_port(), free_port(), free_port()
    b1, b2, b3 = members.start(1, p1), members.start(2, p2), members.start(3, p3)
    publish(dns, [(1, p1), (2, p2), (3, p3)])
    p = dns_proxy(make_proxy, test_dir, dns.addresses,
                  [block("app", "http://" + SRV_NAME, "interval=1 max=8 hold=10")])
    assert set(enabled_workers(p)) == {url(1, p1), url(2, p2), url(3, p3)}, workers(p)
    count, routes = new_sessions(p, 9)
    assert count == {b1.name: 3, b2.name: 3, b3.name: 3}, count
    assert disc(p, "members") == 3

    # b2 is published on another port: a new member; the old port gets nothing
    p2b = free_port()
    b2b = members.start(2, p2b)
    publish(dns, [(1, p1), (2, p2b), (3, p3)])
    wait_until(lambda: set(enabled_workers(p)) == {url(1, p1), url(2, p2b), url(3, p3)},
               8, 0.3, "b2's member on its new port")
    old_port_requests = b2.requests
    count, _ = new_sessions(p, 9)
    assert count == {b1.name: 3, b2b.name: 3, b3.name: 3}, count
    assert b2.requests == old_port_requests
    assert disc(p, "members") == 3

    # b3 leaves: its member disabled, its clients fail over once
    r = get(p.port)
    while r.served_by != b3.name:
        r = get(p.port)
    b3_cookie, b3_route = r.cookie_value(), r.sticky_route
    publish(dns, [(1, p1), (2, p2b)])
    wait_until(lambda: disc(p, "members") == 2, 8, 0.3, "b3's member disabled")
    assert url(3, p3) not in enabled_workers(p)
    count, _ = new_sessions(p, 8)
    assert count == {b1.name: 4, b2b.name: 4}, count
    r = get(p.port, cookie="ROUTEID=" + b3_cookie)
    assert r.status == 200 and r.served_by != b3.name and r.sticky_status == "failover", r

    # b3 returns within hold=: the same member (route), its clients are hits
    publish(dns, [(1, p1), (2, p2b), (3, p3)])
    wait_until(lambda: disc(p, "members") == 3, 8, 0.3, "b3's member back")
    seen = {}
    wait_until(lambda: seen.update(new_sessions(p, 3)[1]) or b3.name in seen, 5, 0.3,
               "b3 takes new sessions again")
    assert seen[b3.name] == b3_route, seen
    r = get(p.port, cookie="ROUTEID=" + b3_cookie)
    assert (r.status, r.served_by, r.sticky_status) == (200, b3.name, "hit"), r


def test_srv_target_with_several_ports_and_addresses_is_a_member_each(dns, members, make_proxy,
                                                                      test_dir):
    """Nomad-style: one host, an instance per port; the target has two
    addresses: a member per address and port; a record given twice is one
    member; a port whose record goes loses its members only."""
    pa, pb = free_port(), free_port()
    backends = {(i, port): members.start(i, port) for i in (1, 9) for port in (pa, pb)}
    two_addresses = {target(1): [baddr(1), baddr(9)]}
    publish(dns, [(1, pa), (1, pb), (1, pa)], hosts=two_addresses)
    p = dns_proxy(make_proxy, test_dir, dns.addresses,
                  [block("app", "http://" + SRV_NAME, "interval=1 max=8 hold=10")])
    assert set(enabled_workers(p)) == {url(i, port) for i, port in backends}, workers(p)
    assert disc(p, "members") == 4
    count, _ = new_sessions(p, 8)
    assert count == {b.name: 2 for b in backends.values()}, count
    publish(dns, [(1, pa)], hosts=two_addresses)
    wait_until(lambda: disc(p, "members") == 2, 8, 0.3, "the port-b members disabled")
    assert set(enabled_workers(p)) == {url(1, pa), url(9, pa)}, workers(p)
    count, _ = new_sessions(p, 4)
    assert count == {backends[(1, pa)].name: 2, backends[(9, pa)].name: 2}, count


def test_srv_targets_are_resolved_when_the_answer_has_no_additional_records(
        members, make_proxy, test_dir):
    b1, b2, h = two_srv_members(members)
    h.additional = False
    assert parse_message(h.build(7, SRV_NAME, TYPE_SRV, "good"))["additional"] == []
    p = dns_proxy(make_proxy, test_dir, h.address,
                  [block("app", "http://" + SRV_NAME, "interval=1 max=8 hold=10")])
    assert set(enabled_workers(p)) == {url(1, b1.port), url(2, b2.port)}, workers(p)
    count, _ = new_sessions(p, 4)
    assert count == {b1.name: 2, b2.name: 2}, count
    asked = {q[3] for q in h.queries(qtype=1)}
    assert asked >= {target(1), target(2)}, h.queries()
    assert disc(p, "failing") == 0


def test_srv_target_whose_address_lookup_fails_keeps_its_member(members, make_proxy,
                                                                test_dir):
    """The SRV answer has no additional records and the A/AAAA lookup of one
    target gets SERVFAIL (a DNS failure, not an answer): its member stays,
    as the whole set does when the SRV query itself fails."""
    b1, b2, h = two_srv_members(members)
    h.additional = False
    p = dns_proxy(make_proxy, test_dir, h.address,
                  [block("app", "http://" + SRV_NAME, "interval=1 max=8 hold=2")])
    assert set(enabled_workers(p)) == {url(1, b1.port), url(2, b2.port)}, workers(p)
    h.servfail_names = {target(2)}
    t0 = time.monotonic()
    wait_until(lambda: len(h.queries(since=t0, qtype=TYPE_SRV)) >= 3
               and time.monotonic() - t0 >= 2 + 1.5, 10, 0.2, "resolutions past hold=")
    assert set(enabled_workers(p)) == {url(1, b1.port), url(2, b2.port)}, (
        workers(p), p.error_log[-1500:])
    count, _ = new_sessions(p, 4)
    assert count == {b1.name: 2, b2.name: 2}, count


def test_srv_priorities_take_traffic_in_order_and_weights_split_it(dns, members, make_proxy,
                                                                    test_dir):
    """Priority 10 (lbset 0) takes all the traffic, split 1:3 by the weights;
    priority 20 (lbset 1) only when no priority-10 member is usable: their
    records removed, or their backends down (one down is not enough)."""
    p1, p2, p3 = free_port(), free_port(), free_port()
    b1, b2, b3 = members.start(1, p1), members.start(2, p2), members.start(3, p3)
    primaries = [(1, p1, 10, 1), (2, p2, 10, 3)]
    standby = [(3, p3, 20, 0)]
    publish(dns, primaries + standby)
    p = dns_proxy(make_proxy, test_dir, dns.addresses, [
        block("app", "http://" + SRV_NAME, "interval=1 max=8 hold=10 retry=5",
              lbmethod="roundrobin")])
    lbsets = {u: s for u, (_, s) in enabled_workers(p).items()}
    assert lbsets == {url(1, p1): 0, url(2, p2): 0, url(3, p3): 1}, workers(p)

    # priority 10 takes all the traffic, 1:3 (exact round robin: 4 cycles)
    count, _ = new_sessions(p, 16)
    assert count == {b1.name: 4, b2.name: 12}, count

    # a change of priority or weight is followed at the next resolution
    publish(dns, primaries + [(3, p3, 5, 1)])
    wait_until(lambda: new_sessions(p, 1)[0] == {b3.name: 1}, 8, 0.3, "b3 first now")
    assert new_sessions(p, 6)[0] == {b3.name: 6}
    publish(dns, [(1, p1, 10, 3), (2, p2, 10, 1)] + standby)
    wait_until(lambda: b3.name not in new_sessions(p, 4)[0], 8, 0.3, "b3 standby again")
    wait_until(lambda: enabled_workers(p)[url(1, p1)] > enabled_workers(p)[url(2, p2)],
               8, 0.3, "weights swapped")
    count, _ = new_sessions(p, 16)
    assert count == {b1.name: 12, b2.name: 4}, count

    # the priority-10 records removed: the priority-20 member takes the traffic
    publish(dns, standby)
    wait_until(lambda: new_sessions(p, 1)[0] == {b3.name: 1}, 8, 0.3, "b3 takes traffic")
    assert new_sessions(p, 6)[0] == {b3.name: 6}
    # ... and none again when they are back
    publish(dns, primaries + standby)
    wait_until(lambda: disc(p, "members") == 3, 8, 0.3, "priority 10 members back")
    wait_until(lambda: b3.name not in new_sessions(p, 4)[0], 5, 0.3, "b3 idle again")
    count, _ = new_sessions(p, 16)
    assert count == {b1.name: 4, b2.name: 12}, count

    # priority 10 members unreachable: one down is not enough for priority 20
    b1.stop()
    for _ in range(8):
        r = get(p.port)
        assert (r.status, r.served_by) == (200, b2.name), r
    b2.stop()
    for _ in range(6):
        r = get(p.port)
        assert (r.status, r.served_by) == (200, b3.name), r


def test_srv_weights_are_load_factors_on_the_scale_of_balancer_members(
        dns, members, make_proxy, test_dir):
    """A weight of 3 is `loadfactor=3` (balancer-manager: Factor 3.00):
    weights <= 100 as they are (0 -> 1), larger ones scaled so that the
    largest is 100, loadfactor= of the directive instead when given; so a
    discovered member of weight 1 and a configured BalancerMember (load
    factor 1) share a round robin equally."""
    p1, p2, p3 = free_port(), free_port(), free_port()
    b1, b2 = members.start(1, p1), members.start(2, p2)
    members.start(3, p3)
    scaled = {SCALED_NAME: [Srv(target(4), 20004, 10, 150), Srv(target(5), 20005, 10, 300),
                            Srv(target(6), 20006, 10, 600)],
              "_http._tcp.even.svc.test": [Srv(target(1), p1, 10, 1), Srv(target(2), p2, 10, 1)]}
    publish(dns, [(1, p1, 10, 1), (2, p2, 10, 3), (3, p3, 20, 0)], srv=scaled)
    fixed = OkBackend("fixed")
    params = "interval=1 max=8 hold=10"
    p = dns_proxy(make_proxy, test_dir, dns.addresses, [
        block("app", "http://" + SRV_NAME, params, lbmethod="roundrobin"),
        block("scaled", "http://" + SCALED_NAME, params, lbmethod="roundrobin",
              mount="/scaled/"),
        block("fixed", "http://" + SRV_NAME, params + " loadfactor=7", lbmethod="roundrobin",
              mount="/fixed/"),
        block("mixed", "http://_http._tcp.even.svc.test", params, lbmethod="roundrobin",
              mount="/mixed/").replace(
                  "    ProxySet", '    BalancerMember "%s" route=fixed\n    ProxySet' % fixed.url)])
    seen = {"app": enabled_workers(p), "scaled": enabled_workers(p, "scaled"),
            "fixed": enabled_workers(p, "fixed"), "mixed": new_sessions(p, 30, "/mixed/")[0]}
    assert seen == {
        "app": {url(1, p1): (1.0, 0), url(2, p2): (3.0, 0), url(3, p3): (1.0, 1)},
        "scaled": {url(4, 20004): (25.0, 0), url(5, 20005): (50.0, 0),
                   url(6, 20006): (100.0, 0)},
        "fixed": {url(1, p1): (7.0, 0), url(2, p2): (7.0, 0), url(3, p3): (7.0, 1)},
        "mixed": {b1.name: 10, b2.name: 10, "fixed": 10}}, seen


# --------------------------------------------------------------------------
# interval=ttl

def test_interval_ttl_resolves_again_when_the_answer_expires(dns, members, make_proxy,
                                                             test_dir):
    """SRV and A names: TTL 2 s -> a query about every 2 s; TTL 30 s -> none
    within 10 s; next_seconds shown. The A name is resolved from DNS, not
    from /etc/hosts (which says otherwise)."""
    p1, p2, pa = free_port(), free_port(), free_port()
    b1, b2 = members.start(1, p1), members.start(2, p2)
    web = members.start(7, pa)
    hosts = HostsFile(test_dir / "hosts")
    not_web = members.start(8, pa)
    hosts.set({A_NAME: [baddr(8)]})

    def zone(ttl):
        publish(dns, [(1, p1), (2, p2)], ttl=ttl,
                hosts={A_NAME: [baddr(7), str(ttl)]})     # host-record=NAME,ADDR,TTL
    zone(2)
    p = dns_proxy(make_proxy, test_dir, dns.addresses, [
        block("app", "http://" + SRV_NAME, "interval=ttl max=8 hold=10"),
        block("web", "http://%s:%d" % (A_NAME, pa), "interval=ttl max=8 hold=10",
              lbmethod="roundrobin", mount="/web/")], hosts=hosts)
    count, _ = new_sessions(p, 4)
    assert count == {b1.name: 2, b2.name: 2}, count
    count, _ = new_sessions(p, 2, "/web/")
    assert count == {web.name: 2}, count
    assert not_web.requests == 0

    srv0, a0 = dns.count(SRV_NAME), dns.count(A_NAME, "A")
    time.sleep(10)
    srv1, a1 = dns.count(SRV_NAME), dns.count(A_NAME, "A")
    assert 4 <= srv1 - srv0 <= 6, ("SRV queries in 10 s with TTL 2", srv1 - srv0)
    assert 4 <= a1 - a0 <= 6, ("A queries in 10 s with TTL 2", a1 - a0)
    assert 0 <= disc(p, "next_seconds") <= 2
    assert 0 <= disc(p, "next_seconds", "web") <= 2
    assert 0 <= disc_json(p)["next_seconds"] <= 2
    assert dns.count(A_NAME, "A") > 0 and not_web.requests == 0

    # TTL 30: after the first answer with it, no query for 10 s
    zone(30)
    wait_until(lambda: disc(p, "next_seconds") > 20 and disc(p, "next_seconds", "web") > 20,
               10, 0.2, "answers with TTL 30 taken")
    n0 = len(dns.queries())
    time.sleep(10)
    assert dns.queries()[n0:] == [], "queries within 10 s of a TTL of 30 s"
    assert 10 <= disc(p, "next_seconds") <= 20
    assert 10 <= disc_json(p, "web")["next_seconds"] <= 20
    count, _ = new_sessions(p, 4)
    assert count == {b1.name: 2, b2.name: 2}, count


def test_absurd_ttls_are_clamped_to_1_and_300_seconds(members, make_proxy, test_dir):
    b1, b2, h = two_srv_members(members, ttl=0)
    p = dns_proxy(make_proxy, test_dir, h.address,
                  [block("app", "http://" + SRV_NAME, "interval=ttl max=8 hold=10")])
    # TTL 0: once a second, not in a loop
    t0 = time.monotonic()
    time.sleep(6)
    n = len(h.queries(qtype=TYPE_SRV, since=t0))
    assert 4 <= n <= 8, ("SRV queries in 6 s with TTL 0", n)
    assert disc(p, "next_seconds") <= 1
    # a failure: asked again 5 s later (README)
    h.set_mode("servfail")
    wait_until(lambda: disc(p, "failing") == 1, 5, 0.1, "SERVFAIL taken")
    assert 4 <= disc(p, "next_seconds") <= 5
    # TTL 2^31-1: at most 300 s
    h.ttl = 2 ** 31 - 1
    h.set_mode("good")
    wait_until(lambda: disc(p, "next_seconds") > 200, 8, 0.2, "the long TTL taken")
    assert disc(p, "next_seconds") <= 300
    t1 = time.monotonic()
    time.sleep(4)
    assert h.queries(qtype=TYPE_SRV, since=t1) == []
    count, _ = new_sessions(p, 4)
    assert count == {b1.name: 2, b2.name: 2}, count
    assert disc(p, "failing") == 0


# --------------------------------------------------------------------------
# answers that are not answers: the last good set stays

def test_dns_failures_keep_the_last_good_set(members, make_proxy, test_dir):
    """dnsmasq stopped (refused), answering SERVFAIL, REFUSED, and not
    answering (timeouts): each for over three times hold=2; the set stays
    and is served, failing is 1, errors are counted, a warning is logged
    (at most once a minute); back to normal afterwards. One dnsmasq."""
    dns = Dnsmasq(test_dir)
    p1, p2 = free_port(), free_port()
    b1, b2 = members.start(1, p1), members.start(2, p2)
    good = [(1, p1), (2, p2)]
    publish(dns, good)
    upstream = HostileDNS("servfail")
    upstream.set_mode("servfail")
    p = dns_proxy(make_proxy, test_dir, dns.addresses,
                  [block("app", "http://" + SRV_NAME, "interval=1 max=8 hold=2")])
    assert disc(p, "failing") == 0
    started = time.monotonic()

    def stopped():
        dns.stop()

    def servfail():
        publish(dns, [], forward={"static.svc.test": upstream.address})
        assert query(dns.address, SRV_NAME, TYPE_SRV)["rcode"] == 2

    def refused():
        publish(dns, [], local=())
        assert query(dns.address, SRV_NAME, TYPE_SRV)["rcode"] == 5

    def silent():
        publish(dns, [], forward={"static.svc.test": DEAD_UPSTREAM})
        with pytest.raises(OSError):
            query(dns.address, SRV_NAME, TYPE_SRV, timeout=1)

    for what, make in (("stopped", stopped), ("SERVFAIL", servfail), ("REFUSED", refused),
                       ("timeouts", silent)):
        errors0 = disc(p, "errors_total")
        t0 = time.monotonic()
        make()
        wait_until(lambda: disc(p, "failing") == 1, 12, 0.2, "failing while %s" % what)
        # a resolution that times out takes a few seconds: one is enough
        need = 1 if what == "timeouts" else 2
        wait_until(lambda: disc(p, "errors_total") >= errors0 + need
                   and time.monotonic() - t0 >= 3 * 2 + 1, 20, 0.3,
                   "failed resolutions and 3 x hold while %s" % what)
        assert disc(p, "failing") == 1, what
        assert disc_json(p)["failing"] == 1, what
        assert disc(p, "members") == 2, what
        assert sorted(members_up(p).values()) == [1, 1], (what, members_up(p))
        count, _ = new_sessions(p, 4)
        assert count == {b1.name: 2, b2.name: 2}, (what, count)
        assert dns_failure_lines(p), (what, p.error_log[-2000:])
        # back to normal
        publish(dns, good)
        wait_until(lambda: disc(p, "failing") == 0, 12, 0.2, "failing 0 after %s" % what)
    runs = disc(p, "resolutions_total")
    wait_until(lambda: disc(p, "resolutions_total") >= runs + 2, 5, 0.2, "resolutions go on")
    assert disc(p, "failing") == 0
    minutes = math.ceil((time.monotonic() - started) / 60)
    assert 1 <= len(dns_failure_lines(p)) <= minutes, dns_failure_lines(p)


@pytest.mark.parametrize("kind", ["NXDOMAIN", "NODATA"])
def test_service_gone_from_dns_empties_the_set_after_hold(kind, dns, members, make_proxy,
                                                         test_dir):
    p1, p2 = free_port(), free_port()
    b1, b2 = members.start(1, p1), members.start(2, p2)
    good = [(1, p1), (2, p2)]
    publish(dns, good)
    p = dns_proxy(make_proxy, test_dir, dns.addresses,
                  [block("app", "http://" + SRV_NAME, "interval=1 max=8 hold=2")])
    for _ in range(2):      # gone, back, gone again
        if kind == "NXDOMAIN":
            publish(dns, [])
        else:
            publish(dns, [], txt={SRV_NAME: "no SRV here"})
        wait_until(lambda: dns.current_queries(SRV_NAME), 5, 0.02, "the module asks")
        t0 = time.monotonic()
        count, _ = new_sessions(p, 2)       # within hold=: still served
        assert count == {b1.name: 1, b2.name: 1}, count
        m = query(dns.address, SRV_NAME, TYPE_SRV)
        if kind == "NXDOMAIN":
            assert m["rcode"] == 3, m
        else:
            assert (m["rcode"], m["answers"]) == (0, []), m
        wait_until(lambda: disc(p, "members") == 0, 8, 0.1, "set empty after hold")
        assert time.monotonic() - t0 >= 1.5, "emptied before hold=2"
        assert sorted(members_up(p).values()) == [0, 0], members_up(p)
        assert enabled_workers(p) == {}, workers(p)
        assert get(p.port).status == 503
        assert disc(p, "failing") == 0, "an answer, not a failure"
        assert dns_failure_lines(p) == []
        publish(dns, good)
        wait_until(lambda: disc(p, "members") == 2, 8, 0.2, "members back")
        wait_until(lambda: len(new_sessions(p, 2)[0]) == 2, 5, 0.3, "both served again")
        count, _ = new_sessions(p, 4)
        assert count == {b1.name: 2, b2.name: 2}, count


def test_truncated_udp_answer_is_fetched_over_tcp(members, make_proxy, test_dir):
    """45 SRV records do not fit in 512 bytes (dnsmasq answers UDP with TC
    even to an EDNS query): the module asks again over TCP and makes every
    member."""
    dns = Dnsmasq(test_dir, edns_max=512)
    port = free_port()
    b1, b2 = members.start(1, port), members.start(2, port)
    recs = [(i, port) for i in range(1, 46)]
    publish(dns, recs, hosts_ids=range(1, 46))
    m = query(dns.address, SRV_NAME, TYPE_SRV)
    assert m["tc"] and len(m["answers"]) < 45, m
    p = dns_proxy(make_proxy, test_dir, dns.addresses,
                  [block("app", "http://" + SRV_NAME, "interval=1 max=64 hold=10")])
    assert set(enabled_workers(p)) == {url(i, port) for i in range(1, 46)}, workers(p)
    # the members were made at startup; the gauges come with the watchdog's
    # first resolution (over TCP here), moments after the start
    wait_until(lambda: disc(p, "members") == 45, 5, 0.2, "the gauge after the first run")
    assert disc(p, "unplaced") == 0
    assert dns.tcp_queries(SRV_NAME), dns.queries()
    # every later resolution too: and the set stays whole
    n0 = len(dns.tcp_queries(SRV_NAME))
    wait_until(lambda: len(dns.tcp_queries(SRV_NAME)) >= n0 + 2, 5, 0.2, "TCP again")
    assert disc(p, "members") == 45 and disc(p, "failing") == 0
    count, _ = new_sessions(p, 2)
    assert count == {b1.name: 1, b2.name: 1}, count


def test_300_srv_members_over_tcp_fill_max_and_the_rest_are_unplaced(make_proxy, test_dir):
    dns = Dnsmasq(test_dir)
    srv = {SRV_NAME: [Srv("t%d.svc.test" % i, 20000 + i) for i in range(300)]}
    hosts = {"t%d.svc.test" % i: ["127.4.%d.%d" % (i // 250, i % 250 + 1)] for i in range(300)}
    dns.set_zone(srv=srv, hosts=hosts)
    every = {"http://127.4.%d.%d:%d" % (i // 250, i % 250 + 1, 20000 + i) for i in range(300)}
    p = dns_proxy(make_proxy, test_dir, dns.addresses,
                  [block("app", "http://" + SRV_NAME, "interval=1 max=64 hold=10")])
    assert dns.tcp_queries(SRV_NAME), dns.queries()[-5:]
    runs = disc(p, "resolutions_total")
    wait_until(lambda: disc(p, "resolutions_total") >= runs + 2, 6, 0.2, "two resolutions")
    made = enabled_workers(p)
    assert len(made) == 64 and set(made) <= every, sorted(made)
    assert disc(p, "members") == 64
    assert disc(p, "slots") == 64
    assert disc(p, "slots_free") == 0
    assert disc(p, "unplaced") == 236
    assert disc(p, "failing") == 0
    import re
    assert re.search(r"236 \S+ beyond max=64 get no member", p.error_log), p.error_log[-3000:]


def test_malformed_answers_keep_the_last_good_set_and_nothing_crashes(members, make_proxy,
                                                                      test_dir):
    """Every kind of malformed answer of HOSTILE_MODES, each for at least two
    seconds (hold=1: an answer taken for "gone" would empty the set): no
    child process dies, failing is 1, the set stays and is served; a good
    answer afterwards clears failing."""
    b1, b2, h = two_srv_members(members, ttl=1)
    p = dns_proxy(make_proxy, test_dir, h.address,
                  [block("app", "http://" + SRV_NAME, "interval=1 max=8 hold=1")])
    count, _ = new_sessions(p, 4)
    assert count == {b1.name: 2, b2.name: 2}, count
    children = set(p.child_pids())
    assert disc(p, "failing") == 0
    for mode in HOSTILE_MODES:
        errors0 = disc(p, "errors_total")
        t0 = time.monotonic()
        h.set_mode(mode)
        wait_until(lambda: h.queries(mode=mode)
                   and disc(p, "errors_total") >= errors0 + 2
                   and time.monotonic() - t0 >= 2.5, 20, 0.2, "two failures with %s" % mode)
        assert disc(p, "failing") == 1, mode
        assert disc(p, "members") == 2, mode
        assert sorted(members_up(p).values()) == [1, 1], (mode, members_up(p))
        count, _ = new_sessions(p, 4)
        assert count == {b1.name: 2, b2.name: 2}, (mode, count)
        assert set(p.child_pids()) == children, (mode, "a child process was replaced")
        assert crash_lines(p) == [], mode
        if mode.startswith("tc_then_"):
            assert h.queries(mode=mode, transport="tcp"), (mode, "TC not followed over TCP")
    h.set_mode("good")
    wait_until(lambda: disc(p, "failing") == 0, 12, 0.2, "failing 0 after good answers")
    count, _ = new_sessions(p, 4)
    assert count == {b1.name: 2, b2.name: 2}, count
    assert set(p.child_pids()) == children
    assert dns_failure_lines(p)


# --------------------------------------------------------------------------
# configuration

def test_srv_configuration_errors_fail_the_config_test(configtest, test_dir, dns):
    publish(dns, [(1, 20001)])
    wrapper = ResolvConf(test_dir / "resolv.conf", dns.addresses).wrapper()

    def conf(args):
        return ('<Proxy "balancer://app">\n    StickyRouteDiscover %s\n'
                '    ProxySet lbmethod=sticky\n</Proxy>\n'
                'ProxyPass "/" "balancer://app/"\n' % args)
    rc, out = configtest(conf("http://%s interval=ttl max=4 hold=5" % SRV_NAME),
                         wrapper=wrapper)
    assert rc == 0, out
    for bad in ("http://_http._tcp.x.svc.test:8080 interval=1",
                "http://%s interval=tt" % SRV_NAME):
        rc, out = configtest(conf(bad), wrapper=wrapper)
        assert rc != 0 and "StickyRouteDiscover" in out, (bad, rc, out)
