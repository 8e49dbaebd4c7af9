#!/bin/bash
# make test-swarm: docker-compose.yml deployed on a single-node Docker Swarm
# with `docker stack deploy -c docker-compose.yml` (the documented path), two
# proxy replicas, and checks from client containers on the stack's
# attachable frontend network, under a bounded load:
#
#   0. the private engine (tests/docker-engine.sh), `docker swarm init
#      --advertise-addr 127.0.0.1`, the images (docker-compose build, cached in
#      the engine's data-root /tmp/sr-docker/data between runs) and the test
#      client's image (tests/swarm/client.Dockerfile)
#   1. deploy: STATIC_APP=static:80 DYNAMIC_APP=dynamic:3000 (service names
#      without a route: StickyRouteDiscover follows every task; "static" and
#      "dynamic" are network aliases of static1+static2 and dynamic1+dynamic2,
#      endpoint_mode dnsrr), PROXY_REPLICAS=2, INSTANCE_SUFFIX naming each task
#      (X-Served-By: static1.SLOT.TASKID), DISCOVER_MAX=4 (small: without
#      slot reuse the pools would go dark after a few redeploys); the load
#      (tests/swarm/client.py in a client container) starts right after
#      `docker stack deploy` returns, before any task is up
#   2. probe: every replica serves the page, assets, API; admin pages 403
#   3. cookies of one replica are `hit` on the other (response headers, and
#      the decisions in the proxies' access log, `docker logs` of each task)
#   4. the load runs on through: steady; five `docker service update
#      --force` of the static services (rolling, stop-first: static1,
#      static2, static1, static2, static1); scale static1 1 -> 3 -> 1 -> 3;
#      `docker service update --force` of the proxy (rolling, start-first) -
#      judged by tests/swarm/checks.py: zero failed requests from the first
#      request a proxy answered, stickiness, moves only away from removed
#      tasks, new tasks given sessions within two discovery intervals (+ the
#      settle time of a reused slot), no request of a change waiting more
#      than one connect timeout
#   4b. TLS=files (issue 19), the stack deployed again as the docs say:
#      `docker stack deploy -c docker-compose.yml -c docker-compose.tls-files.yml`
#      plus a third file pointing the secrets tls_cert and tls_key at the
#      test's own certificate (openssl: a test CA and a certificate for
#      localhost it signs; ./secrets/tls_*.pem are never touched). Swarm
#      updates the proxy in place (start-first) and static1 back to one task.
#      Checked: two proxy tasks, both TLS=files, the same certificate and key
#      (sha256) in both, the key mode 0400 owned by root; then from client
#      containers over HTTPS on each task's port 443, trusting only the test
#      CA: steps 2 and 3 again (page and assets from one static task, the
#      cookie with Secure, a cookie of one replica `hit` on the other, in
#      the access log too), h2 negotiated by ALPN, the plain port a 301 to
#      https://localhost:PROXY_TLS_PORT/PATH except the ACME challenge path;
#      a load over HTTPS (client.py --https) across a rolling update of
#      static1, judged as step 4 (checks.py load ... tls): zero failed
#      requests (a failed handshake or a Set-Cookie without Secure is one),
#      stickiness, moves only away from the removed task. About 2 minutes.
#   5. published ports: the host address of PROXY_BIND is ignored by Swarm;
#      ingress mode does not answer on 127.0.0.1 here (no ip_vs), mode: host
#      does (a throwaway service)
#   6. docker stack rm: no service, container, network or secret of the stack
#      (sticky_route_secret, tls_cert, tls_key) left; the swarm is left and
#      the engine stopped (also on failure)
#
# The whole run is bounded: SWARM_TEST_TIMEOUT seconds (default 1200, image
# builds included; a first run builds for 3-4 minutes, later runs reuse the
# images in /tmp/sr-docker/data). Environment: SWARM_TEST_STACK (default
# srswarm), SWARM_TEST_KEEP=1 (on success leave the stack, the swarm and the
# engine running for a look: DOCKER_HOST=unix:///tmp/sr-docker/docker.sock;
# the next test run adopts and stops the engine), DISCOVER_INTERVAL (2),
# SWARM_TEST_DISCOVER_MAX (4).
#
# Reaching the proxies: the Swarm routing mesh and service VIPs need ip_vs,
# which these machines do not have, so clients reach every proxy task by its
# own address (tasks.reverse-proxy) from the attachable frontend network.
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sr_init swarm-test    # set -euo pipefail, LC_ALL=C, REPO, cd "$REPO"
HERE=$REPO/tests/swarm
# shellcheck source=tests/docker-engine.sh
. "$REPO/tests/docker-engine.sh"

