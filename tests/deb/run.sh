#!/bin/bash
# make deb-test: the Debian package, installed on this machine for real.
#
#   tests/deb/run.sh [DIR]     (DIR: where `make deb` left it, default build/deb)
#
#   1. lintian on the .changes and on the .deb: no error, no warning
#      (overrides in debian/*.lintian-overrides carry their reason)
#   2. apt-get install ./libapache2-mod-sticky-route_*.deb: the module is
#      enabled by the maintainer script (dh_apache2's apache2_invoke enmod),
#      with proxy and proxy_balancer; `apache2ctl -M` lists sticky_route_module
#   3. a throwaway httpd (own ServerRoot, 127.0.0.1 only) that loads the
#      installed module through the installed sticky_route.load serves a
#      sticky request: Set-Cookie ROUTEID=..., the cookie keeps the client on
#      its backend (two python3 http.server backends); the commented examples
#      of the installed sticky_route.conf pass `apache2 -t` once uncommented
#   4. the Debian conventions of the maintainer scripts: remove disables the
#      module and keeps the conffiles; installing again re-enables it; a module
#      the admin disabled (a2dismod) stays disabled across a reinstall
#   5. apt-get purge: no path of `dpkg -L` is left (but directories that
#      existed before), `a2query -m sticky_route` finds no module and no state
#   6. /etc/apache2 and /var/lib/apache2 (a2enmod's state) are put back as
#      found, and compared with the snapshot taken first (also on failure)
#
# Never starts the machine's apache2 service: without systemd and a runlevel,
# invoke-rc.d refuses to restart it (exit 101); a /usr/sbin/policy-rc.d that
# says 101 is created for the run when there is none (and removed after), so
# a machine with systemd keeps its service untouched too. Needs root.
# TEST_KEEP=1 keeps the run directory (/tmp/sr-debtest.*) on success.
set -euo pipefail
export LC_ALL=C DEBIAN_FRONTEND=noninteractive

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
DIR=${1:-$REPO/build/deb}
case $DIR in /*) ;; *) DIR=$REPO/$DIR ;; esac
PKG=libapache2-mod-sticky-route
MODDIR=/usr/lib/apache2/modules
SO=$MODDIR/mod_sticky_route.so
APT=(apt-get -y -q -o DPkg::Lock::Timeout=300)

# shellcheck source=tests/lib.sh
. "$REPO/tests/lib.sh"
SR_LOG_PREFIX=deb-test
ok()   { say "ok: $*"; }

[ "$(id -u)" = 0 ] || fail "needs root (apt-get install, /etc/apache2)"
for c in lintian apt-get dpkg-deb a2query a2enmod a2dismod apache2 apache2ctl curl ss setpriv; do
    command -v "$c" >/dev/null || fail "missing: $c (make deps installs it)"
done
shopt -s nullglob
debs=("$DIR/${PKG}_"*.deb)
changes=("$DIR/${PKG}_"*.changes)
shopt -u nullglob
[ ${#debs[@]} = 1 ] || fail "expected one $DIR/${PKG}_*.deb, found ${#debs[@]} (run make deb)"
[ ${#changes[@]} = 1 ] || fail "expected one $DIR/${PKG}_*.changes, found ${#changes[@]} (run make deb)"
DEB=${debs[0]} CHANGES=${changes[0]}

T=$(mktemp -d /tmp/sr-debtest.XXXXXX)
chmod 0755 "$T"
STATE_TAKEN=0 POLICY_CREATED=0 INSTALLED_BY_US=0
declare -a PIDS=() CONFS=() PRE=()

# ---- /etc/apache2 and a2enmod's state: snapshot and restore --------------------
STATE_DIRS=(/etc/apache2 /var/lib/apache2)
paths()    { find "${STATE_DIRS[@]}" -printf '%p\n' | sort; }
snapshot() {
    find "${STATE_DIRS[@]}" -printf '%p %y %m %u:%g -> %l\n' | sort
    find "${STATE_DIRS[@]}" -type f -print0 | sort -z | xargs -0 -r md5sum
}
restore_state() {
    local p
    # Paths that appeared (deepest first), then the files as they were.
    comm -13 "$T/paths.before" <(paths) | sort -r | while IFS= read -r p; do
        rm -rf -- "$p"
    done
    tar -C / -xpf "$T/apache2-state.tar"
    snapshot > "$T/snapshot.after"
    if ! diff -u "$T/snapshot.before" "$T/snapshot.after" > "$T/snapshot.diff"; then
        cat "$T/snapshot.diff" >&2
        echo "deb-test: FAIL: /etc/apache2 or /var/lib/apache2 differs from the snapshot (above)" >&2
        return 1
    fi
    echo "deb-test: ok: /etc/apache2 and /var/lib/apache2 are as found (snapshot compared)"
}

pkg_status() { dpkg-query -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null | tr -d ' ' || true; }

stop_all() {
    local c pid
    for c in "${CONFS[@]}"; do httpd_stop "$c" || true; done
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    CONFS=() PIDS=()
}

cleanup() {
    local rc=$? p
    set +e
    stop_all
    if [ "$INSTALLED_BY_US" = 1 ] && [ -n "$(pkg_status)" ] && [ "$(pkg_status)" != un ]; then
        say "cleanup: purging $PKG"
        "${APT[@]}" purge "$PKG" > "$T/apt-cleanup.log" 2>&1 || cat "$T/apt-cleanup.log" >&2
    fi
    # Files that were there before the package (e.g. from `make install`).
    for p in "${PRE[@]}"; do
        mkdir -p "$(dirname "$p")"
        mv -f "$T/pre$p" "$p" || rc=1
    done
    if [ "$STATE_TAKEN" = 1 ]; then restore_state || rc=1; fi
    if [ "$POLICY_CREATED" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    if [ "$rc" = 0 ] && [ -z "${TEST_KEEP:-}" ]; then
        rm -rf "$T"
    else
        echo "deb-test: run directory kept: $T" >&2
    fi
    [ "$rc" = 0 ] && say "PASS" || echo "deb-test: FAILED (exit $rc)" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. lintian -----------------------------------------------------------------
say "---- lintian $(basename "$CHANGES") $(basename "$DEB")"
# As an unprivileged user (lintian advises against root): copies it can read.
mkdir -p "$T/lintian"
cp "$DIR"/*.deb "$DIR"/*.changes "$DIR"/*.buildinfo "$T/lintian/"
chmod -R a+rX "$T/lintian"
for f in "$T/lintian/$(basename "$CHANGES")" "$T/lintian/$(basename "$DEB")"; do
    if ! setpriv --reuid=nobody --regid=nogroup --clear-groups --reset-env \
            lintian --fail-on error,warning "$f" > "$T/lintian.out" 2>&1; then
        cat "$T/lintian.out" >&2
        fail "lintian $(basename "$f"): errors or warnings (above)"
    fi
    if grep -E '^[EW]: ' "$T/lintian.out" >&2; then fail "lintian $(basename "$f") (above)"; fi
    ok "lintian $(basename "$f"): no error, no warning"
done
say "overrides in use (each with its reason):"
setpriv --reuid=nobody --regid=nogroup --clear-groups --reset-env \
    lintian --show-overrides "$T/lintian/$(basename "$CHANGES")" 2>&1 | sed 's/^/    /' || true

# The package's upstream version is the module's (debian/changelog follows
# SR_MODULE_VERSION).
deb_version=$(dpkg-deb -f "$DEB" Version)
mod_version=$(sed -nE 's/^#define[[:space:]]+SR_MODULE_VERSION[[:space:]]+"([^"]+)".*/\1/p' "$REPO"/*.h | head -n1)
if [ -n "$mod_version" ]; then
    [ "${deb_version%-*}" = "$mod_version" ] ||
        fail "package version $deb_version, module version $mod_version: add a debian/changelog entry (dch -v $mod_version-1)"
    ok "package version $deb_version matches SR_MODULE_VERSION $mod_version"
