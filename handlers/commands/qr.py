"""``qr <app> [platform] [version]``: the trial version's QR code."""

from __future__ import annotations

from handlers import render
from handlers.commands._kit import Command, Context, Reply
from handlers.commands._words import VersionArgs, Words


def read(words: Words) -> VersionArgs:
    app = words.app()
    chosen = words.platform()
    words.at_most(1)
    version = words.version() if words.more() else None
    return VersionArgs(app=app, platforms=chosen, version=version)


async def run(context: Context, args: VersionArgs) -> Reply:
    res = await context.service.trial_code(context.actor, args.app, args.platforms, args.version)
    return Reply.of(res, render.result(res))


COMMAND = Command(
    name="qr",
    usage="qr <app> [platform] [version]",
    summary="the trial version's QR code (default: the latest upload)",
    examples=("qr demo", "qr demo alipay 1.2.0"),
    role="view",
    rank=40,
    read=read,
    run=run,
)
