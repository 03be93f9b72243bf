"""Staged rollouts through the console, both platforms emulated, on a fake clock: each
step is taken as the scheduler's job takes it (``Rollouts.step``), after moving the clock,
so no test waits for real time."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot import scheduling
from handlers import render
from handlers.commands import Commands
from handlers.console import Console
from handlers.releases import Actor
from handlers.roles import Authorizer
from handlers.rollouts.engine import Rollouts, exposure
from handlers.rollouts.gate import Healthy, NoData, Regressed, Served, Verdict, Window, judge
from handlers.rollouts.plan import Thresholds
from platforms.base import ErrorReport, JsError
from platforms.wechat.health import _error_from
from storage import ReleaseState, RolloutState, TimedState
from storage.models import Event, Rollout, TimedAction
from tests.handlers.harness import REVIEW, Session, settings_for
from tests.helpers import FakeClock, clocked_runtime, release_state

S = ReleaseState
R = RolloutState
DAY = 86400.0
DEMO_APPID = "wx3a5f9c2e1b7d4f60"


@dataclass
class Bot(Session):
    """The handlers' console session, with what a rollout needs on top."""

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


class Planned:
    """A planner that keeps what it is handed (the scheduler's part)."""

    def __init__(self) -> None:
        self.planned: list[int] = []

    def plan_step(self, action: TimedAction) -> None:
        assert action.id is not None
        self.planned.append(action.id)

    def unplan_step(self, action_id: int) -> None:
        self.planned.remove(action_id)


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
        b.console.commands.confirming = frozenset({"rollout"})  # MINISHIP_CONFIRM=rollout
        asked = await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d")
        assert "5% now, then 50% → 100%, a step every 1d after the health gate?" in asked, asked
        said = await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
        assert "Rollout #1" in said and "5% → 50% → 100% every 1d" in said, said
        assert "released to 5% of users" in said
        # a rollout's own step offers the rollout's controls, not `gray`/`publish` (refused)
        assert "`gray demo wechat stop`" not in said and "`rollout demo pause`" in said, said
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
        grays = [e.message for e in await b.events("gray")]
        assert grays and all("rollout demo advance" in m for m in grays), grays
        assert not any("gray demo wechat stop" in m for m in grays), grays


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
        assert "taken back: 0% of users (was at 5%)" in status, status  # not "5% of users"
        assert "`rollout demo advance` (the override role)" in status, status


@pytest.mark.parametrize(
    ("notes", "outcome"), [("faster catalogue", "advanced to 50%"), ("#crashy", "halted")]
)
async def test_the_readme_rehearsal_weighs_a_version_that_went_live_minutes_before(
    tmp_path: Path, database_url: str, notes: str, outcome: str
) -> None:
    """1.0.0 goes live late in the (Beijing) day, 1.1.0 rolls out a minute later with
    steps a minute apart: 1.0.0 served only since it went live, not since midnight."""
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat", notes)
        await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1m --yes")
        said = await b.step(days=61 / DAY)
        assert outcome in said, said
        found = re.search(r"(\d+\.\d+)× the previous version's rate", said)
        assert found is not None, said
        ratio = float(found.group(1))
        # healthy: the same everyday errors, the same rate; crashy: 30 % of its users
        # hit the crash where 0.4 % hit an everyday error (≈76×), not hundreds of times
        assert 0.5 <= ratio <= 1.5 if outcome != "halted" else 50 <= ratio <= 100, ratio
        assert "1.0.0: " in said and "at 95–100%" in said, said  # it served 100%, then 95%
        if outcome == "halted":  # the evidence's one day, said once
            assert re.search(r"Top errors of 1\.1\.0 \(\d{4}-\d\d-\d\d\):", said), said


