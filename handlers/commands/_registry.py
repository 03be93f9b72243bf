"""The one list of commands: every public module of :mod:`handlers.commands` declares its
command(s) as ``COMMAND`` (or ``COMMANDS``), and this registry is built from them. The
parser, ``help``, the role checks, the console, Slack (``/ship``, mentions, card buttons)
all read it.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from handlers import policy
from handlers.commands._kit import Command
from handlers.commands._words import Args, UsageError, Words, clip

__all__ = [
    "MAX_INPUT",
    "Parsed",
    "action_id",
    "button_command",
    "buttons",
    "commands",
    "doing",
    "find",
    "help_text",
    "load",
    "parse",
    "register",
    "unregister",
]

MAX_INPUT = 4000  # Slack's slash-command text is shorter than this
ACTION_PREFIX = "ship_"

_commands: dict[str, Command[Any]] = {}
_discovered = False


def register(command: Command[Any]) -> None:
    if command.name in _commands and _commands[command.name] is not command:
        raise ValueError(f"two commands are called {command.name!r}")
    if not re.fullmatch(r"[a-z][a-z0-9-]*", command.name):
        raise ValueError(f"{command.name!r} is not a command word")
    if command.button is not None and not policy.rules(command.name):
        raise ValueError(
            f"{command.name!r} has a card button but no rule in handlers/policy.py says "
            "from which states it may run"
        )
    _commands[command.name] = command


def unregister(name: str) -> None:
    _commands.pop(name, None)


def load(module: ModuleType) -> list[Command[Any]]:
    """Register the command(s) a module declares."""
    found: list[Command[Any]] = []
    if isinstance(getattr(module, "COMMAND", None), Command):
        found.append(module.COMMAND)
    found.extend(c for c in getattr(module, "COMMANDS", ()) if isinstance(c, Command))
    if not found:
        raise ValueError(f"{module.__name__} declares no COMMAND")
    for command in found:
        register(command)
    return found


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = importlib.import_module("handlers.commands")
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            load(importlib.import_module(f"handlers.commands.{info.name}"))


def commands() -> list[Command[Any]]:
    """Every command, in the order ``help`` lists them."""
    _discover()
    return sorted(_commands.values(), key=lambda c: (c.rank, c.name))


def find(name: str) -> Command[Any] | None:
    commands()
    return _commands.get(name)


def doing(role: str) -> str:
    """The commands ``role`` allows, as words: "upload, submit, expedite"."""
    return ", ".join(c.name for c in commands() if c.role == role)


def buttons() -> list[Command[Any]]:
    """The commands a release card may offer as buttons, in help's order."""
    return [c for c in commands() if c.button is not None]


def action_id(name: str) -> str:
    """The Slack action_id of a command's card button."""
    return ACTION_PREFIX + name


def button_command(action: str) -> Command[Any] | None:
    """The command a card button's action_id runs (None: not a miniship button)."""
    command = find(action.removeprefix(ACTION_PREFIX)) if action.startswith(ACTION_PREFIX) else None
    return command if command is not None and command.button is not None else None


@dataclass(frozen=True)
class Parsed:
    command: Command[Any]
    args: Args


def parse(text: str, platforms: Sequence[str]) -> Parsed:
    """Parse one command line.

    Args:
        text: what the person typed, with or without a leading ``/ship``.
        platforms: the platform names that may be typed (from the platform registry).
    """
    if len(text) > MAX_INPUT:
        raise UsageError(f"that is {len(text)} characters; a command is at most {MAX_INPUT}")
    words = [(m.group(), m.end()) for m in re.finditer(r"\S+", text)]
    if words and words[0][0].lower() == "/ship":
        words = words[1:]
    if not words:
        raise UsageError("type a command; `help` lists them")
    name = words[0][0].lower()
    command = find(name)
    if command is None:
        close = difflib.get_close_matches(name, [c.name for c in commands()], n=1)
        hint = f" Did you mean `{close[0]}`?" if close else " `help` lists the commands."
        raise UsageError(f"unknown command `{clip(name)}`.{hint}")
    try:
        return Parsed(command, command.parse(Words(text, words[1:], name, platforms)))
    except UsageError as exc:
        raise UsageError(exc.message, name, command.usage) from None


def help_text(topic: str | None = None) -> str:
    command = find(topic) if topic is not None else None
    if command is not None:
        text = f"`{command.usage}`\n{command.summary}."
        if command.details:
            text += f"\n{command.details}"
        if command.examples:
            text += "\nFor example: " + ", ".join(f"`{e}`" for e in command.examples)
        return text
    listed = commands()
    width = max(len(c.usage) for c in listed)
    lines = [f"  {c.usage.ljust(width)}  {c.summary}" for c in listed]
    return (
        "Commands (in Slack, type them after /ship):\n"
        + "\n".join(lines)
        + "\nLeave out the platform to act on every platform the app is on."
    )
