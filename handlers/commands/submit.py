"""``submit <app> [platform] <version> [--expedite]``."""

from __future__ import annotations

from dataclasses import dataclass

from handlers import render
from handlers.commands._kit import Button, Command, Context, Reply
from handlers.commands._words import ReleaseArgs, Words


@dataclass(frozen=True, kw_only=True)
class SubmitArgs(ReleaseArgs):
    expedite: bool = False


def read(words: Words) -> SubmitArgs:
    app, chosen, version = words.release()
    expedite = words.take_if("--expedite") is not None
    return SubmitArgs(app=app, platforms=chosen, version=version, expedite=expedite)


async def run(context: Context, args: SubmitArgs) -> Reply:
    res = await context.service.submit(
        context.actor, args.app, args.platforms, args.version, args.expedite
    )
    return Reply.of(res, render.result(res))


COMMAND = Command(
    name="submit",
    usage="submit <app> [platform] <version> [--expedite]",
    summary="submit an uploaded version for review",
    details="A rejected or withdrawn version can be submitted again. `--expedite` asks for "
    "a faster review on every platform: WeChat right after the submission (its "
    "speedupaudit, from a monthly quota), Alipay with the submission (speed_up). "
    "WeChat counts submissions against a monthly quota (`quota`).",
    examples=("submit demo 1.2.0", "submit demo alipay 1.2.0 --expedite"),
    role="release",
    rank=50,
    button=Button("Submit for review"),
    fleet=True,
    read=read,
    run=run,
)
