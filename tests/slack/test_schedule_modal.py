"""Scheduling from the card without typing a time: the card's Schedule… button opens a
modal with date and time pickers in the channel's zone and a checkbox per platform;
submitting it plans the timed release exactly as `publish … at …` typed would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from handlers import cards, schedule_modal
from handlers.config import AppEntry, ChannelEntry
from handlers.schedule_modal import Planned, Schedule
from storage import ReleaseState
from storage.models import utcnow
from tests.handlers.test_cards import APP as CARD_APP
from tests.handlers.test_cards import release, release_card, target
from tests.slack import requests as slack_requests
from tests.slack.test_release_flow import SECRET, World, card_of, open_world
from tests.slack.test_timed_flow import approved, footer

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
S = ReleaseState


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    """The Slack world of test_release_flow, with the scheduler running as in `serve`."""
    async with open_world(tmp_path, database_url, scheduler=True) as opened:
        yield opened


def values(
    day: str | None, clock: str | None, platforms: list[str] | None
) -> dict[str, dict[str, Any]]:
    """A modal's ``view.state.values`` as Slack sends them for what was picked."""
    return {
        "date": {"date": {"type": "datepicker", "selected_date": day}},
        "time": {"time": {"type": "timepicker", "selected_time": clock}},
        "platforms": {
            "platforms": {
                "type": "checkboxes",
                "selected_options": [
                    {"text": {"type": "plain_text", "text": p}, "value": p} for p in platforms or []
                ],
            }
        },
    }


async def submit(
    world: World, picked: dict[str, dict[str, Any]], metadata: str, user: str = "U0LEAD"
) -> httpx.Response:
    body, headers = slack_requests.view_submission(
        SECRET, cards.SCHEDULE, picked, user=user, private_metadata=metadata
    )
    response = await world.post(body, headers)
    assert response.status_code == 200
    await world.settled()
    return response


def errors_of(response: httpx.Response) -> dict[str, str]:
    answer = response.json()
    assert answer["response_action"] == "errors"
    return dict(answer["errors"])


def picked(local: datetime) -> tuple[str, str]:
    return f"{local:%Y-%m-%d}", f"{local:%H:%M}"


def schedule_button(card: dict[str, Any]) -> dict[str, Any] | None:
    found = [b for b in card["blocks"] if b.get("block_id") == "schedule"]
    if not found:
        return None
    (button,) = found[0]["elements"]
    return dict(button)


async def open_modal(world: World, user: str = "U0LEAD") -> dict[str, Any]:
    before = len(world.slack.calls("views.open"))
    await world.click(cards.SCHEDULE, "1.0.0", "", user)
    opened = await world.slack.wait_for("views.open", count=before + 1)
    call = opened[-1]
    assert call.error is None and call.params["trigger_id"] == slack_requests.DEFAULT_TRIGGER_ID
    view = call.params["view"]
    return dict(json.loads(view) if isinstance(view, str) else view)


def element_block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    (block,) = [b for b in view["blocks"] if b.get("block_id") == block_id]
    return dict(block)


