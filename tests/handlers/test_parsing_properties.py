"""The command language over any input: a command, or a :class:`UsageError` with a message
(and, when it names a command, that command's usage) — never another exception. And the
time of a timed ``publish`` is, for any clock and zone, a time or a ``WhenError``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import example, given, settings
from hypothesis import strategies as st

from handlers.commands import MAX_INPUT, Parsed, UsageError, commands, find, parse
from handlers.commands.publish import PublishArgs
from handlers.when import MAX_AHEAD, WhenError, describe, parse_when

# deterministic for CI, and bounded: the whole file runs in a few seconds
BOUNDED = settings(max_examples=400, deadline=None, derandomize=True, database=None)

NAMES = [c.name for c in commands()]
PLATFORMS = ["wechat", "alipay"]
platform_lists = st.sampled_from([PLATFORMS, [], ["wechat"]])

spaces = st.text(
    st.sampled_from([" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\xa0", "\u2003", "\u3000"]),
    min_size=1,
    max_size=3,
)
control = st.characters(categories=["Cc", "Cf"])
# one word: the language's own words, near-misses, and anything at all
words = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(NAMES).map(str.upper),
    st.sampled_from([*PLATFORMS, "WeChat", "ALIPAY", "wechat,", "we", "ali"]),
    st.sampled_from(
        ["at", "in", "to", "cancel", "template", "add", "delete", "stop", "--expedite", "/ship"]
    ),
    st.sampled_from(["demo", "1.2.0", "v2", "10", "p30", "100%", "#7", "2h", "10:00", "tomorrow"]),
    st.integers(-(10**30), 10**30).map(str),
    st.text("0123456789", min_size=1, max_size=40),
    st.text(st.characters(categories=["Nd"]), min_size=1, max_size=8),  # ٣, ３ …
    st.text(min_size=1, max_size=12).filter(lambda w: not w.isspace()),
    st.text(control, min_size=1, max_size=4),
    st.text("`*_~<>@#&!|", min_size=1, max_size=6),
    st.text(min_size=41, max_size=300),  # longer than a reply quotes
    st.text("9", min_size=60, max_size=500),
)


@st.composite
def lines(draw: st.DrawFn) -> str:
    """A command word (mostly) and then any words, joined by any whitespace."""
    head = draw(
        st.sampled_from(NAMES)
        | st.sampled_from(NAMES).map(str.title)
        | st.sampled_from(NAMES).map(lambda n: "/ship " + n)
        | words
    )
    rest = draw(st.lists(words, max_size=6))
    line = head + "".join(draw(spaces) + word for word in rest)
    return draw(st.sampled_from(["", " ", "\n"])) + line + draw(st.sampled_from(["", " ", "\t"]))


# what each placeholder in a usage line (`<app>`, `[platform]`, `<id>` …) may be filled with
FILL = {
    "app": st.sampled_from(["demo", "Demo_1", "a" * 64, "a" * 65, "-demo", "dé", "`demo`"]),
    "platform": st.sampled_from([*PLATFORMS, "WeChat", "weixin", "alipay,wechat"]),
    "version": st.sampled_from(["1.2.0", "v2", "1.2.0-beta+7", "1." + "0" * 70, "٣", "1..2"]),
    "percent": st.sampled_from(["10", "p30", "100%", "0", "101", "1000", "p", "%"]),
    "time": st.sampled_from(["10:00", "tomorrow 9:30", "2026-12-01 10:00", "0001-01-01 00:00"]),
    "duration": st.sampled_from(["2h", "1d 4h", "999999999d", "99999999999999s", "0s", "٣h"]),
    "command": st.sampled_from([*NAMES, "nope"]),
    "notes": st.text(max_size=30),
}
for key in ("id", "draft_id", "template_id"):
    FILL[key] = st.sampled_from(["7", "#7", "0", "9" * 18, "9" * 19, "#", "٣", "x7", "-1"])


def forms(usage: str, name: str) -> list[list[str]]:
    """A usage line's forms as their words: ``gray <app> … | gray <app> <platform> stop``
    is two; ``[at <time> | in <duration>]`` stays in one (each may be left out)."""
    found: list[list[str]] = []
    for token in usage.split():
        if token == name:
            found.append([])
        elif token != "|":
            found[-1].append(token)
    return found


@st.composite
def by_usage(draw: st.DrawFn) -> str:
    """A command written after its usage line: optional parts left out or not (required
    ones now and then too), some words swapped for any word, and maybe more words after."""
    command = draw(st.sampled_from(commands()))
    out = [draw(st.sampled_from([command.name, command.name.upper(), "/ship " + command.name]))]
    for token in draw(st.sampled_from(forms(command.usage, command.name))):
        slot = token.strip("[]<>…")
        if draw(st.integers(0, 1 if token.startswith("[") else 7)) == 0:
            continue  # an optional part left out, or (rarely) a required one
        if draw(st.integers(0, 4)) == 0:
            out.append(draw(words))
        elif token.startswith(("<", "[<")) or slot in FILL:
            out.append(draw(FILL.get(slot, words)))
        else:
            out.append(slot)  # a literal: at, in, to, stop, cancel, template, --expedite …
    out.extend(draw(st.lists(words, max_size=2)))
    return draw(spaces).join(out)


texts = st.one_of(
    st.text(),
    st.text(max_size=20).map(lambda t: "/ship " + t),
    st.sampled_from(NAMES).flatmap(lambda n: st.text().map(lambda t: f"{n} {t}")),
    lines(),
    by_usage(),
    by_usage(),
    # around the length limit
    st.integers(MAX_INPUT - 40, MAX_INPUT + 40).map(lambda n: ("publish demo 1.0.0 " * n)[:n]),
)


def check(text: str, platforms: list[str]) -> Parsed | None:
    """What any input must give: a command, or a usage error that explains itself."""
    try:
        parsed = parse(text, platforms)
    except UsageError as exc:
        assert exc.message.strip()
        assert str(exc) == exc.message
        if exc.command is not None:
            command = find(exc.command)
            assert command is not None, exc.command
            assert exc.usage == command.usage
        return None
    assert isinstance(parsed, Parsed)
    assert parsed.command is find(parsed.command.name)
    parsed.args.scope()  # what the role check reads
    return parsed


@BOUNDED
@given(texts, platform_lists)
@example("publish demo 1.0.0 at 0001-01-01 00:00", PLATFORMS)
@example("gray demo wechat 99999999999999999999999", PLATFORMS)
@example("schedule cancel #99999999999999999999", PLATFORMS)
@example("template add ٣", PLATFORMS)
@example("status wechat", [])
@example("upload demo 1.0.0 template", ["wechat"])
def test_any_text_is_a_command_or_a_usage_error(text: str, platforms: list[str]) -> None:
    check(text, platforms)


@BOUNDED
@given(lines(), platform_lists)
def test_any_words_after_a_command_are_a_command_or_a_usage_error(
    text: str, platforms: list[str]
) -> None:
    check(text, platforms)


@BOUNDED
@given(by_usage(), platform_lists)
def test_each_command_written_after_its_usage_is_a_command_or_a_usage_error(
    text: str, platforms: list[str]
) -> None:
    check(text, platforms)


# -- timed publish: the parser's `when` through the time parser ----------------------------

ZONES = sorted(available_timezones())
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
zones = st.sampled_from(ZONES).map(ZoneInfo)
nows = st.one_of(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.replace(tzinfo=UTC)
    ),
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(min_value=datetime(9998, 12, 1), timezones=st.just(UTC)),
    st.datetimes(max_value=datetime(1, 1, 3), timezones=st.just(UTC)),
)
amounts = st.one_of(
    st.integers(0, 10**15).map(str),
    st.text("0123456789", min_size=1, max_size=30),
    st.text(st.characters(categories=["Nd"]), min_size=1, max_size=4),
)
units = st.sampled_from(["d", "days", "h", "hours", "m", "min", "s", "secs", "x", ""])
spans = st.lists(st.tuples(amounts, st.sampled_from(["", " "]), units), min_size=1, max_size=3)
whens = st.one_of(
    spans.map(lambda parts: "in " + " ".join(n + gap + u for n, gap, u in parts)),
    st.tuples(st.integers(0, 99999), st.integers(0, 13), st.integers(0, 32), st.times()).map(
        lambda d: f"at {d[0]:04d}-{d[1]:02d}-{d[2]:02d} {d[3]:%H:%M}"
    ),
    st.times().map(lambda t: f"at {t:%H:%M}"),
    st.tuples(st.sampled_from(["today", "tomorrow", "yesterday"]), st.times()).map(
        lambda d: f"at {d[0]} {d[1]:%H:%M}"
    ),
    st.text(max_size=30).map(lambda t: "at " + t),
    st.text(max_size=30).map(lambda t: "in " + t),
)


@st.composite
def timed_publishes(draw: st.DrawFn) -> str:
    platform = draw(st.sampled_from(["", " wechat", " alipay"]))
    version = draw(st.sampled_from(["1.0.0", "2.3.4-beta"]))
    when: str = draw(whens)
    return f"publish demo{platform} {version} {when}"


@BOUNDED
@given(timed_publishes(), nows, zones)
@example("publish demo 1.0.0 at 0001-01-01 00:00", NOW, ZoneInfo("Asia/Shanghai"))
@example("publish demo 1.0.0 at 9999-12-31 23:59", NOW, ZoneInfo("Etc/GMT+12"))
@example("publish demo 1.0.0 in 999999999d", NOW, ZoneInfo("UTC"))
@example("publish demo 1.0.0 in 99999999999999s", NOW, ZoneInfo("UTC"))
def test_a_timed_publish_is_a_time_or_a_when_error(
    text: str, now: datetime, zone: ZoneInfo
) -> None:
    parsed = check(text, PLATFORMS)
    assert parsed is not None, text  # the app, version and at/in are all well formed
    assert isinstance(parsed.args, PublishArgs)
    when = parsed.args.when
    assert when is not None and when.split()[0] in ("at", "in")
    try:
        due = parse_when(when, now, zone)
    except WhenError as exc:
        assert str(exc).strip()
        return
    assert timedelta(0) < due - now <= MAX_AHEAD
    describe(due, zone)
