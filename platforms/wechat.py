"""WeChat (微信) mini programs through a third-party platform (第三方平台): code management.

Credentials. miniship calls WeChat as a third-party platform on behalf of each merchant
mini program that authorized it:

- In the WeChat open platform console (https://open.weixin.qq.com) create a third-party
  platform, note its AppID and AppSecret (``WECHAT_COMPONENT_APPID``,
  ``WECHAT_COMPONENT_SECRET``) and put this server's outgoing IP on its IP whitelist
  (otherwise every call fails with 61004).
- WeChat pushes a ``component_verify_ticket`` to the platform's authorization-event URL
  every 10 minutes (valid 12 h). Until miniship stores pushed tickets itself, set the latest
  one as ``WECHAT_COMPONENT_VERIFY_TICKET``. ``WECHAT_COMPONENT_TOKEN`` and
  ``WECHAT_ENCODING_AES_KEY`` (message verification token and key) are for push events.
- Each mini program authorizes the platform with the code-management permission set (18);
  the ``authorizer_refresh_token`` WeChat returns then goes into the app's
  ``[apps.<key>.wechat]`` section as ``refresh_token = "env:NAME"`` (or ``file:``).

Calls: ``api_component_token`` → ``component_access_token``; ``api_authorizer_token`` →
the mini program's ``authorizer_access_token``; then ``/wxa/commit`` (upload from a template
in the platform's template library), ``/wxa/submit_audit``, ``/wxa/get_auditstatus``,
``/wxa/get_latest_auditstatus``, ``/wxa/undocodeaudit``, ``/wxa/release`` and
``/wxa/getversioninfo``. API docs:
https://developers.weixin.qq.com/doc/oplatform/openApi/miniprogram-management/code-management/api_commit.html
(and the ``api_submitaudit``, ``api_getauditstatus``, ``api_getlatestauditstatus``,
``api_undoaudit``, ``api_release``, ``api_getversioninfo`` pages next to it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from platforms.base import (
    Overview,
    Platform,
    ReviewState,
    ReviewStatus,
    SecretRef,
    SubmitResult,
    UploadResult,
    scrub_answer,
    url_problem,
)
from platforms.errors import (
    AlreadyInReview,
    AuthError,
    BadResponse,
    ConfigError,
    InvalidInput,
    InvalidState,
    NotFound,
    OutcomeUnknown,
    PlatformError,
    PlatformUnavailable,
    QuotaExceeded,
)
from platforms.push import PushEvent, PushRejected, PushRequest, wechat_events
from platforms.wechat_crypto import WeChatCrypto

__all__ = ["WeChatPlatform", "error_for"]

log = logging.getLogger(__name__)

GET_COMPONENT_ACCESS = "/cgi-bin/component/api_component_token"
GET_AUTHORIZER_ACCESS = "/cgi-bin/component/api_authorizer_token"
COMMIT = "/wxa/commit"
SUBMIT_AUDIT = "/wxa/submit_audit"
GET_AUDITSTATUS = "/wxa/get_auditstatus"
GET_LATEST_AUDITSTATUS = "/wxa/get_latest_auditstatus"
UNDO_AUDIT = "/wxa/undocodeaudit"
RELEASE = "/wxa/release"
VERSION_INFO = "/wxa/getversioninfo"
QUERY_QUOTA = "/wxa/queryquota"

TOKEN_CODES = frozenset({"40001", "40014", "42001", "42006"})
"""errcodes that mean "this access token is refused": renew it and try once more.

