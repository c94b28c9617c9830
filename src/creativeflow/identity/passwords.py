"""Password hashing: argon2id with OWASP's parameters; bcrypt hashes from older systems still
verify and are upgraded on the next login. Hashing runs in a worker thread, off the event loop."""

from __future__ import annotations

import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
_hasher = PasswordHash(
    (Argon2Hasher(memory_cost=19 * 1024, time_cost=2, parallelism=1), BcryptHasher())
)
# Verified against when the account does not exist, so unknown users take as long as known ones.
_DUMMY_HASH = _hasher.hash("timing-equaliser-not-a-password")


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


async def verify_password(password: str, stored_hash: str | None) -> tuple[bool, str | None]:
    """(matches, new hash to store or None). A missing hash still costs one verification."""

    def verify() -> tuple[bool, str | None]:
        if stored_hash is None:
            _hasher.verify(password, _DUMMY_HASH)
            return False, None
        try:
            return _hasher.verify_and_update(password, stored_hash)
        except Exception:  # an unreadable stored hash never matches
            _hasher.verify(password, _DUMMY_HASH)
            return False, None

    return await anyio.to_thread.run_sync(verify)
