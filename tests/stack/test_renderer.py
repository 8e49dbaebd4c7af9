"""templates/render-proxy-conf.sh: good values render a config apache2 accepts,
bad ones are refused by name, nothing is ever half written."""
import os
import pathlib
import re
import shutil
import stat
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import PORT_BASE, RENDERER, listening, wait_until
from srtest import apache

GOOD = {
    "STATIC_APP": "127.0.0.1:8081=s1,127.0.0.1:8082=s2",
    "DYNAMIC_APP": "127.0.0.1:8083,127.0.0.1:8084",
}
SECRET = "correct-horse-battery-staple-42"


def render(tmp_path, env, *options, output="vhost.conf"):
    """Runs the renderer with exactly `env` (plus PATH) into tmp_path/output."""
    full_env = {"PATH": os.environ["PATH"], **env}
    return subprocess.run([str(RENDERER), *options, str(tmp_path / output)], env=full_env,
                          capture_output=True, text=True, timeout=30)


def render_main(tmp_path, env, module, *extra):
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    return render(tmp_path, env, "--main-conf", str(tmp_path / "httpd.conf"),
                  "--module", str(module), "--run-dir", str(tmp_path), "--log-dir", str(logs),
                  *extra)


def configtest(tmp_path):
    """srtest.apache.configtest of tmp_path/httpd.conf: (returncode, output)."""
    return apache.configtest(tmp_path / "httpd.conf")


def proxy_block(conf, name):
    m = re.search(rf'<Proxy "balancer://{name}">(.*?)</Proxy>', conf, re.S)
    assert m, conf
    return m.group(1)


def test_good_values_render_a_config_that_passes_apache_configtest(tmp_path, module_so):
    r = render_main(tmp_path, {**GOOD, "LISTEN_PORT": "8080"}, module_so)
    assert r.returncode == 0, r.stderr
    rc, out = configtest(tmp_path)
    assert rc == 0, out
    assert "Syntax OK" in out
    conf = (tmp_path / "vhost.conf").read_text()
    static = proxy_block(conf, "static")
    dynamic = proxy_block(conf, "dynamic")
    assert "ProxySet lbmethod=sticky" in static
    assert "ProxySet lbmethod=roundrobin" in dynamic
    assert 'BalancerMember "http://127.0.0.1:8081" route=s1 keepalive=On ttl=60' in static
    assert 'BalancerMember "http://127.0.0.1:8084" keepalive=On ttl=60' in dynamic
    assert "<VirtualHost *:8080>" in conf
    main = (tmp_path / "httpd.conf").read_text()
    assert f'LoadModule sticky_route_module   "{module_so}"' in main
    assert "Listen 127.0.0.1:8080" in main
    # No needless modules: no filters, no lbmethod_*, no mod_headers
    # (mod_env only for proxy-initial-not-pooled).
    loaded = re.findall(r"^LoadModule (\S+)", main, re.M)
    assert sorted(loaded) == sorted([
        "mpm_event_module", "authz_core_module", "authz_host_module", "env_module",
        "proxy_module", "proxy_http_module", "slotmem_shm_module", "proxy_balancer_module",
        "sticky_route_module"])
    assert "SetEnv proxy-initial-not-pooled 1" in conf


def test_defaults_and_routing_order(tmp_path):
    r = render(tmp_path, GOOD)
    assert r.returncode == 0, r.stderr
    conf = (tmp_path / "vhost.conf").read_text()
    assert "<VirtualHost *:80>" in conf
    assert "ServerName localhost" in conf
    passes = re.findall(r'^\s*ProxyPass\s+"([^"]+)"\s+"([^"]+)"', conf, re.M)
    assert passes == [("/balancer-manager", "!"), ("/sticky-route-status", "!"),
                      ("/api/", "balancer://dynamic/"), ("/", "balancer://static/")]
    for location, handler in (("/balancer-manager", "balancer-manager"),
                              ("/sticky-route-status", "sticky-route-status")):
        block = re.search(rf'<Location "{location}">(.*?)</Location>', conf, re.S).group(1)
        assert f"SetHandler {handler}" in block
        assert "Require ip 127.0.0.1" in block
    assert "StickyRouteSecret" not in conf.replace("# No StickyRouteSecret", "")


def test_event_mpm_is_sized_for_the_machine(tmp_path):
    r = render(tmp_path, GOOD)
    assert r.returncode == 0, r.stderr
    conf = (tmp_path / "vhost.conf").read_text()
    servers = max(2, os.cpu_count())
    assert re.search(rf"^\s*StartServers\s+{servers}$", conf, re.M)
    assert re.search(rf"^\s*MaxRequestWorkers\s+{servers * 64}$", conf, re.M)
    assert re.search(rf"^\s*MaxSpareThreads\s+{servers * 64}$", conf, re.M)


