"""What a command module is made of: its declaration (:class:`Command`), the context it
runs in (:class:`Context`) and what it answers (:class:`Reply`). How its words are read
is :mod:`handlers.commands._words`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from handlers import render
from handlers.admin import Admin
from handlers.archives import Archives
from handlers.commands._words import Args, Words
from handlers.config import AppEntry
from handlers.fleet import Execute, Fleets
from handlers.releases import (
    ActionResult,
    Actor,
    Change,
    CommandRefused,
    Outcome,
    ReleaseService,
)
from handlers.roles import Authorizer
from handlers.rollouts.engine import Rollouts
from handlers.timed import NO_SCHEDULER, TimedReleases
from platforms import platform_class
from platforms.base import ReviewImage, TrialCode

__all__ = ["Asked", "Attachment", "Button", "Command", "Context", "Picture", "Question", "Reply"]

# -- replies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Picture:
    """An image that goes with a reply or a review decision: a trial version's QR code, or
    a screenshot a rejection came with."""

    title: str  # "shop 1.2.0 on WeChat — trial version"
    filename: str  # "shop-1.2.0-wechat-trial.jpg"
    code: TrialCode | ReviewImage
    caption: str = ""  # what goes with it ("" for a QR code: "Scan to open …")

    @classmethod
    def evidence(cls, change: Change, images: Sequence[ReviewImage]) -> tuple[Picture, ...]:
        """A rejection's screenshots as pictures for its thread."""
        where = platform_class(change.platform).display_name
        name = f"{change.app.key}-{change.version}-{change.platform}-review"
        return tuple(
            cls(
                image.title or f"{change.app.key} {change.version} on {where} — screenshot {n}",
                f"{name}-{n}.{image.extension}",
                image,
                f"What {where}'s reviewers pointed at ({n} of {len(images)})",
            )
            for n, image in enumerate(images, 1)
        )


@dataclass(frozen=True)
class Attachment:
    """A file that goes with a reply, for the person who asked only (a history export)."""

    title: str
    filename: str
    content: bytes
    mime: str = "text/csv"


@dataclass(frozen=True)
class Asked:
    """A confirmation waiting for the person who typed the command."""

    token: str  # what the Confirm/Cancel buttons carry
    expires_at: datetime


@dataclass(frozen=True)
class Reply:
    text: str
    error: bool = False  # usage help or a refusal: only for the person who typed
    about: tuple[str, str] | None = None  # (app, version) whose release card shows it
    pictures: tuple[Picture, ...] = ()
    private: bool = False  # for the person who typed only (an authorization link)
    asked: Asked | None = None  # nothing ran yet: ``text`` asks to confirm (privately)
    unfinished: tuple[str, ...] = ()  # platforms a split outcome left to retry (``about``)
    action: str = ""  # the command that gave the result (what a retry runs again)
    files: tuple[Attachment, ...] = ()  # for the asker only: the console saves them
    request: int | None = None  # nothing ran yet: waiting for another person (this request)
    outcome: str = ""  # a use case's: ok, failed, refused (nothing tried), skipped (nothing to do)
    transient: bool = False  # failed on a passing fault (busy, timeout, 5xx, rate limit)
    fleet: int | None = None  # a fleet run started (or shown): its id
    verbatim: bool = False  # text carries what a platform reported: Slack shows it escaped

    @classmethod
    def of(cls, res: ActionResult, text: str) -> Reply:
        """A use case's result (shown as ``text``), with the QR codes it brought."""
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
        outcomes = {r.outcome for r in res.results}
        if res.refusal:
            outcome = "refused"
        elif Outcome.FAILED in outcomes:
            outcome = "failed"
        elif outcomes == {Outcome.REFUSED}:
            outcome = "skipped"
        else:
            outcome = "ok"
        return cls(
            text,
            error=bool(res.refusal),
            about=(res.app.key, res.version),
            pictures=pictures,
            unfinished=tuple(res.unfinished),
            action=res.action,
            outcome=outcome,
            transient=any(r.transient for r in res.results if r.outcome is Outcome.FAILED),
        )


# -- the context a command runs in ---------------------------------------------------------


