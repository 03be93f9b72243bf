"""WeChat adapter and emulator: the rules, error codes and token handling beyond the contract.

Most tests run the adapter against its emulator over real HTTP on loopback with a fake
clock; a few talk to the emulator directly (raw requests) or give the adapter a mock
transport to check how it tolerates the fact sheet's uncertain answer shapes.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr, ValidationError

from platforms import cli
from platforms.base import (
    REVIEW_IMAGES_MAX,
    Authorization,
    GrayPlan,
    Quota,
    ReviewImage,
    ReviewState,
    recording,
)
from platforms.emulators.wechat import WeChatEmulator
from platforms.emulators.wechat.commit import trial_qr
from platforms.errors import (
    AlreadyInReview,
    AuthError,
    BadResponse,
    ConfigError,
    InvalidInput,
    InvalidState,
    NotFound,
    OutcomeUnknown,
    PlatformError,
    PlatformUnavailable,
    QuotaExceeded,
    Unsupported,
)
from platforms.push import PushRequest
from platforms.transport import Sender
from platforms.wechat import WeChatPlatform, error_for
from platforms.wechat.reading import media_ids
from tests.helpers import FakeClock, FakeSleep, World, open_world
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
    assert apis[:4] == [
        f"POST {COMPONENT}",
        f"POST {AUTHORIZER}",
        "POST /wxa/getversioninfo",  # what the trial version was before the commit
        "POST /wxa/commit",
    ]
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
    other = WeChatPlatform(a.settings, {app: cfg}, sender=a.sender, clock=world.clock)
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
    a.settings = a.settings.model_copy(
        update={"privacy_scan_retries": 3, "privacy_scan_wait_seconds": 5.0}
    )
    a.sleep = sleeper = FakeSleep(world.clock)  # the emulator's clock moves with each wait
    e.privacy_scan_seconds = 12
    await a.upload(app, "1.0.0", "n")
    ref = (await a.submit(app, "1.0.0", "n")).ref
    assert sleeper.delays == [5.0, 5.0, 5.0]  # 0, 5, 10: scanning; 15: done
    assert e.calls["/wxa/submit_audit"] == 4
    await a.withdraw(app, "1.0.0", ref)

    e.privacy_scan_seconds = 1000
    e.quota_limit = 1  # 61039 comes first: nothing is counted while the scan runs
    await a.upload(app, "1.0.0", "n")
    with pytest.raises(InvalidState) as err:
        await a.submit(app, "1.0.0", "n")
    assert err.value.code == "61039" and "after 15 s" in err.value.explanation
    assert RID.search(err.value.platform_message)  # WeChat's own words are kept
    assert "do not upload again" in err.value.explanation
    assert sleeper.delays == [5.0] * 6 and e.calls["/wxa/submit_audit"] == 8


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
    other = WeChatPlatform(a.settings, {app: cfg}, sender=a.sender, clock=world.clock)
    with pytest.raises(ConfigError, match="refresh_token") as err:
        await other.upload(app, "1.0.0", "n")
    assert isinstance(err.value, AuthError) and "`connect shop wechat`" in str(err.value)
    assert emu(world).calls[AUTHORIZER] == 0
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
    e = emu(world)
    e.inject("/wxa/commit", "busy")

    def after_the_commit(request: httpx.Request) -> bool:  # the check, not the read before
        return path_is("/wxa/getversioninfo")(request) and e.calls["/wxa/commit"] > 0

    a = sibling(world, Tamper(response=lambda body: b"<html>down</html>", only=after_the_commit))
    a.sleep = wx(world).sleep
    with pytest.raises(PlatformUnavailable, match="could not check"):
        await a.upload(world.app, "1.0.0", "n")
    await a.sender.aclose()
    assert e.calls["/wxa/commit"] == 1


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
    # an expired component_access_token answers 42001 too (fact sheet §1.1, §3.6, §11)
    assert await code("POST", AUTHORIZER, query=q, body=auth) == 42001
    via_access_token = {"access_token": ctok}
    assert await code("POST", AUTHORIZER, query=via_access_token, body=auth) == 42001
    assert await code("GET", "/wxa/gettemplatelist", query=via_access_token) == 42001
    emu(raw.world).expired_component_errcode = 42006  # WxJava's enum only: a knob for tests
    assert await code("POST", AUTHORIZER, query=q, body=auth) == 42006


async def test_emulator_commit_rules(raw: Raw) -> None:
    ext = json.dumps({"extAppid": raw.authorizer_body()["authorizer_appid"]})

    def commit(**changes: Any) -> dict[str, Any]:
        body = {"template_id": 1, "ext_json": ext, "user_version": "1.0.0", "user_desc": "d"}
        return {**body, **changes}

    for body, expected in [
        (commit(template_id=99), 85014),
        (commit(ext_json="{not json"), 85048),
        (commit(ext_json=json.dumps([1, 2])), 85048),
        # a page the template lacks: 85045 "some path in ext_json not exist" (§4.1)
        (commit(ext_json=json.dumps({"pages": ["pages/nope/nope"]})), 85045),
        (commit(ext_json=json.dumps({"extPages": {"pages/nope/nope": {}}})), 85045),
        (
            commit(ext_json=json.dumps({"tabBar": {"list": [{"pagePath": "pages/nope/nope"}]}})),
            85045,
        ),
        (commit(ext_json=json.dumps({"tabBar": {"list": [{"text": "Home"}]}})), 85046),
        (commit(ext_json=json.dumps({"pages": []})), 85047),
        # invalid ext_json: 85013 "invalid ext_json, parse fail or containing invalid path"
        (commit(ext_json=json.dumps({"extAppid": "wx9999999999999999"})), 85013),
        (commit(ext_json=json.dumps({"pages": "pages/index/index"})), 85013),
        (commit(ext_json=json.dumps({"pages": [1]})), 85013),
        (
            commit(
                ext_json=json.dumps(
                    {
                        "pages": ["pages/index/index", "pages/list/list"],
                        "extPages": {"pages/list/list": {"navigationBarTitleText": "List"}},
                        "tabBar": {"list": [{"pagePath": "pages/index/index", "text": "Home"}]},
                    }
                )
            ),
            0,
        ),
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
    await approved(world, "1.1.0", "n")
    await a.gray(app, "1.1.0", 20)
    await a.add_template(next(t.id for t in await a.templates() if t.draft))
    await a.upload(app, "1.2.0", "n")
    await a.connect_link(app, "https://miniship.example.com/connect/wechat")
    state = json.loads(json.dumps(emu(world).snapshot()))  # JSON-able
    copy = WeChatEmulator(clock=world.clock)
    copy.restore(state)
    assert copy.snapshot() == state
    p = copy.programs[a.apps[app].appid]
    assert p.release is not None and p.release.version == "1.0.0"
    assert [x.user_version for x in p.audits] == ["1.0.0", "1.1.0"]
    assert p.gray is not None and p.gray.percentage == 20 and len(p.history) == 1
    assert len(copy.templates) == 3 and len(copy.drafts) == 2 and copy.preauth_codes
    assert copy.next_template_id == emu(world).next_template_id == 3

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
    adapter = WeChatPlatform(settings, {"shop": cfg}, sender=wx(world).sender, clock=world.clock)
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
    assert not WeChatPlatform.is_configured(WeChatPlatform.Settings())
    monkeypatch.setenv("WECHAT_COMPONENT_SECRET", "s")
    # the verify ticket may come by push (and from the vault after a restart)
    assert WeChatPlatform.is_configured(WeChatPlatform.Settings())
    monkeypatch.setenv("WECHAT_API_BASE", "http://127.0.0.1:9/wechat/")
    monkeypatch.setenv("WECHAT_PRIVACY_SCAN_RETRIES", "2")
    settings = WeChatPlatform.Settings()
    assert WeChatPlatform.is_configured(settings)
    assert settings.api_base == "http://127.0.0.1:9/wechat" and settings.max_retries == 2
    assert settings.authorize_page_base == "https://mp.weixin.qq.com"
    assert settings.privacy_scan_retries == 2 and settings.privacy_scan_wait_seconds == 10.0
    assert settings.miniprogram_ci_robot == 1
    monkeypatch.setenv("WECHAT_MINIPROGRAM_CI_ROBOT", "31")
    with pytest.raises(ValidationError, match="miniprogram_ci_robot"):
        WeChatPlatform.Settings()
    monkeypatch.delenv("WECHAT_MINIPROGRAM_CI_ROBOT")
    monkeypatch.setenv("WECHAT_AUTHORIZE_PAGE_BASE", "mp.weixin.qq.com")
    with pytest.raises(ValidationError, match="WECHAT_AUTHORIZE_PAGE_BASE"):
        WeChatPlatform.Settings()
    monkeypatch.delenv("WECHAT_AUTHORIZE_PAGE_BASE")
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
    sender = Sender(httpx.MockTransport(handler))
    yield WeChatPlatform(settings, {"shop": cfg}, sender=sender, clock=FakeClock())
    await sender.aclose()


def tokens_then(
    answers: dict[str, Any], seen: list[httpx.Request] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    """A handler: token endpoints answer (errcode absent, ids as strings), then ``answers``
    (a JSON object, a response, or a function of the request giving either)."""
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
        if callable(answer):
            answer = answer(request)
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
        "/wxa/getgrayreleaseplan": {
            "errcode": 0,
            "gray_release_plan": {"status": "2", "gray_percentage": "8", "create_timestamp": 1},
        },
    }
    async with mocked(tokens_then(answers, seen)) as a:
        overview = await a.overview("shop")
        assert overview.gray is not None and (overview.gray.percent, overview.gray.state) == (
            8,
            "paused",
        )
        assert overview.gray.since is not None and overview.gray.since.tzinfo is not None
        assert overview.trial_version == "153" and overview.live_version is None
        review = overview.review
        assert review is not None and review.state is ReviewState.REJECTED
        assert review.ref == "426115513" and review.version is None
        assert review.reason == "帐号信息不合规范" and "xx|yy" in review.detail
        assert "8 of 27" in overview.lines[-1]
    # tokens went in the query, JSON compact and UTF-8
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
        "/wxa/getgrayreleaseplan": {"errcode": 0, "gray_release_plan": {"status": 4}},
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
        "/wxa/get_page": {"errcode": 0, "page_list": ["index"]},
        "/wxa/get_category": {"errcode": 0, "category_list": []},
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


@pytest.mark.parametrize(
    ("errcode", "errmsg"),
    [
        (42001, "access_token expired rid: 6613f2a1-1c2b3d4e-5f6a7b8c"),  # the sheet's
        (42006, "component_access_token expired"),  # WxJava's enum
        (40001, "invalid credential, access_token is invalid or not latest"),
        (40014, "invalid access_token"),
    ],
)
async def test_expired_component_token_is_renewed(errcode: int, errmsg: str) -> None:
    seen: list[httpx.Request] = []
    issued = iter(["C1", "C2"])

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path == COMPONENT:
            return httpx.Response(200, json={"component_access_token": next(issued)})
        if path == AUTHORIZER:
            if request.url.params["component_access_token"] == "C1":
                return httpx.Response(200, json={"errcode": errcode, "errmsg": errmsg})
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
    return WeChatPlatform(
        a.settings, a.apps, sender=Sender(transport, timeout=1.0), clock=world.clock
    )


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
        await adapter.sender.aclose()
    assert program(world).release is not None and program(world).release.version == "1.0.0"
    assert [x.api for x in log].count("POST /wxa/release") == 1
    assert emu(world).calls["/wxa/release"] == 1


# =========================================================================== the life cycle


async def released(world: World, version: str) -> str:
    ref = await approved(world, version)
    await wx(world).publish(world.app, version, ref)
    return ref


def history_calls(world: World) -> int:
    """Rollbacks sent (get_history_version is counted apart)."""
    return emu(world).calls["/wxa/revertcoderelease"]


# --------------------------------------------------------------------------- templates


async def test_templates_and_drafts(world: World) -> None:
    a, e = wx(world), emu(world)
    with recording() as log:
        listed = await a.templates()
    library = [t for t in listed if not t.draft]
    drafts = [t for t in listed if t.draft]
    assert [(t.id, t.version) for t in library] == [("0", "0.9.0"), ("1", "1.0.0")]
    assert not [c for c in wx(world).apps.values() if c.template_id == 0]  # one no app uses
    assert sorted(t.id for t in drafts) == sorted(str(d) for d in e.drafts) and len(drafts) == 2
    times = [t.created_at for t in drafts]
    assert all(at is not None and at.tzinfo is not None for at in times)
    assert times == sorted(times, reverse=True)  # type: ignore[type-var]  # newest first
    assert all(t.source and t.developer == "emulator" for t in drafts)
    # the component token travels as access_token on the template APIs (fact sheet §3.7)
    listing = [x for x in log if "template" in x.api]
    assert [x.api for x in listing] == ["GET /wxa/gettemplatelist", "GET /wxa/gettemplatedraftlist"]
    assert all(set(x.request) == {"access_token"} for x in listing)

    draft = drafts[0]
    said = await a.add_template(draft.id)
    made = next(t for t in e.templates.values() if t.draft_id == int(draft.id))
    assert said == f"draft {draft.id} is now template {made.template_id}"
    await a.upload(world.app, "2.0.0", "from the new template", template=str(made.template_id))
    assert program(world).commit.template_id == made.template_id
    assert "deleted" in await a.delete_template(str(made.template_id))
    assert made.template_id not in e.templates
    # WeChat's ids only grow: the deleted one is never handed out again (E1)
    said = await a.add_template(draft.id)
    assert said == f"draft {draft.id} is now template {made.template_id + 1}"


async def test_template_refusals(world: World) -> None:
    a, e = wx(world), emu(world)
    with pytest.raises(NotFound) as err:
        await a.add_template("424242")
    assert err.value.code == "85064"
    with pytest.raises(NotFound) as err:
        await a.delete_template("424242")
    assert err.value.code == "85064" and "`templates`" in err.value.explanation
    for bad in ("abc", "1.5", "", "-3"):
        with pytest.raises(InvalidInput, match="not a WeChat"):
            await a.add_template(bad)
        with pytest.raises(InvalidInput, match="not a WeChat"):
            await a.delete_template(bad)
    e.template_limit = len(e.templates)
    with pytest.raises(InvalidState) as full:
        await a.add_template(str(next(iter(e.drafts))))
    assert full.value.code == "85065" and "templates delete" in full.value.explanation
    assert e.calls["/wxa/addtotemplate"] == 2 and e.calls["/wxa/deletetemplate"] == 1


async def test_lost_template_answers_are_checked(world: World) -> None:
    a, e = wx(world), emu(world)
    draft = str(next(iter(e.drafts)))
    e.inject("/wxa/addtotemplate", "timeout")
    said = await a.add_template(draft)
    assert said.startswith(f"draft {draft} is now template ") and e.calls["/wxa/addtotemplate"] == 1
    e.inject("/wxa/deletetemplate", "malformed")
    assert "confirmed" in await a.delete_template("0")
    assert 0 not in e.templates and e.calls["/wxa/deletetemplate"] == 1
    e.inject("/wxa/deletetemplate", "busy")
    made = max(e.templates)
    with pytest.raises(PlatformUnavailable, match="did not happen"):
        await a.delete_template(str(made))
    assert made in e.templates


# --------------------------------------------------------------------------- upload


async def test_upload_template_choice_and_version(world: World) -> None:
    a, app, e = wx(world), world.app, emu(world)
    with pytest.raises(InvalidInput, match="not a WeChat template id"):
        await a.upload(app, "1.0.0", "n", template="v2")
    with pytest.raises(NotFound) as err:
        await a.upload(app, "1.0.0", "n", template="77")
    assert err.value.code == "85014"
    with pytest.raises(InvalidInput, match="1 to 64 characters"):
        await a.upload(app, "9" * 65, "n")
    assert e.calls["/wxa/commit"] == 1  # only the unknown template reached WeChat
    cfg = a.apps[app].model_copy(update={"template_id": None})
    other = WeChatPlatform(a.settings, {app: cfg}, sender=a.sender, clock=world.clock)
    with pytest.raises(ConfigError, match="no template_id"):
        await other.upload(app, "1.0.0", "n")
    assert "template given per upload" in WeChatPlatform.describe_app(cfg)
    assert (await other.upload(app, "1.0.0", "n", template="1")).version == "1.0.0"


@pytest.mark.parametrize(
    ("ext", "words"),
    [
        ({"extAppid": "wx0000000000000000"}, "extAppid must be the app's appid"),
        ({"pages": []}, "pages must not be empty"),
        ({"pagess": ["pages/index/index"]}, "unknown key"),
        ({"ext": "shop"}, "ext must be a table"),
        ({"extPages": {"index": 1}}, "extPages entries must be tables"),
        ({"tabBar": {"list": [{"text": "Home"}]}}, "item 1 has no pagePath"),
        (
            {"pages": ["pages/index/index"], "tabBar": {"list": [{"pagePath": "pages/x/x"}]}},
            "pages/x/x is not one of pages",
        ),
        ({"requiredPrivateInfos": "getLocation"}, "requiredPrivateInfos must be a list"),
        ({"subPackages": [{"pages": ["a"]}]}, "with a root"),
    ],
)
async def test_ext_json_is_checked_before_sending(
    world: World, ext: dict[str, Any], words: str
) -> None:
    a, app = wx(world), world.app
    section = {**a.apps[app].model_dump(), "ext_json": ext}
    with pytest.raises(ConfigError, match=words):  # when miniship.toml is read
        WeChatPlatform(a.settings, {app: section})
    changed = a.apps[app].model_copy(update={"ext_json": ext})  # skips validation
    other = WeChatPlatform(a.settings, {app: changed}, sender=a.sender, clock=world.clock)
    with pytest.raises(ConfigError, match=rf"\[apps\.shop\.wechat\] ext_json: .*{words}"):
        await other.upload(app, "1.0.0", "n")
    assert emu(world).calls["/wxa/commit"] == 0


async def test_a_full_ext_json_is_sent_as_a_string(world: World) -> None:
    a, app = wx(world), world.app
    ext = {
        "extEnable": True,
        "ext": {"shop": "演示"},
        "pages": ["pages/index/index", "pages/list/list"],
        "window": {"navigationBarTitleText": "Shop"},
        "tabBar": {"list": [{"pagePath": "pages/index/index", "text": "Home"}]},
        "requiredPrivateInfos": ["getLocation"],
        "navigateToMiniProgramAppIdList": ["wx1111111111111111"],
    }
    cfg = a.apps[app].model_copy(update={"ext_json": ext})
    other = WeChatPlatform(a.settings, {app: cfg}, sender=a.sender, clock=world.clock)
    with recording() as log:
        await other.upload(app, "1.0.0", "n")
    sent = next(x for x in log if x.api == "POST /wxa/commit").request["ext_json"]
    assert isinstance(sent, str) and "演示" in sent  # UTF-8, not \\u escapes
    assert json.loads(sent) == {**ext, "extAppid": cfg.appid}
    assert program(world).commit.ext_json == {**ext, "extAppid": cfg.appid}


async def test_a_page_the_template_lacks_is_explained(world: World) -> None:
    """WeChat answers 85045 ("some path in ext_json not exist") for an ext_json that names a
    page the template does not have; the explanation says what to do."""
    a, app = wx(world), world.app
    ext = {"pages": ["pages/index/index", "pages/promo/promo"]}  # passes the local checks
    cfg = a.apps[app].model_copy(update={"ext_json": ext})
    other = WeChatPlatform(a.settings, {app: cfg}, sender=a.sender, clock=world.clock)
    with pytest.raises(InvalidInput) as err:
        await other.upload(app, "1.0.0", "n")
    assert err.value.code == "85045"
    assert err.value.platform_message.startswith("some path in ext_json not exist rid: ")
    text = err.value.explanation
    assert "names a page the template does not have" in text
    assert "Remove that page from ext_json" in text and "`templates`" in text
    assert program(world).commit is None
    # 85013 keeps its own meaning: ext_json WeChat cannot use
    assert "invalid" in error_for(85013, "x").explanation
    assert "template does not have" not in error_for(85013, "x").explanation


# --------------------------------------------------------------------------- apps owned directly

UPLOAD_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEfakeUploadKey\n-----END RSA PRIVATE KEY-----"

FAKE_CI = """#!{python}
import json, os, stat, sys
args = sys.argv[1:]
options = dict(zip(args[1::2], args[2::2]))
key = options["--pkp"]
with open(key, encoding="utf-8") as fh:
    text = fh.read()
