#!/usr/bin/env bash
# `govmesh serve --etcd` as a process (issue 8): a single-member etcd on loopback ports, a bundle
# published with `govmesh publish` (a second publish of the same revision is refused), a node that
# takes it from etcd, a newer bundle published and activated, a bundle signed by an untrusted key
# published and refused by the node, etcd frozen with SIGSTOP (the node denies POLICY_STALE once
# the sync timeout passes) and thawed with SIGCONT (it recovers), the --bundle/--etcd argument
# rules, and SIGTERM (exit 0).
#
# Usage: mesh_serve_process_test.sh GOVMESH [PARENT_DIR]  (a temporary directory is made there and removed)
# Needs etcd (etcd-server), curl and python3 (to pick free ports).
set -euo pipefail
govmesh=$(realpath "$1")
[ -x "$govmesh" ] || { echo "FAIL: no govmesh executable at '$govmesh'"; exit 1; }
command -v etcd >/dev/null || { echo "FAIL: etcd is not installed (Debian: etcd-server)"; exit 1; }
command -v curl >/dev/null || { echo "FAIL: curl is not installed"; exit 1; }
command -v python3 >/dev/null || { echo "FAIL: python3 is not installed"; exit 1; }

work=$(mktemp -d "${2:-${TMPDIR:-/tmp}}/mesh_serve.XXXXXX" 2>/dev/null || mktemp -d)
etcdPid='' nodePid=''

cleanup() {
  local rc=$?
  # A stopped etcd ignores SIGTERM until it runs again: SIGCONT first, then SIGKILL to be sure.
  for p in $nodePid $etcdPid; do
    kill -CONT "$p" 2>/dev/null || true
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "FAIL: $*"
  echo "--- serve stdout ---"; cat "$work/node.out" 2>/dev/null || true
  echo "--- serve stderr ---"; cat "$work/node.err" 2>/dev/null || true
  echo "--- etcd log (last 20 lines) ---"; tail -n 20 "$work/etcd.log" 2>/dev/null || true
  exit 1
}
ok() { echo "ok: $*"; }

cd "$work"

# 1. A single-member etcd on two free loopback ports. The ports are found by binding port 0 and
# closing: another process could take one in between, so a start that fails is tried again on
# fresh ports (three tries).
startEtcd() {
  local clientPort peerPort try
  for try in 1 2 3; do
    read -r clientPort peerPort < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
    etcdUrl=http://127.0.0.1:$clientPort
    rm -rf "$work/etcd-data"
    etcd --name m1 --data-dir "$work/etcd-data" \
      --listen-client-urls "$etcdUrl" --advertise-client-urls "$etcdUrl" \
      --listen-peer-urls "http://127.0.0.1:$peerPort" --initial-advertise-peer-urls "http://127.0.0.1:$peerPort" \
      --initial-cluster "m1=http://127.0.0.1:$peerPort" --initial-cluster-state new \
      --experimental-watch-progress-notify-interval 200ms >"$work/etcd.log" 2>&1 &
    etcdPid=$!
    for _ in $(seq 100); do
      kill -0 "$etcdPid" 2>/dev/null || break
      curl -sf --max-time 1 -X POST "$etcdUrl/v3/maintenance/status" -d '{}' >/dev/null 2>&1 && return 0
      sleep 0.1
    done
    echo "etcd did not start on $etcdUrl (try $try):"; tail -n 3 "$work/etcd.log"
    kill -KILL "$etcdPid" 2>/dev/null || true
    wait "$etcdPid" 2>/dev/null || true
    etcdPid=
  done
  return 1
}
startEtcd || fail "etcd did not start (three tries; is the etcd-server package installed?)"
ok "etcd up on $etcdUrl (pid $etcdPid)"

# 2. Keys, the revision-1 bundle and the policy sources from the demo; publish revision 1.
"$govmesh" demo --keep D --seconds 1 >demo.out 2>&1 || { cat demo.out; fail "govmesh demo --keep"; }
for f in D/authority.pub D/authority.key D/bundles/1.bundle D/node.key D/policy/policies.cedar; do
  [ -f "$f" ] || fail "demo did not write $f"
