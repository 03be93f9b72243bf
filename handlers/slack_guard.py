"""What a request to Slack's HTTP endpoint must be before Bolt reads it.

Bolt reads a request's body before it checks the signature, and what it cannot read fails
with HTTP 500 and a traceback: a timestamp that is not a number, a body that is not UTF-8,
a ``payload`` that is not a JSON object, JSON nested past the parser's depth. A listener
that finds no ``user_id`` fails after its ack, or never acks (404). This guard, an aiohttp
middleware on Slack's route only (:func:`middleware`), refuses each such request with a
4xx and one warning line that says why — never the body, whose ``response_url`` lets
anyone answer in the channel for 30 minutes — before Bolt sees it:

- 401: no or a non-numeric ``X-Slack-Request-Timestamp``, one more than 5 minutes from
  this machine's clock, or a signature that does not match — the check Bolt makes again
  after us, here over the raw bytes, so a body need not be UTF-8 to be refused as unsigned;
- 400: a signed body that is not UTF-8, that Bolt cannot parse (not a JSON object, or a
  form whose ``payload`` is not one), nested deeper than :data:`MAX_DEPTH`, or without the
  fields miniship's listeners read (:func:`lacking`: who sent it, where to answer);
- 413: a body over aiohttp's 1 MiB.

Bolt's own log line for a failed signature check (INFO, with the whole body) is silenced
by :class:`Silenced`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.request.async_request import AsyncBoltRequest

__all__ = ["MAX_DEPTH", "Refusal", "Silenced", "lacking", "middleware", "refusal"]

log = logging.getLogger(__name__)

MAX_DEPTH = 64  # Slack's deepest payloads (rich text in a message) nest about 10 levels
MAX_SKEW = 5 * 60  # seconds, as Slack documents and Bolt checks
MAX_ID = 64  # Slack's ids are about a dozen characters

# the interactive payloads that name the person who acted (``user.id``)
_BY_A_PERSON = frozenset(
    {
        "block_actions",
        "block_suggestion",
        "view_submission",
        "view_closed",
        "shortcut",
        "message_action",
    }
)

# what Bolt's own middleware reads of any event as objects
_EVENT_OBJECTS = ("message", "previous_message")


class Refusal(NamedTuple):
    """Why a request is refused: the status, the log's reason, and the short answer."""

    status: int
    why: str

    @property
    def answer(self) -> str:
        return "invalid request" if self.status == 401 else "malformed request"


class Silenced(logging.Filter):
    """Drops every record of the logger it is added to.

    For ``slack_bolt.RequestVerification``, whose only line is a failed signature check at
    INFO with the request's whole body: the guard has said it already, without the body.
    Bolt resets that logger's level whenever an app is built, so a level would not stay.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return False


class TokenNotUnused(logging.Filter):
    """Drops Bolt's warning that ``SLACK_BOT_TOKEN`` "will be unused" because a ``client``
    was given: Bolt reads the variable itself, and miniship's client is made from that very
    token, so the warning at every start is wrong and alarming. Other lines pass."""

    SAID = warning_client_prioritized_and_token_skipped()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.SAID


def refusal(
    raw: bytes, headers: Mapping[str, str], secret: str, now: float, query: str = ""
) -> Refusal | None:
    """Why the request (``raw`` body, ``headers``, ``query`` string) to Slack's endpoint
    must be refused at ``now`` (unix seconds); None when Bolt may have it."""
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = lowered.get("x-slack-request-timestamp", "")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return Refusal(401, "X-Slack-Request-Timestamp is missing or not a number")
    if abs(now - int(timestamp)) > MAX_SKEW:
        return Refusal(401, "X-Slack-Request-Timestamp is more than 5 minutes from our clock")
    signed = b"v0:" + timestamp.encode("ascii") + b":" + raw
    expected = "v0=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    signature = lowered.get("x-slack-signature", "").encode("utf-8", "replace")
    if not hmac.compare_digest(expected.encode("ascii"), signature):
        return Refusal(401, "the signature does not match (not signed with our signing secret)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal(400, "the body is not UTF-8")
    try:  # exactly as Bolt will read it after us
        body: Any = AsyncBoltRequest(body=text, query=query, headers=dict(headers)).body
    except Exception as exc:  # whatever Bolt cannot read is the request's fault
        return Refusal(
            400, f"Bolt cannot read the body: not what Slack sends ({type(exc).__name__})"
        )
    if not isinstance(body, dict):
        return Refusal(400, "the body is not a JSON object")
    if _deeper_than(body, MAX_DEPTH):
        return Refusal(400, f"the body is nested deeper than {MAX_DEPTH} levels")
    why = lacking(body)
    return Refusal(400, why) if why else None


def lacking(body: Mapping[str, Any]) -> str | None:
    """What a (verified, parsed) request lacks of what miniship's listeners read — who
    sent it, where it came from, where to answer — or None. Request kinds miniship does
    not listen to are Bolt's to turn away."""
    if "command" in body:  # a slash command's form fields
        return _texts(body, "a slash command", "command", "user_id", "response_url") or (
            _optional_texts(body, "a slash command", "channel_id", "text")
        )
    kind = body.get("type")
    if kind is None and "ssl_check" in body:
        return None  # Slack checking our certificate: Bolt answers it
    if not isinstance(kind, str):
        return "neither a slash command nor a payload or event of any type"
    if kind in _BY_A_PERSON:
        return _by_a_person(body, kind)
    if kind == "event_callback":
        return _event(body)
    return None


