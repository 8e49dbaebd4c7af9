#!/bin/bash
# Starts the reference stack on 127.0.0.1 and stays in the foreground:
#
#   proxy      PORT     apache2 + mod_sticky_route (templates/render-proxy-conf.sh)
#   static-1   PORT+1   apache2 serving site/ (templates/static-httpd.conf)
#   static-2   PORT+2
#   dynamic-1  PORT+3   node dynamic/server.js
#   dynamic-2  PORT+4
#
# Environment: PORT (default 8080); STICKY_ROUTE_SECRET or
# STICKY_ROUTE_SECRET_FILE, ADMIN_ALLOW, SERVER_NAME and STICKY_MAX_IDLE,
# STICKY_MAX_LIFE, STICKY_ELECT, STICKY_SLOW_START, STICKY_REBALANCE are passed to the
# renderer; STICKY_ROUTE_MODULE (default .libs/mod_sticky_route.so of this
# repository); STACK_RUN_DIR (default /tmp/sticky-route-run-PORT, or
# $XDG_RUNTIME_DIR/sticky-route-run-PORT when not root).
#
# HTTPS: TLS=files (TLS_CERT_FILE, TLS_KEY_FILE) or TLS=acme (ACME_EMAIL,
# ACME_DIRECTORY, ACME_CA_FILE, ...: see templates/render-proxy-conf.sh) serve
# the site on TLS_PORT (default 8443, h2 and http/1.1); PORT then redirects to
# it. With acme the certificates live in ACME_STORE_DIR (default RUN_DIR/md,
# kept across runs), and this script sends the proxy a graceful restart
# whenever mod_md has a new certificate (its AH10059 line): mod_md cannot.
#
# Ctrl-C (SIGINT) or SIGTERM stops every process it started; the run
# directory keeps the configs and logs, no pid file. A port already taken:
# a message naming it, nothing started.
set -euo pipefail
export LC_ALL=C

PROG=run-stack
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
NAMES=(proxy static-1 static-2 dynamic-1 dynamic-2)
START_TIMEOUT_S=15      # per service, to answer its first request
STOP_TIMEOUT_S=12       # per service, to exit after SIGTERM

say() { echo "$PROG: $*"; }
die() { echo "$PROG: $*" >&2; exit 1; }

# ---- settings --------------------------------------------------------------
PORT=${PORT:-8080}
if ! [[ $PORT =~ ^[1-9][0-9]{0,4}$ ]] || [ "$PORT" -gt 65531 ]; then
    die "PORT='$PORT' is invalid: expected an integer 1-65531 (the stack uses PORT..PORT+4)"
fi
declare -A port=(
    [proxy]=$PORT [static-1]=$((PORT + 1)) [static-2]=$((PORT + 2))
    [dynamic-1]=$((PORT + 3)) [dynamic-2]=$((PORT + 4))
)
declare -A route=([static-1]=s1 [static-2]=s2 [dynamic-1]=d1 [dynamic-2]=d2)
TLS=${TLS:-off}
TLS_PORT=${TLS_PORT:-8443}
case $TLS in
    off) ;;
    files|acme)
        if ! [[ $TLS_PORT =~ ^[1-9][0-9]{0,4}$ ]] || [ "$TLS_PORT" -gt 65535 ] ||
           { [ "$TLS_PORT" -ge "$PORT" ] && [ "$TLS_PORT" -le $((PORT + 4)) ]; }; then
            die "TLS_PORT='$TLS_PORT' is invalid: expected an integer 1-65535 outside $PORT-$((PORT + 4))"
        fi ;;
    *) die "TLS='$TLS' is invalid: expected off, files or acme" ;;
esac
ACME_START_TIMEOUT_S=${ACME_START_TIMEOUT_S:-60}   # TLS=acme: for the first certificate
MODULE=${STICKY_ROUTE_MODULE:-$REPO/.libs/mod_sticky_route.so}
APACHE2=${APACHE2:-$(command -v apache2 || echo /usr/sbin/apache2)}
if [ "$(id -u)" = 0 ]; then
    # www-data (the workers) cannot enter root's private runtime directory.
    RUN_DIR=${STACK_RUN_DIR:-/tmp/sticky-route-run-$PORT}
