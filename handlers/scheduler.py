"""The scheduler: APScheduler 3.11's AsyncIOScheduler, its jobs kept in miniship's database.

Jobs (all in ``handlers.jobs``, by path, with fixed ids and ``replace_existing``):

    watch              every MINISHIP_WATCH_SECONDS: ask the platforms about reviews, nudge
    digest:<channel>   daily at the channel's digest time, in the channel's zone
    publish:<id>       a timed release, a few seconds before its minute: checked and claimed
                       then, published at the minute (TimedReleases.wake_at)
    remind:<id>        its reminder, MINISHIP_REMINDER_MINUTES before
    rollout:<id>       a staged rollout's next step (timed action <id>, action "rollout")
    rollouts           every MINISHIP_WATCH_SECONDS: warn before a platform's own full release

Timed jobs never miss on APScheduler's account (``misfire_grace_time=None``): found late,
they still run, and :meth:`TimedReleases.fire` decides between "late, but published" and
"missed" by miniship's own grace period. At start-up every pending plan is handed over
again from the ``timed_action`` table, so a job APScheduler lost or dropped comes back.

APScheduler 3 does not coordinate schedulers that share a job table: each may run a due
job. So only the leader among the replicas runs one (storage/leader.py); the others store
their plans in ``timed_action`` and the leader adopts them (:meth:`Scheduler.adopt`, every
few seconds). If two ever run at once (a leader cut off while another takes over), the
claims in ``timed_action`` and ``release_target`` still let only one publish, and the job
store (storage/jobstore.py) tolerates the other process removing a job first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from handlers import jobs
from handlers.rollouts.engine import Rollouts
from handlers.timed import TimedReleases
from storage.jobstore import job_store
from storage.models import TimedAction

__all__ = ["FollowerPlanner", "Scheduler"]

log = logging.getLogger(__name__)

DIGEST_GRACE_SECONDS = 3600  # a digest found due within the hour is still posted
STOP_WAIT_SECONDS = 30.0  # how long a stop waits for running jobs


class Scheduler:
    """Runs the timed jobs of one process; implements :class:`handlers.timed.Planner`."""

    def __init__(
        self,
        database_url: str,
        timed: TimedReleases,
        *,
        watch_seconds: float,
        stop_seconds: float = STOP_WAIT_SECONDS,
        rollouts: Rollouts | None = None,
    ) -> None:
        self.stop_seconds = stop_seconds
        self.timed = timed
        self.rollouts = rollouts
        self.watch_seconds = watch_seconds
        self.database_url = database_url
        self._planned: set[int] = set()  # timed actions with a job here
        self._stopped = False
        self.aps = self._new()

    def _new(self) -> AsyncIOScheduler:
        return AsyncIOScheduler(
            jobstores={"default": job_store(self.database_url)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
            timezone=UTC,
        )

    @property
    def running(self) -> bool:
        return bool(self.aps.running)

    async def start(self) -> None:
        """Set up every job, then start (inside the running loop).

        Jobs are handed over before the start, so each one stored and due already is
        replaced, then run once — not run, then planned and found due again.
        """
        if self._stopped:  # led before, and handed over: a scheduler starts once
            self.aps, self._stopped = self._new(), False
        jobs.bind(self.timed)
        self.timed.planner = self
        self.aps.add_job(
            "handlers.jobs:watch",
            "interval",
            seconds=self.watch_seconds,
            id="watch",
            replace_existing=True,
            misfire_grace_time=max(1, int(self.watch_seconds)),
        )
        wanted = self._plan_digests()
        count = await self.timed.replan()
        if self.rollouts is not None:
            jobs.bind_rollouts(self.rollouts)
            self.rollouts.planner = self
            await self.rollouts.replan()
            self.aps.add_job(
                "handlers.jobs:rollouts",
                "interval",
                seconds=self.watch_seconds,
                id="rollouts",
                replace_existing=True,
                misfire_grace_time=max(1, int(self.watch_seconds)),
            )
        self.aps.start()
        for job in self.aps.get_jobs():
            if job.id.startswith("digest:") and job.id not in wanted:
                job.remove()  # the channel is gone from miniship.toml, or its digest is off
        log.info("scheduler started: %d timed release(s) pending", count)

    async def stop(self) -> None:
        """Start no more jobs, let the running ones finish (a publish half done is worse
        than a slower stop), then shut down. When the process is stopping, its running
        work (jobs included) has had its time already: what still runs is cancelled."""
        if self.aps.running:
            self.aps.pause()
            stopping = self.timed.service.work.stopping
            try:
                async with asyncio.timeout(0 if stopping else self.stop_seconds):
                    await jobs.drain()
            except TimeoutError:
                log.warning("stopping with jobs still running; they are cancelled")
            self.aps.shutdown(wait=False)
            self._stopped = True
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback
        if self.timed.planner is self:
            self.timed.planner = None
        if self.rollouts is not None and self.rollouts.planner is self:
            self.rollouts.planner = None
            jobs.unbind_rollouts(self.rollouts)
        self._planned.clear()
        jobs.unbind(self.timed)

    def _plan_digests(self) -> set[str]:
        """Plan each channel's digest; the ids of the digest jobs wanted."""
        wanted: set[str] = set()
        for channel in self.timed.service.config.channels.values():
            if channel.digest is None:
                continue
            job_id = f"digest:{channel.id or '-'}"
            wanted.add(job_id)
            self.aps.add_job(
                "handlers.jobs:digest",
                CronTrigger(
                    hour=channel.digest.hour,
                    minute=channel.digest.minute,
                    timezone=channel.timezone,
                ),
                args=[channel.id],
                id=job_id,
                replace_existing=True,
                misfire_grace_time=DIGEST_GRACE_SECONDS,
            )
        return wanted

    # -- Planner ----------------------------------------------------------------------------

    async def adopt(self) -> int:
        """Plan the timed releases other replicas stored since (they run no scheduler),
        and finish those the last leader was publishing when it stopped; how many were
        planned."""
        await self.timed.resume_interrupted()
        if self.rollouts is not None:
            await self.rollouts.adopt()
        adopted = 0
        pending = await self.timed.store.timed_actions()
        self._planned &= {action.id for action in pending}  # the rest fired or were cancelled
        for action in pending:
            if action.id is not None and action.id not in self._planned:
                self.plan(action, self.timed.remind_at(action))
                adopted += 1
        return adopted

    def plan(self, action: TimedAction, remind_at: datetime | None) -> None:
        assert action.id is not None
        self._planned.add(action.id)
        self.aps.add_job(
            "handlers.jobs:fire",
            "date",
            run_date=self.timed.wake_at(action),
            args=[action.id],
            id=f"publish:{action.id}",
            replace_existing=True,
            misfire_grace_time=None,  # fire() itself decides between late and missed
        )
        if remind_at is not None:
            self.aps.add_job(
                "handlers.jobs:remind",
                "date",
                run_date=remind_at,
                args=[action.id],
                id=f"remind:{action.id}",
                replace_existing=True,
                misfire_grace_time=None,
            )

    def plan_step(self, action: TimedAction) -> None:
        """A rollout's next step (``handlers.rollouts.engine.StepPlanner``), at its time."""
        self.aps.add_job(
            "handlers.jobs:rollout_step",
            "date",
            run_date=action.due_at,
            args=[action.id],
            id=f"rollout:{action.id}",
            replace_existing=True,
            misfire_grace_time=None,  # late (a restart), the step is still taken
        )

    def unplan_step(self, action_id: int) -> None:
        with contextlib.suppress(JobLookupError):
            self.aps.remove_job(f"rollout:{action_id}")

    def unplan(self, action_id: int) -> None:
        self._planned.discard(action_id)
        for job_id in (f"publish:{action_id}", f"remind:{action_id}"):
            with contextlib.suppress(JobLookupError):  # already run, or never planned
                self.aps.remove_job(job_id)


class FollowerPlanner:
    """The planner of a replica that does not lead: a plan is stored already (in
    ``timed_action``), and the leader adopts it within MINISHIP_LEADER_SECONDS; a cancelled
    plan's job finds it cancelled when it fires."""

    def plan(self, action: TimedAction, remind_at: datetime | None) -> None:
        log.info("timed release #%s stored; the leading replica plans it", action.id)

    def unplan(self, action_id: int) -> None:
        return None
