"""Timed releases from Slack: the card shows the plan, roles guard the cancel, and a
missed release offers a "Publish now" button that works."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col

from handlers import cards
from handlers.commands import action_id
from storage import ReleaseState, TimedState
from storage.models import TimedAction, utcnow
from tests.slack import requests as slack_requests
from tests.slack.test_release_flow import REVIEW, SECRET, World, card_of, open_world


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    """The Slack world of test_release_flow, with the scheduler running as in `serve`."""
    async with open_world(tmp_path, database_url, scheduler=True) as opened:
        yield opened


async def approved(world: World) -> str:
    """1.0.0 uploaded, submitted and approved on both platforms; its card's ts."""
    await world.command("upload demo 1.0.0 notes")
    await world.slack.wait_for("chat.postMessage", count=2)
    await world.settled()
    await world.command("submit demo 1.0.0")
    await world.slack.wait_for("chat.update")
    await world.settled()
    world.clock.advance(REVIEW + 1)
    await world.runtime.service.refresh_watched()
    await world.settled()
    release = await world.runtime.store.release("demo", "1.0.0")
    assert release is not None and release.card_ts
    return release.card_ts


def footer(card: dict[str, Any]) -> str:
    foot = next(b for b in card["blocks"] if b.get("block_id") == "foot")
    return "\n".join(e["text"] for e in foot["elements"])


async def said_to(world: World, text: str, user: str) -> list[str]:
    """Run ``text`` as ``user``; what came back through that command's response_url."""
    before = len(world.slack.calls("response_url"))
    await world.command(text, user=user)
    await world.settled()
    return [
        c.params["text"]
        for c in world.slack.calls("response_url")[before:]
        if c.response_name == text
    ]


async def test_the_card_shows_the_plan_and_only_a_publisher_may_cancel_it(world: World) -> None:
    ts = await approved(world)
    (refused,) = await said_to(world, "publish demo 1.0.0 in 2h", "U0DEV")
    assert "*publish* role" in refused
    assert await world.runtime.store.timed_actions() == []

    await said_to(world, "publish demo 1.0.0 in 2h", "U0LEAD")
    assert "⏰ #1 demo 1.0.0 on WeChat, Alipay at " in footer(card_of(world))
    thread = world.slack.replies("C0RELEASE", ts)
    assert "Timed release #1" in thread[-1]["text"] and "UTC" in thread[-1]["text"]

    (listed,) = await said_to(world, "schedule", "U0DEV")  # anyone who may view may list
    assert "#1 demo 1.0.0" in listed
    (refused,) = await said_to(world, "schedule cancel 1", "U0DEV")
    assert "*publish* role" in refused
    assert (await world.runtime.store.timed_actions())[0].state == TimedState.PENDING

    await said_to(world, "schedule cancel 1", "U0LEAD")
    assert "⏰" not in footer(card_of(world))
    said = [m["text"] for m in world.slack.replies("C0RELEASE", ts)]
    assert [t for t in said if "Cancelled timed release #1" in t] == [said[-1]]  # said once
    _, events = await world.runtime.service.history("demo")
    assert ("U0DEV", "schedule cancel", "refused") in [
        (e.actor, e.action, e.outcome) for e in events
    ]


async def test_a_missed_release_offers_publish_now(world: World) -> None:
    ts = await approved(world)
    await world.command("publish demo 1.0.0 in 1h", user="U0LEAD")
    await world.slack.wait_for("chat.update", count=3)
    await world.settled()
    # the bot was down across the fire time and well past the grace period
    async with world.runtime.store.session() as s:
        await s.exec(
            update(TimedAction)
            .where(col(TimedAction.id) == 1)
            .values(due_at=utcnow() - timedelta(minutes=30))
        )
        await s.commit()
    await world.runtime.timed.fire(1)
    await world.settled()
    assert await world.state("1.0.0", "wechat") is ReleaseState.APPROVED
    missed = world.slack.replies("C0RELEASE", ts)[-1]
    assert "Missed: timed release #1" in missed["text"]
    (button,) = [e for b in missed["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == action_id("publish") and button["text"]["text"] == "Publish now"
    assert cards.parse_button_value(button["value"]) == ("demo", "1.0.0", "")
    assert "⏰" not in footer(card_of(world))

    await world.click(action_id("publish"), "1.0.0", "", "U0LEAD")  # every platform
    for _ in range(100):
        if await world.state("1.0.0", "alipay") is ReleaseState.RELEASED:
            break
        await asyncio.sleep(0.05)
    await world.settled()
    assert await world.state("1.0.0", "wechat") is ReleaseState.RELEASED
    assert await world.state("1.0.0", "alipay") is ReleaseState.RELEASED


async def test_a_held_release_goes_out_through_publish_now_only_with_the_override_role(
    world: World,
) -> None:
    world.slack.groups = {"S0LEADS": ["U0LEAD", "U0LEAD2"]}  # two publishers
    config = world.runtime.config
    demo = config.apps["demo"]
    roles = demo.roles.model_copy(update={"override": ("U0LEAD",)})
    config.apps["demo"] = dataclasses.replace(demo, roles=roles)  # type: ignore[index]
    ts = await approved(world)
    await said_to(world, "freeze demo for 3h payments migration", "U0LEAD")
    await said_to(world, "publish demo wechat 1.0.0 in 1h", "U0LEAD")
    async with world.runtime.store.session() as s:
        await s.exec(update(TimedAction).where(col(TimedAction.id) == 1).values(due_at=utcnow()))
        await s.commit()
    await world.runtime.timed.fire(1)
    await world.settled()
    assert await world.state("1.0.0", "wechat") is ReleaseState.APPROVED
    held = world.slack.replies("C0RELEASE", ts)[-1]
    assert "✋ Held: timed release #1" in held["text"], held["text"]
    (button,) = [e for b in held["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert cards.overrides(button["value"])
    assert "whatever freeze or lock holds the app" in button["confirm"]["text"]["text"]

    async def click(user: str) -> list[str]:
        before = len(world.slack.calls("response_url"))
        body, headers = slack_requests.block_action(
            SECRET,
            button["action_id"],
            button["value"],
            user=user,
            channel="C0RELEASE",
            response_url=world.slack.response_url(f"now-{user}"),
        )
        assert (await world.post(body, headers)).status_code == 200
        await world.settled()
        return [c.params["text"] for c in world.slack.calls("response_url")[before:]]

    (refused,) = await click("U0DEV")
    assert "*publish* role" in refused, refused
    (refused,) = await click("U0LEAD2")  # a publisher without the override role
    assert "*override* role" in refused, refused
    assert await world.state("1.0.0", "wechat") is ReleaseState.APPROVED
    said = await click("U0LEAD")
    for _ in range(100):
        if await world.state("1.0.0", "wechat") is ReleaseState.RELEASED:
            break
        await asyncio.sleep(0.05)
    assert await world.state("1.0.0", "wechat") is ReleaseState.RELEASED, said
    await world.settled()
    thread = [m["text"] for m in world.slack.replies("C0RELEASE", ts)]
    assert any("⚠ Override recorded: clicked Publish now" in t for t in thread), (said, thread)
    _, events = await world.runtime.service.history("demo")
    (override,) = [e for e in events if e.outcome == "override"]
    assert override.actor == "U0LEAD" and "payments migration" in override.message
