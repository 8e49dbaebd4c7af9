#!/bin/bash
# mod_sticky_route benchmark: wrk against real Debian apache2 / HAProxy on
# 127.0.0.1, runs interleaved (every contender once per round), median of
# BENCH_ROUNDS rounds. See bench/README.md for what is measured and how to read it.
#
#   make bench                                   # full run (defaults below)
#   BENCH_DURATION=3 BENCH_ROUNDS=1 BENCH_CALLGRIND=0 BENCH_OUT=/tmp/b bash bench/run.sh   # smoke
#
# Exit status: 0 when every run of every case was clean (no non-2xx, no socket
# errors, sanity checks passed); 1 otherwise (the report is written anyway and
# names the failed runs). Speed targets are reported, never asserted.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$REPO/bench"
# shellcheck source=tests/lib.sh
. "$REPO/tests/lib.sh"
SR_LOG_PREFIX=bench

# ---- settings (all overridable from the environment) ------------------------
DURATION="${BENCH_DURATION:-10}"          # seconds per measured run
ROUNDS="${BENCH_ROUNDS:-3}"               # rounds; each case runs once per round
WARMUP="${BENCH_WARMUP:-$( [ "$DURATION" -ge 10 ] 2>/dev/null && echo 2 || echo 1)}"  # unmeasured wrk seconds before each run
THREADS="${BENCH_THREADS:-2}"             # wrk -t
CONNS="${BENCH_CONNS:-32}"                # wrk -c
TIMEOUT="${BENCH_TIMEOUT:-5}"             # wrk --timeout (seconds)
PORT_BASE="${BENCH_PORT_BASE:-22800}"     # ports PORT_BASE+1 .. PORT_BASE+60 are used
TTL="${BENCH_TTL:-60}"                    # proxy pool ttl= (< backend KeepAliveTimeout 75)
PROXY_PROCS="${BENCH_PROXY_PROCS:-2}"     # httpd proxy: processes
PROXY_THREADS="${BENCH_PROXY_THREADS:-64}" # httpd proxy: ThreadsPerChild (>= BENCH_CONNS: see README)
PROXY_MPM="${BENCH_PROXY_MPM:-event}"     # httpd proxy MPM: event (default) or worker
HAPROXY_THREADS="${BENCH_HAPROXY_THREADS:-2}"
MUTEX="${BENCH_MUTEX:-file}"              # httpd Mutex mechanism ("file" = file:RUNDIR, Debian's choice)
MODULE="${BENCH_MODULE:-$REPO/.libs/mod_sticky_route.so}"
OUT="${BENCH_OUT:-$REPO/docs/benchmarks}"
CASES="${BENCH_CASES:-all}"               # comma list of case names, or "all"
DYNAMIC="${BENCH_DYNAMIC:-auto}"          # auto|node|httpd: what serves the dynamic pool
TS_WRK="${BENCH_TASKSET_WRK:-}"           # CPU lists for taskset -c; empty = no pinning
TS_PROXY="${BENCH_TASKSET_PROXY:-}"
TS_BACKEND="${BENCH_TASKSET_BACKEND:-}"
KEEP="${BENCH_KEEP:-0}"                   # 1: leave servers running after the run (debug)
# Cases profiled with perf after the rounds (comma list; "none" for no profiles).
PROFILE="${BENCH_PROFILE:-proxypass,stock-cookie,sticky-cookie,static-roundrobin,haproxy-cookie}"
[ "$PROFILE" = none ] && PROFILE=""
PROFILE_SECONDS="${BENCH_PROFILE_SECONDS:-$DURATION}"

for v in DURATION ROUNDS WARMUP THREADS CONNS TIMEOUT PORT_BASE TTL PROXY_PROCS PROXY_THREADS HAPROXY_THREADS PROFILE_SECONDS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "bench: $v must be a number, got '${!v}'" >&2; exit 2; }
done
(( PORT_BASE >= 22000 && PORT_BASE + 60 <= 22999 )) || { echo "bench: BENCH_PORT_BASE must keep ports in 22000-22999" >&2; exit 2; }
[[ "$PROXY_MPM" =~ ^(event|worker)$ ]] || { echo "bench: BENCH_PROXY_MPM must be event or worker" >&2; exit 2; }
(( ROUNDS >= 1 && DURATION >= 1 )) || { echo "bench: need BENCH_ROUNDS >= 1 and BENCH_DURATION >= 1" >&2; exit 2; }

