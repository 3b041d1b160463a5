#!/usr/bin/env python3
"""Contract test: docs/admin-api.openapi.yaml against a running `e2eid serve`.

  admin_api_contract_test.py --binary build/dev/cli/e2eid [--source-dir .] [--keep]

Starts the test identity provider (tests/idp/server.js) and `e2eid serve` with an [admin]
section, obtains an admin token (user `admin`, role e2eid-admin) and a user token (`alice`)
through the provider's login pages (tests/idp/browser.py acts as the person; PKCE code flow of
the admin client `e2eid-admin-cli`), enrols one device for alice with `e2eid enrol`, then calls
every operation of the document: the success cases and the documented errors (400, 401, 403,
404, 409, 415, and 503 once the provider is gone), also with a DPoP-bound admin token (RFC 9449;
its proofs are signed with tests/idp/selftest.py's openssl-CLI backend). Each answer is checked
against the document: the status must be documented for the operation, the Content-Type must be
one of its media types, the body must validate against its schema (JSON Schema 2020-12, $ref
into components, python3-jsonschema), documented headers must be present and valid. Request bodies and query
parameters of the success cases are validated against the document too.

Coverage, both ways:
  - the routes that server/admin_api.cc registers (its AddAdminRoutes table, parsed) are exactly
    the document's operations;
  - every (operation, documented status) was exercised, except the few listed in NOT_EXERCISED
    with the reason.
The document itself: every schema is valid JSON Schema 2020-12, and, where openapi-spec-validator
is installed, the whole document validates against the OpenAPI 3.1 meta-schema.
Self-checks that the validation can fail: a copy of the document with one field's type changed
(Device.status: integer), and one with a member removed from a closed schema, must refuse
answers that the real document accepts; every object schema in a response is closed.

Prints one line per check group and ends with "admin_api_contract: N passed, N failed".
Exit status 0 when everything passed.
"""

import argparse
import base64
import copy
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

try:
    import jsonschema
    import requests
    import yaml
except ImportError as missing:
    # tests/deps.sh installs Debian's python3-jsonschema and python3-yaml for /usr/bin/python3;
    # another python3 first on PATH (pyenv, venv) may lack them.
    if os.path.exists("/usr/bin/python3") and not os.path.samefile(
        sys.executable, "/usr/bin/python3"
    ):
        os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])
    raise SystemExit(f"admin_api_contract: {missing} (run tests/deps.sh)") from missing

# The IdP self-test's loopback redirect listener and base64url helper.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "idp"))
from selftest import Callback, b64u  # noqa: E402

DOMAIN = "wire.example.com"
ADMIN_CLIENT = "e2eid-admin-cli"
DEVICE_CLIENT = "e2eid-device"
ALICE_UUID = "6c1f6a3e-8b1d-4c55-9b3e-a11ce0000001"
BOB_UUID = "2b0b2b0b-7c2d-4f6e-8a1b-b0b000000002"
TIMEOUT = 20
PREFIX = "/admin/v1"

# (operationId, status) that are documented but cannot be produced in this set-up.
NOT_EXERCISED = {
    ("*", "500"): "internal errors (the store failing) cannot be provoked from outside",
    ("listMyDevices", "403"): "every user of the test IdP has a UUID subject",
}


class Failure(Exception):
    pass


def wire_user_id(uuid_text):
    return base64.urlsafe_b64encode(uuid.UUID(uuid_text).bytes).rstrip(b"=").decode()


def enc(value):
    return urllib.parse.quote(value, safe="")


# ------------------------------------------------------------------------------------------------
# The document


class Contract:
    def __init__(self, doc):
        self.doc = doc
        self.ops = {}  # operationId -> (method, template, operation)
        for template, item in doc["paths"].items():
            for method, op in item.items():
                if method in ("parameters", "summary", "description", "servers"):
                    continue
                self.ops[op["operationId"]] = (method.upper(), template, op)
        self.exercised = set()  # (operationId, status)
        self.samples = {}  # operationId -> last 2xx JSON body (for the self-checks)
        self._validators = {}

    def deref(self, obj):
        while isinstance(obj, dict) and "$ref" in obj and len(obj) == 1:
            obj = self.pointer(obj["$ref"])
        return obj

    def pointer(self, ref):
        if not ref.startswith("#/"):
            raise Failure(f"only local references are used: {ref}")
        node = self.doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            self._validators[key] = self._make_validator(schema)
        return self._validators[key]

    def _make_validator(self, schema):
        # The whole document is the root resource, so "#/components/..." resolves.
        root = {"$schema": "https://json-schema.org/draft/2020-12/schema", **self.doc}
        root.pop("$ref", None)
        wrapped = dict(root)
        wrapped.update({"allOf": [schema]})
        return jsonschema.Draft202012Validator(
            wrapped, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )

    def errors(self, schema, instance):
        return [
            f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in self.validator(schema).iter_errors(instance)
        ]

    def parameters(self, op):
        return {p["name"]: p for p in (self.deref(x) for x in op.get("parameters", []))}


# ------------------------------------------------------------------------------------------------
# Processes


