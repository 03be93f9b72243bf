"""Timed releases through the console with the real scheduler (APScheduler and its job
table in the test database), plus reminders, nudges and the digest.

Fire times are real but short (a second or two); "the bot was down" is made by closing
the runtime and moving the plan's due time back in the database before starting again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import update
from sqlmodel import col, select

from bot import Runtime, scheduling
from handlers import jobs
from handlers.commands import Commands
from handlers.config import ChannelEntry
from handlers.console import Console
from handlers.releases import Actor
from handlers.scheduler import FollowerPlanner, Scheduler
from handlers.timed import TimedReleases, TimedRules
from storage import ReleaseState, TimedState
from storage.models import Event, TimedAction, utcnow
from tests.handlers.harness import REVIEW, settings_for
from tests.helpers import FakeClock, clocked_runtime, release_state

S = ReleaseState


@dataclass
class Bot:
    runtime: Runtime
    console: Console
    out: io.StringIO
    clock: FakeClock  # the emulators' clock: reviews are decided when it moves
    scheduler: Scheduler

    async def run(self, line: str) -> str:
        start = self.out.tell()
        await self.console.run_line(line)
        return self.out.getvalue()[start:]

    def said(self) -> str:
        return self.out.getvalue()

    def busy(self) -> bool:
        """Whether a scheduled job (or a command) is still running."""
        return self.runtime.service.work.busy > 0

    async def approved(self, version: str = "1.0.0") -> None:
        await self.run(f"upload demo {version} notes")
        await self.run(f"submit demo {version}")
        self.clock.advance(REVIEW + 1)
        await self.runtime.service.refresh_watched()
        assert await self.state(version, "wechat") is S.APPROVED
        assert await self.state(version, "alipay") is S.APPROVED

    async def state(self, version: str, platform: str) -> ReleaseState:
        return await release_state(self.runtime.store, version, platform)

    async def action(self, action_id: int = 1) -> TimedAction:
        found = await self.runtime.store.timed(action_id)
        assert found is not None
        return found

    async def publishes(self) -> list[Event]:
        async with self.runtime.store.session() as s:
            q = select(Event).where(Event.action == "publish")
            return list((await s.exec(q)).all())


@asynccontextmanager
async def bot(
    tmp_path: Path, database_url: str, clock: FakeClock | None = None, **settings: Any
) -> AsyncIterator[Bot]:
    """A console over both emulators with the scheduler running (the watcher's interval
    is an hour, so only what a test does moves the reviews)."""
    clock = clock or FakeClock()
    config = settings_for(tmp_path, database_url).model_copy(
        update={"watch_seconds": 3600.0, **settings}
    )
    async with clocked_runtime(config, clock) as rt, scheduling(rt) as scheduler:
        out = io.StringIO()
        console = Console(
            Commands(rt.service, timed=rt.timed),
            Actor("console:tester"),
            stdin=io.StringIO(),
            stdout=out,
            interactive=False,
            pictures=tmp_path / "qr",
        )
        yield Bot(rt, console, out, clock, scheduler)


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within 10 s")


async def settled(b: Bot, action_id: int = 1) -> TimedAction:
    """The action once it ended and the job that ended it has said so (its state is
    written before its notice is posted)."""

    async def done() -> bool:
        state = (await b.action(action_id)).state
        return state not in (TimedState.PENDING, TimedState.RUNNING) and not b.busy()

    await until(done)
    return await b.action(action_id)


async def move_due(b: Bot, action_id: int, due: datetime) -> None:
    """Pretend the plan was for ``due`` (the bot was down meanwhile)."""
    async with b.runtime.store.session() as s:
        await s.exec(update(TimedAction).where(col(TimedAction.id) == action_id).values(due_at=due))
        await s.commit()


# -- planning -------------------------------------------------------------------------------


@pytest.mark.both_databases
async def test_a_timed_publish_fires_once_at_its_time(tmp_path: Path, database_url: str) -> None:
    async with bot(tmp_path, database_url, reminder_minutes=0.02) as b:  # 1.2 s before
        await b.approved()
        reply = await b.run("publish demo 1.0.0 in 3s")
        assert "Timed release #1" in reply and "WeChat, Alipay" in reply
        assert "CST (+08:00) = " in reply and " UTC" in reply
        assert "schedule cancel 1" in reply
        assert "#1 demo 1.0.0" in await b.run("schedule")
        ids = {j.id for j in b.scheduler.aps.get_jobs()}
        assert {"publish:1", "remind:1", "watch", "digest:-"} <= ids
        assert await b.state("1.0.0", "wechat") is S.APPROVED  # not before its time

        action = await settled(b)
        assert action.state == TimedState.DONE
        assert "published as planned" in action.outcome
        assert await b.state("1.0.0", "wechat") is S.RELEASED
        assert await b.state("1.0.0", "alipay") is S.RELEASED
        publishes = await b.publishes()
        assert sorted((e.platform, e.outcome) for e in publishes) == [
            ("alipay", "ok"),
            ("wechat", "ok"),
        ]
        assert all(e.actor.startswith("timed #1") for e in publishes)
        said = b.said()
        assert said.count("🚀 Timed release #1 published as planned") == 1
        assert said.count("⏰ In ") == 1
        assert said.index("⏰ In ") < said.index("🚀")
        assert not {j.id for j in b.scheduler.aps.get_jobs()} & {"publish:1", "remind:1"}
        assert "No timed releases pending" in await b.run("schedule")


async def test_times_are_read_in_the_apps_zone_and_the_past_is_refused(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.approved()
        reply = await b.run("publish demo wechat 1.0.0 at 2099-01-01 10:00")
        assert "more than a year away" in reply
        tomorrow = (utcnow().astimezone(ZoneInfo("Asia/Shanghai")) + timedelta(days=1)).date()
        reply = await b.run(f"publish demo wechat 1.0.0 at {tomorrow} 10:00")
        assert f"{tomorrow} 10:00 CST (+08:00) = 02:00 UTC" in reply
        action = await b.action()
        assert action.due_at == datetime(
            tomorrow.year, tomorrow.month, tomorrow.day, 2, 0, tzinfo=UTC
        )
        assert action.platforms == ["wechat"]
        for bad, words in [
            ("at 2020-01-01 10:00", "is in the past"),
            ("at 25:00", "not a time of day"),
            ("in soon", "not a duration"),
            ("at", "say when"),
        ]:
            reply = await b.run(f"publish demo alipay 1.0.0 {bad}")
            assert words in reply and "Asia/Shanghai" in reply, reply
        assert "already planned as #1" in await b.run("publish demo 1.0.0 in 1h")
        assert [a.id for a in await b.runtime.store.timed_actions()] == [1]


async def test_only_an_approved_or_reviewed_version_can_be_planned(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        assert "never uploaded" in await b.run("publish demo 9.9.9 in 1h")
        await b.run("upload demo 1.0.0 notes")
        reply = await b.run("publish demo 1.0.0 in 1h")
        assert "uploaded on" in reply and "only an approved version" in reply
        await b.run("submit demo 1.0.0")
        reply = await b.run("publish demo 1.0.0 in 1h")
        assert "Not approved yet (WeChat is in review; Alipay is in review)" in reply
        assert (await b.action()).state == TimedState.PENDING


async def test_cancel_stops_it(tmp_path: Path, database_url: str) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.approved()
        await b.run("publish demo 1.0.0 in 1s")
        reply = await b.run("schedule cancel 1")
        assert "Cancelled timed release #1" in reply
        assert "timed release #1 is already cancelled" in await b.run("schedule cancel 1")
        assert "no timed release #5" in await b.run("schedule cancel 5")
        await asyncio.sleep(1.5)
        assert (await b.action()).state == TimedState.CANCELLED
        assert await b.state("1.0.0", "wechat") is S.APPROVED
        assert await b.publishes() == []
        assert not {j.id for j in b.scheduler.aps.get_jobs()} & {"publish:1", "remind:1"}


async def test_at_fire_time_a_version_no_longer_approved_is_not_published(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.run("upload demo 1.0.0 notes #reject")
        await b.run("submit demo 1.0.0")
        await b.run("publish demo wechat 1.0.0 in 1s")
        b.clock.advance(REVIEW + 1)  # rejected meanwhile; the fire-time check asks WeChat
        action = await settled(b)
        assert action.state == TimedState.FAILED
        assert "rejected on WeChat, not approved" in action.outcome
        assert "Nothing was published" in b.said()
        assert await b.publishes() == []


async def test_a_newer_live_version_stops_an_older_timed_publish(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.approved("1.0.0")
        await b.run("publish demo alipay 1.0.0 in 1h")
        # 2.0.0 went live on Alipay meanwhile (as if released from Alipay's console)
        store = b.runtime.store
        newer = await store.ensure_release("demo", "2.0.0", "", "someone")
        target = await store.add_target(newer, "alipay")
        for state in (S.IN_REVIEW, S.APPROVED, S.RELEASED):
            target = await store.transition(target, state)
        await move_due(b, 1, utcnow())
        await b.runtime.timed.fire(1)
        action = await b.action()
        assert action.state == TimedState.FAILED
        assert "the newer 2.0.0 is live on Alipay" in action.outcome
        assert await b.publishes() == []


# -- restarts ---------------------------------------------------------------------------------


@pytest.mark.both_databases
async def test_a_restart_before_the_fire_time_still_fires_once(
    tmp_path: Path, database_url: str
) -> None:
    clock = FakeClock()
    async with bot(tmp_path, database_url, clock) as b:
        await b.approved()
        await b.run("publish demo 1.0.0 in 2s")
    async with bot(tmp_path, database_url, clock) as b:  # the job table kept the plan
        assert "publish:1" in {j.id for j in b.scheduler.aps.get_jobs()}
        action = await settled(b)
        assert action.state == TimedState.DONE, action.outcome
        assert len(await b.publishes()) == 2  # once on each platform
        assert b.said().count("published as planned") == 1


async def test_a_job_falling_due_while_stopping_is_left_to_the_next_scheduler(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduled job is running work (a stop waits for it); one falling due once the
    stop began does not start — the plan stays pending and the next start publishes it."""
    clock = FakeClock()
    async with bot(tmp_path, database_url, clock) as b:
        work = b.runtime.service.work
        seen: list[int] = []

        async def watch() -> None:
            seen.append(work.busy)

        monkeypatch.setattr(b.runtime.timed, "watch", watch)
        await jobs.watch()
        assert seen == [1]

        await b.approved()
        await b.run("publish demo 1.0.0 in 1s")
        assert await work.drain(1.0)  # the stop begins
        await jobs.fire(1)  # and the job falls due
        await jobs.watch()
        assert seen == [1]
        assert (await b.action()).state == TimedState.PENDING
        assert await b.state("1.0.0", "wechat") is S.APPROVED
    async with bot(tmp_path, database_url, clock) as b:
        assert (await settled(b)).state == TimedState.DONE
        assert len(await b.publishes()) == 2


