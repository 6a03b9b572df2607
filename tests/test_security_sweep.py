"""Security sweep, part 3 (issue 13): OAuth state, API key brute force, SSRF through hook URLs (at
subscribe time and at send time), oversized and nested bodies, header injection, and what a hook URL
error reveals. Tenant isolation is part 1 (test_tenant_isolation.py).

Where an existing test already covers a point fully it is named here, not repeated:

* OAuth: a forged/unknown state, an expired one and a replay after success (test_google_connect.py
  test_callback_with_forged_state_…, …_expired_state_…, …_replayed_state_…); a callback from another
  browser, without the binder cookie or with a wrong one (…_from_another_browser_is_refused_and_stores_nothing,
  …_with_a_wrong_binder_is_refused).
* Key brute force: 429 in the envelope with Retry-After, and another account from the same address
  not locked out (test_zapier_hooks.py test_failed_key_checks_are_rate_limited_per_address_and_account).
* Redirects to another path of the receiver are not followed (test_webhook_delivery.py
  test_redirects_are_not_followed); an existing loopback subscription is refused at send time by the
  real worker (…test_send_time_checks_refuse_loopback_even_for_an_existing_subscription).
* 413 on a probe route (test_errors.py test_oversized_body_is_413_envelope); nesting on /appointments
  (test_input_sanity.py test_a_deeply_nested_body_is_a_400_not_a_500).

No test here reaches beyond loopback: every socket connect is recorded, and one to any other address is
refused by a tripwire (`connections`), so a check that failed shows up as a recorded attempt, not as
traffic.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import subprocess
import sys
import time
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import text

from callnfy_integrations import create_app
from callnfy_integrations.config import ConfigError, load_config
from callnfy_integrations.extensions import db
from callnfy_integrations.google.oauth import BINDER_COOKIE, CALLBACK_PATH
from callnfy_integrations.zapier.sender import Request, Sender
from tests.factories import appointment_body
from tests.google_fixtures import GoogleUser
from tests.loopback import serve_wsgi
from tests.support import REPO_ROOT
from tests.zapier_fixtures import Account, hooks_config

GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


# -- harness ----------------------------------------------------------------------------------------

class Connections:
    """Socket connects made during the test; `blocked` are those the tripwire refused (not loopback)."""

    def __init__(self):
        self.made: list = []
        self.blocked: list = []

    def to_port(self, port: int) -> list:
        return [address for address in self.made if isinstance(address, tuple) and address[1] == port]


def _loopback(host: str) -> bool:
    address = ipaddress.ip_address(host.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@pytest.fixture(autouse=True)
def connections(monkeypatch):
    record = Connections()
    original = socket.socket.connect

    def connect(sock, address):
        record.made.append(address)
        if isinstance(address, tuple) and not _loopback(address[0]):
            record.blocked.append(address)
            raise OSError(101, "test tripwire: only loopback may be reached")
        return original(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield record
    assert record.blocked == [], "something tried to reach beyond loopback"


def snapshot() -> str:
    """Every row of every table: any write shows here."""
    db.session.expire_all()

    def plain(value):
        return bytes(value).hex() if isinstance(value, memoryview) else str(value)

    return json.dumps({table.name: [[plain(v) for v in row] for row in db.session.execute(
        text(f'SELECT * FROM "{table.name}" ORDER BY 1'))] for table in db.metadata.sorted_tables}, sort_keys=True)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.json
    assert body["success"] is False and body["error"]["code"] == code, body
    return body["error"]


# -- 1. OAuth state -------------------------------------------------------------------------------

def callback_query(path: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}


def callback_path(**query: str) -> str:
    return "/integrations/google/callback?" + urlencode(query)


def binder_of(user: GoogleUser) -> str:
    return user.client.get_cookie(BINDER_COOKIE, path=CALLBACK_PATH).value


def holding(user: GoogleUser, binder: str) -> GoogleUser:
    """The browser holds this binder again (every callback answer clears the cookie, refused or not)."""
    user.client.set_cookie(BINDER_COOKIE, binder, path=CALLBACK_PATH)
    return user


def assert_nothing_connected(sandbox, *users: GoogleUser, exchanges: int = 0) -> None:
    for user in users:
        assert user.status() == {"connected": False}
    assert db.session.scalar(text("SELECT count(*) FROM integrations")) == 0
    assert sandbox.calls("token:authorization_code") == exchanges  # no code was exchanged for tokens


TAMPERINGS = {
    "altered": lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),
    "truncated": lambda s: s[:-1],
    "half": lambda s: s[: len(s) // 2],
    "extended": lambda s: s + "A",
    "case-flipped": lambda s: s.swapcase(),
    "empty": lambda s: "",
    "overlong": lambda s: s * 200,
    "crlf": lambda s: s + "\r\nX-Injected: 1",
}


def test_tampered_states_are_refused_and_the_genuine_one_still_works(guser, sandbox):
    """The browser holds the right binder and a genuine code: only the state is wrong. Each is refused
    with google_auth_failed and nothing is exchanged or stored; the untouched state then still works
    (so it was the tampering, and only that, which was refused)."""
    query = callback_query(guser.consent(guser.auth_url()))
    binder = binder_of(guser)
    for name, tamper in TAMPERINGS.items():
        assert holding(guser, binder).callback(callback_path(code=query["code"], state=tamper(query["state"]))) == {
            "error": "google_auth_failed"}, name
    assert_nothing_connected(sandbox, guser)
    assert holding(guser, binder).callback(callback_path(**query)) == {"success": "true"}


def test_another_users_state_is_refused_in_a_browser_holding_its_own_binder(google_app, gctx, sandbox):
    """Mallory learns Alice's state and completes it with her own Google code, from her own browser
    (which holds a valid binder, for her own flow): her calendar would land in Alice's account. The
    binder travels with each state, so hers does not match Alice's: refused, nothing exchanged."""
    alice, mallory = GoogleUser(google_app, sandbox), GoogleUser(google_app, sandbox)
    alices_state = callback_query(alice.auth_url())["state"]
    own = callback_query(mallory.consent(mallory.auth_url(), email="mallory@example.com"))
    binder = binder_of(mallory)
    assert mallory.callback(callback_path(code=own["code"], state=alices_state)) == {"error": "google_auth_failed"}
    assert_nothing_connected(sandbox, alice, mallory)
    # Her own flow, with the same code and binder, works: it was the state that was refused.
    assert holding(mallory, binder).callback(callback_path(**own)) == {"success": "true"}
    assert alice.status() == {"connected": False}


