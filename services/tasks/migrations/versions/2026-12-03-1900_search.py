"""Full-text search: a tsvector column with a GIN index (PostgreSQL), an FTS5 table kept by
triggers (SQLite); both filled for the tasks that exist (docs/adr/0016-full-text-search.md).

Revision ID: tasks0007
Revises: tasks0006
Create Date: 2026-12-03 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "tasks0007"
down_revision: str | None = "tasks0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# PostgreSQL computes a stored generated column for every existing row when it is added:
# that is the backfill.
POSTGRESQL_UP = (
    "ALTER TABLE tasks ADD COLUMN search_vector tsvector GENERATED ALWAYS AS"
    " (to_tsvector('english', title || ' ' || coalesce(description, ''))) STORED",
    "CREATE INDEX ix_tasks_search_vector ON tasks USING gin (search_vector)"
    " WITH (fastupdate = off)",
)
POSTGRESQL_DOWN = (
    "DROP INDEX ix_tasks_search_vector",
    "ALTER TABLE tasks DROP COLUMN search_vector",
)
# The same statements as momentum_tasks.models.SQLITE_SEARCH_CREATE (a test compares them);
# 'rebuild' indexes every task that exists.
SQLITE_UP = (
    "CREATE VIRTUAL TABLE tasks_search USING fts5(title, description,"
    " content='tasks', content_rowid='rowid', tokenize='porter unicode61')",
    "CREATE TRIGGER tasks_search_insert AFTER INSERT ON tasks BEGIN"
    " INSERT INTO tasks_search (rowid, title, description)"
    " VALUES (new.rowid, new.title, new.description); END",
    "CREATE TRIGGER tasks_search_delete AFTER DELETE ON tasks BEGIN"
    " INSERT INTO tasks_search (tasks_search, rowid, title, description)"
    " VALUES ('delete', old.rowid, old.title, old.description); END",
    "CREATE TRIGGER tasks_search_update AFTER UPDATE OF title, description ON tasks BEGIN"
    " INSERT INTO tasks_search (tasks_search, rowid, title, description)"
    " VALUES ('delete', old.rowid, old.title, old.description);"
    " INSERT INTO tasks_search (rowid, title, description)"
    " VALUES (new.rowid, new.title, new.description); END",
    "INSERT INTO tasks_search (tasks_search) VALUES ('rebuild')",
)
SQLITE_DOWN = (
    "DROP TRIGGER tasks_search_update",
    "DROP TRIGGER tasks_search_delete",
    "DROP TRIGGER tasks_search_insert",
    "DROP TABLE tasks_search",
)


def _run(statements: Sequence[str]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _run(SQLITE_UP if sqlite else POSTGRESQL_UP)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _run(SQLITE_DOWN if sqlite else POSTGRESQL_DOWN)
