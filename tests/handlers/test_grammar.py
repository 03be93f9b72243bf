"""The command grammar: every command, and bad input of every kind."""

from __future__ import annotations

import contextlib

import pytest

from handlers.grammar import COMMANDS, MAX_INPUT, Command, UsageError, help_text, parse

P = ["wechat", "alipay"]


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
def test_commands(text: str, expected: Command) -> None:
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
        ("apps extra", "unexpected `extra`", "apps"),
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
