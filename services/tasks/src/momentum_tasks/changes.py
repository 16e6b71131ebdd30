"""The changes feed (docs/spec/tasks.md §7): every change after a token, none missed, in order.

Each write of a user takes the next number of the user's change sequence while it holds the
user's ``task_owners`` row; a task keeps the number of its latest change, a deleted task
leaves a tombstone with the number of its deletion. A page is one statement over both, in
sequence order, and its token is the last number it returned (docs/adr/0014-changes-feed.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from momentum_shared.errors import ProblemError
from momentum_tasks.pagination import CursorCodec
from momentum_tasks.repository import TaskRepository
from momentum_tasks.schemas import (
    ChangesPage,
    DeletedTask,
    TaskChange,
    TaskDeletion,
    TaskPublic,
)
from momentum_tasks.service import Actor

# Before the first change: a feed from here returns every current task.
START = -1


class ResyncRequired(ProblemError):
    """410: the token is too old (or not a token); the client starts again without one."""

    status: ClassVar[int] = 410
    title: ClassVar[str] = "Resync Required"
    type_: ClassVar[str] = "urn:momentum:problem/resync-required"


def _resync(detail: str) -> ResyncRequired:
    return ResyncRequired(f"{detail}; fetch the feed again without since")


def _change(row: Any) -> TaskChange | TaskDeletion:
    if row.deleted_at is not None:
        return TaskDeletion(deleted=DeletedTask(id=row.id, deleted_at=row.deleted_at))
    return TaskChange(task=TaskPublic.model_validate(row, from_attributes=True))


async def changes(
    repo: TaskRepository,
    *,
    actor: Actor,
    since: str | None,
    limit: int,
    codec: CursorCodec,
    retention: timedelta,
    now: datetime,
) -> ChangesPage:
    after = START
    if since is not None:
        decoded = codec.decode_since(since, owner_id=actor.owner_id)
        if decoded is None:
            raise _resync("since is not a token of this feed")
        after, issued_at = decoded
        if issued_at < now - retention:
            raise _resync("since is older than the feed remembers deletions")
    rows = await repo.changes(owner_id=actor.owner_id, since=after, limit=limit + 1)
    # Read after the page: a prune that removed a tombstone this page should have held
    # committed before the page was read, so its mark is visible here.
    last_seq, pruned_seq = await repo.owner_marks(owner_id=actor.owner_id)
    if after != START and (pruned_seq > after or after > last_seq):
        raise _resync("deletions after since are no longer remembered")
    page = rows[:limit]
    position = int(page[-1].change_seq) if page else after
    return ChangesPage(
        changes=[_change(row) for row in page],
        next_since=codec.encode_since(owner_id=actor.owner_id, seq=position, issued_at=now),
        has_more=len(rows) > limit,
    )
