"""Engines and migrations.

``DATABASE_URL`` may be written the way people write it (``sqlite:///var/miniship.db``,
``postgresql://user@host/db``); it is turned into the async driver's URL here.
Migrations are Alembic's, run in-process on start-up (``migrate``) when the database is
not at :data:`SCHEMA_HEAD` already. Alembic is loaded only then: with its templates and
the PostgreSQL dialect it is ~10 MB a process holds for good (issue 13), and replicas
started after ``miniship migrate`` (docs/deploy.md) never need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "alembic_config",
    "async_url",
    "describe_url",
    "make_engine",
    "make_sync_engine",
    "migrate",
    "sync_url",
]

MIGRATIONS = Path(__file__).parent / "migrations"

SCHEMA_HEAD = "0015"
"""The newest migration's revision (``storage/migrations/versions``): a new migration
changes it too (tests/storage/test_store.py checks it is Alembic's head)."""


# database kind → (async driver for miniship, sync driver for APScheduler's job store)
_DRIVERS = {
    "sqlite": ("sqlite+aiosqlite", "sqlite"),
    "postgresql": ("postgresql+asyncpg", "postgresql+psycopg"),
    "postgres": ("postgresql+asyncpg", "postgresql+psycopg"),
}


def _with_driver(url: str, sync: bool) -> str:
    u = make_url(url)
    backend = u.get_backend_name()
    if backend not in _DRIVERS:
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    driver = _DRIVERS[backend][1 if sync else 0]
    return u.set(drivername=driver).render_as_string(hide_password=False)


def async_url(url: str) -> str:
    """The URL with the async driver miniship uses for its database kind."""
    return _with_driver(url, sync=False)


def sync_url(url: str) -> str:
    """The URL with a synchronous driver, for APScheduler's job store (3.x is sync only)."""
    return _with_driver(url, sync=True)


def describe_url(url: str) -> str:
    """The URL for people: SQLite as its file path, others with the password hidden."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return f"SQLite {u.database or ':memory:'}"
    return u.render_as_string(hide_password=True)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    url = async_url(url)
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: each statement is its own transaction (miniship's writes are single
        # statements; a transition is one compare-and-set UPDATE). So the database lock is
        # held only while aiosqlite's thread runs a statement, never across an await. The
        # scheduler's job store writes synchronously on the event loop's thread; were a
        # transaction of ours open across an await then, the two would wait on each other.
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, isolation_level="AUTOCOMMIT", **kwargs
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


def make_sync_engine(url: str) -> Engine:
    """A synchronous engine on the same database (with the same SQLite settings)."""
    engine = create_engine(sync_url(url), pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def insert_for(engine: AsyncEngine, model: type[Any]) -> Any:
    """An INSERT into ``model``'s table in the engine's dialect, which can say what to do
    ON CONFLICT (``on_conflict_do_nothing`` / ``on_conflict_do_update``): a row that
    another process may be inserting at the same moment."""
    if engine.dialect.name == "postgresql":
        return postgresql_insert(model)
    if engine.dialect.name == "sqlite":
        return sqlite_insert(model)
    raise NotImplementedError(f"miniship does not know how to upsert on {engine.dialect.name}")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


class UnfitDatabase(RuntimeError):
    """The database cannot hold miniship's data as it is made (the message says why)."""


async def migrate(engine: AsyncEngine) -> None:
    """Bring the database to the newest schema (refused, :class:`UnfitDatabase`, on a
    PostgreSQL database not made for UTF-8 text: in one made SQL_ASCII, the scheduler's
    job store reads bytes where it wants text, and no replica could ever lead)."""
    async with engine.connect() as plain:
        # one transaction, even where the engine autocommits (SQLite, see make_engine)
        conn = await plain.execution_options(isolation_level="SERIALIZABLE")
        async with conn.begin():
            if engine.dialect.name == "postgresql":
                encoding = (await conn.execute(text("SHOW server_encoding"))).scalar()
                if str(encoding).upper() not in ("UTF8", "UTF-8"):
                    raise UnfitDatabase(
                        f"the database is made with the {encoding} encoding; miniship "
                        "needs UTF8: create it with `CREATE DATABASE … ENCODING 'UTF8'` "
                        "(docs/deploy.md)"
                    )
            if await _revision(conn) == SCHEMA_HEAD:
                return
            from alembic import command

            await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))


async def schema_revision(engine: AsyncEngine) -> tuple[str | None, str]:
    """(the database's schema revision, the newest this miniship knows): equal when the
    migrations are at head (what ``miniship migrate`` reports and readiness checks)."""
    async with engine.connect() as conn:
        return await _revision(conn), SCHEMA_HEAD


async def _revision(conn: AsyncConnection) -> str | None:
    """The revision Alembic recorded in the database (None: never migrated)."""

    def read(sync: Connection) -> str | None:
        if not inspect(sync).has_table("alembic_version"):
            return None
        return sync.execute(text("SELECT version_num FROM alembic_version")).scalar()

    return await conn.run_sync(read)