@pytest.mark.parametrize("first_use", [{"code": "not-the-code"}, {"error": "access_denied"}])
def test_a_state_is_single_use_even_when_its_first_use_failed(guser, sandbox, first_use):
    """Replay: a state already spent — here by a callback that failed (a wrong code) or was declined —
    cannot be used again, even with the genuine, never-used code (test_google_connect covers a replay
    after success, where Google's single-use code alone would refuse it too)."""
    query = callback_query(guser.consent(guser.auth_url()))
    binder = binder_of(guser)
    assert guser.callback(callback_path(state=query["state"], **first_use))["error"] in (
        "google_auth_failed", "access_denied")
    exchanges = sandbox.calls("token:authorization_code")  # the wrong code was tried once, or nothing
    assert holding(guser, binder).callback(callback_path(**query)) == {"error": "google_auth_failed"}
    assert_nothing_connected(sandbox, guser, exchanges=exchanges)


# -- 2. API key brute force -------------------------------------------------------------------------

WRONG_KEY = {"X-Callnfy-Key": "czp_" + "B" * 40}
ATTACKER, OWNER = "203.0.113.7", "198.51.100.20"


@pytest.fixture(scope="module")
def strict_app(database_url, servers, ca_bundle, app):
    """Production's address rules: no private networks, any host allowed so the address decides; 3 failed
    key checks a minute."""
    return create_app(hooks_config(database_url, servers, ca_bundle, WEBHOOK_ALLOWED_HOSTS="*",
                                   WEBHOOK_ALLOW_PRIVATE_NETWORKS="false", ZAPIER_AUTH_FAILURE_LIMIT="3 per minute"))


