"""The times people type: next occurrences, durations, zones and daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from handlers.when import WhenError, describe, parse_when

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
# 2026-11-24 09:00 in Shanghai (01:00 UTC)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected_utc"),
    [
        ("at 2026-12-01 10:00", datetime(2026, 12, 1, 2, 0, tzinfo=UTC)),
        ("at 2026/12/1 10:00:30", datetime(2026, 12, 1, 2, 0, 30, tzinfo=UTC)),
        ("at 10:00", datetime(2026, 11, 24, 2, 0, tzinfo=UTC)),  # later today
        ("at 08:30", datetime(2026, 11, 25, 0, 30, tzinfo=UTC)),  # passed: tomorrow
        ("at today 18:30", datetime(2026, 11, 24, 10, 30, tzinfo=UTC)),
        ("AT Tomorrow 9:30", datetime(2026, 11, 25, 1, 30, tzinfo=UTC)),
        ("in 2h", NOW + timedelta(hours=2)),
        ("in 90m", NOW + timedelta(minutes=90)),
        ("in 1h30m", NOW + timedelta(hours=1, minutes=30)),
        ("in 1d 4h", NOW + timedelta(days=1, hours=4)),
        ("in 2 days", NOW + timedelta(days=2)),
    ],
)
def test_what_people_type(text: str, expected_utc: datetime) -> None:
    assert parse_when(text, NOW, SHANGHAI) == expected_utc


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "say when"),
        ("10:00", "say when"),
        ("at", "say when"),
        ("at 25:00", "not a time of day"),
        ("at noon", "not a time of day"),
        ("at 2026-02-30 10:00", "not a date"),
        ("at 2026-11-23 10:00", "in the past"),
        ("at today 08:00", "in the past"),
        ("at 2028-01-01 10:00", "more than a year"),
        ("in 400d", "more than a year"),
        ("in 0m", "more than zero"),
        ("in soon", "not a duration"),
        ("in 2x", "not a duration"),
        ("at next friday 10:00", "say the day and time"),
        ("in 99999999999999999999d", "more than a year"),
    ],
)
def test_what_cannot_be_used_is_explained(text: str, message: str) -> None:
    with pytest.raises(WhenError, match=message):
        parse_when(text, NOW, SHANGHAI)


def test_the_reply_echoes_the_zone_and_utc() -> None:
    moment = parse_when("at 2026-12-01 10:00", NOW, SHANGHAI)
    assert describe(moment, SHANGHAI) == "2026-12-01 10:00 CST (+08:00) = 02:00 UTC"
    early = parse_when("at 2026-12-01 07:00", NOW, SHANGHAI)
    assert describe(early, SHANGHAI) == "2026-12-01 07:00 CST (+08:00) = 2026-11-30 23:00 UTC"


def test_daylight_saving_in_a_zone_that_has_it() -> None:
    march = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # the day before clocks go forward
    # 10:00 on the change day is CEST (UTC+2), the day before CET (UTC+1)
    assert parse_when("at 2026-03-29 10:00", march, BERLIN) == datetime(
        2026, 3, 29, 8, 0, tzinfo=UTC
    )
    assert parse_when("at 2026-03-28 18:00", march, BERLIN) == datetime(
        2026, 3, 28, 17, 0, tzinfo=UTC
    )
    with pytest.raises(WhenError, match="does not exist in Europe/Berlin"):
        parse_when("at 2026-03-29 02:30", march, BERLIN)  # the skipped hour
    october = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    twice = parse_when("at 2026-10-25 02:30", october, BERLIN)  # happens twice: the first
    assert twice == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert "CEST (+02:00)" in describe(twice, BERLIN)
    # "in 24h" across the change is 24 real hours, not the same wall time
    assert parse_when("in 24h", october, BERLIN) == october + timedelta(hours=24)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_when("in 2h", datetime(2026, 11, 24, 1, 0), SHANGHAI)


# -- seconds --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("in 45s", timedelta(seconds=45)),
        ("in 1m30s", timedelta(minutes=1, seconds=30)),
        ("in 1m 30s", timedelta(minutes=1, seconds=30)),
        ("in 90 seconds", timedelta(seconds=90)),
        ("in 1 second", timedelta(seconds=1)),
        ("in 10sec", timedelta(seconds=10)),
        ("in 10 secs", timedelta(seconds=10)),
        ("in 1h 2m 3s", timedelta(hours=1, minutes=2, seconds=3)),
        ("in 2mins 5S", timedelta(minutes=2, seconds=5)),
        ("in 30s 30s", timedelta(seconds=60)),  # repeated units add up
    ],
)
def test_durations_in_seconds(text: str, span: timedelta) -> None:
    assert parse_when(text, NOW, SHANGHAI) == NOW + span


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("in 0s", "more than zero"),
        ("in 45", "not a duration"),
        ("in s", "not a duration"),
        ("in 45ss", "not a duration"),
        ("in 5ms", "not a duration"),
        ("in 1m30", "not a duration"),
        ("in 31622401s", "more than a year"),  # 366 days and a second
    ],
)
def test_bad_durations_in_seconds(text: str, message: str) -> None:
    with pytest.raises(WhenError, match=message):
        parse_when(text, NOW, SHANGHAI)


def test_describe_shows_seconds_only_when_there_are_some() -> None:
    with_seconds = datetime(2026, 12, 1, 2, 0, 5, tzinfo=UTC)  # 10:00:05 in Shanghai
    assert describe(with_seconds, SHANGHAI) == "2026-12-01 10:00:05 CST (+08:00) = 02:00:05 UTC"
    on_the_minute = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    assert describe(on_the_minute, SHANGHAI) == "2026-12-01 10:00 CST (+08:00) = 02:00 UTC"
    # the UTC side carries the date when it is another day there, seconds and all
    early = datetime(2026, 11, 30, 23, 0, 59, tzinfo=UTC)  # 07:00:59 in Shanghai
    assert describe(early, SHANGHAI) == (
        "2026-12-01 07:00:59 CST (+08:00) = 2026-11-30 23:00:59 UTC"
    )
    # a fraction of a second alone is not shown
    assert describe(on_the_minute.replace(microsecond=500_000), SHANGHAI) == (
        "2026-12-01 10:00 CST (+08:00) = 02:00 UTC"
    )


def test_in_45s_echoes_its_seconds() -> None:
    moment = parse_when("in 45s", NOW, SHANGHAI)
    assert describe(moment, SHANGHAI) == "2026-11-24 09:00:45 CST (+08:00) = 01:00:45 UTC"
    assert describe(parse_when("in 2m", NOW, SHANGHAI), SHANGHAI) == (
        "2026-11-24 09:02 CST (+08:00) = 01:02 UTC"
    )
    assert describe(parse_when("in 1m30s", NOW, BERLIN), BERLIN) == (
        "2026-11-24 02:01:30 CET (+01:00) = 01:01:30 UTC"
    )


# -- the calendar's ends --------------------------------------------------------------------

FIRST = datetime.min.replace(tzinfo=UTC)
LAST = datetime.max.replace(tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("text", "now", "zone", "message"),
    [
        # these raised OverflowError (the person was told "its outcome is unknown")
        ("at 0001-01-01 00:00", NOW, SHANGHAI, "0001-01-01 00:00 in Asia/Shanghai is in the past"),
        ("at 9999-12-31 23:59", NOW, NEW_YORK, "more than a year away"),
        ("in 999999999d", NOW, SHANGHAI, "more than a year away"),
        ("in 2921940d", NOW, SHANGHAI, "more than a year away"),
        ("in 70000000h", NOW, SHANGHAI, "more than a year away"),
        ("in 999999999d 999999999h", NOW, SHANGHAI, "more than a year away"),
        ("in 1d", LAST - timedelta(hours=1), SHANGHAI, "past 9999-12-31"),
        ("at 10:00", LAST - timedelta(hours=1), ZoneInfo("UTC"), "past 9999-12-31"),
        ("at tomorrow 10:00", LAST - timedelta(hours=12), ZoneInfo("UTC"), "past 9999-12-31"),
        ("in 2h", LAST - timedelta(hours=3), ZoneInfo("Pacific/Kiritimati"), "past 9999-12-31"),
        ("at 10:00", FIRST, NEW_YORK, "before 0001-01-01"),
        ("in 1h", FIRST, NEW_YORK, "before 0001-01-01"),
        ("in 5d", LAST - timedelta(days=2), SHANGHAI, "past 9999-12-31"),
        ("in 367d", LAST - timedelta(days=2), SHANGHAI, "more than a year away"),
        # these were read wrongly: leading zeros counted as digits
        ("in 00000000000000m", NOW, SHANGHAI, "more than zero"),
        ("in 99999999999999s", NOW, SHANGHAI, "more than a year away"),
        ("in ²h", NOW, SHANGHAI, "not a duration"),  # a superscript is not a digit
    ],
)
def test_the_ends_of_the_calendar_are_explained(
    text: str, now: datetime, zone: ZoneInfo, message: str
) -> None:
    with pytest.raises(WhenError, match=message):
        parse_when(text, now, zone)


def test_leading_zeros_and_other_digits_are_read_as_numbers() -> None:
    assert parse_when("in 0000000000001h", NOW, SHANGHAI) == NOW + timedelta(hours=1)
    assert parse_when("in ２h", NOW, SHANGHAI) == NOW + timedelta(hours=2)  # full-width
    assert parse_when("in ٣h", NOW, SHANGHAI) == NOW + timedelta(hours=3)  # Arabic-Indic
    # the last hour of the calendar in UTC is still there
    assert parse_when("in 30m", LAST - timedelta(hours=1), ZoneInfo("UTC")) == LAST - timedelta(
        minutes=30
    )
    assert parse_when("at 0001-01-01 10:00", FIRST, NEW_YORK) == datetime(
        1, 1, 1, 14, 56, 2, tzinfo=UTC
    )


def test_describe_at_the_ends_of_the_calendar() -> None:
    # four-digit years, and an old local mean time's offset to the second
    assert describe(FIRST, SHANGHAI) == "0001-01-01 08:05:43 LMT (+08:05:43) = 00:00 UTC"
    # a time the zone's calendar cannot show is given in UTC
    assert (
        describe(FIRST, NEW_YORK) == "0001-01-01 00:00 UTC (off the calendar in America/New_York)"
    )
    assert describe(LAST.replace(second=0, microsecond=0), SHANGHAI) == (
        "9999-12-31 23:59 UTC (off the calendar in Asia/Shanghai)"
    )
