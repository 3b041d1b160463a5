#!/usr/bin/python3
"""ACME issuance load generator: N full http-01 flows, C concurrent clients, any ACME directory.

Uses Debian's python3-acme (the certbot ACME library), python3-josepy and python3-cryptography, so
run it with the system interpreter (/usr/bin/python3), not a virtualenv.

What one *flow* is (RFC 8555):
  1. a fresh certificate key (P-256 by default) and a CSR for one new name
     `f<index>-<random>.<suffix>` (made inside the timed flow: it is client work, not server work);
  2. newOrder for that name; POST-as-GET of its authorization;
  3. the http-01 key authorization is published on this process's own HTTP responder
     (`--http-port`), the challenge is answered (POST {}) and the authorization polled until it
     leaves "pending";
  4. finalize with the CSR, then the order is polled until "valid";
  5. POST-as-GET of the certificate URL. The flow counts only when the downloaded chain parses,
     its leaf names the requested DNS name and carries the flow's public key.

Accounts: one ACME account (own ES256 key) per client thread, registered before timing starts.
That matches how a real fleet behaves (a client keeps its account across renewals) and keeps
account creation out of the per-issuance numbers.

Server CPU: utime+stime of `--server-pid` from /proc/<pid>/stat (fields 14 and 15, in clock ticks,
divided by SC_CLK_TCK) read right before the first flow starts and right after the last flow ends;
`server_cpu_s / flows_ok` is the CPU per issuance. The server runs on the same machine, so the
generator's own CPU (getrusage of this process) is reported too.

Polling: the generator polls authorizations and orders itself with a short back-off (50 ms doubling
to 1 s by default) instead of python-acme's fixed 1 s sleeps, which would otherwise dominate the
latency. The same policy is used against every server; the number of HTTP requests per flow is
reported, since a server that answers "pending" longer costs itself more polls.

Safety: only loopback directories are accepted unless --allow-non-loopback is given; the run stops
after --flows flows or --timeout seconds, whichever comes first.
"""

import argparse
import collections
import ipaddress
import json
import os
import resource
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import josepy as jose
import OpenSSL
import requests
import urllib3
from acme import challenges, client, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# /proc/<pid>/stat


