"""The status endpoint's output stays valid whatever bytes the names it
prints hold: quotes, backslashes and control bytes in lbmethod=roundrobin
routes (not validated at startup), in balancer names, in a virtual host's
ServerName and in routes set through balancer-manager.

- `?json` parses (json.loads, strict: no raw control characters);
- the Prometheus text passes `promtool check metrics` and
  python3-prometheus-client's parser, with no series twice;
- names round-trip: the parsed label / field equals the name httpd holds;
- every route shown is the route the module uses: the configured one when it
  is a valid cookie route (1-63 of A-Z a-z 0-9 - _ ~) unique in its
  balancer, else the member's derived route.
"""

import json
import re
import time

import pytest

from harness import (DERIVED_ROUTE_RE, MANAGER_CONF, STATUS_CONF, BalancerManager,
                     assert_valid_exposition, get, wait_until)
from harness import STATUS_PATH as STATUS
VALID_ROUTE_RE = re.compile(r"^[A-Za-z0-9_~-]{1,63}$")


def conf_quote(s):
    """s as one quoted word of httpd's config syntax (ap_getword_conf turns
    \\\\ into \\ and \\" into ")."""
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def status_config():
    return STATUS_CONF + MANAGER_CONF


def proxy_block(name, members, lbmethod="roundrobin", mount="/"):
    """members: list of (url, route or None); route written as one quoted
    `route=...` word so that any byte survives the config parser."""
    lines = ["<Proxy %s>" % conf_quote("balancer://" + name)]
    for url, route in members:
        word = " " + conf_quote("route=" + route) if route is not None else ""
        lines.append('    BalancerMember "%s"%s ttl=5' % (url, word))
    lines.append("    ProxySet lbmethod=%s growth=2" % lbmethod)
    lines.append("</Proxy>")
    if mount:
        lines.append("ProxyPass %s %s" % (conf_quote(mount), conf_quote("balancer://%s/" % name)))
    return "\n".join(lines) + "\n"


def fetch_status(port, host=None):
    """(Prometheus samples, JSON members), both checked for validity."""
    r = get(port, STATUS, host=host)
    assert r.status == 200, r
    text = r.body.decode("utf-8")
    samples = assert_valid_exposition(text)
    r = get(port, STATUS + "?json", host=host)
    assert r.status == 200, r
    try:
        doc = json.loads(r.body.decode("utf-8"))
    except ValueError as e:
        pytest.fail("?json is not JSON (%s): %r" % (e, r.body[:600]))
    return samples, doc["members"]


def up_labels(samples):
    return [labels for name, labels, _ in samples if name == "sticky_route_member_up"]


def assert_routes_are_the_routes_used(samples, members, kept):
    """Routes shown: `kept` (configured, valid, unique) plus derived ones for
    every other member; Prometheus and JSON agree."""
    routes = [m["route"] for m in members]
    bad = [r for r in routes if not VALID_ROUTE_RE.match(r)]
    assert bad == [], "status shows routes no cookie can carry (not the routes used): %r" % bad
    assert len(set(routes)) == len(routes), "a route shown twice: %r" % routes
    for r in kept:
        assert r in routes, (r, routes)
    others = [r for r in routes if r not in kept]
    assert all(DERIVED_ROUTE_RE.match(r) for r in others), \
        "members with an unusable route= do not show their derived route: %r" % routes
    assert sorted(l["route"] for l in up_labels(samples)) == sorted(routes), (samples, members)
    return routes


@pytest.mark.parametrize("route", ["tab\there", "ctl\x01byte", "cr\x1fbyte",
                                   'q"uote', "back\\slash", 'b\\"oth'],
                         ids=["tab", "x01", "x1f", "quote", "backslash", "both"])
def test_roundrobin_route_status_cannot_show_as_is_gives_valid_json_with_the_derived_route(
        backends, make_proxy, route):
    p = make_proxy(status_config() + proxy_block(
        "app", [(backends["alpha"].url, "ok1"), (backends["bravo"].url, route)]))
    samples, members = fetch_status(p.port)
    routes = assert_routes_are_the_routes_used(samples, members, kept=["ok1"])
    assert len(routes) == 2, routes
    # the route used in requests is the one shown
    used = {get(p.port).sticky_route for _ in range(4)}
    assert used == set(routes), (used, routes)