def test_every_option_is_applied(tmp_path, module_so):
    env = {"STATIC_APP_1": "static-a.example:80=a", "STATIC_APP_2": "[::1]:8082",
           "DYNAMIC_APP_1": "10.0.0.7:3000", "DYNAMIC_APP_2": "10.0.0.8:3000",
           "DYNAMIC_APP_10": "10.0.0.9:3000",
           "LISTEN_PORT": "8443", "SERVER_NAME": "www.example.org", "API_PREFIX": "/v1/data/",
           "ADMIN_ALLOW": "127.0.0.1,10.1.0.0/16,::1"}
    r = render_main(tmp_path, env, module_so, "--ports-conf", str(tmp_path / "ports.conf"))
    assert r.returncode == 0, r.stderr
    rc, out = configtest(tmp_path)
    assert rc == 0, out
    conf = (tmp_path / "vhost.conf").read_text()
    assert re.findall(r'BalancerMember "http://([^"]+)"', proxy_block(conf, "static")) == [
        "static-a.example:80", "[::1]:8082"]
    # Numbered members in numeric order (2 before 10).
    assert re.findall(r'BalancerMember "http://([^"]+)"', proxy_block(conf, "dynamic")) == [
        "10.0.0.7:3000", "10.0.0.8:3000", "10.0.0.9:3000"]
    assert "route=a " in proxy_block(conf, "static")
    assert "<VirtualHost *:8443>" in conf and "ServerName www.example.org" in conf
    assert 'ProxyPass        "/v1/data/" "balancer://dynamic/"' in conf
    assert conf.count("Require ip 127.0.0.1 10.1.0.0/16 ::1") == 2
    assert (tmp_path / "ports.conf").read_text().splitlines()[-1] == "Listen 8443"


BAD = [
    # (test id, environment, variable the message names, what of the value it shows)
    ("static-unset", {"STATIC_APP": None}, "STATIC_APP", "not set"),
    ("empty-list", {"STATIC_APP": ""}, "STATIC_APP", "empty"),
    ("stray-comma", {"DYNAMIC_APP": "127.0.0.1:8083,"}, "DYNAMIC_APP", "127.0.0.1:8083,"),
    ("malformed-host", {"STATIC_APP": "bad_host!:8081"}, "STATIC_APP", "bad_host!"),
    ("host-bad-ipv4", {"STATIC_APP": "300.1.1.1:8081"}, "STATIC_APP", "300.1.1.1"),
    ("missing-port", {"STATIC_APP": "127.0.0.1"}, "STATIC_APP", "127.0.0.1"),
    ("port-out-of-range", {"STATIC_APP": "127.0.0.1:70000"}, "STATIC_APP", "70000"),
    ("port-zero", {"DYNAMIC_APP": "127.0.0.1:0"}, "DYNAMIC_APP", "127.0.0.1:0"),
    ("space", {"STATIC_APP": "127.0.0.1:8081, 127.0.0.1:8082"}, "STATIC_APP", "8082"),
    ("quote", {"STATIC_APP": '127.0.0.1:8081"'}, "STATIC_APP", "'127.0.0.1:8081\"'"),
    ("newline-injection", {"STATIC_APP": "127.0.0.1:8081\nInclude /etc/shadow"},
     "STATIC_APP", "Include"),
    ("route-injection", {"STATIC_APP": "127.0.0.1:8081=s1 status=+D"}, "STATIC_APP", "status=+D"),
    ("angle-bracket", {"DYNAMIC_APP": "127.0.0.1:8083=</Proxy>"}, "DYNAMIC_APP", "/Proxy"),
    ("duplicate-member", {"STATIC_APP": "127.0.0.1:8081,127.0.0.1:8081"}, "STATIC_APP",
     "127.0.0.1:8081"),
    ("duplicate-route", {"STATIC_APP": "127.0.0.1:8081=s1,127.0.0.1:8082=s1"}, "STATIC_APP", "s1"),
    ("numbered-malformed", {"STATIC_APP": None, "STATIC_APP_1": "127.0.0.1:8081",
                            "STATIC_APP_2": "127.0.0.1:80;x"}, "STATIC_APP_2", "80;x"),
    ("listen-port", {"LISTEN_PORT": "80 80"}, "LISTEN_PORT", "'80 80'"),
    ("listen-port-range", {"LISTEN_PORT": "65536"}, "LISTEN_PORT", "65536"),
    ("server-name", {"SERVER_NAME": 'example.org"\nProxyRequests On'}, "SERVER_NAME",
     "ProxyRequests"),
    ("api-prefix-no-slash", {"API_PREFIX": "api"}, "API_PREFIX", "api"),
    ("api-prefix-root", {"API_PREFIX": "/"}, "API_PREFIX", "/"),
    ("api-prefix-quote", {"API_PREFIX": '/api"/'}, "API_PREFIX", "api"),
    ("api-prefix-dotdot", {"API_PREFIX": "/a/../"}, "API_PREFIX", "/a/../"),
    ("admin-allow", {"ADMIN_ALLOW": "127.0.0.1 all"}, "ADMIN_ALLOW", "all"),
    ("admin-allow-cidr", {"ADMIN_ALLOW": "10.0.0.0/33"}, "ADMIN_ALLOW", "10.0.0.0/33"),
    ("admin-allow-empty", {"ADMIN_ALLOW": ""}, "ADMIN_ALLOW", "ADMIN_ALLOW="),
    ("secret-file-missing", {"STICKY_ROUTE_SECRET_FILE": "/nonexistent/secret"},
     "STICKY_ROUTE_SECRET_FILE", "/nonexistent/secret"),
    ("secret-file-relative", {"STICKY_ROUTE_SECRET_FILE": "secret.txt"},
     "STICKY_ROUTE_SECRET_FILE", "secret.txt"),
    ("secret-and-file", {"STICKY_ROUTE_SECRET": SECRET, "STICKY_ROUTE_SECRET_FILE": "/etc/hostname"},
     "STICKY_ROUTE_SECRET_FILE", "both"),
    ("max-idle-zero", {"STICKY_MAX_IDLE": "0"}, "STICKY_MAX_IDLE", "'0'"),
    ("max-life-text", {"STICKY_MAX_LIFE": "1h"}, "STICKY_MAX_LIFE", "1h"),
    ("elect-unknown", {"STICKY_ELECT": "random"}, "STICKY_ELECT", "random"),
    ("slow-start-injection", {"STICKY_SLOW_START": "5\nProxyRequests On"}, "STICKY_SLOW_START",
     "ProxyRequests"),
    ("rebalance-factor-below-1", {"STICKY_REBALANCE": "60 0.9"}, "STICKY_REBALANCE", "0.9"),
    ("rebalance-no-idle", {"STICKY_REBALANCE": "1.5"}, "STICKY_REBALANCE", "1.5"),
    ("discover-interval", {"DISCOVER_INTERVAL": "0"}, "DISCOVER_INTERVAL", "'0'"),
    ("discover-max", {"DISCOVER_MAX": "99999"}, "DISCOVER_MAX", "99999"),
    ("discover-hold-negative", {"DISCOVER_HOLD": "-1"}, "DISCOVER_HOLD", "-1"),
    ("discover-hold-too-long", {"DISCOVER_HOLD": "86401"}, "DISCOVER_HOLD", "86401"),
    ("discover-hold-text", {"DISCOVER_HOLD": "10s"}, "DISCOVER_HOLD", "10s"),
    ("discover-wait-negative", {"DISCOVER_WAIT": "-1"}, "DISCOVER_WAIT", "-1"),
    ("discover-wait-too-long", {"DISCOVER_WAIT": "3601"}, "DISCOVER_WAIT", "3601"),
    ("discover-wait-text", {"DISCOVER_WAIT": "10s"}, "DISCOVER_WAIT", "10s"),
    ("two-service-names", {"STATIC_APP": "web1:80,web2:80"}, "STATIC_APP", "web2:80"),
]


