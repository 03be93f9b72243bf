"""``upload <app> [platform] <version> [template <id> | code <archive>] [notes…]``."""

from __future__ import annotations

from dataclasses import dataclass

from handlers import render
from handlers.archives import ARCHIVE_ID
from handlers.commands._kit import Command, Context, Question, Reply
from handlers.commands._words import ReleaseArgs, Words
from handlers.releases.known import VersionCheck

MAX_NOTES = 1000


@dataclass(frozen=True, kw_only=True)
class UploadArgs(ReleaseArgs):
    notes: str = ""
    template: str | None = None
    code: str | None = None  # a build the CI API was handed (its archive id)


def read(words: Words) -> UploadArgs:
    app, chosen, version = words.release(after=False)  # notes may start with any word
    template = code = None
    if words.left() >= 2 and words.peek() == "template":
        words.take()
        template = words.number("template id")
    elif words.peek() == "code" and ARCHIVE_ID.fullmatch(words.peek(1) or ""):
        words.take()  # notes may start with "code": only an archive id makes it one
        code = words.take()
    notes = words.rest_as_typed()  # everything after, as typed
    if len(notes) > MAX_NOTES:
        words.fail(f"notes are at most {MAX_NOTES} characters")
    return UploadArgs(
        app=app, platforms=chosen, version=version, notes=notes, template=template, code=code
    )


async def run(context: Context, args: UploadArgs) -> Reply:
    checked = context.found.get("version check")  # made by the question just before
    build = None
    if args.code is not None:
        build = context.archives.path(args.code) if context.archives else None
        if build is None:
            return Reply(
                f"No build {args.code} is here: a build handed over through the CI API is "
                "kept only while its upload runs.",
                error=True,
            )
    res = await context.service.upload(
        context.actor,
        args.app,
        args.platforms,
        args.version,
        args.notes,
        args.template,
        checked if isinstance(checked, VersionCheck) else None,
        trial_code=not context.in_fleet,  # `qr <app>` shows one when wanted
        code=build,
    )
    return Reply.of(res, render.result(res))


async def confirm(context: Context, args: UploadArgs) -> Question | None:
    """An unusual jump (1.2.0 → 3.0.0, a part ≥ 100) is asked about, whatever the settings:
    Alipay versions can never go down again."""
    app = context.service.app(args.app)
    names = context.service.platforms_for(app, args.platforms)
    check = await context.service.check_upload(app, names, args.version)
    context.found["version check"] = check  # the run that follows at once uses it
    return Question(check.jump, always=True) if check.jump and not check.refusal else None


COMMAND = Command(
    name="upload",
    usage="upload <app> [platform] <version> [template <id>] [notes…]",
    summary="upload a version (from a template, or your code via the platform's CLI)",
    details="The notes are kept with the release and go to the reviewers on submit. "
    "`template <id>` commits that template instead of the app's configured one "
    "(`templates` lists them); `code <id>` uploads a build a CI job handed over through "
    "the CI API (docs/ci.md). The trial version's QR code follows the reply.",
    examples=("upload demo 1.2.0 fix the cart", "upload demo wechat 1.2.0 template 7"),
    role="release",
    rank=30,
    fleet=True,
    read=read,
    run=run,
    confirm=confirm,
)
