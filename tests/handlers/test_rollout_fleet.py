"""Guarded rollouts over a group of apps, and what keeps a rollout the one meant: one
fleet run starting a rollout per app (each gated on its own figures) whose card counts how
many advanced, held and halted as each one moves; the fleet steered at once; two starts at
once for one app and platform; a control naming another version than the one under way;
a freeze said once. Both platforms emulated, steps taken on a fake clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from handlers import render
from handlers.fleet import Fleets, Progress
from handlers.releases import Actor
from platforms.base import Platform
from storage import RolloutState
from tests.handlers.harness import REVIEW
from tests.handlers.test_fleet import merchants
from tests.handlers.test_rollouts import DAY, Bot, bot

R = RolloutState


async def step_app(b: Bot, app: str) -> str:
    """The due step of ``app``'s rollout, as the scheduler's job takes it."""
    (rollout,) = await b.runtime.store.rollouts(apps=[app], states=[R.RUNNING])
    assert b.runtime.rollouts is not None and rollout.action_id is not None
    start = b.out.tell()
    await b.runtime.rollouts.step(rollout.action_id)
    return b.out.getvalue()[start:]


async def test_a_fleet_rollout_counts_each_apps_outcome_on_one_card(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        healthy, also_healthy, quiet, crashy = await merchants(b, 4)
        assert "4 / 4 done" in await b.run("upload @shops 1.0.0 template 1 first --yes")
        await b.run("submit @shops 1.0.0 --yes")
        b.clock.advance(REVIEW + 1)
        await b.runtime.service.refresh_watched()
        assert "4 / 4 done — done" in await b.run("publish @shops 1.0.0 --yes")
        for app in (healthy, also_healthy, quiet):
            await b.run(f"upload {app} 1.1.0 template 1 faster catalogue")
        await b.run(f"upload {crashy} 1.1.0 template 1 new cart #crashy")
        await b.run("submit @shops 1.1.0 --yes")
        b.clock.advance(REVIEW + 1)
        await b.runtime.service.refresh_watched()

        asked = await b.run("rollout @shops 1.1.0 wechat plan 5,50,100 every 1d")
        assert "on 4 apps (WeChat 4)?" in asked and "gated on its own figures" in asked, asked
        said = await b.run("rollout @shops 1.1.0 wechat plan 5,50,100 every 1d --yes")
        run = (await b.runtime.store.fleets())[0].id
        assert run is not None
        cards: list[str] = []  # the run's card, as Slack's listener shows it

        async def card(progress: Progress) -> None:
            if progress.run.id == run:
                cards.append(render.fleet_bar(progress))

        fleets = Fleets.of(b.runtime.service)
        fleets.update_every = 0  # every move shown at once (news is otherwise held a while)
        fleets.listeners.append(card)
        assert f"Fleet run #{run}: `rollout @shops 1.1.0 wechat plan 5,50,100 every 1d`" in said
        assert "🚦 rollouts: 4 at first step (4 under way)" in said, said
        rollouts = await b.runtime.store.rollouts(fleet_id=run)
        assert len(rollouts) == 4 and {r.state for r in rollouts} == {R.RUNNING}

        b.clock.advance(DAY)
        assert "advanced to 50%" in await step_app(b, healthy)
        assert "🚦 rollouts: 1 advanced · 3 at first step (4 under way)" in cards[-1], cards
        assert "advanced to 50%" in await step_app(b, also_healthy)
        assert "halted" in await step_app(b, crashy)
        wechat = b.runtime.emulators["wechat"]
        wechat.inject("/wxaapi/log/jserr_list", "unavailable", times=100)
        assert "⏸ Held" in await step_app(b, quiet)  # no figures: never advanced blind
        wechat.clear_faults()

        progress = await fleets.progress(run)
        assert progress.rollouts == {"advanced": 2, "halted": 1, "held": 1}
        assert "2 advanced · 1 held · 1 halted (4 under way)" in cards[-1], cards[-1]
        shown = await b.run(f"fleet {run}")
        assert f"⚠ {crashy}: 🛑 Rollout" in shown and f"⚠ {quiet}: ⏸ Held" in shown, shown
        assert "`rollout @shops 1.1.0 pause | resume | abort` steers" in shown

        # the fleet steered at once: the halted one cannot pause, and is skipped
        said = await b.run("rollout @shops 1.1.0 pause --yes")
        assert f"Fleet run #{run + 1}" in said and "4 / 4 done · 1 skipped" in said, said
        assert f"– {crashy} skipped: rollout #" in said and "cannot pause now" in said, said
        assert (await fleets.progress(run)).rollouts == {"paused": 3, "halted": 1}
        assert "3 paused · 1 halted (4 under way)" in cards[-1]
        for line, refusal in (  # nothing any app would do: refused, no run started
            (
                "rollout @shops 1.1.0 pause --yes",
                "no rollout of 1.1.0 in @shops can pause now (3 paused, 1 halted",
            ),
            ("rollout @shops 1.2.0 pause --yes", "no rollout of 1.2.0 is under way in @shops"),
        ):
            said = await b.run(line)
            assert said.startswith(f"Nothing started: {refusal}"), said
        assert len(await b.runtime.store.fleets()) == run + 1

        # over the group, a resume leaves a halted rollout alone unless the line overrides
        asked = await b.run("rollout @shops 1.1.0 resume")
        assert f"Halted on a regression, skipped (not resumed): {crashy};" in asked, asked
        said = await b.run("rollout @shops 1.1.0 resume --yes")
        assert "4 / 4 done · 1 skipped" in said and "halted on a regression: not resumed" in said
        assert (await fleets.progress(run)).rollouts == {
            "advanced": 2,
            "at first step": 1,
            "halted": 1,
        }
        shown = await b.run(f"fleet {run + 2}")
        assert f"– {crashy} skipped: rollout #" in shown, shown
        # starting what is under way already: skipped with why, not failed (nor retried)
        said = await b.run("rollout @shops 1.1.0 wechat plan 5,50,100 every 1d --yes")
        assert "4 / 4 done · 4 skipped — done" in said and "failed" not in said, said
        assert "is running already; not started again" in said, said
        said = await b.run("rollout @shops 1.1.0 resume --yes")  # only the halted one left
        assert said.startswith("Nothing started") and f"regression ({crashy})" in said, said
        asked = await b.run("rollout @shops 1.1.0 resume --override the crash is fixed")
        assert f"Halted on a regression, resumed too (--override): {crashy} —" in asked, asked
        said = await b.run("rollout @shops 1.1.0 resume --override the crash is fixed --yes")
        assert "4 / 4 done · 3 skipped" in said, said
        assert (await fleets.progress(run)).rollouts == {"advanced": 2, "at first step": 2}
        await b.run("rollout @shops 1.1.0 abort --yes")
        assert (await fleets.progress(run)).rollouts == {"aborted": 4}
        assert "4 aborted (all ended)" in cards[-1]
        assert {r.state for r in await b.runtime.store.rollouts(fleet_id=run)} == {R.ABORTED}

        for line, refusal in (
            ("rollout @shops status", "`fleet <id>`"),
            ("rollout @shops 1.1.0 advance", "Advance one app at a time"),
            ("rollout @shops pause", "Name the version"),
        ):
            assert refusal in await b.run(line), line
        assert len(await b.runtime.store.fleets()) == run + 5  # none of those started a run


async def test_two_starts_at_once_keep_one_rollout(tmp_path: Path, database_url: str) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        adapter = b.runtime.service.adapters["wechat"]
        real = type(adapter).live_version
        arrived: list[str] = []
        both = asyncio.Event()

        async def together(self: Platform, app: str) -> str | None:
            # each start has found no rollout under way; both go on from here at once
            arrived.append(app)
            if len(arrived) == 2:
                both.set()
            await both.wait()
            return await real(self, app)

        commands = b.console.commands
        line = "rollout demo 1.1.0 wechat plan 5,50,100 --yes"
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(type(adapter), "live_version", together)
            first, second = await asyncio.gather(
                commands.handle(Actor("console:ana"), line),
                commands.handle(Actor("console:bo"), line),
            )
        assert len(arrived) == 2
        (lost,) = [r for r in (first, second) if r.error]
        assert "Not started: rollout #" in lost.text and "nothing was sent to WeChat" in lost.text
        (kept,) = await b.runtime.store.rollouts()
        assert kept.state == R.RUNNING and b.wechat_gray() == 5


async def test_a_control_meant_for_another_version_is_refused(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 5,50,100 --yes")
        said = await b.run("rollout demo 1.0.0 wechat pause")  # an old card's button
        assert "Nothing was done: demo has no rollout of 1.0.0 on WeChat" in said, said
        assert "the rollout under way is #1 of 1.1.0" in said
        assert (await b.rollout()).state == R.RUNNING
        assert "paused" in await b.run("rollout demo 1.1.0 wechat pause")
        await b.run("rollout demo abort --yes")
        said = await b.run("rollout demo 1.1.0 wechat resume")
        assert "rollout #1 of demo 1.1.0 on WeChat is aborted" in said, said
        assert "no longer under way" in said


async def test_a_freeze_holding_a_step_is_said_once_then_when_it_moves_on(
    tmp_path: Path, database_url: str
) -> None:
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
        await b.run("freeze demo for 2d release train closed")
        said = await b.step()
        assert said.count("✋ Held") == 1 and "said here when it moves on" in said, said
        for _ in range(3):  # retried every 30 minutes while the freeze lasts: not said again
            assert await b.step(days=1 / 48) == ""
        held = [e for e in await b.events("rollout") if e.outcome == "refused"]
        assert len(held) == 1
        said = await b.step(days=1)  # the freeze is over
        assert "advanced to 50%" in said and "The freeze that held this step is over" in said
        assert (await b.rollout()).held_by is None


async def test_a_fleets_rollout_news_updates_its_card_at_most_every_few_seconds(
    tmp_path: Path, database_url: str
) -> None:
    """Steps of a fleet's apps fall due together: the card is updated at once, then news
    within ``update_every`` waits and goes out as one later update (Slack's rate limits)."""
    now = [1000.0]
    said: list[float] = []

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    class Counted(Fleets):
        async def _say(self, run_id: int, *, final: bool = False, force: bool = False) -> None:
            said.append(now[0])
            self._said_at[run_id] = now[0]

    async with bot(tmp_path, database_url) as b:
        fleets = Counted(b.runtime.service, update_every=3.0, clock=lambda: now[0], sleep=sleep)
        await fleets.news(7)
        for _ in range(5):  # five more moves in the same second
            await fleets.news(7)
        assert said == [1000.0] and len(fleets._later) == 1
        await asyncio.gather(*fleets._later.values())
        assert said == [1000.0, 1003.0] and not fleets._later
        now[0] += 10
        await fleets.news(7)  # long after: at once
        assert said == [1000.0, 1003.0, 1013.0]


async def test_the_console_says_a_rollouts_move_once(tmp_path: Path, database_url: str) -> None:
    """A control typed at the console is its reply; the same words posted to the release's
    thread (Slack's channel post) are not printed a second time. A step the scheduler
    takes is still said, as the thread post."""
    async with bot(tmp_path, database_url) as b:
        await b.live("1.0.0", "wechat")
        await b.approved("1.1.0", "wechat")
        await b.run("rollout demo 1.1.0 wechat plan 5,50,100 every 1d --yes")
        for line, said in (
            ("rollout demo pause", "⏸ Rollout #1 paused"),
            ("rollout demo resume --yes", "▶️ Rollout #1 resumed"),
            ("rollout demo advance --yes", "🚦 Rollout #1 advanced to 50%"),
        ):
            out = await b.run(line)
            assert out.count(said) == 1 and "[demo 1.1.0]" not in out, out
        assert "[demo 1.1.0] ✅ Rollout #1 completed" in await b.step()


async def test_a_group_pause_waits_for_a_step_being_taken(
    tmp_path: Path, database_url: str
) -> None:
    """A fleet's steps fall due together, just when someone pauses the group: an app whose
    step is being taken is tried again once it ends, not skipped (it would advance)."""
    async with bot(tmp_path, database_url) as b:
        _, second = await merchants(b, 2)
        await b.run("upload @shops 1.0.0 template 1 first --yes")
        await b.run("submit @shops 1.0.0 --yes")
        b.clock.advance(REVIEW + 1)
        await b.runtime.service.refresh_watched()
        await b.run("publish @shops 1.0.0 --yes")
        await b.run("upload @shops 1.1.0 template 1 faster --yes")
        await b.run("submit @shops 1.1.0 --yes")
        b.clock.advance(REVIEW + 1)
        await b.runtime.service.refresh_watched()
        await b.run("rollout @shops 1.1.0 wechat plan 5,50,100 every 1d --yes")
        store = b.runtime.store
        (stepping,) = await store.rollouts(apps=[second])
        stepping = await store.move_rollout(stepping, R.STEPPING, note="taking the step to 50%")
        fleets = Fleets.of(b.runtime.service)
        waited: list[float] = []

        async def the_step_ends(seconds: float) -> None:  # the fleet's pause before a retry
            waited.append(seconds)
            fresh = await store.rollout(stepping.id or 0)
            if fresh is not None and fresh.state == R.STEPPING:
                await store.move_rollout(fresh, R.RUNNING, note="5% still")

        fleets.sleep = the_step_ends
        said = await b.run("rollout @shops 1.1.0 pause --yes")
        assert "2 / 2 done" in said and "skipped" not in said, said
        assert waited  # the stepping one was tried again after a pause
        assert {r.state for r in await store.rollouts()} == {R.PAUSED}
