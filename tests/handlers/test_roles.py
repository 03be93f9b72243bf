"""Roles: who may view, release and publish each app; refusals are recorded."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from handlers.commands import Commands
from handlers.config import AppEntry, Roles, parse_config
from handlers.releases import Actor
from handlers.roles import RoleCheck
from platforms.errors import ConfigError
from tests.handlers.harness import Session

APP = AppEntry(
    "demo",
    "Demo",
    ZoneInfo("Asia/Shanghai"),
    roles=Roles(view=("*",), release=("U0DEV", "S0TEAM"), publish=("U0LEAD",)),
)


class Groups:
    def __init__(self) -> None:
        self.asked: list[str] = []
        self.now = 0.0

    async def members_of(self, group: str) -> frozenset[str]:
        self.asked.append(group)
        return frozenset({"U0MEMBER"}) if group == "S0TEAM" else frozenset()


async def test_users_groups_and_everyone() -> None:
    groups = Groups()
    check = RoleCheck(groups.members_of, clock=lambda: groups.now)
    assert await check.allows(Actor("U0ANY"), APP, "view")
    assert await check.allows(Actor("U0DEV"), APP, "release")
    assert await check.allows(Actor("U0MEMBER"), APP, "release")
    assert not await check.allows(Actor("U0ANY"), APP, "release")
    assert not await check.allows(Actor("U0DEV"), APP, "publish")
    assert await check.allows(Actor("U0LEAD"), APP, "publish")
    assert groups.asked == ["S0TEAM"]  # asked once, then remembered
    groups.now += 61
    await check.allows(Actor("U0ANY"), APP, "release")
    assert groups.asked == ["S0TEAM", "S0TEAM"]


def test_roles_in_the_apps_file() -> None:
    wechat = {"appid": "wx3a5f9c2e1b7d4f60", "template_id": 1}
    config = parse_config(
        {"apps": {"a": {"roles": {"publish": ["U012AB", "S0REL"]}, "wechat": wechat}}}
    )
    roles = config.apps["a"].roles
    assert roles.publish == ("U012AB", "S0REL") and roles.view == ("*",)
    assert not roles.open and Roles().open
    for bad in ({"publish": ["bob"]}, {"admin": ["U012AB"]}):
        with pytest.raises(ConfigError):
            parse_config({"apps": {"a": {"roles": bad, "wechat": wechat}}})


async def test_a_refused_command_says_which_role_and_is_recorded(session: Session) -> None:
    service = session.runtime.service
    demo = service.config.apps["demo"]
    strict = AppEntry(
        demo.key,
        demo.name,
        demo.timezone,
        demo.platforms,
        roles=Roles(release=("U0DEV",), publish=("U0LEAD",)),
    )
    service.config = type(service.config)({"demo": strict})
    commands = Commands(service, RoleCheck(Groups().members_of))
    reply = await commands.handle(Actor("U0DEV"), "upload demo 1.0.0 notes")
    assert not reply.error
    reply = await commands.handle(Actor("U0DEV"), "publish demo wechat 1.0.0")
    assert reply.error and "*publish* role" in reply.text and "publish, withdraw" in reply.text
    reply = await commands.handle(Actor("U0DEV"), "status")
    assert not reply.error  # everyone may view
    _, events = await service.history("demo")
    refused = [e for e in events if e.outcome == "refused"]
    assert [(e.actor, e.action, e.version, e.platform) for e in refused] == [
        ("U0DEV", "publish", "1.0.0", "wechat")
    ]
