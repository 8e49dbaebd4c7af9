#!/bin/bash
# HTTPS at the front, measured (issue 19): the reference stack's proxy
# (templates/render-proxy-conf.sh TLS=files: mod_ssl + mod_http2 +
# lbmethod=sticky) against HAProxy terminating TLS, same certificate (ECDSA
# P-256), same OpenSSL, same backend (apache2 with templates/static-httpd.conf,
# a 2 kB file). h2load with a sticky cookie, over h2 and over http/1.1 (new
# TLS connections only at the start: keep-alive). Contenders interleaved,
# TLS_BENCH_ROUNDS rounds, medians.
#
# Per run: requests per second (h2load), and the proxy's CPU time per request
# (utime + stime of every proxy process from /proc, before and after, divided
# by the requests answered). Both share this machine's cores with h2load:
# compare the contenders, not the absolute numbers.
#
# Then (TLS_BENCH_CALLGRIND=1, the default) instructions per request under
# callgrind, as bench/callgrind.sh does for plain HTTP: the same httpd.conf as
# `apache2 -X` (one process) and HAProxy with nbthread 1, each alone under
# `valgrind --tool=callgrind` as www-data; h2load sends a fixed number of
# requests (-n) on TLS_BENCH_CG_CONNS connections, SHORT then LONG; per request
# = (Ir(LONG) - Ir(SHORT)) / (LONG - SHORT): start-up, the TLS handshakes (the
# same number in both runs) and shutdown cancel out. User-space instructions of
# the proxy process (callgrind's Ir); the kernel's TCP and the h2load side are
# not counted. Writes callgrind.md and callgrind.csv next to results.md.
#
#   bash bench/tls/run.sh                 (flock /tmp/sr-load.lock: a heavy run)
#   TLS_BENCH_ROUNDS=1 TLS_BENCH_DURATION=3 TLS_BENCH_OUT=/tmp/tls-bench bash bench/tls/run.sh
#   TLS_BENCH_ROUNDS=0 bash bench/tls/run.sh      (callgrind only; results.md kept)
set -euo pipefail
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
# shellcheck source=tests/lib.sh
. "$REPO/tests/lib.sh"
# shellcheck disable=SC2034  # read by log (tests/lib.sh)
SR_LOG_PREFIX=tls-bench
ROUNDS=${TLS_BENCH_ROUNDS:-3}
DURATION=${TLS_BENCH_DURATION:-8}
CONNS=${TLS_BENCH_CONNS:-32}
STREAMS=${TLS_BENCH_STREAMS:-10}     # h2 streams per connection (-m); http/1.1: 1
PORT_BASE=${TLS_BENCH_PORT_BASE:-22900}
MODULE=${TLS_BENCH_MODULE:-$REPO/.libs/mod_sticky_route.so}
OUT=${TLS_BENCH_OUT:-$REPO/docs/benchmarks/tls}
HAPROXY_THREADS=${TLS_BENCH_HAPROXY_THREADS:-2}
PATH_=/css/style.css
BACKEND_PORT=$((PORT_BASE + 1)) HTTPD_PORT=$((PORT_BASE + 2)) HTTPD_TLS=$((PORT_BASE + 3))
HAPROXY_TLS=$((PORT_BASE + 4))
CALLGRIND=${TLS_BENCH_CALLGRIND:-1}
CG_SHORT=${TLS_BENCH_CG_SHORT:-300}
CG_LONG=${TLS_BENCH_CG_LONG:-3000}
CG_CONNS=${TLS_BENCH_CG_CONNS:-2}
for v in ROUNDS CG_SHORT CG_LONG CG_CONNS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "tls-bench: $v must be a number, got '${!v}'" >&2; exit 2; }
done
(( CG_LONG > CG_SHORT && CG_SHORT >= CG_CONNS && CG_CONNS >= 1 )) ||
    { echo "tls-bench: need TLS_BENCH_CG_LONG > TLS_BENCH_CG_SHORT >= TLS_BENCH_CG_CONNS >= 1" >&2; exit 2; }

for c in apache2 haproxy h2load openssl; do
    command -v "$c" >/dev/null || { echo "tls-bench: $c missing (make deps)" >&2; exit 1; }
done
W=$(mktemp -d /tmp/sr-tls-bench.XXXXXX)
chmod 0755 "$W"
pids=()
cleanup() {
    httpd_stop "$W/proxy/httpd.conf" || true
    httpd_stop "$REPO/templates/static-httpd.conf" || true
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 1
    rm -rf "$W"
}
trap cleanup EXIT

