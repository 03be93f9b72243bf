"""``app add | set | tag | untag | remove``: which apps miniship releases, from chat.

An app added here is kept in the database (no restart, every replica sees it); an app
miniship.toml defines is changed there, except its tags when the file gives none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from handlers import render
from handlers.apps import FIELDS
from handlers.commands._kit import Command, Context, Question, Reply
from handlers.commands._words import Args, Scope, Words, clip
from platforms import platform_class

VERBS = ("add", "set", "tag", "untag", "remove")
KEYWORDS = ("name", "channel", "owners", "tags", "timezone", "approvals")
MAX_NAME = 200
# <#C123|name> (a channel link from Slack), <@U123|name>, <!subteam^S123|@team>, or bare ids
CHANNEL_LINK = re.compile(r"<#([CG][A-Z0-9]{2,})(?:\|[^>]*)?>")
PERSON_LINK = re.compile(r"<[@!](?:subteam\^)?([UWS][A-Z0-9]{2,})(?:\|[^>]*)?>")
BARE_ID = re.compile(r"[UWSCG][A-Z0-9]{2,}")


@dataclass(frozen=True)
class AppChange(Args):
    verb: str
    key: str
    values: dict[str, Any] = field(default_factory=dict)  # what the definition gets
    tags: tuple[str, ...] = ()

    def scope(self) -> Scope:
        return Scope(None if self.verb == "add" else self.key)  # a new key is no app yet


def read(words: Words) -> AppChange:
    verb = words.take_if(*VERBS)
    if verb is None:
        words.fail("`app add`, `app set`, `app tag`, `app untag` or `app remove`?")
    key = words.app("which app? e.g. `app add shop wechat wx3a5f9c2e1b7d4f60`")
    if verb == "remove":
        words.end()
        return AppChange(verb, key)
    if verb in ("tag", "untag"):
        if not words.more():
            words.fail(f"which tags? e.g. `app {verb} {key} shops`")
        return AppChange(verb, key, tags=tuple(_tags(words.rest_as_typed())))
    values = _platforms(words, key) if verb == "add" else {}
    values.update(_keywords(words, verb))
    if not values:
        words.fail(
            f"what to change? one of {', '.join(FIELDS)}, e.g. `app set {key} channel #releases`"
        )
    return AppChange(verb, key, values)


def _platforms(words: Words, key: str) -> dict[str, Any]:
    """``wechat <appid> [template <id>] [alipay <app_id> [template <id>]]``."""
    out: dict[str, Any] = {}
    while (name := words.take_if(*words.platforms)) is not None:
        if not words.more():
            words.fail(f"which {name} id? e.g. `app add {key} {name} <id>`")
        section: dict[str, Any] = {platform_class(name).id_field: words.take()}
        if words.take_if("template") is not None:
            if not words.more():
                words.fail("which template? `templates` lists them")
            section["template_id"] = words.take()
        out[name] = section
    if not out:
        names = " | ".join(f"{p} <id>" for p in words.platforms)
        words.fail(f"on which platform? `app add {key} {names} …`")
    return out


def _keywords(words: Words, verb: str) -> dict[str, Any]:
    """``name <words…>`` (last), ``channel <#c>``, ``owners <@a> <@b>…``, ``tags a b``,
    ``timezone <zone>``, ``approvals 0|1``."""
    out: dict[str, Any] = {}
    while words.more():
        word = words.take_if(*KEYWORDS)
        if word is None:
            words.fail(f"unexpected `{clip(words.take())}`; after the app: {', '.join(KEYWORDS)}")
        if word == "name":
            name = words.rest_as_typed().strip("\"'“”「」 ")
            if not name or len(name) > MAX_NAME:
                words.fail(f"a name is 1 to {MAX_NAME} characters")
            out["name"] = name
        elif not words.more():
            words.fail(f"what {word}? ({FIELDS.get(word, 'tags to add')})")
        elif word == "channel":
            out["channel"] = _channel(words, words.take())
        elif word == "owners":
            owners = []
            while words.more() and words.peek() not in KEYWORDS:
                owners.append(_person(words, words.take()))
            if not owners:
                words.fail("which owners? mention them (@name), or `*` for anyone")
            out["roles"] = {"release": owners, "publish": owners}
        elif word == "tags":
            out["tags"] = _tags(words.take())
        elif word == "approvals":
            out["approvals"] = words.take_if("0", "1") or words.fail("approvals is 0 or 1")
        else:
            out[word] = words.take()
    if "tags" in out and verb == "set":
        words.fail("`app tag <app> <tags>` and `app untag <app> <tags>` change tags")
    return out


def _channel(words: Words, word: str) -> str:
    link = CHANNEL_LINK.fullmatch(word)
    if link:
        return link[1]
    if BARE_ID.fullmatch(word) and word[0] in "CG":
        return word
    words.fail(
        f"`{clip(word)}` is not a channel I can read: pick it after typing # (Slack sends a "
        "link), or give its id (C…, from the channel's details)"
    )


def _person(words: Words, word: str) -> str:
    link = PERSON_LINK.fullmatch(word)
    if link:
        return link[1]
    if word == "*" or (BARE_ID.fullmatch(word) and word[0] in "UWS"):
        return word
    words.fail(f"`{clip(word)}` is not a person: mention them (@name) or give a U… id")


def _tags(text: str) -> list[str]:
    return [t.lstrip("@").lower() for t in re.split(r"[\s,]+", text) if t.strip("@")]


# -- running --------------------------------------------------------------------------------


async def run(context: Context, args: AppChange) -> Reply:
    book = context.admin.apps
    if args.verb == "add":
        definition = dict(args.values)
        roles = definition.get("roles")
        if roles is None and not context.actor.id.startswith("console:"):
            # who adds it from Slack owns it, until owners are named
            definition["roles"] = {"release": [context.actor.id], "publish": [context.actor.id]}
        tags = definition.pop("tags", [])
        entry = await book.add(context.actor, args.key, definition, tags=tags)
        return Reply(render.app_added(entry, context.service.emulated))
    if args.verb == "set":
        entry = await book.change(context.actor, args.key, args.values)
        return Reply(render.app_changed(entry, sorted(args.values)))
    if args.verb in ("tag", "untag"):
        add, drop = (args.tags, ()) if args.verb == "tag" else ((), args.tags)
        missing = [t for t in drop if t not in context.service.app(args.key).tags]
        if missing:
            has = " ".join(f"@{t}" for t in context.service.app(args.key).tags) or "none"
            return Reply(
                f"{args.key} has no tag {', '.join(f'@{t}' for t in missing)}; nothing was "
                f"changed (its tags: {has})",
                error=True,
            )
        entry = await book.tag(context.actor, args.key, add=add, drop=drop)
        tags = " ".join(f"@{t}" for t in entry.tags) or "none"
        return Reply(f"{entry.key}'s tags: {tags}")
    await book.remove(context.actor, args.key)
    return Reply(
        f"Removed {args.key}: miniship no longer releases it. Its history stays "
        f"(`history {args.key}`); `app add {args.key} …` brings it back."
    )


async def confirm(context: Context, args: AppChange) -> Question | None:
    if args.verb != "remove":
        return None
    return Question(
        f"Remove {args.key}? miniship stops releasing and watching it (its history stays).",
        always=True,
    )


COMMAND = Command(
    name="app",
    usage="app add <key> <platform> <id> [template <id>] [channel #c] [owners @a …] "
    "[tags a,b] [name …] | app set <key> <field> <value> | app tag|untag <key> <tags> | "
    "app remove <key>",
    summary="add, change, tag or remove an app, without a restart",
    details="An app added here is kept in the database; apps in miniship.toml are changed "
    "there (chat may tag them when the file gives no tags). Fields for `app set`: "
    + "; ".join(f"`{k}` {v}" for k, v in FIELDS.items())
    + ". Without `owners`, who adds an app from Slack owns it.",
    examples=(
        "app add shop wechat wx3a5f9c2e1b7d4f60 template 12 channel #shop-releases name Shop",
        "app tag shop shops autumn",
        "app set shop owners @ann @bob",
        "app remove shop",
    ),
    role="admin",
    rank=22,
    read=read,
    run=run,
    confirm=confirm,
)
