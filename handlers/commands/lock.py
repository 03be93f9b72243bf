"""``lock <app|all> [reason…]`` and ``unlock <app|all>``: nothing goes live until unlocked."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.commands._holds import Held, lift, read_lift, reason, record, require_all, target
from handlers.commands._kit import Command, Context, Reply
from handlers.commands._words import Words


@dataclass(frozen=True)
class LockArgs(Held):
    reason: str = ""


def read(words: Words) -> LockArgs:
    return LockArgs(target(words), reason(words))


async def run(context: Context, args: LockArgs) -> Reply:
    refusal = await require_all(context, args.target, "lock")
    if refusal is not None:
        return refusal
    key = "*" if args.target == "all" else args.target
    row = await context.service.store.add_freeze(
        key, "lock", context.clock(), None, args.reason, context.actor.id
    )
    who = "every app" if args.target == "all" else args.target
    await record(context, "lock", args.target, f"{who} locked ({args.reason or 'no reason'})")
    why = f": {args.reason}" if args.reason else ""
    return Reply(
        f"🔒 {who} locked (#{row.id}){why}. Nothing goes live until `unlock {args.target}`; "
        "the override role may act with `--override <why>`."
    )


async def run_unlock(context: Context, args: Held) -> Reply:
    return await lift(context, args, "lock", "unlock")


COMMANDS = (
    Command(
        name="lock",
        usage="lock <app|all> [reason…]",
        summary="nothing goes live until unlocked",
        examples=("lock demo investigating the payment bug",),
        role="publish",
        rank=187,
        read=read,
        run=run,
    ),
    Command(
        name="unlock",
        usage="unlock <app|all>",
        summary="lift a lock",
        role="publish",
        rank=188,
        read=read_lift,
        run=run_unlock,
    ),
)
