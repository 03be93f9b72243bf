"""``fleet [<id> [cancel | retry]]``: the runs of a command over many apps.

A run starts when a command names a group instead of an app (``submit @shops 1.3.0``,
``publish all 1.3.0 at 10:00``); see :mod:`handlers.fleet`.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers import render
from handlers.commands._kit import Command, Context, Reply
from handlers.commands._words import Args, Words

RECENT = 10


@dataclass(frozen=True)
class FleetArgs(Args):
    run: int | None = None  # None: the recent runs
    verb: str | None = None  # cancel | retry


def read(words: Words) -> FleetArgs:
    if not words.more():
        return FleetArgs()
    run = int(words.number("fleet run id"))
    verb = words.take_if("cancel", "retry")
    words.end()
    return FleetArgs(run, verb)


async def run(context: Context, args: FleetArgs) -> Reply:
    fleets = context.fleets
    if args.run is None:
        runs = await context.service.store.fleets(limit=RECENT)
        return Reply(render.fleet_list([await fleets.progress(r.id or 0) for r in runs]))
    try:
        progress = await fleets.progress(args.run)
    except LookupError:
        return Reply(f"There is no fleet run #{args.run}; `fleet` lists them.", error=True)
    if args.verb is None:
        return Reply(render.fleet(progress, detail=True))
    # stopping or re-running a run needs what starting it needed, on every app in it
    command = progress.run.command.split(maxsplit=1)[0].lower()
    role = {"upload": "release", "submit": "release"}.get(command, "publish")
    for key in {i.app_key for i in await context.service.store.fleet_items(args.run)}:
        app = context.service.config.app(key)
        refusal = await context.require(app, role, f"fleet {args.verb}") if app else None
        if refusal is not None:
            return refusal
    try:
        if args.verb == "cancel":
            progress = await fleets.cancel(context.actor, args.run)
        else:
            assert context.fleet_item is not None  # context.fleets said so
            progress = await fleets.retry(context.actor, args.run, context.fleet_item)
    except LookupError as exc:
        return Reply(f"{exc.args[0]}.", error=True)
    return Reply(render.fleet(progress, detail=True), fleet=args.run)


COMMAND = Command(
    name="fleet",
    usage="fleet [<id> [cancel | retry]]",
    summary="runs over many apps: how far, what failed; cancel or retry the failed",
    details="A command naming `@tag` or `all` instead of an app runs over every app of "
    "the group (those you may act on), asking first with the count per platform. "
    "`fleet <id> cancel` stops it (what ran stays done); `fleet <id> retry` runs the "
    "failed apps again. A run carries on after a restart.",
    examples=("fleet", "fleet 7", "fleet 7 retry"),
    role="view",
    rank=24,
    read=read,
    run=run,
)
