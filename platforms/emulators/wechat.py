"""A local stand-in for api.weixin.qq.com: third-party-platform tokens and code management.

The emulator is one third-party platform (component appid, secret and the verify ticket it
"pushed") with authorized mini programs, a template library, and per mini program: the
committed trial version, its audits, the live release and its withdraw counters. It
follows the fact sheet (shared/reference/wechat-api.md): errors are HTTP 200 with
``{"errcode", "errmsg": "<text> rid: …"}``, token endpoints answer without ``errcode``,
bodies are ``application/json; encoding=utf-8``.

Rules enforced:

- method (43001/43002), token present (41001), known (40001), not expired (42001, tokens
  live 7200 s on the emulator clock) and of the right kind (61014 / 48001);
- a body where one is required (44002), parseable JSON object (47001);
- component token: appid (41018/40013), secret (41004/40125), verify ticket (61006);
  authorizer token: platform appid (61011), authorized mini program (61003), refresh
  token (61023);
- commit: known template (85014), ``ext_json`` a JSON object string (85048) whose
  ``extAppid`` and ``pages`` fit (85013), ``user_version`` 1–64 chars (40097);
- submit_audit: a commit (85086), privacy scan finished (61039, when
  ``privacy_scan_seconds`` is set), one audit in review per mini program (85009),
  ``item_list`` of 1–5 complete items (85023/85010) with the mini program's categories
  (85008) and the code's pages (85007), provider quota left this month (85085);
- get_auditstatus: the audit belongs to the mini program (85012); get_latest_auditstatus:
  something was submitted (85058);
- undocodeaudit: only while in review (85019, 87012 once decided), 5 a day and 10 a month
  per mini program in Beijing time (87013);
- release: the latest audit exists (85019), is approved (85020), not yet released (85052).

Reviews are decided lazily by :meth:`Emulator.decide` on the commit's ``user_desc`` plus
the submit's ``version_desc``; a new submission supersedes an unreleased approval.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import web
from pydantic import BaseModel, SecretStr

from platforms.base import BEIJING  # WeChat's daily and monthly limits reset here
from platforms.emulators.base import Emulator, OutgoingPush, Provisioned
from platforms.wechat import WeChatPlatform, as_int
from platforms.wechat_crypto import WeChatCrypto

__all__ = ["WeChatEmulator"]

TOKEN_SECONDS = 7200
TICKET_PUSH_SECONDS = 600  # WeChat pushes a new component_verify_ticket every 10 minutes
TICKETS_KEPT = 72  # previous tickets still accepted (12 h of pushes)
PUSH_EVENTS = {0: "weapp_audit_success", 1: "weapp_audit_fail", 4: "weapp_audit_delay"}
PUSH_OUTCOMES = {0: "approved", 1: "rejected", 4: "delayed"}
UNDO_PER_DAY, UNDO_PER_MONTH = 5, 10
QUOTA_LIMIT = 20
MAX_USER_VERSION = 64
MAX_ITEMS = 5
REQUIRED_ITEM_FIELDS = ("first_class", "second_class", "first_id", "second_id")
JSON_TYPE = "application/json; encoding=utf-8"

TEMPLATE_PAGES = ("pages/index/index", "pages/list/list", "pages/detail/detail")
CATEGORIES: tuple[dict[str, Any], ...] = (
    {"first_class": "工具", "second_class": "效率", "first_id": 287, "second_id": 616},
    {"first_class": "商家自营", "second_class": "百货", "first_id": 304, "second_id": 321},
)

ERRMSG: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40013: "invalid appid",
    40097: "invalid args",
    40125: "invalid appsecret",
    41001: "access_token missing",
    41004: "appsecret missing",
    41018: "missing component_appid",
    42001: "access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    44002: "empty post data",
    47001: "data format error",
    48001: "api unauthorized",
    61003: "component is not authorized by this account",
    61006: "component ticket is invalid",
    61011: "invalid component",
    61014: "must use component token for component api",
    61023: "refresh_token is invalid",
    61039: "privacy api detection is not finished, please wait and retry",
    85007: "page path error",
    85008: "category is in invalid format",
    85009: "already submit a version under auditing",
    85010: "missing required data",
    85012: "invalid audit id",
    85013: "invalid ext_json, parse fail or containing invalid path",
    85014: "template not exist",
    85019: "no version is under auditing",
    85020: "status not allowed",
    85023: "item size is not in valid range",
    85048: "parse ext_json fail",
    85052: "app is already released",
    85058: "no valid audit_id exist",
    85085: "submit audit reach limit, please try later",
    85086: "must commit before submit audit",
    86001: "component experience version not exists",
    87012: "forbid revert this version release",
    87013: "no quota to undo code",
}


class _Fail(Exception):
    """An errcode answer."""

    def __init__(self, errcode: int) -> None:
        super().__init__(errcode)
        self.errcode = errcode


def _rid() -> str:
    return "-".join(secrets.token_hex(4) for _ in range(3))


def _error(errcode: int) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": f"{ERRMSG.get(errcode, 'error')} rid: {_rid()}"}


def _ok(**data: Any) -> dict[str, Any]:
    return {"errcode": 0, "errmsg": "ok", **data}


def _secret_text(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _env_key(app: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in app.upper())


# --------------------------------------------------------------------------- state


@dataclass
class _Component:
    appid: str
    secret: str
    verify_ticket: str
    token: str  # message verification token, for push events
    encoding_aes_key: str

    @classmethod
    def create(cls) -> _Component:
        return cls(
            appid="wx" + secrets.token_hex(8),
            secret=secrets.token_hex(16),
            verify_ticket="ticket@@@" + secrets.token_urlsafe(48),
            token=_secret_text(32),
            encoding_aes_key=_secret_text(43),
        )


@dataclass
class _Token:
    kind: str  # "component" or "authorizer"
    appid: str  # the component's or the mini program's appid
    expires_at: float


@dataclass
class _Template:
    template_id: int
    user_version: str
    user_desc: str
    create_time: int
    pages: list[str]


@dataclass
class _Commit:
    template_id: int
    user_version: str
    user_desc: str
    ext_json: dict[str, Any]
    committed_at: float


@dataclass
class _Audit:
    auditid: int
    user_version: str
    user_desc: str  # of the commit: notes for the review decision
    version_desc: str
    submitted_at: float
    item_list: list[dict[str, Any]] | None = None
    withdrawn_at: float | None = None
    released: bool = False


@dataclass
class _Release:
    version: str
    desc: str
    released_at: float


@dataclass
class _Program:
    """An authorized mini program."""

    appid: str
    original_id: str
    refresh_token: str
    categories: list[dict[str, Any]]
    commit: _Commit | None = None
    audits: list[_Audit] = field(default_factory=list)
    release: _Release | None = None
    undos: list[float] = field(default_factory=list)  # when each withdrawal happened

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> _Program:
        commit, release = data.get("commit"), data.get("release")
        return cls(
            appid=data["appid"],
            original_id=data["original_id"],
            refresh_token=data["refresh_token"],
            categories=list(data["categories"]),
            commit=_Commit(**commit) if commit else None,
            audits=[_Audit(**a) for a in data.get("audits", [])],
            release=_Release(**release) if release else None,
            undos=list(data.get("undos", [])),
        )

    def audit(self, auditid: int) -> _Audit | None:
        return next((a for a in self.audits if a.auditid == auditid), None)


@dataclass(frozen=True)
class _Call:
    """One request after the common checks."""

    body: dict[str, Any]
    program: _Program | None  # the mini program whose authorizer token was used


@dataclass(frozen=True)
class _Endpoint:
    method: str  # "GET" or "POST"
    token: str  # "none", "component" or "authorizer"
    body: bool  # a JSON body is required
    run: Callable[[_Call], dict[str, Any]]


# --------------------------------------------------------------------------- the emulator


class WeChatEmulator(Emulator):
    """api.weixin.qq.com's third-party-platform code management, on loopback.

    Args:
        privacy_scan_seconds: how long after a commit submit_audit answers 61039
            (WeChat's privacy-API scan); 0 turns the scan off.
        (the rest as :class:`Emulator`)
    """

    platform = "wechat"
    OPERATIONS: ClassVar[Mapping[str, str]] = {
        "upload": "/wxa/commit",
        "submit": "/wxa/submit_audit",
        "status": "/wxa/get_auditstatus",
        "withdraw": "/wxa/undocodeaudit",
        "publish": "/wxa/release",
    }

    def __init__(
        self,
        *,
        review_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
        timeout_seconds: float = 30.0,
        state_path: Path | None = None,
        privacy_scan_seconds: float = 0.0,
    ) -> None:
        self.privacy_scan_seconds = privacy_scan_seconds
        self.calls: Counter[str] = Counter()  # requests per API path, for tests
        self.component = _Component.create()
        self.tokens: dict[str, _Token] = {}
        self.templates: dict[int, _Template] = {}
        self.programs: dict[str, _Program] = {}
        self.next_auditid = 420_000_000 + secrets.randbelow(10_000_000)
        self.quota_limit = QUOTA_LIMIT
        self.quota_used: dict[str, int] = {}  # "YYYY-MM" (Beijing) → submissions
        self.previous_tickets: list[str] = []  # still accepted after a newer one was pushed
        self.ticket_pushed_at: float | None = None
        self.pending_ticket: str | None = None  # issued, its push not yet accepted
        super().__init__(
            review_seconds=review_seconds,
            clock=clock,
            timeout_seconds=timeout_seconds,
            state_path=state_path,
        )

    # -- state -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "component": asdict(self.component),
            "tokens": {value: asdict(t) for value, t in self.tokens.items()},
            "templates": [asdict(t) for t in self.templates.values()],
            "programs": [asdict(p) for p in self.programs.values()],
            "next_auditid": self.next_auditid,
            "quota": {"limit": self.quota_limit, "used": dict(self.quota_used)},
            "pushes": {
                "pushed": sorted(self.pushed),
                "previous_tickets": list(self.previous_tickets),
                "ticket_pushed_at": self.ticket_pushed_at,
                "pending_ticket": self.pending_ticket,
            },
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.component = _Component(**state["component"])
        self.tokens = {value: _Token(**t) for value, t in state.get("tokens", {}).items()}
        self.templates = {t["template_id"]: _Template(**t) for t in state.get("templates", [])}
        self.programs = {p["appid"]: _Program.load(p) for p in state.get("programs", [])}
        self.next_auditid = int(state["next_auditid"])
        quota = state.get("quota", {})
        self.quota_limit = int(quota.get("limit", QUOTA_LIMIT))
        self.quota_used = {k: int(v) for k, v in quota.get("used", {}).items()}
        pushes = state.get("pushes", {})
        self.pushed = set(pushes.get("pushed", []))
        self.previous_tickets = list(pushes.get("previous_tickets", []))
        self.ticket_pushed_at = pushes.get("ticket_pushed_at")
        self.pending_ticket = pushes.get("pending_ticket")

    def issued_secrets(self) -> set[str]:
        comp = self.component
        return {
            comp.secret,
            comp.verify_ticket,
            comp.token,
            comp.encoding_aes_key,
            *self.previous_tickets,
            *self.tokens,
            *(p.refresh_token for p in self.programs.values()),
        }

    # -- provisioning ------------------------------------------------------------------

    def provision(self, base_url: str, apps: Mapping[str, BaseModel]) -> Provisioned:
        comp = self.component
        configured: dict[str, BaseModel] = {}
        env = {
            "WECHAT_API_BASE": base_url,
            "WECHAT_COMPONENT_APPID": comp.appid,
            "WECHAT_COMPONENT_SECRET": comp.secret,
            "WECHAT_COMPONENT_VERIFY_TICKET": comp.verify_ticket,
            "WECHAT_COMPONENT_TOKEN": comp.token,
            "WECHAT_ENCODING_AES_KEY": comp.encoding_aes_key,
        }
        for key, given in apps.items():
            cfg = WeChatPlatform.AppConfig.model_validate(given.model_dump())
            program = self.programs.get(cfg.appid)
            if program is None:
                program = _Program(
                    appid=cfg.appid,
                    original_id=cfg.original_id or "gh_" + secrets.token_hex(6),
                    refresh_token="refreshtoken@@@" + secrets.token_urlsafe(32),
                    categories=[dict(c) for c in CATEGORIES],
                )
                self.programs[cfg.appid] = program
            if cfg.template_id not in self.templates:
                self.templates[cfg.template_id] = _Template(
                    template_id=cfg.template_id,
                    user_version="1.0.0",
                    user_desc="emulated template",
                    create_time=int(self.clock()),
                    pages=list(TEMPLATE_PAGES),
                )
            configured[key] = cfg.model_copy(
                update={"refresh_token": SecretStr(program.refresh_token)}
            )
            env[f"MINISHIP_{_env_key(key)}_WECHAT_REFRESH_TOKEN"] = program.refresh_token
        settings = WeChatPlatform.Settings(
            api_base=base_url,
            component_appid=comp.appid,
            component_secret=SecretStr(comp.secret),
            component_verify_ticket=SecretStr(comp.verify_ticket),
            component_token=SecretStr(comp.token),
            encoding_aes_key=SecretStr(comp.encoding_aes_key),
        )
        self.save()
        return Provisioned(settings=settings, apps=configured, env=env)

    def example_app(self) -> BaseModel:
        return WeChatPlatform.AppConfig(
            appid="wx" + secrets.token_hex(8),
            original_id="gh_" + secrets.token_hex(6),
            template_id=1,
        )

    # -- pushes ------------------------------------------------------------------------

    def _crypto(self) -> WeChatCrypto:
        comp = self.component
        return WeChatCrypto(comp.token, comp.encoding_aes_key, comp.appid)

    def _push(
        self, key: str, url: str, inner: str, to_user: str, envelope_key: str
    ) -> OutgoingPush:
        query, body = self._crypto().encrypt_push(
            inner,
            timestamp=str(int(self.clock())),
            nonce=str(secrets.randbelow(10**10)),
            to_user=to_user,
            envelope_key=envelope_key,
        )
        return OutgoingPush(key, url, query, body, "text/xml")

    def _ticket_push(self, base: str) -> OutgoingPush | None:
        now = self.clock()
        if self.ticket_pushed_at is not None and now < self.ticket_pushed_at + TICKET_PUSH_SECONDS:
            return None
        comp = self.component
        if self.pending_ticket is None:  # a new ticket; the previous ones stay accepted
            self.previous_tickets = [*self.previous_tickets, comp.verify_ticket][-TICKETS_KEPT:]
            comp.verify_ticket = "ticket@@@" + secrets.token_urlsafe(48)
            self.pending_ticket = comp.verify_ticket
        inner = (
            f"<xml><AppId><![CDATA[{comp.appid}]]></AppId><CreateTime>{int(now)}</CreateTime>"
            "<InfoType><![CDATA[component_verify_ticket]]></InfoType>"
            f"<ComponentVerifyTicket><![CDATA[{self.pending_ticket}]]></ComponentVerifyTicket>"
            "</xml>"
        )

        def delivered() -> None:
            self.ticket_pushed_at = now
            self.pending_ticket = None

        push = self._push(
            f"ticket:{len(self.previous_tickets)}", base + "/auth", inner, comp.appid, "AppId"
        )
        return OutgoingPush(
            push.key, push.url, push.params, push.body, push.content_type, delivered
        )

    def _audit_push(self, base: str, program: _Program, audit: _Audit) -> OutgoingPush | None:
        if audit.withdrawn_at is not None:
            return None
        status, reason = self._status(audit)
        if status not in PUSH_EVENTS:
            return None
        key = f"audit:{audit.auditid}:{PUSH_OUTCOMES[status]}"
        if key in self.pushed:
            return None
        wait = self.review_seconds / 2 if status == 4 else self.review_seconds
        at = int(audit.submitted_at + wait)
        time_field = {0: "SuccTime", 1: "FailTime", 4: "DelayTime"}[status]
        parts = [
            f"<ToUserName><![CDATA[{program.original_id}]]></ToUserName>",
            "<FromUserName><![CDATA[o_emulator_system]]></FromUserName>",
            f"<CreateTime>{at}</CreateTime>",
            "<MsgType><![CDATA[event]]></MsgType>",
            f"<Event><![CDATA[{PUSH_EVENTS[status]}]]></Event>",
        ]
        if status in (1, 4):
            parts.append(f"<Reason><![CDATA[{reason}]]></Reason>")
        parts.append(f"<{time_field}>{at}</{time_field}>")
        if status == 1:
            parts.append(f"<ScreenShot><![CDATA[{self._screenshots(audit)}]]></ScreenShot>")
        inner = "<xml>" + "".join(parts) + "</xml>"
        return self._push(key, f"{base}/{program.appid}", inner, program.original_id, "ToUserName")

    def due_pushes(self) -> list[OutgoingPush]:
        """The ticket push (first time, then every 600 s) and undelivered audit results.

        Audit results go to ``push_url/<mini program appid>`` (the ``$APPID$`` form), the
        ticket to ``push_url/auth``; all encrypted with the component's token and key.
        """
        if self.push_url is None:
            return []
        base = self.push_url.rstrip("/")
        pushes: list[OutgoingPush] = []
        ticket = self._ticket_push(base)
        if ticket is not None:
            pushes.append(ticket)
        for program in self.programs.values():
            for audit in program.audits:
                push = self._audit_push(base, program, audit)
                if push is not None:
                    pushes.append(push)
        return pushes

    # -- the HTTP surface --------------------------------------------------------------

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.route("*", path, self._handler(path, endpoint))
            for path, endpoint in self._endpoints().items()
        ]

    def _endpoints(self) -> dict[str, _Endpoint]:
        return {
            "/cgi-bin/component/api_component_token": _Endpoint(
                "POST", "none", True, self._component_token
            ),
            "/cgi-bin/component/api_authorizer_token": _Endpoint(
                "POST", "component", True, self._authorizer_token
            ),
            "/wxa/commit": _Endpoint("POST", "authorizer", True, self._commit),
            "/wxa/get_page": _Endpoint("GET", "authorizer", False, self._get_page),
            "/wxa/get_category": _Endpoint("GET", "authorizer", False, self._get_category),
            "/wxa/submit_audit": _Endpoint("POST", "authorizer", True, self._submit_audit),
            "/wxa/get_auditstatus": _Endpoint("POST", "authorizer", True, self._get_auditstatus),
            "/wxa/get_latest_auditstatus": _Endpoint(
                "GET", "authorizer", False, self._get_latest_auditstatus
            ),
            "/wxa/undocodeaudit": _Endpoint("GET", "authorizer", False, self._undocodeaudit),
            "/wxa/release": _Endpoint("POST", "authorizer", True, self._release),
            "/wxa/getversioninfo": _Endpoint("POST", "authorizer", True, self._getversioninfo),
            "/wxa/queryquota": _Endpoint("GET", "authorizer", False, self._queryquota),
        }

    def _handler(
        self, path: str, endpoint: _Endpoint
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, path, endpoint)

        return handle

    async def _serve(
        self, request: web.Request, path: str, endpoint: _Endpoint
    ) -> web.StreamResponse:
        """Faults first, then the common checks, then the API itself."""
        self.calls[path] += 1
        fault = self.take_fault(path)
        if fault == "busy":
            return self._respond(_error(-1))
        if fault == "unavailable":
            return self.unavailable()
        if fault == "expired_token":
            now = self.clock()
            for token in self.tokens.values():
                token.expires_at = min(token.expires_at, now)
        raw = await request.read()
        try:
            answer = self._process(request, endpoint, raw)
        except _Fail as fail:
            answer = _error(fail.errcode)
        if fault == "timeout":
            await self.hold()
        return self._respond(answer)

    @staticmethod
    def _respond(answer: Mapping[str, Any]) -> web.Response:
        body = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        return web.Response(body=body, headers={"Content-Type": JSON_TYPE})

    def _process(self, request: web.Request, endpoint: _Endpoint, raw: bytes) -> dict[str, Any]:
        if request.method != endpoint.method:
            raise _Fail(43001 if endpoint.method == "GET" else 43002)
        program = self._authorize(request.query, endpoint.token)
        body: dict[str, Any] = {}
        if endpoint.body:
            if not raw.strip():
                raise _Fail(44002)
            try:
                parsed = json.loads(raw)
            except ValueError:
                raise _Fail(47001) from None
            if not isinstance(parsed, dict):
                raise _Fail(47001)
            body = parsed
        return endpoint.run(_Call(body, program))

    def _authorize(self, query: Mapping[str, str], kind: str) -> _Program | None:
        """Check the query token for an API taking ``kind`` of token."""
        if kind == "none":
            return None
        if kind == "component":
            value = query.get("component_access_token") or query.get("access_token")
        else:
            value = query.get("access_token")
        if not value:
            raise _Fail(41001)
        token = self.tokens.get(value)
        if token is None:
            raise _Fail(40001)
        if token.kind != kind:
            raise _Fail(61014 if kind == "component" else 48001)
        if self.clock() >= token.expires_at:
            raise _Fail(42001)
        if kind == "component":
            return None
        program = self.programs.get(token.appid)
        if program is None:  # authorization revoked since the token was issued
            raise _Fail(61003)
        return program

    def _issue(self, kind: str, appid: str) -> str:
        now = self.clock()
        self.tokens = {v: t for v, t in self.tokens.items() if t.expires_at > now - 86_400}
        value = secrets.token_urlsafe(48)
        self.tokens[value] = _Token(kind, appid, now + TOKEN_SECONDS)
        return value

    # -- tokens ------------------------------------------------------------------------

    def _component_token(self, call: _Call) -> dict[str, Any]:
        body, comp = call.body, self.component
        appid = body.get("component_appid")
        secret = body.get("component_appsecret")
        if not appid:
            raise _Fail(41018)
        if not secret:
            raise _Fail(41004)
        if appid != comp.appid:
            raise _Fail(40013)
        if secret != comp.secret:
            raise _Fail(40125)
        if body.get("component_verify_ticket") not in (comp.verify_ticket, *self.previous_tickets):
            raise _Fail(61006)
        value = self._issue("component", comp.appid)
        return {"component_access_token": value, "expires_in": TOKEN_SECONDS}

    def _authorizer_token(self, call: _Call) -> dict[str, Any]:
        body = call.body
        appid = body.get("component_appid")
        if not appid:
            raise _Fail(41018)
        if appid != self.component.appid:
            raise _Fail(61011)
        program = self.programs.get(str(body.get("authorizer_appid", "")))
        if program is None:
            raise _Fail(61003)
        if body.get("authorizer_refresh_token") != program.refresh_token:
            raise _Fail(61023)
        value = self._issue("authorizer", program.appid)
        return {
            "authorizer_access_token": value,
            "expires_in": TOKEN_SECONDS,
            "authorizer_refresh_token": program.refresh_token,
        }

    # -- code management ---------------------------------------------------------------

    @staticmethod
    def _program(call: _Call) -> _Program:
        assert call.program is not None  # authorizer APIs always carry one
        return call.program

    def _commit(self, call: _Call) -> dict[str, Any]:
        program, body = self._program(call), call.body
        template_id = as_int(body.get("template_id"))
        ext_text = body.get("ext_json")
        version, desc = body.get("user_version"), body.get("user_desc")
        if template_id is None or ext_text is None or version is None or desc is None:
            raise _Fail(47001)
        template = self.templates.get(template_id)
        if template is None:
            raise _Fail(85014)
        if not isinstance(ext_text, str):
            raise _Fail(85048)
        try:
            ext = json.loads(ext_text)
        except ValueError:
            raise _Fail(85048) from None
        if not isinstance(ext, dict):
            raise _Fail(85048)
        pages = ext.get("pages")
        if ext.get("extAppid") not in (None, "", program.appid):
            raise _Fail(85013)
        if pages is not None and (
            not isinstance(pages, list) or not set(map(str, pages)) <= set(template.pages)
        ):
            raise _Fail(85013)
        if not isinstance(version, str) or not 0 < len(version) <= MAX_USER_VERSION:
            raise _Fail(40097)
        program.commit = _Commit(template_id, version, str(desc), ext, self.clock())
        return _ok()

    def _pages(self, program: _Program) -> list[str]:
        commit = program.commit
        if commit is None:
            raise _Fail(86001)
        pages = commit.ext_json.get("pages")
        if isinstance(pages, list) and pages:
            return [str(p) for p in pages]
        template = self.templates.get(commit.template_id)
        return list(template.pages) if template else []

    def _get_page(self, call: _Call) -> dict[str, Any]:
        return _ok(page_list=self._pages(self._program(call)))

    def _get_category(self, call: _Call) -> dict[str, Any]:
        return _ok(category_list=[dict(c) for c in self._program(call).categories])

    @staticmethod
    def _month(at: float) -> str:
        return datetime.fromtimestamp(at, BEIJING).strftime("%Y-%m")

    def _quota_rest(self) -> int:
        return max(0, self.quota_limit - self.quota_used.get(self._month(self.clock()), 0))

    def _check_items(self, program: _Program, items: object) -> list[dict[str, Any]]:
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
            raise _Fail(85023)
        known = {(c["first_id"], c["second_id"]) for c in program.categories}
        pages = set(self._pages(program))
        for item in items:
            if not isinstance(item, dict):
                raise _Fail(85010)
            if any(item.get(k) in (None, "") for k in REQUIRED_ITEM_FIELDS):
                raise _Fail(85010)
            ids = (as_int(item["first_id"]), as_int(item["second_id"]))
            if ids not in known:
                raise _Fail(85008)
            if item.get("address") and str(item["address"]) not in pages:
                raise _Fail(85007)
        return items

    def _submit_audit(self, call: _Call) -> dict[str, Any]:
        program, body = self._program(call), call.body
        commit = program.commit
        if commit is None:
            raise _Fail(85086)
        if any(self._status(a)[0] in (2, 4) for a in program.audits):
            raise _Fail(85009)
        items = body.get("item_list")
        if items is not None:
            items = self._check_items(program, items)
        desc = body.get("version_desc", "")
        if not isinstance(desc, str):
            raise _Fail(47001)
        now = self.clock()
        if now < commit.committed_at + self.privacy_scan_seconds:
            raise _Fail(61039)
        if self._quota_rest() <= 0:
            raise _Fail(85085)
        month = self._month(now)
        self.quota_used[month] = self.quota_used.get(month, 0) + 1
        auditid = self.next_auditid
        self.next_auditid += 1
        program.audits.append(
            _Audit(auditid, commit.user_version, commit.user_desc, desc, now, items)
        )
        return _ok(auditid=auditid)

    def _status(self, audit: _Audit) -> tuple[int, str]:
        """WeChat's status code and reason for an audit, decided now."""
        if audit.withdrawn_at is not None:
            return 3, ""
        outcome, reason = self.decide(
            f"{audit.user_desc}\n{audit.version_desc}", audit.submitted_at
        )
        return {
            "pending": (2, ""),
            "delayed": (4, reason),
            "approved": (0, ""),
            "rejected": (1, reason),
        }[outcome]

    @staticmethod
    def _screenshots(audit: _Audit) -> str:
        return f"emu_{audit.auditid}_1|emu_{audit.auditid}_2"

    def _get_auditstatus(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        if "auditid" not in call.body:
            raise _Fail(47001)
        auditid = as_int(call.body["auditid"])
        audit = program.audit(auditid) if auditid is not None else None
        if audit is None:
            raise _Fail(85012)
        status, reason = self._status(audit)
        answer = _ok(status=status)
        if status in (1, 4):
            answer["reason"] = reason
        if status == 1:
            answer["screenshot"] = self._screenshots(audit)
        return answer

    def _get_latest_auditstatus(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        if not program.audits:
            raise _Fail(85058)
        audit = program.audits[-1]
        status, reason = self._status(audit)
        answer = _ok(auditid=audit.auditid, status=status)
        if status in (1, 4):
            answer["reason"] = reason
        if status == 1:
            answer["ScreenShot"] = self._screenshots(audit)  # the official example's casing
        answer.update(
            user_version=audit.user_version,
            user_desc=audit.user_desc,
            submit_audit_time=int(audit.submitted_at),
        )
        return answer

    def _undocodeaudit(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        audit = program.audits[-1] if program.audits else None
        status = self._status(audit)[0] if audit is not None else 3
        if audit is None or status == 3:
            raise _Fail(85019)
        if status in (0, 1):
            raise _Fail(87012)
        now = self.clock()
        day = datetime.fromtimestamp(now, BEIJING).date()
        month = self._month(now)
        today = sum(1 for t in program.undos if datetime.fromtimestamp(t, BEIJING).date() == day)
        this_month = sum(1 for t in program.undos if self._month(t) == month)
        if today >= UNDO_PER_DAY or this_month >= UNDO_PER_MONTH:
            raise _Fail(87013)
        audit.withdrawn_at = now
        program.undos = [t for t in program.undos if self._month(t) == month] + [now]
        return _ok()

    def _release(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        if not program.audits:
            raise _Fail(85019)
        audit = program.audits[-1]
        if self._status(audit)[0] != 0:
            raise _Fail(85020)
        if audit.released:
            raise _Fail(85052)
        audit.released = True
        program.release = _Release(audit.user_version, audit.user_desc, self.clock())
        return _ok()

    def _getversioninfo(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        answer = _ok()
        if program.commit is not None:
            answer["exp_info"] = {
                "exp_time": int(program.commit.committed_at),
                "exp_version": program.commit.user_version,
                "exp_desc": program.commit.user_desc,
            }
        if program.release is not None:
            answer["release_info"] = {
                "release_time": int(program.release.released_at),
                "release_version": program.release.version,
                "release_desc": program.release.desc,
            }
        return answer

    def _queryquota(self, call: _Call) -> dict[str, Any]:
        return _ok(rest=self._quota_rest(), limit=self.quota_limit, speedup_rest=0, speedup_limit=0)
