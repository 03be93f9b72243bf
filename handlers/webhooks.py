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

Every event is written to the database (``webhook_delivery``), one row per URL, before
anything is sent, so a delivery outlives the process that made the event: a restart, a
crash or a stop with the receiver down loses nothing. Each replica runs a sender
(:meth:`Webhooks.run`) that takes the rows due — on PostgreSQL ``FOR UPDATE SKIP LOCKED``
with a lease, so two replicas never send one row at once — and POSTs them; the replica
that made an event wakes its sender at once, so a delivery leaves within moments.
An attempt that gets no answer, a 408, 425, 429 or 5xx is tried again after 2 s, 4 s,
8 s … (at most 5 minutes apart), up to MINISHIP_WEBHOOK_ATTEMPTS in all; another 4xx
means the receiver refuses it (a wrong secret, say) and it is dropped, said in the log,
as is one whose attempts ran out. An attempt is cut off at half the lease, and its outcome
is written only while this process's claim holds, so no row is sent by two processes at
once. A replica sends only to the URLs it is configured with (during a rolling change of
MINISHIP_WEBHOOK_URLS the others' rows wait for them). Delivery is at least once: a
process killed between the receiver's answer and its record sends that delivery again
once its lease passes — ``X-Miniship-Delivery`` (the event's id) is the same each time,
for a receiver to recognise it.
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
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from handlers.api import release_of
from handlers.commands import Ran
from handlers.config import AppEntry, ChannelEntry
from handlers.releases import Change, ReleaseService
from handlers.timed import Notice
from storage.models import WebhookDelivery

__all__ = ["LEASE", "RETRIED", "Webhooks", "sign"]

log = logging.getLogger(__name__)

RETRIED = frozenset({408, 425, 429})  # and every 5xx
FIRST_DELAY = 2.0
MAX_DELAY = 300.0
TIMEOUT = 10.0
LEASE = timedelta(seconds=TIMEOUT * 3)  # a claimed row no one finished is free again after it
BATCH = 32  # deliveries tried at once by one sender
IDLE = 30.0  # seconds a sender sleeps with nothing due (another replica's rows, say)
ABANDONED = timedelta(days=7)
"""A delivery due this long ago and tried by no process since has a URL no replica names
any more (the setting changed): it is dropped, said in the log."""
SWEEP = timedelta(hours=1)  # how often a sender looks for such deliveries


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
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.service = service
        self.urls = tuple(urls)
        self._secret = secret
        self.attempts = attempts
        self.clock = clock
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._round: asyncio.Task[int] | None = None
        self._stopping = False
        self._swept: datetime | None = None

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

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def _send(self, kind: str, app: AppEntry, version: str, **fields: Any) -> None:
        """The event, kept for each URL and due now; the sender is woken to send it."""
        release = await release_of(self.service.store, app, version)
        now = self._now()
        event = {
            "id": "evt_" + secrets.token_hex(12),
            "type": kind,
            "at": now.isoformat(),
            "app": app.key,
            "version": version,
            **fields,
            "release": release.model_dump(mode="json") if release else None,
        }
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        await self.service.store.add_deliveries(
            [
                WebhookDelivery(event_id=event["id"], kind=kind, url=url, body=body, due_at=now)
                for url in self.urls
            ]
        )
        self._wake.set()

    async def deliver_due(self) -> int:
        """Try once each delivery due now that no one else is trying; how many."""
        claimed = await self.service.store.claim_deliveries(self._now(), LEASE, BATCH, self.urls)
        await asyncio.gather(*(self._attempt(delivery) for delivery in claimed))
        return len(claimed)

    async def _attempt(self, delivery: WebhookDelivery) -> None:
        """POST one delivery; then it is done (taken, refused, out of attempts) or due
        again after its back-off."""
        store, url, event_id = self.service.store, delivery.url, delivery.event_id
        body = delivery.body.encode()
        stamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "miniship-webhooks",
            "X-Miniship-Event": delivery.kind,
            "X-Miniship-Delivery": event_id,
            "X-Miniship-Timestamp": stamp,
            "X-Miniship-Signature": sign(self._secret, stamp, body),
        }
        try:  # within half the lease, so no other process takes the row meanwhile
            async with asyncio.timeout(LEASE.total_seconds() / 2):
                answer = await self.client.post(url, content=body, headers=headers)
            status: int | None = answer.status_code
            why = f"HTTP {status}"
        except (httpx.HTTPError, TimeoutError) as exc:
            status, why = None, type(exc).__name__
        except httpx.InvalidURL as exc:  # said at start; a row for it cannot be sent
            log.error("webhook %s is not a usable URL (%s): event %s dropped", url, exc, event_id)
            await store.delivery_done(delivery)
            return
        attempt = delivery.attempts + 1
        if status is not None and 200 <= status < 300:
            await store.delivery_done(delivery)
        elif status is not None and status < 500 and status not in RETRIED:
            log.warning("webhook %s refused event %s (%s): dropped", url, event_id, why)
            await store.delivery_done(delivery)
        elif attempt >= self.attempts:
            log.error(
                "webhook %s: event %s not taken after %d attempts: dropped", url, event_id, attempt
            )
            await store.delivery_done(delivery)
        else:
            delay = min(FIRST_DELAY * 2 ** (attempt - 1), MAX_DELAY)
            log.info(
                "webhook %s: event %s not taken (%s); again in %g s", url, event_id, why, delay
            )
            await store.delivery_again(delivery, attempt, self._now() + timedelta(seconds=delay))

    # -- the sender -----------------------------------------------------------------------

    def start(self) -> None:
        """Run :meth:`run` beside the process's other work."""
        if self._sender is None:
            self._sender = asyncio.create_task(self.run(), name="webhooks")

    async def run(self) -> None:
        """Send what is due, then sleep until the next delivery falls due, an event of
        this process arrives, or :data:`IDLE` seconds pass (another replica's deliveries,
        or one a dead process claimed); never ends on its own. A database that does not
        answer is said in the log and asked again."""
        while True:
            self._wake.clear()
            try:
                while not self._stopping:
                    self._round = asyncio.create_task(self.deliver_due())
                    if await self._round < BATCH:
                        break
                if self._swept is None or self._now() - self._swept >= SWEEP:
                    await self.sweep()
                due = await self.service.store.next_delivery(self.urls)
            except Exception as exc:  # the database: said, and tried again in a while
                log.warning("webhooks: could not read the deliveries (%s); again soon", exc)
                due = None
            finally:
                self._round = None
            if self._stopping:
                return
            wait = IDLE if due is None else (due - self._now()).total_seconds()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(max(wait, 0.0), IDLE)):
                    await self._wake.wait()

    async def sweep(self) -> int:
        """Drop the deliveries whose URL no replica has been configured with for
        :data:`ABANDONED` (their rows would otherwise stay for ever); how many."""
        self._swept = now = self._now()
        dropped = await self.service.store.drop_abandoned_deliveries(self.urls, now - ABANDONED)
        for url, count in dropped.items():
            log.warning(
                "webhooks: %d event(s) for %s dropped: not sent for %d days, no miniship is "
                "configured with that URL any more",
                count,
                url,
                ABANDONED.days,
            )
        return sum(dropped.values())

    async def aclose(self, wait: float = 5.0) -> None:
        """Stop the sender: attempts under way get up to ``wait`` seconds to end; what is
        not sent stays in the database for the next sender (this process's next start,
        or another replica)."""
        sender, self._sender = self._sender, None
        self._stopping = True
        if sender is not None:
            current = self._round
            if current is not None:
                with contextlib.suppress(TimeoutError, Exception):
                    await asyncio.wait_for(asyncio.shield(current), wait)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        if self._own_client:
            await self.client.aclose()
