"""Two miniship replicas on one PostgreSQL database: one leads (runs the scheduler); killed
with ``kill -9`` before a timed release falls due, the other takes over and publishes it,
once.

Real OS processes, as people run them: the emulators served alone (``bot.py emulators``),
a console that plans ``publish demo 1.0.0 in …s`` and exits, then two consoles started
together. Whichever leads is killed; the survivor must say it leads now and publish. The
``timed_action`` and release claims would let only one publish even if both scheduled.
No traceback, while racing or while stopping.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest
from sqlmodel import select

from storage import ReleaseState, Store, TimedState, make_engine
from storage.models import Event, ReleaseTarget
from tests.test_bot import REPO, clean_env, free_port, read_env_file, running_console

# real processes, timed by the wall clock: one after another on one xdist worker
pytestmark = pytest.mark.xdist_group("processes")

PLATFORMS = ("wechat", "alipay")
DUE_IN = 8  # seconds from planning to the due time: both schedulers are up before it
RACERS = 2
RACER_WAIT = 8  # the surviving console runs this long


def _wait_for(path: Path, text: str, proc: subprocess.Popen[str], timeout: float) -> float:
    """Wait until ``text`` appears in ``path`` (written by ``proc``); when it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return time.time()
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    raise AssertionError(f"{text!r} never appeared in {path.name}:\n{path.read_text()}")


def _without_watch(log: str) -> str:
    return "\n".join(line for line in log.splitlines() if '"watch (' not in line)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


