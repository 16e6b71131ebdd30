"""Password hashing with argon2id: a bounded pool off the event loop, rehash on sign-in, dummies.

argon2id is meant to be expensive, so every check an anonymous client can ask for is CPU it
spends on our behalf. The work runs on a pool with as many threads as the container may use
CPUs, behind a short queue: when the queue is full the request is answered 503 with
``Retry-After`` at once, rather than joining a queue that grows while every other request
(refresh grants, revocations, readiness) waits for a CPU.
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from momentum_auth import errors

T = TypeVar("T")

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Seconds a client is told to wait: the queue drains in a few hash times.
BUSY_RETRY_AFTER = 1


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_quota(root: Path) -> float | None:
    """CPUs allowed by the cgroup's CFS quota (v2 ``cpu.max``, else v1), None when unlimited."""
    if (line := _read(root / "cpu.max")) is not None:
        quota, _, period = line.partition(" ")
        if quota != "max":
            try:
                return int(quota) / int(period or "100000")
            except (ValueError, ZeroDivisionError):
                return None
        return None
    for directory in (root / "cpu", root / "cpu,cpuacct", root):
        quota_us, period_us = (
            _read(directory / "cpu.cfs_quota_us"),
            _read(directory / "cpu.cfs_period_us"),
        )
        if quota_us is None or period_us is None:
            continue
        try:
            quota_value, period_value = int(quota_us), int(period_us)
        except ValueError:
            return None
        if quota_value <= 0 or period_value <= 0:
            return None  # -1: no quota
        return quota_value / period_value
    return None


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """CPUs this process may really use: its cgroup quota, else the CPUs it may run on.

    Never the node's CPU count: a container limited to one CPU on a 64-core node must not
    start 64 argon2 threads.
    """
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    quota = _cgroup_quota(root)
    if quota is None:
        return max(1, affinity)
    return max(1, min(affinity, math.ceil(quota)))


class PasswordHasher:
    """argon2id with the configured parameters (OWASP's minimum or stronger in production)."""

    def __init__(
        self,
        *,
        memory_cost_kib: int,
        time_cost: int,
        parallelism: int,
        workers: int | None = None,
        queue_length: int = 16,
    ) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism
                ),
            )
        )
        self.workers = workers or available_cpus()
        self.queue_length = queue_length
        # Hashes running or waiting for a thread; only the event loop's thread changes it.
        self.pending = 0
        self.refused = 0
        self._executor: ThreadPoolExecutor | None = None
        # Hashed with the current parameters, so checking it costs what a real check costs.
        self._dummy_hash = self._hash.hash(secrets.token_urlsafe(32))

    @property
    def capacity(self) -> int:
        """Hashes admitted at once: one running per thread plus the queue."""
        return self.workers + self.queue_length

    async def _run(self, function: Callable[..., T], *args: str) -> T:
        if self.pending >= self.capacity:
            self.refused += 1
            raise errors.hashing_busy(BUSY_RETRY_AFTER)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.workers, thread_name_prefix="argon2"
            )
        self.pending += 1
        try:
            # argon2 releases the GIL: the threads keep the event loop free during the hash.
            return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
        finally:
            self.pending -= 1

    def close(self) -> None:
        """Stop the pool's threads (a later hash starts a new pool)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def hash(self, password: str) -> str:
        return await self._run(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """Whether it matches, and a new hash when the stored one uses outdated parameters."""
        return await self._run(self._hash.verify_and_update, password, password_hash)

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of a real check, for a username that does not exist."""
        await self._run(self._hash.verify, password, self._dummy_hash)
