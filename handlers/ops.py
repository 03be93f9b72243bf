"""What operators and orchestrators ask a running miniship: ``/healthz``, ``/readyz`` and
``/metrics`` (Prometheus).

- ``/healthz``: the process answers (a liveness probe: restart it when this fails).
- ``/readyz``: it can do its work — the database answers, its schema is at the newest
  migration, Slack accepted the bot token (``serve``), and it is not stopping; also says
  whether this replica leads. 503 with the failing checks otherwise (a readiness probe:
  send it no traffic meanwhile).
- ``/metrics``: commands by name and outcome, platform calls by platform, API and code
  with their latency (platforms/base.py), watch rounds, releases by platform and state,
  timed releases pending, fleet runs running, and whether this replica leads.

They are served on Slack's HTTP server in HTTP mode, and on MINISHIP_OPS_PORT in Socket
Mode and the console.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from handlers.metrics import FLEETS_RUNNING, LEADER, RELEASES, TIMED_PENDING
from handlers.releases import ReleaseService
from storage import FleetState, schema_revision

__all__ = ["Ops"]

log = logging.getLogger(__name__)


class Ops:
    """The three endpoints over one release service.

    ``slack`` (``serve``): whether Slack accepted the bot token, read once at start;
    ``leading``: whether this replica leads now.
    """

    def __init__(
        self,
        service: ReleaseService,
        *,
        leading: Callable[[], bool],
        slack: Callable[[], Awaitable[str | None]] | None = None,
    ) -> None:
        self.service = service
        self.store = service.store
        self.leading = leading
        self.slack = slack

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.get("/metrics", self.metrics),
        ]

    def web_app(self) -> web.Application:
        app = web.Application()
        app.add_routes(self.routes())
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(self, request: web.Request) -> web.Response:
        checks: dict[str, Any] = {}
        problems: list[str] = []
        try:
            async with self.store.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            current, head = await schema_revision(self.store.engine)
            checks["database"] = "ok"
            checks["migrations"] = f"{current} (newest {head})"
            if current != head:
                problems.append(f"the schema is at {current}, not the newest {head}")
        except Exception as exc:  # whatever the driver raises, the answer is "not ready"
            checks["database"] = f"unreachable ({type(exc).__name__})"
            problems.append("the database does not answer")
        if self.slack is not None:
            said = await self.slack()
            checks["slack"] = said or "ok"
            if said:
                problems.append(f"Slack: {said}")
        if self.service.work.stopping:
            problems.append("stopping")
        checks["leader"] = self.leading()
        checks["problems"] = problems
        return web.json_response({"ready": not problems, **checks}, status=503 if problems else 200)

    async def metrics(self, request: web.Request) -> web.Response:
        """The counters as they stand, and the stored figures read now."""
        try:
            states = await self.store.count_states()
            timed = len(await self.store.timed_actions())
            fleets = len(await self.store.fleets(states=[FleetState.RUNNING]))
        except Exception as exc:  # the process's own figures are still worth having
            log.warning("metrics: the database's figures could not be read: %s", exc)
        else:  # all read first, then set at once: a scrape beside this one sees no gap
            RELEASES.clear()
            for (platform, state), count in states.items():
                RELEASES.labels(platform, state).set(count)
            TIMED_PENDING.set(timed)
            FLEETS_RUNNING.set(fleets)
        LEADER.set(1 if self.leading() else 0)
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
