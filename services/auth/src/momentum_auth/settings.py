"""Settings of the auth service (environment prefix ``MOMENTUM_AUTH_``)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from momentum_shared.settings import (
    DatabaseSettings,
    OutboxSettings,
    PruneSettings,
    TokenVerificationSettings,
    check_secret,
)

# Known to everyone who reads this file: it only protects keys on a developer's laptop.
DEVELOPMENT_KEY_ENCRYPTION_KEY = "momentum-development-key-encryption-key-not-secret"

# OWASP Password Storage Cheat Sheet, argon2id minimum: m=19 MiB, t=2, p=1.
OWASP_MIN_MEMORY_KIB = 19 * 1024
OWASP_MIN_TIME_COST = 2

DAY = 24 * 3600


class AuthSettings(DatabaseSettings, OutboxSettings, PruneSettings, TokenVerificationSettings):
    """Everything auth reads from its environment, validated once at start-up."""

    model_config = SettingsConfigDict(env_prefix="MOMENTUM_AUTH_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./.momentum/auth.db"
    """SQLAlchemy async URL of auth's database"""

    issuer: str = "http://127.0.0.1:8000"
    """the public gateway URL: `iss` of every token, base of the RFC 8414 metadata"""
    default_client_id: str = Field(default="momentum", pattern=r"^[A-Za-z0-9._\-]{1,64}$")
    """`client_id` claim of tokens issued to clients that name none"""

    access_token_lifetime_seconds: int = Field(default=900, ge=30, le=DAY)
    """access-token lifetime"""
    refresh_idle_lifetime_seconds: int = Field(default=30 * DAY, ge=60)
    """a refresh token unused this long expires"""
    refresh_absolute_lifetime_seconds: int = Field(default=90 * DAY, ge=60)
    """a refresh-token family expires this long after sign-in"""
    refresh_token_retention_seconds: int = Field(default=7 * DAY, ge=60)
    """expired refresh tokens, and revoked or expired families, are deleted this long after
    they stopped working (at least the token leeway)"""

    signing_key_bits: int = Field(default=2048, ge=2048, le=8192)
    """RSA key size of new signing keys"""
    signing_key_max_age_seconds: int = Field(default=30 * DAY, ge=60)
    """the active signing key is rotated automatically at this age (the next key is promoted)"""
    key_maintenance_interval_seconds: float = Field(default=60.0, gt=0)
    """how often each replica checks whether a rotation is due"""
    key_encryption_key: SecretStr = SecretStr(DEVELOPMENT_KEY_ENCRYPTION_KEY)
    """secret that encrypts private signing keys at rest (at least 256 bits of entropy)"""
    previous_key_encryption_keys: list[SecretStr] = Field(default_factory=list)
    """older key-encryption keys still accepted for decryption while one is replaced"""
    # So every verifier's cached JWKS already holds a next key when rotation promotes it.
    jwks_max_age_seconds: int = Field(default=300, ge=0)
    """JWKS Cache-Control max-age; a next key is published at least this long before it signs"""

    throttle_max_failures_per_account_address: int = Field(default=5, ge=1)
    """failed sign-ins per account from one client address within the window before 429"""
    throttle_max_failures_per_address: int = Field(default=5, ge=1)
    """failed sign-ins per client address, across accounts, within the window before 429"""
    throttle_window_seconds: int = Field(default=900, ge=1)
    """window over which failed sign-ins per account and address, and per address, count"""
    throttle_account_free_failures: int = Field(default=5, ge=1)
    """failed sign-ins against an account from addresses it never signed in from before delays"""
    throttle_account_base_delay_seconds: int = Field(default=2, ge=1)
    """the first delay once an account's free failures are spent; each failure doubles it"""
    throttle_account_max_delay_seconds: int = Field(default=900, ge=1)
    """the longest delay between failed sign-ins against one account"""
    throttle_account_window_seconds: int = Field(default=DAY, ge=1)
    """window over which an account's failures from unfamiliar addresses count"""
    throttle_usual_addresses_per_account: int = Field(default=10, ge=1)
    """addresses remembered per account after a successful sign-in (the latest ones)"""
    throttle_usual_address_lifetime_seconds: int = Field(default=90 * DAY, ge=60)
    """an address unused for a sign-in this long is no longer usual for the account"""
    throttle_budget_window_seconds: int = Field(default=3600, ge=1)
    """window of the request budgets below"""
    throttle_token_requests_per_user: int = Field(default=60, ge=1)
    """password-grant requests per username within the budget window before 429"""
    throttle_token_requests_per_address: int = Field(default=600, ge=1)
    """password-grant requests per client address within the budget window before 429"""
    throttle_registrations_per_address: int = Field(default=30, ge=1)
    """registrations per client address within the budget window before 429"""
    throttle_password_changes_per_user: int = Field(default=10, ge=1)
    """password-change requests per user within the budget window before 429"""
    throttle_password_changes_per_address: int = Field(default=30, ge=1)
    """password-change requests per client address within the budget window before 429"""

    password_memory_cost_kib: int = Field(default=OWASP_MIN_MEMORY_KIB, ge=8)
    """argon2id memory cost (OWASP minimum 19456)"""
    password_time_cost: int = Field(default=OWASP_MIN_TIME_COST, ge=1)
    """argon2id iterations (OWASP minimum 2)"""
    password_parallelism: int = Field(default=1, ge=1)
    """argon2id lanes"""
    password_hashing_workers: int | None = Field(default=None, ge=1)
    """threads that hash passwords (default: the CPUs of the container's quota, else affinity)"""
    password_hashing_queue_length: int = Field(default=16, ge=0)
    """password checks that may wait for a hashing thread; beyond them the answer is 503"""

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        if self.refresh_idle_lifetime_seconds > self.refresh_absolute_lifetime_seconds:
            raise ValueError("refresh_idle_lifetime_seconds exceeds the absolute lifetime")
        if self.refresh_token_retention_seconds < self.token_leeway_seconds:
            # Auth refuses an access token whose family is gone: keep it while one verifies.
            raise ValueError(
                "refresh_token_retention_seconds must be at least token_leeway_seconds"
            )
        if self.is_development:
            return self
        known = (DEVELOPMENT_KEY_ENCRYPTION_KEY,)
        check_secret(
            "MOMENTUM_AUTH_KEY_ENCRYPTION_KEY",
            self.key_encryption_key.get_secret_value(),
            known=known,
        )
        # A key sealed under a weak or public KEK is as exposed as that KEK.
        for previous in self.previous_key_encryption_keys:
            check_secret(
                "MOMENTUM_AUTH_PREVIOUS_KEY_ENCRYPTION_KEYS",
                previous.get_secret_value(),
                known=known,
            )
        if (
            self.password_memory_cost_kib < OWASP_MIN_MEMORY_KIB
            or self.password_time_cost < OWASP_MIN_TIME_COST
        ):
            raise ValueError("argon2id parameters below OWASP's minimum (m=19 MiB, t=2, p=1)")
        return self
