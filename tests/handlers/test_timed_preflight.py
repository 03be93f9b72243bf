"""A timed publish is checked and claimed PREFLIGHT before its time, and only the
platforms' publish calls are made at the time (handlers/timed.py).

Time is the emulators' fake clock: the wait for the time is a stand-in ``sleep`` that
looks at the world when the wait begins, then moves the clock on.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import Runtime, scheduling
from handlers.commands import Commands
from handlers.console import Console
from handlers.releases import Actor, CommandRefused
from handlers.scheduler import FollowerPlanner
from handlers.timed import PREFLIGHT, TimedReleases, TimedRules
from storage import ReleaseState, TimedState
from storage.models import TimedAction
from tests.handlers.harness import REVIEW, settings_for
from tests.helpers import FakeClock, clocked_runtime, release_state

S = ReleaseState


@dataclass
class Waits:
    """``TimedReleases.sleep``: each wait's length, and what ``look`` saw as it began."""

    clock: FakeClock
    look: Callable[[], Awaitable[object]]
    seen: list[tuple[float, object]] = field(default_factory=list)
    interrupt: BaseException | None = None

    async def __call__(self, seconds: float) -> None:
        self.seen.append((seconds, await self.look()))
        if self.interrupt is not None:
            raise self.interrupt
        self.clock.advance(seconds)


@dataclass
class World:
    runtime: Runtime
    console: Console
    clock: FakeClock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now, UTC)

    def timed(self, waits: Waits) -> TimedReleases:
        return TimedReleases(self.runtime.service, TimedRules(), clock=self.now, sleep=waits)

    async def approved(self, version: str = "1.0.0") -> None:
        await self.console.run_line(f"upload demo {version} notes")
        await self.console.run_line(f"submit demo {version}")
        self.clock.advance(REVIEW + 1)
        await self.runtime.service.refresh_watched()

    async def plan(self, version: str = "1.0.0", platforms: tuple[str, ...] = ()) -> TimedAction:
        release = await self.runtime.store.release("demo", version)
        assert release is not None
        chosen = list(platforms or ("wechat", "alipay"))
        return await self.runtime.store.add_timed(
            release, chosen, self.now() + PREFLIGHT, "console:tester"
        )

    async def look(self) -> tuple[ReleaseState, ReleaseState, int, str | None]:
        """Both stored states, WeChat's release calls so far, what Alipay has live."""
        wechat = self.runtime.emulators["wechat"]
        return (
            await release_state(self.runtime.store, "1.0.0", "wechat"),
            await release_state(self.runtime.store, "1.0.0", "alipay"),
            wechat.calls["/wxa/release"],  # type: ignore[attr-defined]
            await self.runtime.service.adapters["alipay"].live_version("demo"),
        )


@asynccontextmanager
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    clock = FakeClock()
    async with clocked_runtime(settings_for(tmp_path, database_url), clock) as rt:
        console = Console(
            Commands(rt.service, timed=rt.timed),
            Actor("console:tester"),
            stdin=io.StringIO(),
            stdout=io.StringIO(),
            interactive=False,
            pictures=tmp_path / "qr",
        )
        yield World(rt, console, clock)


async def test_checked_and_claimed_early_then_published_at_its_time(
    tmp_path: Path, database_url: str
) -> None:
    async with world(tmp_path, database_url) as w:
        await w.approved()
        action = await w.plan()
        waits = Waits(w.clock, w.look)
        assert action.id is not None
        await w.timed(waits).fire(action.id)  # woken PREFLIGHT before the time
        # the wait for the time began with both claimed and nothing sent to either platform
        assert waits.seen == [(PREFLIGHT.total_seconds(), (S.PUBLISHING, S.PUBLISHING, 0, None))]
        done = await w.runtime.store.timed(action.id)
        assert done is not None and done.state == TimedState.DONE, done
        assert "published as planned" in done.outcome
        assert await w.look() == (S.RELEASED, S.RELEASED, 1, "1.0.0")


async def test_found_at_or_after_its_time_it_publishes_without_waiting(
    tmp_path: Path, database_url: str
) -> None:
    async with world(tmp_path, database_url) as w:
        await w.approved()
        action = await w.plan()
        assert action.id is not None
        w.clock.advance(PREFLIGHT.total_seconds() + 3)
        waits = Waits(w.clock, w.look)
        await w.timed(waits).fire(action.id)
        assert waits.seen == []
        assert await w.look() == (S.RELEASED, S.RELEASED, 1, "1.0.0")


