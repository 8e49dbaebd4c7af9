"""Configuration of the issue-10 directives through `apache2 -t -f conf`:
every bad value and every wrong context fails with a message naming the
directive; valid configurations pass.

StickyRouteCookie ... MaxIdle=S MaxLife=S, StickyRouteElect
roundrobin|leastbusy, StickyRouteSlowStart SECONDS, StickyRouteRebalance
IDLE_SECONDS [FACTOR > 1], StickyRouteSession NAME [URL_PARAMETER].
"""

import pytest

from harness import balancer

# -t never connects to members: these ports only need to be well formed.
MEMBERS = [("http://127.0.0.1:20998", "s1"), ("http://127.0.0.1:20999", "s2")]


def sticky(inner="", name="app", mount="/"):
    return balancer(name, MEMBERS, inner=inner, mount=mount)


def assert_rejected(configtest, test_dir, body, directive):
    rc, out = configtest(body)
    text = out.replace(str(test_dir), "<dir>")
    assert rc != 0, "config accepted:\n%s\n---\n%s" % (body, text)
    assert directive in text, "output does not name %s:\n%s" % (directive, text)
    assert "Invalid command" not in text, "the module does not know %s:\n%s" % (directive, text)


BAD = [
    ("StickyRouteCookie", "StickyRouteCookie ROUTEID MaxIdle=abc", "maxidle-abc"),
    ("StickyRouteCookie", "StickyRouteCookie ROUTEID MaxIdle=0", "maxidle-0"),
    ("StickyRouteCookie", "StickyRouteCookie ROUTEID MaxIdle=-5", "maxidle-negative"),
    ("StickyRouteCookie", "StickyRouteCookie ROUTEID MaxIdle=", "maxidle-empty"),
    ("StickyRouteCookie", "StickyRouteCookie ROUTEID MaxIdle=1.5", "maxidle-fraction"),
    ("StickyRouteCookie", "StickyRouteCookie ROUTEID MaxLife=-1", "maxlife-negative"),
    ("StickyRouteCookie", "StickyRouteCookie ROUTEID MaxLife=abc", "maxlife-abc"),
    ("StickyRouteCookie", "StickyRouteCookie ROUTEID MaxLife=0", "maxlife-0"),
    ("StickyRouteCookie", "StickyRouteCookie ROUTEID MaxIdle=60 MaxLife=x", "maxlife-after-maxidle"),
    ("StickyRouteElect", "StickyRouteElect fastest", "elect-unknown"),
    ("StickyRouteElect", 'StickyRouteElect ""', "elect-empty"),
    ("StickyRouteElect", "StickyRouteElect leastbusy roundrobin", "elect-two-args"),
    ("StickyRouteSlowStart", "StickyRouteSlowStart x", "slowstart-x"),
    ("StickyRouteSlowStart", "StickyRouteSlowStart -1", "slowstart-negative"),
    ("StickyRouteSlowStart", 'StickyRouteSlowStart ""', "slowstart-empty"),
    ("StickyRouteSlowStart", "StickyRouteSlowStart 10s", "slowstart-unit"),
    ("StickyRouteRebalance", "StickyRouteRebalance 0", "rebalance-0"),
    ("StickyRouteRebalance", "StickyRouteRebalance -3", "rebalance-negative"),
    ("StickyRouteRebalance", "StickyRouteRebalance abc", "rebalance-abc"),
    ("StickyRouteRebalance", "StickyRouteRebalance 10 0.5", "factor-0.5"),
    ("StickyRouteRebalance", "StickyRouteRebalance 10 1", "factor-1"),
    ("StickyRouteRebalance", "StickyRouteRebalance 10 1.0", "factor-1.0"),
    ("StickyRouteRebalance", "StickyRouteRebalance 10 abc", "factor-abc"),
    ("StickyRouteRebalance", "StickyRouteRebalance 10 -2", "factor-negative"),
    ("StickyRouteSession", 'StickyRouteSession "a;b"', "session-semicolon"),
    ("StickyRouteSession", 'StickyRouteSession "JSESSION ID"', "session-space"),
    ("StickyRouteSession", 'StickyRouteSession "a=b"', "session-equals"),
    ("StickyRouteSession", 'StickyRouteSession ""', "session-empty"),
]


@pytest.mark.parametrize("directive,line", [(d, l) for d, l, _ in BAD],
                         ids=[i for _, _, i in BAD])
def test_bad_value_in_server_config_is_an_error_naming_the_directive(
        configtest, test_dir, directive, line):
    assert_rejected(configtest, test_dir, line + "\n" + sticky(), directive)


@pytest.mark.parametrize("directive,line", [(d, l) for d, l, _ in BAD[::3]],
                         ids=[i for _, _, i in BAD[::3]])
def test_bad_value_in_proxy_section_is_an_error_naming_the_directive(
        configtest, test_dir, directive, line):
    assert_rejected(configtest, test_dir, sticky(inner=line), directive)


GOOD_LINES = {
    "StickyRouteCookie": "StickyRouteCookie ROUTEID MaxIdle=60",
    "StickyRouteElect": "StickyRouteElect leastbusy",
    "StickyRouteSlowStart": "StickyRouteSlowStart 30",
    "StickyRouteRebalance": "StickyRouteRebalance 60 1.5",
    "StickyRouteSession": "StickyRouteSession JSESSIONID jsessionid",
}


@pytest.mark.parametrize("directive", sorted(GOOD_LINES))
@pytest.mark.parametrize("section", ["location", "directory"])
def test_directive_in_the_wrong_context_is_an_error_naming_it(
        configtest, test_dir, directive, section):
    if section == "location":
        wrapped = '<Location "/x">\n    %s\n</Location>\n' % GOOD_LINES[directive]
    else:
        wrapped = '<Directory "@ROOT@/htdocs">\n    %s\n</Directory>\n' % GOOD_LINES[directive]
    assert_rejected(configtest, test_dir, wrapped + sticky(), directive)


def test_valid_configurations_pass(configtest, test_dir):
    body = (
        "StickyRouteCookie ROUTEID MaxIdle=1800 MaxLife=86400\n"
        "StickyRouteElect leastbusy\n"
        "StickyRouteSlowStart 30\n"
        "StickyRouteRebalance 300\n"
        "StickyRouteSession JSESSIONID jsessionid\n"
        + sticky()
        + balancer("other", MEMBERS, mount=None, inner=(
            "StickyRouteCookie APPROUTE Path=/other HttpOnly SameSite=Strict MaxIdle=60\n"
            "StickyRouteElect roundrobin\n"
            "StickyRouteSlowStart 0\n"
            "StickyRouteRebalance 60 1.5\n"
            "StickyRouteSession PHPSESSID"))
        + 'ProxyPass "/other/" "balancer://other/"\n'
        + "<VirtualHost 127.0.0.1:@PORT@>\n    ServerName v.test\n"
          "    StickyRouteSlowStart 5\n"
          "    StickyRouteRebalance 30 2\n    StickyRouteElect leastbusy\n"
          "    StickyRouteSession SID sid\n    "
        + sticky(name="v", inner="StickyRouteCookie VROUTE MaxLife=3600")
          .replace("\n", "\n    ").rstrip() + "\n</VirtualHost>\n"
    )
    rc, out = configtest(body)
    assert rc == 0, out
    assert "Syntax OK" in out
