#!/bin/bash
# Makes the local base image docker.io/library/debian:bookworm-slim with
# debootstrap (Docker Hub is not reachable from these machines), once: when the
# image already exists, does nothing. About 2-3 minutes on a fresh machine.
#
#   BASE_ENGINE=docker (default): the engine at DOCKER_HOST, with Debian's
#       /usr/bin/docker; when podman already has the image it is copied over
#       (podman save | docker load, seconds) instead of debootstrapped again.
#   BASE_ENGINE=podman: podman's own storage.
#
# The result mimics the official image where it matters to our Dockerfiles:
# deb822 sources for bookworm, bookworm-updates and bookworm-security, no apt
# lists or .debs left behind, no docs/man pages installed by later apt-get runs.
set -euo pipefail
IMAGE=${BASE_IMAGE:-docker.io/library/debian:bookworm-slim}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
ENGINE=${BASE_ENGINE:-docker}
docker() { /usr/bin/docker "$@"; }

case $ENGINE in
    docker)
        if docker image inspect "$IMAGE" >/dev/null 2>&1; then
            echo "make-base-image: $IMAGE exists"
            exit 0
        fi
        if command -v podman >/dev/null && podman image exists "$IMAGE" 2>/dev/null; then
            podman save "$IMAGE" | docker load >/dev/null
            docker image inspect "$IMAGE" >/dev/null 2>&1 || docker tag "${IMAGE#docker.io/library/}" "$IMAGE"
            echo "make-base-image: $IMAGE copied from podman's storage"
            exit 0
        fi
        import() { docker import "$@"; } ;;
    podman)
        if podman image exists "$IMAGE"; then
            echo "make-base-image: $IMAGE exists"
            exit 0
        fi
        import() { podman import "$@"; } ;;
    *) echo "make-base-image: BASE_ENGINE=$ENGINE: expected docker or podman" >&2; exit 2 ;;
esac
command -v debootstrap >/dev/null || { echo "make-base-image: debootstrap missing (make deps)" >&2; exit 1; }

root=$(mktemp -d /tmp/sr-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "make-base-image: debootstrap --variant=minbase bookworm ($MIRROR) ..."
start=$(date +%s)
# Bounded: a stuck mirror must not hang CI.
timeout 900 debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1 || {
    echo "make-base-image: debootstrap failed; last lines of its log:" >&2
    tail -n 30 "$root.log" >&2
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"

# Same apt sources as the official image.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
# Slim: like the official image, later apt-get runs skip docs and man pages,
# and apt keeps no downloaded packages.
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
CFG
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
cat >"$root/etc/apt/apt.conf.d/docker-no-languages" <<'CFG'
Acquire::Languages "none";
CFG
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb \
       "$root"/usr/share/doc/*/changelog* "$root"/usr/share/man/* "$root"/usr/share/info/*
# The host's resolv.conf and hostname are not part of an image.
: >"$root/etc/resolv.conf"
echo localhost >"$root/etc/hostname"

tar --numeric-owner -C "$root" -c . | import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$IMAGE" >/dev/null
echo "make-base-image: $IMAGE made in $(( $(date +%s) - start ))s"
