"""A local stand-in for api.weixin.qq.com: third-party-platform tokens and code management.

The emulator is one third-party platform (component appid, secret and the verify ticket it
"pushed") with a template library and draft box, and the mini programs that authorized it
(or not yet); per mini program: the committed trial version, its audits, the live release,
the kept release history, a gray release plan and its withdraw counters. It follows the
fact sheet (shared/reference/wechat-api.md): errors are HTTP 200 with
``{"errcode", "errmsg": "<text> rid: …"}``, token endpoints answer without ``errcode``,
bodies are ``application/json; encoding=utf-8``.

Rules enforced:

- method (43001/43002), token present (41001), known (40001), not expired (42001, tokens
  live 7200 s on the emulator clock) and of the right kind (61014 / 48001); the caller's
  IP on :attr:`WeChatEmulator.ip_whitelist` when one is set (61004);
- a body where one is required (44002), parseable JSON object (47001);
- component token: appid (41018/40013), secret (41004/40125), verify ticket (61006;
  61005 once it is older than 12 h — the current ticket stays fresh, as WeChat pushes a new
  one every 10 minutes); an expired component token answers 42006
  (:attr:`WeChatEmulator.expired_component_errcode`, 42001 for the sheet's other reading);
  authorizer token: platform appid (61011), authorized mini program (61003), refresh
  token (61023); code-management calls need permission set 18 (61007);
- authorization: api_create_preauthcode, the authorization page ``componentloginpage``
  (the admin "confirms" at once: 302 to ``redirect_uri?auth_code=…&expires_in=600``),
  api_query_auth (61009 unknown or used code, 61010 expired), api_get_authorizer_info
  (61003 for a mini program that has not authorized the platform);
- template library: drafts and templates (gettemplatedraftlist, gettemplatelist; with
  :attr:`WeChatEmulator.empty_lists_as_85064` an empty list answers 85064), addtotemplate
  (85064 unknown draft, 85065 library full at 200; template ids only grow, never reused),
  deletetemplate (85064); a fresh library also holds a template no app uses;
- commit: known template (85014), ``ext_json`` a JSON object string (85048) whose
  ``extAppid`` and ``pages`` fit (85013), pages not empty (85047), tabBar items with a path
  (85046), ``user_version`` 1–64 chars (40097);
- get_qrcode: a real, scannable JPEG of the trial version's experience URL (86001 before a
  commit; errors as JSON in a ``text/plain`` body);
- submit_audit: a commit (85086), privacy scan finished (61039, for
  ``privacy_scan_seconds`` after a commit; get_code_privacy_info answers the same), privacy
  APIs the code uses (:attr:`_Program.privacy_apis`) declared in
  ``ext_json.requiredPrivateInfos`` or ``privacy_api_not_use`` (61040), one audit in review
  per mini program (85009), ``item_list`` of 1–5 complete items (85023/85010) with the mini
  program's categories (85008) and the code's pages (85007), provider quota left this
  month (85085);
- speedupaudit: an audit waiting in the queue (89402), once per audit (89404), the
  provider's monthly expedite quota (89405);
- get_auditstatus: the audit belongs to the mini program (85012); get_latest_auditstatus:
  something was submitted (85058);
- undocodeaudit: only while in review (85019, 87012 once decided), 5 a day and 10 a month
  per mini program in Beijing time (87013);
- release: the latest audit exists (85019), is approved (85020), not yet released (85052);
  during a gray release it releases to everyone and finishes the plan (the sheet is silent;
  this is WeChat's console behaviour);
- grayrelease: a live version (85079), the latest audit approved and unreleased (85080), a
  whole percentage 0–100 (0 only with a "first" flag) (85081), rising (85082);
  revertgrayrelease ends it;
- revertcoderelease: not during a gray release (87011), an earlier kept version (the last 5
  releases are kept), never twice in a row (87012), ``app_version`` a number (40097).

Reviews are decided lazily by :meth:`Emulator.decide` on the commit's ``user_desc`` plus
the submit's ``version_desc``; a new submission supersedes an unreleased approval.

Faults: ``rate_limit`` answers 45009 (the daily quota) without carrying the request out;
``malformed`` and ``unsigned`` carry it out and cut the answer short (WeChat signs no
answer, so both are the same here). WeChat's own variants (:data:`WECHAT_FAULTS`):
``rate_limit_minute`` answers 45011 (the per-minute limit) and ``invalid_token`` 40014
(the token refused as invalid), neither carrying the request out. get_history_version is
faulted and counted as ``/wxa/revertcoderelease?action=get_history_version``, apart from
rollbacks.

Refresh tokens stay the same on renewal unless :attr:`WeChatEmulator.rotate_refresh_tokens`
is set (whether WeChat rotates them is UNCERTAIN, sheet §3.6): then every
api_authorizer_token answer carries a new one and the old one is refused (61023).
"""

from __future__ import annotations

import io
import json
import secrets
import string
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import qrcode
from aiohttp import web
from pydantic import BaseModel, SecretStr

from platforms.base import BEIJING  # WeChat's daily and monthly limits reset here
from platforms.emulators.base import FAULTS, Emulator, Fault, OutgoingPush, Provisioned
from platforms.wechat import WeChatPlatform, as_int
from platforms.wechat_crypto import WeChatCrypto

__all__ = ["WeChatEmulator"]

