"""A rollout's row: one under way per app and platform, moved by compare-and-set."""

from __future__ import annotations

import pytest

from storage import InvalidTransition, RolloutState, RolloutTaken, Store
from storage.models import Rollout

R = RolloutState


async def rollout(store: Store, platform: str = "wechat") -> Rollout:
    await store.sync_apps({"demo": "Demo"})
    release = await store.ensure_release("demo", "1.1.0", "notes", "tester")
    assert release.id is not None
    return Rollout(
        app_key="demo",
        version="1.1.0",
        platform=platform,
        release_id=release.id,
        steps=[5, 50, 100],
        step=0,
        started_by="tester",
    )


async def test_one_rollout_under_way_per_app_and_platform(store: Store) -> None:
    first = await store.add_rollout(await rollout(store))
    with pytest.raises(RolloutTaken) as taken:
        await store.add_rollout(await rollout(store))
    assert taken.value.current.id == first.id
    other = await store.add_rollout(await rollout(store, "alipay"))  # another platform: fine
    assert other.id != first.id
    await store.move_rollout(first, R.ABORTED)
    again = await store.add_rollout(await rollout(store))  # the first one is over
    assert again.id not in (first.id, other.id)
    found = await store.rollouts(apps=["demo"], platform="wechat")
    assert [r.id for r in found] == [again.id, first.id]  # newest first


async def test_moves_are_compare_and_set(store: Store) -> None:
    row = await store.add_rollout(await rollout(store))
    moved = await store.move_rollout(row, R.RUNNING, step=1, note="advanced")
    assert moved.step == 1 and moved.revision == row.revision + 1
    with pytest.raises(RolloutTaken) as stale:  # the row as read before the move
        await store.move_rollout(row, R.PAUSED)
    assert stale.value.current.step == 1
    with pytest.raises(ValueError, match="cannot change"):
        await store.move_rollout(moved, R.RUNNING, version="9.9.9")
    done = await store.move_rollout(moved, R.COMPLETED, step=2)
    assert done.finished_at is not None
    with pytest.raises(InvalidTransition):
        await store.move_rollout(done, R.RUNNING)
