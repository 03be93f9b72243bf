"""Release cards and the App Home as Block Kit: buttons, confirmations, escaping, limits."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from handlers import cards, views
from handlers.cards import (
    Block,
    HomeRow,
    home_view,
    next_steps,
    parse_button_value,
)
from handlers.commands import action_id, button_command
from handlers.config import AppEntry
from storage.models import Release, ReleaseTarget
from storage.states import ReleaseState

S = ReleaseState
SHANGHAI = ZoneInfo("Asia/Shanghai")
APP = AppEntry("demo", "Demo Shop", SHANGHAI)
DECIDED = datetime(2026, 11, 24, 4, 22, tzinfo=UTC)  # 12:22 in Shanghai

EXPECTED_STEPS: dict[ReleaseState, list[str]] = {
    S.UPLOADED: ["submit"],
    S.IN_REVIEW: ["expedite", "withdraw"],
    S.DELAYED: ["expedite", "withdraw"],
    S.APPROVED: ["publish"],
    S.REJECTED: ["submit"],
    S.WITHDRAWN: ["submit"],
    S.PUBLISHING: [],
    S.GRAY: ["publish"],
    S.RELEASED: [],
    S.ROLLED_BACK: [],
    S.OFFLINE: [],
    S.SUPERSEDED: [],
}
# Alipay can also take an approved version back to development, and expedites a review
# only when it is submitted (no Expedite button afterwards)
EXPECTED_ALIPAY = {
    **EXPECTED_STEPS,
    S.APPROVED: ["publish", "withdraw"],
    S.IN_REVIEW: ["withdraw"],
    S.DELAYED: ["withdraw"],
    S.REJECTED: ["submit", "withdraw"],  # back to development: audited.cancel
}
SUBMIT, PUBLISH, WITHDRAW = "ship_submit", "ship_publish", "ship_withdraw"
ACTION_OF = {
    "submit": SUBMIT,
    "publish": PUBLISH,
    "withdraw": WITHDRAW,
    "expedite": "ship_expedite",
}


def release_card(
    app: AppEntry, release: Release, targets: list[ReleaseTarget], **options: Any
) -> tuple[str, list[Block]]:
    return cards.release_card(views.card(app, release, targets), **options)


def release(
    notes: str = "Faster checkout.", created_by: str = "U012ABCDEF", version: str = "1.2.0"
) -> Release:
    return Release(id=1, app_key="demo", version=version, notes=notes, created_by=created_by)


def target(state: ReleaseState, platform: str = "wechat", **fields: Any) -> ReleaseTarget:
    times: dict[str, Any] = {
        "uploaded_at": DECIDED,
        "submitted_at": DECIDED,
        "decided_at": DECIDED,
        "released_at": DECIDED,
        "updated_at": DECIDED,
    }
    times.update(fields)
    return ReleaseTarget(release_id=1, platform=platform, state=str(state), **times)


def block(blocks: list[dict[str, Any]], block_id: str) -> dict[str, Any]:
    found = [b for b in blocks if b.get("block_id") == block_id]
    assert len(found) == 1, f"{block_id}: {found}"
    return found[0]


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The step buttons (not the card's Schedule… button, which opens a modal)."""
    out: list[dict[str, Any]] = []
    for b in blocks:
        if b["type"] == "actions" and b.get("block_id") != "schedule":
            out.extend(b["elements"])
        if "accessory" in b:
            out.append(b["accessory"])
    return out


def texts(node: Any) -> Iterator[tuple[str, str]]:
    """Every text object's (type, text) anywhere in a block tree."""
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and isinstance(node.get("text"), str):
            yield node["type"], node["text"]
        for value in node.values():
            yield from texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from texts(item)


