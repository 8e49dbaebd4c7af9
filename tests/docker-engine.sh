# shellcheck shell=bash
# A private Docker Engine for the container tests (tests/compose/run.sh,
# tests/swarm/run.sh). Sourced, not run.
#
# Debian's docker.io (20.10) started by hand on fixed private paths under
# /tmp - never through systemd, never touching /etc:
#
#   $SR_DOCKER_DIR (default /tmp/sr-docker)
#     docker.sock  the API socket (DOCKER_HOST=unix://.../docker.sock)
#     data/        --data-root: images and build cache, KEPT between runs so
#                  that a second run does not rebuild (rm -rf it to start over)
#     exec/        --exec-root (containerd's state and sockets)
#     docker.pid   --pidfile
#     docker.log   the daemon's log (appended)
#     lock         flock: one test at a time uses the engine
#
#   engine_lock SECONDS   takes the lock on fd 9 (waits at most SECONDS);
#                         call it before anything else, and keep fd 9 open
#   engine_start          starts the engine, or adopts one a killed run left
#                         (same paths, our exact command line, answering,
#                         and we hold the lock: nobody else can be using it);
#                         leaves a swarm a killed run left; exports DOCKER_HOST
#   engine_stop           stops it (the test's trap calls it on any exit)
#
# SR_DOCKER_HOST=unix:///var/run/docker.sock (say) uses an engine you run
# yourself instead: nothing is started or stopped then.
#
# The docker CLI used is Debian's /usr/bin/docker (matching the 20.10
# engine), whatever else is first on PATH (e.g. a newer /usr/local/bin/docker).

SR_DOCKER_DIR=${SR_DOCKER_DIR:-/tmp/sr-docker}
SR_DOCKERD=/usr/sbin/dockerd
ENGINE_SOCK=$SR_DOCKER_DIR/docker.sock
ENGINE_PIDFILE=$SR_DOCKER_DIR/docker.pid
ENGINE_LOG=$SR_DOCKER_DIR/docker.log
ENGINE_OWNED=0          # 1: engine_stop stops it

docker() { /usr/bin/docker "$@"; }
export -f docker 2>/dev/null || true
# docker-compose must build through the engine's API, not a docker CLI on PATH.
unset COMPOSE_DOCKER_CLI_BUILD DOCKER_BUILDKIT DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH

engine_say() { echo "docker-engine: $*"; }

engine_lock() {   # SECONDS
    mkdir -p "$SR_DOCKER_DIR"
    exec 9>>"$SR_DOCKER_DIR/lock"
    if ! flock -n 9; then
        engine_say "another test holds $SR_DOCKER_DIR/lock; waiting up to $1s"
        flock -w "$1" 9 || { engine_say "lock still held after $1s" >&2; return 1; }
    fi
}

# The engine's command line, exactly.
engine_args() {
    printf '%s\0' "$SR_DOCKERD" --host "unix://$ENGINE_SOCK" \
        --data-root "$SR_DOCKER_DIR/data" --exec-root "$SR_DOCKER_DIR/exec" \
        --pidfile "$ENGINE_PIDFILE"
}

engine_ping() {
    curl -fsS --max-time 3 --unix-socket "$ENGINE_SOCK" http://docker/_ping >/dev/null 2>&1
}

# Pid of our engine when it runs (pid file + exact command line), else empty.
engine_pid() {
    local pid
    [ -s "$ENGINE_PIDFILE" ] || return 0
    pid=$(cat "$ENGINE_PIDFILE" 2>/dev/null) || return 0
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    if cmp -s "/proc/$pid/cmdline" <(engine_args); then
        echo "$pid"
    fi
}

