"""Request signing: Slack's published test vector, and a real Bolt app behind it.

The Bolt half serves ``AsyncApp.web_app()`` on 127.0.0.1 and posts to it, so the real
``RequestVerification`` middleware decides; the app's client talks to ``FakeSlack``.
The last part sends miniship's own app (``build_app``) what Slack never sends: each
malformed request gets a 4xx and one warning line (``handlers.slack_guard``).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlencode

import aiohttp
import httpx
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import Clock, SignatureVerifier

from bot import serving
from handlers import slack_guard
from handlers.slack import build_app, make_binding
from tests.slack import requests as slack_requests
from tests.slack.fake_slack import BOT_USER_ID, FakeSlack
from tests.slack.requests import FORM, JSON, sign, slash_command
from tests.slack.test_release_flow import World, open_world

# https://docs.slack.dev/authentication/verifying-requests-from-slack/
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TIMESTAMP = 1531420618
VECTOR_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    "&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    "&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
    "commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

SECRET = "test-signing-secret"


class FixedClock(Clock):
    """A slack_sdk clock stopped at one unix time."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


# --------------------------------------------------------------------------- test vector


def test_sign_reproduces_slacks_test_vector() -> None:
    headers = sign(VECTOR_SECRET, VECTOR_BODY, VECTOR_TIMESTAMP)
    assert headers["X-Slack-Signature"] == VECTOR_SIGNATURE
    assert headers["X-Slack-Request-Timestamp"] == str(VECTOR_TIMESTAMP)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    generated = SignatureVerifier(VECTOR_SECRET).generate_signature(
        timestamp=str(VECTOR_TIMESTAMP), body=VECTOR_BODY
    )
    assert generated == VECTOR_SIGNATURE


def test_slack_sdk_verifier_accepts_the_vector_at_its_time_only() -> None:
    verifier = SignatureVerifier(VECTOR_SECRET, clock=FixedClock(VECTOR_TIMESTAMP))
    assert verifier.is_valid(VECTOR_BODY, str(VECTOR_TIMESTAMP), VECTOR_SIGNATURE)
    assert verifier.is_valid_request(
        VECTOR_BODY, sign(VECTOR_SECRET, VECTOR_BODY, VECTOR_TIMESTAMP)
    )
    assert not verifier.is_valid(VECTOR_BODY + "x", str(VECTOR_TIMESTAMP), VECTOR_SIGNATURE)
    late = SignatureVerifier(VECTOR_SECRET, clock=FixedClock(VECTOR_TIMESTAMP + 301))
    assert not late.is_valid(VECTOR_BODY, str(VECTOR_TIMESTAMP), VECTOR_SIGNATURE)


# --------------------------------------------------------------------------- a real Bolt app


@dataclass
class BoltWorld:
    """A Bolt app served on loopback, its fake Slack, and what its listeners saw."""

    slack: FakeSlack
    app: AsyncApp
    url: str
    session: aiohttp.ClientSession
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def post(self, body: str, headers: dict[str, str]) -> tuple[int, str]:
        async with self.session.post(self.url, data=body.encode(), headers=headers) as resp:
            return resp.status, await resp.text()


