"""miniship: release WeChat and Alipay mini programs from chat.

    miniship console              the commands at a prompt (or from a script on stdin)
    miniship serve                the Slack bot (Socket Mode or HTTP mode)
    miniship emulators [--port N] serve both platform emulators alone
    miniship migrate              bring the database to the newest schema, and say so
    miniship rotate-key           re-encrypt kept credentials with the first key
    miniship token create|list|revoke …   the CI API's tokens (docs/ci.md)

``miniship`` is what ``pip install .`` puts on the PATH; ``python bot.py …`` is the same.

This module only wires things together: settings and miniship.toml, the database, one
adapter per platform (real, or pointed at an in-process emulator when the platform has
no credentials), the release service, and the way in.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import getpass
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError

import platforms
from handlers import logs
from handlers.admin import Admin
from handlers.api import CiApi
from handlers.apps import AppBook
from handlers.archives import Archives
from handlers.commands import Commands, Reply
from handlers.config import MinishipConfig, Settings, load_config
from handlers.console import Console
from handlers.fleet import Fleets
from handlers.metrics import LEADER
from handlers.ops import Ops
from handlers.pushes import PushReceiver
from handlers.releases import Actor, ReleaseService
from handlers.rollouts.engine import RolloutRules, Rollouts
from handlers.scheduler import FollowerPlanner, Scheduler
from handlers.timed import TimedReleases, TimedRules
from handlers.webhooks import Webhooks
from platforms.base import Platform
from platforms.emulators.base import Emulator, EmulatorServer
from platforms.errors import ConfigError
from storage import (
    SecretKeyError,
    Store,
    UnfitDatabase,
    Vault,
    VaultError,
    describe_url,
    make_engine,
    migrate,
    schema_revision,
    vault_keys,
)
from storage.leader import AlreadyRunning, Leadership, alone_on_file, alone_with_emulators

if TYPE_CHECKING:  # Slack's SDK is imported by `serve` alone: the console never loads it
    from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("miniship")

EMULATED_WATCH_SECONDS = 3.0
SLACK_CHECK_SECONDS = 60.0  # how long readiness trusts Slack's last word on the token
WATCH_SECONDS = 300.0
COLLECT_EVERY = 5_000
"""Allocations between two collections of the youngest objects (:func:`steady_collector`)."""


@dataclass
class Runtime:
    settings: Settings
    store: Store
    service: ReleaseService
    timed: TimedReleases
    admin: Admin
    server: EmulatorServer | None = None
    emulators: dict[str, Emulator] = field(default_factory=dict)
    """The in-process emulators; on the server's thread, reached through ``server.call``."""
    leading: bool = False
    """Whether this process leads (runs the scheduler) now."""
    rollouts: Rollouts | None = None
    api: CiApi | None = None
    """The CI API, while :func:`ci` runs: served by :func:`pushes` and :func:`operating`."""

    @property
    def config(self) -> MinishipConfig:
        """The apps and channels in force: miniship.toml's and those kept in the database."""
        return self.service.config

    def commands(self, **kwargs: Any) -> Commands:
        """The commands as this process's settings configure them (what asks first)."""
        kwargs.setdefault("confirm", self.settings.confirming)
        kwargs.setdefault("confirm_lifetime", timedelta(minutes=self.settings.confirm_minutes))
        kwargs.setdefault("approval_lifetime", timedelta(hours=self.settings.approval_hours))
        kwargs.setdefault("rollouts", self.rollouts)
        kwargs.setdefault("archives", Archives(self.settings.archive_dir))
        return Commands(self.service, timed=self.timed, admin=self.admin, **kwargs)

    @property
    def watch_seconds(self) -> float:
        if self.settings.watch_seconds is not None:
            return self.settings.watch_seconds
        if self.emulators:  # local and cheap: ask often enough to see each decision promptly
            return min(EMULATED_WATCH_SECONDS, self.settings.emulator_review_seconds / 2)
        return WATCH_SECONDS

    def _apps_line(self) -> str:
        """``demo (from miniship.toml), and 3 more kept in the database (`apps`)``."""
        in_file = list(self.config.in_file)
        kept = len(self.config.apps) - len([k for k in self.config.apps if k in in_file])
        said = f"{', '.join(in_file) or 'none'} (from {self.config.path})"
        return said + (f", and {kept} more kept in the database (`apps`)" if kept else "")

    def banner(self) -> str:
        parts = []
        for name, adapter in self.service.adapters.items():
            where = (
                f"emulated on {self.server.base_url(name)}"
                if self.server and name in self.emulators
                else "live"
            )
            parts.append(f"{adapter.display_name} ({where})")
        lines = [
            "miniship console — type `help` for the commands, `quit` to leave",
            f"  database:  {describe_url(self.settings.database_url)}",
            f"  platforms: {', '.join(parts) or 'none configured'}",
            f"  apps:      {self._apps_line()}",
        ]
        if self.emulators:
            seconds = self.settings.emulator_review_seconds
            lines.append(
                f"  emulated reviews are approved after {seconds:g} s; "
                "notes containing #reject are rejected, #delay are delayed first"
            )
        return "\n".join(lines)


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    emulator_thread: bool = True,
) -> AsyncIterator[Runtime]:
    """Everything a way in needs, started; closed again on exit.

    In-process emulators run on a loop in a thread of their own (``emulator_thread``), as
    a platform elsewhere would; the tests keep them in this loop (``False``) to move
    their clock and inject faults directly."""
    config = load_config(settings.config)
    alone = contextlib.AsyncExitStack()
    await alone.enter_async_context(alone_on_file(settings.database_url))  # SQLite: one process
    engine = make_engine(settings.database_url)
    adapters: dict[str, Platform] = {}
    server: EmulatorServer | None = None
    try:
        with reaching(settings.database_url):
            await migrate(engine)
        store = Store(engine)
        await store.sync_apps({k: a.name for k, a in config.apps.items()})
        stored = {
            name
            for row in await store.apps()
            if row.retired_at is None and row.definition
            for name in row.definition
            if name in platforms.names()
        }
        emulators = _emulators_needed(settings, config, stored, clock)
        if emulators:  # a platform of this process's own: no other process may share it
            await alone.enter_async_context(alone_with_emulators(engine))
            server = EmulatorServer(list(emulators.values()), thread=emulator_thread)
            await server.start()
        for name in platforms.names():
            cls = platforms.platform_class(name)
            if name in emulators:
                assert server is not None
                given = server.call(emulators[name].provision, server.base_url(name), {})
                adapters[name] = cls(given.settings, {}, clock=clock)
            elif config.platform_apps(name) or cls.is_configured(cls.Settings()):
                adapters[name] = cls(cls.Settings(), {}, clock=clock)

        def provision(name: str, apps: Mapping[str, BaseModel]) -> Mapping[str, BaseModel]:
            """An emulated platform registers the apps and gives credentials it accepts."""
            if name not in emulators or server is None:
                return apps
            return server.call(emulators[name].provision, server.base_url(name), apps).apps

        # with every platform emulated a key of our own will do; real credentials need one
        # the operator keeps (a key file next to the database would protect little)
        generated = settings.emulator_state.parent / "secret.key"
        all_emulated = set(emulators) >= set(adapters)
        keys = vault_keys(
            settings.secret_key, settings.secret_key_file, generated if all_emulated else None
        )
        vault = Vault(store, keys)
        for adapter in adapters.values():
            adapter.vault = vault
        service = ReleaseService(
            store,
            config,
            adapters,
            emulated=list(emulators),
            watch_concurrency=settings.watch_concurrency,
        )
        book = AppBook(service, provision)
        await book.load()  # the apps added from chat or by a platform join the file's
        fleets = Fleets(service, concurrency=settings.fleet_concurrency, rate=settings.fleet_rate)
        timed = TimedReleases(service, TimedRules.from_settings(settings))
        rollouts = Rollouts(
            service,
            timed,
            RolloutRules.from_settings(settings),
            clock=lambda: datetime.fromtimestamp(clock(), UTC),  # the platforms' clock
        )
        admin = Admin(service, settings.public_url, book)
        try:
            yield Runtime(
                settings, store, service, timed, admin, server, emulators, rollouts=rollouts
            )
        finally:
            await fleets.stop()  # what was in flight is run again at the next start
    finally:
        for adapter in adapters.values():
            await adapter.aclose()
        if server is not None:
            await server.stop()
        await alone.aclose()
        await engine.dispose()