async def test_checks_that_fail_early_refuse_as_before_and_nothing_waits(
    tmp_path: Path, database_url: str
) -> None:
    async with world(tmp_path, database_url) as w:
        await w.console.run_line("upload demo 1.0.0 notes")
        await w.console.run_line("submit demo 1.0.0")  # in review, never approved
        action = await w.plan()
        waits = Waits(w.clock, w.look)
        assert action.id is not None
        await w.timed(waits).fire(action.id)
        assert waits.seen == []
        failed = await w.runtime.store.timed(action.id)
        assert failed is not None and failed.state == TimedState.FAILED
        assert "did not go ahead" in failed.outcome and "not approved" in failed.outcome
        assert await w.look() == (S.IN_REVIEW, S.IN_REVIEW, 0, None)


@pytest.mark.parametrize("how", ["stopped", "refused"])
async def test_interrupted_while_waiting_it_gives_the_claims_back_and_publishes_once(
    tmp_path: Path, database_url: str, how: str
) -> None:
    """A stop (the job cancelled) or a refusal while waiting for the time: nothing is sent,
    the claims go back; a stopped plan stays running for the next scheduler, which
    publishes it once (and the first process, started again, does not)."""
    async with world(tmp_path, database_url) as w:
        await w.approved()
        action = await w.plan()
        assert action.id is not None
        first = Waits(w.clock, w.look)
        first.interrupt = asyncio.CancelledError() if how == "stopped" else CommandRefused("frozen")
        timed = w.timed(first)
        if how == "stopped":
            with pytest.raises(type(first.interrupt)):
                await timed.fire(action.id)
        else:
            await timed.fire(action.id)
        assert await w.look() == (S.APPROVED, S.APPROVED, 0, None)
        left = await w.runtime.store.timed(action.id)
        assert left is not None
        if how == "refused":
            assert left.state == TimedState.FAILED and "frozen" in left.outcome
            return
        assert left.state == TimedState.RUNNING
        await timed.fire(action.id)  # its job again: the plan is taken, nothing happens
        assert await w.look() == (S.APPROVED, S.APPROVED, 0, None)
        w.clock.advance(PREFLIGHT.total_seconds())
        nxt = w.timed(Waits(w.clock, w.look))  # the next scheduler, on the same database
        nxt.planner = FollowerPlanner()
        await nxt.replan()
        assert await nxt.resume_interrupted() == 1
        finished = await w.runtime.store.timed(action.id)
        assert finished is not None and finished.state == TimedState.DONE, finished
        assert await w.look() == (S.RELEASED, S.RELEASED, 1, "1.0.0")


async def test_the_job_wakes_preflight_before_the_time(tmp_path: Path, database_url: str) -> None:
    async with world(tmp_path, database_url) as w, scheduling(w.runtime) as scheduler:
        await w.approved()
        release = await w.runtime.store.release("demo", "1.0.0")
        assert release is not None
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        action = await w.runtime.store.add_timed(release, ["wechat"], due, "console:tester")
        scheduler.plan(action, None)
        job = scheduler.aps.get_job(f"publish:{action.id}")
        assert job is not None and job.next_run_time == due - PREFLIGHT


def test_a_plan_made_seconds_ahead_wakes_no_sooner_than_preflight_after_it_was_made() -> None:
    made = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)

    def wakes(ahead: timedelta, action: str = "publish") -> timedelta:
        plan = TimedAction(
            release_id=1,
            app_key="demo",
            version="1.0.0",
            due_at=made + ahead,
            created_by="console:tester",
            created_at=made,
            action=action,
        )
        return TimedReleases.wake_at(plan) - made

    assert wakes(timedelta(hours=1)) == timedelta(hours=1) - PREFLIGHT
    assert wakes(PREFLIGHT * 3) == PREFLIGHT * 2
    assert wakes(PREFLIGHT * 1.5) == PREFLIGHT  # still cancellable for PREFLIGHT
    assert wakes(PREFLIGHT / 2) == PREFLIGHT / 2  # at its time
    assert wakes(timedelta(hours=1), "other") == timedelta(hours=1)  # only publishes early