@pytest.fixture
async def bolt() -> AsyncIterator[BoltWorld]:
    async with FakeSlack() as slack:
        app = AsyncApp(signing_secret=SECRET, client=slack.client())
        runner = web.AppRunner(app.web_app(path="/slack/events"), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session:
            world = BoltWorld(slack, app, f"http://127.0.0.1:{port}/slack/events", session)

            @app.command("/ship")
            async def ship(ack: AsyncAck, body: dict[str, Any]) -> None:
                world.seen.append(("/ship", body))
                await ack(f"shipping {body['text']}")

            try:
                yield world
            finally:
                await runner.cleanup()


async def test_a_signed_slash_command_runs_the_listener(bolt: BoltWorld) -> None:
    body, headers = slash_command(SECRET, "release shop 1.2.3", user="U7", channel="C9")
    status, text = await bolt.post(body, headers)
    assert status == 200
    assert text == "shipping release shop 1.2.3"
    [(name, seen)] = bolt.seen
    assert (name, seen["user_id"], seen["channel_id"]) == ("/ship", "U7", "C9")
    [auth] = bolt.slack.calls("auth.test")  # Bolt's lazy token check, on the first request
    assert auth.token == "xoxb-test"


def _bad_signature() -> tuple[str, dict[str, str]]:
    body, headers = slash_command(SECRET, "x")
    return body, {**headers, "X-Slack-Signature": sign("another-secret", body)["X-Slack-Signature"]}


def _no_signature() -> tuple[str, dict[str, str]]:
    body, headers = slash_command(SECRET, "x")
    return body, {k: v for k, v in headers.items() if k != "X-Slack-Signature"}


def _stale() -> tuple[str, dict[str, str]]:
    body, headers = slash_command(SECRET, "x", timestamp=int(time.time()) - 6 * 60)
    return body, headers


def _tampered_body() -> tuple[str, dict[str, str]]:
    body, headers = slash_command(SECRET, "x")
    return body.replace("text=x", "text=y"), headers


@pytest.mark.parametrize(
    "build",
    [_bad_signature, _no_signature, _stale, _tampered_body],
    ids=["bad-signature", "no-signature", "older-than-5-min", "tampered-body"],
)
async def test_unsigned_or_stale_requests_get_401(bolt: BoltWorld, build: Any) -> None:
    body, headers = build()
    status, text = await bolt.post(body, headers)
    assert status == 401
    assert json.loads(text) == {"error": "invalid request"}
    assert bolt.seen == []
    assert bolt.slack.calls() == []


# --------------------------------------------------------------------------- the builders


async def test_every_builder_passes_bolt_and_reaches_its_listener() -> None:
    """Each builder's request is verified and routed by Bolt like Slack's own."""
    seen: dict[str, Any] = {}
    async with FakeSlack() as slack:
        app = AsyncApp(signing_secret=SECRET, client=slack.client())

        @app.action("approve")
        async def on_action(ack: AsyncAck, body: dict[str, Any]) -> None:
            await ack()
            seen["action"] = body

        @app.view("release_form")
        async def on_view(ack: AsyncAck, view: dict[str, Any], body: dict[str, Any]) -> None:
            await ack()
            seen["view"] = view

        @app.event("app_mention")
        async def on_mention(event: dict[str, Any], request: AsyncBoltRequest) -> None:
            seen["mention"] = event
            seen["retry_num"] = request.headers.get("x-slack-retry-num")

        @app.event("app_home_opened")
        async def on_home(event: dict[str, Any]) -> None:
            seen["home"] = event

        requests = [
            slack_requests.block_action(
                SECRET, "approve", "shop@1.2.3", user="U2", response_url=slack.response_url()
            ),
            slack_requests.view_submission(
                SECRET,
                "release_form",
                {"b_version": {"version": "1.2.3"}},
                private_metadata="shop",
            ),
            slack_requests.app_mention(SECRET, "status shop", event_id="Ev42", retry_num=1),
            slack_requests.app_home_opened(SECRET, user="U3"),
        ]
        for request in requests:
            response = await app.async_dispatch(request.bolt())
            assert response.status == 200, response.body

    action = seen["action"]
    assert action["actions"][0]["action_id"] == "approve"
    assert action["actions"][0]["value"] == "shop@1.2.3"
    assert action["user"]["id"] == "U2"
    assert action["container"]["message_ts"] == action["message"]["ts"]
    assert seen["view"]["private_metadata"] == "shop"
    assert seen["view"]["state"]["values"]["b_version"]["version"]["value"] == "1.2.3"
    assert seen["mention"]["text"] == f"<@{BOT_USER_ID}> status shop"
    assert seen["retry_num"] == ["1"]  # Bolt keeps headers as lists
    assert (seen["home"]["user"], seen["home"]["tab"]) == ("U3", "home")


def test_slash_command_body_is_form_encoded_like_slacks() -> None:
    body, headers = slash_command(SECRET, "release shop 1.2.3", command="/ship")
    fields = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
    assert fields["command"] == "/ship"
    assert fields["text"] == "release shop 1.2.3"
    assert "command=%2Fship" in body and "text=release+shop+1.2.3" in body
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_event_retry_headers() -> None:
    first = slack_requests.event(SECRET, {"type": "app_mention"}, event_id="Ev9")
    retry = slack_requests.event(
        SECRET, {"type": "app_mention"}, event_id="Ev9", retry_num=2, retry_reason="http_error"
    )
    assert "X-Slack-Retry-Num" not in first.headers
    assert retry.headers["X-Slack-Retry-Num"] == "2"
    assert retry.headers["X-Slack-Retry-Reason"] == "http_error"
    assert json.loads(retry.body)["event_id"] == json.loads(first.body)["event_id"] == "Ev9"
    assert retry.headers["Content-Type"] == "application/json"


# --------------------------------------------------------------------------- malformed requests

RESPONSE_URL = "https://hooks.slack.com/commands/T0001/1234/never-in-a-log"
BOUNDED = settings(max_examples=300, deadline=None, derandomize=True, database=None)


def _signed(body: bytes | str, content_type: str = FORM, timestamp: int | None = None) -> Raw:
    raw = body.encode() if isinstance(body, str) else body
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }
    return Raw(raw, headers)


