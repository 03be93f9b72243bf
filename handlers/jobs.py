"""What the scheduler runs. Jobs are stored in the database by these functions' paths
(``handlers.jobs:fire`` …), so the paths are public: renaming one makes APScheduler drop
the stored jobs that name it. (Nothing is lost if that happens: the scheduler re-plans
every pending timed release from the ``timed_action`` table at start-up.)

Arguments are plain ids; the work is done by the process's :class:`TimedReleases`, which
the scheduler binds here when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from handlers.timed import TimedReleases

__all__ = ["bind", "digest", "drain", "fire", "remind", "unbind", "watch"]

_bound: TimedReleases | None = None
_running: set[asyncio.Task[object]] = set()


def bind(timed: TimedReleases) -> None:
    global _bound
    if _bound is not None and _bound is not timed:
        raise RuntimeError("another scheduler already runs in this process")
    _bound = timed


def unbind(timed: TimedReleases) -> None:
    global _bound
    if _bound is timed:
        _bound = None


@contextlib.asynccontextmanager
async def _timed() -> AsyncIterator[TimedReleases]:
    """The bound use cases, with the running job counted until it ends (see drain)."""
    if _bound is None:
        raise RuntimeError("no scheduler is running in this process")
    task = asyncio.current_task()
    if task is not None:
        _running.add(task)
    try:
        yield _bound
    finally:
        if task is not None:
            _running.discard(task)


async def drain() -> None:
    """Wait for the jobs running now to finish (bound it with ``asyncio.timeout``)."""
    if _running:
        await asyncio.wait(set(_running))


async def fire(action_id: int) -> None:
    """A timed release is due."""
    async with _timed() as timed:
        await timed.fire(action_id)


async def remind(action_id: int) -> None:
    """A timed release is due soon."""
    async with _timed() as timed:
        await timed.remind(action_id)


async def watch() -> None:
    """Ask the platforms about releases in review; nudge long reviews."""
    async with _timed() as timed:
        await timed.watch()


async def digest(channel_id: str) -> None:
    """Post one channel's daily digest."""
    async with _timed() as timed:
        await timed.digest(channel_id)
