"""Safe releases through the console, against both emulators: the version rule, no
downgrade by publish (now or timed), and confirmations for destructive commands."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, update

from handlers.commands import Commands
from handlers.config import AppEntry, ChannelEntry, parse_config
from handlers.freezes import FreezeWindow
from handlers.releases import Actor
from handlers.timed import Notice
from platforms.errors import ConfigError
from storage import ReleaseState
from storage.models import ReleaseTarget, TimedAction
from tests.handlers.harness import REVIEW, Session
from tests.handlers.test_lifecycle import approved, released

S = ReleaseState
ME, OTHER = Actor("console:me"), Actor("console:other")


async def uploads(session: Session) -> list[str]:
    """Versions the platforms were asked to take (the emulators' upload counters)."""
    events = await session.runtime.store.history("demo", 100)
    return [f"{e.version}:{e.platform}" for e in events if e.action == "upload" and e.platform]


class NoPlanner:
    """Timed releases are planned, never woken (the fire-time checks are tested apart)."""

    def plan(self, action: TimedAction, remind_at: datetime | None) -> None:
        pass

    def unplan(self, action_id: int) -> None:
        pass


# -- the version rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("1.2", "is not MAJOR.MINOR.PATCH (three numbers, as Alipay demands); write 1.2.0"),
        ("v1.2.0", "versions have no prefix (Alipay takes digits only); write 1.2.0"),
        ("1.2.0.0", "has 4 parts"),
        ("01.02.03", "has leading zeros; write 1.2.3"),
        ("1.2.0-beta", "is not a version"),
    ],
)
async def test_a_version_off_the_rule_is_refused_before_any_platform(
    session: Session, typed: str, said: str
) -> None:
    out = await session.run(f"upload demo {typed} notes")
    assert "Not uploaded:" in out and said in out, out
    assert await uploads(session) == []  # neither platform was asked
    assert await session.runtime.store.release("demo", typed) is None
    events = await session.runtime.store.history("demo", 5)
    assert events[0].action == "upload" and events[0].outcome == "refused"


async def test_an_upload_says_when_a_platform_could_not_say_its_versions(
    session: Session,
) -> None:
    wechat = session.runtime.emulators["wechat"]
    wechat.inject("*", "unavailable", times=3)  # the version reads before the upload
    out = await session.run("upload demo 1.2.0 first")
    assert "✓ Alipay" in out, out
    assert "⚠ could not ask WeChat which versions it holds" in out, out
    assert "checked against what miniship knows" in out


async def test_an_upload_asks_each_platform_for_its_versions_once(session: Session) -> None:
    wechat = session.runtime.emulators["wechat"]
    history = "/wxa/revertcoderelease?action=get_history_version"
    await session.run("upload demo 1.2.0 first")
    assert wechat.calls.get(history, 0) == 1  # type: ignore[attr-defined]
    await session.run("upload demo 3.0.0 big")  # asked about, not answered (a script)
    await session.run("upload demo 3.0.0 big --yes")
    assert wechat.calls.get(history, 0) == 3  # type: ignore[attr-defined]


def test_an_apps_prefix_is_the_one_spelling_of_its_versions() -> None:
    from handlers import versions

    assert versions.read("v1.2.0", "v") == versions.Version(1, 2, 0)
    for typed, said in (
        ("1.2.0", "this app's versions start with `v`; write v1.2.0"),
        ("V1.2.0", "`v` is this app's prefix; write v1.2.0"),
        ("v1.2", "write v1.2.0"),
    ):
        with pytest.raises(versions.VersionError, match=re.escape(said)):
            versions.read(typed, "v")
    assert versions.readable("1.2.0", "v") == versions.Version(1, 2, 0)  # still compared


async def test_a_version_not_above_what_is_known_is_refused_with_the_picture(
    session: Session,
) -> None:
    await session.run("upload demo 1.2.0 first")
    for line in ("upload demo 1.1.0 older", "upload demo wechat 1.1.9 older"):
        out = await session.run(line)
        assert "is not higher than 1.2.0" in out and "upload 1.2.1 or higher" in out, out
        assert "WeChat: live none; also known: 1.2.0" in out, out
        assert "Alipay: live none; also known: 1.2.0" in out, out
    assert await uploads(session) == ["1.2.0:wechat", "1.2.0:alipay"] or sorted(
        await uploads(session)
    ) == ["1.2.0:alipay", "1.2.0:wechat"]


