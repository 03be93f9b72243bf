"""A staged rollout from Slack: the release card shows the plan, the share and the next
step with the rollout's buttons; a regression halts it with the evidence in the card's
thread, the app's owners mentioned, and Resume / Advance anyway / Abort offered; a click
on Abort runs it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from handlers import cards
from handlers.releases import Actor
from handlers.slack import SlackBinding
from handlers.timed import Notice
from storage import RolloutState
from tests.slack import requests as slack_requests
from tests.slack.test_home import open_home
from tests.slack.test_release_flow import REVIEW, SECRET, World, open_world


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    async with open_world(tmp_path, database_url) as opened:
        yield opened


async def approved(world: World, version: str, notes: str) -> None:
    await world.command(f"upload demo wechat {version} {notes}", user="U0LEAD")
    await world.settled()
    await world.command(f"submit demo wechat {version}", user="U0LEAD")
    await world.settled()
    world.clock.advance(REVIEW + 1)
    await world.runtime.service.refresh_watched()
    await world.settled()


async def card(world: World, version: str) -> dict[str, Any]:
    release = await world.runtime.store.release("demo", version)
    assert release is not None and release.card_ts
    return world.slack.messages[("C0RELEASE", release.card_ts)]


def rollout_buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [
        e["action_id"]
        for b in blocks
        if b.get("block_id") == "rollout"
        for e in b.get("elements", [])
    ]


async def test_a_halted_rollout_in_slack(world: World) -> None:
    await approved(world, "1.0.0", "first")
    await world.command("publish demo wechat 1.0.0", user="U0LEAD")
    await world.settled()
    await approved(world, "1.1.0", "new cart #crashy")
    await world.command("rollout demo 1.1.0 wechat plan 5,50,100 every 1d", user="U0LEAD")
    await world.settled()

    shown = await card(world, "1.1.0")
    foot = next(b for b in shown["blocks"] if b.get("block_id") == "foot")
    text = "\n".join(e["text"] for e in foot["elements"])
    assert "🚦 Rollout #1 of 1.1.0 on WeChat: running · 5% of users" in text, text
    assert "next: 50% at" in text and "after the health gate" in text
    assert rollout_buttons(shown["blocks"]) == [
        "miniship_rollout_pause",
        "miniship_rollout_advance",
        "miniship_rollout_abort",
    ]

    rollout = (await world.runtime.store.rollouts())[0]
    assert world.runtime.rollouts is not None and rollout.action_id is not None
    world.clock.advance(86400)
    await world.runtime.rollouts.step(rollout.action_id)
    await world.settled()
    release = await world.runtime.store.release("demo", "1.1.0")
    assert release is not None and release.card_ts
    halted = world.slack.replies("C0RELEASE", release.card_ts)[-1]
    assert "<!subteam^S0LEADS>" in halted["text"] and "🛑" in halted["text"]
    said = next(b for b in halted["blocks"] if b.get("block_id") == "said")
    assert said["text"]["text"].startswith("<!subteam^S0LEADS> 🛑"), said  # a mention
    assert "pages/cart/cart.js:3:120" in halted["text"]
    assert rollout_buttons(halted["blocks"]) == [
        "miniship_rollout_resume",
        "miniship_rollout_advance",
        "miniship_rollout_abort",
    ]
    assert "halted" in json.dumps((await card(world, "1.1.0"))["blocks"])

    value = cards.button_value("demo", "1.1.0", "")
    body, headers = slack_requests.block_action(
        SECRET,
        "miniship_rollout_abort",
        value,
        user="U0DEV",  # may release, not publish
        channel="C0RELEASE",
        response_url=world.slack.response_url("abort-dev"),
    )
    await world.post(body, headers)
    await world.settled()
    assert (await world.runtime.store.rollouts())[0].state == RolloutState.HALTED
    body, headers = slack_requests.block_action(
        SECRET,
        "miniship_rollout_abort",
        value,
        user="U0LEAD",
        channel="C0RELEASE",
        response_url=world.slack.response_url("abort-lead"),
    )
    await world.post(body, headers)
    await world.settled()
    assert (await world.runtime.store.rollouts())[0].state == RolloutState.ABORTED


async def test_what_a_platform_reported_is_shown_as_is(world: World) -> None:
    await approved(world, "1.1.0", "first")
    app = world.runtime.service.app("demo")
    (binding,) = [a for a in world.runtime.timed.announcers if isinstance(a, SlackBinding)]
    crash = "🛑 halted — TypeError: <!channel> a & b <https://evil.example|click>"
    await binding.notice(Notice(app, "1.1.0", crash, mention=("S0LEADS",)))
    await binding.notice(Notice(app, "1.1.0", crash, controls=("abort",), mention=("S0LEADS",)))
    await world.settled()
    release = await world.runtime.store.release("demo", "1.1.0")
    assert release is not None and release.card_ts
    plain, with_buttons = world.slack.replies("C0RELEASE", release.card_ts)[-2:]
    shown = "🛑 halted — TypeError: &lt;!channel&gt; a &amp; b &lt;https://evil.example|click&gt;"
    assert plain["text"] == f"<!subteam^S0LEADS> {shown}", plain
    said = next(b for b in with_buttons["blocks"] if b.get("block_id") == "said")
    assert said["text"]["text"] == f"<!subteam^S0LEADS> {shown}", said
    assert rollout_buttons(with_buttons["blocks"]) == ["miniship_rollout_abort"]


async def test_a_health_reply_shows_error_messages_as_is(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = world.runtime.rollouts
    assert engine is not None

    async def health(app: str, platform: str | None, version: str | None) -> str:
        return "Health of demo: • TypeError: <!channel> x — 3 users"

    monkeypatch.setattr(engine, "health", health)
    await world.command("health demo", user="U0LEAD")
    calls = await world.slack.wait_for("response_url")
    texts = [c.params.get("text", "") for c in calls if c.response_name == "health demo"]
    assert texts == ["Health of demo: • TypeError: &lt;!channel&gt; x — 3 users"], texts


async def test_an_old_cards_buttons_cannot_steer_a_newer_rollout(world: World) -> None:
    await approved(world, "1.0.0", "first")
    await world.command("publish demo wechat 1.0.0", user="U0LEAD")
    await world.settled()
    await approved(world, "1.1.0", "faster")
    await world.command("rollout demo 1.1.0 wechat plan 5,50,100 every 1d", user="U0LEAD")
    await world.settled()
    old = await card(world, "1.1.0")
    (controls,) = [b for b in old["blocks"] if b.get("block_id") == "rollout"]
    pause = next(e for e in controls["elements"] if e["action_id"] == "miniship_rollout_pause")
    assert cards.parse_button_value(pause["value"]) == ("demo", "1.1.0", "wechat")
    home = await open_home(world, "U0LEAD")
    (going,) = [b for b in home["blocks"] if b.get("block_id") == "rollouts"]
    assert "*Rollouts in progress (1)*" in going["text"]["text"]
    assert "• demo 1.1.0 on WeChat: running · 5% of users · next 50% at " in going["text"]["text"]

    engine = world.runtime.rollouts
    assert engine is not None
    await engine.control(Actor("U0LEAD"), "demo", "wechat", "abort")
    await approved(world, "1.2.0", "newer")
    await world.command("rollout demo 1.2.0 wechat plan 5,50,100 every 1d", user="U0LEAD")
    await world.settled()
    newer = (await world.runtime.store.rollouts())[0]
    assert newer.version == "1.2.0" and newer.state == RolloutState.RUNNING

    body, headers = slack_requests.block_action(
        SECRET,
        "miniship_rollout_pause",
        pause["value"],  # pressed on the old card
        user="U0LEAD",
        channel="C0RELEASE",
        response_url=world.slack.response_url("old-pause"),
    )
    await world.post(body, headers)
    await world.settled()
    calls = await world.slack.wait_for("response_url")
    (said,) = [c.params["text"] for c in calls if c.response_name == "old-pause"]
    assert "Nothing was done: rollout #1 of demo 1.1.0 on WeChat is aborted" in said, said
    assert "the rollout under way is #2 of 1.2.0" in said
    assert (await world.runtime.store.rollout(newer.id or 0)) == newer  # untouched
