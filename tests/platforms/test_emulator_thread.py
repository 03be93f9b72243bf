"""The emulators on a thread of their own, as `make run` and `serve` host them: an adapter
in the caller's loop releases through them, what the caller does to an emulator runs on
the emulators' loop, their pushes reach a receiver in the caller's loop, and stopping
ends the thread with the state written."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path

import pytest
from aiohttp import web

from platforms.base import ReviewState
from platforms.emulators.base import EmulatorServer
from platforms.emulators.wechat import WeChatEmulator
from platforms.errors import PlatformUnavailable
from platforms.transport import Sender
from platforms.wechat import WeChatPlatform
from tests.helpers import FakeClock, FakeSleep

THREAD = "miniship-emulators"


def emulator_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD]


async def test_a_release_through_emulators_on_their_own_thread(tmp_path: Path) -> None:
    clock = FakeClock()
    emulator = WeChatEmulator(review_seconds=60, clock=clock, state_path=tmp_path / "w.json")
    server = EmulatorServer([emulator], thread=True)
    async with server:
        (thread,) = emulator_threads()
        assert server.call(threading.current_thread) is thread  # marshalled, not run here
        given = server.call(
            emulator.provision, server.base_url("wechat"), {"shop": emulator.example_app()}
        )
        async with Sender(timeout=5) as sender:
            adapter = WeChatPlatform(given.settings, given.apps, sender=sender, clock=clock)
            await adapter.upload("shop", "1.0.0", "first")
            sub = await adapter.submit("shop", "1.0.0", "first")
            adapter.sleep = FakeSleep(clock)  # its back-off, on the fake clock
            server.call(emulator.inject, "*", "unavailable", times=50)
            with pytest.raises(PlatformUnavailable):
                await adapter.review_status("shop", "1.0.0", sub.ref)
            server.call(emulator.clear_faults)
            clock.advance(3600)
            status = await adapter.review_status("shop", "1.0.0", sub.ref)
            assert status.state is ReviewState.APPROVED
            await adapter.aclose()
    assert not thread.is_alive() and emulator_threads() == []
    saved = json.loads((tmp_path / "w.json").read_text(encoding="utf-8"))  # flushed at stop
    assert given.apps["shop"].appid in json.dumps(saved)  # type: ignore[attr-defined]
    assert server.call(lambda: 7) == 7  # stopped: called directly again


async def test_pushes_from_the_thread_reach_the_callers_loop() -> None:
    clock = FakeClock()
    emulator = WeChatEmulator(review_seconds=60, clock=clock)
    arrived: list[str] = []
    audit = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        assert threading.current_thread() is threading.main_thread()
        arrived.append(request.match_info["appid"])
        if request.match_info["appid"] != "auth":
            audit.set()
        return web.Response(text="success")

    app = web.Application()
    app.router.add_post("/push/wechat/{appid}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with EmulatorServer([emulator], thread=True) as server:
            given = server.call(
                emulator.provision, server.base_url("wechat"), {"shop": emulator.example_app()}
            )
            async with Sender(timeout=5) as sender:
                adapter = WeChatPlatform(given.settings, given.apps, sender=sender, clock=clock)
                await adapter.upload("shop", "1.0.0", "first")
                await adapter.submit("shop", "1.0.0", "please #reject")
                await adapter.aclose()
            clock.advance(61)
            url = f"http://127.0.0.1:{runner.addresses[0][1]}/push/wechat"
            await server.push_to("wechat", url, interval=0.01)
            await asyncio.wait_for(audit.wait(), 30)  # a safety net, not a timing bound
            await server.stop_pushing("wechat")
            assert emulator.push_url == url
    finally:
        await runner.cleanup()
    assert given.apps["shop"].appid in arrived  # type: ignore[attr-defined]
    assert emulator_threads() == []


async def test_a_port_taken_is_said_and_leaves_no_thread() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = EmulatorServer([WeChatEmulator()], port=taken.getsockname()[1], thread=True)
        with pytest.raises(OSError):
            await server.start()
    assert emulator_threads() == []
