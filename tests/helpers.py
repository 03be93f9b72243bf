"""Small shared test helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from bot import Runtime, open_runtime
from handlers.config import Settings
from platforms import emulator_class, platform_class
from platforms.base import Platform
from platforms.emulators.base import Emulator, EmulatorServer
from platforms.transport import Sender
from storage import ReleaseState, Store


class FakeClock:
    """A unix-seconds clock that only moves when told to."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSleep:
    """A stand-in for ``Platform.sleep``: records each delay and moves ``clock`` by it,
    so back-off and polling cost no real time but still pass on the emulator's clock.

        adapter.sleep = sleeper = FakeSleep(world.clock)
        ...
        assert sleeper.delays == [0.5, 1.0]
    """

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.clock is not None:
            self.clock.advance(seconds)


@dataclass
class World:
    """One platform: its emulator on loopback and an adapter provisioned against it."""

    name: str
    emulator: Emulator
    adapter: Platform
    clock: FakeClock
    server: EmulatorServer
    app: str = "shop"

    def decide_reviews(self) -> None:
        """Move the clock past the review time so pending reviews are decided."""
        self.clock.advance(self.emulator.review_seconds + 1)


@asynccontextmanager
async def open_world(
    name: str,
    *,
    review_seconds: float = 60.0,
    client_timeout: float = 1.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[World]:
    """Platform ``name``'s emulator on loopback and an adapter provisioned against it.

    ``transport`` (optional) carries the adapter's HTTP, e.g. to watch or alter it.
    """
    clock = FakeClock()
    emulator = emulator_class(name)(
        review_seconds=review_seconds, clock=clock, timeout_seconds=client_timeout * 3
    )
    async with EmulatorServer([emulator]) as server:
        provisioned = emulator.provision(server.base_url(name), {"shop": emulator.example_app()})
        sender = Sender(transport, timeout=client_timeout)
        adapter = platform_class(name)(
            provisioned.settings, provisioned.apps, sender=sender, clock=clock
        )
        try:
            yield World(name, emulator, adapter, clock, server)
        finally:
            await adapter.aclose()
            await sender.aclose()


async def release_state(
    store: Store, version: str, platform: str, app: str = "demo"
) -> ReleaseState:
    """The stored state of ``app`` ``version`` on ``platform`` (it must exist)."""
    release = await store.release(app, version)
    assert release is not None and release.id is not None
    target = await store.target(release.id, platform)
    assert target is not None
    return ReleaseState(target.state)


@asynccontextmanager
async def clocked_runtime(settings: Settings, clock: FakeClock) -> AsyncIterator[Runtime]:
    """``bot.open_runtime`` on a fake clock shared with the emulators; the adapters wait
    (polling a build, a trial package) on that clock too, so no test sleeps for real. The
    emulators run in the test's own loop, so a test moves their clock and injects faults
    directly (a thread of their own is what ``make run`` has: tests/platforms/
    test_emulator_thread.py)."""
    async with open_runtime(settings, clock=clock, emulator_thread=False) as rt:
        for adapter in rt.service.adapters.values():
            adapter.sleep = FakeSleep(clock)
        yield rt
