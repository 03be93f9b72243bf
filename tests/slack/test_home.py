"""The App Home at fleet scale: a summary of every app the viewer may view, what needs
attention, and rows with buttons for the viewer's own apps — inside Slack's 100 blocks
and 3,000 characters a section, read in a bounded number of queries at 1,000 apps."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from handlers import cards, policy, views
from handlers.apps import AppBook
from handlers.commands import action_id
from handlers.config import AppEntry
from handlers.views import TargetLine
from platforms.base import Quota
from storage import ReleaseState
from storage.models import App, Release, ReleaseTarget, utcnow
from tests.handlers.test_cards import check_mrkdwn_escaped
from tests.slack import requests as slack_requests
from tests.slack.test_release_flow import SECRET, World, open_world

S = ReleaseState
SHOPS = 998  # with demo (miniship.toml) and secret: 1,000 apps
CYCLE = (S.RELEASED, S.IN_REVIEW, S.APPROVED, S.UPLOADED)  # shop n is CYCLE[n % 4] …
REJECTED = "shop0007"  # … but this one was rejected
UNRELEASED = 8  # the last shops have no release yet
LONG_AGO = timedelta(days=3)  # the shops' reviews have waited longer than the nudge


def shop(n: int) -> str:
    return f"shop{n:04d}"


def definition(n: int) -> dict[str, Any]:
    """Shop ``n``: on WeChat; U0DEV releases shop0001, the others are the ops team's."""
    owners = ["U0DEV"] if n == 1 else ["U0OPS"]
    return {
        "name": f"Shop {n}",
        "wechat": {"appid": f"wx{n:016d}", "template_id": 1},
        "roles": {"release": owners, "publish": owners},
    }


async def add_apps(world: World, shops: int) -> None:
    """``shops`` apps kept in the database (as `app add` keeps them), and ``secret``, which
    only U0LEAD may view; then the running configuration reads them, as after a restart."""
    found = [(shop(n), f"Shop {n}", definition(n)) for n in range(shops)]
    only_lead = {"view": ["U0LEAD"], "release": ["U0LEAD"], "publish": ["U0LEAD"]}
    secret = {
        "name": "Secret",
        "wechat": {"appid": "wx9999999999999999", "template_id": 1},
        "roles": only_lead,
    }
    found.append(("secret", "Secret", secret))
    now = utcnow()
    await insert(
        world,
        App,
        [
            {"key": k, "name": name, "source": "chat", "definition": d, "tags": []}
            | {"created_at": now, "updated_at": now, "updated_by": "console:tester"}
            for k, name, d in found
        ],
    )
    await AppBook.of(world.runtime.service).load()


async def insert(world: World, model: Any, rows: list[dict[str, Any]]) -> None:
    """``rows`` in ``model``'s table in one statement and one transaction (a thousand ORM
    objects, or SQLite's autocommit of each row, take seconds)."""
    async with world.runtime.store.engine.connect() as plain:
        conn = await plain.execution_options(isolation_level="SERIALIZABLE")
        async with conn.begin():
            await conn.execute(model.__table__.insert(), rows)


def shop_state(n: int, shops: int) -> ReleaseState | None:
    if n >= shops - UNRELEASED:
        return None
    return S.REJECTED if shop(n) == REJECTED else CYCLE[n % 4]


async def add_releases(world: World, shops: int | None) -> None:
    """Version 1.0.0 of every app, written straight to the database (a thousand uploads
    through the emulator would take far longer): demo in review on WeChat and approved on
    Alipay, secret rejected, the shops as :func:`shop_state` says (None: demo alone)."""
    now = utcnow()
    planned: list[tuple[str, str, ReleaseState, timedelta]] = [
        ("demo", "wechat", S.IN_REVIEW, timedelta(0)),
        ("demo", "alipay", S.APPROVED, timedelta(0)),
    ]
    if shops is None:
        shops = 0
    else:
        planned.append(("secret", "wechat", S.REJECTED, timedelta(0)))
    for n in range(shops):
        state = shop_state(n, shops)
        if state is not None:
            planned.append((shop(n), "wechat", state, LONG_AGO))
    keys = list(dict.fromkeys(key for key, *_ in planned))
    ids = {key: n for n, key in enumerate(keys, 1)}  # the worlds here have no releases yet
    await insert(
        world,
        Release,
        [
            {"id": ids[key], "app_key": key, "version": "1.0.0", "notes": "menu"}
            | {"created_by": "U0DEV", "created_at": now}
            for key in keys
        ],
    )
    await insert(
        world,
        ReleaseTarget,
        [
            {
                "release_id": ids[key],
                "platform": platform,
                "state": str(state),
                "revision": 0,
                "platform_ref": "",
                "review_reason": "icon too small" if state is S.REJECTED else "",
                "detail": "",
                "uploaded_at": now - ago,
                "submitted_at": now - ago,
                "decided_at": now - ago,
                "released_at": now - ago if state is S.RELEASED else None,
                "updated_at": now - ago,
            }
            for key, platform, state, ago in planned
        ],
    )


