"""``history <app|all> …``: who did what, when, and what the platform said — filtered,
paged back from the newest, 30 at a time, and exported as CSV.

    history demo                              the newest 30 events of demo
    history demo --before 812                 the 30 before event 812 (the next page)
    history all wechat --action publish,gray  every app the person may view, on WeChat
    history demo --by <@U0LEAD> --since 30d --until 2026-12-01
    history demo --since 30d export           every match as a CSV file

Every refusal, confirmation (asked, confirmed, cancelled), review decision and platform
answer is an event, so each shows here. Pages go by event id (``--before``), so a page
stays put while new events arrive.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from handlers import render, views
from handlers.commands._holds import SPANNING
from handlers.commands._kit import Attachment, Command, Context, Reply
from handlers.commands._words import Args, Scope, UsageError, Words, clip
from handlers.config import AppEntry
from handlers.releases import CommandRefused

__all__ = [
    "EXPORT_LIMIT",
    "PAGE",
    "Export",
    "HistoryArgs",
    "ago",
    "export",
    "moment",
    "read",
    "run",
]

PAGE = 30  # events shown at a time
EXPORT_LIMIT = 10_000  # rows in one CSV file
MAX_AGO = timedelta(days=36_525)  # a hundred years back is further than any history
MAX_ACTIONS = 20

_AGO = re.compile(r"([0-9]{1,7})([wdhm])", re.ASCII)
_UNIT = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1)}
_DATE = re.compile(r"([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})", re.ASCII)
_ACTION = re.compile(r"[a-z][a-z0-9_-]{0,31}", re.ASCII)
_FAMILIES = {  # recorded with a space: `--action template` (or template-add) finds them
    "template": ("template add", "template delete"),
    "template-add": ("template add",),
    "template_add": ("template add",),
    "template-delete": ("template delete",),
    "template_delete": ("template delete",),
}
_NOT_COMMANDS = {"review", "push", "errors", "scheduler", "authorized"}  # recorded actions too
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,30}", re.ASCII)
_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,30})(?:\|[^>]*)?>", re.ASCII)
_ACTOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._#-]{0,199}", re.ASCII)
_DASHES = ("—", "–", "−")  # what a phone or a Mac makes of `--`

Moment = timedelta | date  # how long ago, or a day on the app's calendar


# -- the arguments ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class HistoryArgs(Args):
    app: str | None  # None: `all`, every app the person may view
    platforms: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    actor: str | None = None  # an actor id: U0LEAD, console:root, scheduler …
    since: Moment | None = None
    until: Moment | None = None
    before: int | None = None  # an event id: the page of events older than it
    export: bool = False

    def scope(self) -> Scope:
        return Scope()  # the view role is checked by the query: a removed app has history

    def line(self, *, before: int | None = None, export: bool = False) -> str:
        """The command that shows these events again, from before event ``before``."""
        words = ["history", self.app or "all", *self.platforms]
        if self.actions:
            words += ["--action", ",".join(a.replace(" ", "-") for a in self.actions)]
        if self.actor is not None:
            words += ["--by", self.actor]
        for option, value in (("--since", self.since), ("--until", self.until)):
            if value is not None:
                words += [option, _moment_words(value)]
        if before is not None:
            words += ["--before", str(before)]
        if export:
            words.append("export")
        return " ".join(words)


# -- reading the words ----------------------------------------------------------------------


def ago(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``1d12h``: how long ago (more than nothing, at
    most a hundred years). Anything else is a :class:`UsageError`."""
    compact = text.lower()
    parts = _AGO.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise UsageError(f"`{clip(text)}` is neither a duration (like 30d, 12h, 90m) nor a date")
    span = timedelta(0)
    for number, unit in parts:
        span += int(number) * _UNIT.get(unit, timedelta(minutes=1))
        if span > MAX_AGO:
            raise UsageError(f"`{clip(text)}` is more than a hundred years back")
    if span <= timedelta(0):
        raise UsageError("a duration must be more than zero, like 30d")
    return span


