"""Field encryption (`creativeflow.encryption`): AES-GCM bound to row and column, key ids,
rotation."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from creativeflow.encryption import DecryptionError, FieldCipher, derive_key, key_id, parse_key
from creativeflow.platform import build_platform
from creativeflow.settings import ConfigurationError, Settings

SECRET_KEY = "a-signing-key-long-enough-for-the-tests-0123456789"


def test_a_value_round_trips_and_names_its_key() -> None:
    cipher = FieldCipher.from_secrets(SECRET_KEY)
    row = uuid.uuid4()
    stored = cipher.encrypt("whsec_abc", purpose="t.secret", row_id=row)
    version, kid, _nonce, _sealed = stored.split(".")
    assert version == "v1" and kid == cipher.active_key_id == key_id(derive_key(SECRET_KEY))
    assert "whsec_abc" not in stored
    assert cipher.decrypt(stored, purpose="t.secret", row_id=row) == "whsec_abc"
    # A fresh nonce each time: the same secret never looks the same twice.
    assert cipher.encrypt("whsec_abc", purpose="t.secret", row_id=row) != stored


def test_a_value_opens_only_for_its_row_and_column_and_unaltered() -> None:
    cipher = FieldCipher.from_secrets(SECRET_KEY)
    row = uuid.uuid4()
    stored = cipher.encrypt("credential", purpose="t.secret", row_id=row)
    with pytest.raises(DecryptionError):
        cipher.decrypt(stored, purpose="t.secret", row_id=uuid.uuid4())
    with pytest.raises(DecryptionError):
        cipher.decrypt(stored, purpose="t.password", row_id=row)
    head, sealed = stored.rsplit(".", 1)
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(DecryptionError):
        cipher.decrypt(f"{head}.{flipped}", purpose="t.secret", row_id=row)
    with pytest.raises(DecryptionError):
        cipher.decrypt("plain text", purpose="t.secret", row_id=row)


def test_a_new_key_in_front_rotates_and_old_values_still_open() -> None:
    row = uuid.uuid4()
    before = FieldCipher.from_secrets(SECRET_KEY)
    old = before.encrypt("kept", purpose="t.secret", row_id=row)
    new_key = FieldCipher.new_key()
    after = FieldCipher.from_secrets(SECRET_KEY, [new_key])
    assert after.active_key_id == key_id(parse_key(new_key)) != before.active_key_id
    assert after.decrypt(old, purpose="t.secret", row_id=row) == "kept"
    fresh = after.encrypt("new", purpose="t.secret", row_id=row)
    assert after.key_id_of(fresh) == after.active_key_id
    # A platform without that key cannot open the new value, and says which key it needs.
    with pytest.raises(DecryptionError, match=after.active_key_id):
        before.decrypt(fresh, purpose="t.secret", row_id=row)
    # Another SECRET_KEY derives another key.
    with pytest.raises(DecryptionError):
        FieldCipher.from_secrets(SECRET_KEY + "x").decrypt(old, purpose="t.secret", row_id=row)


@pytest.mark.parametrize("bad", ["not base64!!", "c2hvcnQ"])
def test_a_malformed_configured_key_stops_the_platform(bad: str, tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "environment": "test",
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'never.db'}",
            "data_dir": tmp_path,
            "secret_key": SECRET_KEY,
            "field_encryption_keys": bad,
        }
    )
    with pytest.raises(ConfigurationError, match="FIELD_ENCRYPTION_KEYS"):
        build_platform(settings)
