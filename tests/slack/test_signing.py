"""Request signing: Slack's published test vector, and a real Bolt app behind it.

The Bolt half serves ``AsyncApp.web_app()`` on 127.0.0.1 and posts to it, so the real
``RequestVerification`` middleware decides; the app's client talks to ``FakeSlack``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import Clock, SignatureVerifier

from tests.slack import requests as slack_requests
from tests.slack.fake_slack import BOT_USER_ID, FakeSlack
from tests.slack.requests import sign, slash_command

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