done
out=$("$govmesh" publish --etcd "$etcdUrl" --bundle D/bundles/1.bundle 2>&1) || fail "publish revision 1: $out"
grep -q "published bundle revision 1" <<<"$out" || fail "publish revision 1 said: $out"
ok "published revision 1"

# 3. The same revision again: refused, exit 1.
rc=0
out=$("$govmesh" publish --etcd "$etcdUrl" --bundle D/bundles/1.bundle 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "second publish of revision 1 exited $rc, expected 1: $out"
grep -q "not newer" <<<"$out" || fail "second publish of revision 1 said: $out"
ok "a second publish of revision 1 is refused (not newer)"

# 4. A node that takes its bundle from etcd.
"$govmesh" serve --etcd "$etcdUrl" --trust D/authority.pub --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
  --sync-timeout-ms 1500 --lineage D/lineage2 --node-key D/node.key >node.out 2>node.err &
nodePid=$!
for _ in $(seq 150); do
  grep -q "listening on" node.out 2>/dev/null && break
  kill -0 "$nodePid" 2>/dev/null || fail "serve exited early"
  sleep 0.1
done
line=$(head -n1 node.out)
# The line names the revision the node holds after waiting up to the sync timeout for the first
# read: 1 normally, 0 on a slow machine (it then takes revision 1 moments later).
[[ $line =~ ^listening\ on\ 127\.0\.0\.1:([0-9]+)\ \(metrics\ 127\.0\.0\.1:([0-9]+)\),\ bundle\ revision\ ([01])(,|$) ]] ||
  fail "unexpected first line: '$line'"
rpcPort=${BASH_REMATCH[1]} httpPort=${BASH_REMATCH[2]} firstRevision=${BASH_REMATCH[3]}

# GET PATH: the body, then the HTTP status code on a line of its own (000: no answer).
fetch() { curl -s --max-time 3 -w '\n%{http_code}' "http://127.0.0.1:$httpPort$1" || true; }
status() { fetch "$1" | tail -n1; }
body() { fetch "$1" | sed '$d'; }
revision() { body /metrics | awk '$1 == "govmesh_bundle_revision" {print $2}'; }
# waitFor MILLISECONDS CMD...: runs CMD every 0.1 s until it succeeds; fails once the time is up.
waitFor() {
  local deadline=$(($(date +%s%3N) + $1))
  shift
  until "$@"; do
    [ "$(date +%s%3N)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
nowMs() { date +%s%3N; }
readyIs() { [ "$(status /readyz)" = "$1" ]; }
# /readyz answers 200 and names bundle revision $1 (one request: status and body agree).
readyRevision() {
  local r
  r=$(fetch /readyz)
  [ "$(tail -n1 <<<"$r")" = 200 ] && grep -q "revision $1\b" <<<"$r"
}

waitFor 3000 readyRevision 1 || fail "/readyz is not 200 naming revision 1: $(fetch /readyz)"
[ "$(revision)" = 1 ] || fail "govmesh_bundle_revision is '$(revision)', expected 1"
ok "serve --etcd started on ports $rpcPort/$httpPort (first line: revision $firstRevision); /readyz 200 revision 1, gauge 1"

# 5. Revision 2 from the same sources, signed by the authority: active within 2 s.
compile() { # REVISION OUT
  "$govmesh" compile --policies D/policy/policies.cedar --entities D/policy/entities.json \
    --schema D/policy/governance.cedarschema --keys D/policy/workload-keys.json \
    --revision "$1" --ttl 1h --out "$2" >/dev/null 2>compile.err || { cat compile.err; fail "compile revision $1"; }
}
compile 2 u2.bundle
"$govmesh" sign --key D/authority.key u2.bundle --out s2.bundle >/dev/null || fail "sign revision 2"
out=$("$govmesh" publish --etcd "$etcdUrl" --bundle s2.bundle 2>&1) || fail "publish revision 2: $out"
grep -q "published bundle revision 2" <<<"$out" || fail "publish revision 2 said: $out"
t0=$(nowMs)
waitFor 2000 readyRevision 2 || fail "/readyz does not name revision 2 within 2 s: $(fetch /readyz)"
t2=$(($(nowMs) - t0))
[ "$(revision)" = 2 ] || fail "govmesh_bundle_revision is '$(revision)', expected 2"
ok "revision 2 published and active on /readyz after ${t2} ms"

# Revision 3 signed by a key the node does not trust: published (the publisher does not check
# trust), refused by the node, which keeps revision 2.
"$govmesh" keygen --out rogue >/dev/null || fail "keygen rogue"
compile 3 u3.bundle
"$govmesh" sign --key rogue.key u3.bundle --out s3.bundle >/dev/null || fail "sign revision 3"
out=$("$govmesh" publish --etcd "$etcdUrl" --bundle s3.bundle 2>&1) || fail "publish revision 3 (rogue key): $out"
grep -q "published bundle revision 3" <<<"$out" || fail "publish revision 3 said: $out"
waitFor 3000 grep -q "revision 3 refused" node.err || fail "the node did not log refusing revision 3"
[ "$(revision)" = 2 ] || fail "govmesh_bundle_revision is '$(revision)' after a refused publish, expected 2"
readyRevision 2 || fail "/readyz after a refused publish: $(fetch /readyz)"
ok "revision 3 signed by an untrusted key was refused; revision 2 stays"

# 6. etcd frozen: connections hang. Once the sync timeout (1.5 s) passes without a quorum read,
# /readyz is 503 POLICY_STALE (allowed: the timeout plus 1.5 s).
t0=$(nowMs)
kill -STOP "$etcdPid"
# (cleanup() sends etcd SIGCONT on any failure.)
waitFor 3000 readyIs 503 || fail "/readyz still $(status /readyz) 3 s after etcd froze: $(body /readyz)"
stale=$(($(nowMs) - t0))
why=$(body /readyz)
grep -q "POLICY_STALE" <<<"$why" || fail "/readyz 503 without POLICY_STALE: $why"
ok "etcd frozen: /readyz 503 after ${stale} ms ($why)"
t0=$(nowMs)
kill -CONT "$etcdPid"
waitFor 5000 readyRevision 2 || fail "/readyz is not 200 naming revision 2 5 s after etcd thawed: $(fetch /readyz)"
ok "etcd thawed: /readyz 200 again with revision 2 after $(($(nowMs) - t0)) ms"

# 7. The argument rules: a bundle source is required, and only one. Usage errors exit with
# CLI11's codes (105 ValidationError, 108 ExcludesError), as `govmesh loadgen` does; 1 is
# accepted too (a runtime refusal).
rc=0
out=$(timeout 20 "$govmesh" serve --trust D/authority.pub --listen 127.0.0.1:0 2>&1) || rc=$?
[ "$rc" = 1 ] || [ "$rc" = 105 ] || fail "serve without --bundle or --etcd exited $rc, expected 1 or 105: $out"
{ grep -q -- "--bundle" <<<"$out" && grep -q -- "--etcd" <<<"$out"; } || fail "serve without --bundle or --etcd said: $out"
rc=0
out=$(timeout 20 "$govmesh" serve --bundle D/bundles/1.bundle --etcd "$etcdUrl" --trust D/authority.pub \
  --listen 127.0.0.1:0 2>&1) || rc=$?
{ [ "$rc" != 0 ] && [ "$rc" != 124 ]; } || fail "serve with both --bundle and --etcd exited $rc: $out"
grep -q -- "--bundle excludes --etcd" <<<"$out" || fail "serve with both --bundle and --etcd said: $out"
ok "serve needs exactly one of --bundle and --etcd"

# 8. SIGTERM: drain, exit 0.
kill -TERM "$nodePid"
rc=0
wait "$nodePid" || rc=$?
nodePid=
[ "$rc" = 0 ] || fail "serve exited $rc after SIGTERM"
grep -q "SIGTERM: draining" node.err || fail "no drain message"
ok "serve exited 0 on SIGTERM"
echo "PASS: mesh_serve_process"
