"""``offline <app> <platform> [version]``."""

from __future__ import annotations

from dataclasses import dataclass

from handlers import render
from handlers.commands._kit import AppArgs, Command, Context, Reply, Scope, Words


@dataclass(frozen=True, kw_only=True)
class OfflineArgs(AppArgs):
    version: str | None = None  # None: whatever is live

    def scope(self) -> Scope:
        return Scope(self.app, self.version, self.platform)


def read(words: Words) -> OfflineArgs:
    app = words.app()
    chosen = words.required_platform(app)
    words.at_most(1)
    version = words.version() if words.more() else None
    return OfflineArgs(app=app, platforms=chosen, version=version)


async def run(context: Context, args: OfflineArgs) -> Reply:
    (platform,) = args.platforms
    res = await context.service.offline(context.actor, args.app, platform, args.version)
    return Reply.of(res, render.result(res))


COMMAND = Command(
    name="offline",
    usage="offline <app> <platform> [version]",
    summary="take the live version off the shelves (Alipay)",
    examples=("offline demo alipay",),
    role="publish",
    rank=130,
    read=read,
    run=run,
)
