"""What the scheduler runs. Jobs are stored in the database by these functions' paths
(``handlers.jobs:fire`` …), so the paths are public: renaming one makes APScheduler drop
the stored jobs that name it. (Nothing is lost if that happens: the scheduler re-plans
every pending timed release from the ``timed_action`` table at start-up.)

Arguments are plain ids; the work is done by the process's :class:`TimedReleases`, which
the scheduler binds here when it starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from handlers.rollouts.engine import Rollouts
from handlers.timed import TimedReleases

__all__ = [
    "bind",
    "bind_rollouts",
    "digest",
    "drain",
    "fire",
    "remind",
    "rollout_step",
    "rollouts",
    "unbind",
    "unbind_rollouts",
    "watch",
]

log = logging.getLogger(__name__)

_bound: TimedReleases | None = None
_running: set[asyncio.Task[object]] = set()
_rollouts: Rollouts | None = None


def bind(timed: TimedReleases) -> None:
    global _bound
    if _bound is not None and _bound is not timed:
        raise RuntimeError("another scheduler already runs in this process")
    _bound = timed


def unbind(timed: TimedReleases) -> None:
    global _bound
    if _bound is timed:
        _bound = None


def bind_rollouts(rollouts: Rollouts) -> None:
    global _rollouts
    _rollouts = rollouts


def unbind_rollouts(rollouts: Rollouts) -> None:
    global _rollouts
    if _rollouts is rollouts:
        _rollouts = None


def _bound_rollouts() -> Rollouts:
    if _rollouts is None:
        raise RuntimeError("no scheduler with rollouts is running in this process")
    return _rollouts


async def _run(job: Callable[[TimedReleases], Awaitable[None]]) -> None:
    """Run a job with the bound use cases, counted as the process's running work (a stop
    lets it finish) and as a running job (see :func:`drain`). None starts once the
    process is stopping: a timed release not fired stays pending in ``timed_action``, and
    the next scheduler — this process's next start, or the replica that leads next —
    plans it again."""
    if _bound is None:
        raise RuntimeError("no scheduler is running in this process")
    timed = _bound
    work = timed.service.work
    if work.stopping:
        log.info("stopping: a scheduled job is left to the next scheduler")
        return
    task = asyncio.current_task()
    if task is not None:
        _running.add(task)
    try:
        async with work.doing():
            await job(timed)
    finally:
        if task is not None:
            _running.discard(task)


async def drain() -> None:
    """Wait for the jobs running now to finish (bound it with ``asyncio.timeout``)."""
    if _running:
        await asyncio.wait(set(_running))


async def fire(action_id: int) -> None:
    """A timed release is due."""
    await _run(lambda timed: timed.fire(action_id))


async def remind(action_id: int) -> None:
    """A timed release is due soon."""
    await _run(lambda timed: timed.remind(action_id))


async def watch() -> None:
    """Ask the platforms about releases in review; nudge long reviews."""
    await _run(lambda timed: timed.watch())


async def digest(channel_id: str) -> None:
    """Post one channel's daily digest."""
    await _run(lambda timed: timed.digest(channel_id))


async def rollout_step(action_id: int) -> None:
    """A staged rollout's next step is due."""
    engine = _bound_rollouts()
    await _run(lambda timed: engine.step(action_id))


async def rollouts() -> None:
    """Warn before a platform releases a staged version on its own."""
    engine = _bound_rollouts()
    await _run(lambda timed: engine.watch())
