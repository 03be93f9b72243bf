"""Which process leads, and which processes may share a database at all.

Any number of miniship processes may share one PostgreSQL database: each answers Slack,
commands and pushes, and exactly one — the leader — runs the scheduler (the review
watcher, digests, nudges and timed releases). The leader is whoever holds a PostgreSQL
session advisory lock on a connection of its own; when that process dies (even with
``kill -9``) the server drops its connection and the lock with it, and the next replica to
try takes it over. No new server, no lease table to keep in step with clocks.

SQLite is one process: a second process on the same file is refused at start (a lock on a
file beside it), as is a second process with in-process emulators on one PostgreSQL
database (each would see a platform of its own).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["AlreadyRunning", "Leadership", "alone_on_file", "alone_with_emulators"]

log = logging.getLogger(__name__)

LEADER_KEY = 0x6D696E69  # "mini": the advisory lock whose holder leads
EMULATORS_KEY = 0x656D75  # "emu": held by the one process with in-process emulators


class AlreadyRunning(RuntimeError):
    """Another process holds what this one needs alone (the message says what to do)."""


class Leadership:
    """Whether this process leads: :meth:`claim` to try, :meth:`holds` to check, and
    :meth:`resign` to hand over. On SQLite the one process always leads."""

    def __init__(self, engine: AsyncEngine, key: int = LEADER_KEY) -> None:
        self.engine = engine
        self.key = key
        self.shared = engine.dialect.name == "postgresql"
        self._conn: AsyncConnection | None = None
        self.leading = False

    async def claim(self) -> bool:
        """Lead if no one else does; whether this process leads now."""
        if self.leading:
            return await self.holds()
        if not self.shared:
            self.leading = True
            return True
        try:
            conn = self._conn or await self.engine.connect()
            self._conn = conn
            got = (
                await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
            ).scalar()
            await conn.commit()  # the lock is the session's, not the transaction's
        except (OperationalError, DBAPIError, OSError) as exc:
            log.warning("could not ask the database who leads: %s", exc)
            await self._drop()
            return False
        self.leading = bool(got)
        return self.leading

    async def holds(self) -> bool:
        """Whether this process still leads (its lock's connection is alive)."""
        if not self.leading or not self.shared:
            return self.leading
        assert self._conn is not None
        try:
            await self._conn.execute(text("SELECT 1"))
            await self._conn.commit()
        except (OperationalError, DBAPIError, OSError) as exc:
            log.error("lost the database connection that made this replica the leader: %s", exc)
            await self._drop()
            return False
        return True

    async def resign(self) -> None:
        """Stop leading (the lock is let go at once: another replica takes over)."""
        if self.shared and self._conn is not None and self.leading:
            with contextlib.suppress(OperationalError, DBAPIError, OSError):
                await self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                await self._conn.commit()
        await self._drop()

    async def _drop(self) -> None:
        """Forget the lock's connection for good: invalidated, not handed back to the pool
        (a pooled connection would keep a session lock no one knows it holds, and no
        replica could lead)."""
        self.leading = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OperationalError, DBAPIError, OSError):
                await conn.invalidate()
                await conn.close()


@dataclass
class _Hold:
    runtimes: int
    release: Callable[[], Awaitable[None]]


_HELD: dict[str, _Hold] = {}
"""What this process holds alone (a SQLite file, a database's emulators) → how many
runtimes share the hold and how to let it go: a process may open its own database twice
(tests do), and the hold lasts until the last of them ends, not the first."""


@contextlib.asynccontextmanager
async def _alone(
    key: str, take: Callable[[], Awaitable[Callable[[], Awaitable[None]]]]
) -> AsyncIterator[None]:
    hold = _HELD.get(key)
    if hold is None:
        hold = _HELD[key] = _Hold(0, await take())
    hold.runtimes += 1
    try:
        yield
    finally:
        hold.runtimes -= 1
        if hold.runtimes == 0:
            del _HELD[key]
            await hold.release()


@contextlib.asynccontextmanager
async def alone_on_file(url: str) -> AsyncIterator[None]:
    """A SQLite database is one process's: refuse (:class:`AlreadyRunning`) when another
    process uses the file; held until the block ends. Nothing to hold on PostgreSQL."""
    u = make_url(url)
    database = u.database if u.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    path = _resolved(database)

    async def take() -> Callable[[], Awaitable[None]]:
        handle = _file_lock(path)

        async def release() -> None:
            handle.close()

        return release

    async with _alone(f"file:{path}", take):
        yield


@contextlib.asynccontextmanager
async def alone_with_emulators(engine: AsyncEngine) -> AsyncIterator[None]:
    """In-process emulators are one process's platform: on a shared (PostgreSQL)
    database, refuse (:class:`AlreadyRunning`) when another process with in-process
    emulators uses it; held until the block ends."""
    if engine.dialect.name != "postgresql":
        yield
        return

    async def take() -> Callable[[], Awaitable[None]]:
        alone = Leadership(engine, EMULATORS_KEY)
        if not await alone.claim():
            await alone.resign()
            raise AlreadyRunning(
                "another miniship with in-process emulators already uses this database; "
                "each would see a platform of its own. Give the platforms' credentials (or "
                "run `miniship emulators` once and point every replica at it), or run one "
                "process"
            )
        return alone.resign

    async with _alone(f"emulators:{engine.url.render_as_string(hide_password=True)}", take):
        yield


def _resolved(database: str) -> Path:
    return Path(database).resolve()


def _file_lock(database: Path) -> IO[str]:
    """The lock on a file beside the database, taken (else :class:`AlreadyRunning`);
    it lasts until the returned handle is closed."""
    path = database.with_name(database.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held open on purpose)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise AlreadyRunning(
            f"another miniship process already uses {database} (SQLite is one process; "
            "stop the other one, or use PostgreSQL for several replicas)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
