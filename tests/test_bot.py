"""bot.py as people run it: the emulators served alone, and a separate miniship using them."""

from __future__ import annotations

import os
import platform as host
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot import _write_env
from storage import Store, Vault, make_engine, migrate

# real processes, timed by the wall clock: one after another on one xdist worker
pytestmark = pytest.mark.xdist_group("processes")

REPO = Path(__file__).parents[1]


TEST_SECRET_KEY = "dGVzdC1vbmx5LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24="


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WECHAT_", "ALIPAY_", "MINISHIP_", "DATABASE_URL", "SLACK_"))
        and k != "PORT"
    }
    # a fixed test key: miniship refuses to keep real platforms' credentials without one
    env["MINISHIP_SECRET_KEY"] = TEST_SECRET_KEY
    env.update(extra)
    return env


def read_env_file(path: Path) -> dict[str, str]:
    """What `set -a; . file` would set, for the simple KEY="value" lines we write."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        out[key] = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_a_separate_miniship_releases_through_the_standalone_emulators(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(REPO / "bot.py"), "emulators", "--port", str(port)],
        env=clean_env(
            MINISHIP_CONFIG=str(REPO / "miniship.toml"), MINISHIP_EMULATOR_REVIEW_SECONDS="1"
        ),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        env_file = tmp_path / "var" / "emulators.env"
        for _ in range(300):
            if env_file.exists() or server.poll() is not None:
                break
            time.sleep(0.05)
        assert env_file.exists(), server.communicate(timeout=5)
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"
        issued = read_env_file(env_file)
        assert issued["WECHAT_API_BASE"] == f"http://127.0.0.1:{port}/wechat"
        assert all("\n" not in v for v in issued.values())

        # the app file with its secret references switched on, as the README says
        toml = (REPO / "miniship.toml").read_text().replace("# refresh_token", "refresh_token")
        toml = toml.replace("# app_auth_token", "app_auth_token")
        toml = toml.replace("# app_refresh_token", "app_refresh_token")
        (tmp_path / "mine.toml").write_text(toml)
        script = "upload demo 1.0.0 through the standalone emulators\nsubmit demo 1.0.0\n"
        script += "wait 1.5\nstatus demo\npublish demo 1.0.0 --yes\n"
        done = subprocess.run(
            [sys.executable, str(REPO / "bot.py"), "console"],
            input=script,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            env=clean_env(
                **issued,
                MINISHIP_EMULATORS="off",
                MINISHIP_CONFIG="mine.toml",
                DATABASE_URL="sqlite:///separate.db",
            ),
        )
        assert done.returncode == 0, done.stderr
        assert "WeChat (live), Alipay (live)" in done.stdout
        assert done.stdout.count("✓") == 6, done.stdout  # upload, submit, publish × 2
        assert "published 1.0.0" in done.stdout
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=10)


def test_off_without_credentials_says_what_is_missing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "console"],
        input="",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env=clean_env(MINISHIP_EMULATORS="off", MINISHIP_CONFIG=str(REPO / "miniship.toml")),
    )
    assert done.returncode == 2
    assert "has no credentials and MINISHIP_EMULATORS=off" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_apps_file_is_explained(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[apps.demo.wechat]\nappid = "wx3a5f9c2e1b7d4f60"\ntemplate_id = 1\nsecret = "x"\n'
    )
    done = subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "console"],
        input="",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env=clean_env(MINISHIP_CONFIG=str(bad)),
    )
    assert done.returncode == 2
    assert "[apps.demo.wechat]" in done.stderr and "secret" in done.stderr


def test_a_bad_secret_key_is_explained(tmp_path: Path) -> None:
    """The vault's key setting is reported like any other setting, without its value."""
    done = subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "rotate-key"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env=clean_env(
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'miniship.db'}",
            MINISHIP_SECRET_KEY="not-a-key",
        ),
    )
    assert done.returncode == 2
    assert "miniship: MINISHIP_SECRET_KEY: the key is not a Fernet key" in done.stderr
    assert "not-a-key" not in done.stderr and "Traceback" not in done.stderr


def test_write_env_quotes_values(tmp_path: Path) -> None:
    path = tmp_path / "x.env"
    _write_env(path, {"A": 'say "hi"', "B": "back\\slash"})
    assert read_env_file(path) == {"A": 'say "hi"', "B": "back\\slash"}