# ---- certificate, backend, contenders ---------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=bench.sticky-route.test -addext subjectAltName=DNS:bench.sticky-route.test \
    -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null
chmod 0600 "$W/key.pem"
cat "$W/cert.pem" "$W/key.pem" > "$W/haproxy.pem"
chmod 0600 "$W/haproxy.pem"

mkdir -p "$W/backend" "$W/proxy" "$W/logs" "$W/site"
head -c 2048 /dev/zero | tr '\0' 'x' > "$W/site/file"
mkdir -p "$W/site/css" && cp "$W/site/file" "$W/site/css/style.css"
chown www-data:www-data "$W/backend" 2>/dev/null || true
chmod -R a+rX "$W/site"
httpd_start "$REPO/templates/static-httpd.conf" "$W/logs/backend.start" "$BACKEND_PORT" \
    env INSTANCE_NAME=backend STATIC_LISTEN=127.0.0.1:$BACKEND_PORT SITE_ROOT="$W/site" \
    STATIC_RUN_DIR="$W/backend" STATIC_ERROR_LOG="$W/logs/backend-error.log" \
    STATIC_ACCESS_LOG=/dev/null || { echo "tls-bench: the backend did not start" >&2; exit 1; }

env -i PATH="$PATH" STATIC_APP=127.0.0.1:$BACKEND_PORT=s1 DYNAMIC_APP=127.0.0.1:$BACKEND_PORT \
    LISTEN_PORT=$HTTPD_PORT TLS=files LISTEN_TLS_PORT=$HTTPD_TLS SERVER_NAME=bench.sticky-route.test \
    TLS_CERT_FILE="$W/cert.pem" TLS_KEY_FILE="$W/key.pem" \
    "$REPO/templates/render-proxy-conf.sh" --main-conf "$W/proxy/httpd.conf" --module "$MODULE" \
    --run-dir "$W/proxy" --log-dir "$W/logs" "$W/proxy/vhost.conf" >/dev/null
httpd_start "$W/proxy/httpd.conf" "$W/logs/proxy.start" "$HTTPD_TLS" ||
    { echo "tls-bench: the httpd proxy did not start" >&2; exit 1; }

haproxy_cfg() {   # THREADS: HAProxy's configuration on stdout
    cat <<EOF
global
    nbthread $1
    maxconn 4096
    # the suite httpd negotiates with h2load (checked below): the same cipher
    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256
defaults
    mode http
    timeout connect 3s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
frontend fe
    bind 127.0.0.1:$HAPROXY_TLS ssl crt $W/haproxy.pem alpn h2,http/1.1
    default_backend be
backend be
    cookie ROUTEID insert indirect nocache
    server s1 127.0.0.1:$BACKEND_PORT cookie s1
EOF
}
haproxy_cfg "$HAPROXY_THREADS" > "$W/haproxy.cfg"
haproxy -f "$W/haproxy.cfg" -D -p "$W/haproxy.pid"
sleep 2
pids+=("$(cat "$W/haproxy.pid")")

# CPU seconds (utime + stime) of a process tree's processes: httpd's parent
# and children, or HAProxy's process.
cpu_of() {   # $1 = contender
    local roots p total=0 ticks
    ticks=$(getconf CLK_TCK)
    case $1 in
        httpd) roots=$(cat "$W/proxy/proxy.pid"); roots="$roots $(pgrep -P "$roots" | tr '\n' ' ')" ;;
        haproxy) roots=$(cat "$W/haproxy.pid") ;;
    esac
    for p in $roots; do
        [ -r "/proc/$p/stat" ] || continue
        total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    awk -v t="$total" -v k="$ticks" 'BEGIN { printf "%.4f", t / k }'
}

# h2load_parse WHO PROTO OUTPUT: sets req ("succeeded failed") and cipher;
# exits unless h2load got PROTO and the bench's cipher.
h2load_parse() {
    local got
    req=$(sed -n 's/^requests: .* \([0-9]*\) succeeded, \([0-9]*\) failed.*/\1 \2/p' <<< "$3")
    cipher=$(sed -n 's/^Cipher: //p' <<< "$3" | head -n 1)
    got=$(sed -n 's/^Application protocol: //p' <<< "$3")
    [ "$got" = "$2" ] || { echo "tls-bench: $1 negotiated '$got', not $2" >&2; exit 1; }
    [ "$cipher" = TLS_AES_128_GCM_SHA256 ] ||
        { echo "tls-bench: $1 negotiated cipher '$cipher'" >&2; exit 1; }
}

