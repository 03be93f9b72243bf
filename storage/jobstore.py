"""APScheduler's job table, in miniship's database (``apscheduler_jobs``, outside Alembic).

APScheduler 3's job stores are synchronous, so this one gets its own sync engine on the
same database (sqlite3, or psycopg for PostgreSQL). Several scheduler processes may
share it; see :class:`SharedJobStore`.
"""

from __future__ import annotations

import logging
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

from storage.db import make_sync_engine

__all__ = ["JOBS_TABLE", "SharedJobStore", "job_store"]

log = logging.getLogger(__name__)

JOBS_TABLE = "apscheduler_jobs"  # kept out of Alembic (storage/migrations/env.py)


class SharedJobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """A job store that another scheduler process may also work on.

    When that process ran a one-off job first, it removed the row; APScheduler would then
    raise from its wake-up (stopping this scheduler's timer) when it removes or updates the
    same job. Here that is simply the job being done.
    """

    def update_job(self, job: Any) -> None:
        try:
            super().update_job(job)
        except JobLookupError:
            log.debug("job %s was removed by another scheduler", job.id)

    def remove_job(self, job_id: str) -> None:
        try:
            super().remove_job(job_id)
        except JobLookupError:
            log.debug("job %s was already removed", job_id)


def job_store(database_url: str) -> SharedJobStore:
    """The job store on ``database_url`` (its engine is disposed when the scheduler stops)."""
    return SharedJobStore(engine=make_sync_engine(database_url), tablename=JOBS_TABLE)
