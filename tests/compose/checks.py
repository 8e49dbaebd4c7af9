#!/usr/bin/python3
"""HTTP checks of the compose stack, run by tests/compose/run.sh.

The same checks as the loopback stack, against the published port of the
reverse-proxy container (127.0.0.1 only):

  checks.py basic BASE_URL                 page + assets from one static
                                           container, API alternating, names
  checks.py pin BASE_URL STATE             a new client; its cookie and server
                                           saved in STATE (JSON)
  checks.py failover BASE_URL STATE        the client's server is stopped: served
                                           by the other, zero errors, one cookie
  checks.py stays BASE_URL STATE           the client stays where it is (hit)
  checks.py new-client-reaches BASE_URL NAME SECONDS
                                           a new client lands on NAME again
  checks.py api-spread BASE_URL N          N API requests, prints the served_by
  checks.py status-check STATUS_JSON_FILE EXPECT_JSON
                                           /sticky-route-status?json members

Every check prints what it saw and exits 1 on the first failed expectation.
"""
import json
import os
import re
import sys
import time
from html.parser import HTMLParser

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from srtest.wait import wait_until  # noqa: E402  (the tests' one polling loop)

STATIC = ("static1", "static2")
DYNAMIC = ("dynamic1", "dynamic2")
SERVICES = STATIC + DYNAMIC
COOKIE = "ROUTEID"
# Signed value (the stack has a secret): ROUTE.TAG, TAG = 11 base64url chars.
SET_COOKIE_RE = re.compile(
    r"^ROUTEID=([A-Za-z0-9_~-]+)\.([A-Za-z0-9_-]{11}); Path=/; HttpOnly; SameSite=Lax"
    r"(; Secure)?$")
TIMEOUT = 20
HTTPS = False          # the base URL is https: (main)


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def say(msg):
    print(f"  {msg}", flush=True)


def get(url, cookie=None):
    headers = {"Cache-Control": "no-cache"}
    if cookie:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    r = requests.get(url, headers=headers, timeout=TIMEOUT, allow_redirects=False)
    set_cookies = r.raw.headers.getlist("Set-Cookie") if r.raw is not None else []
    return r, set_cookies


def parse_cookie(set_cookies, url):
    expect(len(set_cookies) == 1, f"{url}: expected exactly one Set-Cookie, got {set_cookies}")
    m = SET_COOKIE_RE.match(set_cookies[0])
    expect(m, f"{url}: Set-Cookie {set_cookies[0]!r} is not a signed {COOKIE} cookie "
              "with Path=/; HttpOnly; SameSite=Lax")
    # Secure on HTTPS (added by the module itself), never on plain HTTP
    expect(bool(m.group(3)) == HTTPS,
           f"{url}: Set-Cookie {set_cookies[0]!r}: Secure must be there on HTTPS only")
    return m.group(1), f"{m.group(1)}.{m.group(2)}"


class AssetParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.assets = []
        self.meta_served_by = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "meta" and a.get("name") == "served-by":
            self.meta_served_by = a.get("content")
        for key in ("src", "href"):
            v = a.get(key)
            if v and v.startswith("/") and not v.startswith("//") and \
                    tag in ("img", "script", "link"):
                self.assets.append(v)


def new_client_page(base):
    """GET / without a cookie: (server, route, cookie value, asset paths)."""
    url = base + "/"
    r, sc = get(url)
    expect(r.status_code == 200, f"GET / -> {r.status_code}")
    server = r.headers.get("X-Served-By")
    expect(server in STATIC, f"GET / X-Served-By={server!r}, expected one of {STATIC}")
    route, value = parse_cookie(sc, url)
    expect(route == server, f"GET /: cookie route {route!r} but X-Served-By {server!r} "
                            "(compose routes are the service names)")
    p = AssetParser()
    p.feed(r.text)
    expect(p.meta_served_by == server,
           f"GET /: page says served by {p.meta_served_by!r}, header {server!r}")
    expect(f'id="page-server" class="server-name">{server}</strong>' in r.text,
           f"GET /: the page does not name {server} as its server")
    # Referenced by the page, plus the background image of the style sheet.
    assets = sorted(set(p.assets) | {"/img/dots.png"})
    expect({"/css/style.css", "/js/app.js", "/img/logo.svg"} <= set(assets),
           f"GET /: assets referenced: {p.assets}")
    return server, route, value, assets


