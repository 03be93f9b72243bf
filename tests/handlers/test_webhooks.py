"""Outgoing webhooks (handlers/webhooks.py): a local receiver, the session's clock, and the
deliveries kept in the database, sent a round at a time (``deliver_due``) as the clock moves."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from sqlmodel import col, select

from bot import serving
from handlers.timed import Notice
from handlers.webhooks import LEASE, Webhooks
from storage.models import WebhookDelivery
from tests.handlers.harness import Session

SECRET = b"webhook-secret-for-tests-0123456789"


@dataclass
class Receiver:
    answers: list[int] = field(default_factory=list)  # statuses to give, then 200
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def take(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        return web.Response(status=self.answers.pop(0) if self.answers else 200)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.got]


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", receiver.take)
    async with serving(app, "127.0.0.1", 0) as port:
        yield f"http://127.0.0.1:{port}/hook"


def verified(headers: dict[str, str], body: bytes, now: float) -> bool:
    """What docs/ci.md tells a receiver to do: its very snippet, on the given clock."""
    doc = (Path(__file__).parents[2] / "docs" / "ci.md").read_text(encoding="utf-8")
    snippet = re.search(r"```python\n(.*?)```", doc, re.DOTALL)
    assert snippet is not None
    space: dict[str, Any] = {}
    exec(snippet.group(1), space)  # noqa: S102  (our own documentation)
    space["time"] = SimpleNamespace(time=lambda: now)
    return bool(space["genuine"](SECRET, headers, body))


@asynccontextmanager
async def hooked(session: Session, url: str, attempts: int = 4) -> AsyncIterator[Webhooks]:
    hooks = Webhooks(session.runtime.service, [url], SECRET, attempts=attempts, clock=session.clock)
    commands = session.console.commands
    commands.listeners.append(hooks.on_command)
    session.runtime.service.listeners.append(hooks.on_change)
    try:
        yield hooks
    finally:
        commands.listeners.remove(hooks.on_command)
        session.runtime.service.listeners.remove(hooks.on_change)
        await hooks.aclose()


async def waiting(session: Session) -> list[WebhookDelivery]:
    async with session.runtime.store.session() as s:
        return list((await s.exec(select(WebhookDelivery).order_by(col(WebhookDelivery.id)))).all())


async def back_off(session: Session, hooks: Webhooks) -> list[float]:
    """Send until nothing waits, moving the clock to each next attempt; the gaps."""
    gaps = []
    while await hooks.deliver_due():
        rows = await waiting(session)
        if not rows:
            break
        gap = (rows[0].due_at - datetime.fromtimestamp(session.clock(), UTC)).total_seconds()
        assert await hooks.deliver_due() == 0  # not before its time
        gaps.append(gap)
        session.clock.advance(gap)
    return gaps


async def test_release_events_are_signed_and_carry_the_release(session: Session) -> None:
    receiver = Receiver()
    async with receiving(receiver) as url, hooked(session, url) as hooks:
        await session.run("upload demo wechat 1.0.0 first cut")
        await session.run("submit demo wechat 1.0.0")
        assert await hooks.deliver_due() == 2
        session.decide_reviews()
        await session.watch()
        assert await hooks.deliver_due() == 1
        await session.run("status demo")  # about no one release: nothing sent
        assert await hooks.deliver_due() == 0
    events = receiver.events()
    assert [(e["type"], e.get("command"), e.get("state")) for e in events] == [
        ("command", "upload", None),
        ("command", "submit", None),
        ("review", None, "approved"),
    ]
    first = events[0]
    assert (first["app"], first["version"], first["actor"]) == ("demo", "1.0.0", "console:tester")
    assert first["outcome"] == "ok"
    assert first["release"]["platforms"][0]["state"] == "uploaded"
    assert events[2]["release"]["platforms"][0]["state"] == "approved"
    for headers, body in receiver.got:
        assert verified(headers, body, session.clock())
        assert headers["X-Miniship-Event"] in ("command", "review")
        assert headers["X-Miniship-Delivery"].startswith("evt_")
    headers, body = receiver.got[0]
    assert not verified({**headers, "X-Miniship-Timestamp": "1"}, body, session.clock())
    assert not verified(headers, body + b" ", session.clock())
    assert await waiting(session) == []  # taken: nothing kept


async def test_a_delivery_not_taken_is_tried_again_with_back_off(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = Receiver(answers=[500, 503, 429])
    caplog.set_level(logging.INFO)
    async with receiving(receiver) as url, hooked(session, url) as hooks:
        await session.run("upload demo wechat 1.0.0")
        assert await back_off(session, hooks) == [2.0, 4.0, 8.0]
    assert len(receiver.got) == 4
    assert len({h["X-Miniship-Delivery"] for h, _ in receiver.got}) == 1  # one event, again
    assert await waiting(session) == []
    assert SECRET.decode() not in caplog.text


async def test_attempts_are_bounded_and_a_refusal_is_not_tried_again(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    refusing = Receiver(answers=[401])
    async with receiving(refusing) as url, hooked(session, url) as hooks:
        await session.run("upload demo wechat 1.0.0")
        assert await back_off(session, hooks) == []
    assert len(refusing.got) == 1 and await waiting(session) == []
    async with receiving(Receiver()) as gone:
        pass  # nobody listens there any more
    async with hooked(session, gone, attempts=5) as hooks:
        await session.run("submit demo wechat 1.0.0")
        assert await back_off(session, hooks) == [2.0, 4.0, 8.0, 16.0]
    assert "not taken after 5 attempts" in caplog.text
    assert await waiting(session) == []
    assert SECRET.decode() not in caplog.text


async def test_a_delivery_outlives_the_process_that_made_it(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    """The receiver is down when the event happens and the process stops; the next
    process (or another replica) sends it, the same event, once its time comes."""
    async with receiving(Receiver()) as gone:
        pass
    async with hooked(session, gone) as hooks:
        await session.run("upload demo wechat 1.0.0")
        assert await hooks.deliver_due() == 1
    (kept,) = await waiting(session)
    assert (kept.attempts, kept.url) == (1, gone)
    receiver = Receiver()
    async with receiving(receiver) as url:
        # the receiver is back, at the same address the row names
        async with session.runtime.store.session() as s:
            row = await s.get(WebhookDelivery, kept.id)
            assert row is not None
            row.url = url
            await s.commit()
        later = Webhooks(session.runtime.service, [url], SECRET, clock=session.clock)
        try:
            assert await later.deliver_due() == 0  # not before its back-off
            session.clock.advance(2)
            assert await later.deliver_due() == 1
        finally:
            await later.aclose()
    assert [e["id"] for e in receiver.events()] == [kept.event_id]
    assert await waiting(session) == []
    # a URL this replica is not configured with (a rolling change of the setting): its
    # rows are left for the replicas that are
    async with hooked(session, url) as hooks:
        await session.run("submit demo wechat 1.0.0")
        hooks.urls = ("http://127.0.0.1:9/elsewhere",)
        assert await hooks.deliver_due() == 0
    assert [row.url for row in await waiting(session)] == [url]


async def test_an_outcome_is_written_only_while_the_claim_holds(session: Session) -> None:
    """An attempt outlived its lease and another process claimed the row: the late
    outcome changes nothing (the row is the other's)."""
    async with receiving(Receiver()) as url, hooked(session, url) as hooks:
        await session.run("upload demo wechat 1.0.0")
        store = session.runtime.store
        now = datetime.fromtimestamp(session.clock(), UTC)
        (mine,) = await store.claim_deliveries(now, LEASE, 10, [url])
        later = now + LEASE + timedelta(seconds=1)
        (theirs,) = await store.claim_deliveries(later, LEASE, 10, [url])
        await store.delivery_done(mine)  # late: not deleted
        await store.delivery_again(mine, 5, later)  # late: not moved
        (row,) = await waiting(session)
        assert (row.attempts, row.claimed_until) == (0, theirs.claimed_until)
        await store.delivery_done(theirs)
        assert await waiting(session) == []
        assert hooks.urls == (url,)


async def test_deliveries_to_a_url_no_one_names_are_dropped_after_a_week(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    """The setting lost a URL on every replica: its rows are not waited for (the sender
    would wake at once, again and again) and, after a week tried by no one, dropped and
    said; rows of a URL this replica names are never dropped, however late."""
    async with receiving(Receiver()) as gone:
        pass
    async with hooked(session, gone) as hooks:
        await session.run("upload demo wechat 1.0.0")  # the receiver is down: kept
        assert await hooks.deliver_due() == 1
    kept_url = "http://127.0.0.1:9/still-named"
    store = session.runtime.store
    later = Webhooks(session.runtime.service, [kept_url], SECRET, clock=session.clock)
    try:
        assert await store.next_delivery(later.urls) is None  # nothing of its own waits
        async with hooked(session, kept_url):
            await session.run("submit demo wechat 1.0.0")
        session.clock.advance(timedelta(days=6).total_seconds())
        assert await later.sweep() == 0  # not a week yet
        session.clock.advance(timedelta(days=2).total_seconds())
        with caplog.at_level(logging.WARNING, "handlers.webhooks"):
            assert await later.sweep() == 1
        assert f"1 event(s) for {gone} dropped" in caplog.text
        assert [row.url for row in await waiting(session)] == [kept_url]
    finally:
        await later.aclose()


@pytest.mark.both_databases
async def test_two_senders_never_send_one_delivery_twice(session: Session) -> None:
    """Replicas share the rows: each is claimed by one sender (SKIP LOCKED on PostgreSQL)."""
    demo = session.runtime.service.config.apps["demo"]
    receiver = Receiver()
    async with receiving(receiver) as url:
        one = Webhooks(session.runtime.service, [url], SECRET, clock=session.clock)
        two = Webhooks(session.runtime.service, [url], SECRET, clock=session.clock)
        try:
            for n in range(12):
                await one.notice(Notice(demo, f"1.0.{n}", f"note {n}"))
            tried = await asyncio.gather(one.deliver_due(), two.deliver_due(), two.deliver_due())
        finally:
            await one.aclose()
            await two.aclose()
    assert sum(tried) == 12
    ids = [e["id"] for e in receiver.events()]
    assert len(ids) == 12 and len(set(ids)) == 12
    assert await waiting(session) == []


async def test_the_sender_sends_at_once_and_stops_leaving_the_rest(session: Session) -> None:
    receiver = Receiver()
    async with receiving(receiver) as url, hooked(session, url) as hooks:
        hooks.start()
        await session.run("upload demo wechat 1.0.0")
        for _ in range(200):  # woken by the event: no waiting for its idle round
            if receiver.got:
                break
            await asyncio.sleep(0.02)
        assert len(receiver.got) == 1
        await hooks.aclose()
        await session.run("submit demo wechat 1.0.0")  # heard, kept, not sent: it stopped
        await asyncio.sleep(0.05)
    assert len(receiver.got) == 1
    assert [row.kind for row in await waiting(session)] == ["command"]


def test_webhook_settings_need_a_key(tmp_path: Any) -> None:
    from handlers.config import Settings
    from platforms.errors import ConfigError

    assert Settings(webhook_urls="").webhooks == ([], b"")
    with pytest.raises(ConfigError, match="needs MINISHIP_WEBHOOK_SECRET"):
        _ = Settings(webhook_urls="https://ci.example.com/hook").webhooks
    with pytest.raises(ConfigError, match="not an http"):
        _ = Settings(webhook_urls="ftp://x", webhook_secret="k" * 32).webhooks
    with pytest.raises(ConfigError, match="not an http"):  # httpx could never send to it
        _ = Settings(webhook_urls="http://host:abc/hook", webhook_secret="k" * 32).webhooks
    key = tmp_path / "key"
    key.write_text("s" * 32 + "\n")
    urls, secret = Settings(
        webhook_urls="https://a/h, https://b/h", webhook_secret_file=key
    ).webhooks
    assert urls == ["https://a/h", "https://b/h"] and secret == b"s" * 32
