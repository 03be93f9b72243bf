"""``withdraw <app> [platform] <version>``."""

from __future__ import annotations

from handlers import render
from handlers.commands._kit import Button, Command, Context, Question, Reply
from handlers.commands._words import ReleaseArgs, Words


def read(words: Words) -> ReleaseArgs:
    app, chosen, version = words.release()
    return ReleaseArgs(app=app, platforms=chosen, version=version)


async def run(context: Context, args: ReleaseArgs) -> Reply:
    res = await context.service.withdraw(context.actor, args.app, args.platforms, args.version)
    return Reply.of(res, render.result(res))


async def confirm(context: Context, args: ReleaseArgs) -> Question:
    return Question(
        f"Withdraw {args.app} {args.version} on {context.where(args.app, args.platforms)}? "
        "It goes back to development (out of review, or its decision undone where the "
        "platform allows it); it can be submitted again. WeChat allows 5 withdrawals a day."
    )


COMMAND = Command(
    name="withdraw",
    usage="withdraw <app> [platform] <version>",
    summary="pull a version out of review (Alipay: also an approved one, back to development)",
    details="Platforms limit withdrawals (WeChat: 5 a day, 10 a month per mini program); "
    "what is left is shown, and a withdrawal is refused when none is.",
    examples=("withdraw demo wechat 1.2.0",),
    role="publish",
    rank=100,
    button=Button(
        "Withdraw",
        style="danger",
        confirm=("Withdraw", "It leaves review; it can be submitted again later."),
    ),
    fleet=True,
    read=read,
    run=run,
    confirm=confirm,
)
