"""The CI API's tokens: made, listed and revoked (``token …`` in Slack or the console,
``miniship token …``), told apart from a wrong guess, and what each may do.

A token is ``msp_`` and 43 characters of :func:`secrets.token_urlsafe` (256 random bits),
shown once when it is made. Only its SHA-256 is kept: with that much randomness no slow
password hash is needed (nobody can guess back from the digest), and the digest can be
looked up by equality. It acts as ``token:<name>`` — the actor in history — with the roles
it was given (each also lets it read its apps' releases: ``view``) on the apps it was
given: app keys, ``@tag`` (the apps tagged so, when asked) or ``all``. It never holds the
admin role: a token cannot make tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from handlers.config import ROLE_NAMES, AppEntry
from handlers.releases.results import Actor
from handlers.roles import Authorizer
from storage import Store
from storage.models import ApiToken

__all__ = [
    "ACTOR_PREFIX",
    "NAME",
    "PREFIX",
    "Made",
    "TokenError",
    "TokenRoles",
    "Tokens",
    "covers",
    "digest",
    "may",
    "read_apps",
    "read_roles",
    "token_name",
]

PREFIX = "msp_"
ACTOR_PREFIX = "token:"
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,47}", re.ASCII)
ALL = "*"
_APP = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", re.ASCII)
_TAG = re.compile(r"@[a-z0-9][a-z0-9_-]{0,31}", re.ASCII)


class TokenError(ValueError):
    """A token's name, roles or apps cannot be used; the message says why."""


@dataclass(frozen=True)
class Made:
    row: ApiToken
    secret: str  # shown once, never kept


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def token_name(actor: Actor) -> str | None:
    """The token an actor is (None: a person, the console, the scheduler…)."""
    return actor.id.removeprefix(ACTOR_PREFIX) if actor.id.startswith(ACTOR_PREFIX) else None


def read_roles(given: Sequence[str]) -> tuple[str, ...]:
    """``["release"]`` or ``["release,publish"]`` → ("view", "release", "publish")."""
    roles = [r.strip().lower() for text in given for r in text.split(",") if r.strip()]
    if not roles:
        raise TokenError(f"give it a role: --role {'|'.join(ROLE_NAMES[1:])}")
    for role in roles:
        if role not in ROLE_NAMES:
            raise TokenError(f"`{role[:40]}` is not a role ({', '.join(ROLE_NAMES)})")
    return tuple(dict.fromkeys(["view", *roles]))


def read_apps(text: str | None, known: Collection[str] | None = None) -> tuple[str, ...]:
    """``a,b`` | ``@tag`` | ``all`` (the default) → what the token is scoped to. ``known``:
    the app keys there are (an unknown one is refused)."""
    if text is None or text.strip().lower() in ("all", ALL):
        return (ALL,)
    items = [i.strip() for i in text.split(",") if i.strip()]
    if not items:
        raise TokenError("--apps names apps (a,b), a tag (@shops) or all")
    for item in items:
        if item.startswith("@"):
            if not _TAG.fullmatch(item):
                raise TokenError(f"`{item[:40]}` is not a tag (@ and lower-case letters)")
        elif not _APP.fullmatch(item):
            raise TokenError(f"`{item[:40]}` is not an app name")
        elif known is not None and item not in known:
            raise TokenError(f"there is no app `{item}` (`apps` lists them)")
    return tuple(dict.fromkeys(items))


def covers(row: ApiToken, app: AppEntry) -> bool:
    """Whether the token is scoped to ``app`` (by key, by one of its tags, or all)."""
    scope = set(row.apps)
    return ALL in scope or app.key in scope or any(f"@{t}" in scope for t in app.tags)


def may(row: ApiToken, app: AppEntry, role: str) -> bool:
    return row.revoked_at is None and role in row.roles and covers(row, app)


def scope_words(row: ApiToken) -> str:
    apps = "every app" if ALL in row.apps else ", ".join(row.apps)
    roles = ", ".join(r for r in row.roles if r != "view") or "view"
    return f"{roles} on {apps}"


class Tokens:
    """The tokens kept in ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(
        self,
        name: str,
        roles: Sequence[str],
        apps: str | None,
        by: Actor,
        known: Collection[str] | None = None,
    ) -> Made:
        """A new token (its secret in :attr:`Made.secret`, this once), recorded in history.

        Raises:
            TokenError: the name, roles or apps cannot be used.
            storage.TokenTaken: a live token has that name.
        """
        if not NAME.fullmatch(name):
            raise TokenError(
                f"`{name[:40]}` is not a token name: lower-case letters, digits, . _ - (≤ 48)"
            )
        scope = read_apps(apps, known)
        granted = read_roles(roles)
        secret = PREFIX + secrets.token_urlsafe(32)
        row = await self.store.add_token(name, digest(secret), granted, scope, by.id)
        await self.store.record(
            actor=by.id,
            action="token create",
            outcome="ok",
            message=f"token {name}: {scope_words(row)}",
        )
        return Made(row, secret)

    async def revoke(self, name: str, by: Actor) -> ApiToken | None:
        row = await self.store.revoke_token(name, by.id)
        await self.store.record(
            actor=by.id,
            action="token revoke",
            outcome="ok" if row is not None else "refused",
            message=f"token {name} revoked" if row else f"no live token is called {name}",
        )
        return row

    async def live(self) -> list[ApiToken]:
        return await self.store.tokens()

    async def verify(self, secret: str) -> ApiToken | None:
        """The token ``secret`` is (revoked or not), or None: not one miniship made."""
        if not secret.startswith(PREFIX) or len(secret) > 200:
            return None
        wanted = digest(secret)
        row = await self.store.token_by_hash(wanted)
        # the lookup matched already; compared again in constant time all the same
        if row is None or not hmac.compare_digest(row.token_hash, wanted):
            return None
        return row


class TokenRoles:
    """An authorizer that answers for tokens from the token table (its roles, its apps,
    read at each check: a token revoked meanwhile is refused) and for everyone else as
    ``inner`` does. Tokens are never among the admins."""

    def __init__(self, inner: Authorizer, store: Store) -> None:
        self.inner = inner
        self.store = store

    async def allows(self, actor: Actor, app: AppEntry, role: str) -> bool:
        name = token_name(actor)
        if name is None:
            return await self.inner.allows(actor, app, role)
        row = await self.store.live_token(name)
        return row is not None and may(row, app, role)

    async def among(self, actor: Actor, allowed: tuple[str, ...]) -> bool:
        if token_name(actor) is not None:
            return False
        return await self.inner.among(actor, allowed)
