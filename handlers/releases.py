"""The release use cases: upload, submit, expedite, withdraw, publish, gray, rollback,
offline, status and history.

They are the same whichever way a command arrives (console, Slack, a scheduled job).
Each use case checks the stored state first, calls the platforms (concurrently when a
command covers several), moves the state machine with compare-and-set, and writes one
event per platform with the platform's answer. Results are plain data; turning them
into text or Slack blocks is ``render``'s job.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from handlers.config import AppEntry, MinishipConfig
from platforms import platform_class
from platforms.base import (
    BEIJING,
    Overview,
    Platform,
    Quota,
    ReviewState,
    ReviewStatus,
    TrialCode,
    VersionInfo,
    recording,
)
from platforms.errors import ConfigError, OutcomeUnknown, PlatformError, Unsupported
from storage import InvalidTransition, ReleaseState, StaleState, Store, TargetExists, TargetView
from storage.models import Event, Release, ReleaseTarget, utcnow
from storage.states import ACTIVE, TRANSITIONS

__all__ = [
    "ActionResult",
    "Actor",
    "AppStatus",
    "Change",
    "CommandRefused",
    "Outcome",
    "PlatformResult",
    "PlatformStatus",
    "ReleaseService",
    "attempt",
    "explain",
]

log = logging.getLogger(__name__)
S = ReleaseState
T = TypeVar("T")


@dataclass(frozen=True)
class Actor:
    """Who asked: a Slack user id, ``console:<user>``, ``scheduler``…"""

    id: str
    name: str = ""

    def __str__(self) -> str:
        return self.name or self.id


class CommandRefused(Exception):
    """The command cannot be carried out as asked (unknown app, platform not configured…)."""


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"  # the platform (or the connection to it) said no
    REFUSED = "refused"  # miniship did not try: the state does not allow it


@dataclass(frozen=True)
class PlatformResult:
    platform: str
    outcome: Outcome
    message: str
    state: ReleaseState | None = None
    image: TrialCode | None = None  # the trial version's QR code (upload, qr)


@dataclass(frozen=True)
class ActionResult:
    action: str
    app: AppEntry
    version: str
    results: list[PlatformResult] = field(default_factory=list)
    refusal: str = ""  # the whole command was refused, nothing was tried

    @property
    def ok(self) -> bool:
        return not self.refusal and all(r.outcome is Outcome.OK for r in self.results)


@dataclass(frozen=True)
class Change:
    """A review outcome (or another change) learned from a platform."""

    app: AppEntry
    version: str
    platform: str
    old: ReleaseState
    new: ReleaseState
    reason: str = ""
    outside: bool = False  # done in the platform's own console, not through miniship


@dataclass(frozen=True)
class PlatformStatus:
    platform: str
    overview: Overview | None
    error: str
    releases: list[TargetView]
    versions: list[VersionInfo] = field(default_factory=list)  # asked for one app only


@dataclass(frozen=True)
class AppStatus:
    app: AppEntry
    platforms: list[PlatformStatus]


# what the platform's word means for the stored state
_FROM_REVIEW: dict[ReviewState, ReleaseState] = {
    ReviewState.IN_REVIEW: S.IN_REVIEW,
    ReviewState.DELAYED: S.DELAYED,
    ReviewState.APPROVED: S.APPROVED,
    ReviewState.GRAY: S.GRAY,
    ReviewState.REJECTED: S.REJECTED,
    ReviewState.WITHDRAWN: S.WITHDRAWN,
    ReviewState.RELEASED: S.RELEASED,
}
# changes only a person makes: if miniship did not make them, they were made elsewhere
_BY_PEOPLE = frozenset({S.WITHDRAWN, S.RELEASED, S.GRAY})
# where a version can be pulled back from review (Alipay also from approved: back to development)
_WITHDRAWABLE = (S.IN_REVIEW, S.DELAYED, S.APPROVED)
_SUBMITTABLE = frozenset(s for s in S if S.IN_REVIEW in TRANSITIONS[s])

Listener = Callable[[Change], Awaitable[None]]

# a publish claim older than this is abandoned (its process died or was stopped mid-call);
# the watcher then settles the release from what the platform says
CLAIM_TIMEOUT = timedelta(minutes=5)
WATCH_CONCURRENCY = 8  # platform questions the watcher has in flight at once


class ReleaseService:
    """The use cases, over one store and one adapter per platform.

    Within one process, everything that changes a release on a platform (a command, the
    watcher) holds that (app, platform)'s lock, so an upload cannot slip between a
    submit's check and its call. Across processes the compare-and-set in the store is
    what keeps two writers apart.
    """

    def __init__(
        self,
        store: Store,
        config: MinishipConfig,
        adapters: Mapping[str, Platform],
        *,
        emulated: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.config = config
        self.adapters = dict(adapters)
        self.emulated = frozenset(emulated)
        self.listeners: list[Listener] = []
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    # -- lookups ------------------------------------------------------------------------

    def app(self, key: str) -> AppEntry:
        entry = self.config.app(key)
        if entry is None:
            known = ", ".join(self.config.apps) or "none"
            raise CommandRefused(f"unknown app `{key}`; configured apps: {known}")
        return entry

    def display(self, platform: str) -> str:
        return platform_class(platform).display_name

    def platforms_for(self, app: AppEntry, chosen: Sequence[str]) -> list[str]:
        """The platforms a command acts on: the chosen one, or all the app is on."""
        if not chosen:
            return [p for p in self.adapters if p in app.platforms]
        for p in chosen:
            if p not in app.platforms:
                raise CommandRefused(
                    f"{app.key} is not on {self.display(p)} (no [apps.{app.key}.{p}])"
                )
            if p not in self.adapters:
                raise CommandRefused(f"{self.display(p)} is not connected in this miniship")
        return list(chosen)

    @contextlib.asynccontextmanager
    async def _hold(self, app: str, platforms: Sequence[str]) -> AsyncIterator[None]:
        """Hold the locks of ``app`` on ``platforms`` (in a fixed order: no deadlock)."""
        async with contextlib.AsyncExitStack() as stack:
            for p in sorted(set(platforms)):
                await stack.enter_async_context(self._locks.setdefault((app, p), asyncio.Lock()))
            yield

    # -- upload, submit, withdraw -------------------------------------------------------

    async def upload(
        self,
        actor: Actor,
        app_key: str,
        chosen: Sequence[str],
        version: str,
        notes: str,
        template: str | None = None,
    ) -> ActionResult:
        app = self.app(app_key)
        names = self.platforms_for(app, chosen)
        release = await self.store.ensure_release(app.key, version, notes, actor.id)
        step = Step(self, actor, "upload", app, release)
        return await self._fan_out(step, names, lambda one: self._upload(one, template))

    async def submit(
        self,
        actor: Actor,
        app_key: str,
        chosen: Sequence[str],
        version: str,
        expedite: bool = False,
    ) -> ActionResult:
        app = self.app(app_key)
        names = self.platforms_for(app, chosen)
        release = await self._release(app, version)
        step = Step(self, actor, "submit", app, release)
        return await self._fan_out(step, names, lambda one: self._submit(one, expedite))

    async def expedite(
        self, actor: Actor, app_key: str, chosen: Sequence[str], version: str
    ) -> ActionResult:
        app = self.app(app_key)
        names = self.platforms_for(app, chosen)
        release = await self._release(app, version)
        step = Step(self, actor, "expedite", app, release)
        return await self._fan_out(step, names, self._expedite)

    async def trial_code(
        self, actor: Actor, app_key: str, chosen: Sequence[str], version: str | None
    ) -> ActionResult:
        """The trial version's QR code on each platform (default: the newest upload)."""
        app = self.app(app_key)
        names = self.platforms_for(app, chosen)
        if version is None:
            views = [v for v in await self.store.latest(app.key, 1) if v.target.platform in names]
            if not views:
                raise CommandRefused(f"nothing of {app.key} was uploaded yet")
            version = views[0].release.version
        release = await self._release(app, version)
        return await self._fan_out(Step(self, actor, "qr", app, release), names, self._qr)

    async def withdraw(
        self, actor: Actor, app_key: str, chosen: Sequence[str], version: str
    ) -> ActionResult:
        app = self.app(app_key)
        names = self.platforms_for(app, chosen)
        release = await self._release(app, version)
        step = Step(self, actor, "withdraw", app, release)
        return await self._fan_out(step, names, self._withdraw)

    async def _upload(self, step: Step, template: str | None) -> PlatformResult:
        release = step.release
        existing = await step.target()
        if existing is not None:
            return await step.refuse(
                f"{release.version} is already uploaded ({_words(existing.state)}); "
                "upload a new version instead"
            )
        adapter = self.adapters[step.platform]
        answer, exchanges = await attempt(
            adapter.upload(step.app.key, release.version, release.notes, template=template)
        )
        if isinstance(answer, Exception):
            return await step.failed(answer, exchanges)
        try:
            await self.store.add_target(release, step.platform, detail=answer.detail)
        except TargetExists as exc:
            return await step.refuse(
                f"{release.version} was uploaded meanwhile ({_words(exc.current.state)})"
            )
        message = _join("uploaded", answer.detail)
        if adapter.single_trial_version:  # the platform no longer holds older uploads
            message += await self._supersede(step, [S.UPLOADED, S.REJECTED, S.WITHDRAWN])
        code, more = await attempt(adapter.trial_code(step.app.key, release.version))
        if isinstance(code, Unsupported):
            return await step.ok(message, exchanges + more)
        if isinstance(code, Exception):
            message += f"; no trial QR code: {explain(code)} (try `qr {step.app.key}` later)"
            return await step.ok(message, exchanges + more)
        return dataclasses.replace(await step.ok(message, exchanges + more), image=code)

    async def _qr(self, step: Step) -> PlatformResult:
        target = await step.uploaded()
        if isinstance(target, PlatformResult):
            return target
        code, exchanges = await attempt(
            self.adapters[step.platform].trial_code(step.app.key, step.release.version)
        )
        if isinstance(code, Exception):
            return await step.failed(code, exchanges)
        result = await step.ok(_join("trial version QR code", code.detail), exchanges)
        return dataclasses.replace(result, image=code)

    async def _submit(self, step: Step, expedite: bool) -> PlatformResult:
        ready = await self._ready(
            step,
            _SUBMITTABLE,
            "; only an uploaded, rejected or withdrawn version can be submitted",
        )
        if isinstance(ready, PlatformResult):
            return ready
        target, left = ready
        answer, exchanges = await attempt(
            self.adapters[step.platform].submit(
                step.app.key, step.release.version, step.release.notes, expedite=expedite
            )
        )
        if isinstance(answer, Exception):
            return await step.failed(answer, exchanges)
        moved = await self._settle(
            target, S.IN_REVIEW, platform_ref=answer.ref, detail=answer.detail
        )
        if isinstance(moved, Exception):
            return await step.failed(moved, exchanges)
        message = _join("submitted for review", answer.detail) + left
        # a new review replaces older unpublished decisions on the platform
        message += await self._supersede(step, [S.APPROVED, S.REJECTED])
        return await step.ok(message, exchanges)

    async def _expedite(self, step: Step) -> PlatformResult:
        ready = await self._ready(
            step, (S.IN_REVIEW, S.DELAYED), ", not in review; only a review can be expedited"
        )
        if isinstance(ready, PlatformResult):
            return ready
        target, left = ready
        answer, exchanges = await attempt(
            self.adapters[step.platform].expedite(
                step.app.key, step.release.version, target.platform_ref
            )
        )
        if isinstance(answer, Exception):
            return await step.failed(answer, exchanges)
        return await step.ok(_join("expedited review requested", answer) + left, exchanges)

    async def _withdraw(self, step: Step) -> PlatformResult:
        ready = await self._ready(step, _WITHDRAWABLE, ", not in review; nothing to withdraw")
        if isinstance(ready, PlatformResult):
            return ready
        target, left = ready
        answer, exchanges = await attempt(
            self.adapters[step.platform].withdraw(
                step.app.key, step.release.version, target.platform_ref
            )
        )
        if isinstance(answer, Exception):
            return await step.failed(answer, exchanges)
        moved = await self._settle(target, S.WITHDRAWN, detail=answer)
        if isinstance(moved, Exception):
            return await step.failed(moved, exchanges)
        head = "withdrawn from review" if target.state != S.APPROVED else "back to development"
        return await step.ok(_join(head, answer) + left, exchanges)

    async def _ready(
        self, step: Step, allowed: Collection[ReleaseState], otherwise: str
    ) -> tuple[ReleaseTarget, str] | PlatformResult:
        """The release on this platform, in one of the ``allowed`` states, and the words on
        the quota this action uses (``step.action``) — or the refusal, saying ``otherwise``
        after its state."""
        target = await step.uploaded()
        if isinstance(target, PlatformResult):
            return target
        if target.state not in allowed:
            return await step.refuse(f"{step.release.version} is {_words(target.state)}{otherwise}")
        left = await self._within_quota(step, step.action)
        if isinstance(left, PlatformResult):
            return left
        return target, left

    # -- quotas ---------------------------------------------------------------------------

    async def quotas(self, app: AppEntry, platform: str) -> list[Quota]:
        """The platform's limits for ``app``, with the ones it cannot report counted here
        (successful actions in miniship's event log since the period began, Beijing time)."""
        found = await self.adapters[platform].quotas(app.key)
        out: list[Quota] = []
        for q in found:
            if q.counted_here and q.limit is not None:
                used = await self.store.count_events(
                    app.key, platform, q.action, _period_start(q.period, utcnow())
                )
                q = dataclasses.replace(q, remaining=max(q.limit - used, 0))
            out.append(q)
        return out

    async def _within_quota(self, step: Step, action: str) -> str | PlatformResult:
        """Words on what is left of ``action``'s quotas, or the refusal when one is spent.

        A platform that cannot be asked does not stop the action: the platform itself
        still refuses it when its quota is spent.
        """
        try:
            quotas = [q for q in await self.quotas(step.app, step.platform) if q.action == action]
        except (PlatformError, ConfigError) as exc:
            log.warning("quotas of %s on %s unknown: %s", step.app.key, step.platform, exc)
            return ""
        spent = [q for q in quotas if q.spent]
        if spent:
            return await step.refuse(
                f"no {spent[0].what} left ({_quota_words(spent[0])}); "
                + _QUOTA_NEXT.get(action, "")
            )
        # said once the action succeeded, so what is left after it
        after = [
            dataclasses.replace(q, remaining=q.remaining - 1)
            for q in quotas
            if q.remaining is not None
        ]
        return f" ({'; '.join(map(_quota_words, after))})" if after else ""

    async def _supersede(self, step: Step, states: Sequence[ReleaseState]) -> str:
        """Mark older versions in ``states`` superseded; the words to add to the reply."""
        older = await self.store.supersede(step.app.key, step.platform, step.release, states)
        if not older:
            return ""
        return f"; {', '.join(v.release.version for v in older)} superseded"

    # -- publish --------------------------------------------------------------------------

    async def publish(
        self, actor: Actor, app_key: str, chosen: Sequence[str], version: str
    ) -> ActionResult:
        """Publish on each chosen platform; with several, only if every one is approved.

        Every platform is claimed (approved → publishing, compare-and-set) before any is
        called, so a publish of several platforms is all or nothing up to the calls.
        """
        app = self.app(app_key)
        names = self.platforms_for(app, chosen)
        release = await self._release(app, version)
        step = Step(self, actor, "publish", app, release)
        async with self._hold(app.key, names):
            targets: dict[str, ReleaseTarget] = {}
            for p in names:
                target = await step.on(p).uploaded()
                if isinstance(target, PlatformResult):
                    if len(names) == 1:
                        return ActionResult("publish", app, version, [target])
                    return await step.refuse_all(
                        f"Nothing published: {version} was never uploaded to "
                        f"{self.display(p)}. Name a platform to publish on one alone."
                    )
                targets[p] = await self._fresh(release, target)  # decisions not yet seen
            not_ready = {p: t for p, t in targets.items() if t.state not in _PUBLISHABLE}
            if not_ready and len(names) > 1:
                ready = [self.display(p) for p in targets if p not in not_ready]
                waiting = "; ".join(
                    f"{self.display(p)} is {_words(t.state)}" for p, t in not_ready.items()
                )
                text = f"Nothing published: {waiting}."
                if ready:
                    text += f" {', '.join(ready)} is approved; name it to publish there alone."
                return await step.refuse_all(text)
            if not_ready:
                ((p, t),) = not_ready.items()
                refused = await step.on(p).refuse(
                    f"{version} is {_words(t.state)}; only an approved version can be published"
                )
                return ActionResult("publish", app, version, [refused])
            claims = await self._claim(targets)
            if isinstance(claims, str):
                return await step.refuse_all(claims)
            return await self._fan_out(
                step,
                list(claims),
                lambda one: self._publish_claimed(
                    one, claims[one.platform], S(targets[one.platform].state)
                ),
                locked=False,  # this method holds the locks already
            )

    async def _claim(self, targets: Mapping[str, ReleaseTarget]) -> dict[str, ReleaseTarget] | str:
        """Claim every target for publishing, or none (returns why not)."""
        claims: dict[str, ReleaseTarget] = {}
        for p, target in targets.items():
            try:
                claims[p] = await self.store.transition(target, S.PUBLISHING)
            except StaleState as exc:
                for taken in claims.values():
                    with contextlib.suppress(StaleState):
                        await self.store.transition(taken, S.APPROVED)
                return (
                    f"Nothing published: somebody else acted first on {self.display(p)} "
                    f"(it is now {_words(exc.current.state)})."
                )
        return claims

    async def _publish_claimed(
        self, step: Step, claim: ReleaseTarget, before: ReleaseState
    ) -> PlatformResult:
        answer, exchanges = await attempt(
            self.adapters[step.platform].publish(
                step.app.key, step.release.version, claim.platform_ref
            )
        )
        if isinstance(answer, OutcomeUnknown):
            # keep the claim: the watcher asks the platform and settles it
            return await step.record(
                Outcome.FAILED,
                f"{explain(answer)} — miniship could not tell whether it was published; "
                "it will ask the platform and report the outcome",
                exchanges,
            )
        if isinstance(answer, Exception):
            await self._settle(claim, before, detail=str(answer))
            return await step.failed(answer, exchanges)
        moved = await self._settle(claim, S.RELEASED, detail=answer)
        if isinstance(moved, Exception):
            return await step.failed(moved, exchanges)
        return await step.ok(_join("published", answer), exchanges)

    # -- staged release, rollback, offline --------------------------------------------------

    async def gray(
        self,
        actor: Actor,
        app_key: str,
        platform: str,
        version: str | None,
        share: int | None,
    ) -> ActionResult:
        """Release ``version`` (default: the approved or staged one) to ``share`` percent
        of users, or stop its staged release when ``share`` is ``None``."""
        app = self.app(app_key)
        (p,) = self.platforms_for(app, [platform])
        if version is None:
            wanted = (S.GRAY,) if share is None else (S.GRAY, S.APPROVED)
            views = [
                v
                for v in await self.store.latest(app.key)
                if v.target.platform == p and v.state in wanted
            ]
            if not views:
                what = "in a staged release" if share is None else "approved"
                raise CommandRefused(f"no version of {app.key} is {what} on {self.display(p)}")
            version = views[0].release.version
        release = await self._release(app, version)
        step = Step(self, actor, "gray", app, release)
        return await self._fan_out(step, [p], lambda one: self._gray(one, share))

    async def _gray(self, step: Step, share: int | None) -> PlatformResult:
        target = await step.uploaded()
        if isinstance(target, PlatformResult):
            return target
        adapter = self.adapters[step.platform]
        app, version = step.app.key, step.release.version
        if share is None:
            if target.state != S.GRAY:
                return await step.refuse(f"{version} is {_words(target.state)}, not staged")
            answer, exchanges = await attempt(adapter.stop_gray(app, version))
            goal, said, after = S.APPROVED, "staged release stopped", ""
        else:
            if target.state not in (S.APPROVED, S.GRAY):
                return await step.refuse(
                    f"{version} is {_words(target.state)}; only an approved version can be "
                    "released to a share of users"
                )
            steps = adapter.gray_steps
            if steps is not None and share not in steps:
                allowed = ", ".join(f"p{n}" for n in steps)
                return await step.refuse(f"{adapter.display_name} stages releases at {allowed}")
            answer, exchanges = await attempt(adapter.gray(app, version, share))
            goal, said = S.GRAY, f"released to {share}% of users"
            after = (
                f" — next: `publish {app} {step.platform} {version}` for everyone, or "
                f"`gray {app} {step.platform} stop`"
            )
        if isinstance(answer, Exception):
            return await step.failed(answer, exchanges)
        said = answer or said  # the platform's adapter says what happened in its terms
        moved = await self._settle(target, goal, detail=said)
        if isinstance(moved, Exception):
            return await step.failed(moved, exchanges)
        return await step.ok(said + after, exchanges)

    async def rollback(
        self, actor: Actor, app_key: str, platform: str, to: str | None
    ) -> ActionResult:
        """Put the version before the live one (or ``to``) back in place."""
        app = self.app(app_key)
        (p,) = self.platforms_for(app, [platform])
        adapter = self.adapters[p]

        async def back(live: str) -> str:
            if to == live:
                raise CommandRefused(f"{to} is already live on {self.display(p)}")
            said = await adapter.rollback(app.key, live, to)
            offered = [v.version for v in await adapter.versions(app.key) if v.rollback]
            if offered:
                said += f"; versions you can go back to now: {', '.join(offered)}"
            return said

        return await self._on_live(actor, app, p, "rollback", None, back, S.ROLLED_BACK)

    async def offline(
        self, actor: Actor, app_key: str, platform: str, version: str | None
    ) -> ActionResult:
        """Take the live version off the shelves."""
        app = self.app(app_key)
        (p,) = self.platforms_for(app, [platform])
        adapter = self.adapters[p]
        if type(adapter).offline is Platform.offline:
            raise CommandRefused(adapter.unsupported("offline").explanation)

        async def take(live: str) -> str:
            return await adapter.offline(app.key, live)

        return await self._on_live(actor, app, p, "offline", version, take, S.OFFLINE)

    async def _on_live(
        self,
        actor: Actor,
        app: AppEntry,
        platform: str,
        action: str,
        version: str | None,
        change: Callable[[str], Awaitable[str]],
        after: ReleaseState,
    ) -> ActionResult:
        """Run ``change`` on the live version (which the platform names, since it may have
        been released outside miniship); the stored release, if any, moves to ``after``."""
        adapter = self.adapters[platform]
        async with self._hold(app.key, [platform]):
            live: str | None = None
            with recording() as log:
                try:
                    live = (await adapter.overview(app.key)).live_version
                    if live is None:
                        raise CommandRefused(
                            f"nothing of {app.key} is live on {self.display(platform)}"
                        )
                    if version is not None and version != live:
                        raise CommandRefused(
                            f"{version} is not live on {self.display(platform)}; {live} is"
                        )
                    said: str | Exception = await change(live)
                except (PlatformError, ConfigError) as exc:
                    said = exc
            exchanges = [dataclasses.asdict(x) for x in log]
            shown = live or version or "live"
            release = await self.store.release(app.key, live) if live else None
            if isinstance(said, Exception):
                outcome, message = Outcome.FAILED, explain(said)
            else:
                outcome, message = Outcome.OK, _join(_DONE[action].format(live=live), said)
                target = None
                if release is not None and release.id is not None:
                    target = await self.store.target(release.id, platform)
                if target is not None and target.state == S.RELEASED:
                    await self._settle(target, after, detail=said)
            await self.store.record(
                actor=actor.id,
                action=action,
                outcome=str(outcome),
                app=app.key,
                release=release,
                version=shown,
                platform=platform,
                message=message,
                exchanges=exchanges,
            )
        state = after if outcome is Outcome.OK and release is not None else None
        return ActionResult(action, app, shown, [PlatformResult(platform, outcome, message, state)])

    # -- status, history, watching ---------------------------------------------------------

    async def status(self, app_keys: Sequence[str], chosen: Sequence[str]) -> list[AppStatus]:
        """Ask the platforms now, and return that with what is stored.

        One app: its chosen platforms (an error if it is not on them). Several: each on
        the chosen platforms it is on.
        """
        if len(app_keys) == 1:
            app = self.app(app_keys[0])
            wanted = [(app, self.platforms_for(app, chosen))]
        else:
            wanted = []
            for app in (self.app(k) for k in app_keys):
                names = [p for p in (chosen or self.adapters) if p in app.platforms]
                if names:
                    wanted.append((app, [p for p in names if p in self.adapters]))
            if not wanted:
                raise CommandRefused("no configured app is on that platform")
        out: list[AppStatus] = []
        for app, names in wanted:
            one = len(wanted) == 1
            found = await asyncio.gather(*(self._platform_status(app, p, one) for p in names))
            out.append(AppStatus(app, list(found)))
        return out

    async def _platform_status(
        self, app: AppEntry, platform: str, versions: bool = False
    ) -> PlatformStatus:
        for view in await self.store.latest(app.key):
            if view.target.platform == platform and view.state in ACTIVE:
                # on failure, the overview below reports the platform's trouble
                with contextlib.suppress(PlatformError, ConfigError):
                    await self.refresh(view, Actor("status"))
        overview: Overview | None = None
        kept: list[VersionInfo] = []
        error = ""
        try:
            overview = await self.adapters[platform].overview(app.key)
            if versions:
                kept = await self.adapters[platform].versions(app.key)
        except (PlatformError, ConfigError) as exc:
            error = explain(exc)
        releases = [v for v in await self.store.latest(app.key) if v.target.platform == platform]
        return PlatformStatus(platform, overview, error, releases, kept)

    async def history(self, app_key: str, limit: int = 30) -> tuple[AppEntry, list[Event]]:
        app = self.app(app_key)
        return app, await self.store.history(app.key, limit)

    async def refresh_watched(self) -> list[Change]:
        """Ask the platforms about every watched release; apply and announce changes.

        A few questions are in flight at once (``WATCH_CONCURRENCY``), so an agency with
        hundreds of mini programs in review is not asked one by one.
        """
        gate = asyncio.Semaphore(WATCH_CONCURRENCY)

        async def ask(view: TargetView) -> Change | None:
            async with gate:
                try:
                    return await self.refresh(view, Actor("watcher"))
                except (PlatformError, ConfigError) as exc:
                    log.warning(
                        "could not ask %s about %s %s: %s",
                        view.target.platform,
                        view.release.app_key,
                        view.release.version,
                        exc,
                    )
                    return None

        found = await asyncio.gather(*(ask(v) for v in await self.store.watched()))
        return [c for c in found if c is not None]

    async def refresh(self, view: TargetView, actor: Actor) -> Change | None:
        """Bring one stored release up to date with its platform.

        Raises PlatformError when the platform cannot be asked.
        """
        async with self._hold(view.release.app_key, [view.target.platform]):
            fresh = await self.store.target(view.target.release_id, view.target.platform)
            if fresh is None:
                return None
            return await self._refresh(TargetView(fresh, view.release), actor)

    async def _refresh(self, view: TargetView, actor: Actor) -> Change | None:
        app = self.config.app(view.release.app_key)
        adapter = self.adapters.get(view.target.platform)
        if app is None or adapter is None:
            return None
        with recording() as exchanges:
            status = await adapter.review_status(
                app.key, view.release.version, view.target.platform_ref
            )
        return await self._apply(
            app, view, status, actor, [dataclasses.asdict(x) for x in exchanges]
        )

    async def _apply(
        self,
        app: AppEntry,
        view: TargetView,
        status: ReviewStatus,
        actor: Actor,
        exchanges: list[dict[str, Any]],
    ) -> Change | None:
        current = view.state
        wanted = _FROM_REVIEW.get(status.state)
        if status.state is ReviewState.NOT_SUBMITTED and current in (S.IN_REVIEW, S.DELAYED):
            wanted = S.WITHDRAWN
        if current is S.PUBLISHING and not _ends_claim(wanted, view.target):
            return None  # a publisher holds the claim and will settle the state
        if wanted is None or wanted == current:
            return None
        path = _path(current, wanted)
        if path is None:
            log.warning(
                "%s %s on %s: platform says %s, stored %s; left as is",
                app.key,
                view.release.version,
                view.target.platform,
                wanted,
                current,
            )
            return None
        target = view.target
        try:
            for state in path:
                changes: dict[str, Any] = {"detail": status.detail}
                if state in (S.REJECTED, S.DELAYED):
                    changes["review_reason"] = status.reason
                if state in (S.APPROVED, S.REJECTED) and status.decided_at is not None:
                    changes["decided_at"] = status.decided_at
                target = await self.store.transition(target, state, **changes)
        except StaleState:
            return None  # another process recorded it first
        outside = wanted in _BY_PEOPLE and current is not S.PUBLISHING
        change = Change(
            app,
            view.release.version,
            view.target.platform,
            current,
            wanted,
            status.reason,
            outside,
        )
        message = f"{current} → {wanted}"
        if current is S.PUBLISHING and wanted is S.APPROVED:
            message += " (an interrupted publish did not happen; publish again when ready)"
        elif outside:
            message += " (changed outside miniship)"
        if status.reason:
            message += f": {status.reason}"
        await self.store.record(
            actor=f"{view.target.platform} (seen by {actor})",
            action="review",
            outcome="changed",
            app=app.key,
            release=view.release,
            platform=view.target.platform,
            message=message,
            exchanges=exchanges,
        )
        for listener in list(self.listeners):
            try:
                await listener(change)
            except Exception:  # a broken listener must not stop the others
                log.exception("review-change listener failed")
        return change

    async def _fresh(self, release: Release, target: ReleaseTarget) -> ReleaseTarget:
        """``target`` after asking its platform, when a review may have been decided."""
        if target.state not in (S.IN_REVIEW, S.DELAYED):
            return target
        try:
            await self._refresh(TargetView(target, release), Actor("publish"))
        except (PlatformError, ConfigError):
            return target
        return await self.store.target(target.release_id, target.platform) or target

    # -- shared steps ---------------------------------------------------------------------

    async def _fan_out(
        self,
        step: Step,
        names: Sequence[str],
        one: Callable[[Step], Awaitable[PlatformResult]],
        *,
        locked: bool = True,
    ) -> ActionResult:
        """Run ``one`` for each platform concurrently, each under its lock.

        An unexpected error on one platform is reported as that platform's result; it
        never hides what happened on the others.
        """

        async def run(p: str) -> PlatformResult:
            here = step.on(p)
            try:
                if not locked:
                    return await one(here)
                async with self._hold(step.app.key, [p]):
                    return await one(here)
            except Exception:
                log.exception(
                    "%s of %s %s on %s failed", step.action, step.app.key, step.release.version, p
                )
                return await here.record(
                    Outcome.FAILED,
                    "something unexpected went wrong (details in the log); its outcome is "
                    "unknown: check `status`",
                )

        results = await asyncio.gather(*(run(p) for p in names))
        return ActionResult(step.action, step.app, step.release.version, list(results))

    async def _settle(
        self, target: ReleaseTarget, to: ReleaseState, **changes: Any
    ) -> ReleaseTarget | Exception:
        """Record the platform's answer; fine if someone (the watcher) recorded it first."""
        try:
            return await self.store.transition(target, to, **changes)
        except StaleState as exc:
            if exc.current.state == to:
                return exc.current
            return exc
        except InvalidTransition as exc:
            return exc

    async def _release(self, app: AppEntry, version: str) -> Release:
        release = await self.store.release(app.key, version)
        if release is None:
            raise CommandRefused(
                f"{app.key} {version} was never uploaded; "
                f"`upload {app.key} {version} <notes>` first"
            )
        return release


