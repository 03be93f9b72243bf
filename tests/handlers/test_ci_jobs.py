"""docs/ci.md's CI jobs, run: their own shell lines (taken from the page's YAML, as a runner
would take them) in bash, with curl, jq, zip and git, against a miniship API on loopback
backed by both emulated platforms. No GitHub or GitLab runner is here; this is the nearest
thing — the runner's part (checkout, Node, the build) is a git repository with a built
``dist/`` folder and the variables a runner sets. tests/test_ci_docs.py checks the same jobs
against their CI's schema."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import zipfile
from contextlib import AbstractAsyncContextManager
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from handlers.api import CiApi
from handlers.scheduler import FollowerPlanner
from storage import ReleaseState
from tests.handlers.harness import Session
from tests.handlers.test_api import api_served, make_token
from tests.test_ci_docs import DOC, JOBS

pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("bash", "curl", "jq", "zip", "git")),
    reason="the jobs' lines need bash, curl, jq, zip and git",
)

SUBJECT = 'Autumn menu: "栗子" & 10% off'
"""The commit's subject, which the jobs send as the release notes: quotes, an ampersand, a
percent sign and Chinese, as real subjects have."""

VERSION_LINE = 'VERSION="${GITHUB_REF_NAME#v}"'
SLEPT = 75
"""The exit status of the ``sleep`` the poll loop calls (see :func:`gitlab_script`)."""


def template_upload() -> str:
    """The page's upload line for an app built from a template (its one ``sh`` block)."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("```sh\n") + len("```sh\n")
    return text[start : text.index("```", start)]


def github_steps() -> dict[str, str]:
    """The GitHub job's ``run`` blocks after its build, by the step's first word."""
    steps = yaml.safe_load(JOBS["github"])["jobs"]["miniship"]["steps"]
    return {s["name"].split()[0]: s["run"] for s in steps if "run" in s and "MINISHIP" in s["run"]}


def gitlab_script() -> list[str]:
    """The GitLab job's script from the line that names the version (the ones before it
    install and build)."""
    script: list[str] = yaml.safe_load(JOBS["gitlab"])["release"]["script"]
    return script[next(i for i, line in enumerate(script) if line.startswith("VERSION=")) :]


def repository(where: Path, manifest: str) -> Path:
    """A checkout after the build: one commit (subject :data:`SUBJECT`), ``dist/`` built."""
    where.mkdir()
    (where / "dist" / "pages").mkdir(parents=True)
    (where / "dist" / manifest).write_text("{}", encoding="utf-8")
    (where / "dist" / "pages" / "index.js").write_text("Page({})", encoding="utf-8")
    who = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com"}
    who |= {"GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.com"}
    for command in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", SUBJECT]):
        subprocess.run(["git", *command], cwd=where, env={**os.environ, **who}, check=True)
    return where


async def run(script: str, cwd: Path, **env: str) -> tuple[int, str]:
    """``script`` in bash as CI runs it (stop at the first failure, pipes included)."""
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-eo",
        "pipefail",
        "-c",
        script,
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def served(session: Session) -> AbstractAsyncContextManager[str]:
    """miniship's API on loopback; yields its URL."""
    session.runtime.timed.planner = FollowerPlanner()  # a timed publish kept for the leader
    return api_served(CiApi(session.runtime.commands()))


async def test_the_github_job_uploads_hands_over_its_build_and_submits(
    session: Session, tmp_path: Path
) -> None:
    steps = github_steps()
    checkout = repository(tmp_path / "checkout", "project.config.json")
    token = await make_token(session, "ci-github --role release --apps demo")
    async with served(session) as base:
        env = {"MINISHIP_URL": base, "MINISHIP_TOKEN": token, "APP": "demo"}
        env["GITHUB_REF_NAME"] = "v1.2.0"
        # the step for an app owned directly: its zip and URL reach the archive call, which
        # refuses a template's app as the page says (409), and curl fails the job with it
        status, said = await run(steps["Hand"], checkout, **env)
        assert status == 22 and '"platform_refused"' in said and "template" in said, said
        with zipfile.ZipFile(checkout / "build.zip") as build:
            assert sorted(build.namelist()) == ["pages/", "pages/index.js", "project.config.json"]
        # demo is built from a template: the page's first step for it, then its submit step
        status, said = await run(f"{VERSION_LINE}\n{template_upload()}", checkout, **env)
        assert status == 0, said
        release = await session.runtime.store.release("demo", "1.2.0")
        assert release is not None and release.notes == SUBJECT
        status, said = await run(steps["Submit"], checkout, **env)
        assert status == 0, said
        assert await session.state("1.2.0", "wechat") is ReleaseState.IN_REVIEW
        assert await session.state("1.2.0", "alipay") is ReleaseState.UPLOADED
        # a token that is no longer (or never was) good fails the job, saying why
        status, said = await run(steps["Submit"], checkout, **env | {"MINISHIP_TOKEN": "msp_x"})
        assert status == 22 and '"unauthorized"' in said, said
    done = await session.runtime.store.events(["demo"], actor="token:ci-github", limit=None)
    assert {("upload", "ok"), ("submit", "ok")} <= {(e.action, e.outcome) for e in done}


async def test_the_gitlab_job_waits_for_the_review_and_plans_the_publish(
    session: Session, tmp_path: Path
) -> None:
    checkout = repository(tmp_path / "checkout", "mini.project.json")
    version, zipping, archive, submit, poll, publish = gitlab_script()
    token = await make_token(session, "ci-gitlab --role release,publish --apps demo")
    # where the runner would wait five minutes, the job stops instead, and goes on from
    # its poll after the platform decided (the version line again: a new shell)
    sleep = f"sleep() {{ echo 'would sleep' \"$1\"; exit {SLEPT}; }}"
    async with served(session) as base:
        env = {"MINISHIP_URL": base, "MINISHIP_TOKEN": token, "APP": "demo"}
        env["CI_COMMIT_TAG"] = "v1.2.0"
        status, said = await run(f"{version}\n{zipping}\n{archive}", checkout, **env)
        assert status == 22 and '"platform_refused"' in said, said  # demo's code is a template
        lines = [sleep, version, template_upload(), submit, poll]
        status, said = await run("\n".join(lines), checkout, **env)
        assert status == SLEPT and "alipay: in_review\nwould sleep 300" in said, said
        session.decide_reviews()
        await session.watch()
        status, said = await run("\n".join([sleep, version, poll, publish]), checkout, **env)
        assert status == 0 and "alipay: approved" in said, said
        assert '"outcome":"scheduled"' in said.replace(" ", ""), said
    assert await session.state("1.2.0", "alipay") is ReleaseState.APPROVED
    (planned,) = await session.runtime.store.timed_actions()
    assert (planned.version, planned.platforms) == ("1.2.0", ["alipay"])
    assert planned.created_by == "token:ci-gitlab"
    shanghai = ZoneInfo("Asia/Shanghai")  # demo's time zone: the job's "at 22:00" is there
    assert planned.due_at.replace(tzinfo=UTC).astimezone(shanghai).strftime("%H:%M") == "22:00"
    done = await session.runtime.store.events(["demo"], actor="token:ci-gitlab", limit=None)
    assert {"upload", "submit", "schedule"} <= {e.action for e in done}
