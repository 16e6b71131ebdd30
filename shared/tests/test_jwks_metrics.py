"""A JWKS refresh that fails is counted, so an alert can see a verifier losing its key source."""

from __future__ import annotations

from momentum_devtools.natsserver import free_port
from momentum_shared.metrics import REGISTRY
from momentum_shared.security.jwks import JwksCache

METRIC = "momentum_jwks_refresh_failures_total"


def failures() -> float:
    return REGISTRY.get_sample_value(METRIC) or 0.0


async def test_a_jwks_refresh_that_cannot_reach_auth_is_counted_as_a_failure() -> None:
    # Nothing listens on a port just found free: the fetch is refused.
    cache = JwksCache(f"http://127.0.0.1:{free_port()}/.well-known/jwks.json", timeout=2.0)
    before = failures()
    try:
        assert await cache.refresh() is False
        assert await cache.refresh() is False
    finally:
        await cache.aclose()
    assert failures() == before + 2
    assert cache.last_error is not None
