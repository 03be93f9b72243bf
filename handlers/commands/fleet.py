"""``fleet [<id> [cancel | retry]]``: the runs of a command over many apps.

A run starts when a command names a group instead of an app (``submit @shops 1.3.0``,
``publish all 1.3.0 at 10:00``); see :mod:`handlers.fleet`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import platforms
from handlers import render
from handlers.commands import _registry
from handlers.commands._kit import Command, Context, Question, Reply
from handlers.commands._words import Args, Words
from storage import FleetState, ItemState

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
        shown = await _recent(context)
        return Reply(render.fleet_list([await fleets.progress(r) for r in shown]))
    apps = (await context.service.store.fleet_apps([args.run]))[args.run]
    if not apps or not await _may_view(context, apps, {}):  # said as of an unknown run
        return Reply(f"There is no fleet run #{args.run}; `fleet` lists them.", error=True)
    progress = await fleets.progress(args.run)
    if args.verb is None:
        return Reply(render.fleet(progress, detail=True))
    # stopping or re-running a run needs what starting it needed, on every app in it
    command = _registry.find(progress.run.command.split(maxsplit=1)[0].lower())
    role = command.role if command is not None and command.role else "publish"
    for key in sorted(apps):
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


async def confirm(context: Context, args: FleetArgs) -> Question | None:
    """A retry runs the run's command again on its failed apps: asked first, always, as
    the run itself was (nothing to ask when it would be refused: the run says why)."""
    if args.verb != "retry" or args.run is None:
        return None
    apps = (await context.service.store.fleet_apps([args.run]))[args.run]
    if not apps or not await _may_view(context, apps, {}):
        return None
    run = await context.service.store.fleet(args.run)
    items = await context.service.store.fleet_items(args.run)
    again = [i.app_key for i in items if i.state in (ItemState.FAILED, ItemState.CANCELLED)]
    if run is None or run.state == FleetState.RUNNING or not again:
        return None
    command = _registry.find(run.command.split(maxsplit=1)[0].lower())
    role = command.role if command is not None and command.role else "publish"
    for key in apps:
        app = context.service.config.app(key)
        if app is not None and not await context.may(app, role):
            return None  # refused (and recorded) when run
    per = Counter(
        p for key in again if (app := context.service.config.app(key)) for p in app.platforms
    )
    counts = ", ".join(f"{platforms.platform_class(p).display_name} {n}" for p, n in per.items())
    return Question(
        f"Run `{run.command}` again on the {len(again)} "
        f"{'app' if len(again) == 1 else 'apps'} of fleet run #{args.run} that failed or "
        f"were cancelled ({counts}), as you? It carries on as fleet run #{args.run}: "
        f"`fleet {args.run}` shows how far it got, `fleet {args.run} cancel` stops it.",
        always=True,
    )


async def _recent(context: Context) -> list[int]:
    """The newest :data:`RECENT` runs the actor may see."""
    store = context.service.store
    runs = [r.id for r in await store.fleets() if r.id is not None]
    shown: list[int] = []
    seen: dict[str, bool] = {}
    for at in range(0, len(runs), RECENT * 5):
        batch = runs[at : at + RECENT * 5]
        apps = await store.fleet_apps(batch)
        for run_id in batch:
            if await _may_view(context, apps[run_id], seen):
                shown.append(run_id)
                if len(shown) == RECENT:
                    return shown
    return shown


async def _may_view(context: Context, apps: Iterable[str], seen: dict[str, bool]) -> bool:
    """Whether the actor may see a run over ``apps``: they may view every one of them (an
    app removed since, its history: admins). ``seen`` remembers the apps answered."""
    for key in apps:
        if key not in seen:
            app = context.service.config.app(key)
            seen[key] = await (
                context.may(app, "view")
                if app is not None
                else context.authorizer.among(context.actor, context.service.config.admins)
            )
        if not seen[key]:
            return False
    return True


COMMAND = Command(
    name="fleet",
    usage="fleet [<id> [cancel | retry]]",
    summary="runs over many apps: how far, what failed; cancel or retry the failed",
    details="A command naming `@tag` or `all` instead of an app runs over every app of "
    "the group (those you may act on), asking first with the count per platform. "
    "`fleet` shows the runs over apps you may view. `fleet <id> cancel` stops it (what "
    "ran stays done); `fleet <id> retry` runs the failed (and cancelled) apps again, as you, asked "
    "first (`--yes` in a script answers). Both need "
    "the run's command's role on every app of it. A run carries on after a restart.",
    examples=("fleet", "fleet 7", "fleet 7 retry"),
    role="view",
    rank=24,
    read=read,
    run=run,
    confirm=confirm,
)
