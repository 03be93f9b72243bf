"""Fixtures for the whole suite.

- The network is closed: any connection to a non-loopback address fails the test.
- ``database_url`` runs a test on SQLite and on PostgreSQL (end-to-end tests of commands
  and Slack on SQLite only, unless marked ``both_databases``). PostgreSQL is a throwaway
  server started with initdb/pg_ctl for the session; without them the PostgreSQL half
  is skipped, except under CI=true where it must run.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from storage import Store, make_engine, migrate

# --------------------------------------------------------------------------- no network

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(address: Any) -> None:
    if isinstance(address, tuple) and address:
        host = address[0]
        try:
            if ipaddress.ip_address(host).is_loopback:
                return
        except ValueError:
            if host == "localhost":
                return
        raise RuntimeError(f"tests may not touch the network (tried {host})")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(address)
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]


# --------------------------------------------------------------------------- PostgreSQL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server for this test session; yields its admin URL."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true needs PostgreSQL: initdb and pg_ctl must be on PATH")
        pytest.skip("initdb/pg_ctl not on PATH; PostgreSQL tests skipped")
    base = Path(tempfile.mkdtemp(prefix="miniship-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(base, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    os.chmod(base, 0o755)  # noqa: S103  (the postgres user must reach the data folder)
    data, port = base / "data", _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*run_as, *cmd], check=True, capture_output=True, timeout=120)

    run(initdb, "-D", str(data), "-U", "miniship", "--auth=trust", "-E", "UTF8", "--no-locale")
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start")
    try:
        yield f"postgresql://miniship@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)


async def fresh_postgres_database(admin_url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


# The end-to-end tests of commands, cards and Slack run on SQLite: the SQL they reach is run
# on both databases by tests/storage and by the tests marked ``both_databases`` (races,
# the audit queries, the scheduler's job table, one whole release each way in).
_SQLITE_ONLY = ("handlers", "slack")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" not in metafunc.fixturenames:
        return
    folder = metafunc.definition.path.parent.name
    marked = metafunc.definition.get_closest_marker
    params: list[Any] = [] if marked("postgresql_only") else ["sqlite"]
    if marked("both_databases") or marked("postgresql_only") or folder not in _SQLITE_ONLY:
        params.append(pytest.param("postgresql", marks=pytest.mark.postgres))
    metafunc.parametrize("database_url", params, indirect=True)


# The longest tests run real processes (xdist groups "replicas" and "processes", a few
# minutes each). Collected last (tests/test_*.py), they started last and made the run's
# tail; first in the list, xdist gives each group a worker of its own from the start
# (it hands out the largest group first, then the rest in this order).
_LONG_GROUPS = ("replicas", "processes")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def long(item: pytest.Item) -> bool:
        group = item.get_closest_marker("xdist_group")
        return group is not None and bool(group.args) and group.args[0] in _LONG_GROUPS

    items.sort(key=lambda item: not long(item))  # stable: the rest keep their order


@pytest.fixture
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database: an SQLite file, or a PostgreSQL database (see
    :func:`pytest_generate_tests` for which tests get which)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'miniship.db'}"
    admin: str = request.getfixturevalue("postgres_server")
    return await fresh_postgres_database(admin)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    engine = make_engine(database_url)
    await migrate(engine)
    try:
        yield Store(engine)
    finally:
        await engine.dispose()
