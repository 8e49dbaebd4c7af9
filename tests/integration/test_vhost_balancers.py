"""Balancers of the same name in several name-based virtual hosts are
independent: each has its own round-robin schedule position, its own
counters and its own lines in the status output, which name the virtual
host in a `server` label / field.  A balancer of the main server inherited
by a virtual host (BalancerInherit On, httpd's default) keeps working."""

import collections
import json

from harness import (assert_valid_exposition, free_port, get, member_line, wait_until)

STATUS = "/sticky-status"


def status_location():
    return ('<Location "%s">\n    SetHandler sticky-route-status\n</Location>\n' % STATUS)


def vhost(server_name, members, lbmethod):
    """A name-based virtual host on the proxy's port with its own
    balancer://app.  members: list of (backend, route or None)."""
    lines = ["<VirtualHost 127.0.0.1:@PORT@>",
             "    ServerName %s" % server_name,
             '    ProxyPass "%s" "!"' % STATUS,
             '    <Proxy "balancer://app">']
    for target, route in members:
        lines.append("    " + member_line(target, route))
    lines += ["        ProxySet lbmethod=%s" % lbmethod,
              "    </Proxy>",
              '    ProxyPass "/" "balancer://app/"',
              "</VirtualHost>"]
    return "\n".join(lines) + "\n"


def two_vhosts(backends, lbmethod, routes=(None, None)):
    return (status_location()
            + vhost("a.test", [(backends["alpha"], routes[0]), (backends["bravo"], routes[1])],
                    lbmethod)
            + vhost("b.test", [(backends["charlie"], routes[0]), (backends["delta"], routes[1])],
                    lbmethod))


VHOST_MEMBERS = {"a.test": {"alpha", "bravo"}, "b.test": {"charlie", "delta"}}


def alternate(port, n, cookie=None):
    """n sequential requests, Host a.test, b.test, a.test, ... each on a
    fresh connection.  Returns {host: Counter(served_by)} and the responses."""
    served = {h: collections.Counter() for h in VHOST_MEMBERS}
    responses = []
    for i in range(n):
        host = "a.test" if i % 2 == 0 else "b.test"
        r = get(port, "/", host=host, cookie=cookie)
        assert r.status == 200, (i, host, r)
        assert r.served_by in VHOST_MEMBERS[host], \
            "request %d for %s served by %r, a member of the other virtual host" % (
                i, host, r.served_by)
        served[host][r.served_by] += 1
        responses.append((host, r))
    return served, responses


def test_roundrobin_same_balancer_name_in_two_vhosts_each_splits_evenly(backends, make_proxy):
    p = make_proxy(two_vhosts(backends, "roundrobin"))
    served, _ = alternate(p.port, 200)
    for host, members in VHOST_MEMBERS.items():
        got = {m: served[host][m] for m in sorted(members)}
        assert got == {m: 50 for m in sorted(members)}, \
            "%s: 100 alternating requests split %s over its own members (exact round " \
            "robin: 50 each)" % (host, got)


def test_sticky_same_balancer_name_in_two_vhosts_new_sessions_split_evenly(backends, make_proxy):
    p = make_proxy(two_vhosts(backends, "sticky", routes=("s1", "s2")))
    served, responses = alternate(p.port, 200)
    for host, r in responses:
        assert r.sticky_status == "new", (host, r)
        assert len(r.set_cookies) == 1, (host, r)
    for host, members in VHOST_MEMBERS.items():
        got = {m: served[host][m] for m in sorted(members)}
        assert got == {m: 50 for m in sorted(members)}, \
            "%s: 100 alternating new sessions split %s over its own members (50 each)" % (
                host, got)
    # each vhost's cookies stay with its own members
    for host, members in VHOST_MEMBERS.items():
        for route in ("s1", "s2"):
            seen = {get(p.port, host=host, cookie="ROUTEID=" + route).served_by
                    for _ in range(4)}
            assert len(seen) == 1 and seen <= members, (host, route, seen)


def status_text(port, host):
    r = get(port, STATUS, host=host)
    assert r.status == 200, r
    return r.body.decode("utf-8")