async def test_the_same_version_may_follow_on_the_other_platform(session: Session) -> None:
    out = await session.run("upload demo wechat 1.3.0 first on WeChat")
    assert "✓ WeChat" in out, out
    out = await session.run("upload demo alipay 1.3.0 then on Alipay")
    assert "✓ Alipay" in out, out
    out = await session.run("upload demo wechat 1.3.0 again")
    assert "– WeChat  1.3.0 is already uploaded; upload a new version instead" in out, out


async def test_an_unusual_jump_asks_first_whatever_the_settings(session: Session) -> None:
    await session.run("upload demo 1.2.0 first")
    out = await session.run("upload demo 3.0.0 big")  # a script: the question is not answered
    assert "3.0.0 skips from major version 1 to 3" in out, out
    assert "Alipay versions can never go down" in out and "Not run" in out, out
    assert await session.runtime.store.release("demo", "3.0.0") is None
    out = await session.run("upload demo 1.2.100 typo?")
    assert "has a part of 100" in out and "Not run" in out, out
    out = await session.run("upload demo 3.0.0 big --yes")
    assert out.count("✓") == 2, out


# -- no downgrade by publish ----------------------------------------------------------------


async def _back_to_approved(session: Session, version: str, platform: str) -> None:
    """As if ``version`` had been approved again (a state a lower version can be in while
    a higher one is live, e.g. released elsewhere)."""
    store = session.runtime.store
    release = await store.release("demo", version)
    assert release is not None
    async with store.session() as s:
        await s.exec(
            update(ReleaseTarget)
            .where(col(ReleaseTarget.release_id) == release.id)
            .where(col(ReleaseTarget.platform) == platform)
            .values(state=str(S.APPROVED), updated_at=datetime.now(UTC))
        )
        await s.commit()


async def test_publishing_an_older_version_is_refused_now_and_later(session: Session) -> None:
    await released(session, "1.0.0", "wechat")
    await released(session, "2.0.0", "wechat")
    await _back_to_approved(session, "1.0.0", "wechat")
    out = await session.run("publish demo wechat 1.0.0")
    assert "1.0.0 is older than 2.0.0, which is live on WeChat" in out, out
    assert "`rollback demo wechat to 1.0.0`" in out, out
    assert await session.state("1.0.0", "wechat") is S.APPROVED  # the claim was given back
    assert await session.state("2.0.0", "wechat") is S.RELEASED
    session.runtime.timed.planner = NoPlanner()
    out = (await _commands(session).handle(ME, "publish demo wechat 1.0.0 in 1h")).text
    assert "2.0.0 is already live on WeChat" in out and "older version" in out, out


# -- confirmations ------------------------------------------------------------------------


def _commands(session: Session, lifetime: timedelta = timedelta(minutes=10)) -> Commands:
    rt = session.runtime
    return Commands(
        rt.service,
        timed=rt.timed,
        admin=rt.admin,
        confirm={"offline", "gray"},
        confirm_lifetime=lifetime,
    )


async def test_a_publish_is_asked_about_even_if_it_may_be_refused(session: Session) -> None:
    """The review may be decided between the question and the answer: a publish is always
    asked about (a question skipped because it looked refused could publish unasked)."""
    rt = session.runtime
    commands = Commands(rt.service, timed=rt.timed, admin=rt.admin, confirm={"publish"})
    await session.run("upload demo wechat 1.0.0 first")
    await session.run("submit demo wechat 1.0.0")
    asked = await commands.handle(ME, "publish demo wechat 1.0.0")  # still in review
    assert asked.asked is not None and asked.text.startswith("Publish demo 1.0.0 on WeChat?")
    session.decide_reviews()  # approved meanwhile
    assert await session.state("1.0.0", "wechat") is S.IN_REVIEW  # nothing ran
    done = await commands.answer(ME, asked.asked.token, True)
    assert "✓ WeChat" in done.text, done.text


