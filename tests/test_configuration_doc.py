"""docs/configuration.md lists every setting of every program; it must follow the code.

Regenerate with ``.venv/bin/python -m tests.test_configuration_doc``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from momentum_analytics.settings import AnalyticsSettings
from momentum_auth.settings import AuthSettings
from momentum_gateway.settings import GatewaySettings
from momentum_tasks.settings import TasksSettings

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
PROGRAMS: list[tuple[str, type[BaseSettings]]] = [
    ("auth", AuthSettings),
    ("tasks", TasksSettings),
    ("analytics", AnalyticsSettings),
    ("gateway", GatewaySettings),
]


def _default(value: object) -> str:
    if value is PydanticUndefined:
        return "(empty)"
    if isinstance(value, SecretStr):
        return "development default (refused in production)"
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value) or "(empty)"
    return f"`{value}`"


def render() -> str:
    lines = [
        "# Configuration",
        "",
        "Every program reads its settings from environment variables with its own prefix.",
        "`make up` sets the URLs that connect the programs (see the README); everything",
        "else has the default below. This page is generated from the settings classes",
        "(`.venv/bin/python -m tests.test_configuration_doc`); a test fails when it drifts.",
        "",
    ]
    for name, cls in PROGRAMS:
        prefix = str(cls.model_config.get("env_prefix", ""))
        lines += [f"## {name}", "", "| variable | default | meaning |", "| --- | --- | --- |"]
        for field_name, field in cls.model_fields.items():
            variable = f"{prefix}{field_name}".upper()
            meaning = " ".join((field.description or "").split()).replace("|", "\\|")
            lines.append(f"| `{variable}` | {_default(field.default)} | {meaning} |")
        lines.append("")
    return "\n".join(lines)


def test_the_configuration_page_follows_the_settings() -> None:
    assert DOC.read_text() == render(), (
        "settings changed: run `.venv/bin/python -m tests.test_configuration_doc`"
    )


if __name__ == "__main__":
    DOC.write_text(render())
