"""Tables of the auth service: users, signing keys, refresh-token families, login failures."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from momentum_shared.db import UtcDateTime
from momentum_shared.events import utcnow
from momentum_shared.outbox import outbox_model

MODELS = registry()


class AuthBase(SQLModel, registry=MODELS):
    """Base of the auth tables: their own metadata, which holds auth's outbox too."""


OutboxEvent = outbox_model(MODELS)
OUTBOX = OutboxEvent.__table__


class User(AuthBase, table=True):
    """A person who signs in; ``email_normalized`` is what uniqueness and sign-in compare."""

    __tablename__ = "users"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True, sa_type=sa.Uuid)
    email: str = Field(max_length=320)
    email_normalized: str = Field(max_length=320, unique=True)
    display_name: str | None = Field(default=None, max_length=100)
    timezone: str = Field(default="UTC", max_length=64)
    password_hash: str = Field(max_length=512)
    is_admin: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class SigningKey(AuthBase, table=True):
    """An RS256 key pair; the private half is encrypted under the key-encryption key.

    ``role`` is "active" for the one key that signs and "next" for the one key that is
    published but signs only after the next rotation, so verifiers know it in advance.
    A retired key has no role and stays published until ``expires_at``, when every token
    it signed has expired. The unique constraint on ``role`` is what keeps replicas that
    rotate at once from leaving two active keys or two next keys.
    """

    __tablename__ = "signing_keys"
    __table_args__ = (sa.UniqueConstraint("role", name="uq_signing_keys_role"),)

    kid: str = Field(primary_key=True, max_length=64)
    algorithm: str = Field(default="RS256", max_length=16)
    public_jwk: str = Field(sa_type=sa.Text)
    private_key_encrypted: bytes = Field(sa_type=sa.LargeBinary)
    kek_id: str = Field(max_length=32)
    role: str | None = Field(default=None, max_length=8)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    # When it started signing; None while it is the next key.
    activates_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class RefreshTokenFamily(AuthBase, table=True):
    """One sign-in (a session): every refresh token rotated from it; its id is the ``sid``."""

    __tablename__ = "refresh_token_families"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True, sa_type=sa.Uuid)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True, sa_type=sa.Uuid)
    client_id: str = Field(max_length=64)
    scope: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    last_access_expires_at: datetime = Field(sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_reason: str | None = Field(default=None, max_length=32)


class RefreshToken(AuthBase, table=True):
    """One refresh token, stored only as its SHA-256; ``used_at`` marks it spent."""

    __tablename__ = "refresh_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True, sa_type=sa.Uuid)
    family_id: uuid.UUID = Field(
        foreign_key="refresh_token_families.id", index=True, sa_type=sa.Uuid
    )
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    # Indexed for the prune job, which deletes tokens long expired (momentum_auth.pruning).
    expires_at: datetime = Field(sa_type=UtcDateTime, index=True)
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ThrottleEntry(AuthBase, table=True):
    """One counted attempt under a throttling key (a digest: see ``momentum_auth.throttle``).

    Failure entries are written before a password is checked and deleted again when it
    matches; request-budget entries stay until they leave their window.
    """

    __tablename__ = "throttle_entries"
    __table_args__ = (sa.Index("ix_throttle_entries_key_created_at", "key", "created_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True, sa_type=sa.Uuid)
    key: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)


class UsualAddress(AuthBase, table=True):
    """An address an account signed in from successfully; its failures do not slow the account."""

    __tablename__ = "usual_addresses"

    account_key: str = Field(primary_key=True, max_length=40)
    address_key: str = Field(primary_key=True, max_length=40)
    last_signed_in_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)


__all__ = [
    "MODELS",
    "OUTBOX",
    "AuthBase",
    "OutboxEvent",
    "RefreshToken",
    "RefreshTokenFamily",
    "SigningKey",
    "ThrottleEntry",
    "User",
    "UsualAddress",
]
