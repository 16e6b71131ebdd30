"""Settings base shared by every Momentum service (pydantic-settings)."""

from __future__ import annotations

import math
import os
import re
import string
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from momentum_shared.nats import NatsAuth

Environment = Literal["development", "test", "production"]

# The longest access-token lifetime auth may be configured to issue.
MAX_ACCESS_TOKEN_LIFETIME_SECONDS = 24 * 3600

# A secret outside development must be at least this hard to guess.
MIN_SECRET_BITS = 256
# Fewer distinct characters than this is a pattern, not randomness (32 random bytes in hex
# show all 16 digits; in base64 some 30 characters).
MIN_SECRET_DISTINCT_CHARACTERS = 10
GENERATE_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"

_HEX = frozenset(string.hexdigits)
_BASE64 = frozenset(string.ascii_letters + string.digits + "+/-_=")
_CLASSES = (
    (frozenset(string.ascii_lowercase), 26),
    (frozenset(string.ascii_uppercase), 26),
    (frozenset(string.digits), 10),
)
_OTHER_CHARACTERS = 33  # printable ASCII punctuation and space


# What Kubernetes sets for a Service whose name reads like a program's prefix (service links:
# a Service ``momentum-auth`` gives ``MOMENTUM_AUTH_SERVICE_HOST``, ``MOMENTUM_AUTH_PORT``, …).
_SERVICE_LINK = re.compile(
    r"SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_[0-9]+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)?"
)


def unknown_variables(
    settings: BaseSettings, environ: Mapping[str, str] | None = None
) -> list[str]:
    """The variables with the program's prefix that name none of its settings.

    They are ignored, so a misspelt or renamed setting would silently keep its default; the
    server names them at start. Kubernetes' service-link variables are not settings either.
    """
    prefix = str(settings.model_config.get("env_prefix") or "").upper()
    if not prefix:
        return []
    known = {prefix + name.upper() for name in type(settings).model_fields}
    unknown = []
    for name in os.environ if environ is None else environ:
        upper = name.upper()
        if not upper.startswith(prefix) or upper in known:
            continue
        if _SERVICE_LINK.fullmatch(upper[len(prefix) :]):
            continue
        unknown.append(name)
    return sorted(unknown)


def secret_bits(value: str) -> float:
    """A conservative estimate of the entropy of ``value``, in bits.

    A value in the hex alphabet counts 4 bits a character and one in the base64 (or
    base64url) alphabet 6: the length of what it decodes to, which is what
    ``openssl rand -hex 32`` and ``secrets.token_urlsafe(32)`` make. Other text counts log2
    of the character classes it uses (lower, upper, digits, others) per character. Patterns
    that would score well anyway (``aaaa…``, ``abab…``) are refused by ``check_secret``.
    """
    if not value:
        return 0.0
    chars = set(value)
    if chars <= _HEX:
        return len(value) * 4.0
    if chars <= _BASE64:
        return len(value.rstrip("=")) * 6.0
    pool = sum(size for members, size in _CLASSES if chars & members)
    if any(not any(char in members for members, _ in _CLASSES) for char in chars):
        pool += _OTHER_CHARACTERS
    return len(value) * math.log2(max(pool, 2))


def _periodic(value: str) -> bool:
    """``value`` is a shorter string repeated (``abab…``, 32 times ``a``)."""
    return len(value) > 1 and value in (value + value)[1:-1]


def check_secret(name: str, value: str, *, known: Collection[str] = ()) -> None:
    """Refuse a secret that is public, repetitive or under ``MIN_SECRET_BITS`` of entropy.

    ``name`` is the environment variable, so the error says which setting to fix; ``known``
    holds the development defaults, which anyone who reads the source knows.
    """
    advice = f"generate one with: {GENERATE_SECRET}"
    if value in known:
        raise ValueError(f"{name} is the public development default; {advice}")
    if (bits := secret_bits(value)) < MIN_SECRET_BITS:
        raise ValueError(
            f"{name} has about {bits:.0f} bits of entropy, below {MIN_SECRET_BITS}; {advice}"
        )
    if len(set(value)) < MIN_SECRET_DISTINCT_CHARACTERS or _periodic(value):
        raise ValueError(f"{name} is too repetitive to be random; {advice}")


class MomentumSettings(BaseSettings):
    """Fields every service has; each service subclasses with its own ``env_prefix``."""

    # Attribute docstrings become field descriptions (docs/configuration.md is built from them).
    model_config = SettingsConfigDict(extra="ignore", env_file=None, use_attribute_docstrings=True)

    environment: Environment = "development"
    """development, test or production; development secrets refuse production"""
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING or ERROR"""
    log_json: bool = True
    """one JSON object per log line"""
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    """largest request body accepted, counted while it streams in (413 above)"""
    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    """a request's line and headers must arrive within this time (408 and close after)"""
    http_body_timeout_seconds: float = Field(default=30.0, gt=0)
    """a request's body must arrive within this time after its headers (408 and close after)"""
    http_keep_alive_timeout_seconds: float = Field(default=5.0, gt=0)
    """an idle keep-alive connection is closed after this time"""
    http_max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    """largest request line and header block accepted (431 above)"""
    http_max_header_fields: int = Field(default=100, ge=1)
    """most header fields accepted in one request (431 above)"""
    http_max_requests_per_connection: int = Field(default=10_000, ge=1)
    """requests served on one connection before the server closes it"""

    @property
    def is_development(self) -> bool:
        return self.environment in ("development", "test")


