"""Confirmations in Slack: a typed destructive command asks its requester privately with
Confirm/Cancel; only the requester's click counts; a card button confirmed in Slack's own
dialog runs at once."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from handlers import cards
from handlers.commands import action_id
from handlers.fleet import Fleets
from handlers.releases import Actor
from storage import ReleaseState
from tests.slack import requests as slack_requests
from tests.slack.test_release_flow import REVIEW, SECRET, World, card_of, open_world


async def approved_on_wechat(world: World) -> None:
    await world.command("upload demo wechat 1.0.0 notes")
    await world.slack.wait_for("chat.postMessage", count=2)
    await world.settled()
    await world.command("submit demo wechat 1.0.0")
    await world.slack.wait_for("chat.update")
    await world.settled()
    world.clock.advance(REVIEW + 1)
    await world.runtime.service.refresh_watched()
    await world.settled()


async def answer(world: World, action: str, token: str, user: str) -> None:
    body, headers = slack_requests.block_action(
        SECRET,
        action,
        token,
        user=user,
        channel="C0TYPED",
        response_url=world.slack.response_url(f"answer-{user}"),
    )
    response = await world.post(body, headers)
    assert response.status_code == 200


async def question_asked(world: World) -> Any:
    """The one ephemeral answer with buttons (the question), once it has been sent."""
    await world.settled()
    (asked,) = [c for c in world.slack.calls("response_url") if c.params.get("blocks")]
    return asked


def question_of(call: Any) -> tuple[str, str]:
    """(question text, token) of the ephemeral question a command was answered with."""
    blocks = call.params["blocks"]
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    confirm, cancel = actions["elements"]
    assert (confirm["action_id"], cancel["action_id"]) == (cards.CONFIRM, cards.CANCEL)
    assert confirm["value"] == cancel["value"]
    return str(call.params["text"]), str(confirm["value"])


async def test_a_typed_publish_asks_and_only_the_requester_confirms(
    tmp_path: Path, database_url: str
) -> None:
    async with open_world(tmp_path, database_url, confirm={"publish"}) as world:
        await approved_on_wechat(world)
        await world.command("publish demo wechat 1.0.0", user="U0LEAD")
        asked = await question_asked(world)
        assert asked.params["response_type"] == "ephemeral"
        text, token = question_of(asked)
        assert text.startswith("Publish demo 1.0.0 on WeChat?")
        assert await world.state("1.0.0", "wechat") is ReleaseState.APPROVED

        await answer(world, cards.CONFIRM, token, "U0DEV")  # not the one who asked
        await world.settled()
        said = [c.params.get("text", "") for c in world.slack.calls("response_url")]
        assert any("only the person who typed the command can confirm it" in t for t in said)
        assert await world.state("1.0.0", "wechat") is ReleaseState.APPROVED

        await answer(world, cards.CONFIRM, token, "U0LEAD")
        await world.settled()
        assert await world.state("1.0.0", "wechat") is ReleaseState.RELEASED
        deleted = [c for c in world.slack.calls("response_url") if c.params.get("delete_original")]
        assert deleted  # the question's buttons are gone once answered

        _, events = await world.runtime.service.history("demo")
        outcomes = [(e.actor, e.outcome) for e in events if e.action == "publish"]
        assert ("U0LEAD", "asked") in outcomes and ("U0LEAD", "confirmed") in outcomes
        assert ("U0LEAD", "ok") in outcomes


async def test_yes_typed_in_slack_still_asks(tmp_path: Path, database_url: str) -> None:
    async with open_world(tmp_path, database_url, confirm={"publish"}) as world:
        await approved_on_wechat(world)
        await world.command("publish demo wechat 1.0.0 --yes", user="U0LEAD")
        text, _ = question_of(await question_asked(world))
        assert text.startswith("Publish demo 1.0.0 on WeChat?")
        assert "`--yes` is for scripts; here, answer with the buttons." in text
        assert await world.state("1.0.0", "wechat") is ReleaseState.APPROVED


async def test_cancel_and_card_buttons(tmp_path: Path, database_url: str) -> None:
    async with open_world(tmp_path, database_url, confirm={"publish"}) as world:
        await approved_on_wechat(world)
        await world.command("publish demo wechat 1.0.0", user="U0LEAD")
        asked = await question_asked(world)
        _, token = question_of(asked)
        await answer(world, cards.CANCEL, token, "U0LEAD")
        await world.settled()
        said = [c.params.get("text", "") for c in world.slack.calls("response_url")]
        assert any(t.startswith("Cancelled: `publish demo wechat 1.0.0` was not run") for t in said)
        assert await world.state("1.0.0", "wechat") is ReleaseState.APPROVED

        # the card's Publish button asked in Slack's own dialog: the click runs it
        await world.click(action_id("publish"), "1.0.0", "wechat", "U0LEAD")
        await world.settled()
        for _ in range(100):
            if await world.state("1.0.0", "wechat") is ReleaseState.RELEASED:
                break
            await world.settled()
        assert await world.state("1.0.0", "wechat") is ReleaseState.RELEASED


async def test_a_second_person_approves_in_the_thread(tmp_path: Path, database_url: str) -> None:
    async with open_world(tmp_path, database_url) as world:
        world.slack.groups = {"S0LEADS": ["U0LEAD", "U0LEAD2"]}
        config = world.runtime.config
        config.apps["demo"] = dataclasses.replace(config.apps["demo"], approvals=1)  # type: ignore[index]
        await approved_on_wechat(world)
        await world.command("publish demo wechat 1.0.0", user="U0LEAD")
        await world.settled()
        (approve,) = [
            e
            for m in world.slack.messages.values()
            if m.get("thread_ts")
            for b in _blocks(m)
            if b.get("block_id") == "approval"
            for e in b["elements"]
            if e["action_id"] == cards.APPROVE
        ]
        assert await world.state("1.0.0", "wechat") is ReleaseState.APPROVED
        card = json.dumps(card_of(world), ensure_ascii=False)
        assert "✋ request #1: publish asked by U0LEAD, waiting for a second person" in card
        await answer(world, cards.APPROVE, approve["value"], "U0LEAD")  # the requester
        await world.settled()
        assert await world.state("1.0.0", "wechat") is ReleaseState.APPROVED
        await answer(world, cards.APPROVE, approve["value"], "U0LEAD2")
        await world.settled()
        assert await world.state("1.0.0", "wechat") is ReleaseState.RELEASED
        texts = [m.get("text", "") for m in world.slack.messages.values()]
        assert any("requested by U0LEAD, approved by U0LEAD2" in t for t in texts), texts


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = message.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


async def test_a_fleet_run_from_slack_asks_then_keeps_one_card(
    tmp_path: Path, database_url: str
) -> None:
    async with open_world(tmp_path, database_url) as world:
        book = world.runtime.admin.apps
        admin = Actor("console:setup")
        for n in range(1, 4):
            section = {"wechat": {"appid": f"wx{n:016x}", "template_id": 1}}
            await book.add(admin, f"shop{n}", {"name": f"Shop {n}", **section}, tags=["shops"])
        await world.command("upload shop1 9.0.0 ahead")  # shop1 will refuse 1.3.0
        await world.settled()
        await world.command("upload @shops 1.3.0 autumn menu --yes")  # Slack asks anyway
        text, token = question_of(await question_asked(world))
        assert text.startswith("Run `upload @shops 1.3.0 autumn menu` on 3 apps (WeChat 3)?")
        await answer(world, cards.CONFIRM, token, "U0DEV")
        await world.settled()
        await Fleets.of(world.runtime.service).wait(1)
        await world.settled()
        run = await world.runtime.store.fleet(1)
        assert run is not None and run.state == "done" and run.card_ts
        card = world.slack.messages[(run.card_channel or "", run.card_ts)]
        assert "#1 upload @shops 1.3.0 autumn menu" in card["text"]
        assert "3 / 3 done · 1 failed — done" in card["text"], card["text"]
        (thread,) = world.slack.replies(run.card_channel or "", run.card_ts)
        assert "✗ shop1: Not uploaded: 1.3.0 is not higher than 9.0.0" in thread["text"]
