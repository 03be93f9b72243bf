"""The tests' fake Slack Web API for the Kubernetes rehearsal's pods: `auth.test` says the
token is good (so `/readyz` can be 200), and every card and message is taken and counted.

    .venv/bin/python deploy/kubernetes-rehearsal/fake_slack.py HOST PORT

Not for production: it answers any `xoxb-…` token."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository

from tests.slack.fake_slack import FakeSlack


async def main(host: str, port: int) -> None:
    slack = FakeSlack()
    await slack.start(host, port)
    print(f"fake Slack Web API on http://{host}:{port}/api/", flush=True)
    try:
        await asyncio.Event().wait()  # until killed
    finally:
        await slack.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