async def test_a_destructive_command_asks_and_only_its_requester_answers(
    session: Session,
) -> None:
    await released(session, "1.0.0", "alipay")
    commands = _commands(session)
    asked = await commands.handle(ME, "offline demo alipay")
    assert asked.asked is not None and asked.private and not asked.error
    assert asked.text.startswith("Really take demo offline on Alipay?")
    assert await session.state("1.0.0", "alipay") is S.RELEASED  # nothing ran

    other = await commands.answer(OTHER, asked.asked.token, True)
    assert other.error and "only the person who typed the command" in other.text
    assert await session.state("1.0.0", "alipay") is S.RELEASED

    done = await commands.answer(ME, asked.asked.token, True)
    assert "✓ Alipay" in done.text and "taken offline" in done.text, done.text
    assert await session.state("1.0.0", "alipay") is S.OFFLINE
    again = await commands.answer(ME, asked.asked.token, True)
    assert again.error and "confirmed already" in again.text

    events = [
        (e.actor, e.action, e.outcome)
        for e in await session.runtime.store.history("demo", 10)
        if e.action == "offline"
    ]
    assert ("console:me", "offline", "asked") in events
    assert ("console:me", "offline", "confirmed") in events
    assert ("console:me", "offline", "ok") in events


async def test_cancel_runs_nothing_and_an_expired_question_is_refused(session: Session) -> None:
    await released(session, "1.0.0", "alipay")
    commands = _commands(session)
    asked = await commands.handle(ME, "offline demo alipay")
    assert asked.asked is not None
    cancelled = await commands.answer(ME, asked.asked.token, False)
    assert "Cancelled" in cancelled.text and "nothing was done" in cancelled.text
    assert await session.state("1.0.0", "alipay") is S.RELEASED

    stale = _commands(session, timedelta(seconds=-1))
    asked = await stale.handle(ME, "offline demo alipay")
    assert asked.asked is not None
    late = await stale.answer(ME, asked.asked.token, True)
    assert late.error and "expired" in late.text
    assert await session.state("1.0.0", "alipay") is S.RELEASED


async def test_yes_answers_ahead_and_only_listed_commands_ask(session: Session) -> None:
    await released(session, "1.0.0", "wechat")
    await approved(session, "1.1.0", "wechat")
    commands = _commands(session)
    out = await commands.handle(ME, "gray demo wechat 10")  # growing a share does not ask
    assert out.asked is None and "✓ WeChat" in out.text, out.text
    asked = await commands.handle(ME, "gray demo wechat stop")
    assert asked.asked is not None and "Stop the staged release" in asked.text
    out = await commands.handle(ME, "gray demo wechat stop --yes")
    assert out.asked is None and "gray release of 1.1.0 stopped" in out.text, out.text
    out = await commands.handle(ME, "publish demo wechat 1.1.0")  # publish is not listed here
    assert out.asked is None and "✓ WeChat" in out.text, out.text


async def test_an_unknown_command_in_the_setting_is_a_config_error(session: Session) -> None:
    with pytest.raises(ConfigError, match="MINISHIP_CONFIRM names frobnicate"):
        Commands(session.runtime.service, confirm={"frobnicate"})


# -- state kept true ----------------------------------------------------------------------


class Planned(NoPlanner):
    """Remembers what is on the clock."""

    def __init__(self) -> None:
        self.jobs: set[int] = set()

    def plan(self, action: TimedAction, remind_at: datetime | None) -> None:
        self.jobs.add(action.id or 0)

    def unplan(self, action_id: int) -> None:
        self.jobs.discard(action_id)


async def test_withdrawing_cancels_the_versions_timed_releases(session: Session) -> None:
    session.runtime.timed.planner = planner = Planned()
    commands = _commands(session)
    await session.run("upload demo wechat 1.0.0 first")
    await session.run("submit demo wechat 1.0.0")
    planned = await commands.handle(ME, "publish demo wechat 1.0.0 in 1h")
    assert "Timed release #1" in planned.text, planned.text
    assert planner.jobs == {1}
    out = await session.run("withdraw demo wechat 1.0.0")
    assert "✓ WeChat  withdrawn from review" in out, out
    assert "timed release #1 cancelled (nothing will be published then)" in out, out
    action = await session.runtime.store.timed(1)
    assert action is not None and action.state == "cancelled"
    assert planner.jobs == set()  # off the clock too
    events = await session.runtime.store.history("demo", 10)
    assert any(e.action == "schedule" and "#1 cancelled" in e.message for e in events)


