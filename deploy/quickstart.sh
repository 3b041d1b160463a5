#!/usr/bin/env bash
# e2eid quick start: on a fresh Debian 12 machine, installs what is missing, builds the release
# binary, creates a demo CA under ./demo-data (reused when it exists) and runs the service in the
# foreground. Ctrl-C stops it.
#
#   deploy/quickstart.sh                 listen on 127.0.0.1:8443
#   E2EID_SERVER_LISTEN=127.0.0.1:9443 deploy/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash tests/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target e2eid -j "$(nproc 2>/dev/null || echo 2)"
bin="$root/build/release/cli/e2eid"

data="$root/demo-data"
mkdir -p "$data"
chmod 700 "$data"
if [ ! -f "$data/ca/intermediate.pem" ]; then
  "$bin" init --dir "$data/ca" --domain demo.example
else
  echo "Reusing the demo CA in $data/ca"
fi
if [ ! -f "$data/e2eid.toml" ]; then
  cat > "$data/e2eid.toml" <<'TOML'
# Demo configuration written by deploy/quickstart.sh; see config/e2eid.example.toml for every key.
[server]
listen = "127.0.0.1:8443"
tls_names = ["localhost"]
[ca]
dir = "ca"
[store]
path = "e2eid.db"
[log]
level = "info"
TOML
  chmod 600 "$data/e2eid.toml"
fi

listen="${E2EID_SERVER_LISTEN:-127.0.0.1:8443}"
port="${listen##*:}"
cat <<MSG

e2eid is starting (Ctrl-C stops it).
  health:        https://localhost:$port/healthz
  try:           curl --cacert $data/ca/root.pem https://localhost:$port/healthz
  root CA:       $data/ca/root.pem
  configuration: $data/e2eid.toml

MSG
exec "$bin" serve --config "$data/e2eid.toml"
