"""No response and no log line ever contains a password, a password hash or a private key."""

from __future__ import annotations

import base64
import logging
import secrets

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr, ValidationError
from sqlmodel import select

from momentum_auth.app import create_app
from momentum_auth.models import SigningKey, User
from momentum_auth.settings import DEVELOPMENT_KEY_ENCRYPTION_KEY, AuthSettings
from momentum_auth.signing_keys.crypto import KeyEncryption
from momentum_auth.state import app_state
from momentum_devtools.testing.apps import running_app
from services.auth.tests.conftest import make_settings
from services.auth.tests.support import bearer, make_admin, new_email

FIRST = "first secret password"
SECOND = "second secret password"
WRONG = "wrong secret password"


def b64url_int(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_no_response_or_log_line_carries_a_secret(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings(database_url, log_level="DEBUG"))
    # create_app installs the service's own handler on the root logger; listen beside it.
    logging.getLogger().addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    responses: list[httpx.Response] = []
    email = new_email()
    async with running_app(app) as client:

        async def call(method: str, url: str, **kwargs: object) -> httpx.Response:
            response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
            responses.append(response)
            return response

        await call("POST", "/auth/register", json={"email": email, "password": FIRST})
        await call("POST", "/auth/register", json={"email": email, "password": FIRST})
        await call("POST", "/auth/register", json={"email": new_email(), "password": "short"})
        await call(
            "POST",
            "/auth/token",
            data={"grant_type": "password", "username": email, "password": WRONG},
        )
        await call(
            "POST",
            "/auth/token",
            data={"grant_type": "password", "username": FIRST, "password": FIRST},
        )
        ok = await call(
            "POST",
            "/auth/token",
            data={"grant_type": "password", "username": email, "password": FIRST},
        )
        pair = ok.json()
        headers = bearer(pair["access_token"])
        await call("GET", "/auth/me", headers=headers)
        await call(
            "POST",
            "/auth/me/password",
            json={"current_password": WRONG, "new_password": SECOND},
            headers=headers,
        )
        await call(
            "POST",
            "/auth/me/password",
            json={"current_password": FIRST, "new_password": SECOND},
            headers=headers,
        )
        renewed = await call(
            "POST",
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]},
        )
        await call(
            "POST",
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]},
        )
        await call("POST", "/auth/revoke", data={"token": renewed.json()["refresh_token"]})
        admin = await make_admin(app)
        admin_pair = (
            await call(
                "POST",
                "/auth/token",
                data={
                    "grant_type": "password",
                    "username": admin,
                    "password": "correct horse battery",
                },
            )
        ).json()
        await call("POST", "/auth/admin/keys/rotate", headers=bearer(admin_pair["access_token"]))
        await call("GET", "/.well-known/jwks.json")
        await call("GET", "/.well-known/oauth-authorization-server")
        await call("GET", "/readyz")
        await call("GET", "/metrics")

        async with app_state(app).session_factory() as session:
            hashes = [u.password_hash for u in (await session.exec(select(User)))]
            keys = list(await session.exec(select(SigningKey)))

    secrets = [FIRST, SECOND, WRONG, *hashes]
    for hashed in hashes:
        secrets.append(hashed.split("$")[-1])  # the digest alone
    encryption = KeyEncryption(DEVELOPMENT_KEY_ENCRYPTION_KEY)
    for row in keys:
        der = encryption.decrypt(row.private_key_encrypted, kid=row.kid, kek_id=row.kek_id)
        private = serialization.load_der_private_key(der, password=None)
        assert isinstance(private, rsa.RSAPrivateKey)
        numbers = private.private_numbers()
        secrets += [b64url_int(numbers.d), b64url_int(numbers.p), b64url_int(numbers.q)]
        secrets.append(base64.b64encode(der).decode()[:64])
    assert len(hashes) == 2
    assert len(keys) == 3  # retired, active and next after the rotation

    texts = [f"{r.status_code} {dict(r.headers)} {r.text}" for r in responses]
    # Every log record, with every extra attribute a JSON formatter would print.
    texts += [f"{record.getMessage()} {record.__dict__}" for record in caplog.records]
    assert caplog.records, "the flow is expected to log something"
    for text in texts:
        for secret in secrets:
            assert secret not in text
        assert "PRIVATE KEY" not in text
        assert "$argon2" not in text


PRODUCTION_KEK = "9hM4vQx2LrT7bWc1NzKpE6yFgU3sJdA8oVi5XeHqRl0"


KEK = "MOMENTUM_AUTH_KEY_ENCRYPTION_KEY"
PREVIOUS = "MOMENTUM_AUTH_PREVIOUS_KEY_ENCRYPTION_KEYS"


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("key_encryption_key", "a" * 32, KEK),
        ("key_encryption_key", "a" * 64, KEK),
        ("key_encryption_key", "0123456789abcdef" * 4, KEK),
        ("key_encryption_key", "Summer2026!Summer2026!Summer2026!", KEK),
        ("previous_key_encryption_keys", [DEVELOPMENT_KEY_ENCRYPTION_KEY], PREVIOUS),
        ("previous_key_encryption_keys", ["a" * 32], PREVIOUS),
    ],
)
def test_production_refuses_weak_or_public_key_encryption_keys(
    field: str, value: object, named: str
) -> None:
    values: dict[str, object] = {"key_encryption_key": PRODUCTION_KEK, field: value}
    with pytest.raises(ValidationError) as refused:
        AuthSettings.model_validate({"environment": "production", **values})
    message = str(refused.value)
    assert named in message
    assert "secrets.token_urlsafe(32)" in message
    # The same values still start a development or test process.
    assert AuthSettings.model_validate({"environment": "development", **values})
    assert AuthSettings.model_validate({"environment": "test", **values})


def test_production_accepts_strong_key_encryption_keys() -> None:
    strong = AuthSettings(
        environment="production",
        key_encryption_key=SecretStr(PRODUCTION_KEK),
        previous_key_encryption_keys=[SecretStr(secrets.token_hex(32))],
    )
    assert strong.key_encryption_key.get_secret_value() == PRODUCTION_KEK
    assert AuthSettings(environment="development").key_encryption_key
