"""Outgoing webhooks (handlers/webhooks.py): a local receiver, the session's clock, and a
sleeper that only writes down how long it was asked to wait."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from bot import serving
from handlers.webhooks import Webhooks
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


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@asynccontextmanager
async def hooked(
    session: Session, url: str, attempts: int = 4
) -> AsyncIterator[tuple[Webhooks, Sleeps]]:
    sleeps = Sleeps()
    hooks = Webhooks(
        session.runtime.service, [url], SECRET, attempts=attempts, clock=session.clock, sleep=sleeps
    )
    commands = session.console.commands
    commands.listeners.append(hooks.on_command)
    session.runtime.service.listeners.append(hooks.on_change)
    try:
        yield hooks, sleeps
    finally:
        commands.listeners.remove(hooks.on_command)
        session.runtime.service.listeners.remove(hooks.on_change)
        await hooks.aclose()


async def test_release_events_are_signed_and_carry_the_release(session: Session) -> None:
    receiver = Receiver()
    async with receiving(receiver) as url, hooked(session, url) as (hooks, sleeps):
        await session.run("upload demo wechat 1.0.0 first cut")
        await session.run("submit demo wechat 1.0.0")
        await hooks.settled()
        session.decide_reviews()
        await session.watch()
        await hooks.settled()
        await session.run("status demo")  # about no one release: nothing sent
        await hooks.settled()
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
    assert sleeps == []


async def test_a_delivery_not_taken_is_tried_again_with_back_off(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = Receiver(answers=[500, 503, 429])
    caplog.set_level(logging.INFO)
    async with receiving(receiver) as url, hooked(session, url) as (hooks, sleeps):
        await session.run("upload demo wechat 1.0.0")
        await hooks.settled()
    assert len(receiver.got) == 4 and sleeps == [2.0, 4.0, 8.0]
    assert len({h["X-Miniship-Delivery"] for h, _ in receiver.got}) == 1  # one event, again
    assert SECRET.decode() not in caplog.text


async def test_attempts_are_bounded_and_a_refusal_is_not_tried_again(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    refusing = Receiver(answers=[401])
    async with receiving(refusing) as url, hooked(session, url) as (hooks, sleeps):
        await session.run("upload demo wechat 1.0.0")
        await hooks.settled()
    assert len(refusing.got) == 1 and sleeps == []
    async with receiving(Receiver()) as gone:
        pass  # nobody listens there any more
    async with hooked(session, gone, attempts=5) as (hooks, sleeps):
        await session.run("submit demo wechat 1.0.0")
        await hooks.settled()
    assert sleeps == [2.0, 4.0, 8.0, 16.0]
    assert "not taken after 5 attempts" in caplog.text
    assert SECRET.decode() not in caplog.text


def test_webhook_settings_need_a_key(tmp_path: Any) -> None:
    from handlers.config import Settings
    from platforms.errors import ConfigError

    assert Settings(webhook_urls="").webhooks == ([], b"")
    with pytest.raises(ConfigError, match="needs MINISHIP_WEBHOOK_SECRET"):
        _ = Settings(webhook_urls="https://ci.example.com/hook").webhooks
    with pytest.raises(ConfigError, match="not an http"):
        _ = Settings(webhook_urls="ftp://x", webhook_secret="k" * 32).webhooks
    key = tmp_path / "key"
    key.write_text("s" * 32 + "\n")
    urls, secret = Settings(
        webhook_urls="https://a/h, https://b/h", webhook_secret_file=key
    ).webhooks
    assert urls == ["https://a/h", "https://b/h"] and secret == b"s" * 32
