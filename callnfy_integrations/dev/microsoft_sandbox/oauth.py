"""Microsoft identity platform v2: `/{tenant}/oauth2/v2.0/authorize` (a consent page, or non-interactive
with `sandbox_decision`) and `/{tenant}/oauth2/v2.0/token` (authorization_code with PKCE S256, and
refresh_token, which rotates the refresh token on every use).

A refresh token is issued only when `offline_access` is granted, as Entra does; `offline_access` is not
echoed in the token response's `scope`. Errors use the identity platform's JSON with `error_codes`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from urllib.parse import urlencode

from flask import Blueprint, after_this_request, current_app, jsonify, redirect, request

from ..google_sandbox.control import intercept
from .errors import oauth_error, scripted_oauth_error
from .store import DEFAULT_EMAIL, state

blp = Blueprint("microsoft_oauth", __name__)

TENANTS = ("common", "organizations", "consumers")


def _redirect_with(redirect_uri: str, **params):
    separator = "&" if "?" in redirect_uri else "?"
    return redirect(redirect_uri + separator + urlencode({k: v for k, v in params.items() if v is not None}))


def _authorize_problem(args) -> str | None:
    if args.get("client_id") != current_app.config["SANDBOX_CLIENT_ID"]:
        return "AADSTS700016: Application with identifier was not found in the directory."
    if args.get("response_type") != "code" or not args.get("redirect_uri"):
        return "AADSTS900144: The request body must contain the following parameter: 'response_type'."
    if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
        return "AADSTS9002325: Proof Key for Code Exchange is required (S256, by this sandbox)."
    return None


@blp.get("/<tenant>/oauth2/v2.0/authorize")
def authorize(tenant):
    args = request.args
    problem = _authorize_problem(args)
    if problem:  # Entra shows an error page, it does not redirect a request it cannot trust
        return f"<!doctype html><title>Sign in</title><p>{html.escape(problem)}</p>", 400
    if args.get("sandbox_decision"):  # non-interactive mode for tests
        return _decide(tenant, args, args["sandbox_decision"], args.get("sandbox_email") or DEFAULT_EMAIL,
                       args.get("sandbox_scopes"))
    fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in args.items())
    scopes = "".join(f"<li>{html.escape(s)}</li>" for s in args.get("scope", "").split())
    return f"""<!doctype html><html><head><title>Permissions requested - Microsoft (sandbox)</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 4rem auto">
