"""The committed OpenAPI document of tasks matches the code (``services/tasks/openapi.json``)."""

from __future__ import annotations

from pathlib import Path

from momentum_devtools.testing.specs import assert_openapi_current
from momentum_tasks.app import create_app
from momentum_tasks.settings import TasksSettings

DOCUMENT = Path(__file__).resolve().parents[1] / "openapi.json"
CONTRACT_ROUTES = {
    ("post", "/tasks"),
    ("get", "/tasks"),
    ("get", "/tasks/{task_id}"),
    ("patch", "/tasks/{task_id}"),
    ("post", "/tasks/{task_id}/complete"),
    ("post", "/tasks/{task_id}/reopen"),
    ("delete", "/tasks/{task_id}"),
    ("post", "/tasks/batch"),
    ("get", "/tasks/changes"),
    ("post", "/projects"),
    ("get", "/projects"),
    ("get", "/projects/{project_id}"),
    ("patch", "/projects/{project_id}"),
    ("delete", "/projects/{project_id}"),
}


def test_the_committed_document_is_current(tmp_path: Path) -> None:
    settings = TasksSettings.model_validate(
        {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", "log_json": False}
    )
    assert_openapi_current(create_app(settings), DOCUMENT, CONTRACT_ROUTES)
