"""What a process loads is memory it holds for good (issue 13: ≤ 150 MB at 1,000 apps):
the console, and the wiring every command shares, leave Slack's SDK to ``serve`` and the
test tools to the tests."""

from __future__ import annotations

import subprocess
import sys

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
