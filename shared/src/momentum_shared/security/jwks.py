"""An async JWKS cache: TTL, single flight, stale keys on error, throttled unknown-kid refetch.

PyJWT's ``PyJWKClient`` blocks on urllib and forgets its keys when a refresh fails, so
verification would stall the event loop or stop working while auth is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from jwt import PyJWK

logger = logging.getLogger("momentum.jwks")

# kty -> the algorithm implied when a JWK carries no "alg".
_DEFAULT_ALG = {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        algorithms: tuple[str, ...] = ("RS256",),
        ttl: float = 300.0,
        unknown_kid_cooldown: float = 30.0,
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.algorithms = algorithms
        self.ttl = ttl
        self.unknown_kid_cooldown = unknown_kid_cooldown
        self._timeout = timeout
        self._client = client
        self._owns_client = client is None
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None
        self._unknown: dict[str, float] = {}
        self.fetch_count = 0
        self.last_error: str | None = None

    @property
    def loaded(self) -> bool:
        return self._fetched_at is not None

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    async def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        return self._client

    async def aclose(self) -> None:
        if self._background is not None:
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._background
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    async def refresh(self) -> bool:
        """Fetch the JWKS once; concurrent callers share the one fetch. Keeps old keys on error."""
        started = self._clock()
        async with self._lock:
            if self._last_attempt is not None and self._last_attempt >= started:
                return self.loaded  # someone refreshed while we waited: single flight
            self._last_attempt = self._clock()
            self.fetch_count += 1
            try:
                client = await self._http()
                response = await client.get(self.url, headers={"Accept": "application/json"})
                response.raise_for_status()
                keys = self._parse(response.json())
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "JWKS refresh failed; keeping %d cached keys",
                    len(self._keys),
                    extra={"jwks_url": self.url, "error": type(exc).__name__},
                )
                return False
            self._keys = keys
            self._fetched_at = self._clock()
            self._unknown.clear()
            self.last_error = None
            return True

    def _parse(self, document: Any) -> dict[str, PyJWK]:
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("JWKS document has no 'keys' list")
        keys: dict[str, PyJWK] = {}
        for entry in document["keys"]:
            if not isinstance(entry, dict):
                continue
            kid, kty = entry.get("kid"), entry.get("kty")
            if not isinstance(kid, str) or not isinstance(kty, str):
                continue
            if entry.get("use", "sig") != "sig":
                continue
            alg = entry.get("alg") or _DEFAULT_ALG.get(kty)
            if alg not in self.algorithms:
                continue
            try:
                keys[kid] = PyJWK(entry, algorithm=alg)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
                logger.warning("skipping an unusable JWKS key", extra={"kid": kid})
        return keys

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self.ttl

    def _refresh_in_background(self) -> None:
        if self._background is None or self._background.done():
            self._background = asyncio.create_task(self._refresh_quietly())

    async def _refresh_quietly(self) -> None:
        await self.refresh()

    async def key_for(self, kid: str) -> PyJWK | None:
        """The key for ``kid``; an unknown kid triggers at most one refetch per cooldown."""
        if not self.loaded:
            await self.refresh()
        elif self._stale():
            self._refresh_in_background()  # serve the cached keys meanwhile
        key = self._keys.get(kid)
        if key is not None:
            return key
        now = self._clock()
        if (until := self._unknown.get(kid)) is not None and now < until:
            return None  # negative cache
        last = self._last_attempt
        if last is None or now - last >= self.unknown_kid_cooldown:
            await self.refresh()
            key = self._keys.get(kid)
            if key is not None:
                return key
        if len(self._unknown) > 10_000:
            self._unknown.clear()
        self._unknown[kid] = now + self.unknown_kid_cooldown
        return None

    async def load_until_ready(self, *, interval: float = 1.0) -> None:
        """Keep trying the first fetch (readiness waits for it); then refresh on the TTL."""
        while not self.loaded:
            if not await self.refresh():
                await asyncio.sleep(interval)
        while True:
            await asyncio.sleep(max(1.0, self.ttl))
            await self.refresh()

    async def check_ready(self) -> None:
        if not self.loaded:
            raise RuntimeError(f"JWKS not loaded from {self.url}: {self.last_error or 'pending'}")
