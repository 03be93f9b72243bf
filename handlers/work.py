"""What this process is doing for people and platforms, so that a stop lets it finish.

A command (from any way in), a platform push and a scheduled job (a timed release, the
watcher, a digest) each run inside :meth:`Work.doing`. When the process is asked to stop
(SIGTERM from systemd, Docker or Kubernetes; Ctrl-C), it stops taking new work — a job
falling due is left to the next scheduler —, waits up to MINISHIP_STOP_SECONDS for what
is running (a publish half done is worse than a slower stop), then shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

__all__ = ["STOPPING", "Work"]

log = logging.getLogger(__name__)

STOPPING = (
    "miniship is stopping (a restart or a new version); nothing was done — try again in a moment."
)


class Work:
    def __init__(self) -> None:
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.stopping = False
        """Set when a stop began: the ways in refuse new work (:data:`STOPPING`)."""

    @property
    def busy(self) -> int:
        """How many pieces of work are running."""
        return self._busy

    @contextlib.asynccontextmanager
    async def doing(self) -> AsyncIterator[None]:
        """Count the block as running work until it ends."""
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    async def drain(self, seconds: float) -> bool:
        """Take no new work, and wait up to ``seconds`` for the running work to end;
        whether it all did."""
        self.stopping = True
        if self._busy:
            log.warning("stopping: waiting up to %g s for %d running task(s)", seconds, self._busy)
        try:
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        except TimeoutError:
            log.warning("stopping with %d task(s) still running", self._busy)
            return False
        return True
