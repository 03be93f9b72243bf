"""``expedite <app> [platform] <version>``."""

from __future__ import annotations

from handlers import render
from handlers.commands._kit import Button, Command, Context, Reply
from handlers.commands._words import ReleaseArgs, Words


def read(words: Words) -> ReleaseArgs:
    app, chosen, version = words.release()
    return ReleaseArgs(app=app, platforms=chosen, version=version)


async def run(context: Context, args: ReleaseArgs) -> Reply:
    res = await context.service.expedite(context.actor, args.app, args.platforms, args.version)
    return Reply.of(res, render.result(res))


COMMAND = Command(
    name="expedite",
    usage="expedite <app> [platform] <version>",
    summary="ask for a faster review of a version in review (uses the platform's quota)",
    details="WeChat takes it any time during the review. Alipay takes it only with the "
    "submission: `submit <app> alipay <version> --expedite`. `submit --expedite` does the "
    "same on both.",
    examples=("expedite demo wechat 1.2.0",),
    role="release",
    rank=60,
    button=Button("Expedite"),
    read=read,
    run=run,
)