42006 (component_access_token expired) comes from the calls that carry the component
token, such as api_authorizer_token."""

REFRESH_EARLY_SECONDS = 600.0
"""Tokens are renewed at least this long before WeChat says they expire."""

DEFAULT_EXPIRES_IN = 7200

CONFIRMED = "confirmed with WeChat after an unclear answer"

APPROVED, REJECTED, IN_REVIEW, WITHDRAWN, DELAYED = 0, 1, 2, 3, 4

_STATES: dict[int, ReviewState] = {
    APPROVED: ReviewState.APPROVED,
    REJECTED: ReviewState.REJECTED,
    IN_REVIEW: ReviewState.IN_REVIEW,
    WITHDRAWN: ReviewState.WITHDRAWN,
    DELAYED: ReviewState.DELAYED,
}

_STATUS_WORDS: dict[int, str] = {
    APPROVED: "approved (status 0)",
    REJECTED: "rejected (status 1)",
    IN_REVIEW: "under review (status 2)",
    WITHDRAWN: "withdrawn (status 3)",
    DELAYED: "under review, delayed (status 4)",
}


def _status_words(status: int) -> str:
    return _STATUS_WORDS.get(status, f"in an unknown state (status {status})")


# --------------------------------------------------------------------------- errors

_ErrorRule = tuple[type[PlatformError], str]

_REAUTHORIZE = (
    "the merchant must authorize the third-party platform again (with the code-management "
    "permission set) and you must update refresh_token for this app."
)

_RULES: dict[int, _ErrorRule] = {
    -1: (PlatformUnavailable, "WeChat is busy (system error); try again in a minute."),
    # tokens and credentials
    40001: (
        AuthError,
        "WeChat refused the access token (invalid or not the latest). miniship renews tokens "
        "itself, so if this persists check WECHAT_COMPONENT_SECRET, and that no other system "
        "renews the same platform's tokens.",
    ),
    40013: (
        AuthError,
        "WeChat does not know the AppID; check WECHAT_COMPONENT_APPID and the app's appid.",
    ),
    40014: (AuthError, "WeChat says the access token is invalid; miniship could not renew it."),
    40125: (
        AuthError,
        "WeChat refused the platform's AppSecret; check WECHAT_COMPONENT_SECRET.",
    ),
    41001: (AuthError, "the access token was missing from the request (a miniship bug)."),
    41004: (AuthError, "the platform's AppSecret is missing; set WECHAT_COMPONENT_SECRET."),
    41018: (AuthError, "the platform's AppID is missing; set WECHAT_COMPONENT_APPID."),
    42001: (AuthError, "the access token expired and miniship could not renew it."),
    42006: (AuthError, "the component_access_token expired and miniship could not renew it."),
    42007: (
        AuthError,
        "the mini program's authorization broke (e.g. its admin changed the password); "
        + _REAUTHORIZE,
    ),
    48001: (
        AuthError,
        "this API is not authorized for the mini program (or was called with the wrong kind of "
        "token); check the permission sets the merchant granted.",
    ),
    48004: (AuthError, "WeChat has banned this API for the account because of irregularities."),
    61003: (
        AuthError,
        "the mini program has not authorized (or no longer authorizes) this third-party "
        "platform; " + _REAUTHORIZE,
    ),
    61004: (
        AuthError,
        "this server's IP is not on the platform's whitelist; add it in the open platform "
        "console (development settings → IP whitelist).",
    ),
    61005: (
        AuthError,
        "the component_verify_ticket has expired (tickets live 12 h). WeChat pushes a new "
        "one every 10 minutes to the authorization-event URL (/push/wechat/auth): check it "
        "is set and reachable, or set WECHAT_COMPONENT_VERIFY_TICKET to a recent ticket.",
    ),
    61006: (
        AuthError,
        "WeChat refused the component_verify_ticket. The newest one arrives at the "
        "authorization-event URL (/push/wechat/auth) within 10 minutes; check that URL is "
        "set and reachable, or set WECHAT_COMPONENT_VERIFY_TICKET to a recent ticket.",
    ),
    61007: (
        AuthError,
        "the merchant did not grant this platform the code-management permission set (18); "
        + _REAUTHORIZE,
    ),
    61011: (AuthError, "WeChat does not accept this third-party platform (invalid component)."),
    61014: (AuthError, "a component API was called with a mini program token (a miniship bug)."),
    61023: (
        AuthError,
        "WeChat refused the app's refresh_token (authorizer_refresh_token); " + _REAUTHORIZE,
    ),
    # rate limits and quotas
    45009: (
        QuotaExceeded,
        "the daily API call quota is spent; try again tomorrow or reset it in the open platform "
        "console (clear_quota).",
    ),
    45011: (QuotaExceeded, "too many calls this minute; try again in a minute."),
    85085: (
        QuotaExceeded,
        "the platform's monthly review quota is spent (queryquota shows what is left); ask for "
        "more in the WeChat service provider assistant or wait for next month.",
    ),
    87013: (
        QuotaExceeded,
        "the withdraw quota is spent: WeChat allows 5 withdrawals a day and 10 a month per mini "
        "program; wait for the review decision or withdraw tomorrow.",
    ),
    89405: (QuotaExceeded, "the monthly quota for expedited reviews is spent."),
    # review flow
    85009: (
        AlreadyInReview,
        "a version is already under review; withdraw it or wait for the decision.",
    ),
    61039: (
        InvalidState,
        "WeChat's privacy-API scan of the uploaded code has not finished; submit again in a "
        "minute.",
    ),
    85019: (InvalidState, "no version is under review or approved, so there is nothing to do."),
    85020: (
        InvalidState,
        "the latest review is not approved, so it cannot be published yet.",
    ),
    85052: (InvalidState, "the approved version is already live."),
    86002: (
        InvalidState,
        "the mini program has not finished its setup (name, avatar, introduction); complete "
        "it in the WeChat console first.",
    ),
    86007: (InvalidState, "WeChat does not allow this mini program to submit code for review."),
    86009: (InvalidState, "WeChat restricts submissions of new mini programs by this platform."),
    86010: (InvalidState, "WeChat restricts this platform's update submissions."),
    87011: (InvalidState, "a gray (staged) release is running; finish or cancel it first."),
    87012: (
        InvalidState,
        "WeChat does not allow this on the version in its current state (e.g. withdrawing a "
        "rejected review, or rolling back twice).",
    ),
    9402202: (
        InvalidState,
        "another operation on this mini program is still in progress; try again in a minute.",
    ),
    # unknown things
    85012: (NotFound, "WeChat does not know this audit id."),
    85014: (
        NotFound,
        "WeChat does not know the template; check template_id against the platform's template "
        "library.",
    ),
    85058: (NotFound, "nothing has ever been submitted for review for this mini program."),
    85064: (NotFound, "WeChat does not know the template or draft."),
    85086: (NotFound, "nothing is uploaded (committed) yet; upload the version first."),
    86001: (NotFound, "the mini program has no trial version; upload the version first."),
    # refused input
    40097: (InvalidInput, "WeChat refused an argument (e.g. a version over 64 characters)."),
    43001: (InvalidInput, "WeChat wanted a GET request (a miniship bug)."),
    43002: (InvalidInput, "WeChat wanted a POST request (a miniship bug)."),
    43003: (InvalidInput, "WeChat needs HTTPS; check WECHAT_API_BASE."),
    44002: (InvalidInput, "WeChat got an empty request body (a miniship bug)."),
    47001: (InvalidInput, "WeChat could not parse the request (data format error)."),
    61040: (
        InvalidInput,
        "the code uses a privacy API (e.g. wx.getLocation) that is not declared in "
        "ext_json.requiredPrivateInfos or not granted to the mini program; declare and apply "
        "for it, then upload again.",
    ),
    85006: (InvalidInput, "a tag in item_list is malformed (space separated, ≤ 10, ≤ 20 chars)."),
    85007: (InvalidInput, "a page path in item_list is not a page of the uploaded code."),
    85008: (
        InvalidInput,
        "the category is invalid: the mini program has no approved category, or item_list names "
        "one it does not have.",
    ),
    85010: (InvalidInput, "an item_list entry is missing a required field."),
    85011: (InvalidInput, "a page title in item_list is invalid (at most 32 characters)."),
    85013: (
        InvalidInput,
        "ext_json is invalid (or names a page the template does not have); fix the app's ext_json.",
    ),
    85023: (InvalidInput, "item_list must have 1 to 5 entries."),
    85043: (InvalidInput, "the template is broken; upload a new one to the template library."),
    85044: (InvalidInput, "the code package is too large."),
    85045: (InvalidInput, "a path in ext_json does not exist in the template."),
    85046: (InvalidInput, "a tabBar item in ext_json has no page path."),
    85047: (InvalidInput, "ext_json gives an empty page list."),
    85048: (InvalidInput, "WeChat could not parse ext_json."),
    85051: (InvalidInput, "the review notes (version_desc) or preview material are too large."),
    85077: (
        InvalidInput,
        "a category was withdrawn by WeChat; update the mini program's categories.",
    ),
    85087: (
        InvalidInput,
        "the code uses navigateToMiniProgram; declare the target AppIDs in ext_json first.",
    ),
    85094: (InvalidInput, "WeChat needs a UGC declaration (ugc_declare) for these categories."),
    87006: (InvalidInput, "mini games cannot be submitted through this API."),
    9402203: (
        InvalidInput,
        "a standard template only accepts extAppid, ext and window in ext_json.",
    ),
    86000: (
        AuthError,
        "WeChat expects this API to be called by the third-party platform for the mini program.",
    ),
}


def error_for(errcode: int, errmsg: str) -> PlatformError:
    """The typed error for a WeChat answer with a non-zero ``errcode``.

    The error's ``code`` is the errcode as text and ``platform_message`` the errmsg as
    returned; the explanation says what it means and what to do.
    """
    cls, explanation = _RULES.get(
        errcode, (PlatformError, f"WeChat refused the request ({errmsg or 'no message'}).")
    )
    if cls is QuotaExceeded:
        retry_after = 60.0 if errcode == 45011 else None
        return QuotaExceeded("wechat", str(errcode), errmsg, explanation, retry_after=retry_after)
    return cls("wechat", str(errcode), errmsg, explanation)


# --------------------------------------------------------------------------- configuration


class _Settings(BaseSettings):
    """Adapter settings, from ``WECHAT_*`` environment variables (or ``.env``)."""

    model_config = SettingsConfigDict(env_prefix="WECHAT_", env_file=".env", extra="ignore")

    api_base: str = "https://api.weixin.qq.com"
    component_appid: str = ""
    component_secret: SecretStr | None = None
    component_verify_ticket: SecretStr | None = None
    component_token: SecretStr | None = None
    encoding_aes_key: SecretStr | None = None
    max_retries: int = Field(default=2, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=0.5, ge=0.0)

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        problem = url_problem(value)
        if problem is not None:
            raise ValueError(
                f"WECHAT_API_BASE must be an http(s) URL such as https://api.weixin.qq.com "
                f"({problem})"
            )
        return value.rstrip("/")


class _AppConfig(BaseModel):
    """One app's ``[apps.<key>.wechat]`` section.

    Example::

        [apps.shop.wechat]
        appid = "wx3a5f9c2e1b7d4f60"
        original_id = "gh_3a5f9c2e1b7d"
        template_id = 12
        ext_json = { ext = { shop = "demo" } }
        refresh_token = "env:SHOP_WECHAT_REFRESH_TOKEN"
        review_notes = "Test account: demo / demo1234."
    """

    model_config = ConfigDict(extra="forbid")

    appid: str = Field(description="the mini program's AppID (wx…)")
    original_id: str | None = Field(default=None, description="the original id (gh_…)")
    template_id: int = Field(ge=0, description="template in the platform's template library")
    ext_json: dict[str, Any] = Field(default_factory=dict)
    refresh_token: SecretRef | None = None
    item_list: list[dict[str, Any]] | None = Field(default=None, min_length=1, max_length=5)
    review_notes: str = ""

    @field_validator("appid")
    @classmethod
    def _appid(cls, value: str) -> str:
        if not re.fullmatch(r"wx[0-9A-Za-z]{16}", value):
            raise ValueError(
                "a WeChat AppID is wx followed by 16 letters or digits (see the mini program's "
                "development settings)"
            )
        return value

    @field_validator("original_id")
    @classmethod
    def _original_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"gh_[0-9A-Za-z]{4,32}", value):
            raise ValueError("an original id looks like gh_ followed by letters and digits")
        return value

    @model_validator(mode="after")
    def _ext_appid(self) -> _AppConfig:
        given = self.ext_json.get("extAppid")
        if given is not None and given != self.appid:
            raise ValueError(f"ext_json.extAppid must be the app's appid {self.appid}")
        return self


@dataclass(frozen=True)
class _Token:
    value: str
    renew_at: float  # unix seconds; renewed from then on, before WeChat's expiry


@dataclass(frozen=True)
class _Audit:
    """One review as get_auditstatus / get_latest_auditstatus describe it."""

    auditid: int
    status: int
    reason: str = ""
    screenshot: str = ""
    user_version: str | None = None


# --------------------------------------------------------------------------- answer parsing


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _bad(api: str, what: str) -> BadResponse:
    return BadResponse("wechat", "", "", f"WeChat's answer to {api} is malformed: {what}.")


def as_int(value: object) -> int | None:
    """An id or code given as a number or as a string of digits (both are seen).

    Shared with the emulator, which reads the same ids from requests.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def _int_field(data: Mapping[str, Any], key: str, api: str) -> int:
    value = as_int(data.get(key))
    if value is None:
        raise _bad(api, f"no usable {key}")
    return value


