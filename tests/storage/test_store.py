"""Storage on SQLite and PostgreSQL: migrations, writes, and compare-and-set transitions."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlmodel import SQLModel

from storage import (
    InvalidTransition,
    ReleaseState,
    StaleState,
    Store,
    TargetExists,
    make_engine,
    migrate,
)
from storage.db import SCHEMA_HEAD, alembic_config
from storage.models import ReleaseTarget

S = ReleaseState


async def approved_target(store: Store, version: str = "1.0.0") -> ReleaseTarget:
    await store.sync_apps({"demo": "Demo"})
    release = await store.ensure_release("demo", version, "notes", "tester")
    target = await store.add_target(release, "wechat")
    target = await store.transition(target, S.IN_REVIEW, platform_ref="42")
    return await store.transition(target, S.APPROVED)


async def test_migrations_match_the_models_and_rerun_cleanly(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await migrate(engine)
        await migrate(engine)  # already at head: nothing to do, no error

        def diff(conn: object) -> list[object]:
            ctx = MigrationContext.configure(conn)  # type: ignore[arg-type]
            return list(compare_metadata(ctx, SQLModel.metadata))

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


def test_the_schema_head_miniship_knows_is_alembics() -> None:
    """A new migration changes :data:`storage.db.SCHEMA_HEAD` too: start-up skips Alembic
    (and loading it) when the database is at that revision."""
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_HEAD


async def test_a_release_moves_through_its_life_cycle(store: Store) -> None:
    target = await approved_target(store)
    assert target.state == S.APPROVED and target.platform_ref == "42"
    assert target.submitted_at is not None and target.submitted_at.tzinfo is not None
    assert target.decided_at is not None and target.decided_at.utcoffset() == UTC.utcoffset(None)
    target = await store.transition(target, S.PUBLISHING)
    target = await store.transition(target, S.RELEASED)
    assert target.released_at is not None
    assert target.revision == 4


async def test_an_invalid_step_is_refused_and_changes_nothing(store: Store) -> None:
    target = await approved_target(store)
    with pytest.raises(
        InvalidTransition, match="from approved comes withdrawn, publishing, gray, released"
    ):
        await store.transition(target, S.REJECTED)
    again = await store.target(target.release_id, "wechat")
    assert again is not None and again.state == S.APPROVED and again.revision == target.revision


async def test_a_stale_row_cannot_be_moved(store: Store) -> None:
    target = await approved_target(store)
    await store.transition(target, S.PUBLISHING)
    with pytest.raises(StaleState) as err:
        await store.transition(target, S.PUBLISHING)  # the copy read before the move
    assert err.value.current.state == S.PUBLISHING


async def test_two_writers_on_two_engines_never_both_publish(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(2)]
    try:
        await migrate(engines[0])
        stores = [Store(e) for e in engines]
        target = await approved_target(stores[0])
        for _ in range(5):  # several rounds: the race must never produce two winners
            results = await asyncio.gather(
                *(s.transition(target, S.PUBLISHING) for s in stores), return_exceptions=True
            )
            winners = [r for r in results if isinstance(r, ReleaseTarget)]
            losers = [r for r in results if isinstance(r, StaleState)]
            assert len(winners) == 1 and len(losers) == 1, results
            target = await stores[1].transition(winners[0], S.APPROVED)  # publish failed; retry
    finally:
        for e in engines:
            await e.dispose()


RACER = """
import asyncio, os, sys
from storage import ReleaseState, StaleState, Store, make_engine