@pytest.mark.both_databases
async def test_a_plan_lost_from_the_job_table_is_planned_again(
    tmp_path: Path, database_url: str
) -> None:
    clock = FakeClock()
    async with bot(tmp_path, database_url, clock) as b:
        await b.approved()
        await b.run("publish demo 1.0.0 in 2s")
        b.scheduler.aps.remove_all_jobs()  # e.g. the job's function path was renamed
    async with bot(tmp_path, database_url, clock) as b:
        assert (await settled(b)).state == TimedState.DONE


async def test_the_leader_adopts_what_other_replicas_planned_once(
    tmp_path: Path, database_url: str
) -> None:
    """A replica that does not lead only stores its plan; the leader plans it at its next
    look, once, and forgets it when it is cancelled."""
    async with bot(tmp_path, database_url) as b:
        await b.approved()
        b.runtime.timed.planner = FollowerPlanner()  # the line arrives at another replica
        assert "Timed release #1" in await b.run("publish demo 1.0.0 in 1h")
        assert "publish:1" not in {j.id for j in b.scheduler.aps.get_jobs()}
        b.runtime.timed.planner = b.scheduler
        assert await b.scheduler.adopt() == 1
        assert {"publish:1", "remind:1"} <= {j.id for j in b.scheduler.aps.get_jobs()}
        assert await b.scheduler.adopt() == 0
        await b.run("schedule cancel 1 --yes")
        assert await b.scheduler.adopt() == 0
        assert not b.scheduler._planned
        assert "publish:1" not in {j.id for j in b.scheduler.aps.get_jobs()}


