"""The CI API against its own OpenAPI document: schemathesis generates requests from
/api/openapi.json — valid ones and ones that break the schema — sends them to the API over
both emulated platforms, and checks every answer against the document (documented status
codes, bodies and content types, no server error, refused input refused, a call without
the token refused).

schemathesis runs as its own process (its runner is synchronous) while this test's event
loop serves the API; a small number of examples per operation keeps it to seconds.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from handlers.api import OPERATIONS, CiApi
from tests.handlers.harness import Session
from tests.handlers.test_api import api_served, make_token

EXAMPLES = 25
CONFIG = """
[dictionaries.versions]
values = ["1.0.0", "1.0.1", "2.0.0"]

[parameters]
"path.app" = "demo"
"path.version" = { dictionary = "versions", probability = 0.8 }
"""


async def test_the_api_keeps_to_its_openapi_document(session: Session, tmp_path: Path) -> None:
    session.runtime.timed.planner = None  # a timed publish is refused here (409): documented
    token = await make_token(session, "ci --role release,publish,override")
    # releases in every state the operations act on, for the generated calls to find
    await session.run("upload demo 1.0.0")
    await session.run("upload demo 1.0.1")
    await session.run("submit demo 1.0.1")
    session.decide_reviews()
    await session.watch()
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    async with api_served(CiApi(session.runtime.commands())) as base:
        run = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            f"{base}/api/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "all",
            "--exclude-checks",
            # the releases the generated calls make are real: what one call uploads,
            # the next finds uploaded — a later refusal (409) is the API's rule, not a
            # resource that vanished or an input wrongly refused
            "use_after_free,ensure_resource_availability,positive_data_acceptance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            "14",
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--request-timeout",
            "20",
            "--no-color",
            "--report-dir",
            str(tmp_path / "report"),
            cwd=tmp_path,  # where schemathesis keeps its cache
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NO_COLOR": "1"},
        )
        out, _ = await run.communicate()
    said = out.decode(errors="replace")
    assert run.returncode == 0, said[-6000:]
    assert f"Tested: {len(OPERATIONS)}" in said, said[-3000:]  # every operation was reached