record = {{"args": args, "key": text, "mode": stat.S_IMODE(os.stat(key).st_mode)}}
with open(os.environ["FAKE_CI_LOG"], "w", encoding="utf-8") as fh:
    json.dump(record, fh)
if args[0] != "upload" or not os.path.isfile(os.path.join(options["--pp"], "project.config.json")):
    print("usage: miniprogram-ci upload --pp <project> ...", file=sys.stderr)
    sys.exit(2)
if os.environ.get("FAKE_CI_FAIL") == "ip":
    print("[miniprogram-ci] uploading...")
    print('Error: {{"errCode":-10008,"errMsg":"invalid ip: 203.0.113.7, reference: '
          'https://developers.weixin.qq.com/miniprogram/dev/devtools/ci.html"}}', file=sys.stderr)
    sys.exit(1)
if os.environ.get("FAKE_CI_FAIL") == "other":
    print("Error: project.config.json: appid mismatch", file=sys.stderr)
    sys.exit(1)
print("[miniprogram-ci] uploading...")
print('{{"subPackageInfo":[{{"name":"__FULL__","size":123456}}]}}')
"""


@pytest.fixture
def fake_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for miniprogram-ci (MINISHIP_MINIPROGRAM_CI); what it saw is in the log."""
    script = tmp_path / "bin" / "miniprogram-ci"
    script.parent.mkdir()
    script.write_text(FAKE_CI.format(python=sys.executable), encoding="utf-8")
    script.chmod(0o755)
    log = tmp_path / "ci.json"
    monkeypatch.setenv("MINISHIP_MINIPROGRAM_CI", str(script))
    monkeypatch.setenv("FAKE_CI_LOG", str(log))
    monkeypatch.delenv("FAKE_CI_FAIL", raising=False)
    return log


APPID = "wxba5fad812f8e6fb9"


def direct_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    project = tmp_path / "shop-miniprogram"
    project.mkdir(exist_ok=True)
    (project / "project.config.json").write_text(json.dumps({"appid": APPID}))
    monkeypatch.setenv("SHOP_UPLOAD_KEY", UPLOAD_KEY)
    return WeChatPlatform.AppConfig.model_validate(
        {"appid": APPID, "project_path": str(project), "private_key": "env:SHOP_UPLOAD_KEY"}
    )


@asynccontextmanager
async def direct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[WeChatPlatform]:
    """An adapter for one app owned directly, with no third-party platform configured."""
    cfg = direct_app(tmp_path, monkeypatch)
    settings = WeChatPlatform.Settings(component_appid="", miniprogram_ci_robot=3)
    adapter = WeChatPlatform(settings, {"shop": cfg})
    try:
        yield adapter
    finally:
        await adapter.aclose()


