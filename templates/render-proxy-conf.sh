#!/bin/bash
# Renders the reference stack's reverse proxy configuration from the
# environment (templates/proxy-vhost.conf.tmpl, optionally
# templates/proxy-main.conf.tmpl). bash + coreutils + awk only: it also runs
# as the entrypoint step of a debian:bookworm-slim container.
#
# Usage: render-proxy-conf.sh [options] OUTPUT_FILE
#
#   OUTPUT_FILE          the vhost file to write (e.g. Debian's
#                        /etc/apache2/sites-enabled/000-default.conf)
#   --main-conf FILE     also write a standalone main httpd config that loads
#                        the modules and includes OUTPUT_FILE (for `make run`)
#   --module PATH        mod_sticky_route.so for --main-conf
#                        (default /usr/lib/apache2/modules/mod_sticky_route.so)
#   --run-dir DIR        pid file, mutexes, shared memory for --main-conf
#                        (default: the directory of OUTPUT_FILE)
#   --log-dir DIR        write the proxy's error and access logs in DIR (the
#                        vhost gets its own ErrorLog/CustomLog; without it the
#                        vhost uses the server's logs)
#   --listen-address IP  address of the Listen line of --main-conf
#                        (default 127.0.0.1)
#   --ports-conf FILE    also write FILE with "Listen LISTEN_PORT" (e.g.
#                        Debian's /etc/apache2/ports.conf in a container)
#
# Environment (see docs/STACK.md for the table):
#   STATIC_APP, DYNAMIC_APP   comma-separated host:port[=route] lists;
#                             STATIC_APP_1..N / DYNAMIC_APP_1..N accepted too
#   LISTEN_PORT (80)  SERVER_NAME (localhost)  API_PREFIX (/api/)
#   ADMIN_ALLOW (127.0.0.1)   comma-separated IPs or CIDRs for the admin pages
#   STICKY_ROUTE_SECRET or STICKY_ROUTE_SECRET_FILE (optional, not both)
#   A member that is a host NAME without =route is a service to discover:
#   "StickyRouteDiscover http://name:port interval=DISCOVER_INTERVAL (2)
#   max=DISCOVER_MAX (16) hold=DISCOVER_HOLD (10)"; the module follows its
#   addresses at run time (a gone address keeps its slot DISCOVER_HOLD s).
#   Its requests wait up to DISCOVER_WAIT (10) seconds for a member while it
#   has none (StickyRouteWait; 0: off).
#   An SRV name (_service._proto.name, no port: "_http._tcp.static.service.
#   consul") is discovered from its SRV records (ports from the records).
#   DISCOVER_INTERVAL=ttl follows the records' TTLs.
#   One per pool; names with a route and addresses stay fixed members.
#   Balancing of the static (sticky) pool, all optional:
#   STICKY_MAX_IDLE, STICKY_MAX_LIFE   seconds (StickyRouteCookie MaxIdle=/MaxLife=)
#   STICKY_ELECT                       roundrobin | leastbusy (StickyRouteElect)
#   STICKY_SLOW_START                  seconds (StickyRouteSlowStart)
#   STICKY_REBALANCE                   "IDLE_SECONDS [FACTOR]" (StickyRouteRebalance)
#   (empty is the same as unset)
#   HTTPS at the front (docs/STACK.md, README "HTTPS"):
#   TLS (off) | files | acme    the site on LISTEN_TLS_PORT (443) with h2 and
#                     http/1.1; LISTEN_PORT redirects to it (ACME challenges
#                     excepted; TLS_PUBLIC_PORT: the port it names, default
#                     LISTEN_TLS_PORT); HSTS_MAX_AGE: Strict-Transport-Security
#   SERVER_ALIASES    comma-separated extra names (ServerAlias; in MDomain)
#   files: TLS_CERT_FILE, TLS_KEY_FILE (PEM; checked with openssl: readable,
#          key of the certificate, not expired; the key is never shown)
#   acme:  ACME_EMAIL (required), ACME_DIRECTORY (Let's Encrypt production),
#          ACME_CA_FILE (the CA's HTTPS root, for a private CA), ACME_STORE_DIR
#          (/var/lib/apache2/md: keep it on a volume), ACME_CHALLENGES
#          (mod_md's choice), ACME_RENEW_WINDOW (mod_md's default, 33%),
#          ACME_EVENT_CMD (an absolute path: mod_md runs it, as the server's
#          user, at each event - `renewed` when a new certificate waits for
#          the graceful restart; MDMessageCmd; the container image sets it)
#
# A bad value: exit 2 with a message naming the variable and its value (never
# the secret), nothing written. A good one: every file is written to a
# temporary file in its target directory and renamed into place.
set -euo pipefail
export LC_ALL=C

PROG=render-proxy-conf
TEMPLATE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
VHOST_TEMPLATE=$TEMPLATE_DIR/proxy-vhost.conf.tmpl
MAIN_TEMPLATE=$TEMPLATE_DIR/proxy-main.conf.tmpl

MPM_THREADS=64          # ThreadsPerChild of the proxy
MEMBER_PARAMS='keepalive=On ttl=60 connectiontimeout=3 retry=5'
ROUTE_MAX=63            # mod_proxy's limit on route= (64 bytes with the NUL)

errors=()
err() { local IFS=' '; errors+=("$*"); }
# A value quoted for a message: 'as is', or $'...' with control characters
# (newlines...) and quotes made visible.
show() {
    if [[ $1 =~ [[:cntrl:]] || $1 == *\'* ]]; then
        printf '%q' "$1"
    else
        printf "'%s'" "$1"
    fi
}
die_usage() {
    echo "$PROG: $*" >&2
    echo "usage: $PROG [--main-conf FILE] [--module PATH] [--run-dir DIR] [--log-dir DIR]" \
         "[--listen-address IP] [--ports-conf FILE] OUTPUT_FILE" >&2
    exit 2
}

# ---- command line ---------------------------------------------------------
main_conf='' module='/usr/lib/apache2/modules/mod_sticky_route.so' run_dir='' log_dir=''
listen_address='127.0.0.1' ports_conf='' output=''
while [ $# -gt 0 ]; do
    case $1 in
        --main-conf|--module|--run-dir|--log-dir|--listen-address|--ports-conf)
            [ $# -ge 2 ] || die_usage "$1 needs a value"
            case $1 in
                --main-conf) main_conf=$2 ;;
                --module) module=$2 ;;
                --run-dir) run_dir=$2 ;;
                --log-dir) log_dir=$2 ;;
                --listen-address) listen_address=$2 ;;
                --ports-conf) ports_conf=$2 ;;
            esac
            shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        --) shift; break ;;
        -*) die_usage "unknown option $(show "$1")" ;;
        *) [ -z "$output" ] || die_usage "more than one OUTPUT_FILE"; output=$1; shift ;;
    esac
