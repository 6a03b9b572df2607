"""JWT authentication of Callnfy users: minimal HS256/RS256 tokens whose `sub` is the user's UUID."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timedelta, timezone
from typing import Callable, TypeVar

import jwt as pyjwt
from flask import current_app, g
from flask_jwt_extended import get_jwt, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException

from .errors import Unauthorized

F = TypeVar("F", bound=Callable)


def authenticate() -> uuid.UUID:
    """Verify the request's bearer token and return its user id; any failure is a 401."""
    try:
        verify_jwt_in_request()
        claims = get_jwt()
    except (JWTExtendedException, pyjwt.PyJWTError):
        raise Unauthorized() from None
    # A token without an expiry would be a credential forever: refuse it.
    if "exp" not in claims:
        raise Unauthorized()
    try:
        user_id = uuid.UUID(str(claims.get("sub")))
    except ValueError:
        raise Unauthorized() from None
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


def create_dev_token(user_id: uuid.UUID, lifetime: timedelta = timedelta(days=30)) -> str:
    """A minimal HS256 token as Callnfy's auth service issues them, for development and tests."""
    if current_app.config["JWT_ALGORITHM"] != "HS256":
        raise RuntimeError("development tokens are HS256; this app verifies RS256")
    now = datetime.now(timezone.utc)
    claims = {"sub": str(user_id), "iat": now, "exp": now + lifetime}
    return pyjwt.encode(claims, current_app.config["JWT_SECRET_KEY"], algorithm="HS256")