fi

# ---- preconditions and snapshot -------------------------------------------------
st=$(pkg_status)
if [ -n "$st" ] && [ "$st" != un ]; then
    fail "$PKG is already on this machine (dpkg status '$st'); the test installs and purges it: purge it first (apt-get purge $PKG)"
fi
paths > "$T/paths.before"
snapshot > "$T/snapshot.before"
tar -C / -cpf "$T/apache2-state.tar" etc/apache2 var/lib/apache2
a2query -m 2>/dev/null | awk '{print $1}' | sort > "$T/mods.before"
STATE_TAKEN=1
say "snapshot of /etc/apache2 and /var/lib/apache2 taken ($(wc -l < "$T/paths.before") paths, $(wc -l < "$T/mods.before") modules enabled)"

# The package's paths; what exists already (directories shared with other
# packages, or files of an earlier `make install`).
dpkg-deb --fsys-tarfile "$DEB" | tar -t | sed -e 's|^\./|/|' -e 's|/$||' | grep -v '^/\?$' > "$T/deb.paths"
while IFS= read -r p; do
    if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi
done < "$T/deb.paths" > "$T/deb.preexisting"
while IFS= read -r p; do
    [ -d "$p" ] && [ ! -L "$p" ] && continue
    if owner=$(dpkg -S "$p" 2>/dev/null); then fail "$p belongs to ${owner%%:*}; the package would conflict"; fi
    say "$p exists (not from a package: make install?): moved aside for the test, put back after"
    mkdir -p "$T/pre$(dirname "$p")"
    mv -f "$p" "$T/pre$p"
    PRE+=("$p")