class Proc:
    def __init__(self, argv, log_path, env=None):
        self.log_path = log_path
        self.log = open(log_path, "w+", encoding="utf-8")
        self.p = subprocess.Popen(
            argv,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )

    def text(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_for(self, pattern, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text())
            if m:
                return m
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        m = re.search(pattern, self.text())
        if m:
            return m
        raise Failure(f"'{pattern}' did not appear in {self.log_path}:\n{self.text()[-4000:]}")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser(source, url, user, password):
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(source, "tests/idp/browser.py"),
            "login",
            "--url",
            url,
            "--user",
            user,
            "--password",
            password,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise Failure(f"browser.py login {user} failed: {proc.stdout}{proc.stderr}")


def login(source, issuer, user, password, client_id=ADMIN_CLIENT, dpop=None):
    """PKCE authorization code flow; the user logs in through the provider's pages. With `dpop`
    (a tests/idp/selftest.py DpopKey) the token request carries a proof: a DPoP-bound token."""
    config = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=TIMEOUT).json()
    cb = Callback()
    try:
        verifier = b64u(secrets.token_bytes(48))
        challenge = b64u(hashlib.sha256(verifier.encode()).digest())
        state = secrets.token_urlsafe(16)
        params = {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": cb.redirect_uri,
            "scope": "openid profile",
            "state": state,
            "nonce": secrets.token_urlsafe(16),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        browser(
            source,
            f"{config['authorization_endpoint']}?{urllib.parse.urlencode(params)}",
            user,
            password,
        )
        if len(cb.received) != 1 or cb.received[0].get("state") != state:
            raise Failure(f"login {user}: unexpected callback {cb.received}")
        headers = {"DPoP": dpop.proof("POST", config["token_endpoint"])} if dpop else {}
        r = requests.post(
            config["token_endpoint"],
            headers=headers,
            data={
                "grant_type": "authorization_code",
                "code": cb.received[0]["code"],
                "code_verifier": verifier,
                "redirect_uri": cb.redirect_uri,
                "client_id": client_id,
            },
            timeout=TIMEOUT,
        )
        if r.status_code != 200:
            raise Failure(f"login {user}: token endpoint answered {r.status_code} {r.text}")
        return r.json()["access_token"]
    finally:
        cb.close()


def enrol(source, binary, workdir, base, issuer, user, password):
    """`e2eid enrol` for `user`; browser.py completes each login URL it prints."""
    state = os.path.join(workdir, f"{user}-device")
    proc = Proc(
        [
            binary,
            "enrol",
            "--state-dir",
            state,
            "--server",
            f"{base}/acme/directory",
            "--issuer",
            issuer,
            "--client-id",
            DEVICE_CLIENT,
            "--domain",
            DOMAIN,
            "--ca-file",
            os.path.join(workdir, "ca/root.pem"),
            "--login",
            "browser",
            "--login-timeout",
            "60",
        ],
        state + ".log",
    )
    handled = 0
    deadline = time.monotonic() + 120
    while proc.p.poll() is None and time.monotonic() < deadline:
        urls = re.findall(r"Open this URL to log in: (\S+)\n", proc.text())
        if len(urls) > handled:
            browser(source, urls[handled], user, password)
            handled += 1
        else:
            time.sleep(0.1)
    if proc.p.poll() is None:
        proc.stop()
        raise Failure(f"enrol {user} did not finish:\n{proc.text()}")
    code = proc.stop()
    if code != 0:
        raise Failure(f"enrol {user} exited {code}:\n{proc.text()}")
    pem = open(os.path.join(state, "cert.pem"), encoding="utf-8").read()
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-serial", "-ext", "subjectAltName"],
        input=pem,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    serial = re.search(r"serial=([0-9A-F]+)", out).group(1)
    device = re.search(r"URI:(wireapp://[A-Za-z0-9_-]{22}![0-9a-f]{1,16}@[a-z.]+)", out).group(1)
    der = subprocess.run(
        ["openssl", "x509", "-noout", "-pubkey"], input=pem, capture_output=True, text=True
    ).stdout
    spki = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "DER"],
        input=der.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return device, serial, hashlib.sha256(spki).hexdigest()


# ------------------------------------------------------------------------------------------------
# Calls


