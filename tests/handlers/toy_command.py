"""A command that exists only in the tests: one module, as every command is one module.

The registry test loads it exactly as the registry loads ``handlers/commands/*``; nothing
else in miniship knows of it.
"""

from __future__ import annotations

from handlers.commands import AppArgs, Command, Context, Reply, Words


def read(words: Words) -> AppArgs:
    app = words.app("which app? e.g. `ping demo`")
    return AppArgs(app=app, platforms=words.platform())


async def run(context: Context, args: AppArgs) -> Reply:
    app = context.service.app(args.app)
    where = ", ".join(context.service.platforms_for(app, args.platforms))
    return Reply(f"pong from {app.name} on {where}, for {context.actor}")


COMMAND = Command(
    name="ping",
    usage="ping <app> [platform]",
    summary="answer pong (a toy command)",
    examples=("ping demo",),
    role="publish",
    rank=5,
    read=read,
    run=run,
)