done < "$T/deb.preexisting"
# The conventions are tested from a fresh install's state: a sticky_route
# enabled or disabled earlier (a2enmod after make install) is forgotten for
# the run (restore_state puts it back).
if [ "$(a2query -q -m sticky_route 2>/dev/null; echo $?)" != 1 ]; then
    say "sticky_route is known to a2query already ($(a2query -m sticky_route 2>&1)): state cleared for the test, put back after"
    rm -f /etc/apache2/mods-enabled/sticky_route.load /etc/apache2/mods-enabled/sticky_route.conf \
          /var/lib/apache2/module/*/sticky_route
fi

if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# deb-test (%s): no service starts while it runs\nexit 101\n' "$REPO/tests/deb/run.sh" \
        > /usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    POLICY_CREATED=1
    say "created /usr/sbin/policy-rc.d (exit 101) for the run"
fi

# apt's _apt user downloads local files too: a copy it can read.
mkdir -p "$T/pkg"
cp "$DEB" "$T/pkg/"
chmod -R a+rX "$T/pkg"
LOCAL_DEB=$T/pkg/$(basename "$DEB")

apt_run() {   # apt_run LOGNAME ARGS...
    local log=$T/apt-$1.log; shift
    if ! "${APT[@]}" "$@" > "$log" 2>&1; then
        cat "$log" >&2
        fail "apt-get $*"
    fi
    grep -E 'apache2_invoke|Enabling|Disabling|deferr' "$log" | sed 's/^/    apt: /' || true
}
mod_state() { local r=0; a2query -q -m "$1" 2>/dev/null || r=$?; echo "$r"; }   # 0 enabled, 1 unknown, 32 admin-, 33 maint-disabled

# ---- 2. install -----------------------------------------------------------------
say "---- apt-get install ./$(basename "$DEB")"
INSTALLED_BY_US=1
apt_run install install "$LOCAL_DEB"
[ "$(pkg_status)" = ii ] || fail "$PKG not installed (status '$(pkg_status)')"
dpkg -L "$PKG" | sort > "$T/dpkg-L"
for p in "$SO" /etc/apache2/mods-available/sticky_route.load /etc/apache2/mods-available/sticky_route.conf \
         /usr/share/doc/$PKG/copyright; do
    grep -qxF "$p" "$T/dpkg-L" || fail "dpkg -L $PKG does not list $p"
    [ -f "$p" ] || fail "$p missing"
done
ok "dpkg -L lists the module, sticky_route.load, sticky_route.conf, copyright ($(wc -l < "$T/dpkg-L") paths)"
a2query -m sticky_route | grep -q 'enabled by maintainer script' ||
    fail "sticky_route not enabled by the maintainer script: $(a2query -m sticky_route 2>&1)"
for m in proxy proxy_balancer; do
    [ "$(mod_state "$m")" = 0 ] || fail "$m not enabled with sticky_route (# Depends: in sticky_route.load)"
done
[ -L /etc/apache2/mods-enabled/sticky_route.load ] && [ -L /etc/apache2/mods-enabled/sticky_route.conf ] ||
    fail "mods-enabled/sticky_route.{load,conf} missing"
ok "postinst enabled sticky_route (a2query: $(a2query -m sticky_route)), with proxy and proxy_balancer"
apache2ctl -M > "$T/apache2ctl-M.out" 2>&1 || { cat "$T/apache2ctl-M.out" >&2; fail "apache2ctl -M"; }
grep -q '^ *sticky_route_module (shared)' "$T/apache2ctl-M.out" ||
    { cat "$T/apache2ctl-M.out" >&2; fail "apache2ctl -M does not list sticky_route_module"; }
ok "apache2ctl -M lists sticky_route_module (shared)"

# ---- 3. a sticky request through the installed module -----------------------------
declare -a PORTS=()
p=$((21000 + RANDOM % 900))
while [ ${#PORTS[@]} -lt 3 ] && [ "$p" -le 21999 ]; do
    port_free "$p" && PORTS+=("$p")
    p=$((p + 1))
done
[ ${#PORTS[@]} = 3 ] || fail "no 3 free ports in 21000-21999"
PPORT=${PORTS[0]}

wait_http() {   # wait_http URL: up to 10 s
    wait_for 10 curl -s -o /dev/null --max-time 1 "$1"
}
for i in 1 2; do
    name=$([ "$i" = 1 ] && echo alpha || echo bravo)
    port=${PORTS[$i]}
    mkdir -p "$T/$name"
    echo "$name" > "$T/$name/who"
    chmod -R a+rX "$T/$name"
    setpriv --reuid=nobody --regid=nogroup --clear-groups \
        /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$T/$name" "$port" \
        > "$T/$name.log" 2>&1 &
    PIDS+=($!)
    wait_http "http://127.0.0.1:$port/who" || fail "backend $name on 127.0.0.1:$port did not start"
done
say "backends: alpha 127.0.0.1:${PORTS[1]}, bravo 127.0.0.1:${PORTS[2]} (python3 -m http.server)"

LOAD=/etc/apache2/mods-available/sticky_route.load
grep -qx "LoadModule sticky_route_module $SO" "$LOAD" || fail "$LOAD does not load $SO"
httpd_conf() {   # httpd_conf NAME PORT BODY_FILE: writes $T/NAME/httpd.conf
    local d=$T/$1
    mkdir -p "$d/run" "$d/mutex" "$d/logs"
    chmod 0755 "$d"; chmod 0777 "$d/run" "$d/mutex"
    cat > "$d/httpd.conf" <<EOF
# deb-test: a throwaway httpd, nothing from /etc/apache2 but the package's .load
ServerRoot "$d"
ServerName 127.0.0.1
Listen 127.0.0.1:$2
PidFile "$d/httpd.pid"
ErrorLog "$d/logs/error.log"
LogLevel warn
Mutex file:$d/mutex default
DefaultRuntimeDir "$d/run"
User www-data
Group www-data
StartServers 1
ServerLimit 1
ThreadsPerChild 8
MaxRequestWorkers 8
LoadModule mpm_event_module $MODDIR/mod_mpm_event.so
LoadModule authz_core_module $MODDIR/mod_authz_core.so
LoadModule authz_host_module $MODDIR/mod_authz_host.so
LoadModule slotmem_shm_module $MODDIR/mod_slotmem_shm.so
LoadModule proxy_module $MODDIR/mod_proxy.so
LoadModule proxy_http_module $MODDIR/mod_proxy_http.so
LoadModule proxy_balancer_module $MODDIR/mod_proxy_balancer.so
# The installed package's load file: LoadModule sticky_route_module $SO
Include $LOAD
LogFormat "%h \"%r\" %>s route=%{STICKY_ROUTE}e sticky=%{STICKY_ROUTE_STATUS}e" sticky
CustomLog "$d/logs/access.log" sticky
EOF
    cat "$3" >> "$d/httpd.conf"
}

# The examples of the installed sticky_route.conf, uncommented, parse.
CONF_INSTALLED=/etc/apache2/mods-available/sticky_route.conf
sed -E 's/^#(\s*(<\/?Proxy|<\/?Location|BalancerMember|ProxySet|ProxyPass|SetHandler|Require)\b)/\1/' \
    "$CONF_INSTALLED" > "$T/examples.conf"
n=$(grep -cE '^\s*(BalancerMember|ProxySet lbmethod=(sticky|roundrobin)|SetHandler sticky-route-status)' "$T/examples.conf" || true)
[ "$n" -ge 6 ] || fail "sticky_route.conf: expected commented examples (2 balancers, status), found $n lines"
grep -vE '^\s*(#|$)' "$CONF_INSTALLED" && fail "$CONF_INSTALLED has active lines (must be off by default)"
httpd_conf examples "$PPORT" "$T/examples.conf"
httpd_configtest "$T/examples/httpd.conf" "$T/examples.t" ||
    { cat "$T/examples.t" >&2; fail "the examples of sticky_route.conf, uncommented, fail apache2 -t"; }
ok "sticky_route.conf is comments only; its examples (sticky, roundrobin, status) pass apache2 -t uncommented"

cat > "$T/proxy-body.conf" <<EOF
<Proxy "balancer://deb">
    BalancerMember "http://127.0.0.1:${PORTS[1]}" route=alpha
    BalancerMember "http://127.0.0.1:${PORTS[2]}" route=bravo
    ProxySet lbmethod=sticky
</Proxy>
ProxyPass "/" "balancer://deb/"
EOF
httpd_conf proxy "$PPORT" "$T/proxy-body.conf"
CONFS+=("$T/proxy/httpd.conf")
httpd_start "$T/proxy/httpd.conf" "$T/proxy-start.log" "$PPORT" ||
    fail "the throwaway httpd did not start ($T/proxy-start.log, $T/proxy/logs/error.log)"
wait_http "http://127.0.0.1:$PPORT/who" || { cat "$T/proxy/logs/error.log" >&2; fail "proxy on 127.0.0.1:$PPORT not answering"; }
say "throwaway httpd on 127.0.0.1:$PPORT (ServerRoot $T/proxy), module from $SO"

N=0
get() {   # get [COOKIE]: sets BODY, SETCOOKIES (Set-Cookie header values), CODE
    N=$((N + 1))
    local h=$T/r$N.h b=$T/r$N.b
    local args=(-s --max-time 10 -D "$h" -o "$b" -w '%{http_code}')
    [ -n "${1:-}" ] && args+=(-H "Cookie: $1")
    CODE=$(curl "${args[@]}" "http://127.0.0.1:$PPORT/who") || fail "request $N: curl failed"
    BODY=$(tr -d '\r\n' < "$b")
    SETCOOKIES=$(grep -i '^Set-Cookie:' "$h" | sed -E 's/^[Ss]et-[Cc]ookie: *//' | tr -d '\r' || true)
}
get
[ "$CODE" = 200 ] || fail "first request: HTTP $CODE"
[ "$(printf '%s\n' "$SETCOOKIES" | grep -c '^ROUTEID=')" = 1 ] ||
    fail "first request: expected one Set-Cookie ROUTEID=..., got: ${SETCOOKIES:-none}"