async def test_direct_upload_runs_miniprogram_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_ci: Path
) -> None:
    async with direct(tmp_path, monkeypatch) as a:
        with recording() as log:
            result = await a.upload("shop", "2.1.0", "新购物车")
        project = str(a.apps["shop"].project_path)
    seen = json.loads(fake_ci.read_text())
    args = seen["args"]
    key_path = args[4]
    assert args == [
        "upload",
        "--pp",
        project,
        "--pkp",
        key_path,
        "--appid",
        APPID,
        "--uv",
        "2.1.0",
        "--ud",
        "新购物车",
        "-r",
        "3",
    ]
    assert seen["key"] == UPLOAD_KEY and seen["mode"] == 0o600  # a private file ...
    assert not Path(key_path).exists()  # ... removed afterwards
    assert result.version == "2.1.0" and "robot 3" in result.detail
    assert "mp.weixin.qq.com" in result.detail
    (x,) = log
    assert x.api == "miniprogram-ci upload" and x.request["version"] == "2.1.0"
    assert "__FULL__" in x.answer["output"] and "MIIEfake" not in repr(log)
    assert "owned directly" in WeChatPlatform.describe_app(a.apps["shop"])


async def test_direct_upload_refused_by_the_ip_whitelist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_ci: Path
) -> None:
    monkeypatch.setenv("FAKE_CI_FAIL", "ip")
    async with direct(tmp_path, monkeypatch) as a:
        with pytest.raises(AuthError) as err:
            await a.upload("shop", "2.1.0", "n")
        assert "203.0.113.7" in err.value.explanation
        assert "开发管理 → 开发设置 → 小程序代码上传" in err.value.explanation
        assert "invalid ip" in err.value.platform_message  # the tool's own words
        monkeypatch.setenv("FAKE_CI_FAIL", "other")
        with pytest.raises(PlatformError, match="appid mismatch") as other:
            await a.upload("shop", "2.1.0", "n")
        assert not isinstance(other.value, AuthError)


async def test_direct_upload_without_the_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MINISHIP_MINIPROGRAM_CI", raising=False)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.chdir(tmp_path)  # no .tools/ here either
    async with direct(tmp_path, monkeypatch) as a:
        with pytest.raises(ConfigError, match="make clis") as err:
            await a.upload("shop", "2.1.0", "n")
    assert "MINISHIP_MINIPROGRAM_CI" in str(err.value)


async def test_direct_app_cannot_be_released_by_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with direct(tmp_path, monkeypatch) as a:
        calls = [
            a.submit("shop", "1.0.0", "n"),
            a.review_status("shop", "1.0.0", "1"),
            a.withdraw("shop", "1.0.0", "1"),
            a.publish("shop", "1.0.0", "1"),
            a.expedite("shop", "1.0.0", "1"),
            a.gray("shop", "1.0.0", 10),
            a.stop_gray("shop", "1.0.0"),
            a.rollback("shop", "1.0.0", None),
            a.trial_code("shop", None),
        ]
        for call in calls:
            with pytest.raises(Unsupported) as err:
                await call
            text = err.value.explanation
            assert "mp.weixin.qq.com" in text and "`connect shop wechat`" in text
        with pytest.raises(InvalidInput, match="owned directly"):
            await a.upload("shop", "1.0.0", "n", template="1")
        assert "mp.weixin.qq.com" in (await a.overview("shop")).lines[0]
        assert await a.versions("shop") == [] and await a.quotas("shop") == []
        assert await a.authorization("shop") is None
        (Path(str(a.apps["shop"].project_path)) / "project.config.json").unlink()
        with pytest.raises(ConfigError, match=r"no project\.config\.json"):
            await a.upload("shop", "1.0.0", "n")


def test_direct_app_config_validation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = direct_app(tmp_path, monkeypatch).model_dump()
    for bad, words in [
        ({**good, "private_key": None}, "project_path needs private_key"),
        ({**good, "template_id": 1}, "not both"),
        ({**good, "project_path": None}, "private_key is only for apps owned directly"),
        ({**good, "private_key": "-----BEGIN RSA PRIVATE KEY-----"}, "env:"),
    ]:
        with pytest.raises(ValidationError, match=words):
            WeChatPlatform.AppConfig.model_validate(bad)


# --------------------------------------------------------------------------- trial QR code


def qr_modules(jpeg: bytes, size: int) -> list[list[bool]]:
    """The dark modules of a QR code image of ``size`` modules a side (border included)."""
    image = Image.open(io.BytesIO(jpeg)).convert("L")
    box = image.width // size
    return [
        [image.getpixel((c * box + box // 2, r * box + box // 2)) < 128 for c in range(size)]  # type: ignore[operator]
        for r in range(size)
    ]


async def test_trial_code_is_a_scannable_jpeg(world: World) -> None:
    a, app = wx(world), world.app
    with pytest.raises(InvalidState, match="upload a version first"):
        await a.trial_code(app, None)
    await a.upload(app, "1.0.0", "n")
    with recording() as log:
        code = await a.trial_code(app, "1.0.0")
    assert code.mime == "image/jpeg" and code.extension == "jpg" and code.version == "1.0.0"
    assert code.image.startswith(b"\xff\xd8\xff") and code.image.endswith(b"\xff\xd9")
    shot = next(x for x in log if x.api == "GET /wxa/get_qrcode")
    assert shot.answer == {"content_type": "image/jpeg", "bytes": len(code.image)}
    # the picture holds the experience link: decode its modules and compare
    expected = trial_qr(WeChatEmulator.experience_url(a.apps[app].appid)).get_matrix()
    assert qr_modules(code.image, len(expected)) == expected
    with pytest.raises(InvalidState, match=r"trial version is 1\.0\.0, not 2\.0\.0"):
        await a.trial_code(app, "2.0.0")


async def test_emulator_qrcode_answers(raw: Raw) -> None:
    atok = await raw.atok()
    none = await raw.call("GET", "/wxa/get_qrcode", query={"access_token": atok})
    assert none.headers["content-type"].startswith("text/plain")  # WxJava's reading
    assert none.json()["errcode"] == 86001
    body = {"template_id": 1, "ext_json": "{}", "user_version": "1.0.0", "user_desc": "d"}
    await raw.json("POST", "/wxa/commit", query={"access_token": atok}, body=body)
    page = "pages/list/list?x=1"
    shot = await raw.call("GET", "/wxa/get_qrcode", query={"access_token": atok, "path": page})
    assert shot.status_code == 200 and shot.headers["content-type"] == "image/jpeg"
    assert shot.headers["content-disposition"] == 'attachment; filename="QRCode.jpg"'
    assert shot.headers["cache-control"] == "no-cache, must-revalidate"
    assert shot.content.startswith(b"\xff\xd8\xff")
    url = WeChatEmulator.experience_url(raw.authorizer_body()["authorizer_appid"], page)
    assert "path=pages%2Flist%2Flist%3Fx%3D1" in url


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(200, content=b"\x89PNG\r\n\x1a\n....IEND\xaeB`\x82"), "image/png"),
        (httpx.Response(200, content=b"GIF89a....", headers={"content-type": ""}), "image/gif"),
        (
            httpx.Response(200, json={"errcode": 86001, "errmsg": "no trial"}),
            NotFound,
        ),
        (
            httpx.Response(
                200,
                content=b' {"errcode":40097,"errmsg":"invalid args"}',
                headers={"content-type": "text/plain"},
            ),
            InvalidInput,
        ),
        (
            httpx.Response(
                200, content=b"\xff\xd8\xff\xe0 cut", headers={"content-type": "image/jpeg"}
            ),
            PlatformUnavailable,
        ),
        (httpx.Response(200, content=b"<html>hello</html>"), BadResponse),
    ],
)
async def test_trial_code_answer_variants(answer: httpx.Response, expected: Any) -> None:
    answers = {
        "/wxa/getversioninfo": {"errcode": 0, "exp_info": {"exp_version": "1.0.0"}},
        "/wxa/get_qrcode": answer,
    }
    async with mocked(tokens_then(answers)) as a:
        if isinstance(expected, str):
            code = await a.trial_code("shop", None)
            assert code.mime == expected and code.version == "1.0.0"
        else:
            with pytest.raises(expected):
                await a.trial_code("shop", None)


# --------------------------------------------------------------------------- submit


async def test_submit_fills_item_list_from_pages_and_categories(world: World) -> None:
    a, app = wx(world), world.app
    await a.upload(app, "1.0.0", "n")
    with recording() as log:
        await a.submit(app, "1.0.0", "n")
    apis = [x.api for x in log]
    assert apis.index("GET /wxa/get_page") < apis.index("POST /wxa/submit_audit")
    first = program(world).categories[0]
    assert program(world).audits[-1].item_list == [{"address": "pages/index/index", **first}]

    item = {**program(world).categories[1], "address": "pages/list/list", "tag": "shop"}
    cfg = a.apps[app].model_copy(update={"item_list": [item]})
    other = WeChatPlatform(a.settings, {app: cfg}, sender=a.sender, clock=world.clock)
    world.decide_reviews()
    await other.upload(app, "1.0.1", "n")
    pages_before = emu(world).calls["/wxa/get_page"]
    await other.submit(app, "1.0.1", "n")
    assert program(world).audits[-1].item_list == [item]
    assert emu(world).calls["/wxa/get_page"] == pages_before  # the app's own list, as given


async def test_unconfigured_privacy_api_61040(world: World) -> None:
    a, app = wx(world), world.app
    program(world).privacy_apis = ["wx.getLocation"]
    await a.upload(app, "1.0.0", "n")
    with pytest.raises(InvalidInput) as err:
        await a.submit(app, "1.0.0", "n")
    text = err.value.explanation
    assert err.value.code == "61040" and "wx.getLocation" in err.value.platform_message
    assert "requiredPrivateInfos" in text and "privacy_api_not_use = true" in text
    assert program(world).audits == []
    # declared in ext_json: accepted
    cfg = a.apps[app].model_copy(update={"ext_json": {"requiredPrivateInfos": ["getLocation"]}})
    declared = WeChatPlatform(a.settings, {app: cfg}, sender=a.sender, clock=world.clock)
    await declared.upload(app, "1.0.1", "n")
    ref = (await declared.submit(app, "1.0.1", "n")).ref
    await declared.withdraw(app, "1.0.1", ref)
    # or declared as not used at submit
    cfg = a.apps[app].model_copy(update={"privacy_api_not_use": True})
    unused = WeChatPlatform(a.settings, {app: cfg}, sender=a.sender, clock=world.clock)
    await unused.upload(app, "1.0.2", "n")
    with recording() as log:
        await unused.submit(app, "1.0.2", "n")
    assert next(x for x in log if x.api == "POST /wxa/submit_audit").request["privacy_api_not_use"]


async def test_emulator_privacy_info(raw: Raw) -> None:
    e = emu(raw.world)
    e.privacy_scan_seconds = 60
    program(raw.world).privacy_apis = ["wx.chooseAddress"]
    ext = json.dumps({"requiredPrivateInfos": ["getLocation"]})
    body = {"template_id": 1, "ext_json": ext, "user_version": "1.0.0", "user_desc": "d"}
    await raw.wxa("POST", "/wxa/commit", body)
    assert (await raw.wxa("GET", "/wxa/security/get_code_privacy_info"))["errcode"] == 61039
    assert (await raw.wxa("POST", "/wxa/submit_audit", {}))["errcode"] == 61039
    raw.world.clock.advance(60)
    info = await raw.wxa("GET", "/wxa/security/get_code_privacy_info")
    assert info["without_conf_list"] == ["wx.chooseAddress"]
    refused = await raw.wxa("POST", "/wxa/submit_audit", {})
    assert refused["errcode"] == 61040 and "wx.chooseAddress" in refused["errmsg"]
    assert (await raw.wxa("POST", "/wxa/submit_audit", {"privacy_api_not_use": True}))["auditid"]


# --------------------------------------------------------------------------- expedite, quotas