def moment(text: str) -> Moment:
    """A ``--since`` / ``--until`` value: a duration ago (:func:`ago`) or a day
    (``2026-12-01``, on the app's calendar). Anything else is a :class:`UsageError`."""
    match = _DATE.fullmatch(text)
    if match is None:
        return ago(text)
    try:
        return date(*(int(g) for g in match.groups()))
    except ValueError:
        raise UsageError(f"`{clip(text)}` is not a date on the calendar") from None


def _moment_words(value: Moment) -> str:
    if isinstance(value, date):
        return value.isoformat()
    minutes = int(value.total_seconds()) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    words = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return "".join(words) or "0m"


def _actions(text: str, words: Words) -> tuple[str, ...]:
    while text.endswith(",") and not (words.peek() or "-").startswith("-"):  # `a, b`
        text += words.take()
    names: list[str] = []
    for name in (n.strip().lower() for n in text.split(",")):
        if not name:
            continue
        if not _ACTION.fullmatch(name):
            raise UsageError(f"`{clip(name)}` is not an action (like publish, gray, review)")
        known = _known_actions()
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3)
            meant = f"; did you mean {' or '.join(f'`{c}`' for c in close)}?" if close else ""
            raise UsageError(
                f"`{clip(name)}` is not an action miniship records{meant} (actions are the "
                "commands' names, and review, push, errors, scheduler, authorized)"
            )
        names.extend(_FAMILIES.get(name, (name,)))
    if not names:
        raise UsageError("which actions? e.g. `--action publish,gray`")
    if len(names) > MAX_ACTIONS:
        raise UsageError(f"at most {MAX_ACTIONS} actions at once")
    return tuple(dict.fromkeys(names))


def _known_actions() -> frozenset[str]:
    """What ``--action`` may name: the commands (as the registry has them), the families
    recorded with a space, and what is recorded without a command."""
    from handlers.commands import _registry  # the registry imports this module

    return frozenset({c.name for c in _registry.commands()} | set(_FAMILIES) | _NOT_COMMANDS)


def _actor(text: str, words: Words) -> str:
    """``<@U0LEAD>``, ``<@U0LEAD|lead>`` (how Slack sends a mention), ``@U0LEAD``,
    ``U0LEAD``, or another actor's id (``console:root``, ``scheduler``)."""
    while text.startswith("<@") and ">" not in text and words.more():  # a name with spaces
        text += " " + words.take()
    mention = _MENTION.fullmatch(text)
    if mention is not None:
        return mention.group(1)
    if text.startswith("@"):
        if _SLACK_USER.fullmatch(text[1:]):
            return text[1:]
        raise UsageError(
            f"`{clip(text)}` is a name; mention the person (Slack then sends their id) "
            "or give their member id, like U0123ABCD"
        )
    if not _ACTOR.fullmatch(text):
        raise UsageError(
            f"`{clip(text)}` is not someone miniship knows; give a Slack mention or "
            "member id (U0123ABCD), or an actor such as console:root or scheduler"
        )
    return text


def _before(text: str, words: Words) -> int:
    number = text.removeprefix("#")
    if not re.fullmatch(r"[0-9]{1,18}", number, re.ASCII):
        raise UsageError(f"`{clip(text)}` is not an event id (a number)")
    return int(number)


def _when(text: str, words: Words) -> Moment:
    return moment(text)


_Reader = Callable[[str, Words], Any]
_OPTIONS: dict[str, tuple[str, _Reader, str]] = {  # option → (field, reader, example)
    "--action": ("actions", _actions, "publish,gray"),
    "--actions": ("actions", _actions, "publish,gray"),
    "--by": ("actor", _actor, "@person"),
    "--since": ("since", _when, "30d"),
    "--until": ("until", _when, "2026-12-01"),
    "--before": ("before", _before, "812"),
}
_AFTER_APP = "a platform, --action, --by, --since, --until, --before or export"


