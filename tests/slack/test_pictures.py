"""Trial QR codes and authorizations in Slack: pictures land as files in the card's thread.

The end-to-end tests drive signed ``/ship`` requests against the fake Slack and the
emulators (the harness of test_release_flow). The binding tests below them feed a
:class:`~handlers.commands.Reply` with pictures straight to the Slack binding.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers.commands import Picture, Reply
from handlers.slack import SlackBinding
from platforms.base import Authorization, TrialCode
from tests.slack.fake_slack import FakeSlack
from tests.slack.test_release_flow import World, open_world

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff", "gif": b"GIF8"}


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    async with open_world(tmp_path, database_url) as opened:
        yield opened


def binding_of(world: World) -> SlackBinding:
    """The binding `open_world` made (it listens to the service's review changes)."""
    found = [
        getattr(listener, "__self__", None)
        for listener in world.runtime.service.listeners
        if isinstance(getattr(listener, "__self__", None), SlackBinding)
    ]
    assert found, "open_world made no SlackBinding"
    binding = found[0]
    assert isinstance(binding, SlackBinding)
    return binding


def shared_files(slack: FakeSlack, channel: str, thread_ts: str | None) -> list[dict[str, Any]]:
    """The files shared in ``channel`` (in the thread of ``thread_ts``, or at the top)."""
    return [
        f
        for m in slack.messages.values()
        if m["channel"] == channel and m["thread_ts"] == thread_ts
        for f in m.get("files", [])
    ]


async def card_ts(world: World, version: str = "1.0.0") -> str:
    release = await world.runtime.store.release("demo", version)
    assert release is not None and release.card_channel == "C0RELEASE" and release.card_ts
    return release.card_ts


def check_image(file: dict[str, Any], platform: str, version: str = "1.0.0") -> None:
    name = str(file["name"])
    assert name.startswith(f"demo-{version}-{platform}-trial."), name
    extension = name.rpartition(".")[2]
    assert file["data"].startswith(MAGIC[extension]), file["data"][:8]
    assert len(file["data"]) == file["length"]
    assert version in file["title"]


# -- end to end (waits on the adapters' trial_code) ------------------------------------


async def test_upload_posts_each_platforms_qr_code_in_the_card_thread(world: World) -> None:
    await world.command("upload demo 1.0.0 notes")
    await world.slack.wait_for("files.completeUploadExternal", count=2)
    await world.settled()
    ts = await card_ts(world)
    files = shared_files(world.slack, "C0RELEASE", ts)
    assert len(files) == 2
    by_platform = {p: f for f in files for p in ("wechat", "alipay") if f"-{p}-" in f["name"]}
    assert set(by_platform) == {"wechat", "alipay"}
    for platform, file in by_platform.items():
        check_image(file, platform)
    # the result itself came first, in the same thread
    thread = world.slack.replies("C0RELEASE", ts)
    assert "✓ WeChat" in thread[0]["text"] and not thread[0].get("files")
    assert not [c for c in world.slack.calls("response_url") if "could not post" in str(c.params)]


async def test_qr_posts_the_code_again(world: World) -> None:
    await world.command("upload demo wechat 1.0.0 notes")
    await world.slack.wait_for("files.completeUploadExternal")
    await world.settled()
    await world.command("qr demo wechat")
    await world.slack.wait_for("files.completeUploadExternal", count=2)
    await world.settled()
    files = shared_files(world.slack, "C0RELEASE", await card_ts(world))
    assert len(files) == 2
    for file in files:
        check_image(file, "wechat")


async def test_a_missing_scope_still_posts_the_result_and_says_why(world: World) -> None:
    for _ in range(2):  # one refusal for each platform's picture
        world.slack.fail_next("files.getUploadURLExternal", "missing_scope", status=200)
    await world.command("upload demo 1.0.0 notes")
    await world.slack.wait_for("files.getUploadURLExternal", count=2)
    await world.settled()
    thread = world.slack.replies("C0RELEASE", await card_ts(world))
    assert "✓ WeChat" in thread[0]["text"] and "✓ Alipay" in thread[0]["text"]
    assert world.slack.files == {}
    private = [
        c.params
        for c in world.slack.calls("response_url")
        if c.params.get("response_type") == "ephemeral"
    ]
    [why] = [p["text"] for p in private if "could not post" in p["text"]]
    assert "missing_scope" in why and "files:write" in why and "/ship qr demo 1.0.0" in why


# -- the binding, fed a reply with pictures ------------------------------------------------


class Answers:
    """What the binding said back to the person who typed: (text, public)."""

    def __init__(self) -> None:
        self.said: list[tuple[str, bool]] = []

    async def __call__(
        self, text: str, public: bool, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        self.said.append((text, public))

    def private(self) -> list[str]:
        return [text for text, public in self.said if not public]


def pictures(version: str = "1.0.0") -> tuple[Picture, ...]:
    return (
        Picture(
            f"demo {version} on WeChat — trial version",
            f"demo-{version}-wechat-trial.jpg",
            TrialCode(JPEG, "image/jpeg", version),
        ),
        Picture(
            f"demo {version} on Alipay — trial version",
            f"demo-{version}-alipay-trial.png",
            TrialCode(PNG, "image/png", version, url="https://qr.example.com/demo.png"),
        ),
    )


async def feed(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    reply: Reply,
    *,
    channel: str | None = "C0TYPED",
    uploaded: bool = True,
) -> Answers:
    """Run a command whose reply is ``reply`` (1.0.0 uploaded on WeChat when ``uploaded``)."""
    store = world.runtime.store
    if uploaded:
        release = await store.ensure_release("demo", "1.0.0", "notes", "U0DEV")
        await store.add_target(release, "wechat")
    binding = binding_of(world)

    async def handle(*args: Any, **kwargs: Any) -> Reply:
        return reply

    monkeypatch.setattr(binding.commands, "handle", handle)
    answers = Answers()
    await binding.run("U0DEV", "qr demo", channel, answers)
    return answers


async def test_pictures_go_to_the_card_thread_after_the_result(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    reply = Reply("qr: ✓ WeChat, ✓ Alipay", about=("demo", "1.0.0"), pictures=pictures())
    answers = await feed(world, monkeypatch, reply)
    ts = await card_ts(world)
    thread = world.slack.replies("C0RELEASE", ts)
    assert thread[0]["text"] == reply.text
    assert [m["files"][0]["name"] for m in thread[1:]] == [
        "demo-1.0.0-wechat-trial.jpg",
        "demo-1.0.0-alipay-trial.png",
    ]
    wechat, alipay = (m["files"][0] for m in thread[1:])
    assert (wechat["data"], wechat["mimetype"], wechat["title"]) == (
        JPEG,
        "image/jpeg",
        "demo 1.0.0 on WeChat — trial version",
    )
    assert alipay["data"] == PNG
    assert "WeChat" in thread[1]["text"] and "qr.example.com" in thread[2]["text"]
    # typed elsewhere: only a pointer to the card, for the person who typed
    assert answers.said == [(f"{reply.text}\n(see the release card in <#C0RELEASE>)", False)]


async def test_without_a_card_pictures_go_where_the_command_was_typed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    reply = Reply("qr: ✓ WeChat", about=("demo", "1.0.0"), pictures=pictures()[:1])
    answers = await feed(world, monkeypatch, reply, uploaded=False)
    assert answers.said == [(reply.text, True)]
    [file] = shared_files(world.slack, "C0TYPED", None)
    assert file["data"] == JPEG


async def test_with_nowhere_to_post_the_text_says_how_to_get_them(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    reply = Reply("qr: ✓ WeChat", about=("demo", "1.0.0"), pictures=pictures()[:1])
    answers = await feed(world, monkeypatch, reply, channel=None, uploaded=False)
    [(text, public)] = answers.said
    assert public and "`/ship qr demo 1.0.0`" in text
    assert world.slack.calls("files.getUploadURLExternal") == []


async def test_a_missing_scope_is_explained_privately(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(2):
        world.slack.fail_next("files.getUploadURLExternal", "missing_scope", status=200)
    reply = Reply("upload: ✓ WeChat, ✓ Alipay", about=("demo", "1.0.0"), pictures=pictures())
    answers = await feed(world, monkeypatch, reply, channel="C0RELEASE")
    thread = world.slack.replies("C0RELEASE", await card_ts(world))
    assert [m["text"] for m in thread] == [reply.text]  # the result went out
    [why] = answers.private()
    assert why.count("missing_scope") == 1  # one reason for both pictures
    assert "WeChat" in why and "Alipay" in why
    assert "`files:write`" in why and "`/ship qr demo 1.0.0`" in why


async def test_a_channel_without_the_bot_is_explained_privately(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.slack.fail_next("files.completeUploadExternal", "not_in_channel", status=200)
    reply = Reply("qr: ✓ WeChat", about=("demo", "1.0.0"), pictures=pictures()[:1])
    answers = await feed(world, monkeypatch, reply, uploaded=False)
    assert answers.said[0] == (reply.text, True)
    [why] = answers.private()
    assert "not_in_channel" in why and "invite me" in why and "`/ship qr demo 1.0.0`" in why


async def test_a_failed_byte_upload_is_explained_and_the_next_picture_still_goes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.slack.fail_next("upload", "upload_failed", status=500)
    reply = Reply("qr: ✓ WeChat, ✓ Alipay", about=("demo", "1.0.0"), pictures=pictures())
    answers = await feed(world, monkeypatch, reply, channel="C0RELEASE")
    [why] = answers.private()
    assert "WeChat" in why and "Alipay" not in why and "upload failed" in why
    [file] = shared_files(world.slack, "C0RELEASE", await card_ts(world))
    assert file["data"] == PNG


async def test_a_private_reply_goes_only_to_the_person(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    reply = Reply("Open https://example.com/authorize", about=("demo", "1.0.0"), private=True)
    answers = await feed(world, monkeypatch, reply)
    assert answers.said == [(reply.text, False)]
    assert world.slack.calls("chat.postMessage") == []


# -- authorizations --------------------------------------------------------------------


async def test_a_completed_authorization_is_said_in_the_apps_channel(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = world.runtime
    adapter = rt.service.adapters["wechat"]

    async def complete_connect(app: str, query: Mapping[str, str]) -> Authorization:
        assert (app, query["auth_code"]) == ("demo", "x")
        return Authorization(
            "wx3a5f9c2e1b7d4f60", app, permissions=(17, 18), permission_names=("Code", "Stats")
        )

    monkeypatch.setattr(adapter, "complete_connect", complete_connect)
    state = await rt.service.store.open_connect("wechat", "demo", "U1", timedelta(minutes=5))
    await rt.admin.complete_connect("wechat", state, {"auth_code": "x"})
    [posted] = await world.slack.wait_for("chat.postMessage")
    assert posted.params["channel"] == "C0RELEASE"
    assert posted.params["text"] == "demo authorized miniship on WeChat: Code, Stats"


async def test_an_authorization_of_an_unknown_app_is_not_posted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    binding = binding_of(world)
    await binding.on_grant(Authorization("wx0000000000000000", app="nosuch"))
    await binding.on_grant(Authorization("wx0000000000000000"))
    assert world.slack.calls("chat.postMessage") == []
