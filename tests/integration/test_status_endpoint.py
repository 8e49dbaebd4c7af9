"""`SetHandler sticky-route-status`: Prometheus text, `?json` for JSON."""

import json
import re

from harness import STATUS_CONF, balancer, get

METRIC_LINE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*,?\})? '
    r'(-?[0-9.]+([eE][-+]?[0-9]+)?|[-+]?Inf|NaN)( -?[0-9]+)?$')


def test_status_endpoint_serves_prometheus_text_and_json(backends, make_proxy):
    body = (STATUS_CONF
            + balancer("shopfront", [(backends["alpha"], "s1"), (backends["bravo"], "s2")]))
    p = make_proxy(body)
    for _ in range(5):
        assert get(p.port).status == 200

    r = get(p.port, "/sticky-status")
    assert r.status == 200, r
    text = r.body.decode()
    samples = [l for l in text.splitlines() if l and not l.startswith("#")]
    assert samples, text
    bad = [l for l in samples if not METRIC_LINE.match(l)]
    assert bad == [], "not Prometheus text lines: %s" % bad[:5]

    r = get(p.port, "/sticky-status?json")
    assert r.status == 200, r
    doc = json.loads(r.body.decode())
    assert "shopfront" in json.dumps(doc), doc
