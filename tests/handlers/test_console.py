"""The console end to end: both platforms emulated over real HTTP on loopback.

Most tests drive the console line by line with a fake clock shared by the emulators, so
reviews are decided without waiting; one runs `python bot.py console < script` for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage import ReleaseState
from tests.handlers.harness import DEMO, Session

REPO = Path(__file__).parents[2]


async def test_release_demo_on_both_platforms(session: Session) -> None:
    out = await session.run("upload demo 1.0.0 first public version")
    assert "✓ WeChat" in out and "✓ Alipay" in out and "uploaded" in out
    out = await session.run("/ship submit demo 1.0.0")
    assert out.count("submitted for review") == 2
    out = await session.run("publish demo 1.0.0")
    assert "Nothing published" in out and "WeChat is in review" in out
    assert await session.state("1.0.0", "wechat") is ReleaseState.IN_REVIEW

    session.decide_reviews()
    out = await session.watch()
    assert "[review] demo 1.0.0 on WeChat: in review → approved" in out
    assert "[review] demo 1.0.0 on Alipay: in review → approved" in out
    assert await session.watch() == ""  # no change, no message

    out = await session.run("publish demo 1.0.0")
    assert out.count("✓") == 2 and "published" in out
    out = await session.run("status demo")
    assert "live 1.0.0" in out and "released" in out
    out = await session.run("history demo")
    for action in ("upload", "submit", "review", "publish"):
        assert f"{action} 1.0.0 WeChat" in out and f"{action} 1.0.0 Alipay" in out
    assert "console:tester" in out and "CST" in out  # Asia/Shanghai


async def test_a_rejection_is_reported_with_its_reason(session: Session) -> None:
    await session.run("upload demo wechat 1.0.0 try this #reject")
    await session.run("submit demo wechat 1.0.0")
    session.decide_reviews()
    out = await session.watch()
    assert "in review → rejected" in out and "reason:" in out
    out = await session.run("status demo wechat")
    assert "rejected" in out and "reason:" in out
    out = await session.run("publish demo wechat 1.0.0")
    assert "only an approved version can be published" in out


async def test_a_rejected_version_is_fixed_and_resubmitted_on_both(session: Session) -> None:
    await session.run("upload demo 1.0.0 first try #reject")
    await session.run("submit demo 1.0.0")
    session.decide_reviews()
    await session.watch()
    for p in ("wechat", "alipay"):
        assert await session.state("1.0.0", p) is ReleaseState.REJECTED
    out = await session.run("upload demo 1.0.1 fixed the category")
    assert out.count("✓") == 2
    out = await session.run("submit demo 1.0.1")
    assert out.count("✓") == 2, out
    assert "went back to development" in out  # Alipay: the rejected 1.0.0 was in the way
    for p in ("wechat", "alipay"):
        assert await session.state("1.0.0", p) is ReleaseState.SUPERSEDED
        assert await session.state("1.0.1", p) is ReleaseState.IN_REVIEW
    session.decide_reviews()
    await session.watch()
    out = await session.run("publish demo 1.0.1")
    assert out.count("✓") == 2


async def test_the_same_rejected_version_can_be_submitted_again(session: Session) -> None:
    await session.run("upload demo alipay 1.0.0 first try #reject")
    await session.run("submit demo alipay 1.0.0")
    session.decide_reviews()
    await session.watch()
    out = await session.run("submit demo alipay 1.0.0")
    assert "✓ Alipay" in out, out
    assert await session.state("1.0.0", "alipay") is ReleaseState.IN_REVIEW


async def test_withdraw_then_resubmit(session: Session) -> None:
    await session.run("upload demo 1.0.0 notes")
    await session.run("submit demo 1.0.0")
    out = await session.run("withdraw demo wechat 1.0.0")
    assert "✓ WeChat" in out and "withdrawn" in out
    assert await session.state("1.0.0", "wechat") is ReleaseState.WITHDRAWN
    assert await session.state("1.0.0", "alipay") is ReleaseState.IN_REVIEW
    out = await session.run("withdraw demo wechat 1.0.0")
    assert "not in review; nothing to withdraw" in out
    out = await session.run("submit demo wechat 1.0.0")
    assert "submitted for review" in out


async def test_publish_of_one_platform_when_the_other_is_not_ready(session: Session) -> None:
    await session.run("upload demo 2.0.0 notes")
    await session.run("submit demo wechat 2.0.0")
    session.decide_reviews()
    out = await session.run("publish demo 2.0.0")
    assert (
        "Nothing published" in out and "Alipay is uploaded" in out and "WeChat is approved" in out
    )
    out = await session.run("publish demo wechat 2.0.0")
    assert "✓ WeChat" in out and "published" in out


async def test_platform_errors_are_explained_with_their_code(session: Session) -> None:
    await session.run("upload demo 1.0.0 notes")
    await session.run("submit demo 1.0.0")
    await session.run("upload demo 1.1.0 notes")
    out = await session.run("submit demo 1.1.0")
    assert "✗ WeChat" in out and "WeChat 85009" in out
    assert "✗ Alipay" in out and "Alipay CAN_NOT_SUBMIT_WITH_AUDIT_GRAY" in out
    out = await session.run("history demo")
    assert "submit 1.1.0 WeChat: failed" in out


async def test_a_busy_platform_fails_one_side_and_keeps_state(session: Session) -> None:
    await session.run("upload demo 1.0.0 notes")
    session.runtime.emulators["alipay"].inject("*", "unavailable", times=20)
    out = await session.run("submit demo 1.0.0")
    assert "✓ WeChat" in out and "✗ Alipay" in out
    assert await session.state("1.0.0", "alipay") is ReleaseState.UPLOADED
    out = await session.run("status demo")
    assert "could not ask" in out


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", "type a command"),
        ("upload", "Usage: `upload <app> [platform] <version> [template <id>] [notes…]`"),
        ("upload nosuch 1.0", "unknown app `nosuch`; configured apps: demo"),
        ("submit demo 9.9.9", "was never uploaded"),
        ("publish demo wechat 9.9.9", "was never uploaded"),
        ("history nosuch", "unknown app"),
        ("status nosuch", "unknown app"),
        ("uplod demo 1.0", "Did you mean `upload`?"),
        ("\x00\x01\x02", "unknown command"),
        ("upload demo 1.0.0 " + "x" * 5000, "at most"),
        ("connect alipay now", "`connect alipay` takes nothing after it"),
        ("apps @nosuch", "No app you may view is tagged @nosuch"),
        ("app untag demo nosuch", "demo has no tag @nosuch; nothing was changed"),
        ("status all page 2", "There is only one page: status all shows its"),
        ("rollout demo 1.2.0 wechat alipay plan 5,50", "a rollout is on one platform"),
        ("rollout demo wechat alipay pause", "name one — `rollout demo wechat …` and"),
    ],
)
async def test_odd_input_gets_a_clear_answer(session: Session, line: str, expected: str) -> None:
    out = await session.run(line)
    assert expected in out


async def test_odd_input_loses_nothing(session: Session) -> None:
    await session.run("upload demo 1.0.0 notes")
    for line in (
        "submit demo",
        "withdraw demo 1.0.0",
        "publish demo 1.0.0",
        "upload demo 1.0.0 again",
    ):
        await session.run(line)
    assert await session.state("1.0.0", "wechat") is ReleaseState.UPLOADED
    out = await session.run("upload demo 1.0.0 again")
    assert "already uploaded" in out


async def test_apps_and_help(session: Session) -> None:
    out = await session.run("apps")
    assert "demo — Demo Shop" in out and "wx3a5f9c2e1b7d4f60" in out and "2021004100000001" in out
    assert "(emulated)" in out
    out = await session.run("help")
    assert "publish <app> [platform] <version>" in out
    assert "withdraw" in await session.run("help withdraw")


def test_a_script_runs_end_to_end(tmp_path: Path) -> None:
    """`python bot.py console < script.txt` with real (short) reviews and `wait`."""
    script = "\n".join(
        [
            "# a release rehearsal",
            "apps",
            "upload demo 1.0.0 first release",
            "submit demo 1.0.0",
            "wait 3",
            "status demo",
            "publish demo 1.0.0",  # a script does not answer a question: nothing runs
            "publish demo 1.0.0 --yes",
            "history demo",
            "",
        ]
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WECHAT_", "ALIPAY_", "MINISHIP_", "DATABASE_URL"))
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}",
        MINISHIP_CONFIG=str(DEMO),
        MINISHIP_EMULATOR_REVIEW_SECONDS="1",
        MINISHIP_WATCH_SECONDS="0.3",
        MINISHIP_EMULATOR_STATE=str(tmp_path / "emulators"),
    )
    done = subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "console"],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "platforms are emulated" in out or "emulated on http://127.0.0.1:" in out
    assert "database:  SQLite" in out
    assert "> upload demo 1.0.0 first release" in out
    assert "[review] demo 1.0.0 on WeChat: in review → approved" in out
    assert "[review] demo 1.0.0 on Alipay: in review → approved" in out
    assert "Publish demo 1.0.0 on WeChat and Alipay? It goes live" in out
    assert "Not run: a script confirms with --yes at the end of the line." in out
    assert "publish 1.0.0: cancelled" in out  # the unanswered question is in the history
    assert out.count("published") >= 2
    assert "Traceback" not in out + done.stderr


async def test_random_input_never_crashes_or_changes_state(session: Session) -> None:
    """Hundreds of junk lines built from real words: each gets an answer, none a crash."""
    import random

    rng = random.Random(20261124)
    words = [
        "upload",
        "submit",
        "publish",
        "withdraw",
        "status",
        "history",
        "help",
        "apps",
        "/ship",
        "demo",
        "nosuch",
        "wechat",
        "alipay",
        "1.0.0",
        "v2",
        "0",
        "-1",
        "''",
        '"',
        "`",
        "#reject",
        "at",
        "10:00",
        "🚀",
        "\x00",
        "\t",
        "..",
        "%s",
        "{}",
        "∞",
    ]
    await session.run("upload demo 1.0.0 base")
    before = [(await session.state("1.0.0", p)) for p in ("wechat", "alipay")]
    for _ in range(300):
        line = " ".join(rng.choice(words) for _ in range(rng.randint(0, 6)))
        said = line.split()
        if "demo" in said and {"upload", "submit", "publish", "withdraw"} & set(said):
            continue  # real commands on demo may legitimately change state
        out = await session.run(line)
        assert out.strip(), line
        assert "Something went wrong" not in out, (line, out)
    after = [(await session.state("1.0.0", p)) for p in ("wechat", "alipay")]
    assert before == after
