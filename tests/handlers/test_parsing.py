"""The command language, as the registry parses it: every command, and bad input of every
kind."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import pytest

from handlers.commands import MAX_INPUT, UsageError, commands, help_text
from handlers.commands import parse as parse_command

P = ["wechat", "alipay"]
COMMANDS = {c.name: c for c in commands()}


@dataclasses.dataclass(frozen=True)
class Read:
    """A parsed command as its name and argument values (each command's own ``Args``)."""

    name: str
    values: dict[str, Any]

    def __getattr__(self, field: str) -> Any:
        if field.startswith("__"):
            raise AttributeError(field)
        return self.values[field]


def parse(text: str, platforms: list[str]) -> Read:
    parsed = parse_command(text, platforms)
    return Read(parsed.command.name, dataclasses.asdict(parsed.args))


_DEFAULTS = {"app": None, "platforms": (), "version": None, "notes": "", "when": None}


def Command(
    name: str,
    app: str | None = None,
    platforms: tuple[str, ...] = (),
    version: str | None = None,
    notes: str = "",
    **values: Any,
) -> Read:
    """What a command line should read as: the named values, every other field of the
    command's arguments at its default."""
    given = {"app": app, "platforms": platforms, "version": version, "notes": notes, **values}
    fields = {f.name: f for f in dataclasses.fields(_args_of(name))}
    out = {}
    for key, field in fields.items():
        if key in given:
            out[key] = given[key]
        elif field.default is not dataclasses.MISSING:
            out[key] = field.default
        else:
            raise AssertionError(f"{name} needs {key}")
    extra = {k: v for k, v in given.items() if k not in fields and v != _DEFAULTS.get(k)}
    assert not extra, f"{name} has no {extra}"
    return Read(name, out)


def _args_of(name: str) -> Any:
    """The Args class a command reads into (from the annotations of its reader)."""
    import typing

    return typing.get_type_hints(COMMANDS[name].read)["return"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", Command("help")),
        ("help publish", Command("help", topic="publish")),
        ("HELP Publish", Command("help", topic="publish")),
        ("apps", Command("apps")),
        ("/ship apps", Command("apps")),
        ("  /SHIP   apps  ", Command("apps")),
        (
            'upload demo 1.2.0 fix the cart; don\'t "crash"',
            Command("upload", "demo", (), "1.2.0", 'fix the cart; don\'t "crash"'),
        ),
        ("upload demo wechat 1.2.0", Command("upload", "demo", ("wechat",), "1.2.0")),
        (
            "upload demo WeChat v1.2 notes  with   spaces",
            Command("upload", "demo", ("wechat",), "v1.2", "notes  with   spaces"),
        ),
        (
            "upload demo alipay 1.2.0 新版本上线",
            Command("upload", "demo", ("alipay",), "1.2.0", "新版本上线"),
        ),
        ("submit demo 1.2.0", Command("submit", "demo", (), "1.2.0")),
        ("submit demo alipay 1.2.0", Command("submit", "demo", ("alipay",), "1.2.0")),
        ("publish demo 1.2.0", Command("publish", "demo", (), "1.2.0")),
        ("publish demo wechat 1.2.0", Command("publish", "demo", ("wechat",), "1.2.0")),
        ("withdraw demo wechat 1.2.0", Command("withdraw", "demo", ("wechat",), "1.2.0")),
        ("status", Command("status")),
        ("status demo", Command("status", "demo")),
        ("status demo alipay", Command("status", "demo", ("alipay",))),
        ("status wechat", Command("status", None, ("wechat",))),
        ("history demo", Command("history", "demo")),
    ],
)
def test_commands(text: str, expected: Read) -> None:
    assert parse(text, P) == expected


