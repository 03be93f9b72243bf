"""What every platform emulator offers, and the loopback server that hosts them.

An emulator is a local stand-in for one platform's HTTP API, faithful to the fact
sheet: same paths and method names, parameters, error codes and response shapes. It is
an ``aiohttp`` application mounted at ``/<platform>`` on one loopback server, so one
port serves every platform:

    http://127.0.0.1:<port>/wechat/cgi-bin/component/api_component_token
    http://127.0.0.1:<port>/alipay/gateway.do

Reviews are decided by the emulator's clock: approved ``review_seconds`` after
submission, rejected (with a reason) when the version notes contain ``#reject``,
delayed first (then approved) when they contain ``#delay``.

Faults can be injected for tests, per API (or ``"*"``):

- ``busy``: the platform's "system busy" error;
- ``timeout``: the request is carried out, then its answer is held back ``timeout_seconds``
  (longer than a client waits) — the case where a client cannot know whether it worked;
- ``slow``: the request is carried out and answered after ``slow_seconds`` (a client still
  waiting gets it) — a call still in flight when something else happens;
- ``expired_token``: every token issued so far expires now;
- ``unavailable``: HTTP 503 with an HTML body, as a load balancer would answer;
- ``rate_limit``: the platform's own "too many calls" error (WeChat 45009, Alipay
  ``aop.ACQ.SYSTEM_LIMIT``-style limit codes, as the fact sheets give them);
- ``malformed``: HTTP 200 whose body is cut short (not parseable);
- ``unsigned``: a correct answer without its signature (platforms that sign answers;
  elsewhere the same as ``malformed``).

From outside the process the same is reachable as
``POST /<platform>/_emulator/inject {"api": "...", "fault": "...", "times": 1}`` (with
``"seconds"`` for ``slow``).

With ``state_path`` set, an emulator keeps its state (apps, versions, reviews, keys,
tokens) in that JSON file, written within :data:`SAVE_DELAY` of a request (one write per
burst), so a restarted ``make run`` finds the platform as it left it.

``make run`` and ``serve`` host the emulators in miniship's own process, on an event loop
in a thread of their own (:class:`EmulatorServer` with ``thread=True``), so they answer
as a platform elsewhere would and not in turn with miniship's own work.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx
from aiohttp import web
from pydantic import BaseModel
from pydantic_settings import BaseSettings

__all__ = [
    "FAULTS",
    "SAVE_DELAY",
    "Emulator",
    "EmulatorServer",
    "Fault",
    "OutgoingPush",
    "Provisioned",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

FAULTS = (
    "busy",
    "timeout",
    "slow",
    "expired_token",
    "unavailable",
    "rate_limit",
    "malformed",
    "unsigned",
)

SAVE_DELAY = 5.0
"""Seconds between a request that changed the state and its write to disk: during a burst
of requests the whole state is written once every so often (at 1,000 apps a write takes
a good part of a second, in the process that runs miniship too, as `make run` has it)."""
JOIN_SECONDS = 10.0
"""How long stopping a threaded :class:`EmulatorServer` waits for its thread to end."""
REJECT_MARK = "#reject"
DELAY_MARK = "#delay"


@dataclass
class Fault:
    api: str  # the API path or method name it applies to, or "*"
    fault: str  # one of FAULTS
    times: int = 1


@dataclass(frozen=True)
class OutgoingPush:
    """One push the emulator owes the receiver, built fresh for each delivery attempt.

    ``key`` names it in :attr:`Emulator.pushed` once delivered; ``delivered`` (optional)
    runs after the receiver accepted it.
    """

    key: str
    url: str
    params: Mapping[str, str]
    body: bytes
    content_type: str
    delivered: Callable[[], None] | None = None


@dataclass(frozen=True)
class Provisioned:
    """Credentials an emulator issued: adapter settings plus the per-app configs."""

    settings: BaseSettings
    apps: Mapping[str, BaseModel]
    env: Mapping[str, str]  # the same credentials as environment variables, for a separate miniship


class Emulator(ABC):
    """Base of the platform emulators.

    Args:
        review_seconds: how long a review takes before it is decided.
        clock: unix-seconds clock; tests pass a fake one to decide reviews without waiting.
        timeout_seconds: how long an injected ``timeout`` fault holds the answer.
        state_path: JSON file to keep the emulator's state in across restarts.

    The constructor restores saved state (via :meth:`restore`), so a subclass sets up its
    own empty state *before* calling ``super().__init__()``.

    Pushes: with :attr:`push_url` set (after construction), :meth:`deliver_pushes` POSTs
    every review decided since the last delivery to the receiver, as the platform would;
    a push not answered with HTTP 200 and ``success`` is tried again next time.
    :meth:`start_pushing` runs it in the background. What was delivered is kept in
    :attr:`pushed` (subclasses save it in their snapshot).
    """

    platform: ClassVar[str]
    OPERATIONS: ClassVar[Mapping[str, str]]
    """The API that carries each shared operation (``upload``, ``submit``, ``status``,
    ``withdraw``, ``publish``), for injecting a fault into exactly that call."""

    def __init__(
        self,
        *,
        review_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
        timeout_seconds: float = 30.0,
        state_path: Path | None = None,
    ) -> None:
        self.review_seconds = review_seconds
        self.clock = clock
        self.timeout_seconds = timeout_seconds
        self.slow_seconds = 3.0
        self.state_path = state_path
        self._faults: list[Fault] = []
        self.push_url: str | None = None
        self.pushed: set[str] = set()
        self._save_timer: asyncio.TimerHandle | None = None
        self._pusher: asyncio.Task[None] | None = None
        self._push_lock: asyncio.Lock | None = None
        if state_path is not None and state_path.exists():
            self.restore(json.loads(state_path.read_text(encoding="utf-8")))

    # -- state -------------------------------------------------------------------------

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """All state as JSON-serialisable data (apps, versions, reviews, keys, tokens)."""

    @abstractmethod
    def restore(self, state: dict[str, Any]) -> None:
        """Load what :meth:`snapshot` returned."""

    @abstractmethod
    def issued_secrets(self) -> set[str]:
        """Every secret value the emulator holds or issued so far: credentials, private
        keys, access and refresh tokens — what must never show in a recorded exchange."""

    def save(self) -> None:
        """Write all state to :attr:`state_path` now (atomically)."""
        if self._save_timer is not None:
            self._save_timer.cancel()
            self._save_timer = None
        if self.state_path is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds keys
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            # one string from json's C encoder (indented, it takes the pure-Python one and
            # writes piece by piece: most of a save's time at 1,000 apps)
            fh.write(json.dumps(self.snapshot(), ensure_ascii=False))
        tmp.replace(self.state_path)

    def flush(self) -> None:
        """Write what requests changed and is not written yet (when the server stops)."""
        if self._save_timer is not None:
            self.save()

    @web.middleware
    async def _persist(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        """State a request changed is written within :data:`SAVE_DELAY`: one write for a
        burst of requests (a watch round over 1,000 apps), not one whole-state write per
        request, which made a round grow with the square of the apps."""
        try:
            response: web.StreamResponse = await handler(request)
        finally:
            if self.state_path is not None and self._save_timer is None:
                loop = asyncio.get_running_loop()
                self._save_timer = loop.call_later(SAVE_DELAY, self.save)
        return response

    # -- the HTTP surface --------------------------------------------------------------

    @abstractmethod
    def routes(self) -> Sequence[web.RouteDef]:
        """The platform's endpoints, relative to the mount point."""

    def web_app(self) -> web.Application:
        app = web.Application(middlewares=[self._persist])
        app.add_routes(self.routes())
        app.router.add_post("/_emulator/inject", self._inject_endpoint)
        return app

    async def _inject_endpoint(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            self.inject(str(body["api"]), str(body["fault"]), int(body.get("times", 1)))
            if "seconds" in body:
                self.slow_seconds = float(body["seconds"])
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    # -- provisioning ------------------------------------------------------------------

    @abstractmethod
    def provision(self, base_url: str, apps: Mapping[str, BaseModel]) -> Provisioned:
        """Register ``apps`` (their non-secret ids from miniship.toml) and issue credentials.

        ``base_url`` is where this emulator is mounted (``http://127.0.0.1:PORT/wechat``).
        Returns adapter settings pointing there and app configs carrying the secrets
        the emulator accepts. Calling it again for the same app keeps its state and
        returns the same credentials.
        """

    def add_merchants(self, count: int, *, start: int = 1) -> list[str]:
        """``count`` mini programs that authorized the platform outside miniship (what a
        sync finds); their ids. A platform that cannot list them has none."""
        return []

    @abstractmethod
    def example_app(self) -> BaseModel:
        """A valid per-app config section (without secrets) for a test app."""

    # -- faults ------------------------------------------------------------------------

    def inject(self, api: str, fault: str, times: int = 1) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        self._faults.append(Fault(api, fault, times))

    def clear_faults(self) -> None:
        """Forget the faults still pending."""
        self._faults.clear()

    def take_fault(self, api: str) -> str | None:
        """The fault to apply to this call of ``api``, if one is pending (used once)."""
        for f in self._faults:
            if f.api in (api, "*"):
                f.times -= 1
                if f.times == 0:
                    self._faults.remove(f)
                return f.fault
        return None

    async def hold(self, fault: str | None) -> None:
        """Hold a carried-out request's answer back: past a client's patience for the
        ``timeout`` fault, a while for ``slow``; not at all otherwise."""
        if fault == "timeout":
            await asyncio.sleep(self.timeout_seconds)
        elif fault == "slow":
            await asyncio.sleep(self.slow_seconds)

    @staticmethod
    def unavailable() -> web.Response:
        return web.Response(
            status=503,
            text="<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
            content_type="text/html",
        )

    # -- pushes ------------------------------------------------------------------------

    @abstractmethod
    def due_pushes(self) -> list[OutgoingPush]:
        """The pushes owed now (reviews decided by the emulator clock, not yet delivered);
        empty while :attr:`push_url` is unset."""

    async def deliver_pushes(self, client: httpx.AsyncClient | None = None) -> int:
        """POST every due push to the receiver; how many it accepted (200 + ``success``)."""
        if self.push_url is None:
            return 0
        if self._push_lock is None:
            self._push_lock = asyncio.Lock()
        async with self._push_lock:  # one delivery round at a time: no push sent twice
            return await self._deliver(client)

    async def _deliver(self, client: httpx.AsyncClient | None) -> int:
        pushes = self.due_pushes()
        if not pushes:
            return 0
        own = client is None
        http = client or httpx.AsyncClient(timeout=5.0)
        delivered = 0
        try:
            for push in pushes:
                try:
                    response = await http.post(
                        push.url,
                        params=dict(push.params),
                        content=push.body,
                        headers={"Content-Type": push.content_type},
                    )
                except httpx.HTTPError as exc:
                    log.warning("%s push %s failed: %s", self.platform, push.key, exc)
                    continue
                if response.status_code != 200 or response.text.strip() != "success":
                    log.info(
                        "%s push %s answered HTTP %s %r; will retry",
                        self.platform,
                        push.key,
                        response.status_code,
                        response.text[:60],
                    )
                    continue
                self.pushed.add(push.key)
                if push.delivered is not None:
                    push.delivered()
                delivered += 1
        finally:
            if own:
                await http.aclose()
            self.save()
        return delivered

    def start_pushing(self, interval: float = 0.5) -> None:
        """Run :meth:`deliver_pushes` every ``interval`` seconds in the background."""
        if self._pusher is not None and not self._pusher.done():
            return

        async def loop() -> None:
            async with httpx.AsyncClient(timeout=5.0) as client:
                while True:
                    try:
                        await self.deliver_pushes(client)
                    except Exception:
                        log.exception("%s emulator: delivering pushes failed", self.platform)
                    await asyncio.sleep(interval)

        self._pusher = asyncio.get_running_loop().create_task(loop())

    async def stop_pushing(self) -> None:
        """Stop the background pusher (if running)."""
        task, self._pusher = self._pusher, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # -- reviews -----------------------------------------------------------------------

    def decide(self, notes: str, submitted_at: float) -> tuple[str, str]:
        """How a review submitted at ``submitted_at`` stands now.

        Returns ``(outcome, reason)`` with outcome one of ``"pending"``, ``"delayed"``,
        ``"approved"``, ``"rejected"``.
        """
        elapsed = self.clock() - submitted_at
        if elapsed < self.review_seconds:
            if DELAY_MARK in notes and elapsed >= self.review_seconds / 2:
                return "delayed", "Review queue is busy; the review will take longer than usual."
            return "pending", ""
        if REJECT_MARK in notes:
            return "rejected", (
                "1: The version notes ask for a rejection (#reject) — emulated review. "
                "2: Category does not match the page content."
            )
        return "approved", ""


class EmulatorServer:
    """Serves emulators on one loopback port, each under ``/<platform>``.

    ``async with EmulatorServer([WeChatEmulator(), ...]) as server:`` starts it on a free
    port (or ``port``); ``server.base_url("wechat")`` is what the adapter's base URL
    setting should be.

    With ``thread=True`` the server runs on an event loop in a thread of its own, started
    and stopped with it, so the emulators answer as a platform in another process would:
    their work (JSON, signatures, the answers held back) never waits in the loop of the
    process that calls them, nor that process's work in theirs. The emulator objects then
    belong to that thread: what another thread does to them goes through :meth:`call`
    (a function, run on the emulators' loop) or :meth:`push_to` / :meth:`stop_pushing`;
    their HTTP surface is reached over the socket as always. Without a thread (the tests'
    mode: one loop, a fake clock, faults injected directly) :meth:`call` just calls.
    """

    def __init__(
        self,
        emulators: Sequence[Emulator],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        thread: bool = False,
    ) -> None:
        self.emulators = {e.platform: e for e in emulators}
        self.host = host
        self.port = port
        self.threaded = thread
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def root_app(self) -> web.Application:
        """The application served: each emulator mounted under ``/<platform>``."""
        root = web.Application()
        for name, emulator in self.emulators.items():
            root.add_subapp(f"/{name}", emulator.web_app())
        return root

    async def start(self) -> None:
        if not self.threaded:
            await self._open()
            return
        if self._thread is not None:
            raise RuntimeError("the emulator server is running already")
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="miniship-emulators", daemon=True
        )
        self._thread.start()
        try:
            await asyncio.wrap_future(started)
        except BaseException:
            self._thread.join(JOIN_SECONDS)  # it ends on the failure itself
            self._thread = None
            raise

    def _run(self, started: concurrent.futures.Future[None]) -> None:
        """The emulators' thread: their loop, serving until :meth:`stop` ends it."""
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # this thread's, for what asks for the current one
        try:
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:
                started.set_exception(exc)
                return
            self._loop = loop
            started.set_result(None)
            loop.run_forever()
            # stopped: answers still held back (an injected ``timeout``) are given up
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            self._loop = None
            asyncio.set_event_loop(None)
            loop.close()

    async def _open(self) -> None:
        self._runner = web.AppRunner(self.root_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            raise
        self.port = int(self._runner.addresses[0][1])

    async def _close(self) -> None:
        for emulator in self.emulators.values():
            await emulator.stop_pushing()
            emulator.flush()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def stop(self) -> None:
        """Stop serving: pushes stopped, state written, the thread (if any) ended."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            await self._close()
            return
        try:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._close(), loop))
        finally:
            loop.call_soon_threadsafe(loop.stop)
            # what is left is cancelling answers held back: a blink, no executor needed
            thread.join(JOIN_SECONDS)
            if thread.is_alive():
                log.warning("the emulators' thread did not end within %g s", JOIN_SECONDS)
            self._thread = None

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` run where the emulators run, and what it returned (or
        raised): on their thread's loop, the caller waiting (a provision, an injected
        fault: short work); directly without a thread, or once it stopped."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or threading.current_thread() is thread:
            return fn(*args, **kwargs)

        async def there() -> T:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(there(), loop).result()

    async def push_to(self, platform: str, url: str, interval: float = 0.5) -> None:
        """Have ``platform``'s emulator push its review decisions to ``url`` from now on
        (:meth:`Emulator.start_pushing`, on the emulators' loop)."""
        emulator = self.emulators[platform]

        async def begin() -> None:
            emulator.push_url = url
            emulator.start_pushing(interval)

        await self._there(begin())

    async def stop_pushing(self, platform: str) -> None:
        """Stop ``platform``'s emulator pushing (before the receiver goes away)."""
        await self._there(self.emulators[platform].stop_pushing())

    async def _there(self, work: Coroutine[Any, Any, None]) -> None:
        """Await ``work`` on the emulators' loop."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or threading.current_thread() is thread:
            await work
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, loop))

    def base_url(self, platform: str) -> str:
        return f"http://{self.host}:{self.port}/{platform}"

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
