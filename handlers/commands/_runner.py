"""One command line in, one reply out: the registry parses it, the role it declares is
checked, its module runs it. Every way in (console, Slack, scheduled jobs' buttons) calls
:meth:`Commands.handle`.

The console prints ``Reply.text``; Slack shows errors only to the person who typed
(``Reply.error``) and results on the card of the release the reply is ``about``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import platforms
from handlers.admin import Admin
from handlers.commands import _registry
from handlers.commands._kit import Context, Reply
from handlers.commands._words import UsageError
from handlers.config import AppEntry
from handlers.releases import Actor, CommandRefused, ReleaseService
from handlers.roles import Authorizer, Everyone
from handlers.timed import TimedReleases
from storage.models import utcnow

__all__ = ["Commands"]


class Commands:
    def __init__(
        self,
        service: ReleaseService,
        authorizer: Authorizer | None = None,
        *,
        timed: TimedReleases | None = None,
        admin: Admin | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.service = service
        self.authorizer = authorizer or Everyone()
        self.timed = timed
        self.admin = admin or Admin(service, None)
        self.clock = clock

    def context(self, actor: Actor, channel: str | None = None) -> Context:
        roles = {c.role for c in _registry.commands() if c.role}
        return Context(
            actor,
            channel,
            self.service,
            self.admin,
            self.authorizer,
            self.clock,
            self.timed,
            {role: _registry.doing(role) for role in roles},
        )

    async def handle(self, actor: Actor, text: str, channel: str | None = None) -> Reply:
        """Run ``text`` for ``actor``; ``channel`` is where it was typed (Slack), if anywhere."""
        try:
            parsed = _registry.parse(text, platforms.names())
        except UsageError as exc:
            usage = f"\nUsage: `{exc.usage}`" if exc.usage else ""
            return Reply(f"{exc.message}{usage}", error=True)
        context = self.context(actor, channel)
        command, args = parsed.command, parsed.args
        try:
            scope = args.scope()
            if command.role is not None and scope.app is not None:
                app = self.service.app(scope.app)
                refusal = await context.require(
                    app, command.role, command.name, scope.version, scope.platform
                )
                if refusal is not None:
                    return refusal
            return await command.execute(context, args)
        except CommandRefused as exc:
            return Reply(str(exc), error=True)

    async def may(self, actor: Actor, app: AppEntry, role: str) -> bool:
        return await self.authorizer.allows(actor, app, role)
