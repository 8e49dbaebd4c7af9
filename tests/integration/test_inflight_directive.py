"""StickyRouteInflight On|Off (issue 18, item 5): in-flight accounting only
where something needs it.

Each member's in-flight count is kept for a balancer when one of its
settings reads it (StickyRouteElect leastbusy, StickyRouteRebalance,
StickyRouteHashBalance) or when StickyRouteInflight On asks for the gauge;
otherwise nothing is counted and the status output leaves the gauge out
for that balancer's members (Prometheus `sticky_route_member_inflight`,
JSON `inflight`). StickyRouteInflight Off on a balancer whose settings
read the counts is an `apache2 -t` error naming the directive and the
setting.
"""

import pytest

from harness import (STATUS_CONF, HeldRequests, SlowBackend, balancer, get, member_values,
                     status_json_members, status_samples, wait_until)

METRIC = "sticky_route_member_inflight"
MEMBERS = [("http://127.0.0.1:20998", "s1"), ("http://127.0.0.1:20999", "s2")]


@pytest.fixture
def pair():
    return SlowBackend("A", slow=1.2), SlowBackend("B", slow=1.2)


def gauge_rows(port, name):
    return member_values(port, METRIC, name)


def json_by_balancer(port):
    out = {}
    for m in status_json_members(port):
        out.setdefault(m["balancer"], []).append(m)
    return out


def test_default_without_a_load_aware_setting_counts_nothing_and_shows_no_gauge(
        pair, make_proxy):
    a, b = pair
    p = make_proxy(STATUS_CONF
                   + balancer("plain", [(a.url, "a"), (b.url, "b")], mount="/plain/")
                   + balancer("rr", [(a.url, "a"), (b.url, "b")],
                              proxyset="lbmethod=roundrobin", mount="/rr/")
                   + balancer("asked", [(a.url, "a"), (b.url, "b")],
                              inner="StickyRouteCookie ASKED\nStickyRouteInflight On",
                              mount="/asked/"))
    held = HeldRequests(p.port, 2, "/plain/slow", cookie="ROUTEID=a")
    held_rr = HeldRequests(p.port, 2, "/rr/slow")
    held_asked = HeldRequests(p.port, 1, "/asked/slow", cookie="ASKED=b")
    wait_until(lambda: a.held + b.held == 5, 5, what="the five slow requests held")
    samples = status_samples(p.port, validate=True)
    names = {(labels.get("balancer"), labels.get("route"))
             for n, labels, _ in samples if n == METRIC}
    # only the balancer that asked has gauge rows, and it counts its request
    assert names == {("asked", "a"), ("asked", "b")}, names
    assert gauge_rows(p.port, "asked") == {"a": 0, "b": 1}
    members = json_by_balancer(p.port)
    assert all("inflight" not in m for m in members["plain"] + members["rr"]), members
    assert {m["route"]: m["inflight"] for m in members["asked"]} == {"a": 0, "b": 1}
    # every other member field is still there
    assert {"route", "up", "slowstart_share", "hash_share", "requests"} <= set(members["plain"][0])
    for r in held.join() + held_rr.join() + held_asked.join():
        assert getattr(r, "status", None) == 200, r
    wait_until(lambda: gauge_rows(p.port, "asked") == {"a": 0, "b": 0}, 1.5, interval=0.1,
               what="the asked-for gauge back to 0")


@pytest.mark.parametrize("inner", [
    "StickyRouteElect leastbusy",
    "StickyRouteRebalance 300",
    "StickyRouteHashBalance 1.25\nStickyRouteElect hash",
], ids=["leastbusy", "rebalance", "hash-balance"])
def test_a_setting_that_reads_the_counts_turns_the_accounting_on(pair, make_proxy, inner):
    a, b = pair
    p = make_proxy(STATUS_CONF + balancer("app", [(a.url, "a"), (b.url, "b")], inner=inner))
    held = HeldRequests(p.port, 2, "/slow", cookie="ROUTEID=a")
    a.wait_held(2)
    assert gauge_rows(p.port, "app") == {"a": 2, "b": 0}
    assert {m["route"]: m["inflight"] for m in status_json_members(p.port)} == {"a": 2, "b": 0}
    for r in held.join():
        assert getattr(r, "status", None) == 200, r
    wait_until(lambda: gauge_rows(p.port, "app") == {"a": 0, "b": 0}, 1.5, interval=0.1,
               what="the gauge back to 0")


def test_explicit_off_without_a_reader_shows_no_gauge(pair, make_proxy):
    a, b = pair
    p = make_proxy(STATUS_CONF + "StickyRouteInflight On\n"
                   + balancer("app", [(a.url, "a"), (b.url, "b")],
                              inner="StickyRouteInflight Off"))
    for i in range(4):
        assert get(p.port, cookie="ROUTEID=a" if i % 2 else None).status == 200
    assert gauge_rows(p.port, "app") == {}
    assert all("inflight" not in m for m in status_json_members(p.port))


def test_server_wide_on_applies_to_every_balancer(pair, make_proxy):
    a, b = pair
    p = make_proxy(STATUS_CONF + "StickyRouteInflight On\n"
                   + balancer("app", [(a.url, "a"), (b.url, "b")]))
    held = HeldRequests(p.port, 1, "/slow", cookie="ROUTEID=b")
    b.wait_held(1)
    assert gauge_rows(p.port, "app") == {"a": 0, "b": 1}
    for r in held.join():
        assert getattr(r, "status", None) == 200, r


def assert_rejected(configtest, test_dir, body, *words):
    rc, out = configtest(body)
    text = out.replace(str(test_dir), "<dir>")
    assert rc != 0, "config accepted:\n%s\n---\n%s" % (body, text)
    for w in words:
        assert w in text, "output does not name %s:\n%s" % (w, text)
    assert "Invalid command" not in text, text


@pytest.mark.parametrize("server,inner,reader", [
    ("", "StickyRouteInflight Off\nStickyRouteElect leastbusy", "StickyRouteElect leastbusy"),
    ("", "StickyRouteElect leastbusy\nStickyRouteInflight Off", "StickyRouteElect leastbusy"),
    ("StickyRouteRebalance 60\n", "StickyRouteInflight Off", "StickyRouteRebalance"),
    ("StickyRouteInflight Off\n", "StickyRouteHashBalance 1.5", "StickyRouteHashBalance"),
], ids=["leastbusy-after", "leastbusy-before", "rebalance-server-wide", "off-server-wide"])
def test_off_with_a_setting_that_reads_the_counts_is_an_error(
        configtest, test_dir, server, inner, reader):
    assert_rejected(configtest, test_dir, server + balancer("app", MEMBERS, inner=inner),
                    "StickyRouteInflight Off", reader, "balancer://app")


@pytest.mark.parametrize("line", ["StickyRouteInflight", "StickyRouteInflight maybe"],
                         ids=["no-arg", "bad-arg"])
def test_bad_values_are_errors_naming_the_directive(configtest, test_dir, line):
    assert_rejected(configtest, test_dir, balancer("app", MEMBERS, inner=line),
                    "StickyRouteInflight")


def test_valid_configurations_pass(configtest, test_dir):
    body = ("StickyRouteInflight On\n"
            + balancer("app", MEMBERS, inner="StickyRouteInflight Off")
            + balancer("lb", MEMBERS, mount=None,
                       inner="StickyRouteCookie LBROUTE\nStickyRouteElect leastbusy\n"
                             "StickyRouteInflight On")
            + 'ProxyPass "/lb/" "balancer://lb/"\n')
    rc, out = configtest(body)
    assert rc == 0, out
    assert "Syntax OK" in out
