"""Timed actions in storage (SQLite and PostgreSQL): the plan rows, their compare-and-set
life cycle, races between processes, and the release queries the scheduler asks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from storage import (
    ActionTaken,
    InvalidTransition,
    ReleaseState,
    Store,
    TargetView,
    TimedState,
    make_engine,
    migrate,
)
from storage.models import Release, TimedAction, utcnow
from storage.states import TIMED_TRANSITIONS

S = ReleaseState
T = TimedState
SHANGHAI = ZoneInfo("Asia/Shanghai")
DUE = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
FINAL = [T.DONE, T.FAILED, T.MISSED, T.CANCELLED]
# how to bring a fresh (pending) action into each state
PATH: dict[TimedState, list[TimedState]] = {
    T.PENDING: [],
    T.RUNNING: [T.RUNNING],
    T.DONE: [T.RUNNING, T.DONE],
    T.FAILED: [T.RUNNING, T.FAILED],
    T.MISSED: [T.MISSED],
    T.CANCELLED: [T.CANCELLED],
    T.HELD: [T.RUNNING, T.HELD],
}


async def make_release(store: Store, version: str = "1.0.0", app: str = "demo") -> Release:
    await store.sync_apps({"demo": "Demo", "shop": "Shop"})
    return await store.ensure_release(app, version, "notes", "tester")


async def to_state(store: Store, release: Release, platform: str, state: ReleaseState) -> None:
    """Upload ``release`` to ``platform`` and move it to ``state`` (approved or beyond)."""
    target = await store.add_target(release, platform)
    if state is S.UPLOADED:
        return
    target = await store.transition(target, S.IN_REVIEW, platform_ref="42")
    if state is S.IN_REVIEW:
        return
    target = await store.transition(target, S.APPROVED)
    if state is S.RELEASED:
        await store.transition(target, S.RELEASED)


async def plan(
    store: Store, release: Release, due_at: datetime = DUE, platforms: list[str] | None = None
) -> TimedAction:
    return await store.add_timed(release, platforms or ["wechat"], due_at, "U012ABCDEF")


async def in_state(store: Store, action: TimedAction, state: TimedState) -> TimedAction:
    for step in PATH[state]:
        action = await store.move_timed(action, step)
    return action


@pytest.fixture
async def two_stores(database_url: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two stores on two engines (two connection pools) over one database."""
    engines = [make_engine(database_url) for _ in range(2)]
    try:
        await migrate(engines[0])
        yield Store(engines[0]), Store(engines[1])
    finally:
        for engine in engines:
            await engine.dispose()


# -- the rows -----------------------------------------------------------------------------


def test_the_path_table_reaches_every_state() -> None:
    assert set(PATH) == set(TimedState)
    for state, steps in PATH.items():
        current = T.PENDING
        for step in steps:
            assert step in TIMED_TRANSITIONS[current]
            current = step
        assert current is state


async def test_a_timed_action_is_stored_and_read_back(store: Store) -> None:
    release = await make_release(store)
    due = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
    added = await store.add_timed(release, ["wechat", "alipay"], due, "U012ABCDEF", "C0123456")
    assert added.id is not None
    read = await store.timed(added.id)
    assert read is not None
    assert read.action == "publish" and read.state == T.PENDING and read.revision == 0
    assert (read.release_id, read.app_key, read.version) == (release.id, "demo", "1.0.0")
    assert read.platforms == ["wechat", "alipay"]
    assert read.due_at == DUE and read.due_at.utcoffset() == timedelta(0)
    assert read.created_by == "U012ABCDEF" and read.channel == "C0123456"
    assert read.created_at.tzinfo is not None
    assert read.finished_at is None and read.outcome == ""
    assert await store.timed(added.id + 1000) is None