async def test_expedite_means_the_same_on_every_platform(session: Session) -> None:
    await session.run("upload demo 1.0.0 first")
    await session.run("submit demo 1.0.0")
    out = await session.run("expedite demo 1.0.0")
    assert "✓ WeChat  expedited review requested" in out, out
    assert "– Alipay  Alipay speeds a review up only when it is submitted" in out, out
    assert "`submit demo alipay 1.0.0 --expedite`" in out, out
    assert "has no expedited review" not in out


async def test_platform_words_are_read_wherever_they_stand(session: Session) -> None:
    await session.run("upload demo 1.0.0 first")
    out = await session.run("submit demo wechat alipay 1.0.0")
    assert out.count("✓") == 2, out
    out = await session.run("status demo")
    assert "not a platform" not in out
    session.decide_reviews()
    await session.watch()
    out = await session.run("publish demo 1.0.0 alipay")
    assert "✓ Alipay" in out and "WeChat" not in out, out


async def test_a_rollback_or_offline_in_the_platforms_console_is_recorded(
    session: Session,
) -> None:
    await released(session, "1.0.0", "wechat")
    await released(session, "2.0.0", "wechat")
    await released(session, "2.0.0", "alipay")
    service = session.runtime.service
    assert await service.reconcile_live() == []  # nothing changed outside
    # people act in the platforms' own consoles, not through miniship
    await service.adapters["wechat"].rollback("demo", "2.0.0", None)
    await service.adapters["alipay"].offline("demo", "2.0.0")
    changes = await service.reconcile_live()
    moved = {(c.platform, c.version, c.new, c.outside) for c in changes}
    assert moved == {
        ("wechat", "2.0.0", S.ROLLED_BACK, True),
        ("alipay", "2.0.0", S.OFFLINE, True),
    }
    assert await session.state("2.0.0", "wechat") is S.ROLLED_BACK
    assert await session.state("2.0.0", "alipay") is S.OFFLINE
    out = await session.run("history demo")
    assert "released → rolled_back (changed outside miniship): WeChat has 1.0.0 live" in out
    assert "released → offline (changed outside miniship): nothing is live on Alipay" in out
    assert await service.reconcile_live() == []  # said once


# -- split outcomes and passing faults ------------------------------------------------------


async def test_a_split_outcome_says_the_exact_command_to_finish(session: Session) -> None:
    await session.run("upload demo 1.0.0 notes")
    session.runtime.emulators["alipay"].inject("*", "unavailable", times=20)
    out = await session.run("submit demo 1.0.0")
    assert "✓ WeChat" in out and "✗ Alipay" in out, out
    assert "To finish: `submit demo alipay 1.0.0`" in out, out
    session.runtime.emulators["alipay"].clear_faults()
    out = await session.run("submit demo alipay 1.0.0")
    assert "✓ Alipay" in out, out


async def test_publish_names_the_command_for_the_ready_platform(session: Session) -> None:
    await session.run("upload demo 1.0.0 notes")
    await session.run("submit demo wechat 1.0.0")
    session.decide_reviews()
    await session.watch()
    await session.run("submit demo alipay 1.0.0")
    out = await session.run("publish demo 1.0.0")
    assert "Nothing published: Alipay is in review." in out, out
    assert "WeChat is approved: `publish demo wechat 1.0.0` publishes there alone." in out


async def test_a_timed_publish_retries_a_passing_fault_and_publishes_once(
    session: Session,
) -> None:
    rt = session.runtime
    rt.timed.planner = NoPlanner()
    await approved(session, "1.0.0", "wechat")
    planned = await _commands(session).handle(ME, "publish demo wechat 1.0.0 in 1h --yes")
    assert "Timed release #1" in planned.text, planned.text
    now = {"at": datetime.now(UTC) + timedelta(hours=1)}  # the minute has come
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)
        now["at"] += timedelta(seconds=seconds)

    rt.timed.clock, rt.timed.sleep = (lambda: now["at"]), sleep
    emulator = rt.emulators["wechat"]
    emulator.inject("/wxa/release", "rate_limit", times=2)
    before = emulator.calls.get("/wxa/release", 0)  # type: ignore[attr-defined]
    heard = Heard()
    rt.timed.announcers.append(heard)
    await rt.timed.fire(1)
    assert await session.state("1.0.0", "wechat") is S.RELEASED
    assert waited == [5.0, 10.0]
    assert emulator.calls.get("/wxa/release", 0) - before == 3  # type: ignore[attr-defined]
    (text,) = heard.said
    assert "published as planned" in text and "3 attempts" in text, text
    events = await rt.store.history("demo", 20)
    assert [e.outcome for e in events if e.action == "publish"].count("ok") == 1


