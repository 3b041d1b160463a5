#!/usr/bin/env python3
"""Client side of tests/idp/selftest.sh: drives a running server.js (started with --test-control)
with real HTTP requests, acting as the OAuth client, and browser.py acting as the person.

  selftest.py --issuer http://127.0.0.1:P/realms/NAME [--openssl]

--openssl forces the openssl CLI for DPoP keys and signature checks (the default is the python
`cryptography` package when it is installed). Prints one "ok"/"not ok" line per check and a closing
"N passed, N failed" line; exits 1 when any check failed.
"""

import argparse
import base64
import hashlib
import http.server
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER = os.path.join(HERE, "browser.py")
TIMEOUT = 15

USERS = {
    "alice": ("6c1f6a3e-8b1d-4c55-9b3e-a11ce0000001", "alice-password", ["user"]),
    "bob": ("2b0b2b0b-7c2d-4f6e-8a1b-b0b000000002", "bob-password", ["user"]),
    "admin": ("9ad31a1e-4e7f-4d2a-b6c3-ad3100000003", "admin-password", ["user", "e2eid-admin"]),
}


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64u_json(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


class CheckFailed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise CheckFailed(what)


def equal(actual, expected, what):
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


# ------------------------------------------------------------------------------------------------
# Crypto backends: python `cryptography`, or the openssl CLI.


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der(tag, content):
    return bytes([tag]) + der_len(len(content)) + content


def der_uint(b):
    b = b.lstrip(b"\x00") or b"\x00"
    if b[0] & 0x80:
        b = b"\x00" + b
    return der(0x02, b)


def der_read(data, pos):
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    return tag, data[pos : pos + length], pos + length


def ecdsa_der_to_raw(sig, size=32):
    tag, seq, _ = der_read(sig, 0)
    check(tag == 0x30, "ECDSA signature is a SEQUENCE")
    _, r, pos = der_read(seq, 0)
    _, s, _ = der_read(seq, pos)
    return r.lstrip(b"\x00").rjust(size, b"\x00") + s.lstrip(b"\x00").rjust(size, b"\x00")


class CryptographyBackend:
    name = "python cryptography"

    def __init__(self):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

        self.hashes, self.ec, self.padding, self.rsa, self.utils = hashes, ec, padding, rsa, utils

    def new_ec_key(self):
        key = self.ec.generate_private_key(self.ec.SECP256R1())
        nums = key.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64u(nums.x.to_bytes(32, "big")),
            "y": b64u(nums.y.to_bytes(32, "big")),
        }
        return key, jwk

    def sign_es256(self, key, data):
        sig = key.sign(data, self.ec.ECDSA(self.hashes.SHA256()))
        r, s = self.utils.decode_dss_signature(sig)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify_rs256(self, jwk, data, sig):
        from cryptography.exceptions import InvalidSignature

        n = int.from_bytes(b64u_decode(jwk["n"]), "big")
        e = int.from_bytes(b64u_decode(jwk["e"]), "big")
        pub = self.rsa.RSAPublicNumbers(e, n).public_key()
        try:
            pub.verify(sig, data, self.padding.PKCS1v15(), self.hashes.SHA256())
            return True
        except InvalidSignature:
            return False


