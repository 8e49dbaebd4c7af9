#!/bin/bash
# Entry point of the reverse-proxy image.
#
#   sticky-route-entrypoint apache2-foreground   (the default CMD)
#       expands scaled member names, renders the configuration with
#       templates/render-proxy-conf.sh (the renderer of `make run`), and on
#       success execs httpd in the foreground as PID 1. A bad variable: the
#       renderer's message on stderr and a non-zero exit, before httpd starts.
#   sticky-route-entrypoint reload   (also installed as `sticky-route-reload`)
#       renders again (e.g. after `docker compose up --scale dynamic1=3`),
#       checks the result with `apache2 -t` and asks PID 1 for a graceful
#       restart. A bad result leaves the running configuration untouched.
#   sticky-route-entrypoint ANYTHING ELSE: exec'd as is (debugging).
#
# TLS=acme: mod_md obtains and renews the certificate, and a new one is used
# only after a graceful restart, which mod_md (in httpd's workers, as
# www-data) cannot send. So the image makes ACME_EVENT_CMD (the renderer's
# MDMessageCmd) /usr/local/bin/sticky-route-md-event, which marks each
# `renewed` event in $MD_EVENT_DIR, and the start runs a watcher (a child of
# httpd's parent, as root) that turns each mark into a graceful restart
# within ACME_RELOAD_POLL seconds (default 5): the first certificate and
# every renewal go into use by themselves.
#
# Member expansion: STATIC_APP / DYNAMIC_APP are comma-separated
# host:port[=route] lists.
#   name:port        a name without a route is followed at run time: the
#                    renderer makes it a StickyRouteDiscover (the module
#                    re-resolves it every DISCOVER_INTERVAL seconds, one
#                    member per address). Passed through unchanged. (With a
#                    renderer that predates discovery, expanded as below.)
#   name:port=ROUTE  a name that resolves to several addresses (a scaled
#                    compose service, a Swarm service with endpoint_mode
#                    dnsrr, or tasks.NAME) becomes one fixed member per
#                    address, sorted, so that each address keeps the same
#                    route whatever the order of the DNS answer:
#                    ADDR:port=ROUTE-ADDR ... (dots and colons as dashes)
# A name with one address, an IP literal and anything malformed are passed
# through unchanged: the renderer judges them and names the bad variable.
# Empty DISCOVER_INTERVAL / DISCOVER_MAX (docker-compose passes ${VAR:-} as
# "") are the renderer's defaults.
set -euo pipefail

PROG=sticky-route-entrypoint
RENDERER=${STICKY_ROUTE_RENDERER:-/opt/sticky-route/templates/render-proxy-conf.sh}
SITE_CONF=/etc/apache2/sites-available/sticky-route.conf
PORTS_CONF=/etc/apache2/ports.conf
# proxy-error.log and proxy-access.log there are links to stderr and stdout.
LOG_DIR=/var/log/apache2/sticky-route

log() { echo "$PROG: $*" >&2; }

MD_EVENT_DIR=${STICKY_ROUTE_MD_EVENT_DIR:-/run/sticky-route/md}
MD_EVENT_CMD=/usr/local/bin/sticky-route-md-event
# The image's default ACME_EVENT_CMD (at the start and for `reload`, which
# renders again): unless the user set one.
if [ "${TLS:-off}" = acme ] && [ -z "${ACME_EVENT_CMD:-}" ] && [ -x "$MD_EVENT_CMD" ]; then
    export ACME_EVENT_CMD=$MD_EVENT_CMD
fi

# The watcher of mod_md's `renewed` marks (see the header): a graceful
# restart per batch of marks. Runs until the container stops.
md_watch() {
    local poll=$1 marks
    while sleep "$poll"; do
        marks=$(find "$MD_EVENT_DIR" -maxdepth 1 -name 'renewed.*' -type f 2>/dev/null) || true
        [ -n "$marks" ] || continue
        # shellcheck disable=SC2086
        rm -f $marks
        log "mod_md has a new certificate ($(echo "$marks" | sed 's|.*/renewed\.||' | paste -sd ' ')): graceful restart"
        kill -USR1 1 || log "graceful restart not sent (no httpd as PID 1?)"
    done
}

# Starts the watcher when mod_md's events come to the image's command.
md_watch_start() {
    local poll=${ACME_RELOAD_POLL:-5} user
    [ "${TLS:-off}" = acme ] && [ "${ACME_EVENT_CMD:-}" = "$MD_EVENT_CMD" ] || return 0
    if ! [[ $poll =~ ^[1-9][0-9]{0,3}$ ]]; then
        log "ACME_RELOAD_POLL=$poll: expected seconds (1-9999); not starting httpd"
        exit 2
    fi
    # shellcheck disable=SC1091
    user=$(set +u; . /etc/apache2/envvars; echo "${APACHE_RUN_USER:-www-data}")
    mkdir -p "$MD_EVENT_DIR"
    chown "$user" "$MD_EVENT_DIR"
    chmod 0700 "$MD_EVENT_DIR"
    rm -f "$MD_EVENT_DIR"/renewed.*
    md_watch "$poll" </dev/null &
    log "TLS=acme: a new certificate from mod_md is put in use by a graceful restart (checked every ${poll} s)"
}