@pytest.mark.parametrize("env,variable,shown", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_value_is_refused_by_name_and_nothing_is_written(tmp_path, env, variable, shown):
    full = {**GOOD, **env}
    full = {k: v for k, v in full.items() if v is not None}
    r = render(tmp_path, full)
    assert r.returncode != 0
    assert variable in r.stderr, r.stderr
    assert shown in r.stderr, r.stderr
    assert "nothing written" in r.stderr
    assert r.stdout == ""
    assert list(tmp_path.iterdir()) == [], "the renderer wrote something"


@pytest.mark.parametrize("secret", ["short-secret", "sixteen-bytes-ok\nLogLevel debug"],
                         ids=["too-short", "newline"])
def test_bad_secret_is_refused_without_showing_it(tmp_path, secret):
    r = render(tmp_path, {**GOOD, "STICKY_ROUTE_SECRET": secret})
    assert r.returncode != 0
    assert "STICKY_ROUTE_SECRET" in r.stderr
    assert "value not shown" in r.stderr
    assert secret.split("\n")[0] not in r.stderr + r.stdout
    assert list(tmp_path.iterdir()) == []


def test_secret_goes_to_a_private_file_next_to_the_config(tmp_path, module_so):
    r = render_main(tmp_path, {**GOOD, "STICKY_ROUTE_SECRET": SECRET}, module_so)
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout + r.stderr
    secret_file = tmp_path / "vhost.conf.secret"
    assert secret_file.read_text() == SECRET
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    conf = (tmp_path / "vhost.conf").read_text()
    assert SECRET not in conf
    assert f'StickyRouteSecret "file:{secret_file}"' in conf
    rc, out = configtest(tmp_path)
    assert rc == 0, out
    assert SECRET not in out
    # Rendered again without a secret: the old secret file goes away.
    r = render_main(tmp_path, GOOD, module_so)
    assert r.returncode == 0, r.stderr
    assert not secret_file.exists()


def test_secret_file_is_referenced_not_copied(tmp_path, module_so):
    given = tmp_path / "given.secret"
    given.write_text(SECRET + "\n")
    given.chmod(0o600)
    r = render_main(tmp_path, {**GOOD, "STICKY_ROUTE_SECRET_FILE": str(given)}, module_so)
    assert r.returncode == 0, r.stderr
    conf = (tmp_path / "vhost.conf").read_text()
    assert f'StickyRouteSecret "file:{given}"' in conf
    assert not (tmp_path / "vhost.conf.secret").exists()
    rc, out = configtest(tmp_path)
    assert rc == 0, out


def test_failure_leaves_an_existing_config_intact(tmp_path):
    target = tmp_path / "vhost.conf"
    target.write_text("# the config that runs now\n")
    before = target.stat()
    r = render(tmp_path, {**GOOD, "STATIC_APP": "127.0.0.1:99999"})
    assert r.returncode != 0
    assert target.read_text() == "# the config that runs now\n"
    assert target.stat().st_ino == before.st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vhost.conf"]


def test_success_replaces_the_config_by_rename(tmp_path):
    target = tmp_path / "vhost.conf"
    target.write_text("# old\n")
    old_inode = target.stat().st_ino
    keep_open = target.open()          # a reader of the old file keeps the old content
    try:
        r = render(tmp_path, GOOD)
        assert r.returncode == 0, r.stderr
        assert target.stat().st_ino != old_inode, "written in place, not renamed"
        assert keep_open.read() == "# old\n"
    finally:
        keep_open.close()
    assert "balancer://static" in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vhost.conf"], "temporary file left"


def test_missing_output_directory_is_an_error(tmp_path):
    r = render(tmp_path, GOOD, output="no-such-dir/vhost.conf")
    assert r.returncode != 0
    assert "no-such-dir" in r.stderr and "does not exist" in r.stderr


def test_admin_allow_restricts_the_admin_endpoints(tmp_path, module_so):
    """A proxy alone (no backends needed): admin pages from 127.0.0.1 only when allowed."""
    port = PORT_BASE + 30
    assert not listening(port), f"port {port} busy"
    for allow, expected in (("192.0.2.1", 403), ("127.0.0.1", 200)):
        r = render_main(tmp_path, {**GOOD, "LISTEN_PORT": str(port), "ADMIN_ALLOW": allow},
                        module_so)
        assert r.returncode == 0, r.stderr
        proc = apache.spawn(tmp_path / "httpd.conf", tmp_path / f"start-{allow}.out")
        try:
            wait_until(lambda: listening(port), 10, what="the proxy listening on %d" % port,
                       detail=lambda: (tmp_path / f"start-{allow}.out").read_text())
            for path in ("balancer-manager", "sticky-route-status"):
                got = requests.get(f"http://127.0.0.1:{port}/{path}", timeout=5)
                assert got.status_code == expected, (allow, path, got.status_code)
        finally:
            proc.terminate()
            proc.wait(15)
        assert wait_until(lambda: not listening(port), 10)
        time.sleep(0.1)


def test_balancing_variables_become_directives_apache_accepts(tmp_path, module_so):
    env = {**GOOD, "STICKY_MAX_IDLE": "1800", "STICKY_MAX_LIFE": "28800",
           "STICKY_ELECT": "leastbusy", "STICKY_SLOW_START": "30",
           "STICKY_REBALANCE": "60 1.5"}
    r = render_main(tmp_path, env, module_so)
    assert r.returncode == 0, r.stderr
    static = proxy_block((tmp_path / "vhost.conf").read_text(), "static")
    assert "StickyRouteCookie ROUTEID MaxIdle=1800 MaxLife=28800" in static
    assert "StickyRouteElect leastbusy" in static
    assert "StickyRouteSlowStart 30" in static
    assert "StickyRouteRebalance 60 1.5" in static
    dynamic = proxy_block((tmp_path / "vhost.conf").read_text(), "dynamic")
    assert "StickyRoute" not in dynamic
    rc, out = configtest(tmp_path)
    assert rc == 0, out


def test_empty_balancing_variables_are_the_defaults(tmp_path):
    env = {**GOOD, "STICKY_MAX_IDLE": "", "STICKY_ELECT": "", "STICKY_REBALANCE": ""}
    r = render(tmp_path, env)
    assert r.returncode == 0, r.stderr
    assert "StickyRoute" not in proxy_block((tmp_path / "vhost.conf").read_text(), "static")


def test_a_service_name_without_route_is_discovered(tmp_path, module_so):
    env = {**GOOD, "STATIC_APP": "static.example:80,127.0.0.1:8085=fixed",
           "DYNAMIC_APP": "api.example:3000=a1,127.0.0.1:8084", "DISCOVER_INTERVAL": "3",
           "DISCOVER_MAX": "8", "DISCOVER_HOLD": "4"}
    r = render_main(tmp_path, env, module_so)
    assert r.returncode == 0, r.stderr
    conf = (tmp_path / "vhost.conf").read_text()
    static = proxy_block(conf, "static")
    assert ('StickyRouteDiscover "http://static.example:80" interval=3 max=8 hold=4 '
            'keepalive=On ttl=60 connectiontimeout=3 retry=5') in static
    assert 'BalancerMember "http://127.0.0.1:8085" route=fixed' in static
    # a name with a route stays a fixed member
    dynamic = proxy_block(conf, "dynamic")
    assert "StickyRouteDiscover" not in dynamic
    assert 'BalancerMember "http://api.example:3000" route=a1' in dynamic
    rc, out = configtest(tmp_path)
    assert rc == 0, out


def test_an_srv_name_is_discovered_from_its_records(tmp_path, module_so):
    env = {**GOOD, "STATIC_APP": "_http._tcp.static.service.consul",
           "DYNAMIC_APP": "127.0.0.1:8084", "DISCOVER_INTERVAL": "ttl"}
    r = render_main(tmp_path, env, module_so)
    assert r.returncode == 0, r.stderr
    static = proxy_block((tmp_path / "vhost.conf").read_text(), "static")
    assert 'StickyRouteDiscover "http://_http._tcp.static.service.consul" interval=ttl ' in static
    rc, out = configtest(tmp_path)
    assert rc == 0, out


@pytest.mark.parametrize("value,what", [
    ("_http._tcp.static:80", "malformed"), ("_http.static", "malformed SRV name"),
    ("_http._tcp.static=s1", "with a route")], ids=["port", "no-proto", "route"])
def test_a_bad_srv_member_is_refused(tmp_path, module_so, value, what):
    env = {**GOOD, "STATIC_APP": value, "DYNAMIC_APP": "127.0.0.1:8084"}
    r = render_main(tmp_path, env, module_so)
    assert r.returncode != 0
    assert "STATIC_APP" in r.stderr and what in r.stderr, r.stderr


@pytest.mark.parametrize("wait,line", [(None, "StickyRouteWait 10"), ("", "StickyRouteWait 10"),
                                       ("25", "StickyRouteWait 25"), ("0", None)],
                         ids=["default", "empty", "25", "off"])
def test_a_discovered_pool_waits_for_its_first_member(tmp_path, module_so, wait, line):
    env = {**GOOD, "STATIC_APP": "static.example:80",
           "DYNAMIC_APP": "api.example:3000=a1,127.0.0.1:8084"}
    if wait is not None:
        env["DISCOVER_WAIT"] = wait
    r = render_main(tmp_path, env, module_so)
    assert r.returncode == 0, r.stderr
    conf = (tmp_path / "vhost.conf").read_text()
    static = proxy_block(conf, "static")
    waits = [l.strip() for l in static.splitlines() if "StickyRouteWait" in l]
    assert waits == ([line] if line else []), static
    # a pool of fixed members does not wait
    assert "StickyRouteWait" not in proxy_block(conf, "dynamic")
    rc, out = configtest(tmp_path)
    assert rc == 0, out


# ---- HTTPS at the front: TLS=files|acme ----------------------------------------

def openssl(*args, cwd=None):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30, cwd=cwd)


