"""``offline <app> <platform> [version]``."""

from __future__ import annotations

from handlers import render
from handlers.commands._kit import Command, Context, Question, Reply
from handlers.commands._words import VersionArgs, Words


def read(words: Words) -> VersionArgs:
    """``<app> <platform> [version]`` (no version: whatever is live)."""
    app = words.app()
    chosen = words.required_platform(app)
    words.at_most(1)
    version = words.version() if words.more() else None
    return VersionArgs(app=app, platforms=chosen, version=version)


async def run(context: Context, args: VersionArgs) -> Reply:
    (platform,) = args.platforms
    res = await context.service.offline(context.actor, args.app, platform, args.version)
    return Reply.of(res, render.result(res))


async def confirm(context: Context, args: VersionArgs) -> Question:
    return Question(
        f"Really take {args.app} offline on {context.where(args.app, args.platforms)}? "
        "Nobody can open it there until a version is published again."
    )


COMMAND = Command(
    name="offline",
    usage="offline <app> <platform> [version]",
    summary="take the live version off the shelves (Alipay)",
    examples=("offline demo alipay",),
    role="publish",
    rank=130,
    guarded=True,
    two_person=True,
    read=read,
    run=run,
    confirm=confirm,
)
