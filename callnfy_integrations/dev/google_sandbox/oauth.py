"""OAuth 2.0: authorize (consent page or non-interactive), token, userinfo, revoke.

`token` (per grant, e.g. `token:refresh_token`) and `revoke` can be failed from tests (see control.py);
scripted failures use the OAuth error shape `{"error", "error_description"}` like the real ones here.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from urllib.parse import urlencode

from flask import Blueprint, after_this_request, current_app, jsonify, redirect, request

from .control import intercept
from .store import DEFAULT_EMAIL, state

blp = Blueprint("sandbox_oauth", __name__)

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events"


# Descriptions shared by real and scripted errors, so a scripted invalid_grant is exactly a real one.
DESCRIPTIONS = {"invalid_grant": "Token has been expired or revoked.",
                "invalid_token": "Token expired or revoked",
                "invalid_client": "The OAuth client was not found.",
                "invalid_request": "Bad Request", "access_denied": "Forbidden",
                "server_error": "Internal error",
                "temporarily_unavailable": "The service is temporarily unavailable."}
DEFAULT_ERRORS = {400: "invalid_request", 401: "invalid_client", 403: "access_denied"}


def _oauth_error(error: str, description: str | None = None, status: int = 400):
    description = description or DESCRIPTIONS.get(error, error)
    return jsonify({"error": error, "error_description": description}), status


def _scripted_error(status: int, reason: str | None, message: str | None):
    """A scripted failure in the OAuth shape; without a reason: server_error for 5xx, per status for 4xx."""
    error = reason or ("server_error" if status >= 500 else DEFAULT_ERRORS.get(status, "invalid_request"))
    return _oauth_error(error, message, status)


def _redirect_with(redirect_uri: str, **params):
    separator = "&" if "?" in redirect_uri else "?"
    return redirect(redirect_uri + separator + urlencode({k: v for k, v in params.items() if v is not None}))


@blp.get("/o/oauth2/v2/auth")
def authorize():
    args = request.args
    if args.get("client_id") != current_app.config["SANDBOX_CLIENT_ID"]:
        return "Error 401: invalid_client", 401
    if args.get("response_type") != "code" or not args.get("redirect_uri"):
        return "Error 400: invalid_request", 400
    if args.get("code_challenge_method", "S256") != "S256" or not args.get("code_challenge"):
        return "Error 400: invalid_request (PKCE S256 required by this sandbox)", 400
    # Non-interactive mode for tests: the decision (and optionally email/scopes) in the query.
    if args.get("sandbox_decision"):
        return _decide(args, args["sandbox_decision"], args.get("sandbox_email") or DEFAULT_EMAIL,
                       args.get("sandbox_scopes"))
    fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in args.items())
    scopes = "".join(f"<li>{html.escape(s)}</li>" for s in args.get("scope", "").split())
    return f"""<!doctype html><html><head><title>Sign in - Google Accounts (sandbox)</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 4rem auto">
