"""Apps as data: added, changed, tagged and removed from chat with no restart; the file
wins for what it names; another process sees the change; only admins may make it."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import storage.store
from bot import pushes
from handlers.commands import Commands
from handlers.config import DefinedApp, parse_config, with_apps
from handlers.console import Console
from handlers.releases import Actor
from handlers.roles import RoleCheck
from platforms.errors import ConfigError
from platforms.wechat import authorization
from storage import ReleaseState, Store, make_engine
from tests.handlers.harness import Session, settings_for
from tests.helpers import FakeClock, clocked_runtime

WX = "wx3a5f9c2e1b7d4f60"
SHOP = "app add shop wechat wx1234567890abcdef template 1 tags shops,autumn name Autumn Shop"


async def test_an_app_added_from_chat_is_released_like_any_other(session: Session) -> None:
    out = await session.run(SHOP)
    assert "Added shop: miniship releases it from now on." in out, out
    assert "added from chat · tags @shops @autumn" in out
    assert "WeChat: AppID wx1234567890abcdef, template 1 (emulated)" in out
    listed = await session.run("apps")
    assert "shop — Autumn Shop" in listed and "demo — Demo Shop" in listed
    await session.run("upload shop 1.0.0 first")
    await session.run("submit shop 1.0.0")
    session.decide_reviews()
    await session.watch()
    out = await session.run("publish shop 1.0.0 --yes")
    assert "✓ WeChat" in out, out
    assert await session.state_of("shop", "1.0.0", "wechat") is ReleaseState.RELEASED


async def test_tags_names_and_removal(session: Session) -> None:
    await session.run(SHOP)
    assert "shop's tags: @shops @autumn @north" in await session.run("app tag shop north")
    assert "shop's tags: @shops @north" in await session.run("app untag shop autumn")
    out = await session.run("app set shop name Shop Two")
    assert "Changed name of shop." in out and "shop — Shop Two" in out, out
    out = await session.run("app remove shop")  # a script line: asked, not run
    assert "Remove shop?" in out and "Not run" in out, out
    out = await session.run("app remove shop --yes")
    assert "Removed shop" in out, out
    assert "shop —" not in await session.run("apps")
    assert "unknown app `shop`" in await session.run("status shop")
    history = await session.run("history shop")
    for said in ("app add", "app tag", "app set", "app remove"):
        assert said in history, history
    out = await session.run(SHOP)  # back again, with its history
    assert "Added shop" in out, out


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("app add demo wechat wx1234567890abcdef", "demo is defined in miniship.toml"),
        ("app set demo name X", "demo is defined in miniship.toml; change it there"),
        ("app remove demo --yes", "demo is defined in miniship.toml; remove it there"),
        ("app add bad wechat nothex", "WeChat: appid: a WeChat AppID is wx followed by 16"),
        ("app add bad", "on which platform?"),
        ("app add bad wechat", "which wechat id?"),
        ("app add bad weixin wx1234567890abcdef", "on which platform?"),
        ("app add bad wechat wx1234567890abcdef channel #general", "is not a channel I can"),
        ("app add bad wechat wx1234567890abcdef owners bob", "`bob` is not a person"),
        ("app add bad wechat wx1234567890abcdef tags Big!", "'big!' is not a tag"),
        ("app add bad wechat wx1234567890abcdef timezone Mars/Base", "unknown time zone"),
        ("app add bad wechat wx1234567890abcdef approvals 2", "approvals is 0 or 1"),
        ("app set ghost name X", "unknown app `ghost`"),
        ("app add ALL wechat wx1234567890abcdef", "`all` means every app"),
        ("app add shadow wechat wx3a5f9c2e1b7d4f60", "that WeChat mini program is app demo"),
        ("app add bad wechat wx1234567890abcdef owners name X", "which owners?"),
        ("app frob demo", "`app add`, `app set`"),
    ],
)
async def test_bad_app_changes_are_refused_and_change_nothing(
    session: Session, line: str, said: str
) -> None:
    out = await session.run(line)
    assert said in out, out
    assert [r.key for r in await session.runtime.store.apps()] == ["demo"]


async def test_an_app_with_work_under_way_is_not_removed(session: Session) -> None:
    await session.run(SHOP)
    await session.run("upload shop 1.0.0 first")
    await session.run("submit shop 1.0.0")
    out = await session.run("app remove shop --yes")
    assert "shop has work under way: 1.0.0 on wechat (in_review)" in out, out
    assert "shop —" in await session.run("apps")


async def test_a_file_app_may_be_tagged_from_chat_unless_the_file_tags_it(
    session: Session,
) -> None:
    assert "demo's tags: @shops" in await session.run("app tag demo shops")
    assert "tags @shops" in await session.run("apps")
    store = session.runtime.store
    book = session.runtime.admin.apps
    config = session.runtime.service.config
    tagged = {**config.in_file, "demo": dataclasses.replace(config.in_file["demo"], tags=("core",))}
    session.runtime.service.config = dataclasses.replace(config, file_apps=tagged)
    await book.load()
    assert session.runtime.service.app("demo").tags == ("core",)  # the file wins
    out = await session.run("app tag demo more")
    assert "the tags of demo are set in miniship.toml" in out, out
    assert [r.tags for r in await store.apps()] == [["shops"]]


@pytest.mark.both_databases
async def test_another_process_sees_an_added_app_without_a_restart(
    tmp_path: Path, database_url: str
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    async with (
        clocked_runtime(settings_for(first, database_url), FakeClock()) as one,
        clocked_runtime(settings_for(second, database_url), FakeClock()) as two,
    ):
        me = Actor("console:me")
        await one.commands().handle(me, SHOP)
        reply = await two.commands().handle(me, "status shop")
        assert not reply.error and "shop — Autumn Shop" in reply.text, reply.text
        await one.commands().handle(me, "app remove shop --yes")
        reply = await two.commands().handle(me, "status shop")
        assert reply.error and "unknown app `shop`" in reply.text, reply.text


@pytest.mark.both_databases
async def test_a_change_by_a_host_whose_clock_is_behind_is_seen(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replicas compare a revision the database keeps: another host's clock, an hour
    behind, and two changes within one second are seen all the same."""
    async with clocked_runtime(settings_for(tmp_path, database_url), FakeClock()) as rt:
        await rt.admin.apps.refresh()
        other = Store(make_engine(database_url))  # the other host's process
        try:
            behind = datetime.now(UTC) - timedelta(hours=1)
            monkeypatch.setattr(storage.store, "utcnow", lambda: behind)
            shop = {"name": "Autumn Shop", "wechat": {"appid": "wx1234567890abcdef"}}
            await other.define_app("shop", "Autumn Shop", shop, "chat", "U0ANN")
            await rt.admin.apps.refresh()
            assert rt.service.app("shop").name == "Autumn Shop"
            await other.tag_app("shop", ["north"], "U0ANN")  # the same second, too
            await rt.admin.apps.refresh()
            assert rt.service.app("shop").tags == ("north",)
            await other.retire_app("shop", "U0ANN")
            await rt.admin.apps.refresh()
            assert "shop" not in rt.service.config.apps
        finally:
            await other.engine.dispose()