def status_members(port, host):
    r = get(port, STATUS + "?json", host=host)
    assert r.status == 200, r
    doc = json.loads(r.body.decode("utf-8"))
    return doc["members"]


def test_status_lists_same_named_balancers_of_both_vhosts_with_a_server_label(
        backends, make_proxy):
    p = make_proxy(two_vhosts(backends, "sticky", routes=("s1", "s2")))
    # traffic: a.test's s1 gets 3 hits, b.test's s1 gets 5
    for host, n in (("a.test", 3), ("b.test", 5)):
        for _ in range(n):
            r = get(p.port, host=host, cookie="ROUTEID=s1")
            assert r.status == 200 and r.sticky_status == "hit", (host, r)

    for via in ("a.test", "b.test"):
        # Prometheus text: valid, no series twice, all four members
        text = status_text(p.port, via)
        samples = assert_valid_exposition(text)
        up = [labels for name, labels, _ in samples if name == "sticky_route_member_up"]
        assert all(labels.get("server") for labels in up), \
            "member_up series without a non-empty server label (via %s): %s" % (via, up)
        keys = {(labels["server"], labels.get("balancer"), labels.get("route")) for labels in up}
        assert len(keys) == 4, "expected 4 members (2 per vhost), got %s\n%s" % (keys, text)
        servers = {k[0] for k in keys}
        assert len(servers) == 2, "server label does not tell the vhosts apart: %s" % servers
        assert any("a.test" in s for s in servers) and any("b.test" in s for s in servers), \
            servers
        assert {k[1] for k in keys} == {"app"}, keys
        for s in servers:
            assert {k[2] for k in keys if k[0] == s} == {"s1", "s2"}, keys
        req = [labels for name, labels, _ in samples if name == "sticky_route_requests_total"]
        assert req and all(labels.get("server") in servers for labels in req), \
            "requests_total series without the server label: %s" % req[:4]

        # JSON: valid, each member object names server, balancer, route
        members = status_members(p.port, via)
        for m in members:
            for field in ("server", "balancer", "route"):
                assert isinstance(m.get(field), str) and m[field], \
                    "member without %r: %s" % (field, m)
        jkeys = {(m["server"], m["balancer"], m["route"]) for m in members}
        assert jkeys == keys, "JSON members %s != Prometheus members %s" % (jkeys, keys)
        assert len(members) == 4, members

    # counters are per virtual host
    def hits():
        members = status_members(p.port, "a.test")
        return {(next(h for h in VHOST_MEMBERS if h in m["server"]), m["route"]):
                m["requests"]["hit"] for m in members}
    expected = {("a.test", "s1"): 3, ("a.test", "s2"): 0,
                ("b.test", "s1"): 5, ("b.test", "s2"): 0}
    last = {}

    def counted():
        last["hits"] = hits()
        return last["hits"] == expected
    try:
        wait_until(counted, 5, what="the hits counted per virtual host")
    except TimeoutError:
        pass
    assert last["hits"] == expected, \
        "hit counters per (vhost, route): %s, sent %s" % (last["hits"], expected)


def test_balancer_of_main_server_inherited_by_vhost_works_from_both(backends, make_proxy):
    vport = free_port()
    body = ("Listen 127.0.0.1:%d\n" % vport
            + '<Proxy "balancer://main">\n'
            + member_line(backends["alpha"]) + "\n" + member_line(backends["bravo"]) + "\n"
            + "    ProxySet lbmethod=roundrobin\n</Proxy>\n"
            + 'ProxyPass "/" "balancer://main/"\n'
            + "<VirtualHost 127.0.0.1:%d>\n    ServerName v.test\n</VirtualHost>\n" % vport)
    p = make_proxy(body)
    for port, host in ((p.port, None), (vport, "v.test"), (p.port, None), (vport, "v.test")):
        served = collections.Counter()
        for i in range(20):
            r = get(port, "/", host=host)
            assert r.status == 200, (port, host, i, r)
            served[r.served_by] += 1
        assert served == {"alpha": 10, "bravo": 10}, (port, host, served)
