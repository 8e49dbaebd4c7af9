"""In-request retry: a member whose port has no listener (retry=0, so it is
tried again on every request) and a live member.  Every cookie-less request
is answered 200 by the live member with exactly ONE Set-Cookie (raw headers
counted with http.client, which keeps duplicates) naming it."""

import re

from harness import balancer, free_port, get

N_REQUESTS = 80


def test_connect_failure_is_retried_within_the_request_with_exactly_one_cookie(backends, make_proxy):
    dead = free_port()
    p = make_proxy(balancer("app", [(dead, "s1", "retry=0"), (backends["bravo"], "s2")]))
    for i in range(N_REQUESTS):
        r = get(p.port)
        assert r.status == 200, (i, r)
        assert r.served_by == "bravo", (i, r)
        assert len(r.set_cookies) == 1, (i, r.headers)
        assert r.set_cookies[0] == "ROUTEID=s2; Path=/; HttpOnly; SameSite=Lax", (i, r)
        assert r.sticky_route == "s2", (i, r)
    # the dead member really was tried (and failed) while these requests ran
    refused = re.findall(r"Connection refused.*127\.0\.0\.1:%d" % dead, p.error_log)
    assert refused, "the member without listener was never tried:\n" + p.error_log[-2000:]


def test_connect_failure_retry_with_stale_cookie_issues_one_cookie(backends, make_proxy):
    """A client whose cookie names the member that fails to connect."""
    dead = free_port()
    p = make_proxy(balancer("app", [(dead, "s1", "retry=0"), (backends["bravo"], "s2")]))
    for i in range(20):
        r = get(p.port, cookie="ROUTEID=s1")
        assert r.status == 200 and r.served_by == "bravo", (i, r)
        assert r.set_cookies == ["ROUTEID=s2; Path=/; HttpOnly; SameSite=Lax"], (i, r.headers)
        assert r.sticky_status == "failover", (i, r)