@dataclass
class Context:
    """Who runs a command, where, and what it may use."""

    actor: Actor
    channel: str | None  # where it was typed (Slack), if anywhere
    service: ReleaseService
    admin: Admin
    authorizer: Authorizer
    clock: Callable[[], datetime]
    scheduler: TimedReleases | None = None
    doing: Mapping[str, str] = field(default_factory=dict)
    """role → the commands it allows, as words ("upload, submit, expedite")."""
    rerun: Callable[[Actor, str, str | None, str], Awaitable[Reply]] | None = None
    """Run a requested command line as its requester (who, line, channel, approver)."""
    in_fleet: bool = False  # one app of a fleet run (no QR codes, no questions)
    override: str | None = None
    """The why of the line's ``--override`` (a guarded command), if it says one."""
    fleet_runs: Fleets | None = None
    fleet_item: Execute | None = None
    """How a fleet run runs one app's line (through these commands)."""
    rollout_engine: Rollouts | None = None
    archives: Archives | None = None
    """The builds CI jobs handed over (``upload … code <id>``), where the API unpacked them."""

    @property
    def rollouts(self) -> Rollouts:
        if self.rollout_engine is None:
            raise CommandRefused("staged rollouts are not available here")
        return self.rollout_engine

    @property
    def fleets(self) -> Fleets:
        if self.fleet_runs is None or self.fleet_item is None:
            raise CommandRefused("fleet runs are not available here")
        return self.fleet_runs

    found: dict[str, object] = field(default_factory=dict)
    """What a command's question found, for its run in the same call (a context lives for
    one command line; a question answered later runs in a new one, which looks again)."""

    def where(self, app: str, chosen: tuple[str, ...]) -> str:
        """The platforms a command on ``app`` acts on, by name: "WeChat and Alipay"."""
        names = [
            self.service.display(p)
            for p in self.service.platforms_for(self.service.app(app), chosen)
        ]
        return " and ".join(names) if len(names) < 3 else ", ".join(names)

    @property
    def timed(self) -> TimedReleases:
        if self.scheduler is None:
            raise CommandRefused(NO_SCHEDULER)
        return self.scheduler

    async def may(self, app: AppEntry, role: str) -> bool:
        return await self.authorizer.allows(self.actor, app, role)

    async def visible(self) -> list[AppEntry]:
        """The apps the actor may view."""
        return [a for a in self.service.config.apps.values() if await self.may(a, "view")]

    async def visible_keys(self, app: str | None, refusal: str) -> list[str]:
        """``app`` alone, or every app the actor may view (refused when none)."""
        if app is not None:
            return [app]
        keys = [a.key for a in await self.visible()]
        if not keys:
            raise CommandRefused(refusal)
        return keys

    async def require_admin(self, action: str, app: str | None = None) -> Reply | None:
        """The refusal when the actor is not one of miniship.toml's ``admins`` (recorded)."""
        if await self.authorizer.among(self.actor, self.service.config.admins):
            return None
        await self.service.store.record(
            actor=self.actor.id,
            action=action,
            outcome="refused",
            app=app,
            message="needs the admin role (admins in miniship.toml)",
        )
        return Reply(
            "You need the *admin* role to change which apps miniship releases. Admins are "
            "listed as `admins = [...]` at the top of miniship.toml.",
            error=True,
        )

    async def require(
        self,
        app: AppEntry,
        role: str,
        action: str,
        version: str | None = None,
        platform: str | None = None,
    ) -> Reply | None:
        """The refusal when the actor lacks ``role`` on ``app`` (recorded in history)."""
        if await self.may(app, role):
            return None
        doing = self.doing.get(role, role)
        await self.service.store.record(
            actor=self.actor.id,
            action=action,
            outcome="refused",
            app=app.key,
            version=version,
            platform=platform,
            message=f"needs the {role} role ({doing}) for {app.key}",
        )
        return Reply(render.role_lacking(app, role, doing), error=True)


# -- the declaration ----------------------------------------------------------------------

A = TypeVar("A", bound=Args)


@dataclass(frozen=True)
class Question:
    """What a command asks before it runs ("Really take demo offline on Alipay?")."""

    text: str
    always: bool = False  # asked whatever MINISHIP_CONFIRM says (e.g. an unusual version)


@dataclass(frozen=True)
class Button:
    """How a release card offers the command (it runs ``<name> <app> <platform> <version>``)."""

    label: str
    style: str | None = None  # "primary" | "danger"
    confirm: tuple[str, str] | None = None  # (verb, what happens), asked before it runs


@dataclass(frozen=True)
class Command(Generic[A]):
    """One command: its words, the role it needs, how its arguments are read, what it runs.

    ``role`` is checked on the app the arguments name (``Args.scope``) before ``run``;
    a command whose scope names no app checks what it needs itself (``Context.require``).
    ``rank`` orders ``help``.
    """

    name: str
    usage: str
    summary: str
    read: Callable[[Words], A]
    run: Callable[[Context, A], Awaitable[Reply]]
    role: str | None = None
    details: str = ""
    examples: tuple[str, ...] = ()
    rank: int = 100
    button: Button | None = None
    guarded: bool = False
    """Stopped by a freeze or lock of its app (unless overridden with a reason)."""
    two_person: bool = False
    """On an app with ``approvals = 1``, it becomes a request another person approves."""
    fleet: bool = False
    """May name ``@tag`` or ``all`` instead of an app: one fleet run over the group."""
    confirm: Callable[[Context, A], Awaitable[Question | None]] | None = None
    """What to ask before running (None: nothing to ask for these arguments). Asked when
    the command is in MINISHIP_CONFIRM or the question says ``always``; a line with
    ``--yes`` has answered already."""

    def parse(self, words: Words) -> Args:
        args = self.read(words)
        words.end()
        return args

    async def execute(self, context: Context, args: Any) -> Reply:
        return await self.run(context, args)

    async def question(self, context: Context, args: Any) -> Question | None:
        return None if self.confirm is None else await self.confirm(context, args)
