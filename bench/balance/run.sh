#!/bin/bash
# Balance-quality benchmark (`make bench-balance`): real proxies and members on
# 127.0.0.1 (ports 23101-23270 by default), a seeded client model of a few
# hundred sticky clients, three scenarios (scale-out, member down and back,
# skewed load), every contender on the same members and timeline. Writes
# docs/benchmarks/balance/results.md, one PNG per scenario and raw/.
#
#   make bench-balance                                    # full run, 3 repetitions (~32 minutes)
#   BALANCE_REPEAT=1 make bench-balance                   # one repetition (~11 minutes)
#   BALANCE_SMOKE=1 bash bench/balance/run.sh             # smoke, one repetition (< 2 minutes, /tmp/balance-smoke)
#   BALANCE_CONTENDERS=sticky,haproxy-lc BALANCE_SCENARIOS=down bash bench/balance/run.sh
#
# Settings: docs/benchmarks/balance/README.md. Exit status: 0 when every run
# that could run ran (targets are reported, never asserted), 1 when a run
# failed, 2 for bad settings or missing tools.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
for tool in apache2 haproxy gnuplot /usr/bin/python3; do
    command -v "$tool" >/dev/null || { echo "bench-balance: $tool not found (run: make deps)" >&2; exit 2; }
done
others="$(pgrep -af 'pytest|bench/run.sh|wrk ' | grep -v pgrep || true)"
if [ -n "$others" ]; then
    echo "bench-balance: note: other load is running (the report records it):" >&2
    echo "$others" | sed 's/^/    /' | cut -c1-160 >&2
fi
exec /usr/bin/python3 "$REPO/bench/balance/balance.py" main