def test_duplicate_roundrobin_routes_the_later_member_shows_its_derived_route(
        backends, make_proxy):
    p = make_proxy(status_config() + proxy_block(
        "app", [(backends["alpha"].url, "dup"), (backends["bravo"].url, "dup"),
                (backends["charlie"].url, "ok3")]))
    samples, members = fetch_status(p.port)
    routes = assert_routes_are_the_routes_used(samples, members, kept=["dup", "ok3"])
    assert len(routes) == 3, routes
    # alpha (the first) keeps "dup"
    served = {}
    for _ in range(6):
        r = get(p.port)
        assert r.status == 200, r
        served.setdefault(r.sticky_route, set()).add(r.served_by)
    assert served.get("dup") == {"alpha"}, served
    assert set(served) == set(routes), (served, routes)


BALANCER_NAMES = {
    "quote": 'we"ird',
    "backslash": "back\\slash",
    "tab": "ta\tb",
    "x01": "ctl\x01name",
    "all": 'a"b\\c\td\x01e\x1ff',
}


@pytest.mark.parametrize("key", sorted(BALANCER_NAMES))
def test_balancer_name_with_quote_backslash_or_control_byte_round_trips(
        backends, make_proxy, key):
    name = BALANCER_NAMES[key]
    p = make_proxy(status_config() + proxy_block(
        name, [(backends["alpha"].url, "s1"), (backends["bravo"].url, "s2")]))
    for _ in range(4):
        r = get(p.port)
        assert r.status == 200 and r.served_by in ("alpha", "bravo"), r
    samples, members = fetch_status(p.port)
    assert {m["balancer"] for m in members} == {name}, \
        "JSON balancer names %r, configured %r" % ({m["balancer"] for m in members}, name)
    assert {l["balancer"] for n, l, _ in samples} == {name}, \
        "Prometheus balancer labels %r, configured %r" % (
            {l["balancer"] for n, l, _ in samples}, name)
    assert sorted(m["route"] for m in members) == ["s1", "s2"], members


SERVER_NAME = 'x"y\\z\x01w\tv.test'


def test_server_name_with_quote_backslash_and_control_bytes_round_trips_in_server_label(
        backends, make_proxy):
    body = (status_config()
            + "<VirtualHost 127.0.0.1:@PORT@>\n"
            + "    ServerName %s\n" % conf_quote(SERVER_NAME)
            + "    ProxyAddHeaders Off\n"
            + '    ProxyPass "%s" "!"\n' % STATUS
            + proxy_block("app", [(backends["alpha"].url, "s1"),
                                  (backends["bravo"].url, "s2")])
            + "</VirtualHost>\n")
    p = make_proxy(body)
    for _ in range(2):
        assert get(p.port).status == 200
    samples, members = fetch_status(p.port)
    servers = {l.get("server") for _, l, _ in samples}
    assert len(servers) == 1 and servers != {None}, \
        "one server label expected, got %r" % servers
    server = servers.pop()
    assert SERVER_NAME in server, "server label %r does not hold ServerName %r" % (
        server, SERVER_NAME)
    assert {m.get("server") for m in members} == {server}, members


def test_routes_set_through_balancer_manager_with_control_bytes_quotes_backslashes(
        backends, make_proxy):
    urls = [backends[n].url for n in ("alpha", "bravo", "charlie", "delta")]
    p = make_proxy(status_config() + proxy_block(
        "app", list(zip(urls, ["s1", "s2", "s3", "s4"]))))
    manager = BalancerManager(p.port)
    edits = {urls[1]: "a\x01b", urls[2]: 'q"u\\o', urls[3]: "t\tab"}
    for url, route in edits.items():
        manager.edit_worker("app", url, [("w_wr", route)])   # sent as %01, %22, %5C, %09
    time.sleep(1.5)                                           # the module's rescan

    last = {}

    def settled():
        try:
            last["status"] = fetch_status(p.port)
        except AssertionError as e:
            last["error"] = e
            return False
        last.pop("error", None)
        routes = [m["route"] for m in last["status"][1]]
        return all(VALID_ROUTE_RE.match(r) for r in routes)
    try:
        wait_until(settled, 3, interval=0.2, what="valid routes in the status")
    except TimeoutError:
        pass
    if "error" in last:
        raise last["error"]
    samples, members = last["status"]
    routes = assert_routes_are_the_routes_used(samples, members, kept=["s1"])
    assert len(routes) == 4, routes
    used = {}
    for _ in range(8):
        r = get(p.port)
        assert r.status == 200, r
        used[r.sticky_route] = r.served_by
    assert set(used) == set(routes), (used, routes)
