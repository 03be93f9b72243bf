"""Every read and write of miniship's tables.

Transitions of a release on a platform are compare-and-set: the caller hands back the
row it read, and the update only lands if the row still has that revision. Two
processes that race to move the same release (two people clicking Publish, or two bot
replicas firing one timed release) cannot both succeed; the loser gets
:class:`StaleState` with the row as it now is.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, delete, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import insert_for
from storage.models import (
    ApiToken,
    App,
    ApprovalRequest,
    AppsRevision,
    Confirmation,
    ConnectRequest,
    Delivery,
    Event,
    FleetItem,
    FleetRun,
    Freeze,
    Release,
    ReleaseTarget,
    Rollout,
    TimedAction,
    WebhookDelivery,
    utcnow,
)
from storage.states import (
    ACTIVE,
    FleetState,
    ItemState,
    ReleaseState,
    RolloutState,
    TimedState,
    check_rollout,
    check_timed,
    check_transition,
)

__all__ = [
    "ACTIVE_ROLLOUT",
    "ActionTaken",
    "ConfirmationRefused",
    "LinkRefused",
    "RolloutTaken",
    "StaleState",
    "Store",
    "TargetExists",
    "TargetView",
    "TokenTaken",
]

S = ReleaseState

# what a transition may change besides the state
_CHANGEABLE = frozenset(
    {"platform_ref", "review_reason", "detail", "submitted_at", "decided_at", "released_at"}
)


_ROLLOUT_CHANGEABLE = frozenset(
    {
        "step",
        "action_id",
        "next_at",
        "step_at",
        "gray_since",
        "holding_since",
        "asked_at",
        "warned_at",
        "note",
        "previous",
        "held_by",
    }
)
ACTIVE_ROLLOUT = (
    RolloutState.RUNNING,
    RolloutState.PAUSED,
    RolloutState.HALTED,
    RolloutState.STEPPING,
)
"""A rollout still under way (one per app and platform at a time)."""

# the rows moved by compare-and-set on their ``revision``
Revised = TypeVar("Revised", ReleaseTarget, TimedAction, Rollout)


class StaleState(Exception):
    """Somebody else changed the release on this platform first."""

    def __init__(self, current: ReleaseTarget, wanted: ReleaseState) -> None:
        self.current = current
        self.wanted = wanted
        super().__init__(
            f"{current.platform} was changed meanwhile: it is now {current.state}, "
            f"so it was not moved to {wanted}"
        )


class ActionTaken(Exception):
    """Somebody else moved the timed action first (it fired, or was cancelled)."""

    def __init__(self, current: TimedAction, wanted: TimedState) -> None:
        self.current = current
        self.wanted = wanted
        super().__init__(f"timed action #{current.id} is already {current.state}")


class RolloutTaken(Exception):
    """Somebody else moved the rollout first (``.current`` holds it as it is now)."""

    def __init__(self, current: Rollout, wanted: RolloutState) -> None:
        self.current = current
        self.wanted = wanted
        super().__init__(f"rollout #{current.id} moved meanwhile: it is {current.state} now")


class TargetExists(Exception):
    """The version is already on that platform."""

    def __init__(self, current: ReleaseTarget) -> None:
        self.current = current
        super().__init__(f"already uploaded to {current.platform} (now {current.state})")


class LinkRefused(Exception):
    """An authorization callback whose ``state`` is not a link miniship made for that
    platform, or one already used or expired. The message says which, for people."""


class TokenTaken(Exception):
    """A live token already has that name (revoke it first)."""


class ConfirmationRefused(Exception):
    """A Confirm (or Cancel) that does not count: not a confirmation miniship asked for,
    already answered, expired, or clicked by someone other than who asked. The message
    says which, for people."""


@dataclass(frozen=True)
class TargetView:
    """A release on one platform, with the release it belongs to."""

    target: ReleaseTarget
    release: Release

    @property
    def state(self) -> ReleaseState:
        return ReleaseState(self.target.state)


TIMED_OPEN = (TimedState.PENDING, TimedState.RUNNING)
"""Timed releases that may still publish."""


_IN_BATCH = 500  # keys in one IN (...) list


async def _apps_changed(s: AsyncSession) -> None:
    """Raise the apps' revision, in the transaction of the change (:meth:`Store.apps_revision`)."""
    await s.exec(
        update(AppsRevision)
        .where(col(AppsRevision.id) == 1)
        .values(revision=col(AppsRevision.revision) + 1)
    )


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def session(self) -> AsyncSession:
        return AsyncSession(self.engine, expire_on_commit=False)

    # -- apps ---------------------------------------------------------------------------

    async def sync_apps(self, apps: Mapping[str, str]) -> None:
        """Make the app table hold every configured app (key → display name).

        Replicas started together on one database all do this at once: a key is inserted
        unless it is there (INSERT … ON CONFLICT DO NOTHING, which waits for a replica
        inserting the same key and then leaves it be), never read first and inserted
        after; then each name the file changed is set."""
        if not apps:
            return
        rows = [App(key=key, name=name).model_dump() for key, name in apps.items()]
        insert = insert_for(self.engine, App)
        async with self.session() as s:
            for at in range(0, len(rows), _IN_BATCH):  # a statement's parameters are bounded
                batch = insert.values(rows[at : at + _IN_BATCH])
                await s.exec(batch.on_conflict_do_nothing(index_elements=["key"]))
            named = dict((await s.exec(select(App.key, App.name))).all())
            for key, name in apps.items():
                if named.get(key) != name:
                    await s.exec(update(App).where(col(App.key) == key).values(name=name))
            await s.commit()

    async def apps(self) -> list[App]:
        """Every app row, retired ones too, by key."""
        async with self.session() as s:
            return list((await s.exec(select(App).order_by(col(App.key)))).all())

    async def define_app(
        self,
        key: str,
        name: str,
        definition: Mapping[str, Any],
        source: str,
        by: str,
        tags: Sequence[str] = (),
        said: str = "",
    ) -> App:
        """One app of :meth:`define_apps`."""
        (row,) = await self.define_apps([(key, name, definition, tags, said)], source, by)
        return row

    async def define_apps(
        self,
        found: Sequence[tuple[str, str, Mapping[str, Any], Sequence[str], str]],
        source: str,
        by: str,
    ) -> list[App]:
        """Add apps that miniship.toml does not define, or replace their definitions (a
        retired app comes back), in one transaction: each (key, name, definition, tags,
        what to record). ``tags`` are added to those the app has (an app that comes back
        keeps its own); what to record, unless "", is an ``app add`` event."""
        now = utcnow()
        keys = [key for key, *_ in found]
        async with self.session() as s:
            known: dict[str, App] = {}
            for at in range(0, len(keys), _IN_BATCH):
                q = select(App).where(col(App.key).in_(keys[at : at + _IN_BATCH]))
                known.update((a.key, a) for a in (await s.exec(q)).all())
            rows = []
            for key, name, definition, tags, said in found:
                row = known.get(key) or App(key=key, name=name, created_at=now)
                row.name, row.definition, row.source = name, dict(definition), source
                row.tags = [*row.tags, *(t for t in tags if t not in row.tags)]
                row.updated_at, row.updated_by, row.retired_at = now, by, None
                s.add(row)
                rows.append(row)
                if said:
                    s.add(
                        Event(actor=by, action="app add", outcome="ok", app_key=key, message=said)
                    )
            await _apps_changed(s)
            await s.commit()
            return rows

    async def tag_app(self, key: str, tags: Sequence[str], by: str) -> App | None:
        """Set the tags of app ``key`` (None: no such app)."""
        async with self.session() as s:
            row = await s.get(App, key)
            if row is None:
                return None
            row.tags, row.updated_at, row.updated_by = list(tags), utcnow(), by
            s.add(row)
            await _apps_changed(s)
            await s.commit()
            await s.refresh(row)
            return row

    async def retire_app(self, key: str, by: str) -> App | None:
        """Retire app ``key``: it is no longer released (its history stays)."""
        async with self.session() as s:
            row = await s.get(App, key)
            if row is None:
                return None
            now = utcnow()
            row.retired_at, row.updated_at, row.updated_by = now, now, by
            s.add(row)
            await _apps_changed(s)
            await s.commit()
            await s.refresh(row)
            return row

    async def apps_revision(self) -> int:
        """The revision of the apps, raised by every write of an app (how replicas notice
        a change: kept by the database, so no host's clock plays a part)."""
        async with self.session() as s:
            q = select(AppsRevision.revision).where(AppsRevision.id == 1)
            return (await s.exec(q)).one_or_none() or 0

    async def in_flight(self, app: str) -> list[str]:
        """What ``app`` has going on that removing it would strand: releases the watcher
        follows (in review, approved, staged, publishing) and timed releases to come."""
        async with self.session() as s:
            q = (
                select(Release.version, ReleaseTarget.platform, ReleaseTarget.state)
                .join(ReleaseTarget, col(ReleaseTarget.release_id) == col(Release.id))
                .where(Release.app_key == app, col(ReleaseTarget.state).in_(list(ACTIVE)))
            )
            found = [f"{v} on {p} ({st})" for v, p, st in (await s.exec(q)).all()]
            timed = select(TimedAction.id).where(
                TimedAction.app_key == app,
                col(TimedAction.state).in_(list(TIMED_OPEN)),
            )
            found += [f"timed release #{n}" for n in (await s.exec(timed)).all()]
            return found

    # -- fleet runs ---------------------------------------------------------------------

    async def add_fleet(
        self, command: str, by: str, channel: str | None, items: Sequence[tuple[str, str]]
    ) -> FleetRun:
        """A new run of ``command``, one pending item per (app, its command line)."""
        async with self.session() as s:
            run = FleetRun(command=command, created_by=by, channel=channel)
            s.add(run)
            await s.flush()
            assert run.id is not None
            s.add_all(FleetItem(run_id=run.id, app_key=a, line=line) for a, line in items)
            await s.commit()
            await s.refresh(run)
            return run

    async def fleet(self, run_id: int) -> FleetRun | None:
        async with self.session() as s:
            return await s.get(FleetRun, run_id, populate_existing=True)

    async def fleets(
        self, *, states: Sequence[str] = (), limit: int | None = None
    ) -> list[FleetRun]:
        """Runs, newest first (only in ``states`` when given)."""
        q = select(FleetRun).order_by(col(FleetRun.id).desc())
        if states:
            q = q.where(col(FleetRun.state).in_(list(states)))
        if limit is not None:
            q = q.limit(limit)
        async with self.session() as s:
            return list((await s.exec(q)).all())

    async def fleet_apps(self, run_ids: Sequence[int]) -> dict[int, set[str]]:
        """The apps of each of the runs ``run_ids``."""
        found: dict[int, set[str]] = {run: set() for run in run_ids}
        async with self.session() as s:
            for at in range(0, len(run_ids), _IN_BATCH):
                q = select(FleetItem.run_id, FleetItem.app_key).where(
                    col(FleetItem.run_id).in_(list(run_ids[at : at + _IN_BATCH]))
                )
                for run, app in (await s.exec(q)).all():
                    found[run].add(app)
        return found

    async def fleet_items(self, run_id: int) -> list[FleetItem]:
        async with self.session() as s:
            q = select(FleetItem).where(FleetItem.run_id == run_id).order_by(col(FleetItem.id))
            return list((await s.exec(q)).all())

    async def claim_item(self, run_id: int) -> FleetItem | None:
        """The next pending item of run ``run_id``, claimed (pending → running) in one
        statement: on PostgreSQL the row is picked ``FOR UPDATE SKIP LOCKED``, so workers
        in several processes each take a different item without waiting on each other;
        SQLite runs one writer at a time. None when no item is pending."""
        pending = (
            select(FleetItem.id)
            .where(col(FleetItem.run_id) == run_id, col(FleetItem.state) == ItemState.PENDING)
            .order_by(col(FleetItem.id))
            .limit(1)
        )
        if self.engine.dialect.name == "postgresql":
            pending = pending.with_for_update(skip_locked=True)
        claim = (
            update(FleetItem)
            .where(
                col(FleetItem.id) == pending.scalar_subquery(),
                col(FleetItem.state) == ItemState.PENDING,
            )
            .values(state=ItemState.RUNNING, started_at=utcnow())
            .returning(FleetItem)
        )
        async with self.session() as s:
            row = (await s.exec(claim)).first()
            await s.commit()
            return row[0] if row is not None else None

    async def finish_item(self, item: FleetItem, state: str, message: str) -> None:
        async with self.session() as s:
            await s.exec(
                update(FleetItem)
                .where(col(FleetItem.id) == item.id, col(FleetItem.state) == ItemState.RUNNING)
                .values(state=state, message=message, finished_at=utcnow())
            )
            await s.commit()

    async def requeue_item(self, item: FleetItem, message: str) -> None:
        """Back in the queue after a passing fault (one attempt more)."""
        async with self.session() as s:
            await s.exec(
                update(FleetItem)
                .where(col(FleetItem.id) == item.id, col(FleetItem.state) == ItemState.RUNNING)
                .values(state=ItemState.PENDING, message=message, attempts=item.attempts + 1)
            )
            await s.commit()

    async def release_items(self, ids: Sequence[int]) -> None:
        """Items this process was running when it stopped: back in the queue."""
        async with self.session() as s:
            await s.exec(
                update(FleetItem)
                .where(col(FleetItem.id).in_(list(ids)), col(FleetItem.state) == ItemState.RUNNING)
                .values(state=ItemState.PENDING)
            )
            await s.commit()

    async def idle_fleets(self, since: datetime) -> list[FleetRun]:
        """Running fleet runs nothing happened to since ``since``: created before, and no
        item of theirs started or finished after (the process driving them stopped)."""
        busy = select(FleetItem.run_id).where(
            or_(col(FleetItem.started_at) >= since, col(FleetItem.finished_at) >= since)
        )
        q = select(FleetRun).where(
            col(FleetRun.state) == FleetState.RUNNING,
            col(FleetRun.created_at) < since,
            col(FleetRun.id).not_in(busy),
        )
        async with self.session() as s:
            return list((await s.exec(q)).all())

    async def requeue_stale_items(self, before: datetime) -> int:
        """Items of running fleets left running since before ``before`` (their process
        died) go back in the queue; how many."""
        async with self.session() as s:
            running = select(FleetRun.id).where(FleetRun.state == FleetState.RUNNING)
            result = await s.exec(
                update(FleetItem)
                .where(
                    col(FleetItem.state) == ItemState.RUNNING,
                    col(FleetItem.started_at) < before,
                    col(FleetItem.run_id).in_(running.scalar_subquery()),
                )
                .values(state=ItemState.PENDING)
            )
            await s.commit()
            return int(getattr(result, "rowcount", 0) or 0)

    async def finish_fleet(self, run_id: int) -> None:
        """A running run whose items are all done is done."""
        async with self.session() as s:
            open_items = select(FleetItem.id).where(
                FleetItem.run_id == run_id,
                col(FleetItem.state).in_([ItemState.PENDING, ItemState.RUNNING]),
            )
            await s.exec(
                update(FleetRun)
                .where(
                    col(FleetRun.id) == run_id,
                    col(FleetRun.state) == FleetState.RUNNING,
                    ~open_items.exists(),
                )
                .values(state=FleetState.DONE, finished_at=utcnow())
            )
            await s.commit()

    async def cancel_fleet(self, run_id: int) -> FleetRun | None:
        """Cancel a running run: its pending items are cancelled (running ones finish);
        None when it was not running."""
        async with self.session() as s:
            moved = await s.exec(
                update(FleetRun)
                .where(col(FleetRun.id) == run_id, col(FleetRun.state) == FleetState.RUNNING)
                .values(state=FleetState.CANCELLED, finished_at=utcnow())
            )
            if getattr(moved, "rowcount", 0) != 1:
                return None
            await s.exec(
                update(FleetItem)
                .where(col(FleetItem.run_id) == run_id, col(FleetItem.state) == ItemState.PENDING)
                .values(state=ItemState.CANCELLED, finished_at=utcnow())
            )
            await s.commit()
            return await s.get(FleetRun, run_id, populate_existing=True)

    async def retry_fleet(self, run_id: int, by: str) -> FleetRun | None:
        """Queue the failed (and cancelled) items of a run that is not running again, to
        run as ``by``; None when it is running or has nothing to retry."""
        again = [ItemState.FAILED, ItemState.CANCELLED]
        async with self.session() as s:
            moved = await s.exec(
                update(FleetItem)
                .where(col(FleetItem.run_id) == run_id, col(FleetItem.state).in_(again))
                .values(state=ItemState.PENDING, attempts=0, message="")
            )
            if getattr(moved, "rowcount", 0) == 0:
                return None
            reopened = await s.exec(
                update(FleetRun)
                .where(col(FleetRun.id) == run_id, col(FleetRun.state) != FleetState.RUNNING)
                .values(state=FleetState.RUNNING, finished_at=None, retried_by=by)
            )
            if getattr(reopened, "rowcount", 0) != 1:
                await s.rollback()
                return None
            await s.commit()
            return await s.get(FleetRun, run_id, populate_existing=True)

    async def set_fleet_card(self, run_id: int, channel: str, ts: str) -> None:
        async with self.session() as s:
            await s.exec(
                update(FleetRun)
                .where(col(FleetRun.id) == run_id)
                .values(card_channel=channel, card_ts=ts)
            )
            await s.commit()

    # -- releases -----------------------------------------------------------------------

    async def release(self, app: str, version: str) -> Release | None:
        async with self.session() as s:
            q = select(Release).where(Release.app_key == app, Release.version == version)
            return (await s.exec(q)).first()

    async def ensure_release(self, app: str, version: str, notes: str, actor: str) -> Release:
        """The release ``app``/``version``, created if it does not exist yet."""
        found = await self.release(app, version)
        if found is not None:
            return found
        try:
            async with self.session() as s:
                row = Release(app_key=app, version=version, notes=notes, created_by=actor)
                s.add(row)
                await s.commit()
                return row
        except IntegrityError:  # another process created it just now
            found = await self.release(app, version)
            if found is None:
                raise
            return found

    async def add_target(self, release: Release, platform: str, detail: str = "") -> ReleaseTarget:
        """Record that ``release`` was uploaded to ``platform``."""
        assert release.id is not None
        try:
            async with self.session() as s:
                row = ReleaseTarget(
                    release_id=release.id, platform=platform, state=S.UPLOADED, detail=detail
                )
                s.add(row)
                await s.commit()
                return row
        except IntegrityError:
            existing = await self.target(release.id, platform)
            if existing is None:
                raise
            raise TargetExists(existing) from None

    async def target(self, release_id: int, platform: str) -> ReleaseTarget | None:
        async with self.session() as s:
            q = select(ReleaseTarget).where(
                ReleaseTarget.release_id == release_id, ReleaseTarget.platform == platform
            )
            return (await s.exec(q)).first()

    async def targets(self, release_id: int) -> list[ReleaseTarget]:
        async with self.session() as s:
            q = (
                select(ReleaseTarget)
                .where(ReleaseTarget.release_id == release_id)
                .order_by(col(ReleaseTarget.platform))
            )
            return list((await s.exec(q)).all())

    async def transition(
        self, target: ReleaseTarget, to: ReleaseState, **changes: Any
    ) -> ReleaseTarget:
        """Move ``target`` to ``to`` if nobody changed it since it was read.

        Raises:
            InvalidTransition: the state machine does not allow the step.
            StaleState: the row changed meanwhile (``.current`` holds it as it is now).
        """
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise TypeError(f"transition cannot change {sorted(unknown)}")
        current = ReleaseState(target.state)
        check_transition(current, to)
        values = _defaults_for(current, to) | changes
        values.update(state=str(to), updated_at=utcnow())
        moved, fresh = await self._compare_and_set(target, values)
        if not moved:
            raise StaleState(fresh, to)
        return fresh

    async def supersede(
        self, app: str, platform: str, newer: Release, states: Sequence[ReleaseState]
    ) -> list[TargetView]:
        """Mark older versions on ``platform`` in ``states`` as superseded by ``newer``."""
        moved: list[TargetView] = []
        for view in await self._views(
            Release.app_key == app,
            ReleaseTarget.platform == platform,
            col(ReleaseTarget.state).in_([str(x) for x in states]),
            Release.id != newer.id,
        ):
            try:
                fresh = await self.transition(
                    view.target, S.SUPERSEDED, detail=f"superseded by {newer.version}"
                )
            except StaleState:
                continue
            moved.append(TargetView(fresh, view.release))
        return moved

    async def watched(self) -> list[TargetView]:
        """Every release whose outcome the platform may still change on its own."""
        return await self.in_states(ACTIVE)

    async def in_states(
        self, states: Sequence[ReleaseState] | frozenset[ReleaseState], apps: Sequence[str] = ()
    ) -> list[TargetView]:
        """Releases (of ``apps``, or of every app) now in one of ``states``."""
        where = [col(ReleaseTarget.state).in_([str(x) for x in states])]
        if apps:
            where.append(col(Release.app_key).in_(list(apps)))
        return await self._views(*where)

    async def count_states(self) -> dict[tuple[str, str], int]:
        """How many releases are in each state, per platform (for ``/metrics``)."""
        async with self.session() as s:
            rows = await s.exec(
                select(ReleaseTarget.platform, ReleaseTarget.state, func.count()).group_by(
                    col(ReleaseTarget.platform), col(ReleaseTarget.state)
                )
            )
            return {(p, str(st)): int(n) for p, st, n in rows.all()}

    async def released_since(self, since: datetime, apps: Sequence[str]) -> list[TargetView]:
        return await self._views(
            col(Release.app_key).in_(list(apps)),
            ReleaseTarget.state == str(S.RELEASED),
            col(ReleaseTarget.released_at) >= since,
        )

    async def newer_released(self, release: Release, platform: str) -> TargetView | None:
        """A later version of the same app already released on ``platform``, if any."""
        found = await self._views(
            Release.app_key == release.app_key,
            col(Release.id) > release.id,
            ReleaseTarget.platform == platform,
            ReleaseTarget.state == str(S.RELEASED),
        )
        return found[0] if found else None

    async def latest(self, app: str, releases: int = 5) -> list[TargetView]:
        """The app's newest ``releases`` releases on every platform, newest first."""
        newest = (
            select(Release.id)
            .where(Release.app_key == app)
            .order_by(col(Release.id).desc())
            .limit(releases)
        )
        return await self._views(col(Release.id).in_(newest.scalar_subquery()))

    async def newest(self, apps: Sequence[str]) -> list[TargetView]:
        """The newest release of each of ``apps`` on each platform it is on (a version
        uploaded to one platform leaves the other's newest as it was)."""
        async with self.session() as s:
            q = (
                select(func.max(Release.id), ReleaseTarget.platform)
                .join(ReleaseTarget, col(ReleaseTarget.release_id) == col(Release.id))
                .where(col(Release.app_key).in_(list(apps)))
                .group_by(col(Release.app_key), col(ReleaseTarget.platform))
            )
            pairs = {(rid, platform) for rid, platform in (await s.exec(q)).all()}
        views = await self._views(col(Release.id).in_([rid for rid, _ in pairs]))
        return [v for v in views if (v.release.id, v.target.platform) in pairs]

    async def _views(self, *where: Any) -> list[TargetView]:
        async with self.session() as s:
            q = (
                select(ReleaseTarget, Release)
                .join(Release, col(Release.id) == ReleaseTarget.release_id)
                .where(*where)
                .order_by(col(Release.id).desc(), col(ReleaseTarget.platform))
            )
            return [TargetView(t, r) for t, r in (await s.exec(q)).all()]

    async def set_card(self, release: Release, channel: str, ts: str) -> Release:
        """Remember where the release's Slack card is, so later steps update it in place."""
        async with self.session() as s:
            row = await s.get(Release, release.id, populate_existing=True)
            assert row is not None
            row.card_channel, row.card_ts = channel, ts
            s.add(row)
            await s.commit()
            return row

    async def first_delivery(self, key: str, at: datetime | None = None) -> bool:
        """True the first time ``key`` is seen (in any process), False for every repeat.
        ``at`` (default: now) is when it was seen, what :meth:`forget_deliveries` goes by."""
        try:
            async with self.session() as s:
                s.add(Delivery(key=key) if at is None else Delivery(key=key, at=at))
                await s.commit()
        except IntegrityError:
            return False
        return True

    async def forget_deliveries(self, before: datetime, prefix: str) -> int:
        """Drop keys starting with ``prefix`` older than ``before`` (Slack's retries stop
        after minutes; a reminder's or nudge's key must stay to keep it from repeating)."""
        async with self.session() as s:
            result = await s.exec(
                delete(Delivery).where(
                    col(Delivery.at) < before,
                    # a literal, case-sensitive prefix (LIKE would read _ and % as wildcards)
                    func.substr(Delivery.key, 1, len(prefix)) == prefix,
                )
            )
            await s.commit()
            return int(getattr(result, "rowcount", 0) or 0)

    # -- timed actions --------------------------------------------------------------------

    async def add_timed(
        self,
        release: Release,
        platforms: Sequence[str],
        due_at: datetime,
        created_by: str,
        channel: str | None = None,
        *,
        action: str = "publish",
    ) -> TimedAction:
        """A timed ``action``: ``publish`` (a timed release) or ``rollout`` (a rollout's
        next step, see :meth:`add_rollout`)."""
        assert release.id is not None
        async with self.session() as s:
            row = TimedAction(
                action=action,
                release_id=release.id,
                app_key=release.app_key,
                version=release.version,
                platforms=list(platforms),
                due_at=due_at,
                created_by=created_by,
                channel=channel,
            )
            s.add(row)
            await s.commit()
            return row

    async def timed(self, action_id: int) -> TimedAction | None:
        async with self.session() as s:
            return await s.get(TimedAction, action_id)

    async def timed_actions(
        self,
        *,
        states: Sequence[TimedState] = (TimedState.PENDING,),
        apps: Sequence[str] | None = None,
        release_id: int | None = None,
        actions: Sequence[str] = ("publish",),
    ) -> list[TimedAction]:
        """Timed ``actions`` (timed releases by default; a rollout's steps are
        ``rollout``) in ``states`` (pending by default), soonest first."""
        q = select(TimedAction).where(
            col(TimedAction.state).in_([str(x) for x in states]),
            col(TimedAction.action).in_(list(actions)),
        )
        if apps is not None:
            q = q.where(col(TimedAction.app_key).in_(list(apps)))
        if release_id is not None:
            q = q.where(TimedAction.release_id == release_id)
        async with self.session() as s:
            return list((await s.exec(q.order_by(col(TimedAction.due_at)))).all())

    async def move_timed(
        self, action: TimedAction, to: TimedState, outcome: str | None = None
    ) -> TimedAction:
        """Move ``action`` to ``to`` if nobody moved it since it was read.

        Raises:
            InvalidTransition: the timed action's life cycle does not allow the step.
            ActionTaken: it moved meanwhile (``.current`` holds it as it is now).
        """
        check_timed(TimedState(action.state), to)
        values: dict[str, Any] = {"state": str(to)}
        if outcome is not None:
            values["outcome"] = outcome
        if to not in (TimedState.PENDING, TimedState.RUNNING):
            values["finished_at"] = utcnow()
        moved, fresh = await self._compare_and_set(action, values)
        if not moved:
            raise ActionTaken(fresh, to)
        return fresh

    # -- rollouts -------------------------------------------------------------------------

    async def add_rollout(self, rollout: Rollout) -> Rollout:
        """Keep a new rollout, unless one of the same app and platform is still under way
        (:data:`ACTIVE_ROLLOUT`): the database's partial unique index decides, so of two
        starts at once exactly one keeps its row.

        Raises:
            RolloutTaken: that one is under way (``.current``).
        """
        async with self.session() as s:
            s.add(rollout)
            try:
                await s.commit()
            except IntegrityError:
                await s.rollback()
                active = (
                    await s.exec(
                        select(Rollout).where(
                            Rollout.app_key == rollout.app_key,
                            Rollout.platform == rollout.platform,
                            col(Rollout.state).in_([str(x) for x in ACTIVE_ROLLOUT]),
                        )
                    )
                ).first()
                if active is None:  # another constraint (a release or fleet run gone)
                    raise
                raise RolloutTaken(active, RolloutState(rollout.state)) from None
            await s.refresh(rollout)
            return rollout

    async def rollout(self, rollout_id: int) -> Rollout | None:
        async with self.session() as s:
            return await s.get(Rollout, rollout_id)

    async def rollouts(
        self,
        *,
        apps: Sequence[str] | None = None,
        platform: str | None = None,
        states: Sequence[RolloutState] | None = None,
        release_id: int | None = None,
        action_id: int | None = None,
        fleet_id: int | None = None,
    ) -> list[Rollout]:
        """Rollouts, newest first (``states`` None: any; ``fleet_id``: those a fleet run
        started)."""
        q = select(Rollout)
        if fleet_id is not None:
            q = q.where(Rollout.fleet_id == fleet_id)
        if apps is not None:
            q = q.where(col(Rollout.app_key).in_(list(apps)))
        if platform is not None:
            q = q.where(Rollout.platform == platform)
        if states is not None:
            q = q.where(col(Rollout.state).in_([str(x) for x in states]))
        if release_id is not None:
            q = q.where(Rollout.release_id == release_id)
        if action_id is not None:
            q = q.where(Rollout.action_id == action_id)
        async with self.session() as s:
            return list((await s.exec(q.order_by(col(Rollout.id).desc()))).all())

    async def move_rollout(self, rollout: Rollout, to: RolloutState, **values: Any) -> Rollout:
        """Move ``rollout`` to ``to`` (the same state: a step within it) with ``values``,
        if nobody moved it since it was read.

        Raises:
            InvalidTransition: a rollout's life cycle does not allow the step.
            RolloutTaken: it moved meanwhile (``.current`` holds it as it is now).
        """
        check_rollout(RolloutState(rollout.state), to)
        unknown = set(values) - _ROLLOUT_CHANGEABLE
        if unknown:
            raise ValueError(f"a rollout's {', '.join(sorted(unknown))} cannot change")
        now = utcnow()
        values = {**values, "state": str(to), "updated_at": now}
        if to in (RolloutState.COMPLETED, RolloutState.ABORTED):
            values["finished_at"] = now
        moved, fresh = await self._compare_and_set(rollout, values)
        if not moved:
            raise RolloutTaken(fresh, to)
        return fresh

    async def _compare_and_set(self, row: Revised, values: dict[str, Any]) -> tuple[bool, Revised]:
        """Write ``values`` (and the next revision) to ``row`` if its revision and state are
        still those read; (whether it did, the row as it is now)."""
        model = type(row)
        async with self.session() as s:
            result = await s.exec(
                update(model)
                .where(
                    col(model.id) == row.id,
                    col(model.revision) == row.revision,
                    col(model.state) == row.state,
                )
                .values(**values, revision=row.revision + 1)
            )
            await s.commit()
            moved = getattr(result, "rowcount", 0) == 1
            fresh = await s.get(model, row.id, populate_existing=True)
        assert fresh is not None
        return moved, fresh

    # -- authorization links -------------------------------------------------------------

    async def open_connect(
        self, platform: str, app: str, requested_by: str, lifetime: timedelta
    ) -> str:
        """A new authorization link's ``state`` token for ``app`` on ``platform``, valid for
        ``lifetime``. Links that expired before now are dropped on the way."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        async with self.session() as s:
            await s.exec(delete(ConnectRequest).where(col(ConnectRequest.expires_at) < now))
            s.add(
                ConnectRequest(
                    token_hash=_digest(token),
                    platform=platform,
                    app_key=app,
                    requested_by=requested_by,
                    created_at=now,
                    expires_at=now + lifetime,
                )
            )
            await s.commit()
        return token

    async def take_connect(self, platform: str, token: str) -> ConnectRequest:
        """The link ``token`` stands for, marked used: each link completes once, in one
        process, before it expires.

        Raises:
            LinkRefused: unknown token (or made for another platform), used, or expired.
        """
        now = utcnow()
        where = (
            col(ConnectRequest.token_hash) == _digest(token),
            col(ConnectRequest.platform) == platform,
        )
        async with self.session() as s:
            result = await s.exec(
                update(ConnectRequest)
                .where(
                    *where,
                    col(ConnectRequest.used_at).is_(None),
                    col(ConnectRequest.expires_at) > now,
                )
                .values(used_at=now)
            )
            await s.commit()
            row = (await s.exec(select(ConnectRequest).where(*where))).first()
        if getattr(result, "rowcount", 0) == 1 and row is not None:
            return row
        if row is None:
            raise LinkRefused("this authorization link was not made by this miniship")
        if row.used_at is not None:
            raise LinkRefused("this authorization link was used already")
        raise LinkRefused("this authorization link has expired")

    # -- freezes and locks ---------------------------------------------------------------

    async def add_freeze(
        self,
        app: str,
        kind: str,
        starts_at: datetime,
        ends_at: datetime | None,
        reason: str,
        by: str,
    ) -> Freeze:
        """A freeze (``ends_at`` set) or lock (None) of ``app`` ("*": every app)."""
        row = Freeze(
            app_key=app,
            kind=kind,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
            created_by=by,
        )
        async with self.session() as s:
            s.add(row)
            await s.commit()
            await s.refresh(row)
        return row

    async def freezes(self, apps: Sequence[str], now: datetime) -> list[Freeze]:
        """Freezes and locks of ``apps`` (and of every app) not lifted and not over at
        ``now`` — those in force and those still to come — soonest first."""
        async with self.session() as s:
            q = (
                select(Freeze)
                .where(
                    col(Freeze.app_key).in_([*apps, "*"]),
                    col(Freeze.lifted_at).is_(None),
                    or_(col(Freeze.ends_at).is_(None), col(Freeze.ends_at) > now),
                )
                .order_by(col(Freeze.starts_at), col(Freeze.id))
            )
            return list((await s.exec(q)).all())

    async def lift_freezes(self, app: str, kind: str, by: str, now: datetime) -> list[Freeze]:
        """Lift ``app``'s (exactly: "*" lifts only the every-app ones) freezes or locks that
        are in force or to come; returns those lifted."""
        found = [f for f in await self.freezes([app], now) if f.app_key == app and f.kind == kind]
        if not found:
            return []
        async with self.session() as s:
            await s.exec(
                update(Freeze)
                .where(col(Freeze.id).in_([f.id for f in found]), col(Freeze.lifted_at).is_(None))
                .values(lifted_at=now, lifted_by=by)
            )
            await s.commit()
        return found

    # -- two-person approvals -------------------------------------------------------------

    async def add_request(
        self,
        app: str,
        version: str | None,
        action: str,
        command: str,
        channel: str | None,
        by: str,
        lifetime: timedelta,
    ) -> ApprovalRequest:
        now = utcnow()
        row = ApprovalRequest(
            app_key=app,
            version=version,
            action=action,
            command=command,
            channel=channel,
            requested_by=by,
            created_at=now,
            expires_at=now + lifetime,
        )
        async with self.session() as s:
            s.add(row)
            await s.commit()
            await s.refresh(row)
        return row

    async def request(self, request_id: int) -> ApprovalRequest | None:
        async with self.session() as s:
            return await s.get(ApprovalRequest, request_id)

    async def requests(self, apps: Sequence[str], now: datetime) -> list[ApprovalRequest]:
        """Pending, unexpired requests of ``apps``, oldest first."""
        async with self.session() as s:
            q = (
                select(ApprovalRequest)
                .where(
                    col(ApprovalRequest.app_key).in_(list(apps)),
                    col(ApprovalRequest.state) == "pending",
                    col(ApprovalRequest.expires_at) > now,
                )
                .order_by(col(ApprovalRequest.id))
            )
            return list((await s.exec(q)).all())

    async def decide_request(
        self, request_id: int, state: str, by: str, note: str = ""
    ) -> ApprovalRequest | None:
        """Move a pending, unexpired request to ``state`` (compare-and-set); None when it
        was not pending any more (or has expired: then it is marked so)."""
        now = utcnow()
        async with self.session() as s:
            result = await s.exec(
                update(ApprovalRequest)
                .where(
                    col(ApprovalRequest.id) == request_id,
                    col(ApprovalRequest.state) == "pending",
                    col(ApprovalRequest.expires_at) > now,
                )
                .values(state=state, decided_by=by, decided_at=now, note=note)
            )
            await s.exec(
                update(ApprovalRequest)
                .where(
                    col(ApprovalRequest.id) == request_id,
                    col(ApprovalRequest.state) == "pending",
                    col(ApprovalRequest.expires_at) <= now,
                )
                .values(state="expired")
            )
            await s.commit()
            row = await s.get(ApprovalRequest, request_id, populate_existing=True)
        return row if getattr(result, "rowcount", 0) == 1 else None

    # -- confirmations ------------------------------------------------------------------

    async def ask_confirmation(
        self, actor: str, command: str, channel: str | None, question: str, lifetime: timedelta
    ) -> tuple[Confirmation, str]:
        """A new confirmation of ``command`` for ``actor`` and its token (for the button),
        valid for ``lifetime``. Confirmations that expired long ago are dropped."""
        token = secrets.token_urlsafe(24)
        now = utcnow()
        row = Confirmation(
            token_hash=_digest(token),
            actor=actor,
            command=command,
            channel=channel,
            question=question,
            created_at=now,
            expires_at=now + lifetime,
        )
        async with self.session() as s:
            await s.exec(
                delete(Confirmation).where(col(Confirmation.expires_at) < now - timedelta(days=1))
            )
            s.add(row)
            await s.commit()
            await s.refresh(row)
        return row, token

    async def answer_confirmation(self, token: str, actor: str, answer: str) -> Confirmation:
        """Mark the confirmation ``token`` stands for ``answer``ed ("confirmed" or
        "cancelled") by ``actor``: once, by the person who asked, before it expires.

        Raises:
            ConfirmationRefused: unknown, answered already, expired, or another person's.
        """
        now = utcnow()
        where = col(Confirmation.token_hash) == _digest(token)
        async with self.session() as s:
            result = await s.exec(
                update(Confirmation)
                .where(
                    where,
                    col(Confirmation.actor) == actor,
                    col(Confirmation.answered_at).is_(None),
                    col(Confirmation.expires_at) > now,
                )
                .values(answered_at=now, answer=answer)
            )
            await s.commit()
            row = (await s.exec(select(Confirmation).where(where))).first()
        if getattr(result, "rowcount", 0) == 1 and row is not None:
            return row
        if row is None:
            raise ConfirmationRefused("that is not a confirmation miniship asked for")
        if row.actor != actor:
            raise ConfirmationRefused("only the person who typed the command can confirm it")
        if row.answered_at is not None:
            raise ConfirmationRefused(f"that was {row.answer} already")
        raise ConfirmationRefused("that confirmation has expired; type the command again")

    # -- the CI API's tokens -------------------------------------------------------------

    async def add_token(
        self, name: str, token_hash: str, roles: Sequence[str], apps: Sequence[str], by: str
    ) -> ApiToken:
        """Keep a new token's digest. Raises TokenTaken when a live token has ``name``."""
        row = ApiToken(
            name=name,
            active_name=name,
            token_hash=token_hash,
            roles=list(roles),
            apps=list(apps),
            created_by=by,
        )
        async with self.session() as s:
            s.add(row)
            try:
                await s.commit()
            except IntegrityError:
                raise TokenTaken(name) from None
            await s.refresh(row)
        return row

    async def token_by_hash(self, token_hash: str) -> ApiToken | None:
        """The token (live or revoked) whose digest is ``token_hash``."""
        async with self.session() as s:
            q = select(ApiToken).where(ApiToken.token_hash == token_hash)
            return (await s.exec(q)).first()

    async def live_token(self, name: str) -> ApiToken | None:
        async with self.session() as s:
            return (await s.exec(select(ApiToken).where(ApiToken.active_name == name))).first()

    async def tokens(self) -> list[ApiToken]:
        """The live tokens, by name."""
        async with self.session() as s:
            q = select(ApiToken).where(col(ApiToken.active_name).is_not(None))
            return list((await s.exec(q.order_by(col(ApiToken.name)))).all())

    async def revoke_token(self, name: str, by: str) -> ApiToken | None:
        """Revoke the live token ``name`` (once: None when there is none)."""
        now = utcnow()
        async with self.session() as s:
            live = (await s.exec(select(ApiToken).where(ApiToken.active_name == name))).first()
            if live is None:
                return None
            result = await s.exec(
                update(ApiToken)
                .where(col(ApiToken.id) == live.id, col(ApiToken.active_name) == name)
                .values(active_name=None, revoked_at=now, revoked_by=by)
            )
            await s.commit()
            if getattr(result, "rowcount", 0) != 1:
                return None
            return await s.get(ApiToken, live.id, populate_existing=True)

    async def token_used(self, token_id: int, at: datetime) -> None:
        async with self.session() as s:
            await s.exec(
                update(ApiToken).where(col(ApiToken.id) == token_id).values(last_used_at=at)
            )
            await s.commit()

    # -- outgoing webhooks ---------------------------------------------------------------

    async def add_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None:
        async with self.session() as s:
            s.add_all(deliveries)
            await s.commit()

    async def claim_deliveries(
        self, now: datetime, lease: timedelta, limit: int, urls: Sequence[str]
    ) -> list[WebhookDelivery]:
        """Up to ``limit`` deliveries to ``urls`` due at ``now`` and tried by no one,
        claimed until ``now + lease`` in one statement: on PostgreSQL the rows are picked
        ``FOR UPDATE SKIP LOCKED``, so replicas sharing the database each take different
        ones. (A replica that does not know a URL — configured on others — leaves its
        rows to them.)"""
        due = (
            select(WebhookDelivery.id)
            .where(
                col(WebhookDelivery.url).in_(list(urls)),
                col(WebhookDelivery.due_at) <= now,
                or_(
                    col(WebhookDelivery.claimed_until).is_(None),
                    col(WebhookDelivery.claimed_until) <= now,
                ),
            )
            .order_by(col(WebhookDelivery.due_at), col(WebhookDelivery.id))
            .limit(limit)
        )
        if self.engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        claim = (
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id).in_(due.scalar_subquery()))
            .values(claimed_until=now + lease)
            .returning(WebhookDelivery)
        )
        async with self.session() as s:
            rows = [row[0] for row in (await s.exec(claim)).all()]
            await s.commit()
        return sorted(rows, key=lambda d: (d.due_at, d.id or 0))

    @staticmethod
    def _still_claimed(delivery: WebhookDelivery) -> Any:
        """The row as this claim left it: a claim whose lease ran out and was taken by
        another process changes nothing (its outcome is the other's to write)."""
        return and_(
            col(WebhookDelivery.id) == delivery.id,
            col(WebhookDelivery.claimed_until) == delivery.claimed_until,
        )

    async def delivery_done(self, delivery: WebhookDelivery) -> None:
        """Taken, refused or given up: the row goes."""
        async with self.session() as s:
            await s.exec(delete(WebhookDelivery).where(self._still_claimed(delivery)))
            await s.commit()

    async def delivery_again(self, delivery: WebhookDelivery, attempts: int, due: datetime) -> None:
        """Not taken yet: tried again at ``due``, by whichever process comes first."""
        async with self.session() as s:
            await s.exec(
                update(WebhookDelivery)
                .where(self._still_claimed(delivery))
                .values(attempts=attempts, due_at=due, claimed_until=None)
            )
            await s.commit()

    async def next_delivery(self, urls: Sequence[str]) -> datetime | None:
        """When the next delivery to ``urls`` falls due (or its claim runs out); None:
        none waits. (Rows of other URLs are not this sender's to wait for.)"""
        when = func.min(
            func.coalesce(
                # a claimed row is due again when its lease passes, not before
                col(WebhookDelivery.claimed_until),
                col(WebhookDelivery.due_at),
            )
        )
        async with self.session() as s:
            found = (
                await s.exec(select(when).where(col(WebhookDelivery.url).in_(list(urls))))
            ).one()
        return found

    async def drop_abandoned_deliveries(
        self, urls: Sequence[str], before: datetime
    ) -> dict[str, int]:
        """Delete the deliveries to URLs other than ``urls`` that were due before
        ``before`` and are claimed by no one: no replica has tried them since, so none is
        configured with their URL any more. How many went, per URL."""
        abandoned = and_(
            col(WebhookDelivery.url).not_in(list(urls)),
            col(WebhookDelivery.due_at) < before,
            or_(
                col(WebhookDelivery.claimed_until).is_(None),
                col(WebhookDelivery.claimed_until) < before,
            ),
        )
        count = func.count(col(WebhookDelivery.id))
        async with self.session() as s:
            found = await s.exec(
                select(WebhookDelivery.url, count).where(abandoned).group_by(WebhookDelivery.url)
            )
            dropped = {url: n for url, n in found.all()}
            if dropped:
                await s.exec(delete(WebhookDelivery).where(abandoned))
                await s.commit()
        return dropped

    # -- the event log ------------------------------------------------------------------

    async def record(
        self,
        *,
        actor: str,
        action: str,
        outcome: str,
        app: str | None = None,
        release: Release | None = None,
        version: str | None = None,
        platform: str | None = None,
        message: str = "",
        exchanges: Sequence[Mapping[str, Any]] = (),
    ) -> Event:
        async with self.session() as s:
            row = Event(
                actor=actor,
                action=action,
                outcome=outcome,
                app_key=app,
                release_id=release.id if release else None,
                version=release.version if release else version,
                platform=platform,
                message=message,
                exchanges=[dict(x) for x in exchanges],
            )
            s.add(row)
            await s.commit()
            return row

    async def history(self, app: str, limit: int = 30) -> list[Event]:
        """The app's newest ``limit`` events, oldest first."""
        async with self.session() as s:
            q = (
                select(Event)
                .where(Event.app_key == app)
                .order_by(col(Event.at).desc(), col(Event.id).desc())
                .limit(limit)
            )
            return list(reversed((await s.exec(q)).all()))

    async def count_events(
        self, app: str, platform: str, action: str, since: datetime, outcome: str = "ok"
    ) -> int:
        """How many times ``action`` on ``platform`` for ``app`` ended in ``outcome`` at or
        after ``since`` (an aware datetime): the withdrawals of today or this month, …"""
        async with self.session() as s:
            q = (
                select(func.count())
                .select_from(Event)
                .where(
                    Event.app_key == app,
                    Event.platform == platform,
                    Event.action == action,
                    Event.outcome == outcome,
                    col(Event.at) >= since,
                )
            )
            return int((await s.exec(q)).one())

    async def events(
        self,
        apps: Sequence[str],
        *,
        unscoped: bool = False,
        spanning: Sequence[str] = (),
        platforms: Sequence[str] = (),
        actions: Sequence[str] = (),
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before: int | None = None,
        limit: int | None = 30,
    ) -> list[Event]:
        """The events of ``apps`` that match, newest first (by id, which grows with time).

        Args:
            apps: the app keys (none: no app's events).
            unscoped: also the events that name no app (the template library, …).
            spanning: also the events that name no app with these actions (a freeze of
                every app holds each one: ``history demo`` shows it).
            platforms: only events on these platforms, or naming none (a command refused
                for every platform); empty: any.
            actions: only these actions (``publish``, ``template add`` …); empty: any.
            actor: only what this actor did (an exact actor id).
            since: at or after this aware datetime; ``until``: strictly before it.
            before: only events older than this event id (keyset paging: a page stays put
                as new events arrive).
            limit: at most this many (None: all).
        """
        scope: Any = col(Event.app_key).in_(list(apps))
        if unscoped:
            scope = scope | col(Event.app_key).is_(None)
        elif spanning:
            scope = scope | (col(Event.app_key).is_(None) & col(Event.action).in_(list(spanning)))
        where: list[Any] = [scope]
        if platforms:
            on = col(Event.platform)
            where.append(on.in_(list(platforms)) | on.is_(None))
        if actions:
            where.append(col(Event.action).in_(list(actions)))
        if actor is not None:
            where.append(col(Event.actor) == actor)
        if since is not None:
            where.append(col(Event.at) >= since)
        if until is not None:
            where.append(col(Event.at) < until)
        if before is not None:
            where.append(col(Event.id) < before)
        q = select(Event).where(*where).order_by(col(Event.id).desc())
        if limit is not None:
            q = q.limit(limit)
        async with self.session() as s:
            return list((await s.exec(q)).all())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _defaults_for(current: ReleaseState, to: ReleaseState) -> dict[str, datetime | str | None]:
    now = utcnow()
    if to is S.IN_REVIEW:
        return {"submitted_at": now, "decided_at": None, "review_reason": ""}
    if to in (S.APPROVED, S.REJECTED) and current in (S.IN_REVIEW, S.DELAYED):
        return {"decided_at": now}
    if to is S.RELEASED:
        return {"released_at": now}
    return {}