COOKIE1=$(printf '%s\n' "$SETCOOKIES" | grep '^ROUTEID=' | cut -d';' -f1)
FIRST=$BODY
ok "new client -> $FIRST, Set-Cookie: $SETCOOKIES"
for i in 1 2 3 4 5; do
    get "$COOKIE1"
    [ "$CODE" = 200 ] && [ "$BODY" = "$FIRST" ] || fail "request with $COOKIE1: HTTP $CODE from '$BODY', expected $FIRST"
    [ -z "$SETCOOKIES" ] || fail "request with a valid cookie got Set-Cookie: $SETCOOKIES"
done
ok "5 requests with $COOKIE1 -> $FIRST every time, no new cookie"
get
COOKIE2=$(printf '%s\n' "$SETCOOKIES" | grep '^ROUTEID=' | cut -d';' -f1 || true)
SECOND=$BODY
[ -n "$COOKIE2" ] && [ "$SECOND" != "$FIRST" ] ||
    fail "second new client: expected the other backend and a cookie, got '$SECOND', '${SETCOOKIES:-no cookie}'"
for i in 1 2 3; do
    get "$COOKIE2"
    [ "$BODY" = "$SECOND" ] || fail "request with $COOKIE2 went to '$BODY', expected $SECOND"
    get "$COOKIE1"
    [ "$BODY" = "$FIRST" ] || fail "request with $COOKIE1 went to '$BODY', expected $FIRST"