def middleware(path: str, secret: str, clock: Callable[[], float] = time.time) -> Middleware:
    """An aiohttp middleware refusing malformed POSTs to Slack's ``path`` (see the module
    docstring); every other route is left as it is."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "POST" or request.path != path:
            return await handler(request)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            refused: Refusal | None = Refusal(413, "the body is larger than 1 MiB")
        else:
            refused = refusal(raw, request.headers, secret, clock(), request.query_string)
        if refused is None:
            return await handler(request)
        log.warning("refused a Slack request from %s: %s", request.remote, refused.why)
        return web.json_response({"error": refused.answer}, status=refused.status)

    return guard


# --------------------------------------------------------------------------- helpers


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether JSON ``value`` nests more than ``limit`` objects and arrays (no recursion:
    the depth is what is in question)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID


def _texts(body: Mapping[str, Any], what: str, *names: str) -> str | None:
    missing = [n for n in names if not isinstance(body.get(n), str) or not body[n]]
    return f"{what} without {', '.join(missing)}" if missing else None


def _optional_texts(body: Mapping[str, Any], what: str, *names: str) -> str | None:
    wrong = [n for n in names if n in body and not isinstance(body[n], str)]
    return f"{what} whose {', '.join(wrong)} is not text" if wrong else None


def _by_a_person(body: Mapping[str, Any], kind: str) -> str | None:
    user = body.get("user")
    if not isinstance(user, dict) or not _is_id(user.get("id")):
        return f"a {kind} payload without user.id"
    wrong = [
        name
        for name in ("channel", "container", "view", "message")
        if body.get(name) is not None and not isinstance(body[name], dict)
    ]
    if wrong:
        return f"a {kind} payload whose {', '.join(wrong)} is not an object"
    if kind in ("view_submission", "view_closed"):
        view = body.get("view")
        if not isinstance(view, dict) or not all(
            isinstance(view.get(n), str) for n in ("type", "callback_id")
        ):
            return f"a {kind} payload without its view's type and callback_id"
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "a block_actions payload without actions"
        if not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
            return "a block_actions payload with an action that has no action_id"
        on_a_view = (body.get("container") or {}).get("type") == "view"
        if not on_a_view and not isinstance(body.get("response_url"), str):
            return "a click on a message without response_url"  # where its answer goes
    return _optional_texts(body, f"a {kind} payload", "response_url", "trigger_id")


def _event(body: Mapping[str, Any]) -> str | None:
    event = body.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return "an event_callback without an event"
    if "event_id" in body and not _is_id(body["event_id"]):
        return "an event_callback whose event_id is not a short text"
    if any(event.get(n) is not None and not isinstance(event[n], dict) for n in _EVENT_OBJECTS):
        return "an event_callback whose event has a message that is not an object"
    if event["type"] == "app_mention":
        if not _is_id(event.get("channel")):
            return "an app_mention event without channel"
        if "user" in event and not _is_id(event["user"]):
            return "an app_mention event whose user is not an id"
        return _optional_texts(event, "an app_mention event", "text", "ts", "thread_ts")
    if event["type"] == "app_home_opened":
        if not _is_id(event.get("user")):
            return "an app_home_opened event without user"
        return _optional_texts(event, "an app_home_opened event", "tab")
    return None
