"""The one interface every platform adapter implements, and the value objects it returns.

An adapter speaks one platform's real HTTP API. It is built from its own settings class
(environment variables with the platform's prefix, e.g. ``WECHAT_``) and the per-app
sections of miniship.toml (``[apps.<key>.<platform>]``), each parsed by the adapter's own
``AppConfig`` model. Everything above ``platforms/`` talks to adapters only through
:class:`Platform` and the dataclasses below, never through vendor JSON.

Every HTTP exchange an adapter makes is reported to :func:`record` with secrets removed,
so the use case that caused it can keep the platform's answer in the event log.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar

import httpx
from pydantic import BaseModel, BeforeValidator, SecretStr
from pydantic_settings import BaseSettings

from platforms.errors import ConfigError

__all__ = [
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
]


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
        "sign",
        "test_password",
    }
)


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
    blindly: after an unclear failure the adapter asks the platform what happened.
    """

    name: ClassVar[str]  # registry key, as typed in commands: "wechat"
    display_name: ClassVar[str]  # "WeChat"
    docs_url: ClassVar[str]
    Settings: ClassVar[type[BaseSettings]]
    AppConfig: ClassVar[type[BaseModel]]

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

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()
