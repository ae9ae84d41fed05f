#!/usr/bin/env bash
# `govmesh serve` as a process: starts on ports chosen by the kernel (127.0.0.1:0), checks
# /healthz, /readyz and the bundle revision on /metrics, replaces the bundle file with a newer
# signed one and sends SIGHUP (the revision changes), then a refused file and SIGHUP (logged, the
# revision stays), then SIGTERM (drains, exit 0). Uses bash's /dev/tcp: curl may be missing.
#
# Usage: serve_process_test.sh GOVMESH CLI_DATA_DIR WORK_DIR
set -u
govmesh=$1 cli=$2 work=$3
rm -rf "$work" && mkdir -p "$work" || exit 1
cd "$work" || exit 1
pid=
fail() {
  echo "FAIL: $*"
  echo "--- serve stdout ---"; cat out.txt 2>/dev/null
  echo "--- serve stderr ---"; cat err.txt 2>/dev/null
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  exit 1
}

# Keys and two signed bundles, revisions 1 and 2.
"$govmesh" keygen --out authority --force >/dev/null || fail keygen
for rev in 1 2; do
  "$govmesh" compile --policies "$cli/policies.cedar" --entities "$cli/entities.json" --schema "$cli/schema.cedarschema" \
    --keys "$cli/keys.json" --revision $rev --ttl 10m --out u$rev.bundle >/dev/null || fail "compile $rev"
  "$govmesh" sign --key authority.key u$rev.bundle --out s$rev.bundle >/dev/null || fail "sign $rev"
done
cp s1.bundle node.bundle

"$govmesh" serve --bundle node.bundle --trust authority.pub --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
  --node-id proc-test >out.txt 2>err.txt &
pid=$!
for _ in $(seq 100); do
  grep -q "listening on" out.txt 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || fail "serve exited early"
  sleep 0.1
done
line=$(head -n1 out.txt)
[[ $line =~ ^listening\ on\ 127\.0\.0\.1:([0-9]+)\ \(metrics\ 127\.0\.0\.1:([0-9]+)\),\ bundle\ revision\ 1$ ]] ||
  fail "unexpected first line: '$line'"
rpcPort=${BASH_REMATCH[1]} httpPort=${BASH_REMATCH[2]}
[ "$rpcPort" -gt 0 ] && [ "$httpPort" -gt 0 ] || fail "ports $rpcPort $httpPort"

# GET PATH: prints the status line's code, then the body. Reads Content-Length bytes rather than
# waiting for the server to close (kj-http keeps the connection open).
get() {
  exec 3<>"/dev/tcp/127.0.0.1/$httpPort" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
  local line status len=0
  IFS= read -r -t 5 line <&3 || { exec 3<&-; return 1; }
  status=$(echo "$line" | awk '{print $2}')
  while IFS= read -r -t 5 line <&3; do
    line=${line%$'\r'}
    [ -z "$line" ] && break
    case ${line,,} in content-length:*) len=${line#*: } ;; esac
  done
  echo "$status"
  [ "$len" -gt 0 ] && timeout 5 head -c "$len" <&3
  exec 3<&-
}
revision() { get /metrics | awk '$1 == "govmesh_bundle_revision" {print $2}'; }

[ "$(get /healthz | head -n1)" = 200 ] || fail "/healthz"
[ "$(get /readyz | head -n1)" = 200 ] || fail "/readyz not ready"
[ "$(get /nope | head -n1)" = 404 ] || fail "/nope is not 404"
[ "$(revision)" = 1 ] || fail "revision $(revision), expected 1"

# A newer signed bundle, then SIGHUP.
cp s2.bundle node.bundle
kill -HUP "$pid"
for _ in $(seq 100); do [ "$(revision)" = 2 ] && break; sleep 0.1; done
[ "$(revision)" = 2 ] || fail "revision $(revision) after SIGHUP, expected 2"
grep -q "now serving bundle revision 2" err.txt || fail "reload not logged"

# A refused file (the unsigned bundle), then SIGHUP: logged, revision 2 stays.
cp u1.bundle node.bundle
kill -HUP "$pid"
for _ in $(seq 100); do grep -q "bundle refused" err.txt && break; sleep 0.1; done
grep -q "bundle refused (untrusted_signer)" err.txt || fail "refusal not logged"
[ "$(revision)" = 2 ] || fail "revision $(revision) after a refused reload, expected 2"
[ "$(get /readyz | head -n1)" = 200 ] || fail "/readyz after a refused reload"

# SIGTERM: drain and exit 0.
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
grep -q "SIGTERM: draining" err.txt || fail "no drain message"
echo "ok: serve started on ports $rpcPort/$httpPort, reloaded on SIGHUP (1 -> 2), refused a bad file, exited 0 on SIGTERM"