async def test_a_previous_version_rolled_out_today_counts_its_staged_users_too(
    tmp_path: Path, database_url: str
) -> None:
    """1.1.0 went to 50 % for a minute, then to everyone; 1.2.0 follows at once. 1.1.0's
    error figures include its staged minute: so must the time it is weighed by."""
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 50,100 every 1m --yes")
        assert "completed" in await b.step(days=60 / DAY)
        await b.approved("1.2.0", "wechat")
        await b.run("rollout demo 1.2.0 wechat plan 5,100 every 1m --yes")
        said = await b.step(days=60 / DAY)
        found = re.search(r"(\d+\.\d+)× the previous version's rate", said)
        assert found is not None and "completed" in said, said
        assert 0.8 <= float(found.group(1)) <= 1.25, said  # unweighed: ≈0.7


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
        status = await b.run("rollout demo status")
        assert "WeChat: held: the health gate could not judge yet" in status, status
        assert "running" not in status and "override" not in status, status
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
        assert "from running" not in said, said
        assert b.wechat_gray() == 20
        said = await b.run("rollout demo abort --yes")
        assert "aborted" in said and b.wechat_gray() is None
        rollout = await b.rollout()
        assert rollout.state == R.ABORTED
        status = await b.run("rollout demo status")
        assert "taken back: 0% of users (was at 20%)" in status, status
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
        assert "on a regression" not in said and "with no health check" in said, said
        said = await b.step(days=0.5)
        assert "advanced to 30% (on time only" in said and "nothing was checked" in said, said
        assert "healthy" not in said, said
        said = await b.step(days=0.5)
        assert "completed" in said
        assert await b.state("1.1.0", "alipay") is S.RELEASED
        assert (await b.rollout()).state == R.COMPLETED
        refused = await b.run("rollout demo 1.1.0 alipay plan 5,20 --yes")
        assert "Alipay stages releases at p10, p30, p50 only" in refused, refused
        assert "5% → 20% cannot be a step" in refused


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
        said = await b.run("health demo alipay")
        assert said.startswith("Alipay reports no per-version error figures"), said
        assert "WeChat and Alipay" not in said


async def test_the_rollout_is_on_the_card_lines(tmp_path: Path, database_url: str) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
        assert b.runtime.rollouts is not None
        lines = b.runtime.rollouts.lines_for([await b.rollout()], b.runtime.service.app("demo"))
        assert "[5%] → 50% → 100%" in lines[0] and "5% of users" in lines[0]
        assert lines[1].startswith("   next: 50% at ") and "after the health gate" in lines[1]
        rollout = await b.rollout()
        assert rollout.next_at is not None and rollout.step_at is not None
        assert rollout.next_at - rollout.step_at == timedelta(days=1)  # steps a day apart
        zone = b.runtime.service.app("demo").timezone
        assert render.local_time(rollout.next_at, zone) in lines[1]


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
        # nobody decided: on the 15th day WeChat releases it to everyone, the watcher sees
        # it, and the rollout ends instead of failing its next step
        b.clock.advance(DAY)
        await b.runtime.service.refresh_watched()
        await b.runtime.rollouts.watch()
        rollout = await b.rollout()
        assert rollout.state == RolloutState.COMPLETED and rollout.action_id is None
        said = b.out.getvalue()[start:]
        assert "WeChat released 1.1.0 to everyone on its own" in said, said
        assert "was paused at 5%" in said
        await b.runtime.rollouts.watch()
        assert b.out.getvalue()[start:].count("released 1.1.0 to everyone") == 1  # said once


async def test_a_rollout_over_a_gray_release_already_running_keeps_its_15_day_clock(
    tmp_path: Path, database_url: str
) -> None:
    """A person grayed 1.1.0 to 5 % three days ago: WeChat's automatic full release comes
    15 days after *that*, so the rollout's warning does too."""
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("gray demo wechat 1.1.0 5 --yes")
        began = datetime.fromtimestamp(b.clock(), UTC)
        b.clock.advance(3 * DAY)
        await b.run("rollout demo 1.1.0 wechat plan 10,50,100 every 1d --yes")
        rollout = await b.rollout()
        assert rollout.gray_since is not None
        assert abs((rollout.gray_since - began).total_seconds()) < 5, (rollout.gray_since, began)
        await b.run("rollout demo pause")
        assert b.runtime.rollouts is not None
        b.clock.advance(11 * DAY + 60)  # 14 days after the gray began: a day before
        start = b.out.tell()
        await b.runtime.rollouts.watch()
        assert "releases 1.1.0 to everyone on its own" in b.out.getvalue()[start:]


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
        said = await b.run("rollout demo alipay status")
        assert "never been rolled out in steps on Alipay" in said, said


# -- the gate on WeChat's rows (review of issue 15) -------------------------------------------

GATE_DAY = Window(date(2026, 12, 4), date(2026, 12, 4))


def wechat_row(message: str, stack: str, users: int) -> JsError:
    """One jserr_list row as the adapter reads it (md5s as WeChat computes them)."""

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - WeChat's own key

    row = {
        "errorMsgMd5": md5(message),
        "errorMsg": message,
        "errorStackMd5": md5(stack),
        "errorStack": stack,
        "uv": users,
        "pv": users,
    }
    return _error_from(row, "POST /wxaapi/log/jserr_list")