def _emulators_needed(
    settings: Settings, config: MinishipConfig, stored: set[str], clock: Callable[[], float]
) -> dict[str, Emulator]:
    """An emulator for each platform in use that runs without real credentials: one with
    apps in miniship.toml or in the database (``stored``), or any, when no platform has
    credentials at all (trying miniship out: apps may be added for either)."""
    out: dict[str, Emulator] = {}
    names = platforms.names()
    classes = [platforms.platform_class(n) for n in names]
    trying = not any(cls.is_configured(cls.Settings()) for cls in classes)
    for name in names:
        if not (config.platform_apps(name) or name in stored or trying):
            continue
        cls = platforms.platform_class(name)
        configured = cls.is_configured(cls.Settings())
        if settings.emulators == "off" and not configured:
            if not config.platform_apps(name):
                continue  # apps added later for it are refused: nothing to call

            raise ConfigError(
                f"{cls.display_name} has no credentials and MINISHIP_EMULATORS=off; "
                f"set them (see README) or remove the [apps.*.{name}] sections"
            )
        if settings.emulators == "on" or (settings.emulators == "auto" and not configured):
            out[name] = platforms.emulator_class(name)(
                review_seconds=settings.emulator_review_seconds,
                state_path=settings.emulator_state / f"{name}.json",
                clock=clock,
            )
            out[name].add_merchants(settings.emulator_merchants)
    return out