engine_start() {
    local pid other p i
    if [ -n "${SR_DOCKER_HOST:-}" ]; then
        export DOCKER_HOST=$SR_DOCKER_HOST
        engine_say "using the engine at $DOCKER_HOST (SR_DOCKER_HOST): not started or stopped here"
        docker version --format 'engine {{.Server.Version}}' >/dev/null ||
            { engine_say "no engine answers at $DOCKER_HOST" >&2; return 1; }
        return 0
    fi
    { [ -x "$SR_DOCKERD" ] && [ -x /usr/bin/docker ]; } ||
        { engine_say "Debian's docker.io is not installed (make deps)" >&2; return 1; }
    mkdir -p "$SR_DOCKER_DIR/data" "$SR_DOCKER_DIR/exec"
    export DOCKER_HOST=unix://$ENGINE_SOCK
    pid=$(engine_pid)
    # Another engine on this machine would share docker0, the iptables
    # chains and the default address pools with ours: both would break.
    other=''
    for p in $(pgrep -x dockerd); do
        [ "$p" = "$pid" ] || other+="$p($(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)) "
    done
    if [ -n "$other" ]; then
        engine_say "another dockerd runs on this machine: $other" >&2
        engine_say "two engines would fight over docker0 and iptables; stop it, or point SR_DOCKER_HOST at it" >&2
        return 1
    fi
    if [ -n "$pid" ]; then
        if engine_ping; then
            engine_say "adopting the engine a previous run left (pid $pid, $SR_DOCKER_DIR)"
            ENGINE_OWNED=1
            engine_tidy
            return 0
        fi
        engine_say "the engine a previous run left (pid $pid) does not answer: stopping it"
        ENGINE_OWNED=1
        engine_stop
    fi
    rm -f "$ENGINE_PIDFILE" "$ENGINE_SOCK"
    engine_say "starting dockerd (data-root $SR_DOCKER_DIR/data, log $ENGINE_LOG)"
    echo "---- $(date -u '+%Y-%m-%dT%H:%M:%SZ') start" >> "$ENGINE_LOG"
    # Its own session (no terminal signals), without the lock's fd.
    mapfile -d '' -t args < <(engine_args)
    setsid "${args[@]}" </dev/null >>"$ENGINE_LOG" 2>&1 3>&- 4>&- 9>&- &
    disown $!      # not a job of the test: engine_stop stops it, by its pid file
    ENGINE_OWNED=1
    for i in $(seq 120); do
        engine_ping && break
        if [ "$i" -gt 5 ] && [ -z "$(engine_pid)" ] && ! pgrep -f -- "--data-root $SR_DOCKER_DIR/data" >/dev/null; then
            engine_say "dockerd exited; last lines of $ENGINE_LOG:" >&2
            tail -n 20 "$ENGINE_LOG" >&2
            return 1
        fi
        sleep 0.5
    done
    engine_ping || { engine_say "dockerd does not answer on $ENGINE_SOCK after 60s" >&2; tail -n 20 "$ENGINE_LOG" >&2; return 1; }
    engine_say "engine $(docker version --format '{{.Server.Version}}') up (pid $(engine_pid))"
    engine_tidy
}

# What a killed test run can leave in the private engine (its data-root
# keeps it across restarts): a swarm (with its stack) and the swarm test's
# client containers. Each test cleans its own project besides.
engine_tidy() {
    local ids
    if [ "$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" != inactive ]; then
        engine_say "the engine is still in a swarm (a killed run): docker swarm leave --force"
        timeout 60 docker swarm leave --force >/dev/null 2>&1 || engine_say "docker swarm leave failed" >&2
    fi
    ids=$(docker ps -aq --filter label=sr-swarm-test 2>/dev/null)
    # shellcheck disable=SC2086  # one id per word
    [ -z "$ids" ] || timeout 60 docker rm -f $ids >/dev/null 2>&1
}

engine_stop() {
    local pid i
    [ "$ENGINE_OWNED" = 1 ] || return 0
    ENGINE_OWNED=0
    pid=$(engine_pid)
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        engine_say "dockerd (pid $pid) still running after 30s: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null
        sleep 1
    fi
    # Its containerd (started by dockerd, under exec/) goes with it; one that
    # outlived a SIGKILL is ours by its command line.
    for i in $(pgrep -f -- "--config $SR_DOCKER_DIR/exec/containerd/containerd.toml"); do
        kill -TERM "$i" 2>/dev/null
    done
    rm -f "$ENGINE_PIDFILE"
    engine_say "engine stopped"
}
