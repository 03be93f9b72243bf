"""Reading a command's words: the arguments a command declares (:class:`Args` and its
kinds) and the reader that makes them (:class:`Words`). Parsing never fails with anything
but :class:`UsageError`, whose message says what was wrong. Standard library only: the
command language can be read without the rest of miniship.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

__all__ = [
    "APP",
    "MAX_VERSION",
    "VERSION",
    "AppArgs",
    "Args",
    "NoArgs",
    "ReleaseArgs",
    "Scope",
    "UsageError",
    "VersionArgs",
    "Words",
    "clip",
]

MAX_VERSION = 64  # WeChat's user_version limit, and the column's width
VERSION = re.compile(r"^[vV]?[0-9][0-9A-Za-z._+-]*$")
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

    def acts_now(self) -> bool:
        """Whether running it changes what is live now (a freeze stops it), as opposed to
        planning it for later."""
        return True

    def second_person(self) -> bool:
        """Whether a ``two_person`` command needs the second person for these arguments
        (a rollout's start does; its status or pause does not)."""
        return True

    def over_group(self) -> str | None:
        """Why these arguments cannot run over a group of apps (``@tag``, ``all``) of a
        ``fleet`` command; None: they can."""
        return None


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


@dataclass(frozen=True, kw_only=True)
class VersionArgs(AppArgs):
    """``<app> [platform] [version]``: the version may be left out (the command picks it)."""

    version: str | None = None

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

    def peek(self, ahead: int = 0) -> str | None:
        """The next word (or the one ``ahead`` after it), lower-cased (None past the end)."""
        at = self._at + ahead
        return self._words[at][0].lower() if at < len(self._words) else None

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
        """The platforms the next words name (none, one or several: `wechat alipay`)."""
        chosen: list[str] = []
        while (word := self.take_if(*self.platforms)) is not None:
            if word not in chosen:
                chosen.append(word)
        return tuple(chosen)

    def named_platform(self) -> str:
        """A platform that must follow: the next word, checked."""
        word = self.take()
        if word.lower() not in self.platforms:
            self.fail(f"`{clip(word)}` is not a platform ({', '.join(self.platforms)})")
        return word.lower()

    def required_platform(self, app: str) -> tuple[str]:
        word = self.take_if(*self.platforms)
        if word is None:
            if not self.platforms:
                self.fail("which platform?")
            self.fail(f"which platform? e.g. `{self.command} {app} {self.platforms[0]} …`")
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
        if not self.platforms:
            self.fail(f"`{clip(word)}` is not a version (versions start with a digit, like 1.2.0)")
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

    def release(self, *, after: bool = True) -> tuple[str, tuple[str, ...], str]:
        """``<app> [platform…] <version> [platform…]``: (app, platforms, version). Platform
        words may also follow the version (``after``), unless free text follows it."""
        app = self.app("which app and version?")
        chosen = self.platform()
        version = self.version()
        later = self.platform() if after else ()
        return app, tuple(dict.fromkeys(chosen + later)), version
