"""Three miniship replicas on one PostgreSQL database, 200 timed releases due within two
minutes, and the leader killed (``kill -9``) twice while they fall due: every release is
published exactly once — counted at the platform — and none is missed; every replica
keeps answering commands while the leader changes.

Real OS processes, as an orchestrator runs them: the emulators in a process of their own
(``bench.emulated``, which logs every request it receives), a console that uploads,
submits and plans, then three consoles started together. Each replica killed is started
again at once (as systemd or Kubernetes would). Timed releases are planned from the
replicas too while the leader changes: a follower only stores its plan, and whoever leads
adopts it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bench.__main__ import write_config
from handlers.timed import LATE_ENOUGH_TO_SAY
from storage import Store, TimedState, make_engine
from storage.models import Event, TimedAction
from tests.test_bot import REPO, clean_env, read_env_file

pytestmark = [pytest.mark.postgresql_only, pytest.mark.xdist_group("replicas")]

APPS = 200
LIVE = 3  # of them planned from the replicas while the leader changes, one after each kill…
FIRST_DUE = 25  # seconds after the setup: the replicas are up before the first is due
SPREAD = 60  # … and the setup's plans fall due over this many seconds
LEADER_SECONDS = 2  # how often a replica asks who leads
STOP_SECONDS = 5  # with it, how long a new leader waits before taking up a publish cut off
LATE_TO_SAY = LATE_ENOUGH_TO_SAY.total_seconds()
ANSWER = {"shop0001": "shop0001 — Shop 1 (times in", "shop0002": "shop0002 — Shop 2 (times in"}
TAKEOVER_BOUND = 15  # seconds from a leader's death to another replica leading (the default)


@dataclass
class Replica:
    """One replica slot; each start of it is an incarnation with files of its own."""

    slot: int
    tmp: Path
    env: dict[str, str]
    starts: int = 0
    proc: subprocess.Popen[str] | None = None
    out: Path | None = None
    err: Path | None = None
    sent: list[str] = field(default_factory=list)  # lines sent to this incarnation
    files: list[IO[str]] = field(default_factory=list)
    ended: list[tuple[Path, Path, int | None, list[str]]] = field(default_factory=list)

    def start(self) -> None:
        self.starts += 1
        name = f"replica{self.slot}.{self.starts}"
        self.out, self.err = self.tmp / f"{name}.out", self.tmp / f"{name}.err"
        self.files += [self.out.open("w"), self.err.open("w")]
        self.sent = []
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "bot.py"), "console"],
            stdin=subprocess.PIPE,
            stdout=self.files[-2],
            stderr=self.files[-1],
            text=True,
            cwd=self.tmp,
            env=self.env,
        )

    def send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        self.sent.append(line)

    def said(self) -> str:
        assert self.out is not None
        return self.out.read_text()

    def logged(self) -> str:
        assert self.err is not None
        return self.err.read_text()

    def leads(self) -> bool:
        return self.proc is not None and "this replica leads" in self.logged()

    def kill(self) -> None:
        assert self.proc is not None and self.out is not None and self.err is not None
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.ended.append((self.out, self.err, self.proc.returncode, self.sent))

    def stop(self) -> int:
        """SIGTERM, as an orchestrator stops it; the exit code."""
        assert self.proc is not None and self.out is not None and self.err is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.ended.append((self.out, self.err, code, self.sent))
        return code

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for f in self.files:
            f.close()


def _until(what: str, check: object, timeout: float) -> float:
    """Poll ``check()`` until true; when it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return time.time()
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout:g} s: {what}")


async def _timed(database_url: str) -> list[TimedAction]:
    engine = make_engine(database_url)
    try:
        async with Store(engine).session() as s:
            return list((await s.exec(select(TimedAction))).all())
    finally:
        await engine.dispose()