class Raw(NamedTuple):
    body: bytes
    headers: dict[str, str]


def _command(**fields: str) -> str:
    base = {
        "command": "/ship",
        "text": "help",
        "user_id": "U1",
        "channel_id": "C1",
        "response_url": RESPONSE_URL,
    }
    return urlencode({k: v for k, v in {**base, **fields}.items() if v != "-"})


def _payload(payload: Any) -> str:
    return urlencode({"payload": json.dumps(payload)})


def _deep(depth: int) -> str:
    return '{"type":"event_callback","event":' + "[" * depth + "]" * depth + "}"


def _malformed() -> dict[str, tuple[Raw, int, str]]:
    """Each malformed request: what is sent, the status, and what the warning says."""
    ok = _signed(_command())
    mention = {"type": "app_mention", "user": "U1", "text": "hi", "ts": "1.2"}
    return {
        "non-numeric timestamp": (
            Raw(ok.body, {**ok.headers, "X-Slack-Request-Timestamp": "soon"}),
            401,
            "not a number",
        ),
        "no timestamp": (
            Raw(ok.body, {k: v for k, v in ok.headers.items() if "Timestamp" not in k}),
            401,
            "missing",
        ),
        "bad signature": (
            Raw(ok.body, {**ok.headers, "X-Slack-Signature": "v0=" + "0" * 64}),
            401,
            "signature",
        ),
        "invalid UTF-8": (_signed(b"token=x&text=\xff\xfe&user_id=U1"), 400, "not UTF-8"),
        "non-JSON payload": (_signed("payload=%7Bnot+json"), 400, "JSONDecodeError"),
        "payload not an object": (_signed(_payload([1, 2])), 400, "not what Slack sends"),
        "JSON body not an object": (_signed("[]", JSON), 400, "not what Slack sends"),
        "JSON past the parser's depth": (_signed(_deep(100_000), JSON), 400, "RecursionError"),
        "JSON nested 100 deep": (_signed(_deep(100), JSON), 400, "nested deeper than 64"),
        "slash command without user_id": (
            _signed(_command(user_id="-")),
            400,
            "a slash command without user_id",
        ),
        "slash command without response_url": (
            _signed(_command(response_url="-")),
            400,
            "without response_url",
        ),
        "click without a user": (
            _signed(_payload({"type": "block_actions", "actions": [{"action_id": "ship_submit"}]})),
            400,
            "without user.id",
        ),
        "click whose channel is text": (
            _signed(
                _payload(
                    {
                        "type": "block_actions",
                        "user": {"id": "U1"},
                        "channel": "C1",
                        "actions": [{"action_id": "ship_submit", "value": "x"}],
                        "response_url": RESPONSE_URL,
                    }
                )
            ),
            400,
            "channel is not an object",
        ),
        "mention without a channel": (
            _signed(json.dumps({"type": "event_callback", "event": mention}), JSON),
            400,
            "without channel",
        ),
        "home opened by nobody": (
            _signed(
                json.dumps({"type": "event_callback", "event": {"type": "app_home_opened"}}), JSON
            ),
            400,
            "without user",
        ),
        "no kind at all": (_signed("{}", JSON), 400, "neither a slash command"),
        "over 1 MiB": (_signed(b"a" * (1024 * 1024 + 1)), 413, "larger than 1 MiB"),
    }


MALFORMED = list(_malformed())  # the cases; each test signs its own request, at its time


