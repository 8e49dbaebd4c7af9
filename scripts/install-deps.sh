#!/bin/bash
# Installs, on a Debian 12 machine as root, every package the build, the
# tests, `make run` and the benchmarks need. Idempotent: does nothing when all
# of them are already present.
set -euo pipefail
PKGS=(apache2 apache2-dev apache2-utils libapr1-dev libaprutil1-dev check pkg-config
      build-essential curl python3-pytest python3-requests prometheus python3-prometheus-client
      node-express node-chance chromium
      wrk haproxy nginx-core gnuplot-nox valgrind clang libclang-rt-14-dev linux-perf
      docker.io containerd runc docker-compose python3-yaml debootstrap iptables iproute2 procps psmisc
      debhelper dpkg-dev fakeroot lintian
      dnsmasq-base
      pebble nghttp2-client openssl)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js: the machine's own (e.g. NodeSource, which bundles npm) when there
# is one, else Debian's nodejs and npm.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: missing packages: ${missing[*]} (run as root to install)" >&2
        exit 1
    fi
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# playwright-core for the browser test (npm registry; no browser download).
if [ -f tests/browser/package.json ] && [ ! -d tests/browser/node_modules/playwright-core ]; then
    (cd tests/browser && npm install --no-audit --no-fund --silent)
fi
