"""Platform pushes: review results the moment a platform sends them.

    POST /push/wechat/auth       WeChat's authorization-event URL (component_verify_ticket)
    POST /push/wechat/{appid}    WeChat's message URL, configured as …/push/wechat/$APPID$
    POST /push/alipay            Alipay's application gateway (audit passed / rejected)
    GET  /connect/{platform}/{state}   where a platform's authorization page sends the admin
                                 back (``state``: the one-time token of the link)
    GET  /connect/{platform}?state=…   the same, for a platform whose page takes the callback
                                 only as registered and carries the state itself (Alipay)

The adapter verifies and parses each push (encrypted XML, RSA2-signed form). A push is
only a hint: miniship then asks the platform, exactly as the watcher does, and moves the
release with the same compare-and-set — so a push and a poll that report one change make
one update, whichever comes first. A push that does not verify is refused (401) and
recorded in the event log.

Every route here takes at most :data:`MAX_BODY` bytes, on its own server or on Slack's
(413, and the rest of the body is never read). A genuine push sent again — by anyone who
saw it — must not make miniship ask the platform again: one dated outside the adapter's
push window (``PushStale``), or whose name (a digest of what the platform signed) is
already recorded, is answered ``success`` so the platform stops, and nothing is done.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from aiohttp import web

from handlers.admin import Admin
from handlers.releases import Actor, CommandRefused, ReleaseService, explain
from platforms.errors import ConfigError, PlatformError
from platforms.push import PushEvent, PushRejected, PushRequest, PushStale
from storage import LinkRefused

__all__ = ["PushReceiver"]

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024  # audit pushes are a few hundred bytes

PUSHES_REMEMBERED = timedelta(days=1)
"""How long a push's name is kept: well past ``PUSH_WINDOW`` + ``PUSH_SKEW``, after which
a replay is refused by its own date; a push that carries no date is told for this long."""

FORGET_EVERY = timedelta(hours=1)  # how often names older than that are let go

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PushReceiver:
    def __init__(self, service: ReleaseService, admin: Admin | None = None) -> None:
        self.service = service
        self.admin = admin or Admin(service, None)
        self._forgot_at: datetime | None = None

    def routes(self) -> list[web.RouteDef]:
        """The routes, each refusing a body over :data:`MAX_BODY` itself, so the limit
        holds on Slack's HTTP server (1 MiB for its own route) as on ours."""
        return [
            web.post("/push/{platform}", _limited(self.receive)),
            web.post("/push/{platform}/auth", _limited(self.receive)),
            web.post("/push/{platform}/{appid}", _limited(self.receive)),
            web.get("/connect/{platform}/{state}", _limited(self.connected)),
            web.get("/connect/{platform}", _limited(self.connected)),  # a link without its state
        ]

    async def connected(self, request: web.Request) -> web.Response:
        """The admin confirmed (or not) on the platform's authorization page."""
        platform = request.match_info["platform"]
        adapter = self.service.adapters.get(platform)
        if adapter is None:
            return _page(404, "Unknown platform", f"miniship does not serve {platform!r}.")
        state = request.match_info.get("state", "")
        if not state and adapter.state_in_query:
            state = adapter.link_state(request.query)
        again = f"connect {platform}" if adapter.connects_any else f"connect <app> {platform}"
        try:
            grant = await self.admin.complete_connect(platform, state, dict(request.query))
        except LinkRefused as exc:
            log.warning("refused a %s authorization callback: %s", platform, exc)
            return _page(
                400,
                "Authorization link not accepted",
                f"{str(exc).capitalize()}. Each link from `{again}` works once and for a "
                "short while: ask for a new one.",
            )
        except (PlatformError, ConfigError, CommandRefused) as exc:
            log.warning("a %s authorization did not complete: %s", platform, exc)
            return _page(
                400,
                "Authorization not completed",
                f"{explain(exc)} The link is used up: ask for a new one with `{again}`.",
            )
        granted = ", ".join(grant.permission_names) or "no permission sets"
        who = grant.app or grant.platform_app_id
        return _page(200, "Authorized", f"miniship may now release {who} ({granted}).")

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.add_routes(self.routes())
        return app

    async def receive(self, request: web.Request) -> web.Response:
        """A platform's push: acted on, and counted as running work (a stop lets it
        finish); while stopping, refused with 503 so the platform sends it again later
        (to another replica, or after the restart)."""
        work = self.service.work
        if work.stopping:
            return web.Response(status=503, text="stopping; send it again later")
        async with work.doing():
            return await self._receive(request)

    async def _receive(self, request: web.Request) -> web.Response:
        platform = request.match_info["platform"]
        adapter = self.service.adapters.get(platform)
        if adapter is None:
            return web.Response(status=404, text=f"no platform {platform!r} here")
        body = await _read(request, MAX_BODY)
        if body is None:
            return _too_large()
        push = PushRequest(
            path={k: v for k, v in request.match_info.items() if k != "platform"},
            query=dict(request.query),
            body=body,
            content_type=request.content_type,
        )
        try:
            events = await adapter.read_push(push)
        except PushStale as exc:
            log.info("ignored a push from %s sent again (nothing done): %s", platform, exc.reason)
            return web.Response(text="success")
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
        now = datetime.fromtimestamp(adapter.clock(), UTC)
        if not await self.first_time(platform, events, now):
            log.info("ignored a push from %s received before (a replay): nothing done", platform)
            return web.Response(text="success")
        for event in events:
            await self.apply(platform, event)
        return web.Response(text="success")

    async def first_time(self, platform: str, events: Sequence[PushEvent], now: datetime) -> bool:
        """Record the name of the push ``events`` came in; False when it was recorded
        before (in any process). Recorded before acting: two deliveries racing each other
        act once, and a push whose handling failed half-way is still read by the watcher.
        Names older than :data:`PUSHES_REMEMBERED` are let go at most every hour."""
        first = True
        for name in sorted({e.push_id for e in events if e.push_id}):
            first = (
                await self.service.store.first_delivery(f"push:{platform}:{name}", now) and first
            )
        if self._forgot_at is None or now - self._forgot_at >= FORGET_EVERY:
            self._forgot_at = now
            await self.service.store.forget_deliveries(now - PUSHES_REMEMBERED, "push:")
        return first

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


def _limited(handler: Handler) -> Handler:
    """``handler``, refusing at once a request that says its body is over :data:`MAX_BODY`."""

    async def limited(request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _too_large()
        return await handler(request)

    return limited


async def _read(request: web.Request, limit: int) -> bytes | None:
    """The request's body, or None as soon as more than ``limit`` bytes arrived (a body
    sent without a Content-Length): what is past the limit is never read."""
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _too_large() -> web.Response:
    response = web.Response(
        status=413, text=f"request body too large: at most {MAX_BODY // 1024} KiB"
    )
    response.force_close()  # the rest of the body is not read: the connection cannot go on
    return response


def _page(status: int, title: str, text: str) -> web.Response:
    body = (
        f"<!doctype html><meta charset=utf-8><title>miniship — {html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
    )
    return web.Response(status=status, text=body, content_type="text/html")
