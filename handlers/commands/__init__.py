"""The commands: one module each (or one per small family), found by the registry.

A command module declares ``COMMAND = Command(...)``: its words (usage, summary, details,
examples), the role it needs, how its arguments are read (a small ``Args`` dataclass and
a reader over :class:`Words`), and what it runs. Adding a command is adding a module here;
``help``, the role checks, the console and Slack find it through the registry. Modules
whose names start with ``_`` are the machinery, not commands.
"""

from __future__ import annotations

from handlers.commands._kit import Asked, Button, Command, Context, Picture, Question, Reply
from handlers.commands._registry import (
    MAX_INPUT,
    Parsed,
    action_id,
    button_command,
    buttons,
    commands,
    find,
    help_text,
    parse,
    register,
    unregister,
)
from handlers.commands._runner import Commands, Ran
from handlers.commands._words import (
    APP,
    MAX_VERSION,
    VERSION,
    AppArgs,
    Args,
    ReleaseArgs,
    UsageError,
    VersionArgs,
    Words,
)

__all__ = [
    "APP",
    "MAX_INPUT",
    "MAX_VERSION",
    "VERSION",
    "AppArgs",
    "Args",
    "Asked",
    "Button",
    "Command",
    "Commands",
    "Context",
    "Parsed",
    "Picture",
    "Question",
    "Ran",
    "ReleaseArgs",
    "Reply",
    "UsageError",
    "VersionArgs",
    "Words",
    "action_id",
    "button_command",
    "buttons",
    "commands",
    "find",
    "help_text",
    "parse",
    "register",
    "unregister",
]
