"""SQLAlchemy's aiosqlite adapter, with one hop to aiosqlite's thread per statement.

aiosqlite runs every call on the sqlite3 connection in a thread of its own, and each call is
a round trip between the event loop and that thread (a queue put, a wake-up, a future set
from the other thread, the loop woken again). SQLAlchemy's adapter makes four of them per
statement (create a cursor, execute, fetch all, close) and a fifth for the ``ROLLBACK`` that
ends every checkout, even after a read that opened no transaction: 27 context switches per
``GET /tasks`` measured on the tasks process. Here a statement is one function run in that
thread (cursor, execute, fetch, close), which also reports whether the connection is left in
a transaction, so a ``ROLLBACK`` or ``COMMIT`` with nothing to end costs nothing.

Everything else is SQLAlchemy's ``sqlite+aiosqlite`` dialect unchanged: the engine is made
with ``module=`` :func:`one_hop_dbapi` (``create_engine`` in :mod:`momentum_shared.db`).
docs/adr/0011-data-access.md, "One hop per statement".
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    AsyncAdapt_aiosqlite_ss_cursor,
)


class _Ran:
    """What a sqlite3 cursor leaves after its statement: the attributes SQLAlchemy reads."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.description = cursor.description
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid
        self.arraysize = cursor.arraysize


def _run(
    connection: aiosqlite.Connection, operation: str, parameters: Any, many: bool
) -> tuple[_Ran, list[Any] | None, bool]:
    """In aiosqlite's thread: the whole statement, its rows, and whether a transaction is open."""
    raw = connection._conn
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        ran = _Ran(cursor)
        rows = cursor.fetchall() if cursor.description else None
        return ran, rows, raw.in_transaction
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor whose statement, rows and close are one call in aiosqlite's thread."""

    __slots__ = ()

    def _make_new_cursor(self, connection: Any) -> Any:  # noqa: ARG002
        return None  # nothing runs until execute(); then _cursor holds what the statement left

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor

    @property
    def description(self) -> Any:
        return None if self._cursor is None else self._cursor.description

    @property
    def rowcount(self) -> int:
        return -1 if self._cursor is None else int(self._cursor.rowcount)

    @property
    def lastrowid(self) -> int:
        return 0 if self._cursor is None else int(self._cursor.lastrowid or 0)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        return await self._run(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        return await self._run(operation, seq_of_parameters, many=True)

    async def _run(self, operation: Any, parameters: Any, *, many: bool) -> None:
        adapted = self._adapt_connection
        assert isinstance(adapted, OneHopConnection)
        async with adapted._execute_mutex:
            try:
                ran, rows, in_transaction = await self._connection._execute(
                    _run, self._connection, operation, parameters, many
                )
            except BaseException:
                # A failed statement may have begun a transaction: let the rollback run.
                adapted.in_transaction = True
                raise
            adapted.in_transaction = in_transaction
            self._cursor = ran
            if rows is not None:
                self._rows = collections.deque(rows)

    async def _async_soft_close(self) -> None:
        return None  # already closed in aiosqlite's thread

    def close(self) -> None:
        self._rows.clear()

    def nextset(self) -> None:
        return None  # sqlite3 has one result set per statement

    def setinputsizes(self, *inputsizes: Any) -> None:  # noqa: ARG002
        return None


class _StreamingCursor(AsyncAdapt_aiosqlite_ss_cursor):
    """SQLAlchemy's server-side cursor (``stream()``), unchanged but for its mark: whatever it
    ran, the connection may be in a transaction, so ``COMMIT``/``ROLLBACK`` go through."""

    __slots__ = ()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        _mark_open(self._adapt_connection)
        return await super()._execute_async(operation, parameters)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        _mark_open(self._adapt_connection)
        return await super()._executemany_async(operation, seq_of_parameters)


def _mark_open(connection: Any) -> None:
    if isinstance(connection, OneHopConnection):
        connection.in_transaction = True


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """The adapted connection: knows from its last statement whether a transaction is open."""

    __slots__ = ("in_transaction",)

    _cursor_cls = OneHopCursor
    _ss_cursor_cls = _StreamingCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.in_transaction = False

    def rollback(self) -> None:
        if self.in_transaction:
            super().rollback()
            self.in_transaction = False

    def commit(self) -> None:
        if self.in_transaction:
            super().commit()
            self.in_transaction = False


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        connection = super().connect(*arg, **kw)
        return OneHopConnection(self, connection._connection)


_DBAPI: OneHopDBAPI | None = None


def one_hop_dbapi() -> OneHopDBAPI:
    """The DBAPI module for ``create_async_engine("sqlite+aiosqlite://…", module=…)``."""
    global _DBAPI
    if _DBAPI is None:
        _DBAPI = OneHopDBAPI(aiosqlite, sqlite3)
    return _DBAPI
