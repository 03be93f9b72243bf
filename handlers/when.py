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

Anything else is a :class:`WhenError` that says what to type instead: more than a year
ahead (however many digits), in the past, or off the calendar (before 0001-01-01 or after
9999-12-31, in UTC or on the zone's wall clock). Digits of any script count (``in ２h``).
"""

from __future__ import annotations

import re
import unicodedata
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
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_MAX_SECONDS = int(MAX_AHEAD.total_seconds())
# the calendar's ends: datetime cannot go before 0001-01-01 or after 9999-12-31, in UTC nor
# on the zone's wall clock (arithmetic past them raises OverflowError)
_LAST = datetime.max.replace(tzinfo=UTC)


class WhenError(ValueError):
    """The time could not be understood, or cannot be used (past, too far, nonexistent)."""


def parse_when(text: str, now: datetime, zone: ZoneInfo) -> datetime:
    """``"at 10:00"`` / ``"in 2h"`` … as an aware UTC datetime after ``now``.

    Raises:
        WhenError: with a message that says what to type instead.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    words = text.split()
    if len(words) < 2 or words[0].lower() not in ("at", "in"):
        raise WhenError(
            "say when: `at 2026-12-01 10:00`, `at 10:00`, `at tomorrow 9:30` or `in 2h`"
        )
    try:
        now = now.astimezone(UTC)
    except OverflowError:
        raise WhenError("the clock is off the calendar (years 1 to 9999)") from None
    if words[0].lower() == "in":
        moment = _after(now, _span(" ".join(words[1:])), zone)
    else:
        moment = _at([w.lower() for w in words[1:]], now, zone)
    if moment <= now:
        raise WhenError(f"{describe(moment, zone)} is in the past")
    if moment - now > MAX_AHEAD:
        raise WhenError("that is more than a year away")
    return moment


def describe(moment: datetime, zone: ZoneInfo) -> str:
    """``2026-12-01 10:00 CST (+08:00) = 02:00 UTC`` — the exact time, both ways.

    A time the zone's calendar cannot show (before 0001-01-01 or after 9999-12-31 there) is
    given in UTC alone.
    """
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # only its own wall clock can show it
        return f"{_stamp(moment, moment.second > 0)} ({_offset(moment)}), off the calendar in UTC"
    try:
        local = utc.astimezone(zone)
    except OverflowError:
        return f"{_stamp(utc, utc.second > 0)} UTC (off the calendar in {zone.key})"
    # seconds only when there are some (an old local mean time has them on one side only)
    utc_text = _stamp(utc, utc.second > 0, with_date=utc.date() != local.date())
    return f"{_stamp(local, local.second > 0)} {local.tzname()} ({_offset(local)}) = {utc_text} UTC"


def _stamp(moment: datetime, seconds: bool, with_date: bool = True) -> str:
    """``2026-12-01 10:00[:05]``; years before 1000 with all four digits (strftime drops
    them)."""
    clock = f"{moment.hour:02d}:{moment.minute:02d}"
    if seconds:
        clock += f":{moment.second:02d}"
    if not with_date:
        return clock
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} {clock}"


