"""Fleet runs: one command over many apps (``submit @shops 1.3.0``), as one run with an id.

A run is rows in the database: the run, and one item per app holding the single-app
command line it stands for. Workers claim items (pending → running, compare-and-set, so
two processes driving one run never run an app twice) and run each line through the
same command machinery as a typed command — roles, freezes, the version rule, the
platforms' own checks — as the person who started the run. At most ``concurrency``
items are in flight, and each platform is asked at most ``rate`` times a second (an
``aiolimiter`` leaky bucket); a passing fault (busy, timeout, 5xx, a rate limit) slows
the whole run down and puts the app back in the queue instead of failing app after app.

``cancel`` stops a run (what ran stays done), ``retry`` runs its failed apps again (as
the person who retried it), and after a restart :meth:`Fleets.resume` carries on with
the apps not yet done: an item left running by a dead process is run again, and the use
cases ask the platform first (an upload already there, a review already submitted, a
publish already live is said, not repeated).

A run of ``rollout @tag <version> …`` starts one staged rollout per app (each knows its
run: :func:`current_run` while its line runs); the run's starts end quickly, its
rollouts go on for days, and :meth:`Fleets.news` brings the run's card up to date each
time one of them moves (``Progress.rollouts``: how many advanced, held, halted…).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import timedelta

from aiolimiter import AsyncLimiter

from handlers import policy
from handlers.listeners import tell
from handlers.releases import Actor, ReleaseService
from storage import FleetState, ItemState
from storage.models import FleetRun, utcnow

__all__ = ["Execute", "Fleets", "ItemResult", "Progress", "current_run"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # passing faults an app may meet before it counts as failed
STALE = timedelta(minutes=10)  # an item running this long was left by a dead process
SLOW_DOWN = 0.5  # a passing fault halves the run's request rate …
MIN_RATE = 0.5  # … down to this many a second per platform
RECOVER = 1.1  # each app that goes through brings a slowed rate back by a tenth
PAUSE = 2.0  # and pauses new work this many seconds (doubling per fault in a row, ≤ 60)


@dataclass(frozen=True)
class ItemResult:
    """How one app's command went, as the fleet sees it."""

    state: ItemState  # ok | failed | skipped | waiting
    message: str
    transient: bool = False  # failed on a passing fault: worth running again


Execute = Callable[[Actor, str, str | None], Awaitable[ItemResult]]
"""Run one app's command line as ``actor`` (from ``channel``): how the command machinery
runs an item."""

_RUN: ContextVar[int | None] = ContextVar("miniship_fleet_run", default=None)


def current_run() -> int | None:
    """The fleet run whose app's line is running now (in this task), if any: what a
    rollout started by a fleet run keeps, so that the run's card follows it."""
    return _RUN.get()


@dataclass(frozen=True)
class Progress:
    """Where a run stands: its row, the count of items per state, the failures and the
    apps skipped so far (each with why)."""

    run: FleetRun
    counts: dict[str, int]
    failures: list[tuple[str, str]] = field(default_factory=list)  # (app, why)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (app, why nothing was done)
    rollouts: dict[str, int] = field(default_factory=dict)
    """The staged rollouts the run started, counted by where they stand (advanced, held,
    halted… — :func:`handlers.policy.rollout_standing`); empty for other runs."""
    stuck: list[tuple[str, str]] = field(default_factory=list)
    """(app, what happened) of its rollouts a person may need to look at (halted, held,
    paused)."""
    final: bool = False  # said as the run's items end (not a later rollout's news)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        """Items that will not run again by themselves (done, failed, skipped…)."""
        return self.total - self.counts.get("pending", 0) - self.counts.get("running", 0)


Listener = Callable[[Progress], Awaitable[None]]

_FLEETS: weakref.WeakKeyDictionary[ReleaseService, Fleets] = weakref.WeakKeyDictionary()


