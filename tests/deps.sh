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
  clang-format clang-tidy-19
)

missing=()
for p in "${E2EID_BUILD_PACKAGES[@]}" ${E2EID_EXTRA_PACKAGES:-}; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
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