async def _due(database_url: str, due: dict[int | None, float]) -> None:
    engine = make_engine(database_url)
    try:
        async with Store(engine).session() as s:
            for action_id, at in due.items():
                await s.exec(
                    update(TimedAction)
                    .where(col(TimedAction.id) == action_id)
                    .values(due_at=datetime.fromtimestamp(at, UTC))
                )
            await s.commit()
    finally:
        await engine.dispose()


async def _events(database_url: str) -> list[Event]:
    engine = make_engine(database_url)
    try:
        async with Store(engine).session() as s:
            return list((await s.exec(select(Event))).all())
    finally:
        await engine.dispose()


async def test_three_replicas_publish_every_timed_release_once_through_two_leader_deaths(
    tmp_path: Path, database_url: str
) -> None:
    keys = write_config(tmp_path / "miniship.toml", APPS, secrets=True)
    write_config(tmp_path / "platforms.toml", APPS, secrets=False)
    env_file = tmp_path / "platforms.env"
    platform_log = (tmp_path / "platforms.log").open("w")  # a killed client's requests end there
    platform = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.emulated",
            "--config",
            str(tmp_path / "platforms.toml"),
            "--env-file",
            str(env_file),
            "--state",
            str(tmp_path / "platforms"),
            "--review-seconds",
            "1",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=platform_log,
        text=True,
    )
    replicas: list[Replica] = []
    try:
        assert platform.stdout is not None
        base = f"http://127.0.0.1:{int(platform.stdout.readline().split()[1])}"
        env = clean_env(
            **read_env_file(env_file),
            MINISHIP_EMULATORS="off",
            MINISHIP_CONFIG="miniship.toml",
            DATABASE_URL=database_url,
            MINISHIP_WATCH_SECONDS="1",
            MINISHIP_LEADER_SECONDS=str(LEADER_SECONDS),
            MINISHIP_STOP_SECONDS=str(STOP_SECONDS),
            MINISHIP_FLEET_RATE="1000",
            MINISHIP_FLEET_CONCURRENCY="32",
            MINISHIP_LOG_LEVEL="INFO",
        )

        # 1. one console uploads and submits every app on WeChat, sees them approved and
        # plans the first 197 timed releases; then exits
        planned = keys[: APPS - LIVE]
        script = [
            'upload all wechat 1.0.0 "replicas" --yes',
            "submit all wechat 1.0.0 --yes",
            "wait 4",
            *(f"publish {key} wechat 1.0.0 in 1h --yes" for key in planned),
        ]
        setup = subprocess.run(
            [sys.executable, str(REPO / "bot.py"), "console"],
            input="\n".join(script) + "\n",
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=300,
        )
        assert setup.returncode == 0, setup.stderr[-3000:]
        assert "Traceback" not in setup.stderr, setup.stderr[-3000:]
        assert setup.stdout.count("Timed release #") >= len(planned), setup.stdout[-3000:]
        actions = await _timed(database_url)
        assert len(actions) == len(planned)
        assert all(a.state == TimedState.PENDING for a in actions)
        # as if planned for the coming minute and a half, however long the setup took (a
        # busy machine): the next leader plans each from this table
        first_due = time.time() + FIRST_DUE
        await _due(
            database_url,
            {a.id: first_due + i * SPREAD / len(actions) for i, a in enumerate(actions)},
        )

        # 2. three replicas at once
        replicas = [Replica(slot, tmp_path, env) for slot in range(3)]
        for replica in replicas:
            replica.start()
            replica.send("status shop0001")
        for replica in replicas:
            _until("a replica answers", lambda r=replica: ANSWER["shop0001"] in r.said(), 60)
        assert time.time() < first_due, "the replicas started after the first release was due"

        # 3. the leader is killed twice while releases fall due; each time another
        # replica must lead within the bound, a new replica takes the dead one's place,
        # a follower plans one more timed release, and every replica is asked something
        live_keys = iter(keys[APPS - LIVE :])
        takeovers = []
        for kill_at in (first_due + 12, first_due + 35):
            time.sleep(max(0.0, kill_at - time.time()))
            (leader,) = [r for r in replicas if r.leads()]
            leader.kill()
            died = time.time()
            took = _until(
                "another replica leads",
                lambda dead=leader: any(r.leads() for r in replicas if r is not dead),
                TAKEOVER_BOUND,
            )
            takeovers.append((died, took))
            leader.start()
            follower = next(r for r in replicas if not r.leads())
            follower.send(f"publish {next(live_keys)} wechat 1.0.0 in 8s --yes")
            for replica in replicas:
                replica.send("status shop0002")
        last = next(live_keys)
        (leader,) = [r for r in replicas if r.leads()]
        next(r for r in replicas if r is not leader).send(
            f"publish {last} wechat 1.0.0 in 5s --yes"
        )

        # 4. every plan settles
        async def settled() -> list[TimedAction]:
            return await _timed(database_url)

        deadline = time.monotonic() + SPREAD + 90
        while True:
            actions = await settled()
            waiting = [a for a in actions if a.state in (TimedState.PENDING, TimedState.RUNNING)]
            if len(actions) == APPS and not waiting:
                break
            assert time.monotonic() < deadline, [(a.id, a.app_key, a.state) for a in waiting]
            time.sleep(0.5)
        async with httpx.AsyncClient() as http:
            asked = await http.get(f"{base}/_bench/calls", params={"path": "/wxa/release"})
            calls = asked.json()
        codes = [replica.stop() for replica in replicas]
    finally:
        for replica in replicas:
            replica.close()
        platform.send_signal(signal.SIGTERM)
        platform.wait(timeout=30)
        platform_log.close()

    logs = {
        f"{out.name} (exit {code})": (out.read_text(), err.read_text(), sent)
        for replica in replicas
        for out, err, code, sent in replica.ended
    }
    everything = "\n".join(
        f"--- {name} ---\n{o[-2000:]}\n{e[-2000:]}" for name, (o, e, _) in logs.items()
    )
    assert codes == [0, 0, 0], everything
    for said, logged, _ in logs.values():
        assert "Traceback" not in said + logged, everything
    assert all(took - died <= TAKEOVER_BOUND for died, took in takeovers), takeovers

    # once each, none missed: at the platform, in miniship's history, in the plans
    releases = [path for _, path in calls if path.split(" ")[0].endswith("/wxa/release")]
    assert len(releases) == APPS, (len(releases), calls[:5], everything)
    programs = json.loads((tmp_path / "platforms" / "wechat.json").read_text())["programs"]
    assert len(programs) == APPS
    for program in programs:
        assert program["release"]["version"] == "1.0.0", program["appid"]
        assert len(program["history"]) == 1, program["history"]
    assert all(a.state == TimedState.DONE for a in actions), [
        (a.app_key, a.state, a.outcome) for a in actions if a.state != TimedState.DONE
    ]
    # in history: published once by the leader of the moment (a leader killed after the
    # platform's answer may have recorded it or not), and where the leader was killed
    # before its plan was settled, the next one's confirmation from the platform
    events = [e for e in await _events(database_url) if e.app_key is not None]
    published = Counter(e.app_key for e in events if e.action == "publish" and e.outcome == "ok")
    assert max(published.values()) == 1, published.most_common(3)
    confirmed = {
        e.app_key
        for e in events
        if e.action == "schedule" and e.outcome == "ok" and "has it live" in e.message
    }
    assert sorted(map(str, published.keys() | confirmed)) == sorted(keys), everything
    # those due while no replica led — after a leader died, well before the next one
    # started its scheduler — went out late, saying how late
    for died, took in takeovers:
        for action in actions:
            if died < action.due_at.timestamp() <= took - LATE_TO_SAY - 1:
                said = action.outcome
                assert " late (it was due at " in said or "after its time" in said, said

    # each replica answered what it was asked, also while the leader changed
    for name, (said, _, sent) in logs.items():
        assert sent, name
        for line in sent:
            word, key = line.split()[:2]
            answer = ANSWER[key] if word == "status" else f": {key} 1.0.0 will be published on"
            assert f"> {line}" in said and answer in said, (name, line, said[-2000:])