@dataclass(frozen=True)
class Step:
    """One command acting on one platform: what it reads, and where its outcome goes."""

    service: ReleaseService
    actor: Actor
    action: str
    app: AppEntry
    release: Release
    platform: str = ""

    def on(self, platform: str) -> Step:
        return dataclasses.replace(self, platform=platform)

    async def target(self) -> ReleaseTarget | None:
        assert self.release.id is not None
        return await self.service.store.target(self.release.id, self.platform)

    async def uploaded(self) -> ReleaseTarget | PlatformResult:
        """The release on this platform, or the refusal saying it was never uploaded."""
        target = await self.target()
        if target is None:
            return await self.refuse(
                f"{self.release.version} was never uploaded to "
                f"{self.service.display(self.platform)}"
            )
        return target

    async def record(
        self, outcome: Outcome, message: str, exchanges: Sequence[Mapping[str, Any]] = ()
    ) -> PlatformResult:
        """Write the event; the result carries the state as it is now."""
        await self.service.store.record(
            actor=self.actor.id,
            action=self.action,
            outcome=str(outcome),
            app=self.app.key,
            release=self.release,
            platform=self.platform,
            message=message,
            exchanges=exchanges,
        )
        current = await self.target()
        state = S(current.state) if current else None
        return PlatformResult(self.platform, outcome, message, state)

    async def ok(self, message: str, exchanges: Sequence[Mapping[str, Any]]) -> PlatformResult:
        return await self.record(Outcome.OK, message, exchanges)

    async def failed(
        self, error: Exception, exchanges: Sequence[Mapping[str, Any]]
    ) -> PlatformResult:
        return await self.record(Outcome.FAILED, explain(error), exchanges)

    async def refuse(self, message: str) -> PlatformResult:
        return await self.record(Outcome.REFUSED, message)

    async def refuse_all(self, message: str) -> ActionResult:
        """The whole command is refused; nothing was tried on any platform."""
        await self.service.store.record(
            actor=self.actor.id,
            action=self.action,
            outcome=str(Outcome.REFUSED),
            app=self.app.key,
            release=self.release,
            message=message,
        )
        return ActionResult(self.action, self.app, self.release.version, refusal=message)


