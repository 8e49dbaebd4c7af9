"""Through the proxy of the running stack: who serves what."""
import html.parser
import re
import urllib.parse

import requests

TIMEOUT = 5


class AssetParser(html.parser.HTMLParser):
    """Collects the URLs an HTML page references (stylesheets, icons, scripts, images)."""

    def __init__(self):
        super().__init__()
        self.urls = []
        self.meta = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "link" and a.get("href"):
            self.urls.append(a["href"])
        elif tag in ("script", "img") and a.get("src"):
            self.urls.append(a["src"])
        elif tag == "meta" and a.get("name"):
            self.meta[a["name"]] = a.get("content")


def referenced_assets(base, page_html, session):
    """Every asset of the page: from the markup, then url(...) of its stylesheets."""
    parser = AssetParser()
    parser.feed(page_html)
    urls = [urllib.parse.urljoin(base, u) for u in parser.urls]
    for css in [u for u in urls if u.endswith(".css")]:
        text = session.get(css, timeout=TIMEOUT).text
        for ref in re.findall(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)", text):
            urls.append(urllib.parse.urljoin(css, ref))
    return sorted(set(urls)), parser.meta


def test_page_and_every_referenced_asset_come_from_one_static_server(stack, fresh):
    page = fresh.get(stack.url, timeout=TIMEOUT)
    assert page.status_code == 200
    server = page.headers["X-Served-By"]
    assert server in ("static-1", "static-2")
    assets, meta = referenced_assets(stack.url, page.text, fresh)
    # The index page names its own server (server-side include).
    assert meta.get("served-by") == server
    assert f'id="page-server" class="server-name">{server}</strong>' in page.text
    paths = {urllib.parse.urlparse(u).path for u in assets}
    assert {"/css/style.css", "/js/app.js", "/img/logo.svg", "/img/dots.png"} <= paths
    for url in assets:
        r = fresh.get(url, timeout=TIMEOUT)
        assert r.status_code == 200, url
        assert r.headers["X-Served-By"] == server, url
        assert "Set-Cookie" not in r.headers, f"{url}: the cookie was already valid"


def test_first_answer_sets_routeid_cookie_naming_the_server(stack, fresh):
    r = fresh.get(stack.url, timeout=TIMEOUT)
    cookie = r.headers["Set-Cookie"]
    assert re.fullmatch(r"ROUTEID=s[12]; Path=/; HttpOnly; SameSite=Lax", cookie), cookie
    route = fresh.cookies["ROUTEID"]
    assert r.headers["X-Served-By"] == {"s1": "static-1", "s2": "static-2"}[route]


def test_cookie_pins_a_client_for_many_requests(stack, fresh):
    servers = [fresh.get(stack.url + p, timeout=TIMEOUT).headers["X-Served-By"]
               for p in ["", "css/style.css", "js/app.js", "img/logo.svg"] * 5]
    assert len(set(servers)) == 1, servers


def test_fresh_clients_spread_over_both_static_servers(stack):
    seen = []
    for _ in range(20):
        with requests.Session() as client:
            seen.append(client.get(stack.url, timeout=TIMEOUT).headers["X-Served-By"])
    assert set(seen) == {"static-1", "static-2"}, seen
    assert min(seen.count("static-1"), seen.count("static-2")) >= 5, seen


def test_ten_consecutive_api_calls_alternate_strictly(stack, fresh):
    answers = []
    for _ in range(10):
        r = fresh.get(stack.url + "api/", timeout=TIMEOUT)
        assert r.status_code == 200
        body = r.json()
        assert body["served_by"] == r.headers["X-Served-By"]
        assert len(body["records"]) == 5
        assert {"name", "city"} <= set(body["records"][0])
        answers.append(body["served_by"])
    assert set(answers) == {"dynamic-1", "dynamic-2"}, answers
    assert all(a != b for a, b in zip(answers, answers[1:])), answers


def test_api_prefix_maps_to_the_dynamic_servers_root(stack, fresh):
    r = fresh.get(stack.url + "api/healthz", timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.headers["X-Served-By"].startswith("dynamic-")
    bad = fresh.get(stack.url + "api/", params={"count": "500"}, timeout=TIMEOUT)
    assert bad.status_code == 400
    assert "count" in bad.json()["error"]
    assert bad.headers["X-Served-By"].startswith("dynamic-")


def test_static_errors_also_carry_x_served_by(stack, fresh):
    r = fresh.get(stack.url + "no-such-page.html", timeout=TIMEOUT)
    assert r.status_code == 404
    assert r.headers["X-Served-By"] in ("static-1", "static-2")


def test_admin_endpoints_answer_the_admin_address(stack, fresh):
    manager = fresh.get(stack.url + "balancer-manager", timeout=TIMEOUT)
    assert manager.status_code == 200
    assert "balancer://static" in manager.text and "balancer://dynamic" in manager.text
    status = fresh.get(stack.url + "sticky-route-status", timeout=TIMEOUT)
    assert status.status_code == 200
    # the vhost's ServerName and port label every series (issue 9)
    assert re.search(r'^sticky_route_member_up\{server="[^"]+:\d+",balancer="static",route="s1"\} 1$',
                     status.text, re.M), status.text
    assert re.search(r'^sticky_route_member_up\{server="[^"]+:\d+",balancer="dynamic",route="d2"\} 1$',
                     status.text, re.M), status.text
    assert "X-Served-By" not in status.headers, "answered by the proxy, not proxied"


def test_backends_keep_connections_longer_than_the_proxy_pool_ttl(stack, fresh):
    # The proxy's BalancerMembers use ttl=60; both kinds of backend keep idle
    # connections 75 s, so the backend never closes a pooled connection first.
    for name in ("static-1", "dynamic-1"):
        r = fresh.get(f"http://127.0.0.1:{stack.ports[name]}/healthz"
                      if name.startswith("dynamic") else
                      f"http://127.0.0.1:{stack.ports[name]}/css/style.css", timeout=TIMEOUT)
        assert r.status_code == 200
        assert re.search(r"timeout=75\b", r.headers.get("Keep-Alive", "")), (name, r.headers)
    conf = (stack.run_dir / "proxy" / "vhost.conf").read_text()
    members = re.findall(r"^\s*BalancerMember .*$", conf, re.M)
    assert len(members) == 4
    assert all("keepalive=On" in m and "ttl=60" in m for m in members), members