# Does the renderer make StickyRouteDiscover of route-less names?
DISCOVERY=0
grep -q StickyRouteDiscover "$RENDERER" 2>/dev/null && DISCOVERY=1

# Addresses of a name, one per line, sorted; nothing when it does not resolve.
resolve() {
    local name=$1 addrs
    addrs=$(getent ahostsv4 "$name" 2>/dev/null | awk '{print $1}' | sort -u -V) || true
    if [ -z "$addrs" ]; then
        addrs=$(getent ahostsv6 "$name" 2>/dev/null | awk '{print $1}' | sort -u) || true
    fi
    printf '%s' "$addrs"
}

# Expands one comma-separated list (the value of variable $1); prints it.
expand_list() {
    local var=$1 value=${!1} item name port route addr m suffix out='' n
    local -a items addrs
    IFS=, read -r -d '' -a items < <(printf '%s\0' "$value") || true
    # Stray commas, empty lists: the renderer's business.
    if [ -z "$value" ] || [[ $value == ,* || $value == *, || $value == *,,* ]]; then
        printf '%s' "$value"; return
    fi
    for item in "${items[@]}"; do
        if [[ $item =~ ^([A-Za-z][A-Za-z0-9.-]*):([0-9]{1,5})(=([A-Za-z0-9_-]+))?$ ]]; then
            name=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]} route=${BASH_REMATCH[4]:-}
            if [ -z "$route" ] && [ "$DISCOVERY" = 1 ]; then
                log "$var: $name:$port followed at run time (StickyRouteDiscover)"
                out+="${out:+,}$item"
                continue
            fi
            mapfile -t addrs < <(resolve "$name")
            n=${#addrs[@]}
            if [ "$n" -gt 1 ]; then
                log "$var: $name resolves to $n addresses: ${addrs[*]}"
                for addr in "${addrs[@]}"; do
                    if [[ $addr == *:* ]]; then m="[$addr]:$port"; else m="$addr:$port"; fi
                    if [ -n "$route" ]; then
                        suffix=${addr//[.:]/-}
                        m+="=$route-$suffix"
                    fi
                    out+="${out:+,}$m"
                done
                continue
            elif [ "$n" = 0 ]; then
                log "warning: $var: $name does not resolve (yet); kept as a name"
            fi
        fi
        out+="${out:+,}$item"
    done
    printf '%s' "$out"
}

render() {   # $1: vhost file to write
    local var expanded
    for var in DISCOVER_INTERVAL DISCOVER_MAX; do
        if [ -n "${!var+set}" ] && [ -z "${!var}" ]; then unset "$var"; fi
    done
    for var in STATIC_APP DYNAMIC_APP; do
        if [ -n "${!var+set}" ]; then
            if ! expanded=$(expand_list "$var"); then
                log "$var: member expansion failed"
                return 1
            fi
            printf -v "$var" '%s' "$expanded"
            export "${var?}"
            log "$var=${!var}"
        fi
    done
    # The healthcheck asks /sticky-route-status from inside the container:
    # its own loopback is always allowed (nothing outside the container can
    # use that address).
    if [ -n "${ADMIN_ALLOW:-}" ] && ! [[ ,$ADMIN_ALLOW, == *,127.0.0.1,* ]]; then
        export ADMIN_ALLOW="$ADMIN_ALLOW,127.0.0.1"
    fi
    "$RENDERER" --ports-conf "$PORTS_CONF" --log-dir "$LOG_DIR" "$1"
}

# Called as sticky-route-reload: the reload mode.
if [ "$(basename -- "$0")" = sticky-route-reload ]; then
    set -- reload "$@"
fi

case "${1:-}" in
    apache2-foreground)
        if ! render "$SITE_CONF"; then
            log "configuration not rendered (see the message above); not starting httpd"
            exit 2
        fi
        md_watch_start
        exec "$@"
        ;;
    reload)
        [ "$$" != 1 ] || { log "reload: run it with docker exec"; exit 2; }
        tmp=$(mktemp /etc/apache2/sites-available/.sticky-route.XXXXXX)
        cp -p "$SITE_CONF" "$tmp.old"
        cp -p "$PORTS_CONF" "$tmp.ports"
        if ! render "$SITE_CONF"; then
            rm -f "$tmp" "$tmp.old" "$tmp.ports"
            log "reload: configuration not rendered; httpd keeps the running one"
            exit 2
        fi
        # shellcheck disable=SC1091
        set +u; . /etc/apache2/envvars; set -u
        if ! /usr/sbin/apache2 -t >/dev/null 2>"$tmp"; then
            cat "$tmp" >&2
            mv -f "$tmp.old" "$SITE_CONF"; mv -f "$tmp.ports" "$PORTS_CONF"; rm -f "$tmp"
            log "reload: apache2 -t failed; previous configuration restored"
            exit 2
        fi
        rm -f "$tmp" "$tmp.old" "$tmp.ports"
        kill -USR1 1
        log "reload: graceful restart requested"
        ;;
    *)
        exec "$@"
        ;;
esac