def _offset(moment: datetime) -> str:
    """``+08:00``, ``-03:30``; ``+08:05:43`` for an old local mean time."""
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    hours, rest = divmod(abs(int(offset.total_seconds())), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")


def _too_late(now: datetime) -> WhenError:
    """A time after the calendar's last day (in UTC or in the zone)."""
    if _LAST - now > MAX_AHEAD:
        return WhenError("that is more than a year away")
    return WhenError("that is past 9999-12-31, where the calendar ends; pick an earlier time")


def _span(text: str) -> timedelta:
    compact = text.replace(" ", "").lower()
    parts = _SPAN.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise WhenError(f"`in {text}` is not a duration; write e.g. `in 2h`, `in 90m`, `in 1d 4h`")
    seconds = 0
    for number, unit in parts:
        # as ASCII digits (any script's digits count), leading zeros dropped
        significant = "".join(str(unicodedata.decimal(c)) for c in number).lstrip("0")
        if len(significant) > len(str(_MAX_SECONDS)):  # a year at most, even in seconds
            raise WhenError("that is more than a year away")
        seconds += int(significant or "0") * _SECONDS[unit[0]]
    if seconds <= 0:
        raise WhenError("a duration must be more than zero")
    if seconds > _MAX_SECONDS:
        raise WhenError("that is more than a year away")
    return timedelta(seconds=seconds)


def _after(now: datetime, span: timedelta, zone: ZoneInfo) -> datetime:
    """``now`` (UTC) plus ``span``, if the calendar has that time in UTC and in ``zone``."""
    try:
        moment = now + span
    except OverflowError:
        raise _too_late(now) from None
    try:
        moment.astimezone(zone)
    except OverflowError:  # the wall clock there is past 9999-12-31 or before 0001-01-01
        if moment.year > 1:
            raise _too_late(now) from None
        raise WhenError(
            f"in {zone.key} that is before 0001-01-01, where the calendar starts"
        ) from None
    return moment


def _at(words: list[str], now: datetime, zone: ZoneInfo) -> datetime:
    """The words after ``at``, read first and then placed on the calendar."""
    if len(words) == 1:  # at 10:00 — the next one
        clock = _clock(words[0])
        today = _today(now, zone)
        moment = _local(today, clock, zone, now)
        if moment <= now:
            moment = _local(_next_day(today, now), clock, zone, now)
        return moment
    if len(words) == 2:
        day_word, clock = words[0], _clock(words[1])
        if day_word == "today":
            return _local(_today(now, zone), clock, zone, now)
        if day_word == "tomorrow":
            return _local(_next_day(_today(now, zone), now), clock, zone, now)
        match = _DATE.match(day_word)
        if match:
            try:
                day = date(*(int(g) for g in match.groups()))
            except ValueError:
                raise WhenError(f"{day_word} is not a date") from None
            return _local(day, clock, zone, now)
    raise WhenError(
        "say the day and time like `at 2026-12-01 10:00`, `at tomorrow 9:30` or `at 10:00`"
    )


def _today(now: datetime, zone: ZoneInfo) -> date:
    """Today's date on the zone's wall clock."""
    try:
        return now.astimezone(zone).date()
    except OverflowError:  # already 10000-01-01 there, or still 0000-12-31
        if now.year > 1:
            raise _too_late(now) from None
        raise WhenError(
            f"today in {zone.key} is before 0001-01-01, where the calendar starts; "
            "give the date, like `at 0001-01-01 10:00`"
        ) from None


def _next_day(day: date, now: datetime) -> date:
    try:
        return day + timedelta(days=1)
    except OverflowError:
        raise _too_late(now) from None


def _clock(word: str) -> time:
    match = _TIME.match(word)
    if not match:
        raise WhenError(f"`{word}` is not a time of day; write it like 09:30")
    hour, minute, second = (int(g) if g else 0 for g in match.groups())
    if hour > 23 or minute > 59 or second > 59:
        raise WhenError(f"`{word}` is not a time of day")
    return time(hour, minute, second)


def _local(day: date, clock: time, zone: ZoneInfo, now: datetime) -> datetime:
    """``day`` at ``clock`` on the zone's wall clock, as UTC; refusing times that do not
    exist, and times the calendar does not have in UTC."""
    wall = datetime.combine(day, clock, tzinfo=zone)  # fold=0: the first of two
    try:
        moment = wall.astimezone(UTC)
        back = moment.astimezone(zone)
    except OverflowError:  # before 0001-01-01 or after 9999-12-31 in UTC
        if day.year > 1:
            raise _too_late(now) from None
        raise WhenError(f"{day} {clock:%H:%M} in {zone.key} is in the past") from None
    if back.replace(tzinfo=None) != wall.replace(tzinfo=None):
        raise WhenError(
            f"{day} {clock:%H:%M} does not exist in {zone.key} (the clocks skip that hour)"
        )
    return moment
