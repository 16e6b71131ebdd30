"""The committed AsyncAPI document (``docs/asyncapi.json``) matches the event models.

Each producing service declares the streams it publishes (``STREAMS`` in its
``publishing`` module); the document is generated from those and the shared event models.
Rerun with ``MOMENTUM_WRITE_SPECS=1`` to rewrite it.
"""

from __future__ import annotations

import os
from pathlib import Path

from momentum_auth import publishing as auth_publishing
from momentum_shared.asyncapi import render
from momentum_tasks import publishing as tasks_publishing

DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.json"


def producers() -> dict[str, str]:
    return {
        "auth": auth_publishing.STREAMS[0],
        "tasks": tasks_publishing.STREAMS[0],
    }


def test_the_committed_asyncapi_document_matches_the_models() -> None:
    text = render(producers())
    if os.environ.get("MOMENTUM_WRITE_SPECS") == "1":
        DOCUMENT.write_text(text)
    assert DOCUMENT.read_text() == text, (
        "events changed: rerun this test with MOMENTUM_WRITE_SPECS=1"
    )
