"""One command line in, one reply out: parsing, the use case, the rendering.

This is what every way in shares. The console prints ``Reply.text``; Slack (later) shows
errors only to the person who typed (``Reply.error``) and results to the channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import platforms
from handlers import render
from handlers.grammar import Command, UsageError, help_text, parse
from handlers.releases import ActionResult, Actor, CommandRefused, ReleaseService

__all__ = ["Commands", "Reply"]


@dataclass(frozen=True)
class Reply:
    text: str
    error: bool = False  # usage help or a refusal: only for the person who typed
    result: ActionResult | None = None


class Commands:
    def __init__(self, service: ReleaseService) -> None:
        self.service = service

    async def handle(self, actor: Actor, text: str) -> Reply:
        try:
            command = parse(text, platforms.names())
        except UsageError as exc:
            usage = f"\nUsage: `{exc.usage}`" if exc.usage else ""
            return Reply(f"{exc.message}{usage}", error=True)
        try:
            return await self._run(actor, command)
        except CommandRefused as exc:
            return Reply(str(exc), error=True)

    async def _run(self, actor: Actor, c: Command) -> Reply:
        s = self.service
        if c.name == "help":
            return Reply(help_text(c.topic))
        if c.name == "apps":
            return Reply(render.apps(s.config, s.emulated))
        if c.name == "status":
            return Reply(render.status(await s.status(c.app, c.platforms), s.emulated))
        if c.name == "history":
            assert c.app is not None
            app, events = await s.history(c.app)
            return Reply(render.history(app.key, app.timezone, events))
        assert c.app is not None and c.version is not None
        if c.name == "upload":
            res = await s.upload(actor, c.app, c.platforms, c.version, c.notes)
        elif c.name == "submit":
            res = await s.submit(actor, c.app, c.platforms, c.version)
        elif c.name == "publish":
            res = await s.publish(actor, c.app, c.platforms, c.version)
        elif c.name == "withdraw":
            res = await s.withdraw(actor, c.app, c.platforms, c.version)
        else:  # pragma: no cover - the grammar knows no other commands
            raise CommandRefused(f"`{c.name}` is not handled")
        return Reply(render.result(res), error=bool(res.refusal), result=res)