done
if [ $# -gt 0 ]; then
    [ -z "$output" ] && [ $# -eq 1 ] || die_usage "more than one OUTPUT_FILE"
    output=$1
fi
[ -n "$output" ] || die_usage "OUTPUT_FILE missing"
for t in "$VHOST_TEMPLATE" "$MAIN_TEMPLATE"; do
    [ -r "$t" ] || { echo "$PROG: template $t not readable" >&2; exit 2; }
done

# ---- value checks (each returns 0 when the value is good) ----------------
SAFE_PATH_RE='^/[A-Za-z0-9._/+-]*$'
LABEL_RE='[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'

is_ipv4() {
    local IFS=. octets o
    [[ $1 =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || return 1
    read -r -a octets <<< "$1"
    for o in "${octets[@]}"; do
        [[ $o =~ ^(0|[1-9][0-9]*)$ ]] && [ "$o" -le 255 ] || return 1
    done
}
is_ipv6() {
    [[ $1 =~ ^[0-9A-Fa-f:.]+$ ]] && [[ $1 == *:*:* ]] && [ ${#1} -le 45 ] || return 1
    [[ $1 != *:::* ]] || return 1
    local doubles=${1//[^:]/}
    local without=${1//::/}
    # at most one "::"
    [ $(( (${#1} - ${#without}) / 2 )) -le 1 ] && [ ${#doubles} -le 7 ]
}
is_hostname() {
    [ ${#1} -le 253 ] && [[ $1 =~ ^$LABEL_RE(\.$LABEL_RE)*$ ]] || return 1
    # all-numeric dotted names must be IPv4 addresses
    if [[ $1 =~ ^[0-9.]+$ ]]; then is_ipv4 "$1"; fi
}
is_port() { [[ $1 =~ ^[1-9][0-9]{0,4}$ ]] && [ "$1" -le 65535 ]; }

# Members of one pool into the array named by $1 as "host:port route" lines.
# $2: variable name (for messages), $3: its value.
parse_members() {
    local -n into=$1
    local var=$2 value=$3 item host port route rest
    if [ -z "$value" ]; then
        err "$var=$(show "$value"): empty member list (expected host:port[=route],...)"
        return
    fi
    if [[ $value == ,* || $value == *, || $value == *,,* ]]; then
        err "$var=$(show "$value"): empty member in the list (stray comma)"
        return
    fi
    local IFS=,
    local -a items
    read -r -d '' -a items < <(printf '%s\0' "$value") || true
    for item in "${items[@]}"; do
        route='' rest=$item
        if [[ $rest == *=* ]]; then
            route=${rest#*=}
            rest=${rest%%=*}
            if ! [[ $route =~ ^[A-Za-z0-9_-]+$ ]] || [ ${#route} -gt $ROUTE_MAX ]; then
                err "$var=$(show "$value"): bad route $(show "$route") in member $(show "$item")" \
                    "(1-$ROUTE_MAX characters of A-Z a-z 0-9 _ -)"
                continue
            fi
        fi
        if [[ $rest == _* ]]; then
            # an SRV name (_service._proto.name): discovered, each member's
            # port from its record
            if ! [[ $rest =~ ^_[A-Za-z0-9-]+\._[A-Za-z0-9-]+(\.[A-Za-z0-9_-]+)+$ ]] ||
               [ ${#rest} -gt 253 ]; then
                err "$var=$(show "$value"): malformed SRV name $(show "$rest") in member" \
                    "$(show "$item") (expected _service._proto.name, no port)"
                continue
            fi
            if [ -n "$route" ]; then
                err "$var=$(show "$value"): SRV name $(show "$rest") with a route: a" \
                    "discovered pool's routes are derived from its members' addresses"
                continue
            fi
            into+=("$rest:srv -")
            continue
        elif [[ $rest =~ ^\[([^]]*)\]:([^:]*)$ ]]; then
            host=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]}
            if ! is_ipv6 "$host"; then
                err "$var=$(show "$value"): malformed IPv6 address $(show "$host") in member $(show "$item")"
                continue
            fi
            host="[$host]"
        elif [[ $rest =~ ^([^:]*):([^:]*)$ ]]; then
            host=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]}
            if ! is_hostname "$host"; then
                err "$var=$(show "$value"): malformed host $(show "$host") in member $(show "$item")" \
                    "(expected a host name or an IPv4 address; IPv6 as [addr]:port)"
                continue
            fi
        else
            err "$var=$(show "$value"): malformed member $(show "$item") (expected host:port[=route])"
            continue
        fi
        if ! is_port "$port"; then
            if [[ $port =~ ^[0-9]+$ ]]; then
                err "$var=$(show "$value"): port $(show "$port") of member $(show "$item")" \
                    "out of range (expected 1-65535)"
            else
                err "$var=$(show "$value"): port $(show "$port") of member $(show "$item")" \
                    "is not a number (expected 1-65535)"
            fi
            continue
        fi
        into+=("$host:$port ${route:--}")
    done
}

# One pool: $1 = prefix (STATIC_APP or DYNAMIC_APP), $2 = array name.
collect_pool() {
    local prefix=$1 arr=$2 name n found=0
    local -n members=$arr
    if [ -n "${!prefix+set}" ]; then
        found=1
        parse_members "$arr" "$prefix" "${!prefix}"
    fi
    local -a numbered=()
    for name in $(compgen -e); do
        if [[ $name =~ ^${prefix}_([0-9]+)$ ]]; then
            n=${BASH_REMATCH[1]}
            if ! [[ $n =~ ^[1-9][0-9]{0,5}$ ]]; then
                err "$name=$(show "${!name}"): numbered members start at ${prefix}_1, without leading zeros"
                continue
            fi
            numbered+=("$n")
        fi
    done
    for n in $(printf '%s\n' "${numbered[@]}" | sort -n); do
        found=1
        name=${prefix}_$n
        parse_members "$arr" "$name" "${!name}"
    done
    if [ $found = 0 ]; then
        err "$prefix is not set (and no ${prefix}_1..N): at least one host:port is needed"
        return
    fi
    # No member (host:port) and no route twice in one pool; at most one
    # service name to discover per pool.
    local -A seen_addr=() seen_route=()
    local m addr route discovered=''
    for m in "${members[@]}"; do
        if is_discovered "$m"; then
            if [ -n "$discovered" ]; then
                err "$prefix: $(show "$discovered") and $(show "${m% *}") are both service names" \
                    "without a route: one per pool is discovered (scale one service, or give" \
                    "each member a route: name:port=route)"
            fi
            discovered=${m% *}
        fi
    done
    for m in "${members[@]}"; do
        addr=${m% *} route=${m#* }
        if [ -n "${seen_addr[$addr]+x}" ]; then
            err "$prefix: member $(show "$addr") listed twice"
        fi
        seen_addr[$addr]=1
        if [ "$route" != - ]; then
            if [ -n "${seen_route[$route]+x}" ]; then
                err "$prefix: route $(show "$route") given to two members"
            fi
            seen_route[$route]=1
        fi
    done
}

# Is the member a service name to discover (a host name, not an address,
# without =route)?
is_discovered() {   # $1 = "host:port route"
    local addr=${1% *} route=${1#* } host
    host=${addr%:*}
    [ "$route" = - ] && [[ $host != \[* ]] && ! is_ipv4 "$host"
}

# "        BalancerMember ..." lines of a pool; a service name without a route
# becomes "StickyRouteDiscover ...": the module follows its addresses.
member_lines() {
    local -n list=$1
    local m addr route out=''
    for m in "${list[@]}"; do
        addr=${m% *} route=${m#* }
        if is_discovered "$m"; then
            [[ $addr == *:srv ]] && addr=${addr%:srv}     # an SRV name: no port
            out+="        StickyRouteDiscover \"http://$addr\" interval=$DISCOVER_INTERVAL"
            out+=" max=$DISCOVER_MAX hold=$DISCOVER_HOLD $MEMBER_PARAMS"$'\n'
            [ "$DISCOVER_WAIT" = 0 ] || out+="        StickyRouteWait $DISCOVER_WAIT"$'\n'
            continue
        fi
        out+="        BalancerMember \"http://$addr\""
        [ "$route" = - ] || out+=" route=$route"
        out+=" $MEMBER_PARAMS"$'\n'
    done
    printf '%s' "${out%$'\n'}"
}

# ---- read and check the environment ----------------------------------------
# Discovery of a service name (StickyRouteDiscover): every how many seconds,
# how many members (slots) at most, and how long a gone address keeps its
# slot before another address may take it.
DISCOVER_INTERVAL=${DISCOVER_INTERVAL:-2}
DISCOVER_MAX=${DISCOVER_MAX:-16}
[ "$DISCOVER_INTERVAL" = ttl ] ||
    { [[ $DISCOVER_INTERVAL =~ ^[1-9][0-9]{0,4}$ ]] && [ "$DISCOVER_INTERVAL" -le 86400 ]; } ||
    err "DISCOVER_INTERVAL=$(show "$DISCOVER_INTERVAL"): expected seconds, 1-86400, or ttl" \
        "(the records' TTL)"
[[ $DISCOVER_MAX =~ ^[1-9][0-9]{0,3}$ ]] && [ "$DISCOVER_MAX" -le 1024 ] ||
    err "DISCOVER_MAX=$(show "$DISCOVER_MAX"): expected a number of members, 1-1024"
DISCOVER_HOLD=${DISCOVER_HOLD:-10}
[[ $DISCOVER_HOLD =~ ^(0|[1-9][0-9]{0,4})$ ]] && [ "$DISCOVER_HOLD" -le 86400 ] ||
    err "DISCOVER_HOLD=$(show "$DISCOVER_HOLD"): expected seconds a gone address keeps its slot, 0-86400"
DISCOVER_WAIT=${DISCOVER_WAIT:-10}
[[ $DISCOVER_WAIT =~ ^(0|[1-9][0-9]{0,3})$ ]] && [ "$DISCOVER_WAIT" -le 3600 ] ||
    err "DISCOVER_WAIT=$(show "$DISCOVER_WAIT"): expected seconds a request waits for a" \
        "member of an empty discovered pool, 0 (off) to 3600"

static_members=()
dynamic_members=()
collect_pool STATIC_APP static_members
collect_pool DYNAMIC_APP dynamic_members

LISTEN_PORT=${LISTEN_PORT-80}
is_port "$LISTEN_PORT" || err "LISTEN_PORT=$(show "$LISTEN_PORT"): expected an integer 1-65535"

SERVER_NAME=${SERVER_NAME-localhost}
is_hostname "$SERVER_NAME" || is_ipv4 "$SERVER_NAME" ||
    err "SERVER_NAME=$(show "$SERVER_NAME"): expected a host name (letters, digits, dots, hyphens)"

API_PREFIX=${API_PREFIX-/api/}
if ! [[ $API_PREFIX =~ ^/([A-Za-z0-9._~-]+/)+$ ]] || [[ $API_PREFIX =~ (^|/)\.\.?/ ]]; then
    err "API_PREFIX=$(show "$API_PREFIX"): expected a URL path like /api/ (starts and ends with /," \
        "segments of A-Z a-z 0-9 . _ ~ -, no . or .. segment)"
elif [[ $API_PREFIX == /balancer-manager/* || $API_PREFIX == /sticky-route-status/* ]]; then
    err "API_PREFIX=$(show "$API_PREFIX"): collides with an admin endpoint"
fi

ADMIN_ALLOW=${ADMIN_ALLOW-127.0.0.1}
admin_list=()
if [ -z "$ADMIN_ALLOW" ] || [[ $ADMIN_ALLOW == ,* || $ADMIN_ALLOW == *, || $ADMIN_ALLOW == *,,* ]]; then
    err "ADMIN_ALLOW=$(show "$ADMIN_ALLOW"): expected a comma-separated list of IP addresses or CIDRs"
else
    IFS=, read -r -d '' -a admin_items < <(printf '%s\0' "$ADMIN_ALLOW") || true
    for a in "${admin_items[@]}"; do
        addr=${a%/*} bits=''
        [[ $a == */* ]] && bits=${a#*/}
        if is_ipv4 "$addr"; then max=32
        elif is_ipv6 "$addr"; then max=128
        else
            err "ADMIN_ALLOW=$(show "$ADMIN_ALLOW"): $(show "$a") is not an IP address or CIDR"
            continue
        fi
        if [[ $a == */* ]] && ! { [[ $bits =~ ^(0|[1-9][0-9]{0,2})$ ]] && [ "$bits" -le $max ]; }; then
            err "ADMIN_ALLOW=$(show "$ADMIN_ALLOW"): prefix length of $(show "$a") must be 0-$max"
            continue
        fi
        admin_list+=("$a")
    done
fi

secret_mode=none
if [ -n "${STICKY_ROUTE_SECRET+set}" ] && [ -n "${STICKY_ROUTE_SECRET_FILE+set}" ]; then
    err "STICKY_ROUTE_SECRET and STICKY_ROUTE_SECRET_FILE are both set: use one"
elif [ -n "${STICKY_ROUTE_SECRET+set}" ]; then
    # Never shown: only its length and what is wrong with it.
    if [ ${#STICKY_ROUTE_SECRET} -lt 16 ]; then
        err "STICKY_ROUTE_SECRET (value not shown): ${#STICKY_ROUTE_SECRET} bytes, at least 16 needed"
    elif [ ${#STICKY_ROUTE_SECRET} -gt 4096 ]; then
        err "STICKY_ROUTE_SECRET (value not shown): ${#STICKY_ROUTE_SECRET} bytes, at most 4096 allowed"
    elif [[ $STICKY_ROUTE_SECRET =~ [[:cntrl:]] ]]; then
        err "STICKY_ROUTE_SECRET (value not shown): contains a control character (newline, tab, ...)"
    else
        secret_mode=value
    fi
elif [ -n "${STICKY_ROUTE_SECRET_FILE+set}" ]; then
    if ! [[ $STICKY_ROUTE_SECRET_FILE =~ $SAFE_PATH_RE ]]; then
        err "STICKY_ROUTE_SECRET_FILE=$(show "$STICKY_ROUTE_SECRET_FILE"): expected an absolute path" \
            "of A-Z a-z 0-9 . _ / + -"
    elif ! [ -f "$STICKY_ROUTE_SECRET_FILE" ] || ! [ -r "$STICKY_ROUTE_SECRET_FILE" ]; then
        err "STICKY_ROUTE_SECRET_FILE=$(show "$STICKY_ROUTE_SECRET_FILE"): not a readable file"
    else
        secret_mode=file
    fi
fi

# Paths that end up in the configuration. Each check stores the absolute
# path in the variable named by $1 (left empty on error).
check_output_path() {   # $1 = result variable, $2 = what, $3 = path
    local -n result=$1
    local what=$2 path=$3 dir base
    result=''
    dir=$(dirname -- "$path") base=$(basename -- "$path")
    if ! [ -d "$dir" ]; then
        err "$what $(show "$path"): directory $(show "$dir") does not exist"
        return
    fi
    dir=$(cd "$dir" && pwd -P)
    if ! [[ $dir/$base =~ $SAFE_PATH_RE ]] || [[ $base == . || $base == .. ]]; then
        err "$what $(show "$path"): path must be made of A-Z a-z 0-9 . _ / + -"
    elif [ -d "$dir/$base" ]; then
        err "$what $(show "$path"): is a directory"
    else
        result=$dir/$base
    fi
}
check_dir() {   # $1 = result variable, $2 = what, $3 = directory
    local -n result=$1
    result=''
    if ! [ -d "$3" ]; then
        err "$2 $(show "$3"): no such directory"
    elif ! [[ $(cd "$3" && pwd -P) =~ $SAFE_PATH_RE ]]; then
        err "$2 $(show "$3"): path must be made of A-Z a-z 0-9 . _ / + -"
    else
        result=$(cd "$3" && pwd -P)
    fi
}

# ---- balancing policy of the static pool ---------------------------------------
is_seconds() { [[ $1 =~ ^[1-9][0-9]{0,7}$ ]]; }
# empty means unset (docker-compose passes ${VAR:-} through as "")
for v in STICKY_MAX_IDLE STICKY_MAX_LIFE STICKY_ELECT STICKY_SLOW_START STICKY_REBALANCE; do
    if [ -n "${!v+set}" ] && [ -z "${!v}" ]; then
        unset "$v"
    fi
done
policy_lines=()
cookie_lifetimes=''
for v in STICKY_MAX_IDLE STICKY_MAX_LIFE STICKY_SLOW_START; do
    if [ -n "${!v+set}" ] && ! is_seconds "${!v}"; then
        err "$v=$(show "${!v}"): expected a whole number of seconds, 1-99999999"
    fi
done
if [ -n "${STICKY_MAX_IDLE+set}" ] && is_seconds "$STICKY_MAX_IDLE"; then
    cookie_lifetimes+=" MaxIdle=$STICKY_MAX_IDLE"
fi
if [ -n "${STICKY_MAX_LIFE+set}" ] && is_seconds "$STICKY_MAX_LIFE"; then
    cookie_lifetimes+=" MaxLife=$STICKY_MAX_LIFE"
fi
[ -z "$cookie_lifetimes" ] || policy_lines+=("        StickyRouteCookie ROUTEID$cookie_lifetimes")
if [ -n "${STICKY_ELECT+set}" ]; then
    if [[ $STICKY_ELECT =~ ^(roundrobin|leastbusy)$ ]]; then
        policy_lines+=("        StickyRouteElect $STICKY_ELECT")
    else
        err "STICKY_ELECT=$(show "$STICKY_ELECT"): expected roundrobin or leastbusy"
    fi
fi
if [ -n "${STICKY_SLOW_START+set}" ] && is_seconds "$STICKY_SLOW_START"; then
    policy_lines+=("        StickyRouteSlowStart $STICKY_SLOW_START")
fi
if [ -n "${STICKY_REBALANCE+set}" ]; then
    if [[ $STICKY_REBALANCE =~ ^([1-9][0-9]{0,7})( ([1-9][0-9]?(\.[0-9]{1,2})?))?$ ]] &&
       { [ -z "${BASH_REMATCH[3]}" ] || awk -v f="${BASH_REMATCH[3]}" 'BEGIN { exit !(f > 1) }'; }; then
        policy_lines+=("        StickyRouteRebalance $STICKY_REBALANCE")
    else
        err "STICKY_REBALANCE=$(show "$STICKY_REBALANCE"): expected IDLE_SECONDS [FACTOR], e.g. \"60 1.25\" (FACTOR above 1)"
    fi
fi

# ---- HTTPS at the front (TLS=off|files|acme) ----------------------------------
# TLS=files: TLS_CERT_FILE and TLS_KEY_FILE (checked with openssl: readable,
# key matches the certificate, not expired; the key is never printed).
# TLS=acme: mod_md obtains and renews the certificate of SERVER_NAME and
# SERVER_ALIASES from ACME_DIRECTORY. Either way the site moves to
# LISTEN_TLS_PORT (h2, http/1.1) and LISTEN_PORT only redirects to it (ACME
# http-01 challenges excepted).
ACME_LE_DIRECTORY=https://acme-v02.api.letsencrypt.org/directory
# TLS 1.2 and 1.3 only; for TLS 1.2 ECDHE with AEAD ciphers only (forward
# secrecy; TLS 1.3 suites are all AEAD and are OpenSSL's defaults).
TLS_CIPHERS=ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305
for v in TLS LISTEN_TLS_PORT TLS_PUBLIC_PORT TLS_CERT_FILE TLS_KEY_FILE SERVER_ALIASES ACME_DIRECTORY ACME_EMAIL \
         ACME_CA_FILE ACME_STORE_DIR ACME_CHALLENGES ACME_RENEW_WINDOW ACME_EVENT_CMD HSTS_MAX_AGE; do
    if [ -n "${!v+set}" ] && [ -z "${!v}" ]; then unset "$v"; fi
done
TLS=${TLS:-off}
LISTEN_TLS_PORT=${LISTEN_TLS_PORT:-443}
# The HTTPS port clients use (the redirect's), when a port mapping makes it
# differ from LISTEN_TLS_PORT (a container's 443 published on 8443).
TLS_PUBLIC_PORT=${TLS_PUBLIC_PORT:-$LISTEN_TLS_PORT}
tls_warnings=()
alias_list=()
ocsp_uri=''
case $TLS in
    off|files|acme) ;;
    *) err "TLS=$(show "$TLS"): expected off, files or acme" ;;
esac
if [ -n "${SERVER_ALIASES+set}" ]; then
    IFS=, read -r -d '' -a alias_items < <(printf '%s\0' "$SERVER_ALIASES") || true
    for a in "${alias_items[@]}"; do
        if is_hostname "$a" && ! is_ipv4 "$a"; then
            alias_list+=("$a")
        else
            err "SERVER_ALIASES=$(show "$SERVER_ALIASES"): $(show "$a") is not a host name" \
                "(comma-separated names, no spaces)"
        fi
    done
fi
# A PEM file given by a variable: an absolute path to a readable regular file.
check_pem_file() {   # $1 = variable name; 0 when usable
    local var=$1 path=${!1} mode
    if ! [[ $path =~ $SAFE_PATH_RE ]]; then
        err "$var=$(show "$path"): expected an absolute path of A-Z a-z 0-9 . _ / + -"
        return 1
    fi
    if ! [ -e "$path" ]; then
        err "$var=$(show "$path"): no such file"
        return 1
    fi
    if ! [ -f "$path" ]; then
        err "$var=$(show "$path"): not a regular file"
        return 1
    fi
    mode=$(stat -L -c %a -- "$path")
    # root reads any file: a file without any read permission is still an
    # operator's mistake (and unreadable to everybody else).
    if ! [ -r "$path" ] || [ $(( 8#$mode & 8#444 )) = 0 ] || ! head -c 1 -- "$path" >/dev/null 2>&1; then
        err "$var=$(show "$path"): not readable (mode $(printf '%04o' $(( 8#$mode ))), owner" \
            "$(stat -L -c %U -- "$path"))"
        return 1
    fi
}
if [ "$TLS" != off ]; then
    is_port "$LISTEN_TLS_PORT" ||
        err "LISTEN_TLS_PORT=$(show "$LISTEN_TLS_PORT"): expected an integer 1-65535"
    is_port "$TLS_PUBLIC_PORT" ||
        err "TLS_PUBLIC_PORT=$(show "$TLS_PUBLIC_PORT"): expected an integer 1-65535"
    [ "$LISTEN_TLS_PORT" != "$LISTEN_PORT" ] ||
        err "LISTEN_TLS_PORT=$(show "$LISTEN_TLS_PORT"): the same port as LISTEN_PORT (HTTP" \
            "redirects to HTTPS: two ports)"
    if [ -n "${HSTS_MAX_AGE+set}" ] &&
       ! { [[ $HSTS_MAX_AGE =~ ^(0|[1-9][0-9]{0,8})$ ]] && [ "$HSTS_MAX_AGE" -le 63072000 ]; }; then
        err "HSTS_MAX_AGE=$(show "$HSTS_MAX_AGE"): expected seconds, 0-63072000 (two years)"
    fi
fi
if [ "$TLS" = files ]; then
    for v in TLS_CERT_FILE TLS_KEY_FILE; do
        [ -n "${!v+set}" ] || err "TLS=files needs $v (a PEM file)"
    done
    for v in ACME_DIRECTORY ACME_EMAIL ACME_CA_FILE ACME_STORE_DIR ACME_CHALLENGES ACME_RENEW_WINDOW ACME_EVENT_CMD; do
        [ -z "${!v+set}" ] || err "$v is set but TLS=files: ACME_* variables are for TLS=acme"
    done
    if [ -n "${TLS_CERT_FILE+set}" ] && [ -n "${TLS_KEY_FILE+set}" ]; then
        cert_ok=0 key_ok=0
        check_pem_file TLS_CERT_FILE && cert_ok=1
        check_pem_file TLS_KEY_FILE && key_ok=1
        if [ $key_ok = 1 ]; then
            key_mode=$(stat -L -c %a -- "$TLS_KEY_FILE")
            if [ $(( 8#$key_mode & 8#022 )) != 0 ]; then
                err "TLS_KEY_FILE=$(show "$TLS_KEY_FILE"): writable by group or others (mode" \
                    "$(printf '%04o' $(( 8#$key_mode )))): chmod 0600 (or 0400)"
                key_ok=0
            elif [ $(( 8#$key_mode & 8#004 )) != 0 ]; then
                tls_warnings+=("TLS_KEY_FILE=$(show "$TLS_KEY_FILE"): readable by every user (mode $(printf '%04o' $(( 8#$key_mode )))); chmod 0600 recommended")
            fi
        fi
        if ! command -v openssl >/dev/null 2>&1; then
            err "TLS=files: the openssl command is needed to check TLS_CERT_FILE and TLS_KEY_FILE" \
                "(package openssl)"
        elif [ $cert_ok = 1 ]; then
            if ! cert_pub=$(openssl x509 -in "$TLS_CERT_FILE" -noout -pubkey 2>/dev/null); then
                err "TLS_CERT_FILE=$(show "$TLS_CERT_FILE"): not a PEM certificate"
                cert_ok=0
            elif ! openssl x509 -in "$TLS_CERT_FILE" -noout -checkend 0 >/dev/null 2>&1; then
                err "TLS_CERT_FILE=$(show "$TLS_CERT_FILE"): certificate expired on" \
                    "$(openssl x509 -in "$TLS_CERT_FILE" -noout -enddate 2>/dev/null | sed 's/^notAfter=//')"
                cert_ok=0
            else
                ocsp_uri=$(openssl x509 -in "$TLS_CERT_FILE" -noout -ocsp_uri 2>/dev/null || true)
            fi
            check_name=-checkhost
            is_ipv4 "$SERVER_NAME" && check_name=-checkip
            if [ $cert_ok = 1 ] && [[ $(openssl x509 -in "$TLS_CERT_FILE" -noout $check_name "$SERVER_NAME" \
                                        2>/dev/null) != *" does match certificate"* ]]; then
                tls_warnings+=("TLS_CERT_FILE=$(show "$TLS_CERT_FILE"): the certificate does not name SERVER_NAME=$(show "$SERVER_NAME"); browsers will refuse it")
            fi
            if [ $key_ok = 1 ] && [ $cert_ok = 1 ]; then
                # Only public keys are compared; the private key's text never
                # reaches a message (openssl's stderr is dropped).
                if ! key_pub=$(openssl pkey -in "$TLS_KEY_FILE" -passin pass: -pubout 2>/dev/null); then
                    err "TLS_KEY_FILE=$(show "$TLS_KEY_FILE") (content not shown): not an unencrypted" \
                        "PEM private key (httpd cannot ask for a passphrase here)"
                elif [ "$key_pub" != "$cert_pub" ]; then
                    err "TLS_KEY_FILE=$(show "$TLS_KEY_FILE") (content not shown): not the key of the" \
                        "certificate in TLS_CERT_FILE=$(show "$TLS_CERT_FILE")"
                fi
            fi
        fi
    fi
elif [ "$TLS" = acme ]; then
    for v in TLS_CERT_FILE TLS_KEY_FILE; do
        [ -z "${!v+set}" ] || err "$v is set but TLS=acme: mod_md manages the certificate"
    done
    if is_ipv4 "$SERVER_NAME" || [ "$SERVER_NAME" = localhost ]; then
        err "SERVER_NAME=$(show "$SERVER_NAME"): TLS=acme needs a DNS name the CA can reach"
    fi
    ACME_DIRECTORY=${ACME_DIRECTORY:-$ACME_LE_DIRECTORY}
    [[ $ACME_DIRECTORY =~ ^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/%-]*)?$ ]] ||
        err "ACME_DIRECTORY=$(show "$ACME_DIRECTORY"): expected the https:// URL of an ACME directory"
    if [ -z "${ACME_EMAIL+set}" ]; then
        err "TLS=acme needs ACME_EMAIL: the contact of the ACME account (the CA's expiry notices)"
    elif ! [[ $ACME_EMAIL =~ ^[A-Za-z0-9._%+-]+@$LABEL_RE(\.$LABEL_RE)+$ ]]; then
        err "ACME_EMAIL=$(show "$ACME_EMAIL"): expected an e-mail address"
    fi
    if [ -n "${ACME_CA_FILE+set}" ] && check_pem_file ACME_CA_FILE &&
       [ "$(id -u)" = 0 ] && id -u www-data >/dev/null 2>&1 && command -v runuser >/dev/null &&
       ! runuser -u www-data -- test -r "$ACME_CA_FILE" 2>/dev/null; then
        # mod_md talks to the CA from httpd's workers, after they dropped root
        err "ACME_CA_FILE=$(show "$ACME_CA_FILE"): not readable by www-data (httpd's workers," \
            "where mod_md talks to the CA): every directory above it must be enterable"
    fi
    ACME_STORE_DIR=${ACME_STORE_DIR:-/var/lib/apache2/md}
    if ! [[ $ACME_STORE_DIR =~ $SAFE_PATH_RE ]]; then
        err "ACME_STORE_DIR=$(show "$ACME_STORE_DIR"): expected an absolute path of A-Z a-z 0-9 . _ / + -"
    elif ! [ -d "$ACME_STORE_DIR" ] && ! [ -d "$(dirname -- "$ACME_STORE_DIR")" ]; then
        err "ACME_STORE_DIR=$(show "$ACME_STORE_DIR"): neither it nor its parent directory exists"
    fi
    if [ -n "${ACME_CHALLENGES+set}" ]; then
        for c in $ACME_CHALLENGES; do
            [[ $c =~ ^(http-01|tls-alpn-01)$ ]] ||
                err "ACME_CHALLENGES=$(show "$ACME_CHALLENGES"): $(show "$c") is not http-01 or tls-alpn-01"
        done
    fi
    if [ -n "${ACME_RENEW_WINDOW+set}" ] &&
       ! [[ $ACME_RENEW_WINDOW =~ ^([1-9][0-9]?%|[1-9][0-9]{0,3}[dhms])$ ]]; then
        err "ACME_RENEW_WINDOW=$(show "$ACME_RENEW_WINDOW"): expected a duration (30d, 12h) or a" \
            "share of the lifetime (33%)"
    fi
    if [ -n "${ACME_EVENT_CMD+set}" ]; then
        if ! [[ $ACME_EVENT_CMD =~ $SAFE_PATH_RE ]]; then
            err "ACME_EVENT_CMD=$(show "$ACME_EVENT_CMD"): expected an absolute path of A-Z a-z 0-9 . _ / + -"
        elif ! [ -f "$ACME_EVENT_CMD" ] || ! [ -x "$ACME_EVENT_CMD" ]; then
            err "ACME_EVENT_CMD=$(show "$ACME_EVENT_CMD"): not an executable file"
        elif [ "$(id -u)" = 0 ] && id -u www-data >/dev/null 2>&1 && command -v runuser >/dev/null &&
             ! runuser -u www-data -- test -x "$ACME_EVENT_CMD" 2>/dev/null; then
            err "ACME_EVENT_CMD=$(show "$ACME_EVENT_CMD"): not executable by www-data (mod_md runs" \
                "it from httpd's workers)"
        fi
    fi
fi

output_abs='' main_abs='' ports_abs='' log_abs='' run_abs=''
check_output_path output_abs OUTPUT_FILE "$output"
[ -z "$main_conf" ] || check_output_path main_abs --main-conf "$main_conf"
[ -z "$ports_conf" ] || check_output_path ports_abs --ports-conf "$ports_conf"
[ -z "$log_dir" ] || check_dir log_abs --log-dir "$log_dir"
if [ -n "$main_conf" ]; then
    check_dir run_abs --run-dir "${run_dir:-$(dirname -- "$output")}"
    [ -n "$log_dir" ] || err "--main-conf needs --log-dir"
    if ! [[ $module =~ $SAFE_PATH_RE ]]; then
        err "--module $(show "$module"): expected an absolute path of A-Z a-z 0-9 . _ / + -"
    elif ! [ -f "$module" ]; then
        err "--module $(show "$module"): no such file (build the module with make)"
    fi
    if ! is_ipv4 "$listen_address" &&
       ! { [[ $listen_address =~ ^\[(.*)\]$ ]] && is_ipv6 "${BASH_REMATCH[1]}"; }; then
        err "--listen-address $(show "$listen_address"): expected an IPv4 address or [IPv6]"
    fi
fi

if [ ${#errors[@]} -gt 0 ]; then
    for e in "${errors[@]}"; do echo "$PROG: $e" >&2; done
    echo "$PROG: nothing written" >&2
    exit 2
fi
for w in "${tls_warnings[@]}"; do echo "$PROG: warning: $w" >&2; done

# ---- render ------------------------------------------------------------------
cpus=$(nproc 2>/dev/null || echo 2)
[[ $cpus =~ ^[1-9][0-9]*$ ]] || cpus=2
servers=$(( cpus < 2 ? 2 : cpus ))

secret_path=$output_abs.secret
case $secret_mode in
    value) secret_line="    StickyRouteSecret \"file:$secret_path\"" ;;
    file)  secret_line="    StickyRouteSecret \"file:$STICKY_ROUTE_SECRET_FILE\"" ;;
    none)  secret_line="    # No StickyRouteSecret: cookies carry the plain route." ;;
esac
log_lines="    # Logs: the server's."
if [ -n "$log_abs" ]; then
    log_lines="    ErrorLog \"$log_abs/proxy-error.log\""$'\n'
    log_lines+="    CustomLog \"$log_abs/proxy-access.log\" sticky_route"
fi

export TPL_RENDERED_AT TPL_CPU_COUNT TPL_MPM_SERVERS TPL_MPM_SERVER_LIMIT TPL_MPM_THREADS \
       TPL_MPM_MAX_WORKERS TPL_LISTEN_PORT TPL_SERVER_NAME TPL_LOG_LINES TPL_SECRET_LINE \
       TPL_STATIC_MEMBERS TPL_DYNAMIC_MEMBERS TPL_API_PREFIX TPL_ADMIN_ALLOW \
       TPL_LISTEN_ADDRESS TPL_RUN_DIR TPL_LOG_DIR TPL_MODULE TPL_VHOST_FILE \
       TPL_STATIC_POLICY
TPL_RENDERED_AT=$(date -u '+%Y-%m-%dT%H:%M:%SZ')
TPL_CPU_COUNT=$cpus
TPL_MPM_SERVERS=$servers
TPL_MPM_SERVER_LIMIT=$(( 2 * servers ))
TPL_MPM_THREADS=$MPM_THREADS
TPL_MPM_MAX_WORKERS=$(( servers * MPM_THREADS ))
TPL_LISTEN_PORT=$LISTEN_PORT
TPL_SERVER_NAME=$SERVER_NAME
TPL_LOG_LINES=$log_lines
TPL_SECRET_LINE=$secret_line
TPL_STATIC_MEMBERS=$(member_lines static_members)
if [ ${#policy_lines[@]} -gt 0 ]; then
    TPL_STATIC_POLICY=$(printf '%s\n' "${policy_lines[@]}")
else
    TPL_STATIC_POLICY="        # Balancing: the defaults (see STICKY_ELECT and friends)."
fi
TPL_DYNAMIC_MEMBERS=$(member_lines dynamic_members)
TPL_API_PREFIX=$API_PREFIX
TPL_ADMIN_ALLOW="${admin_list[*]}"
TPL_LISTEN_ADDRESS=$listen_address
TPL_RUN_DIR=$run_abs
TPL_LOG_DIR=$log_abs
TPL_MODULE=$module
TPL_VHOST_FILE=$output_abs

# ---- TLS lines (empty with TLS=off) ---------------------------------------------
load_module() {   # $1 = module name, $2 = file in /usr/lib/apache2/modules
    printf '<IfModule !%s>\n    LoadModule %s /usr/lib/apache2/modules/%s\n</IfModule>\n' "$1" "$1" "$2"
}
TPL_SITE_PORT=$LISTEN_PORT TPL_TLS_SERVER_LINES='' TPL_TLS_VHOST_LINES='' TPL_TLS_EXCLUDES=''
TPL_TLS_ADMIN_LINES='' TPL_TLS_LISTEN_LINE=''
alias_line=''
[ ${#alias_list[@]} -eq 0 ] || alias_line="    ServerAlias ${alias_list[*]}"
if [ "$TLS" != off ]; then
    TPL_SITE_PORT=$LISTEN_TLS_PORT
    TPL_TLS_LISTEN_LINE="Listen $listen_address:$LISTEN_TLS_PORT https"
    port_suffix=":$TLS_PUBLIC_PORT"
    [ "$TLS_PUBLIC_PORT" != 443 ] || port_suffix=''
    s="# ---- HTTPS at the front (TLS=$TLS) -------------------------------------"$'\n'
    s+="# Modules for TLS, loaded here unless the server loads them already."$'\n'
    s+=$(load_module socache_shmcb_module mod_socache_shmcb.so)$'\n'
    s+=$(load_module ssl_module mod_ssl.so)$'\n'
    s+=$(load_module http2_module mod_http2.so)$'\n'
    s+=$(load_module headers_module mod_headers.so)$'\n'
    s+=$(load_module rewrite_module mod_rewrite.so)$'\n'
    [ "$TLS" != acme ] || s+=$(load_module md_module mod_md.so)$'\n'
    s+="# TLS 1.2 and 1.3 only. TLS 1.2: ECDHE key exchange (forward secrecy) and"$'\n'
    s+="# AEAD ciphers only; TLS 1.3: OpenSSL's suites (all AEAD). Clients choose."$'\n'
    s+="SSLProtocol -all +TLSv1.2 +TLSv1.3"$'\n'
    s+="SSLCipherSuite $TLS_CIPHERS"$'\n'
    s+="SSLHonorCipherOrder off"$'\n'
    s+="SSLSessionTickets off"$'\n'
    s+="SSLSessionCache \"shmcb:sticky-route-ssl-sessions(1024000)\""$'\n'
    s+="SSLSessionCacheTimeout 300"$'\n'
    if [ "$TLS" = files ]; then
        s+="# OCSP stapling (when the certificate names a responder): its cache."$'\n'
        s+="SSLStaplingCache \"shmcb:sticky-route-ssl-stapling(256000)\""$'\n'
    else
        s+="# Certificates from ACME (mod_md): the account, keys and certificates live"$'\n'
        s+="# in MDStoreDir (keep it on a volume: a restart must not order again)."$'\n'
        s+="# Renewal runs inside httpd; a new certificate is used after a graceful"$'\n'
        s+="# restart, which whatever runs httpd must send (mod_md cannot)."$'\n'
        s+="MDStoreDir \"$ACME_STORE_DIR\""$'\n'
        s+="MDCertificateAuthority \"$ACME_DIRECTORY\""$'\n'
        s+="MDCertificateAgreement accepted"$'\n'
        s+="MDContactEmail $ACME_EMAIL"$'\n'
        [ -z "${ACME_CA_FILE+set}" ] || s+="MDCACertificateFile \"$ACME_CA_FILE\""$'\n'
        [ -z "${ACME_CHALLENGES+set}" ] || s+="MDCAChallenges $ACME_CHALLENGES"$'\n'
        [ -z "${ACME_RENEW_WINDOW+set}" ] || s+="MDRenewWindow $ACME_RENEW_WINDOW"$'\n'
        if [ -n "${ACME_EVENT_CMD+set}" ]; then
            s+="# mod_md's events (renewed: a new certificate waits for the graceful"$'\n'
            s+="# restart) go to this command, run as the server's user."$'\n'
            s+="MDMessageCmd \"$ACME_EVENT_CMD\""$'\n'
        fi
        s+="# The CA reaches http://NAME/ and https://NAME/ at these local ports."$'\n'
        s+="MDPortMap http:$LISTEN_PORT https:$LISTEN_TLS_PORT"$'\n'
        s+="MDStapling on"$'\n'
        s+="# Certificate status only at /md-status, from ADMIN_ALLOW."$'\n'
        s+="MDCertificateStatus off"$'\n'
        s+="MDomain $SERVER_NAME${alias_list[*]:+ ${alias_list[*]}}"$'\n'
    fi
    s+=$'\n'"# Plain HTTP: a redirect to HTTPS, except ACME http-01 challenges."$'\n'
    s+="<VirtualHost *:$LISTEN_PORT>"$'\n'
    s+="    ServerName $SERVER_NAME"$'\n'
    [ -z "$alias_line" ] || s+="$alias_line"$'\n'
    s+="$log_lines"$'\n'
    s+="    RewriteEngine On"$'\n'
    s+="    RewriteCond \"%{REQUEST_URI}\" \"!^/\\.well-known/acme-challenge/\""$'\n'
    s+="    RewriteRule \"^\" \"https://%{SERVER_NAME}$port_suffix%{REQUEST_URI}\" [R=301,L]"$'\n'
    s+="</VirtualHost>"
    TPL_TLS_SERVER_LINES=$s

    v="    SSLEngine on"$'\n'
    if [ "$TLS" = files ]; then
        v+="    SSLCertificateFile \"$TLS_CERT_FILE\""$'\n'
        v+="    SSLCertificateKeyFile \"$TLS_KEY_FILE\""$'\n'
        if [ -n "$ocsp_uri" ]; then
            v+="    # OCSP stapling: the certificate names a responder."$'\n'
            v+="    SSLUseStapling on"$'\n'
        else
            v+="    # No OCSP stapling: the certificate names no OCSP responder."$'\n'
        fi
        v+="    Protocols h2 http/1.1"$'\n'
    else
        v+="    # The certificate: mod_md's (MDomain above). acme-tls/1: tls-alpn-01."$'\n'
        v+="    Protocols h2 http/1.1 acme-tls/1"$'\n'
    fi
    if [ -n "${HSTS_MAX_AGE+set}" ]; then
        v+="    Header always set Strict-Transport-Security \"max-age=$HSTS_MAX_AGE\""$'\n'
    fi
    v+="    RequestHeader set X-Forwarded-Proto \"https\""
    TPL_TLS_VHOST_LINES=$v
    if [ "$TLS" = acme ]; then
        TPL_TLS_EXCLUDES='    ProxyPass        "/md-status" "!"'$'\n'
        TPL_TLS_EXCLUDES+='    ProxyPass        "/.well-known/acme-challenge/" "!"'
        TPL_TLS_ADMIN_LINES='    <Location "/md-status">'$'\n'
        TPL_TLS_ADMIN_LINES+='        SetHandler md-status'$'\n'
        TPL_TLS_ADMIN_LINES+="        Require ip ${admin_list[*]}"$'\n'
        TPL_TLS_ADMIN_LINES+='    </Location>'
    fi
fi
[ -z "$alias_line" ] || TPL_TLS_VHOST_LINES="$alias_line${TPL_TLS_VHOST_LINES:+$'\n'$TPL_TLS_VHOST_LINES}"
export TPL_SITE_PORT TPL_TLS_SERVER_LINES TPL_TLS_VHOST_LINES TPL_TLS_EXCLUDES TPL_TLS_ADMIN_LINES \
       TPL_TLS_LISTEN_LINE

# Replaces every @@NAME@@ by $TPL_NAME; an unknown placeholder is an error.
fill() {
    awk '
    {
        line = $0; out = ""
        while (match(line, /@@[A-Z_]+@@/)) {
            key = "TPL_" substr(line, RSTART + 2, RLENGTH - 4)
            if (!(key in ENVIRON)) {
                printf "render-proxy-conf: %s: unknown placeholder %s\n", FILENAME,
                       substr(line, RSTART, RLENGTH) > "/dev/stderr"
                failed = 1
                exit 1
            }
            out = out substr(line, 1, RSTART - 1) ENVIRON[key]
            line = substr(line, RSTART + RLENGTH)
        }
        # a line that was only a placeholder with an empty value: dropped
        if (out line == "" && $0 ~ /^@@[A-Z_]+@@$/) next
        print out line
    }' "$1"
}

# Temporary files next to their targets (hidden, not *.conf: an Include of
# *.conf never sees them), renamed into place once all are complete.
tmp_files=()
cleanup() { [ ${#tmp_files[@]} -eq 0 ] || rm -f -- "${tmp_files[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
make_tmp() {   # $1 = result variable, $2 = target path
    local -n result=$1
    result=$(mktemp "$(dirname -- "$2")/.$(basename -- "$2").XXXXXX")
    tmp_files+=("$result")
}

targets=() temps=()
make_tmp vhost_tmp "$output_abs"
fill "$VHOST_TEMPLATE" > "$vhost_tmp"
chmod 0644 "$vhost_tmp"
targets+=("$output_abs") temps+=("$vhost_tmp")
if [ -n "$main_abs" ]; then
    make_tmp main_tmp "$main_abs"
    fill "$MAIN_TEMPLATE" > "$main_tmp"
    chmod 0644 "$main_tmp"
    targets+=("$main_abs") temps+=("$main_tmp")
fi
if [ -n "$ports_abs" ]; then
    make_tmp ports_tmp "$ports_abs"
    printf '# Written by render-proxy-conf.sh: the proxy listens on LISTEN_PORT.\nListen %s\n' \
        "$LISTEN_PORT" > "$ports_tmp"
    [ "$TLS" = off ] || printf 'Listen %s https\n' "$LISTEN_TLS_PORT" >> "$ports_tmp"
    chmod 0644 "$ports_tmp"
    targets+=("$ports_abs") temps+=("$ports_tmp")
fi
if [ $secret_mode = value ]; then
    make_tmp secret_tmp "$secret_path"     # mktemp creates it 0600
    printf '%s' "$STICKY_ROUTE_SECRET" > "$secret_tmp"
    targets+=("$secret_path") temps+=("$secret_tmp")
fi

# The secret first, the vhost that points at it afterwards.
for (( i = ${#temps[@]} - 1; i >= 0; i-- )); do
    mv -f -- "${temps[$i]}" "${targets[$i]}"
done
tmp_files=()
if [ $secret_mode != value ] && [ -f "$secret_path" ]; then
    rm -f -- "$secret_path"    # a secret of an earlier rendering, no longer used
fi
for t in "${targets[@]}"; do
    if [ "$t" = "$secret_path" ]; then
        echo "$PROG: wrote $t (the secret, mode 0600)"
    else
        echo "$PROG: wrote $t"
    fi
done
