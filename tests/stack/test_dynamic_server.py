"""dynamic/server.js on its own: answers, input validation, graceful stop."""
import os
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import PORT_BASE, REPO, listening, wait_until

SERVER_JS = REPO / "dynamic" / "server.js"
TIMEOUT = 5


def start(port, name="dyn-test", **overrides):
    """node dynamic/server.js with Debian's node modules; overrides=None unsets."""
    env = {"PATH": os.environ["PATH"], "NODE_PATH": "/usr/share/nodejs",
           "INSTANCE_NAME": name, "PORT": str(port), "HOST": "127.0.0.1", **overrides}
    env = {k: v for k, v in env.items() if v is not None}
    return subprocess.Popen(["node", str(SERVER_JS)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def server():
    port = PORT_BASE + 40
    assert not listening(port), f"port {port} busy"
    proc = start(port)
    try:
        assert wait_until(lambda: listening(port) or proc.poll() is not None, 10)
        assert proc.poll() is None, proc.stderr.read()
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(15)


def test_root_answers_generated_records_and_who_served_them(server):
    r = requests.get(server + "/", timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers["X-Served-By"] == "dyn-test"
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["served_by"] == "dyn-test"
    assert body["count"] == 5 and len(body["records"]) == 5
    for rec in body["records"]:
        assert {"id", "name", "city", "country", "profession"} <= set(rec)
        assert rec["name"] and rec["city"]
    assert len({rec["id"] for rec in body["records"]}) == 5


def test_count_and_seed_are_honoured(server):
    one = requests.get(server + "/", params={"count": "50", "seed": "7"}, timeout=TIMEOUT).json()
    two = requests.get(server + "/", params={"count": "50", "seed": "7"}, timeout=TIMEOUT).json()
    assert len(one["records"]) == 50
    assert one["records"] == two["records"], "same seed, same records"
    other = requests.get(server + "/", params={"count": "50", "seed": "8"}, timeout=TIMEOUT).json()
    assert other["records"] != one["records"]


def test_healthz(server):
    r = requests.get(server + "/healthz", timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "served_by": "dyn-test"}
    assert r.headers["X-Served-By"] == "dyn-test"


BAD_QUERIES = [
    ("count=0", "count"), ("count=51", "count"), ("count=abc", "count"), ("count=-1", "count"),
    ("count=1.5", "count"), ("count=", "count"), ("count=1&count=2", "count"),
    ("count=99999999999999999999", "count"), ("seed=-1", "seed"), ("seed=2147483648", "seed"),
    ("delay_ms=10001", "delay_ms"), ("colour=red", "colour"), ("count[x]=1", "count[x]"),
    ("count=%0a1", "count"),
]


@pytest.mark.parametrize("query,param", BAD_QUERIES, ids=[q for q, _ in BAD_QUERIES])
def test_bad_query_is_a_400_naming_the_parameter(server, query, param):
    r = requests.get(f"{server}/?{query}", timeout=TIMEOUT)
    assert r.status_code == 400
    assert r.headers["X-Served-By"] == "dyn-test"
    body = r.json()
    assert f'"{param}"' in body["error"]
    assert body["served_by"] == "dyn-test"


def test_unknown_path_is_a_json_404_with_x_served_by(server):
    r = requests.get(server + "/nope", timeout=TIMEOUT)
    assert r.status_code == 404
    assert r.headers["X-Served-By"] == "dyn-test"
    assert r.json()["error"] == "not found"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_are_a_405(server, method):
    r = requests.request(method, server + "/", data="{}", timeout=TIMEOUT)
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD"
    assert r.headers["X-Served-By"] == "dyn-test"


def test_keep_alive_outlasts_the_proxy_pool_ttl(server):
    r = requests.get(server + "/healthz", timeout=TIMEOUT)
    assert r.headers["Keep-Alive"] == "timeout=75"


@pytest.mark.parametrize("env,variable", [
    ({"INSTANCE_NAME": None}, "INSTANCE_NAME"),
    ({"INSTANCE_NAME": "two words"}, "INSTANCE_NAME"),
    ({"INSTANCE_NAME": 'q"uote'}, "INSTANCE_NAME"),
    ({"PORT": "0"}, "PORT"),
    ({"PORT": "70000"}, "PORT"),
    ({"PORT": "80x"}, "PORT"),
    ({"HOST": "127.0.0.1; rm"}, "HOST"),
], ids=["name-missing", "name-space", "name-quote", "port-0", "port-range", "port-text",
        "host"])
def test_bad_environment_refuses_to_start(env, variable):
    proc = start(PORT_BASE + 41, **env)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 2
    assert variable + "=" in err
    assert not listening(PORT_BASE + 41)


def test_sigterm_finishes_in_flight_requests_then_exits(tmp_path):
    port = PORT_BASE + 41
    assert not listening(port), f"port {port} busy"
    proc = start(port, "dyn-stop")
    try:
        assert wait_until(lambda: listening(port), 10)
        idle = requests.Session()          # an idle keep-alive client must not hold the exit
        assert idle.get(f"http://127.0.0.1:{port}/healthz", timeout=TIMEOUT).status_code == 200
        result = {}

        def slow_request():
            try:
                r = requests.get(f"http://127.0.0.1:{port}/", params={"delay_ms": "4000",
                                                                     "count": "2"}, timeout=10)
                result["status"], result["body"] = r.status_code, r.json()
            except Exception as exc:  # noqa: BLE001 - reported below
                result["error"] = repr(exc)

        worker = threading.Thread(target=slow_request)
        worker.start()
        time.sleep(0.5)                    # the request is now in flight (for 4 s)
        proc.send_signal(signal.SIGTERM)
        # Stops accepting at once, while the slow request is still running.
        assert wait_until(lambda: not listening(port), 3.0)
        assert proc.poll() is None, "exited before the request in flight was answered"
        assert "status" not in result and "error" not in result
        worker.join(15)
        assert result.get("status") == 200, result
        assert len(result["body"]["records"]) == 2
        assert proc.wait(5) == 0
        assert "finishing requests in flight" in proc.stdout.read()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
