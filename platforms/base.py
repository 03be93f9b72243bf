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
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

import httpx
from pydantic import BaseModel, BeforeValidator, SecretStr
from pydantic_settings import BaseSettings

from platforms.errors import (
    BadResponse,
    ConfigError,
    OutcomeUnknown,
    PlatformError,
    PlatformUnavailable,
)
from platforms.push import PushEvent, PushRequest

__all__ = [
    "BEIJING",
    "MESSAGE_KEYS",
    "SECRET_KEYS",
    "Exchange",
    "Overview",
    "Platform",
    "ReviewState",
    "ReviewStatus",
    "SecretRef",
    "SubmitResult",
    "UploadResult",
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


@dataclass(frozen=True)
class Overview:
    """What the platform says about an app right now."""

    live_version: str | None = None
    trial_version: str | None = None  # WeChat trial / Alipay latest development version
    review: ReviewStatus | None = None  # the latest review, if any
    lines: tuple[str, ...] = ()  # platform-specific extras worth showing (gray plan, …)


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
        "app_auth_token",
        "app_refresh_token",
        "authorizer_access_token",
        "authorizer_refresh_token",
        "component_access_token",
        "component_appsecret",
        "component_secret",
        "component_token",
        "component_verify_ticket",
        "encoding_aes_key",
        "password",
        "private_key",
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
    single_trial_version: ClassVar[bool]
    """True when uploading a version replaces the code uploaded before it (the trial or
    development version), so older uploads that were not submitted can no longer be
    submitted. WeChat: True (``/wxa/commit`` overwrites the one trial version). Alipay:
    False (development versions coexist; each can be submitted)."""

    def __init__(
        self,
        settings: Any,
        apps: Mapping[str, Any],
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.apps = dict(apps)
        self.clock = clock
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0))

    @classmethod
    def is_configured(cls, settings: Any) -> bool:
        """True when ``settings`` hold real credentials for this platform."""
        raise NotImplementedError(f"{cls.__name__} must say when it is configured")

    @classmethod
    def describe_app(cls, config: Any) -> str:
        """One line naming the app on this platform (its id there), for ``apps``."""
        raise NotImplementedError(f"{cls.__name__} must describe its apps")

    def app(self, key: str) -> Any:
        try:
            return self.apps[key]
        except KeyError:
            raise ConfigError(
                f"app {key!r} has no [apps.{key}.{self.name}] section in miniship.toml"
            ) from None

    # -- shared by the adapters --------------------------------------------------------

    def record_exchange(
        self,
        api: str,
        request: Mapping[str, Any],
        answer: Mapping[str, Any] | None = None,
        error: str = "",
    ) -> None:
        """:func:`record` one exchange of this platform, secret-bearing values masked."""
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

    @abstractmethod
    async def upload(self, app: str, version: str, notes: str) -> UploadResult:
        """Upload ``version`` of the app (template commit) so it can be submitted."""

    @abstractmethod
    async def submit(self, app: str, version: str, notes: str) -> SubmitResult:
        """Submit the uploaded ``version`` for review; ``notes`` go to the reviewers."""

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
        if self._own_client:
            await self.client.aclose()