done
ok "second new client -> $SECOND ($COOKIE2); both clients stay on their backends, interleaved"
grep -q 'sticky=new' "$T/proxy/logs/access.log" && grep -q 'sticky=hit' "$T/proxy/logs/access.log" ||
    { cat "$T/proxy/logs/access.log" >&2; fail "access log: no sticky=new / sticky=hit decisions"; }
if grep -E 'AH00052|Segmentation|exit signal' "$T/proxy/logs/error.log" >&2; then fail "proxy child crashed"; fi
stop_all
ok "access log records the module's decisions: $(grep -o 'sticky=[a-z]*' "$T/proxy/logs/access.log" | sort | uniq -c | awk '{print $1 " " $2}' | paste -sd, -)"

# ---- 4. maintainer-script conventions ----------------------------------------------
say "---- remove, install again, admin's a2dismod, reinstall"
apt_run remove remove "$PKG"
[ "$(pkg_status)" = rc ] || fail "after remove: dpkg status '$(pkg_status)', expected rc (conffiles kept)"
[ ! -e "$SO" ] || fail "after remove: $SO still there"
[ -f /etc/apache2/mods-available/sticky_route.load ] || fail "after remove: the conffile sticky_route.load is gone"
[ ! -e /etc/apache2/mods-enabled/sticky_route.load ] && [ ! -L /etc/apache2/mods-enabled/sticky_route.load ] ||
    fail "after remove: mods-enabled/sticky_route.load left (a dangling module)"
