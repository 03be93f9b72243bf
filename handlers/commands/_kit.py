"""What a command module is made of: its declaration (:class:`Command`), the reader of its
words (:class:`Words`), the context it runs in (:class:`Context`) and what it answers
(:class:`Reply`). Parsing never fails with anything but :class:`UsageError`, whose message
says what was wrong and carries the usage of the command.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, NoReturn, TypeVar

from handlers.admin import Admin
from handlers.config import AppEntry
from handlers.releases import ActionResult, Actor, CommandRefused, ReleaseService
from handlers.roles import Authorizer
from handlers.timed import NO_SCHEDULER, TimedReleases
from platforms import platform_class
from platforms.base import TrialCode

__all__ = [
    "APP",
    "MAX_VERSION",
    "VERSION",
    "AppArgs",
    "Args",
    "Button",
    "Command",
    "Context",
    "NoArgs",
    "Picture",
    "ReleaseArgs",
    "Reply",
    "Scope",
    "UsageError",
    "Words",
    "clip",
]

MAX_VERSION = 64  # WeChat's user_version limit, and the column's width
VERSION = re.compile(r"^[vV]?\d[0-9A-Za-z._+-]*$")
APP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class UsageError(Exception):
    """The command could not be understood; ``usage`` shows how to write it."""

    def __init__(self, message: str, command: str | None = None, usage: str = "") -> None:
        self.message = message
        self.command = command
        self.usage = usage
        super().__init__(message)


def clip(word: str, limit: int = 40) -> str:
    """A word as typed, safe to quote in a reply (no backticks, not too long)."""
    word = word.replace("`", "'")
    return word if len(word) <= limit else word[:limit] + "…"


# -- arguments ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What a command acts on, for its role check and the record of a refusal. ``app``
    None: the command checks roles itself (or needs none)."""

    app: str | None = None
    version: str | None = None
    platform: str | None = None


@dataclass(frozen=True)
class Args:
    """A command's arguments; each command declares its own subclass."""

    def scope(self) -> Scope:
        return Scope()


@dataclass(frozen=True)
class NoArgs(Args):
    pass


@dataclass(frozen=True, kw_only=True)
class AppArgs(Args):
    """``<app> [platform]``: an app, and the platforms named (none: every one it is on)."""

    app: str
    platforms: tuple[str, ...] = ()

    @property
    def platform(self) -> str | None:
        return self.platforms[0] if len(self.platforms) == 1 else None

    def scope(self) -> Scope:
        return Scope(self.app, None, self.platform)


@dataclass(frozen=True, kw_only=True)
class ReleaseArgs(AppArgs):
    """``<app> [platform] <version>``."""

    version: str

    def scope(self) -> Scope:
        return Scope(self.app, self.version, self.platform)


class Words:
    """The words typed after a command's name, read left to right.

    Every ``UsageError`` it raises names the command, so the reply shows its usage.
    """

    def __init__(
        self, text: str, words: Sequence[tuple[str, int]], command: str, platforms: Sequence[str]
    ) -> None:
        self.text = text
        self._words = list(words)  # (word, where it ends in text)
        self._at = 0
        self.command = command
        self.platforms = list(platforms)

    # -- generic ---------------------------------------------------------------------------

    def fail(self, message: str) -> NoReturn:
        raise UsageError(message, self.command)

    def more(self) -> bool:
        return self._at < len(self._words)

    def left(self) -> int:
        return len(self._words) - self._at

    def peek(self) -> str | None:
        """The next word, lower-cased (None at the end)."""
        return self._words[self._at][0].lower() if self.more() else None

    def take(self) -> str:
        word = self._words[self._at][0]
        self._at += 1
        return word

    def take_if(self, *choices: str) -> str | None:
        """The next word (lower-cased) if it is one of ``choices``."""
        word = self.peek()
        if word is not None and word in choices:
            self._at += 1
            return word
        return None

    def rest_as_typed(self) -> str:
        """Everything after the words read so far, spacing kept; reads it all."""
        start = self._words[self._at - 1][1] if self._at else 0
        self._at = len(self._words)
        return self.text[start:].strip()

    def at_most(self, count: int) -> None:
        """At most ``count`` more words may follow."""
        if self.left() > count:
            self.fail(f"unexpected `{clip(self._words[self._at + count][0])}`")

    def end(self) -> None:
        """Nothing more may follow."""
        if self.more():
            self.fail(f"unexpected `{clip(self._words[self._at][0])}`")

    # -- typed words -------------------------------------------------------------------------

    def app(self, missing: str = "which app?") -> str:
        if not self.more():
            self.fail(missing)
        word = self.take()
        if not APP.match(word):
            self.fail(f"`{clip(word)}` is not an app name")
        return word

    def platform(self) -> tuple[str, ...]:
        """A platform, if the next word names one."""
        word = self.take_if(*self.platforms)
        return (word,) if word else ()

    def named_platform(self) -> str:
        """A platform that must follow: the next word, checked."""
        word = self.take()
        if word.lower() not in self.platforms:
            self.fail(f"`{clip(word)}` is not a platform ({', '.join(self.platforms)})")
        return word.lower()

    def required_platform(self, app: str) -> tuple[str]:
        word = self.take_if(*self.platforms)
        if word is None:
            example = f"e.g. `{self.command} {app} {self.platforms[0]} …`"
            self.fail(f"which platform? {example}" if self.platforms else "which platform?")
        return (word,)

    def version(self, missing: str = "which version?") -> str:
        if not self.more():
            self.fail(missing)
        word = self.take()
        if VERSION.match(word):
            if len(word) > MAX_VERSION:
                self.fail(f"a version is at most {MAX_VERSION} characters")
            return word
        close = difflib.get_close_matches(word.lower(), self.platforms, n=1)
        if close:
            self.fail(f"`{clip(word)}` is not a platform; did you mean `{close[0]}`?")
        self.fail(
            f"`{clip(word)}` is neither a platform ({', '.join(self.platforms)}) nor a version "
            "(versions start with a digit, like 1.2.0)"
        )

    def number(self, what: str) -> str:
        word = self.take()
        number = word.removeprefix("#")
        if not re.fullmatch(r"[0-9]{1,18}", number):
            self.fail(f"`{clip(word)}` is not a {what} (a number)")
        return number

    def release(self) -> tuple[str, tuple[str, ...], str]:
        """``<app> [platform] <version>``: (app, platforms, version)."""
        app = self.app("which app and version?")
        chosen = self.platform()
        return app, chosen, self.version()


# -- replies ------------------------------------------------------------------------------


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
        return cls(
            text, error=bool(res.refusal), about=(res.app.key, res.version), pictures=pictures
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
        return Reply(
            f"You need the *{role}* role for {app.key} to {doing}. "
            f"Ask someone who has it; roles are set in miniship.toml.",
            error=True,
        )


# -- the declaration ----------------------------------------------------------------------

A = TypeVar("A", bound=Args)


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

    def parse(self, words: Words) -> Args:
        args = self.read(words)
        words.end()
        return args

    async def execute(self, context: Context, args: Any) -> Reply:
        return await self.run(context, args)
