"""A local fake of the Slack Web API: an aiohttp server on 127.0.0.1, port 0.

Use it as an async context manager and point an ``AsyncWebClient`` at it::

    async with FakeSlack(groups={"S0001": ["U1"]}) as slack:
        client = slack.client()  # AsyncWebClient(token="xoxb-test", base_url=slack.base_url)
        app = AsyncApp(signing_secret=SECRET, client=client)
        ...
        [call] = await slack.wait_for("chat.postMessage")
        assert call.params["channel"] == "C1"

Every request is recorded in order as a :class:`Call` (also those answered with an
error). Answers follow Slack: HTTP 200 with ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``; ``fail_next`` can inject any error and HTTP status.

Slack behaviours it imitates on purpose, so handlers get them right:

- ``chat.postMessage`` to a user ID (``U…``/``W…``) posts into the DM with that user and
  answers with the DM's channel ID (:func:`dm_channel`), not the user ID. ``chat.update``
  only finds a message by the ``channel`` *from the answer* plus its ``ts``.
- ``chat.update`` keeps the old blocks when ``blocks`` is omitted; ``[]`` removes them.
- A missing token answers ``not_authed``, a token that is not ``xoxb-…`` ``invalid_auth``.
- Files go up in three steps, as ``files_upload_v2`` sends them: ``files.getUploadURLExternal``
  (``filename``, ``length``) answers a ``file_id`` and an ``upload_url`` on this server; the
  bytes are POSTed there (recorded as an ``"upload"`` call; a length other than the one
  announced is refused with HTTP 400); ``files.completeUploadExternal`` (``files`` JSON
  ``[{"id", "title"}]``, ``channel_id`` or ``channels``, ``thread_ts``, ``initial_comment``)
  shares them: one message per channel, stored like a posted one plus ``"files"``. Every
  file, shared or not, is in :attr:`FakeSlack.files`. ``fail_next("upload", ...)`` fails
  the byte upload.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

TEAM_ID = "T0001"
TEAM_DOMAIN = "miniship-test"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0001"
APP_ID = "A0001"

_FIRST_TS_SECONDS = 1_732_430_000
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata", "files")
_MIME_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif"}


def dm_channel(user: str) -> str:
    """The ID of the bot's DM with ``user`` in the fake: ``"U1"`` → ``"D1"``."""
    return "D" + user[1:]


@dataclass(frozen=True)
class Call:
    """One recorded request.

    ``method`` is the Web API method (``"chat.postMessage"``), ``"response_url"`` or
    ``"upload"`` (the bytes POSTed to an upload URL: ``params`` has ``file_id`` and
    ``length``, the number of bytes received);
    ``params`` merges the query string with the form or JSON body (``blocks``, ``view``,
    ``attachments`` and ``metadata`` sent as JSON strings are decoded); ``token`` is the
    bearer token (or a ``token`` form field), ``None`` if none was sent. ``error`` is the
    error Slack answered (``None`` when ``ok: true``); ``response_name`` is the ``name``
    of :meth:`FakeSlack.response_url` for response_url calls.
    """

    method: str
    params: dict[str, Any]
    token: str | None
    error: str | None = None
    response_name: str | None = None


@dataclass(frozen=True)
class _Failure:
    error: str
    status: int
    retry_after: int


