"""Field encryption for secrets kept at rest (webhook signing secrets, data-source credentials).

AES-256-GCM (`cryptography`). Every ciphertext names the key that made it and is bound to its
row and column: the associated data is `"<purpose>:<row id>"`, so a value copied into another
row, or another column, fails to decrypt instead of being read as that row's secret.

Stored form: `v1.<key id>.<nonce>.<ciphertext and tag>` (the last two URL-safe base64).

Keys: FIELD_ENCRYPTION_KEYS (comma-separated, 32 random bytes each, URL-safe base64; the first
encrypts, every one decrypts) and always a key derived from SECRET_KEY with HKDF, which encrypts
when no key is configured. Adding a key in front of the list rotates: new values use it, old
ones still decrypt. The key id is a short fingerprint of the key, never the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import uuid
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT_VERSION = "v1"
KEY_BYTES = 32
_NONCE_BYTES = 12
_HKDF_SALT = b"creativeflow field encryption"
_HKDF_INFO = b"aes-256-gcm v1"


class DecryptionError(ValueError):
    """A stored value that no configured key can open for this row (wrong key, wrong row, or
    altered)."""


def derive_key(secret: str) -> bytes:
    """The AES key derived from SECRET_KEY (HKDF-SHA256): never the signing key itself."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=_HKDF_SALT, info=_HKDF_INFO)
    return hkdf.derive(secret.encode())


def parse_key(text: str) -> bytes:
    """A key given in settings: URL-safe base64 of 32 bytes (`FieldCipher.new_key()`)."""
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a field encryption key must be URL-safe base64") from exc
    if len(key) != KEY_BYTES:
        raise ValueError(f"a field encryption key must be {KEY_BYTES} bytes, not {len(key)}")
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"creativeflow key id:" + key).hexdigest()[:12]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FieldCipher:
    def __init__(self, keys: Iterable[bytes]) -> None:
        """`keys` in order of preference: the first encrypts, all decrypt."""
        self._keys: dict[str, AESGCM] = {}
        self._active: str | None = None
        for key in keys:
            kid = key_id(key)
            self._keys.setdefault(kid, AESGCM(key))
            self._active = self._active or kid
        if self._active is None:
            raise ValueError("a field cipher needs at least one key")

    @classmethod
    def from_secrets(cls, secret_key: str, configured: Iterable[str] = ()) -> FieldCipher:
        """The configured keys first, then the one derived from SECRET_KEY."""
        return cls([*(parse_key(text) for text in configured), derive_key(secret_key)])

    @staticmethod
    def new_key() -> str:
        """A fresh key in the form FIELD_ENCRYPTION_KEYS takes."""
        return _b64(os.urandom(KEY_BYTES))

    @property
    def active_key_id(self) -> str:
        assert self._active is not None
        return self._active

    @staticmethod
    def _associated(purpose: str, row_id: uuid.UUID) -> bytes:
        return f"{purpose}:{row_id}".encode()

    def encrypt(self, plaintext: str, *, purpose: str, row_id: uuid.UUID) -> str:
        """`purpose` names the column (`webhook_endpoints.secret`); `row_id` is the row's id."""
        kid = self.active_key_id
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[kid].encrypt(
            nonce, plaintext.encode(), self._associated(purpose, row_id)
        )
        return ".".join((FORMAT_VERSION, kid, _b64(nonce), _b64(sealed)))

    def decrypt(self, stored: str, *, purpose: str, row_id: uuid.UUID) -> str:
        parts = stored.split(".")
        if len(parts) != 4 or parts[0] != FORMAT_VERSION:
            raise DecryptionError("not a value this platform encrypted")
        _, kid, nonce, sealed = parts
        cipher = self._keys.get(kid)
        if cipher is None:
            raise DecryptionError(f"encrypted with key {kid}, which is not configured")
        try:
            plaintext = cipher.decrypt(
                _unb64(nonce), _unb64(sealed), self._associated(purpose, row_id)
            )
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise DecryptionError("the value does not belong to this row or was altered") from exc
        return plaintext.decode()

    def key_id_of(self, stored: str) -> str | None:
        """Which key encrypted a stored value (to find values left on a retired key)."""
        parts = stored.split(".")
        return parts[1] if len(parts) == 4 and parts[0] == FORMAT_VERSION else None

    def reencrypt(self, stored: str, *, purpose: str, row_id: uuid.UUID) -> str | None:
        """The value encrypted under the active key, or None when it already is."""
        if self.key_id_of(stored) == self.active_key_id:
            return None
        return self.encrypt(
            self.decrypt(stored, purpose=purpose, row_id=row_id), purpose=purpose, row_id=row_id
        )
