"""``status [app] [platform]``: ask the platforms now and show where each release stands."""

from __future__ import annotations

from dataclasses import dataclass

from handlers import render
from handlers.commands._kit import Command, Context, Reply
from handlers.commands._words import Args, Scope, Words


@dataclass(frozen=True)
class StatusArgs(Args):
    app: str | None = None  # None: every app the person may view
    platforms: tuple[str, ...] = ()

    def scope(self) -> Scope:
        return Scope(self.app, None, self.platforms[0] if self.platforms else None)


def read(words: Words) -> StatusArgs:
    app = None
    if words.more() and words.peek() not in words.platforms:
        app = words.app()
    chosen = (words.named_platform(),) if words.more() else ()
    return StatusArgs(app, chosen)


async def run(context: Context, args: StatusArgs) -> Reply:
    keys = await context.visible_keys(args.app, "you may not view any app's releases")
    found = await context.service.status(keys, args.platforms)
    return Reply(render.status(found, context.service.emulated))


COMMAND = Command(
    name="status",
    usage="status [app] [platform]",
    summary="ask the platforms now and show where each release stands",
    examples=("status", "status demo wechat"),
    role="view",
    rank=80,
    read=read,
    run=run,
)
