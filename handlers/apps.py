"""Which apps miniship releases: those miniship.toml defines, and those added from chat or
reported by a platform, kept in the database.

The file wins for the apps it names (configuration as code keeps working); chat may tag
them when the file gives no tags. Every change goes through the store, and each process
notices the changes of others (``refresh``) before it acts, so replicas agree without a
restart. An adapter learns its platform's apps here, through ``provision`` (the runtime's
hook: an emulated platform registers the app and hands out credentials it accepts).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

import platforms
from handlers.config import (
    AppEntry,
    DefinedApp,
    check_tags,
    parse_app,
    with_apps,
)
from handlers.listeners import tell
from handlers.releases import Actor, CommandRefused, ReleaseService, explain
from platforms.errors import ConfigError, PlatformError

__all__ = ["FIELDS", "AppBook", "Provision"]

log = logging.getLogger(__name__)

Provision = Callable[[str, Mapping[str, BaseModel]], Mapping[str, BaseModel]]
"""(platform, its apps' sections) → the sections its adapter uses."""

FIELDS: dict[str, str] = {
    "name": "the name people see",
    "channel": "the Slack channel of its release cards (#name or C… id)",
    "timezone": "the time zone its times are read and shown in",
    "owners": "who may upload and publish it (Slack ids or @mentions; `*` for anyone)",
    "approvals": "1: a second person approves publish, rollback and offline; 0: no",
}
"""What ``app set`` changes, and what each is."""


def _no_provision(platform: str, sections: Mapping[str, BaseModel]) -> Mapping[str, BaseModel]:
    return sections


_BOOKS: weakref.WeakKeyDictionary[ReleaseService, AppBook] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Synced:
    """What ``apps sync`` found and did."""

    platform: str
    authorized: int  # mini programs that authorize the platform
    added: list[str]  # app keys registered
    retired: list[str]  # apps the platform had added, no longer authorized
    kept: list[str]  # such apps kept while work is under way ("key (why)")
    unlisted: list[str]  # other apps the platform does not list (file or chat apps)


class AppBook:
    """The apps of one release service (one per service: :meth:`of`)."""

    def __init__(self, service: ReleaseService, provision: Provision = _no_provision) -> None:
        self.service = service
        self.store = service.store
        self.provision = provision
        self._seen: int | None = None  # the apps' revision loaded
        self._loaded = False
        self._lock = asyncio.Lock()
        self.listeners: list[Callable[[str], Awaitable[None]]] = []
        """Hear of apps a platform added or retired on its own (an admin channel)."""
        service.catch_up.append(self.refresh)
        _BOOKS[service] = self

    @classmethod
    def of(cls, service: ReleaseService) -> AppBook:
        """The book of ``service``: the one the runtime made, else a new one."""
        return _BOOKS.get(service) or cls(service)

    # -- keeping every process's view current -------------------------------------------

    async def load(self) -> None:
        """Read the apps kept in the database into the running configuration and tell
        every adapter its platform's apps."""
        async with self._lock:
            seen = await self.store.apps_revision()
            defined = [
                DefinedApp(row.key, row.source, row.definition, tuple(row.tags))
                for row in await self.store.apps()
                if row.retired_at is None
            ]
            config = with_apps(self.service.config, defined)
            for name, adapter in self.service.adapters.items():
                try:
                    adapter.set_apps(self.provision(name, config.platform_apps(name)))
                except ConfigError as exc:  # the others still work; this one says why
                    log.error("the apps of %s cannot be used: %s", name, exc)
            self.service.config = config
            self._seen, self._loaded = seen, True

    async def refresh(self) -> None:
        """Load again when another process (or this one) changed an app since (a book never
        loaded takes the running configuration as current)."""
        seen = await self.store.apps_revision()
        if not self._loaded:
            self._seen, self._loaded = seen, True
        elif seen != self._seen:
            await self.load()

    # -- changes ------------------------------------------------------------------------

    def app(self, key: str) -> AppEntry:
        return self.service.app(key)

    async def add(
        self,
        actor: Actor,
        key: str,
        definition: Mapping[str, Any],
        source: str = "chat",
        tags: Sequence[str] = (),
    ) -> AppEntry:
        """Add app ``key`` as ``definition`` (an ``[apps.<key>]`` table) says, with ``tags``
        (an app that comes back keeps the tags it had, too).

        Raises:
            CommandRefused: the key is taken, the definition is not valid, or a platform
                it names is not connected in this miniship.
        """
        if key in self.service.config.in_file:
            raise CommandRefused(f"{key} is defined in miniship.toml; change it there")
        if key in self.service.config.apps:
            raise CommandRefused(f"{key} is already an app; `app set {key} …` changes it")
        entry = self._valid(key, definition, source)
        for platform, section in entry.platforms.items():
            taken = self._ids(platform).get(str(getattr(section, self._id_field(platform))))
            if taken is not None:
                raise CommandRefused(
                    f"that {self.service.display(platform)} mini program is app {taken} "
                    "already; one mini program is one app"
                )
        said = f"added ({', '.join(entry.platforms)})"
        await self.store.define_app(
            key, entry.name, definition, source, actor.id, _tags(tags), said
        )
        await self.load()
        return self.app(key)

    async def change(self, actor: Actor, key: str, changes: Mapping[str, Any]) -> AppEntry:
        """Change what ``changes`` names in the definition of app ``key``."""
        row = await self._defined(key, "change")
        definition = {**(row or {}), **changes}
        definition = {k: v for k, v in definition.items() if v is not None}
        entry = self._valid(key, definition, self.app(key).source)
        await self.store.define_app(key, entry.name, definition, entry.source, actor.id)
        said = ", ".join(f"{k} = {v}" for k, v in changes.items())
        await self._record(actor, "app set", key, said)
        await self.load()
        return self.app(key)

    async def tag(
        self, actor: Actor, key: str, add: Sequence[str] = (), drop: Sequence[str] = ()
    ) -> AppEntry:
        """Add the tags ``add`` to app ``key``, and take ``drop`` off it."""
        app = self.app(key)
        if key in self.service.config.in_file and self.service.config.in_file[key].tags:
            raise CommandRefused(f"the tags of {key} are set in miniship.toml; change them there")
        tags = _tags([t for t in (*app.tags, *add) if t not in drop])
        if await self.store.tag_app(key, tags, actor.id) is None:
            raise CommandRefused(f"{key} is not kept in the database; restart to pick it up")
        what = " ".join([*(f"+{t}" for t in add), *(f"-{t}" for t in drop)])
        await self._record(actor, "app tag", key, what)
        await self.load()
        return self.app(key)

    async def remove(self, actor: Actor, key: str) -> None:
        """Retire app ``key``; refused while it has releases or timed releases under way."""
        await self._defined(key, "remove")
        busy = await self.store.in_flight(key)
        if busy:
            raise CommandRefused(
                f"{key} has work under way: {'; '.join(busy[:5])}. Finish, withdraw or "
                "cancel it first."
            )
        await self.store.retire_app(key, actor.id)
        await self._record(actor, "app remove", key, "retired (its history stays)")
        await self.load()

    # -- what a platform says ------------------------------------------------------------

    async def sync(self, actor: Actor, platform: str, tags: Sequence[str] = ()) -> Synced:
        """Register every mini program that authorized ``platform``'s account and is not an
        app yet (its id as key, its name, ``tags``), and retire the apps that platform
        added whose authorization is gone (unless work is under way)."""
        adapter = self.service.adapters.get(platform)
        if adapter is None or not adapter.offers("authorized_apps"):
            raise CommandRefused(
                f"{self.service.display(platform)} cannot list the mini programs that "
                "authorized it; add them with `app add`"
            )
        tags = _tags(tags)
        try:
            found = await adapter.authorized_apps()
        except (PlatformError, ConfigError) as exc:
            raise CommandRefused(
                f"could not ask {self.service.display(platform)} which mini programs "
                f"authorize it: {explain(exc)} Nothing was changed."
            ) from None
        known = self._ids(platform)
        new = []
        for a in found:
            if a.platform_app_id in known:
                continue
            definition = self._found(platform, a.name, adapter.new_app(a))
            entry = self._valid(a.platform_app_id, definition, platform)
            said = f"authorized {platform}: {a.name}"
            new.append((entry.key, entry.name, definition, tags, said))
        await self.store.define_apps(new, platform, actor.id)
        added = [key for key, *_ in new]
        listed = {a.platform_app_id for a in found}
        gone, kept = [], []
        for app_id, key in known.items():
            if app_id in listed or self.app(key).source != platform:
                continue
            if await adapter.authorized_app(app_id) is not None:
                continue  # the list changed while it was read: still authorized
            busy = await self.store.in_flight(key)
            if busy:
                kept.append(f"{key} ({'; '.join(busy[:3])})")
                continue
            await self.store.retire_app(key, actor.id)
            await self._record(actor, "app remove", key, f"no longer authorizes {platform}")
            gone.append(key)
        await self.load()
        unlisted = sorted(k for i, k in known.items() if i not in listed and k not in gone)
        return Synced(platform, len(found), added, gone, kept, unlisted)

    async def authorized(self, platform: str, app_id: str, by: str | None = None) -> str:
        """A mini program authorized ``platform``'s account (a push, or ``by`` another way
        in: the authorization page's callback): an app from now on, unless it is one
        already. Returns what happened, for people ("" when nothing)."""
        adapter = self.service.adapters[platform]
        known = self._ids(platform).get(app_id)
        if known is not None:
            return ""
        found = await adapter.authorized_app(app_id)
        if found is None:
            return ""  # not a mini program, or the authorization is gone again
        definition = self._found(platform, found.name, adapter.new_app(found))
        entry = self._valid(app_id, definition, platform)
        said = f"authorized {platform}: {found.name}"
        await self.store.define_app(
            app_id, entry.name, definition, platform, by or f"{platform} push", said=said
        )
        await self.load()
        return await self._announce(
            f"➕ {found.name} ({app_id}) authorized miniship on "
            f"{self.service.display(platform)}: it is app `{app_id}` now "
            f"(`app tag {app_id} <tag>` to group it)."
        )

    async def unauthorized(self, platform: str, app_id: str) -> str:
        """A mini program withdrew its authorization of ``platform``'s account (a push).
        An app that platform added is removed (kept while work is under way); an app from
        the file or chat stays, and people are told it cannot be released there."""
        key = self._ids(platform).get(app_id)
        if key is None:
            return ""
        app, actor = self.app(key), Actor(f"{platform} push")
        where = self.service.display(platform)
        busy = await self.store.in_flight(key)
        if app.source != platform or busy:
            why = f"work under way: {'; '.join(busy[:3])}" if busy else "it is not from a sync"
            await self._record(actor, "app remove", key, f"kept ({why}); {where} unauthorized")
            return await self._announce(
                f"⚠️ {app.name} ({key}) withdrew miniship's authorization on {where}; it "
                f"stays an app ({why}) but cannot be released there until it authorizes "
                f"again (`connect {key} {platform}`)."
            )
        await self.store.retire_app(key, actor.id)
        await self._record(actor, "app remove", key, f"no longer authorizes {platform}")
        await self.load()
        return await self._announce(
            f"➖ {app.name} ({key}) withdrew miniship's authorization on {where}: removed "
            f"(its history stays)."
        )

    def _found(self, platform: str, name: str, section: dict[str, Any]) -> dict[str, Any]:
        """The definition of an app a platform reported: released and published by the
        admins until `app set <key> owners` names others (never open to everyone)."""
        definition: dict[str, Any] = {"name": name, platform: section}
        admins = list(self.service.config.admins)
        if admins:
            definition["roles"] = {"release": admins, "publish": admins}
        return definition

    async def _announce(self, text: str) -> str:
        await tell(self.listeners, text, "could not announce an app change")
        return text

    def key_of(self, platform: str, app_id: str) -> str | None:
        """The app that mini program ``app_id`` of ``platform`` is, if any."""
        return self._ids(platform).get(app_id)

    @staticmethod
    def _id_field(platform: str) -> str:
        return platforms.platform_class(platform).id_field

    def _ids(self, platform: str) -> dict[str, str]:
        """id on ``platform`` → app key, for every app there."""
        field = self._id_field(platform)
        return {
            str(getattr(section, field)): key
            for key, section in self.service.config.platform_apps(platform).items()
        }

    # -- helpers ------------------------------------------------------------------------

    async def _defined(self, key: str, verb: str) -> dict[str, Any] | None:
        """The stored definition of ``key`` (refused for a file app or an unknown key)."""
        if key in self.service.config.in_file:
            raise CommandRefused(f"{key} is defined in miniship.toml; {verb} it there")
        self.app(key)  # refused with the known keys when unknown
        row = next((r for r in await self.store.apps() if r.key == key), None)
        return dict(row.definition) if row is not None and row.definition else None

    def _valid(self, key: str, definition: Mapping[str, Any], source: str = "chat") -> AppEntry:
        where = f"[apps.{key}]"
        try:
            entry = parse_app(key, definition, self.service.config.timezone, where, source)
        except ConfigError as exc:
            said = str(exc).replace(f"{where}: ", "", 1)
            for name in set(definition) & set(platforms.names()):  # "[apps.shop.wechat]: …"
                said = said.replace(f"[apps.{key}.{name}]:", f"{self.service.display(name)}:")
            raise CommandRefused(said) from None
        missing = [p for p in entry.platforms if p not in self.service.adapters]
        if missing:
            raise CommandRefused(
                f"{', '.join(self.service.display(p) for p in missing)} is not connected in "
                "this miniship (no credentials and no emulator): set its credentials first"
            )
        return entry

    async def _record(self, actor: Actor, action: str, key: str, message: str) -> None:
        await self.store.record(
            actor=actor.id, action=action, outcome="ok", app=key, message=message
        )


def _tags(tags: Sequence[str]) -> list[str]:
    """``tags`` checked (once each, in order), or the refusal naming the first bad one."""
    try:
        return check_tags(tags)
    except ValueError as exc:
        raise CommandRefused(str(exc)) from None
