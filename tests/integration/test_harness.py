"""The harness itself, checked with the stock lbmethod_byrequests (no
mod_sticky_route needed): real apache2 processes, two proxy children,
backends that name themselves, clean stop."""

import harness
from harness import balancer, get


def stock_body(backends, names):
    return balancer("stock", [(backends[n], n) for n in names],
                    proxyset="lbmethod=byrequests")


def test_backend_names_itself_in_header_and_body(backends):
    for name, b in backends.items():
        r = get(b.port)
        assert r.status == 200
        assert r.served_by == name
        assert ("served by %s" % name).encode() in r.body
        js = get(b.port, "/app.js")
        assert js.status == 200 and name.encode() in js.body


def test_backends_run_four_processes(backends):
    for b in backends.values():
        assert len(b.child_pids()) >= 4


def test_proxy_runs_two_child_processes_and_stops_cleanly(backends, make_proxy):
    p = make_proxy(stock_body(backends, ["alpha", "bravo"]), load_module=False,
                   extra_modules=["lbmethod_byrequests"])
    kids = p.child_pids()
    assert len(kids) == 2, kids
    seen = set()
    for _ in range(8):
        r = get(p.port)
        assert r.status == 200
        seen.add(r.served_by)
    assert seen == {"alpha", "bravo"}
    # unset variables are visible as such (the module is not loaded here)
    assert r.sticky_status in ("(null)", "", None)
    pids = p.all_pids()
    p.stop()
    assert not any(harness.pid_alive(x) for x in pids)
    assert harness._port_is_quiet(p.port)


def test_kill_removes_every_backend_process(make_backend):
    b = make_backend("victim")
    pids = b.all_pids()
    assert len(pids) >= 5
    b.kill()
    assert not any(harness.pid_alive(x) for x in pids)
    assert harness._port_is_quiet(b.port)
