#!/usr/bin/env bash
# Demonstrates the test identity provider with real HTTP: starts server.js on port 0 with
# --test-control and a --state file, runs selftest.py (the OAuth client; browser.py plays the
# person), then checks the clean SIGTERM shutdown and that a restart with the same --state file
# serves the same signing keys. Exits non-zero on any failure.
#
#   bash tests/idp/selftest.sh            (python `cryptography` when installed, else openssl CLI)
#   bash tests/idp/selftest.sh --openssl  (force the openssl CLI)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
realm="selftest"

for tool in node python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "selftest: $tool is missing" >&2; exit 1; }
done
if ! python3 -c 'import requests' 2>/dev/null; then
  echo "selftest: python3 requests is missing" >&2
  exit 1
fi
if [ ! -d "$here/node_modules/oidc-provider" ]; then
  echo "selftest: installing npm packages (npm ci in tests/idp)" >&2
  npm ci --prefix "$here" --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  exec 3<&- 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Starts server.js and waits (blocking read on a FIFO, no polling) for its READY line; sets
# server_pid and issuer.
start_server() {
  local fifo="$work/stdout.fifo" line
  rm -f "$fifo"
  mkfifo "$fifo"
  node "$here/server.js" --port 0 --realm "$realm" --test-control --state "$work/state.json" \
    >"$fifo" 2>>"$work/server.log" &
  server_pid=$!
  exec 3<"$fifo"
  if ! IFS= read -r -t 60 line <&3; then
    echo "selftest: server.js did not become ready; its log:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  case "$line" in
    "IDP READY http://127.0.0.1:"*"/realms/$realm") issuer="${line#IDP READY }" ;;
    *) echo "selftest: unexpected first line from server.js: $line" >&2; exit 1 ;;
  esac
}

# Stops the server with SIGTERM and checks it exits with status 0.
stop_server() {
  local rc=0
  kill -TERM "$server_pid"
  wait "$server_pid" || rc=$?
  server_pid=""
  exec 3<&-
  if [ "$rc" -ne 0 ]; then
    echo "not ok - SIGTERM shutdown exited with $rc" >&2
    return 1
  fi
}

start_server
python3 "$here/selftest.py" --issuer "$issuer" "$@" | tee "$work/selftest.out" || true
counts="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$work/selftest.out" | tail -1)"
if [ -z "$counts" ]; then
  echo "not ok - selftest.py ended without its summary"
  counts="0 passed, 1 failed"
fi
read -r passed _ failed _ <<<"${counts//,/}"

# Prints the kids of the JWKS of issuer $1, space separated.
jwks_kids() {
  python3 -c 'import json, sys, urllib.request
def get(url):
    return json.load(urllib.request.urlopen(url, timeout=10))
cfg = get(sys.argv[1] + "/.well-known/openid-configuration")
print(" ".join(k["kid"] for k in get(cfg["jwks_uri"])["keys"]))' "$1"
}

# 7: clean shutdown, state file 0600, restart with the same --state keeps the signing keys.
step7() {
  local kids_before kids_after mode
  kids_before="$(jwks_kids "$issuer")"
  stop_server || return 1
  mode="$(stat -c %a "$work/state.json")"
  [ "$mode" = "600" ] || { echo "state file mode is $mode, not 600" >&2; return 1; }
  start_server
  kids_after="$(jwks_kids "$issuer")"
  [ -n "$kids_before" ] && [ "$kids_before" = "$kids_after" ] ||
    { echo "kids differ after restart: '$kids_before' vs '$kids_after'" >&2; return 1; }
  stop_server || return 1
}
if step7; then
  echo "ok - 7 SIGTERM exits 0; --state file is 0600 and keeps the keys across a restart"
  passed=$((passed + 1))
else
  echo "not ok - 7 SIGTERM exits 0; --state file is 0600 and keeps the keys across a restart"
  failed=$((failed + 1))
fi

if [ "$failed" -ne 0 ]; then
  echo "# server log:" >&2
  sed 's/^/#   /' "$work/server.log" >&2
fi
echo "selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