class Heard:
    """An announcer that keeps what timed releases say."""

    def __init__(self) -> None:
        self.said: list[str] = []

    async def notice(self, notice: Notice) -> None:
        self.said.append(notice.text)

    async def digest(self, channel: ChannelEntry, text: str) -> None:
        self.said.append(text)


# -- freezes and locks -----------------------------------------------------------------------


class NoOverride:
    """Everyone may do everything, except override, which only console:me may."""

    async def allows(self, actor: Actor, app: AppEntry, role: str) -> bool:
        return role != "override" or actor == ME

    async def among(self, actor: Actor, allowed: tuple[str, ...]) -> bool:
        return True


async def test_a_freeze_refuses_going_live_until_lifted(session: Session) -> None:
    await approved(session, "1.0.0", "wechat")
    out = await session.run("freeze demo until 23:59 release train closed")
    assert "🧊 demo frozen until" in out and "release train closed" in out, out
    out = await session.run("publish demo wechat 1.0.0")
    assert "Not done: 🧊 demo is frozen by console:tester until" in out, out
    assert "(release train closed)" in out and "--override <why>" in out, out
    assert await session.state("1.0.0", "wechat") is S.APPROVED
    status = await session.run("status demo")
    assert "🧊 demo is frozen by console:tester" in status, status
    out = await session.run("unfreeze demo")
    assert "Lifted freeze #1 of demo" in out, out
    out = await session.run("publish demo wechat 1.0.0")
    assert "✓ WeChat" in out, out
    events = [(e.action, e.outcome) for e in await session.runtime.store.history("demo", 20)]
    assert ("freeze", "ok") in events and ("publish", "refused") in events
    assert ("unfreeze", "ok") in events


async def test_unfreeze_says_what_still_holds_and_all_holds_show_in_app_history(
    session: Session,
) -> None:
    await session.run("freeze all until 23:59 code freeze")
    await session.run("lock demo payments")
    out = await session.run("unfreeze demo")
    assert "No freeze of demo set from chat is in force or to come; still in force or to" in out
    assert "every app is frozen by console:tester" in out and "`unfreeze all`" in out, out
    assert "demo is locked by console:tester until unlocked (payments) — `unlock demo`" in out
    assert "may go live again" not in out
    out = await session.run("unfreeze all")
    assert "Lifted freeze #1 of all; still in force or to come:" in out, out
    assert "`unlock demo`" in out
    out = await session.run("unlock demo")
    assert "Lifted lock #2 of demo; releases may go live again." in out, out
    out = await session.run("freeze all tomorrow 09:00 to tomorrow 18:00 holidays")
    assert "frozen from" in out, out
    out = await session.run("unfreeze demo")  # a freeze of every app is coming
    assert "🧊 every app is frozen by console:tester until" in out, out
    assert "(holidays), from " in out and "`unfreeze all`" in out, out
    history = await session.run("history demo")
    assert "freeze" in history and "code freeze" in history, history
    assert "lifted freeze #1" in history, history


async def test_times_for_all_apps_are_in_the_files_zone(session: Session) -> None:
    service = session.runtime.service
    demo = service.app("demo")
    tokyo = dataclasses.replace(demo, key="tokyo", timezone=ZoneInfo("Asia/Tokyo"))
    service.config = dataclasses.replace(
        service.config, apps={"demo": demo, "tokyo": tokyo}, timezone=ZoneInfo("Europe/Berlin")
    )
    out = await session.run("freeze all for 2h incident")
    assert "CET" in out and "CST" not in out, out
    assert "CET" in await session.run("history all")