<h1>Google sandbox</h1><p><b>Callnfy</b> wants to access your Google Account:</p><ul>{scopes}</ul>
<form method="post" action="/o/oauth2/v2/auth/decision">{fields}
<label>Signed in as <input name="sandbox_email" value="{DEFAULT_EMAIL}"></label><p>
<button id="allow" name="sandbox_decision" value="allow">Allow</button>
<button id="deny" name="sandbox_decision" value="deny">Deny</button></p></form></body></html>"""


@blp.post("/o/oauth2/v2/auth/decision")
def decision():
    form = request.form
    return _decide(form, form.get("sandbox_decision", "deny"), form.get("sandbox_email") or DEFAULT_EMAIL,
                   form.get("sandbox_scopes"))


def _decide(params, decision: str, email: str, granted: str | None):
    redirect_uri, client_state = params["redirect_uri"], params.get("state")
    if decision != "allow":
        return _redirect_with(redirect_uri, error="access_denied", state=client_state)
    code = "4/" + secrets.token_urlsafe(24)
    scope = granted if granted is not None else params.get("scope", "")
    with state().lock:
        state().codes[code] = {
            "client_id": params["client_id"], "redirect_uri": redirect_uri, "email": email, "scope": scope,
            "challenge": params["code_challenge"], "offline": params.get("access_type") == "offline",
            "expires": time.time() + 600,
        }
    return _redirect_with(redirect_uri, code=code, state=client_state, scope=scope)


def _client_ok(form) -> bool:
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if request.authorization and request.authorization.type == "basic":
        client_id, secret = request.authorization.username, request.authorization.password
    return client_id == current_app.config["SANDBOX_CLIENT_ID"] and \
        secret == current_app.config["SANDBOX_CLIENT_SECRET"]


def _issue_access_token(email: str, scope: str, refresh_token: str | None) -> dict:
    token = "ya29." + secrets.token_urlsafe(32)
    lifetime = int(state().settings["access_token_lifetime"])
    state().access_tokens[token] = {"email": email, "scope": scope, "expires": time.time() + lifetime,
                                    "refresh_token": refresh_token}
    return {"access_token": token, "expires_in": lifetime, "scope": scope, "token_type": "Bearer"}


@blp.post("/token")
def token():  # noqa: C901  (Google's one token endpoint: each grant type and its errors side by side)
    @after_this_request
    def no_store(response):  # tokens must not be cached (RFC 6749 §5.1), as Google's endpoint answers
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response

    form = request.form
    grant = form.get("grant_type")
    # Counted as `token:<grant>`; not in the request log, whose readers have no use for client secrets.
    scripted = intercept(f"token:{grant}", _scripted_error, log=False)
    if scripted:
        return scripted
    time.sleep(float(state().settings.get("token_delay", 0)))  # tests widen race windows with this
    if not _client_ok(form):
        return _oauth_error("invalid_client", status=401)
    with state().lock:
        if grant == "authorization_code":
            issued = state().codes.pop(form.get("code", ""), None)  # single use
            if issued is None or issued["expires"] < time.time() or issued["redirect_uri"] != form.get("redirect_uri"):
                return _oauth_error("invalid_grant", "Bad Request")
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not verifier or challenge != issued["challenge"]:
                return _oauth_error("invalid_grant", "Invalid code verifier.")
            refresh_token = None
            if issued["offline"]:
                refresh_token = "1//" + secrets.token_urlsafe(32)
                state().refresh_tokens[refresh_token] = {"email": issued["email"], "scope": issued["scope"],
                                                         "revoked": False}
            body = _issue_access_token(issued["email"], issued["scope"], refresh_token)
            if refresh_token:
                body["refresh_token"] = refresh_token
            return jsonify(body)
        if grant == "refresh_token":
            current = state().refresh_tokens.get(form.get("refresh_token", ""))
            if current is None or current["revoked"]:
                return _oauth_error("invalid_grant")
            refresh_token = form["refresh_token"]
            body = {}
            if state().settings["rotate_refresh_tokens"]:
                current["revoked"] = True
                refresh_token = "1//" + secrets.token_urlsafe(32)
                state().refresh_tokens[refresh_token] = {**current, "revoked": False}
                body["refresh_token"] = refresh_token
            body.update(_issue_access_token(current["email"], current["scope"], refresh_token))
            return jsonify(body)
    return _oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant}")


def bearer_grant() -> dict | None:
    """The grant behind a valid Bearer token (`email`, `scope`, …), or None."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    with state().lock:
        info = state().access_tokens.get(header[len("Bearer "):])
        if info is None or info["expires"] < time.time():
            return None
        if info["refresh_token"] and state().refresh_tokens.get(info["refresh_token"], {}).get("revoked"):
            return None
        return dict(info)


def bearer_email(required_scope: str | None = None) -> str | None:
    """The email behind a valid Bearer token (with `required_scope`), or None."""
    grant = bearer_grant()
    if grant is None or (required_scope and required_scope not in grant["scope"].split()):
        return None
    return grant["email"]


@blp.get("/v1/userinfo")
def userinfo():
    state().count("userinfo")
    email = bearer_email()
    if email is None:
        return jsonify({"error": "invalid_request", "error_description": "Invalid Credentials"}), 401
    return jsonify({"sub": hashlib.sha256(email.encode()).hexdigest()[:21], "email": email, "email_verified": True})


@blp.post("/revoke")
def revoke():
    scripted = intercept("revoke", _scripted_error)
    if scripted:
        return scripted
    token = request.form.get("token") or request.args.get("token", "")
    with state().lock:
        granted = state().refresh_tokens.get(token) or state().access_tokens.get(token)
        if granted is None:
            return _oauth_error("invalid_token")
        # Like Google: revoking one token ends the account's whole grant to this client, every refresh
        # and access token of it, those issued by a later consent too (one client per sandbox).
        email = granted["email"]
        for issued in state().refresh_tokens.values():
            if issued["email"] == email:
                issued["revoked"] = True
        for access_token in [t for t, issued in state().access_tokens.items() if issued["email"] == email]:
            del state().access_tokens[access_token]
    return jsonify({})