mkdir -p "$OUT"
if [ "$ROUNDS" -gt 0 ]; then
raw=$OUT/raw.csv
echo "round,contender,protocol,requests,failed,rps,cpu_s,cpu_us_per_req,cipher" > "$raw"
for round in $(seq 1 "$ROUNDS"); do
    for proto in h2 http/1.1; do
        order=(httpd haproxy)
        [ $((round % 2)) = 0 ] && order=(haproxy httpd)
        for who in "${order[@]}"; do
            port=$HTTPD_TLS
            [ "$who" = haproxy ] && port=$HAPROXY_TLS
            m=$STREAMS
            [ "$proto" = http/1.1 ] && m=1
            before=$(cpu_of "$who")
            out=$(h2load -c "$CONNS" -m "$m" -t 1 -D "$DURATION" --warm-up-time 1 \
                  --npn-list "$proto" -H "cookie: ROUTEID=s1" "https://127.0.0.1:$port$PATH_" 2>&1)
            after=$(cpu_of "$who")
            h2load_parse "$who" "$proto" "$out"
            rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' <<< "$out")
            set -- $req
            awk -v r="$round" -v w="$who" -v p="$proto" -v n="$1" -v f="$2" -v rps="$rps" \
                -v b="$before" -v a="$after" -v c="$cipher" 'BEGIN {
                    printf "%s,%s,%s,%d,%d,%s,%.3f,%.1f,%s\n", r, w, p, n, f, rps, a - b,
                           n ? (a - b) * 1e6 / n : 0, c }' >> "$raw"
            tail -n 1 "$raw"
        done
    done
done

# ---- medians ------------------------------------------------------------------
{
    echo "| contender | protocol | requests/s (median) | proxy CPU us/request (median) | failed | cipher |"
    echo "|---|---|---|---|---|---|"
    for proto in h2 http/1.1; do
        for who in httpd haproxy; do
            awk -F, -v w="$who" -v p="$proto" 'NR > 1 && $2 == w && $3 == p {
                rps[++n] = $6; cpu[n] = $8; failed += $5; cipher = $9 }
                function median(a, n,   i, j, t) {
                    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
                        if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
                END { printf "| %s | %s | %.0f | %.1f | %d | %s |\n",
                      (w == "httpd" ? "httpd + mod_sticky_route (stack config)" : "HAProxy 2.6 (cookie insert)"),
                      p, median(rps, n), median(cpu, n), failed, cipher }' "$raw"
        done
    done
} > "$OUT/results.md"
cat "$OUT/results.md"
fi
[ "$CALLGRIND" = 1 ] || exit 0

# ---- instructions per request under callgrind ---------------------------------
for c in valgrind setpriv; do
    command -v "$c" >/dev/null || { echo "tls-bench: $c missing (make deps)" >&2; exit 1; }
done
id www-data >/dev/null 2>&1 || { echo "tls-bench: callgrind needs the www-data user" >&2; exit 1; }
# The throughput contenders go; the same configurations run again, one process
# each, as www-data (who must read the key and write logs, run dir, output).
httpd_stop "$W/proxy/httpd.conf"
kill -TERM "${pids[@]}"
pids=()
wait_port "$HTTPD_TLS" 30 free && wait_port "$HAPROXY_TLS" 30 free ||
    { echo "tls-bench: the throughput contenders did not stop" >&2; exit 1; }
haproxy_cfg 1 > "$W/haproxy-1.cfg"
mkdir -p "$W/cg"
chown -R www-data:www-data "$W/proxy" "$W/logs" "$W/cg" "$W/key.pem" "$W/haproxy.pem" "$W/haproxy-1.cfg"
VG_PID=""
cg_stop() {   # the proxy under valgrind, if any: SIGTERM, and wait
    [ -n "$VG_PID" ] || return 0
    kill -TERM "$VG_PID" 2>/dev/null || true
    wait "$VG_PID" 2>/dev/null || true
    VG_PID=""
}
trap 'cg_stop; cleanup' EXIT

