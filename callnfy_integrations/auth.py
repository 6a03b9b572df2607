"""JWT authentication of Callnfy users: minimal HS256/RS256 tokens whose `sub` is the user's UUID.

flask-jwt-extended owns the configuration (`JWT_SECRET_KEY`, `JWT_PUBLIC_KEY`, `JWT_DECODE_ALGORITHMS`,
`JWT_DECODE_LEEWAY`, `JWT_DECODE_AUDIENCE`, `JWT_DECODE_ISSUER`), but its `verify_jwt_in_request`
decodes each token four times (unverified claims, unverified header, verified claims), and PyJWT 2.15
validates base64 character by character in Python: ~0.26 ms per request. Verification here decodes
once, with the same settings and rules.

Rules beyond the signature: `exp` and `sub` are required; `aud` / `iss` are required and must match
when JWT_AUDIENCE / JWT_ISSUER are set (unset, a token that names an audience is refused: it was
issued for some other service); a token whose `type` is `refresh` is never an access credential.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import jwt as pyjwt
from flask import current_app, g, request

from .errors import Unauthorized

F = TypeVar("F", bound=Callable)


def authenticate() -> uuid.UUID:
    """Verify the request's bearer token and return its user id; any failure is a 401."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not encoded:
        raise Unauthorized()
    config = current_app.config
    key = config["JWT_PUBLIC_KEY"] if config["JWT_ALGORITHM"] == "RS256" else config["JWT_SECRET_KEY"]
    audience, issuer = config.get("JWT_DECODE_AUDIENCE"), config.get("JWT_DECODE_ISSUER")
    # `exp`: a token without an expiry would be a credential forever. `aud`/`iss` when configured:
    # PyJWT 2.x also insists on them then; saying so here keeps the rule from resting on its defaults.
    required = ["exp", "sub"] + (["aud"] if audience else []) + (["iss"] if issuer else [])
    try:
        claims = pyjwt.decode(encoded.strip(), key, algorithms=config["JWT_DECODE_ALGORITHMS"],
                              leeway=config["JWT_DECODE_LEEWAY"], audience=audience, issuer=issuer,
                              options={"require": required})
        user_id = uuid.UUID(str(claims["sub"]))
    except (pyjwt.PyJWTError, ValueError):
        raise Unauthorized() from None
    if claims.get("type") == "refresh":  # a refresh token only buys new access tokens, at the auth service
        raise Unauthorized()
    g.jwt_claims = claims
    g.user_id = user_id
    return user_id


def login_required(view: F) -> F:
    """Decorator: the view runs only for a valid token; `current_user_id()` then names the caller."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        authenticate()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def current_user_id() -> uuid.UUID:
    return g.user_id


# The user `make run`, the development console and `flask dev-token` act as.
DEV_USER_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


def create_dev_token(user_id: uuid.UUID, lifetime: timedelta = timedelta(days=30)) -> str:
    """A minimal HS256 token as Callnfy's auth service issues them, for development and tests."""
    config = current_app.config
    if config["JWT_ALGORITHM"] != "HS256":
        raise RuntimeError("development tokens are HS256; this app verifies RS256")
    now = datetime.now(UTC)
    claims = {"sub": str(user_id), "iat": now, "exp": now + lifetime}
    if config.get("JWT_DECODE_AUDIENCE"):
        claims["aud"] = config["JWT_DECODE_AUDIENCE"]
    if config.get("JWT_DECODE_ISSUER"):
        claims["iss"] = config["JWT_DECODE_ISSUER"]
    return pyjwt.encode(claims, config["JWT_SECRET_KEY"], algorithm="HS256")