async def test_serve_in_http_mode_answers_slack(tmp_path: Path) -> None:
    """`bot.py serve` with a bot token and signing secret: a signed /ship works end to end."""
    import asyncio

    import httpx

    from tests.slack import requests as slack_requests
    from tests.slack.fake_slack import FakeSlack

    port = free_port()
    async with FakeSlack() as slack:
        server = subprocess.Popen(
            [sys.executable, str(REPO / "bot.py"), "serve"],
            env=clean_env(
                SLACK_BOT_TOKEN="xoxb-test",
                SLACK_SIGNING_SECRET="s3cret",
                SLACK_API_URL=slack.base_url,
                PORT=str(port),
                MINISHIP_CONFIG=str(REPO / "miniship.toml"),
                MINISHIP_LOG_LEVEL="INFO",
            ),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}/slack/events"
            async with httpx.AsyncClient() as http:
                for _ in range(200):
                    try:
                        body, headers = slack_requests.slash_command(
                            "s3cret",
                            "upload demo 1.0.0 from a real serve",
                            channel="C0TYPED",
                            response_url=slack.response_url("serve"),
                        )
                        answer = await http.post(url, content=body, headers=headers)
                        break
                    except httpx.ConnectError:
                        assert server.poll() is None, server.communicate(timeout=5)
                        await asyncio.sleep(0.05)
                assert answer.status_code == 200
                bad = await http.post(
                    url, content=body, headers={**headers, "X-Slack-Signature": "v0=00"}
                )
                assert bad.status_code == 401
                await slack.wait_for("chat.postMessage", count=2, timeout=20)  # card + thread
                # the probes and the metrics, on Slack's port
                base = f"http://127.0.0.1:{port}"
                assert (await http.get(f"{base}/healthz")).json() == {"ok": True}
                ready = await http.get(f"{base}/readyz")
                assert ready.status_code == 200, ready.text
                said = ready.json()
                assert said["ready"] and said["leader"] and said["slack"] == "ok", said
                assert said["database"] == "ok" and "newest" in said["migrations"], said
                metrics = (await http.get(f"{base}/metrics")).text
                assert 'miniship_commands_total{command="upload",outcome="ok"} 1.0' in metrics
                assert 'miniship_platform_calls_total{code="0",operation="POST /wxa/commit",' in (
                    metrics
                ), metrics
                assert "miniship_platform_call_seconds_bucket" in metrics
                assert 'miniship_releases{platform="wechat",state="uploaded"} 1.0' in metrics
                assert "miniship_leader 1.0" in metrics
                assert "miniship_timed_releases_pending 0.0" in metrics
            card = slack.calls("chat.postMessage")[0]
            assert card.params["channel"] == "C0TYPED"  # demo names no channel: where typed
        finally:
            server.send_signal(signal.SIGINT)
            _, err = server.communicate(timeout=20)
        assert "xoxb-test" not in err and "s3cret" not in err  # secrets never logged
        assert "emulators" in err  # says the platforms are emulated
        # the emulators push once the port is open (before, the first pushes failed)
        assert not re.search(r"push \S+ failed", err), err


def test_serve_needs_a_bot_token(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "serve"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env=clean_env(MINISHIP_CONFIG=str(REPO / "miniship.toml")),
    )
    assert done.returncode == 2 and "SLACK_BOT_TOKEN is not set" in done.stderr


