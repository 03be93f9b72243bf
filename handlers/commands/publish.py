"""``publish <app> [platform] <version> [at <time> | in <duration>]``."""

from __future__ import annotations

from dataclasses import dataclass

from handlers import render
from handlers.commands._kit import Button, Command, Context, Question, Reply
from handlers.commands._words import ReleaseArgs, Words, clip
from handlers.when import WhenError, parse_when


@dataclass(frozen=True, kw_only=True)
class PublishArgs(ReleaseArgs):
    when: str | None = None  # "at …" / "in …", as typed: read in the app's time zone

    def acts_now(self) -> bool:
        return self.when is None  # a timed publish is held at its minute if still frozen


def read(words: Words) -> PublishArgs:
    app, chosen, version = words.release()
    when = None
    if words.peek() in ("at", "in"):
        when = words.rest_as_typed()
    elif words.more():
        words.fail(
            f"unexpected `{clip(words.take())}`; to publish later, add `at <time>` or "
            "`in <duration>`"
        )
    return PublishArgs(app=app, platforms=chosen, version=version, when=when)


async def run(context: Context, args: PublishArgs) -> Reply:
    if args.when is not None:
        return await _later(context, args, args.when)
    res = await context.service.publish(context.actor, args.app, args.platforms, args.version)
    return Reply.of(res, render.result(res))


async def confirm(context: Context, args: PublishArgs) -> Question:
    when = f" {args.when}" if args.when else ""
    return Question(
        f"Publish {args.app} {args.version} on {context.where(args.app, args.platforms)}"
        f"{when}? It goes live for everyone who opens the mini program."
    )


async def _later(context: Context, args: PublishArgs, when: str) -> Reply:
    timed = context.timed
    app = context.service.app(args.app)
    try:
        due = parse_when(when, context.clock(), app.timezone)
    except WhenError as exc:
        return Reply(f"{exc} (times are in {app.timezone.key})", error=True)
    done = await timed.schedule_publish(
        context.actor, app.key, args.platforms, args.version, due, context.channel
    )
    return Reply(render.scheduled(done), about=(app.key, args.version))


COMMAND = Command(
    name="publish",
    usage="publish <app> [platform] <version> [at <time> | in <duration>]",
    summary="publish an approved version, now or at a given time",
    details="Without a platform, every platform must be approved first; otherwise nothing "
    "is published and the reply says which platform is not ready.\n"
    "Timed: `at 2026-12-01 10:00`, `at 10:00` (the next one), `at tomorrow 9:30`, "
    "`in 2h` / `in 90m` / `in 1d 4h`, in the app's time zone. At that time miniship "
    "checks again that the version is approved and nothing newer is live, then "
    "publishes; a reminder goes to the release's thread beforehand.",
    examples=("publish demo 1.2.0", "publish demo wechat 1.2.0 at tomorrow 9:30"),
    role="publish",
    rank=90,
    button=Button(
        "Publish",
        style="primary",
        confirm=("Publish", "It goes live for everyone who opens the mini program."),
    ),
    guarded=True,
    two_person=True,
    fleet=True,
    read=read,
    run=run,
    confirm=confirm,
)
