# tests/lib.sh: the shell library of the test and benchmark scripts
# (tests/compose, tests/swarm, tests/deb, bench/run.sh, bench/callgrind.sh,
# bench/tls/run.sh).
# Sourced, never run; bash. Set SR_LOG_PREFIX first (or call sr_init): it
# names the script in every message (say, fail, log).
#
#   sr_init PREFIX             a script's start: set -euo pipefail, LC_ALL=C,
#                              REPO (the checkout), cd "$REPO", SR_LOG_PREFIX
#   say MSG...                 "PREFIX: MSG" on stdout
#   fail MSG...                "PREFIX: FAIL: MSG" on stderr, exit 1
#   log MSG...                 "[PREFIX HH:MM:SS] MSG" on stderr
#   step MSG...                say "---- MSG (at Ns)" since T0; sets STEP_T0
#   port_free PORT             nothing listens on TCP PORT (any address; ss)
#   port_busy PORT             something accepts on 127.0.0.1:PORT (connect)
#   first_free_port LOW HIGH [N]
#                              prints the first port P of LOW..HIGH with P..P+N-1
#                              all free (N: 1); status 1 when there is none
#   wait_for SECONDS CMD...    runs CMD every 0.1 s until it succeeds (status 0)
#                              or SECONDS have passed (status 1)
#   wait_port PORT SECONDS [free]
#                              wait_for port_busy PORT (port_busy fails, with free)
#   make_secret FILE           creates FILE (mode 0600 by umask 077) with a
#                              cookie-signing secret (32 random bytes, base64)
#                              when it is missing or empty
#   render_template OUT NAME=VALUE... -- TEMPLATE...
#                              concatenates the templates into OUT, each ${NAME}
#                              replaced by its VALUE: Python's string.Template,
#                              as every template of the tests (integration
#                              harness, bench/balance, bench/hash); a
#                              placeholder without a value is reported, exit 2
#
# apache2 test instances (a configuration CONF with its own PidFile and Listen;
# like tests/srtest/apache.py, minus NO_DETACH: the daemon detaches):
#   httpd_configtest CONF [LOG]
#                              `apache2 -t -f CONF`, its output into LOG (or on
#                              stdout); its status
#   httpd_start CONF LOG [PORT] [WRAPPER...]
#                              `WRAPPER... apache2 -f CONF -k start` (output into
#                              LOG; WRAPPER: say env VAR=..., taskset -c 1), then
#                              waits up to 15 s for the pid file (PidFile as
#                              apache2 -D DUMP_RUN_CFG reads it, under WRAPPER)
#                              naming a live parent, a child of it, and PORT
#                              accepting (no PORT, or 0: no port wait). Status
#                              1 after a log line with what failed and the last
#                              lines of LOG and of the ErrorLog (what did start
#                              is stopped first, httpd_stop)
#   httpd_stop CONF            stops an instance httpd_start started: SIGTERM to
#                              the parent of its pid file (what `-k stop` sends;
#                              no config parse, so no WRAPPER needed), waits up
#                              to 15 s for it and its children to be gone, then
#                              SIGKILL to what is left. Status 0 when nothing
#                              is left (also when nothing was running)
# shellcheck shell=bash

sr_init() {   # PREFIX
    set -euo pipefail
    export LC_ALL=C
    REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
    cd "$REPO"
    SR_LOG_PREFIX=$1
}

say()  { echo "${SR_LOG_PREFIX:-test}: $*"; }
fail() { echo "${SR_LOG_PREFIX:-test}: FAIL: $*" >&2; exit 1; }
log()  { printf '[%s %s] %s\n' "${SR_LOG_PREFIX:-test}" "$(date +%H:%M:%S)" "$*" >&2; }
step() {
    say "---- $* (at $((SECONDS - ${T0:-0}))s)"
    # shellcheck disable=SC2034  # read by the sourcing script
    STEP_T0=$SECONDS
}

