"""The signature scheme receivers verify (the README's snippet does the same)."""

from __future__ import annotations

import hashlib
import hmac

from creativeflow.webhooks.signing import new_secret, signature_header, verify_signature

BODY = b'{"event_type":"jobs.finished","job_id":"x"}'


def test_the_header_is_a_timestamp_and_an_hmac_of_timestamp_dot_body() -> None:
    secret = new_secret()
    header = signature_header(secret, BODY, timestamp=1_700_000_000)
    expected = hmac.new(secret.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_a_receiver_accepts_a_fresh_signature_and_refuses_anything_else() -> None:
    secret = new_secret()
    header = signature_header(secret, BODY, timestamp=1_700_000_000)
    now = 1_700_000_100
    assert verify_signature(secret, header, BODY, now=now)
    assert not verify_signature(new_secret(), header, BODY, now=now)
    assert not verify_signature(secret, header, BODY + b" ", now=now)
    assert not verify_signature(secret, header, BODY, now=1_700_000_000 + 301)  # replayed
    assert not verify_signature(secret, "v1=abc", BODY, now=now)
    assert not verify_signature(secret, "t=soon,v1=abc", BODY, now=now)


def test_secrets_are_unique_and_long() -> None:
    secrets = {new_secret() for _ in range(100)}
    assert len(secrets) == 100
    assert all(s.startswith("whsec_") and len(s) >= 6 + 43 for s in secrets)
