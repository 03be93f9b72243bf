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
from datetime import date
from typing import Protocol

from handlers.rollouts.plan import Thresholds
from platforms.base import ErrorReport, JsError, Platform
from platforms.errors import ConfigError, PlatformError

__all__ = [
    "ErrorGate",
    "HealthGate",
    "Healthy",
    "NoData",
    "Regressed",
    "TimeOnlyGate",
    "Verdict",
    "Window",
    "gate_for",
]

EVIDENCE = 5  # top errors shown with a regression
MIN_NEW_ERROR_USERS = 3  # a new error seen by fewer users than this is not judged


@dataclass(frozen=True)
class Window:
    """Whole days, the platform's calendar (WeChat: Beijing), both versions alike."""

    start: date
    end: date

    def words(self) -> str:
        return str(self.end) if self.start == self.end else f"{self.start} – {self.end}"


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
        exposure: float | None = None,
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
        exposure: float | None = None,
    ) -> Verdict:
        return Healthy(
            f"{self.display} has no health data per version: this step goes ahead on time "
            "only, nothing was checked (watch the platform's own console)"
        )


class ErrorGate:
    """The new version against the one it replaces, over the same days, per share of
    users: error users ÷ share (the new version) and ÷ (1 − share) (the previous one)."""

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
        exposure: float | None = None,
    ) -> Verdict:
        where = self.adapter.display_name
        if previous is None:
            return NoData(f"nothing was live on {where} before {new}: no version to compare with")
        try:
            mine = await self.adapter.js_errors(app, new, window.start, window.end)
            theirs = await self.adapter.js_errors(app, previous, window.start, window.end)
        except (PlatformError, ConfigError) as exc:
            return NoData(f"{where} could not be asked for its error figures: {exc}")
        return judge(mine, theirs, share, thresholds, where, window, exposure)


def judge(
    mine: ErrorReport,
    theirs: ErrorReport,
    share: int,
    thresholds: Thresholds,
    where: str,
    window: Window,
    exposure: float | None = None,
) -> Verdict:
    """The verdict on two versions' reports over the same ``window``, ``share`` % of users
    on the new one now; ``exposure`` (0–1): the new version's part of the user-time over
    the window, when the share changed within it (the previous step's hours count at the
    previous share). Pure: what the tests and the README's rules are about."""
    part = min(max(share if exposure is None else exposure * 100, 1), 99) / 100
    over = (
        ""
        if exposure is None or round(part * 100) == share
        else f" ({part:.0%} of the window's user-time)"
    )
    known = {e.same_as for e in theirs.errors}  # the same message: the same error, rebuilt
    fresh = [
        e
        for e in mine.errors
        if e.same_as not in known
        and e.users >= MIN_NEW_ERROR_USERS
        and e.users / part >= thresholds.new_error_users
    ]
    evidence = tuple((e, e.same_as not in known) for e in mine.errors[:EVIDENCE])

    def new_error(figures: str) -> Regressed:
        worst = fresh[0]
        return Regressed(
            f"a new error hit {worst.users} users at {share}% (≈{worst.users / part:.0f} a day "
            f"at full share, limit {thresholds.new_error_users}) — {figures}",
            mine,
            theirs,
            evidence,
        )

    if theirs.users == 0:
        if fresh:  # a crash the previous version never had needs no baseline
            return new_error(
                f"{mine.version}: {mine.users} error users at {share}% · {theirs.version}: "
                f"none reported · {window.words()}"
            )
        return NoData(
            f"{where} reports no errors of {theirs.version} for {window.words()}: its figures "
            "may not be in yet, so there is nothing to compare with"
        )
    new_rate, old_rate = mine.users / part, theirs.users / (1 - part)
    ratio = new_rate / old_rate
    expected = old_rate * part  # error users the new version would have at the old rate
    figures = (
        f"{mine.version}: {mine.users} error users at {share}%{over} ({new_rate:.0f} per "
        f"full share) · {theirs.version}: {theirs.users} at {100 - round(part * 100)}% "
        f"({old_rate:.0f} per full share) · ratio {ratio:.2f} (limit {thresholds.ratio:g}) · "
        f"{window.words()}"
    )
    if mine.users >= thresholds.min_users and ratio > thresholds.ratio:
        return Regressed(
            f"error users per share up {ratio:.1f}× — {figures}", mine, theirs, evidence
        )
    if fresh:
        return new_error(figures)
    if mine.users < thresholds.min_users and expected < thresholds.min_users:
        return NoData(
            f"too few users at {share}% to judge: {mine.users} error users on {mine.version}, "
            f"≈{expected:.1f} expected at {theirs.version}'s rate, both below "
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