async def main(url, start):
    store = Store(make_engine(url))
    release = await store.release("demo", "1.0.0")
    target = await store.target(release.id, "wechat")
    open(start + "." + str(os.getpid()), "w").close()  # read the row: ready
    while not os.path.exists(start):
        await asyncio.sleep(0.005)
    try:
        await store.transition(target, ReleaseState.PUBLISHING)
        print("won")
    except StaleState:
        print("lost")
    await store.engine.dispose()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_two_processes_never_both_publish(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    await migrate(engine)
    await approved_target(Store(engine))
    await engine.dispose()
    start = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, database_url, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parents[2],
        )
        for _ in range(3)
    ]
    for _ in range(3000):  # every process has read the row before any may write
        if len(list(tmp_path.glob("go.*"))) == len(procs):
            break
        await asyncio.sleep(0.01)
    start.touch()
    outputs = [p.communicate(timeout=60) for p in procs]
    results = sorted(out.strip() for out, _ in outputs)
    assert results == ["lost", "lost", "won"], outputs


@pytest.mark.postgresql_only
async def test_replicas_starting_together_both_bring_the_apps_in(
    store: Store, database_url: str
) -> None:
    """Two replicas started at once on an empty database (a Deployment's first rollout):
    while one inserts the file's apps, the other's start waits for it and then keeps what
    it inserted. Running the Kubernetes manifest found the second crashing with a
    duplicate key, having read the table before the first committed."""
    other = make_engine(database_url)
    try:
        async with other.connect() as first:  # the first replica, mid-start
            await first.execute(text("BEGIN"))
            await first.execute(
                text(
                    "INSERT INTO app (key, name, created_at, source, tags, updated_at, "
                    "updated_by) VALUES ('shop', 'Old name', now(), 'file', '[]', now(), '')"
                )
            )
            second = asyncio.create_task(store.sync_apps({"shop": "Shop", "demo": "Demo"}))
            while not await _waiting_for_a_lock(store):
                assert not second.done(), second.exception()
                await asyncio.sleep(0.01)
            await first.execute(text("COMMIT"))
        await second
    finally:
        await other.dispose()
    assert {a.key: a.name for a in await store.apps()} == {"demo": "Demo", "shop": "Shop"}
    await store.sync_apps({"shop": "Shop", "demo": "Demo shop"})  # the file renamed one
    assert {a.key: a.name for a in await store.apps()} == {"demo": "Demo shop", "shop": "Shop"}


async def test_a_fleet_of_apps_is_brought_in_whatever_its_size(store: Store) -> None:
    """More apps than one statement may carry parameters for (SQLite and asyncpg both
    bound them): inserted in batches; a second start changes nothing."""
    fleet = {f"app{n:04d}": f"App {n}" for n in range(4000)}
    await store.sync_apps(fleet)
    await store.sync_apps(fleet)
    assert {a.key: a.name for a in await store.apps()} == fleet


async def _waiting_for_a_lock(store: Store) -> bool:
    async with store.engine.connect() as conn:
        found = await conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        )
        return bool(found.scalar_one())


async def test_uploading_the_same_version_twice_is_refused(store: Store) -> None:
    await store.sync_apps({"demo": "Demo"})
    release = await store.ensure_release("demo", "1.0.0", "n", "a")
    assert (await store.ensure_release("demo", "1.0.0", "other", "b")).id == release.id
    await store.add_target(release, "wechat")
    with pytest.raises(TargetExists) as err:
        await store.add_target(release, "wechat")
    assert err.value.current.state == S.UPLOADED


async def test_older_versions_are_superseded(store: Store) -> None:
    await store.sync_apps({"demo": "Demo"})
    old = await store.ensure_release("demo", "1.0.0", "n", "a")
    await store.add_target(old, "wechat")
    await store.add_target(old, "alipay")
    new = await store.ensure_release("demo", "1.1.0", "n", "a")
    await store.add_target(new, "wechat")
    moved = await store.supersede("demo", "wechat", new, [S.UPLOADED])
    assert [(v.release.version, v.target.platform) for v in moved] == [("1.0.0", "wechat")]
    states = {t.platform: t.state for t in await store.targets(old.id or 0)}
    assert states == {"wechat": S.SUPERSEDED, "alipay": S.UPLOADED}


