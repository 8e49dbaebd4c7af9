"""`Secure` is added to the cookie on HTTPS requests (mod_ssl, self-signed
certificate made with openssl), and only there."""

import pytest

from harness import SET_COOKIE_RE, balancer, free_port, get, get_https, self_signed_certificate

ROUTES = {"s1": "alpha", "s2": "bravo"}


@pytest.fixture(scope="module")
def certificate(run_dir):
    return self_signed_certificate(run_dir / "tls", "127.0.0.1")


def test_secure_is_added_on_https_only(backends, make_proxy, certificate):
    crt, key = certificate
    tls_port = free_port()
    members = [(backends[n], r) for r, n in ROUTES.items()]
    body = (
        "Listen 127.0.0.1:%d https\n" % tls_port
        + "<VirtualHost 127.0.0.1:@PORT@>\n" + balancer("plain", members) + "</VirtualHost>\n"
        + "<VirtualHost 127.0.0.1:%d>\n" % tls_port
        + "SSLEngine on\nSSLCertificateFile %s\nSSLCertificateKeyFile %s\n" % (crt, key)
        + balancer("tls", members) + "</VirtualHost>\n"
    )
    p = make_proxy(body, extra_modules=["socache_shmcb", "ssl"])

    r = get_https(tls_port)
    assert r.status == 200 and r.sticky_status == "new", r
    assert len(r.set_cookies) == 1, r
    parts = [x.strip() for x in r.set_cookies[0].split(";")]
    assert parts[0] == "ROUTEID=%s" % r.sticky_route and ROUTES[r.sticky_route] == r.served_by, r
    assert sorted(parts[1:]) == sorted(["Path=/", "HttpOnly", "SameSite=Lax", "Secure"]), r
    route = r.sticky_route
    r = get_https(tls_port, cookie="ROUTEID=%s" % route)
    assert (r.status, r.served_by, r.sticky_status, r.set_cookies) == \
        (200, ROUTES[route], "hit", []), r

    r = get(p.port)
    assert r.status == 200 and r.sticky_status == "new", r
    assert len(r.set_cookies) == 1 and SET_COOKIE_RE.match(r.set_cookies[0]), r
    assert "secure" not in r.set_cookies[0].lower()
