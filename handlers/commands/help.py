"""``help [command]``: the commands, or one explained."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.commands import _registry
from handlers.commands._kit import Command, Context, Reply
from handlers.commands._words import Args, Words, clip


@dataclass(frozen=True)
class HelpArgs(Args):
    topic: str | None = None


def read(words: Words) -> HelpArgs:
    if words.left() > 1:
        words.fail("help takes at most one command name")
    topic = words.take().lower() if words.more() else None
    if topic is not None and _registry.find(topic) is None:
        words.fail(f"there is no command `{clip(topic)}`")
    return HelpArgs(topic)


async def run(context: Context, args: HelpArgs) -> Reply:
    return Reply(_registry.help_text(args.topic))


COMMAND = Command(
    name="help",
    usage="help [command]",
    summary="list the commands, or explain one",
    examples=("help publish",),
    rank=10,
    read=read,
    run=run,
)
