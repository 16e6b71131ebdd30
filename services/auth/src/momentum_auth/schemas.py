"""API models of the auth service (docs/spec/auth.md)."""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints
from pydantic.json_schema import WithJsonSchema

from momentum_shared.events import UtcDateTime
from momentum_shared.validation import StorableTextSchema, storable_text

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128


# Files in a zoneinfo directory that are not IANA zone names.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1)
def iana_timezones() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONES


def _iana_timezone(value: str) -> str:
    if value not in iana_timezones():
        raise ValueError("not an IANA time zone name (for example Europe/Berlin or UTC)")
    return value


# JSON Schema has no format for time zones: "iana-time-zone" names the IANA database's.
TIMEZONE_FORMAT = "iana-time-zone"
Timezone = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(_iana_timezone),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 64,
            "format": TIMEZONE_FORMAT,
            "examples": ["Europe/Berlin"],
        }
    ),
]
Password = Annotated[
    str, Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH, repr=False)
]
DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(storable_text),
    StorableTextSchema(),
]


class UserBase(BaseModel):
    display_name: DisplayName | None = None
    timezone: Timezone = "UTC"


class UserCreate(UserBase):
    """``POST /auth/register``."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(
        max_length=320,
        description="case-insensitive and unique; special-use domains (RFC 6761) are refused",
    )
    password: Password


class UserUpdate(BaseModel):
    """``PATCH /auth/me``: only the fields sent change; ``display_name: null`` clears it."""

    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None = None
    timezone: Timezone | None = None


class PasswordChange(BaseModel):
    """``POST /auth/me/password``."""

    model_config = ConfigDict(extra="forbid")

    current_password: Annotated[str, Field(min_length=1, max_length=1024, repr=False)]
    new_password: Password


class UserPublic(BaseModel):
    """What a client sees of a user: never a password or hash."""

    id: uuid.UUID
    email: str
    display_name: str | None
    timezone: str
    created_at: UtcDateTime


class TokenResponse(BaseModel):
    """RFC 6749 §5.1 access-token response."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str
    scope: str


class SigningKeyPublic(BaseModel):
    """The key that signs from now on (``created_at``: when it was first published)."""

    kid: str
    alg: str
    created_at: UtcDateTime


class JsonWebKeySet(BaseModel):
    """RFC 7517 key set: every public key that may still verify a live token."""

    keys: list[dict[str, Any]]


class AuthorizationServerMetadata(BaseModel):
    """RFC 8414 metadata."""

    issuer: str
    token_endpoint: str
    jwks_uri: str
    revocation_endpoint: str
    grant_types_supported: list[str]
    scopes_supported: list[str]
    response_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    revocation_endpoint_auth_methods_supported: list[str]


def user_public(user: object) -> UserPublic:
    return UserPublic.model_validate(user, from_attributes=True)