async def test_expedite_and_quotas(world: World) -> None:
    a, app, e = wx(world), world.app, emu(world)
    await a.upload(app, "1.0.0", "n")
    ref = (await a.submit(app, "1.0.0", "n")).ref
    quotas = {(q.action, q.period): q for q in await a.quotas(app)}
    assert (quotas["submit", "month"].remaining, quotas["submit", "month"].limit) == (19, 20)
    assert (quotas["expedite", "month"].remaining, quotas["expedite", "month"].limit) == (3, 3)
    assert quotas["withdraw", "day"] == Quota(
        "withdraw", "withdrawals today", None, 5, "day", counted_here=True
    )
    assert quotas["withdraw", "month"].limit == 10 and quotas["withdraw", "month"].counted_here

    assert "expedited review requested" in await a.expedite(app, "1.0.0", ref)
    assert program(world).audits[-1].expedited
    with pytest.raises(InvalidState) as err:
        await a.expedite(app, "1.0.0", ref)
    assert err.value.code == "89404"
    spent = next(q for q in await a.quotas(app) if q.action == "expedite")
    assert spent.remaining == 2
    with pytest.raises(InvalidInput):
        await a.expedite(app, "1.0.0", "not-an-audit")

    world.decide_reviews()
    with pytest.raises(InvalidState) as err:
        await a.expedite(app, "1.0.0", ref)
    assert err.value.code == "89402" and "queue" in err.value.explanation

    e.speedup_limit = 1  # one used this month: none left
    await a.upload(app, "1.0.1", "n")
    ref = (await a.submit(app, "1.0.1", "n")).ref
    sent = e.calls["/wxa/speedupaudit"]
    with pytest.raises(QuotaExceeded) as quota:
        await a.expedite(app, "1.0.1", ref)
    # refused before asking WeChat (no errcode), in the words of its 89405
    assert quota.value.code == "" and quota.value.explanation == error_for(89405, "").explanation
    assert e.calls["/wxa/speedupaudit"] == sent
    assert next(q for q in await a.quotas(app) if q.action == "expedite").spent


async def test_submit_asking_to_expedite(world: World) -> None:
    a, app, e = wx(world), world.app, emu(world)
    await a.upload(app, "1.0.0", "n")
    sub = await a.submit(app, "1.0.0", "n", expedite=True)
    assert "expedited review requested" in sub.detail and program(world).audits[-1].expedited
    await a.withdraw(app, "1.0.0", sub.ref)
    e.speedup_limit = 1  # spent: the submission stands, the expedite is refused
    sub = await a.submit(app, "1.0.0", "n", expedite=True)
    assert "not expedited: the platform's monthly quota of expedited reviews" in sub.detail
    assert e.calls["/wxa/speedupaudit"] == 1  # refused without asking: queryquota showed 0
    assert (await a.review_status(app, "1.0.0", sub.ref)).state is ReviewState.IN_REVIEW


async def test_unclear_expedite_is_checked_by_the_quota(world: World) -> None:
    a, app, e = wx(world), world.app, emu(world)
    await a.upload(app, "1.0.0", "n")
    ref = (await a.submit(app, "1.0.0", "n")).ref
    e.inject("/wxa/speedupaudit", "busy")
    with pytest.raises(PlatformUnavailable, match="did not happen"):
        await a.expedite(app, "1.0.0", ref)
    e.inject("/wxa/speedupaudit", "timeout")
    assert "confirmed" in await a.expedite(app, "1.0.0", ref)
    assert e.calls["/wxa/speedupaudit"] == 2 and program(world).audits[-1].expedited


# --------------------------------------------------------------------------- gray release


async def test_gray_release_then_publish(world: World) -> None:
    a, app, e = wx(world), world.app, emu(world)
    first = await approved(world, "1.0.0")
    with pytest.raises(InvalidState) as err:  # nothing live: only updates go gray
        await a.gray(app, "1.0.0", 10)
    assert err.value.code == "85079" and "first version" in err.value.explanation
    await a.publish(app, "1.0.0", first)
    ref = await approved(world, "1.1.0")
    assert "10% of users" in await a.gray(app, "1.1.0", 10)
    overview = await a.overview(app)
    assert overview.live_version == "1.0.0"
    assert overview.gray == GrayPlan(
        10, "1.1.0", "running", overview.gray.since if overview.gray else None
    )
    assert overview.gray is not None and overview.gray.since is not None
    status = await a.review_status(app, "1.1.0", ref)
    assert status.state is ReviewState.GRAY and "10% of users" in status.detail
    assert overview.review is not None and overview.review.state is ReviewState.GRAY
    assert ("1.1.0", "gray") in [(v.version, v.state) for v in await a.versions(app)]

    with pytest.raises(InvalidInput) as low:
        await a.gray(app, "1.1.0", 5)
    assert low.value.code == "85082" and "higher" in low.value.explanation
    await a.gray(app, "1.1.0", 30)
    assert (await a.overview(app)).gray == GrayPlan(30, "1.1.0", "running", overview.gray.since)
    with pytest.raises(InvalidState) as err:  # checked before asking WeChat (87011)
        await a.rollback(app, "1.0.0", None)
    assert err.value.code == "87011"
    assert history_calls(world) == 0

    said = await a.publish(app, "1.1.0", ref)
    assert "the gray release at 30% is complete" in said
    overview = await a.overview(app)
    assert overview.live_version == "1.1.0" and overview.gray is None
    assert program(world).gray.status == 3  # finished
    assert (await a.review_status(app, "1.1.0", ref)).state is ReviewState.RELEASED
    assert e.calls["/wxa/grayrelease"] == 4  # 85079, 10 %, 85082, 30 %


@pytest.mark.parametrize("refused", [False, True], ids=["release-ends-gray", "release-85052"])
async def test_publish_during_gray_under_either_reading(world: World, refused: bool) -> None:
    """What `release` does to a running gray plan is UNCERTAIN (fact sheet §2.4): it ends
    the plan (A), or answers 85052 and a plan raised to 100 % is the full release (B)."""
    a, app, e = wx(world), world.app, emu(world)
    await a.publish(app, "1.0.0", await approved(world, "1.0.0"))
    ref = await approved(world, "1.1.0")
    await a.gray(app, "1.1.0", 20)
    e.release_refused_while_gray = refused
    said = await a.publish(app, "1.1.0", ref)
    assert ("raised to 100 %" in said) is refused, said
    overview = await a.overview(app)
    assert overview.live_version == "1.1.0" and overview.gray is None
    assert (await a.review_status(app, "1.1.0", ref)).state is ReviewState.RELEASED
    assert e.calls["/wxa/grayrelease"] == (2 if refused else 1)  # 20 %, then 100 % (B)
    assert "already live" in await a.publish(app, "1.1.0", ref)  # asked again: said, not redone


async def test_gray_release_stopped(world: World) -> None:
    a, app = wx(world), world.app
    await released(world, "1.0.0")
    ref = await approved(world, "1.1.0")
    with pytest.raises(InvalidState, match="no gray release"):
        await a.stop_gray(app, "1.1.0")
    await a.gray(app, "1.1.0", 50)
    said = await a.stop_gray(app, "1.1.0")
    assert "stopped" in said and "back on 1.0.0" in said
    assert (await a.overview(app)).gray is None and program(world).gray.status == 4
    assert (await a.review_status(app, "1.1.0", ref)).state is ReviewState.APPROVED
    await a.gray(app, "1.1.0", 5)  # a new plan may start low again
    assert (await a.overview(app)).gray is not None


async def test_gray_refusals_before_asking(world: World) -> None:
    a, app = wx(world), world.app
    await released(world, "1.0.0")
    await approved(world, "1.1.0")
    for percent in (0, 101, -5):
        with pytest.raises(InvalidInput, match="1 to 100"):
            await a.gray(app, "1.1.0", percent)
    with pytest.raises(InvalidState, match="different code"):
        await a.gray(app, "1.2.0", 10)
    assert emu(world).calls["/wxa/grayrelease"] == 0


async def test_emulator_gray_rules(raw: Raw) -> None:
    w = raw.world
    a = wx(w)
    ref = await approved(w, "1.0.0")
    assert (await raw.wxa("POST", "/wxa/grayrelease", {"gray_percentage": 10}))["errcode"] == 85079
    await a.publish(w.app, "1.0.0", ref)
    assert (await raw.wxa("POST", "/wxa/grayrelease", {"gray_percentage": 10}))[
        "errcode"
    ] == 85080  # the approved version is live already
    await a.upload(w.app, "1.1.0", "n")
    await a.submit(w.app, "1.1.0", "n")
    assert (await raw.wxa("POST", "/wxa/grayrelease", {"gray_percentage": 10}))[
        "errcode"
    ] == 85080  # still in review
    w.decide_reviews()
    for body in ({"gray_percentage": 101}, {"gray_percentage": "x"}, {"gray_percentage": 0}):
        assert (await raw.wxa("POST", "/wxa/grayrelease", body))["errcode"] == 85081
    first = {"gray_percentage": 0, "support_experiencer_first": True}
    assert (await raw.wxa("POST", "/wxa/grayrelease", first))["errcode"] == 0
    plan = (await raw.wxa("GET", "/wxa/getgrayreleaseplan"))["gray_release_plan"]
    assert plan["status"] == 1 and plan["support_experiencer_first"] is True
    assert (await raw.wxa("POST", "/wxa/grayrelease", {"gray_percentage": 0}))["errcode"] == 85081
    assert (await raw.wxa("GET", "/wxa/revertcoderelease"))["errcode"] == 87011


# --------------------------------------------------------------------------- rollback


async def test_versions_and_rollback_to_a_chosen_version(world: World) -> None:
    a, app = wx(world), world.app
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        await released(world, version)
    await a.upload(app, "1.3.0", "n")
    versions = await a.versions(app)
    assert [(v.version, v.state, v.rollback) for v in versions] == [
        ("1.3.0", "development", False),
        ("1.2.0", "live", False),
        ("1.1.0", "earlier release", True),
        ("1.0.0", "earlier release", True),
    ]
    assert all(v.created_at is not None and v.created_at.tzinfo for v in versions)
    with pytest.raises(InvalidInput) as err:
        await a.rollback(app, "1.2.0", "0.9.0")
    assert "the versions you can roll back to are 1.1.0, 1.0.0" in err.value.explanation
    with pytest.raises(InvalidState, match=r"live version is 1\.2\.0, not 1\.1\.0"):
        await a.rollback(app, "1.1.0", None)
    assert history_calls(world) == 0

    with recording() as log:
        said = await a.rollback(app, "1.2.0", "1.0.0")
    assert said.startswith("rolled back from 1.2.0 to 1.0.0")
    sent = next(
        x for x in log if x.api == "GET /wxa/revertcoderelease" and "action" not in x.request
    )
    kept = program(world).history
    assert sent.request["app_version"] == str(
        next(r.app_version for r in kept if r.version == "1.0.0")
    )
    assert (await a.overview(app)).live_version == "1.0.0"
    # no second rollback in a row: nothing is offered, and WeChat is not asked
    assert not [v for v in await a.versions(app) if v.rollback]
    with pytest.raises(InvalidState, match="lists no versions to roll back to"):
        await a.rollback(app, "1.0.0", None)
    assert history_calls(world) == 1


async def test_emulator_lists_no_history_after_a_rollback(raw: Raw) -> None:
    """get_history_version after a rollback: ``version_list: []`` (the reading of WeChat's
    page, "versions one can roll back to"), or still the kept releases (the switch)."""
    e = emu(raw.world)

    async def listed() -> list[str]:
        query = {"access_token": await raw.atok(), "action": "get_history_version"}
        kept = await raw.json("GET", "/wxa/revertcoderelease", query=query)
        assert kept["errcode"] == 0
        return [v["user_version"] for v in kept["version_list"]]

    for version in ("1.0.0", "1.1.0"):
        await released(raw.world, version)
    assert await listed() == ["1.0.0", "1.1.0"]
    assert (await raw.wxa("GET", "/wxa/revertcoderelease"))["errcode"] == 0  # to 1.0.0
    assert await listed() == []
    e.rollback_keeps_history = True  # the other reading
    assert await listed() == ["1.0.0", "1.1.0"]
    e.rollback_keeps_history = False
    assert (await raw.wxa("GET", "/wxa/revertcoderelease"))["errcode"] == 87012  # still
    await released(raw.world, "1.2.0")  # a new release: listed again
    assert await listed() == ["1.0.0", "1.1.0", "1.2.0"]


