"""Leadership among replicas: a PostgreSQL advisory lock held on a connection of its own."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage import UnfitDatabase, make_engine, migrate
from storage.leader import AlreadyRunning, Leadership, _file_lock, alone_on_file


@pytest.mark.postgresql_only
async def test_one_leads_and_a_lock_given_up_is_free_for_the_next(database_url: str) -> None:
    """Two replicas (two engines): one leads; when it lets go of its connection — also
    after an error, not only a clean resign — the lock goes with it, so the other can lead
    (a connection handed back to the pool would keep the lock, and nobody would lead)."""
    first, second = make_engine(database_url), make_engine(database_url)
    try:
        a, b = Leadership(first), Leadership(second)
        assert await a.claim() and not await b.claim()
        assert await a.holds()
        await a._drop()  # what an error while checking does
        assert not a.leading
        assert await b.claim()
        assert not await a.claim()
        await b.resign()
        assert await a.claim()
        await a.resign()
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_lone_process_leads_and_resigns(database_url: str) -> None:
    """One process (SQLite's only one, or the first replica) leads; resigning ends it."""
    engine = make_engine(database_url)
    try:
        leader = Leadership(engine)
        assert await leader.claim() and await leader.holds()
        await leader.resign()
        assert not leader.leading
    finally:
        await engine.dispose()


async def test_a_file_is_held_until_the_last_runtime_on_it_ends(tmp_path: Path) -> None:
    """A process may open its own SQLite database twice (tests do): the file stays its
    own until the last of them ends — not only until the first, which held the lock."""
    database = tmp_path / "miniship.db"
    url = f"sqlite+aiosqlite:///{database}"
    async with contextlib.AsyncExitStack() as later:
        async with alone_on_file(url):
            await later.enter_async_context(alone_on_file(url))
        with pytest.raises(AlreadyRunning, match="already uses"):
            _file_lock(database.resolve())  # what another process would meet
    _file_lock(database.resolve()).close()  # free once the last one ended


@pytest.mark.postgresql_only
async def test_a_database_not_made_for_utf8_is_refused(database_url: str) -> None:
    """In a SQL_ASCII database the scheduler's job store reads bytes where it wants text,
    and no replica could ever lead: refused at start, saying how to make it."""
    admin = make_engine(database_url, isolation_level="AUTOCOMMIT")
    name = "miniship_ascii"
    try:
        async with admin.connect() as conn:
            await conn.execute(
                text(f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' TEMPLATE template0")
            )
        ascii_db = make_engine(make_url(database_url).set(database=name).render_as_string(False))
        try:
            with pytest.raises(UnfitDatabase, match="SQL_ASCII encoding; miniship needs UTF8"):
                await migrate(ascii_db)
        finally:
            await ascii_db.dispose()
        utf8 = make_engine(database_url)
        await migrate(utf8)  # UTF8, as the tests make it: fine
        await utf8.dispose()
    finally:
        await admin.dispose()
