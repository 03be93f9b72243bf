"""Freezes and locks: when nothing may go live.

A *freeze* is a window (``freeze demo until 18:00``; or recurring, from miniship.toml:
every Friday 18:00 to Monday 09:00, or dated ranges); a *lock* holds until someone
unlocks it. While an app is frozen or locked, publish, gray changes, rollback and offline
are refused with who froze it, why and until when; a timed release falling due is held
and announced. People with the ``override`` role may act anyway, with a reason (recorded).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from storage import Store
from storage.models import Freeze

__all__ = ["DAYS", "FreezeView", "FreezeWindow", "Freezes", "read_weekly"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKLY = re.compile(
    r"\s*(mon|tue|wed|thu|fri|sat|sun)\w*\s+(\d{1,2}):(\d{2})\s*-\s*"
    r"(mon|tue|wed|thu|fri|sat|sun)\w*\s+(\d{1,2}):(\d{2})\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class FreezeView:
    """A freeze or lock in force, as people read it."""

    kind: str  # freeze | lock
    scope: str  # an app key, or "all apps"
    by: str  # who set it ("miniship.toml" for a configured window)
    reason: str
    since: dt.datetime
    until: dt.datetime | None  # None: until unlocked (or unfrozen)


@dataclass(frozen=True)
class FreezeWindow:
    """A freeze from miniship.toml: weekly (in each app's zone) or one dated range."""

    apps: tuple[str, ...]  # empty: every app
    reason: str
    weekly: tuple[int, dt.time, int, dt.time] | None = None  # start day, time, end day, time
    start: dt.datetime | None = None  # naive: the app's wall clock
    end: dt.datetime | None = None

    def applies(self, app: str) -> bool:
        return not self.apps or app in self.apps

    def covering(self, now: dt.datetime, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime] | None:
        """(start, end) in UTC of the occurrence ``now`` falls in, if any."""
        local = now.astimezone(zone)
        if self.weekly is not None:
            start_day, start_time, end_day, end_time = self.weekly
            first = local.date() - dt.timedelta(days=(local.weekday() - start_day) % 7)
            if dt.datetime.combine(first, start_time) > local.replace(tzinfo=None):
                first -= dt.timedelta(days=7)
            days = (end_day - start_day) % 7
            if days == 0 and end_time <= start_time:
                days = 7
            start = dt.datetime.combine(first, start_time, zone)
            end = dt.datetime.combine(first + dt.timedelta(days=days), end_time, zone)
        elif self.start is not None and self.end is not None:
            start, end = self.start.replace(tzinfo=zone), self.end.replace(tzinfo=zone)
        else:
            return None
        # as instants: wall clocks compare wrongly across a daylight-saving change
        start_utc, end_utc = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
        if start_utc <= now.astimezone(dt.UTC) < end_utc:
            return start_utc, end_utc
        return None


def read_weekly(text: str) -> tuple[int, dt.time, int, dt.time]:
    """``"fri 18:00 - mon 09:00"`` → (4, 18:00, 0, 09:00); ValueError if it is not that."""
    match = _WEEKLY.fullmatch(text)
    if not match:
        raise ValueError(f'weekly must read like "fri 18:00 - mon 09:00"; got {text!r}')
    d1, h1, m1, d2, h2, m2 = match.groups()
    try:
        first, last = dt.time(int(h1), int(m1)), dt.time(int(h2), int(m2))
    except ValueError:
        raise ValueError(f"{text!r} has a time of day that does not exist") from None
    return DAYS.index(d1[:3].lower()), first, DAYS.index(d2[:3].lower()), last


class Freezes:
    """What is frozen or locked: rows set from chat, windows from miniship.toml."""

    def __init__(self, store: Store, windows: Sequence[FreezeWindow] = ()) -> None:
        self.store = store
        self.windows = tuple(windows)

    async def active(self, app: str, zone: ZoneInfo, now: dt.datetime) -> list[FreezeView]:
        """What holds ``app`` at ``now`` (an empty list: it may go live)."""
        return (await self.active_of({app: zone}, now))[app]

    async def active_of(
        self, zones: Mapping[str, ZoneInfo], now: dt.datetime
    ) -> dict[str, list[FreezeView]]:
        """What holds each app of ``zones`` (app → its time zone) at ``now``, read in one
        query however many apps there are (the App Home)."""
        rows = [f for f in await self.store.freezes(list(zones), now) if f.starts_at <= now]
        out: dict[str, list[FreezeView]] = {}
        for app, zone in zones.items():
            found = [_view(f) for f in rows if f.app_key in (app, "*")]
            for window in self.windows:
                span = window.covering(now, zone) if window.applies(app) else None
                if span is not None:
                    scope = app if window.apps else "all apps"
                    found.append(FreezeView("freeze", scope, "miniship.toml", window.reason, *span))
            out[app] = found
        return out

    async def coming(self, app: str, now: dt.datetime) -> list[FreezeView]:
        """The freezes and locks set from chat that will hold ``app`` later."""
        return [_view(f) for f in await self.store.freezes([app], now) if f.starts_at > now]


def _view(row: Freeze) -> FreezeView:
    scope = "all apps" if row.app_key == "*" else row.app_key
    return FreezeView(row.kind, scope, row.created_by, row.reason, row.starts_at, row.ends_at)