def cmd_basic(base):
    names = set()
    # 1. Page and every asset from one static container, with the cookie.
    server, route, value, assets = new_client_page(base)
    names.add(server)
    say(f"new client: page from {server}, cookie {COOKIE}={value}, {len(assets)} assets")
    for path in assets:
        r, sc = get(base + path, value)
        expect(r.status_code == 200, f"GET {path} -> {r.status_code}")
        expect(r.headers.get("X-Served-By") == server,
               f"GET {path}: X-Served-By={r.headers.get('X-Served-By')!r}, expected {server}")
        expect(sc == [], f"GET {path} with a valid cookie: unexpected Set-Cookie {sc}")
        expect(len(r.content) > 0, f"GET {path}: empty body")
    say(f"assets {assets}: all 200 from {server}, no Set-Cookie")
    for _ in range(3):
        r, sc = get(base + "/", value)
        expect(r.status_code == 200 and r.headers.get("X-Served-By") == server and not sc,
               f"GET / again: {r.status_code} {r.headers.get('X-Served-By')} {sc}")

    # 2. New clients are spread over both static containers.
    seen = []
    for _ in range(4):
        s, _, _, _ = new_client_page(base)
        seen.append(s)
    names.update(seen)
    expect(set(seen) == set(STATIC), f"4 new clients served by {seen}: expected both {STATIC}")
    say(f"4 new clients: {seen}")

    # 3. A cookie without a valid tag is not trusted: re-issued, still served.
    for forged in (server, f"{server}.AAAAAAAAAAA", "nosuchroute"):
        r, sc = get(base + "/", forged)
        expect(r.status_code == 200, f"GET / with cookie {forged!r} -> {r.status_code}")
        s = r.headers.get("X-Served-By")
        rt, _ = parse_cookie(sc, "GET / (forged cookie)")
        expect(rt == s and s in STATIC, f"forged cookie {forged!r}: re-issued {rt}, served by {s}")
    say("unsigned, wrongly signed and unknown cookies: re-issued, served")

    # 4. API: exact round robin between the two dynamic containers.
    served = []
    for i in range(10):
        r, sc = get(base + "/api/?count=2", value)
        expect(r.status_code == 200, f"GET /api/ #{i} -> {r.status_code}")
        s = r.headers.get("X-Served-By")
        body = r.json()
        expect(body.get("served_by") == s, f"/api/: body served_by {body.get('served_by')} != {s}")
        expect(len(body.get("records", [])) == 2, f"/api/: {body}")
        expect(not any(c.startswith(COOKIE + "=") for c in sc),
               f"/api/ (round robin) issued a cookie: {sc}")
        served.append(s)
    names.update(served)
    expect(set(served) == set(DYNAMIC), f"/api/ served by {served}: expected both {DYNAMIC}")
    expect(all(a != b for a, b in zip(served, served[1:])),
           f"/api/ does not alternate: {served}")
    say(f"API x10: {served}")

    # API prefix maps to the dynamic servers' root; their errors pass through.
    r, _ = get(base + "/api/healthz")
    expect(r.status_code == 200 and r.json().get("status") == "ok" and
           r.headers.get("X-Served-By") in DYNAMIC, f"/api/healthz: {r.status_code} {r.text[:200]}")
    r, _ = get(base + "/api/?count=abc")
    expect(r.status_code == 400 and "count" in r.json().get("error", "") and
           r.headers.get("X-Served-By") in DYNAMIC, f"/api/?count=abc: {r.status_code} {r.text[:200]}")
    # Static errors carry X-Served-By too.
    r, _ = get(base + "/no-such-page.html", value)
    expect(r.status_code == 404 and r.headers.get("X-Served-By") == server,
           f"/no-such-page.html: {r.status_code} from {r.headers.get('X-Served-By')}")
    say("/api/healthz 200, /api/?count=abc 400, static 404: all with X-Served-By")

    # The admin endpoints are answered by the proxy, and only to ADMIN_ALLOW
    # (127.0.0.1 inside the container): not to a client of the published port.
    for path in ("/sticky-route-status", "/balancer-manager"):
        r, _ = get(base + path)
        expect(r.status_code == 403 and "X-Served-By" not in r.headers,
               f"{path} from outside the container: {r.status_code} "
               f"(X-Served-By {r.headers.get('X-Served-By')}), expected 403 from the proxy")
    say("/sticky-route-status and /balancer-manager from the published port: 403")

    # 5. X-Served-By names compose services, nothing else.
    expect(names <= set(SERVICES), f"X-Served-By values {names} not all compose services")
    expect(names == set(SERVICES), f"saw {sorted(names)}, expected every service {SERVICES}")
    say(f"X-Served-By values: {sorted(names)}")


