"""A member killed (SIGKILL of all its processes) while clients keep
running: no client sees an error, the proxy moves the killed member's
clients within the request, each of them gets exactly one new cookie and
then stays; nobody else is disturbed.

Requests that are inside the killed backend at the instant of SIGKILL can
not be saved by any proxy (mod_proxy_http answers AH01102 "error reading
status line" and, on a kept-alive client connection, closes it without a
response).  So the killed member's clients park for the instant of the
kill; every other client keeps sending through it, and the killed member's
clients resume against a proxy whose pooled connections to it are dead.
"""

import threading
import time

from harness import SET_COOKIE_RE, KeepAliveClient, balancer

N_CLIENTS = 24
REQUESTS_PER_CLIENT = 60
KILL_AFTER = 15            # requests per client before the kill
TIME_LIMIT = 60            # seconds, the whole loop


def test_member_killed_mid_run_costs_no_request_and_moves_its_clients_once(make_backend, make_proxy):
    names = ["kilo1", "kilo2", "kilo3"]
    bk = {n: make_backend(n) for n in names}
    route_of = {n: "s%d" % (i + 1) for i, n in enumerate(names)}
    member_of = {r: n for n, r in route_of.items()}
    p = make_proxy(balancer("app", [(bk[n], route_of[n]) for n in names]))

    errors = []
    logs = [[] for _ in range(N_CLIENTS)]       # per client: (phase, response)
    progress = [0] * N_CLIENTS
    state = {"victim": None, "killed": False}
    parked, done = set(), set()
    cond = threading.Condition()
    deadline = time.monotonic() + TIME_LIMIT

    def client_loop(i):
        c = KeepAliveClient(p.port)
        for n in range(REQUESTS_PER_CLIENT):
            if time.monotonic() > deadline:
                errors.append((i, n, "time limit"))
                break
            with cond:
                # the victim's clients hold still while the kill happens
                while (state["victim"] is not None and not state["killed"]
                       and logs[i] and logs[i][-1][1].served_by == state["victim"]):
                    parked.add(i)
                    cond.notify_all()
                    cond.wait(0.5)
                parked.discard(i)
                phase = "after" if state["killed"] else "before"
            try:
                r = c.request()
            except Exception as e:          # noqa: BLE001 - every failure counts
                errors.append((i, n, repr(e)))
                c.close()
                continue
            if r.status != 200:
                errors.append((i, n, r.status))
            logs[i].append((phase, r))
            with cond:
                progress[i] = n + 1
                cond.notify_all()
            time.sleep(0.003)
        c.close()
        with cond:
            done.add(i)
            cond.notify_all()

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(N_CLIENTS)]
    for t in threads:
        t.start()

    with cond:
        assert cond.wait_for(lambda: min(progress) >= KILL_AFTER, timeout=30), progress
        counts = {n: 0 for n in names}
        for lg in logs:
            counts[lg[-1][1].served_by] += 1
        victim = max(counts, key=counts.get)
        victim_clients = {i for i, lg in enumerate(logs) if lg[-1][1].served_by == victim}
        state["victim"] = victim
        cond.notify_all()
        # wait until every client of the victim is parked; the others run on
        assert cond.wait_for(lambda: victim_clients <= parked | done, timeout=20), (victim_clients, parked)
    bk[victim].kill()
    with cond:
        state["killed"] = True
        cond.notify_all()

    for t in threads:
        t.join(timeout=max(1, deadline - time.monotonic() + 5))
    assert not any(t.is_alive() for t in threads), "client loop did not finish in time"

    assert errors == [], "client errors: %s" % errors[:10]
    assert counts[victim] >= 1

    for i, lg in enumerate(logs):
        first = lg[0][1]
        assert first.sticky_status == "new" and len(first.set_cookies) == 1, (i, first)
        home = first.served_by
        rest = lg[1:]
        if i in victim_clients:
            assert home == victim
            after = [r for phase, r in rest if phase == "after"]
            before = [r for phase, r in rest if phase == "before"]
            assert all((r.served_by, r.sticky_status, r.set_cookies) == (victim, "hit", [])
                       for r in before), (i, before)
            assert after, "client %d made no request after the kill" % i
            moved = after[0]
            assert moved.served_by != victim and moved.sticky_status == "failover", (i, moved)
            assert len(moved.set_cookies) == 1, (i, moved)
            m = SET_COOKIE_RE.match(moved.set_cookies[0])
            assert m and member_of.get(m.group(1)) == moved.served_by, (i, moved)
            for r in after[1:]:
                assert (r.served_by, r.sticky_status, r.set_cookies) == \
                    (moved.served_by, "hit", []), (i, r)
        else:
            for phase, r in rest:
                assert (r.served_by, r.sticky_status, r.set_cookies) == (home, "hit", []), (i, phase, r)
    # nothing was served by the victim after its death ...
    assert all(r.served_by != victim for lg in logs for phase, r in lg if phase == "after")
    # ... yet it was tried (connect refused) and the request moved on in-request
    assert "Connection refused" in p.error_log and ":%d" % bk[victim].port in p.error_log, \
        p.error_log[-2000:]
