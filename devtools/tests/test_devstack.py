"""The dev stack honours every variable of docs/spec/README.md §1 and wires the services up."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import nats
import pytest

from momentum_devtools.devstack import APPS, DevStack
from momentum_devtools.natsserver import ROLES, EmbeddedNats, free_port
from momentum_devtools.testing.natsusers import NATS_PASSWORDS
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


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_dir_is_created_private_and_the_databases_too(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"  # does not exist yet; NATS is elsewhere
    stack = DevStack(
        {"MOMENTUM_DATA_DIR": str(data), "MOMENTUM_NATS_URL": "nats://127.0.0.1:1"}, echo=False
    )
    stack.migrate()
    assert mode(data) == 0o700
    for name in ("auth", "tasks", "analytics"):
        assert mode(data / f"{name}.db") == 0o600


def test_what_is_already_in_the_data_dir_is_made_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    data.chmod(0o755)
    (data / "logs").chmod(0o755)
    (data / "auth.db").write_bytes(b"")
    (data / "logs" / "auth.log").write_text("old lines\n")
    for path in (data / "auth.db", data / "logs" / "auth.log"):
        path.chmod(0o644)
    stack = DevStack({"MOMENTUM_DATA_DIR": str(data)}, echo=False)
    stack.start_nats()
    try:
        assert mode(data) == mode(data / "logs") == mode(data / "nats") == 0o700
        assert mode(data / "auth.db") == mode(data / "logs" / "auth.log") == 0o600
        # The embedded server's config holds the passwords: private too.
        assert stack.nats is not None
        assert mode(stack.nats.config_file) == mode(data / "logs" / "nats.log") == 0o600
    finally:
        stack.stop()


def test_the_childrens_files_are_private(tmp_path: Path) -> None:
    stack = DevStack({"MOMENTUM_DATA_DIR": str(tmp_path)}, echo=False)
    script = f"open({str(tmp_path / 'made-by-child')!r}, 'w').write('x'); print('done')"
    child = stack.spawn("demo", [sys.executable, "-c", script], dict(os.environ))
    assert child.process.wait(timeout=30) == 0
    assert child.reader is not None
    child.reader.join(timeout=5)
    assert child.process.stdout is not None
    child.process.stdout.close()
    assert mode(tmp_path / "made-by-child") == 0o600
    assert mode(tmp_path / "logs" / "demo.log") == 0o600
    assert mode(tmp_path / "logs") == 0o700


async def test_each_child_connects_to_the_embedded_nats_as_its_own_user(tmp_path: Path) -> None:
    stack = DevStack({"MOMENTUM_DATA_DIR": str(tmp_path)}, echo=False)
    stack.start_nats()
    try:
        envs = {app.name: stack.child_env(app.name) for app in APPS}
        passwords = set()
        for name, env in envs.items():
            prefix = f"MOMENTUM_{name.upper()}_NATS_"
            assert env[prefix + "USER"] == name
            passwords.add(env[prefix + "PASSWORD"])
            nc = await nats.connect(
                env[prefix + "URL"],
                user=env[prefix + "USER"],
                password=env[prefix + "PASSWORD"],
                allow_reconnect=False,
            )
            await nc.close()
        assert len(passwords) == len(APPS)  # one random password per program
        # Without credentials the embedded server refuses the client.
        with socket.create_connection(("127.0.0.1", urlsplit(stack.nats_url).port or 0)) as sock:
            sock.settimeout(2)
            sock.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
            reply = b""
            while b"\r\n-ERR" not in reply and b"PONG" not in reply:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        assert b"Authorization Violation" in reply
    finally:
        stack.stop()


def up_env(**values: str) -> dict[str, str]:
    """This environment without Momentum's variables (the test session sets NATS users)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MOMENTUM_")}
    env.update(values)
    return env


def start_up(
    env: dict[str, str], log_path: Path, timeout: float = 120.0
) -> subprocess.Popen[bytes]:
    """``make up``'s command, on free ports; returns once it says the system is up."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "momentum_devtools.devstack", "--quiet", "--free-ports"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while "Momentum is up" not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"the dev stack did not come up:\n{log_path.read_text()[-6000:]}")
        time.sleep(0.25)
    return process


def stop_up(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# Logged when a program starts before auth serves its JWKS or has created its stream.
START_RACES = ("JWKS refresh failed", "session revocations unavailable")


def warnings_in(log_dir: Path) -> list[str]:
    lines = []
    for log in sorted(log_dir.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if '"level": "warning"' in line or any(race in line for race in START_RACES):
                lines.append(f"{log.name}: {line}")
    return lines


@pytest.mark.nats
def test_make_up_creates_a_new_data_dir_with_an_external_nats(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"  # neither exists; NATS is not the stack's own
    with EmbeddedNats(tmp_path / "nats", passwords=NATS_PASSWORDS) as server:
        env = up_env()
        env.update(
            MOMENTUM_DATA_DIR=str(data),
            MOMENTUM_NATS_URL=server.url,
            **{f"MOMENTUM_{name.upper()}_NATS_USER": name for name in ROLES},
            **{f"MOMENTUM_{name.upper()}_NATS_PASSWORD": NATS_PASSWORDS[name] for name in ROLES},
        )
        log_path = tmp_path / "up.log"
        process = start_up(env, log_path)
        try:
            assert mode(data) == 0o700
            for name in ("auth", "tasks", "analytics"):
                assert mode(data / f"{name}.db") == 0o600
        finally:
            stop_up(process)
    assert "Traceback" not in log_path.read_text()


def test_make_up_starts_auth_first_so_the_others_log_no_start_race(tmp_path: Path) -> None:
    # The stack's own NATS, new: auth's stream is not there yet.
    env = up_env(MOMENTUM_DATA_DIR=str(tmp_path / "data"))
    log_path = tmp_path / "up.log"
    process = start_up(env, log_path)
    stop_up(process)
    output = log_path.read_text()
    assert output.index("auth ready") < output.index("gateway ready")
    assert output.index("auth ready") < output.index("tasks ready")
    assert output.index("auth ready") < output.index("analytics ready")
    assert warnings_in(tmp_path / "data" / "logs") == []


def test_without_auths_stream_the_others_are_not_started(tmp_path: Path) -> None:
    # Nothing listens on port 1: auth answers /readyz but its relay cannot create the stream.
    env = up_env(MOMENTUM_DATA_DIR=str(tmp_path / "data"), MOMENTUM_NATS_URL="nats://127.0.0.1:1")
    env.update({app.port_var: str(free_port()) for app in APPS})
    stack = DevStack(env, echo=False)
    try:
        stack.start_nats()
        stack.migrate()
        with pytest.raises(TimeoutError, match=r"auth \(it has not created its NATS stream"):
            stack.start_apps(timeout=20)
        assert [child.name for child in stack.children] == ["auth"]
    finally:
        stack.stop()


def test_the_opentelemetry_variables_reach_every_program(tmp_path: Path) -> None:
    env = {
        "MOMENTUM_DATA_DIR": str(tmp_path),
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.5",
    }
    stack = DevStack(env, echo=False)
    for app in APPS:
        child = stack.child_env(app.name)
        assert child["OTEL_TRACES_EXPORTER"] == "console", app.name
        assert child["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio", app.name
        assert child["OTEL_TRACES_SAMPLER_ARG"] == "0.5", app.name
