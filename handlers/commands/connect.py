"""``connect <app> <platform>``: the authorization link for a mini program's admin."""

from __future__ import annotations

from handlers import render
from handlers.commands._kit import Command, Context, Reply
from handlers.commands._words import AppArgs, Words


def read(words: Words) -> AppArgs:
    app = words.app()
    return AppArgs(app=app, platforms=words.required_platform(app))


async def run(context: Context, args: AppArgs) -> Reply:
    (platform,) = args.platforms
    link = await context.admin.connect(context.actor, context.service.app(args.app), platform)
    return Reply(render.connect_link(args.app, platform, link), private=True)


COMMAND = Command(
    name="connect",
    usage="connect <app> <platform>",
    summary="the link a mini program's admin opens to authorize miniship's platform",
    examples=("connect demo wechat",),
    role="publish",
    rank=160,
    read=read,
    run=run,
)
