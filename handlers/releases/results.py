"""What the release use cases return: plain data, shown by ``render`` (text) and ``cards``
(Slack). Nothing here talks to a platform or the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from handlers.config import AppEntry
from handlers.freezes import FreezeView
from handlers.views import TargetLine
from platforms.base import Overview, TrialCode, VersionInfo
from storage import ReleaseState

__all__ = [
    "ActionResult",
    "Actor",
    "AppStatus",
    "Change",
    "CommandRefused",
    "Outcome",
    "PlatformResult",
    "PlatformStatus",
]


@dataclass(frozen=True)
class Actor:
    """Who asked: a Slack user id, ``console:<user>``, ``scheduler``…"""

    id: str
    name: str = ""

    def __str__(self) -> str:
        return self.name or self.id


class CommandRefused(Exception):
    """The command cannot be carried out as asked (unknown app, platform not configured…)."""


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"  # the platform (or the connection to it) said no
    REFUSED = "refused"  # miniship did not try: the state does not allow it


@dataclass(frozen=True)
class PlatformResult:
    platform: str
    outcome: Outcome
    message: str
    state: ReleaseState | None = None
    image: TrialCode | None = None  # the trial version's QR code (upload, qr)
    transient: bool = False  # failed on busy, timeout, 5xx or a rate limit: try again later


@dataclass(frozen=True)
class ActionResult:
    action: str
    app: AppEntry
    version: str
    results: list[PlatformResult] = field(default_factory=list)
    refusal: str = ""  # the whole command was refused, nothing was tried
    notes: tuple[str, ...] = ()  # said of the whole command ("could not ask WeChat …")

    @property
    def ok(self) -> bool:
        return not self.refusal and all(r.outcome is Outcome.OK for r in self.results)

    @property
    def unfinished(self) -> list[str]:
        """The platforms that failed while others succeeded: a split outcome to finish."""
        done = any(r.outcome is Outcome.OK for r in self.results)
        return [r.platform for r in self.results if done and r.outcome is Outcome.FAILED]

    def finish(self) -> list[str]:
        """The exact commands that finish a split outcome, one per platform left."""
        return [f"{self.action} {self.app.key} {p} {self.version}" for p in self.unfinished]


@dataclass(frozen=True)
class Change:
    """A review outcome (or another change) learned from a platform."""

    app: AppEntry
    version: str
    platform: str
    old: ReleaseState
    new: ReleaseState
    reason: str = ""
    outside: bool = False  # done in the platform's own console, not through miniship


@dataclass(frozen=True)
class PlatformStatus:
    platform: str
    overview: Overview | None
    error: str
    releases: list[TargetLine]
    versions: list[VersionInfo] = field(default_factory=list)  # asked for one app only


@dataclass(frozen=True)
class AppStatus:
    app: AppEntry
    platforms: list[PlatformStatus]
    holds: list[FreezeView] = field(default_factory=list)  # freezes and locks in force
