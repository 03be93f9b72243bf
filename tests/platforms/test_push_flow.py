"""Emulators push decided reviews (and WeChat verify tickets); adapters read the pushes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

import pytest
from aiohttp import web

from platforms.push import PushRejected, PushRequest, PushStale
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


# --------------------------------------------------------------------------- replays


async def test_wechat_a_push_keeps_its_name_however_it_is_dressed(receiver: Receiver) -> None:
    async with open_world("wechat") as w:
        w.emulator.push_url = receiver.url + "/wechat"
        await _submit(w, "fine")
        w.decide_reviews()
        await w.emulator.deliver_pushes()
        (push,) = _audits(receiver)
        (event,) = await w.adapter.read_push(push)
        (again,) = await w.adapter.read_push(push)
        assert len(event.push_id) == 64 and again.push_id == event.push_id
        # what WeChat did not sign can change: the same push all the same
        query = {**push.query, "msg_signature": push.query["msg_signature"].upper()}
        query["signature"] = "0" * 40
        body = push.body.replace(b"<xml>", b'<?xml version="1.0"?>\n<xml>\n', 1)
        (dressed,) = await w.adapter.read_push(PushRequest(push.path, query, body))
        assert dressed.push_id == event.push_id
        # another push (another nonce) is another name
        await _submit_next(w, "1.0.1")
        w.decide_reviews()
        await w.emulator.deliver_pushes()
        (event2,) = await w.adapter.read_push(_audits(receiver)[-1])
        assert event2.push_id not in ("", event.push_id)


async def test_wechat_a_push_is_read_only_near_the_time_it_was_sent(receiver: Receiver) -> None:
    async with open_world("wechat") as w:
        w.emulator.push_url = receiver.url + "/wechat"
        await _submit(w, "fine")
        w.decide_reviews()
        await w.emulator.deliver_pushes()
        (push,) = _audits(receiver)
        w.clock.advance(3601)
        with pytest.raises(PushStale, match=r"timestamp .* more than 1 h ago"):
            await w.adapter.read_push(push)
        w.clock.now -= 3601 + 301  # our clock is now 5 minutes behind the push's
        with pytest.raises(PushStale, match="ahead of this machine's clock"):
            await w.adapter.read_push(push)
        forged = {**push.query, "msg_signature": "0" * 40}
        with pytest.raises(PushRejected) as err:  # the signature is checked first
            await w.adapter.read_push(PushRequest(push.path, forged, push.body))
        assert not isinstance(err.value, PushStale)


async def test_wechat_a_replayed_ticket_push_changes_nothing(receiver: Receiver) -> None:
    async with open_world("wechat") as w:
        adapter = w.adapter
        assert isinstance(adapter, WeChatPlatform)
        saved: list[str] = []

        async def save(name: str, value: str, *, required: bool = False) -> None:
            saved.append(name)

        adapter._vault_save = save  # type: ignore[method-assign]
        w.emulator.push_url = receiver.url + "/wechat"
        assert await w.emulator.deliver_pushes() == 1
        (ticket,) = receiver.posts
        for _ in range(3):
            (event,) = await adapter.read_push(ticket)
            assert event.kind == "verify_ticket"
        assert saved == ["component_verify_ticket"]  # kept once, not once per replay


async def test_alipay_a_push_keeps_its_name_and_its_time(receiver: Receiver) -> None:
    async with open_world("alipay") as w:
        w.emulator.push_url = receiver.url + "/alipay"
        await _submit(w, "fine")
        w.decide_reviews()
        await w.emulator.deliver_pushes()
        (push,) = receiver.posts
        (event,) = await w.adapter.read_push(push)
        (again,) = await w.adapter.read_push(PushRequest({}, {}, push.body, "form"))
        assert len(event.push_id) == 64 and again.push_id == event.push_id
        # the same fields, in another order, some moved to the query: the same push
        params = dict(parse_qsl(push.body.decode()))
        query = {"sign": params.pop("sign")}
        reordered = urlencode(sorted(params.items(), reverse=True)).encode()
        (moved,) = await w.adapter.read_push(PushRequest({}, query, reordered))
        assert moved.push_id == event.push_id
        w.clock.advance(3601)
        with pytest.raises(PushStale, match="utc_timestamp"):
            await w.adapter.read_push(push)


async def _submit_next(world: World, version: str) -> None:
    await world.adapter.upload(world.app, version, "next")
    await world.adapter.submit(world.app, version, "next")
