"""The CI API: what a pipeline hands miniship, over HTTP with a bearer token.

    POST /api/v1/apps/{app}/releases                    upload a version (template or code)
    POST /api/v1/apps/{app}/releases/{version}/archive  upload a build (a zip) of an app
                                                        owned directly
    POST /api/v1/apps/{app}/releases/{version}/submit   submit it for review
    POST /api/v1/apps/{app}/releases/{version}/publish  publish it (now, or at/in a time)
    GET  /api/v1/apps/{app}/releases/{version}          where it stands on each platform
    GET  /api/openapi.json                              this API, described (no token needed)

Each call is a command line (``upload demo wechat 1.2.0 …``) run by the same runner as
a typed command, as ``token:<name>``: the same role check (the token's roles and apps,
:mod:`handlers.tokens`), freezes and locks (``override`` in the body, with the override
role), the two-person rule (an app with ``approvals = 1`` answers 202 with the request a
person approves in Slack) and history. A call answers the questions a command asks, as
``--yes`` does in a script: calling is the confirmation. What ran is then shown on the
release's card in Slack and in its thread (:attr:`CiApi.relays`), as a typed command is.

Bodies are JSON (at most :data:`MAX_JSON` bytes) read into the pydantic models below; the
OpenAPI document is generated from those same models and :data:`OPERATIONS`, so it
cannot drift from what the routes accept. Every refusal is a 4xx with
``{"error": {"code", "message"}}`` — a platform that refused too (409,
``platform_refused``); a platform that failed on a passing fault (busy, a timeout, its
5xx) is 503 with what happened on each platform: try again later.

The routes are on every HTTP server miniship runs (see bot.py): Slack's in HTTP mode,
and MINISHIP_PUSH_PORT and MINISHIP_OPS_PORT when set.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.json_schema import models_json_schema

from handlers import policy, views
from handlers.archives import ArchiveError
from handlers.commands import Commands, Reply, find
from handlers.commands._words import APP, MAX_VERSION, VERSION
from handlers.config import AppEntry
from handlers.listeners import tell
from handlers.releases import Actor
from handlers.tokens import ACTOR_PREFIX, Tokens, may
from handlers.work import STOPPING
from storage import Store
from storage.models import ApiToken, utcnow

__all__ = ["MAX_JSON", "OPERATIONS", "CiApi", "Release", "openapi", "parse_body", "release_of"]

log = logging.getLogger(__name__)

MAX_JSON = 64 * 1024  # a body names a version, its platforms and notes
ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")
PREFIX = "/api"

# -- what goes in and out ---------------------------------------------------------------

PlatformName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Version = Annotated[str, Field(pattern=VERSION.pattern, max_length=MAX_VERSION)]
Platforms = Annotated[list[PlatformName], Field(max_length=8)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UploadBody(_Body):
    """Upload ``version``: the app's template (or ``template``), or, for an app owned
    directly, its configured code directory through the platform's CLI."""

    version: Version
    platforms: Platforms = Field(default_factory=list)
    notes: str = Field("", max_length=1000)
    template: int | None = Field(None, ge=0, le=999_999_999_999_999_999)

    @field_validator("notes")
    @classmethod
    def _notes(cls, value: str) -> str:
        first = value.split(maxsplit=1)[:1]
        if first and first[0].lower() == "template":  # the command would read a template id
            raise ValueError("notes may not start with the word 'template'; use the template field")
        return value


class ArchiveQuery(_Body):
    """What goes with a build's zip, in the query string."""

    platforms: str = Field(
        "",
        pattern=r"^([a-z][a-z0-9_]{0,31}(,[a-z][a-z0-9_]{0,31}){0,7})?$",
        description="comma-separated (default: every platform the app is on)",
    )
    notes: str = Field("", max_length=1000)

    @field_validator("notes")
    @classmethod
    def _notes(cls, value: str) -> str:
        first = value.split(maxsplit=1)[:1]
        if first and first[0].lower() in ("template", "code"):
            raise ValueError(f"notes may not start with the word {first[0]!r}")
        return value


class SubmitBody(_Body):
    platforms: Platforms = Field(default_factory=list)
    expedite: bool = False


class PublishBody(_Body):
    platforms: Platforms = Field(default_factory=list)
    when: str | None = Field(
        None,
        pattern=r"^(at|in) [0-9A-Za-z :/.+-]{1,60}$",
        description="`at 2026-12-01 10:00`, `at tomorrow 9:30`, `in 2h`: a timed publish, "
        "in the app's time zone",
    )
    override: str | None = Field(
        None,
        min_length=1,
        max_length=500,
        pattern=r"\S",
        description="why to publish during a freeze or lock (the token needs the override role)",
    )

    @field_validator("when")
    @classmethod
    def _when(cls, value: str | None) -> str | None:
        if value is not None and "--" in value:
            raise ValueError("a time has no '--' in it")
        return value