def element(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return dict(element_block(view, block_id)["element"])


# -- the card -----------------------------------------------------------------------------


@pytest.mark.parametrize("state", [S.APPROVED, S.IN_REVIEW, S.DELAYED])
def test_the_card_offers_schedule_while_it_may_be_planned(state: ReleaseState) -> None:
    _, blocks = release_card(CARD_APP, release(), [target(state), target(S.RELEASED, "alipay")])
    button = schedule_button({"blocks": blocks})
    assert button is not None
    assert button["action_id"] == cards.SCHEDULE and not button["action_id"].startswith("ship_")
    assert button["text"]["text"] == "Schedule…"
    assert cards.parse_button_value(button["value"]) == ("demo", "1.2.0", "")
    ids = [b.get("block_id") for b in blocks]
    assert ids[-2:] == ["schedule", "foot"]


@pytest.mark.parametrize("state", [S.RELEASED, S.UPLOADED, S.REJECTED, S.GRAY, S.PUBLISHING])
def test_no_schedule_button_when_it_may_not_be_planned(state: ReleaseState) -> None:
    _, blocks = release_card(CARD_APP, release(), [target(state)])
    assert schedule_button({"blocks": blocks}) is None


def test_a_card_with_many_platforms_keeps_inside_slacks_block_limit() -> None:
    many = [target(S.APPROVED, f"p{i:02d}") for i in range(40)]
    _, blocks = release_card(CARD_APP, release(), many)
    assert len(blocks) <= cards.MAX_MESSAGE_BLOCKS
    assert [b.get("block_id") for b in blocks][-2:] == ["schedule", "foot"]


# -- the parts ----------------------------------------------------------------------------


def test_the_first_time_offered_is_an_hour_on_rounded_to_five_minutes() -> None:
    now = datetime(2026, 11, 24, 4, 22, 10, tzinfo=UTC)  # 12:22:10 in Shanghai
    assert schedule_modal.initial_moment(now, SHANGHAI) == datetime(
        2026, 11, 24, 13, 25, tzinfo=SHANGHAI
    )
    exact = datetime(2026, 11, 24, 4, 25, tzinfo=UTC)
    assert schedule_modal.initial_moment(exact, BERLIN) == datetime(
        2026, 11, 24, 6, 25, tzinfo=BERLIN
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "null",
        "[]",
        '{"app":"demo","version":"1.0.0"}',
        '{"app":"demo","version":"1.0.0","zone":"Asia/Shanghai","channel":"C1"}',
        '{"app":"demo x","version":"1.0.0","zone":"Asia/Shanghai"}',
        '{"app":"demo","version":"1.0.0 --override x","zone":"Asia/Shanghai"}',
        '{"app":"demo","version":"1.0.0","zone":"../../etc/passwd"}',
        '{"app":"demo","version":"1.0.0","zone":"Mars/Olympus"}',
        '{"app":"demo","version":"1.0.0","zone":3}',
        "[" * 5000,
    ],
)
def test_tampered_metadata_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        schedule_modal.parse_metadata(text)


def test_metadata_round_trip() -> None:
    schedule = Schedule("demo", "1.0.0", BERLIN)
    assert schedule_modal.parse_metadata(schedule_modal.metadata(schedule)) == schedule


def test_a_time_the_clocks_skip_is_refused_in_the_modal() -> None:
    app = AppEntry("demo", "Demo", BERLIN, platforms={"wechat": None})  # type: ignore[dict-item]
    now = datetime(2026, 3, 1, tzinfo=UTC)
    read = schedule_modal.read_submission(
        values("2026-03-29", "02:30", ["wechat"]), app, BERLIN, now
    )
    assert isinstance(read, dict) and "skip" in read["time"]


def test_the_line_says_the_time_on_the_apps_clock() -> None:
    app = AppEntry("demo", "Demo", SHANGHAI)
    due = datetime(2026, 12, 1, 9, 0, tzinfo=BERLIN).astimezone(UTC)  # 16:00 in Shanghai
    line = schedule_modal.command_line(app, "1.0.0", Planned(("wechat", "alipay"), due))
    assert line == "publish demo wechat alipay 1.0.0 at 2026-12-01 16:00 --yes"


# -- from Slack ---------------------------------------------------------------------------


async def test_schedule_from_the_card_plans_the_timed_release(world: World) -> None:
    ts = await approved(world)
    button = schedule_button(card_of(world))
    assert button is not None

    before = utcnow()
    view = await open_modal(world)
    after = utcnow()
    assert view["type"] == "modal" and view["callback_id"] == cards.SCHEDULE
    assert view["title"]["text"] == "Schedule publish"
    meta = schedule_modal.parse_metadata(view["private_metadata"])
    assert meta == Schedule("demo", "1.0.0", SHANGHAI)
    # now + 1 h, rounded up to 5 minutes, on Shanghai's clock
    offered = (element(view, "date")["initial_date"], element(view, "time")["initial_time"])
    assert offered in {picked(schedule_modal.initial_moment(t, SHANGHAI)) for t in (before, after)}
    boxes = element(view, "platforms")
    assert [o["value"] for o in boxes["options"]] == ["wechat", "alipay"]
    assert [o["value"] for o in boxes["initial_options"]] == ["wechat", "alipay"]

    day, clock = offered
    response = await submit(
        world, values(day, clock, ["wechat", "alipay"]), view["private_metadata"]
    )
    assert response.text in ("", "null")  # ack(): the modal closes
    (action,) = await world.runtime.store.timed_actions()
    wanted = datetime.fromisoformat(f"{day} {clock}").replace(tzinfo=SHANGHAI).astimezone(UTC)
    assert action.due_at == wanted
    assert set(action.platforms) == {"wechat", "alipay"}
    assert action.created_by == "U0LEAD"
    assert "⏰ #1 demo 1.0.0 on WeChat, Alipay at " in footer(card_of(world))
    thread = world.slack.replies("C0RELEASE", ts)
    assert "Timed release #1" in thread[-1]["text"]
    _, events = await world.runtime.service.history("demo")
    assert ("U0LEAD", "schedule", "ok") in [(e.actor, e.action, e.outcome) for e in events]


