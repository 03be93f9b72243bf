"""Fleet runs: a command over a group of apps, asked once, run with bounded concurrency
and pace, slowed down by rate limits, cancelled, retried, resumed after a restart with no
app run twice, and refused when WeChat's audit quota would not cover it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlmodel import col

from handlers import render, views
from handlers.commands import Args, Command, Commands, Reply, _registry
from handlers.config import AppEntry, Roles
from handlers.fleet import Fleets, ItemResult
from handlers.releases import Actor
from handlers.roles import RoleCheck
from handlers.views import TargetLine
from storage import FleetState, ItemState, ReleaseState
from storage.models import FleetItem, FleetRun, utcnow
from tests.handlers.harness import Session, settings_for
from tests.helpers import FakeClock, clocked_runtime

ME = Actor("console:tester")


async def merchants(session: Session, count: int, tag: str = "shops") -> list[str]:
    """``count`` mini programs authorized on the emulated WeChat platform, synced as apps
    tagged ``tag``; their keys."""
    wechat = session.runtime.emulators["wechat"]
    made = wechat.add_merchants(count, start=100)
    out = await session.run(f"apps sync wechat tag {tag}")
    assert f"added {count + 3}:" in out, out  # and the 3 seeded ones
    for key in ("wx0000000000000001", "wx0000000000000002", "wx0000000000000003"):
        await session.run(f"app untag {key} {tag}")
    return made


def fleets(session: Session) -> Fleets:
    return Fleets.of(session.runtime.service)


async def test_a_group_command_asks_once_then_runs_over_every_app(session: Session) -> None:
    apps = await merchants(session, 5)
    out = await session.run("upload @shops 1.3.0 template 1 autumn menu")
    assert "Run `upload @shops 1.3.0 template 1 autumn menu` on 5 apps (WeChat 5)?" in out, out
    assert "Not run" in out
    out = await session.run("upload @shops 1.3.0 template 1 autumn menu --yes")
    assert "Fleet run #1: `upload @shops 1.3.0 template 1 autumn menu` on 5 apps." in out, out
    assert "#1 upload @shops 1.3.0 template 1 autumn menu [████████████████████] 5 / 5 done" in out
    for key in apps:
        assert await session.state_of(key, "1.3.0", "wechat") is ReleaseState.UPLOADED
        release = await session.runtime.store.release(key, "1.3.0")
        assert release is not None and release.notes == "autumn menu"
    out = await session.run("submit @shops 1.3.0 --yes")
    assert "5 / 5 done — done" in out, out
    listed = await session.run("fleet")
    assert "#2 submit @shops 1.3.0" in listed and "#1 upload @shops" in listed
    assert "in review" in await session.run("status @shops")


async def test_failures_are_listed_with_the_reason_and_retried_alone(session: Session) -> None:
    apps = await merchants(session, 4)
    await session.run(f"upload {apps[0]} 2.0.0 template 1 ahead of the others")
    out = await session.run("upload @shops 1.3.0 template 1 menu --yes")
    assert "4 / 4 done · 1 failed — done" in out, out
    assert f"✗ {apps[0]}: Not uploaded: 1.3.0 is not higher than 2.0.0" in out, out
    progress = await fleets(session).progress(1)
    assert progress.counts == {"ok": 3, "failed": 1}
    assert progress.run.state == FleetState.DONE
    out = await session.run("fleet 1")
    assert "`fleet 1 retry` runs the failed apps again" in out
    executed: list[str] = []
    commands = session.runtime.commands()
    real = commands.fleet_item

    async def counting(actor: Actor, line: str, channel: str | None) -> ItemResult:
        executed.append(line.split()[1])
        return await real(actor, line, channel)

    commands.fleet_item = counting  # type: ignore[method-assign]
    asked = await commands.handle(ME, "fleet 1 retry")  # asked first, as the run was
    assert asked.asked is not None and not executed, asked.text
    assert asked.text.startswith(
        "Run `upload @shops 1.3.0 template 1 menu` again on the 1 app of fleet run #1 that "
        "failed or were cancelled (WeChat 1), as you?"
    ), asked.text
    assert (await fleets(session).progress(1)).run.state == FleetState.DONE
    await commands.handle(ME, "fleet 1 retry --yes")
    await fleets(session).wait(1)
    assert executed == [apps[0]]  # only the failed one ran again (and failed again)
    assert (await fleets(session).progress(1)).counts == {"ok": 3, "failed": 1}


async def test_a_rate_limit_slows_the_whole_run_and_every_app_goes_through(
    session: Session,
) -> None:
    await merchants(session, 6)
    pauses: list[float] = []

    async def noted(seconds: float) -> None:
        pauses.append(seconds)

    fleets(session).sleep = noted
    wechat = session.runtime.emulators["wechat"]
    wechat.inject("/wxa/commit", "rate_limit", times=2)
    out = await session.run("upload @shops 1.3.0 template 1 menu --yes")
    assert "6 / 6 done — done" in out, out
    assert (await fleets(session).progress(1)).counts == {"ok": 6}
    assert pauses, "the run did not slow down"
    items = await session.runtime.store.fleet_items(1)
    assert sum(i.attempts for i in items) == 2  # the two refused apps went again, once each


async def test_a_run_larger_than_the_audit_quota_is_refused(session: Session) -> None:
    await merchants(session, 4)
    await session.run("upload @shops 1.3.0 template 1 menu --yes")
    session.runtime.emulators["wechat"].quota_limit = 3  # type: ignore[attr-defined]
    out = await session.run("submit @shops 1.3.0 --yes")
    assert "Not started: 4 WeChat submissions, but the platform's audit quota has 3 left" in out
    assert (await session.runtime.store.fleets()) and len(await session.runtime.store.fleets()) == 1
    session.runtime.emulators["wechat"].quota_limit = 20  # type: ignore[attr-defined]
    out = await session.run("submit @shops 1.3.0")
    assert "WeChat's audit quota: 20 left this month, 4 used by this." in out, out


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("upload @nobody 1.0.0 x", "Nothing to do: no app you have the release role for is tagged"),
        ("upload @shops", "which version"),
        ("upload @shops banana", "neither a platform"),
        ("submit @shops alipay 1.0.0", "no app you have the release role for is tagged @shops on"),
        ("fleet 99", "There is no fleet run #99"),
        ("fleet 99 cancel", "There is no fleet run #99"),
        ("fleet x", "is not a fleet run id"),
    ],
)
async def test_bad_group_lines_are_refused_and_start_nothing(
    session: Session, line: str, said: str
) -> None:
    await merchants(session, 2)
    out = await session.run(line)
    assert said in out, out
    assert await session.runtime.store.fleets() == []


async def test_cancel_stops_the_rest_and_retry_takes_it_up(session: Session) -> None:
    apps = await merchants(session, 5)
    service = session.runtime.service
    fleet = Fleets(service, concurrency=1, rate=1000)
    gate = asyncio.Event()
    done: list[str] = []

    async def slow(actor: Actor, line: str, channel: str | None) -> ItemResult:
        await gate.wait()
        done.append(line.split()[1])
        return ItemResult(ItemState.OK, "uploaded")

    items = [(k, f"upload {k} 1.3.0 template 1 x") for k in apps]
    run = await fleet.start(ME, "upload @shops 1.3.0 template 1 x", items, None, slow)
    assert run.id is not None
    await asyncio.sleep(0.05)  # the one worker holds the first app
    progress = await fleet.cancel(ME, run.id)
    assert progress.counts == {"running": 1, "cancelled": 4}
    gate.set()
    await fleet.wait(run.id)
    assert done == [apps[0]]  # what ran stays done; nothing else started
    assert (await fleet.progress(run.id)).counts == {"ok": 1, "cancelled": 4}
    with pytest.raises(LookupError, match="is cancelled; it cannot be cancelled"):
        await fleet.cancel(ME, run.id)
    await fleet.retry(ME, run.id, slow)
    await fleet.wait(run.id)
    assert sorted(done) == sorted(apps)
    assert (await fleet.progress(run.id)).run.state == FleetState.DONE


@pytest.mark.both_databases
async def test_a_restart_resumes_the_apps_not_done_each_once(
    tmp_path: Path, database_url: str
) -> None:
    ran: Counter[str] = Counter()

    async def record(actor: Actor, line: str, channel: str | None) -> ItemResult:
        ran[line.split()[1]] += 1
        return ItemResult(ItemState.OK, "done")

    settings = settings_for(tmp_path, database_url)
    async with clocked_runtime(settings, FakeClock()) as rt:
        items = [(f"app{n}", f"submit app{n} 1.0.0") for n in range(6)]
        run = await rt.store.add_fleet("submit @shops 1.0.0", ME.id, None, items)
        assert run.id is not None
        first = await rt.store.claim_item(run.id)  # a process took one, then died
        second = await rt.store.claim_item(run.id)
        assert first is not None and second is not None
        await rt.store.finish_item(first, ItemState.OK, "done before the crash")
    async with clocked_runtime(settings, FakeClock()) as rt:
        fleet = Fleets(rt.service, rate=1000)
        assert await fleet.resume(record) == [run.id]
        await fleet.wait(run.id)
        assert ran == {f"app{n}": 1 for n in range(2, 6)}  # app1 is still "running" …
        assert (await fleet.progress(run.id)).run.state == FleetState.RUNNING  # … not stale
        assert await rt.store.requeue_stale_items(before=datetime(9999, 1, 1, tzinfo=UTC)) == 1
        assert await fleet.resume(record) == [run.id]
        await fleet.wait(run.id)
        assert ran == {f"app{n}": 1 for n in range(1, 6)}  # app0 was done: never again
        assert (await fleet.progress(run.id)).run.state == FleetState.DONE


@pytest.mark.both_databases
async def test_the_leader_takes_up_a_run_whose_process_stopped(
    tmp_path: Path, database_url: str
) -> None:
    """A run another replica drove goes on without a restart: once nothing happened to
    it for a while (its replica stopped), the leader drives it; an active run, or one this
    process drives, is left alone."""
    ran: Counter[str] = Counter()

    async def record(actor: Actor, line: str, channel: str | None) -> ItemResult:
        ran[line.split()[1]] += 1
        return ItemResult(ItemState.OK, "done")

    settings = settings_for(tmp_path, database_url)
    async with clocked_runtime(settings, FakeClock()) as rt:
        store = rt.store
        items = [(f"app{n}", f"submit app{n} 1.0.0") for n in range(4)]
        idle = await store.add_fleet("submit @shops 1.0.0", ME.id, None, items)
        busy = await store.add_fleet("submit @cafes 1.0.0", ME.id, None, items)
        assert idle.id is not None and busy.id is not None
        done = await store.claim_item(idle.id)
        left = await store.claim_item(idle.id)  # the other replica died running it
        assert done is not None and left is not None
        await store.finish_item(done, ItemState.OK, "done before it stopped")
        long_ago = utcnow() - timedelta(minutes=30)
        async with store.session() as s:
            await s.exec(update(FleetRun).values(created_at=long_ago))
            await s.exec(
                update(FleetItem)
                .where(col(FleetItem.run_id) == idle.id, col(FleetItem.started_at).is_not(None))
                .values(started_at=long_ago, finished_at=long_ago)
            )
            await s.commit()
        assert await store.claim_item(busy.id) is not None  # its replica is at it now

        fleet = Fleets(rt.service, rate=1000)
        assert await fleet.take_up_idle(record) == [idle.id]
        await fleet.wait(idle.id)
        assert ran == {"app1": 1, "app2": 1, "app3": 1}  # app0 was done: never again
        assert (await fleet.progress(idle.id)).run.state == FleetState.DONE
        assert await fleet.take_up_idle(record) == []  # the busy run is another's


async def test_two_hundred_apps_with_failures_and_a_rate_limit(session: Session) -> None:
    """At fleet scale: every app is run once, the failures are named with the platform's
    reason, a rate-limit answer slows the run down instead of failing apps."""
    apps = await merchants(session, 200)
    for key in apps[:3]:  # three apps already ahead: the version rule refuses them
        await session.run(f"upload {key} 9.0.0 template 1 ahead")
    fleets(session).sleep = _no_wait
    session.runtime.emulators["wechat"].inject("/wxa/commit", "rate_limit", times=3)
    out = await session.run("upload @shops 1.3.0 template 1 menu --yes")
    assert "200 / 200 done · 3 failed — done" in out, out
    for key in apps[:3]:
        assert f"✗ {key}: Not uploaded: 1.3.0 is not higher than 9.0.0" in out
    items = await session.runtime.store.fleet_items(1)
    assert Counter(i.state for i in items) == {"ok": 197, "failed": 3}
    events = await session.runtime.store.events(apps, actions=["upload"], limit=None)
    uploads = [e for e in events if e.outcome == "ok" and e.version == "1.3.0"]
    assert Counter(e.app_key for e in uploads) == {key: 1 for key in apps[3:]}


async def _no_wait(seconds: float) -> None:
    return None


async def test_a_group_status_counts_and_names_what_needs_attention(session: Session) -> None:
    apps = await merchants(session, 6)
    for key in apps[:2]:
        await session.run(f"upload {key} 1.0.0 template 1 menu #reject")
    out = await session.run("upload @shops 1.0.0 template 1 menu --yes")
    assert "6 / 6 done · 2 skipped — done" in out, out
    await session.run("submit @shops 1.0.0 --yes")
    session.decide_reviews()
    await session.watch()
    out = await session.run("status @shops")
    assert "@shops — 6 apps (their newest releases; times in Asia/Shanghai)" in out, out
    assert "WeChat: 4 approved · 2 rejected" in out
    assert "needs attention (2):" in out
    assert f"{apps[0]} 1.0.0 on WeChat: rejected since" in out
    everything = await session.run("status")  # more apps than a detailed view holds
    assert "all — 10 apps" in everything and "no release yet" in everything, everything
    detail = await session.run(f"status {apps[2]}")
    assert f"{apps[2]} — 商户 102" in detail  # one app: its detail, the platforms asked
    second = await session.run("status @shops wechat page 2")
    assert "there is no page 2; the last is `status @shops wechat page 1`" in second, second
    refused = await session.run(f"status {apps[2]} page 2")
    assert "pages are for groups" in refused, refused
    assert "is not a page (a number)" in await session.run("status all page two")


def test_the_digest_and_a_group_status_fit_a_message_at_a_thousand_apps() -> None:
    """Slack takes 40,000 characters a message (and asks for under 4,000 in a section)."""
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    zone = ZoneInfo("Asia/Shanghai")
    lines = [
        TargetLine(
            f"shop{n:04d}",
            "1.3.0",
            "wechat",
            ReleaseState.IN_REVIEW,
            "submitted",
            now - timedelta(hours=n % 90),
            "",
            now - timedelta(hours=n % 90),
            None,
            now - timedelta(hours=n % 90),
        )
        for n in range(1000)
    ]
    text = render.digest(zone, now, in_review=lines, released=lines, planned=[])
    assert len(text) < 4000, len(text)
    assert "In review (1000, longest waiting first):" in text
    assert "… and 980 more in review (`status all`)" in text
    first = text.splitlines()[2]
    assert first == "  shop0089 1.3.0 on WeChat: in review for 3 d 17 h", first  # waited longest
    view = views.GroupStatus(
        "all",
        1000,
        {"wechat": {"in review": 1000}},
        {},
        [views.Attention(t, "in review for 3 d") for t in lines],
    )
    said = render.group_status(view, zone)
    assert len(said) < 4000 and "… and 975 more: `status all page 2`" in said, len(said)
    assert "needs attention (1000, page 1 of 40):" in said
    last = render.group_status(view, zone, 40, "status @shops wechat")
    assert "page 40 of 40" in last and "more:" not in last, last
    assert last.splitlines()[-1].strip() == attention_line_of(view, zone, 999)
    beyond = render.group_status(view, zone, 41, "status @shops wechat")
    assert "there is no page 41; the last is `status @shops wechat page 40`" in beyond


def attention_line_of(view: views.GroupStatus, zone: ZoneInfo, n: int) -> str:
    return render.attention_line(view.attention[n], zone)


async def test_a_group_line_reads_platforms_and_overrides_as_one_app_line_does(
    session: Session,
) -> None:
    apps = await merchants(session, 2)
    out = await session.run("upload @shops 1.3.0 template 1 fix the alipay login --yes")
    assert "2 / 2 done — done" in out, out  # "alipay" in the notes names no platform
    await session.run("submit @shops 1.3.0 --yes")
    session.decide_reviews()
    await session.watch()
    await session.run("freeze all for 2h maintenance")
    out = await session.run("publish @shops 1.3.0 --override hotfix for the menu --yes")
    assert "2 / 2 done — done" in out, out
    for key in apps:
        assert await session.state_of(key, "1.3.0", "wechat") is ReleaseState.RELEASED


async def test_a_group_status_takes_each_platforms_newest_release(session: Session) -> None:
    await session.run("upload demo 1.0.0 first")
    await session.run("submit demo 1.0.0")
    await session.run("upload demo wechat 1.1.0 wechat only")
    await session.run("app tag demo core")
    rt = session.runtime
    keys = ["demo"]
    newest = await rt.store.newest(keys)
    assert sorted((v.release.version, v.target.platform) for v in newest) == [
        ("1.0.0", "alipay"),
        ("1.1.0", "wechat"),
    ]
    out = await session.run("status @core")
    assert "demo —" in out  # one app: its detail


async def test_a_sync_with_the_platform_down_changes_nothing(session: Session) -> None:
    session.runtime.emulators["wechat"].inject("*", "unavailable", times=20)
    out = await session.run("apps sync wechat")
    assert "could not ask WeChat which mini programs authorize it" in out, out
    assert "Nothing was changed." in out
    assert [r.key for r in await session.runtime.store.apps()] == ["demo"]


def _strict(session: Session) -> Commands:
    """The session's apps with roles, checked for Slack people: demo may be released by
    U0ANN and U0BOB and published by U0ANN only; a file app `back` (no platforms) is seen
    by U0ANN only; the synced apps are open to all. Commands checking them."""
    rt = session.runtime
    config = rt.service.config
    demo = dataclasses.replace(
        config.in_file["demo"], roles=Roles(release=("U0ANN", "U0BOB"), publish=("U0ANN",))
    )
    back = AppEntry("back", "Back office", demo.timezone, roles=Roles(view=("U0ANN",)))
    rt.service.config = dataclasses.replace(config, file_apps={"demo": demo, "back": back})
    return Commands(rt.service, RoleCheck(_no_groups), admin=rt.admin)


async def _no_groups(group: str) -> frozenset[str]:
    return frozenset()


async def test_people_see_and_steer_only_the_runs_over_apps_they_may_act_on(
    session: Session,
) -> None:
    (shop,) = await merchants(session, 1)
    commands = _strict(session)
    await session.runtime.admin.apps.load()
    store = session.runtime.store
    ann, bob = Actor("U0ANN"), Actor("U0BOB")
    hidden = await store.add_fleet("upload @x 1.0.0 x", ann.id, None, [("back", "…"), (shop, "…")])
    publish = await store.add_fleet("publish @y 1.0.0", ann.id, None, [("demo", "…"), (shop, "…")])
    nudge = await store.add_fleet("nudge @y 1.0.0", ann.id, None, [("demo", "…"), (shop, "…")])

    listed = (await commands.handle(bob, "fleet")).text
    assert f"#{nudge.id} nudge" in listed and f"#{publish.id} publish" in listed, listed
    assert f"#{hidden.id} upload" not in listed
    assert f"#{hidden.id} upload" in (await commands.handle(ann, "fleet")).text
    for line in (f"fleet {hidden.id}", f"fleet {hidden.id} cancel", f"fleet {hidden.id} retry"):
        reply = await commands.handle(bob, line)
        assert reply.error and reply.text == (
            f"There is no fleet run #{hidden.id}; `fleet` lists them."
        ), reply.text
    assert "started by U0ANN" in (await commands.handle(ann, f"fleet {hidden.id}")).text

    # cancelling needs the role of the run's command on every app of it
    reply = await commands.handle(bob, f"fleet {publish.id} cancel")
    assert reply.error and "You need the *publish* role for demo" in reply.text, reply.text
    assert "the roles of demo are set in miniship.toml" in reply.text
    nudging = Command(
        name="nudge",
        usage="nudge <app> <version>",
        summary="a fleet command of the release role (the tests')",
        read=lambda words: Args(),
        run=_nothing,
        role="release",
        fleet=True,
    )
    _registry.register(nudging)
    try:
        reply = await commands.handle(bob, f"fleet {nudge.id} cancel")
    finally:
        _registry.unregister("nudge")
    assert not reply.error and "— cancelled" in reply.text, reply.text
    for run in (hidden, publish):
        assert (await fleets(session).progress(run.id or 0)).run.state == FleetState.RUNNING


async def _nothing(context: object, args: object) -> Reply:
    return Reply("")


async def test_a_retry_runs_as_who_asked_for_it(session: Session) -> None:
    apps = await merchants(session, 2)
    await session.run(f"upload {apps[0]} 2.0.0 template 1 ahead")
    out = await session.run("upload @shops 1.3.0 template 1 menu --yes")
    assert "2 / 2 done · 1 failed — done" in out, out
    commands = _strict(session)
    ran: list[str] = []
    real = commands.fleet_item

    async def noted(actor: Actor, line: str, channel: str | None) -> ItemResult:
        ran.append(actor.id)
        return await real(actor, line, channel)

    commands.fleet_item = noted  # type: ignore[method-assign]
    reply = await commands.handle(Actor("U0BOB"), "fleet 1 retry --yes")
    assert not reply.error, reply.text
    await fleets(session).wait(1)
    assert ran == ["U0BOB"]
    events = await session.runtime.store.events([apps[0]], actions=["upload"], limit=None)
    tries = [(e.actor, e.outcome) for e in events if e.version == "1.3.0"]
    assert sorted(tries) == [("U0BOB", "refused"), (ME.id, "refused")], tries
    shown = (await commands.handle(Actor("U0BOB"), "fleet 1")).text
    assert f"started by {ME.id}" in shown and "retried by U0BOB" in shown, shown