class ErrorDetail(BaseModel):
    code: str = Field(description="what kind of refusal, e.g. unauthorized, forbidden, refused")
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class PlatformState(BaseModel):
    platform: str
    state: str = Field(description="the state as stored, e.g. in_review, approved, released")
    words: str = Field(description="the state as people read it")
    since: datetime | None = Field(description="when the moment that matters happened (UTC)")
    reason: str = Field(description="the platform's reason, where the state has one")


class Release(BaseModel):
    app: str
    version: str
    notes: str
    created_by: str
    platforms: list[PlatformState]


class Outcome(BaseModel):
    outcome: Literal["ok", "failed", "skipped", "requested", "scheduled"]
    message: str = Field(description="what a person would have been told, as in Slack")
    app: str
    version: str
    request: int | None = Field(
        None, description="the approval request a second person must approve (outcome requested)"
    )
    release: Release | None = None


# -- the operations ---------------------------------------------------------------------

Handler = Callable[["Call"], Awaitable[web.Response]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # under PREFIX
    name: str  # operationId
    summary: str
    command: str | None  # the command it runs (None: a read, the view role)
    body: type[_Body] | None
    answer: type[BaseModel]
    codes: tuple[int, ...]  # what it may answer besides 401 and the body's 4xx
    query: type[_Body] | None = None  # read from the query string (a zip body)


@dataclass
class Call:
    """One authenticated call: the token, the app and version its path names, its body."""

    request: web.Request
    operation: Operation
    token: ApiToken
    app: AppEntry
    version: str | None


OPERATIONS = (
    Operation(
        "post",
        "/v1/apps/{app}/releases",
        "upload",
        "Upload a version (the app's template, or its code for an app owned directly)",
        "upload",
        UploadBody,
        Outcome,
        (200, 404, 409, 503),
    ),
    Operation(
        "post",
        "/v1/apps/{app}/releases/{version}/archive",
        "upload_archive",
        "Upload a build of an app owned directly: the zip of its project (with "
        "project.config.json for WeChat), uploaded with miniprogram-ci or minidev",
        "upload",
        None,
        Outcome,
        (200, 400, 404, 409, 413, 415, 503),
        query=ArchiveQuery,
    ),
    Operation(
        "post",
        "/v1/apps/{app}/releases/{version}/submit",
        "submit",
        "Submit an uploaded version for review",
        "submit",
        SubmitBody,
        Outcome,
        (200, 202, 404, 409, 503),
    ),
    Operation(
        "post",
        "/v1/apps/{app}/releases/{version}/publish",
        "publish",
        "Publish an approved version, now or at a given time",
        "publish",
        PublishBody,
        Outcome,
        (200, 202, 404, 409, 503),
    ),
    Operation(
        "get",
        "/v1/apps/{app}/releases/{version}",
        "release",
        "Where a release stands on each platform",
        None,
        None,
        Release,
        (200, 404, 503),
    ),
)


class Refused(Exception):
    """An answer with a JSON error: ``status`` and ``code``, ``message`` for people."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _error(status: int, code: str, message: str) -> web.Response:
    body = ErrorBody(error=ErrorDetail(code=code, message=message))
    response = web.json_response(body.model_dump(), status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="miniship"'
    if status == 413:
        response.force_close()  # the rest of the body is not read
    return response


# -- the routes -------------------------------------------------------------------------


class CiApi:
    """The API over ``commands`` (the same runner Slack or the console uses)."""

    def __init__(self, commands: Commands, *, max_archive: int = 32 * 2**20) -> None:
        """``max_archive``: the largest build (zip) taken, in bytes."""
        self.commands = commands
        self.max_archive = max_archive
        self.service = commands.service
        self.tokens = Tokens(commands.service.store)
        self.relays: list[Callable[[Reply], Awaitable[None]]] = []
        """Hear each reply of a command an API call ran (Slack: the release card)."""

    def web_app(self) -> web.Application:
        """The API as an application of its own, mounted at ``/api`` (:meth:`mount`)."""
        app = web.Application(middlewares=[_json_errors])
        app.router.add_get("/openapi.json", self.document)
        for op in OPERATIONS:
            app.router.add_route(op.method.upper(), op.path, self._handler(op))
        return app

    def mount(self, app: web.Application) -> None:
        """Serve the API on ``app`` (another server's application, before it starts)."""
        app.add_subapp(PREFIX, self.web_app())

    async def document(self, request: web.Request) -> web.Response:
        return web.json_response(openapi())

    def _handler(self, op: Operation) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            work = self.service.work
            if work.stopping:
                return _error(503, "stopping", STOPPING)
            async with work.doing():
                try:
                    call = await self._authenticated(request, op)
                    return await self._answer(call)
                except Refused as exc:
                    return _error(exc.status, exc.code, exc.message)

        return handle

    async def _authenticated(self, request: web.Request, op: Operation) -> Call:
        given = request.headers.get("Authorization", "")
        scheme, _, secret = given.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Refused(401, "unauthorized", "send the token as `Authorization: Bearer <token>`")
        row = await self.tokens.verify(secret.strip())
        if row is None:
            log.warning("refused an API call with a token miniship did not make")
            raise Refused(401, "unauthorized", "that is not a token miniship made")
        if row.revoked_at is not None:
            log.warning("refused an API call with the revoked token %s", row.name)
            raise Refused(401, "token_revoked", f"the token {row.name} was revoked")
        assert row.id is not None
        await self.service.store.token_used(row.id, utcnow())
        key = request.match_info["app"]
        await self.commands.admin.apps.refresh()  # apps another replica added or removed
        app = self.service.config.apps.get(key)
        if app is None or key.lower() == "all" or not APP.fullmatch(key):
            await self._record(row, op, "refused", f"no app called {key[:64]!r}", None)
            raise Refused(404, "not_found", f"miniship releases no app called {key[:64]!r}")
        version = request.match_info.get("version")
        if version is not None and not (VERSION.fullmatch(version) and len(version) <= 64):
            await self._record(row, op, "refused", "not a version", app)
            raise Refused(422, "invalid", f"{version[:64]!r} is not a version, like 1.2.0")
        call = Call(request, op, row, app, version)
        role = _role(op)
        if not may(row, app, role):
            await self._record(row, op, "refused", f"the token lacks {role} on {app.key}", app)
            raise Refused(
                403, "forbidden", f"the token {row.name} may not {op.name} on {app.key} ({role})"
            )
        return call

    async def _answer(self, call: Call) -> web.Response:
        op = call.operation
        if op.query is not None:
            return await self._archive(call, op.query)
        if op.body is None:
            return await self.release(call)
        body = await _read_body(call.request, op.body)
        if isinstance(body, Refused):
            await self._record(call.token, op, "refused", body.message, call.app, call.version)
            raise body
        override = getattr(body, "override", None)
        if override is not None and not may(call.token, call.app, "override"):
            await self._record(
                call.token, op, "refused", "override needs the override role", call.app
            )
            raise Refused(403, "forbidden", f"the token {call.token.name} has no override role")
        version = body.version if isinstance(body, UploadBody) else str(call.version)
        return await self._run(call, version, _line(op, call.app.key, version, body))

    async def _run(self, call: Call, version: str, line: str) -> web.Response:
        """Run ``line`` as the token (its questions answered), tell the relays, answer."""
        reply = await self.commands.handle(_actor(call.token), f"{line} --yes")
        if not reply.error:
            await tell(self.relays, reply, "could not show an API call's reply in Slack")
        return await self._outcome(call, version, reply)

    async def _archive(self, call: Call, query: type[_Body]) -> web.Response:
        """A build's zip: unpacked, uploaded (``upload … code <id>``), then removed."""
        read = await self._read_archive(call.request, query)
        if isinstance(read, Refused):
            await self._record(call.token, call.operation, "refused", read.message, call.app)
            raise read
        asked, data = read
        archives = self.commands.archives
        if archives is None:
            raise Refused(409, "refused", "this miniship has no folder for builds")
        try:
            ident = await asyncio.to_thread(archives.unpack, data)
        except ArchiveError as exc:
            await self._record(call.token, call.operation, "refused", str(exc), call.app)
            raise Refused(422, "bad_archive", str(exc)) from None
        assert isinstance(asked, ArchiveQuery) and call.version is not None
        platforms = asked.platforms.replace(",", " ")
        line = f"upload {call.app.key} {platforms} {call.version} code {ident} {asked.notes}"
        try:
            return await self._run(call, call.version, " ".join(line.split()))
        finally:
            await asyncio.to_thread(archives.remove, ident)

    async def _read_archive(
        self, request: web.Request, query: type[_Body]
    ) -> tuple[_Body, bytes] | Refused:
        try:
            asked = query.model_validate(dict(request.query))
        except ValidationError as exc:
            return _invalid(exc)
        if request.content_type not in ZIP_TYPES:
            return Refused(
                415, "unsupported_media_type", "send the build as Content-Type: application/zip"
            )
        limit = self.max_archive
        too_large = Refused(413, "too_large", f"the archive is over {limit / 2**20:g} MiB")
        if request.content_length is not None and request.content_length > limit:
            return too_large
        data = bytearray()
        while chunk := await request.content.readany():
            data += chunk
            if len(data) > limit:
                return too_large
        if not data:
            return Refused(400, "empty", "send the zip of the build as the body")
        return asked, bytes(data)

    async def _outcome(self, call: Call, version: str, reply: Reply) -> web.Response:
        if reply.error:
            raise Refused(409, "refused", reply.text)
        if reply.outcome == "failed" and not reply.transient:  # the platform said no
            raise Refused(409, "platform_refused", reply.text)
        release = await self._release(call.app, version)
        if reply.request is not None:
            kind, status = "requested", 202
        elif reply.outcome == "failed":  # busy, a timeout, a 5xx: try again later
            kind, status = "failed", 503
        elif reply.outcome == "skipped":
            kind, status = "skipped", 200
        elif reply.outcome == "":  # a timed publish: planned, not done yet
            kind, status = "scheduled", 202
        else:
            kind, status = "ok", 200
        answer = Outcome(
            outcome=kind,
            message=reply.text,
            app=call.app.key,
            version=version,
            request=reply.request,
            release=release,
        )
        return web.json_response(answer.model_dump(mode="json"), status=status)

    async def release(self, call: Call) -> web.Response:
        assert call.version is not None
        found = await self._release(call.app, call.version)
        await self._record(call.token, call.operation, "ok", "read", call.app, call.version)
        if found is None:
            raise Refused(404, "not_found", f"{call.app.key} {call.version} was never uploaded")
        return web.json_response(found.model_dump(mode="json"))

    async def _release(self, app: AppEntry, version: str) -> Release | None:
        return await release_of(self.service.store, app, version)

    async def _record(
        self,
        token: ApiToken,
        op: Operation,
        outcome: str,
        message: str,
        app: AppEntry | None,
        version: str | None = None,
    ) -> None:
        """A call the runner did not record: a read, or one refused before it ran."""
        await self.service.store.record(
            actor=_actor(token).id,
            action=f"api {op.name}",
            outcome=outcome,
            app=app.key if app else None,
            version=version,
            message=f"{op.method.upper()} {PREFIX}{op.path}: {message}",
        )


async def release_of(store: Store, app: AppEntry, version: str) -> Release | None:
    """The release as the API and the webhooks show it (None: never uploaded)."""
    row = await store.release(app.key, version)
    if row is None or row.id is None:
        return None
    card = views.card(app, row, await store.targets(row.id))
    return Release(
        app=app.key,
        version=row.version,
        notes=row.notes,
        created_by=row.created_by,
        platforms=[
            PlatformState(
                platform=t.platform,
                state=t.state.value,
                words=policy.words(t.state),
                since=t.at,
                reason=t.reason,
            )
            for t in card.targets
        ],
    )


def _actor(token: ApiToken) -> Actor:
    return Actor(ACTOR_PREFIX + token.name)


def _role(op: Operation) -> str:
    command = find(op.command) if op.command else None
    return command.role if command is not None and command.role else "view"


def _line(op: Operation, app: str, version: str, body: _Body) -> str:
    """The command line an API call is."""
    platforms = " ".join(getattr(body, "platforms", ()))
    words = [op.command or "", app, platforms, version]
    if isinstance(body, UploadBody):
        if body.template is not None:
            words.append(f"template {body.template}")
        words.append(body.notes)
    elif isinstance(body, SubmitBody) and body.expedite:
        words.append("--expedite")
    elif isinstance(body, PublishBody):
        words.append(body.when or "")
        if body.override is not None:
            words.append(f"--override {' '.join(body.override.split())}")
    return " ".join(w for w in words if w)


async def _read_body(request: web.Request, model: type[_Body]) -> _Body | Refused:
    """The JSON body as ``model``, or what is wrong with it (nothing past the limit read)."""
    if request.content_length is not None and request.content_length > MAX_JSON:
        return Refused(413, "too_large", f"the body is over {MAX_JSON // 1024} KiB")
    raw = bytearray()
    while chunk := await request.content.readany():
        raw += chunk
        if len(raw) > MAX_JSON:
            return Refused(413, "too_large", f"the body is over {MAX_JSON // 1024} KiB")
    return parse_body(bytes(raw), request.content_type, model)


def parse_body(raw: bytes, content_type: str, model: type[_Body]) -> _Body | Refused:
    """``raw`` (sent as ``content_type``) read as ``model``, or the refusal that says why
    not: 415 not JSON, 400 not well-formed (invalid UTF-8, nesting too deep…), 422 not
    what the model accepts. An empty body is ``{}``."""
    if not raw.strip():
        raw = b"{}"
    elif not re.fullmatch(r"application/(.+\+)?json", content_type):
        return Refused(415, "unsupported_media_type", "send JSON (Content-Type: application/json)")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        return _invalid(exc)


def _invalid(exc: ValidationError) -> Refused:
    first = exc.errors(include_url=False, include_input=False)[0]
    if first["type"] == "json_invalid":
        return Refused(400, "bad_json", f"the body is not JSON: {first['msg']}")
    where = ".".join(str(p) for p in first["loc"]) or "the body"
    msg = str(first["msg"]).removeprefix("Value error, ")
    return Refused(422, "invalid", f"{where}: {msg}")


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Whatever goes wrong under /api answers in JSON: an unknown path 404, a wrong method
    405, anything unforeseen 500 without a traceback (which goes to the log)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        response = _error(exc.status, code, exc.reason)
        if exc.status == 405:
            response.headers["Allow"] = exc.headers.get("Allow", "")
        return response
    except Exception:
        log.exception("the API call %s %s failed", request.method, request.path)
        return _error(500, "internal", "something went wrong; its details are in miniship's log")


# -- the document -----------------------------------------------------------------------

_REFUSALS = {
    400: "The body is not well-formed (not JSON; an empty archive)",
    401: "No token, or not a live one",
    403: "The token lacks the role on this app",
    404: "No such app, or no such release",
    409: "Refused: the release's state, a freeze, a rule or the platform says no",
    413: "The body is too large",
    415: "The body is not of the media type the operation takes",
    422: "The body or a path parameter is not valid",
}


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of :data:`OPERATIONS`, from their pydantic models."""
    models: list[type[BaseModel]] = [ErrorBody, Outcome, Release]
    models += [op.body for op in OPERATIONS if op.body is not None]
    _, top = models_json_schema(
        [(m, "validation") for m in dict.fromkeys(models)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(PREFIX + op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "miniship CI API",
            "version": "1",
            "description": "Hand a build to miniship: upload, submit, publish, and read a "
            "release's state. Each call runs the same command a person types in Slack, "
            "as token:<name>. See docs/ci.md.",
        },
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"content": {"application/json": {"schema": schema}}}


def _operation(op: Operation) -> dict[str, Any]:
    params = [
        {
            "name": "app",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": APP.pattern},
        }
    ]
    if "{version}" in op.path:
        params.append(
            {
                "name": "version",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": VERSION.pattern, "maxLength": MAX_VERSION},
            }
        )
    responses: dict[str, Any] = {}
    for code in sorted({*op.codes, 401, 403, 422, *((400, 413, 415) if op.body else ())}):
        if code in _REFUSALS:
            responses[str(code)] = {"description": _REFUSALS[code], **_ref(ErrorBody)}
        elif code != 503:
            said = {200: "Done", 202: "Waiting: for a second person, or for its time"}
            responses[str(code)] = {"description": said[code], **_ref(op.answer)}
    if op.name == "release":
        responses["200"] = {"description": "The release", **_ref(Release)}
    either = [_ref(m)["content"]["application/json"]["schema"] for m in (Outcome, ErrorBody)]
    responses["503"] = {
        "description": "A platform failed on a passing fault (what happened on each), or "
        "miniship is stopping (an error): try again later",
        "content": {"application/json": {"schema": {"anyOf": either}}},
    }
    doc: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "parameters": params,
        "responses": responses,
    }
    if op.body is not None:
        doc["requestBody"] = {"required": False, **_ref(op.body)}
    if op.query is not None:
        fields = op.query.model_json_schema()["properties"]
        params += [
            {"name": k, "in": "query", "required": False, "schema": v} for k, v in fields.items()
        ]
        zipped = {"schema": {"type": "string", "format": "binary"}}
        doc["requestBody"] = {"required": True, "content": {t: zipped for t in ZIP_TYPES}}
    return doc