@pytest.fixture
async def fleet(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    """test_release_flow's Slack world (demo: U0DEV releases it, the S0LEADS group —
    U0LEAD — publishes it) with 999 more apps and a release of most of them."""
    async with open_world(tmp_path, database_url) as world:
        await add_apps(world, SHOPS)
        await add_releases(world, SHOPS)
        yield world


async def open_home(world: World, user: str) -> dict[str, Any]:
    before = len(world.slack.calls("views.publish"))
    await world.post(*slack_requests.app_home_opened(SECRET, user=user))
    await world.slack.wait_for("views.publish", count=before + 1)
    return world.slack.home_views[user]


@contextmanager
def counting_queries(world: World) -> Iterator[list[str]]:
    """The SQL statements run while inside."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engine = world.runtime.store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [b for b in view["blocks"] if b.get("block_id") == block_id]
    assert len(found) == 1, block_id
    return found[0]


def rows(view: dict[str, Any]) -> dict[str, set[str]]:
    """``app:platform`` → the action ids of the buttons on that Home row."""
    out: dict[str, set[str]] = {}
    for b in view["blocks"]:
        block_id = str(b.get("block_id", ""))
        if block_id.startswith("h:"):
            accessory = b.get("accessory")
            out[block_id[2:]] = {accessory["action_id"]} if accessory else set()
        elif block_id.startswith("ha:"):
            out[block_id[3:]] |= {e["action_id"] for e in b["elements"]}
    return out


def check_limits(view: dict[str, Any]) -> None:
    """Slack's: 100 blocks a Home tab, 3,000 characters a section, 150 a header, unique
    block ids."""
    blocks = view["blocks"]
    assert len(blocks) <= cards.MAX_HOME_BLOCKS, len(blocks)
    ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(ids) == len(set(ids))
    for b in blocks:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= 3000, b["block_id"]
        elif b["type"] == "header":
            assert len(b["text"]["text"]) <= 150
        elif b["type"] == "context":
            assert len(b["elements"]) <= 10
            assert all(len(e["text"]) <= 3000 for e in b["elements"])


def wechat_counts(shops: int) -> Counter[str]:
    """What the summary should count on WeChat for a viewer who may not view secret."""
    counted = Counter(policy.words(s) for n in range(shops) if (s := shop_state(n, shops)))
    counted[policy.words(S.IN_REVIEW)] += 1  # demo
    return counted


async def test_a_thousand_apps_fit_one_home_with_the_viewers_own_rows(fleet: World) -> None:
    assert len(fleet.runtime.service.config.apps) == 1000
    started = time.perf_counter()
    with counting_queries(fleet) as queries:
        home = await open_home(fleet, "U0DEV")
    took = time.perf_counter() - started
    check_limits(home)
    assert took < 5, took
    # the summary and the attention list are read at once for all; rows only for U0DEV's
    assert len(queries) <= 20, len(queries)

    summary = block(home, "summary")["text"]["text"]
    assert "*999 apps you may view*" in summary  # not secret: U0DEV may not view it
    (wechat,) = [line for line in summary.splitlines() if line.startswith("*WeChat*: ")]
    for words, n in wechat_counts(SHOPS).items():
        assert f"{n} {words}" in wechat, (words, n, wechat)
    assert f"{UNRELEASED} no release yet" in wechat
    assert "*Alipay*: 1 approved" in summary

    attention = block(home, "attention")["text"]["text"]
    waited = sum(1 for n in range(SHOPS) if shop_state(n, SHOPS) is S.IN_REVIEW)
    assert attention.startswith(f"*Needs attention ({waited + 1})*")  # + the rejection
    assert f"• {REJECTED} 1.0.0 on WeChat: rejected since " in attention
    assert "— icon too small" in attention
    assert "secret" not in json.dumps(home)
    assert len(attention.splitlines()) == 1 + cards.HOME_ATTENTION
    more = block(home, "attention-more")["elements"][0]["text"]
    assert f"…and {waited + 1 - cards.HOME_ATTENTION} more — `/ship status all`" in more

    # U0DEV's own apps (demo, and shop0001), with the buttons their states offer
    assert "*Your apps* (2)" in block(home, "yours")["text"]["text"]
    assert rows(home) == {
        "demo:alipay": set(),  # approved: publishing takes the publish role, not U0DEV's
        "demo:wechat": {action_id("expedite")},  # withdrawing too
        "shop0001:wechat": {action_id("expedite"), action_id("withdraw")},
    }
    assert list(rows(home)) == ["shop0001:wechat", "demo:wechat", "demo:alipay"]  # attention first


async def test_who_owns_nothing_gets_the_summary_and_no_rows(fleet: World) -> None:
    home = await open_home(fleet, "U0VIEWER")
    check_limits(home)
    assert "*999 apps you may view*" in block(home, "summary")["text"]["text"]
    assert rows(home) == {}  # too many apps to list every one
    assert "none names you to release or publish it" in block(home, "yours")["text"]["text"]
    # who may view secret sees it counted, and its rejection needs attention
    lead = await open_home(fleet, "U0LEAD")
    check_limits(lead)
    assert "*1,000 apps you may view*" in block(lead, "summary")["text"]["text"]
    assert "• secret 1.0.0 on WeChat: rejected" in block(lead, "attention")["text"]["text"]
    assert set(rows(lead)) == {"demo:alipay", "demo:wechat", "secret:wechat"}  # S0LEADS' own
    assert rows(lead)["demo:alipay"] == {action_id("publish"), action_id("withdraw")}


async def test_an_owner_of_every_app_gets_as_many_rows_as_fit(
    tmp_path: Path, database_url: str
) -> None:
    async with open_world(tmp_path, database_url) as world:
        await add_apps(world, 120)
        await add_releases(world, 120)
        with counting_queries(world) as queries:
            home = await open_home(world, "U0OPS")
        check_limits(home)
        shown = rows(home)
        assert 20 < len(shown) <= cards.HOME_ROW_APPS
        assert len(home["blocks"]) >= cards.MAX_HOME_BLOCKS - 2  # filled up
        assert "*Your apps* (119)" in block(home, "yours")["text"]["text"]  # not shop0001
        more = block(home, "more")["elements"][0]["text"]
        assert f"…and {119 - len(shown)} more app × platform rows" in more
        # each app with rows costs a read of its releases (and one more app was tried)
        releases = [q for q in queries if "FROM release_target" in q or "JOIN release_target" in q]
        apps_with_rows = len({key.split(":")[0] for key in shown})
        assert len(releases) <= 2 + apps_with_rows + 1, len(releases)  # 2: the summary's


async def test_a_home_row_offers_no_button_whose_quota_is_spent(
    tmp_path: Path, database_url: str
) -> None:
    async with open_world(tmp_path, database_url) as world:
        world.runtime.emulators["wechat"].speedup_limit = 0  # type: ignore[attr-defined]
        await add_releases(world, None)  # demo in review on WeChat
        home = await open_home(world, "U0LEAD")
        check_limits(home)
        assert rows(home)["demo:wechat"] == {action_id("withdraw")}  # no Expedite
        said = block(home, "h:demo:wechat")["text"]["text"]
        assert "no expedited reviews this month left (0 of 0" in said, said
        # only few apps and none of them U0VIEWER's: every row, as before
        viewer = await open_home(world, "U0VIEWER")
        assert set(rows(viewer)) == {"demo:alipay", "demo:wechat"}
        assert "*Every app*" in block(viewer, "yours")["text"]["text"]


def test_the_summary_stays_inside_slacks_limits_whatever_it_says() -> None:
    """Reasons and names come from people and platforms: escaped, and clipped so that a
    section never passes 3,000 characters."""
    now = utcnow()
    wordy = "<!channel> & " + "x" * 5000
    lines = [
        TargetLine(shop(n), "1.0.0", "wechat", S.REJECTED, "decided", now, wordy, now, None, now)
        for n in range(500)
    ]
    status = views.GroupStatus(
        "all",
        500,
        {"wechat": {policy.words(S.REJECTED): 500}},
        {"alipay": 500},
        [views.Attention(line, "rejected") for line in lines],
    )
    app = AppEntry(shop(0), "<b>" * 200, ZoneInfo("Asia/Shanghai"))
    quota = Quota("submit", "audit submissions this month <&>", 0, 10)
    row = cards.HomeRow(
        app, "wechat", S.REJECTED, "1.0.0", None, None, now, False, (wordy,) * 8, (quota,)
    )
    summary = cards.HomeSummary(
        status, ZoneInfo("Asia/Shanghai"), owned=1, hidden=3, rollouts=(wordy,) * 300
    )
    home = cards.home_view([row], may=lambda app_key, verb: True, summary=summary)
    check_limits(home)
    for b in home["blocks"]:
        if b["type"] == "section":
            check_mrkdwn_escaped(b["text"]["text"])
    assert "*Alipay*: 500 no release yet" in block(home, "summary")["text"]["text"]
    assert "…and 490 more" in block(home, "attention-more")["elements"][0]["text"]
    assert "*Rollouts in progress (300)*" in block(home, "rollouts")["text"]["text"]
    assert "…and 290 more" in block(home, "rollouts-more")["elements"][0]["text"]
    assert rows(home) == {f"{shop(0)}:wechat": set()}  # Resubmit: the quota is spent
    said = block(home, f"h:{shop(0)}:wechat")["text"]["text"]
    assert "no audit submissions this month &lt;&amp;&gt; left (0 of 10" in said
    assert "…and 3 more app × platform rows" in block(home, "more")["elements"][0]["text"]