class Api:
    def __init__(self, contract, base, ca_file):
        self.c = contract
        self.base = base
        # http.client, not requests: requests/urllib3 "repair" malformed percent-encodings
        # ("%zz" -> "%25zz"), and the 400 for those must be tested with the raw path.
        self.tls = ssl.create_default_context(cafile=ca_file)
        parsed = urllib.parse.urlsplit(base)
        self.host, self.port = parsed.hostname, parsed.port

    class Reply:
        def __init__(self, status_code, headers, text):
            self.status_code, self.headers, self.text = status_code, headers, text

    def send(self, method, target, data, headers):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.tls, timeout=TIMEOUT)
        try:
            conn.request(method, target, body=data, headers=headers)
            resp = conn.getresponse()
            body = resp.read().decode("utf-8", errors="replace")
            return Api.Reply(resp.status, resp.headers, body)
        finally:
            conn.close()

    def call(
        self,
        op_id,
        expect,
        token=None,
        path=None,
        query=None,
        body=None,
        raw=None,
        content_type="application/json",
        auth=None,
        extra_headers=None,
    ):
        """Calls `op_id` and checks the answer against the document. `path`: the values of the
        path parameters (already encoded); `query`: list of (name, value); `body`: JSON (or
        `raw` bytes). Returns the parsed body (JSON, or a list for JSON lines)."""
        method, template, op = self.c.ops[op_id]
        url_path = template
        for name, value in (path or {}).items():
            url_path = url_path.replace("{" + name + "}", value)
        if "{" in url_path:
            raise Failure(f"{op_id}: path parameters missing in {url_path}")
        query = query or []
        url = self.base + url_path
        if query:
            url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        headers = dict(extra_headers or {})
        if auth is not None:
            headers["Authorization"] = auth
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if raw is not None:
            data = raw
        elif body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = content_type
        what = f"{op_id} {method} {url_path}{'?' + urllib.parse.urlencode(query) if query else ''}"

        # The request of a success case must be one the document allows.
        if expect < 300:
            params = self.c.parameters(op)
            for name, value in query:
                if name not in params:
                    raise Failure(f"{what}: query parameter '{name}' is not documented")
                schema = params[name]["schema"]
                inst = int(value) if self.c.deref(schema).get("type") == "integer" else value
                errs = self.c.errors(schema, inst)
                if errs:
                    raise Failure(
                        f"{what}: documented parameter '{name}' refuses {value!r}: {errs}"
                    )
            if body is not None:
                rb = op.get("requestBody")
                if rb is None:
                    raise Failure(f"{what}: sends a body but none is documented")
                errs = self.c.errors(rb["content"]["application/json"]["schema"], body)
                if errs:
                    raise Failure(f"{what}: the document refuses the request body: {errs}")

        r = self.send(method, url[len(self.base) :], data, headers)
        status = str(r.status_code)
        if r.status_code != expect:
            raise Failure(f"{what}: status {status}, expected {expect}: {r.text[:500]}")
        responses = op["responses"]
        if status not in responses:
            raise Failure(f"{what}: status {status} is not documented ({sorted(responses)})")
        response = self.c.deref(responses[status])
        media = r.headers.get("Content-Type", "").split(";")[0].strip()
        content = response.get("content", {})
        if media not in content:
            raise Failure(f"{what}: Content-Type '{media}' is not documented ({sorted(content)})")
        for name, header in response.get("headers", {}).items():
            header = self.c.deref(header)
            value = r.headers.get(name)
            if value is None:
                if header.get("required"):
                    raise Failure(f"{what}: the documented header {name} is missing")
                continue
            errs = self.c.errors(header["schema"], value)
            if errs:
                raise Failure(f"{what}: header {name}: {value!r}: {errs}")
        schema = content[media]["schema"]
        if media == "application/x-ndjson":
            if not r.text.endswith("\n"):
                raise Failure(f"{what}: JSON lines must end with a newline")
            parsed = [json.loads(line) for line in r.text.splitlines()]
            items = parsed
        else:
            try:
                parsed = json.loads(r.text)
            except ValueError as e:
                raise Failure(f"{what}: body is not JSON: {e}: {r.text[:200]}") from e
            items = [parsed]
        for item in items:
            errs = self.c.errors(schema, item)
            if errs:
                raise Failure(f"{what}: {status} body does not match the document: {errs}\n{item}")
        if media == "application/problem+json" and parsed.get("status") != r.status_code:
            raise Failure(f"{what}: problem status {parsed.get('status')} != {status}")
        self.c.exercised.add((op_id, status))
        if expect < 300 and media == "application/json":
            self.c.samples[op_id] = parsed
        return parsed


# ------------------------------------------------------------------------------------------------
# The checks


def served_routes(source):
    """(METHOD, pattern) of every route AddAdminRoutes registers, from server/admin_api.cc."""
    text = open(os.path.join(source, "server/admin_api.cc"), encoding="utf-8").read()
    start = text.find("Status AddAdminRoutes(Router& router, const AdminApi& api) {")
    if start < 0:
        raise Failure("AddAdminRoutes not found in server/admin_api.cc")
    body = text[start:]
    prefix = re.search(
        r'kAdminPathPrefix = "([^"]+)"',
        open(os.path.join(source, "server/admin_api.h"), encoding="utf-8").read(),
    ).group(1)
    calls = re.findall(r"\badd\(", body)
    routes = re.findall(r'\badd\(\s*"([A-Z]+)"\s*,\s*"(/[^"]*)"', body)
    if len(routes) != len(calls) or len(routes) < 10:
        raise Failure(
            f"cannot read the route table of server/admin_api.cc: {len(calls)} add( calls, "
            f"{len(routes)} parsed; update served_routes() in this test"
        )
    return {(m, prefix + p) for m, p in routes}