@pytest.fixture
async def miniship(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    """miniship's own Bolt app (``build_app``), served as ``serve`` serves it."""
    async with open_world(tmp_path, database_url) as world:
        yield world


@pytest.mark.parametrize("case", MALFORMED)
async def test_a_malformed_request_gets_a_4xx_and_one_warning_line(
    miniship: World, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    request, status, why = _malformed()[case]
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient() as http:
        response = await http.post(
            miniship.url, content=request.body, headers=request.headers, timeout=10
        )
    await miniship.settled()
    assert response.status_code == status
    assert response.json() == {"error": "invalid request" if status == 401 else "malformed request"}
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.levelno) for r in loud] == [("handlers.slack_guard", logging.WARNING)]
    assert why in loud[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info], "no traceback"
    assert not [r for r in caplog.records if "never-in-a-log" in r.getMessage()]
    assert [c.method for c in miniship.slack.calls()] == []  # nothing reached a listener


@pytest.mark.parametrize("text", ["help", ""], ids=["help", "bare /ship"])
async def test_a_well_formed_request_still_runs(
    miniship: World, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    reply_to = miniship.slack.response_url("reply")
    response = await miniship.post(*slash_command(SECRET, text, response_url=reply_to))
    assert response.status_code == 200  # a bare /ship was a 500: Bolt refuses ack(text=None)
    await miniship.slack.wait_for("response_url")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_bolt_no_longer_logs_the_body_of_a_bad_signature(
    miniship: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Behind the guard, Bolt's own check only fails at the edge of the 5 minutes; its
    line (INFO, the whole body) is silenced wherever it comes from."""
    binding = make_binding(miniship.runtime.service, miniship.slack.client())
    app = build_app(binding, signing_secret=SECRET, socket_mode=False)
    request = slash_command("another-secret", "help", response_url=RESPONSE_URL)
    caplog.set_level(logging.DEBUG)
    response = await app.async_dispatch(request.bolt())
    assert response.status == 401
    assert not [r for r in caplog.records if "never-in-a-log" in r.getMessage()]
    assert not [r for r in caplog.records if r.name == "slack_bolt.RequestVerification"]


# --------------------------------------------------------------------------- the guard's inputs

_HEADER = st.text(st.characters(min_codepoint=1, max_codepoint=0x2FFF), max_size=20)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
_WELL_FORMED: list[dict[str, Any]] = [
    {
        "command": "/ship",
        "text": "help",
        "user_id": "U1",
        "channel_id": "C1",
        "response_url": RESPONSE_URL,
    },
    {
        "type": "block_actions",
        "user": {"id": "U1"},
        "channel": {"id": "C1"},
        "container": {"type": "message"},
        "actions": [{"action_id": "ship_submit", "value": "v"}],
        "response_url": RESPONSE_URL,
        "trigger_id": "1.2.3",
    },
    {
        "type": "view_submission",
        "user": {"id": "U1"},
        "view": {"type": "modal", "callback_id": "x"},
    },
    {"type": "view_closed", "user": {"id": "U1"}, "view": {"type": "modal", "callback_id": "x"}},
    {"type": "shortcut", "user": {"id": "U1"}, "callback_id": "x", "trigger_id": "1.2.3"},
    {
        "type": "event_callback",
        "event": {"type": "message", "channel": "C1", "message": {"text": "hi"}, "ts": "1.2"},
    },
    {
        "type": "event_callback",
        "event_id": "Ev1",
        "event": {"type": "app_mention", "user": "U1", "channel": "C1", "text": "hi", "ts": "1.2"},
    },
    {"type": "event_callback", "event": {"type": "app_home_opened", "user": "U1", "tab": "home"}},
]


@st.composite
def _slackish(draw: st.DrawFn) -> dict[str, Any]:
    """One of Slack's requests with up to three fields dropped or replaced by any JSON."""
    body: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(_WELL_FORMED)))
    for _ in range(draw(st.integers(0, 3))):
        event = body.get("event")
        target = event if isinstance(event, dict) and draw(st.booleans()) else body
        extra = ["user", "channel", "enterprise", "team", "authorizations", "type"]
        key = draw(st.sampled_from(sorted({*target, *extra})))
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(_JSON)
    return body