def proc_cpu_seconds(pid):
    """utime+stime of a process in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read().decode("ascii", "replace")
    # Field 2 (comm) is in parentheses and may contain spaces: split after the last ')'.
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); field N is rest[N - 3].
    utime, stime = int(rest[14 - 3]), int(rest[15 - 3])
    return (utime + stime) / CLK_TCK


def proc_name(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def self_cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------------------------------------
# http-01 responder


class Http01Responder:
    """Serves /.well-known/acme-challenge/<token> from an in-memory map, on one loopback port."""

    def __init__(self, address, port):
        self.answers = {}
        self.lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        responder = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "acme-load"

            def do_GET(self):  # noqa: N802 (http.server API)
                path = urllib.parse.urlsplit(self.path).path
                body = None
                if path.startswith(CHALLENGE_PREFIX):
                    with responder.lock:
                        body = responder.answers.get(path[len(CHALLENGE_PREFIX):])
                        if body is None:
                            responder.misses += 1
                        else:
                            responder.hits += 1
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = body.encode("ascii")
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        family = socket.AF_INET6 if ":" in address else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128

        self.httpd = Server((address, port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="http01",
                                       daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def put(self, token, key_authorization):
        with self.lock:
            self.answers[token] = key_authorization

    def remove(self, token):
        with self.lock:
            self.answers.pop(token, None)


# ---------------------------------------------------------------------------------------------
# keys, CSRs, certificates


def new_private_key(key_type):
    if key_type == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))


def make_csr_pem(key, name):
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM)


def public_der(key):
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def check_certificate(fullchain_pem, name, key):
    """Raises ValueError unless the chain parses and its leaf is for `name` and `key`."""
    marker = "-----END CERTIFICATE-----"
    blocks = [b + marker for b in fullchain_pem.split(marker) if "-----BEGIN CERTIFICATE" in b]
    if not blocks:
        raise ValueError("certificate download holds no PEM certificate")
    certs = [x509.load_pem_x509_certificate(b.strip().encode("ascii")) for b in blocks]
    leaf = certs[0]
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if name not in names:
        raise ValueError(f"leaf certificate does not name {name} (SANs: {names})")
    if public_der(leaf.public_key()) != public_der(key.public_key()):
        raise ValueError("leaf certificate carries another public key than the CSR")
    algorithm = leaf.signature_algorithm_oid._name  # e.g. ecdsa-with-SHA256
    validity = leaf.not_valid_after - leaf.not_valid_before
    return {"chain_length": len(certs), "leaf_signature": algorithm,
            "issuer": leaf.issuer.rfc4514_string(), "validity_s": int(validity.total_seconds())}


# ---------------------------------------------------------------------------------------------
# one client = one account + a keep-alive session


class FlowError(Exception):
    pass


class Client:
    def __init__(self, args, index, directory_url, verify):
        self.args = args
        self.index = index
        self.account_key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
        self.net = client.ClientNetwork(self.account_key, alg=jose.ES256, verify_ssl=verify,
                                        user_agent="e2eid-bench-acme-load",
                                        timeout=args.request_timeout)
        # Ignore proxy/CA settings from the environment: `verify` is explicit and traffic must go
        # straight to the directory's host.
        self.net.session.trust_env = False
        self.requests = 0
        self.retry_after_seen = 0
        original_send = self.net._send_request

        def counting_send(method, url, *a, **kw):
            self.requests += 1
            response = original_send(method, url, *a, **kw)
            if "Retry-After" in response.headers:
                self.retry_after_seen += 1
            return response

        self.net._send_request = counting_send
        self.acme = client.ClientV2(client.ClientV2.get_directory(directory_url, self.net),
                                    self.net)

    def register(self):
        self.acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))

    # -- polling ----------------------------------------------------------------------------

    def _sleep(self, delay, response, deadline):
        if self.args.retry_after == "honor" and response is not None:
            value = response.headers.get("Retry-After")
            if value and value.strip().isdigit():
                delay = max(delay, int(value.strip()))
        if time.monotonic() + delay > deadline:
            raise FlowError("flow timeout while polling")
        time.sleep(delay)
        return min(delay * 2, self.args.poll_max)

    def _poll_authz(self, url, deadline):
        delay = self.args.poll_initial
        response = None
        while True:
            delay = self._sleep(delay, response, deadline)
            response = self.acme._post_as_get(url)
            authz = messages.Authorization.from_json(response.json())
            if authz.status != messages.STATUS_PENDING:
                return authz

    def _poll_order(self, url, body, deadline):
        delay = self.args.poll_initial
        response = None
        while body.status in (messages.STATUS_PENDING, messages.STATUS_READY,
                              messages.STATUS_PROCESSING) or (
                                  body.status == messages.STATUS_VALID and not body.certificate):
            delay = self._sleep(delay, response, deadline)
            response = self.acme._post_as_get(url)
            body = messages.Order.from_json(response.json())
        return body

    # -- the flow ---------------------------------------------------------------------------

    def flow(self, name, responder, phases):
        deadline = time.monotonic() + self.args.flow_timeout
        t0 = time.monotonic()
        cert_key = new_private_key(self.args.cert_key)
        csr_pem = make_csr_pem(cert_key, name)
        orderr = self.acme.new_order(csr_pem)  # newOrder + POST-as-GET of each authorization
        t1 = time.monotonic()
        tokens = []
        try:
            for authzr in orderr.authorizations:
                if authzr.body.status == messages.STATUS_VALID:
                    continue  # reused authorization (not expected with fresh names)
                challb = next((c for c in authzr.body.challenges
                               if isinstance(c.chall, challenges.HTTP01)), None)
                if challb is None:
                    raise FlowError("authorization offers no http-01 challenge")
                response, validation = challb.response_and_validation(self.account_key)
                responder.put(challb.chall.encode("token"), validation)
                tokens.append(challb.chall.encode("token"))
                self.acme.answer_challenge(challb, response)
                authz = self._poll_authz(authzr.uri, deadline)
                if authz.status != messages.STATUS_VALID:
                    detail = [str(c.error) for c in authz.challenges if c.error is not None]
                    raise FlowError(f"authorization {getattr(authz.status, 'name', authz.status)}: "
                                    f"{'; '.join(detail)}")
        finally:
            for token in tokens:
                responder.remove(token)
        t2 = time.monotonic()
        csr = OpenSSL.crypto.load_certificate_request(OpenSSL.crypto.FILETYPE_PEM, csr_pem)
        response = self.acme._post(orderr.body.finalize,
                                   messages.CertificateRequest(csr=jose.ComparableX509(csr)))
        body = self._poll_order(orderr.uri, messages.Order.from_json(response.json()), deadline)
        if body.status != messages.STATUS_VALID or not body.certificate:
            raise FlowError(f"order {getattr(body.status, 'name', body.status)}: {body.error}")
        t3 = time.monotonic()
        fullchain = self.acme._post_as_get(body.certificate).text
        chain = check_certificate(fullchain, name, cert_key)
        t4 = time.monotonic()
        phases["order"].append(t1 - t0)
        phases["validate"].append(t2 - t1)
        phases["finalize"].append(t3 - t2)
        phases["download"].append(t4 - t3)
        return t4 - t0, chain


# ---------------------------------------------------------------------------------------------
# the run


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil(n*p/100)
    return sorted_values[int(rank) - 1]


def check_loopback(url):
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as e:
        raise SystemExit(f"acme_load: cannot resolve {host}: {e}")
    for info in infos:
        if not ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback:
            raise SystemExit(f"acme_load: {host} resolves to {info[4][0]}, not a loopback address "
                             "(pass --allow-non-loopback to load a server elsewhere)")


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Runs N full ACME http-01 issuance flows with C concurrent clients and reports "
                    "flows/s, latency and the server's CPU seconds per flow.")
    p.add_argument("--directory", required=True, help="ACME directory URL")
    p.add_argument("--flows", type=int, default=200, help="flows to run (default 200)")
    p.add_argument("--concurrency", type=int, default=8,
                   help="concurrent clients, one account each (default 8)")
    p.add_argument("--server-pid", type=int,
                   help="PID of the server whose CPU is charged to the flows")
    p.add_argument("--aux-pid", type=int, action="append", default=[],
                   help="other PIDs whose CPU is reported separately (e.g. a DNS helper)")
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--ca-bundle", help="PEM file of the roots that sign the server's TLS cert")
    tls.add_argument("--insecure", action="store_true",
                     help="do not verify the server's TLS certificate (Pebble's test cert)")
    p.add_argument("--http-port", type=int, default=5002,
                   help="port of this generator's http-01 responder (default 5002)")
    p.add_argument("--http-address", default="127.0.0.1",
                   help="address of the http-01 responder (default 127.0.0.1)")
    p.add_argument("--domain-suffix", default="localhost",
                   help="names are f<i>-<random>.<suffix> (default localhost)")
    p.add_argument("--cert-key", default="p256", choices=["p256", "p384", "rsa2048", "rsa3072"],
                   help="type of the fresh certificate key made in each flow (default p256)")
    p.add_argument("--timeout", type=float, default=600,
                   help="stop starting flows after this many seconds (default 600)")
    p.add_argument("--flow-timeout", type=float, default=60,
                   help="give up one flow after this many seconds (default 60)")
    p.add_argument("--request-timeout", type=float, default=30,
                   help="timeout of one HTTP request (default 30)")
    p.add_argument("--poll-initial", type=float, default=0.05,
                   help="first poll delay in seconds, doubled per poll (default 0.05)")
    p.add_argument("--poll-max", type=float, default=1.0,
                   help="largest poll delay in seconds (default 1.0)")
    p.add_argument("--retry-after", choices=["ignore", "honor"], default="ignore",
                   help="honor: never poll sooner than a Retry-After header says (default "
                        "ignore; responses carrying it are counted either way)")
    p.add_argument("--label", default="", help="name of the server under test, for the report")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--allow-non-loopback", action="store_true",
                   help="allow a directory that is not on a loopback address")
    args = p.parse_args(argv)
    if args.flows < 1 or args.concurrency < 1:
        p.error("--flows and --concurrency must be at least 1")
    if args.server_pid is not None and not os.path.exists(f"/proc/{args.server_pid}/stat"):
        p.error(f"--server-pid {args.server_pid}: no such process")
    return args


def run(args):
    if not args.allow_non_loopback:
        check_loopback(args.directory)
    verify = args.ca_bundle if args.ca_bundle else not args.insecure
    if args.insecure:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    responder = Http01Responder(args.http_address, args.http_port)
    responder.start()
    try:
        return _run(args, verify, responder)
    finally:
        responder.stop()


def _run(args, verify, responder):
    concurrency = min(args.concurrency, args.flows)
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print

    # Setup, not timed: one account per client.
    t_setup = time.monotonic()
    clients = []
    for i in range(concurrency):
        c = Client(args, i, args.directory, verify)
        c.register()
        clients.append(c)
    setup_s = time.monotonic() - t_setup
    log(f"acme_load: {concurrency} accounts registered in {setup_s:.2f}s; "
        f"running {args.flows} flows against {args.directory}")

    run_id = secrets.token_hex(3)
    lock = threading.Lock()
    next_flow = [0]
    latencies = []
    errors_by_kind = collections.Counter()
    error_examples = {}
    phases = collections.defaultdict(list)
    chain_lengths = collections.Counter()
    first_chain = {}
    stop_at = [0.0]

    def worker(c):
        while True:
            with lock:
                if next_flow[0] >= args.flows or time.monotonic() >= stop_at[0]:
                    return
                i = next_flow[0]
                next_flow[0] += 1
            name = f"f{i}-{run_id}{secrets.token_hex(3)}.{args.domain_suffix}"
            try:
                latency, chain = c.flow(name, responder, phases)
                with lock:
                    latencies.append(latency)
                    chain_lengths[chain["chain_length"]] += 1
                    if not first_chain:
                        first_chain.update(chain)
            except Exception as e:  # noqa: BLE001 - every failure is counted, the run goes on
                kind = type(e).__name__
                if isinstance(e, messages.Error) and e.typ:
                    kind += ":" + e.typ.rsplit(":", 1)[-1]
                with lock:
                    errors_by_kind[kind] += 1
                    error_examples.setdefault(kind, f"{name}: {e}"[:500])

    threads = [threading.Thread(target=worker, args=(c,), name=f"client{c.index}")
               for c in clients]
    requests_before = sum(c.requests for c in clients)
    retry_before = sum(c.retry_after_seen for c in clients)
    aux_before = {pid: proc_cpu_seconds(pid) for pid in args.aux_pid}
    server_before = proc_cpu_seconds(args.server_pid) if args.server_pid else None
    self_before = self_cpu_seconds()
    t_start = time.monotonic()
    stop_at[0] = t_start + args.timeout
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t_start
    self_after = self_cpu_seconds()
    server_after = proc_cpu_seconds(args.server_pid) if args.server_pid else None
    aux_after = {pid: proc_cpu_seconds(pid) for pid in args.aux_pid}

    ok = len(latencies)
    failed = sum(errors_by_kind.values())
    lat = sorted(latencies)
    server_cpu = None if server_before is None else server_after - server_before
    http_requests = sum(c.requests for c in clients) - requests_before
    result = {
        "label": args.label,
        "directory": args.directory,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "flows_requested": args.flows,
        "flows_started": next_flow[0],
        "flows_ok": ok,
        "errors": failed,
        "errors_by_kind": dict(errors_by_kind),
        "error_examples": error_examples,
        "concurrency": concurrency,
        "accounts": concurrency,
        "account_setup_s": round(setup_s, 3),
        "wall_s": round(wall, 3),
        "timed_out": next_flow[0] < args.flows,
        "flows_per_s": round(ok / wall, 3) if wall > 0 else None,
        "latency_s": {
            "p50": percentile(lat, 50),
            "p99": percentile(lat, 99),
            "max": lat[-1] if lat else None,
            "mean": sum(lat) / len(lat) if lat else None,
        },
        "phase_mean_s": {k: sum(phases[k]) / len(phases[k])
                         for k in ("order", "validate", "finalize", "download") if phases[k]},
        "http_requests": http_requests,
        "http_requests_per_flow": round(http_requests / ok, 2) if ok else None,
        "retry_after_responses": sum(c.retry_after_seen for c in clients) - retry_before,
        "http01_responder_hits": responder.hits,
        "http01_responder_misses": responder.misses,
        "chain_lengths": {str(k): v for k, v in chain_lengths.items()},
        "first_certificate": first_chain,
        "server_pid": args.server_pid,
        "server_process": proc_name(args.server_pid) if args.server_pid else None,
        "server_cpu_s": None if server_cpu is None else round(server_cpu, 3),
        "server_cpu_s_per_flow": (round(server_cpu / ok, 5)
                                  if server_cpu is not None and ok else None),
        "aux_cpu_s": {f"{pid} ({proc_name(pid)})": round(aux_after[pid] - aux_before[pid], 3)
                      for pid in args.aux_pid},
        "generator_cpu_s": round(self_after - self_before, 3),
        "generator_cpu_s_per_flow": round((self_after - self_before) / ok, 5) if ok else None,
        "clk_tck": CLK_TCK,
        "settings": {
            "cert_key": args.cert_key,
            "account_key": "ES256 (P-256)",
            "poll_initial_s": args.poll_initial,
            "poll_max_s": args.poll_max,
            "retry_after": args.retry_after,
            "domain_suffix": args.domain_suffix,
            "http01": f"{args.http_address}:{args.http_port}",
            "timeout_s": args.timeout,
            "flow_timeout_s": args.flow_timeout,
        },
    }
    for key in ("p50", "p99", "max", "mean"):
        if result["latency_s"][key] is not None:
            result["latency_s"][key] = round(result["latency_s"][key], 4)
    result["phase_mean_s"] = {k: round(v, 4) for k, v in result["phase_mean_s"].items()}
    return result


def print_human(r):
    lat = r["latency_s"]

    def ms(v):
        return "-" if v is None else f"{v * 1000:.1f} ms"

    print(f"server        {r['label'] or r['directory']}"
          + (f"  (pid {r['server_pid']}, {r['server_process']})" if r["server_pid"] else ""))
    print(f"flows         {r['flows_ok']} ok, {r['errors']} errors "
          f"({r['flows_started']} started of {r['flows_requested']}"
          f"{', stopped by --timeout' if r['timed_out'] else ''}); "
          f"{r['concurrency']} clients")
    print(f"wall          {r['wall_s']:.2f} s   -> {r['flows_per_s']} flows/s")
    print(f"latency       p50 {ms(lat['p50'])}  p99 {ms(lat['p99'])}  max {ms(lat['max'])}")
    print("phases (mean) " + "  ".join(f"{k} {ms(v)}" for k, v in r["phase_mean_s"].items()))
    print(f"requests      {r['http_requests']} ({r['http_requests_per_flow']} per flow, "
          f"{r['retry_after_responses']} with Retry-After)")
    if r["server_cpu_s"] is not None:
        per = r["server_cpu_s_per_flow"]
        print(f"server CPU    {r['server_cpu_s']:.2f} s   -> "
              f"{'-' if per is None else f'{per * 1000:.2f} ms'} per flow")
    for k, v in r["aux_cpu_s"].items():
        print(f"aux CPU       {k}: {v:.2f} s")
    print(f"generator CPU {r['generator_cpu_s']:.2f} s")
    for kind, n in r["errors_by_kind"].items():
        print(f"error         {n} x {kind}: {r['error_examples'][kind]}")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = run(args)
    except (errors.Error, messages.Error, requests.RequestException, OSError, ValueError) as e:
        print(f"acme_load: setup failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print_human(result)
    return 0 if result["errors"] == 0 and result["flows_ok"] == args.flows else 1


if __name__ == "__main__":
    sys.exit(main())
