"""Password hashing: argon2id with OWASP's parameters; bcrypt hashes from older systems (and
argon2 hashes made with other parameters) still verify and are upgraded on the next login.
Hashing runs in a worker thread, off the event loop."""

from __future__ import annotations

import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2


class Passwords:
    """Hashing and verifying with one set of argon2id parameters (PASSWORD_HASH_MEMORY_KIB,
    PASSWORD_HASH_TIME_COST; production refuses anything below OWASP's)."""

    def __init__(
        self, memory_kib: int = OWASP_MEMORY_KIB, time_cost: int = OWASP_TIME_COST
    ) -> None:
        self._hasher = PasswordHash(
            (
                Argon2Hasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=1),
                BcryptHasher(),
            )
        )
        # Verified against when the account does not exist, so unknown users take as long
        # as known ones.
        self._dummy_hash = self._hasher.hash("timing-equaliser-not-a-password")

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password)

    async def verify(self, password: str, stored_hash: str | None) -> tuple[bool, str | None]:
        """(matches, new hash to store or None). A missing hash still costs one
        verification."""

        def verify() -> tuple[bool, str | None]:
            if stored_hash is None:
                self._hasher.verify(password, self._dummy_hash)
                return False, None
            try:
                return self._hasher.verify_and_update(password, stored_hash)
            except Exception:  # an unreadable stored hash never matches
                self._hasher.verify(password, self._dummy_hash)
                return False, None

        return await anyio.to_thread.run_sync(verify)


OWASP = Passwords()


async def hash_password(password: str) -> str:
    return await OWASP.hash(password)


async def verify_password(password: str, stored_hash: str | None) -> tuple[bool, str | None]:
    return await OWASP.verify(password, stored_hash)
