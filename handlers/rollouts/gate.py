"""The health gate before each step of a rollout: given the app, the new version, the one
it replaces, the share of users on the new one and the days to look at, it says
:class:`Healthy` (with the figures used), :class:`Regressed` (with the evidence) or
:class:`NoData` (why it cannot tell: the step is held, never taken blind).

A source of health figures is one class with ``name``, ``has_data`` and ``judge``
(:class:`HealthGate`); :func:`gate_for` picks one per platform. Two are here:

- :class:`ErrorGate` — the platform's own per-version JavaScript errors
  (``Platform.js_errors``: WeChat's jserr_list);
- :class:`TimeOnlyGate` — for a platform that reports nothing per version (Alipay): the
  step goes ahead on time, and says plainly that nothing was checked.

Another source (an error tracker's API) is one more class and a line in :func:`gate_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import ClassVar, Protocol

from handlers.render import duration
from handlers.rollouts.plan import Thresholds
from platforms.base import ErrorReport, JsError, Platform
from platforms.errors import ConfigError, PlatformError

__all__ = [
    "ErrorGate",
    "HealthGate",
    "Healthy",
    "NoData",
    "Regressed",
    "Served",
    "TimeOnlyGate",
    "Verdict",
    "Window",
    "gate_for",
]

EVIDENCE = 5  # top errors shown with a regression
MIN_NEW_ERROR_USERS = 3  # a new error seen by fewer users than this is not judged
DAY = 86400.0


@dataclass(frozen=True)
class Window:
    """Whole days, the platform's calendar (WeChat: Beijing), both versions alike."""

    start: date
    end: date

    def words(self) -> str:
        return str(self.end) if self.start == self.end else f"{self.start} – {self.end}"


@dataclass(frozen=True)
class Served:
    """How much a version served within a gate's window: the ``seconds`` it was live in
    it, and ``user_seconds``: those seconds weighed by its share of users (1.0 = all of
    them); ``low`` and ``high``: the least and the most share (%) it had meanwhile."""

    seconds: float
    user_seconds: float
    low: float
    high: float

    NONE: ClassVar[Served]  # served nobody: adding it changes nothing

    def __add__(self, other: Served) -> Served:
        """Two stretches of time served, one after the other."""
        if other.seconds <= 0:
            return self
        if self.seconds <= 0:
            return other
        return Served(
            self.seconds + other.seconds,
            self.user_seconds + other.user_seconds,
            min(self.low, other.low),
            max(self.high, other.high),
        )

    @property
    def share(self) -> float:
        """Its average share of users (%) while it served."""
        return 100 * self.user_seconds / self.seconds if self.seconds > 0 else 0.0

    def per_day(self, users: int) -> float:
        """``users`` in the time served, as users a day were everyone on the version."""
        return users * DAY / self.user_seconds

    def words(self, rate: str = "") -> str:
        """``in 12 min at 5%`` · ``in 1 d 2 h at 5–20% (8% on average)``; ``rate``, if
        given, joins what is in brackets."""
        span = duration(timedelta(seconds=self.seconds))
        said = [rate] if rate else []
        if round(self.low) != round(self.high):
            said.insert(0, f"{self.share:.0f}% on average")
            shares = f"{self.low:.0f}–{self.high:.0f}%"
        else:
            shares = f"{self.low:.0f}%"
        return f"in {span} at {shares}" + (f" ({'; '.join(said)})" if said else "")


