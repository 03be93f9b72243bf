"""The review watcher: while releases are in review, ask the platforms on an interval.

Changes it finds go through the service, which records them and tells its listeners
(the console prints them; Slack updates the release card). This in-process loop is the
seed of the durable scheduler; it keeps no state of its own, so a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from handlers.releases import ReleaseService

__all__ = ["ReviewWatcher"]

log = logging.getLogger(__name__)


class ReviewWatcher:
    def __init__(self, service: ReleaseService, interval: float) -> None:
        self.service = service
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while True:
            try:
                await self.service.refresh_watched()
            except Exception:  # keep watching whatever one round did
                log.exception("review watcher round failed")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="review-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
