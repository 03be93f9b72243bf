"""Alipay (支付宝) mini programs through the open platform v2 gateway (``gateway.do``).

Credentials. miniship calls Alipay as a third-party app (ISV, 第三方应用) on behalf of each
merchant mini program, or as the mini program itself (self-owned, 自调用):

- ISV mode: in the Alipay open platform console (https://open.alipay.com) create a
  third-party app, add the "小程序开发管理" permission set, upload the public half of an RSA2
  key you generate, and note the Alipay public key (支付宝公钥) shown there. Set
  ``ALIPAY_APP_ID``, ``ALIPAY_PRIVATE_KEY`` (or ``ALIPAY_PRIVATE_KEY_FILE``) and
  ``ALIPAY_PUBLIC_KEY`` (or ``ALIPAY_PUBLIC_KEY_FILE``). Each merchant authorises the app;
  the ``app_auth_token`` and ``app_refresh_token`` from ``alipay.open.auth.token.app`` go into
  the app's ``[apps.<key>.alipay]`` section as ``env:``/``file:`` references.
- Self-owned mode: set ``private_key`` and ``alipay_public_key`` in the app's section; the
  mini program's own APPID (``app_id``) then signs its calls.

Uploading is a template build (``alipay.open.mini.version.upload``, an ISV API), so an app
needs ``template_id``. API docs: https://opendocs.alipay.com/mini/03l8bz (upload),
https://opendocs.alipay.com/mini/03l9bq (audit.apply), https://opendocs.alipay.com/mini/03l9bu
(detail.query), https://opendocs.alipay.com/mini/03l21p (online).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from platforms import alipay_sign
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
from platforms.push import PushEvent, PushRejected, PushRequest, alipay_events

__all__ = [
    "AlipayAppConfig",
    "AlipayPlatform",
    "AlipaySettings",
    "error_for",
    "version_desc_length",
    "version_key",
]

UPLOAD = "alipay.open.mini.version.upload"
BUILD_QUERY = "alipay.open.mini.version.build.query"
AUDIT_APPLY = "alipay.open.mini.version.audit.apply"
AUDIT_CANCEL = "alipay.open.mini.version.audit.cancel"
AUDITED_CANCEL = "alipay.open.mini.version.audited.cancel"
DETAIL_QUERY = "alipay.open.mini.version.detail.query"
LIST_QUERY = "alipay.open.mini.version.list.query"
ONLINE = "alipay.open.mini.version.online"
AUTH_GRANT = "alipay.open.auth.token.app"

SUCCESS = "10000"
LISTED_STATUSES = "INIT,AUDITING,AUDIT_REJECT,WAIT_RELEASE,BASE_AUDIT_PASS,GRAY,RELEASE"
REVIEW_STATUSES = ("AUDITING", "AUDIT_REJECT", "WAIT_RELEASE", "BASE_AUDIT_PASS", "GRAY")
VERSION_DESC_MIN, VERSION_DESC_MAX = 30, 500

SUPERSEDED = {
    "AUDIT_REJECT": "rejected",
    "WAIT_RELEASE": "approved but not published",
    "BASE_AUDIT_PASS": "approved but not published",
}
"""Decided reviews that block every submission (fact sheet §2.2) and that a new submission
supersedes: their version goes back to development (``audited.cancel``) first."""

SUBMIT_BLOCKED = frozenset(
    {"CAN_NOT_SUBMIT_WITH_AUDIT_GRAY", "CAN_NOT_SUBMIT_WITH_AUDIT", "CAN_NOT_SUBMIT_WITHOUT_INIT"}
)
"""audit.apply refusals that sending a decided version back to development may clear."""

CONFIRMED = "confirmed with Alipay after an unclear answer"

STATUS_WORDS = {
    "INIT": "in development (INIT)",
    "AUDITING": "in review (AUDITING)",
    "AUDIT_REJECT": "rejected (AUDIT_REJECT)",
    "WAIT_RELEASE": "approved and waiting to be published (WAIT_RELEASE)",
    "BASE_AUDIT_PASS": "approved for release but not for promotion (BASE_AUDIT_PASS)",
    "GRAY": "in gray release (GRAY)",
    "RELEASE": "live (RELEASE)",
    "OFFLINE": "taken offline (OFFLINE)",
    "AUDIT_OFFLINE": "forcibly taken offline by Alipay (AUDIT_OFFLINE)",
}


def _status_words(status: str) -> str:
    return STATUS_WORDS.get(status, status or "in an unknown state")


def version_desc_length(text: str) -> int:
    """Length of ``version_desc`` as Alipay counts it: Chinese (wide) characters count 2."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def version_key(version: str) -> tuple[int, ...]:
    """``"1.2.10"`` → ``(1, 2, 10)``; anything unparsable sorts first (shared with the emulator)."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return ()


def _decided_at(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return alipay_sign.parse_timestamp(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------- errors

_ErrorRule = tuple[type[PlatformError], str]

_RULES: dict[str, _ErrorRule] = {
    # 20000: the platform itself failed
    "isp.unknow-error": (
        PlatformUnavailable,
        "Alipay is busy or had an internal error; try again in a minute.",
    ),
    "aop.unknow-error": (
        PlatformUnavailable,
        "the Alipay gateway had an internal error; try again in a minute.",
    ),
    "aop.SYSTEM_ERROR": (PlatformUnavailable, "Alipay had a system error; try again in a minute."),
    "SYSTEM_ERROR": (PlatformUnavailable, "Alipay had a system error; try again in a minute."),
    # 20001: tokens
    "aop.invalid-app-auth-token": (
        AuthError,
        "Alipay does not accept the merchant's app_auth_token; have the merchant authorise the "
        "third-party app again and update app_auth_token for this app.",
    ),
    "aop.app-auth-token-time-out": (
        AuthError,
        "the merchant's app_auth_token has expired; set app_refresh_token for this app so "
        "miniship can renew it, or have the merchant authorise the app again.",
    ),
    "aop.invalid-app-auth-token-no-api": (
        AuthError,
        "the merchant did not authorise this API for the third-party app; ask them to grant "
        "the 小程序开发管理 permissions again.",
    ),
    "aop.no-product-reg-by-partner": (
        AuthError,
        "the merchant has not signed the product this API needs (or the mini program was "
        "punished or taken down); check the merchant's account in the Alipay console.",
    ),
    "aop.invalid-auth-token": (AuthError, "Alipay does not accept the user auth_token."),
    "aop.auth-token-time-out": (AuthError, "the user auth_token has expired."),
    # 40002 / 40006: the calling app and its keys
    "isv.invalid-signature": (
        AuthError,
        "Alipay could not verify the request signature; the private key does not match the "
        "public key uploaded for this app id in the Alipay console.",
    ),
    "isv.invalid-app-id": (
        AuthError,
        "Alipay does not know this app id; check ALIPAY_APP_ID (or the app's app_id in "
        "self-owned mode).",
    ),
    "isv.missing-signature-config": (
        AuthError,
        "no RSA2 public key is set up for this app in the Alipay console; upload the public half "
        "of the app key there.",
    ),
    "isv.invalid-signature-type": (
        AuthError,
        "Alipay refused the signature type; the app must use RSA2 keys.",
    ),
    "isv.self-invoke-forbidden": (
        AuthError,
        "a third-party app cannot call this API for itself; set app_auth_token for the app (the "
        "merchant's authorisation).",
    ),
    "isv.not-support-app-auth": (
        AuthError,
        "this API cannot be called by a third-party app on a merchant's behalf.",
    ),
    "isv.insufficient-isv-permissions": (
        AuthError,
        "the third-party app lacks permission for this API; add the 小程序开发管理 permission "
        "set to it in the Alipay console.",
    ),
    "isv.insufficient-user-permissions": (AuthError, "the merchant lacks permission for this API."),
    "isv.refresh-token-invalid": (
        AuthError,
        "Alipay refused app_refresh_token; have the merchant authorise the third-party app again "
        "and update app_auth_token and app_refresh_token.",
    ),
    "isv.refresh-token-time-out": (
        AuthError,
        "app_refresh_token has expired; have the merchant authorise the third-party app again.",
    ),
    "isv.invalid-timestamp": (
        InvalidInput,
        "Alipay refused the request time; check that this server's clock is right.",
    ),
    # 40004: business rules (bare upper-case sub_codes)
    "CAN_NOT_SUBMIT_WITH_AUDIT_GRAY": (
        AlreadyInReview,
        "another version of this mini program is in review, approved, rejected or in gray "
        "release; wait for it, publish it, or send it back to development before submitting.",
    ),
    "CAN_NOT_SUBMIT_WITH_AUDIT": (
        AlreadyInReview,
        "another version of this mini program is already in review; wait for the result or "
        "withdraw it first.",
    ),
    "SUBMIT_REPEAT": (AlreadyInReview, "this version was just submitted already."),
    "VERSION_HAS_EXISTED": (
        InvalidInput,
        "this version number was already uploaded; upload a higher version.",
    ),
    "LARGER_VERSION_HAS_EXISTED": (
        InvalidInput,
        "a higher version already exists; Alipay versions must always increase.",
    ),
    "INVALID_VERSION": (
        InvalidInput,
        "Alipay versions look like 1.2.3 (digits only) and must be higher than every earlier "
        "version.",
    ),
    "VERSION_EXCEEDED_LENGTH": (
        InvalidInput,
        "each part of the version must be at most 2147483647.",
    ),
    "INVALID_EXT_JSON": (InvalidInput, "the app's ext settings are not valid JSON for ext.json."),
    "VERSION_DESC_IS_BLANK": (
        InvalidInput,
        "Alipay needs review notes (version_desc) of 30–500 characters; set notes or "
        "review_notes for the app.",
    ),
    "INVALID_VERSION_DESC_LENGTH": (
        InvalidInput,
        "Alipay needs review notes of 30–500 characters (Chinese characters count 2); add detail "
        "or set review_notes for the app.",
    ),
    "REGION_TYPE_IS_BLANK": (
        InvalidInput,
        "region_type is missing; set it to CHINA, GLOBAL or LOCATION for the app.",
    ),
    "REGION_TYPE_IS_INVALID": (InvalidInput, "region_type must be CHINA, GLOBAL or LOCATION."),
    "REGION_CODE_IS_BLANK": (
        InvalidInput,
        "region_type LOCATION needs the service regions; use CHINA or GLOBAL.",
    ),
    "BUNDLE_ID_NOT_EXIST": (
        InvalidInput,
        "Alipay does not know this bundle_id; the usual one is com.alipay.alipaywallet.",
    ),
    "TEMPLATE_ID_IS_BLANK": (InvalidInput, "template_id is missing; set it for the app."),
    "APP_VERSION_IS_BLANK": (InvalidInput, "the version is missing."),
    "INVALID_TEST_ACCOUNT_LENGTH": (
        InvalidInput,
        "the test account for reviewers is too long or too short.",
    ),
    "INVALID_TEST_PWD_LENGTH": (
        InvalidInput,
        "the test password for reviewers is too long or too short.",
    ),
    "MINI_APP_PACKAGE_INFO_NOT_EXIST": (
        NotFound,
        "Alipay does not know this version; if it was just uploaded, its build may still be "
        "running — try again in a minute.",
    ),
    "MINIAPP_VERSION_NOT_EXSIT": (NotFound, "Alipay does not know this version."),
    "MINI_APP_VERSION_NOT_EXIST": (NotFound, "Alipay does not know this version."),
    "BUILD_VERSION_NOT_EXISTED": (NotFound, "Alipay has no build of this version."),
    "CODE_TEMPLATE_NOT_EXIST": (
        NotFound,
        "Alipay does not know the template; check template_id (the template mini program's APPID).",
    ),
    "CODE_TEMPLATE_DELETED": (NotFound, "the template was deleted; set another template_id."),
    "APP_INFO_NOT_EXIST": (
        NotFound,
        "Alipay does not know the mini program; check app_id, template_id and app_auth_token.",
    ),
    "CAN_NOT_SUBMIT_WITHOUT_INIT": (
        InvalidState,
        "only a version in development (INIT) can be submitted for review.",
    ),
    "AUDITING_VERSION_NOT_EXIST": (
        InvalidState,
        "no version is in review, so there is nothing to withdraw.",
    ),
    "CAN_NOT_BACK_DEV_WITHOUT_AUDIT": (
        InvalidState,
        "only an approved or rejected version can be sent back to development.",
    ),
    "CAN_NOT_ONLINE_NOT_GRAY_OR_WAITRELEASE": (
        InvalidState,
        "only an approved (WAIT_RELEASE) or gray version can be published.",
    ),
    "CAN_NOT_ONLINE_WITHOUT_AUDIT": (
        InvalidState,
        "the version has not passed review, so it cannot be published.",
    ),
    "CAN_NOT_ONLINE_WITHOUT_GRAY": (
        InvalidState,
        "the version must be in gray release before it can be published.",
    ),
    "CAN_NOT_ONLINE_NO_PROMOTE": (
        InvalidState,
        "the version has not passed the marketing review, so it cannot be published.",
    ),
    "CAN_NOT_ONLINE_WITHOUT_REGISTRATION": (
        InvalidState,
        "the mini program has no ICP filing (备案); finish the filing in the Alipay console before "
        "the first release.",
    ),
    "EXIST_LARGER_ONLINED_VERSION": (
        InvalidState,
        "a higher version is already live; upload a version above it.",
    ),
    "CODE_TEMPLATE_NOT_SAFE": (
        InvalidState,
        "the template has not passed Alipay's security scan yet; try again later.",
    ),
    "CAN_NOT_SUBMIT_WITHOUT_SCAN_PASS": (
        InvalidState,
        "the version has not passed Alipay's security scan yet; try again later.",
    ),
    "MINI_APP_VERSION_ITERATION_EXIST": (
        InvalidState,
        "another operation on this mini program is still in progress; try again later.",
    ),
    "TEMPLATE_MINIAPP_NOT_ALLOWED": (
        AuthError,
        "the app_auth_token belongs to the template mini program; it must be the merchant mini "
        "program's token.",
    ),
    "APP_TYPE_ERROR": (
        AuthError,
        "only ordinary or store mini programs can be built from a template; check that "
        "app_auth_token belongs to the merchant mini program.",
    ),
    "NO_AUTH_RELATION": (
        AuthError,
        "the merchant mini program has not authorised the third-party app that owns the template.",
    ),
    "TEMPLATE_ID_ISVAPPID_NOT_MATCH": (
        AuthError,
        "the template does not belong to the third-party app ALIPAY_APP_ID.",
    ),
    "ISV_APP_ID_IS_BLANK": (
        AuthError,
        "template builds must be called by the third-party app with the merchant's "
        "app_auth_token, not by the mini program itself.",
    ),
    "DEV_VERSION_EXCEED_MAX_COUNT": (
        QuotaExceeded,
        "the mini program has too many versions in development; delete old ones in the Alipay "
        "console.",
    ),
    "CAN_NOT_SUBMIT_WITH_PUNISH_ORDER_LIMIT": (
        QuotaExceeded,
        "Alipay limits submissions for this mini program because of a penalty; see the Alipay "
        "console.",
    ),
    "SYSTEM_LIMIT": (QuotaExceeded, "Alipay's submission limit is reached; try again tomorrow."),
}

_GATEWAY_CODES: dict[str, _ErrorRule] = {
    "20000": (PlatformUnavailable, "Alipay is busy; try again in a minute."),
    "20001": (AuthError, "Alipay refused the authorisation token."),
    "40001": (
        InvalidInput,
        "Alipay says a required gateway parameter is missing (a miniship bug; please report it).",
    ),
    "40002": (InvalidInput, "Alipay refused a gateway parameter."),
    "40006": (
        AuthError,
        "the app lacks the permission or product this API needs; check it in the Alipay console.",
    ),
}


def error_for(code: str, sub_code: str, sub_msg: str, msg: str = "") -> PlatformError:
    """The typed error for an Alipay failure answer (``code`` != 10000).

    ``code`` is the gateway code (``"40004"``), ``sub_code``/``sub_msg`` the detail. The
    error's ``code`` is the sub_code (or the gateway code when there is none).
    """
    rule = _RULES.get(sub_code)
    if rule is None and sub_code.startswith("isv.missing-"):
        rule = (
            InvalidInput,
            "Alipay says a required gateway parameter is missing (a miniship bug; please report "
            "it).",
        )
    if rule is None and code in _GATEWAY_CODES and code != "40004":
        rule = _GATEWAY_CODES[code]
    if rule is None and code == "40004":
        if sub_code.endswith("_IS_BLANK") or sub_code.startswith("INVALID_"):
            rule = (InvalidInput, "Alipay refused a field of the request.")
        elif re.search(r"NOT_EXI?ST|NOT_EXSIT|NOT_EXISTED", sub_code):
            rule = (NotFound, "Alipay does not know what the request names.")
        elif sub_code.startswith("CAN_NOT_"):
            rule = (InvalidState, "Alipay does not allow this step in the version's current state.")
    cls, explanation = rule or (PlatformError, sub_msg or msg or f"Alipay failed with code {code}")
    return cls("alipay", sub_code or code, sub_msg or msg, explanation)


# --------------------------------------------------------------------------- configuration


class AlipaySettings(BaseSettings):
    """Adapter settings, from ``ALIPAY_*`` environment variables (or ``.env``)."""

    model_config = SettingsConfigDict(
        env_prefix="ALIPAY_", env_file=".env", extra="ignore", populate_by_name=True
    )

    gateway: str = "https://openapi.alipay.com/gateway.do"
    app_id: str = ""
    private_key: SecretStr | None = None
    private_key_file: Path | None = None
    # ALIPAY_PUBLIC_KEY reads better than the field's own ALIPAY_ALIPAY_PUBLIC_KEY; both work
    alipay_public_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(
            "ALIPAY_PUBLIC_KEY", "ALIPAY_ALIPAY_PUBLIC_KEY", "alipay_public_key"
        ),
    )
    alipay_public_key_file: Path | None = Field(
        None,
        validation_alias=AliasChoices(
            "ALIPAY_PUBLIC_KEY_FILE", "ALIPAY_ALIPAY_PUBLIC_KEY_FILE", "alipay_public_key_file"
        ),
    )
    max_retries: int = Field(default=2, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=0.5, ge=0.0)


class AlipayAppConfig(BaseModel):
    """One app's ``[apps.<key>.alipay]`` section.

    Example::

        [apps.shop.alipay]
        app_id = "2021004100000001"
        template_id = "2021004100009999"
        app_auth_token = "env:SHOP_ALIPAY_APP_AUTH_TOKEN"
        app_refresh_token = "env:SHOP_ALIPAY_APP_REFRESH_TOKEN"
        review_notes = "测试账号见下；主要改动：……"
    """

    model_config = ConfigDict(extra="forbid")

    app_id: str = Field(pattern=r"^\d+$", description="the merchant mini program's APPID")
    template_id: str | None = None
    template_version: str | None = None
    ext: dict[str, Any] = Field(default_factory=dict)
    bundle_id: str = "com.alipay.alipaywallet"
    app_auth_token: SecretRef | None = None
    app_refresh_token: SecretRef | None = None
    private_key: SecretRef | None = None
    alipay_public_key: SecretRef | None = None
    region_type: str = "CHINA"
    review_notes: str = ""
    test_account: str | None = None
    test_password: SecretRef | None = None


@dataclass
class _Caller:
    """Who signs an app's calls: the third-party app (with a token) or the mini program."""

    app_id: str
    private_key: rsa.RSAPrivateKey
    alipay_public_key: rsa.RSAPublicKey
    token: str | None = None
    refresh_token: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _secret(value: SecretStr | None, path: Path | None, what: str) -> str | None:
    """The text of a key given inline or as a file; ``ConfigError`` if both or unreadable."""
    if value is not None and path is not None:
        raise ConfigError(f"set {what} or {what}_FILE, not both")
    if path is not None:
        try:
            return path.expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {what}_FILE {path}: {exc.strerror}") from None
    return value.get_secret_value() if value is not None else None