Served.NONE = Served(0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Healthy:
    reason: str
    new: ErrorReport | None = None
    old: ErrorReport | None = None


@dataclass(frozen=True)
class Regressed:
    reason: str
    new: ErrorReport
    old: ErrorReport | None
    evidence: tuple[tuple[JsError, bool], ...]  # (error, new in this version), worst first


@dataclass(frozen=True)
class NoData:
    reason: str


Verdict = Healthy | Regressed | NoData


class HealthGate(Protocol):
    name: str  # for people: "WeChat's JS error reports"
    has_data: bool  # False: the gate checks nothing (time only), and says so

    async def judge(
        self,
        app: str,
        new: str,
        previous: str | None,
        share: int,
        window: Window,
        thresholds: Thresholds,
        served: tuple[Served, Served] | None = None,
    ) -> Verdict: ...


class TimeOnlyGate:
    """A platform with no per-version figures: every step goes ahead on time."""

    has_data = False

    def __init__(self, adapter: Platform) -> None:
        self.name = f"time only ({adapter.display_name} reports no per-version error figures)"
        self.display = adapter.display_name

    async def judge(
        self,
        app: str,
        new: str,
        previous: str | None,
        share: int,
        window: Window,
        thresholds: Thresholds,
        served: tuple[Served, Served] | None = None,
    ) -> Verdict:
        return Healthy(
            f"on time only: {self.display} reports no per-version error figures, so nothing "
            "was checked (its own console may show how the version is doing)"
        )


class ErrorGate:
    """The new version against the one it replaces, over the same days: each version's
    error users weighed by the time it served them and its share of users meanwhile."""

    has_data = True

    def __init__(self, adapter: Platform) -> None:
        self.adapter = adapter
        self.name = f"{adapter.display_name}'s JS error reports"

    async def judge(
        self,
        app: str,
        new: str,
        previous: str | None,
        share: int,
        window: Window,
        thresholds: Thresholds,
        served: tuple[Served, Served] | None = None,
    ) -> Verdict:
        where = self.adapter.display_name
        if previous is None:
            return NoData(f"nothing was live on {where} before {new}: no version to compare with")
        try:
            mine = await self.adapter.js_errors(app, new, window.start, window.end)
            theirs = await self.adapter.js_errors(app, previous, window.start, window.end)
        except (PlatformError, ConfigError) as exc:
            return NoData(f"{where} could not be asked for its error figures: {exc}")
        return judge(mine, theirs, share, thresholds, where, window, served)


def whole_days(share: int, window: Window) -> tuple[Served, Served]:
    """Both versions over every hour of the window's days, ``share`` % on the new one
    all along: the simplest reading, when nothing better is known."""
    seconds = ((window.end - window.start).days + 1) * DAY
    return (
        Served(seconds, seconds * share / 100, share, share),
        Served(seconds, seconds * (100 - share) / 100, 100 - share, 100 - share),
    )


def judge(
    mine: ErrorReport,
    theirs: ErrorReport,
    share: int,
    thresholds: Thresholds,
    where: str,
    window: Window,
    served: tuple[Served, Served] | None = None,
) -> Verdict:
    """The verdict on two versions' reports over the same ``window``, ``share`` % of users
    on the new one now. ``served``: how much the new and the previous version each served
    in the window (a version that went live within it served only since; the new one's
    earlier steps at their shares) — each version's error users are weighed by it; None:
    :func:`whole_days`. Pure: what the tests and the README's rules are about."""
    new, old = served or whole_days(share, window)
    if new.user_seconds <= 0:
        return NoData(f"{mine.version} has served no users in {window.words()} yet")
    known = {e.same_as for e in theirs.errors}  # the same message: the same error, rebuilt
    fresh = [
        e
        for e in mine.errors
        if e.same_as not in known
        and e.users >= MIN_NEW_ERROR_USERS
        and new.per_day(e.users) >= thresholds.new_error_users
    ]
    evidence = tuple((e, e.same_as not in known) for e in mine.errors[:EVIDENCE])

    def new_error(figures: str) -> Regressed:
        worst = fresh[0]
        return Regressed(
            f"a new error hit {worst.users} users "
            + new.words(
                f"≈{new.per_day(worst.users):,.0f} a day if everyone had {mine.version}; "
                f"limit {thresholds.new_error_users:,}"
            )
            + f" — {figures}",
            mine,
            theirs,
            evidence,
        )

    mine_words = f"{mine.version}: {mine.users:,} error users {new.words()}"
    if theirs.users == 0 or old.user_seconds <= 0:
        if fresh:  # a crash the previous version never had needs no baseline
            return new_error(f"{mine_words} · {theirs.version}: none reported · {window.words()}")
        return NoData(
            f"{where} reports no errors of {theirs.version} for {window.words()}: its figures "
            "may not be in yet, so there is nothing to compare with"
        )
    new_rate, old_rate = new.per_day(mine.users), old.per_day(theirs.users)
    ratio = new_rate / old_rate
    expected = theirs.users * new.user_seconds / old.user_seconds  # at the old rate
    figures = (
        f"{mine.version}: {mine.users:,} error users "
        f"{new.words(f'≈{new_rate:,.0f} a day if everyone had it')} · {theirs.version}: "
        f"{theirs.users:,} error users {old.words(f'≈{old_rate:,.0f} a day if everyone had it')}"
        f" · {ratio:.2f}× the previous version's rate (limit {thresholds.ratio:g}×) · "
        f"{window.words()}"
    )
    if mine.users >= thresholds.min_users and ratio > thresholds.ratio:
        return Regressed(
            f"{ratio:.1f}× the previous version's error rate — {figures}", mine, theirs, evidence
        )
    if fresh:
        return new_error(figures)
    if mine.users < thresholds.min_users and expected < thresholds.min_users:
        return NoData(
            f"too few users yet at {share}% to judge: {mine.users} error users on "
            f"{mine.version}, ≈{expected:.1f} expected at {theirs.version}'s rate, both below "
            f"{thresholds.min_users} — {figures}"
        )
    if mine.users < thresholds.min_users:
        return Healthy(
            f"fewer than {thresholds.min_users} error users on {mine.version} where "
            f"≈{expected:.0f} were expected: nothing points to a regression — {figures}",
            mine,
            theirs,
        )
    return Healthy(f"within the thresholds — {figures}", mine, theirs)


def gate_for(adapter: Platform) -> HealthGate:
    """The health source for a platform: its own error reports where it has them."""
    if adapter.reports_errors:
        return ErrorGate(adapter)
    return TimeOnlyGate(adapter)