async def test_a_picked_time_in_the_channels_zone_is_the_instant_planned(world: World) -> None:
    await approved(world)
    config = world.runtime.service.config
    config.channels["C0RELEASE"] = ChannelEntry("C0RELEASE", BERLIN, None, ("demo",))  # type: ignore[index]
    view = await open_modal(world)
    assert schedule_modal.parse_metadata(view["private_metadata"]).zone == BERLIN
    assert element(view, "time")["initial_time"] in {
        f"{schedule_modal.initial_moment(utcnow() + timedelta(seconds=s), BERLIN):%H:%M}"
        for s in (-5, 0)
    }
    label = element_block(view, "time")["label"]["text"]
    assert label == "Time (Europe/Berlin)"

    local = (utcnow() + timedelta(hours=3)).astimezone(BERLIN).replace(second=0, microsecond=0)
    await submit(world, values(*picked(local), ["wechat"]), view["private_metadata"])
    (action,) = await world.runtime.store.timed_actions()
    assert action.due_at == local.astimezone(UTC)  # Berlin's wall clock, not Shanghai's
    assert list(action.platforms) == ["wechat"]


async def test_what_the_modal_refuses_keeps_it_open(world: World) -> None:
    await approved(world)
    view = await open_modal(world)
    meta = view["private_metadata"]
    soon = (utcnow() + timedelta(hours=2)).astimezone(SHANGHAI)

    errors = errors_of(await submit(world, values(*picked(soon), []), meta))
    assert set(errors) == {"platforms"}
    past = (utcnow() - timedelta(hours=1)).astimezone(SHANGHAI)
    errors = errors_of(await submit(world, values(*picked(past), ["wechat"]), meta))
    assert set(errors) == {"time"} and "in the past" in errors["time"]
    errors = errors_of(await submit(world, values(None, None, ["wechat"]), meta))
    assert set(errors) == {"date", "time"}
    errors = errors_of(await submit(world, values(*picked(soon), ["wechat", "tiktok"]), meta))
    assert set(errors) == {"platforms"}
    assert await world.runtime.store.timed_actions() == []


async def test_tampered_metadata_plans_nothing(world: World) -> None:
    await approved(world)
    soon = (utcnow() + timedelta(hours=2)).astimezone(SHANGHAI)
    for meta in (
        "",
        '{"app":"demo","version":"1.0.0 --override because","zone":"Asia/Shanghai"}',
        '{"app":"demo","version":"1.0.0","zone":"/etc/localtime"}',
        '{"app":"other","version":"1.0.0","zone":"Asia/Shanghai"}',
    ):
        errors = errors_of(await submit(world, values(*picked(soon), ["wechat"]), meta))
        assert set(errors) == {"date"}
    assert await world.runtime.store.timed_actions() == []
    assert world.slack.calls("chat.postEphemeral") == []


async def test_without_the_publish_role_the_usual_refusal(world: World) -> None:
    await approved(world)
    view = await open_modal(world, user="U0DEV")  # anyone may open it
    soon = (utcnow() + timedelta(hours=2)).astimezone(SHANGHAI)
    response = await submit(
        world, values(*picked(soon), ["wechat"]), view["private_metadata"], user="U0DEV"
    )
    assert response.text in ("", "null")
    assert await world.runtime.store.timed_actions() == []
    said = [c.params for c in world.slack.calls("chat.postEphemeral")]
    assert [p["channel"] for p in said] == ["C0RELEASE"]
    assert said[0]["user"] == "U0DEV" and "*publish* role" in said[0]["text"]
    _, events = await world.runtime.service.history("demo")
    assert ("U0DEV", "publish", "refused") in [(e.actor, e.action, e.outcome) for e in events]


async def test_a_button_miniship_did_not_make_opens_nothing(world: World) -> None:
    await approved(world)
    body, headers = slack_requests.block_action(
        SECRET,
        cards.SCHEDULE,
        '{"app":"demo; rm","version":"1.0.0","platform":""}',
        user="U0LEAD",
        channel="C0RELEASE",
    )
    await world.post(body, headers)
    await world.slack.wait_for("chat.postEphemeral")
    assert world.slack.calls("views.open") == []