async def test_timed_actions_are_listed_soonest_first_and_filtered(store: Store) -> None:
    demo1 = await make_release(store, "1.0.0")
    demo2 = await make_release(store, "2.0.0")
    shop = await make_release(store, "1.0.0", app="shop")
    late = await plan(store, demo1, DUE + timedelta(hours=5))
    early = await plan(store, demo2, DUE - timedelta(days=3))
    middle = await plan(store, shop, DUE)
    running = await in_state(store, await plan(store, demo1, DUE + timedelta(hours=1)), T.RUNNING)
    cancelled = await in_state(store, await plan(store, shop, DUE - timedelta(days=9)), T.CANCELLED)

    def ids(actions: list[TimedAction]) -> list[int | None]:
        return [a.id for a in actions]

    assert ids(await store.timed_actions()) == [early.id, middle.id, late.id]
    assert ids(await store.timed_actions(states=[T.RUNNING])) == [running.id]
    assert ids(await store.timed_actions(states=[T.PENDING, T.CANCELLED, T.RUNNING])) == [
        cancelled.id,
        early.id,
        middle.id,
        running.id,
        late.id,
    ]
    assert await store.timed_actions(states=[T.DONE, T.FAILED, T.MISSED]) == []
    assert ids(await store.timed_actions(apps=["demo"])) == [early.id, late.id]
    assert ids(await store.timed_actions(apps=["shop", "demo"])) == [early.id, middle.id, late.id]
    assert await store.timed_actions(apps=[]) == []  # no apps: nothing (None: every app)
    assert await store.timed_actions(apps=["nope"]) == []
    assert ids(await store.timed_actions(release_id=demo1.id)) == [late.id]
    assert ids(await store.timed_actions(states=list(TimedState), release_id=demo1.id)) == [
        running.id,
        late.id,
    ]
    assert ids(await store.timed_actions(states=list(TimedState), apps=["shop"])) == [
        cancelled.id,
        middle.id,
    ]
    assert await store.timed_actions(apps=["shop"], release_id=demo1.id) == []


# -- the life cycle -----------------------------------------------------------------------


async def test_a_timed_action_runs_and_finishes(store: Store) -> None:
    action = await plan(store, await make_release(store))
    running = await store.move_timed(action, T.RUNNING)
    assert running.state == T.RUNNING and running.revision == 1
    assert running.finished_at is None and running.outcome == ""
    before = utcnow()
    done = await store.move_timed(running, T.DONE, "published on WeChat")
    after = utcnow()
    assert done.state == T.DONE and done.revision == 2 and done.outcome == "published on WeChat"
    assert done.finished_at is not None and before <= done.finished_at <= after
    assert action.id is not None
    assert await store.timed(action.id) == done


@pytest.mark.parametrize("final", FINAL)
async def test_every_final_state_records_when_it_finished(store: Store, final: TimedState) -> None:
    action = await plan(store, await make_release(store))
    *steps, last = PATH[final]
    for step in steps:
        action = await store.move_timed(action, step, f"now {step}")
    assert action.finished_at is None  # running is not final
    before = utcnow()
    moved = await store.move_timed(action, last)  # no outcome: the old one stays
    assert moved.state == final and moved.revision == len(PATH[final])
    assert moved.finished_at is not None and before <= moved.finished_at <= utcnow()
    assert moved.outcome == (f"now {T.RUNNING}" if steps else "")


@pytest.mark.parametrize("current", list(TimedState))
async def test_steps_the_life_cycle_forbids_are_refused(store: Store, current: TimedState) -> None:
    action = await in_state(store, await plan(store, await make_release(store)), current)
    forbidden = set(TimedState) - TIMED_TRANSITIONS[current]
    assert forbidden  # every state forbids at least staying where it is
    for wanted in sorted(forbidden):
        with pytest.raises(InvalidTransition) as err:
            await store.move_timed(action, wanted, "should not be written")
        assert err.value.current == current and err.value.wanted == wanted
        assert f"cannot go from {current} to {wanted}" in str(err.value)
        if not TIMED_TRANSITIONS[current]:
            assert "nothing (this is final)" in str(err.value)
    assert action.id is not None
    assert await store.timed(action.id) == action  # nothing was written


async def test_the_refusal_names_what_may_come_next(store: Store) -> None:
    action = await plan(store, await make_release(store))
    with pytest.raises(InvalidTransition, match="from pending comes running, missed, cancelled"):
        await store.move_timed(action, T.DONE)


async def test_a_stale_copy_cannot_be_moved(store: Store) -> None:
    action = await plan(store, await make_release(store))
    running = await store.move_timed(action, T.RUNNING)
    with pytest.raises(ActionTaken) as err:
        await store.move_timed(action, T.CANCELLED, "cancelled by U0")  # read before the move
    assert err.value.current == running and err.value.wanted == T.CANCELLED
    assert f"#{action.id} is already running" in str(err.value)
    assert action.id is not None
    stored = await store.timed(action.id)
    assert stored is not None and stored.state == T.RUNNING and stored.revision == 1
    assert stored.outcome == "" and stored.finished_at is None


