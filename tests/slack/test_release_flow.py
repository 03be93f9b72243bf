"""A whole release from Slack, on both platforms, against the emulators and a fake Slack.

Requests are signed like Slack's and go over HTTP to the real Bolt app; everything the
bot says goes to a local fake of the Slack Web API, which the tests read back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiohttp import web

from bot import Runtime, scheduling
from handlers import cards
from handlers.commands import action_id
from handlers.config import Settings
from handlers.slack import build_app, make_binding
from storage import ReleaseState
from tests.helpers import FakeClock, clocked_runtime, release_state
from tests.slack import requests as slack_requests
from tests.slack.fake_slack import FakeSlack

SECRET = "test-signing-secret"
REVIEW = 60.0
CONFIG = """
[apps.demo]
name = "Demo Shop"
channel = "C0RELEASE"
roles = { release = ["U0DEV", "S0LEADS"], publish = ["S0LEADS"] }

[apps.demo.wechat]
appid = "wx3a5f9c2e1b7d4f60"
template_id = 1

[apps.demo.alipay]
app_id = "2021004100000001"
template_id = "2021004100009999"
review_notes = "Test account: demo / demo1234. Every page is reachable from the home tab."
"""


@dataclass
class World:
    slack: FakeSlack
    runtime: Runtime
    clock: FakeClock
    url: str

    async def post(self, body: str, headers: dict[str, str]) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            return await http.post(self.url, content=body, headers=headers, timeout=10)

    async def command(
        self, text: str, user: str = "U0DEV", channel: str = "C0TYPED"
    ) -> httpx.Response:
        body, headers = slack_requests.slash_command(
            SECRET, text, user=user, channel=channel, response_url=self.slack.response_url(text)
        )
        return await self.post(body, headers)

    async def click(self, action_id: str, version: str, platform: str, user: str) -> httpx.Response:
        value = json.dumps({"app": "demo", "version": version, "platform": platform})
        body, headers = slack_requests.block_action(
            SECRET,
            action_id,
            value,
            user=user,
            channel="C0RELEASE",
            response_url=self.slack.response_url(f"click-{user}"),
        )
        return await self.post(body, headers)

    async def state(self, version: str, platform: str) -> ReleaseState:
        return await release_state(self.runtime.store, version, platform)

    async def settled(self) -> None:
        """Wait until listeners that run after the ack are done: no command running and
        no new Slack calls for a while (each step's last act is a call to Slack)."""
        seen, quiet = -1, 0
        for _ in range(400):
            now = len(self.slack.calls())
            idle = now == seen and not self.runtime.service.work.busy
            quiet = quiet + 1 if idle else 0
            if quiet >= 4:
                return
            seen = now
            await asyncio.sleep(0.03)


@asynccontextmanager
async def open_world(
    tmp_path: Path, database_url: str, *, scheduler: bool = False, confirm: Collection[str] = ()
) -> AsyncIterator[World]:
    """Bolt over HTTP on loopback, wired as `serve` wires it, to a fake Slack; with the
    scheduler running too when asked (its watch interval an hour: tests move reviews)."""
    (tmp_path / "miniship.toml").write_text(CONFIG)
    settings = Settings(
        database_url=database_url,
        config=tmp_path / "miniship.toml",
        emulators="on",
        emulator_review_seconds=REVIEW,
        emulator_state=tmp_path / "emulators",
        watch_seconds=3600,
    )
    clock = FakeClock()
    async with FakeSlack() as slack, clocked_runtime(settings, clock) as rt:
        slack.groups = {"S0LEADS": ["U0LEAD"]}
        # as `serve` does, asking first before the commands in ``confirm``
        commands = functools.partial(rt.commands, confirm=confirm)
        binding = make_binding(rt.service, slack.client(), rt.timed, rt.admin, commands=commands)
        app = build_app(binding, signing_secret=SECRET, socket_mode=False)
        runner = web.AppRunner(app.web_app(path="/slack/events"))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with contextlib.AsyncExitStack() as stack:
                if scheduler:
                    await stack.enter_async_context(scheduling(rt))
                yield World(slack, rt, clock, f"http://127.0.0.1:{port}/slack/events")
        finally:
            await runner.cleanup()


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    async with open_world(tmp_path, database_url) as opened:
        yield opened


def card_of(world: World) -> dict[str, Any]:
    """The one release card in the app's channel (the newest top-level message there)."""
    cards_posted = [
        m
        for (ch, _), m in world.slack.messages.items()
        if ch == "C0RELEASE" and not m.get("thread_ts")
    ]
    assert len(cards_posted) == 1, cards_posted
    return cards_posted[0]


def buttons(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """action_id:platform → the step button element, from a card's blocks (not the
    Schedule… button: it opens a modal)."""
    found: dict[str, dict[str, Any]] = {}
    for block in card["blocks"]:
        steps = block.get("type") == "actions" and block.get("block_id") != "schedule"
        for element in block.get("elements", []) if steps else []:
            _, _, platform = cards.parse_button_value(element["value"])
            found[f"{element['action_id']}:{platform}"] = element
    return found


@pytest.mark.both_databases
async def test_a_whole_release_from_slack_on_both_platforms(world: World) -> None:
    response = await world.command("upload demo 1.0.0 First public version: cart and checkout.")
    assert response.status_code == 200  # acknowledged; the work continues after the ack
    await world.slack.wait_for("chat.postMessage", count=2)  # the card, then its thread reply
    await world.settled()
    card = card_of(world)
    release = await world.runtime.store.release("demo", "1.0.0")
    assert release is not None and release.card_channel == "C0RELEASE" and release.card_ts
    assert set(buttons(card)) == {"ship_submit:wechat", "ship_submit:alipay"}
    thread = world.slack.replies("C0RELEASE", release.card_ts)
    assert "✓ WeChat" in thread[0]["text"] and "✓ Alipay" in thread[0]["text"]

    # Submit for review with the card's buttons: the same card is updated in place
    for platform in ("wechat", "alipay"):
        assert (
            await world.click(action_id("submit"), "1.0.0", platform, "U0DEV")
        ).status_code == 200
    await world.slack.wait_for("chat.update", count=2)
    await world.settled()
    assert await world.state("1.0.0", "wechat") is ReleaseState.IN_REVIEW
    assert await world.state("1.0.0", "alipay") is ReleaseState.IN_REVIEW
    card = card_of(world)
    # WeChat also takes an expedite now; Alipay only took one with the submission
    assert set(buttons(card)) == {
        "ship_expedite:wechat",
        "ship_withdraw:wechat",
        "ship_withdraw:alipay",
    }
    assert "confirm" in buttons(card)["ship_withdraw:wechat"]

    # the reviews are decided; the watcher updates the card and says so in the thread
    world.clock.advance(REVIEW + 1)
    await world.runtime.service.refresh_watched()
    card = card_of(world)
    publish = buttons(card)
    # Alipay can also take an approved version back to development
    assert set(publish) == {"ship_publish:wechat", "ship_publish:alipay", "ship_withdraw:alipay"}
    assert "confirm" in publish["ship_publish:alipay"]
    assert any("approved" in r["text"] for r in world.slack.replies("C0RELEASE", release.card_ts))

    # a developer may not publish; a lead (through the S0LEADS group) may
    before = len(world.slack.calls("response_url"))
    await world.click(action_id("publish"), "1.0.0", "wechat", "U0DEV")
    refused = await world.slack.wait_for("response_url", count=before + 1)
    assert "*publish* role" in refused[-1].params["text"]
    assert refused[-1].params["response_type"] == "ephemeral"
    assert await world.state("1.0.0", "wechat") is ReleaseState.APPROVED
    response = await world.command("publish demo 1.0.0", user="U0LEAD")
    assert response.status_code == 200
    for _ in range(100):
        if await world.state("1.0.0", "alipay") is ReleaseState.RELEASED:
            break
        await asyncio.sleep(0.05)
    await world.settled()
    assert await world.state("1.0.0", "wechat") is ReleaseState.RELEASED
    assert buttons(card_of(world)) == {}
    _, events = await world.runtime.service.history("demo")
    assert ("U0DEV", "publish", "refused") in [(e.actor, e.action, e.outcome) for e in events]
    # one card for the whole release: every step updated it, none posted a new one
    assert (
        len([c for c in world.slack.calls("chat.postMessage") if "thread_ts" not in c.params]) == 1
    )


async def test_a_rejection_shows_its_reason_in_the_thread(world: World) -> None:
    await world.command("upload demo wechat 1.0.0 try #reject")
    await world.slack.wait_for("chat.postMessage", count=2)
    await world.settled()
    await world.command("submit demo wechat 1.0.0")
    await world.slack.wait_for("chat.update")
    await world.settled()
    world.clock.advance(REVIEW + 1)
    await world.runtime.service.refresh_watched()
    release = await world.runtime.store.release("demo", "1.0.0")
    assert release is not None and release.card_ts
    texts = [r["text"] for r in world.slack.replies("C0RELEASE", release.card_ts)]
    assert any("rejected" in t and "reason:" in t for t in texts), texts


async def test_errors_and_help_are_ephemeral(world: World) -> None:
    await world.command("upload")
    await world.command("help")
    await world.command("upload nosuch 1.0")
    answers = await world.slack.wait_for("response_url", count=3)
    assert {a.params["response_type"] for a in answers} == {"ephemeral"}
    texts = " ".join(a.params["text"] for a in answers)
    assert "Usage: `upload" in texts and "unknown app" in texts and "Commands" in texts
    assert world.slack.calls("chat.postMessage") == []


@pytest.mark.both_databases
async def test_a_double_click_publishes_once(world: World) -> None:
    await world.command("upload demo wechat 1.0.0 notes")
    await world.slack.wait_for("chat.postMessage", count=2)
    await world.settled()
    await world.command("submit demo wechat 1.0.0")
    await world.slack.wait_for("chat.update")
    await world.settled()
    world.clock.advance(REVIEW + 1)
    await world.runtime.service.refresh_watched()
    emulator = world.runtime.emulators["wechat"]
    before = emulator.calls.get("/wxa/release", 0)  # type: ignore[attr-defined]
    await asyncio.gather(
        *(world.click(action_id("publish"), "1.0.0", "wechat", "U0LEAD") for _ in range(2))
    )
    await world.slack.wait_for("response_url")
    await world.settled()
    for _ in range(100):
        if await world.state("1.0.0", "wechat") is ReleaseState.RELEASED:
            break
        await asyncio.sleep(0.05)
    assert emulator.calls.get("/wxa/release", 0) - before == 1  # type: ignore[attr-defined]
    _, events = await world.runtime.service.history("demo")
    assert [e.outcome for e in events if e.action == "publish"].count("ok") == 1


async def test_a_retried_mention_runs_once(world: World) -> None:
    first = slack_requests.app_mention(
        SECRET,
        "<@U0BOT> upload demo 1.0.0 from a mention",
        user="U0DEV",
        channel="C0RELEASE",
        event_id="Ev42",
    )
    retry = slack_requests.app_mention(
        SECRET,
        "<@U0BOT> upload demo 1.0.0 from a mention",
        user="U0DEV",
        channel="C0RELEASE",
        event_id="Ev42",
        retry_num=1,
    )
    await world.post(*first)
    await world.post(*retry)
    await world.slack.wait_for("chat.postMessage", count=2)
    await world.settled()
    _, events = await world.runtime.service.history("demo")
    assert [(e.action, e.outcome) for e in events].count(("upload", "ok")) == 2  # both platforms
    assert not [e for e in events if e.outcome == "refused"]  # the retry did not even try


async def test_app_home_shows_every_app_and_platform_with_allowed_buttons(world: World) -> None:
    await world.command("upload demo 1.0.0 notes")
    await world.slack.wait_for("chat.postMessage", count=2)
    await world.settled()
    await world.post(*slack_requests.app_home_opened(SECRET, user="U0VIEWER"))
    await world.slack.wait_for("views.publish")
    view = world.slack.home_views["U0VIEWER"]
    text = json.dumps(view, ensure_ascii=False)
    assert "WeChat" in text and "Alipay" in text and "1.0.0" in text
    assert "ship_submit" not in text  # a viewer without the release role gets no buttons
    await world.post(*slack_requests.app_home_opened(SECRET, user="U0DEV"))
    await world.slack.wait_for("views.publish", count=2)
    assert "ship_submit" in json.dumps(world.slack.home_views["U0DEV"])


async def test_a_bad_signature_runs_nothing(world: World) -> None:
    body, headers = slack_requests.slash_command("wrong-secret", "upload demo 1.0.0 x")
    assert (await world.post(body, headers)).status_code == 401
    await asyncio.sleep(0.2)
    assert await world.runtime.store.release("demo", "1.0.0") is None


async def test_the_card_says_which_platforms_are_emulated(world: World) -> None:
    await world.command("upload demo 1.0.0 notes")
    await world.slack.wait_for("chat.postMessage", count=2)
    await world.settled()
    footer = json.dumps(card_of(world)["blocks"][-1], ensure_ascii=False)
    assert "emulated" in footer and "WeChat" in footer and "Alipay" in footer


async def test_two_steps_at_once_still_make_one_card(world: World) -> None:
    await asyncio.gather(
        world.command("upload demo wechat 1.0.0 notes"),
        world.command("upload demo alipay 1.0.0 notes"),
    )
    await world.slack.wait_for("chat.postMessage", count=3)  # one card, two thread replies
    await world.settled()
    card_of(world)  # asserts there is exactly one


async def test_a_deleted_card_is_replaced(world: World) -> None:
    await world.command("upload demo wechat 1.0.0 notes")
    await world.slack.wait_for("chat.postMessage", count=2)
    await world.settled()
    release = await world.runtime.store.release("demo", "1.0.0")
    assert release is not None and release.card_ts
    del world.slack.messages[("C0RELEASE", release.card_ts)]  # someone deleted it
    await world.command("submit demo wechat 1.0.0")
    await world.slack.wait_for("chat.postMessage", count=4)
    await world.settled()
    again = await world.runtime.store.release("demo", "1.0.0")
    assert again is not None and again.card_ts not in (None, release.card_ts)
    assert "ship_withdraw:wechat" in buttons(card_of(world))


async def test_text_from_slack_is_unescaped(world: World) -> None:
    await world.command("upload demo wechat 1.0.0 fix the &lt;cart&gt; &amp; badge")
    await world.slack.wait_for("chat.postMessage", count=2)
    await world.settled()
    release = await world.runtime.store.release("demo", "1.0.0")
    assert release is not None and release.notes == "fix the <cart> & badge"


async def test_a_click_on_the_app_home_answers_in_the_dm_and_redraws_home(world: World) -> None:
    await world.command("upload demo wechat 1.0.0 notes")
    await world.slack.wait_for("chat.postMessage", count=2)
    await world.settled()
    payload = {
        "type": "block_actions",
        "user": {"id": "U0DEV"},
        "team": {"id": "T0001"},
        "api_app_id": "A0001",
        "trigger_id": "1.2.3",
        "container": {"type": "view", "view_id": "V1"},
        "view": {"id": "V1", "type": "home"},
        "actions": [
            {
                "type": "button",
                "action_id": action_id("publish"),
                "block_id": "b",
                "value": cards.button_value("demo", "1.0.0", "wechat"),
                "action_ts": "1732430000.1",
            }
        ],
    }
    body = "payload=" + quote(json.dumps(payload))
    response = await world.post(body, slack_requests.sign(SECRET, body))
    assert response.status_code == 200
    await world.slack.wait_for("views.publish")
    dm = [c for c in world.slack.calls("chat.postMessage") if c.params["channel"] == "U0DEV"]
    assert dm and "*publish* role" in dm[0].params["text"]


# -- a split outcome: the command to finish, and a Retry button ----------------------


def thread_buttons(world: World) -> list[dict[str, Any]]:
    found = []
    for (channel, _), message in world.slack.messages.items():
        blocks = message.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if channel == "C0RELEASE" and message.get("thread_ts"):
            for block in blocks:
                if block.get("block_id") == "retry":
                    found.extend(block["elements"])
    return found


async def test_a_split_submit_offers_a_retry_on_the_failed_platform(world: World) -> None:
    await world.command("upload demo 1.0.0 notes")
    await world.slack.wait_for("chat.postMessage", count=2)
    await world.settled()
    alipay = world.runtime.emulators["alipay"]
    alipay.inject("*", "unavailable", times=20)
    await world.command("submit demo 1.0.0")
    await world.settled()
    (retry,) = thread_buttons(world)
    assert retry["text"]["text"] == "Retry on Alipay"
    assert retry["action_id"] == action_id("submit")
    assert cards.parse_button_value(retry["value"]) == ("demo", "1.0.0", "alipay")
    texts = [m.get("text", "") for m in world.slack.messages.values()]
    assert any("To finish: `submit demo alipay 1.0.0`" in t for t in texts)

    alipay.clear_faults()
    await world.click(action_id("submit"), "1.0.0", "alipay", "U0DEV")
    await world.settled()
    assert await world.state("1.0.0", "alipay") is ReleaseState.IN_REVIEW
    assert await world.state("1.0.0", "wechat") is ReleaseState.IN_REVIEW


async def test_a_lock_shows_on_the_app_home_and_the_card(world: World) -> None:
    await world.command("upload demo 1.0.0 notes")
    await world.slack.wait_for("chat.postMessage", count=2)
    await world.settled()
    await world.command("lock demo investigating payments", user="U0LEAD")
    await world.settled()
    await world.post(*slack_requests.app_home_opened(SECRET, user="U0DEV"))
    await world.slack.wait_for("views.publish")
    home = json.dumps(world.slack.home_views["U0DEV"], ensure_ascii=False)
    assert "🔒 demo is locked by U0LEAD until unlocked (investigating payments)" in home
    await world.command("submit demo wechat 1.0.0")  # the card is redrawn: the lock is on it
    await world.settled()
    card = json.dumps(card_of(world), ensure_ascii=False)
    assert "🔒 demo is locked by U0LEAD" in card


async def test_a_rejection_posts_its_screenshots_and_offers_resubmit(world: World) -> None:
    await world.command("upload demo wechat 1.0.0 checkout #reject")
    await world.slack.wait_for("chat.postMessage", count=2)
    await world.settled()
    await world.command("submit demo wechat 1.0.0")
    await world.settled()
    world.clock.advance(REVIEW + 1)
    await world.runtime.service.refresh_watched()
    await world.settled()
    release = await world.runtime.store.release("demo", "1.0.0")
    assert release is not None and release.card_ts
    shots = [
        c
        for c in world.slack.calls("files.completeUploadExternal")
        if "reviewers pointed at" in str(c.params.get("initial_comment"))
    ]
    assert len(shots) == 2 and all(c.params["thread_ts"] == release.card_ts for c in shots)
    card = card_of(world)
    (resubmit,) = [b for b in buttons(card).values() if b["action_id"] == action_id("submit")]
    assert resubmit["text"]["text"] == "Resubmit"
    replies = [r["text"] for r in world.slack.replies("C0RELEASE", release.card_ts)]
    assert any("next: fix what the reviewers found" in t for t in replies), replies


async def test_the_card_offers_no_expedite_once_the_quota_is_spent(world: World) -> None:
    world.runtime.emulators["wechat"].speedup_limit = 0  # type: ignore[attr-defined]
    await world.command("upload demo wechat 1.0.0 checkout")
    await world.slack.wait_for("chat.postMessage", count=2)
    await world.settled()
    await world.command("submit demo wechat 1.0.0")
    await world.settled()
    assert await world.state("1.0.0", "wechat") is ReleaseState.IN_REVIEW
    card = card_of(world)
    assert set(buttons(card)) == {"ship_withdraw:wechat"}
    footer = json.dumps(card["blocks"][-1], ensure_ascii=False)
    assert "WeChat: no expedited reviews this month left (0 of 0" in footer, footer
