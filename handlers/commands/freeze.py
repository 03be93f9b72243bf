"""``freeze <app|all> until <time> | <from> to <to> | for <duration> [reason…]`` and
``unfreeze <app|all>``: windows in which nothing goes live (publish, gray, rollback and
offline are refused, timed releases held)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from handlers import render
from handlers.commands._holds import (
    Held,
    lift,
    moment,
    read_lift,
    reason,
    record,
    require_all,
    target,
    zone_of,
)
from handlers.commands._kit import Command, Context, Reply
from handlers.commands._words import Words
from handlers.when import WhenError, parse_when


@dataclass(frozen=True)
class FreezeArgs(Held):
    start: str | None = None  # "at …", as typed (None: now)
    end: str = ""  # "at …" / "in …", as typed
    reason: str = ""


def read(words: Words) -> FreezeArgs:
    who = target(words)
    how = words.take_if("until", "for")
    if how == "until":
        return FreezeArgs(who, None, "at " + moment(words, "until when"), reason(words))
    if how == "for":
        if not words.more():
            words.fail("for how long? e.g. `for 2h` or `for 1d`")
        return FreezeArgs(who, None, "in " + words.take(), reason(words))
    if not words.more():
        words.fail("until when? `until 18:00`, `for 2h`, or `<from> to <to>`")
    start = "at " + moment(words, "from when")
    if words.take_if("to") is None:
        words.fail("write `<from> to <to>`, e.g. `2026-12-24 18:00 to 2026-12-27 09:00`")
    end = "at " + moment(words, "to when")
    return FreezeArgs(who, start, end, reason(words))


async def run(context: Context, args: FreezeArgs) -> Reply:
    refusal = await require_all(context, args.target, "freeze")
    if refusal is not None:
        return refusal
    zone = zone_of(context, args.target)
    now = context.clock()
    try:
        start = parse_when(args.start, now, zone) if args.start else now
        end = parse_when(args.end, now, zone)
    except WhenError as exc:
        return Reply(f"{exc} (times are in {zone.key})", error=True)
    if end <= start:
        return Reply(
            f"{render.moment(end, zone)} is not after {render.moment(start, zone)}", error=True
        )
    key = "*" if args.target == "all" else args.target
    row = await context.service.store.add_freeze(
        key, "freeze", start, end, args.reason, context.actor.id
    )
    said = _said(args.target, start, end, zone, now)
    await record(context, "freeze", args.target, f"{said} ({args.reason or 'no reason given'})")
    why = f": {args.reason}" if args.reason else ""
    return Reply(
        f"🧊 {said} (#{row.id}){why}.\n"
        "  Publish, gray, rollback and offline are refused meanwhile, timed releases are "
        "held; the override role may act anyway with `--override <why>`. "
        f"`unfreeze {args.target}` lifts it."
    )


def _said(target: str, start: datetime, end: datetime, zone: ZoneInfo, now: datetime) -> str:
    who = "every app" if target == "all" else target
    begins = "" if start <= now else f" from {render.moment(start, zone)}"
    return f"{who} frozen{begins} until {render.moment(end, zone)}"


async def run_unfreeze(context: Context, args: Held) -> Reply:
    return await lift(context, args, "freeze", "unfreeze")


COMMANDS = (
    Command(
        name="freeze",
        usage="freeze <app|all> until <time> | <from> to <to> | for <duration> [reason…]",
        summary="nothing goes live for a while: publish, gray, rollback, offline refused",
        details="Times are the app's, like `publish … at`: `until 18:00`, `until tomorrow 9:30`, "
        "`2026-12-24 18:00 to 2026-12-27 09:00`, `for 2h`. Timed releases that fall due "
        "meanwhile are held and announced. Recurring windows (every Friday evening to Monday "
        "morning) are [[freeze]] tables in miniship.toml.",
        examples=("freeze demo until 18:00 release train closed", "freeze all for 2h incident"),
        role="publish",
        rank=185,
        read=read,
        run=run,
    ),
    Command(
        name="unfreeze",
        usage="unfreeze <app|all>",
        summary="lift the freezes set from chat",
        role="publish",
        rank=186,
        read=read_lift,
        run=run_unfreeze,
    ),
)