def make_cert(d, name, cn="shop.test", days=2):
    """A self-signed EC certificate and its key (mode 0600) in directory d."""
    crt, key = d / f"{name}.crt", d / f"{name}.key"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", str(days), "-subj", f"/CN={cn}", "-addext",
            f"subjectAltName=DNS:{cn}", "-keyout", str(key), "-out", str(crt))
    key.chmod(0o600)
    return crt, key


def make_expired_cert(d):
    """A certificate valid only on 2020-01-01 (openssl ca sets past dates)."""
    (d / "index.txt").write_text("")
    (d / "serial").write_text("01\n")
    (d / "ca.cnf").write_text(
        f"[ca]\ndefault_ca = d\n[d]\ndatabase = {d}/index.txt\nnew_certs_dir = {d}\n"
        f"serial = {d}/serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n")
    key, crt = d / "expired.key", d / "expired.crt"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", str(key))
    key.chmod(0o600)
    openssl("req", "-new", "-key", str(key), "-subj", "/CN=shop.test", "-out", str(d / "r.csr"))
    openssl("ca", "-batch", "-notext", "-config", str(d / "ca.cnf"), "-selfsign", "-keyfile",
            str(key), "-in", str(d / "r.csr"), "-startdate", "20200101000000Z",
            "-enddate", "20200102000000Z", "-out", str(crt))
    return crt, key


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """Certificates outside the render directory (its emptiness is checked)."""
    d = tmp_path_factory.mktemp("tls-files")
    good_crt, good_key = make_cert(d, "good")
    _, other_key = make_cert(d, "other")
    exp_crt, exp_key = make_expired_cert(d)
    return {"dir": d, "crt": good_crt, "key": good_key, "other_key": other_key,
            "expired_crt": exp_crt, "expired_key": exp_key}