async def test_only_admins_change_apps(session: Session) -> None:
    async def nobody(group: str) -> frozenset[str]:
        return frozenset({"U0ANN"}) if group == "S0ADMINS" else frozenset()

    rt = session.runtime
    config = rt.service.config
    rt.service.config = dataclasses.replace(config, admins=("S0ADMINS",))
    commands = Commands(rt.service, RoleCheck(nobody), admin=rt.admin)
    out = await commands.handle(Actor("U0BOB"), SHOP)
    assert out.error and "You need the *admin* role" in out.text, out.text
    out = await commands.handle(Actor("U0ANN"), SHOP)
    assert "Added shop" in out.text, out.text
    shop = rt.service.app("shop")
    assert shop.roles.publish == ("U0ANN",)  # who adds it from Slack owns it
    history = [(e.actor, e.action, e.outcome) for e in await rt.store.history("shop", 10)]
    assert ("U0ANN", "app add", "ok") in history
    refused = [e for e in await rt.store.events([], unscoped=True) if e.outcome == "refused"]
    assert [(e.actor, e.action) for e in refused] == [("U0BOB", "app")]


async def test_a_refusal_says_where_the_apps_roles_are_set(session: Session) -> None:
    await session.run("app add shop wechat wx1234567890abcdef template 1 owners U0ANN")
    await session.run("freeze shop until 23:59 release train closed")
    rt = session.runtime

    async def no_groups(group: str) -> frozenset[str]:
        return frozenset()

    commands = Commands(rt.service, RoleCheck(no_groups), admin=rt.admin)
    reply = await commands.handle(Actor("U0BOB"), "upload shop 1.0.0 first")
    assert reply.error and "You need the *release* role for shop" in reply.text, reply.text
    assert "an admin names who may release and publish it with `app set shop owners`" in (
        reply.text
    )
    assert "miniship.toml" not in reply.text
    reply = await commands.handle(Actor("U0ANN"), "publish shop 1.0.0 --override urgent")
    assert reply.error and "You need the *override* role for shop" in reply.text, reply.text
    assert "shop is kept in the database, where chat sets only who may release and publish" in (
        reply.text
    )