async def test_override_needs_its_role_and_a_reason_and_is_recorded(session: Session) -> None:
    await approved(session, "1.0.0", "wechat")
    await session.run("lock all investigating payments")
    rt = session.runtime
    commands = Commands(rt.service, NoOverride(), timed=rt.timed, admin=rt.admin)
    out = await commands.handle(OTHER, "publish demo wechat 1.0.0 --override hotfix")
    assert out.error and "You need the *override* role for demo" in out.text, out.text
    out = await commands.handle(ME, "publish demo wechat 1.0.0 --override")
    assert out.error and "say why after --override" in out.text, out.text
    out = await commands.handle(ME, "publish demo wechat 1.0.0 --override hotfix for checkout")
    assert "✓ WeChat" in out.text, out.text
    assert "⚠ Override recorded: hotfix for checkout — 🔒 every app is locked by" in out.text
    out = await commands.handle(ME, "publish demo wechat 9.9.9 --override hotfix")
    assert out.error and "⚠ Override recorded (nothing was done): hotfix —" in out.text, out.text
    events = await rt.store.history("demo", 20)
    override, _nothing_done = [e for e in events if e.outcome == "override"]
    assert override.actor == "console:me" and override.action == "publish"
    assert override.message.startswith("hotfix for checkout — 🔒 every app is locked by")


async def test_gray_rollback_and_offline_are_held_too(session: Session) -> None:
    await released(session, "1.0.0", "alipay")
    await session.run("lock demo")
    for line in ("offline demo alipay", "rollback demo alipay", "gray demo alipay stop"):
        out = await session.run(line)
        assert "Not done: 🔒 demo is locked by console:tester until unlocked" in out, (line, out)
    assert await session.state("1.0.0", "alipay") is S.RELEASED
    assert "Lifted lock" in await session.run("unlock demo")
    assert "No lock of demo set from chat" in await session.run("unlock demo")


async def test_a_timed_release_due_in_a_freeze_is_held_and_said(session: Session) -> None:
    rt = session.runtime
    rt.timed.planner = NoPlanner()
    await approved(session, "1.0.0", "wechat")
    await _commands(session).handle(ME, "publish demo wechat 1.0.0 in 1h --yes")
    await session.run("freeze demo for 2h maintenance")
    heard = Heard()
    rt.timed.announcers.append(heard)
    rt.timed.clock = lambda: datetime.now(UTC) + timedelta(hours=1)  # its minute
    await rt.timed.fire(1)
    assert await session.state("1.0.0", "wechat") is S.APPROVED
    action = await rt.store.timed(1)
    assert action is not None and action.state == "held"
    (text,) = heard.said
    assert "✋ Held: timed release #1 of 1.0.0 on WeChat fell due while 🧊 demo is frozen" in text
    assert "(maintenance)" in text and "override role can publish it now" in text


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("freeze demo", "until when?"),
        ("freeze demo until", "until when?"),
        ("freeze demo 18:00 monday", "write `<from> to <to>`"),
        ("freeze demo for", "for how long?"),
        ("unfreeze", "which app, or `all`?"),
        ("lock", "which app, or `all`?"),
        ("freeze demo until tomorrow", "what time tomorrow?"),
    ],
)
async def test_bad_freezes_explain_themselves(session: Session, line: str, said: str) -> None:
    out = await session.run(line)
    assert said in out and "Usage:" in out, out


def test_weekly_and_dated_windows_from_the_config() -> None:
    config = parse_config(
        {
            "apps": {"demo": {"wechat": {"appid": "wx3a5f9c2e1b7d4f60", "template_id": 1}}},
            "freeze": [
                {"weekly": "fri 18:00 - mon 09:00", "reason": "weekend"},
                {"apps": ["demo"], "from": "2026-12-24 00:00", "to": "2026-12-27 00:00"},
            ],
        }
    )
    weekend, christmas = config.freezes
    zone = ZoneInfo("Asia/Shanghai")

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=zone)

    assert weekend.covering(at("2026-12-04 19:00"), zone) is not None  # a Friday evening
    assert weekend.covering(at("2026-12-07 08:59"), zone) is not None  # Monday morning
    assert weekend.covering(at("2026-12-07 09:00"), zone) is None
    assert weekend.covering(at("2026-12-04 17:59"), zone) is None
    start, end = weekend.covering(at("2026-12-05 12:00"), zone) or (None, None)
    assert start == at("2026-12-04 18:00") and end == at("2026-12-07 09:00")
    assert christmas.covering(at("2026-12-25 12:00"), zone) is not None
    assert christmas.covering(at("2026-12-27 00:00"), zone) is None