TOKEN_SECONDS = 7200
CODE_SECONDS = 600  # pre_auth_code and authorization code lifetime
TICKET_PUSH_SECONDS = 600  # WeChat pushes a new component_verify_ticket every 10 minutes
TICKET_SECONDS = 12 * 3600  # a component_verify_ticket is valid 12 h (sheet §3)
TICKETS_KEPT_SECONDS = 2 * TICKET_SECONDS  # expired ones answer 61005 this long, then 61006
PUSH_EVENTS = {0: "weapp_audit_success", 1: "weapp_audit_fail", 4: "weapp_audit_delay"}
PUSH_OUTCOMES = {0: "approved", 1: "rejected", 4: "delayed"}
UNDO_PER_DAY, UNDO_PER_MONTH = 5, 10
QUOTA_LIMIT = 20
SPEEDUP_LIMIT = 3
TEMPLATE_LIMIT = 200
RELEASES_KEPT = 5
MAX_USER_VERSION = 64
MAX_ITEMS = 5
REQUIRED_ITEM_FIELDS = ("first_class", "second_class", "first_id", "second_id")
JSON_TYPE = "application/json; encoding=utf-8"
HISTORY = "/wxa/revertcoderelease?action=get_history_version"
CODE_MANAGEMENT = 18
GRANTED = (17, 18, 30, 86)  # what an admin ticks on the emulated authorization page

TEMPLATE_PAGES = ("pages/index/index", "pages/list/list", "pages/detail/detail")
CATEGORIES: tuple[dict[str, Any], ...] = (
    {"first_class": "工具", "second_class": "效率", "first_id": 287, "second_id": 616},
    {"first_class": "商家自营", "second_class": "百货", "first_id": 304, "second_id": 321},
)
SEED_DRAFTS = (("1.1.0", "new checkout page"), ("1.2.0-beta", "coupons (beta)"))
FIRST_DRAFT_ID = 901  # draft and template ids are separate on WeChat; apart here for clarity
SPARE_TEMPLATE = ("0.9.0", "an earlier template no app uses")
WECHAT_FAULTS = ("rate_limit_minute", "invalid_token")
"""Faults of WeChat's own, besides the shared :data:`platforms.emulators.base.FAULTS`."""

ERRMSG: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40013: "invalid appid",
    40014: "invalid access_token",
    40097: "invalid args",
    40125: "invalid appsecret",
    41001: "access_token missing",
    41004: "appsecret missing",
    41018: "missing component_appid",
    42001: "access_token expired",
    42006: "component_access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    44002: "empty post data",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit, must slower, retry next minute",
    47001: "data format error",
    48001: "api unauthorized",
    61003: "component is not authorized by this account",
    61004: "access clientip is not registered",
    61005: "component ticket is expired",
    61006: "component ticket is invalid",
    61007: "api is unauthorized to component",
    61009: "code is invalid",
    61010: "code is expired",
    61011: "invalid component",
    61014: "must use component token for component api",
    61023: "refresh_token is invalid",
    61039: "privacy api detection is not finished, please wait and retry",
    61040: "privacy api is used but not configured",
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
    85046: "pagepath missing in tabbar list",
    85047: "pages are empty",
    85048: "parse ext_json fail",
    85052: "app is already released",
    85058: "no valid audit_id exist",
    85064: "template not found",
    85065: "template list is full",
    85079: "miniprogram has no online release",
    85080: "miniprogram commit not approved",
    85081: "invalid gray percentage",
    85082: "gray percentage too low",
    85085: "submit audit reach limit, please try later",
    85086: "must commit before submit audit",
    86001: "component experience version not exists",
    87011: "current version is in gray release, can not revert",
    87012: "forbid revert this version release",
    87013: "no quota to undo code",
    89402: "this audit is not in the audit queue",
    89404: "this audit has been speeded up",
    89405: "speed up audit quota is used up this month",
}


class _Fail(Exception):
    """An errcode answer (``message``: an errmsg other than the usual one)."""

    def __init__(self, errcode: int, message: str | None = None) -> None:
        super().__init__(errcode)
        self.errcode = errcode
        self.message = message


def _rid() -> str:
    return "-".join(secrets.token_hex(4) for _ in range(3))


def _error(errcode: int, message: str | None = None) -> dict[str, Any]:
    text = message or ERRMSG.get(errcode, "error")
    return {"errcode": errcode, "errmsg": f"{text} rid: {_rid()}"}


def _ok(**data: Any) -> dict[str, Any]:
    return {"errcode": 0, "errmsg": "ok", **data}


