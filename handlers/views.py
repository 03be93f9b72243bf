"""Plain view models: what the console text (``render``) and Slack's Block Kit (``cards``)
show, built here from stored rows so that neither sees the database's types.

Nothing here decides anything; the words for a state come from the release policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers import policy
from handlers.config import AppEntry
from platforms.base import Authorization, Quota, Template
from storage import ReleaseState, TargetView
from storage.models import Event, Release, ReleaseTarget, TimedAction

__all__ = [
    "AppAccess",
    "Attention",
    "EventView",
    "GroupStatus",
    "PlatformQuotas",
    "ReleaseCard",
    "Scheduled",
    "TargetLine",
    "TemplateList",
    "TimedView",
    "card",
    "event",
    "group_status",
    "line",
    "lines",
    "timed",
]


@dataclass(frozen=True)
class TargetLine:
    """One release on one platform."""

    app_key: str
    version: str
    platform: str
    state: ReleaseState
    moment: str  # what happened last that matters: "submitted", "decided"…
    at: datetime | None  # when (aware UTC)
    reason: str  # the platform's reason, where the state has one to show
    updated_at: datetime | None
    released_at: datetime | None
    submitted_at: datetime | None


@dataclass(frozen=True)
class ReleaseCard:
    """A release with its state on each platform."""

    app: AppEntry
    version: str
    notes: str
    created_by: str
    targets: list[TargetLine]


@dataclass(frozen=True)
class EventView:
    at: datetime
    actor: str
    action: str
    version: str | None
    platform: str | None
    outcome: str
    message: str
    id: int | None = None  # the event's id: where an older page starts (``--before``)
    app_key: str | None = None  # None: the event names no app (the template library, …)


@dataclass(frozen=True)
class TimedView:
    """A timed release (a publish planned for a given minute)."""

    id: int
    app_key: str
    version: str
    platforms: tuple[str, ...]
    due_at: datetime
    created_by: str


@dataclass(frozen=True)
class Scheduled:
    """A timed release just planned."""

    action: TimedView
    app: AppEntry
    remind_at: datetime | None
    waiting: list[str]  # platforms not approved yet, as "WeChat is in review"


@dataclass(frozen=True)
class TemplateList:
    platform: str
    templates: list[Template]
    error: str = ""


@dataclass(frozen=True)
class PlatformQuotas:
    platform: str
    quotas: list[Quota]
    error: str = ""


@dataclass(frozen=True)
class AppAccess:
    """What one app granted on each platform (``None``: the platform has no such notion)."""

    app: AppEntry
    grants: dict[str, Authorization | None]
    errors: dict[str, str]


@dataclass(frozen=True)
class Attention:
    """A release a person should look at, and why."""

    line: TargetLine
    why: str


@dataclass(frozen=True)
class GroupStatus:
    """Where the newest release of each app of a group stands, counted per platform and
    state, with what needs a person (rejected, delayed, a review waiting too long…)."""

    label: str  # "@shops", "all"
    apps: int
    counts: dict[str, dict[str, int]]  # platform → state words → apps
    unreleased: dict[str, int]  # platform → apps with no release there yet
    attention: list[Attention]


def group_status(
    label: str,
    apps: Sequence[AppEntry],
    newest: Sequence[TargetView],
    now: datetime,
    waited: timedelta,
) -> GroupStatus:
    """:class:`GroupStatus` of ``apps`` from their newest releases (``Store.newest``)."""
    counts: dict[str, dict[str, int]] = {}
    seen: set[tuple[str, str]] = set()
    attention = []
    for view in newest:
        target = line(view.release, view.target)
        words = policy.words(target.state)
        per = counts.setdefault(target.platform, {})
        per[words] = per.get(words, 0) + 1
        seen.add((target.app_key, target.platform))
        why = policy.attention(target.state, target.updated_at, now, waited)
        if why:
            attention.append(Attention(target, why))
    unreleased: dict[str, int] = {}
    for app in apps:
        for platform in app.platforms:
            if (app.key, platform) not in seen:
                unreleased[platform] = unreleased.get(platform, 0) + 1
    attention.sort(key=lambda a: (a.line.app_key, a.line.platform))
    return GroupStatus(label, len(apps), counts, unreleased, attention)


def line(release: Release, target: ReleaseTarget) -> TargetLine:
    state = ReleaseState(target.state)
    word, field = policy.stamp(state)
    reason = " ".join(target.review_reason.split()) if policy.shows_reason(state) else ""
    return TargetLine(
        app_key=release.app_key,
        version=release.version,
        platform=target.platform,
        state=state,
        moment=word,
        at=getattr(target, field),
        reason=reason,
        updated_at=target.updated_at,
        released_at=target.released_at,
        submitted_at=target.submitted_at,
    )


def lines(views: Sequence[TargetView]) -> list[TargetLine]:
    return [line(v.release, v.target) for v in views]


def card(app: AppEntry, release: Release, targets: Sequence[ReleaseTarget]) -> ReleaseCard:
    return ReleaseCard(
        app=app,
        version=release.version,
        notes=release.notes,
        created_by=release.created_by,
        targets=[line(release, t) for t in sorted(targets, key=lambda t: t.platform)],
    )


def event(e: Event) -> EventView:
    return EventView(
        e.at, e.actor, e.action, e.version, e.platform, e.outcome, e.message, e.id, e.app_key
    )


def timed(a: TimedAction) -> TimedView:
    assert a.id is not None
    return TimedView(a.id, a.app_key, a.version, tuple(a.platforms), a.due_at, a.created_by)
