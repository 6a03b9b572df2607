"""Errors with a code, and the one handler that turns every error into the envelope (docs/api.md)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, g, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a client can act on: an HTTP status, an UPPER_SNAKE code and a message."""

    status = 400
    code = "BAD_REQUEST"
    message = "Bad request"

    def __init__(self, message: str | None = None, *, code: str | None = None, details: Any = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.code = code or self.code
        self.details = details
        self.headers = headers or {}


class ValidationFailed(ApiError):
    code = "VALIDATION_ERROR"
    message = "Request validation failed"


class Unauthorized(ApiError):
    status = 401
    code = "UNAUTHORIZED"
    message = "Unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "FORBIDDEN"
    message = "Forbidden"


class NotFound(ApiError):
    status = 404
    code = "NOT_FOUND"
    message = "Resource not found"


class Conflict(ApiError):
    status = 409
    code = "CONFLICT"
    message = "Conflict"


class ServiceUnavailable(ApiError):
    status = 503
    code = "SERVICE_UNAVAILABLE"
    message = "Service unavailable"


# Short messages for the HTTP errors Werkzeug raises (its own descriptions are paragraphs).
HTTP_MESSAGES = {
    400: "Bad request",
    404: "Resource not found",
    405: "Method not allowed",
    413: "Request body too large (limit 1 MB)",
    415: "Unsupported media type: send application/json",
    429: "Too many requests",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"success": False, "error": error}


def _respond(status: int, code: str, message: str, details: Any = None, headers: dict | None = None):
    response = jsonify(error_body(code, message, details))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _http_code(exc: HTTPException) -> str:
    return (exc.name or "Error").upper().replace(" ", "_").replace("'", "")


def handle_api_error(exc: ApiError):
    return _respond(exc.status, exc.code, exc.message, exc.details, exc.headers)


def handle_http_exception(exc: HTTPException):
    status = exc.code or 500
    if status >= 500:
        return handle_unexpected(exc)
    headers = {}
    if status == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(exc.valid_methods)
    if exc.response is not None and exc.response.headers.get("Retry-After"):
        headers["Retry-After"] = exc.response.headers["Retry-After"]
    return _respond(status, _http_code(exc), HTTP_MESSAGES.get(status, exc.name), headers=headers)


def handle_unexpected(exc: Exception, message: str = "Internal server error"):
    from .extensions import db  # late: errors must stay importable without the extensions

    request_id = g.get("request_id")
    log.error("unhandled error", exc_info=exc, extra={"request_id": request_id})
    try:
        db.session.rollback()  # never leave a half-done write behind a 500
    except Exception:  # pragma: no cover - the database itself may be what failed
        log.warning("rollback after an unhandled error failed", extra={"request_id": request_id})
    return _respond(500, "INTERNAL_ERROR", message, {"requestId": request_id})


def unexpected_error_message(message: str) -> Callable:
    """View decorator: an unexpected error answers this message (e.g. the spec's "Failed to generate API
    key") instead of the generic one; it is still a 500, logged and rolled back like any other."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except (ApiError, HTTPException):
                raise  # an answer the client can act on already
            except Exception as exc:
                return handle_unexpected(exc, message)

        return wrapper

    return decorate


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
