"""``gray <app> <platform> [version] <percent>`` | ``gray <app> <platform> stop``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from handlers import render
from handlers.commands._kit import Command, Context, Question, Reply
from handlers.commands._words import VersionArgs, Words, clip


@dataclass(frozen=True, kw_only=True)
class GrayArgs(VersionArgs):
    """No version: the approved (or staged) one."""

    share: int | None = None  # None: stop


def read(words: Words) -> GrayArgs:
    app = words.app()
    chosen = words.required_platform(app)
    version = words.version() if words.left() == 2 else None
    if words.left() != 1:
        words.fail("give a percentage (e.g. 10, p30) or `stop`")
    word = words.take()
    if word.lower() == "stop":
        return GrayArgs(app=app, platforms=chosen, version=version)
    number = word.lower().removeprefix("p").removesuffix("%")
    if not re.fullmatch(r"[0-9]{1,3}", number) or not 1 <= int(number) <= 100:
        words.fail(f"`{clip(word)}` is not a percentage from 1 to 100")
    return GrayArgs(app=app, platforms=chosen, version=version, share=int(number))


async def run(context: Context, args: GrayArgs) -> Reply:
    (platform,) = args.platforms
    res = await context.service.gray(context.actor, args.app, platform, args.version, args.share)
    return Reply.of(res, render.result(res))


async def confirm(context: Context, args: GrayArgs) -> Question | None:
    if args.share is not None:
        return None  # growing a share is undone by stop; stopping is what asks
    return Question(
        f"Stop the staged release of {args.app} on {context.where(args.app, args.platforms)}? "
        "Users who have the new version go back to the live one."
    )


COMMAND = Command(
    name="gray",
    usage="gray <app> <platform> [version] <percent> | gray <app> <platform> stop",
    summary="release the approved version to a share of users, grow the share, or stop",
    details="WeChat takes any whole percentage from 1 to 100 that grows; Alipay p10, p30, "
    "p50. `publish` then releases it to everyone; `stop` takes it back.",
    examples=("gray demo wechat 10", "gray demo alipay p30", "gray demo wechat stop"),
    role="publish",
    rank=110,
    guarded=True,
    read=read,
    run=run,
    confirm=confirm,
)
