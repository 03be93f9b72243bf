"""``templates [platform]`` and ``template add <draft_id> | template delete <template_id>``:
the third-party platform's template library."""

from __future__ import annotations

from dataclasses import dataclass

from handlers import render
from handlers.commands._kit import Command, Context, Question, Reply
from handlers.commands._words import Args, Words
from handlers.releases import CommandRefused


@dataclass(frozen=True)
class TemplatesArgs(Args):
    platforms: tuple[str, ...] = ()


def read_list(words: Words) -> TemplatesArgs:
    words.at_most(1)
    return TemplatesArgs((words.named_platform(),) if words.more() else ())


async def run_list(context: Context, args: TemplatesArgs) -> Reply:
    if not await context.visible():
        raise CommandRefused("you may not view any app")
    return Reply(render.templates(await context.admin.templates(args.platforms)))


@dataclass(frozen=True)
class TemplateArgs(Args):
    verb: str  # add | delete
    item: str  # the draft id (add) or the template id (delete)


def read_change(words: Words) -> TemplateArgs:
    verb = words.take_if("add", "delete")
    if verb is None:
        words.fail("`template add <draft_id>` or `template delete <template_id>`")
    if not words.more():
        what = "draft" if verb == "add" else "template"
        words.fail(f"which {what}? `templates` lists them with their ids")
    words.at_most(1)
    return TemplateArgs(verb, words.number("draft id" if verb == "add" else "template id"))


async def run_change(context: Context, args: TemplateArgs) -> Reply:
    # the library serves every app on the platform: the release role on each is needed
    for app in context.service.config.apps.values():
        refusal = await context.require(app, "release", f"template {args.verb}")
        if refusal is not None:
            return refusal
    return Reply(await context.admin.change_template(context.actor, args.verb, args.item))


async def confirm_change(context: Context, args: TemplateArgs) -> Question | None:
    if args.verb != "delete":
        return None
    return Question(
        f"Delete template {args.item} from the template library? No mini program can be "
        "uploaded from it afterwards."
    )


COMMANDS = (
    Command(
        name="templates",
        usage="templates [platform]",
        summary="the third-party platform's template library and draft box",
        role="view",
        rank=140,
        read=read_list,
        run=run_list,
    ),
    Command(
        name="template",
        usage="template add <draft_id> | template delete <template_id>",
        summary="turn a draft into a template, or delete a template",
        examples=("template add 12", "template delete 3"),
        role="release",
        rank=150,
        read=read_change,
        run=run_change,
        confirm=confirm_change,
    ),
)
