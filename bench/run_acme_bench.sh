#!/usr/bin/env bash
# ACME issuance benchmark: the same http-01 load (bench/acme_load.py) against Pebble and against
# `e2eid serve`, one after the other in one run, then a table and the CPU-per-issuance ratio.
#
#   bench/run_acme_bench.sh [--flows N] [--concurrency C] [--timeout S] [--only pebble|e2eid]
#                           [--skip-build] [--e2eid BIN] [--e2eid-acme-toml FILE]
#                           [--e2eid-directory-path PATH] [--keep] [--results DIR]
#
# Everything listens on 127.0.0.1 only, on free ports picked at start. Every process the script
# starts is stopped on exit (trap). Results of the latest run: bench/results/{pebble,e2eid,summary}.json
# and bench/results/summary.md (or DIR/...). See bench/README.md.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
RESULTS="$BENCH_DIR/results"
PY=/usr/bin/python3  # Debian's python3-acme lives in the system interpreter

FLOWS=200
CONCURRENCY=8
TIMEOUT=600
ONLY=""
SKIP_BUILD=0
E2EID_BIN=""
ACME_TOML_FILE=""
E2EID_DIRECTORY_PATH=""
KEEP=0
BUILD_JOBS="${BUILD_JOBS:-2}"

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --flows) FLOWS="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    --e2eid) E2EID_BIN="$2"; SKIP_BUILD=1; shift 2 ;;
    --e2eid-acme-toml) ACME_TOML_FILE="$2"; shift 2 ;;
    --e2eid-directory-path) E2EID_DIRECTORY_PATH="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --results) RESULTS="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_acme_bench: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$ONLY" in ""|pebble|e2eid) ;; *) echo "--only pebble|e2eid" >&2; exit 2 ;; esac

