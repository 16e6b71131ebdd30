"""The committed OpenAPI document of a service must match its code."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI


def assert_openapi_current(
    app: FastAPI, document: Path, contract_routes: set[tuple[str, str]]
) -> dict[str, Any]:
    """Compare ``app``'s OpenAPI with the committed ``document`` (rewritten when
    ``MOMENTUM_WRITE_SPECS=1``); every contract route must exist and be described.
    Returns the document's paths for further checks."""
    current = json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
    if os.environ.get("MOMENTUM_WRITE_SPECS") == "1":
        document.write_text(current)
    assert document.read_text() == current, (
        f"{document} is stale: rerun this test with MOMENTUM_WRITE_SPECS=1"
    )
    paths: dict[str, Any] = json.loads(current)["paths"]
    routes = {(method, path) for path, item in paths.items() for method in item}
    missing = contract_routes - routes
    assert not missing, f"contract routes missing from the document: {sorted(missing)}"
    for method, path in contract_routes:
        assert paths[path][method].get("description"), f"{method.upper()} {path} has no docstring"
    return paths
