"""A merchant authorizes the Alipay third-party app: the link miniship makes, the
emulator's authorization page, the app_auth_code traded once, the grant kept in the vault
and used for an app configured with no token."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from platforms.alipay import AUTH_GRANT, AlipayPlatform
from platforms.base import recording
from platforms.errors import AuthError, InvalidInput
from tests.helpers import FakeSleep, World, open_world

CALLBACK = "https://miniship.test/connect/alipay"
NEW = "2021004100000077"
TEMPLATE = "2021004100009999"  # the example app's template, known to the emulator


class TokenVault:
    """A credential vault in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def load(self, platform: str, name: str) -> SecretStr | None:
        value = self.values.get(f"{platform}/{name}")
        return SecretStr(value) if value else None

    async def save(self, platform: str, name: str, value: SecretStr) -> None:
        self.values[f"{platform}/{name}"] = value.get_secret_value()


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with open_world("alipay") as w:
        w.adapter.sleep = FakeSleep(w.clock)
        assert isinstance(w.adapter, AlipayPlatform)
        w.adapter.vault = TokenVault()
        yield w


def adapter_of(world: World) -> AlipayPlatform:
    assert isinstance(world.adapter, AlipayPlatform)
    return world.adapter


async def authorize(link: str, merchant: str, name: str = "") -> dict[str, str]:
    """A merchant picks ``merchant`` on the page ``link`` opens and confirms: the query
    Alipay sends their browser back to the callback with."""
    async with httpx.AsyncClient() as browser:
        picked = {"merchant_app_id": merchant, "app_name": name}
        page = await browser.get(httpx.URL(link).copy_merge_params(picked))
    assert page.status_code == 302, page.text
    back = urlsplit(page.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    return dict(parse_qsl(back.query))


async def test_a_code_is_traded_once_and_the_grant_is_used_from_the_vault(world: World) -> None:
    a = adapter_of(world)
    vault = a.vault
    assert isinstance(vault, TokenVault)
    state = secrets.token_urlsafe(32)
    link = await a.connect_link("", f"{CALLBACK}?state={state}")
    biz = json.loads(dict(parse_qsl(urlsplit(link).query))["bizData"])
    assert biz["taskType"] == "INTERFACE_AUTH" and biz["platformCode"] == "O"
    operation = biz["agentOpParam"]
    assert operation["redirectUri"] == CALLBACK  # the callback as registered, no state
    assert operation["appTypes"] == ["TINYAPP"] and operation["isvAppId"] == a.settings.app_id
    assert base64.b64decode(operation["state"]).decode() == state

    query = await authorize(link, NEW, "新店")
    assert query["app_id"] == a.settings.app_id and query["app_auth_code"]
    assert a.link_state(query) == state  # sent back base64, as sent
    assert a.link_state({"state": state}) == state  # or already decoded (UNCERTAIN)
    with recording() as log:
        grant = await a.complete_connect("", query)
    assert grant.platform_app_id == NEW and grant.app is None and grant.permission_names
    token = vault.values[f"alipay/app_auth_token:{NEW}"]
    assert vault.values[f"alipay/app_refresh_token:{NEW}"]
    logged = repr(log)
    assert AUTH_GRANT in logged and query["app_auth_code"] not in logged and token not in logged

    with pytest.raises(AuthError) as err:  # the code works once
        await a.complete_connect("", query)
    assert err.value.code == "isv.code-invalid" and "`connect alipay`" in err.value.explanation
    assert vault.values[f"alipay/app_auth_token:{NEW}"] == token  # nothing lost

    # an app whose section has no token calls with the vault's
    a.set_apps({**a.apps, "new": a.AppConfig(app_id=NEW, template_id=TEMPLATE)})
    assert (await a.overview("new")).live_version is None
    found = await a.authorized_app(NEW)
    assert found is not None and found.name == NEW  # no version yet: no name to read
    await a.upload("new", "1.0.0", "notes")
    found = await a.authorized_app(NEW)
    assert found is not None and found.name == "新店"  # detail.query's app_name
    assert await a.authorized_app("2021004100000078") is None  # no grant held

    # authorizing again gives the app a new grant at once
    again = await authorize(await a.connect_link("new", CALLBACK), NEW)
    assert (await a.complete_connect("new", again)).app == "new"
    assert a._callers["new"].token == vault.values[f"alipay/app_auth_token:{NEW}"] != token
    assert (await a.overview("new")).trial_version == "1.0.0"


async def test_what_the_callback_cannot_be_trusted_with_is_refused(world: World) -> None:
    a = adapter_of(world)
    vault = a.vault
    assert isinstance(vault, TokenVault)
    link = await a.connect_link("", CALLBACK)
    # the grant of a mini program other than the app the link was made for is not kept
    other = await authorize(link, NEW)
    with pytest.raises(AuthError, match=f"is {NEW}, not shop"):
        await a.complete_connect("shop", other)
    # a code not traded within a day has expired
    late = await authorize(link, NEW)
    world.clock.advance(86_401)
    with pytest.raises(AuthError) as err:
        await a.complete_connect("", late)
    assert err.value.code == "isv.code-invalid"
    with pytest.raises(InvalidInput, match="no app_auth_code"):  # cancelled on the page
        await a.complete_connect("", {"app_id": a.settings.app_id})
    foreign = {**await authorize(link, NEW), "app_id": "2021000000000999"}
    with pytest.raises(AuthError, match="third-party app 2021000000000999"):
        await a.complete_connect("", foreign)
    assert not vault.values  # nothing kept by any of them

    async with httpx.AsyncClient() as browser:
        form = await browser.get(link)  # no mini program picked yet: the page asks
        assert form.status_code == 200 and 'name="merchant_app_id"' in form.text
        biz = json.loads(dict(parse_qsl(urlsplit(link).query))["bizData"])
        biz["agentOpParam"]["state"] = "not base64!"
        bad = await browser.get(
            link.split("?")[0],
            params={"bizData": json.dumps(biz), "merchant_app_id": NEW},
        )
        assert bad.status_code == 400 and "base64" in bad.text