@pytest.mark.parametrize(
    ("text", "message", "command"),
    [
        ("", "type a command", None),
        ("/ship", "type a command", None),
        ("   ", "type a command", None),
        ("uplaod demo 1.0", "Did you mean `upload`?", None),
        ("frobnicate", "unknown command", None),
        ("help me please", "at most one", "help"),
        ("help nonsense", "no command `nonsense`", "help"),
        ("apps extra", "`apps @tag` those tagged; not `extra`", "apps"),
        ("upload", "which app and version", "upload"),
        ("upload demo", "which version", "upload"),
        ("upload demo wechat", "which version", "upload"),
        ("upload demo wechta 1.0", "did you mean `wechat`", "upload"),
        ("upload demo banana", "neither a platform", "upload"),
        ("upload de/mo 1.0", "not an app name", "upload"),
        ("upload demo 1.0/../x", "neither a platform", "upload"),
        ("submit demo 1.0 extra", "unexpected `extra`", "submit"),
        ("publish demo wechat 1.0 now", "unexpected `now`", "publish"),
        ("withdraw demo", "which version", "withdraw"),
        ("status demo bogus", "not a platform", "status"),
        ("status demo wechat more", "unexpected `more`", "status"),
        ("history", "which app", "history"),
        ("history demo more", "unexpected", "history"),
        ("upload `rm -rf` 1.0", "not an app name", "upload"),
    ],
)
def test_bad_input_explains_itself(text: str, message: str, command: str | None) -> None:
    with pytest.raises(UsageError) as err:
        parse(text, P)
    assert message in err.value.message
    assert err.value.command == command
    if command:
        assert err.value.usage == COMMANDS[command].usage


def test_too_long_input_and_notes_are_refused() -> None:
    with pytest.raises(UsageError, match="at most"):
        parse("upload demo 1.0 " + "x" * MAX_INPUT, P)
    with pytest.raises(UsageError, match="notes are at most"):
        parse("upload demo 1.0 " + "x" * 1500, P)


def test_a_very_long_word_is_clipped_in_the_message() -> None:
    with pytest.raises(UsageError) as err:
        parse("x" * 500, P)
    assert len(err.value.message) < 120


@pytest.mark.parametrize(
    "text",
    [
        "\x00",
        "upload\x00demo 1.0",
        "🚀",
        "upload 🚀 1.0",
        "status \t\n demo",
        "/ship /ship",
        "upload demo 1.0\n#reject",
        "publish -- --",
        "withdraw demo wechat ''",
    ],
)
def test_odd_input_never_fails_otherwise(text: str) -> None:
    with contextlib.suppress(UsageError):
        parse(text, P)


def test_help_lists_every_command_and_explains_each() -> None:
    text = help_text()
    for spec in COMMANDS.values():
        assert spec.usage in text
        assert spec.usage in help_text(spec.name)


def test_versions_fit_the_platforms_and_the_database() -> None:
    assert parse("upload demo 1" + "0" * 63, P).version == "1" + "0" * 63
    with pytest.raises(UsageError, match="at most 64"):
        parse("upload demo v1" + "0" * 63, P)


# -- timed publish and schedule -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "publish demo 1.2.0 at 2026-12-01 10:00",
            Command("publish", "demo", (), "1.2.0", when="at 2026-12-01 10:00"),
        ),
        (
            "publish demo wechat 1.2.0 in 2h",
            Command("publish", "demo", ("wechat",), "1.2.0", when="in 2h"),
        ),
        (
            "/ship publish demo Alipay v1.2 AT  tomorrow   9:30  ",
            Command("publish", "demo", ("alipay",), "v1.2", when="AT  tomorrow   9:30"),
        ),
        (
            "publish demo 1.2.0\nin 1d 4h",
            Command("publish", "demo", (), "1.2.0", when="in 1d 4h"),
        ),
        # the grammar only finds where the time starts; handlers.when reads (and refuses) it
        ("publish demo 1.2.0 at", Command("publish", "demo", (), "1.2.0", when="at")),
        (
            "publish demo 1.2.0 in soon 🚀",
            Command("publish", "demo", (), "1.2.0", when="in soon 🚀"),
        ),
        ("publish demo 1.2.0", Command("publish", "demo", (), "1.2.0", when=None)),
        ("schedule", Command("schedule")),
        ("SCHEDULE", Command("schedule")),
        ("/ship schedule demo", Command("schedule", app="demo")),
        ("schedule cancel 7", Command("schedule", cancel=7)),
        ("schedule cancel #7", Command("schedule", cancel=7)),
        ("schedule Cancel #0042", Command("schedule", cancel=42)),
        ("schedule cancel 123456789", Command("schedule", cancel=123456789)),
    ],
)
def test_timed_publish_and_schedule(text: str, expected: Read) -> None:
    assert parse(text, P) == expected


