#!/bin/bash
# make test-compose: builds the three images and runs docker-compose.yml for
# real, with Debian's docker-compose (1.29) against a Docker Engine - the
# engine users run - started privately for the test (tests/docker-engine.sh:
# Debian's docker.io 20.10 on its own socket, data-root and exec-root under
# /tmp/sr-docker, stopped on any exit).
#
#   1. the base image debian:bookworm-slim, made with debootstrap when missing
#   2. the private engine (or podman's API, COMPOSE_TEST_ENGINE=podman)
#   3. docker-compose build, up -d, every service healthy
#   4. HTTP checks on 127.0.0.1:PORT (tests/compose/checks.py): page and assets
#      from one static container, API alternating between the dynamic ones,
#      X-Served-By naming the compose services, signed cookies
#   5. failover: the static container of a client is stopped -> the other one
#      serves it with zero errors and one new cookie; started again
#   6. a scaled service expands into one member per address (reload)
#   7. graceful stop of the proxy (SIGWINCH) finishes a request in flight
#   8. bad variables: the proxy container exits with the renderer's message
#   8b. TLS=files with docker-compose.tls-files.yml (certificate and key as
#      compose secrets): the site over HTTPS and h2, the plain port redirecting
#   8c. TLS=acme: the image puts the certificates mod_md obtains and renews
#      in use by itself (tests/compose/test_acme_container.py, pebble)
#   9. docker-compose down leaves no container, network or volume behind
#
# Environment: COMPOSE_TEST_PORT (default: first free port from 18080),
# COMPOSE_TEST_PROJECT (default srcompose), COMPOSE_TEST_KEEP=1 (leave the
# stack and the private engine running on success, for a look: `docker-compose
# down` it yourself; the next test run adopts the engine and stops it),
# COMPOSE_TEST_ENGINE=docker
# (default) or podman (podman's Docker-compatible API on a socket under /tmp;
# podman runs healthchecks only from systemd timers, absent here, so a
# bounded loop runs `podman healthcheck run` for the project's containers),
# SR_DOCKER_HOST (use that Docker engine; tests/docker-engine.sh).
#
# Every docker command is Debian's /usr/bin/docker (the 20.10 CLI of the
# engine), also against podman, whose API speaks the same protocol.
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sr_init compose-test    # set -euo pipefail, LC_ALL=C, REPO, cd "$REPO"
HERE=$REPO/tests/compose
# shellcheck source=tests/docker-engine.sh
. "$REPO/tests/docker-engine.sh"

PROJECT=${COMPOSE_TEST_PROJECT:-srcompose}
ENGINE=${COMPOSE_TEST_ENGINE:-docker}
T0=$SECONDS
STEP_T0=$SECONDS
UP_TIMEOUT=300          # docker-compose up, health included
HEALTH_TIMEOUT=120      # one wait for health
TOTAL_TIMEOUT=1500      # podman's health driver's own limit (25 min)
LOCK_WAIT=${SR_DOCKER_LOCK_WAIT:-1200}

export COMPOSE_PROJECT_NAME=$PROJECT
export COMPOSE_HTTP_TIMEOUT=300
export PROXY_BIND=127.0.0.1
# The compose file's other variables keep their defaults; the user's shell
# must not change what is tested.
unset STATIC_APP DYNAMIC_APP SERVER_NAME API_PREFIX ADMIN_ALLOW IMAGE_PREFIX IMAGE_TAG \
      PROXY_REPLICAS INSTANCE_SUFFIX DISCOVER_INTERVAL DISCOVER_MAX

# ---- prerequisites ------------------------------------------------------------
missing=()
case $ENGINE in
    docker) need=(/usr/bin/docker /usr/sbin/dockerd docker-compose debootstrap curl ss timeout flock pebble pebble-challtestsrv openssl) ;;
    podman) need=(podman /usr/bin/docker docker-compose debootstrap curl ss timeout) ;;
    *) fail "COMPOSE_TEST_ENGINE=$ENGINE: expected docker or podman" ;;