[ "$(mod_state sticky_route)" = 33 ] || fail "after remove: a2query -m sticky_route exit $(mod_state sticky_route), expected 33 (disabled by maintainer script)"
apache2ctl -t > "$T/t.out" 2>&1 || { cat "$T/t.out" >&2; fail "after remove: apache2ctl -t fails"; }
ok "remove: module disabled by the prerm, .so gone, conffiles kept, configuration valid"

apt_run reinstall-after-remove install "$LOCAL_DEB"
[ "$(mod_state sticky_route)" = 0 ] || fail "install after remove: sticky_route not enabled again"
ok "install after remove: enabled again (it was disabled by the maintainer script, not by the admin)"

a2dismod -q sticky_route > /dev/null
[ "$(mod_state sticky_route)" = 32 ] || fail "a2dismod: a2query exit $(mod_state sticky_route), expected 32"
apt_run reinstall-after-dismod install --reinstall "$LOCAL_DEB"
[ "$(mod_state sticky_route)" = 32 ] || fail "reinstall enabled a module the admin disabled (a2query exit $(mod_state sticky_route))"
ok "admin's a2dismod sticky_route survives apt-get install --reinstall"

# ---- 5. purge ----------------------------------------------------------------------
say "---- apt-get purge $PKG"
dpkg -L "$PKG" | sort > "$T/dpkg-L"
apt_run purge purge "$PKG"
st=$(pkg_status)
[ -z "$st" ] || [ "$st" = un ] || fail "after purge: dpkg status '$st'"
left=()
while IFS= read -r p; do
    [ "$p" = /. ] && continue
    # A directory that existed before (shared with other packages) stays.
    [ -d "$p" ] && grep -qxF "$p" "$T/deb.preexisting" && continue
    if [ -e "$p" ] || [ -L "$p" ]; then left+=("$p"); fi
done < "$T/dpkg-L"
[ ${#left[@]} = 0 ] || fail "after purge, left: ${left[*]}"
ok "purge: none of the $(wc -l < "$T/dpkg-L") paths of dpkg -L is left (but shared directories that existed before)"
out=$(a2query -m sticky_route 2>&1) && fail "after purge: a2query -m sticky_route finds it: $out"
[ "$(mod_state sticky_route)" = 1 ] || fail "after purge: a2query -m sticky_route exit $(mod_state sticky_route), expected 1 (no module, no state)"
stale=$(find /etc/apache2 /var/lib/apache2 -name 'sticky_route*')
[ -z "$stale" ] || fail "after purge, left: $stale"
ok "a2query -m sticky_route: '$out'; no sticky_route file in /etc/apache2 or /var/lib/apache2"

# ---- 6. the machine as found ----------------------------------------------------------
a2query -m 2>/dev/null | awk '{print $1}' | sort > "$T/mods.after-purge"
extra=$(comm -13 "$T/mods.before" "$T/mods.after-purge" | paste -sd' ' -)
[ -z "$extra" ] || say "enabled by the package's dependencies, disabled again by the restore: $extra"
INSTALLED_BY_US=0
# cleanup (EXIT trap): files moved aside put back, /etc/apache2 and
# /var/lib/apache2 restored and compared with the snapshot, policy-rc.d removed.
