"""Staged rollouts: the use cases behind ``rollout …`` and what the scheduler does at
each step.

A rollout is a ``rollout`` row (storage) and, while it runs, one pending ``timed_action``
(action ``rollout``) for its next step: the scheduler wakes at its time, the action is
claimed by compare-and-set (pending → running, so of two schedulers one acts), the app's
freezes are looked at (a freeze holds the step: tried again later), the health gate
judges the new version (:mod:`handlers.rollouts.gate`), and the step goes out through the
same use cases as a person's ``gray`` and ``publish`` (policy, claims, history). Every
outcome is said in the release's thread and recorded in history. Nothing is kept in
memory that a restart or a new leader needs: :meth:`Rollouts.replan` plans every pending
step again and takes up a step whose process stopped mid-way.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Protocol

from handlers import policy, render
from handlers.config import AppEntry, Settings
from handlers.fleet import Fleets
from handlers.freezes import FreezeView
from handlers.releases import ActionResult, Actor, CommandRefused, ReleaseService
from handlers.rollouts import words
from handlers.rollouts.gate import NoData, Regressed, Served, Verdict, Window, gate_for
from handlers.rollouts.plan import Plan, PlanError, Thresholds
from handlers.timed import Notice, TimedReleases
from platforms.base import BEIJING, ErrorReport, Platform
from platforms.errors import ConfigError, PlatformError
from storage import (
    ACTIVE_ROLLOUT,
    ActionTaken,
    RolloutState,
    RolloutTaken,
    TimedState,
)
from storage.models import ReleaseTarget, Rollout, TimedAction, utcnow

__all__ = ["RolloutRules", "Rollouts", "StepPlanner", "exposure"]

log = logging.getLogger(__name__)
R = RolloutState
T = TimedState
STEP = "rollout"  # the timed action's kind


class StepPlanner(Protocol):
    """What wakes a rollout's steps up (the scheduler)."""

    def plan_step(self, action: TimedAction) -> None: ...

    def unplan_step(self, action_id: int) -> None: ...


@dataclass(frozen=True)
class RolloutRules:
    retry: timedelta = timedelta(minutes=30)  # a held step is tried again after this
    ask_after: timedelta = timedelta(hours=6)  # held this long for want of data: ask
    warn_before: timedelta = timedelta(days=1)  # before the platform's own full release
    handover: timedelta = timedelta(seconds=30)  # as TimedRules.handover
    stuck: timedelta = timedelta(minutes=15)  # a claim older than this was cut short

    @classmethod
    def from_settings(cls, settings: Settings) -> RolloutRules:
        return cls(
            retry=timedelta(minutes=settings.rollout_retry_minutes),
            ask_after=timedelta(hours=settings.rollout_ask_hours),
            handover=timedelta(seconds=settings.leader_seconds + settings.stop_seconds),
        )


@dataclass(frozen=True)
class Started:
    rollout: Rollout | None  # None: the first step did not go out
    result: ActionResult
    text: str


def exposure(
    rollout: Rollout,
    share: int,
    start: datetime,
    end: datetime,
    previous_since: datetime | None = None,
) -> tuple[Served, Served] | None:
    """What the new version and the one it replaces each served from ``start`` to
    ``end``. The new one: ``share`` % since ``step_at``, each earlier step's share for
    the ``every`` before it (never before ``gray_since``: nobody had the version then);
    holds made earlier steps longer than ``every``, so this errs towards more exposure at
    the earlier, smaller shares' expense — a little towards judging the new version
    kindly. The previous one: the rest of the users, but only since ``previous_since``
    (when it went live; None: live all along) — a version that went live this morning
    served nobody before, and weighing its errors as if it had would understate its rate.
    None: no time to weigh."""
    since, at = rollout.gray_since, rollout.step_at
    if at is None or since is None or end <= start:
        return None
    every = timedelta(seconds=rollout.every_seconds)
    # (from, share) of each step up to the one live now, oldest first
    spans = [
        (max(since, at - (rollout.step - k) * every), s)
        for k, s in enumerate(rollout.steps[: rollout.step])
    ]
    spans = [(since, spans[0][1]), *spans[1:]] if spans else []
    # at the first step the share live now runs from gray_since too: a staged release a
    # person began before the rollout served users then (at a share not kept: this one's)
    spans.append((max(since, at) if spans else since, share))
    spans = [(min(start, since), 0), *spans]  # before the staged release: nobody
    old_from = start if previous_since is None else max(start, previous_since)
    new_served, old_served = _Tally(), _Tally()
    for n, (begin, part) in enumerate(spans):
        until = spans[n + 1][0] if n + 1 < len(spans) else end
        lo, hi = max(begin, start), min(until, end)
        if hi > lo and part > 0:
            new_served.add(part, (hi - lo).total_seconds())
        lo = max(lo, old_from)
        if hi > lo:
            old_served.add(100 - part, (hi - lo).total_seconds())
    return new_served.served(), old_served.served()


@dataclass
class _Tally:
    seconds: float = 0.0
    user_seconds: float = 0.0
    low: float = 100.0
    high: float = 0.0

    def add(self, share: float, seconds: float) -> None:
        self.seconds += seconds
        self.user_seconds += share / 100 * seconds
        self.low, self.high = min(self.low, share), max(self.high, share)

    def served(self) -> Served:
        return Served(self.seconds, self.user_seconds, min(self.low, self.high), self.high)