def closed_schema_problems(contract):
    """Object schemas in components that are not closed (additionalProperties or
    unevaluatedProperties false). *Fields schemas are closed by the schemas that use them."""
    problems = []

    def walk(schema, where):
        if not isinstance(schema, dict):
            return
        if "$ref" in schema:
            return
        if schema.get("type") == "object" or "allOf" in schema:
            if not where.endswith("Fields") and "maxProperties" not in schema:
                if (
                    schema.get("additionalProperties") is not False
                    and schema.get("unevaluatedProperties") is not False
                ):
                    problems.append(where)
        for key in ("properties",):
            for name, sub in schema.get(key, {}).items():
                walk(sub, f"{where}.{name}")
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], f"{where}[]")
        for key in ("oneOf", "anyOf"):
            for i, sub in enumerate(schema.get(key, [])):
                walk(sub, f"{where}.{key}{i}")

    for name, schema in contract.doc["components"]["schemas"].items():
        if name == "AuditEvent":
            # "details" is action-specific: an open object on purpose.
            schema = copy.deepcopy(schema)
            schema["properties"].pop("details")
        walk(schema, name)
    return problems


class Run:
    def __init__(self, args):
        self.args = args
        self.source = os.path.abspath(args.source_dir)
        self.passed = 0
        self.failed = 0
        self.procs = []

    def step(self, name, fn):
        t0 = time.monotonic()
        try:
            fn()
            print(f"ok     {name} ({time.monotonic() - t0:.1f} s)", flush=True)
            self.passed += 1
        except Failure as e:
            print(f"not ok {name}\n  {e}", flush=True)
            self.failed += 1
        except (requests.RequestException, subprocess.SubprocessError, OSError, KeyError) as e:
            print(f"not ok {name}\n  {type(e).__name__}: {e}", flush=True)
            self.failed += 1

    def main(self):
        doc = yaml.safe_load(open(os.path.join(self.source, "docs/admin-api.openapi.yaml")))
        self.contract = Contract(doc)
        self.workdir = tempfile.mkdtemp(prefix="e2eid-contract-")
        started = time.monotonic()
        try:
            self.step("the document: OpenAPI 3.1, schemas are valid 2020-12", self.check_document)
            self.step("the document lists exactly the server's /admin/v1 routes", self.check_routes)
            setup_ok = self.failed == 0
            if setup_ok:
                self.step(
                    "start the IdP and e2eid serve, log in admin and alice, enrol", self.setup
                )
                setup_ok = self.failed == 0
            if setup_ok:
                self.step(
                    "401 for every operation: no token, bad scheme, bad token", self.unauthorized
                )
                self.step("403 for every admin operation with alice's token", self.forbidden)
                self.step("listings, filters and paging", self.listings)
                self.step("single objects and 404s", self.lookups)
                self.step("device block/unblock, user disable/enable", self.device_user_admin)
                self.step("revocations", self.revocations)
                self.step("self-service", self.self_service)
                self.step("400 for bad input, 415 for a wrong media type", self.bad_input)
                self.step("DPoP-bound admin token (RFC 9449)", self.dpop)
                self.step("audit listing and JSON-lines export", self.audit)
                self.step("503 when the IdP cannot be reached to verify a token", self.unavailable)
                self.step("every documented (operation, status) was exercised", self.coverage)
                self.step("the validation can fail (mutated document)", self.mutations)
        finally:
            for p in reversed(self.procs):
                p.stop()
            if self.args.keep or self.failed:
                print(f"logs and state kept in {self.workdir}")
                if self.failed:
                    for p in self.procs:
                        print(f"---- {p.log_path} (tail)\n{p.text()[-3000:]}")
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)
        print(f"(took {time.monotonic() - started:.1f} s)")
        print(f"admin_api_contract: {self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1

    # ---- static checks -------------------------------------------------------------------------

    def check_document(self):
        doc = self.contract.doc
        if not str(doc.get("openapi", "")).startswith("3.1"):
            raise Failure("openapi must be 3.1.x")
        try:  # the OpenAPI 3.1 meta-schema, where the (optional) validator is installed
            from openapi_spec_validator import validate as validate_openapi
        except ImportError:
            validate_openapi = None
        if validate_openapi is not None:
            try:
                validate_openapi(doc)
            except Exception as e:  # its error types differ between versions
                raise Failure(f"not a valid OpenAPI 3.1 document: {str(e)[:2000]}") from e
        for name, schema in doc["components"]["schemas"].items():
            jsonschema.Draft202012Validator.check_schema(schema)
        problems = closed_schema_problems(self.contract)
        if problems:
            raise Failure(f"object schemas that are not closed: {problems}")
        ids = [op["operationId"] for _, _, op in self.contract.ops.values()]
        if len(ids) != len(set(ids)):
            raise Failure("operationIds are not unique")
        for op_id, (method, template, op) in self.contract.ops.items():
            for status, response in op["responses"].items():
                response = self.contract.deref(response)
                for media, c in response.get("content", {}).items():
                    if status.startswith("2") == (media == "application/problem+json"):
                        raise Failure(f"{op_id} {status}: unexpected media type {media}")
            security = op.get("security", doc["security"])
            roles = {tuple(r) for req in security for r in req.values()}
            if roles not in ({()}, {("e2eid-admin",)}) or not security:
                raise Failure(f"{op_id}: security must be 'any user' or 'e2eid-admin': {security}")
            declared = set(re.findall(r"{(\w+)}", template))
            params = {n for n, p in self.contract.parameters(op).items() if p["in"] == "path"}
            if declared != params:
                raise Failure(f"{op_id}: path parameters {declared} vs documented {params}")

    def check_routes(self):
        served = served_routes(self.source)
        documented = {(m, t) for m, t, _ in self.contract.ops.values()}
        missing = served - documented
        extra = documented - served
        if missing or extra:
            raise Failure(
                f"served but not documented: {sorted(missing)}; "
                f"documented but not served: {sorted(extra)}"
            )

    # ---- set-up --------------------------------------------------------------------------------

    def setup(self):
        w = self.workdir
        idp = Proc(
            [
                "node",
                os.path.join(self.source, "tests/idp/server.js"),
                "--port",
                "0",
                "--realm",
                "e2eid",
            ],
            os.path.join(w, "idp.log"),
        )
        self.procs.append(idp)
        self.idp = idp
        self.issuer = idp.wait_for(r"IDP READY (\S+)\n").group(1)
        init = subprocess.run(
            [
                self.args.binary,
                "init",
                "--dir",
                os.path.join(w, "ca"),
                "--domain",
                DOMAIN,
                "--no-name-constraints",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if init.returncode != 0:
            raise Failure(f"e2eid init: {init.stdout}{init.stderr}")
        port = free_port()
        self.base = f"https://localhost:{port}"
        with open(os.path.join(w, "e2eid.toml"), "w", encoding="utf-8") as f:
            f.write(
                f'[server]\nlisten = "127.0.0.1:{port}"\n'
                '[ca]\ndir = "ca"\n[store]\npath = "e2eid.db"\n'
                f'[identity]\ndomain = "{DOMAIN}"\noidc_issuer = "{self.issuer}"\n'
                f'oidc_client_id = "{DEVICE_CLIENT}"\n'
                f'[admin]\nclient_id = "{ADMIN_CLIENT}"\n'
            )
        self.start_server()
        self.admin = login(self.source, self.issuer, "admin", "admin-password")
        self.alice = login(self.source, self.issuer, "alice", "alice-password")
        self.device, serial, self.spki = enrol(
            self.source, self.args.binary, w, self.base, self.issuer, "alice", "alice-password"
        )
        self.serial = serial.lower().lstrip("0") or "0"
        self.alice_id = wire_user_id(ALICE_UUID)

    def start_server(self):
        server = Proc(
            [self.args.binary, "serve", "--config", os.path.join(self.workdir, "e2eid.toml")],
            os.path.join(self.workdir, f"serve-{len(self.procs)}.log"),
        )
        self.procs.append(server)
        server.wait_for(r"e2eid is serving")
        self.api = Api(self.contract, self.base, os.path.join(self.workdir, "ca/root.pem"))

    # ---- helpers -------------------------------------------------------------------------------

    def sample_path(self, op_id):
        """Path parameter values that exist, for operations that take them."""
        _, template, _ = self.contract.ops[op_id]
        values = {"serial": self.serial, "device": enc(self.device), "id": enc(self.alice_id)}
        return {k: v for k, v in values.items() if "{" + k + "}" in template}

    def all_ops(self):
        return sorted(self.contract.ops)

    def is_self(self, op_id):
        op = self.contract.ops[op_id][2]
        security = op.get("security", self.contract.doc["security"])
        return all(not roles for req in security for roles in req.values())

    # ---- the cases -----------------------------------------------------------------------------

    def unauthorized(self):
        a = self.api
        for op_id in self.all_ops():
            method = self.contract.ops[op_id][0]
            body = {} if method == "POST" else None
            p = self.sample_path(op_id)
            a.call(op_id, 401, path=p, body=body)
            a.call(op_id, 401, path=p, body=body, auth=f"Basic {b64u(b'admin:admin-password')}")
            a.call(op_id, 401, path=p, body=body, token=self.admin[:-8] + "AAAAAAAA")
            a.call(op_id, 401, path=p, body=body, token="not-a-jwt")

    def forbidden(self):
        for op_id in self.all_ops():
            if self.is_self(op_id):
                continue
            method = self.contract.ops[op_id][0]
            self.api.call(
                op_id,
                403,
                token=self.alice,
                path=self.sample_path(op_id),
                body={} if method == "POST" else None,
            )

    def listings(self):
        a, t = self.api, self.admin
        certs = a.call("listCertificates", 200, token=t)
        if [c["serial"] for c in certs["items"]] != [self.serial] or certs["next"] != "":
            raise Failure(f"one certificate expected: {certs}")
        for q in (
            [("user", ALICE_UUID)],
            [("user", self.alice_id), ("status", "good")],
            [("device", self.device)],
            [("spki", self.spki)],
            [("spki", ":".join(self.spki[i : i + 2] for i in range(0, 64, 2)).upper())],
            [("issued_before", "2999-01-01T00:00:00Z")],
            [("device", self.device), ("user", self.alice_id), ("status", "good"), ("limit", "1")],
        ):
            page = a.call("listCertificates", 200, token=t, query=q)
            if len(page["items"]) != 1:
                raise Failure(f"listCertificates {q}: {page}")
        for q in (
            [("status", "revoked")],
            [("issued_before", "2000-01-01T00:00:00Z")],
            [("user", BOB_UUID)],
        ):
            page = a.call("listCertificates", 200, token=t, query=q)
            if page["items"]:
                raise Failure(f"listCertificates {q} should be empty: {page}")
        devices = a.call("listDevices", 200, token=t)
        if [d["id"] for d in devices["items"]] != [self.device]:
            raise Failure(f"listDevices: {devices}")
        for q in ([("user", ALICE_UUID), ("status", "active")], [("limit", "1")]):
            page = a.call("listDevices", 200, token=t, query=q)
            if len(page["items"]) != 1:
                raise Failure(f"listDevices {q}: {page}")
        if a.call("listDevices", 200, token=t, query=[("status", "blocked")])["items"]:
            raise Failure("no device is blocked yet")
        users = a.call("listUsers", 200, token=t, query=[("limit", "1000")])
        if [u["id"] for u in users["items"]] != [self.alice_id]:
            raise Failure(f"listUsers: {users}")
        # Paging: walk the audit trail one event at a time with the cursor.
        seen, cursor = [], ""
        for _ in range(200):
            q = [("limit", "4")] + ([("cursor", cursor)] if cursor else [])
            page = a.call("listAudit", 200, token=t, query=q)
            seen += [e["id"] for e in page["items"]]
            cursor = page["next"]
            if not cursor:
                break
        if len(seen) < 9 or seen != sorted(set(seen)):
            raise Failure(f"audit paging: ids {seen}")
        a.call("listRevocations", 200, token=t, query=[("limit", "5")])

    def lookups(self):
        a, t = self.api, self.admin
        cert = a.call("getCertificate", 200, token=t, path={"serial": self.serial.upper()})
        if cert["serial"] != self.serial or cert["device_id"] != self.device:
            raise Failure(f"getCertificate: {cert}")
        a.call("getCertificate", 404, token=t, path={"serial": "00ab"})
        dev = a.call("getDevice", 200, token=t, path={"device": enc(self.device)})
        if dev["id"] != self.device or len(dev["certificates"]) != 1:
            raise Failure(f"getDevice: {dev}")
        # "%21" for "!" is canonicalised.
        a.call("getDevice", 200, token=t, path={"device": enc(self.device.replace("!", "%21"))})
        unknown = enc(f"wireapp://{wire_user_id(BOB_UUID)}!1@{DOMAIN}")
        a.call("getDevice", 404, token=t, path={"device": unknown})
        user = a.call("getUser", 200, token=t, path={"id": ALICE_UUID})
        if user["id"] != self.alice_id or [d["id"] for d in user["devices"]] != [self.device]:
            raise Failure(f"getUser: {user}")
        a.call("getUser", 404, token=t, path={"id": BOB_UUID})

    def device_user_admin(self):
        a, t = self.api, self.admin
        d = {"device": enc(self.device)}
        dev = a.call("blockDevice", 200, token=t, path=d, body={"reason": "contract test"})
        if dev["status"] != "blocked" or dev["blocked_reason"] != "contract test":
            raise Failure(f"blockDevice: {dev}")
        a.call("blockDevice", 200, token=t, path=d)  # no body, idempotent
        dev = a.call("unblockDevice", 200, token=t, path=d, body={})
        if dev["status"] != "active":
            raise Failure(f"unblockDevice: {dev}")
        unknown = {"device": enc(f"wireapp://{wire_user_id(BOB_UUID)}!1@{DOMAIN}")}
        a.call("blockDevice", 404, token=t, path=unknown)
        a.call("unblockDevice", 404, token=t, path=unknown)
        u = {"id": enc(self.alice_id)}
        user = a.call("disableUser", 200, token=t, path=u, body={"reason": "contract test"})
        if user["status"] != "disabled":
            raise Failure(f"disableUser: {user}")
        user = a.call("enableUser", 200, token=t, path=u)
        if user["status"] != "active":
            raise Failure(f"enableUser: {user}")
        a.call("disableUser", 404, token=t, path={"id": BOB_UUID})
        a.call("enableUser", 404, token=t, path={"id": BOB_UUID})

    def revocations(self):
        a, t = self.api, self.admin
        out = a.call("createRevocation", 200, token=t, body={"scope": "key", "value": "ab" * 32})
        if out["affected"] != 0:
            raise Failure(f"revoking an unknown key: {out}")
        a.call(
            "createRevocation",
            200,
            token=t,
            body={
                "scope": "before",
                "value": "2000-01-01T00:00:00Z",
                "reason": "superseded",
                "comment": "nothing that old",
            },
        )
        a.call("createRevocation", 404, token=t, body={"scope": "user", "value": BOB_UUID})
        a.call("createRevocation", 404, token=t, body={"scope": "certificate", "value": "ab"})
        out = a.call(
            "createRevocation",
            200,
            token=t,
            body={
                "scope": "certificate",
                "value": self.serial,
                "reason": 1,
                "comment": "contract test",
            },
        )
        if out["affected"] != 1:
            raise Failure(f"revoking the certificate: {out}")
        cert = a.call("getCertificate", 200, token=t, path={"serial": self.serial})
        if cert["status"] != "revoked" or cert["reason_name"] != "keyCompromise":
            raise Failure(f"the revoked certificate: {cert}")
        events = a.call("listRevocations", 200, token=t)["items"]
        if [e["scope"] for e in events] != ["key", "before", "certificate"]:
            raise Failure(f"revocation events: {events}")
        if (
            a.call("listCertificates", 200, token=t, query=[("status", "revoked")])["items"][0][
                "serial"
            ]
            != self.serial
        ):
            raise Failure("the revoked certificate is not listed as revoked")

    def self_service(self):
        a = self.api
        mine = a.call("listMyDevices", 200, token=self.alice)
        if [d["id"] for d in mine["items"]] != [self.device] or mine["next"] != "":
            raise Failure(f"alice's devices: {mine}")
        if a.call("listMyDevices", 200, token=self.admin)["items"]:
            raise Failure("the admin has no devices")
        d = {"device": enc(self.device)}
        # Not the admin's device, and an unknown one: the same 403.
        a.call("removeMyDevice", 403, token=self.admin, path=d)
        a.call(
            "removeMyDevice",
            403,
            token=self.alice,
            path={"device": enc(f"wireapp://{self.alice_id}!ff@{DOMAIN}")},
        )
        out = a.call("removeMyDevice", 200, token=self.alice, path=d, body={})
        if out["affected"] != 0:  # the certificate was revoked already
            raise Failure(f"removeMyDevice: {out}")
        dev = a.call("getDevice", 200, token=self.admin, path=d)
        if dev["status"] != "removed":
            raise Failure(f"removed device: {dev}")
        # A removed device cannot be unblocked.
        a.call("unblockDevice", 409, token=self.admin, path=d)

    def bad_input(self):
        a, t = self.api, self.admin
        bad_query = [("bogus", "1")]
        for op_id in (
            "listRevocations",
            "listCertificates",
            "listDevices",
            "listUsers",
            "listAudit",
            "exportAudit",
        ):
            a.call(op_id, 400, token=t, query=bad_query)
            if "bogus" in self.contract.parameters(self.contract.ops[op_id][2]):
                raise Failure(f"{op_id}: the refused parameter is documented")
        for op_id in (
            "listRevocations",
            "listCertificates",
            "listDevices",
            "listUsers",
            "listAudit",
        ):
            for limit in ("0", "1001", "x"):
                a.call(op_id, 400, token=t, query=[("limit", limit)])
        a.call("listCertificates", 400, token=t, query=[("status", "lost")])
        a.call("listCertificates", 400, token=t, query=[("spki", "abc")])
        a.call("listCertificates", 400, token=t, query=[("issued_before", "yesterday")])
        a.call("listDevices", 400, token=t, query=[("status", "lost")])
        a.call("getCertificate", 400, token=t, path={"serial": "xyz"})
        for op_id in ("getDevice", "blockDevice", "unblockDevice", "removeMyDevice"):
            tok = self.alice if self.is_self(op_id) else t
            a.call(op_id, 400, token=tok, path={"device": "%zz"})
        for op_id in ("getUser", "disableUser", "enableUser"):
            a.call(op_id, 400, token=t, path={"id": "%zz"})
        for body in (
            {"scope": "device"},
            {"scope": "everything", "value": "x"},
            {"scope": "certificate", "value": "xyz"},
            {"scope": "key", "value": "abc"},
            {"scope": "before", "value": "yesterday"},
            {"scope": "certificate", "value": self.serial, "reason": 6},
            {"scope": "certificate", "value": self.serial, "reason": "certificateHold"},
            {"scope": "certificate", "value": self.serial, "extra": 1},
            {"scope": "certificate", "value": self.serial, "comment": "x" * 1025},
        ):
            a.call("createRevocation", 400, token=t, body=body)
        a.call("createRevocation", 400, token=t)  # no body
        a.call("createRevocation", 400, token=t, raw=b"[1]")
        a.call("createRevocation", 400, token=t, raw=b"{")
        d = {"device": enc(self.device)}
        a.call("blockDevice", 400, token=t, path=d, body={"why": "x"})
        a.call("blockDevice", 400, token=t, path=d, body={"reason": "x" * 1025})
        a.call("unblockDevice", 400, token=t, path=d, body={"reason": "x"})
        a.call("disableUser", 400, token=t, path={"id": self.alice_id}, body={"why": "x"})
        a.call("enableUser", 400, token=t, path={"id": self.alice_id}, body={"reason": "x"})
        a.call("removeMyDevice", 400, token=self.alice, path=d, body={"reason": "x"})
        # 415: a body that is not application/json.
        for op_id in self.all_ops():
            if self.contract.ops[op_id][0] != "POST":
                continue
            tok = self.alice if self.is_self(op_id) else t
            a.call(
                op_id,
                415,
                token=tok,
                path=self.sample_path(op_id),
                raw=b"{}",
                content_type="text/plain",
            )

    def dpop(self):
        sys.dont_write_bytecode = True  # no __pycache__ in the source tree
        sys.path.insert(0, os.path.join(self.source, "tests/idp"))
        import selftest as idp  # DpopKey and the openssl-CLI signing backend

        key = idp.DpopKey(idp.OpensslBackend(self.workdir))
        token = login(self.source, self.issuer, "admin", "admin-password", dpop=key)
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        if claims.get("cnf", {}).get("jkt") != key.jkt:
            raise Failure(f"the IdP did not bind the token: {claims.get('cnf')}")
        a = self.api

        def proof(op_id, path=None, method=None):
            m, template, _ = self.contract.ops[op_id]
            url = self.base + template
            for name, value in (path or {}).items():
                url = url.replace("{" + name + "}", value)
            return {"DPoP": key.proof(method or m, url, token)}

        auth = f"DPoP {token}"
        for op_id in ("listDevices", "listCertificates", "listAudit", "listMyDevices"):
            a.call(op_id, 200, auth=auth, extra_headers=proof(op_id))
        d = {"device": enc(self.device)}
        a.call("getDevice", 200, auth=auth, path=d, extra_headers=proof("getDevice", d))
        # A bound token without its proof is a stolen bearer token; a replayed proof, a proof
        # for another method, a proof of another key: 401 with the DPoP challenge.
        a.call("listDevices", 401, token=token)
        a.call("listDevices", 401, auth=auth)
        replayed = proof("listUsers")
        a.call("listUsers", 200, auth=auth, extra_headers=replayed)
        a.call("listUsers", 401, auth=auth, extra_headers=replayed)
        a.call("listUsers", 401, auth=auth, extra_headers=proof("listUsers", method="POST"))
        other = idp.DpopKey(idp.OpensslBackend(self.workdir))
        a.call(
            "listUsers",
            401,
            auth=auth,
            extra_headers={"DPoP": other.proof("GET", self.base + PREFIX + "/users", token)},
        )
        # The DPoP scheme with an unbound token.
        a.call("listUsers", 401, auth=f"DPoP {self.admin}", extra_headers=proof("listUsers"))

    def audit(self):
        a, t = self.api, self.admin
        lines = a.call("exportAudit", 200, token=t)
        listed, cursor = [], ""
        while True:
            q = [("limit", "1000")] + ([("cursor", cursor)] if cursor else [])
            page = a.call("listAudit", 200, token=t, query=q)
            listed += page["items"]
            cursor = page["next"]
            if not cursor:
                break
        # The listing after the export also holds the export's own audit event.
        if [e["id"] for e in listed[: len(lines)]] != [e["id"] for e in lines]:
            raise Failure("the export and the listing disagree")
        actions = {e["action"] for e in listed}
        for want in (
            "admin.login",
            "device.block",
            "device.unblock",
            "user.disable",
            "user.enable",
            "certificate.revoke",
            "device.remove",
            "audit.export",
        ):
            if want not in actions:
                raise Failure(f"no '{want}' event in the audit trail: {sorted(actions)}")

    def unavailable(self):
        # The IdP goes away and e2eid restarts (it starts without the IdP): with no keys cached,
        # no token can be verified, so every operation answers 503, not 401.
        self.idp.stop()
        server = self.procs.pop()
        if server.stop() != 0:
            raise Failure(f"e2eid serve did not exit cleanly:\n{server.text()[-2000:]}")
        self.start_server()
        for op_id in self.all_ops():
            method = self.contract.ops[op_id][0]
            self.api.call(
                op_id,
                503,
                token=self.admin,
                path=self.sample_path(op_id),
                body={} if method == "POST" else None,
            )

    def coverage(self):
        missing = []
        for op_id, (_, _, op) in sorted(self.contract.ops.items()):
            for status in op["responses"]:
                if (op_id, status) in self.contract.exercised:
                    continue
                if ("*", status) in NOT_EXERCISED or (op_id, status) in NOT_EXERCISED:
                    continue
                missing.append(f"{op_id} {status}")
        if missing:
            raise Failure(f"documented but never exercised: {missing}")
        for op_id, status in NOT_EXERCISED:
            if op_id != "*" and (op_id, status) in self.contract.exercised:
                raise Failure(f"{op_id} {status} is exercised now: drop it from NOT_EXERCISED")

    def mutations(self):
        device = self.contract.samples.get("getDevice")
        if device is None:
            raise Failure("no getDevice answer recorded")
        schema = {"$ref": "#/components/schemas/DeviceDetail"}
        if self.contract.errors(schema, device):
            raise Failure("the real document refuses the recorded device")
        typed = copy.deepcopy(self.contract.doc)
        typed["components"]["schemas"]["DeviceFields"]["properties"]["status"] = {"type": "integer"}
        if not Contract(typed).errors(schema, device):
            raise Failure("a document with Device.status: integer accepts the real answer")
        dropped = copy.deepcopy(self.contract.doc)
        del dropped["components"]["schemas"]["DeviceFields"]["properties"]["handle"]
        dropped["components"]["schemas"]["DeviceFields"]["required"].remove("handle")
        if not Contract(dropped).errors(schema, device):
            raise Failure("a document without Device.handle accepts an answer that has it")
        cert = self.contract.samples["getCertificate"]
        renamed = copy.deepcopy(self.contract.doc)
        renamed["components"]["schemas"]["ReasonName"]["enum"].remove("keyCompromise")
        if not Contract(renamed).errors({"$ref": "#/components/schemas/CertificateDetail"}, cert):
            raise Failure("a reason name outside the enum is accepted")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True, help="the e2eid binary")
    ap.add_argument("--source-dir", default=os.path.join(os.path.dirname(__file__), ".."))
    ap.add_argument("--keep", action="store_true", help="keep the working directory")
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    return Run(args).main()


if __name__ == "__main__":
    sys.exit(main())
