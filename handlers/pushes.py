"""Platform pushes: review results the moment a platform sends them.

    POST /push/wechat/auth       WeChat's authorization-event URL (component_verify_ticket)
    POST /push/wechat/{appid}    WeChat's message URL, configured as …/push/wechat/$APPID$
    POST /push/alipay            Alipay's application gateway (audit passed / rejected)
    GET  /connect/{platform}/{state}   where a platform's authorization page sends the admin
                                 back (``state``: the one-time token of the link)

The adapter verifies and parses each push (encrypted XML, RSA2-signed form). A push is
only a hint: miniship then asks the platform, exactly as the watcher does, and moves the
release with the same compare-and-set — so a push and a poll that report one change make
one update, whichever comes first. A push that does not verify is refused (401) and
recorded in the event log.
"""

from __future__ import annotations

import html
import logging

from aiohttp import web

from handlers.admin import Admin
from handlers.releases import Actor, CommandRefused, ReleaseService, explain
from platforms.errors import ConfigError, PlatformError
from platforms.push import PushEvent, PushRejected, PushRequest
from storage import LinkRefused

__all__ = ["PushReceiver"]

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024  # audit pushes are a few hundred bytes


class PushReceiver:
    def __init__(self, service: ReleaseService, admin: Admin | None = None) -> None:
        self.service = service
        self.admin = admin or Admin(service, None)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/push/{platform}", self.receive),
            web.post("/push/{platform}/auth", self.receive),
            web.post("/push/{platform}/{appid}", self.receive),
            web.get("/connect/{platform}/{state}", self.connected),
            web.get("/connect/{platform}", self.connected),  # a link without its state
        ]

    async def connected(self, request: web.Request) -> web.Response:
        """The admin confirmed (or not) on the platform's authorization page."""
        platform = request.match_info["platform"]
        if platform not in self.service.adapters:
            return _page(404, "Unknown platform", f"miniship does not serve {platform!r}.")
        try:
            grant = await self.admin.complete_connect(
                platform, request.match_info.get("state", ""), dict(request.query)
            )
        except LinkRefused as exc:
            log.warning("refused a %s authorization callback: %s", platform, exc)
            return _page(
                400,
                "Authorization link not accepted",
                f"{str(exc).capitalize()}. Each link from `connect <app> {platform}` works "
                "once and for a short while: ask for a new one.",
            )
        except (PlatformError, ConfigError) as exc:
            log.warning("a %s authorization did not complete: %s", platform, exc)
            return _page(
                400,
                "Authorization not completed",
                f"{explain(exc)} The link is used up: ask for a new one with "
                f"`connect <app> {platform}`.",
            )
        granted = ", ".join(grant.permission_names) or "no permission sets"
        who = grant.app or grant.platform_app_id
        return _page(200, "Authorized", f"miniship may now release {who} ({granted}).")

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.add_routes(self.routes())
        return app

    async def receive(self, request: web.Request) -> web.Response:
        platform = request.match_info["platform"]
        adapter = self.service.adapters.get(platform)
        if adapter is None:
            return web.Response(status=404, text=f"no platform {platform!r} here")
        push = PushRequest(
            path={k: v for k, v in request.match_info.items() if k != "platform"},
            query=dict(request.query),
            body=await request.read(),
            content_type=request.content_type,
        )
        try:
            events = await adapter.read_push(push)
        except PushRejected as exc:
            log.warning("refused a %s push: %s", platform, exc.reason)
            await self.service.store.record(
                actor=f"{platform} push",
                action="push",
                outcome="refused",
                platform=platform,
                message=f"refused a push: {exc.reason}",
            )
            return web.Response(status=401, text="rejected")
        except ConfigError as exc:
            log.error("cannot read %s pushes: %s", platform, exc)
            return web.Response(status=503, text="not configured for pushes")
        for event in events:
            await self.apply(platform, event)
        return web.Response(text="success")

    async def apply(self, platform: str, event: PushEvent) -> None:
        """Ask the platform about the releases the push is about (as the watcher would);
        an authorization added or withdrawn adds or retires the app."""
        if event.kind in ("authorized", "unauthorized"):
            book = self.admin.apps
            change = book.authorized if event.kind == "authorized" else book.unauthorized
            try:
                await change(platform, event.mini_program)
            except (PlatformError, ConfigError, CommandRefused) as exc:
                log.warning("could not take %s's %s: %s", event.mini_program, event.kind, exc)
            return
        if event.kind == "verify_ticket" or event.app is None:
            return  # the adapter keeps the ticket; an app we do not release is not ours
        for view in await self.service.store.watched():
            if (view.release.app_key, view.target.platform) != (event.app, platform):
                continue
            if event.version is not None and view.release.version != event.version:
                continue
            try:
                await self.service.refresh(view, Actor("push"))
            except (PlatformError, ConfigError) as exc:
                # the watcher's next round will try again
                log.warning(
                    "after a %s push, could not ask about %s %s: %s",
                    platform,
                    event.app,
                    view.release.version,
                    exc,
                )


def _page(status: int, title: str, text: str) -> web.Response:
    body = (
        f"<!doctype html><meta charset=utf-8><title>miniship — {html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
    )
    return web.Response(status=status, text=body, content_type="text/html")
