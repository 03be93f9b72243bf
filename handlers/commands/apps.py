"""``apps [@tag]``: the apps, their id and authorization on each platform;
``apps sync <platform> [tag <tags>]``: register the mini programs that authorized it."""

from __future__ import annotations

from dataclasses import dataclass

from handlers import render
from handlers.commands._kit import Command, Context, Reply
from handlers.commands._words import Args, Words, clip


@dataclass(frozen=True)
class AppsArgs(Args):
    sync: str | None = None  # the platform to sync from
    tags: tuple[str, ...] = ()  # sync: tags for the apps it adds; listing: only these


def read(words: Words) -> AppsArgs:
    if words.take_if("sync") is None:
        wanted = []
        while words.more():
            word = words.take()
            if not word.startswith("@") or len(word) < 2:
                words.fail(f"`apps` lists every app, `apps @tag` those tagged; not `{clip(word)}`")
            wanted.append(word[1:].lower())
        return AppsArgs(tags=tuple(wanted))
    if not words.more():
        example = words.platforms[0] if words.platforms else "wechat"
        words.fail(f"sync from which platform? e.g. `apps sync {example}`")
    platform = words.named_platform()
    tags: tuple[str, ...] = ()
    if words.take_if("tag", "tags") is not None:
        said = words.rest_as_typed().replace(",", " ").split()
        tags = tuple(t.lstrip("@").lower() for t in said)
        if not tags:
            words.fail("which tags? e.g. `apps sync wechat tag merchants`")
    words.end()
    return AppsArgs(platform, tags)


async def run(context: Context, args: AppsArgs) -> Reply:
    if args.sync is not None:
        refusal = await context.require_admin("apps sync")
        if refusal is not None:
            return refusal
        synced = await context.admin.apps.sync(context.actor, args.sync, args.tags)
        return Reply(render.synced(synced))
    everyone = await context.visible()
    unknown = [t for t in args.tags if not any(t in a.tags for a in everyone)]
    if unknown:
        return Reply(
            f"No app you may view is tagged {', '.join(f'@{t}' for t in unknown)}; `apps` "
            "lists the apps and their tags.",
            error=True,
        )
    visible = [a for a in everyone if set(args.tags) <= set(a.tags)]
    access = await context.admin.access(visible)
    return Reply(render.apps(access, context.service.emulated))


COMMAND = Command(
    name="apps",
    usage="apps [@tag] | apps sync <platform> [tag <tags>]",
    summary="the apps and their id on each platform; sync those a platform lists",
    details="`apps sync wechat` asks WeChat which mini programs authorized the third-party "
    "platform and adds each that is not an app yet (its AppID as key, its name), tagged "
    "with `tag …` if given; apps it added whose authorization is gone are removed. Needs the "
    "admin role.",
    examples=("apps", "apps @shops", "apps sync wechat tag merchants"),
    rank=20,
    read=read,
    run=run,
)
