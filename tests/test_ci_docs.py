"""The CI jobs docs/ci.md shows: each is valid for its CI (the GitHub workflow and GitLab CI
JSON schemas that check-jsonschema vendors, strictly: a misspelt key is an error), and
every call they make is one the API serves (its own OpenAPI document). No runner is here
to run them; this is what can be checked without one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from handlers.api import openapi

DOC = Path(__file__).parents[1] / "docs" / "ci.md"
JOBS = dict(
    zip(
        ("github", "gitlab"),
        re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL),
        strict=True,
    )
)
SCHEMA = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}


def check(ci: str, text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    job = tmp_path / f"{ci}.yml"
    job.write_text(text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", SCHEMA[ci], str(job)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("ci", JOBS)
def test_each_ci_job_is_valid_for_its_ci(ci: str, tmp_path: Path) -> None:
    done = check(ci, JOBS[ci], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    misspelt = {"github": ("\njobs:", "\njobz:"), "gitlab": ("  script:", "  scripts:")}[ci]
    assert misspelt[0] in JOBS[ci]
    refused = check(ci, JOBS[ci].replace(*misspelt), tmp_path)
    assert refused.returncode == 1 and "was unexpected" in refused.stdout


def test_every_call_the_jobs_make_is_one_the_api_serves() -> None:
    """``curl … -X POST "$MINISHIP_URL/api/v1/apps/$APP/releases/$VERSION/submit"`` and the
    like, in the jobs and in the page's other snippets, against the OpenAPI paths."""
    served = {(m.upper(), p) for p, ops in openapi()["paths"].items() for m in ops}
    made = {(method, re.sub(r"\$\{?(\w+)\}?", _placeholder, path)) for method, path in _calls()}
    assert made, "no API call found in docs/ci.md"
    assert made <= served, made - served
    assert {p for _, p in made} >= {p for _, p in served if "{version}" in p}  # all used


def _placeholder(found: re.Match[str]) -> str:
    return {"APP": "{app}", "VERSION": "{version}"}[found.group(1)]


def _calls() -> list[tuple[str, str]]:
    """(method, path) of each curl in the page: a command runs to the next blank line,
    fence or list item, joined over its continuation lines."""
    text = DOC.read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for start in re.finditer(r"curl ", text):
        end = re.search(r"\n\s*(?:- |```|\n)", text[start.start() :])
        command = text[start.start() : start.start() + (end.start() if end else len(text))]
        path = re.search(r"\$MINISHIP_URL(/api/[^\"?\s]*)", command)
        if path is None:
            continue
        out.append(("POST" if "-X POST" in command else "GET", path.group(1)))
    return out
