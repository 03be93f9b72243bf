"""Small shared test helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from platforms import emulator_class, platform_class
from platforms.base import Platform
from platforms.emulators.base import Emulator, EmulatorServer
from storage import ReleaseState, Store


class FakeClock:
    """A unix-seconds clock that only moves when told to."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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
    name: str, *, review_seconds: float = 60.0, client_timeout: float = 1.0
) -> AsyncIterator[World]:
    clock = FakeClock()
    emulator = emulator_class(name)(
        review_seconds=review_seconds, clock=clock, timeout_seconds=client_timeout * 3
    )
    async with EmulatorServer([emulator]) as server:
        provisioned = emulator.provision(server.base_url(name), {"shop": emulator.example_app()})
        client = httpx.AsyncClient(timeout=client_timeout)
        adapter = platform_class(name)(
            provisioned.settings, provisioned.apps, client=client, clock=clock
        )
        try:
            yield World(name, emulator, adapter, clock, server)
        finally:
            await adapter.aclose()
            await client.aclose()


async def release_state(
    store: Store, version: str, platform: str, app: str = "demo"
) -> ReleaseState:
    """The stored state of ``app`` ``version`` on ``platform`` (it must exist)."""
    release = await store.release(app, version)
    assert release is not None and release.id is not None
    target = await store.target(release.id, platform)
    assert target is not None
    return ReleaseState(target.state)
