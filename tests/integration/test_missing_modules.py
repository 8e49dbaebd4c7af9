"""mod_sticky_route without the modules it plugs into is a configuration
error that `apache2 -t` reports (non-zero exit, a message naming what is
missing), not a server that starts and then answers 500."""

import re

import pytest

from harness import MODULE_SO, balancer

MEMBERS = [("http://127.0.0.1:20998", "s1"), ("http://127.0.0.1:20999", "s2")]


def without_paths(output, test_dir):
    """The output minus the paths of the test's files and of the module
    (the config lives in a directory named proxy-...)."""
    output = output.replace(str(MODULE_SO), "<module>")
    return re.sub(re.escape(str(test_dir)) + r"[^\s:]*", "<conf>", output)


@pytest.mark.parametrize("body", [
    balancer("app", MEMBERS, proxyset="lbmethod=sticky"),
    balancer("app", MEMBERS, proxyset="lbmethod=roundrobin"),
    "# the module loaded, nothing configured\n",
], ids=["lbmethod-sticky", "lbmethod-roundrobin", "module-only"])
def test_without_mod_proxy_balancer_configtest_fails_naming_it(configtest, test_dir, body):
    rc, out = configtest(body, proxy_modules=("slotmem_shm", "proxy", "proxy_http"))
    text = without_paths(out, test_dir)
    assert rc != 0, "config without mod_proxy_balancer accepted (rc=0):\n%s" % text
    assert "mod_proxy_balancer" in text, "the message does not name mod_proxy_balancer:\n%s" % text


def test_without_mod_proxy_configtest_fails(configtest, test_dir):
    rc, out = configtest("# the module loaded alone\n", proxy_modules=())
    text = without_paths(out, test_dir)
    assert rc != 0, "config with mod_sticky_route but no mod_proxy accepted:\n%s" % text
    assert "proxy" in text.lower(), text


def test_without_mod_proxy_balancer_the_server_does_not_start(make_proxy):
    p = make_proxy(balancer("app", MEMBERS), start=False,
                   proxy_modules=("slotmem_shm", "proxy", "proxy_http"))
    with pytest.raises(RuntimeError) as failed:
        p.start(timeout=10)
    message = re.sub(re.escape(str(p.root)) + r"[^\s:]*", "<file>", str(failed.value))
    assert "mod_proxy_balancer" in message, message
