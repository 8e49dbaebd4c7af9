#!/bin/bash
# make deb: builds the Debian package libapache2-mod-sticky-route with
# `dpkg-buildpackage -us -uc -b` in a fresh copy of the tree, so the checkout
# keeps its own build products (.libs/ ...) and gets no debian/ ones.
#
#   scripts/build-deb.sh [OUT]     (OUT: default build/deb, git-ignored)
#
# The copy is OUT/src: in a git checkout, every file git would see (tracked
# or new, not ignored); elsewhere (a Docker build context) the whole tree but
# build/ and .git/. dpkg-buildpackage writes its results to the parent of the
# tree it builds, i.e. OUT:
#   OUT/libapache2-mod-sticky-route_<version>_<arch>.deb          the package
#   OUT/libapache2-mod-sticky-route-dbgsym_<version>_<arch>.deb   debug symbols
#   OUT/libapache2-mod-sticky-route_<version>_<arch>.buildinfo, .changes
# OUT/src is removed after a successful build.
set -euo pipefail
export LC_ALL=C
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO"
OUT=${1:-build/deb}
case $OUT in /*) ;; *) OUT=$REPO/$OUT ;; esac

rm -rf "$OUT"
mkdir -p "$OUT/src"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Files deleted in the work tree but still tracked are skipped.
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
        done |
        tar --null -T - -cf - | tar -C "$OUT/src" -xf -
else
    tar --exclude=./build --exclude=./.git -cf - . | tar -C "$OUT/src" -xf -
fi

(cd "$OUT/src" && dpkg-buildpackage -us -uc -b)
rm -rf "$OUT/src"
echo "make deb: results in ${OUT#"$REPO"/}/:"
ls -l "$OUT"
