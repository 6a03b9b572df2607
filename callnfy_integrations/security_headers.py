"""Security headers on every response, and a strict Content-Security-Policy on HTML pages.

Every response: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` (the OAuth
callback's redirect must not hand its URL to the next site), and HSTS when PUBLIC_API_URL is https.
HTML pages (the API docs, the queue dashboard, the development console) also get a CSP that allows
only this origin's own files — each inline `<script>`/`<style>` block of the page is allowed by its
SHA-256, nothing else inline runs — plus `frame-ancestors 'none'` (and X-Frame-Options for old
browsers): no page can be framed for clickjacking.
"""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Flask, Response, request

_INLINE = re.compile(r"<(script|style)(?![^>]*\bsrc=)[^>]*>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
HSTS = "max-age=31536000; includeSubDomains"
# rq-dashboard (/admin/rq) compiles its underscore templates with new Function() and writes these fixed
# style attributes: its pages also allow eval and exactly these attributes (by hash), nothing else inline.
DASHBOARD_PREFIX = "/admin/rq/"
DASHBOARD_STYLE_ATTRIBUTES = ("float: right", "float: right; margin-right: 8px;", "", "display: none",
                              "text-align: center;")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _hashes(html: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"script": [], "style": []}
    for tag, body in _INLINE.findall(html):
        found[tag.lower()].append(_sha256(body))
    return found


def content_security_policy(response: Response) -> str:
    hashes = {"script": [], "style": []} if response.direct_passthrough else _hashes(
        response.get_data(as_text=True))
    if request.path.startswith(DASHBOARD_PREFIX):
        hashes["script"].insert(0, "'unsafe-eval'")
        hashes["style"][:0] = ["'unsafe-hashes'", *map(_sha256, DASHBOARD_STYLE_ATTRIBUTES)]
    return "; ".join([
        "default-src 'self'",
        " ".join(["script-src 'self'", *hashes["script"]]),
        " ".join(["style-src 'self'", *hashes["style"]]),
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def register_security_headers(app: Flask) -> None:
    https = app.config["PUBLIC_API_URL"].startswith("https://")

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if https:
            headers.setdefault("Strict-Transport-Security", HSTS)
        if response.mimetype == "text/html":
            headers.setdefault("Content-Security-Policy", content_security_policy(response))
            headers.setdefault("X-Frame-Options", "DENY")
        return response