log() { printf '[acme-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- processes we start, and their cleanup ------------------------------------------------------
WORK="$(mktemp -d /tmp/e2eid-acme-bench.XXXXXX)"
PIDS=()
stop_pid() {
  local pid="$1"
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do  # up to 5 s to exit (an exited child stays a zombie until `wait`)
    if ! kill -0 "$pid" 2>/dev/null || [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" == Z* ]]; then
      break
    fi
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null && [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" != Z* ]]; then
    log "pid $pid did not stop on SIGTERM: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [[ $KEEP == 1 || $rc -ne 0 && $rc -ne 3 ]]; then
    log "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_url() {  # URL CAFILE PID SECONDS
  local url="$1" ca="$2" pid="$3" secs="$4"
  for _ in $(seq $((secs * 10))); do
    kill -0 "$pid" 2>/dev/null || return 1
    curl -sf --max-time 2 --cacert "$ca" -o /dev/null "$url" && return 0
    sleep 0.1
  done
  return 1
}

HTTP01_PORT="$(free_port)"
mkdir -p "$RESULTS"
rm -f "$RESULTS/pebble.json" "$RESULTS/e2eid.json" "$RESULTS/summary.json" "$RESULTS/summary.md" \
  "$RESULTS/pebble_floor.json" "$RESULTS/e2eid_floor.json"

LOAD_ARGS=(--flows "$FLOWS" --concurrency "$CONCURRENCY" --timeout "$TIMEOUT"
           --http-port "$HTTP01_PORT" --domain-suffix localhost --json)
log "load: $FLOWS flows, $CONCURRENCY clients, http-01 answered on 127.0.0.1:$HTTP01_PORT"
log "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
cut -d' ' -f1-3 /proc/loadavg > "$WORK/loadavg.start"

E2EID_STATUS="not run"
PEBBLE_STATUS="not run"
FAILED=0

# The cheapest request (GET of the directory on a warm TLS connection) on the same server right
# after its load run: the per-request floor (bench/request_floor.py). Failures here are reported
# but do not fail the benchmark.
run_floor() {  # NAME URL CAFILE PID [--no-openssl]
  local name="$1" url="$2" ca="$3" pid="$4"; shift 4
  if ! "$PY" "$BENCH_DIR/request_floor.py" --url "$url" --ca-bundle "$ca" --server-pid "$pid" \
      --requests 4000 --concurrency "$CONCURRENCY" --label "$name" "$@" \
      > "$RESULTS/${name}_floor.json"; then
    log "$name: request floor measurement failed"; rm -f "$RESULTS/${name}_floor.json"
  fi
}

# ---- Pebble -------------------------------------------------------------------------------------
run_pebble() {
  if ! command -v pebble >/dev/null || ! command -v pebble-challtestsrv >/dev/null; then
    log "pebble not installed (apt-get install pebble)"; PEBBLE_STATUS="pebble not installed"
    FAILED=1; return
  fi
  local d="$WORK/pebble" port tls_port dns_port mgmt_port
  mkdir -p "$d"
  port="$(free_port)"; tls_port="$(free_port)"; dns_port="$(free_port)"; mgmt_port="$(free_port)"
  # A throw-away root and a TLS certificate for Pebble's listener, so the generator verifies TLS.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/CN=acme-bench test root" -keyout "$d/root.key" -out "$d/root.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$d/tls.key" -out "$d/tls.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$d/ext.cnf"
  openssl x509 -req -in "$d/tls.csr" -CA "$d/root.pem" -CAkey "$d/root.key" -CAcreateserial \
    -days 1 -extfile "$d/ext.cnf" -out "$d/tls.pem" 2>/dev/null
  cat > "$d/pebble.json" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:$port",
    "managementListenAddress": "",
    "certificate": "$d/tls.pem",
    "privateKey": "$d/tls.key",
    "httpPort": $HTTP01_PORT,
    "tlsPort": $tls_port,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
EOF
  # DNS for Pebble's VA: every A query -> 127.0.0.1, no AAAA answers; its own challenge servers off
  # so the generator's http-01 port is free.
  pebble-challtestsrv -dns01 "127.0.0.1:$dns_port" -http01 "" -https01 "" -tlsalpn01 "" \
    -management "127.0.0.1:$mgmt_port" -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
    > "$d/challtestsrv.log" 2>&1 &
  local dns_pid=$!
  PIDS+=("$dns_pid")
  PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 \
    pebble -config "$d/pebble.json" -dnsserver "127.0.0.1:$dns_port" > "$d/pebble.log" 2>&1 &
  local pebble_pid=$!
  PIDS+=("$pebble_pid")
  local dir="https://127.0.0.1:$port/dir"
  if ! wait_for_url "$dir" "$d/root.pem" "$pebble_pid" 30; then
    log "Pebble did not come up; its log:"; tail -20 "$d/pebble.log" >&2
    PEBBLE_STATUS="did not start"; FAILED=1; stop_pid "$pebble_pid"; stop_pid "$dns_pid"; return
  fi
  log "Pebble $(dpkg-query -W -f='${Version}' pebble 2>/dev/null) pid $pebble_pid at $dir"
  local rc=0
  "$PY" "$BENCH_DIR/acme_load.py" --directory "$dir" --ca-bundle "$d/root.pem" \
    --server-pid "$pebble_pid" --aux-pid "$dns_pid" --label pebble "${LOAD_ARGS[@]}" \
    > "$RESULTS/pebble.json" || rc=$?
  run_floor pebble "$dir" "$d/root.pem" "$pebble_pid" --no-openssl
  stop_pid "$pebble_pid"; stop_pid "$dns_pid"
  if [[ $rc -eq 0 ]]; then PEBBLE_STATUS="ok"
  elif [[ -s "$RESULTS/pebble.json" ]]; then PEBBLE_STATUS="errors (exit $rc)"; FAILED=1
  else PEBBLE_STATUS="load generator failed (exit $rc)"; rm -f "$RESULTS/pebble.json"; FAILED=1; fi
}

# ---- e2eid --------------------------------------------------------------------------------------
# The [acme] section of the e2eid configuration used here (keys: config/e2eid.example.toml): names
# under localhost allowed, http-01 validated on the generator's port, *.localhost resolved to
# 127.0.0.1 without DNS. --e2eid-acme-toml FILE replaces it (the file is appended to the generated
# [server]/[ca]/[store] sections; @HTTP01_PORT@ in it is replaced by the generator's port).
DEFAULT_ACME_TOML='[acme]
dns_suffixes = ["localhost"]
http01_port = @HTTP01_PORT@
resolve = ["*.localhost=127.0.0.1"]'

E2EID_READY=0
prepare_e2eid() {  # checks that e2eid can be measured and builds it; sets E2EID_READY=1
  if [[ -z "$ACME_TOML_FILE" ]] && ! grep -q '^\[acme\]' "$ROOT/config/e2eid.example.toml"; then
    log "e2eid: no [acme] section in config/e2eid.example.toml: the ACME engine has not landed;" \
        "e2eid not measured"
    E2EID_STATUS="not yet measured - needs the ACME engine"; return
  fi
  if [[ -z "$E2EID_BIN" ]]; then
    E2EID_BIN="$ROOT/build/release/cli/e2eid"
    if [[ $SKIP_BUILD == 0 ]]; then
      log "building release e2eid (cmake --preset release; $BUILD_JOBS jobs)"
      if ! (cd "$ROOT" && cmake --preset release > "$WORK/build.log" 2>&1 &&
            cmake --build --preset release --target e2eid --parallel "$BUILD_JOBS" \
              >> "$WORK/build.log" 2>&1); then
        log "e2eid release build failed:"; { grep -E -A3 'rror|FAILED' "$WORK/build.log" || tail -30 "$WORK/build.log"; } | head -40 >&2
        E2EID_STATUS="release build failed"; FAILED=1; return
      fi
    fi
  fi
  [[ -x "$E2EID_BIN" ]] || {
    log "no e2eid binary at $E2EID_BIN"; E2EID_STATUS="no binary"; FAILED=1; return; }
  E2EID_READY=1
}

run_e2eid() {
  [[ $E2EID_READY == 1 ]] || return 0
  local d="$WORK/e2eid"
  mkdir -p "$d"
  "$E2EID_BIN" init --dir "$d/ca" > "$d/init.log" 2>&1 || {
    log "e2eid init failed:"; cat "$d/init.log" >&2; E2EID_STATUS="init failed"; FAILED=1; return; }
  local port; port="$(free_port)"
  {
    cat <<EOF
[server]
listen = "127.0.0.1:$port"
external_url = "https://localhost:$port"
tls = true
tls_names = ["localhost"]

[ca]
dir = "ca"

[store]
path = "e2eid.db"

EOF
    if [[ -n "$ACME_TOML_FILE" ]]; then cat "$ACME_TOML_FILE"; else printf '%s\n' "$DEFAULT_ACME_TOML"; fi
  } | sed "s/@HTTP01_PORT@/$HTTP01_PORT/g" > "$d/e2eid.toml"

  "$E2EID_BIN" serve --config "$d/e2eid.toml" > "$d/e2eid.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  if ! wait_for_url "https://localhost:$port/healthz" "$d/ca/root.pem" "$pid" 30; then
    log "e2eid serve did not come up; its log:"; tail -20 "$d/e2eid.log" >&2
    E2EID_STATUS="did not start (see log above; --e2eid-acme-toml to fix the [acme] keys)"
    FAILED=1; stop_pid "$pid"; return
  fi
  # Find the ACME directory: a JSON object with newOrder.
  local dir="" p
  local candidates=("/acme/directory" "/directory" "/acme/e2eid/directory" "/dir")
  [[ -n "$E2EID_DIRECTORY_PATH" ]] && candidates=("$E2EID_DIRECTORY_PATH")
  for p in "${candidates[@]}"; do
    if curl -sf --max-time 2 --cacert "$d/ca/root.pem" "https://localhost:$port$p" 2>/dev/null |
        grep -q '"newOrder"'; then
      dir="https://localhost:$port$p"; break
    fi
  done
  if [[ -z "$dir" ]]; then
    log "e2eid serve answers /healthz but no ACME directory at ${candidates[*]}: e2eid not measured"
    E2EID_STATUS="not yet measured - needs the ACME engine"; stop_pid "$pid"; return
  fi
  log "e2eid pid $pid at $dir"
  local rc=0
  "$PY" "$BENCH_DIR/acme_load.py" --directory "$dir" --ca-bundle "$d/ca/root.pem" \
    --server-pid "$pid" --label e2eid "${LOAD_ARGS[@]}" > "$RESULTS/e2eid.json" || rc=$?
  run_floor e2eid "$dir" "$d/ca/root.pem" "$pid"
  stop_pid "$pid"
  if [[ $rc -eq 0 ]]; then E2EID_STATUS="ok"
  elif [[ -s "$RESULTS/e2eid.json" ]]; then
    E2EID_STATUS="errors (exit $rc)"; FAILED=1; log "e2eid log tail:"; tail -10 "$d/e2eid.log" >&2
  else E2EID_STATUS="load generator failed (exit $rc)"; rm -f "$RESULTS/e2eid.json"; FAILED=1; fi
}

# Build first (CPU-heavy), then one server at a time: never both servers running at once.
if [[ -z "$ONLY" || "$ONLY" == e2eid ]]; then prepare_e2eid; fi
if [[ -z "$ONLY" || "$ONLY" == pebble ]]; then run_pebble; fi
if [[ -z "$ONLY" || "$ONLY" == e2eid ]]; then run_e2eid; fi

# ---- summary ------------------------------------------------------------------------------------
GIT_REV="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
GIT_DIRTY="$(cd "$ROOT" && git status --porcelain 2>/dev/null | grep -qv '^?? bench/' && echo yes || echo no)"
"$PY" - "$RESULTS" "$PEBBLE_STATUS" "$E2EID_STATUS" "$GIT_REV" "$GIT_DIRTY" \
  "$(cat "$WORK/loadavg.start")" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF'
import json, os, platform, sys, time
results, pebble_status, e2eid_status, rev, dirty, load_start, load_end = sys.argv[1:8]
runs = {}
for name in ("pebble", "e2eid"):
    path = os.path.join(results, name + ".json")
    if os.path.exists(path):
        with open(path) as f:
            runs[name] = json.load(f)
status = {"pebble": pebble_status, "e2eid": e2eid_status}

def cell(r, key, scale=1.0, fmt="{:.1f}"):
    v = r
    for k in key.split("."):
        v = None if v is None else v.get(k)
    return "-" if v is None else fmt.format(v * scale)

head = ("| server | flows ok / errors | wall s | flows/s | p50 ms | p99 ms | max ms "
        "| server CPU s | server CPU ms/flow | requests/flow | generator CPU s |")
lines = [head, "|" + "---|" * (head.count("|") - 1)]
for name in ("pebble", "e2eid"):
    r = runs.get(name)
    if r is None:
        lines.append(f"| {name} | {status[name]} |" + " |" * (head.count("|") - 3))
        continue
    lines.append(
        f"| {name} | {r['flows_ok']} / {r['errors']} | {r['wall_s']:.2f} | {r['flows_per_s']:.1f} "
        f"| {cell(r, 'latency_s.p50', 1000)} | {cell(r, 'latency_s.p99', 1000)} "
        f"| {cell(r, 'latency_s.max', 1000)} | {cell(r, 'server_cpu_s', 1, '{:.2f}')} "
        f"| {cell(r, 'server_cpu_s_per_flow', 1000, '{:.2f}')} "
        f"| {cell(r, 'http_requests_per_flow', 1, '{:.2f}')} "
        f"| {cell(r, 'generator_cpu_s', 1, '{:.2f}')} |")
ratio = None
p, e = runs.get("pebble"), runs.get("e2eid")
if p and e and p.get("server_cpu_s_per_flow") and e.get("server_cpu_s_per_flow") is not None:
    ratio = e["server_cpu_s_per_flow"] / p["server_cpu_s_per_flow"]
if ratio is not None:
    verdict = "meets" if ratio <= 0.1 else "misses"
    how = f"1/{1 / ratio:.1f} of Pebble's" if 0 < ratio < 1 else f"{ratio:.2f} x Pebble's"
    ratio_line = (f"CPU per issuance, e2eid / Pebble = {ratio:.3f} ({how}); "
                  f"target <= 0.100 (1/10): {verdict} it")
else:
    missing = [f"{n}: {status[n]}" for n in ("pebble", "e2eid") if status[n] != "ok"]
    ratio_line = f"CPU per issuance, e2eid / Pebble: not measured ({'; '.join(missing)})"
floors = {}
for name in ("pebble", "e2eid"):
    path = os.path.join(results, name + "_floor.json")
    if os.path.exists(path):
        with open(path) as f:
            floors[name] = json.load(f)
floor_lines = []
floor = None
if floors:
    floor_lines += ["", "Cheapest request (GET of the directory on a warm TLS connection, "
                    "bench/request_floor.py):", "",
                    "| server | requests | server CPU s | server CPU us/request |", "|---|---|---|---|"]
    for name, fl in floors.items():
        floor_lines.append(f"| {name} | {fl['requests']} | {fl['server_cpu_s']:.2f} "
                           f"| {fl['server_cpu_us_per_request']:.0f} |")
    fe = floors.get("e2eid", {})
    bare = [fl["server_cpu_us_per_request"] for fl in floors.values() if not fl["errors"]]
    if e and p and bare and fe.get("ecdsa_p256_verify_us"):
        n = e["http_requests_per_flow"]
        # Every ACME POST's JWS, the CSR and the leaf: n + 1 verifications and one signature.
        floor_us = (n * min(bare) + (n + 1) * fe["ecdsa_p256_verify_us"] +
                    fe["ecdsa_p256_sign_us"])
        floor = {"requests_per_flow": n, "bare_request_us": min(bare),
                 "ecdsa_p256_verify_us": fe["ecdsa_p256_verify_us"],
                 "ecdsa_p256_sign_us": fe["ecdsa_p256_sign_us"],
                 "floor_ms_per_flow": floor_us / 1000,
                 "floor_over_pebble": floor_us / 1000 / (p["server_cpu_s_per_flow"] * 1000)}
        floor_lines += ["", f"Floor of one flow here, before any database, validation or JSON "
                        f"work: {n:.0f} requests x {min(bare):.0f} us (the cheaper server's bare "
                        f"request) + {n + 1:.0f} ECDSA P-256 verifications x "
                        f"{fe['ecdsa_p256_verify_us']:.0f} us + 1 signature x "
                        f"{fe['ecdsa_p256_sign_us']:.0f} us (openssl speed) = "
                        f"{floor['floor_ms_per_flow']:.2f} ms = "
                        f"{floor['floor_over_pebble']:.3f} x Pebble's CPU per issuance."]
settings = next(iter(runs.values()))["settings"] if runs else {}
date = time.strftime("%Y-%m-%d %H:%M %Z")
md = "\n".join([f"ACME http-01 issuance, {date}, e2eid {rev}{' (dirty tree)' if dirty == 'yes' else ''}, "
                f"{os.cpu_count()} cores, load average {load_start} at start / {load_end} at end", "",
                *lines, "", ratio_line, *floor_lines, ""])
print()
print(md)
with open(os.path.join(results, "summary.md"), "w") as f:
    f.write(md)
summary = {
    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "git_rev": rev, "git_dirty": dirty == "yes",
    "machine": {"cores": os.cpu_count(), "kernel": platform.release(),
                "loadavg_start": load_start, "loadavg_end": load_end},
    "status": status,
    "cpu_per_flow_ratio_e2eid_over_pebble": ratio,
    "target_ratio": 0.1,
    "floor": floor,
    "floors": floors,
    "settings": settings,
    "runs": runs,
}
with open(os.path.join(results, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
    f.write("\n")
EOF

if [[ $FAILED != 0 ]]; then exit 1; fi
if [[ "$E2EID_STATUS" != ok && ( -z "$ONLY" || "$ONLY" == e2eid ) ]]; then exit 3; fi
exit 0
