"""The Python client in ``clients/python``, generated from the API as the gateway serves it.

``python -m momentum_devtools.pyclient`` (``make client``) merges the committed
``services/*/openapi.json`` with the gateway's own ``merge`` and routing table — the document
the gateway serves at ``/openapi.json`` — writes it to ``clients/python/openapi.json``, runs
the pinned ``openapi-python-client`` on it with ``clients/python/openapi-python-client.yaml``
and formats the result with the repository's ruff settings. ``tests/test_python_client.py``
regenerates into a temporary directory and fails when the committed files differ.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from momentum_gateway.app import DESCRIPTION, TITLE
from momentum_gateway.openapi import merge
from momentum_gateway.routing import TABLE

REPO_ROOT = Path(__file__).resolve().parents[3]
CLIENT_DIR = REPO_ROOT / "clients" / "python"
DOCUMENT = CLIENT_DIR / "openapi.json"
CONFIG = CLIENT_DIR / "openapi-python-client.yaml"
PACKAGE = "momentum_client"
PACKAGE_DIR = CLIENT_DIR / "src" / PACKAGE
# The order in which the gateway fetches and merges them (GatewaySettings.upstreams).
SERVICES = ("auth", "tasks", "analytics")


class GenerationError(RuntimeError):
    """The generator failed, or warned about the document."""


@dataclass(frozen=True)
class Generated:
    document: Path
    package: Path
    output: str  # what the generator printed


def merged_document(root: Path = REPO_ROOT) -> dict[str, Any]:
    """The document the gateway builds from the committed service documents."""
    documents = {
        service: json.loads((root / "services" / service / "openapi.json").read_text())
        for service in SERVICES
    }
    return merge(
        documents,
        TABLE,
        title=TITLE,
        version=version("momentum-gateway"),
        description=DESCRIPTION,
    )


def render_document(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _tool_env() -> dict[str, str]:
    # The tools installed next to this interpreter (ruff, the generator) come first.
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _run(args: list[str]) -> str:
    result = subprocess.run(
        args, capture_output=True, text=True, env=_tool_env(), check=False, cwd=REPO_ROOT
    )
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise GenerationError(f"{' '.join(args[:4])} … exited {result.returncode}:\n{output}")
    return output


def generate(
    document: dict[str, Any] | None = None,
    *,
    document_path: Path = DOCUMENT,
    package_dir: Path = PACKAGE_DIR,
) -> Generated:
    """Write ``document`` (by default the merged one) to ``document_path`` and the client
    generated from it to ``package_dir`` (replaced whole). The generator must print nothing
    but the directory it generates: any warning or error raises ``GenerationError``."""
    document_path.parent.mkdir(parents=True, exist_ok=True)
    document_path.write_text(render_document(merged_document() if document is None else document))
    with tempfile.TemporaryDirectory(prefix="momentum-client-") as scratch:
        staged = Path(scratch) / PACKAGE
        output = _run(
            [
                sys.executable,
                "-m",
                "openapi_python_client",
                "generate",
                "--path",
                str(document_path),
                "--config",
                str(CONFIG),
                "--meta",
                "none",
                "--output-path",
                str(staged),
                "--fail-on-warning",
            ]
        )
        problems = [
            line for line in output.splitlines() if line.strip() and line != f"Generating {staged}"
        ]
        if problems:
            raise GenerationError("the generator reported problems:\n" + "\n".join(problems))
        # The config has no post hooks: ruff runs here with the repository's settings, so a
        # client generated anywhere (a temporary directory too) is formatted the same way.
        ruff = [sys.executable, "-m", "ruff"]
        settings = ["--config", str(REPO_ROOT / "pyproject.toml")]
        _run([*ruff, "check", "--fix-only", "--quiet", *settings, str(staged)])
        _run([*ruff, "format", "--quiet", *settings, str(staged)])
        # The generator writes the PEP 561 marker only with packaging metadata of its own.
        (staged / "py.typed").write_text("# Marker file for PEP 561\n")
        if package_dir.exists():
            shutil.rmtree(package_dir)
        package_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staged, package_dir)
    return Generated(document_path, package_dir, output)


def main() -> None:
    generated = generate()
    print(generated.output)  # noqa: T201 - the generator's own report, for the record
    print(f"wrote {generated.document.relative_to(REPO_ROOT)}")  # noqa: T201
    print(f"wrote {generated.package.relative_to(REPO_ROOT)}")  # noqa: T201


if __name__ == "__main__":
    main()