@pytest.mark.parametrize("keeps_history", [False, True], ids=["empty-after", "still-listed"])
async def test_versions_and_rollback_after_a_rollback(world: World, keeps_history: bool) -> None:
    """Both readings of get_history_version after a rollback: ``versions`` and ``rollback``
    say why nothing can be rolled back to, and WeChat is not asked to."""
    a, app = wx(world), world.app
    emu(world).rollback_keeps_history = keeps_history
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        await released(world, version)
    await a.rollback(app, "1.2.0", None)
    assert (await a.overview(app)).live_version == "1.1.0"

    versions = await a.versions(app)
    assert not [v for v in versions if v.rollback]
    live = next(v for v in versions if v.state == "live")
    assert live.version == "1.1.0"
    # 1.2.0 shows as the latest (approved) review either way
    if keeps_history:
        assert [v.version for v in versions] == ["1.2.0", "1.1.0", "1.0.0"]
        assert "roll back to" not in live.description
        words = "itself a rollback"
    else:
        assert [v.version for v in versions] == ["1.2.0", "1.1.0"]
        assert live.description.startswith("WeChat lists no versions to roll back to")
        words = "WeChat lists no versions to roll back to"
    with pytest.raises(InvalidState, match=words) as err:
        await a.rollback(app, "1.1.0", None)
    if not keeps_history:
        assert "as it does after a rollback" in err.value.explanation
        assert "mp.weixin.qq.com" in err.value.explanation
    with pytest.raises(InvalidInput, match=f"cannot roll back 1.1.0 to 1.0.0: .*{words}"):
        await a.rollback(app, "1.1.0", "1.0.0")
    assert history_calls(world) == 1  # only the first rollback was sent
    assert (await a.overview(app)).live_version == "1.1.0"

    await released(world, "1.3.0")  # a new release allows a rollback again
    assert [v.version for v in await a.versions(app) if v.rollback] == ["1.2.0", "1.1.0", "1.0.0"]
    assert "rolled back from 1.3.0 to 1.0.0" in await a.rollback(app, "1.3.0", "1.0.0")


async def test_rollback_to_the_previous_version(world: World) -> None:
    a, app = wx(world), world.app
    await released(world, "1.0.0")
    with pytest.raises(InvalidState, match="keeps no earlier version"):
        await a.rollback(app, "1.0.0", None)
    await released(world, "1.1.0")
    emu(world).inject("/wxa/revertcoderelease", "timeout")  # done, the answer lost
    said = await a.rollback(app, "1.1.0", None)
    assert "to 1.0.0" in said and "confirmed" in said and history_calls(world) == 1
    assert (await a.overview(app)).live_version == "1.0.0"
    await released(world, "1.2.0")  # a new release allows a rollback again
    assert [v.version for v in await a.versions(app) if v.rollback] == ["1.1.0", "1.0.0"]


async def test_emulator_keeps_five_releases(raw: Raw) -> None:
    for n in range(7):
        await released(raw.world, f"1.{n}.0")
    query = {"access_token": await raw.atok(), "action": "get_history_version"}
    kept = await raw.json("GET", "/wxa/revertcoderelease", query=query)
    listed = [v["user_version"] for v in kept["version_list"]]
    assert listed == ["1.2.0", "1.3.0", "1.4.0", "1.5.0", "1.6.0"]
    numbers = [v["app_version"] for v in kept["version_list"]]
    assert numbers == sorted(numbers) and all(
        isinstance(v["commit_time"], int) for v in kept["version_list"]
    )
    too_old = {"access_token": query["access_token"], "app_version": "1"}
    assert (await raw.json("GET", "/wxa/revertcoderelease", query=too_old))["errcode"] == 87012
    bad = {"access_token": query["access_token"], "app_version": "x"}
    assert (await raw.json("GET", "/wxa/revertcoderelease", query=bad))["errcode"] == 40097
    assert (await raw.wxa("GET", "/wxa/revertcoderelease"))["errcode"] == 0  # to 1.5.0
    assert (await raw.wxa("GET", "/wxa/revertcoderelease"))["errcode"] == 87012  # twice


# --------------------------------------------------------------------------- authorization


class MemoryVault:
    """A :class:`platforms.base.CredentialVault` in a dict."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str] = {}

    async def load(self, platform: str, name: str) -> SecretStr | None:
        value = self.values.get((platform, name))
        return SecretStr(value) if value is not None else None

    async def save(self, platform: str, name: str, value: SecretStr) -> None:
        self.values[platform, name] = value.get_secret_value()


CALLBACK = "https://miniship.example.com/connect/wechat?app=new"


def with_new_app(world: World, vault: MemoryVault | None, new: Any = None) -> WeChatPlatform:
    """An adapter with ``shop`` and ``new``, a mini program that has not authorized the
    platform (when first provisioned); ``new`` is its config, made up when not given."""
    e = emu(world)
    base = world.server.base_url("wechat")
    given = e.provision(base, {"new": new or e.example_app()}, unauthorized={"new"})
    cfg = given.apps["new"].model_copy(update={"refresh_token": None})  # as in miniship.toml
    apps = {**wx(world).apps, "new": cfg}
    adapter = WeChatPlatform(given.settings, apps, sender=wx(world).sender, clock=world.clock)
    adapter.vault = vault
    return adapter


async def authorize_in_browser(link: str) -> dict[str, str]:
    """Open the authorization link as the admin's browser; the query it is sent back with."""
    async with httpx.AsyncClient() as browser:
        page = await browser.get(link)
    assert page.status_code == 302, page.text
    back = page.headers["location"]
    assert back.startswith(CALLBACK + "&auth_code=")
    return dict(parse_qsl(urlsplit(back).query))


async def test_connect_an_app(world: World) -> None:
    vault = MemoryVault()
    a = with_new_app(world, vault)
    appid = a.apps["new"].appid
    before = await a.authorization("new")
    assert before is not None and not before.authorized and before.app == "new"
    with pytest.raises(AuthError, match="`connect new wechat`"):
        await a.upload("new", "1.0.0", "n")

    link = await a.connect_link("new", CALLBACK)
    assert link.startswith(world.server.base_url("wechat") + "/cgi-bin/componentloginpage?")
    q = parse_qs(urlsplit(link).query)
    assert q["auth_type"] == ["2"] and q["biz_appid"] == [appid] and q["redirect_uri"] == [CALLBACK]
    assert q["component_appid"] == [a.settings.component_appid] and q["pre_auth_code"]
    query = await authorize_in_browser(link)
    assert query["app"] == "new" and query["expires_in"] == "600"

    with recording() as log:
        grant = await a.complete_connect("new", query)
    assert (grant.platform_app_id, grant.app, grant.authorized) == (appid, "new", True)
    assert grant.permissions == (17, 18, 30, 86)
    assert grant.permission_names[1].startswith("code management")
    assert grant.permission_names[0] == "permission set 17" and "granted" in grant.detail
    refresh = emu(world).programs[appid].refresh_token
    assert refresh and vault.values["wechat", f"refresh_token:{appid}"] == refresh
    assert refresh not in repr(log)

    await a.upload("new", "1.0.0", "n")  # with the access token api_query_auth gave
    assert emu(world).calls[AUTHORIZER] == 0
    after = await a.authorization("new")
    assert after == Authorization(
        appid, "new", True, grant.permissions, grant.permission_names, grant.detail, "wechat"
    )

    restarted = with_new_app(world, vault, a.apps["new"])  # a new process: token from the vault
    assert (await restarted.overview("new")).trial_version == "1.0.0"
    with pytest.raises(AuthError) as err:  # a code is used once
        await a.complete_connect("new", query)
    assert err.value.code == "61009" and "connect" in err.value.explanation


async def test_connect_needs_the_vault_and_a_fresh_code(world: World) -> None:
    a = with_new_app(world, None)
    query = await authorize_in_browser(await a.connect_link("new", CALLBACK))
    with pytest.raises(ConfigError, match="MINISHIP_SECRET_KEY"):
        await a.complete_connect("new", query)
    assert query["auth_code"] in emu(world).auth_codes  # not spent
    a.vault = MemoryVault()
    world.clock.advance(601)
    with pytest.raises(AuthError) as err:
        await a.complete_connect("new", query)
    assert err.value.code == "61010" and "10 minutes" in err.value.explanation
    with pytest.raises(InvalidInput, match="no auth_code"):
        await a.complete_connect("new", {"state": "x"})


async def test_emulator_login_page_refusals(world: World) -> None:
    a = with_new_app(world, MemoryVault())
    link = await a.connect_link("new", CALLBACK)
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(link)).status_code == 302
        again = await browser.get(link)  # a pre_auth_code is used once
        assert again.status_code == 400 and "pre_auth_code" in again.text
        fresh = await a.connect_link("new", CALLBACK)
        world.clock.advance(601)
        assert (await browser.get(fresh)).status_code == 400


async def test_revoked_authorization(world: World) -> None:
    a, app = wx(world), world.app
    await a.overview(app)
    emu(world).revoke(a.apps[app].appid)
    with pytest.raises(AuthError) as err:
        await a.overview(app)  # the cached access token is refused now
    assert err.value.code == "61003" and "`connect <app> wechat`" in err.value.explanation
    grant = await a.authorization(app)
    assert grant is not None and not grant.authorized and grant.permissions == ()


async def test_code_management_not_granted_61007(world: World) -> None:
    a, app = wx(world), world.app
    program(world).func_info = [17, 30]
    with pytest.raises(AuthError) as err:
        await a.upload(app, "1.0.0", "n")
    assert err.value.code == "61007" and "18" in err.value.explanation
    grant = await a.authorization(app)
    assert grant is not None and grant.authorized and 18 not in grant.permissions
    assert "NOT granted" in grant.detail


async def test_refresh_tokens_come_from_the_vault_first() -> None:
    seen: list[httpx.Request] = []
    answers: dict[str, Any] = {"/wxa/queryquota": {"errcode": 0, "rest": 1, "limit": 1}}
    async with mocked(tokens_then(answers, seen)) as a:
        vault = MemoryVault()
        vault.values["wechat", f"refresh_token:{APPID}"] = "rv"
        a.vault = vault
        await a.quotas("shop")
        # the answer carried a new refresh token: kept in the vault
        assert vault.values["wechat", f"refresh_token:{APPID}"] == "r2"
    sent = [
        json.loads(r.content)["authorizer_refresh_token"] for r in seen if r.url.path == AUTHORIZER
    ]
    assert sent == ["rv"]


async def test_a_refused_vault_token_falls_back_to_the_configured_one() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == COMPONENT:
            return httpx.Response(200, json={"component_access_token": "C"})
        if path == AUTHORIZER:
            refresh = json.loads(request.content)["authorizer_refresh_token"]
            seen.append(refresh)
            if refresh != "r1":
                return httpx.Response(
                    200, json={"errcode": 61023, "errmsg": "refresh_token is invalid"}
                )
            return httpx.Response(200, json={"authorizer_access_token": "A", "expires_in": 7200})
        return httpx.Response(200, json={"errcode": 0})

    async with mocked(handle) as a:
        vault = MemoryVault()
        vault.values["wechat", f"refresh_token:{APPID}"] = "stale"
        a.vault = vault
        assert await a._authorizer_token("shop") == "A"
    assert seen == ["stale", "r1"]