def reported(version: str, *errors: JsError) -> ErrorReport:
    day = GATE_DAY.start
    return ErrorReport(
        version, day, day, sum(e.users for e in errors), sum(e.count for e in errors), errors
    )


def test_the_same_error_in_a_rebuilt_bundle_is_not_a_new_error() -> None:
    old = reported("1.0.0", wechat_row("TypeError: x", "TypeError: x\n at list.js:40:11", 950))
    # the same bug, the bundle rebuilt: only the column moved; the same rate as before
    new = reported("1.1.0", wechat_row("TypeError: x", "TypeError: x\n at list.js:40:17", 50))
    verdict = judge(new, old, 5, Thresholds(), "WeChat", GATE_DAY)
    assert isinstance(verdict, Healthy), verdict
    # a message the previous version never had is still new
    crash = wechat_row("TypeError: id", "TypeError: id\n at cart.js:3:120", 50)
    verdict = judge(reported("1.1.0", crash), old, 5, Thresholds(), "WeChat", GATE_DAY)
    assert isinstance(verdict, Regressed) and "a new error hit 50 users" in verdict.reason


def test_too_few_error_users_on_both_sides_hold_the_step() -> None:
    old = reported("1.0.0", wechat_row("E", "E\n at a.js:1:1", 40))
    new = reported("1.1.0", wechat_row("E", "E\n at a.js:1:1", 9))
    verdict = judge(new, old, 1, Thresholds(), "WeChat", GATE_DAY)  # 22× the old rate
    assert isinstance(verdict, NoData) and "too few users yet at 1%" in verdict.reason, verdict


def test_a_crash_against_a_clean_previous_version_halts() -> None:
    crash = wechat_row("TypeError: id", "TypeError: id\n at cart.js:3:120", 500)
    verdict = judge(
        reported("1.1.0", crash), reported("1.0.0"), 5, Thresholds(), "WeChat", GATE_DAY
    )
    assert isinstance(verdict, Regressed) and "a new error hit 500 users" in verdict.reason
    assert verdict.evidence == ((crash, True),)
    # a few errors against a clean previous version are no evidence either way: held
    quiet = wechat_row("TypeError: id", "TypeError: id\n at cart.js:3:120", 4)
    verdict = judge(
        reported("1.1.0", quiet), reported("1.0.0"), 5, Thresholds(), "WeChat", GATE_DAY
    )
    assert isinstance(verdict, NoData) and "nothing to compare with" in verdict.reason


