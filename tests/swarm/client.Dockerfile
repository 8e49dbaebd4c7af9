# Test client of make test-swarm (tests/swarm/run.sh): Debian's python3 and
# tests/swarm/client.py, run on the stack's attachable frontend network.
# Build context: tests/swarm/. Not part of the stack.
FROM debian:bookworm-slim
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends python3; \
    rm -rf /var/lib/apt/lists/*
COPY client.py /usr/local/bin/sr-swarm-client
ENTRYPOINT ["python3", "/usr/local/bin/sr-swarm-client"]