async def test_pushed_ticket_is_kept_in_the_vault(world: World) -> None:
    a, e = wx(world), emu(world)
    vault = MemoryVault()
    a.vault = vault
    e.push_url = "http://127.0.0.1:9/push/wechat"
    ticket_push = e.due_pushes()[0]
    assert ticket_push.delivered is not None
    ticket_push.delivered()
    events = await a.read_push(PushRequest({"appid": "auth"}, ticket_push.params, ticket_push.body))
    assert events[0].kind == "verify_ticket"
    assert vault.values["wechat", "component_verify_ticket"] == e.component.verify_ticket
    e.previous_tickets.clear()  # only the pushed ticket is accepted now
    # after a restart, with no ticket in the settings: the vault has it
    settings = a.settings.model_copy(update={"component_verify_ticket": None})
    restarted = WeChatPlatform(settings, a.apps, sender=a.sender, clock=world.clock)
    restarted.vault = vault
    assert (await restarted.overview(world.app)).live_version is None
    # a stale ticket in the vault: the configured one is tried next
    vault.values["wechat", "component_verify_ticket"] = "ticket@@@stale"
    fresh = a.settings.model_copy(
        update={"component_verify_ticket": SecretStr(e.component.verify_ticket)}
    )
    other = WeChatPlatform(fresh, a.apps, sender=a.sender, clock=world.clock)
    other.vault = vault
    with recording() as log:
        await other.overview(world.app)
    answers = [x.answer.get("errcode") for x in log if x.api == f"POST {COMPONENT}"]
    assert answers == [61006, None]


# --------------------------------------------------------------------------- errors, faults


SHEET_CODES = (
    # §1.1
    -1, 40001, 40013, 40014, 40097, 40125, 41001, 41004, 41018, 42001, 42006, 42007, 43001,
    43002, 43003, 44002, 45009, 45011, 47001, 48001, 48004, 48006, 61003, 61004, 61005, 61006,
    61007, 61011, 61014, 61023,
    # §3.5 authorization codes
    61009, 61010,
    # §4.1 commit
    -60005, 80066, 80067, 80082, 85013, 85014, 85043, 85044, 85045, 85046, 85047, 85048, 85310,
    85311, 85312, 9402202, 9402203, 86007,
    # §4.2–4.7 pages, privacy, submit
    86000, 86001, 61039, 61040, 85006, 85007, 85008, 85009, 85010, 85011,
    85023, 85051, 85077, 85085, 85086, 85087, 85094, 86002, 86008, 86009, 86010,
    87006, 9400001,
    # §4.8–4.20 status, withdraw, expedite, release, rollback, gray, visit
    85012, 85058, 87013, 87012, 89401, 89402, 89403, 89404, 89405, 85019, 85020, 85052, 87011,
    85079, 85080, 85081, 85082, 85021, 85022,
    # §5 templates
    85064, 85065,
)  # fmt: skip
"""The sheet's codes the APIs miniship calls can answer."""

NEVER_MET = (61024, 40005, 40006, 41005, 85092, 85093, 89014)
"""The sheet's codes only of APIs miniship never calls (/cgi-bin/token, uploadmedia,
setweappsupportversion) or of fields it never sends (preview_info)."""


@pytest.mark.parametrize("errcode", SHEET_CODES)
def test_every_code_of_the_fact_sheet_is_explained(errcode: int) -> None:
    error = error_for(errcode, "something rid: 6613f2a1-1c2b3d4e-5f6a7b8c")
    assert type(error) is not PlatformError, f"{errcode} has no rule"
    assert error.code == str(errcode) and len(error.explanation) > 20
    assert "something" not in error.explanation


@pytest.mark.parametrize("errcode", NEVER_MET)
def test_codes_of_apis_never_called_keep_wechats_words(errcode: int) -> None:
    error = error_for(errcode, "something odd rid: 6613f2a1-1c2b3d4e-5f6a7b8c")
    assert type(error) is PlatformError and "something odd" in error.explanation


def test_ip_whitelist_61004_names_the_ip() -> None:
    error = error_for(
        61004, "invalid ip 203.0.113.9 ipv6 ::ffff:203.0.113.9, not in whitelist rid: 1-2-3"
    )
    assert isinstance(error, AuthError)
    text = error.explanation
    assert "203.0.113.9" in text and "::ffff" not in text and "open.weixin.qq.com" in text
    assert "白名单" in text
    plain = error_for(61004, "access clientip is not registered rid: 1-2-3")
    assert "open.weixin.qq.com" in plain.explanation and "IP whitelist" in plain.explanation
    quota = error_for(85085, "submit audit reach limit, please try later")
    assert "1st of next month" in quota.explanation and "服务商助手" in quota.explanation


async def test_ip_whitelist_end_to_end(world: World) -> None:
    emu(world).ip_whitelist = {"192.0.2.1"}
    with pytest.raises(AuthError) as err:
        await wx(world).overview(world.app)
    assert err.value.code == "61004" and "127.0.0.1" in err.value.explanation


async def test_rate_limit_and_malformed_faults(world: World, sleeps: list[float]) -> None:
    a, app, e = wx(world), world.app, emu(world)
    await a.overview(app)
    e.inject("/wxa/getversioninfo", "rate_limit")
    with pytest.raises(QuotaExceeded) as err:
        await a.overview(app)
    assert err.value.code == "45009" and e.calls["/wxa/getversioninfo"] == 2  # not retried
    e.inject("/wxa/getversioninfo", "malformed")
    assert (await a.overview(app)).live_version is None  # a read: asked again
    assert sleeps == [0.5]
    e.inject("/wxa/commit", "unsigned")  # WeChat signs nothing: a cut-short answer too
    assert "confirmed" in (await a.upload(app, "1.0.0", "n")).detail
    assert e.calls["/wxa/commit"] == 1


# =========================================================================== review findings

UNCLEAR = httpx.Response(502, text="<html>bad gateway</html>")  # a change's answer lost


def answered(*answers: Any) -> Callable[[httpx.Request], Any]:
    """Answers given in turn, the last one repeated."""
    queue = list(answers)

    def next_answer(request: httpx.Request) -> Any:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return next_answer


# --------------------------------------------------------------------------- confirmations


async def test_unclear_reupload_of_the_same_version_is_checked_by_exp_time(world: World) -> None:
    a, app, e = wx(world), world.app, emu(world)
    await a.upload(app, "1.0.0", "first")
    world.clock.advance(60)
    e.inject("/wxa/commit", "busy")  # refused: the trial version stays the first commit
    with pytest.raises(PlatformUnavailable, match="did not happen") as err:
        await a.upload(app, "1.0.0", "again")
    assert not isinstance(err.value, OutcomeUnknown)
    first = program(world).commit.committed_at
    e.inject("/wxa/commit", "malformed")  # carried out, its answer cut short
    assert "confirmed" in (await a.upload(app, "1.0.0", "again")).detail
    assert program(world).commit.committed_at == first + 60 and e.calls["/wxa/commit"] == 3


async def test_unclear_reupload_without_exp_time_cannot_tell() -> None:
    answers = {
        "/wxa/getversioninfo": {"errcode": 0, "exp_info": {"exp_version": "1.0.0"}},
        "/wxa/commit": UNCLEAR,
    }
    async with mocked(tokens_then(answers)) as a:
        with pytest.raises(OutcomeUnknown, match="could not check whether the upload"):
            await a.upload("shop", "1.0.0", "n")


async def test_unclear_submit_is_confirmed_only_by_a_new_audit(world: World) -> None:
    a, app, e = wx(world), world.app, emu(world)
    await a.upload(app, "1.0.0", "n")
    pending = (await a.submit(app, "1.0.0", "n")).ref
    e.inject("/wxa/submit_audit", "busy")  # not carried out: only the older audit shows
    with pytest.raises(PlatformUnavailable, match="did not happen") as err:
        await a.submit(app, "1.0.0", "n")
    assert not isinstance(err.value, OutcomeUnknown) and pending not in str(err.value)
    assert [str(x.auditid) for x in program(world).audits] == [pending]


async def test_unclear_submit_confirmed_when_wechat_omits_user_version() -> None:
    latest = answered(
        {"errcode": 85058, "errmsg": "no valid audit_id exist"},  # before sending
        {"errcode": 0, "errmsg": "ok", "auditid": 7, "status": 2},  # no user_version
    )
    answers = {
        "/wxa/getversioninfo": {"errcode": 0, "exp_info": {"exp_version": "1.0.0"}},
        "/wxa/get_page": {"errcode": 0, "page_list": ["index"]},
        "/wxa/get_category": {"errcode": 0, "category_list": []},
        "/wxa/get_latest_auditstatus": latest,
        "/wxa/submit_audit": UNCLEAR,
    }
    async with mocked(tokens_then(answers)) as a:
        sub = await a.submit("shop", "1.0.0", "n")
    assert sub.ref == "7" and "confirmed" in sub.detail


async def test_unclear_expedite_across_a_month_cannot_tell() -> None:
    quota = answered(
        {"errcode": 0, "rest": 5, "limit": 9, "speedup_rest": 1, "speedup_limit": 3},
        {"errcode": 0, "rest": 9, "limit": 9, "speedup_rest": 3, "speedup_limit": 3},  # renewed
    )
    answers = {"/wxa/queryquota": quota, "/wxa/speedupaudit": UNCLEAR}
    async with mocked(tokens_then(answers)) as a:
        with pytest.raises(OutcomeUnknown, match="could not check whether the expedite"):
            await a.expedite("shop", "1.0.0", "42")


async def test_an_answer_without_errcode_is_unclear_for_changes(world: World) -> None:
    bare = sibling(world, Tamper(response=lambda body: b"{}", only=path_is("/wxa/release")))
    ref = await approved(world)
    said = await bare.publish(world.app, "1.0.0", ref)  # carried out, answered {}
    await bare.sender.aclose()
    assert "confirmed" in said and program(world).release is not None
    answers = {"/wxa/getversioninfo": {"exp_info": {"exp_version": "1.0.0"}}}
    async with mocked(tokens_then(answers)) as a:  # a read answered without errcode
        with pytest.raises(BadResponse, match="no errcode"):
            await a.overview("shop")


# --------------------------------------------------------------------------- templates


async def test_an_empty_library_answered_85064_reads_as_empty(world: World, raw: Raw) -> None:
    a, e = wx(world), emu(world)
    e.empty_lists_as_85064 = True
    e.templates.clear()
    ctok = {"access_token": await raw.ctok()}
    assert (await raw.json("GET", "/wxa/gettemplatelist", query=ctok))["errcode"] == 85064
    assert [t for t in await a.templates() if not t.draft] == []
    draft = str(min(e.drafts))
    said = await a.add_template(draft)  # the library read before sending answered 85064
    made = next(iter(e.templates))
    assert said == f"draft {draft} is now template {made}"
    e.inject("/wxa/deletetemplate", "malformed")  # the last one goes; its answer is lost
    assert "confirmed" in await a.delete_template(str(made))
    assert e.templates == {} and e.calls["/wxa/deletetemplate"] == 1
    e.drafts.clear()
    assert (await raw.json("GET", "/wxa/gettemplatedraftlist", query=ctok))["errcode"] == 85064
    assert await a.templates() == []


async def test_delete_template_refuses_a_template_apps_use(world: World) -> None:
    a, e = wx(world), emu(world)
    with pytest.raises(InvalidState) as err:
        await a.delete_template("1")
    text = err.value.explanation
    assert "template_id of shop" in text and "[apps.shop.wechat]" in text
    assert "another template_id" in text and err.value.code == ""
    assert 1 in e.templates and e.calls["/wxa/deletetemplate"] == 0


# --------------------------------------------------------------------------- gray, rollback


