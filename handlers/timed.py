"""Timed releases, their reminders, the daily digest and the long-review nudge.

The use cases behind ``publish … at …``, ``schedule`` and ``schedule cancel``, and what
the scheduler's jobs (``handlers.jobs``) do when they wake up. The ``timed_action`` row is
the truth about a plan; the scheduler only says when to look at it. Whatever wakes up
first (a second scheduler process, a restart catching up) takes the row's claim by
compare-and-set, and the publish itself goes through the same claim as a person's
publish, so a timed release can never go out twice.

At fire time the plan is checked again: every platform still approved (the platforms are
asked first), nothing newer live since. Found due later than the grace period (miniship
was not running), it is not published but reported missed, with a "Publish now" button.

The job wakes :data:`PREFLIGHT` before the time (:meth:`TimedReleases.wake_at`; a plan
made only seconds ahead, at the time): the checks, the freeze look and the
publish claims are done then, and the publish waits, claimed, for its time, so at the
minute only the platforms' publish calls are made (many plans due in the same minute go
out together instead of queueing their checks behind each other). A stop or a lost lead
meanwhile gives the claims back, and the next scheduler takes the plan up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from handlers import logs, policy, render, views
from handlers.config import AppEntry, ChannelEntry, Settings
from handlers.freezes import FreezeView
from handlers.releases import (
    ActionResult,
    Actor,
    CommandRefused,
    Outcome,
    PlatformResult,
    ReleaseService,
)
from handlers.views import Scheduled
from platforms.errors import ConfigError, PlatformError
from storage import ActionTaken, TargetView, TimedState
from storage.models import TimedAction, utcnow

__all__ = [
    "NO_SCHEDULER",
    "PREFLIGHT",
    "Announcer",
    "Notice",
    "Planner",
    "TimedReleases",
    "TimedRules",
]

log = logging.getLogger(__name__)
T = TimedState

SLACK_RETRY_MEMORY = timedelta(days=1)
RETRY_FIRST = timedelta(seconds=5)  # a timed publish met a passing fault: first wait
RETRY_LONGEST = timedelta(seconds=60)
LATE_ENOUGH_TO_SAY = timedelta(seconds=5)  # a restart's or a handover's delay, said
PREFLIGHT = timedelta(seconds=2)  # a timed publish is checked and claimed this early
NO_SCHEDULER = "timed releases need miniship's scheduler, which is not running here"


@dataclass(frozen=True)
class TimedRules:
    grace: timedelta = timedelta(minutes=10)
    reminder: timedelta = timedelta(minutes=30)  # zero: no reminder
    nudge_after: timedelta = timedelta(hours=48)
    handover: timedelta = timedelta(seconds=30)
    """After a replica takes the lead, how long until the last leader has certainly
    stopped: it notices within MINISHIP_LEADER_SECONDS, then lets its jobs run for up to
    MINISHIP_STOP_SECONDS. A timed release it was publishing is taken up after that."""

    @classmethod
    def from_settings(cls, settings: Settings) -> TimedRules:
        return cls(
            grace=timedelta(minutes=settings.grace_minutes),
            reminder=timedelta(minutes=settings.reminder_minutes),
            nudge_after=timedelta(hours=settings.nudge_hours),
            handover=timedelta(seconds=settings.leader_seconds + settings.stop_seconds),
        )


@dataclass(frozen=True)
class Notice:
    """Something to say in a release's thread (the console prints it)."""

    app: AppEntry
    version: str
    text: str
    publish_now: tuple[str, ...] | None = None  # offer "Publish now" for these platforms
    channel: str | None = None  # where the plan was made: the card goes there if none yet
    override: str = ""  # "Publish now" overrides a freeze, saying this (override role only)
    controls: tuple[str, ...] = ()  # a staged rollout's controls offered (resume, abort…)
    platform: str = ""  # the platform the rollout's controls act on ("" : the app's only one)
    mention: tuple[str, ...] = ()  # Slack ids to mention (the app's owners)


class Announcer(Protocol):
    async def notice(self, notice: Notice) -> None: ...

    async def digest(self, channel: ChannelEntry, text: str) -> None: ...


class Planner(Protocol):
    """What wakes the timed jobs up (the scheduler)."""

    def plan(self, action: TimedAction, remind_at: datetime | None) -> None: ...

    def unplan(self, action_id: int) -> None: ...


