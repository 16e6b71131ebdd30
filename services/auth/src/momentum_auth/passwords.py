"""Password hashing with argon2id: hashing off the event loop, rehash on sign-in, dummy checks."""

from __future__ import annotations

import asyncio
import secrets

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher


class PasswordHasher:
    """argon2id with the configured parameters (OWASP's minimum or stronger in production)."""

    def __init__(self, *, memory_cost_kib: int, time_cost: int, parallelism: int) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism
                ),
            )
        )
        # Hashed with the current parameters, so checking it costs what a real check costs.
        self._dummy_hash = self._hash.hash(secrets.token_urlsafe(32))

    async def hash(self, password: str) -> str:
        # argon2 releases the GIL: a thread keeps the event loop free during the ~50 ms.
        return await asyncio.to_thread(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """Whether it matches, and a new hash when the stored one uses outdated parameters."""
        return await asyncio.to_thread(self._hash.verify_and_update, password, password_hash)

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of a real check, for a username that does not exist."""
        await asyncio.to_thread(self._hash.verify, password, self._dummy_hash)