class OpensslBackend:
    name = "openssl CLI"

    def __init__(self, workdir):
        self.dir = workdir
        self.counter = 0

    def path(self, suffix):
        self.counter += 1
        return os.path.join(self.dir, f"f{self.counter}{suffix}")

    def run(self, *args, data=None):
        proc = subprocess.run(["openssl", *args], input=data, capture_output=True, check=False)
        return proc

    def new_ec_key(self):
        key = self.path(".pem")
        p = self.run(
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key
        )
        check(p.returncode == 0, f"openssl genpkey: {p.stderr.decode()}")
        p = self.run("pkey", "-in", key, "-pubout", "-outform", "DER")
        check(p.returncode == 0, f"openssl pkey: {p.stderr.decode()}")
        point = p.stdout[-65:]
        check(point[0] == 4, "uncompressed EC point")
        jwk = {"kty": "EC", "crv": "P-256", "x": b64u(point[1:33]), "y": b64u(point[33:])}
        return key, jwk

    def sign_es256(self, key, data):
        p = self.run("dgst", "-sha256", "-sign", key, data=data)
        check(p.returncode == 0, f"openssl dgst -sign: {p.stderr.decode()}")
        return ecdsa_der_to_raw(p.stdout)

    def verify_rs256(self, jwk, data, sig):
        rsa_key = der(0x30, der_uint(b64u_decode(jwk["n"])) + der_uint(b64u_decode(jwk["e"])))
        alg = der(0x30, der(0x06, bytes.fromhex("2a864886f70d010101")) + der(0x05, b""))
        spki = der(0x30, alg + der(0x03, b"\x00" + rsa_key))
        pem = self.path(".pem")
        sig_file = self.path(".sig")
        with open(pem, "w") as f:
            f.write("-----BEGIN PUBLIC KEY-----\n")
            f.write(base64.encodebytes(spki).decode())
            f.write("-----END PUBLIC KEY-----\n")
        with open(sig_file, "wb") as f:
            f.write(sig)
        p = self.run("dgst", "-sha256", "-verify", pem, "-signature", sig_file, data=data)
        return p.returncode == 0


# ------------------------------------------------------------------------------------------------
# OAuth client helpers


def pkce_pair():
    verifier = b64u(secrets.token_bytes(48))
    challenge = b64u(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge


def jwk_thumbprint(jwk):
    members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    return b64u(
        hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    )


def decode_jwt(token):
    parts = token.split(".")
    check(len(parts) == 3, "token is a compact JWS")
    header = json.loads(b64u_decode(parts[0]))
    payload = json.loads(b64u_decode(parts[1]))
    return header, payload, f"{parts[0]}.{parts[1]}".encode(), b64u_decode(parts[2])


class DpopKey:
    def __init__(self, backend):
        self.backend = backend
        self.key, self.jwk = backend.new_ec_key()
        self.jkt = jwk_thumbprint(self.jwk)

    def proof(self, method, url, access_token=None):
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}
        payload = {"jti": str(uuid.uuid4()), "htm": method, "htu": url, "iat": int(time.time())}
        if access_token:
            payload["ath"] = b64u(hashlib.sha256(access_token.encode()).digest())
        signing_input = f"{b64u_json(header)}.{b64u_json(payload)}"
        sig = self.backend.sign_es256(self.key, signing_input.encode())
        return f"{signing_input}.{b64u(sig)}"


