"""WeChat adapter and emulator: the rules, error codes and token handling beyond the contract.

Most tests run the adapter against its emulator over real HTTP on loopback with a fake
clock; a few talk to the emulator directly (raw requests) or give the adapter a mock
transport to check how it tolerates the fact sheet's uncertain answer shapes.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from platforms.base import ReviewState, recording
from platforms.emulators.wechat import WeChatEmulator
from platforms.errors import (
    AlreadyInReview,
    AuthError,
    BadResponse,
    ConfigError,
    InvalidInput,
    InvalidState,
    NotFound,
    PlatformError,
    PlatformUnavailable,
    QuotaExceeded,
)
from platforms.wechat import WeChatPlatform, error_for
from tests.helpers import FakeClock, World, open_world
from tests.platforms.transports import Tamper

COMPONENT = "/cgi-bin/component/api_component_token"
AUTHORIZER = "/cgi-bin/component/api_authorizer_token"
RID = re.compile(r" rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$")


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with open_world("wechat") as w:
        yield w


@pytest.fixture
def sleeps(world: World) -> list[float]:
    """The adapter's backoff waits, recorded instead of slept."""
    waited: list[float] = []

    async def no_wait(seconds: float) -> None:
        waited.append(seconds)

    wx(world).sleep = no_wait
    return waited


def wx(world: World) -> WeChatPlatform:
    assert isinstance(world.adapter, WeChatPlatform)
    return world.adapter


def emu(world: World) -> WeChatEmulator:
    assert isinstance(world.emulator, WeChatEmulator)
    return world.emulator


def program(world: World) -> Any:
    return emu(world).programs[wx(world).apps[world.app].appid]