@contextlib.asynccontextmanager
async def scheduling(
    rt: Runtime, fleets: Callable[[], Awaitable[object]] | None = None
) -> AsyncIterator[Scheduler]:
    """The scheduler (review watcher, digests, timed releases), run while this process
    leads: at once on SQLite (one process); on PostgreSQL when no other replica leads,
    or when the leader is gone (checked every MINISHIP_LEADER_SECONDS). At each check the
    leader also takes up ``fleets``: the fleet runs no process drives any more (the
    replica that started one stopped, and none started since)."""
    settings = rt.settings
    scheduler = Scheduler(
        settings.database_url,
        rt.timed,
        watch_seconds=rt.watch_seconds,
        stop_seconds=settings.stop_seconds,
        rollouts=rt.rollouts,
    )
    leadership = Leadership(rt.store.engine)
    follower = FollowerPlanner()

    async def tick() -> None:
        if rt.service.work.stopping:  # a stopping replica takes no lead
            return
        await claim()
        rt.leading = scheduler.running
        LEADER.set(1 if rt.leading else 0)
        if rt.leading and fleets is not None:
            await fleets()

    async def claim() -> None:
        if await leadership.claim():
            if not scheduler.running:
                await scheduler.start()
                if leadership.shared:
                    log.warning("this replica leads: it runs the scheduler")
            else:
                await scheduler.adopt()  # plans the other replicas stored
        elif scheduler.running:  # the lock's connection is gone: another may lead now
            log.error("this replica no longer leads: its scheduler stops")
            await scheduler.stop()
        if rt.timed.planner is None:
            rt.timed.planner = follower

    async def follow_or_lead() -> None:
        while True:
            await asyncio.sleep(settings.leader_seconds)
            try:
                await tick()
            except Exception:  # the next tick tries again; the process carries on
                log.exception("checking who leads failed")

    await tick()
    loop = asyncio.create_task(follow_or_lead())
    try:
        yield scheduler
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await scheduler.stop()
        await leadership.resign()
        rt.leading = False
        LEADER.set(0)
        if rt.timed.planner is follower:
            rt.timed.planner = None


@contextlib.asynccontextmanager
async def operating(
    rt: Runtime,
    app: web.Application | None = None,
    slack: AsyncWebClient | None = None,
) -> AsyncIterator[None]:
    """/healthz, /readyz and /metrics: on ``app`` (Slack's HTTP server) when given, else on
    MINISHIP_OPS_PORT when set. With ``slack``, readiness includes Slack's word on the bot
    token (asked at most once a minute)."""
    checked: list[tuple[float, str | None]] = []

    async def slack_problem() -> str | None:
        assert slack is not None
        if checked and time.monotonic() - checked[0][0] < SLACK_CHECK_SECONDS:
            return checked[0][1]
        try:
            await slack.auth_test()
            said = None
        except Exception as exc:  # refused, or unreachable: either way not ready
            said = f"auth.test failed ({type(exc).__name__})"
        checked[:] = [(time.monotonic(), said)]
        return said

    ops = Ops(rt.service, leading=lambda: rt.leading, slack=slack_problem if slack else None)
    if app is not None:
        app.add_routes(ops.routes())
        if rt.api is not None:  # and the CI API, on Slack's server
            rt.api.mount(app)
        yield
    elif rt.settings.ops_port is not None:
        served = ops.web_app()
        if rt.api is not None:
            rt.api.mount(served)
        public = serving(served, "0.0.0.0", rt.settings.ops_port)  # noqa: S104
        async with public as port:
            log.warning(
                "health and metrics on port %d (/healthz, /readyz, /metrics; the CI API at /api/)",
                port,
            )
            yield
    else:
        yield


