"""What a process loads is memory it holds for good (issue 13: ≤ 150 MB at 1,000 apps):
the console, and the wiring every command shares, leave Slack's SDK to ``serve`` and the
test tools to the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from storage.db import SCHEMA_HEAD

NOT_FOR_THE_CONSOLE = ("slack_bolt", "slack_sdk", "handlers.slack", "hypothesis", "schemathesis")


def test_the_console_does_not_load_slack_or_the_test_tools() -> None:
    probe = (
        "import sys, bot, handlers.console\n"
        f"print(','.join(m for m in {NOT_FOR_THE_CONSOLE!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


def test_a_replica_on_a_migrated_database_does_not_load_alembic(tmp_path: Path) -> None:
    """Alembic (~10 MB held for good) is loaded to migrate, not to start: ``miniship
    migrate`` first, as a deployment runs it, then a runtime opens without it — and
    readiness still says the schema is the newest."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    env = {**os.environ, "MINISHIP_DATABASE_URL": url, "MINISHIP_EMULATORS": "off"}
    env["MINISHIP_CONFIG"] = str(tmp_path / "miniship.toml")
    (tmp_path / "miniship.toml").write_text("", encoding="utf-8")  # no app
    bot_py = str(Path(__file__).parents[1] / "bot.py")
    subprocess.run([sys.executable, bot_py, "migrate"], env=env, check=True, timeout=120)
    probe = (
        "import asyncio, sys, bot\n"
        "from handlers.config import Settings\n"
        "from storage import schema_revision\n"
        "async def main():\n"
        "    async with bot.open_runtime(Settings()) as rt:\n"
        "        print(*await schema_revision(rt.store.engine), 'alembic' in sys.modules)\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [SCHEMA_HEAD, SCHEMA_HEAD, "False"]
