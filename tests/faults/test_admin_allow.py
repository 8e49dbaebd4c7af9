"""The admin endpoints of the shipped proxy configuration (balancer-manager
and the sticky-route status page) answer only the addresses in ADMIN_ALLOW
(default 127.0.0.1); the rest of the site is not restricted.

A second loopback source address stands for "somebody else": the client
socket is bound to 127.0.0.2 before it connects to the proxy on 127.0.0.1.
The proxy is rendered by templates/render-proxy-conf.sh, as for `make run`.
"""

import os
import socket
import subprocess

import pytest

import faultstack as fs

OTHER = "127.0.0.2"
ADMIN_PATHS = ["/balancer-manager", "/sticky-route-status", "/sticky-route-status?json"]
# What each admin page says when it is served (never to a refused address).
MARKERS = [b"sticky_route_requests_total", b"sticky_route_member_up", b'"members"',
           b"Load Balancer Manager", b"balancer://"]
# Other spellings of the admin URLs: each must be refused too, or must not
# reach an admin handler.
BYPASS_PATHS = ["/balancer-manager/", "/balancer-manager?b=static", "//balancer-manager",
                "/%62alancer-manager", "/./balancer-manager", "/x/../balancer-manager",
                "/sticky-route-status/", "/sticky-route-status/x", "//sticky-route-status?json",
                "/sticky-route-statu%73", "/sticky-route-status;json"]


def second_loopback_works():
    s = socket.socket()
    try:
        s.bind((OTHER, 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


@pytest.fixture(scope="module")
def proxies(run_dir):
    """Two proxies: ADMIN_ALLOW unset (default) and ADMIN_ALLOW=127.0.0.2.
    Their members are dead ports: the admin pages need no backend."""
    if not second_loopback_works():
        pytest.fail("cannot bind %s: the test needs the whole 127.0.0.0/8 on lo" % OTHER)
    base = fs.port_base() + 10
    started = {}
    try:
        for i, (name, env) in enumerate([("default", {}), ("other", {"ADMIN_ALLOW": OTHER})]):
            d = run_dir / ("admin-" + name)
            d.mkdir()
            d.chmod(0o755)
            port = base + 5 * i
            p = fs.make_proxy(d, port, [(port + 1, "s1"), (port + 2, "s2")],
                              [(port + 3, "d1"), (port + 4, "d2")], extra_env=env)
            started[name] = p.start()
            fs.wait_until(lambda: not fs.port_quiet(port), 15, what="proxy %s listening" % name)
        yield started
    finally:
        for p in started.values():
            p.terminate()


def get(proxy, path, source, headers=None):
    status, _, body = fs.http_get(proxy.port, path, headers=headers, source=source, timeout=10)
    return status, body


def admin_content(body):
    return [m.decode() for m in MARKERS if m in body]


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_default_allows_only_127_0_0_1(proxies, path):
    p = proxies["default"]
    status, body = get(p, path, "127.0.0.1")
    assert status == 200 and admin_content(body), (path, status, body[:200])
    status, body = get(p, path, OTHER)
    assert status == 403, (path, status, body[:200])
    assert not admin_content(body), body[:300]


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_admin_allow_other_address_flips_it(proxies, path):
    p = proxies["other"]
    status, body = get(p, path, OTHER)
    assert status == 200 and admin_content(body), (path, status, body[:200])
    status, body = get(p, path, "127.0.0.1")
    assert status == 403, (path, status, body[:200])
    assert not admin_content(body), body[:300]


def test_rendered_config_restricts_both_admin_locations(proxies):
    vhost = (proxies["default"].conf.parent / "vhost.conf").read_text()
    for loc, handler in (("/balancer-manager", "balancer-manager"),
                         ("/sticky-route-status", "sticky-route-status")):
        block = vhost.split('<Location "%s">' % loc, 1)[1].split("</Location>", 1)[0]
        assert "SetHandler %s" % handler in block
        assert "Require ip 127.0.0.1\n" in block, block
    assert "Require all granted" not in vhost
    other = (proxies["other"].conf.parent / "vhost.conf").read_text()
    assert other.count("Require ip %s\n" % OTHER) == 2, other


@pytest.mark.parametrize("path", BYPASS_PATHS)
def test_other_spellings_of_the_admin_urls_are_refused(proxies, path):
    status, body = get(proxies["default"], path, OTHER)
    assert not admin_content(body), (path, status, body[:300])
    assert status in (400, 403, 404, 503), (path, status, body[:200])


def test_forwarded_headers_do_not_count(proxies):
    spoof = {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1",
             "Forwarded": "for=127.0.0.1"}
    for path in ADMIN_PATHS:
        status, body = get(proxies["default"], path, OTHER, headers=spoof)
        assert status == 403 and not admin_content(body), (path, status)


def test_site_is_not_restricted(proxies):
    # The members are dead: 503 from the proxy, not 403 from the access rule.
    for path in ("/", "/api/"):
        status, _ = get(proxies["default"], path, OTHER)
        assert status == 503, (path, status)


BAD_ADMIN_ALLOW = [
    "all", "127.0.0.1 all", "127.0.0.1 10.0.0.1", "", "127.0.0.1,", ",127.0.0.1",
    "127.0.0.1,,10.0.0.1", "localhost", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1",
    "10.0.0.256", "10.1", "::1/129", "127.0.0.1\nRequire all granted",
    "127.0.0.1\"", "127.0.0.1>", "127.0.0.1;10.0.0.1", "*", "0.0.0.0/0 granted",
]


def render_with_admin_allow(out, value):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STATIC_APP", "DYNAMIC_APP"))}
    env.update(STATIC_APP="127.0.0.1:24001=s1", DYNAMIC_APP="127.0.0.1:24002=d1",
               ADMIN_ALLOW=value)
    return subprocess.run(["bash", str(fs.RENDERER), str(out)], env=env, capture_output=True,
                          text=True, timeout=30)


@pytest.mark.parametrize("value", BAD_ADMIN_ALLOW)
def test_renderer_refuses_a_bad_admin_allow(tmp_path, value):
    out = tmp_path / "vhost.conf"
    res = render_with_admin_allow(out, value)
    assert res.returncode != 0, (value, res.stdout)
    assert "ADMIN_ALLOW" in res.stderr, res.stderr
    assert not out.exists()
    assert not list(tmp_path.iterdir()), list(tmp_path.iterdir())


@pytest.mark.parametrize("value,expected", [
    ("10.1.0.0/16", "10.1.0.0/16"), ("127.0.0.1,10.1.2.3,::1", "127.0.0.1 10.1.2.3 ::1"),
    ("fd00::/8", "fd00::/8"), ("0.0.0.0/0", "0.0.0.0/0")])
def test_renderer_accepts_ips_and_cidrs(tmp_path, value, expected):
    out = tmp_path / "vhost.conf"
    res = render_with_admin_allow(out, value)
    assert res.returncode == 0, res.stderr
    assert out.read_text().count("Require ip %s\n" % expected) == 2
