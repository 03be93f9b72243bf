"""The console harness: both platforms emulated on loopback, a fake clock, one session."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from bot import Runtime
from handlers.config import Settings
from handlers.console import Console
from storage import ReleaseState
from tests.helpers import FakeClock, release_state

REPO = Path(__file__).parents[2]
DEMO = Path(__file__).with_name("demo.toml")  # the demo app on exactly two platforms
REVIEW = 60.0


@dataclass
class Session:
    runtime: Runtime
    console: Console
    out: io.StringIO
    clock: FakeClock

    async def run(self, line: str) -> str:
        start = self.out.tell()
        await self.console.run_line(line)
        return self.out.getvalue()[start:]

    async def watch(self) -> str:
        """One round of the review watcher; returns what it printed."""
        start = self.out.tell()
        await self.runtime.service.refresh_watched()
        return self.out.getvalue()[start:]

    def decide_reviews(self) -> None:
        self.clock.advance(REVIEW + 1)

    async def state(self, version: str, platform: str) -> ReleaseState:
        return await release_state(self.runtime.store, version, platform)

    async def state_of(self, app: str, version: str, platform: str) -> ReleaseState:
        return await release_state(self.runtime.store, version, platform, app)


def settings_for(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        config=DEMO,
        emulators="on",
        emulator_review_seconds=REVIEW,
        emulator_state=tmp_path / "emulators",
        fleet_rate=1000.0,  # a fleet run paced by the platforms, not by a real-time limit
    )