async def test_two_schedulers_never_both_run_one_action(
    two_stores: tuple[Store, Store],
) -> None:
    stores = two_stores
    release = await make_release(stores[0])
    for round_ in range(5):  # several rounds: the race must never produce two winners
        action = await plan(stores[0], release, DUE + timedelta(minutes=round_))
        assert action.id is not None
        read = [await s.timed(action.id) for s in stores]  # each process reads the row
        assert read[0] is not None and read[1] is not None
        results = await asyncio.gather(
            stores[0].move_timed(read[0], T.RUNNING),
            stores[1].move_timed(read[1], T.RUNNING),
            return_exceptions=True,
        )
        winners = [r for r in results if isinstance(r, TimedAction)]
        losers = [r for r in results if isinstance(r, ActionTaken)]
        assert len(winners) == 1 and len(losers) == 1, results
        assert losers[0].current.state == T.RUNNING
        assert losers[0].current.revision == winners[0].revision == 1
        stored = await stores[1].timed(action.id)
        assert stored is not None and stored.state == T.RUNNING and stored.revision == 1


@pytest.mark.parametrize("runner_first", [True, False])
async def test_cancel_and_fire_at_once_one_wins(
    two_stores: tuple[Store, Store], runner_first: bool
) -> None:
    stores = two_stores
    release = await make_release(stores[0])
    for round_ in range(4):
        action = await plan(stores[0], release, DUE + timedelta(minutes=round_))
        racers = [
            stores[0].move_timed(action, T.RUNNING),
            stores[1].move_timed(action, T.CANCELLED, "cancelled by U0"),
        ]
        if not runner_first:
            racers.reverse()
        results = await asyncio.gather(*racers, return_exceptions=True)
        winners = [r for r in results if isinstance(r, TimedAction)]
        losers = [r for r in results if isinstance(r, ActionTaken)]
        assert len(winners) == 1 and len(losers) == 1, results
        won = winners[0]
        assert losers[0].current.state == won.state and losers[0].wanted != won.state
        assert action.id is not None
        stored = await stores[0].timed(action.id)
        assert stored is not None and stored.state == won.state and stored.revision == 1
        if won.state == T.CANCELLED:
            assert stored.finished_at is not None and stored.outcome == "cancelled by U0"
        else:
            assert won.state == T.RUNNING
            assert stored.finished_at is None and stored.outcome == ""


# -- what the scheduler and the digest ask about releases ---------------------------------


def versions(views: list[TargetView]) -> list[tuple[str, str]]:
    """(version, platform) of each view, in the order the store gives them."""
    return [(v.release.version, v.target.platform) for v in views]


async def test_in_states_filters_by_state_and_app(store: Store) -> None:
    await to_state(store, await make_release(store, "1.0.0"), "wechat", S.RELEASED)
    demo2 = await make_release(store, "2.0.0")
    await to_state(store, demo2, "wechat", S.IN_REVIEW)
    await to_state(store, demo2, "alipay", S.APPROVED)
    await to_state(store, await make_release(store, "5.0", app="shop"), "wechat", S.IN_REVIEW)

    assert versions(await store.in_states([S.IN_REVIEW])) == [
        ("5.0", "wechat"),
        ("2.0.0", "wechat"),
    ]
    assert versions(await store.in_states([S.IN_REVIEW], ["demo"])) == [("2.0.0", "wechat")]
    assert versions(await store.in_states(frozenset({S.APPROVED, S.RELEASED}), ["demo"])) == [
        ("2.0.0", "alipay"),
        ("1.0.0", "wechat"),
    ]
    assert await store.in_states([S.DELAYED, S.REJECTED]) == []
    assert await store.in_states([S.IN_REVIEW], ["nope"]) == []
    assert versions(await store.watched()) == [  # watched() is in_states(ACTIVE)
        ("5.0", "wechat"),
        ("2.0.0", "alipay"),
        ("2.0.0", "wechat"),
    ]


async def test_released_since_counts_only_releases_after_the_moment(store: Store) -> None:
    old = await make_release(store, "1.0.0")
    await to_state(store, old, "wechat", S.RELEASED)
    await asyncio.sleep(0.01)
    since = utcnow()
    await asyncio.sleep(0.01)
    new = await make_release(store, "1.1.0")
    await to_state(store, new, "wechat", S.RELEASED)
    await to_state(store, new, "alipay", S.APPROVED)  # approved is not released
    await to_state(store, await make_release(store, "9.0", app="shop"), "wechat", S.RELEASED)

    assert versions(await store.released_since(since, ["demo"])) == [("1.1.0", "wechat")]
    # the moment may be given in any zone; it means the same instant
    assert versions(await store.released_since(since.astimezone(SHANGHAI), ["demo"])) == [
        ("1.1.0", "wechat")
    ]
    assert versions(await store.released_since(since - timedelta(hours=1), ["demo"])) == [
        ("1.1.0", "wechat"),
        ("1.0.0", "wechat"),
    ]
    assert versions(await store.released_since(since, ["demo", "shop"])) == [
        ("9.0", "wechat"),
        ("1.1.0", "wechat"),
    ]
    assert await store.released_since(utcnow() + timedelta(seconds=1), ["demo", "shop"]) == []
    assert await store.released_since(since, []) == []


