"""Staged rollouts through the console, both platforms emulated, on a fake clock: each
step is taken as the scheduler's job takes it (``Rollouts.step``), after moving the clock,
so no test waits for real time."""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot import Runtime, scheduling
from handlers.commands import Commands
from handlers.console import Console
from handlers.releases import Actor
from handlers.roles import Authorizer
from storage import ReleaseState, RolloutState, TimedState
from storage.models import Event, Rollout
from tests.handlers.harness import REVIEW, settings_for
from tests.helpers import FakeClock, clocked_runtime, release_state

S = ReleaseState
R = RolloutState
DAY = 86400.0
DEMO_APPID = "wx3a5f9c2e1b7d4f60"


@dataclass
class Bot:
    runtime: Runtime
    console: Console
    out: io.StringIO
    clock: FakeClock

    async def run(self, line: str) -> str:
        start = self.out.tell()
        await self.console.run_line(line)
        return self.out.getvalue()[start:]

    async def live(self, version: str, platform: str, notes: str = "notes") -> None:
        """``version`` uploaded, approved and published on ``platform``."""
        await self.approved(version, platform, notes)
        assert "✓" in await self.run(f"publish demo {platform} {version} --yes")

    async def approved(self, version: str, platform: str, notes: str = "notes") -> None:
        await self.run(f"upload demo {platform} {version} {notes} and enough words to review")
        await self.run(f"submit demo {platform} {version}")
        self.clock.advance(REVIEW + 1)
        await self.runtime.service.refresh_watched()
        assert await self.state(version, platform) is S.APPROVED

    async def state(self, version: str, platform: str) -> ReleaseState:
        return await release_state(self.runtime.store, version, platform)

    async def rollout(self) -> Rollout:
        found = await self.runtime.store.rollouts()
        assert found
        return found[0]

    async def step(self, days: float = 1.0) -> str:
        """The next step's time comes: the scheduler's job runs it."""
        rollout = await self.rollout()
        assert rollout.action_id is not None and rollout.next_at is not None
        self.clock.advance(days * DAY)
        start = self.out.tell()
        assert self.runtime.rollouts is not None
        await self.runtime.rollouts.step(rollout.action_id)
        return self.out.getvalue()[start:]

    async def events(self, action: str) -> list[Event]:
        async with self.runtime.store.session() as s:
            return list((await s.exec(select(Event).where(Event.action == action))).all())

    def wechat_gray(self) -> int | None:
        emulator = self.runtime.emulators["wechat"]
        program = emulator.programs[DEMO_APPID]  # type: ignore[attr-defined]
        return program.gray.percentage if program.gray_running() else None


@asynccontextmanager
async def bot(
    tmp_path: Path,
    database_url: str,
    clock: FakeClock | None = None,
    authorizer: Authorizer | None = None,
    actor: str = "console:tester",
) -> AsyncIterator[Bot]:
    clock = clock or FakeClock()
    async with clocked_runtime(settings_for(tmp_path, database_url), clock) as rt:
        out = io.StringIO()
        commands = Commands(
            rt.service,
            authorizer,
            timed=rt.timed,
            admin=rt.admin,
            rollouts=rt.rollouts,
            clock=lambda: datetime.fromtimestamp(clock(), UTC),  # freezes on the same clock
        )
        console = Console(
            commands,
            Actor(actor),
            stdin=io.StringIO(),
            stdout=out,
            interactive=False,
            pictures=tmp_path / "qr",
        )
        yield Bot(rt, console, out, clock)


@pytest.mark.both_databases
async def test_a_healthy_rollout_advances_through_every_step_across_a_restart(
    tmp_path: Path, database_url: str
) -> None:
    clock = FakeClock()
    async with bot(tmp_path, database_url, clock) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat", "faster catalogue")
        said = await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
        assert "Rollout #1" in said and "5% → 50% → 100% every 1d" in said, said
        assert "released to 5% of users" in said
        assert b.wechat_gray() == 5
        assert await b.state("1.1.0", "wechat") is S.GRAY
        first = await b.rollout()
        assert first.state == R.RUNNING and first.previous == "1.0.0" and first.step == 0
        said = await b.step()
        assert "advanced to 50%" in said and "healthy" in said, said
        assert "1.1.0:" in said and "1.0.0:" in said  # the figures used
        assert b.wechat_gray() == 50
    # miniship restarts: the rollout and its next step are still there
    async with bot(tmp_path, database_url, clock) as b:
        rollout = await b.rollout()
        assert rollout.state == R.RUNNING and rollout.step == 1
        action = await b.runtime.store.timed(rollout.action_id or 0)
        assert action is not None and action.state == TimedState.PENDING
        said = await b.step()
        assert "completed" in said, said
        assert await b.state("1.1.0", "wechat") is S.RELEASED
        rollout = await b.rollout()
        assert rollout.state == R.COMPLETED and rollout.action_id is None
        history = await b.run("history demo --action rollout")
        assert "started" in history and "advanced to 50%" in history and "completed" in history