<h1>Microsoft sandbox</h1><p><b>Callnfy</b> would like to:</p><ul>{scopes}</ul>
<form method="post" action="/{html.escape(tenant)}/oauth2/v2.0/authorize/decision">{fields}
<label>Signed in as <input name="sandbox_email" value="{DEFAULT_EMAIL}"></label><p>
<button id="allow" name="sandbox_decision" value="allow">Accept</button>
<button id="deny" name="sandbox_decision" value="deny">Cancel</button></p></form></body></html>"""


@blp.post("/<tenant>/oauth2/v2.0/authorize/decision")
def decision(tenant):
    form = request.form
    return _decide(tenant, form, form.get("sandbox_decision", "deny"), form.get("sandbox_email") or DEFAULT_EMAIL,
                   form.get("sandbox_scopes"))


def _decide(tenant: str, params, decision: str, email: str, granted: str | None):
    redirect_uri, client_state = params["redirect_uri"], params.get("state")
    if decision != "allow":
        return _redirect_with(redirect_uri, error="access_denied", error_subcode="cancel",
                              error_description="AADSTS65004: User declined to consent to access the app.",
                              state=client_state)
    code = "0.A" + secrets.token_urlsafe(48)
    scope = granted if granted is not None else params.get("scope", "")
    with state().lock:
        state().codes[code] = {"client_id": params["client_id"], "redirect_uri": redirect_uri, "email": email,
                               "scope": scope, "challenge": params["code_challenge"], "tenant": tenant,
                               "expires": time.time() + 600}
    return _redirect_with(redirect_uri, code=code, state=client_state, session_state=secrets.token_hex(16))


def _client_ok(form) -> bool:
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if request.authorization and request.authorization.type == "basic":
        client_id, secret = request.authorization.username, request.authorization.password
    return client_id == current_app.config["SANDBOX_CLIENT_ID"] and \
        secret == current_app.config["SANDBOX_CLIENT_SECRET"]


def _issue(email: str, scope: str) -> dict:
    """An access token, and a new refresh token when offline_access is granted."""
    sandbox = state()
    lifetime = int(sandbox.settings["access_token_lifetime"])
    access_token = "eyJ0eXAiOiJKV1QiLCJzYW5kYm94Ijp0cnVlfQ." + secrets.token_urlsafe(48)
    sandbox.access_tokens[access_token] = {"email": email, "scope": scope, "expires": time.time() + lifetime,
                                           "refresh_token": None}
    scopes = scope.split()
    body = {"token_type": "Bearer", "scope": " ".join(s for s in scopes if s != "offline_access"),
            "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access_token}
    if "offline_access" in scopes:
        refresh_token = "1.A" + secrets.token_urlsafe(64)
        sandbox.refresh_tokens[refresh_token] = {"email": email, "scope": scope, "revoked": False,
                                                 "replaced_at": None}
        body["refresh_token"] = refresh_token
    return body


def _redeem_code(form):
    issued = state().codes.get(form.get("code", ""))
    if issued is None:
        return oauth_error("invalid_grant")
    if issued.get("redeemed"):
        return oauth_error("code_redeemed")
    if issued["expires"] < time.time():
        return oauth_error("code_expired")
    if issued["redirect_uri"] != form.get("redirect_uri"):
        return oauth_error("invalid_grant", description="The redirect URI does not match the one used to get "
                                                        "the authorization code.")
    verifier = form.get("code_verifier", "")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    if not verifier or challenge != issued["challenge"]:
        return oauth_error("pkce")
    issued["redeemed"] = True  # single use: a second redemption is AADSTS54005
    return jsonify(_issue(issued["email"], issued["scope"]))


def _refresh(form):
    current = state().refresh_tokens.get(form.get("refresh_token", ""))
    if current is None:
        return oauth_error("invalid_grant")
    if current["revoked"]:
        return oauth_error("revoked")
    grace = float(state().settings.get("refresh_token_grace") or 0)
    if current["replaced_at"] is not None and time.time() - current["replaced_at"] >= grace:
        return oauth_error("invalid_grant", description="The refresh token was already used and replaced.")
    scope = current["scope"]
    if form.get("scope"):  # a narrower scope may be asked for; offline_access stays with the grant
        asked = set(form["scope"].split()) | {"offline_access"}
        scope = " ".join(s for s in scope.split() if s in asked)
    if current["replaced_at"] is None:
        current["replaced_at"] = time.time()
    return jsonify(_issue(current["email"], scope))


@blp.post("/<tenant>/oauth2/v2.0/token")
def token(tenant):
    @after_this_request
    def no_store(response):
        response.headers["Cache-Control"] = "no-store, no-cache"
        response.headers["Pragma"] = "no-cache"
        return response

    form = request.form
    grant = form.get("grant_type")
    # Counted as `token:<grant>`; not in the request log, whose readers have no use for client secrets.
    scripted = intercept(f"token:{grant}", scripted_oauth_error, log=False, sandbox=state())
    if scripted:
        return scripted
    time.sleep(float(state().settings.get("token_delay") or 0))
    if not _client_ok(form):
        return oauth_error("invalid_client", 401)
    handler = {"authorization_code": _redeem_code, "refresh_token": _refresh}.get(grant)
    if handler is None:
        return oauth_error("unsupported_grant_type")
    with state().lock:
        return handler(form)


def bearer(required_scopes: tuple[str, ...]) -> tuple[str | None, int]:
    """(the mailbox email behind the Bearer token, 0), or (None, 401 / 403) as Graph answers."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None, 401
    with state().lock:
        info = state().access_tokens.get(header[len("Bearer "):])
        if info is None or info["expires"] < time.time() or info.get("revoked"):
            return None, 401
        if not set(required_scopes) & set(info["scope"].split()):
            return None, 403
        return info["email"], 0


def revoke(email: str) -> None:
    """The user withdraws consent (or an admin revokes sessions): every token of the account ends."""
    with state().lock:
        for issued in state().refresh_tokens.values():
            if issued["email"] == email:
                issued["revoked"] = True
        for issued in state().access_tokens.values():
            if issued["email"] == email:
                issued["revoked"] = True
