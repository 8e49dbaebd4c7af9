"""Configuration errors are reported by `apache2 -t -f conf`: non-zero exit,
the output names the directive.  Valid configurations pass."""

import os

import pytest

from harness import balancer

# -t never connects to members: these ports only need to be well formed.
MEMBERS = [("http://127.0.0.1:20998", "s1"), ("http://127.0.0.1:20999", "s2")]


def sticky(name="app", inner="", mount="/", proxyset="lbmethod=sticky"):
    return balancer(name, MEMBERS, proxyset=proxyset, inner=inner, mount=mount)


def without_paths(output, test_dir):
    """The output minus file paths (which could contain any word)."""
    return output.replace(str(test_dir), "<dir>")


def assert_rejected(configtest, test_dir, body, *words):
    rc, out = configtest(body)
    assert rc != 0, "config accepted:\n%s\n---\n%s" % (body, out)
    text = without_paths(out, test_dir)
    for w in words:
        assert w in text, "output does not name %r:\n%s" % (w, text)
    return text


BAD_COOKIE = [
    ('"ROUTE ID"', "space in name"),
    ('"a;b"', "semicolon in name"),
    ('"a,b"', "comma in name"),
    ('"a=b"', "equals in name"),
    ('""', "empty name"),
    ("ROUTEID SameSite=None", "SameSite=None without Secure"),
    ("ROUTEID Max-Age=-1", "negative Max-Age"),
    ("ROUTEID Max-Age=abc", "non-numeric Max-Age"),
    ("ROUTEID Foo=1", "unknown attribute"),
    ("ROUTEID SameSite=Sometimes", "unknown SameSite value"),
]


@pytest.mark.parametrize("args", [a for a, _ in BAD_COOKIE], ids=[d for _, d in BAD_COOKIE])
def test_bad_sticky_route_cookie_is_a_config_error(configtest, test_dir, args):
    assert_rejected(configtest, test_dir, "StickyRouteCookie %s\n" % args + sticky(),
                    "StickyRouteCookie")


@pytest.mark.parametrize("args", [a for a, _ in BAD_COOKIE[:4]] + ["ROUTEID Max-Age=abc"],
                         ids=["space", "semicolon", "comma", "equals", "max-age"])
def test_bad_sticky_route_cookie_inside_proxy_section_is_a_config_error(configtest, test_dir, args):
    assert_rejected(configtest, test_dir, sticky(inner="StickyRouteCookie %s" % args),
                    "StickyRouteCookie")


@pytest.mark.parametrize("secret", ["123456789012345", "short", ""],
                         ids=["15-bytes", "5-bytes", "empty"])
def test_secret_shorter_than_16_bytes_is_a_config_error(configtest, test_dir, secret):
    assert_rejected(configtest, test_dir, 'StickyRouteSecret "%s"\n' % secret + sticky(),
                    "StickyRouteSecret")


def test_secret_file_missing_is_a_config_error(configtest, test_dir):
    assert_rejected(configtest, test_dir,
                    "StickyRouteSecret file:/nonexistent/sr-itest/route.secret\n" + sticky(),
                    "StickyRouteSecret")


def test_secret_file_with_short_content_is_a_config_error(configtest, test_dir):
    path = test_dir / "short.secret"
    path.write_text("tooshort")
    assert_rejected(configtest, test_dir, "StickyRouteSecret file:%s\n" % path + sticky(),
                    "StickyRouteSecret")


def test_bad_legacy_cookie_flag_is_a_config_error(configtest, test_dir):
    assert_rejected(configtest, test_dir, "StickyRouteLegacyCookie Maybe\n" + sticky(),
                    "StickyRouteLegacyCookie")


def test_two_sticky_balancers_with_same_cookie_in_one_vhost_is_an_error_naming_both(
        configtest, test_dir):
    body = (sticky("shopfront", mount=None) + sticky("checkout", mount=None) +
            'ProxyPass "/shop/" "balancer://shopfront/"\n'
            'ProxyPass "/pay/" "balancer://checkout/"\n')
    assert_rejected(configtest, test_dir, body, "shopfront", "checkout")