# cg_run WHO PROTO N: the proxy alone under callgrind, N requests from h2load;
# prints the Ir total; exits unless all N succeeded with a 2xx.
cg_run() {
    local who=$1 proto=$2 n=$3 port=$HTTPD_TLS m=1 f out vglog
    f=$W/cg/$who.${proto//\//}.$n
    vglog=$W/logs/$who.${proto//\//}.$n.valgrind
    [ "$proto" = h2 ] && m=$STREAMS
    if [ "$who" = httpd ]; then
        setpriv --reuid=www-data --regid=www-data --init-groups valgrind --tool=callgrind \
            --callgrind-out-file="$f.out" apache2 -X -f "$W/proxy/httpd.conf" >"$vglog" 2>&1 &
    else
        port=$HAPROXY_TLS
        setpriv --reuid=www-data --regid=www-data --init-groups valgrind --tool=callgrind \
            --callgrind-out-file="$f.out" haproxy -db -f "$W/haproxy-1.cfg" >"$vglog" 2>&1 &
    fi
    VG_PID=$!
    wait_port "$port" 120 || { cg_stop; echo "tls-bench: $who under valgrind not listening" >&2; cat "$vglog" >&2; exit 1; }
    out=$(h2load -n "$n" -c "$CG_CONNS" -m "$m" -t 1 --npn-list "$proto" \
          -H "cookie: ROUTEID=s1" "https://127.0.0.1:$port$PATH_" 2>&1)
    cg_stop
    wait_port "$port" 30 free || true
    h2load_parse "$who" "$proto" "$out"
    grep -q "^status codes: $n 2xx," <<< "$out" && [ "$req" = "$n 0" ] ||
        { echo "tls-bench: $who $proto n=$n: not $n answers 2xx:" >&2; echo "$out" >&2; exit 1; }
    [ -s "$f.out" ] || { echo "tls-bench: no callgrind output for $who (see below)" >&2; cat "$vglog" >&2; exit 1; }
    awk '/^totals:/ {print $2; exit}' "$f.out"
}

cg=$OUT/callgrind.csv
echo "contender,protocol,connections,short,long,ir_short,ir_long,ir_per_request,cipher" > "$cg"
for proto in h2 http/1.1; do
    for who in httpd haproxy; do
        log "$who $proto: $CG_SHORT and $CG_LONG requests under callgrind"
        a=$(cg_run "$who" "$proto" "$CG_SHORT")
        b=$(cg_run "$who" "$proto" "$CG_LONG")
        awk -v w="$who" -v p="$proto" -v c="$CG_CONNS" -v s="$CG_SHORT" -v l="$CG_LONG" -v a="$a" -v b="$b" \
            'BEGIN { printf "%s,%s,%d,%d,%d,%d,%d,%.0f,TLS_AES_128_GCM_SHA256\n", w, p, c, s, l, a, b, (b - a) / (l - s) }' >> "$cg"
        tail -n 1 "$cg"
    done
done
{
    echo "# TLS: instructions per request under callgrind"
    echo
    echo "Generated by \`bench/tls/run.sh\` on $(date -u +%Y-%m-%d) at commit \`$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)\`;"
    echo "docs/benchmarks/tls/README.md explains it."
    echo
    echo "| contender | protocol | instructions / request | vs HAProxy | Ir ($CG_SHORT req) | Ir ($CG_LONG req) |"
    echo "|---|---|---:|---:|---:|---:|"
    awk -F, 'NR > 1 { per[$1 "," $2] = $8; row[++n] = $0 }
        END {
            for (i = 1; i <= n; i++) {
                split(row[i], f, ",")
                printf "| %s | %s | %d | %.2fx | %d | %d |\n",
                    (f[1] == "httpd" ? "httpd + mod_sticky_route (stack config, `apache2 -X`)" : "HAProxy (cookie insert, nbthread 1)"),
                    f[2], f[8], f[8] / per["haproxy," f[2]], f[6], f[7]
            } }' "$cg"
    echo
    echo "h2load \`-n\` $CG_SHORT and $CG_LONG requests on $CG_CONNS connections (h2: $STREAMS streams each),"
    echo "cipher TLS_AES_128_GCM_SHA256, ECDSA P-256; per request = (Ir long - Ir short) / $((CG_LONG - CG_SHORT))."
    echo "$(valgrind --version), $(apache2 -v | awk -F': *' '/Server version/{print $2}'), $(haproxy -v | head -1 | awk '{print $1, $2, $3}'), $(h2load --version | head -1)."
} > "$OUT/callgrind.md"
cat "$OUT/callgrind.md"