@pytest.fixture
def strict(strict_app):
    with strict_app.app_context():
        yield strict_app
        db.session.remove()


def from_address(victim: Account, address: str, method: str = "get", path: str = "", headers=None, **kwargs):
    return getattr(victim.client, method)(f"/webhooks/zapier/{victim.user_id}{path}", headers=headers or WRONG_KEY,
                                          environ_base={"REMOTE_ADDR": address}, **kwargs)


def test_brute_force_is_stopped_per_address_and_even_the_right_key_then_gets_429(strict, receiver):
    victim = Account(strict)
    right_key = {"X-Callnfy-Key": victim.api_key}
    assert [from_address(victim, ATTACKER).status_code for _ in range(3)] == [401, 401, 401]
    limited = from_address(victim, ATTACKER)
    assert_error(limited, 429, "TOO_MANY_REQUESTS")
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    # Refused before the key is checked: a brute-forcer cannot tell that a later guess was right,
    # and a refused subscribe writes nothing.
    assert from_address(victim, ATTACKER, headers=right_key).status_code == 429
    subscribe = from_address(victim, ATTACKER, "post", "/subscriptions", headers=right_key,
                             json={"hookUrl": "https://localhost/x", "event": "call.received"})
    assert_error(subscribe, 429, "TOO_MANY_REQUESTS")
    # The account's owner (Zapier), from its own address, is not locked out, and has its own window.
    assert from_address(victim, OWNER, headers=right_key).status_code == 200
    assert from_address(victim, OWNER, "get", "/subscriptions", headers=right_key).json["data"] == []
    assert from_address(victim, OWNER).status_code == 401


def test_a_forged_x_forwarded_for_does_not_reset_the_limit(strict, database_url, servers, ca_bundle):
    """Without a trusted proxy (testing) the header is ignored; behind one (Heroku's router, production's
    TRUSTED_PROXY_COUNT=1) only the address the router appended counts, not what the client wrote."""
    victim = Account(strict)
    statuses = [from_address(victim, ATTACKER, headers={**WRONG_KEY, "X-Forwarded-For": f"192.0.2.{i}"}).status_code
                for i in range(5)]
    assert statuses == [401, 401, 401, 429, 429]

    behind_router = create_app(hooks_config(database_url, servers, ca_bundle, ZAPIER_AUTH_FAILURE_LIMIT="3 per minute",
                                            TRUSTED_PROXY_COUNT="1"))
    with behind_router.app_context():
        victim = Account(behind_router)
        attempts = [victim.client.get(f"/webhooks/zapier/{victim.user_id}", headers={
            **WRONG_KEY, "X-Forwarded-For": f"192.0.2.{i}, {ATTACKER}"}).status_code for i in range(5)]
        assert attempts == [401, 401, 401, 429, 429]
        other_client = victim.client.get(f"/webhooks/zapier/{victim.user_id}", headers={
            "X-Callnfy-Key": victim.api_key, "X-Forwarded-For": f"{ATTACKER}, {OWNER}"})
        assert other_client.status_code == 200  # the attacker's address, written first, is not the client's
        db.session.remove()


# -- 3. SSRF: subscribe time -------------------------------------------------------------------------