class Raw:
    """Direct requests to the emulator, as another client of api.weixin.qq.com would send."""

    def __init__(self, world: World, client: httpx.AsyncClient) -> None:
        self.world = world
        self.client = client
        self.base = world.server.base_url("wechat")

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        if body is not None:
            content = json.dumps(body, ensure_ascii=False).encode()
        return await self.client.request(method, self.base + path, params=query, content=content)

    async def json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.call(method, path, **kwargs)
        assert response.status_code == 200
        data: dict[str, Any] = response.json()
        return data

    def component_body(self, **changes: str) -> dict[str, str]:
        s = wx(self.world).settings
        assert s.component_secret is not None and s.component_verify_ticket is not None
        body = {
            "component_appid": s.component_appid,
            "component_appsecret": s.component_secret.get_secret_value(),
            "component_verify_ticket": s.component_verify_ticket.get_secret_value(),
        }
        return {**body, **changes}

    def authorizer_body(self, **changes: str) -> dict[str, str]:
        cfg = wx(self.world).apps[self.world.app]
        body = {
            "component_appid": wx(self.world).settings.component_appid,
            "authorizer_appid": cfg.appid,
            "authorizer_refresh_token": cfg.refresh_token.get_secret_value(),
        }
        return {**body, **changes}

    async def ctok(self) -> str:
        data = await self.json("POST", COMPONENT, body=self.component_body())
        return str(data["component_access_token"])

    async def atok(self) -> str:
        query = {"component_access_token": await self.ctok()}
        data = await self.json("POST", AUTHORIZER, query=query, body=self.authorizer_body())
        return str(data["authorizer_access_token"])

    async def wxa(self, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        return await self.json(
            method, path, query={"access_token": await self.atok()}, body=body, **kw
        )


@pytest.fixture
async def raw(world: World) -> AsyncIterator[Raw]:
    async with httpx.AsyncClient(timeout=2.0) as client:
        yield Raw(world, client)


async def approved(world: World, version: str = "1.0.0", notes: str = "notes") -> str:
    a = wx(world)
    await a.upload(world.app, version, notes)
    ref = (await a.submit(world.app, version, notes)).ref
    world.decide_reviews()
    return ref


# --------------------------------------------------------------------------- the flow


async def test_happy_path_exchanges_and_no_secrets(world: World) -> None:
    a, app = wx(world), world.app
    with recording() as log:
        up = await a.upload(app, "1.0.0", "首个版本")
        sub = await a.submit(app, "1.0.0", "首个版本")
        world.decide_reviews()
        status = await a.review_status(app, "1.0.0", sub.ref)
        published = await a.publish(app, "1.0.0", sub.ref)
        overview = await a.overview(app)
    assert "trial version updated" in up.detail
    assert sub.ref.isdigit() and status.state is ReviewState.APPROVED
    assert status.decided_at is not None and status.decided_at.utcoffset() is not None
    assert "published 1.0.0" in published
    assert overview.live_version == "1.0.0" and overview.trial_version == "1.0.0"
    assert overview.review is not None and overview.review.state is ReviewState.RELEASED

    apis = [x.api for x in log]
    assert apis[:3] == [f"POST {COMPONENT}", f"POST {AUTHORIZER}", "POST /wxa/commit"]
    assert apis.count(f"POST {COMPONENT}") == 1 and apis.count(f"POST {AUTHORIZER}") == 1
    for api in ("POST /wxa/submit_audit", "POST /wxa/get_auditstatus", "POST /wxa/release"):
        assert api in apis
    assert all("?" not in x and "token=" not in x for x in apis)
    commit = log[apis.index("POST /wxa/commit")]
    assert commit.request["access_token"] == "***"
    ext = json.loads(commit.request["ext_json"])  # sent as a JSON string
    assert ext == {"extAppid": a.apps[app].appid}
    assert commit.request["user_desc"] == "首个版本"

    e = emu(world)
    s = a.settings
    assert s.component_secret is not None and s.component_verify_ticket is not None
    secrets = {
        *e.tokens,
        s.component_secret.get_secret_value(),
        s.component_verify_ticket.get_secret_value(),
        a.apps[app].refresh_token.get_secret_value(),
    }
    text = repr(log)
    assert e.tokens and not [v for v in secrets if v in text]


async def test_upload_merges_ext_json_and_review_notes(world: World) -> None:
    a, app = wx(world), world.app
    cfg = a.apps[app].model_copy(
        update={
            "ext_json": {"ext": {"shop": "demo"}, "pages": ["pages/index/index"]},
            "review_notes": "Test account: demo / demo1234",
        }
    )
    other = WeChatPlatform(a.settings, {app: cfg}, client=a.client, clock=world.clock)
    await other.upload(app, "2.0.0", "new checkout")
    await other.submit(app, "2.0.0", "new checkout")
    p = program(world)
    assert p.commit.ext_json == {
        "ext": {"shop": "demo"},
        "pages": ["pages/index/index"],
        "extAppid": cfg.appid,
    }
    assert p.audits[-1].version_desc == "new checkout\nTest account: demo / demo1234"


async def test_review_outcomes(world: World) -> None:
    a, app = wx(world), world.app
    await a.upload(app, "1.0.0", "please #delay")
    sub = await a.submit(app, "1.0.0", "please #delay")
    world.clock.advance(emu(world).review_seconds / 2)
    delayed = await a.review_status(app, "1.0.0", sub.ref)
    assert delayed.state is ReviewState.DELAYED and delayed.reason and delayed.decided_at is None
    world.decide_reviews()
    assert (await a.review_status(app, "1.0.0", sub.ref)).state is ReviewState.APPROVED

    await a.upload(app, "1.1.0", "try #reject")
    rejected_ref = (await a.submit(app, "1.1.0", "try #reject")).ref  # supersedes approval
    world.decide_reviews()
    rejected = await a.review_status(app, "1.1.0", rejected_ref)
    assert rejected.state is ReviewState.REJECTED and "#reject" in rejected.reason
    assert rejected.decided_at is not None and rejected.decided_at.utcoffset() is not None
    assert "emu_" in rejected.detail  # screenshots from get_auditstatus' "screenshot"
    overview = await a.overview(app)
    assert overview.review is not None and overview.review.state is ReviewState.REJECTED
    assert "emu_" in overview.review.detail  # from get_latest_auditstatus' "ScreenShot"
    with pytest.raises(InvalidState):  # the superseded approval cannot be published
        await a.publish(app, "1.0.0", sub.ref)


async def test_unknown_audit_is_unknown(world: World) -> None:
    a = wx(world)
    status = await a.review_status(world.app, "1.0.0", "12345")
    assert status.state is ReviewState.UNKNOWN and "12345" in status.detail
    with pytest.raises(InvalidInput):
        await a.review_status(world.app, "1.0.0", "not-a-number")


async def test_overview_before_anything(world: World) -> None:
    overview = await wx(world).overview(world.app)
    assert overview.live_version is None and overview.trial_version is None
    assert overview.review is None  # 85058: never submitted
    assert any("20 of 20" in line for line in overview.lines)


# --------------------------------------------------------------------------- refusals


async def test_second_submit_is_85009(world: World) -> None:
    a, app = wx(world), world.app
    await a.upload(app, "1.0.0", "n")
    await a.submit(app, "1.0.0", "n")
    await a.upload(app, "1.0.1", "n")  # committing during a review is allowed
    with pytest.raises(AlreadyInReview) as err:
        await a.submit(app, "1.0.1", "n")
    assert err.value.code == "85009" and "withdraw" in err.value.explanation
    assert RID.search(err.value.platform_message)


async def test_monthly_review_quota_85085(world: World) -> None:
    a, app = wx(world), world.app
    emu(world).quota_limit = 1
    await a.upload(app, "1.0.0", "n")
    sub = await a.submit(app, "1.0.0", "n")
    await a.withdraw(app, "1.0.0", sub.ref)
    with pytest.raises(QuotaExceeded) as err:
        await a.submit(app, "1.0.0", "n")
    assert err.value.code == "85085" and "monthly" in err.value.explanation
    overview = await a.overview(app)
    assert any("0 of 1" in line for line in overview.lines)


async def test_submit_needs_the_version_as_trial(world: World) -> None:
    a, app = wx(world), world.app
    with pytest.raises(InvalidState, match=r"upload 1\.0\.0 first"):
        await a.submit(app, "1.0.0", "n")
    await a.upload(app, "1.0.0", "n")
    await a.upload(app, "1.0.1", "n")
    with pytest.raises(InvalidState) as err:
        await a.submit(app, "1.0.0", "n")
    assert "1.0.1" in err.value.explanation and err.value.code == ""
    assert program(world).audits == [] and emu(world).calls["/wxa/submit_audit"] == 0


async def test_publish_only_the_approved_audit(world: World) -> None:
    a, app = wx(world), world.app
    ref = await approved(world, "1.0.0")
    with pytest.raises(InvalidState, match="different code"):
        await a.publish(app, "2.0.0", ref)  # right audit, wrong version
    await a.upload(app, "1.0.1", "n")
    newer = (await a.submit(app, "1.0.1", "n")).ref
    with pytest.raises(InvalidState, match=f"audit {newer}"):
        await a.publish(app, "1.0.0", ref)  # superseded by the newer submission
    with pytest.raises(InvalidState, match="only an approved version"):
        await a.publish(app, "1.0.1", newer)
    assert program(world).release is None and emu(world).calls["/wxa/release"] == 0


async def test_publish_twice_is_already_live(world: World) -> None:
    a, app = wx(world), world.app
    ref = await approved(world)
    await a.publish(app, "1.0.0", ref)
    assert "already live" in await a.publish(app, "1.0.0", ref)  # 85052 but live
    assert (await a.review_status(app, "1.0.0", ref)).state is ReviewState.RELEASED


async def test_withdraw_refusals(world: World) -> None:
    a, app = wx(world), world.app
    with pytest.raises(InvalidState, match="nothing to"):
        await a.withdraw(app, "1.0.0", "1")
    await a.upload(app, "1.0.0", "n")
    ref = (await a.submit(app, "1.0.0", "n")).ref
    with pytest.raises(InvalidState, match=f"audit {ref}.*under review"):
        await a.withdraw(app, "0.9.0", "42")
    world.decide_reviews()
    with pytest.raises(InvalidState, match="approved"):
        await a.withdraw(app, "1.0.0", ref)
    assert emu(world).calls["/wxa/undocodeaudit"] == 0


async def test_withdraw_quota_87013(world: World) -> None:
    a, app = wx(world), world.app
    e = emu(world)
    e.review_seconds = 10 * 86_400  # reviews stay pending across the days below
    await a.upload(app, "1.0.0", "n")

    async def cycle() -> str:
        ref = (await a.submit(app, "1.0.0", "n")).ref
        await a.withdraw(app, "1.0.0", ref)
        return ref

    for _ in range(5):
        await cycle()
    ref = (await a.submit(app, "1.0.0", "n")).ref
    with pytest.raises(QuotaExceeded) as err:
        await a.withdraw(app, "1.0.0", ref)
    assert err.value.code == "87013" and "5 withdrawals a day" in err.value.explanation
    assert (await a.review_status(app, "1.0.0", ref)).state is ReviewState.IN_REVIEW

    world.clock.advance(86_400)  # the next day (Beijing time), same month
    await a.withdraw(app, "1.0.0", ref)
    for _ in range(4):
        await cycle()  # ten this month
    world.clock.advance(86_400)
    ref = (await a.submit(app, "1.0.0", "n")).ref
    with pytest.raises(QuotaExceeded, match="10 a month"):
        await a.withdraw(app, "1.0.0", ref)


async def test_privacy_scan_61039_is_waited_for(world: World) -> None:
    a, app = wx(world), world.app
    e = emu(world)
    waited: list[float] = []

    async def clock_sleep(seconds: float) -> None:
        waited.append(seconds)
        world.clock.advance(seconds)

    a.sleep = clock_sleep
    e.privacy_scan_seconds = 12
    await a.upload(app, "1.0.0", "n")
    ref = (await a.submit(app, "1.0.0", "n")).ref
    assert waited == [5.0, 10.0]
    await a.withdraw(app, "1.0.0", ref)

    e.privacy_scan_seconds = 1000
    e.quota_limit = 1  # 61039 comes first: nothing is counted while the scan runs
    await a.upload(app, "1.0.0", "n")
    with pytest.raises(InvalidState) as err:
        await a.submit(app, "1.0.0", "n")
    assert err.value.code == "61039" and waited == [5.0, 10.0, 5.0, 10.0, 15.0]


# --------------------------------------------------------------------------- tokens


async def test_refused_token_is_renewed_once(world: World) -> None:
    a, app = wx(world), world.app
    await a.upload(app, "1.0.0", "n")
    emu(world).inject("*", "expired_token")
    with recording() as log:
        assert (await a.overview(app)).trial_version == "1.0.0"
    assert [x.api for x in log][:5] == [
        "POST /wxa/getversioninfo",  # 42001: authorizer token expired
        f"POST {AUTHORIZER}",  # 42001: component token expired too
        f"POST {COMPONENT}",
        f"POST {AUTHORIZER}",
        "POST /wxa/getversioninfo",
    ]
    assert [x.answer.get("errcode") for x in log[:2]] == [42001, 42001]


async def test_a_token_refused_after_renewal_is_an_auth_error(world: World) -> None:
    emu(world).inject("/wxa/getversioninfo", "expired_token", times=2)
    with pytest.raises(AuthError) as err:
        await wx(world).overview(world.app)
    assert err.value.code == "42001"
    assert emu(world).calls["/wxa/getversioninfo"] == 2  # renewed and retried once only


async def test_tokens_are_renewed_before_they_expire(world: World) -> None:
    a, app = wx(world), world.app
    await a.overview(app)
    world.clock.advance(7200 - 600 + 1)  # inside the last ten minutes
    with recording() as log:
        await a.overview(app)
    apis = [x.api for x in log]
    assert apis[:2] == [f"POST {COMPONENT}", f"POST {AUTHORIZER}"]
    assert not [x for x in log if x.answer.get("errcode") in (40001, 40014, 42001)]
    world.clock.advance(7200 + 5)  # long after expiry
    with recording() as log:
        await a.overview(app)
    assert [x.api for x in log][:2] == [f"POST {COMPONENT}", f"POST {AUTHORIZER}"]
    assert not [x for x in log if x.answer.get("errcode") in (40001, 40014, 42001)]
    with recording() as log:
        await a.overview(app)
    assert f"POST {AUTHORIZER}" not in [x.api for x in log]


async def test_token_renewal_is_single_flight(world: World) -> None:
    a, app = wx(world), world.app
    results = await asyncio.gather(*(a.overview(app) for _ in range(6)))
    assert len(results) == 6
    assert emu(world).calls[COMPONENT] == 1 and emu(world).calls[AUTHORIZER] == 1


async def test_missing_refresh_token_is_a_config_error(world: World) -> None:
    a, app = wx(world), world.app
    cfg = a.apps[app].model_copy(update={"refresh_token": None})
    other = WeChatPlatform(a.settings, {app: cfg}, client=a.client, clock=world.clock)
    with pytest.raises(ConfigError, match="refresh_token"):
        await other.upload(app, "1.0.0", "n")
    bare = WeChatPlatform(WeChatPlatform.Settings(component_appid=""), {app: a.apps[app]})
    with pytest.raises(ConfigError, match="WECHAT_COMPONENT_SECRET"):
        await bare.overview(app)
    await bare.aclose()


# --------------------------------------------------------------------------- unclear answers


async def test_busy_reads_are_retried_with_backoff(world: World, sleeps: list[float]) -> None:
    a, app = wx(world), world.app
    emu(world).inject("/wxa/getversioninfo", "busy", times=2)
    assert (await a.overview(app)).live_version is None
    assert sleeps == [0.5, 1.0]
    emu(world).inject("/wxa/getversioninfo", "unavailable", times=3)
    with pytest.raises(PlatformUnavailable) as err:
        await a.overview(app)
    assert err.value.code == "HTTP 503"


async def test_lost_status_answer_is_asked_again(world: World, sleeps: list[float]) -> None:
    a, app = wx(world), world.app
    await a.upload(app, "1.0.0", "n")
    sub = await a.submit(app, "1.0.0", "n")
    emu(world).inject("/wxa/get_auditstatus", "timeout")
    assert (await a.review_status(app, "1.0.0", sub.ref)).state is ReviewState.IN_REVIEW
    assert emu(world).calls["/wxa/get_auditstatus"] == 2


async def test_lost_submit_answer_is_checked(world: World) -> None:
    a, app = wx(world), world.app
    await a.upload(app, "1.0.0", "n")
    emu(world).inject("/wxa/submit_audit", "timeout")
    sub = await a.submit(app, "1.0.0", "n")
    assert "confirmed" in sub.detail
    assert [x.auditid for x in program(world).audits] == [int(sub.ref)]
    assert emu(world).calls["/wxa/submit_audit"] == 1  # not repeated


async def test_busy_publish_is_not_repeated(world: World) -> None:
    a, app = wx(world), world.app
    ref = await approved(world)
    emu(world).inject("/wxa/release", "busy")
    with pytest.raises(PlatformUnavailable) as err:
        await a.publish(app, "1.0.0", ref)
    assert err.value.code == "-1" and "did not happen" in err.value.explanation
    assert emu(world).calls["/wxa/release"] == 1 and program(world).release is None
    assert "published" in await a.publish(app, "1.0.0", ref)


async def test_busy_write_then_unreachable_check_says_unknown(
    world: World, sleeps: list[float]
) -> None:
    a, app = wx(world), world.app
    emu(world).inject("/wxa/commit", "busy")
    emu(world).inject("/wxa/getversioninfo", "unavailable", times=5)
    with pytest.raises(PlatformUnavailable, match="could not check"):
        await a.upload(app, "1.0.0", "n")
    assert emu(world).calls["/wxa/commit"] == 1


async def test_lost_withdraw_answer_is_checked(world: World) -> None:
    a, app = wx(world), world.app
    await a.upload(app, "1.0.0", "n")
    ref = (await a.submit(app, "1.0.0", "n")).ref
    emu(world).inject("/wxa/undocodeaudit", "timeout")
    assert "confirmed" in await a.withdraw(app, "1.0.0", ref)
    assert emu(world).calls["/wxa/undocodeaudit"] == 1
    assert (await a.review_status(app, "1.0.0", ref)).state is ReviewState.WITHDRAWN


async def test_a_write_never_sent_is_not_checked(world: World, sleeps: list[float]) -> None:
    emu(world).inject(COMPONENT, "unavailable", times=3)
    with pytest.raises(PlatformUnavailable) as err:
        await wx(world).upload(world.app, "1.0.0", "n")
    assert err.value.code == "HTTP 503" and sleeps == [0.5, 1.0]
    calls = emu(world).calls
    assert calls[COMPONENT] == 3 and calls["/wxa/commit"] == 0
    assert calls["/wxa/getversioninfo"] == 0  # nothing to confirm: the commit never went out


# --------------------------------------------------------------------------- the emulator


async def test_emulator_transport_conventions(raw: Raw) -> None:
    token = await raw.call("POST", COMPONENT, body=raw.component_body())
    assert token.headers["content-type"] == "application/json; encoding=utf-8"
    data = token.json()
    assert "errcode" not in data and data["expires_in"] == 7200
    wrong = await raw.call("GET", "/wxa/commit", query={"access_token": "x"})
    assert wrong.status_code == 200 and wrong.json()["errcode"] == 43002
    assert RID.search(wrong.json()["errmsg"])
    wrong = await raw.call("POST", "/wxa/get_latest_auditstatus", body={})
    assert wrong.json()["errcode"] == 43001
    atok = await raw.atok()
    empty = await raw.json("POST", "/wxa/release", query={"access_token": atok})
    assert empty["errcode"] == 44002 and empty["errmsg"].startswith("empty post data rid: ")
    bad = await raw.json("POST", "/wxa/release", query={"access_token": atok}, content=b"{")
    assert bad["errcode"] == 47001
    info = await raw.json("POST", "/wxa/getversioninfo", query={"access_token": atok}, body={})
    assert info == {"errcode": 0, "errmsg": "ok"}


async def test_emulator_token_checks(raw: Raw) -> None:
    async def code(method: str, path: str, **kw: Any) -> int:
        return int((await raw.json(method, path, **kw))["errcode"])

    ctok, atok = await raw.ctok(), await raw.atok()
    assert await code("POST", "/wxa/getversioninfo", body={}) == 41001
    assert await code("POST", "/wxa/getversioninfo", query={"access_token": "x"}, body={}) == 40001
    assert await code("POST", "/wxa/getversioninfo", query={"access_token": ctok}, body={}) == 48001
    auth = raw.authorizer_body()
    assert await code("POST", AUTHORIZER, query={"access_token": atok}, body=auth) == 61014
    via_access_token = await raw.json("POST", AUTHORIZER, query={"access_token": ctok}, body=auth)
    assert via_access_token["authorizer_access_token"]  # CTOK accepted under either key
    for changes, expected in [
        ({"component_appsecret": "nope"}, 40125),
        ({"component_verify_ticket": "ticket@@@old"}, 61006),
        ({"component_appid": "wx0000000000000000"}, 40013),
        ({"component_appid": ""}, 41018),
        ({"component_appsecret": ""}, 41004),
    ]:
        assert await code("POST", COMPONENT, body=raw.component_body(**changes)) == expected
    q = {"component_access_token": ctok}
    for changes, expected in [
        ({"authorizer_appid": "wx1111111111111111"}, 61003),
        ({"authorizer_refresh_token": "refreshtoken@@@stale"}, 61023),
        ({"component_appid": "wx2222222222222222"}, 61011),
    ]:
        body = raw.authorizer_body(**changes)
        assert await code("POST", AUTHORIZER, query=q, body=body) == expected
    raw.world.clock.advance(7200)
    assert await code("POST", "/wxa/getversioninfo", query={"access_token": atok}, body={}) == 42001
    assert await code("POST", AUTHORIZER, query=q, body=auth) == 42001


async def test_emulator_commit_rules(raw: Raw) -> None:
    ext = json.dumps({"extAppid": raw.authorizer_body()["authorizer_appid"]})

    def commit(**changes: Any) -> dict[str, Any]:
        body = {"template_id": 1, "ext_json": ext, "user_version": "1.0.0", "user_desc": "d"}
        return {**body, **changes}

    for body, expected in [
        (commit(template_id=99), 85014),
        (commit(ext_json="{not json"), 85048),
        (commit(ext_json=json.dumps([1, 2])), 85048),
        (commit(ext_json=json.dumps({"pages": ["pages/nope/nope"]})), 85013),
        (commit(ext_json=json.dumps({"extAppid": "wx9999999999999999"})), 85013),
        (commit(user_version="9" * 65), 40097),
        ({"template_id": 1}, 47001),
        (commit(template_id="1"), 0),  # ids as strings are accepted too
    ]:
        assert (await raw.wxa("POST", "/wxa/commit", body))["errcode"] == expected
    pages = await raw.wxa("GET", "/wxa/get_page")
    assert pages["page_list"] == ["pages/index/index", "pages/list/list", "pages/detail/detail"]
    categories = (await raw.wxa("GET", "/wxa/get_category"))["category_list"]
    assert categories and {"first_id", "second_id", "first_class"} <= set(categories[0])


async def test_emulator_submit_and_release_rules(raw: Raw) -> None:
    assert (await raw.wxa("POST", "/wxa/submit_audit", {}))["errcode"] == 85086
    assert (await raw.wxa("POST", "/wxa/release", {}))["errcode"] == 85019
    assert (await raw.wxa("GET", "/wxa/get_latest_auditstatus"))["errcode"] == 85058
    assert (await raw.wxa("GET", "/wxa/undocodeaudit"))["errcode"] == 85019
    body = {"template_id": 1, "ext_json": "{}", "user_version": "1.0.0", "user_desc": "#reject"}
    await raw.wxa("POST", "/wxa/commit", body)
    category = (await raw.wxa("GET", "/wxa/get_category"))["category_list"][0]
    item = {**category, "address": "pages/index/index", "tag": "shop", "title": "Home"}
    for items, expected in [
        ([item] * 6, 85023),
        ([], 85023),
        ([{k: v for k, v in item.items() if k != "first_id"}], 85010),
        ([{**item, "second_id": 1}], 85008),
        ([{**item, "address": "pages/nope"}], 85007),
    ]:
        got = await raw.wxa("POST", "/wxa/submit_audit", {"item_list": items})
        assert got["errcode"] == expected
    sub = await raw.wxa("POST", "/wxa/submit_audit", {"item_list": [item], "version_desc": "v"})
    auditid = sub["auditid"]
    assert (await raw.wxa("POST", "/wxa/submit_audit", {}))["errcode"] == 85009
    assert (await raw.wxa("POST", "/wxa/release", {}))["errcode"] == 85020
    status = await raw.wxa("POST", "/wxa/get_auditstatus", {"auditid": str(auditid)})
    assert status == {"errcode": 0, "errmsg": "ok", "status": 2}
    assert (await raw.wxa("POST", "/wxa/get_auditstatus", {"auditid": 1}))["errcode"] == 85012
    assert (await raw.wxa("POST", "/wxa/get_auditstatus", {}))["errcode"] == 47001

    raw.world.decide_reviews()
    status = await raw.wxa("POST", "/wxa/get_auditstatus", {"auditid": auditid})
    assert status["status"] == 1 and status["reason"] and "|" in status["screenshot"]
    latest = await raw.wxa("GET", "/wxa/get_latest_auditstatus")
    assert latest["auditid"] == auditid and latest["ScreenShot"] == status["screenshot"]
    assert latest["user_version"] == "1.0.0" and isinstance(latest["submit_audit_time"], int)
    assert (await raw.wxa("GET", "/wxa/undocodeaudit"))["errcode"] == 87012
    quota = await raw.wxa("GET", "/wxa/queryquota")
    assert (quota["rest"], quota["limit"]) == (19, 20)


async def test_inject_endpoint_over_http(raw: Raw) -> None:
    base = raw.base
    ok = await raw.client.post(
        f"{base}/_emulator/inject", json={"api": "/wxa/getversioninfo", "fault": "busy"}
    )
    assert ok.json() == {"ok": True}
    busy = await raw.wxa("POST", "/wxa/getversioninfo", {})
    assert busy["errcode"] == -1 and busy["errmsg"].startswith("system error rid: ")
    assert (await raw.wxa("POST", "/wxa/getversioninfo", {}))["errcode"] == 0
    bad = await raw.client.post(f"{base}/_emulator/inject", json={"api": "*", "fault": "melt"})
    assert bad.status_code == 400
    await raw.client.post(f"{base}/_emulator/inject", json={"api": "*", "fault": "unavailable"})
    down = await raw.call("POST", "/wxa/getversioninfo", body={})
    assert down.status_code == 503 and "html" in down.headers["content-type"]


async def test_snapshot_restore_round_trip(world: World, tmp_path: Path) -> None:
    a, app = wx(world), world.app
    ref = await approved(world, "1.0.0", "n")
    await a.publish(app, "1.0.0", ref)
    await a.upload(app, "1.1.0", "n")
    await a.submit(app, "1.1.0", "n")
    state = json.loads(json.dumps(emu(world).snapshot()))  # JSON-able
    copy = WeChatEmulator(clock=world.clock)
    copy.restore(state)
    assert copy.snapshot() == state
    p = copy.programs[a.apps[app].appid]
    assert p.release is not None and p.release.version == "1.0.0"
    assert [x.user_version for x in p.audits] == ["1.0.0", "1.1.0"]

    path = tmp_path / "wechat.json"
    first = WeChatEmulator(clock=world.clock, state_path=path)
    given = first.provision("http://127.0.0.1:1/wechat", {"shop": first.example_app()})
    again = WeChatEmulator(clock=world.clock, state_path=path)
    assert again.snapshot() == first.snapshot()
    second = again.provision("http://127.0.0.1:1/wechat", {"shop": given.apps["shop"]})
    assert second.env == given.env and "MINISHIP_SHOP_WECHAT_REFRESH_TOKEN" in second.env
    assert set(given.env) >= {"WECHAT_API_BASE", "WECHAT_COMPONENT_VERIFY_TICKET"}
    assert path.stat().st_mode & 0o777 == 0o600


async def test_provisioned_settings_from_env(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    given = emu(world).provision(world.server.base_url("wechat"), {"shop": wx(world).apps["shop"]})
    for key, value in given.env.items():
        monkeypatch.setenv(key, value)
    settings = WeChatPlatform.Settings()
    assert WeChatPlatform.is_configured(settings)
    assert settings.api_base == world.server.base_url("wechat")
    cfg = WeChatPlatform.AppConfig.model_validate(
        {
            "appid": wx(world).apps["shop"].appid,
            "template_id": 1,
            "refresh_token": "env:MINISHIP_SHOP_WECHAT_REFRESH_TOKEN",
        }
    )
    adapter = WeChatPlatform(settings, {"shop": cfg}, client=wx(world).client, clock=world.clock)
    assert (await adapter.upload("shop", "3.0.0", "from env")).version == "3.0.0"


# --------------------------------------------------------------------------- configuration


def test_app_config_validation() -> None:
    good = {"appid": "wx3a5f9c2e1b7d4f60", "original_id": "gh_3a5f9c2e1b7d", "template_id": 1}
    cfg = WeChatPlatform.AppConfig.model_validate(good)
    assert cfg.ext_json == {} and cfg.item_list is None and cfg.refresh_token is None
    assert WeChatPlatform.describe_app(cfg) == (
        "AppID wx3a5f9c2e1b7d4f60 (gh_3a5f9c2e1b7d), template 1"
    )
    for bad in [
        {**good, "appid": "3a5f9c2e1b7d4f60"},
        {**good, "original_id": "3a5f"},
        {**good, "templateid": 1},  # typo: extra keys are refused
        {**good, "template_id": -1},
        {**good, "refresh_token": "literal-secret"},
        {**good, "ext_json": {"extAppid": "wx0000000000000000"}},
        {**good, "item_list": [{}] * 6},
    ]:
        with pytest.raises(ValidationError):
            WeChatPlatform.AppConfig.model_validate(bad)


def test_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("APPID", "SECRET", "VERIFY_TICKET"):
        monkeypatch.delenv(f"WECHAT_COMPONENT_{key}", raising=False)
    assert not WeChatPlatform.is_configured(WeChatPlatform.Settings())
    monkeypatch.setenv("WECHAT_COMPONENT_APPID", "wx134c8103faa5a59e")
    monkeypatch.setenv("WECHAT_COMPONENT_SECRET", "s")
    assert not WeChatPlatform.is_configured(WeChatPlatform.Settings())
    monkeypatch.setenv("WECHAT_COMPONENT_VERIFY_TICKET", "ticket@@@x")
    monkeypatch.setenv("WECHAT_API_BASE", "http://127.0.0.1:9/wechat/")
    settings = WeChatPlatform.Settings()
    assert WeChatPlatform.is_configured(settings)
    assert settings.api_base == "http://127.0.0.1:9/wechat" and settings.max_retries == 2
    monkeypatch.setenv("WECHAT_API_BASE", "api.weixin.qq.com")
    with pytest.raises(ValidationError, match="http"):
        WeChatPlatform.Settings()
    with pytest.raises(ConfigError):
        WeChatPlatform(object(), {})


# --------------------------------------------------------------------------- error mapping


@pytest.mark.parametrize(
    ("errcode", "kind"),
    [
        (-1, PlatformUnavailable),
        (40001, AuthError),
        (40014, AuthError),
        (42001, AuthError),
        (42007, AuthError),
        (61003, AuthError),
        (61004, AuthError),
        (61005, AuthError),
        (61006, AuthError),
        (61007, AuthError),
        (61023, AuthError),
        (45009, QuotaExceeded),
        (45011, QuotaExceeded),
        (85085, QuotaExceeded),
        (87013, QuotaExceeded),
        (85009, AlreadyInReview),
        (61039, InvalidState),
        (85019, InvalidState),
        (85020, InvalidState),
        (85052, InvalidState),
        (87012, InvalidState),
        (85012, NotFound),
        (85014, NotFound),
        (85058, NotFound),
        (85086, NotFound),
        (86001, NotFound),
        (40097, InvalidInput),
        (44002, InvalidInput),
        (47001, InvalidInput),
        (61040, InvalidInput),
        (85006, InvalidInput),
        (85010, InvalidInput),
        (85013, InvalidInput),
        (85023, InvalidInput),
        (85048, InvalidInput),
    ],
)
def test_error_mapping(errcode: int, kind: type[PlatformError]) -> None:
    message = f"something rid: 6613f2a1-1c2b3d4e-{errcode & 0xFFFFFFFF:08x}"
    error = error_for(errcode, message)
    assert type(error) is kind
    assert error.platform == "wechat" and error.code == str(errcode)
    assert error.platform_message == message and error.explanation != message
    assert str(errcode) in error.describe()


def test_error_mapping_details() -> None:
    assert "whitelist" in error_for(61004, "x").explanation
    assert "authorize" in error_for(61003, "x").explanation
    minute = error_for(45011, "x")
    assert isinstance(minute, QuotaExceeded) and minute.retry_after == 60.0
    unknown = error_for(12345, "strange thing")
    assert type(unknown) is PlatformError and "strange thing" in unknown.explanation


# --------------------------------------------------------------------------- tolerance


APPID = "wxba5fad812f8e6fb9"


@asynccontextmanager
async def mocked(
    handler: Callable[[httpx.Request], httpx.Response],
) -> AsyncIterator[WeChatPlatform]:
    """An adapter whose HTTP goes to ``handler`` instead of a server."""
    settings = WeChatPlatform.Settings(
        api_base="https://api.weixin.qq.com",
        component_appid="wx134c8103faa5a59e",
        component_secret=SecretStr("secret"),
        component_verify_ticket=SecretStr("ticket@@@t"),
        max_retries=0,
    )
    cfg = WeChatPlatform.AppConfig(appid=APPID, template_id=1, refresh_token=SecretStr("r1"))
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        yield WeChatPlatform(settings, {"shop": cfg}, client=client, clock=FakeClock())


def tokens_then(
    answers: dict[str, Any], seen: list[httpx.Request] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    """A handler: token endpoints answer (errcode absent, ids as strings), then ``answers``."""
    issued = iter(range(1, 100))

    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        path = request.url.path
        if path == COMPONENT:
            return httpx.Response(200, json={"component_access_token": "C", "expires_in": "7200"})
        if path == AUTHORIZER:
            n = next(issued)
            return httpx.Response(
                200,
                json={
                    "authorizer_access_token": f"A{n}",
                    "expires_in": 7200,
                    "authorizer_refresh_token": f"r{n + 1}",
                },
            )
        answer = answers[path]
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    return handle


async def test_tolerates_answer_variants() -> None:
    seen: list[httpx.Request] = []
    answers = {
        "/wxa/getversioninfo": {
            "errcode": "0",
            "errmsg": "ok",
            "exp_info": {"exp_version": 153},
            "release_info": {},
        },
        "/wxa/get_latest_auditstatus": {
            "errcode": 0,
            "auditid": "426115513",
            "status": "1",
            "reason": "帐号信息不合规范",
            "screenshot": "xx|yy",
        },
        "/wxa/queryquota": {"errcode": 0, "rest": 8, "limit": 27},
    }
    async with mocked(tokens_then(answers, seen)) as a:
        overview = await a.overview("shop")
        assert overview.trial_version == "153" and overview.live_version is None
        review = overview.review
        assert review is not None and review.state is ReviewState.REJECTED
        assert review.ref == "426115513" and review.version is None
        assert review.reason == "帐号信息不合规范" and "xx|yy" in review.detail
        assert "8 of 27" in overview.lines[-1]
        # the newest refresh token is kept; tokens went in the query, JSON compact and UTF-8
        assert a.authorizer_refresh_token("shop") == SecretStr("r2")
    auth = next(r for r in seen if r.url.path == AUTHORIZER)
    assert auth.url.params["component_access_token"] == "C"
    assert json.loads(auth.content)["authorizer_refresh_token"] == "r1"
    info = next(r for r in seen if r.url.path == "/wxa/getversioninfo")
    assert info.content == b"{}" and info.headers["content-type"] == "application/json"
    assert info.url.params["access_token"] == "A1"


async def test_refresh_token_rotation_is_used_on_the_next_renewal() -> None:
    seen: list[httpx.Request] = []
    answers = {
        "/wxa/getversioninfo": {"errcode": 0, "errmsg": "ok"},
        "/wxa/get_latest_auditstatus": {"errcode": 85058, "errmsg": "no valid audit_id exist"},
        "/wxa/queryquota": {"errcode": 0, "rest": 1, "limit": 1},
    }
    async with mocked(tokens_then(answers, seen)) as a:
        assert (await a.overview("shop")).review is None
        assert isinstance(a.clock, FakeClock)
        a.clock.advance(7000)
        await a.overview("shop")
    sent = [
        json.loads(r.content)["authorizer_refresh_token"] for r in seen if r.url.path == AUTHORIZER
    ]
    assert sent == ["r1", "r2"]


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (httpx.Response(200, text="<html>oops</html>"), PlatformUnavailable),
        (httpx.Response(502, json={"errcode": -1}), PlatformUnavailable),
        (httpx.Response(200, json=[1, 2]), BadResponse),
        (httpx.Response(200, json={"errcode": "x"}), BadResponse),
        (httpx.Response(404, json={"message": "no route"}), BadResponse),
        (httpx.Response(200, json={"errcode": 0, "errmsg": "ok"}), BadResponse),  # no auditid
    ],
)
async def test_malformed_answers(answer: httpx.Response, kind: type[PlatformError]) -> None:
    answers = {
        "/wxa/getversioninfo": {"errcode": 0, "exp_info": {"exp_version": "1.0.0"}},
        "/wxa/submit_audit": answer,
        "/wxa/get_latest_auditstatus": {"errcode": 85058, "errmsg": "no valid audit_id exist"},
    }
    async with mocked(tokens_then(answers)) as a:
        with pytest.raises(kind):
            await a.submit("shop", "1.0.0", "n")


async def test_transport_errors_do_not_leak() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused " + str(request.url), request=request)

    async with mocked(refuse) as a:
        with pytest.raises(PlatformUnavailable) as err:
            await a.overview("shop")
    assert err.value.code == "" and "ConnectError" in err.value.explanation
    assert "ticket" not in str(err.value) and err.value.__cause__ is None


async def test_expired_component_token_42006_is_renewed() -> None:
    seen: list[httpx.Request] = []
    issued = iter(["C1", "C2"])

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path == COMPONENT:
            return httpx.Response(200, json={"component_access_token": next(issued)})
        if path == AUTHORIZER:
            if request.url.params["component_access_token"] == "C1":
                return httpx.Response(
                    200, json={"errcode": 42006, "errmsg": "component_access_token expired"}
                )
            return httpx.Response(200, json={"authorizer_access_token": "A", "expires_in": 7200})
        return httpx.Response(200, json={"errcode": 0, "exp_info": {"exp_version": "1.0.0"}})

    async with mocked(handle) as a:
        assert await a._authorizer_token("shop") == "A"
    assert [r.url.path for r in seen] == [COMPONENT, AUTHORIZER, COMPONENT, AUTHORIZER]


async def test_secrets_echoed_in_errmsg_are_masked() -> None:
    answers = {
        "/wxa/getversioninfo": {
            "errcode": 40097,
            "errmsg": "invalid args access_token=A1&x=1, secret=s3cr3t rid: 1-2-3",
        }
    }
    async with mocked(tokens_then(answers)) as a:
        with recording() as log, pytest.raises(InvalidInput) as err:
            await a.overview("shop")
    text = str(err.value) + err.value.platform_message + json.dumps(log[-1].answer)
    assert "A1" not in text and "s3cr3t" not in text
    assert "access_token=***" in err.value.platform_message


async def test_invalid_url_is_a_config_error() -> None:
    for base in ("http://[::1/wechat", "http://127.0.0.1:99999/wechat"):
        with pytest.raises(ValidationError, match="WECHAT_API_BASE"):
            WeChatPlatform.Settings(api_base=base)

    def invalid(request: httpx.Request) -> httpx.Response:
        raise httpx.InvalidURL("Invalid URL " + str(request.url))

    async with mocked(invalid) as a:
        with recording() as log, pytest.raises(ConfigError, match="WECHAT_API_BASE") as err:
            await a.overview("shop")
    assert log[0].error == "InvalidURL" and "ticket" not in str(err.value)


def path_is(path: str) -> Callable[[httpx.Request], bool]:
    return lambda request: request.url.path.endswith(path)


def sibling(world: World, transport: httpx.AsyncBaseTransport) -> WeChatPlatform:
    """Another adapter on the same emulator and credentials, through ``transport``."""
    a = wx(world)
    client = httpx.AsyncClient(transport=transport, timeout=1.0)
    return WeChatPlatform(a.settings, a.apps, client=client, clock=world.clock)


async def test_unusable_answers_to_changes_are_checked(world: World) -> None:
    app = world.app

    def garbled(body: bytes) -> bytes:
        return b'{"errcode": "zero"}'

    def no_auditid(body: bytes) -> bytes:
        return b'{"errcode": 0, "errmsg": "ok"}'

    opened: list[WeChatPlatform] = []

    def through(path: str, change: Callable[[bytes], bytes]) -> WeChatPlatform:
        opened.append(sibling(world, Tamper(response=change, only=path_is(path))))
        return opened[-1]

    assert "confirmed" in (await through("/wxa/commit", garbled).upload(app, "1.0.0", "n")).detail
    sub = await through("/wxa/submit_audit", no_auditid).submit(app, "1.0.0", "n")
    assert "confirmed" in sub.detail  # the auditid comes from get_latest_auditstatus
    assert sub.ref == str(program(world).audits[-1].auditid)
    assert "confirmed" in await through("/wxa/undocodeaudit", garbled).withdraw(
        app, "1.0.0", sub.ref
    )
    ref = (await wx(world).submit(app, "1.0.0", "n")).ref
    world.decide_reviews()
    with recording() as log:
        assert "confirmed" in await through("/wxa/release", garbled).publish(app, "1.0.0", ref)
    for adapter in opened:
        await adapter.client.aclose()
    assert program(world).release is not None and program(world).release.version == "1.0.0"
    assert [x.api for x in log].count("POST /wxa/release") == 1
    assert emu(world).calls["/wxa/release"] == 1