class Rollouts:
    def __init__(
        self,
        service: ReleaseService,
        timed: TimedReleases,
        rules: RolloutRules | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.service = service
        self.store = service.store
        self.timed = timed  # its announcers (console, Slack) hear a rollout's news
        self.rules = rules or RolloutRules()
        self.clock = clock
        self.planner: StepPlanner | None = None
        self._running: set[int] = set()  # steps this process is taking now
        self._planned: set[int] = set()

    # -- plans ------------------------------------------------------------------------

    def plan(
        self,
        app: AppEntry,
        platform: str,
        *,
        steps: tuple[int, ...] | None,
        every: timedelta | None,
        name: str | None,
        on_regression: str | None,
    ) -> Plan:
        """The plan typed (or named in miniship.toml), checked for the platform."""
        base = Plan()
        if name is not None:
            found = self.service.config.rollouts.get(name)
            if found is None:
                known = ", ".join(sorted(self.service.config.rollouts)) or "none"
                raise CommandRefused(f"no plan `{name}` in miniship.toml ([rollouts.*]: {known})")
            base = found
        plan = Plan(
            steps or base.steps,
            every or base.every,
            base.thresholds,
            on_regression or base.on_regression,
            base.name,
        )
        adapter = self.service.adapters[platform]
        try:
            plan = plan.checked(adapter.gray_steps, adapter.display_name)
        except PlanError as exc:
            raise CommandRefused(str(exc)) from None
        auto = adapter.gray_auto_release
        if auto is not None:
            length = plan.every * (len(plan.steps) - 1)
            if length > auto - self.rules.warn_before:
                raise CommandRefused(
                    f"{adapter.display_name} releases a staged version to everyone on its own "
                    f"{render.duration(auto)} after it begins; this plan takes "
                    f"{render.duration(length)}. Use fewer steps or a shorter `every`."
                )
        return plan

    # -- starting -----------------------------------------------------------------------

    async def start(
        self,
        actor: Actor,
        app_key: str,
        version: str,
        platform: str,
        plan: Plan,
        channel: str | None = None,
        *,
        fleet_id: int | None = None,
    ) -> Started:
        """The first step at once; the next planned as a timed action. The row is kept
        (stepping) before the platform is called: of two starts at once for one app and
        platform, the database keeps one (its partial unique index) and the other is
        refused before it calls the platform. ``fleet_id``: the fleet run starting it."""
        app = self.service.app(app_key)
        (p,) = self.service.platforms_for(app, [platform])
        adapter = self.service.adapters[p]
        for other in await self.store.rollouts(apps=[app.key], platform=p, states=ACTIVE_ROLLOUT):
            raise CommandRefused(
                f"rollout #{other.id} of {other.version} on {adapter.display_name} is "
                f"{policy.rollout_words(other.state)}; `rollout {app.key} abort` it first"
            )
        release = await self.service.release_of(app, version)
        assert release.id is not None
        target = await self.store.target(release.id, p)
        if target is None:
            raise CommandRefused(f"{version} was never uploaded to {adapter.display_name}")
        why = policy.refusal("gray", version, target.state, where=adapter.display_name)
        if why:
            raise CommandRefused(why)
        try:
            previous = await adapter.live_version(app.key)
        except (PlatformError, ConfigError) as exc:
            raise CommandRefused(
                f"could not ask {adapter.display_name} what is live: {exc}"
            ) from None
        if previous == version:
            previous = None
        first = plan.steps[0]
        gate = gate_for(adapter)
        now = self.clock()
        since = await self._gray_began(adapter, app.key, version) or now
        row = Rollout(
            app_key=app.key,
            version=version,
            platform=p,
            release_id=release.id,
            previous=previous,
            plan=plan.name,
            steps=list(plan.steps),
            every_seconds=int(plan.every.total_seconds()),
            step=0,
            state=str(R.STEPPING),  # claimed for the first step (a cut-short one: watch)
            on_regression=plan.on_regression,
            thresholds=plan.thresholds.as_dict(),
            next_at=now,
            step_at=now,
            gray_since=since,
            note=f"taking the first step to {first}%",
            started_by=actor.id,
            channel=channel,
            fleet_id=fleet_id,
        )
        try:
            rollout = await self.store.add_rollout(row)
        except RolloutTaken as exc:  # another start won meanwhile: that one runs
            raise CommandRefused(
                f"Not started: rollout #{exc.current.id} of {app.key} {exc.current.version} on "
                f"{adapter.display_name} was started at the same moment and is under way; "
                f"nothing was sent to {adapter.display_name}. `rollout {app.key} status` "
                "shows it."
            ) from None
        result = await self._go(actor, app, p, version, first, rollout.id)
        now = self.clock()
        if not result.ok:
            note = f"the first step ({first}%) did not go out"
            await self._end(rollout, R.ABORTED, note)
            await self._record(rollout, actor.id, "failed", f"not started: {note}")
            return Started(None, result, render.result(result))
        went = f"{first}% went out at the start"
        if first >= 100:
            rollout = (
                await self._move(
                    rollout, R.COMPLETED, action_id=None, next_at=None, step_at=now, note=went
                )
                or rollout
            )
        else:
            rollout = await self._next(
                rollout, now + plan.every, R.RUNNING, note=went, step_at=now, gray_since=since
            )
        done = rollout.state == R.COMPLETED
        guard = (
            f"{plan.on_regression} on a regression"
            if gate.has_data
            else "each step on time only, with no health check"
        )
        text = (
            f"🚦 Rollout #{rollout.id} of {app.key} {version} on {adapter.display_name}: "
            f"plan {plan.words()}; {guard}.\n" + render.result(result)
        )
        if not done:
            text += "\n" + "\n".join(
                words.rollout_lines(rollout, app.timezone, has_data=gate.has_data)[1:]
            )
            if gate.has_data:
                text += f"\n   gate: {gate.name}; {plan.thresholds.words()}"
        await self._record(rollout, actor.id, "ok", f"started: plan {plan.words()}")
        return Started(rollout, result, text)

    # -- lookups ------------------------------------------------------------------------

    async def find(self, app_key: str, platform: str | None, *, active: bool = True) -> Rollout:
        """The app's rollout under way (or, ``active`` False, its newest)."""
        app = self.service.app(app_key)
        found = await self.store.rollouts(
            apps=[app.key], platform=platform, states=ACTIVE_ROLLOUT if active else None
        )
        if not found:
            raise CommandRefused(
                f"{app.key} has no rollout under way"
                if active
                else f"{app.key} has never been rolled out in steps"
                + (f" on {self.service.display(platform)}" if platform else "")
            )
        if active and len({r.platform for r in found}) > 1 and platform is None:
            where = " and ".join(self.service.display(r.platform) for r in found)
            raise CommandRefused(f"{app.key} is rolling out on {where}: name the platform")
        return found[0]

    async def current(self, app_key: str, platform: str | None, version: str | None) -> Rollout:
        """The app's rollout under way, which must be of ``version`` when one is named (a
        button on an older card, a fleet's line): refused clearly otherwise."""
        if version is None:
            return await self.find(app_key, platform)
        app = self.service.app(app_key)
        found = await self.store.rollouts(apps=[app.key], platform=platform)
        mine = [r for r in found if r.version == version]
        where = f" on {self.service.display(platform)}" if platform else ""
        active = [r for r in found if r.state in ACTIVE_ROLLOUT]
        under_way = [r for r in mine if r.state in ACTIVE_ROLLOUT]
        if len({r.platform for r in under_way}) > 1:
            where = " and ".join(self.service.display(r.platform) for r in under_way)
            raise CommandRefused(f"{app.key} is rolling out on {where}: name the platform")
        if under_way:
            return under_way[0]
        if active:
            other = active[0]
            head = (
                f"rollout #{mine[0].id} of {app.key} {version}{where} is "
                f"{policy.rollout_words(mine[0].state)}"
                if mine
                else f"{app.key} has no rollout of {version}{where}"
            )
            raise CommandRefused(
                f"Nothing was done: {head}; the rollout under way is #{other.id} of "
                f"{other.version} on {self.service.display(other.platform)} (this was meant "
                f"for {version}). `rollout {app.key} status` shows it."
            )
        if mine:
            raise CommandRefused(
                f"Nothing was done: rollout #{mine[0].id} of {app.key} {version}{where} is "
                f"{policy.rollout_words(mine[0].state)}; it is no longer under way."
            )
        raise CommandRefused(f"Nothing was done: {app.key} has no rollout of {version}{where}.")

    async def status(self, app_key: str, platform: str | None) -> str:
        app = self.service.app(app_key)
        found = await self.store.rollouts(apps=[app.key], platform=platform)
        if not found:
            where = f" on {self.service.display(platform)}" if platform else ""
            raise CommandRefused(f"{app.key} has never been rolled out in steps{where}")
        active = [r for r in found if policy.rollout_controls(r.state)]  # under way
        shown = active or found[:1]
        lines: list[str] = []
        for r in shown:
            has_data = gate_for(self.service.adapters[r.platform]).has_data
            lines.extend(words.rollout_lines(r, app.timezone, has_data=has_data))
            controls = policy.rollout_controls(r.state)
            if controls:
                halted = r.state == R.HALTED
                lines.append("   " + words.controls_hint(app.key, controls, halted=halted))
        return "\n".join(lines)

    def lines_for(self, rollouts: list[Rollout], app: AppEntry) -> list[str]:
        """A release card's lines for its rollouts."""
        out: list[str] = []
        for r in rollouts:
            has_data = gate_for(self.service.adapters[r.platform]).has_data
            out.extend(words.rollout_lines(r, app.timezone, has_data=has_data))
        return out

    # -- the scheduler's step ----------------------------------------------------------------

    async def step(self, action_id: int) -> None:
        """A rollout's next step fell due: claim it, look at freezes and the gate, act."""
        action = await self.store.timed(action_id)
        if action is None or action.state != T.PENDING or action.action != STEP:
            return
        found = await self.store.rollouts(action_id=action_id)
        rollout = found[0] if found else None
        if rollout is None or not policy.rollout_allows("step", rollout.state):
            with contextlib.suppress(ActionTaken):
                await self.store.move_timed(action, T.CANCELLED, "the rollout is not running")
            return
        try:
            action = await self.store.move_timed(action, T.RUNNING)
        except ActionTaken:
            return  # another scheduler took it
        self._running.add(action_id)
        try:
            text = await self._step(rollout, action)
        except Exception as exc:
            log.exception("rollout step #%s failed", action_id)
            text = await self._stranded(rollout, action, exc)
            with contextlib.suppress(ActionTaken):
                await self.store.move_timed(action, T.FAILED, text)
            return
        finally:
            self._running.discard(action_id)
        with contextlib.suppress(ActionTaken):
            await self.store.move_timed(action, T.DONE, text)

    async def _stranded(self, rollout: Rollout, action: TimedAction, exc: Exception) -> str:
        """A step that ran into an unexpected error pauses its rollout (if nothing else
        moved it meanwhile) and says so: a person looks, then resumes or aborts."""
        text = (
            f"⚠️ Rollout #{rollout.id}'s step ran into an unexpected error "
            f"({type(exc).__name__}; details are in the log)."
        )
        try:
            fresh = await self.store.rollout(rollout.id or 0)
            mid_call = fresh is not None and fresh.state == R.STEPPING  # its own claim
            if (
                fresh is None
                or fresh.action_id != action.id
                or not (mid_call or policy.rollout_allows("pause", fresh.state))
            ):
                return text  # the step had moved it on (or a person had): as it is
            # in the middle of a call to the platform, whether it went out is unknown:
            # halted, so that going on needs a person who may override
            stays = R.HALTED if mid_call else R.PAUSED
            how = "halted until a person looks (did the call go out?)" if mid_call else "paused"
            text += (
                f" It is {how} at {words.share(fresh)}%: `rollout {fresh.app_key} status` "
                "shows where it stands; "
                + words.controls_hint(fresh.app_key, ["resume", "abort"], halted=mid_call)
            )
            if await self._move(fresh, stays, action_id=None, next_at=None, note=text):
                await self._record(fresh, "scheduler", "failed", text)
                app = self.service.config.app(fresh.app_key)
                if app is not None:
                    await self._say(app, fresh, text, controls=True, mention=True)
        except Exception:  # the database itself may be what failed: the log has it
            log.exception("pausing rollout #%s after its failed step failed", rollout.id)
        return text

    async def _step(self, rollout: Rollout, action: TimedAction) -> str:
        app = self.service.config.app(rollout.app_key)
        if app is None:
            return await self._end(rollout, R.ABORTED, "the app is no longer configured")
        now = self.clock()
        holds = await self.service.freezes.active(app.key, app.timezone, now)
        if holds:
            return await self._frozen(rollout, app, holds)
        verdict = await self.judge(rollout)
        if isinstance(verdict, NoData):
            return await self._hold(rollout, app, verdict.reason)
        if isinstance(verdict, Regressed):
            return await self._halt(rollout, app, verdict)
        actor = Actor(f"rollout #{rollout.id} (started by {rollout.started_by})")
        checked = gate_for(self.service.adapters[rollout.platform]).has_data
        why = f"healthy: {verdict.reason}" if checked else verdict.reason
        return await self._advance(rollout, app, actor, why)

    async def _frozen(self, rollout: Rollout, app: AppEntry, holds: list[FreezeView]) -> str:
        """A freeze holds the step: tried again every ``retry``; said (and recorded) once
        per freeze — again only when what holds it changes — and said when it moves on
        (:meth:`_thawed`). Each retry's outcome stays on its timed action."""
        now = self.clock()
        nxt = rollout.steps[rollout.step + 1]
        again = render.local_time(now + self.rules.retry, app.timezone)
        held_by = "\n".join(
            sorted(f"{h.kind}:{h.scope}:{h.by}:{h.since.isoformat()}" for h in holds)
        )
        if held_by == rollout.held_by:
            text = (
                f"✋ Still held by the freeze: rollout #{rollout.id}'s step to {nxt}%; tried "
                f"again at {again}."
            )
            await self._next(rollout, now + self.rules.retry, R.RUNNING)
            return text
        text = (
            f"✋ Held: the step of rollout #{rollout.id} to {nxt}% fell due while "
            f"{render.holds(holds, app.timezone)}. It is tried again every "
            f"{render.duration(self.rules.retry)} (next at {again}) and said here when it "
            "moves on."
        )
        await self._next(rollout, now + self.rules.retry, R.RUNNING, note=text, held_by=held_by)
        await self._record(rollout, "scheduler", "refused", text)
        await self._say(app, rollout, text)
        return text

    @staticmethod
    def _thawed(rollout: Rollout) -> str:
        """What a step says when a freeze had held it: that it moved on."""
        return " The freeze that held this step is over." if rollout.held_by else ""

    async def judge(self, rollout: Rollout) -> Verdict:
        """The gate's verdict on the share live now, over the days it has been live (today
        and yesterday at most)."""
        adapter = self.service.adapters[rollout.platform]
        today = self.clock().astimezone(BEIJING).date()
        since = (rollout.step_at or self.clock()).astimezone(BEIJING).date()
        window = Window(max(since, today - timedelta(days=1)), today)
        thresholds = Thresholds(**rollout.thresholds)
        gate = gate_for(adapter)
        share = words.share(rollout)
        if gate.has_data:  # the share the platform serves, should it differ from the plan's
            share = await self._live_share(rollout) or share
        start = datetime.combine(window.start, time(), BEIJING)
        previous_since = await self._live_since(rollout) if gate.has_data else None
        served = exposure(rollout, share, start, self.clock(), previous_since)
        if served is not None and previous_since is not None and previous_since > start:
            served = (
                served[0],
                served[1] + await self._staged_before(rollout, start, previous_since),
            )
        return await gate.judge(
            rollout.app_key, rollout.version, rollout.previous, share, window, thresholds, served
        )

    async def _staged_before(self, rollout: Rollout, start: datetime, live: datetime) -> Served:
        """What the version the rollout replaces served in its own staged rollout, from
        ``start`` until it went ``live`` for everyone (its error figures count those users
        too); nothing when it had no rollout here."""
        for earlier in await self.store.rollouts(
            apps=[rollout.app_key], platform=rollout.platform, states=[R.COMPLETED]
        ):
            if earlier.version == rollout.previous and earlier.id != rollout.id:
                found = exposure(earlier, words.share(earlier), start, live)
                return found[0] if found is not None else Served.NONE
        return Served.NONE

    async def _live_since(self, rollout: Rollout) -> datetime | None:
        """When the version the rollout replaces went live: the platform's word (its live
        version's release time), else miniship's own record of publishing it; None: not
        known (the gate then takes it as live all along)."""
        if rollout.previous is None:
            return None
        with contextlib.suppress(PlatformError, ConfigError):
            for v in await self.service.adapters[rollout.platform].versions(rollout.app_key):
                if v.state == "live" and v.version == rollout.previous and v.created_at:
                    return v.created_at
        release = await self.store.release(rollout.app_key, rollout.previous)
        if release is None or release.id is None:
            return None
        target = await self.store.target(release.id, rollout.platform)
        return target.released_at if target is not None else None

    async def _advance(self, rollout: Rollout, app: AppEntry, actor: Actor, why: str) -> str:
        """Take the next step (the full release at 100); say why. The rollout is claimed
        (stepping) before the platform is called: when it moved meanwhile (a person paused
        or aborted it while the gate was asked), nothing is done."""
        now = self.clock()
        was = R(rollout.state)
        nxt = rollout.step + 1
        share = rollout.steps[nxt]
        claimed = await self._claim(rollout, f"taking the step to {share}%")
        if claimed is None:
            return f"Rollout #{rollout.id} moved meanwhile; the step to {share}% was not taken."
        rollout = claimed
        live = await self._live_share(rollout) if share < 100 else None
        if live is not None and live >= share:  # it went out before (a step cut short)
            result = ActionResult("gray", app, rollout.version, [])
            said = (
                f"{self.service.display(rollout.platform)} already serves {rollout.version} "
                f"to {live}% of users: the step had gone out before, it is not sent again"
            )
        else:
            result = await self._go(
                actor, app, rollout.platform, rollout.version, share, rollout.id
            )
            said = render.result(result)
        if not result.ok:
            if any(r.transient for r in result.results):
                text = (
                    f"✋ Rollout #{rollout.id} did not reach {share}%: {said}\nTried again at "
                    f"{render.local_time(now + self.rules.retry, app.timezone)}."
                )
                await self._next(rollout, now + self.rules.retry, R.RUNNING, note=text)
            else:
                text = f"✋ Rollout #{rollout.id} did not reach {share}%: {said}"
                stays = R.PAUSED if policy.rollout_allows("pause", was) else was
                # a paused or halted one stays as it was
                await self._move(rollout, stays, action_id=None, next_at=None, note=text)
            await self._record(rollout, actor.id, "failed", text)
            await self._say(app, rollout, text, controls=True)
            return text
        if share >= 100:
            text = (
                f"✅ Rollout #{rollout.id} completed: {rollout.version} is released to "
                f"everyone ({why}).{self._thawed(rollout)}"
            )
            fresh = await self._move(
                rollout,
                R.COMPLETED,
                step=nxt,
                step_at=now,
                action_id=None,
                next_at=None,
                note=text,
                held_by=None,
            )
        else:
            text = f"🚦 Rollout #{rollout.id} advanced to {share}% ({why}).{self._thawed(rollout)}"
            fresh = await self._move(
                rollout,
                R.RUNNING,
                step=nxt,
                step_at=now,
                holding_since=None,
                asked_at=None,
                note=text,
                held_by=None,
            )
            if fresh is not None:
                fresh = await self._next(
                    fresh, now + timedelta(seconds=rollout.every_seconds), R.RUNNING
                )
        await self._record(rollout, actor.id, "ok", text)
        await self._say(app, fresh or rollout, f"{text}\n{said}")
        return text

    async def _halt(self, rollout: Rollout, app: AppEntry, verdict: Regressed) -> str:
        actor = Actor(f"rollout #{rollout.id} (health gate)")
        undo = ""
        state = R.HALTED  # either way, going on past it needs the override role
        share = words.share(rollout)
        what = f"halted at {share}% and paused: the staged release stays live"
        failed = False
        if rollout.on_regression == "revert":
            claimed = await self._claim(rollout, "taking the staged release back")
            if claimed is None:  # a person acted while the gate was asked: theirs
                return f"Rollout #{rollout.id} moved meanwhile; nothing was taken back."
            rollout = claimed
            stopped = await self.service.gray(
                actor, app.key, rollout.platform, rollout.version, None, rollout=rollout.id
            )
            undo = "\n" + render.result(stopped)
            failed = not stopped.ok
            what = (
                f"halted at {share}%, but the staged release could NOT be taken back (still live)"
                if failed
                else f"halted at {share}%: the staged release is taken back (0% of users now)"
            )
        text = (
            f"🛑 Rollout #{rollout.id} of {rollout.version} {what} — regression: {verdict.reason}"
        )
        back = rollout.on_regression == "revert" and not failed  # nothing staged is live
        moved = await self._move(
            rollout,
            state,
            action_id=None,
            next_at=None,
            note=text,
            held_by=None,
            gray_since=None if back else rollout.gray_since,
        )
        if moved is None:
            return f"Rollout #{rollout.id} moved meanwhile; its regression is in the log only."
        await self._record(rollout, actor.id, "failed" if failed else "refused", text)
        detail = "\n".join([text + undo, *words.evidence(verdict)])
        controls = policy.rollout_controls(state)
        if failed:
            detail += f"\n`rollout {app.key} abort` tries taking it back again."
        detail += "\n" + words.controls_hint(
            app.key, [c for c in controls if c != "pause"], halted=True
        )
        await self._say(app, rollout, detail, controls=True, mention=True)
        return text

    async def _hold(self, rollout: Rollout, app: AppEntry, reason: str) -> str:
        now = self.clock()
        since = rollout.holding_since or now
        ask = now - since >= self.rules.ask_after and rollout.asked_at is None
        again = now + self.rules.retry
        nxt = rollout.steps[rollout.step + 1]
        text = (
            f"⏸ Held: rollout #{rollout.id} stays at {words.share(rollout)}%, not {nxt}%: "
            f"{reason.rstrip('.')}. Tried again at {render.local_time(again, app.timezone)}."
        )
        if ask:
            text += (
                f" No figures for {render.duration(now - since)}: a person decides — "
                + words.controls_hint(app.key, ["advance", "abort"])
            )
        await self._next(
            rollout,
            again,
            R.RUNNING,
            note=text,
            holding_since=since,
            asked_at=now if ask else rollout.asked_at,
            held_by=None,
        )
        await self._record(rollout, "scheduler", "refused", text)
        if rollout.holding_since is None or ask:  # said when it starts, and when asking
            await self._say(app, rollout, text, controls=ask, mention=ask)
        return text

    # -- a person's controls ---------------------------------------------------------------

    async def control(
        self,
        actor: Actor,
        app_key: str,
        platform: str | None,
        control: str,
        *,
        override: bool = False,
        version: str | None = None,
    ) -> tuple[Rollout, str]:
        """``pause``, ``resume``, ``advance`` or ``abort`` the app's rollout under way (the
        role is checked by the command). Going on past a regression needs ``override`` (the
        actor holds the override role): checked here, on the state acted on — the move that
        follows is a compare-and-set from it. ``version`` (a card's button, a fleet's line):
        only the rollout of that version; another one under way is refused, not touched."""
        rollout = await self.current(app_key, platform, version)
        app = self.service.app(app_key)
        if not policy.rollout_allows(control, rollout.state):
            raise CommandRefused(
                f"rollout #{rollout.id} is {policy.rollout_words(rollout.state)}; "
                f"it cannot {control} now"
            )
        await self._cancel_step(rollout)
        rollout = await self.store.rollout(rollout.id or 0) or rollout
        if not policy.rollout_allows(control, rollout.state):
            raise CommandRefused(self._moved(rollout))
        if policy.rollout_needs_override(control, rollout.state):
            if not override:
                why = (
                    f"Rollout #{rollout.id} was halted on a regression: to {control} past it "
                    f"needs the override role on {app.key}."
                )
                await self._record(rollout, actor.id, "refused", why)
                raise CommandRefused(why)
            await self._record(
                rollout, actor.id, "override", f"{control} past the halt of rollout #{rollout.id}"
            )
        if control == "pause":
            text = f"⏸ Rollout #{rollout.id} paused by {actor} at {words.share(rollout)}%."
            paused = await self._move(
                rollout, R.PAUSED, action_id=None, next_at=None, note=text, held_by=None
            )
            if paused is None:
                raise CommandRefused(self._moved(rollout))
        elif control == "resume":
            text = await self._resume(rollout, app, actor)
        elif control == "advance":
            was = {R.PAUSED: " while it was paused", R.HALTED: " past its halt"}.get(
                R(rollout.state), ""
            )
            text = await self._advance(
                rollout, app, actor, f"advanced by {actor}{was}, without a health gate"
            )
            if "moved meanwhile" in text.splitlines()[0]:
                raise CommandRefused(self._moved(rollout))
            return await self.store.rollout(rollout.id or 0) or rollout, text
        else:
            text = await self._abort(rollout, app, actor)
        await self._record(rollout, actor.id, "ok", text)
        await self._say(app, rollout, text)
        return await self.store.rollout(rollout.id or 0) or rollout, text

    async def _resume(self, rollout: Rollout, app: AppEntry, actor: Actor) -> str:
        now = self.clock()
        share = words.share(rollout)
        said = ""
        target = await self._target(rollout)
        staged = target is not None and policy.allows("gray stop", target.state)
        gray_since = rollout.gray_since
        if not staged:  # the regression took it back: the share goes out again
            was = R(rollout.state)
            claimed = await self._claim(rollout, f"resuming: {share}% goes out again")
            if claimed is None:
                raise CommandRefused(self._moved(rollout))
            rollout = claimed
            result = await self._go(
                actor, app, rollout.platform, rollout.version, share, rollout.id
            )
            if not result.ok:
                await self._move(rollout, was, note=f"could not resume at {share}%")
                raise CommandRefused(f"could not resume at {share}%: {render.result(result)}")
            said, gray_since = "\n" + render.result(result), now
        every = timedelta(seconds=rollout.every_seconds)
        text = (
            f"▶️ Rollout #{rollout.id} resumed by {actor} at {share}%; next step after the "
            f"gate at {render.local_time(now + every, app.timezone)}.{said}"
        )
        fresh = await self._move(
            rollout,
            R.RUNNING,
            step_at=rollout.step_at if staged else now,  # the share was live all along
            gray_since=gray_since,
            holding_since=None,
            asked_at=None,
            warned_at=None if gray_since != rollout.gray_since else rollout.warned_at,
            note=text.splitlines()[0],
            held_by=None,
        )
        if fresh is None:
            raise CommandRefused(self._moved(rollout))
        await self._next(fresh, now + every, R.RUNNING)
        return text

    async def _abort(self, rollout: Rollout, app: AppEntry, actor: Actor) -> str:
        target = await self._target(rollout)
        said = ""
        if target is not None and policy.allows("gray stop", target.state):
            was = R(rollout.state)
            claimed = await self._claim(rollout, "aborting: taking the staged release back")
            if claimed is None:
                raise CommandRefused(self._moved(rollout))
            rollout = claimed
            result = await self.service.gray(
                actor, app.key, rollout.platform, rollout.version, None, rollout=rollout.id
            )
            said = "\n" + render.result(result)
            if not result.ok:  # still in front of users: not aborted, and nothing goes on
                stays = R.PAUSED if policy.rollout_allows("pause", was) else was
                text = (
                    f"⚠️ Rollout #{rollout.id} of {rollout.version} is NOT aborted: the staged "
                    f"release could not be taken back; it stays {policy.rollout_words(stays)} "
                    f"at {words.share(rollout)}%. `rollout {app.key} abort` tries again.{said}"
                )
                await self._move(
                    rollout, stays, action_id=None, next_at=None, note=text.splitlines()[0]
                )
                return text
        text = f"⏹ Rollout #{rollout.id} of {rollout.version} aborted by {actor}.{said}"
        await self._end(rollout, R.ABORTED, text.splitlines()[0], gray_since=None)
        return text

    # -- restarts, leaders, the platform's own deadline ---------------------------------------

    async def replan(self) -> int:
        """Plan every pending step again (at the scheduler's start) and take up a step a
        stopped process was taking: it happens again after the handover (at once on
        SQLite, the one process)."""
        assert self.planner is not None
        alone = self.store.engine.dialect.name == "sqlite"
        later = self.clock() + (timedelta(0) if alone else self.rules.handover)
        for stuck in await self.store.timed_actions(states=[T.RUNNING], actions=(STEP,)):
            if stuck.id is None or stuck.id in self._running:
                continue
            with contextlib.suppress(ActionTaken):
                await self.store.move_timed(stuck, T.FAILED, "interrupted: taken up again")
            for rollout in await self.store.rollouts(action_id=stuck.id):
                # stepping: it stopped mid-call; the step again reads the platform's plan
                if policy.rollout_allows("step", rollout.state) or rollout.state == R.STEPPING:
                    await self._next(rollout, later, R.RUNNING)
        self._planned.clear()
        return await self.adopt()

    async def adopt(self) -> int:
        """Plan the steps stored since (by another replica, or before a start)."""
        if self.planner is None:
            return 0
        pending = await self.store.timed_actions(actions=(STEP,))
        self._planned &= {a.id for a in pending if a.id is not None}
        count = 0
        for action in pending:
            if action.id is not None and action.id not in self._planned:
                self.planner.plan_step(action)
                self._planned.add(action.id)
                count += 1
        return count

    async def watch(self) -> None:
        """Warn a day before a platform would release a staged version on its own; end a
        rollout whose version the platform released to everyone meanwhile (on its own on
        the staged release's last day, or from its console); halt a rollout whose call to
        the platform was cut short (its process stopped): whether the call went out is
        unknown, so a person looks before it goes on."""
        now = self.clock()
        for rollout in await self.store.rollouts(states=[R.RUNNING, R.PAUSED, R.HALTED]):
            await self._released_meanwhile(rollout, now)
        for rollout in await self.store.rollouts(states=[R.STEPPING]):
            since = rollout.next_at  # when it was claimed
            if since is None or now - since < self.rules.stuck:
                continue
            text = (
                f"⚠️ Rollout #{rollout.id} was cut short while calling "
                f"{self.service.display(rollout.platform)} ({rollout.note}); it is halted "
                f"until a person looks: `rollout {rollout.app_key} status` and `health` show "
                f"where it stands; "
                + words.controls_hint(rollout.app_key, ["resume", "advance", "abort"], halted=True)
            )
            if await self._move(rollout, R.HALTED, action_id=None, next_at=None, note=text):
                await self._record(rollout, "scheduler", "failed", text)
                app = self.service.config.app(rollout.app_key)
                if app is not None:
                    await self._say(app, rollout, text, controls=True)
        for rollout in await self.store.rollouts(states=[R.RUNNING, R.PAUSED, R.HALTED]):
            adapter = self.service.adapters.get(rollout.platform)
            auto = adapter.gray_auto_release if adapter is not None else None
            if auto is None or rollout.gray_since is None or rollout.warned_at is not None:
                continue
            if rollout.state == R.HALTED:  # only when taking it back failed
                target = await self._target(rollout)
                if target is None or not policy.allows("gray stop", target.state):
                    continue
            deadline = rollout.gray_since + auto
            if now < deadline - self.rules.warn_before:
                continue
            app = self.service.config.app(rollout.app_key)
            if app is None:
                continue
            text = (
                f"⚠️ {self.service.display(rollout.platform)} releases {rollout.version} to "
                f"everyone on its own at {render.local_time(deadline, app.timezone)} (its "
                f"staged releases last {render.duration(auto)} at most); rollout #{rollout.id} "
                f"is {policy.rollout_words(rollout.state)} at {words.share(rollout)}%. Decide "
                "before then: "
                + words.controls_hint(
                    app.key, ["advance", "abort"], halted=rollout.state == R.HALTED
                )
                + "."
            )
            if await self._move(rollout, R(rollout.state), warned_at=now) is None:
                continue
            await self._record(rollout, "scheduler", "ok", text)
            await self._say(app, rollout, text, controls=True, mention=True)

    async def _released_meanwhile(self, rollout: Rollout, now: datetime) -> None:
        """The watcher found the version released to everyone, not by this rollout: it is
        completed, its next step cancelled, and that is said (a step would only fail)."""
        target = await self._target(rollout)
        if target is None or target.state not in policy.LIVE:
            return
        adapter = self.service.adapters.get(rollout.platform)
        auto = adapter.gray_auto_release if adapter is not None else None
        where = self.service.display(rollout.platform)
        if auto is not None and rollout.gray_since is not None and now >= rollout.gray_since + auto:
            how = f"on its own: its staged releases last {render.duration(auto)} at most"
        else:
            how = f"outside this rollout (in {where}'s console, say)"
        text = (
            f"✅ Rollout #{rollout.id} ended: {where} released {rollout.version} to everyone "
            f"{how}. The rollout was {policy.rollout_words(rollout.state)} at "
            f"{words.share(rollout)}%; no further step is taken."
        )
        moved = await self._move(
            rollout, R.COMPLETED, action_id=None, next_at=None, note=text, held_by=None
        )
        if moved is None:
            return
        await self._cancel_step(rollout)
        await self._record(rollout, "scheduler", "ok", text)
        app = self.service.config.app(rollout.app_key)
        if app is not None:
            await self._say(app, moved, text, mention=True)

    # -- health, for people ---------------------------------------------------------------

    async def health(self, app_key: str, platform: str | None, version: str | None) -> str:
        """``health <app> [version]``: the new and previous versions' error figures and top
        errors for today and yesterday."""
        app = self.service.app(app_key)
        names = [
            p
            for p in self.service.platforms_for(app, [platform] if platform else [])
            if self.service.adapters[p].reports_errors
        ]
        if not names:
            asked = self.service.platforms_for(app, [platform] if platform else [])
            where = " and ".join(self.service.display(p) for p in asked)
            reports = "reports" if len(asked) == 1 else "report"
            raise CommandRefused(
                f"{where} {reports} no per-version error figures (only WeChat's jserr_list "
                "does), so there is no health to show"
            )
        p = names[0]
        adapter = self.service.adapters[p]
        new, old = version, None
        found = await self.store.rollouts(apps=[app.key], platform=p)
        if found and (new is None or found[0].version == new):
            new, old = found[0].version, found[0].previous
        try:
            live = await adapter.live_version(app.key)
        except (PlatformError, ConfigError) as exc:
            raise CommandRefused(f"could not ask {adapter.display_name}: {exc}") from None
        if new is None:
            new = live
        if new is None:
            raise CommandRefused(f"nothing is live on {adapter.display_name} yet")
        if old is None and live != new:
            old = live
        today = self.clock().astimezone(BEIJING).date()
        rows: list[tuple[str, ErrorReport | None, str]] = []
        for label, v in (("new", new), ("previous", old)):
            if v is None:
                continue
            for day, when in ((today, "today"), (today - timedelta(days=1), "yesterday")):
                report, why = await self._report(app.key, p, v, day)
                rows.append((f"{v} ({label}) {when}", report, why))
        return words.health(app.key, adapter.display_name, rows, self.clock(), app.timezone)

    async def _report(
        self, app: str, platform: str, version: str, day: date
    ) -> tuple[ErrorReport | None, str]:
        try:
            return await self.service.adapters[platform].js_errors(app, version, day, day), ""
        except (PlatformError, ConfigError) as exc:
            return None, f"could not be asked: {exc}"

    # -- shared ---------------------------------------------------------------------------

    async def _go(
        self,
        actor: Actor,
        app: AppEntry,
        platform: str,
        version: str,
        share: int,
        rollout: int | None,
    ) -> ActionResult:
        """One step: a gray share, or at 100 the platform's full release (``rollout``: the
        rollout whose step it is, None before it exists)."""
        if share >= 100:
            return await self.service.publish(actor, app.key, [platform], version, rollout=rollout)
        return await self.service.gray(actor, app.key, platform, version, share, rollout=rollout)

    @staticmethod
    async def _gray_began(adapter: Platform, app: str, version: str) -> datetime | None:
        """When a staged release of ``version`` already running began (a person's `gray`
        before the rollout): the platform's own clock to its automatic full release runs
        from then, not from the rollout's start. None: none runs, or it cannot be told."""
        try:
            gray = (await adapter.overview(app)).gray
        except (PlatformError, ConfigError):
            return None
        if gray is None or gray.version not in (None, version):
            return None
        return gray.since

    async def _live_share(self, rollout: Rollout) -> int | None:
        """The share of users the platform says have the version now (its gray plan), or
        None when it has no plan of this version or cannot be asked."""
        adapter = self.service.adapters[rollout.platform]
        try:
            gray = (await adapter.overview(rollout.app_key)).gray
        except (PlatformError, ConfigError) as exc:
            log.info("rollout #%s: the gray plan could not be read: %s", rollout.id, exc)
            return None
        if gray is None or gray.version not in (None, rollout.version):
            return None
        return gray.percent

    async def _claim(self, rollout: Rollout, doing: str) -> Rollout | None:
        """Take the rollout for a call to the platform, by compare-and-set: None when a
        person or another process moved it since it was read (they won; do nothing)."""
        return await self._move(rollout, R.STEPPING, next_at=self.clock(), note=doing)

    async def _target(self, rollout: Rollout) -> ReleaseTarget | None:
        return await self.store.target(rollout.release_id, rollout.platform)

    async def _next(
        self,
        rollout: Rollout,
        due: datetime,
        state: RolloutState,
        *,
        note: str | None = None,
        **values: object,
    ) -> Rollout:
        """Plan the rollout's next step at ``due`` (a pending timed action)."""
        release = await self.store.release(rollout.app_key, rollout.version)
        assert release is not None
        action = await self.store.add_timed(
            release, [rollout.platform], due, rollout.started_by, rollout.channel, action=STEP
        )
        if note is not None:
            values["note"] = note
        fresh = await self._move(rollout, state, action_id=action.id, next_at=due, **values)
        if fresh is None:  # a person acted meanwhile: this step is not theirs
            with contextlib.suppress(ActionTaken):
                await self.store.move_timed(action, T.CANCELLED, "the rollout moved meanwhile")
            return await self.store.rollout(rollout.id or 0) or rollout
        if self.planner is not None and action.id is not None:
            self.planner.plan_step(action)
            self._planned.add(action.id)
        return fresh

    async def _move(
        self, rollout: Rollout, state: RolloutState, **values: object
    ) -> Rollout | None:
        """Move by compare-and-set; None when it moved meanwhile (logged)."""
        try:
            moved = await self.store.move_rollout(rollout, state, **values)
        except RolloutTaken as exc:
            log.info("rollout #%s moved meanwhile (%s)", rollout.id, exc.current.state)
            return None
        return moved

    @staticmethod
    def _moved(rollout: Rollout) -> str:
        return (
            f"rollout #{rollout.id} moved meanwhile (someone or a step acted on it first); "
            f"`rollout {rollout.app_key} status` shows where it stands"
        )

    async def _end(self, rollout: Rollout, state: RolloutState, note: str, **values: object) -> str:
        await self._move(rollout, state, action_id=None, next_at=None, note=note, **values)
        return note

    async def _cancel_step(self, rollout: Rollout) -> None:
        if rollout.action_id is None:
            return
        action = await self.store.timed(rollout.action_id)
        if action is not None and action.state == T.PENDING:
            with contextlib.suppress(ActionTaken):
                await self.store.move_timed(action, T.CANCELLED, "the rollout was changed")
        if self.planner is not None:
            self.planner.unplan_step(rollout.action_id)

    async def _say(
        self,
        app: AppEntry,
        rollout: Rollout,
        text: str,
        *,
        controls: bool = False,
        mention: bool = False,
    ) -> None:
        fresh = await self.store.rollout(rollout.id or 0) or rollout
        offered = tuple(policy.rollout_controls(fresh.state)) if controls else ()
        owners = tuple(o for o in app.roles.publish if o != "*") if mention else ()
        notice = Notice(
            app,
            rollout.version,
            text,
            channel=rollout.channel,
            controls=offered,
            mention=owners,
            platform=rollout.platform,
        )
        for announcer in list(self.timed.announcers):
            try:
                await announcer.notice(notice)
            except Exception:
                log.exception("announcing a rollout failed")

    async def _record(self, rollout: Rollout, actor: str, outcome: str, message: str) -> None:
        release = await self.store.release(rollout.app_key, rollout.version)
        await self.store.record(
            actor=actor,
            action="rollout",
            outcome=outcome,
            app=rollout.app_key,
            release=release,
            version=rollout.version,
            platform=rollout.platform,
            message=message,
        )
        if rollout.fleet_id is not None:  # the fleet run's card counts it
            try:
                await Fleets.of(self.service).news(rollout.fleet_id)
            except Exception:
                log.exception("telling fleet run #%s of rollout #%s", rollout.fleet_id, rollout.id)