REFUSED_TARGETS = [
    # private
    "https://10.0.0.1/hook", "https://172.16.0.1/hook", "https://172.31.255.254/hook", "https://192.168.1.1/hook",
    "https://100.64.0.1/hook",  # carrier-grade NAT
    # loopback
    "https://127.0.0.1/hook", "https://127.255.255.254/hook", "https://[::1]/hook",
    # link-local and cloud metadata
    "https://169.254.10.10/hook", "https://[fe80::1]/hook", "https://169.254.169.254/latest/meta-data/",
    "https://[fd00:ec2::254]/latest/meta-data/",
    # IPv4-mapped IPv6, dotted and hex
    "https://[::ffff:127.0.0.1]/hook", "https://[::ffff:10.0.0.1]/hook", "https://[::ffff:7f00:1]/hook",
    "https://[::ffff:a9fe:a9fe]/latest/meta-data/",
    # NAT64 (well-known and local-use), 6to4, IPv4-compatible: IPv4 inside IPv6 by other means
    "https://[64:ff9b::7f00:1]/hook", "https://[64:ff9b::a9fe:a9fe]/hook", "https://[64:ff9b:1::a00:1]/hook",
    "https://[2002:7f00:1::]/hook", "https://[2002:a9fe:a9fe::1]/hook", "https://[::127.0.0.1]/hook",
    "https://[::a00:1]/hook",
    # unspecified
    "https://0.0.0.0/hook", "https://[::]/hook", "https://0/hook",
    # other spellings of 127.0.0.1: decimal, hex, octal, short forms, fullwidth digits (IDNA folds them)
    "https://2130706433/hook", "https://0x7f000001/hook", "https://017700000001/hook", "https://127.1/hook",
    "https://0x7f.1/hook", "https://0177.0.0.1/hook", "https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/hook",
    # names that resolve to loopback (localhost from /etc/hosts: no DNS query leaves the machine)
    "https://localhost/hook", "https://LOCALHOST./hook", "https://localhost:8443/hook",
]


@pytest.mark.parametrize("url", REFUSED_TARGETS)
def test_hook_urls_to_internal_addresses_are_refused_at_subscribe(strict, connections, url):
    account = Account(strict)
    before = snapshot()
    response = account.hook("post", "/subscriptions", json={"hookUrl": url, "event": "call.received"})
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]) == ["hookUrl"]
    assert snapshot() == before
    assert connections.to_port(443) == connections.to_port(8443) == []  # decided without connecting


# -- 3. SSRF: send time ----------------------------------------------------------------------------

def strict_sender(ca_bundle: str, *, allow_private: bool = False) -> Sender:
    return Sender(concurrency=1, allow_private=allow_private, ca_bundle=ca_bundle, timeout=5)


LOOPBACK_SPELLINGS = ["localhost", "127.0.0.1", "2130706433", "0x7f000001", "017700000001", "127.1", "0.0.0.0",
                      "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::127.0.0.1]", "[::1]"]
INTERNAL_ADDRESSES = ["10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254", "[fd00:ec2::254]",
                      "[fe80::1]", "[::ffff:10.0.0.1]", "[64:ff9b::a00:1]", "[64:ff9b:1::a00:1]", "[2002:a00:1::]",
                      "[::a00:1]"]


def test_send_time_refuses_every_spelling_of_loopback_before_connecting(receiver, ca_bundle, connections):
    """The receiver is really there: the same request with private networks allowed is delivered. With
    them refused (production), each spelling of its address is refused before any connection."""
    loose = strict_sender(ca_bundle, allow_private=True)
    strict = strict_sender(ca_bundle)
    try:
        assert loose.send(Request(receiver.url(), b"{}", {})).delivered
        connections.made.clear()
        for host in LOOPBACK_SPELLINGS:
            result = strict.send(Request(f"https://{host}:{receiver.port}/hook", b"{}", {}))
            assert result.status_code is None and result.error.startswith("InvalidIPAddress"), (host, result)
            assert "127.0.0.1" not in result.error and "::1" not in result.error  # nothing resolved is echoed
    finally:
        loose.close()
        strict.close()
    assert connections.to_port(receiver.port) == []
    assert len(receiver.requests) == 1


def test_send_time_refuses_private_link_local_and_metadata_addresses(ca_bundle, connections):
    sender = strict_sender(ca_bundle)
    try:
        for host in INTERNAL_ADDRESSES:
            result = sender.send(Request(f"https://{host}/latest/meta-data/", b"{}", {}))
            assert result.status_code is None and result.error.startswith("InvalidIPAddress"), (host, result)
            assert host.strip("[]") not in result.error
    finally:
        sender.close()
    assert connections.to_port(443) == []  # the tripwire would also have recorded a blocked attempt


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_an_internal_address_is_not_followed(receiver, ca_bundle, connections, status):
    """Worst case: private networks allowed (the receiver is on loopback), so only "never follow"
    stands between the receiver's redirect and the metadata service."""
    sender = strict_sender(ca_bundle, allow_private=True)
    receiver.answer((status, {"Location": "https://169.254.169.254/latest/meta-data/iam/"}))
    try:
        result = sender.send(Request(receiver.url(), b"{}", {}))
    finally:
        sender.close()
    assert (result.status_code, result.delivered) == (status, False) and result.error.startswith(f"HTTP {status}")
    assert len(receiver.requests) == 1
    assert connections.to_port(443) == []


