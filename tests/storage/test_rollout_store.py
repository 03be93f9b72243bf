"""A rollout's row: one under way per app and platform, moved by compare-and-set."""

from __future__ import annotations

import asyncio
import re

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from storage import (
    ACTIVE_ROLLOUT,
    InvalidTransition,
    RolloutState,
    RolloutTaken,
    Store,
    make_engine,
    migrate,
)
from storage.db import alembic_config
from storage.models import ROLLOUT_ACTIVE_WHERE, Rollout

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


async def test_the_database_keeps_one_of_two_starts_at_once(store: Store) -> None:
    rows = [await rollout(store), await rollout(store)]
    results = await asyncio.gather(*(store.add_rollout(r) for r in rows), return_exceptions=True)
    kept = [r for r in results if isinstance(r, Rollout)]
    refused = [r for r in results if isinstance(r, RolloutTaken)]
    assert len(kept) == 1 and len(refused) == 1, results
    assert refused[0].current.id == kept[0].id
    # the index itself, with no code in front of it: a second row under way is refused
    with pytest.raises(IntegrityError):
        async with store.session() as s:
            s.add(await rollout(store))
            await s.commit()
    # its condition names exactly the states under way
    assert re.findall(r"'(\w+)'", ROLLOUT_ACTIVE_WHERE) == [str(x) for x in ACTIVE_ROLLOUT]


async def test_the_migration_keeps_the_newest_of_rollouts_already_doubled(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    try:
        await migrate(engine)
        store = Store(engine)
        row = await rollout(store)  # its app and release, made at the newest schema
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0013"))
        async with engine.begin() as conn:  # two under way at once: possible before 0014
            for n in (1, 2):
                await conn.execute(
                    text(
                        "INSERT INTO rollout (id, app_key, version, platform, release_id, "
                        "plan, steps, every_seconds, step, state, revision, on_regression, "
                        "thresholds, note, started_by, created_at, updated_at) VALUES (:id, "
                        "'demo', '1.1.0', 'wechat', :release, '', '[5, 100]', 86400, 0, "
                        "'running', 0, 'revert', '{}', '', 'tester', :now, :now)"
                    ),
                    {"id": n, "release": row.release_id, "now": row.created_at},
                )
        await migrate(engine)
        older, newer = sorted(await store.rollouts(), key=lambda r: r.id or 0)
        assert newer.state == R.RUNNING
        assert older.state == R.ABORTED and "newer rollout" in older.note
    finally:
        await engine.dispose()
