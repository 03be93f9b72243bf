"""``status [app] [platform]``: ask the platforms now and show where each release stands."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers import render, views
from handlers.commands._kit import Command, Context, Reply
from handlers.commands._words import Args, Scope, Words
from handlers.config import AppEntry
from handlers.releases import ReleaseService
from handlers.timed import TimedReleases

MAX_PAGE = 10_000
DETAILED = 5  # up to this many apps each gets its detail (the platforms asked); more: counts
NUDGE = timedelta(hours=48)  # a review waiting longer needs attention (MINISHIP_NUDGE_HOURS)


@dataclass(frozen=True)
class StatusArgs(Args):
    app: str | None = None  # None: every app the person may view
    platforms: tuple[str, ...] = ()
    tag: str | None = None  # `status @shops`: the apps tagged so
    page: int = 1  # of a group's apps needing attention (`status all page 2`)

    def scope(self) -> Scope:
        return Scope(self.app, None, self.platforms[0] if self.platforms else None)


def read(words: Words) -> StatusArgs:
    app, tag = None, None
    word = words.peek()
    if word is not None and (word.startswith("@") or word == "all"):
        words.take()
        if word != "all":
            tag = word[1:] or words.fail("which tag? e.g. `status @shops`")
    elif words.more() and word not in words.platforms:
        app = words.app()
    chosen = (words.named_platform(),) if words.more() and words.peek() != "page" else ()
    page = 1
    if words.take_if("page"):
        if app is not None:
            words.fail("pages are for groups: `status all page 2`, `status @shops page 2`")
        if not words.more():
            words.fail("which page? e.g. `status all page 2`")
        page = int(words.number("page"))
        if not 1 <= page <= MAX_PAGE:
            words.fail(f"a page is a number from 1 to {MAX_PAGE}")
    words.end()
    return StatusArgs(app, chosen, tag, page)


async def run(context: Context, args: StatusArgs) -> Reply:
    keys = await context.visible_keys(args.app, "you may not view any app's releases")
    if args.tag is not None:
        keys = [k for k in keys if args.tag in context.service.app(k).tags]
        if not keys:
            return Reply(f"No app you may view is tagged @{args.tag}; `apps` lists the tags.")
    if args.app is None and len(keys) > DETAILED:
        return Reply(await _summary(context, args, keys))
    if args.page > 1:  # a few apps are shown in full, on one page
        return Reply(
            f"There is only one page: {_command(args)} shows its {len(keys)} "
            f"{'app' if len(keys) == 1 else 'apps'} in full; there is no page {args.page}.",
            error=True,
        )
    found = await context.service.status(keys, args.platforms)
    return Reply(render.status(found, context.service.emulated))


async def _summary(context: Context, args: StatusArgs, keys: list[str]) -> str:
    """Many apps: counted from what miniship stores (no platform is asked), so it answers
    at once for a thousand apps and stays within a chat message."""
    service = context.service
    apps = [service.app(k) for k in keys]
    if args.platforms:
        apps = [
            dataclasses.replace(
                a, platforms={p: s for p, s in a.platforms.items() if p in args.platforms}
            )
            for a in apps
        ]
    label = f"@{args.tag}" if args.tag is not None else "all"
    view = await group(service, label, apps, context.clock(), context.scheduler, args.platforms)
    return render.group_status(view, service.config.zone_of(apps), args.page, _command(args))


def _command(args: StatusArgs) -> str:
    """The line that shows this group again (for the next page)."""
    group = f"@{args.tag}" if args.tag is not None else "all"
    return " ".join(["status", group, *args.platforms])


async def group(
    service: ReleaseService,
    label: str,
    apps: Sequence[AppEntry],
    now: datetime,
    timed: TimedReleases | None,
    platforms: Sequence[str] = (),
) -> views.GroupStatus:
    """Where the newest release of each of ``apps`` stands on each of its platforms, and
    what needs a person: from what miniship stores, in two queries whatever the number of
    apps (no platform is asked). ``status @tag|all`` and the App Home's summary.

    ``platforms``: only these count (the apps should say so too); a review needs
    attention after MINISHIP_NUDGE_HOURS (``timed``'s rules; 48 h without a scheduler).
    """
    newest = await service.store.newest([a.key for a in apps])
    if platforms:
        newest = [v for v in newest if v.target.platform in platforms]
    waited = timed.rules.nudge_after if timed is not None else NUDGE
    return views.group_status(label, apps, newest, now, waited)


COMMAND = Command(
    name="status",
    usage="status [app | @tag | all] [platform] [page N]",
    summary="ask the platforms now and show where each release stands",
    examples=("status", "status demo wechat", "status @shops", "status all page 2"),
    role="view",
    rank=80,
    read=read,
    run=run,
)