async def test_stop_gray_checks_the_version_in_gray(world: World) -> None:
    a, app = wx(world), world.app
    await released(world, "1.0.0")
    await approved(world, "1.1.0")
    await a.gray(app, "1.1.0", 10)
    with pytest.raises(InvalidState, match=r"audit .*1\.1\.0.*different code"):
        await a.stop_gray(app, "1.2.0")  # a stale request: 1.1.0 is the one in gray
    assert emu(world).calls["/wxa/revertgrayrelease"] == 0 and program(world).gray_running()
    assert "stopped" in await a.stop_gray(app, "1.1.0")


async def test_rollback_without_app_version_only_to_the_previous_version() -> None:
    seen: list[httpx.Request] = []
    kept = [
        {"user_version": v, "commit_time": n} for n, v in enumerate(("1.0.0", "1.1.0", "1.2.0"))
    ]

    def revert(request: httpx.Request) -> Any:
        if request.url.params.get("action") == "get_history_version":
            return {"errcode": 0, "errmsg": "ok", "version_list": kept}
        return {"errcode": 0, "errmsg": "ok"}

    answers = {
        "/wxa/getversioninfo": {"errcode": 0, "release_info": {"release_version": "1.2.0"}},
        "/wxa/getgrayreleaseplan": {"errcode": 0, "gray_release_plan": {"status": 4}},
        "/wxa/revertcoderelease": revert,
    }
    async with mocked(tokens_then(answers, seen)) as a:
        with pytest.raises(InvalidState, match=r"no app_version for 1\.0\.0") as err:
            await a.rollback("shop", "1.2.0", "1.0.0")
        assert "Roll back to 1.1.0 instead" in err.value.explanation
        rollbacks = [r for r in seen if r.url.path == "/wxa/revertcoderelease"]
        assert all("action" in r.url.params for r in rollbacks)
        # the previous version needs no app_version; WeChat then still shows 1.2.0 live
        said = await a.rollback("shop", "1.2.0", "1.1.0")
    assert "shows 1.2.0 live, not 1.1.0" in said
    sent = [
        r for r in seen if r.url.path == "/wxa/revertcoderelease" and "action" not in r.url.params
    ]
    assert len(sent) == 1 and "app_version" not in sent[0].url.params


async def test_an_empty_history_is_said_plainly() -> None:
    """The community-reported answer after a rollback, ``version_list: []``, read from
    WeChat's own shapes: nothing offered or sent, and the reason given."""
    seen: list[httpx.Request] = []
    answers = {
        "/wxa/getversioninfo": {
            "errcode": 0,
            "errmsg": "ok",
            "release_info": {"release_version": "1.1.0", "release_desc": "shop"},
        },
        "/wxa/get_latest_auditstatus": {
            "errcode": 0,
            "auditid": 7,
            "status": 0,
            "user_version": "1.2.0",
        },
        "/wxa/getgrayreleaseplan": {"errcode": 0, "gray_release_plan": {"status": 0}},
        "/wxa/revertcoderelease": {"errcode": 0, "errmsg": "ok", "version_list": []},
    }
    async with mocked(tokens_then(answers, seen)) as a:
        versions = await a.versions("shop")
        live = next(v for v in versions if v.state == "live")
        assert live.description == "WeChat lists no versions to roll back to · shop"
        assert not [v for v in versions if v.rollback]
        with pytest.raises(InvalidState, match="lists no versions to roll back to"):
            await a.rollback("shop", "1.1.0", None)
        with pytest.raises(InvalidInput, match="lists no versions to roll back to"):
            await a.rollback("shop", "1.1.0", "1.0.0")
    rollbacks = [r for r in seen if r.url.path == "/wxa/revertcoderelease"]
    assert rollbacks and all("action" in r.url.params for r in rollbacks)


# --------------------------------------------------------------------------- authorization


class FailingVault(MemoryVault):
    async def save(self, platform: str, name: str, value: SecretStr) -> None:
        raise OSError("disk full")


async def test_connect_refuses_another_mini_programs_grant(world: World) -> None:
    vault = MemoryVault()
    a = with_new_app(world, vault)
    query = await authorize_in_browser(await a.connect_link("shop", CALLBACK))  # shop's grant
    with pytest.raises(AuthError) as err:
        await a.complete_connect("new", query)
    text = err.value.explanation
    shop, new = a.apps["shop"].appid, a.apps["new"].appid
    assert f"is {shop}, not new ({new})" in text and "nothing was kept" in text
    assert "`connect new wechat`" in text
    assert vault.values == {}
    with pytest.raises(AuthError, match="`connect new wechat`"):
        await a.upload("new", "1.0.0", "n")


async def test_unclear_connect_of_an_unauthorized_mini_program_did_not_happen(
    world: World,
) -> None:
    vault = MemoryVault()
    a = with_new_app(world, vault)
    query = await authorize_in_browser(await a.connect_link("new", CALLBACK))
    emu(world).revoke(a.apps["new"].appid)
    emu(world).inject("/cgi-bin/component/api_query_auth", "busy")
    with pytest.raises(PlatformUnavailable, match="did not happen") as err:
        await a.complete_connect("new", query)
    assert not isinstance(err.value, OutcomeUnknown) and vault.values == {}


async def test_connect_keeps_the_grant_in_memory_when_the_vault_fails(world: World) -> None:
    a = with_new_app(world, FailingVault())
    query = await authorize_in_browser(await a.connect_link("new", CALLBACK))
    with pytest.raises(ConfigError, match="MINISHIP_SECRET_KEY") as err:
        await a.complete_connect("new", query)
    assert "disk full" not in str(err.value) and "refreshtoken@@@" not in str(err.value)
    world.clock.advance(7200)  # the access token expired: renewed with the refresh token
    assert (await a.overview("new")).trial_version is None
    assert emu(world).calls[AUTHORIZER] == 1


# --------------------------------------------------------------------------- refresh tokens


async def test_rotated_refresh_tokens_are_followed_and_kept(world: World) -> None:
    a, app, e = wx(world), world.app, emu(world)
    e.rotate_refresh_tokens = True
    configured = a.apps[app].refresh_token.get_secret_value()
    vault = MemoryVault()
    a.vault = vault
    await a.overview(app)
    kept = vault.values["wechat", f"refresh_token:{a.apps[app].appid}"]
    assert kept == program(world).refresh_token and kept != configured
    world.clock.advance(7200)  # renewed with the rotated token: the configured one is refused
    with recording() as log:
        await a.overview(app)
    assert [x.answer.get("errcode") for x in log if x.api == f"POST {AUTHORIZER}"] == [None]
    restarted = WeChatPlatform(a.settings, a.apps, sender=a.sender, clock=world.clock)
    restarted.vault = vault
    assert (await restarted.overview(app)).live_version is None
    assert vault.values["wechat", f"refresh_token:{a.apps[app].appid}"] == (
        program(world).refresh_token
    )


async def test_a_rotation_whose_answer_was_lost_is_recovered(world: World) -> None:
    a, app, e = wx(world), world.app, emu(world)
    e.rotate_refresh_tokens = True
    a.sleep = FakeSleep(world.clock)
    vault = MemoryVault()
    a.vault = vault
    e.inject(AUTHORIZER, "malformed")  # rotated, the answer cut short: asked again (a read)
    with recording() as log:
        assert (await a.overview(app)).live_version is None
    renewals = [x.answer.get("errcode") for x in log if x.api == f"POST {AUTHORIZER}"]
    assert renewals == [None, 61023, None]  # cut short, the old token, the recovered one
    info = "POST /cgi-bin/component/api_get_authorizer_info"
    assert [x.api for x in log].count(info) == 1
    appid = a.apps[app].appid
    assert vault.values["wechat", f"refresh_token:{appid}"] == program(world).refresh_token


async def test_no_newer_refresh_token_means_reauthorize() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == COMPONENT:
            return httpx.Response(200, json={"component_access_token": "C"})
        if request.url.path == AUTHORIZER:
            return httpx.Response(
                200, json={"errcode": 61023, "errmsg": "refresh_token is invalid"}
            )
        info = {"authorizer_appid": APPID, "authorizer_refresh_token": "r1"}  # the refused one
        return httpx.Response(200, json={"authorization_info": info})

    async with mocked(handle) as a:
        with pytest.raises(AuthError) as err:
            await a.overview("shop")
    assert err.value.code == "61023" and "`connect <app> wechat`" in err.value.explanation
    assert seen.count("/cgi-bin/component/api_get_authorizer_info") == 1
    assert seen.count(AUTHORIZER) == 1


# --------------------------------------------------------------------------- small things


async def test_secrets_stay_out_of_the_adapters_repr(world: World) -> None:
    a, app, e = wx(world), world.app, emu(world)
    e.rotate_refresh_tokens = True
    await a.overview(app)
    text = repr(vars(a))
    assert e.tokens and not [t for t in e.issued_secrets() if t in text]


async def test_an_older_ticket_push_is_ignored(world: World) -> None:
    a, e = wx(world), emu(world)
    vault = MemoryVault()
    a.vault = vault
    e.push_url = "http://127.0.0.1:9/push/wechat"
    pushes = []
    for _ in range(2):
        (push,) = e.due_pushes()
        assert push.delivered is not None
        push.delivered()
        pushes.append(push)
        world.clock.advance(601)
    older, newer = (PushRequest({"appid": "auth"}, p.params, p.body) for p in pushes)
    await a.read_push(newer)
    (event,) = await a.read_push(older)  # replayed: read, but not used
    assert event.kind == "verify_ticket"
    assert a.verify_ticket is not None
    assert a.verify_ticket.get_secret_value() == e.component.verify_ticket
    assert vault.values["wechat", "component_verify_ticket"] == e.component.verify_ticket


async def test_decided_at_stays_between_polls(world: World) -> None:
    a, app = wx(world), world.app
    ref = await approved(world)
    first = (await a.review_status(app, "1.0.0", ref)).decided_at
    world.clock.advance(3600)
    again = (await a.review_status(app, "1.0.0", ref)).decided_at
    assert first is not None and again == first


async def test_direct_upload_timeout_is_an_unclear_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def too_slow(*args: Any, **kwargs: Any) -> str:
        raise PlatformUnavailable(
            "wechat", "", "", "miniprogram-ci did not finish within 600 s and was stopped."
        )

    monkeypatch.setattr(cli, "run", too_slow)
    async with direct(tmp_path, monkeypatch) as a:
        with recording() as log, pytest.raises(OutcomeUnknown, match="did not finish") as err:
            await a.upload("shop", "2.1.0", "n")
    assert isinstance(err.value.original, PlatformUnavailable)
    assert log[0].api == "miniprogram-ci upload" and "did not finish" in log[0].error


# --------------------------------------------------------------------------- emulator


async def test_emulator_tickets_expire_after_12_hours(world: World, raw: Raw) -> None:
    a, e = wx(world), emu(world)
    configured = raw.component_body()["component_verify_ticket"]
    e.push_url = "http://127.0.0.1:9/push/wechat"
    (push,) = e.due_pushes()  # a new ticket: the configured one is a previous one now
    assert push.delivered is not None
    push.delivered()
    assert "component_access_token" in await raw.json("POST", COMPONENT, body=raw.component_body())
    world.clock.advance(12 * 3600)
    expired = await raw.json("POST", COMPONENT, body=raw.component_body())
    assert expired["errcode"] == 61005
    with pytest.raises(AuthError) as err:  # the adapter has only the configured ticket
        await a.overview(world.app)
    assert err.value.code == "61005" and "12 h" in err.value.explanation
    (push,) = e.due_pushes()  # the next ticket push (one 12 h old is refused as a replay)
    assert push.delivered is not None
    push.delivered()
    await a.read_push(PushRequest({"appid": "auth"}, push.params, push.body))
    assert (await a.overview(world.app)).live_version is None  # the pushed one is current
    world.clock.advance(12 * 3600)
    e.due_pushes()  # a newer ticket; those issued more than 24 h ago are forgotten
    body = raw.component_body(component_verify_ticket=configured)
    assert (await raw.json("POST", COMPONENT, body=body))["errcode"] == 61006