async def test_serve_in_socket_mode_answers_slack(tmp_path: Path) -> None:
    """`bot.py serve` with SLACK_APP_TOKEN: a WebSocket to (fake) Slack, no signing secret."""
    from tests.slack.fake_slack import FakeSlack

    async with FakeSlack() as slack:
        server = subprocess.Popen(
            [sys.executable, str(REPO / "bot.py"), "serve"],
            env=clean_env(
                SLACK_BOT_TOKEN="xoxb-test",
                SLACK_APP_TOKEN="xapp-test",
                SLACK_API_URL=slack.base_url,
                MINISHIP_CONFIG=str(REPO / "miniship.toml"),
            ),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            await slack.socket_connected(timeout=30)
            command = {
                "command": "/ship",
                "text": "upload demo 1.0.0 over Socket Mode",
                "user_id": "U1",
                "channel_id": "C0TYPED",
                "team_id": "T0001",
                "trigger_id": "1.2.3",
                "response_url": slack.response_url("socket"),
            }
            ack = await slack.socket_send("slash_commands", command)
            assert ack["envelope_id"]
            await slack.wait_for("chat.postMessage", count=2, timeout=20)  # card + thread
            mention = {
                "type": "event_callback",
                "team_id": "T0001",
                "api_app_id": "A0001",
                "event_id": "EvSocket1",
                "event_time": 1,
                "event": {
                    "type": "app_mention",
                    "user": "U1",
                    "channel": "C0TYPED",
                    "text": "<@U0BOT> history demo",
                    "ts": "1732430000.000200",
                },
            }
            await slack.socket_send("events_api", mention)
            await slack.socket_send("events_api", mention, retry_attempt=1, retry_reason="timeout")
            await slack.wait_for("chat.postEphemeral", timeout=20)
            import asyncio

            await asyncio.sleep(0.5)
            assert len(slack.calls("chat.postEphemeral")) == 1  # the retry did nothing
        finally:
            server.send_signal(signal.SIGINT)
            _, err = server.communicate(timeout=20)
        assert "Socket Mode" in err and "xapp-test" not in err and "xoxb-test" not in err


async def test_rotate_key_re_encrypts_kept_credentials(tmp_path: Path) -> None:
    old, new, stranger = (Fernet.generate_key().decode() for _ in range(3))
    url = f"sqlite+aiosqlite:///{tmp_path / 'miniship.db'}"
    engine = make_engine(url)
    await migrate(engine)
    await Vault(Store(engine), [old]).save("wechat", "refresh_token:wx1", SecretStr("s3cret"))

    def rotate(keys: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO / "bot.py"), "rotate-key"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            env=clean_env(DATABASE_URL=url, MINISHIP_SECRET_KEY=keys),
        )

    refused = rotate(stranger)  # no key opens the row: nothing is touched
    assert refused.returncode == 1 and "refresh_token:wx1" in refused.stderr
    assert "Traceback" not in refused.stderr
    done = rotate(f"{new},{old}")
    assert done.returncode == 0, done.stderr
    assert "re-encrypted 1 stored credential" in done.stdout and "drop the others" in done.stdout
    assert "s3cret" not in done.stdout + done.stderr + refused.stdout + refused.stderr
    value = await Vault(Store(engine), [new]).load("wechat", "refresh_token:wx1")
    assert value is not None and value.get_secret_value() == "s3cret"
    await engine.dispose()