# --------------------------------------------------------------------------- commands


@contextlib.asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Serve ``app`` on ``host:port`` (0: a free port) until the block ends; yields the port.
    A request too malformed to parse gets aiohttp's 400 and one warning line."""
    logs.quiet_bad_requests()
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def pushes(
    rt: Runtime, app: web.Application | None = None, app_port: int | None = None
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Receive platform pushes: on ``app`` (Slack's HTTP server, port ``app_port``) when
    given, else on MINISHIP_PUSH_PORT, else — with emulators only — on a loopback port of
    our own. Emulators are pointed at it, so their review decisions arrive at once: at
    once on a server of its own; on ``app``'s, when the caller awaits what this yields,
    once that server listens (pushed before, the first ones failed)."""
    receiver = PushReceiver(rt.service, rt.admin)
    async with contextlib.AsyncExitStack() as stack:
        port: int | None = None
        if app is not None:
            app.add_routes(receiver.routes())
            port = app_port
        elif rt.settings.push_port is not None:
            served = receiver.web_app()
            if rt.api is not None:  # a CI runner reaches miniship where a platform does
                rt.api.mount(served)
            public = serving(served, "0.0.0.0", rt.settings.push_port)  # noqa: S104
            port = await stack.enter_async_context(public)
            log.warning("listening for platform pushes on port %d at /push/… (CI API: /api/)", port)
        elif rt.emulators:
            port = await stack.enter_async_context(serving(receiver.web_app(), "127.0.0.1", 0))
        if (
            port is not None
            and rt.admin.public_url is None
            and not rt.service.adapters.keys() - rt.emulators.keys()
        ):
            # emulated platforms send the admin's browser back here, on this machine
            rt.admin.public_url = f"http://127.0.0.1:{port}"

        async def begin() -> None:
            """The emulators push to the receiver from now on (once it listens)."""
            for name in rt.emulators if port is not None else ():
                assert rt.server is not None
                await rt.server.push_to(name, f"http://127.0.0.1:{port}/push/{name}")
                stack.push_async_callback(rt.server.stop_pushing, name)

        if app is None:  # served already (or nothing to serve)
            await begin()
            yield begin
        else:  # on the caller's server, not listening yet: it calls begin() once it does
            yield begin


@contextlib.asynccontextmanager
async def ci(
    rt: Runtime, commands: Commands, relay: Callable[[Reply], Awaitable[None]] | None = None
) -> AsyncIterator[CiApi]:
    """The CI API over ``commands`` (this way in's runner), served by :func:`pushes` and
    :func:`operating` entered inside this block; ``relay`` shows what an API call ran
    (Slack: on the release card). And the outgoing webhooks, when MINISHIP_WEBHOOK_URLS
    names any: they hear every command, review change and timed-release notice."""
    api = CiApi(commands, max_archive=int(rt.settings.archive_mb * 2**20))
    if relay is not None:
        api.relays.append(relay)
    urls, key = rt.settings.webhooks
    hooks = Webhooks(rt.service, urls, key, attempts=rt.settings.webhook_attempts) if urls else None
    if hooks is not None:
        commands.listeners.append(hooks.on_command)
        rt.service.listeners.append(hooks.on_change)
        rt.timed.announcers.append(hooks)
        hooks.start()
        log.warning("release events go to %d webhook URL(s)", len(urls))
    rt.api = api
    try:
        yield api
    finally:
        rt.api = None
        if hooks is not None:
            commands.listeners.remove(hooks.on_command)
            rt.service.listeners.remove(hooks.on_change)
            rt.timed.announcers.remove(hooks)
            await hooks.aclose()


def steady_collector() -> None:
    """For a process that runs on (``console``, ``serve``), once started: what start-up
    made and keeps for good (modules, settings, every app's configuration, the ORM's
    mappers) is set aside from the cyclic garbage collector (:func:`gc.freeze`), and the
    youngest objects are looked at every 5,000 allocations instead of 700. The collector
    then takes ~0.05 ms of a platform question instead of ~0.14 at 1,000 apps, for 2–4 MB
    more held between collections (bench/README.md); what is garbage is still freed, and
    cycles made later are still found."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(COLLECT_EVERY, *gc.get_threshold()[1:])


MALLOC_ARENAS = 2


def fewer_malloc_arenas() -> None:
    """At a process's start, before its threads: glibc's malloc keeps at most
    :data:`MALLOC_ARENAS` arenas (unless ``MALLOC_ARENA_MAX`` in the environment says how
    many). By default each thread that allocates gets one of its own, up to eight per
    core — the database's connection threads, the event loop's executor — and the free
    room left in them stays resident: ~7 MB of a 1,000-app process after a round
    (bench/README.md). miniship's work is on one event loop, so its few threads seldom
    wait for one another's malloc. Where the C library is not glibc, nothing is done."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return
    m_arena_max = -8  # <malloc.h>
    mallopt(ctypes.c_int(m_arena_max), ctypes.c_int(MALLOC_ARENAS))


async def console(settings: Settings, stop: asyncio.Event) -> int:
    async with open_runtime(settings) as rt:
        steady_collector()
        term = Console(
            rt.commands(), Actor(f"console:{getpass.getuser()}"), pictures=settings.qr_dir
        )
        term.say(rt.banner())
        async with (
            scheduling(rt, term.commands.take_up_idle_fleets),
            ci(rt, term.commands, term.relay),
            pushes(rt),
            operating(rt),
        ):
            for run in await term.commands.resume_fleets():
                term.say(f"carrying on with fleet run #{run} (`fleet {run}`)")
            typing = asyncio.create_task(term.run())
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait([typing, stopped], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not typing.done():  # asked to stop: the line running now may finish
                await rt.service.work.drain(settings.stop_seconds)
                typing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await typing
    return 0


async def serve(settings: Settings, stop: asyncio.Event) -> int:
    """Connect to Slack: Socket Mode with SLACK_APP_TOKEN, else HTTP on PORT."""
    # here, not at the top: Bolt and the Slack SDK (~7 MB resident) are for `serve` only
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_sdk.web.async_client import AsyncWebClient

    from handlers.slack import SlackSettings, build_app, make_binding

    slack = SlackSettings()
    if slack.slack_bot_token is None:
        raise ConfigError("SLACK_BOT_TOKEN is not set (the xoxb- token of the Slack app)")
    socket_mode = slack.slack_app_token is not None
    if not socket_mode and slack.slack_signing_secret is None:
        raise ConfigError("set SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode)")
    async with open_runtime(settings) as rt:
        steady_collector()
        client = AsyncWebClient(
            token=slack.slack_bot_token.get_secret_value(), base_url=slack.slack_api_url
        )

        binding = make_binding(rt.service, client, rt.timed, rt.admin, commands=rt.commands)
        await binding.commands.resume_fleets()
        for app_entry in rt.config.apps.values():
            if app_entry.roles.open:
                log.warning(
                    "anyone in the workspace may publish %s: set [apps.%s] roles.publish",
                    app_entry.key,
                    app_entry.key,
                )
        secret = slack.slack_signing_secret
        app = build_app(
            binding,
            signing_secret=secret.get_secret_value() if secret else None,
            socket_mode=socket_mode,
        )
        if rt.emulators:
            log.warning(
                "no credentials for %s: using the in-process emulators (%s)",
                ", ".join(rt.emulators),
                rt.server.base_url("") if rt.server else "",
            )
        async with scheduling(rt, binding.commands.take_up_idle_fleets):
            if socket_mode:
                assert slack.slack_app_token is not None
                handler = AsyncSocketModeHandler(app, slack.slack_app_token.get_secret_value())
                await handler.connect_async()  # type: ignore[no-untyped-call]
                log.warning("connected to Slack in Socket Mode")
                try:
                    async with (
                        ci(rt, binding.commands, binding.relay),
                        pushes(rt),
                        operating(rt, slack=client),
                    ):
                        await stop.wait()
                        # no new events from Slack; what runs may finish
                        await handler.close_async()  # type: ignore[no-untyped-call]
                        await rt.service.work.drain(settings.stop_seconds)
                finally:
                    await handler.close_async()  # type: ignore[no-untyped-call]
            else:
                web_app = app.web_app(path="/slack/events")
                async with (
                    ci(rt, binding.commands, binding.relay),
                    pushes(rt, web_app, slack.port) as begin_pushes,
                    operating(rt, web_app, client),
                    serving(web_app, "0.0.0.0", slack.port),  # noqa: S104
                ):
                    await begin_pushes()  # emulated pushes wait until the port is open
                    log.warning("listening for Slack on port %d at /slack/events", slack.port)
                    await stop.wait()
                    await rt.service.work.drain(settings.stop_seconds)
    return 0


async def emulators(
    settings: Settings,
    stop: asyncio.Event,
    port: int,
    env_file: Path,
    host: str = "127.0.0.1",
    url: str | None = None,
) -> int:
    """Serve the emulators for the apps in miniship.toml until interrupted, on ``host``;
    the credentials written to ``env_file`` reach them at ``url`` (default: this machine's
    loopback), e.g. ``http://emulators:8710`` for other containers."""
    config = load_config(settings.config)
    emus = [
        platforms.emulator_class(name)(
            review_seconds=settings.emulator_review_seconds,
            state_path=settings.emulator_state / f"{name}.json",
        )
        for name in platforms.names()
        if config.platform_apps(name)
    ]
    async with EmulatorServer(emus, host=host, port=port) as server:
        reach = (url or f"http://127.0.0.1:{server.port}").rstrip("/")
        env: dict[str, str] = {}
        for e in emus:
            env.update(e.provision(f"{reach}/{e.platform}", config.platform_apps(e.platform)).env)
        _write_env(env_file, env)
        print(f"emulators serving on {reach}", flush=True)
        for e in emus:
            print(f"  {e.platform}: {reach}/{e.platform}", flush=True)
        print(
            f"credentials for a separate miniship are in {env_file} "
            f"(e.g. `set -a; . {env_file}; set +a`); reviews decided after "
            f"{settings.emulator_review_seconds:g} s. Ctrl-C stops.",
            flush=True,
        )
        await stop.wait()
    return 0


@contextlib.contextmanager
def reaching(url: str) -> Iterator[None]:
    """The first time a command asks the database anything: one that does not answer
    (down, a wrong host or password) is said in a line, not a traceback."""
    try:
        yield
    except (OperationalError, OSError) as exc:
        said = str(exc).strip().splitlines()
        why = said[0] if said else type(exc).__name__
        raise ConfigError(f"the database {describe_url(url)} does not answer: {why}") from None
    except UnfitDatabase as exc:
        raise ConfigError(f"{describe_url(url)}: {exc}") from None


async def migrate_database(settings: Settings) -> int:
    """Bring the database to the newest schema (every start does this too; run it alone
    before starting several replicas of a new version)."""
    engine = make_engine(settings.database_url)
    try:
        with reaching(settings.database_url):
            before, _ = await schema_revision(engine)
            await migrate(engine)
        after, head = await schema_revision(engine)
    finally:
        await engine.dispose()
    where = describe_url(settings.database_url)
    if before == after:
        print(f"{where} is at the newest schema ({head})", flush=True)
    else:
        print(f"{where} migrated from {before or 'empty'} to {after} (newest)", flush=True)
    return 0


async def rotate_key(settings: Settings) -> int:
    """Re-encrypt every kept credential with the first key of MINISHIP_SECRET_KEY."""
    keys = vault_keys(settings.secret_key, settings.secret_key_file, None)
    engine = make_engine(settings.database_url)
    try:
        with reaching(settings.database_url):
            await migrate(engine)
        try:
            rewritten = await Vault(Store(engine), keys).rotate()
        except VaultError as exc:
            print(f"miniship: nothing was re-encrypted: {exc}", file=sys.stderr)
            return 1
    finally:
        await engine.dispose()
    print(f"re-encrypted {rewritten} stored credential(s) with the first key", flush=True)
    if len(keys) > 1:
        print("every credential now opens with the first key alone: drop the others", flush=True)
    return 0


async def token_command(settings: Settings, words: list[str], *, asking: bool = True) -> int:
    """``miniship token …``: the ``token`` command, run as the console runs it (as
    ``console:<user>``, recorded in history) but without the platforms — a short run beside
    a serving miniship, like ``migrate``. ``asking``: a question (revoke) is asked at the
    terminal; otherwise only ``--yes`` answers it."""
    config = load_config(settings.config)
    engine = make_engine(settings.database_url)
    try:
        with reaching(settings.database_url):
            await migrate(engine)
        service = ReleaseService(Store(engine), config, {})
        await AppBook(service, lambda name, apps: apps).load()  # apps kept in the database
        commands = Commands(service)
        actor = Actor(f"console:{getpass.getuser()}")
        reply = await commands.handle(actor, " ".join(["token", *words]))
        if reply.asked is not None:
            said = ""
            if asking and sys.stdin.isatty():
                said = await asyncio.to_thread(input, f"{reply.text} [y/N] ")
            yes = said.strip().lower() in ("y", "yes")
            answered = await commands.answer(actor, reply.asked.token, yes)
            if not yes:
                print(f"{reply.text}\nNot done: end the line with --yes.", file=sys.stderr)
                return 1
            reply = answered
    finally:
        await engine.dispose()
    print(reply.text, file=sys.stderr if reply.error else sys.stdout, flush=True)
    return 1 if reply.error else 0


def until_stopped(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run ``main(stop)``; SIGTERM or SIGINT sets ``stop``, and ``main`` stops gracefully
    (new work refused, running work let finish, the scheduler and database closed). A
    second signal stops at once."""

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def signalled(name: str) -> None:
            if stop.is_set():
                log.warning("%s again: stopping now", name)
                if task is not None:
                    task.cancel()
                return
            log.warning("%s: stopping (running work may take up to its limit)", name)
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, signalled, sig.name)
        try:
            code = await main(stop)
        except asyncio.CancelledError:
            return 130
        if stop.is_set():  # the log's last word on a stop (as loud as its first)
            log.warning("stopped cleanly" if code == 0 else f"stopped (exit status {code})")
        return code

    return asyncio.run(run())


def _write_env(path: Path, env: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for key, value in env.items():
            quoted = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            fh.write(f'{key}="{quoted}"\n')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="miniship", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("console", help="type commands, or run a script from stdin")
    sub.add_parser("serve", help="connect to Slack (Socket Mode or HTTP)")
    emu = sub.add_parser("emulators", help="serve the WeChat and Alipay emulators alone")
    emu.add_argument("--port", type=int, default=8710, help="port (default 8710)")
    emu.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container)",
    )
    emu.add_argument(
        "--url",
        help="where others reach the emulators, written into the credentials "
        "(default http://127.0.0.1:PORT; e.g. http://emulators:8710)",
    )
    emu.add_argument(
        "--env-file",
        type=Path,
        default=Path("var/emulators.env"),
        help="where to write the credentials the emulators issued",
    )
    sub.add_parser("migrate", help="bring the database to the newest schema")
    sub.add_parser(
        "rotate-key",
        help="re-encrypt kept credentials with the first key of MINISHIP_SECRET_KEY "
        "(put the new key first, the old after it, comma-separated)",
    )
    tok = sub.add_parser(
        "token",
        help="make, list or revoke a token of the CI API: token create <name> --role "
        "release [--apps a,b|@tag|all] | token list | token revoke <name> [--yes]",
    )
    tok.add_argument("words", nargs=argparse.REMAINDER, help="as after /ship token")
    args = parser.parse_args(argv)
    fewer_malloc_arenas()
    settings = Settings()
    logs.setup(settings.log_level, settings.log_format)
    try:
        if args.command == "emulators":
            return until_stopped(
                lambda stop: emulators(
                    settings, stop, args.port, args.env_file, args.host, args.url
                )
            )
        if args.command == "migrate":
            return asyncio.run(migrate_database(settings))
        if args.command == "rotate-key":
            return asyncio.run(rotate_key(settings))
        if args.command == "token":
            return asyncio.run(token_command(settings, args.words))
        _ = settings.webhooks  # a webhook URL without its key is said now, not once connected
        if args.command == "serve":
            return until_stopped(lambda stop: serve(settings, stop))
        return until_stopped(lambda stop: console(settings, stop))
    except (ConfigError, SecretKeyError, AlreadyRunning) as exc:  # said in a line
        print(f"miniship: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