async def test_emulator_minute_limit_and_invalid_token_faults(
    world: World, raw: Raw, sleeps: list[float]
) -> None:
    a, app, e = wx(world), world.app, emu(world)
    await a.overview(app)
    e.inject("/wxa/getversioninfo", "rate_limit_minute")
    with pytest.raises(QuotaExceeded) as err:
        await a.overview(app)
    assert err.value.code == "45011" and err.value.retry_after == 60.0 and sleeps == []
    e.inject("/wxa/getversioninfo", "invalid_token")  # 40014: renewed, asked once more
    with recording() as log:
        assert (await a.overview(app)).live_version is None
    apis = [x.api for x in log]
    assert apis[:3] == [
        "POST /wxa/getversioninfo",
        f"POST {AUTHORIZER}",
        "POST /wxa/getversioninfo",
    ]
    assert log[0].answer["errcode"] == 40014
    ok = await raw.client.post(
        f"{raw.base}/_emulator/inject",
        json={"api": "/wxa/getversioninfo", "fault": "rate_limit_minute"},
    )
    assert ok.json() == {"ok": True}
    assert (await raw.wxa("POST", "/wxa/getversioninfo", {}))["errcode"] == 45011
    with pytest.raises(ValueError, match="rate_limit_minute"):
        e.inject("*", "melt")
    with pytest.raises(ValueError, match="at least 1"):
        e.inject("*", "invalid_token", times=0)


# --------------------------------------------------------------------------- rejection screenshots

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32 + b"IEND\xaeB`\x82"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32 + b"\xff\xd9"


async def rejected(world: World, version: str = "1.0.0") -> str:
    return await approved(world, version, "please #reject")


def test_media_ids_are_read_from_every_shape() -> None:
    assert media_ids("xxx|yyy|zzz") == ("xxx", "yyy", "zzz")
    assert media_ids(" a | b ||a|") == ("a", "b")  # blanks and repeats left out
    assert media_ids("") == () and media_ids(None) == () and media_ids("|") == ()
    assert media_ids(123456) == ("123456",)  # "treat ids as numbers but accept strings"
    assert media_ids(["m1", 2, "", None, "m1|m3"]) == ("m1", "2", "m3")
    assert media_ids(True) == () and media_ids({"id": "x"}) == ()


@pytest.mark.parametrize("key", ["screenshot", "ScreenShot", "SCREENSHOT"])
async def test_screenshots_are_read_in_either_spelling(key: str) -> None:
    answers = {
        "/wxa/get_auditstatus": {"errcode": 0, "status": 1, "reason": "r", key: "m1|m2"},
        "/wxa/get_latest_auditstatus": {
            "errcode": 0,
            "auditid": 7,
            "status": 1,
            "reason": "r",
            key: "m3",
        },
        "/wxa/getversioninfo": {"errcode": 0, "release_info": {}, "exp_info": {}},
        "/wxa/queryquota": {"errcode": 0},
        "/wxa/getgrayreleaseplan": {"errcode": 0},
    }
    async with mocked(tokens_then(answers)) as a:
        status = await a.review_status("shop", "1.0.0", "7")
        assert status.state is ReviewState.REJECTED and status.screenshots == ("m1", "m2")
        assert "m1|m2" in status.detail
        overview = await a.overview("shop")
        assert overview.review is not None and overview.review.screenshots == ("m3",)


@pytest.mark.parametrize("given", [{"screenshot": ""}, {"ScreenShot": " | "}, {}])
async def test_no_screenshots_means_none(given: dict[str, str]) -> None:
    seen: list[httpx.Request] = []
    answers = {"/wxa/get_auditstatus": {"errcode": 0, "status": 1, "reason": "r", **given}}
    async with mocked(tokens_then(answers, seen)) as a:
        status = await a.review_status("shop", "1.0.0", "7")
        assert status.state is ReviewState.REJECTED and status.screenshots == ()
        assert "screenshots" not in status.detail
        assert await a.review_images("shop", "1.0.0", "7") == []
    assert not [r for r in seen if r.url.path == "/cgi-bin/material/get_material"]


async def test_review_images_fetch_the_screenshots(world: World) -> None:
    a, app = wx(world), world.app
    ref = await rejected(world)
    status = await a.review_status(app, "1.0.0", ref)
    assert status.state is ReviewState.REJECTED and len(status.screenshots) == 2
    with recording() as log:
        images = await a.review_images(app, "1.0.0", ref)
    assert [i.source for i in images] == list(status.screenshots)
    for n, image in enumerate(images, 1):
        assert isinstance(image, ReviewImage) and image.url == ""
        assert image.mime == "image/png" and image.extension == "png"
        assert image.image.startswith(b"\x89PNG") and image.title.startswith(
            f"WeChat review screenshot {n} of 2"
        )
        picture = Image.open(io.BytesIO(image.image))
        assert picture.format == "PNG" and picture.width > 100
    fetched = [x for x in log if x.api == "POST /cgi-bin/material/get_material"]
    assert [x.request["media_id"] for x in fetched] == list(status.screenshots)
    assert all(x.request["access_token"] == "***" for x in fetched)
    assert fetched[0].answer == {"content_type": "image/png", "bytes": len(images[0].image)}


async def test_review_images_of_an_undecided_or_unknown_audit(world: World) -> None:
    a, app = wx(world), world.app
    await a.upload(app, "1.0.0", "please #reject")
    ref = (await a.submit(app, "1.0.0", "please #reject")).ref
    assert await a.review_images(app, "1.0.0", ref) == []  # still in review
    assert await a.review_images(app, "1.0.0", "12345") == []  # 85012
    with pytest.raises(InvalidInput):
        await a.review_images(app, "1.0.0", "not-a-number")
    with pytest.raises(ConfigError, match=r"\[apps\.nope\.wechat\]"):
        await a.review_images("nope", "1.0.0", ref)


async def test_a_screenshot_that_cannot_be_fetched_is_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fetched: list[str] = []

    def material(request: httpx.Request) -> httpx.Response:
        media_id = json.loads(request.content)["media_id"]
        fetched.append(media_id)
        if media_id == "gone":
            return httpx.Response(200, json={"errcode": 40007, "errmsg": "invalid media_id"})
        if media_id == "news":  # another kind of material: JSON without errcode
            return httpx.Response(200, json={"news_item": [{"title": "t"}]})
        if media_id == "cut":  # cut short, whatever is tried
            return httpx.Response(200, content=PNG[:20], headers={"content-type": "image/png"})
        return httpx.Response(200, content=JPEG, headers={"content-type": "image/jpeg"})

    answers = {
        "/wxa/get_auditstatus": {
            "errcode": 0,
            "status": 1,
            "reason": "r",
            "screenshot": "ok1|gone|news|cut|ok2",
        },
        "/cgi-bin/material/get_material": material,
    }
    async with mocked(tokens_then(answers)) as a:
        with caplog.at_level("WARNING", logger="platforms.wechat.screenshots"):
            images = await a.review_images("shop", "1.0.0", "7")
    assert [i.source for i in images] == ["ok1", "ok2"]
    assert [i.mime for i in images] == ["image/jpeg", "image/jpeg"]
    assert images[1].title == "WeChat review screenshot 5 of 5 (audit 7)"
    assert fetched == ["ok1", "gone", "news", "cut", "ok2"]  # max_retries 0: cut asked once
    warned = "\n".join(r.getMessage() for r in caplog.records)
    assert "gone" in warned and "40007" in warned and "news" in warned and "cut" in warned


async def test_at_most_five_screenshots_are_fetched() -> None:
    fetched: list[str] = []

    def material(request: httpx.Request) -> httpx.Response:
        fetched.append(json.loads(request.content)["media_id"])
        return httpx.Response(200, content=PNG)  # no Content-Type: the magic bytes tell

    ids = "|".join(f"m{n}" for n in range(1, 8))
    answers = {
        "/wxa/get_auditstatus": {"errcode": 0, "status": "1", "ScreenShot": ids},
        "/cgi-bin/material/get_material": material,
    }
    async with mocked(tokens_then(answers)) as a:
        status = await a.review_status("shop", "1.0.0", "7")
        images = await a.review_images("shop", "1.0.0", "7")
    assert len(status.screenshots) == 7  # what WeChat said, all of it
    assert len(images) == REVIEW_IMAGES_MAX == 5 and fetched == ["m1", "m2", "m3", "m4", "m5"]
    assert all(i.mime == "image/png" for i in images)


async def test_a_failing_audit_status_fails_review_images() -> None:
    answers = {"/wxa/get_auditstatus": {"errcode": 61007, "errmsg": "api unauthorized"}}
    async with mocked(tokens_then(answers)) as a:
        with pytest.raises(AuthError):
            await a.review_images("shop", "1.0.0", "7")


async def test_review_images_of_a_direct_app_are_unsupported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with direct(tmp_path, monkeypatch) as a:
        with pytest.raises(Unsupported, match=r"mp\.weixin\.qq\.com"):
            await a.review_images("shop", "1.0.0", "1")


async def test_the_audit_push_names_the_same_screenshots(world: World) -> None:
    a, e = wx(world), emu(world)
    ref = await rejected(world)
    e.push_url = "http://127.0.0.1:9/push/wechat"
    push = next(p for p in e.due_pushes() if p.key.startswith("audit:"))
    q = push.params
    fields = a._crypto().decrypt_push(
        push.body, msg_signature=q["msg_signature"], timestamp=q["timestamp"], nonce=q["nonce"]
    )
    assert fields["Event"] == "weapp_audit_fail"
    status = await a.review_status(world.app, "1.0.0", ref)
    assert media_ids(fields["ScreenShot"]) == status.screenshots and status.screenshots


async def test_emulator_material_answers(world: World, raw: Raw) -> None:
    path = "/cgi-bin/material/get_material"
    ref = await rejected(world)
    media = (await raw.wxa("POST", "/wxa/get_auditstatus", {"auditid": int(ref)}))["screenshot"]
    first, second = media.split("|")
    atok = await raw.atok()
    shot = await raw.call("POST", path, query={"access_token": atok}, body={"media_id": first})
    assert shot.status_code == 200 and shot.headers["content-type"] == "image/png"
    assert shot.headers["content-disposition"] == f'attachment; filename="{first}.png"'
    assert shot.content.startswith(b"\x89PNG") and b"IEND" in shot.content[-16:]
    again = await raw.call("POST", path, query={"access_token": atok}, body={"media_id": first})
    assert again.content == shot.content
    other = await raw.call("POST", path, query={"access_token": atok}, body={"media_id": second})
    assert other.content != shot.content
    for body, errcode in [
        ({"media_id": "emu_1_1"}, 40007),
        ({"media_id": f"emu_{ref}_3"}, 40007),
        ({"media_id": "nope"}, 40007),
        ({}, 47001),
    ]:
        assert (await raw.wxa("POST", path, body))["errcode"] == errcode
    assert (await raw.wxa("GET", path))["errcode"] == 43002
    # an audit still in review has no screenshots to give
    await wx(world).upload(world.app, "1.1.0", "please #reject")
    pending = (await wx(world).submit(world.app, "1.1.0", "please #reject")).ref
    assert (await raw.wxa("POST", path, {"media_id": f"emu_{pending}_1"}))["errcode"] == 40007


def test_invalid_media_id_is_not_found() -> None:
    error = error_for(40007, "invalid media_id rid: 6613f2a1-1c2b3d4e-5f6a7b8c")
    assert isinstance(error, NotFound) and "media id" in error.explanation
