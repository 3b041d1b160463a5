#!/usr/bin/env bash
# Installs the Debian 12 packages e2eid needs to build, test and run. Idempotent and quiet when all are
# present. Sourced or run by tests/run.sh and deploy/quickstart.sh; needs root or sudo only when something
# is missing.
set -euo pipefail

E2EID_BUILD_PACKAGES=(
  g++ cmake ninja-build ccache pkg-config git
  libssl-dev openssl
  libboost-dev libboost-system-dev
  libsqlite3-dev sqlite3
  nlohmann-json3-dev libcurl4-openssl-dev libcpp-jwt-dev libtomlplusplus-dev
  libgtest-dev googletest
  curl python3 python3-requests python3-yaml python3-jsonschema
  clang-format clang-tidy-19
)

missing=()
for p in "${E2EID_BUILD_PACKAGES[@]}" ${E2EID_EXTRA_PACKAGES:-}; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# Node packages of the test identity provider (tests/idp): `npm ci`, skipped while node_modules
# matches package-lock.json (stamp file), so it is quiet and works offline once installed.
e2eid_npm_deps() {
  local idp lock stamp want
  idp="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/idp"
  lock="$idp/package-lock.json"
  stamp="$idp/node_modules/.e2eid-lock-stamp"
  [ -f "$lock" ] || return 0
  want="$(sha256sum "$lock" | cut -d' ' -f1) node-$(node --version)"
  if [ -d "$idp/node_modules/oidc-provider" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "e2eid: installing the test identity provider's npm packages (npm ci in tests/idp)" >&2
  npm ci --prefix "$idp" --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null
  echo "$want" >"$stamp"
}

# node and npm for tests/idp (the machine's Node.js is used when present).
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

if [ ${#missing[@]} -eq 0 ]; then
  e2eid_npm_deps
  exit 0
fi

echo "e2eid: installing missing Debian packages: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "e2eid: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mtime -1 2>/dev/null | head -1)" ]; then
  $SUDO apt-get update -qq >/dev/null
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
e2eid_npm_deps
