"""FakeSlack answers like the Slack Web API and records what it was asked."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.slack.fake_slack import BOT_ID, BOT_USER_ID, TEAM_ID, FakeSlack

BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*shop* 1.2.3"}}]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(groups={"S0001": ["U1", "U2"]}, channels={"C1": "releases"}) as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return slack.client()


def test_urls_are_loopback(slack: FakeSlack) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/", slack.base_url)
    assert slack.response_url("cmd") == f"http://127.0.0.1:{slack.port}/response/cmd"


async def test_auth_test_and_call_recording(slack: FakeSlack, client: AsyncWebClient) -> None:
    answer = await client.auth_test()
    assert answer["ok"] is True
    assert (answer["team_id"], answer["user_id"], answer["bot_id"]) == (
        TEAM_ID,
        BOT_USER_ID,
        BOT_ID,
    )
    assert answer["url"] and answer["team"] and answer["user"]
    [call] = slack.calls()
    assert (call.method, call.token, call.error) == ("auth.test", "xoxb-test", None)


async def test_post_message_then_update(slack: FakeSlack, client: AsyncWebClient) -> None:
    first = await client.chat_postMessage(channel="C1", text="shop 1.2.3", blocks=BLOCKS)
    second = await client.chat_postMessage(channel="C1", text="thread", thread_ts=first["ts"])
    assert first["channel"] == "C1"
    assert first["ts"] == "1732430000.000100"
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["text"] == "shop 1.2.3"
    assert first["message"]["blocks"] == BLOCKS
    assert second["message"]["thread_ts"] == first["ts"]
    assert slack.replies("C1", first["ts"]) == [slack.messages[("C1", second["ts"])]]

    updated = await client.chat_update(channel="C1", ts=first["ts"], text="shop 1.2.3 live")
    assert (updated["channel"], updated["ts"], updated["text"]) == (
        "C1",
        first["ts"],
        "shop 1.2.3 live",
    )
    stored = slack.messages[("C1", first["ts"])]
    assert stored["text"] == "shop 1.2.3 live"
    assert stored["blocks"] == BLOCKS  # omitted blocks stay, as on Slack
    assert stored["thread_ts"] is None
    assert stored["updates"] == 1

    await client.chat_update(channel="C1", ts=first["ts"], text="gone", blocks=[])
    assert slack.messages[("C1", first["ts"])]["blocks"] == []
    assert slack.messages[("C1", first["ts"])]["updates"] == 2

    [post, _] = slack.calls("chat.postMessage")
    assert post.params["blocks"] == BLOCKS
    assert post.params["channel"] == "C1"


async def test_update_of_an_unknown_message_fails(slack: FakeSlack, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        await client.chat_update(channel="C1", ts="1.000001", text="x")
    assert caught.value.response["error"] == "message_not_found"
    [call] = slack.calls("chat.update")
    assert call.error == "message_not_found"


async def test_a_dm_is_updated_by_its_channel_id_not_the_user_id(client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="U5", text="hi")
    assert posted["channel"] == "D5"
    await client.chat_update(channel="D5", ts=posted["ts"], text="edited")
    with pytest.raises(SlackApiError, match="message_not_found"):
        await client.chat_update(channel="U5", ts=posted["ts"], text="edited")


async def test_post_message_needs_text_or_blocks(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError, match="no_text"):
        # api_call: chat_postMessage() itself warns about the missing text first
        await client.api_call("chat.postMessage", json={"channel": "C1"})


async def test_ephemeral(slack: FakeSlack, client: AsyncWebClient) -> None:
    answer = await client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert answer["ok"] is True
    assert re.fullmatch(r"\d+\.\d{6}", answer["message_ts"])
    [call] = slack.calls("chat.postEphemeral")
    assert call.params == {"channel": "C1", "user": "U1", "text": "only you"}
    assert slack.messages == {}


async def test_views_publish_and_open(slack: FakeSlack, client: AsyncWebClient) -> None:
    home = {"type": "home", "blocks": BLOCKS}
    published = await client.views_publish(user_id="U1", view=home)
    assert published["view"]["type"] == "home"
    assert published["view"]["blocks"] == BLOCKS
    assert published["view"]["id"].startswith("V")
    assert slack.home_views["U1"] == published["view"]

    modal = {
        "type": "modal",
        "callback_id": "release_form",
        "title": {"type": "plain_text", "text": "x"},
    }
    opened = await client.views_open(trigger_id="1.2.3", view=modal)
    assert opened["view"]["callback_id"] == "release_form"
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        await client.views_open(trigger_id="", view=modal)


async def test_usergroups(slack: FakeSlack, client: AsyncWebClient) -> None:
    answer = await client.usergroups_users_list(usergroup="S0001")
    assert answer["users"] == ["U1", "U2"]
    slack.groups["S0002"] = []
    assert (await client.usergroups_users_list(usergroup="S0002"))["users"] == []
    with pytest.raises(SlackApiError) as caught:
        await client.usergroups_users_list(usergroup="S9999")
    assert caught.value.response["error"] == "no_such_subteam"


async def test_conversations_info(client: AsyncWebClient) -> None:
    answer = await client.conversations_info(channel="C1")
    assert (answer["channel"]["id"], answer["channel"]["name"]) == ("C1", "releases")
    assert (await client.conversations_info(channel="C2"))["channel"]["id"] == "C2"


async def test_bad_tokens_and_unknown_methods(slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as caught:
        await slack.client(token="xoxp-user").auth_test()
    assert caught.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError, match="unknown_method"):
        await slack.client().api_call("chat.teleport")
    assert [(c.method, c.token, c.error) for c in slack.calls()] == [
        ("auth.test", "xoxp-user", "invalid_auth"),
        ("chat.teleport", "xoxb-test", "unknown_method"),
    ]


async def test_form_encoded_calls_are_parsed(slack: FakeSlack) -> None:
    client = AsyncWebClient(base_url=slack.base_url)  # token sent as a form field instead
    blocks = '[{"type": "divider"}]'
    await client.api_call(
        "chat.postMessage", data={"token": "xoxb-form", "channel": "C1", "blocks": blocks}
    )
    [call] = slack.calls("chat.postMessage")
    assert call.token == "xoxb-form"
    assert call.params == {"channel": "C1", "blocks": [{"type": "divider"}]}


async def test_response_url_posts_are_recorded(slack: FakeSlack) -> None:
    webhook = AsyncWebhookClient(slack.response_url("cmd"))
    response = await webhook.send(text="done", response_type="ephemeral")
    assert response.status_code == 200
    [call] = await slack.wait_for("response_url")
    assert call.response_name == "cmd"
    assert call.params == {"text": "done", "response_type": "ephemeral"}
    assert call.token is None


async def test_wait_for_waits_for_calls_made_later(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        for n in range(2):
            await client.chat_postMessage(channel="C1", text=f"m{n}")

    task = asyncio.create_task(later())
    calls = await slack.wait_for("chat.postMessage", count=2, timeout=2)
    assert [c.params["text"] for c in calls] == ["m0", "m1"]
    await task


async def test_wait_for_timeout_says_what_happened(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    await client.auth_test()
    with pytest.raises(AssertionError) as caught:
        await slack.wait_for("chat.postMessage", timeout=0.05)
    message = str(caught.value)
    assert "1 'chat.postMessage' call(s), got 0" in message
    assert "recorded: auth.test" in message


async def test_fail_next_injects_one_error(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.fail_next("chat.postMessage")
    slack.fail_next("chat.postMessage", "channel_not_found", status=200)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C1", text="x")
    assert caught.value.response.status_code == 429
    assert caught.value.response["error"] == "ratelimited"
    assert caught.value.response.headers["Retry-After"] == "0"
    with pytest.raises(SlackApiError, match="channel_not_found"):
        await client.chat_postMessage(channel="C1", text="x")
    assert (await client.chat_postMessage(channel="C1", text="x"))["ok"] is True
    assert [c.error for c in slack.calls("chat.postMessage")] == [
        "ratelimited",
        "channel_not_found",
        None,
    ]
    assert len(slack.messages) == 1


async def test_reset(slack: FakeSlack, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel="C1", text="x")
    await client.views_publish(user_id="U1", view={"type": "home", "blocks": []})
    await client.files_upload_v2(content="x", filename="x.txt")
    slack.fail_next("auth.test")
    slack.reset()
    assert (slack.calls(), slack.messages, slack.home_views, slack.files) == ([], {}, {}, {})
    assert (await client.auth_test())["ok"] is True  # the pending failure was dropped
    assert (await client.usergroups_users_list(usergroup="S0001"))["users"] == ["U1", "U2"]


async def test_files_upload_v2_shares_the_bytes_in_the_thread(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    card = await client.chat_postMessage(channel="C1", text="shop 1.2.3")
    answer = await client.files_upload_v2(
        file=PNG,
        filename="shop-1.2.3-wechat-trial.png",
        title="shop 1.2.3 on WeChat",
        alt_txt="QR code",
        channel="C1",
        thread_ts=card["ts"],
        initial_comment="Scan to open it",
    )
    assert [c.method for c in slack.calls()] == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    asked = slack.calls("files.getUploadURLExternal")[0].params
    assert (asked["filename"], asked["length"], asked["alt_txt"]) == (
        "shop-1.2.3-wechat-trial.png",
        str(len(PNG)),
        "QR code",
    )
    completed = slack.calls("files.completeUploadExternal")[0].params
    assert completed["files"] == [{"id": answer["file"]["id"], "title": "shop 1.2.3 on WeChat"}]
    assert (completed["channel_id"], completed["thread_ts"]) == ("C1", card["ts"])

    [reply] = slack.replies("C1", card["ts"])
    assert reply["text"] == "Scan to open it"
    [shared] = reply["files"]
    assert shared is slack.files[answer["file"]["id"]]
    assert (shared["data"], shared["name"], shared["title"]) == (
        PNG,
        "shop-1.2.3-wechat-trial.png",
        "shop 1.2.3 on WeChat",
    )
    assert shared["mimetype"] == "image/png"
    assert shared["shares"] == [("C1", reply["ts"])]


async def test_a_file_without_a_channel_stays_private(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    answer = await client.files_upload_v2(content="hello", filename="a.txt")
    assert slack.files[answer["file"]["id"]]["data"] == b"hello"
    assert slack.files[answer["file"]["id"]]["shares"] == []
    assert slack.messages == {}


async def test_the_upload_must_match_the_announced_length(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    url = await client.files_getUploadURLExternal(filename="a.png", length=10)
    assert url["upload_url"].startswith(f"http://127.0.0.1:{slack.port}/upload/")
    async with httpx.AsyncClient() as http:
        short = await http.post(url["upload_url"], content=b"12345")
        assert short.status_code == 400 and "length" in short.text
        # a multipart form (as curl -F sends it) works as well as raw bytes
        ok = await http.post(url["upload_url"], files={"file": ("a.png", b"0123456789")})
        assert (ok.status_code, ok.text) == (200, "OK - 10")
    assert [(c.params["length"], c.error) for c in slack.calls("upload")] == [
        (5, "length_mismatch: announced 10"),
        (10, None),
    ]
    assert slack.files[url["file_id"]]["data"] == b"0123456789"


async def test_completing_needs_uploaded_known_files(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    url = await client.files_getUploadURLExternal(filename="a.png", length=3)
    with pytest.raises(SlackApiError, match="file_upload_not_complete"):
        await client.files_completeUploadExternal(files=[{"id": url["file_id"]}], channel_id="C1")
    with pytest.raises(SlackApiError, match="file_not_found"):
        await client.files_completeUploadExternal(files=[{"id": "F404"}], channel_id="C1")
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        await client.files_getUploadURLExternal(filename="a.png", length=0)
    assert slack.messages == {}


async def test_fail_next_works_for_file_uploads(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.fail_next("files.getUploadURLExternal", "missing_scope", status=200)
    with pytest.raises(SlackApiError) as caught:
        await client.files_upload_v2(file=PNG, filename="a.png", channel="C1")
    assert caught.value.response["error"] == "missing_scope"
    slack.fail_next("upload", "upload_failed", status=500)
    with pytest.raises(SlackRequestError, match="status: 500"):
        await client.files_upload_v2(file=PNG, filename="a.png", channel="C1")
    assert [(c.method, c.error) for c in slack.calls()] == [
        ("files.getUploadURLExternal", "missing_scope"),
        ("files.getUploadURLExternal", None),
        ("upload", "upload_failed"),
    ]
    assert slack.messages == {}
