"""One command line in, one reply out: parsing, the use case, the rendering.

This is what every way in shares. The console prints ``Reply.text``; Slack shows errors
only to the person who typed (``Reply.error``) and results on the card of the release
the reply is ``about``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import platforms
from handlers import render
from handlers.admin import Admin
from handlers.config import AppEntry
from handlers.grammar import Command, UsageError, help_text, parse
from handlers.releases import ActionResult, Actor, CommandRefused, ReleaseService
from handlers.roles import COMMAND_ROLES, Authorizer, Everyone
from handlers.timed import NO_SCHEDULER, TimedReleases
from handlers.when import WhenError, parse_when
from platforms import platform_class
from platforms.base import TrialCode
from storage.models import utcnow

__all__ = ["Commands", "Picture", "Reply"]


@dataclass(frozen=True)
class Picture:
    """An image that goes with a reply: a trial version's QR code."""

    title: str  # "shop 1.2.0 on WeChat — trial version"
    filename: str  # "shop-1.2.0-wechat-trial.jpg"
    code: TrialCode


@dataclass(frozen=True)
class Reply:
    text: str
    error: bool = False  # usage help or a refusal: only for the person who typed
    about: tuple[str, str] | None = None  # (app, version) whose release card shows it
    pictures: tuple[Picture, ...] = ()
    private: bool = False  # for the person who typed only (an authorization link)


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

    async def handle(self, actor: Actor, text: str, channel: str | None = None) -> Reply:
        """Run ``text`` for ``actor``; ``channel`` is where it was typed (Slack), if anywhere."""
        try:
            command = parse(text, platforms.names())
        except UsageError as exc:
            usage = f"\nUsage: `{exc.usage}`" if exc.usage else ""
            return Reply(f"{exc.message}{usage}", error=True)
        try:
            refusal = await self._check(actor, command)
            if refusal is not None:
                return refusal
            return await self._run(actor, command, channel)
        except CommandRefused as exc:
            return Reply(str(exc), error=True)

    async def may(self, actor: Actor, app: AppEntry, role: str) -> bool:
        return await self.authorizer.allows(actor, app, role)

    async def _visible(self, actor: Actor) -> list[AppEntry]:
        """The apps ``actor`` may view."""
        return [a for a in self.service.config.apps.values() if await self.may(actor, a, "view")]

    async def _check(self, actor: Actor, c: Command) -> Reply | None:
        """The refusal when ``actor`` lacks the role ``c`` needs (recorded in history)."""
        if c.name == "template":  # the library serves every app on the platform
            for app in self.service.config.apps.values():
                refusal = await self._require(actor, app, "release", f"template {c.verb}")
                if refusal is not None:
                    return refusal
            return None
        role = COMMAND_ROLES.get(c.name)
        if role is None or c.app is None:
            return None  # help, apps; status of every app filters per app; schedule cancel
        platform = c.platforms[0] if len(c.platforms) == 1 else None
        return await self._require(
            actor, self.service.app(c.app), role, c.name, c.version, platform
        )

    async def _require(
        self,
        actor: Actor,
        app: AppEntry,
        role: str,
        action: str,
        version: str | None = None,
        platform: str | None = None,
    ) -> Reply | None:
        if await self.may(actor, app, role):
            return None
        doing = ", ".join(n for n, r in COMMAND_ROLES.items() if r == role)
        message = f"needs the {role} role ({doing}) for {app.key}"
        await self.service.store.record(
            actor=actor.id,
            action=action,
            outcome="refused",
            app=app.key,
            version=version,
            platform=platform,
            message=message,
        )
        return Reply(
            f"You need the *{role}* role for {app.key} to {doing}. "
            f"Ask someone who has it; roles are set in miniship.toml.",
            error=True,
        )

    async def _run(self, actor: Actor, c: Command, channel: str | None) -> Reply:
        s = self.service
        if c.name == "help":
            return Reply(help_text(c.topic))
        if c.name == "apps":
            visible = await self._visible(actor)
            return Reply(render.apps(await self.admin.access(visible), s.emulated))
        if c.name == "templates":
            if not await self._visible(actor):
                raise CommandRefused("you may not view any app")
            return Reply(render.templates(await self.admin.templates(c.platforms)))
        if c.name == "template":
            assert c.verb is not None and c.item is not None
            return Reply(await self.admin.change_template(actor, c.verb, c.item))
        if c.name == "status":
            keys = [c.app] if c.app is not None else [a.key for a in await self._visible(actor)]
            if not keys:
                raise CommandRefused("you may not view any app's releases")
            return Reply(render.status(await s.status(keys, c.platforms), s.emulated))
        if c.name == "history":
            assert c.app is not None
            app, events = await s.history(c.app)
            return Reply(render.history(app.key, app.timezone, events))
        if c.name == "schedule":
            return await self._schedule(actor, c)
        assert c.app is not None
        if c.name == "quota":
            app = s.app(c.app)
            return Reply(render.quotas(app.key, await self.admin.quotas(app, c.platforms)))
        if c.name == "connect":
            link = await self.admin.connect(actor, s.app(c.app), c.platforms[0])
            return Reply(render.connect_link(c.app, c.platforms[0], link), private=True)
        if c.name in ("gray", "rollback", "offline", "qr"):
            return self._result(await self._live(actor, c))
        assert c.version is not None
        if c.name == "publish" and c.when is not None:
            return await self._publish_later(actor, c, channel)
        if c.name == "upload":
            res = await s.upload(actor, c.app, c.platforms, c.version, c.notes, c.template)
        elif c.name == "submit":
            res = await s.submit(actor, c.app, c.platforms, c.version, c.expedite)
        elif c.name == "expedite":
            res = await s.expedite(actor, c.app, c.platforms, c.version)
        elif c.name == "publish":
            res = await s.publish(actor, c.app, c.platforms, c.version)
        elif c.name == "withdraw":
            res = await s.withdraw(actor, c.app, c.platforms, c.version)
        else:  # pragma: no cover - the grammar knows no other commands
            raise CommandRefused(f"`{c.name}` is not handled")
        return self._result(res)

    async def _live(self, actor: Actor, c: Command) -> ActionResult:
        s = self.service
        assert c.app is not None
        if c.name == "qr":
            return await s.trial_code(actor, c.app, c.platforms, c.version)
        platform = c.platforms[0]
        if c.name == "gray":
            return await s.gray(actor, c.app, platform, c.version, None if c.stop else c.share)
        if c.name == "rollback":
            return await s.rollback(actor, c.app, platform, c.to)
        return await s.offline(actor, c.app, platform, c.version)

    @staticmethod
    def _result(res: ActionResult) -> Reply:
        pictures = tuple(
            Picture(
                f"{res.app.key} {res.version} on "
                f"{platform_class(r.platform).display_name} — trial version",
                f"{res.app.key}-{res.version}-{r.platform}-trial.{r.image.extension}",
                r.image,
            )
            for r in res.results
            if r.image is not None
        )
        return Reply(
            render.result(res),
            error=bool(res.refusal),
            about=(res.app.key, res.version),
            pictures=pictures,
        )

    def _timed(self) -> TimedReleases:
        if self.timed is None:
            raise CommandRefused(NO_SCHEDULER)
        return self.timed

    async def _publish_later(self, actor: Actor, c: Command, channel: str | None) -> Reply:
        assert c.app is not None and c.version is not None and c.when is not None
        timed = self._timed()
        app = self.service.app(c.app)
        try:
            due = parse_when(c.when, self.clock(), app.timezone)
        except WhenError as exc:
            return Reply(f"{exc} (times are in {app.timezone.key})", error=True)
        done = await timed.schedule_publish(actor, app.key, c.platforms, c.version, due, channel)
        return Reply(render.scheduled(done), about=(app.key, c.version))

    async def _schedule(self, actor: Actor, c: Command) -> Reply:
        timed = self._timed()
        zones = {k: a.timezone for k, a in self.service.config.apps.items()}
        if c.action_id is None:
            keys = [c.app] if c.app is not None else [a.key for a in await self._visible(actor)]
            return Reply(render.schedule(await timed.pending(keys), zones))
        action = await timed.action(c.action_id)
        app = self.service.app(action.app_key)
        if not await self.may(actor, app, "view"):  # as if it did not exist
            raise CommandRefused(f"there is no timed release #{c.action_id}")
        refusal = await self._require(actor, app, "publish", "schedule cancel", action.version)
        if refusal is not None:
            return refusal
        await timed.cancel(actor, c.action_id)
        return Reply(
            f"Cancelled timed release #{action.id} ({action.app_key} {action.version} at "
            f"{render.moment(action.due_at, app.timezone)}); nothing will be published then.",
            about=(action.app_key, action.version),
        )
