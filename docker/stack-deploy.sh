#!/bin/bash
# Deploys docker-compose.yml on a Docker Swarm:
#
#   docker/stack-deploy.sh STACK_NAME [docker stack deploy options]
#   docker/stack-deploy.sh --print-config    (what Swarm reads; no engine needed)
#
# `docker stack deploy` reads the Compose file with the docker CLI's own
# loader, which accepts depends_on only as a list (moby/moby#46827) while
# `docker-compose up` needs the long form with `condition: service_healthy`.
# Swarm ignores depends_on anyway (it restarts tasks until their dependencies
# answer), so this script removes the depends_on blocks and hands the rest of
# the file, unchanged, to `docker stack deploy -c -`. build: and restart: are
# ignored by Swarm (deploy: applies); the images must be in a registry every
# node can pull from (IMAGE_PREFIX=registry.example/sticky-route, see
# docs/COMPOSE.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

swarm_form() {
    # Drops every "    depends_on:" block (4-space indented key, deeper lines).
    awk '/^    depends_on:/ {skip = 1; next}
         skip && /^      / {next}
         {skip = 0; print}' docker-compose.yml
}

if [ "${1:-}" = --print-config ]; then
    swarm_form | docker stack config -c -
    exit
fi
[ $# -ge 1 ] || { echo "usage: $0 STACK_NAME [docker stack deploy options] | --print-config" >&2; exit 2; }
[ -s secrets/sticky_route_secret ] || {
    echo "$0: secrets/sticky_route_secret missing (head -c 32 /dev/urandom | base64 > secrets/sticky_route_secret)" >&2
    exit 2
}
stack=$1; shift
swarm_form | docker stack deploy "$@" -c - "$stack"
