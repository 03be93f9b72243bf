"""The command registry: a command is one module, and every way in finds it.

A toy command module (tests/handlers/toy_command.py) is loaded the way the registry
loads ``handlers/commands/*``; it then shows in ``help``, runs from the console and from a
signed Slack request, and its declared role is enforced — with no other file touched.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import handlers.commands
from handlers.commands import commands, find, help_text, register, unregister
from handlers.commands._registry import load
from tests.handlers import toy_command
from tests.handlers.harness import REPO, Session
from tests.slack.test_release_flow import open_world


@pytest.fixture
def toy() -> Iterator[None]:
    load(toy_command)
    try:
        yield
    finally:
        unregister("ping")


def test_every_command_module_is_registered_once() -> None:
    package = Path(handlers.commands.__file__).parent
    modules = [m.name for m in pkgutil.iter_modules([str(package)]) if not m.name.startswith("_")]
    declared = []
    for name in modules:
        module = importlib.import_module(f"handlers.commands.{name}")
        found = [getattr(module, "COMMAND", None), *getattr(module, "COMMANDS", ())]
        declared += [c.name for c in found if c is not None]
    assert sorted(declared) == sorted(c.name for c in commands())
    assert len(set(declared)) == len(declared)


def test_two_commands_with_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match="two commands"):
        register(toy_command.COMMAND.__class__(**{**vars(find("help")), "summary": "x"}))


def test_the_toy_command_is_in_help(toy: None) -> None:
    assert "ping <app> [platform]" in help_text()
    assert help_text().index("ping") < help_text().index("apps")  # its rank places it
    assert "`ping demo`" in help_text("ping")


async def test_the_toy_command_runs_from_the_console(toy: None, session: Session) -> None:
    out = await session.run("ping demo wechat")
    assert "pong from Demo Shop on wechat, for console:tester" in out
    out = await session.run("ping")
    assert "which app? e.g. `ping demo`" in out and "Usage: `ping <app> [platform]`" in out
    out = await session.run("ping nosuch")
    assert "unknown app `nosuch`" in out


async def test_the_toy_command_runs_from_slack_with_its_role(
    toy: None, tmp_path: Path, database_url: str
) -> None:
    async with open_world(tmp_path, database_url) as world:
        await world.command("ping demo", user="U0DEV")  # release role only
        await world.command("ping demo alipay", user="U0LEAD")  # publish, through S0LEADS
        answers = await world.slack.wait_for("response_url", count=2)
        texts = sorted(a.params["text"] for a in answers)
        assert any("You need the *publish* role for demo" in t and "ping" in t for t in texts)
        assert any(t.startswith("pong from Demo Shop on alipay, for U0LEAD") for t in texts)
        events = await world.runtime.store.history("demo", 5)
        assert any(e.action == "ping" and e.outcome == "refused" for e in events)


def test_a_command_loaded_first_does_not_hide_the_others() -> None:
    import subprocess
    import sys

    script = (
        "from handlers.commands._registry import load, parse\n"
        "from tests.handlers import toy_command\n"
        "load(toy_command)\n"
        "print(parse('help', ['wechat']).command.name, parse('ping demo', []).command.name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert done.stdout.split() == ["help", "ping"]


def test_a_card_button_needs_a_policy_rule() -> None:
    import dataclasses

    from handlers.commands import Button

    buttoned = dataclasses.replace(toy_command.COMMAND, button=Button("Ping"))
    with pytest.raises(ValueError, match=r"no rule in handlers/policy\.py"):
        register(buttoned)
    assert find("ping") is None


def test_commands_without_platforms_still_answer_with_usage() -> None:
    from handlers.commands import UsageError, parse

    for text in ("gray demo 10", "rollback demo", "offline demo", "connect demo"):
        with pytest.raises(UsageError, match="which platform"):
            parse(text, [])
