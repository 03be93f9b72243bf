"""``rollback <app> <platform> [to <version>]``."""

from __future__ import annotations

from dataclasses import dataclass

from handlers import render
from handlers.commands._kit import Command, Context, Question, Reply
from handlers.commands._words import AppArgs, Words


@dataclass(frozen=True, kw_only=True)
class RollbackArgs(AppArgs):
    to: str | None = None  # None: the version before the live one


def read(words: Words) -> RollbackArgs:
    app = words.app()
    chosen = words.required_platform(app)
    if not words.more():
        return RollbackArgs(app=app, platforms=chosen)
    words.at_most(2)
    if words.peek() != "to" or words.left() < 2:
        words.fail("write `to <version>`, or nothing for the previous version")
    words.take()
    return RollbackArgs(app=app, platforms=chosen, to=words.version())


async def run(context: Context, args: RollbackArgs) -> Reply:
    (platform,) = args.platforms
    res = await context.service.rollback(context.actor, args.app, platform, args.to)
    return Reply.of(res, render.result(res))


async def confirm(context: Context, args: RollbackArgs) -> Question:
    to = args.to or "the version before the live one"
    return Question(
        f"Roll {args.app} back to {to} on {context.where(args.app, args.platforms)}? "
        "Everyone gets that version at once."
    )


COMMAND = Command(
    name="rollback",
    usage="rollback <app> <platform> [to <version>]",
    summary="put the previous live version (or the one named) back in place",
    details="`status <app> <platform>` lists the versions the platform keeps. WeChat can go "
    "back to any of its last five releases; Alipay to the previous one only.",
    examples=("rollback demo wechat", "rollback demo wechat to 1.1.0"),
    role="publish",
    rank=120,
    guarded=True,
    two_person=True,
    read=read,
    run=run,
    confirm=confirm,
)
