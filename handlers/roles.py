"""Who may do what: the roles of each app — in miniship.toml for its apps; for an app kept
in the database, its owners (``app set <key> owners``) hold release and publish —
checked for every command.

Each command declares the role it needs (``role=`` in its module under
``handlers/commands/``); ``help`` and refusals list them. Today:

    view     status, history, schedule (the list), qr, quota, templates, the App Home (counted),
             fleet (the runs over apps one may view)
    release  upload, submit, expedite; template add/delete (on every app)
    publish  publish (now or timed), withdraw, gray, rollback, offline, connect,
             schedule cancel

(``fleet <id> cancel`` and ``retry`` need the role of the run's command on its every app)

and one role over every app, ``admins`` at the top of miniship.toml: adding, changing,
tagging and removing apps (``app …``) and ``apps sync``.

A role lists Slack user ids, user-group ids (S…, resolved through Slack) or "*". The
console's operator already holds the database and the credentials, so the console
checks nothing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from handlers.config import EVERYONE, AppEntry
from handlers.releases.results import Actor

__all__ = ["Authorizer", "Everyone", "RoleCheck"]

GROUP_CACHE_SECONDS = 60.0

MembersOf = Callable[[str], Awaitable[frozenset[str]]]


class Authorizer(Protocol):
    async def allows(self, actor: Actor, app: AppEntry, role: str) -> bool: ...

    async def among(self, actor: Actor, allowed: tuple[str, ...]) -> bool:
        """Whether ``actor`` is one of ``allowed`` (ids, groups, "*"): the admins."""
        ...


class Everyone:
    """Allows everything (the console)."""

    async def allows(self, actor: Actor, app: AppEntry, role: str) -> bool:
        return True

    async def among(self, actor: Actor, allowed: tuple[str, ...]) -> bool:
        return True


class RoleCheck:
    """Checks an actor against an app's roles; user groups are asked for via ``members_of``
    and remembered for a minute."""

    def __init__(self, members_of: MembersOf, clock: Callable[[], float] = time.monotonic) -> None:
        self.members_of = members_of
        self.clock = clock
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}

    async def allows(self, actor: Actor, app: AppEntry, role: str) -> bool:
        return await self.among(actor, getattr(app.roles, role))

    async def among(self, actor: Actor, allowed: tuple[str, ...]) -> bool:
        if EVERYONE in allowed or actor.id in allowed:
            return True
        for group in (g for g in allowed if g.startswith("S")):
            if actor.id in await self._members(group):
                return True
        return False

    async def _members(self, group: str) -> frozenset[str]:
        cached = self._groups.get(group)
        if cached is not None and self.clock() - cached[0] < GROUP_CACHE_SECONDS:
            return cached[1]
        members = await self.members_of(group)
        self._groups[group] = (self.clock(), members)
        return members