async def test_a_revert_that_fails_is_said_and_abort_tries_again(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat", "#crashy")
        await b.run("rollout demo 1.1.0 wechat plan 5,20,100 every 1d --yes")
        emulator = b.runtime.emulators["wechat"]
        emulator.inject("/wxa/revertgrayrelease", "busy", times=100)
        said = await b.step()
        assert "halted at 5%, but the staged release could NOT be taken back" in said, said
        assert "is taken back" not in said
        assert "rollout demo abort` tries taking it back again" in said
        assert b.wechat_gray() == 5  # still in front of 5% of users, as said
        rollout = await b.rollout()
        assert rollout.state == R.HALTED and "could NOT be taken back" in rollout.note
        failed = [e for e in await b.events("rollout") if e.outcome == "failed"]
        assert failed and "could NOT" in failed[0].message
        # abort while WeChat is still busy: not aborted, and says so
        said = await b.run("rollout demo abort --yes")
        assert "NOT aborted" in said and (await b.rollout()).state == R.HALTED, said
        emulator.clear_faults()
        said = await b.run("rollout demo abort --yes")
        assert "aborted by" in said and b.wechat_gray() is None, said
        assert (await b.rollout()).state == R.ABORTED


async def test_an_unexpected_error_in_a_step_pauses_the_rollout_and_says_so(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
        assert b.runtime.rollouts is not None

        async def boom(self: object, rollout: Rollout) -> None:
            raise RuntimeError("a database blip")

        monkeypatch.setattr(type(b.runtime.rollouts), "judge", boom)
        first = await b.rollout()
        said = await b.step()
        assert "unexpected error (RuntimeError" in said and "It is paused at 5%" in said, said
        assert "rollout demo resume" in said
        rollout = await b.rollout()
        assert rollout.state == R.PAUSED and rollout.action_id is None
        action = await b.runtime.store.timed(first.action_id or 0)
        assert action is not None and action.state == TimedState.FAILED
        monkeypatch.undo()
        said = await b.run("rollout demo resume")
        assert "resumed" in said and (await b.rollout()).action_id is not None, said
        said = await b.step()
        assert "advanced to 50%" in said and b.wechat_gray() == 50, said


async def test_schedule_cancel_refuses_a_rollout_step(tmp_path: Path, database_url: str) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
        rollout = await b.rollout()
        said = await b.run(f"schedule cancel {rollout.action_id}")
        assert "step 2 of 3) of rollout #1 of demo 1.1.0" in said, said
        assert "rollout demo abort" in said and "Cancelled" not in said
        assert f"#{rollout.action_id}" not in await b.run("schedule demo")
        action = await b.runtime.store.timed(rollout.action_id or 0)
        assert action is not None and action.state == TimedState.PENDING
        assert "advanced to 50%" in await b.step()


async def test_an_abort_while_a_step_is_at_its_gate_wins(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
        engine = b.runtime.rollouts
        assert engine is not None
        real = type(engine).judge

        async def abort_meanwhile(self: Rollouts, rollout: Rollout) -> Verdict:
            # WeChat is slow to answer jserr_list; a person aborts meanwhile
            assert "aborted by" in await b.run("rollout demo abort --yes")
            return await real(self, rollout)

        monkeypatch.setattr(type(engine), "judge", abort_meanwhile)
        said = await b.step()
        assert "advanced" not in said, said
        assert b.wechat_gray() is None  # not sent again after the abort
        rollout = await b.rollout()
        assert rollout.state == R.ABORTED and rollout.step == 0


async def test_a_step_cut_short_after_its_call_is_not_sent_again(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
        rollout = await b.rollout()
        # the step's grayrelease 50 reached WeChat, then its process stopped
        await b.runtime.store.move_rollout(rollout, R.STEPPING, note="taking the step to 50%")
        programs = b.runtime.emulators["wechat"].programs  # type: ignore[attr-defined]
        programs[DEMO_APPID].gray.percentage = 50
        action = await b.runtime.store.timed(rollout.action_id or 0)
        assert action is not None
        await b.runtime.store.move_timed(action, TimedState.RUNNING)
        assert b.runtime.rollouts is not None
        b.runtime.rollouts.planner = Planned()
        await b.runtime.rollouts.replan()  # the next leader takes it up
        taken_up = await b.rollout()
        assert taken_up.state == R.RUNNING and taken_up.action_id != rollout.action_id
        said = await b.step()
        assert "advanced to 50%" in said and "not sent again" in said, said
        assert "at 50% (" in said  # judged at the 50% WeChat serves, not the 5% planned
        rollout = await b.rollout()
        assert rollout.state == R.RUNNING and rollout.step == 1 and b.wechat_gray() == 50
        assert "completed" in await b.step()


async def test_a_claim_cut_short_halts_the_rollout(tmp_path: Path, database_url: str) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
        rollout = await b.rollout()
        now = datetime.fromtimestamp(b.clock(), UTC)
        await b.runtime.store.move_rollout(
            rollout, R.STEPPING, next_at=now, note="aborting: taking the staged release back"
        )
        assert "it cannot abort now" in await b.run("rollout demo abort --yes")
        assert b.runtime.rollouts is not None
        await b.runtime.rollouts.watch()
        assert (await b.rollout()).state == R.STEPPING  # maybe still under way
        b.clock.advance(3600)
        start = b.out.tell()
        await b.runtime.rollouts.watch()
        said = b.out.getvalue()[start:]
        assert "cut short while calling WeChat" in said and "it is halted" in said, said
        assert (await b.rollout()).state == R.HALTED
        assert "aborted by" in await b.run("rollout demo abort --yes")


async def test_a_person_cannot_gray_or_publish_a_version_under_rollout(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
        for line in (
            "gray demo wechat 1.1.0 30 --yes",
            "gray demo wechat stop --yes",
            "publish demo wechat 1.1.0 --yes",
        ):
            said = await b.run(line)
            assert "rollout #1 of this version is running" in said, (line, said)
            assert "`rollout demo advance` or `rollout demo abort`" in said
        assert b.wechat_gray() == 5 and await b.state("1.1.0", "wechat") is S.GRAY
        assert "advanced to 50%" in await b.step()
        await b.run("rollout demo abort --yes")
        assert "released to 30%" in await b.run("gray demo wechat 1.1.0 30 --yes")


class NoOverride:
    """Every role but the override."""

    async def allows(self, actor: Actor, app: object, role: str) -> bool:
        return role != "override"

    async def among(self, actor: Actor, allowed: object) -> bool:
        return True


@pytest.mark.parametrize("on_regression", ["revert", "pause"])
async def test_going_on_past_a_regression_needs_the_override_role(
    tmp_path: Path, database_url: str, on_regression: str
) -> None:
    async with bot(tmp_path, database_url, authorizer=NoOverride()) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat", "#crashy")
        await b.run(
            f"rollout demo 1.1.0 wechat plan 5,20,100 every 1d on-regression {on_regression} --yes"
        )
        said = await b.step()
        assert "regression" in said and (await b.rollout()).state == R.HALTED, said
        live = 5 if on_regression == "pause" else None
        assert b.wechat_gray() == live
        for control in ("advance", "resume"):
            said = await b.run(f"rollout demo {control} --yes")
            assert f"to {control} past it needs the override role" in said, said
            assert b.wechat_gray() == live and (await b.rollout()).state == R.HALTED
        refused = [e for e in await b.events("rollout") if e.outcome == "refused"]
        assert sum("needs the override role" in e.message for e in refused) == 2
        assert "aborted" in await b.run("rollout demo abort --yes")  # stopping needs none


async def test_each_gate_weighs_the_hours_at_each_share(tmp_path: Path, database_url: str) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")  # the same error rates as 1.0.0
        b.clock.advance(10 * 3600)  # the steps go out late in the morning, Beijing time
        await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
        ratios = []
        for _ in range(2):
            said = await b.step()
            found = re.search(r"(\d+\.\d+)× the previous version's rate", said)
            assert found is not None and ("advanced" in said or "completed" in said), said
            ratios.append(float(found.group(1)))
        # the second gate's window began at the 5% share: weighed as such, not as 50%
        assert all(0.9 <= r <= 1.1 for r in ratios), ratios


def staged(steps: list[int], step: int, step_at: datetime, gray_since: datetime) -> Rollout:
    """A daily rollout of demo 1.1.0 on WeChat at ``step`` (for the exposure sums)."""
    return Rollout(
        app_key="demo",
        version="1.1.0",
        platform="wechat",
        release_id=1,
        steps=steps,
        every_seconds=86400,
        step=step,
        step_at=step_at,
        gray_since=gray_since,
        started_by="t",
    )


def test_exposure_over_a_window_that_began_at_the_previous_share() -> None:
    day = datetime(2026, 12, 4, tzinfo=UTC)
    rollout = staged([10, 50, 100], 1, day + timedelta(hours=12), day - timedelta(hours=12))
    before, after = day - timedelta(days=1), day + timedelta(days=1)

    def served(start: datetime, live: datetime | None = None) -> tuple[Served, Served]:
        found = exposure(
            rollout, 50, start, after if start == before else day + timedelta(days=1), live
        )
        assert found is not None
        return found

    # half the window at 10%, half at 50%; the previous version the rest of the users
    new, old = served(day)
    assert (new.seconds, new.low, new.high) == (DAY, 10, 50) and new.share == pytest.approx(30)
    assert (old.seconds, old.low, old.high) == (DAY, 50, 90) and old.share == pytest.approx(70)
    # the window began before the staged release did: nobody had the version then
    new, old = served(before)
    assert new.seconds == 36 * 3600 and new.user_seconds == pytest.approx(3600 * 8.4)
    assert old.seconds == 2 * DAY and (old.low, old.high) == (50, 100)
    # the previous version went live an hour before the staged release: it served only
    # since then (its errors before are none), not all the window
    _, old = served(before, day - timedelta(hours=13))
    assert old.seconds == 37 * 3600 and old.user_seconds == pytest.approx(3600 * (1 + 27.6))
    assert exposure(rollout, 50, day, day) is None
    # at its first step, over a staged release a person began 8 hours before: that
    # release served users all along (its errors are in the figures too), not nobody
    first = staged([5, 20, 100], 0, day + timedelta(hours=9), day + timedelta(hours=1))
    found = exposure(first, 5, day, day + timedelta(hours=10))
    assert found is not None
    assert found[0].seconds == 9 * 3600  # from 01:00, not from the rollout's 09:00


async def test_an_unexpected_error_mid_call_halts_the_rollout(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
        assert b.runtime.rollouts is not None

        async def cut(self: object, *args: object) -> None:
            raise ConnectionResetError("the platform's connection broke")

        monkeypatch.setattr(type(b.runtime.rollouts), "_go", cut)
        said = await b.step()
        assert "It is halted until a person looks" in said, said
        rollout = await b.rollout()
        assert rollout.state == R.HALTED and rollout.action_id is None
        monkeypatch.undo()
        assert "aborted by" in await b.run("rollout demo abort --yes")
        assert b.wechat_gray() is None