def tls_env(files, **extra):
    return {**GOOD, "SERVER_NAME": "shop.test", "LISTEN_PORT": "8080", "TLS": "files",
            "LISTEN_TLS_PORT": "8443", "TLS_CERT_FILE": str(files["crt"]),
            "TLS_KEY_FILE": str(files["key"]), **extra}


def vhost_block(conf, port):
    m = re.search(rf"<VirtualHost \*:{port}>(.*?)</VirtualHost>", conf, re.S)
    assert m, conf
    return m.group(1)


def test_tls_files_renders_https_h2_and_a_redirect_that_pass_configtest(tmp_path, module_so,
                                                                         tls_files):
    r = render_main(tmp_path, tls_env(tls_files, HSTS_MAX_AGE="31536000",
                                      SERVER_ALIASES="www.shop.test"), module_so,
                    "--ports-conf", str(tmp_path / "ports.conf"))
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr, r.stderr
    rc, out = configtest(tmp_path)
    assert rc == 0, out
    conf = (tmp_path / "vhost.conf").read_text()
    site = vhost_block(conf, 8443)
    assert "SSLEngine on" in site
    assert f'SSLCertificateFile "{tls_files["crt"]}"' in site
    assert f'SSLCertificateKeyFile "{tls_files["key"]}"' in site
    assert re.search(r"^\s*Protocols h2 http/1.1$", site, re.M)
    assert 'Header always set Strict-Transport-Security "max-age=31536000"' in site
    assert "ServerAlias www.shop.test" in site
    assert 'ProxyPass        "/" "balancer://static/"' in site
    # A self-signed certificate names no OCSP responder: no stapling to try.
    assert not re.search(r"^\s*SSLUseStapling", site, re.M)
    assert re.search(r"^SSLProtocol -all \+TLSv1.2 \+TLSv1.3$", conf, re.M)
    plain = vhost_block(conf, 8080)
    assert "balancer://" not in plain
    assert 'RewriteCond "%{REQUEST_URI}" "!^/\\.well-known/acme-challenge/"' in plain
    assert 'RewriteRule "^" "https://%{SERVER_NAME}:8443%{REQUEST_URI}" [R=301,L]' in plain
    main = (tmp_path / "httpd.conf").read_text()
    assert "Listen 127.0.0.1:8080\nListen 127.0.0.1:8443 https\n" in main
    assert (tmp_path / "ports.conf").read_text().splitlines()[-2:] == [
        "Listen 8080", "Listen 8443 https"]
    assert "MDomain" not in conf