def _option(word: str, words: Words, given: dict[str, Any]) -> None:
    """One ``--name value`` (or ``--name=value``) into ``given``."""
    for dash in _DASHES:
        if word.startswith(dash):
            word = "--" + word.removeprefix(dash).lstrip("-")
    name, equals, value = word.partition("=")
    known = _OPTIONS.get(name.lower())
    if known is None:
        words.fail(f"unexpected `{clip(word)}`; after the app come {_AFTER_APP}")
    field, reader, example = known
    if field in given:
        words.fail(f"`{name.lower()}` is given twice")
    if not equals:
        if not words.more():
            words.fail(f"`{name.lower()}` needs a value, e.g. `{name.lower()} {example}`")
        value = words.take()
    if not value:
        words.fail(f"`{name.lower()}` needs a value, e.g. `{name.lower()} {example}`")
    given[field] = reader(value, words)


def read(words: Words) -> HistoryArgs:
    if not words.more():
        words.fail("which app? e.g. `history demo`, or `history all` for every app you may view")
    app = None if words.take_if("all") else words.app()
    platforms = list(words.platform())
    given: dict[str, Any] = {}
    while words.more():
        if (platform := words.take_if(*words.platforms)) is not None:
            if platform not in platforms:
                platforms.append(platform)
        elif words.take_if("export"):
            if "export" in given:
                words.fail("`export` is given twice")
            given["export"] = True
        else:
            _option(words.take(), words, given)
    args = HistoryArgs(app=app, platforms=tuple(platforms), **given)
    if _before_since(args.until, args.since):
        words.fail("`--until` must come after `--since`; nothing is in that window")
    return args


def _before_since(until: Moment | None, since: Moment | None) -> bool:
    """Whether ``until`` is certainly not after ``since`` (both of one kind)."""
    if isinstance(until, timedelta) and isinstance(since, timedelta):
        return until >= since  # more ago
    if isinstance(until, date) and isinstance(since, date):
        return until < since  # --until's day counts in full
    return False


# -- running it ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Query:
    apps: list[AppEntry]
    unscoped: bool  # also the events that name no app
    zone: ZoneInfo
    since: datetime | None
    until: datetime | None

    def filters(self, args: HistoryArgs) -> list[str]:
        return render.history_filters(
            args.platforms, args.actions, args.actor, self.since, self.until, self.zone
        )


