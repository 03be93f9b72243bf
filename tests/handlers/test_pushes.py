"""Platform pushes end to end: emulator → /push/… → the release moves, once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from sqlmodel import select

from bot import pushes, serving
from handlers.pushes import MAX_BODY, PUSHES_REMEMBERED, PushReceiver
from handlers.releases import Actor, Change
from platforms.emulators.base import Emulator, OutgoingPush
from platforms.push import PUSH_SKEW, PUSH_WINDOW
from storage import ReleaseState
from storage.models import Delivery, Event
from tests.handlers.harness import Session


async def test_a_push_moves_the_release_and_the_poll_adds_nothing(session: Session) -> None:
    seen: list[Change] = []

    async def note(change: Change) -> None:
        seen.append(change)

    session.runtime.service.listeners.append(note)
    async with pushes(session.runtime):
        for emulator in session.runtime.emulators.values():
            await emulator.stop_pushing()  # deliver by hand below, deterministically
            await emulator.deliver_pushes()  # WeChat's first verify-ticket push
        await session.run("upload demo 1.0.0 first release")
        await session.run("submit demo 1.0.0")
        session.decide_reviews()
        for emulator in session.runtime.emulators.values():
            assert await emulator.deliver_pushes() == 1  # approved, pushed to us
        assert await session.state("1.0.0", "wechat") is ReleaseState.APPROVED
        assert await session.state("1.0.0", "alipay") is ReleaseState.APPROVED
        assert await session.runtime.service.refresh_watched() == []  # the poll: no change
        for emulator in session.runtime.emulators.values():
            assert await emulator.deliver_pushes() == 0  # each decision is pushed once
    assert sorted((c.platform, c.new) for c in seen) == [
        ("alipay", ReleaseState.APPROVED),
        ("wechat", ReleaseState.APPROVED),
    ]
    out = await session.run("history demo")
    assert "(seen by push)" in out


async def test_a_push_that_does_not_verify_is_refused_and_recorded(session: Session) -> None:
    async with pushes(session.runtime):
        url = session.runtime.emulators["alipay"].push_url
        assert url is not None
        async with httpx.AsyncClient() as http:
            forged = await http.post(
                url,
                data={
                    "msg_method": "alipay.open.mini.version.audit.passed",
                    "biz_content": '{"mini_app_id":"2021004100000001","mini_app_version":"1.0.0"}',
                    "sign_type": "RSA2",
                    "sign": "Zm9yZ2Vk",
                },
            )
            unknown = await http.post(url.replace("/alipay", "/nowhere"), content=b"x")
    assert forged.status_code == 401 and unknown.status_code == 404
    async with session.runtime.store.session() as s:
        refused = (await s.exec(select(Event).where(Event.action == "push"))).all()
    assert [(e.platform, e.outcome) for e in refused] == [("alipay", "refused")]


# --------------------------------------------------------------------------- replays


def _asks(session: Session, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every time miniship asks a platform about a release because of a push."""
    service = session.runtime.service
    original = service.refresh
    asked: list[tuple[str, str]] = []

    async def refresh(view: Any, actor: Actor) -> Any:
        asked.append((view.target.platform, view.release.version))
        return await original(view, actor)

    monkeypatch.setattr(service, "refresh", refresh)
    return asked


async def _post(http: httpx.AsyncClient, push: OutgoingPush) -> httpx.Response:
    """``push`` delivered as the emulator delivers it (any number of times)."""
    return await http.post(
        push.url,
        params=dict(push.params),
        content=push.body,
        headers={"Content-Type": push.content_type},
    )


def _audit(emulator: Emulator) -> OutgoingPush:
    (push,) = [p for p in emulator.due_pushes() if p.key.startswith("audit:")]
    emulator.pushed.add(push.key)  # delivered by the test, not by the emulator
    return push


async def _in_review(session: Session) -> None:
    for emulator in session.runtime.emulators.values():
        await emulator.stop_pushing()  # deliver by hand below, deterministically
        await emulator.deliver_pushes()  # WeChat's first verify-ticket push
    await session.run("upload demo 1.0.0 first release")
    await session.run("submit demo 1.0.0")


async def _keys(session: Session) -> set[str]:
    async with session.runtime.store.session() as s:
        rows = (await s.exec(select(Delivery))).all()
    return {d.key for d in rows if d.key.startswith("push:")}


