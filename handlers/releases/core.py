"""What every release use case shares: lookups, the per-(app, platform) locks, the
fan-out over platforms, settling a platform's answer in the state machine, and the
:class:`Step` that records one platform's outcome."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from handlers import policy
from handlers.config import AppEntry, MinishipConfig
from handlers.freezes import Freezes
from handlers.releases.results import (
    ActionResult,
    Actor,
    Change,
    CommandRefused,
    Outcome,
    PlatformResult,
)
from handlers.work import Work
from platforms import platform_class
from platforms.base import Platform, Quota, recording
from platforms.errors import ConfigError, PlatformError, PlatformUnavailable, QuotaExceeded
from storage import InvalidTransition, ReleaseState, StaleState, Store
from storage.models import Release, ReleaseTarget

__all__ = ["Listener", "ReleaseCore", "Step", "attempt", "explain", "join"]

log = logging.getLogger(__name__)
T = TypeVar("T")

Listener = Callable[[Change], Awaitable[None]]


class ReleaseCore:
    """One store and one adapter per platform, shared by the use cases.

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
        watch_concurrency: int = 16,
    ) -> None:
        self.store = store
        self.config = config
        self.adapters = dict(adapters)
        self.emulated = frozenset(emulated)
        self.work = Work()
        """What runs for people and platforms, let finish when the process stops."""
        self.watch_concurrency = watch_concurrency
        """Platform questions a watch round has in flight at once."""
        self.listeners: list[Listener] = []  # hear of every change the platforms report
        # run before each watch round: learn what other processes changed (apps added…)
        self.catch_up: list[Callable[[], Awaitable[None]]] = []
        # hear of every timed release a use case cancelled (its job is taken off the clock)
        self.timed_cancelled: list[Callable[[int], None]] = []
        self.freezes = Freezes(store, config.freezes)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        # (app, platform) → (when read, its quotas): what cards ask before offering buttons
        self._quotas_seen: dict[tuple[str, str], tuple[datetime, list[Quota]]] = {}

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

    async def step(
        self, actor: Actor, action: str, app_key: str, chosen: Sequence[str], version: str
    ) -> tuple[Step, list[str]]:
        """``action`` on an uploaded release, and the platforms it acts on."""
        app = self.app(app_key)
        names = self.platforms_for(app, chosen)
        return Step(self, actor, action, app, await self.release_of(app, version)), names

    async def refuse(
        self, actor: Actor, action: str, app: AppEntry, version: str, message: str
    ) -> ActionResult:
        """The whole command is refused before anything was tried (recorded)."""
        release = await self.store.release(app.key, version)
        await self.store.record(
            actor=actor.id,
            action=action,
            outcome=str(Outcome.REFUSED),
            app=app.key,
            release=release,
            version=version,
            message=message,
        )
        return ActionResult(action, app, version, refusal=message)

    async def release_of(self, app: AppEntry, version: str) -> Release:
        release = await self.store.release(app.key, version)
        if release is None:
            raise CommandRefused(
                f"{app.key} {version} was never uploaded; "
                f"`upload {app.key} {version} <notes>` first"
            )
        return release

    # -- shared steps ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def hold(self, app: str, platforms: Sequence[str]) -> AsyncIterator[None]:
        """Hold the locks of ``app`` on ``platforms`` (in a fixed order: no deadlock)."""
        async with contextlib.AsyncExitStack() as stack:
            for p in sorted(set(platforms)):
                await stack.enter_async_context(self._locks.setdefault((app, p), asyncio.Lock()))
            yield

    async def fan_out(
        self,
        step: Step,
        names: Sequence[str],
        one: Callable[[Step], Awaitable[PlatformResult]],
        *,
        locked: bool = True,
    ) -> ActionResult:
        """Run ``one`` for each platform concurrently, each under its lock (unless the
        caller holds them: ``locked=False``).

        An unexpected error on one platform is reported as that platform's result; it
        never hides what happened on the others.
        """

        async def run(p: str) -> PlatformResult:
            here = step.on(p)
            try:
                if not locked:
                    return await one(here)
                async with self.hold(step.app.key, [p]):
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

    async def settle(
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

    async def supersede(self, step: Step) -> str:
        """Mark older versions that ``step.action`` replaces superseded; the words to add
        to the reply."""
        states = policy.SUPERSEDES[step.action]
        older = await self.store.supersede(step.app.key, step.platform, step.release, states)
        if not older:
            return ""
        return f"; {', '.join(v.release.version for v in older)} superseded"


@dataclass(frozen=True)
class Step:
    """One command acting on one platform: what it reads, and where its outcome goes."""

    service: ReleaseCore
    actor: Actor
    action: str
    app: AppEntry
    release: Release
    platform: str = ""

    def on(self, platform: str) -> Step:
        return dataclasses.replace(self, platform=platform)

    @property
    def adapter(self) -> Platform:
        return self.service.adapters[self.platform]

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

    async def allowed(self, action: str | None = None) -> ReleaseTarget | PlatformResult:
        """The release on this platform, if the policy lets ``action`` (default: this
        step's) start from its state; else the refusal, recorded."""
        target = await self.uploaded()
        if isinstance(target, PlatformResult):
            return target
        why = policy.refusal(
            action or self.action,
            self.release.version,
            target.state,
            withdraws_decided=self.adapter.withdraws_decided,
        )
        return await self.refuse(why) if why else target

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
        state = ReleaseState(current.state) if current else None
        return PlatformResult(self.platform, outcome, message, state)

    async def ok(self, message: str, exchanges: Sequence[Mapping[str, Any]]) -> PlatformResult:
        return await self.record(Outcome.OK, message, exchanges)

    async def failed(
        self, error: Exception, exchanges: Sequence[Mapping[str, Any]]
    ) -> PlatformResult:
        result = await self.record(Outcome.FAILED, explain(error), exchanges)
        transient = isinstance(error, (PlatformUnavailable, QuotaExceeded))
        return dataclasses.replace(result, transient=transient)

    async def refuse(self, message: str) -> PlatformResult:
        return await self.record(Outcome.REFUSED, message)

    async def refuse_all(self, message: str) -> ActionResult:
        """The whole command is refused; nothing was tried on any platform."""
        return await self.service.refuse(
            self.actor, self.action, self.app, self.release.version, message
        )


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
        return f"recorded meanwhile as {policy.words(error.current.state)}; check `status`"
    return str(error)


def join(head: str, detail: str) -> str:
    """``head — detail``, or the detail alone when it already says the head's first word."""
    if not detail or detail in head:
        return head
    if detail.lower().startswith(head.split()[0]):
        return detail
    return f"{head} — {detail}"