# -- 3. WEBHOOK_ALLOW_PRIVATE_NETWORKS is for tests only ----------------------------------------------

PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": "s" * 64, "JWT_SECRET_KEY": "j" * 64,
              "ENCRYPTION_KEYS": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
              "PUBLIC_API_URL": "https://integrations.callnfy.test", "FRONTEND_URL": "https://app.callnfy.test"}


def test_private_networks_are_refused_in_production_and_allowed_elsewhere(config):
    servers = {"DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": config["REDIS_URL"]}
    with pytest.raises(ConfigError, match="WEBHOOK_ALLOW_PRIVATE_NETWORKS"):
        load_config({**PRODUCTION, **servers, "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true"})
    assert load_config({**PRODUCTION, **servers})["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] is False
    for app_env in ("testing", "development"):
        assert load_config({**servers, "APP_ENV": app_env, "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1"})[
            "WEBHOOK_ALLOW_PRIVATE_NETWORKS"] is True


@pytest.mark.processes
def test_a_production_process_with_private_networks_exits_with_one_line(config):
    env = {"PATH": "/usr/bin:/bin", **PRODUCTION, "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
           "REDIS_URL": config["REDIS_URL"], "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true"}
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert "WEBHOOK_ALLOW_PRIVATE_NETWORKS" in line and "production" in line and "Traceback" not in result.stderr


# -- 4. Oversized and deeply nested bodies, on every route that takes one -----------------------------

def write_routes(app, ids: dict[str, str]) -> list[tuple[str, str]]:
    """(method, path) of every POST/PUT/PATCH route, read from the URL map: a new route is covered the
    day it is added. Path arguments are the account's real ids where it has them."""
    routes = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH"}):
            routes.append((method, re.sub(r"<(?:\w+:)?(\w+)>", lambda m: ids.get(m.group(1), "x"), rule.rule)))
    assert ("POST", "/appointments") in routes and len(routes) >= 10
    return routes


@pytest.fixture
def everything(hooks_app, account, receiver):
    """An account with a key, a subscription and an appointment: something for a write to change."""
    account.subscribe(receiver.url())
    appointment = account.book()
    headers = {**account.headers, "X-Callnfy-Key": account.api_key}
    ids = {"user_id": str(account.user_id), "appointment_id": appointment["id"], "queue_name": "default",
           "delivery_id": "dlv_" + uuid.uuid4().hex}
    return account, headers, write_routes(hooks_app, ids)


def test_a_body_over_the_limit_is_413_on_every_write_route_and_writes_nothing(everything):
    account, headers, routes = everything
    body = json.dumps(appointment_body(notes="x" * (1024 * 1024)))
    before = snapshot()
    for method, path in routes:
        response = account.client.open(path, method=method, data=body, headers=headers,
                                       content_type="application/json")
        error = assert_error(response, 413, "REQUEST_ENTITY_TOO_LARGE")
        assert error["message"] == "Request body too large (limit 1 MB)", (method, path)
    assert snapshot() == before


@pytest.mark.parametrize("body", ["[" * 5000 + "]" * 5000, '{"a":' * 40 + "1" + "}" * 40,
                                  '{"notes": ' + "[" * 33 + "]" * 33 + "}"])
def test_a_deeply_nested_body_is_400_on_every_write_route_and_writes_nothing(everything, body):
    account, headers, routes = everything
    before = snapshot()
    for method, path in routes:
        response = account.client.open(path, method=method, data=body, headers=headers,
                                       content_type="application/json")
        error = assert_error(response, 400, "VALIDATION_ERROR")
        assert error["message"] == "Request body is nested too deeply", (method, path)
    assert snapshot() == before


MEGABYTE = 1024 * 1024


def _sized(head: bytes, unit: bytes, tail: bytes = b"") -> bytes:
    """`head`, then `unit` repeated, then `tail`: exactly 1 MB, the largest body the service reads."""
    return head + unit * ((MEGABYTE - len(head) - len(tail)) // len(unit)) + tail


# Bodies built to make a string-skipping scan backtrack or recurse: the regex this scan replaced took
# 1.6 s on 16 kB of escaped quotes and 4x more for every doubling (hours for 1 MB), holding the GIL.
ADVERSARIAL_BODIES = {
    "escaped quotes in one string": (_sized(b'"', b'\\"'), 404),
    "escaped quotes, the string never closed": (_sized(b'["', b'\\"'), 404),
    "an unclosed string": (_sized(b'{"a": "', b"x"), 404),
    "deep brackets inside a string": (_sized(b'{"a": "', b"[{", b'"}'), 404),
    "deep brackets inside an unclosed string": (_sized(b'"', b"[{"), 404),
    "a run of backslashes": (_sized(b'"', b"\\\\"), 404),
    "quotes only": (_sized(b"", b'"'), 404),
    "brackets, deep for real": (_sized(b"", b"["), 400),
}


@pytest.mark.parametrize("name", ADVERSARIAL_BODIES)
def test_an_adversarial_megabyte_before_authentication_is_answered_in_well_under_a_second(client, name):
    """The nesting check runs before authentication and routing (an unknown path will do), so it must
    cost time linear in the body whatever the body holds."""
    body, status = ADVERSARIAL_BODIES[name]
    assert len(body) <= MEGABYTE
    for path in ("/no-such-route", "/webhooks/google/calendar", "/integrations/zapier/generate-key"):
        started = time.perf_counter()
        response = client.post(path, data=body, content_type="application/json")
        elapsed = time.perf_counter() - started
        expected = status if status == 400 else {"/no-such-route": 404, "/webhooks/google/calendar": 404,
                                                 "/integrations/zapier/generate-key": 401}[path]
        assert response.status_code == expected, (name, path, response.json)
        assert response.json["success"] is False
        assert elapsed < 1.0, f"{name} on {path}: {elapsed:.2f} s"


def test_a_chunked_body_over_the_limit_is_413_not_cut_down_to_size(hooks_app, account):
    """Over real HTTP without a Content-Length (Transfer-Encoding: chunked), Werkzeug stops reading at
    the limit without saying so: the first megabyte of a valid body padded with spaces was parsed and
    the appointment created. Now: 413, nothing written; a chunked body within the limit still works."""
    server = serve_wsgi(hooks_app)
    url = f"{server.url}/appointments"
    headers = {**account.headers, "Content-Type": "application/json"}

    def chunked(padding: int):
        yield json.dumps(appointment_body()).encode()
        for _ in range(padding // 65536):
            yield b" " * 65536

    try:
        before = snapshot()
        too_large = requests.post(url, data=chunked(1024 * 1024 + 65536), headers=headers, timeout=30)
        assert too_large.status_code == 413, too_large.text
        assert too_large.json()["error"]["code"] == "REQUEST_ENTITY_TOO_LARGE"
        assert snapshot() == before
        within = requests.post(url, data=chunked(512 * 1024), headers=headers, timeout=30)
        assert within.status_code == 201, within.text
    finally:
        server.shutdown()


# -- 5. Header injection ------------------------------------------------------------------------------

UNSAFE_HOOK_URLS = [
    "https://localhost/hook\r\nX-Injected: 1", "https://local\r\nhost/hook", "https://localhost/ho\nok",
    "https://localhost/h\took", "https://localhost:443\r\n/hook", " https://localhost/hook", "https://localhost/hook ",
    "\thttps://localhost/hook", "https://localhost/h ook", "https://localhost/h\x00ook", "https://localhost/h\x1bok",
    "https://localhost/h\x7fook", "https://localhost/h\x85ook", "\u00a0https://localhost/hook",
    "https://localhost/hook\u2028", "https://localhost/\u200bhook", "https://localhost/\u202ekooh",
    "https://localhost/\ud800",  # a lone surrogate: PostgreSQL cannot even store it
]


@pytest.mark.parametrize("url", UNSAFE_HOOK_URLS)
def test_hook_urls_with_control_characters_or_whitespace_are_400_and_never_stored(account, url):
    """hooks_app allows localhost, so each URL without its bad character would be accepted; urlsplit
    drops tabs and newlines and leading spaces, so it used to check one URL and store another. (Which
    layer refuses is not the point: NUL and lone surrogates are refused for every string field.)"""
    before = snapshot()
    response = account.hook("post", "/subscriptions", data=json.dumps({"hookUrl": url, "event": "call.received"}),
                            content_type="application/json")
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]) == ["hookUrl"]
    assert snapshot() == before
    assert account.subscribe("https://localhost/hook")["hookUrl"] == "https://localhost/hook"  # the clean one is fine


UNSAFE_REQUEST_IDS = ["abc\n", "abc\r\nSet-Cookie: session=stolen", "abc\r", "a\x00b", "a\x1b[31mred", "a b",
                      "a\tb", "ünïcödé", "a" * 129, "<script>", ""]


@pytest.mark.parametrize("supplied", UNSAFE_REQUEST_IDS)
def test_an_unsafe_request_id_is_replaced_in_headers_and_logs(app, app_ctx, lines, logger_at, supplied):
    """Given through the WSGI environ, so it reaches the app as a server might hand it over (a test client
    header would be refused before that). `abc\\n` used to pass the check (`$` matches before a final
    newline) and ended in a 500 without a request id."""
    logger_at("callnfy_integrations.requests")
    response = app.test_client().get("/nowhere", environ_base={"HTTP_X_REQUEST_ID": supplied})
    assert_error(response, 404, "NOT_FOUND")
    echoed = response.headers["X-Request-ID"]
    assert GENERATED_ID.match(echoed) and echoed != supplied
    [line] = [line for line in lines.all() if line["message"] == "request"]
    assert line["request_id"] == echoed
    raw = lines.buffer.getvalue()
    assert "Set-Cookie" not in raw and "\x1b" not in raw and raw.count("\n") == len(lines.all())


def test_a_safe_request_id_is_kept_up_to_128_characters(client):
    for supplied in ("req-42", "a.b:c_d-E", "r" * 128):
        assert client.get("/healthz", headers={"X-Request-ID": supplied}).headers["X-Request-ID"] == supplied


# -- 6. What a hook URL error reveals -------------------------------------------------------------------

@pytest.mark.parametrize("url", ["https://localhost/hook", "https://localhost:8443/x", "https://2130706433/hook",
                                 "https://0x7f000001/hook", "https://017700000001/hook", "https://0/hook"])
def test_hook_url_errors_never_name_a_resolved_address(strict, url):
    account = Account(strict)
    response = account.hook("post", "/subscriptions", json={"hookUrl": url, "event": "call.received"})
    assert_error(response, 400, "VALIDATION_ERROR")
    body = response.get_data(as_text=True)
    for address in ("127.0.0.1", "::1", "0.0.0.0"):
        assert address not in body, body


def test_an_unresolvable_host_and_an_internal_one_get_the_same_answer(strict):
    """Otherwise the error tells which internal names exist. `a..b` fails in the IDNA codec, before any
    DNS query (none may leave this machine)."""
    account = Account(strict)
    answers = []
    for host in ("localhost", "a..b"):
        response = account.hook("post", "/subscriptions", json={"hookUrl": f"https://{host}/hook",
                                                                 "event": "call.received"})
        answers.append(assert_error(response, 400, "VALIDATION_ERROR")["details"]["hookUrl"][0].replace(host, "HOST"))
    assert answers[0] == answers[1] == "host 'HOST' does not resolve, or resolves to a non-public address"
