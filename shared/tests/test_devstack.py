"""The dev stack honours every variable of docs/spec/README.md §1 and wires the services up."""

from __future__ import annotations

from pathlib import Path

import pytest

from momentum_shared.devstack import APPS, DevStack
from momentum_shared.settings import DatabaseSettings


def test_defaults_are_the_contracts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    stack = DevStack({}, echo=False)
    assert stack.data_dir == tmp_path / ".momentum"
    assert stack.ports == {"auth": 8001, "tasks": 8002, "analytics": 8003, "gateway": 8000}
    assert stack.gateway_url == "http://127.0.0.1:8000"
    for name in ("auth", "tasks", "analytics"):
        assert stack.database_url(name) == f"sqlite+aiosqlite:///{tmp_path}/.momentum/{name}.db"
    assert stack.nats_url == ""  # the embedded server will be started


def test_every_variable_is_honoured(tmp_path: Path) -> None:
    env = {
        "MOMENTUM_DATA_DIR": str(tmp_path / "data"),
        "MOMENTUM_NATS_URL": "nats://10.0.0.5:4222",
        "MOMENTUM_AUTH_DATABASE_URL": "postgresql+asyncpg://a@db/auth",
        "MOMENTUM_TASKS_DATABASE_URL": "postgresql+asyncpg://t@db/tasks",
        "MOMENTUM_ANALYTICS_DATABASE_URL": "postgresql+asyncpg://n@db/analytics",
        "MOMENTUM_GATEWAY_PORT": "9000",
        "MOMENTUM_AUTH_PORT": "9001",
        "MOMENTUM_TASKS_PORT": "9002",
        "MOMENTUM_ANALYTICS_PORT": "9003",
    }
    stack = DevStack(env, echo=False)
    assert stack.data_dir == tmp_path / "data"
    assert stack.nats_url == "nats://10.0.0.5:4222"
    assert stack.ports == {"auth": 9001, "tasks": 9002, "analytics": 9003, "gateway": 9000}

    tasks = stack.child_env("tasks")
    assert tasks["MOMENTUM_TASKS_DATABASE_URL"] == "postgresql+asyncpg://t@db/tasks"
    assert tasks["MOMENTUM_TASKS_NATS_URL"] == "nats://10.0.0.5:4222"
    assert tasks["MOMENTUM_TASKS_JWKS_URL"] == "http://127.0.0.1:9001/.well-known/jwks.json"
    assert tasks["MOMENTUM_TASKS_TOKEN_ISSUER"] == "http://127.0.0.1:9000"

    gateway = stack.child_env("gateway")
    assert gateway["MOMENTUM_GATEWAY_AUTH_URL"] == "http://127.0.0.1:9001"
    assert gateway["MOMENTUM_GATEWAY_TASKS_URL"] == "http://127.0.0.1:9002"
    assert gateway["MOMENTUM_GATEWAY_ANALYTICS_URL"] == "http://127.0.0.1:9003"
    assert "MOMENTUM_GATEWAY_DATABASE_URL" not in gateway

    auth = stack.child_env("auth")
    assert auth["MOMENTUM_AUTH_ISSUER"] == "http://127.0.0.1:9000"


def test_an_explicit_service_setting_wins_over_the_stacks(tmp_path: Path) -> None:
    env = {"MOMENTUM_DATA_DIR": str(tmp_path), "MOMENTUM_TASKS_JWKS_URL": "http://keys/jwks.json"}
    assert DevStack(env, echo=False).child_env("tasks")["MOMENTUM_TASKS_JWKS_URL"] == (
        "http://keys/jwks.json"
    )


def test_every_service_with_a_database_has_migrations() -> None:
    for app in APPS:
        if app.name == "gateway":
            assert app.alembic_ini is None
        else:
            assert app.alembic_ini is not None
            assert app.alembic_ini.exists()


def test_settings_read_their_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic_settings import SettingsConfigDict

    class DemoSettings(DatabaseSettings):
        model_config = SettingsConfigDict(env_prefix="MOMENTUM_DEMO_")

    monkeypatch.setenv("MOMENTUM_DEMO_DATABASE_URL", "postgresql+asyncpg://u@h/demo")
    monkeypatch.setenv("MOMENTUM_OTHER_DATABASE_URL", "sqlite+aiosqlite:///other.db")
    monkeypatch.setenv("MOMENTUM_DEMO_ENVIRONMENT", "production")
    settings = DemoSettings()
    assert settings.database_url == "postgresql+asyncpg://u@h/demo"
    assert settings.environment == "production"
    assert not settings.is_development
    monkeypatch.setenv("MOMENTUM_DEMO_ENVIRONMENT", "staging")
    with pytest.raises(ValueError, match="environment"):
        DemoSettings()