for tool in apache2 haproxy wrk curl gnuplot /usr/bin/python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found (run: make deps)" >&2; exit 2; }
done

# ---- ports --------------------------------------------------------------------
S1_PORT=$((PORT_BASE + 1)); S2_PORT=$((PORT_BASE + 2))       # static backends (httpd)
D1_PORT=$((PORT_BASE + 11)); D2_PORT=$((PORT_BASE + 12))     # dynamic backends (node or httpd)
P_PLAIN=$((PORT_BASE + 21)); P_STOCK=$((PORT_BASE + 22)); P_STICKY=$((PORT_BASE + 23))
P_BYREQ=$((PORT_BASE + 24)); P_RR=$((PORT_BASE + 25))
P_SBYREQ=$((PORT_BASE + 26)); P_SRR=$((PORT_BASE + 27))
HAPROXY_STATIC_PORT=$((PORT_BASE + 41)); HAPROXY_DYNAMIC_PORT=$((PORT_BASE + 42))
HAPROXY_STATIC_RR_PORT=$((PORT_BASE + 43))
SP=/index.html   # URL path of the static file; the dynamic pool answers on /

ALL_PORTS=($S1_PORT $S2_PORT $D1_PORT $D2_PORT $P_PLAIN $P_STOCK $P_STICKY $P_BYREQ $P_RR
           $P_SBYREQ $P_SRR $HAPROXY_STATIC_PORT $HAPROXY_DYNAMIC_PORT $HAPROXY_STATIC_RR_PORT)

RUN="$(mktemp -d /tmp/sr-bench.XXXXXX)"
mkdir -p "$RUN/logs" "$RUN/conf" "$RUN/htdocs" "$RUN/raw"
# httpd children run as www-data (Debian's apache2 user): they must reach the document root.
if id www-data >/dev/null 2>&1; then HTTPD_USER=www-data HTTPD_GROUP=www-data; else HTTPD_USER="#$(id -u)" HTTPD_GROUP="#$(id -g)"; fi
chmod 755 "$RUN" "$RUN/htdocs"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"