async def test_newer_released_looks_at_later_releases_of_the_app_on_that_platform(
    store: Store,
) -> None:
    v1 = await make_release(store, "1.0.0")
    v2 = await make_release(store, "1.1.0")
    v3 = await make_release(store, "1.2.0")
    await to_state(store, v1, "wechat", S.RELEASED)
    await to_state(store, v1, "alipay", S.APPROVED)
    await to_state(store, v2, "wechat", S.APPROVED)
    await to_state(store, v2, "alipay", S.APPROVED)
    await to_state(store, v3, "wechat", S.APPROVED)
    other = await make_release(store, "7.0", app="shop")  # a later id, but another app
    await to_state(store, other, "alipay", S.RELEASED)

    # an older release being live does not count, nor does a newer one only approved
    assert await store.newer_released(v2, "wechat") is None
    assert await store.newer_released(v1, "wechat") is None  # itself is not "newer"
    assert await store.newer_released(v1, "alipay") is None  # shop's release is not demo's

    target = await store.target(v3.id or 0, "wechat")
    assert target is not None
    await store.transition(target, S.RELEASED)
    found = await store.newer_released(v1, "wechat")
    assert found is not None
    assert (found.release.version, found.target.platform, found.state) == (
        "1.2.0",
        "wechat",
        S.RELEASED,
    )
    assert (await store.newer_released(v2, "wechat")) is not None
    assert await store.newer_released(v3, "wechat") is None
    assert await store.newer_released(v2, "alipay") is None  # other platforms are separate

    target = await store.target(v2.id or 0, "wechat")
    assert target is not None
    await store.transition(target, S.RELEASED)
    newest = await store.newer_released(v1, "wechat")  # two newer: the newest is named
    assert newest is not None and newest.release.version == "1.2.0"


# -- deliveries ---------------------------------------------------------------------------


async def test_forgetting_deliveries_keeps_other_prefixes_and_newer_keys(store: Store) -> None:
    for key in ("slack:Ev1", "remind:7", "digest:C0123:2026-11-24", "nudge:3:1790000000:1"):
        assert await store.first_delivery(key)
    await asyncio.sleep(0.01)
    middle = utcnow()
    await asyncio.sleep(0.01)
    assert await store.first_delivery("slack:Ev2")

    assert await store.forget_deliveries(middle - timedelta(hours=1), "slack:") == 0
    assert await store.forget_deliveries(middle, "slack:") == 1  # Ev1 only: Ev2 is newer
    assert await store.first_delivery("slack:Ev1")
    assert not await store.first_delivery("slack:Ev2")
    for key in ("remind:7", "digest:C0123:2026-11-24", "nudge:3:1790000000:1"):
        assert not await store.first_delivery(key)  # other kinds are never forgotten here
    assert await store.forget_deliveries(utcnow() + timedelta(seconds=1), "remind:") == 1
    assert await store.first_delivery("remind:7")
    assert not await store.first_delivery("digest:C0123:2026-11-24")


async def test_a_delivery_is_forgotten_by_the_time_it_was_said_to_be_seen(store: Store) -> None:
    """A push receiver records a push's name at its adapter's clock, not the database's."""
    seen = datetime(2026, 9, 21, 14, 0, tzinfo=UTC)
    assert await store.first_delivery("push:wechat:aa", seen)
    assert await store.first_delivery("push:wechat:bb", seen + timedelta(days=1))
    assert not await store.first_delivery("push:wechat:aa", seen + timedelta(days=2))
    assert await store.forget_deliveries(seen + timedelta(hours=1), "push:") == 1
    assert await store.first_delivery("push:wechat:aa", seen + timedelta(days=2))
    assert not await store.first_delivery("push:wechat:bb")


async def test_a_delivery_prefix_is_taken_literally(store: Store) -> None:
    assert await store.first_delivery("slack:Ev1")
    assert await store.first_delivery("slack_x")
    assert await store.forget_deliveries(utcnow() + timedelta(seconds=1), "slack_") == 1
    assert not await store.first_delivery("slack:Ev1")
