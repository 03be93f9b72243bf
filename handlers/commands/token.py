"""``token create <name> --role <role>[,<role>] [--apps a,b|@tag|all]``, ``token list``,
``token revoke <name>``: the CI API's tokens (admins only).

The secret is shown once, to the admin who asked only (in Slack: a message only they
see); miniship keeps its SHA-256. See :mod:`handlers.tokens` and docs/ci.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.commands._kit import Command, Context, Question, Reply
from handlers.commands._words import Args, Words, clip
from handlers.tokens import TokenError, Tokens, scope_words
from storage import TokenTaken

__all__ = ["COMMAND", "TokenArgs"]

_VERBS = ("create", "list", "revoke")


@dataclass(frozen=True)
class TokenArgs(Args):
    verb: str  # create | list | revoke
    name: str = ""
    roles: tuple[str, ...] = ()
    apps: str | None = None


def read(words: Words) -> TokenArgs:
    verb = words.take_if(*_VERBS)
    if verb is None:
        words.fail("`token create <name> --role <role>`, `token list` or `token revoke <name>`")
    if verb == "list":
        return TokenArgs(verb)
    if not words.more():
        words.fail("which token? give it a name, e.g. `ci-github`")
    name = words.take().lower()
    if verb == "revoke":
        return TokenArgs(verb, name)
    roles: list[str] = []
    apps: str | None = None
    while words.more():
        flag = words.take_if("--role", "--roles", "--apps", "--app")
        if flag is None:
            words.fail(f"unexpected `{clip(words.take())}`; say `--role …` or `--apps …`")
        if not words.more():
            words.fail(f"what follows {flag}?")
        if flag.startswith("--role"):
            roles.append(words.take())
        else:
            apps = words.take()
    if not roles:
        words.fail("give it a role: `--role release` (or view, publish, override; a,b for more)")
    return TokenArgs(verb, name, tuple(roles), apps)


async def run(context: Context, args: TokenArgs) -> Reply:
    tokens = Tokens(context.service.store)
    if args.verb == "list":
        rows = await tokens.live()
        if not rows:
            return Reply("No API tokens. `token create <name> --role release` makes one.")
        lines = [
            f"• {r.name}: {scope_words(r)} — made by {r.created_by} "
            f"{r.created_at:%Y-%m-%d}, "
            + (f"last used {r.last_used_at:%Y-%m-%d %H:%M} UTC" if r.last_used_at else "unused")
            for r in rows
        ]
        return Reply("API tokens:\n" + "\n".join(lines), private=True)
    if args.verb == "revoke":
        row = await tokens.revoke(args.name, context.actor)
        if row is None:
            return Reply(f"No live token is called {args.name}; nothing was done.", error=True)
        return Reply(f"Token {args.name} revoked: calls with it are refused from now on.")
    try:
        made = await tokens.create(
            args.name, args.roles, args.apps, context.actor, set(context.service.config.apps)
        )
    except TokenError as exc:
        return Reply(f"{exc}; no token was made.", error=True)
    except TokenTaken:
        return Reply(
            f"A token is already called {args.name}: `token revoke {args.name}` first, "
            "or choose another name.",
            error=True,
        )
    return Reply(
        f"Token {args.name} made ({scope_words(made.row)}). Its secret, shown this once:\n"
        f"`{made.secret}`\nKeep it in your CI's secret store (e.g. as MINISHIP_TOKEN) and send "
        "it as `Authorization: Bearer …`. miniship keeps only its digest: if it is lost, "
        f"`token revoke {args.name}` and make another.",
        private=True,
    )


async def confirm(context: Context, args: TokenArgs) -> Question | None:
    if args.verb != "revoke":
        return None
    return Question(
        f"Revoke token {args.name}? Every CI job that uses it is refused from then on.",
        always=True,
    )


COMMAND = Command(
    name="token",
    usage="token create <name> --role <role> [--apps a,b|@tag|all] | token list | "
    "token revoke <name>",
    summary="make, list or revoke a token of the CI API (admins)",
    details="A token acts as `token:<name>` with the roles given (each also reads its apps' "
    "releases) on the apps given (default: all). The secret is shown once, only to you. "
    "docs/ci.md shows a CI job that uses one.",
    examples=("token create ci-github --role release", "token revoke ci-github"),
    role="admin",
    rank=195,
    read=read,
    run=run,
    confirm=confirm,
)
