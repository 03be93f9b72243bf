"""miniship's speed at fleet scale, measured in one run: ``make bench`` (``python -m bench``).

Every figure is printed beside its bound (issue 13) and, where there is one, its peer:
the loop a team would write with wechatpy. The platforms are the emulators, in a process
of their own (``bench.emulated``) answering every request after a latency, as a platform
across the internet does; miniship is this process, so its CPU time and memory are read
from here alone.

    python -m bench [--apps 1000] [--latency-ms 50] [--concurrency 32] [--keep]

What runs, in order (all through miniship's own commands, console and scheduler):
1. setup, with no latency: ``upload all`` and ``submit all`` as fleet runs;
2. a watch round over every app × platform (after one round to warm up): wall time
   against ``questions × latency / concurrency``, miniship's CPU per question, resident
   memory; the wechatpy loop (``get_latest_audit_status`` one app after another) over a
   sample of the same apps, scaled to all the questions;
3. the same round with the emulators inside miniship's process, as ``make run`` has them
   (on a thread of their own, state kept on disk), against the round in (2);
4. every review decided; a fleet publish of half the apps on WeChat at a set rate,
   against ``apps / rate``;
5. 20 timed publishes due at the same moment: when each release call reached the
   platform, against its time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import importlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

import platforms
from bot import Runtime, fewer_malloc_arenas, open_runtime, scheduling, steady_collector
from handlers.config import Settings
from handlers.console import Console
from handlers.fleet import Fleets
from handlers.releases import Actor
from handlers.timed import PREFLIGHT
from platforms.emulators.base import SAVE_DELAY, Emulator
from storage.models import utcnow

from .emulated import BenchPlatforms

ME = Actor("console:bench")
TEMPLATE_APPID = "2021004100009999"
NOTES = "Test account: bench / bench1234. Every page is reachable from the home tab."
PEER_SAMPLE = 100  # wechatpy questions actually asked; the loop is linear, so it scales
REVIEW_SECONDS = 6 * 3600.0
"""How long the emulators take to decide a review: longer than the whole run, so every
release is still in review in the watch rounds (a question is one call, as the bound has
it; an approved WeChat release is asked what is live and staged too) until the clock is
moved on for the publishes."""


@dataclass
class Figure:
    name: str
    measured: str
    bound: str
    ok: bool | None
    peer: str = ""


def write_config(path: Path, apps: int, *, secrets: bool) -> list[str]:
    """miniship.toml with ``apps`` apps on both platforms, the first half tagged ``front``;
    with ``secrets``, each app's tokens as the emulators' env file names them."""
    lines = ['timezone = "Asia/Shanghai"', ""]
    keys = []
    for n in range(1, apps + 1):
        key = f"shop{n:04d}"
        keys.append(key)
        tag = "front" if n <= apps // 2 else "back"
        env = f"MINISHIP_{key.upper()}"
        lines += [
            f"[apps.{key}]",
            f'name = "Shop {n}"',
            f'tags = ["{tag}"]',
            f"[apps.{key}.wechat]",
            f'appid = "wx{0xB0000000 + n:016x}"',
            "template_id = 1",
            *([f'refresh_token = "env:{env}_WECHAT_REFRESH_TOKEN"'] if secrets else []),
            f"[apps.{key}.alipay]",
            f'app_id = "2021004{n:09d}"',
            f'template_id = "{TEMPLATE_APPID}"',
            f'review_notes = "{NOTES}"',
            *(
                [
                    f'app_auth_token = "env:{env}_ALIPAY_APP_AUTH_TOKEN"',
                    f'app_refresh_token = "env:{env}_ALIPAY_APP_REFRESH_TOKEN"',
                ]
                if secrets
                else []
            ),
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return keys


@contextlib.contextmanager
def platform_process(config: Path, env_file: Path, state: Path) -> Iterator[str]:
    """The emulators in their own process; yields their base URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.emulated",
            "--config",
            str(config),
            "--env-file",
            str(env_file),
            "--state",
            str(state),
            "--review-seconds",
            str(REVIEW_SECONDS),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("port "):
            raise RuntimeError(f"the emulator process did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def read_env(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        out[key] = json.loads(value)  # written quoted, with JSON's escapes
    return out


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def migrate_first(env: dict[str, str]) -> None:
    """``miniship migrate`` in a process of its own, as a deployment runs it before its
    replicas start (docs/deploy.md): miniship's process then opens a database at the
    newest schema and never loads Alembic (storage/db.py)."""
    bot_py = Path(__file__).parents[1] / "bot.py"
    subprocess.run(
        [sys.executable, str(bot_py), "migrate"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=300,
    )


@contextlib.asynccontextmanager
async def miniship(env: dict[str, str]) -> AsyncIterator[tuple[Runtime, Console, io.StringIO]]:
    with environment(env):  # the platforms' settings are read from it too
        async with open_runtime(Settings()) as rt:
            steady_collector()  # as `console` and `serve` do once started
            out = io.StringIO()
            console = Console(rt.commands(), ME, stdout=out, interactive=False, pictures=Path("."))
            yield rt, console, out


async def run(console: Console, out: io.StringIO, line: str) -> str:
    start = out.tell()
    await console.run_line(line)
    said = out.getvalue()[start:]
    if os.environ.get("BENCH_VERBOSE"):
        print(said[-2000:], file=sys.stderr)
    if "✗" in said or "failed" in said.split("—")[-1]:
        print(said, file=sys.stderr)
    return said


async def control(http: httpx.AsyncClient, base: str, what: str, **body: float) -> None:
    (await http.post(f"{base}/_bench/{what}", json=body)).raise_for_status()


class Collections:
    """Time the garbage collector takes while it is entered (every generation)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.count = 0
        self._started = 0.0

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started
            self.count += 1

    def __enter__(self) -> Collections:
        gc.callbacks.append(self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._note)


ROUNDS = 3
"""Watch rounds measured after the warm-up one; a figure is their median. One round's CPU
per question moved by up to 15 % between runs of the same code on the shared 2-core
development machine (0.86 and 1.01 ms within ten minutes)."""


@dataclass(frozen=True)
class Rounds:
    """The median of :data:`ROUNDS` watch rounds (see :func:`timed_round`)."""

    wall: float
    cpu_per_question: float
    cpu_spread: tuple[float, float]
    collector_per_question: float
    questions: int

    @classmethod
    async def of(cls, rt: Runtime, profile: Path | None = None) -> Rounds:
        if profile:  # a round of its own: the profiler's cost is in no figure
            await timed_round(rt, profile)
        measured = [await timed_round(rt) for _ in range(ROUNDS)]
        per_question = [cpu / questions for _, cpu, questions, _ in measured]
        return cls(
            wall=statistics.median(wall for wall, *_ in measured),
            cpu_per_question=statistics.median(per_question),
            cpu_spread=(min(per_question), max(per_question)),
            collector_per_question=statistics.median(
                collected.seconds / questions for _, _, questions, collected in measured
            ),
            questions=measured[0][2],
        )


async def timed_round(
    rt: Runtime, profile: Path | None = None
) -> tuple[float, float, int, Collections]:
    """(wall seconds, CPU seconds, questions, the collector's part) of one watch round;
    with ``profile``, its cProfile statistics are written there (``python -m pstats``)."""
    questions = len(await rt.store.watched())
    profiler = cProfile.Profile() if profile else None
    with Collections() as collected:
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        await rt.service.refresh_watched()
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(profile)
        took = time.perf_counter() - wall, time.process_time() - cpu
    return *took, questions, collected


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peer_loop(base: str, env: dict[str, str], appids: list[str], refresh: dict[str, str]) -> float:
    """Seconds per question of the wechatpy loop: each app's latest audit status, one
    after another (authorizer tokens fetched first, as a team would cache them)."""
    from wechatpy import WeChatClient
    from wechatpy.component import WeChatComponent
    from wechatpy.session.memorystorage import MemoryStorage

    component = WeChatComponent(
        env["WECHAT_COMPONENT_APPID"],
        env["WECHAT_COMPONENT_SECRET"],
        env["WECHAT_COMPONENT_TOKEN"],
        env["WECHAT_ENCODING_AES_KEY"],
        session=MemoryStorage(),
    )
    component.API_BASE_URL = f"{base}/wechat/cgi-bin"
    component.session.set("component_verify_ticket", env["WECHAT_COMPONENT_VERIFY_TICKET"])
    clients = []
    for appid in appids:
        token = component.refresh_authorizer_token(appid, refresh[appid])
        client = WeChatClient(appid, None, access_token=token["authorizer_access_token"])
        client.wxa.API_BASE_URL = f"{base}/wechat/"
        clients.append(client)
    started = time.perf_counter()
    for client in clients:
        answer = client.wxa.get_latest_audit_status()
        assert "status" in answer, answer
    return (time.perf_counter() - started) / len(clients)


async def in_process_round(
    env: dict[str, str], away: str, state: Path, copy: Path, latency: float
) -> tuple[float, int]:
    """A round with the emulators in miniship's own process, as ``make run`` has them
    (their state on disk, their server on a loop in a thread of its own), restored from
    the other process's state."""
    shutil.copytree(state, copy)
    skew = [0.0]
    emus: list[Emulator] = [
        platforms.emulator_class(name)(
            review_seconds=REVIEW_SECONDS,
            clock=lambda: time.time() + skew[0],
            state_path=copy / f"{name}.json",
        )
        for name in platforms.names()
    ]
    server = BenchPlatforms(emus, skew, 0, thread=True)
    server.latency = latency
    async with server:
        here = {k: v.replace(away, server.base_url("")[:-1]) for k, v in env.items()}
        async with miniship(here) as (rt, _, _):
            await rt.service.refresh_watched()  # tokens
            rounds = await Rounds.of(rt)
    return rounds.wall, rounds.questions


async def timed_publishes(
    rt: Runtime, http: httpx.AsyncClient, base: str, keys: list[str]
) -> list[float]:
    """Seconds between each timed publish's time and its release call at the platform."""
    async with scheduling(rt):
        assert rt.timed is not None
        # time to plan them all, each still PREFLIGHT ahead of its job's waking
        due = utcnow() + 2 * PREFLIGHT + timedelta(seconds=2 + 0.2 * len(keys))
        for key in keys:
            await rt.timed.schedule_publish(ME, key, ["wechat"], "1.0.0", due)
        sent: list[float] = []
        while len(sent) < len(keys) and utcnow() < due + timedelta(seconds=10):
            await asyncio.sleep(0.5)
            answer = await http.get(f"{base}/_bench/calls", params={"path": "wxa/release "})
            sent = [t for t, _ in answer.json() if t >= due.timestamp() - 1]
    if os.environ.get("BENCH_VERBOSE"):
        every = (await http.get(f"{base}/_bench/calls")).json()
        for t, p in every:
            if t >= due.timestamp() - 1:
                print(f"{t - due.timestamp():+.3f} {p}", file=sys.stderr)
    return sorted(t - due.timestamp() for t in sent)


async def bench(args: argparse.Namespace, work: Path) -> list[Figure]:
    config, platform_config = work / "miniship.toml", work / "platforms.toml"
    keys = write_config(config, args.apps, secrets=True)
    write_config(platform_config, args.apps, secrets=False)
    env_file, state = work / "platforms.env", work / "platforms"
    figures: list[Figure] = []
    async with httpx.AsyncClient(timeout=30) as http:
        with platform_process(platform_config, env_file, state) as base:
            given = read_env(env_file)
            env = {
                **given,
                "MINISHIP_CONFIG": str(config),
                "MINISHIP_DATABASE_URL": f"sqlite:///{work / 'miniship.db'}",
                "MINISHIP_EMULATORS": "off",
                "MINISHIP_SECRET_KEY": Fernet.generate_key().decode(),
                "MINISHIP_WATCH_CONCURRENCY": str(args.concurrency),
                "MINISHIP_WATCH_SECONDS": "3600",
                "MINISHIP_FLEET_CONCURRENCY": str(args.concurrency),
                "MINISHIP_FLEET_RATE": "1000",
            }
            latency = args.latency_ms / 1000
            migrate_first(env)
            async with miniship(env) as (rt, console, out):
                step("setup: upload all, submit all (fleet runs, no latency)")
                await run(console, out, 'upload all 1.0.0 "bench" --yes')
                await run(console, out, "submit all 1.0.0 --yes")
                await control(http, base, "latency", ms=args.latency_ms)
                step(f"watch rounds at {args.latency_ms} ms latency")
                await rt.service.refresh_watched()
                rounds = await Rounds.of(rt, args.profile)
                wall, questions, cpu = rounds.wall, rounds.questions, rounds.cpu_per_question
                rss = resident_mb()
                step(f"wechatpy loop over {PEER_SAMPLE} apps")
                sample = keys[:PEER_SAMPLE]
                appids = [str(rt.config.apps[k].platforms["wechat"].appid) for k in sample]  # type: ignore[attr-defined]
                refresh = {
                    a: given[f"MINISHIP_{k.upper()}_WECHAT_REFRESH_TOKEN"]
                    for k, a in zip(sample, appids, strict=True)
                }
                peer = await asyncio.to_thread(peer_loop, base, given, appids, refresh)
            bound = questions * latency / args.concurrency
            figures += [
                Figure(
                    f"watch round, {questions} questions, concurrency {args.concurrency}",
                    f"{wall:.2f} s ({wall / bound:.2f}× the bound)",
                    f"≤ 1.3 × {bound:.2f} s",
                    wall <= 1.3 * bound,
                    f"wechatpy loop: {peer * questions:.1f} s ({peer * questions / wall:.0f}×"
                    " slower; ≥ 25× asked)",
                ),
                Figure(
                    "miniship CPU per status question",
                    f"{cpu * 1000:.2f} ms (rounds: {rounds.cpu_spread[0] * 1000:.2f}–"
                    f"{rounds.cpu_spread[1] * 1000:.2f}; garbage collector: "
                    f"{rounds.collector_per_question * 1000:.2f} ms)",
                    "≤ 1 ms",
                    cpu <= 0.001,
                ),
                Figure(
                    f"resident memory, {args.apps} apps after a round",
                    f"{rss:.0f} MB",
                    "≤ 150 MB",
                    rss <= 150,
                ),
            ]
            await asyncio.sleep(SAVE_DELAY + 0.5)  # the emulators' state is on disk by then
            step("the same round with the emulators in-process")
            inside, _ = await in_process_round(env, base, state, work / "inside", latency)
            figures.append(
                Figure(
                    "round with in-process emulators (as `make run`)",
                    f"{inside:.2f} s ({inside / wall:.2f}× the separate process)",
                    "≤ 1.3 × the separate process",
                    inside <= 1.3 * wall,
                )
            )
            async with miniship(env) as (rt, console, out):
                await control(http, base, "advance", seconds=REVIEW_SECONDS + 60)
                step("every review decided; fleet publish of @front on WeChat")
                await rt.service.refresh_watched()
                Fleets.of(rt.service).rate = args.publish_rate
                front = len([k for k in keys if "front" in rt.config.apps[k].tags])
                started = time.perf_counter()
                said = await run(console, out, "publish @front 1.0.0 wechat --yes")
                took = time.perf_counter() - started
                assert f"{front} / {front} done" in said, said
                limit = front / args.publish_rate
                figures.append(
                    Figure(
                        f"fleet publish, {front} apps at {args.publish_rate:g}/s",
                        f"{took:.1f} s ({took / limit:.2f}× the bound)",
                        f"≤ 1.3 × {limit:.1f} s",
                        took <= 1.3 * limit,
                    )
                )
                timed = [k for k in keys if "back" in rt.config.apps[k].tags][-20:]
                step(f"{len(timed)} timed publishes due at the same moment")
                late = await timed_publishes(rt, http, base, timed)
                figures.append(
                    Figure(
                        f"timed publishes: {len(late)} of {len(timed)} sent; lateness",
                        f"median {statistics.median(late):.2f} s, max {max(late):.2f} s"
                        if late
                        else "none sent",
                        "each ≤ 1 s",
                        len(late) == len(timed) and max(late) <= 1.0,
                    )
                )
    return figures


STARTED = time.perf_counter()


def step(what: str) -> None:
    print(f"· {time.perf_counter() - STARTED:5.0f} s  {what}", file=sys.stderr, flush=True)


def report(figures: list[Figure]) -> str:
    rows = ["| figure | measured | bound | peer |", "|---|---|---|---|"]
    for f in figures:
        mark = "" if f.ok is None else (" ✓" if f.ok else " ✗ over")
        rows.append(f"| {f.name} | {f.measured}{mark} | {f.bound} | {f.peer} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--publish-rate", type=float, default=25.0)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--profile", type=Path, help="write a round's cProfile here (one more round, not measured)"
    )
    args = parser.parse_args()
    fewer_malloc_arenas()  # as `miniship` does at its start
    # what `serve` adds to the console (Slack's SDK and Bolt), so the memory figure is that
    # of a replica connected to Slack, not of the lighter console
    for module in ("handlers.slack", "slack_bolt.adapter.socket_mode.async_handler"):
        importlib.import_module(module)

    work = Path(tempfile.mkdtemp(prefix="miniship-bench-"))
    try:
        figures = asyncio.run(bench(args, work))
    finally:
        if args.keep:
            print(f"work folder: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(report(figures))
    return 0 if all(f.ok is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
