"""Both platform emulators in a process of their own, for the benchmarks.

    python -m bench.emulated --config F --env-file E [--port N] [--state DIR]
                             [--review-seconds S]

They serve the apps in miniship.toml ``F`` like ``bot.py emulators`` does and write the
credentials a separate miniship needs to ``E``. On top, for measuring:

- every answer is held back by a latency (``POST /_bench/latency {"ms": 50}``), as a
  platform on the far side of the internet answers;
- the emulators' clock can be moved on (``POST /_bench/advance {"seconds": 600}``), so
  every review in progress is decided at once;
- each request's path and arrival time is kept (``GET /_bench/calls?path=…``), so the
  benchmark reads when a platform call was *sent*, from the platform's side.

The process prints ``port <N>`` once serving, and stops (saving state) on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

import platforms
from bot import _write_env
from handlers.config import load_config
from platforms.emulators.base import Emulator, EmulatorServer


class BenchPlatforms(EmulatorServer):
    """The emulator server with a latency, a clock to move on and a log of calls."""

    def __init__(
        self, emulators: list[Emulator], skew: list[float], port: int, *, thread: bool = False
    ) -> None:
        super().__init__(emulators, port=port, thread=thread)
        self.latency = 0.0
        self.skew = skew
        self.calls: list[tuple[float, str]] = []

    @web.middleware
    async def _delayed(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith("/_bench/"):
            return await handler(request)
        token = request.query.get("access_token", "")[-6:]
        self.calls.append((time.time(), request.path + _method(request) + f" {token}"))
        if self.latency:
            await asyncio.sleep(self.latency)
        return await handler(request)

    def root_app(self) -> web.Application:
        root = super().root_app()
        root.middlewares.append(self._delayed)
        root.router.add_post("/_bench/latency", self._set_latency)
        root.router.add_post("/_bench/advance", self._advance)
        root.router.add_get("/_bench/calls", self._calls)
        return root

    async def _set_latency(self, request: web.Request) -> web.Response:
        self.latency = float((await request.json())["ms"]) / 1000
        return web.json_response({"ok": True})

    async def _advance(self, request: web.Request) -> web.Response:
        self.skew[0] += float((await request.json())["seconds"])
        return web.json_response({"ok": True})

    async def _calls(self, request: web.Request) -> web.Response:
        wanted = request.query.get("path", "")
        return web.json_response([[t, p] for t, p in self.calls if wanted in p])


def _method(request: web.Request) -> str:
    """Alipay's gateway carries the API in its ``method`` parameter: name it in the log."""
    method = request.query.get("method")
    return f"?method={method}" if method else ""


async def serve(
    config_path: Path, env_file: Path, port: int, state: Path | None, review_seconds: float
) -> None:
    config = load_config(config_path)
    skew = [0.0]

    def clock() -> float:
        return time.time() + skew[0]

    emus = [
        platforms.emulator_class(name)(
            review_seconds=review_seconds,
            clock=clock,
            state_path=state / f"{name}.json" if state else None,
        )
        for name in platforms.names()
        if config.platform_apps(name)
    ]
    for emulator in emus:  # an agency's monthly audit quota, sized for the fleet
        if hasattr(emulator, "quota_limit"):
            emulator.quota_limit = max(emulator.quota_limit, 10 * len(config.apps))
    server = BenchPlatforms(emus, skew, port)
    async with server:
        env: dict[str, str] = {}
        for e in emus:
            given = e.provision(server.base_url(e.platform), config.platform_apps(e.platform))
            env.update(given.env)
        _write_env(env_file, env)
        print(f"port {server.port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--env-file", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state", type=Path, default=None)
    parser.add_argument("--review-seconds", type=float, default=60.0)
    args = parser.parse_args()
    asyncio.run(serve(args.config, args.env_file, args.port, args.state, args.review_seconds))


if __name__ == "__main__":
    main()