def test_the_time_is_kept_as_typed_and_apart_from_the_version() -> None:
    command = parse("publish demo 1.2.0 at 2026-12-01 10:00:30", P)
    assert command.version == "1.2.0" and "notes" not in command.values
    assert command.when == "at 2026-12-01 10:00:30"
    # a version that looks like the keyword is still the version
    assert parse("publish demo 1.0 in 5m", P).version == "1.0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("publish demo 1.2.0 now", "unexpected `now`"),
        ("publish demo wechat 1.2.0 tomorrow 10:00", "unexpected `tomorrow`"),
        ("publish demo 1.2.0 atx 10:00", "unexpected `atx`"),
        ("publish demo 1.2.0 @ 10:00", "unexpected `@`"),
    ],
)
def test_other_words_after_a_publish_version_point_to_at_and_in(text: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse(text, P)
    assert message in err.value.message
    assert "at <time>" in err.value.message and "in <duration>" in err.value.message
    assert err.value.command == "publish"
    assert err.value.usage == COMMANDS["publish"].usage


@pytest.mark.parametrize(
    "text",
    [
        "submit demo 1.2.0 at 10:00",
        "withdraw demo wechat 1.2.0 in 2h",
    ],
)
def test_only_publish_can_be_timed(text: str) -> None:
    with pytest.raises(UsageError, match=r"unexpected `(at|in)`") as err:
        parse(text, P)
    assert "at <time>" not in err.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schedule cancel", "which one?"),
        ("schedule CANCEL", "which one?"),
        ("schedule cancel x", "`x` is not a timed release id"),
        ("schedule cancel #", "`#` is not a timed release id"),
        ("schedule cancel ##7", "`##7` is not a timed release id"),
        ("schedule cancel -7", "not a timed release id"),
        ("schedule cancel 7.5", "not a timed release id"),
        ("schedule cancel 1234567890", "not a timed release id"),
        ("schedule cancel 1 2", "unexpected `2`"),
        ("schedule a b", "unexpected `b`"),
        ("schedule demo wechat", "unexpected `wechat`"),
        ("schedule #7", "not an app name"),
        ("schedule de/mo", "not an app name"),
    ],
)
def test_bad_schedule_commands_explain_themselves(text: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse(text, P)
    assert message in err.value.message
    assert err.value.command == "schedule"
    assert err.value.usage == COMMANDS["schedule"].usage


def test_odd_digits_in_a_schedule_id_are_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not a timed release id"):
        parse("schedule cancel ²", P)


def test_help_explains_timed_publish_and_schedule() -> None:
    assert "[at <time> | in <duration>]" in COMMANDS["publish"].usage
    assert "schedule cancel <id>" in COMMANDS["schedule"].usage
    assert "`in 2h`" in help_text("publish")
    assert COMMANDS["schedule"].usage in help_text()


@pytest.mark.parametrize(
    ("text", "platforms"),
    [
        ("publish demo wechat alipay 1.0.0", ("wechat", "alipay")),
        ("publish demo alipay WECHAT 1.0.0", ("alipay", "wechat")),
        ("publish demo 1.0.0 alipay", ("alipay",)),
        ("submit demo wechat 1.0.0 alipay", ("wechat", "alipay")),
        ("withdraw demo wechat wechat 1.0.0", ("wechat",)),
        ("upload demo 1.0.0 alipay is better", ()),  # after the version: the notes
    ],
)
def test_platform_words_stand_before_or_after_the_version(
    text: str, platforms: tuple[str, ...]
) -> None:
    assert parse(text, P).platforms == platforms
