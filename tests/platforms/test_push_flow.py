"""Emulators push decided reviews (and WeChat verify tickets); adapters read the pushes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

import pytest
from aiohttp import web

from platforms.push import PushRejected, PushRequest
from platforms.wechat import WeChatPlatform
from tests.helpers import World, open_world


@dataclass
class Receiver:
    """A loopback push endpoint that records every POST and answers ``answer``."""

    answer: str = "success"
    posts: list[PushRequest] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append(
            PushRequest(
                path=dict(request.match_info),
                query=dict(request.query),
                body=await request.read(),
                content_type=request.content_type,
            )
        )
        return web.Response(text=self.answer)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/push/wechat/{appid}", rec.handle)
    app.router.add_post("/push/alipay", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/push"
    try:
        yield rec
    finally:
        await runner.cleanup()


async def _submit(world: World, notes: str) -> None:
    await world.adapter.upload(world.app, "1.0.0", notes)
    await world.adapter.submit(world.app, "1.0.0", notes)


def _audits(rec: Receiver) -> list[PushRequest]:
    return [p for p in rec.posts if p.path.get("appid") != "auth"]


# --------------------------------------------------------------------------- WeChat


async def test_wechat_rejection_pushed_once_and_read(receiver: Receiver) -> None:
    async with open_world("wechat") as w:
        w.emulator.push_url = receiver.url + "/wechat"
        await _submit(w, "please #reject")
        assert await w.emulator.deliver_pushes() == 1  # the first verify ticket only
        assert _audits(receiver) == []
        w.decide_reviews()
        assert await w.emulator.deliver_pushes() == 1
        assert await w.emulator.deliver_pushes() == 0
        (push,) = _audits(receiver)
        assert push.path["appid"] == w.adapter.app("shop").appid
        (event,) = await w.adapter.read_push(push)
        assert event.platform == "wechat"
        assert event.kind == "rejected"
        assert event.app == "shop"
        assert "#reject" in event.reason
        assert event.at is not None


async def test_wechat_approval_resolved_by_original_id(receiver: Receiver) -> None:
    async with open_world("wechat") as w:
        w.emulator.push_url = receiver.url + "/wechat"
        await _submit(w, "fine")
        w.decide_reviews()
        assert await w.emulator.deliver_pushes() == 2
        (push,) = _audits(receiver)
        (event,) = await w.adapter.read_push(PushRequest({}, push.query, push.body))
        assert (event.kind, event.app, event.reason) == ("approved", "shop", "")


async def test_wechat_tampered_push_rejected(receiver: Receiver) -> None:
    async with open_world("wechat") as w:
        w.emulator.push_url = receiver.url + "/wechat"
        await _submit(w, "notes")
        w.decide_reviews()
        await w.emulator.deliver_pushes()
        (push,) = _audits(receiver)
        body = push.body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[AAAA", 1)
        with pytest.raises(PushRejected):
            await w.adapter.read_push(PushRequest(push.path, push.query, body))
        query = {**push.query, "msg_signature": "0" * 40}
        with pytest.raises(PushRejected):
            await w.adapter.read_push(PushRequest(push.path, query, push.body))


async def test_wechat_unanswered_push_delivered_again(receiver: Receiver) -> None:
    async with open_world("wechat") as w:
        w.emulator.push_url = receiver.url + "/wechat"
        await _submit(w, "notes")
        w.decide_reviews()
        receiver.answer = "fail"
        assert await w.emulator.deliver_pushes() == 0
        assert len(_audits(receiver)) == 1
        receiver.answer = "success"
        assert await w.emulator.deliver_pushes() == 2  # the ticket and the audit result
        assert len(_audits(receiver)) == 2
        assert await w.emulator.deliver_pushes() == 0


async def test_wechat_ticket_push_feeds_component_token(receiver: Receiver) -> None:
    async with open_world("wechat") as w:
        adapter = w.adapter
        assert isinstance(adapter, WeChatPlatform)
        configured = adapter.verify_ticket
        assert configured is not None
        await adapter.overview("shop")  # a component token from the configured ticket
        w.emulator.push_url = receiver.url + "/wechat"
        assert await w.emulator.deliver_pushes() == 1
        assert await w.emulator.deliver_pushes() == 0  # the next one is 600 s away
        w.clock.advance(601)
        assert await w.emulator.deliver_pushes() == 1
        tickets = [p for p in receiver.posts if p.path["appid"] == "auth"]
        assert len(tickets) == 2
        for push in tickets:
            (event,) = await adapter.read_push(push)
            assert event.kind == "verify_ticket"
            assert event.app is None
        newest = adapter.verify_ticket
        assert newest is not None
        assert newest.get_secret_value() != configured.get_secret_value()
        assert newest.get_secret_value() == w.emulator.component.verify_ticket  # type: ignore[attr-defined]
        assert "ticket@@@" not in repr(event)
        # only the newest ticket is accepted from now on
        w.emulator.previous_tickets.clear()  # type: ignore[attr-defined]
        w.clock.advance(7200)
        calls = w.emulator.calls["/cgi-bin/component/api_component_token"]  # type: ignore[attr-defined]
        await adapter.overview("shop")
        assert w.emulator.calls["/cgi-bin/component/api_component_token"] == calls + 1  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- Alipay


async def test_alipay_rejection_pushed_once_and_read(receiver: Receiver) -> None:
    async with open_world("alipay") as w:
        w.emulator.push_url = receiver.url + "/alipay"
        await _submit(w, "please #reject")
        assert await w.emulator.deliver_pushes() == 0
        w.decide_reviews()
        assert await w.emulator.deliver_pushes() == 1
        assert await w.emulator.deliver_pushes() == 0
        (push,) = receiver.posts
        assert push.content_type == "application/x-www-form-urlencoded"
        (event,) = await w.adapter.read_push(push)
        assert event.platform == "alipay"
        assert (event.kind, event.app, event.version) == ("rejected", "shop", "1.0.0")
        assert "#reject" in event.reason
        assert event.at is not None


async def test_alipay_approval_pushed_and_read(receiver: Receiver) -> None:
    async with open_world("alipay") as w:
        w.emulator.push_url = receiver.url + "/alipay"
        await _submit(w, "fine")
        w.decide_reviews()
        assert await w.emulator.deliver_pushes() == 1
        (event,) = await w.adapter.read_push(receiver.posts[0])
        assert (event.kind, event.app, event.reason) == ("approved", "shop", "")


async def test_alipay_tampered_push_rejected(receiver: Receiver) -> None:
    async with open_world("alipay") as w:
        w.emulator.push_url = receiver.url + "/alipay"
        await _submit(w, "fine")
        w.decide_reviews()
        await w.emulator.deliver_pushes()
        (push,) = receiver.posts
        params = dict(parse_qsl(push.body.decode()))
        forged = {**params, "biz_content": params["biz_content"].replace("1.0.0", "9.9.9")}
        with pytest.raises(PushRejected):
            await w.adapter.read_push(PushRequest({}, {}, urlencode(forged).encode()))
        bad_sign = {**params, "sign": params["sign"][:-8] + "AAAAAAA="}
        with pytest.raises(PushRejected):
            await w.adapter.read_push(PushRequest({}, {}, urlencode(bad_sign).encode()))
        unsigned = {k: v for k, v in params.items() if k != "sign"}
        with pytest.raises(PushRejected):
            await w.adapter.read_push(PushRequest({}, {}, urlencode(unsigned).encode()))


async def test_alipay_unanswered_push_delivered_again(receiver: Receiver) -> None:
    async with open_world("alipay") as w:
        w.emulator.push_url = receiver.url + "/alipay"
        await _submit(w, "fine")
        w.decide_reviews()
        receiver.answer = "fail"
        assert await w.emulator.deliver_pushes() == 0
        receiver.answer = "success"
        assert await w.emulator.deliver_pushes() == 1
        assert await w.emulator.deliver_pushes() == 0
        assert len(receiver.posts) == 2
        events = [await w.adapter.read_push(p) for p in receiver.posts]
        assert [e.kind for (e,) in events] == ["approved", "approved"]


# --------------------------------------------------------------------------- both


@pytest.mark.parametrize("name", ["wechat", "alipay"])
async def test_background_pusher_and_snapshot(receiver: Receiver, name: str) -> None:
    async with open_world(name) as w:
        w.emulator.push_url = f"{receiver.url}/{name}"
        await _submit(w, "fine")
        w.decide_reviews()
        w.emulator.start_pushing(interval=0.01)
        for _ in range(200):
            if _audits(receiver):
                break
            await asyncio.sleep(0.01)
        await w.server.stop()  # stops the pusher too
        assert w.emulator._pusher is None
        assert len(_audits(receiver)) == 1
        pushed = w.emulator.snapshot()
        assert w.emulator.pushed
        restored = type(w.emulator)(clock=w.clock, review_seconds=w.emulator.review_seconds)
        restored.restore(pushed)
        assert restored.pushed == w.emulator.pushed
        restored.push_url = w.emulator.push_url
        assert await restored.deliver_pushes() == 0
