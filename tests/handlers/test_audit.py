"""Audit queries: ``history <app|all> …`` filtered, paged past the newest 30, exported as
CSV; the store's query beneath it; who sees what with ``all``."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from handlers import render
from handlers.commands import Commands, Reply, UsageError, parse
from handlers.commands import history as history_command
from handlers.commands._kit import Attachment
from handlers.commands.history import EXPORT_LIMIT, PAGE, HistoryArgs, ago, moment
from handlers.config import AppEntry, MinishipConfig, Roles
from handlers.releases import Actor, CommandRefused
from handlers.roles import RoleCheck
from handlers.views import EventView
from storage import Store
from storage.models import Event
from tests.handlers.harness import Session

pytestmark = pytest.mark.both_databases  # its SQL matters: both databases

P = ["wechat", "alipay"]
NOW = datetime(2026, 12, 10, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
SHANGHAI = ZoneInfo("Asia/Shanghai")
ROOT = Actor("console:root")


async def add(
    store: Store,
    at: datetime,
    *,
    app: str | None = "demo",
    actor: str = "U0DEV",
    action: str = "upload",
    outcome: str = "ok",
    platform: str | None = "wechat",
    version: str | None = "1.0.0",
    message: str = "",
) -> int:
    """One event, at ``at`` (``Store.record`` stamps the present); its id."""
    async with store.session() as s:
        row = Event(
            at=at,
            app_key=app,
            actor=actor,
            action=action,
            outcome=outcome,
            platform=platform,
            version=version,
            message=message,
        )
        s.add(row)
        await s.commit()
        assert row.id is not None
        return row.id


def args_of(line: str) -> HistoryArgs:
    args = parse(line, P).args
    assert isinstance(args, HistoryArgs)
    return args


def listed(text: str) -> list[str]:
    """The messages a history page shows, in order (each event's message is ``#n``)."""
    return re.findall(r"— (#\w+)$", text, re.MULTILINE)


# -- the store's query ----------------------------------------------------------------------


async def test_events_filters_newest_first(store: Store) -> None:
    t = NOW - timedelta(days=10)
    ids = {
        "a": await add(store, t, action="upload", platform="wechat"),
        "b": await add(store, t + timedelta(hours=1), action="publish", platform="alipay"),
        "c": await add(store, t + timedelta(hours=2), action="publish", platform=None),
        "d": await add(store, t + timedelta(hours=3), actor="U0LEAD", action="gray"),
        "shop": await add(store, t + timedelta(hours=4), app="shop"),
        "none": await add(store, t + timedelta(hours=5), app=None, action="template add"),
    }
    name = {v: k for k, v in ids.items()}

    async def found(apps: list[str], **kw: object) -> list[str]:
        return [name[e.id] for e in await store.events(apps, **kw) if e.id is not None]  # type: ignore[arg-type]

    assert await found(["demo"]) == ["d", "c", "b", "a"]
    assert await found(["demo", "shop"]) == ["shop", "d", "c", "b", "a"]
    assert await found(["demo", "shop"], unscoped=True) == ["none", "shop", "d", "c", "b", "a"]
    assert await found([]) == [] and await found([], unscoped=True) == ["none"]
    # a platform keeps the events naming none (a command refused on every platform)
    assert await found(["demo"], platforms=["alipay"]) == ["c", "b"]
    assert await found(["demo"], actions=["publish", "gray"]) == ["d", "c", "b"]
    assert await found(["demo"], actor="U0LEAD") == ["d"]
    assert await found(["demo"], actor="U0") == []  # exact, not a prefix
    since, until = t + timedelta(hours=1), t + timedelta(hours=3)
    assert await found(["demo"], since=since) == ["d", "c", "b"]  # at or after
    assert await found(["demo"], until=until) == ["c", "b", "a"]  # strictly before
    assert await found(["demo"], since=since, until=until) == ["c", "b"]
    assert await found(["demo"], before=ids["c"]) == ["b", "a"]
    assert await found(["demo"], limit=2) == ["d", "c"]
    assert await found(["demo"], before=ids["c"], limit=1) == ["b"]
    assert len(await found(["demo"], limit=None)) == 4


async def test_events_pages_by_id_stay_put_as_new_events_arrive(store: Store) -> None:
    for n in range(7):
        await add(store, NOW - timedelta(minutes=10 - n), message=f"#{n}")
    first = await store.events(["demo"], limit=3)
    assert [e.message for e in first] == ["#6", "#5", "#4"]
    await add(store, NOW, message="#new")  # arrives between two pages
    second = await store.events(["demo"], before=first[-1].id, limit=3)
    assert [e.message for e in second] == ["#3", "#2", "#1"]
    third = await store.events(["demo"], before=second[-1].id, limit=3)
    assert [e.message for e in third] == ["#0"]


# -- reading the words --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("history demo", HistoryArgs(app="demo")),
        ("history ALL", HistoryArgs(app=None)),
        ("history demo wechat", HistoryArgs(app="demo", platforms=("wechat",))),
        (
            "history all alipay --action publish,GRAY --by <@U0LEAD|lead> --since 30d "
            "--until 2026-12-01 export",
            HistoryArgs(
                app=None,
                platforms=("alipay",),
                actions=("publish", "gray"),
                actor="U0LEAD",
                since=timedelta(days=30),
                until=date(2026, 12, 1),
                export=True,
            ),
        ),
        ("history demo --by <@U0LEAD>", HistoryArgs(app="demo", actor="U0LEAD")),
        ("history demo --by <@U0LEAD|Li Lei>", HistoryArgs(app="demo", actor="U0LEAD")),
        ("history demo --by @U0LEAD", HistoryArgs(app="demo", actor="U0LEAD")),
        ("history demo --by U0LEAD", HistoryArgs(app="demo", actor="U0LEAD")),
        ("history demo --by console:root", HistoryArgs(app="demo", actor="console:root")),
        ("history demo --by scheduler", HistoryArgs(app="demo", actor="scheduler")),
        ("history demo --by=U0LEAD", HistoryArgs(app="demo", actor="U0LEAD")),
        (
            "history demo --action publish, gray",
            HistoryArgs(app="demo", actions=("publish", "gray")),
        ),
        (
            "history demo --action template",
            HistoryArgs(app="demo", actions=("template add", "template delete")),
        ),
        ("history demo --action template-add", HistoryArgs(app="demo", actions=("template add",))),
        ("history demo --since 12h", HistoryArgs(app="demo", since=timedelta(hours=12))),
        ("history demo --since 90m", HistoryArgs(app="demo", since=timedelta(minutes=90))),
        ("history demo --since 2w", HistoryArgs(app="demo", since=timedelta(weeks=2))),
        ("history demo --since 1d12h", HistoryArgs(app="demo", since=timedelta(hours=36))),
        ("history demo —since 2D", HistoryArgs(app="demo", since=timedelta(days=2))),  # em dash
        ("history demo --since 2026/12/1", HistoryArgs(app="demo", since=date(2026, 12, 1))),
        ("history demo --before 812", HistoryArgs(app="demo", before=812)),
        ("history demo --before #812", HistoryArgs(app="demo", before=812)),
        ("history demo export --before 9", HistoryArgs(app="demo", before=9, export=True)),
        (
            "history demo --since 2026-12-01 --until 2026-12-01",  # that day, in full
            HistoryArgs(app="demo", since=date(2026, 12, 1), until=date(2026, 12, 1)),
        ),
        (
            "history demo --until 1d --since 2d wechat",
            HistoryArgs(
                app="demo",
                platforms=("wechat",),
                since=timedelta(days=2),
                until=timedelta(days=1),
            ),
        ),
    ],
)
def test_history_reads(line: str, expected: HistoryArgs) -> None:
    assert args_of(line) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("history", "which app"),
        ("history demo more", "unexpected `more`"),
        ("history demo --since", "`--since` needs a value"),
        ("history demo --by=", "`--by` needs a value"),
        ("history demo --since 30", "neither a duration"),
        ("history demo --since 30x", "neither a duration"),
        ("history demo --since -3d", "neither a duration"),
        ("history demo --since ３d", "neither a duration"),  # ASCII digits only
        ("history demo --since 0d", "more than zero"),
        ("history demo --since 36526d", "hundred years"),
        ("history demo --since 9999999w", "hundred years"),
        ("history demo --since 2026-02-30", "not a date"),
        ("history demo --until 2026-13-01", "not a date"),
        ("history demo --since 1d --until 2d", "must come after"),
        ("history demo --since 2026-12-02 --until 2026-12-01", "must come after"),
        ("history demo --since 1d --since 2d", "given twice"),
        ("history demo --action publish --actions gray", "given twice"),
        ("history demo --action rolout", "not an action miniship records; did you mean `rollout`"),
        ("history demo export export", "given twice"),
        ("history demo --by @alice", "is a name"),
        ("history demo --by <@alice>", "not someone"),
        ("history demo --by a,b", "not someone"),
        ("history demo --action ,", "which actions"),
        ("history demo --action Publish!", "not an action"),
        ("history demo --action " + ",".join(["publish"] * 21), "at most 20"),
        ("history demo --before x", "not an event id"),
        ("history demo --before 1" + "0" * 18, "not an event id"),
        ("history demo --page 2", "unexpected `--page"),
        ("history de/mo", "not an app name"),
    ],
)
def test_bad_history_explains_itself(line: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse(line, P)
    assert message in err.value.message
    assert err.value.command == "history"
    assert err.value.usage.startswith("history <app|all>")


async def test_the_view_role_of_the_app_named_is_checked(session: Session) -> None:
    commands = two_apps(session, demo_view=("U0LEAD",))
    reply = await commands.handle(Actor("U0DEV"), "history demo wechat")
    assert reply.error and "You need the *view* role for demo" in reply.text, reply.text
    refused = await session.runtime.store.history("demo", 5)
    assert (refused[-1].actor, refused[-1].action, refused[-1].outcome) == (
        "U0DEV",
        "history",
        "refused",
    )


# -- the command --------------------------------------------------------------------------


def at_noon(session: Session) -> Commands:
    """The session's commands on a clock stopped at :data:`NOW`."""
    return Commands(session.runtime.service, admin=session.runtime.admin, clock=lambda: NOW)


async def test_history_pages_past_the_newest_30(session: Session) -> None:
    store, commands = session.runtime.store, at_noon(session)
    for n in range(65):
        await add(store, NOW - timedelta(hours=100 - n), message=f"#{n}")
    reply = await commands.handle(ROOT, "history demo")
    assert not reply.error
    assert listed(reply.text) == [f"#{n}" for n in range(35, 65)]  # newest last
    assert reply.text.startswith("History of demo (times in Asia/Shanghai):")
    follow = re.search(r"older events: `(history demo --before \d+)`", reply.text)
    assert follow is not None and f"{PAGE} shown" in reply.text
    for n in range(3):  # new events do not move the next page
        await add(store, NOW, message=f"#new{n}")
    reply = await commands.handle(ROOT, follow.group(1))
    assert listed(reply.text) == [f"#{n}" for n in range(5, 35)]
    follow = re.search(r"`(history demo --before \d+)`", reply.text)
    assert follow is not None
    reply = await commands.handle(ROOT, follow.group(1))
    assert listed(reply.text) == [f"#{n}" for n in range(5)]
    assert "older events" not in reply.text
    oldest = (await store.events(["demo"], limit=None))[-1].id
    reply = await commands.handle(ROOT, f"history demo --before {oldest}")
    assert reply.text == "demo: no older events"


async def test_history_filters_and_says_what_it_kept(session: Session) -> None:
    store, commands = session.runtime.store, at_noon(session)
    await add(store, NOW - timedelta(days=40), action="publish", message="#old")
    await add(store, NOW - timedelta(days=2), action="publish", platform="alipay", message="#ali")
    await add(store, NOW - timedelta(days=1), action="publish", actor="U0LEAD", message="#lead")
    await add(
        store,
        NOW - timedelta(hours=3),
        action="publish",
        outcome="refused",
        platform=None,
        message="#refused",
    )
    await add(store, NOW - timedelta(hours=2), action="gray", message="#gray")
    await add(store, NOW - timedelta(hours=1), action="publish", outcome="asked", message="#asked")

    async def shown(line: str) -> list[str]:
        reply = await commands.handle(ROOT, line)
        assert not reply.error, reply.text
        return listed(reply.text)

    assert await shown("history demo --action publish --since 30d") == [
        "#ali",
        "#lead",
        "#refused",
        "#asked",
    ]
    assert await shown("history demo alipay") == ["#ali", "#refused"]
    assert await shown("history demo --by <@U0LEAD|lead>") == ["#lead"]
    # --until is strictly before: #lead, at exactly 1d ago, is not
    assert await shown("history demo --action gray,publish --until 1d") == ["#old", "#ali"]
    assert await shown("history demo --since 3h --until 1h") == ["#refused", "#gray"]
    reply = await commands.handle(ROOT, "history demo alipay --action publish --by U0DEV")
    head = reply.text.splitlines()[0]
    assert head == "History of demo · on Alipay · publish · by U0DEV (times in Asia/Shanghai):"
    reply = await commands.handle(ROOT, "history demo --by U0NOBODY")
    assert reply.text == "demo · by U0NOBODY: no events match"


async def test_dates_are_days_in_the_apps_zone(session: Session) -> None:
    store, commands = session.runtime.store, at_noon(session)
    midnight = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # 2026-12-01 00:00 in Shanghai
    second = timedelta(seconds=1)
    await add(store, midnight - second, message="#nov30")
    await add(store, midnight, message="#dec1")
    await add(store, midnight + timedelta(days=1) - second, message="#dec1late")
    await add(store, midnight + timedelta(days=1), message="#dec2")
    reply = await commands.handle(ROOT, "history demo --since 2026-12-01 --until 2026-12-01")
    assert listed(reply.text) == ["#dec1", "#dec1late"]
    assert "since 2026-12-01 00:00 CST · before 2026-12-02 00:00 CST" in reply.text
    reply = await commands.handle(ROOT, "history demo --until 2026-11-30")
    assert listed(reply.text) == ["#nov30"]


async def test_windows_that_hold_nothing_are_refused(session: Session) -> None:
    commands = at_noon(session)
    reply = await commands.handle(ROOT, "history demo --since 2026-12-09 --until 2d")
    assert reply.error and "must come after" in reply.text  # 2d ago is 2026-12-08 12:00
    reply = await commands.handle(ROOT, "history demo --since 9999-12-31")
    assert not reply.error and "no events match" in reply.text
    reply = await commands.handle(ROOT, "history demo --since 0001-01-01 --until 9999-12-31")
    assert not reply.error


async def test_every_refusal_and_confirmation_is_in_the_history(session: Session) -> None:
    service = session.runtime.service
    demo = service.config.apps["demo"]
    service.config = MinishipConfig(
        {"demo": AppEntry(demo.key, demo.name, demo.timezone, demo.platforms, roles=STRICT)}
    )
    commands = Commands(service, RoleCheck(no_groups), confirm=("publish",))
    assert not (await commands.handle(Actor("U0DEV"), "upload demo wechat 1.0.0 notes")).error
    assert not (await commands.handle(Actor("U0DEV"), "submit demo wechat 1.0.0")).error
    session.decide_reviews()  # approved: the publish is worth asking about
    assert (await commands.handle(Actor("U0DEV"), "publish demo wechat 1.0.0")).error
    asked = await commands.handle(Actor("U0LEAD"), "publish demo wechat 1.0.0")
    assert asked.asked is not None
    await commands.answer(Actor("U0LEAD"), asked.asked.token, False)
    reply = await commands.handle(Actor("U0LEAD"), "history demo --action publish")
    lines = reply.text.splitlines()[1:]
    assert "U0DEV  publish 1.0.0 WeChat: refused — needs the publish role" in lines[0]
    assert "U0LEAD  publish 1.0.0 WeChat: asked" in lines[1]
    assert "U0LEAD  publish 1.0.0 WeChat: cancelled" in lines[2]


async def test_long_messages_are_one_clipped_line_in_a_listing(session: Session) -> None:
    store, commands = session.runtime.store, at_noon(session)
    await add(store, NOW, message="first line\nsecond  line " + "x" * 400)
    reply = await commands.handle(ROOT, "history demo")
    line = reply.text.splitlines()[1]
    assert "first line second line xxx" in line and line.endswith("…")
    assert len(line) < render.MESSAGE_SHOWN + 80


# -- who sees what with `all` ---------------------------------------------------------------

STRICT = Roles(view=("U0DEV", "U0LEAD"), release=("U0DEV",), publish=("U0LEAD",))


async def no_groups(group: str) -> frozenset[str]:
    return frozenset()


def two_apps(session: Session, demo_view: tuple[str, ...] = ("*",)) -> Commands:
    """demo (viewable by ``demo_view``) and shop (viewable by U0LEAD only, New York time)."""
    service = session.runtime.service
    demo = service.config.apps["demo"]
    service.config = MinishipConfig(
        {
            "demo": AppEntry(
                demo.key, demo.name, demo.timezone, demo.platforms, roles=Roles(view=demo_view)
            ),
            "shop": AppEntry(
                "shop", "Shop", ZoneInfo("America/New_York"), roles=Roles(view=("U0LEAD",))
            ),
        }
    )
    return Commands(service, RoleCheck(no_groups), clock=lambda: NOW)


async def test_all_shows_only_the_apps_one_may_view(session: Session) -> None:
    store = session.runtime.store
    commands = two_apps(session)
    await add(store, NOW - timedelta(hours=3), app="demo", message="#demo")
    await add(store, NOW - timedelta(hours=2), app="shop", message="#shop")
    await add(store, NOW - timedelta(hours=1), app=None, action="template add", message="#lib")

    dev = await commands.handle(Actor("U0DEV"), "history all")
    assert not dev.error and listed(dev.text) == ["#demo"]
    assert dev.text.startswith("History of every app you may view (demo) (times in")
    lead = await commands.handle(Actor("U0LEAD"), "history all")
    assert listed(lead.text) == ["#demo", "#shop", "#lib"]  # the shared library: who sees all
    assert "  shop  " in lead.text and "  —  " in lead.text  # each event names its app
    lead = await commands.handle(Actor("U0LEAD"), "history all --action template")
    assert listed(lead.text) == ["#lib"]

    refused = await commands.handle(Actor("U0DEV"), "history shop")
    assert refused.error and "*view* role for shop" in refused.text
    shop = await store.events(["shop"], actions=["history"])
    assert [(e.actor, e.outcome) for e in shop] == [("U0DEV", "refused")]  # recorded


async def test_all_takes_the_first_visible_apps_zone(session: Session) -> None:
    commands = two_apps(session, demo_view=("U0DEV",))
    await add(session.runtime.store, NOW, app="shop", message="#shop")
    reply = await commands.handle(Actor("U0LEAD"), "history all --since 2026-12-09")
    assert "(times in America/New_York)" in reply.text and listed(reply.text) == ["#shop"]
    assert "since 2026-12-09 00:00 EST" in reply.text  # NOW is 23:00 there


async def test_all_is_refused_to_who_may_view_nothing(session: Session) -> None:
    commands = two_apps(session, demo_view=("U0LEAD",))
    reply = await commands.handle(Actor("U0DEV"), "history all")
    assert reply.error and reply.text == "you may not view any app's history"
    reply = await commands.handle(Actor("U0DEV"), "history all export")
    assert reply.error


# -- CSV ----------------------------------------------------------------------------------

TRICKY = [
    'a, "quoted" message',
    "two\nlines\r\nand a CR",
    "审核通过：版本 1.2.0 已发布",
    '=HYPERLINK("http://x")',
    "-1 is not a formula",
    "",
]


def read_csv(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf")  # UTF-8's byte-order mark: Excel reads 中文
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def view(n: int, message: str, **kw: object) -> EventView:
    values: dict[str, object] = {
        "at": datetime(2026, 11, 30, 16, 0, 5, tzinfo=UTC),
        "actor": "U0LEAD",
        "action": "publish",
        "version": "1.2.0",
        "platform": "wechat",
        "outcome": "ok",
        "message": message,
        "id": n,
        "app_key": "demo",
    }
    values.update(kw)
    return EventView(**values)  # type: ignore[arg-type]


def test_csv_has_a_header_and_every_field_intact() -> None:
    events = [view(n, m) for n, m in enumerate(TRICKY, 1)]
    events.append(view(99, "x", version=None, platform=None, app_key=None, actor="@x"))
    rows = read_csv(render.history_csv(events, SHANGHAI))
    assert rows[0] == [
        "id",
        "at (UTC)",
        "at (Asia/Shanghai)",
        "actor",
        "action",
        "outcome",
        "app",
        "version",
        "platform",
        "message",
    ]
    first = rows[1]
    assert first[:9] == [
        "1",
        "2026-11-30T16:00:05Z",
        "2026-12-01T00:00:05+08:00",
        "U0LEAD",
        "publish",
        "ok",
        "demo",
        "1.2.0",
        "wechat",
    ]
    assert [r[9] for r in rows[1:7]] == [
        'a, "quoted" message',
        "two\nlines\r\nand a CR",
        "审核通过：版本 1.2.0 已发布",
        '\'=HYPERLINK("http://x")',  # a spreadsheet would run it
        "'-1 is not a formula",
        "",
    ]
    assert rows[7] == ["99", *first[1:3], "'@x", "publish", "ok", "", "", "", "x"]
    assert len(rows) == 8
    assert render.history_csv([], SHANGHAI).decode("utf-8-sig").splitlines() == [",".join(rows[0])]


async def export(commands: Commands, actor: Actor, line: str) -> history_command.Export:
    return await history_command.export(commands.context(actor), args_of(line))


async def test_export_writes_every_match_oldest_first(session: Session) -> None:
    store, commands = session.runtime.store, at_noon(session)
    for n in range(45):  # more than a page: an export is not paged
        await add(store, NOW - timedelta(hours=50 - n), message=f"#{n}")
    await add(store, NOW - timedelta(days=40), message="#old")
    await add(store, NOW - timedelta(hours=1), message=TRICKY[1], app="shop")  # not demo
    made = await export(commands, ROOT, "history demo --since 30d export")
    rows = read_csv(made.content)
    assert [r[9] for r in rows[1:]] == [f"#{n}" for n in range(45)]
    assert made.rows == 45 and made.filename == "miniship-history-demo-20261210-040000Z.csv"
    assert (
        made.text == f"demo · since {render.local_time(NOW - timedelta(days=30), SHANGHAI)}: "
        f"45 events exported to {made.filename}"
    )
    reply = await commands.handle(ROOT, "history demo --since 30d export")
    # for the person who asked only, the file with it
    assert reply == Reply(
        made.text,
        private=True,
        files=(Attachment(made.title, made.filename, made.content),),
    )


async def test_export_says_when_it_stops_at_the_limit(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, commands = session.runtime.store, at_noon(session)
    assert EXPORT_LIMIT == 10_000
    monkeypatch.setattr(history_command, "EXPORT_LIMIT", 4)
    for n in range(10):
        await add(store, NOW - timedelta(minutes=10 - n), message=f"#{n}", action="gray")
    made = await export(commands, ROOT, "history demo --action gray export")
    assert [r[9] for r in read_csv(made.content)[1:]] == ["#6", "#7", "#8", "#9"]
    assert "That is the newest 4; there are more" in made.text
    rest = re.search(r"`(history demo --action gray --before \d+ export)`", made.text)
    assert rest is not None
    more = await export(commands, ROOT, rest.group(1))
    assert [r[9] for r in read_csv(more.content)[1:]] == ["#2", "#3", "#4", "#5"]
    made = await export(commands, ROOT, "history demo --action withdraw export")
    assert made.rows == 0 and "nothing to export" in made.text


async def test_export_of_all_keeps_to_the_apps_one_may_view(session: Session) -> None:
    store = session.runtime.store
    commands = two_apps(session)
    await add(store, NOW, app="demo", message='审核通过, "ok"')
    await add(store, NOW, app="shop", message="#shop")
    await add(store, NOW, app=None, message="#lib")
    dev = await export(commands, Actor("U0DEV"), "history all export")
    assert [(r[6], r[9]) for r in read_csv(dev.content)[1:]] == [("demo", '审核通过, "ok"')]
    lead = await export(commands, Actor("U0LEAD"), "history all export")
    assert [r[9] for r in read_csv(lead.content)[1:]] == ['审核通过, "ok"', "#shop", "#lib"]
    assert lead.filename.startswith("miniship-history-all-")


# -- any input ----------------------------------------------------------------------------

BOUNDED = settings(max_examples=300, deadline=None, derandomize=True, database=None)

amounts = st.one_of(
    st.integers(0, 10**9).map(str),
    st.text("0123456789", min_size=1, max_size=12),
    st.text(st.characters(categories=["Nd"]), min_size=1, max_size=3),
)
durations = st.lists(
    st.tuples(amounts, st.sampled_from(["w", "d", "h", "m", "D", "s", "", "x"])),
    min_size=1,
    max_size=4,
).map(lambda parts: "".join(n + u for n, u in parts))
dates = st.tuples(
    st.integers(0, 99999), st.integers(0, 13), st.integers(0, 32), st.sampled_from("-/")
).map(lambda d: f"{d[0]:04d}{d[3]}{d[1]:02d}{d[3]}{d[2]:02d}")
moments = st.one_of(durations, dates, st.text(max_size=12))


@BOUNDED
@given(moments)
@example("0w")
@example("9999999w")
@example("0001-01-01")
@example("9999-12-31")
def test_any_moment_is_a_time_back_or_a_usage_error(text: str) -> None:
    try:
        value = moment(text)
    except UsageError as exc:
        assert exc.message.strip()
        return
    if isinstance(value, timedelta):
        assert timedelta(0) < value <= history_command.MAX_AGO
        assert ago(text) == value
    else:
        assert isinstance(value, date)


zones = st.sampled_from(sorted(available_timezones())).map(ZoneInfo)
nows = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@BOUNDED
@given(moments, st.booleans(), nows, zones)
@example("9999-12-31", False, NOW, ZoneInfo("Etc/GMT+12"))
@example("9999-12-31", True, NOW, ZoneInfo("Etc/GMT-14"))
@example("0001-01-01", False, NOW, ZoneInfo("Etc/GMT-14"))
@example("0001-01-01", True, NOW, ZoneInfo("Etc/GMT+12"))
def test_any_moment_puts_an_edge_in_any_zone_or_says_why_not(
    text: str, end: bool, now: datetime, zone: ZoneInfo
) -> None:
    try:
        value = moment(text)
    except UsageError:
        return
    try:
        edge = history_command._bound(value, now, zone, end=end)
    except CommandRefused as exc:
        assert str(exc).strip()
        return
    if edge is not None:
        assert edge.tzinfo is not None
        render.local_time(edge, zone)  # it can be shown


words = st.one_of(
    st.sampled_from(["demo", "all", "wechat", "alipay", "export", "EXPORT", ",", "#7"]),
    st.sampled_from(["--action", "--by", "--since", "--until", "--before", "—since", "--by="]),
    st.sampled_from(["publish,gray", "template", "publish,", "<@U0LEAD|Li", "Lei>", "<@U0X>"]),
    st.sampled_from(["@U0LEAD", "@bob", "console:root", "30d", "1d12h", "2026-12-01", "0d"]),
    moments,
    st.text(min_size=1, max_size=10).filter(lambda w: not w.isspace()),
)


values = {
    "--action": st.sampled_from(["publish", "publish,gray", "template", "a,b,", "Publish!", ","]),
    "--by": st.sampled_from(["<@U0LEAD>", "<@U0LEAD|Li Lei>", "@U0LEAD", "scheduler", "@bob"]),
    "--since": st.integers(1, 99).map(lambda n: f"{n}d") | dates | moments,
    "--until": st.integers(1, 99).map(lambda n: f"{n}h") | dates | moments,
    "--before": st.sampled_from(["1", "#812", "9" * 18, "9" * 19, "x"]),
}


@st.composite
def history_lines(draw: st.DrawFn) -> list[str]:
    """``history`` words after their grammar: an app, then platforms, filters (each once,
    as ``--name value`` or ``--name=value``) and export in any order; now and then a word
    of anything."""
    parts = draw(st.lists(st.sampled_from(P), max_size=2))
    for name in draw(st.lists(st.sampled_from(sorted(values)), unique=True, max_size=4)):
        value = draw(values[name])
        parts.append(draw(st.sampled_from([f"{name} {value}", f"{name}={value}"])))
    if draw(st.booleans()):
        parts.append("export")
    parts = list(draw(st.permutations(parts)))
    if draw(st.integers(0, 4)) == 0:
        parts.insert(draw(st.integers(0, len(parts))), draw(words))
    return [draw(st.sampled_from(["demo", "all", "ALL"])), *parts]


@BOUNDED
@given(st.one_of(st.lists(words, max_size=8), history_lines()))
@example(["demo", "--by", "<@U0LEAD|Li", "Lei>", "--action", "publish,", "gray"])
def test_any_history_line_is_read_or_explained_and_reads_back_the_same(parts: list[str]) -> None:
    line = " ".join(["history", *parts])
    try:
        args = args_of(line)
    except UsageError as exc:
        assert exc.message.strip() and exc.command == "history"
        return
    args.scope()
    again = args.line(before=args.before, export=args.export)
    assert args_of(again) == args, again  # what a reply tells one to type means the same


@BOUNDED
@given(st.lists(st.tuples(st.text(), st.text(max_size=8)), max_size=5))
def test_any_text_survives_the_csv(cells: list[tuple[str, str]]) -> None:
    events = [view(n, message, actor=actor or "x") for n, (message, actor) in enumerate(cells)]
    rows = read_csv(render.history_csv(events, SHANGHAI))
    assert len(rows) == len(events) + 1
    for row, e in zip(rows[1:], events, strict=True):
        for got, was in ((row[3], e.actor), (row[9], e.message)):
            assert got in (was, "'" + was)  # a would-be formula gets an apostrophe
