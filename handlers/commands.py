"""One command line in, one reply out: parsing, the use case, the rendering.

This is what every way in shares. The console prints ``Reply.text``; Slack (later) shows
errors only to the person who typed (``Reply.error``) and results to the channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import platforms
from handlers import render
from handlers.config import AppEntry
from handlers.grammar import Command, UsageError, help_text, parse
from handlers.releases import ActionResult, Actor, CommandRefused, ReleaseService
from handlers.roles import COMMAND_ROLES, Authorizer, Everyone

__all__ = ["Commands", "Reply"]


@dataclass(frozen=True)
class Reply:
    text: str
    error: bool = False  # usage help or a refusal: only for the person who typed
    result: ActionResult | None = None


class Commands:
    def __init__(self, service: ReleaseService, authorizer: Authorizer | None = None) -> None:
        self.service = service
        self.authorizer = authorizer or Everyone()

    async def handle(self, actor: Actor, text: str) -> Reply:
        try:
            command = parse(text, platforms.names())
        except UsageError as exc:
            usage = f"\nUsage: `{exc.usage}`" if exc.usage else ""
            return Reply(f"{exc.message}{usage}", error=True)
        try:
            refusal = await self._check(actor, command)
            if refusal is not None:
                return refusal
            return await self._run(actor, command)
        except CommandRefused as exc:
            return Reply(str(exc), error=True)

    async def may(self, actor: Actor, app: AppEntry, role: str) -> bool:
        return await self.authorizer.allows(actor, app, role)

    async def _visible(self, actor: Actor) -> list[AppEntry]:
        """The apps ``actor`` may view."""
        return [a for a in self.service.config.apps.values() if await self.may(actor, a, "view")]

    async def _check(self, actor: Actor, c: Command) -> Reply | None:
        """The refusal when ``actor`` lacks the role ``c`` needs (recorded in history)."""
        role = COMMAND_ROLES.get(c.name)
        if role is None or c.app is None:
            return None  # help, apps; status of every app filters per app
        app = self.service.app(c.app)
        if await self.may(actor, app, role):
            return None
        doing = ", ".join(n for n, r in COMMAND_ROLES.items() if r == role)
        message = f"needs the {role} role ({doing}) for {app.key}"
        await self.service.store.record(
            actor=actor.id,
            action=c.name,
            outcome="refused",
            app=app.key,
            version=c.version,
            platform=c.platforms[0] if len(c.platforms) == 1 else None,
            message=message,
        )
        return Reply(
            f"You need the *{role}* role for {app.key} to {doing}. "
            f"Ask someone who has it; roles are set in miniship.toml.",
            error=True,
        )

    async def _run(self, actor: Actor, c: Command) -> Reply:
        s = self.service
        if c.name == "help":
            return Reply(help_text(c.topic))
        if c.name == "apps":
            return Reply(render.apps(await self._visible(actor), s.emulated))
        if c.name == "status":
            keys = [c.app] if c.app is not None else [a.key for a in await self._visible(actor)]
            if not keys:
                raise CommandRefused("you may not view any app's releases")
            return Reply(render.status(await s.status(keys, c.platforms), s.emulated))
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
