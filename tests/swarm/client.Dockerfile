# Test client of make test-swarm (tests/swarm/run.sh): Debian's python3,
# tests/swarm/client.py and the retry rule it shares with tests/faults
# (tests/httpretry.py), run on the stack's attachable frontend network.
# Build context: a directory run.sh fills with client.py and httpretry.py
# (the two files only). Not part of the stack.
FROM debian:bookworm-slim
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends python3; \
    rm -rf /var/lib/apt/lists/*
COPY httpretry.py client.py /usr/local/lib/sr-swarm-client/
ENTRYPOINT ["python3", "/usr/local/lib/sr-swarm-client/client.py"]