def _secret_text(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _env_key(app: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in app.upper())


def _func_info(granted: Sequence[int]) -> list[dict[str, Any]]:
    return [{"funcscope_category": {"id": p}} for p in granted]


def _qr_jpeg(text: str) -> bytes:
    """A scannable QR code of ``text`` as JPEG bytes (``qrcode``, saved by Pillow)."""
    out = io.BytesIO()
    qrcode.make(text).get_image().convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()


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
    draft_id: int | None = None
    template_type: int = 0
    source_miniprogram_appid: str = ""
    source_miniprogram: str = ""
    developer: str = ""


@dataclass
class _Draft:
    draft_id: int
    user_version: str
    user_desc: str
    create_time: int
    source_miniprogram_appid: str = ""
    source_miniprogram: str = ""
    developer: str = ""


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
    expedited: bool = False


@dataclass
class _Release:
    version: str
    desc: str
    released_at: float
    app_version: int = 0  # WeChat's number for the release, in the history
    commit_time: float = 0.0


@dataclass
class _Gray:
    """A staged release of an approved audit (getgrayreleaseplan's fields)."""

    auditid: int
    percentage: int
    created_at: float
    debuger_first: bool = False
    experiencer_first: bool = False
    status: int = 1  # 1 running, 3 finished (released to everyone), 4 deleted (reverted)


@dataclass
class _Program:
    """A mini program the platform knows; authorized while it has a refresh token."""

    appid: str
    original_id: str
    refresh_token: str | None
    categories: list[dict[str, Any]]
    commit: _Commit | None = None
    audits: list[_Audit] = field(default_factory=list)
    release: _Release | None = None
    undos: list[float] = field(default_factory=list)  # when each withdrawal happened
    history: list[_Release] = field(default_factory=list)  # kept releases, oldest first
    rolled_back: bool = False  # the live release came from a rollback
    gray: _Gray | None = None
    func_info: list[int] = field(default_factory=lambda: list(GRANTED))
    privacy_apis: list[str] = field(default_factory=list)
    """Privacy APIs the committed code "uses" (tests set it): submit answers 61040 unless
    ext_json.requiredPrivateInfos declares them or ``privacy_api_not_use`` is sent."""

    @property
    def authorized(self) -> bool:
        return self.refresh_token is not None

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> _Program:
        commit, release, gray = data.get("commit"), data.get("release"), data.get("gray")
        return cls(
            appid=data["appid"],
            original_id=data["original_id"],
            refresh_token=data.get("refresh_token"),
            categories=list(data["categories"]),
            commit=_Commit(**commit) if commit else None,
            audits=[_Audit(**a) for a in data.get("audits", [])],
            release=_Release(**release) if release else None,
            undos=list(data.get("undos", [])),
            history=[_Release(**r) for r in data.get("history", [])],
            rolled_back=bool(data.get("rolled_back", False)),
            gray=_Gray(**gray) if gray else None,
            func_info=list(data.get("func_info", GRANTED)),
            privacy_apis=list(data.get("privacy_apis", [])),
        )

    def audit(self, auditid: int) -> _Audit | None:
        return next((a for a in self.audits if a.auditid == auditid), None)

    def gray_running(self) -> bool:
        return self.gray is not None and self.gray.status == 1


@dataclass(frozen=True)
class _Call:
    """One request after the common checks."""

    body: dict[str, Any]
    program: _Program | None  # the mini program whose authorizer token was used
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Endpoint:
    method: str  # "GET" or "POST"
    token: str  # "none", "component" or "authorizer"
    body: bool  # a JSON body is required
    run: Callable[[_Call], dict[str, Any] | web.Response]
    permissions: tuple[int, ...] = ()  # one of these sets must be granted (61007)
    error_type: str = JSON_TYPE  # Content-Type of error answers


# --------------------------------------------------------------------------- the emulator


class WeChatEmulator(Emulator):
    """api.weixin.qq.com's third-party-platform code management, on loopback.

    Args:
        privacy_scan_seconds: how long after a commit submit_audit (and
            get_code_privacy_info) answer 61039 (WeChat's privacy-API scan); 0 turns the
            scan off.
        (the rest as :class:`Emulator`)

    Knobs for tests: :attr:`quota_limit`, :attr:`speedup_limit`, :attr:`template_limit`,
    :attr:`ip_whitelist` (61004 for other callers), :attr:`rotate_refresh_tokens`,
    :attr:`empty_lists_as_85064`, :attr:`expired_component_errcode`, and per mini program
    ``programs[appid].privacy_apis`` / ``.func_info``; :meth:`revoke` withdraws an
    authorization.
    """

    platform = "wechat"
    OPERATIONS: ClassVar[Mapping[str, str]] = {
        "upload": "/wxa/commit",
        "submit": "/wxa/submit_audit",
        "status": "/wxa/get_auditstatus",
        "withdraw": "/wxa/undocodeaudit",
        "publish": "/wxa/release",
        "trial_code": "/wxa/get_qrcode",
        "expedite": "/wxa/speedupaudit",
        "quotas": "/wxa/queryquota",
        "gray": "/wxa/grayrelease",
        "stop_gray": "/wxa/revertgrayrelease",
        "rollback": "/wxa/revertcoderelease",
        "versions": HISTORY,
        "templates": "/wxa/gettemplatelist",
        "add_template": "/wxa/addtotemplate",
        "delete_template": "/wxa/deletetemplate",
        "authorization": "/cgi-bin/component/api_get_authorizer_info",
    }
    """The API carrying each operation; get_history_version, a read on the rollback path,
    has a name of its own so faults and counts can tell it from a rollback."""

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
        self.next_template_id = 1  # ids only grow: a deleted one is never handed out again
        self.drafts: dict[int, _Draft] = {}
        self.programs: dict[str, _Program] = {}
        self.next_auditid = 420_000_000 + secrets.randbelow(10_000_000)
        self.next_app_version = 100 + secrets.randbelow(100)
        self.quota_limit = QUOTA_LIMIT
        self.quota_used: dict[str, int] = {}  # "YYYY-MM" (Beijing) → submissions
        self.speedup_limit = SPEEDUP_LIMIT
        self.speedup_used: dict[str, int] = {}  # "YYYY-MM" (Beijing) → expedites
        self.template_limit = TEMPLATE_LIMIT
        self.preauth_codes: dict[str, float] = {}  # code → expires at
        self.auth_codes: dict[str, tuple[str, float]] = {}  # code → (appid, expires at)
        self.ip_whitelist: set[str] | None = None  # None: any caller
        self.rotate_refresh_tokens = False
        """Every api_authorizer_token answer carries a new refresh token; the old one is then
        refused (61023)."""
        self.empty_lists_as_85064 = False
        """gettemplatelist / gettemplatedraftlist answer 85064 instead of an empty list."""
        self.expired_component_errcode = 42006
        """What an expired component token gets (42006; the sheet's §3.6 also says 42001)."""
        self.ticket_issued_at = clock()  # when the current verify ticket was issued
        self.previous_tickets: list[tuple[str, float]] = []  # (ticket, issued at), superseded
        self.ticket_pushed_at: float | None = None
        self.pending_ticket: str | None = None  # issued, its push not yet accepted
        self._qr_cache: dict[str, bytes] = {}
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
            "next_template_id": self.next_template_id,
            "drafts": [asdict(d) for d in self.drafts.values()],
            "programs": [asdict(p) for p in self.programs.values()],
            "next_auditid": self.next_auditid,
            "next_app_version": self.next_app_version,
            "quota": {"limit": self.quota_limit, "used": dict(self.quota_used)},
            "speedup": {"limit": self.speedup_limit, "used": dict(self.speedup_used)},
            "template_limit": self.template_limit,
            "codes": {
                "preauth": dict(self.preauth_codes),
                "auth": {k: list(v) for k, v in self.auth_codes.items()},
            },
            "pushes": {
                "pushed": sorted(self.pushed),
                "ticket_issued_at": self.ticket_issued_at,
                "previous_tickets": [list(t) for t in self.previous_tickets],
                "ticket_pushed_at": self.ticket_pushed_at,
                "pending_ticket": self.pending_ticket,
            },
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.component = _Component(**state["component"])
        self.tokens = {value: _Token(**t) for value, t in state.get("tokens", {}).items()}
        self.templates = {t["template_id"]: _Template(**t) for t in state.get("templates", [])}
        self.next_template_id = int(
            state.get("next_template_id", max(self.templates, default=0) + 1)
        )
        self.drafts = {d["draft_id"]: _Draft(**d) for d in state.get("drafts", [])}
        self.programs = {p["appid"]: _Program.load(p) for p in state.get("programs", [])}
        self.next_auditid = int(state["next_auditid"])
        self.next_app_version = int(state.get("next_app_version", self.next_app_version))
        quota = state.get("quota", {})
        self.quota_limit = int(quota.get("limit", QUOTA_LIMIT))
        self.quota_used = {k: int(v) for k, v in quota.get("used", {}).items()}
        speedup = state.get("speedup", {})
        self.speedup_limit = int(speedup.get("limit", SPEEDUP_LIMIT))
        self.speedup_used = {k: int(v) for k, v in speedup.get("used", {}).items()}
        self.template_limit = int(state.get("template_limit", TEMPLATE_LIMIT))
        codes = state.get("codes", {})
        self.preauth_codes = {k: float(v) for k, v in codes.get("preauth", {}).items()}
        self.auth_codes = {k: (str(v[0]), float(v[1])) for k, v in codes.get("auth", {}).items()}
        pushes = state.get("pushes", {})
        self.pushed = set(pushes.get("pushed", []))
        now = self.clock()
        self.ticket_issued_at = float(pushes.get("ticket_issued_at", now))
        self.previous_tickets = [
            (t, now) if isinstance(t, str) else (str(t[0]), float(t[1]))
            for t in pushes.get("previous_tickets", [])
        ]
        self.ticket_pushed_at = pushes.get("ticket_pushed_at")
        self.pending_ticket = pushes.get("pending_ticket")

    def issued_secrets(self) -> set[str]:
        comp = self.component
        return {
            comp.secret,
            comp.verify_ticket,
            comp.token,
            comp.encoding_aes_key,
            *(ticket for ticket, _ in self.previous_tickets),
            *self.tokens,
            *(p.refresh_token for p in self.programs.values() if p.refresh_token),
        }

    # -- provisioning ------------------------------------------------------------------

    def _new_template_id(self) -> int:
        """A template id never handed out before (WeChat's ids only grow)."""
        ident = max(self.next_template_id, max(self.templates, default=-1) + 1)
        self.next_template_id = ident + 1
        return ident

    def _add_template(self, ident: int, version: str, desc: str, **more: Any) -> None:
        self.templates[ident] = _Template(
            template_id=ident,
            user_version=version,
            user_desc=desc,
            create_time=int(self.clock()),
            pages=list(TEMPLATE_PAGES),
            **more,
        )
        self.next_template_id = max(self.next_template_id, ident + 1)

    def _seed_library(self, configured: Collection[int]) -> None:
        """On a fresh platform: a draft box with something in it, as uploads from the
        development mini program, and a template no app uses (id 0 unless an app takes it),
        next to the ones the apps name."""
        if self.drafts:
            return
        self.next_template_id = max(self.next_template_id, max(configured, default=-1) + 1)
        spare = 0 if 0 not in configured and 0 not in self.templates else self._new_template_id()
        self._add_template(spare, *SPARE_TEMPLATE, developer="emulator")
        source = "wx" + secrets.token_hex(8)
        for n, (version, desc) in enumerate(SEED_DRAFTS, FIRST_DRAFT_ID):
            self.drafts[n] = _Draft(
                draft_id=n,
                user_version=version,
                user_desc=desc,
                create_time=int(self.clock()) - 3600 * (len(SEED_DRAFTS) + FIRST_DRAFT_ID - n),
                source_miniprogram_appid=source,
                source_miniprogram="Emulated development mini program",
                developer="emulator",
            )

    def provision(
        self,
        base_url: str,
        apps: Mapping[str, BaseModel],
        *,
        unauthorized: Collection[str] = (),
    ) -> Provisioned:
        """As :meth:`Emulator.provision`; the apps named in ``unauthorized`` are known to
        the platform but have not authorized it yet (no refresh token) until ``connect``."""
        comp = self.component
        configured: dict[str, BaseModel] = {}
        env = {
            "WECHAT_API_BASE": base_url,
            "WECHAT_AUTHORIZE_PAGE_BASE": base_url,
            "WECHAT_COMPONENT_APPID": comp.appid,
            "WECHAT_COMPONENT_SECRET": comp.secret,
            "WECHAT_COMPONENT_VERIFY_TICKET": comp.verify_ticket,
            "WECHAT_COMPONENT_TOKEN": comp.token,
            "WECHAT_ENCODING_AES_KEY": comp.encoding_aes_key,
        }
        self._seed_library(
            {
                ident
                for given in apps.values()
                if isinstance(ident := given.model_dump().get("template_id"), int)
            }
        )
        for key, given in apps.items():
            cfg = WeChatPlatform.AppConfig.model_validate(given.model_dump())
            if cfg.direct:  # uploaded with miniprogram-ci: nothing to do with the platform
                configured[key] = cfg
                continue
            program = self.programs.get(cfg.appid)
            if program is None:
                authorize = key not in unauthorized
                program = _Program(
                    appid=cfg.appid,
                    original_id=cfg.original_id or "gh_" + secrets.token_hex(6),
                    refresh_token=(
                        "refreshtoken@@@" + secrets.token_urlsafe(32) if authorize else None
                    ),
                    categories=[dict(c) for c in CATEGORIES],
                    func_info=list(GRANTED) if authorize else [],
                )
                self.programs[cfg.appid] = program
            if cfg.template_id is not None and cfg.template_id not in self.templates:
                self._add_template(
                    cfg.template_id, "1.0.0", "emulated template", developer="emulator"
                )
            if program.refresh_token is None:
                configured[key] = cfg.model_copy(update={"refresh_token": None})
                continue
            configured[key] = cfg.model_copy(
                update={"refresh_token": SecretStr(program.refresh_token)}
            )
            env[f"MINISHIP_{_env_key(key)}_WECHAT_REFRESH_TOKEN"] = program.refresh_token
        settings = WeChatPlatform.Settings(
            api_base=base_url,
            authorize_page_base=base_url,
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

    def revoke(self, appid: str) -> None:
        """The mini program's admin withdraws the authorization (in their console)."""
        program = self.programs[appid]
        program.refresh_token = None
        program.func_info = []

    @staticmethod
    def experience_url(appid: str, path: str = "") -> str:
        """What the trial QR code of ``appid`` encodes (WeChat's experience link)."""
        page = f"&path={quote(path, safe='')}" if path else ""
        return f"https://open.weixin.qq.com/sns/getexpappinfo?appid={appid}{page}#wechat-redirect"

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
        if self.pending_ticket is None:  # a new ticket; the previous ones stay valid 12 h
            kept = [(t, at) for t, at in self.previous_tickets if now < at + TICKETS_KEPT_SECONDS]
            self.previous_tickets = [*kept, (comp.verify_ticket, self.ticket_issued_at)]
            comp.verify_ticket = "ticket@@@" + secrets.token_urlsafe(48)
            self.ticket_issued_at = now
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
            web.get("/cgi-bin/componentloginpage", self._login_page),
            *(
                web.route("*", path, self._handler(path, endpoint))
                for path, endpoint in self._endpoints().items()
            ),
        ]

    def _endpoints(self) -> dict[str, _Endpoint]:
        def wxa(
            method: str,
            body: bool,
            run: Callable[[_Call], dict[str, Any] | web.Response],
            permissions: tuple[int, ...] = (CODE_MANAGEMENT,),
            error_type: str = JSON_TYPE,
        ) -> _Endpoint:
            return _Endpoint(method, "authorizer", body, run, permissions, error_type)

        def component(method: str, body: bool, run: Callable[[_Call], dict[str, Any]]) -> _Endpoint:
            return _Endpoint(method, "component", body, run)

        return {
            "/cgi-bin/component/api_component_token": _Endpoint(
                "POST", "none", True, self._component_token
            ),
            "/cgi-bin/component/api_authorizer_token": component(
                "POST", True, self._authorizer_token
            ),
            "/cgi-bin/component/api_create_preauthcode": component(
                "POST", True, self._create_preauthcode
            ),
            "/cgi-bin/component/api_query_auth": component("POST", True, self._query_auth),
            "/cgi-bin/component/api_get_authorizer_info": component(
                "POST", True, self._get_authorizer_info
            ),
            "/wxa/gettemplatedraftlist": component("GET", False, self._draft_list),
            "/wxa/gettemplatelist": component("GET", False, self._template_list),
            "/wxa/addtotemplate": component("POST", True, self._add_to_template),
            "/wxa/deletetemplate": component("POST", True, self._delete_template),
            "/wxa/commit": wxa("POST", True, self._commit),
            "/wxa/get_page": wxa("GET", False, self._get_page),
            "/wxa/get_category": wxa("GET", False, self._get_category),
            "/wxa/get_qrcode": wxa(
                "GET", False, self._get_qrcode, (CODE_MANAGEMENT, 86), "text/plain"
            ),
            "/wxa/security/get_code_privacy_info": wxa("GET", False, self._privacy_info),
            "/wxa/submit_audit": wxa("POST", True, self._submit_audit),
            "/wxa/get_auditstatus": wxa("POST", True, self._get_auditstatus),
            "/wxa/get_latest_auditstatus": wxa("GET", False, self._get_latest_auditstatus),
            "/wxa/undocodeaudit": wxa("GET", False, self._undocodeaudit),
            "/wxa/speedupaudit": wxa("POST", True, self._speedupaudit),
            "/wxa/release": wxa("POST", True, self._release),
            "/wxa/grayrelease": wxa("POST", True, self._grayrelease),
            "/wxa/getgrayreleaseplan": wxa("GET", False, self._getgrayreleaseplan),
            "/wxa/revertgrayrelease": wxa("GET", False, self._revertgrayrelease),
            "/wxa/revertcoderelease": wxa("GET", False, self._revertcoderelease),
            "/wxa/getversioninfo": wxa("POST", True, self._getversioninfo),
            "/wxa/queryquota": wxa("GET", False, self._queryquota),
        }

    def inject(self, api: str, fault: str, times: int = 1) -> None:
        """As :meth:`Emulator.inject`, with WeChat's own faults (:data:`WECHAT_FAULTS`) too."""
        if fault not in WECHAT_FAULTS:
            if fault not in FAULTS:
                known = ", ".join((*FAULTS, *WECHAT_FAULTS))
                raise ValueError(f"unknown fault {fault!r}; one of {known}")
            super().inject(api, fault, times)
            return
        if times < 1:
            raise ValueError("times must be at least 1")
        self._faults.append(Fault(api, fault, times))

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
        if path == "/wxa/revertcoderelease" and "action" in request.query:
            path = HISTORY  # a read, counted and faulted apart from rollbacks
        self.calls[path] += 1
        fault = self.take_fault(path)
        if fault == "busy":
            return self._respond(_error(-1), endpoint)
        if fault == "rate_limit":
            return self._respond(_error(45009), endpoint)
        if fault == "rate_limit_minute":
            return self._respond(_error(45011), endpoint)
        if fault == "invalid_token":
            return self._respond(_error(40014), endpoint)
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
            answer = _error(fail.errcode, fail.message)
        if fault == "timeout":
            await self.hold()
        response = self._respond(answer, endpoint)
        if fault in ("malformed", "unsigned"):  # WeChat signs no answer: both are cut short
            body = response.body if isinstance(response.body, bytes) else b""
            return web.Response(
                body=body[: max(1, len(body) // 2)],
                headers={"Content-Type": response.headers.get("Content-Type", JSON_TYPE)},
            )
        return response

    @staticmethod
    def _respond(answer: Mapping[str, Any] | web.Response, endpoint: _Endpoint) -> web.Response:
        if isinstance(answer, web.Response):
            return answer
        failed = answer.get("errcode", 0) != 0
        body = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        kind = endpoint.error_type if failed else JSON_TYPE
        return web.Response(body=body, headers={"Content-Type": kind})

    def _process(
        self, request: web.Request, endpoint: _Endpoint, raw: bytes
    ) -> dict[str, Any] | web.Response:
        if request.method != endpoint.method:
            raise _Fail(43001 if endpoint.method == "GET" else 43002)
        remote = request.remote or ""
        if self.ip_whitelist is not None and remote not in self.ip_whitelist:
            raise _Fail(61004, f"invalid ip {remote} ipv6 ::ffff:{remote}, not in whitelist")
        program = self._authorize(request.query, endpoint.token)
        if (
            program is not None
            and endpoint.permissions
            and not set(endpoint.permissions) & set(program.func_info)
        ):
            raise _Fail(61007)
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
        return endpoint.run(_Call(body, program, request.query))

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
            raise _Fail(self.expired_component_errcode if kind == "component" else 42001)
        if kind == "component":
            return None
        program = self.programs.get(token.appid)
        if program is None or not program.authorized:  # revoked since the token was issued
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
        ticket = body.get("component_verify_ticket")
        if ticket != comp.verify_ticket:
            issued = next((at for t, at in self.previous_tickets if t == ticket), None)
            if issued is None:
                raise _Fail(61006)
            if self.clock() >= issued + TICKET_SECONDS:
                raise _Fail(61005)
        value = self._issue("component", comp.appid)
        return {"component_access_token": value, "expires_in": TOKEN_SECONDS}

    def _component_appid(self, body: Mapping[str, Any]) -> None:
        appid = body.get("component_appid")
        if not appid:
            raise _Fail(41018)
        if appid != self.component.appid:
            raise _Fail(61011)

    def _authorizer_token(self, call: _Call) -> dict[str, Any]:
        body = call.body
        self._component_appid(body)
        program = self.programs.get(str(body.get("authorizer_appid", "")))
        if program is None or not program.authorized:
            raise _Fail(61003)
        if body.get("authorizer_refresh_token") != program.refresh_token:
            raise _Fail(61023)
        if self.rotate_refresh_tokens:
            program.refresh_token = "refreshtoken@@@" + secrets.token_urlsafe(32)
        value = self._issue("authorizer", program.appid)
        return {
            "authorizer_access_token": value,
            "expires_in": TOKEN_SECONDS,
            "authorizer_refresh_token": program.refresh_token,
        }

    # -- authorization -----------------------------------------------------------------

    def _create_preauthcode(self, call: _Call) -> dict[str, Any]:
        self._component_appid(call.body)
        now = self.clock()
        self.preauth_codes = {c: t for c, t in self.preauth_codes.items() if t > now}
        code = "preauthcode@@@" + secrets.token_urlsafe(32)
        self.preauth_codes[code] = now + CODE_SECONDS
        return {"pre_auth_code": code, "expires_in": CODE_SECONDS}

    @staticmethod
    def _page(status: int, text: str) -> web.Response:
        return web.Response(
            status=status,
            text=f"<html><body><h1>授权失败</h1><p>{text}</p></body></html>",
            content_type="text/html",
        )

    async def _login_page(self, request: web.Request) -> web.StreamResponse:
        """The authorization page: the admin of ``biz_appid`` "scans and confirms" at once,
        and the browser is sent to ``redirect_uri`` with the authorization code."""
        self.calls["/cgi-bin/componentloginpage"] += 1
        q = request.query
        now = self.clock()
        if q.get("component_appid") != self.component.appid:
            return self._page(400, "unknown component_appid")
        expires = self.preauth_codes.pop(q.get("pre_auth_code", ""), None)
        if expires is None or expires <= now:
            return self._page(400, "pre_auth_code is invalid or expired")
        redirect = q.get("redirect_uri", "")
        appid = q.get("biz_appid", "")
        if not redirect.startswith(("http://", "https://")):
            return self._page(400, "redirect_uri is missing")
        if not appid:
            return self._page(400, "the emulator authorizes the mini program named by biz_appid")
        program = self.programs.get(appid)
        if program is None:
            program = _Program(
                appid=appid,
                original_id="gh_" + secrets.token_hex(6),
                refresh_token=None,
                categories=[dict(c) for c in CATEGORIES],
            )
            self.programs[appid] = program
        # re-authorization changes the refresh token (fact sheet §3)
        program.refresh_token = "refreshtoken@@@" + secrets.token_urlsafe(32)
        program.func_info = list(GRANTED)
        code = "queryauthcode@@@" + secrets.token_urlsafe(32)
        self.auth_codes[code] = (appid, now + CODE_SECONDS)
        query = urlencode({"auth_code": code, "expires_in": CODE_SECONDS})
        location = f"{redirect}{'&' if '?' in redirect else '?'}{query}"
        return web.Response(status=302, headers={"Location": location})

    def _query_auth(self, call: _Call) -> dict[str, Any]:
        self._component_appid(call.body)
        code = str(call.body.get("authorization_code", ""))
        found = self.auth_codes.pop(code, None)  # a code is used once
        if found is None:
            raise _Fail(61009)
        appid, expires = found
        program = self.programs.get(appid)
        if self.clock() >= expires:
            raise _Fail(61010)
        if program is None or not program.authorized:
            raise _Fail(61003)
        return {
            "authorization_info": {
                "authorizer_appid": appid,
                "authorizer_access_token": self._issue("authorizer", appid),
                "expires_in": TOKEN_SECONDS,
                "authorizer_refresh_token": program.refresh_token,
                "func_info": _func_info(program.func_info),
            }
        }

    def _get_authorizer_info(self, call: _Call) -> dict[str, Any]:
        self._component_appid(call.body)
        program = self.programs.get(str(call.body.get("authorizer_appid", "")))
        if program is None or not program.authorized:
            raise _Fail(61003)
        return {
            "authorizer_info": {
                "nick_name": f"Emulated {program.appid[-4:]}",
                "user_name": program.original_id,
                "principal_name": "Emulated Co., Ltd.",
                "MiniProgramInfo": {
                    "categories": [
                        {"first": c["first_class"], "second": c["second_class"]}
                        for c in program.categories
                    ]
                },
            },
            "authorization_info": {
                "authorizer_appid": program.appid,
                "authorizer_refresh_token": program.refresh_token,
                "func_info": _func_info(program.func_info),
            },
        }

    # -- template library --------------------------------------------------------------

    def _listed(self, key: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
        if not entries and self.empty_lists_as_85064:
            raise _Fail(85064)  # the sheet lists it for the lists too (§5.1, §5.3)
        return _ok(**{key: entries})

    def _draft_list(self, call: _Call) -> dict[str, Any]:
        drafts = sorted(self.drafts.values(), key=lambda d: d.draft_id)
        return self._listed("draft_list", [asdict(d) | {"category_list": []} for d in drafts])

    def _template_list(self, call: _Call) -> dict[str, Any]:
        wanted = as_int(call.query.get("template_type"))
        found = [
            t
            for t in sorted(self.templates.values(), key=lambda t: t.template_id)
            if wanted is None or t.template_type == wanted
        ]
        listed = []
        for t in found:
            entry = {k: v for k, v in asdict(t).items() if k != "pages"}
            entry["category_list"] = []
            listed.append(entry)
        return self._listed("template_list", listed)

    def _add_to_template(self, call: _Call) -> dict[str, Any]:
        if "draft_id" not in call.body:
            raise _Fail(47001)
        wanted = as_int(call.body["draft_id"])
        draft = self.drafts.get(wanted) if wanted is not None else None
        kind = as_int(call.body.get("template_type", 0))
        if kind not in (0, 1):
            raise _Fail(40097)
        if draft is None:
            raise _Fail(85064)
        if len(self.templates) >= self.template_limit:
            raise _Fail(85065)
        self._add_template(
            self._new_template_id(),
            draft.user_version,
            draft.user_desc,
            draft_id=draft.draft_id,
            template_type=kind,
            source_miniprogram_appid=draft.source_miniprogram_appid,
            source_miniprogram=draft.source_miniprogram,
            developer=draft.developer,
        )
        return _ok()

    def _delete_template(self, call: _Call) -> dict[str, Any]:
        if "template_id" not in call.body:
            raise _Fail(47001)
        ident = as_int(call.body["template_id"])
        if ident is None or ident not in self.templates:
            raise _Fail(85064)
        del self.templates[ident]
        return _ok()

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
        if pages == []:
            raise _Fail(85047)
        if pages is not None and (
            not isinstance(pages, list) or not set(map(str, pages)) <= set(template.pages)
        ):
            raise _Fail(85013)
        tab_bar = ext.get("tabBar")
        items = tab_bar.get("list") if isinstance(tab_bar, dict) else None
        if isinstance(items, list) and any(
            not isinstance(i, dict) or not i.get("pagePath") for i in items
        ):
            raise _Fail(85046)
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
        return list(template.pages) if template else list(TEMPLATE_PAGES)

    def _get_page(self, call: _Call) -> dict[str, Any]:
        return _ok(page_list=self._pages(self._program(call)))

    def _get_category(self, call: _Call) -> dict[str, Any]:
        return _ok(category_list=[dict(c) for c in self._program(call).categories])

    def _get_qrcode(self, call: _Call) -> web.Response:
        program = self._program(call)
        if program.commit is None:
            raise _Fail(86001)
        url = self.experience_url(program.appid, call.query.get("path", ""))
        image = self._qr_cache.get(url)
        if image is None:
            image = self._qr_cache[url] = _qr_jpeg(url)
        response = web.Response(
            body=image,
            headers={
                "Content-Type": "image/jpeg",
                "Content-disposition": 'attachment; filename="QRCode.jpg"',
                "Cache-Control": "no-cache, must-revalidate",
            },
        )
        response.force_close()  # the documented "Connection: close"
        return response

    def _scanning(self, program: _Program) -> bool:
        commit = program.commit
        return commit is not None and self.clock() < commit.committed_at + self.privacy_scan_seconds

    @staticmethod
    def _undeclared(program: _Program) -> list[str]:
        """Privacy APIs the code uses that ext_json.requiredPrivateInfos does not declare."""
        ext = program.commit.ext_json if program.commit else {}
        declared = ext.get("requiredPrivateInfos")
        names = (
            {str(d).removeprefix("wx.") for d in declared} if isinstance(declared, list) else set()
        )
        return [api for api in program.privacy_apis if api.removeprefix("wx.") not in names]

    def _privacy_info(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        if program.commit is None:
            raise _Fail(86001)
        if self._scanning(program):
            raise _Fail(61039)
        return _ok(without_auth_list=[], without_conf_list=self._undeclared(program))

    @staticmethod
    def _month(at: float) -> str:
        return datetime.fromtimestamp(at, BEIJING).strftime("%Y-%m")

    def _quota_rest(self) -> int:
        return max(0, self.quota_limit - self.quota_used.get(self._month(self.clock()), 0))

    def _speedup_rest(self) -> int:
        return max(0, self.speedup_limit - self.speedup_used.get(self._month(self.clock()), 0))

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
        if self._scanning(program):
            raise _Fail(61039)
        undeclared = self._undeclared(program)
        if undeclared and body.get("privacy_api_not_use") is not True:
            raise _Fail(61040, f"privacy api {undeclared[0]} is used but not configured")
        if self._quota_rest() <= 0:
            raise _Fail(85085)
        now = self.clock()
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

    def _speedupaudit(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        if "auditid" not in call.body:
            raise _Fail(47001)
        auditid = as_int(call.body["auditid"])
        audit = program.audit(auditid) if auditid is not None else None
        if audit is None or self._status(audit)[0] not in (2, 4):
            raise _Fail(89402)
        if audit.expedited:
            raise _Fail(89404)
        if self._speedup_rest() <= 0:
            raise _Fail(89405)
        month = self._month(self.clock())
        self.speedup_used[month] = self.speedup_used.get(month, 0) + 1
        audit.expedited = True
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
        now = self.clock()
        if program.gray is not None and program.gray.status == 1:
            program.gray.status = 3  # released to everyone: the staged release is finished
        audit.released = True
        commit_time = program.commit.committed_at if program.commit else now
        release = _Release(
            audit.user_version, audit.user_desc, now, self.next_app_version, commit_time
        )
        self.next_app_version += 1
        program.history = [*program.history, release][-RELEASES_KEPT:]
        program.release = release
        program.rolled_back = False
        return _ok()

    def _grayrelease(self, call: _Call) -> dict[str, Any]:
        program, body = self._program(call), call.body
        percent = body.get("gray_percentage")
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise _Fail(85081)
        first = bool(body.get("support_debuger_first")) or bool(
            body.get("support_experiencer_first")
        )
        if percent == 0 and not first:
            raise _Fail(85081)
        if program.release is None:
            raise _Fail(85079)
        audit = program.audits[-1] if program.audits else None
        if audit is None or audit.released or self._status(audit)[0] != 0:
            raise _Fail(85080)
        gray = program.gray
        if gray is not None and gray.status == 1 and gray.auditid == audit.auditid:
            if percent <= gray.percentage:
                raise _Fail(85082)
            gray.percentage = percent
            gray.debuger_first = gray.debuger_first or bool(body.get("support_debuger_first"))
            gray.experiencer_first = gray.experiencer_first or bool(
                body.get("support_experiencer_first")
            )
            return _ok()
        program.gray = _Gray(
            auditid=audit.auditid,
            percentage=percent,
            created_at=self.clock(),
            debuger_first=bool(body.get("support_debuger_first")),
            experiencer_first=bool(body.get("support_experiencer_first")),
        )
        return _ok()

    def _getgrayreleaseplan(self, call: _Call) -> dict[str, Any]:
        gray = self._program(call).gray
        if gray is None:
            plan: dict[str, Any] = {"status": 0, "create_timestamp": 0, "gray_percentage": 0}
        else:
            plan = {
                "status": gray.status,
                "create_timestamp": int(gray.created_at),
                "gray_percentage": gray.percentage,
                "support_experiencer_first": gray.experiencer_first,
                "support_debuger_first": gray.debuger_first,
            }
        return _ok(gray_release_plan=plan)

    def _revertgrayrelease(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        if program.gray is not None and program.gray.status == 1:
            program.gray.status = 4  # deleted: its users go back to the live version
        return _ok()

    def _revertcoderelease(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        if call.query.get("action") == "get_history_version":
            return _ok(
                version_list=[
                    {
                        "commit_time": int(r.commit_time),
                        "user_version": r.version,
                        "user_desc": r.desc,
                        "app_version": r.app_version,
                    }
                    for r in program.history
                ]
            )
        if "action" in call.query:
            raise _Fail(40097)
        if program.gray_running():
            raise _Fail(87011)
        live = program.release
        if live is None or program.rolled_back:
            raise _Fail(87012)
        earlier = [r for r in program.history if r.app_version < live.app_version]
        wanted = call.query.get("app_version")
        if wanted is None:
            target = earlier[-1] if earlier else None
        else:
            number = as_int(wanted)
            if number is None:
                raise _Fail(40097)
            target = next((r for r in earlier if r.app_version == number), None)
        if target is None:
            raise _Fail(87012)
        program.release = replace(target, released_at=self.clock())
        program.rolled_back = True
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
        return _ok(
            rest=self._quota_rest(),
            limit=self.quota_limit,
            speedup_rest=self._speedup_rest(),
            speedup_limit=self.speedup_limit,
        )