def cmd_pin(base, state_file):
    server, route, value, assets = new_client_page(base)
    with open(state_file, "w") as f:
        json.dump({"server": server, "cookie": value, "assets": assets}, f)
    say(f"client pinned to {server} ({COOKIE}={value})")
    print(server)


def cmd_failover(base, state_file):
    with open(state_file) as f:
        st = json.load(f)
    gone = st["server"]
    other = [s for s in STATIC if s != gone][0]
    cookie = st["cookie"]
    paths = ["/"] + st["assets"]
    issued = []
    errors = []
    n = 0
    t0 = time.monotonic()
    for rnd in range(4):
        for path in paths:
            n += 1
            try:
                r, sc = get(base + path, cookie)
            except requests.RequestException as e:
                errors.append(f"{path}: {e}")
                continue
            if r.status_code != 200:
                errors.append(f"{path}: {r.status_code}")
            s = r.headers.get("X-Served-By")
            if s != other:
                errors.append(f"{path}: served by {s}, expected {other}")
            if sc:
                rt, cookie = parse_cookie(sc, path)
                issued.append((n, rt))
    took = time.monotonic() - t0
    say(f"{n} requests with the cookie of {gone} after it stopped: {len(errors)} errors, "
        f"cookies issued {issued}, {took:.1f}s")
    expect(not errors, f"errors after {gone} stopped: {errors}")
    expect(len(issued) == 1 and issued[0] == (1, other),
           f"expected one new cookie naming {other} on the first request, got {issued}")
    st["server"], st["cookie"] = other, cookie
    with open(state_file, "w") as f:
        json.dump(st, f)


def cmd_stays(base, state_file):
    with open(state_file) as f:
        st = json.load(f)
    for path in ["/"] + st["assets"]:
        r, sc = get(base + path, st["cookie"])
        expect(r.status_code == 200 and r.headers.get("X-Served-By") == st["server"] and not sc,
               f"{path}: {r.status_code} from {r.headers.get('X-Served-By')} {sc}, "
               f"expected 200 from {st['server']} without Set-Cookie")
    say(f"client still served by {st['server']}, no new cookie")


def cmd_new_client_reaches(base, name, seconds):
    seen = []

    def reached():
        seen.append(new_client_page(base)[0])
        return seen[-1] == name
    try:
        wait_until(reached, float(seconds), 0.5, f"a new client reaching {name}")
    except TimeoutError:
        raise CheckFailed(f"no new client reached {name} within {seconds}s: {seen}") from None
    say(f"a new client reached {name} again after {len(seen)} new clients")


def cmd_api_spread(base, n):
    served = []
    for i in range(int(n)):
        r, _ = get(base + "/api/?count=1")
        expect(r.status_code == 200, f"GET /api/ #{i} -> {r.status_code}")
        served.append(r.headers.get("X-Served-By"))
    say(f"API x{n}: " + ", ".join(f"{s}={served.count(s)}" for s in sorted(set(served))))


def cmd_status_check(status_file, expect_file):
    """EXPECT: {"static": [routes], "dynamic": [routes]}; all up."""
    with open(status_file) as f:
        status = json.load(f)
    with open(expect_file) as f:
        want = json.load(f)
    got = {}
    for m in status["members"]:
        got.setdefault(m["balancer"], {})[m["route"]] = m
    for bal, routes in want.items():
        expect(sorted(got.get(bal, {})) == sorted(routes),
               f"balancer {bal}: members {sorted(got.get(bal, {}))}, expected {sorted(routes)}")
        down = [r for r, m in got[bal].items() if m["up"] != 1]
        expect(not down, f"balancer {bal}: members down: {down}")
    say("status: " + "; ".join(f"{b}: {sorted(r)}" for b, r in got.items()))


def main(argv):
    cmds = {
        "basic": (cmd_basic, 1), "pin": (cmd_pin, 2), "failover": (cmd_failover, 2),
        "stays": (cmd_stays, 2), "new-client-reaches": (cmd_new_client_reaches, 3),
        "api-spread": (cmd_api_spread, 2), "status-check": (cmd_status_check, 2),
    }
    if len(argv) < 2 or argv[1] not in cmds or len(argv) - 2 != cmds[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    global HTTPS
    HTTPS = argv[2].startswith("https:")
    try:
        cmds[argv[1]][0](*argv[2:])
    except CheckFailed as e:
        print(f"CHECK FAILED ({argv[1]}): {e}", file=sys.stderr)
        return 1
    except requests.RequestException as e:
        print(f"CHECK FAILED ({argv[1]}): request error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
