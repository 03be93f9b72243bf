"""Fixtures for the handler tests."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from handlers.commands import Commands
from handlers.console import Console
from handlers.releases import Actor
from tests.handlers.harness import Session, settings_for
from tests.helpers import FakeClock, clocked_runtime


@pytest.fixture
async def session(tmp_path: Path, database_url: str) -> AsyncIterator[Session]:
    """A console over both emulated platforms, driven line by line."""
    clock = FakeClock()
    async with clocked_runtime(settings_for(tmp_path, database_url), clock) as rt:
        out = io.StringIO()
        console = Console(
            Commands(rt.service, admin=rt.admin),
            Actor("console:tester"),
            stdin=io.StringIO(),
            stdout=out,
            interactive=False,
            pictures=tmp_path / "qr",
        )
        yield Session(rt, console, out, clock)
