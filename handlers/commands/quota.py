"""``quota <app> [platform]``: what is left of the platforms' limits."""

from __future__ import annotations

from handlers import render
from handlers.commands._kit import Command, Context, Reply
from handlers.commands._words import AppArgs, Words


def read(words: Words) -> AppArgs:
    return AppArgs(app=words.app(), platforms=words.platform())


async def run(context: Context, args: AppArgs) -> Reply:
    app = context.service.app(args.app)
    return Reply(render.quotas(app.key, await context.admin.quotas(app, args.platforms)))


COMMAND = Command(
    name="quota",
    usage="quota <app> [platform]",
    summary="what is left of the platforms' limits: submissions, expedites, withdrawals",
    examples=("quota demo wechat",),
    role="view",
    rank=70,
    read=read,
    run=run,
)
