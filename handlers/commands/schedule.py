"""``schedule [app]`` lists pending timed releases; ``schedule cancel <id>`` cancels one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from handlers import render
from handlers.commands._kit import Command, Context, Reply
from handlers.commands._words import Args, Scope, Words, clip
from handlers.releases import CommandRefused


@dataclass(frozen=True)
class ScheduleArgs(Args):
    app: str | None = None  # list: this app's (None: every app the person may view)
    cancel: int | None = None  # the timed release to cancel

    def scope(self) -> Scope:
        return Scope(self.app)


def read(words: Words) -> ScheduleArgs:
    if words.take_if("cancel") is None:
        words.at_most(1)
        return ScheduleArgs(app=words.app() if words.more() else None)
    if not words.more():
        words.fail("which one? `schedule` lists them with their ids")
    words.at_most(1)
    word = words.take()
    number = word.removeprefix("#")
    if not re.fullmatch(r"[0-9]{1,9}", number):
        words.fail(f"`{clip(word)}` is not a timed release id")
    return ScheduleArgs(cancel=int(number))


async def run(context: Context, args: ScheduleArgs) -> Reply:
    timed = context.timed
    if args.cancel is None:
        zones = {k: a.timezone for k, a in context.service.config.apps.items()}
        keys = [args.app] if args.app else [a.key for a in await context.visible()]
        return Reply(render.schedule(await timed.pending(keys), zones))
    action = await timed.action(args.cancel)
    app = context.service.app(action.app_key)
    if not await context.may(app, "view"):  # as if it did not exist
        raise CommandRefused(f"there is no timed release #{args.cancel}")
    refusal = await context.require(app, "publish", "schedule cancel", action.version)
    if refusal is not None:
        return refusal
    await timed.cancel(context.actor, args.cancel)
    return Reply(
        f"Cancelled timed release #{action.id} ({action.app_key} {action.version} at "
        f"{render.moment(action.due_at, app.timezone)}); nothing will be published then.",
        about=(action.app_key, action.version),
    )


COMMAND = Command(
    name="schedule",
    usage="schedule [app] | schedule cancel <id>",
    summary="list pending timed releases, or cancel one",
    examples=("schedule demo", "schedule cancel 7"),
    role="view",
    rank=180,
    read=read,
    run=run,
)
