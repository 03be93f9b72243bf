"""``connect <app> <platform>``: the authorization link for a mini program's admin;
``connect <platform>``: the link for any mini program's admin, whose authorization makes
it an app (where the platform allows it: Alipay)."""

from __future__ import annotations

from dataclasses import dataclass

from handlers import render
from handlers.commands._kit import Command, Context, Reply
from handlers.commands._words import AppArgs, Args, Scope, Words, clip


@dataclass(frozen=True)
class AnyAppArgs(Args):
    """``connect <platform>``: no app named, so the runner checks no role; ``run`` asks
    for the admin role (the link adds apps)."""

    platform: str

    def scope(self) -> Scope:
        return Scope(None, None, self.platform)


def read(words: Words) -> AppArgs | AnyAppArgs:
    if words.left() == 1 and words.peek() in words.platforms:
        return AnyAppArgs(words.named_platform())
    if words.peek() in words.platforms:  # `connect alipay now`: a platform, then more
        platform = words.named_platform()
        words.fail(
            f"`connect {platform}` takes nothing after it (its link is for any mini "
            f"program); for one app: `connect <app> {platform}`; not `{clip(words.take())}`"
        )
    app = words.app()
    return AppArgs(app=app, platforms=words.required_platform(app))


async def run(context: Context, args: AppArgs | AnyAppArgs) -> Reply:
    if isinstance(args, AnyAppArgs):
        refusal = await context.require_admin("connect")
        if refusal is not None:
            return refusal
        link = await context.admin.connect(context.actor, None, args.platform)
        return Reply(render.connect_any_link(args.platform, link), private=True)
    (platform,) = args.platforms
    link = await context.admin.connect(context.actor, context.service.app(args.app), platform)
    return Reply(render.connect_link(args.app, platform, link), private=True)


COMMAND = Command(
    name="connect",
    usage="connect <app> <platform> | connect <platform>",
    summary="the link a mini program's admin opens to authorize miniship's platform",
    details="`connect alipay` (admins only) gives a link any merchant opens to authorize "
    "miniship's Alipay third-party app for one of their mini programs; once they confirm, "
    "that mini program is an app (its APPID as key), announced in the admin channel. "
    "Authorizing again renews its tokens.",
    examples=("connect demo wechat", "connect alipay"),
    role="publish",
    rank=160,
    read=read,
    run=run,
)