class _SlackError(Exception):
    """Raised by a method handler to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class FakeSlack:
    """The fake Web API. Configure ``groups`` (usergroup ID → member IDs) and ``channels``
    (channel ID → name, for ``conversations.info``) here or by assigning the attributes."""

    def __init__(
        self,
        *,
        groups: Mapping[str, Iterable[str]] | None = None,
        channels: Mapping[str, str] | None = None,
    ) -> None:
        self.groups: dict[str, list[str]] = {k: list(v) for k, v in (groups or {}).items()}
        self.channels: dict[str, str] = dict(channels or {})
        #: (channel, ts) → {"channel", "ts", "text", "blocks", "thread_ts", "updates"}, and
        #: "files" (entries of :attr:`files`) for a message that shared files
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        #: file ID → {"id", "name", "title", "length", "mimetype", "alt_txt", "data" (the
        #: bytes uploaded, None until then), "completed", "shares" ([(channel, ts)])}
        self.files: dict[str, dict[str, Any]] = {}
        #: user ID → the home tab view last published for them (as answered)
        self.home_views: dict[str, dict[str, Any]] = {}
        self._calls: list[Call] = []
        self._failures: dict[str, deque[_Failure]] = {}
        self._ts_counter = itertools.count(1)
        self._view_counter = itertools.count(1)
        self._file_counter = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "apps.connections.open": self._apps_connections_open,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._envelopes = itertools.count(1)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving, by default on 127.0.0.1 with a free port (the Kubernetes
        rehearsal serves it to pods: ``deploy/kubernetes-rehearsal/fake_slack.py``)."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{name}", self._handle_response_url)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        app.router.add_get("/socket", self._handle_socket)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def close(self) -> None:
        """Stop serving (idempotent)."""
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeSlack is not started: use `async with FakeSlack() as slack`")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/api/``, for ``AsyncWebClient(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}/api/"

    def client(self, token: str = "xoxb-test", *, timeout: int = 5) -> AsyncWebClient:  # noqa: S107
        """An ``AsyncWebClient`` that talks to this fake (its own short timeout)."""
        return AsyncWebClient(token=token, base_url=self.base_url, timeout=timeout)

    def response_url(self, name: str = "default") -> str:
        """A response_url whose POSTs are recorded as ``"response_url"`` calls tagged ``name``."""
        return f"http://127.0.0.1:{self.port}/response/{name}"

    # ------------------------------------------------------------------ queries

    def calls(self, method: str | None = None) -> list[Call]:
        """The recorded calls in order, all or only those of ``method``."""
        return [c for c in self._calls if method is None or c.method == method]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109  (a polling deadline, not a cancel scope)
    ) -> list[Call]:
        """Wait until at least ``count`` calls of ``method`` were recorded; return them all.

        Bolt listeners keep running after the ack, so a test must wait for their calls.
        A call is recorded as its answer is sent: the caller may still be handling it.
        Raises ``AssertionError`` (listing what was recorded) after ``timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self.calls(method)
            if len(found) >= count:
                return found
            if loop.time() >= deadline:
                raise AssertionError(
                    f"waited {timeout:g}s for {count} {method!r} call(s), got {len(found)}; "
                    f"recorded: {self._summary()}"
                )
            await asyncio.sleep(0.01)

    def replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """Stored messages posted in the thread of ``(channel, thread_ts)``, oldest first."""
        return [
            m
            for (ch, _), m in sorted(self.messages.items(), key=lambda kv: float(kv[0][1]))
            if ch == channel and m["thread_ts"] == thread_ts
        ]

    def reset(self) -> None:
        """Forget calls, messages, files, home views and pending failures (keeps groups,
        channels)."""
        self._calls.clear()
        self.messages.clear()
        self.files.clear()
        self.home_views.clear()
        self._failures.clear()

    def fail_next(
        self, method: str, error: str = "ratelimited", status: int = 429, *, retry_after: int = 0
    ) -> None:
        """Answer the next call of ``method`` with ``{"ok": false, "error": error}`` and HTTP
        ``status`` (a 429 also carries ``Retry-After: retry_after``). Calls queue up."""
        self._failures.setdefault(method, deque()).append(_Failure(error, status, retry_after))

    def _summary(self) -> str:
        if not self._calls:
            return "nothing"
        return ", ".join(c.method + (f" ({c.error})" if c.error else "") for c in self._calls)

    # ------------------------------------------------------------------ HTTP

    def _injected(self, call: Call) -> web.Response | None:
        queue = self._failures.get(call.method)
        if not queue:
            return None
        failure = queue.popleft()
        self._calls.append(
            Call(call.method, call.params, call.token, failure.error, call.response_name)
        )
        headers = {"Retry-After": str(failure.retry_after)} if failure.status == 429 else None
        return web.json_response(
            {"ok": False, "error": failure.error}, status=failure.status, headers=headers
        )

    # ------------------------------------------------------------------ Socket Mode

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"ws://127.0.0.1:{self.port}/socket"}

    async def _handle_socket(self, request: web.Request) -> web.WebSocketResponse:
        """Slack's side of a Socket Mode connection: hello, then envelopes and their acks."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": APP_ID}}
        )
        self._sockets.append(ws)
        try:
            async for message in ws:
                try:
                    ack = json.loads(message.data)
                except (TypeError, ValueError):
                    continue
                waiting = self._acks.pop(str(ack.get("envelope_id")), None)
                if waiting is not None and not waiting.done():
                    waiting.set_result(ack)
        finally:
            self._sockets.remove(ws)
        return ws

    async def socket_connected(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until a Socket Mode client is connected."""
        for _ in range(int(timeout / 0.02)):
            if self._sockets:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("no Socket Mode client connected")

    async def socket_send(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Deliver one envelope (``slash_commands``, ``interactive``, ``events_api``) over
        Socket Mode and return the client's acknowledgement."""
        await self.socket_connected()
        envelope_id = f"env-{next(self._envelopes)}"
        done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = done
        await self._sockets[0].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": retry_attempt,
                "retry_reason": retry_reason,
            }
        )
        return await asyncio.wait_for(done, timeout)

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _read_params(request)
        token = _bearer(request) or params.pop("token", None)
        params.pop("token", None)
        call = Call(method, params, token)
        injected = self._injected(call)
        if injected is not None:
            return injected
        try:
            if not token:
                raise _SlackError("not_authed")
            # apps.connections.open takes the app-level token; everything else the bot's
            if not token.startswith("xapp-" if method == "apps.connections.open" else "xoxb-"):
                raise _SlackError("invalid_auth")
            handler = self._methods.get(method)
            if handler is None:
                raise _SlackError("unknown_method")
            answer = handler(params)
        except _SlackError as exc:
            self._calls.append(Call(method, params, token, exc.error))
            return web.json_response({"ok": False, "error": exc.error})
        self._calls.append(call)
        return web.json_response({"ok": True, **answer})

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        params = await _read_params(request)
        call = Call("response_url", params, None, response_name=request.match_info["name"])
        injected = self._injected(call)
        if injected is not None:
            return injected
        self._calls.append(call)
        return web.json_response({"ok": True})

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """The upload URL handed out by ``files.getUploadURLExternal``: the file's bytes,
        raw (as slack_sdk sends them) or as a multipart ``file`` field. Answers like
        files.slack.com: ``text/plain`` "OK - <length>", or an HTTP error."""
        file_id = request.match_info["file_id"]
        data = await _read_upload(request)
        call = Call("upload", {"file_id": file_id, "length": len(data)}, None)
        injected = self._injected(call)
        if injected is not None:
            return injected
        stored = self.files.get(file_id)
        problem = None
        if stored is None:
            problem, status = "file_not_found", 404
        elif stored["completed"]:
            problem, status = "already_completed", 400
        elif len(data) != stored["length"]:
            problem, status = f"length_mismatch: announced {stored['length']}", 400
        if problem is not None:
            self._calls.append(Call(call.method, call.params, None, problem))
            return web.Response(status=status, text=problem, content_type="text/plain")
        assert stored is not None
        stored["data"] = data
        self._calls.append(call)
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    # ------------------------------------------------------------------ methods

    def _next_ts(self) -> str:
        micros = _FIRST_TS_SECONDS * 1_000_000 + next(self._ts_counter) * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": "Miniship Test",
            "user": "miniship",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _required(params, "channel", "channel_not_found")
        if channel[0] in "UW":
            channel = dm_channel(channel)
        text, blocks = params.get("text"), params.get("blocks")
        if not text and not blocks and not params.get("attachments"):
            raise _SlackError("no_text")
        ts = self._next_ts()
        thread_ts = params.get("thread_ts") or None
        self.messages[(channel, ts)] = {
            "channel": channel,
            "ts": ts,
            "text": text or "",
            "blocks": blocks or [],
            "thread_ts": thread_ts,
            "updates": 0,
        }
        return {
            "channel": channel,
            "ts": ts,
            "message": _message_json(self.messages[(channel, ts)]),
        }

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = params.get("channel"), params.get("ts")
        stored = self.messages.get((str(channel), str(ts)))
        if stored is None:
            raise _SlackError("message_not_found")
        if params.get("text") is None and params.get("blocks") is None:
            raise _SlackError("no_text")
        if params.get("text") is not None:
            stored["text"] = params["text"]
        if params.get("blocks") is not None:
            stored["blocks"] = params["blocks"]
        stored["updates"] += 1
        return {
            "channel": stored["channel"],
            "ts": stored["ts"],
            "text": stored["text"],
            "message": _message_json(stored),
        }

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        _required(params, "channel", "channel_not_found")
        _required(params, "user", "user_not_in_channel")
        if not params.get("text") and not params.get("blocks"):
            raise _SlackError("no_text")
        return {"message_ts": self._next_ts()}

    def _full_view(self, view: Any) -> dict[str, Any]:
        if not isinstance(view, dict) or "type" not in view:
            raise _SlackError("invalid_arguments")
        view_id = f"V{next(self._view_counter):08d}"
        return {
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            "clear_on_close": False,
            "notify_on_close": False,
            **view,
            "id": view_id,
            "team_id": TEAM_ID,
            "state": {"values": {}},
            "hash": f"{_FIRST_TS_SECONDS}.{view_id}",
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
        }

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user = _required(params, "user_id", "invalid_arguments")
        view = self._full_view(params.get("view"))
        self.home_views[user] = view
        return {"view": view}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        _required(params, "trigger_id", "invalid_arguments")
        return {"view": self._full_view(params.get("view"))}

    def _usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        group = _required(params, "usergroup", "invalid_arguments")
        if group not in self.groups:
            raise _SlackError("no_such_subteam")
        return {"users": list(self.groups[group])}

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _required(params, "channel", "channel_not_found")
        if channel not in self.channels and channel[0] not in "CGD":
            raise _SlackError("channel_not_found")
        return {
            "channel": {
                "id": channel,
                "name": self.channels.get(channel, channel.lower()),
                "is_channel": channel[0] == "C",
                "is_private": channel[0] == "G",
                "is_im": channel[0] == "D",
            }
        }

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        users = str(params.get("users") or "")
        if not users or "," in users or users[0] not in "UW":
            raise _SlackError("user_not_found")  # the bot opens one person's DM only
        return {"channel": {"id": dm_channel(users)}}

    def _files_get_upload_url_external(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = _required(params, "filename", "invalid_arguments")
        try:
            length = int(_required(params, "length", "invalid_arguments"))
        except ValueError:
            raise _SlackError("invalid_arguments") from None
        if length <= 0:
            raise _SlackError("invalid_arguments")
        file_id = f"F{next(self._file_counter):010d}"
        extension = filename.rpartition(".")[2].lower() if "." in filename else ""
        self.files[file_id] = {
            "id": file_id,
            "name": filename,
            "title": filename,
            "length": length,
            "mimetype": _MIME_TYPES.get(extension, "application/octet-stream"),
            "alt_txt": params.get("alt_txt") or "",
            "data": None,
            "completed": False,
            "shares": [],
        }
        return {"upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload_external(self, params: dict[str, Any]) -> dict[str, Any]:
        listed = params.get("files")
        if not isinstance(listed, list) or not listed:
            raise _SlackError("invalid_arguments")
        chosen: list[dict[str, Any]] = []
        for item in listed:
            if not isinstance(item, dict) or not item.get("id"):
                raise _SlackError("invalid_arguments")
            stored = self.files.get(str(item["id"]))
            if stored is None or stored["completed"]:
                raise _SlackError("file_not_found")
            if stored["data"] is None:  # never uploaded to its URL
                raise _SlackError("file_upload_not_complete")
            chosen.append(stored)
        channels = [str(params["channel_id"])] if params.get("channel_id") else []
        channels += [c for c in str(params.get("channels") or "").split(",") if c]
        thread_ts = params.get("thread_ts") or None
        if thread_ts and len(channels) != 1:
            raise _SlackError("invalid_arguments")  # a thread is in exactly one channel
        for channel in channels:
            if channel[0] not in "CGDUW":
                raise _SlackError("channel_not_found")
        for stored, item in zip(chosen, listed, strict=True):
            stored["title"] = str(item.get("title") or stored["name"])
            stored["completed"] = True
        for channel in channels:
            where = dm_channel(channel) if channel[0] in "UW" else channel
            ts = self._next_ts()
            self.messages[(where, ts)] = {
                "channel": where,
                "ts": ts,
                "text": str(params.get("initial_comment") or ""),
                "blocks": [],
                "thread_ts": thread_ts,
                "updates": 0,
                "files": chosen,
            }
            for stored in chosen:
                stored["shares"].append((where, ts))
        return {"files": [{"id": f["id"], "title": f["title"]} for f in chosen]}


def _required(params: dict[str, Any], key: str, error: str) -> str:
    value = params.get(key)
    if not value:
        raise _SlackError(error)
    return str(value)


def _message_json(stored: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "team": TEAM_ID,
        "text": stored["text"],
        "ts": stored["ts"],
    }
    if stored["blocks"]:
        message["blocks"] = stored["blocks"]
    if stored["thread_ts"]:
        message["thread_ts"] = stored["thread_ts"]
    return message


async def _read_upload(request: web.Request) -> bytes:
    """The bytes POSTed to an upload URL: the body, or a multipart form's file part."""
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        for value in form.values():
            if isinstance(value, web.FileField):
                return value.file.read()
        return b""
    return await request.read()


def _bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Query string plus form or JSON body; JSON-in-a-string fields decoded."""
    params: dict[str, Any] = dict(request.query)
    if request.body_exists:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    for key in _JSON_FIELDS:
        value = params.get(key)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            params[key] = json.loads(value)
    return params
