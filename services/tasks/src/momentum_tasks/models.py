"""Tables of the tasks service: tasks, their tags, projects, idempotency keys, and the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import registry
from sqlalchemy.schema import CreateColumn
from sqlmodel import Field, SQLModel

from momentum_shared.db import UtcDateTime
from momentum_shared.outbox import outbox_model

# Sorting by due date treats "no due date" as later than any date, so the sort key is never
# NULL: one (owner_id, due_sort, id) index then serves both directions with a plain row
# comparison on both SQLite and PostgreSQL (NULLs break row-value keyset predicates).
NO_DUE_DATE = datetime(9999, 12, 31, tzinfo=UTC)


MODELS = registry()


class TasksBase(SQLModel, registry=MODELS):
    """Base of the tasks tables: their own metadata, which holds tasks' outbox too."""


OutboxEvent = outbox_model(MODELS)
OUTBOX = OutboxEvent.__table__


class Task(TasksBase, table=True):
    """One user's task; ``version`` grows by one with every change (it is the ETag)."""

    __tablename__ = "tasks"
    __table_args__ = (
        sa.Index("ix_tasks_owner_created", "owner_id", "created_at", "id"),
        sa.Index("ix_tasks_owner_status_created", "owner_id", "status", "created_at", "id"),
        sa.Index("ix_tasks_owner_due", "owner_id", "due_sort", "id"),
        sa.Index("ix_tasks_owner_project_created", "owner_id", "project_id", "created_at", "id"),
        sa.Index("ix_tasks_owner_change", "owner_id", "change_seq"),
    )

    id: uuid.UUID = Field(primary_key=True, sa_type=sa.Uuid)
    owner_id: uuid.UUID = Field(sa_type=sa.Uuid)
    title: str = Field(max_length=200)
    # Lower-cased copy of the title: `q` matches it with LIKE on both dialects (PostgreSQL's
    # LIKE is case-sensitive, SQLite's lower() only folds ASCII; Python folds everything).
    title_folded: str = Field(max_length=800)
    description: str | None = Field(default=None, sa_type=sa.Text)
    status: str = Field(max_length=8)
    priority: str = Field(max_length=8)
    due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    due_sort: datetime = Field(sa_type=UtcDateTime)
    # The tags as the user ordered them, returned without a join; `task_tags` answers the
    # `tag` filter through an index (JSON containment differs between SQLite and PostgreSQL
    # and neither indexes it portably).
    tags: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # No foreign key: the rules keep it true (a project is locked while a task joins it, and
    # deleting a project deletes its tasks first, each with its event), and adding one to
    # an existing SQLite table would mean rebuilding the table.
    project_id: uuid.UUID | None = Field(default=None, sa_type=sa.Uuid)
    # An RRULE value (docs/spec/tasks.md §2.3), upper-cased, or null for a one-off task.
    recurrence: str | None = Field(default=None, max_length=500)
    # The series: its first due_at (the expansion's start, the anchor of COUNT) and how many
    # of its occurrences are done. Set again when recurrence or due_at is changed.
    recurrence_start: datetime | None = Field(default=None, sa_type=UtcDateTime)
    recurrence_completed: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    last_completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    version: int = 1
    # The owner's change sequence at the task's latest change (the changes feed's order);
    # 0 for tasks last changed before the feed existed.
    change_seq: int = Field(
        default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0")
    )


# --- full-text search (docs/adr/0016-full-text-search.md) --------------------------------
#
# Both search indexes are kept by the database itself, never by the service's code: on
# PostgreSQL a stored generated tsvector column with a GIN index, on SQLite an FTS5 table
# over the tasks table, kept in step by triggers. Objects that exist on one dialect only
# carry ``info={"only_on": <dialect>}``: the schema comparison of the tests skips them on
# the other one (momentum_devtools.testing.databases.schema_differences).

ONLY_ON = "only_on"
_TASKS_TABLE: sa.Table = Task.__table__  # type: ignore[attr-defined]

# Appended to the table after the class is mapped, so the ORM neither loads nor writes it;
# the reads name their columns (repository.TASK_COLUMNS).
SEARCH_VECTOR = sa.Column(
    "search_vector",
    TSVECTOR,
    sa.Computed(
        "to_tsvector('english', title || ' ' || coalesce(description, ''))", persisted=True
    ),
    info={ONLY_ON: "postgresql"},
)
_TASKS_TABLE.append_column(SEARCH_VECTOR)
# fastupdate off: new entries go straight into the index instead of a pending list that
# every search scans until VACUUM merges it (up to 4 MB: it made a search 3.5x slower).
sa.Index(
    "ix_tasks_search_vector",
    SEARCH_VECTOR,
    postgresql_using="gin",
    postgresql_with={"fastupdate": "off"},
    info={ONLY_ON: "postgresql"},
).ddl_if(dialect="postgresql")