# ---- process bookkeeping: only what this script started, by pid ---------------
PIDS=()            # node pids
HTTPD_CONFS=()     # httpd configs started (stopped by httpd_stop, tests/lib.sh)
cleanup() {
    local rc=$?
    if [ "$KEEP" = 1 ]; then log "BENCH_KEEP=1: servers left running, run dir $RUN"; return $rc; fi
    for c in "${HTTPD_CONFS[@]}"; do httpd_stop "$c" || true; done
    if [ -s "$RUN/haproxy.pid" ]; then
        while read -r p; do kill -TERM "$p" 2>/dev/null || true; done < "$RUN/haproxy.pid"
    fi
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$rc" = 0 ] || [ -z "$(ls -A "$RUN/logs" 2>/dev/null)" ]; then rm -rf "$RUN"
    else log "exit $rc: run dir (logs, configs) kept in $RUN"; fi
    return $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

maybe_taskset() {  # maybe_taskset CPULIST cmd...
    local cpus="$1"; shift
    if [ -n "$cpus" ]; then taskset -c "$cpus" "$@"; else "$@"; fi
}

render() {  # render OUT TEMPLATE... : concatenate templates, substitute @VARS@
    local out="$1"; shift
    render_template "$out" \
        RUNTIME="$RUN/rt-$R_NAME" RUN="$RUN" DOCROOT="$RUN/htdocs" MODULE="$MODULE" \
        TTL="$TTL" S1_PORT="$S1_PORT" S2_PORT="$S2_PORT" D1_PORT="$D1_PORT" D2_PORT="$D2_PORT" \
        PROXY_PROCS="$PROXY_PROCS" PROXY_THREADS="$PROXY_THREADS" PROXY_MPM="$PROXY_MPM" \
        PROXY_MAXWORKERS="$((PROXY_PROCS * PROXY_THREADS))" HAPROXY_THREADS="$HAPROXY_THREADS" \
        HAPROXY_STATIC_PORT="$HAPROXY_STATIC_PORT" HAPROXY_DYNAMIC_PORT="$HAPROXY_DYNAMIC_PORT" \
        HAPROXY_STATIC_RR_PORT="$HAPROXY_STATIC_RR_PORT" \
        M1_PORT="${M1_PORT:-}" M2_PORT="${M2_PORT:-}" M1="${M1:-}" M2="${M2:-}" \
        MUTEX="$MUTEX_LINE" NAME="$R_NAME" ROUTE="$R_NAME" PORT="$R_PORT" \
        USER="$HTTPD_USER" GROUP="$HTTPD_GROUP" -- "$@"
}

for p in "${ALL_PORTS[@]}"; do
    if port_busy "$p"; then echo "bench: port $p already in use; set BENCH_PORT_BASE" >&2; exit 2; fi
done

# ---- case table -----------------------------------------------------------------
# name|port/path|cookie sent|expected X-Served-By|Set-Cookie expected (yes/no)|server key|description
# "server key" names what has to be up for the case. X-Served-By "s1": every
# answer from backend s1; "alt": both members of the pool answer; "any": not checked.
CASE_TABLE=(
"direct|$S1_PORT$SP||s1|no|direct|1. direct to one backend (ceiling)"
"proxypass|$P_PLAIN$SP||s1|no|plain|2. httpd plain ProxyPass to one backend"
"stock-cookie|$P_STOCK$SP|ROUTEID=.s1|s1|no|stock|3. stock recipe (byrequests+stickysession+Header), cookie sent"
"stock-nocookie|$P_STOCK$SP||any|yes|stock|3b. stock recipe, no cookie (new session per request)"
"sticky-cookie|$P_STICKY$SP|ROUTEID=s1|s1|no|sticky|4. lbmethod=sticky, cookie sent"
"sticky-nocookie|$P_STICKY$SP||any|yes|sticky|4b. lbmethod=sticky, no cookie (new session per request)"
"dyn-byrequests|$P_BYREQ/||alt|no|byreq|5a. dynamic pool, lbmethod=byrequests"
"dyn-roundrobin|$P_RR/||alt|no|rr|5b. dynamic pool, lbmethod=roundrobin"
"static-byrequests|$P_SBYREQ$SP||alt|no|sbyreq|5c. static pool s1+s2 (no stickiness), lbmethod=byrequests"
"static-roundrobin|$P_SRR$SP||alt|no|srr|5d. static pool s1+s2 (no stickiness), lbmethod=roundrobin"
"haproxy-cookie|$HAPROXY_STATIC_PORT$SP|ROUTEID=s1|s1|no|haproxy|6. HAProxy cookie insert indirect nocache, cookie sent"
"haproxy-nocookie|$HAPROXY_STATIC_PORT$SP||any|yes|haproxy|6b. HAProxy cookie insert, no cookie"
"haproxy-dyn|$HAPROXY_DYNAMIC_PORT/||alt|no|haproxy|6c. HAProxy balance roundrobin, dynamic pool"
"haproxy-static-rr|$HAPROXY_STATIC_RR_PORT$SP||alt|no|haproxy|6d. HAProxy balance roundrobin, static pool s1+s2"
)
SELECTED=()
for row in "${CASE_TABLE[@]}"; do
    name="${row%%|*}"
    if [ "$CASES" = all ] || [[ ",$CASES," == *",$name,"* ]]; then SELECTED+=("$row"); fi
done
[ ${#SELECTED[@]} -gt 0 ] || { echo "bench: BENCH_CASES='$CASES' selects no case" >&2; exit 2; }
need() { local k; for row in "${SELECTED[@]}"; do IFS='|' read -r _ _ _ _ _ k _ <<<"$row"; [ "$k" = "$1" ] && return 0; done; return 1; }

# ---- dynamic pool: node (dynamic/server.js) when present, else httpd -----------------
if [ "$DYNAMIC" = auto ]; then
    if [ -f "$REPO/dynamic/server.js" ] && command -v node >/dev/null; then DYNAMIC=node; else DYNAMIC=httpd; fi
fi

# ---- start servers ------------------------------------------------------------------
declare -A DOWN=()   # server key -> reason it could not be started

# A small static file (1 KiB), the same for every backend.
/usr/bin/python3 - "$RUN/htdocs/index.html" <<'EOF'
import sys
body = "<!doctype html><title>bench</title><p>" + ("mod_sticky_route benchmark payload. " * 40)
body = body[:1019] + "</p>\n"
open(sys.argv[1], "w").write(body)
EOF

start_httpd() {  # start_httpd NAME PORT CPULIST TEMPLATE...
    local name="$1" port="$2" cpus="$3"; shift 3
    R_NAME="$name"; R_PORT="$port"
    if [ "$MUTEX" = file ]; then MUTEX_LINE="file:$RUN/rt-$name default"; else MUTEX_LINE="$MUTEX default"; fi
    mkdir -p "$RUN/rt-$name"
    chown "$HTTPD_USER:$HTTPD_GROUP" "$RUN/rt-$name" 2>/dev/null || true
    local conf="$RUN/conf/$name.conf"
    render "$conf" "$@"
    if ! httpd_configtest "$conf" "$RUN/logs/$name.configtest"; then
        log "httpd $name: config test failed: $(tail -n 3 "$RUN/logs/$name.configtest" | tr '\n' ' ')"
        return 1
    fi
    HTTPD_CONFS+=("$conf")
    local wrap=(); [ -n "$cpus" ] && wrap=(taskset -c "$cpus")
    httpd_start "$conf" "$RUN/logs/$name.start" "$port" "${wrap[@]}" || { log "httpd $name: start failed"; return 1; }
}

log "run dir $RUN; ${#SELECTED[@]} cases x $ROUNDS rounds x (${WARMUP}s warmup + ${DURATION}s), wrk -t$THREADS -c$CONNS"
# The backends run under "backend-" + route names: the routes appear as X-Served-By.
start_httpd s1 "$S1_PORT" "$TS_BACKEND" "$BENCH/conf/backend.conf.in" \
    || { echo "bench: static backend s1 failed" >&2; exit 1; }
start_httpd s2 "$S2_PORT" "$TS_BACKEND" "$BENCH/conf/backend.conf.in" \
    || { echo "bench: static backend s2 failed" >&2; exit 1; }

if need byreq || need rr || need haproxy; then   # haproxy always has the dynamic frontend
    if [ "$DYNAMIC" = node ]; then
        for d in d1:$D1_PORT d2:$D2_PORT; do
            route="${d%%:*}"; port="${d##*:}"
            # A simple command (env execs taskset execs node): $! is node's own pid.
            env NODE_PATH=/usr/share/nodejs PORT="$port" HOST=127.0.0.1 INSTANCE_NAME="$route" \
                ${TS_BACKEND:+taskset -c "$TS_BACKEND"} node "$REPO/dynamic/server.js" >"$RUN/logs/node-$route.log" 2>&1 &
            PIDS+=($!)
        done
        for port in $D1_PORT $D2_PORT; do
            wait_port "$port" 15 || { echo "bench: dynamic/server.js not listening on $port (see $RUN/logs/node-*.log)" >&2; exit 1; }
        done
    else
        start_httpd d1 "$D1_PORT" "$TS_BACKEND" "$BENCH/conf/backend.conf.in" || { echo "bench: backend d1 failed" >&2; exit 1; }
        start_httpd d2 "$D2_PORT" "$TS_BACKEND" "$BENCH/conf/backend.conf.in" || { echo "bench: backend d2 failed" >&2; exit 1; }
    fi
fi

COMMON="$BENCH/conf/proxy-common.conf.in"
need plain  && { start_httpd proxy-plain  "$P_PLAIN"  "$TS_PROXY" "$COMMON" "$BENCH/conf/proxy-plain.conf.in"      || DOWN[plain]="$(why proxy-plain)"; }
need stock  && { start_httpd proxy-stock  "$P_STOCK"  "$TS_PROXY" "$COMMON" "$BENCH/conf/proxy-stock.conf.in"      || DOWN[stock]="$(why proxy-stock)"; }
why() { echo "httpd failed to start: $(cat "$RUN/logs/$1.configtest" "$RUN/logs/$1.start" 2>/dev/null | grep -v 'Syntax OK' | tail -n 2 | tr '\n' ' ')"; }
M1=d1 M2=d2 M1_PORT=$D1_PORT M2_PORT=$D2_PORT
need byreq  && { start_httpd proxy-byreq  "$P_BYREQ"  "$TS_PROXY" "$COMMON" "$BENCH/conf/proxy-byrequests.conf.in" || DOWN[byreq]="$(why proxy-byreq)"; }
M1=s1 M2=s2 M1_PORT=$S1_PORT M2_PORT=$S2_PORT
need sbyreq && { start_httpd proxy-sbyreq "$P_SBYREQ" "$TS_PROXY" "$COMMON" "$BENCH/conf/proxy-byrequests.conf.in" || DOWN[sbyreq]="$(why proxy-sbyreq)"; }
if [ ! -f "$MODULE" ]; then
    for k in sticky rr srr; do DOWN[$k]="module not built ($MODULE)"; done
else
    # Run a private copy: the shared tree's .so may be rebuilt during the run.
    cp "$MODULE" "$RUN/mod_sticky_route.so"; MODULE_SRC_PATH="$MODULE"; MODULE="$RUN/mod_sticky_route.so"
    need sticky && { start_httpd proxy-sticky "$P_STICKY" "$TS_PROXY" "$COMMON" "$BENCH/conf/proxy-sticky.conf.in"     || DOWN[sticky]="$(why proxy-sticky)"; }
    M1=d1 M2=d2 M1_PORT=$D1_PORT M2_PORT=$D2_PORT
    need rr     && { start_httpd proxy-rr     "$P_RR"     "$TS_PROXY" "$COMMON" "$BENCH/conf/proxy-roundrobin.conf.in" || DOWN[rr]="$(why proxy-rr)"; }
    M1=s1 M2=s2 M1_PORT=$S1_PORT M2_PORT=$S2_PORT
    need srr    && { start_httpd proxy-srr    "$P_SRR"    "$TS_PROXY" "$COMMON" "$BENCH/conf/proxy-roundrobin.conf.in" || DOWN[srr]="$(why proxy-srr)"; }
fi
if need haproxy; then
    R_NAME=haproxy R_PORT=0 MUTEX_LINE=none
    render "$RUN/conf/haproxy.cfg" "$BENCH/conf/haproxy.cfg.in"
    if maybe_taskset "$TS_PROXY" haproxy -D -f "$RUN/conf/haproxy.cfg" >"$RUN/logs/haproxy.start" 2>&1 \
       && wait_port "$HAPROXY_STATIC_PORT" 15 && wait_port "$HAPROXY_DYNAMIC_PORT" 15 \
       && wait_port "$HAPROXY_STATIC_RR_PORT" 15; then :; else
        DOWN[haproxy]="haproxy failed to start: $(tail -n 3 "$RUN/logs/haproxy.start" | tr '\n' ' ')"
    fi
fi

# ---- sanity check: every case does what its row says, before any load -------------
declare -A BROKEN=()
check_case() {  # check_case ROW -> sets BROKEN[name] on mismatch
    local name hp cookie served setc key desc
    IFS='|' read -r name hp cookie served setc key desc <<<"$1"
    if [ -n "${DOWN[$key]:-}" ]; then BROKEN[$name]="${DOWN[$key]}"; return; fi
    local seen="" i hdr code sc
    for i in 1 2 3 4; do
        hdr="$(curl -s -m 5 -o /dev/null -D - ${cookie:+-H "Cookie: $cookie"} "http://127.0.0.1:$hp" | tr -d '\r')" || true
        code="$(awk 'NR==1{print $2}' <<<"$hdr")"
        if [ "$code" != 200 ]; then BROKEN[$name]="sanity check: status '${code:-none}' instead of 200"; return; fi
        sc="$(grep -ci '^set-cookie: *ROUTEID=' <<<"$hdr" || true)"
        if [ "$setc" = yes ] && [ "$sc" != 1 ]; then BROKEN[$name]="sanity check: expected one Set-Cookie ROUTEID, got $sc"; return; fi
        if [ "$setc" = no ] && [ "$sc" != 0 ]; then BROKEN[$name]="sanity check: unexpected Set-Cookie: $(grep -i '^set-cookie' <<<"$hdr" | head -1)"; return; fi
        seen+="$(awk -F': *' 'tolower($1)=="x-served-by"{print $2}' <<<"$hdr") "
    done
    case "$served" in
        s1) [ "$seen" = "s1 s1 s1 s1 " ] || BROKEN[$name]="sanity check: served by '$seen', expected s1 only" ;;
        alt) if [ "$(tr ' ' '\n' <<<"$seen" | grep -v '^$' | sort -u | wc -l)" -lt 2 ]; then
                 BROKEN[$name]="sanity check: 4 requests served by '$seen', expected both pool members"; fi ;;
    esac
}
for row in "${SELECTED[@]}"; do
    check_case "$row"
    n="${row%%|*}"
    if [ -n "${BROKEN[$n]:-}" ]; then log "case $n: NOT RUN - ${BROKEN[$n]}"; fi
done

# ---- CPU accounting: where the machine's CPU time went during each run ---------------
# utime+stime (clock ticks) of a process set, read from /proc before and after a run.
# The proxy under test, all backends, wrk (the shell's reaped children) and the whole
# machine (/proc/stat): "other" = busy time of processes that are not part of the
# bench (other work on the machine: noise).
CLK_TCK="$(getconf CLK_TCK)"
proxy_pids() {  # proxy_pids SERVERKEY -> pids of the proxy processes of a case
    local inst pf p
    case "$1" in
        direct) return 0 ;;
        haproxy) cat "$RUN/haproxy.pid" 2>/dev/null; return 0 ;;
        plain) inst=proxy-plain ;; stock) inst=proxy-stock ;; sticky) inst=proxy-sticky ;;
        byreq) inst=proxy-byreq ;; rr) inst=proxy-rr ;; sbyreq) inst=proxy-sbyreq ;; srr) inst=proxy-srr ;;
        *) return 0 ;;
    esac
    pf="$RUN/$inst.pid"; [ -s "$pf" ] || return 0
    p="$(cat "$pf")"; echo "$p"; pgrep -P "$p" || true
}
backend_pids() {
    local n p
    for n in s1 s2 d1 d2; do
        [ -s "$RUN/$n.pid" ] || continue
        p="$(cat "$RUN/$n.pid")"; echo "$p"; pgrep -P "$p" || true
    done
    for p in "${PIDS[@]}"; do echo "$p"; done
}
ticks_of() {  # ticks_of PID... -> utime+stime summed (ticks)
    local p
    for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null || true; done \
        | awk '{sub(/^.*\) /, ""); s += $12 + $13} END {print s + 0}'
}
machine_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }   # user nice system irq softirq steal
wrk_ticks() {  # CPU of the reaped children of this shell (wrk), in ticks. `times`
    # must run in this shell itself (a $(...) subshell has its own, empty, counters).
    times > "$RUN/times.txt"
    WRK_TICKS="$(tail -n 1 "$RUN/times.txt" | awk -v t="$CLK_TCK" \
        '{ for (i = 1; i <= 2; i++) { split($i, a, /m|s/); s += a[1] * 60 + a[2] } } END {printf "%d", s * t + 0.5}')"
}

