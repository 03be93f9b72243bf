"""Outgoing webhooks: each release event — what the release card shows — POSTed as JSON
to the URLs of MINISHIP_WEBHOOK_URLS, signed, and sent again with back-off until the
receiver takes it (a 2xx) or the attempts run out.

Events (``type``): ``command`` (a command about a release ran, from any way in: Slack,
the console, the CI API, a fleet run), ``review`` (a platform's decision or another
change the watcher or a push found), ``notice`` (a timed release's reminder or outcome,
a rollout's step). Each carries an ``id``, the time, the app and version, and the
release's state on each platform as the API shows it (``GET …/releases/{version}``).

Signature: ``X-Miniship-Timestamp`` is the unix time of the attempt, and
``X-Miniship-Signature`` is ``sha256=`` and the hex HMAC-SHA256, under the secret
(MINISHIP_WEBHOOK_SECRET or _FILE), of ``<timestamp>.<body>``. A receiver recomputes it,
compares in constant time and refuses a timestamp more than a few minutes old
(docs/ci.md has the snippet). The secret is never logged.

Delivery runs beside the command, never holding it up. An attempt that gets no answer,
a 408, 425, 429 or 5xx is tried again after 2 s, 4 s, 8 s … (at most 5 minutes apart),
up to MINISHIP_WEBHOOK_ATTEMPTS in all; another 4xx means the receiver refuses it (a
wrong secret, say) and it is dropped, said in the log. Deliveries still waiting when the
process stops are dropped too (said in the log): the events are not kept in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from handlers.api import release_of
from handlers.commands import Ran
from handlers.config import AppEntry, ChannelEntry
from handlers.releases import Change, ReleaseService
from handlers.timed import Notice

__all__ = ["RETRIED", "Webhooks", "sign"]

log = logging.getLogger(__name__)

RETRIED = frozenset({408, 425, 429})  # and every 5xx
FIRST_DELAY = 2.0
MAX_DELAY = 300.0
TIMEOUT = 10.0


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Miniship-Signature`` of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Webhooks:
    """Sends release events to ``urls``; hears them as a command listener
    (:attr:`handlers.commands.Commands.listeners`), a release-change listener
    (``ReleaseService.listeners``) and an announcer of timed releases."""

    def __init__(
        self,
        service: ReleaseService,
        urls: Sequence[str],
        secret: bytes,
        *,
        attempts: int = 8,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.service = service
        self.urls = tuple(urls)
        self._secret = secret
        self.attempts = attempts
        self.clock = clock
        self.sleep = sleep
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
        self._sending: set[asyncio.Task[bool]] = set()

    def __repr__(self) -> str:  # the secret stays out of any log line
        return f"Webhooks({len(self.urls)} URL(s))"

    # -- what is heard ------------------------------------------------------------------

    async def on_command(self, ran: Ran) -> None:
        reply = ran.reply
        assert reply.about is not None
        app = self.service.config.apps.get(reply.about[0])
        if app is None:
            return
        await self._send(
            "command",
            app,
            reply.about[1],
            actor=ran.actor.id,
            command=ran.line.split(maxsplit=1)[0].lower() if ran.line.strip() else "",
            outcome="requested" if reply.request is not None else reply.outcome or "ok",
            text=reply.text,
        )

    async def on_change(self, change: Change) -> None:
        await self._send(
            "review",
            change.app,
            change.version,
            platform=change.platform,
            state=change.new.value,
            reason=change.reason,
            outside=change.outside,
        )

    async def notice(self, notice: Notice) -> None:
        await self._send("notice", notice.app, notice.version, text=notice.text)

    async def digest(self, channel: ChannelEntry, text: str) -> None:
        """A day's digest is about no release: not sent."""

    # -- sending ------------------------------------------------------------------------

    async def _send(self, kind: str, app: AppEntry, version: str, **fields: Any) -> None:
        release = await release_of(self.service.store, app, version)
        event = {
            "id": "evt_" + secrets.token_hex(12),
            "type": kind,
            "at": datetime.fromtimestamp(self.clock(), UTC).isoformat(),
            "app": app.key,
            "version": version,
            **fields,
            "release": release.model_dump(mode="json") if release else None,
        }
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        for url in self.urls:
            task = asyncio.create_task(self.deliver(url, body, event["id"], kind))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def deliver(self, url: str, body: bytes, event_id: str, kind: str) -> bool:
        """POST ``body`` to ``url`` until it is taken or the attempts run out; whether it
        was taken."""
        delay = FIRST_DELAY
        for attempt in range(1, self.attempts + 1):
            stamp = str(int(self.clock()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "miniship-webhooks",
                "X-Miniship-Event": kind,
                "X-Miniship-Delivery": event_id,
                "X-Miniship-Timestamp": stamp,
                "X-Miniship-Signature": sign(self._secret, stamp, body),
            }
            try:
                answer = await self.client.post(url, content=body, headers=headers)
                status: int | None = answer.status_code
                why = f"HTTP {status}"
            except httpx.HTTPError as exc:
                status, why = None, type(exc).__name__
            if status is not None and 200 <= status < 300:
                return True
            if status is not None and status < 500 and status not in RETRIED:
                log.warning("webhook %s refused event %s (%s): dropped", url, event_id, why)
                return False
            if attempt == self.attempts:
                break
            log.info(
                "webhook %s: event %s not taken (%s); again in %g s", url, event_id, why, delay
            )
            await self.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
        tries = self.attempts
        log.error("webhook %s: event %s not taken after %d attempts: dropped", url, event_id, tries)
        return False

    async def aclose(self, wait: float = 5.0) -> None:
        """Let deliveries in flight finish for up to ``wait`` seconds; drop the rest."""
        pending = set(self._sending)
        if pending:
            _, late = await asyncio.wait(pending, timeout=wait)
            for task in late:
                task.cancel()
            if late:
                log.warning("stopping: %d webhook deliveries dropped", len(late))
            for task in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._own_client:
            await self.client.aclose()

    async def settled(self) -> None:
        """Until every delivery under way has ended (tests, and a stop)."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
