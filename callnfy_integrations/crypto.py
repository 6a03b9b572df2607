"""Encryption of stored secrets: AES-256-GCM, a key id in every ciphertext, bound to user and field."""

from __future__ import annotations

import hashlib
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

VERSION = b"\x01"
KEY_ID_LEN = 4
NONCE_LEN = 12


class DecryptionError(Exception):
    """A ciphertext that no configured key opens, or that belongs to another user or field."""


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"callnfy-key-id:" + key).digest()[:KEY_ID_LEN]


def _associated_data(user_id: uuid.UUID | str, field: str) -> bytes:
    # Binding the ciphertext to its owner and column stops a copied blob from decrypting elsewhere.
    return f"callnfy:v1:{user_id}:{field}".encode()


class SecretBox:
    """Encrypts with the first key; decrypts with whichever configured key made the ciphertext."""

    def __init__(self, keys: list[bytes]):
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._primary = keys[0]
        self._keys = {key_id(k): AESGCM(k) for k in reversed(keys)}
        self._primary_id = key_id(self._primary)

    def encrypt(self, plaintext: str, *, user_id: uuid.UUID | str, field: str) -> bytes:
        nonce = os.urandom(NONCE_LEN)
        sealed = self._keys[self._primary_id].encrypt(nonce, plaintext.encode(), _associated_data(user_id, field))
        return VERSION + self._primary_id + nonce + sealed

    def decrypt(self, blob: bytes, *, user_id: uuid.UUID | str, field: str) -> str:
        blob = bytes(blob)
        if len(blob) < 1 + KEY_ID_LEN + NONCE_LEN + 16 or blob[:1] != VERSION:
            raise DecryptionError("not a ciphertext of this service")
        kid, nonce, sealed = blob[1:1 + KEY_ID_LEN], blob[1 + KEY_ID_LEN:1 + KEY_ID_LEN + NONCE_LEN], \
            blob[1 + KEY_ID_LEN + NONCE_LEN:]
        aead = self._keys.get(kid)
        if aead is None:
            raise DecryptionError("encrypted with a key that is not configured")
        try:
            return aead.decrypt(nonce, sealed, _associated_data(user_id, field)).decode()
        except InvalidTag:
            raise DecryptionError("ciphertext does not open for this user and field") from None

    def is_current(self, blob: bytes) -> bool:
        """True when the blob is already encrypted with the primary key (nothing to rotate)."""
        return bytes(blob)[1:1 + KEY_ID_LEN] == self._primary_id


def secret_box() -> SecretBox:
    """The app's SecretBox, built once per app from `ENCRYPTION_KEYS`."""
    box = current_app.extensions.get("callnfy_secret_box")
    if box is None:
        box = current_app.extensions["callnfy_secret_box"] = SecretBox(current_app.config["ENCRYPTION_KEYS"])
    return box
