"""``history <app>``: who did what, when, and what the platform said."""

from __future__ import annotations

from handlers import render
from handlers.commands._kit import Command, Context, Reply
from handlers.commands._words import AppArgs, Words


def read(words: Words) -> AppArgs:
    words.at_most(1)
    return AppArgs(app=words.app("which app? e.g. `history demo`"))


async def run(context: Context, args: AppArgs) -> Reply:
    app, events = await context.service.history(args.app)
    return Reply(render.history(app.key, app.timezone, events))


COMMAND = Command(
    name="history",
    usage="history <app>",
    summary="who did what, when, and what the platform said",
    role="view",
    rank=170,
    read=read,
    run=run,
)
