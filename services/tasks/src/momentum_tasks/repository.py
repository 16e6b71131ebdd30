"""Every query of the tasks service; each one is filtered by the owner's id."""

from __future__ import annotations

import builtins
import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_shared.db import Repository, UtcDateTime
from momentum_tasks.models import (
    SEARCH_VECTOR,
    IdempotencyKey,
    Project,
    Task,
    TaskOwner,
    TaskTag,
    TaskTombstone,
)
from momentum_tasks.pagination import Position
from momentum_tasks.schemas import ArchivedFilter, TaskFilters, TaskSort
from momentum_tasks.search import search_terms

_DESCENDING = {TaskSort.newest_first, TaskSort.due_latest}


def _like_pattern(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# Reads return rows of the table, not ORM objects: a read needs no identity map, no change
# tracking and no hydration into a model (ADR 0011). The same attribute names as `Task`.
TaskRow = sa.Row[Any]
_TASKS = Task.__table__  # type: ignore[attr-defined]
# The columns a read returns: every column of the model, not the search index (a PostgreSQL
# column that SQLite does not have, and that no answer needs).
TASK_COLUMNS = tuple(column for column in _TASKS.columns if column is not SEARCH_VECTOR)
_GET_TASK = sa.select(*TASK_COLUMNS).where(
    _TASKS.c.owner_id == sa.bindparam("owner_id"), _TASKS.c.id == sa.bindparam("task_id")
)
ProjectRow = sa.Row[Any]
_PROJECTS = Project.__table__  # type: ignore[attr-defined]
_GET_PROJECT = sa.select(_PROJECTS).where(
    _PROJECTS.c.owner_id == sa.bindparam("owner_id"),
    _PROJECTS.c.id == sa.bindparam("project_id"),
)


@functools.lru_cache(maxsize=8)
def _project_page_shape(archived: ArchivedFilter, after: bool) -> sa.Select[Any]:
    """A page of one owner's projects by folded name (unique per owner: a total order)."""
    query = sa.select(_PROJECTS).where(
        _PROJECTS.c.owner_id == sa.bindparam("owner_id", type_=sa.Uuid)
    )
    if archived is not ArchivedFilter.any:
        query = query.where(_PROJECTS.c.archived == sa.bindparam("archived", type_=sa.Boolean))
    if after:
        query = query.where(_PROJECTS.c.name_folded > sa.bindparam("after", type_=sa.String))
    return query.order_by(_PROJECTS.c.name_folded).limit(sa.bindparam("limit", type_=sa.Integer))


# SQLite's FTS5 table over the tasks (models.SQLITE_SEARCH_CREATE): its rows share the
# tasks' rowids; the hidden column named like the table takes MATCH and bm25().
_FTS = sa.table("tasks_search", sa.column("rowid"), sa.column("tasks_search"))
_FTS_JOIN = _TASKS.join(_FTS, _FTS.c.rowid == sa.literal_column("tasks.rowid"))


def _page_statement(
    owner_id: uuid.UUID,
    filters: TaskFilters,
    sort: TaskSort,
    after: Position | None,
    limit: int,
    *,
    sqlite: bool,
) -> tuple[sa.Select[Any], dict[str, Any]]:
    """The page query for this shape of request (built once per shape) and its values."""
    values: dict[str, Any] = {"owner_id": owner_id, "limit": limit + 1}
    if filters.search is not None:
        terms = search_terms(filters.search)
        if terms is None:  # the filter's validator refuses such a search already
            raise ValueError("a search without words")
        values["search"] = terms.fts5() if sqlite else terms.tsquery()
    for name in ("status", "priority", "tag", "due_before", "due_after"):
        value = getattr(filters, name)
        if value is not None:
            values[name] = value
    if filters.q is not None:
        values["q"] = _like_pattern(filters.q)
    flags: set[str] = set()
    if filters.project_id == "none":
        flags.add("no_project")
    elif filters.project_id is not None:
        values["project_id"] = filters.project_id
    if after is not None:
        values["after_key"] = after.key
        values["after_id"] = after.id
    return _page_shape(frozenset(values) | flags, sort, sqlite), values


@functools.lru_cache(maxsize=1024)
def _page_shape(present: frozenset[str], sort: TaskSort, sqlite: bool) -> sa.Select[Any]:
    def bound(name: str, type_: Any = None) -> Any:
        return sa.bindparam(name, type_=type_)

    query = sa.select(*TASK_COLUMNS).where(col(Task.owner_id) == bound("owner_id", sa.Uuid))
    score: Any = None
    if "search" in present:
        # The owner filter and the index match are one statement: another user's task is
        # never fetched. Lower scores are better matches on both dialects.
        if sqlite:
            query = query.select_from(_FTS_JOIN).where(
                _FTS.c.tasks_search.bool_op("MATCH")(bound("search", sa.String))
            )
            score = sa.func.bm25(sa.literal_column("tasks_search"), type_=sa.Float)
        else:
            tsquery = sa.func.to_tsquery(sa.literal_column("'english'"), bound("search", sa.String))
            query = query.where(SEARCH_VECTOR.bool_op("@@")(tsquery))
            score = -sa.func.ts_rank(SEARCH_VECTOR, tsquery, type_=sa.Float)
        query = query.add_columns(score.label("search_score"))
    if "status" in present:
        query = query.where(col(Task.status) == bound("status", sa.String))
    if "priority" in present:
        query = query.where(col(Task.priority) == bound("priority", sa.String))
    if "tag" in present:
        query = query.where(
            sa.exists().where(
                col(TaskTag.owner_id) == bound("owner_id", sa.Uuid),
                col(TaskTag.tag) == bound("tag", sa.String),
                col(TaskTag.task_id) == col(Task.id),
            )
        )
    if "q" in present:
        query = query.where(col(Task.title_folded).like(bound("q", sa.String), escape="\\"))
    if "project_id" in present:
        query = query.where(col(Task.project_id) == bound("project_id", sa.Uuid))
    if "no_project" in present:
        query = query.where(col(Task.project_id).is_(None))
    if "due_before" in present:
        query = query.where(col(Task.due_at) < bound("due_before", UtcDateTime))
    if "due_after" in present:
        query = query.where(col(Task.due_at) > bound("due_after", UtcDateTime))
    key_type: Any = UtcDateTime
    if sort is TaskSort.relevance:
        if score is None:  # the filters' validator refuses relevance without a search
            raise ValueError("relevance without a search")
        key, key_type = score, sa.Float
    elif sort in (TaskSort.newest_first, TaskSort.oldest_first):
        key = col(Task.created_at)
    else:
        key = col(Task.due_sort)
    descending = sort in _DESCENDING
    if "after_key" in present:
        row = sa.tuple_(key, col(Task.id))
        position = sa.tuple_(bound("after_key", key_type), bound("after_id", sa.Uuid))
        query = query.where(row < position if descending else row > position)
    if descending:
        query = query.order_by(key.desc(), col(Task.id).desc())
    else:
        query = query.order_by(key.asc(), col(Task.id).asc())
    return query.limit(bound("limit", sa.Integer))


_OWNERS = TaskOwner.__table__  # type: ignore[attr-defined]
_TOMBSTONES = TaskTombstone.__table__  # type: ignore[attr-defined]


def _feed_statement() -> sa.Select[Any]:
    """One owner's tasks and tombstones changed after ``since``, in change order, as ONE
    statement: both dialects answer a statement from one snapshot, so a page never holds a
    later change without the earlier ones (docs/adr/0014-changes-feed.md)."""
    owner, since = (
        sa.bindparam("owner_id", type_=sa.Uuid),
        sa.bindparam("since", type_=sa.BigInteger),
    )
    names = [column.name for column in TASK_COLUMNS if column.name != "change_seq"]
    tasks = sa.select(
        *(_TASKS.c[name] for name in names),
        sa.cast(sa.null(), UtcDateTime).label("deleted_at"),
        _TASKS.c.change_seq,
    ).where(_TASKS.c.owner_id == owner, _TASKS.c.change_seq > since)
    tombstones = sa.select(
        *(
            _TOMBSTONES.c.task_id.label("id")
            if name == "id"
            else _TOMBSTONES.c.owner_id.label("owner_id")
            if name == "owner_id"
            else sa.cast(sa.null(), _TASKS.c[name].type).label(name)
            for name in names
        ),
        _TOMBSTONES.c.deleted_at,
        _TOMBSTONES.c.change_seq,
    ).where(_TOMBSTONES.c.owner_id == owner, _TOMBSTONES.c.change_seq > since)
    # Each arm ordered and limited on its own: an index range scan that stops early.
    limit = sa.bindparam("limit", type_=sa.Integer)
    arms = [
        sa.select(arm.order_by(arm.selected_columns.change_seq).limit(limit).subquery(name))
        for arm, name in ((tasks, "changed"), (tombstones, "deleted"))
    ]
    both = sa.union_all(*arms).subquery("changes")
    return (
        sa.select(both).order_by(both.c.change_seq).limit(sa.bindparam("limit", type_=sa.Integer))
    )


_FEED = _feed_statement()
_OWNER_MARKS = sa.select(_OWNERS.c.last_seq, _OWNERS.c.pruned_seq).where(
    _OWNERS.c.owner_id == sa.bindparam("owner_id", type_=sa.Uuid)
)


class TaskRepository(Repository):
    """Tasks, tags and idempotency keys of one request's unit of work (flushes, never commits)."""

    __slots__ = ("_writing_for",)

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self._writing_for: uuid.UUID | None = None

    async def begin_write(self, *, owner_id: uuid.UUID) -> None:
        """Start a write of ``owner_id``'s rows: take the locks, in the one order every write
        takes them.

        First, on SQLite, the write lock: SQLite locks the whole database and refuses
        (rather than waits) to upgrade a read transaction that another writer overtook;
        starting with ``BEGIN IMMEDIATE`` makes concurrent writers queue on
        ``busy_timeout`` instead. Then the owner's row of ``task_owners`` (created on the
        first write), which every write of that owner takes before any task or project row:
        the owner's writes commit in the order of their change sequence numbers, and no two
        of them can deadlock on each other's rows.
        """
        if self._writing_for == owner_id:
            return
        if self.sqlite:
            connection = await self.session.connection()
            raw = await connection.get_raw_connection()
            # Already writing in this transaction (the driver began it): the lock is ours.
            if not getattr(raw.driver_connection, "in_transaction", False):
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
        insert = self.insert(TaskOwner).values(owner_id=owner_id, last_seq=0, pruned_seq=0)
        # A no-op update of an existing row: it locks the row until the transaction ends.
        await self.session.exec(
            insert.on_conflict_do_update(
                index_elements=["owner_id"], set_={"last_seq": _OWNERS.c.last_seq}
            )
        )
        self._writing_for = owner_id

    async def next_change(self, *, owner_id: uuid.UUID) -> int:
        """The owner's next change sequence number (the owner's row is locked already)."""
        result = await self.session.exec(
            sa.update(TaskOwner)
            .where(col(TaskOwner.owner_id) == owner_id)
            .values(last_seq=col(TaskOwner.last_seq) + 1)
            .returning(col(TaskOwner.last_seq))
        )
        return int(result.scalar_one())

    async def add_tombstone(
        self, *, owner_id: uuid.UUID, task_id: uuid.UUID, change_seq: int, deleted_at: datetime
    ) -> None:
        await self.session.exec(
            sa.insert(TaskTombstone).values(
                task_id=task_id, owner_id=owner_id, change_seq=change_seq, deleted_at=deleted_at
            )
        )

    async def changes(self, *, owner_id: uuid.UUID, since: int, limit: int) -> builtins.list[Any]:
        """Up to ``limit`` changes after ``since``: task rows, or tombstones (``title`` null)."""
        connection = await self.session.connection()
        values = {"owner_id": owner_id, "since": since, "limit": limit}
        return builtins.list((await connection.execute(_FEED, values)).all())

    async def owner_marks(self, *, owner_id: uuid.UUID) -> tuple[int, int]:
        """The owner's last change sequence number and the highest pruned one (0, 0 if none)."""
        connection = await self.session.connection()
        row = (await connection.execute(_OWNER_MARKS, {"owner_id": owner_id})).first()
        return (0, 0) if row is None else (int(row.last_seq), int(row.pruned_seq))

    async def prune_tombstones(self, *, deleted_before: datetime) -> int:
        """Housekeeping across all owners: drop old tombstones, remembering per owner the
        highest sequence dropped (a feed token before it is told to resync)."""
        old = col(TaskTombstone.deleted_at) < deleted_before
        highest: builtins.list[Any] = (
            await self.execute(
                sa.select(col(TaskTombstone.owner_id), sa.func.max(col(TaskTombstone.change_seq)))
                .where(old)
                .group_by(col(TaskTombstone.owner_id))
            )
        ).all()  # type: ignore[assignment]
        pruned = 0
        for row in highest:
            owner_id, change_seq = row[0], int(row[1])
            await self.session.exec(
                sa.update(TaskOwner)
                .where(col(TaskOwner.owner_id) == owner_id, col(TaskOwner.pruned_seq) < change_seq)
                .values(pruned_seq=change_seq)
            )
            result = await self.session.exec(
                sa.delete(TaskTombstone).where(
                    col(TaskTombstone.owner_id) == owner_id,
                    col(TaskTombstone.change_seq) <= change_seq,
                    old,
                )
            )
            pruned += int(result.rowcount or 0)
        return pruned

    # --- tasks ---------------------------------------------------------------------------

    async def get(
        self, *, owner_id: uuid.UUID, task_id: uuid.UUID, for_update: bool = False
    ) -> Task | None:
        query = select(Task).where(Task.owner_id == owner_id, Task.id == task_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.exec(query)).first()

    async def read(self, *, owner_id: uuid.UUID, task_id: uuid.UUID) -> TaskRow | None:
        """The task as a row, for answering a read (``get`` returns it to be changed)."""
        connection = await self.session.connection()
        result = await connection.execute(_GET_TASK, {"owner_id": owner_id, "task_id": task_id})
        return result.first()

    async def add(self, task: Task) -> None:
        self.session.add(task)
        await self.session.flush()
        await self._insert_tags(owner_id=task.owner_id, task_id=task.id, tags=task.tags)

    async def replace_tags(
        self, *, owner_id: uuid.UUID, task_id: uuid.UUID, tags: Sequence[str]
    ) -> None:
        await self.session.exec(
            sa.delete(TaskTag).where(
                col(TaskTag.owner_id) == owner_id, col(TaskTag.task_id) == task_id
            )
        )
        await self._insert_tags(owner_id=owner_id, task_id=task_id, tags=tags)

    async def _insert_tags(
        self, *, owner_id: uuid.UUID, task_id: uuid.UUID, tags: Sequence[str]
    ) -> None:
        if tags:
            await self.session.exec(
                sa.insert(TaskTag).values(
                    [{"task_id": task_id, "owner_id": owner_id, "tag": tag} for tag in tags]
                )
            )

    async def flush(self) -> None:
        await self.session.flush()

    async def delete(self, *, owner_id: uuid.UUID, task_id: uuid.UUID) -> bool:
        await self.session.exec(
            sa.delete(TaskTag).where(
                col(TaskTag.owner_id) == owner_id, col(TaskTag.task_id) == task_id
            )
        )
        result = await self.session.exec(
            sa.delete(Task).where(col(Task.owner_id) == owner_id, col(Task.id) == task_id)
        )
        return bool(result.rowcount)

    def list_query(
        self,
        *,
        owner_id: uuid.UUID,
        filters: TaskFilters,
        sort: TaskSort,
        after: Position | None,
        limit: int,
    ) -> sa.Select[Any]:
        """One page (plus one row, to know whether another page follows) of a keyset scan."""
        statement, values = _page_statement(
            owner_id, filters, sort, after, limit, sqlite=self.sqlite
        )
        return statement.params(values)

    async def list(
        self,
        *,
        owner_id: uuid.UUID,
        filters: TaskFilters,
        sort: TaskSort,
        after: Position | None,
        limit: int,
    ) -> list[TaskRow]:
        statement, values = _page_statement(
            owner_id, filters, sort, after, limit, sqlite=self.sqlite
        )
        if filters.search is not None and not self.sqlite:
            # A search is planned for its own words: a generic plan of the prepared
            # statement knows neither how many tasks match nor how many the owner has, and
            # it chose to intersect the GIN matches with all of the owner's tasks (10x
            # slower for a user with 100,000 tasks). Until the request's transaction ends,
            # so a read session (autocommit) opens one for it.
            connection = await self.session.connection(
                execution_options={"isolation_level": "READ COMMITTED"}
            )
            await connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        else:
            connection = await self.session.connection()
        return list((await connection.execute(statement, values)).all())

    # --- projects ------------------------------------------------------------------------

    async def read_project(
        self, *, owner_id: uuid.UUID, project_id: uuid.UUID
    ) -> ProjectRow | None:
        connection = await self.session.connection()
        values = {"owner_id": owner_id, "project_id": project_id}
        return (await connection.execute(_GET_PROJECT, values)).first()

    async def get_project(
        self, *, owner_id: uuid.UUID, project_id: uuid.UUID, lock: Literal["update", "share"]
    ) -> Project | None:
        """The project to change (``update``) or to put a task in (``share``), locked.

        A task joining a project holds a shared lock on it, so a concurrent delete of the
        project waits for that task (and then deletes it too) or goes first (and the task is
        refused): no task is ever left in a deleted project.
        """
        query = select(Project).where(Project.owner_id == owner_id, Project.id == project_id)
        query = query.with_for_update(read=lock == "share")
        return (await self.session.exec(query)).first()

    async def add_project(self, project: Project) -> bool:
        """Insert ``project``; False when the owner already has a project of that folded name."""
        # On PostgreSQL a concurrent create of the same name waits on the unique index until
        # the first commits, then inserts nothing; SQLite's write lock serialises them.
        inserted = await self.session.exec(
            self.insert(Project)
            .values(**project.model_dump())
            .on_conflict_do_nothing(index_elements=["owner_id", "name_folded"])
        )
        return bool(inserted.rowcount)

    async def save_project(self) -> bool:
        """Flush a changed project; False when its new name is taken (the caller must then fail
        the request: the transaction is unusable on PostgreSQL)."""
        try:
            await self.session.flush()
        except sa.exc.IntegrityError:
            return False
        return True

    async def list_projects(
        self, *, owner_id: uuid.UUID, archived: ArchivedFilter, after: str | None, limit: int
    ) -> builtins.list[ProjectRow]:
        values: dict[str, Any] = {"owner_id": owner_id, "limit": limit + 1}
        if archived is not ArchivedFilter.any:
            values["archived"] = archived is ArchivedFilter.archived
        if after is not None:
            values["after"] = after
        statement = _project_page_shape(archived, after is not None)
        connection = await self.session.connection()
        return list((await connection.execute(statement, values)).all())

    async def project_tasks(
        self, *, owner_id: uuid.UUID, project_id: uuid.UUID
    ) -> builtins.list[Task]:
        """The project's tasks, locked, to be deleted with it."""
        query = (
            select(Task)
            .where(Task.owner_id == owner_id, Task.project_id == project_id)
            .order_by(col(Task.created_at), col(Task.id))
            .with_for_update()
        )
        return list((await self.session.exec(query)).all())

    async def delete_project(self, *, owner_id: uuid.UUID, project_id: uuid.UUID) -> None:
        await self.session.exec(
            sa.delete(Project).where(
                col(Project.owner_id) == owner_id, col(Project.id) == project_id
            )
        )

    # --- idempotency keys ----------------------------------------------------------------

    async def claim_idempotency_key(
        self,
        *,
        owner_id: uuid.UUID,
        key: str,
        request_hash: str,
        now: datetime,
        expired_before: datetime,
    ) -> IdempotencyKey | None:
        """Reserve ``key`` for this request; the earlier, still valid use of it otherwise.

        On PostgreSQL a concurrent duplicate waits on the unique key until the first
        request commits, then sees its stored response; on SQLite the write lock taken by
        ``begin_write`` already serialises them.
        """
        values: dict[str, Any] = {
            "owner_id": owner_id,
            "key": key,
            "request_hash": request_hash,
            "created_at": now,
        }
        insert = (
            self.insert(IdempotencyKey)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["owner_id", "key"])
        )
        for _ in range(3):
            if (await self.session.exec(insert)).rowcount == 1:
                return None
            existing = await self._idempotency_key(owner_id=owner_id, key=key)
            if existing is None:
                continue  # it expired and was purged in between: try again
            if existing.created_at >= expired_before:
                return existing
            # An expired use: take the key over, unless another request just did.
            taken = await self.session.exec(
                sa.update(IdempotencyKey)
                .where(
                    col(IdempotencyKey.owner_id) == owner_id,
                    col(IdempotencyKey.key) == key,
                    col(IdempotencyKey.created_at) == existing.created_at,
                )
                .values(
                    request_hash=request_hash,
                    created_at=now,
                    task_id=None,
                    status_code=None,
                    response_body=None,
                )
            )
            if taken.rowcount == 1:
                return None
        raise RuntimeError("could not claim the idempotency key")

    async def _idempotency_key(self, *, owner_id: uuid.UUID, key: str) -> IdempotencyKey | None:
        query = (
            select(IdempotencyKey)
            .where(IdempotencyKey.owner_id == owner_id, IdempotencyKey.key == key)
            .execution_options(populate_existing=True)
        )
        return (await self.session.exec(query)).first()

    async def record_idempotent_response(
        self,
        *,
        owner_id: uuid.UUID,
        key: str,
        task_id: uuid.UUID | None,
        status_code: int,
        body: str,
    ) -> None:
        await self.session.exec(
            sa.update(IdempotencyKey)
            .where(col(IdempotencyKey.owner_id) == owner_id, col(IdempotencyKey.key) == key)
            .values(task_id=task_id, status_code=status_code, response_body=body)
        )

    async def purge_idempotency_keys(self, *, expired_before: datetime) -> int:
        """Housekeeping across all owners (an operator command, not a user request)."""
        result = await self.session.exec(
            sa.delete(IdempotencyKey).where(col(IdempotencyKey.created_at) < expired_before)
        )
        return int(result.rowcount or 0)
