#!/usr/bin/env bash
# Installs everything govmesh needs on a fresh Debian 12 machine (run as root), then the npm
# peer (the real Cedar engine, pinned in tests/oracle/package-lock.json). Safe to run again:
# it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git
  libtbb-dev libxsimd-dev xtl-dev libbenchmark-dev libssl-dev capnproto libcapnp-dev
  doctest-dev libcli11-dev nlohmann-json3-dev zlib1g-dev
  nodejs npm
  etcd-server etcd-client libcurl4-openssl-dev python3-yaml chromium
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  # The machine may come with a newer Node.js/npm than Debian's; never replace those.
  if command -v node >/dev/null && command -v npm >/dev/null; then
    filtered=()
    for p in "${missing[@]}"; do [ "$p" = nodejs ] || [ "$p" = npm ] || filtered+=("$p"); done
    missing=("${filtered[@]}")
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The real Cedar engine for the differential test, at the version pinned in the lock file.
if [ ! -d tests/oracle/node_modules/@cedar-policy/cedar-wasm ]; then
  (cd tests/oracle && npm ci --no-audit --no-fund --loglevel=error)
fi
# The console's chart library (embedded into the binary at build time) and playwright-core for
# its browser test (drives the system Chromium; downloads no browser), pinned in
# console/package-lock.json.
if [ ! -d console/node_modules ]; then
  (cd console && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "dependencies ready"
