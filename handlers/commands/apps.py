"""``apps``: the configured apps, their id and authorization on each platform."""

from __future__ import annotations

from handlers import render
from handlers.commands._kit import Command, Context, Reply
from handlers.commands._words import NoArgs, Words


def read(words: Words) -> NoArgs:
    return NoArgs()


async def run(context: Context, args: NoArgs) -> Reply:
    visible = await context.visible()
    access = await context.admin.access(visible)
    return Reply(render.apps(access, context.service.emulated))


COMMAND = Command(
    name="apps",
    usage="apps",
    summary="the configured apps and their id on each platform",
    rank=20,
    read=read,
    run=run,
)