else
    RUN_DIR=${STACK_RUN_DIR:-${XDG_RUNTIME_DIR:-/tmp}/sticky-route-run-$PORT}
fi
LOG_DIR=$RUN_DIR/logs

# ---- prerequisites -----------------------------------------------------------
missing=()
[ -x "$APACHE2" ] || missing+=("apache2 (package apache2)")
command -v node >/dev/null || missing+=("node (package nodejs)")
command -v curl >/dev/null || missing+=("curl (package curl)")
command -v ss >/dev/null || missing+=("ss (package iproute2)")
if command -v node >/dev/null &&
   ! NODE_PATH=/usr/share/nodejs node -e 'require("express"); require("chance")' 2>/dev/null; then
    missing+=("express and chance for node (packages node-express node-chance)")
fi
if [ ${#missing[@]} -gt 0 ]; then
    die "missing: ${missing[*]}. Install them with: make deps"
fi
[ -f "$MODULE" ] || die "module $MODULE not found: build it with make (or set STICKY_ROUTE_MODULE)"

# ---- ports: all free, or nothing starts ---------------------------------------
listener_of() {   # prints the ss line of a TCP listener on port $1, if any
    ss -Hltnp "sport = :$1" 2>/dev/null | head -n 1
}
taken=0
for name in "${NAMES[@]}"; do
    line=$(listener_of "${port[$name]}")
    if [ -n "$line" ]; then
        users=$(grep -o 'users:.*' <<< "$line" || true)
        echo "$PROG: port ${port[$name]} (for $name) is already in use${users:+ by $users}" >&2
        taken=1
    fi
done
if [ "$TLS" != off ]; then
    line=$(listener_of "$TLS_PORT")
    if [ -n "$line" ]; then
        users=$(grep -o 'users:.*' <<< "$line" || true)
        echo "$PROG: port $TLS_PORT (TLS_PORT, for the proxy's HTTPS) is already in use${users:+ by $users}" >&2
        echo "$PROG: nothing started: stop what uses it or pick another, e.g. TLS_PORT=$((TLS_PORT + 10))" >&2
        exit 1
    fi
fi
if [ $taken = 1 ]; then
    echo "$PROG: nothing started. The stack needs ports $PORT-$((PORT + 4)) on 127.0.0.1:" \
         "stop what uses them or pick another base port, e.g. PORT=$((PORT + 10)) make run" >&2
    exit 1
fi

# ---- run directory -------------------------------------------------------------
if [ -e "$RUN_DIR" ] || [ -L "$RUN_DIR" ]; then
    if [ -L "$RUN_DIR" ] || ! [ -d "$RUN_DIR" ] || ! [ -O "$RUN_DIR" ]; then
        die "$RUN_DIR exists and is not a directory owned by $(id -un): remove it or set STACK_RUN_DIR"
    fi
    # Pid files of a stack that is still alive (its ports would be taken,
    # unless it is half dead): refuse; stale ones go with the old run.
    for f in "$RUN_DIR"/*.pid "$RUN_DIR"/*/*.pid; do
        [ -f "$f" ] || continue
        pid=$(head -c 20 "$f" | tr -cd 0-9)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            die "a stack from $RUN_DIR still runs (pid $pid in $f): stop it first"
        fi
    done
    # Only what an earlier run wrote (STACK_RUN_DIR may hold other files).
    rm -rf -- "${RUN_DIR:?}"/{logs,proxy,static-1,static-2,site} "$RUN_DIR"/dynamic-[12].pid
else
    mkdir -p -m 0755 -- "$RUN_DIR"
fi
chmod 0755 "$RUN_DIR"
mkdir -p "$LOG_DIR" "$RUN_DIR/proxy" "$RUN_DIR/static-1" "$RUN_DIR/static-2"

SITE_ROOT=$REPO/site
if [ "$(id -u)" = 0 ]; then
    chown www-data:www-data "$RUN_DIR/static-1" "$RUN_DIR/static-2"
    # The workers run as www-data: serve a copy when the checkout is private.
    if ! runuser -u www-data -- test -r "$SITE_ROOT/index.html" 2>/dev/null; then
        cp -R "$SITE_ROOT" "$RUN_DIR/site"
        chmod -R a+rX "$RUN_DIR/site"
        SITE_ROOT=$RUN_DIR/site
    fi
fi

# ---- process bookkeeping --------------------------------------------------------
declare -A pid_of=()
started=()          # names in start order
stopped=0

pid_file_of() {
    case $1 in
        proxy) echo "$RUN_DIR/proxy/proxy.pid" ;;
        static-*) echo "$RUN_DIR/$1/httpd.pid" ;;
        dynamic-*) echo "$RUN_DIR/$1.pid" ;;
    esac
}