def test_stored_definitions_that_no_longer_validate_are_left_out() -> None:
    config = parse_config({"apps": {"demo": {"wechat": {"appid": "wx3a5f9c2e1b7d4f60"}}}})
    merged = with_apps(
        config,
        [
            DefinedApp("shop", "chat", {"wechat": {"appid": "wx1234567890abcdef"}}, ("shops",)),
            DefinedApp("gone", "chat", {"weixin": {"appid": "x"}}),
            DefinedApp("demo", "chat", {"alipay": {"app_id": "1"}}, ("core",)),
        ],
    )
    assert sorted(merged.apps) == ["demo", "shop"]
    assert merged.apps["shop"].tags == ("shops",) and merged.apps["shop"].source == "chat"
    assert set(merged.apps["demo"].platforms) == {"wechat"}  # the file wins
    assert merged.apps["demo"].tags == ("core",)  # chat's tags, the file giving none
    assert merged.in_file.keys() == {"demo"}


def test_tags_and_admins_in_the_file() -> None:
    config = parse_config(
        {
            "admins": ["U0ANN", "S0OPS"],
            "apps": {"a": {"tags": ["shops", "north"], "wechat": {"appid": "wx3a5f9c2e1b7d4f60"}}},
        }
    )
    assert config.admins == ("U0ANN", "S0OPS") and config.apps["a"].tags == ("shops", "north")
    with pytest.raises(ConfigError, match="'Shops' is not a tag"):
        parse_config(
            {"apps": {"a": {"tags": ["Shops"], "wechat": {"appid": "wx3a5f9c2e1b7d4f60"}}}}
        )
    with pytest.raises(ConfigError, match="'bob' is not a Slack user id"):
        parse_config({"admins": ["bob"], "apps": {}})


async def test_the_console_says_nothing_of_admins(tmp_path: Path, session: Session) -> None:
    out = io.StringIO()
    console = Console(
        session.runtime.commands(),
        Actor("console:root"),
        stdin=io.StringIO(),
        stdout=out,
        interactive=False,
        pictures=tmp_path / "qr",
    )
    await console.run_line(SHOP)  # the console's operator holds the database: admin
    assert "Added shop" in out.getvalue(), out.getvalue()


# -- what the platform says -------------------------------------------------------------------


