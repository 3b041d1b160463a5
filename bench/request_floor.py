#!/usr/bin/python3
"""Server CPU of the cheapest HTTPS request: the floor under every ACME request of a flow.

Sends N GET requests for one URL (an ACME directory: unauthenticated, no database, no signature)
over C kept-alive TLS connections, and reads the server's utime+stime from /proc/<pid>/stat before
and after, exactly as acme_load.py does. `server_cpu_us_per_request` is what the server spends on
receiving, parsing, answering and logging one request on a warm connection; an ACME flow cannot
cost the server less than (its requests x this) plus the work the requests themselves ask for.

Also reports the machine's ECDSA P-256 sign and verify cost (`openssl speed`), the other
unavoidable per-flow work: one JWS signature check per ACME POST, one CSR signature check, one
certificate signature.

  bench/request_floor.py --url https://127.0.0.1:14000/dir --server-pid PID [--ca-bundle FILE]
                         [--requests 3000] [--concurrency 8] [--label NAME] [--no-openssl]

Prints one JSON object. Loopback URLs only unless --allow-non-loopback.
"""

import argparse
import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import requests

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read().decode("ascii", "replace")
    rest = data[data.rindex(")") + 2:].split()
    return (int(rest[14 - 3]) + int(rest[15 - 3])) / CLK_TCK


def is_loopback(url):
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def openssl_p256():
    """(sign_us, verify_us) of ECDSA P-256 from `openssl speed`, or None."""
    try:
        out = subprocess.run(["openssl", "speed", "-seconds", "2", "ecdsap256"],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", out)
    if not m:
        return None
    sign_per_s, verify_per_s = float(m.group(1)), float(m.group(2))
    return 1e6 / sign_per_s, 1e6 / verify_per_s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--ca-bundle", default=None, help="CA file to verify TLS with (default: off)")
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--label", default="")
    ap.add_argument("--no-openssl", action="store_true", help="skip the openssl speed run")
    ap.add_argument("--allow-non-loopback", action="store_true")
    args = ap.parse_args()
    if not args.allow_non_loopback and not is_loopback(args.url):
        sys.exit("request_floor: refusing a non-loopback URL (--allow-non-loopback)")
    if args.requests < args.concurrency or args.concurrency < 1:
        sys.exit("request_floor: need --requests >= --concurrency >= 1")

    verify = args.ca_bundle if args.ca_bundle else False
    if not verify:
        requests.packages.urllib3.disable_warnings()
    per_thread = args.requests // args.concurrency
    errors = []
    sessions = []
    # Connections are opened (TLS handshake included) before measuring: only warm requests count.
    for _ in range(args.concurrency):
        s = requests.Session()
        r = s.get(args.url, verify=verify, timeout=10)
        r.raise_for_status()
        sessions.append(s)

    def worker(s):
        try:
            for _ in range(per_thread):
                r = s.get(args.url, verify=verify, timeout=10)
                if r.status_code != 200:
                    raise RuntimeError(f"HTTP {r.status_code}")
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(s,)) for s in sessions]
    cpu0, t0 = proc_cpu_seconds(args.server_pid), time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu1, t1 = proc_cpu_seconds(args.server_pid), time.monotonic()
    done = per_thread * args.concurrency
    out = {
        "label": args.label,
        "url": args.url,
        "requests": done,
        "concurrency": args.concurrency,
        "errors": len(errors),
        "error_examples": errors[:3],
        "wall_s": round(t1 - t0, 3),
        "server_cpu_s": round(cpu1 - cpu0, 3),
        "server_cpu_us_per_request": round(1e6 * (cpu1 - cpu0) / done, 1),
        "clk_tck": CLK_TCK,
    }
    if not args.no_openssl:
        p256 = openssl_p256()
        if p256:
            out["ecdsa_p256_sign_us"] = round(p256[0], 1)
            out["ecdsa_p256_verify_us"] = round(p256[1], 1)
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