async def test_a_replayed_push_is_answered_and_changes_nothing(
    session: Session, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    asked = _asks(session, monkeypatch)
    async with pushes(session.runtime):
        await _in_review(session)
        session.decide_reviews()
        async with httpx.AsyncClient() as http:
            for name in ("wechat", "alipay"):
                push = _audit(session.runtime.emulators[name])
                first = await _post(http, push)
                assert (first.status_code, first.text) == (200, "success")
                caplog.clear()
                with caplog.at_level(logging.INFO, logger="handlers.pushes"):
                    again = [await _post(http, push) for _ in range(3)]
                assert [(r.status_code, r.text) for r in again] == [(200, "success")] * 3
                said = [r for r in caplog.records if r.name == "handlers.pushes"]
                assert [r.levelno for r in said] == [logging.INFO] * 3  # one line a replay
                assert all(f"ignored a push from {name} received before" in r.message for r in said)
    assert sorted(asked) == [("alipay", "1.0.0"), ("wechat", "1.0.0")]  # once each
    assert await session.state("1.0.0", "wechat") is ReleaseState.APPROVED
    assert await session.state("1.0.0", "alipay") is ReleaseState.APPROVED
    assert len(await _keys(session)) == 3  # WeChat's first ticket push, and both results


async def test_a_stopping_process_sends_a_push_back_to_be_sent_again(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While stopping, a push is answered 503 and nothing is done or recorded: the
    platform sends it again (to another replica, or after the restart), and it counts."""
    asked = _asks(session, monkeypatch)
    async with pushes(session.runtime):
        await _in_review(session)
        session.decide_reviews()
        push = _audit(session.runtime.emulators["wechat"])
        before = await _keys(session)
        async with httpx.AsyncClient() as http:
            session.runtime.service.work.stopping = True
            refused = await _post(http, push)
            assert refused.status_code == 503
            assert await _keys(session) == before and not asked  # not even recorded
            session.runtime.service.work.stopping = False  # the restart
            again = await _post(http, push)
    assert (again.status_code, again.text) == (200, "success")
    assert asked == [("wechat", "1.0.0")]
    assert await session.state("1.0.0", "wechat") is ReleaseState.APPROVED


async def test_a_push_older_than_the_window_is_answered_and_ignored(
    session: Session, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    asked = _asks(session, monkeypatch)
    async with pushes(session.runtime):
        await _in_review(session)
        session.decide_reviews()
        held = {name: _audit(e) for name, e in session.runtime.emulators.items()}
        session.clock.advance(PUSH_WINDOW.total_seconds() + 1)  # captured, replayed later
        async with httpx.AsyncClient() as http:
            with caplog.at_level(logging.INFO, logger="handlers.pushes"):
                answers = [await _post(http, push) for push in held.values()]
    assert [(r.status_code, r.text) for r in answers] == [(200, "success")] * 2
    said = [r for r in caplog.records if r.name == "handlers.pushes"]
    assert [r.levelno for r in said] == [logging.INFO] * 2
    assert all("sent again (nothing done)" in r.message and "1 h ago" in r.message for r in said)
    assert asked == []
    assert await session.state("1.0.0", "wechat") is ReleaseState.IN_REVIEW  # the poll's to read
    async with session.runtime.store.session() as s:
        assert (await s.exec(select(Event).where(Event.action == "push"))).all() == []


async def test_the_names_of_old_pushes_are_let_go(session: Session) -> None:
    async with pushes(session.runtime):
        await _in_review(session)
        session.decide_reviews()
        wechat = session.runtime.emulators["wechat"]
        async with httpx.AsyncClient() as http:
            assert (await _post(http, _audit(wechat))).text == "success"
            first = await _keys(session)
            assert len(first) == 2  # the first ticket push, and the result
            session.clock.advance(PUSHES_REMEMBERED.total_seconds() + 3600)
            (ticket,) = [p for p in wechat.due_pushes() if p.key.startswith("ticket")]
            assert (await _post(http, ticket)).text == "success"
    kept = await _keys(session)
    assert len(kept) == 1 and kept.isdisjoint(first)  # only the newest ticket push's


def test_push_names_are_kept_longer_than_a_replay_can_pass_for_fresh() -> None:
    assert PUSHES_REMEMBERED > PUSH_WINDOW + PUSH_SKEW


# --------------------------------------------------------------------------- body size


@contextlib.asynccontextmanager
async def _served(app: web.Application) -> AsyncIterator[str]:
    async with serving(app, "127.0.0.1", 0) as port:
        yield f"http://127.0.0.1:{port}"


async def _raw(base: str, head: str, *parts: bytes) -> str:
    """The status line the server answers to a request written by hand: ``head`` (request
    line and headers) and what of the body is sent — maybe less than it announced."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n")
        for part in parts:
            writer.write(part)
        line = await asyncio.wait_for(reader.readline(), timeout=5)
    finally:
        writer.close()
    return line.decode().strip()


@pytest.mark.parametrize("where", ["own server", "Slack's server"])
async def test_every_push_route_refuses_a_body_over_256_kib(session: Session, where: str) -> None:
    receiver = PushReceiver(session.runtime.service, session.runtime.admin)
    if where == "own server":
        app = receiver.web_app()
    else:  # as `serve` does in HTTP mode: Slack's aiohttp app takes the push routes
        app = AsyncApp(signing_secret="s", token="xoxb-test").web_app(path="/slack/events")
        app.add_routes(receiver.routes())
    async with _served(app) as base, httpx.AsyncClient(timeout=10) as http:
        big = await http.post(f"{base}/push/alipay", content=b"a" * (MAX_BODY + 1))
        assert (big.status_code, big.text) == (413, "request body too large: at most 256 KiB")
        small = await http.post(f"{base}/push/alipay", content=b"a=" + b"b" * (MAX_BODY - 2))
        assert small.status_code == 401  # read in full, and refused as unsigned
        for path in ("/push/wechat/wx0000", "/push/wechat/auth", "/connect/wechat/token"):
            method = "POST" if path.startswith("/push") else "GET"
            refused = await http.request(method, base + path, content=b"x" * (MAX_BODY + 1))
            assert refused.status_code == 413, path
        # announced but never sent: answered at once, nothing read
        head = (
            "POST /push/alipay HTTP/1.1\nHost: miniship\n"
            "Content-Type: application/x-www-form-urlencoded\nContent-Length: 1000000000\n"
        )
        assert await _raw(base, head, b"a=b") == "HTTP/1.1 413 Request Entity Too Large"
        # without a length (chunked): refused once past the limit, before its end
        head = "POST /push/wechat/auth HTTP/1.1\nHost: miniship\nTransfer-Encoding: chunked\n"
        chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
        chunks = [chunk] * (MAX_BODY // 0x4000 + 1)
        assert await _raw(base, head, *chunks) == "HTTP/1.1 413 Request Entity Too Large"
