"""What ``freeze``/``unfreeze`` and ``lock``/``unlock`` share: the app or ``all`` they
name, the reason, the role check on every app for ``all``, lifting."""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from handlers import render
from handlers.commands._kit import Context, Reply
from handlers.commands._words import Args, Scope, Words
from handlers.config import AppEntry
from handlers.freezes import FreezeView

DAY = re.compile(r"(\d{4}-\d{1,2}-\d{1,2}|today|tomorrow)", re.IGNORECASE)
MAX_REASON = 500
SPANNING = ("freeze", "unfreeze", "lock", "unlock")
"""The actions that may name ``all`` (recorded with no app): every app's history shows them."""


@dataclass(frozen=True)
class Held(Args):
    """An app key, or "all" (the runner checks roles on a named app; ``all`` checks
    every app in :func:`require_all`)."""

    target: str

    def scope(self) -> Scope:
        return Scope(None if self.target == "all" else self.target)


def target(words: Words) -> str:
    word = words.app("which app, or `all`?")
    return "all" if word.lower() == "all" else word


def reason(words: Words) -> str:
    said = words.rest_as_typed() if words.more() else ""
    if len(said) > MAX_REASON:
        words.fail(f"a reason is at most {MAX_REASON} characters")
    return said


def moment(words: Words, what: str) -> str:
    """One time as typed: ``18:00``, ``tomorrow 9:30`` or ``2026-12-24 18:00``."""
    if not words.more():
        words.fail(f"{what}? e.g. `2026-12-24 18:00`, `tomorrow 9:30` or `18:00`")
    first = words.take()
    if DAY.fullmatch(first):
        if not words.more():
            words.fail(f"what time {first}? e.g. `{first} 18:00`")
        return f"{first} {words.take()}"
    return first


def apps_of(context: Context, target: str) -> list[AppEntry]:
    if target == "all":
        return list(context.service.config.apps.values())
    return [context.service.app(target)]


def zone_of(context: Context, target: str) -> ZoneInfo:
    """The zone times for ``target`` are read and shown in: the app's, or for ``all`` the
    one zone every app shares, else the file's top-level ``timezone``."""
    return context.service.config.zone_of(apps_of(context, target))


async def require_all(context: Context, target: str, verb: str) -> Reply | None:
    """For ``all``: the refusal unless the actor may publish on every app."""
    if target != "all":
        return None
    for app in apps_of(context, target):
        refusal = await context.require(app, "publish", verb)
        if refusal is not None:
            return refusal
    return None


async def record(context: Context, action: str, target: str, message: str) -> None:
    await context.service.store.record(
        actor=context.actor.id,
        action=action,
        outcome="ok",
        app=None if target == "all" else target,
        message=message,
    )


def read_lift(words: Words) -> Held:
    words.at_most(1)
    return Held(target(words))


async def lift(context: Context, args: Held, kind: str, verb: str) -> Reply:
    """Lift the freezes (or locks) set from chat; someone else's need the override role
    (else a publisher could unlock and publish, skipping the override rule)."""
    refusal = await require_all(context, args.target, verb)
    if refusal is not None:
        return refusal
    key = "*" if args.target == "all" else args.target
    theirs = [
        f
        for f in await context.service.store.freezes([key], context.clock())
        if f.app_key == key and f.kind == kind and f.created_by != context.actor.id
    ]
    for app in apps_of(context, args.target) if theirs else []:
        refusal = await context.require(app, "override", verb)
        if refusal is not None:
            return refusal
    lifted = await context.service.store.lift_freezes(key, kind, context.actor.id, context.clock())
    if lifted:
        ids = ", ".join(f"#{f.id}" for f in lifted)
        await record(context, verb, args.target, f"lifted {kind} {ids}")
        said = f"Lifted {kind} {ids} of {args.target}"
    else:
        said = f"No {kind} of {args.target} set from chat is in force or to come"
    remaining = await still_held(context, args.target)
    if remaining:
        return Reply(f"{said}; still in force or to come:\n" + "\n".join(remaining))
    return Reply(f"{said}; releases may go live again." if lifted else f"{said}.")


async def still_held(context: Context, target: str) -> list[str]:
    """What holds ``target`` now or will (another kind, an ``all`` hold, a window in
    miniship.toml, one set for later), each with how it is lifted."""
    zone, now = zone_of(context, target), context.clock()
    lines: dict[str, None] = {}  # in order, once: an ``all`` hold holds every app
    freezes = context.service.freezes
    for app in apps_of(context, target):
        for h in await freezes.active(app.key, app.timezone, now):
            lines[render.hold(h, zone) + _lifted_by(h)] = None
        for h in await freezes.coming(app.key, now):
            later = f", from {render.moment(h.since, zone)}"
            lines[render.hold(h, zone) + later + _lifted_by(h)] = None
    return list(lines)


def _lifted_by(h: FreezeView) -> str:
    if h.by == "miniship.toml":
        return " — a window in miniship.toml: change it there"
    verb = "unfreeze" if h.kind == "freeze" else "unlock"
    return f" — `{verb} {'all' if h.scope == 'all apps' else h.scope}`"
