"""Webhook signatures: `X-CreativeFlow-Signature: t=<unix seconds>,v1=<hex>` where the hex is
HMAC-SHA256, keyed with the endpoint's secret, over `f"{t}.{raw body}"`. Every attempt signs
afresh with its own timestamp, so a receiver can refuse old (replayed) requests."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"
SIGNATURE_SCHEME = "v1"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def signature_header(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    moment = int(time.time()) if timestamp is None else timestamp
    return f"t={moment},{SIGNATURE_SCHEME}={signature(secret, moment, body)}"


def verify_signature(
    secret: str, header: str, body: bytes, *, tolerance_seconds: int = 300, now: int | None = None
) -> bool:
    """What a receiver does: the header's timestamp is recent and one v1 signature matches."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, given) for given in fields.get(SIGNATURE_SCHEME, []))