def context_text(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(e["text"] for e in block(blocks, "foot")["elements"])


def check_mrkdwn_escaped(text: str) -> None:
    """No raw '<', '>' or bare '&' except Slack's own mention syntax <@U…>."""
    without_mentions = re.sub(r"<@[UW][A-Z0-9]+>", "", text)
    assert "<" not in without_mentions and ">" not in without_mentions.replace("\n> ", "")
    assert not re.search(r"&(?!amp;|lt;|gt;)", text), text


# -- next steps and buttons ---------------------------------------------------------------


def test_expected_steps_cover_every_state() -> None:
    assert set(EXPECTED_STEPS) == set(ReleaseState)


EXPECTED = {"wechat": EXPECTED_STEPS, "alipay": EXPECTED_ALIPAY}


@pytest.mark.parametrize("platform", list(EXPECTED))
@pytest.mark.parametrize("state", list(ReleaseState))
def test_next_steps_per_state(state: ReleaseState, platform: str) -> None:
    assert next_steps(state, platform) == EXPECTED[platform][state]


@pytest.mark.parametrize("platform", list(EXPECTED))
@pytest.mark.parametrize("state", list(ReleaseState))
def test_card_buttons_per_state(state: ReleaseState, platform: str) -> None:
    _, blocks = release_card(APP, release(), [target(state, platform)])
    found = buttons(blocks)
    expected = EXPECTED[platform][state]
    assert [b["action_id"] for b in found] == [ACTION_OF[v] for v in expected]
    has_actions = any(b.get("block_id") == f"a:{platform}" for b in blocks)
    assert has_actions == bool(expected)
    for b in found:
        assert parse_button_value(b["value"]) == ("demo", "1.2.0", platform)


def test_action_ids_and_verbs_agree() -> None:
    assert {v: action_id(v) for v in cards.button_verbs()} == ACTION_OF
    for verb, action in ACTION_OF.items():
        command = button_command(action)
        assert command is not None and command.name == verb
    assert button_command("ship_help") is None  # a command without a button
    assert button_command("other_publish") is None


def test_confirmation_on_publish_and_withdraw_only() -> None:
    targets = [target(S.UPLOADED, "alipay"), target(S.APPROVED, "wechat")]
    _, blocks = release_card(APP, release(), targets)
    by_id = {b["action_id"]: b for b in buttons(blocks)}
    assert set(by_id) == {SUBMIT, PUBLISH}
    assert "confirm" not in by_id[SUBMIT] and "style" not in by_id[SUBMIT]
    publish = by_id[PUBLISH]
    assert publish["style"] == "primary"
    confirm = publish["confirm"]
    assert confirm["confirm"]["text"] == "Publish" and confirm["deny"]["text"] == "Cancel"
    dialog = confirm["title"]["text"] + " " + confirm["text"]["text"]
    assert "Demo Shop" in dialog and "1.2.0" in dialog and "WeChat" in dialog

    _, blocks = release_card(APP, release(), [target(S.DELAYED, "alipay")])
    (withdraw,) = buttons(blocks)
    assert withdraw["action_id"] == WITHDRAW and withdraw["style"] == "danger"
    confirm = withdraw["confirm"]
    assert confirm["confirm"]["text"] == "Withdraw" and confirm["deny"]["text"] == "Cancel"
    dialog = confirm["title"]["text"] + " " + confirm["text"]["text"]
    assert "Demo Shop" in dialog and "1.2.0" in dialog and "Alipay" in dialog


def test_confirm_texts_stay_inside_limits() -> None:
    app = AppEntry("demo", "N" * 400, SHANGHAI)
    version = "1." + "9" * 62
    _, blocks = release_card(app, release(version=version), [target(S.APPROVED)])
    (publish,) = buttons(blocks)
    confirm = publish["confirm"]
    assert len(confirm["title"]["text"]) <= 100
    assert len(confirm["text"]["text"]) <= 300
    assert version in confirm["text"]["text"] and "WeChat" in confirm["text"]["text"]


# -- button values ------------------------------------------------------------------------


def test_button_value_round_trip() -> None:
    value = cards.button_value("demo-shop_2", "v1.2.0-rc.1+b7", "alipay")
    assert json.loads(value) == {
        "app": "demo-shop_2",
        "version": "v1.2.0-rc.1+b7",
        "platform": "alipay",
    }
    assert " " not in value and len(value) <= 2000
    assert parse_button_value(value) == ("demo-shop_2", "v1.2.0-rc.1+b7", "alipay")


def test_button_value_refuses_to_grow_past_slacks_limit() -> None:
    with pytest.raises(ValueError):
        cards.button_value("a" * 2000, "1.0", "wechat")


def _value(**data: Any) -> str:
    base: dict[str, Any] = {"app": "demo", "version": "1.2.0", "platform": "wechat"}
    base.update(data)
    return json.dumps({k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize(
    "value",
    [
        "",
        "demo 1.2.0 wechat",
        "null",
        "[]",
        '"demo"',
        "{",
        "[" * 1999,
        json.dumps({"app": "demo", "version": "1.2.0"}),
        json.dumps({"app": "demo", "version": "1.2.0", "platform": "wechat", "x": 1}),
        _value(app=None),
        _value(app=7),
        _value(app=""),
        _value(app="demo wechat 9.9.9"),
        _value(app="demo\n"),
        _value(app="-demo"),
        _value(app="a" * 65),
        _value(version=1.2),
        _value(version="1.2.0 now"),
        _value(version="1.2.0\n"),
        _value(version="latest"),
        _value(version="1" * 65),
        _value(platform="baidu"),
        _value(platform="WeChat"),
        _value(platform=["wechat"]),
        _value(platform="wechat") + " " * 2000,
    ],
)
def test_malformed_button_values_are_rejected(value: str) -> None:
    with pytest.raises(ValueError):
        parse_button_value(value)


# -- the release card ---------------------------------------------------------------------


def test_card_layout_and_fallback_text() -> None:
    targets = [target(S.APPROVED, "wechat"), target(S.IN_REVIEW, "alipay")]
    text, blocks = release_card(APP, release(), targets)
    assert blocks[0] == {
        "type": "header",
        "block_id": "head",
        "text": {"type": "plain_text", "text": "Demo Shop 1.2.0", "emoji": False},
    }
    assert block(blocks, "notes")["text"]["text"] == "Faster checkout."
    ids = [b.get("block_id") for b in blocks]
    steps = ["p:alipay", "a:alipay", "p:wechat", "a:wechat"]
    assert ids == ["head", "notes", *steps, "schedule", "foot"]
    assert blocks[-1]["type"] == "context"
    assert text == "Demo Shop 1.2.0 — Alipay: in review · WeChat: approved"


def test_platform_line_in_the_apps_time_zone() -> None:
    _, blocks = release_card(APP, release(), [target(S.APPROVED)])
    line = block(blocks, "p:wechat")["text"]["text"]
    assert line == "*WeChat* — approved · decided 2026-11-24 12:22 CST"

    berlin = AppEntry("demo", "Demo Shop", ZoneInfo("Europe/Berlin"))
    _, blocks = release_card(berlin, release(), [target(S.RELEASED)])
    line = block(blocks, "p:wechat")["text"]["text"]
    assert line == "*WeChat* — released · released 2026-11-24 05:22 CET"


def test_each_state_names_its_own_time() -> None:
    early = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 09:00 CST
    t = target(S.IN_REVIEW, submitted_at=early)
    _, blocks = release_card(APP, release(), [t])
    assert block(blocks, "p:wechat")["text"]["text"].endswith("submitted 2026-11-20 09:00 CST")
    t = target(S.UPLOADED, uploaded_at=early)
    _, blocks = release_card(APP, release(), [t])
    assert block(blocks, "p:wechat")["text"]["text"].endswith("uploaded 2026-11-20 09:00 CST")


@pytest.mark.parametrize("state", [S.REJECTED, S.DELAYED])
def test_review_reason_is_quoted_when_rejected_or_delayed(state: ReleaseState) -> None:
    t = target(state, review_reason="Login page\nis <blank> & broken")
    _, blocks = release_card(APP, release(), [t])
    line = block(blocks, "p:wechat")["text"]["text"]
    assert line.endswith("\n> Login page is &lt;blank&gt; &amp; broken")


def test_review_reason_is_hidden_in_other_states() -> None:
    t = target(S.APPROVED, review_reason="an old rejection")
    _, blocks = release_card(APP, release(), [t])
    assert "old rejection" not in json.dumps(blocks)


def test_long_review_reason_is_clipped() -> None:
    t = target(S.REJECTED, review_reason="<" * 5000)
    _, blocks = release_card(APP, release(), [t])
    line = block(blocks, "p:wechat")["text"]["text"]
    quote = line.split("\n> ", 1)[1]
    assert len(quote) <= 300 and quote.endswith("…")
    check_mrkdwn_escaped(quote)


def test_notes_are_escaped() -> None:
    notes = "<script>alert(1)</script> & <!channel> <@U999> *bold*"
    _, blocks = release_card(APP, release(notes=notes), [target(S.UPLOADED)])
    shown = block(blocks, "notes")["text"]["text"]
    assert shown == (
        "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;!channel&gt; &lt;@U999&gt; *bold*"
    )
    text, _ = release_card(APP, release(), [target(S.UPLOADED)])
    assert "<" not in text


def test_app_name_and_platform_text_are_escaped_in_mrkdwn() -> None:
    app = AppEntry("demo", "A<b>&c", SHANGHAI)
    text, blocks = release_card(app, release(), [target(S.UPLOADED)])
    assert text.startswith("A&lt;b&gt;&amp;c 1.2.0")
    assert blocks[0]["text"]["text"] == "A<b>&c 1.2.0"  # plain_text is shown as-is
    for kind, value in texts(blocks):
        if kind == "mrkdwn":
            check_mrkdwn_escaped(value)


def test_empty_notes_say_so() -> None:
    _, blocks = release_card(APP, release(notes="  \n"), [target(S.UPLOADED)])
    assert block(blocks, "notes")["text"]["text"] == "_no release notes_"


@pytest.mark.parametrize("char", ["a", "&", "<"])
def test_long_notes_are_truncated_without_breaking_entities(char: str) -> None:
    _, blocks = release_card(APP, release(notes=char * 10_000), [target(S.UPLOADED)])
    shown = block(blocks, "notes")["text"]["text"]
    assert 2000 <= len(shown) <= 2500 and shown.endswith("…")
    check_mrkdwn_escaped(shown)


def test_short_notes_are_not_truncated() -> None:
    notes = "x" * 2400
    _, blocks = release_card(APP, release(notes=notes), [target(S.UPLOADED)])
    assert block(blocks, "notes")["text"]["text"] == notes


def test_footer_names_a_slack_uploader_and_emulated_platforms() -> None:
    targets = [target(S.UPLOADED, "wechat"), target(S.UPLOADED, "alipay")]
    _, blocks = release_card(APP, release(), targets, emulated=frozenset({"wechat"}))
    assert context_text(blocks) == "Uploaded by <@U012ABCDEF> · emulated platforms: WeChat"

    _, blocks = release_card(APP, release(), targets, emulated=frozenset({"wechat", "alipay"}))
    assert context_text(blocks).endswith("emulated platforms: Alipay, WeChat")

    _, blocks = release_card(APP, release(), targets)
    assert "emulated" not in json.dumps(blocks)


@pytest.mark.parametrize(
    ("created_by", "shown"),
    [
        ("U012ABCDEF", "<@U012ABCDEF>"),
        ("W0ENTERPRISE", "<@W0ENTERPRISE>"),
        ("console:root", "console:root"),
        ("console:<root>", "console:&lt;root&gt;"),
        ("S0GROUP", "S0GROUP"),
        ("scheduler", "scheduler"),
    ],
)
def test_only_slack_users_are_mentioned(created_by: str, shown: str) -> None:
    _, blocks = release_card(APP, release(created_by=created_by), [target(S.UPLOADED)])
    assert context_text(blocks) == f"Uploaded by {shown}"


def test_schedule_lines_are_added_escaped() -> None:
    lines = ["Publish scheduled for 2026-11-25 10:00 CST", "by <script> & co", "  "]
    _, blocks = release_card(APP, release(), [target(S.APPROVED)], schedule_lines=lines)
    elements = [e["text"] for e in block(blocks, "foot")["elements"]]
    assert elements == [
        "Uploaded by <@U012ABCDEF>",
        "Publish scheduled for 2026-11-25 10:00 CST",
        "by &lt;script&gt; &amp; co",
    ]


def test_card_stays_inside_slacks_limits() -> None:
    app = AppEntry("demo", "Long name " * 40, SHANGHAI)
    fake = [target(S.APPROVED, f"p{i:02d}") for i in range(60)]  # far more than fit
    schedule = [f"line {i}" for i in range(30)]
    text, blocks = release_card(
        app,
        release(notes="<&>" * 5000, version="1." + "0" * 62),
        [*fake, target(S.IN_REVIEW, "alipay")],
        schedule_lines=schedule,
    )
    assert len(blocks) <= 50
    ids = [b["block_id"] for b in blocks]
    assert len(ids) == len(set(ids)) and all(len(i) <= 255 for i in ids)
    assert len(blocks[0]["text"]["text"]) <= 150
    for kind, value in texts(blocks):
        assert len(value) <= 3000, (kind, value[:50])
    for b in buttons(blocks):
        assert len(b["value"]) <= 2000 and len(b["text"]["text"]) <= 75
    foot = block(blocks, "foot")
    assert len(foot["elements"]) <= 10
    shown = sum(1 for i in ids if i.startswith("p:"))
    assert shown < 61
    assert f"…and {61 - shown} more platforms" in context_text(blocks)
    assert blocks[-1]["block_id"] == "foot"
    assert len(text) < 4000


# -- App Home -----------------------------------------------------------------------------


def row(
    app: AppEntry = APP,
    platform: str = "wechat",
    state: ReleaseState | None = S.APPROVED,
    version: str | None = "1.2.0",
    **fields: Any,
) -> HomeRow:
    values: dict[str, Any] = {
        "in_review": None,
        "live": "1.1.0",
        "last_change": DECIDED,
        "emulated": False,
    }
    values.update(fields)
    return HomeRow(app=app, platform=platform, state=state, version=version, **values)


def everyone(app_key: str, verb: str) -> bool:
    return True


def home_sections(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in view["blocks"] if str(b.get("block_id", "")).startswith("h:")]


def test_home_row_shows_state_versions_and_time() -> None:
    view = home_view(
        [row(state=S.IN_REVIEW, version="1.3.0", in_review="1.3.0", emulated=True)],
        may=everyone,
    )
    assert view["type"] == "home"
    assert view["blocks"][0]["type"] == "header"
    (section,) = home_sections(view)
    assert section["block_id"] == "h:demo:wechat"
    assert section["text"]["text"] == (
        "*Demo Shop* · WeChat (emulated)\n"
        "newest: 1.3.0 in review · in review: 1.3.0 · live: 1.1.0 · "
        "last change: 2026-11-24 12:22 CST"
    )
    # two buttons (Expedite, Withdraw): an actions block under the section
    (actions,) = [b for b in view["blocks"] if b.get("block_id") == "ha:demo:wechat"]
    expedite, withdraw = actions["elements"]
    assert (expedite["action_id"], withdraw["action_id"]) == ("ship_expedite", WITHDRAW)
    assert parse_button_value(withdraw["value"]) == ("demo", "1.3.0", "wechat")
    assert "confirm" in withdraw and "confirm" not in expedite
    # one button (Alipay in review: Withdraw only) sits beside the text
    view = home_view([row(platform="alipay", state=S.IN_REVIEW, version="1.3.0")], may=everyone)
    (section,) = home_sections(view)
    assert section["accessory"]["action_id"] == WITHDRAW


def test_home_row_without_releases() -> None:
    view = home_view([row(state=None, version=None, live=None, last_change=None)], may=everyone)
    (section,) = home_sections(view)
    assert "newest: no releases yet" in section["text"]["text"]
    assert "live: — · last change: —" in section["text"]["text"]
    assert buttons(view["blocks"]) == []


@pytest.mark.parametrize("state", list(ReleaseState))
def test_home_buttons_per_state(state: ReleaseState) -> None:
    view = home_view([row(state=state)], may=everyone)
    found = [b["action_id"] for b in buttons(view["blocks"])]
    assert found == [ACTION_OF[v] for v in EXPECTED_STEPS[state]]


def test_home_shows_only_buttons_the_viewer_may_use() -> None:
    other = AppEntry("other", "Other", SHANGHAI)
    rows = [row(APP, "wechat", S.APPROVED), row(APP, "alipay", S.UPLOADED), row(other)]
    asked: list[tuple[str, str]] = []

    def may(app_key: str, verb: str) -> bool:
        asked.append((app_key, verb))
        return (app_key, verb) in {("demo", "submit"), ("other", "publish")}

    view = home_view(rows, may=may)
    by_row = {s["block_id"]: s.get("accessory", {}).get("action_id") for s in home_sections(view)}
    assert by_row == {"h:demo:wechat": None, "h:demo:alipay": SUBMIT, "h:other:wechat": PUBLISH}
    assert set(asked) == {("demo", "publish"), ("demo", "submit"), ("other", "publish")}

    view = home_view(rows, may=lambda app_key, verb: False)
    assert buttons(view["blocks"]) == []


def test_home_divides_apps() -> None:
    other = AppEntry("other", "Other", SHANGHAI)
    # one button each (an approved Alipay version also offers Withdraw: two, an actions block)
    rows = [row(APP, "alipay", state=S.IN_REVIEW), row(APP, "wechat"), row(other, "wechat")]
    kinds = [b["type"] for b in home_view(rows, may=everyone)["blocks"]]
    assert kinds == ["header", "context", "divider", "section", "section", "divider", "section"]


def test_home_escapes_app_names() -> None:
    app = AppEntry("demo", "<Shop & Co>", SHANGHAI)
    view = home_view([row(app)], may=everyone)
    (section,) = home_sections(view)
    assert section["text"]["text"].startswith("*&lt;Shop &amp; Co&gt;* · WeChat\n")


def test_home_without_apps_says_how_to_add_them() -> None:
    view = home_view([], may=everyone)
    assert view["type"] == "home"
    said = json.dumps(view)
    assert "miniship.toml" in said and "[apps.<name>]" in said


def test_home_that_fits_exactly_has_no_overflow_line() -> None:
    rows = [row(platform=f"p{i:03d}", state=None, version=None) for i in range(97)]
    blocks = home_view(rows, may=everyone)["blocks"]
    assert len(blocks) == 100
    assert len(home_sections({"blocks": blocks})) == 97
    assert "more" not in json.dumps(blocks[-1])


def test_home_overflow_line() -> None:
    rows = [row(platform=f"p{i:03d}", state=None, version=None) for i in range(98)]
    blocks = home_view(rows, may=everyone)["blocks"]
    assert len(blocks) == 100
    assert len(home_sections({"blocks": blocks})) == 96
    assert blocks[-1]["type"] == "context"
    last = blocks[-1]["elements"][0]["text"]
    assert "2 more" in last and "`/ship status`" in last


def test_home_with_many_apps_stays_inside_the_limit() -> None:
    apps = [AppEntry(f"app{i}", f"App {i}", SHANGHAI) for i in range(80)]
    rows = [row(app, p) for app in apps for p in ("alipay", "wechat")]
    view = home_view(rows, may=everyone)
    blocks = view["blocks"]
    assert len(blocks) <= 100
    shown = len(home_sections(view))
    last = blocks[-1]["elements"][0]["text"]
    assert f"…and {len(rows) - shown} more" in last
    ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(ids) == len(set(ids))
    for _, value in texts(blocks):
        assert len(value) <= 3000


# -- "Publish now" after a missed timed release --------------------------------------------


def test_publish_now_on_one_platform() -> None:
    blocks = cards.publish_now(APP, "1.2.0", ["alipay"], "Missed: 1.2.0 was due at 10:00.")
    assert [b["type"] for b in blocks] == ["section", "actions"]
    assert blocks[0]["text"]["type"] == "mrkdwn"
    assert blocks[0]["text"]["text"] == "Missed: 1.2.0 was due at 10:00."
    (button,) = blocks[1]["elements"]
    assert button["type"] == "button" and button["action_id"] == PUBLISH == "ship_publish"
    assert button["text"] == {"type": "plain_text", "text": "Publish now"}
    assert button["style"] == "primary"
    assert button["value"] == cards.button_value("demo", "1.2.0", "alipay")
    assert parse_button_value(button["value"]) == ("demo", "1.2.0", "alipay")
    confirm = button["confirm"]
    assert confirm["confirm"]["text"] == "Publish" and confirm["deny"]["text"] == "Cancel"
    assert confirm["title"]["text"] == "Publish 1.2.0 on Alipay?"
    assert "Demo Shop" in confirm["text"]["text"] and "Alipay" in confirm["text"]["text"]
    assert "every platform" not in confirm["title"]["text"] + confirm["text"]["text"]


@pytest.mark.parametrize("chosen", [["wechat", "alipay"], ["alipay", "wechat"], []])
def test_publish_now_on_several_platforms_means_every_platform(chosen: list[str]) -> None:
    blocks = cards.publish_now(APP, "1.2.0", chosen, "Missed.")
    (button,) = buttons(blocks)
    assert button["action_id"] == PUBLISH and button["text"]["text"] == "Publish now"
    assert button["value"] == cards.button_value("demo", "1.2.0", "")
    assert parse_button_value(button["value"]) == ("demo", "1.2.0", "")
    confirm = button["confirm"]
    assert confirm["title"]["text"] == "Publish 1.2.0 on every platform?"
    assert "Demo Shop 1.2.0 on every platform?" in confirm["text"]["text"]
    for name in ("WeChat", "Alipay"):
        assert name not in confirm["title"]["text"] + confirm["text"]["text"]


def test_publish_now_escapes_and_clips_its_text() -> None:
    blocks = cards.publish_now(APP, "1.2.0", ["wechat"], "by <@U012ABCDEF> & <!channel>")
    said = blocks[0]["text"]["text"]
    assert said == "by &lt;@U012ABCDEF&gt; &amp; &lt;!channel&gt;"
    long = cards.publish_now(APP, "1.2.0", ["wechat"], "<" * 5000)
    said = long[0]["text"]["text"]
    assert len(said) <= 3000 and said.endswith("…")
    check_mrkdwn_escaped(said)


def test_publish_now_confirm_stays_inside_limits() -> None:
    app = AppEntry("demo", "N" * 400, SHANGHAI)
    version = "1." + "9" * 62
    (button,) = buttons(cards.publish_now(app, version, ["wechat", "alipay"], "x"))
    assert len(button["confirm"]["title"]["text"]) <= 100
    assert len(button["confirm"]["text"]["text"]) <= 300
    assert "every platform" in button["confirm"]["text"]["text"]
    assert len(button["value"]) <= 2000


@pytest.mark.parametrize(
    "value",
    [
        _value(platform=""),
        cards.button_value("demo", "1.2.0", ""),
    ],
)
def test_an_empty_platform_means_every_platform(value: str) -> None:
    assert parse_button_value(value) == ("demo", "1.2.0", "")


@pytest.mark.parametrize(
    "platform", [" ", "every", "all", "*", "wechat,alipay", "baidu", None, 0, False]
)
def test_other_platforms_are_still_refused(platform: object) -> None:
    value = json.dumps({"app": "demo", "version": "1.2.0", "platform": platform})
    with pytest.raises(ValueError, match="bad platform"):
        parse_button_value(value)


def test_publish_now_through_a_freeze_says_so_in_its_dialog() -> None:
    (button,) = buttons(cards.publish_now(APP, "1.2.0", ["wechat"], "Held.", override=True))
    assert cards.overrides(button["value"])
    text = button["confirm"]["text"]["text"]
    assert "whatever freeze or lock holds the app when you click" in text
    assert "override is recorded in your name" in text and len(text) <= 300
