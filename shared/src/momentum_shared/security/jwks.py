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
from prometheus_client import Counter

from momentum_shared.metrics import REGISTRY

logger = logging.getLogger("momentum.jwks")
REFRESH_FAILURES = Counter(
    "momentum_jwks_refresh_failures_total",
    "JWKS fetches that failed (the cached keys are kept)",
    registry=REGISTRY,
)

# kty -> the algorithm implied when a JWK carries no "alg".
_DEFAULT_ALG = {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}
# A JWKS larger than this is refused: a key set is a few KiB, and parsing is not free.
MAX_JWKS_BYTES = 256 * 1024
MAX_JWKS_KEYS = 64


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        algorithms: tuple[str, ...] = ("RS256",),
        ttl: float = 300.0,
        unknown_kid_cooldown: float = 30.0,
        retry_interval: float = 1.0,
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.algorithms = algorithms
        self.ttl = ttl
        self.unknown_kid_cooldown = unknown_kid_cooldown
        self.retry_interval = retry_interval
        self._timeout = timeout
        self._client = client
        self._owns_client = client is None
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._inflight: asyncio.Future[bool] | None = None
        self._background: asyncio.Task[None] | None = None
        self._unknown: dict[str, float] = {}
        # Kids the owner of the key set announced (see ``expect``): the next lookup refetches.
        self._expected: set[str] = set()
        self.fetch_count = 0
        self.last_error: str | None = None

    @property
    def loaded(self) -> bool:
        return self._fetched_at is not None

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def has(self, kid: str) -> bool:
        """True while ``kid`` is in the cached key set (cheap: no fetch, no lock)."""
        return kid in self._keys

    def expect(self, kid: str) -> None:
        """Announce a kid that is about to sign: its first lookup refetches despite the cooldown.

        For the issuer's own verifier, which learns of a key it has just created or promoted
        before any JWKS refresh would show it; a random kid still waits for the cooldown.
        """
        if kid not in self._keys and len(self._expected) < MAX_JWKS_KEYS:
            self._unknown.pop(kid, None)
            self._expected.add(kid)

    def status(self) -> dict[str, Any]:
        """What readiness and operators see about the key set."""
        return {
            "loaded": self.loaded,
            "keys": len(self._keys),
            "fetches": self.fetch_count,
            "last_error": self.last_error,
        }

    async def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        return self._client

    async def aclose(self) -> None:
        for task in (self._background, self._inflight):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    async def refresh(self) -> bool:
        """Fetch the JWKS once; concurrent callers share the one fetch. Keeps old keys on error."""
        inflight = self._inflight
        if inflight is None or inflight.done():
            inflight = self._inflight = asyncio.ensure_future(self._fetch())
        # Shielded: a caller that is cancelled (its client went away) does not cancel the fetch
        # every other caller is waiting for.
        return await asyncio.shield(inflight)

    async def _fetch(self) -> bool:
        self._last_attempt = self._clock()
        self.fetch_count += 1
        try:
            client = await self._http()
            # Redirects are not followed: the JWKS URL is configuration, never input.
            response = await client.get(
                self.url, headers={"Accept": "application/json"}, follow_redirects=False
            )
            response.raise_for_status()
            if len(response.content) > MAX_JWKS_BYTES:
                raise ValueError("JWKS document is too large")
            keys = self._parse(response.json())
        except Exception as exc:
            REFRESH_FAILURES.inc()
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
        for entry in document["keys"][:MAX_JWKS_KEYS]:
            if not isinstance(entry, dict):
                continue
            kid, kty = entry.get("kid"), entry.get("kty")
            if not isinstance(kid, str) or not isinstance(kty, str):
                continue
            if entry.get("use", "sig") != "sig":
                continue  # an encryption key must never verify a signature
            ops = entry.get("key_ops")
            if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
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
            # Before the first success, retry at most once per retry interval, so a flood of
            # requests while auth is down does not turn into a flood of fetches.
            last = self._last_attempt
            if last is None or self._clock() - last >= self.retry_interval:
                await self.refresh()
            if not self.loaded:
                return None
        elif self._stale():
            last = self._last_attempt
            if last is None or self._clock() - last >= self.retry_interval:
                self._refresh_in_background()  # serve the cached keys meanwhile
        key = self._keys.get(kid)
        if key is not None:
            return key
        now = self._clock()
        expected = kid in self._expected
        self._expected.discard(kid)  # one forced refetch per announcement
        if not expected and (until := self._unknown.get(kid)) is not None and now < until:
            return None  # negative cache
        last = self._last_attempt
        if expected or last is None or now - last >= self.unknown_kid_cooldown:
            await self.refresh()
            key = self._keys.get(kid)
            if key is not None:
                return key
        if len(self._unknown) > 10_000:
            self._unknown.clear()
        self._unknown[kid] = now + self.unknown_kid_cooldown
        return None

    async def load_until_ready(self, *, interval: float | None = None) -> None:
        """Keep trying the first fetch (readiness waits for it); then refresh on the TTL.

        A failed refresh is retried after ``interval`` rather than a whole TTL later, while the
        stale keys keep verifying.
        """
        retry = self.retry_interval if interval is None else interval
        while not self.loaded:
            if not await self.refresh():
                await asyncio.sleep(retry)
        while True:
            await asyncio.sleep(max(1.0, self.ttl))
            while not await self.refresh():
                await asyncio.sleep(max(retry, 1.0))

    async def check_ready(self) -> None:
        """Readiness: the keys are loaded (a probe may trigger the first fetch itself)."""
        if not self.loaded:
            await self.refresh()
        if not self.loaded:
            raise RuntimeError(f"JWKS not loaded from {self.url}: {self.last_error or 'pending'}")