def _private_key(text: str, what: str) -> rsa.RSAPrivateKey:
    try:
        return alipay_sign.load_private_key(text)
    except ValueError as exc:
        raise ConfigError(
            f"{what} is not a usable RSA private key: {exc}. Give the app private key as PEM "
            "or as the bare base64 the Alipay key tool shows (PKCS#1 or PKCS#8)."
        ) from None


def _public_key(text: str, what: str, own: rsa.RSAPrivateKey) -> rsa.RSAPublicKey:
    try:
        key = alipay_sign.load_public_key(text)
    except ValueError as exc:
        raise ConfigError(
            f"{what} is not a usable RSA public key: {exc}. Give the Alipay public key "
            "(支付宝公钥) as PEM or bare base64."
        ) from None
    if key.public_numbers() == own.public_key().public_numbers():
        raise ConfigError(
            f"{what} is the public half of your own app key; it must be the Alipay public key "
            "(支付宝公钥) shown next to it in the Alipay console."
        )
    return key


# --------------------------------------------------------------------------- the adapter


class AlipayPlatform(Platform):
    """Alipay mini programs: template upload, review, publish via the v2 gateway."""

    name = "alipay"
    display_name = "Alipay"
    docs_url = "https://opendocs.alipay.com/isv/03kqzl"

    Settings = AlipaySettings
    AppConfig = AlipayAppConfig
    single_trial_version = False  # development versions coexist; each can be submitted

    BUILD_POLL_DELAYS: ClassVar[tuple[float, ...]] = (0.3, 0.5, 1.0, 2.0, 3.0) + (5.0,) * 24
    """Waits between ``build.query`` polls after an upload (about two minutes in all)."""

    def __init__(
        self,
        settings: Any,
        apps: Mapping[str, Any],
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(settings, AlipaySettings):
            raise ConfigError("AlipayPlatform needs AlipayPlatform.Settings")
        problem = url_problem(settings.gateway)
        if problem is not None:
            raise ConfigError(
                f"ALIPAY_GATEWAY must be an http(s) URL such as "
                f"https://openapi.alipay.com/gateway.do, not {settings.gateway!r} ({problem})"
            )
        try:
            configs = {
                key: cfg
                if isinstance(cfg, AlipayAppConfig)
                else AlipayAppConfig.model_validate(cfg)
                for key, cfg in apps.items()
            }
        except ValidationError as exc:
            raise ConfigError(f"an [apps.*.alipay] section is invalid: {exc}") from None
        callers = {key: self._caller_for(key, cfg, settings) for key, cfg in configs.items()}
        super().__init__(settings, configs, client=client, clock=clock)
        self.settings: AlipaySettings = settings
        self._callers = callers
        self.build_poll_delays = self.BUILD_POLL_DELAYS

    @classmethod
    def is_configured(cls, settings: Any) -> bool:
        return bool(
            getattr(settings, "app_id", "")
            and (settings.private_key or settings.private_key_file)
            and (settings.alipay_public_key or settings.alipay_public_key_file)
        )

    @classmethod
    def describe_app(cls, config: Any) -> str:
        """``mini program 2021… from template 2021… (via the third-party app)``."""
        cfg = (
            config
            if isinstance(config, AlipayAppConfig)
            else AlipayAppConfig.model_validate(config)
        )
        text = f"mini program {cfg.app_id}"
        if cfg.template_id:
            version = f" {cfg.template_version}" if cfg.template_version else ""
            text += f" from template {cfg.template_id}{version}"
        if cfg.private_key is not None:
            return text + " (self-owned keys)"
        return text + " (via the third-party app)"

    @staticmethod
    def _caller_for(key: str, cfg: AlipayAppConfig, settings: AlipaySettings) -> _Caller:
        """Load the keys that will sign this app's calls (ConfigError when unusable)."""
        where = f"[apps.{key}.alipay]"
        if (cfg.private_key is None) != (cfg.alipay_public_key is None):
            raise ConfigError(
                f"{where}: self-owned mode needs both private_key and alipay_public_key"
            )
        if cfg.private_key is not None and cfg.alipay_public_key is not None:
            own = _private_key(cfg.private_key.get_secret_value(), f"{where} private_key")
            return _Caller(
                app_id=cfg.app_id,
                private_key=own,
                alipay_public_key=_public_key(
                    cfg.alipay_public_key.get_secret_value(), f"{where} alipay_public_key", own
                ),
            )
        private = _secret(settings.private_key, settings.private_key_file, "ALIPAY_PRIVATE_KEY")
        public = _secret(
            settings.alipay_public_key, settings.alipay_public_key_file, "ALIPAY_PUBLIC_KEY"
        )
        if not (settings.app_id and private and public):
            raise ConfigError(
                f"{where}: no keys to call Alipay with; set ALIPAY_APP_ID, ALIPAY_PRIVATE_KEY and "
                "ALIPAY_PUBLIC_KEY (third-party app), or private_key and alipay_public_key in "
                f"{where} (self-owned mini program)"
            )
        if cfg.app_auth_token is None:
            raise ConfigError(
                f"{where}: app_auth_token is needed to call for mini program {cfg.app_id} "
                f"through the third-party app {settings.app_id}"
            )
        isv_key = _private_key(private, "ALIPAY_PRIVATE_KEY")
        return _Caller(
            app_id=settings.app_id,
            private_key=isv_key,
            alipay_public_key=_public_key(public, "ALIPAY_PUBLIC_KEY", isv_key),
            token=cfg.app_auth_token.get_secret_value(),
            refresh_token=(
                cfg.app_refresh_token.get_secret_value() if cfg.app_refresh_token else None
            ),
        )

    def _config(self, app: str) -> AlipayAppConfig:
        cfg: AlipayAppConfig = self.app(app)
        return cfg

    # -- the wire ----------------------------------------------------------------------

    async def _send(
        self,
        caller: _Caller,
        method: str,
        params: Mapping[str, str],
        *,
        multipart: bool = False,
        token: str | None = None,
        shown: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One signed gateway request; returns the verified response node (code 10000).

        ``shown`` is what the event log may see of ``params`` (defaults to ``params``).
        """
        common = {
            "app_id": caller.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": alipay_sign.format_timestamp(self.clock()),
            "version": "1.0",
        }
        if token:
            common["app_auth_token"] = token
        if multipart:
            body = {k: v for k, v in params.items() if v}
        else:
            biz = json.dumps(dict(params), ensure_ascii=False, separators=(",", ":"))
            body = {"biz_content": biz}
        common["sign"] = alipay_sign.sign(
            alipay_sign.sign_content({**common, **body}), caller.private_key
        )
        request_log = {"app_id": caller.app_id, "method": method, **(shown or params)}

        def log(answer: Mapping[str, Any] | None = None, error: str = "") -> None:
            self.record_exchange(method, request_log, answer, error)

        try:
            if multipart:
                files = {k: (None, v, "text/plain; charset=utf-8") for k, v in body.items()}
                response = await self.client.post(self.settings.gateway, params=common, files=files)
            else:
                response = await self.client.post(self.settings.gateway, params=common, data=body)
        except httpx.TimeoutException:
            log(error="timed out")
            raise PlatformUnavailable(
                self.name, "", "", f"Alipay did not answer {method} in time; try again later."
            ) from None
        except httpx.InvalidURL:
            # the exception text may carry the URL with its token: only its type is shown
            log(error="InvalidURL")
            raise ConfigError(
                f"ALIPAY_GATEWAY {self.settings.gateway!r} does not make a valid URL for "
                f"{method}; set it to an http(s) URL such as "
                "https://openapi.alipay.com/gateway.do"
            ) from None
        except httpx.HTTPError as exc:
            # the exception text may carry the URL with its token: only its type is shown
            log(error=type(exc).__name__)
            raise PlatformUnavailable(
                self.name,
                "",
                "",
                f"could not reach Alipay ({type(exc).__name__}); try again later.",
            ) from None

        if response.status_code != 200:
            log(error=f"HTTP {response.status_code}")
            raise PlatformUnavailable(
                self.name,
                f"HTTP {response.status_code}",
                "",
                f"the Alipay gateway answered HTTP {response.status_code}; try again later.",
            )
        try:
            node = alipay_sign.read_response(response.content.decode("utf-8"), method)
        except (UnicodeDecodeError, ValueError):
            log(error="the answer is not JSON")
            raise PlatformUnavailable(
                self.name, "", "", "the Alipay gateway answered with something that is not JSON."
            ) from None
        except LookupError as exc:
            log(error=str(exc))
            raise BadResponse(
                self.name, "", "", f"Alipay's answer to {method} is malformed: {exc}."
            ) from None

        # sub_msg may echo the signed request, tokens and all
        data: dict[str, Any] = scrub_answer(node.data)
        code = str(data.get("code", ""))
        if node.sign is not None:
            if not alipay_sign.verify_node(node, caller.alipay_public_key):
                log(error="response signature did not verify")
                raise BadResponse(
                    self.name,
                    "",
                    "",
                    f"the signature of Alipay's answer to {method} did not verify; check "
                    "ALIPAY_PUBLIC_KEY (the Alipay public key, not your app's), or someone "
                    "altered the answer on the way.",
                )
        elif code == SUCCESS:
            log(error="successful answer without a signature")
            raise BadResponse(
                self.name,
                "",
                "",
                f"Alipay's successful answer to {method} carries no signature, so it cannot be "
                "trusted.",
            )
        log(data)
        if code != SUCCESS:
            raise error_for(
                code,
                str(data.get("sub_code", "")),
                str(data.get("sub_msg", "")),
                str(data.get("msg", "")),
            )
        return data

    async def _call(
        self,
        app: str,
        method: str,
        params: Mapping[str, str],
        *,
        read: bool = False,
        retries: int | None = None,
        multipart: bool = False,
        shown: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call ``method`` for ``app``: renews an expired token once; retries only reads.

        A change (``read=False``) whose answer is lost or unusable raises
        :class:`OutcomeUnknown`, so the operation can ask Alipay what happened; a failed
        token renewal (nothing was changed) does not.
        """
        self.app(app)  # ConfigError for an app without an [apps.<key>.alipay] section
        caller = self._callers[app]

        async def attempt(token: str | None) -> dict[str, Any]:
            once = functools.partial(
                self._send, caller, method, params, multipart=multipart, token=token, shown=shown
            )
            if read:
                return await self.read_with_retries(once, retries=retries)
            return await self.send_change(once)

        token = caller.token
        try:
            return await attempt(token)
        except AuthError as exc:
            if exc.code != "aop.app-auth-token-time-out" or not caller.refresh_token:
                raise
        await self._renew(caller, token)
        return await attempt(caller.token)

    async def _renew(self, caller: _Caller, expired: str | None) -> None:
        """Trade app_refresh_token for a new app_auth_token (kept in memory)."""
        async with caller.lock:
            if caller.token != expired or not caller.refresh_token:
                return  # another call renewed it meanwhile
            params = {"grant_type": "refresh_token", "refresh_token": caller.refresh_token}
            answer = await self._send(caller, AUTH_GRANT, params)
            tokens = answer.get("tokens")
            if not answer.get("app_auth_token") and isinstance(tokens, list) and tokens:
                answer = tokens[0] if isinstance(tokens[0], dict) else answer
            new_token = answer.get("app_auth_token")
            if not isinstance(new_token, str) or not new_token:
                raise BadResponse(
                    self.name,
                    "",
                    "",
                    "Alipay renewed the token but the answer has no app_auth_token.",
                )
            caller.token = new_token
            refresh = answer.get("app_refresh_token")
            if isinstance(refresh, str) and refresh:
                caller.refresh_token = refresh

    async def _detail(
        self, app: str, version: str, *, retries: int | None = None
    ) -> dict[str, Any]:
        cfg = self._config(app)
        return await self._call(
            app,
            DETAIL_QUERY,
            {"app_version": version, "bundle_id": cfg.bundle_id},
            read=True,
            retries=retries,
        )

    async def _confirm_status(
        self, app: str, version: str, unclear: OutcomeUnknown, what: str, status: str
    ) -> None:
        """After an unclear change (``what``): returns when ``version`` now has ``status``."""

        async def shows() -> bool:
            detail = await self._detail(app, version, retries=0)
            return str(detail.get("status", "")) == status

        await self.confirm_change(unclear, what, shows)

    async def _back_to_development(self, app: str, version: str) -> None:
        """Send a rejected or approved ``version`` back to development (``audited.cancel``)."""
        cfg = self._config(app)
        params = {"app_version": version, "bundle_id": cfg.bundle_id}
        try:
            await self._call(app, AUDITED_CANCEL, params)
        except OutcomeUnknown as unclear:
            what = f"return of {version} to development"
            try:
                await self._confirm_status(app, version, unclear, what, "INIT")
            except OutcomeUnknown as still:  # the submission itself was never sent
                raise PlatformUnavailable(
                    still.platform,
                    still.code,
                    still.platform_message,
                    f"{still.explanation} Nothing was submitted for review.",
                ) from None

    async def _clear_the_way(self, app: str, version: str, refused: PlatformError) -> list[str]:
        """Send back to development the decided versions that keep ``version`` from review.

        Alipay refuses every submission while a version is rejected or approved but not
        published (fact sheet §2.2), and submits only versions in development. A new
        submission supersedes such a decision, as on WeChat: that version (this one or
        another) goes back to development. Raises ``refused`` when a version in review or
        gray release blocks, when ``version`` cannot be submitted anyway, or when nothing
        can be cleared. Returns a line per version sent back.
        """
        cfg = self._config(app)
        answer = await self._call(
            app,
            LIST_QUERY,
            {"bundle_id": cfg.bundle_id, "version_status": ",".join(REVIEW_STATUSES)},
            read=True,
        )
        statuses = {
            str(info.get("app_version", "")): str(info.get("version_status", ""))
            for info in answer.get("app_version_infos") or []
            if isinstance(info, dict)
        }
        blocking = {v: s for v, s in statuses.items() if s in SUPERSEDED}
        if not blocking or any(s not in SUPERSEDED for s in statuses.values()):
            raise refused  # nothing to clear, or a review or gray release is running
        if version not in statuses:  # then it must be in development to be submitted
            own = str((await self._detail(app, version)).get("status", ""))
            if own != "INIT":
                raise refused  # live, offline …: clearing the way would not help
        lines = []
        for other in sorted(blocking, key=version_key):
            await self._back_to_development(app, other)
            lines.append(f"{other} ({SUPERSEDED[blocking[other]]}) went back to development")
        return lines

    async def _apply(
        self, app: str, version: str, fields: Mapping[str, str], shown: Mapping[str, str]
    ) -> str:
        """``audit.apply`` once; the line for people (confirmed when the answer was unclear)."""
        try:
            answer = await self._call(app, AUDIT_APPLY, fields, multipart=True, shown=shown)
        except OutcomeUnknown as unclear:
            await self._confirm_status(app, version, unclear, "submission", "AUDITING")
            return f"submitted for review ({CONFIRMED})"
        detail = "submitted for review"
        if answer.get("speed_up") == "true":
            detail += " (expedited)"
        return detail

    # -- operations --------------------------------------------------------------------

    async def upload(self, app: str, version: str, notes: str) -> UploadResult:
        """Build ``version`` from the app's template, then wait (bounded) for the build."""
        cfg = self._config(app)
        if not cfg.template_id:
            raise ConfigError(
                f"[apps.{app}.alipay] has no template_id: Alipay uploads here are template builds "
                "(alipay.open.mini.version.upload); set template_id to the template mini program's "
                "APPID. Uploading a self-owned mini program's code (minidev CLI) is not "
                "supported yet."
            )
        ext = dict(cfg.ext)
        ext.setdefault("extEnable", True)
        params = {
            "template_id": cfg.template_id,
            "app_version": version,
            "ext": json.dumps(ext, ensure_ascii=False, separators=(",", ":")),
            "bundle_id": cfg.bundle_id,
        }
        if cfg.template_version:
            params["template_version"] = cfg.template_version
        query = {"app_version": version, "bundle_id": cfg.bundle_id}
        try:
            state = await self._call(app, UPLOAD, params)
        except OutcomeUnknown as unclear:
            found: list[dict[str, Any]] = []

            async def uploaded() -> bool:
                try:
                    found.append(await self._call(app, BUILD_QUERY, query, read=True, retries=0))
                except NotFound:
                    return False
                return True

            await self.confirm_change(unclear, "upload", uploaded)
            state = found[0]
        polls = 0
        while True:
            failed = {state.get("build_status"), state.get("create_status")} & {"3", "5"}
            if failed:
                what = "timed out" if "5" in failed else "failed"
                raise PlatformError(
                    self.name,
                    f"build_status {state.get('build_status')}",
                    "",
                    f"Alipay's build of version {version} from template {cfg.template_id} {what}; "
                    "check the template version and the app's ext settings, then upload a higher "
                    "version.",
                )
            created = state.get("version_created") == "true" or state.get("create_status") == "6"
            if created or state.get("need_rotation") != "true":
                return UploadResult(version, "build finished")
            if polls >= len(self.build_poll_delays):
                return UploadResult(
                    version,
                    f"uploaded; Alipay is still building it after {polls} checks — "
                    "wait a minute before submitting",
                )
            await self.sleep(self.build_poll_delays[polls])
            polls += 1
            state = await self._call(app, BUILD_QUERY, query, read=True)

    async def submit(self, app: str, version: str, notes: str) -> SubmitResult:
        """Submit ``version`` for review (multipart ``audit.apply``); ref is the version.

        A rejected or approved-but-unpublished version (this one or another) blocks every
        submission on Alipay; the new submission supersedes it, so it is sent back to
        development first and the result's detail says so. A version in review or gray
        release still blocks (AlreadyInReview).
        """
        cfg = self._config(app)
        desc = "\n".join(part for part in (notes.strip(), cfg.review_notes.strip()) if part)
        length = version_desc_length(desc)
        if not VERSION_DESC_MIN <= length <= VERSION_DESC_MAX:
            advice = (
                "add detail or set review_notes for the app"
                if length < VERSION_DESC_MIN
                else "shorten the notes or review_notes"
            )
            raise InvalidInput(
                self.name,
                "",
                "",
                f"Alipay needs review notes of {VERSION_DESC_MIN}–{VERSION_DESC_MAX} characters "
                f"(Chinese characters count 2); these have {length} — {advice}.",
            )
        fields = {
            "app_version": version,
            "version_desc": desc,
            "region_type": cfg.region_type,
            "bundle_id": cfg.bundle_id,
        }
        if cfg.test_account:
            fields["test_accout"] = cfg.test_account  # sic: the API's spelling
        if cfg.test_password is not None:
            fields["test_password"] = cfg.test_password.get_secret_value()
        shown = {k: ("***" if k == "test_password" else v) for k, v in fields.items()}
        try:
            return SubmitResult(version, await self._apply(app, version, fields, shown))
        except (AlreadyInReview, InvalidState) as refused:
            if refused.code not in SUBMIT_BLOCKED:
                raise
            cleared = await self._clear_the_way(app, version, refused)
        detail = await self._apply(app, version, fields, shown)
        return SubmitResult(version, f"{detail}; {', '.join(cleared)} first")

    async def review_status(self, app: str, version: str, ref: str) -> ReviewStatus:
        """Map ``detail.query``'s status of ``version`` to a :class:`ReviewStatus`."""
        try:
            detail = await self._detail(app, version)
        except NotFound:
            return ReviewStatus(
                ReviewState.UNKNOWN, version, ref, detail="Alipay does not know this version"
            )
        status = str(detail.get("status", ""))
        decided = _decided_at(detail.get("gmt_audit_end"))
        words = _status_words(status)
        if status == "INIT":
            state = ReviewState.WITHDRAWN if ref else ReviewState.NOT_SUBMITTED
            return ReviewStatus(state, version, ref, detail=words)
        if status == "AUDITING":
            return ReviewStatus(ReviewState.IN_REVIEW, version, ref, detail=words)
        if status == "AUDIT_REJECT":
            reason = str(detail.get("reject_reason") or "")
            return ReviewStatus(ReviewState.REJECTED, version, ref, reason, decided, words)
        if status in ("WAIT_RELEASE", "BASE_AUDIT_PASS", "GRAY"):
            if status == "GRAY" and detail.get("gray_strategy"):
                words = f"{words}, {detail['gray_strategy']} of users"
            return ReviewStatus(
                ReviewState.APPROVED, version, ref, decided_at=decided, detail=words
            )
        if status == "RELEASE":
            return ReviewStatus(
                ReviewState.RELEASED, version, ref, decided_at=decided, detail=words
            )
        return ReviewStatus(ReviewState.UNKNOWN, version, ref, decided_at=decided, detail=words)

    async def withdraw(self, app: str, version: str, ref: str) -> str:
        """Cancel the review of ``version`` (``audit.cancel``); it goes back to development."""
        cfg = self._config(app)
        status = str((await self._detail(app, version)).get("status", ""))
        if status != "AUDITING":
            raise InvalidState(
                self.name,
                status,
                "",
                f"version {version} is {_status_words(status)}, not in review, "
                "so there is nothing to withdraw.",
            )
        params = {"app_version": version, "bundle_id": cfg.bundle_id}
        try:
            await self._call(app, AUDIT_CANCEL, params)
        except OutcomeUnknown as unclear:
            await self._confirm_status(app, version, unclear, "withdrawal", "INIT")
            return f"withdrew {version} from review ({CONFIRMED})"
        return f"withdrew {version} from review; it is back in development"

    async def publish(self, app: str, version: str, ref: str) -> str:
        """Put the approved ``version`` online; a lost answer is checked, never repeated."""
        cfg = self._config(app)
        detail = await self._detail(app, version)
        status = str(detail.get("status", ""))
        publishable = status in ("WAIT_RELEASE", "GRAY") or (
            status == "BASE_AUDIT_PASS" and detail.get("can_release") != "false"
        )
        if not publishable:
            raise InvalidState(
                self.name,
                status,
                "",
                f"version {version} is {_status_words(status)}; only an approved "
                "version can be published.",
            )
        try:
            await self._call(app, ONLINE, {"app_version": version, "bundle_id": cfg.bundle_id})
        except OutcomeUnknown as unclear:
            await self._confirm_status(app, version, unclear, "release", "RELEASE")
            return f"published {version} ({CONFIRMED})"
        return f"published {version}; it is live"

    async def overview(self, app: str) -> Overview:
        """Live, newest development and latest reviewed versions, from ``list.query``."""
        cfg = self._config(app)
        answer = await self._call(
            app,
            LIST_QUERY,
            {"bundle_id": cfg.bundle_id, "version_status": LISTED_STATUSES},
            read=True,
        )
        infos = [i for i in answer.get("app_version_infos") or [] if isinstance(i, dict)]
        infos.sort(key=lambda i: version_key(str(i.get("app_version", ""))), reverse=True)

        def newest(*statuses: str) -> str | None:
            for info in infos:
                if info.get("version_status") in statuses:
                    return str(info.get("app_version"))
            return None

        live, trial, reviewed = newest("RELEASE"), newest("INIT"), newest(*REVIEW_STATUSES)
        review = await self.review_status(app, reviewed, reviewed) if reviewed else None
        lines = tuple(
            f"{info.get('app_version')}: {_status_words(str(info.get('version_status')))}"
            for info in infos[:5]
        )
        return Overview(live_version=live, trial_version=trial, review=review, lines=lines)

    # -- pushes ------------------------------------------------------------------------

    def _notify_key(self, app_id: str) -> rsa.RSAPublicKey:
        """The Alipay public key a push to ``app_id`` is verified with.

        A self-owned mini program (its own keys in miniship.toml) receives pushes signed for
        it; everything else arrives at the third-party app, verified with ALIPAY_PUBLIC_KEY.
        """
        for caller in self._callers.values():
            if caller.token is None and caller.app_id == app_id:
                return caller.alipay_public_key
        for caller in self._callers.values():
            if caller.token is not None:
                return caller.alipay_public_key
        text = _secret(
            self.settings.alipay_public_key,
            self.settings.alipay_public_key_file,
            "ALIPAY_PUBLIC_KEY",
        )
        if not text:
            raise ConfigError(
                "reading Alipay pushes needs ALIPAY_PUBLIC_KEY (the Alipay public key of the "
                "third-party app)"
            )
        try:
            return alipay_sign.load_public_key(text)
        except ValueError as exc:
            raise ConfigError(f"ALIPAY_PUBLIC_KEY is not a usable RSA public key: {exc}") from None

    @staticmethod
    def _push_params(request: PushRequest) -> dict[str, str]:
        """The query and urlencoded form fields of a push as one flat dict."""
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise PushRejected("the push body is not UTF-8") from None
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text.strip()))
        except ValueError:
            raise PushRejected("the push body is not a urlencoded form") from None
        params: dict[str, str] = {}
        for key, value in [*request.query.items(), *pairs]:
            if key in params and params[key] != value:
                raise PushRejected(f"the push gives {key} twice")
            params[key] = value
        return params

    async def read_push(self, request: PushRequest) -> list[PushEvent]:
        """Verify and read an Alipay message-service push (audit passed / rejected).

        The signature is checked with the Alipay public key of the receiving app (``app_id``
        of the push): a self-owned mini program's own, else the third-party app's. Events
        get ``app`` from the configured app whose ``app_id`` is the push's ``mini_app_id``.
        Reply ``success`` to Alipay afterwards.

        Raises:
            PushRejected: bad or missing signature, or a malformed body.
        """
        params = self._push_params(request)
        if not params.get("sign"):
            raise PushRejected("the push carries no sign")
        key = self._notify_key(params.get("app_id", ""))
        if not alipay_sign.verify_notify(params, key):
            raise PushRejected("bad sign: the push was not signed by Alipay")
        events = alipay_events(params)
        return [
            dataclasses.replace(
                event,
                app=next(
                    (k for k, cfg in self.apps.items() if cfg.app_id == event.mini_program), None
                ),
            )
            for event in events
        ]
