"""The platform account's own business: templates, authorizations, quotas, and which apps
miniship releases (:mod:`handlers.apps`).

These act on a third-party platform as a whole (its template library) or on the link
between it and a mini program (``connect``), not on one release; the release use cases
are in :mod:`handlers.releases`. Every change is written to the event log like a release
command's.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from handlers.apps import AppBook
from handlers.config import AppEntry
from handlers.listeners import tell
from handlers.releases import Actor, CommandRefused, ReleaseService, attempt, explain
from handlers.views import AppAccess, PlatformQuotas, TemplateList
from platforms.base import Authorization
from platforms.errors import ConfigError, PlatformError, Unsupported
from storage import LinkRefused

__all__ = ["Admin"]

AUTHORIZATION_TIMEOUT = 10.0  # seconds `apps` waits for each platform's answer
LINK_LIFETIME = timedelta(minutes=40)
"""How long an authorization link's callback is accepted: WeChat's pre-auth code lives up
to 30 minutes (600 s in its examples; people are told 10) and the code it sends back 10
more. The platform's own expiry decides first; this bounds what miniship keeps."""


Granted = Callable[[Authorization], Awaitable[None]]


class Admin:
    """Templates, authorizations and quotas.

    ``public_url`` is where the platform's authorization page sends the admin back to
    (``/connect/<platform>`` on the push port); it may be set once that port is known.
    ``listeners`` hear of every completed authorization.
    """

    def __init__(
        self, service: ReleaseService, public_url: str | None, apps: AppBook | None = None
    ) -> None:
        self.service = service
        self.public_url = public_url.rstrip("/") if public_url else None
        self.listeners: list[Granted] = []
        self.apps = apps or AppBook.of(service)
        """Which apps miniship releases: added, changed, tagged, removed."""

    def _with_templates(self, chosen: Sequence[str]) -> list[str]:
        names = list(chosen) or list(self.service.adapters)
        for p in chosen:
            if p not in self.service.adapters:
                raise CommandRefused(f"{self.service.display(p)} is not connected in this miniship")
        return names

    async def templates(self, chosen: Sequence[str]) -> list[TemplateList]:
        out: list[TemplateList] = []
        for p in self._with_templates(chosen):
            try:
                out.append(TemplateList(p, await self.service.adapters[p].templates()))
            except Unsupported:
                if chosen:
                    raise CommandRefused(
                        f"{self.service.display(p)} has no template library"
                    ) from None
            except (PlatformError, ConfigError) as exc:
                out.append(TemplateList(p, [], explain(exc)))
        if not out:
            raise CommandRefused("no connected platform has a template library")
        return out

    async def change_template(self, actor: Actor, verb: str, item: str) -> str:
        """``template add <draft>`` / ``template delete <template>`` on the platform that
        keeps templates. Returns the reply."""
        holders = [p for p, a in self.service.adapters.items() if a.offers("templates")]
        if not holders:
            raise CommandRefused("no connected platform has a template library")
        p = holders[0]
        adapter = self.service.adapters[p]
        call = adapter.add_template(item) if verb == "add" else adapter.delete_template(item)
        said, exchanges = await attempt(call)
        ok = not isinstance(said, Exception)
        message = said if isinstance(said, str) else explain(said)
        outcome = "ok" if ok else "failed"
        await self._record(
            actor, f"template {verb}", outcome, None, p, f"{item}: {message}", exchanges
        )
        return message if ok else f"Not done: {message}"

    async def quotas(self, app: AppEntry, chosen: Sequence[str]) -> list[PlatformQuotas]:
        out: list[PlatformQuotas] = []
        for p in self.service.platforms_for(app, chosen):
            try:
                out.append(PlatformQuotas(p, await self.service.quotas(app, p)))
            except (PlatformError, ConfigError) as exc:
                out.append(PlatformQuotas(p, [], explain(exc)))
        return out

    # -- authorization -----------------------------------------------------------------

    async def redirect_uri(self, actor: Actor, platform: str, app: str) -> str:
        """Where the platform's authorization page sends the admin back: the callback with
        a one-time ``state`` that names the app ("": any mini program; the callback trusts
        nothing else). The state is a path segment, so the platform can add its query
        however it joins one — or, for a platform that takes the callback only as
        registered (``state_in_query``), the ``state`` query parameter, which its adapter
        moves into the link."""
        if self.public_url is None:
            raise CommandRefused(
                "miniship has no public address for the authorization page to send the admin "
                "back to: set MINISHIP_PUBLIC_URL (e.g. https://miniship.example.com, the "
                "address that reaches its push port) and register its host as the "
                "platform's authorization callback domain"
            )
        state = await self.service.store.open_connect(platform, app, actor.id, LINK_LIFETIME)
        if self.service.adapters[platform].state_in_query:
            return f"{self.public_url}/connect/{platform}?{urlencode({'state': state})}"
        return f"{self.public_url}/connect/{platform}/{state}"

    async def connect(self, actor: Actor, app: AppEntry | None, platform: str) -> str:
        """The link ``app``'s admin opens to authorize the platform; with no ``app``, the
        link any mini program's admin opens, which makes it an app (``connects_any``)."""
        if app is not None:
            (p,) = self.service.platforms_for(app, [platform])
        elif platform not in self.service.adapters:
            raise CommandRefused(f"{self.service.display(platform)} is not connected here")
        elif not self.service.adapters[platform].connects_any:
            raise CommandRefused(
                f"a {self.service.display(platform)} authorization link names its app: "
                f"`connect <app> {platform}` (mini programs that authorize the platform on "
                f"their own are added by `apps sync {platform}` and its pushes)"
            )
        else:
            p = platform
        key = app.key if app is not None else ""
        adapter = self.service.adapters[p]
        redirect = await self.redirect_uri(actor, p, key)
        link, exchanges = await attempt(adapter.connect_link(key, redirect))
        if isinstance(link, Exception):
            await self._record(actor, "connect", "failed", key or None, p, explain(link), exchanges)
            if isinstance(link, Unsupported):
                raise CommandRefused(link.explanation) from None
            raise CommandRefused(explain(link)) from None
        said = "authorization link made" + ("" if key else " (for any mini program)")
        await self._record(actor, "connect", "ok", key or None, p, said, exchanges)
        return link

    async def complete_connect(
        self, platform: str, state: str, query: Mapping[str, str]
    ) -> Authorization:
        """The admin came back from the platform's authorization page: keep the grant.

        ``state`` must be a link miniship made for ``platform``, unused and not expired; it
        says which app the grant is for (none: the mini program the grant names becomes an
        app, as :meth:`AppBook.authorized` adds one, or stays the app it is). ``query`` is
        what the platform added (its code).

        Raises:
            LinkRefused: the state is missing, unknown, used or expired (recorded).
            PlatformError/ConfigError: the platform does not confirm the grant.
            CommandRefused: the grant is kept but its mini program cannot be an app.
        """
        adapter = self.service.adapters.get(platform)
        if adapter is None:
            raise CommandRefused(f"no platform {platform!r} here")
        page = Actor(f"{platform} (authorization page)")
        try:
            request = await self.service.store.take_connect(platform, state)
        except LinkRefused as refused:
            await self._record(page, "authorized", "refused", None, platform, str(refused), [])
            raise
        app = request.app_key
        grant, exchanges = await attempt(adapter.complete_connect(app, query))
        if isinstance(grant, Exception):
            await self._record(
                page, "authorized", "failed", app or None, platform, explain(grant), exchanges
            )
            raise grant
        grant = dataclasses.replace(grant, platform=platform)
        granted = ", ".join(grant.permission_names) or "no permission sets"
        message = (
            f"{grant.platform_app_id} authorized: {granted} (link from {request.requested_by})"
        )
        if not app:  # a link for any mini program: the one that authorized is an app now
            try:
                await self.apps.refresh()  # an app another process added meanwhile counts
                await self.apps.authorized(platform, grant.platform_app_id, page.id)
            except (PlatformError, ConfigError, CommandRefused) as exc:
                said = f"{message}; kept, but not added as an app: {explain(exc)}"
                await self._record(page, "authorized", "failed", None, platform, said, exchanges)
                raise
            app = self.apps.key_of(platform, grant.platform_app_id) or ""
            grant = dataclasses.replace(grant, app=app or None)
        elif grant.app != app:
            message += f"; the link was made for {app}, which has another app id"
        await self._record(page, "authorized", "ok", app or None, platform, message, exchanges)
        await tell(self.listeners, grant, "authorization listener failed")
        return grant

    async def access(self, apps: Sequence[AppEntry]) -> list[AppAccess]:
        """Which apps authorized their platforms, asked of every platform at once."""

        async def one(app: AppEntry, p: str) -> tuple[Authorization | None, str]:
            try:
                async with asyncio.timeout(AUTHORIZATION_TIMEOUT):
                    return await self.service.adapters[p].authorization(app.key), ""
            except (PlatformError, ConfigError) as exc:
                return None, explain(exc)
            except TimeoutError:
                return None, f"{self.service.display(p)} did not answer"

        pairs = [(a, p) for a in apps for p in a.platforms if p in self.service.adapters]
        found = await asyncio.gather(*(one(a, p) for a, p in pairs))
        out = {a.key: AppAccess(a, {}, {}) for a in apps}
        for (a, p), (grant, error) in zip(pairs, found, strict=True):
            out[a.key].grants[p] = grant
            if error:
                out[a.key].errors[p] = error
        return list(out.values())

    async def _record(
        self,
        actor: Actor,
        action: str,
        outcome: str,
        app: str | None,
        platform: str,
        message: str,
        exchanges: list[dict[str, Any]],
    ) -> None:
        await self.service.store.record(
            actor=actor.id,
            action=action,
            outcome=outcome,
            app=app,
            platform=platform,
            message=message,
            exchanges=exchanges,
        )
