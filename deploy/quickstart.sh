#!/usr/bin/env bash
# e2eid quick start: on a fresh Debian 12 machine, installs what is missing, builds the release
# binary, creates a demo CA under ./demo-data (reused when it exists), starts a Keycloak-like demo
# identity provider (the oidc-provider set-up the tests use, tests/idp/) and e2eid, enrols a demo
# device for the demo user, prints its identity, revokes it as the demo admin, shows what OCSP and
# the CRL say, and leaves both services running with the URLs and demo credentials printed.
# Ctrl-C stops everything it started.
#
#   deploy/quickstart.sh                    interactive: you log in in your browser
#   deploy/quickstart.sh --non-interactive  logs in by script (tests/idp/browser.py), then exits
#                                           with 0 only when the demo certificate was issued and
#                                           then revoked (CI runs this)
# Environment: E2EID_DEMO_DIR (default ./demo-data), E2EID_DEMO_PORT (8443), E2EID_IDP_PORT (8180),
# E2EID_BINARY (use this e2eid instead of building the release binary).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

interactive=1
for arg in "$@"; do
  case "$arg" in
    --non-interactive) interactive=0 ;;
    -h | --help)
      sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "quickstart: unknown argument '$arg' (see --help)" >&2
      exit 2
      ;;
  esac
done

data="${E2EID_DEMO_DIR:-$root/demo-data}"
port="${E2EID_DEMO_PORT:-8443}"
idp_port="${E2EID_IDP_PORT:-8180}"
domain="demo.example"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Installing what is missing and building"
bash tests/deps.sh
if [ -n "${E2EID_BINARY:-}" ]; then
  bin="$E2EID_BINARY"
else
  cmake --preset release >/dev/null
  cmake --build --preset release --target e2eid -j "$(nproc 2>/dev/null || echo 2)"
  bin="$root/build/release/cli/e2eid"
fi

mkdir -p "$data"
chmod 700 "$data"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'echo; echo "Stopping."; exit 130' INT TERM

step "Demo CA"
if [ ! -f "$data/ca/intermediate.pem" ]; then
  "$bin" init --dir "$data/ca" --domain "$domain"
else
  echo "Reusing the demo CA in $data/ca"
fi

step "Demo identity provider (Keycloak-like realm 'demo' on port $idp_port)"
node tests/idp/server.js --port "$idp_port" --realm demo --state "$data/idp-state.json" \
  >"$data/idp.out" 2>"$data/idp.log" &
pids+=($!)
issuer=""
for _ in $(seq 1 100); do
  issuer=$(sed -n 's/^IDP READY //p' "$data/idp.out" 2>/dev/null | head -n1)
  [ -n "$issuer" ] && break
  sleep 0.1
done
if [ -z "$issuer" ]; then
  echo "the demo identity provider did not start:" >&2
  cat "$data/idp.log" >&2
  exit 1
fi
echo "issuer: $issuer"

cat >"$data/e2eid.toml" <<TOML
# Demo configuration written by deploy/quickstart.sh; see config/e2eid.example.toml for every key.
[server]
listen = "127.0.0.1:$port"
tls_names = ["localhost"]
[ca]
dir = "ca"
[store]
path = "e2eid.db"
[identity]
domain = "$domain"
oidc_issuer = "$issuer"
oidc_client_id = "e2eid-device"
max_devices_per_user = 1000
[admin]
client_id = "e2eid-admin-cli"
[log]
level = "warn"
TOML
chmod 600 "$data/e2eid.toml"

step "e2eid (https://localhost:$port)"
"$bin" serve --config "$data/e2eid.toml" 2>"$data/e2eid.log" &
pids+=($!)
base="https://localhost:$port"
for _ in $(seq 1 100); do
  curl -sf --cacert "$data/ca/root.pem" "$base/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf --cacert "$data/ca/root.pem" "$base/healthz" >/dev/null || {
  echo "e2eid did not start:" >&2
  cat "$data/e2eid.log" >&2
  exit 1
}