def test_tls_port_443_redirects_without_a_port(tmp_path, tls_files):
    r = render(tmp_path, tls_env(tls_files, LISTEN_PORT="80", LISTEN_TLS_PORT="443"))
    assert r.returncode == 0, r.stderr
    conf = (tmp_path / "vhost.conf").read_text()
    assert '"https://%{SERVER_NAME}%{REQUEST_URI}"' in vhost_block(conf, 80)
    assert "Strict-Transport-Security" not in conf
    # a container's 443 published on 8443: the redirect names what clients use
    r = render(tmp_path, tls_env(tls_files, LISTEN_PORT="80", LISTEN_TLS_PORT="443",
                                 TLS_PUBLIC_PORT="8443"))
    assert r.returncode == 0, r.stderr
    conf = (tmp_path / "vhost.conf").read_text()
    assert '"https://%{SERVER_NAME}:8443%{REQUEST_URI}"' in vhost_block(conf, 80)
    assert "<VirtualHost *:443>" in conf


def test_tls_off_is_the_default_and_renders_no_tls(tmp_path):
    for env in (GOOD, {**GOOD, "TLS": ""}, {**GOOD, "TLS": "off", "HSTS_MAX_AGE": "60"}):
        r = render(tmp_path, env)
        assert r.returncode == 0, r.stderr
        conf = (tmp_path / "vhost.conf").read_text()
        assert "SSLEngine" not in conf and "mod_ssl" not in conf and "Strict-Transport" not in conf
        assert conf.count("<VirtualHost") == 1


def test_tls_acme_renders_mod_md_that_passes_configtest(tmp_path, module_so):
    store = tmp_path / "md"
    env = {**GOOD, "TLS": "acme", "SERVER_NAME": "shop.example.org",
           "SERVER_ALIASES": "www.shop.example.org", "LISTEN_PORT": "8080",
           "LISTEN_TLS_PORT": "8443", "ACME_EMAIL": "ops@example.org",
           "ACME_STORE_DIR": str(store), "ADMIN_ALLOW": "127.0.0.1,10.0.0.0/8"}
    r = render_main(tmp_path, env, module_so)
    assert r.returncode == 0, r.stderr
    rc, out = configtest(tmp_path)
    assert rc == 0, out
    conf = (tmp_path / "vhost.conf").read_text()
    md = dict(re.findall(r"^(MD\w+) (.*)$", conf, re.M))
    assert md == {
        "MDStoreDir": f'"{store}"',
        "MDCertificateAuthority": '"https://acme-v02.api.letsencrypt.org/directory"',
        "MDCertificateAgreement": "accepted",
        "MDContactEmail": "ops@example.org",
        "MDPortMap": "http:8080 https:8443",
        "MDStapling": "on",
        "MDCertificateStatus": "off",
        "MDomain": "shop.example.org www.shop.example.org",
    }
    site = vhost_block(conf, 8443)
    assert re.search(r"^\s*Protocols h2 http/1.1 acme-tls/1$", site, re.M)
    assert "SSLCertificateFile" not in site
    # mod_md's status only from ADMIN_ALLOW, never proxied; challenges never proxied.
    block = re.search(r'<Location "/md-status">(.*?)</Location>', site, re.S).group(1)
    assert "SetHandler md-status" in block and "Require ip 127.0.0.1 10.0.0.0/8" in block
    passes = re.findall(r'^\s*ProxyPass\s+"([^"]+)"\s+"([^"]+)"', site, re.M)
    assert passes[:4] == [("/balancer-manager", "!"), ("/sticky-route-status", "!"),
                          ("/md-status", "!"), ("/.well-known/acme-challenge/", "!")]
    main = (tmp_path / "httpd.conf").read_text()
    assert "Listen 127.0.0.1:8443 https" in main