esac
for c in "${need[@]}"; do
    command -v "$c" >/dev/null || missing+=("$c")
done
/usr/bin/python3 -c 'import requests, docker, yaml' 2>/dev/null || missing+=("python3-requests/python3-docker/python3-yaml")
[ ${#missing[@]} -eq 0 ] || fail "missing: ${missing[*]} (make deps installs them)"
[ "$(id -u)" = 0 ] || fail "needs root (a private dockerd, or podman with runc and rootful networks)"
if [ "$ENGINE" = podman ]; then
    # Service names resolve between containers only with netavark +
    # aardvark-dns (podman's CNI backend has no DNS here); port forwarding
    # needs iptables.
    [ "$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null)" = netavark ] ||
        fail "podman's network backend is not netavark (install netavark aardvark-dns iptables)"
    [ -x /usr/lib/podman/aardvark-dns ] || fail "aardvark-dns missing (install aardvark-dns)"
    command -v iptables >/dev/null || fail "iptables missing (install iptables)"
    export CONTAINERS_CONF=$HERE/containers.conf
elif [ -z "${SR_DOCKER_HOST:-}" ]; then
    # One test at a time on the private engine (the swarm test uses it too).
    engine_lock "$LOCK_WAIT" || fail "the private engine is busy ($SR_DOCKER_DIR/lock)"
fi

# ---- port -----------------------------------------------------------------------
if [ -n "${COMPOSE_TEST_PORT:-}" ]; then
    [[ $COMPOSE_TEST_PORT =~ ^[1-9][0-9]{0,4}$ ]] || fail "COMPOSE_TEST_PORT=$COMPOSE_TEST_PORT: not a port"
    port_free "$COMPOSE_TEST_PORT" || fail "port $COMPOSE_TEST_PORT is in use (COMPOSE_TEST_PORT)"
    PORT=$COMPOSE_TEST_PORT
else
    PORT=$(first_free_port 18080 18179) || fail "no free port in 18080-18179 (set COMPOSE_TEST_PORT)"
fi
export PROXY_PORT=$PORT
BASE=http://127.0.0.1:$PORT

# ---- cleanup on any exit -------------------------------------------------------
WORK=$(mktemp -d /tmp/sr-compose-test.XXXXXX)
SOCK=$WORK/podman.sock
SERVICE_PID='' DRIVER_PID='' ENGINE_UP=0
dc() { timeout "${DC_TIMEOUT:-180}" docker-compose "$@"; }

diagnostics() {
    say "---- diagnostics"
    timeout 30 docker-compose ps 2>&1 || true
    timeout 60 docker-compose logs --no-color --tail=40 2>&1 | tail -n 200 || true
}
cleanup() {
    local rc=$? ids n
    trap - EXIT INT TERM
    set +e
    if [ $rc != 0 ] && [ "$ENGINE_UP" = 1 ]; then diagnostics; fi
    if [ "$ENGINE_UP" = 1 ] && ! { [ $rc = 0 ] && [ "${COMPOSE_TEST_KEEP:-0}" = 1 ]; }; then
        timeout 180 docker-compose down --volumes --remove-orphans >/dev/null 2>&1
        # Whatever down could not remove (e.g. a container the engine was
        # restarting): this project's only, by label and name.
        ids=$(timeout 30 docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null)
        # shellcheck disable=SC2086  # one id per word
        [ -z "$ids" ] || timeout 60 docker rm -f $ids >/dev/null 2>&1
        for n in $(timeout 30 docker network ls --format '{{.Name}}' | grep "^${PROJECT}_"); do
            timeout 30 docker network rm "$n" >/dev/null 2>&1
        done
    fi
    [ -z "$DRIVER_PID" ] || kill "$DRIVER_PID" 2>/dev/null
    if [ -n "$SERVICE_PID" ]; then
        kill "$SERVICE_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$SERVICE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVICE_PID" 2>/dev/null
    fi
    if [ "$ENGINE" = docker ]; then
        if [ $rc = 0 ] && [ "${COMPOSE_TEST_KEEP:-0}" = 1 ] && [ "$ENGINE_OWNED" = 1 ]; then
            say "COMPOSE_TEST_KEEP=1: engine left running: DOCKER_HOST=$DOCKER_HOST (the next test run adopts and stops it)"
        else
            engine_stop
        fi
    fi
    wait 2>/dev/null
    rm -rf "$WORK"
    if [ $rc = 0 ]; then
        say "PASS in $((SECONDS - T0))s"
    else
        say "FAILED (exit $rc) after $((SECONDS - T0))s"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1-2. engine and base image ---------------------------------------------------
if [ "$ENGINE" = docker ]; then
    step "Docker Engine"
    engine_start || fail "no Docker engine"
    ENGINE_UP=1
    step "base image"
    BASE_ENGINE=docker bash "$HERE/make-base-image.sh"
else
    step "base image"
    BASE_ENGINE=podman bash "$HERE/make-base-image.sh"
    step "podman API service on $SOCK"
    export DOCKER_HOST=unix://$SOCK
    podman system service --time=0 "unix://$SOCK" >"$WORK/podman-service.log" 2>&1 &
    SERVICE_PID=$!
    for _ in $(seq 100); do
        curl -fsS --max-time 2 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1 && break
        kill -0 "$SERVICE_PID" 2>/dev/null || fail "podman system service exited: $(cat "$WORK/podman-service.log")"
        sleep 0.2
    done
    curl -fsS --max-time 2 --unix-socket "$SOCK" http://d/_ping >/dev/null || fail "podman API not answering on $SOCK"
    ENGINE_UP=1
fi

# A project left over by an interrupted run.
dc down --volumes --remove-orphans >/dev/null 2>&1 || true

# ---- secret ------------------------------------------------------------------------
make_secret secrets/sticky_route_secret
git check-ignore -q secrets/sticky_route_secret || fail "secrets/sticky_route_secret is not git-ignored"

# ---- compose file and build context ----------------------------------------------
step "compose file and build context"
dc config -q || fail "docker-compose config rejects docker-compose.yml"
[ "$(dc config --services | sort | tr '\n' ' ')" = "dynamic1 dynamic2 reverse-proxy static1 static2 " ] ||
    fail "services: $(dc config --services | tr '\n' ' ')"
# The same file is what `docker stack deploy -c docker-compose.yml` reads
# (make test-swarm deploys it): its loader (docker CLI 20.10) needs a 3.x
# version and depends_on as a list.
/usr/bin/python3 - <<'PY' || fail "docker-compose.yml is not in the form docker stack deploy reads"
import sys, yaml
doc = yaml.safe_load(open('docker-compose.yml'))
errs = []
if not str(doc.get('version', '')).startswith('3.'):
    errs.append(f"version: {doc.get('version')!r}, expected 3.x")
for name, svc in doc['services'].items():
    if not isinstance(svc.get('depends_on', []), list):
        errs.append(f"{name}: depends_on is not a list")
if not doc['networks']['frontend'].get('attachable'):
    errs.append("networks.frontend is not attachable")
for e in errs:
    print(f"compose-test:   {e}", file=sys.stderr)
sys.exit(1 if errs else 0)
PY
# What docker-compose sends as build context (docker-py applies .dockerignore).
/usr/bin/python3 - <<'PY' || fail "build context check"
import sys
from docker.utils.build import exclude_paths
pats = [l.strip() for l in open('.dockerignore') if l.strip() and not l.startswith('#')]
files = sorted(exclude_paths('.', pats))
bad = [f for f in files if f.startswith(('secrets', '.git', 'tests', 'bench', 'fuzz', '.libs'))
       or 'node_modules' in f.split('/') or f.endswith(('.so', '.o', '.lo', '.la'))]
need = ['Makefile', 'mod_sticky_route.c', 'sr_core.h', 'debian/sticky_route.load',
        'templates/render-proxy-conf.sh', 'templates/static-httpd.conf', 'site/index.html',
        'dynamic/server.js', 'docker/reverse-proxy/Dockerfile']
missing = [f for f in need if f not in files]
print(f"compose-test:   build context: {len(files)} entries, e.g. {', '.join(files[:6])} ...")
if bad or missing:
    print(f"compose-test:   must not be in the context: {bad}; missing: {missing}", file=sys.stderr)
    sys.exit(1)
PY

# ---- 3. build, up, health ------------------------------------------------------------
step "docker-compose build"
# One service per image (static2 and dynamic2 share static1's and dynamic1's),
# the three images at once: about half the time of one after the other.
if ! DC_TIMEOUT=1200 dc build --parallel reverse-proxy static1 dynamic1 >"$WORK/build.log" 2>&1; then
    tail -n 60 "$WORK/build.log" >&2
    fail "docker-compose build"
fi
grep -E '^(Building|Successfully tagged)' "$WORK/build.log" | sed 's/^/  /'
# The images as the issue wants them: FROM debian:bookworm-slim, stop signal,
# healthcheck (podman keeps HEALTHCHECK only in docker-format images).
for df in docker/*/Dockerfile; do
    [ "$(grep -m1 '^FROM' "$df")" = "FROM debian:bookworm-slim AS builder" ] ||
        [ "$(grep -m1 '^FROM' "$df")" = "FROM debian:bookworm-slim" ] || fail "$df: first FROM is not debian:bookworm-slim"
    [ "$(grep '^FROM' "$df" | grep -vc '^FROM debian:bookworm-slim')" = 0 ] || fail "$df: a FROM other than debian:bookworm-slim"
done
image_of() { dc config | awk -v s="/$1:" '$1=="image:" && index($2, s) && !found {print $2; found=1}'; }
# podman's Docker API leaves the healthcheck out of an image's config: ask podman.
image_inspect() {
    if [ "$ENGINE" = podman ]; then podman image inspect "$@"; else docker image inspect "$@"; fi
}
for s in reverse-proxy static dynamic; do
    img=$(image_of "$s")
    image_inspect "$img" >/dev/null 2>&1 || fail "image $img not built"
    hc=$(image_inspect "$img" --format '{{.Config.Healthcheck}}')
    grep -q -v -e '^<nil>$' -e '^$' <<< "$hc" ||
        fail "image $img has no HEALTHCHECK"
done
[ "$(image_inspect "$(image_of reverse-proxy)" --format '{{.Config.StopSignal}}')" = SIGWINCH ] ||
    fail "reverse-proxy image: STOPSIGNAL is not SIGWINCH"
say "  built in $((SECONDS - STEP_T0))s"

if [ "$ENGINE" = podman ]; then
    # Health driver (see the header): bounded in time, killed by cleanup.
    (
        end=$((SECONDS + TOTAL_TIMEOUT))
        while [ $SECONDS -lt $end ]; do
            for id in $(podman ps -q --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null); do
                timeout 20 podman healthcheck run "$id" >/dev/null 2>&1 || true
            done
            sleep 2
        done
    ) &
    DRIVER_PID=$!
fi

# Containers of a service.
ids_of() {
    docker ps -a -q --filter "label=com.docker.compose.project=$PROJECT" \
        --filter "label=com.docker.compose.service=$1" --filter "label=com.docker.compose.oneoff=False"
}
container_of() { ids_of "$1" | awk 'NR==1'; }
health_of() { docker inspect --format '{{.State.Health.Status}}' "$1" 2>/dev/null || echo gone; }
wait_healthy() {   # services...
    local end=$((SECONDS + HEALTH_TIMEOUT)) s id ids st pending
    while :; do
        pending=()
        for s in "$@"; do
            ids=$(ids_of "$s")
            [ -n "$ids" ] || pending+=("$s:no-container")
            for id in $ids; do
                st=$(health_of "$id")
                [ "$st" = healthy ] || pending+=("$s:$st")
            done
        done
        [ ${#pending[@]} -eq 0 ] && return 0
        [ $SECONDS -lt $end ] || fail "not healthy after ${HEALTH_TIMEOUT}s: ${pending[*]}"
        sleep 1
    done
}

step "docker-compose up -d (proxy on 127.0.0.1:$PORT)"
DC_TIMEOUT=$UP_TIMEOUT dc up -d 2>&1 | sed 's/^/  /'
wait_healthy reverse-proxy static1 static2 dynamic1 dynamic2
say "  all five services healthy in $((SECONDS - STEP_T0))s"
PROXY=$(container_of reverse-proxy)

# The stack as required: backends not published, on the internal network only.
for s in static1 static2 dynamic1 dynamic2; do
    id=$(container_of "$s")
    ports=$(docker port "$id")
    [ -z "$ports" ] || fail "$s publishes ports: $ports"
    nets=$(docker inspect --format '{{range $n, $v := .NetworkSettings.Networks}}{{$n}} {{end}}' "$id")
    [ "$nets" = "${PROJECT}_backend " ] || fail "$s networks: $nets (expected only ${PROJECT}_backend)"
done
nets=$(docker inspect --format '{{range $n, $v := .NetworkSettings.Networks}}{{$n}} {{end}}' "$PROXY")
[ "$nets" = "${PROJECT}_backend ${PROJECT}_frontend " ] || fail "reverse-proxy networks: $nets"
[ "$(docker network inspect "${PROJECT}_backend" --format '{{.Internal}}')" = true ] ||
    fail "${PROJECT}_backend is not internal"
# From the backend network nothing gets out; the proxy reaches the backends by name.
docker exec "$(container_of static1)" bash -c 'timeout 3 bash -c "echo > /dev/tcp/deb.debian.org/80"' 2>/dev/null &&
    fail "static1 reaches the outside from the internal network"
docker exec "$PROXY" curl -fsS -o /dev/null --max-time 5 http://static1/css/style.css ||
    fail "the proxy does not reach static1 by its service name"
[ "$(docker exec "$(container_of dynamic1)" id -u)" != 0 ] || fail "dynamic1 runs as root"
pid1=$(docker exec "$PROXY" cat /proc/1/cmdline | tr '\0' ' ')
[ "${pid1%% *}" = /usr/sbin/apache2 ] || fail "PID 1 of the proxy is not httpd: $pid1"
docker exec "$PROXY" grep -q 'StickyRouteSecret "file:/run/secrets/sticky_route_secret"' \
    /etc/apache2/sites-available/sticky-route.conf || fail "the proxy does not use the compose secret"
docker exec "$PROXY" test -L /etc/apache2/mods-enabled/sticky_route.load || fail "sticky_route not a2enmod'ed"
say "  networks, ports, users, PID 1, secret, a2enmod: as required"

# ---- 4. HTTP checks --------------------------------------------------------------------
step "HTTP checks against $BASE"
/usr/bin/python3 "$HERE/checks.py" basic "$BASE" || fail "HTTP checks"

status_json() { docker exec "$PROXY" curl -fsS --max-time 5 'http://127.0.0.1/sticky-route-status?json'; }
status_json > "$WORK/status.json" || fail "/sticky-route-status?json inside the proxy"
echo '{"static": ["static1", "static2"], "dynamic": ["dynamic1", "dynamic2"]}' > "$WORK/expect.json"
/usr/bin/python3 "$HERE/checks.py" status-check "$WORK/status.json" "$WORK/expect.json" || fail "status"

# ---- 5. failover -------------------------------------------------------------------------
step "failover: stop the static container of a client"
pinned=$(/usr/bin/python3 "$HERE/checks.py" pin "$BASE" "$WORK/client.json" | tail -n 1)
[[ $pinned == static[12] ]] || fail "pin: $pinned"
say "  docker-compose stop $pinned"
dc stop -t 15 "$pinned" 2>&1 | sed 's/^/  /'
[ "$(docker inspect --format '{{.State.Running}}' "$(container_of "$pinned")")" = false ] || fail "$pinned still running"
/usr/bin/python3 "$HERE/checks.py" failover "$BASE" "$WORK/client.json" || fail "failover"
say "  docker-compose start $pinned"
dc start "$pinned" 2>&1 | sed 's/^/  /'
wait_healthy "$pinned"
/usr/bin/python3 "$HERE/checks.py" stays "$BASE" "$WORK/client.json" || fail "client moved back"
/usr/bin/python3 "$HERE/checks.py" new-client-reaches "$BASE" "$pinned" 30 || fail "$pinned not used again"

# ---- 6. scaled service: one member per address -------------------------------------------
step "scaled service: dynamic2 x2, sticky-route-reload"
DC_TIMEOUT=$UP_TIMEOUT dc up -d --no-deps --no-recreate --scale dynamic2=2 dynamic2 2>&1 | sed 's/^/  /'
wait_healthy dynamic2
ips=$(for id in $(ids_of dynamic2); do
          docker inspect --format "{{(index .NetworkSettings.Networks \"${PROJECT}_backend\").IPAddress}}" "$id"
      done | sort -V)
[ "$(wc -w <<< "$ips")" = 2 ] || fail "dynamic2 containers: $ips"
docker exec "$PROXY" sticky-route-reload 2>&1 | sed 's/^/  /'
routes=("dynamic1")
for ip in $ips; do routes+=("dynamic2-${ip//./-}"); done
printf '{"static": ["static1", "static2"], "dynamic": [%s]}\n' \
    "$(printf '"%s",' "${routes[@]}" | sed 's/,$//')" > "$WORK/expect.json"
end=$((SECONDS + 30))
until status_json > "$WORK/status.json" 2>/dev/null &&
      /usr/bin/python3 "$HERE/checks.py" status-check "$WORK/status.json" "$WORK/expect.json" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || { /usr/bin/python3 "$HERE/checks.py" status-check "$WORK/status.json" "$WORK/expect.json"; fail "members after reload"; }
    sleep 1
done
/usr/bin/python3 "$HERE/checks.py" status-check "$WORK/status.json" "$WORK/expect.json"
before=$(cat "$WORK/status.json")
/usr/bin/python3 "$HERE/checks.py" api-spread "$BASE" 30 || fail "API after scaling"
status_json > "$WORK/status2.json"
/usr/bin/python3 - "$WORK/status2.json" <<PY || fail "exact round robin over the expanded members"
import json, sys
before = {m["route"]: m["requests"]["roundrobin"] for m in json.loads('''$before''')["members"] if m["balancer"] == "dynamic"}
after = {m["route"]: m["requests"]["roundrobin"] for m in json.load(open(sys.argv[1]))["members"] if m["balancer"] == "dynamic"}
d = {r: after[r] - before[r] for r in after}
print(f"compose-test:   requests per member over 30 API calls: {d}")
sys.exit(0 if sorted(d.values()) == [10, 10, 10] else 1)
PY
DC_TIMEOUT=$UP_TIMEOUT dc up -d --no-deps --scale dynamic2=1 dynamic2 2>&1 | sed 's/^/  /'
docker exec "$PROXY" sticky-route-reload >/dev/null 2>&1

# ---- 7. graceful stop of the proxy ------------------------------------------------------------
step "docker-compose stop reverse-proxy during a slow request"
sleep 2   # let the reload settle
curl -sS -o "$WORK/slow.json" -w '%{http_code}' --max-time 30 "$BASE/api/?delay_ms=3000" > "$WORK/slow.code" 2>&1 &
slow=$!
sleep 1
t=$SECONDS
dc stop -t 20 reverse-proxy 2>&1 | sed 's/^/  /'
wait "$slow" || true
[ "$(cat "$WORK/slow.code")" = 200 ] || fail "the request in flight got $(cat "$WORK/slow.code") during docker stop"
[ "$(docker inspect --format '{{.State.ExitCode}}' "$PROXY")" = 0 ] ||
    fail "proxy exit code $(docker inspect --format '{{.State.ExitCode}}' "$PROXY") after docker stop"
proxy_log=$(docker logs "$PROXY" 2>&1)
grep -q 'caught SIGWINCH, shutting down gracefully' <<< "$proxy_log" || fail "no graceful stop in the proxy log"
say "  in-flight request answered 200, graceful stop in $((SECONDS - t))s, exit code 0"
dc start reverse-proxy 2>&1 | sed 's/^/  /'
wait_healthy reverse-proxy
/usr/bin/python3 "$HERE/checks.py" api-spread "$BASE" 4 || fail "proxy after restart"

# ---- 8. bad variables --------------------------------------------------------------------------
step "bad variables: the proxy exits with the renderer's message"
# As a user would: the variable set in the shell, `docker-compose up -d`
# recreates the proxy with it. (`docker-compose run` cannot be used here:
# podman's API refuses the links compose v1 adds to one-off containers.)
bad_var() {   # NAME VALUE EXPECTED-TEXT
    local id st out end
    env "$1=$2" timeout 120 docker-compose up -d --no-deps reverse-proxy 2>&1 | sed 's/^/  /'
    id=$(container_of reverse-proxy)
    end=$((SECONDS + 30))
    while :; do
        st=$(docker inspect --format '{{.State.ExitCode}} {{.RestartCount}}' "$id")
        out=$(docker logs "$id" 2>&1)
        # Exited with an error at least once, and its message is in the log.
        if [ "${st%% *}" != 0 ] && grep -qF "render-proxy-conf: $3" <<< "$out"; then break; fi
        [ $SECONDS -lt $end ] || fail "$1=$2: no failed exit with the renderer's message '$3' (state: $st): $out"
        sleep 0.5
    done
    [ "${st%% *}" = 2 ] || fail "$1=$2: exit code ${st%% *}, expected 2"
    grep -q 'AH00094\|resuming normal operations' <<< "$out" && fail "$1=$2: httpd started anyway: $out"
    curl -s -o /dev/null --max-time 3 "$BASE/" && fail "$1=$2: the proxy answers anyway"
    say "  $1=$2 -> exit ${st%% *} (restarts so far: ${st#* }): $(grep -m1 -F "render-proxy-conf: $3" <<< "$out")"
    # The restart policy keeps restarting it: stop and remove it before the
    # next one (recreating a container docker is restarting races for the port).
    end=$((SECONDS + 30))
    while [ -n "$(container_of reverse-proxy)" ]; do
        docker rm -f "$(container_of reverse-proxy)" >/dev/null 2>&1 || true
        [ $SECONDS -lt $end ] || fail "could not remove the failing proxy container"
        sleep 0.5
    done
}
bad_var STATIC_APP 'static1:80"' 'STATIC_APP='
bad_var DYNAMIC_APP 'dynamic1:99999' 'DYNAMIC_APP='
bad_var API_PREFIX 'api' 'API_PREFIX='
# Back to the good configuration: recreated, healthy, serving.
timeout 120 docker-compose up -d --no-deps reverse-proxy 2>&1 | sed 's/^/  /'
wait_healthy reverse-proxy
/usr/bin/python3 "$HERE/checks.py" api-spread "$BASE" 4 || fail "proxy after the bad variables"

# ---- 8b. TLS=files: docker-compose.tls-files.yml, certificate and key as secrets ---------------
# The override file as a user runs it, its two secrets pointed at the test's
# own certificate (a third file: the user's ./secrets/tls_*.pem are never
# touched). Then: the site over HTTPS (page and assets from one static
# container, Secure cookie, h2 negotiated), the plain port redirecting to it.
step "TLS=files: docker-compose.tls-files.yml with the test's certificate (secrets)"
TLS_PORT=$(first_free_port $((PORT + 1)) $((PORT + 200))) || fail "no free port for PROXY_TLS_PORT after $PORT"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE \
    -keyout "$WORK/tls_key.pem" -out "$WORK/tls_cert.pem" >/dev/null 2>&1 || fail "openssl req"
chmod 0600 "$WORK/tls_key.pem"
cat > "$WORK/tls-test-secrets.yml" <<YML
version: "3.8"
secrets:
  tls_cert:
    file: $WORK/tls_cert.pem
  tls_key:
    file: $WORK/tls_key.pem
YML
dc_tls() { PROXY_TLS_PORT=$TLS_PORT dc -f docker-compose.yml -f docker-compose.tls-files.yml \
               -f "$WORK/tls-test-secrets.yml" "$@"; }
dc_tls config -q || fail "docker-compose config rejects docker-compose.tls-files.yml"
DC_TIMEOUT=$UP_TIMEOUT dc_tls up -d --no-deps reverse-proxy 2>&1 | sed 's/^/  /'
PROXY=$(container_of reverse-proxy)
wait_healthy reverse-proxy
REQUESTS_CA_BUNDLE=$WORK/tls_cert.pem /usr/bin/python3 "$HERE/checks.py" basic \
    "https://localhost:$TLS_PORT" || fail "HTTPS checks (TLS=files)"
got=$(curl -sS --http2 --cacert "$WORK/tls_cert.pem" -o /dev/null -w '%{http_version} %{http_code}' \
      --max-time 10 "https://localhost:$TLS_PORT/api/healthz") || fail "curl over h2"
[ "$got" = "2 200" ] || fail "https://localhost:$TLS_PORT/api/healthz: expected h2 200, got '$got'"
loc=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' --max-time 10 "$BASE/css/style.css")
# (to the host the client named: $BASE is http://127.0.0.1:PORT)
[ "$loc" = "301 https://127.0.0.1:$TLS_PORT/css/style.css" ] ||
    fail "the plain port: expected a redirect to https://127.0.0.1:$TLS_PORT/css/style.css, got '$loc'"
say "  HTTPS on $TLS_PORT: page and assets sticky, Secure cookie, h2; plain port -> 301 to it"
# back to plain HTTP for what follows
DC_TIMEOUT=$UP_TIMEOUT dc up -d --no-deps reverse-proxy 2>&1 | sed 's/^/  /'
PROXY=$(container_of reverse-proxy)
wait_healthy reverse-proxy
/usr/bin/python3 "$HERE/checks.py" api-spread "$BASE" 4 || fail "proxy back on plain HTTP"

# ---- 8c. TLS=acme: the image puts mod_md's certificates in use by itself ----------------------
# (tests/compose/test_acme_container.py: pebble on loopback ports, the
# reverse-proxy image with --network host; podman: not run, its host network
# is not set up here)
if [ "$ENGINE" = docker ]; then
    step "TLS=acme in the image: first certificate and a renewal put in use by the container"
    SR_PROXY_IMAGE=$(image_of reverse-proxy) timeout 300 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
        "$HERE/test_acme_container.py" 2>&1 | sed 's/^/  /'
    [ "${PIPESTATUS[0]}" = 0 ] || fail "TLS=acme in the image (test_acme_container.py)"
fi

# ---- 9. down ------------------------------------------------------------------------------------
if [ "${COMPOSE_TEST_KEEP:-0}" = 1 ]; then
    say "COMPOSE_TEST_KEEP=1: stack left running on $BASE"
    exit 0
fi
step "docker-compose down"
dc down --volumes --remove-orphans 2>&1 | sed 's/^/  /'
left=$(docker ps -a --format '{{.Names}}' --filter "label=com.docker.compose.project=$PROJECT"; \
       docker ps -a --format '{{.Names}}' | grep "^${PROJECT}_" || true; \
       docker network ls --format '{{.Name}}' | grep "^${PROJECT}_" || true; \
       docker volume ls --format '{{.Name}}' | grep "^${PROJECT}_" || true; \
       docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
[ -z "$left" ] || fail "left behind after down: $left"
say "  no container, network or volume of project $PROJECT left"