@compiles(CreateColumn, "sqlite")
def _skip_postgresql_columns(element: CreateColumn, compiler: Any, **kw: Any) -> Any:
    column = element.element
    if getattr(column, "info", {}).get(ONLY_ON, "sqlite") != "sqlite":
        return None  # CREATE TABLE on SQLite leaves the column out
    return compiler.visit_create_column(element, **kw)


# The FTS5 table holds no text of its own (external content: the tasks table, by rowid);
# the triggers keep its index in step with every insert, update and delete of a task.
# The same statements, word for word, are in the migration tasks0007: a test compares them.
SQLITE_SEARCH_CREATE = (
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
)
SQLITE_SEARCH_DROP = (
    "DROP TRIGGER IF EXISTS tasks_search_update",
    "DROP TRIGGER IF EXISTS tasks_search_delete",
    "DROP TRIGGER IF EXISTS tasks_search_insert",
    "DROP TABLE IF EXISTS tasks_search",
)
for _event, _statements in (
    ("after_create", SQLITE_SEARCH_CREATE),
    ("before_drop", SQLITE_SEARCH_DROP),
):
    for _statement in _statements:
        _ddl = sa.DDL(_statement)  # type: ignore[no-untyped-call]
        sa.event.listen(_TASKS_TABLE, _event, _ddl.execute_if(dialect="sqlite"))


class TaskOwner(TasksBase, table=True):
    """Per user: the last change sequence given out, and the highest one pruned.

    Every write of a user locks this row first (docs/adr/0014-changes-feed.md): the user's
    writes then commit in the order of their sequence numbers, so a reader never sees a
    later change without the earlier ones.
    """

    __tablename__ = "task_owners"

    owner_id: uuid.UUID = Field(primary_key=True, sa_type=sa.Uuid)
    last_seq: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    # The highest sequence of a tombstone pruned: a feed token before it may miss a deletion.
    pruned_seq: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))


class TaskTombstone(TasksBase, table=True):
    """A deleted task, for the changes feed; pruned after the retention time."""

    __tablename__ = "task_tombstones"
    __table_args__ = (
        sa.Index("ix_task_tombstones_owner_change", "owner_id", "change_seq"),
        sa.Index("ix_task_tombstones_deleted_at", "deleted_at"),
    )

    task_id: uuid.UUID = Field(primary_key=True, sa_type=sa.Uuid)
    owner_id: uuid.UUID = Field(sa_type=sa.Uuid)
    change_seq: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    deleted_at: datetime = Field(sa_type=UtcDateTime)


class Project(TasksBase, table=True):
    """One user's project; names are unique per owner ignoring case (``name_folded``)."""

    __tablename__ = "projects"
    __table_args__ = (
        # Holds under concurrent creates and renames on both dialects: the database refuses
        # the second of two equal folded names, whatever the timing.
        sa.Index("ux_projects_owner_name", "owner_id", "name_folded", unique=True),
        sa.Index("ix_projects_owner_archived_name", "owner_id", "archived", "name_folded"),
    )

    id: uuid.UUID = Field(primary_key=True, sa_type=sa.Uuid)
    owner_id: uuid.UUID = Field(sa_type=sa.Uuid)
    name: str = Field(max_length=120)
    # str.casefold() of the name: the same on both dialects for every script.
    name_folded: str = Field(max_length=480)
    color: str | None = Field(default=None, max_length=7)
    archived: bool = False
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    version: int = 1


class TaskTag(TasksBase, table=True):
    """One tag of one task, kept beside ``tasks.tags`` so the tag filter is an index lookup."""

    __tablename__ = "task_tags"
    __table_args__ = (sa.Index("ix_task_tags_owner_tag", "owner_id", "tag", "task_id"),)

    task_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
        )
    )
    tag: str = Field(primary_key=True, max_length=32)
    owner_id: uuid.UUID = Field(sa_type=sa.Uuid)


class IdempotencyKey(TasksBase, table=True):
    """A client's ``Idempotency-Key`` on ``POST /tasks``, kept per user for 24 hours."""

    __tablename__ = "idempotency_keys"

    owner_id: uuid.UUID = Field(primary_key=True, sa_type=sa.Uuid)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    task_id: uuid.UUID | None = Field(default=None, sa_type=sa.Uuid)
    status_code: int | None = None
    response_body: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(sa_type=UtcDateTime, index=True)


__all__ = [
    "MODELS",
    "NO_DUE_DATE",
    "ONLY_ON",
    "OUTBOX",
    "SEARCH_VECTOR",
    "SQLITE_SEARCH_CREATE",
    "SQLITE_SEARCH_DROP",
    "IdempotencyKey",
    "OutboxEvent",
    "Project",
    "Task",
    "TaskOwner",
    "TaskTag",
    "TaskTombstone",
    "TasksBase",
]