class TimedReleases:
    def __init__(
        self,
        service: ReleaseService,
        rules: TimedRules,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.service = service
        self.store = service.store
        self.rules = rules
        self.clock = clock
        self.sleep = sleep  # how a retry waits (tests pass one that moves their clock)
        self.planner: Planner | None = None
        self.announcers: list[Announcer] = []
        self._firing: set[int] = set()  # timed actions this process is publishing now
        self._orphans: dict[int, datetime] = {}  # others' interrupted → when to take up
        service.timed_cancelled.append(self._unplan)

    def _unplan(self, action_id: int) -> None:
        if self.planner is not None:
            self.planner.unplan(action_id)

    # -- planning ---------------------------------------------------------------------------

    async def schedule_publish(
        self,
        actor: Actor,
        app_key: str,
        chosen: Sequence[str],
        version: str,
        due: datetime,
        channel: str | None = None,
    ) -> Scheduled:
        """Plan the publish of ``version`` at ``due``; refused (CommandRefused) unless it
        could go out then."""
        if self.planner is None:
            raise CommandRefused(NO_SCHEDULER)
        app = self.service.app(app_key)
        names = self.service.platforms_for(app, chosen)
        release = await self.store.release(app.key, version)
        if release is None or release.id is None:
            raise CommandRefused(f"{app.key} {version} was never uploaded")
        if due <= self.clock():
            raise CommandRefused(f"{render.moment(due, app.timezone)} is in the past")
        waiting: list[str] = []
        for p in names:
            target = await self.store.target(release.id, p)
            where = self.service.display(p)
            if target is None:
                raise CommandRefused(f"{version} was never uploaded to {where}")
            why = policy.refusal("schedule", version, target.state, where=where)
            if why:
                raise CommandRefused(why)
            if not policy.allows("timed publish", target.state):
                waiting.append(f"{where} is {policy.words(target.state)}")
            live = await self.service.live_above(app, release, p)
            if live is not None:
                raise CommandRefused(
                    f"{live} is already live on {where}; publishing {version} would go back "
                    f"to an older version (`rollback {app.key} {p} to {version}` does that "
                    "on purpose)"
                )
        for other in await self.store.timed_actions(release_id=release.id):
            if set(other.platforms) & set(names):
                raise CommandRefused(
                    f"{version} is already planned as #{other.id} at "
                    f"{render.moment(other.due_at, app.timezone)}; "
                    f"`schedule cancel {other.id}` first"
                )
        action = await self.store.add_timed(release, names, due, actor.id, channel)
        # planned inside the reminder window: the reply itself is the reminder
        remind_at = self.remind_at(action) if due - self.clock() > self.rules.reminder else None
        try:
            self.planner.plan(action, remind_at)
        except Exception:  # no job, no plan: do not leave a plan that never fires
            await self.store.move_timed(action, T.CANCELLED, "could not be scheduled")
            raise
        await self._record(action, actor.id, "ok", f"publish planned: {self._what(action, app)}")
        return Scheduled(views.timed(action), app, remind_at, waiting)

    async def action(self, action_id: int) -> TimedAction:
        action = await self.store.timed(action_id)
        if action is None:
            raise CommandRefused(f"there is no timed release #{action_id}; `schedule` lists them")
        return action

    async def pending(self, app_keys: Sequence[str]) -> list[views.TimedView]:
        return [views.timed(a) for a in await self.store.timed_actions(apps=app_keys)]

    async def cancel(self, actor: Actor, action_id: int) -> TimedAction:
        action = await self.action(action_id)
        if action.action == "rollout":  # a staged rollout's next step: its own controls
            found = await self.store.rollouts(action_id=action_id)
            whose = (
                f"the step to {r.steps[r.step + 1]}% (step {r.step + 2} of {len(r.steps)}) of "
                f"rollout #{r.id} of {r.app_key} {r.version}"
                if found and 0 <= (r := found[0]).step + 1 < len(r.steps)
                else f"a step of a staged rollout of {action.app_key} {action.version}"
            )
            raise CommandRefused(
                f"#{action_id} is {whose}: use `rollout {action.app_key} pause` or "
                f"`rollout {action.app_key} abort`"
            )
        if action.state != T.PENDING:
            raise CommandRefused(f"timed release #{action_id} is already {action.state}")
        try:
            action = await self.store.move_timed(action, T.CANCELLED, f"cancelled by {actor}")
        except ActionTaken as exc:
            raise CommandRefused(
                f"timed release #{action_id} is already {exc.current.state}"
            ) from None
        self._unplan(action_id)
        app = self.service.app(action.app_key)
        await self._record(action, actor.id, "ok", f"cancelled: {self._what(action, app)}")
        return action

    def remind_at(self, action: TimedAction) -> datetime | None:
        """When to remind of ``action`` (now, if that moment has passed), or None."""
        if not self.rules.reminder or action.due_at <= self.clock():
            return None
        return max(action.due_at - self.rules.reminder, self.clock())

    @staticmethod
    def wake_at(action: TimedAction) -> datetime:
        """When the job of ``action`` wakes: :data:`PREFLIGHT` before its time, to be
        checked and claimed by then, yet not sooner than :data:`PREFLIGHT` after the plan
        was made (it can be cancelled meanwhile): one made seconds ahead wakes at its time."""
        if action.action != "publish":
            return action.due_at
        early = max(action.due_at - PREFLIGHT, action.created_at + PREFLIGHT)
        return min(action.due_at, early)

    async def replan(self) -> int:
        """Hand every pending plan to the planner again (at start-up: the scheduler's job
        table may have lost or dropped one); note the plans another process was publishing
        when it stopped (see :meth:`resume_interrupted`)."""
        assert self.planner is not None
        alone = self.store.engine.dialect.name == "sqlite"  # the last process is gone
        after = self.clock() + (timedelta(0) if alone else self.rules.handover)
        for stuck in await self.store.timed_actions(states=[T.RUNNING]):
            if stuck.id is not None and stuck.id not in self._firing:
                self._orphans.setdefault(stuck.id, after)
        pending = await self.store.timed_actions()
        for action in pending:
            self.planner.plan(action, self.remind_at(action))
        return len(pending)

    # -- what the jobs do -----------------------------------------------------------------------

    async def fire(self, action_id: int) -> None:
        """The planned minute is :data:`PREFLIGHT` away (or has come, or was found passed):
        check, claim, publish at the minute; or say why not."""
        action = await self.store.timed(action_id)
        if action is None or action.state != T.PENDING:
            return  # cancelled, or another scheduler took it
        app = self.service.config.app(action.app_key)
        if app is None:
            with contextlib.suppress(ActionTaken):
                await self.store.move_timed(action, T.FAILED, "the app is no longer configured")
            return
        late = self.clock() - action.due_at
        if late > self.rules.grace:
            await self._missed(action, app, late)
            return
        try:
            action = await self.store.move_timed(action, T.RUNNING)
        except ActionTaken:
            return  # another scheduler process is on it
        assert action.id is not None
        self._firing.add(action.id)
        try:
            await self._run(action, app, late)
        finally:
            self._firing.discard(action.id)

    async def _run(self, action: TimedAction, app: AppEntry, late: timedelta) -> None:
        """Publish ``action``, taken (running): unless a freeze holds it; settle and say."""
        if await self._held(action, app):
            return
        try:
            with logs.about(command="timed publish", app=app.key, release=action.version):
                text, ok = await self._publish(action, app, late)
        except Exception:
            log.exception("timed release #%s failed", action.id)
            text, ok = (
                f"⚠️ Timed release #{action.id} of {action.version} ran into an unexpected "
                "error; its outcome is unknown, so check `status`. Details are in the log.",
                False,
            )
        with contextlib.suppress(ActionTaken):
            await self.store.move_timed(action, T.DONE if ok else T.FAILED, text)
        await self._announce(Notice(app, action.version, text, channel=action.channel))

    async def resume_interrupted(self) -> int:
        """Finish the timed releases another process was publishing when it stopped (killed,
        or cut off from the database and since stopped), once it has certainly stopped;
        how many were settled. What the platform shows decides: live → done; not live →
        the claim its publisher held is given back and it is published now, late, within
        the grace period (after it, nothing more is). A platform that cannot be asked
        leaves it for the next look."""
        settled = 0
        for action_id, after in list(self._orphans.items()):
            if self.clock() < after or self.service.work.stopping:
                continue
            action = await self.store.timed(action_id)
            if action is None or action.state != T.RUNNING or action_id in self._firing:
                del self._orphans[action_id]
                continue
            async with self.service.work.doing():
                done = await self._resume(action)
            if done:
                del self._orphans[action_id]
                settled += 1
        return settled

    async def _resume(self, action: TimedAction) -> bool:
        head = f"Timed release #{action.id} of {action.version}"
        app = self.service.config.app(action.app_key)
        release = await self.store.release(action.app_key, action.version)
        if app is None or release is None or release.id is None:
            with contextlib.suppress(ActionTaken):
                await self.store.move_timed(action, T.FAILED, "the app is no longer configured")
            return True
        actor = Actor(f"timed #{action.id} (taken up after its publisher stopped)")
        left: list[str] = []
        for p in action.platforms:
            target = await self.store.target(release.id, p)
            if target is None:
                continue
            try:  # a publish claim of the stopped process is no one's now
                await self.service.refresh(TargetView(target, release), actor, abandoned=True)
            except (PlatformError, ConfigError) as exc:
                log.warning("%s: could not ask %s yet (%s); trying again", head, p, exc)
                return False
            target = await self.store.target(release.id, p) or target
            if not policy.is_live(target.state):
                left.append(p)
        late = self.clock() - action.due_at
        if not left:
            text, ok = (
                f"🚀 {head} published ({render.duration(late)} after its time): the process "
                "publishing it stopped before it could say so, and the platform has it live.",
                True,
            )
        elif late > self.rules.grace:
            text, ok = (
                f"⚠️ {head} was interrupted (the process publishing it stopped) and is now "
                f"{render.duration(late)} past its time, beyond the "
                f"{render.duration(self.rules.grace)} grace period: nothing more was "
                f"published. `status {app.key}` shows where it stands.",
                False,
            )
        else:
            with logs.about(command="timed publish", app=app.key, release=action.version):
                text, ok = await self._publish(
                    action.model_copy(update={"platforms": left}), app, late
                )
        if not left or late > self.rules.grace:  # (a publish here records its own)
            await self._record(action, "scheduler", "ok" if ok else "failed", text)
        with contextlib.suppress(ActionTaken):
            await self.store.move_timed(action, T.DONE if ok else T.FAILED, text)
        await self._announce(Notice(app, action.version, text, channel=action.channel))
        return True

    async def _held(self, action: TimedAction, app: AppEntry) -> bool:
        """Hold ``action`` (and say so) when its app is frozen or locked now."""
        holds = await self.service.freezes.active(app.key, app.timezone, self.clock())
        if not holds:
            return False
        text = (
            f"✋ Held: timed release #{action.id} of {action.version} on {self._where(action)} "
            f"fell due while {render.holds(holds, app.timezone)}. Nothing was published; "
            "someone with the override role can publish it now."
        )
        with contextlib.suppress(ActionTaken):
            await self.store.move_timed(action, T.HELD, text)
        await self._record(action, "scheduler", "refused", text)
        await self._announce(
            Notice(
                app,
                action.version,
                text,
                publish_now=tuple(action.platforms),
                channel=action.channel,
                override=f"timed release #{action.id}, held by a freeze",
            )
        )
        return True

    async def _missed(self, action: TimedAction, app: AppEntry, late: timedelta) -> None:
        due = render.moment(action.due_at, app.timezone)
        text = (
            f"⚠️ Missed: timed release #{action.id} of {action.version} on "
            f"{self._where(action)} was due at {due}, and miniship was not running then "
            f"(found {render.duration(late)} late, past the {render.duration(self.rules.grace)} "
            "grace period). Nothing was published."
        )
        try:
            action = await self.store.move_timed(action, T.MISSED, text)
        except ActionTaken:
            return
        await self._record(action, "scheduler", "refused", text)
        await self._announce(
            Notice(
                app,
                action.version,
                text,
                publish_now=tuple(action.platforms),
                channel=action.channel,
            )
        )

    async def _publish(
        self, action: TimedAction, app: AppEntry, late: timedelta
    ) -> tuple[str, bool]:
        """Check again, then publish; (what to say, whether it went out)."""
        head = f"Timed release #{action.id}"
        why_not = await self._check(action, app)
        if why_not:
            text = f"✋ {head} did not go ahead: {why_not}. Nothing was published."
            await self._record(action, "scheduler", "refused", text)
            return text, False
        actor = Actor(f"timed #{action.id} (planned by {action.created_by})")
        try:
            result, attempts = await self._publish_retrying(actor, action, app)
        except CommandRefused as exc:
            return f"✋ {head} did not go ahead: {exc}. Nothing was published.", False
        lines = render.result(result)
        if attempts > 1:
            lines += f"\n  ({attempts} attempts: the platform was busy or rate-limited at first)"
        if result.ok:
            when = "as planned"
            if late > LATE_ENOUGH_TO_SAY:  # miniship was down, or its leader changed
                when = (
                    f"{render.duration(late)} late (it was due at "
                    f"{render.moment(action.due_at, app.timezone)})"
                )
            return f"🚀 {head} published {when}.\n{lines}", True
        return f"✋ {head} did not publish.\n{lines}", False

    async def _publish_retrying(
        self, actor: Actor, action: TimedAction, app: AppEntry
    ) -> tuple[ActionResult, int]:
        """Publish; a platform that fails for a passing reason (busy, timeout, 5xx, rate
        limit) is tried again with back-off until the grace period ends, asking it for the
        state before each try. (The result, how many attempts it took.)"""
        deadline = action.due_at + self.rules.grace
        result = await self.service.publish(
            actor, app.key, action.platforms, action.version, ready=self._time_of(action)
        )
        outcome = {r.platform: r for r in result.results}
        attempts, wait = 1, RETRY_FIRST
        while not result.refusal and self.clock() + wait <= deadline:
            waiting = [p for p, r in outcome.items() if r.transient]
            if not waiting:
                break
            await self.sleep(wait.total_seconds())
            if await self._holds(app, self.clock()):
                break  # frozen or locked meanwhile: no further attempt goes live
            attempts, wait = attempts + 1, min(wait * 2, RETRY_LONGEST)
            again, settled = await self._still_to_publish(action, app, waiting)
            outcome.update(settled)
            if again:
                retried = await self.service.publish(actor, app.key, again, action.version)
                outcome.update({r.platform: r for r in retried.results})
        merged = ActionResult(result.action, app, action.version, list(outcome.values()))
        return (result if result.refusal else merged), attempts

    def _time_of(self, action: TimedAction) -> Callable[[], Awaitable[None]]:
        """What a publish checked and claimed ahead of ``action``'s time awaits: the time."""

        async def at_its_time() -> None:
            wait = (action.due_at - self.clock()).total_seconds()
            if wait > 0:
                await self.sleep(wait)

        return at_its_time

    async def _still_to_publish(
        self, action: TimedAction, app: AppEntry, platforms: Sequence[str]
    ) -> tuple[list[str], dict[str, PlatformResult]]:
        """Of ``platforms``, after asking each: those to publish again, and the results of
        those now settled (live after all); a platform whose outcome is still unknown (a
        publish claim held) is left to wait."""
        release = await self.store.release(app.key, action.version)
        again: list[str] = []
        settled: dict[str, PlatformResult] = {}
        for p in platforms:
            target = await self.store.target(release.id, p) if release and release.id else None
            if release is None or target is None:
                continue
            with contextlib.suppress(PlatformError, ConfigError):
                await self.service.refresh(TargetView(target, release), Actor("timed retry"))
            target = await self.store.target(target.release_id, p) or target
            if policy.is_live(target.state):
                said = "published (the platform has it live)"
                settled[p] = PlatformResult(p, Outcome.OK, said, policy.AFTER["publish"])
            elif policy.allows("publish", target.state):
                again.append(p)
            elif not policy.claimed(target.state):  # nothing left to try
                said = f"not published: it is {policy.words(target.state)} now"
                settled[p] = PlatformResult(p, Outcome.FAILED, said)
        return again, settled

    async def _check(self, action: TimedAction, app: AppEntry) -> str:
        """Why ``action`` must not go ahead now ("" when it may)."""
        release = await self.store.release(app.key, action.version)
        if release is None or release.id is None:
            return f"{action.version} is no longer known"
        reasons: list[str] = []
        for p in action.platforms:
            where = self.service.display(p)
            target = await self.store.target(release.id, p)
            if target is None:
                reasons.append(f"it was never uploaded to {where}")
                continue
            # the platform's word first: a decision or an outside change may not be seen
            # yet; asked beside what is live there (the publish is due now: no call waits)
            _, live = await asyncio.gather(
                self._refreshed(TargetView(target, release)),
                self.service.live_above(app, release, p),
            )
            target = await self.store.target(release.id, p) or target
            if policy.is_live(target.state):
                reasons.append(f"it is already released on {where}")
            elif not policy.allows("timed publish", target.state):
                reasons.append(f"it is {policy.words(target.state)} on {where}, not approved")
            if live is not None:
                reasons.append(f"the newer {live} is live on {where}")
        return "; ".join(reasons)

    async def _refreshed(self, view: TargetView) -> None:
        with contextlib.suppress(PlatformError, ConfigError):
            await self.service.refresh(view, Actor("timed check"))

    async def remind(self, action_id: int) -> None:
        action = await self.store.timed(action_id)
        if action is None or action.state != T.PENDING or action.due_at <= self.clock():
            return
        app = self.service.config.app(action.app_key)
        if app is None or not await self.store.first_delivery(f"remind:{action_id}"):
            return
        left = render.duration(action.due_at - self.clock())
        text = (
            f"⏰ In {left}: {action.version} goes out on {self._where(action)} at "
            f"{render.moment(action.due_at, app.timezone)} (timed release #{action.id}). "
            f"`schedule cancel {action.id}` stops it."
        )
        release = await self.store.release(app.key, action.version)
        if release is not None and release.id is not None:
            for p in action.platforms:
                target = await self.store.target(release.id, p)
                if target is None or policy.allows("timed publish", target.state):
                    continue
                where = self.service.display(p)
                words = policy.words(target.state)
                if policy.pending_review(target.state):
                    text += f"\n{where} is {words}: unless approved by then, nothing is published."
                else:
                    text += f"\n{where} is {words}: as things stand, nothing will be published."
        await self._announce(Notice(app, action.version, text, channel=action.channel))

    async def watch(self) -> None:
        """One round of the review watcher (reviews, then what is live), then the nudges for
        long reviews."""
        await self.service.refresh_watched()
        await self.service.reconcile_live()
        await self.nudge()
        await self.store.forget_deliveries(self.clock() - SLACK_RETRY_MEMORY, "slack:")

    async def nudge(self) -> None:
        """A note in the thread of each review pending past the threshold (once per
        threshold: at 48 h, again at 96 h…)."""
        now = self.clock()
        for view in await self.store.in_states(policy.PENDING_REVIEW):
            submitted = view.target.submitted_at
            app = self.service.config.app(view.release.app_key)
            if submitted is None or app is None:
                continue
            periods = int((now - submitted) / self.rules.nudge_after)
            key = f"nudge:{view.target.id}:{int(submitted.timestamp())}:{periods}"
            if periods < 1 or not await self.store.first_delivery(key):
                continue
            text = (
                f"⏳ {view.release.version} has been {policy.words(view.state)} on "
                f"{self.service.display(view.target.platform)} for "
                f"{render.duration(now - submitted)} (submitted "
                f"{render.local_time(submitted, app.timezone)}). `status {app.key}` asks again."
            )
            await self._announce(Notice(app, view.release.version, text))

    async def digest(self, channel_id: str) -> None:
        """The day's digest of one channel's apps (once per channel and local day)."""
        channel = self.service.config.channels.get(channel_id)
        if channel is None:
            return
        now = self.clock()
        day = now.astimezone(channel.timezone).date()
        if not await self.store.first_delivery(f"digest:{channel_id or '-'}:{day}"):
            return
        apps = [self.service.config.apps[k] for k in channel.apps]
        keys = [a.key for a in apps]
        text = render.digest(
            channel.timezone,
            now,
            in_review=views.lines(await self.store.in_states(policy.PENDING_REVIEW, keys)),
            released=views.lines(await self.store.released_since(now - timedelta(days=1), keys)),
            planned=await self.pending(keys),
            holds=[h for a in apps for h in await self._holds(a, now)],
        )
        if text:
            for announcer in list(self.announcers):
                try:
                    await announcer.digest(channel, text)
                except Exception:
                    log.exception("posting the digest failed")

    # -- shared ---------------------------------------------------------------------------

    async def _holds(self, app: AppEntry, now: datetime) -> list[FreezeView]:
        return await self.service.freezes.active(app.key, app.timezone, now)

    def _where(self, action: TimedAction) -> str:
        return ", ".join(self.service.display(p) for p in action.platforms)

    def _what(self, action: TimedAction, app: AppEntry) -> str:
        return (
            f"#{action.id} {action.version} on {self._where(action)} at "
            f"{render.moment(action.due_at, app.timezone)}"
        )

    async def _record(self, action: TimedAction, actor: str, outcome: str, message: str) -> None:
        release = await self.store.release(action.app_key, action.version)
        await self.store.record(
            actor=actor,
            action="schedule",
            outcome=outcome,
            app=action.app_key,
            release=release,
            version=action.version,
            platform=action.platforms[0] if len(action.platforms) == 1 else None,
            message=message,
        )

    async def _announce(self, notice: Notice) -> None:
        for announcer in list(self.announcers):
            try:
                await announcer.notice(notice)
            except Exception:  # one broken way out must not silence the others
                log.exception("announcing a timed release failed")