async def test_back_within_the_grace_period_it_publishes_late_and_says_so(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    async with bot(tmp_path, database_url, clock) as b:
        await b.approved()
        await b.run("publish demo 1.0.0 in 1h")
        await move_due(b, 1, utcnow() + timedelta(seconds=30))
    # down for 5 minutes past the fire time (grace: 10)
    async with bot(tmp_path, database_url, clock) as b:
        b.scheduler.aps.pause()
        await move_due(b, 1, utcnow() - timedelta(minutes=5))
        await b.runtime.timed.replan()  # the job table, too, holds the passed time
        await b.scheduler.stop()
    async with bot(tmp_path, database_url, clock) as b:
        action = await settled(b)
        assert action.state == TimedState.DONE
        assert "published 5 min late (it was due at" in action.outcome
        assert await b.state("1.0.0", "wechat") is S.RELEASED
    # the job found due at start-up ran once, not once and then again as re-planned
    assert "maximum number of running instances" not in caplog.text


async def test_back_after_the_grace_period_it_reports_a_miss_and_publishes_nothing(
    tmp_path: Path, database_url: str
) -> None:
    clock = FakeClock()
    async with bot(tmp_path, database_url, clock) as b:
        await b.approved()
        await b.run("publish demo wechat 1.0.0 in 1h")
        await move_due(b, 1, utcnow() - timedelta(minutes=25))
        await b.scheduler.stop()
    async with bot(tmp_path, database_url, clock) as b:
        action = await settled(b)
        assert action.state == TimedState.MISSED
        said = b.said()
        assert "⚠️ Missed: timed release #1 of 1.0.0 on WeChat was due at" in said
        assert "past the 10 min grace period" in said
        assert "To publish now: publish demo wechat 1.0.0" in said
        assert await b.state("1.0.0", "wechat") is S.APPROVED
        assert await b.publishes() == []
        # publishing now is a person's publish as usual
        assert "✓ WeChat" in await b.run("publish demo wechat 1.0.0")


@pytest.mark.both_databases
async def test_a_plan_left_running_by_a_stopped_process_is_finished_from_the_platform(
    tmp_path: Path, database_url: str
) -> None:
    """A process killed mid-publish leaves its plan running and perhaps a publish claim.
    The next leader takes it up once the last one has certainly stopped (at once on
    SQLite, whose file was the dead process's alone): published at the platform → done;
    not → published now, late, saying so; past the grace period → nothing more."""
    async with bot(tmp_path, database_url) as b:
        timed, store = b.runtime.timed, b.runtime.store
        timed.rules = dataclasses.replace(timed.rules, handover=timedelta(hours=1))
        shared = store.engine.dialect.name == "postgresql"
        await b.approved()
        # 1. stopped before calling the platform
        await b.run("publish demo 1.0.0 in 1h")
        await move_due(b, 1, utcnow() - timedelta(minutes=2))
        await store.move_timed(await b.action(1), TimedState.RUNNING)
        await timed.replan()
        if shared:
            assert await timed.resume_interrupted() == 0  # its publisher may still be at it
            assert (await b.action(1)).state == TimedState.RUNNING
            timed._orphans[1] = utcnow()  # the handover time has passed
        assert await timed.resume_interrupted() == 1
        action = await b.action(1)
        assert action.state == TimedState.DONE, action.outcome
        assert "published 2 min late (it was due at" in action.outcome
        assert len(await b.publishes()) == 2
        # 2. stopped after the platform published, before it was recorded
        await b.approved("1.1.0")
        await b.run("publish demo wechat 1.1.0 in 1h")
        release = await store.release("demo", "1.1.0")
        assert release is not None and release.id is not None
        target = await store.target(release.id, "wechat")
        assert target is not None
        await store.transition(target, ReleaseState.PUBLISHING)
        await b.runtime.service.adapters["wechat"].publish("demo", "1.1.0", target.platform_ref)
        await store.move_timed(await b.action(2), TimedState.RUNNING)
        wechat = b.runtime.emulators["wechat"]
        sent = wechat.calls["/wxa/release"]  # type: ignore[attr-defined]
        await timed.replan()
        timed._orphans[2] = utcnow()
        assert await timed.resume_interrupted() == 1
        action = await b.action(2)
        assert action.state == TimedState.DONE and "the platform has it live" in action.outcome
        assert wechat.calls["/wxa/release"] == sent  # type: ignore[attr-defined]
        assert await b.state("1.1.0", "wechat") is S.RELEASED
        # 3. found past the grace period, not published: nothing more is
        await b.approved("1.2.0")
        await b.run("publish demo 1.2.0 in 1h")
        await move_due(b, 3, utcnow() - timedelta(minutes=25))
        await store.move_timed(await b.action(3), TimedState.RUNNING)
        await timed.replan()
        timed._orphans[3] = utcnow()
        assert await timed.resume_interrupted() == 1
        action = await b.action(3)
        assert action.state == TimedState.FAILED and "interrupted" in action.outcome
        assert await b.state("1.2.0", "wechat") is S.APPROVED


# -- reminders, nudges, digest, the watch job ---------------------------------------------------


async def test_the_reminder_comes_once_before_and_says_what_would_stop_it(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url, reminder_minutes=0.5) as b:
        await b.run("upload demo 1.0.0 notes")
        await b.run("submit demo 1.0.0")
        reply = await b.run("publish demo wechat 1.0.0 in 40s")
        assert "A reminder goes to the release's thread at" in reply
        remind = next(j for j in b.scheduler.aps.get_jobs() if j.id == "remind:1")
        due = (await b.action()).due_at
        assert abs((due - remind.next_run_time).total_seconds() - 30) < 1
        await b.runtime.timed.remind(1)
        await b.runtime.timed.remind(1)  # a second scheduler waking up too: said once
        said = b.said()
        assert said.count("⏰ In ") == 1
        assert "WeChat is in review: unless approved by then, nothing is published." in said


@pytest.mark.parametrize(
    ("reminder_minutes", "when"),
    [(30.0, "in 10m"), (0.0, "in 1h")],  # planned inside the reminder window; turned off
)
async def test_no_reminder_when_planned_inside_the_reminder_window_or_turned_off(
    tmp_path: Path, database_url: str, reminder_minutes: float, when: str
) -> None:
    async with bot(tmp_path, database_url, reminder_minutes=reminder_minutes) as b:
        await b.approved()
        reply = await b.run(f"publish demo 1.0.0 {when}")
        assert "reminder" not in reply
        assert "remind:1" not in {j.id for j in b.scheduler.aps.get_jobs()}


@pytest.mark.both_databases
async def test_a_plan_the_scheduler_could_not_take_is_not_left_behind(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.approved()
        planned = b.scheduler.plan

        def broken(action: TimedAction, remind_at: datetime | None) -> None:
            raise RuntimeError("job table unavailable")

        b.scheduler.plan = broken  # type: ignore[method-assign]
        assert "Something went wrong" in await b.run("publish demo 1.0.0 in 1h")
        assert (await b.action(1)).state == TimedState.CANCELLED
        b.scheduler.plan = planned  # type: ignore[method-assign]
        assert "Timed release #2" in await b.run("publish demo 1.0.0 in 1h")


async def test_a_long_review_is_nudged_once_per_threshold(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.run("upload demo wechat 1.0.0 notes")
        await b.run("submit demo wechat 1.0.0")
        later = {"now": utcnow() + timedelta(hours=47)}
        timed = TimedReleases(b.runtime.service, TimedRules(), clock=lambda: later["now"])
        timed.announcers.append(b.console)
        await timed.nudge()
        assert "⏳" not in b.said()
        later["now"] += timedelta(hours=2)
        await timed.nudge()
        await timed.nudge()
        assert b.said().count("⏳ 1.0.0 has been in review on WeChat for 2 d 1 h") == 1
        later["now"] += timedelta(hours=48)
        await timed.nudge()
        assert b.said().count("⏳") == 2


@pytest.mark.both_databases
async def test_the_digest_tells_what_is_in_review_released_and_planned(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.approved("1.0.0")
        await b.run("publish demo 1.0.0")
        await b.approved("1.1.0")
        await b.run("publish demo 1.1.0 in 2h")
        await b.run("upload demo 1.2.0 notes")
        await b.run("submit demo wechat 1.2.0")
        seen: list[tuple[ChannelEntry, str]] = []

        class Catch:
            async def notice(self, notice: object) -> None:
                pass

            async def digest(self, channel: ChannelEntry, text: str) -> None:
                seen.append((channel, text))

        b.runtime.timed.announcers.append(Catch())
        await b.runtime.timed.digest("")
        await b.runtime.timed.digest("")  # the same day again: nothing
        assert len(seen) == 1
        channel, text = seen[0]
        assert channel.apps == ("demo",) and channel.timezone.key == "Asia/Shanghai"
        assert (
            "In review (1, longest waiting first):\n  demo 1.2.0 on WeChat: in review for" in text
        )
        assert "Released in the last 24 hours (2):" in text and "demo 1.0.0 on WeChat at" in text
        assert "Scheduled (1):\n  ⏰ #1 demo 1.1.0 on WeChat, Alipay at" in text
        await b.runtime.timed.digest("C0NOTHERE")  # not a configured channel: nothing
        assert len(seen) == 1


async def test_nothing_to_report_means_no_digest(tmp_path: Path, database_url: str) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.runtime.timed.digest("")
        assert "digest" not in b.said()


async def test_digest_jobs_follow_each_channels_zone_across_dst(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        job = next(j for j in b.scheduler.aps.get_jobs() if j.id == "digest:-")
        assert isinstance(job.trigger, CronTrigger) and job.args == ("",)
    # the trigger miniship builds for a Berlin channel at 09:30 stays at 09:30 local time
    # across both clock changes (08:30 UTC in summer, 07:30 in winter … and back)
    berlin = ZoneInfo("Europe/Berlin")
    trigger = CronTrigger(hour=9, minute=30, timezone=berlin)
    fire = trigger.get_next_fire_time(None, datetime(2026, 3, 27, 12, tzinfo=berlin))
    local = []
    for _ in range(4):
        local.append((fire.astimezone(berlin).strftime("%m-%d %H:%M"), fire.utcoffset()))
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    assert [t for t, _ in local] == ["03-28 09:30", "03-29 09:30", "03-30 09:30", "03-31 09:30"]
    assert [o for _, o in local] == [timedelta(hours=1)] + [timedelta(hours=2)] * 3


async def test_the_watch_job_applies_review_decisions(tmp_path: Path, database_url: str) -> None:
    async with bot(tmp_path, database_url, watch_seconds=0.2) as b:
        await b.run("upload demo wechat 1.0.0 notes")
        await b.run("submit demo wechat 1.0.0")
        b.clock.advance(REVIEW + 1)

        async def approved() -> bool:
            return await b.state("1.0.0", "wechat") is S.APPROVED

        await until(approved)
        await asyncio.sleep(0.5)  # more rounds: no change, no message
        assert b.said().count("[review] demo 1.0.0 on WeChat: in review → approved") == 1


async def test_without_the_scheduler_timed_commands_say_so(
    tmp_path: Path, database_url: str
) -> None:
    async with clocked_runtime(settings_for(tmp_path, database_url), FakeClock()) as rt:
        commands = Commands(rt.service)
        reply = await commands.handle(Actor("console:x"), "schedule")
        assert reply.error and "scheduler" in reply.text
