"""The time parser over any input: a time after now and at most a year ahead, or a
:class:`WhenError` that says what to type — never another exception (an ``OverflowError``
would reach the person as "outcome unknown" although nothing ran)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import example, given, settings
from hypothesis import strategies as st

from handlers.when import MAX_AHEAD, WhenError, describe, parse_when

# deterministic for CI, and bounded: the whole file runs in a few seconds
BOUNDED = settings(max_examples=400, deadline=None, derandomize=True, database=None)

ZONES = sorted(available_timezones())
zones = st.sampled_from(ZONES).map(ZoneInfo)

REALISTIC = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
FIRST, LAST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)

# the clock: anywhere from 0001 to 9999, often close to either end, mostly in UTC (as the
# bot's clock is) but also in other zones
nows = st.one_of(
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(max_value=datetime(1, 1, 3), timezones=st.just(UTC)),
    st.datetimes(min_value=datetime(9998, 12, 1), timezones=st.just(UTC)),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.replace(tzinfo=UTC)
    ),
    st.datetimes(timezones=zones),
    st.datetimes(min_value=datetime(9999, 12, 30), timezones=zones),
    st.datetimes(max_value=datetime(1, 1, 2), timezones=zones),
)

# whitespace of every kind (and a zero-width space, which is not whitespace)
spaces = st.text(
    st.sampled_from([" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\xa0", "\u2003", "\u3000"]),
    min_size=1,
    max_size=3,
) | st.just("\u200b")

# digits: ASCII, other scripts' decimal digits (٣, ３), and digit-like non-decimals (², ½)
ascii_digits = st.text("0123456789", min_size=1, max_size=6)
odd_digits = st.text(
    st.characters(categories=["Nd"]) | st.sampled_from("²³¹½⅓①٣３0"), min_size=1, max_size=6
)
digits = ascii_digits | odd_digits | st.text("09", min_size=7, max_size=40)

UNITS = [
    "d",
    "day",
    "days",
    "h",
    "hr",
    "hrs",
    "hour",
    "hours",
    "m",
    "min",
    "mins",
    "minute",
    "minutes",
    "s",
    "sec",
    "secs",
    "second",
    "seconds",
]
units = st.one_of(
    st.sampled_from(UNITS),
    st.sampled_from(UNITS),
    st.sampled_from(UNITS).map(str.upper),
    st.text(max_size=3),
)
numbers = st.one_of(
    st.integers(0, 10**12).map(str),
    st.integers(0, 10**12).map(str),
    st.integers(0, 366 * 86400).map(str),
    digits,
)


@st.composite
def durations(draw: st.DrawFn) -> str:
    """``in 2h``, ``in 999999999d 5s``, ``in ٣h``, ``in 0000000001h`` …"""
    parts = draw(st.lists(st.tuples(numbers, st.sampled_from(["", " "]), units), max_size=4))
    body = draw(spaces).join(n + gap + unit for n, gap, unit in parts)
    return f"{draw(st.sampled_from(['in', 'IN', 'In']))}{draw(spaces)}{body}"


@st.composite
def moments(draw: st.DrawFn) -> str:
    """``at 2026-12-01 10:00``, ``at 0001-01-01 00:00``, ``at 9999-12-31 23:59``, ``at
    tomorrow 9:30`` … with any 1–6 digit years and 1–3 digit months and days."""
    year = draw(
        st.sampled_from(["0001", "0000", "9999", "2026", "2027"])
        | st.integers(1, 9999).map(lambda n: f"{n:04d}")
        | st.integers(0, 999999).map(str)
        | ascii_digits
        | odd_digits
    )
    month = draw(st.integers(0, 13).map(lambda n: f"{n:02d}") | st.text("0123456789", max_size=3))
    day = draw(st.integers(0, 32).map(lambda n: f"{n:02d}") | st.text("0123456789", max_size=3))
    sep = draw(st.sampled_from(["-", "/", "-", ".", ""]))
    date = f"{year}{sep}{month}{sep}{day}"
    clock = draw(
        st.times().map(lambda t: f"{t:%H:%M}")
        | st.times().map(lambda t: f"{t.hour}:{t:%M:%S}")
        | st.lists(st.integers(0, 99).map(str) | digits, min_size=1, max_size=3).map(":".join)
    )
    words = draw(
        st.sampled_from(
            [[date, clock], [clock], ["today", clock], ["tomorrow", clock], [date], [clock, date]]
        )
    )
    return f"{draw(st.sampled_from(['at', 'AT', 'At']))}{draw(spaces)}{draw(spaces).join(words)}"


texts = st.one_of(
    st.text(),
    st.text().map(lambda t: "at " + t),
    st.text().map(lambda t: "in " + t),
    durations(),
    moments(),
)


def check(text: str, now: datetime, zone: ZoneInfo) -> datetime | None:
    """What any input must give: the time (checked), or None after a clear refusal."""
    try:
        moment = parse_when(text, now, zone)
    except WhenError as exc:
        assert str(exc).strip()
        return None
    assert moment.tzinfo is UTC
    assert timedelta(0) < moment - now <= MAX_AHEAD
    shown = describe(moment, zone)
    assert shown.endswith(" UTC")
    return moment


@BOUNDED
@given(texts, nows, zones)
@example("at 0001-01-01 00:00", REALISTIC, ZoneInfo("Asia/Shanghai"))
@example("at 9999-12-31 23:59", REALISTIC, ZoneInfo("America/New_York"))
@example("in 999999999d", REALISTIC, ZoneInfo("UTC"))
@example("in 99999999999999s", REALISTIC, ZoneInfo("UTC"))
@example("in 1d", LAST - timedelta(hours=1), ZoneInfo("UTC"))
@example("at 10:00", LAST - timedelta(hours=1), ZoneInfo("UTC"))
@example("in 2h", LAST - timedelta(hours=3), ZoneInfo("Pacific/Kiritimati"))
@example("at 10:00", FIRST, ZoneInfo("America/New_York"))
def test_any_text_is_a_time_or_a_clear_refusal(text: str, now: datetime, zone: ZoneInfo) -> None:
    check(text, now, zone)


@BOUNDED
@given(durations(), nows, zones)
def test_any_duration_is_a_time_or_a_clear_refusal(
    text: str, now: datetime, zone: ZoneInfo
) -> None:
    check(text, now, zone)


@BOUNDED
@given(moments(), nows, zones)
def test_any_day_and_time_is_a_time_or_a_clear_refusal(
    text: str, now: datetime, zone: ZoneInfo
) -> None:
    check(text, now, zone)


SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


@BOUNDED
@given(
    st.lists(
        st.tuples(st.integers(0, 10**12), st.integers(0, 12), st.sampled_from(UNITS)),
        min_size=1,
        max_size=3,
    ),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)).map(
        lambda d: d.replace(tzinfo=UTC)
    ),
    zones,
)
@example([(1, 9, "h")], REALISTIC, ZoneInfo("UTC"))  # in 0000000001h is an hour
@example([(999999999, 0, "d")], REALISTIC, ZoneInfo("UTC"))
def test_a_duration_means_exactly_that_long(
    parts: list[tuple[int, int, str]], now: datetime, zone: ZoneInfo
) -> None:
    """``in …`` with ASCII digits (leading zeros too): now plus that span, or "more than a
    year away" / "more than zero" when it is."""
    text = "in " + " ".join(f"{'0' * zeros}{n}{unit}" for n, zeros, unit in parts)
    seconds = sum(n * SECONDS[unit[0]] for n, _, unit in parts)
    if seconds > MAX_AHEAD.total_seconds():
        message = "more than a year away"
    elif seconds == 0:
        message = "more than zero"
    else:
        assert parse_when(text, now, zone) == now + timedelta(seconds=seconds)
        return
    try:
        parse_when(text, now, zone)
    except WhenError as exc:
        assert message in str(exc)
    else:
        raise AssertionError(f"{text!r} was accepted")


@BOUNDED
@given(
    st.datetimes().map(lambda d: d.replace(microsecond=0)),
    nows,
    zones,
)
@example(datetime(1, 1, 1), REALISTIC, ZoneInfo("Asia/Shanghai"))
@example(datetime(9999, 12, 31, 23, 59), REALISTIC, ZoneInfo("America/New_York"))
def test_a_day_and_time_means_that_wall_clock_time(
    wall: datetime, now: datetime, zone: ZoneInfo
) -> None:
    """``at YYYY-MM-DD HH:MM:SS``: that wall time in the zone, or a refusal."""
    text = f"at {wall.year:04d}-{wall.month:02d}-{wall.day:02d} {wall:%H:%M:%S}"
    moment = check(text, now, zone)
    if moment is not None:
        assert moment.astimezone(zone).replace(tzinfo=None, fold=0) == wall


@BOUNDED
@given(nows, zones)
@example(FIRST, ZoneInfo("America/New_York"))
@example(LAST, ZoneInfo("Asia/Shanghai"))
def test_describe_never_fails(moment: datetime, zone: ZoneInfo) -> None:
    """Any aware time, even one the zone's calendar cannot show, is described."""
    shown = describe(moment, zone)
    assert "UTC" in shown