# Each service runs in its own session (setsid): a terminal's Ctrl-C reaches
# only this script, which then stops them in order; a process group kill
# also catches every child of a service.
start_service() {   # $1 = name, $2 = log file, rest = command
    local name=$1 log=$2
    shift 2
    setsid "$@" >>"$log" 2>&1 < /dev/null &
    pid_of[$name]=$!
    started+=("$name")
    case $name in dynamic-*) echo "${pid_of[$name]}" > "$(pid_file_of "$name")" ;; esac
}

stop_all() {
    [ $stopped = 0 ] || return 0
    stopped=1
    local i name pid deadline
    # Reverse start order: the proxy first, so that no request meets a
    # stopped backend.
    for (( i = ${#started[@]} - 1; i >= 0; i-- )); do
        name=${started[$i]} pid=${pid_of[$name]}
        kill -TERM "$pid" 2>/dev/null || true
        deadline=$((SECONDS + STOP_TIMEOUT_S))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "$PROG: $name (pid $pid) did not stop within ${STOP_TIMEOUT_S}s: killing it" >&2
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
        # httpd children of a killed parent: their process group.
        kill -KILL -- "-$pid" 2>/dev/null || true
        rm -f -- "$(pid_file_of "$name")"
    done
    local left=()
    for name in "${started[@]}"; do
        [ -z "$(listener_of "${port[$name]}")" ] || left+=("${port[$name]} ($name)")
    done
    if [ ${#left[@]} -gt 0 ]; then
        echo "$PROG: still listening after stop: ${left[*]}" >&2
        return 1
    fi
}

on_exit() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ ${#started[@]} -gt 0 ] && [ $stopped = 0 ]; then
        stop_all || rc=1
    fi
    exit $rc
}
trap on_exit EXIT
signal=''
trap 'signal=INT' INT
trap 'signal=TERM' TERM
trap 'signal=HUP' HUP

# Waits until $2 (a URL) answers, while $1 (a service) is alive; $3: its log.
wait_ready() {
    local name=$1 url=$2 deadline=$((SECONDS + START_TIMEOUT_S))
    while [ $SECONDS -lt $deadline ] && [ -z "$signal" ]; do
        if ! kill -0 "${pid_of[$name]}" 2>/dev/null; then
            echo "$PROG: $name exited while starting. Last lines of its log:" >&2
            tail -n 15 "$3" >&2 || true
            return 1
        fi
        # -k: whether the proxy answers, not whether its certificate is trusted
        if curl -kfsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    [ -n "$signal" ] && return 1
    echo "$PROG: $name did not answer $url within ${START_TIMEOUT_S}s. Last lines of its log:" >&2
    tail -n 15 "$3" >&2 || true
    return 1
}

startup_failed() {
    if [ -n "$signal" ]; then
        echo "$PROG: $signal received during start-up; stopping what was started" >&2
    else
        echo "$PROG: start-up failed; stopping what was started" >&2
    fi
    stop_all || true
    echo "$PROG: nothing left running (logs in $LOG_DIR)" >&2
    exit 1
}

# ---- static servers -----------------------------------------------------------
for name in static-1 static-2; do
    log=$LOG_DIR/$name-error.log
    start_service "$name" "$LOG_DIR/$name.out" \
        env INSTANCE_NAME="$name" STATIC_LISTEN="127.0.0.1:${port[$name]}" SITE_ROOT="$SITE_ROOT" \
            STATIC_RUN_DIR="$RUN_DIR/$name" STATIC_ERROR_LOG="$log" \
            STATIC_ACCESS_LOG="$LOG_DIR/$name-access.log" \
            "$APACHE2" -f "$REPO/templates/static-httpd.conf" -D FOREGROUND
done
# ---- dynamic servers ------------------------------------------------------------
for name in dynamic-1 dynamic-2; do
    start_service "$name" "$LOG_DIR/$name.log" \
        env INSTANCE_NAME="$name" PORT="${port[$name]}" HOST=127.0.0.1 \
            NODE_PATH=/usr/share/nodejs NODE_ENV=production node "$REPO/dynamic/server.js"
done
for name in static-1 static-2; do
    out=$LOG_DIR/$name-error.log
    [ -f "$out" ] || out=$LOG_DIR/$name.out
    wait_ready "$name" "http://127.0.0.1:${port[$name]}/css/style.css" "$out" || startup_failed
done
for name in dynamic-1 dynamic-2; do
    wait_ready "$name" "http://127.0.0.1:${port[$name]}/healthz" "$LOG_DIR/$name.log" || startup_failed
done

# ---- proxy ------------------------------------------------------------------------
render_env=(
    STATIC_APP="127.0.0.1:${port[static-1]}=${route[static-1]},127.0.0.1:${port[static-2]}=${route[static-2]}"
    DYNAMIC_APP="127.0.0.1:${port[dynamic-1]}=${route[dynamic-1]},127.0.0.1:${port[dynamic-2]}=${route[dynamic-2]}"
    LISTEN_PORT="$PORT" API_PREFIX=/api/
)
if [ "$TLS" != off ]; then
    render_env+=(TLS="$TLS" LISTEN_TLS_PORT="$TLS_PORT")
    if [ "$TLS" = acme ] && [ -z "${ACME_STORE_DIR:-}" ]; then
        # kept across runs (the clean-up above spares it): no new order at each start
        mkdir -p -m 0755 "$RUN_DIR/md"
        render_env+=(ACME_STORE_DIR="$RUN_DIR/md")
    fi
fi
# Numbered members from the caller's environment would join the pools.
for v in $(compgen -e); do
    if [[ $v =~ ^(STATIC|DYNAMIC)_APP_[0-9]+$ ]]; then render_env=(-u "$v" "${render_env[@]}"); fi
done
if ! env "${render_env[@]}" "$REPO/templates/render-proxy-conf.sh" \
        --main-conf "$RUN_DIR/proxy/httpd.conf" --module "$MODULE" \
        --run-dir "$RUN_DIR/proxy" --log-dir "$LOG_DIR" \
        "$RUN_DIR/proxy/vhost.conf" > "$LOG_DIR/render.out"; then
    startup_failed
fi
if ! "$APACHE2" -t -f "$RUN_DIR/proxy/httpd.conf" > "$LOG_DIR/proxy-configtest.out" 2>&1; then
    echo "$PROG: the proxy configuration does not pass apache2 -t:" >&2
    cat "$LOG_DIR/proxy-configtest.out" >&2
    startup_failed
fi
start_service proxy "$LOG_DIR/proxy.out" "$APACHE2" -f "$RUN_DIR/proxy/httpd.conf" -D FOREGROUND
out=$LOG_DIR/proxy-error.log
wait_ready proxy "http://127.0.0.1:$PORT/api/healthz" "$out" || startup_failed

# TLS=acme: mod_md orders in a child process and logs AH10059 when a new
# certificate waits in its store; only a graceful restart puts it in use, and
# a child cannot send one. This script does, for the first certificate and
# every renewal.
md_log_offset=0
activate_new_certificates() {
    [ "$TLS" = acme ] || return 0
    local log=$LOG_DIR/proxy-error.log size
    size=$(stat -c %s "$log" 2>/dev/null || echo 0)
    [ "$size" -ge "$md_log_offset" ] || md_log_offset=0     # a new log
    [ "$size" -gt "$md_log_offset" ] || return 0
    if tail -c +$((md_log_offset + 1)) "$log" | head -c $((size - md_log_offset)) | grep -q 'AH10059'; then
        say "mod_md has a new certificate: graceful restart of the proxy (pid ${pid_of[proxy]})"
        kill -USR1 "${pid_of[proxy]}" 2>/dev/null || true
    fi
    md_log_offset=$size
}
if [ "$TLS" != off ]; then
    url="https://127.0.0.1:$TLS_PORT/api/healthz"
    if [ "$TLS" = files ]; then
        wait_ready proxy "$url" "$out" || startup_failed
    else
        # Until mod_md has a certificate, HTTPS shows its fallback certificate
        # and answers 503: wait for the real one a while, then go on anyway.
        deadline=$((SECONDS + ACME_START_TIMEOUT_S))
        # (with the name in SNI: without it the fallback answers as well)
        name=${SERVER_NAME:-localhost}
        until curl -kfsS -o /dev/null --max-time 1 --resolve "$name:$TLS_PORT:127.0.0.1" \
                   "https://$name:$TLS_PORT/api/healthz" 2>/dev/null; do
            activate_new_certificates
            kill -0 "${pid_of[proxy]}" 2>/dev/null || { tail -n 15 "$out" >&2; startup_failed; }
            [ -z "$signal" ] || startup_failed
            if [ $SECONDS -ge $deadline ]; then
                echo "$PROG: no certificate from the CA within" \
                     "${ACME_START_TIMEOUT_S}s: HTTPS serves mod_md's fallback certificate (503)" \
                     "until one is obtained; see https://127.0.0.1:$TLS_PORT/md-status and $out" >&2
                break
            fi
            sleep 0.5
        done
    fi
fi

echo
if [ "$TLS" = off ]; then
    echo "mod_sticky_route reference stack is up:  http://127.0.0.1:$PORT/"
else
    echo "mod_sticky_route reference stack is up:  https://${SERVER_NAME:-localhost}:$TLS_PORT/" \
         "(127.0.0.1:$TLS_PORT, TLS=$TLS, h2; http://127.0.0.1:$PORT/ redirects)"
fi
echo
printf '  %-10s %-18s %-43s %s\n' name address what pid \
    proxy "127.0.0.1:$PORT" "apache2 + mod_sticky_route" "${pid_of[proxy]}"
echo "             /      -> balancer://static   lbmethod=sticky (cookie ROUTEID)"
echo "             /api/  -> balancer://dynamic  lbmethod=roundrobin"
for name in static-1 static-2 dynamic-1 dynamic-2; do
    case $name in
        static-*) what="apache2, site/ (route=${route[$name]})" ;;
        dynamic-*) what="node dynamic/server.js (route=${route[$name]})" ;;
    esac
    printf '  %-10s %-18s %-43s %s\n' "$name" "127.0.0.1:${port[$name]}" "$what" "${pid_of[$name]}"
done
admin_base=http://127.0.0.1:$PORT
[ "$TLS" = off ] || admin_base=https://127.0.0.1:$TLS_PORT
cat <<EOF

  admin (from ${ADMIN_ALLOW:-127.0.0.1}):  $admin_base/balancer-manager
                                $admin_base/sticky-route-status
  configs, logs:  $RUN_DIR
EOF
[ "$TLS" != acme ] || echo "  certificates (mod_md):  $admin_base/md-status, store ${ACME_STORE_DIR:-$RUN_DIR/md}"
cat <<EOF
Press Ctrl-C to stop.
EOF

# ---- foreground: until a signal, or until a service dies ---------------------------
died=''
while [ -z "$signal" ]; do
    if [ "$TLS" = acme ]; then
        # polls mod_md's log line every second (a sleep of our own ends the wait)
        activate_new_certificates
        sleep 1 &
        wait -n 2>/dev/null || true
    else
        wait -n 2>/dev/null || true
    fi
    [ -z "$signal" ] || break
    for name in "${started[@]}"; do
        if ! kill -0 "${pid_of[$name]}" 2>/dev/null; then
            died=$name
            break 2
        fi
    done
done
if [ -n "$died" ]; then
    echo "$PROG: $died (pid ${pid_of[$died]}) exited on its own; stopping the stack" >&2
    stop_all || true
    exit 1
fi
echo
say "$signal received, stopping"
if stop_all; then
    say "stopped; nothing left listening on $PORT-$((PORT + 4)) (logs in $LOG_DIR)"
    exit 0
fi
exit 1
