#!/bin/bash
# Server memory under a long signed load: starts `govmesh serve` on a key directory made by
# `govmesh demo --keep DIR`, measures the maximum signed rate for 10 s, then runs loadgen at 80%
# of it for SECONDS (default 300) with 10% tampered requests and --check, sampling the server's
# RSS every 10 s. Prints "max", "rate", one "t rss_kb" line per sample, and loadgen's report.
#   bench/service_rss.sh DIR [SECONDS]
set -euo pipefail
G=${GOVMESH:-build/bin/govmesh}
D=$1
SECS=${2:-300}
$G serve --bundle "$D/bundles/1.bundle" --trust "$D/authority.pub" --listen 127.0.0.1:7980 --metrics 127.0.0.1:9480 >/dev/null 2>&1 &
SP=$!
trap 'kill -TERM $SP 2>/dev/null || true' EXIT
sleep 1
MAX=$($G loadgen --connect 127.0.0.1:7980 --keys "$D" --max --seconds 10 --batch 64 --json 2>/dev/null |
      python3 -c "import json,sys; print(json.load(sys.stdin)['decisions_per_second'])")
RATE=$(python3 -c "print(int($MAX * 0.8))")
echo "max $MAX"
echo "rate $RATE"
REPORT=$(mktemp)
$G loadgen --connect 127.0.0.1:7980 --keys "$D" --rate "$RATE" --seconds "$SECS" --batch 16 --bad-fraction 0.1 --check --json >"$REPORT" 2>/dev/null &
LP=$!
for ((t = 0; t <= SECS; t += 10)); do
  echo "$t $(awk '/VmRSS/ {print $2}' /proc/$SP/status)"
  sleep 10
done
wait $LP || true
cat "$REPORT"
rm -f "$REPORT"