@BOUNDED
@given(st.binary(max_size=300), _HEADER, _HEADER)
def test_the_guard_takes_any_unsigned_request(raw: bytes, timestamp: str, signature: str) -> None:
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
    refused = slack_guard.refusal(raw, headers, SECRET, time.time())
    assert refused is not None and refused.status == 401


@BOUNDED
@given(st.binary(max_size=300), st.sampled_from([FORM, JSON, "text/plain", ""]))
def test_the_guard_takes_any_signed_bytes(raw: bytes, content_type: str) -> None:
    request = _signed(raw, content_type)
    refused = slack_guard.refusal(request.body, request.headers, SECRET, time.time())
    assert refused is None or refused.status == 400


@BOUNDED
@given(_slackish(), st.booleans())
def test_what_the_guard_lets_through_bolt_can_read(body: dict[str, Any], as_form: bool) -> None:
    text = _payload(body) if as_form else json.dumps(body)
    request = _signed(text, FORM if as_form else JSON)
    refused = slack_guard.refusal(request.body, request.headers, SECRET, time.time())
    if refused is not None:
        assert refused.status == 400
        return
    read = AsyncBoltRequest(body=text, headers={**request.headers}).body
    assert slack_guard.lacking(read) is None
    if "command" in read:
        assert isinstance(read["user_id"], str) and isinstance(read["response_url"], str)
    if read.get("type") == "block_actions":  # what the button listeners read
        assert isinstance(read["user"]["id"], str)
        assert isinstance(read.get("channel") or {}, dict)
        assert isinstance(read.get("container") or {}, dict)
        assert all(isinstance(a, dict) for a in read["actions"])
    if read.get("type") == "event_callback" and read["event"]["type"] == "app_home_opened":
        assert isinstance(read["event"]["user"], str)


def test_a_stale_or_future_timestamp_is_refused() -> None:
    now = time.time()
    for offset in (-301, 301):
        stale = _signed(_command(), timestamp=int(now) + offset)
        refused = slack_guard.refusal(stale.body, stale.headers, SECRET, now)
        assert refused is not None and refused.status == 401 and "5 minutes" in refused.why
    fresh = _signed(_command(), timestamp=int(now) - 299)
    assert slack_guard.refusal(fresh.body, fresh.headers, SECRET, now) is None


UNPARSEABLE = {
    "NUL in a header": b"POST /slack/events HTTP/1.1\r\nHost: x\r\n"
    b"X-Slack-Request-Timestamp: 1\x002\r\nContent-Length: 2\r\n\r\n{}",
    "broken request line": b"POST /slack/events HTTP/9\r\nHost: x\r\n\r\n",
    "bad chunk size": b"POST /slack/events HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "two content lengths": b"POST /slack/events HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
}


@pytest.mark.parametrize("raw", UNPARSEABLE.values(), ids=UNPARSEABLE.keys())
async def test_a_request_too_broken_to_parse_gets_a_400_and_one_warning_line(
    miniship: World, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Below the guard: aiohttp's parser refuses it (400) and logged a traceback at ERROR;
    served as `serve` serves (bot.serving), that is one warning line without the bytes."""
    caplog.set_level(logging.DEBUG)
    app = build_app(
        make_binding(miniship.runtime.service, miniship.slack.client()),
        signing_secret=SECRET,
        socket_mode=False,
    )
    async with serving(app.web_app(path="/slack/events"), "127.0.0.1", 0) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        await writer.drain()
        answer = await reader.read(200)
        writer.close()
    assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.1 400"), answer
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.levelno) for r in loud] == [("aiohttp.server", logging.WARNING)], loud
    assert "malformed HTTP request" in loud[0].getMessage()
    assert "\\x00" not in loud[0].getMessage() and "\n" not in loud[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info], "no traceback"
    assert [c.method for c in miniship.slack.calls()] == []


async def test_bolt_does_not_say_the_bot_token_is_unused(
    miniship: World, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bolt reads SLACK_BOT_TOKEN itself and, a client being given too, warned at every
    start that the token "will be unused" — while the client is made from it."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-the-same-token")
    caplog.set_level(logging.DEBUG)
    build_app(
        make_binding(miniship.runtime.service, miniship.slack.client()),
        signing_secret=SECRET,
        socket_mode=False,
    )
    assert not [r for r in caplog.records if "will be unused" in r.getMessage()]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