@pytest.mark.postgresql_only  # replicas share PostgreSQL; SQLite's CAS: tests/storage
async def test_two_schedulers_publish_a_timed_release_once(
    tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    env_file = tmp_path / "emulators.env"
    served = tmp_path / "emulators.out"
    files: list[IO[str]] = [served.open("w")]
    emulators = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "bot.py"),
            "emulators",
            "--port",
            str(port),
            "--env-file",
            str(env_file),
        ],
        env=clean_env(
            MINISHIP_CONFIG=str(REPO / "miniship.toml"), MINISHIP_EMULATOR_REVIEW_SECONDS="1"
        ),
        cwd=tmp_path,
        stdout=files[0],
        stderr=subprocess.STDOUT,
        text=True,
    )
    racers: list[subprocess.Popen[str]] = []
    try:
        _wait_for(served, "emulators serving", emulators, timeout=30)
        assert env_file.exists()

        # the app file with its secret references switched on, as the README says
        toml = (REPO / "miniship.toml").read_text().replace("# refresh_token", "refresh_token")
        toml = toml.replace("# app_auth_token", "app_auth_token")
        toml = toml.replace("# app_refresh_token", "app_refresh_token")
        (tmp_path / "mine.toml").write_text(toml)
        env = clean_env(
            **read_env_file(env_file),
            MINISHIP_EMULATORS="off",
            MINISHIP_CONFIG="mine.toml",
            MINISHIP_WATCH_SECONDS="0.5",
            MINISHIP_LEADER_SECONDS="0.5",
            MINISHIP_LOG_LEVEL="INFO",
            DATABASE_URL=database_url,
        )
        console = [sys.executable, str(REPO / "bot.py"), "console"]

        # 1. upload, submit, see the reviews approved, plan the publish; then exit at once
        # (its reminder, due at once, may be running: stopping waits for it)
        script = (
            "upload demo 1.0.0 notes\nsubmit demo 1.0.0\nwait 3\nstatus demo\n"
            f"publish demo 1.0.0 in {DUE_IN}s --yes\n"
        )
        setup = subprocess.run(
            console, input=script, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60
        )
        assert setup.returncode == 0, setup.stderr
        assert "Traceback" not in setup.stderr, setup.stderr
        assert "Timed release #1" in setup.stdout, setup.stdout

        engine = make_engine(database_url)
        try:
            store = Store(engine)
            planned = await store.timed(1)
            assert planned is not None and planned.state == TimedState.PENDING, planned
            release = await store.release("demo", "1.0.0")
            assert release is not None and release.id is not None
            for p in PLATFORMS:
                target = await store.target(release.id, p)
                assert target is not None and target.state == ReleaseState.APPROVED, setup.stdout
        finally:
            await engine.dispose()
        due = planned.due_at.timestamp()
        assert due > time.time(), "the plan fell due before the racing schedulers started"

        # 2. two consoles at once, both scheduling across the due time
        outs = [tmp_path / f"racer{i}.out" for i in range(RACERS)]
        errs = [tmp_path / f"racer{i}.err" for i in range(RACERS)]
        for out, err in zip(outs, errs, strict=True):
            files += [out.open("w"), err.open("w")]
            racers.append(
                subprocess.Popen(
                    console,
                    stdin=subprocess.PIPE,
                    stdout=files[-2],
                    stderr=files[-1],
                    text=True,
                    cwd=tmp_path,
                    env=env,
                )
            )
        for racer in racers:
            assert racer.stdin is not None
            racer.stdin.write(f"wait {RACER_WAIT}\n")
            racer.stdin.close()
        # the console echoes the script's first line once its scheduler has started
        started = [
            _wait_for(out, f"> wait {RACER_WAIT}", racer, timeout=30)
            for out, racer in zip(outs, racers, strict=True)
        ]
        assert max(started) < due, (
            f"a scheduler started {max(started) - due:.1f} s after the due time "
            f"{datetime.fromtimestamp(due, UTC)}: raise DUE_IN"
        )
        # 3. the leader dies at once (no goodbye: kill -9); the other takes over
        leaders = [i for i, err in enumerate(errs) if "this replica leads" in err.read_text()]
        assert len(leaders) == 1, [e.read_text() for e in errs]
        (dead,) = leaders
        racers[dead].kill()
        racers[dead].wait(timeout=10)
        survivor = 1 - dead
        taken = _wait_for(errs[survivor], "this replica leads", racers[survivor], timeout=10)
        assert taken < due, "the takeover came after the due time"
        racers[survivor].wait(timeout=RACER_WAIT + 30)
        stdouts = [out.read_text() for out in outs]
        stderrs = [err.read_text() for err in errs]
        everything = "\n".join(  # for failure messages, without the watcher's every round
            f"--- racer {i} ---\n{o}\n{_without_watch(e)}"
            for i, (o, e) in enumerate(zip(stdouts, stderrs, strict=True))
        )
        assert racers[survivor].returncode == 0, everything
        for log in stderrs:
            assert "Traceback" not in log and "JobLookupError" not in log, everything

        # 4. the survivor published; the one killed had not
        assert "🚀 Timed release #1 published" in stdouts[survivor], everything
        assert "Timed release #1" not in stdouts[dead], everything

        engine = make_engine(database_url)
        try:
            store = Store(engine)
            async with store.session() as s:
                events = list((await s.exec(select(Event).where(Event.action == "publish"))).all())
                targets = list((await s.exec(select(ReleaseTarget))).all())
            action = await store.timed(1)
        finally:
            await engine.dispose()
        summary = [(e.platform, e.outcome, e.actor, e.message) for e in events]
        for p in PLATFORMS:
            ok = [e for e in events if e.platform == p and e.outcome == "ok"]
            assert len(ok) == 1, (summary, everything)
        assert not [e for e in events if e.outcome == "failed"], (summary, everything)
        assert action is not None and action.state == TimedState.DONE, (action, everything)
        assert {t.platform: t.state for t in targets} == {
            p: ReleaseState.RELEASED for p in PLATFORMS
        }, everything
    finally:
        for racer in racers:
            _stop(racer)
        emulators.send_signal(signal.SIGINT)
        try:
            emulators.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _stop(emulators)
        for f in files:
            f.close()


@pytest.mark.postgresql_only
def test_a_second_process_with_in_process_emulators_is_refused(
    tmp_path: Path, database_url: str
) -> None:
    """In-process emulators are a platform of one process's own: a second such process on
    the same database (which would see another platform) is refused at start."""
    env = clean_env(MINISHIP_CONFIG=str(REPO / "miniship.toml"), DATABASE_URL=database_url)
    console = [sys.executable, str(REPO / "bot.py"), "console"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, _ = running_console(tmp_path / "a", env)
    try:
        second = subprocess.run(
            console,
            input="status\n",
            capture_output=True,
            text=True,
            cwd=tmp_path / "b",
            env=env,
            timeout=60,
        )
        assert second.returncode == 2, second.stdout + second.stderr
        assert "another miniship with in-process emulators already uses" in second.stderr
        first.communicate("", timeout=60)
        assert first.returncode == 0
    finally:
        _stop(first)
