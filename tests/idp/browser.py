#!/usr/bin/env python3
"""A scripted browser for the e2eid tests: logs a user in through an OpenID provider's own pages.

  browser.py login  --url AUTH_URL --user alice --password alice-password
  browser.py device --url VERIFICATION_URI_COMPLETE --user bob --password bob-password

It behaves like a person with a browser: keeps cookies, follows redirects, reads the HTML forms
(stdlib html.parser), fills in the login form (fields "login"/"password"; "username" is accepted
too), confirms consent and device-code pages, and submits auto-posting forms.

login:  ends at the redirect to the client's redirect_uri (taken from AUTH_URL; without one, the
        first redirect that leaves the provider's origin). That last request is performed too
        (that is how the code reaches the waiting program) and its status is printed as
        "callback status N". An error in the redirect (error=...) is reported and exits 1.
device: ends at the provider's success page and prints "device authorization complete".

Exit status: 0 on success, 1 when the login or the flow failed (message on stderr, e.g. a wrong
password), 2 on bad usage.
"""

import argparse
import html.parser
import sys
import urllib.parse

import requests

MAX_STEPS = 40
DECLINE_WORDS = {"abort", "cancel", "deny", "no", "reject"}
USER_FIELDS = ("login", "username", "email")


class FlowError(Exception):
    """The flow cannot go on (wrong password, error page, unexpected response)."""


class Form:
    def __init__(self, attrs):
        self.id = attrs.get("id")
        self.action = attrs.get("action") or ""
        self.method = (attrs.get("method") or "get").lower()
        self.fields = []  # (name, value, type) of inputs that are always submitted
        self.submits = []  # (name, value) of submit buttons/inputs belonging to the form