@pytest.mark.parametrize(
    ("freeze", "said"),
    [
        ({"weekly": "fri 18:00"}, "fri 18:00 - mon 09:00"),
        ({"weekly": "fri 25:00 - mon 09:00"}, "does not exist"),
        ({"from": "2026-12-24 00:00"}, "either weekly"),
        ({"from": "2026-12-24 00:00", "to": "2026-12-23 00:00"}, "to must come after from"),
        ({"apps": ["nosuch"], "weekly": "fri 18:00 - mon 09:00"}, "unknown app(s) nosuch"),
        ({"weekly": "fri 18:00 - mon 09:00", "colour": "blue"}, "colour"),
    ],
)
def test_bad_freeze_windows_are_config_errors(freeze: dict[str, object], said: str) -> None:
    data = {
        "apps": {"demo": {"wechat": {"appid": "wx3a5f9c2e1b7d4f60", "template_id": 1}}},
        "freeze": [freeze],
    }
    with pytest.raises(ConfigError, match=re.escape(said)):
        parse_config(data)


# -- audit export ----------------------------------------------------------------------------


async def test_a_history_export_is_saved_as_a_csv_file(session: Session, tmp_path: Path) -> None:
    session.console.pictures = tmp_path / "qr"
    await session.run("upload demo 1.0.0 first, with a comma")
    out = await session.run("history demo --action upload export")
    saved = tmp_path / "exports"
    (path,) = saved.iterdir()
    assert f"saved to {path.resolve()}" in out, out
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert rows[0][:4] == ["id", "at (UTC)", "at (Asia/Shanghai)", "actor"]
    assert {r[4] for r in rows[1:]} == {"upload"} and len(rows) == 3  # one per platform


# -- two-person approval ----------------------------------------------------------------------


def _with_approvals(session: Session) -> Commands:
    """The commands on a demo app with ``approvals = 1``."""
    rt = session.runtime
    demo = rt.config.apps["demo"]
    rt.config.apps["demo"] = dataclasses.replace(demo, approvals=1)  # type: ignore[index]
    return Commands(rt.service, timed=rt.timed, admin=rt.admin)


async def test_a_publish_waits_for_a_second_person(session: Session) -> None:
    await approved(session, "1.0.0", "wechat")
    commands = _with_approvals(session)
    asked = await commands.handle(ME, "publish demo wechat 1.0.0")
    assert asked.request == 1 and "✋ Request #1" in asked.text and "approve 1" in asked.text
    assert await session.state("1.0.0", "wechat") is S.APPROVED

    mine = await commands.handle(ME, "approve 1")
    assert mine.error and "you asked for request #1" in mine.text
    listed = await commands.handle(OTHER, "requests demo")
    assert "#1 `publish demo wechat 1.0.0` asked by console:me" in listed.text

    done = await commands.handle(OTHER, "approve 1")
    assert "✅ Request #1 approved" in done.text and "approved by console:other" in done.text
    assert "✓ WeChat" in done.text, done.text
    assert await session.state("1.0.0", "wechat") is S.RELEASED
    again = await commands.handle(OTHER, "approve 1")
    assert again.error and "request #1 is approved" in again.text
    events = [(e.actor, e.action, e.outcome) for e in await session.runtime.store.history("demo")]
    assert ("console:me", "publish", "requested") in events
    assert ("console:other", "approve", "ok") in events
    assert ("console:me", "publish", "ok") in events  # it ran as its requester


async def test_a_denied_or_expired_request_runs_nothing(session: Session) -> None:
    await released(session, "1.0.0", "alipay")
    commands = _with_approvals(session)
    await commands.handle(ME, "offline demo alipay")
    denied = await commands.handle(OTHER, "deny 1 not during the sale")
    assert "🚫 Request #1 denied by console:other: not during the sale" in denied.text
    assert await session.state("1.0.0", "alipay") is S.RELEASED

    short = Commands(
        session.runtime.service,
        approval_lifetime=timedelta(seconds=-1),
        admin=session.runtime.admin,
    )
    await short.handle(ME, "offline demo alipay")
    late = await short.handle(OTHER, "approve 2")
    assert late.error and "request #2 is expired" in late.text
    assert await session.state("1.0.0", "alipay") is S.RELEASED
    assert "No requests are waiting" in (await commands.handle(OTHER, "requests")).text


# -- rejection triage --------------------------------------------------------------------------