class Fleets:
    """The fleet runs of one release service (one per service: :meth:`of`)."""

    def __init__(
        self,
        service: ReleaseService,
        *,
        concurrency: int = 8,
        rate: float = 10.0,
        update_every: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.service = service
        self.store = service.store
        self.concurrency = concurrency
        self.rate = rate
        self.update_every = update_every
        self.clock = clock
        self.sleep = sleep  # how a slowed-down run pauses (tests pass one that does not)
        self.listeners: list[Listener] = []
        """Hear a run's progress: at most every ``update_every`` seconds, and at its end."""
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._in_flight: dict[int, int] = {}  # item → run: what this process is running
        self._again: set[int] = set()  # runs reopened while their task was finishing
        self._said_at: dict[int, float] = {}
        self._later: dict[int, asyncio.Task[None]] = {}  # a card update waiting its turn
        _FLEETS[service] = self

    @classmethod
    def of(cls, service: ReleaseService) -> Fleets:
        return _FLEETS.get(service) or cls(service)

    # -- starting, stopping -------------------------------------------------------------

    async def start(
        self,
        actor: Actor,
        command: str,
        items: Sequence[tuple[str, str]],
        channel: str | None,
        execute: Execute,
    ) -> FleetRun:
        """A new run of ``command`` over ``items`` ((app, its line)), driven at once."""
        run = await self.store.add_fleet(command, actor.id, channel, items)
        await self.store.record(
            actor=actor.id,
            action="fleet",
            outcome="ok",
            message=f"fleet run #{run.id} started: {command} ({len(items)} apps)",
        )
        self.drive(run, execute)
        return run

    def drive(self, run: FleetRun, execute: Execute) -> None:
        """Work on ``run`` in the background (once per process)."""
        assert run.id is not None
        task = self._tasks.get(run.id)
        if task is None or task.done():
            self._tasks[run.id] = asyncio.create_task(self._drive(run.id, execute))
        else:  # finishing (its last word may be on its way): it looks again before it ends
            self._again.add(run.id)

    async def wait(self, run_id: int) -> None:
        """Until this process has nothing more to do for run ``run_id``."""
        task = self._tasks.get(run_id)
        if task is not None:
            await asyncio.shield(task)

    async def resume(self, execute: Execute) -> list[int]:
        """Carry on with every run still running (after a restart): items a dead process
        left running are queued again. Returns the runs taken up."""
        await self.store.requeue_stale_items(utcnow() - STALE)
        runs = await self.store.fleets(states=[FleetState.RUNNING])
        for run in runs:
            self.drive(run, execute)
        return [r.id for r in runs if r.id is not None]

    async def take_up_idle(self, execute: Execute) -> list[int]:
        """Drive the runs no process has driven for :data:`STALE` (the replica that drove
        one stopped, and none started since to resume it); the leading replica does this
        at each look. Returns the runs taken up."""
        since = utcnow() - STALE
        await self.store.requeue_stale_items(since)
        runs = [r for r in await self.store.idle_fleets(since) if r.id not in self._driving()]
        for run in runs:
            log.warning("fleet run #%s: no process drove it for %s; taken up", run.id, STALE)
            self.drive(run, execute)
        return [r.id for r in runs if r.id is not None]

    def _driving(self) -> set[int]:
        return {run_id for run_id, task in self._tasks.items() if not task.done()}

    async def cancel(self, actor: Actor, run_id: int) -> Progress:
        run = await self.store.cancel_fleet(run_id)
        if run is None:
            raise _refused(run_id, await self.store.fleet(run_id), "cancelled")
        await self._record(actor, run_id, "cancelled (what ran stays done)")
        return await self.progress(run_id)

    async def retry(self, actor: Actor, run_id: int, execute: Execute) -> Progress:
        """Run the failed apps of run ``run_id`` again, as ``actor``."""
        run = await self.store.retry_fleet(run_id, actor.id)
        if run is None:
            raise _refused(run_id, await self.store.fleet(run_id), "retried")
        await self._record(actor, run_id, "failed apps queued again")
        self.drive(run, execute)
        return await self.progress(run_id)

    async def stop(self) -> None:
        """Stop driving (the process is stopping): the apps in flight go back in the queue
        and the runs carry on at the next start (or in another process)."""
        tasks = [*self._tasks.values(), *self._later.values()]  # a card update waiting: dropped
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._in_flight:
            await self.store.release_items(sorted(self._in_flight))
            self._in_flight.clear()

    # -- what it looks like -------------------------------------------------------------

    async def progress(self, run_id: int) -> Progress:
        run = await self.store.fleet(run_id)
        if run is None:
            raise LookupError(run_id)
        items = await self.store.fleet_items(run_id)
        counts: dict[str, int] = {}
        for item in items:
            counts[item.state] = counts.get(item.state, 0) + 1
        failures = [(i.app_key, i.message) for i in items if i.state == ItemState.FAILED]
        skipped = [(i.app_key, i.message) for i in items if i.state == ItemState.SKIPPED]
        standing: dict[str, int] = {}
        stuck: list[tuple[str, str]] = []
        for r in reversed(await self.store.rollouts(fleet_id=run_id)):  # oldest first
            word = policy.rollout_standing(r.state, r.step, held=bool(r.holding_since or r.held_by))
            standing[word] = standing.get(word, 0) + 1
            if word in policy.ROLLOUT_LOOK_AT:
                stuck.append((r.app_key, r.note.splitlines()[0] if r.note else word))
        return Progress(run, counts, failures, skipped, standing, stuck)

    async def news(self, run_id: int) -> None:
        """One of the run's rollouts moved: its card is brought up to date — at once, or,
        within ``update_every`` of its last update (a fleet's steps fall due together),
        once that time has passed, by one update carrying all the news meanwhile."""
        wait = self._said_at.get(run_id, -1e9) + self.update_every - self.clock()
        if wait <= 0:
            await self._say(run_id, force=True)
        elif run_id not in self._later:
            task = asyncio.create_task(self._say_later(run_id, wait))
            self._later[run_id] = task
            task.add_done_callback(lambda _: self._later.pop(run_id, None))

    async def _say_later(self, run_id: int, wait: float) -> None:
        await self.sleep(wait)
        await self._say(run_id, force=True)

    # -- the work -----------------------------------------------------------------------

    async def _drive(self, run_id: int, execute: Execute) -> None:
        limiters: dict[str, AsyncLimiter] = {}
        pace = _Pace(self.clock, self.sleep)
        try:
            while True:
                self._again.discard(run_id)
                async with asyncio.TaskGroup() as workers:
                    for _ in range(self.concurrency):
                        workers.create_task(self._work(run_id, execute, limiters, pace))
                await self.store.finish_fleet(run_id)
                await self._say(run_id, final=True)
                if run_id not in self._again:
                    return
        except Exception:
            log.exception("fleet run #%s stopped; it resumes at the next start", run_id)
            mine = [item for item, run in self._in_flight.items() if run == run_id]
            for item in mine:
                del self._in_flight[item]
            with contextlib.suppress(Exception):  # the database may be what failed
                await self.store.release_items(mine)

    async def _work(
        self,
        run_id: int,
        execute: Execute,
        limiters: dict[str, AsyncLimiter],
        pace: _Pace,
    ) -> None:
        while True:
            await pace.wait()
            run = await self.store.fleet(run_id)
            if run is None or run.state != FleetState.RUNNING or self.service.work.stopping:
                return  # a stopping process takes no new app: the next start does
            item = await self.store.claim_item(run_id)
            if item is None:
                return
            assert item.id is not None
            self._in_flight[item.id] = run_id
            app = self.service.config.app(item.app_key)
            for platform in app.platforms if app is not None else ():
                limiter = limiters.setdefault(platform, AsyncLimiter(self.rate, 1))
                await limiter.acquire()
            token = _RUN.set(run_id)
            try:
                result = await execute(Actor(run.runs_as), item.line, run.channel)
            except Exception as exc:  # one app's surprise must not stop the others
                log.exception("fleet run #%s: %s failed", run_id, item.app_key)
                result = ItemResult(ItemState.FAILED, f"unexpected {type(exc).__name__}")
            finally:
                _RUN.reset(token)
            if result.transient and item.attempts + 1 < MAX_ATTEMPTS:
                pace.slow_down(limiters)
                await self.store.requeue_item(item, result.message)
            else:
                pace.steady(limiters, self.rate)
                await self.store.finish_item(item, result.state, result.message)
            self._in_flight.pop(item.id, None)
            await self._say(run_id)

    async def _say(self, run_id: int, *, final: bool = False, force: bool = False) -> None:
        now = self.clock()
        if not (final or force) and now - self._said_at.get(run_id, -1e9) < self.update_every:
            return
        self._said_at[run_id] = now
        progress = replace(await self.progress(run_id), final=final)
        await tell(self.listeners, progress, f"could not say the progress of fleet run #{run_id}")

    async def _record(self, actor: Actor, run_id: int, what: str) -> None:
        await self.store.record(
            actor=actor.id, action="fleet", outcome="ok", message=f"fleet run #{run_id} {what}"
        )


class _Pace:
    """How fast a run goes: slowed down by passing faults, back to steady when they stop."""

    def __init__(
        self, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        self.clock, self.sleep = clock, sleep
        self.until = 0.0
        self.pause = PAUSE

    async def wait(self) -> None:
        left = self.until - self.clock()
        if left > 0:
            await self.sleep(left)

    def slow_down(self, limiters: dict[str, AsyncLimiter]) -> None:
        """Half the request rate on every platform, and a pause before new work."""
        for platform, limiter in list(limiters.items()):
            limiters[platform] = AsyncLimiter(max(MIN_RATE, limiter.max_rate * SLOW_DOWN), 1)
        self.until = self.clock() + self.pause
        self.pause = min(self.pause * 2, 60.0)

    def steady(self, limiters: dict[str, AsyncLimiter], rate: float) -> None:
        """An app went through: the pause resets, a slowed rate recovers a little."""
        self.pause = PAUSE
        for platform, limiter in list(limiters.items()):
            if limiter.max_rate < rate:
                limiters[platform] = AsyncLimiter(min(rate, limiter.max_rate * RECOVER), 1)


def _refused(run_id: int, run: FleetRun | None, done: str) -> LookupError:
    if run is None:
        return LookupError(f"there is no fleet run #{run_id}; `fleet` lists them")
    return LookupError(f"fleet run #{run_id} is {run.state}; it cannot be {done}")
