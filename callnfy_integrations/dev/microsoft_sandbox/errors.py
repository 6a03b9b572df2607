"""Microsoft's two error shapes: the identity platform's (`error`, `error_codes`, …) and Graph's
(`{"error": {"code", "message", "innerError"}}`). Real and scripted errors share these renderers, so a
scripted error is exactly a real one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask import jsonify

# Identity platform: AADSTS codes per error, with their documented wording.
AADSTS = {
    "invalid_grant": (70000, "The provided grant is invalid or malformed."),
    "code_redeemed": (54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid "
                             "code or use an existing refresh token."),
    "code_expired": (70008, "The provided authorization code or refresh token has expired due to inactivity."),
    "revoked": (50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed."),
    "pkce": (501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request."),
    "invalid_client": (7000215, "Invalid client secret provided. Ensure the secret being sent in the request is "
                                "the client secret value, not the client secret ID."),
    "invalid_request": (9002313, "Invalid request. Request is malformed or invalid."),
    "unsupported_grant_type": (70003, "The app requested an unsupported grant type."),
    "temporarily_unavailable": (90033, "A transient error has occurred. Please try again."),
}
OAUTH_ERRORS = {"code_redeemed": "invalid_grant", "code_expired": "invalid_grant", "revoked": "invalid_grant",
                "pkce": "invalid_grant"}
DEFAULT_OAUTH = {400: "invalid_request", 401: "invalid_client"}


def _now() -> datetime:
    return datetime.now(UTC)


def oauth_error(kind: str, status: int = 400, description: str | None = None):
    """The token endpoint's error: `kind` is an OAuth error or one of the finer AADSTS kinds above."""
    code, text = AADSTS.get(kind, AADSTS["invalid_request"])
    trace, correlation, when = str(uuid.uuid4()), str(uuid.uuid4()), _now()
    body = {"error": OAUTH_ERRORS.get(kind, kind),
            "error_description": f"AADSTS{code}: {description or text} Trace ID: {trace} Correlation ID: "
                                 f"{correlation} Timestamp: {when:%Y-%m-%d %H:%M:%SZ}",
            "error_codes": [code], "timestamp": f"{when:%Y-%m-%d %H:%M:%SZ}", "trace_id": trace,
            "correlation_id": correlation, "error_uri": f"https://login.microsoftonline.com/error?code={code}"}
    return jsonify(body), status


def scripted_oauth_error(status: int, reason: str | None, message: str | None):
    kind = reason or ("temporarily_unavailable" if status >= 500 else DEFAULT_OAUTH.get(status, "invalid_request"))
    return oauth_error(kind, status, message)


# Graph: codes and messages per status, as Graph answers them for Outlook resources.
GRAPH_CODES = {400: "BadRequest", 401: "InvalidAuthenticationToken", 403: "ErrorAccessDenied",
               404: "ErrorItemNotFound", 409: "ErrorIrresolvableConflict", 410: "syncStateNotFound",
               412: "ErrorIrresolvableConflict", 429: "ApplicationThrottled", 500: "InternalServerError",
               503: "ServiceUnavailable", 504: "GatewayTimeout"}
MESSAGES = {
    "BadRequest": "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is "
                  "of valid JSON format.",
    "InvalidAuthenticationToken": "Access token has expired or is not yet valid.",
    "ErrorAccessDenied": "Access is denied. Check credentials and try again.",
    "ErrorItemNotFound": "The specified object was not found in the store.",
    "ErrorIrresolvableConflict": "The send or update operation could not be performed because the change key "
                                 "passed in the request does not match the current change key for the item.",
    "syncStateNotFound": "The sync state generation is not found. The delta token is expired and data must be "
                         "synchronized again.",
    "ApplicationThrottled": "Application is over its MailboxConcurrency limit.",
    "InternalServerError": "An internal server error occurred. The operation failed.",
    "ServiceUnavailable": "The service is temporarily unavailable. Please try again later.",
    "GatewayTimeout": "The gateway did not receive a timely response from the upstream server.",
    "ResourceNotFound": "The object was not found.",
    "InvalidRequest": "Invalid request.",
}


def graph_error(status: int, code: str | None = None, message: str | None = None):
    """Graph's error JSON; code and message default to Graph's for that status."""
    code = code or GRAPH_CODES.get(status, "BadRequest" if status < 500 else "InternalServerError")
    request_id = str(uuid.uuid4())
    body = {"error": {"code": code, "message": message or MESSAGES.get(code, code),
                      "innerError": {"date": _now().strftime("%Y-%m-%dT%H:%M:%S"), "request-id": request_id,
                                     "client-request-id": request_id}}}
    return jsonify(body), status