async def attempt(call: Awaitable[T]) -> tuple[T | Exception, list[dict[str, Any]]]:
    """Await a platform call; its answer or error, and the exchanges it made."""
    with recording() as exchanges:
        try:
            answer: T | Exception = await call
        except (PlatformError, ConfigError) as exc:
            answer = exc
    return answer, [dataclasses.asdict(x) for x in exchanges]


def explain(error: Exception) -> str:
    if isinstance(error, PlatformError):
        name = platform_class(error.platform).display_name
        said = error.describe()
        return said if said.startswith(name) else f"{name} {said}"
    if isinstance(error, StaleState):
        return f"recorded meanwhile as {_words(error.current.state)}; check `status`"
    return str(error)


def _join(head: str, detail: str) -> str:
    """``head — detail``, or the detail alone when it already says the head's first word."""
    if not detail or detail in head:
        return head
    if detail.lower().startswith(head.split()[0]):
        return detail
    return f"{head} — {detail}"


def _ends_claim(wanted: ReleaseState | None, claim: ReleaseTarget) -> bool:
    """Whether the platform's word settles a publish claim: the version is live, or it is
    still approved (or staged) and the claim was abandoned (its process stopped mid-call)."""
    if wanted is S.RELEASED:
        return True
    return wanted in _PUBLISHABLE and utcnow() - claim.updated_at >= CLAIM_TIMEOUT