def _text(value: object) -> str | None:
    """A version or message given as a string or number; ``None`` when absent or empty."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        return str(value) or None
    return None


def _field(data: Mapping[str, Any], key: str) -> Any:
    """``data[key]`` matching the key case-insensitively (``screenshot`` / ``ScreenShot``)."""
    if key in data:
        return data[key]
    lowered = key.lower()
    for k, v in data.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    return None


def _audit_from(data: Mapping[str, Any], api: str, auditid: int | None = None) -> _Audit:
    found = auditid if auditid is not None else _int_field(data, "auditid", api)
    return _Audit(
        auditid=found,
        status=_int_field(data, "status", api),
        reason=_text(_field(data, "reason")) or "",
        screenshot=_text(_field(data, "screenshot")) or "",
        user_version=_text(data.get("user_version")),
    )


def _version_of(data: Mapping[str, Any], section: str, key: str) -> str | None:
    part = data.get(section)
    return _text(part.get(key)) if isinstance(part, Mapping) else None


# --------------------------------------------------------------------------- the adapter


class WeChatPlatform(Platform):
    """WeChat mini programs: template commit, review, publish via a third-party platform."""

    name = "wechat"
    display_name = "WeChat"
    docs_url = (
        "https://developers.weixin.qq.com/doc/oplatform/openApi/miniprogram-management/"
        "code-management/api_commit.html"
    )

    Settings = _Settings
    AppConfig = _AppConfig
    single_trial_version = True  # /wxa/commit overwrites the one trial version

    PRIVACY_SCAN_WAITS: ClassVar[tuple[float, ...]] = (5.0, 10.0, 15.0)
    """Waits before submitting again while WeChat's privacy scan is not finished (61039)."""

    def __init__(
        self,
        settings: Any,
        apps: Mapping[str, Any],
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(settings, _Settings):
            raise ConfigError("WeChatPlatform needs WeChatPlatform.Settings")
        try:
            configs = {
                key: cfg if isinstance(cfg, _AppConfig) else _AppConfig.model_validate(cfg)
                for key, cfg in apps.items()
            }
        except ValidationError as exc:
            raise ConfigError(f"an [apps.*.wechat] section is invalid: {exc}") from None
        super().__init__(settings, configs, client=client, clock=clock)
        self.settings: _Settings = settings
        self.privacy_scan_waits = self.PRIVACY_SCAN_WAITS
        self._component: _Token | None = None
        self._authorizers: dict[str, _Token] = {}
        self._refresh_tokens: dict[str, str] = {
            key: cfg.refresh_token.get_secret_value()
            for key, cfg in configs.items()
            if cfg.refresh_token is not None
        }
        self._locks: dict[str, asyncio.Lock] = {}
        self._verify_ticket: SecretStr | None = settings.component_verify_ticket

    @property
    def verify_ticket(self) -> SecretStr | None:
        """The newest component_verify_ticket: the latest pushed one, else the configured one.

        :meth:`read_push` updates it from ``component_verify_ticket`` pushes; callers may
        persist it and hand it back through ``WECHAT_COMPONENT_VERIFY_TICKET``.
        """
        return self._verify_ticket

    @classmethod
    def is_configured(cls, settings: Any) -> bool:
        def given(secret: SecretStr | None) -> bool:
            return secret is not None and bool(secret.get_secret_value())

        return bool(
            getattr(settings, "component_appid", "")
            and given(getattr(settings, "component_secret", None))
            and given(getattr(settings, "component_verify_ticket", None))
        )

    @classmethod
    def describe_app(cls, config: Any) -> str:
        original = f" ({config.original_id})" if config.original_id else ""
        return f"AppID {config.appid}{original}, template {config.template_id}"

    def _config(self, app: str) -> _AppConfig:
        cfg: _AppConfig = self.app(app)
        return cfg

    def authorizer_refresh_token(self, app: str) -> SecretStr | None:
        """The newest authorizer_refresh_token WeChat gave for ``app`` (or the configured one)."""
        self.app(app)
        token = self._refresh_tokens.get(app)
        return SecretStr(token) if token else None

    # -- the wire ----------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One HTTP request; the answer object when its errcode is 0 or absent.

        Every exchange is recorded with secrets masked; tokens only travel in the query.
        """
        api = f"{method} {path}"
        shown = {**(query or {}), **(body or {})}
        headers: dict[str, str] = {}
        content: bytes | None = None
        if body is not None:
            content = _json(body).encode("utf-8")
            headers["Content-Type"] = "application/json"

        def note(answer: Mapping[str, Any] | None = None, error: str = "") -> None:
            self.record_exchange(api, shown, answer, error)

        try:
            response = await self.client.request(
                method,
                self.settings.api_base + path,
                params=dict(query or {}),
                content=content,
                headers=headers,
            )
        except httpx.TimeoutException:
            note(error="timed out")
            raise PlatformUnavailable(
                self.name, "", "", f"WeChat did not answer {api} in time; try again later."
            ) from None
        except httpx.InvalidURL:
            # the exception text may carry the URL with its token: only its type is shown
            note(error="InvalidURL")
            raise ConfigError(
                f"WECHAT_API_BASE {self.settings.api_base!r} does not make a valid URL for "
                f"{api}; set it to an http(s) URL such as https://api.weixin.qq.com"
            ) from None
        except httpx.HTTPError as exc:
            # the exception text may carry the URL with its token: only its type is shown
            note(error=type(exc).__name__)
            raise PlatformUnavailable(
                self.name,
                "",
                "",
                f"could not reach WeChat ({type(exc).__name__}); try again later.",
            ) from None

        status = response.status_code
        http = f"HTTP {status}"
        try:
            data = scrub_answer(response.json())  # errmsg may echo what was sent
        except ValueError:
            note(error=f"{http}, the answer is not JSON")
            raise PlatformUnavailable(
                self.name,
                http if status != 200 else "",
                "",
                f"WeChat answered {api} with something that is not JSON ({http}); try again later.",
            ) from None
        if status >= 500:
            note(data if isinstance(data, dict) else None, error=http)
            raise PlatformUnavailable(
                self.name, http, "", f"WeChat answered {api} with {http}; try again later."
            )
        if not isinstance(data, dict):
            note(error="the answer is not a JSON object")
            raise _bad(api, "not a JSON object")
        note(data)
        if "errcode" not in data:
            if status != 200:
                raise _bad(api, f"{http} without an errcode")
            return data  # token endpoints answer without errcode on success
        errcode = as_int(data["errcode"])
        if errcode is None:
            raise _bad(api, f"errcode {data['errcode']!r} is not a number")
        if errcode != 0:
            raise error_for(errcode, _text(data.get("errmsg")) or "")
        return data

    @staticmethod
    async def _renewing(
        token: Callable[[], Awaitable[str]],
        forget: Callable[[str], None],
        send: Callable[[str], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """``send(token)``; when WeChat refuses the token, forget it, renew, try once more."""
        value = await token()
        try:
            return await send(value)
        except PlatformError as exc:
            if exc.code not in TOKEN_CODES:
                raise
            log.info("WeChat refused a token (errcode %s); renewing it", exc.code)
        forget(value)
        return await send(await token())

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def _renew_at(self, expires_in: int) -> float:
        return self.clock() + max(expires_in - REFRESH_EARLY_SECONDS, expires_in / 2)

    def _fresh(self, token: _Token | None) -> str | None:
        return token.value if token is not None and self.clock() < token.renew_at else None

    @staticmethod
    def _token_fields(data: Mapping[str, Any], key: str, api: str) -> tuple[str, int]:
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise _bad(api, f"no {key}")
        expires_in = as_int(data.get("expires_in"))
        return value, expires_in if expires_in and expires_in > 0 else DEFAULT_EXPIRES_IN

    async def _component_token(self) -> str:
        """The platform's component_access_token, cached; renewed by one caller at a time."""
        if value := self._fresh(self._component):
            return value
        async with self._lock("component"):
            if value := self._fresh(self._component):
                return value
            s = self.settings
            ticket = self._verify_ticket
            secret = s.component_secret
            if not (
                s.component_appid
                and secret is not None
                and secret.get_secret_value()
                and ticket is not None
                and ticket.get_secret_value()
            ):
                raise ConfigError(
                    "WeChat needs WECHAT_COMPONENT_APPID, WECHAT_COMPONENT_SECRET and "
                    "WECHAT_COMPONENT_VERIFY_TICKET (the third-party platform's credentials)"
                )
            body = {
                "component_appid": s.component_appid,
                "component_appsecret": secret.get_secret_value(),
                "component_verify_ticket": ticket.get_secret_value(),
            }
            data = await self.read_with_retries(
                functools.partial(self._send, "POST", GET_COMPONENT_ACCESS, body=body)
            )
            value, expires_in = self._token_fields(
                data, "component_access_token", f"POST {GET_COMPONENT_ACCESS}"
            )
            self._component = _Token(value, self._renew_at(expires_in))
            return value

    def _forget_component(self, value: str) -> None:
        if self._component is not None and self._component.value == value:
            self._component = None

    async def _authorizer_token(self, app: str) -> str:
        """The mini program's authorizer_access_token, cached; one renewal at a time."""
        cfg = self._config(app)
        if value := self._fresh(self._authorizers.get(app)):
            return value
        async with self._lock(f"authorizer:{app}"):
            if value := self._fresh(self._authorizers.get(app)):
                return value
            refresh = self._refresh_tokens.get(app)
            if not refresh:
                raise ConfigError(
                    f"[apps.{app}.wechat] has no refresh_token: set refresh_token = "
                    '"env:NAME" to the authorizer_refresh_token WeChat issued when mini '
                    f"program {cfg.appid} authorized the platform"
                )
            body = {
                "component_appid": self.settings.component_appid,
                "authorizer_appid": cfg.appid,
                "authorizer_refresh_token": refresh,
            }

            async def send(ctok: str) -> dict[str, Any]:
                return await self.read_with_retries(
                    functools.partial(
                        self._send,
                        "POST",
                        GET_AUTHORIZER_ACCESS,
                        query={"component_access_token": ctok},
                        body=body,
                    )
                )

            data = await self._renewing(self._component_token, self._forget_component, send)
            value, expires_in = self._token_fields(
                data, "authorizer_access_token", f"POST {GET_AUTHORIZER_ACCESS}"
            )
            newest = data.get("authorizer_refresh_token")
            if isinstance(newest, str) and newest:
                self._refresh_tokens[app] = newest
            self._authorizers[app] = _Token(value, self._renew_at(expires_in))
            return value

    def _forget_authorizer(self, app: str, value: str) -> None:
        token = self._authorizers.get(app)
        if token is not None and token.value == value:
            del self._authorizers[app]

    async def _call(
        self,
        app: str,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        read: bool,
    ) -> dict[str, Any]:
        """Call a ``/wxa`` API for ``app``: renews a refused token once; retries only reads.

        A write whose answer is lost or unusable raises :class:`OutcomeUnknown`, so the
        operation can ask WeChat what happened; failures before the write was sent (tokens)
        do not.
        """

        async def send(token: str) -> dict[str, Any]:
            once = functools.partial(
                self._send, method, path, query={"access_token": token}, body=body
            )
            if read:
                return await self.read_with_retries(once)
            return await self.send_change(once)

        return await self._renewing(
            functools.partial(self._authorizer_token, app),
            functools.partial(self._forget_authorizer, app),
            send,
        )

    # -- reads -------------------------------------------------------------------------

    async def _versions(self, app: str) -> tuple[str | None, str | None]:
        """``(live version, trial version)`` from getversioninfo."""
        data = await self._call(app, "POST", VERSION_INFO, {}, read=True)
        return (
            _version_of(data, "release_info", "release_version"),
            _version_of(data, "exp_info", "exp_version"),
        )

    async def _latest(self, app: str) -> _Audit | None:
        """The latest review (get_latest_auditstatus); ``None`` when never submitted."""
        try:
            data = await self._call(app, "GET", GET_LATEST_AUDITSTATUS, read=True)
        except NotFound as exc:
            if exc.code in ("85058", "85012"):
                return None
            raise
        return _audit_from(data, f"GET {GET_LATEST_AUDITSTATUS}")

    @staticmethod
    async def _shows(check: Callable[[], Awaitable[bool]]) -> bool:
        """Whether WeChat shows what ``check`` asks about; False when it cannot be asked."""
        try:
            return await check()
        except PlatformError:
            return False

    def _review(self, audit: _Audit, version: str | None, live: str | None) -> ReviewStatus:
        """A :class:`ReviewStatus` in shared words for one WeChat audit."""
        state = _STATES.get(audit.status, ReviewState.UNKNOWN)
        if state is ReviewState.APPROVED and version is not None and live == version:
            state = ReviewState.RELEASED
        decided = state in (ReviewState.APPROVED, ReviewState.REJECTED, ReviewState.RELEASED)
        detail = f"audit {audit.auditid}: {_status_words(audit.status)}"
        if state is ReviewState.RELEASED:
            detail += ", live"
        if audit.user_version and version and audit.user_version != version:
            detail += f"; WeChat says this audit is of version {audit.user_version}"
        if audit.screenshot:
            detail += f"; screenshots (media ids): {audit.screenshot}"
        return ReviewStatus(
            state=state,
            version=version or audit.user_version,
            ref=str(audit.auditid),
            reason=audit.reason if audit.status in (REJECTED, DELAYED) else "",
            decided_at=datetime.fromtimestamp(self.clock(), UTC) if decided else None,
            detail=detail,
        )

    # -- operations --------------------------------------------------------------------

    async def upload(self, app: str, version: str, notes: str) -> UploadResult:
        """Commit ``version`` from the app's template; it becomes the trial version."""
        cfg = self._config(app)
        ext = dict(cfg.ext_json)
        ext.setdefault("extAppid", cfg.appid)
        body = {
            "template_id": cfg.template_id,
            "ext_json": _json(ext),
            "user_version": version,
            "user_desc": notes,
        }
        try:
            await self._call(app, "POST", COMMIT, body, read=False)
        except OutcomeUnknown as unclear:

            async def committed() -> bool:
                return (await self._versions(app))[1] == version

            await self.confirm_change(unclear, "upload", committed)
            return UploadResult(version, f"trial version updated ({CONFIRMED})")
        return UploadResult(version, f"trial version updated (template {cfg.template_id})")

    async def submit(self, app: str, version: str, notes: str) -> SubmitResult:
        """Submit the trial version for review, after checking it is ``version``."""
        cfg = self._config(app)
        _, trial = await self._versions(app)
        if trial is None:
            raise InvalidState(
                self.name,
                "",
                "",
                f"WeChat has no trial version for this mini program; upload {version} first.",
            )
        if trial != version:
            raise InvalidState(
                self.name,
                "",
                "",
                f"WeChat's trial code is version {trial}, not {version}: submitting now would "
                f"send {trial}'s code for review. Upload {version} again, then submit.",
            )
        body: dict[str, Any] = {}
        if cfg.item_list:
            body["item_list"] = cfg.item_list
        body["version_desc"] = "\n".join(
            part for part in (notes.strip(), cfg.review_notes.strip()) if part
        )
        sent = await self._submit_once(app, body)
        if isinstance(sent, SubmitResult):
            return sent
        found: list[_Audit] = []

        async def submitted() -> bool:
            latest = await self._latest(app)
            if (
                latest is not None
                and latest.status in (IN_REVIEW, DELAYED)
                and latest.user_version == version
            ):
                found.append(latest)
            return bool(found)

        await self.confirm_change(sent, "submission", submitted)
        return SubmitResult(str(found[0].auditid), f"audit {found[0].auditid} ({CONFIRMED})")

    async def _submit_once(
        self, app: str, body: Mapping[str, Any]
    ) -> SubmitResult | OutcomeUnknown:
        """submit_audit, waiting out the privacy scan (61039); the unclear outcome if any."""
        waits = iter(self.privacy_scan_waits)
        while True:
            try:
                data = await self._call(app, "POST", SUBMIT_AUDIT, body, read=False)
                break
            except InvalidState as exc:
                wait = next(waits, None) if exc.code == "61039" else None
                if wait is None:
                    raise
                log.info("WeChat's privacy scan is not finished; submitting again in %g s", wait)
                await self.sleep(wait)
            except OutcomeUnknown as unclear:
                return unclear
        try:
            auditid = _int_field(data, "auditid", f"POST {SUBMIT_AUDIT}")
        except BadResponse as exc:  # accepted, but the answer does not say which audit
            return OutcomeUnknown.after(exc)
        return SubmitResult(str(auditid), f"audit {auditid}")

    async def review_status(self, app: str, version: str, ref: str) -> ReviewStatus:
        """Where audit ``ref`` stands (get_auditstatus); approved and live means released."""
        self._config(app)
        auditid = as_int(ref)
        if auditid is None:
            raise InvalidInput(self.name, "", "", f"{ref!r} is not a WeChat audit id (a number).")
        api = f"POST {GET_AUDITSTATUS}"
        try:
            data = await self._call(app, "POST", GET_AUDITSTATUS, {"auditid": auditid}, read=True)
        except NotFound as exc:
            if exc.code != "85012":
                raise
            return ReviewStatus(
                ReviewState.UNKNOWN, version, ref, detail=f"WeChat does not know audit {ref}"
            )
        audit = _audit_from(data, api, auditid)
        live = (await self._versions(app))[0] if audit.status == APPROVED else None
        return self._review(audit, version, live)

    async def withdraw(self, app: str, version: str, ref: str) -> str:
        """Withdraw audit ``ref`` (undocodeaudit), only if it is the one under review."""
        latest = await self._latest(app)
        if latest is None:
            raise InvalidState(
                self.name,
                "",
                "",
                "nothing has been submitted for review on WeChat, so there is nothing to withdraw.",
            )
        pending = latest.status in (IN_REVIEW, DELAYED)
        if str(latest.auditid) == ref and not pending:
            raise InvalidState(
                self.name,
                "",
                "",
                f"audit {ref} of {version} is {_status_words(latest.status)}, not under review; "
                "there is nothing to withdraw.",
            )
        if str(latest.auditid) != ref:
            what = "is under review" if pending else f"is {_status_words(latest.status)}"
            raise InvalidState(
                self.name,
                "",
                "",
                f"on WeChat audit {latest.auditid} (version {latest.user_version or '?'}) {what}, "
                f"not audit {ref} of {version}; withdrawing now would not pull {version}.",
            )
        try:
            await self._call(app, "GET", UNDO_AUDIT, read=False)
        except OutcomeUnknown as unclear:

            async def withdrawn() -> bool:
                now = await self._latest(app)
                return now is not None and str(now.auditid) == ref and now.status == WITHDRAWN

            await self.confirm_change(unclear, "withdrawal", withdrawn)
            return f"withdrawn from review (audit {ref}; {CONFIRMED})"
        return f"withdrawn from review (audit {ref})"

    async def publish(self, app: str, version: str, ref: str) -> str:
        """Release the approved audit ``ref``; never repeated blindly after a lost answer."""
        latest = await self._latest(app)
        if latest is None:
            raise InvalidState(
                self.name,
                "",
                "",
                "nothing has been submitted for review on WeChat, so nothing can be published.",
            )
        if str(latest.auditid) != ref or latest.user_version not in (None, version):
            raise InvalidState(
                self.name,
                "",
                "",
                f"WeChat would publish audit {latest.auditid} (version "
                f"{latest.user_version or '?'}, {_status_words(latest.status)}), not audit {ref} "
                f"of {version}; publishing now would release different code.",
            )
        if latest.status != APPROVED:
            raise InvalidState(
                self.name,
                "",
                "",
                f"audit {ref} of {version} is {_status_words(latest.status)}; only an approved "
                "version can be published.",
            )

        async def live() -> bool:
            return (await self._versions(app))[0] == version

        try:
            await self._call(app, "POST", RELEASE, {}, read=False)
        except OutcomeUnknown as unclear:
            await self.confirm_change(unclear, "release", live)
            return f"published {version} ({CONFIRMED})"
        except InvalidState as exc:
            if exc.code == "85052" and await self._shows(live):
                return f"{version} is already live"
            raise
        return f"published {version}: it is live now"

    async def overview(self, app: str) -> Overview:
        """Live and trial versions (getversioninfo) and the latest review."""
        live, trial = await self._versions(app)
        latest = await self._latest(app)
        lines: list[str] = []
        review = None
        if latest is not None:
            review = self._review(latest, latest.user_version, live)
        try:
            quota = await self._call(app, "GET", QUERY_QUOTA, read=True)
        except PlatformError:
            quota = {}
        rest, limit = as_int(quota.get("rest")), as_int(quota.get("limit"))
        if rest is not None and limit is not None:
            lines.append(f"review quota: {rest} of {limit} submissions left this month")
        return Overview(live_version=live, trial_version=trial, review=review, lines=tuple(lines))

    # -- pushes ------------------------------------------------------------------------

    def _crypto(self) -> WeChatCrypto:
        s = self.settings
        token, key = s.component_token, s.encoding_aes_key
        if token is None or not token.get_secret_value():
            raise ConfigError(
                "reading WeChat pushes needs WECHAT_COMPONENT_TOKEN (the third-party platform's "
                "message verification token)"
            )
        if key is None or not key.get_secret_value():
            raise ConfigError(
                "reading WeChat pushes needs WECHAT_ENCODING_AES_KEY (the third-party "
                "platform's message encryption key)"
            )
        if not s.component_appid:
            raise ConfigError("reading WeChat pushes needs WECHAT_COMPONENT_APPID")
        try:
            return WeChatCrypto(token.get_secret_value(), key.get_secret_value(), s.component_appid)
        except PushRejected as exc:
            raise ConfigError(f"WECHAT_ENCODING_AES_KEY is unusable: {exc.reason}") from None

    def _app_for(self, mini_program: str) -> str | None:
        for key, cfg in self.apps.items():
            if mini_program in (cfg.appid, cfg.original_id):
                return str(key)
        return None

    async def read_push(self, request: PushRequest) -> list[PushEvent]:
        """Verify, decrypt and read a push (audit result or component_verify_ticket).

        A ``verify_ticket`` event also becomes the ticket this adapter uses for
        ``api_component_token`` (see :attr:`verify_ticket`). Audit events get ``app`` from
        the configured app whose appid (the ``$APPID$`` path segment) or original id
        (``ToUserName``) they name. Reply ``success`` to WeChat afterwards.

        Raises:
            PushRejected: bad signature, undecryptable or malformed payload, or a path
                appid that contradicts the push's ``ToUserName``.
            ConfigError: WECHAT_COMPONENT_TOKEN or WECHAT_ENCODING_AES_KEY is not set.
        """
        crypto = self._crypto()
        query = request.query
        fields = crypto.decrypt_push(
            request.body,
            msg_signature=query.get("msg_signature", ""),
            timestamp=query.get("timestamp", ""),
            nonce=query.get("nonce", ""),
        )
        appid = (request.path.get("appid") or "").strip() or None
        events = wechat_events(fields, appid=appid)
        resolved: list[PushEvent] = []
        for event in events:
            if event.kind == "verify_ticket":
                if event.ticket:
                    self._verify_ticket = SecretStr(event.ticket)
                    log.info("WeChat pushed a new component_verify_ticket")
                resolved.append(event)
                continue
            app = self._app_for(event.mini_program)
            to_user = (fields.get("ToUserName") or "").strip()
            if app is not None and appid is not None and to_user:
                original = self._config(app).original_id
                if original and original != to_user:
                    raise PushRejected(
                        f"the push for {appid} is addressed to {to_user}, not {original}"
                    )
            if app is None and to_user:
                app = self._app_for(to_user)
            resolved.append(dataclasses.replace(event, app=app))
        return resolved