def _bound(value: Moment | None, now: datetime, zone: ZoneInfo, *, end: bool) -> datetime | None:
    """Where ``--since`` (or, ``end``, ``--until``) puts the edge, as aware UTC (None: no
    edge). ``--until``'s day counts in full."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return now - value
    try:
        day = value + timedelta(days=1) if end else value
        return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)
    except OverflowError:  # a day at the calendar's ends, in UTC
        if end == (value.year > 1):  # --until its last day, --since its first: no edge
            return None
        raise CommandRefused(f"nothing has happened since {value}") from None


async def _viewable(context: Context, key: str) -> AppEntry:
    """App ``key`` if the actor may view its history: its view role, or for an app that
    was removed (its history stays) the admin role."""
    app = context.service.config.app(key)
    if app is None and key in {r.key for r in await context.service.store.apps()}:
        app = AppEntry(key, key, context.service.config.timezone)
        refusal = await context.require_admin("history", key)
    else:
        app = app or context.service.app(key)  # refused with the known apps
        refusal = await context.require(app, "view", "history")
    if refusal is not None:
        raise CommandRefused(refusal.text)
    return app


async def _query(context: Context, args: HistoryArgs) -> _Query:
    config = context.service.config
    if args.app is not None:
        apps = [await _viewable(context, args.app)]
        unscoped = False
    else:
        apps = await context.visible()
        if not apps:
            raise CommandRefused("you may not view any app's history")
        unscoped = len(apps) == len(config.apps)  # the shared things: for who sees all
    zone = config.zone_of(apps)
    now = context.clock().astimezone(UTC)
    since = _bound(args.since, now, zone, end=False)
    until = _bound(args.until, now, zone, end=True)
    if since is not None and until is not None and since >= until:
        raise CommandRefused(
            f"nothing happened at or after {render.local_time(since, zone)} and before "
            f"{render.local_time(until, zone)}; `--until` must come after `--since`"
        )
    return _Query(apps, unscoped, zone, since, until)


async def _events(
    context: Context, args: HistoryArgs, query: _Query, limit: int
) -> list[views.EventView]:
    rows = await context.service.store.events(
        [a.key for a in query.apps],
        unscoped=query.unscoped,
        spanning=SPANNING,
        platforms=args.platforms,
        actions=args.actions,
        actor=args.actor,
        since=query.since,
        until=query.until,
        before=args.before,
        limit=limit,
    )
    return [views.event(e) for e in rows]


def _scope(args: HistoryArgs, query: _Query) -> str:
    if args.app is not None:
        return args.app
    return "every app you may view (" + ", ".join(a.key for a in query.apps) + ")"


async def run(context: Context, args: HistoryArgs) -> Reply:
    if args.export:
        made = await export(context, args)
        attachment = Attachment(made.title, made.filename, made.content)
        return Reply(made.text, private=True, files=(attachment,))
    query = await _query(context, args)
    found = await _events(context, args, query, PAGE + 1)
    page = found[:PAGE]
    older = args.line(before=page[-1].id) if len(found) > PAGE and page[-1].id else None
    text = render.history_page(
        _scope(args, query),
        query.zone,
        page,
        filters=query.filters(args),
        older=older,
        apps=args.app is None,
        paged=args.before is not None,
    )
    return Reply(text)


@dataclass(frozen=True)
class Export:
    """A CSV export: what to say, and the file (UTF-8 with a byte-order mark, for Excel)."""

    text: str
    filename: str
    content: bytes
    title: str
    rows: int


async def export(context: Context, args: HistoryArgs) -> Export:
    """Every event that matches (the newest :data:`EXPORT_LIMIT`), as CSV."""
    query = await _query(context, args)
    found = await _events(context, args, query, EXPORT_LIMIT + 1)
    rows = found[:EXPORT_LIMIT]
    rest = None
    if len(found) > EXPORT_LIMIT and rows[-1].id:
        rest = args.line(before=rows[-1].id, export=True)
    stamp = context.clock().astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    filename = f"miniship-history-{args.app or 'all'}-{stamp}Z.csv"
    scope = _scope(args, query)
    text = render.history_export(
        scope, len(rows), filename, filters=query.filters(args), rest=rest, limit=EXPORT_LIMIT
    )
    content = render.history_csv(list(reversed(rows)), query.zone)  # oldest first
    return Export(text, filename, content, f"History of {scope}", len(rows))


COMMAND = Command(
    name="history",
    usage="history <app|all> [platform] [filters…] [export]",
    summary="who did what, when, and what the platform said; filtered, paged, as CSV",
    details=(
        "Newest last, 30 at a time; the reply says how to see older ones. `all`: every app "
        "you may view. Refusals, confirmations and review decisions are all events.\n"
        "Filters, in any order:\n"
        "  `--action publish,gray`  these actions (upload, submit, publish, withdraw, gray, "
        "rollback, offline, review, schedule, connect, template …)\n"
        "  `--by @person`  what one person did (a mention or member id), or an actor such "
        "as console:root or scheduler\n"
        "  `--since 30d`, `--until 2026-12-01`  a duration ago (30d, 12h, 90m, 2w) or a day "
        "in the app's time zone (`--until`'s day counts in full)\n"
        "  `--before <id>`  the events before that one (the next page)\n"
        "A platform keeps the events that name none (a command refused on every platform).\n"
        f"`export`: every match (up to {EXPORT_LIMIT:,}) as a CSV file, for you only."
    ),
    examples=(
        "history demo",
        "history all --action publish --since 30d",
        "history demo wechat --by @person --until 2026-12-01",
        "history demo --since 30d export",
    ),
    role="view",
    rank=170,
    read=read,
    run=run,
)
