"""The WeChat emulator: :class:`WeChatEmulator`, its state set up, kept and provisioned,
and the table of the APIs it serves.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import web
from pydantic import BaseModel, SecretStr

from platforms.emulators.base import Provisioned
from platforms.emulators.wechat.authorization import AuthorizationApis
from platforms.emulators.wechat.commit import CommitApis
from platforms.emulators.wechat.health import HealthApis
from platforms.emulators.wechat.pushes import Pushes
from platforms.emulators.wechat.release import ReleaseApis
from platforms.emulators.wechat.review import ReviewApis
from platforms.emulators.wechat.server import HISTORY, JSON_TYPE, Server, _Endpoint
from platforms.emulators.wechat.state import (
    CATEGORIES,
    CODE_MANAGEMENT,
    GRANTED,
    QUOTA_LIMIT,
    SPEEDUP_LIMIT,
    TEMPLATE_LIMIT,
    _Call,
    _Component,
    _Draft,
    _Program,
    _Template,
    _Token,
)
from platforms.emulators.wechat.templates import TemplateApis
from platforms.wechat import WeChatPlatform

__all__ = ["WeChatEmulator"]


MATERIAL_PERMISSIONS = (3, 11, CODE_MANAGEMENT, 30, 31, 100)
"""get_material's permission sets (official page api_getmaterial): any one will do."""


def _env_key(app: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in app.upper())


class WeChatEmulator(
    Server,
    AuthorizationApis,
    TemplateApis,
    CommitApis,
    ReviewApis,
    ReleaseApis,
    HealthApis,
    Pushes,
):
    """api.weixin.qq.com's third-party-platform code management, on loopback.

    Args:
        privacy_scan_seconds: how long after a commit submit_audit (and
            get_code_privacy_info) answer 61039 (WeChat's privacy-API scan); 0 turns the
            scan off.
        (the rest as :class:`Emulator`)

    Knobs for tests: :attr:`quota_limit`, :attr:`speedup_limit`, :attr:`template_limit`,
    :attr:`ip_whitelist` (61004 for other callers), :attr:`rotate_refresh_tokens`,
    :attr:`empty_lists_as_85064`, :attr:`expired_component_errcode`,
    :attr:`rollback_keeps_history`, :attr:`daily_users` (what the JS error figures of
    jserr_list / jserr_detail scale with), and per mini program
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
        "review_images": "/cgi-bin/material/get_material",
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
        "js_errors": "/wxaapi/log/jserr_list",
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
        self.rollback_keeps_history = False
        """get_history_version keeps listing the kept releases after a rollback. By default
        it lists none while the live version is a rollback (until the next release): the
        official page calls it the list of versions one *can* roll back to
        (获取可回退的小程序版本), WeChat allows no second rollback, and a community report
        shows ``version_list: []`` after one. The fact sheet (§4.14) is silent: UNCERTAIN."""
        self.release_refused_while_gray = False
        """``release`` during a running gray plan answers 85052 (the gray version already
        counts as released), and a plan raised to 100 % finishes it, the version live for
        everyone (reading B). By default ``release`` finishes the plan, as the console's
        全量发布 does, and a plan at 100 % keeps running (reading A). The fact sheet (§2.1,
        §2.4) documents neither: UNCERTAIN."""
        self.empty_lists_as_85064 = False
        """gettemplatelist / gettemplatedraftlist answer 85064 instead of an empty list."""
        self.expired_component_errcode = 42001
        """What an expired component token gets: 42001 ``access_token expired``, as for any
        expired token (fact sheet §1.1, §3.6 "40001/42001 on the CTOK", §11). 42006
        ``component_access_token expired`` is only in WxJava's error enum, with no documented
        trigger; set it here to see how a client copes with that reading."""
        self.ticket_issued_at = clock()  # when the current verify ticket was issued
        self.previous_tickets: list[tuple[str, float]] = []  # (ticket, issued at), superseded
        self.ticket_pushed_at: float | None = None
        self.pending_ticket: str | None = None  # issued, its push not yet accepted
        self.grant_events: list[tuple[str, str, float]] = []  # (InfoType, appid, when)
        self._qr_cache: dict[str, bytes] = {}
        self._media_cache: dict[str, bytes] = {}
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
                "grant_events": [list(g) for g in self.grant_events],
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
        self.grant_events = [
            (str(g[0]), str(g[1]), float(g[2])) for g in pushes.get("grant_events", [])
        ]

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
                    authorized_at=self.clock() if authorize else 0.0,
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

    def add_merchants(self, count: int, *, start: int = 1) -> list[str]:
        """``count`` merchant mini programs that authorized the platform outside miniship
        (what ``apps sync wechat`` finds): appids wx00000000000000a1…, names 商户 1…"""
        made = []
        for n in range(start, start + count):
            appid = f"wx{n:016x}"
            if appid not in self.programs:
                self.programs[appid] = _Program(
                    appid=appid,
                    original_id=f"gh_{n:012x}",
                    refresh_token="refreshtoken@@@" + secrets.token_urlsafe(32),
                    categories=[dict(c) for c in CATEGORIES],
                    nick_name=f"商户 {n}",
                    authorized_at=self.clock(),
                )
            made.append(appid)
        self.save()
        return made

    def authorize(self, appid: str, name: str) -> None:
        """A merchant authorizes the platform in WeChat (outside miniship): an
        ``authorized`` push follows."""
        self._grant(appid, name)
        self.save()

    def revoke(self, appid: str) -> None:
        """The mini program's admin withdraws the authorization (in their console): an
        ``unauthorized`` push follows."""
        program = self.programs[appid]
        program.refresh_token = None
        program.func_info = []
        self.grant_events.append(("unauthorized", appid, self.clock()))
        self.save()

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
            "/cgi-bin/component/api_get_authorizer_list": component(
                "POST", True, self._get_authorizer_list
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
            "/wxaapi/log/jserr_list": wxa("POST", True, self._jserr_list),
            "/wxaapi/log/jserr_detail": wxa("POST", True, self._jserr_detail),
            "/cgi-bin/material/get_material": wxa(
                "POST", True, self._get_material, MATERIAL_PERMISSIONS
            ),
        }
