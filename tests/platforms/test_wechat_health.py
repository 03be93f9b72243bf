"""WeChat's JS error reports per version (jserr_list, jserr_detail): the emulator's wire
format and figures, the adapter's paging and typed errors, and the gray plan's own rules
(only up, revert, released to everyone after 15 days)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta

import httpx
import pytest

import platforms.wechat.health as health
from platforms.alipay import AlipayPlatform
from platforms.base import BEIJING
from platforms.emulators.wechat.health import CRASH_MARK
from platforms.errors import BadResponse, InvalidInput, PlatformUnavailable, Unsupported
from tests.helpers import FakeSleep, World, open_world
from tests.platforms.test_wechat import Raw, approved, emu, program, released, wx

DAY = 86400.0
LIST = "/wxaapi/log/jserr_list"
DETAIL = "/wxaapi/log/jserr_detail"


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with open_world("wechat") as w:
        yield w


@pytest.fixture
async def raw(world: World) -> AsyncIterator[Raw]:
    async with httpx.AsyncClient(timeout=2.0) as client:
        yield Raw(world, client)


def today(world: World) -> date:
    return datetime.fromtimestamp(world.clock(), BEIJING).date()


def list_body(day: date, version: str, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "appVersion": version,
        "errType": "0",
        "startTime": day.isoformat(),
        "endTime": day.isoformat(),
        "keyword": "",
        "openid": "",
        "orderby": "uv",
        "desc": "1",
        "offset": 0,
        "limit": 30,
    }
    return {**body, **changes}


async def gray_at(world: World, percent: int, notes: str = "notes") -> None:
    """1.0.0 live, 1.1.0 (with ``notes``) released to ``percent`` % of users."""
    await released(world, "1.0.0")
    await approved(world, "1.1.0", notes)
    await wx(world).gray(world.app, "1.1.0", percent)


async def test_jserr_list_wire_format_and_figures_follow_the_share(world: World, raw: Raw) -> None:
    await gray_at(world, 10)
    world.clock.advance(3 * 3600)
    day = today(world)
    new = await raw.wxa("POST", LIST, list_body(day, "1.1.0"))
    old = await raw.wxa("POST", LIST, list_body(day, "1.0.0"))
    assert new["errcode"] == 0 and isinstance(new["totalCount"], int)
    row = new["data"][0]
    assert set(row) == {
        "errorMsgMd5",
        "errorMsg",
        "errorStackMd5",
        "errorStack",
        "uv",
        "pv",
        "uvPercent",
        "pvPercent",
    }
    assert isinstance(row["uv"], int) and row["uvPercent"].endswith("%")
    assert [r["uv"] for r in new["data"]] == sorted((r["uv"] for r in new["data"]), reverse=True)
    new_users = sum(r["uv"] for r in new["data"])
    old_users = sum(r["uv"] for r in old["data"])
    assert new_users > 0 and old_users > 0
    # the same everyday errors, in proportion to the users on each version (10 : 90 for
    # these three hours; the old version had everyone before)
    assert {r["errorMsgMd5"] for r in new["data"]} <= {r["errorMsgMd5"] for r in old["data"]}
    assert new_users * 5 < old_users
    # asking again gives the same figures: the clock decides them
    assert await raw.wxa("POST", LIST, list_body(day, "1.1.0")) == new


async def test_a_crashy_version_errs_far_more_than_its_predecessor(world: World, raw: Raw) -> None:
    await gray_at(world, 10, f"new cart {CRASH_MARK}")
    world.clock.advance(3600)
    day = today(world)
    new = await raw.wxa("POST", LIST, list_body(day, "1.1.0"))
    old = await raw.wxa("POST", LIST, list_body(day, "1.0.0"))
    per_share_new = sum(r["uv"] for r in new["data"]) / 0.10
    per_share_old = sum(r["uv"] for r in old["data"]) / 0.90
    assert per_share_new > 20 * per_share_old
    crash = new["data"][0]
    assert crash["errorMsg"] == "TypeError: Cannot read property 'id' of undefined"
    assert crash["errorMsgMd5"] not in {r["errorMsgMd5"] for r in old["data"]}


async def test_jserr_list_paging_filters_and_refusals(world: World, raw: Raw) -> None:
    await gray_at(world, 50, CRASH_MARK)
    world.clock.advance(3600)
    day = today(world)
    whole = await raw.wxa("POST", LIST, list_body(day, "1.1.0"))
    assert whole["totalCount"] == len(whole["data"]) == 4
    page = await raw.wxa("POST", LIST, list_body(day, "1.1.0", offset=1, limit=2))
    assert page["totalCount"] == 4 and page["data"] == whole["data"][1:3]
    rising = await raw.wxa("POST", LIST, list_body(day, "1.1.0", desc="2"))
    assert rising["data"] == list(reversed(whole["data"]))
    found = await raw.wxa("POST", LIST, list_body(day, "1.1.0", keyword="request:fail"))
    assert [r["errorMsg"] for r in found["data"]] == ["Error: request:fail timeout"]
    assert (await raw.wxa("POST", LIST, list_body(day, "1.1.0", errType="2")))["data"] == []
    every = await raw.wxa("POST", LIST, list_body(day, "0"))  # "0": every version
    assert sum(r["uv"] for r in every["data"]) >= sum(r["uv"] for r in whole["data"])
    future = day + timedelta(days=3)
    assert (await raw.wxa("POST", LIST, list_body(future, "1.1.0")))["totalCount"] == 0
    for bad in (
        {"limit": 31},
        {"limit": 0},
        {"orderby": "time"},
        {"desc": "0"},
        {"startTime": "2026-1-1"},
    ):
        answer = await raw.wxa("POST", LIST, list_body(day, "1.1.0", **bad))
        assert answer["errcode"] == 40097, bad


async def test_jserr_detail_wire_format(world: World, raw: Raw) -> None:
    await gray_at(world, 20, CRASH_MARK)
    world.clock.advance(3600)
    day = today(world)
    crash = (await raw.wxa("POST", LIST, list_body(day, "1.1.0")))["data"][0]
    body = {
        "startTime": day.isoformat(),
        "endTime": day.isoformat(),
        "errorMsgMd5": crash["errorMsgMd5"],
        "errorStackMd5": crash["errorStackMd5"],
        "appVersion": "1.1.0",
        "sdkVersion": "0",
        "osName": "0",
        "clientVersion": "0",
        "openid": "",
        "offset": 0,
        "limit": 20,
        "desc": "1",  # jserr_detail: 1 descending, 0 ascending
    }
    detail = await raw.wxa("POST", DETAIL, body)
    assert detail["errcode"] == 0 and detail["totalCount"] >= len(detail["data"]) == 20
    one = detail["data"][0]
    for name in ("Count", "ClientVersion", "OsName", "Ds", "TimeStamp", "openId", "DeviceModel"):
        assert name in one  # WeChat's mixed casing, as it writes it
    assert isinstance(one["Count"], str) and one["appVersion"] == "1.1.0"
    assert one["route"] == "pages/cart/cart" and one["Ds"] == day.isoformat()
    stamps = [d["TimeStamp"] for d in detail["data"]]
    assert stamps == sorted(stamps, reverse=True)
    ios = await raw.wxa("POST", DETAIL, {**body, "osName": "2"})
    assert {d["OsName"] for d in ios["data"]} == {"2"}
    assert (await raw.wxa("POST", DETAIL, {**body, "desc": "2"}))["errcode"] == 40097


async def test_the_adapter_reads_every_page(world: World) -> None:
    await gray_at(world, 30, CRASH_MARK)
    world.clock.advance(3600)
    day = today(world)
    calls = emu(world).calls[LIST]
    report = await wx(world).js_errors(world.app, "1.1.0", day, day)
    assert report.complete and len(report.errors) == 4
    assert report.users == sum(e.users for e in report.errors)
    assert report.errors[0].first_stack_line == "at pages/cart/cart.js:3:120"
    assert emu(world).calls[LIST] == calls + 1
    # a page of one row at a time: the same report, asked in four pages (at most 30 each
    # is WeChat's limit; the adapter keeps asking while rows are missing)
    original = health.PAGE
    health.PAGE = 1
    try:
        paged = await wx(world).js_errors(world.app, "1.1.0", day, day)
        cut = await wx(world).js_errors(world.app, "1.1.0", day, day, pages=2)
    finally:
        health.PAGE = original
    assert paged.errors == report.errors and paged.complete
    assert len(cut.errors) == 2 and not cut.complete


async def test_the_adapter_types_its_errors(world: World) -> None:
    await gray_at(world, 30)
    day = today(world)
    with pytest.raises(InvalidInput):
        await wx(world).js_errors(world.app, "1.1.0", day, day - timedelta(days=1))
    with pytest.raises(InvalidInput):
        await wx(world).js_errors(world.app, "0", day, day)
    wx(world).sleep = FakeSleep(world.clock)
    emu(world).inject(LIST, "busy", times=wx(world).settings.max_retries + 1)
    with pytest.raises(PlatformUnavailable):
        await wx(world).js_errors(world.app, "1.1.0", day, day)
    emu(world).inject(LIST, "malformed")  # a read: asked again, as WeChat is busy
    assert (await wx(world).js_errors(world.app, "1.1.0", day, day)).version == "1.1.0"
    with pytest.raises(BadResponse):  # an answer without its counts
        health._error_from({"errorMsg": "x", "uv": "many"}, "POST " + LIST)


async def test_alipay_says_it_has_no_error_report() -> None:
    assert AlipayPlatform.reports_errors is False
    async with open_world("alipay") as w:
        with pytest.raises(Unsupported, match="per-version error report"):
            await w.adapter.js_errors(w.app, "1.0.0", date(2026, 12, 4), date(2026, 12, 4))


async def test_a_gray_plan_goes_to_everyone_after_15_days(world: World) -> None:
    await gray_at(world, 10)
    with pytest.raises(InvalidInput):  # only up
        await wx(world).gray(world.app, "1.1.0", 5)
    world.clock.advance(14 * DAY)
    assert (await wx(world).overview(world.app)).gray is not None
    world.clock.advance(DAY)
    overview = await wx(world).overview(world.app)
    assert overview.gray is None and overview.live_version == "1.1.0"
    assert program(world).gray.status == 3  # finished
