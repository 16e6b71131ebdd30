"""The committed Python client (``clients/python``) is what ``make client`` generates now.

Both halves are checked: the merged document is the one the gateway builds from the committed
``services/*/openapi.json``, and the generated package is what the pinned generator makes of
it. Either drifts when a service's document changes without ``make client``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from momentum_devtools.pyclient import (
    DOCUMENT,
    PACKAGE_DIR,
    REPO_ROOT,
    GenerationError,
    generate,
    merged_document,
    render_document,
)

REGENERATE = "the Python client is stale: run `make client` and commit clients/python"


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_committed_document_is_the_one_the_gateway_builds() -> None:
    assert DOCUMENT.read_text() == render_document(merged_document()), REGENERATE


def test_the_committed_client_is_what_the_generator_makes(tmp_path: Path) -> None:
    generated = generate(document_path=tmp_path / "openapi.json", package_dir=tmp_path / "pkg")
    assert generated.document.read_text() == DOCUMENT.read_text(), REGENERATE
    fresh, committed = _files(generated.package), _files(PACKAGE_DIR)
    assert sorted(fresh) == sorted(committed), REGENERATE
    stale = sorted(name for name in fresh if fresh[name] != committed[name])
    assert not stale, f"{REGENERATE} (differs: {', '.join(stale)})"


def test_the_document_covers_every_route_the_gateway_routes() -> None:
    document = json.loads(DOCUMENT.read_text())
    operations = {(method, path) for path, item in document["paths"].items() for method in item}
    for service in ("auth", "tasks", "analytics"):
        own = json.loads((REPO_ROOT / "services" / service / "openapi.json").read_text())
        routed = {
            (method, path)
            for path, item in own["paths"].items()
            for method in item
            if path.startswith(f"/{service}")
        }
        assert routed <= operations, sorted(routed - operations)
    # Every operation is described with its security, so the client knows which need a token.
    assert all("security" in op for item in document["paths"].values() for op in item.values())


def test_a_warning_from_the_generator_fails_the_generation(tmp_path: Path) -> None:
    broken = copy.deepcopy(merged_document())
    response = broken["paths"]["/tasks"]["get"]["responses"]["200"]
    response["content"]["application/json"]["schema"] = {"$ref": "#/components/schemas/Nowhere"}
    with pytest.raises(GenerationError, match="Nowhere"):
        generate(broken, document_path=tmp_path / "openapi.json", package_dir=tmp_path / "pkg")
    assert not (tmp_path / "pkg").exists()