port_free() { [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

first_free_port() {   # LOW HIGH [N]
    local p i n=${3:-1} ok
    for p in $(seq "$1" "$2"); do
        ok=1
        for i in $(seq 0 $((n - 1))); do
            port_free $((p + i)) || { ok=0; break; }
        done
        [ "$ok" = 1 ] && { echo "$p"; return 0; }
    done
    return 1
}

wait_for() {   # SECONDS CMD...
    local tenths=$(($1 * 10)) i
    shift
    for i in $(seq "$tenths"); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

_port_closed() { ! port_busy "$1"; }
wait_port() {   # PORT SECONDS [free]
    if [ "${3:-}" = free ]; then wait_for "$2" _port_closed "$1"; else wait_for "$2" port_busy "$1"; fi
}

make_secret() {   # FILE
    [ -s "$1" ] && return 0
    say "generating $1 (git-ignored)"
    (umask 077; head -c 32 /dev/urandom | base64 > "$1")
}

render_template() {   # OUT NAME=VALUE... -- TEMPLATE...
    /usr/bin/python3 - "${SR_LOG_PREFIX:-test}" "$@" <<'PY' || exit 2
import string
import sys

prefix, out, args = sys.argv[1], sys.argv[2], sys.argv[3:]
end = args.index("--") if "--" in args else len(args)
values = dict(a.split("=", 1) for a in args[:end])
text = "".join(open(path).read() for path in args[end + 1:])
try:
    rendered = string.Template(text).substitute(values)
except (KeyError, ValueError) as e:
    sys.exit("%s: unrendered placeholder in %s: %s" % (prefix, out, e))
with open(out, "w") as f:
    f.write(rendered)
PY
}

# ---- apache2 test instances --------------------------------------------------
declare -gA SR_HTTPD_PIDFILE=()   # CONF -> its pid file (set by httpd_start)

httpd_configtest() {   # CONF [LOG]
    if [ -n "${2:-}" ]; then apache2 -t -f "$1" >"$2" 2>&1; else apache2 -t -f "$1" 2>&1; fi
}

_httpd_run_cfg() {   # KEY CONF WRAPPER...: a value of apache2 -D DUMP_RUN_CFG
    local key=$1 conf=$2
    shift 2
    "$@" apache2 -f "$conf" -t -D DUMP_RUN_CFG 2>/dev/null |
        sed -n "s/^$key: \"\{0,1\}\([^\"]*\)\"\{0,1\}.*/\1/p" | head -n 1
}

_httpd_pid() {   # PIDFILE: the live pid it names (status 1: none)
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

_httpd_has_child() { [ -n "$(pgrep -P "$1")" ]; }

httpd_start() {   # CONF LOG [PORT] [WRAPPER...]
    local conf=$1 out=$2 port=${3:-0} pf pid elog what=""
    shift 2; [ $# -gt 0 ] && shift
    pf=$(_httpd_run_cfg PidFile "$conf" "$@")
    elog=$(_httpd_run_cfg "Main ErrorLog" "$conf" "$@")
    if [ -z "$pf" ]; then   # no DUMP_RUN_CFG: the configuration is broken
        "$@" apache2 -t -f "$conf" >"$out" 2>&1 || true
        what="config test failed (no PidFile from apache2 -t -D DUMP_RUN_CFG)"
    else
        SR_HTTPD_PIDFILE[$conf]=$pf
        if ! "$@" apache2 -f "$conf" -k start >"$out" 2>&1; then
            what="apache2 -k start failed"
        elif ! wait_for 15 _httpd_pid "$pf" >/dev/null; then
            what="no live pid in $pf"
        else
            pid=$(_httpd_pid "$pf")
            if ! wait_for 15 _httpd_has_child "$pid"; then
                what="parent $pid has no child"
            elif [ "$port" != 0 ] && ! wait_port "$port" 15; then
                what="not listening on $port"
            fi
        fi
    fi
    [ -z "$what" ] && return 0
    httpd_stop "$conf" || true   # what started, if anything: gone, as on the python side
    log "httpd $conf: $what; $out: $(tail -n 3 "$out" 2>/dev/null | tr '\n' ' ')${elog:+; $elog: $(tail -n 3 "$elog" 2>/dev/null | tr '\n' ' ')}"
    return 1
}

_httpd_gone() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }

httpd_stop() {   # CONF
    local pf=${SR_HTTPD_PIDFILE[$1]:-} pid pids
    [ -n "$pf" ] || pf=$(_httpd_run_cfg PidFile "$1")
    [ -n "$pf" ] && pid=$(_httpd_pid "$pf") || return 0
    # shellcheck disable=SC2207  # pids are words
    pids=("$pid" $(pgrep -P "$pid"))
    kill -TERM "$pid" 2>/dev/null || true
    wait_for 15 _httpd_gone "${pids[@]}" && return 0
    log "httpd $1: still running 15 s after SIGTERM, SIGKILL to ${pids[*]}"
    kill -KILL "${pids[@]}" 2>/dev/null || true
    wait_for 5 _httpd_gone "${pids[@]}"
}
