"""The database side every service shares: engine, session factory, unit of work, the
timestamp column type, the repository base and what "the database is unreachable" means."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import TracebackType
from typing import Annotated, Any
from weakref import WeakSet

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as SAAsyncSession
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_shared.sqlite_driver import one_hop_dbapi
from momentum_shared.state import request_state
from momentum_shared.tracing import instrument_engine

# Errors that say the database cannot be reached right now, not that a statement is wrong:
# an API answers 503 for them, a consumer retries the message instead of dead-lettering it.
DATABASE_UNREACHABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    OSError,
)


def database_unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached rather than that the work is bad.

    Besides :data:`DATABASE_UNREACHABLE`, a statement that found its pooled connection
    closed under it (PostgreSQL restarted, failed over, or the network cut): SQLAlchemy
    raises a bare ``DBAPIError`` with ``connection_invalidated`` set and discards every
    connection of the pool opened before, so the next checkout connects afresh. Pools are
    not pinged before each checkout (docs/adr/0011-data-access.md): this is how a dead
    connection is found instead.
    """
    return isinstance(error, DATABASE_UNREACHABLE) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    )


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python (SQLite drops the offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        return as_utc(value)


def as_utc(value: datetime | None) -> datetime | None:
    """``value`` as aware UTC; a naive value (SQLite hands those back) is taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


ConflictInsert = postgresql.Insert | sqlite.Insert


def conflict_insert(dialect: str, table: Any) -> ConflictInsert:
    """``INSERT`` with ``on_conflict_do_nothing()``/``on_conflict_do_update()`` for ``dialect``.

    SQLAlchemy spells ON CONFLICT per dialect; PostgreSQL and SQLite take the same arguments.
    """
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


async def execute(session: AsyncSession | SAAsyncSession, statement: sa.Executable) -> Any:
    """A Core statement on the session's connection: the same transaction, no identity map
    (and none of SQLModel's deprecation of ``Session.execute``)."""
    connection = await session.connection()
    return await connection.execute(statement)


class Repository:
    """Base of every service's repository: one unit of work's session and its dialect.

    A repository executes and flushes inside the caller's transaction; it never commits.
    """

    __slots__ = ("dialect", "session")

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect: str = session.get_bind().dialect.name

    @property
    def postgres(self) -> bool:
        return self.dialect == "postgresql"

    @property
    def sqlite(self) -> bool:
        return self.dialect == "sqlite"

    async def execute(self, statement: sa.Executable) -> sa.CursorResult[Any]:
        result: sa.CursorResult[Any] = await execute(self.session, statement)
        return result

    def insert(self, table: Any) -> ConflictInsert:
        """An ``INSERT`` that can say ``ON CONFLICT`` on this repository's dialect."""
        return conflict_insert(self.dialect, table)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str, *, pool_size: int = 10, echo: bool = False, statement_cache: bool = True
) -> AsyncEngine:
    """Create an async engine tuned for the dialect in ``url``.

    ``statement_cache=False`` (PostgreSQL through asyncpg) keeps no prepared statement from
    one transaction to the next, as a transaction-mode pooler needs (``database_statement_cache``).
    """
    # Parameters can hold passwords, hashes and task text: never put them in logs or errors.
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if not statement_cache and make_url(url).get_driver_name() == "asyncpg":
        kwargs["connect_args"] = _WITHOUT_STATEMENT_CACHE
    # At most twice ``pool_size`` connections, every one kept once opened: no overflow. An
    # overflow connection is closed when it comes back to a pool that already holds
    # ``pool_size`` idle ones, so under a concurrency that swings around the pool size
    # requests kept opening connections (under aiosqlite a thread of its own and the
    # PRAGMAs, on PostgreSQL a login): docs/adr/0010-http-hot-path.md, decision 4.
    kept = {"pool_size": 2 * pool_size, "max_overflow": 0}
    if is_sqlite(url):
        kwargs["connect_args"] = {"timeout": 30}
        if make_url(url).get_driver_name() == "aiosqlite":
            kwargs["module"] = one_hop_dbapi()
        if make_url(url).database not in (None, "", ":memory:"):
            kwargs.update(kept)
    else:
        kwargs.update(kept)
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        _configure_sqlite(engine)
    track_writes(engine)
    instrument_engine(engine)
    return engine


def _statement_name() -> str:
    # A name no other client of a shared server connection can have used.
    return f"__momentum_{uuid.uuid4().hex}__"


# asyncpg's own statement cache and SQLAlchemy's cache of prepared statements are both off,
# so no statement outlives the transaction it was prepared in; the unique names keep two
# clients of one pooled server connection from colliding on asyncpg's numbered names.
_WITHOUT_STATEMENT_CACHE: dict[str, Any] = {
    "statement_cache_size": 0,
    "prepared_statement_cache_size": 0,
    "prepared_statement_name_func": _statement_name,
}


# Engines whose connections say whether their open transaction has written anything; a unit
# of work on any other engine commits whatever it did, as if it had written.
_TRACKED: WeakSet[sa.Engine] = WeakSet()
_WROTE = "momentum_wrote"


def track_writes(engine: AsyncEngine) -> None:
    """Mark a connection as written to by any statement but a ``SELECT``, until its
    transaction ends, so a unit of work that only read can end without ``COMMIT``."""
    sync_engine = engine.sync_engine
    if sync_engine in _TRACKED:
        return

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _on_execute(
        connection: sa.Connection,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        if connection.info.get(_WROTE) is None and statement.lstrip()[:6].upper() != "SELECT":
            connection.info[_WROTE] = True

    @event.listens_for(sync_engine, "commit")
    @event.listens_for(sync_engine, "rollback")
    def _on_end(connection: sa.Connection) -> None:
        # An invalidated connection (the database went away) is discarded with its mark.
        if not connection.invalidated:
            connection.info.pop(_WROTE, None)

    _TRACKED.add(sync_engine)


# How long a connection to a fresh SQLite file retries switching it to WAL while other
# connections race to do the same.
_WAL_SWITCH_SECONDS = 5.0


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers run beside the writer; busy_timeout waits instead of failing.
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA busy_timeout=30000")
            _switch_to_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """``journal_mode=WAL``, which persists in the file: once one connection switched it the
    others find it done. Switching takes an exclusive lock that SQLite refuses at once,
    without its busy handler, when connections opening a fresh file race; so retry briefly."""
    deadline = time.monotonic() + _WAL_SWITCH_SECONDS
    while True:
        cursor.execute("PRAGMA journal_mode")
        row = cursor.fetchone()
        if row is not None and str(row[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


class UnitOfWork:
    """One transaction: commits when the block succeeds, rolls back on any error.

    A block that only read ends without ``COMMIT`` (its transaction is rolled back when the
    session closes, which releases the same locks and snapshot). Code below the unit of work
    only flushes; it never commits.
    """

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory
        self._session: AsyncSession | None = None
        self._committed = False

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work has not been entered")
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        self._session = self._session_factory()
        self._committed = False
        return self

    async def commit(self) -> None:
        await self.session.commit()
        self._committed = True

    async def rollback(self) -> None:
        await self.session.rollback()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            if exc_type is None and not self._committed:
                if await _wrote(session):
                    await session.commit()
            elif exc_type is not None:
                await session.rollback()
        finally:
            await session.close()
            self._session = None


async def _wrote(session: AsyncSession) -> bool:
    """Whether committing ``session`` would change anything: pending ORM changes, or a
    statement other than ``SELECT`` in its transaction (always true on an untracked engine)."""
    sync_session = session.sync_session
    if sync_session.new or sync_session.deleted or sync_session.dirty:
        return True
    if sync_session.get_transaction() is None:
        return False
    connection = (await session.connection()).sync_connection
    if connection is None or connection.engine not in _TRACKED:
        return True
    return bool(connection.info.get(_WROTE))


async def check_database(engine: AsyncEngine) -> None:
    """Readiness probe: raises when the database cannot run a trivial query."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: commits before the response is sent if it wrote anything,
    rolls back on error."""
    async with UnitOfWork(request_state(request).session_factory) as uow:
        yield uow.session


# scope="function": the commit happens before the response leaves, so a failed commit
# is reported to the client instead of being hidden behind an already-sent 2xx.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

# The read-only sessions of each engine, by the engine's identity (apps come and go in tests:
# never more than a few are held).
_READ_SESSIONS: dict[int, tuple[AsyncEngine, async_sessionmaker[AsyncSession]]] = {}


def read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for requests that only read: ``engine`` in autocommit, sharing its pool.

    On PostgreSQL a read then costs its statements alone, without the ``BEGIN`` and the
    ``ROLLBACK`` around them (two round trips of a four-trip ``GET /tasks/{id}``). Each
    statement answers from one snapshot, as it would in a READ COMMITTED transaction, so
    a route whose statements need no snapshot in common reads the same rows either way.
    SQLite opens no transaction for a ``SELECT`` in the first place, and switching its
    connection to autocommit and back would cost two calls into aiosqlite's thread: there
    the sessions are the engine's own. docs/adr/0010-http-hot-path.md, decision 11.
    """
    known = _READ_SESSIONS.get(id(engine))
    if known is None or known[0] is not engine:
        if len(_READ_SESSIONS) > 16:
            _READ_SESSIONS.clear()
        bind = (
            engine
            if engine.dialect.name == "sqlite"
            else engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        known = (
            engine,
            async_sessionmaker(bind, class_=AsyncSession, expire_on_commit=False),
        )
        _READ_SESSIONS[id(engine)] = known
    return known[1]


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The session of a request that only reads (see :func:`read_session_factory`)."""
    async with read_session_factory(request_state(request).engine)() as session:
        yield session


# scope="function": the connection goes back to the pool before the response is written.
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