class PageParser(html.parser.HTMLParser):
    """Collects forms, submit buttons (also those linked with form="id"), title and error text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self.orphan_submits = []  # (form id, name, value) of buttons outside a form
        self.title = ""
        self.errors = []
        self.text = []
        self._form = None
        self._button = None  # [form, form id, name, value, text]
        self._in_title = False
        self._error_depth = 0
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        classes = a.get("class", "").split()
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "title":
            self._in_title = True
        if self._error_depth:
            self._error_depth += 1
        elif (
            "error" in classes
            or "red" in classes
            or a.get("id")
            in (
                "input-error",
                "error-summary",
            )
        ):
            self._error_depth = 1
            self.errors.append("")
        if tag == "form":
            self._form = Form(a)
            self.forms.append(self._form)
        elif tag == "input":
            itype = a.get("type", "text").lower()
            name = a.get("name")
            if itype in ("submit", "image"):
                self._add_submit(a.get("form"), name, a.get("value", ""))
            elif itype in ("checkbox", "radio"):
                if name and "checked" in a and self._form is not None:
                    self._form.fields.append((name, a.get("value", "on"), itype))
            elif name and self._form is not None:
                self._form.fields.append((name, a.get("value", ""), itype))
        elif tag == "button":
            if a.get("type", "submit").lower() == "submit":
                self._button = [a.get("form"), a.get("name"), a.get("value", "")]

    def _add_submit(self, form_attr, name, value):
        if form_attr:
            self.orphan_submits.append((form_attr, name, value))
        elif self._form is not None:
            self._form.submits.append((name, value))

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        if tag == "title":
            self._in_title = False
        if self._error_depth:
            self._error_depth -= 1
        if tag == "form":
            self._form = None
        elif tag == "button" and self._button is not None:
            self._add_submit(*self._button)
            self._button = None

    def handle_data(self, data):
        if self._skip:
            return
        if self._in_title:
            self.title += data
        if self._error_depth:
            self.errors[-1] += data
        if data.strip():
            self.text.append(data.strip())

    def submits_for(self, form):
        out = list(form.submits)
        if form.id:
            out += [(n, v) for f, n, v in self.orphan_submits if f == form.id]
        return out

    def summary(self):
        errors = [" ".join(e.split()) for e in self.errors if e.strip()]
        if errors:
            return "; ".join(errors)
        return " ".join(" ".join(self.text).split())[:300]


def parse(text):
    parser = PageParser()
    parser.feed(text)
    parser.close()
    return parser


def origin(url):
    p = urllib.parse.urlsplit(url)
    return (p.scheme, p.hostname, p.port or (443 if p.scheme == "https" else 80))


def without_query(url):
    p = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((p.scheme, p.netloc, p.path, "", ""))


class Browser:
    def __init__(self, start_url, user, password, timeout, verbose, user_code=None):
        self.start_url = start_url
        self.user = user
        self.password = password
        self.user_code = user_code
        self.timeout = timeout
        self.verbose = verbose
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "e2eid-test-browser/1.0"
        self.idp_origin = origin(start_url)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(start_url).query)
        self.redirect_uri = query.get("redirect_uri", [None])[0]
        self.credentials_sent = False

    def log(self, msg):
        if self.verbose:
            print(f"browser: {msg}", file=sys.stderr)

    def is_client_redirect(self, url):
        if self.redirect_uri:
            return without_query(url) == without_query(self.redirect_uri)
        return origin(url) != self.idp_origin

    def request(self, method, url, data=None):
        self.log(f"{method} {without_query(url)}")
        try:
            return self.session.request(
                method, url, data=data, allow_redirects=False, timeout=self.timeout
            )
        except requests.RequestException as e:
            raise FlowError(f"{method} {without_query(url)} failed: {e}") from e

    def deliver(self, method, url, data=None):
        """Performs the final request to the client's redirect_uri (no provider cookies)."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        if data:
            query.update({k: [v] for k, v in data})
        self.log(f"{method} {without_query(url)} (client redirect_uri)")
        try:
            resp = requests.request(
                method, url, data=data, allow_redirects=False, timeout=self.timeout
            )
        except requests.RequestException as e:
            raise FlowError(f"delivering the response to {without_query(url)} failed: {e}") from e
        print(f"callback status {resp.status_code}")
        if "error" in query:
            desc = query.get("error_description", [""])[0]
            raise FlowError(f"authorization failed: {query['error'][0]} {desc}".rstrip())
        if "code" not in query:
            raise FlowError("the redirect to the client carries no code")
        return resp

    def fill(self, page, form):
        """Returns the form data to submit, or raises when the login failed."""
        names = {name for name, _, _ in form.fields}
        data = []
        has_password = any(t == "password" for _, _, t in form.fields)
        if has_password:
            if self.credentials_sent:
                raise FlowError(f"login failed for {self.user}: {page.summary()}")
            self.credentials_sent = True
        for name, value, itype in form.fields:
            if itype == "password":
                value = self.password
            elif has_password and name in USER_FIELDS:
                value = self.user
            elif name == "user_code" and not value:
                if not self.user_code:
                    raise FlowError(
                        "the page asks for the user code: pass --user-code, or use "
                        "verification_uri_complete as --url"
                    )
                value = self.user_code
            data.append((name, value))
        if has_password and not names.intersection(USER_FIELDS):
            raise FlowError("login form has no user name field")
        submits = page.submits_for(form)
        chosen = None
        for name, value in submits:
            words = {(name or "").lower(), (value or "").lower()}
            if not words & DECLINE_WORDS:
                chosen = (name, value)
                break
        if submits and chosen is None:
            raise FlowError(f"no accepting submit button in form {form.id or form.action}")
        if chosen and chosen[0]:
            data.append(chosen)
        return data

    def run(self, mode):
        method, url, data = "GET", self.start_url, None
        for _ in range(MAX_STEPS):
            if mode == "login" and self.is_client_redirect(url):
                return self.deliver(method, url, data)
            resp = self.request(method, url, data)
            if resp.status_code in (301, 302, 303, 307, 308):
                location = resp.headers.get("Location")
                if not location:
                    raise FlowError(f"redirect without Location from {without_query(url)}")
                next_url = urllib.parse.urljoin(url, location)
                if resp.status_code in (307, 308):
                    url = next_url
                else:
                    method, url, data = "GET", next_url, None
                continue
            ctype = resp.headers.get("Content-Type", "")
            page = parse(resp.text) if "html" in ctype else None
            if resp.status_code != 200:
                detail = page.summary() if page else resp.text[:300]
                raise FlowError(f"HTTP {resp.status_code} from {without_query(url)}: {detail}")
            if page is None:
                raise FlowError(f"unexpected {ctype or 'content'} from {without_query(url)}")
            forms = [f for f in page.forms if f.method == "post" or f.fields]
            has_login_form = any(t == "password" for f in forms for _, _, t in f.fields)
            if (
                page.errors
                and any(e.strip() for e in page.errors)
                and not (has_login_form and not self.credentials_sent)
            ):
                what = f"login failed for {self.user}" if has_login_form else page.title.strip()
                raise FlowError(f"{what}: {page.summary()}")
            if not forms:
                if mode == "device" and "success" in (page.title + " " + page.summary()).lower():
                    print("device authorization complete")
                    return resp
                raise FlowError(f"stuck at {without_query(url)}: {page.title}: {page.summary()}")
            # Prefer the login form, then the first one.
            form = next(
                (f for f in forms if any(t == "password" for _, _, t in f.fields)), forms[0]
            )
            data = self.fill(page, form)
            url = urllib.parse.urljoin(url, form.action) if form.action else url
            method = "POST" if form.method == "post" else "GET"
            if method == "GET":
                p = urllib.parse.urlsplit(url)
                url = urllib.parse.urlunsplit(
                    (p.scheme, p.netloc, p.path, urllib.parse.urlencode(data), "")
                )
                data = None
        raise FlowError(f"gave up after {MAX_STEPS} steps")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["login", "device"])
    ap.add_argument("--url", required=True, help="authorization URL or verification_uri_complete")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--user-code", help="user code to type in when --url has none (device)")
    ap.add_argument("--timeout", type=float, default=15.0, help="seconds per request")
    ap.add_argument("-v", "--verbose", action="store_true", help="trace requests on stderr")
    args = ap.parse_args()
    browser = Browser(
        args.url, args.user, args.password, args.timeout, args.verbose, args.user_code
    )
    try:
        browser.run(args.mode)
    except FlowError as e:
        print(f"browser.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
