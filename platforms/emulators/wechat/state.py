"""What the emulated platform holds: the third-party platform, its tokens, templates and
drafts, and per mini program its commit, audits, releases and gray plan; and the reads of
that state the API handlers share (:class:`WeChatState`).
"""

from __future__ import annotations

import secrets
import string
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from platforms.base import BEIJING  # WeChat's daily and monthly limits reset here
from platforms.emulators.base import Emulator
from platforms.emulators.wechat.errors import _Fail

__all__ = ["WeChatState"]


TOKEN_SECONDS = 7200
CODE_SECONDS = 600  # pre_auth_code and authorization code lifetime
TICKET_PUSH_SECONDS = 600  # WeChat pushes a new component_verify_ticket every 10 minutes
TICKET_SECONDS = 12 * 3600  # a component_verify_ticket is valid 12 h (sheet §3)
TICKETS_KEPT_SECONDS = 2 * TICKET_SECONDS  # expired ones answer 61005 this long, then 61006

RELEASES_KEPT = 5  # get_history_version lists at most this many
QUOTA_LIMIT = 20
SPEEDUP_LIMIT = 3
TEMPLATE_LIMIT = 200

CODE_MANAGEMENT = 18
GRAY_AUTO_RELEASE_SECONDS = 15 * 86400
"""A gray plan neither completed nor reverted is released to everyone on day 15 (the
console's 分阶段发布 rule, release-health fact sheet §4; assumed for API plans too)."""
GRANTED = (17, 18, 30, 86)  # what an admin ticks on the emulated authorization page

TEMPLATE_PAGES = ("pages/index/index", "pages/list/list", "pages/detail/detail")
CATEGORIES: tuple[dict[str, Any], ...] = (
    {"first_class": "工具", "second_class": "效率", "first_id": 287, "second_id": 616},
    {"first_class": "商家自营", "second_class": "百货", "first_id": 304, "second_id": 321},
)


def _secret_text(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


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
class _Exposure:
    """From ``at`` (unix seconds) on, ``shares[version]`` of the users had that version."""

    at: float
    shares: dict[str, float]


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
    nick_name: str = ""  # its name (api_get_authorizer_info); "" → "Emulated …"
    authorized_at: float = 0.0  # when it last authorized the platform (auth_time)
    privacy_apis: list[str] = field(default_factory=list)
    """Privacy APIs the committed code "uses" (tests set it): submit answers 61040 unless
    ext_json.requiredPrivateInfos declares them or ``privacy_api_not_use`` is sent."""
    exposure: list[_Exposure] = field(default_factory=list)
    """From when (unix seconds) which share of users had which version: a row each time a
    release, gray step, revert or rollback changed it (what jserr_list's figures follow)."""

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
            nick_name=str(data.get("nick_name", "")),
            authorized_at=float(data.get("authorized_at", 0.0)),
            exposure=[_Exposure(**e) for e in data.get("exposure", [])],
        )

    def audit(self, auditid: int) -> _Audit | None:
        return next((a for a in self.audits if a.auditid == auditid), None)

    def gray_running(self) -> bool:
        return self.gray is not None and self.gray.status == 1

    def shares(self) -> dict[str, float]:
        """Which version each share of users has now: the live one, and the gray one."""
        if self.release is None:
            return {}
        gray = self.audit(self.gray.auditid) if self.gray and self.gray_running() else None
        if gray is None or self.gray is None:
            return {self.release.version: 1.0}
        part = self.gray.percentage / 100
        out = {self.release.version: 1.0 - part}
        out[gray.user_version] = out.get(gray.user_version, 0.0) + part
        return out

    def exposed(self, at: float) -> None:
        """Note that from ``at`` the users are split as :meth:`shares` says."""
        self.exposure.append(_Exposure(at, self.shares()))

    def make_live(self, audit: _Audit, at: float, app_version: int) -> None:
        """``audit``'s version goes live for everyone at ``at`` (a release, or a gray
        plan's automatic full release); a running gray plan is finished."""
        if self.gray is not None and self.gray.status == 1:
            self.gray.status = 3
        audit.released = True
        commit_time = self.commit.committed_at if self.commit else at
        release = _Release(audit.user_version, audit.user_desc, at, app_version, commit_time)
        self.history = [*self.history, release][-RELEASES_KEPT:]
        self.release = release
        self.rolled_back = False
        self.exposed(at)


@dataclass(frozen=True)
class _Call:
    """One request after the common checks."""

    body: dict[str, Any]
    program: _Program | None  # the mini program whose authorizer token was used
    query: Mapping[str, str] = field(default_factory=dict)


class WeChatState(Emulator):
    """The emulator's state, as :class:`WeChatEmulator`'s constructor sets it up, and what
    the API handlers of the mixins beside it share."""

    privacy_scan_seconds: float
    calls: Counter[str]  # requests per API path, for tests
    component: _Component
    tokens: dict[str, _Token]
    templates: dict[int, _Template]
    next_template_id: int
    drafts: dict[int, _Draft]
    programs: dict[str, _Program]
    next_auditid: int
    next_app_version: int
    quota_limit: int
    quota_used: dict[str, int]  # "YYYY-MM" (Beijing) → submissions
    speedup_limit: int
    speedup_used: dict[str, int]  # "YYYY-MM" (Beijing) → expedites
    template_limit: int
    preauth_codes: dict[str, float]  # code → expires at
    auth_codes: dict[str, tuple[str, float]]  # code → (appid, expires at)
    ip_whitelist: set[str] | None  # None: any caller
    rotate_refresh_tokens: bool
    rollback_keeps_history: bool
    release_refused_while_gray: bool
    empty_lists_as_85064: bool
    expired_component_errcode: int
    ticket_issued_at: float  # when the current verify ticket was issued
    previous_tickets: list[tuple[str, float]]  # (ticket, issued at), superseded
    ticket_pushed_at: float | None
    pending_ticket: str | None  # issued, its push not yet accepted
    grant_events: list[tuple[str, str, float]]  # (InfoType, appid, when), pushed in order
    _qr_cache: dict[str, bytes]
    _media_cache: dict[str, bytes]  # media id → a rejection screenshot's PNG

    def _program(self, call: _Call) -> _Program:
        assert call.program is not None  # authorizer APIs always carry one
        self._auto_release(call.program)
        return call.program

    def _auto_release(self, program: _Program) -> None:
        """A gray plan left running for 15 days is released to everyone then."""
        gray = program.gray
        if gray is None or gray.status != 1:
            return
        due = gray.created_at + GRAY_AUTO_RELEASE_SECONDS
        audit = program.audit(gray.auditid)
        if self.clock() < due or audit is None:
            return
        program.make_live(audit, due, self.next_app_version)
        self.next_app_version += 1

    def _pages(self, program: _Program) -> list[str]:
        commit = program.commit
        if commit is None:
            raise _Fail(86001)
        pages = commit.ext_json.get("pages")
        if isinstance(pages, list) and pages:
            return [str(p) for p in pages]
        template = self.templates.get(commit.template_id)
        return list(template.pages) if template else list(TEMPLATE_PAGES)

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
        """The media ids of a rejected audit's two screenshots, joined by ``|`` (get_material
        serves them)."""
        return f"emu_{audit.auditid}_1|emu_{audit.auditid}_2"

    @staticmethod
    def _month(at: float) -> str:
        return datetime.fromtimestamp(at, BEIJING).strftime("%Y-%m")