# Runs a command that asks for a login; logs in as $1/$2 by script when non-interactive.
with_login() {
  local user="$1" password="$2" log="$3"
  shift 3
  if [ "$interactive" = 1 ]; then
    echo "Log in as '$user' with password '$password' when asked."
    "$@" 2>&1 | tee "$log"
    return "${PIPESTATUS[0]}"
  fi
  "$@" >"$log" 2>&1 &
  local pid=$! url=""
  for _ in $(seq 1 300); do
    url=$(sed -n 's/^.*Open this URL to log in: //p' "$log" | head -n1)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -n "$url" ]; then
    python3 tests/idp/browser.py login --url "$url" --user "$user" --password "$password" >/dev/null
  fi
  wait "$pid"
}

step "Enrolling a demo device for alice (e2eid enrol)"
device_dir="$data/devices/alice-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$data/devices"
with_login alice alice-password "$data/enrol.log" \
  "$bin" enrol --state-dir "$device_dir" --server "$base/acme/directory" --issuer "$issuer" \
  --client-id e2eid-device --domain "$domain" --ca-file "$data/ca/root.pem" --login browser
openssl x509 -in "$device_dir/cert.pem" -noout -subject -serial -dates -ext subjectAltName

ocsp() {
  openssl ocsp -no_nonce -issuer "$data/ca/intermediate.pem" -cert "$device_dir/cert.pem" \
    -reqout "$data/ocsp.req" >/dev/null 2>&1
  curl -sf --cacert "$data/ca/root.pem" -H 'Content-Type: application/ocsp-request' \
    --data-binary @"$data/ocsp.req" -o "$data/ocsp.resp" "$base/ocsp"
  openssl ocsp -respin "$data/ocsp.resp" -issuer "$data/ca/intermediate.pem" \
    -cert "$device_dir/cert.pem" -CAfile "$data/ca/root.pem" 2>&1
}
echo
echo "OCSP says:"
ocsp | sed 's/^/  /'

step "Revoking the device as the demo admin (e2eid admin revoke)"
with_login admin admin-password "$data/admin-login.log" \
  "$bin" admin login --issuer "$issuer" --client-id e2eid-admin-cli --login browser \
  --out "$data/admin.token"
client_id=$(openssl x509 -in "$device_dir/cert.pem" -noout -ext subjectAltName |
  grep -o 'wireapp://[^,@]*![^,@]*@[a-z.]*' | head -n1)
"$bin" admin --server "$base" --ca-file "$data/ca/root.pem" --token-file "$data/admin.token" \
  revoke --scope device --value "$client_id" --reason keyCompromise --comment "quick start demo"
sleep 1
echo "OCSP says:"
ocsp_out=$(ocsp)
echo "$ocsp_out" | sed 's/^/  /'
echo "The CRL lists:"
curl -sf --cacert "$data/ca/root.pem" "$base/crl" -o "$data/crl.der"
serial=$(openssl x509 -in "$device_dir/cert.pem" -noout -serial | cut -d= -f2)
openssl crl -inform DER -in "$data/crl.der" -noout -text | grep -A4 -i "$serial" | sed 's/^/  /'

if ! echo "$ocsp_out" | grep -q "cert.pem: revoked"; then
  echo "quickstart: the demo certificate is not reported revoked" >&2
  exit 1
fi

cat <<MSG

e2eid demo is running (Ctrl-C stops the service and the identity provider).
  e2eid:          $base   (ACME directory: $base/acme/directory)
  CRL / OCSP:     $base/crl   $base/ocsp
  admin API:      $base/admin/v1   (token: $data/admin.token)
  identity prov.: $issuer
  demo users:     alice / alice-password, bob / bob-password, admin / admin-password (e2eid-admin)
  root CA:        $data/ca/root.pem
  configuration:  $data/e2eid.toml
  enrol another:  $bin enrol --state-dir DIR --server $base/acme/directory \\
                    --issuer $issuer --client-id e2eid-device --domain $domain \\
                    --ca-file $data/ca/root.pem
MSG

if [ "$interactive" = 0 ]; then
  echo "quickstart: demo certificate issued and revoked (non-interactive: stopping)."
  exit 0
fi
wait
