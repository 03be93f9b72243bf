"""``connect alipay``: a merchant authorizes miniship's Alipay third-party app on the
emulator's page, and the mini program is an app at once (no restart), announced in the
admin channel; authorizing again renews its grant; a bad, expired or reused code gets a
clear page and changes nothing."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from bot import serving
from handlers.commands import Commands
from handlers.pushes import PushReceiver
from handlers.releases import Actor
from handlers.roles import RoleCheck
from tests.handlers.harness import Session

NEW = "2021004100000077"


@asynccontextmanager
async def callback(session: Session) -> AsyncIterator[httpx.AsyncClient]:
    """miniship's callback served on loopback, and a browser."""
    rt = session.runtime
    async with (
        serving(PushReceiver(rt.service, rt.admin).web_app(), "127.0.0.1", 0) as port,
        httpx.AsyncClient() as browser,
    ):
        rt.admin.public_url = f"http://127.0.0.1:{port}"
        yield browser


async def authorized(browser: httpx.AsyncClient, reply: str, name: str = "") -> str:
    """The merchant of mini program NEW opens the link in ``reply`` and confirms: where
    Alipay sends their browser back to."""
    link = re.search(r"https?://\S+", reply)
    assert link is not None, reply
    picked = {"merchant_app_id": NEW, "app_name": name}
    page = await browser.get(httpx.URL(link.group()).copy_merge_params(picked))
    assert page.status_code == 302, page.text
    return page.headers["location"]


def with_code(url: str, code: str) -> str:
    parts = urlsplit(url)
    query = {**dict(parse_qsl(parts.query)), "app_auth_code": code}
    return parts._replace(query=urlencode(query)).geturl()


async def kept_token(session: Session) -> str | None:
    vault = session.runtime.service.adapters["alipay"].vault
    assert vault is not None
    token = await vault.load("alipay", f"app_auth_token:{NEW}")
    return token.get_secret_value() if token else None


async def test_an_authorization_adds_the_app_and_another_renews_it(session: Session) -> None:
    rt = session.runtime
    async with callback(session) as browser:
        back = await authorized(browser, await session.run("connect alipay"))
        assert back.startswith(f"{rt.admin.public_url}/connect/alipay?"), back
        page = await browser.get(back)
        assert page.status_code == 200 and f"may now release {NEW}" in page.text, page.text
        said = session.out.getvalue()
        assert f"➕ {NEW} ({NEW}) authorized miniship on Alipay: it is app `{NEW}` now" in said
        assert said.count("authorized miniship") == 1, said  # the grant adds what it granted
        assert "  granted: " in said, said
        assert rt.service.app(NEW).source == "alipay"
        replayed = await browser.get(back)
        assert replayed.status_code == 400 and "used already" in replayed.text
        out = await session.run(f"upload {NEW} 1.0.0 template 2021004100009999 first")
        assert "✓ Alipay" in out, out
        first = await kept_token(session)

        # through the registry, as Slack and the API reach it: admins only
        rt.service.config = dataclasses.replace(rt.service.config, admins=("U0ANN",))

        async def no_groups(group: str) -> frozenset[str]:
            return frozenset()

        commands = Commands(rt.service, RoleCheck(no_groups), admin=rt.admin)
        refused = await commands.handle(Actor("U0BOB"), "connect alipay")
        assert refused.error and "admin" in refused.text
        reply = await commands.handle(Actor("U0ANN"), "connect alipay")
        assert not reply.error and reply.private, reply.text
        page = await browser.get(await authorized(browser, reply.text, "新店"))
        assert page.status_code == 200, page.text
    assert [a for a in rt.service.config.apps if a == NEW] == [NEW]  # updated, not doubled
    assert first is not None and await kept_token(session) not in (None, first)
    assert f"[connect] {NEW} authorized miniship" in session.out.getvalue()
    history = [e for e in await rt.service.store.history(NEW) if e.action != "upload"]
    assert [(e.action, e.outcome) for e in history].count(("authorized", "ok")) == 2
    assert [e.action for e in history].count("app add") == 1
    out = await session.run(f"status {NEW}")
    assert "1.0.0" in out, out


async def test_a_bad_expired_or_reused_code_is_refused_and_changes_nothing(
    session: Session,
) -> None:
    rt = session.runtime
    async with callback(session) as browser:
        back = await authorized(browser, await session.run("connect alipay"))
        page = await browser.get(with_code(back, "0" * 32))
        assert page.status_code == 400 and "Authorization not completed" in page.text
        assert "authorisation code" in page.text and "`connect alipay`" in page.text
        assert NEW not in rt.service.config.apps and await kept_token(session) is None

        back = await authorized(browser, await session.run("connect alipay"))
        assert (await browser.get(back)).status_code == 200
        used = dict(parse_qsl(urlsplit(back).query))["app_auth_code"]
        token = await kept_token(session)
        back = await authorized(browser, await session.run("connect alipay"))
        page = await browser.get(with_code(back, used))  # a code traded before
        assert page.status_code == 400 and "used already" in page.text, page.text
        assert await kept_token(session) == token

        back = await authorized(browser, await session.run("connect alipay"))
        session.clock.advance(86_401)  # the code lives a day
        page = await browser.get(back)
        assert page.status_code == 400 and "has expired" in page.text, page.text

        forged = await browser.get(
            f"{rt.admin.public_url}/connect/alipay",
            params={"app_auth_code": used, "state": "made-up"},
        )
        assert forged.status_code == 400 and "not made by this miniship" in forged.text
    assert await kept_token(session) == token
    assert [a for a in rt.service.config.apps if a == NEW] == [NEW]
    outcomes = [(e.action, e.outcome) for e in await rt.service.store.history(NEW)]
    assert outcomes.count(("authorized", "ok")) == 1
    assert "names its app" in await session.run("connect wechat")
