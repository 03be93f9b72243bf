"""Keeping stored releases true to the platforms: ask, apply, announce.

The watcher's rounds, a push, ``status``, a publish and the timed-release checks all ask
through :meth:`Watcher.refresh`; what a platform's reading means is the policy's answer
(:func:`handlers.policy.reading`), applied here with compare-and-set, recorded, and
announced to the listeners (the console, Slack).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

from handlers import logs, policy, views
from handlers.config import AppEntry
from handlers.metrics import WATCH_ROUND
from handlers.releases.core import ReleaseCore, explain
from handlers.releases.results import Actor, AppStatus, Change, CommandRefused, PlatformStatus
from platforms.base import (
    Exchange,
    Overview,
    ReviewImage,
    ReviewStatus,
    VersionInfo,
    recording,
)
from platforms.errors import ConfigError, PlatformError
from storage import StaleState, TargetView
from storage.models import Release, ReleaseTarget, utcnow

__all__ = ["Watcher"]

log = logging.getLogger(__name__)


class Watcher(ReleaseCore):
    async def refresh_watched(self) -> list[Change]:
        """Ask the platforms about every watched release; apply and announce changes.

        Several questions are in flight at once (``watch_concurrency``,
        MINISHIP_WATCH_CONCURRENCY), so an agency with hundreds of mini programs in review
        is not asked one by one.
        """
        for catch_up in self.catch_up:
            await catch_up()
        started = time.perf_counter()
        views = await self.store.watched()
        found: list[Change | None] = [None] * len(views)
        queue = iter(enumerate(views))

        async def asker() -> None:
            # one of watch_concurrency askers taking the next release until none is left
            # (rather than a task per release waiting its turn: a round of thousands)
            for n, view in queue:
                try:
                    found[n] = await self._watch(view, Actor("watcher"))
                except (PlatformError, ConfigError) as exc:
                    log.warning(
                        "could not ask %s about %s %s: %s",
                        view.target.platform,
                        view.release.app_key,
                        view.release.version,
                        exc,
                    )

        await asyncio.gather(*(asker() for _ in range(min(self.watch_concurrency, len(views)))))
        WATCH_ROUND.observe(time.perf_counter() - started)
        return [c for c in found if c is not None]

    async def reconcile_live(self) -> list[Change]:
        """Check what each platform has live against the newest release miniship recorded
        as live there: a rollback or an offline done in a platform's own console moves the
        stored release too (an offline: every release recorded as live there), announced
        as a change made outside miniship."""
        recorded: dict[tuple[str, str], list[TargetView]] = {}
        for view in await self.store.in_states(policy.LIVE):
            recorded.setdefault((view.release.app_key, view.target.platform), []).append(view)
        gate = asyncio.Semaphore(self.watch_concurrency)

        async def check(views: list[TargetView]) -> list[Change]:
            views.sort(key=lambda v: v.release.id or 0, reverse=True)  # newest first
            async with gate:
                try:
                    return await self._reconcile(views)
                except (PlatformError, ConfigError) as exc:
                    where = views[0].target.platform
                    log.warning("could not ask %s what is live: %s", where, exc)
                    return []

        found = await asyncio.gather(*(check(v) for v in recorded.values()))
        return [c for changes in found for c in changes]

    async def _reconcile(self, views: list[TargetView]) -> list[Change]:
        newest = views[0]
        app = self.config.app(newest.release.app_key)
        adapter = self.adapters.get(newest.target.platform)
        if app is None or adapter is None:
            return []
        with recording() as exchanges:
            live = await adapter.live_version(app.key)
        moved = policy.live_moved(newest.release.version, live, app.version_prefix)
        if moved is None:
            return []
        where = adapter.display_name
        said = f"{where} has {live} live" if live else f"nothing is live on {where}"
        changes = []
        for view in views if live is None else views[:1]:
            try:
                await self.store.transition(view.target, moved, detail=said)
            except StaleState:
                continue  # miniship itself moved it meanwhile
            change = Change(
                app, view.release.version, view.target.platform, view.state, moved, said, True
            )
            await self.store.record(
                actor=f"{view.target.platform} (seen by watcher)",
                action="review",
                outcome="changed",
                app=app.key,
                release=view.release,
                platform=view.target.platform,
                message=f"{view.state} → {moved} (changed outside miniship): {said}",
                exchanges=[dataclasses.asdict(x) for x in exchanges],
            )
            await self._announce(change)
            changes.append(change)
        return changes

    async def refresh(
        self, view: TargetView, actor: Actor, *, abandoned: bool = False
    ) -> Change | None:
        """Bring one stored release up to date with its platform; ``abandoned``: a publish
        claim on it is known to be held by no one (its holder stopped), so the platform's
        word settles it at once.

        Raises PlatformError when the platform cannot be asked.
        """
        async with self.hold(view.release.app_key, [view.target.platform]):
            fresh = await self.store.target(view.target.release_id, view.target.platform)
            if fresh is None:
                return None
            return await self._refresh(TargetView(fresh, view.release), actor, abandoned)

    async def _watch(self, view: TargetView, actor: Actor) -> Change | None:
        """:meth:`refresh` for a round: the platform is asked without the app's lock or a
        fresh read, and nothing more is done when its answer changes nothing (most
        questions of a round); a change is applied under the lock, to the stored state
        read again — asked again first if that moved meanwhile."""
        asked = await self._ask(view)
        if asked is None:
            return None
        app, status, exchanges = asked
        said = policy.reading(
            view.state, status.state, claimed_at=view.target.updated_at, now=utcnow()
        )
        if not said.moves:
            return None
        async with self.hold(app.key, [view.target.platform]):
            fresh = await self.store.target(view.target.release_id, view.target.platform)
            if fresh is None:
                return None
            now = TargetView(fresh, view.release)
            if fresh.state != view.target.state:
                return await self._refresh(now, actor)
            return await self._apply(app, now, status, actor, exchanges)

    async def fresh(self, release: Release, target: ReleaseTarget) -> ReleaseTarget:
        """``target`` after asking its platform, when a review may have been decided (the
        caller holds the lock)."""
        if not policy.pending_review(target.state):
            return target
        try:
            await self._refresh(TargetView(target, release), Actor("publish"))
        except (PlatformError, ConfigError):
            return target
        return await self.store.target(target.release_id, target.platform) or target

    async def _refresh(
        self, view: TargetView, actor: Actor, abandoned: bool = False
    ) -> Change | None:
        asked = await self._ask(view)
        if asked is None:
            return None
        app, status, exchanges = asked
        return await self._apply(app, view, status, actor, exchanges, abandoned)

    async def _ask(self, view: TargetView) -> tuple[AppEntry, ReviewStatus, list[Exchange]] | None:
        """The platform's word on ``view`` (with the exchanges that carried it, made into
        plain data only when the word changes something); None for an app or platform no
        longer configured."""
        app = self.config.app(view.release.app_key)
        adapter = self.adapters.get(view.target.platform)
        if app is None or adapter is None:
            return None
        with (
            logs.about(app=app.key, platform=view.target.platform, release=view.release.version),
            recording() as exchanges,
        ):
            status = await adapter.review_status(
                app.key, view.release.version, view.target.platform_ref
            )
        return app, status, exchanges

    async def _apply(
        self,
        app: AppEntry,
        view: TargetView,
        status: ReviewStatus,
        actor: Actor,
        exchanges: list[Exchange],
        abandoned: bool = False,
    ) -> Change | None:
        current = view.state
        said = policy.reading(
            current,
            status.state,
            claimed_at=view.target.updated_at,
            now=utcnow(),
            abandoned=abandoned,
        )
        if not said.moves or said.wanted is None:
            return None
        wanted = said.wanted
        steps = said.steps
        if steps is None:
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
            for state in steps:
                changes: dict[str, Any] = {"detail": status.detail}
                if policy.shows_reason(state):
                    changes["review_reason"] = status.reason
                if policy.decided(state) and status.decided_at is not None:
                    changes["decided_at"] = status.decided_at
                target = await self.store.transition(target, state, **changes)
        except StaleState:
            return None  # another process recorded it first
        change = Change(
            app,
            view.release.version,
            view.target.platform,
            current,
            wanted,
            status.reason,
            said.outside,
        )
        message = f"{current} → {wanted}"
        if said.interrupted_publish:
            message += " (an interrupted publish did not happen; publish again when ready)"
        elif said.outside:
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
            exchanges=[dataclasses.asdict(x) for x in exchanges],
        )
        await self._announce(change)
        return change

    async def evidence(self, change: Change) -> list[ReviewImage]:
        """The screenshots a rejection came with, as the platform gives them ([] when it
        gives none, or cannot be asked: the reason is said either way)."""
        if not policy.has_evidence(change.new):
            return []
        app, version = change.app.key, change.version
        release = await self.store.release(app, version)
        target = None
        if release is not None and release.id is not None:
            target = await self.store.target(release.id, change.platform)
        adapter = self.adapters.get(change.platform)
        if target is None or adapter is None or not adapter.offers("review_images"):
            return []
        try:
            return await adapter.review_images(app, version, target.platform_ref)
        except (PlatformError, ConfigError) as exc:
            log.warning("no screenshots of %s %s's rejection: %s", app, version, exc)
            return []

    async def _announce(self, change: Change) -> None:
        for listener in list(self.listeners):
            try:
                await listener(change)
            except Exception:  # a broken listener must not stop the others
                log.exception("review-change listener failed")

    # -- status, history ---------------------------------------------------------------

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
            holds = await self.freezes.active(app.key, app.timezone, utcnow())
            out.append(AppStatus(app, list(found), holds))
        return out

    async def _platform_status(
        self, app: AppEntry, platform: str, versions: bool = False
    ) -> PlatformStatus:
        for view in await self.store.latest(app.key):
            if view.target.platform == platform and policy.watched(view.state):
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
        mine = [v for v in await self.store.latest(app.key) if v.target.platform == platform]
        return PlatformStatus(platform, overview, error, views.lines(mine), kept)

    async def history(
        self, app_key: str, limit: int = 30
    ) -> tuple[AppEntry, list[views.EventView]]:
        app = self.app(app_key)
        return app, [views.event(e) for e in await self.store.history(app.key, limit)]