TOTAL=${SWARM_TEST_TIMEOUT:-1200}
LOCK_WAIT=${SR_DOCKER_LOCK_WAIT:-1200}

# One test at a time on the private engine, then the whole run under a
# watchdog: SIGTERM after TOTAL - 120 s runs the cleanup below, which has
# 120 s (typically 30) before SIGKILL.
if [ -z "${SR_SWARM_TEST_INNER:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "swarm-test: needs root (a private dockerd)" >&2; exit 1; }
    [ -n "${SR_DOCKER_HOST:-}" ] || engine_lock "$LOCK_WAIT" || exit 1
    export SR_SWARM_TEST_INNER=1
    exec timeout -k 120 "$((TOTAL - 120))" bash "${BASH_SOURCE[0]}" "$@"
fi

STACK=${SWARM_TEST_STACK:-srswarm}
INTERVAL=${DISCOVER_INTERVAL:-2}
DMAX=${SWARM_TEST_DISCOVER_MAX:-4}
CLIENT_IMAGE=sr-swarm-test/client:latest
T0=$SECONDS
STEP_T0=$SECONDS

now() { date +%s.%N; }
# Long commands run as a background job that the script waits for: a signal
# (the watchdog's SIGTERM) interrupts `wait` at once and runs the cleanup,
# where a foreground command would delay the trap until it returns.
bg() { "$@" & wait $!; }
EVENTS=events.jsonl    # the events file of the load running (the TLS phase: its own)
event() { printf '{"t": %s, "event": "%s"}\n' "$(now)" "$1" >> "$WORK/$EVENTS"; }
# What the client containers are given: nothing (plain HTTP), or in the TLS
# phase --https CAFILE; TAG names their files (probe$TAG.json, load$TAG.json...).
HTTPS_ARGS=() TAG=''
load_start() {   # MAX_S: the load client (tests/swarm/client.py load), in the background
    docker run -d --name "$STACK-load$TAG" --label "sr-swarm-test=$STACK" --network "${STACK}_frontend" \
        -v "$WORK:/out" "$CLIENT_IMAGE" "${HTTPS_ARGS[@]}" load "/out/load$TAG.json" "/out/stop$TAG" "$1" \
        >/dev/null
}
load_stop() {   # the `end` event; stops the load client and waits for its results
    local end=$((SECONDS + 60))
    event end
    touch "$WORK/stop$TAG"
    while [ ! -s "$WORK/load$TAG.json" ]; do
        [ $SECONDS -lt $end ] || fail "the load client did not write its results"
        sleep 1
    done
    docker logs "$STACK-load$TAG" 2>&1 | sed 's/^/  /'
}

# ---- prerequisites --------------------------------------------------------------
missing=()
for c in /usr/bin/docker /usr/sbin/dockerd docker-compose debootstrap curl timeout flock ss; do
    command -v "$c" >/dev/null || missing+=("$c")
done
[ ${#missing[@]} -eq 0 ] || fail "missing: ${missing[*]} (make deps installs them)"
[[ $INTERVAL =~ ^[1-9][0-9]?$ ]] || fail "DISCOVER_INTERVAL=$INTERVAL: expected 1-99 seconds"
[[ $DMAX =~ ^[4-9]$|^[1-9][0-9]+$ ]] || fail "SWARM_TEST_DISCOVER_MAX=$DMAX: expected 4 or more (static tasks alive at once)"

# The stack's variables: what this test deploys, whatever the shell says.
unset SERVER_NAME API_PREFIX ADMIN_ALLOW IMAGE_PREFIX IMAGE_TAG STICKY_MAX_IDLE STICKY_MAX_LIFE \
      STICKY_ELECT STICKY_SLOW_START STICKY_REBALANCE DISCOVER_MAX DISCOVER_HOLD DISCOVER_WAIT
# DISCOVER_MAX=4: the static tasks alive at once at most (static1 x3 +
# static2); the stack's defaults for DISCOVER_HOLD (10) and DISCOVER_WAIT (10).
export STATIC_APP=static:80 DYNAMIC_APP=dynamic:3000 PROXY_REPLICAS=2 \
       INSTANCE_SUFFIX='.{{.Task.Slot}}.{{.Task.ID}}' DISCOVER_INTERVAL=$INTERVAL \
       DISCOVER_MAX=$DMAX PROXY_BIND=127.0.0.1
PROXY_PORT=$(first_free_port 18280 18379 3) || fail "no three free ports in 18280-18381"
HOSTMODE_PORT=$((PROXY_PORT + 1))
# the published HTTPS port of the TLS phase (step 4b): the port its redirects name
TLS_PORT=$((PROXY_PORT + 2))
export PROXY_PORT

# ---- cleanup on any exit ----------------------------------------------------------
WORK=$(mktemp -d /tmp/sr-swarm-test.XXXXXX)
ENGINE_UP=0 SWARM_OURS=0 DNS_WATCH_PID=''
: > "$WORK/events.jsonl"

stack_left() {   # what is left of the stack (names), empty when nothing
    docker service ls -q --filter "label=com.docker.stack.namespace=$STACK" 2>/dev/null
    docker service ls --format '{{.Name}}' 2>/dev/null | grep -x "${STACK}-hostmode" || true
    docker ps -aq --filter "label=com.docker.stack.namespace=$STACK" 2>/dev/null
    docker ps -aq --filter "label=sr-swarm-test=$STACK" 2>/dev/null
    docker network ls -q --filter "label=com.docker.stack.namespace=$STACK" 2>/dev/null
    docker secret ls -q --filter "label=com.docker.stack.namespace=$STACK" 2>/dev/null
}
teardown() {   # bounded; returns 1 when something is left
    local ids end
    ids=$(docker ps -aq --filter "label=sr-swarm-test=$STACK" 2>/dev/null)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || timeout 60 docker rm -f $ids >/dev/null 2>&1
    timeout 60 docker service rm "${STACK}-hostmode" >/dev/null 2>&1
    timeout 60 docker stack rm "$STACK" >/dev/null 2>&1
    end=$((SECONDS + 90))
    while [ -n "$(stack_left)" ] && [ $SECONDS -lt $end ]; do sleep 1; done
    [ -z "$(stack_left)" ]
}
diagnostics() {
    say "---- diagnostics"
    timeout 20 docker service ls 2>&1 | sed 's/^/  /'
    timeout 20 docker stack ps "$STACK" --no-trunc --format '{{.Name}} {{.CurrentState}} {{.DesiredState}} {{.Error}}' 2>&1 | head -40 | sed 's/^/  /'
    timeout 30 docker service logs --tail 30 "${STACK}_reverse-proxy" 2>&1 | grep -v -e '"GET ' | tail -n 40 | sed 's/^/  /'
}
# The script's own output, for the cleanup: a signal can run it while a
# command's output is redirected (the trap runs in that context).
exec 3>&1 4>&2
cleanup() {
    local rc=$? j
    trap - EXIT INT TERM
    set +e
    exec 1>&3 2>&4
    # Background jobs still running (interrupted by a signal): theirs end too.
    for j in $(jobs -p); do kill "$j" 2>/dev/null; done
    if [ "$ENGINE_UP" = 1 ]; then
        [ $rc = 0 ] || diagnostics
        if [ $rc = 0 ] && [ "${SWARM_TEST_KEEP:-0}" = 1 ]; then
            say "SWARM_TEST_KEEP=1: stack $STACK, the swarm and the engine left running:" \
                "DOCKER_HOST=$DOCKER_HOST (the next test run adopts and stops the engine)"
            ENGINE_OWNED=0
        else
            teardown || say "left after docker stack rm: $(stack_left | tr '\n' ' ')"
            if [ "$SWARM_OURS" = 1 ]; then
                timeout 60 docker swarm leave --force >/dev/null 2>&1 || say "docker swarm leave failed"
                timeout 30 docker network rm docker_gwbridge >/dev/null 2>&1
            fi
        fi
    fi
    engine_stop
    wait 2>/dev/null
    if [ $rc = 0 ]; then
        rm -rf "$WORK"
        say "PASS in $((SECONDS - T0))s"
    else
        say "FAILED (exit $rc) after $((SECONDS - T0))s; files in $WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 143' INT TERM

# ---- 0. engine, swarm, images --------------------------------------------------------
step "Docker Engine"
engine_start || fail "no Docker engine"
ENGINE_UP=1
# (engine_start leaves a swarm a killed run left on the private engine.)
state=$(docker info --format '{{.Swarm.LocalNodeState}}')
[ "$state" = inactive ] || fail "the engine at $DOCKER_HOST is in a swarm already ($state): not touching it"
SWARM_OURS=1
timeout 60 docker swarm init --advertise-addr 127.0.0.1 >/dev/null || fail "docker swarm init"
say "  single-node swarm: $(docker info --format '{{.Swarm.LocalNodeState}} node {{.Swarm.NodeID}}')"

step "images"
BASE_ENGINE=docker bash "$REPO/tests/compose/make-base-image.sh"
make_secret secrets/sticky_route_secret
# The three images at once (static2 and dynamic2 share static1's and dynamic1's).
if ! COMPOSE_PROJECT_NAME=$STACK bg timeout 900 docker-compose build --parallel reverse-proxy static1 dynamic1 \
        >"$WORK/build.log" 2>&1; then
    tail -n 60 "$WORK/build.log" >&2
    fail "docker-compose build"
fi
grep -E '^Successfully tagged' "$WORK/build.log" | sed 's/^/  /'
# The client's context: client.py and the retry rule it shares with tests/faults.
mkdir "$WORK/client-context"
cp "$HERE/client.py" "$REPO/tests/httpretry.py" "$WORK/client-context/"
if ! bg timeout 600 docker build -q -t "$CLIENT_IMAGE" -f "$HERE/client.Dockerfile" "$WORK/client-context" >"$WORK/client-build.log" 2>&1; then
    cat "$WORK/client-build.log" >&2
    fail "client image"
fi
say "  images ready in $((SECONDS - STEP_T0))s"

# ---- 1. deploy -----------------------------------------------------------------------------
step "docker stack deploy -c docker-compose.yml $STACK, the load from its first second"
rm -f "$WORK/stop"
event deploy
bg timeout 120 docker stack deploy -c docker-compose.yml "$STACK" >"$WORK/deploy.log" 2>&1 ||
    { cat "$WORK/deploy.log" >&2; fail "docker stack deploy"; }
# The load starts at once (the stack's networks exist, no task is up yet):
# the clients send from the moment a proxy task is in DNS, and every request
# from then on must be answered (the proxies wait for their first members:
# DISCOVER_WAIT). It runs until the end of step 4.
load_start "$((TOTAL - 180))" || fail "load client"
say "  load client started $(awk -v a="$(head -n 1 "$WORK/events.jsonl" | sed 's/.*"t": \([0-9.]*\).*/\1/')" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}') s after the deploy began"
sed 's/^/  /' "$WORK/deploy.log"
# PROXY_BIND under Swarm: the CLI drops the host address (see README).
grep -q "ignoring IP-address (127.0.0.1:$PROXY_PORT:80/tcp)" "$WORK/deploy.log" ||
    fail "docker stack deploy did not say it ignores PROXY_BIND's address"

replicas_of() { docker service ls --filter "name=${STACK}_$1" --format '{{.Name}} {{.Replicas}}' | awk -v n="${STACK}_$1" '$1==n {print $2}'; }
wait_converged() {   # SECONDS service=replicas...
    local end=$((SECONDS + $1)) s want got pending
    shift
    while :; do
        pending=()
        for s in "$@"; do
            want=${s#*=}
            got=$(replicas_of "${s%%=*}")
            [ "$got" = "$want/$want" ] || pending+=("${s%%=*}:$got")
            # Exactly the wanted number of tasks running (none left shutting down).
            [ "$(docker service ps -q --filter desired-state=running --filter "name=${STACK}_${s%%=*}" "${STACK}_${s%%=*}" 2>/dev/null | wc -l)" = "$want" ] ||
                pending+=("${s%%=*}:tasks")
        done
        [ ${#pending[@]} -eq 0 ] && return 0
        [ $SECONDS -lt $end ] || fail "not converged after ${1}s: ${pending[*]}"
        sleep 1
    done
}
wait_converged 240 reverse-proxy=2 static1=1 static2=1 dynamic1=1 dynamic2=1
say "  all services converged in $((SECONDS - STEP_T0))s (tasks are running once healthy)"

# Tasks of a service as JSON lines: id, slot, desired state, addresses.
tasks_json() {   # service...
    local s id
    for s in "$@"; do
        for id in $(docker service ps -q --no-trunc "${STACK}_$s" 2>/dev/null); do
            docker inspect --format "{\"service\": \"$s\", \"id\": \"{{.ID}}\", \"slot\": {{.Slot}}, \"created\": {{.CreatedAt.Unix}}, \"desired\": \"{{.DesiredState}}\", \"state\": \"{{.Status.State}}\", \"backend_ip\": \"{{range .NetworksAttachments}}{{if eq .Network.Spec.Name \"${STACK}_backend\"}}{{index .Addresses 0}}{{end}}{{end}}\", \"frontend_ip\": \"{{range .NetworksAttachments}}{{if eq .Network.Spec.Name \"${STACK}_frontend\"}}{{index .Addresses 0}}{{end}}{{end}}\"}" "$id" 2>/dev/null
        done
    done | sed 's#/[0-9]*"#"#g'
}
save_tasks() {   # FILE
    {
        echo '{"static": ['
        tasks_json static1 static2 | paste -sd, -
        echo '], "proxy": ['
        tasks_json reverse-proxy | paste -sd, -
        echo ']}'
    } > "$1"
}
proxy_containers() { docker ps -q --filter "label=com.docker.swarm.service.name=${STACK}_reverse-proxy"; }
# The proxies' own status page, from inside a task (ADMIN_ALLOW 127.0.0.1):
# over HTTPS in the TLS phase (the plain port only redirects then).
STATUS_URL="http://127.0.0.1/sticky-route-status?json"
status_of() {   # CONTAINER -> /sticky-route-status?json
    docker exec "$1" curl -kfsS --max-time 5 "$STATUS_URL"
}
static_summary() {   # status JSON on stdin -> one line about the static members
    /usr/bin/python3 -c '
import collections, json, sys
m = [x for x in json.load(sys.stdin)["members"] if x["balancer"] == "static"]
routes = collections.Counter(x["route"] for x in m)
print("%d static members, %d up, routes %s" % (len(m), sum(1 for x in m if x["up"] == 1),
      ", ".join("%s x%d" % (r, n) if n > 1 else r for r, n in sorted(routes.items()))))'
}
client() {   # NAME ARGS...: runs the test client on the frontend network
    local name=$1
    shift
    bg timeout 120 docker run --rm --name "$STACK-$name" --label "sr-swarm-test=$STACK" \
        --network "${STACK}_frontend" -v "$WORK:/out" "$CLIENT_IMAGE" "$@"
}

dns_watch() {   # LOG: DNS as a proxy task sees it, every 0.25 s (bounded)
    docker exec "$(proxy_containers | head -n 1)" bash -c "end=\$((SECONDS + $TOTAL)); while [ \$SECONDS -lt \$end ]; do
        echo \"\$(date +%s.%N) \$(getent ahostsv4 static | awk '{print \$1}' | sort -u | tr '\n' ' ')\"
        sleep 0.25; done" > "$1" 2>/dev/null &
    DNS_WATCH_PID=$!
}
dns_watch_stop() {
    kill "$DNS_WATCH_PID" 2>/dev/null; wait "$DNS_WATCH_PID" 2>/dev/null || true
    DNS_WATCH_PID=''
}
P1=$(proxy_containers | head -n 1)
# (until the proxy update)
dns_watch "$WORK/dns.log"
docker exec "$P1" grep -E 'StickyRouteDiscover|BalancerMember' /etc/apache2/sites-available/sticky-route.conf |
    sed 's/^ */  config: /'
docker exec "$P1" grep -q 'StickyRouteDiscover "http://static:80"' /etc/apache2/sites-available/sticky-route.conf ||
    fail "the proxy does not discover static:80 (STATIC_APP=static:80)"

# (Steps 2 and 3 run over HTTPS again in the TLS phase.)
# ---- 2. probe -------------------------------------------------------------------------------
probe_replicas() {
    # Both replicas must have discovered both static tasks.
    local c end=$((SECONDS + 30))
    for c in $(proxy_containers); do
        until status_of "$c" 2>/dev/null | /usr/bin/python3 -c '
import json, sys
m = [x for x in json.load(sys.stdin)["members"] if x["balancer"] == "static" and x["up"] == 1]
sys.exit(0 if len(m) == 2 else 1)'; do
            [ $SECONDS -lt $end ] || fail "proxy $c: not exactly two static members up after 30s: $(status_of "$c" | static_summary)"
            sleep 1
        done
    done
    client "probe$TAG" "${HTTPS_ARGS[@]}" probe "/out/probe$TAG.json" | sed 's/^/  /' || fail "probe client"
    /usr/bin/python3 "$HERE/checks.py" probe "$WORK/probe$TAG.json" || fail "probe"
}
step "probe every proxy replica (tasks.reverse-proxy) from a client container"
probe_replicas

# ---- 3. cookies across replicas ---------------------------------------------------------------
cross_replicas() {
    local mark since c tname
    save_tasks "$WORK/tasks0$TAG.json"
    mark=x$RANDOM$RANDOM
    since=$(date -u +%Y-%m-%dT%H:%M:%SZ -d '-5 sec')
    client "cross$TAG" "${HTTPS_ARGS[@]}" cross "/out/cross$TAG.json" 20 "$mark" || fail "cross client"
    sleep 2   # the access log reaches the container's log
    # Each proxy task's own log, prefixed as `docker service logs` would
    # (TASK_NAME@NODE | LINE). (`docker service logs` streams through the
    # manager: with the load running since the deploy it is too slow here.)
    for c in $(proxy_containers); do
        tname=$(docker inspect --format '{{index .Config.Labels "com.docker.swarm.task.name"}}' "$c")
        timeout 60 docker logs --since "$since" "$c" 2>/dev/null | grep -F "sr-mark=$mark" |
            sed "s/^/$tname@local | /" || true
    done > "$WORK/cross$TAG.log"
    /usr/bin/python3 "$HERE/checks.py" cross "$WORK/cross$TAG.json" "$WORK/cross$TAG.log" "$WORK/tasks0$TAG.json" ||
        fail "cookies across replicas"
    say "  e.g. $(head -n 2 "$WORK/cross$TAG.log" | cut -c1-200 | tr '\n' ' ')"
}
step "a cookie issued by one replica is a hit on the other"
cross_replicas

# ---- 4. load through scaling and rolling updates -------------------------------------------------
step "load: steady"
sleep 2
event steady
sleep 6

settle() { sleep $((2 * INTERVAL + 3)); }
snapshot() {   # NAME: status of every proxy replica
    local c i=0
    for c in $(proxy_containers); do
        i=$((i + 1))
        status_of "$c" > "$WORK/status-$1-$i.json" 2>/dev/null || true
    done
}
members_line() {   # NAME: a one-line summary of the static members per replica
    local f
    for f in "$WORK"/status-"$1"-*.json; do
        static_summary < "$f" 2>/dev/null | tr '\n' ';'
    done
    echo
}
tasks_files=$WORK/tasks0.json
after_change() {   # NAME: settle, then the proxies' view and the tasks
    settle
    snapshot "$1"
    save_tasks "$WORK/tasks-$1.json"
    tasks_files+=",$WORK/tasks-$1.json"
    say "  proxies: $(members_line "$1")"
}

# Five rolling updates, alternating the two static services (one task each:
# every update replaces a task, stop-first, so the other service's task
# serves meanwhile). Each new task has a new address: without slot reuse,
# DISCOVER_MAX=4 would have been used up by the third.
for i in 1 2 3 4 5; do
    svc=static$((2 - i % 2))
    step "rolling update $i of 5: $svc (docker service update --force, stop-first) under load"
    event "update-$i"
    bg timeout 180 docker service update --force --detach=false "${STACK}_$svc" >/dev/null 2>&1 ||
        fail "docker service update --force ${STACK}_$svc"
    wait_converged 120 "$svc=1"
    say "  updated in $((SECONDS - STEP_T0))s"
    after_change "update-$i"
done

scale_static1() {   # EVENT REPLICAS CONVERGE-SECONDS STEP-TITLE
    step "$4"
    event "$1"
    bg timeout 180 docker service scale "${STACK}_static1=$2" >/dev/null 2>&1 || fail "docker service scale ${STACK}_static1=$2"
    wait_converged "$3" "static1=$2"
    say "  converged in $((SECONDS - STEP_T0))s"
    after_change "$1"
}
scale_static1 scale-up 3 180 "scale static1 1 -> 3 (no proxy restart)"
scale_static1 scale-down 1 120 "scale static1 3 -> 1"
scale_static1 scale-up-again 3 180 "scale static1 1 -> 3 again (the slots of the removed tasks are reused)"
dns_watch_stop

step "rolling update of the proxy (start-first) under load"
save_tasks "$WORK/tasks-before-proxy.json"
tasks_files+=",$WORK/tasks-before-proxy.json"
event proxy-update
bg timeout 300 docker service update --force --detach=false "${STACK}_reverse-proxy" >/dev/null 2>&1 ||
    fail "docker service update --force ${STACK}_reverse-proxy"
wait_converged 120 reverse-proxy=2
say "  updated in $((SECONDS - STEP_T0))s"
sleep 5
load_stop
save_tasks "$WORK/tasks.json"
tasks_files+=",$WORK/tasks.json"
/usr/bin/python3 "$HERE/checks.py" load "$WORK/load.json" "$WORK/events.jsonl" "$tasks_files" \
    "$WORK/dns.log" "$INTERVAL" "$WORK/report.txt" || fail "load through scaling and rolling updates"

# ---- 4b. TLS=files: the stack redeployed with the TLS override ---------------------------------
# As the docs say to (docs/COMPOSE.md, HTTPS): docker-compose.yml +
# docker-compose.tls-files.yml, and a third file pointing the two secrets at
# the test's own certificate (the user's ./secrets/tls_*.pem are never
# touched). `docker stack deploy` again updates the services in place: the
# proxy (rolling, start-first) and static1 back to its file's one replica.
step "TLS=files: docker stack deploy -c docker-compose.yml -c docker-compose.tls-files.yml (the test's CA and certificate, Swarm secrets)"
TLS_T0=$SECONDS
TLS_DIR=$WORK/tls
mkdir "$TLS_DIR"
# A test CA (its key thrown away with $WORK) and a certificate for
# SERVER_NAME (localhost) it signs; the clients trust only the CA.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=sticky-route swarm test CA" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" >/dev/null 2>&1 || fail "openssl: the test CA"
(umask 077; openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
    -keyout "$TLS_DIR/tls_key.pem" -out "$TLS_DIR/tls.csr" >/dev/null 2>&1) || fail "openssl: the key"
printf '%s\n' subjectAltName=DNS:localhost basicConstraints=critical,CA:FALSE \
    keyUsage=critical,digitalSignature extendedKeyUsage=serverAuth > "$TLS_DIR/ext.cnf"
openssl x509 -req -in "$TLS_DIR/tls.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days 2 -extfile "$TLS_DIR/ext.cnf" \
    -out "$TLS_DIR/tls_cert.pem" >/dev/null 2>&1 || fail "openssl: the certificate"
openssl verify -CAfile "$TLS_DIR/ca.pem" "$TLS_DIR/tls_cert.pem" >/dev/null || fail "openssl verify"
{
    echo 'version: "3.8"'
    echo 'secrets:'
    for s in tls_cert tls_key; do printf '  %s:\n    file: %s\n' "$s" "$TLS_DIR/$s.pem"; done
} > "$TLS_DIR/secrets.yml"
running_tasks() {   # the running tasks of the services that the TLS file leaves alone
    local s
    for s in static2 dynamic1 dynamic2; do
        docker service ps -q --filter desired-state=running "${STACK}_$s"
    done | sort | tr '\n' ' '
}
untouched=$(running_tasks)
PROXY_TLS_PORT=$TLS_PORT bg timeout 120 docker stack deploy -c docker-compose.yml \
    -c docker-compose.tls-files.yml -c "$TLS_DIR/secrets.yml" "$STACK" >"$WORK/deploy-tls.log" 2>&1 ||
    { cat "$WORK/deploy-tls.log" >&2; fail "docker stack deploy with docker-compose.tls-files.yml"; }
sed 's/^/  /' "$WORK/deploy-tls.log"
for s in tls_cert tls_key; do
    grep -q "^Creating secret ${STACK}_$s\$" "$WORK/deploy-tls.log" || fail "no Swarm secret ${STACK}_$s created"
done
# Converged: exactly two proxy tasks, both running TLS=files (the update
# replaced both; with failure_action rollback a failed one would be back
# to plain HTTP), and static1 back to one task.
tls_proxies() {   # the running proxy containers, and those with TLS=files
    local c all=0 tls=0
    for c in $(proxy_containers); do
        all=$((all + 1))
        docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$c" 2>/dev/null |
            grep -qx TLS=files && tls=$((tls + 1))
    done
    echo "$all $tls"
}
end=$((SECONDS + 240))
until [ "$(tls_proxies)" = "2 2" ]; do
    [ $SECONDS -lt $end ] || fail "the proxy not updated to TLS=files after 240s (running, with TLS: $(tls_proxies))"
    sleep 1
done
wait_converged 120 reverse-proxy=2 static1=1 static2=1 dynamic1=1 dynamic2=1
say "  the proxy updated in place (start-first) and converged in $((SECONDS - STEP_T0))s"
[ "$(running_tasks)" = "$untouched" ] ||
    fail "the redeploy replaced tasks of static2, dynamic1 or dynamic2: '$untouched' -> '$(running_tasks)'"
say "  static2, dynamic1, dynamic2: the same tasks as before"
# The same certificate and key in every replica, root's, the key mode 0400.
want="444 0 400 0 $(sha256sum < "$TLS_DIR/tls_cert.pem" | cut -d' ' -f1) $(sha256sum < "$TLS_DIR/tls_key.pem" | cut -d' ' -f1)"
for c in $(proxy_containers); do
    got=$(docker exec "$c" sh -c 'echo $(stat -L -c "%a %u" /run/secrets/tls_cert /run/secrets/tls_key) $(sha256sum < /run/secrets/tls_cert | cut -d" " -f1) $(sha256sum < /run/secrets/tls_key | cut -d" " -f1)')
    [ "$got" = "$want" ] || fail "proxy $c: /run/secrets/tls_cert and tls_key: modes, owners, sha256: '$got', expected '$want'"
done
say "  both replicas: /run/secrets/tls_cert (0444) and tls_key (0400), owner root, the test's (same sha256)"

# Steps 2 and 3 again, over HTTPS (port 443 of each task, trusting only the
# test's CA): the page and its assets from one static task, the cookie
# with Secure, a cookie of one replica `hit` on the other.
STATUS_URL="https://127.0.0.1/sticky-route-status?json"
HTTPS_ARGS=(--https /out/tls/ca.pem) TAG=-tls
dns_watch "$WORK/dns-tls.log"
step "TLS: probe every replica over HTTPS, h2 by ALPN, the plain port"
probe_replicas
client tls "${HTTPS_ARGS[@]}" tls /out/tls.json "$TLS_PORT" >/dev/null || fail "tls client"
/usr/bin/python3 "$HERE/checks.py" tls "$WORK/tls.json" || fail "h2, redirects"
step "TLS: a cookie issued by one replica is a hit on the other (HTTPS)"
cross_replicas

# A short load over HTTPS across a rolling update of static1, judged by the
# same rules as step 4 (checks.py load ... tls).
step "TLS: load over HTTPS, a rolling update of static1 (stop-first)"
EVENTS=events-tls.jsonl
: > "$WORK/$EVENTS"
save_tasks "$WORK/tasks-tls-before.json"
event tls-start
load_start 240 || fail "TLS load client"
sleep 6
event tls-steady
sleep 6
event tls-update
bg timeout 180 docker service update --force --detach=false "${STACK}_static1" >/dev/null 2>&1 ||
    fail "docker service update --force ${STACK}_static1"
wait_converged 120 static1=1
say "  updated in $((SECONDS - STEP_T0))s"
settle
snapshot tls-update
say "  proxies: $(members_line tls-update)"
load_stop
dns_watch_stop
save_tasks "$WORK/tasks-tls.json"
/usr/bin/python3 "$HERE/checks.py" load "$WORK/load-tls.json" "$WORK/$EVENTS" \
    "$WORK/tasks-tls-before.json,$WORK/tasks-tls.json" "$WORK/dns-tls.log" "$INTERVAL" \
    "$WORK/report-tls.txt" tls || fail "load over HTTPS through a rolling update"
say "  TLS=files phase: $((SECONDS - TLS_T0))s"

# ---- 5. published ports -----------------------------------------------------------------------------
step "published ports"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$PROXY_PORT/" || true)
say "  ingress mode (the stack's port $PROXY_PORT): 127.0.0.1 answers '${code}' (no routing mesh here: expected nothing)"
bg timeout 120 docker service create --detach=false -q --name "${STACK}-hostmode" \
    --publish "mode=host,target=80,published=$HOSTMODE_PORT" --env INSTANCE_NAME=hostmode \
    --label "sr-swarm-test=$STACK" sticky-route/static:latest >/dev/null 2>&1 ||
    fail "a service publishing in host mode did not start"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$HOSTMODE_PORT/css/style.css" || true)
[ "$code" = 200 ] || fail "mode: host port $HOSTMODE_PORT: 127.0.0.1 answers '$code', expected 200"
say "  mode: host (a throwaway service on port $HOSTMODE_PORT): 127.0.0.1 answers 200"
timeout 60 docker service rm "${STACK}-hostmode" >/dev/null

# ---- 6. teardown --------------------------------------------------------------------------------------
if [ "${SWARM_TEST_KEEP:-0}" = 1 ]; then
    exit 0
fi
step "docker stack rm $STACK"
teardown || fail "left after docker stack rm: $(stack_left | tr '\n' ' ')"
say "  no service, container, network or secret of $STACK left"
timeout 60 docker swarm leave --force >/dev/null || fail "docker swarm leave"
SWARM_OURS=0
# The bridge Swarm made for its containers' outside traffic (and its iptables rules).
timeout 30 docker network rm docker_gwbridge >/dev/null 2>&1 || true
left=$(docker network ls --format '{{.Name}}' | grep -x -e "${STACK}_.*" -e ingress -e docker_gwbridge || true)
[ -z "$left" ] || fail "networks left after leaving the swarm: $left"
say "  left the swarm; no ingress, docker_gwbridge or stack network left"
say "report:"
sed 's/^/  /' "$WORK/report.txt"
say "report of the TLS=files phase:"
sed 's/^/  /' "$WORK/report-tls.txt"
cat "$WORK/report.txt" "$WORK/report-tls.txt" > /tmp/sr-swarm-test-report.txt