def test_tls_acme_options_become_md_directives(tmp_path, tls_files):
    # the CA file where httpd's workers (www-data) can read it
    public = pathlib.Path(tempfile.mkdtemp(prefix="sticky-route-renderer-"))
    public.chmod(0o755)
    ca = public / "ca.pem"
    ca.write_bytes(tls_files["crt"].read_bytes())
    ca.chmod(0o644)
    env = {**GOOD, "TLS": "acme", "SERVER_NAME": "shop.test", "ACME_EMAIL": "a@shop.test",
           "ACME_DIRECTORY": "https://127.0.0.1:14000/dir", "ACME_CA_FILE": str(ca),
           "ACME_STORE_DIR": str(tmp_path), "ACME_CHALLENGES": "tls-alpn-01",
           "ACME_RENEW_WINDOW": "50%"}
    try:
        r = render(tmp_path, env)
    finally:
        shutil.rmtree(public)
    assert r.returncode == 0, r.stderr
    conf = (tmp_path / "vhost.conf").read_text()
    for line in ('MDCertificateAuthority "https://127.0.0.1:14000/dir"',
                 f'MDCACertificateFile "{ca}"', "MDCAChallenges tls-alpn-01",
                 "MDRenewWindow 50%", "MDPortMap http:80 https:443"):
        assert f"\n{line}\n" in conf
    assert "MDMessageCmd" not in conf       # only with ACME_EVENT_CMD
    # ACME_EVENT_CMD: mod_md's events to a command (the image's watcher)
    r = render(tmp_path, {**env, "ACME_CA_FILE": "", "ACME_EVENT_CMD": "/bin/true"})
    assert r.returncode == 0, r.stderr
    assert '\nMDMessageCmd "/bin/true"\n' in (tmp_path / "vhost.conf").read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="checked when the renderer runs as root")
