"""Changing what is live: rollback and offline. Both act on the version the platform says
is live (it may have been released outside miniship)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from handlers import policy
from handlers.config import AppEntry
from handlers.releases.core import ReleaseCore, explain, join
from handlers.releases.results import (
    ActionResult,
    Actor,
    CommandRefused,
    Outcome,
    PlatformResult,
)
from platforms.base import recording
from platforms.errors import ConfigError, PlatformError

__all__ = ["LiveActions"]

_DONE = {"rollback": "rolled back from {live}", "offline": "{live} taken offline"}


class LiveActions(ReleaseCore):
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

        return await self._on_live(actor, app, p, "rollback", None, back)

    async def offline(
        self, actor: Actor, app_key: str, platform: str, version: str | None
    ) -> ActionResult:
        """Take the live version off the shelves."""
        app = self.app(app_key)
        (p,) = self.platforms_for(app, [platform])
        adapter = self.adapters[p]
        if not adapter.offers("offline"):
            raise CommandRefused(adapter.unsupported("offline").explanation)

        async def take(live: str) -> str:
            return await adapter.offline(app.key, live)

        return await self._on_live(actor, app, p, "offline", version, take)

    async def _live_version(self, app: AppEntry, platform: str, version: str | None) -> str:
        live = (await self.adapters[platform].overview(app.key)).live_version
        if live is None:
            raise CommandRefused(f"nothing of {app.key} is live on {self.display(platform)}")
        if version is not None and version != live:
            raise CommandRefused(f"{version} is not live on {self.display(platform)}; {live} is")
        return live

    async def _on_live(
        self,
        actor: Actor,
        app: AppEntry,
        platform: str,
        action: str,
        version: str | None,
        change: Callable[[str], Awaitable[str]],
    ) -> ActionResult:
        """Run ``change`` on the live version (which the platform names); the stored
        release, if any, moves where the policy says ``action`` leaves it."""
        async with self.hold(app.key, [platform]):
            live: str | None = None
            with recording() as log:
                try:
                    live = await self._live_version(app, platform, version)
                    said: str | Exception = await change(live)
                except (PlatformError, ConfigError) as exc:
                    said = exc
            exchanges = [dataclasses.asdict(x) for x in log]
            shown = live or version or "live"
            release = await self.store.release(app.key, live) if live else None
            if isinstance(said, Exception):
                outcome, message = Outcome.FAILED, explain(said)
            else:
                outcome, message = Outcome.OK, join(_DONE[action].format(live=live), said)
                target = None
                if release is not None and release.id is not None:
                    target = await self.store.target(release.id, platform)
                if target is not None and policy.allows(action, target.state):
                    await self.settle(target, policy.AFTER[action], detail=said)
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
        state = policy.AFTER[action] if outcome is Outcome.OK and release is not None else None
        return ActionResult(action, app, shown, [PlatformResult(platform, outcome, message, state)])