_PUBLISHABLE = (S.APPROVED, S.GRAY)

_DONE = {"rollback": "rolled back from {live}", "offline": "{live} taken offline"}

_QUOTA_NEXT = {
    "submit": "the quota is the third-party platform's, shared by every mini program it "
    "runs; it renews on the 1st (Beijing time) — ask WeChat for more in the "
    "“小程序服务商助手” mini program.",
    "expedite": "submit without expediting, or wait for next month's allocation.",
    "withdraw": "the version stays in review; WeChat allows 5 withdrawals a day and 10 a "
    "month per mini program.",
}


def _quota_words(q: Quota) -> str:
    if q.limit is None:
        return f"{q.remaining} {q.what} left"
    return f"{q.remaining} of {q.limit} {q.what} left"


def _period_start(period: str, now: datetime) -> datetime:
    """The start (aware UTC) of the Beijing day or month ``now`` falls in."""
    local = now.astimezone(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "month":
        local = local.replace(day=1)
    return local.astimezone(now.tzinfo)


def _words(state: str) -> str:
    return state.replace("_", " ")


def _path(start: ReleaseState, goal: ReleaseState) -> list[ReleaseState] | None:
    """The shortest way through the state machine, never passing through a claim."""
    seen = {start}
    queue: deque[tuple[ReleaseState, list[ReleaseState]]] = deque([(start, [])])
    while queue:
        state, path = queue.popleft()
        for nxt in TRANSITIONS[state]:
            if nxt in seen or (nxt is S.PUBLISHING and nxt is not goal):
                continue
            if nxt is goal:
                return [*path, nxt]
            seen.add(nxt)
            queue.append((nxt, [*path, nxt]))
    return None
