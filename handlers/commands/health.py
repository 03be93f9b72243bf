"""``health <app> [platform] [version]``: a version's JavaScript errors as the platform
reports them, beside the version it replaces, today and yesterday."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.commands._kit import Command, Context, Reply
from handlers.commands._words import VersionArgs, Words


@dataclass(frozen=True, kw_only=True)
class HealthArgs(VersionArgs):
    def acts_now(self) -> bool:
        return False


def read(words: Words) -> HealthArgs:
    app = words.app()
    chosen = words.platform()
    version = words.version() if words.more() else None
    chosen += tuple(p for p in words.platform() if p not in chosen)
    return HealthArgs(app=app, platforms=chosen, version=version)


async def run(context: Context, args: HealthArgs) -> Reply:
    text = await context.rollouts.health(args.app, args.platform, args.version)
    return Reply(text, verbatim=True)  # JS error messages, as the platform reported them


COMMAND = Command(
    name="health",
    usage="health <app> [platform] [version]",
    summary="the new and previous versions' JS errors (today, yesterday) from the platform",
    details="WeChat's jserr_list, per version: error users and errors, and the top errors "
    "with their first stack line. The version defaults to the one rolling out (else the "
    "live one). Alipay reports no per-version error figures.",
    examples=("health demo", "health demo 1.4.0"),
    role="view",
    rank=116,
    read=read,
    run=run,
)
