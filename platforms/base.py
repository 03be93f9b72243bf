"""The one interface every platform adapter implements, and the value objects it returns.

An adapter speaks one platform's real HTTP API. It is built from its own settings class
(environment variables with the platform's prefix, e.g. ``WECHAT_``) and the per-app
sections of miniship.toml (``[apps.<key>.<platform>]``), each parsed by the adapter's own
``AppConfig`` model. Everything above ``platforms/`` talks to adapters only through
:class:`Platform` and the dataclasses below, never through vendor JSON.

Every HTTP exchange an adapter makes is reported to :func:`record` with secrets removed,
so the use case that caused it can keep the platform's answer in the event log.

What the adapters share lives on :class:`Platform` too: retrying reads with backoff
(:meth:`Platform.read_with_retries`, waiting through the injectable ``Platform.sleep``),
sending a change exactly once (:meth:`Platform.send_change`) and asking the platform
afterwards when its answer was lost (:meth:`Platform.confirm_change`), and recording
exchanges (:meth:`Platform.record_exchange`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Protocol, TypeVar

import httpx
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, BeforeValidator, SecretStr, ValidationError
from pydantic_settings import BaseSettings

from platforms.errors import (
    BadResponse,
    ConfigError,
    OutcomeUnknown,
    PlatformError,
    PlatformUnavailable,
    Unsupported,
)
from platforms.push import PushEvent, PushRequest
from platforms.transport import Sender

__all__ = [
    "BEIJING",
    "MESSAGE_KEYS",
    "REVIEW_IMAGES_MAX",
    "SECRET_KEYS",
    "Authorization",
    "CredentialVault",
    "ErrorReport",
    "Exchange",
    "GrayPlan",
    "JsError",
    "Overview",
    "Platform",
    "Quota",
    "ReviewImage",
    "ReviewState",
    "ReviewStatus",
    "SecretRef",
    "SubmitResult",
    "Template",
    "TrialCode",
    "UploadResult",
    "VersionInfo",
    "record",
    "recording",
    "redact",
    "resolve_secret",
    "scrub_answer",
    "scrub_message",
    "url_problem",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
"""China Standard Time (UTC+8): Alipay's gateway clock, and where WeChat's daily and
monthly limits reset."""


class ReviewState(StrEnum):
    """Where a version stands on the platform, in words shared by all platforms."""

    NOT_SUBMITTED = "not_submitted"  # uploaded (trial/development version), never submitted
    IN_REVIEW = "in_review"
    DELAYED = "delayed"  # review postponed by the platform; still pending
    APPROVED = "approved"  # passed review, waiting to be published
    GRAY = "gray"  # approved and live for a share of users (staged release)
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"  # pulled out of review (by us or in the platform's console)
    RELEASED = "released"  # live
    UNKNOWN = "unknown"  # the platform does not know this version (any more)


@dataclass(frozen=True)
class UploadResult:
    """A version was uploaded (committed) to the platform."""

    version: str
    detail: str = ""  # one line for people: "trial version updated", "build finished"


@dataclass(frozen=True)
class SubmitResult:
    """A version was submitted for review.

    ``ref`` is the platform's id for this review (WeChat ``auditid``); platforms without
    one use the version string. It is stored and handed back to later calls.
    """

    ref: str
    detail: str = ""


@dataclass(frozen=True)
class ReviewStatus:
    state: ReviewState
    version: str | None = None
    ref: str = ""
    reason: str = ""  # rejection or delay reason, as the platform wrote it
    decided_at: datetime | None = None  # aware UTC, when the platform says it decided
    detail: str = ""
    screenshots: tuple[str, ...] = ()
    """What the platform gave to show the decision (a rejection's screenshots), not fetched:
    WeChat media ids, Alipay image URLs. :meth:`Platform.review_images` gets the images."""


REVIEW_IMAGES_MAX = 5
"""At most this many images come back from :meth:`Platform.review_images`."""


@dataclass(frozen=True)
class ReviewImage:
    """One image the platform gives with a review decision: a screenshot of what a
    rejection is about (WeChat's audit screenshots, Alipay's audit images).

    ``image`` holds the bytes when the adapter fetched them (WeChat's media). It is empty
    when the platform gives a link only (Alipay): adapters do not fetch links to anywhere
    on the internet, so whoever shows the image posts ``url`` instead. The names follow
    :class:`TrialCode` (``image``, ``mime``, ``url``, ``extension``).
    """

    image: bytes = b""
    mime: str = ""  # "image/png", "image/jpeg"; "" when not fetched
    url: str = ""  # where the platform serves it (http or https), when it gave a link
    title: str = ""  # for people: "screenshot 1 of 2", or the reviewer's note it goes with
    source: str = ""  # the platform's handle for it: a WeChat media id, or the URL

    @property
    def extension(self) -> str:
        """The file extension for the image: from ``mime``, else from the URL's path."""
        if self.mime:
            return _EXTENSIONS.get(self.mime, "img")
        path = self.url.split("#", 1)[0].split("?", 1)[0]
        name = path.rsplit("/", 1)[-1].lower()
        suffix = name.rsplit(".", 1)[-1] if "." in name else ""
        return _SUFFIXES.get(suffix, "img")


_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif"}
_SUFFIXES = {"jpg": "jpg", "jpeg": "jpg", "png": "png", "gif": "gif"}


@dataclass(frozen=True)
class GrayPlan:
    """A staged (gray) release: ``percent`` of users get ``version``; the rest keep the old one."""

    percent: int | None  # 1–100 (WeChat), 10/30/50 (Alipay); None: the platform does not say
    version: str | None = None
    state: str = "running"  # running, paused, finished — in the platform's terms, translated
    since: datetime | None = None  # aware UTC


@dataclass(frozen=True)
class JsError:
    """One aggregated JavaScript error of a version (a message and its stack) in a window."""

    message: str
    stack: str
    users: int  # the platform's UV: users who hit it
    count: int  # the platform's PV: times it happened
    key: str = ""  # the platform's handle for it (WeChat: "<errorMsgMd5>:<errorStackMd5>")
    # the same error across builds of the app: a rebuilt bundle moves the stack's
    # line:column, not the message (WeChat: errorMsgMd5); "" = the message itself
    signature: str = ""

    @property
    def same_as(self) -> str:
        """What makes two reports the same error, whichever version they come from."""
        return self.signature or self.message

    @property
    def first_stack_line(self) -> str:
        """The first line of the stack below the message (``at pages/cart/cart.js:3:120``)."""
        lines = [line.strip() for line in self.stack.splitlines() if line.strip()]
        frames = [line for line in lines if line.startswith("at ")]
        return frames[0] if frames else (lines[1] if len(lines) > 1 else (lines or [""])[0])


@dataclass(frozen=True)
class ErrorReport:
    """The JavaScript errors a platform reports for one version over whole days
    (``start``…``end``, the platform's own calendar days).

    ``users`` and ``count`` are summed over the rows, so ``users`` over-counts a user who
    hit several errors. ``complete`` is False when only the first pages were read.
    """

    version: str
    start: date
    end: date
    users: int
    count: int
    errors: tuple[JsError, ...] = ()  # most users first
    complete: bool = True


@dataclass(frozen=True)
class VersionInfo:
    """One version the platform keeps for the app (``versions``).

    ``state`` is plain English ("live", "in review", "approved", "gray", "development",
    "rejected", "offline", "earlier release"). ``rollback`` is True when ``rollback`` can
    take the app back to this version.
    """

    version: str
    state: str
    created_at: datetime | None = None  # aware UTC
    description: str = ""
    rollback: bool = False


@dataclass(frozen=True)
class Overview:
    """What the platform says about an app right now."""

    live_version: str | None = None
    trial_version: str | None = None  # WeChat trial / Alipay latest development version
    review: ReviewStatus | None = None  # the latest review, if any
    gray: GrayPlan | None = None  # a staged release in progress, if any
    lines: tuple[str, ...] = ()  # platform-specific extras worth showing


@dataclass(frozen=True)
class TrialCode:
    """The QR code that opens the trial (experience) version, as an image."""

    image: bytes
    mime: str  # "image/jpeg", "image/png"
    version: str | None = None
    url: str = ""  # where the platform serves the image, when it gave one (Alipay)
    detail: str = ""

    @property
    def extension(self) -> str:
        return {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif"}.get(self.mime, "img")


@dataclass(frozen=True)
class Quota:
    """One limit the platform puts on an action, and what is left of it.

    ``remaining``/``limit`` are ``None`` when the platform does not say. ``counted_here`` is
    True for limits the platform enforces but offers no API to read (WeChat's withdraw limit):
    the handlers count those actions themselves from the event log, per ``period`` ("day"
    or "month", in Beijing time where the platform's limits reset).
    """

    action: str  # "submit", "expedite", "withdraw"
    what: str  # "audit submissions this month" — for people
    remaining: int | None = None
    limit: int | None = None
    period: str = "month"
    counted_here: bool = False

    @property
    def spent(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


@dataclass(frozen=True)
class Template:
    """A code template (or a draft waiting to become one) of a third-party platform."""

    id: str  # template_id, or draft_id for drafts
    version: str
    description: str = ""
    created_at: datetime | None = None  # aware UTC
    source: str = ""  # the development mini program it was uploaded from
    developer: str = ""
    draft: bool = False


@dataclass(frozen=True)
class Authorization:
    """What a mini program granted the third-party platform.

    ``permissions`` are the permission-set ids it granted (WeChat ``func_info``), and
    ``permission_names`` the same in words, in the same order.
    """

    platform_app_id: str  # the mini program's id on the platform (wx…)
    app: str | None = None  # the miniship app key, when a configured app matches
    authorized: bool = True
    permissions: tuple[int, ...] = ()
    permission_names: tuple[str, ...] = ()
    detail: str = ""
    platform: str = ""  # registry name; filled in by whoever asked the adapter


@dataclass(frozen=True)
class Authorized:
    """A mini program that authorized the platform account (``authorized_apps``)."""

    platform_app_id: str  # its id on the platform (wx…)
    name: str  # its name there
    since: datetime | None = None  # when it authorized


class CredentialVault(Protocol):
    """Where an adapter keeps secrets it is given at run time (authorizer refresh tokens,
    the component verify ticket), encrypted at rest by whoever implements it (storage).

    An implementation raises its own errors (storage's vault: ``storage.vault.CredentialError``
    and below), whose text names no secret. The adapters turn them into a
    :class:`~platforms.errors.ConfigError` where they call the vault
    (:meth:`Platform.vault_failure`), so nothing above ``platforms/`` sees storage's types.
    """

    async def load(self, platform: str, name: str) -> SecretStr | None: ...

    async def save(self, platform: str, name: str, value: SecretStr) -> None: ...


# --------------------------------------------------------------------------- settings


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an adapter's base URL, or ``None`` when it can.

    It must be http(s) with a host, parse (:class:`httpx.URL`) and have a usable port, so a
    mistyped setting is reported when the adapter is built rather than on the first call.
    """
    if not re.match(r"^https?://[^/\s]+", url):
        return "it is not an http(s) URL"
    try:
        port = httpx.URL(url).port
    except httpx.InvalidURL:
        return "it does not parse as a URL"
    if port is not None and not 0 < port < 65536:
        return f"port {port} is out of range"
    return None


# --------------------------------------------------------------------------- secrets


def resolve_secret(value: object) -> object:
    """Turn ``"env:NAME"`` or ``"file:PATH"`` into a :class:`SecretStr`.

    Secrets never stand in miniship.toml itself; a literal string is refused with a
    message that says how to write the reference instead.
    """
    if value is None or isinstance(value, SecretStr):
        return value
    if not isinstance(value, str):
        raise ValueError('a secret must be written as "env:VARIABLE" or "file:/path"')
    kind, _, target = value.partition(":")
    if kind == "env" and target:
        if target not in os.environ:
            raise ValueError(f"environment variable {target} is not set")
        return SecretStr(os.environ[target])
    if kind == "file" and target:
        path = Path(target).expanduser()
        try:
            return SecretStr(path.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
    raise ValueError(
        "secrets are not written into miniship.toml; "
        'write "env:VARIABLE" or "file:/path/to/secret" instead'
    )


SecretRef = Annotated[SecretStr, BeforeValidator(resolve_secret)]
"""A secret field of a per-app config section, given as ``env:NAME`` or ``file:PATH``."""


# --------------------------------------------------------------------------- exchanges

SECRET_KEYS = frozenset(
    {
        "access_token",
        "app_auth_code",  # the one-time authorization codes: short-lived, still not for logs
        "app_auth_token",
        "app_refresh_token",
        "auth_code",
        "authorization_code",
        "authorizer_access_token",
        "authorizer_refresh_token",
        "component_access_token",
        "component_appsecret",
        "component_secret",
        "component_token",
        "component_verify_ticket",
        "encoding_aes_key",
        "password",
        "pre_auth_code",
        "private_key",
        "privatekey",  # minidev's identity JSON writes "privateKey"
        "refresh_token",
        "secret",
        "sign",
        "test_password",
    }
)

MESSAGE_KEYS = frozenset({"errmsg", "msg", "sub_msg"})
"""Answer fields holding the platform's own words, which :func:`scrub_answer` cleans."""

_SIGNED_STRING = re.compile(r"(?:网关生成的)?验签字符串.*", re.DOTALL)
"""Alipay's isv.invalid-signature sub_msg ends in the whole signed request (tokens and all)."""

_SECRET_NAMES = "|".join(sorted((re.escape(k) for k in SECRET_KEYS), key=len, reverse=True))
_SECRET_PAIR = re.compile(rf"(?i)(?<![A-Za-z0-9_])({_SECRET_NAMES})=[^&]*")
_SECRET_JSON = re.compile(rf'(?i)("(?:{_SECRET_NAMES})"\s*:\s*")(?:[^"\\]|\\.)*(")')


def scrub_message(text: str) -> str:
    """A platform message (errmsg, sub_msg) without the secrets a platform may echo in it.

    Everything from Alipay's signed-string marker on is cut, and the value of every
    ``key=value`` pair (or JSON ``"key":"value"``) whose key is in :data:`SECRET_KEYS`
    is masked; a ``key=value`` value runs to the next ``&`` or the end of the message,
    so no part of it (a password with spaces) stays behind.

        >>> scrub_message("验签出错，网关生成的验签字符串为：app_auth_token=x&method=m")
        '验签出错，[signed string removed]'
        >>> scrub_message("bad access_token=abc&x=1")
        'bad access_token=***&x=1'
    """
    text = _SIGNED_STRING.sub("[signed string removed]", text)
    text = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}=***", text)
    return _SECRET_JSON.sub(lambda m: f"{m.group(1)}***{m.group(2)}", text)


def scrub_answer(data: Any) -> Any:
    """A copy of a parsed answer whose :data:`MESSAGE_KEYS` strings went through
    :func:`scrub_message` (nested objects too).

    Adapters apply it once, right after parsing, so neither the recorded exchange nor a
    :class:`~platforms.errors.PlatformError` built from the answer can carry what it removes.
    """
    if isinstance(data, Mapping):
        return {
            k: (
                scrub_message(v)
                if isinstance(v, str) and isinstance(k, str) and k.lower() in MESSAGE_KEYS
                else scrub_answer(v)
            )
            for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [scrub_answer(v) for v in data]
    return data


def redact(data: Any) -> Any:
    """A copy of ``data`` (dicts and lists, nested) with every secret-bearing value masked."""
    if isinstance(data, Mapping):
        return {
            k: ("***" if k.lower() in SECRET_KEYS and v else redact(v)) for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [redact(v) for v in data]
    return data


@dataclass(frozen=True)
class Exchange:
    """One request to a platform and its answer, secrets removed, for the event log."""

    platform: str
    api: str  # "POST /wxa/submit_audit", "alipay.open.mini.version.online"
    request: Mapping[str, Any] = field(default_factory=dict)
    answer: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""  # transport failure, when there was no answer


PLATFORM_CALLS = Counter(
    "miniship_platform_calls",
    "Requests to the platforms, by platform, API and the answer's code (0 / 10000: fine; "
    "otherwise the platform's error code, or what went wrong on the way: HTTP 5xx, "
    "timeout, an exception's type, bad answer).",
    ["platform", "operation", "code"],
)
PLATFORM_SECONDS = Histogram(
    "miniship_platform_call_seconds",
    "How long each request to a platform took, answer included.",
    ["platform", "operation"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def _answer_code(answer: Mapping[str, Any]) -> str:
    """The platform's code in an answer: WeChat's ``errcode`` (absent: 0), Alipay's
    ``sub_code`` or ``code``."""
    for key in ("sub_code", "code", "errcode"):
        value = answer.get(key)
        if value not in (None, ""):
            return str(value)[:40]
    return "0"


def _error_code(error: str) -> str:
    """A metric label for what went wrong on the way — from a small set, since each label
    value is a time series: the HTTP status class, ``timeout``, an exception's type, or
    ``bad answer`` (the full text goes to the exchange's record, not to the label)."""
    if error == "timed out":
        return "timeout"
    if error.startswith("HTTP ") and error[5:8].isdigit():
        return f"HTTP {error[5]}xx"
    if error.isidentifier():  # the type of an exception on the way (code names, bounded)
        return error[:40]
    return "bad answer"


_recorded: ContextVar[list[Exchange] | None] = ContextVar("miniship_exchanges", default=None)


@contextmanager
def recording() -> Iterator[list[Exchange]]:
    """Collect the exchanges made inside the block (in this task and tasks it starts)."""
    log: list[Exchange] = []
    token = _recorded.set(log)
    try:
        yield log
    finally:
        _recorded.reset(token)


def record(exchange: Exchange) -> None:
    log = _recorded.get()
    if log is not None:
        log.append(exchange)


# --------------------------------------------------------------------------- the interface


class Platform(ABC):
    """One mini-program platform.

    Subclasses set the class attributes, define ``Settings`` (a pydantic-settings class
    with the platform's env prefix) and ``AppConfig`` (one app's ``[apps.X.<name>]``
    section), and implement the async operations. Operations take the miniship app key;
    an app the adapter was not configured with raises :class:`ConfigError`.

    Operations raise only :mod:`platforms.errors` types. An operation that changes
    something on the platform (upload, submit, withdraw, publish) is never retried
    blindly: after an unclear failure the adapter asks the platform what happened
    (:meth:`send_change`, :meth:`confirm_change`), and raises
    :class:`~platforms.errors.OutcomeUnknown` only when the platform could not say.

    ``Settings`` carry ``max_retries`` and ``retry_backoff_seconds`` for
    :meth:`read_with_retries`. ``sleep`` is how the adapter waits (backoff, polling); tests
    replace it to wait without sleeping.
    """

    name: ClassVar[str]  # registry key, as typed in commands: "wechat"
    display_name: ClassVar[str]  # "WeChat"
    docs_url: ClassVar[str]
    Settings: ClassVar[type[BaseSettings]]
    AppConfig: ClassVar[type[BaseModel]]
    gray_steps: ClassVar[tuple[int, ...] | None] = None
    """The gray percentages the platform allows, or ``None`` for any whole 1–100 (WeChat)."""
    rollback_to_any: ClassVar[bool] = False
    """True when ``rollback`` can go to a chosen earlier version, not only the previous one."""
    withdraws_decided: ClassVar[bool] = False
    """True when ``withdraw`` can also take a decided (approved or rejected, not published)
    version back to development (Alipay's audited.cancel); WeChat withdraws only a review
    in progress."""
    id_field: ClassVar[str]
    """The field of :attr:`AppConfig` holding the mini program's id on the platform
    (``appid``, ``app_id``): what ``app add <key> <platform> <id>`` fills in."""
    takes_version_prefix: ClassVar[bool] = False
    """True when a version may carry a letter prefix (``v1.2.0``): WeChat's free-text
    ``user_version``; Alipay demands digits only."""
    quota_actions: ClassVar[frozenset[str]] = frozenset()
    """The actions :meth:`quotas` may report a limit for (a card asks before offering them)."""
    gray_auto_release: ClassVar[timedelta | None] = None
    """How long after a staged release begins the platform releases it to everyone on its
    own (WeChat: 15 days), or None."""
    reports_errors: ClassVar[bool] = False
    """True when :meth:`js_errors` reads per-version error figures from the platform
    (WeChat's jserr_list); a staged rollout is then gated on them. Alipay offers no such
    API: its rollouts advance on time alone."""
    single_trial_version: ClassVar[bool]
    """True when uploading a version replaces the code uploaded before it (the trial or
    development version), so older uploads that were not submitted can no longer be
    submitted. WeChat: True (``/wxa/commit`` overwrites the one trial version). Alipay:
    False (development versions coexist; each can be submitted)."""
    connects_any: ClassVar[bool] = False
    """True when an authorization link need name no app: any mini program's admin may
    authorize through it, and the grant the callback brings makes it an app (Alipay, whose
    third-party app authorization sends no notification; WeChat's sends pushes instead)."""
    state_in_query: ClassVar[bool] = False
    """True when the platform's authorization page takes the callback address only as
    registered with it (no path of miniship's own): the one-time ``state`` of the link is
    then given to :meth:`connect_link` as the ``state`` query parameter of its
    ``redirect_uri``, for the adapter to put where the page carries it back, and found
    again in the callback by :meth:`link_state`. Otherwise it is the callback's last path
    segment (``/connect/<platform>/<state>``)."""

    def __init__(
        self,
        settings: Any,
        apps: Mapping[str, Any],
        *,
        sender: Sender | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.apps = dict(apps)
        self.clock = clock
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._own_sender = sender is None
        self.sender = sender or Sender()
        self.vault: CredentialVault | None = None
        """Set by the runtime: where run-time secrets are kept (encrypted) across restarts."""

    @classmethod
    def is_configured(cls, settings: Any) -> bool:
        """True when ``settings`` hold real credentials for this platform."""
        raise NotImplementedError(f"{cls.__name__} must say when it is configured")

    @classmethod
    def describe_app(cls, config: Any) -> str:
        """One line naming the app on this platform (its id there), for ``apps``."""
        raise NotImplementedError(f"{cls.__name__} must describe its apps")

    def set_apps(self, apps: Mapping[str, Any]) -> None:
        """Release ``apps`` from now on (apps added, changed or retired while running);
        what the adapter keeps per app (tokens, signers) is dropped for each app whose
        section changed.

        Raises:
            ConfigError: a section is not valid for this platform.
        """
        try:
            configs = {
                key: cfg if isinstance(cfg, self.AppConfig) else self.AppConfig.model_validate(cfg)
                for key, cfg in apps.items()
            }
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"an [apps.*.{self.name}] section is invalid: {where}: {first['msg']}"
            ) from None
        changed = {k for k in {*self.apps, *configs} if self.apps.get(k) != configs.get(k)}
        self.apps = configs
        self._forget(changed)

    def _forget(self, keys: set[str]) -> None:
        """Drop what is kept for the apps ``keys`` (their sections changed or are gone);
        adapters that keep state per app extend it."""
        return None  # the base keeps nothing per app

    def app(self, key: str) -> Any:
        try:
            return self.apps[key]
        except KeyError:
            raise ConfigError(
                f"app {key!r} has no [apps.{key}.{self.name}] section in miniship.toml"
            ) from None

    # -- shared by the adapters --------------------------------------------------------

    def vault_failure(self, what: str, exc: Exception) -> ConfigError:
        """The error for a :attr:`vault` that could not give ``what`` ("the WeChat
        refresh_token"): where the platforms meet the vault, its own error (``exc``, whose
        text names no secret) becomes a setting problem for people."""
        return ConfigError(
            f"miniship's credential vault could not give {what} "
            f"({type(exc).__name__}: {exc}); check MINISHIP_SECRET_KEY"
        )

    def record_exchange(
        self,
        api: str,
        request: Mapping[str, Any],
        answer: Mapping[str, Any] | None = None,
        error: str = "",
        seconds: float | None = None,
    ) -> None:
        """:func:`record` one exchange of this platform, secret-bearing values masked, and
        count it (with how long it took, when known) for ``/metrics``."""
        code = _error_code(error) if error else _answer_code(answer or {})
        PLATFORM_CALLS.labels(self.name, api, code).inc()
        if seconds is not None:
            PLATFORM_SECONDS.labels(self.name, api).observe(seconds)
        record(
            Exchange(
                platform=self.name,
                api=api,
                request=redact(dict(request)),
                answer=redact(dict(answer or {})),
                error=error,
            )
        )

    async def read_with_retries(
        self, read: Callable[[], Awaitable[T]], *, retries: int | None = None
    ) -> T:
        """Run ``read`` (a request that changes nothing); while the platform is busy or
        unreachable (:class:`~platforms.errors.PlatformUnavailable`) run it again, at most
        ``retries`` more times (default ``settings.max_retries``), waiting
        ``settings.retry_backoff_seconds`` doubled after each attempt."""
        limit = self.settings.max_retries if retries is None else retries
        attempt = 0
        while True:
            try:
                return await read()
            except PlatformUnavailable as exc:
                if attempt >= limit:
                    raise
                delay = self.settings.retry_backoff_seconds * 2**attempt
                log.info(
                    "%s unavailable (%s); retrying in %.2f s",
                    self.display_name,
                    exc.code or "-",
                    delay,
                )
                await self.sleep(delay)
                attempt += 1

    async def send_change(self, send: Callable[[], Awaitable[T]]) -> T:
        """Send the one request that carries a change, once.

        When its answer is lost or cannot be trusted (``PlatformUnavailable`` or
        ``BadResponse``) the change may have happened: this raises
        :class:`~platforms.errors.OutcomeUnknown` so the operation asks the platform
        (:meth:`confirm_change`) instead of repeating it.
        """
        try:
            return await send()
        except (PlatformUnavailable, BadResponse) as exc:
            raise OutcomeUnknown.after(exc) from None

    async def confirm_change(
        self, unclear: OutcomeUnknown, what: str, check: Callable[[], Awaitable[bool]]
    ) -> None:
        """Ask the platform whether a change whose answer was unclear happened.

        ``what`` names the change for people ("release"); ``check`` asks the platform and
        says whether the change shows. Returns when it does. Raises an error of the kind the
        change met, saying it did not happen, when it does not show; and
        :class:`~platforms.errors.OutcomeUnknown` when the platform could not be asked.
        """
        try:
            seen: bool | None = await check()
        except PlatformError:
            seen = None
        if seen:
            return
        original = unclear.original or unclear
        if seen is None:
            raise OutcomeUnknown(
                original.platform,
                original.code,
                original.platform_message,
                f"{original.explanation} miniship could not check whether the {what} "
                "happened; look at the status before trying again.",
                original=original,
            )
        kind = PlatformUnavailable if isinstance(original, OutcomeUnknown) else type(original)
        raise kind(
            original.platform,
            original.code,
            original.platform_message,
            f"{original.explanation} {self.display_name} shows no sign of the {what}, "
            "so it did not happen; try again.",
        )

    # -- the operations ----------------------------------------------------------------

    @classmethod
    def offers(cls, operation: str) -> bool:
        """Whether this platform implements an optional operation (``"expedite"``…)."""
        return getattr(cls, operation) is not getattr(Platform, operation)

    def unsupported(self, what: str, instead: str = "") -> Unsupported:
        """The error for an operation this platform does not offer."""
        text = f"{self.display_name} has no {what}."
        return Unsupported(self.name, "", "", f"{text} {instead}".strip())

    @abstractmethod
    async def upload(
        self,
        app: str,
        version: str,
        notes: str,
        *,
        template: str | None = None,
        code: Path | None = None,
    ) -> UploadResult:
        """Upload ``version`` of the app so it can be submitted.

        Third-party apps commit a template (``template`` overrides the app's configured
        one); apps owned directly upload their code directory through the platform's CLI
        (``code`` instead of the configured ``project_path``: a build handed over by CI;
        refused for an app whose code is a template).
        Returns once the platform has the version ready to submit (Alipay: built).
        """

    @abstractmethod
    async def submit(
        self, app: str, version: str, notes: str, *, expedite: bool = False
    ) -> SubmitResult:
        """Submit the uploaded ``version`` for review; ``notes`` go to the reviewers.

        ``expedite`` asks for a faster review where the submission itself can say so
        (Alipay ``speed_up``); WeChat expedites afterwards (:meth:`expedite`).
        """

    @abstractmethod
    async def review_status(self, app: str, version: str, ref: str) -> ReviewStatus:
        """Where the review ``ref`` of ``version`` stands now."""

    @abstractmethod
    async def withdraw(self, app: str, version: str, ref: str) -> str:
        """Pull ``version`` out of review. Returns a line for people."""

    @abstractmethod
    async def publish(self, app: str, version: str, ref: str) -> str:
        """Publish the approved ``version``. Returns a line for people.

        Refuses (InvalidState) when the platform's approved version is not ``version``,
        so a stale command can never publish different code.
        """

    @abstractmethod
    async def overview(self, app: str) -> Overview:
        """What is live, what is the trial version and where the latest review stands."""

    async def live_version(self, app: str) -> str | None:
        """The version live now (None: none), as :meth:`overview` says it; a platform
        that can tell it in fewer calls answers it alone (what a publish checks)."""
        return (await self.overview(app)).live_version

    # -- the rest of the life cycle (optional: the default says the platform has none) --

    async def trial_code(self, app: str, version: str | None) -> TrialCode:
        """The QR code of the trial version (``version``: the one just uploaded, if known)."""
        raise self.unsupported("trial QR code")

    async def review_images(self, app: str, version: str, ref: str) -> list[ReviewImage]:
        """The images the platform gives with the review ``ref`` of ``version`` (what a
        rejection points at), at most :data:`REVIEW_IMAGES_MAX`, in the platform's order;
        empty when it gives none. One image that cannot be had is left out (and logged),
        never failing the others; the review itself that cannot be read raises."""
        raise self.unsupported("review screenshots")

    async def expedite(self, app: str, version: str, ref: str) -> str:
        """Ask for the review ``ref`` of ``version`` to be sped up. Returns a line for people."""
        raise self.unsupported("expedited review")

    async def quotas(self, app: str) -> list[Quota]:
        """The platform's limits on submit, expedite and withdraw, with what is left."""
        self.app(app)
        return []

    async def gray(self, app: str, version: str, percent: int) -> str:
        """Release the approved ``version`` to ``percent`` of users (one of
        :attr:`gray_steps` when the platform has fixed steps)."""
        raise self.unsupported("staged (gray) release")

    async def stop_gray(self, app: str, version: str) -> str:
        """End the staged release of ``version``: everyone goes back to the live version."""
        raise self.unsupported("staged (gray) release")

    async def js_errors(
        self, app: str, version: str, start: date, end: date, *, pages: int = 10
    ) -> ErrorReport:
        """The JavaScript errors the platform reports for ``version`` over the days
        ``start``…``end`` (at most ``pages`` pages of rows read): only where
        :attr:`reports_errors` says the platform has such a report."""
        raise self.unsupported(
            "per-version error report", "Watch the platform's own console while it rolls out."
        )

    async def rollback(self, app: str, live: str, to: str | None) -> str:
        """Take the app from its ``live`` version back to ``to`` (default: the one before).

        Never retried blindly: after an unclear answer the adapter asks which version is live.
        """
        raise self.unsupported("rollback")

    async def offline(self, app: str, version: str) -> str:
        """Take the live ``version`` off the shelves."""
        self.app(app)
        raise self.unsupported("offline", "Pause it in the platform's console instead.")

    async def versions(self, app: str) -> list[VersionInfo]:
        """The versions the platform keeps for the app, newest first (rollback targets flagged)."""
        self.app(app)
        return []

    async def templates(self) -> list[Template]:
        """The third-party platform's template library and draft box."""
        raise self.unsupported("template library")

    async def add_template(self, draft_id: str) -> str:
        """Turn draft ``draft_id`` into a template. Returns a line for people."""
        raise self.unsupported("template library")

    async def delete_template(self, template_id: str) -> str:
        """Delete template ``template_id`` from the library. Returns a line for people."""
        raise self.unsupported("template library")

    async def connect_link(self, app: str, redirect_uri: str) -> str:
        """The link an admin of the mini program opens to authorize the platform; once they
        confirm, the platform sends their browser to ``redirect_uri`` (see
        :meth:`complete_connect`)."""
        raise self.unsupported("authorization link", "Give the app's credentials in settings.")

    async def complete_connect(self, app: str, query: Mapping[str, str]) -> Authorization:
        """Finish the authorization of ``app`` from the query the platform sent the browser
        back with: exchange the code, keep the refresh token in :attr:`vault`, say what was
        granted. (The caller has checked the link was made for ``app``; "" when it named
        no app, see :attr:`connects_any`.)"""
        raise self.unsupported("authorization callback")

    def link_state(self, query: Mapping[str, str]) -> str:
        """The link's one-time state as the callback's ``query`` carries it back (see
        :attr:`state_in_query`); "" when it carries none."""
        return query.get("state", "")

    async def authorization(self, app: str) -> Authorization | None:
        """Whether the app authorized the platform, and with which permission sets
        (``None`` when the platform has no such notion, e.g. an app owned directly)."""
        self.app(app)
        return None

    def new_app(self, authorized: Authorized) -> dict[str, Any]:
        """The ``[apps.<key>.<platform>]`` table of an app found by :meth:`authorized_apps`
        (its id; the adapter's defaults do the rest)."""
        return {self.id_field: authorized.platform_app_id}

    async def authorized_app(self, platform_app_id: str) -> Authorized | None:
        """The mini program ``platform_app_id`` if it authorized the platform account (its
        name; what is needed to act for it kept in :attr:`vault`), else None."""
        raise self.unsupported("authorization notices")

    async def authorized_apps(self) -> list[Authorized]:
        """Every mini program that authorized the platform account, with its name; what is
        needed to act for each (a refresh token) is kept in :attr:`vault`."""
        raise self.unsupported("list of authorized mini programs")

    # -- pushes ------------------------------------------------------------------------

    async def read_push(self, request: PushRequest) -> list[PushEvent]:
        """Verify and parse a push the platform sent to our push endpoint.

        Returns the events it carries (empty for pushes miniship does not act on), each
        with ``app`` set to the miniship app key when a configured app matches. The
        endpoint answers the platform with the plain text ``success`` once this returned;
        anything else makes the platform deliver the push again later.

        Raises:
            PushRejected: the signature does not verify or the payload is malformed.
            ConfigError: the adapter lacks the settings needed to verify pushes.
            NotImplementedError: the platform does not push (the default).
        """
        raise NotImplementedError(f"{self.display_name} pushes are not read by miniship")

    async def aclose(self) -> None:
        if self._own_sender:
            await self.sender.aclose()
