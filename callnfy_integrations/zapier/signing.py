"""Standard Webhooks signatures: `v1,` + base64 HMAC-SHA256 over `{id}.{timestamp}.{body}`.

The key is the UTF-8 bytes of the account's API key, so a receiver verifies with
`standardwebhooks.Webhook(api_key.encode()).verify(body, headers)`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign(api_key: str, message_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(api_key.encode(), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def delivery_headers(api_key: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Callnfy-Key": api_key,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(api_key, message_id, timestamp, body),
    }