def test_acme_ca_file_the_workers_cannot_read_is_refused(tmp_path, tls_files):
    # pytest's tmp_path is private to root: www-data cannot enter it
    ca = tmp_path / "ca.pem"
    ca.write_bytes(tls_files["crt"].read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    env = {**GOOD, "TLS": "acme", "SERVER_NAME": "shop.test", "ACME_EMAIL": "a@shop.test",
           "ACME_STORE_DIR": str(out), "ACME_CA_FILE": str(ca)}
    r = render(out, env)
    assert r.returncode == 2 and "ACME_CA_FILE" in r.stderr and "www-data" in r.stderr, r.stderr


def bad_tls_cases(files):
    d = files["dir"]
    return [
        ("tls-unknown", {"TLS": "yes"}, "TLS", "'yes'"),
        ("tls-port-same", {"LISTEN_TLS_PORT": "8080"}, "LISTEN_TLS_PORT", "same port"),
        ("tls-port-range", {"LISTEN_TLS_PORT": "70000"}, "LISTEN_TLS_PORT", "70000"),
        ("tls-public-port", {"TLS_PUBLIC_PORT": "x443"}, "TLS_PUBLIC_PORT", "x443"),
        ("hsts-text", {"HSTS_MAX_AGE": "1y"}, "HSTS_MAX_AGE", "1y"),
        ("hsts-too-long", {"HSTS_MAX_AGE": "63072001"}, "HSTS_MAX_AGE", "63072001"),
        ("cert-unset", {"TLS_CERT_FILE": None}, "TLS_CERT_FILE", "needs"),
        ("key-unset", {"TLS_KEY_FILE": None}, "TLS_KEY_FILE", "needs"),
        ("cert-missing", {"TLS_CERT_FILE": str(d / "nope.crt")}, "TLS_CERT_FILE",
         "no such file"),
        ("key-missing", {"TLS_KEY_FILE": str(d / "nope.key")}, "TLS_KEY_FILE", "no such file"),
        ("cert-relative", {"TLS_CERT_FILE": "good.crt"}, "TLS_CERT_FILE", "absolute path"),
        ("cert-directory", {"TLS_CERT_FILE": str(d)}, "TLS_CERT_FILE", "not a regular file"),
        ("cert-not-pem", {"TLS_CERT_FILE": str(d / "index.txt")}, "TLS_CERT_FILE",
         "not a PEM certificate"),
        ("key-not-pem", {"TLS_KEY_FILE": str(d / "serial")}, "TLS_KEY_FILE",
         "not an unencrypted PEM private key"),
        ("wrong-key", {"TLS_KEY_FILE": str(files["other_key"])}, "TLS_KEY_FILE",
         "not the key of the certificate"),
        ("expired", {"TLS_CERT_FILE": str(files["expired_crt"]),
                     "TLS_KEY_FILE": str(files["expired_key"])}, "TLS_CERT_FILE",
         "expired on Jan  2 00:00:00 2020 GMT"),
        ("acme-vars-with-files", {"ACME_EMAIL": "a@shop.test"}, "ACME_EMAIL", "TLS=acme"),
        ("acme-no-email", {"TLS": "acme", "TLS_CERT_FILE": None, "TLS_KEY_FILE": None},
         "ACME_EMAIL", "needs"),
        ("acme-with-files", {"TLS": "acme", "ACME_EMAIL": "a@shop.test"}, "TLS_CERT_FILE",
         "mod_md manages"),
        ("acme-ip-name", {"TLS": "acme", "TLS_CERT_FILE": None, "TLS_KEY_FILE": None,
                          "ACME_EMAIL": "a@shop.test", "SERVER_NAME": "127.0.0.1"},
         "SERVER_NAME", "DNS name"),
        ("acme-bad-email", {"TLS": "acme", "TLS_CERT_FILE": None, "TLS_KEY_FILE": None,
                            "ACME_EMAIL": "ops at example"}, "ACME_EMAIL", "ops at example"),
        ("acme-http-directory", {"TLS": "acme", "TLS_CERT_FILE": None, "TLS_KEY_FILE": None,
                                 "ACME_EMAIL": "a@shop.test",
                                 "ACME_DIRECTORY": "http://ca.example/dir"},
         "ACME_DIRECTORY", "http://ca.example/dir"),
        ("acme-challenge", {"TLS": "acme", "TLS_CERT_FILE": None, "TLS_KEY_FILE": None,
                            "ACME_EMAIL": "a@shop.test", "ACME_CHALLENGES": "dns-01"},
         "ACME_CHALLENGES", "dns-01"),
        ("acme-store", {"TLS": "acme", "TLS_CERT_FILE": None, "TLS_KEY_FILE": None,
                        "ACME_EMAIL": "a@shop.test", "ACME_STORE_DIR": "/nonexistent/x/md"},
         "ACME_STORE_DIR", "/nonexistent/x/md"),
        ("acme-window", {"TLS": "acme", "TLS_CERT_FILE": None, "TLS_KEY_FILE": None,
                         "ACME_EMAIL": "a@shop.test", "ACME_RENEW_WINDOW": "100%"},
         "ACME_RENEW_WINDOW", "100%"),
        ("acme-event-relative", {"TLS": "acme", "TLS_CERT_FILE": None, "TLS_KEY_FILE": None,
                                 "ACME_EMAIL": "a@shop.test", "ACME_EVENT_CMD": "bin/event"},
         "ACME_EVENT_CMD", "absolute path"),
        ("acme-event-missing", {"TLS": "acme", "TLS_CERT_FILE": None, "TLS_KEY_FILE": None,
                                "ACME_EMAIL": "a@shop.test",
                                "ACME_EVENT_CMD": str(d / "no-such-command")},
         "ACME_EVENT_CMD", "not an executable file"),
        ("acme-event-not-executable", {"TLS": "acme", "TLS_CERT_FILE": None,
                                       "TLS_KEY_FILE": None, "ACME_EMAIL": "a@shop.test",
                                       "ACME_EVENT_CMD": str(d / "index.txt")},
         "ACME_EVENT_CMD", "not an executable file"),
        ("acme-event-with-files", {"ACME_EVENT_CMD": "/bin/true"}, "ACME_EVENT_CMD", "TLS=acme"),
        ("alias-bad", {"SERVER_ALIASES": "www.shop.test other"}, "SERVER_ALIASES", "other"),
    ]


BAD_TLS_IDS = [c[0] for c in bad_tls_cases({"dir": pathlib.Path("/x"), "other_key": "",
                                             "expired_crt": "", "expired_key": ""})]


@pytest.mark.parametrize("case", BAD_TLS_IDS)
def test_bad_tls_value_is_refused_by_name_and_nothing_is_written(tmp_path, tls_files, case):
    _, env, variable, shown = next(c for c in bad_tls_cases(tls_files) if c[0] == case)
    full = {k: v for k, v in tls_env(tls_files, **env).items() if v is not None}
    r = render(tmp_path, full)
    assert r.returncode != 0
    assert variable in r.stderr, r.stderr
    assert shown in r.stderr, r.stderr
    assert "nothing written" in r.stderr
    assert list(tmp_path.iterdir()) == [], "the renderer wrote something"
    key_text = tls_files["key"].read_text() + tls_files["other_key"].read_text()
    for line in key_text.splitlines():
        if "-----" not in line:
            assert line not in r.stderr, "a private key reached the message"


def test_unreadable_and_group_writable_key_are_refused(tmp_path, tls_files):
    d = tls_files["dir"]
    for mode, shown in ((0o000, "not readable (mode 0000"), (0o620, "writable by group")):
        key = d / f"key-{mode:o}.key"
        key.write_bytes(tls_files["key"].read_bytes())
        key.chmod(mode)
        r = render(tmp_path, tls_env(tls_files, TLS_KEY_FILE=str(key)))
        assert r.returncode == 2 and "TLS_KEY_FILE" in r.stderr and shown in r.stderr, r.stderr
        assert list(tmp_path.iterdir()) == []


def test_world_readable_key_and_foreign_name_are_warnings(tmp_path, tls_files):
    key = tls_files["dir"] / "world.key"
    key.write_bytes(tls_files["key"].read_bytes())
    key.chmod(0o644)
    r = render(tmp_path, tls_env(tls_files, TLS_KEY_FILE=str(key), SERVER_NAME="other.test"))
    assert r.returncode == 0, r.stderr
    assert "warning: TLS_KEY_FILE" in r.stderr and "readable by every user" in r.stderr
    assert "warning: TLS_CERT_FILE" in r.stderr and "does not name SERVER_NAME='other.test'" \
        in r.stderr


def test_samesite_none_without_secure_is_refused_at_configtest(tmp_path, module_so):
    r = render_main(tmp_path, {**GOOD, "LISTEN_PORT": "8080"}, module_so)
    assert r.returncode == 0, r.stderr
    vhost = tmp_path / "vhost.conf"
    conf = vhost.read_text()
    for attrs, ok in (("SameSite=None", False), ("SameSite=None Secure", True)):
        vhost.write_text(conf.replace("        ProxySet lbmethod=sticky\n",
                                      f"        ProxySet lbmethod=sticky\n"
                                      f"        StickyRouteCookie ROUTEID {attrs}\n"))
        rc, out = configtest(tmp_path)
        if ok:
            assert rc == 0, out
        else:
            assert rc != 0
            assert "StickyRouteCookie" in out and "SameSite=None requires Secure" in out