class DatabaseSettings(MomentumSettings):
    """A service that owns a database."""

    database_url: str = "sqlite+aiosqlite:///./.momentum/service.db"
    """SQLAlchemy async URL (sqlite+aiosqlite:///… or postgresql+asyncpg://…)"""
    database_pool_size: int = Field(default=10, ge=1)
    """Database connections per process, at most twice this many: each opened when needed and
    kept open from then on"""
    database_statement_cache: bool = True
    """PostgreSQL: asyncpg prepares each statement once per connection and keeps it; false
    behind a transaction-mode pooler (PgBouncer, a CloudNativePG Pooler), where the next
    transaction may run on another server connection that never saw it"""


class NatsSettings(BaseSettings):
    """Connection to NATS JetStream (mixed into services that publish or consume)."""

    nats_url: str = Field(default="nats://127.0.0.1:4222", description="NATS server URL")
    nats_connect_timeout_seconds: float = Field(
        default=2.0, gt=0, description="time allowed for one connect attempt"
    )
    nats_stream_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="replicas of the streams this service creates (3 on a production cluster)",
    )
    nats_user: str | None = Field(
        default=None,
        description="this program's NATS user (auth, tasks, analytics, gateway); unset: none",
    )
    nats_password: SecretStr | None = Field(default=None, description="the NATS user's password")
    nats_tls_ca_file: Path | None = Field(
        default=None, description="CA (PEM) that signed the NATS server's certificate (tls://)"
    )

    @property
    def nats_auth(self) -> NatsAuth:
        from momentum_shared.nats import NatsAuth

        password = self.nats_password.get_secret_value() if self.nats_password else None
        return NatsAuth(self.nats_user, password, self.nats_tls_ca_file)


class OutboxSettings(NatsSettings):
    """A service that writes events to a transactional outbox and relays them to JetStream."""

    outbox_relay_enabled: bool = Field(
        default=True, description="run the outbox relay inside the web process"
    )
    outbox_batch_size: int = Field(
        default=500,
        ge=1,
        le=4000,
        description="events published per batch, acks in flight together",
    )
    outbox_poll_interval_seconds: float = Field(
        default=0.2,
        gt=0,
        description=(
            "safety-net poll for unpublished events; commits wake the relay at once"
            " (in-process, and on PostgreSQL every replica by LISTEN/NOTIFY)"
        ),
    )
    outbox_retention_seconds: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="published outbox rows are deleted after this long",
    )
    nats_stream_max_bytes: int = Field(
        default=1024**3,
        ge=1024**2,
        description=(
            "byte limit of the streams this service creates, oldest events discarded beyond it"
            " (events/day x bytes/event x days of history; docs/deploy.md); applied at"
            " creation only, a limit an operator set later is kept"
        ),
    )
    nats_stream_max_age_seconds: int = Field(
        default=90 * 24 * 3600,
        ge=3600,
        description=(
            "age limit of the events in the streams this service creates; applied at"
            " creation only, like the byte limit"
        ),
    )


class PruneSettings(BaseSettings):
    """How a service prunes rows past their retention (``momentum_shared.pruning``)."""

    prune_interval_seconds: float = Field(
        default=300.0, gt=0, description="how often each replica tries a prune round"
    )
    prune_batch_size: int = Field(
        default=5000, ge=1, le=100_000, description="most rows one prune statement deletes"
    )
    prune_time_budget_seconds: float = Field(
        default=30.0,
        gt=0,
        description="a prune round stops after this long; the next round goes on",
    )


class TokenVerificationSettings(BaseSettings):
    """How a service verifies access tokens issued by auth."""

    model_config = SettingsConfigDict(use_attribute_docstrings=True)

    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    """auth's JWKS"""
    token_issuer: str = "http://127.0.0.1:8000"
    """the `iss` every access token must carry"""
    token_audience: str = "momentum-api"
    """the `aud` every access token must carry"""
    token_algorithms: tuple[str, ...] = ("RS256",)
    """accepted signature algorithms (pinned)"""
    token_leeway_seconds: int = Field(default=60, ge=0, le=300)
    """clock skew tolerated on exp, nbf and iat"""
    jwks_ttl_seconds: float = Field(default=300.0, gt=0)
    """how long fetched keys are used before a refresh"""
    jwks_unknown_kid_cooldown_seconds: float = Field(default=30.0, ge=0)
    """at most one refetch per this many seconds on an unknown kid"""


class RevocationSettings(NatsSettings, TokenVerificationSettings):
    """Following ``auth.session.revoked`` to refuse revoked sessions (gateway and services)."""

    model_config = SettingsConfigDict(use_attribute_docstrings=True)

    revocation_enabled: bool = True
    """follow auth.session.revoked and refuse revoked sessions"""
    revocation_retry_seconds: float = Field(default=1.0, gt=0)
    """pause before reconnecting to NATS or a missing stream"""
    revocation_heartbeat_seconds: float = Field(default=2.0, gt=0)
    """idle heartbeat of the revocation subscription"""
    revocation_replay_seconds: int = Field(default=MAX_ACCESS_TOKEN_LIFETIME_SECONDS, ge=0)
    """how far back a starting replica reads revocations (the token leeway is added); at least
    auth's access-token lifetime"""