async def test_watched_and_latest_and_history(store: Store) -> None:
    target = await approved_target(store)
    release = await store.release("demo", "1.0.0")
    assert release is not None
    assert [v.state for v in await store.watched()] == [S.APPROVED]
    target = await store.transition(target, S.PUBLISHING)
    assert [v.state for v in await store.watched()] == [S.PUBLISHING]
    await store.transition(target, S.RELEASED)
    assert await store.watched() == []
    assert [v.release.version for v in await store.latest("demo")] == ["1.0.0"]
    await store.record(actor="a", action="upload", outcome="ok", app="demo", release=release)
    await store.record(
        actor="b",
        action="publish",
        outcome="failed",
        app="demo",
        release=release,
        platform="wechat",
        message="85020: not approved",
        exchanges=[{"api": "POST /wxa/release", "answer": {"errcode": 85020}}],
    )
    events = await store.history("demo")
    assert [(e.actor, e.action, e.outcome) for e in events] == [
        ("a", "upload", "ok"),
        ("b", "publish", "failed"),
    ]
    assert events[1].exchanges[0]["answer"] == {"errcode": 85020}
    assert events[1].version == "1.0.0" and events[0].at.tzinfo is not None


async def test_the_release_card_is_remembered(store: Store) -> None:
    await store.sync_apps({"demo": "Demo"})
    release = await store.ensure_release("demo", "1.0.0", "n", "a")
    await store.set_card(release, "C0123", "1732430000.000100")
    again = await store.release("demo", "1.0.0")
    assert again is not None and (again.card_channel, again.card_ts) == (
        "C0123",
        "1732430000.000100",
    )


async def test_a_delivery_is_handled_once_even_across_engines(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(2)]
    try:
        await migrate(engines[0])
        stores = [Store(e) for e in engines]
        firsts = await asyncio.gather(*(s.first_delivery("slack:Ev1") for s in stores * 3))
        assert sorted(firsts) == [False] * 5 + [True]
        assert await stores[1].first_delivery("slack:Ev2")
        assert await stores[1].first_delivery("remind:7")
        from datetime import datetime, timedelta

        later = datetime.now(UTC) + timedelta(seconds=1)
        assert await stores[0].forget_deliveries(later, "slack:") == 2
        assert await stores[0].first_delivery("slack:Ev1")
        assert not await stores[0].first_delivery("remind:7")  # other keys are kept
    finally:
        for e in engines:
            await e.dispose()


async def test_an_app_a_sync_brings_back_keeps_its_tags_and_every_write_is_a_revision(
    store: Store,
) -> None:
    shop = {"wechat": {"appid": "wx1234567890abcdef"}}
    start = await store.apps_revision()
    await store.define_app("shop", "Shop", shop, "wechat", "U0ANN", ["north"], "added")
    await store.tag_app("shop", ["north", "autumn"], "U0ANN")
    await store.retire_app("shop", "U0ANN")
    found = [("shop", "Shop Two", shop, ["merchants", "north"], "authorized wechat: Shop Two")]
    found.append(("new", "New", {"wechat": {"appid": "wx00000000000000aa"}}, ["merchants"], ""))
    back, new = await store.define_apps(found, "wechat", "wechat sync")
    assert back.tags == ["north", "autumn", "merchants"] and back.retired_at is None
    assert new.tags == ["merchants"]
    rows = {r.key: r for r in await store.apps()}
    assert rows["shop"].tags == ["north", "autumn", "merchants"] and rows["shop"].name == "Shop Two"
    assert await store.apps_revision() == start + 4  # one a transaction, however many apps
    added = sorted((e.actor, e.action, e.message) for e in await store.history("shop", 10))
    assert added == [
        ("U0ANN", "app add", "added"),
        ("wechat sync", "app add", "authorized wechat: Shop Two"),
    ]
    assert await store.history("new", 10) == []  # nothing said: nothing recorded
