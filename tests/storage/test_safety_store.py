"""The safety tables on both databases: freezes and locks, two-person requests,
confirmations — each answered once (compare-and-set), expiry read in SQL — and the
history query that shows a hold of every app in each app's history."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from storage import ConfirmationRefused, Store

NOW = datetime.now(UTC)
HOUR = timedelta(hours=1)


async def test_freezes_of_an_app_include_those_of_every_app(store: Store) -> None:
    await store.add_freeze("demo", "freeze", NOW - HOUR, NOW + HOUR, "train", "ann")
    await store.add_freeze("*", "lock", NOW, None, "incident", "bob")
    await store.add_freeze("shop", "freeze", NOW, NOW + HOUR, "", "ann")
    await store.add_freeze("demo", "freeze", NOW - 2 * HOUR, NOW - HOUR, "over", "ann")
    await store.add_freeze("demo", "freeze", NOW + HOUR, NOW + 2 * HOUR, "to come", "ann")
    found = await store.freezes(["demo"], NOW)
    assert [(f.app_key, f.kind, f.reason) for f in found] == [
        ("demo", "freeze", "train"),
        ("*", "lock", "incident"),
        ("demo", "freeze", "to come"),
    ]


async def test_lifting_takes_exactly_the_named_scope_and_kind(store: Store) -> None:
    await store.add_freeze("demo", "freeze", NOW, NOW + HOUR, "", "ann")
    await store.add_freeze("*", "freeze", NOW, NOW + HOUR, "", "ann")
    await store.add_freeze("demo", "lock", NOW, None, "", "ann")
    lifted = await store.lift_freezes("demo", "freeze", "bob", NOW)
    assert [(f.app_key, f.kind) for f in lifted] == [("demo", "freeze")]
    left = await store.freezes(["demo"], NOW)
    assert sorted((f.app_key, f.kind) for f in left) == [("*", "freeze"), ("demo", "lock")]
    assert await store.lift_freezes("demo", "freeze", "bob", NOW) == []


async def test_a_request_is_decided_once_even_when_two_decide_at_once(store: Store) -> None:
    row = await store.add_request(
        "demo", "1.0.0", "publish", "publish demo 1.0.0", None, "ann", HOUR
    )
    assert row.id is not None
    assert [r.id for r in await store.requests(["demo"], NOW)] == [row.id]
    decided = await asyncio.gather(
        store.decide_request(row.id, "approved", "bob"),
        store.decide_request(row.id, "denied", "cy"),
    )
    winners = [d for d in decided if d is not None]
    assert len(winners) == 1 and winners[0].state in ("approved", "denied")
    assert await store.requests(["demo"], NOW) == []


async def test_an_expired_request_cannot_be_approved(store: Store) -> None:
    row = await store.add_request("demo", None, "offline", "offline demo alipay", None, "ann", HOUR)
    assert row.id is not None
    assert await store.requests(["demo"], NOW + 2 * HOUR) == []
    late = await store.add_request("demo", None, "offline", "x", None, "ann", -HOUR)
    assert late.id is not None
    assert await store.decide_request(late.id, "approved", "bob") is None
    expired = await store.request(late.id)
    assert expired is not None and expired.state == "expired"


async def test_a_confirmation_counts_once_and_only_for_its_asker(store: Store) -> None:
    _, token = await store.ask_confirmation("ann", "offline demo alipay", None, "Really?", HOUR)
    with pytest.raises(ConfirmationRefused, match="only the person who typed"):
        await store.answer_confirmation(token, "bob", "confirmed")
    answers = await asyncio.gather(
        store.answer_confirmation(token, "ann", "confirmed"),
        store.answer_confirmation(token, "ann", "confirmed"),
        return_exceptions=True,
    )
    assert sum(not isinstance(a, BaseException) for a in answers) == 1, answers
    with pytest.raises(ConfirmationRefused, match="confirmed already"):
        await store.answer_confirmation(token, "ann", "cancelled")
    with pytest.raises(ConfirmationRefused, match="not a confirmation miniship asked for"):
        await store.answer_confirmation("forged", "ann", "confirmed")
    _, old = await store.ask_confirmation("ann", "rollback demo wechat", None, "?", -HOUR)
    with pytest.raises(ConfirmationRefused, match="expired"):
        await store.answer_confirmation(old, "ann", "confirmed")


async def test_an_apps_history_shows_the_holds_of_every_app(store: Store) -> None:
    await store.record(actor="ann", action="publish", outcome="ok", app="demo")
    await store.record(actor="ann", action="freeze", outcome="ok", message="all apps")
    await store.record(actor="ann", action="template add", outcome="ok", message="library")
    await store.record(actor="ann", action="publish", outcome="ok", app="shop")
    spanning = ("freeze", "unfreeze", "lock", "unlock")
    found = await store.events(["demo"], spanning=spanning)
    assert sorted((e.action, e.app_key) for e in found) == [("freeze", None), ("publish", "demo")]
    everything = await store.events(["demo", "shop"], unscoped=True, spanning=spanning)
    assert len(everything) == 4
