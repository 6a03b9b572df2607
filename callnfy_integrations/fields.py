"""String fields whose documented `pattern` is exactly the check the server makes."""

from __future__ import annotations

import re

import marshmallow as ma

# An http(s) URL as clients send it: a host name or IPv4 address, an optional port, then printable
# ASCII only (no spaces, no control characters; anything else percent-encoded, as RFC 3986 asks).
HTTP_URL_PATTERN = r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?([/?#][!-~]*)?$"


class Matches(ma.validate.Validator):
    """The whole value matches `pattern` (fullmatch: Python's `$` would also pass a trailing newline)."""

    def __init__(self, pattern: str, error: str) -> None:
        self.regex = re.compile(pattern)
        self.error = error

    def __call__(self, value: str) -> str:
        if not self.regex.fullmatch(value):
            raise ma.ValidationError(self.error)
        return value


def HttpUrl(*, max_length: int, **kwargs) -> ma.fields.String:  # noqa: N802 - reads like a field class
    return ma.fields.String(
        validate=[ma.validate.Length(max=max_length), Matches(HTTP_URL_PATTERN, "Not a valid http(s) URL.")],
        metadata={"pattern": HTTP_URL_PATTERN}, **kwargs)