# ---- the runs: interleaved, rotating the order every round -------------------------
INDEX="$RUN/raw/index.tsv"
printf 'round\tcase\turl\tcookie\tstarted\tloadavg_before\tloadavg_after\trawfile\tclk_tck\tseconds\tcpu_proxy\tcpu_backend\tcpu_wrk\tcpu_machine\tncpu\n' > "$INDEX"
ncase=${#SELECTED[@]}
for round in $(seq 1 "$ROUNDS"); do
    for k in $(seq 0 $((ncase - 1))); do
        row="${SELECTED[$(( (k + round - 1) % ncase ))]}"
        IFS='|' read -r name hp cookie served setc key desc <<<"$row"
        [ -n "${BROKEN[$name]:-}" ] && continue
        url="http://127.0.0.1:$hp"
        if [ "$WARMUP" -gt 0 ]; then
            BENCH_COOKIE="$cookie" maybe_taskset "$TS_WRK" wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" \
                --timeout "${TIMEOUT}s" -s "$BENCH/lua/cookie.lua" "$url" >/dev/null 2>&1 || true
        fi
        raw="r${round}-${name}.txt"
        la0="$(cut -d' ' -f1-3 /proc/loadavg)"; started="$(date -u +%H:%M:%S)"
        mapfile -t ppids < <(proxy_pids "$key"); mapfile -t bpids < <(backend_pids)
        cp0="$(ticks_of "${ppids[@]}")"; cb0="$(ticks_of "${bpids[@]}")"; wrk_ticks; cw0="$WRK_TICKS"
        cm0="$(machine_busy)"; t0="$(date +%s.%N)"
        if ! BENCH_COOKIE="$cookie" maybe_taskset "$TS_WRK" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" \
                --timeout "${TIMEOUT}s" --latency -s "$BENCH/lua/cookie.lua" "$url" >"$RUN/raw/$raw" 2>&1; then
            echo "WRK_EXIT_NONZERO" >> "$RUN/raw/$raw"
        fi
        t1="$(date +%s.%N)"; cm1="$(machine_busy)"; wrk_ticks; cw1="$WRK_TICKS"
        cp1="$(ticks_of "${ppids[@]}")"; cb1="$(ticks_of "${bpids[@]}")"
        la1="$(cut -d' ' -f1-3 /proc/loadavg)"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$url" "$cookie" \
            "$started" "$la0" "$la1" "$raw" "$CLK_TCK" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')" \
            $((cp1 - cp0)) $((cb1 - cb0)) $((cw1 - cw0)) $((cm1 - cm0)) "$(nproc)" >> "$INDEX"
        log "round $round/$ROUNDS $name: $(grep -E '^Requests/sec' "$RUN/raw/$raw" | tr -s ' ' || echo 'no result')$(grep -E 'Non-2xx|Socket errors' "$RUN/raw/$raw" | tr -s ' ' | tr '\n' ' ' | sed 's/^/ ERRORS: /' || true)"
    done
done

# ---- optional: perf profiles of the proxy processes (BENCH_PROFILE=case,case) ------------
# Not part of the measured runs (perf itself costs CPU). cpu-clock sampling works in VMs
# without hardware counters; `perf stat` adds context switches and migrations.
if [ -n "$PROFILE" ]; then
    if ! command -v perf >/dev/null || ! perf record -e cpu-clock -o "$RUN/perf-probe.data" -- true >/dev/null 2>&1; then
        log "BENCH_PROFILE: perf is missing or cannot record here; no profiles"
    else
        for row in "${SELECTED[@]}"; do
            IFS='|' read -r name hp cookie served setc key desc <<<"$row"
            [[ ",$PROFILE," == *",$name,"* ]] || continue
            [ -n "${BROKEN[$name]:-}" ] && continue
            mapfile -t ppids < <(proxy_pids "$key")
            [ ${#ppids[@]} -gt 0 ] || { log "profile $name: no proxy process to profile"; continue; }
            plist="$(IFS=,; echo "${ppids[*]}")"
            pdata="$RUN/perf-$name.data"
            log "profile $name: perf record/stat on pids $plist for ${PROFILE_SECONDS}s"
            BENCH_COOKIE="$cookie" maybe_taskset "$TS_WRK" wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" \
                -s "$BENCH/lua/cookie.lua" "http://127.0.0.1:$hp" >/dev/null 2>&1 || true
            # System-wide sampling (per-CPU events: robust, and shows the whole machine);
            # the proxy's own profile is then the samples of its pids.
            perf record -a -e cpu-clock -F 999 -g -o "$pdata" -- sleep "$PROFILE_SECONDS" >/dev/null 2>"$RUN/perf-$name.log" &
            perf_pid=$!
            perf stat -e task-clock,context-switches,cpu-migrations,page-faults -p "$plist" \
                -o "$RUN/raw/profile-$name-stat.txt" -- sleep "$PROFILE_SECONDS" >/dev/null 2>&1 &
            stat_pid=$!
            BENCH_COOKIE="$cookie" maybe_taskset "$TS_WRK" wrk -t"$THREADS" -c"$CONNS" -d"${PROFILE_SECONDS}s" \
                --latency -s "$BENCH/lua/cookie.lua" "http://127.0.0.1:$hp" >"$RUN/raw/profile-$name-wrk.txt" 2>&1 || true
            wait "$perf_pid" "$stat_pid" || true
            {
                for p in "${ppids[@]}"; do ls "/proc/$p/task" 2>/dev/null | sed 's/^/proxy /'; done
                for p in $(backend_pids); do ls "/proc/$p/task" 2>/dev/null | sed 's/^/backend /'; done
            } > "$RUN/perf-$name.tids"
            perf script -i "$pdata" -F comm,tid,ip,sym,dso 2>/dev/null \
                | /usr/bin/python3 "$BENCH/perfsum.py" "$RUN/perf-$name.tids" > "$RUN/raw/profile-$name.json" \
                || log "profile $name: perf script/perfsum failed"
            rm -f "$pdata"
        done
    fi
fi

# ---- what this run was -----------------------------------------------------------------
{
    echo "stamp=$STAMP"
    echo "host_cpu=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
    echo "host_cores=$(nproc)"
    echo "host_mem=$(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel=$(uname -sr)"
    echo "os=$(. /etc/os-release; echo "$PRETTY_NAME")"
    echo "apache2=$(apache2 -v | awk -F': *' '/Server version/{print $2}')"
    echo "haproxy=$(haproxy -v | head -1)"
    echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
    echo "node=$( [ "$DYNAMIC" = node ] && node -v || echo 'not used')"
    echo "gnuplot=$(gnuplot --version)"
    echo "module=${MODULE_SRC_PATH:-$MODULE}"
    echo "module_sha256=$( [ -f "$MODULE" ] && sha256sum "$MODULE" | cut -c1-16 || echo missing)"
    echo "git_commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "git_dirty=$(git -C "$REPO" status --porcelain -- 'mod_sticky_route*.[ch]' 'sr_*.[ch]' 2>/dev/null | wc -l)"
    echo "duration=$DURATION"; echo "rounds=$ROUNDS"; echo "warmup=$WARMUP"
    echo "threads=$THREADS"; echo "conns=$CONNS"; echo "timeout=$TIMEOUT"
    echo "ttl=$TTL"; echo "proxy_procs=$PROXY_PROCS"; echo "proxy_threads=$PROXY_THREADS"; echo "proxy_mpm=$PROXY_MPM"
    echo "haproxy_threads=$HAPROXY_THREADS"; echo "mutex=$MUTEX"; echo "dynamic=$DYNAMIC"
    echo "taskset_wrk=${TS_WRK:-none}"; echo "taskset_proxy=${TS_PROXY:-none}"; echo "taskset_backend=${TS_BACKEND:-none}"
    echo "profile=${PROFILE:-none}"; echo "profile_seconds=$PROFILE_SECONDS"
    echo "cases=$(for r in "${SELECTED[@]}"; do printf '%s,' "${r%%|*}"; done | sed 's/,$//')"
    # The settings that differ from the defaults, as the command that repeats this run.
    cmd=""
    for kv in "BENCH_DURATION=$DURATION:10" "BENCH_ROUNDS=$ROUNDS:3" "BENCH_THREADS=$THREADS:2" "BENCH_CONNS=$CONNS:32" \
              "BENCH_PROXY_MPM=$PROXY_MPM:event" "BENCH_PROXY_PROCS=$PROXY_PROCS:2" "BENCH_PROXY_THREADS=$PROXY_THREADS:64" \
              "BENCH_TTL=$TTL:60" "BENCH_HAPROXY_THREADS=$HAPROXY_THREADS:2" "BENCH_MUTEX=$MUTEX:file" \
              "BENCH_CASES=$CASES:all" "BENCH_TASKSET_WRK=$TS_WRK:" "BENCH_TASKSET_PROXY=$TS_PROXY:" \
              "BENCH_TASKSET_BACKEND=$TS_BACKEND:" "BENCH_DYNAMIC=${BENCH_DYNAMIC:-auto}:auto"; do
        [ "${kv%:*}" = "${kv%%=*}=${kv##*:}" ] || cmd+="${kv%:*} "
    done
    [ -n "${BENCH_WARMUP:-}" ] && cmd+="BENCH_WARMUP=$WARMUP "
    [ -n "${BENCH_PROFILE:-}" ] && cmd+="BENCH_PROFILE=${BENCH_PROFILE} "
    [ -n "${BENCH_OUT:-}" ] && cmd+="BENCH_OUT=$OUT "
    echo "command=${cmd}make bench"
} > "$RUN/raw/meta.txt"
{
    for row in "${SELECTED[@]}"; do
        IFS='|' read -r name hp cookie served setc key desc <<<"$row"
        printf '%s\t%s\t%s\t%s\n' "$name" "$desc" "$cookie" "${BROKEN[$name]:-}"
    done
} > "$RUN/raw/cases.tsv"
# Error-log lines of the proxies (e.g. AH01102 races) are kept with the raw data.
for f in "$RUN"/logs/*.error.log; do
    [ -s "$f" ] && { echo "== $(basename "$f")"; tail -n 20 "$f"; }
done > "$RUN/raw/error-logs.txt" 2>/dev/null || true
cp "$RUN"/conf/*.conf "$RUN"/conf/haproxy.cfg "$RUN/raw/" 2>/dev/null || true
sed -i "s|$RUN|\$RUN|g" "$RUN"/raw/*.conf "$RUN"/raw/haproxy.cfg 2>/dev/null || true

# ---- report --------------------------------------------------------------------------------
mkdir -p "$OUT/raw"
rm -rf "$OUT/raw/latest"
cp -r "$RUN/raw" "$OUT/raw/latest"
status=0
/usr/bin/python3 "$BENCH/report.py" "$OUT/raw/latest" "$OUT" || status=$?
log "report: $OUT/results.md, chart: $OUT/throughput.png, raw: $OUT/raw/latest"

# ---- instructions per request under callgrind (bench/callgrind.sh) -----------------
# Repeatable where requests/s is not: each contender's whole proxy under callgrind,
# the difference of two runs of different lengths. BENCH_CALLGRIND=0 skips it.
if [ "${BENCH_CALLGRIND:-1}" != 0 ]; then
    BENCH_OUT="$OUT" BENCH_MODULE="$MODULE" bash "$BENCH/callgrind.sh" || status=1
fi
exit $status
