"""A CI API call drives the release card in Slack as a typed command does, and a person in
Slack approves what a token asked for (the two-person rule), against a fake Slack."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from bot import Runtime, serving
from handlers.api import CiApi
from handlers.config import Settings
from handlers.releases import Actor
from handlers.slack import SlackBinding, make_binding
from storage import ReleaseState
from tests.helpers import FakeClock, clocked_runtime, release_state
from tests.slack.fake_slack import FakeSlack

REVIEW = 60.0
CONFIG = """
[apps.demo]
name = "Demo Shop"
channel = "C0RELEASE"
approvals = 1
roles = { release = ["U0DEV", "S0LEADS"], publish = ["S0LEADS"] }

[apps.demo.wechat]
appid = "wx3a5f9c2e1b7d4f60"
template_id = 1
"""


@dataclass
class World:
    slack: FakeSlack
    runtime: Runtime
    binding: SlackBinding
    clock: FakeClock
    base: str
    token: str

    def card(self) -> dict[str, object]:
        (card,) = [
            m
            for (ch, _), m in self.slack.messages.items()
            if ch == "C0RELEASE" and not m.get("thread_ts")
        ]
        return card


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    (tmp_path / "miniship.toml").write_text(CONFIG)
    settings = Settings(
        database_url=database_url,
        config=tmp_path / "miniship.toml",
        emulators="on",
        emulator_review_seconds=REVIEW,
        emulator_state=tmp_path / "emulators",
    )
    clock = FakeClock()
    async with FakeSlack() as slack, clocked_runtime(settings, clock) as rt:
        slack.groups = {"S0LEADS": ["U0LEAD"]}
        binding = make_binding(rt.service, slack.client(), rt.timed, rt.admin, commands=rt.commands)
        made = await rt.commands().handle(
            Actor("console:ops"), "token create ci-github --role release,publish"
        )
        secret = re.search(r"msp_\S{43}", made.text)
        assert secret is not None
        api = CiApi(binding.commands)  # as `serve` wires it: Slack's runner, cards relayed
        api.relays.append(binding.relay)
        app = web.Application()
        api.mount(app)
        async with serving(app, "127.0.0.1", 0) as port:
            yield World(slack, rt, binding, clock, f"http://127.0.0.1:{port}", secret.group())


async def test_api_calls_update_the_release_card_and_a_person_approves_a_tokens_publish(
    world: World,
) -> None:
    base = f"{world.base}/api/v1/apps/demo/releases"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {world.token}"}) as http:
        up = await http.post(base, json={"version": "1.0.0", "notes": "from CI"})
        assert up.status_code == 200, up.text
        await world.slack.wait_for("chat.postMessage", count=2)  # the card, its thread reply
        release = await world.runtime.store.release("demo", "1.0.0")
        assert release is not None and release.card_channel == "C0RELEASE" and release.card_ts
        thread = world.slack.replies("C0RELEASE", release.card_ts)
        assert "✓ WeChat" in thread[0]["text"]

        sub = await http.post(f"{base}/1.0.0/submit")
        assert sub.status_code == 200, sub.text
        await world.slack.wait_for("chat.update", count=1)  # the same card, in place
        assert "review" in str(world.card()["text"]).lower()

        world.clock.advance(REVIEW + 1)
        await world.runtime.service.refresh_watched()
        # approvals = 1: the token's publish is a request a second person approves
        pub = await http.post(f"{base}/1.0.0/publish")
        assert pub.status_code == 202, pub.text
        assert pub.json()["outcome"] == "requested" and pub.json()["request"] == 1
    assert await release_state(world.runtime.store, "1.0.0", "wechat") is ReleaseState.APPROVED
    thread = world.slack.replies("C0RELEASE", release.card_ts)
    assert any("Request #1" in m["text"] for m in thread)

    answers: list[tuple[str, bool]] = []

    async def answer(text: str, public: bool, blocks: object = None) -> None:
        answers.append((text, public))

    # a lead approves in Slack: the line runs as the token, with the token's roles
    await world.binding.run("U0LEAD", "approve 1", "C0RELEASE", answer)
    assert await release_state(world.runtime.store, "1.0.0", "wechat") is ReleaseState.RELEASED
    events = await world.runtime.store.events(["demo"], actor="token:ci-github", limit=None)
    assert {"upload", "submit", "publish"} <= {e.action for e in events if e.outcome == "ok"}
