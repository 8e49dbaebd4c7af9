# tests/lib.sh: the shell library of the test and benchmark scripts
# (tests/compose, tests/swarm, tests/deb, bench/run.sh, bench/callgrind.sh).
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
