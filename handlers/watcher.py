"""The review watcher: while releases are in review, ask the platforms on an interval.

Changes it finds go through the service, which records them and tells its listeners
(the console prints them; Slack updates the release card). This in-process loop is the
seed of the durable scheduler; it keeps no state of its own, so a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from handlers.releases import ReleaseService
from storage.models import utcnow

__all__ = ["ReviewWatcher"]

log = logging.getLogger(__name__)

DELIVERY_MEMORY = timedelta(days=1)


class ReviewWatcher:
    def __init__(self, service: ReleaseService, interval: float) -> None:
        self.service = service
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while True:
            try:
                await self.service.refresh_watched()
                # Slack stops retrying a delivery within minutes; a day of keys is plenty
                await self.service.store.forget_deliveries(utcnow() - DELIVERY_MEMORY)
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
