"""The status endpoint's Prometheus text: one parser for every suite,
python3-prometheus-client's (text_string_to_metric_families), and the
exposition checks (promtool, no series twice)."""

import os
import subprocess

from prometheus_client.parser import text_string_to_metric_families

PROMTOOL = os.environ.get("SR_PROMTOOL", "/usr/bin/promtool")


def promtool_check(text):
    """`promtool check metrics` on the exposition: (returncode, output)."""
    data = text if isinstance(text, bytes) else text.encode()
    res = subprocess.run([PROMTOOL, "check", "metrics"], input=data,
                         capture_output=True, timeout=30)
    return res.returncode, (res.stdout + res.stderr).decode(errors="replace")


def prometheus_samples(text):
    """Every sample of the exposition as (name, labels dict, value), parsed by
    python3-prometheus-client's text parser."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.append((s.name, dict(s.labels), s.value))
    return out


def duplicate_series(samples):
    """Samples whose metric name and label set occur more than once."""
    seen, dups = set(), []
    for name, labels, _ in samples:
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            dups.append(key)
        seen.add(key)
    return dups


def assert_valid_exposition(text):
    """promtool accepts it, the strict parser parses it, no series twice.
    Returns the parsed samples."""
    rc, out = promtool_check(text)
    assert rc == 0, "promtool check metrics: rc=%d\n%s\n---\n%s" % (rc, out, text)
    samples = prometheus_samples(text)
    dups = duplicate_series(samples)
    assert dups == [], "series given twice: %s\n---\n%s" % (dups, text)
    return samples


def sample_map(text, prefix="sticky_route_"):
    """{(metric, balancer, route, status-or-None): value} of every labelled
    sample whose name starts with prefix (values as int when whole)."""
    out = {}
    for name, labels, value in prometheus_samples(text):
        if not name.startswith(prefix) or not labels:
            continue
        if float(value).is_integer():
            value = int(value)
        out[(name, labels.get("balancer"), labels.get("route"), labels.get("status"))] = value
    return out
