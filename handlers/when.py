"""The times people type for timed actions, read in the app's time zone.

    at 2026-12-01 10:00     that minute (also 2026/12/01, and with seconds)
    at 10:00                the next 10:00 from now
    at today 18:30          today (refused if it has passed)
    at tomorrow 9:30        tomorrow
    in 2h / in 90m / in 1h30m / in 2d / in 1d 4h / in 45s

The result is an aware UTC datetime; :func:`describe` gives it back the way the reply
should echo it: in the app's zone with its abbreviation and offset, and in UTC. A wall
time that does not exist in the zone (the hour skipped when clocks go forward) is
refused; one that happens twice (clocks go back) means the first of the two.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["WhenError", "describe", "parse_when"]

MAX_AHEAD = timedelta(days=366)

_DATE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
# longest unit names first, so "days" is not read as "d" + "ays"
_SPAN = re.compile(
    r"(\d+)\s*(days|day|d|hours|hour|hrs|hr|h|minutes|minute|mins|min|m|seconds|second|secs|sec|s)"
)
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


class WhenError(ValueError):
    """The time could not be understood, or cannot be used (past, too far, nonexistent)."""


def parse_when(text: str, now: datetime, zone: ZoneInfo) -> datetime:
    """``"at 10:00"`` / ``"in 2h"`` … as an aware UTC datetime after ``now``.

    Raises:
        WhenError: with a message that says what to type instead.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    words = text.strip().split()
    if len(words) < 2 or words[0].lower() not in ("at", "in"):
        raise WhenError(
            "say when: `at 2026-12-01 10:00`, `at 10:00`, `at tomorrow 9:30` or `in 2h`"
        )
    if words[0].lower() == "in":
        moment = now + _span(" ".join(words[1:]))
    else:
        moment = _at([w.lower() for w in words[1:]], now, zone)
    moment = moment.astimezone(UTC)
    if moment <= now:
        raise WhenError(f"{describe(moment, zone)} is in the past")
    if moment - now > MAX_AHEAD:
        raise WhenError("that is more than a year away")
    return moment


def describe(moment: datetime, zone: ZoneInfo) -> str:
    """``2026-12-01 10:00 CST (+08:00) = 02:00 UTC`` — the exact time, both ways."""
    local = moment.astimezone(zone)
    utc = moment.astimezone(UTC)
    offset = local.strftime("%z")
    clock = "%H:%M:%S" if local.second else "%H:%M"  # seconds only when there are some
    utc_text = utc.strftime(clock if utc.date() == local.date() else f"%Y-%m-%d {clock}")
    return (
        f"{local.strftime(f'%Y-%m-%d {clock}')} {local.tzname()} ({offset[:3]}:{offset[3:]}) "
        f"= {utc_text} UTC"
    )


def _span(text: str) -> timedelta:
    compact = text.replace(" ", "").lower()
    parts = _SPAN.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise WhenError(f"`in {text}` is not a duration; write e.g. `in 2h`, `in 90m`, `in 1d 4h`")
    amounts: dict[str, int] = {}
    for number, unit in parts:
        if len(number) > 9:  # no unit goes past a year in 9 digits; int() of huge ones fails
            raise WhenError("that is more than a year away")
        key = _UNITS[unit[0]]
        amounts[key] = amounts.get(key, 0) + int(number)
    try:
        span = timedelta(**amounts)
    except OverflowError:
        raise WhenError("that is more than a year away") from None
    if span <= timedelta(0):
        raise WhenError("a duration must be more than zero")
    return span


def _at(words: list[str], now: datetime, zone: ZoneInfo) -> datetime:
    today = now.astimezone(zone).date()
    if len(words) == 1:  # at 10:00 — the next one
        clock = _clock(words[0])
        moment = _local(today, clock, zone)
        if moment <= now:
            moment = _local(today + timedelta(days=1), clock, zone)
        return moment
    if len(words) == 2:
        day_word, clock = words[0], _clock(words[1])
        if day_word == "today":
            return _local(today, clock, zone)
        if day_word == "tomorrow":
            return _local(today + timedelta(days=1), clock, zone)
        match = _DATE.match(day_word)
        if match:
            try:
                day = date(*(int(g) for g in match.groups()))
            except ValueError:
                raise WhenError(f"{day_word} is not a date") from None
            return _local(day, clock, zone)
    raise WhenError(
        "say the day and time like `at 2026-12-01 10:00`, `at tomorrow 9:30` or `at 10:00`"
    )


def _clock(word: str) -> time:
    match = _TIME.match(word)
    if not match:
        raise WhenError(f"`{word}` is not a time of day; write it like 09:30")
    hour, minute, second = (int(g) if g else 0 for g in match.groups())
    if hour > 23 or minute > 59 or second > 59:
        raise WhenError(f"`{word}` is not a time of day")
    return time(hour, minute, second)


def _local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """``day`` at ``clock`` on the zone's wall clock, refusing times that do not exist."""
    moment = datetime.combine(day, clock, tzinfo=zone)  # fold=0: the first of two
    if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != moment.replace(tzinfo=None):
        raise WhenError(
            f"{day} {clock:%H:%M} does not exist in {zone.key} (the clocks skip that hour)"
        )
    return moment