async def test_a_rejection_shows_its_reason_screenshots_and_next_steps(
    session: Session, tmp_path: Path
) -> None:
    session.console.pictures = tmp_path / "qr"
    await session.run("upload demo 1.0.0 checkout #reject")
    await session.run("submit demo 1.0.0")
    session.decide_reviews()
    out = await session.watch()
    assert "[review] demo 1.0.0 on WeChat: in review → rejected" in out, out
    assert "reason:" in out
    assert "next: fix what the reviewers found, then `submit demo wechat 1.0.0` again" in out
    assert "`upload demo wechat <version> <notes>`" in out
    # Alipay can send a rejected version back to development; WeChat has nothing to undo
    assert "`withdraw demo alipay 1.0.0`" in out and "withdraw demo wechat" not in out
    saved = sorted((tmp_path / "qr").glob("demo-1.0.0-wechat-review-*.png"))
    assert len(saved) == 2 and all(p.read_bytes().startswith(b"\x89PNG") for p in saved)
    assert "screenshot at http" in out  # Alipay gives links: shown, never fetched
    out = await session.run("withdraw demo 1.0.0")
    assert "✓ Alipay" in out and "back to development" in out, out
    assert "WeChat" in out and "nothing to withdraw" in out, out
    assert await session.state("1.0.0", "alipay") is ReleaseState.WITHDRAWN
    out = await session.run("submit demo alipay 1.0.0")
    assert "✓ Alipay" in out, out


async def test_a_delayed_review_offers_expedite_where_the_platform_takes_it(
    session: Session,
) -> None:
    await session.run("upload demo 1.0.0 checkout #delay")
    await session.run("submit demo 1.0.0")
    session.clock.advance(REVIEW / 2 + 1)  # delayed first, decided later
    out = await session.watch()
    assert "next: `expedite demo wechat 1.0.0` asks WeChat for a faster review" in out, out
    assert "expedite demo alipay" not in out


# -- found by review ---------------------------------------------------------------------------


async def test_yes_counts_only_as_the_last_word_and_override_only_where_it_means(
    session: Session,
) -> None:
    await session.run("upload demo 1.2.0 first")
    out = await session.run("upload demo 3.0.0 please answer --yes when asked")
    assert "skips from major version 1 to 3" in out and "Not run" in out, out
    out = await session.run("upload demo wechat 1.2.1 fixes --override flag parsing")
    assert "✓ WeChat" in out, out
    release = await session.runtime.store.release("demo", "1.2.1")
    assert release is not None and release.notes == "fixes --override flag parsing"


async def test_someone_elses_lock_is_lifted_only_with_the_override_role(
    session: Session,
) -> None:
    rt = session.runtime
    commands = Commands(rt.service, NoOverride(), timed=rt.timed, admin=rt.admin)
    await commands.handle(ME, "lock demo mine")
    out = await commands.handle(OTHER, "unlock demo")
    assert out.error and "You need the *override* role for demo" in out.text, out.text
    out = await commands.handle(ME, "unlock demo")
    assert "Lifted lock #1 of demo" in out.text, out.text


async def test_an_offline_in_the_console_moves_every_release_recorded_live(
    session: Session,
) -> None:
    await released(session, "1.0.0", "alipay")
    await released(session, "2.0.0", "alipay")
    service = session.runtime.service
    await service.adapters["alipay"].offline("demo", "2.0.0")
    changes = await service.reconcile_live()
    assert {(c.version, c.new) for c in changes} == {("1.0.0", S.OFFLINE), ("2.0.0", S.OFFLINE)}
    assert await service.reconcile_live() == []  # once, not one release a round


def test_a_weekly_window_across_a_daylight_saving_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    window = FreezeWindow((), "night", weekly=(6, time(1, 0), 6, time(2, 30)))
    # 2026-10-25: clocks go back at 03:00 CEST to 02:00 CET
    inside = datetime(2026, 10, 25, 0, 10, tzinfo=UTC)  # 02:10 CEST, inside 01:00–02:30
    start, end = window.covering(inside, berlin) or (None, None)
    assert start is not None and end is not None and start <= inside < end
    after = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 CET: past 02:30 CEST's instant?
    found = window.covering(after, berlin)
    assert found is None or found[0] <= after < found[1]  # never an end already past


def test_versions_made_before_the_rule_still_compare() -> None:
    from handlers.versions import Version, readable

    assert readable("2.3") == Version(2, 3, 0)
    assert readable("V1.5") == Version(1, 5, 0)
    assert readable("01.02.03") == Version(1, 2, 3)
    assert readable("153") is None  # a build counter, not compared
    assert readable("1.2.3.4") is None and readable("beta") is None
