#!/usr/bin/env bash
# Differential test of govmesh's Cedar evaluator against the reference engine.
#
# Usage: tests/differential/run_differential.sh BUILD_BIN_DIR SEED COUNT
#
# Generates COUNT random Cedar integration tests from SEED with `govmesh gen-tests`, has the
# reference engine (npm @cedar-policy/cedar-wasm, via tests/oracle/cedar_oracle.mjs) fill in the
# expected decisions, reasons and errors, then runs `govmesh cedar-test` on them and exits
# with its status. The generated tests are kept when the comparison fails, for reproduction.
set -euo pipefail

if [ "$#" -ne 3 ]; then
  echo "usage: $0 BUILD_BIN_DIR SEED COUNT" >&2
  exit 2
fi
bin_dir=$(cd "$1" && pwd)
seed=$2
count=$3
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
oracle_dir="$repo_root/tests/oracle"

work=$(mktemp -d "${TMPDIR:-/tmp}/govmesh-differential.XXXXXX")
keep=0
cleanup() { if [ "$keep" -eq 0 ]; then rm -rf "$work"; fi; }
trap cleanup EXIT

if [ ! -d "$oracle_dir/node_modules/@cedar-policy/cedar-wasm" ]; then
  # Installs exactly the versions pinned in package-lock.json; uses the npm cache when it can.
  (cd "$oracle_dir" && npm ci --prefer-offline --no-audit --no-fund)
fi

# The oracle fills in the expected answers. Node itself has been seen to die in V8's deoptimizer
# ("Fatal error ... unreachable code", SIGTRAP) about once in a few dozen runs: a crash of the
# oracle (killed by a signal, status > 128) is not a verdict, so the tests are generated afresh
# and the oracle runs once more. Any other failure of the oracle fails the test at once.
for attempt in 1 2; do
  rm -rf "${work:?}/tests"
  echo "differential: seed $seed, $count tests in $work"
  "$bin_dir/govmesh" gen-tests --seed "$seed" --count "$count" --out "$work"
  oracle_status=0
  node "$oracle_dir/cedar_oracle.mjs" "$work/tests" || oracle_status=$?
  [ "$oracle_status" -eq 0 ] && break
  if [ "$oracle_status" -le 128 ] || [ "$attempt" -eq 2 ]; then
    echo "differential: the oracle (node) failed with status $oracle_status" >&2
    exit "$oracle_status"
  fi
  echo "differential: the oracle (node) was killed by signal $((oracle_status - 128)); running it again" >&2
done

# Both evaluators answer the same oracle-checked requests: the reference (tree walk) and the
# compiled decision table.
status=0
for engine in reference table; do
  "$bin_dir/govmesh" cedar-test --engine "$engine" "$work/tests" || status=$?
done
if [ "$status" -ne 0 ]; then
  keep=1
  echo "differential: govmesh disagrees with cedar-wasm (seed $seed); tests kept in $work" >&2
fi
exit "$status"