class Callback:
    """A loopback listener like the one an RFC 8252 native app opens for the redirect."""

    def __init__(self):
        self.received = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                parsed = urllib.parse.urlsplit(self.path)
                if parsed.path != "/callback":
                    self.send_error(404)
                    return
                outer.received.append(dict(urllib.parse.parse_qsl(parsed.query)))
                body = b"login complete, you can close this window\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.redirect_uri = f"http://127.0.0.1:{self.port}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run_browser(mode, url, user, password, *extra):
    return subprocess.run(
        [
            sys.executable,
            BROWSER,
            mode,
            "--url",
            url,
            "--user",
            user,
            "--password",
            password,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Client:
    def __init__(self, issuer, backend):
        self.issuer = issuer
        self.backend = backend
        self.http = requests.Session()
        self.config = None
        self.jwks = None

    def discover(self):
        r = self.http.get(f"{self.issuer}/.well-known/openid-configuration", timeout=TIMEOUT)
        equal(r.status_code, 200, "discovery status")
        self.config = r.json()
        return self.config

    def fetch_jwks(self):
        r = self.http.get(self.config["jwks_uri"], timeout=TIMEOUT)
        equal(r.status_code, 200, "JWKS status")
        self.jwks = r.json()
        return r

    def verify_jwt(self, token, typ=None):
        """Checks RS256 + kid against the current JWKS; returns (header, claims)."""
        header, payload, signing_input, sig = decode_jwt(token)
        equal(header.get("alg"), "RS256", "JWS alg")
        check(isinstance(header.get("kid"), str) and header["kid"], "JWS header has a kid")
        if typ:
            equal(header.get("typ"), typ, "JWS typ")
        self.fetch_jwks()
        keys = [k for k in self.jwks["keys"] if k.get("kid") == header["kid"]]
        equal(len(keys), 1, f"JWKS keys with kid {header['kid']}")
        check(self.backend.verify_rs256(keys[0], signing_input, sig), "RS256 signature verifies")
        # A tampered payload must not verify (the check can fail).
        check(
            not self.backend.verify_rs256(keys[0], signing_input + b"x", sig),
            "tampered signature rejected",
        )
        equal(payload.get("iss"), self.issuer, "iss")
        now = time.time()
        check(payload.get("exp", 0) > now and payload.get("iat", now + 999) <= now + 5, "exp/iat")
        return header, payload

    def auth_url(
        self,
        client_id,
        redirect_uri,
        challenge,
        state,
        nonce,
        claims=None,
        scope="openid profile email",
    ):
        params = {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if claims is not None:
            params["claims"] = json.dumps(claims, separators=(",", ":"))
        return f"{self.config['authorization_endpoint']}?{urllib.parse.urlencode(params)}"

    def token(self, form, dpop=None, access_token=None):
        headers = {}
        if dpop:
            headers["DPoP"] = dpop.proof("POST", self.config["token_endpoint"], access_token)
        return self.http.post(
            self.config["token_endpoint"], data=form, headers=headers, timeout=TIMEOUT
        )

    def login_code_flow(
        self, user, password, client_id="e2eid-device", claims=None, expect_fail=False
    ):
        """Runs browser.py with a fresh loopback listener.

        Returns (code, verifier, redirect_uri, nonce), or browser.py's result when expect_fail.
        """
        cb = Callback()
        try:
            verifier, challenge = pkce_pair()
            state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
            url = self.auth_url(client_id, cb.redirect_uri, challenge, state, nonce, claims)
            proc = run_browser("login", url, user, password)
            if expect_fail:
                check(
                    proc.returncode != 0, f"browser.py login {user} fails (got {proc.returncode})"
                )
                equal(cb.received, [], "nothing reached the redirect_uri")
                return proc
            check(
                proc.returncode == 0,
                f"browser.py login {user}: rc={proc.returncode} {proc.stderr.strip()}",
            )
            check(
                "callback status 200" in proc.stdout,
                f"browser.py printed the status: {proc.stdout!r}",
            )
            equal(len(cb.received), 1, "callbacks received")
            got = cb.received[0]
            equal(got.get("state"), state, "state echoed")
            equal(got.get("iss"), self.issuer, "iss in the authorization response")
            check(got.get("code"), "code in the redirect")
            return got["code"], verifier, cb.redirect_uri, nonce
        finally:
            cb.close()

    def exchange(self, code, verifier, redirect_uri, client_id="e2eid-device", dpop=None):
        return self.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": redirect_uri,
                "client_id": client_id,
            },
            dpop,
        )

    def refresh(self, refresh_token, client_id="e2eid-device", dpop=None):
        return self.token(
            {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id},
            dpop,
        )


def check_access_token(client, token, user, client_id, jkt=None):
    header, at = client.verify_jwt(token, typ="at+jwt")
    sub, _, roles = USERS[user]
    equal(at.get("sub"), sub, "access token sub")
    equal(at.get("aud"), "account", "access token aud")
    equal(at.get("azp"), client_id, "access token azp")
    equal(at.get("typ"), "Bearer", "access token typ claim")
    equal(at.get("preferred_username"), user, "access token preferred_username")
    equal(at.get("email"), f"{user}@example.com", "access token email")
    equal(at.get("email_verified"), True, "access token email_verified")
    equal(at.get("realm_access"), {"roles": roles}, "access token realm_access")
    check(isinstance(at.get("groups"), list) and at["groups"], "access token groups")
    check("openid" in at.get("scope", "").split(), "access token scope has openid")
    check(at.get("jti") and at.get("name"), "access token jti and name")
    if jkt is None:
        check("cnf" not in at, "unbound access token has no cnf")
    else:
        equal(at.get("cnf"), {"jkt": jkt}, "access token cnf.jkt")
    return header, at


# ------------------------------------------------------------------------------------------------
# The demonstration steps


class SelfTest:
    def __init__(self, issuer, backend):
        self.issuer = issuer
        self.c = Client(issuer, backend)
        self.backend = backend
        self.origin = issuer.split("/realms/")[0]
        self.passed = 0
        self.failed = 0

    def step(self, name, fn):
        try:
            fn()
        except Exception as e:  # report and go on with the next step
            self.failed += 1
            print(f"not ok - {name}: {e}")
            if not isinstance(e, CheckFailed):
                print(
                    "".join(f"#   {line}\n" for line in traceback.format_exc().splitlines()), end=""
                )
        else:
            self.passed += 1
            print(f"ok - {name}")
        sys.stdout.flush()

    def dpop_tokens(self, user, password):
        """Code flow with a DPoP proof at the token endpoint; returns (dpop key, token response)."""
        dpop = DpopKey(self.backend)
        code, verifier, redirect_uri, _ = self.c.login_code_flow(user, password)
        r = self.c.exchange(code, verifier, redirect_uri, dpop=dpop)
        equal(r.status_code, 200, f"DPoP token status ({r.text})")
        return dpop, r.json()

    def control(self, method, path):
        return requests.request(method, f"{self.origin}/test/{path}", timeout=TIMEOUT)

    # 1
    def discovery(self):
        cfg = self.c.discover()
        equal(cfg["issuer"], self.issuer, "issuer")
        oidc = f"{self.issuer}/protocol/openid-connect"
        expected = {
            "authorization_endpoint": f"{oidc}/auth",
            "token_endpoint": f"{oidc}/token",
            "jwks_uri": f"{oidc}/certs",
            "userinfo_endpoint": f"{oidc}/userinfo",
            "end_session_endpoint": f"{oidc}/logout",
            "device_authorization_endpoint": f"{oidc}/auth/device",
            "revocation_endpoint": f"{oidc}/revoke",
        }
        for key, value in expected.items():
            equal(cfg.get(key), value, key)
        check(cfg.get("claims_parameter_supported") is True, "claims parameter supported")
        check("RS256" in cfg.get("id_token_signing_alg_values_supported", []), "RS256 ID tokens")
        check("S256" in cfg.get("code_challenge_methods_supported", []), "PKCE S256")
        check("ES256" in cfg.get("dpop_signing_alg_values_supported", []), "DPoP ES256")
        r = self.c.fetch_jwks()
        check("max-age=60" in r.headers.get("Cache-Control", ""), "JWKS Cache-Control max-age=60")
        keys = r.json()["keys"]
        check(
            keys and all(k["kty"] == "RSA" and k["alg"] == "RS256" and k["kid"] for k in keys),
            "RS256 keys with kid",
        )
        check(all("d" not in k for k in keys), "JWKS holds no private parts")
        users = self.control("GET", "users").json()
        for login, (sub, _, roles) in USERS.items():
            match = [u for u in users if u["login"] == login]
            check(
                match and match[0]["id"] == sub and match[0]["roles"] == roles,
                f"/test/users lists {login}",
            )
            check(uuid.UUID(sub).hex and sub == sub.lower(), "sub is a lowercase UUID")

    # 2
    def code_flow(self):
        keyauth = f"{secrets.token_urlsafe(32)}.{secrets.token_urlsafe(32)}"
        acme_aud = "https://acme.example.com:8443/acme/wire/challenge/aBc/dEf"
        claims = {
            "id_token": {
                "keyauth": {"essential": True, "value": keyauth},
                "acme_aud": {"essential": True, "value": acme_aud},
            }
        }
        code, verifier, redirect_uri, nonce = self.c.login_code_flow(
            "alice", "alice-password", claims=claims
        )
        # A wrong PKCE verifier is refused (and the check can fail).
        r = self.c.exchange(code, pkce_pair()[0], redirect_uri)
        equal(r.status_code, 400, "token status with a wrong code_verifier")
        code, verifier, redirect_uri, nonce = self.c.login_code_flow(
            "alice", "alice-password", claims=claims
        )
        r = self.c.exchange(code, verifier, redirect_uri)
        equal(r.status_code, 200, f"token status ({r.text})")
        tokens = r.json()
        equal(tokens.get("token_type"), "Bearer", "token_type")
        check(tokens.get("refresh_token"), "refresh token issued")
        header, idt = self.c.verify_jwt(tokens["id_token"])
        equal(idt.get("keyauth"), keyauth, "ID token keyauth")
        equal(idt.get("acme_aud"), acme_aud, "ID token acme_aud")
        equal(idt.get("aud"), "e2eid-device", "ID token aud")
        equal(idt.get("nonce"), nonce, "ID token nonce")
        equal(idt.get("sub"), USERS["alice"][0], "ID token sub")
        equal(idt.get("preferred_username"), "alice", "ID token preferred_username")
        equal(idt.get("name"), "Alice Smith", "ID token name")
        equal(idt.get("email"), "alice@example.com", "ID token email")
        equal(idt.get("email_verified"), True, "ID token email_verified")
        equal(idt.get("realm_access"), {"roles": ["user"]}, "ID token realm_access")
        check(isinstance(idt.get("groups"), list), "ID token groups")
        check_access_token(self.c, tokens["access_token"], "alice", "e2eid-device")
        # The code is single-use.
        r = self.c.exchange(code, verifier, redirect_uri)
        equal(r.status_code, 400, "second use of the code")
        # Userinfo accepts the JWT access token.
        r = requests.get(
            self.c.config["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
            timeout=TIMEOUT,
        )
        equal(r.status_code, 200, f"userinfo status ({r.text})")
        equal(r.json().get("sub"), USERS["alice"][0], "userinfo sub")
        # Without the claims parameter there are no keyauth/acme_aud claims; admin via the admin
        # client has the admin role; other-client tokens carry their own azp/aud.
        code, verifier, redirect_uri, _ = self.c.login_code_flow(
            "admin", "admin-password", client_id="e2eid-admin-cli"
        )
        r = self.c.exchange(code, verifier, redirect_uri, client_id="e2eid-admin-cli")
        equal(r.status_code, 200, f"admin token status ({r.text})")
        _, idt2 = self.c.verify_jwt(r.json()["id_token"])
        check(
            "keyauth" not in idt2 and "acme_aud" not in idt2,
            "no keyauth without the claims parameter",
        )
        check_access_token(self.c, r.json()["access_token"], "admin", "e2eid-admin-cli")
        code, verifier, redirect_uri, _ = self.c.login_code_flow(
            "bob", "bob-password", client_id="other-client"
        )
        r = self.c.exchange(code, verifier, redirect_uri, client_id="other-client")
        equal(r.status_code, 200, f"other-client token status ({r.text})")
        _, idt3 = self.c.verify_jwt(r.json()["id_token"])
        equal(idt3.get("aud"), "other-client", "other-client ID token aud")
        # A redirect URI that is not the loopback /callback is refused by the provider itself.
        verifier, challenge = pkce_pair()
        bad = self.c.auth_url("e2eid-device", "http://127.0.0.1:9/elsewhere", challenge, "s", "n")
        r = requests.get(bad, allow_redirects=False, timeout=TIMEOUT)
        equal(r.status_code, 400, "foreign redirect_uri refused")

    # 3
    def dpop_flow(self):
        dpop, tokens = self.dpop_tokens("alice", "alice-password")
        equal(tokens.get("token_type"), "DPoP", "token_type")
        check_access_token(self.c, tokens["access_token"], "alice", "e2eid-device", jkt=dpop.jkt)
        # Refresh without a proof: refused (the refresh token is bound to the key).
        r = self.c.refresh(tokens["refresh_token"])
        equal(r.status_code, 400, "refresh without DPoP proof")
        equal(r.json().get("error"), "invalid_grant", "refresh without proof error")
        # Refresh with a proof from another key: refused.
        r = self.c.refresh(tokens["refresh_token"], dpop=DpopKey(self.backend))
        equal(r.status_code, 400, "refresh with a foreign DPoP key")
        # With the right proof: a new JWT access token, still bound, and a new refresh token.
        r = self.c.refresh(tokens["refresh_token"], dpop=dpop)
        equal(r.status_code, 200, f"DPoP refresh status ({r.text})")
        refreshed = r.json()
        _, at = check_access_token(
            self.c, refreshed["access_token"], "alice", "e2eid-device", jkt=dpop.jkt
        )
        check(refreshed["access_token"] != tokens["access_token"], "new access token")
        check(
            refreshed.get("refresh_token")
            and refreshed["refresh_token"] != tokens["refresh_token"],
            "refresh token rotated",
        )
        # Userinfo needs the DPoP scheme and a proof bound to the token.
        url = self.c.config["userinfo_endpoint"]
        r = requests.get(
            url, headers={"Authorization": f"Bearer {refreshed['access_token']}"}, timeout=TIMEOUT
        )
        equal(r.status_code, 401, "userinfo with a bound token as Bearer")
        r = requests.get(
            url,
            headers={
                "Authorization": f"DPoP {refreshed['access_token']}",
                "DPoP": dpop.proof("GET", url, refreshed["access_token"]),
            },
            timeout=TIMEOUT,
        )
        equal(r.status_code, 200, f"userinfo with DPoP ({r.text})")

    # 4
    def device_flow(self):
        r = requests.post(
            self.c.config["device_authorization_endpoint"],
            data={"client_id": "e2eid-device", "scope": "openid profile email"},
            timeout=TIMEOUT,
        )
        equal(r.status_code, 200, f"device authorization status ({r.text})")
        dev = r.json()
        equal(dev.get("verification_uri"), f"{self.issuer}/device", "verification_uri")
        check(
            dev.get("verification_uri_complete", "").startswith(f"{self.issuer}/device?user_code="),
            "verification_uri_complete",
        )
        form = {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": dev["device_code"],
            "client_id": "e2eid-device",
        }
        r = self.c.token(form)
        equal(r.json().get("error"), "authorization_pending", "before the user confirms")
        proc = run_browser("device", dev["verification_uri_complete"], "bob", "bob-password")
        check(
            proc.returncode == 0, f"browser.py device: rc={proc.returncode} {proc.stderr.strip()}"
        )
        check(
            "device authorization complete" in proc.stdout,
            f"browser.py device output {proc.stdout!r}",
        )
        dpop = DpopKey(self.backend)
        r = self.c.token(form, dpop=dpop)
        equal(r.status_code, 200, f"device token status ({r.text})")
        tokens = r.json()
        check_access_token(self.c, tokens["access_token"], "bob", "e2eid-device", jkt=dpop.jkt)
        _, idt = self.c.verify_jwt(tokens["id_token"])
        equal(idt.get("sub"), USERS["bob"][0], "device ID token sub")
        check(tokens.get("refresh_token"), "device grant refresh token")
        r = self.c.token(form)
        equal(r.status_code, 400, "device code is single-use")
        # The user-code page: typing a wrong code fails, typing the right one works.
        r = requests.post(
            self.c.config["device_authorization_endpoint"],
            data={"client_id": "e2eid-admin-cli", "scope": "openid"},
            timeout=TIMEOUT,
        )
        equal(r.status_code, 200, f"second device authorization ({r.text})")
        dev = r.json()
        proc = run_browser(
            "device", dev["verification_uri"], "admin", "admin-password", "--user-code", "BCDF-GHJK"
        )
        check(
            proc.returncode != 0 and "incorrect" in proc.stderr,
            f"wrong user code fails: {proc.stderr.strip()}",
        )
        proc = run_browser(
            "device",
            dev["verification_uri"],
            "admin",
            "admin-password",
            "--user-code",
            dev["user_code"],
        )
        check(proc.returncode == 0, f"typed user code: rc={proc.returncode} {proc.stderr.strip()}")
        r = self.c.token(
            {**form, "device_code": dev["device_code"], "client_id": "e2eid-admin-cli"}
        )
        equal(r.status_code, 200, f"admin device token ({r.text})")
        check_access_token(self.c, r.json()["access_token"], "admin", "e2eid-admin-cli")

    # 5
    def wrong_password_and_rotation(self):
        proc = self.c.login_code_flow("alice", "not-the-password", expect_fail=True)
        check(
            "Invalid username or password" in proc.stderr,
            f"wrong password message: {proc.stderr.strip()}",
        )
        proc = self.c.login_code_flow("mallory", "alice-password", expect_fail=True)
        check("Invalid username or password" in proc.stderr, "unknown user message")

        code, verifier, redirect_uri, _ = self.c.login_code_flow("alice", "alice-password")
        r = self.c.exchange(code, verifier, redirect_uri)
        equal(r.status_code, 200, f"token before rotation ({r.text})")
        before = r.json()
        old_kid = self.c.verify_jwt(before["id_token"])[0]["kid"]
        r = self.control("POST", "rotate-keys")
        equal(r.status_code, 200, "rotate-keys status")
        new_kid = r.json()["kid"]
        check(new_kid != old_kid, "rotation made a new kid")
        self.c.fetch_jwks()
        kids = [k["kid"] for k in self.c.jwks["keys"]]
        check(new_kid in kids and old_kid in kids, f"JWKS holds the new and the old key: {kids}")
        # Tokens issued before the rotation still verify against the JWKS.
        self.c.verify_jwt(before["id_token"])
        self.c.verify_jwt(before["access_token"])
        code, verifier, redirect_uri, _ = self.c.login_code_flow("alice", "alice-password")
        r = self.c.exchange(code, verifier, redirect_uri)
        equal(r.status_code, 200, f"token after rotation ({r.text})")
        tokens = r.json()
        equal(
            self.c.verify_jwt(tokens["id_token"])[0]["kid"], new_kid, "ID token kid after rotation"
        )
        equal(
            self.c.verify_jwt(tokens["access_token"])[0]["kid"],
            new_kid,
            "access token kid after rotation",
        )
        # drop_old=1 leaves only the newest key.
        r = self.control("POST", "rotate-keys?drop_old=1")
        equal(r.status_code, 200, "rotate-keys?drop_old=1 status")
        newest = r.json()["kid"]
        self.c.fetch_jwks()
        equal([k["kid"] for k in self.c.jwks["keys"]], [newest], "JWKS after drop_old")

    # 6
    def disable_enable(self):
        dpop, tokens = self.dpop_tokens("alice", "alice-password")
        refresh_token = tokens["refresh_token"]
        r = self.control("POST", "users/alice/disable")
        equal(r.status_code, 200, "disable status")
        equal(r.json().get("enabled"), False, "alice disabled")
        r = self.c.refresh(refresh_token, dpop=dpop)
        equal(r.status_code, 400, "refresh for a disabled user")
        equal(r.json().get("error"), "invalid_grant", "refresh error for a disabled user")
        proc = self.c.login_code_flow("alice", "alice-password", expect_fail=True)
        check("disabled" in proc.stderr, f"disabled login message: {proc.stderr.strip()}")
        # Other users are unaffected.
        code, verifier, redirect_uri, _ = self.c.login_code_flow("bob", "bob-password")
        equal(self.c.exchange(code, verifier, redirect_uri).status_code, 200, "bob still logs in")

        r = self.control("POST", "users/alice/enable")
        equal(r.status_code, 200, "enable status")
        r = self.c.refresh(refresh_token, dpop=dpop)
        equal(r.status_code, 200, f"refresh after enable ({r.text})")
        check_access_token(self.c, r.json()["access_token"], "alice", "e2eid-device", jkt=dpop.jkt)
        code, verifier, redirect_uri, _ = self.c.login_code_flow("alice", "alice-password")
        equal(self.c.exchange(code, verifier, redirect_uri).status_code, 200, "alice logs in again")
        equal(self.control("POST", "users/nobody/disable").status_code, 404, "unknown user")

    def run(self):
        print(f"# issuer {self.issuer}, crypto: {self.backend.name}")
        self.step("1 discovery: issuer and Keycloak endpoint paths, JWKS", self.discovery)
        self.step(
            "2 code + PKCE via browser.py, claims parameter, JWT access token", self.code_flow
        )
        self.step("3 DPoP-bound tokens, refresh needs the proof", self.dpop_flow)
        self.step("4 device grant for bob via browser.py device", self.device_flow)
        self.step("5 wrong password fails; key rotation", self.wrong_password_and_rotation)
        self.step("6 disabled user: refresh and login fail; enable restores", self.disable_enable)
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--openssl", action="store_true", help="use the openssl CLI, not cryptography")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        backend = None
        if not args.openssl:
            try:
                backend = CryptographyBackend()
            except ImportError:
                backend = None
        if backend is None:
            backend = OpensslBackend(tmp)
        return SelfTest(args.issuer.rstrip("/"), backend).run()


if __name__ == "__main__":
    sys.exit(main())
