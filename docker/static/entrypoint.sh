#!/bin/bash
# Entry point of the static image: checks INSTANCE_NAME (it goes into a
# response header and the page), then execs httpd as PID 1.
set -euo pipefail
if [[ ! "${INSTANCE_NAME:-}" =~ ^[A-Za-z0-9._-]{1,64}$ ]]; then
    echo "static: INSTANCE_NAME='${INSTANCE_NAME:-}' is invalid: expected 1-64 characters of A-Z a-z 0-9 . _ -" >&2
    exit 2
fi
# A pid file left by a killed container would make httpd refuse to start.
rm -f "${STATIC_RUN_DIR:?}/httpd.pid"
exec "$@"
