"""``miniship token …``: the token command from a shell, beside a serving miniship."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from storage import Store, make_engine
from tests.test_bot import REPO, clean_env

DEMO = REPO / "tests" / "handlers" / "demo.toml"


async def test_tokens_are_made_listed_and_revoked_from_the_shell(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'miniship.db'}"

    def miniship(*words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO / "bot.py"), "token", *words],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            stdin=subprocess.DEVNULL,
            env=clean_env(DATABASE_URL=url, MINISHIP_CONFIG=str(DEMO)),
        )

    made = miniship("create", "ci-github", "--role", "release", "--apps", "demo")
    assert made.returncode == 0, made.stderr
    secret = re.search(r"msp_[A-Za-z0-9_-]{43}", made.stdout)
    assert secret is not None and "Traceback" not in made.stderr
    listed = miniship("list")
    assert "ci-github: release on demo" in listed.stdout and "msp_" not in listed.stdout
    refused = miniship("create", "other", "--role", "release", "--apps", "nosuch")
    assert refused.returncode == 1 and "no app `nosuch`" in refused.stderr
    unasked = miniship("revoke", "ci-github")  # no terminal to ask at: not done
    assert unasked.returncode == 1 and "--yes" in unasked.stderr
    revoked = miniship("revoke", "ci-github", "--yes")
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    engine = make_engine(url)
    try:
        store = Store(engine)
        assert await store.tokens() == []
        events = await store.events([], unscoped=True, actions=["token create", "token revoke"])
        assert {e.actor for e in events} == {f"console:{_user()}"}
        assert all(secret.group() not in e.message for e in events)
    finally:
        await engine.dispose()


def _user() -> str:
    import getpass

    return getpass.getuser()


def test_a_webhook_url_without_its_key_is_refused_at_start(tmp_path: Path) -> None:
    started = subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "console"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=clean_env(MINISHIP_CONFIG=str(DEMO), MINISHIP_WEBHOOK_URLS="https://ci.example/hook"),
    )
    assert started.returncode == 2 and "MINISHIP_WEBHOOK_SECRET" in started.stderr
    assert "Traceback" not in started.stderr