def console_script(
    cwd: Path, env: dict[str, str], script: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``bot.py console`` run over ``script`` to its end."""
    return subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "console"],
        input=script,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def running_console(cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """A console reading commands from a pipe, started (its banner read); and the banner."""
    console = subprocess.Popen(
        [sys.executable, str(REPO / "bot.py"), "console"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
    )
    assert console.stdin is not None and console.stdout is not None
    banner = ""
    while "platforms:" not in banner:
        line = console.stdout.readline()
        assert line or console.poll() is None, console.communicate()
        banner += line
    return console, banner


def test_sigterm_during_a_publish_lets_it_finish(tmp_path: Path) -> None:
    """SIGTERM (systemd, Docker, Kubernetes) while a publish waits for the platform: no
    new command is taken, the publish completes and is recorded, and the exit code is 0."""
    import re

    import httpx

    env = clean_env(
        MINISHIP_CONFIG=str(REPO / "miniship.toml"),
        MINISHIP_EMULATOR_REVIEW_SECONDS="1",
    )
    env.pop("MINISHIP_SECRET_KEY")  # emulated platforms only: the console makes its own
    script = "upload demo wechat 1.0.0 first --yes\nsubmit demo wechat 1.0.0 --yes\nwait 2\n"
    done = console_script(tmp_path, env, script, 120)
    assert "in review → approved" in done.stdout, done.stdout + done.stderr
    console, seen = running_console(tmp_path, env)
    assert console.stdin is not None and console.stdout is not None
    try:
        found = re.search(r"emulated on (http://127\.0\.0\.1:\d+)/wechat", seen)
        assert found, seen
        slow = {"api": "/wxa/release", "fault": "slow", "seconds": 3}
        httpx.post(f"{found.group(1)}/wechat/_emulator/inject", json=slow, timeout=10)
        console.stdin.write("publish demo wechat 1.0.0 --yes\n")
        console.stdin.flush()
        while "> publish" not in seen:
            seen += console.stdout.readline()
        time.sleep(1.0)  # the release call is on its way and held by the platform
        console.send_signal(signal.SIGTERM)
        out, err = console.communicate(timeout=60)
    finally:
        if console.poll() is None:
            console.kill()
    assert console.returncode == 0, err
    assert "SIGTERM: stopping" in err and "stopped cleanly" in err, err
    # the publish, and perhaps the watcher's round waiting for the app the publish holds
    assert re.search(r"waiting up to 25 s for [12] running task", err), err
    assert "✓ WeChat  published 1.0.0" in out, out
    history = console_script(tmp_path, env, "history demo\n", 120)
    assert "publish 1.0.0 WeChat: ok — published 1.0.0: it is live now" in history.stdout


def test_a_second_process_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    """SQLite is one process: a second miniship on the same file is refused at start,
    saying why and what to do; the first carries on."""
    env = clean_env(MINISHIP_CONFIG=str(REPO / "miniship.toml"))
    env.pop("MINISHIP_SECRET_KEY")
    first, _ = running_console(tmp_path, env)
    try:
        second = console_script(tmp_path, env, "status\n", 60)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "another miniship process already uses" in second.stderr
        assert "use PostgreSQL for several replicas" in second.stderr
        out, _ = first.communicate("status demo\n", timeout=60)
        assert first.returncode == 0 and "demo — Demo Shop" in out
    finally:
        if first.poll() is None:
            first.kill()


def test_the_miniship_command_migrates_a_database(tmp_path: Path) -> None:
    """`pip install .` gives a `miniship` command (here: the test environment's own);
    `miniship migrate` brings a database to the newest schema and says so."""
    command = Path(sys.executable).with_name("miniship")
    assert command.exists(), "pip install -e . should have made the miniship command"
    env = clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'm.db'}")
    first = subprocess.run([command, "migrate"], capture_output=True, text=True, env=env)
    assert first.returncode == 0 and "migrated from empty to" in first.stdout, first.stderr
    again = subprocess.run([command, "migrate"], capture_output=True, text=True, env=env)
    assert again.returncode == 0 and "is at the newest schema" in again.stdout


def test_a_database_that_does_not_answer_is_said_in_a_line(tmp_path: Path) -> None:
    """`miniship migrate` (or any command) before PostgreSQL is up: one line saying so,
    the password masked, exit code 2 — not a traceback."""
    env = clean_env(
        MINISHIP_CONFIG=str(REPO / "miniship.toml"),
        DATABASE_URL=f"postgresql://miniship:s3cret@127.0.0.1:{free_port()}/miniship",
    )
    for command in ("migrate", "console"):
        said = subprocess.run(
            [sys.executable, str(REPO / "bot.py"), command],
            input="status\n",
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
        )
        assert said.returncode == 2, said.stderr
        assert "Traceback" not in said.stderr and "s3cret" not in said.stderr, said.stderr
        assert "miniship: the database postgresql://miniship:***@127.0.0.1:" in said.stderr
        assert "does not answer" in said.stderr


_ARENAS = """
import ctypes, sys, tempfile, threading
import bot
if sys.argv[1] == "capped":
    bot.fewer_malloc_arenas()
start = threading.Barrier(6)
def work():
    start.wait()
    keep = [bytearray(4096) for _ in range(2000)]  # beyond pymalloc: glibc's malloc
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile() as f:
    out = ctypes.c_void_p(libc.fopen(f.name.encode(), b"w"))
    libc.malloc_info(0, out)
    libc.fclose(out)
    print(open(f.name).read().count("<heap nr="))
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or host.libc_ver()[0] != "glibc",
    reason="malloc arenas are glibc's",
)
def test_threads_share_two_malloc_arenas() -> None:
    """Six threads allocating at once get arenas of their own unless miniship caps them
    at start (what stays resident in their free room: bench/README.md)."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}

    def heaps(mode: str) -> int:
        done = subprocess.run(
            [sys.executable, "-c", _ARENAS, mode],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=Path(__file__).parents[1],
        )
        assert done.returncode == 0, done.stderr
        return int(done.stdout)

    assert heaps("plain") > 2
    assert heaps("capped") <= 2
