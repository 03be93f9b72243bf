"""``approve <id>``, ``deny <id> [reason…]`` and ``requests [app]``: the second person of a
two-person rule (``approvals = 1``): publish, rollback and offline by one person wait for
another person with the publish role."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from handlers import render
from handlers.commands._kit import Command, Context, Reply
from handlers.commands._words import Args, Words, clip
from handlers.releases import Actor, CommandRefused
from storage.models import ApprovalRequest


@dataclass(frozen=True)
class RequestArgs(Args):
    number: int
    reason: str = ""


def _number(words: Words) -> int:
    if not words.more():
        words.fail("which request? `requests` lists them with their numbers")
    word = words.take()
    number = word.removeprefix("#")
    if not re.fullmatch(r"[0-9]{1,9}", number):
        words.fail(f"`{clip(word)}` is not a request number")
    return int(number)


def read_approve(words: Words) -> RequestArgs:
    return RequestArgs(_number(words))


def read_deny(words: Words) -> RequestArgs:
    number = _number(words)
    return RequestArgs(number, words.rest_as_typed() if words.more() else "")


async def _pending(context: Context, number: int, verb: str) -> ApprovalRequest | Reply:
    """The request, if the actor may decide it (the publish role, not the requester)."""
    row = await context.service.store.request(number)
    app = context.service.config.app(row.app_key) if row is not None else None
    if row is None or app is None or not await context.may(app, "view"):
        raise CommandRefused(f"there is no request #{number}; `requests` lists them")
    refusal = await context.require(app, "publish", verb, row.version)
    if refusal is not None:
        return refusal
    if row.requested_by == context.actor.id:
        await _record(context, row, verb, "refused", "the requester cannot decide their own")
        raise CommandRefused(
            f"you asked for request #{number}; another person with the publish role decides it"
        )
    return row


async def run_approve(context: Context, args: RequestArgs) -> Reply:
    row = await _pending(context, args.number, "approve")
    if isinstance(row, Reply):
        return row
    decided = await context.service.store.decide_request(args.number, "approved", context.actor.id)
    if decided is None:
        return await _gone(context, args.number)
    await _record(context, row, "approve", "ok", f"#{row.id}: {row.command}")
    assert context.rerun is not None
    ran = await context.rerun(Actor(row.requested_by), row.command, row.channel, context.actor.id)
    head = (
        f"✅ Request #{row.id} approved: `{row.command}`, requested by {row.requested_by}, "
        f"approved by {context.actor}."
    )
    return dataclasses.replace(ran, text=f"{head}\n{ran.text}")


async def run_deny(context: Context, args: RequestArgs) -> Reply:
    row = await _pending(context, args.number, "deny")
    if isinstance(row, Reply):
        return row
    decided = await context.service.store.decide_request(
        args.number, "denied", context.actor.id, args.reason
    )
    if decided is None:
        return await _gone(context, args.number)
    why = f": {args.reason}" if args.reason else ""
    await _record(context, row, "deny", "ok", f"#{row.id}: {row.command}{why}")
    about = (row.app_key, row.version) if row.version else None
    return Reply(
        f"🚫 Request #{row.id} denied by {context.actor}{why}. `{row.command}` (asked by "
        f"{row.requested_by}) was not run.",
        about=about,
    )


async def _gone(context: Context, number: int) -> Reply:
    row = await context.service.store.request(number)
    state = row.state if row is not None else "gone"
    raise CommandRefused(f"request #{number} is {state}; nothing was run")


async def _record(
    context: Context, row: ApprovalRequest, verb: str, outcome: str, message: str
) -> None:
    await context.service.store.record(
        actor=context.actor.id,
        action=verb,
        outcome=outcome,
        app=row.app_key,
        version=row.version,
        message=message,
    )


@dataclass(frozen=True)
class ListArgs(Args):
    app: str | None = None


def read_list(words: Words) -> ListArgs:
    words.at_most(1)
    return ListArgs(words.app() if words.more() else None)


async def run_list(context: Context, args: ListArgs) -> Reply:
    keys = await context.visible_keys(args.app, "you may not view any app")
    rows = await context.service.store.requests(keys, context.clock())
    if not rows:
        return Reply("No requests are waiting for a second person.")
    lines = ["Waiting for a second person (`approve <n>` / `deny <n> [why]`):"]
    for row in rows:
        zone = context.service.app(row.app_key).timezone
        lines.append(
            f"  #{row.id} `{row.command}` asked by {row.requested_by}, open until "
            f"{render.local_time(row.expires_at, zone)}"
        )
    return Reply("\n".join(lines))


COMMANDS = (
    Command(
        name="approve",
        usage="approve <request>",
        summary="approve another person's publish, rollback or offline (two-person rule)",
        details="Apps with `approvals = 1` in miniship.toml need a second person: the "
        "request runs as its requester once someone else with the publish role approves it.",
        examples=("approve 5",),
        role="publish",
        rank=190,
        read=read_approve,
        run=run_approve,
    ),
    Command(
        name="deny",
        usage="deny <request> [reason…]",
        summary="turn a request down; nothing runs",
        role="publish",
        rank=191,
        read=read_deny,
        run=run_deny,
    ),
    Command(
        name="requests",
        usage="requests [app]",
        summary="the requests waiting for a second person",
        role="view",
        rank=192,
        read=read_list,
        run=run_list,
    ),
)