def test_two_sticky_balancers_with_different_cookies_in_one_vhost_are_fine(configtest, test_dir):
    body = (sticky("shopfront", mount=None) +
            sticky("checkout", mount=None, inner="StickyRouteCookie PAYROUTE") +
            'ProxyPass "/shop/" "balancer://shopfront/"\n'
            'ProxyPass "/pay/" "balancer://checkout/"\n')
    rc, out = configtest(body)
    assert rc == 0, out


def test_two_sticky_balancers_with_same_cookie_in_one_virtual_host_section_is_an_error(
        configtest, test_dir):
    body = ("<VirtualHost 127.0.0.1:@PORT@>\n    ServerName shop.test\n"
            + sticky("shopfront", mount=None) + sticky("checkout", mount=None)
            + 'ProxyPass "/shop/" "balancer://shopfront/"\n'
            'ProxyPass "/pay/" "balancer://checkout/"\n</VirtualHost>\n')
    assert_rejected(configtest, test_dir, body, "shopfront", "checkout")


def test_same_cookie_in_different_virtual_hosts_is_fine(configtest, test_dir):
    body = ("<VirtualHost 127.0.0.1:@PORT@>\n    ServerName shop.test\n"
            + sticky("shopfront") + "</VirtualHost>\n"
            "<VirtualHost 127.0.0.1:@PORT@>\n    ServerName pay.test\n"
            + sticky("checkout") + "</VirtualHost>\n")
    rc, out = configtest(body)
    assert rc == 0, out


def test_two_sticky_balancers_with_different_cookie_paths_in_one_vhost_are_fine(
        configtest, test_dir):
    body = (sticky("shopfront", mount=None, inner="StickyRouteCookie ROUTEID Path=/shop/") +
            sticky("checkout", mount=None, inner="StickyRouteCookie ROUTEID Path=/pay/") +
            'ProxyPass "/shop/" "balancer://shopfront/"\n'
            'ProxyPass "/pay/" "balancer://checkout/"\n')
    rc, out = configtest(body)
    assert rc == 0, out


def test_stickysession_on_a_sticky_balancer_warns_but_is_accepted(configtest, test_dir):
    rc, out = configtest(sticky(proxyset="lbmethod=sticky stickysession=ROUTEID"))
    assert rc == 0, out
    text = without_paths(out, test_dir)
    assert "stickysession" in text.lower(), "no warning about stickysession:\n" + text


def test_valid_configurations_pass_configtest(configtest, test_dir):
    secret_file = test_dir / "route.secret"
    secret_file.write_text("0123456789abcdef0123")
    os.chmod(secret_file, 0o600)
    body = (
        "StickyRouteCookie ROUTEID Path=/ HttpOnly SameSite=Lax\n"
        "StickyRouteSecret file:%s\n"
        "StickyRouteLegacyCookie On\n" % secret_file
        + balancer("rr", MEMBERS, proxyset="lbmethod=roundrobin", mount=None)
        + 'ProxyPass "/rr/" "balancer://rr/"\n'
        + 'ProxyPass "/sticky-status" "!"\n'
        + sticky(inner="StickyRouteCookie APPROUTE Path=/app Domain=example.com "
                       "Max-Age=3600 HttpOnly Secure SameSite=None\n"
                       'StickyRouteSecret "0123456789abcdef"\n'
                       "StickyRouteLegacyCookie Off")
        + '<Location "/sticky-status">\n    SetHandler sticky-route-status\n</Location>\n'
    )
    rc, out = configtest(body)
    assert rc == 0, out
    assert "Syntax OK" in out


def test_stock_configuration_without_module_is_valid(configtest, test_dir):
    """Control: the test configuration itself is sound for plain httpd."""
    rc, out = configtest(balancer("app", MEMBERS, proxyset="lbmethod=byrequests"),
                         load_module=False, extra_modules=["lbmethod_byrequests"])
    assert rc == 0, out