async def test_a_crashy_version_halts_at_the_first_gate_with_the_evidence(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat", "new cart #crashy")
        await b.run("rollout demo 1.1.0 wechat plan 5,20,100 every 1d --yes")
        said = await b.step()
        assert "🛑 Rollout #1 of 1.1.0 halted" in said and "regression" in said, said
        assert "TypeError: Cannot read property 'id' of undefined (new)" in said
        assert "at pages/cart/cart.js:3:120" in said  # the first stack line
        assert "users" in said and "times" in said
        assert "rollout demo resume" in said and "rollout demo abort" in said
        assert b.wechat_gray() is None  # revertgrayrelease: everyone back on 1.0.0
        assert await b.state("1.1.0", "wechat") is S.APPROVED
        rollout = await b.rollout()
        assert rollout.state == R.HALTED and rollout.action_id is None
        status = await b.run("rollout demo status")
        assert "halted" in status and "[5%]" in status


async def test_no_figures_hold_the_step_then_ask_a_person(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 5,100 every 1d --yes")
        b.runtime.emulators["wechat"].inject("/wxaapi/log/jserr_list", "unavailable", times=100)
        said = await b.step()
        assert "⏸ Held" in said and "could not be asked" in said, said
        assert b.wechat_gray() == 5  # never advanced blind
        rollout = await b.rollout()
        assert rollout.state == R.RUNNING and rollout.holding_since is not None
        again = rollout.next_at
        assert again is not None
        said = await b.step(days=7 / 24)  # held for more than MINISHIP_ROLLOUT_ASK_HOURS
        assert "a person decides" in said and "rollout demo advance" in said, said
        assert b.wechat_gray() == 5


async def test_pause_resume_advance_and_abort(tmp_path: Path, database_url: str) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 5,20,50,100 every 1d --yes")
        said = await b.run("rollout demo pause")
        assert "paused" in said
        rollout = await b.rollout()
        assert rollout.state == R.PAUSED and rollout.action_id is None
        assert "cannot pause now" in await b.run("rollout demo pause")
        said = await b.run("rollout demo resume")
        assert "resumed" in said
        said = await b.run("rollout demo advance --yes")
        assert "advanced to 20%" in said and "without a health gate" in said, said
        assert b.wechat_gray() == 20
        said = await b.run("rollout demo abort --yes")
        assert "aborted" in said and b.wechat_gray() is None
        rollout = await b.rollout()
        assert rollout.state == R.ABORTED
        assert await b.state("1.1.0", "wechat") is S.APPROVED
        actions = [e.message.split(" ")[0] for e in await b.events("rollout")]
        assert len(actions) >= 5


async def test_advancing_past_a_halt_needs_the_override_role(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat", "#crashy")
        await b.run("rollout demo 1.1.0 wechat plan 5,20,100 every 1d --yes")
        await b.step()
        assert (await b.rollout()).state == R.HALTED
        # the console has every role: the override is recorded
        said = await b.run("rollout demo advance --yes")
        assert "advanced to 20%" in said, said
        overrides = [e for e in await b.events("rollout") if e.outcome == "override"]
        assert overrides and "past the halt" in overrides[0].message


async def test_alipay_advances_on_time_and_says_it_has_no_health_data(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "alipay")
        await b.approved("1.1.0", "alipay", "#crashy")  # Alipay would never know
        said = await b.run("rollout demo 1.1.0 alipay plan p10,p30,online every 12h --yes")
        assert "reports no per-version error figures" in said, said
        said = await b.step(days=0.5)
        assert "advanced to 30%" in said and "no health data per version" in said, said
        said = await b.step(days=0.5)
        assert "completed" in said
        assert await b.state("1.1.0", "alipay") is S.RELEASED
        assert "5,20" not in said
        refused = await b.run("rollout demo 1.1.0 alipay plan 5,20 --yes")
        assert "p10, p30, p50" in refused or "no rollout" in refused or "released" in refused


async def test_a_freeze_holds_a_step(tmp_path: Path, database_url: str) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
        await b.run("freeze demo for 30d release train closed")
        said = await b.step()
        assert "✋ Held" in said and "frozen" in said, said
        assert b.wechat_gray() == 5
        rollout = await b.rollout()
        assert rollout.state == R.RUNNING and rollout.step == 0 and rollout.action_id


async def test_plans_are_checked_before_anything_goes_out(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        said = await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 10d --yes")
        assert "15 d" in said and "releases a staged version to everyone" in said, said
        said = await b.run("rollout demo 1.1.0 wechat plan 50,20 --yes")
        assert "must grow" in said
        said = await b.run("rollout demo 1.1.0 wechat plan careful --yes")
        assert "no plan `careful`" in said
        said = await b.run("rollout demo 1.1.0 --yes")
        assert "several platforms" in said
        assert b.wechat_gray() is None
        assert await b.runtime.store.rollouts() == []
        # a plan without 100 ends with the full release all the same
        said = await b.run("rollout demo 1.1.0 wechat plan 5,20 every 2h --yes")
        assert "5% → 20% → 100% every 2h" in said, said


async def test_health_shows_both_versions_from_the_platform(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat", "#crashy")
        await b.run("rollout demo 1.1.0 wechat plan 10,100 every 1d --yes")
        b.clock.advance(3600)
        said = await b.run("health demo")
        assert "1.1.0 (new) today" in said and "1.0.0 (previous) today" in said, said
        assert "1.1.0 (new) yesterday" in said
        assert "pages/cart/cart.js:3:120" in said
        assert "only WeChat" in await b.run("health demo alipay")


async def test_the_rollout_is_on_the_card_lines(tmp_path: Path, database_url: str) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
        assert b.runtime.rollouts is not None
        lines = b.runtime.rollouts.lines_for([await b.rollout()], b.runtime.service.app("demo"))
        assert "[5%] → 50% → 100%" in lines[0] and "5% of users" in lines[0]
        assert lines[1].startswith("   next: 50% at ") and "after the health gate" in lines[1]
        assert timedelta(days=1)  # steps are a day apart


async def test_the_scheduler_plans_each_step_and_takes_up_an_interrupted_one(
    tmp_path: Path, database_url: str
) -> None:
    clock = FakeClock(time.time())  # APScheduler's own clock is the real one
    async with bot(tmp_path, database_url, clock) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        async with scheduling(b.runtime) as scheduler:
            await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
            rollout = await b.rollout()
            ids = {j.id for j in scheduler.aps.get_jobs()}
            assert f"rollout:{rollout.action_id}" in ids and "rollouts" in ids
            job = scheduler.aps.get_job(f"rollout:{rollout.action_id}")
            assert job is not None and job.next_run_time == rollout.next_at
        # the process stopped while taking the step (its timed action left running)
        action = await b.runtime.store.timed(rollout.action_id or 0)
        assert action is not None
        await b.runtime.store.move_timed(action, TimedState.RUNNING)
        async with scheduling(b.runtime) as scheduler:
            taken_up = await b.rollout()
            assert taken_up.action_id != rollout.action_id
            ids = {j.id for j in scheduler.aps.get_jobs()}
            assert f"rollout:{taken_up.action_id}" in ids
            stuck = await b.runtime.store.timed(rollout.action_id or 0)
            assert stuck is not None and stuck.state == TimedState.FAILED


async def test_a_day_before_wechat_releases_a_staged_version_on_its_own(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
        await b.run("rollout demo pause")
        assert b.runtime.rollouts is not None
        b.clock.advance(13 * DAY)
        start = b.out.tell()
        await b.runtime.rollouts.watch()
        assert b.out.getvalue()[start:] == ""  # not yet
        b.clock.advance(DAY + 60)
        await b.runtime.rollouts.watch()
        await b.runtime.rollouts.watch()  # said once
        said = b.out.getvalue()[start:]
        assert said.count("releases 1.1.0 to everyone on its own") == 1, said
        assert "rollout demo advance" in said and "rollout demo abort" in said
        assert (await b.rollout()).warned_at is not None


async def test_with_approvals_starting_waits_for_a_second_person_but_status_does_not(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        demo = b.runtime.config.apps["demo"]
        b.runtime.config.apps["demo"] = dataclasses.replace(demo, approvals=1)  # type: ignore[index]
        said = await b.run("rollout demo 1.1.0 wechat plan 5,100 --yes")
        assert "Request #1" in said and "needs a second person" in said, said
        assert await b.runtime.store.rollouts() == [] and b.wechat_gray() is None
        assert "never been rolled out" in await b.run("rollout demo status")
