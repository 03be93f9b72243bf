"""``qr <app> [platform] [version]``: the trial version's QR code."""

from __future__ import annotations

from dataclasses import dataclass

from handlers import render
from handlers.commands._kit import AppArgs, Command, Context, Reply, Scope, Words


@dataclass(frozen=True, kw_only=True)
class QrArgs(AppArgs):
    version: str | None = None

    def scope(self) -> Scope:
        return Scope(self.app, self.version, self.platform)


def read(words: Words) -> QrArgs:
    app = words.app()
    chosen = words.platform()
    words.at_most(1)
    version = words.version() if words.more() else None
    return QrArgs(app=app, platforms=chosen, version=version)


async def run(context: Context, args: QrArgs) -> Reply:
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