async def test_sync_registers_the_authorized_mini_programs_and_retires_the_gone(
    session: Session,
) -> None:
    out = await session.run("apps sync wechat tag merchants")
    assert "WeChat: 4 mini programs authorize the platform." in out, out  # demo + 3
    assert "added 3: wx0000000000000001, wx0000000000000002, wx0000000000000003" in out
    listed = await session.run("apps @merchants")
    assert "wx0000000000000002 — 商户 2" in listed and "reported by WeChat" in listed
    assert "demo —" not in listed
    assert "nothing to add" in await session.run("apps sync wechat")
    # the merchant can be released at once: the list gave its refresh token
    await session.run("upload wx0000000000000001 1.0.0 template 1 first")
    out = await session.run("submit wx0000000000000001 1.0.0")
    assert "✓ WeChat" in out, out
    wechat = session.runtime.emulators["wechat"]
    wechat.revoke("wx0000000000000001")  # type: ignore[attr-defined]
    wechat.revoke("wx0000000000000002")  # type: ignore[attr-defined]
    out = await session.run("apps sync wechat")
    assert "removed 1 no longer authorized: wx0000000000000002" in out, out
    assert "kept while work is under way: wx0000000000000001 (1.0.0 on wechat" in out
    assert "wx0000000000000002" not in await session.run("apps")


async def test_an_app_a_sync_brings_back_keeps_its_tags(session: Session) -> None:
    key = "wx0000000000000001"
    await session.run("apps sync wechat tag merchants")
    assert f"{key}'s tags: @merchants @north" in await session.run(f"app tag {key} north")
    wechat = session.runtime.emulators["wechat"]
    wechat.revoke(key)  # type: ignore[attr-defined]
    assert f"removed 1 no longer authorized: {key}" in await session.run("apps sync wechat")
    wechat.authorize(key, "商户 1")  # type: ignore[attr-defined]
    out = await session.run("apps sync wechat tag autumn")
    assert f"added 1: {key}" in out, out
    assert session.runtime.service.app(key).tags == ("merchants", "north", "autumn")


async def test_sync_reads_every_page(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(authorization, "PAGE", 2)  # pages as at 500, with fewer apps
    wechat = session.runtime.emulators["wechat"]
    wechat.add_merchants(22, start=100)
    out = await session.run("apps sync wechat")
    assert "WeChat: 26 mini programs authorize the platform." in out, out
    assert "added 25:" in out and "… and 5 more" in out
    assert len(session.runtime.service.config.apps) == 26
    assert wechat.calls["/cgi-bin/component/api_get_authorizer_list"] == 13  # type: ignore[attr-defined]


async def test_authorization_pushes_add_and_retire_apps(session: Session) -> None:
    wechat = session.runtime.emulators["wechat"]
    async with pushes(session.runtime):
        await wechat.stop_pushing()
        await wechat.deliver_pushes()  # the first verify ticket
        wechat.authorize("wx00000000000000ff", "新店")  # type: ignore[attr-defined]
        assert await wechat.deliver_pushes() == 1
        said = session.out.getvalue()
        assert "➕ 新店 (wx00000000000000ff) authorized miniship on WeChat" in said, said
        assert session.runtime.service.app("wx00000000000000ff").source == "wechat"
        wechat.revoke("wx00000000000000ff")  # type: ignore[attr-defined]
        assert await wechat.deliver_pushes() == 1
        assert "➖ 新店 (wx00000000000000ff) withdrew" in session.out.getvalue()
        assert "wx00000000000000ff" not in session.runtime.service.config.apps
        wechat.revoke("wx3a5f9c2e1b7d4f60")  # type: ignore[attr-defined]  # demo, from the file
        assert await wechat.deliver_pushes() == 1
        assert "Demo Shop (demo) withdrew miniship's authorization on WeChat; it stays" in (
            session.out.getvalue()
        )
    history = await session.run("history wx00000000000000ff")
    assert "wechat push" in history and "app add" in history and "app remove" in history


async def test_only_admins_sync(session: Session) -> None:
    rt = session.runtime
    rt.service.config = dataclasses.replace(rt.service.config, admins=("U0ANN",))

    async def no_groups(group: str) -> frozenset[str]:
        return frozenset()

    commands = Commands(rt.service, RoleCheck(no_groups), admin=rt.admin)
    out = await commands.handle(Actor("U0BOB"), "apps sync wechat")
    assert out.error and "You need the *admin* role" in out.text
    assert "added 3" in (await commands.handle(Actor("U0ANN"), "apps sync wechat")).text
