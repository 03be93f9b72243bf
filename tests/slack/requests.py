"""Signed requests exactly as Slack sends them to the app's Request URL.

Each builder returns a :class:`SignedRequest` ``(body, headers)``: unpack it for an HTTP
POST to ``/slack/events``, or call ``.bolt()`` for ``await app.async_dispatch(...)``::

    body, headers = slash_command(SECRET, "release shop 1.2.3",
                                  response_url=slack.response_url("cmd"))
    response = await app.async_dispatch(slash_command(SECRET, "help").bolt())

Slash commands and interactive payloads are form-encoded (interactive ones as
``payload=<urlencoded JSON>``); Events API deliveries are JSON. The signature is
``v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")`` with the current time unless a
``timestamp`` is given (Bolt rejects one more than 5 minutes away from its clock).

Defaults never reach the internet: the default ``response_url`` points at a closed
loopback port, so pass ``slack.response_url(name)`` to record replies.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any, NamedTuple
from urllib.parse import urlencode

from slack_bolt.request.async_request import AsyncBoltRequest

from tests.slack.fake_slack import APP_ID, BOT_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID, dm_channel

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
#: A closed loopback port: a reply sent here fails fast instead of leaving the machine.
UNSET_RESPONSE_URL = "http://127.0.0.1:9/response/unset"
DEFAULT_TRIGGER_ID = "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
DEFAULT_MESSAGE_TS = "1732430000.000100"  # the first ts FakeSlack hands out

_serial = itertools.count(1)


class SignedRequest(NamedTuple):
    """A raw body and the headers Slack sends with it (signature included)."""

    body: str
    headers: dict[str, str]

    def bolt(self) -> AsyncBoltRequest:
        """The same request for ``AsyncApp.async_dispatch``."""
        return AsyncBoltRequest(body=self.body, headers=dict(self.headers))


def sign(
    secret: str, body: str, timestamp: int | None = None, *, content_type: str | None = None
) -> dict[str, str]:
    """Headers Slack sends with ``body``: timestamp, ``v0=`` signature and content type
    (JSON when the body starts with ``{``, else form, unless ``content_type`` is given)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "Content-Type": content_type or (JSON if body.startswith("{") else FORM),
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }


def _user(user: str, team_id: str = TEAM_ID) -> dict[str, str]:
    return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team_id}


def _interactive(secret: str, payload: dict[str, Any], timestamp: int | None) -> SignedRequest:
    body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))})
    return SignedRequest(body, sign(secret, body, timestamp, content_type=FORM))


def slash_command(
    secret: str,
    text: str,
    *,
    user: str = "U1",
    channel: str = "C1",
    command: str = "/ship",
    response_url: str = UNSET_RESPONSE_URL,
    trigger_id: str = DEFAULT_TRIGGER_ID,
    team_id: str = TEAM_ID,
    timestamp: int | None = None,
) -> SignedRequest:
    """A slash command: the form fields Slack posts, in Slack's order."""
    body = urlencode(
        {
            "token": "verification-token-unused",
            "team_id": team_id,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel,
            "channel_name": "directmessage" if channel.startswith("D") else channel.lower(),
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
    )
    return SignedRequest(body, sign(secret, body, timestamp, content_type=FORM))


def block_action(
    secret: str,
    action_id: str,
    value: str,
    *,
    user: str = "U1",
    channel: str = "C1",
    message_ts: str = DEFAULT_MESSAGE_TS,
    response_url: str = UNSET_RESPONSE_URL,
    trigger_id: str = DEFAULT_TRIGGER_ID,
    block_id: str = "actions",
    timestamp: int | None = None,
) -> SignedRequest:
    """A button click (``block_actions``) on the bot's message ``(channel, message_ts)``."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user),
        "api_app_id": APP_ID,
        "token": "verification-token-unused",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id,
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": channel.lower()},
        "message": {
            "type": "message",
            "user": BOT_USER_ID,
            "ts": message_ts,
            "text": "",
            "team": TEAM_ID,
        },
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": value, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return _interactive(secret, payload, timestamp)


def event(
    secret: str,
    event: dict[str, Any],
    *,
    event_id: str | None = None,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
    timestamp: int | None = None,
) -> SignedRequest:
    """An Events API ``event_callback`` envelope around ``event`` (unique ``event_id``
    unless given). ``retry_num`` adds ``X-Slack-Retry-Num``/``X-Slack-Retry-Reason``
    like a redelivery; reuse the first delivery's ``event_id`` for a faithful retry."""
    now = int(time.time()) if timestamp is None else timestamp
    envelope = {
        "token": "verification-token-unused",
        "team_id": TEAM_ID,
        "context_team_id": TEAM_ID,
        "context_enterprise_id": None,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_serial):08d}",
        "event_time": now,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }
    body = json.dumps(envelope, separators=(",", ":"))
    headers = sign(secret, body, timestamp, content_type=JSON)
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason
    return SignedRequest(body, headers)


def _unique_ts() -> str:
    return f"{int(time.time())}.{next(_serial):06d}"


def app_mention(
    secret: str,
    text: str,
    *,
    user: str = "U1",
    channel: str = "C1",
    ts: str | None = None,
    event_id: str | None = None,
    retry_num: int | None = None,
    timestamp: int | None = None,
) -> SignedRequest:
    """``@miniship <text>`` in ``channel``. Slack's text starts with the mention
    ``<@U0BOT>``; it is prepended unless ``text`` already starts with ``<@``."""
    ts = ts or _unique_ts()
    full = text if text.startswith("<@") else f"<@{BOT_USER_ID}> {text}"
    payload: dict[str, Any] = {
        "type": "app_mention",
        "user": user,
        "text": full,
        "ts": ts,
        "team": TEAM_ID,
        "channel": channel,
        "event_ts": ts,
    }
    return event(secret, payload, event_id=event_id, retry_num=retry_num, timestamp=timestamp)


def app_home_opened(
    secret: str,
    user: str = "U1",
    tab: str = "home",
    *,
    event_id: str | None = None,
    timestamp: int | None = None,
) -> SignedRequest:
    """The user opened the app's Home (``tab="home"``) or Messages (``"messages"``) tab."""
    payload: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user,
        "channel": dm_channel(user),
        "tab": tab,
        "event_ts": _unique_ts(),
    }
    return event(secret, payload, event_id=event_id, timestamp=timestamp)


def view_submission(
    secret: str,
    callback_id: str,
    values: dict[str, dict[str, Any]],
    *,
    user: str = "U1",
    private_metadata: str = "",
    trigger_id: str = DEFAULT_TRIGGER_ID,
    timestamp: int | None = None,
) -> SignedRequest:
    """A modal submitted. ``values`` is ``view.state.values``: ``{block_id: {action_id:
    state}}``; a plain string state is shorthand for a ``plain_text_input`` value."""
    state = {
        block: {
            action: ({"type": "plain_text_input", "value": v} if isinstance(v, str) else dict(v))
            for action, v in actions.items()
        }
        for block, actions in values.items()
    }
    view_id = f"V{next(_serial):08d}"
    payload: dict[str, Any] = {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "user": _user(user),
        "api_app_id": APP_ID,
        "token": "verification-token-unused",
        "trigger_id": trigger_id,
        "view": {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": "modal",
            "blocks": [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": state},
            "hash": f"1732430000.{view_id}",
            "title": {"type": "plain_text", "text": "miniship"},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": None,
            "submit": {"type": "plain_text", "text": "Submit"},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": APP_ID,
            "external_id": "",
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return _interactive(secret, payload, timestamp)
