"""What the scheduler runs. Jobs are stored in the database by these functions' paths
(``handlers.jobs:fire`` …), so the paths are public: renaming one makes APScheduler drop
the stored jobs that name it. (Nothing is lost if that happens: the scheduler re-plans
every pending timed release from the ``timed_action`` table at start-up.)

Arguments are plain ids; the work is done by the process's :class:`TimedReleases`, which
the scheduler binds here when it starts.
"""

from __future__ import annotations

from handlers.timed import TimedReleases

__all__ = ["bind", "digest", "fire", "remind", "unbind", "watch"]

_bound: TimedReleases | None = None


def bind(timed: TimedReleases) -> None:
    global _bound
    if _bound is not None and _bound is not timed:
        raise RuntimeError("another scheduler already runs in this process")
    _bound = timed


def unbind(timed: TimedReleases) -> None:
    global _bound
    if _bound is timed:
        _bound = None


def _timed() -> TimedReleases:
    if _bound is None:
        raise RuntimeError("no scheduler is running in this process")
    return _bound


async def fire(action_id: int) -> None:
    """A timed release is due."""
    await _timed().fire(action_id)


async def remind(action_id: int) -> None:
    """A timed release is due soon."""
    await _timed().remind(action_id)


async def watch() -> None:
    """Ask the platforms about releases in review; nudge long reviews."""
    await _timed().watch()


async def digest(channel_id: str) -> None:
    """Post one channel's daily digest."""
    await _timed().digest(channel_id)
